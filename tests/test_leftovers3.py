"""Defects left by the audits, third batch: an input that exists but cannot be read (a socket, a
named pipe, a folder where a file goes) reported as "not found" or as a bare ``[Errno 6]``, a
feature store folder refused for a ``.DS_Store``, ``-Infinity`` in the evaluation's JSON, and a
projector export written inside the images folder it shows. Each test failed on the code before
its fix (a comment says what it did)."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.corpora import TableCorpus, TextCorpus, YFCC100MCorpus, open_text_source
from gensim_im2vec.evaluate import EvaluationReport, one_space_check
from gensim_im2vec.store import FeatureStore


def _said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def sock(tmp_path, monkeypatch):
    """A Unix socket named ``sock`` in the current folder (tmp_path): a path that exists, is no
    folder, and that open() refuses even for root (where chmod 000 would not)."""
    monkeypatch.chdir(tmp_path)
    s = socket.socket(socket.AF_UNIX)
    s.bind("sock")
    yield "sock"
    s.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("leftovers3")
    keys = [f"img:{i}" for i in range(6)]
    store = FeatureStore.from_arrays(d / "store", keys, np.random.default_rng(0).random((6, 8), np.float32) + 0.1)
    docs = [[k, "cat", "dog"] for k in keys] * 3
    Im2Vec(docs, image_features=store, vector_size=4, min_count=1, epochs=1, workers=1).save(str(d / "m.model"))
    (d / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    return d


# --- 1. `im2vec normalize` / the corpus readers: a path that is there but cannot be read ---


@pytest.mark.parametrize("fmt,what", [
    ([], "YFCC100M metadata file 'sock' is a socket"),
    (["--format", "text"], "text corpus path 'sock' is a socket"),
    (["--format", "csv", "--image-column", "a", "--text-column", "b"], "table 'sock' is a socket"),
])
def test_normalize_of_a_socket_says_it_cannot_be_read_not_that_it_is_missing(sock, fmt, what):
    # was: "Error: YFCC100M metadata file not found: 'sock'." (and "text corpus path not found")
    result = CliRunner().invoke(main, ["normalize", sock, "-o", "out.txt", *fmt])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    said = _said(result)
    assert f"Error: {what}" in said and "so it cannot be read" in said and "give a" in said, said
    assert "not found" not in said, said
    assert not os.path.exists("out.txt")


def test_corpus_readers_name_a_fifo_and_a_folder_for_what_they_are(tmp_path):
    fifo = tmp_path / "docs.txt"
    os.mkfifo(fifo)  # never opened: opening a named pipe without a writer would block
    folder = tmp_path / "meta.tsv"
    folder.mkdir()
    with pytest.raises(OSError, match=r"'.*docs\.txt' is a named pipe \(FIFO\), neither a file nor a folder, so it "
                                      r"cannot be read") as e:
        TextCorpus(fifo)
    assert "not found" not in str(e.value)
    with pytest.raises(OSError, match=r"is a named pipe \(FIFO\), not a regular file, so it cannot be read"):
        open_text_source(fifo)
    with pytest.raises(IsADirectoryError, match=r"YFCC100M metadata file '.*meta\.tsv' is a folder, not a file, so "
                                                r"it cannot be read; give the file itself"):
        YFCC100MCorpus(folder)
    with pytest.raises(IsADirectoryError, match="table '.*' is a folder"):
        TableCorpus(folder, image_column="a", text_columns=["b"])
    with pytest.raises(FileNotFoundError, match="not found"):  # a missing path still says so
        TextCorpus(tmp_path / "nope.txt")


# --- 2. `im2vec evaluate` / `im2vec report`: an input that cannot be read names its option ---


@pytest.mark.parametrize("args,option", [
    (["evaluate", "{d}/m.model", "--test", "{s}", "--features", "{d}/store"], "--test"),
    (["evaluate", "{d}/m.model", "--test", "{d}/test.jsonl", "--features", "{d}/store", "--train", "{s}"],
     "--train"),
    (["evaluate", "{d}/m.model", "--test", "{d}/test.jsonl", "--features", "{d}/store", "--candidates", "{s}"],
     "--candidates"),
    (["evaluate", "{d}/m.model", "--test", "{d}/test.jsonl", "--features", "{d}/store", "--zero-shot", "{s}"],
     "--zero-shot"),
    (["evaluate", "{d}/m.model", "--test", "{d}/test.jsonl", "--features", "{s}.npy"], "--features"),
    (["evaluate", "{d}/m.model", "--test", "{d}/test.jsonl", "--features", "{d}/store", "--text-model", "{s}"],
     "--text-model"),
    (["evaluate", "{s}", "--test", "{d}/test.jsonl", "--features", "{d}/store"], "MODEL"),
    (["report", "{d}/m.model", "-o", "rep", "--evaluation", "{s}"], "--evaluation"),
    (["report", "{s}", "-o", "rep"], "MODEL"),
    (["export", "{s}", "-o", "proj"], "MODEL_PATH"),
])
def test_evaluate_and_report_name_an_input_that_cannot_be_read(files, tmp_path, monkeypatch, args, option):
    # was: "Error: [Errno 6] No such device or address: 'sock'" (or, for a model, "'sock' is not a
    # saved model (it starts with b'')")
    monkeypatch.chdir(tmp_path)
    name = "sock.npy" if "{s}.npy" in args else "sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(name)
        result = CliRunner().invoke(main, [a.format(d=files, s="sock") for a in args])
    finally:
        s.close()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert (f"Error: {option} {name}: cannot read it (No such device or address); check that it is a readable file, "
            f"or give another.") in _said(result), result.output
    assert not os.path.exists("rep") and not os.path.exists("proj")


def test_evaluate_demo_whose_word_model_is_a_folder_names_it(files, tmp_path):
    # was: "'…/words.w2v' is not a saved model (it starts with b'')"
    (tmp_path / "models" / "words.w2v").mkdir(parents=True)
    result = CliRunner().invoke(main, ["evaluate", str(files / "m.model"), "--demo", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    words = tmp_path / "models" / "words.w2v"
    assert f"Error: --demo {words}: cannot read it (Is a directory)" in _said(result), result.output


# --- 3. a feature store folder holding only hidden files, as the other output folders ---


def test_a_store_goes_into_a_folder_of_hidden_files_only(tmp_path):
    # was: FileExistsError "… is a non-empty directory that is not a feature store: it holds '.DS_Store'"
    out = tmp_path / "feats"
    out.mkdir()
    (out / ".DS_Store").write_bytes(b"finder")
    (out / ".gitkeep").write_bytes(b"")
    store = FeatureStore.from_arrays(out, ["img:a", "img:b"], np.eye(2, 4, dtype=np.float32) + 0.5)
    assert store.keys == ["img:a", "img:b"]
    assert (out / ".DS_Store").read_bytes() == b"finder" and (out / ".gitkeep").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / ".DS_Store").write_bytes(b"finder")
    (other / "notes.txt").write_text("my notes")
    with pytest.raises(FileExistsError, match=r"not a feature store: it holds 'notes\.txt'"):  # still refused
        FeatureStore.from_arrays(other, ["img:a"], np.ones((1, 4), np.float32))
    assert sorted(p.name for p in other.iterdir()) == [".DS_Store", "notes.txt"]


def test_extract_into_a_folder_with_a_ds_store(tmp_path):
    pytest.importorskip("torchvision")
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "imgs" / "red.png")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / ".DS_Store").write_bytes(b"finder")
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "imgs"), "-o", str(tmp_path / "store"), "--weights",
                                       "none", "--arch", "resnet18", "--num-workers", "0", "--device", "cpu",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert FeatureStore.open(tmp_path / "store").keys == ["img:red"]


# --- 4. undefined numbers are JSON null in the evaluation's JSON ---


def test_one_image_model_evaluation_json_is_strict_json(tmp_path):
    # a model with one image: its nearest other image is undefined (-inf); the JSON said -Infinity
    store = FeatureStore.from_arrays(tmp_path / "store", ["img:0"], np.full((1, 4), 0.5, np.float32))
    docs = [["img:0", "cat", "dog"], ["cat", "dog", "fish"]] * 5
    model = Im2Vec(docs, image_features=store, vector_size=4, min_count=1, epochs=1, workers=1, seed=1)
    one = one_space_check(model, ["img:0"], [["cat"]])
    assert one["nearest_image"] == -np.inf and one["n"] == 1
    model.save(str(tmp_path / "m.model"))
    (tmp_path / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "m.model"), "--test", str(tmp_path / "test.jsonl"),
                                       "--features", str(tmp_path / "store"), "--train", str(tmp_path / "test.jsonl"),
                                       "--baselines", "none", "--no-word-similarity", "--json", str(out)])
    assert result.exit_code == 0, result.output

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    data = json.loads(out.read_text(encoding="utf-8"), parse_constant=refuse)
    assert data["space"]["one_space"]["nearest_image"] is None
    assert data["space"]["one_space"]["n"] == 1
    assert isinstance(data["space"]["one_space"]["nearest_word"], float)
    # to_dict itself, for every undefined kind
    d = EvaluationReport(space={"x": {"a": float("inf"), "b": np.float32("-inf"), "c": float("nan"), "d": 0.25}})
    assert d.to_dict()["space"]["x"] == {"a": None, "b": None, "c": None, "d": 0.25}


# --- 5. a projector export inside the images folder it shows ---


@pytest.fixture
def image_model(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        Image.new("RGB", (16, 16), colour).save(imgs / f"{name}.png")
    store = FeatureStore.from_arrays(tmp_path / "store", ["img:red", "img:blue"],
                                     np.array([[1, 0, 0.5, 0.2], [0, 1, 0.2, 0.5]], np.float32))
    docs = [["img:red", "red", "warm"], ["img:blue", "blue", "sea"]] * 5
    model = Im2Vec(docs, image_features=store, vector_size=4, min_count=1, epochs=1, workers=1, seed=1)
    model.save(str(tmp_path / "m.model"))
    return model, imgs


def test_export_inside_the_images_folder_is_refused(image_model, tmp_path):
    # was allowed: imgs/proj/sprite.png, which a later `im2vec extract imgs` took for an image
    from gensim_im2vec.export import export_projector

    model, imgs = image_model
    with pytest.raises(ValueError, match=rf"the export's folder '{imgs}/proj' is inside the images folder '{imgs}'"
                                         rf".*Export to a folder outside '{imgs}'"):
        export_projector(model, imgs / "proj", images=imgs)
    result = CliRunner().invoke(main, ["export", str(tmp_path / "m.model"), "-o", str(imgs / "deep" / "proj"),
                                       "--images", str(imgs)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert (f"Invalid value for '-o' / '--output': '{imgs}/deep/proj' is inside the --images folder '{imgs}'"
            in _said(result)), result.output
    assert f"Export to a folder outside '{imgs}'" in _said(result)
    assert sorted(p.name for p in imgs.iterdir()) == ["blue.png", "red.png"]
    # beside it (a name that merely starts with the folder's) is fine
    res = export_projector(model, f"{imgs}-proj", images=imgs)
    assert res.sprite is not None and res.sprite.exists()
    result = CliRunner().invoke(main, ["export", str(tmp_path / "m.model"), "-o", str(tmp_path / "proj2"),
                                       "--images", str(imgs)])
    assert result.exit_code == 0, result.output
