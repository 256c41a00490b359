"""The analogy term (``Im2Vec(space_analogies=...)``): its gradient, what it teaches, and its errors."""

import logging

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec.evaluate import analogy_halves, run_evaluation, untrained_analogies
from gensim_im2vec.space import analogy_step
from gensim_im2vec.synthetic import make_corpus

TRAIN = dict(vector_size=32, sg=1, min_count=1, epochs=10, sample=0, workers=1, seed=1)


def _loss(W, X, x, y, shift, scale):
    return analogy_step(W.copy(), X, x, y, shift, alpha=0.0, scale=scale)


def test_analogy_step_is_minus_alpha_times_the_loss_gradient():
    """W's step against central finite differences of the loss (float64), with an x asked twice and
    a y that is another question's x."""
    rng = np.random.default_rng(1)
    W, X = rng.normal(size=(5, 7)), rng.normal(size=(9, 7))
    x, y, shift = np.array([0, 1, 0]), np.array([2, 0, 4]), rng.normal(size=(3, 5))
    stepped = W.copy()
    analogy_step(stepped, X, x, y, shift, alpha=1.0, scale=3.0)
    eps, num = 1e-6, np.zeros_like(W)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            up, down = W.copy(), W.copy()
            up[i, j] += eps
            down[i, j] -= eps
            num[i, j] = (_loss(up, X, x, y, shift, 3.0) - _loss(down, X, x, y, shift, 3.0)) / (2 * eps)
    np.testing.assert_allclose(W - stepped, num, atol=1e-7)


def test_analogy_step_leaves_x_out_of_its_own_answers():
    """x is never a candidate of its own question: with y the only other image, the loss is 0
    whatever W, and W does not move."""
    rng = np.random.default_rng(2)
    W, X = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    before = W.copy()
    loss = analogy_step(W, X, np.array([0]), np.array([1]), rng.normal(size=(1, 3)).astype(np.float32), alpha=1.0)
    assert loss == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(W, before, atol=1e-6)


@pytest.fixture(scope="module")
def plain():
    return make_corpus(n_classes=10, n_images=2000, n_related=0, seed=0)


def _swap_hits(model, data, keys):
    """image(x) − class(x) + class(x) + 1: how often the nearest other image is of the next class."""
    hits = []
    for x in keys:
        c = data.labels[x]
        top = model.most_similar_images(positive=[x, data.class_words[(c + 1) % 10]], negative=[data.class_words[c]],
                                        topn=1)[0][0]
        hits.append(data.labels[top] == (c + 1) % 10)
    return float(np.mean(hits))


def _swap_quads(plain, images):
    return [(f"img:{i}", plain.class_words[i % 10], plain.class_words[(i + 1) % 10], f"img:{i + 1}") for i in images]


@pytest.fixture(scope="module")
def taught(plain):
    """A model whose analogy term trained on the questions about images 100-1999."""
    return Im2Vec(plain.docs, image_features=plain.features, space_analogies=_swap_quads(plain, range(100, 1999)),
                  **TRAIN)


def test_the_term_teaches_analogies_about_images_it_was_never_asked_about(plain, taught):
    """At the default temperature the plain space answers image − class + next class with an image of
    x's own class (the xfail in test_model.py); trained on questions about images 100-1999, the
    term answers those about images 0-29, which no question named, and the images keep their words."""
    held_out = [f"img:{i}" for i in range(30)]
    without = Im2Vec(plain.docs, image_features=plain.features, **TRAIN)
    model = taught
    assert _swap_hits(without, plain, held_out) <= 0.3
    assert _swap_hits(model, plain, held_out) >= 0.8
    preds = model.similar_by_image(plain.test_features, topn=1, restrict="words")
    assert np.mean([p[0][0] == plain.class_words[y] for p, y in zip(preds, plain.test_labels)]) >= 0.9
    assert 0 < model.space_analogy_seconds and np.isfinite(model.space_analogy_loss)
    # stored rows and model.project stay one function
    np.testing.assert_allclose(model.wv["img:5"], model.project(plain.features["img:5"]), rtol=1e-5, atol=1e-6)


def test_questions_the_vocabulary_cannot_ask_are_left_out_with_a_warning(plain, caplog):
    good = ("img:0", "class0", "class1", "img:1")
    bad = [("img:0", "nosuchword", "class1", "img:1"), ("img:1", "class1", "class2", "img:1"),
           ("class1", "class1", "class2", "img:2")]
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        model = Im2Vec(plain.docs[:300], image_features=plain.features, space_analogies=[good, *bad],
                       **{**TRAIN, "epochs": 1})
    assert "3 of 4 space_analogies" in caplog.text and "nosuchword" in caplog.text
    assert model.space_analogy_seconds > 0
    with pytest.raises(ValueError, match="none is left"):
        Im2Vec(plain.docs[:300], image_features=plain.features, space_analogies=bad, **{**TRAIN, "epochs": 1})


@pytest.mark.parametrize("kwargs, match", [
    (dict(space_analogies=[("img:0", "a", "b")]), r"space_analogies\[0\]"),
    (dict(space_analogies="img:0 a b img:1"), "sequence of"),
    (dict(space_analogies=[("img:0", "a", "b", "img:1")], image_heads="output"), "image_heads"),
    (dict(space_analogy_alpha=0.0), "space_analogy_alpha"),
    (dict(space_analogy_negatives=-1), "space_analogy_negatives"),
])
def test_bad_analogy_options_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Im2Vec(**kwargs)


def test_analogy_halves_share_no_image():
    """No image of one half's questions is in the other's (a question and its reverse in one half),
    and the cut is the same on every call."""
    rng = np.random.default_rng(3)
    quads = []
    for _ in range(60):
        x, y = rng.choice(80, 2, replace=False)
        quads += [(f"img:{x}", "a", "b", f"img:{y}"), (f"img:{y}", "b", "a", f"img:{x}")]
    halves = analogy_halves(quads)
    assert set(halves) == {0, 1} and analogy_halves(quads) == halves
    images = [{k for q, h in zip(quads, halves) if h == half for k in (q[0], q[3])} for half in (0, 1)]
    assert images[0] and images[1] and not images[0] & images[1]
    taught = type("M", (), {"space_analogies": [q for q, h in zip(quads, halves) if h == 0]})
    assert untrained_analogies(taught, quads)[0] == [q for q, h in zip(quads, halves) if h == 1]


def test_the_evaluation_asks_target_6_of_questions_the_term_never_trained_on(plain, taught):
    """Questions about an image x the term trained on measure fit, not the space: the evaluation
    answers them apart, and target 6 is the hit rate on the others alone."""
    trained, fresh = _swap_quads(plain, range(100, 140)), _swap_quads(plain, range(30))
    assert untrained_analogies(taught, trained + fresh) == (fresh, trained)
    tags = [[plain.class_words[y]] for y in plain.test_labels[:40]]
    report = run_evaluation(taught, plain.test_features[:40], tags, plain.class_words, baselines=(),
                            word_similarity=False, analogies=trained + fresh)
    an, fit = report.space["analogies"], report.space["analogies_trained"]
    assert (an["n"], fit["n"]) == (len(fresh), len(trained))
    row = next(t for t in report.targets() if t["target"].startswith("6."))
    assert row["value"] == an["hit@1"] and "30 questions about images never trained on; 40 were" in row["target"]
    assert "analogies on the 40 questions the model trained on" in report.format_table()
    # a model trained on no questions is asked all of them, as before
    assert untrained_analogies(Im2Vec(), fresh) == (fresh, [])
