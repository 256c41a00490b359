"""The images' words of `space_neighbours` as NumPy arrays of (image, word) pairs
(gensim_im2vec/neighbour_words.py): the same bags as a dict of words per image, whatever the order,
the workers, the de-duplications along the way or a vocabulary built again; and the training's
state holds arrays, not a Python dict per image."""

import threading

import numpy as np
import pytest
from gensim.models.callbacks import CallbackAny2Vec
from test_neighbours import OPTS, dense_bags, image_docs, interrupted

import gensim_im2vec.neighbour_words as nw
from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=300, n_features=32, n_text_sentences=200, seed=0)


@pytest.fixture()
def tiny(monkeypatch):
    """Bounds small enough that the demo-sized runs merge and chunk many times."""
    monkeypatch.setattr(nw, "PENDING_MIN", 5)
    monkeypatch.setattr(nw, "DOCUMENT_BATCH", 7)
    monkeypatch.setattr(nw, "PAIRS_CHUNK", 3)


def reference_bags(documents, index, rows_of):
    """The bags as the dict of dicts gave them (the code this replaced): images and their words in
    vocabulary order."""
    words = {}
    for doc in documents:
        ids = [index.get(t, -1) for t in doc]
        tags = dict.fromkeys(i for i in ids if i >= 0 and rows_of[i] < 0)
        for i in (i for i in ids if i >= 0 and rows_of[i] >= 0):
            words.setdefault(i, {}).update(tags)
    images = sorted(i for i, ws in words.items() if ws)
    tag_ids = sorted({t for i in images for t in words[i]})
    return images, [sorted(words[i]) for i in images], tag_ids


def random_vocabulary(rng, n_words=40, n_images=60):
    """Words and images interleaved in the vocabulary's order (as build_vocab(update=True) leaves new
    words after the images)."""
    keys = [f"w{j}" for j in range(n_words)] + [f"img:{j}" for j in range(n_images)]
    order = rng.permutation(len(keys))
    keys = [keys[j] for j in order]
    rows_of = np.array([int(k[4:]) if k.startswith("img:") else -1 for k in keys], dtype=np.int64)
    return {k: i for i, k in enumerate(keys)}, rows_of


def random_documents(rng, n_docs=400, n_words=40, n_images=60):
    docs = []
    for _ in range(n_docs):
        n = rng.integers(0, 8)
        doc = [f"w{j}" for j in rng.integers(0, n_words, n)]  # (a word twice, sometimes)
        doc += [f"img:{j}" for j in rng.integers(0, n_images, rng.integers(0, 3))]
        doc += ["unknown"] * int(rng.integers(0, 2))
        docs.append([doc[j] for j in rng.permutation(len(doc))])
    return docs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pairs_give_the_dicts_bags_in_any_order_and_chunking(seed, tiny):
    rng = np.random.default_rng(seed)
    index, rows_of = random_vocabulary(rng)
    docs = random_documents(rng)
    images, words, tag_ids = reference_bags(docs, index, rows_of)
    for order in (docs, docs[::-1], [docs[j] for j in rng.permutation(len(docs))]):
        gathered = nw.ImageWords(len(index))
        nw.add_documents(order, index, rows_of, gathered)
        keys = gathered.pairs.result()
        assert keys is gathered.pairs._buf and not gathered.pairs._aside and keys.dtype == np.int64
        got_images, ptr, got_tags, bag = nw.bags_from_pairs(keys, gathered.base)
        assert got_images.tolist() == images and got_tags.tolist() == tag_ids
        assert nw.count_images(keys, gathered.base) == len(images)
        assert bag.dtype == np.int32 and ptr.dtype == np.int64
        assert [got_tags[bag[ptr[j]:ptr[j + 1]]].tolist() for j in range(len(images))] == words


