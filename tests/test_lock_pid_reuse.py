"""A killed writer's pid that the kernel has given to another process since (pid reuse: common on a
long-running machine and in a container) is not taken for the writer.

The lock files (``output_lock``'s ``.NAME.lock``, a store's or data set's ``.lock``) and a data set
build's record named the writer by its pid alone: once a kill -9'd writer's pid belonged to an
unrelated live process, readers said "is writing it now" forever (a split: "wait for that process to
finish"; a store: "being written by pid N, open it again when the writer has finished"; a data set: "its
build is still running"), and a store's writer refused by a lock that a killed writer's decode worker
kept was told "being written by another writer" instead of "a process it started holds it". They record
when the writer started now (``start=BOOT_ID/TICKS``, Linux): a live process of that pid that started at
another time, or in another boot, is not the writer. Here the "reused pid" is a live process of this
test (``sleep``, or the parent) named with another start; files without a start (earlier versions) are
read as before."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from gensim_im2vec import store as store_mod
from gensim_im2vec.fileio import output_lock, pid_alive, process_start, read_lock

pytestmark = pytest.mark.skipif(process_start() is None, reason="no /proc to read a process's start from (not Linux)")


@pytest.fixture
def other():
    """A live process that is not the writer: the one the kernel gave a killed writer's pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _other_start(pid: int) -> str:
    """A start that is not `pid`'s: the killed writer's, who had that pid before it (same boot, earlier)."""
    boot, ticks = process_start(pid).split("/")
    return f"{boot}/{int(ticks) - 1}"


def _lock_text(pid: int, holder: str | None, start: str | None) -> str:
    return f"{pid}\n{holder or ''}\n" + (f"start={start}\n" if start else "")


def test_a_live_pid_with_another_start_does_not_run(other):
    assert pid_alive(other) and pid_alive(other, process_start(other))  # the pid alone, or its own start: it runs
    assert not pid_alive(other, _other_start(other))  # another process had that pid
    boot, ticks = process_start(other).split("/")
    assert not pid_alive(other, f"{'0' * len(boot)}/{ticks}")  # the same ticks in an earlier boot
    assert pid_alive(os.getpid(), process_start())
    assert not pid_alive(os.getpid(), _other_start(os.getpid()))  # this pid's earlier holder: not this process


def test_the_lock_file_names_the_holder_and_its_start(tmp_path):
    with output_lock(tmp_path / "out", lambda pid: pid, holder="im2vec split"):
        text = (tmp_path / ".out.lock").read_bytes()
    assert read_lock(text) == (str(os.getpid()), "im2vec split", process_start())
    assert read_lock(b"123\nim2vec split\n") == ("123", "im2vec split", None)  # an earlier version's file


def _incomplete_split(folder):
    from gensim_im2vec.split import FORMAT

    folder.mkdir()
    (folder / "split.json").write_text(json.dumps({"format": FORMAT, "complete": False, "config": {}}))
    (folder / "test.jsonl").write_text('{"key": "img:0", "tags": ["a"]}\n')


def test_a_split_killed_before_its_pid_was_reused_is_not_said_to_be_written_now(tmp_path, other):
    """The killed split's lock file names its pid, now `other`'s: "is writing it now. Wait for that process
    to finish" sent the user waiting on an unrelated process; it says the split stopped, and how to redo it."""
    from gensim_im2vec import evaluate as ev

    _incomplete_split(tmp_path / "s")
    lock = tmp_path / ".s.lock"
    lock.write_text(_lock_text(other, "im2vec split", _other_start(other)))
    with pytest.raises(ValueError, match="stopped before it finished") as e:
        ev.load_tagged_jsonl(tmp_path / "s" / "test.jsonl")
    assert "is writing it now" not in str(e.value)
    for start in (process_start(other), None):  # that process itself, or a file without a start: as before
        lock.write_text(_lock_text(other, "im2vec split", start))
        with pytest.raises(ValueError, match=rf"an `im2vec split` \(pid {other}\) is writing it now"):
            ev.load_tagged_jsonl(tmp_path / "s" / "test.jsonl")
    lock.write_text(_lock_text(other, "im2vec split", _other_start(other)))
    with output_lock(tmp_path / "s", lambda pid: pid, folder=True, holder="im2vec split"):  # the next split takes it
        assert read_lock(lock.read_bytes())[0] == str(os.getpid())


