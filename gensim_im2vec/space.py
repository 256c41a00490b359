"""The space step: what makes images and words one space that plain cosine can query.

The slides' objective trains an image's ``h = W · v̂_f`` against the words' *output* vectors
(``syn1neg``). That ranks tags well by ``h · v_o``, but cosine between ``h`` and the words' *input*
vectors — what ``model.wv.most_similar`` computes — stays meaningless: measured on the demo, the
images formed a cloud of their own. The space step trains ``h`` against the input vectors
themselves, by cosine:

    for each image of a run, with its document's words P (positives) and the run's candidate words
    C = (all positives of the run) ∪ (negatives drawn from the tag distribution):
        s_c = cos(h, u_c) / τ − γ · log n_c                      (u_c: input vector of word c,
                                                                  n_c: its tag count, γ: space_tag_prior)
        loss = − Σ_{p ∈ P} (1/|P|) log softmax_C(s)_p             (image → words)
             + symmetric · the same per word over the run's images (word → images, in-batch)

Gradients flow into ``W`` (a rank-|run| update, two sgemms) and, when words may move, into the
candidate words' input vectors, each pulled back towards the vector it started from
(``pull``: the dial between the words' text semantics and their fit to images).

With ``decoder`` = λ > 0, ``W`` also learns to map back (a semantic autoencoder, Kodirov et al.,
CVPR 2017): ``Wᵀ`` must bring the mean ``c`` of an image's unit words to its features,

        + λ · ‖x − Wᵀ·c‖²                                        (words → features, W only)

so the map keeps what the words say about the features instead of only what tells one image's
words from the others'. Two more sgemms per run.

Everything is a handful of BLAS-3 calls per run of ``image_batch`` images. Training runs it in the
Cython kernel, without the GIL, beside the pair loop that trains the words
(:func:`im2vec_inner.plan_space_job`); this module holds its formulas, the NumPy reference the
kernel is tested against, and the per-run NumPy path (``symmetric`` > 0).

>>> import numpy as np
>>> from gensim_im2vec.space import space_step, run_pairs
>>> tokens = np.array([5, 0, 1, 6, 2], np.int32)            # two documents: [img 5, w0, w1], [img 6, w2]
>>> slots = np.array([0, -1, -1, 1, -1], np.int32)          # images 5 and 6 are the run's slots 0 and 1
>>> bounds = np.array([0, 3, 5], np.int32)
>>> run_pairs(tokens, slots, bounds, n_slots=2)
(array([0, 0, 1]), array([0, 1, 2]))
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
from scipy.linalg.blas import sgemm as _sgemm
from scipy.sparse import csr_matrix

from gensim_im2vec.validation import is_int

__all__ = ["JobPlan", "WorkerW", "add_outer", "analogy_step", "candidate_columns", "common_directions",
           "decoder_step_size", "job_candidates", "mean_unit_words", "remove_directions", "run_pairs", "space_step"]

REAL = np.float32


#: Rows of word vectors read at a time by :func:`common_directions` and :func:`principal_directions`.
DIRECTIONS_BLOCK = 65536


def common_directions(word_vectors: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """The directions every word shares: an orthonormal basis (D × (k + 1), float64) of the mean of
    the words' unit vectors and the top `k` principal directions of those unit vectors (`rows`: of
    those rows of `word_vectors` only, read a block at a time, as ``word_vectors[rows]`` without the copy).

    Skip-gram vectors share a mean direction and a few dominant ones that encode frequency more than
    meaning ("all-but-the-top", Mu & Viswanath, ICLR 2018). An image vector with a component along
    them is close to every tag-like word at once; :func:`remove_directions` takes it out.

    >>> rng = np.random.default_rng(0)
    >>> Q = common_directions(rng.normal(size=(50, 8)) + 3.0, k=2)
    >>> Q.shape, bool(np.allclose(Q.T @ Q, np.eye(3)))
    ((8, 3), True)
    """
    mean, top = _unit_mean_and_principal(word_vectors, k, "common_directions", rows)
    Q, R = np.linalg.qr(np.vstack([mean, top]).T)
    return Q[:, np.abs(np.diag(R)) > 1e-9 * max(1.0, np.abs(R).max())]


def principal_directions(word_vectors: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """The top `k` principal directions of the words' unit vectors (centred on their mean), an
    orthonormal basis (D × k, float64): the directions in which the words differ most (`rows`: of
    those rows of `word_vectors` only, as :func:`common_directions` takes them).

    The readout (``Im2Vec(space_readout=..., space_readout_directions=k)``) leaves them to ``W``,
    which ranks the tags along them, and carries the rest.

    >>> rng = np.random.default_rng(0)
    >>> P = principal_directions(rng.normal(size=(50, 8)) * [5, 1, 1, 1, 1, 1, 1, 1], k=2)
    >>> P.shape, bool(np.allclose(P.T @ P, np.eye(2))), bool(abs(P[0, 0]) > 0.9)
    ((8, 2), True, True)
    """
    return np.ascontiguousarray(_unit_mean_and_principal(word_vectors, k, "principal_directions", rows)[1].T)


def _unit_mean_and_principal(word_vectors, k: int, caller: str, rows=None) -> tuple[np.ndarray, np.ndarray]:
    """The mean of the rows of `word_vectors` made unit, and their top `k` principal directions
    (k × D), float64; `caller` names the function in an error.

    Read in blocks of :data:`DIRECTIONS_BLOCK` rows, so that millions of tags need no float64 copy
    of them all: the principal directions are the top eigenvectors of the unit rows' D × D
    covariance (at 1M rows of D = 200, k = 50: an SVD of the whole centred copy took 36 s and
    6 GB more than the rows themselves)."""
    U = word_vectors if isinstance(word_vectors, np.ndarray) else np.asarray(word_vectors, dtype=np.float64)
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if U.ndim != 2 or (len(rows) and not 0 <= rows.min() <= rows.max() < len(U)):
            raise ValueError(f"{caller}: rows must index the {len(U)} rows of the word vectors (shape {U.shape}).")
    shape = U.shape if rows is None else (len(rows), *U.shape[1:])
    if len(shape) != 2 or shape[0] < 2:
        raise ValueError(f"{caller} needs at least 2 word vectors (a 2-d array), got shape {shape}.")
    if not is_int(k) or not 0 <= k < min(shape):
        raise ValueError(f"k must be an int in [0, {min(shape) - 1}] for {shape[0]} words of dim "
                         f"{shape[1]}, got {k!r}.")
    n, dim = shape
    total, gram = np.zeros(dim), (np.zeros((dim, dim)) if k else None)
    for start in range(0, n, DIRECTIONS_BLOCK):
        part = slice(start, start + DIRECTIONS_BLOCK)
        block = np.array(U[part] if rows is None else U[rows[part]], dtype=np.float64)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        block /= np.where(norms > 0, norms, 1.0)
        total += block.sum(axis=0)
        if k:
            gram += block.T @ block
    mean = total / n
    if not k:
        return mean, np.zeros((0, dim))
    cov = gram / n - np.outer(mean, mean)
    vectors = np.linalg.eigh((cov + cov.T) / 2)[1]  # eigenvalues ascending
    return mean, np.ascontiguousarray(vectors[:, ::-1][:, :k].T)


def remove_directions(W: np.ndarray, Q: np.ndarray) -> None:
    """``W ← (I − Q·Qᵀ)·W`` in place: every ``h = W·x`` loses its component along the columns of
    the orthonormal `Q` (D × m)."""
    if len(Q.T):
        W -= (Q @ (Q.T @ W.astype(np.float64))).astype(W.dtype)


def analogy_step(W: np.ndarray, X: np.ndarray, x_row: np.ndarray, y_row: np.ndarray, shift: np.ndarray,
                 alpha: float, scale: float = 20.0) -> float:
    """One gradient step of ``W`` on cross-modal analogies ``image(x) − a + b → y``; returns the loss.

    Every image ``j`` (a row of `X`: centred, normalised features) is at ``ĥ_j = unit(W·X_j)``. The
    question ``q`` asks ``Q_q = unit(ĥ_{x_q} + shift_q)`` (``shift_q = û_b − û_a``, the words' unit
    vectors) to be nearer to ``ĥ_{y_q}`` than to any other row of `X` but ``x_q`` itself:

        loss = mean_q − log softmax_{j ≠ x_q}(scale · Q_q · ĥ_j)_{y_q}

    which is what ``model.wv.most_similar(positive=[x, b], negative=[a])`` ranks by. ``W`` (float32,
    D × F) is updated in place by ``alpha`` × the gradient; the words do not move. Two F-wide
    products (the forward map and the update), the rest is D-wide.

    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(4, 6)).astype(np.float32); X = rng.normal(size=(8, 6)).astype(np.float32)
    >>> x, y, shift = np.array([0, 1]), np.array([2, 3]), rng.normal(size=(2, 4)).astype(np.float32)
    >>> first = analogy_step(W, X, x, y, shift, alpha=0.5)
    >>> later = [analogy_step(W, X, x, y, shift, alpha=0.5) for _ in range(50)]
    >>> bool(later[-1] < first)
    True
    """
    H = X @ W.T
    H_hat, h_norm = unit(H)
    P = H_hat[x_row] + shift
    Q, p_norm = unit(P)
    S = scale * (Q @ H_hat.T)
    n_q = len(x_row)
    rows = np.arange(n_q)
    S[rows, x_row] = -np.inf
    S -= S.max(axis=1, keepdims=True)
    E = np.exp(S)
    Z = E.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(Z[:, 0]) - S[rows, y_row]))
    G = E / Z  # d loss / d logits, per question (x's own column is 0)
    G[rows, y_row] -= 1.0
    G *= scale / n_q
    dH_hat = G.T @ Q  # as candidates
    dQ = G @ H_hat
    dP = (dQ - Q * np.sum(dQ * Q, axis=1, keepdims=True)) / p_norm[:, None]
    np.add.at(dH_hat, x_row, dP)  # as the questions' x
    dH = (dH_hat - H_hat * np.sum(dH_hat * H_hat, axis=1, keepdims=True)) / h_norm[:, None]
    W -= (alpha * (dH.T @ X)).astype(W.dtype, copy=False)
    return loss


def run_pairs(tokens: np.ndarray, slots: np.ndarray, bounds: np.ndarray, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """(image slot, word index) pairs of a prepared run: every word of an image's document chunk,
    once per image. Returns two int64 arrays of equal length, sorted by slot then word."""
    empty = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(tokens) == 0 or n_slots == 0:
        return empty
    chunk = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    is_img = slots >= 0
    ic, isl = chunk[is_img], slots[is_img].astype(np.int64)
    wc, wt = chunk[~is_img], tokens[~is_img].astype(np.int64)
    # join on the chunk: chunks are contiguous and both sides are sorted by chunk
    w_lo = np.searchsorted(wc, ic, side="left")
    counts = np.searchsorted(wc, ic, side="right") - w_lo
    if not counts.sum():  # no image shares a chunk with a word
        return empty
    pair_slot = np.repeat(isl, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_word = wt[np.repeat(w_lo, counts) + offsets]
    base = int(pair_word.max()) + 1  # one key per (slot, word): duplicates (a word twice) go
    key = np.unique(pair_slot * base + pair_word)
    return key // base, key % base


def unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `x` made unit (a zero row stays zero) and their norms (at least 1e-12), in `x`'s dtype."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms = np.maximum(norms, 1e-12).astype(x.dtype, copy=False)
    return x / norms[:, None], norms


def _softmax(s: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def add_outer(W: np.ndarray, dH: np.ndarray, X: np.ndarray, alpha: float) -> None:
    """``W += alpha · dHᵀ · X`` in place: one sgemm straight into ``W`` (no D×F temporary) when
    everything is C-contiguous float32, numpy otherwise."""
    if (W.dtype == REAL and dH.dtype == REAL and X.dtype == REAL and W.flags.c_contiguous
            and X.flags.c_contiguous):
        # column-major view: Wᵀ (F × D) += alpha · Xᵀ (F × n) · dH (n × D)
        out = _sgemm(alpha, X.T, dH.T, beta=1.0, c=W.T, trans_b=True, overwrite_c=True)
        if not np.shares_memory(out, W):  # pragma: no cover - f2py copied c
            W[...] = out.T
    else:
        W += alpha * (dH.T @ X)


def decoder_step_size(alpha_w: float, decoder: float, C: np.ndarray) -> float:
    """The decoder term's step on a run, ``2 · alpha_w · λ``, capped at ``1 / tr(CᵀC)``.

    The term is a least-squares problem in ``W``; a gradient step ``s`` multiplies the residual's
    components by ``1 − s·σ`` (σ: eigenvalues of ``CᵀC``), which diverges once ``s·σ > 2``. A
    run's ``C`` rows are mean unit words (norm up to 1, an image with one word), so ``tr(CᵀC) ≥ σ``
    reaches the run's image count: on the demo (64 images a run) λ = 100 made ``W``'s norm grow
    to 4·10⁹. Capped, a large λ only weighs the term as much as a stable step can.

    >>> decoder_step_size(1e-3, 5.0, np.ones((4, 2)) / np.sqrt(2)), decoder_step_size(1e-3, 500.0, np.ones((4, 2)))
    (0.01, 0.125)
    """
    step = 2.0 * float(alpha_w) * float(decoder)
    trace = float(np.einsum("ij,ij->", C, C, dtype=np.float64))
    return step if step * trace <= 1.0 else 1.0 / trace


def mean_unit_words(syn0: np.ndarray, pair_word, pair_row, pair_w, n_rows: int, dtype=np.float32) -> np.ndarray:
    """Each image row's mean unit word, (n_rows × D): the sum over its pairs of ``pair_w`` times
    the unit vector of the pair's word in `syn0` (``pair_w`` = 1 / the row's word count). The
    decoder term's ``C`` and the readout's targets (``Im2Vec(space_readout=...)``)."""
    U, _ = unit(np.asarray(syn0[np.asarray(pair_word)], dtype=dtype))
    C = np.zeros((n_rows, syn0.shape[1]), dtype=dtype)
    np.add.at(C, np.asarray(pair_row), U * np.asarray(pair_w, dtype=dtype)[:, None])
    return C


def _decoder_residual(W, X, syn0, pair_word, pair_row, pair_w, n_rows) -> tuple[np.ndarray, np.ndarray]:
    """``(C, X − C·W)`` of the decoder term ``λ · Σ_i ‖x_i − Wᵀ·c_i‖²``, whose step on ``W`` is
    ``W += s · Cᵀ (X − C·W)`` (``s``: :func:`decoder_step_size`): ``C`` (n_rows × D) holds each row's mean unit word
    (:func:`mean_unit_words`), read before ``W`` or a word moves."""
    C = mean_unit_words(syn0, pair_word, pair_row, pair_w, n_rows, dtype=W.dtype)
    return C, np.ascontiguousarray(X - C @ W, dtype=W.dtype)


class WorkerW:
    """Each worker trains on its own copy of ``W``: a run's step reads the shared ``W`` as it is
    when the step begins (:meth:`refresh`) and adds its change to it when it ends (:meth:`fold`).

    Shared directly, every run's update (D × F) landed in ``W`` while the other workers' forward
    products read it, so their caches traded ``W`` back and forth: 2 workers trained at 1.51×
    one, 1.63× with a private ``W`` (``benchmarks/bench_image_kernel.py --sections 6``). Copied
    once per job, a job trained from a ``W`` that lacked every job in flight beside it: on a corpus
    of a few jobs an epoch, two workers summed two stale steps, and the model was worse than with
    one worker (docs/kernel.md). Copied per step, a step misses only the steps that ran beside it.

    >>> W = np.zeros((2, 3), np.float32)
    >>> shared = WorkerW(W)
    >>> mine = shared.begin(); mine += 1.0   # a step's update, on this thread's copy
    >>> float(W.sum())  # W unchanged until the fold
    0.0
    >>> shared.fold(); float(W.sum())
    6.0
    """

    def __init__(self, W: np.ndarray) -> None:
        from gensim_im2vec.im2vec_inner import FoldLock

        self.W = W
        self.lock = FoldLock()
        self._local = threading.local()

    def begin(self) -> np.ndarray:
        """This thread's copy of ``W`` as it is now, to train a job on."""
        loc = self._local
        if getattr(loc, "mine", None) is None:
            loc.mine, loc.base = np.empty_like(self.W), np.empty_like(self.W)
        self.refresh()
        return loc.mine

    def refresh(self) -> None:
        """This thread's copy becomes the shared ``W`` as it is now (before a run reads it; the
        kernel's job path does the same inside, before each run's step)."""
        loc = self._local
        with self.lock:
            np.copyto(loc.mine, self.W)
        np.copyto(loc.base, loc.mine)

    def base(self) -> np.ndarray:
        """This thread's copy of ``W`` as of its last fold (what the kernel folds against)."""
        return self._local.base

    def fold(self) -> None:
        """Add what this thread changed in its copy since the last fold to the shared ``W``, and
        bring the copy up to the shared ``W`` (:func:`im2vec_inner.fold_w`)."""
        from gensim_im2vec.im2vec_inner import fold_w

        loc = self._local
        fold_w(self.W, loc.mine, loc.base, self.lock)

    end = fold  # a job's end: its last changes


