"""Im2Vec.save of a model whose images' rows of wv.vectors are not W's: saved during train() from a
callback (W moves from an epoch's first job; the rows are written only at the epochs' ends for
callbacks that read them, and as training ends), or just after checkpoint.resume (the rows left
unwritten). The saved model is saved as a checkpoint is, without those rows, and any load writes
them from the saved W, so the loaded model's wv agrees with its project(); with
move_vectors_file=True they are written from W into the vectors file before it is moved. A model
whose rows are W's is saved as always."""

import gc
import os

import numpy as np
import pytest
import test_checkpoint_resume_rows as rows_tests
from gensim.models.callbacks import CallbackAny2Vec
from gensim.utils import unpickle

from gensim_im2vec import Im2Vec
from gensim_im2vec.checkpoint import resume

EPOCHS = rows_tests.EPOCHS
data = rows_tests.data  # the same corpus fixture: 200 images of 16 features, 4 classes
_model, _full, _checkpointed = rows_tests._model, rows_tests._full, rows_tests._checkpointed
_image_idx, _assert_rows_are_W = rows_tests._image_idx, rows_tests._assert_rows_are_W


class SaveAt(CallbackAny2Vec):
    """Saves the model to `path` in its `hook` (``on_train_begin``, ``on_epoch_begin`` or
    ``on_epoch_end``) of epoch `epoch` (1-based), keeping what the model held then: W, the images'
    and the words' rows, the flag. `reads`: whether it says it reads the images' rows (without the
    attribute, train() writes them at each epoch's end for it)."""

    def __init__(self, path, hook, epoch=1, reads=True):
        self.path, self.hook, self.epoch, self.reads_image_rows = str(path), hook, epoch, reads
        self.n, self.at_save = 0, None

    def _save(self, model, hook):
        if hook != self.hook or self.n != self.epoch or self.at_save is not None:
            return
        idx = _image_idx(model)
        words = np.flatnonzero(model._vocab_image_rows < 0)
        self.at_save = dict(W=np.array(model.W), images=np.array(model.wv.vectors[idx]),
                            words=np.array(model.wv.vectors[words]), from_W=model._image_rows_from_W)
        model.save(self.path)
        assert "_image_rows_left_out" not in model.__dict__  # the live model holds every row again

    def on_train_begin(self, model):
        self.n = 1
        self._save(model, "on_train_begin")

    def on_epoch_begin(self, model):
        self._save(model, "on_epoch_begin")

    def on_epoch_end(self, model):
        self._save(model, "on_epoch_end")
        self.n += 1


def _projected(model, data):
    """model.project() of each vocabulary image's features, in vocabulary order."""
    keys = [model.wv.index_to_key[i] for i in _image_idx(model)]
    return model.project(np.stack([data.features[k] for k in keys]))


