"""space_readout_directions: the readout leaves the tags' top k principal directions to ``W``
(``R ← (I − P·Pᵀ)·R``, the same for ``c``), so that in two-stage the readout adds to the space
instead of trading seen tags for zero-shot ones (docs/joint-space.md, "The readout without the
tags' main directions")."""

import logging

import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec.space import common_directions, principal_directions
from gensim_im2vec.synthetic import make_corpus
from gensim_im2vec.validation import l2_normalize

OPTS = dict(workers=1, vector_size=16, min_count=1, sample=0, sg=1, epochs=3, seed=1)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=400, n_features=32, n_related=2, n_text_sentences=300, seed=0)


def tag_directions(model, k):
    """The trained tags' top k principal directions, computed here from the tags' own rows."""
    tags = [w for w in model.image_tag_counts if w in model.wv.key_to_index and not model.is_image(w)]
    U = l2_normalize(np.asarray(model.wv[tags]), out_dtype=np.float64)
    return np.linalg.svd(U - U.mean(axis=0), full_matrices=False)[2][:k].T


@pytest.mark.parametrize("block", [65536, 7, 1])  # one block; blocks of 7 rows (the last shorter); row by row
def test_principal_directions_are_the_svds_and_common_directions_the_mean_and_them(monkeypatch, block):
    """The directions come from the unit rows' covariance, read in blocks of DIRECTIONS_BLOCK rows
    (no float64 copy of every row): the same as an SVD of the whole centred copy, as before."""
    import gensim_im2vec.space as space

    monkeypatch.setattr(space, "DIRECTIONS_BLOCK", block)
    rng = np.random.default_rng(3)
    U = rng.normal(size=(40, 6)) * [4, 2, 1, 1, 1, 1] + 1.0
    P = principal_directions(U, 2)
    unit = U / np.linalg.norm(U, axis=1, keepdims=True)
    expected = np.linalg.svd(unit - unit.mean(axis=0), full_matrices=False)[2][:2].T
    np.testing.assert_allclose(np.abs(P.T @ expected), np.eye(2), atol=1e-12)  # the same directions, up to sign
    Q = common_directions(U, 2)
    mean = unit.mean(axis=0) / np.linalg.norm(unit.mean(axis=0))
    assert abs(abs(Q[:, 0] @ mean) - 1) < 1e-12  # the mean first, then the span of the principal directions
    span = Q @ Q.T
    np.testing.assert_allclose(span @ P, P, atol=1e-12)
    assert principal_directions(U, 0).shape == (6, 0)
    with pytest.raises(ValueError, match="k must be an int in"):
        principal_directions(U, 6)
    U32 = U.astype(np.float32)  # the model's rows: float32, read in blocks as float64
    np.testing.assert_allclose(np.abs(principal_directions(U32, 2).T @ expected), np.eye(2), atol=1e-6)


@pytest.mark.parametrize("two_stage", [False, True])
def test_the_readout_has_no_component_along_the_tags_top_directions(data, two_stage):
    kw = dict(train_words=False, space_word_alpha=0.0) if two_stage else {}
    plain = Im2Vec(data.docs, image_features=data.features, space_readout=1.0, **kw, **OPTS)
    m = Im2Vec(data.docs, image_features=data.features, space_readout=1.0, space_readout_directions=4, **kw, **OPTS)
    np.testing.assert_array_equal(m.W, plain.W)  # training is the same: only the fitted readout changes
    P = tag_directions(m, 4)
    assert np.abs(plain.readout_W.T @ P).max() > 0.05  # without the option the readout uses them
    assert np.abs(m.readout_W.T @ P).max() < 1e-5 and np.abs(m.readout_offset @ P).max() < 1e-5
    # along every other direction it is the plain readout's
    rest = np.eye(P.shape[0]) - P @ P.T
    np.testing.assert_allclose(m.readout_W.T, plain.readout_W.T @ rest, atol=1e-5)
    np.testing.assert_allclose(m.readout_offset, plain.readout_offset @ rest, atol=1e-5)


def test_what_wv_project_a_saved_file_and_plain_gensim_answer_is_one_function(data, tmp_path):
    m = Im2Vec(data.docs, image_features=data.features, space_readout=1.0, space_readout_directions=3, **OPTS)
    keys = [d[0] for d in data.docs if d[0].startswith("img:")][:60]
    np.testing.assert_allclose(m.wv[keys], m.project(np.array([data.features[k] for k in keys])), rtol=1e-4, atol=1e-5)
    m.save(str(tmp_path / "m.model"))
    again = Im2Vec.load(str(tmp_path / "m.model"))
    assert again.space_readout_directions == 3
    np.testing.assert_array_equal(again.project(data.test_features), m.project(data.test_features))
    m.wv.save(str(tmp_path / "m.kv"))
    assert KeyedVectors.load(str(tmp_path / "m.kv")).most_similar(keys[0], topn=5) == m.wv.most_similar(keys[0], topn=5)
    del again.__dict__["space_readout_directions"]  # a model saved before the option
    again.save(str(tmp_path / "old.model"))
    assert Im2Vec.load(str(tmp_path / "old.model")).space_readout_directions == 0


def test_too_few_tags_keep_every_direction_with_a_warning(data, caplog):
    m = Im2Vec(data.docs, image_features=data.features, space_readout=1.0, space_readout_directions=15, **OPTS)
    n_tags = len(m._tag_rows())
    assert n_tags >= 17  # enough tags for 15; the space has 16 dimensions
    m.space_readout_directions = n_tags  # more directions than tags
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        m.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert "too few for" in caplog.text and "the readout keeps every direction" in caplog.text
    assert np.abs(m.readout_W.T @ tag_directions(m, 4)).max() > 0.05


@pytest.mark.parametrize("bad", [-1, 2.5, "3", True])
def test_a_bad_number_of_directions_is_named(data, bad):
    with pytest.raises(ValueError, match=r"space_readout_directions must be an int >= 0 .* got " + repr(bad).replace("'", ".")):
        Im2Vec(image_features=data.features, space_readout=0.5, space_readout_directions=bad)


@pytest.mark.parametrize("block", [65536, 3])
def test_rows_give_the_directions_of_those_rows_without_copying_them(monkeypatch, block):
    import gensim_im2vec.space as space

    monkeypatch.setattr(space, "DIRECTIONS_BLOCK", block)
    rng = np.random.default_rng(5)
    V = (rng.normal(size=(30, 6)) + 0.5).astype(np.float32)
    rows = np.array([2, 3, 5, 7, 11, 13, 17, 19, 23, 29])
    np.testing.assert_array_equal(principal_directions(V, 2, rows=rows), principal_directions(V[rows], 2))
    np.testing.assert_array_equal(common_directions(V, 1, rows=rows), common_directions(V[rows], 1))
    with pytest.raises(ValueError, match="rows must index the 30 rows"):
        principal_directions(V, 2, rows=[0, 30])
    with pytest.raises(ValueError, match="at least 2 word vectors"):
        common_directions(V, 0, rows=[4])
    with pytest.raises(ValueError, match="k must be an int in"):
        principal_directions(V, 2, rows=[1, 2])  # 2 rows: no direction beyond k = 1
