"""Temporary files of a killed writer are removed by the next one, also while the killed process
lingers as a zombie (its parent has not reaped it yet)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gensim_im2vec.fileio import pid_alive, remove_stale_temps, temp_name


def _zombie() -> subprocess.Popen:
    """A child that has exited and is not reaped (we do not wait() for it)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(500):
        try:
            with open(f"/proc/{child.pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    return child
        except OSError:
            break
        time.sleep(0.01)
    child.wait()
    pytest.skip("no /proc here to tell a zombie by (not Linux), or the child did not exit in 5 s")


def test_a_zombie_does_not_run_and_its_temporary_file_is_removed(tmp_path: Path):
    target = tmp_path / "m.model"
    child = _zombie()
    try:
        assert not pid_alive(child.pid)
        left = tmp_path / f".m.model.tmp-{child.pid}-1"
        left.write_bytes(b"half a model")
        mine = temp_name(target)  # the next writer's own name; removes the zombie's on the way
        assert not left.exists()
        assert mine.name.startswith(".m.model.tmp-")
    finally:
        child.wait()


def test_a_live_writer_keeps_its_temporary_file(tmp_path: Path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(child.pid)
        left = tmp_path / f".m.model.tmp-{child.pid}-1"
        left.write_bytes(b"being written")
        assert remove_stale_temps(tmp_path / "m.model") == []
        assert left.exists()
    finally:
        child.kill()
        child.wait()


def test_a_temporary_file_of_a_reused_pid_is_removed_and_this_writers_kept(tmp_path: Path):
    """A writer killed by SIGKILL whose pid the kernel gave to another process since: its temporary file
    was kept for good, the name carrying the pid alone. The name records the writer's start; a live
    process of that pid started at another time is not the writer."""
    import os

    import numpy as np

    from gensim_im2vec.fileio import process_start

    def _base36(n: int) -> str:
        return np.base_repr(n, 36).lower()

    start = process_start()
    if start is None:
        pytest.skip("no /proc to read a process's start from (not Linux)")
    ticks = int(start.rpartition("/")[2])
    target = tmp_path / "m.model"
    mine = temp_name(target)
    assert mine.name.startswith(f".m.model.tmp-{os.getpid()}-{_base36(ticks)}-")
    mine.write_bytes(b"being written")
    other_start = _base36(ticks + 1)  # a process of this pid that is not this one (started at another time)
    reused = tmp_path / f".m.model.tmp-{os.getpid()}-{other_start}-7"
    reused_pid1 = tmp_path / f".m.model.tmp-1-{other_start}-7.wv.vectors.npy"  # pid 1 runs, started at boot
    companion = tmp_path / f"{mine.name}.wv.vectors.npy"
    old_style = tmp_path / f".m.model.tmp-{os.getpid()}-7"  # an earlier version's name: the pid alone, as before
    for p in (reused, reused_pid1, companion, old_style):
        p.write_bytes(b"half a model")
    assert sorted(remove_stale_temps(target)) == sorted([reused, reused_pid1])
    assert mine.exists() and companion.exists() and old_style.exists()


def test_the_cli_names_the_file_a_temporary_name_is_written_for(tmp_path: Path):
    """The start ticks in base 36 may begin with a letter: the CLI's errors still name the output."""
    from gensim_im2vec.cli import _temp_target

    assert _temp_target("/d/.m.model.tmp-12-a9z-140").replace("\\", "/") == "/d/m.model"
    assert _temp_target("/d/.m.model.tmp-12-140.wv.vectors.npy").replace("\\", "/") == "/d/m.model"
    assert _temp_target("/d/m.model") is None


def test_this_process_start_is_read_once_and_a_forked_child_reads_its_own(tmp_path: Path, monkeypatch):
    """Every atomic write named its temporary file by this process's start, and read /proc/self/stat
    for it each time (a write of a small file: 140 µs instead of 100 on tmpfs,
    benchmarks/bench_atomic_write.py); it is read once now, and kept by pid, so that a forked child,
    another process, does not take its parent's start for its own."""
    import os

    from gensim_im2vec import fileio

    if fileio.process_start() is None:
        pytest.skip("no /proc to read a process's start from (not Linux)")
    reads = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        if str(file).startswith("/proc/") and str(file).endswith("/stat"):
            reads.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(fileio, "open", counting_open, raising=False)
    for i in range(5):
        fileio.atomic_write_bytes(tmp_path / f"f{i}", b"x")
    assert len(reads) <= 1, reads
    reads.clear()
    assert fileio.process_start(os.getpid()) == fileio.process_start()  # (a pid given is read: also another's)
    assert len(reads) == 1, reads
    parent = fileio.process_start()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            mine = fileio.process_start()
            os.write(write, f"{mine}|{fileio._read_start(os.getpid())}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        got, read_directly = f.read().split("|")
    os.waitpid(child, 0)
    assert got == read_directly and got != parent


def test_a_forked_child_starts_without_its_parents_cached_start():
    """A forked child's cache is emptied at the fork (os.register_at_fork), not only when it first reads
    its own start: a grandchild given the grandparent's old pid must not take the grandparent's start
    from the cache it inherited (a reviewer's find)."""
    from gensim_im2vec import fileio

    if fileio.process_start() is None:
        pytest.skip("no /proc/PID/stat here: nothing is cached")
    assert os.getpid() in fileio._OWN_START
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: says whether it inherited an entry
        os.write(w, b"empty" if not fileio._OWN_START else b"kept")
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 16) == b"empty"
    os.close(r)