def _grad_logits_run(Z, cand_h, prow, col, w, inv_t, symmetric, compute_loss, cand_bias=None):
    """Softmax of each image over all of the run's candidates (their logits shifted by
    `cand_bias`): the logits' gradient (R × |C|) and the loss."""
    G = Z @ cand_h.T
    G *= inv_t
    if cand_bias is not None:
        G += cand_bias
    S = G.copy() if symmetric > 0 else None
    G -= G.max(axis=1, keepdims=True)
    np.exp(G, out=G)
    G /= G.sum(axis=1, keepdims=True)
    loss = -float(np.sum(w * np.log(np.maximum(G[prow, col], 1e-30)))) if compute_loss else 0.0
    G[prow, col] -= w
    if symmetric > 0 and len(Z) > 1:
        pos_cols, j = np.unique(col, return_inverse=True)
        Yc = np.zeros((len(Z), len(pos_cols)), dtype=G.dtype)
        Yc[prow, j] = 1.0
        Yc /= Yc.sum(axis=0, keepdims=True)
        Pc = _softmax(S[:, pos_cols], axis=0)
        if compute_loss:
            loss -= symmetric * float(np.sum(Yc * np.log(np.maximum(Pc, 1e-30))))
        G[:, pos_cols] += symmetric * (Pc - Yc)
    G *= inv_t
    return G, loss


