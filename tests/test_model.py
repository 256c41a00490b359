"""Im2Vec as a user meets it: one space queried by cosine, freezing, persistence, two-stage,
helpers, bad input."""

import inspect
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from gensim import utils
from gensim.models import Word2Vec

import gensim_im2vec.model as model_module
from gensim_im2vec import Im2Vec
from gensim_im2vec import im2vec_inner as K
from gensim_im2vec.evaluate import one_space_check, words_only
from gensim_im2vec.synthetic import make_corpus

SMALL = dict(vector_size=24, sg=1, min_count=1, workers=1, seed=1)
TRAIN = dict(vector_size=32, sg=1, min_count=1, epochs=10, sample=0, workers=1, seed=1)  # one worker: repeatable


@pytest.fixture(scope="module")
def plain():
    """The issue's setup: tags = class words + random distractor tags."""
    return make_corpus(n_classes=10, n_images=2000, n_related=0, seed=0)


@pytest.fixture(scope="module")
def trained(plain):
    return Im2Vec(plain.docs, image_features=plain.features, **TRAIN)


def _class_word_hits(model, data):
    """Fraction of held-out images whose nearest word (cosine in model.wv) is their class word."""
    preds = model.similar_by_image(data.test_features, topn=1, restrict="words")
    return float(np.mean([p[0][0] == data.class_words[y] for p, y in zip(preds, data.test_labels)]))


def _cosines(model, vector):
    """Numpy cosine of `vector` with every row of model.wv (float64)."""
    vectors = np.asarray(model.wv.vectors, dtype=np.float64)
    v = np.asarray(vector, dtype=np.float64)
    return vectors @ v / np.linalg.norm(vectors, axis=1) / np.linalg.norm(v)


def assert_same_ranking(got, want, atol=1e-5):
    """Two (key, cosine) lists rank alike within float tolerance: equal cosines position by position,
    and a key in one list but not the other only where its cosine ties the other list's last one."""
    assert len(got) == len(want)
    np.testing.assert_allclose([c for _, c in got], [c for _, c in want], atol=atol)
    g, w = dict(got), dict(want)
    for k, c in got:
        if k in w:
            assert c == pytest.approx(w[k], abs=atol), k
        else:
            assert c == pytest.approx(want[-1][1], abs=atol), (k, c, want[-1])
    assert set(w) - set(g) <= {k for k, c in want if c == pytest.approx(got[-1][1], abs=atol)}


# ---------------------------------------------------------------------------- one space, by cosine
# Two clouds or one space (issue 11): on 500 training images with their documents' tags (class word +
# 3 random tags), the mean cosine to their own tags must clear the mean cosine to random words by this
# much (evaluate.one_space_check). Measured with TRAIN, seeds 1-3: own 0.084-0.089 vs random
# -0.002-0.004 (gap 0.082-0.087); space step off: own -0.006 vs random -0.003 (gap -0.003).
ONE_SPACE_GAP = 0.05
# and an image's nearest word (most_similar_words) must be its class word this often. Measured: 1.0
# healthy, 0.018 with the space step off; chance 1/60.
ONE_SPACE_TOP1 = 0.5


def _space_figures(model, data, n=500):
    keys = [d[0] for d in data.docs[:n]]
    figures = one_space_check(model, keys, [d[1:] for d in data.docs[:n]])
    figures["top1"] = float(np.mean([model.most_similar_words(k, topn=1)[0][0] == data.class_words[data.labels[k]]
                                     for k in keys]))
    figures["one_space"] = (figures["own_tags"] - figures["random_words"] >= ONE_SPACE_GAP
                            and figures["top1"] >= ONE_SPACE_TOP1)
    return figures


def test_images_and_words_are_one_space_not_two_clouds(plain, trained):
    f = _space_figures(trained, plain)
    assert f["n"] == 500
    assert f["own_tags"] - f["random_words"] >= ONE_SPACE_GAP, f
    assert abs(f["random_words"]) < 0.1, f  # an unrelated word is unrelated, not a shared offset
    assert f["top1"] >= 0.9, f  # 60 words: chance is 1/60
    assert f["one_space"]


@pytest.mark.parametrize("broken", ["no space step", "W and words frozen in the space step"])
def test_the_one_space_check_fails_when_the_space_is_broken(plain, monkeypatch, broken):
    """The check above is not vacuous: the same corpus and settings with the space step disabled
    (the kernel then trains the words alone, the images stay a random projection: two clouds) fail
    it. (Freezing W alone is not enough: the words then move to the images, see the next test.)"""
    kwargs = dict(TRAIN)
    if broken == "no space step":
        _per_run_path(monkeypatch)
        monkeypatch.setattr(model_module, "space_step", lambda *a, **k: 0.0)
    else:
        kwargs.update(train_images=False, space_word_alpha=0.0)
    model = Im2Vec(plain.docs, image_features=plain.features, **kwargs)
    f = _space_figures(model, plain)
    assert not f["one_space"], f
    assert f["own_tags"] - f["random_words"] < ONE_SPACE_GAP / 2, f  # own tags no nearer than random words
    assert f["top1"] < 0.2, f
    assert _class_word_hits(model, plain) < 0.2


def test_with_a_frozen_W_the_space_step_moves_the_words_to_the_images(plain):
    """train_images=False keeps W bit-identical, but the space step still pulls the words towards
    the (randomly projected) images (space_word_alpha > 0): the space stays one."""
    model = Im2Vec(image_features=plain.features, train_images=False, **TRAIN)
    model.build_vocab(plain.docs)
    W0 = model.W.copy()
    model.train(plain.docs, total_examples=len(plain.docs), epochs=model.epochs)
    assert np.array_equal(model.W, W0)
    f = _space_figures(model, plain)
    assert f["own_tags"] - f["random_words"] >= ONE_SPACE_GAP, f


# ---------------------------------------------------------------------------- what W must learn
# On `plain` a random W already separates the classes, so a model whose W never learns still
# places most images near their class word (the words move to the images). `hard` is built so that
# W must learn: 20 classes whose features are swamped by 16 directions of variation that no tag
# describes (lighting, background, pose: std 8 against prototypes of std 1, plus noise 1.0), so
# raw-feature cosine finds an image's class for 15-17 % of held-out images. W has to learn to
# ignore those directions. Measured with TRAIN, corpus seeds 0-2 x model seeds 1-2: held-out image
# -> class word 0.945-0.972, class word -> its 10 nearest held-out images 0.895-0.925. With W
# broken (corpus seed 0, model seed 1; test_a_broken_W_update_fails_the_quality_bars): not updated
# 0.282 / 0.245, stepped the wrong way 0.008 / 0.035, stepped with other images' features
# 0.070 / 0.105.
HARD_BARS = {"held_out_hits": 0.85, "word_to_held_out_p10": 0.8}


def make_hard_corpus(seed=0, style=8.0, n_style=16):
    """make_corpus with 20 classes, plus `n_style` class-independent directions of std `style`
    added to every training and held-out image's features."""
    data = make_corpus(n_classes=20, n_images=3000, n_features=64, noise=1.0, n_related=0, n_test=600, seed=seed)
    rng = np.random.default_rng(seed + 100)
    basis = rng.normal(size=(n_style, 64)) / 8

    def restyle(x):
        return (x + style * rng.normal(size=(len(x), n_style)) @ basis).astype(np.float32)

    keys = list(data.features)
    data.features = dict(zip(keys, restyle(np.stack([data.features[k] for k in keys]))))
    data.test_features = restyle(data.test_features)
    return data


