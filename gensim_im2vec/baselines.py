"""Baseline scorers the evaluation compares Im2Vec with, each fitted on the training split.

A *scorer* is any callable ``scorer(features, candidates) -> scores`` returning an array of shape
``(n_images, len(candidates))``; a candidate it cannot score gets ``-inf`` (ranked last, tied).
:class:`TagScorer` is their base; :class:`gensim_im2vec.evaluate.Im2VecScorer` is the model's own.

=============================  ====================================================================
:class:`RandomProjectionScorer`  an Im2Vec-like map with a random W, cosine to the word vectors
:class:`RidgeScorer`             ridge regression (scikit-learn) from features to the mean of the
                                 image's tag vectors (DeViSE-style, linear); ranks unseen tags too
:class:`IdTokenWord2VecScorer`   plain Word2Vec with image ids as ordinary tokens: cannot place an
                                 unseen image (reported as not applicable; in-sample only)
:class:`TagPriorScorer`          tag frequency among training images
:class:`KNNTagScorer`            kNN tag transfer on L2-normalised features (k=20, or
                                 every training image when fewer; the name says which)
:class:`LogisticScorer`          one-vs-rest logistic regression (scikit-learn's objective);
                                 supervised, blind to unseen tags (they tie at the bottom)
=============================  ====================================================================

>>> import numpy as np
>>> from gensim_im2vec.baselines import KNNTagScorer, TagPriorScorer
>>> feats = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
>>> tags = [["dog"], ["dog", "pet"], ["car"]]
>>> TagPriorScorer.fit(tags)(feats[:1], ["car", "dog", "pet"]).tolist()
[[1.0, 2.0, 1.0]]
>>> knn = KNNTagScorer.fit(feats, tags, k=2)
>>> [c for _, c in sorted(zip(-knn(np.array([[1.0, 0.05]]), ["car", "dog", "pet"])[0], ["car", "dog", "pet"]))]
['dog', 'pet', 'car']
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from timeit import default_timer

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from gensim_im2vec.index import cosine_neighbours
from gensim_im2vec.validation import (
    check_features,
    check_tag_lists,
    check_tagged_features,
    l2_normalize,
)

logger = logging.getLogger(__name__)

__all__ = [
    "IdTokenWord2VecScorer",
    "KNNTagScorer",
    "LogisticScorer",
    "NotApplicableError",
    "RandomProjectionScorer",
    "RidgeScorer",
    "Scorer",
    "TagPriorScorer",
    "TagScorer",
    "candidate_vectors",
    "fill_scores",
]

Scorer = Callable[[np.ndarray, Sequence[str]], np.ndarray]

#: Query × training-image similarities the kNN scorer holds at once (bounds its memory).
_CHUNK_CELLS = 2_000_000


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


def candidate_vectors(word_vectors, candidates: Sequence[str], *, unit: bool = True,
                 exclude: Callable[[str], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `word_vectors` (KeyedVectors) for the candidates it knows (unit length with `unit`,
    without those `exclude` rejects), and their column positions among the candidates."""
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


def fill_scores(n: int, candidates: Sequence[str], cols: np.ndarray, values: np.ndarray, fill=-np.inf) -> np.ndarray:
    """A float32 ``(n, len(candidates))`` score matrix: `values` in the columns `cols`, `fill` elsewhere.

    The linear scorers compute `values` in float64 and round them here once: the same float32
    scores on every BLAS kernel (a float32 product's rounding depends on the kernel)."""
    out = np.full((n, len(candidates)), fill, dtype=np.float32)
    if len(cols):
        out[:, cols] = values
    return out


class RandomProjectionScorer(TagScorer):
    """Baseline (a): ``h = R · v̂`` with a random Gaussian R, ranked by cosine to the word vectors.

    The chance level of the joint space: same word space, same kind of linear map, nothing learned.
    Products in float64 (scores rounded to float32 at the end), as :class:`RidgeScorer`'s.

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
        X = l2_normalize(check_features(features, dim=self.R.shape[1], name="features"), out_dtype=np.float64)
        mat, cols = candidate_vectors(self.word_vectors, candidates, unit=False)
        mat = l2_normalize(mat.astype(np.float64), out_dtype=np.float64)
        H = l2_normalize(X @ self.R.astype(np.float64).T, out_dtype=np.float64)
        return fill_scores(len(X), candidates, cols, H @ mat.T)


class RidgeScorer(TagScorer):
    """Baseline (b): ridge regression from features to the mean of the image's tag vectors.

    A DeViSE-style linear map into the same word space, fitted in one solve (scikit-learn's
    :class:`~sklearn.linear_model.Ridge`, Cholesky, with intercept):
    ``W = argmin ‖X̂W − Y‖² + α‖W‖²`` on centred L2-normalised features ``X̂`` and targets ``Y`` =
    mean of the unit vectors of each training image's tags (each once; tags without a vector are skipped).
    Candidates are ranked by cosine to their word vectors, so it ranks unseen tags too. With
    ``center=True`` (default) the cosine is taken in the word space centred on its mean unit word
    vector: skip-gram vectors share a common direction, and uncentred, the tags that are on
    every image (the noise of user tags) sit closest to every mean-tag prediction and win every
    ranking (on the synthetic corpus: mAP 0.02 uncentred, 1.0 centred).

    The map and the cosine are computed in float64 (scores rounded to float32 once, at the end):
    float32 products round differently on different BLAS kernels (OpenBLAS picks one per CPU),
    enough to reorder near-tied images and move the table's third decimal between machines.

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
        from sklearn.linear_model import Ridge

        X, tags = check_tagged_features(features, tags, "RidgeScorer.fit")
        normed = word_vectors.get_normed_vectors()
        k2i = word_vectors.key_to_index
        keep, targets = [], []
        for i, t in enumerate(tags):
            idx = [k2i[w] for w in dict.fromkeys(t) if w in k2i]  # a tag listed twice counts once
            if idx:
                keep.append(i)
                targets.append(normed[idx].mean(axis=0))
        if not keep:
            raise ValueError("RidgeScorer.fit: no training image has a tag with a word vector; "
                             "is word_vectors the model's word space?")
        Xk = l2_normalize(X[keep]).astype(np.float64)
        Y = np.asarray(targets, dtype=np.float64)
        # the intercept centres X and Y on their means; Cholesky solves the f×f system, or the
        # n×n dual one when there are fewer images than features
        W = Ridge(alpha=alpha, fit_intercept=True, solver="cholesky").fit(Xk, Y).coef_.T
        xm, ym = Xk.mean(axis=0), Y.mean(axis=0)
        n, f = Xk.shape
        logger.info("ridge: fitted %i×%i map on %i images (%i without a tag vector skipped), alpha=%g",
                    f, Y.shape[1], n, len(tags) - n, alpha)
        return cls(word_vectors, W.astype(np.float32), xm.astype(np.float32), ym.astype(np.float32), center)

    def project(self, features) -> np.ndarray:
        """Map images into the word space: float64, shape (n, vector_size)."""
        X = l2_normalize(check_features(features, dim=self.W.shape[0], name="features"), out_dtype=np.float64)
        return (X - self.x_mean.astype(np.float64)) @ self.W.astype(np.float64) + self.y_mean

    def score(self, features, candidates):
        P = self.project(features) - self.word_mean.astype(np.float64)
        mat, cols = candidate_vectors(self.word_vectors, candidates)
        mat = l2_normalize(mat.astype(np.float64) - self.word_mean, out_dtype=np.float64)
        return fill_scores(len(P), candidates, cols, l2_normalize(P, out_dtype=np.float64) @ mat.T)


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
        for t in check_tag_lists(tags, "TagPriorScorer.fit tags"):
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
        for w in dict.fromkeys(t):  # first-seen order: the same columns in every run (a set's order follows the hash seed)
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    Y = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(tags), len(vocab)))
    return Y, list(vocab)


