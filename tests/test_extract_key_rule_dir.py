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


def test_the_same_folder_under_another_prefix_is_refused(tmp_path, caplog):
    """A store's folder extracted again with another prefix (`im2vec extract imgs -o store --prefix pic:` after
    `--prefix img:`) stored every image a second time (pic:a/... beside img:a/...) without a word, where another
    key rule is refused; a subfolder of the store's folder (its keys' prefix extends the other) still goes on."""
    _images(tmp_path / "imgs")
    ex = FeatureExtractor(arch="mobilenet_v3_small", weights=None, device="cpu", batch_size=2, num_workers=0)
    ex.extract(tmp_path / "imgs", tmp_path / "store")
    with pytest.raises(ValueError) as err:
        ex.extract(tmp_path / "imgs", tmp_path / "store", prefix="pic:")
    said = str(err.value)
    assert "holds this run's images under the key prefix 'img:'" in said and "--prefix 'pic:'" in said
    assert "every image would be stored a second time" in said and "Give --prefix 'img:'" in said
    assert sorted(FeatureStore.open(tmp_path / "store").keys) == ["img:a/1000001_abc_o", "img:b/1000002_def_o"]
    report = ex.extract(tmp_path / "imgs" / "a", tmp_path / "store")  # the subfolder: root_note warns, goes on
    assert report.extracted == 1 and "img:1000001_abc_o" in FeatureStore.open(tmp_path / "store").keys


def test_two_folders_of_like_names_under_two_prefixes_share_a_store(tmp_path):
    """What prefixes are for (two cameras' IMG_0001.jpg ... in one store): the refusal of another prefix is for
    the store's own folder only."""
    _images(tmp_path / "cam1")
    _images(tmp_path / "cam2")
    ex = FeatureExtractor(arch="mobilenet_v3_small", weights=None, device="cpu", batch_size=2, num_workers=0)
    ex.extract(tmp_path / "cam1", tmp_path / "store", prefix="cam1:")
    report = ex.extract(tmp_path / "cam2", tmp_path / "store", prefix="cam2:")
    assert report.extracted == 2 and len(FeatureStore.open(tmp_path / "store")) == 4
