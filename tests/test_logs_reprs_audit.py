"""What a notebook shows and what the logs say (session h4's audit, "logs measure"): each test is a
repr that said too little, too much or a wrong figure, or a log line that did."""

import logging

import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=8, sg=1, min_count=1, epochs=2, workers=1, seed=1)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=3, n_images=60, n_features=12, seed=0)


def test_the_models_repr_is_its_str_and_says_the_feature_dim_before_build_vocab(data, tmp_path):
    # a notebook cell that ends in `model` showed <gensim_im2vec.model.Im2Vec object at 0x...>, and
    # str() of a model given its features but no vocabulary yet said features=0
    empty = Im2Vec(image_features=data.features, **OPTS)
    assert repr(empty) == str(empty) == "Im2Vec<vocab=0 (0 images), vector_size=8, features=12, alpha=0.025>"
    assert str(Im2Vec(**OPTS)) == "Im2Vec<vocab=0 (0 images), vector_size=8, features=0, alpha=0.025>"
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    assert repr(model) == f"Im2Vec<vocab={len(model.wv)} (60 images), vector_size=8, features=12, alpha=0.025>"
    model.save(str(tmp_path / "m.model"))
    loaded = Im2Vec.load(str(tmp_path / "m.model"), mmap="r")
    assert repr(loaded) == repr(model)
