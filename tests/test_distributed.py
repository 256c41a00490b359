"""Ray Data extraction on a local Ray cluster: row for row the single-machine extractor's
features; finished parts are not redone; a part cut short by a dead worker is completed;
stores from different models are refused at merge."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from PIL import Image  # noqa: E402

from gensim_im2vec.distributed import extract_ray, merge_stores, plan_parts  # noqa: E402
from gensim_im2vec.features import FeatureExtractor, list_images  # noqa: E402
from gensim_im2vec.store import FeatureStore, StoreMismatchError  # noqa: E402

FX = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray") / "photos"
    rng = np.random.default_rng(0)
    for i in range(11):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (36 + i, 44, 3), dtype=np.uint8)).save(sub / f"{i:02d}.png")
    (root / "b" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_matches_single_machine_and_resumes(photos, tmp_path, local_ray):
    single = FeatureExtractor(**FX, device="cpu", num_workers=0, progress=False).extract(photos, tmp_path / "single")
    # a worker died in part 1 after committing two of its images: its store has those rows, no marker
    pairs = list_images(photos)
    parts = plan_parts(pairs, 4)
    assert [len(p) for p in parts] == [4, 4, 4]
    partial = tmp_path / "feats.ray-parts" / "part-000001"
    fx = FeatureExtractor(**FX, device="cpu", num_workers=0, progress=False)
    fx.extract(parts[1][:2], partial)

    rep = extract_ray(photos, tmp_path / "feats", **FX, part_size=4, keep_parts=True)
    assert rep.parts == 3 and rep.parts_run == 3 and rep.device == "cpu" and rep.actors == 2
    assert rep.extracted == 11 - 2 and rep.already == 2 and rep.skipped == 1
    store = rep.store
    # row for row the single-machine store: same keys in the same order, same fp16 bits
    assert store.keys == single.store.keys and len(store) == 11
    np.testing.assert_array_equal(np.asarray(store.vectors), np.asarray(single.store.vectors))
    assert store.skipped == single.store.skipped and "img:b/broken" in store.skipped
    ident = ("arch", "weights", "layer", "dim", "dtype", "preprocessing")
    assert {k: store.metadata[k] for k in ident} == {k: single.store.metadata[k] for k in ident}

    # rerun: every part has its marker, nothing goes to Ray, the store is unchanged
    again = extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    assert again.parts_run == 0 and again.extracted == 0 and again.already == 12
    assert again.store.keys == store.keys
    assert not (tmp_path / "feats.ray-parts").exists()  # removed after a merge without keep_parts


def test_merge_by_key_and_refuse_other_models(tmp_path):
    rng = np.random.default_rng(1)
    a = FeatureStore.from_arrays(tmp_path / "a", ["img:1", "img:2"], rng.random((2, 4), dtype=np.float32),
                                 metadata={"arch": "resnet50", "weights": "IMAGENET1K_V1"}, dtype="float16")
    b = FeatureStore.from_arrays(tmp_path / "b", ["img:2", "img:3"], rng.random((2, 4), dtype=np.float32),
                                 metadata={"arch": "resnet50", "weights": "IMAGENET1K_V1"}, dtype="float16")
    merged = merge_stores(tmp_path / "m", [a, b])
    assert merged.keys == ["img:1", "img:2", "img:3"]
    np.testing.assert_array_equal(merged.vectors[1], a.vectors[1])  # first occurrence wins
    np.testing.assert_array_equal(merged.vectors[2], b.vectors[1])
    other = FeatureStore.from_arrays(tmp_path / "c", ["img:9"], rng.random((1, 4), dtype=np.float32),
                                     metadata={"arch": "resnet50", "weights": "IMAGENET1K_V2"}, dtype="float16")
    with pytest.raises(StoreMismatchError, match="weights"):
        merge_stores(tmp_path / "n", [a, other])
    with pytest.raises(StoreMismatchError):  # nor into a target made by another model
        merge_stores(tmp_path / "m", [other])
    assert FeatureStore.open(tmp_path / "m").keys == ["img:1", "img:2", "img:3"]
    with pytest.raises(ValueError, match="part_size"):
        plan_parts([("img:1", "x")], 0)
    with pytest.raises(ValueError, match="no source"):
        merge_stores(tmp_path / "z", [])
