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
    with pytest.raises(ValueError, match=r"keys.txt' is damaged: it has 13 bytes, the store's committed keys take 60"):
        FeatureStore.open(tmp_path / "s")
    (tmp_path / "s" / "keys.txt").write_text("".join(f"img:abcd{i}\n" for i in range(6)))  # 60 bytes
    with pytest.raises(ValueError, match="inconsistent: 6 keys in keys.txt, metadata count 5"):
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


@pytest.mark.parametrize("step", ["rows", "keys", "skipped", "commit", "header", "delete"])
def test_an_append_interrupted_at_any_step_resumes(tmp_path, monkeypatch, step):
    keys, vecs = _data(30)
    path = tmp_path / "s"
    _write_all(path, keys[:10], vecs[:10])  # an existing store being extended
    inode = (path / "features.npy").stat().st_ino
    W = FeatureStoreWriter
    calls = {"n": 0}

    def crash_on(owner, name, after=False, nth=1):
        real = getattr(owner, name)

        def dying(*a, **k):
            calls["n"] += 1
            if calls["n"] == nth and not after:
                raise Crash
            out = real(*a, **k)
            if calls["n"] == nth and after:
                raise Crash
            return out

        monkeypatch.setattr(owner, name, dying)

    if step == "rows":  # the first shard's rows appended, the second's not
        crash_on(W, "_append_rows", nth=2)
    elif step == "keys":  # every row appended, no key yet
        crash_on(store_mod, "_keys_bytes", nth=1)
    elif step == "skipped":  # rows and keys appended, nothing committed
        real_json = store_mod._atomic_write_json
        monkeypatch.setattr(store_mod, "_atomic_write_json", lambda p, o: (_ for _ in ()).throw(Crash)
                            if p.name == "skipped.json" else real_json(p, o))
    elif step == "commit":  # committed, the header still says 10 rows
        crash_on(W, "_commit_metadata", after=True)
    elif step == "header":
        crash_on(W, "_set_header", after=True)
    else:
        crash_on(store_mod.Path, "unlink", nth=1)
    with pytest.raises(Crash):
        _write_all(path, keys[10:], vecs[10:], mode="extend", shard_size=6)
    monkeypatch.undo()
    committed = step in ("commit", "header", "delete")
    s = FeatureStore.open(path)  # readers see the committed store, never a half-appended one
    assert s.keys == (keys if committed else keys[:10])
    np.testing.assert_array_equal(s.vectors, vecs[: len(s.keys)])
    s = FeatureStore.consolidate(path)  # the next writer cuts off the tail and appends the shards again
    assert s.keys == keys and s.metadata["count"] == 30
    np.testing.assert_array_equal(s.vectors, vecs)
    np.testing.assert_array_equal(np.load(path / "features.npy"), vecs)  # plain numpy agrees (header)
    assert (path / "features.npy").stat().st_ino == inode, "appended in place, never replaced"
    assert (path / "keys.txt").read_text().splitlines() == keys
    assert not list((path / "shards").glob("shard-*"))


def test_close_appends_the_new_rows_and_rewrites_none_of_the_old(tmp_path):
    if not os.path.exists("/proc/self/io"):
        pytest.skip("counts written bytes with /proc/self/io (Linux)")
    rng = np.random.default_rng(0)
    n, dim = 20_000, 64
    keys = [f"img:{i:06d}" for i in range(n + 10)]
    vecs = rng.random((n + 10, dim), dtype=np.float32) + 0.1
    path = tmp_path / "s"
    FeatureStore.from_arrays(path, keys[:n], vecs[:n], metadata=META)  # 5 MB of rows
    before = {f: ((path / f).stat().st_ino, (path / f).read_bytes()) for f in ("features.npy", "keys.txt")}
    reader = FeatureStore.open(path)  # a reader that maps the file during the append

    def written():
        with open("/proc/self/io") as f:
            return int(next(line for line in f if line.startswith("wchar:")).split()[1])

    start = written()
    with FeatureStore.create(path, dim=dim, dtype="float32", metadata=META, mode="extend") as w:
        w.write(keys[n:], vecs[n:])
    spent = written() - start
    assert spent < 100_000, f"closing wrote {spent} bytes: the store's 5 MB were rewritten"
    offset = store_mod.npy_header(path / "features.npy")[3]
    for f, (inode, old) in before.items():
        assert (path / f).stat().st_ino == inode
        new = (path / f).read_bytes()
        skip = offset if f == "features.npy" else 0  # only the row count in the header changes
        assert new[skip : len(old)] == old[skip:]
    assert len((path / "features.npy").read_bytes()) == len(before["features.npy"][1]) + 10 * dim * 4
    np.testing.assert_array_equal(reader.vectors[-3:], vecs[n - 3 : n])  # its map is still valid
    s = FeatureStore.open(path)
    assert s.keys == keys and s.keys_sha256 != reader.keys_sha256
    np.testing.assert_array_equal(s.vectors, vecs)