@pytest.fixture(scope="module")
def hard():
    return make_hard_corpus()


@pytest.fixture(scope="module")
def hard_trained(hard):
    return Im2Vec(hard.docs, image_features=hard.features, **TRAIN)


def _word_to_held_out(model, data, topn=10):
    """Mean over class words of the fraction of its `topn` nearest held-out images (cosine of the
    word's row of model.wv with model.project) that are of its class."""
    kv = model.project_to_keyedvectors([f"test{i}" for i in range(len(data.test_labels))], data.test_features)
    return float(np.mean([np.mean([data.test_labels[int(k[4:])] == c for k, _ in kv.similar_by_vector(model.wv[w],
                                                                                                       topn=topn)])
                          for c, w in enumerate(data.class_words)]))


def _hard_figures(model, data):
    return {"held_out_hits": _class_word_hits(model, data), "word_to_held_out_p10": _word_to_held_out(model, data)}


def _raw_cosine_hits(data):
    """Fraction of held-out images whose nearest training image by raw-feature cosine is of their class."""
    keys = list(data.features)
    X = np.stack([data.features[k] for k in keys])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    T = data.test_features / np.linalg.norm(data.test_features, axis=1, keepdims=True)
    nearest = np.argmax(T @ X.T, axis=1)
    return float(np.mean(np.array([data.labels[keys[i]] for i in nearest]) == data.test_labels))


def test_unseen_images_get_their_class_word_as_nearest_word(plain, trained, hard, hard_trained):
    assert _raw_cosine_hits(hard) < 0.3  # the features alone do not say the class by cosine
    f = _hard_figures(hard_trained, hard)
    assert f["held_out_hits"] >= HARD_BARS["held_out_hits"], f  # 20 class words among 70 words
    assert _class_word_hits(trained, plain) >= 0.9


def test_a_class_words_nearest_held_out_images_are_of_its_class(hard, hard_trained):
    model = hard_trained
    assert _word_to_held_out(model, hard) >= HARD_BARS["word_to_held_out_p10"]  # chance 0.05
    precs_train = [np.mean([hard.labels[k] == c for k, _ in model.most_similar_images(w, topn=10)])
                   for c, w in enumerate(hard.class_words)]
    assert np.mean(precs_train) >= 0.8, precs_train
    # word -> images through the plain gensim API: the first image of "class3" is one of its images
    first = next(k for k, _ in model.wv.most_similar("class3", topn=len(model.wv)) if model.is_image(k))
    assert hard.labels[first] == 3


def _per_run_path(monkeypatch):
    """Train the space head run by run through ``model.space_step`` (the path a test can patch)
    instead of a whole job per kernel call: the same model bit for bit (tests/test_space_candidates.py)."""
    monkeypatch.setattr(Im2Vec, "_space_in_kernel", lambda self: False)


def _break_W(monkeypatch, how):
    """Replace the model's space step by one whose W update is broken `how`; the words' update stays."""
    _per_run_path(monkeypatch)
    real = model_module.space_step
    signature = inspect.signature(real)

    def call(args, kwargs, **change):
        bound = signature.bind(*args, **kwargs)
        bound.arguments.update(change)
        return real(*bound.args, **bound.kwargs)

    def broken(*args, **kwargs):
        W, Vn = (signature.bind(*args, **kwargs).arguments[k] for k in ("W", "Vn"))
        if how == "other images' features":  # W steps as if each image had another's features
            call(args, kwargs, Vn=Vn[np.random.default_rng(len(Vn)).permutation(len(Vn))], alpha_u=0.0)
            return call(args, kwargs, alpha_w=0.0)
        W0 = W.copy()
        loss = call(args, kwargs)
        W[...] = W0 if how == "not updated" else 2 * W0 - W  # "wrong sign": the step reversed
        return loss

    monkeypatch.setattr(model_module, "space_step", broken)


@pytest.mark.parametrize("how", ["not updated", "wrong sign", "other images' features"])
def test_a_broken_W_update_fails_the_quality_bars(hard, monkeypatch, how):
    """The bars above are not vacuous: the same corpus and settings with W's update broken (the
    words still train) miss every one of them by a wide margin."""
    _break_W(monkeypatch, how)
    model = Im2Vec(hard.docs, image_features=hard.features, **TRAIN)
    f = _hard_figures(model, hard)
    assert all(f[k] < HARD_BARS[k] - 0.4 for k in HARD_BARS), f


def test_most_similar_of_an_image_key_is_the_ranking_by_its_projection(plain, trained):
    """The stored vectors and model.project are one function: wv.most_similar(key) ranks as the
    cosine of model.project(features of that image) does."""
    for key in ("img:0", "img:1234", "img:1999"):
        h = trained.project(plain.features[key])
        np.testing.assert_allclose(trained.wv[key], h, rtol=1e-5, atol=1e-6)
        cos = _cosines(trained, h)
        cos[trained.wv.key_to_index[key]] = -np.inf  # most_similar leaves the query out
        order = np.argsort(-cos, kind="stable")[:40]
        assert_same_ranking(trained.wv.most_similar(key, topn=40),
                            [(trained.wv.index_to_key[i], float(cos[i])) for i in order])
        words = [i for i in np.argsort(-cos, kind="stable") if not trained.is_image(trained.wv.index_to_key[i])][:8]
        assert_same_ranking(trained.most_similar_words(key, topn=8),
                            [(trained.wv.index_to_key[i], float(cos[i])) for i in words])
        # and the unseen-image path gives the same answer as the stored row
        by_row = [(k, c) for k, c in trained.wv.similar_by_vector(trained.wv[key], topn=len(trained.wv))
                  if not trained.is_image(k)][:9]
        assert_same_ranking(trained.similar_by_image(plain.features[key], topn=9, restrict="words"), by_row)


