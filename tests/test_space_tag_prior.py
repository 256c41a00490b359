"""``space_tag_prior``: each candidate word's logit in the space step is shifted by a bias per word
(``−γ · log n_w``), so the cosine itself must rank frequent tags higher."""

import numpy as np
import pytest
from space_problem import tiny_run, train_synthetic

from gensim_im2vec.space import space_step

BIAS = -np.log(np.array([1, 40, 3, 1, 7, 2, 1, 9, 1, 1, 25, 4], dtype=np.float64))  # per word of tiny_run's 12


def _loss(W, syn0, Vn, ps, pw, neg, candidates, bias):
    return space_step(W.copy(), syn0.copy(), Vn, ps, pw, neg, alpha_w=0.0, alpha_u=0.0, temperature=0.5,
                      candidates=candidates, bias=bias)


@pytest.mark.parametrize("candidates", ["run", "own"])
def test_W_and_word_steps_are_the_gradient_of_the_biased_softmax(candidates):
    W, syn0, Vn, ps, pw, neg = tiny_run(seed=6)
    a, eps = 1e-3, 1e-5
    W1, s1 = W.copy(), syn0.copy()
    space_step(W1, s1, Vn, ps, pw, neg, alpha_w=a, alpha_u=a, temperature=0.5, candidates=candidates, bias=BIAS)
    gW, gU = (W - W1) / a, (syn0 - s1) / a
    for (i, j) in [(0, 0), (2, 5), (5, 8)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        fd = (_loss(Wp, syn0, Vn, ps, pw, neg, candidates, BIAS) - _loss(Wm, syn0, Vn, ps, pw, neg, candidates, BIAS))
        assert gW[i, j] == pytest.approx(fd / (2 * eps), rel=1e-3, abs=1e-4)
    for (i, j) in [(1, 0), (2, 3), (10, 4)]:  # a positive of two images, a positive, a negative
        sp, sm = syn0.copy(), syn0.copy()
        sp[i, j] += eps
        sm[i, j] -= eps
        fd = (_loss(W, sp, Vn, ps, pw, neg, candidates, BIAS) - _loss(W, sm, Vn, ps, pw, neg, candidates, BIAS))
        assert gU[i, j] == pytest.approx(fd / (2 * eps), rel=1e-3, abs=1e-4)
    # and the bias is in it: the same step without it differs
    W0 = W.copy()
    space_step(W0, syn0.copy(), Vn, ps, pw, neg, alpha_w=a, alpha_u=0.0, temperature=0.5, candidates=candidates)
    assert np.abs(W0 - W1).max() > 1e-6


@pytest.mark.parametrize("candidates", ["run", "own"])
def test_a_bias_equal_for_every_word_changes_nothing(candidates):
    """A softmax is blind to a shift shared by all its logits: only the differences between words count."""
    W, syn0, Vn, ps, pw, neg = tiny_run(seed=7)
    out = []
    for bias in (None, np.full(12, -3.5)):
        W1, s1 = W.copy(), syn0.copy()
        loss = space_step(W1, s1, Vn, ps, pw, neg, alpha_w=0.05, alpha_u=0.05, temperature=0.5,
                          candidates=candidates, bias=bias)
        out.append((loss, W1, s1))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-9)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out[0][2], out[1][2], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("candidates", ["run", "own"])
def test_kernel_step_with_a_bias_matches_the_numpy_formulas(candidates):
    W, syn0, Vn, ps, pw, neg = (a.astype(np.float32) if a.dtype == np.float64 else a for a in tiny_run(seed=8))
    bias = BIAS.astype(np.float32)
    out = {}
    for kernel in (True, False):
        W1, s1 = W.copy(), syn0.copy()
        loss = space_step(W1, s1, Vn, ps, pw, neg, alpha_w=0.05, alpha_u=0.05, temperature=0.2,
                          candidates=candidates, kernel=kernel, bias=bias)
        out[kernel] = (loss, W1, s1)
    W0 = W.copy()
    space_step(W0, syn0.copy(), Vn, ps, pw, neg, alpha_w=0.05, alpha_u=0.05, temperature=0.2, candidates=candidates)
    assert out[True][0] == pytest.approx(out[False][0], rel=1e-5)
    np.testing.assert_allclose(out[True][1], out[False][1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out[True][2], out[False][2], rtol=1e-4, atol=1e-6)
    assert np.abs(out[True][1] - W0).max() > 1e-4  # the kernel used the bias


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "numpy"])
def test_space_step_refuses_a_bias_that_is_not_one_per_word(kernel):
    W, syn0, Vn, ps, pw, neg = (a.astype(np.float32) if a.dtype == np.float64 else a for a in tiny_run(seed=8))
    with pytest.raises(ValueError, match=r"bias must hold one value per word of syn0 \(12\), got shape \(5,\)"):
        space_step(W, syn0, Vn, ps, pw, neg, alpha_w=0.05, alpha_u=0.0, temperature=0.5, kernel=kernel,
                   bias=np.zeros(5, np.float32))