def space_step(W: np.ndarray, syn0: np.ndarray, Vn: np.ndarray, pair_slot: np.ndarray, pair_word: np.ndarray,
               negatives: np.ndarray, *, alpha_w: float, alpha_u: float, temperature: float,
               symmetric: float = 0.0, word_lock: np.ndarray | None = None, anchor: np.ndarray | None = None,
               pull: float = 0.0, train_images: bool = True, candidates: str = "run",
               compute_loss: bool = True, kernel: bool = True, decoder: float = 0.0,
               bias: np.ndarray | None = None) -> float:
    """One step of the space objective on one run; updates ``W`` and ``syn0`` in place.

    Parameters
    ----------
    W : (size, F) float32
        The image map, updated by ``alpha_w`` when `train_images`.
    syn0 : (n_vocab, size) float32
        The input vectors (``model.wv.vectors``).
    Vn : (n_slots, F) float32
        The run's L2-normalised (and centred) features, row = slot.
    pair_slot, pair_word : int arrays
        (image slot, vocabulary index) of each positive pair, sorted by slot, no pair twice
        (:func:`run_pairs`).
    negatives : int array
        Vocabulary indices of sampled negative words (duplicates are dropped).
    alpha_w, alpha_u : float
        Step sizes of ``W`` and of the words' input vectors (0: the words stay put).
    temperature : float
        τ of the cosine softmax.
    symmetric : float
        Weight of the word → images term (each positive word against the run's images; only
        with ``candidates="run"``).
    word_lock : (n_vocab,) float32, optional
        Per-word factor on the word update (0 freezes a word; images must be 0).
    anchor : (n_anchor, size) float32, optional
        Starting vectors of the first ``n_anchor`` words; a moved word is pulled back to it with
        strength `pull` (words at index ≥ n_anchor move freely).
    candidates : {"run", "own"}
        "run": each image's softmax runs over all of the run's words (every image's positives
        are negatives of the others) plus the negatives; its cost grows with the run's distinct
        words. "own": over its own words plus the shared negatives (a negative that is one of
        its own words is left out), a cost per image of ``len(negatives)`` cosines.
    compute_loss : bool
        Return the loss (else 0.0, a little faster).
    kernel : bool
        Compute in the Cython kernel (GIL released; float32 arrays, no `symmetric` term); False
        (or float64 arrays, or `symmetric`): the NumPy formulas, the reference the kernel is
        tested against.
    decoder : float
        Weight λ of the decoder term: ``Wᵀ`` must bring each image's words back to its
        features, ``λ · ‖x − Wᵀ·c‖²`` with ``c`` the mean of the unit vectors of its words (a
        semantic autoencoder, Kodirov et al., CVPR 2017). A step of ``W`` only (the words do not
        learn from it); its loss is not in the returned loss.
    bias : (n_vocab,) array, optional
        Added to each candidate word's logit (``−γ · log n_w`` for ``space_tag_prior=γ``: the
        softmax's frequent tags must earn their rank by cosine alone).

    Returns
    -------
    float
        The loss of the run (sum over images, and over words for the symmetric term).
    """
    n_slots = len(Vn)
    if not len(pair_slot) or not n_slots:
        return 0.0
    if candidates not in ("run", "own"):
        raise ValueError(f"candidates must be 'run' or 'own', got {candidates!r}.")
    if bias is not None and np.shape(bias) != (len(syn0),):
        raise ValueError(f"bias must hold one value per word of syn0 ({len(syn0)}), got shape {np.shape(bias)}.")
    bias = None if bias is None else np.asarray(bias, dtype=W.dtype)
    if kernel and not symmetric and all(a.dtype == REAL for a in (W, syn0, Vn)):
        return _space_step_kernel(W, syn0, Vn, pair_slot, pair_word, negatives, alpha_w=alpha_w, alpha_u=alpha_u,
                                  temperature=temperature, word_lock=word_lock, anchor=anchor, pull=pull,
                                  train_images=train_images, candidates=candidates, compute_loss=compute_loss,
                                  decoder=decoder, bias=bias)
    pair_slot = np.asarray(pair_slot, dtype=np.int64)
    pair_word = np.asarray(pair_word, dtype=np.int64)
    rows, start, counts = np.unique(pair_slot, return_index=True, return_counts=True)
    prow = np.repeat(np.arange(len(rows)), counts)  # each pair's row among the images with words
    w = (1.0 / counts[prow]).astype(W.dtype)  # each image's positives share its target mass
    X = Vn if len(rows) == n_slots else np.ascontiguousarray(Vn[rows])
    H = X @ W.T
    Z, hn = unit(H)
    inv_t = 1.0 / float(temperature)
    negatives = np.unique(np.asarray(negatives, dtype=np.int64))
    if word_lock is not None and alpha_u > 0:  # nothing to move: skip the words' gradients
        alpha_u = alpha_u if (np.any(word_lock[pair_word] > 0) or np.any(word_lock[negatives] > 0)) else 0.0
    if candidates == "run":
        cand, inv = np.unique(np.concatenate([pair_word, negatives]), return_inverse=True)
        U = syn0[cand]
        Uh, un = unit(U)
        G, loss = _grad_logits_run(Z, Uh, prow, inv[: len(pair_word)], w, inv_t, symmetric, compute_loss,
                                   None if bias is None else bias[cand])
        dZ = G @ Uh
        word_grad = None if alpha_u <= 0 else (lambda: (cand, U, Uh, un, lambda mov: G[:, mov].T @ Z))
    else:
        if symmetric > 0:
            raise ValueError("symmetric > 0 needs candidates='run'.")
        dZ, loss, word_grad = _own_candidates(Z, syn0, pair_word, negatives, prow, start, w, inv_t,
                                              compute_loss, alpha_u > 0, bias)
    if train_images and alpha_w > 0:
        dH = (dZ - np.einsum("ij,ij->i", dZ, Z)[:, None] * Z) / hn[:, None]
        residual = _decoder_residual(W, X, syn0, pair_word, prow, w, len(rows)) if decoder > 0 else None
        add_outer(W, dH, X, -alpha_w)
        if residual is not None:
            add_outer(W, *residual, decoder_step_size(alpha_w, decoder, residual[0]))
    if word_grad is not None:
        _step_words(syn0, *word_grad(), alpha_u, word_lock, anchor, pull)
    return loss


