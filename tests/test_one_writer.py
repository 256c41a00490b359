"""Two commands writing one output at once: the second is refused, naming the first (issue: resume audit 43).

`im2vec train --resumable` run a second time while the first still ran took the first's checkpoint for an
interrupted run ("resuming the interrupted run saved in ...") and trained beside it into the same files; two
`im2vec split` into one folder left one's train.txt beside the other's test.jsonl. The first holds
``.OUTPUT.lock`` (``flock``) beside its output while it writes; here a child process holds it as that first
command would. The same audit found export, report, index, normalize, evaluate --json, demo and datasets split
without the lock, one output under two spellings (``link/..``, a symlink to the output folder) locked twice,
and ``split -o a/b`` with `a` missing running unlocked (the lock's folder did not exist yet)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec.cli import main
from gensim_im2vec.fileio import read_lock
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


def test_a_second_train_with_the_same_vectors_file_is_refused(data, holder, monkeypatch):
    """Two `im2vec train --vectors-file v.npy` into two models: the file was written outside train's lock (that of
    its -o), so the second ran on until its model came to make the file (after a pass over the documents), and two
    at that moment could each take the name for their own file."""
    monkeypatch.chdir(data)
    first = holder(data / ".v.npy.lock")  # `im2vec train -o a.model --vectors-file v.npy`, reading its documents
    result = CliRunner().invoke(main, ["train", "docs.txt", "-f", "store", "-o", "b.model", "--vectors-file", "v.npy",
                                       "--min-count", "1", "--workers", "1", "--epochs", "1", "--vector-size", "4"])
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"'v.npy' is being written by another `im2vec train` (pid {first.pid}): a vectors file" in said, said
    assert not (data / "b.model").exists() and not (data / "v.npy").exists()
    assert not (data / ".b.model.lock").exists()  # (the model's lock let go too)


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


# --- every command that writes an output (audit: export, report, index, normalize, evaluate --json, demo,
# datasets split let two writers of one output run at once) ---


@pytest.fixture
def model(data, monkeypatch):
    """`data` with a trained m.model, the documents split (split/), the working folder `data`."""
    monkeypatch.chdir(data)
    result = CliRunner().invoke(main, ["train", "docs.txt", "-f", "store", "-o", "m.model", "--min-count", "1",
                                       "--workers", "1", "--epochs", "1", "--vector-size", "4"])
    assert result.exit_code == 0, result.output
    return data


def _args(command: str, output: str) -> list[str]:
    """`im2vec COMMAND` writing `output`."""
    return {"export": ["export", "m.model", "-o", output],
            "report": ["report", "m.model", "-o", output, "--map-method", "pca"],
            "index": ["index", "m.model", "-o", output, "--backend", "annoy", "--check", "0"],
            "normalize": ["normalize", "docs.txt", "-o", output, "--format", "text"],
            "evaluate": ["evaluate", "m.model", "--test", "test.jsonl", "--features", "store", "--baselines", "none",
                         "--no-word-similarity", "--json", output],
            "demo": ["demo", "--out", output, "--limit", "2"]}[command]


WRITERS = [("export", "proj", True), ("report", "rep", True), ("index", "m.ann", False),
           ("normalize", "docs2.txt", False), ("evaluate", "eval.json", False)]


@pytest.mark.parametrize("command, output, folder", WRITERS)
def test_a_second_writer_of_the_same_output_is_refused_and_a_killed_ones_lock_is_taken_over(
        model, holder, command, output, folder):
    (model / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat", "dog"]}\n'
                                      '{"key": "img:1", "tags": ["dog", "sun"]}\n')
    first = holder(model / f".{output}.lock")  # the first, still writing
    result = CliRunner().invoke(main, _args(command, output))
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"'{output}' is being written by another `im2vec {command}` (pid {first.pid})" in said
    assert not (model / output).exists()
    first.stdin.close()
    first.wait(timeout=30)  # its lock file is left, as by kill -9: taken over, and tidied
    result = CliRunner().invoke(main, _args(command, output))
    assert result.exit_code == 0, result.output
    assert (model / output).is_dir() if folder else (model / output).is_file()
    assert not (model / f".{output}.lock").exists()
    assert not [p.name for p in (model / output).iterdir() if p.name.endswith(".lock")] if folder else True


def test_normalize_locks_its_report_file_too(model, holder):
    first = holder(model / ".stats.json.lock")
    result = CliRunner().invoke(main, [*_args("normalize", "docs2.txt"), "--report", "stats.json"])
    assert result.exit_code == 1, result.output
    assert (f"'stats.json' is being written by another `im2vec normalize` (pid {first.pid})"
            in " ".join(result.output.split()))
    assert not (model / "docs2.txt").exists() and not (model / "stats.json").exists()
    assert not (model / ".docs2.txt.lock").exists()  # (the -o file's lock, taken first, is given back)


def test_a_second_demo_into_the_same_folder_is_refused_before_it_starts(data, holder, monkeypatch):
    monkeypatch.chdir(data)
    first = holder(data / ".demo-out.lock")
    result = CliRunner().invoke(main, _args("demo", "demo-out"))
    assert result.exit_code == 1, result.output
    assert (f"'demo-out' is being written by another `im2vec demo` (pid {first.pid})"
            in " ".join(result.output.split()))
    assert not (data / "demo-out").exists()


def test_datasets_split_is_refused_while_a_build_or_another_split_writes_the_folder(data, holder):
    folder = data / "ds"
    folder.mkdir()
    first = holder(folder / ".lock")  # the data set build's lock (datasets._lock_build)
    result = CliRunner().invoke(main, ["datasets", "split", str(folder)])
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"data set folder {str(folder)!r} is being written by another process (pid {first.pid})" in said
    assert "`im2vec datasets build` or `im2vec datasets split`" in said
    assert not (folder / "split.json").exists()


def test_two_spellings_of_one_output_take_one_lock(model, holder):
    """One output, one lock (beside the real output), whichever spelling the second writer gives: through a
    symlinked folder, ``link/..`` (the OS goes up from where the link points, not back to the link's folder: the
    lock named lexically was looked for in a folder that does not exist, and skipped), a symlink that is the
    output folder itself, relative or absolute."""
    (model / "deep" / "real").mkdir(parents=True)
    (model / "link").symlink_to(model / "deep" / "real")  # link/.. is deep, not the working folder
    (model / "proj-link").symlink_to(model / "deep" / "real" / "proj")  # (dangling until the export makes it)
    first = holder(model / "deep" / "real" / ".proj.lock")
    for spelling in ["link/proj", "link/../real/proj", str(model / "link" / "proj"), "link/proj/", "proj-link",
                     "deep/real/proj"]:
        result = CliRunner().invoke(main, ["export", "m.model", "-o", spelling])
        assert result.exit_code == 1, (spelling, result.output)
        assert f"is being written by another `im2vec export` (pid {first.pid})" in " ".join(result.output.split())
    assert not (model / "deep" / "real" / "proj").exists()
    # a file output: its parent resolved (train through link/.. into deep/m2.model)
    train = holder(model / "deep" / ".m2.model.lock")
    result = CliRunner().invoke(main, ["train", "docs.txt", "-f", "store", "-o", "link/../m2.model", "--min-count",
                                       "1", "--workers", "1", "--epochs", "1", "--vector-size", "4"])
    assert result.exit_code == 1, result.output
    assert f"another `im2vec train` (pid {train.pid})" in " ".join(result.output.split())
    assert not (model / "deep" / "m2.model").exists()
    for proc in (first, train):
        proc.stdin.close()
        proc.wait(timeout=30)
    result = CliRunner().invoke(main, ["export", "m.model", "-o", "link/../real/proj"])
    assert result.exit_code == 0, result.output
    assert (model / "deep" / "real" / "proj" / "vectors.tsv").is_file()
    assert sorted(p.name for p in (model / "deep" / "real").iterdir()) == ["proj"]  # its lock was there, and went
    assert not list(model.glob(".*.lock"))


def test_split_into_a_folder_whose_parent_is_missing_holds_the_lock(data, monkeypatch):
    """`im2vec split -o a/b` with `a` missing creates both (as it did); the lock ``a/.b.lock`` is held from the
    start, not skipped because its folder did not exist yet."""
    import fcntl

    import gensim_im2vec.split as split_module

    real = split_module.split_documents
    seen = {}

    def spy(documents, output, **options):
        lock = data / "a" / ".b.lock"
        seen["lock"] = lock.is_file()
        if seen["lock"]:
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen["held"] = False
            except BlockingIOError:
                seen["held"] = True
            finally:
                os.close(fd)
        return real(documents, output, **options)

    monkeypatch.chdir(data)
    monkeypatch.setattr(split_module, "split_documents", spy)
    result = CliRunner().invoke(main, ["split", "docs.txt", "-o", "a/b", "--test-share", "0.25"])
    assert result.exit_code == 0, result.output
    assert seen == {"lock": True, "held": True}
    assert sorted(p.name for p in (data / "a").iterdir()) == ["b"]
    assert (data / "a" / "b" / "split.json").is_file()
    # a split that fails before it writes leaves no folder it made for the lock, as it left none before
    result = CliRunner().invoke(main, ["split", "docs.txt", "-o", "c/d/e", "--test-share", "0.99"])
    assert result.exit_code == 1, result.output
    assert not (data / "c").exists()


def test_a_killed_writers_lock_file_never_makes_a_folder_another_commands(model, holder):
    """A lock file left by kill -9 inside a folder (a train into out/m.model, killed) is hidden: export, report
    and split still take the folder for a new one (check_output_folder skips hidden names)."""
    for command, folder in [("export", "o1"), ("report", "o2"), ("split", "o3")]:
        (model / folder).mkdir()
        killed = holder(model / folder / ".m.model.lock")
        killed.stdin.close()
        killed.wait(timeout=30)
        args = (["split", "docs.txt", "-o", folder, "--test-share", "0.25"] if command == "split"
                else _args(command, folder))
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (command, result.output)
        assert (model / folder / ".m.model.lock").is_file()  # (not this command's to remove)


@pytest.mark.parametrize("command", ["export", "report", "split"])
def test_the_filesystem_root_as_output_is_refused_in_words_not_by_the_lock(model, command):
    """`-o /` (or `-o .` in /): the lock beside the output is named from the root's name, which it has not:
    ``Path('/').with_name`` raised "PosixPath('/') has an empty name" (export, split) or a traceback (report,
    its lock outside the command's try) before the command could refuse the folder. The root is left unlocked,
    and the command says what it said before the lock (as root: a folder not its own; else: not writable)."""
    args = ["split", "docs.txt", "-o", "/", "--test-share", "0.25"] if command == "split" else _args(command, "/")
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "empty name" not in result.output
    assert "'/'" in result.output
    from gensim_im2vec.fileio import output_lock

    with output_lock("/", lambda pid: pid, folder=True):
        pass


def test_datasets_split_leaves_no_lock_file_in_a_folder_that_had_none(tmp_path, holder, monkeypatch):
    """`im2vec datasets split DIR` takes the builds' lock, ``DIR/.lock``: in a folder of the user's own (the
    generic folder format, never built) it left that file behind after it ended, ran or failed; it is removed
    now, and a built data set's (the build leaves it) is left as it was. A folder where no lock can be taken
    (a mount without flock, another user's lock file) is split unlocked, as before the lock."""
    import errno
    import fcntl
    import json

    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(12):
        Image.new("RGB", (4, 4), (20 * i, 0, 0)).save(folder / f"im{i}.png")
        (folder / f"im{i}.json").write_text(json.dumps({"tags": ["cat", "dog", "sun"][i % 3:][:2], "creator": f"c{i}"}))
    result = CliRunner().invoke(main, ["datasets", "split", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "split.json").is_file()
    assert not (folder / ".lock").exists()
    empty = tmp_path / "empty"  # fails (no images) after the lock is taken
    empty.mkdir()
    result = CliRunner().invoke(main, ["datasets", "split", str(empty)])
    assert result.exit_code == 1, result.output
    assert list(empty.iterdir()) == []
    (folder / ".lock").write_text("")  # a build's, left by it
    result = CliRunner().invoke(main, ["datasets", "split", str(folder), "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert (folder / ".lock").is_file()
    (folder / ".lock").unlink()

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    result = CliRunner().invoke(main, ["datasets", "split", str(folder), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "split.json").read_text())["config"]["seed"] == "3"
    assert not (folder / ".lock").exists()


def test_a_folder_lock_removed_by_its_holder_between_open_and_flock_is_taken_afresh(tmp_path, monkeypatch):
    """A holder that removes its lock file as it lets go (datasets split's, in a folder that had none) may remove
    it between another writer's open and flock: that writer must lock the file now there, not the removed one,
    which a third would never see (two writers). The holder's removal is played inside the first flock."""
    import fcntl

    from gensim_im2vec.store import LOCK_FILE, lock_folder

    real, calls = fcntl.flock, []

    def flock(fd, op):
        if not calls:
            os.unlink(tmp_path / LOCK_FILE)  # the holder lets go: its file is gone
        calls.append(fd)
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    with lock_folder(tmp_path, lambda pid: pid, remove=True) as lock:
        assert os.fstat(lock._fd).st_ino == os.stat(tmp_path / LOCK_FILE).st_ino
        assert len(calls) == 2
    assert not (tmp_path / LOCK_FILE).exists()


_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # (this checkout's package)
_COMMAND_HOLDER = ("import sys\n"
                   "from gensim_im2vec.cli import _one_writer\n"
                   "with _one_writer(sys.argv[1], sys.argv[2], 'its output', folder=True):\n"
                   "    print('held', flush=True)\n"
                   "    sys.stdin.read()\n")


def test_a_second_command_is_told_which_command_holds_the_output(model):
    """`im2vec export -o out` while `im2vec report -o out` runs: the refusal named the refused command as the
    holder ("another `im2vec export`"); the lock file names its holder now (the pid, then the command)."""
    first = subprocess.Popen([sys.executable, "-c", _COMMAND_HOLDER, "out", "report"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": _REPO})
    try:
        assert first.stdout.readline().strip() == "held"
        assert read_lock((model / ".out.lock").read_bytes())[:2] == (str(first.pid), "im2vec report")
        said = " ".join(CliRunner().invoke(main, _args("export", "out")).output.split())
        assert f"'out' is being written by another `im2vec report` (pid {first.pid}): an output has one" in said
        said = " ".join(CliRunner().invoke(main, _args("report", "out")).output.split())
        assert f"another `im2vec report` (pid {first.pid}): a report folder has one writer" in said
    finally:
        first.stdin.close()
        first.wait(timeout=30)
    assert not (model / ".out.lock").exists()


def test_a_split_being_written_is_said_to_be_written_now_from_its_real_lock(tmp_path, monkeypatch):
    """check_split_complete reads the pid from the lock a running `im2vec split` holds (as _one_writer writes it:
    the pid, then the command), to say "is writing it now" instead of "stopped before it finished"."""
    import json

    from gensim_im2vec import evaluate as ev
    from gensim_im2vec.split import FORMAT

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "split.json").write_text(json.dumps({"format": FORMAT, "complete": False, "config": {}}))
    (tmp_path / "s" / "test.jsonl").write_text('{"key": "img:0", "tags": ["a"]}\n')
    first = subprocess.Popen([sys.executable, "-c", _COMMAND_HOLDER, "s", "split"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": _REPO})
    try:
        assert first.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"an `im2vec split` \(pid {first.pid}\) is writing it now"):
            ev.load_tagged_jsonl(tmp_path / "s" / "test.jsonl")
    finally:
        first.stdin.close()
        first.wait(timeout=30)
    with pytest.raises(ValueError, match="stopped before it finished"):
        ev.load_tagged_jsonl(tmp_path / "s" / "test.jsonl")
