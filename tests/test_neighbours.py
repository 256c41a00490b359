"""fit_neighbours: every image vector carries its nearest training images' whitened words (kNN tag
transfer in the space, issue 11): still one function of the features, in ``model.wv`` and
``project`` alike, kept by save/load, read by plain gensim, dropped when training moves the vectors."""

import logging

import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus
from gensim_im2vec.validation import l2_normalize

OPTS = dict(workers=1, vector_size=16, min_count=1, sample=0, sg=1, epochs=3, seed=1)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=300, n_features=32, n_text_sentences=200, seed=0)


@pytest.fixture()
def model(data):
    return Im2Vec(data.docs, image_features=data.features, **OPTS)


def image_docs(data):
    return [d for d in data.docs if d[0].startswith("img:")]


def own_tag_ap(model, docs) -> float:
    """Mean AP of each training image's own words among the words of the image documents, by
    gensim's cosine between its row of wv and theirs."""
    tags = sorted({w for d in docs for w in d[1:] if w in model.wv.key_to_index})
    U = l2_normalize(model.wv[tags])
    aps = []
    for d in docs:
        order = np.argsort(-(U @ l2_normalize(model.wv[d[0]][None])[0]))
        hits = np.isin(np.array(tags)[order], d[1:])
        ranks = np.flatnonzero(hits) + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    return float(np.mean(aps))


def test_rows_and_project_are_one_function_and_gensim_reads_them(model, data, tmp_path):
    docs = image_docs(data)
    before = own_tag_ap(model, docs)
    assert model.fit_neighbours(data.docs, k=10) is model
    keys = [d[0] for d in docs[:60]]
    np.testing.assert_allclose(model.wv[keys], model.project(np.array([data.features[k] for k in keys])),
                               rtol=1e-4, atol=1e-5)
    key = keys[0]
    ranked = model.wv.most_similar(key, topn=20)
    by_projection = model.wv.similar_by_vector(model.project(data.features[key]), topn=21)[1:]
    assert [k for k, _ in ranked] == [k for k, _ in by_projection]
    np.testing.assert_allclose([c for _, c in ranked], [c for _, c in by_projection], atol=1e-5)
    after = own_tag_ap(model, docs)
    assert after > before + 0.05, (before, after)
    model.wv.save(str(tmp_path / "m.kv"))
    assert KeyedVectors.load(str(tmp_path / "m.kv")).most_similar(key, topn=5) == model.wv.most_similar(key, topn=5)


def test_a_near_copy_of_a_training_image_lands_on_its_vector_and_its_words_rise(model, data):
    """With a sharp power a training image's term is its own whitened words: its words rank higher
    by cosine than without it, and a new image whose features are a near copy of it takes its vector."""
    docs = image_docs(data)
    tags = sorted({w for d in docs for w in d[1:]})
    U = l2_normalize(model.wv[tags])

    def mean_rank(m):  # of the image's own words among the tags, by cosine to its row
        return np.mean([np.flatnonzero(np.isin(np.array(tags)[np.argsort(-(U @ m.wv[d[0]]))], d[1:])).mean()
                        for d in docs])

    before = mean_rank(model)
    model.fit_neighbours(data.docs, k=10, weight=2.0)
    assert mean_rank(model) < 0.6 * before, (before, mean_rank(model))
    rng = np.random.default_rng(0)
    doc = docs[5]
    near = data.features[doc[0]] + 0.01 * np.abs(data.features[doc[0]]).mean() * rng.normal(size=32)
    v, row = model.project(near), model.wv[doc[0]]
    assert v @ row / np.linalg.norm(v) / np.linalg.norm(row) > 0.99
    far = model.project(data.test_features[:20])
    assert (l2_normalize(far) @ (row / np.linalg.norm(row))).mean() < 0.9


def test_the_term_is_the_k_nearest_images_whitened_words_by_their_cosine_to_the_power(model, data):
    """project(f) = unit(v) + weight · unit(Σ_j s_j^p · b̃_j), computed here from the documents and
    the features alone: the bags whitened by (G + λI)⁻¹ of the image documents' words."""
    from gensim_im2vec.model import NEIGHBOUR_POWER, NEIGHBOUR_WHITEN

    queries = data.test_features[:6]
    plain = model.project(queries).astype(np.float64)
    model.fit_neighbours(data.docs, k=5, weight=0.7)
    docs = [d for d in image_docs(data) if d[0] in model.wv.key_to_index]
    tags = sorted({w for d in docs for w in d[1:] if w in model.wv.key_to_index})
    U = l2_normalize(np.asarray(model.wv[tags], dtype=np.float64), out_dtype=np.float64)
    M = np.linalg.inv(U.T @ U / len(U) + NEIGHBOUR_WHITEN * np.eye(U.shape[1]))
    words = {}
    for d in docs:
        words.setdefault(d[0], set()).update(w for w in d[1:] if w in model.wv.key_to_index)
    keys = sorted(words)
    B = l2_normalize(np.array([U[[tags.index(w) for w in words[k]]].sum(0) for k in keys]) @ M,
                     out_dtype=np.float64)
    T = l2_normalize(np.array([data.features[k] for k in keys], dtype=np.float64), out_dtype=np.float64)
    S = l2_normalize(np.asarray(queries, dtype=np.float64), out_dtype=np.float64) @ T.T
    near = np.argsort(-S, axis=1)[:, :5]
    w = np.take_along_axis(S, near, 1).clip(0) ** NEIGHBOUR_POWER
    term = l2_normalize(np.einsum("nk,nkd->nd", w, B[near]), out_dtype=np.float64)
    expected = l2_normalize(plain, out_dtype=np.float64) + 0.7 * term
    np.testing.assert_allclose(model.project(queries), expected, rtol=2e-4, atol=2e-5)


