"""The Python API as a researcher who knows gensim uses it: each test is a call that went wrong
(a model saved under a ``.gz`` name that could not be loaded, a checkpoint saved by a callback
with stale image vectors, a weighted query key among its own neighbours, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.models.callbacks import CallbackAny2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus

KW = dict(vector_size=16, sg=1, min_count=1, epochs=3, sample=0, workers=1, seed=1)
DATA = make_corpus(n_classes=4, n_images=120, n_features=16, seed=0)


@pytest.fixture(scope="module")
def model() -> Im2Vec:
    return Im2Vec(DATA.docs, image_features=DATA.features, **KW)


def _image_rows_follow_w(m: Im2Vec) -> float:
    """Largest difference between the images' rows of ``wv`` and ``project`` of their features."""
    keys = m.image_keys
    return float(np.abs(m.wv[keys] - m.project(np.stack([DATA.features[k] for k in keys]))).max())


# ----------------------------------------------------------------------------- saving


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_save_under_a_compressed_name_loads_again(model, tmp_path, suffix):
    """gensim compresses a ``.gz``/``.bz2`` name; the atomic save wrote it under a temporary name
    without the suffix, so the file was not compressed and load failed ("damaged")."""
    path = tmp_path / f"m.model{suffix}"
    model.save(str(path))
    again = Im2Vec.load(str(path))
    assert np.array_equal(again.wv.vectors, model.wv.vectors)
    assert np.array_equal(again.W, model.W)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, path.name + ".W.npz", path.name + ".image_vectors.npz"])


def test_save_to_a_folder_is_refused_without_stray_files(model, tmp_path):
    """Saving to a folder's path wrote the companion files beside the folder (``<folder>.W.npy``)
    and then failed on a temporary name."""
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="it is a folder; give a file name in it"):
        model.save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
    assert list(folder.iterdir()) == []


def test_save_into_a_missing_folder_names_the_folder(model, tmp_path):
    """The error named a hidden temporary companion file (``.m.model.tmp-…W.npy``)."""
    with pytest.raises(FileNotFoundError, match=r"the folder '.*no/such' does not exist; create it first"):
        model.save(str(tmp_path / "no" / "such" / "m.model"))


# ----------------------------------------------------------------------------- training and callbacks


