"""The training path keeps the images' rows of ``model.wv`` and :meth:`Im2Vec.project` one function.

Three defects of it, each with the tests that found it:

- a ``train()`` that gensim refuses (no ``total_examples``, no ``epochs``) fitted ``feature_mean``
  before gensim looked at its arguments, so ``project()`` answered otherwise afterwards (and the
  analogy plan, the last training's figures and gensim's own ``epochs``/``alpha`` changed too);
- ``build_vocab(update=True, image_features=NEW)`` with other features for images already in the
  model kept their old rows until the next ``train()``;
- a model with one image (or with images whose features are all the same) centred its features
  on themselves: every image row was zero, and gensim's cosine of it nan.
"""

import logging

import numpy as np
import pytest
from gensim.models.callbacks import CallbackAny2Vec
from test_space_lifecycle import N_TRAIN, _count_projected, assert_one_function

from gensim_im2vec import Im2Vec
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus

KW = dict(vector_size=16, sg=1, min_count=1, epochs=2, sample=0, seed=1, workers=1)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=5, n_images=400, n_features=32, n_related=1, n_test=10, seed=0)


@pytest.fixture(scope="module")
def docs(data):
    return data.docs[:N_TRAIN]


def _renamed_tags(documents, suffix="x"):
    """The documents with their distractor tags renamed: new words for a vocabulary update."""
    return [[t + suffix if t.startswith("tag") else t for t in d] for d in documents]


def _stream(documents):
    yield from documents


# ------------------------------------------------------------------ 1. a refused train() changes nothing
def _built_not_trained(data, docs, **kwargs):
    """A model whose image rows are W's with no μ yet (a text-only model given images by an update):
    project() is W·v̂, and the rows are it."""
    m = Im2Vec([d[1:] for d in docs], **dict(KW, **kwargs))
    m.build_vocab(docs, update=True, image_features=data.features)
    assert m.feature_mean is None
    assert_one_function(m, data.features, "before any train()")
    return m


@pytest.mark.parametrize("refused", ["generator without total_examples", "no epochs"])
def test_a_refused_train_leaves_feature_mean_and_project_as_they_were(data, docs, refused):
    m = _built_not_trained(data, docs)
    probe = data.test_features[:4]
    before, W0 = m.project(probe), m.W.copy()
    epochs, alpha, min_alpha = m.epochs, m.alpha, m.min_alpha
    with pytest.raises(ValueError, match="total_examples" if refused.startswith("generator") else "epochs"):
        if refused.startswith("generator"):
            m.train(_stream(docs), epochs=1)
        else:
            m.train(docs, total_examples=len(docs), start_alpha=0.5, end_alpha=0.4)
    assert m.feature_mean is None, "a refused train() fitted feature_mean"
    np.testing.assert_array_equal(m.project(probe), before)
    np.testing.assert_array_equal(m.W, W0)
    assert_one_function(m, data.features, "after the refused train()")
    # gensim sets these before it checks the arguments; a refused call puts them back
    assert (m.epochs, m.alpha, m.min_alpha) == (epochs, alpha, min_alpha)


def test_a_train_after_a_refused_one_is_the_train_without_it(data, docs):
    """Refused, then accepted: bit for bit the model that was never refused (one worker)."""
    plain = _built_not_trained(data, docs)
    refused = _built_not_trained(data, docs)
    with pytest.raises(ValueError, match="total_examples"):
        refused.train(_stream(docs), epochs=1)
    for m in (plain, refused):
        m.train(docs, total_examples=len(docs), epochs=2)
    assert refused.feature_mean is not None
    np.testing.assert_array_equal(refused.feature_mean, plain.feature_mean)
    np.testing.assert_array_equal(refused.W, plain.W)
    np.testing.assert_array_equal(refused.wv.vectors, plain.wv.vectors)
    assert_one_function(refused, data.features, "trained after a refused call")


