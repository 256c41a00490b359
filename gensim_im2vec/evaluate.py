"""How well does the joint space tag and retrieve images it never saw, and what do images do to words?

Everything here takes plain inputs — a feature matrix of held-out images, each image's true tags
(a list of str per image), the candidate tag vocabulary, and optionally the zero-shot tags (tags
never shown with a training image) — so any data set, split or reader can feed it.

Metrics
-------
A *score matrix* has one row per image and one column per candidate tag; ground truth is a boolean
matrix of the same shape (:func:`relevance_matrix` builds it from tag lists). Rankings sort by
descending score. **Ties are handled deterministically by their expectation**: a metric is
averaged over every ordering of tied items (McSherry & Najork, ECIR 2008), so a scorer that gives
many tags the same score (a frequency prior, a classifier blind to unseen tags) gets exactly its
chance-level value, never a lucky or unlucky one that depends on the order of the candidates.

>>> import numpy as np
>>> from gensim_im2vec.evaluate import average_precision, precision_at_k, mean_average_precision
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

Scorers
-------
A *scorer* is any callable ``scorer(features, candidates) -> scores`` returning an array of shape
``(n_images, len(candidates))``; a candidate it cannot score gets ``-inf`` (ranked last, tied).
:class:`Im2VecScorer` asks the space which words fit an image: cosine in ``model.wv``
between ``model.project(features)`` and the words, for seen and zero-shot tags alike (what
``model.wv.most_similar`` answers; nothing beside the space).
The baselines are built from the training split:

=============================  ====================================================================
:class:`RandomProjectionScorer`  an Im2Vec-like map with a random W, cosine to the word vectors
:class:`RidgeScorer`             closed-form ridge from features to the mean of the image's tag
                                 vectors (DeViSE-style, linear); ranks unseen tags too
:class:`IdTokenWord2VecScorer`   plain Word2Vec with image ids as ordinary tokens: cannot place an
                                 unseen image (reported as not applicable; in-sample only)
:class:`TagPriorScorer`          tag frequency among training images
:class:`KNNTagScorer`            kNN tag transfer on L2-normalised features (k=20)
:class:`LogisticScorer`          one-vs-rest logistic regression (scikit-learn's objective);
                                 supervised, blind to unseen tags (they tie at the bottom)
=============================  ====================================================================

>>> from gensim_im2vec import Im2Vec
>>> from gensim_im2vec.synthetic import make_corpus
>>> from gensim_im2vec.evaluate import Im2VecScorer, TagPriorScorer, evaluate_image_tagging
>>> data = make_corpus(n_classes=4, n_images=200, n_features=16, n_test=40, seed=0)
>>> model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1,
...                epochs=20, sample=0, workers=1, seed=1)
>>> test_tags = [[data.class_words[c]] for c in data.test_labels]
>>> candidates = model.word_keys
>>> res = evaluate_image_tagging(Im2VecScorer(model), data.test_features, test_tags, candidates)
>>> res["all"]["p@1"] > 0.9
True
>>> train_tags = [doc[1:] for doc in data.docs]
>>> prior = TagPriorScorer.fit(train_tags)
>>> evaluate_image_tagging(prior, data.test_features, test_tags, candidates)["all"]["map"] < res["all"]["map"]
True

Everything in one run
---------------------
:func:`run_evaluation` scores the model (cosine in its space) and every baseline on the same
held-out images, adds word similarity and the space's own checks, and returns an :class:`EvaluationReport`; ``print(report)`` prints
aligned tables in the style of the slides, ``report.save_json(path)`` keeps the numbers:

>>> from gensim_im2vec.evaluate import run_evaluation
>>> train_features = np.stack([data.features[d[0]] for d in data.docs])
>>> report = run_evaluation(model, data.test_features, test_tags, candidates,
...                         train_features=train_features, train_tags=train_tags,
...                         baselines=("random", "ridge", "prior", "knn"), word_similarity=False)
>>> [r.method for r in report.rows][:2]
['Im2Vec (cosine in model.wv)', 'random W']
>>> print(report.format_table())                     # doctest: +SKIP

Word similarity (WordSim353, SimLex-999 and Google analogies, all bundled with gensim):
:func:`word_similarity` for one model, :func:`compare_word_similarity` for Im2Vec's words
against the text-only model they started from.

The same from the shell (see :func:`load_tagged_jsonl` for the file format)::

    im2vec evaluate model.im2vec --test test.jsonl --features store/ --train train.jsonl
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from timeit import default_timer

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from gensim_im2vec.fileio import atomic_write_json
from gensim_im2vec.keys import image_mask
from gensim_im2vec.validation import check_features, l2_normalize

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BASELINES",
    "EvaluationReport",
    "Im2VecScorer",
    "IdTokenWord2VecScorer",
    "KNNTagScorer",
    "LogisticScorer",
    "NotApplicableError",
    "RandomProjectionScorer",
    "RidgeScorer",
    "TagPriorScorer",
    "TagScorer",
    "TaggingResult",
    "analogy_quads",
    "average_precision",
    "compare_word_similarity",
    "evaluate_image_tagging",
    "evaluate_scores",
    "features_for_keys",
    "image_analogies",
    "load_tagged_jsonl",
    "mean_average_precision",
    "neighbour_tag_agreement",
    "one_space_check",
    "precision_at_k",
    "ranking_metrics",
    "read_tag_file",
    "recall_at_k",
    "relevance_matrix",
    "retrieval_map",
    "run_evaluation",
    "word_similarity",
    "words_only",
]

#: Baselines :func:`run_evaluation` computes by default.
DEFAULT_BASELINES = ("random", "ridge", "id-token", "prior", "knn", "logistic")

#: Score-matrix cells processed at once by the tie-aware metrics (bounds their memory).
_CHUNK_CELLS = 2_000_000

Scorer = Callable[[np.ndarray, Sequence[str]], np.ndarray]


# ============================================================================ metrics
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
    ks = [int(k) for k in ks]
    if any(k < 1 for k in ks):
        raise ValueError(f"ranking_metrics: cut-offs must be >= 1, got {ks}.")
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
    return ranking_metrics(scores, relevant, ks=(k,))[f"p@{k}"]


def recall_at_k(scores, relevant, k: int) -> float:
    """Share of each row's relevant items found among its first `k` (mean over rows)."""
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

    Tags that are not candidates are ignored.

    >>> relevance_matrix([["dog", "pet"], ["car"]], ["car", "dog"]).astype(int).tolist()
    [[0, 1], [1, 0]]
    """
    index = {c: j for j, c in enumerate(candidates)}
    out = np.zeros((len(true_tags), len(index)), dtype=bool)
    for i, tags in enumerate(true_tags):
        if isinstance(tags, str):
            raise TypeError(f"true_tags[{i}] is the str {tags!r}; give each image a list of tags, e.g. [{tags!r}].")
        for t in tags:
            j = index.get(t)
            if j is not None:
                out[i, j] = True
    return out


# ============================================================================ scorers
class NotApplicableError(RuntimeError):
    """The method cannot score these images (e.g. id-token Word2Vec on images it never saw)."""


class TagScorer:
    """Base of the scorers: ``scorer(features, candidates) -> (n_images, n_candidates) scores``.

    Attributes
    ----------
    name : str
        Row label in the evaluation table.
    note : str
        One line for the table (what the method is, or why it is not applicable).
    """

    name = "scorer"
    note = ""

    def score(self, features, candidates: Sequence[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, features, candidates: Sequence[str]) -> np.ndarray:
        return self.score(features, candidates)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _word_matrix(word_vectors, candidates: Sequence[str], *, unit: bool = True,
                 exclude: Callable[[str], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `word_vectors` (KeyedVectors) for the candidates it knows, and their column positions."""
    k2i = word_vectors.key_to_index
    cols, idx = [], []
    for j, c in enumerate(candidates):
        i = k2i.get(c)
        if i is not None and (exclude is None or not exclude(c)):
            cols.append(j)
            idx.append(i)
    idx = np.asarray(idx, dtype=np.int64)
    mat = np.asarray(word_vectors.vectors)[idx] if len(idx) else np.zeros((0, word_vectors.vector_size))
    if unit:  # only the candidates' rows: never a normalised copy of a model's image rows
        mat = l2_normalize(mat)
    return np.asarray(mat, dtype=np.float32), np.asarray(cols, dtype=np.int64)


