"""Review of the lazy key dict of ImageFeatures and of save() leaving stale image rows out."""

import io
import os
import pickle
import threading

import numpy as np
import test_checkpoint_resume_rows as rows_tests

from gensim_im2vec import Im2Vec
from gensim_im2vec.image_features import ImageFeatures
from gensim_im2vec.store import FeatureStore

data = rows_tests.data  # 200 images of 16 features, 4 classes
_model, _image_idx, _assert_rows_are_W = rows_tests._model, rows_tests._image_idx, rows_tests._assert_rows_are_W


def test_a_save_to_a_file_handle_pickles_every_row_with_the_images_from_W(data):
    """A handle gets gensim's plain pickle, which pickle.load reads back without any _load_specials:
    the stream must hold a row per key (the words where they are, the images W's), not a checkpoint's
    word rows awaiting a load that writes the rest."""
    model = _model(data)
    vectors, words = model.wv.vectors, np.flatnonzero(model._vocab_image_rows < 0)
    before = np.array(vectors)
    buf = io.BytesIO()
    model.save(buf)
    # the live model as it was: its rows, its flag (train() writes them when it always did)
    assert model.wv.vectors is vectors and np.array_equal(model.wv.vectors, before)
    assert not model._image_rows_from_W and "_image_rows_left_out" not in model.__dict__
    buf.seek(0)
    loaded = pickle.load(buf)
    assert "_image_rows_left_out" not in loaded.__dict__
    assert len(loaded.wv.vectors) == len(loaded.wv)
    assert np.array_equal(loaded.wv.vectors[words], before[words])
    last_word = model.wv.index_to_key[int(words[-1])]
    assert np.array_equal(loaded.wv[last_word], model.wv[last_word])
    _assert_rows_are_W(loaded, data)
    assert loaded._image_rows_from_W


def test_a_handle_saved_file_loads_with_Im2Vec_load_too(data, tmp_path):
    model = _model(data)
    path = str(tmp_path / "h.model")
    with open(path, "wb") as f:
        model.save(f)
    for kwargs in ({}, {"mmap": "r"}):
        loaded = Im2Vec.load(path, **kwargs)
        assert len(loaded.wv.vectors) == len(loaded.wv) and loaded._image_rows_from_W
        _assert_rows_are_W(loaded, data)


def test_a_handle_save_of_a_trained_model_is_its_rows_as_they_are(data):
    model = _model(data)
    model.train(data.docs, total_examples=model.corpus_count, epochs=1)
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    assert np.array_equal(pickle.load(buf).wv.vectors, model.wv.vectors)


def test_the_lazy_key_dict_built_by_threads_at_once_is_one_right_dict(data, tmp_path):
    keys = sorted(data.features)
    FeatureStore.from_arrays(tmp_path / "s", keys, np.stack([data.features[k] for k in keys]))
    for _ in range(20):
        feats = ImageFeatures.from_any(FeatureStore.open(tmp_path / "s"))
        barrier, seen = threading.Barrier(8), []

        def look(feats=feats, barrier=barrier, seen=seen):
            barrier.wait()
            seen.append((feats.row(keys[7]), keys[3] in feats, "img:nope" in feats))

        threads = [threading.Thread(target=look) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == [(7, True, False)] * 8
        assert feats.key_to_index == {k: i for i, k in enumerate(keys)}


def test_a_models_own_features_build_their_dict_from_the_keys_on_first_use(data, tmp_path):
    model = _model(data)
    model.train(data.docs, total_examples=model.corpus_count, epochs=1)
    path = str(tmp_path / "m.model")
    model.save(path)
    loaded = Im2Vec.load(path)
    feats = loaded.features
    assert feats.source is None and feats._key_to_index is None
    key = loaded.image_keys[0]
    assert key in feats and feats.keys[feats.row(key)] == key
    assert feats.key_to_index == {k: i for i, k in enumerate(feats.keys)}
    assert os.path.exists(path)
