"""What a new user's walkthrough of the command line ran into: tag cells split by another separator
than ',', index options that the chosen backend ignores, ``-v`` after a command's name and
``--version``, outputs written over unrelated files, a report without its held-out images,
unhelpful answers at the query prompt, and a recall line that overstated its queries."""

from __future__ import annotations

import importlib.metadata
import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.index import _installed
from gensim_im2vec.store import FeatureStore

KEYS = ["img:red/circle_00", "img:red/circle_01", "img:blue/square_00", "img:blue/square_01", "img:my%20cat"]


def _run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A few images' features, their documents and a model trained on them (9 words)."""
    d = tmp_path_factory.mktemp("walkthrough")
    rng = np.random.default_rng(0)
    store = FeatureStore.from_arrays(d / "store", KEYS, rng.random((len(KEYS), 8), np.float32) + 0.1)
    words = {"red": ["red", "circle", "warm"], "blue": ["blue", "square", "cold"], "my": ["cat", "pet", "fur"]}
    docs = [[k, *words[k[4:].split("/")[0].split("%")[0]]] for k in KEYS] * 4
    (d / "docs.txt").write_text("".join(" ".join(doc) + "\n" for doc in docs))
    Im2Vec(docs, image_features=store, vector_size=8, sg=1, min_count=1, epochs=5, sample=0, workers=1,
           seed=1).save(str(d / "m.model"))
    (d / "test.jsonl").write_text("".join(json.dumps({"key": k, "tags": words[k[4:].split("/")[0].split("%")[0]]})
                                          + "\n" for k in KEYS))
    (d / "t.csv").write_text("path,tags\nred/circle_00.png,red;circle\nred/circle_01.png,red;circle;warm\n"
                             "blue/square_00.png,blue;square\n")
    return d


def _victim(path) -> bytes:
    """A JPEG of the user's at `path`: what an output must never replace."""
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path, format="JPEG")
    return path.read_bytes()


# --- 1. normalize --tag-sep ---


def test_normalize_splits_tag_cells_at_tag_sep(files, tmp_path):
    out = tmp_path / "docs.txt"
    res = _run("normalize", files / "t.csv", "-o", out, "--image-column", "path", "--tag-column", "tags",
               "--tag-sep", ";")
    assert res.exit_code == 0, res.output
    assert out.read_text().splitlines()[0].split() == ["img:red/circle_00", "red", "circle"]
    helped = _flat(_run("normalize", "--help").output)
    assert "--tag-sep" in helped and "separated by --tag-sep" in helped


def test_normalize_warns_when_tag_cells_look_separated_by_another_separator(files, tmp_path, caplog):
    out = tmp_path / "docs.txt"
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        res = _run("normalize", files / "t.csv", "-o", out, "--image-column", "path", "--tag-column", "tags")
    assert res.exit_code == 0, res.output
    assert "red_circle" in out.read_text().split()  # the default ',' kept: one tag, but said
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "3 of the 3 cells of tag column 'tags' hold ';'" in said and "--tag-sep ';'" in said


def test_normalize_refuses_an_empty_tag_sep_and_one_without_tag_columns(files, tmp_path):
    base = ["normalize", files / "t.csv", "-o", tmp_path / "d.txt", "--image-column", "path"]
    empty = _run(*base, "--tag-column", "tags", "--tag-sep", "")
    assert empty.exit_code == 2 and "'--tag-sep'" in empty.output
    alone = _run(*base, "--text-column", "tags", "--tag-sep", ";")
    assert alone.exit_code == 2 and "give --tag-column too" in alone.output
    assert not (tmp_path / "d.txt").exists()


# --- 2. index options of another backend ---


@pytest.mark.skipif(not _installed("annoy"), reason="needs annoy")
@pytest.mark.parametrize("args, message", [
    (["--kind", "ivfpq"], "--kind applies to the faiss backend, and this index is built with --backend annoy"),
    (["--m", "8"], "--m applies to the faiss backend"),
    (["--ef-search", "64"], "--ef-search applies to the faiss backend"),
    (["--kind", "hnsw"], "--kind applies to the faiss backend"),  # given, even if it is the default
])
def test_index_refuses_faiss_options_with_annoy(files, tmp_path, args, message):
    res = _run("index", files / "m.model", "-o", tmp_path / "x.ann", "--backend", "annoy", *args)
    assert res.exit_code == 2 and message in _flat(res.output), res.output
    assert not (tmp_path / "x.ann").exists()


