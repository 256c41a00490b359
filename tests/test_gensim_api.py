"""gensim's own Word2Vec and KeyedVectors calls that change or read the vocabulary, made on an
Im2Vec: the images' rows stay :meth:`~gensim_im2vec.Im2Vec.project` of their features, and what
cannot be followed is refused with the fix, never answered wrong."""

import copy

import numpy as np
import pytest
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=16, min_count=1, epochs=3, workers=1, seed=1, image_batch=16, space_negatives=10)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=5, n_images=300, n_features=16, seed=0)


@pytest.fixture
def model(data):
    return Im2Vec(data.docs, image_features=data.features, **OPTS)


def _train(model, data):
    model.train(data.docs, total_examples=len(data.docs), epochs=1)


def _rows_are_projections(model, data):
    keys = model.image_keys
    assert len(keys) == sum(k in model.wv for k in data.features)
    np.testing.assert_allclose(model.wv[keys], model.project(np.stack([data.features[k] for k in keys])),
                               atol=1e-5)


def test_add_vectors_of_new_words_are_followed(model, data, tmp_path):
    """wv.add_vectors of a new word: queries, training, save and load go on (they raised an
    IndexError, and the saved model did not load); the word is a word with a count of 0."""
    before = model.most_similar_words("img:0", topn=3)
    model.wv.add_vectors(["zzz"], np.ones((1, 16), dtype=np.float32))
    assert model.most_similar_words("img:0", topn=3) == before
    assert model.wv.get_vecattr("zzz", "count") == 0 and not model.is_image("zzz") and "zzz" in model.word_keys
    _train(model, data)
    _rows_are_projections(model, data)
    assert not any(model.is_image(w) for w, _ in model.predict_output_word(["class0"], topn=None))
    model.save(str(tmp_path / "m.model"))
    again = Im2Vec.load(str(tmp_path / "m.model"))
    assert "zzz" in again.wv and again.wv.get_index("zzz") == model.wv.get_index("zzz")
    _rows_are_projections(again, data)
    _train(again, data)


def test_add_vectors_of_an_image_key_writes_its_row_from_w(data):
    """An image key given to wv.add_vectors is an image: its vector is W's, not the one given."""
    docs = [d for d in data.docs if d[0] != "img:7"]
    model = Im2Vec(docs, image_features=data.features, **OPTS)
    assert "img:7" not in model.wv
    model.wv.add_vectors(["img:7"], np.full((1, 16), 9.0, dtype=np.float32))
    assert model.is_image("img:7") and "img:7" in model.image_keys
    np.testing.assert_allclose(model.wv["img:7"], model.project(data.features["img:7"]), atol=1e-5)
    # it trains (gensim's zero sample_int would drop every occurrence with sample > 0)
    assert model.sample and model.wv.get_vecattr("img:7", "sample_int") == np.iinfo(np.uint32).max
    W = model.W.copy()
    doc = next(d for d in data.docs if d[0] == "img:7")
    model.train([doc] * 20, total_examples=20, epochs=1)
    assert not np.array_equal(W, model.W)


def test_a_reordered_vocabulary_answers_right_and_refuses_training(model, data, tmp_path):
    """wv.sort_by_descending_frequency() reorders the keys: queries find the images by their keys
    (before, training wrote each image's projection under another key), and training, which holds
    per-row state in the old order, is refused, also after a save and load; a new vocabulary
    (build_vocab without update) trains again."""
    before = model.most_similar_words("img:0", topn=3)
    model.wv.sort_by_descending_frequency()
    assert model.most_similar_words("img:0", topn=3) == before
    _rows_are_projections(model, data)
    with pytest.raises(RuntimeError, match="reordered"):
        _train(model, data)
    with pytest.raises(RuntimeError, match="reordered"):
        model.build_vocab(data.docs[:10], update=True)
    model.save(str(tmp_path / "sorted.model"))
    loaded = Im2Vec.load(str(tmp_path / "sorted.model"))
    assert loaded.most_similar_words("img:0", topn=3) == before
    with pytest.raises(RuntimeError, match="sort a copy"):
        _train(loaded, data)
    with pytest.raises(ValueError, match="img:9999"):  # a new vocabulary that fails keeps the old one refused
        loaded.build_vocab([["x", "img:9999"], ["x"]])
    with pytest.raises(RuntimeError, match="reordered"):
        _train(loaded, data)
    with pytest.raises(RuntimeError, match="reordered"):  # gensim's other way to extend a vocabulary
        loaded.build_vocab_from_freq({"brandnew": 3}, update=True)
    loaded.build_vocab(data.docs)
    _train(loaded, data)
    _rows_are_projections(loaded, data)


