"""The space step: pairs of a run, and gradients checked against finite differences."""

import numpy as np
import pytest
from space_problem import tiny_run

from gensim_im2vec.space import common_directions, remove_directions, run_pairs, space_step


def test_run_pairs_joins_images_with_the_words_of_their_own_chunk():
    # chunk 0: img slot 0 + words 3, 4, 3; chunk 1: words only; chunk 2: img slots 1 and 0 + word 7
    tokens = np.array([10, 3, 4, 3, 5, 6, 11, 7, 10], np.int32)
    slots = np.array([0, -1, -1, -1, -1, -1, 1, -1, 0], np.int32)
    bounds = np.array([0, 4, 6, 9], np.int32)
    s, w = run_pairs(tokens, slots, bounds, n_slots=2)
    assert sorted(zip(s.tolist(), w.tolist())) == [(0, 3), (0, 4), (0, 7), (1, 7)]


def test_run_pairs_without_images_or_words_is_empty():
    s, w = run_pairs(np.array([1, 2], np.int32), np.array([-1, -1], np.int32), np.array([0, 2], np.int32), 0)
    assert len(s) == len(w) == 0
    s, w = run_pairs(np.array([1], np.int32), np.array([0], np.int32), np.array([0, 1], np.int32), 1)
    assert len(s) == 0


def _problem(seed=0, symmetric=0.0):
    return tiny_run(seed)


def _loss(W, syn0, Vn, ps, pw, neg, symmetric, anchor=None, pull=0.0):
    return space_step(W.copy(), syn0.copy(), Vn, ps, pw, neg, alpha_w=0.0, alpha_u=0.0, temperature=0.5,
                      symmetric=symmetric, anchor=anchor, pull=pull)


