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
    keys = ["img:café/ü%201", "img:東京"]
    s = FeatureStore.from_arrays(tmp_path / "s", keys, np.ones((2, 3), np.float16))
    assert s.vectors.dtype == np.float16 and FeatureStore.open(tmp_path / "s").keys == keys


def test_a_key_with_whitespace_is_refused_with_its_encoding(tmp_path):
    # a document line is split on whitespace: 'img:my cat' could never be named by one
    with pytest.raises(ValueError, match=r"'img:my cat' contains whitespace.*%XX.*encode_key"):
        FeatureStore.from_arrays(tmp_path / "s", ["img:my cat"], np.ones((1, 3), np.float32))


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
    # placed from the store's (float16) features, an image's nearest words by cosine are its own class's
    words = [t for t, _ in model.similar_by_image(store.get_vector("img:0"), topn=2, restrict="words")]
    assert "dog" in words or "puppy" in words
    assert "car" not in words and "wheel" not in words


def test_float16_underflow_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.store"):
        FeatureStore.from_arrays(tmp_path / "s", ["img:tiny"], np.full((1, 4), 1e-9, np.float32), dtype="float16")
    assert "became all zeros in float16" in caplog.text and "'img:tiny'" in caplog.text


# ----------------------------------------------------------------------------- one writer at a time (issue 12)

_WRITER = r"""
import sys, time
import numpy as np
from gensim_im2vec import store as store_mod
from gensim_im2vec.store import FeatureStore

StoreLockedError = getattr(store_mod, "StoreLockedError", ())  # () before the lock existed: catch nothing
path, tag, n, retry = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "retry"
while True:
    try:
        w = FeatureStore.create(path, dim=4, dtype="float32", mode="extend", shard_size=7)
        break
    except StoreLockedError:
        if not retry:
            raise
        time.sleep(0.01)
print("locked", flush=True)
if not retry:
    sys.stdin.readline()  # the test says when to go on
keys = [f"img:w{tag}/{i}" for i in range(n)]
vecs = np.array([[tag, i, 1.0, 1.0] for i in range(n)], dtype=np.float32)
for s in range(0, n, 5):
    w.write(keys[s : s + 5], vecs[s : s + 5])
w.close()
print("done", flush=True)
"""


def _run_writer(path, tag, n, retry=False, **kw):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(tag), str(n), "retry" if retry else "wait"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _assert_rows_are_their_writers(store, tags, n):
    assert sorted(store.keys) == sorted(f"img:w{t}/{i}" for t in tags for i in range(n))
    for key in store.keys:
        tag, i = key[len("img:w"):].split("/")
        np.testing.assert_array_equal(store.get_vector(key), [int(tag), int(i), 1, 1])


def test_a_second_writer_process_is_refused_with_the_holders_pid(tmp_path):
    path = tmp_path / "s"
    first = _run_writer(path, 1, 20)
    assert first.stdout.readline().strip() == "locked"
    try:
        second = _run_writer(path, 2, 20)
        out, err = second.communicate(timeout=120)
        assert second.returncode != 0
        assert "StoreLockedError" in err and f"pid {first.pid}" in err, err[-2000:]
        with pytest.raises(store_mod.StoreLockedError, match=rf"another writer \(pid {first.pid}\)"):
            FeatureStore.create(path, dim=4, dtype="float32", mode="extend")
    finally:
        out, err = first.communicate("go\n", timeout=120)
    assert first.returncode == 0, err[-2000:]
    # the first writer lost nothing; once it is done, the second may write
    second = _run_writer(path, 2, 20)
    assert second.stdout.readline().strip() == "locked"
    out, err = second.communicate("go\n", timeout=120)
    assert second.returncode == 0, err[-2000:]
    _assert_rows_are_their_writers(FeatureStore.open(path), (1, 2), 20)


