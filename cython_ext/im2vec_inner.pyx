# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The Im2Vec training kernel: skip-gram and CBOW with negative sampling over words and images.

One job (a batch of documents of at most ``batch_words`` tokens) goes through three steps:

1. :func:`prepare_job` (GIL held): tokens → vocabulary indices, frequent-word downsampling,
   documents longer than ``max_chunk`` split into chunks, random window shrink, and a job-local
   *slot* for every distinct image in the job. Python then gathers the slots' L2-normalised
   feature rows into ``V`` (n_slots × F).
2. :func:`train_job` (GIL released): ``H = V · Wᵀ`` by one sgemm, each row then scaled by the
   image's inverse feature norm (so ``h = W v̂`` without a normalised copy of ``V``), then the pair
   loop, which accumulates each image's input gradient into ``E``, then ``E`` rows scaled the same
   way and ``W += image_alpha · Eᵀ · V`` by one sgemm (the rank-1 updates of all pairs, summed).
3. The loss of the job is returned as a double; Python adds the jobs up.

Conventions (gensim's skip-gram): in each (centre i, context j) pair the context token j is the
INPUT vector, the centre token i the positive OUTPUT row of ``syn1neg``. An image has no output row
of its own: as the centre it is skipped, unless ``tied`` is set, in which case its own ``h`` is
its output vector. Images are never drawn as negatives (they are not in the negative tables).

Nothing here allocates, logs or raises inside the ``nogil`` section.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport exp, log, log1p, sqrt
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy, memset
from cpython.pythread cimport (
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from scipy.linalg.cython_blas cimport saxpy, sdot, sgemm, sgemv, sger, sscal


cdef extern from "im2vec_vec.h" nogil:  # loops the C compiler vectorises, the same floats at any width
    float im2vec_max(const float *x, int n)
    double im2vec_exp_shift_sum(float *s, int n, float m)
    float im2vec_exp_nonpositive(float x)
    double im2vec_sumsq(const float *x, int n)
    void im2vec_scale_sub(const float *x, float a, const float *b, float *y, int n)

cnp.import_array()

ctypedef float REAL_t

cdef int ONE = 1
cdef REAL_t ONEF = 1.0
cdef REAL_t ZEROF = 0.0
cdef REAL_t MINUS_ONEF = -1.0

cdef enum:
    SIG_SIZE = 4096
cdef double SIG_MAX = 10.0
cdef double SATURATED = 6.0  # gensim's MAX_EXP: no update beyond it
# σ(x) on [-SIG_MAX, SIG_MAX], read with linear interpolation (error < 1e-6; exp() per target
# made skip-gram ~10% slower than gensim's table)
cdef REAL_t SIG_TABLE[SIG_SIZE + 1]
cdef int _k
for _k in range(SIG_SIZE + 1):
    SIG_TABLE[_k] = <REAL_t>(1.0 / (1.0 + exp(-(_k * (2.0 * SIG_MAX / SIG_SIZE) - SIG_MAX))))


cdef REAL_t SIG_SCALE = SIG_SIZE / (2.0 * SIG_MAX)


cdef inline REAL_t sigmoid(REAL_t x) noexcept nogil:
    """σ(x) for |x| < SATURATED (its one caller, score_target, returns before it otherwise).
    In float, without the range checks: the kernel 4-5% faster than the same interpolation in
    double (interleaved kernel-only timing, skip-gram and CBOW), a difference < 1e-6 in σ."""
    cdef REAL_t pos = (x + <REAL_t>SIG_MAX) * SIG_SCALE
    cdef int i = <int>pos
    return SIG_TABLE[i] + (SIG_TABLE[i + 1] - SIG_TABLE[i]) * (pos - i)


#: Longest run of tokens the kernel treats as one document; longer documents are split (not cut).
MAX_CHUNK = 10000
#: Largest job gensim's producer should build (``batch_words``).
MAX_WORDS_IN_BATCH = 10000


cdef struct Config:
    int sg
    int window
    int negative
    int cbow_mean
    int size
    int n_features
    int train_words
    int train_outputs
    int train_images
    int tied
    int tag_negatives
    int compute_loss
    int per_pair
    int output_head
    int input_head
    int image_pairs
    REAL_t alpha
    REAL_t image_alpha

    REAL_t *syn0
    REAL_t *syn1neg
    const REAL_t *lockf
    int lockf_len
    REAL_t *W
    const REAL_t *V
    REAL_t *H
    REAL_t *E
    const REAL_t *inv_norms
    int n_slots

    const int32_t *tokens
    const int32_t *slots
    const int32_t *bounds
    int n_bounds
    const int32_t *rwin
    int doc_ctx
    int32_t *ctx
    const int32_t *img_pos
    const int32_t *img_bounds

    const int32_t *wneg_idx
    const uint32_t *wneg_cum
    const int32_t *wneg_guide
    int wneg_n
    int wneg_shift
    const int32_t *tneg_idx
    const uint32_t *tneg_cum
    const int32_t *tneg_guide
    int tneg_n
    int tneg_shift

    REAL_t *work
    REAL_t *neu1
    uint64_t next_random
    double loss


cdef inline uint64_t lcg_next(uint64_t r) noexcept nogil:
    return (r * <uint64_t>25214903917ULL + 11ULL) & <uint64_t>281474976710655ULL


cdef inline int32_t draw_negative(Config *c, int use_tags) noexcept nogil:
    """Draw one vocabulary index from a cumulative table (first k with cum[k] > x).

    The search starts from the guide (:func:`_neg_guide`): x's bucket already names the answer
    or a range of one or two entries, where a bisection of the whole table took ~16 steps whose
    branches a CPU cannot predict (half of run_sg's own time went there: 5,700 of its 10,700
    perf samples in a skip-gram run, more than gensim's whole per-pair function). The same x, so
    the same draw as the bisection."""
    cdef const int32_t *idx
    cdef const uint32_t *cum
    cdef const int32_t *guide
    cdef int n, shift
    if use_tags and c.tneg_n > 0:
        idx = c.tneg_idx
        cum = c.tneg_cum
        guide = c.tneg_guide
        n = c.tneg_n
        shift = c.tneg_shift
    else:
        idx = c.wneg_idx
        cum = c.wneg_cum
        guide = c.wneg_guide
        n = c.wneg_n
        shift = c.wneg_shift
    c.next_random = lcg_next(c.next_random)
    # (a 32-bit division here, the same remainder, measured no faster: 0.99-1.03x)
    return idx[guided_search(cum, guide, shift, (c.next_random >> 16) % cum[n - 1])]


cdef inline int guided_search(const uint32_t *cum, const int32_t *guide, int shift, uint64_t x) noexcept nogil:
    """The first k with cum[k] > x, bisecting only the entries x's bucket of the guide names."""
    cdef int lo = guide[x >> shift], hi = guide[(x >> shift) + 1], mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if cum[mid] > x:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _guided_search_many(const uint32_t[::1] cum, const uint64_t[::1] xs):
    """:func:`guided_search` (the kernel's negative draw without its random number) for every x
    of `xs` (each < ``cum[-1]``), with the guide :func:`_neg_guide` builds: for tests."""
    guide_arr, shift = _neg_guide(cum)
    cdef const int32_t[::1] guide = guide_arr
    cdef int s = shift
    out = np.empty(xs.shape[0], np.int64)
    cdef int64_t[::1] o = out
    cdef Py_ssize_t i
    if cum.shape[0] and xs.shape[0] and (np.asarray(xs).max() >= cum[cum.shape[0] - 1]):
        raise ValueError("_guided_search_many: every x must be < cum[-1]")
    for i in range(xs.shape[0]):
        o[i] = guided_search(&cum[0], &guide[0], s, xs[i])
    return out


def _neg_guide(const uint32_t[::1] cum):
    """The guide to a cumulative table: ``(guide, shift)`` with ``guide[b]`` the first k whose
    ``cum[k] > b << shift`` (at most ``len(cum) - 1``), one bucket per ``2**shift`` values of x,
    at least two buckets per entry (up to 2**20). Answers for x in bucket b lie in
    ``guide[b]..guide[b + 1]``. One pass over both, O(buckets + entries); :func:`_guide_for`
    keeps it from job to job."""
    cdef int n = cum.shape[0], nb = 0, kb = 1, shift, k = 0
    cdef int64_t b, n_buckets
    cdef uint64_t total, t
    if n == 0:
        return np.zeros(2, np.int32), 0
    total = cum[n - 1] if cum[n - 1] > 0 else 1
    while ((total - 1) >> nb) > 0:  # every x < 2**nb
        nb += 1
    while (1 << kb) < 2 * n and kb < 20:
        kb += 1
    if kb > nb:
        kb = nb
    shift = nb - kb
    n_buckets = (<int64_t>1) << kb
    guide_arr = np.empty(n_buckets + 1, np.int32)
    cdef int32_t[::1] guide = guide_arr
    for b in range(n_buckets + 1):
        t = (<uint64_t>b) << shift
        while k < n - 1 and cum[k] <= t:
            k += 1
        guide[b] = k
    return guide_arr, shift


cdef dict _GUIDES = {}  # (entries, total) -> (a copy of the table, its guide, shift)


cdef tuple _guide_for(const uint32_t[::1] cum):
    """:func:`_neg_guide` of `cum`, built once per table: rebuilt per job it was 0.6% of a CBOW
    run's perf samples (~0.1 ms a job, under the GIL). A hit is checked against a copy of the
    table (memcmp, ~5 µs), so a table changed in place, or a new one at the same address, gets
    its own guide."""
    cdef int n = cum.shape[0]
    cdef const uint32_t[::1] saved
    if n == 0:
        return _neg_guide(cum)
    key = (n, cum[n - 1])
    hit = _GUIDES.get(key)
    if hit is not None:
        saved = hit[0]
        if memcmp(&saved[0], &cum[0], n * sizeof(uint32_t)) == 0:
            return hit[1], hit[2]
    guide, shift = _neg_guide(cum)
    if len(_GUIDES) >= 8:  # a few models' tables at a time
        _GUIDES.clear()
    _GUIDES[key] = (np.array(cum, dtype=np.uint32, copy=True), guide, shift)
    return guide, shift


cdef inline REAL_t lock_factor(Config *c, int32_t w) noexcept nogil:
    """gensim's ``lockf[w % len(lockf)]`` (one factor for all words, or one per word) without the
    integer division per pair."""
    if c.lockf_len == 1:
        return c.lockf[0]
    if w < c.lockf_len:
        return c.lockf[w]
    return c.lockf[w % c.lockf_len]


cdef inline double softplus(double x) noexcept nogil:
    if x > 0:
        return x + log1p(exp(-x))
    return log1p(exp(x))


cdef inline REAL_t score_target(Config *c, REAL_t *l1, REAL_t *out, REAL_t label) noexcept nogil:
    """One (input, target) term of negative sampling: adds the loss, accumulates the gradient
    w.r.t. the input into ``c.work`` and returns ``g`` (the caller updates the target).

    As gensim does, a saturated term (|l1·out| >= 6) makes no update: ``g = 0``."""
    cdef int size = c.size
    cdef REAL_t fd = sdot(&size, l1, &ONE, out, &ONE)
    cdef REAL_t g
    if c.compute_loss:
        c.loss += softplus(-fd) if label > 0 else softplus(fd)
    if fd >= SATURATED or fd <= -SATURATED:
        return 0.0
    g = (label - sigmoid(fd)) * c.alpha
    saxpy(&size, &g, out, &ONE, c.work, &ONE)
    return g


cdef inline void negative_sampling(Config *c, REAL_t *l1, int32_t target, int tslot,
                                   int use_tags) noexcept nogil:
    """One positive target plus ``negative`` noise words against input ``l1``.

    The gradient w.r.t. ``l1`` is accumulated into ``c.work`` (which the caller zeroed).
    Output rows (``syn1neg``) are updated in place when ``train_outputs``; a tied image target
    sends its output gradient into ``E``.
    """
    cdef int d, size = c.size
    cdef int32_t w
    cdef REAL_t label, g
    cdef REAL_t *out
    for d in range(c.negative + 1):
        if d == 0:
            label = 1.0
            if tslot >= 0:
                out = c.H + <int64_t>tslot * size
            else:
                out = c.syn1neg + <int64_t>target * size
            w = target
        else:
            w = draw_negative(c, use_tags)
            if w == target:
                continue
            label = 0.0
            out = c.syn1neg + <int64_t>w * size
        g = score_target(c, l1, out, label)
        if g == 0:
            continue
        if d == 0 and tslot >= 0:
            if c.train_images:
                saxpy(&size, &g, l1, &ONE, c.E + <int64_t>tslot * size, &ONE)
        elif c.train_outputs:
            saxpy(&size, &g, l1, &ONE, out, &ONE)


cdef inline void input_head_sampling(Config *c, REAL_t *h, int32_t target) noexcept nogil:
    """The image's second head: its ``h`` against the INPUT vectors of its tag and of ``negative``
    noise tags (a first-order, word-space objective: cosine between an image and its tags, and
    zero-shot tags that only have text vectors). Gradient w.r.t. ``h`` into ``c.work``; word
    vectors learn when ``train_words`` (times their lockf)."""
    cdef int d, size = c.size
    cdef int32_t w
    cdef REAL_t label, g, gl
    cdef REAL_t *out
    for d in range(c.negative + 1):
        if d == 0:
            label = 1.0
            w = target
        else:
            w = draw_negative(c, 1)
            if w == target:
                continue
            label = 0.0
        out = c.syn0 + <int64_t>w * size
        g = score_target(c, h, out, label)
        if g != 0 and c.train_words:
            gl = g * lock_factor(c, w)
            if gl != 0:
                saxpy(&size, &gl, h, &ONE, out, &ONE)


cdef inline void apply_input_gradient(Config *c, int pos, REAL_t *grad) noexcept nogil:
    cdef int size = c.size
    cdef int slot = c.slots[pos]
    cdef int32_t w
    cdef REAL_t lf
    if slot >= 0:
        if c.train_images:
            saxpy(&size, &ONEF, grad, &ONE, c.E + <int64_t>slot * size, &ONE)
    elif c.train_words:
        w = c.tokens[pos]
        lf = lock_factor(c, w)
        if lf != 0:
            saxpy(&size, &lf, grad, &ONE, c.syn0 + <int64_t>w * size, &ONE)


cdef inline REAL_t *input_vector(Config *c, int pos) noexcept nogil:
    cdef int slot = c.slots[pos]
    if slot >= 0:
        return c.H + <int64_t>slot * c.size
    return c.syn0 + <int64_t>c.tokens[pos] * c.size


cdef void per_pair_image(Config *c, int j, int32_t target) noexcept nogil:
    """Reference mode for the benchmark: h by sgemv before the pair, W by sger after it."""
    cdef int size = c.size, F = c.n_features, slot = c.slots[j]
    cdef REAL_t *h = c.H + <int64_t>slot * size
    cdef REAL_t *v = <REAL_t *>c.V + <int64_t>slot * F
    cdef REAL_t scale = c.inv_norms[slot]
    sgemv(b"T", &F, &size, &scale, c.W, &F, v, &ONE, &ZEROF, h, &ONE)
    memset(c.work, 0, size * sizeof(REAL_t))
    negative_sampling(c, h, target, -1, c.tag_negatives)
    if c.train_images:
        scale = c.image_alpha * c.inv_norms[slot]
        sger(&F, &size, &scale, v, &ONE, c.work, &ONE, c.W, &F)


cdef inline void sg_pair(Config *c, int i, int j, int tslot) noexcept nogil:
    cdef int image_input = c.slots[j] >= 0
    memset(c.work, 0, c.size * sizeof(REAL_t))
    if c.output_head or not image_input:
        negative_sampling(c, input_vector(c, j), c.tokens[i], tslot, c.tag_negatives and image_input)
    if c.input_head and image_input and tslot < 0:
        input_head_sampling(c, input_vector(c, j), c.tokens[i])
    apply_input_gradient(c, j, c.work)


cdef inline int collect_contexts(Config *c, int s, int i, int start, int end) noexcept nogil:
    """Fill ``c.ctx`` with the context positions of centre ``i`` in chunk ``s``: the (randomly
    shrunk) window, then, with document context, the chunk's images outside it. Returns the count."""
    cdef int j, k, n = 0
    cdef int b = c.rwin[i]
    cdef int lo = i - c.window + b
    cdef int hi = i + c.window + 1 - b
    if lo < start:
        lo = start
    if hi > end:
        hi = end
    for j in range(lo, hi):
        if j != i:
            c.ctx[n] = j
            n += 1
    if c.doc_ctx:  # images outside the window still see every token of their document
        for k in range(c.img_bounds[s], c.img_bounds[s + 1]):
            j = c.img_pos[k]
            if j != i and not (lo <= j < hi):
                c.ctx[n] = j
                n += 1
    return n


cdef void run_sg(Config *c) noexcept nogil:
    cdef int s, i, j, k, n, tslot
    for s in range(c.n_bounds - 1):
        for i in range(c.bounds[s], c.bounds[s + 1]):
            tslot = c.slots[i]
            if tslot >= 0 and (not c.tied or not c.image_pairs):
                continue  # an image has no output vector of its own
            n = collect_contexts(c, s, i, c.bounds[s], c.bounds[s + 1])
            for k in range(n):
                j = c.ctx[k]
                if c.slots[j] >= 0 and not c.image_pairs:
                    continue  # images are trained outside the pair loop (the space step)
                if c.per_pair and c.slots[j] >= 0:
                    per_pair_image(c, j, c.tokens[i])
                else:
                    sg_pair(c, i, j, tslot)


cdef void run_cbow(Config *c) noexcept nogil:
    cdef int s, i, j, k, n, m, tslot, has_image
    cdef int size = c.size
    cdef REAL_t inv
    for s in range(c.n_bounds - 1):
        for i in range(c.bounds[s], c.bounds[s + 1]):
            tslot = c.slots[i]
            if tslot >= 0 and (not c.tied or not c.image_pairs):
                continue
            n = collect_contexts(c, s, i, c.bounds[s], c.bounds[s + 1])
            if not c.image_pairs:  # drop image contexts: images train outside the pair loop
                m = 0
                for k in range(n):
                    if c.slots[c.ctx[k]] < 0:
                        c.ctx[m] = c.ctx[k]
                        m += 1
                n = m
            if n == 0:
                continue
            memset(c.neu1, 0, size * sizeof(REAL_t))
            has_image = 0
            for k in range(n):
                j = c.ctx[k]
                if c.slots[j] >= 0:
                    has_image = 1
                saxpy(&size, &ONEF, input_vector(c, j), &ONE, c.neu1, &ONE)
            inv = 1.0 / n
            if c.cbow_mean:
                sscal(&size, &inv, c.neu1, &ONE)
            memset(c.work, 0, size * sizeof(REAL_t))
            negative_sampling(c, c.neu1, c.tokens[i], tslot, c.tag_negatives and has_image)
            if not c.cbow_mean:  # gensim: a summed window shares the error
                sscal(&size, &inv, c.work, &ONE)
            for k in range(n):
                apply_input_gradient(c, c.ctx[k], c.work)


def prepare_job(sentences, key_to_index, const uint32_t[::1] sample_ints,
                const int64_t[::1] image_rows, bint sample, int window, bint shrink_windows,
                uint64_t next_random, int max_chunk=MAX_CHUNK, int max_images=0):
    """Turn a job's documents into the flat arrays :func:`train_job` walks.

    Parameters
    ----------
    sentences : list of list of str
        The job's documents.
    key_to_index : dict or VocabKeyIndex
        Vocabulary (``model.wv.key_to_index``); unknown tokens are skipped. A dict is looked up a
        token at a time (its table, in C; a dict subclass by its own ``get``, a call a token); a
        :class:`~gensim_im2vec.store.VocabKeyIndex` likewise in its words' dict, and the tokens that
        dict lacks in its image index all at once (``images.rows``), before the tokens are walked
        in order (downsampling draws stay in the tokens' order).
    sample_ints : uint32 array (n_vocab,)
        Downsampling thresholds (gensim's ``sample_int``); images carry 2**32-1.
    image_rows : int64 array (n_vocab,)
        Row of each vocabulary entry in the model's feature matrix, -1 for words.
    sample, window, shrink_windows : as in Word2Vec.
    next_random : int
        State of the linear congruential generator.
    max_chunk : int
        Documents longer than this (after downsampling) are split into chunks.
    max_images : int
        Cut the job into runs, closing a run after the document that brings it to this many image
        tokens (0: one run). W is updated once per run; slots are numbered from 0 in each run.

    Returns
    -------
    tokens : int32 (n,), slots : int32 (n,) (run-local image slot or -1), bounds : int32 (n_chunks+1,),
    rwin : int32 (n,) (window reductions), rows : int64 (n_slots,) (feature row of each slot, runs
    one after another), runs : int64 (n_runs+1, 3) (where each run starts: token, bound, row),
    next_random : int
    """
    cdef dict words = None  # (a typed dict holds exact dicts only: Cython refuses a subclass)
    images = None
    get = None  # the mapping's own get, a token at a time: a dict subclass's, or a VocabKeyIndex's
    if type(key_to_index) is dict:
        words = key_to_index
    elif isinstance(key_to_index, dict):
        get = key_to_index.get
    else:
        try:
            held, images = key_to_index.words, key_to_index.images
        except AttributeError:
            raise TypeError(f"prepare_job: expected key_to_index as a dict or a VocabKeyIndex, got "
                            f"{type(key_to_index).__name__}; give dict(key_to_index).") from None
        if type(held) is not dict:  # (its words in a dict subclass: looked up by its own get)
            get, images = key_to_index.get, None
        else:
            words = held
            if not len(images):
                images = None
    cdef Py_ssize_t total = 0
    for sent in sentences:
        total += len(sent)
    # each token's index first (-1: not in the vocabulary): the words' dict a token at a time, the tokens
    # it lacks in `images` at once (``images.rows``); then one walk over them in order
    found_arr = np.empty(total, dtype=np.int32)
    cdef int32_t[::1] found_at = found_arr
    miss_arr = np.empty(total if images is not None else 0, dtype=np.int64)
    cdef int64_t[::1] miss_at = miss_arr
    cdef Py_ssize_t m = 0, n_miss = 0
    misses = []
    for sent in sentences:
        for token in sent:
            found = words.get(token) if get is None else get(token)
            if found is not None:
                found_at[m] = found
            else:
                found_at[m] = -1
                if images is not None:
                    misses.append(token)
                    miss_at[n_miss] = m
                    n_miss += 1
            m += 1
    if n_miss:
        found_arr[miss_arr[:n_miss]] = images.rows(misses)  # (-1: not an image of the range either)
    del misses, miss_arr
    return _walk_tokens(sentences, found_at, total, sample_ints, image_rows, sample, window, shrink_windows,
                        next_random, max_chunk, max_images)


def _walk_tokens(sentences, const int32_t[::1] found_at, Py_ssize_t total, const uint32_t[::1] sample_ints,
                 const int64_t[::1] image_rows, bint sample, int window, bint shrink_windows,
                 uint64_t next_random, int max_chunk, int max_images):
    """:func:`prepare_job`'s walk over the job's tokens in order, given each one's vocabulary index
    (`found_at`, -1 for a token the vocabulary lacks): downsampling, image slots, chunks, runs and
    window reductions."""
    tokens_arr = np.empty(total, dtype=np.int32)
    slots_arr = np.empty(total, dtype=np.int32)
    rwin_arr = np.zeros(total, dtype=np.int32)
    cdef int32_t[::1] tokens = tokens_arr
    cdef int32_t[::1] slots = slots_arr
    cdef int32_t[::1] rwin = rwin_arr
    bounds = [0]
    rows = []
    cdef dict slot_of_row = {}
    runs = [(0, 0, 0)]
    cdef Py_ssize_t n = 0, start = 0, run_rows = 0, run_images = 0, run_start = 0, j, length, m = 0
    cdef int64_t row
    cdef int32_t idx
    cdef uint32_t r32
    for sent in sentences:
        start = n
        length = len(sent)
        for j in range(length):
            idx = found_at[m]
            m += 1
            if idx < 0:
                continue
            if sample:
                r32 = <uint32_t>((next_random >> 16) & 0xFFFFFFFF)
                next_random = lcg_next(next_random)
                if sample_ints[idx] < r32:
                    continue
            tokens[n] = idx
            row = image_rows[idx]
            if row >= 0:
                slot = slot_of_row.get(row)
                if slot is None:
                    slot = len(rows) - run_rows
                    slot_of_row[row] = slot
                    rows.append(row)
                slots[n] = slot
                run_images += 1
            else:
                slots[n] = -1
            n += 1
            if n - start == max_chunk:
                bounds.append(n)
                start = n
        if n > start:
            bounds.append(n)
        if max_images > 0 and run_images >= max_images:
            runs.append((n, len(bounds) - 1, len(rows)))
            run_start = n
            slot_of_row = {}
            run_rows = len(rows)
            run_images = 0
    if run_start < n or len(runs) == 1:  # (no negative indexing: wraparound is off)
        runs.append((n, len(bounds) - 1, len(rows)))
    cdef Py_ssize_t k
    if shrink_windows and window > 0:
        for k in range(n):
            rwin[k] = <int32_t>(((next_random >> 16) & 0xFFFFFFFF) % window)
            next_random = lcg_next(next_random)
    return (tokens_arr[:n], slots_arr[:n], np.asarray(bounds, dtype=np.int32), rwin_arr[:n],
            np.asarray(rows, dtype=np.int64), np.asarray(runs, dtype=np.int64), next_random)


cdef int _word_config(Config *c, REAL_t[:, ::1] syn0, REAL_t[:, ::1] syn1neg, const REAL_t[::1] lockf,
                      const int32_t[::1] tokens, const int32_t[::1] slots, const int32_t[::1] bounds,
                      const int32_t[::1] rwin, const int32_t[::1] wneg_idx, const uint32_t[::1] wneg_cum,
                      const int32_t[::1] tneg_idx, const uint32_t[::1] tneg_cum, REAL_t[::1] work,
                      REAL_t[::1] neu1, int sg, int window, int negative, int cbow_mean, float alpha,
                      bint train_words, bint train_outputs, bint tag_negatives, bint compute_loss,
                      uint64_t next_random, str who, list keep) except -1:
    """Fill the word part of `c` (the pair loop's arrays and settings), checked. The negative
    tables' guides are appended to `keep`, which the caller holds until the loop is done."""
    cdef int size = syn0.shape[1]
    cdef int n_tok = tokens.shape[0]
    if syn1neg.shape[1] != size or work.shape[0] < size or neu1.shape[0] < size:
        raise ValueError(f"{who}: inconsistent vector sizes")
    if negative <= 0 or wneg_idx.shape[0] == 0:
        raise ValueError(f"{who}: negative sampling needs negative > 0 and a non-empty table")
    if lockf.shape[0] == 0:
        raise ValueError(f"{who}: vectors_lockf is empty")
    if slots.shape[0] != n_tok or rwin.shape[0] != n_tok or bounds.shape[0] == 0:
        raise ValueError(f"{who}: tokens, slots, rwin and bounds do not match")
    c.sg = sg
    c.window = window
    c.negative = negative
    c.cbow_mean = cbow_mean
    c.size = size
    c.train_words = train_words
    c.train_outputs = train_outputs
    c.tag_negatives = tag_negatives
    c.compute_loss = compute_loss
    c.alpha = alpha
    c.syn0 = &syn0[0, 0]
    c.syn1neg = &syn1neg[0, 0]
    c.lockf = &lockf[0]
    c.lockf_len = lockf.shape[0]
    c.tokens = &tokens[0] if n_tok > 0 else NULL
    c.slots = &slots[0] if n_tok > 0 else NULL
    c.bounds = &bounds[0]
    c.n_bounds = bounds.shape[0]
    c.rwin = &rwin[0] if n_tok > 0 else NULL
    c.wneg_idx = &wneg_idx[0]
    c.wneg_cum = &wneg_cum[0]
    c.wneg_n = wneg_idx.shape[0]
    c.tneg_idx = &tneg_idx[0] if tneg_idx.shape[0] > 0 else NULL
    c.tneg_cum = &tneg_cum[0] if tneg_idx.shape[0] > 0 else NULL
    c.tneg_n = tneg_idx.shape[0]
    cdef int32_t[::1] wguide, tguide
    wguide_arr, c.wneg_shift = _guide_for(wneg_cum)
    tguide_arr, c.tneg_shift = _guide_for(tneg_cum)
    wguide, tguide = wguide_arr, tguide_arr
    c.wneg_guide = &wguide[0]
    c.tneg_guide = &tguide[0]
    keep.append(wguide_arr)
    keep.append(tguide_arr)
    c.work = &work[0]
    c.neu1 = &neu1[0]
    c.next_random = next_random
    c.loss = 0.0
    return 0


def train_job(REAL_t[:, ::1] syn0, REAL_t[:, ::1] syn1neg, const REAL_t[::1] lockf,
              REAL_t[:, ::1] W, const REAL_t[:, ::1] V, const REAL_t[::1] inv_norms,
              REAL_t[:, ::1] H, REAL_t[:, ::1] E,
              const int32_t[::1] tokens, const int32_t[::1] slots, const int32_t[::1] bounds,
              const int32_t[::1] rwin,
              const int32_t[::1] wneg_idx, const uint32_t[::1] wneg_cum,
              const int32_t[::1] tneg_idx, const uint32_t[::1] tneg_cum,
              REAL_t[::1] work, REAL_t[::1] neu1,
              *, int n_slots, int sg, int window, int negative, int cbow_mean, float alpha,
              float image_alpha, bint train_words, bint train_outputs, bint train_images,
              bint tied, bint tag_negatives, bint compute_loss, uint64_t next_random,
              bint per_pair=False, bint image_context_document=False, bint output_head=True,
              bint input_head=False, bint image_pairs=True):
    """Train one prepared job in place; return ``(loss, next_random)``.

    ``V`` holds the raw features of the job's ``n_slots`` images (row = slot) and ``inv_norms``
    their inverse L2 norms (ones to train on unnormalised features);
    ``H`` and ``E`` are (n_slots × size) scratch arrays (``E`` zeroed by the caller).
    With ``n_slots == 0`` the sgemm steps are skipped and this is plain word2vec.
    ``image_context_document``: an image token is a context of every token of its document
    chunk, not only of those within the window (its tags all describe it, wherever they stand).
    ``output_head`` / ``input_head`` (skip-gram): an image input is trained against the output
    vectors of its tags (``syn1neg``, the slides' objective), against their input vectors (the
    word space itself), or both; CBOW always uses the output head.
    ``image_pairs=False``: pairs with an image token (as input or centre) are skipped and ``W``
    is left alone: the images are trained by the caller (the space step), the words here.
    ``per_pair`` (skip-gram, untied only) computes each image pair with sgemv/sger instead of the
    two per-job sgemms: the slow reference the benchmark measures against.
    """
    cdef Config c
    cdef int size = syn0.shape[1]
    cdef int F = W.shape[1]
    cdef int n_tok = tokens.shape[0]
    cdef int s
    cdef REAL_t scale
    if W.shape[0] != size:
        raise ValueError("train_job: inconsistent vector sizes")
    if n_slots > 0 and (V.shape[0] < n_slots or inv_norms.shape[0] < n_slots or V.shape[1] != F or H.shape[0] < n_slots
                        or E.shape[0] < n_slots or H.shape[1] != size or E.shape[1] != size):
        raise ValueError("train_job: feature/scratch arrays do not match n_slots")
    if per_pair and (not sg or tied or input_head or not output_head):
        raise ValueError("train_job: per_pair mode exists for untied skip-gram with the output head only")
    if image_pairs and not output_head and not input_head:
        raise ValueError("train_job: an image needs at least one head (output_head or input_head)")
    keep = []  # the negative tables' guides, alive until the loop is done
    _word_config(&c, syn0, syn1neg, lockf, tokens, slots, bounds, rwin, wneg_idx, wneg_cum, tneg_idx, tneg_cum,
                 work, neu1, sg, window, negative, cbow_mean, alpha, train_words, train_outputs, tag_negatives,
                 compute_loss, next_random, "train_job", keep)
    c.n_features = F
    c.train_images = train_images
    c.tied = tied
    c.per_pair = per_pair
    c.output_head = output_head or not sg
    c.input_head = input_head and sg
    c.image_pairs = image_pairs
    c.image_alpha = image_alpha
    c.W = &W[0, 0]
    c.V = &V[0, 0]
    c.H = &H[0, 0]
    c.E = &E[0, 0]
    c.inv_norms = &inv_norms[0] if inv_norms.shape[0] > 0 else NULL
    c.n_slots = n_slots
    c.doc_ctx = image_context_document and n_slots > 0
    cdef int32_t[::1] img_pos, img_bounds
    c.img_pos, c.img_bounds = NULL, NULL
    n_ctx = 2 * window + 1
    if c.doc_ctx:  # (only collect_contexts reads them, only with doc_ctx: no NumPy calls per text job)
        img_pos_arr = np.flatnonzero(np.asarray(slots) >= 0).astype(np.int32)
        img_bounds_arr = np.searchsorted(img_pos_arr, np.asarray(bounds)).astype(np.int32)
        img_pos = img_pos_arr if len(img_pos_arr) else np.zeros(1, np.int32)
        img_bounds = img_bounds_arr
        c.img_pos = &img_pos[0]
        c.img_bounds = &img_bounds[0]
        n_ctx += len(img_pos_arr)
    ctx_arr = np.empty(n_ctx, dtype=np.int32)
    cdef int32_t[::1] ctx = ctx_arr
    c.ctx = &ctx[0]
    if n_tok == 0:
        return 0.0, next_random
    with nogil:
        if n_slots > 0 and not per_pair and image_pairs:
            # H (n_slots x size, row-major) = V (n_slots x F) . W^T ; column-major: H^T = W . V^T
            sgemm(b"T", b"N", &size, &n_slots, &F, &ONEF, c.W, &F, <REAL_t *>c.V, &F,
                  &ZEROF, c.H, &size)
            for s in range(n_slots):
                scale = inv_norms[s]
                sscal(&size, &scale, c.H + <int64_t>s * size, &ONE)
        if sg:
            run_sg(&c)
        else:
            run_cbow(&c)
        if n_slots > 0 and train_images and not per_pair and image_pairs:
            for s in range(n_slots):
                scale = inv_norms[s]
                sscal(&size, &scale, c.E + <int64_t>s * size, &ONE)
            # W (size x F) += image_alpha * E^T . V ; column-major: W^T += image_alpha * V^T . E
            sgemm(b"N", b"T", &F, &size, &n_slots, &c.image_alpha, <REAL_t *>c.V, &F, c.E, &size,
                  &ONEF, c.W, &F)
    return c.loss, c.next_random


# ============================================================================ the space step
cdef struct SpaceConfig:
    int R          # images of the run with at least one word (rows of X, Z, dH)
    int F
    int D
    int C          # candidate words: the first Ks are scored for every image, the rest per pair
    int Ks
    int Km         # the first Km shared candidates may move (the words' gradient skips the rest)
    int P          # (image, word) pairs, sorted by row
    int words_move
    int compute_loss
    REAL_t inv_t
    REAL_t alpha_u
    REAL_t pull
    const REAL_t *X
    const REAL_t *W
    REAL_t *syn0
    const int64_t *cand
    const int32_t *pair_row
    const int32_t *pair_col
    const REAL_t *pair_w
    const REAL_t *lock
    const REAL_t *bias     # per vocabulary word, added to its logit (NULL: none)
    const REAL_t *anchor
    int64_t n_anchor
    REAL_t *Z
    REAL_t *hn
    REAL_t *Uh
    REAL_t *un
    REAL_t *S
    REAL_t *ps
    REAL_t *dZ
    REAL_t *dH
    REAL_t *dUh
    double loss


cdef inline REAL_t _to_unit(REAL_t *v, int n) noexcept nogil:
    """Scale `v` (n floats) to unit L2 norm in place; return its norm (at least 1e-12)."""
    cdef REAL_t nrm = <REAL_t>sqrt(sdot(&n, v, &ONE, v, &ONE))
    cdef REAL_t inv
    if nrm < 1e-12:
        nrm = 1e-12
    inv = 1.0 / nrm
    sscal(&n, &inv, v, &ONE)
    return nrm


cdef void _space_forward(SpaceConfig *c) noexcept nogil:
    """Z = unit rows of X·Wᵀ (norms in hn); Uh = unit candidate vectors (norms in un);
    S = Z·Uh[:Ks]ᵀ / τ (+ each candidate's bias); ps[p] = the logit of pair p."""
    cdef int r, k, p, col
    cdef int D = c.D
    sgemm(b"T", b"N", &D, &c.R, &c.F, &ONEF, <REAL_t *>c.W, &c.F, <REAL_t *>c.X, &c.F, &ZEROF, c.Z, &D)
    for r in range(c.R):
        c.hn[r] = _to_unit(c.Z + <int64_t>r * D, D)
    for k in range(c.C):
        memcpy(c.Uh + <int64_t>k * D, c.syn0 + c.cand[k] * D, D * sizeof(REAL_t))
        c.un[k] = _to_unit(c.Uh + <int64_t>k * D, D)
    if c.Ks > 0:
        sgemm(b"T", b"N", &c.Ks, &c.R, &D, &c.inv_t, c.Uh, &D, c.Z, &D, &ZEROF, c.S, &c.Ks)
        if c.bias != NULL:
            for r in range(c.R):
                for k in range(c.Ks):
                    c.S[<int64_t>r * c.Ks + k] += c.bias[c.cand[k]]
    for p in range(c.P):
        col = c.pair_col[p]
        r = c.pair_row[p]
        if col < c.Ks:
            c.ps[p] = c.S[<int64_t>r * c.Ks + col]
        else:
            c.ps[p] = c.inv_t * sdot(&D, c.Z + <int64_t>r * D, &ONE, c.Uh + <int64_t>col * D, &ONE)
            if c.bias != NULL:
                c.ps[p] += c.bias[c.cand[col]]


cdef void _space_softmax(SpaceConfig *c) noexcept nogil:
    """Per image, the softmax over the shared candidates and its own extra words; turns S and ps
    into the logits' gradient (P − target)/τ and adds the loss."""
    cdef int r, k, p, p0, p1
    cdef double denom, prob
    cdef REAL_t m, scale
    cdef REAL_t *s
    p1 = 0
    for r in range(c.R):
        p0 = p1
        while p1 < c.P and c.pair_row[p1] == r:
            p1 += 1
        s = c.S + <int64_t>r * c.Ks
        m = im2vec_max(s, c.Ks) if c.Ks > 0 else -1e30
        for p in range(p0, p1):
            if c.pair_col[p] >= c.Ks and c.ps[p] > m:
                m = c.ps[p]
        # exp in float, vectorised (glibc's expf, one call per candidate, was two thirds of the softmax)
        denom = im2vec_exp_shift_sum(s, c.Ks, m)
        for p in range(p0, p1):
            if c.pair_col[p] >= c.Ks:
                denom += im2vec_exp_nonpositive(c.ps[p] - m)
        for p in range(p0, p1):  # pair probabilities (before the shared row is rescaled)
            if c.pair_col[p] >= c.Ks:
                prob = im2vec_exp_nonpositive(c.ps[p] - m) / denom
            else:
                prob = s[c.pair_col[p]] / denom
            if c.compute_loss:
                c.loss -= c.pair_w[p] * log(prob if prob > 1e-30 else 1e-30)
            c.ps[p] = <REAL_t>((prob - c.pair_w[p]) * c.inv_t)
        scale = <REAL_t>(c.inv_t / denom)
        for k in range(c.Ks):
            s[k] = s[k] * scale
        for p in range(p0, p1):
            if c.pair_col[p] < c.Ks:
                s[c.pair_col[p]] = c.ps[p]


cdef void _space_backward(SpaceConfig *c) noexcept nogil:
    """dH = the loss gradient w.r.t. h (through the normalisation); the words' step in place."""
    cdef int r, k, p, col, i
    cdef int D = c.D
    cdef REAL_t dot, g, inv, step
    cdef REAL_t *u
    if c.Ks > 0:
        sgemm(b"N", b"N", &D, &c.R, &c.Ks, &ONEF, c.Uh, &D, c.S, &c.Ks, &ZEROF, c.dZ, &D)
    else:
        memset(c.dZ, 0, <int64_t>c.R * D * sizeof(REAL_t))
    for p in range(c.P):
        col = c.pair_col[p]
        if col >= c.Ks:
            g = c.ps[p]
            saxpy(&D, &g, c.Uh + <int64_t>col * D, &ONE, c.dZ + <int64_t>c.pair_row[p] * D, &ONE)
    for r in range(c.R):
        dot = -sdot(&D, c.dZ + <int64_t>r * D, &ONE, c.Z + <int64_t>r * D, &ONE)
        memcpy(c.dH + <int64_t>r * D, c.dZ + <int64_t>r * D, D * sizeof(REAL_t))
        saxpy(&D, &dot, c.Z + <int64_t>r * D, &ONE, c.dH + <int64_t>r * D, &ONE)
        inv = 1.0 / c.hn[r]
        sscal(&D, &inv, c.dH + <int64_t>r * D, &ONE)
    if not c.words_move:
        return
    if c.Km > 0:
        sgemm(b"N", b"T", &D, &c.Km, &c.R, &ONEF, c.Z, &D, c.S, &c.Ks, &ZEROF, c.dUh, &D)
    memset(c.dUh + <int64_t>c.Ks * D, 0, <int64_t>(c.C - c.Ks) * D * sizeof(REAL_t))
    for p in range(c.P):
        col = c.pair_col[p]
        if col >= c.Ks:
            g = c.ps[p]
            saxpy(&D, &g, c.Z + <int64_t>c.pair_row[p] * D, &ONE, c.dUh + <int64_t>col * D, &ONE)
    for k in range(c.C):
        if c.lock[k] <= 0:
            continue
        # dU = (dUh − (dUh·Uh) Uh) / ‖u‖ + pull (u − anchor); u −= alpha_u · lock · dU, subtracted from
        # u as it is now: other workers may have moved the word since the forward pass read it, and
        # writing back (the read value − the step) would undo their updates
        u = c.syn0 + c.cand[k] * D
        dot = sdot(&D, c.dUh + <int64_t>k * D, &ONE, c.Uh + <int64_t>k * D, &ONE)
        step = c.alpha_u * c.lock[k]
        inv = 1.0 / c.un[k]
        for i in range(D):
            g = (c.dUh[<int64_t>k * D + i] - dot * c.Uh[<int64_t>k * D + i]) * inv
            if c.pull > 0 and c.cand[k] < c.n_anchor:
                g = g + c.pull * (c.Uh[<int64_t>k * D + i] * c.un[k] - c.anchor[c.cand[k] * D + i])
            u[i] -= step * g


cdef REAL_t _decoder_residual(SpaceConfig *c, const REAL_t *W, REAL_t *Cm, REAL_t *Res) noexcept nogil:
    """The decoder term's inputs (:func:`gensim_im2vec.space._decoder_residual`): ``Cm`` (R × D)
    each image's mean unit word (from the forward pass's ``Uh``, before any word moved) and
    ``Res = X − Cm·W`` (R × F), before ``W`` moves. Returns ``Σ_i ‖c_i‖²`` (the trace of ``CᵀC``,
    which bounds the step that keeps the term stable)."""
    cdef int p
    cdef int D = c.D
    cdef int n = c.R * c.D
    cdef REAL_t g
    memset(Cm, 0, <int64_t>c.R * D * sizeof(REAL_t))
    for p in range(c.P):
        g = c.pair_w[p]
        saxpy(&D, &g, c.Uh + <int64_t>c.pair_col[p] * D, &ONE, Cm + <int64_t>c.pair_row[p] * D, &ONE)
    memcpy(Res, c.X, <int64_t>c.R * c.F * sizeof(REAL_t))
    sgemm(b"N", b"N", &c.F, &c.R, &D, &MINUS_ONEF, <REAL_t *>W, &c.F, Cm, &D, &ONEF, Res, &c.F)
    return sdot(&n, Cm, &ONE, Cm, &ONE)


def space_job(const REAL_t[:, ::1] X, const REAL_t[:, ::1] W, REAL_t[:, ::1] syn0,
              const int64_t[::1] cand, int n_shared, const int32_t[::1] pair_row,
              const int32_t[::1] pair_col, const REAL_t[::1] pair_w, const REAL_t[::1] lock,
              const REAL_t[:, ::1] anchor, *, float temperature, float alpha_u, float pull,
              bint words_move, bint compute_loss, int n_move=-1, const REAL_t[::1] bias=None):
    """The space step of one run (:mod:`gensim_im2vec.space`), GIL released; returns
    ``(loss, dH)``: the caller applies ``W −= alpha_w · dHᵀ · X`` (:func:`gensim_im2vec.space.space_step`'s per-run path).

    ``X`` (R × F): the run's normalised, centred features, one row per image with a word.
    ``cand`` (C,): candidate word indices; the first `n_shared` are scored for every image, the
    rest only for the pairs that name them. Pairs ``(pair_row, pair_col)`` (sorted by row, none
    twice) are the images' own words, ``pair_w`` their target mass (1 / the image's word count).
    ``lock`` (C,): factor on each candidate's step (0: frozen); `words_move` False skips the
    words altogether; `n_move` ≥ 0: only the first `n_move` shared candidates may move (their
    locks are 0 beyond), so the words' gradient is computed for those alone. ``anchor``: starting vectors of the first ``len(anchor)`` words, pulled to
    with `pull`. ``bias`` (n_vocab,), optional: added to each candidate's logit (``space_tag_prior``).
    """
    cdef SpaceConfig c
    cdef int R = X.shape[0], D = W.shape[0], C = cand.shape[0], P = pair_row.shape[0]
    if X.shape[1] != W.shape[1] or syn0.shape[1] != D:
        raise ValueError("space_job: X, W and syn0 do not agree in shape")
    if pair_col.shape[0] != P or pair_w.shape[0] != P or lock.shape[0] != C:
        raise ValueError("space_job: pair and candidate arrays differ in length")
    if not 0 <= n_shared <= C:
        raise ValueError("space_job: n_shared out of range")
    if n_move < 0:
        n_move = n_shared
    if n_move > n_shared or np.any(np.asarray(lock)[n_move:n_shared] > 0):
        raise ValueError("space_job: a shared candidate beyond n_move has a lock > 0")
    if anchor.shape[0] > 0 and anchor.shape[1] != D:
        raise ValueError("space_job: anchor has the wrong vector size")
    if bias is not None and bias.shape[0] != syn0.shape[0]:
        raise ValueError(f"space_job: bias has {bias.shape[0]} entries for {syn0.shape[0]} words")
    if R == 0 or P == 0:
        return 0.0, np.zeros((R, D), dtype=np.float32)
    if np.any(np.asarray(cand) < 0) or np.any(np.asarray(cand) >= syn0.shape[0]):
        raise ValueError("space_job: candidate index outside the vocabulary")
    if np.any(np.asarray(pair_row) < 0) or np.any(np.asarray(pair_row) >= R) or np.any(np.diff(pair_row) < 0) \
            or np.any(np.asarray(pair_col) < 0) or np.any(np.asarray(pair_col) >= C):
        raise ValueError("space_job: pairs must be sorted by row and index rows and candidates")
    Z = np.empty((R, D), np.float32)
    dZ = np.empty((R, D), np.float32)
    dH = np.empty((R, D), np.float32)
    hn = np.empty(R, np.float32)
    Uh = np.empty((max(C, 1), D), np.float32)
    un = np.empty(max(C, 1), np.float32)
    S = np.empty((R, max(n_shared, 1)), np.float32)
    ps = np.empty(P, np.float32)
    dUh = np.empty((max(C, 1), D), np.float32) if words_move else np.empty((1, D), np.float32)
    cdef REAL_t[:, ::1] Z_v = Z, dZ_v = dZ, dH_v = dH, Uh_v = Uh, S_v = S, dUh_v = dUh
    cdef REAL_t[::1] hn_v = hn, un_v = un, ps_v = ps
    c.R, c.F, c.D, c.C, c.Ks, c.Km, c.P = R, X.shape[1], D, C, n_shared, n_move, P
    c.words_move, c.compute_loss = words_move, compute_loss
    c.inv_t, c.alpha_u, c.pull = 1.0 / temperature, alpha_u, pull
    c.X, c.W, c.syn0 = &X[0, 0], &W[0, 0], &syn0[0, 0]
    c.cand, c.pair_row, c.pair_col, c.pair_w, c.lock = &cand[0], &pair_row[0], &pair_col[0], &pair_w[0], &lock[0]
    c.anchor = &anchor[0, 0] if anchor.shape[0] > 0 else NULL
    c.n_anchor = anchor.shape[0]
    c.bias = &bias[0] if bias is not None else NULL
    c.Z, c.hn, c.Uh, c.un, c.S, c.ps = &Z_v[0, 0], &hn_v[0], &Uh_v[0, 0], &un_v[0], &S_v[0, 0], &ps_v[0]
    c.dZ, c.dH, c.dUh = &dZ_v[0, 0], &dH_v[0, 0], &dUh_v[0, 0]
    c.loss = 0.0
    with nogil:
        _space_forward(&c)
        _space_softmax(&c)
        _space_backward(&c)
    return c.loss, dH


# ============================================================================ the space step's inputs
cdef void _space_rows(const REAL_t *src, const int64_t *rows, Py_ssize_t n, int F, const REAL_t *mean,
                      bint normalize, REAL_t *out) noexcept nogil:
    """``out[i] = src[rows[i]] / ‖src[rows[i]]‖ − mean`` (row i of `src` when `rows` is NULL; a zero
    row keeps its scale; no division when not `normalize`). The norm is summed in double in fixed
    lanes (``im2vec_sumsq``), so every caller gets the same floats for the same row."""
    cdef Py_ssize_t i
    cdef const REAL_t *x
    cdef double ss
    cdef REAL_t inv
    for i in range(n):
        x = src + (rows[i] if rows != NULL else i) * F
        ss = im2vec_sumsq(x, F) if normalize else 0.0
        inv = <REAL_t>(1.0 / sqrt(ss)) if ss > 0 else 1.0
        im2vec_scale_sub(x, inv, mean, out + i * F, F)


def space_rows(const REAL_t[:, ::1] vectors, rows, const REAL_t[::1] mean, bint normalize=True):
    """The rows the space step trains on: each L2-normalised (when `normalize`), minus `mean`
    (the model's ``feature_mean``), as a new C-contiguous float32 array; `rows` None takes every
    row of `vectors` in order. :func:`train_space_job` prepares a run's rows the same way in its
    nogil loop.

    >>> import numpy as np
    >>> space_rows(np.array([[3, 4], [0, 0]], np.float32), [1, 0], np.zeros(2, np.float32)).tolist()
    [[0.0, 0.0], [0.6000000238418579, 0.800000011920929]]
    """
    cdef int F = vectors.shape[1]
    if mean.shape[0] != F:
        raise ValueError(f"space_rows: mean has {mean.shape[0]} entries for {F}-d rows")
    idx_arr = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
    cdef Py_ssize_t n = vectors.shape[0] if idx_arr is None else idx_arr.shape[0]
    if idx_arr is not None and n and (idx_arr.min() < 0 or idx_arr.max() >= vectors.shape[0]):
        raise ValueError(f"space_rows: a row index outside 0..{vectors.shape[0] - 1}")
    out = np.empty((n, F), np.float32)
    if n == 0:
        return out
    cdef REAL_t[:, ::1] o = out
    cdef const int64_t[::1] r
    cdef const int64_t *rp = NULL
    if idx_arr is not None:
        r = idx_arr
        rp = &r[0]
    with nogil:
        _space_rows(&vectors[0, 0], rp, n, F, &mean[0], normalize, &o[0, 0])
    return out


cdef inline void _draw_from_seed(const int32_t *idx, const uint32_t *cum, const int32_t *guide, int shift,
                                 uint64_t total, uint64_t seed, int n, int64_t *out) noexcept nogil:
    """`n` draws from the table (`idx`, `cum`, its guide) walking the kernel's generator from
    `seed`: the space negatives of one run, for :func:`draw_negatives` and the job's plan alike."""
    cdef int j
    for j in range(n):
        seed = lcg_next(seed)
        out[j] = idx[guided_search(cum, guide, shift, (seed >> 16) % total)]


def draw_negatives(const int32_t[::1] idx, const uint32_t[::1] cum, const uint64_t[::1] seeds, int n):
    """`n` draws from the table (`idx`, `cum`) for each seed: row k of the result (int64,
    ``len(seeds) × n``) walks the kernel's generator from ``seeds[k]``, each draw the first entry
    whose ``cum`` exceeds the draw (the kernel's own guided search). The space step's negatives:
    a NumPy Generator per run cost ~18% of a worker's time under the GIL.

    >>> import numpy as np
    >>> out = draw_negatives(np.array([7, 9], np.int32), np.array([1, 4], np.uint32), np.arange(3, dtype=np.uint64), 50)
    >>> out.shape, sorted(set(out.ravel().tolist()))
    ((3, 50), [7, 9])
    """
    cdef Py_ssize_t m = seeds.shape[0], k
    cdef int shift
    cdef uint64_t total
    if idx.shape[0] != cum.shape[0]:
        raise ValueError("draw_negatives: idx and cum differ in length")
    out = np.zeros((m, n if idx.shape[0] else 0), np.int64)
    if idx.shape[0] == 0 or n <= 0 or m == 0:
        return out
    guide_arr, shift = _guide_for(cum)
    cdef const int32_t[::1] guide = guide_arr
    cdef int64_t[:, ::1] o = out
    total = cum[cum.shape[0] - 1]
    if total == 0:
        raise ValueError("draw_negatives: the table's weights sum to 0")
    with nogil:
        for k in range(m):
            _draw_from_seed(&idx[0], &cum[0], &guide[0], shift, total, seeds[k], n, &o[k, 0])
    return out


# ============================================================================ a job's plan, GIL released
cdef int _cmp_i64(const void *a, const void *b) noexcept nogil:
    cdef int64_t x = (<const int64_t *>a)[0], y = (<const int64_t *>b)[0]
    return (x > y) - (x < y)


cdef Py_ssize_t _sort_unique(int64_t *a, Py_ssize_t n) noexcept nogil:
    """Sort `a` in place and drop repeats; return how many distinct values remain."""
    cdef Py_ssize_t i, m = 0
    if n == 0:
        return 0
    qsort(a, n, sizeof(int64_t), _cmp_i64)
    for i in range(1, n):
        if a[i] != a[m]:
            m += 1
            a[m] = a[i]
    return m + 1


cdef Py_ssize_t _find(const int64_t *a, Py_ssize_t n, int64_t x) noexcept nogil:
    """Index of `x` in the sorted `a` (x present)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef struct Plan:
    # inputs
    const int32_t *tokens
    const int32_t *slots
    const int32_t *bounds
    const int64_t *runs     # (n_runs + 1) x 3: first token, first bound, first row of each run
    int n_runs
    int64_t n_vocab
    const REAL_t *word_lock
    const int32_t *neg_idx
    const uint32_t *neg_cum
    const int32_t *neg_guide
    int neg_shift
    uint64_t neg_total
    int n_neg
    const uint64_t *neg_seeds
    # outputs (sized by the caller from upper bounds)
    int64_t *image_slots
    int64_t *run_rows
    int64_t *cand
    int64_t *run_cands
    int32_t *run_move
    REAL_t *cand_lock
    int32_t *pair_row
    int32_t *pair_col
    REAL_t *pair_w
    int64_t *run_pairs
    # scratch, each as long as a run's pair keys plus its negatives
    int64_t *keys     # a run's (slot, word) keys
    int64_t *words    # its candidate words, sorted
    int64_t *place    # each sorted candidate's place in the movable-first order


cdef Py_ssize_t _run_pair_keys(Plan *p, int r) noexcept nogil:
    """Every (slot, word) key ``slot * n_vocab + word`` of run r: each image of a chunk with each
    word of the chunk, sorted, once each."""
    cdef Py_ssize_t n = 0, b, i, j
    cdef int64_t b0 = p.runs[3 * r + 1], b1 = p.runs[3 * (r + 1) + 1]
    for b in range(b0, b1):
        for i in range(p.bounds[b], p.bounds[b + 1]):
            if p.slots[i] < 0:
                continue
            for j in range(p.bounds[b], p.bounds[b + 1]):
                if p.slots[j] < 0:
                    p.keys[n] = <int64_t>p.slots[i] * p.n_vocab + p.tokens[j]
                    n += 1
    return _sort_unique(p.keys, n)


cdef Py_ssize_t _run_rows(Plan *p, int r, Py_ssize_t n_keys, Py_ssize_t n_rows, Py_ssize_t n_pairs) noexcept nogil:
    """Run r's images with a word (rows, in slot order) and its pairs' rows and target masses
    (1 / the image's word count); returns the job's row count after the run."""
    cdef Py_ssize_t k, m, first = n_pairs
    cdef int64_t slot, prev = -1
    cdef int32_t row = -1
    for k in range(n_keys + 1):
        slot = p.keys[k] // p.n_vocab if k < n_keys else -2
        if slot != prev:
            for m in range(first, n_pairs + k):  # close the previous image
                p.pair_w[m] = <REAL_t>(1.0 / (n_pairs + k - first))
            if k == n_keys:
                break
            row += 1
            first = n_pairs + k
            p.image_slots[n_rows + row] = p.runs[3 * r + 2] + slot
            prev = slot
        p.pair_row[n_pairs + k] = row
    return n_rows + row + 1


cdef Py_ssize_t _run_candidates(Plan *p, int r, Py_ssize_t n_keys, Py_ssize_t at) noexcept nogil:
    """Run r's candidates from `at` on: its pairs' words and, when it has pairs, its negatives,
    once each in word order, the movable ones (lock > 0) first; their count in ``run_move[r]``."""
    cdef Py_ssize_t k, n = 0, moving = 0, still
    for k in range(n_keys):
        p.words[n] = p.keys[k] % p.n_vocab
        n += 1
    if n_keys and p.n_neg > 0 and p.neg_total > 0:  # draw_negatives' draws from the run's seed
        _draw_from_seed(p.neg_idx, p.neg_cum, p.neg_guide, p.neg_shift, p.neg_total, p.neg_seeds[r], p.n_neg,
                        p.words + n)
        n += p.n_neg
    n = _sort_unique(p.words, n)
    for k in range(n):
        if p.word_lock[p.words[k]] > 0:
            moving += 1
    still = moving
    moving = 0
    for k in range(n):
        if p.word_lock[p.words[k]] > 0:
            p.place[k] = moving
            moving += 1
        else:
            p.place[k] = still
            still += 1
        p.cand[at + p.place[k]] = p.words[k]
        p.cand_lock[at + p.place[k]] = p.word_lock[p.words[k]]
    p.run_move[r] = <int32_t>moving
    return n


cdef void _plan_job(Plan *p) noexcept nogil:
    """:func:`gensim_im2vec.space.run_pairs` and :func:`gensim_im2vec.space.job_candidates` for
    every run of a job (see :func:`plan_space_job`)."""
    cdef int r
    cdef Py_ssize_t n_keys, k, n_cand, n_rows = 0, n_pairs = 0, n_cands = 0
    p.run_rows[0] = p.run_cands[0] = p.run_pairs[0] = 0
    for r in range(p.n_runs):
        n_keys = _run_pair_keys(p, r)
        n_rows = _run_rows(p, r, n_keys, n_rows, n_pairs)
        n_cand = _run_candidates(p, r, n_keys, n_cands)
        for k in range(n_keys):  # each pair's column: its word's place among the run's candidates
            p.pair_col[n_pairs + k] = <int32_t>p.place[_find(p.words, n_cand, p.keys[k] % p.n_vocab)]
        n_pairs += n_keys
        n_cands += n_cand
        p.run_rows[r + 1] = n_rows
        p.run_cands[r + 1] = n_cands
        p.run_pairs[r + 1] = n_pairs


def plan_space_job(const int32_t[::1] tokens, const int32_t[::1] slots, const int32_t[::1] bounds,
                   const int64_t[:, ::1] runs, int64_t n_vocab, const REAL_t[::1] word_lock,
                   const int32_t[::1] neg_idx, const uint32_t[::1] neg_cum, const uint64_t[::1] neg_seeds,
                   int n_neg):
    """What :func:`train_space_job` reads for a prepared job (:func:`prepare_job`'s tokens, run-local
    slots, bounds and runs), planned with the GIL released: per run, every (image, word) pair of
    its chunks once (:func:`gensim_im2vec.space.run_pairs`), its images with a word, and its
    candidates: the pairs' words plus, for a run with pairs, `n_neg` negatives drawn from
    (`neg_idx`, `neg_cum`) by the kernel's generator from ``neg_seeds[r]`` (as
    :func:`draw_negatives`), once each in word order, the words `word_lock` lets move first
    (:func:`gensim_im2vec.space.job_candidates`, the NumPy reference, gives the same arrays).

    Returns ``(image_slots, run_rows, cand, run_cands, run_move, cand_lock, pair_row, pair_col,
    pair_w, run_pairs)``, the fields of :class:`gensim_im2vec.space.JobPlan`.
    """
    cdef Plan p
    cdef int n_runs = runs.shape[0] - 1
    cdef Py_ssize_t n = tokens.shape[0], b, i, j, n_img, n_word, bound = 0, most = 0, in_run
    cdef int r
    if runs.shape[1] != 3 or n_runs < 0 or neg_seeds.shape[0] < n_runs:
        raise ValueError("plan_space_job: runs must be (n_runs + 1) x 3, with a negatives' seed per run")
    if slots.shape[0] != n or word_lock.shape[0] != n_vocab or neg_idx.shape[0] != neg_cum.shape[0]:
        raise ValueError("plan_space_job: tokens, slots, word_lock or the negatives' table disagree in length")
    if n and (np.asarray(tokens).min() < 0 or np.asarray(tokens).max() >= n_vocab):
        raise ValueError("plan_space_job: a token outside the vocabulary")
    rb = np.asarray(runs)[:, 1]
    if n_runs and (rb[0] != 0 or np.any(np.diff(rb) < 0) or rb[n_runs] > bounds.shape[0] - 1):
        raise ValueError("plan_space_job: runs' bounds out of order or range")
    if bounds.shape[0] and (bounds[0] != 0 or bounds[bounds.shape[0] - 1] != n or np.any(np.diff(bounds) < 0)):
        raise ValueError("plan_space_job: bounds must run from 0 to len(tokens) in order")
    with nogil:
        for r in range(n_runs):  # upper bounds: pairs per run (images x words per chunk) and in all
            in_run = 0
            for b in range(runs[r, 1], runs[r + 1, 1]):
                n_img = n_word = 0
                for i in range(bounds[b], bounds[b + 1]):
                    if slots[i] >= 0:
                        n_img += 1
                    else:
                        n_word += 1
                in_run += n_img * n_word
            bound += in_run
            most = max(most, in_run)
    n_cand_max = bound + n_runs * max(n_neg, 0)
    out = dict(image_slots=np.empty(max(n, 1), np.int64), run_rows=np.empty(n_runs + 1, np.int64),
               cand=np.empty(max(n_cand_max, 1), np.int64), run_cands=np.empty(n_runs + 1, np.int64),
               run_move=np.zeros(max(n_runs, 1), np.int32), cand_lock=np.empty(max(n_cand_max, 1), np.float32),
               pair_row=np.empty(max(bound, 1), np.int32), pair_col=np.empty(max(bound, 1), np.int32),
               pair_w=np.empty(max(bound, 1), np.float32), run_pairs=np.empty(n_runs + 1, np.int64))
    scratch = np.empty((3, max(most + max(n_neg, 0), 1)), np.int64)
    guide_arr, shift = _guide_for(neg_cum)
    cdef const int32_t[::1] guide = guide_arr
    cdef int64_t[::1] o_slots = out["image_slots"], o_rrows = out["run_rows"], o_cand = out["cand"]
    cdef int64_t[::1] o_rc = out["run_cands"], o_rp = out["run_pairs"]
    cdef int32_t[::1] o_move = out["run_move"], o_prow = out["pair_row"], o_pcol = out["pair_col"]
    cdef REAL_t[::1] o_lock = out["cand_lock"], o_pw = out["pair_w"]
    cdef int64_t[:, ::1] sc = scratch
    p.tokens = &tokens[0] if n else NULL
    p.slots = &slots[0] if n else NULL
    p.bounds = &bounds[0] if bounds.shape[0] else NULL
    p.runs, p.n_runs, p.n_vocab = &runs[0, 0], n_runs, n_vocab
    p.word_lock = &word_lock[0] if n_vocab else NULL
    p.n_neg = max(n_neg, 0) if neg_idx.shape[0] else 0
    p.neg_idx = &neg_idx[0] if neg_idx.shape[0] else NULL
    p.neg_cum = &neg_cum[0] if neg_cum.shape[0] else NULL
    p.neg_total = neg_cum[neg_cum.shape[0] - 1] if neg_cum.shape[0] else 0
    p.neg_guide, p.neg_shift = &guide[0], shift
    p.neg_seeds = &neg_seeds[0] if neg_seeds.shape[0] else NULL
    p.image_slots, p.run_rows, p.cand, p.run_cands = &o_slots[0], &o_rrows[0], &o_cand[0], &o_rc[0]
    p.run_move, p.cand_lock, p.pair_row, p.pair_col = &o_move[0], &o_lock[0], &o_prow[0], &o_pcol[0]
    p.pair_w, p.run_pairs = &o_pw[0], &o_rp[0]
    p.keys, p.words, p.place = &sc[0, 0], &sc[1, 0], &sc[2, 0]
    with nogil:
        _plan_job(&p)
    n_rows, n_cands, n_pairs = o_rrows[n_runs], o_rc[n_runs], o_rp[n_runs]
    return (out["image_slots"][:n_rows], out["run_rows"], out["cand"][:n_cands], out["run_cands"],
            out["run_move"][:n_runs], out["cand_lock"][:n_cands], out["pair_row"][:n_pairs],
            out["pair_col"][:n_pairs], out["pair_w"][:n_pairs], out["run_pairs"])


# ============================================================================ a whole job, GIL released
def _check_runs(rb, rr, rc, rp, move, pair_row, pair_col, cand, lock, n_bounds, n_rows, n_vocab):
    """Refuse per-run arrays the nogil loop would read out of bounds; return the largest run's
    (rows, candidates, pairs)."""
    n = len(rb) - 1
    for a in (rb, rr, rc, rp):
        if len(a) != n + 1 or a[0] < 0 or np.any(np.diff(a) < 0):
            raise ValueError("train_space_job: run bounds out of order")
    if rb[n] > n_bounds - 1 or rr[n] > n_rows or rc[n] > len(cand) or rp[n] > len(pair_row) or len(move) != n:
        raise ValueError("train_space_job: run bounds out of range")
    if len(cand) and (cand.min() < 0 or cand.max() >= n_vocab):
        raise ValueError("train_space_job: candidate index outside the vocabulary")
    sizes = np.diff(rr), np.diff(rc), np.diff(rp)
    # vectorised over the job's pairs and candidates: no Python loop per run under the GIL
    run_of_pair = np.repeat(np.arange(n), sizes[2])
    rows, cols = pair_row[rp[0]:rp[n]], pair_col[rp[0]:rp[n]]
    bad_pair = (rows < 0) | (rows >= sizes[0][run_of_pair]) | (cols < 0) | (cols >= sizes[1][run_of_pair])
    bad_pair[1:] |= (np.diff(rows) < 0) & (run_of_pair[1:] == run_of_pair[:-1])
    cand_run = np.repeat(np.arange(n), sizes[1])
    beyond = (np.arange(rc[n] - rc[0]) - (rc[cand_run] - rc[0]) >= move[cand_run]) & (lock[rc[0]:rc[n]] > 0)
    bad_move = (move < 0) | (move > sizes[1])
    bad_move[cand_run[beyond]] = True
    first_pair = int(run_of_pair[bad_pair.argmax()]) if bad_pair.any() else n
    first_move = int(bad_move.argmax()) if bad_move.any() else n
    if first_pair < n and first_pair <= first_move:
        raise ValueError(f"train_space_job: run {first_pair}'s pairs index outside its rows or candidates")
    if first_move < n:
        raise ValueError(f"train_space_job: run {first_move} has a candidate beyond run_move with a lock > 0")
    return tuple(int(x.max()) if n else 0 for x in sizes)


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


cdef class FoldLock:
    """A lock the kernel takes with the GIL released: :class:`gensim_im2vec.space.WorkerW`'s, held
    while a worker adds its change to the shared ``W`` (:func:`fold_w`). Also a context manager."""
    cdef PyThread_type_lock handle

    def __cinit__(self):
        self.handle = PyThread_allocate_lock()
        if self.handle == NULL:
            raise MemoryError("FoldLock: the system gave no lock")

    def __dealloc__(self):
        if self.handle != NULL:
            PyThread_free_lock(self.handle)

    def __enter__(self):
        with nogil:
            PyThread_acquire_lock(self.handle, WAIT_LOCK)
        return self

    def __exit__(self, *exc):
        PyThread_release_lock(self.handle)
        return False


cdef void _fold_w(REAL_t *shared, REAL_t *mine, REAL_t *base, Py_ssize_t n,
                  PyThread_type_lock lock) noexcept nogil:
    """``shared += mine − base`` under `lock`, then ``mine = base = shared``: a worker's change since
    its last fold lands in the shared ``W``, and its copy takes the other workers' changes."""
    cdef Py_ssize_t i
    for i in range(n):
        base[i] = mine[i] - base[i]
    PyThread_acquire_lock(lock, WAIT_LOCK)
    for i in range(n):
        shared[i] += base[i]
    memcpy(mine, shared, n * sizeof(REAL_t))
    PyThread_release_lock(lock)
    memcpy(base, mine, n * sizeof(REAL_t))


cdef void _refresh_w(const REAL_t *shared, REAL_t *mine, REAL_t *base, Py_ssize_t n,
                     PyThread_type_lock lock) noexcept nogil:
    """``mine = base = shared`` (read under `lock`): a worker's copy takes the other workers'
    changes before its run reads it."""
    PyThread_acquire_lock(lock, WAIT_LOCK)
    memcpy(mine, shared, n * sizeof(REAL_t))
    PyThread_release_lock(lock)
    memcpy(base, mine, n * sizeof(REAL_t))


cdef int _check_fold(object shared, object mine, object base, object lock, str who) except -1:
    if not (shared.shape[0] == mine.shape[0] == base.shape[0] and shared.shape[1] == mine.shape[1] == base.shape[1]):
        raise ValueError(f"{who}: the shared W, the worker's copy and its base differ in shape")
    if lock is None:
        raise ValueError(f"{who}: a shared W needs its FoldLock")
    if np.shares_memory(np.asarray(shared), np.asarray(mine)) or np.shares_memory(np.asarray(mine), np.asarray(base)):
        raise ValueError(f"{who}: the worker's copy of W must be its own array, not the shared W or its base")
    return 0


def fold_w(REAL_t[:, ::1] shared, REAL_t[:, ::1] mine, REAL_t[:, ::1] base, FoldLock lock):
    """Add what a worker changed in its copy `mine` since `base` to `shared` under `lock`, then set
    ``mine`` and ``base`` to the shared ``W`` (:class:`gensim_im2vec.space.WorkerW`)."""
    _check_fold(shared, mine, base, lock, "fold_w")
    with nogil:
        _fold_w(&shared[0, 0], &mine[0, 0], &base[0, 0], shared.shape[0] * shared.shape[1], lock.handle)


def train_space_job(REAL_t[:, ::1] syn0, REAL_t[:, ::1] syn1neg, const REAL_t[::1] lockf, REAL_t[:, ::1] W,
                    const int32_t[::1] tokens, const int32_t[::1] slots, const int32_t[::1] bounds,
                    const int32_t[::1] rwin, const int32_t[::1] wneg_idx, const uint32_t[::1] wneg_cum,
                    const int32_t[::1] tneg_idx, const uint32_t[::1] tneg_cum, REAL_t[::1] work, REAL_t[::1] neu1,
                    const int64_t[::1] run_bounds, const uint64_t[::1] run_seeds,
                    const REAL_t[:, ::1] X, const int64_t[::1] run_rows, const int64_t[::1] x_rows,
                    const REAL_t[::1] x_mean, const int64_t[::1] cand, const int64_t[::1] run_cands, const int32_t[::1] run_move,
                    const int32_t[::1] pair_row, const int32_t[::1] pair_col, const REAL_t[::1] pair_w,
                    const int64_t[::1] run_pairs, const REAL_t[::1] cand_lock, const REAL_t[:, ::1] anchor,
                    *, int sg, int window, int negative, int cbow_mean, float alpha,
                    bint train_words, bint train_outputs, bint tag_negatives, bint compute_loss,
                    bint train_images, float alpha_w, float temperature, float alpha_u, float pull,
                    bint x_normalize=True, float decoder=0.0, const REAL_t[::1] bias=None,
                    REAL_t[:, ::1] w_shared=None, REAL_t[:, ::1] w_base=None, FoldLock fold_lock=None):
    """Train one prepared job of the space head, every run in one call with the GIL released:
    per run, the words' pair loop over the run's chunks (images skipped, as ``train_job`` with
    ``image_pairs=False``), then the run's space step (:func:`space_job`) and ``W``'s update, in
    place: with several workers `W` is the worker's own copy for the job (``space.WorkerW``).
    Returns ``(words_loss, space_loss, space_seconds)``.

    Run ``r`` covers chunks ``run_bounds[r]..run_bounds[r+1]`` of `bounds`, seeds its pair loop
    with ``run_seeds[r]``, and owns rows ``run_rows[r]..`` of ``X`` (its images with a word, in
    slot order), candidates ``run_cands[r]..`` of `cand` (all shared; the first ``run_move[r]``
    may move) and pairs ``run_pairs[r]..`` (row and column local to the run).

    With `x_rows` empty, ``X`` holds those rows ready (:func:`space_rows`). Otherwise ``X`` is the
    feature matrix itself and row i of the job is ``X[x_rows[i]]``, which each run gathers,
    normalises (`x_normalize`) and centres (`x_mean`) into a buffer of its own, as
    :func:`space_rows` does, with the GIL released: prepared by NumPy for the whole job, the
    rows cost a worker four passes over them under the GIL and left the run's features out of
    cache by the time its sgemm read them.

    `decoder` > 0 adds the decoder term's step to W's (:func:`gensim_im2vec.space.space_step`):
    ``W += s · Cᵀ (X − C·W)``, ``C`` the images' mean unit words, ``s = 2 · alpha_w · decoder``
    capped at ``1 / tr(CᵀC)`` (a larger step diverges: :func:`gensim_im2vec.space.decoder_step_size`).

    `bias` (n_vocab,), optional: added to each candidate word's logit (``space_tag_prior``).

    `w_shared`, `w_base`, `fold_lock` (several workers): `W` is this worker's copy of `w_shared`;
    each run's space step reads the shared ``W`` as it is when the step begins, and its change is
    folded into `w_shared` when the step ends (:func:`fold_w`), so a step misses only the other
    workers' steps that ran beside it, as it would sharing ``W`` itself.
    """
    cdef Config c
    cdef SpaceConfig sc
    cdef int size = syn0.shape[1], F = X.shape[1], n_runs = run_seeds.shape[0]
    cdef int r, max_r, max_c, max_p
    cdef double space_seconds = 0.0, words_loss = 0.0, space_loss = 0.0, t0
    cdef REAL_t step_w = -alpha_w
    cdef REAL_t step_dec = 2.0 * alpha_w * decoder
    cdef REAL_t step_run, trace
    cdef bint decode = train_images and alpha_w > 0 and decoder > 0
    if W.shape[0] != size or W.shape[1] != F:
        raise ValueError("train_space_job: W, X and syn0 do not agree in shape")
    if (run_bounds.shape[0] != n_runs + 1 or run_rows.shape[0] != n_runs + 1 or run_cands.shape[0] != n_runs + 1
            or run_pairs.shape[0] != n_runs + 1 or run_move.shape[0] != n_runs):
        raise ValueError("train_space_job: per-run arrays do not match the number of runs")
    if (pair_col.shape[0] != pair_row.shape[0] or pair_w.shape[0] != pair_row.shape[0]
            or cand_lock.shape[0] != cand.shape[0]):
        raise ValueError("train_space_job: pair and candidate arrays differ in length")
    if anchor.shape[0] > 0 and anchor.shape[1] != size:
        raise ValueError("train_space_job: anchor has the wrong vector size")
    if bias is not None and bias.shape[0] != syn0.shape[0]:
        raise ValueError(f"train_space_job: bias has {bias.shape[0]} entries for {syn0.shape[0]} words")
    cdef bint fold = w_shared is not None
    if fold:
        if w_base is None:
            raise ValueError("train_space_job: w_shared without w_base")
        _check_fold(w_shared, W, w_base, fold_lock, "train_space_job")
    cdef PyThread_type_lock fold_handle = fold_lock.handle if fold else NULL
    cdef REAL_t *shared_p = &w_shared[0, 0] if fold else NULL
    cdef REAL_t *base_p = &w_base[0, 0] if fold else NULL
    cdef Py_ssize_t w_len = <Py_ssize_t>size * F
    cdef bint gather = x_rows.shape[0] > 0
    if gather:
        if x_mean.shape[0] != F:
            raise ValueError(f"train_space_job: x_mean has {x_mean.shape[0]} entries for {F} features")
        if np.asarray(x_rows).min() < 0 or np.asarray(x_rows).max() >= X.shape[0]:
            raise ValueError("train_space_job: x_rows names a row outside X")
    max_r, max_c, max_p = _check_runs(np.asarray(run_bounds), np.asarray(run_rows), np.asarray(run_cands),
                                      np.asarray(run_pairs), np.asarray(run_move), np.asarray(pair_row),
                                      np.asarray(pair_col), np.asarray(cand), np.asarray(cand_lock),
                                      bounds.shape[0], x_rows.shape[0] if gather else X.shape[0], syn0.shape[0])
    keep = []  # the negative tables' guides, alive until the loop is done
    _word_config(&c, syn0, syn1neg, lockf, tokens, slots, bounds, rwin, wneg_idx, wneg_cum, tneg_idx, tneg_cum,
                 work, neu1, sg, window, negative, cbow_mean, alpha, train_words, train_outputs, tag_negatives,
                 compute_loss, 0, "train_space_job", keep)
    c.n_features, c.train_images, c.tied, c.per_pair = F, train_images, 0, 0
    c.output_head, c.input_head, c.image_pairs, c.image_alpha = 1, 0, 0, 1.0
    c.W, c.V, c.H, c.E, c.inv_norms, c.n_slots = NULL, NULL, NULL, NULL, NULL, 0
    c.doc_ctx, c.img_pos, c.img_bounds = 0, NULL, NULL
    ctx_arr = np.empty(2 * window + 1, dtype=np.int32)
    cdef int32_t[::1] ctx = ctx_arr
    c.ctx = &ctx[0]
    Z = np.empty((max(max_r, 1), size), np.float32)
    dZ = np.empty_like(Z)
    dH = np.empty_like(Z)
    hn = np.empty(max(max_r, 1), np.float32)
    Uh = np.empty((max(max_c, 1), size), np.float32)
    un = np.empty(max(max_c, 1), np.float32)
    dUh = np.empty_like(Uh)
    S = np.empty(max(max_r * max_c, 1), np.float32)
    ps = np.empty(max(max_p, 1), np.float32)
    xbuf = np.empty((max(max_r, 1) if gather else 1, F), np.float32)
    Cm = np.empty((max(max_r, 1) if decode else 1, size), np.float32)
    Res = np.empty((max(max_r, 1) if decode else 1, F), np.float32)
    cdef REAL_t[:, ::1] Z_v = Z, dZ_v = dZ, dH_v = dH, Uh_v = Uh, dUh_v = dUh, xbuf_v = xbuf, Cm_v = Cm, Res_v = Res
    cdef REAL_t[::1] hn_v = hn, un_v = un, ps_v = ps, S_v = S
    sc.F, sc.D, sc.compute_loss = F, size, compute_loss
    sc.inv_t, sc.alpha_u, sc.pull = 1.0 / temperature, alpha_u, pull
    sc.W, sc.syn0 = &W[0, 0], &syn0[0, 0]
    sc.anchor = &anchor[0, 0] if anchor.shape[0] > 0 else NULL
    sc.n_anchor = anchor.shape[0]
    sc.bias = &bias[0] if bias is not None else NULL
    sc.Z, sc.hn, sc.Uh, sc.un, sc.S, sc.ps = &Z_v[0, 0], &hn_v[0], &Uh_v[0, 0], &un_v[0], &S_v[0], &ps_v[0]
    sc.dZ, sc.dH, sc.dUh = &dZ_v[0, 0], &dH_v[0, 0], &dUh_v[0, 0]
    with nogil:
        for r in range(n_runs):
            c.bounds = &bounds[run_bounds[r]]
            c.n_bounds = <int>(run_bounds[r + 1] - run_bounds[r]) + 1
            c.next_random = run_seeds[r]
            c.loss = 0.0
            if c.n_bounds > 1:
                if sg:
                    run_sg(&c)
                else:
                    run_cbow(&c)
            words_loss += c.loss
            sc.R = <int>(run_rows[r + 1] - run_rows[r])
            sc.P = <int>(run_pairs[r + 1] - run_pairs[r])
            if sc.R == 0 or sc.P == 0:
                continue
            t0 = _now()
            sc.C = <int>(run_cands[r + 1] - run_cands[r])
            sc.Ks = sc.C
            sc.Km = run_move[r]
            sc.words_move = alpha_u > 0 and sc.Km > 0
            if gather:
                _space_rows(&X[0, 0], &x_rows[run_rows[r]], sc.R, F, &x_mean[0], x_normalize, &xbuf_v[0, 0])
                sc.X = &xbuf_v[0, 0]
            else:
                sc.X = &X[run_rows[r], 0]
            sc.cand = &cand[run_cands[r]] if sc.C > 0 else NULL
            sc.lock = &cand_lock[run_cands[r]] if sc.C > 0 else NULL
            sc.pair_row, sc.pair_col, sc.pair_w = &pair_row[run_pairs[r]], &pair_col[run_pairs[r]], &pair_w[run_pairs[r]]
            sc.loss = 0.0
            if fold:  # this run's W: the shared W as it is now (the pair loop above took time)
                _refresh_w(shared_p, &W[0, 0], base_p, w_len, fold_handle)
            _space_forward(&sc)
            _space_softmax(&sc)
            _space_backward(&sc)
            space_loss += sc.loss
            if decode:  # the step at most 1 / tr(CᵀC): every eigenvalue of I − step·CᵀC stays in (−1, 1]
                trace = _decoder_residual(&sc, &W[0, 0], &Cm_v[0, 0], &Res_v[0, 0])
                step_run = step_dec if step_dec * trace <= 1.0 else 1.0 / trace
            if train_images and alpha_w > 0:
                sgemm(b"N", b"T", &F, &size, &sc.R, &step_w, <REAL_t *>sc.X, &F, sc.dH, &size, &ONEF,
                      &W[0, 0], &F)
                if decode:
                    sgemm(b"N", b"T", &F, &size, &sc.R, &step_run, &Res_v[0, 0], &F, &Cm_v[0, 0], &size, &ONEF,
                          &W[0, 0], &F)
                if fold:
                    _fold_w(shared_p, &W[0, 0], base_p, w_len, fold_handle)
            space_seconds += _now() - t0
    return words_loss, space_loss, space_seconds