class KNNTagScorer(TagScorer):
    """Baseline (e): kNN tag transfer on raw (L2-normalised) features.

    A tag's score is the sum of the cosine similarities (clipped at 0) of the `k` nearest training
    images that carry it, plus ``1e-6 ×`` its training frequency relative to the most frequent
    tag's (so at most ``1e-6``) as a tie-breaker. Tags no training image carries score 0. `k`
    larger than the training set uses every training image, and the name says so: it gives the
    k that votes (:meth:`label`), "kNN (k=8)" with 8 training images whatever `k` was asked.
    Use :meth:`fit`.

    >>> X = np.eye(3, dtype=np.float32)
    >>> KNNTagScorer.fit(X, [["a"], ["b"], ["a"]]).name, KNNTagScorer.fit(X, [["a"], ["b"], ["a"]], k=2).name
    ('kNN (k=3)', 'kNN (k=2)')
    """

    note = "nearest training images vote (supervised)"

    def __init__(self, X: np.ndarray, Y, tags: list[str], k: int, prior: np.ndarray):
        self.X, self.Y, self.tags, self.k, self.prior = X, Y, tags, int(k), prior
        self.name = self.label(self.k, len(X))

    @staticmethod
    def label(k: int, n_train: int | None = None) -> str:
        """The row name of a kNN with `k` asked on `n_train` training images: the k that votes,
        ``min(k, n_train)`` ("kNN (k=20)", "kNN (k=8)" with 8 images); `n_train` None: `k`."""
        return f"kNN (k={int(k) if n_train is None else min(int(k), int(n_train))})"

    @classmethod
    def fit(cls, features, tags: Sequence[Iterable[str]], k: int = 20) -> KNNTagScorer:
        """Remember the training images (features L2-normalised) and their tags."""
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k!r}.")
        X, tags = check_tagged_features(features, tags, "KNNTagScorer.fit")
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
            nn, sims = cosine_neighbours(Q[lo:lo + step], self.X, k)
            w = np.clip(sims, 0, None)
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

    # one BLAS thread: small products run ~10x faster than on several threads of a busy machine
    # (and the same data gives the same fit in every run: _tag_index orders the tags by first sight)
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

    Repeatable on one CPU type only. The decision function is computed in float64, but the joint
    fit (float32 products) stops at `max_iter` before it converges on data the size of the demo's
    (300 L-BFGS iterations, ~1,200 tags × 1,280 features), so where it stops depends on the
    rounding of the BLAS kernel: the same data gives the same row on every run of one machine, but
    a machine whose OpenBLAS picks another kernel (e.g. Haswell instead of SkylakeX) moves its P@1
    by about ±0.002 (mAP by under ±0.001). The Im2Vec, random W and ridge rows do not move.
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
        X, tags = check_tagged_features(features, tags, "LogisticScorer.fit")
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
        """Log-odds of every tag with a classifier: float64, shape (n_images, len(self.tags))."""
        X = l2_normalize(check_features(features, dim=self.coef.shape[0], name="features"), out_dtype=np.float64)
        Xs = (X - self.mean.astype(np.float64)) / self.scale.astype(np.float64)
        return Xs @ self.coef.astype(np.float64) + self.intercept

    def score(self, features, candidates):
        dec = self.decision_function(features)
        index = {t: j for j, t in enumerate(self.tags)}
        cols = np.array([j for j, c in enumerate(candidates) if c in index], dtype=np.int64)
        return fill_scores(len(dec), candidates, cols, dec[:, [index[candidates[j]] for j in cols]])


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
        return fill_scores(len(H), candidates, cols, H @ self.w2v.syn1neg[idx].T)
