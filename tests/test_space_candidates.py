"""The space step's two candidate sets and W's update under several workers."""

import threading

import numpy as np
import pytest
from space_problem import tiny_run, train_synthetic

from gensim_im2vec.space import add_outer, space_step


def _problem(seed=0):
    # word 2 is image 0's and 1's own word and a negative too
    return tiny_run(seed, pair_word=(1, 2, 2, 5, 1, 7), negatives=(0, 2, 3, 4, 6, 8, 9, 10, 11))


def _loss(W, syn0, Vn, ps, pw, neg, candidates="own"):
    return space_step(W.copy(), syn0.copy(), Vn, ps, pw, neg, alpha_w=0.0, alpha_u=0.0, temperature=0.5,
                      candidates=candidates)


def _own_loss_by_hand(W, syn0, Vn, ps, pw, neg, t=0.5):
    """-Σ_i 1/|P_i| Σ_p log softmax over (P_i ∪ negatives \\ P_i) of cos/τ, written plainly."""
    H = Vn @ W.T
    unit = lambda x: x / np.linalg.norm(x)  # noqa: E731
    total = 0.0
    for i in np.unique(ps):
        own = set(pw[ps == i].tolist())
        words = sorted(own | set(neg.tolist()))
        s = np.array([unit(H[i]) @ unit(syn0[c]) / t for c in words])
        logp = s - np.log(np.exp(s).sum())
        total -= np.mean([logp[words.index(p)] for p in own])
    return total


def test_own_candidates_loss_is_each_image_against_its_words_and_the_negatives():
    W, syn0, Vn, ps, pw, neg = _problem()
    assert _loss(W, syn0, Vn, ps, pw, neg) == pytest.approx(_own_loss_by_hand(W, syn0, Vn, ps, pw, neg), rel=1e-9)
    # and it is not the run-wide softmax (other images' words are no negatives here)
    assert _loss(W, syn0, Vn, ps, pw, neg, "run") != pytest.approx(_loss(W, syn0, Vn, ps, pw, neg), rel=1e-3)


