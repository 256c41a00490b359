"""Ranking metrics of image tagging and retrieval: P@k, R@k, mAP and tag → image mAP.

A *score matrix* has one row per image and one column per candidate tag; ground truth is a boolean
matrix of the same shape (:func:`relevance_matrix` builds it from tag lists). Rankings sort by
descending score. **Ties are handled deterministically by their expectation**: a metric is
averaged over every ordering of tied items (McSherry & Najork, ECIR 2008), so a scorer that gives
many tags the same score (a frequency prior, a classifier blind to unseen tags) gets exactly its
chance-level value, never a lucky or unlucky one that depends on the order of the candidates.

>>> import numpy as np
>>> from gensim_im2vec.metrics import average_precision, precision_at_k, mean_average_precision
>>> scores = np.array([0.9, 0.8, 0.7, 0.6])          # one image, four candidate tags
>>> relevant = np.array([True, False, True, False])  # its true tags are the 1st and the 3rd
>>> round(average_precision(scores, relevant), 6)    # (1/1 + 2/3) / 2
0.833333
>>> precision_at_k(scores, relevant, 2)
0.5
>>> average_precision(np.zeros(2), np.array([False, True]))  # a tie: (1 + 1/2) / 2
0.75
>>> round(mean_average_precision(np.array([[3., 2., 1.], [1., 2., 3.]]),
...                              np.array([[1, 0, 0], [1, 0, 0]], bool)), 6)    # (1 + 1/3) / 2
0.666667

:func:`retrieval_map` is the same per column: for each tag, rank the images (tag → image).
:func:`evaluate_scores` gives all of them for one score matrix, over all candidates and, with
zero-shot tags, over the seen and the zero-shot candidates apart (what the evaluation table shows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "average_precision",
    "evaluate_scores",
    "mean_average_precision",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "relevance_matrix",
    "retrieval_map",
]

#: Score-matrix cells processed at once by the tie-aware metrics (bounds their memory).
_CHUNK_CELLS = 2_000_000


def _as_pair(scores, relevant, name: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    r = np.asarray(relevant)
    if s.shape != r.shape:
        raise ValueError(f"{name}: scores have shape {s.shape} but relevant has shape {r.shape}; "
                         f"they must match (one row per image, one column per candidate).")
    if np.isnan(s).any():
        raise ValueError(f"{name}: scores contain NaN; give candidates a scorer cannot rank -inf instead.")
    return s, r.astype(bool)


def _tie_aware(scores: np.ndarray, relevant: np.ndarray, ks: Sequence[int]) -> tuple[np.ndarray, dict]:
    """Expected AP and hits@k of each row, averaged over all orderings of tied scores.

    Returns ``ap`` (m,) with NaN for rows without a relevant item and ``{k: hits (m,)}``.
    """
    m, n = scores.shape
    ap = np.full(m, np.nan)
    hits = {k: np.zeros(m) for k in ks}
    if m == 0 or n == 0:
        return ap, hits
    step = max(1, _CHUNK_CELLS // n)
    for lo in range(0, m, step):
        S, R = scores[lo:lo + step], relevant[lo:lo + step]
        rows = len(S)
        order = np.argsort(-S, axis=1, kind="stable")
        Ss = np.take_along_axis(S, order, 1)
        Rs = np.take_along_axis(R, order, 1).astype(np.float64)
        new = np.ones(Ss.shape, dtype=bool)
        new[:, 1:] = Ss[:, 1:] != Ss[:, :-1]
        flat_new = new.ravel()
        gid = np.cumsum(flat_new) - 1               # global tie-group id of each cell
        first = np.flatnonzero(flat_new)            # flat index of each group's first cell
        size = np.diff(np.append(first, rows * n)).astype(np.float64)
        n_rel = np.bincount(gid, weights=Rs.ravel(), minlength=len(first))
        start = first % n                           # items ranked before the group
        rel_before = (np.cumsum(Rs, axis=1) - Rs).ravel()[first]
        pos = np.arange(rows * n) - first[gid]      # 0-based place inside its group
        rank = np.tile(np.arange(1, n + 1, dtype=np.float64), rows)
        # a relevant item at place `pos` of its group expects pos·(r−1)/(size−1) other relevant
        # items of the group ahead of it; each of the group's places holds a relevant item with
        # probability r/size
        ahead = pos * (n_rel[gid] - 1) / np.maximum(size[gid] - 1, 1)
        contrib = (n_rel / size)[gid] * (rel_before[gid] + 1 + ahead) / rank
        total_rel = Rs.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ap[lo:lo + rows] = np.where(total_rel > 0, contrib.reshape(rows, n).sum(axis=1) / total_rel, np.nan)
        group_row = first // n
        for k in ks:
            inside = np.clip(k - start, 0, size)
            hits[k][lo:lo + rows] = np.bincount(group_row, weights=n_rel * inside / size, minlength=rows)
    return ap, hits


def _row_mean(values: np.ndarray, defined: np.ndarray) -> float:
    return float(values[defined].mean()) if defined.any() else float("nan")


def _cutoffs(ks, name: str) -> list[int]:
    """`ks` as ints >= 1; a fraction (2.5 would be reported as p@2) or a non-number is refused."""
    out = []
    for k in ks:
        try:
            ok = not isinstance(k, (bool, np.bool_, str)) and int(k) == k
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise ValueError(f"{name}: cut-offs must be whole numbers, got {list(ks)}; e.g. ks=(1, 5, 10).")
        out.append(int(k))
    if any(k < 1 for k in out):
        raise ValueError(f"{name}: cut-offs must be >= 1, got {out}.")
    return out


def ranking_metrics(scores, relevant, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """P@k, R@k and mAP of each row's ranking, averaged over rows with at least one relevant item.

    Parameters
    ----------
    scores : array_like (n_rows, n_candidates)
        Higher is better; ``-inf`` for what a scorer cannot rank. NaN is refused.
    relevant : array_like of bool, same shape
        Ground truth.
    ks : sequence of int
        Cut-offs for precision and recall (P@k divides by k, also when k > n_candidates).

    Returns
    -------
    dict
        ``{"p@k": float, "r@k": float, …, "map": float, "n": rows evaluated}``; NaN when no row
        has a relevant item. Ties count by their expectation (see the module docstring).
    """
    s, r = _as_pair(scores, relevant, "ranking_metrics")
    if s.ndim == 1:
        s, r = s[None, :], r[None, :]
    if s.ndim != 2:
        raise ValueError(f"ranking_metrics: expected a 2-D score matrix, got shape {s.shape}.")
    ks = _cutoffs(ks, "ranking_metrics")
    ap, hits = _tie_aware(s, r, ks)
    n_rel = r.sum(axis=1)
    defined = n_rel > 0
    out = {}
    for k in ks:
        out[f"p@{k}"] = _row_mean(hits[k] / k, defined)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"r@{k}"] = _row_mean(hits[k] / n_rel, defined)
    out["map"] = _row_mean(ap, defined)
    out["n"] = int(defined.sum())
    return out


def average_precision(scores, relevant) -> float:
    """Average precision of one ranking (1-D scores and relevance); NaN without a relevant item.

    >>> average_precision([0.1, 0.4, 0.3], [True, False, False])   # the relevant item is 3rd
    0.3333333333333333
    """
    s, r = _as_pair(scores, relevant, "average_precision")
    if s.ndim != 1:
        raise ValueError(f"average_precision: expected one ranking (1-D), got shape {s.shape}; "
                         f"use mean_average_precision for a matrix.")
    return float(_tie_aware(s[None, :], r[None, :], ())[0][0])


def mean_average_precision(scores, relevant) -> float:
    """Mean over rows (images) of the average precision of each row's ranking of the columns (tags).

    Rows without a relevant item are left out; NaN when there is none at all.
    """
    return ranking_metrics(scores, relevant, ks=())["map"]


def precision_at_k(scores, relevant, k: int) -> float:
    """Share of relevant items among the first `k` (mean over rows with a relevant item)."""
    (k,) = _cutoffs((k,), "precision_at_k")
    return ranking_metrics(scores, relevant, ks=(k,))[f"p@{k}"]


def recall_at_k(scores, relevant, k: int) -> float:
    """Share of each row's relevant items found among its first `k` (mean over rows)."""
    (k,) = _cutoffs((k,), "recall_at_k")
    return ranking_metrics(scores, relevant, ks=(k,))[f"r@{k}"]


