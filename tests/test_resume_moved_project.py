"""`im2vec train --resumable --vectors-file` resumed after the project's folder moved or was copied:
the resume continues in the --vectors-file its own command names (the moved file in place, or a
file made again from the checkpoint in a copy), never in the file the checkpoint recorded. Was: the
checkpoint's absolute path was used, so a moved project failed ("the folder ... does not exist") and
a copied one trained in the ORIGINAL project's vectors file and moved it into the copy (the original
lost it). Also: a resume may leave --vectors-file out, or add it, and a file in the copy that no run
made is refused, left as it is (review: resume of a moved project)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from test_checkpoint import OPTS, _cli_inputs, _interrupted, _joint

from gensim_im2vec import Im2Vec
from gensim_im2vec.checkpoint import resume, vectors_file_marker
from gensim_im2vec.cli import main
from gensim_im2vec.synthetic import make_corpus

EPOCHS = "4"
OPTIONS: list[str] = []  # test_checkpoint's options of its inputs (_cli_inputs), once a project is made

# `im2vec train` in a process of its own, killed (SIGKILL: no clean-up) once its first checkpoint is saved
KILLED_AFTER_A_CHECKPOINT = """
import os, signal, sys
from gensim_im2vec import checkpoint
from gensim_im2vec.cli import main
real = checkpoint.EpochCheckpoint.on_epoch_end
def on_epoch_end(self, model):
    real(self, model)
    if os.path.exists(self.path):
        os.kill(os.getpid(), signal.SIGKILL)
