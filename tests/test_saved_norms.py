"""``Im2Vec.save`` saves ``wv.norms`` with the rows they are the norms of, so that gensim's own
``model.wv.most_similar`` / ``similar_by_vector`` / ``get_vector(norm=True)`` of a loaded model
(``mmap="r"`` too) finds them filled: gensim's ``KeyedVectors.fill_norms`` squares a private copy of
every vector at once (40 GB at 100M × 100) on the first search otherwise.

Stale norms give wrong rankings silently, so every save here ends in a load whose ``wv.norms`` are
either the norms of its ``wv.vectors``, row for row, or None (gensim computes them then): a save whose
rows are not final (during ``train()``, a checkpoint, rows written into a pickled copy) saves none,
and a save recomputes them from the rows it saves, whatever the live model held. No timing here
(``benchmarks/bench_memory.py --rows`` measures the first search)."""

import io
import os
import pickle

import numpy as np
import pytest
from gensim.models.callbacks import CallbackAny2Vec
from gensim.models.keyedvectors import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec.checkpoint import EpochCheckpoint, resume
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=12, sg=1, min_count=1, sample=0, workers=1, seed=1, image_batch=32)
EPOCHS = 3


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=120, n_features=16, n_text_sentences=60, seed=0)


def _model(data, docs=None, images=True, **opts):
    model = Im2Vec(image_features=data.features if images else None, epochs=EPOCHS, **{**OPTS, **opts})
    model.build_vocab(data.docs if docs is None else docs)
    return model


def _trained(data, docs=None, callbacks=(), **opts):
    model = _model(data, docs, **opts)
    model.train(data.docs if docs is None else docs, total_examples=model.corpus_count, epochs=EPOCHS,
                callbacks=list(callbacks))
    return model


@pytest.fixture(scope="module")
def trained(data):
    return _trained(data)


def _norms_of(model):
    return np.linalg.norm(np.asarray(model.wv.vectors), axis=1)


def _assert_norms_right(model):
    """``wv.norms`` filled, and the norms of ``wv.vectors`` row for row (the same float32 values)."""
    norms = model.wv.norms
    assert norms is not None, "no norms"
    assert norms.dtype == model.wv.vectors.dtype == np.float32 and norms.shape == (len(model.wv),)
    np.testing.assert_array_equal(np.asarray(norms), _norms_of(model))


def _assert_norms_right_or_none(model):
    if model.wv.norms is not None:
        _assert_norms_right(model)


def _searches(model, key):
    wv = model.wv
    return [wv.most_similar(key, topn=8), wv.most_similar(positive=[key, "class1"], negative=["class2"], topn=8),
            wv.similar_by_vector(np.asarray(wv.vectors[3]), topn=8), wv.get_vector(key, norm=True).tolist()]


def _fresh_answers(path, key):
    """The answers of the model at `path` with norms gensim computes again (as saved by the code before)."""
    model = Im2Vec.load(path)
    model.wv.norms = None
    return _searches(model, key)


def _gensim_computes(monkeypatch):
    """How often gensim's KeyedVectors.fill_norms computed norms (found them missing)."""
    seen = {"computed": 0}
    real = KeyedVectors.fill_norms

    def fill(self, force=False):
        if self.norms is None or force:
            seen["computed"] += 1
        return real(self, force)

    monkeypatch.setattr(KeyedVectors, "fill_norms", fill)
    return seen


# ----------------------------------------------------------------------------- saved, loaded, searched


def test_a_loaded_model_has_its_norms_memory_mapped_and_gensims_search_uses_them(trained, tmp_path, monkeypatch):
    path = str(tmp_path / "m.model")
    trained.save(path, sep_limit=0)  # every array in its own .npy: memory-mapped by load(mmap="r")
    assert os.path.exists(path + ".wv.norms.npy")
    expected = _fresh_answers(path, "img:0")
    seen = _gensim_computes(monkeypatch)
    model = Im2Vec.load(path, mmap="r")
    assert isinstance(model.wv.vectors, np.memmap) and isinstance(model.wv.norms, np.memmap)
    _assert_norms_right(model)
    assert _searches(model, "img:0") == expected
    assert seen["computed"] == 0  # gensim found them filled
    assert _searches(trained, "img:0") == expected  # the live model: the same answers


