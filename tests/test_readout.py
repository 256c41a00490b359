"""space_readout: the image vector ``unit(W·(v̂ − μ)) + β · unit(R·(v̂ − μ) + c)``, with ``R`` a ridge
readout fitted from sums the last epoch gathers (issue 11: what gensim's cosine answers is still one
vector per image, stored in ``model.wv`` and given by ``project`` alike)."""

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.models.callbacks import CallbackAny2Vec

import gensim_im2vec.model as M
from gensim_im2vec import Im2Vec
from gensim_im2vec.baselines import RidgeScorer
from gensim_im2vec.evaluate import words_only
from gensim_im2vec.synthetic import make_corpus
from gensim_im2vec.validation import l2_normalize

OPTS = dict(workers=1, vector_size=16, min_count=1, sample=0, sg=1, epochs=4, seed=1)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=400, n_features=32, n_text_sentences=300, seed=0)


def image_docs(data):
    return [d for d in data.docs if d[0].startswith("img:")]


def readout_directions(model, features):
    """The readout's part of each image vector, ``unit(R·(v̂ − μ) + c)``, in float64."""
    V = l2_normalize(features, out_dtype=np.float64) - model.feature_mean
    return l2_normalize(V @ model.readout_W.T.astype(np.float64) + model.readout_offset, out_dtype=np.float64)


def spy_readout_fits(monkeypatch) -> dict:
    """The last readout fit's count, Gram rows and Gram rate, as ``_fit_readout`` finds them."""
    seen = {}
    real = Im2Vec._fit_readout

    def fit(self):
        seen.update(n=self._readout_sums.n, g=self._readout_sums.g, rate=self._readout_sums.gram_rate)
        real(self)

    monkeypatch.setattr(Im2Vec, "_fit_readout", fit)
    return seen


@pytest.mark.parametrize("path", [dict(), dict(space_candidates="own")])  # the kernel's job path, the per-run path
def test_the_readout_is_ridge_from_the_features_to_the_mean_unit_word(data, path):
    """With the words frozen (two-stage), the readout fitted from the last epoch's sums is the ridge
    baseline fitted on the same images and words: the same direction for held-out images, to float
    rounding. Gathered over all four epochs, the images would count four times (λ a quarter as strong)."""
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, train_words=False,
               space_word_alpha=0.0, **OPTS, **path)
    docs = image_docs(data)
    ridge = RidgeScorer.fit(np.array([data.features[d[0]] for d in docs]), [d[1:] for d in docs],
                            words_only(m, word_space=True))
    expected = l2_normalize(ridge.project(data.test_features) - ridge.word_mean, out_dtype=np.float64)
    ours = readout_directions(m, data.test_features)
    np.testing.assert_allclose(ours, expected, atol=2e-5)
    four = RidgeScorer.fit(np.array([data.features[d[0]] for d in docs] * 4), [d[1:] for d in docs] * 4,
                           words_only(m, word_space=True))
    other = l2_normalize(four.project(data.test_features) - four.word_mean, out_dtype=np.float64)
    assert np.abs(other - expected).max() > 10 * np.abs(ours - expected).max()


def test_the_mix_is_what_wv_and_project_and_plain_gensim_answer(data, tmp_path):
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    key = image_docs(data)[0][0]
    H = m.W @ (l2_normalize(data.features[key][None])[0] - m.feature_mean)
    P = m.readout_W @ (l2_normalize(data.features[key][None])[0] - m.feature_mean) + m.readout_offset
    mix = H / np.linalg.norm(H) + 0.5 * P / np.linalg.norm(P)
    np.testing.assert_allclose(m.wv[key], mix, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.project(data.features[key]), mix, rtol=1e-5, atol=1e-6)
    keys = [d[0] for d in image_docs(data)[:50]]
    np.testing.assert_allclose(m.wv[keys], m.project(np.array([data.features[k] for k in keys])), rtol=1e-4, atol=1e-5)
    m.wv.save(str(tmp_path / "m.kv"))
    assert KeyedVectors.load(str(tmp_path / "m.kv")).most_similar(key, topn=5) == m.wv.most_similar(key, topn=5)
    m.save(str(tmp_path / "m.model"))
    again = Im2Vec.load(str(tmp_path / "m.model"))
    np.testing.assert_array_equal(again.readout_W, m.readout_W)
    np.testing.assert_array_equal(again.project(data.test_features), m.project(data.test_features))


