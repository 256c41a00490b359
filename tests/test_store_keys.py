"""A feature store's ``key → row``: KeyIndex against the dict it replaced, collisions, copies, callers."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from collections.abc import Mapping

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec import model as model_mod
from gensim_im2vec import store as store_mod
from gensim_im2vec.image_features import ImageFeatures
from gensim_im2vec.store import FeatureStore, KeyIndex, key_rows

KEYS = [f"img:photos/{i:05d}_{(i * 7919) % 4096:03x}" for i in range(300)] + ["img:é/ü", "img:", "img:x%20y"]


def _store(tmp_path, keys=KEYS):
    rng = np.random.default_rng(0)
    return FeatureStore.from_arrays(tmp_path / "s", keys, rng.random((len(keys), 4), dtype=np.float32) + 0.1)


def _same_as_dict(index, keys):
    """Every Mapping operation of `index` answers as ``{k: i for i, k in enumerate(keys)}`` does."""
    ref = {k: i for i, k in enumerate(keys)}
    assert isinstance(index, Mapping) and len(index) == len(ref) and list(index) == keys
    assert [index[k] for k in keys] == list(range(len(keys)))
    assert all(index.get(k) == i and k in index for k, i in ref.items())
    assert list(index.items()) == list(ref.items()) and list(index.values()) == list(ref.values())
    assert list(index.keys()) == keys and index == ref and dict(index) == ref
    first = keys[0] if keys else "img:a"
    missing = ["img:nope", "img:photos/00001", first + " ", first.upper(), "", 5, None, b"img:"]
    assert all(index.get(k, -7) == -7 and k not in index for k in missing)
    for k in missing:
        with pytest.raises(KeyError) as err:
            index[k]
        assert err.value.args == (k,)  # as a dict says it
    asked = keys[::-3] + missing[:4] + keys[:2]
    assert index.rows(asked).tolist() == [ref.get(k, -1) for k in asked]
    assert index.rows([]).tolist() == []


def test_a_stores_key_to_index_answers_as_the_dict_it_replaced(tmp_path):
    store = _store(tmp_path)
    assert store._key_to_index is None  # built when first asked for
    index = store.key_to_index
    assert isinstance(index, KeyIndex) and store.key_to_index is index and index._keys is store.keys
    _same_as_dict(index, store.keys)
    # the store's own lookups: a missing key names the store, as before
    assert "img:é/ü" in store and "img:nope" not in store and store._row("img:x%20y") == len(KEYS) - 1
    with pytest.raises(KeyError, match=r"'img:nope' is not in feature store .*s'"):
        store.get_vector("img:nope")
    # far less than a dict: digests, rows and runs
    assert index.nbytes <= 16 * len(KEYS) + 64


@pytest.mark.parametrize("keys", [[], ["img:a"], ["img:a", "img:b"], [f"k{i}" for i in range(1000)]])
def test_key_index_of_any_size(keys):
    _same_as_dict(KeyIndex(keys), keys)


@pytest.mark.parametrize("digest", [lambda key: 7, lambda key: len(str(key)) % 3,
                                    lambda key: -(2**63) + len(str(key)) % 2, lambda key: 2**63 - 1])
def test_keys_that_share_a_digest_are_all_found(monkeypatch, digest):
    # every key confirmed by its string: two keys with one digest (here many) both found, at their rows
    monkeypatch.setattr(store_mod, "_key_hash", digest)
    keys = [f"img:{i}" for i in range(40)]
    _same_as_dict(KeyIndex(keys), keys)


def test_a_copy_or_pickle_of_the_index_builds_it_again_in_the_other_process(tmp_path):
    # the digests are this process's salted str hashes: a pickle holds the keys, never the digests
    store = _store(tmp_path)
    index = store.key_to_index
    for other in (copy.copy(index), copy.deepcopy(index), pickle.loads(pickle.dumps(index))):
        _same_as_dict(other, KEYS)
    moved = pickle.loads(pickle.dumps(store))  # a store's index keeps sharing the store's keys
    assert moved.key_to_index._keys is moved.keys and moved.key_to_index["img:é/ü"] == KEYS.index("img:é/ü")
    blob = tmp_path / "store.pickle"
    blob.write_bytes(pickle.dumps(store))
    code = ("import pickle, sys; s = pickle.load(open(sys.argv[1], 'rb')); "
            "print([s.key_to_index[k] for k in s.keys] == list(range(len(s))), s.key_to_index.rows(s.keys[:3]).tolist())")
    env = dict(os.environ, PYTHONHASHSEED="12345")  # another salt than this process's (random) one
    out = subprocess.run([sys.executable, "-c", code, str(blob)], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "[0,", "1,", "2]"]


def test_changing_the_index_says_it_is_read_only_and_how_to_get_a_dict(tmp_path):
    """``store.key_to_index["x"] = 1`` said "'KeyIndex' object does not support item assignment", and
    ``.update``/``.pop``/``.copy()`` (a dict's, as key_to_index was) "has no attribute": none named the fix."""
    import json

    store = _store(tmp_path)
    index = store.key_to_index
    def set_one():
        index["x"] = 1

    def del_one():
        del index[KEYS[0]]

    changes = [set_one, del_one, lambda: index.update(x=1),
               lambda: index.pop(KEYS[0]), lambda: index.popitem(), lambda: index.setdefault("x", 1),
               lambda: index.clear()]
    for change in changes:
        with pytest.raises(TypeError, match=r"KeyIndex is read-only.*dict\(key_to_index\) gives a dict"):
            change()
    _same_as_dict(index, KEYS)  # unchanged
    mine = index.copy()
    assert type(mine) is dict and mine == index and mine == dict(index)
    mine["x"] = 1  # the copy is the caller's
    assert "x" not in index and json.loads(json.dumps(index.copy())) == dict(index)


def test_key_rows_of_a_dict_and_of_an_index_agree():
    keys = [f"img:{i}" for i in range(50)]
    asked = ["img:3", "dog", "img:49", "img:50", "img:0"]
    want = [3, -1, 49, -1, 0]
    assert key_rows({k: i for i, k in enumerate(keys)}, asked).tolist() == want
    assert key_rows(KeyIndex(keys), asked).tolist() == want
    assert key_rows({}, asked).tolist() == [-1] * 5


def test_image_features_share_an_index_and_build_one_for_a_models_features(tmp_path):
    index = KeyIndex(["img:a", "img:b"])
    feats = ImageFeatures(["img:a", "img:b"], np.ones((2, 3), np.float32), key_to_index=index)
    assert feats.key_to_index is index  # used as given, not copied into a dict
    store = _store(tmp_path)
    model = Im2Vec([[k, "dog", "cat"] for k in KEYS[:50]], image_features=store, vector_size=4, min_count=1,
                   epochs=1, workers=1, seed=1)
    model.save(str(tmp_path / "m.model"))
    loaded = Im2Vec.load(str(tmp_path / "m.model"))
    loaded._features_cache = None  # model.features of the model's own keys (no store behind them)
    loaded.image_feature_keys = list(loaded.image_feature_keys)
    feats = loaded.features
    assert feats.source is None and isinstance(feats.key_to_index, KeyIndex)
    _same_as_dict(feats.key_to_index, KEYS)


def _vocab(model):
    return [(k, model.wv.get_vecattr(k, "count")) for k in model.wv.index_to_key], model._vocab_image_rows.tolist()


@pytest.mark.parametrize("block", [1, 3, 4096])
@pytest.mark.parametrize("cap", [None, 10**6])
def test_build_vocab_looks_the_tokens_up_a_block_of_documents_at_a_time(tmp_path, monkeypatch, block, cap):
    # the scan of the corpus looks each block's tokens up at once (key_rows): the same vocabulary,
    # counts and image rows as one document at a time against a dict, whatever the block; with a
    # max_vocab_size (cap) the images are taken out of the documents and counted beside them
    store = _store(tmp_path)
    rng = np.random.default_rng(3)
    docs = [[*(f"w{j}" for j in rng.integers(0, 30, 3)), KEYS[i], "tag"] for i in rng.integers(0, len(KEYS), 120)]
    docs += [["only", "words"], [], [KEYS[5], KEYS[6]], ("tuple", KEYS[7])]
    as_dict = ImageFeatures(KEYS, np.asarray(store.vectors), key_to_index={k: i for i, k in enumerate(KEYS)})
    want = Im2Vec(image_features=as_dict, vector_size=4, min_count=1, workers=1, seed=1, max_vocab_size=cap)
    want.build_vocab(docs)
    monkeypatch.setattr(model_mod, "_TAP_DOCUMENTS", block)
    monkeypatch.setattr(model_mod, "_LOOKUP_BLOCK", block)
    got = Im2Vec(image_features=FeatureStore.open(tmp_path / "s"), vector_size=4, min_count=1, workers=1, seed=1,
                 max_vocab_size=cap)
    got.build_vocab(docs)
    assert isinstance(got.features.key_to_index, KeyIndex)
    assert _vocab(got) == _vocab(want) and got._scan_tag_counts == want._scan_tag_counts
    assert got.corpus_count == want.corpus_count and got.corpus_total_words == want.corpus_total_words


def test_a_document_given_as_one_str_is_named_by_its_place_in_a_later_block(tmp_path, monkeypatch):
    monkeypatch.setattr(model_mod, "_TAP_DOCUMENTS", 4)
    docs = [[KEYS[i], "dog"] for i in range(9)] + [f"{KEYS[9]} dog"]
    model = Im2Vec(image_features=_store(tmp_path), vector_size=4, min_count=1, workers=1)
    with pytest.raises(TypeError, match="document 9 of the corpus"):
        model.build_vocab(docs)


def test_missing_images_are_found_through_the_index(tmp_path):
    _store(tmp_path)
    model = Im2Vec(image_features=FeatureStore.open(tmp_path / "s"), vector_size=4, min_count=1, workers=1,
                   missing_images="raise")
    with pytest.raises(ValueError, match="img:absent"):
        model.build_vocab([[KEYS[0], "dog"], ["img:absent", "dog"], [KEYS[1], "cat"]])
    model = Im2Vec(image_features=FeatureStore.open(tmp_path / "s"), vector_size=4, min_count=1, workers=1,
                   missing_images="skip")
    model.build_vocab([[KEYS[0], "dog"], ["img:absent", "dog"], [KEYS[1], "cat"]])
    assert sorted(model.image_keys) == sorted([KEYS[0], KEYS[1]])
    assert "img:absent" not in model.wv.key_to_index


def test_an_update_checks_the_new_features_against_every_key_of_the_vocabulary(tmp_path, monkeypatch):
    # build_vocab(update=True, image_features=...) looks the vocabulary's images and words up in the new
    # features' KeyIndex a block at a time (_keys_in): the lacking images and the words that would turn
    # into images are named, whatever the block
    monkeypatch.setattr(model_mod, "_LOOKUP_BLOCK", 1)
    rng = np.random.default_rng(0)
    docs = [[k, "dog", "cat"] for k in KEYS[:20]]
    model = Im2Vec(docs, image_features=_store(tmp_path), vector_size=4, min_count=1, epochs=1, workers=1, seed=1)
    keys = KEYS[:13] + KEYS[14:30]
    lacking = FeatureStore.from_arrays(tmp_path / "lacking", keys, rng.random((29, 4), dtype=np.float32) + 0.1)
    with pytest.raises(ValueError, match=r"lack 1 image\(s\) already in the vocabulary, e.g. \['" + KEYS[13]):
        model.build_vocab([[KEYS[25], "dog"]], update=True, image_features=lacking)
    keys = ["cat", *KEYS[:30], "dog"]
    worded = FeatureStore.from_arrays(tmp_path / "worded", keys, rng.random((32, 4), dtype=np.float32) + 0.1)
    with pytest.raises(ValueError, match=r"2 key\(s\) of the new features are words of the vocabulary"):
        model.build_vocab([[KEYS[25], "dog"]], update=True, image_features=worded)
    more = FeatureStore.from_arrays(tmp_path / "more", KEYS[:30], rng.random((30, 4), dtype=np.float32) + 0.1)
    model.build_vocab([[KEYS[25], "dog"]], update=True, image_features=more)
    assert KEYS[25] in model.wv.key_to_index and model.is_image(KEYS[25]) and not model.is_image("dog")


@pytest.mark.parametrize("cap", [None, 10**6])
def test_long_documents_are_looked_up_a_bounded_number_of_tokens_at_a_time(tmp_path, monkeypatch, cap):
    # a block of documents ends where its tokens reach _TAP_TOKENS: a corpus of long documents (text8's
    # are 10,000 tokens each, 4096 of them 41M tokens) is not looked up all at once; the same vocabulary
    store = _store(tmp_path)
    rng = np.random.default_rng(5)
    docs = [[*(f"w{j}" for j in rng.integers(0, 40, 299)), KEYS[i]] for i in range(12)] + [["dog", KEYS[20]]]
    as_dict = ImageFeatures(KEYS, np.asarray(store.vectors), key_to_index={k: i for i, k in enumerate(KEYS)})
    want = Im2Vec(image_features=as_dict, vector_size=4, min_count=1, workers=1, seed=1, max_vocab_size=cap)
    want.build_vocab(docs)
    monkeypatch.setattr(model_mod, "_TAP_TOKENS", 500, raising=False)
    sizes = []

    def recording(key_to_index, keys, **kwargs):
        sizes.append(len(keys))
        return key_rows(key_to_index, keys, **kwargs)

    monkeypatch.setattr(model_mod, "key_rows", recording)
    got = Im2Vec(image_features=FeatureStore.open(tmp_path / "s"), vector_size=4, min_count=1, workers=1, seed=1,
                 max_vocab_size=cap)
    got.build_vocab(docs)
    assert sizes and max(sizes) < 500 + 300  # (a block ends with the document that reaches 500 tokens)
    assert _vocab(got) == _vocab(want) and got._scan_tag_counts == want._scan_tag_counts
    assert got.corpus_count == want.corpus_count and got.corpus_total_words == want.corpus_total_words


def test_keys_in_takes_the_keys_a_block_at_a_time_from_a_generator(monkeypatch):
    # _resolve_missing_images passes the image tokens of raw_vocab as a generator: never all in one list
    monkeypatch.setattr(model_mod, "_LOOKUP_BLOCK", 2)
    index = KeyIndex(KEYS)
    keys = (k for k in ["img:a", KEYS[3], "img:b", KEYS[4], "img:c"])
    assert model_mod._keys_in(index, keys, held=False) == ["img:a", "img:b", "img:c"]
    assert model_mod._keys_in(index, iter(KEYS[:5])) == KEYS[:5] and model_mod._keys_in({}, ()) == []
