"""Two commands writing one output at once: the second is refused, naming the first (issue: resume audit 43).

`im2vec train --resumable` run a second time while the first still ran took the first's checkpoint for an
interrupted run ("resuming the interrupted run saved in ...") and trained beside it into the same files; two
`im2vec split` into one folder left one's train.txt beside the other's test.jsonl. The first holds
``.OUTPUT.lock`` (``flock``) beside its output while it writes; here a child process holds it as that first
command would."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore

_HOLDER = ("import fcntl, os, sys\n"
           "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
           "fcntl.flock(fd, fcntl.LOCK_EX)\n"
           "os.write(fd, f'{os.getpid()}\\n'.encode())\n"
           "print('held', flush=True)\n"
           "sys.stdin.read()\n")


@pytest.fixture
def holder():
    """Hold the single-writer lock file `path` in another process, as a running command does."""
    procs = []

    def hold(path):
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield hold
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=30)


@pytest.fixture
def data(tmp_path):
    keys = [f"img:{i}" for i in range(8)]
    FeatureStore.from_arrays(tmp_path / "store", keys, np.random.default_rng(0).random((8, 8), np.float32) + 0.1)
    words = ["cat", "dog", "sun", "sea"]
    (tmp_path / "docs.txt").write_text("".join(f"{k} {words[i % 4]} {words[(i + 1) % 4]}\n"
                                               for i, k in enumerate(keys)) * 3)
    return tmp_path


pytestmark = pytest.mark.skipif(os.name != "posix", reason="the lock is flock's")


def test_a_second_train_into_the_same_output_is_refused_and_leaves_the_first_runs_checkpoint(data, holder,
                                                                                             monkeypatch):
    monkeypatch.chdir(data)
    args = ["train", "docs.txt", "-f", "store", "-o", "m.model", "--resumable", "--min-count", "1", "--workers", "1",
            "--epochs", "3", "--vector-size", "4"]
    first = holder(data / ".m.model.lock")  # the first run, still training
    (data / "m.model.checkpoint").write_bytes(b"the first run's checkpoint")  # (not read: refused before)
    result = CliRunner().invoke(main, args)
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"'m.model' is being written by another `im2vec train` (pid {first.pid})" in said
    assert "resuming" not in said
    assert (data / "m.model.checkpoint").read_bytes() == b"the first run's checkpoint"
    assert not (data / "m.model").exists()
    first.stdin.close()
    first.wait(timeout=30)
    # the first has ended (its lock file is left, as by kill -9): the same command runs, and tidies it
    (data / "m.model.checkpoint").unlink()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (data / "m.model").is_file()
    assert not (data / ".m.model.lock").exists()


def test_a_second_split_into_the_same_folder_is_refused(data, holder, monkeypatch):
    monkeypatch.chdir(data)
    first = holder(data / ".split.lock")
    result = CliRunner().invoke(main, ["split", "docs.txt", "-o", "split", "--test-share", "0.25"])
    assert result.exit_code == 1, result.output
    assert f"'split' is being written by another `im2vec split` (pid {first.pid})" in " ".join(result.output.split())
    assert not (data / "split").exists()
    first.stdin.close()
    first.wait(timeout=30)
    result = CliRunner().invoke(main, ["split", "docs.txt", "-o", "split/", "--test-share", "0.25"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (data / "split").iterdir()) == ["split.json", "test.jsonl", "train.jsonl",
                                                                    "train.txt"]
    assert not (data / ".split.lock").exists()


def test_a_folder_without_flock_leaves_no_lock_file_and_no_open_descriptor(data, monkeypatch):
    """A mount that takes no ``flock`` (ENOLCK on some NFS, FUSE, SMB): the train runs unlocked, as in a
    read-only folder, without an empty ``.m.model.lock`` left beside its output or its descriptor left open."""
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.chdir(data)
    monkeypatch.setattr(fcntl, "flock", no_flock)
    result = CliRunner().invoke(main, ["train", "docs.txt", "-f", "store", "-o", "m.model", "--min-count", "1",
                                       "--workers", "1", "--epochs", "1", "--vector-size", "4"])
    assert result.exit_code == 0, result.output
    assert (data / "m.model").is_file()
    assert not (data / ".m.model.lock").exists()
    if os.path.isdir("/proc/self/fd"):  # (by name: another test's file closed meanwhile by gc changes a count)
        opened = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                opened.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                continue
        assert not [p for p in opened if p.endswith(".m.model.lock") or p.endswith(".m.model.lock (deleted)")]