def test_the_readout_changes_no_step_of_training(data):
    """One worker: W, the words and the output vectors are those of the model without the readout,
    bit for bit; only the images' vectors differ (and differ from W's alone)."""
    plain = Im2Vec(data.docs, image_features=data.features, **OPTS)
    mixed = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    np.testing.assert_array_equal(mixed.W, plain.W)
    np.testing.assert_array_equal(mixed.syn1neg, plain.syn1neg)
    words = np.flatnonzero(mixed._vocab_image_rows < 0)
    np.testing.assert_array_equal(mixed.wv.vectors[words], plain.wv.vectors[words])
    assert plain.readout_W is None
    key = image_docs(data)[0][0]
    assert not np.allclose(l2_normalize(mixed.wv[key][None]), l2_normalize(plain.wv[key][None]), atol=1e-3)


def test_the_readout_lifts_a_class_words_images_above_the_others(data):
    """Word → image on held-out images: the share of a class word's 25 nearest held-out images that
    are of its class, with and without the readout (the synthetic classes are linear in the
    features, which ridge fits exactly)."""
    def precision(model):
        H = l2_normalize(model.project(data.test_features))
        hits = []
        for c, word in enumerate(data.class_words):
            u = model.wv[word] / np.linalg.norm(model.wv[word])
            top = np.argsort(-(H @ u))[:25]
            hits.append(np.mean(data.test_labels[top] == c))
        return np.mean(hits)

    plain = Im2Vec(data.docs, image_features=data.features, **OPTS)
    mixed = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    assert precision(mixed) >= precision(plain) - 0.02
    assert precision(mixed) > 0.9


def test_the_sums_gather_at_most_readout_max_images(data, monkeypatch):
    seen = []
    real = M._ReadoutSums.add

    def add(self, X, Y):
        real(self, X, Y)
        seen.append(self.n)

    monkeypatch.setattr(M, "READOUT_MAX_IMAGES", 150)
    monkeypatch.setattr(M._ReadoutSums, "add", add)
    Im2Vec(data.docs, image_features=data.features, space_readout=0.5, batch_words=200, **OPTS)
    assert seen and max(seen) == 150 and len(seen) > 2  # jobs past the limit add nothing


def test_a_model_saved_at_every_epochs_end_saves_without_the_sums(data, tmp_path):
    """A callback that saves the model at each epoch's end, the last one too (the sums exist then,
    with their lock): the save leaves them out, and the model loads with the readout of that train()."""
    class SaveEachEpoch(CallbackAny2Vec):
        def on_epoch_end(self, model):
            model.save(str(tmp_path / "each.model"))

    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, callbacks=[SaveEachEpoch()], **OPTS)
    loaded = Im2Vec.load(str(tmp_path / "each.model"))
    assert loaded._readout_sums is None and m._readout_sums is None
    assert m.readout_W is not None


def test_continued_training_refits_the_readout(data):
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    first = m.readout_W.copy()
    m.train(data.docs, total_examples=len(data.docs), epochs=2)
    assert not np.array_equal(m.readout_W, first)
    key = image_docs(data)[0][0]
    np.testing.assert_allclose(m.wv[key], m.project(data.features[key]), rtol=1e-5, atol=1e-6)


def test_a_model_saved_before_the_readout_loads_without_it(data, tmp_path):
    m = Im2Vec(data.docs, image_features=data.features, **OPTS)
    before = m.project(data.test_features)
    for name in ("_space_readout", "readout_W", "readout_offset", "_readout_sums"):
        m.__dict__.pop(name)
    m.save(str(tmp_path / "old.model"))
    old = Im2Vec.load(str(tmp_path / "old.model"))
    assert old.space_readout == 0.0 and old.readout_W is None
    np.testing.assert_array_equal(old.project(data.test_features), before)


@pytest.mark.parametrize("bad, message", [(dict(space_readout=-1.0), "space_readout must be a finite number >= 0"),
                                          (dict(space_readout=float("nan")), "space_readout must be"),
                                          (dict(space_readout=0.5, image_heads="output"),
                                           "space_readout sums a readout into the space head")])
def test_bad_readout_options_are_named(data, bad, message):
    with pytest.raises(ValueError, match=message):
        Im2Vec(image_features=data.features, **bad)