def test_saved_keyedvectors_answer_image_to_word_in_plain_gensim(tmp_path, plain, trained):
    """model.wv saved alone and loaded by plain gensim (a fresh interpreter that never imports
    gensim_im2vec) gives the same image -> word answers as the model."""
    path = tmp_path / "space.kv"
    trained.wv.save(str(path))
    keys = ["img:0", "img:7", "img:1503"]
    code = (
        "import json, sys\n"
        "from gensim.models import KeyedVectors\n"
        f"kv = KeyedVectors.load({str(path)!r})\n"
        f"keys = {keys!r}\n"
        "out = {k: [(w, float(c)) for w, c in kv.most_similar(k, topn=len(kv)) if not w.startswith('img:')][:5]\n"
        "       for k in keys}\n"
        "out['imported'] = sorted(m for m in sys.modules if m.startswith('gensim_im2vec'))\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    got = json.loads(res.stdout)
    assert got.pop("imported") == []
    for key in keys:
        want = trained.most_similar_words(key, topn=5)
        assert [w for w, _ in got[key]] == [w for w, _ in want]
        np.testing.assert_allclose([c for _, c in got[key]], [c for _, c in want], atol=1e-6)
        assert got[key][0][0] == plain.class_words[plain.labels[key]]


def test_similar_by_image_batch_equals_one_call_per_image(plain, trained):
    x = plain.test_features[:6]
    for restrict in (None, "words", "tags", "images"):
        batch = trained.similar_by_image(x, topn=7, restrict=restrict)
        assert isinstance(batch, list) and len(batch) == 6
        for row, f in zip(batch, x):
            assert_same_ranking(row, trained.similar_by_image(f, topn=7, restrict=restrict))
    single = trained.similar_by_image(x[0], topn=3)
    assert isinstance(single[0], tuple)  # one image: one list of (key, cosine)
    # 2-D with one row is a batch of one
    one = trained.similar_by_image(x[:1], topn=3)
    assert len(one) == 1 and [k for k, _ in one[0]] == [k for k, _ in single]


def test_modality_helpers(trained, plain):
    assert len(trained.image_keys) == 2000 and all(k.startswith("img:") for k in trained.image_keys)
    assert trained.is_image("img:5") and not trained.is_image("class1") and not trained.is_image("nope")
    words = trained.most_similar_words("img:0", topn=5)
    images = trained.most_similar_images("img:0", topn=5)
    assert len(words) == 5 and not any(trained.is_image(k) for k, _ in words)
    assert len(images) == 5 and all(trained.is_image(k) for k, _ in images) and "img:0" not in dict(images)
    assert all(plain.labels[k] == plain.labels["img:0"] for k, _ in images)
    f = plain.test_features[0]
    assert all(trained.is_image(k) for k, _ in trained.similar_by_image(f, topn=4, restrict="images"))
    assert not any(trained.is_image(k) for k, _ in trained.similar_by_image(f, topn=4, restrict="words"))
    with pytest.raises(ValueError, match="restrict must be 'words', 'tags', 'images' or None"):
        trained.similar_by_image(f, restrict="pixels")


def test_restrict_tags_keeps_the_words_of_the_image_documents(plain):
    """restrict="tags" (and most_similar_tags): the same cosine ranking as gensim's, keeping only the
    words some training image carries; text-only words, however near, are left out. A model whose
    images have no documents has no tags, and says so."""
    text = [d[1:] for d in plain.docs] * 2 + [["onlytext", "prose", "class1"]] * 5
    w2v = Word2Vec(text, vector_size=24, sg=1, min_count=1, epochs=3, workers=1, seed=1)
    m = Im2Vec.from_word2vec(w2v, image_features=plain.features, sentences=plain.docs, epochs=5)
    f = plain.test_features[:4]
    every = m.similar_by_image(f, topn=None)
    tags = m.similar_by_image(f, topn=None, restrict="tags")
    for row_all, row_tags in zip(every, tags):
        want = [(k, c) for k, c in row_all if k in m.image_tag_counts]
        assert [k for k, _ in row_tags] == [k for k, _ in want]
        np.testing.assert_allclose([c for _, c in row_tags], [c for _, c in want], atol=1e-6)
        assert {"onlytext", "prose"}.isdisjoint(k for k, _ in row_tags)
    assert {"onlytext", "prose"} <= {k for k, _ in m.similar_by_image(f[0], topn=None, restrict="words")}
    by_key = m.most_similar_tags("img:5", topn=None)
    words = m.most_similar_words("img:5", topn=None)
    assert [k for k, _ in by_key] == [k for k, _ in words if k in m.image_tag_counts]
    assert len(by_key) == len(set(m.image_tag_counts) & set(m.wv.key_to_index))
    bare = Im2Vec.from_word2vec(w2v, image_features=plain.features)  # images, but no image documents
    with pytest.raises(ValueError, match="restrict='tags': no word of this model occurs in an image document"):
        bare.similar_by_image(f[0], restrict="tags")


def test_similar_by_image_is_the_cosine_without_a_normalised_copy_of_wv(trained, plain, monkeypatch):
    """At 100M images a normalised copy of wv.vectors would be the size of the model again."""
    f = plain.test_features[1]
    cos = _cosines(trained, trained.project(f))
    want = [(trained.wv.index_to_key[i], float(cos[i])) for i in np.argsort(-cos)[:6]]

    def refuse():
        raise AssertionError("get_normed_vectors() copies every row of wv")

    monkeypatch.setattr(trained.wv, "get_normed_vectors", refuse)
    assert_same_ranking(trained.similar_by_image(f, topn=6), want)


def test_projection_is_w_times_the_centred_normalised_features(trained, plain):
    """An image's vector is W · (v̂ − μ), μ the mean normalised feature vector of the training images."""
    feats = np.stack([plain.features[k] for k in trained.image_keys]).astype(np.float64)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    np.testing.assert_allclose(trained.feature_mean, unit.mean(axis=0), atol=1e-5)
    x = plain.test_features[:3].astype(np.float64)
    want = (x / np.linalg.norm(x, axis=1, keepdims=True) - trained.feature_mean) @ trained.W.T
    batch = trained.project(plain.test_features[:3])
    assert batch.shape == (3, 32) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(trained.project(plain.test_features[0]), batch[0], rtol=1e-5, atol=1e-6)
    for key in ("img:0", "img:1999"):
        np.testing.assert_allclose(trained.wv[key], trained.project(plain.features[key]), rtol=1e-5, atol=1e-6)
    kv = trained.project_to_keyedvectors(["a", "b", "c"], plain.test_features[:3])
    assert len(kv) == 3 and "a" not in trained.wv  # never appended to the model's vocabulary
    np.testing.assert_allclose(kv["b"], batch[1], rtol=1e-5, atol=1e-6)


def _analogy_hits(model, data, n=30):
    """image(x) − class(x) + class(x+1): how often the nearest other image is of class x+1."""
    hits = []
    for i in range(n):
        x = f"img:{i}"
        c = data.labels[x]
        top = model.most_similar_images(positive=[x, data.class_words[(c + 1) % 10]], negative=[data.class_words[c]],
                                        topn=1)[0][0]
        hits.append(data.labels[top] == (c + 1) % 10)
    return float(np.mean(hits))


@pytest.mark.parametrize("temperature", [
    pytest.param(0.1, marks=pytest.mark.xfail(strict=True, reason=(
        "reported: at the default space_temperature=0.1 an image sits at cosine ~0.32 to its class word and "
        "~0.98 to its nearest image, so image − word + word stays among its own class (hit 0.00-0.13)"))),
    0.3,
])
def test_cross_modal_analogy_swaps_the_class(plain, temperature):
    """Issue 11 target 6 on the synthetic corpus: image(x) − a + b lands on an image of b."""
    model = Im2Vec(plain.docs, image_features=plain.features, space_temperature=temperature, **TRAIN)
    assert _class_word_hits(model, plain) >= 0.9
    assert _analogy_hits(model, plain) >= 0.8
    # x's own nearest image is of its own class: the analogy, not the image alone, makes the swap
    assert plain.labels[model.most_similar_images("img:0", topn=1)[0][0]] == plain.labels["img:0"]


def test_doesnt_match_mixes_modalities(trained):
    assert trained.wv.doesnt_match(["img:0", "img:10", "img:20", "class5"]) == "class5"


# ---------------------------------------------------------------------------- freezing
def _snapshot(m):
    return m.wv.vectors.copy(), m.syn1neg.copy(), m.W.copy()


def test_frozen_words_and_frozen_W_stay_bit_identical(plain):
    docs = plain.docs[:400]
    # the space step moves words too unless space_word_alpha=0 (see the xfail below)
    m = Im2Vec(docs, image_features=plain.features, epochs=1, train_words=False, space_word_alpha=0.0, **SMALL)
    words = np.flatnonzero(m._vocab_image_rows < 0)
    before = _snapshot(m)
    m.train(docs, total_examples=len(docs), epochs=2)
    after = _snapshot(m)
    assert np.array_equal(before[0][words], after[0][words])
    assert not np.array_equal(before[2], after[2])  # W learned
    m.train_words, m.train_images = True, False
    before = _snapshot(m)
    m.train(docs, total_examples=len(docs), epochs=2)
    after = _snapshot(m)
    assert np.array_equal(before[2], after[2])
    assert not np.array_equal(before[0][words], after[0][words])
    m.train_words, m.train_images, m.train_outputs = False, False, False
    before = _snapshot(m)
    m.train(docs, total_examples=len(docs), epochs=1)
    after = _snapshot(m)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_train_words_false_freezes_the_words_with_the_default_space_step(plain):
    docs = plain.docs[:400]
    m = Im2Vec(docs, image_features=plain.features, epochs=1, **SMALL)
    m.train_words = False
    words = np.flatnonzero(m._vocab_image_rows < 0)
    before = m.wv.vectors[words].copy()
    m.train(docs, total_examples=len(docs), epochs=1)
    assert np.array_equal(before, m.wv.vectors[words])


def test_determinism_with_one_worker(plain):
    docs = plain.docs[:500]
    a = Im2Vec(docs, image_features=plain.features, epochs=2, **SMALL)
    b = Im2Vec(docs, image_features=plain.features, epochs=2, **SMALL)
    assert np.array_equal(a.wv.vectors, b.wv.vectors)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.syn1neg, b.syn1neg)
    c = Im2Vec(docs, image_features=plain.features, epochs=2, **{**SMALL, "seed": 2})
    assert not np.array_equal(a.W, c.W)


