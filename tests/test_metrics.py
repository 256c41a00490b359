"""Ranking metrics on hand-computed cases; ties count by their expectation over all orderings."""

import itertools
import math

import numpy as np
import pytest

from gensim_im2vec import evaluate as ev
from gensim_im2vec import metrics


def test_average_precision_of_a_known_ranking_is_the_exact_fraction():
    assert metrics.average_precision([0.9, 0.8, 0.7, 0.6], [True, False, True, False]) == pytest.approx(5 / 6)
    assert metrics.average_precision([0.1, 0.4, 0.3], [True, False, False]) == pytest.approx(1 / 3)
    assert metrics.average_precision([3, 2, 1], [True, True, True]) == pytest.approx(1.0)
    assert math.isnan(metrics.average_precision([3, 2, 1], [False, False, False]))


def test_precision_and_recall_at_k_by_hand():
    s = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    r = np.array([[False, True, False, True, True]])
    assert metrics.precision_at_k(s, r, 1) == 0.0
    assert metrics.precision_at_k(s, r, 2) == pytest.approx(1 / 2)
    assert metrics.precision_at_k(s, r, 5) == pytest.approx(3 / 5)
    assert metrics.precision_at_k(s, r, 10) == pytest.approx(3 / 10)  # divides by k, not by n
    assert metrics.recall_at_k(s, r, 2) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(s, r, 4) == pytest.approx(2 / 3)
    m = metrics.ranking_metrics(s, r, ks=(1, 5))
    assert m["map"] == pytest.approx((1 / 2 + 2 / 4 + 3 / 5) / 3) and m["n"] == 1


def test_map_skips_rows_without_a_relevant_tag_and_retrieval_map_ranks_columns():
    s = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    r = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
    assert metrics.mean_average_precision(s, r) == pytest.approx((1 + 1 / 3) / 2)
    # tag 0: images ranked (row 2 [5], row 0 [3], row 1 [1]) → relevant at 2 and 3: (1/2 + 2/3) / 2
    assert metrics.retrieval_map(s, r) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert math.isnan(metrics.mean_average_precision(s, np.zeros_like(r)))


def _brute_force(scores, relevant, k):
    """Mean AP and P@k over every ordering that respects the scores (ties permuted)."""
    aps, pks = [], []
    for perm in itertools.permutations(range(len(scores))):
        order = sorted(perm, key=lambda i: -scores[i])  # stable: ties keep the permutation's order
        rel = np.asarray(relevant)[order]
        hits = np.cumsum(rel)
        aps.append(np.sum(hits[rel] / (np.flatnonzero(rel) + 1)) / rel.sum())
        pks.append(hits[min(k, len(rel)) - 1] / k)
    return np.mean(aps), np.mean(pks)


@pytest.mark.parametrize("seed", range(12))
def test_ties_count_by_their_expectation_over_all_orderings(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    scores = rng.integers(0, 3, size=n).astype(float)  # many ties
    relevant = rng.random(n) < 0.5
    relevant[rng.integers(n)] = True
    ap, p2 = _brute_force(scores, relevant, 2)
    assert metrics.average_precision(scores, relevant) == pytest.approx(ap)
    assert metrics.precision_at_k(scores, relevant, 2) == pytest.approx(p2)
    # and the result does not depend on the order of the candidates
    perm = rng.permutation(n)
    assert metrics.average_precision(scores[perm], relevant[perm]) == pytest.approx(ap)


def test_constant_scores_give_chance_and_minus_inf_ranks_last():
    # one relevant among 4 tied: (1 + 1/2 + 1/3 + 1/4) / 4
    assert metrics.average_precision(np.zeros(4), [False, False, True, False]) == pytest.approx(25 / 48)
    assert metrics.average_precision([-np.inf, 1.0, 0.5], [True, False, False]) == pytest.approx(1 / 3)


def test_metrics_refuse_nan_and_mismatched_shapes():
    with pytest.raises(ValueError, match="NaN"):
        metrics.average_precision([np.nan, 1.0], [True, False])
    with pytest.raises(ValueError, match="shape"):
        metrics.mean_average_precision(np.zeros((2, 3)), np.zeros((2, 2), bool))
    with pytest.raises(TypeError, match="list of tags"):
        metrics.relevance_matrix(["dog"], ["dog"])


def test_relevance_matrix_ignores_tags_outside_the_candidates():
    r = metrics.relevance_matrix([["dog", "pet", "xyz"], ["car"]], ["car", "dog", "pet"])
    assert r.tolist() == [[False, True, True], [True, False, False]]


def test_large_matrices_are_chunked_consistently(monkeypatch):
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, size=(50, 40)).astype(float)
    r = rng.random((50, 40)) < 0.2
    whole = metrics.ranking_metrics(s, r)
    monkeypatch.setattr(metrics, "_CHUNK_CELLS", 70)
    assert metrics.ranking_metrics(s, r) == pytest.approx(whole)


def test_evaluate_re_exports_the_metrics():
    for name in metrics.__all__:
        assert getattr(ev, name) is getattr(metrics, name), name
