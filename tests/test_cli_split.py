"""`im2vec split`: a held-out split of the user's own documents, and what evaluate and report make of it.

normalize-like documents -> split -> train -> evaluate (and report) on the split's files; the same
inputs give the same bytes; every bad input is refused with a message that names it and the fix,
before anything is written.
"""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.split import split_documents
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus

SPLIT_NAMES = ["split.json", "test.jsonl", "train.jsonl", "train.txt", "zero_shot.txt"]
#: Extra lines: near-duplicates (the same words), two images in one line, plurals of tags, text.
EXTRA = ["img:dup_a ginger cat sofa", "img:dup_b ginger cat sofa", "img:dup_c cat sofa ginger",
         "img:pair_a img:pair_b beach sea waves", "img:alone"]


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _flat(text: str) -> str:
    return " ".join(text.split())


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """docs.txt as `im2vec normalize` writes it (an image token, then its words; text lines with none)
    and a feature store of every image in it."""
    d = tmp_path_factory.mktemp("split")
    data = make_corpus(n_classes=4, n_images=160, n_features=16, n_text_sentences=12, seed=3)
    lines = []
    for doc in data.docs:
        if doc[0].startswith("img:") and int(doc[0][4:]) // 4 % 2:  # plurals beside their singulars: held out together
            doc = [*doc, doc[1] + "s"]
        lines.append(" ".join(doc))
    lines[5:5] = EXTRA
    (d / "docs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    keys = list(data.features) + ["img:dup_a", "img:dup_b", "img:dup_c", "img:pair_a", "img:pair_b", "img:alone"]
    rng = np.random.default_rng(0)
    vectors = np.concatenate([np.stack([data.features[k] for k in data.features]),
                              rng.normal(size=(6, 16)).astype(np.float32)])
    FeatureStore.from_arrays(d / "store", keys, vectors)
    return d


def _side(split, key: str) -> str:
    return "test" if key in split.test_keys else "train" if key in split.train_keys else "neither"


def test_split_train_evaluate_end_to_end(corpus, tmp_path):
    out = tmp_path / "split"
    res = _run("split", corpus / "docs.txt", "-o", out, "--test-share", "0.2", "--zero-shot-share", "0.5",
               "--seed", "4")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == SPLIT_NAMES
    record = json.loads((out / "split.json").read_text())
    test, train = _jsonl(out / "test.jsonl"), _jsonl(out / "train.jsonl")
    zero = (out / "zero_shot.txt").read_text().split()
    assert record["complete"] and record["counts"]["test_images"] == len(test) > 0
    assert abs(len(test) / (len(test) + len(train)) - 0.2) < 0.05  # whole groups: close to the share
    assert record["zero_shot_tags"] == zero and record["config"]["seed"] == "4"
    assert f"{len(test)} test images" in _flat(res.output)

    # the training documents: no held-out image, no zero-shot tag beside an image; text lines as they were
    train_lines = (out / "train.txt").read_text().splitlines()
    tokens = {t for line in train_lines for t in line.split()}
    assert not tokens & {r["key"] for r in test}
    image_lines = [line.split() for line in train_lines if line.startswith("img:")]
    assert not {t for doc in image_lines for t in doc} & set(zero)
    source = (corpus / "docs.txt").read_text().splitlines()
    text = [line for line in source if not line.startswith("img:")]
    assert [line for line in train_lines if not line.startswith("img:")] == text
    assert any(set(line.split()) & set(zero) for line in text)  # a zero-shot tag keeps its text
    assert not {t for r in train for t in r["tags"]} & set(zero)
    assert {t for r in test for t in r["tags"]} & set(zero)  # scored on the test images
    # a tag and its plural are held out together (datasets.zero_shot_groups)
    assert any(t + "s" in zero for t in zero)
    assert all(t + "s" in zero for t in zero if t in {"class0", "class1", "class2", "class3"})
    # near-duplicates and the images of one line sit on one side; an image without words only trains
    split = split_documents(corpus / "docs.txt", tmp_path / "again", test_share=0.2, zero_shot_share=0.5, seed="4")
    assert len({_side(split, k) for k in ("img:dup_a", "img:dup_b", "img:dup_c")}) == 1
    assert _side(split, "img:pair_a") == _side(split, "img:pair_b") != "neither"
    assert "img:alone" not in split.test_keys and "img:alone" not in tokens  # a line without a word is dropped

    model_path = tmp_path / "m.model"
    res = _run("train", out / "train.txt", "-f", corpus / "store", "-o", model_path, "--vector-size", "8",
               "--epochs", "2", "--sg", "--min-count", "1", "--workers", "1", "--seed", "1")
    assert res.exit_code == 0, res.output
    model = Im2Vec.load(str(model_path))
    assert not [r["key"] for r in test if r["key"] in model.wv.key_to_index]
    assert set(model.image_keys) == {r["key"] for r in train}

    for zero_shot in ("zero_shot.txt", "split.json"):  # evaluate reads either
        res = _run("evaluate", model_path, "--test", out / "test.jsonl", "--train", out / "train.jsonl",
                   "--features", corpus / "store", "--zero-shot", out / zero_shot, "--baselines", "prior,knn",
                   "--no-word-similarity", "--json", tmp_path / "eval.json")
        assert res.exit_code == 0, res.output
        assert "trained on" not in res.output  # no in-sample warning: the test images are held out
        info = json.loads((tmp_path / "eval.json").read_text())["info"]
        assert info["n_test_images"] == len(test) == record["counts"]["test_images"]
        assert info["n_train_images"] == len(train) and info["n_zero_shot_tags"] == len(zero)


def test_same_inputs_give_the_same_bytes_and_a_rerun_rewrites(corpus, tmp_path):
    args = ["--test-share", "0.25", "--zero-shot-share", "0.3", "--seed", "s1"]
    for name in ("a", "b"):
        res = _run("split", corpus / "docs.txt", "-o", tmp_path / name, *args)
        assert res.exit_code == 0, res.output
    for name in SPLIT_NAMES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    before = {n: (tmp_path / "a" / n).read_bytes() for n in SPLIT_NAMES}
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "a", *args)  # again into its own output
    assert res.exit_code == 0, res.output
    assert {n: (tmp_path / "a" / n).read_bytes() for n in SPLIT_NAMES} == before
    assert not [p.name for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temporary file left
    # another seed, another split; without zero-shot tags the earlier zero_shot.txt goes
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "a", "--test-share", "0.25", "--seed", "s2")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a" / "test.jsonl").read_bytes() != before["test.jsonl"]
    assert not (tmp_path / "a" / "zero_shot.txt").exists()
    assert json.loads((tmp_path / "a" / "split.json").read_text())["zero_shot_tags"] == []


