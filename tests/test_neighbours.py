"""fit_neighbours: every image vector carries its nearest training images' whitened words (kNN tag
transfer in the space, issue 11): still one function of the features, in ``model.wv`` and
``project`` alike, kept by save/load, read by plain gensim, dropped when training moves the vectors."""

import logging

import numpy as np
import pytest
import scipy.sparse
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


def dense_bags(m) -> np.ndarray:
    """The fitted images' whitened words summed, each at its scale: a dense row per image."""
    A = scipy.sparse.csr_matrix((np.ones(len(m.neighbour_bag_words)), m.neighbour_bag_words, m.neighbour_bag_ptr),
                                shape=(len(m.neighbour_keys), len(m.neighbour_word_vectors)))
    return (A @ m.neighbour_word_vectors) * m.neighbour_bag_scale[:, None]


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
        assert again.neighbour_k == again.space_neighbours == 7 and again.space_neighbour_weight == 0.5
        assert again._neighbour_search is None  # read from the store again, not saved
        np.testing.assert_allclose(again.wv[key], model.wv[key], rtol=1e-6)
        np.testing.assert_allclose(again.project(data.test_features[:4]), model.project(data.test_features[:4]),
                                   rtol=1e-5, atol=1e-6)


def test_a_later_train_fits_them_again_from_its_last_epoch(model, data, caplog):
    """fit_neighbours sets space_neighbours: train() moves the vectors the bags were read from, drops
    them as it begins and fits them again as it ends, from the documents of its last epoch."""
    plain_row = model.wv[image_docs(data)[0][0]].copy()
    model.fit_neighbours(data.docs, k=6, weight=0.8)
    assert (model.space_neighbours, model.space_neighbour_weight) == (6, 0.8)
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        model.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert "fitted again from its last epoch" in caplog.text and "space_neighbours:" in caplog.text
    assert model.neighbour_k == 6 and model._neighbours_on()
    bags = dense_bags(model)
    key = image_docs(data)[0][0]
    np.testing.assert_allclose(model.wv[key], model.project(data.features[key]), rtol=1e-4, atol=1e-5)
    assert not np.allclose(model.wv[key], plain_row)
    model.fit_neighbours(data.docs)  # (the model's k and γ): the bags the train() gathered, to float rounding
    np.testing.assert_allclose(dense_bags(model), bags, rtol=1e-5, atol=1e-6)


def test_a_train_without_them_drops_them_and_says_so(model, data, caplog):
    model.fit_neighbours(data.docs)
    model.space_neighbours = 0
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        model.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert "call model.fit_neighbours(documents) again" in caplog.text
    assert model.neighbour_keys is None and not model._neighbours_on()
    key = image_docs(data)[0][0]
    np.testing.assert_allclose(model.wv[key], model.project(data.features[key]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad, match", [
    (dict(k=0), "k must be a positive int"), (dict(k=2.5), "k must be a positive int"),
    (dict(weight=-1), "weight .*must be a finite number >= 0"),
    (dict(weight=True), "weight .*must be a finite number >= 0"),
])
def test_bad_settings_are_refused_naming_them(model, data, bad, match):
    with pytest.raises(ValueError, match=match):
        model.fit_neighbours(data.docs, **bad)
    assert model.neighbour_keys is None


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
    assert model.neighbour_keys is None


def test_weights_numpy_scalars_and_infinity(model, data):
    model.fit_neighbours(data.docs, k=np.int64(4), weight=np.float32(0.5))
    assert model.neighbour_k == 4 and model.space_neighbour_weight == 0.5
    with pytest.raises(ValueError, match="finite number >= 0"):
        model.fit_neighbours(data.docs, weight=float("inf"))
    with pytest.raises(ValueError, match="finite number >= 0"):
        model.fit_neighbours(data.docs, weight=float("nan"))


def test_the_output_head_is_refused_naming_it(data):
    m = Im2Vec(data.docs, image_features=data.features, image_heads="output", **OPTS)
    with pytest.raises(ValueError, match="image_heads='output'"):
        m.fit_neighbours(data.docs)


# ---------------------------------------------------------------- space_neighbours: fitted by train()
class Counted:
    """The documents, counting the passes over them."""

    def __init__(self, docs):
        self.docs, self.passes = docs, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.docs)


def test_train_with_space_neighbours_is_fit_neighbours_after_it_without_a_pass_of_its_own(data):
    """Im2Vec(..., space_neighbours=k) gathers the images' words while its last epoch trains them:
    the same state as fit_neighbours(documents) after a training without it, and no pass over the
    corpus of its own."""
    with_them, without = Counted(data.docs), Counted(data.docs)
    m = Im2Vec(with_them, image_features=data.features, space_neighbours=10, space_neighbour_weight=0.7, **OPTS)
    ref = Im2Vec(without, image_features=data.features, **OPTS)
    assert with_them.passes == without.passes == 1 + OPTS["epochs"]  # (the vocabulary's, then the epochs')
    assert m.neighbour_keys is not None and m.neighbour_k == 10
    assert m.space_neighbour_seconds > 0 and ref.space_neighbour_seconds == 0.0  # (target 8 counts it)
    ref.fit_neighbours(data.docs, k=10, weight=0.7)
    assert m.neighbour_keys == ref.neighbour_keys
    np.testing.assert_allclose(dense_bags(m), dense_bags(ref), rtol=1e-6, atol=1e-7)
    keys = [d[0] for d in image_docs(data)]
    np.testing.assert_allclose(m.wv[keys], ref.wv[keys], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.wv[keys], m.project(np.array([data.features[k] for k in keys])),
                               rtol=1e-4, atol=1e-5)
    assert own_tag_ap(m, image_docs(data)) > own_tag_ap(Im2Vec(data.docs, image_features=data.features, **OPTS),
                                                       image_docs(data)) + 0.05