def test_a_model_saved_reordered_by_an_older_version_is_found_out_at_load(model, data, tmp_path):
    """Sorted, then saved by a version that did not follow it (its image rows stale, of the right
    length): the load finds the images by their keys and refuses training."""
    before = model.most_similar_words("img:0", topn=3)
    model.wv.sort_by_descending_frequency()
    model.__dict__["_indexed_keys"] = model.wv.index_to_key  # (as the older version: nothing noticed)
    model.save(str(tmp_path / "old.model"))
    loaded = Im2Vec.load(str(tmp_path / "old.model"))
    assert loaded.most_similar_words("img:0", topn=3) == before
    _rows_are_projections(loaded, data)
    with pytest.raises(RuntimeError, match="reordered"):
        _train(loaded, data)


def test_a_sort_that_keeps_the_order_is_no_change(data):
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    model.wv.index_to_key = list(model.wv.index_to_key)  # a new list, the same keys in the same order
    _train(model, data)
    _rows_are_projections(model, data)


@pytest.mark.parametrize("other", ["smaller im2vec", "word2vec"])
def test_reset_from_takes_the_others_vocabulary_with_its_images(model, data, other):
    """gensim's reset_from: the other's vocabulary, this model's weights afresh; its images are
    found in the features (before: IndexErrors, or each image trained under another's row)."""
    if other == "word2vec":
        source = Word2Vec(data.docs, vector_size=16, min_count=1, epochs=1, workers=1, seed=2)
    else:
        source = Im2Vec(data.docs[:100], image_features=data.features, **OPTS)
    model.reset_from(source)
    assert model.wv.key_to_index == source.wv.key_to_index
    if other == "smaller im2vec":  # extending the shared vocabulary afterwards: an error that says so
        grown = copy.deepcopy(model)
        grown.wv.index_to_key.append("grown_elsewhere")
        with pytest.raises(RuntimeError, match="reset_from"):
            grown.most_similar_words("img:0", topn=1)
    assert sorted(model.image_keys) == sorted(k for k in source.wv.index_to_key if k in data.features)
    _train(model, data)
    _rows_are_projections(model, data)
    assert model.most_similar_words("img:0", topn=1)


def test_predict_output_word_answers_words_only(model, data):
    """After build_vocab(update=True) adds a word after the images, the output rows span the
    images (zero rows): gensim's predict_output_word gave them most of the probability."""
    new_docs = [d + ["newword"] for d in data.docs[:50]]
    model.build_vocab(new_docs, update=True)
    model.train(new_docs, total_examples=len(new_docs), epochs=1)
    got = model.predict_output_word(["class0"], topn=None)
    words = set(model.word_keys)
    assert {w for w, _ in got} == words
    assert sum(p for _, p in got) == pytest.approx(1.0)
    rows = [model.wv.get_index(w) for w, _ in got]
    logits = model.syn1neg[rows] @ model.wv["class0"]
    assert [w for w, _ in got][:5] == [got[i][0] for i in np.argsort(-logits)[:5]]


def test_max_vocab_size_caps_the_words_as_gensims_does(data):
    """max_vocab_size caps the words, not words and images together: the same words as gensim's
    Word2Vec on the documents without their image tokens (it pruned words on the images' account,
    and refused a cap below the number of images)."""
    text = [[t for t in d if t not in data.features] for d in data.docs]
    for cap in (40, 330):
        w2v = Word2Vec(vector_size=8, min_count=1, max_vocab_size=cap)
        w2v.build_vocab(text)
        model = Im2Vec(image_features=data.features, vector_size=8, min_count=1, max_vocab_size=cap)
        model.build_vocab(data.docs)
        assert set(model.word_keys) == set(w2v.wv.index_to_key)
        assert len(model.image_keys) == len(data.features)
        assert model.corpus_total_words == sum(len(d) for d in data.docs)