def _own_candidates(Z, syn0, pair_word, negatives, prow, start, w, inv_t, compute_loss, words_move, bias=None):
    """Each image against its own words and the shared negatives (logits shifted by `bias`, per
    vocabulary word): dL/dZ, the loss and (when words move) a function giving the words' gradients."""
    Un = syn0[negatives]
    Unh, unn = unit(Un)
    Up = syn0[pair_word]
    Uph, unp = unit(Up)
    Sn = Z @ Unh.T
    Sn *= inv_t
    if bias is not None:
        Sn += bias[negatives]
    if len(negatives):
        j = np.minimum(np.searchsorted(negatives, pair_word), len(negatives) - 1)
        own = negatives[j] == pair_word
        Sn[prow[own], j[own]] = -np.inf  # an image's own word is a positive, not a negative
    Sp = np.einsum("ij,ij->i", Z[prow], Uph) * inv_t
    if bias is not None:
        Sp += bias[pair_word]
    m = np.maximum.reduceat(Sp, start)
    if len(negatives):
        m = np.maximum(Sn.max(axis=1), m)
    Sn -= m[:, None]
    np.exp(Sn, out=Sn)
    Ep = np.exp(Sp - m[prow])
    denom = Sn.sum(axis=1) + np.add.reduceat(Ep, start)
    Sn /= denom[:, None]
    Pp = Ep / denom[prow]
    loss = -float(np.sum(w * np.log(np.maximum(Pp, 1e-30)))) if compute_loss else 0.0
    Gn = Sn
    Gn *= inv_t
    Gp = ((Pp - w) * inv_t).astype(Z.dtype)
    dZ = Gn @ Unh + np.add.reduceat(Gp[:, None] * Uph, start, axis=0)
    if not words_move:
        return dZ, loss, None

    def word_grad():
        cand, inv = np.unique(np.concatenate([negatives, pair_word]), return_inverse=True)
        U = syn0[cand]
        Uh, un = unit(U)

        def grad_of(mov):
            # positives: dUh[c] += Σ_{pairs (r, c)} Gp · Z[r], as one sparse product
            M = csr_matrix((Gp, (inv[len(negatives):], prow)), shape=(len(cand), len(Z)))
            dUh = np.asarray(M @ Z, dtype=Z.dtype)
            dUh[inv[: len(negatives)]] += Gn.T @ Z
            return dUh[mov]

        return cand, U, Uh, un, grad_of

    return dZ, loss, word_grad