def test_in_the_documents_order_with_several_workers_and_from_a_corpus_file(data, tmp_path):
    """The images and their words are kept in vocabulary order, so the bags do not depend on the
    order the jobs came in: two workers, or a corpus_file's (whose workers read ranges of the file)."""
    path = tmp_path / "corpus.txt"
    path.write_text("".join(" ".join(d) + "\n" for d in data.docs))
    for kwargs in (dict(sentences=data.docs, **{**OPTS, "workers": 2}),
                   dict(corpus_file=str(path), **{**OPTS, "workers": 2})):
        m = Im2Vec(image_features=data.features, space_neighbours=5, **kwargs)
        assert m.neighbour_keys is not None
        bags, keys = dense_bags(m), list(m.neighbour_keys)
        assert keys == sorted(keys, key=m.wv.key_to_index.__getitem__)
        m.fit_neighbours(reversed(data.docs))
        assert m.neighbour_keys == keys
        np.testing.assert_allclose(dense_bags(m), bags, rtol=1e-5, atol=1e-6)


def test_the_weight_set_after_writes_the_rows_again(model, data):
    key = image_docs(data)[2][0]
    plain = model.wv[key].copy()
    model.space_neighbour_weight = 2.0  # nothing fitted: the rows stay
    np.testing.assert_array_equal(model.wv[key], plain)
    model.fit_neighbours(data.docs, k=5, weight=1.0)
    fitted = model.wv[key].copy()
    model.space_neighbour_weight = 0
    assert not model._neighbours_on()
    np.testing.assert_allclose(model.wv[key], plain, rtol=1e-5, atol=1e-6)  # the vectors without them
    model.space_neighbour_weight = 1.0
    np.testing.assert_allclose(model.wv[key], fitted, rtol=1e-6, atol=1e-7)
    model.space_neighbour_weight = 3.0
    np.testing.assert_allclose(model.wv[key], model.project(data.features[key]), rtol=1e-4, atol=1e-5)
    for bad in (-0.5, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="space_neighbour_weight must be a finite number >= 0"):
            model.space_neighbour_weight = bad
    assert model.space_neighbour_weight == 3.0


@pytest.mark.parametrize("bad", [-1, 2.5, True, "20"])
def test_bad_space_neighbours_are_refused_naming_it(data, bad):
    with pytest.raises(ValueError, match="space_neighbours must be an int >= 0"):
        Im2Vec(image_features=data.features, space_neighbours=bad, **OPTS)


def test_space_neighbours_with_another_head_is_refused(data):
    with pytest.raises(ValueError, match="space_neighbours adds to the space head's image vectors"):
        Im2Vec(image_features=data.features, image_heads="output", space_neighbours=5, **OPTS)
    m = Im2Vec(data.docs, image_features=data.features, image_heads="output", **OPTS)
    m.space_neighbours = 5
    with pytest.raises(ValueError, match="image_heads='output' has none"):
        m.train(data.docs, total_examples=len(data.docs), epochs=1)


@pytest.mark.parametrize("sep_limit", [10 * 1024 ** 2, 0], ids=["in the pickle", "in files of their own"])
def test_a_model_saved_when_fit_neighbours_kept_its_own_weight_loads(model, data, tmp_path, sep_limit):
    """Saved before space_neighbours (fit_neighbours' k and weight as neighbour_k, neighbour_weight, its
    bags dense): loaded with them as the model's settings, its rows and projections as they were; a
    later train() fits them again, from its own documents (the dense bags kept no words)."""
    model.fit_neighbours(data.docs, k=4, weight=0.6)
    key = image_docs(data)[1][0]
    row = model.wv[key].copy()
    state = model.__dict__
    state["neighbour_bags"] = dense_bags(model).astype(np.float32)  # (as fit_neighbours kept them then)
    for name in ("neighbour_bag_ptr", "neighbour_bag_words", "neighbour_bag_scale", "neighbour_word_vectors",
                 "neighbour_tag_keys", "_previous_pool", "space_neighbours"):
        del state[name]
    state["neighbour_weight"] = state.pop("_space_neighbour_weight")
    state["_neighbour_T"] = np.ones((300, 32), dtype=np.float32)  # (the search's features, saved when large)
    model.save(str(tmp_path / "old.model"), sep_limit=sep_limit)
    again = Im2Vec.load(str(tmp_path / "old.model"))
    assert (again.space_neighbours, again.space_neighbour_weight, again.neighbour_k) == (4, 0.6, 4)
    assert "_neighbour_T" not in again.__dict__ and "neighbour_bags" not in again.__dict__
    assert "neighbour_weight" not in again.__dict__
    np.testing.assert_allclose(again.wv[key], row, rtol=1e-6)
    np.testing.assert_allclose(again.project(data.features[key]), row, rtol=1e-4, atol=1e-5)
    again.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert again.neighbour_k == 4 and again.neighbour_tag_keys is not None


def test_resumed_from_a_checkpoint_fits_them_as_the_run_ends(data, tmp_path):
    from gensim.models.callbacks import CallbackAny2Vec

    from gensim_im2vec.checkpoint import EpochCheckpoint, resume

    class Crash(CallbackAny2Vec):
        def on_epoch_end(self, m):
            raise KeyboardInterrupt

    path = tmp_path / "run.ckpt"
    m = Im2Vec(image_features=data.features, space_neighbours=5, **OPTS)
    m.build_vocab(data.docs)
    with pytest.raises(KeyboardInterrupt):
        m.train(data.docs, total_examples=m.corpus_count, epochs=m.epochs,
                callbacks=[EpochCheckpoint(path, epochs=m.epochs), Crash()])
    done = resume(path, data.docs)
    assert done.space_neighbours == 5 and done.neighbour_keys is not None
    ref = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    assert done.neighbour_keys == ref.neighbour_keys
    key = image_docs(data)[0][0]
    np.testing.assert_allclose(done.wv[key], done.project(data.features[key]), rtol=1e-4, atol=1e-5)


