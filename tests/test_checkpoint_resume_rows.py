"""checkpoint.resume() loads a checkpoint without writing the images' rows of wv.vectors (a pass
over every feature row: most of a 10M-image load, a whole feature store at 100M): the training it
continues never reads them and writes every one from W when it ends, when it is interrupted, and
at each epoch's end for callbacks that may read them. Im2Vec.load of a checkpoint (to look at it)
still writes them."""

import gc

import numpy as np
import pytest
from gensim.models.callbacks import CallbackAny2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.checkpoint import EpochCheckpoint, read_checkpoint, resume
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=16, sg=1, min_count=1, sample=0, workers=1, seed=1, image_batch=32)
EPOCHS = 4


class Crash(Exception):
    pass


class StopAfter(CallbackAny2Vec):
    """Raises `exc` at the end of its `n`-th epoch (after the checkpoint), keeping the model it
    trained. It does not read the images' rows (none are written at the epochs' ends for it)."""

    reads_image_rows = False

    def __init__(self, n, exc):
        self.n, self.exc, self.seen, self.model = n, exc, 0, None

    def on_epoch_end(self, model):
        self.model = model
        self.seen += 1
        if self.seen == self.n:
            raise self.exc


class Snapshot(CallbackAny2Vec):
    """Copies wv.vectors at each epoch's end (it may read the images' rows: they are written for it)."""

    def __init__(self):
        self.vectors = []

    def on_epoch_end(self, model):
        self.vectors.append(np.array(model.wv.vectors))


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=200, n_features=16, n_text_sentences=100, seed=0)


def _model(data, **opts):
    model = Im2Vec(image_features=data.features, epochs=EPOCHS, **{**OPTS, **opts})
    model.build_vocab(data.docs)
    return model


def _full(data, callbacks=(), **opts):
    model = _model(data, **opts)
    model.train(data.docs, total_examples=model.corpus_count, epochs=EPOCHS, callbacks=list(callbacks))
    return model


def _checkpointed(data, path, *, after, **opts):
    """A run of EPOCHS with its checkpoint at `path`, stopped at the end of epoch `after`."""
    model = _model(data, **opts)
    with pytest.raises(Crash):
        model.train(data.docs, total_examples=model.corpus_count, epochs=EPOCHS,
                    callbacks=[EpochCheckpoint(path, epochs=EPOCHS), StopAfter(after, Crash)])
    return model


def _image_idx(model):
    return np.flatnonzero(model._vocab_image_rows >= 0)


def _spy(monkeypatch):
    """Rows projected from W (Im2Vec.project_rows: what writes the images' rows of wv), and what
    the model is when train() is called (after resume's load, before any training)."""
    projected, at_train = [], {}
    project_rows, train = Im2Vec.project_rows, Im2Vec.train

    def counting(self, rows):
        projected.append(len(rows))
        return project_rows(self, rows)

    def training(self, *args, **kwargs):
        if not at_train:
            idx = _image_idx(self)
            at_train.update(projected=sum(projected), from_W=self._image_rows_from_W,
                            rows=np.array(self.wv.vectors[idx]), n_rows=len(self.wv.vectors))
        return train(self, *args, **kwargs)

    monkeypatch.setattr(Im2Vec, "project_rows", counting)
    monkeypatch.setattr(Im2Vec, "train", training)
    return projected, at_train


def _assert_rows_are_W(model, data):
    """Every image row of model.wv is model.project() of its features."""
    idx = _image_idx(model)
    keys = [model.wv.index_to_key[i] for i in idx]
    expected = model.project(np.stack([data.features[k] for k in keys]))
    rows = np.asarray(model.wv.vectors[idx])
    assert np.abs(rows).max() > 0
    np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-6)


CONFIGS = {
    "space head": {},
    "space head, readout and common directions": dict(space_readout=0.5, space_common_directions=1),
    "space head and the neighbours' words": dict(space_readout=0.5, space_neighbours=5),
    "output head": dict(image_heads="output"),
}


@pytest.mark.parametrize("opts", CONFIGS.values(), ids=CONFIGS.keys())
def test_resume_writes_no_image_row_on_load_and_ends_as_the_uninterrupted_run(data, tmp_path, monkeypatch, opts):
    full = _full(data, **opts)
    path = str(tmp_path / "run.checkpoint")
    _checkpointed(data, path, after=2, **opts)
    gc.collect()
    projected, at_train = _spy(monkeypatch)
    resumed = resume(path, data.docs)
    n_img = len(_image_idx(resumed))
    # the load: a row per key, the images' rows not written (zeros) and not claimed to be W's
    assert at_train["projected"] == 0 and at_train["from_W"] is False
    assert at_train["n_rows"] == len(resumed.wv) and not at_train["rows"].any()
    # written once, every one, when the training ended
    assert sum(projected) == n_img > 0 and resumed._image_rows_from_W
    _assert_rows_are_W(resumed, data)
    # the model of the uninterrupted run, bit for bit: W, the words' rows and the images' rows
    assert np.array_equal(resumed.W, full.W) and np.array_equal(resumed.wv.vectors, full.wv.vectors)
    assert np.array_equal(resumed.syn1neg, full.syn1neg)


