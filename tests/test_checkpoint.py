"""Training that survives an interruption (gensim_im2vec.checkpoint, `im2vec train --resumable`):
a run killed after some epochs and continued ends with the model an uninterrupted run trains,
bit for bit on one worker, and a checkpoint of another run is refused."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.checkpoint import EpochCheckpoint, read_checkpoint, resume
from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=16, sg=1, min_count=1, sample=0, workers=1, seed=1, image_batch=32)


class Crash(Exception):
    pass


class CrashAfter(CallbackAny2Vec):
    """Stands in for a killed process: raises at the end of epoch `n` (after the checkpoint)."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_epoch_end(self, model):
        self.seen += 1
        if self.seen == self.n:
            raise Crash


def _interrupted(model, docs, path, *, epochs, after, also=()):
    """Train `model` on `docs` for `epochs` with a checkpoint at `path`, stopped at the end of epoch
    `after` (a Crash, standing in for a killed process); `also`: callbacks run before the stop."""
    with pytest.raises(Crash):
        model.train(docs, total_examples=model.corpus_count, epochs=epochs,
                    callbacks=[EpochCheckpoint(path, epochs=epochs), *also, CrashAfter(after)])


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=300, seed=0)


def _joint(data, epochs):
    model = Im2Vec(image_features=data.features, epochs=epochs, **OPTS)
    model.build_vocab(data.docs)
    return model


@pytest.mark.parametrize("crash_after", [1, 3])
def test_a_resumed_joint_run_is_the_uninterrupted_run(data, tmp_path, crash_after):
    full = _joint(data, 4)
    full.train(data.docs, total_examples=full.corpus_count, epochs=4)
    path = tmp_path / "run.checkpoint"
    cut = _joint(data, 4)
    _interrupted(cut, data.docs, path, epochs=4, after=crash_after)
    assert read_checkpoint(path)[1]["epochs_done"] == crash_after
    resumed = resume(path, data.docs)
    assert np.array_equal(resumed.W, full.W) and np.array_equal(resumed.wv.vectors, full.wv.vectors)
    assert np.array_equal(resumed.syn1neg, full.syn1neg)
    assert (resumed.epochs, resumed.alpha, resumed.min_alpha) == (full.epochs, full.alpha, full.min_alpha)
    assert not hasattr(resumed, "checkpoint") and not os.listdir(tmp_path)  # the checkpoint and its arrays went


@pytest.mark.parametrize("train_words,start", [("new", "word2vec"), (False, "word2vec"), ("new", "vectors")])
def test_a_resumed_two_stage_run_is_the_uninterrupted_run(data, tmp_path, train_words, start):
    """Two-stage, with a tag the text never saw (from_word2vec's default trains it as a word in every
    epoch; False lets the space step alone place it), from a Word2Vec or its vectors alone (output
    weights from zero): the resumed run is the uninterrupted one."""
    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=16, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    if start == "vectors":
        w2v = w2v.wv
    docs = [d + ["fresh"] if d[0].startswith("img:") and i % 3 == 0 else d for i, d in enumerate(data.docs)]
    kw = dict(image_features=data.features, sentences=docs, epochs=3, sample=0, image_batch=32,
              train_words=train_words)
    full = Im2Vec.from_word2vec(w2v, **kw)
    path = tmp_path / "run.checkpoint"
    with pytest.raises(Crash):
        Im2Vec.from_word2vec(w2v, callbacks=[EpochCheckpoint(path, epochs=3), CrashAfter(2)], **kw)
    resumed = resume(path, docs)
    assert resumed.train_words == train_words and "fresh" in resumed.wv
    assert np.array_equal(resumed.W, full.W) and np.array_equal(resumed.wv.vectors, full.wv.vectors)
    assert np.array_equal(resumed.syn1neg, full.syn1neg)
    assert np.array_equal(resumed.wv["class1"], getattr(w2v, "wv", w2v)["class1"])  # the text's words stay frozen
    assert np.array_equal(resumed.wv.vectors_lockf, np.ones(1, dtype=np.float32))  # the user's, as it was


def test_a_checkpoint_of_other_inputs_or_a_plain_model_is_refused(data, tmp_path):
    path = tmp_path / "run.checkpoint"
    model = _joint(data, 3)
    with pytest.raises(Crash):
        model.train(data.docs, total_examples=model.corpus_count, epochs=3,
                    callbacks=[EpochCheckpoint(path, epochs=3, inputs={"documents": "a.txt", "epochs": 3}),
                               CrashAfter(1)])
    with pytest.raises(ValueError, match=r"other inputs: epochs was 3, now 4\. .*remove the checkpoint"):
        resume(path, data.docs, inputs={"documents": "a.txt", "epochs": 4})
    assert os.path.exists(path)  # nothing lost
    _joint(data, 1).save(str(tmp_path / "plain.model"))
    with pytest.raises(ValueError, match="not a checkpoint"):
        resume(tmp_path / "plain.model", data.docs)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        resume(tmp_path / "none", data.docs)
    with pytest.raises(ValueError, match="done"):
        EpochCheckpoint(path, epochs=3, done=3)