def test_a_store_whose_writer_pid_was_reused_has_no_writer(tmp_path, other):
    d = tmp_path / "s"
    store_mod.FeatureStore.from_arrays(d, ["img:a"], np.ones((1, 4), np.float32))
    (d / store_mod.LOCK_FILE).write_text(_lock_text(other, None, _other_start(other)))
    assert store_mod._writer_pid(d) is None
    (d / store_mod.LOCK_FILE).write_text(_lock_text(other, None, process_start(other)))
    assert store_mod._writer_pid(d) == other
    (d / store_mod.LOCK_FILE).write_text(f"{other}\n")  # an earlier version's file: the pid alone
    assert store_mod._writer_pid(d) == other


def test_a_store_lock_kept_by_a_killed_writers_worker_is_explained_when_its_pid_was_reused(tmp_path, monkeypatch):
    """The lock is held (by what the killed writer started), and its file names the killed writer's pid, which
    the parent of this test has now: it was refused as "being written by another writer (pid N)"."""
    d = tmp_path / "s"
    d.mkdir()
    fd = os.open(d / store_mod.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # (another open file: this process is refused too)
        os.pwrite(fd, _lock_text(os.getppid(), None, _other_start(os.getppid())).encode(), 0)
        monkeypatch.setattr(store_mod, "ORPHAN_WAIT", 0.0)
        with pytest.raises(store_mod.StoreLockedError) as e:
            store_mod.FeatureStore.create(d, dim=4, dtype="float32")
        assert f"pid {os.getppid()}) has ended" in str(e.value) and "another writer" not in str(e.value), e.value
        os.ftruncate(fd, 0)
        os.pwrite(fd, _lock_text(os.getppid(), None, process_start(os.getppid())).encode(), 0)
        with pytest.raises(store_mod.StoreLockedError, match=rf"another writer \(pid {os.getppid()}\)"):
            store_mod.FeatureStore.create(d, dim=4, dtype="float32")
    finally:
        os.close(fd)


def test_a_data_set_build_killed_before_its_pid_was_reused_is_not_said_to_run(tmp_path, other, caplog):
    from gensim_im2vec import datasets

    (tmp_path / "ds").mkdir()
    record = {"name": "emoji", "limit": None, "pid": other, "started": "2026-01-01T00:00:00+0000"}
    (tmp_path / "ds" / datasets.UNFINISHED_BUILD).write_text(json.dumps({**record, "pid_start": _other_start(other)}))
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.datasets"):
        datasets.warn_unfinished_build(tmp_path / "ds")
    assert "did not finish" in caplog.text and "still running" not in caplog.text, caplog.text
    caplog.clear()
    (tmp_path / "ds" / datasets.UNFINISHED_BUILD).write_text(json.dumps(record))  # an earlier version's: as before
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.datasets"):
        datasets.warn_unfinished_build(tmp_path / "ds")
    assert f"(pid {other}) is still running" in caplog.text, caplog.text


def test_a_data_set_build_records_its_start(tmp_path, monkeypatch):
    from gensim_im2vec import datasets

    seen = {}

    def look(*a, **k):
        seen.update(datasets.unfinished_build(tmp_path / "ds"))
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "list_datasets", lambda: ["emoji"])
    with pytest.raises(KeyboardInterrupt), datasets._start_build(tmp_path / "ds", "emoji"):
        look()
    assert seen["pid"] == os.getpid() and seen["pid_start"] == process_start()