def test_resume_into_the_runs_vectors_file_writes_no_image_row_on_load(data, tmp_path, monkeypatch):
    full = _full(data)
    vf, path = tmp_path / "v.npy", str(tmp_path / "run.checkpoint")
    _checkpointed(data, path, after=1, vectors_file=vf)
    gc.collect()  # the interrupted run's model lets go of its file
    projected, at_train = _spy(monkeypatch)
    resumed = resume(path, data.docs)
    assert at_train["projected"] == 0 and at_train["from_W"] is False
    assert sum(projected) == len(_image_idx(resumed))
    assert resumed.wv.vectors.filename == str(vf)
    assert np.array_equal(resumed.wv.vectors, full.wv.vectors) and np.array_equal(resumed.W, full.W)
    del resumed
    gc.collect()
    assert np.array_equal(np.load(vf), full.wv.vectors)  # on its disk, the images' rows included


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Crash])
def test_an_interrupted_resume_leaves_W_rows_and_resumes_again(data, tmp_path, monkeypatch, exc):
    """A resumed training stopped after an epoch (Ctrl-C, a callback's error) writes the images'
    rows from W as any interrupted train() does: the model it leaves is the model its new
    checkpoint loads, image rows included; resumed again, it ends as the uninterrupted run."""
    full = _full(data)
    path = str(tmp_path / "run.checkpoint")
    _checkpointed(data, path, after=1)
    projected, at_train = _spy(monkeypatch)
    stop = StopAfter(1, exc)
    with pytest.raises(exc):
        resume(path, data.docs, callbacks=[stop])
    stopped, n_img = stop.model, len(_image_idx(stop.model))
    assert at_train["projected"] == 0 and not at_train["rows"].any()
    assert sum(projected) == n_img and stopped._image_rows_from_W  # written when it stopped, no sooner
    _assert_rows_are_W(stopped, data)
    # a plain load of the checkpoint it saved (epoch 2), after a resume in this process: the rows written
    del projected[:]
    looked, record = read_checkpoint(path)
    assert record["epochs_done"] == 2 and sum(projected) == n_img and looked._image_rows_from_W
    assert np.array_equal(looked.wv.vectors, stopped.wv.vectors) and np.array_equal(looked.W, stopped.W)
    monkeypatch.undo()
    again = resume(path, data.docs)
    assert np.array_equal(again.W, full.W) and np.array_equal(again.wv.vectors, full.wv.vectors)


def test_a_callback_that_reads_the_rows_gets_them_written_at_each_resumed_epochs_end(data, tmp_path):
    snap_full = Snapshot()
    _full(data, callbacks=[snap_full])
    path = str(tmp_path / "run.checkpoint")
    _checkpointed(data, path, after=2)
    snap = Snapshot()
    resume(path, data.docs, callbacks=[snap])
    assert len(snap.vectors) == 2
    for got, expected in zip(snap.vectors, snap_full.vectors[2:]):  # epochs 3 and 4
        assert np.array_equal(got, expected)


def test_loading_a_checkpoint_to_look_at_it_writes_the_image_rows(data, tmp_path, monkeypatch):
    """Im2Vec.load (not resume): the model after the checkpoint's epoch, the images' rows written."""
    path = str(tmp_path / "run.checkpoint")
    snap = Snapshot()
    model = _model(data)
    with pytest.raises(Crash):
        model.train(data.docs, total_examples=model.corpus_count, epochs=EPOCHS,
                    callbacks=[EpochCheckpoint(path, epochs=EPOCHS), snap, StopAfter(2, Crash)])
    projected, _ = _spy(monkeypatch)
    loaded = Im2Vec.load(path)
    assert sum(projected) == len(_image_idx(loaded)) and loaded._image_rows_from_W
    assert np.array_equal(loaded.wv.vectors, snap.vectors[1])
    _assert_rows_are_W(loaded, data)


def test_a_callback_that_reads_the_rows_as_training_begins_gets_them_written(data, tmp_path):
    """A user's on_train_begin on a resumed run (a callback that may read the images' rows) sees
    them as W has them, not the zeros resume's load left; the run is still the uninterrupted one."""
    class AtBegin(CallbackAny2Vec):
        def on_train_begin(self, model):
            idx = _image_idx(model)
            keys = [model.wv.index_to_key[i] for i in idx]
            self.rows = np.array(model.wv.vectors[idx])
            self.expected = model.project(np.stack([data.features[k] for k in keys]))

    full = _full(data)
    path = str(tmp_path / "run.checkpoint")
    _checkpointed(data, path, after=2)
    begin = AtBegin()
    model = resume(path, data.docs, callbacks=[begin])
    assert np.abs(begin.rows).max() > 0
    np.testing.assert_allclose(begin.rows, begin.expected, rtol=1e-5, atol=1e-6)
    assert "_image_rows_unwritten" not in model.__dict__
    assert np.array_equal(model.wv.vectors, full.wv.vectors) and np.array_equal(model.W, full.W)
