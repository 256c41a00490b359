"""Review of the load that builds ``wv.key_to_index`` itself (save() leaves it out of the pickle):
every loader and life-cycle path ends with the dict and the negative tables of a model that never
went through save/load, and features refused by ``Im2Vec.load(..., image_features=)`` are named as
such (not as a damaged model file)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from gensim.models import Word2Vec
from gensim.utils import SaveLoad
from test_checkpoint import Crash, CrashAfter
from test_persistence import DOCS, KEYS, SMALL, VECS, _same_model

from gensim_im2vec import Im2Vec
from gensim_im2vec.checkpoint import EpochCheckpoint, read_checkpoint, resume
from gensim_im2vec.store import FeatureStore

TABLES = ("cum_table", "_neg_word_idx", "_neg_word_cum", "_neg_tag_idx", "_neg_tag_cum")
NEW = DOCS[50:] + [["newword", "photo", "class1", KEYS[5]]] * 3  # new words and images, after the first vocabulary


def _same_index_and_tables(a: Im2Vec, b: Im2Vec) -> None:
    assert b.wv.key_to_index == {k: i for i, k in enumerate(b.wv.index_to_key)} == a.wv.key_to_index
    assert "_key_index_pending" not in b.__dict__
    for name in TABLES:
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)), err_msg=name)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return FeatureStore.from_arrays(tmp_path_factory.mktemp("r29b") / "feats", KEYS, VECS)


def _grown(store) -> Im2Vec:
    """A vocabulary whose words come after images: build_vocab(update=True) added words and images."""
    model = Im2Vec(DOCS[:50], image_features=store, space_tag_prior=0.25, **SMALL)
    model.build_vocab(NEW, update=True)
    rows = model._vocab_image_rows
    assert np.any(np.diff((rows >= 0).astype(int)) < 0)  # a word after an image
    return model


@pytest.mark.parametrize("name", ["m.model", "m.model.gz", "m.model.bz2"])
def test_every_loader_builds_the_key_index_and_the_tables(store, tmp_path, name):
    model = _grown(store)
    model.train(DOCS + NEW, total_examples=len(DOCS) + len(NEW), epochs=1)
    path = str(tmp_path / name)
    model.save(path)
    loaders = [Im2Vec.load, Word2Vec.load, SaveLoad.load, lambda p: Im2Vec.load(p, image_features=store),
               lambda p: Im2Vec.load(p, image_features=dict(zip(KEYS, VECS)))]
    if not name.endswith((".gz", ".bz2")):
        loaders.append(lambda p: Im2Vec.load(p, mmap="r"))
    for load in loaders:
        loaded = load(path)
        _same_index_and_tables(model, loaded)
        _same_model(model, loaded)
        assert loaded.wv.most_similar("newword", topn=5) == model.wv.most_similar("newword", topn=5)
        np.testing.assert_array_equal(loaded._space_tag_bias(), model._space_tag_bias())


def test_loaded_grown_trained_and_saved_again_is_the_model_never_saved(store, tmp_path):
    never = Im2Vec(DOCS[:50], image_features=store, **SMALL)
    never.save(str(tmp_path / "a.model"))
    once = Im2Vec.load(str(tmp_path / "a.model"))
    for m in (never, once):
        m.build_vocab(NEW, update=True)
        _same_index_and_tables(never, m)
        m.train(DOCS + NEW, total_examples=len(DOCS) + len(NEW), epochs=1)
    once.save(str(tmp_path / "b.model"))
    twice = Im2Vec.load(str(tmp_path / "b.model"))
    _same_index_and_tables(never, twice)
    _same_model(never, twice)
    assert twice.wv.most_similar("newword", topn=5) == never.wv.most_similar("newword", topn=5)


@pytest.mark.parametrize("kind", ["no images", "empty", "hs", "sorted_vocab=0", "max_final_vocab"])
def test_vocabularies_of_every_shape(store, tmp_path, kind):
    words = [d[1:] + ["and", "more"] for d in DOCS]
    model = {"no images": lambda: Im2Vec(words, **SMALL),
             "empty": lambda: Im2Vec(**SMALL),
             "hs": lambda: Im2Vec(words, hs=1, negative=0, **SMALL),
             "sorted_vocab=0": lambda: Im2Vec(DOCS, image_features=store, sorted_vocab=0, **SMALL),
             "max_final_vocab": lambda: Im2Vec(DOCS, image_features=store, max_final_vocab=50, **SMALL)}[kind]()
    path = str(tmp_path / "m.model")
    model.save(path)
    loaded = Im2Vec.load(path)
    if kind == "empty":
        assert loaded.wv.key_to_index == {} and len(loaded.wv) == 0
        return
    _same_index_and_tables(model, loaded)


def test_a_checkpoint_of_a_grown_vocabulary_reads_and_resumes_to_the_uninterrupted_run(store, tmp_path):
    full = _grown(store)
    full.train(DOCS + NEW, total_examples=len(DOCS) + len(NEW), epochs=3)
    cut, path = _grown(store), str(tmp_path / "run.checkpoint")
    with pytest.raises(Crash):
        cut.train(DOCS + NEW, total_examples=len(DOCS) + len(NEW), epochs=3,
                  callbacks=[EpochCheckpoint(path, epochs=3), CrashAfter(2)])
    looked, record = read_checkpoint(path)
    assert record["epochs_done"] == 2
    _same_index_and_tables(cut, looked)
    resumed = resume(path, DOCS + NEW)
    _same_index_and_tables(full, resumed)
    np.testing.assert_array_equal(resumed.W, full.W)
    np.testing.assert_array_equal(resumed.wv.vectors, full.wv.vectors)


def test_a_failed_save_keeps_the_live_key_index(store, tmp_path, monkeypatch):
    model = Im2Vec(DOCS, image_features=store, **SMALL)
    k2i = model.wv.key_to_index
    expected = dict(k2i)

    def full_disk(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(OSError, match="no space"):
        model.save(str(tmp_path / "m.model"))
    monkeypatch.undo()
    assert model.wv.key_to_index is k2i and k2i == expected
    assert not list(tmp_path.glob("m.model*"))


class Sub(Im2Vec):
    """A user's subclass (at module level: pickled by name)."""