def test_the_kernel_refuses_a_bias_that_is_not_one_per_word():
    from gensim_im2vec import im2vec_inner

    W, syn0, Vn, ps, pw, neg = (a.astype(np.float32) if a.dtype == np.float64 else a for a in tiny_run(seed=8))
    cand = np.unique(np.concatenate([pw, neg])).astype(np.int64)
    with pytest.raises(ValueError, match="bias has 5 entries for 12 words"):
        im2vec_inner.space_job(Vn, W, syn0, cand, len(cand), np.array([0, 0, 1, 2, 3, 3], np.int32),
                               np.searchsorted(cand, pw).astype(np.int32), np.ones(6, np.float32),
                               np.zeros(len(cand), np.float32), np.zeros((0, 6), np.float32), temperature=0.5,
                               alpha_u=0.0, pull=0.0, words_move=False, compute_loss=True,
                               bias=np.zeros(5, np.float32))


def _prior_corpus(seed=0, noise=3.0):
    """Images of 4 classes whose features overlap (noise 3 around the class centres), each tagged
    with its class word and, on 90% of them, "common"."""
    rng = np.random.default_rng(seed)
    n, F = 300, 24
    centres = rng.normal(size=(4, F))
    y = rng.integers(0, 4, n)
    X = centres[y] + noise * rng.normal(size=(n, F))
    docs = [[f"img:{i}", f"class{y[i]}"] + (["common"] if rng.random() < 0.9 else []) for i in range(n)]
    text = [[f"class{c}", "common", "and", "the"] for c in range(4) for _ in range(20)]
    return docs, text, X


def test_with_the_prior_cosine_puts_the_tag_on_nine_images_of_ten_first_more_often():
    """"common" is on 90% of the images, each class word on about 25% and hard to tell from the
    features, so "common" is the likeliest tag of most images. The space step samples its
    candidates, and without the prior the cosine learns how much likelier a tag is on *this*
    image than on any (≈ 1 for "common"); with ``space_tag_prior`` γ, the share of images whose
    nearest tag by cosine alone is "common" grows with γ (measured 0.11, 0.15, 0.22)."""
    from gensim_im2vec import Im2Vec

    docs, text, X = _prior_corpus()
    feats = ([d[0] for d in docs], X.astype(np.float32))
    tags = [f"class{c}" for c in range(4)] + ["common"]
    share = []
    for gamma in (0.0, 0.5, 1.0):
        model = Im2Vec(text + docs * 3, image_features=feats, vector_size=12, min_count=1, sg=1, negative=3,
                       workers=1, epochs=5, seed=2, image_batch=32, space_negatives=4, space_tag_prior=gamma)
        H = model.wv[[d[0] for d in docs]]
        U = np.array([model.wv[t] for t in tags])
        cos = (H / np.linalg.norm(H, axis=1, keepdims=True)) @ (U / np.linalg.norm(U, axis=1, keepdims=True)).T
        share.append(float(np.mean(cos.argmax(axis=1) == len(tags) - 1)))
    assert share[0] < share[1] < share[2] and share[2] > share[0] + 0.06, share


def test_the_model_validates_keeps_and_loads_the_prior(tmp_path):
    from gensim_im2vec import Im2Vec

    docs, text, X = _prior_corpus(1)
    feats = ([d[0] for d in docs], X.astype(np.float32))
    with pytest.raises(ValueError, match=r"space_tag_prior must be a finite number >= 0, got -1"):
        Im2Vec(space_tag_prior=-1)
    model = Im2Vec(text + docs, image_features=feats, vector_size=8, min_count=1, workers=1, epochs=1,
                   space_tag_prior=0.5)
    common = model.wv.key_to_index["common"]
    n_common = sum("common" in d for d in docs)
    assert model._space_bias[common] == pytest.approx(-0.5 * np.log(n_common), rel=1e-6)
    assert model._space_bias[model.wv.key_to_index["and"]] == 0.0  # on no image
    path = tmp_path / "m.model"
    model.save(str(path))
    assert Im2Vec.load(str(path)).space_tag_prior == 0.5
    del model.space_tag_prior  # as a model saved before the option was pickled
    model.save(str(path))
    assert Im2Vec.load(str(path)).space_tag_prior == 0.0


@pytest.mark.parametrize("two_stage", [False, True])
def test_the_prior_in_one_kernel_call_trains_the_per_run_model(monkeypatch, two_stage):
    """The kernel's job loop adds the same per-word bias as the per-run path's NumPy formulas: over
    a whole training the same W and words up to float32 rounding, and other ones than without it."""

    def train(kernel_job, gamma):
        return train_synthetic(monkeypatch, kernel_job, two_stage, space_tag_prior=gamma)

    a, b, plain = train(True, 1.0), train(False, 1.0), train(True, 0.0)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.wv.vectors, b.wv.vectors, rtol=1e-4, atol=1e-5)
    assert np.abs(a.W - plain.W).max() > 100 * np.abs(a.W - b.W).max()
