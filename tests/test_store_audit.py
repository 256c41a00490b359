"""FeatureStore audit: a lost metadata.json, stale handles that rewrite metadata, a lock kept by an
orphaned child of a killed writer, and damaged skipped.json / missing keys.txt named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest

from gensim_im2vec import store as store_mod
from gensim_im2vec.store import FeatureStore

fcntl = pytest.importorskip("fcntl")


def _vecs(n, dim=8, seed=0):
    return np.random.default_rng(seed).random((n, dim), dtype=np.float32) + 0.1


def _snapshot(d):
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != ".lock"}


# ----------------------------------------------------------------------------- 1. lost metadata.json


def test_a_store_that_lost_its_metadata_is_never_emptied_and_is_named(tmp_path):
    d = tmp_path / "feats"
    FeatureStore.from_arrays(d, [f"img:{i}" for i in range(10)], _vecs(10, 4))
    (d / "metadata.json").unlink()
    before = _snapshot(d)
    for call in (lambda: FeatureStore.open(d), lambda: FeatureStore.consolidate(d)):
        with pytest.raises(FileNotFoundError) as e:
            call()
        msg = str(e.value)
        assert "lost its metadata.json" in msg and "features.npy (10 rows of dim 4)" in msg, msg
        assert "keys.txt (10 keys)" in msg and "mode='overwrite'" in msg and "Restore" in msg, msg
        assert "shards" not in msg, msg  # shards/ is empty: there is no unfinished extraction
    for mode in ("extend", "create"):
        with pytest.raises(FileExistsError, match=r"lost its metadata.json.*mode='overwrite'"):
            FeatureStore.create(d, dim=4, dtype="float32", mode=mode)
    with pytest.raises(FileExistsError, match="lost its metadata.json"):
        FeatureStore.from_arrays(d, ["img:new"], _vecs(1, 4), mode="extend")
    assert _snapshot(d) == before  # not a row, key or byte lost
    s = FeatureStore.from_arrays(d, ["img:new"], _vecs(1, 4), mode="overwrite")  # the way out replaces them
    assert s.keys == ["img:new"]


def test_lost_metadata_without_shards_is_named_with_a_way_out_that_works(tmp_path):
    d = tmp_path / "feats"
    FeatureStore.from_arrays(d, [f"img:{i}" for i in range(3)], _vecs(3, 4))
    (d / "metadata.json").unlink()
    (d / "shards").rmdir()  # no longer recognisably a store: mode='overwrite' refuses it too
    before = _snapshot(d)
    for mode in ("extend", "create", "overwrite"):
        with pytest.raises(FileExistsError, match=r"lost its metadata.json.*move features.npy and keys.txt out"):
            FeatureStore.create(d, dim=4, dtype="float32", mode=mode)
    with pytest.raises(FileNotFoundError, match=r"lost its metadata.json.*move features.npy and keys.txt out"):
        FeatureStore.open(d)
    assert _snapshot(d) == before


def test_a_store_interrupted_before_its_metadata_is_still_resumed(tmp_path):
    d = tmp_path / "feats"
    (d / "shards").mkdir(parents=True)  # what a writer killed before its first metadata.json leaves
    (d / "features.npy").write_bytes(store_mod._header_bytes("float32", 0, 4))
    (d / "keys.txt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no feature store .*\(no metadata.json\)"):
        FeatureStore.open(d)
    with FeatureStore.create(d, dim=4, dtype="float32", mode="extend") as w:
        w.write(["img:a"], _vecs(1, 4))
    assert FeatureStore.open(d).keys == ["img:a"]


# ----------------------------------------------------------------------------- 2. stale handles


@pytest.mark.parametrize("apply", ["on_read", "on_write"])
def test_fit_pca_on_an_older_handle_keeps_the_rows_appended_since(tmp_path, apply):
    d = tmp_path / "feats"
    old_keys, new_keys = [f"img:{i}" for i in range(20)], [f"img:new{i}" for i in range(10)]
    vecs = _vecs(30)
    FeatureStore.from_arrays(d, old_keys, vecs[:20])
    s = FeatureStore.open(d)  # e.g. held in a notebook
    with FeatureStore.create(d, dim=8, dtype="float32", mode="extend") as w:  # another writer appends
        w.write(new_keys, vecs[20:])
    s2 = s.fit_pca(4, apply=apply)
    assert s2.keys == old_keys + new_keys
    s3 = FeatureStore.open(d)
    assert s3.keys == old_keys + new_keys and s3.metadata["count"] == 30 and s3.dim == 4
    np.testing.assert_allclose(s3.get_vector("img:new3"), s3.pca.transform(vecs[23:24])[0], rtol=1e-3, atol=1e-3)
    with FeatureStore.create(d, dim=s3.metadata["dim"], dtype="float32", mode="extend",
                             pca=s3.pca if apply == "on_write" else None) as w:
        assert w.done_keys == set(old_keys + new_keys)  # the next writer cuts nothing off
    assert (d / "keys.txt").read_text().splitlines() == old_keys + new_keys


def test_fit_pca_on_a_handle_of_a_replaced_store_is_refused(tmp_path):
    d = tmp_path / "feats"
    FeatureStore.from_arrays(d, [f"img:{i}" for i in range(20)], _vecs(20))
    s = FeatureStore.open(d)
    FeatureStore.from_arrays(d, [f"img:x{i}" for i in range(12)], _vecs(12, 6), mode="overwrite")
    before = _snapshot(d)
    with pytest.raises(ValueError, match=r"changed since this handle was opened.*reopen it with FeatureStore.open"):
        s.fit_pca(4)
    assert _snapshot(d) == before
    assert FeatureStore.open(d).keys == [f"img:x{i}" for i in range(12)]


# ----------------------------------------------------------------------------- 3. a lock an orphan keeps

_FORK_AND_DIE = r"""
import os, signal, sys, time
import numpy as np
from gensim_im2vec.store import FeatureStore
w = FeatureStore.create(sys.argv[1], dim=4, dtype="float32", shard_size=2)
w.write(["img:a", "img:b", "img:c"], np.ones((3, 4)))
child = os.fork()  # like a DataLoader decode worker: it inherits the lock's descriptor
if child == 0:
    time.sleep(600)  # (killed by the test: it outlives the store's next writer)
    os._exit(0)
