"""Baseline scorers on hand-made data: kNN votes, ridge's linear map (scikit-learn against the closed
form), logistic regression's two backends (on the synthetic corpus: test_evaluate.py)."""

import numpy as np
import pytest

from gensim_im2vec import baselines
from gensim_im2vec import evaluate as ev


def test_knn_votes_of_neighbours():
    feats = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    knn = baselines.KNNTagScorer.fit(feats, [["a"], ["a", "b"], ["c"], ["c"]], k=2)
    s = knn(np.array([[1.0, 0.05]], dtype=np.float32), ["a", "b", "c", "zzz"])[0]
    assert s[0] > s[1] > s[2] >= s[3] == 0.0


def test_ridge_recovers_a_linear_map_into_the_word_space():
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(0)
    kv = KeyedVectors(8)
    words = [f"w{i}" for i in range(6)]
    kv.add_vectors(words, rng.normal(size=(6, 8)).astype(np.float32))
    protos = rng.normal(size=(6, 16))
    labels = rng.integers(0, 6, size=300)
    x = protos[labels] + 0.1 * rng.normal(size=(300, 16))
    ridge = baselines.RidgeScorer.fit(x, [[words[c]] for c in labels], kv, alpha=0.1)
    test = protos + 0.1 * rng.normal(size=(6, 16))
    assert (ridge(test, words).argmax(axis=1) == np.arange(6)).all()


def test_evaluate_re_exports_the_baselines():
    for name in baselines.__all__:
        assert getattr(ev, name) is getattr(baselines, name), name


def _closed_form_ridge(x, targets, alpha):
    """The ridge map by hand: centred features and targets, primal or dual normal equations."""
    xc, yc = x - x.mean(axis=0), targets - targets.mean(axis=0)
    n, f = xc.shape
    if f <= n:
        return np.linalg.solve(xc.T @ xc + alpha * np.eye(f), xc.T @ yc)
    return xc.T @ np.linalg.solve(xc @ xc.T + alpha * np.eye(n), yc)


@pytest.mark.parametrize("n_images", [200, 12])  # more images than features, and fewer (the dual form)
def test_ridge_by_scikit_learn_is_the_closed_form(n_images):
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(1)
    kv = KeyedVectors(8)
    words = [f"w{i}" for i in range(10)]
    kv.add_vectors(words, rng.normal(size=(10, 8)).astype(np.float32))
    x = rng.normal(size=(n_images, 16))
    tags = [[words[i % 10], words[(3 * i) % 10]] + (["unknown"] if i % 4 else []) for i in range(n_images)]
    ridge = baselines.RidgeScorer.fit(x, tags, kv, alpha=0.5)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    normed = kv.get_normed_vectors()
    targets = np.stack([normed[[kv.key_to_index[w] for w in t if w in kv.key_to_index]].mean(axis=0) for t in tags])
    want = _closed_form_ridge(unit, targets, 0.5)
    np.testing.assert_allclose(ridge.W, want, atol=1e-4)
    test = rng.normal(size=(5, 16))
    by_hand = (test / np.linalg.norm(test, axis=1, keepdims=True) - unit.mean(axis=0)) @ want + targets.mean(axis=0)
    np.testing.assert_allclose(ridge.project(test), by_hand, atol=1e-4)
