"""`im2vec train` when it is stopped or its disk fills up: what is said, what is kept, and how the
same command goes on (a full disk, Ctrl-C, kill -9, touched / copied / moved / changed inputs,
checkpoints of the earlier file identity, --vectors-file left by an unfinished run)."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import gensim.utils
import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec, checkpoint
from gensim_im2vec.checkpoint import EpochCheckpoint
from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus


def _inputs(folder, n_images=300):
    folder.mkdir(parents=True, exist_ok=True)
    data = make_corpus(n_classes=5, n_images=n_images, n_features=16, seed=2)
    keys = list(data.features)
    FeatureStore.from_arrays(folder / "store", keys, np.stack([data.features[k] for k in keys]))
    (folder / "docs.txt").write_text("".join(" ".join(d) + "\n" for d in data.docs), encoding="utf-8")


def _args(folder, *more, epochs=6):
    return ["train", str(folder / "docs.txt"), "-f", str(folder / "store"), "-o", str(folder / "m.model"),
            "--vector-size", "8", "--sg", "--min-count", "1", "--workers", "1", "--sample", "0", "--seed", "1",
            "--epochs", str(epochs), *more]


def _text(result) -> str:
    return " ".join(result.output.split())


def _stop_after(monkeypatch, epochs: int) -> None:
    """Ctrl-C right after the checkpoint of epoch `epochs` is saved."""
    original = EpochCheckpoint.on_epoch_end

    def on_epoch_end(self, model):
        original(self, model)
        if self.done == epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", on_epoch_end)


def _interrupted_resumable(folder, epochs_done=2):
    with pytest.MonkeyPatch.context() as mp:
        _stop_after(mp, epochs_done)
        res = CliRunner().invoke(main, _args(folder, "--resumable"))
    assert res.exit_code == 130, res.output
    assert (folder / "m.model.checkpoint").exists() and not (folder / "m.model").exists()
    return res


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's model."""
    folder = tmp_path_factory.mktemp("reference")
    _inputs(folder)
    res = CliRunner().invoke(main, _args(folder))
    assert res.exit_code == 0, res.output
    return Im2Vec.load(str(folder / "m.model"))


def _assert_same(model_path, reference):
    model = Im2Vec.load(str(model_path))
    assert np.array_equal(model.W, reference.W) and np.array_equal(model.wv.vectors, reference.wv.vectors)
    assert np.array_equal(model.syn1neg, reference.syn1neg) and model.epochs == reference.epochs


# ---------------------------------------------------------------- a full disk


def _full_disk_when(monkeypatch, part: str):
    """gensim's writer raises ENOSPC, as a full disk does (no file named), for a file whose name has `part`."""
    original = gensim.utils.pickle

    def pickle(obj, fname, *args, **kwargs):
        if part in os.path.basename(str(fname)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, fname, *args, **kwargs)

    monkeypatch.setattr(gensim.utils, "pickle", pickle)


def test_a_full_disk_at_the_final_save_names_the_model_and_suggests_resumable(tmp_path, monkeypatch):
    _inputs(tmp_path)
    _full_disk_when(monkeypatch, "m.model.tmp-")
    res = CliRunner().invoke(main, _args(tmp_path))
    text = _text(res)
    assert res.exit_code == 1, res.output
    assert "the disk is full" in text and repr(str(tmp_path / "m.model")) in text
    assert "at least" in text and "KiB" in text and str(tmp_path) in text  # what it needs, where
    assert "The 6 epochs trained are lost" in text and "--resumable" in text
    assert not list(tmp_path.glob("*m.model*"))  # nothing half-written


def test_a_full_disk_at_the_final_save_of_a_resumable_run_keeps_the_checkpoint(tmp_path, monkeypatch, reference):
    _inputs(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        _full_disk_when(mp, "m.model.tmp-")
        res = CliRunner().invoke(main, _args(tmp_path, "--resumable"))
    text = _text(res)
    assert res.exit_code == 1, res.output
    assert "the disk is full" in text and "kept in" in text and "m.model.checkpoint" in text, text
    assert "lost" not in text
    again = CliRunner().invoke(main, _args(tmp_path, "--resumable"))
    assert again.exit_code == 0 and "resuming" in again.output, again.output
    _assert_same(tmp_path / "m.model", reference)


def test_a_full_disk_at_a_checkpoint_names_the_checkpoint(tmp_path, monkeypatch):
    _inputs(tmp_path)
    calls = []
    original = gensim.utils.pickle

    def pickle(obj, fname, *args, **kwargs):  # the second checkpoint does not fit
        if ".m.model.checkpoint.tmp-" in str(fname):
            calls.append(fname)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, fname, *args, **kwargs)

    monkeypatch.setattr(gensim.utils, "pickle", pickle)
    res = CliRunner().invoke(main, _args(tmp_path, "--resumable"))
    text = _text(res)
    assert res.exit_code == 1, res.output
    assert "the disk is full: the checkpoint" in text and "m.model.checkpoint" in text
    assert "kept in" in text and "continue from it" in text
    assert (tmp_path / "m.model.checkpoint").exists()  # the first epoch's