def _step_words(syn0, cand, U, Uh, un, grad_of, alpha_u, word_lock, anchor, pull) -> None:
    """Move the candidate words that may move by the gradient of the loss w.r.t. their input
    vectors (``grad_of(movable)``: w.r.t. their unit vectors; through the normalisation here),
    plus the pull towards their starting vectors. Frozen words cost nothing."""
    lock = word_lock[cand] if word_lock is not None else np.ones(len(cand), dtype=U.dtype)
    mov = np.flatnonzero(lock > 0)
    if not len(mov):
        return
    dUh = grad_of(mov)
    cand, U, Uh, un, lock = cand[mov], U[mov], Uh[mov], un[mov], lock[mov]
    dU = (dUh - np.einsum("ij,ij->i", dUh, Uh)[:, None] * Uh) / un[:, None]
    if anchor is not None and pull > 0:
        anchored = cand < len(anchor)
        dU[anchored] += pull * (U[anchored] - anchor[cand[anchored]])
    syn0[cand] -= (alpha_u * lock)[:, None] * dU  # from the vectors as they are now: other workers' steps stay


def candidate_columns(pair_slot: np.ndarray, pair_word: np.ndarray, negatives: np.ndarray, candidates: str):
    """The kernel's view of a run: ``(rows, pair_row, pair_col, pair_w, cand, n_shared)``.

    ``rows``: the slots with at least one word; ``cand``: candidate word indices, the first
    `n_shared` scored for every image ("run": all the run's words and the negatives; "own": the
    negatives), the rest (own words that are no negative) only for their pairs; each pair's row,
    column in ``cand`` and target mass ``1 / (its image's word count)``.

    >>> rows, pr, pc, w, cand, k = candidate_columns(np.array([0, 0, 1]), np.array([4, 7, 7]), np.array([2, 7]), "own")
    >>> cand.tolist(), k, pc.tolist(), w.tolist()
    ([2, 7, 4], 2, [2, 1, 1], [0.5, 0.5, 1.0])
    """
    pair_slot = np.asarray(pair_slot, dtype=np.int64)
    pair_word = np.asarray(pair_word, dtype=np.int64)
    rows, counts = np.unique(pair_slot, return_counts=True)
    pair_row = np.repeat(np.arange(len(rows), dtype=np.int32), counts)
    pair_w = (1.0 / counts[pair_row]).astype(REAL)
    negatives = np.unique(np.asarray(negatives, dtype=np.int64))
    if candidates == "run":
        cand = np.unique(np.concatenate([pair_word, negatives]))
        return rows, pair_row, np.searchsorted(cand, pair_word).astype(np.int32), pair_w, cand, len(cand)
    j = np.minimum(np.searchsorted(negatives, pair_word), max(len(negatives) - 1, 0))
    is_neg = negatives[j] == pair_word if len(negatives) else np.zeros(len(pair_word), bool)
    extra = np.unique(pair_word[~is_neg])
    cols = np.where(is_neg, j, len(negatives) + np.searchsorted(extra, pair_word))
    return rows, pair_row, cols.astype(np.int32), pair_w, np.concatenate([negatives, extra]), len(negatives)