def test_small_models_keep_their_norms_in_the_pickle(trained, tmp_path):
    """gensim's rule: an array of fewer than sep_limit values (10M: 40 MB of norms) is pickled; at
    100M rows the norms, like the vectors, are a .npy of their own, memory-mapped by load(mmap="r")."""
    path = str(tmp_path / "m.model")
    trained.save(path)
    assert not os.path.exists(path + ".wv.norms.npy")
    _assert_norms_right(Im2Vec.load(path, mmap="r"))
    assert Im2Vec.load(path).wv.norms is None  # a load into memory leaves them out (see the add_vector test)


# ----------------------------------------------------------------------------- never stale


def test_a_save_saves_the_norms_of_its_rows_not_the_ones_the_live_model_held(data, tmp_path):
    """Norms a search filled, then rows changed behind gensim's back (wv.vectors written in place, which
    no one tells wv.norms): the save computes them again from the rows it saves."""
    model = _trained(data)
    model.wv.most_similar("img:0")  # gensim fills wv.norms
    held = np.array(model.wv.norms)
    model.wv.vectors[::3] *= 2.0
    assert np.array_equal(model.wv.norms, held)  # stale now
    path = str(tmp_path / "m.model")
    model.save(path, sep_limit=0)
    loaded = Im2Vec.load(path, mmap="r")
    _assert_norms_right(loaded)
    assert not np.allclose(np.asarray(loaded.wv.norms)[::3], held[::3])
    _assert_norms_right(model)  # the live model's, filled by the save


def test_a_model_saved_with_norms_then_trained_again_saves_new_ones(trained, data, tmp_path):
    first = str(tmp_path / "first.model")
    trained.save(first, sep_limit=0)
    model = Im2Vec.load(first, mmap="r")
    before = np.array(model.wv.norms)
    model.wv.vectors = np.array(model.wv.vectors)  # (training writes the rows: a private copy)
    model.train(data.docs, total_examples=model.corpus_count, epochs=1)
    _assert_norms_right_or_none(model)
    second = str(tmp_path / "second.model")
    model.save(second, sep_limit=0)
    loaded = Im2Vec.load(second, mmap="r")
    _assert_norms_right(loaded)
    assert not np.allclose(np.asarray(loaded.wv.norms), before)  # the rows moved
    assert _searches(loaded, "img:5") == _fresh_answers(second, "img:5")


def test_the_load_drops_norms_that_are_not_its_vectors(trained, tmp_path, caplog):
    """A norms file changed (or a vectors file replaced) since the save: the load checks a few rows'
    norms, drops them with a warning, and gensim computes them again."""
    path = str(tmp_path / "m.model")
    trained.save(path, sep_limit=0)
    expected = _fresh_answers(path, "img:0")
    norms = np.load(path + ".wv.norms.npy")
    np.save(path + ".wv.norms.npy", norms * np.float32(1.5))
    with caplog.at_level("WARNING", logger="gensim_im2vec.model"):
        model = Im2Vec.load(path, mmap="r")
    assert model.wv.norms is None and "do not belong to its vectors" in caplog.text
    assert _searches(model, "img:0") == expected
    np.save(path + ".wv.norms.npy", norms[:-1])  # one short
    assert Im2Vec.load(path, mmap="r").wv.norms is None


def test_a_model_saved_without_norms_loads_and_fills_them_lazily(trained, tmp_path, monkeypatch):
    """A model saved by the code before (no norms): norms None after the load, filled at the first search."""
    path = str(tmp_path / "old.model")
    with monkeypatch.context() as m:
        m.setattr(Im2Vec, "_saved_rows_final", lambda self, left_out: False)
        trained.save(path, sep_limit=0)
    assert not os.path.exists(path + ".wv.norms.npy")
    model = Im2Vec.load(path, mmap="r")
    assert model.wv.norms is None
    answers = _searches(model, "img:1")
    _assert_norms_right(model)
    assert [k for k, _ in model.most_similar_words("img:1", topn=5)] == \
        [k for k, _ in trained.most_similar_words("img:1", topn=5)]
    assert answers == _searches(trained, "img:1")


# ----------------------------------------------------------------------------- saves whose rows are not final