def test_the_split_records_its_source(corpus, tmp_path):
    import hashlib

    s = split_documents(corpus / "docs.txt", tmp_path / "out", test_share=0.1)
    record = json.loads((tmp_path / "out" / "split.json").read_text())
    assert record["documents"]["sha256"] == hashlib.sha256((corpus / "docs.txt").read_bytes()).hexdigest()
    assert record["documents"]["path"] == str(corpus / "docs.txt")
    assert record["config"]["test_share"] == 0.1 and record["config"]["group_by"] == "words"
    assert record["counts"]["test_images"] == len(s.test_keys) and s.zero_shot_tags == []


def test_group_by_document_lets_near_duplicates_apart(tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"img:{i} same words here\n" for i in range(40)), encoding="utf-8")
    res = _run("split", docs, "-o", tmp_path / "w")  # one group by words: nothing could be held out
    assert res.exit_code == 1
    assert "form one group" in _flat(res.output) and "--group-by document" in _flat(res.output)
    assert not (tmp_path / "w").exists()
    res = _run("split", docs, "-o", tmp_path / "d", "--group-by", "document", "--test-share", "0.25")
    assert res.exit_code == 0, res.output
    assert len(_jsonl(tmp_path / "d" / "test.jsonl")) == 10


def test_another_image_prefix(tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"photo:{i} w{i % 4} x{i % 3}\n" for i in range(30)), encoding="utf-8")
    res = _run("split", docs, "-o", tmp_path / "a")
    assert res.exit_code == 1 and "no token starts with 'img:'" in res.output and "--prefix" in res.output
    res = _run("split", docs, "-o", tmp_path / "b", "--prefix", "photo:", "--group-by", "document")
    assert res.exit_code == 0, res.output
    assert all(r["key"].startswith("photo:") for r in _jsonl(tmp_path / "b" / "test.jsonl"))


def _bad_documents(tmp_path, kind: str):
    p = tmp_path / f"{kind}.txt"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "blank":
        p.write_text("\n  \n\t\n")
    elif kind == "no-images":
        p.write_text("just some text\nand more text\n")
    elif kind == "binary":
        np.save(tmp_path / "x.npy", np.arange(50.0))
        p.write_bytes((tmp_path / "x.npy").read_bytes())
    elif kind == "latin-1":
        p.write_bytes("img:1 café\nimg:2 crème\n".encode("latin-1"))
    elif kind == "no-words":
        p.write_text("img:1\nimg:2\n")
    elif kind == "unique-tags":
        p.write_text("".join(f"img:{i} w{i} v{i}\n" for i in range(30)))
    elif kind == "too-few":
        p.write_text("img:1 cat\nimg:2 dog\nimg:3 cow\n")
    return p