def _space_step_kernel(W, syn0, Vn, pair_slot, pair_word, negatives, *, alpha_w, alpha_u, temperature, word_lock,
                       anchor, pull, train_images, candidates, compute_loss, decoder=0.0, bias=None) -> float:
    from gensim_im2vec import im2vec_inner

    rows, pair_row, pair_col, pair_w, cand, n_shared = candidate_columns(pair_slot, pair_word, negatives, candidates)
    lock = (np.ones(len(cand), REAL) if word_lock is None
            else np.ascontiguousarray(word_lock[cand], dtype=REAL))
    words_move = alpha_u > 0 and bool(np.any(lock > 0))
    n_move = n_shared
    if words_move and n_shared:  # the shared words that may move first: the words' gradient skips the rest
        order = np.argsort(lock[:n_shared] <= 0, kind="stable")
        n_move = int(np.count_nonzero(lock[:n_shared] > 0))
        cand = np.concatenate([cand[:n_shared][order], cand[n_shared:]])
        lock = np.concatenate([lock[:n_shared][order], lock[n_shared:]])
        where = np.empty(n_shared, np.int32)
        where[order] = np.arange(n_shared, dtype=np.int32)
        shared = pair_col < n_shared
        pair_col = np.where(shared, where[np.minimum(pair_col, n_shared - 1)], pair_col).astype(np.int32)
    X = Vn if len(rows) == len(Vn) else np.ascontiguousarray(Vn[rows])
    anc = anchor if anchor is not None and pull > 0 else np.zeros((0, W.shape[0]), REAL)
    residual = None
    if train_images and alpha_w > 0 and decoder > 0:  # before space_job moves any word
        residual = _decoder_residual(W, X, syn0, cand[pair_col], pair_row, pair_w, len(rows))
    loss, dH = im2vec_inner.space_job(
        X, W, syn0, cand, n_shared, pair_row, pair_col, pair_w, lock, np.ascontiguousarray(anc, dtype=REAL),
        temperature=temperature, alpha_u=alpha_u, pull=pull, words_move=words_move, compute_loss=compute_loss,
        n_move=n_move, bias=None if bias is None else np.ascontiguousarray(bias))
    if train_images and alpha_w > 0:
        add_outer(W, dH, X, -alpha_w)
        if residual is not None:
            add_outer(W, *residual, decoder_step_size(alpha_w, decoder, residual[0]))
    return loss