class _Checkpoint(CallbackAny2Vec):
    """The gensim way to keep a long run: save the model at each epoch's end."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.epoch, self.seen = folder, 0, []

    def on_epoch_end(self, model):
        self.epoch += 1
        model.save(str(self.folder / f"epoch{self.epoch}.model"))
        self.seen.append(_image_rows_follow_w(model))

    def on_train_end(self, model):
        self.seen.append(_image_rows_follow_w(model))


def test_callbacks_see_the_images_vectors_of_the_current_w(tmp_path):
    """A callback (a checkpoint, an evaluation) saw the images' rows of ``wv`` as they were before
    ``train()`` (random at the first), not those of the W trained so far; a checkpoint loaded
    again answered image queries from them."""
    cb = _Checkpoint(tmp_path)
    Im2Vec(DATA.docs, image_features=DATA.features, callbacks=[cb], space_common_directions=0, **KW)
    assert len(cb.seen) == KW["epochs"] + 1
    assert max(cb.seen) < 1e-5
    checkpoint = Im2Vec.load(str(tmp_path / "epoch1.model"))
    assert _image_rows_follow_w(checkpoint) < 1e-5


def test_callbacks_change_no_training_arithmetic():
    """Writing the images' rows at each epoch's end for the callbacks trains the same model."""

    class Noop(CallbackAny2Vec):
        pass

    plain = Im2Vec(DATA.docs, image_features=DATA.features, **KW)
    watched = Im2Vec(DATA.docs, image_features=DATA.features, callbacks=[Noop()], **KW)
    assert np.array_equal(plain.W, watched.W)
    assert np.array_equal(plain.wv.vectors, watched.wv.vectors)
    assert np.array_equal(plain.syn1neg, watched.syn1neg)


def test_interrupted_training_leaves_image_vectors_of_the_trained_w():
    """Ctrl-C (or a callback's error) in the middle of ``train()`` left the images' rows of ``wv``
    at their state before it (random on a first run): saving the interrupted model kept them."""

    class Stop(CallbackAny2Vec):
        def on_epoch_end(self, model):
            raise KeyboardInterrupt

    m = Im2Vec(image_features=DATA.features, **KW)
    m.build_vocab(DATA.docs)
    with pytest.raises(KeyboardInterrupt):
        m.train(DATA.docs, total_examples=m.corpus_count, epochs=m.epochs, callbacks=[Stop()])
    assert _image_rows_follow_w(m) < 1e-5


def test_no_words_error_names_min_count():
    """With every word under min_count the error said only "add text to the corpus"."""
    with pytest.raises(RuntimeError, match=r"fewer than min_count=1000 times \(lower min_count\)"):
        Im2Vec(DATA.docs, image_features=DATA.features, **{**KW, "min_count": 1000})


def test_image_features_may_be_a_store_path(tmp_path):
    """``Im2Vec.load(..., image_features=PATH)`` took a store's folder, ``Im2Vec(...)`` and
    ``build_vocab`` refused it ("got str")."""
    keys = list(DATA.features)
    FeatureStore.from_arrays(tmp_path / "feats", keys, np.stack([DATA.features[k] for k in keys]))
    for given in (str(tmp_path / "feats"), tmp_path / "feats"):
        m = Im2Vec(DATA.docs, image_features=given, **KW)
        assert isinstance(m.feature_store, FeatureStore) and len(m.image_keys) == len(keys)
    m = Im2Vec(**KW)
    m.build_vocab(DATA.docs, image_features=tmp_path / "feats")
    assert len(m.image_keys) == len(keys)
    with pytest.raises(FileNotFoundError, match="no feature store at"):
        Im2Vec(DATA.docs, image_features=tmp_path / "nothing", **KW)


def test_update_refuses_to_turn_a_word_into_an_image():
    """``build_vocab(update=True, image_features=...)`` with features for a key that is already a
    word silently made it an image: its trained vector was overwritten and it left the words."""
    m = Im2Vec(DATA.docs, image_features=DATA.features, **KW)
    before = m.wv["class0"].copy()
    clash = {**DATA.features, "class0": DATA.test_features[0]}
    with pytest.raises(ValueError, match=r"words of the vocabulary, e.g. \['class0'\]; an update cannot turn"):
        m.build_vocab([["img:0", "class0"]], update=True, image_features=clash)
    assert "class0" in m.word_keys and not m.is_image("class0")
    assert np.array_equal(m.wv["class0"], before)


# ----------------------------------------------------------------------------- queries


def test_restricted_queries_leave_out_weighted_query_keys(model):
    """gensim leaves the keys of ``(key, weight)`` pairs out of ``most_similar``; the
    modality-restricted versions returned the query itself first."""
    images = [k for k, _ in model.most_similar_images([("img:0", 1.0)], topn=3)]
    assert "img:0" not in images
    assert images == [k for k, _ in model.most_similar_images(["img:0"], topn=3)]
    words = [k for k, _ in model.most_similar_words([("class0", 2.0)], negative=[("class1", 0.5)], topn=3)]
    assert not {"class0", "class1"} & set(words)
    assert [k for k, _ in model.wv.most_similar([("class0", 1.0)], topn=50) if not model.is_image(k)][:3] == \
        [k for k, _ in model.most_similar_words([("class0", 1.0)], topn=3)]


def test_topn_none_returns_every_key_of_the_modality(model):
    """``topn=None`` (gensim: all similarities) raised a bare TypeError from ``int(None)``."""
    images = model.most_similar_images("class0", topn=None)
    assert len(images) == len(model.image_keys)
    assert [s for _, s in images] == sorted((s for _, s in images), reverse=True)
    assert len(model.most_similar_words("img:0", topn=None)) == len(model.word_keys)
    assert len(model.similar_by_image(DATA.test_features[0], topn=None)) == len(model.wv)


@pytest.mark.parametrize("topn", [-1, 2.5, "3", True])
def test_bad_topn_is_refused(model, topn):
    """A negative topn returned [] and a float was truncated, silently."""
    with pytest.raises(ValueError, match="topn must be an int >= 0"):
        model.most_similar_words("img:0", topn=topn)
    with pytest.raises(ValueError, match="topn must be an int >= 0"):
        model.similar_by_image(DATA.test_features[0], topn=topn)


def test_project_to_keyedvectors_takes_one_str_key(model):
    """A single key for a single image was read as its characters ("7 keys for 1 feature rows")."""
    kv = model.project_to_keyedvectors("img:new", DATA.test_features[0])
    assert kv.index_to_key == ["img:new"]
    assert isinstance(kv, KeyedVectors)
    assert np.allclose(kv["img:new"], model.project(DATA.test_features[0]))


def test_index_queries(model):
    """``ann_most_similar`` left a weighted query key in its answer, a NaN query vector got
    arbitrary keys (annoy) or nothing (faiss), and topn=None raised a bare TypeError."""
    pytest.importorskip("faiss")
    from gensim_im2vec.index import ModalityIndexer, ann_most_similar

    ix = ModalityIndexer(model, backend="faiss")
    hits = [k for k, _ in ann_most_similar(model, [("img:0", 1.0)], topn=3, indexer=ix, restrict="images")]
    assert "img:0" not in hits and len(hits) == 3
    with pytest.raises(ValueError, match="NaN or inf"):
        ix.most_similar(np.full(model.wv.vector_size, np.nan), 3)
    with pytest.raises(ValueError, match="topn must be an int >= 0"):
        ann_most_similar(model, "img:0", topn=None, indexer=ix)



def test_placing_an_image_with_a_text_only_model_says_how_to_add_images(tmp_path):
    """A plain gensim Word2Vec loaded by ``Im2Vec.load`` answered ``project`` with "build it with
    image_features first", naming no call; the call it names now works."""
    from gensim.models import Word2Vec

    Word2Vec([d[1:] for d in DATA.docs], vector_size=16, min_count=1, epochs=1, workers=1).save(
        str(tmp_path / "w2v.model"))
    m = Im2Vec.load(str(tmp_path / "w2v.model"))
    with pytest.raises(RuntimeError, match=r"loaded from a plain gensim Word2Vec.*build_vocab\(documents, update=True, "
                                           r"image_features=\.\.\.\)"):
        m.project(DATA.test_features[0])
    m.build_vocab(DATA.docs, update=True, image_features=DATA.features)
    m.train(DATA.docs, total_examples=len(DATA.docs), epochs=1)
    assert _image_rows_follow_w(m) < 1e-5


@pytest.mark.parametrize("workers", [0, -1])
def test_no_worker_threads_is_refused(workers):
    """gensim starts ``workers`` threads: with 0, ``train()`` returned at once having trained
    nothing, and the model looked trained."""
    with pytest.raises(ValueError, match=r"workers must be >= 1 .* got -?\d+; with none, train\(\) would silently"):
        Im2Vec(DATA.docs, image_features=DATA.features, **{**KW, "workers": workers})


def test_a_word_stays_a_word_when_features_given_at_load_have_its_key(tmp_path, model):
    """``Im2Vec.load(path, image_features=F)`` with a key of F equal to a word of the model kept it
    a word of the vocabulary, but ``is_image`` said True (so ``unknown_words`` refused it), and the
    next ``build_vocab(update=True)`` silently turned it into an image."""
    model.save(str(tmp_path / "m.model"))
    given = {**DATA.features, "class0": DATA.test_features[0]}
    m = Im2Vec.load(str(tmp_path / "m.model"), image_features=given)
    assert not m.is_image("class0") and m.unknown_words(["class0"]) == []
    assert m.is_image("img:0")
    m.build_vocab([["img:0", "newword"]], update=True)
    assert "class0" in m.word_keys and not m.is_image("class0")
    m.train(DATA.docs, total_examples=len(DATA.docs), epochs=1)
    assert not np.allclose(m.wv["class0"], m.project(DATA.test_features[0]))
