"""Im2Vec's boundary: what a wrong file, a contradicting argument or a bad token says (issue 12)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from gensim.models import Doc2Vec, KeyedVectors, Word2Vec
from gensim.models.doc2vec import TaggedDocument

from gensim_im2vec import Im2Vec
from gensim_im2vec.model import NotAModelError, load_saved

DOCS = [["img:a", "cat", "dog"], ["img:b", "dog", "fish"], ["cat", "fish", "bird"]] * 4
FEATS = {"img:a": np.arange(1, 5, dtype=np.float32), "img:b": np.arange(4, 0, -1).astype(np.float32)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("model_files")
    model = Im2Vec(DOCS, image_features=FEATS, vector_size=8, min_count=1, epochs=1, workers=1, seed=1)
    model.save(str(d / "m.model"))
    w2v = Word2Vec([doc for doc in DOCS if not doc[0].startswith("img:")], vector_size=12, min_count=1, workers=1)
    w2v.save(str(d / "w2v.model"))
    (d / "notes.txt").write_text("not a model\n")
    (d / "empty.model").write_bytes(b"")
    data = (d / "m.model").read_bytes()
    (d / "cut.model").write_bytes(data[: len(data) // 2])
    return d, model, w2v


def test_a_file_that_is_not_a_model_says_so(saved):
    d, _, _ = saved
    with pytest.raises(ValueError, match=r"notes.txt' is not a saved model \(it starts with b'not a model"):
        Im2Vec.load(str(d / "notes.txt"))
    with pytest.raises(ValueError, match=r"empty.model' is not a saved model"):
        Im2Vec.load(str(d / "empty.model"))
    with pytest.raises(ValueError, match=r"cut.model' could not be loaded as a model.*damaged"):
        Im2Vec.load(str(d / "cut.model"))
    # a folder: says so, and names a model file in it (was: "is not a saved model (it starts with b'')")
    with pytest.raises(ValueError, match=r"is a folder, not a saved model; .*e\.g\. '.*\.model'"):
        Im2Vec.load(str(d))


def test_an_update_with_an_image_without_features_names_build_vocabs_argument(saved):
    _, model, _ = saved
    with pytest.raises(ValueError, match=r"img:nowhere.*build_vocab\(\.\.\., update=True, image_features=\.\.\.\)"):
        model.build_vocab([["img:nowhere", "class0"]], update=True)


@pytest.mark.parametrize("mmap", ["r", None])
def test_a_plain_word2vec_loads_as_a_text_only_im2vec(saved, tmp_path, caplog, mmap):
    # gensim's own suite loads Word2Vec files (old pickles, 3.8.0) through Im2Vec.load
    d, _, w2v = saved
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        model = Im2Vec.load(str(d / "w2v.model"), mmap=mmap)
    assert type(model) is Im2Vec and "holds a plain gensim Word2Vec (3 words, vector_size 12, negative=5): " \
        "loaded as a text-only Im2Vec" in caplog.text
    assert model.lifecycle_events[-1]["event"] == "upgraded"
    assert model.wv.index_to_key == w2v.wv.index_to_key
    np.testing.assert_array_equal(model.wv.vectors, w2v.wv.vectors)
    np.testing.assert_array_equal(model.syn1neg, w2v.syn1neg)
    np.testing.assert_array_equal(model.cum_table, w2v.cum_table)
    assert (model.window, model.negative, model.sg, model.alpha, model.epochs) == \
        (w2v.window, w2v.negative, w2v.sg, w2v.alpha, w2v.epochs)
    fresh = Im2Vec()
    for name in ("image_prefix", "train_words", "image_heads", "space_temperature", "space_pull", "space_decoder"):
        assert getattr(model, name) == getattr(fresh, name)
    assert model.features is None and model.W is None and model.image_keys == []
    assert model.word_space_keys == w2v.wv.index_to_key
    # it trains, saves and loads like any Im2Vec, and from_word2vec adds images to it
    more = [["cat", "eel", "fish"]] * 4
    model.build_vocab(more, update=True)
    model.train(more, total_examples=len(more), epochs=1)
    model.save(str(tmp_path / "up.model"))
    again = Im2Vec.load(str(tmp_path / "up.model"))
    assert type(again) is Im2Vec and "eel" in again.wv and again.lifecycle_events[-1]["event"] == "loaded"
    np.testing.assert_array_equal(again.wv.vectors, model.wv.vectors)
    with_images = Im2Vec.from_word2vec(again, image_features=FEATS, sentences=DOCS, epochs=1)
    assert set(with_images.image_keys) == {"img:a", "img:b"}
    assert isinstance(load_saved(d / "w2v.model", (Word2Vec, KeyedVectors)), Word2Vec)
    assert isinstance(load_saved(d / "m.model"), Im2Vec)  # an Im2Vec is a Word2Vec


def test_a_plain_word2vec_with_image_features_names_from_word2vec(saved):
    d, _, _ = saved
    with pytest.raises(ValueError, match=r"w2v.model' holds a plain gensim Word2Vec: it has no image mapping W.*"
                                         r"use Im2Vec.from_word2vec\(Im2Vec.load\(path\), image_features="):
        Im2Vec.load(str(d / "w2v.model"), image_features=FEATS)


@pytest.mark.parametrize("kind", ["KeyedVectors", "Doc2Vec"])
def test_a_file_of_another_kind_says_what_it_holds(saved, tmp_path, kind):
    # both our TypeError and the AttributeError gensim's Word2Vec.load raises for such a file
    _, _, w2v = saved
    if kind == "KeyedVectors":
        w2v.wv.save(str(tmp_path / "other"))
    else:
        Doc2Vec([TaggedDocument(doc, [i]) for i, doc in enumerate(DOCS)], vector_size=4, min_count=1,
                epochs=1, workers=1).save(str(tmp_path / "other"))
    for caught in (NotAModelError, TypeError, AttributeError):
        with pytest.raises(caught, match=rf"other' holds a gensim.models.\w+.{kind} where an Im2Vec \(or a plain "
                                         rf"gensim Word2Vec, loaded as a text-only Im2Vec\) was expected"):
            Im2Vec.load(str(tmp_path / "other"))
    with pytest.raises(NotAModelError, match=r"other' holds .* where an Im2Vec was expected; give a file"):
        load_saved(tmp_path / "other", (Im2Vec,))


@pytest.mark.parametrize("mmap", ["r", None])
@pytest.mark.parametrize("companion", ["W", "image_vectors"])
def test_a_truncated_companion_file_is_named(saved, tmp_path, mmap, companion):
    d, _, _ = saved
    for f in d.glob("m.model*"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    part = tmp_path / f"m.model.{companion}.npy"
    part.write_bytes(part.read_bytes()[:-12])
    with pytest.raises(ValueError, match=rf"a companion file of the model .*m.model' is damaged: .*"
                                         rf"m.model.{companion}.npy' has \d+ bytes, its .* array needs \d+"):
        Im2Vec.load(str(tmp_path / "m.model"), mmap=mmap)
    part.unlink()
    with pytest.raises(FileNotFoundError, match=rf"m.model.{companion}.npy' is missing: the model"):
        Im2Vec.load(str(tmp_path / "m.model"), mmap=mmap)


def test_from_word2vec_refuses_a_contradicting_vector_size(saved):
    _, _, w2v = saved
    with pytest.raises(ValueError, match=r"vector_size=8 contradicts the Word2Vec's vector_size=12.*Leave "
                                         r"vector_size out"):
        Im2Vec.from_word2vec(w2v, image_features=FEATS, vector_size=8)
    model = Im2Vec.from_word2vec(w2v, image_features=FEATS, vector_size=12)  # agreeing is fine
    assert model.wv.vector_size == 12


def test_a_token_that_is_not_a_str_is_named():
    docs = [["img:a", "cat", 5], ["img:b", "dog", 7.5]] * 3
    with pytest.raises(TypeError, match=r"lists of str tokens; 2 token\(s\) are not: 5 \(int\), 7.5 \(float\)"):
        Im2Vec(docs, image_features=FEATS, vector_size=8, min_count=1, epochs=1, workers=1)


@pytest.mark.parametrize("kwargs,message", [
    ({"alpha": -1.0}, "alpha must be a finite number > 0"),
    ({"alpha": float("nan")}, "alpha must be a finite number > 0"),
    ({"sample": -5.0}, "sample must be a finite number >= 0"),
    ({"min_alpha": -0.1}, "min_alpha must be a finite number >= 0"),
])
def test_negative_rates_are_refused_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Im2Vec(DOCS, image_features=FEATS, vector_size=8, min_count=1, epochs=1, workers=1, **kwargs)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "10"])
def test_space_decoder_must_be_a_finite_number_at_least_0(value):
    with pytest.raises(ValueError, match=r"space_decoder must be a finite number >= 0, got"):
        Im2Vec(space_decoder=value)


def test_a_model_saved_before_space_decoder_loads_without_the_decoder(tmp_path):
    model = Im2Vec(DOCS, image_features=FEATS, vector_size=8, min_count=1, epochs=1, workers=1, space_decoder=3.0)
    assert model.space_decoder == 3.0
    del model.space_decoder  # as a model of an earlier version was pickled
    model.save(str(tmp_path / "old.model"))
    again = Im2Vec.load(str(tmp_path / "old.model"))
    assert again.space_decoder == 0.0
    again.train(DOCS, total_examples=len(DOCS), epochs=1)  # and it trains on