class JobPlan(NamedTuple):
    """What :func:`im2vec_inner.train_space_job` reads for a job's runs: made by
    :func:`im2vec_inner.plan_space_job` in training, :func:`job_candidates` its NumPy reference."""

    image_slots: np.ndarray  # the job's slots with at least one word, in order: the rows of X
    run_rows: np.ndarray  # (n_runs + 1,) each run's first row of X
    cand: np.ndarray  # candidates, run after run (movable first within a run whose words move)
    run_cands: np.ndarray  # (n_runs + 1,)
    run_move: np.ndarray  # (n_runs,) int32: how many of a run's candidates may move (0: none)
    cand_lock: np.ndarray  # float32 lock factor of each candidate
    pair_row: np.ndarray  # int32, row within the run
    pair_col: np.ndarray  # int32, candidate within the run
    pair_w: np.ndarray  # float32, 1 / the image's word count
    run_pairs: np.ndarray  # (n_runs + 1,)


def job_candidates(pair_slot: np.ndarray, pair_word: np.ndarray, run_row: np.ndarray, negatives: list,
                   n_vocab: int, word_lock: np.ndarray) -> JobPlan:
    """:func:`candidate_columns` ("run") for every run of a job at once, in a few NumPy calls: the
    reference :func:`im2vec_inner.plan_space_job` (what training calls, GIL released) is tested
    against, array for array.

    `pair_slot` holds job-wide slots (sorted), `run_row` (n_runs + 1) each run's first slot,
    `negatives` each run's drawn negatives. Per run the result is what :func:`candidate_columns`
    and the kernel path of :func:`space_step` compute: candidates sorted, then (when any may move)
    the movable ones first.

    >>> plan = job_candidates(np.array([0, 0, 1, 2]), np.array([4, 7, 7, 4]), np.array([0, 2, 3]),
    ...                       [np.array([2, 7]), np.array([9])], 10, np.zeros(10, np.float32))
    >>> plan.cand.tolist(), plan.run_cands.tolist(), plan.pair_col.tolist(), plan.pair_row.tolist()
    ([2, 4, 7, 4, 9], [0, 3, 5], [1, 2, 2, 0], [0, 0, 1, 0])
    """
    n_runs = len(run_row) - 1
    pair_slot = np.asarray(pair_slot, dtype=np.int64)
    pair_word = np.asarray(pair_word, dtype=np.int64)
    image_slots, pair_idx, counts = np.unique(pair_slot, return_inverse=True, return_counts=True)
    run_rows = np.searchsorted(image_slots, run_row).astype(np.int64)
    run_of_pair = np.searchsorted(run_row, pair_slot, side="right") - 1
    pair_row = (pair_idx - run_rows[run_of_pair]).astype(np.int32)
    pair_w = (1.0 / counts[pair_idx]).astype(REAL)
    neg_run = np.repeat(np.arange(n_runs), [len(n) for n in negatives])
    neg = np.concatenate([np.asarray(n, dtype=np.int64) for n in negatives]) if negatives else np.zeros(0, np.int64)
    pkeys = run_of_pair * n_vocab + pair_word
    keys = np.unique(np.concatenate([pkeys, neg_run * n_vocab + neg]))
    cand, cand_run = keys % n_vocab, keys // n_vocab
    run_cands = np.searchsorted(cand_run, np.arange(n_runs + 1)).astype(np.int64)
    pair_col = np.searchsorted(keys, pkeys) - run_cands[run_of_pair]
    lock = np.asarray(word_lock, dtype=REAL)[cand]
    movable = lock > 0
    n_move = np.bincount(cand_run, weights=movable, minlength=n_runs).astype(np.int32)
    moving = n_move > 0
    order = np.lexsort((np.arange(len(cand)), ~movable & moving[cand_run], cand_run))  # movable first
    where = np.empty(len(cand), np.int64)
    where[order] = np.arange(len(cand))
    pair_col = where[run_cands[run_of_pair] + pair_col] - run_cands[run_of_pair]
    pair_bounds = np.searchsorted(pair_slot, run_row).astype(np.int64)
    return JobPlan(image_slots, run_rows, cand[order], run_cands, n_move, lock[order], pair_row,
                   pair_col.astype(np.int32), pair_w, pair_bounds)