def test_a_refused_train_keeps_the_last_trainings_analogy_plan_and_figures(data, docs):
    """The analogy plan, the analogy term's time and the setup time are the last training's until
    gensim accepts the next call."""
    quads = [("img:0", "class0", "class1", "img:1"), ("img:2", "class2", "class3", "img:3")]
    m = Im2Vec(docs, image_features=data.features, space_analogies=quads, **KW)
    plan = m._analogy_plan
    assert plan is not None and m.space_analogy_seconds > 0
    seconds, setup = m.space_analogy_seconds, m.space_setup_seconds
    m.space_analogies = [quads[0]]  # a train() now would plan one question
    with pytest.raises(ValueError, match="total_examples"):
        m.train(_stream(docs), epochs=1)
    assert m._analogy_plan is plan
    assert (m.space_analogy_seconds, m.space_setup_seconds) == (seconds, setup)
    m.train(docs, total_examples=len(docs), epochs=1)
    assert len(m._analogy_plan[0]) == 1 and m.space_setup_seconds >= 0


def test_analogies_the_vocabulary_lacks_are_still_refused_before_gensim_is_asked(data, docs):
    m = _built_not_trained(data, docs, space_analogies=[("img:0", "nosuchword", "class1", "img:1")])
    with pytest.raises(ValueError, match="none is left to train on"):
        m.train(docs, total_examples=len(docs), epochs=1)
    assert m.feature_mean is None and m._analogy_plan is None


def test_the_feature_mean_is_fitted_once_gensim_accepts_and_said_with_its_time(data, docs, caplog):
    """A user's on_train_begin already sees the fitted μ with the rows of it; the log line that
    reports the fit's time is there once per accepted train()."""
    m = _built_not_trained(data, docs)
    seen = {}

    class Look(CallbackAny2Vec):
        def on_train_begin(self, model):
            seen["mean"] = None if model.feature_mean is None else model.feature_mean.copy()

    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        m.train(docs, total_examples=len(docs), epochs=1, callbacks=[Look()])
    assert seen["mean"] is not None
    np.testing.assert_array_equal(seen["mean"], m.feature_mean)
    assert caplog.text.count("the feature mean and plans") == 1  # (the one line of what the space cost)
    assert np.isfinite(m.space_setup_seconds) and m.space_setup_seconds >= 0
    assert 0 <= m.space_step_share


def test_a_callback_that_raises_as_training_begins_leaves_rows_of_the_fitted_mean(data, docs):
    """μ is fitted as gensim begins; a user's on_train_begin that raises then must not leave rows
    of the map without μ."""
    m = _built_not_trained(data, docs)

    class Boom(CallbackAny2Vec):
        def on_train_begin(self, model):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        m.train(docs, total_examples=len(docs), epochs=1, callbacks=[Boom()])
    assert_one_function(m, data.features, "after a callback raised in on_train_begin")


def test_corpus_file_training_fits_the_mean_as_the_iterable_does(tmp_path, data, docs):
    path = tmp_path / "docs.txt"
    path.write_text("".join(" ".join(d) + "\n" for d in docs))
    m = Im2Vec(corpus_file=str(path), image_features=data.features, **KW)
    it = Im2Vec(docs, image_features=data.features, **KW)
    np.testing.assert_array_equal(m.feature_mean, it.feature_mean)
    assert_one_function(m, data.features, "corpus_file")
    mean = m.feature_mean.copy()
    with pytest.raises(ValueError):  # corpus_file needs total_words
        m.train(corpus_file=str(path), total_examples=m.corpus_count, epochs=1)
    np.testing.assert_array_equal(m.feature_mean, mean)


# ------------------------------------------------------------------ 2. an update with other features
def _changed(features, keys, rng):
    """`features` with other vectors for `keys`."""
    out = dict(features)
    for k in keys:
        out[k] = (features[k] + rng.normal(size=features[k].shape)).astype(np.float32)
    return out


@pytest.mark.parametrize("new_images", [True, False])
def test_an_update_with_other_features_for_old_images_rewrites_their_rows(data, docs, new_images):
    m = Im2Vec(docs, image_features=data.features, **KW)
    mean = m.feature_mean.copy()
    changed = _changed(data.features, [f"img:{i}" for i in range(0, N_TRAIN, 3)], np.random.default_rng(5))
    more = _renamed_tags(data.docs[N_TRAIN:]) if new_images else _renamed_tags(docs[:20])
    m.build_vocab(more, update=True, image_features=changed)
    assert_one_function(m, changed, "after an update with other features")
    np.testing.assert_array_equal(m.feature_mean, mean)  # the μ W was trained against