@pytest.mark.parametrize("kind, args, said", [
    ("empty", [], ["no documents in it", "it is empty", "im2vec normalize"]),
    ("blank", [], ["no documents in it", "all blank"]),
    ("no-images", [], ["no image token", "'img:'", "--prefix"]),
    ("binary", [], ["line 1 holds a NUL byte", "not a text file"]),
    ("latin-1", [], ["line 1 is not UTF-8", "UTF-8 text"]),
    ("no-words", [], ["none of its 2 images has a word"]),
    ("too-few", ["--test-share", "0.1"], ["holds out no image", "raise --test-share"]),
    ("too-few", ["--test-share", "0.9"], ["leaving none to train on", "lower --test-share"]),
    ("unique-tags", ["--zero-shot-share", "0.5"], ["draws no tag", "at least 2 images", "--zero-shot-share"]),
])
def test_bad_documents_are_refused_naming_the_file_and_the_fix(tmp_path, kind, args, said):
    docs = _bad_documents(tmp_path, kind)
    res = _run("split", docs, "-o", tmp_path / "out", *args)
    assert res.exit_code == 1, res.output
    text = _flat(res.output)
    assert str(docs) in text and all(s in text for s in said), text
    assert "Traceback" not in text and not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value", [("--test-share", "0"), ("--test-share", "1"), ("--test-share", "1.5"),
                                           ("--zero-shot-share", "1"), ("--zero-shot-share", "-0.1")])
def test_shares_outside_their_range_are_refused(corpus, tmp_path, option, value):
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "out", option, value)
    assert res.exit_code == 2 and option in res.output and value in res.output
    assert not (tmp_path / "out").exists()


def test_library_refuses_shares_outside_their_range(corpus, tmp_path):
    with pytest.raises(ValueError, match=r"test_share must be in \(0, 1\), got 1.0"):
        split_documents(corpus / "docs.txt", tmp_path / "o", test_share=1.0)
    with pytest.raises(ValueError, match=r"zero_shot_share must be in \[0, 1\), got -0.5"):
        split_documents(corpus / "docs.txt", tmp_path / "o", zero_shot_share=-0.5)
    assert not (tmp_path / "o").exists()


def test_a_folder_of_the_users_is_refused_and_left_alone(corpus, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "train.txt").write_text("my own notes\n")
    res = _run("split", corpus / "docs.txt", "-o", out)
    assert res.exit_code == 1
    assert "is not an earlier output of im2vec split" in _flat(res.output) and "'train.txt'" in res.output
    assert (out / "train.txt").read_text() == "my own notes\n" and sorted(p.name for p in out.iterdir()) == ["train.txt"]
    assert "'train.txt', which im2vec split could replace" in _flat(res.output)
    (out / "train.txt").rename(out / "photo.jpg")  # a name split does not write: refused, and said as it is
    res = _run("split", corpus / "docs.txt", "-o", out)
    assert res.exit_code == 1 and sorted(p.name for p in out.iterdir()) == ["photo.jpg"]
    # was: "it holds 'photo.jpg', which im2vec split could replace" (it writes train.txt, test.jsonl, ...)
    assert "could replace" not in res.output, res.output
    assert ("it holds 'photo.jpg', and im2vec split writes only into a new or empty folder or an earlier output of "
            "its own, never beside files of yours") in _flat(res.output), res.output
    res = _run("split", corpus / "docs.txt", "-o", corpus / "docs.txt")  # a file where the folder goes
    assert res.exit_code == 2 and "is a file" in res.output


def test_the_splits_own_training_file_is_not_split_onto_itself(corpus, tmp_path):
    assert _run("split", corpus / "docs.txt", "-o", tmp_path / "s").exit_code == 0
    before = (tmp_path / "s" / "train.txt").read_bytes()
    res = _run("split", tmp_path / "s" / "train.txt", "-o", tmp_path / "s")
    assert res.exit_code == 1 and "would destroy it" in _flat(res.output)
    assert (tmp_path / "s" / "train.txt").read_bytes() == before


def test_an_interrupted_split_is_written_again(corpus, tmp_path, monkeypatch):
    """split.json is written first (incomplete) and last (complete): a run killed in between leaves a
    folder the next run recognises as its own."""
    from gensim_im2vec import split as split_module

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(split_module, "atomic_write_bytes", boom)
    with pytest.raises(KeyboardInterrupt):
        split_documents(corpus / "docs.txt", tmp_path / "s")
    assert json.loads((tmp_path / "s" / "split.json").read_text())["complete"] is False
    monkeypatch.undo()
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "s")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s" / "split.json").read_text())["complete"] is True