@pytest.mark.skipif(not _installed("faiss"), reason="needs faiss-cpu")
@pytest.mark.parametrize("args, message", [
    (["--num-trees", "5"], "--num-trees applies to the annoy backend, and this index is built with --backend faiss"),
    (["--search-k", "50"], "--search-k applies to the annoy backend"),
    (["--nprobe", "4"], "--nprobe applies to faiss --kind ivf or ivfpq, and this index is built as --kind hnsw"),
    (["--kind", "ivf", "--ef-search", "64"], "--ef-search applies to faiss --kind hnsw"),
])
def test_index_refuses_annoy_options_with_faiss(files, tmp_path, args, message):
    res = _run("index", files / "m.model", "-o", tmp_path / "x.ann", "--backend", "faiss", *args)
    assert res.exit_code == 2 and message in _flat(res.output), res.output
    assert not (tmp_path / "x.ann").exists()


# --- 3. -v after the command, --version ---


def test_verbose_is_taken_after_the_command_too():
    root = logging.getLogger()
    level = root.level
    try:
        res = _run("datasets", "list", "-v")
        assert res.exit_code == 0, res.output
        assert root.level == logging.INFO
        assert "-v, --verbose" in _run("train", "--help").output
    finally:
        root.setLevel(level)


def test_version():
    res = _run("--version")
    assert res.exit_code == 0 and res.output.strip() == f"im2vec, version {importlib.metadata.version('gensim-im2vec')}"


# --- 4. outputs never replace a file of another kind ---


def test_train_refuses_to_write_over_a_photo_and_replaces_its_own_model(files, tmp_path):
    victim = tmp_path / "victim.jpg"
    photo = _victim(victim)
    base = ["train", files / "docs.txt", "-f", files / "store", "--min-count", "1", "--epochs", "1", "--workers", "1"]
    res = _run(*base, "-o", victim)
    assert res.exit_code == 2 and "victim.jpg' exists and is not a saved model" in _flat(res.output), res.output
    assert "Choose another path, or delete that file" in _flat(res.output)
    assert victim.read_bytes() == photo
    for _ in range(2):  # a run again onto its own output
        again = _run(*base, "-o", tmp_path / "m.model")
        assert again.exit_code == 0, again.output


def test_normalize_refuses_to_write_over_a_photo_and_replaces_its_own_documents(files, tmp_path):
    victim = tmp_path / "victim.jpg"
    photo = _victim(victim)
    base = ["normalize", files / "t.csv", "--image-column", "path", "--tag-column", "tags"]
    res = _run(*base, "-o", victim)
    assert res.exit_code == 2 and "victim.jpg' exists and is not a documents file" in _flat(res.output), res.output
    assert victim.read_bytes() == photo
    report = _run(*base, "-o", tmp_path / "d.txt", "--report", victim)
    assert report.exit_code == 2 and "'--report'" in report.output and victim.read_bytes() == photo
    for _ in range(2):
        again = _run(*base, "-o", tmp_path / "d.txt", "--report", tmp_path / "stats.json")
        assert again.exit_code == 0, again.output


def test_evaluate_refuses_to_write_json_over_a_photo_and_replaces_its_own(files, tmp_path):
    victim = tmp_path / "victim.jpg"
    photo = _victim(victim)
    base = ["evaluate", files / "m.model", "--test", files / "test.jsonl", "--features", files / "store",
            "--baselines", "none", "--no-word-similarity"]
    res = _run(*base, "--json", victim)
    assert res.exit_code == 2 and "victim.jpg' exists and is not an evaluation" in _flat(res.output), res.output
    assert victim.read_bytes() == photo
    for _ in range(2):
        again = _run(*base, "--json", tmp_path / "eval.json")
        assert again.exit_code == 0, again.output
    assert "image_tagging" in json.loads((tmp_path / "eval.json").read_text())


# --- 5. report without the test images' features ---


def test_report_without_features_of_any_test_image_is_an_error(tmp_path):
    from gensim_im2vec.datasets import Split

    ds = tmp_path / "ds"
    (ds / "shapes").mkdir(parents=True)
    rng = np.random.default_rng(0)
    train, test = [f"shapes/{i}" for i in range(6)], [f"shapes/{i}" for i in range(6, 8)]
    for key in train + test:
        Image.new("RGB", (16, 16), (200, 30, 30)).save(ds / f"{key}.png")
        (ds / f"{key}.json").write_text(json.dumps({"title": "a red thing", "tags": ["red", "thing"]}))
    Split(train=train, test=test, zero_shot_tags=[], groups={k: k for k in train + test}).save(ds / "split.json")
    keys = ["img:" + k for k in train]
    store = FeatureStore.from_arrays(tmp_path / "store", keys, rng.random((6, 8), np.float32) + 0.1)
    Im2Vec([[k, "red", "thing"] for k in keys] * 3, image_features=store, vector_size=4, min_count=1, epochs=1,
           workers=1).save(str(tmp_path / "m.model"))
    res = _run("report", tmp_path / "m.model", "-o", tmp_path / "out", "--dataset", ds, "--map-method", "pca")
    assert res.exit_code == 1, res.output
    said = _flat(res.output)
    assert "none of the 2 test images" in said and "Pass --features STORE" in said and "was not written" in said
    assert not (tmp_path / "out").exists()