def test_loss_is_the_exact_sum_of_job_and_space_step_losses_with_two_workers(plain, monkeypatch):
    seen, space = [], []
    real_job, real_space = K.train_job, model_module.space_step

    def spy_job(*args, **kwargs):
        out = real_job(*args, **kwargs)
        seen.append(out[0])
        return out

    def spy_space(*args, **kwargs):
        out = real_space(*args, **kwargs)
        space.append(out)
        return out

    _per_run_path(monkeypatch)
    monkeypatch.setattr(K, "train_job", spy_job)
    monkeypatch.setattr(model_module, "space_step", spy_space)
    docs = plain.docs * 3
    m = Im2Vec(docs, image_features=plain.features, epochs=2, compute_loss=True, batch_words=500,
               **{**SMALL, "workers": 2})
    assert len(seen) > 20 and len(space) > 20 and sum(space) > 0
    assert m.get_latest_training_loss() == pytest.approx(sum(seen) + sum(space), rel=1e-12)
    assert m.get_latest_training_loss() > 1e4  # not saturated at float32 precision


# ---------------------------------------------------------------------------- persistence
def _tag_rows(model):
    k2i = model.wv.key_to_index
    return np.sort([k2i[w] for w in model.image_tag_counts if w in k2i and not model.is_image(w)])


def test_image_vectors_lose_the_tags_common_directions_and_the_words_keep_theirs(plain, trained):
    """space_common_directions: after train(), W = (I − QQᵀ)·W_trained, Q the tags' unit mean (and
    top k principal directions), so every image vector, stored or projected, is orthogonal to Q; the
    training itself and the words are those of a model that keeps W as trained."""
    from gensim_im2vec.space import common_directions

    assert trained.space_common_directions is None and trained.space_directions is None  # the default
    mean = Im2Vec(plain.docs, image_features=plain.features, space_common_directions=0, **TRAIN)
    assert mean.space_directions.shape == (32, 1)
    np.testing.assert_allclose(mean.space_directions, common_directions(mean.wv.vectors[_tag_rows(mean)], 0),
                               atol=1e-5)
    two = Im2Vec(plain.docs, image_features=plain.features, space_common_directions=2, **TRAIN)
    assert two.space_directions.shape == (32, 3)
    np.testing.assert_allclose(two.space_directions, common_directions(two.wv.vectors[_tag_rows(two)], 2),
                               atol=1e-5)
    rows = np.stack([two.wv[k] for k in two.image_keys])
    Q = two.space_directions
    assert np.abs(rows @ Q).max() < 1e-4 * np.abs(rows).max()
    h = two.project(plain.test_features)
    assert np.abs(h @ Q).max() < 1e-4 * np.abs(h).max()
    kept = trained
    assert np.abs(np.stack([kept.wv[k] for k in kept.image_keys]) @ Q).max() > 0.1 * np.abs(rows).max()
    words = _tag_rows(kept)
    np.testing.assert_array_equal(kept.wv.vectors[words], two.wv.vectors[words])
    np.testing.assert_allclose(two.W, kept.W - Q @ (Q.T @ kept.W), rtol=1e-4, atol=1e-6)


def test_taking_out_the_tags_mean_lifts_a_class_words_nearest_held_out_images(hard, hard_trained):
    """On `hard` the images that lean towards every tag crowd each class word's nearest images;
    without the tags' mean direction (space_common_directions=0) a class word's 10 nearest held-out
    images are of its class more often. Measured, corpus seeds 0-2 x model seeds 1-2: 0.955-0.995
    against 0.900-0.930 with W as trained; held-out images' class word 0.913-0.948 against
    0.948-0.970 (the price)."""
    mean = Im2Vec(hard.docs, image_features=hard.features, space_common_directions=0, **TRAIN)
    kept, lifted = _hard_figures(hard_trained, hard), _hard_figures(mean, hard)
    assert lifted["word_to_held_out_p10"] >= kept["word_to_held_out_p10"] + 0.03, (kept, lifted)
    assert lifted["held_out_hits"] >= HARD_BARS["held_out_hits"], lifted


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_space_common_directions_is_checked_by_name(bad):
    with pytest.raises(ValueError, match="space_common_directions"):
        Im2Vec(space_common_directions=bad)


def test_more_common_directions_than_dimensions_is_an_error_before_training(plain):
    m = Im2Vec(image_features=plain.features, space_common_directions=23, epochs=1, **SMALL)
    m.build_vocab(plain.docs[:200])
    with pytest.raises(ValueError, match=r"space_common_directions=23 would take 24 of the 24 dimensions"):
        m.train(plain.docs[:200], total_examples=200, epochs=1)
    assert m.feature_mean is None  # refused before anything trained


def test_train_logs_what_the_space_adds_as_a_share_of_train(plain, caplog):
    """Issue 11's target 8 (what the space needs costs at most 25% of train()): each train() logs, in
    one line, what the space adds beside the images' own training (the feature mean, the analogy term,
    the steps after the epochs: readout, neighbours, the image rows) as seconds and as a share of
    that train(), and the space step's share of the epochs."""
    import re

    docs = plain.docs[:300]
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        m = Im2Vec(docs, image_features=plain.features, epochs=2, space_readout=0.5, space_neighbours=5, **SMALL)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("space: ")
             and "beside the images' training" in r.getMessage()]
    assert len(lines) == 1, caplog.text
    got = re.match(r"space: ([0-9.]+)s of train\(\)'s ([0-9.]+)s \(([0-9]+)%\) beside the images' training, "
                   r"the space step \(([0-9]+)% of the epochs", lines[0])
    assert got, lines[0]
    added, total, share, step = float(got[1]), float(got[2]), int(got[3]), int(got[4])
    assert 0 <= added <= total and 0 <= share <= 100 and 0 <= step <= 100, lines[0]  # (0.00s on a fast CPU)
    assert "after the epochs" in lines[0] and m.space_step_share > 0
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):  # a text-only model has no space to cost
        Im2Vec([d[1:] for d in docs], epochs=1, **SMALL)
    assert "beside the images' training" not in caplog.text