def test_a_model_that_cannot_fit_is_refused_before_training(tmp_path, monkeypatch):
    _inputs(tmp_path)
    trained = []
    original = Im2Vec._do_train_job
    monkeypatch.setattr(Im2Vec, "_do_train_job", lambda self, *a, **k: trained.append(1) or original(self, *a, **k))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    res = CliRunner().invoke(main, _args(tmp_path))
    text = _text(res)
    assert res.exit_code == 1, res.output
    assert "not enough space" in text and "1000 B free" in text and "it is not started" in text, text
    assert "-o" in text and str(tmp_path) in text
    assert not trained and not (tmp_path / "m.model").exists()


def test_a_full_vectors_file_disk_is_said_with_the_option(tmp_path, monkeypatch):
    _inputs(tmp_path)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    res = CliRunner().invoke(main, _args(tmp_path, "--vectors-file", str(tmp_path / "vf.npy")))
    text = _text(res)
    assert res.exit_code == 1, res.output
    assert "of --vectors-file" in text and "vf.npy" in text, text
    assert "vectors_file=" not in text and "vectors_file '" not in text and "set vectors_file" not in text
    assert not list(tmp_path.glob("*vf.npy*"))  # nor its temporary file, nor its marker


# ---------------------------------------------------------------- Ctrl-C messages


def test_interrupt_messages_say_what_is_kept(tmp_path, monkeypatch):
    from gensim_im2vec import cli

    _inputs(tmp_path)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_train_new", interrupted)
    plain = CliRunner().invoke(main, _args(tmp_path))
    assert plain.exit_code == 130 and "--resumable" in _text(plain), plain.output  # for next time
    early = CliRunner().invoke(main, _args(tmp_path, "--resumable"))
    text = _text(early)
    assert early.exit_code == 130 and "kept in" not in text and "nothing is kept" in text, text


# ---------------------------------------------------------------- the same data, wherever it lies


@pytest.mark.parametrize("how", ["touch", "copy", "move"])
def test_touched_copied_or_moved_inputs_resume_bit_for_bit(tmp_path, reference, how):
    first = tmp_path / "a"
    _inputs(first)
    _interrupted_resumable(first)
    here = first
    if how == "touch":
        later = time.time() + 100
        os.utime(first / "docs.txt", (later, later))
    elif how == "copy":  # cp -r without -p: new files, new times
        here = tmp_path / "b"
        here.mkdir()
        shutil.copyfile(first / "docs.txt", here / "docs.txt")
        shutil.copytree(first / "store", here / "store", copy_function=shutil.copyfile)
        for f in first.glob("m.model.checkpoint*"):
            shutil.copyfile(f, here / f.name)
    else:
        here = tmp_path / "moved"
        os.rename(first, here)
    res = CliRunner().invoke(main, _args(here, "--resumable"))
    assert res.exit_code == 0, res.output
    assert "resuming the interrupted run" in res.output and "epochs 3-6 of 6" in res.output
    _assert_same(here / "m.model", reference)
    assert not list(here.glob("m.model.checkpoint*"))


@pytest.mark.parametrize("change", ["grown", "same size"])
def test_a_changed_input_is_refused_saying_what_changed(tmp_path, change):
    _inputs(tmp_path)
    _interrupted_resumable(tmp_path)
    docs = tmp_path / "docs.txt"
    before = docs.stat().st_size
    if change == "grown":
        with open(docs, "a") as f:
            f.write("img:0 extra\n")
    else:
        text = docs.read_bytes()
        docs.write_bytes(text[:-2] + (b"x" if text[-2:-1] != b"x" else b"y") + text[-1:])
    res = CliRunner().invoke(main, _args(tmp_path, "--resumable"))
    text = _text(res)
    assert res.exit_code == 1, res.output
    assert f"{str(docs)!r} changed since the checkpoint" in text, text
    if change == "grown":
        assert f"size {before:,} -> {before + 12:,} bytes" in text
    else:
        assert "the same size" in text and "other content" in text
    assert "remove the checkpoint" in text and "finish it" in text
    assert "resuming" not in res.output  # said only once the checks pass
    assert (tmp_path / "m.model.checkpoint").exists()