def test_the_files_of_an_unfinished_split_are_refused_until_it_is_run_again(corpus, trained, tmp_path,
                                                                         monkeypatch):
    """A split stopped between two renames leaves its split.json at ``"complete": false`` and files of two
    splits side by side (here this run's train.txt beside the earlier run's test.jsonl: images held out by one
    and trained on by the other). Nothing read that flag: train, evaluate and report took the files as they
    were. Each now refuses them, naming the folder and the command that writes it again."""
    import os

    from gensim_im2vec import evaluate as ev
    from gensim_im2vec import split as split_module

    folder, store = tmp_path / "s", corpus / "store"
    assert _run("split", corpus / "docs.txt", "-o", folder, "--test-share", "0.2", "--zero-shot-share", "0.2",
                "-f", store).exit_code == 0

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(split_module, "atomic_write_bytes", boom)  # (test.jsonl: after train.txt and train.jsonl)
    with pytest.raises(KeyboardInterrupt):
        split_documents(corpus / "docs.txt", folder, test_share=0.3, zero_shot_share=0.2, seed="again",
                        features=store)
    monkeypatch.undo()
    assert json.loads((folder / "split.json").read_text())["complete"] is False
    train = ["train", folder / "train.txt", "-f", store, "-o", tmp_path / "m.model", "--vector-size", "8", "--epochs",
             "1", "--min-count", "1", "--workers", "1"]
    refused = {
        "train": _run(*train),
        "evaluate": _run("evaluate", trained / "m.model", "--test", folder / "test.jsonl", "--features", store,
                         "--baselines", "none", "--no-word-similarity"),
        "evaluate --train": _run("evaluate", trained / "m.model", "--test", trained / "split" / "test.jsonl",
                                 "--features", store, "--train", folder / "train.jsonl", "--baselines", "none",
                                 "--no-word-similarity"),
        "evaluate --zero-shot": _run("evaluate", trained / "m.model", "--test", trained / "split" / "test.jsonl",
                                     "--features", store, "--zero-shot", folder / "split.json", "--baselines", "none",
                                     "--no-word-similarity"),
        "report": _run("report", trained / "m.model", "-o", tmp_path / "rep", "--test", folder / "test.jsonl",
                       "--features", store, "--map-method", "pca"),
        "split": _run("split", folder / "train.txt", "-o", tmp_path / "s2"),
        "query --zero-shot-words": _run("query", trained / "m.model", "--zero-shot-words", folder / "zero_shot.txt"),
    }
    fix = None
    for command, res in refused.items():
        said = _flat(res.output)
        assert res.exit_code == 1, (command, res.output)
        assert f"the split in {str(folder)!r} is not complete (its split.json says \"complete\": false)" in said
        assert "Run the split again with the same arguments" in said, said
        fix = said.split("whole: `", 1)[1].split("`", 1)[0]
    assert not (tmp_path / "m.model").exists() and not (tmp_path / "rep").exists() and not (tmp_path / "s2").exists()
    for path in ("train.jsonl", "test.jsonl"):  # the library's readers too
        with pytest.raises(ValueError, match="is not complete"):
            ev.load_tagged_jsonl(folder / path)
    for path in ("split.json", "zero_shot.txt"):
        with pytest.raises(ValueError, match="is not complete"):
            ev.read_tag_file(folder / path)
    (folder / "mine.jsonl").write_text('{"key": "img:0", "tags": ["a"]}\n')  # not a file of the split: read
    assert ev.load_tagged_jsonl(folder / "mine.jsonl") == (["img:0"], [["a"]])
    # a split writing it now (its lock beside the folder names a live process): wait for it, not rerun it
    (tmp_path / ".s.lock").write_text(f"{os.getppid()}\n")
    said = _flat(_run(*train).output)
    assert f"an `im2vec split` (pid {os.getppid()}) is writing it now. Wait for that process to finish" in said
    (tmp_path / ".s.lock").unlink()
    # the fix, as said: the interrupted run's own arguments, read from its split.json
    words = shlex.split(fix)
    assert words[:2] == ["im2vec", "split"] and "--test-share" in words and "0.3" in words and "again" in words
    res = _run(*words[1:])
    assert res.exit_code == 0, res.output
    assert json.loads((folder / "split.json").read_text())["complete"] is True
    res = _run(*train)
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("name", ["docs.txt.gz", "docs.txt.bz2"])
def test_a_compressed_file_cut_short_is_an_error_naming_it(corpus, tmp_path, name):
    """A .gz / .bz2 that ends early (an interrupted download) said only "Aborted!" (the EOFError went to
    click): the message names the file and says it is cut short, as train's and normalize's readers do."""
    import bz2
    import gzip

    data = (corpus / "docs.txt").read_bytes()
    packed = gzip.compress(data) if name.endswith(".gz") else bz2.compress(data)
    docs = tmp_path / name
    docs.write_bytes(packed[: len(packed) // 2])
    res = _run("split", docs, "-o", tmp_path / "out")
    assert res.exit_code == 1, res.output
    text = _flat(res.output)
    assert text.startswith(f"Error: {docs}: the {'gzip' if name.endswith('.gz') else 'bz2'} data ends early"), text
    assert "cut short" in text and "fetch or compress it again" in text and "Aborted" not in text
    assert not (tmp_path / "out").exists()


def test_compression_is_read_from_the_content_not_the_name(corpus, tmp_path):
    """Plain text named .gz was "Error: Not a gzipped file (b'im')", naming neither the file nor the fix;
    read as `im2vec normalize` reads its sources (by magic bytes), it is the same split as the text's,
    and so is the gzip of it under a plain name."""
    import gzip

    data = (corpus / "docs.txt").read_bytes()
    (tmp_path / "plain.txt.gz").write_bytes(data)
    (tmp_path / "packed.txt").write_bytes(gzip.compress(data))
    want = split_documents(corpus / "docs.txt", tmp_path / "want", seed="c")
    for name in ("plain.txt.gz", "packed.txt"):
        res = _run("split", tmp_path / name, "-o", tmp_path / name.replace(".", "_"), "--seed", "c")
        assert res.exit_code == 0, res.output
        for out in ("train.txt", "test.jsonl", "train.jsonl"):
            assert (tmp_path / name.replace(".", "_") / out).read_bytes() == (want.folder / out).read_bytes(), out


def test_hashtag_zero_shot_tags_read_the_same_from_both_files(tmp_path):
    """A zero-shot tag such as #nofilter was in zero_shot.txt but read as a comment by evaluate
    --zero-shot (read_tag_file), so it was scored as a seen tag there and as zero-shot from split.json."""
    from gensim_im2vec.evaluate import read_tag_file

    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"img:{i} #tag{i % 6} w{i % 4} # x{i % 3}\n" for i in range(60)), encoding="utf-8")
    s = split_documents(docs, tmp_path / "s", test_share=0.2, zero_shot_share=0.6, seed="h", group_by="document")
    assert [t for t in s.zero_shot_tags if t.startswith("#")], s.zero_shot_tags  # hashtags were drawn
    assert "#" not in s.zero_shot_tags  # a bare '#' (a comment line in zero_shot.txt) never is
    assert read_tag_file(tmp_path / "s" / "zero_shot.txt") == s.zero_shot_tags
    assert read_tag_file(tmp_path / "s" / "split.json") == s.zero_shot_tags
    # comments stay comments: '#' alone, or '#' and words with a space
    tags = tmp_path / "tags.txt"
    tags.write_text("# held-out tags\n#\n  #  indented\n#nofilter\ndog\n\n#commented out words\n", encoding="utf-8")
    assert read_tag_file(tags) == ["#nofilter", "dog"]