def test_too_few_tags_for_the_common_directions_keeps_W_and_says_so(caplog):
    rng = np.random.default_rng(0)
    feats = {f"img:{i}": rng.normal(size=8).astype(np.float32) for i in range(6)}
    docs = [[f"img:{i}", "cat" if i % 2 else "dog", "pet"] for i in range(6)]
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        m = Im2Vec(docs, image_features=feats, space_common_directions=2, epochs=1, **SMALL)
    assert m.space_directions is None and "3 tag(s) with a vector, too few for 3 common direction(s)" in caplog.text


def test_save_load_mmap_continue_keeps_feature_mean_and_projection(tmp_path, plain):
    docs = plain.docs[:300]
    m = Im2Vec(docs, image_features=plain.features, epochs=1, space_common_directions=1, **SMALL)
    mean = m.feature_mean.copy()
    path = tmp_path / "m.model"
    m.save(str(path))
    assert (tmp_path / "m.model.W.npy").exists() and (tmp_path / "m.model.image_vectors.npy").exists()
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    loaded = Im2Vec.load(str(path), mmap="r")
    assert isinstance(loaded.W, np.memmap) and isinstance(loaded.image_vectors, np.memmap)
    assert loaded.image_keys == m.image_keys
    np.testing.assert_array_equal(loaded.feature_mean, mean)
    assert np.array_equal(loaded.wv["img:3"], m.wv["img:3"])
    np.testing.assert_array_equal(loaded.project(plain.test_features[:2]), m.project(plain.test_features[:2]))
    assert loaded.similar_by_image(plain.test_features[0], topn=3) == m.similar_by_image(plain.test_features[0],
                                                                                          topn=3)
    W0 = np.array(loaded.W)
    loaded.train(docs, total_examples=len(docs), epochs=1)
    assert not np.array_equal(W0, loaded.W)
    np.testing.assert_array_equal(loaded.feature_mean, mean)  # μ is the first training's, not refitted
    assert isinstance(loaded.image_vectors, np.memmap)  # features stay memory-mapped
    for key in ("img:3", "img:299"):  # the rows were rewritten with the new W
        np.testing.assert_allclose(loaded.wv[key], loaded.project(plain.features[key]), rtol=1e-5, atol=1e-6)
    loaded.save(str(tmp_path / "m2.model"))
    again = Im2Vec.load(str(tmp_path / "m2.model"))
    assert np.array_equal(again.W, loaded.W)
    np.testing.assert_array_equal(again.space_directions, loaded.space_directions)
    assert again.space_common_directions == 1 and again.space_directions.shape == (24, 2)
    np.testing.assert_array_equal(again.feature_mean, mean)
    np.testing.assert_allclose(again.wv["img:3"], again.project(plain.features["img:3"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(again.project(plain.test_features[:2]), loaded.project(plain.test_features[:2]))


def test_word2vec_format_holds_words_and_images(tmp_path, trained):
    path = tmp_path / "vectors.txt"
    trained.wv.save_word2vec_format(str(path))
    head = path.read_text().splitlines()
    assert head[0] == f"{len(trained.wv)} 32"
    rows = {line.split(" ", 1)[0]: np.array(line.split()[1:], dtype=np.float32) for line in head[1:]}
    assert len(rows) == len(trained.wv)
    for key in ("img:7", "class3"):  # an image and a word, each with its own vector
        np.testing.assert_allclose(rows[key], trained.wv[key], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- two-stage
def test_from_word2vec_two_stage(plain):
    text = [d[1:] for d in plain.docs] * 2 + [["onlytext", "prose"]] * 5
    w2v = Word2Vec(text, vector_size=24, sg=1, min_count=1, epochs=3, workers=1, seed=1)
    m = Im2Vec.from_word2vec(w2v, image_features=plain.features, sentences=plain.docs, epochs=10)
    assert m.train_words == "new"  # the text's words frozen, the words it lacks learn
    for w in ("class1", "tag3", "onlytext"):
        assert np.array_equal(m.wv[w], w2v.wv[w])  # frozen word vectors
    assert "img:5" in m.wv and m.is_image("img:5")
    # this text gives the class words nearly one direction; among them, W still finds the right one
    H = m.project(plain.test_features)
    cos = np.stack([1 - m.wv.distances(h, plain.class_words) for h in H])
    acc = np.mean(cos.argmax(axis=1) == plain.test_labels)
    assert acc >= 0.9, acc
    assert "onlytext" in m.word_keys and "onlytext" not in m.image_tag_counts
    # update=True adds more images/tags later
    more = [["img:1500", "class0", "brandnew"]]
    m.build_vocab(more, update=True)
    assert "brandnew" in m.wv and "img:1500" in m.image_keys


def test_from_word2vec_runs_its_callbacks(plain):
    """Callbacks given to from_word2vec run during its training, as gensim's constructor runs its own
    (they were stored on the model and skipped)."""
    from gensim.models.callbacks import CallbackAny2Vec

    class Count(CallbackAny2Vec):
        def __init__(self):
            self.epochs, self.ended = 0, 0

        def on_epoch_end(self, model):
            self.epochs += 1

        def on_train_end(self, model):
            self.ended += 1

    w2v = Word2Vec([d[1:] for d in plain.docs], vector_size=16, sg=1, min_count=1, epochs=1, workers=1, seed=1)
    count = Count()
    Im2Vec.from_word2vec(w2v, image_features=plain.features, sentences=plain.docs[:200], epochs=3, callbacks=[count])
    assert (count.epochs, count.ended) == (3, 1)


@pytest.fixture(scope="module")
def two_stage_zero_shot():
    """Two-stage: `class<c>_r1` co-occurs with `class<c>` in the text only, never with an image."""
    data = make_corpus(n_classes=8, n_images=800, n_features=32, n_related=2, n_test=160,
                       n_text_sentences=3000, seed=5)
    unseen = [f"class{c}_r1" for c in range(8)]
    text = [d for d in data.docs if not d[0].startswith("img:")]
    images = [[w for w in d if w not in unseen] for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=24, sg=1, min_count=1, epochs=10, workers=1, seed=1)
    model = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images, epochs=15, sample=0)
    return data, unseen, model, w2v


def test_a_text_only_word_ranks_first_among_text_only_words_for_images_of_its_class(two_stage_zero_shot):
    """The module docstring's last example, measured: class<c>_r1 never met an image, yet an image
    of class c finds it first among the eight such words, by plain cosine in model.wv."""
    data, unseen, m, w2v = two_stage_zero_shot
    assert set(unseen).isdisjoint(m.image_tag_counts) and set(unseen) <= set(m.word_space_keys)
    for w in unseen:
        assert np.array_equal(m.wv[w], w2v.wv[w])  # the text's vector, untouched
    held_out = np.stack([1 - m.wv.distances(h, unseen) for h in m.project(data.test_features)])
    hits = np.mean(held_out.argmax(axis=1) == data.test_labels)
    assert hits >= 0.9, hits  # chance: 1/8
    keys = [k for k in m.image_keys][:200]
    seen = np.stack([1 - m.wv.distances(k, unseen) for k in keys])
    assert np.mean(seen.argmax(axis=1) == [data.labels[k] for k in keys]) >= 0.9
    # and an image's nearest words overall are its class's words
    preds = m.similar_by_image(data.test_features, topn=1, restrict="words")
    own = [{f"class{y}", f"class{y}_r0", f"class{y}_r1"} for y in data.test_labels]
    assert np.mean([p[0][0] in o for p, o in zip(preds, own)]) >= 0.9


def test_a_tag_the_text_never_saw_joins_the_word_space(two_stage_zero_shot):
    """Two-stage with frozen words: a tag only the image documents have starts random; the space
    step moves it (its pretrained neighbours stay put), so it is a word of the space."""
    data, unseen, _, w2v = two_stage_zero_shot
    images = [[w for w in d if w not in unseen] + (["brandnew"] if data.labels[d[0]] == 0 else [])
              for d in data.docs if d[0].startswith("img:")]
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images[:400], epochs=2, sample=0)
    assert "brandnew" in m.word_keys and "brandnew" in m.word_space_keys
    assert set(w2v.wv.index_to_key) < set(m.word_space_keys)
    assert all(np.array_equal(m.wv[w], w2v.wv[w]) for w in ("class0", "tag3"))
    space = words_only(m, word_space=True)
    assert "brandnew" in space.key_to_index and not any(m.is_image(k) for k in space.index_to_key)
    # train_words="new": the added words learn by skip-gram as well, and are words of the space
    learnt = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images[:200], epochs=1, sample=0,
                                  train_words="new")
    assert "brandnew" in learnt.word_space_keys
    # frozen words that were never pretrained nor met an image: nothing has a place, and the error says so
    frozen = Im2Vec([["a", "b", "c"]] * 20, train_words=False, min_count=1, workers=1, vector_size=8, epochs=1)
    with pytest.raises(ValueError, match="from_word2vec"):
        words_only(frozen, word_space=True)


@pytest.mark.xfail(strict=True, reason=(
    "known limit of train_words=False: a tag the text never saw starts at a random vector and only the space "
    "step moves it; on this corpus it pulls its class's images off their class word instead of joining them; "
    "larger word steps, rescaled starts, an image offset and space_calibrate_new_words did not fix it. "
    "from_word2vec's default, train_words='new', does (the test below; docs/joint-space.md)"))
def test_a_tag_only_the_images_placed_lands_near_its_images(two_stage_zero_shot):
    data, unseen, _, w2v = two_stage_zero_shot
    images = [[w for w in d if w not in unseen] + (["brandnew"] if data.labels[d[0]] == 0 else [])
              for d in data.docs if d[0].startswith("img:")]
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images, epochs=5, sample=0,
                             train_words=False)
    near = m.most_similar_images("brandnew", topn=10)
    assert np.mean([data.labels[k] == 0 for k, _ in near]) >= 0.9, near


