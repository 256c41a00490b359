"""What session 22's review of the space step found (the gradients themselves were checked against
torch and agree; see tests/test_space.py): which words it moves under each ``train_words``, a
``space_pull`` with nothing to pull towards, and the NumPy reference without negatives."""

import logging

import numpy as np
import pytest
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.space import space_step
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=16, window=3, min_count=1, sg=1, negative=3, workers=1, seed=3, image_batch=16,
            space_negatives=10, sample=0)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=120, n_features=24, seed=0)


def test_frozen_words_learn_once_from_their_random_start_then_stay(data):
    """train_words=False without a text model: every word starts random, so the first train()
    places them (the space step moves them); from then on they are trained words and stay frozen."""
    m = Im2Vec(image_features=data.features, train_words=False, **OPTS)
    m.build_vocab(data.docs)
    words = np.flatnonzero(m._vocab_image_rows < 0)
    u0 = m.wv.vectors[words].copy()
    m.train(data.docs, total_examples=len(data.docs), epochs=2)
    u1 = m.wv.vectors[words].copy()
    assert (u1 != u0).any(axis=1).mean() > 0.5
    W1 = m.W.copy()
    m.train(data.docs, total_examples=len(data.docs), epochs=2)
    assert np.array_equal(m.wv.vectors[words], u1) and not np.array_equal(m.W, W1)


def test_new_words_keep_learning_in_the_space_step_with_train_words_new(data):
    """train_words="new": the words added after from_word2vec learn in every train(), in the pair
    loop (vectors_lockf) and in the space step alike; before, the space step froze them after the
    first train() while the pair loop went on."""
    text = [d[1:] for d in data.docs]
    w2v = Word2Vec(text[:60], vector_size=16, min_count=1, sg=1, epochs=2, workers=1, seed=1)
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=data.docs, epochs=1, train_words="new",
                             sample=0, window=3, image_batch=16, space_negatives=10)
    n_text = m.n_pretrained_words
    assert 0 < n_text < len(m.word_keys)
    for _ in range(2):  # before and after a second train()
        lock = m._space_word_lock()
        words = m._vocab_image_rows < 0
        assert not lock[:n_text].any() and lock[n_text:][words[n_text:]].all()
        pair_loop = m._training_lockf()  # the pair loop's factors, a row per word
        assert len(pair_loop) == m._output_rows() < len(m.wv)  # none for the images
        assert np.array_equal(lock[np.flatnonzero(words)], pair_loop[np.flatnonzero(words)])  # the same words
        m.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert np.array_equal(m.wv.vectors[:n_text], w2v.wv.vectors[:n_text])


def test_train_words_new_leaves_the_users_lock_factors_as_they_were(data):
    """train_words="new" freezes the text's words through factors of its own: wv.vectors_lockf
    (gensim's, the user's) is not replaced, so a later train_words=True trains the text's words in
    the pair loop again; a factor the user set still holds for the words that learn in the pair
    loop (and in the space step: test_a_word_the_user_locked_stays_in_the_space_step_too)."""
    text = [d[1:] for d in data.docs]
    w2v = Word2Vec(text[:60], vector_size=16, min_count=1, sg=1, epochs=2, workers=1, seed=1)
    kw = dict(sample=0, window=3, image_batch=16, space_negatives=10, space_word_alpha=0.0)
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=data.docs, epochs=1, **kw)
    assert m.train_words == "new" and np.array_equal(m.wv.vectors_lockf, np.ones(1, dtype=np.float32))
    n_text = m.n_pretrained_words
    assert np.array_equal(m.wv.vectors[:n_text], w2v.wv.vectors[:n_text])
    m.train_words = True  # the space step moves no word here (space_word_alpha=0): the pair loop does
    m.train(data.docs, total_examples=len(data.docs), epochs=1)
    moved = ~np.all(m.wv.vectors[:n_text] == w2v.wv.vectors[:n_text], axis=1)
    assert moved.mean() > 0.5, moved.mean()
    # a factor of the user's: 0 for one new word keeps it where it is under "new" too
    docs = [d + [f"fresh{data.labels[d[0]]}"] if d[0].startswith("img:") else d for d in data.docs]
    m2 = Im2Vec.from_word2vec(w2v, image_features=data.features, **kw)
    m2.build_vocab(docs, update=True)
    lockf = np.ones(len(m2.wv), dtype=np.float32)
    lockf[m2.wv.key_to_index["fresh0"]] = 0.0
    m2.wv.vectors_lockf = lockf
    before = {w: m2.wv[w].copy() for w in ("fresh0", "fresh1")}
    m2.train(docs, total_examples=len(docs), epochs=1)
    assert np.array_equal(m2.wv["fresh0"], before["fresh0"]) and not np.array_equal(m2.wv["fresh1"], before["fresh1"])
    assert m2.wv.vectors_lockf is lockf
    assert np.array_equal(m2.wv.vectors[:n_text], w2v.wv.vectors[:n_text])


