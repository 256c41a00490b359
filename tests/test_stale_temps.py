"""Temporary files of a killed writer are removed by the next one, also while the killed process
lingers as a zombie (its parent has not reaped it yet)."""
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