def _old_identities(monkeypatch):
    """The identities a checkpoint of the earlier code holds: [path, size, mtime_ns] and [store path, rows]."""
    def file_identity(path):
        if not path:
            return None
        st = os.stat(path)
        return [os.path.abspath(path), st.st_size, st.st_mtime_ns]

    monkeypatch.setattr(checkpoint, "file_identity", file_identity)
    monkeypatch.setattr(checkpoint, "store_identity", lambda store: [os.path.abspath(store.path), len(store)])


def test_a_checkpoint_of_the_earlier_identity_still_resumes(tmp_path, reference):
    _inputs(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        _old_identities(mp)
        _interrupted_resumable(tmp_path)
    record = json.dumps(checkpoint.read_checkpoint(tmp_path / "m.model.checkpoint")[1]["inputs"])
    assert f'"documents": ["{tmp_path / "docs.txt"}"' in record  # the earlier form, as written by the earlier code
    res = CliRunner().invoke(main, _args(tmp_path, "--resumable"))
    assert res.exit_code == 0 and "resuming" in res.output, res.output
    _assert_same(tmp_path / "m.model", reference)


def test_a_checkpoint_of_the_earlier_identity_refuses_a_modified_file(tmp_path):
    _inputs(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        _old_identities(mp)
        _interrupted_resumable(tmp_path)
    with open(tmp_path / "docs.txt", "a") as f:
        f.write("img:0 extra\n")
    res = CliRunner().invoke(main, _args(tmp_path, "--resumable"))
    text = _text(res)
    assert res.exit_code == 1 and "docs.txt' changed since the checkpoint" in text and "size" in text, text
    assert "resuming" not in res.output


# ---------------------------------------------------------------- --vectors-file of an unfinished run


def test_ctrl_c_removes_the_vectors_file_the_run_made(tmp_path, monkeypatch):
    _inputs(tmp_path)

    def ctrl_c(self, model):  # at the end of the first epoch (the main thread, as Ctrl-C)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint.SpaceCheck, "on_epoch_end", ctrl_c)
        res = CliRunner().invoke(main, _args(tmp_path, "--vectors-file", str(tmp_path / "vf.npy")))
    assert res.exit_code == 130, res.output
    assert not list(tmp_path.glob("*vf.npy*")) and "removed" in res.output, res.output
    again = CliRunner().invoke(main, _args(tmp_path, "--vectors-file", str(tmp_path / "vf.npy")))
    assert again.exit_code == 0, again.output


def _killed_with_vectors_file(folder):
    """`im2vec train --vectors-file vf.npy` in a process of its own, killed (SIGKILL) while it trains."""
    cmd = [sys.executable, "-m", "gensim_im2vec.cli", *_args(folder, "--vectors-file", "vf.npy", epochs=100000)]
    proc = subprocess.Popen(cmd, cwd=folder, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    marker = folder / ".vf.npy.im2vec-run.json"
    while not ((folder / "vf.npy").exists() and marker.exists()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and (folder / "vf.npy").exists()


def test_a_rerun_after_kill_9_replaces_the_vectors_file_its_run_left(tmp_path, monkeypatch, reference):
    _inputs(tmp_path)
    _killed_with_vectors_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, _args(tmp_path, "--vectors-file", "vf.npy"))
    assert res.exit_code == 0, res.output
    assert "left by an unfinished run" in _text(res)
    assert not list(tmp_path.glob("*vf.npy*"))  # moved into the model, the marker gone
    _assert_same(tmp_path / "m.model", reference)


def test_a_vectors_file_the_run_did_not_make_is_refused_in_the_commands_terms(tmp_path, monkeypatch):
    _inputs(tmp_path)
    _killed_with_vectors_file(tmp_path)
    # the file there now is another one (a copy put in its place): never removed
    shutil.copyfile(tmp_path / "vf.npy", tmp_path / "copy.npy")
    os.replace(tmp_path / "copy.npy", tmp_path / "vf.npy")
    mine = (tmp_path / "vf.npy").read_bytes()
    res = CliRunner().invoke(main, _args(tmp_path, "--vectors-file", str(tmp_path / "vf.npy")))
    text = _text(res)
    assert res.exit_code == 2 and "--vectors-file" in text, text
    assert "vectors_file=" not in text and "vectors_file '" not in text
    assert "Delete it" in text and "another path" in text
    assert (tmp_path / "vf.npy").read_bytes() == mine


def test_an_unwritable_vectors_file_names_the_option_and_the_path_given(tmp_path, monkeypatch):
    _inputs(tmp_path)
    original = np.lib.format.open_memmap

    def open_memmap(filename, mode="r+", *args, **kwargs):
        if mode == "w+":
            raise PermissionError(errno.EACCES, "Permission denied", str(filename))
        return original(filename, mode, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "open_memmap", open_memmap)
    res = CliRunner().invoke(main, _args(tmp_path, "--vectors-file", str(tmp_path / "vf.npy")))
    text = _text(res)
    assert res.exit_code == 1, res.output
    assert f"--vectors-file {str(tmp_path / 'vf.npy')!r} cannot be written (Permission denied)" in text, text
    assert ".tmp-" not in text


def test_a_users_file_at_the_inode_of_a_killed_runs_vectors_file_is_refused_never_removed(tmp_path):
    # the user's own array, at the very inode of the file the killed run left (as when ext4 reuses a removed
    # file's inode number for a copy put in its place): the run's token is not in its header
    _inputs(tmp_path)
    _killed_with_vectors_file(tmp_path)
    vf = tmp_path / "vf.npy"
    ino = vf.stat().st_ino
    with open(vf, "rb") as f:
        shape = np.lib.format.read_array_header_1_0(f)[0] if np.lib.format.read_magic(f) == (1, 0) else None
    with open(vf, "r+b") as f:  # written over in place: the same inode
        f.truncate(0)
        np.save(f, np.full(shape, 7, dtype=np.float32))
    assert vf.stat().st_ino == ino
    mine = vf.read_bytes()
    res = CliRunner().invoke(main, _args(tmp_path, "--vectors-file", str(vf)))
    text = _text(res)
    assert res.exit_code == 2, res.output
    assert "left by an unfinished run" not in text and ".vf.npy.im2vec-run.json" in text, text
    assert vf.read_bytes() == mine


def test_the_runs_token_leaves_its_vectors_file_a_plain_npy(tmp_path):
    from gensim_im2vec.checkpoint import (
        mark_vectors_file,
        vectors_file_made_by,
        vectors_file_marker,
    )

    path = tmp_path / "vf.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    mark_vectors_file(path, path, (3, 4), output=tmp_path / "m.model", resumable=False)
    assert b"# im2vec-run " in path.read_bytes()[:128]
    assert np.array_equal(np.load(path, mmap_mode="r"), np.arange(12, dtype=np.float32).reshape(3, 4))
    assert vectors_file_made_by(path)["token"]
    record = json.loads(open(vectors_file_marker(path)).read())
    record["token"] = "0" * 32  # another run's token: not this file's run
    with open(vectors_file_marker(path), "w") as f:
        json.dump(record, f)
    assert vectors_file_made_by(path) is None


# ---------------------------------------------------------------- the space check


def test_a_file_system_without_a_size_is_not_refused(tmp_path, monkeypatch):
    # ramfs, some FUSE and network file systems report 0 total and 0 free blocks: nothing is known
    _inputs(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(0, 0, 0))
    res = CliRunner().invoke(main, _args(tmp_path, epochs=1))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.model").exists()


def test_the_space_check_can_be_turned_off_and_its_refusal_says_how(tmp_path, monkeypatch):
    _inputs(tmp_path)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    res = CliRunner().invoke(main, _args(tmp_path, epochs=1))
    assert res.exit_code == 1 and "IM2VEC_NO_SPACE_CHECK=1" in _text(res), res.output
    monkeypatch.setenv("IM2VEC_NO_SPACE_CHECK", "1")
    res = CliRunner().invoke(main, _args(tmp_path, epochs=1))
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("resumed", [False, True])
def test_a_refusal_for_space_writes_no_image_rows(tmp_path, monkeypatch, resumed):
    # the check runs before train(): its error path (which writes every image's row from W) is not reached
    _inputs(tmp_path)
    if resumed:
        _interrupted_resumable(tmp_path)
    written = []
    original = Im2Vec._write_image_vectors
    monkeypatch.setattr(Im2Vec, "_write_image_vectors", lambda self, *a, **k: written.append(1) or original(self, *a, **k))
    began = []
    monkeypatch.setattr(Im2Vec, "_begin_training", lambda self, *a, **k: began.append(1))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    res = CliRunner().invoke(main, _args(tmp_path, *(["--resumable"] if resumed else [])))
    assert res.exit_code == 1 and "it is not started" in _text(res), res.output
    assert not written and not began


@pytest.mark.parametrize("message", ["Not enough free space to write 8000 bytes after offset 128",
                                     "8000 requested and 4096 written"])
def test_a_full_disk_as_numpy_says_it_names_the_model(tmp_path, monkeypatch, message):
    # numpy's tofile (np.save of an array of 10M elements and more) says a full disk without errno
    _inputs(tmp_path)
    original = np.save

    def save(file, arr, *args, **kwargs):
        if ".m.model.tmp-" in str(file):
            raise OSError(message)
        return original(file, arr, *args, **kwargs)

    monkeypatch.setattr(np, "save", save)
    res = CliRunner().invoke(main, _args(tmp_path, "--resumable", epochs=2))
    text = _text(res)
    assert res.exit_code == 1, res.output
    assert "the disk is full" in text and repr(str(tmp_path / "m.model")) in text, text
    assert "kept in" in text and "m.model.checkpoint" in text


def test_a_store_moved_alone_resumes_from_the_store_given(tmp_path, reference):
    # the store moved elsewhere, -o in its folder: the store given with -f is used, not the checkpoint's path
    _inputs(tmp_path)
    _interrupted_resumable(tmp_path)
    os.rename(tmp_path / "store", tmp_path / "moved-store")
    args = _args(tmp_path, "--resumable")
    args[args.index("-f") + 1] = str(tmp_path / "moved-store")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and "resuming" in res.output, res.output
    _assert_same(tmp_path / "m.model", reference)


def test_a_compressed_output_with_a_vectors_file_is_refused_before_training(tmp_path, monkeypatch):
    _inputs(tmp_path)
    trained = []
    original = Im2Vec._do_train_job
    monkeypatch.setattr(Im2Vec, "_do_train_job", lambda self, *a, **k: trained.append(1) or original(self, *a, **k))
    args = _args(tmp_path, "--vectors-file", str(tmp_path / "vf.npy"))
    args[args.index("-o") + 1] = str(tmp_path / "m.model.gz")
    res = CliRunner().invoke(main, args)
    text = _text(res)
    assert res.exit_code == 2 and "--vectors-file" in text and "m.model.gz" in text and "-o" in text, text
    assert not trained and not list(tmp_path.glob("*vf.npy*"))


def test_a_compressed_output_is_warned_not_refused_and_close_sizes_read_apart(tmp_path, monkeypatch):
    from gensim_im2vec.fileio import format_bytes_pair

    _inputs(tmp_path)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    args = _args(tmp_path, epochs=1)
    args[args.index("-o") + 1] = str(tmp_path / "m.model.gz")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and "warning" in res.output and "compressed" in res.output, res.output
    assert (tmp_path / "m.model.gz").exists()
    free, need = format_bytes_pair(1_700_000, 1_704_000)
    assert free != need


def test_vectors_that_cannot_be_hard_linked_into_place_are_counted(tmp_path, monkeypatch):
    # a bind mount: one device number, but a hard link across the mounts fails (EXDEV); the vectors are then
    # written at the save, and must be counted
    from gensim_im2vec import cli

    (tmp_path / "o").mkdir()
    assert cli._same_disk(str(tmp_path / "vf.npy"), str(tmp_path / "o" / "m.model"))

    def link(src, dst, *a, **k):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", link)
    assert not cli._same_disk(str(tmp_path / "vf.npy"), str(tmp_path / "o" / "m.model"))
    assert [p.name for p in tmp_path.iterdir()] == ["o"] and not list((tmp_path / "o").iterdir())  # probe removed


def test_a_full_disk_message_says_when_the_free_space_was_measured(tmp_path, monkeypatch):
    _inputs(tmp_path)
    _full_disk_when(monkeypatch, "m.model.tmp-")
    res = CliRunner().invoke(main, _args(tmp_path, epochs=1))
    text = _text(res)
    assert res.exit_code == 1 and "once its partly written files were removed" in text, text
    assert "for its arrays alone" in text and "pickle on top" in text


def test_a_moved_store_without_a_store_id_is_refused_saying_it_is_known_by_its_place():
    was = {"path": "/a/store", "store_id": None, "rows": 300}
    now = {"path": "/b/store", "store_id": None, "rows": 300}
    with pytest.raises(ValueError) as e:
        checkpoint.check_inputs("m.model.checkpoint", {"inputs": {"features": was}}, {"features": now})
    text = str(e.value)
    assert "300 -> 300" not in text and "no store_id" in text and "'/a/store'" in text and "move it back" in text