def test_a_tag_the_text_never_saw_lands_near_its_images_and_its_words(two_stage_zero_shot):
    """from_word2vec's default (train_words="new"): a tag only the image documents have learns by
    skip-gram with the tags beside it, against the text's output vectors, as well as from the images:
    it lands among its class's images and next to its class's words, where train_words=False leaves
    it far from both (the xfail above); the text's words stay bit for bit."""
    data, unseen, _, w2v = two_stage_zero_shot
    images = [[w for w in d if w not in unseen] + (["brandnew"] if data.labels[d[0]] == 0 else [])
              for d in data.docs if d[0].startswith("img:")]
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images, epochs=5, sample=0)
    assert m.train_words == "new"
    near = m.most_similar_images("brandnew", topn=10)
    assert np.mean([data.labels[k] == 0 for k, _ in near]) >= 0.9, near
    words = [w for w, _ in words_only(m).most_similar("brandnew", topn=3)]
    assert set(words) <= {"class0", "class0_r0", "class0_r1"}, words
    frozen = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images, epochs=5, sample=0,
                                  train_words=False)
    assert m.wv.similarity("brandnew", "class0") > 0.6 > frozen.wv.similarity("brandnew", "class0") + 0.3
    for w in ("class0", "class0_r1", "tag3"):
        np.testing.assert_array_equal(m.wv[w], w2v.wv[w])


def test_image_tokens_survive_min_count_max_final_vocab_and_trim_rule(plain):
    docs = plain.docs[:200]  # each image once, class words 20 times, distractor tags ~12 times
    drop_images = lambda w, c, mc: utils.RULE_DISCARD if w.startswith("img:") else utils.RULE_DEFAULT  # noqa: E731
    m = Im2Vec(docs, image_features=plain.features, epochs=1, vector_size=16, min_count=15, trim_rule=drop_images,
               workers=1)
    assert len(m.image_keys) == 200
    assert set(plain.class_words) <= set(m.word_keys)
    assert min(m.wv.get_vecattr(w, "count") for w in m.word_keys) >= 15
    m = Im2Vec(docs, image_features=plain.features, epochs=1, vector_size=16, min_count=1, max_final_vocab=12,
               workers=1)
    assert len(m.image_keys) == 200
    assert 10 <= len(m.word_keys) <= 12


# ---------------------------------------------------------------------------- text only
def test_text_only_goes_through_the_same_kernel_and_learns(monkeypatch):
    calls = []
    real = K.train_job
    monkeypatch.setattr(K, "train_job", lambda *a, **k: calls.append(1) or real(*a, **k))
    from gensim.test.utils import common_texts
    m = Im2Vec(common_texts * 20, vector_size=10, min_count=1, epochs=5, workers=1, seed=1)
    assert calls and m.W is None and m.image_keys == []
    # it learns what gensim's Word2Vec learns from the same seed: the same draws, so the vectors
    # differ only by the sigmoid table's rounding (measured: at most 0.0016 over seeds 1-4; another
    # seed differs by about 1)
    w2v = Word2Vec(common_texts * 20, vector_size=10, min_count=1, epochs=5, workers=1, seed=1)
    assert m.wv.index_to_key == w2v.wv.index_to_key
    assert np.abs(m.wv.vectors - w2v.wv.vectors).max() < 0.01
    assert [w for w, _ in m.wv.most_similar("graph", topn=3)] == [w for w, _ in w2v.wv.most_similar("graph", topn=3)]


# ---------------------------------------------------------------------------- bad input
def test_missing_image_features_raise_or_skip(plain, caplog):
    docs = plain.docs[:50] + [["img:nofeat", "class1"], ["img:gone", "tag1"]]
    with pytest.raises(ValueError, match=r"2 image token\(s\) have no features.*img:nofeat"):
        Im2Vec(docs, image_features=plain.features, **SMALL)
    with caplog.at_level(logging.WARNING):
        m = Im2Vec(docs, image_features=plain.features, missing_images="skip", epochs=1, **SMALL)
    assert "img:nofeat" not in m.wv and "class1" in m.wv
    assert sum("dropped 2 image token(s)" in r.message for r in caplog.records) == 1
    with pytest.raises(ValueError, match="have no features"):
        Im2Vec([["img:1", "a"]], **SMALL)


