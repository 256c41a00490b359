"""Zero-shot tags without a vector, and test images the model trained on.

A zero-shot tag never meets an image in training: its vector comes from text lines (documents
without an image) or pretrained word vectors. Documents that are all image lines give it none, and
every method then ties on it: the zero-shot figures were chance, the same in every row, and target 3
said "yes". Now `im2vec split` warns at split time, and `im2vec evaluate` counts the zero-shot tags
that are words of the model, gives no zero-shot figure when none is, and marks target 3 not measured.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec
from gensim_im2vec import evaluate as ev
from gensim_im2vec.cli import main
from gensim_im2vec.split import split_documents
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus

SEED = "zs"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _flat(text: str) -> str:
    return " ".join(text.split())


def _jsonl(path) -> tuple[list[str], list[list[str]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r["key"] for r in rows], [r["tags"] for r in rows]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """docs.txt of image lines only (no text line) and a feature store of its images."""
    d = tmp_path_factory.mktemp("zs")
    data = make_corpus(n_classes=4, n_images=120, n_features=16, distractor_pool=12, seed=5)
    (d / "docs.txt").write_text("".join(" ".join(doc) + "\n" for doc in data.docs), encoding="utf-8")
    FeatureStore.from_arrays(d / "store", list(data.features), np.stack(list(data.features.values())))
    return d


@pytest.fixture(scope="module")
def all_images(photos, tmp_path_factory):
    """split → train → evaluate of the image-only documents, through the command line."""
    d = tmp_path_factory.mktemp("all_images")
    split = _run("split", photos / "docs.txt", "-o", d / "split", "-f", photos / "store", "--test-share", "0.2",
                 "--zero-shot-share", "0.3", "--seed", SEED)
    assert split.exit_code == 0, split.output
    train = _run("train", d / "split" / "train.txt", "-f", photos / "store", "-o", d / "m.model", "--vector-size",
                 "8", "--epochs", "2", "--sg", "--min-count", "1", "--workers", "1", "--seed", "1")
    assert train.exit_code == 0, train.output
    evaluate = _run("evaluate", d / "m.model", "--test", d / "split" / "test.jsonl", "--train",
                    d / "split" / "train.jsonl", "--features", photos / "store", "--zero-shot",
                    d / "split" / "zero_shot.txt", "--baselines", "random,ridge,prior,knn", "--no-word-similarity",
                    "--json", d / "eval.json")
    assert evaluate.exit_code == 0, evaluate.output
    return {"dir": d, "split": split.output, "evaluate": evaluate.output,
            "json": json.loads((d / "eval.json").read_text(encoding="utf-8")),
            "zero": (d / "split" / "zero_shot.txt").read_text(encoding="utf-8").split()}


def test_split_of_documents_without_text_warns_that_zero_shot_tags_get_no_vector(all_images):
    text, zero = _flat(all_images["split"]), all_images["zero"]
    assert zero
    assert "warning:" in text and "has no text lines" in text
    assert f"none of the {len(zero)} zero-shot tags" in text
    assert "--pretrained" in text and "--zero-shot-share" in text  # the fixes, in the command line's terms
    assert f"{len(zero)} zero-shot tags (" in text and "0 in a text line" in text  # the summary counts them
    record = json.loads((all_images["dir"] / "split" / "split.json").read_text(encoding="utf-8"))
    assert record["counts"]["text_lines"] == 0 and record["counts"]["zero_shot_tags_in_text"] == 0


def test_evaluate_says_no_zero_shot_tag_is_a_word_and_gives_no_zero_shot_figure(all_images):
    out, zero = all_images["evaluate"], all_images["zero"]
    flat = _flat(out)
    assert f"warning: 0 of the {len(zero)} zero-shot tags are words of the model" in flat
    assert "text lines" in flat and "--pretrained" in flat and "--zero-shot" in flat
    lines = out.splitlines()
    head = next(line for line in lines if line.startswith("Image → tag on"))
    assert "none of them is a word of the model" in head and "no ZS columns" in head
    header = next(line for line in lines if line.startswith("method"))
    assert "ZS" not in header and "seen mAP" in header  # no zero-shot figure, in any row
    target3 = next(line for line in lines if line.startswith("3. zero-shot"))
    assert target3.rstrip().endswith("not measured") and "yes" not in target3


def test_evaluate_json_marks_target_3_not_measured(all_images):
    report, zero = all_images["json"], all_images["zero"]
    info = report["info"]
    assert info["n_zero_shot_tags"] == len(zero) and info["n_zero_shot_words"] == 0
    assert info["n_zero_shot_word_space"] == 0 and info["zero_shot_without_vector"] == sorted(zero)
    assert all("zero_shot" not in row["metrics"] for row in report["image_tagging"])
    (t3,) = [t for t in report["targets"] if t["target"].startswith("3.")]
    assert t3["ok"] is None and t3["value"] is None
    assert t3["not_measured"] == f"0 of {len(zero)} zero-shot tags are words of the model"
    # read back, the table says the same
    table = ev.EvaluationReport.from_dict(report).format_table()
    assert "not measured" in next(line for line in table.splitlines() if line.startswith("3."))


def test_evaluate_of_training_images_does_not_call_them_held_out(all_images, photos):
    d = all_images["dir"]
    res = _run("evaluate", d / "m.model", "--test", d / "split" / "train.jsonl", "--features", photos / "store",
               "--baselines", "none", "--no-word-similarity")
    assert res.exit_code == 0, res.output
    n = len(_jsonl(d / "split" / "train.jsonl")[0])
    head = next(line for line in res.output.splitlines() if line.startswith("Image → tag on"))
    assert head.startswith(f"Image → tag on {n} test images ({n} of them trained on") and "held-out" not in head
    assert f"warning: {n} of the {n} --test images are images MODEL trained on" in _flat(res.output)


@pytest.fixture(scope="module")
def partial(photos, all_images, tmp_path_factory):
    """The same documents plus text lines that use some of the zero-shot tags: a model whose words
    are some of them (the split draws the same tags: text lines do not change the images' tags)."""
    d = tmp_path_factory.mktemp("partial")
    zero = all_images["zero"]
    given = zero[: max(1, len(zero) // 2)]
    docs = (photos / "docs.txt").read_text(encoding="utf-8")
    docs += "".join(f"{t} and more words {t}\n" for t in given)
    (d / "docs.txt").write_text(docs, encoding="utf-8")
    split = split_documents(d / "docs.txt", d / "split", test_share=0.2, zero_shot_share=0.3, seed=SEED,
                            features=photos / "store")
    assert split.zero_shot_tags == zero
    store = FeatureStore.open(photos / "store")
    train_docs = [line.split() for line in (d / "split" / "train.txt").read_text(encoding="utf-8").splitlines()]
    model = Im2Vec(train_docs, image_features=store, vector_size=8, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    test_keys, test_tags = _jsonl(d / "split" / "test.jsonl")
    train_keys, train_tags = _jsonl(d / "split" / "train.jsonl")
    X = lambda keys: np.stack([store[k] for k in keys])  # noqa: E731
    return {"split": split, "given": given, "zero": zero, "model": model, "X_test": X(test_keys),
            "test_tags": test_tags, "test_keys": test_keys, "X_train": X(train_keys), "train_tags": train_tags}


def test_split_warns_about_the_zero_shot_tags_no_text_line_carries(partial):
    split, zero, given = partial["split"], partial["zero"], partial["given"]
    assert split.counts["zero_shot_tags_in_text"] == len(given)
    assert 0 < len(given) < len(zero)
    (warning,) = split.warnings
    assert f"{len(zero) - len(given)} of the {len(zero)} zero-shot tags" in warning
    assert all(t in warning for t in zero if t not in given)
    assert f"{len(given)} in a text line" in split.summary()


def test_a_split_whose_text_lines_carry_every_zero_shot_tag_does_not_warn(photos, all_images, tmp_path, caplog):
    docs = (photos / "docs.txt").read_text(encoding="utf-8") + " ".join(all_images["zero"]) + "\n"
    (tmp_path / "docs.txt").write_text(docs, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.split"):
        split = split_documents(tmp_path / "docs.txt", tmp_path / "split", test_share=0.2, zero_shot_share=0.3,
                                seed=SEED)
    assert split.warnings == [] and not caplog.records
    assert split.counts["zero_shot_tags_in_text"] == len(split.zero_shot_tags)


def test_some_zero_shot_tags_are_words_the_count_is_shown_and_the_scoring_is_as_before(partial):
    p = partial
    model, zero = p["model"], p["zero"]
    words = [t for t in zero if t not in model.unknown_words(zero)]
    assert 0 < len(words) < len(zero), "the test needs a partial case"
    report = ev.run_evaluation(model, p["X_test"], p["test_tags"], model.word_keys, zero_shot=zero,
                               train_features=p["X_train"], train_tags=p["train_tags"],
                               baselines=("random", "ridge", "prior"), word_similarity=False, n_in_sample=0,
                               test_keys=p["test_keys"])
    assert report.info["n_zero_shot_words"] == report.info["n_zero_shot_word_space"] == len(words)
    assert report.info["zero_shot_without_vector"] == sorted(set(zero) - set(words))
    head = report.format_table().splitlines()[0]
    are = "is a word" if len(words) == 1 else "are words"
    assert (f"({len(zero)} zero-shot: never seen with a training image; {len(words)} of them {are} of the model, "
            f"the other {len(zero) - len(words)} rank last in every row") in head
    assert "held-out images" in head and "trained on" not in head
    # every row is scored over all the zero-shot tags, as before (the others tie at the bottom of each)
    old = ev.evaluate_image_tagging(ev.Im2VecScorer(model), p["X_test"], p["test_tags"], model.word_keys,
                                    zero_shot=zero)
    assert report.row("Im2Vec (cosine in model.wv)").metrics["zero_shot"] == old["zero_shot"]
    (t3,) = [t for t in report.targets() if t["target"].startswith("3.")]
    assert t3["ok"] is not None and "not_measured" not in t3


def test_run_evaluation_without_zero_shot_words_warns_and_leaves_zero_shot_out(partial, caplog):
    p = partial
    absent = ["nowhere1", "nowhere2"]
    tags = [[*t, absent[i % 2]] for i, t in enumerate(p["test_tags"])]
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.evaluate"):
        report = ev.run_evaluation(p["model"], p["X_test"], tags, p["model"].word_keys, zero_shot=absent,
                                   train_features=p["X_train"], train_tags=p["train_tags"],
                                   baselines=("random", "ridge"), word_similarity=False, n_in_sample=0)
    assert any("0 of the 2 zero-shot tags are words of the model" in r.getMessage() for r in caplog.records)
    assert all("zero_shot" not in r.metrics and "seen" in r.metrics for r in report.rows)
    (t3,) = [t for t in report.targets() if t["target"].startswith("3.")]
    assert t3["ok"] is None and t3["not_measured"] == "0 of 2 zero-shot tags are words of the model"
    assert report.to_dict()["targets"][[t["target"][0] for t in report.targets()].index("3")]["value"] is None


def test_every_zero_shot_tag_a_word_keeps_the_header_and_figures(partial):
    p = partial
    model = p["model"]
    zero = [t for t in p["zero"] if t not in model.unknown_words(p["zero"])]
    report = ev.run_evaluation(model, p["X_test"], p["test_tags"], model.word_keys, zero_shot=zero,
                               train_features=p["X_train"], train_tags=p["train_tags"], baselines=("ridge",),
                               word_similarity=False, n_in_sample=0)
    head = report.format_table().splitlines()[0]
    assert "words of the model" not in head and f"({len(zero)} zero-shot: never seen with a training image" in head
    old = ev.evaluate_image_tagging(ev.Im2VecScorer(model), p["X_test"], p["test_tags"], model.word_keys,
                                    zero_shot=zero)
    assert report.rows[0].metrics == old