def test_past_readout_gram_images_the_gram_is_a_uniform_sample(data, monkeypatch):
    """More images in the last epoch than ``READOUT_GRAM_IMAGES``: ``Σ xyᵀ`` is still of every image,
    the F × F Gram of a uniform sample of about that many (scaled to all of them). The readout then
    differs from the full ridge, and stays close to it: the same words frozen, the held-out images'
    readout directions at cosine 0.98 on average to ridge's on all the images (half of 400 rows at
    F = 32; left unscaled to the n images, 0.97)."""
    docs = image_docs(data)
    seen = spy_readout_fits(monkeypatch)
    monkeypatch.setattr(M, "READOUT_GRAM_IMAGES", len(docs) // 2)
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, train_words=False,
               space_word_alpha=0.0, batch_words=200, **OPTS)
    assert seen["n"] == len(docs) and seen["rate"] == pytest.approx(0.5)
    assert abs(seen["g"] - len(docs) // 2) < 5 * np.sqrt(len(docs) / 4)  # binomial(n, 1/2): 5 sd
    ridge = RidgeScorer.fit(np.array([data.features[d[0]] for d in docs]), [d[1:] for d in docs],
                            words_only(m, word_space=True))
    expected = l2_normalize(ridge.project(data.test_features) - ridge.word_mean, out_dtype=np.float64)
    ours = readout_directions(m, data.test_features)
    cosines = np.sum(ours * expected, axis=1)
    assert np.abs(ours - expected).max() > 1e-3  # a sample's Gram, not every image's
    assert cosines.mean() > 0.975 and cosines.min() > 0.8, (cosines.mean(), cosines.min())
    monkeypatch.setattr(M, "READOUT_GRAM_IMAGES", 10 * len(docs))  # under the bound: every image, as before
    full = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, train_words=False,
                  space_word_alpha=0.0, batch_words=200, **OPTS)
    assert seen["g"] == seen["n"] == len(docs) and seen["rate"] == 1.0
    np.testing.assert_allclose(readout_directions(full, data.test_features), expected, atol=2e-5)