def test_an_image_in_several_documents_takes_the_union_of_their_words():
    index = {"a": 0, "img:x": 1, "b": 2, "c": 3, "img:y": 4}
    rows_of = np.array([-1, 0, -1, -1, 1])
    gathered = nw.ImageWords(len(index))
    nw.add_documents([["img:x", "c"], ["b", "img:x", "img:y"], ["img:x", "c", "a"], ["img:y"]], index, rows_of,
                     gathered)
    images, ptr, tags, bag = nw.bags_from_pairs(gathered.pairs.result(), gathered.base)
    assert images.tolist() == [1, 4] and ptr.tolist() == [0, 3, 4] and tags.tolist() == [0, 2, 3]
    assert bag.tolist() == [0, 1, 2, 1]  # x: a, b, c; y: b (its wordless document adds none)
    assert gathered.seen(np.array([1, 4, 0])).tolist() == [True, True, False]


def test_images_met_only_without_words_are_seen_but_have_no_bag():
    index = {"a": 0, "img:x": 1, "img:y": 2}
    rows_of = np.array([-1, 0, 1])
    gathered = nw.ImageWords(len(index))
    nw.add_documents([["img:x", "a"], ["img:y", "unknown"], ["img:y"]], index, rows_of, gathered)
    assert nw.count_images(gathered.pairs.result(), gathered.base) == 1
    assert gathered.seen(np.array([1, 2])).tolist() == [True, True]
    with pytest.raises(TypeError, match="list of tokens"):
        nw.add_documents(["img:x a"], index, rows_of, gathered)