class SaveAt(CallbackAny2Vec):
    """Saves the model to `path` (or into a file handle) at the end of epoch `epoch`, after a search
    filled the live norms."""

    def __init__(self, path, epoch=1, reads=True, handle=False):
        self.path, self.epoch, self.reads_image_rows, self.handle, self.n = str(path), epoch, reads, handle, 0

    def on_epoch_end(self, model):
        self.n += 1
        if self.n != self.epoch:
            return
        model.wv.most_similar(model.wv.index_to_key[0])  # live norms, stale once the next epoch moves the rows
        if self.handle:
            with open(self.path, "wb") as f:
                model.save(f)
        else:
            model.save(self.path, sep_limit=0)


@pytest.mark.parametrize("reads", [True, False], ids=["rows-written", "rows-not-written"])
@pytest.mark.parametrize("handle", [False, True], ids=["path", "handle"])
def test_a_save_during_training_saves_no_norms(data, tmp_path, reads, handle):
    path = tmp_path / "m.model"
    _trained(data, callbacks=[SaveAt(path, epoch=1, reads=reads, handle=handle)])
    if handle:
        with open(path, "rb") as f:
            loaded = pickle.load(f)
        assert loaded.wv.norms is None
    else:
        assert not os.path.exists(str(path) + ".wv.norms.npy")
        for kwargs in ({}, {"mmap": "r"}):
            assert Im2Vec.load(str(path), **kwargs).wv.norms is None


@pytest.mark.parametrize("images", [True, False], ids=["images", "text-only"])
def test_a_checkpoint_saves_no_norms_and_its_resume_saves_right_ones(data, tmp_path, images):
    path = str(tmp_path / "run.checkpoint")
    docs = data.docs if images else [d for d in data.docs if not d[0].startswith("img:")]

    class Stop(Exception):
        pass

    class StopAfter(CallbackAny2Vec):
        reads_image_rows = False

        def on_epoch_end(self, model):
            model.wv.most_similar(model.wv.index_to_key[0])  # live norms at the checkpoint
            raise Stop

    model = _model(data, docs, images=images)
    with pytest.raises(Stop):
        model.train(docs, total_examples=model.corpus_count, epochs=EPOCHS,
                    callbacks=[EpochCheckpoint(path, epochs=EPOCHS), StopAfter()])
    for kwargs in ({}, {"mmap": "r"}):  # (a checkpoint's load writes the images' rows from W)
        assert Im2Vec.load(path, **kwargs).wv.norms is None
    saved = str(tmp_path / "as-resumed.model")

    def save_as_it_begins(model):
        model.save(saved, sep_limit=0)

    resumed = resume(path, docs, before_train=save_as_it_begins)
    as_resumed = Im2Vec.load(saved, mmap="r")
    if images:  # the images' rows left unwritten by resume: saved without them, written by the load
        assert as_resumed.wv.norms is None
    else:  # every row as it is, the training not begun: a model like any other
        _assert_norms_right(as_resumed)
    done = str(tmp_path / "done.model")
    resumed.save(done, sep_limit=0)
    _assert_norms_right(Im2Vec.load(done, mmap="r"))


def test_a_handle_save_of_rows_written_into_the_copy_has_no_norms(data, tmp_path):
    """Built, not trained: the images' rows are not W's; a save to a file handle writes them from W into
    the pickled copy, with no norms."""
    model = _model(data)
    model.wv.most_similar("img:0")  # norms of the rows the copy does not hold
    buf = io.BytesIO()
    model.save(buf)
    loaded = pickle.loads(buf.getvalue())
    assert loaded.wv.norms is None and loaded._image_rows_from_W
    trained = _trained(data)
    buf = io.BytesIO()
    trained.save(buf)
    _assert_norms_right(pickle.loads(buf.getvalue()))  # rows that are final: norms filled, pickled


# ----------------------------------------------------------------------------- how the rows got there


def test_move_vectors_file_saves_the_norms_of_the_moved_rows(data, tmp_path):
    for name, model in (("trained", _trained(data, vectors_file=tmp_path / "t.npy")),
                        ("built", _model(data, vectors_file=tmp_path / "b.npy"))):  # rows written from W at the save
        path = str(tmp_path / f"{name}.model")
        model.save(path, move_vectors_file=True)
        _assert_norms_right(model)
        loaded = Im2Vec.load(path, mmap="r")
        _assert_norms_right(loaded)
        assert Im2Vec.load(path).wv.norms is None
        assert _searches(loaded, "img:2") == _fresh_answers(path, "img:2")


