"""space_readout together with the model's other features (a review of the readout commit)."""

import copy

import numpy as np
import pytest
from gensim.models.callbacks import CallbackAny2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus
from gensim_im2vec.validation import l2_normalize

OPTS = dict(workers=1, vector_size=16, min_count=1, sample=0, sg=1, epochs=3, seed=1)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=200, n_features=32, n_text_sentences=100, seed=0)


class _Stop(Exception):
    pass


class _StopAt(CallbackAny2Vec):
    """Raise at the end of epoch `at` (as a Ctrl-C or a callback's error would stop train())."""

    def __init__(self, at):
        self.at, self.n = at, 0

    def on_epoch_end(self, model):
        self.n += 1
        if self.n == self.at:
            raise _Stop


def test_the_common_directions_leave_w_and_not_the_readout(data):
    """space_common_directions with the readout: W's part of every image vector is orthogonal to
    space_directions, the readout's part is the ridge fit as solved (taking the directions out of
    it too cost the joint demo's zero-shot on five splits, docs/joint-space.md), and the stored rows
    are project()'s, with and without a later train() that keeps W."""
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, space_common_directions=1, **OPTS)
    Q = m.space_directions
    assert Q is not None and m.readout_W is not None
    X = l2_normalize(np.array([data.features[k] for k in m.image_keys])) - m.feature_mean
    H = X @ m.W.T
    assert np.abs(H @ Q).max() < 1e-4 * np.abs(H).max()
    P = X @ m.readout_W.T + m.readout_offset
    assert np.abs(P @ Q).max() > 1e-2 * np.abs(P).max()  # the readout keeps them
    rows = np.stack([m.wv[k] for k in m.image_keys])
    np.testing.assert_allclose(rows, m.project(np.array([data.features[k] for k in m.image_keys])),
                               rtol=1e-4, atol=1e-5)
    m.train_images = False
    m.train(data.docs, total_examples=len(data.docs), epochs=1)
    np.testing.assert_array_equal(m.space_directions, Q)
    rows = np.stack([m.wv[k] for k in m.image_keys])
    np.testing.assert_allclose(rows, m.project(np.array([data.features[k] for k in m.image_keys])),
                               rtol=1e-4, atol=1e-5)


def test_a_train_stopped_in_its_last_epoch_leaves_no_sums_behind(data):
    """The last epoch's sums (with their lock) are training state: a train() stopped after they were
    gathered must not leave them on the model (copy.deepcopy / pickle of it fail on the lock)."""
    m = Im2Vec(image_features=data.features, space_readout=0.5, **OPTS)
    m.build_vocab(data.docs)
    with pytest.raises(_Stop):
        m.train(data.docs, total_examples=len(data.docs), epochs=3, callbacks=[_StopAt(3)])
    assert m._readout_sums is None
    copy.deepcopy(m)


def test_a_new_vocabulary_resets_the_readout_with_w(data):
    """build_vocab() anew resets W (init_weights): the readout fitted for the old W and words goes
    with it, so a train() stopped before its end does not mix the new W with the old readout."""
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    assert m.readout_W is not None
    m.build_vocab(data.docs)
    assert m.readout_W is None and m.readout_offset is None
    with pytest.raises(_Stop):
        m.train(data.docs, total_examples=len(data.docs), epochs=3, callbacks=[_StopAt(1)])
    key = m.image_keys[0]
    x = l2_normalize(np.asarray(data.features[key], dtype=np.float32)[None])[0] - m.feature_mean
    np.testing.assert_allclose(m.wv[key], m.W @ x, rtol=1e-5, atol=1e-6)


def test_map_in_float64_is_project_rows(data):
    """The evaluation's float64 path (_map) gives the stored rows' function (project_rows, float32)."""
    m = Im2Vec(data.docs, image_features=data.features, space_readout=0.5, **OPTS)
    keys = m.image_keys[:50]
    F = np.array([data.features[k] for k in keys])
    np.testing.assert_allclose(m._project_normalized(F, dtype=np.float64), m.wv[keys], rtol=1e-5, atol=1e-6)