def _fill(n: int, candidates: Sequence[str], cols: np.ndarray, values: np.ndarray, fill=-np.inf) -> np.ndarray:
    out = np.full((n, len(candidates)), fill, dtype=np.float32)
    if len(cols):
        out[:, cols] = values
    return out


class Im2VecScorer(TagScorer):
    """Score candidate tags for images by the space itself: cosine between an image's vector
    (``model.project(features)``, the same function that wrote the training images' rows of
    ``model.wv``) and the words' vectors in ``model.wv`` — what ``model.wv.most_similar`` ranks by.

    Parameters
    ----------
    model : Im2Vec
    name : str, optional
        Row label (default "Im2Vec (cosine in model.wv)").

    Candidates that are not words of the model score ``-inf``.
    """

    note = "cosine between model.project(f) and the words in model.wv"

    def __init__(self, model, name: str | None = None):
        self.model = model
        self.name = name or "Im2Vec (cosine in model.wv)"

    def score(self, features, candidates):
        model = self.model
        H = np.atleast_2d(model.project(features))
        return self.score_vectors(H, candidates)

    def score_vectors(self, vectors, candidates):
        """The same for vectors already in the space (e.g. training images' rows of ``model.wv``)."""
        mat, cols = _word_matrix(self.model.wv, candidates, exclude=self.model.is_image)
        return _fill(len(vectors), candidates, cols, l2_normalize(np.asarray(vectors, dtype=np.float32)) @ mat.T)


class RandomProjectionScorer(TagScorer):
    """Baseline (a): ``h = R · v̂`` with a random Gaussian R, ranked by cosine to the word vectors.

    The chance level of the joint space: same word space, same kind of linear map, nothing learned.

    Parameters
    ----------
    word_vectors : KeyedVectors
        The word space (e.g. ``model.wv``).
    n_features : int
        Feature dimension.
    seed : int
    """

    name = "random W"
    note = "random projection into the word space"

    def __init__(self, word_vectors: KeyedVectors, n_features: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.word_vectors = word_vectors
        self.R = (rng.standard_normal((word_vectors.vector_size, int(n_features))) / math.sqrt(n_features)).astype(np.float32)

    def score(self, features, candidates):
        X = l2_normalize(check_features(features, dim=self.R.shape[1], name="features"))
        mat, cols = _word_matrix(self.word_vectors, candidates)
        return _fill(len(X), candidates, cols, l2_normalize(X @ self.R.T) @ mat.T)


def _clean_tags(tags: Sequence[Iterable[str]], name: str, drop: set | None = None) -> list[list[str]]:
    out = []
    for i, t in enumerate(tags):
        if isinstance(t, str):
            raise TypeError(f"{name}[{i}] is the str {t!r}; give each image a list of tags, e.g. [{t!r}].")
        out.append([x for x in t if not drop or x not in drop])
    return out


def _check_pairs(features, tags, name: str) -> tuple[np.ndarray, list[list[str]]]:
    X = check_features(features, name=f"{name} features")
    if len(tags) != len(X):
        raise ValueError(f"{name}: {len(X)} feature rows but {len(tags)} tag lists; they must match one to one.")
    return X, _clean_tags(tags, f"{name} tags")


class RidgeScorer(TagScorer):
    """Baseline (b): closed-form ridge regression from features to the mean of the image's tag vectors.

    A DeViSE-style linear map into the same word space, fitted in one solve:
    ``W = argmin ‖X̂W − Y‖² + α‖W‖²`` on centred L2-normalised features ``X̂`` and targets ``Y`` =
    mean of the unit vectors of each training image's tags (tags without a vector are skipped).
    Candidates are ranked by cosine to their word vectors, so it ranks unseen tags too. With
    ``center=True`` (default) the cosine is taken in the word space centred on its mean unit word
    vector: skip-gram vectors share a common direction, and uncentred, the tags that are on
    every image (the noise of user tags) sit closest to every mean-tag prediction and win every
    ranking (on the synthetic corpus: mAP 0.02 uncentred, 1.0 centred).

    Use :meth:`fit`.
    """

    name = "ridge → tag vectors"
    note = "DeViSE-style linear map, cosine to word vectors"

    def __init__(self, word_vectors: KeyedVectors, W: np.ndarray, x_mean: np.ndarray, y_mean: np.ndarray,
                 center: bool = True):
        self.word_vectors, self.W, self.x_mean, self.y_mean = word_vectors, W, x_mean, y_mean
        self.center = bool(center)
        normed = word_vectors.get_normed_vectors()
        self.word_mean = (normed.mean(axis=0) if center and len(normed)
                          else np.zeros(word_vectors.vector_size)).astype(np.float32)

    @classmethod
    def fit(cls, features, tags: Sequence[Iterable[str]], word_vectors: KeyedVectors,
            alpha: float = 1.0, center: bool = True) -> RidgeScorer:
        """Fit on training images.

        Parameters
        ----------
        features : array_like (n_images, n_features)
            Raw features (L2-normalised here).
        tags : sequence of list of str
            Each training image's tags.
        word_vectors : KeyedVectors
            The word space to map into (e.g. the Im2Vec model's ``wv``).
        alpha : float
            Ridge penalty (> 0); with unit-norm features, 0.1–10 is the useful range.
        center : bool
            Rank by cosine in the word space centred on its mean word vector (see the class).
        """
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}.")
        from scipy.linalg import solve

        X, tags = _check_pairs(features, tags, "RidgeScorer.fit")
        normed = word_vectors.get_normed_vectors()
        k2i = word_vectors.key_to_index
        keep, targets = [], []
        for i, t in enumerate(tags):
            idx = [k2i[w] for w in t if w in k2i]
            if idx:
                keep.append(i)
                targets.append(normed[idx].mean(axis=0))
        if not keep:
            raise ValueError("RidgeScorer.fit: no training image has a tag with a word vector; "
                             "is word_vectors the model's word space?")
        Xk = l2_normalize(X[keep]).astype(np.float64)
        Y = np.asarray(targets, dtype=np.float64)
        xm, ym = Xk.mean(axis=0), Y.mean(axis=0)
        Xc, Yc = Xk - xm, Y - ym
        n, f = Xc.shape
        if f <= n:
            W = solve(Xc.T @ Xc + alpha * np.eye(f), Xc.T @ Yc, assume_a="pos")
        else:  # dual form: the n×n system is smaller
            W = Xc.T @ solve(Xc @ Xc.T + alpha * np.eye(n), Yc, assume_a="pos")
        logger.info("ridge: fitted %i×%i map on %i images (%i without a tag vector skipped), alpha=%g",
                    f, Y.shape[1], n, len(tags) - n, alpha)
        return cls(word_vectors, W.astype(np.float32), xm.astype(np.float32), ym.astype(np.float32), center)

    def project(self, features) -> np.ndarray:
        """Map images into the word space, shape (n, vector_size)."""
        X = l2_normalize(check_features(features, dim=self.W.shape[0], name="features"))
        return (X - self.x_mean) @ self.W + self.y_mean

    def score(self, features, candidates):
        P = self.project(features) - self.word_mean
        mat, cols = _word_matrix(self.word_vectors, candidates)
        return _fill(len(P), candidates, cols, l2_normalize(P) @ l2_normalize(mat - self.word_mean).T)


