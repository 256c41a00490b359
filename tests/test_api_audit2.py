"""The Python API with bad and unusual inputs, as a gensim user gives them (second audit): each test
is a call that lost the model, trained nothing without an error, or failed deep in numpy."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import Restarting

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus

KW = dict(vector_size=8, sg=1, min_count=1, epochs=2, sample=0, workers=1, seed=1)
DATA = make_corpus(n_classes=4, n_images=60, n_features=16, seed=0)


@pytest.fixture(scope="module")
def model() -> Im2Vec:
    return Im2Vec(DATA.docs, image_features=DATA.features, **KW)


# ----------------------------------------------------------------------------- saving

def _arrays_written(tmp_path) -> int:
    """How many arrays save(sep_limit=0) writes with np.save (the model's and its wv's)."""
    calls = []
    real = np.save

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    m = Im2Vec(DATA.docs, image_features=DATA.features, **KW)
    np.save = counting
    try:
        m.save(str(tmp_path / "count.model"), sep_limit=0)
    finally:
        np.save = real
    return len(calls)


def _failing_at(n: int):
    """np.save, but its `n`-th call fails as a full disk does."""
    calls, real = [], np.save

    def save(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == n:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    return save


def test_a_failed_save_leaves_the_model_in_memory_whole(tmp_path, monkeypatch):
    """gensim's save sets the arrays (and the attributes it ignores) aside before it writes each to its
    .npy file, and puts them back only once the pickle is written; where a write failed (no space
    left) only the failing object's own were put back: the model lost W, syn1neg and its sampling tables
    (or wv its vectors_lockf, with the words a user froze), so it could neither train nor be saved
    again, and an hour's training was gone. Every array's write fails in turn here."""
    n = _arrays_written(tmp_path)
    assert n >= 6
    for fail_at in range(1, n + 1):
        m = Im2Vec(DATA.docs, image_features=DATA.features, **KW)
        m.wv.vectors_lockf = np.ones(len(m.wv), dtype=np.float32)
        m.wv.vectors_lockf[:3] = 0.0  # frozen words, as the README's example freezes them
        held = dict(m.__dict__), dict(m.wv.__dict__)
        monkeypatch.setattr(np, "save", _failing_at(fail_at))
        with pytest.raises(OSError, match="No space left"):
            m.save(str(tmp_path / "m.model"), sep_limit=0)
        monkeypatch.undo()
        for obj, before in zip((m, m.wv), held):
            lost = sorted(a for a in before if not a.startswith("__") and a not in obj.__dict__)
            assert not lost, f"a save that failed at array {fail_at} of {n} lost {lost} of {type(obj).__name__}"
            changed = sorted(a for a, v in before.items() if not a.startswith("__") and obj.__dict__[a] is not v)
            assert changed in ([], ["norms"])  # (wv's norms: filled by the save, from the rows it saves)
        assert (m.wv.vectors_lockf[:3] == 0).all()
        m.train(DATA.docs, total_examples=len(DATA.docs), epochs=1)
        m.save(str(tmp_path / "m.model"), sep_limit=0)
        np.testing.assert_array_equal(Im2Vec.load(str(tmp_path / "m.model")).W, m.W)


# ----------------------------------------------------------------------------- corpora

@pytest.mark.parametrize("one_shot", [iter, lambda docs: map(list, docs), lambda docs: (d for d in docs)],
                         ids=["iter", "map", "generator"])
def test_a_one_shot_iterator_for_several_passes_is_refused(one_shot):
    """gensim refuses a generator, but ``Im2Vec(iter(docs), ...)`` or ``map(...)`` built the vocabulary
    from the first pass and trained every epoch on an empty corpus: a model whose W had not learned,
    with a logged warning at most."""
    with pytest.raises(TypeError, match=r"one-shot iterator .* it is read 3 times here .* Pass a list"):
        Im2Vec(one_shot(DATA.docs), image_features=DATA.features, **KW)
    m = Im2Vec(image_features=DATA.features, **KW)
    m.build_vocab(one_shot(DATA.docs))  # one pass: fine
    with pytest.raises(TypeError, match=r"one-shot iterator .* it is read 2 times here"):
        m.train(one_shot(DATA.docs), total_examples=m.corpus_count, epochs=2)
    words = m.train(one_shot(DATA.docs), total_examples=m.corpus_count, epochs=1)[1]  # one epoch: one pass
    assert words == sum(map(len, DATA.docs))


class _OneShot(Iterator):
    """An iterator class with only ``__next__`` of its own (``__iter__``: collections.abc.Iterator's)."""

    def __init__(self, docs):
        self.docs, self.i = docs, 0

    def __next__(self):
        if self.i >= len(self.docs):
            raise StopIteration
        self.i += 1
        return self.docs[self.i - 1]


def test_an_iterator_class_whose_iter_starts_over_is_taken():
    """An object that is its own iterator but whose ``__iter__`` starts over is re-iterable: gensim trains
    on it every epoch, and so does Im2Vec (the one-shot check refused it: ``iter(corpus) is corpus``)."""
    m = Im2Vec(Restarting(DATA.docs), image_features=DATA.features, **KW)
    words = m.train(Restarting(DATA.docs), total_examples=m.corpus_count, epochs=2)[1]
    assert words == 2 * sum(map(len, DATA.docs))
    with pytest.raises(TypeError, match=r"one-shot iterator \(_OneShot: .* it is read 2 times here"):
        m.train(_OneShot(DATA.docs), total_examples=m.corpus_count, epochs=2)


# ----------------------------------------------------------------------------- features

def test_feature_vectors_of_different_lengths_are_named():
    """A ``(keys, list of vectors)`` pair with one shorter vector, or such a list given to ``project``,
    failed in numpy ("setting an array element with a sequence. The requested array has an
    inhomogeneous shape"), naming neither the argument nor the image."""
    keys = list(DATA.features)
    rows = [DATA.features[k] if i != 5 else DATA.features[k][:-1] for i, k in enumerate(keys)]
    with pytest.raises(ValueError, match=r"^image_features: the feature vectors are not all of one length: "
                                         r"'img:0' has 16, 'img:5' has 15\. All images need features of one dim"):
        Im2Vec(DATA.docs, image_features=(keys, rows), **KW)
    # more rows than keys: the rows are told by number (naming the odd row by key was an IndexError)
    with pytest.raises(ValueError, match=r"^image_features: the feature vectors are not all of one length: "
                                         r"row 0 has 16, row 5 has 15\."):
        Im2Vec(DATA.docs, image_features=(keys[:3], rows), **KW)


def test_project_names_vectors_of_different_lengths_and_a_list_of_keys(model):
    new = DATA.test_features
    with pytest.raises(ValueError, match=r"^features: the feature vectors are not all of one length: row 0 has 16, "
                                         r"row 1 has 15"):
        model.project([new[0], new[1][:-1]])
    # a list of keys was "expected numeric feature vectors, got an array of dtype <U5"
    with pytest.raises(TypeError, match=r"expected CNN feature vectors, got 2 str \('img:0', 'img:1'\): keys or paths, "
                                        r"not features\. .* query it by its key, model\.most_similar_words\('img:0'\)"):
        model.similar_by_image(["img:0", "img:1"], topn=1)
    assert model.project([list(new[0]), list(new[1])]).shape == (2, KW["vector_size"])  # lists of numbers: fine


@pytest.mark.parametrize("given, fix", [
    (lambda f: list(f.items()), r"got list of \(key, vector\) pairs; pass dict\(pairs\)"),
    (lambda f: [list(f), np.stack(list(f.values()))], r"got list; a \(keys, array\) pair is a tuple: pass \(keys, array\)"),
    (lambda f: np.stack(list(f.values())), r"got ndarray; an array has no keys: pass \(keys, array\)"),
    # two vectors without keys are not a [keys, array] list: that hint was given to them
    (lambda f: list(f.values())[:2], r"got list; a list of vectors has no keys: pass \(keys, vectors\)"),
    (lambda f: list(f.values()), r"got list; a list of vectors has no keys: pass \(keys, vectors\)"),
], ids=["pairs", "keys-array-list", "bare-array", "two-vectors", "vectors"])
def test_features_in_a_form_one_step_from_a_taken_one_say_that_step(given, fix):
    """gensim users hold (key, vector) pairs, a [keys, array] list or a bare array: each was refused
    with "expected a {key: vector} mapping, a (keys, 2-D array) pair or a feature store ..., got list"
    and no word on how to turn it into one."""
    with pytest.raises(TypeError, match=r"image_features: expected a \{key: vector\} mapping, .*" + fix):
        Im2Vec(DATA.docs, image_features=given(DATA.features), **KW)
    m = Im2Vec(DATA.docs, image_features=dict(list(DATA.features.items())), **KW)  # the pairs' fix
    assert len(m.image_keys) == len(DATA.features)


# ----------------------------------------------------------------------------- options

@pytest.mark.parametrize("size", [0, -1, 8.0, "8", True])
def test_a_vector_size_that_is_not_a_positive_int_is_named(size):
    """gensim takes vector_size=0 (every vector empty: most_similar_words answered [] and project
    gave (0,) vectors, without an error) and fails deep in numpy on the others ("negative dimensions
    are not allowed", "'float' object cannot be interpreted as an integer")."""
    with pytest.raises(ValueError, match=r"^vector_size must be an int >= 1 \(the dim of the space"):
        Im2Vec(DATA.docs, image_features=DATA.features, **{**KW, "vector_size": size})
    assert Im2Vec(DATA.docs, image_features=DATA.features, **{**KW, "vector_size": np.int64(4)}).wv.vector_size == 4


# ----------------------------------------------------------------------------- loading

@pytest.mark.parametrize("mmap", ["w+", "x", "readwrite"])
def test_a_load_with_an_mmap_mode_it_cannot_take_names_it_and_leaves_the_files(model, tmp_path, mmap):
    """``Im2Vec.load(path, mmap="w+")`` (numpy's write mode) emptied the saved model's
    ``.wv.vectors.npy`` and then blamed a damaged companion file ("copy it again with the model"):
    the model was lost. Another mode said the model "is damaged or was saved by an incompatible
    version. Save the model again", of a model that was fine."""
    path = tmp_path / "m.model"
    model.save(str(path), sep_limit=0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=r"^mmap must be None \(load into memory\), 'r' .* got " + re.escape(repr(mmap))):
        Im2Vec.load(str(path), mmap=mmap)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    for ok in (None, "r", "c", "r+", "readonly"):  # ("readonly": numpy's other name of "r")
        np.testing.assert_array_equal(Im2Vec.load(str(path), mmap=ok).W, model.W)