def retrieval_map(scores, relevant) -> float:
    """Tag → image retrieval mAP: for each column (tag), rank the rows (images); mean AP over tags.

    Tags that no image carries are left out.
    """
    s, r = _as_pair(scores, relevant, "retrieval_map")
    if s.ndim != 2:
        raise ValueError(f"retrieval_map: expected a 2-D score matrix (images × tags), got shape {s.shape}.")
    return mean_average_precision(s.T, r.T)


def relevance_matrix(true_tags: Sequence[Iterable[str]], candidates: Sequence[str]) -> np.ndarray:
    """Boolean ``(len(true_tags), len(candidates))``: does image i carry candidate tag j?

    Tags that are not candidates are ignored; a candidate listed twice gets both its columns marked
    (one column per entry of `candidates`, always).

    >>> relevance_matrix([["dog", "pet"], ["car"]], ["car", "dog"]).astype(int).tolist()
    [[0, 1], [1, 0]]
    """
    index: dict[str, list[int]] = {}
    for j, c in enumerate(candidates):
        index.setdefault(c, []).append(j)
    out = np.zeros((len(true_tags), len(candidates)), dtype=bool)
    for i, tags in enumerate(true_tags):
        if isinstance(tags, str):
            raise TypeError(f"true_tags[{i}] is the str {tags!r}; give each image a list of tags, e.g. [{tags!r}].")
        for t in tags:
            cols = index.get(t)
            if cols is not None:
                out[i, cols] = True
    return out