def _assert_loads_as_saved(saver, data, *, stale):
    """Each load of `saver`'s file (in memory and mmap='r'): the W saved, the words' rows saved,
    the images' rows project() of that W. `stale`: the rows the live model held at the save were
    not W's (so a save of them as they were fails here)."""
    at = saver.at_save
    assert at is not None, "the callback never saved"
    for kwargs in ({}, {"mmap": "r"}):
        loaded = Im2Vec.load(saver.path, **kwargs)
        assert np.array_equal(loaded.W, at["W"])
        assert np.array_equal(loaded.wv.vectors[loaded._vocab_image_rows < 0], at["words"])
        _assert_rows_are_W(loaded, data)
        assert loaded._image_rows_from_W and "_image_rows_left_out" not in loaded.__dict__
        expected = _projected(loaded, data)
        if stale:  # the rows the save found were not these (the test would pass with them saved as they were)
            assert not np.allclose(at["images"], expected, atol=1e-3)
        else:
            np.testing.assert_allclose(at["images"], expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- saves during train()

SAVES = {
    # W moved over epoch 1 and nothing wrote the rows (no callback reads them): the rows of the start
    "on_epoch_begin of epoch 2, reads_image_rows=False": dict(hook="on_epoch_begin", epoch=2, reads=False),
    "on_epoch_end of epoch 2, reads_image_rows=False": dict(hook="on_epoch_end", epoch=2, reads=False),
    "on_epoch_end of epoch 4 (the last), reads_image_rows=False": dict(hook="on_epoch_end", epoch=4, reads=False),
}


@pytest.mark.parametrize("opts", rows_tests.CONFIGS.values(), ids=rows_tests.CONFIGS.keys())
@pytest.mark.parametrize("before", ["built", "trained"])
@pytest.mark.parametrize("save", SAVES.values(), ids=SAVES.keys())
def test_a_callbacks_save_during_training_loads_with_the_rows_of_its_W(data, tmp_path, caplog, save, before, opts):
    """`before`: the model trains from a fresh vocabulary (its rows gensim's random start), or has
    trained once already (its rows W's, the flag True as the second train() begins: train() must say
    they are not W's once W moves). `opts`: the space head (with its readout and common directions,
    fitted as the first train() ends), or the output head."""
    reference = _model(data, **opts)
    model = _model(data, **opts)
    if before == "trained":
        for m in (reference, model):
            m.train(data.docs, total_examples=m.corpus_count, epochs=1)
        assert model._image_rows_from_W
    reference.train(data.docs, total_examples=reference.corpus_count, epochs=EPOCHS)
    saver = SaveAt(tmp_path / "m.model", **save)
    with caplog.at_level("INFO", logger="gensim_im2vec.model"):
        model.train(data.docs, total_examples=model.corpus_count, epochs=EPOCHS, callbacks=[saver])
    assert saver.at_save["from_W"] is False
    assert "saved without them, and loading it writes them from W" in caplog.text
    _assert_loads_as_saved(saver, data, stale=True)
    # the save in the callback changed nothing of the training: the run without it, bit for bit
    assert np.array_equal(model.W, reference.W) and np.array_equal(model.wv.vectors, reference.wv.vectors)
    assert model._image_rows_from_W
    _assert_rows_are_W(model, data)


def test_a_save_where_the_rows_were_just_written_is_right_too(data, tmp_path):
    """A callback that reads the images' rows gets them written at each epoch's end: its save there
    holds W's rows; at the next epoch's beginning the flag already says they may not be (W is about
    to move), and the load still gives W's rows."""
    for hook in ("on_epoch_end", "on_epoch_begin"):
        saver = SaveAt(tmp_path / f"{hook}.model", hook, epoch=2, reads=True)
        model = _model(data)
        model.train(data.docs, total_examples=model.corpus_count, epochs=EPOCHS, callbacks=[saver])
        assert saver.at_save["from_W"] is (hook == "on_epoch_end")
        _assert_loads_as_saved(saver, data, stale=False)


def test_a_save_during_training_into_a_vectors_file_model(data, tmp_path):
    """wv.vectors in the run's vectors_file (a memory map): the save leaves the images' rows out of the
    saved model, never out of the file the training goes on writing."""
    saver = SaveAt(tmp_path / "m.model", "on_epoch_begin", epoch=3, reads=False)
    path = tmp_path / "v.npy"
    model = _model(data, vectors_file=path)
    model.train(data.docs, total_examples=model.corpus_count, epochs=EPOCHS, callbacks=[saver])
    assert model.wv.vectors.filename == str(path) and len(model.wv.vectors) == len(model.wv)
    _assert_loads_as_saved(saver, data, stale=True)
    reference = _full(data)
    assert np.array_equal(model.wv.vectors, reference.wv.vectors)
    del model
    gc.collect()
    assert np.array_equal(np.load(path), reference.wv.vectors)


# ----------------------------------------------------------------------------- after checkpoint.resume


def test_a_save_as_a_resumed_training_begins_loads_W_rows_not_zeros(data, tmp_path):
    """resume() leaves the images' rows unwritten (zeros) and a callback that says it does not read
    them gets none written as training begins: its save there loads with W's rows."""
    full = _full(data)
    path = str(tmp_path / "run.checkpoint")
    _checkpointed(data, path, after=2)
    saver = SaveAt(tmp_path / "m.model", "on_train_begin", reads=False)
    model = resume(path, data.docs, callbacks=[saver])
    assert saver.at_save["from_W"] is False and not saver.at_save["images"].any()  # zeros, as resume left them
    _assert_loads_as_saved(saver, data, stale=True)
    assert np.array_equal(model.W, full.W) and np.array_equal(model.wv.vectors, full.wv.vectors)


# ----------------------------------------------------------------------------- rows that are W's


def test_a_trained_models_save_holds_every_row_as_before(data, tmp_path, monkeypatch):
    """The images' rows of a trained model are W's: saved as they are (the pickle's wv has a row per
    key and no record of rows left out), and no load writes them."""
    model = _full(data)
    vectors = model.wv.vectors
    path = str(tmp_path / "m.model")
    model.save(path)
    assert model.wv.vectors is vectors and "_image_rows_left_out" not in model.__dict__
    pickled = unpickle(path)  # the main file alone, as written (this model's arrays are inside it)
    assert "_image_rows_left_out" not in pickled.__dict__
    assert np.array_equal(pickled.wv.vectors, vectors)
    model.save(str(tmp_path / "sep.model"), sep_limit=0)  # every array in a companion .npy
    assert np.array_equal(np.load(str(tmp_path / "sep.model.wv.vectors.npy")), vectors)
    written = []
    monkeypatch.setattr(Im2Vec, "_write_rows", lambda self, idx, v=None: written.append(len(idx)))
    for kwargs in ({}, {"mmap": "r"}):
        loaded = Im2Vec.load(path, **kwargs)
        assert np.array_equal(loaded.wv.vectors, vectors)
    assert written == []


def test_the_context_that_leaves_rows_out_nests(data):
    """EpochCheckpoint wraps Im2Vec.save, which may wrap it again: the inner one does nothing, the
    outer one puts everything back."""
    model = _model(data)
    model.train(data.docs, total_examples=model.corpus_count, epochs=1)
    vectors, n, n_words = model.wv.vectors, len(model.wv), int(np.sum(model._vocab_image_rows < 0))
    with model._saved_without_image_rows():
        assert model._image_rows_left_out == n and len(model.wv.vectors) == n_words
        with model._saved_without_image_rows():
            assert model._image_rows_left_out == n and len(model.wv.vectors) == n_words
        assert model._image_rows_left_out == n and len(model.wv.vectors) == n_words
    assert "_image_rows_left_out" not in model.__dict__ and model.wv.vectors is vectors


# ----------------------------------------------------------------------------- save(move_vectors_file=True)


def test_move_vectors_file_writes_the_rows_from_W_before_the_move(data, tmp_path, caplog):
    """A model whose vectors file holds no image row of W (built, never trained: zeros there) moves that
    file into the save: the rows are written into it first, then it is moved (the same file)."""
    path = tmp_path / "v.npy"
    model = _model(data, vectors_file=path)
    idx = _image_idx(model)
    assert model._vectors_in_file() and not model._image_rows_from_W
    stale = np.array(model.wv.vectors[idx])
    assert not stale.any()
    inode, saved = os.stat(path).st_ino, str(tmp_path / "m.model")
    with caplog.at_level("INFO", logger="gensim_im2vec.model"):
        model.save(saved, move_vectors_file=True)
    assert "written from W into" in caplog.text
    assert not path.exists() and os.stat(saved + ".wv.vectors.npy").st_ino == inode  # moved, not copied
    assert model._image_rows_from_W
    _assert_rows_are_W(model, data)  # the model holds the moved file, read-only
    on_disk = np.load(saved + ".wv.vectors.npy")
    np.testing.assert_allclose(on_disk[idx], _projected(model, data), rtol=1e-5, atol=1e-6)
    for kwargs in ({}, {"mmap": "r"}):
        loaded = Im2Vec.load(saved, **kwargs)
        assert np.array_equal(loaded.wv.vectors, on_disk) and np.array_equal(loaded.W, model.W)
        _assert_rows_are_W(loaded, data)