def test_distinct_keys_from_several_threads_keep_every_key_once(monkeypatch):
    """Four threads add 40,000 keys, about 3,000 distinct: each kept once, in a buffer that never
    held more than the distinct keys and half as many again (or one more array)."""
    monkeypatch.setattr(nw, "PENDING_MIN", 50)
    keys = nw.DistinctKeys()
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 3000, rng.integers(1, 200)) for _ in range(400)]
    largest = []

    def add(part):
        for b in part:
            keys.add(b)
            largest.append(len(keys._buf))

    threads = [threading.Thread(target=add, args=(batches[j::4],)) for j in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    distinct = np.unique(np.concatenate(batches))
    np.testing.assert_array_equal(keys.result(), distinct)
    assert keys.result() is keys.result() and len(keys._buf) == len(distinct)
    assert max(largest) <= 1.5 * len(distinct) + 200 < sum(map(len, batches)) / 5


def test_the_pool_is_found_by_key_in_a_renumbered_vocabulary(tiny):
    """The fitted bags kept by key (a NeighbourPool, or the word lists older models saved) give, in a
    vocabulary built again in another order without one of the images and one of the words, each
    remaining image's remaining words: sorted keys by the new indices."""
    rng = np.random.default_rng(3)
    index, rows_of = random_vocabulary(rng)
    gathered = nw.ImageWords(len(index))
    nw.add_documents(random_documents(rng), index, rows_of, gathered)
    images, ptr, tags, bag = nw.bags_from_pairs(gathered.pairs.result(), gathered.base)
    keys = list(index)
    pool = nw.NeighbourPool([keys[i] for i in images], ptr, bag, [keys[t] for t in tags])
    words = {k: [pool.tags[t] for t in bag[ptr[j]:ptr[j + 1]].tolist()] for j, k in enumerate(pool.keys)}
    gone_image, gone_word = pool.keys[0], pool.tags[0]
    again = [k for k in (keys[j] for j in rng.permutation(len(keys))) if k not in (gone_image, gone_word)]
    new_index = {k: i for i, k in enumerate(again)}
    new_rows = np.array([int(k[4:]) if k.startswith("img:") else -1 for k in again], dtype=np.int64)
    base = len(again) + 1
    got = nw.pool_keys(pool, new_index, new_rows, base)
    assert np.all(np.diff(got) > 0)
    by_key = {}
    for i, t in zip(*np.divmod(got, base)):
        by_key.setdefault(again[i], []).append(again[t])
    want = {k: sorted((w for w in ws if w != gone_word), key=new_index.__getitem__) for k, ws in words.items()}
    assert by_key == {k: ws for k, ws in want.items() if k != gone_image and ws}
    np.testing.assert_array_equal(nw.pool_keys(nw.pool_from_words(words), new_index, new_rows, base), got)
    # keep: decided an image at a time, before its pairs are made; the same keys as filtering after
    drop = {new_index[k] for k in list(by_key)[::2]}
    kept = nw.pool_keys(pool, new_index, new_rows, base, keep=lambda i: ~np.isin(i, list(drop)))
    np.testing.assert_array_equal(kept, got[~np.isin(got // base, list(drop))])


def test_no_key_is_added_after_the_result_is_taken():
    """result() hands its buffer to the fit: a later add (a job an interrupted train() still had in
    a worker's hands) adds nothing, and the result and views of it stay as they were."""
    d = nw.DistinctKeys()
    d.add(np.arange(100_000, dtype=np.int64))
    r = d.result()
    view = r[10:20]
    d.add(np.arange(100_000, 3_000_000, dtype=np.int64))
    assert d.result() is r and len(r) == 100_000 and view.tolist() == list(range(10, 20))


def test_a_document_repeating_its_tokens_makes_its_pairs_once():
    """A document's pairs follow its distinct tokens, not their occurrences: 3,000 copies of an image
    and of a word make one key (before: 9M keys, 72 MB, at once)."""
    keys, wordless = nw.document_keys([0] * 3000 + [1] * 3000 + [0, 2], [6002], np.array([5, -1, -1]), 4)
    assert sorted(keys.tolist()) == [1, 2] and len(wordless) == 0


class Gathered(CallbackAny2Vec):
    """Looks at the last epoch's gathered words as it ends (before train() fits them)."""

    def __init__(self):
        self.state = None

    def on_epoch_end(self, m):
        if m._gathered_words is not None:
            g = m._gathered_words
            self.state = (g, g.pairs._buf, len(g.pairs._buf), g.pairs._n, list(g.pairs._aside))


def test_the_training_gathers_arrays_and_fits_the_bags_fit_neighbours_gives(data, tiny):
    """Two workers on a corpus that holds each document three times (as joint mode repeats the image
    documents), under bounds tiny enough that their adds sort the pairs many times: the gathered state
    is one NumPy buffer of about the distinct pairs, not a dict per image nor every pair added, and
    the bags are fit_neighbours' on the same documents."""
    corpus = data.docs * 3
    seen = Gathered()
    m = Im2Vec(corpus, image_features=data.features, space_neighbours=5, callbacks=[seen],
               **{**OPTS, "workers": 2})
    gathered, buf, size, n, aside = seen.state  # (as the epoch ended: the fit trims the buffer)
    assert isinstance(gathered, nw.ImageWords) and m._gathered_words is None
    assert isinstance(buf, np.ndarray) and buf.dtype == np.int64 and not aside
    pairs = len(m.neighbour_bag_words)
    added = sum(len(nw.document_keys([m.wv.key_to_index[t] for t in d], [len(d)], m._vocab_image_rows,
                                     gathered.base)[0]) for d in corpus)
    assert pairs <= n <= size <= 1.5 * pairs + 200 < added / 1.5
    bags, keys = dense_bags(m), list(m.neighbour_keys)
    assert len(gathered.pairs.result()) == pairs
    m.fit_neighbours(data.docs[::-1])
    assert m.neighbour_keys == keys
    np.testing.assert_allclose(dense_bags(m), bags, rtol=1e-5, atol=1e-6)


def test_a_copy_or_pickle_from_a_callback_of_the_last_epoch_leaves_the_gathered_words(data):
    """A deepcopy or a pickle of the model from a callback while the last epoch gathers (the gather
    holds a lock): the copy has no gathered words (it does not train), the live model's train() fits
    them as it ends."""
    import copy
    import pickle

    class Copies(CallbackAny2Vec):
        def __init__(self):
            self.copies = []

        def on_epoch_end(self, m):
            if m._gathered_words is not None:
                self.copies += [copy.deepcopy(m), pickle.loads(pickle.dumps(m))]

    seen = Copies()
    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, callbacks=[seen], **OPTS)
    assert len(seen.copies) == 2 and all(c._gathered_words is None for c in seen.copies)
    ref = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    assert m.neighbour_keys == ref.neighbour_keys
    np.testing.assert_allclose(dense_bags(m), dense_bags(ref), rtol=1e-6, atol=1e-7)


def test_duplicate_documents_union_their_words_in_training_and_in_fit_neighbours(data):
    """The same image in several documents with different words (as joint mode repeats them): its bag
    is the union, in training's last epoch as in fit_neighbours."""
    docs = image_docs(data)
    key = docs[0][0]
    extra = [[key, docs[1][1]], [docs[2][2], key], [key]]
    corpus = data.docs + extra
    m = Im2Vec(corpus, image_features=data.features, space_neighbours=5, **OPTS)
    j = m.neighbour_keys.index(key)
    bag = {m.neighbour_tag_keys[t] for t in m.neighbour_bag_words[m.neighbour_bag_ptr[j]:m.neighbour_bag_ptr[j + 1]]}
    assert bag == set(docs[0][1:]) | {docs[1][1], docs[2][2]}
    bags = dense_bags(m)
    m.fit_neighbours(corpus[::-1])
    np.testing.assert_allclose(dense_bags(m), bags, rtol=1e-5, atol=1e-6)


def test_the_pool_survives_build_vocab_update_and_a_train_on_the_new_documents(data):
    """build_vocab(update=True) adds words after the images; a train() on new documents fits the images
    its last epoch saw with their new words and keeps every other image's words by key: the bags
    fit_neighbours gives on the documents that say so."""
    docs = image_docs(data)
    m = Im2Vec(data.docs, image_features=data.features, space_neighbours=5, **OPTS)
    first, second = docs[0][0], docs[1][0]
    new = [[first, "fresh1", "fresh2"], ["fresh2", "fresh3"], [second, docs[5][1], "fresh3"]]
    m.build_vocab(new, update=True)
    assert m.wv.key_to_index["fresh1"] > m.wv.key_to_index[first]  # (a word after the images)
    m.train(new, total_examples=len(new), epochs=1)
    assert isinstance(m.neighbour_bag_words, np.ndarray) and m._previous_pool is None
    bags, keys = dense_bags(m), list(m.neighbour_keys)
    m.fit_neighbours([d for d in data.docs if d[0] not in (first, second)] + new)
    assert m.neighbour_keys == keys
    np.testing.assert_allclose(dense_bags(m), bags, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("as_lists", [False, True], ids=["as arrays", "as word lists (before)"])
def test_an_interrupted_trains_pool_is_saved_and_kept_by_the_next(data, tmp_path, as_lists):
    """A model saved with an interrupted train()'s pool (a checkpoint's, say), as arrays or as the word
    lists by key saved before the pools were arrays, loads with it as arrays, and the next train()
    keeps those images' words."""
    m = interrupted(data)
    pool = m._previous_pool
    assert isinstance(pool, nw.NeighbourPool) and m.neighbour_keys is None
    if as_lists:
        m._previous_pool = {k: [pool.tags[t] for t in pool.words[pool.ptr[j]:pool.ptr[j + 1]].tolist()]
                            for j, k in enumerate(pool.keys)}
    m.save(str(tmp_path / "stopped.model"))
    again = Im2Vec.load(str(tmp_path / "stopped.model"))
    assert isinstance(again._previous_pool, nw.NeighbourPool) and again._previous_pool.keys == list(pool.keys)
    some = image_docs(data)[:30]
    again.train(some, total_examples=len(some), epochs=1)
    assert again.neighbour_keys == list(pool.keys)
    bags = dense_bags(again)
    again.fit_neighbours(data.docs)
    np.testing.assert_allclose(dense_bags(again), bags, rtol=1e-5, atol=1e-6)
