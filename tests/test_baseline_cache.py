"""The model-free baselines' cache (``run_evaluation(baseline_cache=...)``) given a damaged file.

Reuse, recomputation on changed inputs and an unparsable file are covered in test_evaluate.py;
here: a file that parses as JSON but is not a cache, or holds a damaged row under a valid key, is
ignored with a warning and replaced, and the table is the one computed without a cache.
"""

import json
import logging

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec import evaluate as ev
from gensim_im2vec.synthetic import make_corpus


@pytest.fixture(scope="module")
def tiny():
    data = make_corpus(n_classes=4, n_images=120, n_features=8, n_test=30, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=8, sg=1, min_count=1,
                   epochs=3, sample=0, workers=1, seed=1)
    img = [d for d in data.docs if d[0].startswith("img:")]
    return dict(model=model, X=data.test_features, tags=[[data.class_words[c]] for c in data.test_labels],
                cands=model.word_keys, train_X=np.stack([data.features[d[0]] for d in img]),
                train_tags=[d[1:] for d in img])


def _evaluate(s, cache=None):
    return ev.run_evaluation(s["model"], s["X"], s["tags"], s["cands"], train_features=s["train_X"],
                             train_tags=s["train_tags"], baselines=("prior", "logistic"),
                             word_similarity=False, n_in_sample=0, baseline_cache=cache)


def _untimed(rows: dict) -> str:
    """The rows as JSON text without their timing (NaN compares equal as text)."""
    return json.dumps({k: {f: v for f, v in r.items() if f != "seconds"} for k, r in rows.items()}, sort_keys=True)


def _damage(row: dict, how: str) -> dict:
    row = dict(row)
    if how == "metrics":
        row["metrics"] = "damaged"
    elif how == "scope":
        row["metrics"] = {**row["metrics"], "all": 3}
    elif how == "number":
        row["metrics"] = {**row["metrics"], "all": {**row["metrics"]["all"], "map": "0.5"}}
    else:  # a field lost
        del row["note"]
    return row


@pytest.mark.parametrize("how", ["metrics", "scope", "number", "field"])
def test_a_damaged_row_is_computed_again_with_a_warning(tiny, tmp_path, caplog, how):
    cache = tmp_path / "baselines.json"
    plain = _evaluate(tiny)
    _evaluate(tiny, cache)
    saved = json.loads(cache.read_text())
    cache.write_text(json.dumps({**saved, "rows": {k: _damage(r, how) for k, r in saved["rows"].items()}}))
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.evaluate"):
        again = _evaluate(tiny, cache)  # used to fail formatting the table (AttributeError)
    assert again.info["cached_baselines"] == []
    assert again.format_table() == plain.format_table()
    assert any("damaged" in r.getMessage() and str(cache) in r.getMessage() for r in caplog.records)
    assert _untimed(json.loads(cache.read_text())["rows"]) == _untimed(saved["rows"])  # replaced by the computed rows
    assert _evaluate(tiny, cache).info["cached_baselines"] == ["tag prior", "logistic (one-vs-rest)"]


@pytest.mark.parametrize("content", ["[]", '{"version": 1, "rows": []}', '{"version": 99, "rows": {}}', "null"])
def test_a_file_that_is_not_a_cache_is_ignored_with_a_warning(tiny, tmp_path, caplog, content):
    cache = tmp_path / "baselines.json"
    cache.write_text(content)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.evaluate"):
        report = _evaluate(tiny, cache)  # used to be ignored without a word
    assert report.info["cached_baselines"] == []
    assert any("not a baseline cache" in r.getMessage() and str(cache) in r.getMessage() for r in caplog.records)
    assert json.loads(cache.read_text())["version"] == 1