def test_a_subclass_saves_and_loads_its_model(store, tmp_path):
    model = Sub(DOCS, image_features=store, **SMALL)
    model.save(str(tmp_path / "s.model"))
    for load in (Sub.load, Im2Vec.load):
        loaded = load(str(tmp_path / "s.model"))
        assert type(loaded) is Sub
        _same_index_and_tables(model, loaded)


def test_loads_of_one_file_in_threads_at_once(store, tmp_path):
    model = Im2Vec(DOCS, image_features=store, **SMALL)
    path = str(tmp_path / "m.model")
    model.save(path)
    out, errors = [None] * 6, []

    def load(i):
        try:
            out[i] = Im2Vec.load(path, image_features=store if i % 2 else None)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for loaded in out:
        _same_index_and_tables(model, loaded)


@pytest.mark.parametrize("given, says", [
    ({}, "lack 100 of the model's 100 images"),
    ((KEYS, VECS[:, :8]), "expected features of dim 64"),
    ((KEYS[:3] + KEYS[:1], VECS[:4]), "duplicate image key"),
    (["not", "features"], "expected a {key: vector} mapping"),
])
def test_features_refused_at_load_are_named_as_the_argument_not_as_a_damaged_file(store, tmp_path, given, says):
    # was: "'m.model' could not be loaded as a model (...); it is damaged or was saved by an incompatible
    # version. Save the model again." - the file is fine, the image_features argument is not
    model = Im2Vec(DOCS, image_features=store, **SMALL)
    path = str(tmp_path / "m.model")
    model.save(path)
    if given == {}:
        given = {"img:elsewhere": VECS[0]}  # none of the model's images
    with pytest.raises(ValueError, match=says) as caught:
        Im2Vec.load(path, image_features=given)
    message = str(caught.value)
    assert "damaged" not in message and "Save the model again" not in message, message
    assert Im2Vec.load(path).wv.key_to_index == model.wv.key_to_index  # the file itself loads


def test_features_given_at_load_build_the_key_index_once(store, tmp_path, monkeypatch):
    # the features given are looked up by their own key dict, never wv's: one build (was two at 1M keys)
    Im2Vec(DOCS, image_features=store, **SMALL).save(str(tmp_path / "m.model"))
    builds = []
    build = Im2Vec._build_key_index
    monkeypatch.setattr(Im2Vec, "_build_key_index", lambda self: (builds.append(1), build(self))[1])
    for given in (None, store, dict(zip(KEYS, VECS))):
        builds.clear()
        loaded = Im2Vec.load(str(tmp_path / "m.model"), image_features=given)
        assert len(builds) == 1, given
        assert loaded.wv.key_to_index == {k: i for i, k in enumerate(loaded.wv.index_to_key)}
