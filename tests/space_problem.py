"""One tiny run of the space step for the tests of space.py: 4 images (9 features), 12 words (6-d);
and a small synthetic training through either path of the space head, for the tests that hold
the kernel's job loop to the per-run NumPy formulas."""

import numpy as np


def tiny_run(seed=0, pair_word=(1, 2, 2, 5, 7, 1), negatives=(0, 3, 4, 6, 8, 9, 10, 11)):
    """``(W, syn0, Vn, pair_slot, pair_word, negatives)``: random W and words from `seed`, unit
    features, images 0-3 with the words `pair_word` (two, one, one and two of them)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(6, 9))
    syn0 = rng.normal(size=(12, 6))
    Vn = rng.normal(size=(4, 9))
    Vn /= np.linalg.norm(Vn, axis=1, keepdims=True)
    return W, syn0, Vn, np.array([0, 0, 1, 2, 3, 3]), np.array(pair_word), np.array(negatives)


def train_synthetic(monkeypatch, kernel_job: bool, two_stage: bool, **options):
    """Im2Vec on a 4-class synthetic corpus (120 images, 24 features, 16-d words, 3 epochs, one
    worker), its space head's jobs in one kernel call (`kernel_job`) or run by run through the
    NumPy formulas; two-stage from a text model of the same documents, or joint. `options`: extra
    Im2Vec options (the one under test)."""
    from gensim.models import Word2Vec

    from gensim_im2vec import Im2Vec
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=120, n_features=24, n_text_sentences=100, seed=0)
    monkeypatch.setattr(Im2Vec, "_space_in_kernel", lambda self: kernel_job)
    kw = dict(image_features=data.features, window=3, min_count=1, sg=1, negative=3, workers=1, epochs=3,
              seed=3, image_batch=16, space_negatives=20, batch_words=300, **options)
    if two_stage:
        w2v = Word2Vec(data.docs, vector_size=16, min_count=1, sg=1, workers=1, epochs=2, seed=3)
        return Im2Vec.from_word2vec(w2v, sentences=data.docs, **kw)
    return Im2Vec(data.docs, vector_size=16, **kw)