print(child, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_child_forked_by_a_killed_writer_does_not_keep_the_store_locked(tmp_path, monkeypatch):
    # A lock the child kept would be waited for ORPHAN_WAIT (60 s here), then refused: the child lives
    # on until the test kills it, so the next writer gets the store only if the child let the lock go.
    # (The wait stays: the child closes its copy as it starts, which may be a moment after its parent
    # died.) It asserted the writer's time (< 30 s, the child's sleep before): a clock on a busy machine.
    monkeypatch.setattr(store_mod, "ORPHAN_WAIT", 60.0, raising=False)
    d = tmp_path / "s"
    p = subprocess.Popen([sys.executable, "-c", _FORK_AND_DIE, str(d)], stdout=subprocess.PIPE, text=True)
    child = int(p.stdout.readline())
    try:
        p.wait(timeout=60)
        assert p.returncode == -signal.SIGKILL
        with FeatureStore.create(d, dim=4, dtype="float32", mode="extend") as w:
            assert w.done_keys == {"img:a", "img:b", "img:c"}  # its committed shard is kept
        os.kill(child, 0)  # the child still runs: it did not free the lock by ending
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _hold_lock(d, pid):
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{pid}\n".encode(), 0)
    return fd


def test_a_lock_held_after_its_writer_died_is_waited_for_then_explained(tmp_path, monkeypatch):
    d = tmp_path / "s"
    FeatureStore.from_arrays(d, ["img:a"], _vecs(1, 4))
    dead = _dead_pid()
    fd = _hold_lock(d, dead)  # what an orphaned decode worker of the killed writer `dead` keeps
    try:
        monkeypatch.setattr(store_mod, "ORPHAN_WAIT", 0.3, raising=False)
        with pytest.raises(store_mod.StoreLockedError) as e:
            FeatureStore.create(d, dim=4, dtype="float32", mode="extend")
        msg = str(e.value)
        assert f"pid {dead}) has ended" in msg and "Retry in a few seconds" in msg, msg
        assert "being written by another writer" not in msg, msg
        monkeypatch.setattr(store_mod, "ORPHAN_WAIT", 20.0, raising=False)
        threading.Timer(0.5, os.close, (fd,)).start()  # the orphan exits: the lock is free
        fd = None
        with FeatureStore.create(d, dim=4, dtype="float32", mode="extend") as w:
            w.write(["img:b"], _vecs(1, 4))
        assert FeatureStore.open(d).keys == ["img:a", "img:b"]
    finally:
        if fd is not None:
            os.close(fd)


def test_a_lock_of_a_live_writer_is_still_refused_at_once(tmp_path, monkeypatch):
    d = tmp_path / "s"
    fd = _hold_lock(d, os.getppid())  # a live process
    waits = []
    try:
        # the orphan's wait is a loop of sleeps; counted, not timed (a clock on a busy machine). The store's own
        # `time` only: another thread of this process that sleeps (one a test before left) is not counted
        clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
        clock.sleep = waits.append
        monkeypatch.setattr(store_mod, "time", clock)
        monkeypatch.setattr(store_mod, "ORPHAN_WAIT", 1.0, raising=False)  # (a wrong wait: 1 s of no-op sleeps)
        with pytest.raises(store_mod.StoreLockedError, match=rf"another writer \(pid {os.getppid()}\)"):
            FeatureStore.create(d, dim=4, dtype="float32")
        assert waits == []  # refused without the orphan's wait
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- 4. damaged files named


@pytest.mark.parametrize("content", ["[1, 2]", '{"img:x": 3}'])
def test_a_skipped_json_that_is_not_an_object_is_named(tmp_path, content):
    d = tmp_path / "s"
    FeatureStore.from_arrays(d, ["img:a"], _vecs(1, 4))
    (d / "skipped.json").write_text(content)
    for call in (lambda: FeatureStore.open(d),
                 lambda: FeatureStore.create(d, dim=4, dtype="float32", mode="extend")):
        with pytest.raises(ValueError, match=r"skipped.json' is damaged: expected a JSON object.*delete it"):
            call()
    (d / "skipped.json").unlink()  # the fix the message names
    assert FeatureStore.open(d).keys == ["img:a"]


def test_a_missing_keys_txt_is_named(tmp_path):
    d = tmp_path / "s"
    FeatureStore.from_arrays(d, ["img:a", "img:b"], _vecs(2, 4))
    (d / "keys.txt").unlink()
    meta = json.loads((d / "metadata.json").read_text())
    for call in (lambda: FeatureStore.open(d), lambda: FeatureStore.open(d, mmap=False),
                 lambda: FeatureStore.create(d, dim=4, dtype="float32", mode="extend")):
        with pytest.raises(FileNotFoundError, match=r"keys.txt' is missing: the feature store is incomplete.*Restore"):
            call()
    assert json.loads((d / "metadata.json").read_text()) == meta



def test_overwrite_refuses_a_store_holding_a_file_of_the_users_before_deleting_anything(tmp_path):
    """The demo rewrites a feature store whose inputs changed (mode='overwrite'); with a file of the
    user's in it, the store's files were deleted and then the folder refused as the user's: the rows
    gone and the run failed. Now it is refused first, nothing deleted."""
    d = tmp_path / "s"
    FeatureStore.from_arrays(d, ["img:a", "img:b"], _vecs(2, 4))
    (d / "mynotes.txt").write_text("keep", encoding="utf-8")
    before = sorted(p.name for p in d.iterdir())
    with pytest.raises(FileExistsError, match=r"also holds 'mynotes.txt', which are not the store's"):
        FeatureStore.create(d, dim=4, dtype="float32", mode="overwrite")
    assert sorted(p.name for p in d.iterdir()) == before and FeatureStore.open(d).keys == ["img:a", "img:b"]
    (d / "mynotes.txt").unlink()
    with FeatureStore.create(d, dim=4, dtype="float32", mode="overwrite") as w:
        w.write(["img:c"], _vecs(1, 4))
    assert FeatureStore.open(d).keys == ["img:c"]