def test_an_overwritten_store_rewrites_every_row(tmp_path, data, docs):
    """The same folder, the same keys, other rows (``mode="overwrite"``, here within the second the
    store was created): not the store the model has, grown."""
    keys = list(data.features)
    X = np.stack([data.features[k] for k in keys])
    store = FeatureStore.from_arrays(tmp_path / "feats", keys, X)
    m = Im2Vec(docs, image_features=store, **KW)
    Y = (X + np.random.default_rng(3).normal(size=X.shape)).astype(np.float32)
    again = FeatureStore.from_arrays(tmp_path / "feats", keys, Y, mode="overwrite")
    m.build_vocab(_renamed_tags(data.docs[N_TRAIN:]), update=True, image_features=again)
    assert_one_function(m, dict(zip(keys, Y)), "after the store was overwritten")


@pytest.mark.parametrize("model_from", ["training", "a saved model"])
def test_the_same_store_with_rows_appended_writes_only_the_new_rows(tmp_path, data, docs, monkeypatch, model_from):
    keys = list(data.features)
    X = np.stack([data.features[k] for k in keys])
    folder = tmp_path / "feats"
    store = FeatureStore.from_arrays(folder, keys[:N_TRAIN], X[:N_TRAIN])
    m = Im2Vec(docs, image_features=store, **KW)
    if model_from == "a saved model":  # the store is opened again by load(), by its recorded path
        m.save(str(tmp_path / "m.model"))
        m = Im2Vec.load(str(tmp_path / "m.model"))
    grown = FeatureStore.from_arrays(folder, keys[N_TRAIN:], X[N_TRAIN:], mode="extend")
    assert len(grown) == len(keys) and grown is not store
    projected = _count_projected(monkeypatch)
    n_old = len(m.image_keys)
    m.build_vocab(_renamed_tags(data.docs[N_TRAIN:]), update=True, image_features=grown)
    assert len(m.image_keys) - n_old == len(keys) - N_TRAIN
    assert sum(projected) == len(keys) - N_TRAIN, "the old images' rows were written again"
    assert m.feature_store is grown
    assert_one_function(m, data.features, "after the store grew")
    projected[:] = []
    m.build_vocab(_renamed_tags(docs[:5], "y"), update=True, image_features=grown)  # the same store again
    assert sum(projected) == 0
    assert_one_function(m, data.features, "after the same store again")


def test_a_refused_update_with_other_features_leaves_the_next_update_cheap(tmp_path, data, docs, monkeypatch):
    """An update refused with its new features (an image without features) keeps the model's
    features, and what it knows of its rows: the next update writes only its new images' rows."""
    keys = list(data.features)
    X = np.stack([data.features[k] for k in keys])
    store = FeatureStore.from_arrays(tmp_path / "feats", keys, X)
    m = Im2Vec(docs, image_features=store, **KW)
    changed = _changed(data.features, keys[:10], np.random.default_rng(1))
    with pytest.raises(ValueError, match="have no features"):
        m.build_vocab([*docs[:5], ["img:nofeatures", "class0"]], update=True, image_features=changed)
    assert m.feature_store is store
    projected = _count_projected(monkeypatch)
    m.build_vocab(_renamed_tags(data.docs[N_TRAIN:]), update=True)
    assert sum(projected) == len(keys) - N_TRAIN
    assert_one_function(m, data.features, "after a refused update")


# ------------------------------------------------------------------ 3. one image, or all alike
def _one_image_corpus(n_images=1, same=False, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=16).astype(np.float32)
    feats = {f"img:{i}": (base if same else rng.normal(size=16).astype(np.float32)) for i in range(n_images)}
    docs = [[f"img:{i}", "cat", "pet", "photo"] for i in range(n_images)]
    docs += [["cat", "pet", "sofa"], ["dog", "pet", "walk"], ["car", "road", "wheel"], ["photo", "camera"]] * 5
    return docs, feats


def _assert_finite_most_similar(model, key):
    sims = model.wv.most_similar(key, topn=5)
    assert len(sims) == 5
    assert np.isfinite([s for _, s in sims]).all(), sims