# --- --features: images the store lacks ---

#: Not in the partial store: never extracted, or skipped by the extraction (with its reason).
NOT_EXTRACTED = [f"img:{i}" for i in range(0, 40, 4)] + ["img:pair_b", "img:dup_b"]
SKIPPED = {"img:1": "not an image: cannot identify image file", "img:5": "too large: 16000x14464 pixels"}


@pytest.fixture(scope="module")
def partial_store(corpus):
    """The corpus' store without the images of NOT_EXTRACTED and SKIPPED (the latter in skipped.json)."""
    full = FeatureStore.open(corpus / "store")
    lacking = set(NOT_EXTRACTED) | set(SKIPPED)
    keys = [k for k in full.keys if k not in lacking]
    path = corpus / "partial"
    with FeatureStore.create(path, dim=full.dim, dtype="float32") as w:
        w.write(keys, np.asarray(full.vectors)[[full.key_to_index[k] for k in keys]])
        for key, reason in SKIPPED.items():
            w.skip(key, reason)
    return path


def test_without_features_an_image_the_store_lacks_breaks_train_and_a_note_says_so(corpus, partial_store, tmp_path):
    """The leftover: without the store, images without features end up in train.txt (train refuses them)
    and in test.jsonl (evaluate cannot score them); the command says how to avoid it."""
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "s", "--test-share", "0.3", "--seed", "f")
    assert res.exit_code == 0, res.output
    assert "note: without --features STORE" in _flat(res.output) and "-f STORE" in res.output
    assert "copies" in _flat(res.output) and "keep copies on one side" in _flat(res.output)  # what -f also does
    lacking = set(NOT_EXTRACTED) | set(SKIPPED)
    tokens = {t for line in (tmp_path / "s" / "train.txt").read_text().splitlines() for t in line.split()}
    assert tokens & lacking and {r["key"] for r in _jsonl(tmp_path / "s" / "test.jsonl")} & lacking
    assert json.loads((tmp_path / "s" / "split.json").read_text())["features"] is None
    res = _run("train", tmp_path / "s" / "train.txt", "-f", partial_store, "-o", tmp_path / "m.model",
               "--vector-size", "8", "--epochs", "1", "--min-count", "1", "--workers", "1")
    assert res.exit_code == 1 and "have no features" in res.output