def _scope_metrics(scores: np.ndarray, rel: np.ndarray, ks: Sequence[int]) -> dict:
    m = ranking_metrics(scores, rel, ks)
    m["tag_map"] = retrieval_map(scores, rel) if rel.any() else float("nan")
    m["n_images"] = m.pop("n")
    m["n_tags"] = int(rel.any(axis=0).sum())
    m["n_candidates"] = int(rel.shape[1])
    return m


def evaluate_scores(scores, true_tags: Sequence[Iterable[str]], candidates: Sequence[str],
                    zero_shot: Iterable[str] | None = None, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """The metrics of :func:`gensim_im2vec.evaluate.evaluate_image_tagging` for a score matrix already
    computed: ``{"all": m, "seen": m, "zero_shot": m}`` (the last two only with `zero_shot`).

    Parameters
    ----------
    scores : array_like (n_images, len(candidates))
    true_tags, candidates, zero_shot, ks
        As :func:`gensim_im2vec.evaluate.evaluate_image_tagging` (`candidates` already includes the
        zero-shot tags; each candidate once: one column per tag).
    """
    s = np.asarray(scores, dtype=np.float64)
    counts = Counter(candidates)
    repeated = [c for c, n in counts.items() if n > 1]
    if repeated:
        raise ValueError(f"candidates list {len(repeated)} tag(s) more than once, e.g. {repeated[:3]}; a repeated "
                         f"tag would count twice in every image's ranking. Give each candidate once (with its "
                         f"score column), e.g. list(dict.fromkeys(candidates)).")
    if s.shape != (len(true_tags), len(candidates)):
        raise ValueError(f"scores have shape {s.shape}; expected ({len(true_tags)}, {len(candidates)}) "
                         f"(images × candidates).")
    rel = relevance_matrix(true_tags, candidates)
    out = {"all": _scope_metrics(s, rel, ks)}
    if zero_shot is not None:
        zs = set(zero_shot)
        is_zs = np.array([c in zs for c in candidates], dtype=bool)
        out["seen"] = _scope_metrics(s[:, ~is_zs], rel[:, ~is_zs], ks)
        out["zero_shot"] = _scope_metrics(s[:, is_zs], rel[:, is_zs], ks)
    return out
