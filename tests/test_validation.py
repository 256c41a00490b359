"""check_features: the one gate feature vectors pass, checked in the dtype the kernel computes in."""

from __future__ import annotations

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.validation import check_features

DOCS = [["img:a", "cat", "dog"], ["img:b", "dog", "fish"]] * 5


def _features(value, dtype):
    return {"img:a": np.array([value, 1.0, 2.0, 3.0], dtype=dtype), "img:b": np.arange(1, 5, dtype=dtype)}


@pytest.mark.parametrize("epochs", [1, 2])
def test_finite_float64_beyond_float32_is_refused_by_key(epochs):
    # 1e39 is finite in float64 and inf in float32: it used to train a NaN model (epochs=1) or segfault
    with pytest.raises(ValueError, match=r"exceed the float32 range.*'img:a'"):
        Im2Vec(DOCS, image_features=_features(1e39, np.float64), vector_size=8, min_count=1, epochs=epochs,
               workers=1)


@pytest.mark.parametrize("value,norm", [(1e20, "1e\\+20"), (1e-30, "3.74e-30")])
def test_a_norm_float32_cannot_take_is_refused_by_key(value, norm):
    # (1e20)^2 overflows and (1e-30)^2 underflows in float32: the image's vector silently became 0
    feats = {"img:a": np.full(4, value, np.float32) * [2, 1, 1, 1], "img:b": np.full(4, 1.0, np.float32)}
    with pytest.raises(ValueError, match=rf"'img:a': norm {norm}.*cannot normalise|cannot normalise.*'img:a'"):
        Im2Vec(DOCS, image_features=feats, vector_size=8, min_count=1, epochs=1, workers=1)


def test_a_memory_mapped_store_is_checked_the_same_way(tmp_path):
    keys = ["img:a", "img:b"]
    FeatureStore.from_arrays(tmp_path / "s", keys, np.array([[1e20, 1, 1, 1], [1, 2, 3, 4]], np.float32))
    with pytest.raises(ValueError, match=r"cannot normalise.*'img:a'"):
        Im2Vec(DOCS, image_features=FeatureStore.open(tmp_path / "s"), vector_size=8, min_count=1, epochs=1,
               workers=1)


def test_the_edges_of_the_range_pass_and_train_finite():
    lo, hi = 2e-19, 1e19  # squared norms 5e-38 and 1.1e38: both normal float32 numbers
    feats = {"img:a": np.array([lo, lo / 2, 0, 0], np.float32), "img:b": np.array([0, hi, hi / 3, 0], np.float32)}
    model = Im2Vec(DOCS, image_features=feats, vector_size=8, min_count=1, epochs=2, workers=1, seed=1)
    for key in ("img:a", "img:b"):
        v = model.wv[key]
        assert np.isfinite(v).all() and np.linalg.norm(v) > 0


def test_check_features_messages():
    with pytest.raises(ValueError, match=r"exceed the float32 range.*row 1"):
        check_features(np.array([[1.0, 2.0], [1e300, 1.0]]))
    with pytest.raises(ValueError, match=r"row 0: norm 1e-30"):
        check_features(np.array([[1e-30, 0.0]]))
    # storage may hold such rows (the model refuses them); only the cast's overflow is refused there
    assert check_features(np.array([[1e-30, 0.0]]), allow_zero=True).dtype == np.float32
    with pytest.raises(ValueError, match="exceed the float32 range"):
        check_features(np.array([[1e39, 0.0]]), allow_zero=True)


# ---------------------------------------------------------------- counts given as True/False
# ``True`` is an int to Python, so these options took True as 1 (an index with nprobe=True, a
# store writer with shard_size=True, Im2Vec(image_batch=True)); a bool where a count belongs is a
# mistake, and one check (`validation.is_int`) now refuses it everywhere by the option's name.
def _bool_count_calls(tmp_path):
    from gensim_im2vec.distributed import plan_parts
    from gensim_im2vec.index import ModalityIndexer
    from gensim_im2vec.store import PCA, FeatureStoreWriter

    return {
        "image_batch": lambda: Im2Vec(image_batch=True),
        "space_negatives": lambda: Im2Vec(space_negatives=True),
        "batch_words": lambda: Im2Vec(batch_words=True),
        "space_common_directions": lambda: Im2Vec(space_common_directions=False),
        "nprobe": lambda: ModalityIndexer(object(), nprobe=True),
        "shard_size": lambda: FeatureStoreWriter(tmp_path / "s", dim=4, shard_size=True),
        "dim": lambda: FeatureStoreWriter(tmp_path / "s", dim=True),
        "part_size": lambda: plan_parts([("a", "b")], True),
        "n_components": lambda: PCA.fit(np.eye(4, dtype=np.float32), True),
    }


@pytest.mark.parametrize("option", ["image_batch", "space_negatives", "batch_words", "space_common_directions",
                                    "nprobe", "shard_size", "dim", "part_size", "n_components"])
def test_a_bool_given_as_a_count_is_refused_by_name(tmp_path, option):
    with pytest.raises(ValueError, match=option):
        _bool_count_calls(tmp_path)[option]()


def test_is_int():
    from gensim_im2vec.validation import is_int

    assert [is_int(v) for v in (0, np.int32(-3), np.uint8(7))] == [True, True, True]
    assert [is_int(v) for v in (True, np.bool_(True), 1.0, "1", None, np.float32(2))] == [False] * 6
