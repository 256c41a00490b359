"""``FeatureExtractor.extract(folder, key_rule=...)`` keys the folder by that rule, as ``im2vec extract --keys``
does: it used to key a folder by path whatever the rule and record the rule, so a store said "stem" of path keys."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")
from PIL import Image  # noqa: E402

from gensim_im2vec.features import FeatureExtractor  # noqa: E402
from gensim_im2vec.store import FeatureStore  # noqa: E402


def _images(root):
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(root / "a" / "1000001_abc_o.jpg")
    Image.new("RGB", (40, 40), (10, 200, 10)).save(root / "b" / "1000002_def_o.jpg")


@pytest.mark.parametrize("rule, keys", [("path", {"img:a/1000001_abc_o", "img:b/1000002_def_o"}),
                                        ("stem", {"img:1000001_abc_o", "img:1000002_def_o"}),
                                        ("flickr-id", {"img:1000001", "img:1000002"})])
def test_a_folder_is_keyed_by_the_rule_given(tmp_path, rule, keys):
    _images(tmp_path / "imgs")
    ex = FeatureExtractor(arch="mobilenet_v3_small", weights=None, device="cpu", batch_size=2, num_workers=0)
    report = ex.extract(tmp_path / "imgs", tmp_path / "store", key_rule=rule)
    store = FeatureStore.open(tmp_path / "store")
    assert set(store.keys) == keys
    assert store.metadata["key_rule"] == rule
    assert report.extracted == 2
