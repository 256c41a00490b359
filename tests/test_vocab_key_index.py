"""A model's ``wv.key_to_index`` holds its image keys in a :class:`KeyIndex` (≈ 15 bytes a key, a
dict took ≈ 57) beside a dict of its words: :class:`VocabKeyIndex`. It answers every gensim call on
``model.wv`` as the dict did, pickles as a plain dict (plain gensim loads a saved ``wv``), is built
again by ``Im2Vec.load``, takes new words and images (``build_vocab(update=True)``, ``add_vectors``),
and the kernel's ``prepare_job`` turns a job into the same arrays with it as with the dict.
``benchmarks/bench_vocab_keys.py`` measures it."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from test_persistence import DOCS, KEYS, SMALL, VECS

from gensim_im2vec import Im2Vec
from gensim_im2vec import im2vec_inner as K
from gensim_im2vec.store import FeatureStore, KeyIndex, VocabKeyIndex


def _as_dict(model: Im2Vec) -> dict:
    return {k: i for i, k in enumerate(model.wv.index_to_key)}


@pytest.fixture(scope="module")
def model():
    return Im2Vec(DOCS, image_features=dict(zip(KEYS, VECS)), **SMALL)


def test_the_images_are_in_a_key_index_after_the_words(model):
    k2i = model.wv.key_to_index
    assert isinstance(k2i, VocabKeyIndex)  # the point of it: not a dict of every image key
    n_img = len(model.image_keys)
    assert len(k2i.images) == n_img and len(k2i.words) == len(model.wv) - n_img
    assert k2i == _as_dict(model) and list(k2i) == model.wv.index_to_key and dict(k2i.items()) == _as_dict(model)
    assert k2i.nbytes < 20 * n_img  # digests, rows and runs: 8 + 4 + ≈ 4 bytes a key
    img = model.image_keys[5]
    assert k2i[img] == model.wv.index_to_key.index(img) and "photo" in k2i and "img:nowhere" not in k2i
    with pytest.raises(KeyError):
        k2i["img:nowhere"]


def test_every_keyedvectors_call_answers_as_with_the_dict(model, tmp_path):
    wv = model.wv
    img, other = model.image_keys[:2]
    vec = wv[img]

    def answers():
        return (wv.most_similar(img, topn=5), wv.most_similar(positive=["photo", img], negative=["class1"], topn=5),
                wv.similar_by_vector(vec, topn=5), wv.n_similarity([img, "photo"], [other]),
                wv.similarity(img, "class0"), wv.get_index(img), wv.get_index("nowhere", -1), wv.has_index_for(img),
                img in wv, "nowhere" in wv, wv[[img, "photo"]].tolist(), wv.doesnt_match(["class0", "class1", img]),
                wv.rank(img, other), wv.distances(img, ["photo", other]).tolist())

    got = answers()
    wv.save_word2vec_format(str(tmp_path / "index.txt"))
    held = wv.key_to_index
    try:
        wv.key_to_index = _as_dict(model)  # gensim's own dict: the reference
        assert answers() == got
        wv.save_word2vec_format(str(tmp_path / "dict.txt"))
    finally:
        wv.key_to_index = held
    assert (tmp_path / "index.txt").read_bytes() == (tmp_path / "dict.txt").read_bytes()


def test_the_pickled_wv_holds_a_plain_dict_and_plain_gensim_loads_it(model, tmp_path):
    back = pickle.loads(pickle.dumps(model.wv))
    assert type(back.key_to_index) is dict and back.key_to_index == _as_dict(model)
    path = str(tmp_path / "wv.kv")
    model.wv.save(path)
    img = model.image_keys[3]
    script = ("import sys\nfrom gensim.models import KeyedVectors\nkv = KeyedVectors.load(sys.argv[1])\n"
              "assert not any(m.startswith('gensim_im2vec') for m in sys.modules)\n"
              "print(type(kv.key_to_index).__name__, len(kv.key_to_index), kv.get_index(sys.argv[2]), "
              "kv.most_similar(sys.argv[2], topn=1)[0][0])")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script, path, img], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), check=True).stdout.split()
    assert out == ["dict", str(len(model.wv)), str(model.wv.get_index(img)), model.wv.most_similar(img, topn=1)[0][0]]


def test_copies_keep_the_index_and_a_load_builds_it_again(model, tmp_path):
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin.wv.key_to_index == model.wv.key_to_index
    assert isinstance(copy.deepcopy(model).wv.key_to_index, VocabKeyIndex)
    store = FeatureStore.from_arrays(tmp_path / "feats", KEYS, VECS)
    on_store = Im2Vec(DOCS, image_features=store, **SMALL)
    on_store.save(str(tmp_path / "m.model"))
    for loaded in (Im2Vec.load(str(tmp_path / "m.model")), Im2Vec.load(str(tmp_path / "m.model"), mmap="r")):
        k2i = loaded.wv.key_to_index
        assert isinstance(k2i, VocabKeyIndex) and k2i == _as_dict(on_store)
        img = loaded.image_keys[0]  # the index's key strings are the store's own
        assert k2i.images._keys[k2i[img]] is loaded.features.keys[int(loaded._vocab_image_rows[k2i[img]])]


def test_an_update_adds_words_and_images_and_they_survive_a_save(tmp_path):
    feats = dict(zip(KEYS, VECS))
    model = Im2Vec(DOCS, image_features=feats, **SMALL)
    n = len(model.wv)
    new_img = next(k for k in KEYS if k not in model.wv)
    more = [[new_img, "brandnew", "photo"], [DOCS[0][0], "brandnew"]]
    model.build_vocab(more, update=True)
    k2i = model.wv.key_to_index
    assert isinstance(k2i, VocabKeyIndex) and len(model.wv) == n + 2
    assert k2i["brandnew"] == n and k2i[new_img] == n + 1 and model.is_image(new_img) and k2i == _as_dict(model)
    model.train(more + DOCS, total_examples=len(DOCS) + 2, epochs=1)
    assert model.wv.most_similar(new_img, topn=1)
    with pytest.raises(TypeError, match="is at index"):  # an image of the range keeps its index
        k2i[DOCS[0][0]] = 0
    model.save(str(tmp_path / "m.model"))
    loaded = Im2Vec.load(str(tmp_path / "m.model"))
    assert loaded.wv.key_to_index == _as_dict(model) and loaded.wv.get_index(new_img) == n + 1


def test_add_vectors_appends_to_the_words_dict(model):
    twin = copy.deepcopy(model)
    n = len(twin.wv)
    twin.wv.add_vectors(["addedword", twin.image_keys[0]], np.ones((2, twin.wv.vector_size), dtype=np.float32))
    assert twin.wv.get_index("addedword") == n and len(twin.wv) == n + 1 and twin.wv.key_to_index == _as_dict(twin)
    assert "addedword" in twin.word_keys and twin.wv["addedword"].tolist() == [1.0] * twin.wv.vector_size


@pytest.mark.parametrize("sample", [False, True])
def test_prepare_job_gives_the_same_arrays_as_with_the_dict(model, sample):
    wv = model.wv
    rng = np.random.default_rng(3)
    docs = [list(d) for d in DOCS] + [["unknown", d[1], "img:nowhere", d[0], d[0], "photo"] for d in DOCS[:30]]
    docs += [sum((list(d) for d in DOCS[i:i + 25]), []) for i in range(0, 100, 25)]  # 25 images a document, 75 tokens
    docs = [docs[i] for i in rng.permutation(len(docs))]
    sample_int = np.array(wv.expandos["sample_int"])
    sample_int[rng.random(len(sample_int)) < 0.5] //= 3  # some words downsampled: the draws must stay in order
    for limit in (0, 7):
        got = K.prepare_job(docs, wv.key_to_index, sample_int, model._vocab_image_rows, sample, 5, True, 11,
                            max_chunk=4, max_images=limit)
        want = K.prepare_job(docs, _as_dict(model), sample_int, model._vocab_image_rows, sample, 5, True, 11,
                             max_chunk=4, max_images=limit)
        for a, b in zip(got[:-1], want[:-1]):
            np.testing.assert_array_equal(a, b)
        assert got[-1] == want[-1] and len(got[0]) > 0 and (got[1] >= 0).any()
    with pytest.raises(TypeError, match="VocabKeyIndex"):
        K.prepare_job(docs, KeyIndex(KEYS), sample_int, model._vocab_image_rows, False, 5, True, 1)


def test_the_index_of_a_range_and_its_read_only_images():
    keys = ["dog", "cat", "img:a", "img:b", "img:c"]
    index = KeyIndex(keys, 2, 4)
    assert len(index) == 2 and dict(index) == {"img:a": 2, "img:b": 3} and "img:c" not in index
    assert index.rows(["img:b", "dog", "img:c"]).tolist() == [3, -1, -1] and list(index.values()) == [2, 3]
    assert pickle.loads(pickle.dumps(index)) == index
    with pytest.raises(ValueError, match="start <= stop"):
        KeyIndex(keys, 3, 2)
    k2i = VocabKeyIndex({"dog": 0, "cat": 1, "img:c": 4}, keys, 2, 4)
    assert list(k2i.items()) == [("dog", 0), ("cat", 1), ("img:a", 2), ("img:b", 3), ("img:c", 4)]
    k2i["img:a"] = 2  # (its own index: no change)
    del k2i["img:c"]
    assert len(k2i) == 4 and "img:c" not in k2i
    with pytest.raises(TypeError, match="cannot be deleted"):
        del k2i["img:a"]
    with pytest.raises(TypeError, match="expected the words as a dict"):
        VocabKeyIndex(k2i, keys, 2, 4)
    shallow = copy.copy(k2i)
    shallow["cow"] = 9
    assert "cow" not in k2i and shallow.images is not None


def test_a_corpus_files_missing_image_is_named_by_its_line_in_a_block_of_lines(model, tmp_path):
    from gensim_im2vec.corpusfile import CHECK_LINES, read_documents

    imgs = model.image_keys
    lines = [[imgs[i % len(imgs)], "photo", "rareword"] if i % 3 else ["class0", "photo"] for i in range(3 * CHECK_LINES)]
    bad = 2 * CHECK_LINES + 100
    lines[bad] = ["photo", "img:nowhere", "rareword"]  # (a token it lacks without the prefix is no error)
    path = tmp_path / "c.txt"
    path.write_text("".join(" ".join(d) + "\n" for d in lines), encoding="utf-8")
    offset = sum(len(" ".join(d)) + 1 for d in lines[:bad])
    for known in (model.wv.key_to_index, _as_dict(model)):
        got = []
        with pytest.raises(ValueError, match=rf"line at byte {offset}: image token 'img:nowhere'"):
            got.extend(read_documents(str(path), 0, path.stat().st_size, known=known, prefix="img:"))
        assert got == lines[:2 * CHECK_LINES]  # the blocks before it, checked, then none of its block
    lines[bad] = ["photo"]
    path.write_text("".join(" ".join(d) + "\n" for d in lines), encoding="utf-8")
    assert list(read_documents(str(path), 0, path.stat().st_size, known=model.wv.key_to_index, prefix="img:")) == lines



def test_prepare_job_takes_a_dict_subclass_as_the_dict(model):
    """c36acdb meant prepare_job to take a dict subclass as a dict (``isinstance``), but assigned it to a
    ``cdef dict``, which Cython keeps to exact dicts: an OrderedDict or defaultdict key_to_index raised
    "TypeError: Expected dict, got collections.OrderedDict". A subclass is looked up by its own ``get``
    (a defaultdict's does not add the unknown tokens), with the same arrays as the dict."""
    from collections import OrderedDict, defaultdict

    wv = model.wv
    docs = [list(d) for d in DOCS[:20]] + [["unknown", DOCS[0][0], "img:nowhere", "photo"]]
    args = (wv.expandos["sample_int"], model._vocab_image_rows, True, 5, True, 11)
    want = K.prepare_job(docs, _as_dict(model), *args, max_chunk=4, max_images=7)
    counted = defaultdict(int, _as_dict(model))
    words_subclass = VocabKeyIndex(OrderedDict(wv.key_to_index.words), wv.index_to_key, *model._image_range())
    for k2i in (OrderedDict(_as_dict(model)), counted, words_subclass):
        got = K.prepare_job(docs, k2i, *args, max_chunk=4, max_images=7)
        for a, b in zip(got[:-1], want[:-1]):
            np.testing.assert_array_equal(a, b)
        assert got[-1] == want[-1]
    assert len(counted) == len(model.wv)  # no token added


def test_the_first_images_an_update_brings_go_to_a_key_index(tmp_path):
    """A vocabulary that had no images (a text model, or from_word2vec's pretrained words) got its images from
    build_vocab(update=True) into gensim's dict (≈ 57 B a key, the VocabKeyIndex's ≈ 15), until a save and load:
    from_word2vec(kv, sentences=..., image_features=...) builds its vocabulary so. Images appended after a
    dict of every other key go to a KeyIndex as a first build's do; the model trains and answers the same."""
    from gensim.models import Word2Vec

    text = [[w for w in d if not w.startswith("img:")] for d in DOCS]
    feats = dict(zip(KEYS, VECS))
    words = Im2Vec(text, **SMALL)
    words.build_vocab(DOCS, update=True, image_features=feats)
    kv = Word2Vec(text, vector_size=SMALL["vector_size"], min_count=1, seed=1, workers=1).wv
    started = Im2Vec.from_word2vec(kv, sentences=DOCS, image_features=feats, **SMALL)
    for model in (words, started):
        k2i = model.wv.key_to_index
        assert isinstance(k2i, VocabKeyIndex) and len(k2i.images) == len(model.image_keys)
        assert k2i == _as_dict(model) and list(k2i) == model.wv.index_to_key
        twin = copy.deepcopy(model)
        twin.wv.key_to_index = _as_dict(twin)
        for m in (model, twin):
            m.train(DOCS, total_examples=len(DOCS), epochs=1)
        np.testing.assert_array_equal(model.wv.vectors, twin.wv.vectors)