def _cli_inputs(tmp_path):
    data = make_corpus(n_classes=5, n_images=3000, n_features=64, seed=2)
    keys = list(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    (tmp_path / "docs.txt").write_text("".join(" ".join(d) + "\n" for d in data.docs), encoding="utf-8")
    return ["train", "docs.txt", "-f", "store", "--vector-size", "16", "--sg", "--min-count", "1", "--workers", "1",
            "--sample", "0"]


_KILLED_AT_FIRST_CHECKPOINT = """
import os, signal, sys
from gensim_im2vec import checkpoint
from gensim_im2vec.cli import main
saved = checkpoint.EpochCheckpoint.on_epoch_end
def on_epoch_end(self, model):
    saved(self, model)
    if self.done == 1:  # the first epoch's checkpoint written: kill -9, nothing runs on the way out
        os.kill(os.getpid(), signal.SIGKILL)
checkpoint.EpochCheckpoint.on_epoch_end = on_epoch_end
main(sys.argv[1:], prog_name="im2vec")
"""


def test_train_resumable_continues_a_killed_run(tmp_path, monkeypatch):
    args = _cli_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, [*args, "--epochs", "40", "-o", "full.model", "--resumable"])
    assert res.exit_code == 0, res.output
    assert not list(tmp_path.glob("full.model.checkpoint*"))
    # the same command in a process of its own, killed (kill -9) once it has saved an epoch: by itself, as its
    # checkpoint is written. It was killed by this test as soon as the checkpoint appeared, which raced the run:
    # a late kill fell in a later epoch's save (between the arrays' rename and the main file's, the previous
    # epoch's record beside this one's W: fileio.atomic_save), or after the 40 epochs (~3 s) had ended
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": package_root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", _KILLED_AT_FIRST_CHECKPOINT, *args, "--epochs", "40", "-o",
                           "cut.model", "--resumable"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (tmp_path / "cut.model").exists()
    assert (tmp_path / "cut.model.checkpoint").exists()
    # other options: refused, naming them; the checkpoint stays
    other = runner.invoke(main, [*args, "--epochs", "41", "-o", "cut.model", "--resumable"])
    assert other.exit_code == 1 and "other inputs: options" in other.output
    assert (tmp_path / "cut.model.checkpoint").exists()
    # without --resumable: a fresh run, and a note that the checkpoint is there
    fresh = runner.invoke(main, [*args, "--epochs", "1", "-o", "cut.model"])
    assert fresh.exit_code == 0 and "holds an interrupted run" in fresh.output
    os.remove(tmp_path / "cut.model")
    os.remove(tmp_path / "cut.model.W.npy")
    again = runner.invoke(main, [*args, "--epochs", "40", "-o", "cut.model", "--resumable"])
    assert again.exit_code == 0 and "resuming the interrupted run" in again.output, again.output
    a, b = Im2Vec.load(str(tmp_path / "full.model")), Im2Vec.load(str(tmp_path / "cut.model"))
    assert np.array_equal(a.W, b.W) and np.array_equal(a.wv.vectors, b.wv.vectors)
    assert a.epochs == b.epochs == 40
    assert not list(tmp_path.glob("cut.model.checkpoint*"))
    # and --resumable trains what a plain run trains
    plain = runner.invoke(main, [*args, "--epochs", "40", "-o", "plain.model"])
    assert plain.exit_code == 0 and np.array_equal(Im2Vec.load(str(tmp_path / "plain.model")).W, a.W)


class Snapshot(CallbackAny2Vec):
    """Copies wv.vectors at each epoch's end (a callback that reads the images' rows: they are
    written from W for it)."""

    def __init__(self):
        self.vectors = []

    def on_epoch_end(self, model):
        self.vectors.append(np.array(model.wv.vectors))