@pytest.mark.parametrize("path", ["job kernel", "per-run NumPy"])
def test_a_word_the_user_locked_stays_in_the_space_step_too(data, tmp_path, path):
    """gensim's way to train beside pretrained vectors that stay fixed: a vocabulary from the corpus,
    ``wv.intersect_word2vec_format(path, lockf=0.0)`` for the words the file has (one factor per row
    of ``wv.vectors_lockf``). gensim's pair loop reads the factor; the space step, which also moves
    words, read only its own lock until now, and moved those words (by up to 0.59 here). A factor
    between 0 and 1 scales the space step's move as it scales the pair loop's."""
    from gensim.models import KeyedVectors

    extra = dict(space_symmetric=0.2) if path == "per-run NumPy" else {}
    m = Im2Vec(image_features=data.features, **OPTS, **extra)
    m.build_vocab(data.docs)
    assert m._space_in_kernel() is (path == "job kernel")
    words = [w for w in m.wv.index_to_key if not w.startswith("img:")]
    pretrained, free = words[: len(words) // 2], words[len(words) // 2:]
    kv = KeyedVectors(16)
    kv.add_vectors(pretrained, np.random.default_rng(0).normal(size=(len(pretrained), 16)).astype(np.float32))
    kv.add_vectors(["elsewhere"], np.ones((1, 16), np.float32))  # a word of the file the corpus lacks
    kv.save_word2vec_format(str(tmp_path / "pretrained.txt"))
    m.wv.vectors_lockf = np.ones(len(m.wv), dtype=np.float32)
    m.wv.intersect_word2vec_format(str(tmp_path / "pretrained.txt"), lockf=0.0)
    half = free[0]
    m.wv.vectors_lockf[m.wv.key_to_index[half]] = 0.5
    assert m._space_word_lock()[m.wv.key_to_index[half]] == 0.5
    assert not m._space_word_lock()[[m.wv.key_to_index[w] for w in pretrained]].any()
    before = m.wv.vectors.copy()
    m.train(data.docs, total_examples=len(data.docs), epochs=2)
    rows = [m.wv.key_to_index[w] for w in pretrained]
    assert np.array_equal(m.wv.vectors[rows], kv[pretrained])
    moved = ~np.all(m.wv.vectors[[m.wv.key_to_index[w] for w in free]] == before[[m.wv.key_to_index[w] for w in free]],
                    axis=1)
    assert moved.all()
    cos = [float(m.wv.cosine_similarities(m.wv[f"img:{i}"], m.wv[[data.class_words[c]]])[0])
           for i, c in ((k, data.labels[f"img:{k}"]) for k in range(20))]
    assert np.mean(cos) > 0.3, cos  # the images still find their class words, frozen or not
    # new words later (build_vocab(update=True)): the factors kept, a factor of 1 for each new row
    docs = [d + ["later"] if d[0].startswith("img:") else d for d in data.docs]
    m.build_vocab(docs, update=True)
    assert len(m.wv.vectors_lockf) == len(m.wv) and m.wv.vectors_lockf[m.wv.key_to_index["later"]] == 1.0
    later = m.wv["later"].copy()
    m.train(docs, total_examples=len(docs), epochs=1)
    assert np.array_equal(m.wv.vectors[rows], kv[pretrained]) and not np.array_equal(m.wv["later"], later)


def test_the_calibration_leaves_a_word_the_user_locked(data, caplog):
    """space_calibrate_new_words scales the tags the text lacks that the space step moved; one the
    user locked (vectors_lockf 0) was not moved, and stays as it was."""
    text = [d[1:] for d in data.docs]
    w2v = Word2Vec([s for s in text if "class0" not in s][:80], vector_size=16, min_count=1, sg=1, epochs=2,
                   workers=1, seed=1)
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, train_words=False, space_calibrate_new_words=True,
                             **{k: v for k, v in OPTS.items() if k != "vector_size"})
    m.build_vocab(data.docs, update=True)
    new = [w for w in m.word_keys[m.n_pretrained_words:]]
    assert len(new) >= 2
    m.wv.vectors_lockf = np.ones(len(m.wv), dtype=np.float32)
    m.wv.vectors_lockf[m.wv.key_to_index[new[0]]] = 0.0
    before = m.wv[new[0]].copy()
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        m.train(data.docs, total_examples=len(data.docs), epochs=2)
    assert np.array_equal(m.wv[new[0]], before)
    assert f"of {len(new) - 1} word(s) without a pretrained vector" in caplog.text  # the others, calibrated