def test_a_compressed_save_has_right_norms(trained, tmp_path):
    path = str(tmp_path / "m.model.gz")
    trained.save(path, sep_limit=0)
    model = Im2Vec.load(path)  # (compressed: nothing can be memory-mapped, so the load leaves the norms out)
    assert model.wv.norms is None
    _assert_norms_right(trained)  # (the saved model's, filled by the save from its rows)


def test_a_vocabulary_update_saves_the_norms_of_the_new_rows(data, tmp_path):
    first = [d for d in data.docs if not d[0].startswith("img:") or int(d[0][4:]) < 80]
    second = [[*d, f"fresh{int(d[0][4:]) % 3}"] for d in data.docs if d[0].startswith("img:") and int(d[0][4:]) >= 80]
    model = _trained(data, first)
    path = str(tmp_path / "m.model")
    model.save(path, sep_limit=0)
    model = Im2Vec.load(path)
    n = len(model.wv)
    model.build_vocab(second, update=True, image_features=data.features)  # (the save kept the vocabulary's)
    assert len(model.wv) > n
    _assert_norms_right_or_none(model)
    model.train(second, total_examples=len(second), epochs=1)
    _assert_norms_right_or_none(model)
    model.save(path, sep_limit=0)
    loaded = Im2Vec.load(path, mmap="r")
    assert len(loaded.wv) == len(model.wv)
    _assert_norms_right(loaded)


def test_space_readout_set_after_training_saves_the_norms_of_the_rows_written_again(data, tmp_path):
    model = _trained(data, space_readout=0.5)
    assert model.readout_W is not None
    model.wv.most_similar("img:0")
    before = np.array(model.wv.norms)
    model.space_readout = 0.1  # the images' rows written again
    _assert_norms_right_or_none(model)
    path = str(tmp_path / "m.model")
    model.save(path, sep_limit=0)
    loaded = Im2Vec.load(path, mmap="r")
    _assert_norms_right(loaded)
    images = loaded._vocab_image_rows >= 0
    assert not np.allclose(np.asarray(loaded.wv.norms)[images], before[images])


def test_keys_sorted_by_gensim_before_the_save(data, tmp_path):
    model = _trained(data)
    model.wv.most_similar("img:0")  # norms in the old order
    model.wv.sort_by_descending_frequency()  # (gensim's sort leaves wv.norms as they were; the save follows it)
    path = str(tmp_path / "m.model")
    model.save(path, sep_limit=0)
    loaded = Im2Vec.load(path, mmap="r")
    _assert_norms_right(loaded)
    assert _searches(loaded, "img:0") == _fresh_answers(path, "img:0")


def test_the_space_a_save_needs_counts_the_norms(trained):
    from gensim_im2vec.checkpoint import saved_bytes

    assert saved_bytes(trained)["norms"] == 4 * len(trained.wv)
    assert saved_bytes(trained, vectors=False)["norms"] == 4 * len(trained.wv)  # (a vectors file moved: norms written)
    assert "norms" not in saved_bytes(trained, checkpoint=True)


def test_a_model_loaded_into_memory_takes_new_vectors_as_gensim_does(trained, data, tmp_path):
    """gensim's add_vector(s) (and wv[key] = vector) keep filled norms as they were, one per old row, and
    its next most_similar fails on the shapes. A model loaded into memory has none, as gensim's own load
    of a model never searched, so adding a vector (a new image placed by project) and searching works."""
    path = str(tmp_path / "m.model")
    trained.save(path, sep_limit=0)
    model = Im2Vec.load(path)
    assert model.wv.norms is None
    new = model.project(np.asarray(data.features["img:3"], dtype=np.float32)[None, :])[0]
    model.wv.add_vectors(["img:new"], new[None, :])
    near = model.wv.most_similar("img:new", topn=3)
    assert near[0][0] == "img:3" and near[0][1] > 0.999
    mapped = Im2Vec.load(path, mmap="r")  # the load at scale keeps them: after adding, fill them again
    mapped.wv.add_vectors(["img:new"], new[None, :])
    with pytest.raises((ValueError, IndexError)):
        mapped.wv.most_similar("img:new")  # gensim's own behaviour with filled norms (no norm for the new row)
    mapped.wv.fill_norms(force=True)
    assert mapped.wv.most_similar("img:new", topn=1)[0][0] == "img:3"