def test_features_leave_images_without_features_out_and_train_then_evaluate_run(corpus, partial_store, tmp_path):
    out = tmp_path / "split"
    res = _run("split", corpus / "docs.txt", "-o", out, "--test-share", "0.3", "--zero-shot-share", "0.3",
               "--seed", "f", "--features", partial_store)
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    assert "note:" not in text
    lacking = set(NOT_EXTRACTED) | set(SKIPPED)
    store_keys = set(FeatureStore.open(partial_store).keys)
    test, train = _jsonl(out / "test.jsonl"), _jsonl(out / "train.jsonl")
    assert test and {r["key"] for r in test} <= store_keys  # exactly the images evaluate can score
    assert {r["key"] for r in train} <= store_keys
    # their tokens leave train.txt, their lines' words stay (as text); the other images' lines are as they were
    lines = (out / "train.txt").read_text().splitlines()
    assert not {t for line in lines for t in line.split()} & lacking
    source = {line.split()[0]: line.split()[1:] for line in (corpus / "docs.txt").read_text().splitlines()
              if line.startswith("img:")}
    zero = set((out / "zero_shot.txt").read_text().split())
    assert " ".join(w for w in source["img:0"] if w not in zero) in lines  # img:0 was never extracted
    assert "beach sea waves" not in lines and "img:pair_a beach sea waves" in lines  # its pair_b goes, pair_a trains
    record = json.loads((out / "split.json").read_text())
    c = record["counts"]
    assert c["images_without_features"] == len(lacking) and c["images_skipped_by_extraction"] == len(SKIPPED)
    assert c["test_images"] == len(test) and c["train_images"] == len(train)
    assert c["images"] == c["train_images"] + c["test_images"] + len(lacking) + 1  # + img:alone (no word)
    assert c["lines_without_featured_images"] == len(lacking) - 1  # all but pair_b's line (pair_a stays)
    feats = record["features"]
    assert feats["path"] == str(partial_store) and feats["images"] == len(store_keys)
    assert list(feats["without_features"]) == ["img:0", "img:1", "img:4", "img:dup_b", "img:pair_b"]  # source order
    assert feats["without_features"]["img:1"] == SKIPPED["img:1"] and feats["without_features"]["img:0"] is None
    # the summary: how many, why, which
    assert f"{len(lacking)} images lack features in {partial_store}: never held out" in text
    assert ("e.g. img:0, img:1, img:4; 2 of them skipped by the extraction (the store's skipped.json says why, "
            "e.g. img:1: not an image: cannot identify image file)") in text

    model_path = tmp_path / "m.model"  # train's default refuses an image without features: none is left
    res = _run("train", out / "train.txt", "-f", partial_store, "-o", model_path, "--vector-size", "8",
               "--epochs", "2", "--min-count", "1", "--workers", "1", "--seed", "1")
    assert res.exit_code == 0, res.output
    model = Im2Vec.load(str(model_path))
    assert set(model.image_keys) == {r["key"] for r in train}
    res = _run("evaluate", model_path, "--test", out / "test.jsonl", "--train", out / "train.jsonl",
               "--features", partial_store, "--zero-shot", out / "split.json", "--baselines", "prior,knn",
               "--no-word-similarity", "--json", tmp_path / "eval.json")
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "eval.json").read_text())["info"]
    assert info["n_test_images"] == len(test) and info["n_train_images"] == len(train)


def test_a_group_with_an_image_without_features_is_never_held_out(corpus, partial_store, tmp_path):
    """img:pair_b (no features) shares its line with img:pair_a, img:dup_b its words with img:dup_a and
    img:dup_c: over many seeds their partners train, never test, and the store's other images do test."""
    tested: set[str] = set()
    for seed in range(12):
        s = split_documents(corpus / "docs.txt", tmp_path / str(seed), test_share=0.4, seed=str(seed),
                            features=partial_store)
        tested |= set(s.test_keys)
        assert "img:pair_a" in s.train_keys and {"img:dup_a", "img:dup_c"} <= set(s.train_keys)
    assert not tested & (set(NOT_EXTRACTED) | set(SKIPPED) | {"img:pair_a", "img:dup_a", "img:dup_c"})
    assert len(tested) > 100  # (the others are drawn)


def test_features_as_an_open_store_give_the_same_split_again_byte_for_byte(corpus, partial_store, tmp_path):
    a = split_documents(corpus / "docs.txt", tmp_path / "a", zero_shot_share=0.2, seed="b", features=partial_store)
    b = split_documents(corpus / "docs.txt", tmp_path / "b", zero_shot_share=0.2, seed="b",
                        features=FeatureStore.open(partial_store))
    assert a.test_keys == b.test_keys and a.zero_shot_tags == b.zero_shot_tags
    for name in ("train.txt", "train.jsonl", "test.jsonl", "split.json", "zero_shot.txt"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes(), name
    # a store holding every image: nothing left out, and the summary says so
    full = split_documents(corpus / "docs.txt", tmp_path / "c", seed="b", features=corpus / "store")
    assert full.counts["images_without_features"] == 0 and "every image has features in" in full.summary()
    plain = split_documents(corpus / "docs.txt", tmp_path / "d", seed="b")
    assert full.test_keys == plain.test_keys and "features" not in plain.summary()


def test_a_store_that_is_not_these_images_or_not_a_store_is_refused_naming_it(corpus, tmp_path):
    other = tmp_path / "other"
    FeatureStore.from_arrays(other, ["photo:a", "photo:b"], np.ones((2, 4), dtype=np.float32))
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "o1", "--features", other)
    assert res.exit_code == 1, res.output
    text = _flat(res.output)
    assert f"none of its {6 + 160} images is in the feature store {str(other)!r}" in text
    assert "['photo:a', 'photo:b']" in text and "prefix included" in text
    assert not (tmp_path / "o1").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "o2", "--features", empty)
    assert res.exit_code == 1 and "no feature store at" in res.output and "im2vec extract" in res.output
    assert not (tmp_path / "o2").exists()
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "o3", "--features", corpus / "docs.txt")
    assert res.exit_code == 2 and "'-f' / '--features'" in res.output
    with pytest.raises(NotADirectoryError, match="give the feature store's folder"):
        split_documents(corpus / "docs.txt", tmp_path / "o4", features=corpus / "docs.txt")