def test_a_checkpoint_leaves_the_images_rows_out_and_its_load_writes_them_again(data, tmp_path, monkeypatch):
    """The checkpoint holds the words' rows only (the images' are W's: 40-80 GB an epoch at 100M);
    loading it writes them from W, giving the model as it was after the epoch, bit for bit."""
    path = str(tmp_path / "run.checkpoint")
    model = _joint(data, 4)
    snap = Snapshot()
    _interrupted(model, data.docs, path, epochs=4, after=2, also=[snap])
    n_words = int(np.count_nonzero(model._vocab_image_rows < 0))
    saved_rows = []
    restore = Im2Vec._restore_image_rows
    monkeypatch.setattr(Im2Vec, "_restore_image_rows",
                        lambda self: (saved_rows.append(len(self.wv.vectors)), restore(self))[1])
    loaded, record = read_checkpoint(path)
    assert saved_rows == [n_words] and n_words < len(model.wv) and record["epochs_done"] == 2
    assert np.array_equal(loaded.wv.vectors, snap.vectors[1])  # the model after epoch 2, image rows included
    assert "_image_rows_left_out" not in loaded.__dict__ and loaded._image_rows_from_W
    assert loaded.wv.most_similar("img:5", topn=5) == KeyedVectorsView(snap.vectors[1], loaded).most_similar("img:5")


class KeyedVectorsView:
    """The answers of `model`'s keys at `vectors` (gensim's own most_similar)."""

    def __init__(self, vectors, model):
        from gensim.models import KeyedVectors

        self.kv = KeyedVectors(vectors.shape[1])
        self.kv.add_vectors(model.wv.index_to_key, vectors)

    def most_similar(self, key):
        return self.kv.most_similar(key, topn=5)


def test_a_checkpoint_alone_costs_no_image_rows_at_the_epochs_ends(data, tmp_path, monkeypatch):
    """EpochCheckpoint does not read the images' rows: they are written once, when training ends,
    not at each epoch's end as for a callback that may read them."""
    writes = []
    real = Im2Vec._write_image_vectors
    monkeypatch.setattr(Im2Vec, "_write_image_vectors", lambda self, among=None: (writes.append(among), real(
        self, among))[1])
    model = _joint(data, 3)
    model.train(data.docs, total_examples=model.corpus_count, epochs=3,
                callbacks=[EpochCheckpoint(str(tmp_path / "a.checkpoint"), epochs=3)])
    assert writes == [None]
    writes.clear()
    model = _joint(data, 3)
    model.train(data.docs, total_examples=model.corpus_count, epochs=3, callbacks=[Snapshot()])
    assert writes == [None] * 4  # each epoch's end, and the end of training


def test_loading_a_checkpoint_to_look_at_it_leaves_the_vectors_file_alone(data, tmp_path):
    """Only resume() writes the restored rows into the model's vectors_file; Im2Vec.load of the
    checkpoint (to look at it) restores them in memory and makes no file."""
    import gc

    vf, path = tmp_path / "v.npy", str(tmp_path / "run.checkpoint")
    model = Im2Vec(image_features=data.features, epochs=3, vectors_file=vf, **OPTS)
    model.build_vocab(data.docs)
    _interrupted(model, data.docs, path, epochs=3, after=1)
    del model
    gc.collect()
    os.unlink(vf)
    looked = Im2Vec.load(path)
    assert not vf.exists() and type(looked.wv.vectors) is np.ndarray and looked.vectors_file == str(vf)
    del looked
    resumed = resume(path, data.docs)
    assert resumed.wv.vectors.filename == str(vf)


def test_a_checkpoint_of_several_workers_is_saved_and_resumed(data, tmp_path):
    """With workers > 1 each worker's copy of W (a lock inside) was pickled with the checkpoint:
    the first epoch's save raised TypeError and `im2vec train --resumable` (3 workers) failed."""
    path = str(tmp_path / "run.checkpoint")
    model = Im2Vec(image_features=data.features, epochs=3, **dict(OPTS, workers=2))
    model.build_vocab(data.docs)
    _interrupted(model, data.docs, path, epochs=3, after=2)
    resumed = resume(path, data.docs)
    assert resumed.epochs == 3 and np.isfinite(resumed.wv.vectors).all() and resumed._w_workers is None


def test_callbacks_given_as_a_generator_all_run(data, tmp_path):
    path = str(tmp_path / "run.checkpoint")
    model = _joint(data, 2)
    ran = Snapshot()
    model.train(data.docs, total_examples=model.corpus_count, epochs=2,
                callbacks=(c for c in [EpochCheckpoint(path, epochs=2), ran]))
    assert len(ran.vectors) == 2


