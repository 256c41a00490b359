"""What keeps 10M images within one machine's memory (issue 13 item 4): images skip gensim's
per-token loops and sit after the words, have no output rows, the negative tables are built
without a Python loop, feature pages read from a store leave the resident set, and an ANN index is
built without a normalised copy of every vector."""

from __future__ import annotations

import mmap
import os

import numpy as np
import pytest
from gensim.models import KeyedVectors, Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.image_features import ImageFeatures
from gensim_im2vec.store import FeatureStore


def _corpus(n_docs=3000, n_images=2500, seed=0):
    """Zipf-distributed tags; some images in two documents (count 2)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)]
    p = 1 / np.arange(1, 301)
    p /= p.sum()
    docs, feats = [], {}
    for i in range(n_docs):
        key = f"img:{i % n_images}"
        feats[key] = rng.normal(size=8)
        docs.append([key, *rng.choice(words, 8, p=p)])
    return docs, feats


DOCS, FEATS = _corpus()
N_WORDS = len({w for d in DOCS for w in d[1:]})


@pytest.mark.parametrize("sample", [1e-3, 0, 5.0])
def test_the_vocabulary_is_gensims_with_the_images_after_the_words(sample):
    model = Im2Vec(image_features=FEATS, vector_size=8, min_count=1, sample=sample, workers=1)
    model.build_vocab(DOCS)
    gensim = Word2Vec(vector_size=8, min_count=1, sample=sample, workers=1)  # images as plain words
    gensim.build_vocab(DOCS)
    keys = model.wv.index_to_key
    assert sorted(keys) == sorted(gensim.wv.index_to_key) and len(keys) == N_WORDS + 2500
    assert not any(k.startswith("img:") for k in keys[:N_WORDS])
    counts = [model.wv.get_vecattr(k, "count") for k in keys[N_WORDS:]]
    assert counts == sorted(counts, reverse=True) and counts[0] == 2  # images by count
    for k in keys:
        assert model.wv.get_vecattr(k, "count") == gensim.wv.get_vecattr(k, "count")
        want = 2**32 - 1 if k.startswith("img:") else gensim.wv.get_vecattr(k, "sample_int")
        assert model.wv.get_vecattr(k, "sample_int") == want, k  # words: the images count in the total
    Word2Vec.make_cum_table(model)  # gensim's Python loop, on the same vocabulary
    loop = model.cum_table.copy()
    model.make_cum_table()
    np.testing.assert_array_equal(model.cum_table, loop)


def test_images_have_no_output_rows_and_the_model_trains_saves_and_grows(tmp_path):
    model = Im2Vec(DOCS, image_features=FEATS, vector_size=8, min_count=1, epochs=2, workers=1, seed=1)
    assert model.syn1neg.shape == (N_WORDS, 8) and len(model.wv.vectors) == N_WORDS + 2500
    assert model.syn1neg.any()  # the words' output rows trained
    assert [w for w, _ in model.predict_output_word(["w1", "w2"], topn=3)]  # gensim's use of syn1neg
    model.save(str(tmp_path / "m.model"))
    loaded = Im2Vec.load(str(tmp_path / "m.model"))
    assert loaded.syn1neg.shape == (N_WORDS, 8)
    # new words after the images: the output rows grow to cover them, the images' stay absent
    more = [["img:0", "brandnew", "w1"], ["img:9999", "other", "w2"]] * 3
    loaded.build_vocab(more, update=True, image_features={**FEATS, "img:9999": np.ones(8)})
    assert loaded.wv.get_vecattr("img:0", "count") == model.wv.get_vecattr("img:0", "count") + 3
    last_word = max(loaded.wv.key_to_index["brandnew"], loaded.wv.key_to_index["other"])
    assert len(loaded.syn1neg) == last_word + 1 and loaded.is_image("img:9999")
    loaded.train(more, total_examples=len(more), epochs=1)
    np.testing.assert_allclose(loaded.wv["img:9999"], loaded.project(np.ones(8)), rtol=1e-5, atol=1e-6)


def test_a_short_syn1neg_is_refused_before_the_kernel_reads_past_it():
    model = Im2Vec(DOCS, image_features=FEATS, vector_size=8, min_count=1, epochs=1, workers=1)
    model.syn1neg = model.syn1neg[:10]
    with pytest.raises(RuntimeError, match=rf"syn1neg has 10 rows, the vocabulary's words need {N_WORDS}"):
        model.train(DOCS, total_examples=len(DOCS), epochs=1)


def _rss_file() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssFile:"))


def test_feature_pages_read_from_a_store_leave_the_resident_set(tmp_path):
    if not hasattr(mmap, "MADV_DONTNEED") or not os.path.exists("/proc/self/status"):
        pytest.skip("Linux: madvise and /proc/self/status")
    n, dim = 200_000, 128  # 51 MB of float16 rows
    rng = np.random.default_rng(0)
    keys = [f"img:{i}" for i in range(n)]
    with FeatureStore.create(tmp_path / "s", dim=dim, dtype="float16", shard_size=65536) as w:
        for lo in range(0, n, 50_000):
            w.write(keys[lo : lo + 50_000], rng.random((50_000, dim), dtype=np.float32) + 0.1)
    feats = ImageFeatures.from_any(FeatureStore.open(tmp_path / "s"))
    before = _rss_file()
    feats.check_rows(np.arange(n))
    for lo in range(0, n, 5000):
        feats.gather(np.arange(lo, lo + 5000))
    assert _rss_file() - before < 20 * 2**20, "the store's pages stayed mapped"
    block, _ = feats.gather([3, 1])
    np.testing.assert_allclose(block[1], np.asarray(feats.vectors[1], dtype=np.float32))  # still readable


def test_an_ann_index_is_built_without_a_normalised_copy_of_every_vector(monkeypatch):
    pytest.importorskip("faiss")
    from gensim_im2vec.index import ModalityIndexer, ann_most_similar

    model = Im2Vec(DOCS, image_features=FEATS, vector_size=8, min_count=1, epochs=2, workers=1, seed=1)
    exact = {k: [w for w, _ in model.wv.most_similar(k, topn=5)] for k in ("img:3", "w1")}

    def refuse(self, *a, **k):
        raise AssertionError("a normalised copy of every vector")

    monkeypatch.setattr(KeyedVectors, "get_normed_vectors", refuse)
    indexer = ModalityIndexer(model, backend="faiss", kind="ivf", nlist=4, nprobe=4)  # every cell: exact
    for key, want in exact.items():
        got = [w for w, _ in ann_most_similar(model, key, topn=5, indexer=indexer)]
        assert got == want


def test_a_model_loaded_over_a_store_builds_no_key_dict_of_the_store_until_asked(tmp_path):
    # the vocabulary keeps each image's row: a model loaded to be queried (or trained on) never needs
    # the store's key -> row dict (~60 B per image: 6 GB at 100M), so it is built on first use only
    store = FeatureStore.from_arrays(tmp_path / "s", list(FEATS), np.stack(list(FEATS.values())))
    model = Im2Vec(DOCS, image_features=FeatureStore.open(tmp_path / "s"), vector_size=8, min_count=1, epochs=1,
                   workers=1, seed=1)
    model.save(str(tmp_path / "m.model"))
    loaded = Im2Vec.load(str(tmp_path / "m.model"))
    feats = loaded.features
    assert feats.source is not None and feats.source._key_to_index is None and feats._key_to_index is None
    # queries by key, by features, and more training: none of them asks for it
    near = loaded.wv.most_similar("img:3", topn=5)
    np.testing.assert_allclose(loaded.wv["img:3"], loaded.project(FEATS["img:3"]), rtol=1e-5, atol=1e-6)
    loaded.train(DOCS[:200], total_examples=200, epochs=1)
    assert feats.source._key_to_index is None
    assert [k for k, _ in near] == [k for k, _ in model.wv.most_similar("img:3", topn=5)]
    # asked for: the store's own dict, shared, right
    assert "img:7" in feats and feats.row("img:7") == store.key_to_index["img:7"] == list(FEATS).index("img:7")
    assert feats.key_to_index is feats.source.key_to_index and "img:nope" not in feats
    # and a store given directly is indexed the same way
    direct = ImageFeatures.from_any(FeatureStore.open(tmp_path / "s"))
    assert direct._key_to_index is None and direct.row("img:2499") == 2499


def test_threads_asking_for_a_stores_key_dict_at_once_share_one(tmp_path, monkeypatch):
    import threading
    import time

    FeatureStore.from_arrays(tmp_path / "s", list(FEATS), np.stack(list(FEATS.values())))
    store = FeatureStore.open(tmp_path / "s")
    keys = store.keys

    class Slow(list):  # widens the window in which two builds could overlap
        def __iter__(self):
            time.sleep(0.05)
            return super().__iter__()

    monkeypatch.setattr(store, "keys", Slow(keys))
    feats = ImageFeatures.from_any(store)
    got, start = [], threading.Barrier(4)

    def ask():
        start.wait()
        got.append(feats.key_to_index)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(d is store.key_to_index for d in got) and got[0]["img:5"] == list(FEATS).index("img:5")