def test_a_store_with_only_images_without_words_is_refused(tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"img:{i} w{i % 3}\n" for i in range(10)) + "img:x\nimg:y\n", encoding="utf-8")
    store = tmp_path / "store"
    FeatureStore.from_arrays(store, ["img:x", "img:y"], np.ones((2, 4), dtype=np.float32))
    res = _run("split", docs, "-o", tmp_path / "o", "-f", store)
    assert res.exit_code == 1, res.output
    text = _flat(res.output)
    assert "none of its images with words is in the feature store" in text and "10 of its 12 images" in text
    assert "`im2vec extract`" in text and not (tmp_path / "o").exists()


# --- im2vec report --test ---


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    split_documents(corpus / "docs.txt", d / "split", test_share=0.2, seed="r")
    res = _run("train", d / "split" / "train.txt", "-f", corpus / "store", "-o", d / "m.model", "--vector-size", "8",
               "--epochs", "1", "--min-count", "1", "--workers", "1")
    assert res.exit_code == 0, res.output
    return d


def test_report_takes_test_jsonl_and_features(corpus, trained, tmp_path):
    pytest.importorskip("matplotlib", reason="im2vec report needs the [report] extra")
    from PIL import Image

    test = _jsonl(trained / "split" / "test.jsonl")
    photos = tmp_path / "photos"  # the files the features came from, keyed by path as `im2vec extract` keys them
    photos.mkdir()
    for r in test[:2]:
        Image.new("RGB", (20, 20), (30, 60, 220)).save(photos / f"{r['key'][4:]}.png")
    res = _run("report", trained / "m.model", "-o", tmp_path / "rep", "--test", trained / "split" / "test.jsonl",
               "--features", corpus / "store", "--images", photos, "--max-test-images", "5", "--map-method", "pca")
    assert res.exit_code == 0, res.output
    # (the first 5 of them: the count says of how many, and how to see more)
    assert f"(5 held-out images of the {len(test)} with features (--max-test-images shows more))" in res.output
    assert "no held-out images" not in res.output
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    held_out = page.split('<section id="heldout">')[1].split("</section>")[0]
    assert test[0]["key"] in held_out and test[5]["key"] not in held_out
    assert all(t in held_out for t in test[0]["tags"])  # the true tags beside the predicted ones
    assert len(list((tmp_path / "rep" / "thumbs").iterdir())) == 2  # the two test images with a file


def test_report_takes_test_features_as_npy_rows(corpus, trained, tmp_path):
    pytest.importorskip("matplotlib", reason="im2vec report needs the [report] extra")
    test = _jsonl(trained / "split" / "test.jsonl")
    store = FeatureStore.open(corpus / "store")
    rows = np.stack([store.vectors[store.key_to_index[r["key"]]] for r in test]).astype(np.float32)
    np.save(tmp_path / "test.npy", rows)
    res = _run("report", trained / "m.model", "-o", tmp_path / "rep", "--test", trained / "split" / "test.jsonl",
               "--features", tmp_path / "test.npy", "--map-method", "pca")
    assert res.exit_code == 0, res.output
    assert f"({len(test)} held-out images)" in res.output
    np.save(tmp_path / "short.npy", rows[:3])
    res = _run("report", trained / "m.model", "-o", tmp_path / "rep2", "--test", trained / "split" / "test.jsonl",
               "--features", tmp_path / "short.npy", "--map-method", "pca")
    assert res.exit_code == 1 and "short.npy" in res.output
    assert f"one feature row per key ({len(test)})" in _flat(res.output)
    assert not (tmp_path / "rep2").exists()


def test_report_test_without_features_of_its_images_is_an_error(trained, tmp_path):
    other = tmp_path / "other"
    FeatureStore.from_arrays(other, ["img:nothing"], np.ones((1, 16), np.float32))
    res = _run("report", trained / "m.model", "-o", tmp_path / "rep", "--test", trained / "split" / "test.jsonl",
               "--features", other, "--map-method", "pca")
    assert res.exit_code == 1
    assert "none of the" in _flat(res.output) and "--features STORE" in _flat(res.output)
    assert not (tmp_path / "rep").exists()


