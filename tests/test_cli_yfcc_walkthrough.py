"""What a walkthrough on a YFCC100M-like slice found: one feature store for every image, split by
documents; hash-named files keyed by ``extract --keys stem``; a tiny text model in word2vec's
format. Each test fails on the code before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import KeyedVectors
from gensim.test.utils import datapath
from PIL import Image

from gensim_im2vec import Im2Vec
from gensim_im2vec import evaluate as ev
from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore

HASHES = [f"{i:02x}" + "d29e7c5b0a41f3869e2c7d15ab4f60" for i in range(12)]  # YFCC-like 32-hex names
TAGS = (["beach", "sea", "sand"], ["forest", "tree", "green"], ["car", "road", "city"])


@pytest.fixture(scope="module")
def slice_(tmp_path_factory):
    """Twelve hash-named photos in d29/e7c/ folders, one store of all twelve (keyed by stem), a
    model trained on the documents of eight, the other four held out, and a tiny text model."""
    d = tmp_path_factory.mktemp("yfcc")
    rng = np.random.default_rng(0)
    keys = [f"img:{h}" for h in HASHES]
    for h in HASHES:
        folder = d / "images" / h[:3] / h[3:6]
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), tuple(int(v) for v in rng.integers(0, 255, 3))).save(folder / f"{h}.jpg")
    store = FeatureStore.from_arrays(d / "store", keys, rng.random((12, 8), np.float32) + 0.1)
    tags = {k: TAGS[i % 3] for i, k in enumerate(keys)}
    train, test = keys[:8], keys[8:]
    docs = [[k, *tags[k]] for k in train] * 3
    Im2Vec(docs, image_features=store, vector_size=8, min_count=1, epochs=1, workers=1,
           seed=1).save(str(d / "m.model"))
    for name, part in (("train.jsonl", train), ("test.jsonl", test)):
        (d / name).write_text("".join(json.dumps({"key": k, "tags": tags[k]}) + "\n" for k in part))
    words = sorted({t for ts in TAGS for t in ts})
    kv = KeyedVectors(8)
    kv.add_vectors(words, rng.normal(size=(len(words), 8)).astype(np.float32))
    kv.save_word2vec_format(str(d / "tiny.txt"), binary=False)
    kv.save_word2vec_format(str(d / "tiny.w2vtxt"), binary=False)  # the same, under a suffix word2vec never used
    kv.save_word2vec_format(str(d / "tiny.w2vbin"), binary=True)
    return d


def _run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result, " ".join(result.output.split())


# ---------------------------------------------------------------------------- 1. in-sample warning
def test_held_out_images_of_the_shared_store_are_not_called_in_sample(slice_):
    d = slice_
    args = ["evaluate", d / "m.model", "--features", d / "store", "--train", d / "train.jsonl",
            "--baselines", "none", "--no-word-similarity"]
    result, said = _run([*args, "--test", d / "test.jsonl"])
    assert result.exit_code == 0, said
    assert "in-sample, not held-out" not in said  # they have features, but the model never trained on them
    # an image the model did train on is still named
    mixed = d / "mixed.jsonl"
    mixed.write_text((d / "test.jsonl").read_text() + (d / "train.jsonl").read_text().splitlines()[0] + "\n")
    result, said = _run([*args, "--test", mixed])
    assert result.exit_code == 0, said
    assert f"1 of the 5 --test images are images MODEL trained on (e.g. ['img:{HASHES[0]}'])" in said


# ---------------------------------------------------------------------------- 2. --text-model files
def test_text_model_takes_what_train_pretrained_takes(slice_):
    d = slice_
    result, said = _run(["evaluate", d / "m.model", "--test", d / "test.jsonl", "--features", d / "store",
                         "--baselines", "none", "--text-model", d / "tiny.txt"])
    assert result.exit_code == 0, said
    assert "text-only Word2Vec" in said and "Im2Vec words" in said


@pytest.mark.parametrize("name,rename", [("tiny.w2vtxt", "tiny.txt"), ("tiny.w2vbin", "tiny.bin")])
@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_a_word2vec_file_under_another_suffix_is_told_to_rename(slice_, name, rename, command):
    d = slice_
    if command == "evaluate":
        args = ["evaluate", d / "m.model", "--test", d / "test.jsonl", "--features", d / "store",
                "--text-model", d / name]
    else:
        rows = [json.loads(line) for line in (d / "train.jsonl").read_text().splitlines()]
        (d / "docs.txt").write_text("".join(" ".join([r["key"], *r["tags"]]) + "\n" for r in rows))
        args = ["train", d / "docs.txt", "-f", d / "store", "-o", d / "never.model", "--pretrained", d / name]
    result, said = _run(args)
    option = "--text-model" if command == "evaluate" else "--pretrained"
    assert result.exit_code == 2, said
    assert f"Invalid value for '{option}'" in said and "starts like word vectors in word2vec's format" in said
    assert f"Rename it to '{d / rename}'" in said and "is not a saved model" not in said
    assert not (d / "never.model").exists()


# ---------------------------------------------------------------------------- 3. word similarity pairs
def _simlex(n):
    """The first `n` SimLex-999 pairs of distinct words (as gensim reads them)."""
    pairs, seen = [], set()
    for line in open(datapath("simlex999.txt"), encoding="utf-8"):
        fields = line.split("\t")
        if line.startswith("#") or len(fields) != 3 or {fields[0], fields[1]} & seen:
            continue
        try:
            float(fields[2])
        except ValueError:
            continue
        pairs.append((fields[0], fields[1]))
        seen |= {fields[0], fields[1]}
        if len(pairs) == n:
            return pairs
    raise AssertionError(n)


def _kv(words, seed):
    kv = KeyedVectors(8)
    kv.add_vectors(words, np.random.default_rng(seed).normal(size=(len(words), 8)).astype(np.float32))
    return kv


def test_both_models_are_scored_on_the_pairs_both_have_and_few_pairs_decide_nothing():
    pairs = _simlex(7)
    words = [w for p in pairs for w in p]
    text = _kv(words[:10], 0)  # 5 pairs
    model = _kv(words, 1)  # 7 pairs
    a, b, delta = ev.compare_word_similarity(model, text, analogies=False)
    assert a["simlex999_pairs"] == b["simlex999_pairs"] == 5  # the same 5, not 5 against 7
    same = _kv(words[:10], 1)  # the model's vectors of those 5 pairs alone: the same figure
    assert b["simlex999"] == pytest.approx(ev.word_similarity(same, analogies=False)["simlex999"])
    assert a["simlex999_oov"] == pytest.approx(100 * (999 - 5) / 999)
    assert ev.word_similarity(model, analogies=False)["simlex999_pairs"] > 5  # alone: all of its own
    report = ev.EvaluationReport(word_similarity=[a, b, delta])
    (target,) = report.targets()
    assert target["ok"] is None and target["pairs"] == 5
    printed = report.format_table()
    assert printed.splitlines()[-1].endswith("n/a (only 5 pairs)") and " NO" not in printed
    assert "pairs WS / SL (missing)" in printed and "0 / 5 (100.0% / 99.5%)" in printed
    # the analogies do not depend on the pairs: a fall of more than 2 points still says NO
    fell = dict(delta, analogies=-0.05)
    assert ev.EvaluationReport(word_similarity=[a, b, fell]).targets()[0]["ok"] is False
    from gensim_im2vec.report import _html_table  # the HTML report: n/a is neither green nor red
    assert 'class="met na"' in _html_table(["target", "met"], [["7.", "n/a (only 5 pairs)"]], "t")


def test_plenty_of_pairs_still_decide_target_7():
    words = [w for p in _simlex(40) for w in p]
    text, model = _kv(words, 0), _kv(words, 0)  # frozen words: the same vectors
    rows = ev.compare_word_similarity(model, text, analogies=False)
    assert rows[0]["simlex999_pairs"] == rows[1]["simlex999_pairs"] >= 40
    (target,) = ev.EvaluationReport(word_similarity=rows).targets()
    assert target["ok"] is True and target["value"] == 0.0
    # a report without pair counts (an older JSON) is judged as before
    old = [{k: v for k, v in r.items() if not k.endswith("_pairs")} for r in rows]
    report = ev.EvaluationReport(word_similarity=old)
    assert report.targets()[0]["ok"] is True and "pairs WS" not in report.format_table()


# ---------------------------------------------------------------------------- 4. export --keys
def test_export_finds_the_thumbnails_of_a_store_keyed_by_stem(slice_, tmp_path):
    d = slice_
    result, said = _run(["export", d / "m.model", "-o", tmp_path / "by-path", "--images", d / "images"])
    assert result.exit_code == 0 and "(8 images without a file)" in said, said  # keyed by path: none found
    result, said = _run(["export", d / "m.model", "-o", tmp_path / "by-stem", "--images", d / "images",
                         "--keys", "stem"])
    assert result.exit_code == 0, said
    assert "(0 images without a file)" in said and (tmp_path / "by-stem" / "sprite.png").is_file()
    result, said = _run(["export", d / "m.model", "-o", tmp_path / "ids", "--images", d / "images",
                         "--keys", "flickr-id"])
    assert result.exit_code == 2 and "is not named as Flickr names photos" in said, said


def test_an_unreadable_text_model_is_an_error_line_not_a_traceback(slice_):
    """(a review: moving --text-model's load before the evaluation let load_saved's ValueError out)"""
    d = slice_
    (d / "plain").write_text("just some text, not vectors\n")
    result, said = _run(["evaluate", d / "m.model", "--test", d / "test.jsonl", "--features", d / "store",
                         "--baselines", "none", "--text-model", d / "plain"])
    assert result.exit_code == 1 and said.startswith("Error: ") and "is not a saved model" in said, said
    assert not isinstance(result.exception, ValueError)