def test_two_processes_racing_for_one_store_lose_and_mix_nothing(tmp_path):
    path = tmp_path / "s"
    procs = [_run_writer(path, tag, 60, retry=True) for tag in (1, 2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        assert out.split() == ["locked", "done"]
    _assert_rows_are_their_writers(FeatureStore.open(path), (1, 2), 60)


def test_writers_in_one_process_take_turns(tmp_path):
    keys, vecs = _data(10)
    w = FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META)
    w.write(keys[:5], vecs[:5])
    with pytest.raises(store_mod.StoreLockedError, match=f"pid {os.getpid()}"):
        FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META, mode="extend")
    w.close()
    with FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META, mode="extend") as w2:
        w2.write(keys[5:], vecs[5:])
    s = FeatureStore.open(tmp_path / "s")
    assert s.keys == keys
    np.testing.assert_array_equal(s.vectors, vecs)


_CONSOLIDATE_AND_DIE = r"""
import os, signal, sys
import numpy as np
from gensim_im2vec import store as store_mod
from gensim_im2vec.store import FeatureStore

path, point, n_done = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = {"journal": False, "n": 0}
real_roll, real_replace, real_unlink, real_json = (store_mod._roll_forward, os.replace, os.unlink,
                                                   store_mod._atomic_write_json)

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def roll(p, recovering=True):
    state["journal"] = not recovering  # the writer's own roll-forward, not a recovery at start
    return real_roll(p, recovering)

def replace(src, dst):
    if state["journal"] and point == "replace":
        if state["n"] == n_done:
            die()
        state["n"] += 1
    return real_replace(src, dst)

def unlink(p, *a, **k):
    if state["journal"] and point == "delete":
        if state["n"] == n_done:
            die()
        state["n"] += 1
    return real_unlink(p, *a, **k)

def write_json(p, obj):
    if point == "journal" and p.name == store_mod.JOURNAL_FILE:
        die()
    return real_json(p, obj)

store_mod._roll_forward, store_mod._atomic_write_json = roll, write_json
os.replace, os.unlink = replace, unlink
rng = np.random.default_rng(0)
keys = [f"img:dir/{i:03d}" for i in range(30)]
vecs = (rng.random((30, 12), dtype=np.float32) + 0.05) * 10
with FeatureStore.create(path, dim=12, dtype="float32", mode="extend", shard_size=6,
                         metadata={"arch": "toy", "weights": "toy-v1", "layer": "penultimate",
                                   "preprocessing": "none"}) as w:
    w.write(keys[10:], vecs[10:])
print("not killed")
"""


@pytest.mark.parametrize("point,n_done", [("journal", 0), ("replace", 0), ("replace", 2), ("replace", 3),
                                          ("delete", 0), ("delete", 1), ("delete", 2)])
