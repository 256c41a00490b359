"""The kernel against a NumPy reference of the same update, pair by pair.

The reference re-implements the documented semantics independently (context = input, centre =
positive output row, negatives from the cumulative tables with the same LCG draws, H = V·Wᵀ once
per job, W += image_alpha·Eᵀ·V at the end) in float64; one job through the compiled kernel must
change W, syn1neg and the word vectors exactly as it does (float tolerance).
"""

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec import im2vec_inner as K

MASK48 = (1 << 48) - 1


def lcg(r):
    return (r * 25214903917 + 11) & MASK48


def draw(idx, cum, r):
    r = lcg(r)
    x = (r >> 16) % int(cum[-1])
    k = int(np.searchsorted(cum, x, side="right"))
    return int(idx[k]), r


def reference_job(syn0, syn1, W, V, lockf, tokens, slots, bounds, tables, p, next_random):
    """Float64 reference of one job. Returns (syn0, syn1, W, loss)."""
    syn0, syn1, W, V = (a.astype(np.float64).copy() for a in (syn0, syn1, W, V))
    (widx, wcum), (tidx, tcum) = tables
    H = V @ W.T
    E = np.zeros_like(H)
    loss = 0.0
    r = next_random

    def neg_loop(l1, target, tslot, use_tags):
        nonlocal r, loss
        work = np.zeros_like(l1)
        for d in range(p["negative"] + 1):
            if d == 0:
                label = 1.0
                out = H[tslot] if tslot >= 0 else syn1[target]
                w = target
            else:
                if use_tags and len(tidx):
                    w, r = draw(tidx, tcum, r)
                else:
                    w, r = draw(widx, wcum, r)
                if w == target:
                    continue
                label = 0.0
                out = syn1[w]
            f = float(l1 @ out)
            loss += np.logaddexp(0, -f) if d == 0 else np.logaddexp(0, f)
            if abs(f) >= 6:  # gensim's MAX_EXP: a saturated term makes no update
                continue
            g = (label - 1.0 / (1.0 + np.exp(-f))) * p["alpha"]
            work += g * out
            if d == 0 and tslot >= 0:
                if p["train_images"]:
                    E[tslot] += g * l1
            elif p["train_outputs"]:
                syn1[w] += g * l1  # out is a view into syn1
        return work

    def input_head(l1, target):
        nonlocal r, loss
        work = np.zeros_like(l1)
        for d in range(p["negative"] + 1):
            if d == 0:
                w, label = target, 1.0
            else:
                w, r = draw(tidx, tcum, r) if len(tidx) else draw(widx, wcum, r)
                if w == target:
                    continue
                label = 0.0
            f = float(l1 @ syn0[w])
            loss += np.logaddexp(0, -f) if d == 0 else np.logaddexp(0, f)
            if abs(f) >= 6:
                continue
            g = (label - 1.0 / (1.0 + np.exp(-f))) * p["alpha"]
            work += g * syn0[w]
            if p["train_words"]:
                syn0[w] += g * lockf[w % len(lockf)] * l1
        return work

    def apply(pos, grad):
        s = slots[pos]
        if s >= 0:
            if p["train_images"]:
                E[s] += grad
        elif p["train_words"]:
            w = tokens[pos]
            syn0[w] += lockf[w % len(lockf)] * grad

    def inp(pos):
        return H[slots[pos]].copy() if slots[pos] >= 0 else syn0[tokens[pos]].copy()

    image_pairs = p.get("image_pairs", True)  # False: images take no part in the pair loop
    for s in range(len(bounds) - 1):
        start, end = bounds[s], bounds[s + 1]
        for i in range(start, end):
            tslot = slots[i]
            if tslot >= 0 and not (p["tied"] and image_pairs):
                continue
            lo, hi = max(start, i - p["window"]), min(end, i + p["window"] + 1)
            ctx = [j for j in range(lo, hi) if j != i]
            if p.get("doc_ctx"):
                ctx += [j for j in range(start, end) if slots[j] >= 0 and j != i and not lo <= j < hi]
            if not image_pairs:
                ctx = [j for j in ctx if slots[j] < 0]
            if p["sg"]:
                for j in ctx:
                    image_input = slots[j] >= 0
                    work = np.zeros(syn0.shape[1])
                    if p.get("output_head", True) or not image_input:
                        work = neg_loop(inp(j), tokens[i], tslot, p["tag_negatives"] and image_input)
                    if p.get("input_head") and image_input and tslot < 0:
                        work = work + input_head(inp(j), tokens[i])
                    apply(j, work)
            else:
                if not ctx:
                    continue
                neu1 = sum(inp(j) for j in ctx)
                if p["cbow_mean"]:
                    neu1 = neu1 / len(ctx)
                has_img = any(slots[j] >= 0 for j in ctx)
                work = neg_loop(neu1, tokens[i], tslot, p["tag_negatives"] and has_img)
                if not p["cbow_mean"]:
                    work = work / len(ctx)
                for j in ctx:
                    apply(j, work)
    if p["train_images"] and image_pairs:
        W = W + p["image_alpha"] * E.T @ V
    return syn0, syn1, W, loss


