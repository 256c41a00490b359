"""gensim's own KeyedVectors calls on an Im2Vec's ``model.wv`` (words and image keys such as
``img:animals/frog_01``), as a gensim user makes them: the recipes this package gives for them
(its README, its error messages) answer in the one space, also in the files plain gensim reads back."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=16, min_count=1, epochs=3, workers=1, seed=1, image_batch=16, space_negatives=10)
README = Path(__file__).resolve().parents[1] / "README.md"


def _frog(token: str) -> str:
    return f"img:animals/frog_{int(token[4:]):02d}" if token.startswith("img:") else token


@pytest.fixture(scope="module")
def data():
    corpus = make_corpus(n_classes=5, n_images=200, n_features=16, n_text_sentences=100, seed=0)
    docs = [[_frog(t) for t in d] for d in corpus.docs]
    return docs, {_frog(k): v for k, v in corpus.features.items()}


@pytest.fixture(scope="module")
def searched(data):
    """A trained model whose ``wv`` was searched (gensim's most_similar filled ``wv.norms``), and what
    that search answered for an image."""
    docs, feats = data
    model = Im2Vec(docs, image_features=feats, **OPTS)
    return model, model.wv.most_similar("img:animals/frog_01", topn=5)


def _assert_same_answers(got, want):
    assert [k for k, _ in got] == [k for k, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def _sorted_copy_answers_right(recipe: str, model, want, tmp_path):
    space = {"copy": copy, "model": model}
    exec(recipe, space)
    kv = space["kv"]
    assert kv.index_to_key != model.wv.index_to_key  # (sorted: the test would show nothing otherwise)
    _assert_same_answers(kv.most_similar("img:animals/frog_01", topn=5), want)
    kv.save(str(tmp_path / "sorted.kv"))  # the file plain gensim reads back
    _assert_same_answers(KeyedVectors.load(str(tmp_path / "sorted.kv")).most_similar("img:animals/frog_01", topn=5),
                         want)


def test_the_refusals_sorted_copy_for_export_answers_right(searched, tmp_path):
    """train() after wv.sort_by_descending_frequency() is refused with a recipe: sort a copy for export.
    gensim's sort keeps ``wv.norms`` in the old order, so the copy of a model searched before answered
    from other rows' norms (cosines of 1.26) and its saved .kv file too."""
    model, want = searched
    reordered = copy.deepcopy(model)
    reordered.wv.sort_by_descending_frequency()
    with pytest.raises(RuntimeError, match="sort a copy") as err:
        reordered.train([["class0"]], total_examples=1, epochs=1)
    recipe = re.search(r"for export \((kv = .*)\)\.", str(err.value)).group(1)
    _sorted_copy_answers_right(recipe, model, want, tmp_path)


def test_the_readmes_sorted_copy_for_export_answers_right(searched, tmp_path):
    model, want = searched
    recipes = re.findall(r"`(kv = copy\.deepcopy\(model\.wv\);[^`]*)`", README.read_text(encoding="utf-8"))
    assert recipes, "README.md lost its recipe for a sorted copy of model.wv"
    for recipe in recipes:
        _sorted_copy_answers_right(recipe, model, want, tmp_path)


# ------------------------------------------------------------------- README: gensim's own calls on model.wv


def test_an_image_key_added_by_gensim_alone_is_its_projection_when_given_one(data):
    """README: wv.add_vector(s) of an image key the features hold is W's at the model's next call;
    given ``model.project(features)`` it is right at once, and gensim's own search straight after
    answers once ``fill_norms(force=True)`` has replaced the norms gensim's add kept."""
    docs, feats = data
    key = "img:animals/frog_07"
    model = Im2Vec([d for d in docs if key not in d], image_features=feats, **OPTS)
    model.wv.most_similar("class0")  # norms filled, as any search leaves them
    model.wv.add_vectors([key], np.full((1, 16), 9.0, dtype=np.float32))
    assert np.all(model.wv[key] == 9.0)  # (gensim alone: the vector given, until the model's next call)
    assert model.is_image(key)
    np.testing.assert_allclose(model.wv[key], model.project(feats[key]), atol=1e-6)

    other = Im2Vec([d for d in docs if key not in d], image_features=feats, **OPTS)
    other.wv.most_similar("class0")
    other.wv.add_vectors([key], other.project(feats[key])[None, :])
    other.wv.fill_norms(force=True)
    near = other.wv.most_similar(positive=[other.project(feats[key])], topn=1)
    assert near[0][0] == key and near[0][1] == pytest.approx(1.0, abs=1e-5)


def test_unit_normalize_all_keeps_the_cosines_and_train_writes_the_images_rows_again(data):
    """README: after gensim's wv.unit_normalize_all() an image's row is the unit length of its
    projection (every cosine as before) until the next train() writes W's again."""
    docs, feats = data
    model = Im2Vec(docs, image_features=feats, **OPTS)
    key = "img:animals/frog_01"
    before = model.wv.most_similar(key, topn=5)
    model.wv.unit_normalize_all()
    _assert_same_answers(model.wv.most_similar(key, topn=5), before)
    p = model.project(feats[key])
    np.testing.assert_allclose(model.wv[key], p / np.linalg.norm(p), atol=1e-6)
    model.train(docs, total_examples=len(docs), epochs=1)
    np.testing.assert_allclose(model.wv[key], model.project(feats[key]), atol=1e-5)


def test_restrict_vocab_of_a_fresh_vocabulary_is_its_most_frequent_words(data, tmp_path):
    """README: a fresh vocabulary (joint or from_word2vec) puts the images after the words, so
    ``restrict_vocab=N`` up to the number of words searches the N most frequent words and no image;
    gensim's evaluate_word_analogies at its default restrict_vocab (300,000) takes the images in,
    where an image nearest to an analogy's answer counts the question as wrong."""
    from gensim.models import Word2Vec

    docs, feats = data
    text = [[t for t in d if not t.startswith("img:")] for d in docs]
    w2v = Word2Vec(text, vector_size=16, min_count=1, epochs=2, workers=1, seed=1)
    two_stage = Im2Vec.from_word2vec(w2v, image_features=feats, sentences=docs, epochs=1, workers=1, seed=1,
                                     image_batch=16, space_negatives=10)
    for model in (Im2Vec(docs, image_features=feats, **OPTS), two_stage):
        n = len(model.word_keys)
        assert model.wv.index_to_key[:n] == model.word_keys
        hits = model.wv.most_similar("img:animals/frog_01", topn=n, restrict_vocab=n)
        assert len(hits) == n and not any(model.is_image(k) for k, _ in hits)
    model = Im2Vec(docs, image_features=feats, **OPTS)
    a, b, c, d = "class0", "class0_r0", "class1", "class1_r0"
    answer = model.wv.get_mean_vector([b, c, a], weights=[1.0, 1.0, -1.0])
    model.wv["img:animals/frog_01"] = answer  # an image exactly where the analogy points,
    model.wv[d] = answer + 0.01 * np.random.default_rng(0).normal(size=16).astype(np.float32)  # its word nearly
    model.wv.fill_norms(force=True)
    path = tmp_path / "q.txt"
    path.write_text(f": one\n{a} {b} {c} {d}\n", encoding="utf-8")
    assert model.wv.evaluate_word_analogies(str(path))[0] == 0.0  # the image answered
    assert model.wv.evaluate_word_analogies(str(path), restrict_vocab=len(model.word_keys))[0] == 1.0


def test_intersect_word2vec_format_locking_image_rows_is_said_to_have_no_effect(data, searched, tmp_path, caplog):
    """gensim's wv.intersect_word2vec_format(path, lockf=0.0) of a file that holds image keys (another
    model's export) gives the images a factor of 0, which train() cannot hold (an image's row is W's
    projection, written again as it ends): the lock was silently without effect, now a warning with
    the fix. Words locked the same way stay, and a lock on words alone says nothing."""
    docs, feats = data
    other, _ = searched
    path = str(tmp_path / "other.txt")
    other.wv.save_word2vec_format(path)
    model = Im2Vec(docs, image_features=feats, **{**OPTS, "seed": 2})
    model.wv.vectors_lockf = np.ones(len(model.wv), dtype=np.float32)
    model.wv.intersect_word2vec_format(path, lockf=0.0)
    word = model.word_keys[0]
    kept = model.wv[word].copy()
    with caplog.at_level("WARNING", logger="gensim_im2vec.model"):
        model.train(docs, total_examples=len(docs), epochs=1)
    said = [r.getMessage() for r in caplog.records if "vectors_lockf" in r.getMessage()]
    assert len(said) == 1 and "img:animals/frog_" in said[0] and "image_mask" in said[0]
    assert np.array_equal(model.wv[word], kept)
    np.testing.assert_allclose(model.wv["img:animals/frog_01"], model.project(feats["img:animals/frog_01"]),
                               atol=1e-5)
    caplog.clear()
    model.wv.vectors_lockf[model.image_mask] = 1.0  # the fix the warning names
    with caplog.at_level("WARNING", logger="gensim_im2vec.model"):
        model.train(docs, total_examples=len(docs), epochs=1)
    assert not [r for r in caplog.records if "vectors_lockf" in r.getMessage()]
    assert np.array_equal(model.wv[word], kept)