# ----------------------------------------------------------------------------- a loaded model trained again


def _text_docs(data):
    return [d for d in data.docs if not d[0].startswith("img:")]


class SearchAt(CallbackAny2Vec):
    """Searches at each epoch's end, as a callback that evaluates does; keeps whether ``wv.norms`` were
    right or None before it, and its answer beside the one from norms computed again."""

    def __init__(self, reads=True):
        self.reads_image_rows, self.seen = reads, []

    def on_epoch_end(self, model):
        wv = model.wv
        norms = wv.norms
        right = norms is None or np.array_equal(np.asarray(norms), _norms_of(model))
        key = wv.index_to_key[0]
        got = wv.most_similar(key, topn=5)
        wv.norms = None
        self.seen.append((right, got == wv.most_similar(key, topn=5)))


@pytest.mark.parametrize("images,reads", [(True, True), (True, False), (False, True)],
                         ids=["images", "images-rows-not-read", "text-only"])
def test_a_model_loaded_memory_mapped_and_trained_gives_its_callbacks_no_stale_norms(data, tmp_path, images, reads):
    """gensim drops wv.norms only when train() ends: a callback's search at an epoch's end ranked by the
    norms the load(mmap="r") brought, the rows' before the epoch moved them (a text-only model, or a
    callback that says it reads no image rows, as EpochCheckpoint)."""
    docs = data.docs if images else _text_docs(data)
    path = str(tmp_path / "m.model")
    _trained(data, docs, images=images).save(path, sep_limit=0)
    model = Im2Vec.load(path, mmap="r")
    _assert_norms_right(model)
    probe = SearchAt(reads)
    model.train(docs, total_examples=model.corpus_count, epochs=2, callbacks=[probe])
    assert probe.seen == [(True, True), (True, True)]
    _assert_norms_right_or_none(model)


def test_an_interrupted_train_of_a_model_loaded_memory_mapped_leaves_no_stale_norms(data, tmp_path):
    """A train() stopped inside an epoch (its corpus failed; Ctrl-C) never reaches gensim's end, which
    drops the norms: the rows it moved kept the loaded ones (a text-only model: no image rows written)."""
    docs = _text_docs(data)
    path = str(tmp_path / "m.model")
    _trained(data, docs, images=False).save(path, sep_limit=0)
    model = Im2Vec.load(path, mmap="r")
    model.batch_words = 20  # several jobs: some trained before the corpus fails

    def failing():
        yield from docs[:-5]
        raise OSError("the corpus's disk went away")

    class Corpus:
        def __iter__(self):
            return failing()

    with pytest.raises(OSError, match="went away"):
        model.train(Corpus(), total_examples=model.corpus_count, epochs=1)
    assert not np.allclose(_norms_of(model), np.asarray(Im2Vec.load(path, mmap="r").wv.norms))  # the rows moved
    _assert_norms_right_or_none(model)


def test_a_plain_gensim_word2vec_saved_with_stale_norms_loads_without_them(data, tmp_path, caplog):
    """gensim's save keeps wv.norms as a search filled them, also when the rows changed after it; the
    load of a plain Word2Vec checks them as it checks its own."""
    from gensim.models import Word2Vec

    w2v = Word2Vec(_text_docs(data), vector_size=12, min_count=1, workers=1, seed=1, epochs=2)
    w2v.wv.most_similar("class1")
    w2v.wv.vectors[::2] *= 3.0  # after the search: the norms it filled are stale
    path = str(tmp_path / "w2v.model")
    w2v.save(path, sep_limit=0)
    for kwargs in ({}, {"mmap": "r"}):
        with caplog.at_level("WARNING", logger="gensim_im2vec.model"):
            model = Im2Vec.load(path, **kwargs)
        _assert_norms_right_or_none(model)
    assert "do not belong to its vectors" in caplog.text
    w2v.wv.fill_norms(force=True)
    w2v.save(path, sep_limit=0)
    _assert_norms_right(Im2Vec.load(path, mmap="r"))  # right ones are kept
