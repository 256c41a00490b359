"""``save()`` leaves ``wv.key_to_index`` out of the pickle (it is ``index_to_key`` inverted, and
unpickling it took longer than building it: 0.25 s a million keys) and every load builds it once,
after the vocabulary's image keys share the features' strings; the negative tables gensim's load
builds with it are built then. ``benchmarks/bench_load.py`` measures it."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from test_persistence import DOCS, KEYS, SMALL, VECS, _same_model

from gensim_im2vec import Im2Vec
from gensim_im2vec.store import FeatureStore


def _pickled_key_index(path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f).wv.__dict__["key_to_index"]  # the main file alone: no load of ours after it


def _tables(model) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(model, name)) for name in
            ("cum_table", "_neg_word_idx", "_neg_word_cum", "_neg_tag_idx", "_neg_tag_cum")}


@pytest.mark.parametrize("mmap", [None, "r"])
@pytest.mark.parametrize("prior", [0.0, 0.25])  # 0.25: the space step's tag bias reads the key index too
def test_the_key_index_is_left_out_of_the_pickle_and_built_once_at_load(tmp_path, mmap, prior):
    store = FeatureStore.from_arrays(tmp_path / "feats", KEYS, VECS)
    model = Im2Vec(DOCS, image_features=store, space_tag_prior=prior, **SMALL)
    path = str(tmp_path / "m.model")
    model.save(path)
    assert _pickled_key_index(path) == {} and len(model.wv.key_to_index) == len(model.wv)  # the live one kept
    loaded = Im2Vec.load(path, mmap=mmap)
    assert loaded.wv.key_to_index == {k: i for i, k in enumerate(loaded.wv.index_to_key)}
    _same_model(model, loaded)
    for name, table in _tables(model).items():  # gensim's load skipped them; ours built them with the index
        np.testing.assert_array_equal(table, _tables(loaded)[name], err_msg=name)
    # the image keys are the store's own strings, in the list and as the dict's keys
    feats = loaded.features
    img = loaded.image_keys[0]
    i = loaded.wv.key_to_index[img]
    own = feats.keys[int(loaded._vocab_image_rows[i])]
    assert loaded.wv.index_to_key[i] is own and next(k for k in loaded.wv.key_to_index if k == img) is own
    # it trains on, and saves again the same way
    loaded.train(DOCS, total_examples=len(DOCS), epochs=1)
    loaded.save(str(tmp_path / "again.model"))
    assert Im2Vec.load(str(tmp_path / "again.model")).wv.key_to_index == loaded.wv.key_to_index


def test_a_model_of_words_only_and_features_given_at_load_get_their_key_index(tmp_path):
    words = Im2Vec([d[1:] + ["and", "more"] for d in DOCS], **SMALL)
    words.save(str(tmp_path / "w.model"))
    assert _pickled_key_index(tmp_path / "w.model") == {}
    loaded = Im2Vec.load(str(tmp_path / "w.model"))
    assert loaded.wv.key_to_index == words.wv.key_to_index
    assert loaded.wv.most_similar("photo", topn=3) == words.wv.most_similar("photo", topn=3)
    for name, table in _tables(words).items():
        np.testing.assert_array_equal(table, _tables(loaded)[name], err_msg=name)

    store = FeatureStore.from_arrays(tmp_path / "feats", KEYS, VECS)
    model = Im2Vec(DOCS, image_features=store, **SMALL)
    model.save(str(tmp_path / "m.model"))
    given = Im2Vec.load(str(tmp_path / "m.model"), image_features=FeatureStore.open(tmp_path / "feats"))
    assert given.wv.key_to_index == model.wv.key_to_index
    _same_model(model, given)


def test_a_save_to_a_file_handle_keeps_the_key_index(tmp_path):
    # pickle.load reads a handle's save back with no load of ours after it: the dict stays in it
    model = Im2Vec(DOCS, image_features=dict(zip(KEYS, VECS)), **SMALL)
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    back = pickle.load(buf)
    assert back.wv.key_to_index == model.wv.key_to_index and len(back.wv.key_to_index) == len(model.wv)


def test_the_live_key_index_stays_whole_while_the_model_is_pickled(tmp_path, monkeypatch):
    # a thread that looks words up while the model saves must go on finding them: the pickle holds
    # a copy of wv without the dict, the model's own wv keeps it the whole time
    import gensim.utils

    model = Im2Vec(DOCS, image_features=dict(zip(KEYS, VECS)), **SMALL)
    whole = dict(model.wv.key_to_index)
    seen = []
    pickle_it = gensim.utils.pickle

    def watched(obj, fname, *args, **kwargs):
        seen.append((len(model.wv.key_to_index), "photo" in model.wv, model.wv.most_similar("photo", topn=1)))
        return pickle_it(obj, fname, *args, **kwargs)

    monkeypatch.setattr(gensim.utils, "pickle", watched)
    model.save(str(tmp_path / "m.model"))
    assert seen and seen[0][:2] == (len(whole), True) and model.wv.key_to_index == whole
    assert _pickled_key_index(tmp_path / "m.model") == {}
    assert Im2Vec.load(str(tmp_path / "m.model")).wv.key_to_index == whole