def test_report_refuses_dataset_and_test_together(trained, tmp_path):
    res = _run("report", trained / "m.model", "-o", tmp_path / "rep", "--test", trained / "split" / "test.jsonl",
               "--dataset", tmp_path)
    assert res.exit_code == 2 and "give one of them" in res.output
    res = _run("report", trained / "m.model", "-o", tmp_path / "rep", "--features", trained)
    assert res.exit_code == 2 and "--test" in res.output


@pytest.fixture(scope="module")
def photo_model(corpus, tmp_path_factory):
    """A model of photo:… images (`im2vec split --prefix photo:`), its split, and a folder of image
    files named by their keys without the prefix (as `im2vec extract --prefix photo:` keys them)."""
    from PIL import Image

    d = tmp_path_factory.mktemp("photo")
    (d / "docs.txt").write_text((corpus / "docs.txt").read_text(encoding="utf-8").replace("img:", "photo:"),
                                encoding="utf-8")
    store = FeatureStore.open(corpus / "store")
    FeatureStore.from_arrays(d / "store", [k.replace("img:", "photo:") for k in store.keys], np.asarray(store.vectors))
    assert _run("split", d / "docs.txt", "-o", d / "split", "--prefix", "photo:", "--seed", "p").exit_code == 0
    res = _run("train", d / "split" / "train.txt", "-f", d / "store", "-o", d / "m.model", "--vector-size", "8",
               "--epochs", "1", "--min-count", "1", "--workers", "1")
    assert res.exit_code == 0, res.output
    (d / "photos").mkdir()
    for r in _jsonl(d / "split" / "test.jsonl")[:3]:
        Image.new("RGB", (20, 20), (200, 60, 30)).save(d / "photos" / f"{r['key'].removeprefix('photo:')}.png")
    (d / "other").mkdir()
    Image.new("RGB", (20, 20), (0, 0, 0)).save(d / "other" / "stranger.png")
    return d


def test_report_images_that_match_no_key_are_an_error_that_names_the_prefix(photo_model, tmp_path):
    """--images keyed with report's --prefix (img:) while the model's and the test's images are
    photo:…: the report had no thumbnail and said nothing."""
    pytest.importorskip("matplotlib", reason="im2vec report needs the [report] extra")
    d = photo_model
    args = ["report", d / "m.model", "--test", d / "split" / "test.jsonl", "--features", d / "store",
            "--max-test-images", "5", "--map-method", "pca"]
    res = _run(*args, "-o", tmp_path / "rep", "--images", d / "photos")
    assert res.exit_code == 1, res.output
    text = _flat(res.output)
    assert f"--images {d / 'photos'}: none of its 3 image files is a held-out image or an image of MODEL" in text
    assert "keyed with --prefix 'img:'" in text and "pass --prefix 'photo:', the prefix of the images' keys" in text, text
    assert not (tmp_path / "rep").exists()
    res = _run(*args, "-o", tmp_path / "ok", "--images", d / "photos", "--images", d / "other", "--prefix", "photo:")
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "ok" / "thumbs").iterdir())) == 3
    # one folder of two matches nothing: a warning names it (the other gives thumbnails)
    assert f"warning: --images {d / 'other'} gives no thumbnail: none of its 1 image file is" in _flat(res.output)


def test_min_tag_images_without_zero_shot_share_is_refused(corpus, tmp_path):
    # it only says which tags may be zero-shot; without --zero-shot-share it was ignored without a word
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "s", "--min-tag-images", "5")
    assert res.exit_code == 2, res.output
    assert "--min-tag-images says which tags may be zero-shot, and without --zero-shot-share" in _flat(res.output)
    assert not (tmp_path / "s").exists()
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "z", "--min-tag-images", "5", "--zero-shot-share", "0.2")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "z" / "split.json").read_text())["config"]["min_tag_images"] == 5
    # a share of 0 given beside it is the user's choice (a script's sweep down to 0): taken
    res = _run("split", corpus / "docs.txt", "-o", tmp_path / "z0", "--min-tag-images", "5", "--zero-shot-share", "0")
    assert res.exit_code == 0, res.output


def test_the_rerun_command_of_a_split_without_zero_shot_tags_is_accepted(corpus, tmp_path):
    """The command an unfinished split's message gives (from its split.json) is one `im2vec split`
    takes: a split made without --zero-shot-share records min_tag_images 2, and the command gave it
    as --min-tag-images 2 beside --zero-shot-share 0.0, which `im2vec split` refuses."""
    folder = tmp_path / "s"
    assert _run("split", corpus / "docs.txt", "-o", folder).exit_code == 0
    record = json.loads((folder / "split.json").read_text())
    (folder / "split.json").write_text(json.dumps({**record, "complete": False}))  # (as an interrupted split leaves it)
    said = _flat(_run("split", folder / "train.txt", "-o", tmp_path / "s2").output)
    assert "Run the split again with the same arguments" in said, said
    words = shlex.split(said.split("whole: `", 1)[1].split("`", 1)[0])
    res = _run(*words[1:])
    assert res.exit_code == 0, res.output
    assert json.loads((folder / "split.json").read_text())["complete"] is True