@pytest.mark.parametrize("features, match", [
    ({"img:0": np.array([1.0, np.nan]), "img:1": np.ones(2)}, r"NaN or inf: 'img:0'"),
    ({"img:0": np.ones(2), "img:1": np.array([np.inf, 0])}, r"NaN or inf: 'img:1'"),
    ({"img:0": np.zeros(3), "img:1": np.ones(3)}, r"all zeros: 'img:0'"),
    ({"img:0": np.ones(3), "img:1": np.ones(4)}, r"mismatched feature dimensions.*'img:1' has 4"),
    ({"img:0": np.ones((2, 2))}, r"'img:0' must be a 1-D vector"),
    ((["img:0"], np.ones(3)), r"expected a 2-D array.*reshape"),
    ((["img:0", "img:1"], np.ones((3, 2))), r"2 keys for 3 feature rows"),
    ((["img:0", "img:0"], np.ones((2, 2))), r"duplicate image key 'img:0'"),
    ({}, r"mapping is empty"),
    ([1, 2, 3], r"expected a \{key: vector\} mapping"),
])
def test_bad_features_name_the_culprit(features, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Im2Vec([["img:0", "a", "b"]], image_features=features, **SMALL)


def test_bad_arguments():
    feats = {"img:0": np.ones(3)}
    with pytest.raises(ValueError, match="hs=1 with images"):
        Im2Vec(image_features=feats, hs=1, negative=0)
    with pytest.raises(ValueError, match="batch_words=20000 is larger than 10000"):
        Im2Vec(batch_words=20000)
    with pytest.raises(FileNotFoundError, match="corpus_file='x.txt': no such file"):
        Im2Vec(corpus_file="x.txt")
    with pytest.raises(ValueError, match="image_negatives"):
        Im2Vec(image_negatives="words")
    with pytest.raises(ValueError, match="image_alpha"):
        Im2Vec(image_alpha=0)
    with pytest.raises(ValueError, match="missing_images"):
        Im2Vec(missing_images="ignore")


def test_hs_text_only_delegates_to_gensim():
    from gensim.test.utils import common_texts
    m = Im2Vec(common_texts, hs=1, negative=0, vector_size=8, min_count=1, epochs=2, workers=1, seed=3)
    w2v = Word2Vec(common_texts, hs=1, negative=0, vector_size=8, min_count=1, epochs=2, workers=1, seed=3)
    assert m.wv.index_to_key == w2v.wv.index_to_key and m.wv.vectors.shape == (12, 8)
    assert np.array_equal(m.wv.vectors, w2v.wv.vectors)  # gensim's own kernel: bit for bit
    m2 = Im2Vec(image_features={"img:0": np.ones(3)}, hs=0, negative=5, vector_size=8, min_count=1)
    m2.hs = 1
    with pytest.raises(ValueError, match="hs=1 with images"):
        m2.build_vocab([["img:0", "a"]])


def test_vectors_lockf_is_validated(plain):
    docs = plain.docs[:50]
    m = Im2Vec(docs, image_features=plain.features, epochs=1, **SMALL)
    m.wv.vectors_lockf = np.ones(len(m.wv), dtype=np.float64)
    with pytest.raises(TypeError, match="vectors_lockf must be a 1-D float32 array.*float64"):
        m.train(docs, total_examples=len(docs), epochs=1)
    m.wv.vectors_lockf = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match="vectors_lockf has length 3"):
        m.train(docs, total_examples=len(docs), epochs=1)


def test_projection_input_is_checked(trained):
    with pytest.raises(ValueError, match="expected features of dim 64, got 5"):
        trained.project(np.ones(5))
    with pytest.raises(ValueError, match="NaN or inf"):
        trained.similar_by_image(np.full(64, np.nan))
    with pytest.raises(ValueError, match="all zeros"):
        trained.project(np.zeros((2, 64)))


def test_update_with_features_of_another_dimension_is_refused(plain):
    m = Im2Vec(plain.docs[:20], image_features=plain.features, epochs=1, **SMALL)
    with pytest.raises(ValueError, match="expected features of dim 64"):
        m.build_vocab([["img:x", "a"]], update=True, image_features={"img:x": np.ones(10)})
    with pytest.raises(ValueError, match="lack 20 image"):
        m.build_vocab([["img:x", "a"]], update=True, image_features={"img:x": np.ones(64)})
    assert m.features.dim == 64 and m.image_keys  # nothing half-built


def test_long_documents_are_split_not_cut():
    doc = [f"w{i % 50}" for i in range(25_000)]
    m = Im2Vec(vector_size=8, min_count=1, sample=0, workers=1, epochs=1)
    m.build_vocab([doc])
    effective, raw = m.train([doc], total_examples=1, epochs=1)
    assert (effective, raw) == (25_000, 25_000)


