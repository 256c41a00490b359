"""One tiny run of the space step for the tests of space.py: 4 images (9 features), 12 words (6-d)."""

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
