"""FeatureStore: round trips, the writer interface, crash safety at every write, PCA, errors."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from gensim_im2vec import store as store_mod
from gensim_im2vec.store import (
    IDENTITY_FIELDS,
    PCA,
    FeatureStore,
    FeatureStoreWriter,
    StoreMismatchError,
)

META = {"arch": "toy", "weights": "toy-v1", "layer": "penultimate", "preprocessing": "none"}


def _data(n=50, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    keys = [f"img:dir/{i:03d}" for i in range(n)]
    return keys, (rng.random((n, dim), dtype=np.float32) + 0.05) * 10


def _write_all(path, keys, vecs, *, shard_size=8, batch=5, dtype="float32", mode="create"):
    with FeatureStore.create(path, dim=vecs.shape[1], dtype=dtype, metadata=META, mode=mode, shard_size=shard_size) as w:
        for s in range(0, len(keys), batch):
            w.write(keys[s : s + batch], vecs[s : s + batch])
    return FeatureStore.open(path)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_from_arrays_round_trip_contract(tmp_path, dtype):
    keys, vecs = _data()
    s = FeatureStore.from_arrays(tmp_path / "s", keys, vecs, metadata=META, dtype=dtype)
    # the contract Im2Vec relies on
    assert s.keys == keys
    assert isinstance(s.vectors, np.memmap) and s.vectors.dtype == np.dtype(dtype)
    assert s.vectors.shape == (50, 12) and s.dim == 12 and len(s) == 50
    assert s.key_to_index["img:dir/007"] == 7 and "img:dir/007" in s and "img:nope" not in s
    v = s.get_vector("img:dir/007")
    assert v.dtype == np.float32 and v.shape == (12,)
    np.testing.assert_allclose(v, vecs[7], rtol=1e-3 if dtype == "float16" else 0)
    np.testing.assert_allclose(np.linalg.norm(s.get_vector("img:dir/007", norm=True)), 1.0, rtol=1e-6)
    for f in ("arch", "weights", "layer", "dim", "dtype", "preprocessing", "normalisation", "pca", "count",
              "created", "package_version"):
        assert f in s.metadata, f
    assert s.metadata["count"] == 50 and s.metadata["dtype"] == dtype and s.metadata["arch"] == "toy"
    assert s.path == tmp_path / "s"
    # plain numpy can read the files without this package
    raw = np.load(tmp_path / "s" / "features.npy", mmap_mode="r")
    assert raw.shape == (50, 12)
    assert (tmp_path / "s" / "keys.txt").read_text(encoding="utf-8").splitlines() == keys
    loaded = FeatureStore.open(tmp_path / "s", mmap=False)
    assert not isinstance(loaded.vectors, np.memmap)
    np.testing.assert_array_equal(loaded.vectors, s.vectors)


def test_from_arrays_keeps_float16_input_and_unicode_keys(tmp_path):
    keys = ["img:café/ü 1", "img:東京"]
    s = FeatureStore.from_arrays(tmp_path / "s", keys, np.ones((2, 3), np.float16))
    assert s.vectors.dtype == np.float16 and FeatureStore.open(tmp_path / "s").keys == keys


def test_sharded_writes_equal_one_write(tmp_path):
    keys, vecs = _data()
    s = _write_all(tmp_path / "a", keys, vecs, shard_size=7, batch=3)
    assert s.keys == keys
    np.testing.assert_array_equal(s.vectors, vecs)
    assert not list((tmp_path / "a" / "shards").iterdir()), "consolidation leaves no shard behind"


def test_extend_appends_and_refuses_other_identity(tmp_path):
    keys, vecs = _data()
    _write_all(tmp_path / "s", keys[:20], vecs[:20])
    s = _write_all(tmp_path / "s", keys[20:], vecs[20:], mode="extend")
    assert s.keys == keys
    np.testing.assert_array_equal(s.vectors, vecs)
    with pytest.raises(StoreMismatchError, match=r"layer: store has 'penultimate', this run has 'fc7'"):
        FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=dict(META, layer="fc7"), mode="extend")
    with pytest.raises(StoreMismatchError, match="dim: store has 12, this run has 13"):
        FeatureStore.create(tmp_path / "s", dim=13, dtype="float32", metadata=META, mode="extend")
    with pytest.raises(StoreMismatchError, match="dtype"):
        FeatureStore.create(tmp_path / "s", dim=12, dtype="float16", metadata=META, mode="extend")
    assert "weights" in IDENTITY_FIELDS and "arch" in IDENTITY_FIELDS


def test_modes(tmp_path):
    keys, vecs = _data(10)
    _write_all(tmp_path / "s", keys, vecs)
    with pytest.raises(FileExistsError, match="mode='extend'"):
        FeatureStore.create(tmp_path / "s", dim=12, metadata=META)
    s = _write_all(tmp_path / "s", keys[:3], vecs[:3], mode="overwrite")
    assert s.keys == keys[:3]
    with pytest.raises(ValueError, match="mode: expected"):
        FeatureStore.create(tmp_path / "t", dim=12, mode="append")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    for mode in ("create", "extend", "overwrite"):
        with pytest.raises(FileExistsError, match="not a feature store"):
            FeatureStore.create(tmp_path / "other", dim=12, mode=mode)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_write_errors_name_the_culprit(tmp_path):
    keys, vecs = _data(4)
    with FeatureStore.create(tmp_path / "s", dim=12, dtype="float16", metadata=META) as w:
        w.write(keys[:2], vecs[:2])
        with pytest.raises(ValueError, match=r"already in feature store.*img:dir/001"):
            w.write(keys[1:3], vecs[1:3])
        with pytest.raises(ValueError, match="expected features of dim 12, got 5"):
            w.write(keys[2:3], vecs[2:3, :5])
        with pytest.raises(ValueError, match=r"'img:dir/003'.*float16 range"):
            w.write(keys[3:4], vecs[3:4] * 1e5)
        with pytest.raises(ValueError, match="NaN or inf: 'img:dir/002'"):
            w.write(keys[2:3], np.full((1, 12), np.nan))
        with pytest.raises(ValueError, match="line break"):
            w.write(["img:a\nb"], vecs[:1])
        with pytest.raises(TypeError, match="one string"):
            w.write("img:x", vecs[:1])
    assert FeatureStore.open(tmp_path / "s").keys == keys[:2]
    with pytest.raises(ValueError, match="duplicate keys"):
        FeatureStore.from_arrays(tmp_path / "d", ["img:a", "img:a"], vecs[:2])


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="im2vec extract"):
        FeatureStore.open(tmp_path / "nothing")
    keys, vecs = _data(5)
    FeatureStore.from_arrays(tmp_path / "s", keys, vecs)
    (tmp_path / "s" / "keys.txt").write_text("img:only-one\n")
    with pytest.raises(ValueError, match="inconsistent: 1 keys"):
        FeatureStore.open(tmp_path / "s")
    with pytest.raises(KeyError, match="'img:zz' is not in feature store"):
        FeatureStore.from_arrays(tmp_path / "t", keys, vecs).get_vector("img:zz")


def test_skips_are_recorded_and_cleared_when_fixed(tmp_path):
    keys, vecs = _data(6)
    with FeatureStore.create(tmp_path / "s", dim=12, metadata=META) as w:
        w.write(keys[:3], vecs[:3])
        w.skip("img:bad", "truncated: image file is truncated")
    s = FeatureStore.open(tmp_path / "s")
    assert s.skipped == {"img:bad": "truncated: image file is truncated"}
    with pytest.raises(KeyError, match="skipped: truncated"):
        s.get_vector("img:bad")
    with FeatureStore.create(tmp_path / "s", dim=12, metadata=META, mode="extend") as w:
        assert w.skipped == {"img:bad": "truncated: image file is truncated"}
        w.write(["img:bad"], vecs[3:4])
    assert FeatureStore.open(tmp_path / "s").skipped == {}


# ----------------------------------------------------------------------------- crash safety


class Crash(Exception):
    pass


def test_crash_after_some_shards_then_resume_equals_clean(tmp_path, caplog):
    keys, vecs = _data(40)
    clean = _write_all(tmp_path / "clean", keys, vecs, shard_size=8, batch=4)
    w = FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META, shard_size=8)
    for s in range(0, 20, 4):  # 20 rows written, 16 committed in two shards, 4 buffered
        w.write(keys[s : s + 4], vecs[s : s + 4])
    del w  # the process dies: no close, no abort
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.store"):
        half = FeatureStore.open(tmp_path / "s")
    assert len(half) == 0 and "2 committed shard(s) with 16 rows are not consolidated" in caplog.text
    w = FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META, shard_size=8, mode="extend")
    assert w.done_keys == set(keys[:16])
    rest = [i for i, k in enumerate(keys) if k not in w.done_keys]
    for s in range(0, len(rest), 4):
        idx = rest[s : s + 4]
        w.write([keys[i] for i in idx], vecs[idx])
    w.close()
    resumed = FeatureStore.open(tmp_path / "s")
    assert resumed.keys == clean.keys
    np.testing.assert_array_equal(resumed.vectors, clean.vectors)


def test_crash_between_shard_data_and_commit_record(tmp_path, monkeypatch):
    keys, vecs = _data(20)
    calls = {"n": 0}
    real = FeatureStoreWriter._commit

    def dying_commit(self, path, record):
        calls["n"] += 1
        if calls["n"] >= 2:  # the second shard's data is on disk, its record never appears
            raise Crash
        real(self, path, record)

    monkeypatch.setattr(FeatureStoreWriter, "_commit", dying_commit)
    with pytest.raises(Crash):
        _write_all(tmp_path / "s", keys, vecs, shard_size=5, batch=5)
    assert (tmp_path / "s" / "shards" / "shard-000001.npy").exists()
    assert not (tmp_path / "s" / "shards" / "shard-000001.json").exists()
    monkeypatch.setattr(FeatureStoreWriter, "_commit", real)
    w = FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META, shard_size=5, mode="extend")
    assert w.done_keys == set(keys[:5])
    assert not (tmp_path / "s" / "shards" / "shard-000001.npy").exists(), "uncommitted data is removed"
    w.write(keys[5:], vecs[5:])
    w.close()
    s = FeatureStore.open(tmp_path / "s")
    assert s.keys == keys
    np.testing.assert_array_equal(s.vectors, vecs)


@pytest.mark.parametrize("replaces_done", [0, 1, 2, 3])
def test_crash_during_consolidation_rolls_forward(tmp_path, monkeypatch, replaces_done):
    keys, vecs = _data(30)
    _write_all(tmp_path / "s", keys[:10], vecs[:10])  # an existing store being extended
    real_replace = os.replace
    state = {"in_journal": False, "n": 0}
    real_roll = store_mod._roll_forward

    def roll(path, recovering=True):
        state["in_journal"] = not recovering
        return real_roll(path, recovering)

    def replace(src, dst):
        if state["in_journal"]:
            if state["n"] == replaces_done:
                raise Crash
            state["n"] += 1
        return real_replace(src, dst)

    monkeypatch.setattr(store_mod, "_roll_forward", roll)
    monkeypatch.setattr(store_mod.os, "replace", replace)
    with pytest.raises(Crash):
        _write_all(tmp_path / "s", keys[10:], vecs[10:], mode="extend", shard_size=6)
    monkeypatch.setattr(store_mod.os, "replace", real_replace)
    monkeypatch.setattr(store_mod, "_roll_forward", real_roll)
    assert (tmp_path / "s" / "consolidate.json").exists()
    s = FeatureStore.open(tmp_path / "s")  # finishes the journal
    assert not (tmp_path / "s" / "consolidate.json").exists()
    assert s.keys == keys and s.metadata["count"] == 30
    np.testing.assert_array_equal(s.vectors, vecs)
    assert not list((tmp_path / "s" / "shards").glob("shard-*"))


def test_exception_inside_with_commits_complete_rows_only(tmp_path):
    keys, vecs = _data(12)
    with pytest.raises(Crash):
        with FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META, shard_size=100) as w:
            w.write(keys[:7], vecs[:7])
            raise Crash
    s = FeatureStore.consolidate(tmp_path / "s")
    assert s.keys == keys[:7]
    np.testing.assert_array_equal(s.vectors, vecs[:7])


# ----------------------------------------------------------------------------- PCA


def test_pca_matches_svd():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 10)) @ rng.normal(size=(10, 10)) + 5
    p = PCA.fit(x.astype(np.float32), 4)
    _, sv, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    for a, b in zip(p.components, vt[:4], strict=True):
        assert abs(abs(float(a @ b)) - 1) < 1e-4
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(4), atol=1e-5)
    np.testing.assert_allclose(p.explained_variance_ratio, (sv**2 / (sv**2).sum())[:4], rtol=1e-4)
    z = p.transform(x)
    np.testing.assert_allclose(z, (x - x.mean(0)) @ p.components.T, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="cannot keep 11 components"):
        PCA.fit(x, 11)


@pytest.mark.parametrize("apply", ["on_read", "on_write"])
def test_store_pca(tmp_path, apply):
    keys, vecs = _data(60, dim=16)
    s = FeatureStore.from_arrays(tmp_path / "s", keys, vecs, dtype="float32").fit_pca(5, apply=apply)
    assert s.dim == 5 and s.vectors.shape == (60, 5)
    assert s.metadata["pca"]["n_components"] == 5 and s.metadata["pca"]["applied"] == apply
    expect = s.pca.transform(vecs)
    np.testing.assert_allclose(s.vectors, expect, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s.get_vector(keys[3]), expect[3], rtol=1e-4, atol=1e-4)
    again = FeatureStore.open(tmp_path / "s")
    np.testing.assert_allclose(again.vectors, expect, rtol=1e-4, atol=1e-4)
    assert json.loads((tmp_path / "s" / "metadata.json").read_text())["pca"]["applied"] == apply
    with pytest.raises(ValueError, match="already has a PCA"):
        again.fit_pca(3)


# ----------------------------------------------------------------------------- Im2Vec takes a store


def _im2vec():
    try:
        from gensim_im2vec import Im2Vec
    except ImportError as e:  # the compiled kernel is built by `make build`
        pytest.skip(f"gensim_im2vec.Im2Vec not importable ({e}); run `make build`")
    return Im2Vec


@pytest.mark.parametrize("mmap", [True, False])
def test_im2vec_trains_on_store(tmp_path, mmap):
    Im2Vec = _im2vec()
    rng = np.random.default_rng(0)
    protos = {"dog": rng.normal(size=24), "car": rng.normal(size=24)}
    keys, rows, docs = [], [], []
    for i in range(120):
        cls = ("dog", "car")[i % 2]
        keys.append(f"img:{i}")
        rows.append(protos[cls] + 0.3 * rng.normal(size=24))
        docs.append([f"img:{i}", cls, ("puppy", "wheel")[i % 2], "photo"])
    FeatureStore.from_arrays(tmp_path / "s", keys, np.array(rows), dtype="float16")
    store = FeatureStore.open(tmp_path / "s", mmap=mmap)
    assert isinstance(store.vectors, np.memmap) == mmap
    model = Im2Vec(docs, image_features=store, vector_size=16, sg=1, min_count=1, epochs=15, workers=1, seed=1)
    assert model.is_image("img:3")
    assert np.isfinite(model.wv["img:3"]).all()
    # images sit nearer their own tag than the other class's tag (by the trained tag score)
    tags = [t for t, _ in model.predict_tags(store.get_vector("img:0"), topn=3)]
    assert "dog" in tags or "puppy" in tags


def test_float16_underflow_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.store"):
        FeatureStore.from_arrays(tmp_path / "s", ["img:tiny"], np.full((1, 4), 1e-9, np.float32), dtype="float16")
    assert "became all zeros in float16" in caplog.text and "'img:tiny'" in caplog.text