@pytest.mark.parametrize("symmetric", [0.0, 1.0])
def test_W_step_is_minus_alpha_times_the_loss_gradient(symmetric):
    W, syn0, Vn, ps, pw, neg = _problem(symmetric=symmetric)
    a = 1e-3
    W1 = W.copy()
    space_step(W1, syn0.copy(), Vn, ps, pw, neg, alpha_w=a, alpha_u=0.0, temperature=0.5, symmetric=symmetric)
    grad = (W - W1) / a
    eps = 1e-5
    for (i, j) in [(0, 0), (2, 5), (5, 8), (3, 1)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        fd = (_loss(Wp, syn0, Vn, ps, pw, neg, symmetric) - _loss(Wm, syn0, Vn, ps, pw, neg, symmetric)) / (2 * eps)
        assert grad[i, j] == pytest.approx(fd, rel=1e-3, abs=1e-4)


def test_word_step_is_the_loss_gradient_plus_the_pull_and_respects_the_lock():
    W, syn0, Vn, ps, pw, neg = _problem(seed=1)
    anchor = syn0[:6] + 0.3  # words 0..5 have a starting vector, 6.. move freely
    lock = np.ones(len(syn0))
    lock[8] = 0.0
    a, pull = 1e-3, 0.7
    s1 = syn0.copy()
    space_step(W.copy(), s1, Vn, ps, pw, neg, alpha_w=0.0, alpha_u=a, temperature=0.5, word_lock=lock,
               anchor=anchor, pull=pull)
    grad = (syn0 - s1) / a
    assert np.all(grad[8] == 0)  # locked
    eps = 1e-5
    for (i, j) in [(1, 0), (2, 3), (7, 5), (0, 2)]:  # positives, a free word, a negative
        sp, sm = syn0.copy(), syn0.copy()
        sp[i, j] += eps
        sm[i, j] -= eps
        fd = (_loss(W, sp, Vn, ps, pw, neg, 0.0) - _loss(W, sm, Vn, ps, pw, neg, 0.0)) / (2 * eps)
        if i < len(anchor):
            fd += pull * (syn0[i, j] - anchor[i, j])
        assert grad[i, j] == pytest.approx(fd, rel=1e-3, abs=1e-4)


def test_steps_lower_the_loss_and_rank_each_image_its_own_words_first():
    W, syn0, Vn, ps, pw, neg = _problem(seed=2)
    W, syn0 = W.astype(np.float32), syn0.astype(np.float32)
    first = _loss(W, syn0, Vn, ps, pw, neg, 1.0)
    for _ in range(300):
        last = space_step(W, syn0, Vn, ps, pw, neg, alpha_w=0.05, alpha_u=0.05, temperature=0.5, symmetric=1.0)
    assert last < 0.5 * first
    H = Vn @ W.T
    cos = (H / np.linalg.norm(H, axis=1, keepdims=True)) @ (syn0 / np.linalg.norm(syn0, axis=1, keepdims=True)).T
    for s in range(4):
        own = set(pw[ps == s].tolist())
        top = set(np.argsort(-cos[s])[: len(own)].tolist())
        assert top == own


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("candidates", ["run", "own"])
def test_W_alone_learns_to_put_each_image_nearest_one_of_its_own_words(candidates, kernel):
    """Words frozen (alpha_u=0): only W's update can lower the loss and move each image's nearest
    word (of 12) to one of its own. Measured on seeds 0-3: the loss falls to 0.45-0.54 of its start
    and every image's nearest word is its own; with W not updated the loss stays where it started
    and three of the four images' nearest words are another's."""
    W, syn0, Vn, ps, pw, neg = (a.astype(np.float32) if a.dtype == np.float64 else a for a in _problem(seed=0))
    words = syn0.copy()
    kw = dict(alpha_u=0.0, temperature=0.5, candidates=candidates, kernel=kernel)
    first = space_step(W.copy(), syn0, Vn, ps, pw, neg, alpha_w=0.0, **kw)
    for _ in range(300):
        last = space_step(W, syn0, Vn, ps, pw, neg, alpha_w=0.05, **kw)
    assert np.array_equal(syn0, words)  # the words did not move
    assert last < 0.6 * first, (last, first)
    H = Vn @ W.T
    cos = (H / np.linalg.norm(H, axis=1, keepdims=True)) @ (syn0 / np.linalg.norm(syn0, axis=1, keepdims=True)).T
    assert [int(np.argmax(cos[s])) in pw[ps == s] for s in range(4)] == [True] * 4, cos


# ---------------------------------------------------------------------------- common directions
def _skewed_words(seed=0, n=400, d=16):
    """Unit-ish word vectors that share a mean offset and one dominant direction (axis 3)."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n, d))
    U[:, 3] *= 8.0
    return U + 4.0 * np.eye(d)[0]


def test_common_directions_are_the_unit_mean_and_the_top_principal_directions():
    U = _skewed_words()
    unit = U / np.linalg.norm(U, axis=1, keepdims=True)
    Q = common_directions(U * 7.0, k=1)  # the words' norms do not matter: unit vectors are used
    assert Q.shape == (16, 2)
    np.testing.assert_allclose(Q.T @ Q, np.eye(2), atol=1e-10)
    mean = unit.mean(axis=0)
    np.testing.assert_allclose(np.linalg.norm(Q.T @ mean), np.linalg.norm(mean), rtol=1e-10)  # mean in span
    top = np.linalg.svd(unit - mean, full_matrices=False)[2][0]
    assert np.linalg.norm(Q.T @ top) == pytest.approx(1.0, abs=1e-10)  # top PC in span
    assert abs(top[3]) > 0.9  # ... and it is the dominant axis the words were given
    only_mean = common_directions(U, k=0)
    np.testing.assert_allclose(np.abs(only_mean[:, 0]), np.abs(mean) / np.linalg.norm(mean), atol=1e-10)


@pytest.mark.parametrize("k", [-1, 16, 2.0, "2"])
def test_common_directions_refuses_a_bad_k_by_name(k):
    with pytest.raises(ValueError, match="k must be an int"):
        common_directions(_skewed_words(), k=k)
    with pytest.raises(ValueError, match="at least 2 word vectors"):
        common_directions(np.ones((1, 16)), k=0)


def test_remove_directions_leaves_every_projection_orthogonal_and_the_rest_unchanged():
    rng = np.random.default_rng(1)
    Q = common_directions(_skewed_words(), k=2)
    W = rng.normal(size=(16, 40)).astype(np.float32)
    before = W.copy()
    remove_directions(W, Q.astype(np.float32))
    assert W.dtype == np.float32
    X = rng.normal(size=(50, 40)).astype(np.float32)
    h = X @ W.T
    assert np.abs(h @ Q).max() < 1e-4 * np.abs(h).max()
    P = np.eye(16) - Q @ Q.T
    np.testing.assert_allclose(W, P @ before, rtol=1e-5, atol=1e-5)
    again = W.copy()
    remove_directions(again, Q.astype(np.float32))  # idempotent
    np.testing.assert_allclose(again, W, atol=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 0.1, 0.004], ids=["t0.5", "t0.1", "t0.004-exp-clamped"])
@pytest.mark.parametrize("candidates", ["run", "own"])
def test_kernel_step_matches_the_numpy_formulas(temperature, candidates):
    """The kernel's vectorised softmax (exp by a polynomial, sums in fixed lanes) against NumPy's
    float32 formulas: the same loss, W and words, also where τ pushes logits below exp's float range
    (τ 0.004: logit gaps up to 500, the kernel's exp clamps at −87)."""
    W, syn0, Vn, ps, pw, neg = _problem(seed=3)
    W, syn0, Vn = W.astype(np.float32), syn0.astype(np.float32), Vn.astype(np.float32)
    out = {}
    for kernel in (True, False):
        W1, s1 = W.copy(), syn0.copy()
        loss = space_step(W1, s1, Vn, ps, pw, neg, alpha_w=0.05, alpha_u=0.05, temperature=temperature,
                          candidates=candidates, kernel=kernel)
        out[kernel] = (loss, W1, s1)
    assert out[True][0] == pytest.approx(out[False][0], rel=1e-5)
    assert not np.array_equal(out[True][1], W) and not np.array_equal(out[True][2], syn0)  # both stepped
    np.testing.assert_allclose(out[True][1], out[False][1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out[True][2], out[False][2], rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------- the decoder term
def _decoder_loss(W, syn0, Vn, ps, pw, weight):
    """``weight · Σ_i ‖x_i − Wᵀ·c_i‖²``, c_i the mean unit vector of image i's words: written out."""
    U = syn0 / np.linalg.norm(syn0, axis=1, keepdims=True)
    total = 0.0
    for s in np.unique(ps):
        c = U[pw[ps == s]].mean(axis=0)
        total += float(np.sum((Vn[s] - W.T @ c) ** 2))
    return weight * total


@pytest.mark.parametrize("candidates", ["run", "own"])
def test_W_step_with_the_decoder_is_minus_alpha_times_the_gradient_of_both_terms(candidates):
    W, syn0, Vn, ps, pw, neg = _problem(seed=4)
    a, weight = 1e-3, 0.7
    W1 = W.copy()
    space_step(W1, syn0.copy(), Vn, ps, pw, neg, alpha_w=a, alpha_u=0.0, temperature=0.5, candidates=candidates,
               decoder=weight)
    grad = (W - W1) / a
    eps = 1e-5

    def total(Wx):
        softmax = space_step(Wx.copy(), syn0.copy(), Vn, ps, pw, neg, alpha_w=0.0, alpha_u=0.0, temperature=0.5,
                             candidates=candidates)
        return softmax + _decoder_loss(Wx, syn0, Vn, ps, pw, weight)

    for (i, j) in [(0, 0), (2, 5), (5, 8), (3, 1)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        assert grad[i, j] == pytest.approx((total(Wp) - total(Wm)) / (2 * eps), rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "numpy"])
def test_the_decoder_makes_W_transpose_bring_each_image_s_words_back_to_its_features(kernel):
    """With the decoder alone steering W (the softmax's step is scale-free and small next to it),
    ``Wᵀ·c_i`` comes close to ``x_i``; without it, nothing ties W's scale to the features."""
    W, syn0, Vn, ps, pw, neg = (a.astype(np.float32) if a.dtype == np.float64 else a for a in _problem(seed=5))
    W *= 0.01
    start = _decoder_loss(W, syn0, Vn, ps, pw, 1.0)
    W0 = W.copy()
    for _ in range(400):
        space_step(W, syn0, Vn, ps, pw, neg, alpha_w=0.02, alpha_u=0.0, temperature=0.5, kernel=kernel, decoder=1.0)
        space_step(W0, syn0, Vn, ps, pw, neg, alpha_w=0.02, alpha_u=0.0, temperature=0.5, kernel=kernel)
    assert _decoder_loss(W, syn0, Vn, ps, pw, 1.0) < 0.35 * start
    assert _decoder_loss(W0, syn0, Vn, ps, pw, 1.0) > 0.9 * start