def test_missing_kernel_says_how_to_build_it():
    import subprocess
    import sys

    code = ("import sys; sys.modules['gensim_im2vec.im2vec_inner'] = None\n"
            "try:\n    import gensim_im2vec.model\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "compiled kernel" in out and "build_ext --inplace" in out and "pip install -e ." in out


def test_image_batch_cuts_jobs_into_runs_of_images(plain):
    m = Im2Vec(image_features=plain.features, image_batch=100, **SMALL)
    docs = plain.docs[:1000] + [["img:0", "class0", "img:0"]]  # one image twice in the last run
    m.build_vocab(docs)
    wv = m.wv

    def prepare(limit):
        return K.prepare_job(docs, wv.key_to_index, wv.expandos["sample_int"], m._vocab_image_rows, False,
                             m.window, False, 1, max_images=limit)

    tokens, slots, bounds, rwin, rows, runs, _ = prepare(100)
    assert len(runs) == 12 and runs[0].tolist() == [0, 0, 0]  # 10 runs of 100 images, then the tail
    assert runs[-1].tolist() == [len(tokens), len(bounds) - 1, len(rows)]
    for (t0, b0, r0), (t1, b1, r1) in zip(runs[:-1], runs[1:]):
        s = slots[t0:t1]
        assert bounds[b0] == t0 and bounds[b1] == t1  # runs end at document ends
        assert s.max() == r1 - r0 - 1 and s[s >= 0].min() == 0  # slots are local to their run
        assert [rows[r0 + x] for x in s[s >= 0]] == [m._vocab_image_rows[t] for t in tokens[t0:t1][s >= 0]]
    assert runs[-1][2] - runs[-2][2] == 1 and np.count_nonzero(slots[runs[-2][0]:] >= 0) == 2  # shared slot
    whole = prepare(0)
    assert len(whole[5]) == 2 and np.array_equal(whole[0], tokens)  # one run: the same tokens
    with pytest.raises(ValueError, match="image_batch"):
        Im2Vec(image_batch=-1)


def test_the_space_step_pairs_an_image_with_its_whole_document(plain):
    """A tag far from its image (window=1): the space step pairs each image with every word of its
    document, whatever the window; of the pair heads, only document context reaches it."""
    rng = np.random.default_rng(0)
    docs = [d[:1] + [f"filler{int(i)}" for i in rng.integers(0, 300, 6)] + d[1:2]
            for d in plain.docs]  # the class word stands 7 tokens from its image
    accs = {}
    for name, kw in (("space", {}), ("input, document", dict(image_heads="input", image_context="document")),
                     ("input, window", dict(image_heads="input", image_context="window"))):
        m = Im2Vec(docs, image_features=plain.features, window=1, epochs=10, sample=0, **{**SMALL, "workers": 2},
                   **kw)
        accs[name] = _class_word_hits(m, plain)
    assert accs["space"] >= 0.9 and accs["input, document"] >= 0.9 and accs["input, window"] < 0.5, accs


def test_memory_mapped_features_are_checked_only_where_the_vocabulary_uses_them(tmp_path):
    arr = np.ones((5, 4), dtype=np.float32)
    arr[4] = np.nan  # an image no document mentions
    np.save(tmp_path / "f.npy", arr)
    mm = np.load(tmp_path / "f.npy", mmap_mode="r")
    keys = [f"img:{i}" for i in range(5)]
    m = Im2Vec([["img:0", "a", "b"], ["img:1", "b", "c"]] * 5, image_features=(keys, mm), epochs=1, **SMALL)
    assert len(m.image_keys) == 2
    with pytest.raises(ValueError, match=r"NaN or inf: 'img:4'"):
        Im2Vec([["img:4", "a", "b"]], image_features=(keys, mm), **SMALL)


# ---------------------------------------------------------------------------- without the vision extra
# Runs first in a child interpreter: every import of torch, torchvision or PIL raises
# ModuleNotFoundError, as when the vision extra is not installed. (A `sys.modules["torch"] = None`
# entry would not do: SciPy's array-API helpers look the name up in sys.modules and read
# `.Tensor` from it, so gensim's own import fails.)
NO_VISION = """
import sys
class _NoVision:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchvision", "PIL"):
            raise ModuleNotFoundError(f"No module named {name!r} (the test hides the vision extra)", name=name)
sys.meta_path.insert(0, _NoVision())
try:
    import gensim_im2vec.features
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("the import blocker let gensim_im2vec.features (torch) import")
def vision_modules():
    return sorted(m for m in sys.modules if m.partition(".")[0] in ("torch", "torchvision", "PIL"))
"""


def test_a_model_trains_saves_and_loads_without_torch(tmp_path):
    """Train, save, load and query an Im2Vec with torch, torchvision and PIL unimportable: the
    model, the kernel, the space step and the synthetic corpus need none of them."""
    code = NO_VISION + f"""
import json
import numpy as np
from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus
data = make_corpus(n_classes=5, n_images=500, n_features=32, seed=3)
m = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1, epochs=8, sample=0,
           workers=1, seed=1)
m.save({str(tmp_path / "m.model")!r})
loaded = Im2Vec.load({str(tmp_path / "m.model")!r}, mmap="r")
preds = loaded.similar_by_image(data.test_features, topn=1, restrict="words")
hits = float(np.mean([p[0][0] == data.class_words[y] for p, y in zip(preds, data.test_labels)]))
print(json.dumps({{"hits": hits, "vision": vision_modules()}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.splitlines()[-1])
    assert got["vision"] == []
    assert got["hits"] >= 0.9, got  # held-out images find their class word first (65 words)


def test_the_kernel_space_and_model_error_tests_run_without_torch():
    """tests/conftest.py and the kernel, space-step and model-boundary test modules, collected and
    run by pytest in an interpreter where torch, torchvision and PIL cannot be imported."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = NO_VISION + """
import pytest
rc = pytest.main(["-q", "-p", "no:cacheprovider", "-rs", "tests/test_kernel.py", "tests/test_space.py",
                  "tests/test_model_errors.py"])
print("vision modules:", vision_modules())
sys.exit(int(rc))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert " passed" in res.stdout and "skipped" not in res.stdout, res.stdout[-3000:]
    assert "vision modules: []" in res.stdout


# ---------------------------------------------------------------------------- the README
def test_the_readmes_examples_run_and_show_what_they_say(tmp_path, monkeypatch):
    """The README's Python blocks that need no torch (the tour, two-stage, pretrained words fixed in
    one's own vocabulary, run after the two-stage block) run as written, and
    their comments are what they answer. (The block on your own images needs torch and a photo
    folder; examples/train_folder.py is that script, tested in test_examples.py.)"""
    import re
    from pathlib import Path

    from gensim.models import KeyedVectors

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    runnable = [b for b in blocks if "gensim_im2vec.features" not in b]
    assert len(blocks) == 4 and len(runnable) == 3
    monkeypatch.chdir(tmp_path)
    tour = {}
    exec(compile(runnable[0], "README.md: the tour", "exec"), tour)
    m, data = tour["model"], tour["data"]
    assert data.docs[0] == ["img:0", "class0", "tag26", "tag19", "tag36"]
    assert [w for w, _ in m.most_similar_words("img:0", topn=2)] == ["class0", "class0_r0"]
    assert [data.labels[k] for k, _ in m.most_similar_images("class3", topn=3)] == [3, 3, 3]
    assert data.test_labels[3] == 3 and m.project(data.test_features[3]).shape == (32,)
    assert m.similar_by_image(data.test_features[3], topn=1, restrict="words")[0][0] == "class3"
    assert len(m.similar_by_image(data.test_features[:5], topn=1, restrict="words")) == 5
    assert tour["again"].most_similar_words("img:0", topn=3) == m.most_similar_words("img:0", topn=3)
    assert_same_ranking(KeyedVectors.load("tour.kv").most_similar("img:0", topn=3), m.wv.most_similar("img:0", topn=3))
    assert all(m.is_image(k) for k, _ in m.wv.most_similar("img:0", topn=3))  # "(here images)"
    two = {}
    exec(compile(runnable[1], "README.md: two-stage", "exec"), two)
    assert np.array_equal(two["model"].wv["class1"], two["w2v"].wv["class1"])
    assert two["model"].is_image("img:0") and two["model"].train_words == "new"
    exec(compile(runnable[2], "README.md: pretrained words fixed in one's own vocabulary", "exec"), two)
    own, kv = two["model"], two["kv"]
    assert two["shared"] and np.array_equal(own.wv[two["shared"]], kv[two["shared"]])  # bit for bit after train()
    assert own.n_pretrained_words == 0 and own.is_image("img:0") and len(own.image_keys) == len(two["image_docs"])


def test_the_tags_filter_follows_new_tags(plain, tmp_path):
    """restrict="tags" is kept between calls, follows a vocabulary update that brings new tags, and
    is not saved with the model (a loaded model computes it again)."""
    m = Im2Vec(plain.docs[:300], image_features=plain.features, vector_size=16, sg=1, min_count=1, epochs=2,
               workers=1, seed=1)
    f = plain.test_features[0]
    assert "brandnew" not in dict(m.similar_by_image(f, topn=None, restrict="tags"))
    m.build_vocab([["img:1500", "class0", "brandnew"]], update=True)
    assert "brandnew" in dict(m.similar_by_image(f, topn=None, restrict="tags"))
    path = str(tmp_path / "m.model")
    m.save(path)
    again = Im2Vec.load(path)
    assert getattr(again, "_tag_mask_cache", None) is None
    assert [k for k, _ in again.most_similar_tags("img:3", topn=None)] == [
        k for k, _ in m.most_similar_tags("img:3", topn=None)]