def test_the_sums_gram_holds_the_drawn_rows_and_the_rest_every_row(monkeypatch):
    monkeypatch.setattr(M, "READOUT_GRAM_IMAGES", 10**6)
    rng = np.random.default_rng(3)
    chunks = [(rng.random((n, 8), dtype=np.float32), rng.random((n, 3), dtype=np.float32)) for n in (250, 1, 400, 349)]
    sums = M._ReadoutSums(8, 3, limit=900, gram_rate=0.3, seed=7)
    for X, Y in chunks:
        sums.add(X, Y)
    draws = np.random.default_rng(7)
    X = np.concatenate([c[0] for c in chunks])[:900]
    Y = np.concatenate([c[1] for c in chunks])[:900]
    kept = np.concatenate([draws.random(len(x)) < 0.3 for x in (X[:250], X[250:251], X[251:651], X[651:900])])
    assert sums.n == 900 and sums.g == kept.sum() and 200 < sums.g < 340
    np.testing.assert_allclose(sums.sxx, X[kept].T.astype(np.float64) @ X[kept], rtol=1e-5)
    np.testing.assert_allclose(sums.sxs, X[kept].sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(sums.sx, X.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(sums.sxy, X.T.astype(np.float64) @ Y, rtol=1e-5)


def test_setting_space_readout_after_training_writes_the_image_rows_again(data, tmp_path):
    """``model.space_readout = β`` on a trained model: ``wv``'s image rows follow (``wv`` and
    ``project`` stay one function), the words do not move; a bad β is refused and changes nothing."""
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    keys = [d[0] for d in image_docs(data)[:40]]
    feats = np.array([data.features[k] for k in keys])
    before = m.wv[keys].copy()
    words = np.flatnonzero(m._vocab_image_rows < 0)
    word_rows = m.wv.vectors[words].copy()
    m.space_readout = 2.0
    assert m.space_readout == 2.0
    np.testing.assert_allclose(m.wv[keys], m.project(feats), rtol=1e-5, atol=1e-6)
    assert np.abs(m.wv[keys] - before).max() > 0.1
    np.testing.assert_array_equal(m.wv.vectors[words], word_rows)
    most = m.wv.most_similar(keys[0], topn=5)
    with pytest.raises(ValueError, match="space_readout must be"):
        m.space_readout = -1.0
    assert m.space_readout == 2.0 and m.wv.most_similar(keys[0], topn=5) == most
    m.save(str(tmp_path / "m.model"))
    again = Im2Vec.load(str(tmp_path / "m.model"))
    assert again.space_readout == 2.0 and "space_readout" not in again.__dict__
    again.space_readout = 0.0  # the space's map alone
    H = again.W @ (l2_normalize(feats) - again.feature_mean).T
    np.testing.assert_allclose(l2_normalize(again.wv[keys]), l2_normalize(H.T), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="image_heads='output' has none"):
        Im2Vec(image_features=data.features, image_heads="output", **OPTS).space_readout = 0.5


def test_a_model_saved_with_space_readout_as_an_attribute_loads_it(data, tmp_path):
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    answer = m.project(data.test_features)
    m.__dict__["space_readout"] = m.__dict__.pop("_space_readout")  # as saved before it was a property
    m.save(str(tmp_path / "old.model"))
    old = Im2Vec.load(str(tmp_path / "old.model"))
    assert old.space_readout == 0.5 and "space_readout" not in old.__dict__
    np.testing.assert_array_equal(old.project(data.test_features), answer)


def test_a_train_on_fewer_images_than_the_vocabulary_neither_crashes_nor_fits_from_a_row(data, monkeypatch, caplog):
    """The Gram's rate comes from the images the epochs before trained, not from the vocabulary's
    counts (a train() on three documents of a vocabulary built on 400 images is not sampled); a
    one-epoch train() has only the counts, and a sample of fewer than two rows keeps the readout."""
    monkeypatch.setattr(M, "READOUT_GRAM_IMAGES", 100)
    docs = image_docs(data)
    m = Im2Vec(image_features=data.features, space_readout=0.5, **OPTS)
    m.build_vocab(docs * 4)
    m.train(docs * 4, total_examples=4 * len(docs), epochs=2)
    fitted = m.readout_W.copy()
    seen = spy_readout_fits(monkeypatch)
    m.train(docs[:3], total_examples=3, epochs=2)
    assert seen == dict(n=3, g=3, rate=1.0) and not np.array_equal(m.readout_W, fitted)
    again = m.readout_W.copy()
    with caplog.at_level("WARNING", logger="gensim_im2vec.model"):
        m.train(docs[:3], total_examples=3, epochs=1)  # rate 100 / 1,600 of the vocabulary's counts
    assert seen["rate"] < 0.1 and seen["g"] < 2
    assert "too few to fit the readout" in caplog.text
    np.testing.assert_array_equal(m.readout_W, again)
    keys = [d[0] for d in docs[:3]]
    np.testing.assert_allclose(m.wv[keys], m.project(np.array([data.features[k] for k in keys])), rtol=1e-5,
                               atol=1e-6)


def test_a_failed_write_leaves_the_old_space_readout_and_setting_it_again_writes(data, monkeypatch):
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    keys = [d[0] for d in image_docs(data)[:20]]
    feats = np.array([data.features[k] for k in keys])
    real = Im2Vec._write_image_vectors

    def fails(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Im2Vec, "_write_image_vectors", fails)
    with pytest.raises(OSError, match="disk full"):
        m.space_readout = 2.0
    assert m.space_readout == 0.5
    monkeypatch.setattr(Im2Vec, "_write_image_vectors", real)
    m.space_readout = 2.0
    np.testing.assert_allclose(m.wv[keys], m.project(feats), rtol=1e-5, atol=1e-6)
    assert m._image_rows_from_W


def test_the_gram_stops_at_twice_readout_gram_images(monkeypatch):
    """A rate set from too few counted images would sample past the bound: the Gram stops at twice it
    (the draw itself lands about the bound, and at it half the epochs would lose their last rows)."""
    monkeypatch.setattr(M, "READOUT_GRAM_IMAGES", 10)
    sums = M._ReadoutSums(4, 2, limit=1000, gram_rate=0.5, seed=1)
    X, Y = np.ones((100, 4), np.float32), np.ones((100, 2), np.float32)
    sums.add(X, Y)
    drawn = int((np.random.default_rng(1).random(100) < 0.5).sum())
    assert drawn > 20 and sums.g == 20 and sums.n == 100
    np.testing.assert_allclose(sums.sxx, 20 * np.ones((4, 4)))


def test_a_copy_or_pickle_from_a_callback_of_the_last_epoch_leaves_the_readouts_sums(data):
    """The readout's sums hold a lock while the last epoch gathers them: a deepcopy or pickle of the
    model from a callback then (a user's snapshot) has none, it does not train; the live model's
    train() fits the readout from its own, as without the copy."""
    import copy
    import pickle

    class Copies(CallbackAny2Vec):
        def __init__(self):
            self.copies = []

        def on_epoch_end(self, m):
            if m._readout_sums is not None:
                self.copies += [copy.deepcopy(m), pickle.loads(pickle.dumps(m))]

    seen = Copies()
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, callbacks=[seen], **OPTS)
    assert len(seen.copies) == 2 and all(c._readout_sums is None for c in seen.copies)
    ref = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    np.testing.assert_allclose(m.readout_W, ref.readout_W, rtol=1e-6, atol=1e-7)