def test_a_long_run_appends_its_shards_as_it_goes(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "APPEND_BYTES", 20 * 12 * 4)  # append every 20 rows
    keys, vecs = _data(50)
    w = FeatureStore.create(tmp_path / "s", dim=12, dtype="float32", metadata=META, shard_size=5)
    for s in range(0, 45, 5):
        w.write(keys[s : s + 5], vecs[s : s + 5])
    assert len(FeatureStore.open(tmp_path / "s")) == 40 and len(list((tmp_path / "s" / "shards").iterdir())) == 2
    w.write(keys[45:], vecs[45:])
    w.close()
    s = FeatureStore.open(tmp_path / "s")
    assert s.keys == keys
    np.testing.assert_array_equal(s.vectors, vecs)


def test_a_store_written_before_appends_is_extended(tmp_path, caplog):
    """A store whose keys.txt was replaced whole (no keys_bytes) and whose .npy header has no room
    for a longer row count: the first append records keys_bytes and rewrites the header once."""
    keys, vecs = _data(12)
    path = tmp_path / "s"
    _write_all(path, keys[:8], vecs[:8])
    meta = json.loads((path / "metadata.json").read_text())
    del meta["keys_bytes"]
    (path / "metadata.json").write_text(json.dumps(meta))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (8, 12), }"
    header += " " * (64 - 10 - len(header) - 1) + "\n"  # padded to 64 bytes, as NumPy < 1.22 wrote it
    raw = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")
    (path / "features.npy").write_bytes(raw + vecs[:8].tobytes())
    assert FeatureStore.open(path).keys == keys[:8]
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.store"):
        s = _write_all(path, keys[8:], vecs[8:], mode="extend")
    assert "rewriting features.npy once" in caplog.text
    assert s.keys == keys and s.metadata["keys_bytes"] == len((path / "keys.txt").read_bytes())
    np.testing.assert_array_equal(s.vectors, vecs)
    np.testing.assert_array_equal(np.load(path / "features.npy"), vecs)


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
    # many batches (an extraction with random weights, whose features are ~1e-8): one warning, then a sum
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.store"):
        with FeatureStore.create(tmp_path / "t", dim=4, dtype="float16", shard_size=2) as w:
            for i in range(5):
                w.write([f"img:{i}a", f"img:{i}b"], np.full((2, 4), 1e-9, np.float32))
            assert w.underflow.count == 10
    assert caplog.text.count("became all zeros in float16") == 1
    assert "10 row(s) written by this writer are all zeros" in caplog.text


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


_APPEND_AND_DIE = r"""
import os, signal, sys
import numpy as np
from gensim_im2vec import store as store_mod
from gensim_im2vec.store import FeatureStore, FeatureStoreWriter

path, point = sys.argv[1], sys.argv[2]
W = FeatureStoreWriter
calls = {"rows": 0}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

real_rows, real_commit, real_header, real_keys = W._append_rows, W._commit_metadata, W._set_header, store_mod._keys_bytes

def rows(self, f, r):
    calls["rows"] += 1
    if point == "rows" and calls["rows"] == 2:
        f.flush()
        die()
    return real_rows(self, f, r)

def keys(k):
    if point == "keys":
        die()
    return real_keys(k)

def commit(self, meta):
    if point == "commit":
        die()
    real_commit(self, meta)
    if point == "header":
        die()

def header(self, count):
    real_header(self, count)
    if point == "delete":
        die()

W._append_rows, W._commit_metadata, W._set_header, store_mod._keys_bytes = rows, commit, header, keys
rng = np.random.default_rng(0)
all_keys = [f"img:dir/{i:03d}" for i in range(30)]
vecs = (rng.random((30, 12), dtype=np.float32) + 0.05) * 10
with FeatureStore.create(path, dim=12, dtype="float32", mode="extend", shard_size=6,
                         metadata={"arch": "toy", "weights": "toy-v1", "layer": "penultimate",
                                   "preprocessing": "none"}) as w:
    for s in range(10, 30, 5):  # shards of 6 rows (and the last of 2)
        w.write(all_keys[s : s + 5], vecs[s : s + 5])
print("not killed")
"""


@pytest.mark.parametrize("point", ["rows", "keys", "commit", "header", "delete"])
def test_kill_9_during_an_append_then_open_and_extend(tmp_path, point):
    import signal
    import subprocess
    import sys

    keys, vecs = _data(30)
    path = tmp_path / "s"
    _write_all(path, keys[:10], vecs[:10])  # an existing store being extended
    proc = subprocess.run([sys.executable, "-c", _APPEND_AND_DIE, str(path), point],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr[-2000:]
    s = FeatureStore.open(path)  # the committed store: the old rows, or all of them once committed
    assert s.keys == (keys if point in ("header", "delete") else keys[:10])
    np.testing.assert_array_equal(s.vectors, vecs[: len(s)])
    s = FeatureStore.consolidate(path)  # the killed writer's lock is gone; the tail is cut off
    assert s.keys == keys and s.metadata["count"] == 30
    np.testing.assert_array_equal(s.vectors, vecs)
    np.testing.assert_array_equal(np.load(path / "features.npy"), vecs)
    assert not list((path / "shards").glob("shard-*"))
    # the OS released the dead writer's lock: the store takes a new writer at once
    FeatureStore.create(path, dim=12, dtype="float32", metadata=META, mode="extend").close()


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