def test_a_model_with_one_image_gives_it_a_vector_not_zero(caplog):
    docs, feats = _one_image_corpus()
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        m = Im2Vec(docs, image_features=feats, **dict(KW, vector_size=8))
    word_norm = float(np.median(np.linalg.norm(m.wv.vectors[~m.image_mask], axis=1)))
    assert np.linalg.norm(m.wv["img:0"]) > 1e-3 * word_norm, "the image's row is zero (or rounding noise)"
    _assert_finite_most_similar(m, "img:0")
    np.testing.assert_array_equal(m.feature_mean, np.zeros(16, np.float32))  # no centring
    assert_one_function(m, feats, "one image")
    assert "one training image" in caplog.text and "no centring" in caplog.text
    # it stays so: continued training and an update with more images keep the μ W was trained against
    more_docs, more = _one_image_corpus(n_images=5, seed=1)
    more = {k.replace("img:", "img:new"): v for k, v in more.items()}
    more_docs = [[t.replace("img:", "img:new") for t in d] for d in more_docs]
    m.build_vocab(more_docs, update=True, image_features={**feats, **more})
    m.train(docs + more_docs, total_examples=len(docs) + len(more_docs), epochs=1)
    np.testing.assert_array_equal(m.feature_mean, np.zeros(16, np.float32))
    assert_one_function(m, {**feats, **more}, "one image, then more")


def test_images_whose_features_are_all_the_same_are_warned_about(caplog):
    docs, feats = _one_image_corpus(n_images=3, same=True)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        m = Im2Vec(docs, image_features=feats, **dict(KW, vector_size=8))
    assert "identical features" in caplog.text and "img:" in caplog.text
    word_norm = float(np.median(np.linalg.norm(m.wv.vectors[~m.image_mask], axis=1)))
    assert (np.linalg.norm(m.wv.vectors[m.image_mask], axis=1) > 1e-3 * word_norm).all()
    for key in feats:
        _assert_finite_most_similar(m, key)
    assert_one_function(m, feats, "identical features")


def test_two_distinct_images_are_still_centred_on_their_mean(caplog):
    docs, feats = _one_image_corpus(n_images=2)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        m = Im2Vec(docs, image_features=feats, **dict(KW, vector_size=8))
    unit = np.stack([v / np.linalg.norm(v) for v in feats.values()])
    np.testing.assert_allclose(m.feature_mean, unit.mean(axis=0), atol=1e-6)
    assert "identical features" not in caplog.text
    _assert_finite_most_similar(m, "img:0")
    assert_one_function(m, feats, "two images")


def test_the_feature_mean_reads_a_mapped_store_without_read_around_and_gets_the_same_mean(tmp_path, data, docs,
                                                                                          monkeypatch):
    """μ's rows, spread over a store that may be far larger than RAM, are read with the map advised
    MADV_RANDOM after MADV_WILLNEED on them (benchmarks/bench_feature_mean.py: 10M rows, 4.77 GiB
    read with the default read-around, 0.41 GiB this way): the reads change, never μ."""
    import gensim_im2vec.model as model_module
    from gensim_im2vec import image_features

    keys = list(data.features)
    store = FeatureStore.from_arrays(tmp_path / "feats", keys, np.stack([data.features[k] for k in keys]))
    seen = []

    def recording(vectors, rows, mode="prefetch"):
        seen.append((isinstance(vectors, np.memmap), len(rows), mode))
        return image_features.scattered_reads(vectors, rows, mode)

    means = {"in memory": Im2Vec(docs, image_features=data.features, **KW).feature_mean}
    for mode in ("prefetch", "plain"):
        monkeypatch.setattr(model_module, "scattered_reads",
                            lambda v, r, m="prefetch", _mode=mode: recording(v, r, _mode))
        m = Im2Vec(docs, image_features=FeatureStore.open(store.path, mmap=True), **KW)
        means[mode] = m.feature_mean
    assert np.array_equal(means["prefetch"], means["plain"]) and np.array_equal(means["plain"], means["in memory"])
    n_images = len({d[0] for d in docs if d[0].startswith("img:")})
    assert seen == [(True, n_images, "prefetch"), (True, n_images, "plain")]
