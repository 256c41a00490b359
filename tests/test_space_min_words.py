"""space_min_words: an image with fewer words than this does not train the space step (W, and the
words through it), and still trains the readout and gets its vector (issue 11: the joint demo keeps
its one-tag images for the readout, which a least-squares fit learns from, and out of W's softmax)."""

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus
from gensim_im2vec.validation import l2_normalize

OPTS = dict(workers=1, vector_size=16, min_count=1, sample=0, sg=1, epochs=3, seed=3)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=160, n_features=24, n_text_sentences=100, seed=0)


def mixed_docs(data):
    """Every third image document cut to its image and first word, and some pairs of image
    documents joined into one (runs that hold an image of one word beside one of several)."""
    docs, images = [], [d for d in data.docs if d[0].startswith("img:")]
    for i, d in enumerate(images):
        d = d[:2] if i % 3 == 0 else d
        if i % 5 == 1 and docs and docs[-1][0].startswith("img:"):
            docs[-1] = docs[-1] + d
        else:
            docs.append(list(d))
    return docs + [d for d in data.docs if not d[0].startswith("img:")]


@pytest.mark.parametrize("candidates", ["run", "own"])
def test_the_kernels_job_path_and_the_per_run_path_train_the_same_model(data, monkeypatch, candidates):
    """The job plan keeps a dropped image's words among its run's candidates; the per-run path
    does the same: one worker, one model, bit for bit ("own" runs on the per-run path either way,
    so there it is the two paths' readout sums and candidates that are compared)."""
    docs = mixed_docs(data)

    def train(kernel_job, min_words):
        monkeypatch.setattr(Im2Vec, "_space_in_kernel", lambda self: kernel_job and candidates == "run")
        return Im2Vec(docs, image_features=data.features, window=3, negative=3, image_batch=16,
                      space_negatives=20, batch_words=300, space_min_words=min_words, space_readout=0.5,
                      space_candidates=candidates, **OPTS)

    a, b, every = train(True, 2), train(False, 2), train(True, 1)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    np.testing.assert_array_equal(a.readout_W, b.readout_W)
    assert np.abs(a.W - every.W).max() > 1e-3  # the one-word images trained W there


@pytest.mark.parametrize("candidates", ["run", "own"])
def test_images_of_one_word_leave_w_and_the_words_and_train_the_readout(data, candidates):
    """Documents of an image and one word only: with space_min_words=2 nothing trains W or the
    words (a one-word document has no word pairs either), the readout is fitted on every image,
    and each image's vector is still project() of its features."""
    docs = [d[:2] for d in data.docs if d[0].startswith("img:")]

    def model(min_words):
        m = Im2Vec(image_features=data.features, space_readout=0.5, space_min_words=min_words,
                   space_candidates=candidates, **OPTS)
        m.build_vocab(docs)
        W0, U0 = m.W.copy(), m.wv.vectors[m._vocab_image_rows < 0].copy()
        m.train(docs, total_examples=len(docs), epochs=m.epochs)
        return m, W0, U0

    m, W0, U0 = model(2)
    np.testing.assert_array_equal(m.W, W0)
    np.testing.assert_array_equal(m.wv.vectors[m._vocab_image_rows < 0], U0)
    assert m.readout_W is not None and np.abs(m.readout_W).max() > 0
    keys = [d[0] for d in docs[:30]]
    np.testing.assert_allclose(m.wv[keys], m.project(np.array([data.features[k] for k in keys])), rtol=1e-5,
                               atol=1e-6)
    # the readout alone ranks each image's own word first more often than chance (4 classes, 8+ words)
    words = sorted({d[1] for d in docs})
    U = l2_normalize(m.wv[words])
    hits = np.mean([words[int(np.argmax(U @ m.wv[d[0]]))] == d[1] for d in docs])
    assert hits > 0.4, hits
    every, W0, _ = model(1)
    assert np.abs(every.W - W0).max() > 1e-3


def test_space_min_words_is_checked_saved_and_defaults_for_old_models(data, tmp_path):
    for bad in (0, 1.5, "2", None):
        with pytest.raises(ValueError, match="space_min_words must be an int >= 1"):
            Im2Vec(image_features=data.features, space_min_words=bad)
    m = Im2Vec(data.docs, image_features=data.features, space_min_words=3, **OPTS)
    m.save(str(tmp_path / "m.model"))
    assert Im2Vec.load(str(tmp_path / "m.model")).space_min_words == 3
    del m.__dict__["space_min_words"]  # as saved before the option
    m.save(str(tmp_path / "old.model"))
    assert Im2Vec.load(str(tmp_path / "old.model")).space_min_words == 1
