"""The space step: what makes images and words one space that plain cosine can query.

The slides' objective trains an image's ``h = W · v̂_f`` against the words' *output* vectors
(``syn1neg``). That ranks tags well by ``h · v_o``, but cosine between ``h`` and the words' *input*
vectors — what ``model.wv.most_similar`` computes — stays meaningless: measured on the demo, the
images formed a cloud of their own. The space step trains ``h`` against the input vectors
themselves, by cosine:

    for each image of a run, with its document's words P (positives) and the run's candidate words
    C = (all positives of the run) ∪ (negatives drawn from the tag distribution):
        s_c = cos(h, u_c) / τ                                    (u_c: input vector of word c)
        loss = − Σ_{p ∈ P} (1/|P|) log softmax_C(s)_p             (image → words)
             + symmetric · the same per word over the run's images (word → images, in-batch)

Gradients flow into ``W`` (a rank-|run| update, two sgemms) and, when words may move, into the
candidate words' input vectors, each pulled back towards the vector it started from
(``pull``: the dial between the words' text semantics and their fit to images).

Everything is a handful of BLAS-3 calls per run of ``image_batch`` images, so it runs beside the
Cython pair loop that trains the words (numpy releases the GIL inside BLAS).

>>> import numpy as np
>>> from gensim_im2vec.space import space_step, run_pairs
>>> tokens = np.array([5, 0, 1, 6, 2], np.int32)            # two documents: [img 5, w0, w1], [img 6, w2]
>>> slots = np.array([0, -1, -1, 1, -1], np.int32)          # images 5 and 6 are the run's slots 0 and 1
>>> bounds = np.array([0, 3, 5], np.int32)
>>> run_pairs(tokens, slots, bounds, n_slots=2)
(array([0, 0, 1]), array([0, 1, 2]))
"""

from __future__ import annotations

import numpy as np

__all__ = ["run_pairs", "space_step"]

REAL = np.float32


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


def _unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms = np.maximum(norms, 1e-12).astype(x.dtype, copy=False)
    return x / norms[:, None], norms


def _softmax(s: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def space_step(W: np.ndarray, syn0: np.ndarray, Vn: np.ndarray, pair_slot: np.ndarray, pair_word: np.ndarray,
               negatives: np.ndarray, *, alpha_w: float, alpha_u: float, temperature: float,
               symmetric: float = 0.0, word_lock: np.ndarray | None = None, anchor: np.ndarray | None = None,
               pull: float = 0.0, train_images: bool = True) -> float:
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
        (image slot, vocabulary index) of each positive pair (:func:`run_pairs`).
    negatives : int array
        Vocabulary indices of sampled negative words (duplicates and positives are harmless).
    alpha_w, alpha_u : float
        Step sizes of ``W`` and of the words' input vectors (0: the words stay put).
    temperature : float
        τ of the cosine softmax.
    symmetric : float
        Weight of the word → images term (each positive word against the run's images).
    word_lock : (n_vocab,) float32, optional
        Per-word factor on the word update (0 freezes a word; images must be 0).
    anchor : (n_anchor, size) float32, optional
        Starting vectors of the first ``n_anchor`` words; a moved word is pulled back to it with
        strength `pull` (words at index ≥ n_anchor move freely).

    Returns
    -------
    float
        The loss of the run (sum over images, and over words for the symmetric term).
    """
    n_slots = len(Vn)
    if not len(pair_slot) or not n_slots:
        return 0.0
    cand, inv = np.unique(np.concatenate([pair_word, np.asarray(negatives, dtype=np.int64)]), return_inverse=True)
    col = inv[: len(pair_word)]
    Y = np.zeros((n_slots, len(cand)), dtype=REAL)
    Y[pair_slot, col] = 1.0
    has = Y.sum(axis=1)
    rows = np.flatnonzero(has > 0)
    H = Vn[rows] @ W.T
    Z, hn = _unit(H)
    U = syn0[cand]
    Uh, un = _unit(U)
    inv_t = 1.0 / float(temperature)
    S = (Z @ Uh.T) * inv_t
    Yr = Y[rows]
    P = _softmax(S, axis=1)
    Yn = Yr / has[rows, None]
    loss = -float(np.sum(Yn * np.log(np.maximum(P, 1e-30))))
    G = P - Yn
    if symmetric > 0 and len(rows) > 1:
        pos_cols = np.flatnonzero(Yr.any(axis=0))
        Sc = S[:, pos_cols]
        Pc = _softmax(Sc, axis=0)
        Yc = Yr[:, pos_cols] / Yr[:, pos_cols].sum(axis=0, keepdims=True)
        loss -= symmetric * float(np.sum(Yc * np.log(np.maximum(Pc, 1e-30))))
        G[:, pos_cols] += symmetric * (Pc - Yc)
    G *= inv_t
    if train_images and alpha_w > 0:
        dZ = G @ Uh
        dH = (dZ - np.einsum("ij,ij->i", dZ, Z)[:, None] * Z) / hn[:, None]
        W -= (alpha_w * dH.T) @ Vn[rows]
    if alpha_u > 0:
        dUh = G.T @ Z
        dU = (dUh - np.einsum("ij,ij->i", dUh, Uh)[:, None] * Uh) / un[:, None]
        if anchor is not None and pull > 0:
            anchored = cand < len(anchor)
            dU[anchored] += pull * (U[anchored] - anchor[cand[anchored]])
        step = alpha_u * dU
        if word_lock is not None:
            step *= word_lock[cand % len(word_lock)][:, None]
        syn0[cand] = U - step
    return loss
