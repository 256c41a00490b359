"""Session 43's walk through README's "Your own images" and "Evaluate on your own data" on a small
folder of clip art: the slips a newcomer made and what each now answers. Synthetic data only."""

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec.query import QuerySession

OPTS = dict(vector_size=16, sg=1, min_count=1, sample=0, epochs=2, workers=1, seed=1)


@pytest.fixture(scope="module")
def folder_model():
    """A model whose image keys are paths under an image folder, as `im2vec extract` keys them."""
    rng = np.random.default_rng(0)
    docs, feats = [], {}
    for kind in ("dogs", "cats"):
        for i in range(20):
            key = f"img:animals/{kind}_black_lab_{i:02d}"
            docs.append([key, kind, "animals", "black"])
            feats[key] = rng.standard_normal(8).astype(np.float32)
    return Im2Vec(docs, image_features=feats, **OPTS)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_query_sum_with_an_image_key_names_the_unknown_word(folder_model):
    # README's `img:cats/1 -cat dog` with a word the model lacks: before, the whole line was
    # "Not in the vocabulary and no such image file" (the key's "/" made it look like a path)
    session = QuerySession(folder_model)
    answer, ok = session.answer_ok("img:animals/dogs_black_lab_01 -dogs horses")
    assert not ok and answer == "Out of dictionary word: horses"
    # the sum itself answers
    answer, ok = session.answer_ok("img:animals/dogs_black_lab_01 -dogs cats")
    assert ok and answer.startswith("Sum: img:animals/dogs_black_lab_01 + cats - dogs")
    # a path with a space that names no file is still answered as a path
    answer, ok = session.answer_ok("photos/animals/my dog.png")
    assert not ok and answer == "Not in the vocabulary and no such image file: photos/animals/my dog.png"


def test_query_suggests_the_image_key_a_typo_meant(folder_model):
    session = QuerySession(folder_model)
    answer, ok = session.answer_ok("img:animals/dogs_blak_lab_01")
    assert not ok
    assert "Not an image key of the model: img:animals/dogs_blak_lab_01. Did you mean img:animals/dogs_black_lab_01?" \
        in _one_line(answer)
    # in a sum too
    answer, ok = session.answer_ok("img:animals/dogs_blak_lab_01 -dogs cats")
    assert not ok and answer.startswith("Out of dictionary word: img:animals/dogs_blak_lab_01\n")
    assert "Did you mean img:animals/dogs_black_lab_01?" in answer
    # nothing close: no suggestion
    answer, _ = session.answer_ok("img:zzzz")
    assert "Did you mean" not in answer