def tiny_model(sg, tied, **kw):
    rng = np.random.default_rng(3)
    feats = {f"img:{i}": rng.normal(size=12).astype(np.float32) for i in range(4)}
    docs = [["img:0", "red", "car", "fast"], ["img:1", "dog", "park", "img:2"],
            ["the", "red", "dog", "runs", "fast"], ["img:3", "car", "dog"], ["park", "the", "car"]]
    model = Im2Vec(image_features=feats, vector_size=8, window=2, min_count=1, sample=0, sg=sg,
                   negative=3, shrink_windows=False, workers=1, seed=5, tied_image_targets=tied, **kw)
    model.build_vocab(docs)
    # non-trivial output vectors, so every term of the update is exercised
    model.syn1neg[:] = rng.normal(scale=0.3, size=model.syn1neg.shape)
    model.W[:] = rng.normal(scale=0.3, size=model.W.shape)
    return model, docs


def run_both(model, docs, cbow_mean=1, lockf=None, doc_ctx=False, heads="output"):
    wv = model.wv
    if lockf is not None:
        wv.vectors_lockf = lockf
    tokens, slots, bounds, rwin, rows, _, _ = K.prepare_job(
        docs, wv.key_to_index, wv.expandos["sample_int"], model._vocab_image_rows, False, model.window, False, 1)
    V = model.features.gather_normalized(rows)
    Vraw, inv_norms = model.features.gather(rows)
    np.testing.assert_allclose(Vraw * inv_norms[:, None], V, rtol=1e-6)
    p = dict(sg=model.sg, window=model.window, negative=model.negative, cbow_mean=cbow_mean, alpha=0.05,
             image_alpha=2.0, train_words=True, train_outputs=True, train_images=True,
             tied=model.tied_image_targets, tag_negatives=True, doc_ctx=doc_ctx,
             output_head=heads in ("output", "both"), input_head=heads in ("input", "both"))
    tables = ((model._neg_word_idx, model._neg_word_cum), (model._neg_tag_idx, model._neg_tag_cum))
    seed = 123456789
    ref = reference_job(wv.vectors, model.syn1neg, model.W, V, wv.vectors_lockf, tokens, slots, bounds, tables,
                        p, seed)
    syn0, syn1, W = wv.vectors.copy(), model.syn1neg.copy(), model.W.copy()
    H = np.empty((len(rows), model.layer1_size), np.float32)
    E = np.zeros_like(H)
    work = np.zeros(model.layer1_size, np.float32)
    neu1 = np.zeros(model.layer1_size, np.float32)
    loss, _ = K.train_job(syn0, syn1, wv.vectors_lockf, W, Vraw, inv_norms, H, E, tokens, slots, bounds, rwin,
                          tables[0][0], tables[0][1], tables[1][0], tables[1][1], work, neu1,
                          n_slots=len(rows), compute_loss=True, next_random=seed,
                          **{k: v for k, v in p.items() if k not in ("train_words", "doc_ctx")}, train_words=True,
                          image_context_document=doc_ctx)
    return (syn0, syn1, W, loss), ref, (wv.vectors, model.syn1neg, model.W)