def test_own_candidates_W_and_word_steps_are_the_loss_gradient():
    W, syn0, Vn, ps, pw, neg = _problem(seed=3)
    a, eps = 1e-3, 1e-5
    W1, s1 = W.copy(), syn0.copy()
    space_step(W1, s1, Vn, ps, pw, neg, alpha_w=a, alpha_u=a, temperature=0.5, candidates="own")
    gW, gU = (W - W1) / a, (syn0 - s1) / a
    for (i, j) in [(0, 0), (2, 5), (5, 8)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        fd = (_loss(Wp, syn0, Vn, ps, pw, neg) - _loss(Wm, syn0, Vn, ps, pw, neg)) / (2 * eps)
        assert gW[i, j] == pytest.approx(fd, rel=1e-3, abs=1e-4)
    for (i, j) in [(1, 0), (2, 3), (7, 5), (0, 2), (11, 1)]:  # positives, a shared word, negatives
        sp, sm = syn0.copy(), syn0.copy()
        sp[i, j] += eps
        sm[i, j] -= eps
        fd = (_loss(W, sp, Vn, ps, pw, neg) - _loss(W, sm, Vn, ps, pw, neg)) / (2 * eps)
        assert gU[i, j] == pytest.approx(fd, rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("candidates", ["run", "own"])
def test_frozen_words_are_not_written(candidates):
    W, syn0, Vn, ps, pw, neg = _problem(seed=4)
    W, syn0, Vn = W.astype(np.float32), syn0.astype(np.float32), Vn.astype(np.float32)
    lock = np.zeros(len(syn0), np.float32)
    lock[7] = 1.0
    s1 = syn0.copy()
    space_step(W.copy(), s1, Vn, ps, pw, neg, alpha_w=0.1, alpha_u=0.1, temperature=0.5, word_lock=lock,
               candidates=candidates)
    changed = np.flatnonzero(np.any(s1 != syn0, axis=1)).tolist()
    assert changed == [7]


def test_own_candidates_rank_each_image_its_own_words_first_after_training():
    W, syn0, Vn, ps, pw, neg = _problem(seed=2)
    W, syn0, Vn = W.astype(np.float32), syn0.astype(np.float32), Vn.astype(np.float32)
    first = space_step(W.copy(), syn0.copy(), Vn, ps, pw, neg, alpha_w=0, alpha_u=0, temperature=0.5,
                       candidates="own")
    for _ in range(300):
        last = space_step(W, syn0, Vn, ps, pw, neg, alpha_w=0.05, alpha_u=0.05, temperature=0.5, candidates="own")
    assert last < 0.5 * first
    H = Vn @ W.T
    cos = (H / np.linalg.norm(H, axis=1, keepdims=True)) @ (syn0 / np.linalg.norm(syn0, axis=1, keepdims=True)).T
    for s in range(4):
        own = set(pw[ps == s].tolist())
        assert set(np.argsort(-cos[s])[: len(own)].tolist()) == own


def test_add_outer_is_the_numpy_formula_in_place():
    rng = np.random.default_rng(0)
    W = rng.random((5, 7), dtype=np.float32)
    dH, X = rng.random((3, 5), dtype=np.float32), rng.random((3, 7), dtype=np.float32)
    expected = W + 0.25 * dH.T @ X
    ref = W
    add_outer(W, dH, X, 0.25)
    assert W is ref
    np.testing.assert_allclose(W, expected, rtol=1e-6)
    W64 = W.astype(np.float64)
    add_outer(W64, dH.astype(np.float64), X.astype(np.float64), -0.25)
    np.testing.assert_allclose(W64, W - 0.25 * dH.T @ X, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("candidates", ["run", "own"])
@pytest.mark.parametrize("pull", [0.0, 0.7])
def test_kernel_equals_the_numpy_formulas(candidates, pull):
    rng = np.random.default_rng(5)
    D, F, V, B = 16, 40, 60, 12
    W = rng.normal(size=(D, F)).astype(np.float32)
    syn0 = rng.normal(size=(V, D)).astype(np.float32)
    Vn = rng.normal(size=(B, F)).astype(np.float32)
    ps = np.repeat(np.arange(0, B, 1), rng.integers(1, 4, B))  # every image has 1-3 words ...
    ps = ps[ps != 3]  # ... but image 3 has none
    key = np.unique(ps * V + rng.integers(0, V, len(ps)))
    ps, pw = key // V, key % V
    neg = rng.integers(0, V, 25)
    lock = (rng.random(V) > 0.3).astype(np.float32) * 0.5
    anchor = syn0[:30] + 0.1
    out = {}
    for kernel in (True, False):
        W1, s1 = W.copy(), syn0.copy()
        loss = space_step(W1, s1, Vn, ps, pw, neg, alpha_w=0.05, alpha_u=0.1, temperature=0.2, word_lock=lock,
                          anchor=anchor, pull=pull, candidates=candidates, kernel=kernel)
        out[kernel] = (loss, W1, s1)
    assert out[True][0] == pytest.approx(out[False][0], rel=1e-5)
    assert not np.allclose(out[True][1], W) and not np.allclose(out[True][2], syn0)  # both moved
    np.testing.assert_allclose(out[True][1], out[False][1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out[True][2], out[False][2], rtol=1e-4, atol=1e-6)


def test_kernel_refuses_pairs_that_index_outside_the_run():
    from gensim_im2vec import im2vec_inner

    z = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="sorted by row"):
        im2vec_inner.space_job(z, np.ones((3, 4), np.float32), np.ones((5, 3), np.float32),
                               np.array([0, 1], np.int64), 2, np.array([1, 0], np.int32), np.array([0, 1], np.int32),
                               np.ones(2, np.float32), np.ones(2, np.float32), np.zeros((0, 3), np.float32),
                               temperature=0.1, alpha_u=0.1, pull=0.0, words_move=True, compute_loss=True)


@pytest.mark.parametrize("sg", [1, 0])
@pytest.mark.parametrize("two_stage", [False, True])
@pytest.mark.parametrize("source", ["memory", "memmap float16"])
def test_a_job_in_one_kernel_call_trains_the_per_run_model_bit_for_bit(monkeypatch, tmp_path, sg, two_stage, source):
    """train_space_job (pairs, negatives and candidates planned for the whole job, every run in one
    nogil call) against the per-run path (_train_run → space_step's kernel): one worker, same seed.
    In memory, the kernel gathers and prepares each run's rows itself; from a float16 memory map,
    Python gathers them for the job (:meth:`Im2Vec._space_rows`)."""
    from gensim.models import Word2Vec

    from gensim_im2vec import Im2Vec
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=120, n_features=24, n_text_sentences=100, seed=0)
    docs = data.docs
    features = data.features
    if source != "memory":
        keys = list(data.features)
        np.save(tmp_path / "f.npy", np.stack([data.features[k] for k in keys]).astype(np.float16))
        features = (keys, np.load(tmp_path / "f.npy", mmap_mode="r"))

    def train(kernel_job):
        monkeypatch.setattr(Im2Vec, "_space_in_kernel", lambda self: kernel_job)
        kw = dict(image_features=features, vector_size=16, window=3, min_count=1, sg=sg, negative=3,
                  workers=1, epochs=3, seed=3, image_batch=16, space_negatives=20, batch_words=300,
                  compute_loss=True)
        if two_stage:
            w2v = Word2Vec([d for d in docs], vector_size=16, min_count=1, sg=sg, workers=1, epochs=2, seed=3)
            return Im2Vec.from_word2vec(w2v, sentences=docs, **{k: v for k, v in kw.items() if k != "vector_size"})
        return Im2Vec(docs, **kw)

    a, b = train(True), train(False)
    assert (a._space_source() is not None) == (source == "memory")
    assert a._image_occurrences == b._image_occurrences > 0
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    np.testing.assert_array_equal(a.syn1neg, b.syn1neg)
    assert a.get_latest_training_loss() == pytest.approx(b.get_latest_training_loss(), rel=1e-9)
    assert a.get_latest_training_loss() > 0


def test_train_space_job_refuses_runs_the_nogil_loop_would_read_out_of_bounds():
    from gensim_im2vec.im2vec_inner import _check_runs

    a = np.array
    # two runs: rows 0-1 / 2, candidates 0-2 / 3-4, pairs 0-2 / 3
    ok = dict(rb=a([0, 1, 2]), rr=a([0, 2, 3]), rc=a([0, 3, 5]), rp=a([0, 3, 4]), move=a([1, 0]),
              pair_row=a([0, 1, 1, 0]), pair_col=a([0, 2, 1, 1]), cand=a([4, 5, 6, 7, 8]),
              lock=a([1, 0, 0, 0, 0], np.float32), n_bounds=3, n_rows=3, n_vocab=9)
    assert _check_runs(**ok) == (2, 3, 3)
    for change, message in ((dict(pair_row=a([0, 1, 1, 1])), "run 1's pairs"),  # run 1 has one row
                            (dict(pair_col=a([0, 3, 1, 1])), "run 0's pairs"),  # run 0 has 3 candidates
                            (dict(pair_row=a([1, 0, 1, 0])), "run 0's pairs"),  # not sorted by row
                            (dict(lock=a([1, 0, 0, 0, 1], np.float32)), "run 1 has a candidate beyond"),
                            (dict(move=a([4, 0])), "run 0 has a candidate beyond")):
        with pytest.raises(ValueError, match=message):
            _check_runs(**{**ok, **change})


def test_worker_copies_of_w_lose_no_update():
    """Four threads, each 50 jobs on its own copy of W (WorkerW.begin / end) at once: every job's
    change reaches the shared W, so its sum is exactly the sum of all the jobs' changes."""
    from gensim_im2vec.space import WorkerW

    W = np.zeros((8, 5), np.float32)
    shared = WorkerW(W)
    barrier = threading.Barrier(4)

    def worker(k):
        barrier.wait()
        for _ in range(50):
            mine = shared.begin()
            mine += np.float32(k + 1)  # a job's updates: 40 entries of k + 1
            shared.end()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(W, np.full((8, 5), 50 * (1 + 2 + 3 + 4), np.float32))


@pytest.mark.parametrize("options", [dict(), dict(space_candidates="own")])
def test_a_workers_run_reads_the_shared_w_as_it_is_when_the_run_begins(monkeypatch, options):
    """Another worker's change folded into the shared W after this worker's job began (E, added
    just after its copy) is in the W every run of the job trains from: the job ends where the
    same job on one worker ends from W + E. Copied once per job, the job trained from the W it
    began with, so that two workers on a few jobs an epoch summed two stale steps (the 2-worker
    models of test_corpus_file put a median 0.895 of held-out images at their class word over
    150 runs, against 0.95-0.96 now and with W shared directly)."""
    import gensim_im2vec.model as M
    from gensim_im2vec.space import WorkerW
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=120, n_features=24, n_text_sentences=0, seed=0)
    docs = [d for d in data.docs if d[0].startswith("img:")][:60]

    def model():
        m = M.Im2Vec(image_features=data.features, vector_size=16, min_count=1, workers=1, epochs=1, seed=1,
                     image_batch=8, batch_words=10_000, **options)
        m.build_vocab(docs)
        return m

    E = np.random.default_rng(5).normal(scale=0.05, size=model().W.shape).astype(np.float32)
    ours, ref = model(), model()
    ref.W += E  # one worker, from W + E
    real_begin, real_job, added = WorkerW.begin, M.Im2Vec._do_train_job, []

    def begin(self):  # the other worker's fold lands right after this job's copy
        mine = real_begin(self)
        if not added:
            self.W += E
            added.append(1)
        return mine

    def job(self, *a):  # `ours` trains its one job as one of several workers does
        if self is ours:
            self._w_workers = WorkerW(self.W)
        return real_job(self, *a)

    monkeypatch.setattr(WorkerW, "begin", begin)
    monkeypatch.setattr(M.Im2Vec, "_do_train_job", job)
    for m in (ours, ref):
        m.train(docs, total_examples=len(docs), epochs=1)
    assert added
    np.testing.assert_allclose(ours.W, ref.W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.wv.vectors, ref.wv.vectors, rtol=1e-5, atol=1e-6)
    assert np.abs(ref.W - (model().W + E)).max() > 1e3 * np.abs(ours.W - ref.W).max()  # the job moved W


def test_space_rows_normalise_and_centre_each_row_and_refuse_rows_outside():
    from gensim_im2vec.im2vec_inner import space_rows

    rng = np.random.default_rng(0)
    V = rng.normal(size=(30, 17)).astype(np.float32)
    V[4] = 0.0  # a zero row keeps its scale
    mean = rng.normal(size=17).astype(np.float32)
    rows = np.array([4, 0, 29, 0, 7])
    norms = np.linalg.norm(V[rows].astype(np.float64), axis=1, keepdims=True)
    expected = V[rows] / np.where(norms > 0, norms, 1.0) - mean
    np.testing.assert_allclose(space_rows(V, rows, mean), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(space_rows(V, rows, mean, normalize=False), V[rows] - mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(space_rows(V[rows], None, mean), space_rows(V, rows, mean))  # same floats
    with pytest.raises(ValueError, match="row index outside 0..29"):
        space_rows(V, [0, 30], mean)
    with pytest.raises(ValueError, match="mean has 16 entries"):
        space_rows(V, rows, mean[:16])


def test_negatives_follow_the_table_and_repeat_per_seed():
    """draw_negatives: each seed's row is the kernel's guided search over its generator's values;
    over many draws the frequencies follow the table (zero-weight entries never drawn)."""
    from gensim_im2vec.im2vec_inner import _guided_search_many, draw_negatives

    weights = np.array([5, 0, 1, 3, 0, 11], np.float64)
    cum = np.round(np.cumsum(weights) / weights.sum() * 2**31).astype(np.uint32)
    idx = np.array([10, 11, 12, 13, 14, 15], np.int32)
    seeds = np.array([1, 2, 2**40 + 7], np.uint64)
    out = draw_negatives(idx, cum, seeds, 4000)
    assert out.shape == (3, 4000)
    np.testing.assert_array_equal(out[0], draw_negatives(idx, cum, seeds[:1], 4000)[0])  # a seed repeats
    assert not np.array_equal(out[0], out[1])
    r, xs = 2, []  # seed 2's first draws by hand: the kernel's LCG, then (r >> 16) % total
    for _ in range(5):
        r = (r * 25214903917 + 11) % 2**48
        xs.append((r >> 16) % int(cum[-1]))
    np.testing.assert_array_equal(out[1, :5], idx[_guided_search_many(cum, np.array(xs, np.uint64))])
    freq = np.array([(out == i).mean() for i in idx])
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.01)
    assert freq[1] == freq[4] == 0
    with pytest.raises(ValueError, match="differ in length"):
        draw_negatives(idx[:5], cum, seeds, 3)


@pytest.mark.parametrize("seed", range(6))
def test_the_kernels_job_plan_equals_the_numpy_reference(seed):
    """plan_space_job (GIL released) against run_pairs + draw_negatives + job_candidates on random
    prepared jobs: chunks cut mid-document, an image twice in a run, a word twice in a chunk,
    runs without images or without words, every lock pattern."""
    from gensim_im2vec.im2vec_inner import draw_negatives, plan_space_job, prepare_job

    from gensim_im2vec.space import JobPlan, job_candidates, run_pairs

    rng = np.random.default_rng(seed)
    n_words, n_images = 12, 9
    keys = [f"w{i}" for i in range(n_words)] + [f"img{i}" for i in range(n_images)]
    key_to_index = {k: i for i, k in enumerate(keys)}
    image_rows = np.array([-1] * n_words + list(range(n_images)), np.int64)
    docs = [[keys[int(k)] for k in rng.integers(0, len(keys), int(rng.integers(0, 9)))] for _ in range(40)]
    tokens, slots, bounds, _, rows, runs, _ = prepare_job(
        docs, key_to_index, np.full(len(keys), 2**32 - 1, np.uint32), image_rows, False, 2, False, 1,
        max_chunk=5, max_images=int(rng.integers(1, 6)))
    lock = [np.zeros(len(keys), np.float32), np.ones(len(keys), np.float32),
            (rng.random(len(keys)) < 0.5).astype(np.float32)][seed % 3]
    neg_idx = np.arange(n_words, dtype=np.int32)
    neg_cum = np.cumsum(rng.integers(0, 4, n_words)).astype(np.uint32) * 1000
    seeds = rng.integers(0, 2**48, len(runs) - 1, dtype=np.uint64)
    plan = JobPlan(*plan_space_job(tokens, slots, bounds, runs, len(keys), lock, neg_idx, neg_cum, seeds, 7))

    run_row = runs[:, 2]
    tok_run = np.searchsorted(runs[:, 0], np.arange(len(tokens)), side="right") - 1
    gslots = np.where(slots >= 0, slots + run_row[np.minimum(tok_run, len(runs) - 2)], -1)
    pair_slot, pair_word = run_pairs(tokens, gslots, bounds, len(rows))
    pair_bounds = np.searchsorted(pair_slot, run_row)
    drawn = draw_negatives(neg_idx, neg_cum, seeds, 7)
    negatives = [drawn[r] if pair_bounds[r + 1] > pair_bounds[r] else np.zeros(0, np.int64)
                 for r in range(len(runs) - 1)]
    ref = job_candidates(pair_slot, pair_word, run_row, negatives, len(keys), lock)
    assert plan.run_pairs[-1] > 0 and len(runs) > 2  # a job worth comparing
    for name in JobPlan._fields:
        np.testing.assert_array_equal(getattr(plan, name), getattr(ref, name), err_msg=name)


def test_the_job_plan_refuses_tokens_outside_the_vocabulary():
    from gensim_im2vec.im2vec_inner import plan_space_job

    a = np.array
    args = (a([0, 5], np.int32), a([-1, 0], np.int32), a([0, 2], np.int32), a([[0, 0, 0], [2, 1, 1]], np.int64))
    rest = (a([0, 1], np.int32), a([1, 2], np.uint32), a([1], np.uint64), 3)
    assert plan_space_job(*args, 6, np.zeros(6, np.float32), *rest)[6].tolist() == [0]  # pair (img 5, word 0)
    with pytest.raises(ValueError, match="token outside the vocabulary"):
        plan_space_job(*args, 5, np.zeros(5, np.float32), *rest)


@pytest.mark.parametrize("options", [dict(image_heads="output"), dict(space_candidates="own"), dict()])
def test_with_several_workers_every_head_trains_a_copy_of_w(monkeypatch, options):
    """No path writes the shared W while other workers read it: every job with images trains on
    the worker's copy (WorkerW), the slides' pair heads and the per-run space path included."""
    import gensim_im2vec.model as M
    from gensim_im2vec.space import WorkerW
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=200, n_features=24, n_text_sentences=50, seed=0)
    seen, ends = [], []
    model = M.Im2Vec(image_features=data.features, vector_size=16, min_count=1, workers=2, epochs=2, seed=1,
                     image_batch=16, batch_words=200, **options)
    model.build_vocab(data.docs)
    W0 = model.W.copy()
    real_job, real_space, real_end = M.im2vec_inner.train_job, M.im2vec_inner.train_space_job, WorkerW.end

    def spy(real, slots_at):  # slots_at: where `slots` sits among the arguments after W
        def call(syn0, syn1neg, lockf, W, *a, **k):
            if np.count_nonzero(np.asarray(a[slots_at]) >= 0):
                seen.append(np.shares_memory(W, model.W))
            return real(syn0, syn1neg, lockf, W, *a, **k)
        return call

    monkeypatch.setattr(M.im2vec_inner, "train_job", spy(real_job, 5))
    monkeypatch.setattr(M.im2vec_inner, "train_space_job", spy(real_space, 1))
    monkeypatch.setattr(WorkerW, "end", lambda self: ends.append(1) or real_end(self))
    model.train(data.docs, total_examples=len(data.docs), epochs=2)
    assert seen and not any(seen)  # every call with images got a copy
    assert len(ends) > 0
    assert not np.allclose(model.W, W0)  # the copies' updates reached W


@pytest.mark.parametrize("two_stage", [False, True])
def test_the_decoder_in_one_kernel_call_trains_the_per_run_model(monkeypatch, two_stage):
    """``space_decoder``: the kernel's decoder step (C from the forward pass's unit words, one more
    sgemm into W) against the per-run path's NumPy formulas, over a whole training: the same W and
    words up to float32 rounding (the two sum in different orders), and a W other than without it."""

    def train(kernel_job, decoder):
        return train_synthetic(monkeypatch, kernel_job, two_stage, space_decoder=decoder)

    a, b, plain = train(True, 50.0), train(False, 50.0), train(True, 0.0)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.wv.vectors, b.wv.vectors, rtol=1e-4, atol=1e-5)
    assert np.abs(a.W - plain.W).max() > 100 * np.abs(a.W - b.W).max()
    # a λ whose plain step would diverge: both paths cap it at 1 / tr(CᵀC), and W stays bounded
    # (uncapped, λ = 1e5 here took W's norm from ~0.5 to inf within the 3 epochs)
    big, big_ref = train(True, 1e5), train(False, 1e5)
    assert np.isfinite(big.W).all() and np.linalg.norm(big.W) < 10 * np.linalg.norm(plain.W) + 10
    np.testing.assert_allclose(big.W, big_ref.W, rtol=1e-3, atol=1e-5)