def test_gensims_own_loaders_restore_the_images_rows_too(data, tmp_path):
    """Word2Vec.load (and any loader that runs Im2Vec's _load_specials) gives a row per key."""
    path = str(tmp_path / "run.checkpoint")
    model = _joint(data, 3)
    snap = Snapshot()
    _interrupted(model, data.docs, path, epochs=3, after=1, also=[snap])
    loaded = Word2Vec.load(path)
    assert isinstance(loaded, Im2Vec) and np.array_equal(loaded.wv.vectors, snap.vectors[0])
    assert loaded.wv["img:5"].shape == (16,)


def test_a_resumed_run_with_analogy_questions_is_the_uninterrupted_run(data, tmp_path):
    """The analogy step draws its negatives per epoch of the run: a resumed run draws those of
    the epochs after the checkpoint's (it drew the first epochs' again, W differing by 0.005)."""
    questions = [(f"img:{i}", "class0", "class1", f"img:{i + 1}") for i in range(0, 40, 2)]

    def make():
        m = Im2Vec(image_features=data.features, epochs=4, space_analogies=questions, space_analogy_negatives=8,
                   **OPTS)
        m.build_vocab(data.docs)
        return m

    full = make()
    full.train(data.docs, total_examples=full.corpus_count, epochs=4)
    path = str(tmp_path / "run.checkpoint")
    cut = make()
    _interrupted(cut, data.docs, path, epochs=4, after=2)
    resumed = resume(path, data.docs)
    assert np.array_equal(resumed.W, full.W) and np.array_equal(resumed.wv.vectors, full.wv.vectors)


@pytest.mark.parametrize("where", ["while its rows are restored", "before its training begins", "in its first epoch"])
def test_a_resume_interrupted_before_its_checkpoint_resumes_again_in_the_runs_file(data, tmp_path, monkeypatch,
                                                                                   where):
    """resume() writes the checkpoint's words' rows into the run's own vectors file in place (the
    images' rows are left to the training): the file the checkpoint records stays that file, so a
    resume stopped before it saved a checkpoint of its own is resumed again (a new file at the path
    was refused as "not this model's"), and ends as the uninterrupted run."""
    import gc

    full = _joint(data, 4)
    full.train(data.docs, total_examples=full.corpus_count, epochs=4)
    vf, path = tmp_path / "v.npy", str(tmp_path / "run.checkpoint")
    model = Im2Vec(image_features=data.features, epochs=4, vectors_file=vf, **OPTS)
    model.build_vocab(data.docs)
    _interrupted(model, data.docs, path, epochs=4, after=2)
    inode = os.stat(vf).st_ino
    del model
    gc.collect()
    if where in ("while its rows are restored", "before its training begins"):
        if where == "while its rows are restored":  # the file mapped again, the words' rows not yet in it
            real = Im2Vec._reopen_own_vectors_file

            def interrupted(self, *args):
                assert real(self, *args)
                raise KeyboardInterrupt

            monkeypatch.setattr(Im2Vec, "_reopen_own_vectors_file", interrupted)
        else:  # loaded (the images' rows unwritten in the file), stopped before train() began
            def interrupted(self):
                raise KeyboardInterrupt

            monkeypatch.setattr(Im2Vec, "_ensure_writable", interrupted)
        with pytest.raises(KeyboardInterrupt):
            resume(path, data.docs)
        monkeypatch.undo()
    else:
        class Stops:  # the documents, stopping a hundred into the epoch (a re-iterable, as gensim wants)
            def __iter__(self):
                for i, doc in enumerate(data.docs):
                    if i == 100:
                        raise Crash
                    yield doc

        with pytest.raises(Crash):
            resume(path, Stops())
    gc.collect()
    assert os.stat(vf).st_ino == inode
    resumed = resume(path, data.docs)
    assert resumed.wv.vectors.filename == str(vf) and resumed.epochs == 4
    assert np.array_equal(resumed.W, full.W) and np.array_equal(resumed.wv.vectors, full.wv.vectors)


def test_train_resumable_with_its_default_workers_saves_its_checkpoints(tmp_path, monkeypatch):
    """`im2vec train --resumable` as the README shows it, without --workers (3): it failed at the
    first epoch's checkpoint (TypeError: cannot pickle '_thread.lock')."""
    args = _cli_inputs(tmp_path)
    at = args.index("--workers")
    del args[at:at + 2]
    monkeypatch.chdir(tmp_path)
    saved = []
    real = EpochCheckpoint.on_epoch_end
    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", lambda self, model: (
        real(self, model), saved.append(os.path.exists(self.path)))[0])
    res = CliRunner().invoke(main, [*args, "--epochs", "3", "-o", "m.model", "--resumable"])
    assert res.exit_code == 0, res.output
    assert saved == [True, True, True] and not (tmp_path / "m.model.checkpoint").exists()