def test_training_without_syn1neg_says_what_is_missing(model, data, tmp_path):
    model.save(str(tmp_path / "m.model"), ignore=["syn1neg"])
    loaded = Im2Vec.load(str(tmp_path / "m.model"))
    assert loaded.most_similar_words("img:0", topn=1)  # queries need no output weights
    with pytest.raises(RuntimeError, match=r"ignore=\['syn1neg'\]"):
        _train(loaded, data)


def test_estimate_memory_counts_features_held_in_memory(model):
    report = model.estimate_memory()
    assert report["image features"] == model.features.vectors.nbytes
    parts = sum(v for k, v in report.items() if k != "total")
    assert report["total"] == parts


def test_copies_follow_too(model, data):
    clone = copy.deepcopy(model)
    clone.wv.add_vectors(["zzz"], np.ones((1, 16), dtype=np.float32))
    _train(clone, data)
    _rows_are_projections(clone, data)
    assert "zzz" not in model.wv


def test_a_held_out_image_the_features_hold_is_queried_by_its_key(data):
    """An image of the model's features that no training document names (one store for all
    images, split by documents): most_similar_words(key) answers by its projection (KeyError
    before); a file name or a PIL image given as features says how to extract them."""
    from PIL import Image

    docs = [d for d in data.docs if d[0] != "img:7"]
    model = Im2Vec(docs, image_features=data.features, **OPTS)
    assert "img:7" not in model.wv and model.is_image("img:7")
    by_key = model.most_similar_words("img:7", topn=5)
    by_features = model.similar_by_image(data.features["img:7"], topn=5, restrict="words")
    assert [w for w, _ in by_key] == [w for w, _ in by_features]
    np.testing.assert_allclose([c for _, c in by_key], [c for _, c in by_features], atol=1e-6)
    # in a sum it weighs as a key does (unit length), not as its raw projection
    unit = model.project(data.features["img:7"])
    unit = unit / np.linalg.norm(unit)
    summed, by_unit = model.most_similar_words(["img:7", "class0"], topn=5), model.most_similar_words([unit, "class0"],
                                                                                                    topn=5)
    assert [w for w, _ in summed] == [w for w, _ in by_unit]
    np.testing.assert_allclose([c for _, c in summed], [c for _, c in by_unit], atol=1e-6)
    assert model.most_similar_images(positive=["img:7", "class0"], topn=3)
    for bad in ("photos/cat.jpg", Image.new("RGB", (8, 8))):
        with pytest.raises(TypeError, match="make_featurizer"):
            model.project(bad)


def test_the_query_prompt_answers_a_held_out_image_by_its_key(data):
    from gensim_im2vec.query import QuerySession

    docs = [d for d in data.docs if d[0] != "img:7"]
    model = Im2Vec(docs, image_features=data.features, **OPTS)
    session = QuerySession(model, topn=3, featurizer_factory=lambda meta: None)
    for typed in ("img:7", "7"):
        answer, ok = session.answer_ok(typed)
        assert ok and answer.startswith("Image img:7: in the model's features, not its vocabulary"), answer
        best = model.similar_by_image(data.features["img:7"], topn=1)[0][0]
        assert best in answer
    # typed as its file or with another prefix: the key is named, as the API's KeyError names it
    for typed in ("7.jpg", "img:7.png", "IMG:7", "image:7"):
        with pytest.raises(KeyError, match="did you mean the image 'img:7'"):
            model.most_similar_words(typed)
        assert session.answer(typed).startswith(f"Not a key of the model: {typed}; did you mean img:7?"), typed
    # in a sum: a held-out image cannot be added, so it is said to be held out, not offered as the key to
    # type (the prompt said "did you mean img:7?" for IMG:7, and "7.jpg class0" was answered as a missing file)
    for typed in ("img:7", "7.jpg", "IMG:7", "image:7"):
        answer, ok = session.answer_ok(f"{typed} class0")
        assert not ok and answer.startswith(f"Out of dictionary word: {typed}\n"), answer
        assert "img:7 is held out of training" in answer and "did you mean" not in answer, answer