def test_the_bags_are_kept_as_word_lists_and_a_model_saved_with_dense_bags_loads(model, data, tmp_path):
    """The bags are each image's word positions (4 bytes a word) over one matrix of the whitened tags,
    not vector_size floats an image; a model saved with the dense bags (before) loads with the same
    vectors and projections."""
    model.fit_neighbours(data.docs, k=5)
    docs = image_docs(data)
    known = {}
    for d in docs:
        known.setdefault(d[0], set()).update(w for w in d[1:] if w in model.wv.key_to_index)
    assert len(model.neighbour_bag_words) == sum(len(known[k]) for k in model.neighbour_keys)
    assert len(model.neighbour_word_vectors) == len(set().union(*known.values()))
    np.testing.assert_allclose(np.linalg.norm(dense_bags(model), axis=1), 1.0, rtol=1e-5)
    probe, key = model.project(data.test_features[:5]), docs[4][0]
    row = model.wv[key].copy()
    state = model.__dict__
    state["neighbour_bags"] = dense_bags(model).astype(np.float32)
    for name in ("neighbour_bag_ptr", "neighbour_bag_words", "neighbour_bag_scale", "neighbour_word_vectors"):
        del state[name]
    model.save(str(tmp_path / "dense.model"))
    again = Im2Vec.load(str(tmp_path / "dense.model"))
    assert "neighbour_bags" not in again.__dict__ and len(again.neighbour_bag_ptr) == len(again.neighbour_keys) + 1
    np.testing.assert_allclose(again.project(data.test_features[:5]), probe, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again.wv[key], row, rtol=1e-6)


def test_more_training_images_than_the_exact_search_takes_are_refused_before_training(data, monkeypatch):
    import gensim_im2vec.model as model_module

    monkeypatch.setattr(model_module, "NEIGHBOUR_EXACT_MAX", 100)
    with pytest.raises(ValueError, match="space_neighbours compares every image with each of the 300"):
        Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    m = Im2Vec(data.docs, image_features=data.features, **OPTS)
    with pytest.raises(ValueError, match="NEIGHBOUR_EXACT_MAX"):
        m.fit_neighbours(data.docs)
    assert m.neighbour_keys is None and m.space_neighbours == 0


def test_an_older_model_never_fitted_loads_with_the_default_weight(model, data, tmp_path):
    """Models saved before space_neighbours held neighbour_weight 0.0 for "nothing fitted": that is
    not their γ (fit_neighbours, or a train() with space_neighbours, must then change the vectors)."""
    state = model.__dict__
    for name in ("space_neighbours", "_space_neighbour_weight", "neighbour_bag_ptr", "neighbour_bag_words",
                 "neighbour_bag_scale", "neighbour_word_vectors", "neighbour_tag_keys", "_previous_pool"):
        state.pop(name, None)
    state.update(neighbour_bags=None, neighbour_weight=0.0, neighbour_k=0)
    model.save(str(tmp_path / "old.model"))
    again = Im2Vec.load(str(tmp_path / "old.model"))
    assert (again.space_neighbours, again.space_neighbour_weight, again.neighbour_keys) == (0, 1.0, None)
    key = image_docs(data)[0][0]
    plain = again.wv[key].copy()
    again.fit_neighbours(data.docs, k=5)
    assert again._neighbours_on() and not np.allclose(again.wv[key], plain)


def test_a_train_on_some_of_the_images_keeps_the_others_words(data):
    """build_vocab(update=True) and a train() on the new documents, or a train() on some of them: the
    images its last epoch did not see keep their words; fit_neighbours(documents) takes the given ones alone."""
    docs = image_docs(data)
    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    pool = list(m.neighbour_keys)
    some = docs[:40]
    m.train(some, total_examples=len(some), epochs=1)
    assert m.neighbour_keys == pool and m._previous_pool is None
    key = docs[100][0]  # (not among them)
    np.testing.assert_allclose(m.wv[key], m.project(data.features[key]), rtol=1e-4, atol=1e-5)
    assert own_tag_ap(m, docs[100:160]) > 0.8 * own_tag_ap(m, docs[:40])
    m.fit_neighbours(some)
    assert m.neighbour_keys == sorted({d[0] for d in some}, key=m.wv.key_to_index.__getitem__)


def test_an_interrupted_train_keeps_the_pool_for_the_next(data):
    from gensim.models.callbacks import CallbackAny2Vec

    class Stop(CallbackAny2Vec):
        def on_epoch_end(self, m):
            raise RuntimeError("stopped")

    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    pool = list(m.neighbour_keys)
    with pytest.raises(RuntimeError, match="stopped"):
        m.train(data.docs, total_examples=len(data.docs), epochs=2, callbacks=[Stop()])
    assert m.neighbour_keys is None
    some = image_docs(data)[:30]
    m.train(some, total_examples=len(some), epochs=1)
    assert m.neighbour_keys == pool


def test_fit_neighbours_interrupted_leaves_the_settings_and_the_fit_as_they_were(model, data, monkeypatch):
    model.fit_neighbours(data.docs, k=5, weight=0.5)
    keys = list(model.neighbour_keys)

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "_write_image_vectors", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit_neighbours(image_docs(data)[:50], k=9, weight=2.0)
    assert (model.space_neighbours, model.space_neighbour_weight, model.neighbour_k) == (5, 0.5, 5)
    assert model.neighbour_keys == keys and not model._image_rows_from_W
    monkeypatch.undo()  # setting γ again, to the same value, writes the rows the interruption left
    model.space_neighbour_weight = 0.5
    key = image_docs(data)[7][0]
    np.testing.assert_allclose(model.wv[key], model.project(data.features[key]), rtol=1e-4, atol=1e-5)
    assert model._image_rows_from_W
    with pytest.raises(ValueError, match="fit_neighbours: weight"):
        model.fit_neighbours(data.docs, weight=-1)