def test_kill_9_during_consolidation_then_open_and_extend(tmp_path, point, n_done):
    import signal
    import subprocess
    import sys

    keys, vecs = _data(30)
    _write_all(tmp_path / "s", keys[:10], vecs[:10])  # an existing store being extended
    proc = subprocess.run([sys.executable, "-c", _CONSOLIDATE_AND_DIE, str(tmp_path / "s"), point, str(n_done)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr[-2000:]
    s = FeatureStore.open(tmp_path / "s")  # finishes a journal, or keeps the old rows and the shards
    if point == "journal":  # died before the journal: the old rows, the shards wait for a writer
        assert s.keys == keys[:10]
        s = FeatureStore.consolidate(tmp_path / "s")  # the killed writer's lock is gone
    assert not (tmp_path / "s" / "consolidate.json").exists()
    assert s.keys == keys and s.metadata["count"] == 30
    np.testing.assert_array_equal(s.vectors, vecs)
    assert not list((tmp_path / "s" / "shards").glob("shard-*"))
    # the OS released the dead writer's lock: the store takes a new writer at once
    FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META, mode="extend").close()


# ----------------------------------------------------------------------------- damaged files (issue 12)


def _interrupted(path, keys, vecs, n_rows, shard_size=5):
    """A store with keys[:5] consolidated and the next rows in committed shards (a stopped run)."""
    _write_all(path, keys[:5], vecs[:5])
    w = FeatureStore.create(path, dim=12, dtype="float32", metadata=META, mode="extend", shard_size=shard_size)
    for s in range(5, 5 + n_rows, shard_size):
        w.write(keys[s : s + shard_size], vecs[s : s + shard_size])
    w.abort()


@pytest.mark.parametrize("damage", ["truncated_npy", "empty_npy", "truncated_record", "wrong_shape"])
def test_a_damaged_shard_is_redone_and_never_blocks_open(tmp_path, caplog, damage):
    keys, vecs = _data(20)
    path = tmp_path / "s"
    _interrupted(path, keys, vecs, 10)  # shards 1 and 2 (5 rows each) are committed
    shard = path / "shards" / "shard-000002"
    npy, rec = shard.with_suffix(".npy"), shard.with_suffix(".json")
    if damage == "truncated_npy":
        npy.write_bytes(npy.read_bytes()[:-7])
    elif damage == "empty_npy":
        npy.write_bytes(b"")
    elif damage == "truncated_record":
        rec.write_bytes(rec.read_bytes()[:40])
    else:
        np.save(npy, vecs[:4])
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.store"):
        s = FeatureStore.open(path)  # the consolidated rows are intact
    assert s.keys == keys[:5]
    assert "shard 2 is damaged" in caplog.text and "shard-000002" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.store"):
        w = FeatureStore.create(path, dim=12, dtype="float32", metadata=META, mode="extend", shard_size=5)
    assert w.done_keys == set(keys[:10]), "the damaged shard's images are redone"
    assert "removing it, its images are extracted again" in caplog.text
    rest = [i for i, k in enumerate(keys) if k not in w.done_keys]
    w.write([keys[i] for i in rest], vecs[rest])
    w.close()
    s = FeatureStore.open(path)
    assert sorted(s.keys) == sorted(keys)
    for k, v in zip(keys, vecs):
        np.testing.assert_array_equal(s.get_vector(k), v)


def test_a_duplicate_key_in_keys_txt_is_refused(tmp_path):
    keys, vecs = _data(5)
    FeatureStore.from_arrays(tmp_path / "s", keys, vecs)
    dup = keys[:3] + [keys[1]] + keys[4:]  # same count, the wrong row behind 'img:dir/001'
    (tmp_path / "s" / "keys.txt").write_text("".join(k + "\n" for k in dup))
    with pytest.raises(ValueError, match=r"keys.txt' lists 1 key\(s\) twice: 'img:dir/001' \(lines 2 and 4\)"):
        FeatureStore.open(tmp_path / "s")
    with pytest.raises(ValueError, match="twice"):
        FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", mode="extend")


@pytest.mark.parametrize("damage,culprit", [
    ("metadata", r"metadata.json' is damaged: not valid JSON"),
    ("keys_utf8", r"keys.txt' is damaged: invalid UTF-8 at byte 4 \(line 2\)"),
    ("features_truncated", r"features.npy' is damaged"),
    ("features_empty", r"features.npy' is damaged"),
])
@pytest.mark.parametrize("mmap", [True, False])
def test_damaged_store_files_are_named(tmp_path, damage, culprit, mmap):
    keys, vecs = _data(5)
    FeatureStore.from_arrays(tmp_path / "s", ["img", *keys[1:]], vecs)
    d = tmp_path / "s"
    if damage == "metadata":
        (d / "metadata.json").write_bytes((d / "metadata.json").read_bytes()[:50])
    elif damage == "keys_utf8":
        (d / "keys.txt").write_bytes(b"img\n\xff\xfe\n" + b"".join(k.encode() + b"\n" for k in keys[2:]))
    elif damage == "features_truncated":
        (d / "features.npy").write_bytes((d / "features.npy").read_bytes()[:-30])
    else:
        (d / "features.npy").write_bytes(b"")
    with pytest.raises(ValueError, match=culprit):
        FeatureStore.open(d, mmap=mmap)