def test_space_pull_without_text_vectors_says_it_does_nothing(data, caplog):
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        Im2Vec(data.docs, image_features=data.features, space_pull=0.3, epochs=1, **OPTS)
    assert "space_pull=0.3 does nothing here" in caplog.text
    caplog.clear()
    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=16, min_count=1, sg=1, epochs=1, workers=1, seed=1)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=data.docs, epochs=1, space_pull=0.3,
                             sample=0)
    assert "space_pull" not in caplog.text


@pytest.mark.parametrize("candidates", ["own", "run"])
def test_no_negatives_numpy_reference_agrees_with_the_kernel(candidates):
    rng = np.random.default_rng(0)
    W, syn0, Vn = rng.normal(size=(4, 6)), rng.normal(size=(10, 4)), rng.normal(size=(2, 6))
    out = {}
    for dtype, kernel in [(np.float32, True), (np.float64, False)]:
        w, u = W.astype(dtype), syn0.astype(dtype)
        loss = space_step(w, u, Vn.astype(dtype), np.array([0, 0, 1]), np.array([1, 2, 3]), np.array([], np.int64),
                          alpha_w=0.1, alpha_u=0.1, temperature=0.1, candidates=candidates, kernel=kernel)
        out[kernel] = loss, w, u
    assert np.isfinite(out[False][0]) and out[False][0] == pytest.approx(out[True][0], rel=1e-5)
    np.testing.assert_allclose(out[False][1], out[True][1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[False][2], out[True][2], rtol=1e-4, atol=1e-5)


def test_train_words_new_on_a_text_only_model_from_a_corpus_file(tmp_path):
    """A text-only from_word2vec model trained from a corpus_file: Im2Vec's reader and kernel, not
    gensim's (which would read wv.vectors_lockf, the user's, and train the text's words); the text's
    words stay frozen, the new word learns, and wv.vectors_lockf is the user's throughout, also in a
    model saved from a callback and after a train() run from inside another."""
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.test.utils import common_texts

    import gensim_im2vec.corpusfile as corpusfile

    w2v = Word2Vec(common_texts * 10, vector_size=8, min_count=1, sg=1, epochs=2, workers=1, seed=1)
    m = Im2Vec.from_word2vec(w2v, workers=1)
    docs = [t + ["fresh"] for t in common_texts] * 10
    path = tmp_path / "c.txt"
    path.write_text("".join(" ".join(d) + "\n" for d in docs))
    m.build_vocab(corpus_file=str(path), update=True)
    assert not corpusfile.uses_gensim_reader(m)
    before = m.wv.vectors.copy()
    lockf = m.wv.vectors_lockf

    class SaveAndTrainAgain(CallbackAny2Vec):
        done = False

        def on_epoch_end(self, model):
            if not self.done:
                self.done = True
                model.save(str(tmp_path / "mid.model"))
                model.train(docs, total_examples=len(docs), epochs=1)

    m.train(corpus_file=str(path), total_words=sum(len(d) for d in docs), epochs=2, callbacks=[SaveAndTrainAgain()])
    n_text = m.n_pretrained_words
    assert np.array_equal(m.wv.vectors[:n_text], before[:n_text])
    assert not np.array_equal(m.wv["fresh"], before[m.wv.key_to_index["fresh"]])
    assert m.wv.vectors_lockf is lockf and np.array_equal(lockf, np.ones(1, dtype=np.float32))
    assert np.array_equal(Im2Vec.load(str(tmp_path / "mid.model")).wv.vectors_lockf, np.ones(1, dtype=np.float32))
    m.hs, m.negative = 1, 0
    with pytest.raises(ValueError, match="train_words='new' trains with negative sampling"):
        m.train(docs, total_examples=len(docs), epochs=1)
