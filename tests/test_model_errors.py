"""Im2Vec's boundary: what a wrong file, a contradicting argument or a bad token says (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors, Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.model import load_saved

DOCS = [["img:a", "cat", "dog"], ["img:b", "dog", "fish"], ["cat", "fish", "bird"]] * 4
FEATS = {"img:a": np.arange(1, 5, dtype=np.float32), "img:b": np.arange(4, 0, -1).astype(np.float32)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("model_files")
    model = Im2Vec(DOCS, image_features=FEATS, vector_size=8, min_count=1, epochs=1, workers=1, seed=1)
    model.save(str(d / "m.model"))
    w2v = Word2Vec([doc for doc in DOCS if not doc[0].startswith("img:")], vector_size=12, min_count=1, workers=1)
    w2v.save(str(d / "w2v.model"))
    (d / "notes.txt").write_text("not a model\n")
    (d / "empty.model").write_bytes(b"")
    data = (d / "m.model").read_bytes()
    (d / "cut.model").write_bytes(data[: len(data) // 2])
    return d, model, w2v


def test_a_file_that_is_not_a_model_says_so(saved):
    d, _, _ = saved
    with pytest.raises(ValueError, match=r"notes.txt' is not a saved model \(it starts with b'not a model"):
        Im2Vec.load(str(d / "notes.txt"))
    with pytest.raises(ValueError, match=r"empty.model' is not a saved model"):
        Im2Vec.load(str(d / "empty.model"))
    with pytest.raises(ValueError, match=r"cut.model' could not be loaded as a model.*damaged"):
        Im2Vec.load(str(d / "cut.model"))


def test_a_plain_word2vec_is_named_with_the_way_to_add_images(saved):
    d, _, _ = saved
    with pytest.raises(TypeError, match=r"w2v.model' holds a gensim.models.word2vec.Word2Vec where an Im2Vec was "
                                        r"expected; to add images to it, use Im2Vec.from_word2vec"):
        Im2Vec.load(str(d / "w2v.model"), mmap="r")
    assert isinstance(load_saved(d / "w2v.model", (Word2Vec, KeyedVectors)), Word2Vec)
    assert isinstance(load_saved(d / "m.model"), Im2Vec)  # an Im2Vec is a Word2Vec


@pytest.mark.parametrize("mmap", ["r", None])
@pytest.mark.parametrize("companion", ["W", "image_vectors"])
def test_a_truncated_companion_file_is_named(saved, tmp_path, mmap, companion):
    d, _, _ = saved
    for f in d.glob("m.model*"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    part = tmp_path / f"m.model.{companion}.npy"
    part.write_bytes(part.read_bytes()[:-12])
    with pytest.raises(ValueError, match=rf"a companion file of the model .*m.model' is damaged: .*"
                                         rf"m.model.{companion}.npy' has \d+ bytes, its .* array needs \d+"):
        Im2Vec.load(str(tmp_path / "m.model"), mmap=mmap)
    part.unlink()
    with pytest.raises(FileNotFoundError, match=rf"m.model.{companion}.npy' is missing: the model"):
        Im2Vec.load(str(tmp_path / "m.model"), mmap=mmap)


def test_from_word2vec_refuses_a_contradicting_vector_size(saved):
    _, _, w2v = saved
    with pytest.raises(ValueError, match=r"vector_size=8 contradicts the Word2Vec's vector_size=12.*Leave "
                                         r"vector_size out"):
        Im2Vec.from_word2vec(w2v, image_features=FEATS, vector_size=8)
    model = Im2Vec.from_word2vec(w2v, image_features=FEATS, vector_size=12)  # agreeing is fine
    assert model.wv.vector_size == 12


def test_a_token_that_is_not_a_str_is_named():
    docs = [["img:a", "cat", 5], ["img:b", "dog", 7.5]] * 3
    with pytest.raises(TypeError, match=r"lists of str tokens; 2 token\(s\) are not: 5 \(int\), 7.5 \(float\)"):
        Im2Vec(docs, image_features=FEATS, vector_size=8, min_count=1, epochs=1, workers=1)


@pytest.mark.parametrize("kwargs,message", [
    ({"alpha": -1.0}, "alpha must be a finite number > 0"),
    ({"alpha": float("nan")}, "alpha must be a finite number > 0"),
    ({"sample": -5.0}, "sample must be a finite number >= 0"),
    ({"min_alpha": -0.1}, "min_alpha must be a finite number >= 0"),
])
def test_negative_rates_are_refused_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Im2Vec(DOCS, image_features=FEATS, vector_size=8, min_count=1, epochs=1, workers=1, **kwargs)