# ---------------------------------------------------------------- a faiss index over the features
@pytest.mark.parametrize("spec", ["IVF4,Flat", "IVF4,SQ8", "IVF4,SQ8,RFlat"])
def test_a_faiss_index_over_the_features_gives_the_exact_search_vectors_when_it_probes_every_list(data, spec):
    """space_neighbour_index: the nearest images found by faiss (IVF lists of the vectors, or of
    codes re-ranked by the exact cosines read from the features, or by faiss's exact refine stage),
    probing every list: the same
    neighbours, so the same vectors as the exact search; wv and project stay one function."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    exact = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, space_neighbour_index=spec,
               space_neighbour_nprobe=4, **OPTS)
    assert m.neighbour_index == spec and type(m._neighbour_search).__name__ == "_FaissNeighbours"
    keys = list(exact.neighbour_keys)
    np.testing.assert_allclose(m.wv[keys], exact.wv[keys], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.project(data.test_features[:40]), exact.project(data.test_features[:40]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.wv[keys], m.project(np.array([data.features[k] for k in keys])),
                               rtol=1e-4, atol=1e-5)


def test_a_faiss_index_is_saved_beside_the_model_and_read_back_not_built_again(data, tmp_path, caplog,
                                                                              monkeypatch):
    """save() writes the fit's faiss index to FNAME.neighbours.faiss; the loaded model reads it when
    it first needs it (no k-means, no pass over the features: index_factory is never called) and
    projects as before the save; one list probed of eight is approximate."""
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, space_neighbour_index="IVF8,Flat",
               space_neighbour_nprobe=1, **OPTS)
    probe = m.project(data.test_features[:20])
    m.save(str(tmp_path / "m.model"))
    assert (tmp_path / "m.model.neighbours.faiss").read_bytes().startswith(b"gensim-im2vec neighbours faiss index")
    monkeypatch.setattr(faiss, "index_factory", lambda *a: pytest.fail("the saved index was built again"))
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        again = Im2Vec.load(str(tmp_path / "m.model"))
        assert again._neighbour_search is None
        np.testing.assert_allclose(again.project(data.test_features[:20]), probe, rtol=1e-5, atol=1e-6)
    assert f"faiss 'IVF8,Flat' over 300 images read from {tmp_path / 'm.model.neighbours.faiss'}" in caplog.text
    assert (again.space_neighbour_index, again.space_neighbour_nprobe) == ("IVF8,Flat", 1)
    assert faiss.extract_index_ivf(again._neighbour_search.index).nprobe == 1
    monkeypatch.undo()
    exact = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    differ = np.abs(again.project(data.test_features) - exact.project(data.test_features)).max(1) > 1e-4
    assert 0 < differ.mean() < 0.5  # (one list of eight: some queries' nearest lie in another)


def test_a_saved_index_of_another_fit_or_damaged_is_built_again_and_said(data, tmp_path, caplog):
    """The file beside the model is read only when it holds this fit's index (a token both keep):
    one left by another fit, a truncated one, or one of other images is built again, with a warning,
    and the model answers as the fit did."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    opts = dict(space_neighbours=5, space_neighbour_index="IVF4,Flat", space_neighbour_nprobe=4, **OPTS)
    m = Im2Vec(data.docs, image_features=data.features, **opts)
    probe = m.project(data.test_features[:20])
    path = str(tmp_path / "m.model")
    m.save(path)
    index_file = tmp_path / "m.model.neighbours.faiss"
    whole = index_file.read_bytes()
    other = Im2Vec(data.docs[: len(data.docs) // 2], image_features=data.features, **opts)
    other.save(str(tmp_path / "other.model"))
    for damage, said in [(lambda: index_file.write_bytes((tmp_path / "other.model.neighbours.faiss").read_bytes()),
                          "is not read (it is another fit's)"),
                         (lambda: index_file.write_bytes(whole[: len(whole) // 2]), "faiss could not read it"),
                         (lambda: index_file.write_bytes(b"not an index"), "it is not an index saved by Im2Vec.save"),
                         (lambda: index_file.unlink(), "(there is no such file)")]:
        damage()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
            again = Im2Vec.load(path)
            np.testing.assert_allclose(again.project(data.test_features[:20]), probe, rtol=1e-5, atol=1e-6)
        assert said in caplog.text and "faiss 'IVF4,Flat' over 300 images' features built" in caplog.text


def test_a_loaded_model_saved_elsewhere_takes_its_index_along_and_a_plain_one_removes_a_stale_one(data, tmp_path,
                                                                                                  caplog):
    """A model loaded and saved again without a search (its index not built since the load) copies the
    saved index to its new name, and leaves it where it was when saved over itself; a model without a
    faiss index saved over a name that held one removes that file (the next load would not read it, a
    stale 40 GB at scale)."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, space_neighbour_index="IVF4,Flat",
               space_neighbour_nprobe=4, **OPTS)
    probe = m.project(data.test_features[:10])
    m.save(str(tmp_path / "a.model"))
    loaded = Im2Vec.load(str(tmp_path / "a.model"))
    loaded.save(str(tmp_path / "a.model"))  # over itself: the index file stays
    loaded.save(str(tmp_path / "b.model"))
    assert (tmp_path / "a.model.neighbours.faiss").read_bytes() == (tmp_path / "b.model.neighbours.faiss").read_bytes()
    # (a second name of the same file, not a copy: GBs at scale; the first is never written in place)
    assert (tmp_path / "a.model.neighbours.faiss").stat().st_ino == (tmp_path / "b.model.neighbours.faiss").stat().st_ino
    caplog.clear()  # (the fit's own "built in" above, where another test left the loggers at INFO)
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        b = Im2Vec.load(str(tmp_path / "b.model"))
        np.testing.assert_allclose(b.project(data.test_features[:10]), probe, rtol=1e-5, atol=1e-6)
    assert "read from" in caplog.text and "built in" not in caplog.text
    Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS).save(str(tmp_path / "b.model"))
    assert not (tmp_path / "b.model.neighbours.faiss").exists()
    (tmp_path / "c.model.neighbours.faiss").write_bytes(b"a user's own file")  # not ours: left alone
    Im2Vec(data.docs, image_features=data.features, **OPTS).save(str(tmp_path / "c.model"))
    assert (tmp_path / "c.model.neighbours.faiss").read_bytes() == b"a user's own file"


def test_bad_index_settings_are_refused_naming_them(data):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    for bad in ("", 5, None):
        with pytest.raises(ValueError, match="space_neighbour_index must be 'exact' or a faiss index factory"):
            Im2Vec(image_features=data.features, space_neighbour_index=bad, **OPTS)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="space_neighbour_nprobe must be an int >= 1"):
            Im2Vec(image_features=data.features, space_neighbour_nprobe=bad, **OPTS)
    m = Im2Vec(image_features=data.features, space_neighbours=5, space_neighbour_index="IVF4,PQ7", **OPTS)
    m.build_vocab(data.docs)
    with pytest.raises(ValueError, match="space_neighbour_index='IVF4,PQ7': faiss cannot build it over 32-d"):
        m.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert m.W is None or not m.train_count  # refused before training


def test_a_faiss_index_is_not_bound_by_the_exact_searchs_limit(data, monkeypatch):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    import gensim_im2vec.model as model_module

    monkeypatch.setattr(model_module, "NEIGHBOUR_EXACT_MAX", 100)
    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, space_neighbour_index="IVF4,Flat",
               **OPTS)
    assert len(m.neighbour_keys) == 300
    with pytest.raises(ValueError, match="space_neighbour_index='IVF4096,PQ64'"):
        Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)


def interrupted(data) -> Im2Vec:
    """A model with the neighbours fitted, then a train() stopped by an error as its first epoch ends:
    the neighbours dropped from its vectors, their pool kept for the next train()."""
    from gensim.models.callbacks import CallbackAny2Vec

    class Stop(CallbackAny2Vec):
        def on_epoch_end(self, m):
            raise RuntimeError("stopped")

    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    with pytest.raises(RuntimeError, match="stopped"):
        m.train(data.docs, total_examples=len(data.docs), epochs=1, callbacks=[Stop()])
    return m


def test_the_pool_is_kept_by_key_across_a_vocabulary_built_again(data):
    """An interrupted train() leaves the pool for the next; a vocabulary built again meanwhile
    renumbers the words and images: each image keeps its own words."""
    m = interrupted(data)
    m.build_vocab(list(reversed(data.docs)))
    some = image_docs(data)[:30]
    m.train(some, total_examples=len(some), epochs=1)
    bags = dense_bags(m)
    keys = list(m.neighbour_keys)
    m.fit_neighbours(data.docs)
    assert m.neighbour_keys == keys
    np.testing.assert_allclose(bags, dense_bags(m), rtol=1e-5, atol=1e-6)


def test_the_faiss_search_is_that_of_the_fit_and_its_scores_are_cosines(data):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    import copy

    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, space_neighbour_index="IVF8,Flat",
               space_neighbour_nprobe=1, **OPTS)
    m.space_neighbour_nprobe = 8  # (for the next fit: this one's search keeps its nprobe)
    for other in (copy.deepcopy(m), m):
        keys = list(m.neighbour_keys)
        np.testing.assert_allclose(other.wv[keys], other.project(np.array([data.features[k] for k in keys])),
                                   rtol=1e-4, atol=1e-5)
    for spec, exact in (("PCA16,IVF4,Flat", False), ("HNSW16", True), ("IVF4,SQ8", False), ("Flat", True)):
        m.space_neighbour_index = spec
        m.fit_neighbours(data.docs)
        assert m._neighbour_search.exact is exact, spec


def test_an_index_faiss_cannot_build_for_these_images_is_refused_naming_it(data):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    with pytest.raises(ValueError, match="has 512 IVF lists for 300 images: give it fewer lists"):
        Im2Vec(data.docs, image_features=data.features, space_neighbours=5, space_neighbour_index="IVF512,Flat",
               **OPTS)
    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    m.space_neighbour_index = "PCA64,IVF4,Flat"  # (built over 32-d features, it fails as the index trains)
    keys = list(m.neighbour_keys)
    with pytest.raises(ValueError, match="faiss could not build it over these 300 images' features"):
        m.fit_neighbours(data.docs)
    assert m.neighbour_keys == keys and m.neighbour_index == "exact"  # (the fit as it was)
    with pytest.raises(ValueError, match="train.. has trained the model; its image vectors are left without"):
        m.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert m.neighbour_keys is None and m.train_count == 2
    key = image_docs(data)[0][0]
    np.testing.assert_allclose(m.wv[key], m.project(data.features[key]), rtol=1e-4, atol=1e-5)


def test_without_faiss_a_faiss_index_says_what_to_install(data, monkeypatch):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    import sys

    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, space_neighbour_index="IVF4,Flat",
               **OPTS)
    m._neighbour_search = None  # (as after a load)
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu, or fit them exactly"):
        m.project(data.test_features[:2])
    Im2Vec(image_features=data.features, space_neighbour_index="IVF4,Flat", **OPTS)  # (not used: no faiss needed)
    with pytest.raises(ImportError, match="is a faiss index: pip install faiss-cpu"):
        Im2Vec(image_features=data.features, space_neighbours=5, space_neighbour_index="IVF4,Flat", **OPTS)


def _faiss_model(data, **more):
    return Im2Vec(data.docs, image_features=data.features, **{
        **OPTS, "space_neighbours": 5, "space_neighbour_index": "IVF4,Flat", "space_neighbour_nprobe": 4, **more})


def test_a_save_that_fails_keeps_the_index_saved_before_and_leaves_no_stray_file(data, tmp_path, monkeypatch):
    """The index is written under a temporary name and renamed only once the model is saved: a save
    that fails (no space left, say) leaves the model and the index saved before as they were, and
    no index beside a model that was never written."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    import errno

    import gensim_im2vec.model as model_module

    m = _faiss_model(data)
    m.save(str(tmp_path / "m.model"))
    before = (tmp_path / "m.model.neighbours.faiss").read_bytes()
    other = _faiss_model(data, seed=2)  # another fit: another token

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_module, "atomic_save", full)
    for name in ("m.model", "new.model"):
        with pytest.raises(OSError, match="No space left"):
            other.save(str(tmp_path / name))
    monkeypatch.undo()
    assert (tmp_path / "m.model.neighbours.faiss").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if "faiss" in p.name) == ["m.model.neighbours.faiss"]


def test_an_index_that_cannot_be_written_leaves_the_model_saved_without_it(data, tmp_path, monkeypatch, caplog):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    import errno

    import gensim_im2vec.model as model_module

    m = _faiss_model(data)
    probe = m.project(data.test_features[:5])

    def full(self, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_module._FaissNeighbours, "write", full)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        m.save(str(tmp_path / "m.model"))
    assert "could not be written beside" in caplog.text and "No space left" in caplog.text
    assert not (tmp_path / "m.model.neighbours.faiss").exists()
    monkeypatch.undo()
    np.testing.assert_allclose(Im2Vec.load(str(tmp_path / "m.model")).project(data.test_features[:5]), probe,
                               rtol=1e-5, atol=1e-6)


def test_a_copy_saved_over_its_own_index_keeps_it_and_a_refit_after_a_load_says_nothing(data, tmp_path, caplog):
    """A deepcopy or pickle of a model (no search built, no file known) saved where its own index
    already is keeps that file; fit_neighbours on a loaded model builds its own index with no
    warning about the one saved for the fit before."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    import copy
    import pickle

    m = _faiss_model(data)
    path = str(tmp_path / "m.model")
    m.save(path)
    before = (tmp_path / "m.model.neighbours.faiss").read_bytes()
    copy.deepcopy(m).save(path)
    pickle.loads(pickle.dumps(m)).save(path)
    assert (tmp_path / "m.model.neighbours.faiss").read_bytes() == before
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        Im2Vec.load(path).project(data.test_features[:2])
        assert "read from" in caplog.text
        caplog.clear()
        Im2Vec.load(path).fit_neighbours(data.docs)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_saved_index_over_other_features_is_not_read(data, tmp_path, caplog):
    """The file records a digest of the features it was built over: a model loaded with other
    features for the same images (image_features=...) builds its index over those, as a model kept
    in memory does, instead of searching the old ones."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    m = _faiss_model(data)
    path = str(tmp_path / "m.model")
    m.save(path)
    rng = np.random.default_rng(5)
    other = {k: np.abs(v + rng.normal(scale=0.5, size=v.shape)).astype(np.float32) for k, v in data.features.items()}
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        loaded = Im2Vec.load(path, image_features=other)
        got = loaded.project(data.test_features[:20])
    assert "built over other features" in caplog.text
    m._attach_features(type(m.features).from_any(other))
    m._neighbour_search = None
    np.testing.assert_allclose(got, m.project(data.test_features[:20]), rtol=1e-5, atol=1e-6)


def test_a_damaged_byte_is_found_by_the_crc_and_a_relative_path_outlives_a_chdir(data, tmp_path, caplog,
                                                                               monkeypatch):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    m = _faiss_model(data)
    probe = m.project(data.test_features[:10])
    monkeypatch.chdir(tmp_path)
    m.save("m.model")
    loaded = Im2Vec.load("m.model")
    monkeypatch.chdir(tmp_path.parent)  # (the loaded model finds its index by its absolute path)
    loaded.save(str(tmp_path / "b.model"))
    assert (tmp_path / "b.model.neighbours.faiss").read_bytes() == (tmp_path / "m.model.neighbours.faiss").read_bytes()
    data_bytes = bytearray((tmp_path / "m.model.neighbours.faiss").read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 0xFF  # one vector's byte: faiss reads it, the CRC does not match
    (tmp_path / "m.model.neighbours.faiss").write_bytes(bytes(data_bytes))
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        again = Im2Vec.load(str(tmp_path / "m.model"))
        np.testing.assert_allclose(again.project(data.test_features[:10]), probe, rtol=1e-5, atol=1e-6)
    assert "its bytes are damaged" in caplog.text


def test_a_model_fitted_before_indexes_were_saved_saves_its_index_once_built(data, tmp_path, caplog):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    m = _faiss_model(data)
    m.neighbour_index_token = None  # (as a model of the version before loads)
    m._neighbour_search = None
    m.save(str(tmp_path / "old.model"))
    assert not (tmp_path / "old.model.neighbours.faiss").exists()
    old = Im2Vec.load(str(tmp_path / "old.model"))
    old.project(data.test_features[:2])  # builds it (no file: nothing to read, nothing said)
    old.save(str(tmp_path / "new.model"))
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        Im2Vec.load(str(tmp_path / "new.model")).project(data.test_features[:2])
    assert "read from" in caplog.text


def test_the_space_check_counts_the_neighbours_saved_index(data, tmp_path):
    """checkpoint.saved_bytes (what SpaceCheck compares with the free space before training) counts
    the faiss index save() writes beside the model: a lower bound of its file; none for the exact
    search, nor in a checkpoint (which holds no neighbours)."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    from gensim_im2vec.checkpoint import saved_bytes

    m = _faiss_model(data)
    counted = saved_bytes(m)["neighbours' faiss index"]
    assert counted == 300 * (4 * 32 + 8)  # IVF4,Flat: the 32 floats and an id an image
    m.save(str(tmp_path / "m.model"))
    assert counted <= (tmp_path / "m.model.neighbours.faiss").stat().st_size < 2 * counted
    assert "neighbours' faiss index" not in saved_bytes(m, checkpoint=True)
    assert "neighbours' faiss index" not in saved_bytes(Im2Vec(data.docs, image_features=data.features,
                                                               space_neighbours=5, **OPTS))


def test_the_space_check_counts_the_neighbours_word_lists_before_training(data):
    """saved_bytes counts the neighbours' word lists from the vocabulary alone (SpaceCheck runs
    before training, when the words of each image are not gathered yet): at most what the trained
    model holds in those arrays, and none without space_neighbours or in a checkpoint."""
    from gensim_im2vec.checkpoint import saved_bytes

    m = Im2Vec(image_features=data.features, space_neighbours=5, **OPTS)
    m.build_vocab(data.docs)
    before = saved_bytes(m)["neighbours' word lists"]
    assert before == 300 * 16 + 4 * 16  # 300 images: offset, scale, one word each; one word vector
    m.train(data.docs, total_examples=m.corpus_count, epochs=m.epochs)
    held = sum(a.nbytes for a in (m.neighbour_bag_ptr, m.neighbour_bag_words, m.neighbour_bag_scale,
                                  m.neighbour_word_vectors))
    assert before <= held
    assert "neighbours' word lists" not in saved_bytes(m, checkpoint=True)
    plain = Im2Vec(image_features=data.features, **OPTS)
    plain.build_vocab(data.docs)
    assert "neighbours' word lists" not in saved_bytes(plain)


def test_a_refine_stage_re_ranks_in_memory_without_reading_the_features(data, tmp_path, monkeypatch):
    """With a faiss refine stage (",RFlat", ",Refine(SQ8)") the candidates are re-ranked by faiss's
    own copy of the vectors: a new image's projection reads no fitted image's features (a code index
    without one reads its 4k candidates' rows), before a save and after a load alike; RFlat's are the
    exact cosines, float16's within about 1e-4 of them, so the vectors nearly the exact search's."""
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    from gensim_im2vec.image_features import ImageFeatures

    reads = []
    gather = ImageFeatures.gather_normalized
    monkeypatch.setattr(ImageFeatures, "gather_normalized", lambda self, rows, **kw: reads.append(len(rows)) or
                        gather(self, rows, **kw))
    exact = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    new = data.test_features[:40]
    for spec, reread in (("IVF4,SQ8", True), ("IVF4,SQ8,RFlat", False), ("IVF4,SQ8,Refine(SQfp16)", False)):
        m = _faiss_model(data, space_neighbour_index=spec)
        assert m._neighbour_search.refine is not reread, spec
        assert faiss.extract_index_ivf(m._neighbour_search.index).nprobe == 4  # (inside the refine stage too)
        reads.clear()
        projected = m.project(new)
        assert bool(reads) is reread, spec
        np.testing.assert_allclose(projected, exact.project(new), atol=1e-5 if "fp16" not in spec else 5e-3)
        m.save(str(tmp_path / "m.model"))
        again = Im2Vec.load(str(tmp_path / "m.model"))
        again.project(new[:1])  # (reads the saved index: the features' rows of its digest, once)
        reads.clear()
        np.testing.assert_allclose(again.project(new), projected, rtol=1e-5, atol=1e-6)
        assert bool(reads) is reread, spec
        assert faiss.extract_index_ivf(again._neighbour_search.index).nprobe == 4


def test_the_space_check_counts_a_refine_stages_codes(data):
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    from gensim_im2vec.checkpoint import saved_bytes

    m = Im2Vec(image_features=data.features, space_neighbours=5, space_neighbour_index="IVF4,SQ8,RFlat",
               space_neighbour_nprobe=4, **OPTS)
    m.build_vocab(data.docs)
    assert saved_bytes(m)["neighbours' faiss index"] == 300 * (32 + 8 + 4 * 32)  # SQ8 code, id, the float copy


def test_an_hnsw_under_a_refine_stage_searches_as_widely_as_without_one(data):
    """HNSW returns fewer good candidates than asked below its efSearch: under a refine stage (or a
    transform) it gets the same efSearch as alone, for the 4k candidates the refine re-ranks."""
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    for spec in ("HNSW16,SQ8", "HNSW16,Refine(SQfp16)", "PCA16,HNSW16"):
        m = _faiss_model(data, space_neighbour_index=spec)
        base = faiss.downcast_index(m._neighbour_search.index)
        while not isinstance(base, faiss.IndexHNSW):
            base = faiss.downcast_index(base.base_index if isinstance(base, faiss.IndexRefine) else base.index)
        assert base.hnsw.efSearch == 128, spec


def test_the_space_check_warns_but_does_not_refuse_on_the_neighbours_parts(data, tmp_path, monkeypatch, caplog):
    """The neighbours' index and word lists are counted for every image of the vocabulary, though an
    image whose documents hold no word is not fitted: a disk with room for the rest but not for them
    is warned about, not refused; one without room for the rest is refused, naming what it needs."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    import shutil

    from gensim_im2vec.checkpoint import PER_FITTED_IMAGE, NotEnoughSpace, SpaceCheck, saved_bytes

    m = Im2Vec(image_features=data.features, space_neighbours=5, space_neighbour_index="IVF4,SQ8,RFlat",
               space_neighbour_nprobe=4, **OPTS)
    m.build_vocab(data.docs)
    parts = saved_bytes(m)
    unsure = sum(parts[name] for name in PER_FITTED_IMAGE)
    rest = sum(parts.values()) - unsure
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=rest + unsure // 2))
    check = SpaceCheck(tmp_path / "m.model")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.checkpoint"):
        check.check(m)
    assert check.short == (rest + unsure // 2, rest + unsure) and "may not fit" in caplog.text
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=rest - 1))
    with pytest.raises(NotEnoughSpace) as err:
        SpaceCheck(tmp_path / "m.model").check(m)
    assert err.value.need == rest and not set(PER_FITTED_IMAGE) & set(err.value.parts)


def test_an_index_faiss_builds_by_l2_gives_cosines_through_a_refine_stage(data, tmp_path, caplog):
    """faiss's factory builds some indexes by L2 whatever metric is asked ("HNSW16_PQ8x4"): on unit
    vectors the same order, and its squared distances d become the cosines 1 - d/2. Through an exact
    refine stage (no re-rank from the features) the vectors are those of the same base re-ranked by
    the features' exact cosines."""
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    store = _faiss_model(data, space_neighbour_index="HNSW16_PQ8x4")
    refine = _faiss_model(data, space_neighbour_index="HNSW16_PQ8x4,RFlat")
    assert refine._neighbour_search.index.metric_type == faiss.METRIC_L2 and refine._neighbour_search.refine
    np.testing.assert_allclose(refine.project(data.test_features[:40]), store.project(data.test_features[:40]),
                               rtol=1e-5, atol=1e-6)
    S, _ = refine._neighbour_search.search(np.asarray(data.test_features[:5], dtype=np.float32)
                                           / np.linalg.norm(data.test_features[:5], axis=1, keepdims=True), 5)
    assert (S <= 1 + 1e-5).all() and (S[:, 0] > 0.5).all()  # (cosines, the nearest first)
    refine.save(str(tmp_path / "m.model"))  # (an L2 index is read back too, not built again)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        np.testing.assert_allclose(Im2Vec.load(str(tmp_path / "m.model")).project(data.test_features[:40]),
                                   store.project(data.test_features[:40]), rtol=1e-5, atol=1e-6)
    assert "read from" in caplog.text and "not read" not in caplog.text


def test_rows_are_written_grouped_by_ivf_list_so_a_block_reads_its_candidates_once(monkeypatch):
    """With a code index re-ranked from the features, the images' rows are written in the order of
    their IVF lists: a block of queries from a few lists shares its candidates, whose feature rows
    are read once a block (at 100M images the fit's largest cost). The rows are those written in
    vocabulary order (to float rounding: other chunks), with several times fewer feature rows read."""
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    from gensim_im2vec.image_features import ImageFeatures
    from gensim_im2vec.model import _FaissNeighbours

    big = make_corpus(n_classes=20, n_images=3000, n_features=32, n_text_sentences=200, seed=0)
    # (and 200 images whose documents hold no word: in the vocabulary, not fitted, written first)
    alone = {f"img:alone{i}": big.features[f"img:{i}"] + 0.01 for i in range(200)}
    m = Im2Vec(big.docs + [[key] for key in alone], image_features={**big.features, **alone},
               **{**OPTS, "epochs": 1, "space_neighbours": 5, "space_neighbour_index": "IVF16,SQ8",
                  "space_neighbour_nprobe": 2})
    keys = [k for k in m.wv.index_to_key if m.is_image(k)]
    assert len(keys) == 3200 and len(m.neighbour_keys) == 3000
    lists = m._neighbour_search.lists()
    assert lists is not None and (lists >= 0).all() and len(set(lists.tolist())) == 16
    reads = []
    gather = ImageFeatures.gather_normalized

    def counting(self, rows, **kw):
        reads.append(len(rows))
        return gather(self, rows, **kw)

    monkeypatch.setattr(ImageFeatures, "gather_normalized", counting)
    grouped = m.wv[keys].copy()
    m.space_neighbour_weight = 0.5
    m.space_neighbour_weight = 1.0  # (the rows written again, twice: grouped by list)
    by_list = sum(reads)
    np.testing.assert_array_equal(m.wv[keys], grouped)
    monkeypatch.setattr(Im2Vec, "_neighbour_order", lambda self, idx: idx)
    monkeypatch.setattr(_FaissNeighbours, "plan", lambda self, Q: None)  # (nor a chunk grouped: project's own)
    reads.clear()
    m.space_neighbour_weight = 0.5
    m.space_neighbour_weight = 1.0  # (in vocabulary order)
    np.testing.assert_allclose(m.wv[keys], grouped, rtol=1e-5, atol=1e-6)  # (the chunks' float rounding)
    in_order = sum(reads)
    assert 0 < by_list * 2 < in_order, (by_list, in_order)
    monkeypatch.undo()
    # wv's keys reordered by gensim: the rows are found by feature row, grouped as before, written where
    # the keys are now (the setter follows the new order)
    rng = np.random.default_rng(0)
    for key in keys:
        m.wv.set_vecattr(key, "count", int(rng.integers(1, 1000)))
    m.wv.sort_by_descending_frequency()
    monkeypatch.setattr(ImageFeatures, "gather_normalized", counting)
    reads.clear()
    m.space_neighbour_weight = 0.5
    m.space_neighbour_weight = 1.0
    assert sum(reads) <= by_list * 1.1, (sum(reads), by_list)
    monkeypatch.undo()
    features = np.array([{**big.features, **alone}[k] for k in keys])
    np.testing.assert_allclose(m.wv[keys], m.project(features), rtol=1e-4, atol=1e-5)


def test_project_searches_a_batch_grouped_by_ivf_list_with_the_same_vectors(monkeypatch):
    """`project` of a batch of new images with a code index re-ranked from the features searches them
    grouped by the IVF list each is nearest (faiss's coarse search once, then ``search_preassigned``):
    the vectors are those of the batch searched in its own order, with fewer feature rows read. Also
    under a transform (PCA) and with nprobe above the lists (faiss probes them all either way)."""
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    from gensim_im2vec.image_features import ImageFeatures
    from gensim_im2vec.model import _FaissNeighbours

    big = make_corpus(n_classes=20, n_images=3000, n_features=32, n_text_sentences=200, seed=0)
    rng = np.random.default_rng(1)
    trained = np.array([big.features[f"img:{i}"] for i in range(3000)])
    new = trained[rng.integers(0, 3000, 2000)] + 0.05 * np.abs(rng.normal(size=(2000, 32)))
    reads = []
    gather = ImageFeatures.gather_normalized

    def counting(self, rows, **kw):
        reads.append(len(rows))
        return gather(self, rows, **kw)

    for spec, nprobe in (("IVF16,SQ8", 2), ("PCA16,IVF16,SQ8", 2), ("IVF8,SQ8", 40)):
        m = Im2Vec(big.docs, image_features=big.features,
                   **{**OPTS, "epochs": 1, "space_neighbours": 5, "space_neighbour_index": spec,
                      "space_neighbour_nprobe": nprobe})
        search = m._neighbour_search
        assert search.plan(l2_normalize(new[:100], out_dtype=np.float32)) is None  # (one block: nothing to group)
        plan = search.plan(l2_normalize(new, out_dtype=np.float32))
        assert plan is not None and sorted(plan[0].tolist()) == list(range(len(new)))
        assert plan[2].shape == (len(new), min(nprobe, faiss.extract_index_ivf(search.index).nlist))
        assert (np.diff(plan[2][plan[0], 0]) >= 0).all()  # (in the order of each one's nearest list)
        reads.clear()
        monkeypatch.setattr(ImageFeatures, "gather_normalized", counting)
        grouped = m.project(new)
        by_list = sum(reads)
        monkeypatch.setattr(_FaissNeighbours, "plan", lambda self, Q: None)
        reads.clear()
        in_order = m.project(new)
        monkeypatch.undo()
        np.testing.assert_allclose(grouped, in_order, rtol=1e-5, atol=1e-6, err_msg=spec)
        assert 0 < by_list * 1.5 < sum(reads), (spec, by_list, sum(reads))
        # a batch larger than one plan's span: planned a span at a time, the same vectors
        monkeypatch.setattr(_FaissNeighbours, "span", 700)
        np.testing.assert_allclose(m.project(new), grouped, rtol=1e-5, atol=1e-6, err_msg=spec)
        monkeypatch.undo()
    # nprobe set above the lists after the build (faiss's own tuning call): every list probed, as faiss's
    # search does, not lists read at the wrong width
    ivf = faiss.extract_index_ivf(search.index)
    every = m.project(new)
    faiss.ParameterSpace().set_index_parameter(search.index, "nprobe", 40)
    assert ivf.nprobe == 40 and ivf.nlist == 8
    np.testing.assert_allclose(m.project(new), every, rtol=1e-5, atol=1e-6)