def test_saved_and_loaded_with_the_model(model, data, tmp_path):
    model.fit_neighbours(data.docs, k=7, weight=0.5)
    key = image_docs(data)[3][0]
    model.save(str(tmp_path / "m.model"))
    for mmap in (None, "r"):
        again = Im2Vec.load(str(tmp_path / "m.model"), mmap=mmap)
        assert again.neighbour_k == 7 and again.neighbour_weight == 0.5
        assert again._neighbour_T is None  # read from the store again, not saved
        np.testing.assert_allclose(again.wv[key], model.wv[key], rtol=1e-6)
        np.testing.assert_allclose(again.project(data.test_features[:4]), model.project(data.test_features[:4]),
                                   rtol=1e-5, atol=1e-6)


def test_training_drops_them_and_says_so(model, data, caplog):
    plain_row = model.wv[image_docs(data)[0][0]].copy()
    model.fit_neighbours(data.docs)
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        model.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert "call model.fit_neighbours(documents) again" in caplog.text
    assert model.neighbour_bags is None and not model._neighbours_on()
    key = image_docs(data)[0][0]
    np.testing.assert_allclose(model.wv[key], model.project(data.features[key]), rtol=1e-4, atol=1e-5)
    assert not np.allclose(model.wv[key], plain_row)  # (trained one more epoch: W's rows, no words added)


@pytest.mark.parametrize("bad, match", [
    (dict(k=0), "k must be a positive int"), (dict(k=2.5), "k must be a positive int"),
    (dict(weight=0), "weight must be a positive finite number"), (dict(weight=True), "weight must be a positive finite"),
])
def test_bad_settings_are_refused_naming_them(model, data, bad, match):
    with pytest.raises(ValueError, match=match):
        model.fit_neighbours(data.docs, **bad)
    assert model.neighbour_bags is None


def test_documents_without_the_models_images_are_refused(model, data):
    with pytest.raises(ValueError, match="no document holds an image of this model"):
        model.fit_neighbours([["img:not-there", "cat"], ["just", "words"]])
    with pytest.raises(TypeError, match="got a str"):
        model.fit_neighbours("img:a cat")
    with pytest.raises(TypeError, match="each document must be a list of tokens"):
        model.fit_neighbours(["img:a cat", "dog"])


def test_a_model_without_a_trained_space_is_refused(data):
    untrained = Im2Vec(image_features=data.features, **OPTS)
    with pytest.raises(ValueError, match="needs a trained space|holds no image"):
        untrained.fit_neighbours(data.docs)


def test_features_renumbered_or_reordered_are_found_by_key(data, tmp_path):
    """A save drops the features the vocabulary does not use (the rows renumbered), a load may be given
    them in another order: the neighbours are the same images, found by key."""
    feats = {f"extra:{i}": v for i, v in enumerate(data.test_features[:40])}
    feats.update(data.features)
    m = Im2Vec(data.docs, image_features=feats, **OPTS)
    half = [d for d in image_docs(data) if int(d[0][4:]) < 200]
    m.fit_neighbours(half, k=5)
    probe = m.project(data.test_features[:8])
    m.save(str(tmp_path / "m.model"))
    again = Im2Vec.load(str(tmp_path / "m.model"))
    np.testing.assert_allclose(again.project(data.test_features[:8]), probe, rtol=1e-5, atol=1e-6)
    keys = [d[0] for d in image_docs(data)]
    np.testing.assert_allclose(again.wv[keys], again.project(np.array([data.features[k] for k in keys])),
                               rtol=1e-4, atol=1e-5)
    reordered = dict(reversed(list(data.features.items())))
    other = Im2Vec.load(str(tmp_path / "m.model"), image_features=reordered)
    np.testing.assert_allclose(other.project(data.test_features[:8]), probe, rtol=1e-5, atol=1e-6)


def test_refused_from_a_callback_during_training(model, data):
    from gensim.models.callbacks import CallbackAny2Vec

    class Fit(CallbackAny2Vec):
        def on_epoch_end(self, m):
            m.fit_neighbours(data.docs)

    with pytest.raises(RuntimeError, match="fit_neighbours"):
        model.train(data.docs, total_examples=len(data.docs), epochs=1, callbacks=[Fit()])
    assert model.neighbour_bags is None


def test_weights_numpy_scalars_and_infinity(model, data):
    model.fit_neighbours(data.docs, k=np.int64(4), weight=np.float32(0.5))
    assert model.neighbour_k == 4 and model.neighbour_weight == 0.5
    with pytest.raises(ValueError, match="positive finite number"):
        model.fit_neighbours(data.docs, weight=float("inf"))
    with pytest.raises(ValueError, match="positive finite number"):
        model.fit_neighbours(data.docs, weight=float("nan"))


def test_the_output_head_is_refused_naming_it(data):
    m = Im2Vec(data.docs, image_features=data.features, image_heads="output", **OPTS)
    with pytest.raises(ValueError, match="image_heads='output'"):
        m.fit_neighbours(data.docs)