checkpoint.EpochCheckpoint.on_epoch_end = on_epoch_end
main(sys.argv[1:], prog_name="im2vec")
"""


def _args(project, *, vectors_file=True, relative=False):
    """The command, with its paths into `project` (absolute, or relative to it when run there)."""
    at = (lambda name: name) if relative else (lambda name: str(project / name))
    args = ["train", at("docs.txt"), "-f", at("store"), "-o", at("model.im2vec"), "--epochs", EPOCHS, "--resumable",
            *OPTIONS]
    return [*args, "--vectors-file", at("vf.npy")] if vectors_file else args


def _project(folder):
    """A project folder with DOCUMENTS and a store (test_checkpoint's inputs)."""
    folder.mkdir()
    args = _cli_inputs(folder)
    assert args[:4] == ["train", "docs.txt", "-f", "store"], args
    OPTIONS[:] = args[4:]
    return folder


def _interrupt(project, **how):
    cwd = project if how.get("relative") else None
    proc = subprocess.run([sys.executable, "-c", KILLED_AFTER_A_CHECKPOINT, *_args(project, **how)], cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (project / "model.im2vec.checkpoint").exists() and not (project / "model.im2vec").exists()
    assert (project / "vf.npy").exists() == how.get("vectors_file", True)


def _resume(project, monkeypatch, **how):
    if how.get("relative"):
        monkeypatch.chdir(project)
    result = CliRunner().invoke(main, _args(project, **how))
    assert result.exit_code == 0, result.output
    return result.output


def _files(folder) -> dict[str, bytes]:
    # (not the lock files of the output and of the --vectors-file, which the killed run left and the next `im2vec train`
    # of them takes over and removes)
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, names in os.walk(folder) for f in names if f not in (".model.im2vec.lock", ".vf.npy.lock")}


def _interrupted_copy(tmp_path, **copy_options):
    """A project whose run was interrupted (tmp_path/original), and a copy of its folder (tmp_path/copy)."""
    original = _project(tmp_path / "original")
    _interrupt(original)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, **copy_options)
    return original, copy


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run, not interrupted: what every resume must end with."""
    project = _project(tmp_path_factory.mktemp("uninterrupted") / "project")
    result = CliRunner().invoke(main, _args(project))
    assert result.exit_code == 0, result.output
    return Im2Vec.load(str(project / "model.im2vec"))


def _assert_the_run(project, reference):
    """The model saved in `project` is the uninterrupted run's, and answers on the images; no file of the
    run is left beside it."""
    model = Im2Vec.load(str(project / "model.im2vec"))
    assert model.wv.index_to_key == reference.wv.index_to_key and model.epochs == reference.epochs
    np.testing.assert_allclose(model.W, reference.W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.wv.vectors, reference.wv.vectors, rtol=1e-5, atol=1e-6)
    image = model.image_keys[0]
    assert [k for k, _ in model.most_similar_images(image, topn=5)] == \
        [k for k, _ in reference.most_similar_images(image, topn=5)]
    left = sorted(p.name for p in project.iterdir())  # (the vectors in the pickle when the run kept them in memory)
    assert left in (["docs.txt", "model.im2vec", "model.im2vec.W.npy", "model.im2vec.wv.vectors.npy", "store"],
                    ["docs.txt", "model.im2vec", "model.im2vec.W.npy", "store"]), left


@pytest.mark.parametrize("relative", [False, True], ids=["absolute-paths", "run-in-the-folder"])
def test_a_copied_project_resumes_in_its_own_vectors_file_and_leaves_the_original_as_it_was(
        tmp_path, monkeypatch, uninterrupted, relative):
    original = _project(tmp_path / "original")
    _interrupt(original, relative=relative)
    before = _files(original)
    assert vectors_file_marker(original / "vf.npy").endswith(".vf.npy.im2vec-run.json")
    assert ".vf.npy.im2vec-run.json" in before  # (the run's record of its vectors file: copied along)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    said = _resume(copy, monkeypatch, relative=relative)
    # was: the original's vf.npy written by the copy's training and moved into the copy's model
    assert _files(original) == before
    assert "resuming the interrupted run" in said and "copy of the vectors file" in said, said
    _assert_the_run(copy, uninterrupted)
    # and the original, untouched, resumes as well
    _resume(original, monkeypatch, relative=relative)
    _assert_the_run(original, uninterrupted)


@pytest.mark.parametrize("move", ["renamed", "to-another-disk"])
@pytest.mark.parametrize("relative", [False, True], ids=["absolute-paths", "run-in-the-folder"])
def test_a_moved_project_resumes_in_its_vectors_file(tmp_path, monkeypatch, uninterrupted, move, relative):
    original = _project(tmp_path / "original")
    _interrupt(original, relative=relative)
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    if move == "renamed":  # the same file system: the same files (inodes)
        inode = os.stat(original / "vf.npy").st_ino
        os.rename(original, moved)
        assert os.stat(moved / "vf.npy").st_ino == inode
    else:  # another disk: the files copied, the originals removed
        shutil.copytree(original, moved)
        shutil.rmtree(original)
    said = _resume(moved, monkeypatch, relative=relative)  # was: "the folder .../original does not exist"
    assert "resuming the interrupted run" in said, said
    assert ("copy of the vectors file" in said) == (move == "to-another-disk"), said  # renamed: written in place
    assert not original.exists()
    _assert_the_run(moved, uninterrupted)


def test_a_resume_without_the_runs_vectors_file_keeps_the_vectors_in_memory(tmp_path, monkeypatch, uninterrupted):
    """--vectors-file left out of the resume: the vectors in memory, the interrupted run's file named and left
    as it is (was: refused as a checkpoint of other options)."""
    project = _project(tmp_path / "project")
    _interrupt(project)
    left = (project / "vf.npy").read_bytes()
    said = _resume(project, monkeypatch, vectors_file=False)
    assert f"kept its vectors in {project / 'vf.npy'}" in " ".join(said.split()), said
    assert (project / "vf.npy").read_bytes() == left
    os.remove(project / "vf.npy")
    os.remove(vectors_file_marker(project / "vf.npy"))
    os.remove(project / ".vf.npy.lock")  # (the killed run's lock of it, left beside it as the file is)
    _assert_the_run(project, uninterrupted)


def test_a_resume_given_a_vectors_file_the_run_had_not_continues_in_it(tmp_path, monkeypatch, uninterrupted):
    project = _project(tmp_path / "project")
    _interrupt(project, vectors_file=False)
    said = _resume(project, monkeypatch)  # was: refused as a checkpoint of other options
    assert "moved" in said and "vf.npy" in said, said
    _assert_the_run(project, uninterrupted)


def test_a_file_in_the_copy_that_no_run_made_is_refused_and_left_as_it_is(tmp_path, monkeypatch):
    original, copy = _interrupted_copy(tmp_path)
    os.remove(vectors_file_marker(copy / "vf.npy"))  # the copy's vf.npy: not known as a run's any more
    np.save(copy / "vf.npy", np.ones((3, 2), np.float32))
    mine = (copy / "vf.npy").read_bytes()
    result = CliRunner().invoke(main, _args(copy))
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert str(copy / "vf.npy") in said and "--vectors-file" in said and "Delete it" in said, said
    assert (copy / "vf.npy").read_bytes() == mine and (copy / "model.im2vec.checkpoint").exists()


def test_the_copys_resume_given_the_originals_vectors_file_is_refused(tmp_path):
    """The original project's file is its interrupted run's (its checkpoint is there): the copy's resume does
    not continue in it (the copy's checkpoint records that very file), naming it, its run and the fixes."""
    original, copy = _interrupted_copy(tmp_path)
    before = _files(original)
    args = _args(copy)
    args[args.index("--vectors-file") + 1] = str(original / "vf.npy")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"'{original / 'vf.npy'}' holds the vectors of the interrupted --resumable run saved in " \
           f"{original / 'model.im2vec.checkpoint'}" in said and "give --vectors-file another path" in said, said
    # the fixes remove nothing of the original's (was: "or remove ORIGINAL.checkpoint (and its .npy files) and this
    # file to start over")
    assert f"holds the vectors of the interrupted --resumable run saved in {original / 'model.im2vec.checkpoint'}, " \
           f"which continues in it: give --vectors-file another path" in said, said
    assert "remove" not in said and "start over" not in said, said
    assert _files(original) == before and (copy / "model.im2vec.checkpoint").exists()
    # this command's own interrupted run, run again without --resumable: starting over is its own call
    args = [a for a in _args(original) if a != "--resumable"]
    result = CliRunner().invoke(main, args)
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "which continues in it: add --resumable to continue it, give --vectors-file another path, or remove " \
           f"{original / 'model.im2vec.checkpoint'} (and its .npy files) and this file to start over" in said, said
    assert _files(original) == before


@pytest.mark.parametrize("first", ["copy", "original"])
def test_a_project_copied_with_hard_links_never_shares_its_vectors_file(tmp_path, monkeypatch, uninterrupted, first):
    """`cp -al`: the copy's vf.npy is another name of the original's file (its device and inode the checkpoint's).
    Was: the first resume trained in that file and moved it into its model, and the other's resume then wrote into
    that finished model's vectors. Now the file is everyone's: each resume makes its own from the checkpoint, the
    other folder is left as it is and resumes as well (review: resume of a project copied with hard links)."""
    original, copy = _interrupted_copy(tmp_path, copy_function=os.link)
    assert os.stat(copy / "vf.npy").st_ino == os.stat(original / "vf.npy").st_ino
    one, other = (copy, original) if first == "copy" else (original, copy)
    before = _files(other)
    said = _resume(one, monkeypatch)
    assert "copy of the vectors file" in said, said
    assert _files(other) == before
    _assert_the_run(one, uninterrupted)
    finished = _files(one)
    _resume(other, monkeypatch)
    _assert_the_run(other, uninterrupted)
    assert _files(one) == finished  # the first's finished model, untouched by the other's resume


def test_a_resume_never_takes_a_finished_models_vectors_file(tmp_path, monkeypatch, uninterrupted):
    """The original finished (its vf.npy became model.im2vec.wv.vectors.npy: the file the copy's checkpoint
    records, by device and inode); the copy's resume given that file. Was: trained in it and moved it into the
    copy, the original's model left without its vectors. Now refused, naming it, every file as it was."""
    original, copy = _interrupted_copy(tmp_path)
    _resume(original, monkeypatch)
    finished = original / "model.im2vec.wv.vectors.npy"
    before, copied, inode = _files(original), _files(copy), os.stat(finished).st_ino
    args = _args(copy)
    args[args.index("--vectors-file") + 1] = str(finished)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert str(finished) in said and "--vectors-file" in said and "is not this model's vectors file" in said, said
    # it is a saved model's array: to keep, not "Delete it if it is an old vectors file that no model uses"
    assert "elete" not in said, said
    assert f"It is an array of the saved model '{original / 'model.im2vec'}'" in said and "keep it" in said, said
    assert said.index("Give another path (--vectors-file OTHER.npy") < said.index("keep it"), said
    assert _files(original) == before and _files(copy) == copied and os.stat(finished).st_ino == inode
    _assert_the_run(original, uninterrupted)
    _resume(copy, monkeypatch)  # in its own vectors file: the run
    _assert_the_run(copy, uninterrupted)


def test_a_copys_resume_refused_for_other_documents_removes_nothing(tmp_path, monkeypatch):
    """Was: the copy's vf.npy removed (and a new one made) before the checkpoint's inputs were checked."""
    original, copy = _interrupted_copy(tmp_path)
    with open(copy / "docs.txt", "a", encoding="utf-8") as f:
        f.write("extra words here\n")
    before, inode = _files(copy), os.stat(copy / "vf.npy").st_ino
    result = CliRunner().invoke(main, _args(copy))
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "changed since the checkpoint" in said and "removed" not in said, said
    assert _files(copy) == before and os.stat(copy / "vf.npy").st_ino == inode


# `im2vec train` in a process of its own, killed (SIGKILL) as its training begins: after the resume made its
# vectors file again from the checkpoint, before any new checkpoint
KILLED_AS_TRAINING_BEGINS = """
import os, signal, sys
from gensim_im2vec import checkpoint
from gensim_im2vec.cli import main
def on_train_begin(self, model):
    os.kill(os.getpid(), signal.SIGKILL)
checkpoint.EpochCheckpoint.on_train_begin = on_train_begin
main(sys.argv[1:], prog_name="im2vec")
"""


@pytest.mark.parametrize("how", ["copied", "file-removed"])
def test_a_resume_killed_before_its_first_checkpoint_resumes_again(tmp_path, monkeypatch, uninterrupted, how):
    """The copy's resume made its vf.npy again from the checkpoint (a new file, its own marker) and was killed
    before its first checkpoint: the checkpoint still records the file of before. Was: the next resume refused
    that file ("not this model's vectors file"). Now the file made from this very checkpoint (its marker says
    which) is removed and made again; the original is left as it is (also: the run's own file removed by hand)."""
    original = _project(tmp_path / "original")
    _interrupt(original)
    if how == "copied":
        project = tmp_path / "copy"
        shutil.copytree(original, project)
    else:
        project = original
        os.remove(project / "vf.npy")
    before = _files(original) if how == "copied" else None
    proc = subprocess.run([sys.executable, "-c", KILLED_AS_TRAINING_BEGINS, *_args(project)],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (project / "vf.npy").exists() and (project / "model.im2vec.checkpoint").exists()
    said = _resume(project, monkeypatch)
    assert "made and left before its first checkpoint" in " ".join(said.split()), said
    _assert_the_run(project, uninterrupted)
    if how == "copied":
        assert _files(original) == before
        _resume(original, monkeypatch)
        _assert_the_run(original, uninterrupted)


# --- the library: resume(..., vectors_file=...), Im2Vec.load(..., vectors_file=...) ---


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=300, seed=0)


def _interrupted_in(folder, data):
    """A run with its vectors file and checkpoint in `folder`, stopped after 2 of its 4 epochs."""
    folder.mkdir()
    model = Im2Vec(image_features=data.features, epochs=4, vectors_file=folder / "v.npy", **OPTS)
    model.build_vocab(data.docs)
    _interrupted(model, data.docs, str(folder / "run.checkpoint"), epochs=4, after=2)
    del model
    import gc

    gc.collect()  # (its vectors file let go)


def test_resume_continues_in_the_vectors_file_it_is_given(data, tmp_path):
    full = _joint(data, 4)
    full.train(data.docs, total_examples=full.corpus_count, epochs=4)
    _interrupted_in(tmp_path / "a", data)
    inode = os.stat(tmp_path / "a" / "v.npy").st_ino
    os.rename(tmp_path / "a", tmp_path / "b")
    with pytest.raises(FileNotFoundError, match=r"vectors_file=PATH"):  # the recorded place, gone: named, the fix
        resume(tmp_path / "b" / "run.checkpoint", data.docs)
    resumed = resume(tmp_path / "b" / "run.checkpoint", data.docs, vectors_file=tmp_path / "b" / "v.npy")
    assert resumed.wv.vectors.filename == str(tmp_path / "b" / "v.npy")
    assert os.stat(tmp_path / "b" / "v.npy").st_ino == inode  # the run's own file, written over in place
    assert np.array_equal(resumed.W, full.W) and np.array_equal(resumed.wv.vectors, full.wv.vectors)
    # a copy: another file, refused (named) and left as it is; a new path or memory: made from the checkpoint
    _interrupted_in(tmp_path / "c", data)
    shutil.copytree(tmp_path / "c", tmp_path / "d")
    copied = (tmp_path / "d" / "v.npy").read_bytes()
    with pytest.raises(FileExistsError, match="is not this model's vectors file"):
        resume(tmp_path / "d" / "run.checkpoint", data.docs, vectors_file=tmp_path / "d" / "v.npy")
    assert (tmp_path / "d" / "v.npy").read_bytes() == copied
    original = (tmp_path / "c" / "v.npy").read_bytes()
    for given in (tmp_path / "d" / "new.npy", None):
        shutil.rmtree(tmp_path / "e", ignore_errors=True)
        shutil.copytree(tmp_path / "c", tmp_path / "e")
        resumed = resume(tmp_path / "e" / "run.checkpoint", data.docs, vectors_file=given)
        assert resumed.vectors_file == (None if given is None else str(given))
        assert np.array_equal(resumed.W, full.W) and np.array_equal(resumed.wv.vectors, full.wv.vectors)
        del resumed
    assert (tmp_path / "c" / "v.npy").read_bytes() == original  # the checkpoint's own file never opened


def test_load_records_the_vectors_file_it_is_given(data, tmp_path):
    model = _joint(data, 1)
    model.train(data.docs, total_examples=model.corpus_count, epochs=1)
    model.vectors_file = str(tmp_path / "v.npy")
    model.save(str(tmp_path / "m.model"))
    assert Im2Vec.load(str(tmp_path / "m.model")).vectors_file == str(tmp_path / "v.npy")
    assert Im2Vec.load(str(tmp_path / "m.model"), vectors_file=None).vectors_file is None
    assert Im2Vec.load(str(tmp_path / "m.model"), vectors_file=tmp_path / "w.npy").vectors_file == str(
        tmp_path / "w.npy")
    with pytest.raises(FileNotFoundError, match="does not exist"):  # the argument's fault, said before loading
        Im2Vec.load(str(tmp_path / "m.model"), vectors_file=tmp_path / "gone" / "v.npy")


def test_resume_never_writes_in_a_vectors_file_another_path_names(data, tmp_path):
    """A hard link to the run's file (e.g. its folder copied with cp -al): the resume makes a file of its own
    from the checkpoint, the other name's file left as it is."""
    full = _joint(data, 4)
    full.train(data.docs, total_examples=full.corpus_count, epochs=4)
    _interrupted_in(tmp_path / "a", data)
    other = tmp_path / "other.npy"
    os.link(tmp_path / "a" / "v.npy", other)
    before = other.read_bytes()
    resumed = resume(tmp_path / "a" / "run.checkpoint", data.docs)
    assert resumed.wv.vectors.filename == str(tmp_path / "a" / "v.npy")
    assert os.stat(tmp_path / "a" / "v.npy").st_ino != os.stat(other).st_ino and other.read_bytes() == before
    assert np.array_equal(resumed.W, full.W) and np.array_equal(resumed.wv.vectors, full.wv.vectors)


def test_resume_never_takes_the_vectors_file_of_a_saved_model(data, tmp_path):
    """The run finished and saved with its file moved into the model (the same device and inode as the copy's
    checkpoint records): the copy's resume given it refuses it, as it is; the save took the run's token out."""
    import gc

    _interrupted_in(tmp_path / "a", data)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    done = resume(tmp_path / "a" / "run.checkpoint", data.docs)
    done.save(str(tmp_path / "a" / "m.model"), move_vectors_file=True)
    saved = tmp_path / "a" / "m.model.wv.vectors.npy"
    del done
    gc.collect()
    before, inode = saved.read_bytes(), os.stat(saved).st_ino
    assert b"# im2vec-run " not in before[:128]
    with pytest.raises(FileExistsError, match="is not this model's vectors file"):
        resume(tmp_path / "b" / "run.checkpoint", data.docs, vectors_file=saved)
    assert saved.read_bytes() == before and os.stat(saved).st_ino == inode


def test_resume_checks_its_inputs_before_it_opens_or_makes_a_vectors_file(data, tmp_path):
    _interrupted_in(tmp_path / "a", data)
    mine = (tmp_path / "a" / "v.npy").read_bytes()
    for given in (tmp_path / "new.npy", tmp_path / "a" / "v.npy"):
        with pytest.raises(ValueError, match="checkpoint of a run with other inputs"):  # not "a damaged file"
            resume(tmp_path / "a" / "run.checkpoint", data.docs, inputs={"documents": "other"}, vectors_file=given)
        assert not (tmp_path / "new.npy").exists() and (tmp_path / "a" / "v.npy").read_bytes() == mine