class TagPriorScorer(TagScorer):
    """Baseline (d): every image gets the same ranking, by how many training images carry each tag.

    Unseen tags score 0 (tied at the bottom). Use :meth:`fit`.
    """

    name = "tag prior"
    note = "tag frequency among training images"

    def __init__(self, counts: Mapping[str, int]):
        self.counts = dict(counts)

    @classmethod
    def fit(cls, tags: Sequence[Iterable[str]]) -> TagPriorScorer:
        """Count, for each tag, the training images that carry it."""
        counts: Counter = Counter()
        for t in _clean_tags(tags, "TagPriorScorer.fit tags"):
            counts.update(set(t))
        return cls(counts)

    def score(self, features, candidates):
        n = len(features)
        row = np.array([self.counts.get(c, 0) for c in candidates], dtype=np.float32)
        return np.broadcast_to(row, (n, len(candidates))).copy()


def _tag_index(tags: list[list[str]]):
    """Sparse (n_images × n_tags) indicator matrix and the tag list."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, t in enumerate(tags):
        for w in set(t):
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    Y = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(tags), len(vocab)))
    return Y, list(vocab)


class KNNTagScorer(TagScorer):
    """Baseline (e): kNN tag transfer on raw (L2-normalised) features.

    A tag's score is the sum of the cosine similarities (clipped at 0) of the `k` nearest training
    images that carry it, plus ``1e-6 ×`` its training frequency as a tie-breaker. Tags no training
    image carries score 0. Use :meth:`fit`.
    """

    note = "nearest training images vote (supervised)"

    def __init__(self, X: np.ndarray, Y, tags: list[str], k: int, prior: np.ndarray):
        self.X, self.Y, self.tags, self.k, self.prior = X, Y, tags, int(k), prior
        self.name = f"kNN (k={self.k})"

    @classmethod
    def fit(cls, features, tags: Sequence[Iterable[str]], k: int = 20) -> KNNTagScorer:
        """Remember the training images (features L2-normalised) and their tags."""
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k!r}.")
        X, tags = _check_pairs(features, tags, "KNNTagScorer.fit")
        Y, vocab = _tag_index(tags)
        prior = np.asarray(Y.sum(axis=0)).ravel()
        return cls(l2_normalize(X), Y, vocab, k, prior / max(float(prior.max(initial=0)), 1.0))

    def score(self, features, candidates):
        from scipy import sparse

        Q = l2_normalize(check_features(features, dim=self.X.shape[1], name="features"))
        k = min(self.k, len(self.X))
        index = {t: j for j, t in enumerate(self.tags)}
        cols = np.array([j for j, c in enumerate(candidates) if c in index], dtype=np.int64)
        tcols = np.array([index[candidates[j]] for j in cols], dtype=np.int64)
        out = np.zeros((len(Q), len(candidates)), dtype=np.float32)
        step = max(1, _CHUNK_CELLS // max(len(self.X), 1))
        for lo in range(0, len(Q), step):
            sims = Q[lo:lo + step] @ self.X.T
            nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            w = np.clip(np.take_along_axis(sims, nn, 1), 0, None)
            rows = np.repeat(np.arange(len(nn)), k)
            A = sparse.csr_matrix((w.ravel(), (rows, nn.ravel())), shape=(len(nn), len(self.X)))
            votes = np.asarray((A @ self.Y).todense()) + 1e-6 * self.prior
            if len(cols):
                out[lo:lo + step, cols] = votes[:, tcols]
        return out


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit_joint_logistic(X: np.ndarray, Y: np.ndarray, C: float, max_iter: int, tol: float):
    """All one-vs-rest problems in one L-BFGS run: ``Σ_t C·Σ_i logloss(x_i·w_t + b_t, y_it) + ½‖w_t‖²``.

    The problems are independent (the objective is their sum), so the optimum is the one of T
    separate scikit-learn ``LogisticRegression(C=C)`` fits (intercept unpenalised, as its lbfgs);
    jointly each iteration is two GEMMs instead of T small fits.
    """
    from scipy.optimize import minimize
    from scipy.special import expit

    n, f = X.shape
    t = Y.shape[1]
    X32, Y32 = np.ascontiguousarray(X, dtype=np.float32), np.ascontiguousarray(Y, dtype=np.float32)

    def loss_grad(theta):
        W = theta[: f * t].reshape(f, t).astype(np.float32)
        b = theta[f * t:].astype(np.float32)
        Z = X32 @ W + b
        loss = float((np.logaddexp(0, Z) - Y32 * Z).sum(dtype=np.float64))
        R = expit(Z) - Y32
        gW = C * (X32.T @ R) + W
        gb = C * R.sum(axis=0)
        value = C * loss + 0.5 * float(np.dot(theta[: f * t], theta[: f * t]))
        return value / n, np.concatenate([gW.ravel(), gb]).astype(np.float64) / n

    # one BLAS thread: small products run ~10x faster than on several threads of a busy machine.
    # float32 GEMMs round a little differently run to run (kernel paths depend on alignment), so
    # this baseline's figures can move in the third decimal between two runs on the same data
    with _one_blas_thread():
        res = minimize(loss_grad, np.zeros(f * t + t), jac=True, method="L-BFGS-B",
                       options={"maxiter": int(max_iter), "gtol": tol})
    if not res.success:
        logger.info("logistic: L-BFGS stopped after %i iterations: %s", res.nit, res.message)
    return res.x[: f * t].reshape(f, t).astype(np.float32), res.x[f * t:].astype(np.float32), int(res.nit)


class LogisticScorer(TagScorer):
    """Baseline (f): one-vs-rest logistic regression on features, a supervised reference.

    Features are L2-normalised, then standardised; one binary classifier per tag seen on at
    least `min_positives` training images, each scikit-learn's ``LogisticRegression(C=C)``
    objective; the score is its decision function (log-odds). Tags it has no classifier for
    (unseen, zero-shot) score ``-inf``: tied at the bottom, so it is at chance on zero-shot tags.
    Use :meth:`fit`.
    """

    name = "logistic (one-vs-rest)"
    note = "supervised; blind to unseen tags"

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                 tags: list[str]):
        self.coef, self.intercept, self.mean, self.scale, self.tags = coef, intercept, mean, scale, tags

    @classmethod
    def fit(cls, features, tags: Sequence[Iterable[str]], C: float = 1.0, min_positives: int = 1,
            max_iter: int = 300, backend: str = "joint", tol: float = 1e-5,
            n_jobs: int | None = None) -> LogisticScorer:
        """Fit one classifier per tag.

        Parameters
        ----------
        features, tags
            Training images and their tags.
        C : float
            Inverse regularisation strength of each classifier (> 0), as scikit-learn's.
        min_positives : int
            Tags on fewer training images get no classifier.
        max_iter : int
            L-BFGS iterations.
        backend : {"joint", "sklearn"}
            "joint" (default): all tags' problems in one L-BFGS run of matrix products (minutes
            less on ~700 tags × 1280-d features). "sklearn": scikit-learn's
            ``OneVsRestClassifier(LogisticRegression)``, the reference (same optimum).
        tol : float
            Gradient tolerance of the joint run.
        n_jobs : int, optional
            Parallel classifiers of the "sklearn" backend.
        """
        if not C > 0:
            raise ValueError(f"C must be > 0, got {C!r}.")
        if backend not in ("joint", "sklearn"):
            raise ValueError(f"backend must be 'joint' or 'sklearn', got {backend!r}.")
        X, tags = _check_pairs(features, tags, "LogisticScorer.fit")
        Y, vocab = _tag_index(tags)
        keep = np.flatnonzero(np.asarray(Y.sum(axis=0)).ravel() >= max(1, min_positives))
        if not len(keep):
            raise ValueError(f"LogisticScorer.fit: no tag is on >= {min_positives} training images.")
        Xn = l2_normalize(X)
        mean = Xn.mean(axis=0)
        scale = Xn.std(axis=0)
        scale[scale == 0] = 1.0
        Xs = (Xn - mean) / scale
        Yk = Y[:, keep].toarray()
        t0 = default_timer()
        if backend == "joint":
            coef, intercept, nit = _fit_joint_logistic(Xs, Yk, float(C), max_iter, tol)
        else:
            try:
                from sklearn.exceptions import ConvergenceWarning
                from sklearn.linear_model import LogisticRegression
                from sklearn.multiclass import OneVsRestClassifier
            except ImportError as e:  # pragma: no cover - depends on the environment
                raise ImportError("backend='sklearn' needs scikit-learn: pip install scikit-learn") from e
            import warnings

            clf = OneVsRestClassifier(LogisticRegression(C=C, max_iter=max_iter), n_jobs=n_jobs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", UserWarning)  # a tag carried by every image
                clf.fit(Xs, Yk.astype(np.int8))
            coef = np.stack([np.ravel(getattr(e, "coef_", np.zeros((1, Xs.shape[1])))) for e in clf.estimators_], 1)
            intercept = np.array([np.ravel(getattr(e, "intercept_", [0.0]))[0] for e in clf.estimators_])
            coef, intercept, nit = coef.astype(np.float32), intercept.astype(np.float32), max_iter
        logger.info("logistic (%s): %i one-vs-rest classifiers on %i images, %i features in %.1fs (%i iterations)",
                    backend, len(keep), len(X), X.shape[1], default_timer() - t0, nit)
        return cls(coef, intercept, mean, scale, [vocab[j] for j in keep])

    def decision_function(self, features) -> np.ndarray:
        """Log-odds of every tag with a classifier, shape (n_images, len(self.tags))."""
        X = check_features(features, dim=self.coef.shape[0], name="features")
        return ((l2_normalize(X) - self.mean) / self.scale) @ self.coef + self.intercept

    def score(self, features, candidates):
        dec = self.decision_function(features)
        index = {t: j for j, t in enumerate(self.tags)}
        cols = np.array([j for j, c in enumerate(candidates) if c in index], dtype=np.int64)
        return _fill(len(dec), candidates, cols, dec[:, [index[candidates[j]] for j in cols]])


class IdTokenWord2VecScorer(TagScorer):
    """Baseline (c): plain gensim Word2Vec with image ids as ordinary tokens.

    An image is then a free vector learned from its own documents, so an image never seen in
    training has no vector: :meth:`score` on features raises :class:`NotApplicableError`, and
    :func:`run_evaluation` reports the method as not applicable to held-out images.
    :meth:`score_keys` scores training images by key (in-sample, ``v_img · v_o``), for reference.

    Parameters
    ----------
    w2v : gensim.models.Word2Vec
        Trained with negative sampling on documents that contain the image tokens.
    """

    name = "id-token Word2Vec"
    note = "cannot place unseen images (an id is a free vector)"

    def __init__(self, w2v: Word2Vec):
        self.w2v = w2v

    @classmethod
    def fit(cls, docs: Iterable[Sequence[str]], **word2vec_kwargs) -> IdTokenWord2VecScorer:
        """Train ``Word2Vec(docs, **word2vec_kwargs)`` (``min_count=1`` by default, so every id stays)."""
        params = {"min_count": 1, "negative": 5, "hs": 0, **word2vec_kwargs}
        return cls(Word2Vec(list(docs), **params))

    def score(self, features, candidates):
        raise NotApplicableError(
            "id-token Word2Vec cannot place images it did not see in training: an image id is a free "
            "vector, not a function of the image's features. Use score_keys() on training images.")

    def score_keys(self, keys: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """Score training images by their token's vector against the words' output vectors."""
        wv = self.w2v.wv
        missing = [k for k in keys if k not in wv.key_to_index]
        if missing:
            raise ValueError(f"id-token Word2Vec: {len(missing)} image(s) not in its vocabulary, e.g. {missing[:3]}.")
        H = wv.vectors[[wv.key_to_index[k] for k in keys]]
        cols = np.array([j for j, c in enumerate(candidates) if c in wv.key_to_index], dtype=np.int64)
        idx = [wv.key_to_index[candidates[j]] for j in cols]
        return _fill(len(H), candidates, cols, H @ self.w2v.syn1neg[idx].T)


# ============================================================================ image tagging
def _unique(seq: Sequence[str], name: str) -> list[str]:
    seen, out = set(), []
    for c in seq:
        if not isinstance(c, str):
            raise TypeError(f"{name}: expected str tags, got {type(c).__name__} {c!r}.")
        if c not in seen:
            seen.add(c)
            out.append(c)
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
    """The metrics of :func:`evaluate_image_tagging` for a score matrix already computed.

    Parameters
    ----------
    scores : array_like (n_images, len(candidates))
    true_tags, candidates, zero_shot, ks
        As :func:`evaluate_image_tagging` (`candidates` already includes the zero-shot tags).
    """
    s = np.asarray(scores, dtype=np.float64)
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


def evaluate_image_tagging(scorer: Scorer, test_features, true_tags: Sequence[Iterable[str]],
                           candidates: Sequence[str], zero_shot: Iterable[str] | None = None,
                           ks: Sequence[int] = (1, 5, 10)) -> dict:
    """Image → tag and tag → image metrics of one scorer on held-out images.

    Parameters
    ----------
    scorer : callable ``(features, candidates) -> ndarray (n_images, n_candidates)``
        E.g. an :class:`Im2VecScorer` or a baseline; ``-inf`` for candidates it cannot rank.
    test_features : array_like (n_images, n_features)
        Raw features of the held-out images.
    true_tags : sequence of list of str
        Each image's own tags; tags outside the candidates are ignored.
    candidates : sequence of str
        The tag vocabulary every image's ranking runs over. Zero-shot tags missing from it are
        appended.
    zero_shot : iterable of str, optional
        Tags never seen with a training image. If given, the result also has ``"seen"`` (the
        candidates without them) and ``"zero_shot"`` (the same scores restricted to them).
    ks : sequence of int
        Cut-offs for P@k and R@k.

    Returns
    -------
    dict
        ``{"all": m, "seen": m, "zero_shot": m}`` (the last two only with `zero_shot`), each ``m``
        ``{"p@1", "r@1", "p@5", …, "map", "tag_map", "n_images", "n_tags", "n_candidates"}``:
        image → tag metrics averaged over images with at least one candidate tag, ``tag_map`` the
        tag → image retrieval mAP averaged over tags carried by at least one image.
    """
    candidates = _unique(candidates, "candidates")
    zs = None
    if zero_shot is not None:
        zs = _unique(list(zero_shot), "zero_shot")
        have = set(candidates)
        extra = [t for t in zs if t not in have]
        if extra:
            logger.info("adding %i zero-shot tags to the %i candidates", len(extra), len(candidates))
            candidates = candidates + extra
    X = check_features(test_features, name="test_features")
    true_tags = _clean_tags(true_tags, "true_tags")
    if len(true_tags) != len(X):
        raise ValueError(f"{len(X)} test images but {len(true_tags)} tag lists; they must match one to one.")
    scores = np.asarray(scorer(X, candidates))
    if scores.shape != (len(X), len(candidates)):
        raise ValueError(f"scorer {scorer!r} returned shape {scores.shape}; expected ({len(X)}, {len(candidates)}).")
    return evaluate_scores(scores, true_tags, candidates, zs, ks)


# ============================================================================ the space itself
def neighbour_tag_agreement(query_vectors, query_tags: Sequence[Iterable[str]], base_vectors,
                            base_tags: Sequence[Iterable[str]], k: int = 10, chunk: int = 1024) -> float:
    """How often an image's `k` nearest base images (cosine) share at least one of its tags.

    Image → image in one number: the fraction of (query, neighbour) pairs with a common tag,
    over queries with at least one tag. Compare a space with the raw CNN features.

    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0]]); b = np.array([[1.0, 0.1], [0.0, 1.0], [0.9, 0.0]])
    >>> neighbour_tag_agreement(q, [["cat"]], b, [["cat"], ["dog"], ["car"]], k=2)
    0.5
    """
    Q = l2_normalize(np.asarray(query_vectors, dtype=np.float32))
    B = l2_normalize(np.asarray(base_vectors, dtype=np.float32))
    qt = [set(t) for t in query_tags]
    bt = [set(t) for t in base_tags]
    if len(Q) != len(qt) or len(B) != len(bt):
        raise ValueError(f"neighbour_tag_agreement: {len(Q)} queries for {len(qt)} tag lists, "
                         f"{len(B)} base vectors for {len(bt)} tag lists; they must match one to one.")
    k = min(int(k), len(B))
    hits, n = 0, 0
    for lo in range(0, len(Q), chunk):
        S = Q[lo:lo + chunk] @ B.T
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        for i, row in enumerate(top):
            tags = qt[lo + i]
            if tags:
                hits += sum(1 for j in row if tags & bt[j])
                n += k
    return hits / n if n else float("nan")


def analogy_quads(titles: Mapping[str, str], words: Container[str],
                  tags: Mapping[str, Container[str]] | None = None) -> list[tuple[str, str, str, str]]:
    """Cross-modal analogy questions from image titles that differ in one word.

    Two images titled "man biking" and "woman biking" give ``(x, a, b, y)`` = (the man's image,
    "man", "woman", the woman's image) and the reverse: ``image(x) − a + b`` should land on ``y``.
    Only titles of two or more words, of equal length and differing in exactly one word, both
    words in `words`, are used; a title shared by several images is skipped (the answer would be
    ambiguous). With `tags` (``{key: the words the model saw with that image}``), a question is kept
    only when ``a`` is one of x's words and ``b`` one of y's: the swap is one the model could learn.

    >>> analogy_quads({"img:1": "man biking", "img:2": "woman biking", "img:3": "red heart"},
    ...               {"man", "woman", "red", "blue"})
    [('img:1', 'man', 'woman', 'img:2'), ('img:2', 'woman', 'man', 'img:1')]
    """
    by_title: dict[tuple, list[str]] = {}
    for key, title in titles.items():
        toks = tuple(str(title).lower().split())
        if len(toks) >= 2:  # a one-word title shares nothing with the other: no analogy
            by_title.setdefault(toks, []).append(key)
    unique = {t: keys[0] for t, keys in by_title.items() if len(keys) == 1}
    groups: dict[tuple, list[tuple]] = {}
    for toks in unique:  # titles that differ only at position i share toks with a hole at i
        for i in range(len(toks)):
            groups.setdefault(toks[:i] + (None,) + toks[i + 1:], []).append(toks)
    quads = set()
    for hole, members in groups.items():
        i = hole.index(None)
        members = sorted(m for m in members if m[i] in words)
        if len(members) < 2:
            continue
        # each title with the next one (cyclic), both ways: a group of n titles ("flag: <country>",
        # 250 of them) asks 2n questions, not n²
        if tags is not None:
            members = [t for t in members if t[i] in tags.get(unique[t], ())]
        for t1, t2 in zip(members, members[1:] + members[:1]):
            if t1 != t2:
                quads.add((unique[t1], t1[i], t2[i], unique[t2]))
                quads.add((unique[t2], t2[i], t1[i], unique[t1]))
    return sorted(quads, key=lambda q: (q[0], q[3], q[1], q[2]))


def image_analogies(model, quads: Sequence[tuple[str, str, str, str]]) -> dict:
    """Answer ``image(x) − a + b`` with gensim's own ``model.wv.most_similar`` among the images.

    Returns ``{"n", "hit@1", "nearest_image_hit@1"}``: how often the nearest image to the
    analogy (excluding x) is y, and, as the reference, how often x's own nearest image is y.
    Questions whose keys are not in the model are skipped.
    """
    wv = model.wv
    is_image = image_mask(model)

    def nearest_image(positive, negative, exclude):
        sims = np.array(wv.most_similar(positive=positive, negative=negative, topn=None), dtype=np.float64)
        sims[~is_image] = -np.inf
        sims[wv.key_to_index[exclude]] = -np.inf
        return wv.index_to_key[int(np.argmax(sims))]

    asked = [q for q in quads if all(k in wv.key_to_index for k in q)]
    hits = sum(nearest_image([x, b], [a], x) == y for x, a, b, y in asked)
    near = sum(nearest_image([x], [], x) == y for x, _, _, y in asked)
    n = len(asked)
    return {"n": n, "hit@1": hits / n if n else float("nan"), "nearest_image_hit@1": near / n if n else float("nan")}


def one_space_check(model, keys: Sequence[str], tags: Sequence[Iterable[str]], n_random: int = 20,
                    seed: int = 0) -> dict:
    """Is it one space or two clouds? For images of the model (keys), the mean cosine to their
    nearest other image and to their nearest word, and to their own tags against random words.

    Returns ``{"nearest_image", "nearest_word", "own_tags", "random_words", "n"}`` (mean cosines).
    """
    wv = model.wv
    k2i = wv.key_to_index
    is_word = ~image_mask(model)
    words = np.flatnonzero(is_word)
    rng = np.random.default_rng(seed)
    wv.fill_norms()  # cosines from cached norms: never a normalised copy of wv (100M image rows at scale)
    inv = 1.0 / np.maximum(wv.norms, 1e-12)
    out = {"nearest_image": [], "nearest_word": [], "own_tags": [], "random_words": []}
    for key, t in zip(keys, tags):
        i = k2i.get(key)
        own = [k2i[w] for w in t if w in k2i and is_word[k2i[w]]]
        if i is None or not own:
            continue
        sims = (wv.vectors @ wv.vectors[i]) * (inv * inv[i])
        sims[i] = -np.inf
        out["nearest_image"].append(float(sims[~is_word].max()))
        out["nearest_word"].append(float(sims[is_word].max()))
        out["own_tags"].append(float(sims[own].mean()))
        out["random_words"].append(float(sims[words[rng.integers(0, len(words), n_random)]].mean()))
    n = len(out["own_tags"])
    res = {k: float(np.mean(v)) if v else float("nan") for k, v in out.items()}
    res["n"] = n
    return res


# ============================================================================ word similarity
def words_only(model_or_kv, word_space: bool = False) -> KeyedVectors:
    """The word vectors of a model or KeyedVectors, without Im2Vec's image tokens (vocab order kept).

    With ``word_space=True``, an Im2Vec model gives only the words with a trained input vector
    (:attr:`~gensim_im2vec.model.Im2Vec.word_space_keys`: in two-stage training, the words the
    image documents added to the frozen text vocabulary keep random vectors and are left out).
    """
    kv = model_or_kv.wv if hasattr(model_or_kv, "wv") else model_or_kv
    if not isinstance(kv, KeyedVectors):
        raise TypeError(f"expected a gensim model or KeyedVectors, got {type(model_or_kv).__name__}.")
    is_image = getattr(model_or_kv, "is_image", None)
    if is_image is None:
        return kv
    keys = list(model_or_kv.word_space_keys if word_space else model_or_kv.word_keys)
    out = KeyedVectors(kv.vector_size, count=0)
    if keys:
        idx = [kv.key_to_index[k] for k in keys]
        out.add_vectors(keys, np.asarray(kv.vectors)[idx])
    return out


def word_similarity(model_or_kv, *, restrict_vocab: int = 300_000, analogy_vocab: int = 30_000,
                    analogies: bool = True) -> dict:
    """WordSim353 and SimLex-999 Spearman ρ and Google analogy accuracy (gensim's bundled files).

    Parameters
    ----------
    model_or_kv : Word2Vec, Im2Vec or KeyedVectors
        Image tokens are left out (:func:`words_only`).
    restrict_vocab : int
        Only the most frequent words count for the similarity pairs.
    analogy_vocab : int
        Analogy questions and answers are restricted to this many most frequent words (30k as
        in DESIGN §9); questions with a word outside are skipped.
    analogies : bool
        Whether to run the analogy test (tens of seconds on a large vocabulary).

    Returns
    -------
    dict
        ``wordsim353`` / ``simlex999`` (Spearman ρ; NaN when every pair is out of vocabulary),
        their ``*_pearson`` and ``*_oov`` (percent of pairs skipped), ``analogies`` (accuracy in
        [0, 1]) and ``analogy_questions`` (answered questions).
    """
    from gensim.test.utils import datapath

    kv = words_only(model_or_kv)
    out: dict = {"vocab": len(kv)}
    for name, fname in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):
        try:
            pearson, spearman, oov = kv.evaluate_word_pairs(datapath(fname), restrict_vocab=restrict_vocab,
                                                            case_insensitive=True)
            out[name], out[f"{name}_pearson"], out[f"{name}_oov"] = (
                float(spearman[0]), float(pearson[0]), float(oov))
        except (ValueError, ZeroDivisionError):  # every pair out of vocabulary
            out[name] = out[f"{name}_pearson"] = float("nan")
            out[f"{name}_oov"] = 100.0
    if analogies:
        score, sections = kv.evaluate_word_analogies(datapath("questions-words.txt"),
                                                     restrict_vocab=analogy_vocab, case_insensitive=True)
        total = sections[-1]
        n = len(total["correct"]) + len(total["incorrect"])
        out["analogies"] = float(score) if n else float("nan")
        out["analogy_questions"] = n
    return out


_word_similarity = word_similarity  # run_evaluation's flag of the same name shadows it


def compare_word_similarity(model, text_model, **kwargs) -> list[dict]:
    """Word similarity of Im2Vec's words next to the text-only model they came from.

    Returns
    -------
    list of dict
        Rows ``{"model": "text-only", …}``, ``{"model": "Im2Vec words", …}`` and ``{"model": "Δ"}``
        with the differences (Im2Vec − text); keys as :func:`word_similarity`.
    """
    a = {"model": "text-only Word2Vec", **word_similarity(text_model, **kwargs)}
    b = {"model": "Im2Vec words", **word_similarity(model, **kwargs)}
    delta = {"model": "Δ (Im2Vec − text)"}
    for k in ("wordsim353", "simlex999", "analogies"):
        if k in a and k in b:
            delta[k] = b[k] - a[k]
    return [a, b, delta]


# ============================================================================ one run, one table
@dataclass
class TaggingResult:
    """One row of the evaluation table.

    Attributes
    ----------
    method : str
    note : str
    applicable : bool
        False when the method cannot score held-out images (then `metrics` is empty).
    metrics : dict
        :func:`evaluate_image_tagging`'s result (``"all"``, ``"seen"``, ``"zero_shot"``), plus
        ``"in_sample"`` where computed on training images.
    seconds : float
        Fit and score time.
    """

    method: str
    note: str = ""
    applicable: bool = True
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0

    def get(self, scope: str, metric: str) -> float | None:
        """A number, or None when not computed."""
        v = self.metrics.get(scope, {}).get(metric)
        return None if v is None else float(v)


_COLUMNS = [("all", "p@1", "P@1"), ("all", "p@5", "P@5"), ("all", "r@10", "R@10"), ("all", "map", "mAP"),
            ("all", "tag_map", "tag→img"), ("seen", "map", "seen mAP"), ("zero_shot", "p@5", "ZS P@5"),
            ("zero_shot", "map", "ZS mAP"), ("zero_shot", "tag_map", "ZS tag→img")]


def _fmt(v, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [c.ljust(w) if i < left or i == len(header) - 1 and header[-1] == "note" else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@dataclass
class EvaluationReport:
    """Everything :func:`run_evaluation` measured.

    Attributes
    ----------
    rows : list of TaggingResult
        The model (both scorings) and each baseline, in table order.
    word_similarity : list of dict
        :func:`compare_word_similarity`'s rows (or one row for the model alone).
    info : dict
        Counts and settings: test images, candidates, zero-shot tags, baselines, seconds.
    space : dict
        The space's own checks: ``one_space`` (:func:`one_space_check`), ``image_to_image``
        (:func:`neighbour_tag_agreement` in the space and on raw features), ``analogies``
        (:func:`image_analogies`).
    """

    rows: list[TaggingResult] = field(default_factory=list)
    word_similarity: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    space: dict = field(default_factory=dict)

    def row(self, method: str) -> TaggingResult:
        """The row of `method` (exact name)."""
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(f"no row {method!r}; rows are {[r.method for r in self.rows]}.")

    def to_dict(self) -> dict:
        """Plain JSON-ready data (NaN becomes None)."""
        def clean(o):
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [clean(v) for v in o]
            if isinstance(o, (float, np.floating)):
                return None if math.isnan(o) else float(o)
            if isinstance(o, np.integer):
                return int(o)
            return o

        return clean({"info": self.info, "image_tagging": [r.__dict__ for r in self.rows],
                      "word_similarity": self.word_similarity, "space": self.space,
                      "targets": self.targets()})

    def _find(self, prefix: str) -> TaggingResult | None:
        return next((r for r in self.rows if r.method.startswith(prefix) and r.applicable), None)

    def targets(self) -> list[dict]:
        """The joint-space targets (issue 11), each ``{"target", "value", "reference", "ok"}``;
        a target whose inputs were not measured is left out."""
        out = []

        def add(target, value, reference, met):
            """Record a target when both figures were measured; `met(value, reference)` decides it."""
            if value is not None and reference is not None and not (math.isnan(value) or math.isnan(reference)):
                out.append({"target": target, "value": float(value), "reference": float(reference),
                            "ok": bool(met(value, reference))})

        im, knn, ridge = self._find("Im2Vec"), self._find("kNN"), self._find("ridge")
        if im and knn:
            add("1. held-out image→word mAP ≥ 0.9 × kNN", im.get("all", "map"), knn.get("all", "map"),
                lambda v, r: v >= 0.9 * r)
            add("4. seen tag→held-out images mAP ≥ kNN", im.get("seen", "tag_map"), knn.get("seen", "tag_map"),
                lambda v, r: v >= r)
        if im:
            add("2. training image's own tags by wv.most_similar, mAP ≥ 0.5", im.get("in_sample", "map"), 0.5,
                lambda v, r: v >= r)
        if im and ridge:
            add("3. zero-shot tags mAP ≥ ridge", im.get("zero_shot", "map"), ridge.get("zero_shot", "map"),
                lambda v, r: v >= r)
        i2i = self.space.get("image_to_image")
        if i2i:
            add("5. held-out image's 10 nearest training images share a tag ≥ raw CNN cosine",
                i2i["model"], i2i["raw_features"], lambda v, r: v >= r)
        an = self.space.get("analogies")
        if an and an.get("n"):
            add(f"6. image(x) − a + b finds y, hit@1 ≥ 0.8 and > x's own nearest ({an['n']} questions)",
                an["hit@1"], an["nearest_image_hit@1"], lambda v, r: v >= 0.8 and v > r)
        delta = next((w for w in self.word_similarity if w["model"].startswith("Δ")), None)
        if delta:
            def finite(key):
                v = delta.get(key)
                return None if v is None or math.isnan(v) else float(v)

            rho = [v for v in (finite("wordsim353"), finite("simlex999")) if v is not None]
            analog = finite("analogies")
            if rho:
                add("7. word similarity: ΔWordSim, ΔSimLex ≥ −0.01 (worst shown), Δanalogies ≥ −2 points",
                    min(rho), -0.01, lambda v, r: v >= r and (analog is None or analog >= -0.02))
        return out

    def save_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON (atomically)."""
        atomic_write_json(path, self.to_dict())

    def format_table(self) -> str:
        """Aligned plain-text tables (image tagging, then word similarity), as in the slides."""
        info = self.info
        parts = []
        zs = info.get("n_zero_shot_tags")
        head = (f"Image → tag on {info.get('n_test_images', '?')} held-out images, "
                f"{info.get('n_candidates', '?')} candidate tags")
        if zs is not None:
            head += f" ({zs} zero-shot: never seen with a training image)"
        parts.append(head)
        cols = [c for c in _COLUMNS if any(r.get(c[0], c[1]) is not None for r in self.rows)]
        header = ["method", *[c[2] for c in cols], "note"]
        body = []
        for r in self.rows:
            note = r.note
            if not r.applicable:
                ins = r.get("in_sample", "map")
                if ins is not None:
                    note += f"; in-sample mAP {ins:.3f} on {r.metrics['in_sample']['n_images']} training images"
            body.append([r.method, *[_fmt(r.get(s, m)) for s, m, _ in cols], note])
        parts.append(_table(header, body))
        ins_rows = [r for r in self.rows if r.applicable and r.get("in_sample", "map") is not None]
        if ins_rows:
            parts.append("in-sample (training images' own tags, by their rows of model.wv): "
                         + ", ".join(f"{r.method} mAP {r.get('in_sample', 'map'):.3f}" for r in ins_rows))
        sp = self.space
        if sp:
            parts.append("")
            parts.append("The space itself (plain cosine in model.wv)")
            one = sp.get("one_space")
            if one:
                parts.append(f"  one space, not two clouds ({one['n']} training images): mean cosine to the nearest "
                             f"image {one['nearest_image']:.3f}, nearest word {one['nearest_word']:.3f}; "
                             f"to its own tags {one['own_tags']:.3f} vs random words {one['random_words']:.3f}")
            i2i = sp.get("image_to_image")
            if i2i:
                parts.append(f"  image → image: a held-out image's {i2i['k']} nearest training images share a tag "
                             f"{100 * i2i['model']:.1f}% (raw CNN cosine: {100 * i2i['raw_features']:.1f}%)")
            an = sp.get("analogies")
            if an and an.get("n"):
                parts.append(f"  analogies image(x) − a + b → y on {an['n']} questions: hit@1 {100 * an['hit@1']:.1f}% "
                             f"(x's own nearest image is y: {100 * an['nearest_image_hit@1']:.1f}%)")
        if self.word_similarity:
            parts.append("")
            parts.append("Word similarity (Spearman ρ) and analogies "
                         f"(top {info.get('analogy_vocab', 30000)} words)")
            header = ["model", "WordSim353", "SimLex-999", "analogies", "vocab"]
            body = []
            for w in self.word_similarity:
                delta = w["model"].startswith("Δ")
                f = (lambda v: "—" if v is None or math.isnan(v) else f"{v:+.3f}") if delta else _fmt
                body.append([w["model"], f(w.get("wordsim353")), f(w.get("simlex999")),
                             (f"{100 * w['analogies']:+.1f}%" if delta and w.get("analogies") is not None
                              and not math.isnan(w["analogies"]) else _fmt(w.get("analogies"), pct=not delta)),
                             str(w.get("vocab", ""))])
            parts.append(_table(header, body))
        targets = self.targets()
        if targets:
            parts.append("")
            parts.append("Targets")
            parts.append(_table(["target", "value", "reference", "met"],
                                [[t["target"], f"{t['value']:.3f}", f"{t['reference']:.3f}", "yes" if t["ok"] else "NO"]
                                 for t in targets]))
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.format_table()


def _space_checks(report, model, im2vec_row, X_test, test_tags, cands, X_train, train_tags, train_keys,
                  n_in_sample: int, analogies) -> None:
    """The space's own checks (:attr:`EvaluationReport.space`): training images' own tags by their
    rows of ``model.wv``, one space or two clouds, image → image, cross-modal analogies."""
    if X_train is not None and train_keys is not None:
        keys = list(train_keys)
        inside = [i for i, k in enumerate(keys) if model.is_image(k) and k in model.wv.key_to_index]
        if inside and n_in_sample > 0:
            pick = inside[:: max(1, len(inside) // n_in_sample)][:n_in_sample]
            k_pick, t_pick = [keys[i] for i in pick], [train_tags[i] for i in pick]
            vecs = model.wv.vectors[[model.wv.key_to_index[k] for k in k_pick]]
            im2vec_row.metrics["in_sample"] = evaluate_scores(
                Im2VecScorer(model).score_vectors(vecs, cands), t_pick, cands)["all"]
            report.space["one_space"] = one_space_check(model, k_pick, t_pick)
        if inside:
            base = model.wv.vectors[[model.wv.key_to_index[keys[i]] for i in inside]]
            tags = [train_tags[i] for i in inside]
            report.space["image_to_image"] = {
                "k": 10, "model": neighbour_tag_agreement(model.project(X_test), test_tags, base, tags),
                "raw_features": neighbour_tag_agreement(X_test, test_tags, X_train[inside], tags)}
    if analogies:
        report.space["analogies"] = image_analogies(model, analogies)


def run_evaluation(model, test_features, test_tags: Sequence[Iterable[str]], candidates: Sequence[str], *,
                   zero_shot: Iterable[str] | None = None, train_features=None,
                   train_tags: Sequence[Iterable[str]] | None = None, train_keys: Sequence[str] | None = None,
                   train_docs: Iterable[Sequence[str]] | None = None, text_model=None,
                   baselines: Sequence[str] = DEFAULT_BASELINES, scorers: Mapping[str, Scorer] | None = None,
                   word_similarity: bool = True,
                   analogy_vocab: int = 30_000, knn_k: int = 20, ridge_alpha: float = 1.0,
                   logistic_C: float = 1.0, n_in_sample: int = 500, seed: int = 0,
                   analogies: Sequence[tuple[str, str, str, str]] | None = None) -> EvaluationReport:
    """Evaluate an Im2Vec model and the baselines on the same held-out images, plus word similarity.

    Parameters
    ----------
    model : Im2Vec
        The trained model; rows "Im2Vec h·v_o + log Pn", "Im2Vec h·v_o", "Im2Vec cosine" (the
        ways of DESIGN §3) and "Im2Vec zero-shot" (words that never met an image, through the word space).
    test_features : array_like (n_test, n_features)
        Raw features of held-out images (never in training).
    test_tags : sequence of list of str
        Their true tags.
    candidates : sequence of str
        The tag vocabulary ranked for every image (zero-shot tags are appended if missing).
    zero_shot : iterable of str, optional
        Tags never shown with a training image; adds "seen" and "zero_shot" scopes. They are
        also removed from `train_tags` before any baseline is fitted.
    train_features, train_tags : optional
        The training split (features aligned with tag lists), needed by the ridge, prior, kNN and
        logistic baselines; baselines that lack them are skipped with a warning.
    train_keys : sequence of str, optional
        Image tokens of the training rows; with `train_docs`, the id-token Word2Vec and Im2Vec
        are also scored in-sample on up to `n_in_sample` of them.
    train_docs : iterable of list of str, optional
        The training documents (image tokens + tags); the id-token Word2Vec is trained on them
        with the model's hyperparameters. Without them its row just says it is not applicable.
    text_model : Word2Vec or KeyedVectors, optional
        The text-only word space the model started from; adds the word similarity comparison.
    baselines : sequence of str
        Any of ``"random", "ridge", "id-token", "prior", "knn", "logistic"``.
    scorers : mapping of str to scorer, optional
        Extra rows (e.g. another Im2Vec mode), evaluated like the rest.
    word_similarity : bool
        Run WordSim353 / SimLex-999 / analogies on the model's words (and the text model's).
    analogy_vocab : int
        Analogies restricted to this many most frequent words.
    knn_k, ridge_alpha, logistic_C : baseline settings.
    n_in_sample : int
        Training images scored in-sample (0: none): their own tags ranked by their rows of
        ``model.wv`` (what ``model.wv.most_similar(key)`` answers), and the one-space check.
    analogies : sequence of (x, a, b, y), optional
        Cross-modal analogy questions (:func:`analogy_quads`), answered by :func:`image_analogies`.
    seed : int
        Seed of the random projection and of the id-token Word2Vec.

    Returns
    -------
    EvaluationReport
    """
    unknown = set(baselines) - set(DEFAULT_BASELINES)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; choose from {list(DEFAULT_BASELINES)}.")
    t_start = default_timer()
    cands = _unique(candidates, "candidates")
    zs = _unique(list(zero_shot), "zero_shot") if zero_shot is not None else None
    if zs is not None:
        cands = cands + [t for t in zs if t not in set(cands)]
    X_test = check_features(test_features, name="test_features")
    test_tags = _clean_tags(test_tags, "test_tags")
    if len(test_tags) != len(X_test):
        raise ValueError(f"{len(X_test)} test images but {len(test_tags)} tag lists; they must match one to one.")

    have_train = train_features is not None and train_tags is not None
    if have_train:
        X_train, train_tags = _check_pairs(train_features, train_tags, "train")
        if zs:
            drop = set(zs)
            n_before = sum(len(t) for t in train_tags)
            train_tags = _clean_tags(train_tags, "train_tags", drop)
            removed = n_before - sum(len(t) for t in train_tags)
            if removed:
                logger.warning("removed %i zero-shot tag occurrences from train_tags before fitting the "
                               "baselines; hold them out of the training documents as well", removed)
    report = EvaluationReport()
    report.info = {"n_test_images": len(X_test), "n_candidates": len(cands),
                   "n_zero_shot_tags": len(zs) if zs is not None else None,
                   "n_train_images": len(X_train) if have_train else None,
                   "baselines": list(baselines), "analogy_vocab": analogy_vocab, "model": str(model)}

    def add(name: str, make: Callable[[], Scorer], note: str | None = None) -> TaggingResult:
        t0 = default_timer()
        scorer = make()
        res = evaluate_scores(np.asarray(scorer(X_test, cands)), test_tags, cands, zs)
        row = TaggingResult(name, note if note is not None else getattr(scorer, "note", ""), True, res,
                            default_timer() - t0)
        report.rows.append(row)
        logger.info("%s: mAP %.3f, P@5 %.3f on %i images (%.1fs)", name, res["all"]["map"],
                    res["all"]["p@5"], res["all"]["n_images"], row.seconds)
        return row

    im2vec_row = add("Im2Vec (cosine in model.wv)", lambda: Im2VecScorer(model))
    for name, sc in (scorers or {}).items():
        add(name, lambda sc=sc: sc)

    def skip(name: str, why: str) -> None:
        logger.warning("baseline %s skipped: %s", name, why)
        report.rows.append(TaggingResult(name, f"skipped: {why}", False))

    # the word space the linear baselines map into: built once for both
    space = words_only(model, word_space=True) if {"random", "ridge"} & set(baselines) else None
    for b in baselines:
        if b == "random":
            add("random W", lambda: RandomProjectionScorer(space, X_test.shape[1], seed=seed))
        elif b == "id-token":
            row = TaggingResult(IdTokenWord2VecScorer.name, IdTokenWord2VecScorer.note, False)
            report.rows.append(row)
            if train_docs is not None and train_keys is not None and have_train and n_in_sample > 0:
                t0 = default_timer()
                idt = IdTokenWord2VecScorer.fit(
                    train_docs, vector_size=model.vector_size, sg=model.sg, window=model.window,
                    negative=model.negative, epochs=model.epochs, sample=model.sample, seed=seed,
                    workers=1)  # one worker: the same table from the same model, every run
                pick = [i for i, k in enumerate(train_keys) if k in idt.w2v.wv.key_to_index][:n_in_sample]
                keys = [train_keys[i] for i in pick]
                tags = [train_tags[i] for i in pick]
                row.metrics["in_sample"] = evaluate_scores(idt.score_keys(keys, cands), tags, cands)["all"]
                row.seconds = default_timer() - t0
        elif not have_train:
            skip({"ridge": "ridge → tag vectors", "prior": "tag prior", "knn": f"kNN (k={knn_k})",
                  "logistic": "logistic (one-vs-rest)"}[b], "needs train_features and train_tags")
        elif b == "ridge":
            add(RidgeScorer.name, lambda: RidgeScorer.fit(X_train, train_tags, space, alpha=ridge_alpha))
        elif b == "prior":
            add(TagPriorScorer.name, lambda: TagPriorScorer.fit(train_tags))
        elif b == "knn":
            add(f"kNN (k={knn_k})", lambda: KNNTagScorer.fit(X_train, train_tags, k=knn_k))
        elif b == "logistic":
            add(LogisticScorer.name, lambda: LogisticScorer.fit(X_train, train_tags, C=logistic_C))

    _space_checks(report, model, im2vec_row, X_test, test_tags, cands, X_train if have_train else None,
                  train_tags if have_train else None, train_keys, n_in_sample, analogies)
    if word_similarity:
        if text_model is not None:
            report.word_similarity = compare_word_similarity(model, text_model, analogy_vocab=analogy_vocab)
        else:
            report.word_similarity = [{"model": "Im2Vec words",
                                       **_word_similarity(model, analogy_vocab=analogy_vocab)}]
    report.info["seconds"] = default_timer() - t_start
    logger.info("evaluation of %i methods on %i images took %.1fs", len(report.rows), len(X_test),
                report.info["seconds"])
    return report


# ============================================================================ file inputs (CLI)
def load_tagged_jsonl(path: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """Read a test (or training) set: one JSON object per line, ``{"key": "img:…", "tags": [...]}``.

    Keys are image tokens as in the feature store and the training documents; tags must be
    normalised as the training documents were. Blank lines are skipped.

    Returns
    -------
    keys : list of str
    tags : list of list of str
    """
    keys, tags = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                key, t = obj["key"], obj["tags"]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: expected a JSON object with 'key' and 'tags', got "
                                 f"{line.strip()[:80]!r} ({e}).") from None
            if not isinstance(key, str) or not isinstance(t, list) or not all(isinstance(x, str) for x in t):
                raise ValueError(f"{path}:{n}: 'key' must be a str and 'tags' a list of str.")
            keys.append(key)
            tags.append(t)
    if not keys:
        raise ValueError(f"{path}: no images (expected JSON lines like {{\"key\": \"img:1\", \"tags\": [\"dog\"]}}).")
    return keys, tags


def features_for_keys(source, keys: Sequence[str]) -> np.ndarray:
    """Feature rows for `keys` from a FeatureStore directory, a ``.npy`` file, or an object with
    ``key_to_index`` and ``vectors`` (a FeatureStore, ``model.features``).

    A ``.npy`` file must hold one row per key, in the order of `keys`. Returns float32 (n, F).
    """
    if isinstance(source, (str, os.PathLike)):
        p = os.fspath(source)
        if p.endswith(".npy"):
            arr = np.load(p, mmap_mode="r")
            if arr.ndim != 2 or len(arr) != len(keys):
                raise ValueError(f"{p}: expected one feature row per key ({len(keys)}), got shape {arr.shape}.")
            return check_features(arr, name=p)
        from gensim_im2vec.store import FeatureStore

        source = FeatureStore.open(p)
    k2i = source.key_to_index
    missing = [k for k in keys if k not in k2i]
    if missing:
        raise ValueError(f"{len(missing)} key(s) have no features, e.g. {missing[:3]}; extract them into the store "
                       f"(keys must match exactly, prefix included).")
    rows = np.array([k2i[k] for k in keys], dtype=np.int64)
    return check_features(np.asarray(source.vectors)[rows], name="features", keys=list(keys))


def read_tag_file(path: str | os.PathLike) -> list[str]:
    """Tags from a file: one per line (blank lines and ``#`` comments skipped), or a JSON list, or a
    JSON object with ``"zero_shot_tags"`` (a data set's ``split.json``)."""
    p = os.fspath(path)
    with open(p, encoding="utf-8") as f:
        text = f.read()
    if p.endswith(".json"):
        obj = json.loads(text)
        if isinstance(obj, dict):
            if "zero_shot_tags" not in obj:
                raise ValueError(f"{p}: a JSON object here needs a 'zero_shot_tags' list (as split.json has).")
            obj = obj["zero_shot_tags"]
        if not isinstance(obj, list) or not all(isinstance(t, str) for t in obj):
            raise ValueError(f"{p}: expected a JSON list of tags.")
        return obj
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