def test_report_takes_the_models_image_prefix(tmp_path):
    """A model whose image keys carry another prefix ("photo:") reports its dataset's test images
    without --prefix (the default was FolderCorpus's "img:": no test image found, then the error
    above told to pass --features)."""
    from gensim_im2vec.datasets import Split

    ds = tmp_path / "ds"
    (ds / "shapes").mkdir(parents=True)
    rng = np.random.default_rng(0)
    train, test = [f"shapes/{i}" for i in range(6)], [f"shapes/{i}" for i in range(6, 8)]
    for key in train + test:
        Image.new("RGB", (16, 16), (200, 30, 30)).save(ds / f"{key}.png")
        (ds / f"{key}.json").write_text(json.dumps({"title": "a red thing", "tags": ["red", "thing"]}))
    Split(train=train, test=test, zero_shot_tags=[], groups={k: k for k in train + test}).save(ds / "split.json")
    keys = ["photo:" + k for k in train + test]
    store = FeatureStore.from_arrays(tmp_path / "store", keys, rng.random((8, 8), np.float32) + 0.1)
    Im2Vec([[k, "red", "thing"] for k in keys[:6]] * 3, image_features=store, image_prefix="photo:", vector_size=4,
           min_count=1, epochs=1, workers=1).save(str(tmp_path / "m.model"))
    res = _run("report", tmp_path / "m.model", "-o", tmp_path / "out", "--dataset", ds, "--map-method", "pca")
    assert res.exit_code == 0, res.output
    assert "2 held-out images" in _flat(res.output) and (tmp_path / "out" / "index.html").is_file()


def test_normalize_runs_again_onto_its_output_when_a_key_holds_a_control_character(tmp_path):
    """A NUL in a table's image column is written as %00 (it was written as it is, and the file
    then looked binary: the second run refused its own output)."""
    table = tmp_path / "t.csv"
    table.write_bytes(b"path,tags\na\x00b.png,xyz\n")
    for _ in range(2):
        res = _run("normalize", table, "-o", tmp_path / "docs.txt", "--image-column", "path", "--tag-column", "tags")
        assert res.exit_code == 0, res.output
    assert (tmp_path / "docs.txt").read_text().split() == ["img:a%00b", "xyz"]


def test_verbose_on_a_subgroup():
    # (-v sets the root logger's level, which outlives an in-process run: put back for the tests after this one,
    # which saw INFO or WARNING depending on whether this test ran before them)
    root = logging.getLogger()
    level = root.level
    try:
        res = _run("datasets", "-v", "list")
        assert res.exit_code == 0, res.output
        assert root.level == logging.INFO
    finally:
        root.setLevel(level)


# --- 6. the query prompt on image keys ---


def test_query_prompt_says_what_an_unknown_image_key_is(files):
    from gensim_im2vec.query import QuerySession

    session = QuerySession(Im2Vec.load(str(files / "m.model")), topn=3, featurizer_factory=lambda meta: None)
    assert session.answer("img:nope").startswith("Not an image key of the model: img:nope.")
    assert "type its path" in session.answer("img:nope")
    for typed in ("img:red/circle_00.png", "red/circle_00.png"):
        assert session.answer(typed).startswith(f"Not a key of the model: {typed}; did you mean img:red/circle_00?")
    assert "did you mean img:my%20cat?" in session.answer("img:my cat")
    for typed in ("image:red/circle_00", "IMG:red/circle_00.png"):  # (another prefix: as the API's KeyError)
        assert session.answer(typed).startswith(f"Not a key of the model: {typed}; did you mean img:red/circle_00?")
    assert session.answer("nope") == "Out of dictionary word: nope"
    assert "did you mean" not in session.answer("red.png")  # a word is no image key it meant
    assert session.answer("red circle").startswith("Sum: red + circle")  # words still sum


# --- 7. the recall line counts the queries it asked ---


def test_index_prints_the_number_of_queries_it_asked(files, tmp_path):
    res = _run("index", files / "m.model", "-o", tmp_path / "m.ann", "--check", "100")
    assert res.exit_code == 0, res.output
    assert "recall@10 against the exact search (9 word and 5 image queries)" in res.output
    assert "100 queries" not in res.output


def test_tag_sep_takes_tab_by_name(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text('path,tags\nx.png,"red\tcircle"\n')
    for sep in ("tab", "\\t"):
        res = _run("normalize", table, "-o", tmp_path / f"docs{len(sep)}.txt", "--image-column", "path",
                   "--tag-column", "tags", "--tag-sep", sep)
        assert res.exit_code == 0, res.output
        assert (tmp_path / f"docs{len(sep)}.txt").read_text().split() == ["img:x", "red", "circle"]
