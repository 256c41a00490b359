"""gensim's own KeyedVectors calls on an Im2Vec's ``model.wv`` (words and image keys such as
``img:animals/frog_01``), as a gensim user makes them: the recipes this package gives for them
(its README, its error messages) answer in the one space, also in the files plain gensim reads back."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=16, min_count=1, epochs=3, workers=1, seed=1, image_batch=16, space_negatives=10)
README = Path(__file__).resolve().parents[1] / "README.md"


def _frog(token: str) -> str:
    return f"img:animals/frog_{int(token[4:]):02d}" if token.startswith("img:") else token


@pytest.fixture(scope="module")
def data():
    corpus = make_corpus(n_classes=5, n_images=200, n_features=16, n_text_sentences=100, seed=0)
    docs = [[_frog(t) for t in d] for d in corpus.docs]
    return docs, {_frog(k): v for k, v in corpus.features.items()}


@pytest.fixture(scope="module")
def searched(data):
    """A trained model whose ``wv`` was searched (gensim's most_similar filled ``wv.norms``), and what
    that search answered for an image."""
    docs, feats = data
    model = Im2Vec(docs, image_features=feats, **OPTS)
    return model, model.wv.most_similar("img:animals/frog_01", topn=5)


def _assert_same_answers(got, want):
    assert [k for k, _ in got] == [k for k, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def _sorted_copy_answers_right(recipe: str, model, want, tmp_path):
    space = {"copy": copy, "model": model}
    exec(recipe, space)
    kv = space["kv"]
    assert kv.index_to_key != model.wv.index_to_key  # (sorted: the test would show nothing otherwise)
    _assert_same_answers(kv.most_similar("img:animals/frog_01", topn=5), want)
    kv.save(str(tmp_path / "sorted.kv"))  # the file plain gensim reads back
    _assert_same_answers(KeyedVectors.load(str(tmp_path / "sorted.kv")).most_similar("img:animals/frog_01", topn=5),
                         want)


def test_the_refusals_sorted_copy_for_export_answers_right(searched, tmp_path):
    """train() after wv.sort_by_descending_frequency() is refused with a recipe: sort a copy for export.
    gensim's sort keeps ``wv.norms`` in the old order, so the copy of a model searched before answered
    from other rows' norms (cosines of 1.26) and its saved .kv file too."""
    model, want = searched
    reordered = copy.deepcopy(model)
    reordered.wv.sort_by_descending_frequency()
    with pytest.raises(RuntimeError, match="sort a copy") as err:
        reordered.train([["class0"]], total_examples=1, epochs=1)
    recipe = re.search(r"for export \((kv = .*)\)\.", str(err.value)).group(1)
    _sorted_copy_answers_right(recipe, model, want, tmp_path)


def test_the_readmes_sorted_copy_for_export_answers_right(searched, tmp_path):
    model, want = searched
    recipes = re.findall(r"`(kv = copy\.deepcopy\(model\.wv\);[^`]*)`", README.read_text(encoding="utf-8"))
    assert recipes, "README.md lost its recipe for a sorted copy of model.wv"
    for recipe in recipes:
        _sorted_copy_answers_right(recipe, model, want, tmp_path)