@pytest.mark.parametrize("sg", [1, 0])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("doc_ctx", [False, True])
def test_one_job_matches_numpy_reference(sg, tied, doc_ctx):
    model, docs = tiny_model(sg, tied)
    docs = [d + ["the", "park", "red"] for d in docs]  # images also outside the window (window=2)
    (syn0, syn1, W, loss), (rsyn0, rsyn1, rW, rloss), before = run_both(model, docs, cbow_mean=1,
                                                                        doc_ctx=doc_ctx)
    # the update is not trivially zero...
    assert np.abs(rW - before[2]).max() > 1e-4
    assert np.abs(rsyn1 - before[1]).max() > 1e-4
    assert np.abs(rsyn0 - before[0]).max() > 1e-4
    # ...and the kernel does exactly that update
    np.testing.assert_allclose(W, rW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(syn1, rsyn1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(syn0, rsyn0, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(rloss, rel=1e-5)


@pytest.mark.parametrize("heads", ["input", "both"])
def test_input_head_matches_numpy_reference(heads):
    model, docs = tiny_model(1, False)
    lockf = np.linspace(0.2, 1, len(model.wv)).astype(np.float32)
    (syn0, syn1, W, loss), (rsyn0, rsyn1, rW, rloss), before = run_both(model, docs, lockf=lockf, heads=heads)
    assert np.abs(rW - before[2]).max() > 1e-4
    np.testing.assert_allclose(W, rW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(syn1, rsyn1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(syn0, rsyn0, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(rloss, rel=1e-5)


def test_cbow_sum_and_per_word_lockf_match_reference():
    model, docs = tiny_model(0, False)
    lockf = np.linspace(0, 1, len(model.wv)).astype(np.float32)
    (syn0, syn1, W, _), (rsyn0, rsyn1, rW, _), before = run_both(model, docs, cbow_mean=0, lockf=lockf)
    np.testing.assert_allclose(syn0, rsyn0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(W, rW, rtol=1e-4, atol=1e-6)
    frozen = model.wv.key_to_index[model.wv.index_to_key[0]]
    assert lockf[frozen] == 0 and np.array_equal(syn0[frozen], before[0][frozen])


def test_images_are_never_negatives_and_never_downsampled():
    model, _ = tiny_model(1, False)
    images = set(np.flatnonzero(model._vocab_image_rows >= 0))
    assert len(images) == 4
    assert not images & set(model._neg_word_idx.tolist())
    assert not images & set(model._neg_tag_idx.tolist())
    assert all(model.wv.expandos["sample_int"][i] == 2**32 - 1 for i in images)
    # the tag table holds exactly the words of image documents
    tags = {model.wv.index_to_key[i] for i in model._neg_tag_idx}
    assert tags == {"red", "car", "fast", "dog", "park"}


def test_cum_table_matches_formula():
    model, _ = tiny_model(1, False)
    counts = np.array([model.wv.get_vecattr(int(i), "count") for i in model._neg_word_idx], dtype=float)
    expected = np.cumsum(counts ** 0.75) / np.sum(counts ** 0.75) * (2**31 - 1)
    np.testing.assert_allclose(model._neg_word_cum, np.round(expected), atol=1)


def test_prepare_job_splits_long_documents_without_cutting():
    doc = [f"w{i % 7}" for i in range(25_000)]
    k2i = {f"w{i}": i for i in range(7)}
    tokens, slots, bounds, rwin, rows, _, _ = K.prepare_job(
        [doc, ["w1", "w2"]], k2i, np.full(7, 2**32 - 1, np.uint32), np.full(7, -1, np.int64), False, 5, True, 7)
    assert len(tokens) == 25_002  # nothing dropped
    assert list(bounds) == [0, 10_000, 20_000, 25_000, 25_002]
    assert rwin.min() >= 0 and rwin.max() < 5 and len(rows) == 0


def test_per_pair_reference_mode_equals_batched_for_a_single_image_pair():
    model, _ = tiny_model(1, False)
    docs = [["red", "img:0"]]
    wv = model.wv
    tokens, slots, bounds, rwin, rows, _, _ = K.prepare_job(
        docs, wv.key_to_index, wv.expandos["sample_int"], model._vocab_image_rows, False, 1, False, 1)
    V, inv = model.features.gather(rows)
    results = []
    for per_pair in (False, True):
        syn0, syn1, W = wv.vectors.copy(), model.syn1neg.copy(), model.W.copy()
        H = np.empty((1, 8), np.float32)
        E = np.zeros_like(H)
        K.train_job(syn0, syn1, wv.vectors_lockf, W, V, inv, H, E, tokens, slots, bounds, rwin,
                    model._neg_word_idx, model._neg_word_cum, model._neg_tag_idx, model._neg_tag_cum,
                    np.zeros(8, np.float32), np.zeros(8, np.float32), n_slots=1, sg=1, window=1, negative=3,
                    cbow_mean=1, alpha=0.05, image_alpha=2.0, train_words=True, train_outputs=True,
                    train_images=True, tied=False, tag_negatives=True, compute_loss=False, next_random=9,
                    per_pair=per_pair)
        results.append((W, syn1))
    assert not np.allclose(results[0][0], model.W)
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------- image_pairs=False (the space head)
def run_kernel(model, docs, *, window, image_pairs, cbow_mean=1, doc_ctx=False, seed=987654321):
    """One job through the kernel on copies of the model's arrays; H starts as NaN, so an image
    vector the kernel read without computing it would poison every update."""
    wv = model.wv
    tokens, slots, bounds, rwin, rows, _, _ = K.prepare_job(
        docs, wv.key_to_index, wv.expandos["sample_int"], model._vocab_image_rows, False, window, False, 1)
    size = model.layer1_size
    if len(rows):
        V, inv = model.features.gather(rows)
    else:  # as Im2Vec._train_run does for a run without images
        V, inv = np.zeros((1, model.W.shape[1]), np.float32), np.ones(1, np.float32)
    syn0, syn1, W = wv.vectors.copy(), model.syn1neg.copy(), model.W.copy()
    H = np.full((max(len(rows), 1), size), np.nan, np.float32)
    E = np.zeros_like(H)
    loss, next_random = K.train_job(
        syn0, syn1, wv.vectors_lockf, W, V, inv, H, E, tokens, slots, bounds, rwin,
        model._neg_word_idx, model._neg_word_cum, model._neg_tag_idx, model._neg_tag_cum,
        np.zeros(size, np.float32), np.zeros(size, np.float32), n_slots=len(rows), sg=model.sg, window=window,
        negative=model.negative, cbow_mean=cbow_mean, alpha=0.05, image_alpha=2.0, train_words=True,
        train_outputs=True, train_images=True, tied=model.tied_image_targets, tag_negatives=True,
        compute_loss=True, next_random=seed, image_context_document=doc_ctx, image_pairs=image_pairs)
    return syn0, syn1, W, E, loss, next_random, (tokens, slots, bounds, rows)


@pytest.mark.parametrize("sg", [1, 0])
@pytest.mark.parametrize("tied", [False, True])
def test_without_image_pairs_images_neither_train_nor_are_trained(sg, tied):
    """image_pairs=False: the word pairs are exactly those of the same job with the image tokens
    removed from the documents (a window spanning every document, so removing a token changes no
    word's context), the same negatives drawn in the same order; W, E and the images' rows stay."""
    model, docs = tiny_model(sg, tied)
    docs = [d + ["the", "park", "red"] for d in docs] + [["car", "img:0", "fast", "dog"]]
    images = np.flatnonzero(model._vocab_image_rows >= 0)
    syn0, syn1, W, E, loss, rnd, (_, slots, _, rows) = run_kernel(model, docs, window=10, image_pairs=False)
    assert len(rows) == 4 and np.count_nonzero(slots >= 0) == 5  # images in the job, one of them twice
    no_images = [[w for w in d if not w.startswith("img:")] for d in docs]
    wsyn0, wsyn1, wW, _, wloss, wrnd, _ = run_kernel(model, no_images, window=10, image_pairs=True)
    np.testing.assert_allclose(syn0, wsyn0, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(syn1, wsyn1, rtol=1e-6, atol=1e-7)
    assert loss == pytest.approx(wloss, rel=1e-6) and rnd == wrnd  # same pairs, same negative draws
    assert np.array_equal(W, model.W) and not E.any()  # W untouched, no image gradient collected
    assert np.array_equal(syn0[images], model.wv.vectors[images])  # the images' rows neither
    assert len(syn1) == images.min()  # images have no output rows at all (tied: an image is no target)
    assert np.all(np.isfinite(syn0)) and np.all(np.isfinite(syn1))  # H (NaN) was never read
    assert np.abs(syn0 - model.wv.vectors).max() > 1e-4  # the words did learn
    # with the images' pairs, the same job trains W and differs: the check above could fail
    isyn0, _, iW, _, iloss, _, _ = run_kernel(model, docs, window=10, image_pairs=True)
    assert not np.array_equal(iW, model.W) and np.abs(isyn0 - syn0).max() > 1e-4 and iloss != loss


@pytest.mark.parametrize("sg", [1, 0])
@pytest.mark.parametrize("doc_ctx", [False, True])
def test_without_image_pairs_a_small_window_matches_the_reference(sg, doc_ctx):
    """Within a window of 2 (removing an image would shift the windows), the kernel still does the
    reference's update with image centres and image contexts skipped."""
    model, docs = tiny_model(sg, False)
    docs = [d + ["the", "park", "red"] for d in docs]
    syn0, syn1, W, E, loss, _, (tokens, slots, bounds, rows) = run_kernel(model, docs, window=2, image_pairs=False,
                                                                         doc_ctx=doc_ctx, seed=123456789)
    p = dict(sg=sg, window=2, negative=model.negative, cbow_mean=1, alpha=0.05, image_alpha=2.0, train_words=True,
             train_outputs=True, train_images=True, tied=False, tag_negatives=True, doc_ctx=doc_ctx,
             image_pairs=False)
    tables = ((model._neg_word_idx, model._neg_word_cum), (model._neg_tag_idx, model._neg_tag_cum))
    V = model.features.gather_normalized(rows)
    rsyn0, rsyn1, rW, rloss = reference_job(model.wv.vectors, model.syn1neg, model.W, V, model.wv.vectors_lockf,
                                            tokens, slots, bounds, tables, p, 123456789)
    np.testing.assert_allclose(syn0, rsyn0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(syn1, rsyn1, rtol=1e-4, atol=1e-6)
    assert np.array_equal(W, model.W) and np.array_equal(rW, model.W)
    assert loss == pytest.approx(rloss, rel=1e-5)


def test_image_pairs_false_needs_no_head():
    model, docs = tiny_model(1, False)
    wv = model.wv
    tokens, slots, bounds, rwin, rows, _, _ = K.prepare_job(
        docs, wv.key_to_index, wv.expandos["sample_int"], model._vocab_image_rows, False, 2, False, 1)
    V, inv = model.features.gather(rows)
    args = (wv.vectors.copy(), model.syn1neg.copy(), wv.vectors_lockf, model.W.copy(), V, inv,
            np.zeros((len(rows), 8), np.float32), np.zeros((len(rows), 8), np.float32), tokens, slots, bounds, rwin,
            model._neg_word_idx, model._neg_word_cum, model._neg_tag_idx, model._neg_tag_cum,
            np.zeros(8, np.float32), np.zeros(8, np.float32))
    kw = dict(n_slots=len(rows), sg=1, window=2, negative=3, cbow_mean=1, alpha=0.05, image_alpha=1.0,
              train_words=True, train_outputs=True, train_images=True, tied=False, tag_negatives=True,
              compute_loss=False, next_random=1, output_head=False, input_head=False)
    K.train_job(*args, **kw, image_pairs=False)  # the space head trains images elsewhere: no head needed
    syn0, W = args[0], args[3]
    images = np.flatnonzero(model._vocab_image_rows >= 0)
    assert np.array_equal(W, model.W) and np.array_equal(syn0[images], model.wv.vectors[images])  # images: untouched
    assert np.abs(syn0 - model.wv.vectors).max() > 1e-4  # the words learned
    with pytest.raises(ValueError, match="at least one head"):
        K.train_job(*args, **kw, image_pairs=True)


def test_negative_guide_finds_the_same_entry_as_a_bisection_of_the_whole_table():
    """The kernel draws a negative as the first k with cum[k] > x, searching only the bucket of x
    that _neg_guide names (guided_search, run here through _guided_search_many): for every x it
    must be np.searchsorted(cum, x, side="right"), also with
    words of zero weight (equal neighbours in cum), one entry, and totals that are no power of 2."""
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 60))
        weights = rng.integers(0, 40, n).astype(np.uint64)
        weights[rng.random(n) < 0.2] = 0  # zero-weight words: repeated cumulative values
        weights[-1] = max(int(weights[-1]), 1)
        cum = np.cumsum(weights).astype(np.uint32)
        guide, shift = K._neg_guide(cum)
        assert len(guide) >= 2 and guide.max() <= n - 1
        xs = np.arange(int(cum[-1]), dtype=np.uint64)  # every value the draw can take
        np.testing.assert_array_equal(K._guided_search_many(cum, xs), np.searchsorted(cum, xs, side="right"),
                                      err_msg=f"trial {trial}: cum={cum.tolist()}")
    big = np.cumsum(rng.integers(1, 1000, 30_000)).astype(np.uint32)  # a vocabulary-sized table
    guide, _ = K._neg_guide(big)
    xs = rng.integers(0, int(big[-1]), 200_000).astype(np.uint64)
    np.testing.assert_array_equal(K._guided_search_many(big, xs), np.searchsorted(big, xs, side="right"))
    assert max(np.diff(guide)) <= 8  # the point of it: a bucket holds a few entries, not the table
    with pytest.raises(ValueError, match="cum"):
        K._guided_search_many(big, np.array([big[-1]], np.uint64))
