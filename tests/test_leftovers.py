"""Defects left by the audits: CSV fields over 128 KiB, `limit` reading one record more, a builder
replacing a user's file in its own folder, and stale companion files of an earlier model save."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from gensim_im2vec import datasets as ds
from gensim_im2vec.corpora import FolderCorpus, MixedCorpus, TableCorpus, TextCorpus, YFCC100MCorpus
from gensim_im2vec.fileio import atomic_save


# ---------------------------------------------------------------- 1. long CSV/TSV fields
@pytest.mark.parametrize("sep", [",", "\t"])
def test_table_reads_fields_longer_than_the_csv_modules_limit(tmp_path, sep):
    # such rows were dropped as bad_row ("field larger than field limit (131072)"), and the lines
    # of a long quoted caption that followed were read as records (thousands of wrong_columns)
    path = tmp_path / ("t.tsv" if sep == "\t" else "t.csv")
    long_line = "word " * 40_000  # 200 KB on one line
    long_quoted = "many lines\n" * 20_000  # 220 KB across lines
    path.write_text(f"image{sep}caption\na.png{sep}{long_line}\nb.png{sep}short one\nc.png{sep}\"{long_quoted}\"\n")
    limit_before = csv.field_size_limit()
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"])
    docs = list(corpus)
    assert [d[0] for d in docs] == ["img:a", "img:b", "img:c"] and not corpus.stats.skipped
    assert len(docs[0]) == 1 + 40_000 and len(docs[2]) == 1 + 40_000
    assert csv.field_size_limit() == limit_before  # the process's limit is left as it was


def test_a_field_longer_than_max_line_bytes_is_skipped_as_too_long_naming_its_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('image,caption\na.png,ok\nb.png,"' + ("y" * 90 + "\n") * 2000 + '"\n')
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"], max_line_bytes=1000)
    docs = list(corpus)
    assert docs[0] == ["img:a", "ok"]
    assert corpus.stats.skipped["too_long"] == 1 and corpus.stats.examples["too_long"] == [f"{path}:3"]
    assert "bad_row" not in corpus.stats.skipped  # was bad_row: the fix (max_line_bytes) was not named


def test_a_huge_max_line_bytes_does_not_overflow_the_csv_limit(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("image,caption\na.png,a cat\n")
    assert list(TableCorpus(path, image_column="image", text_columns=["caption"], max_line_bytes=2**63 - 1)) == [
        ["img:a", "cat"]
    ]


# ---------------------------------------------------------------- 2. limit=N reads N records, not N+1
def _five(tmp_path, kind):
    lines = [f"{i}\tu\tn\t2010\t2010\tcam\ttitle{i}\t\ttag{i}\t\t\t\t\t\t\t\t\t\t\t\t\t\t0" for i in range(5)]
    if kind == "yfcc":
        (tmp_path / "y.tsv").write_text("\n".join(lines) + "\n")
        return YFCC100MCorpus(tmp_path / "y.tsv", limit=2)
    if kind == "text":
        (tmp_path / "t.txt").write_text("".join(f"line number {i}\n" for i in range(5)))
        return TextCorpus(tmp_path / "t.txt", limit=2)
    if kind == "csv":
        (tmp_path / "t.csv").write_text("image,caption\n" + "".join(f"{i}.png,cat {i}\n" for i in range(5)))
        return TableCorpus(tmp_path / "t.csv", image_column="image", text_columns=["caption"], limit=2)
    if kind == "jsonl":
        (tmp_path / "t.jsonl").write_text("".join(json.dumps({"image": f"{i}", "tags": ["cat"]}) + "\n" for i in range(5)))
        return TableCorpus(tmp_path / "t.jsonl", image_column="image", tag_columns=["tags"], limit=2)
    for i in range(5):  # folder
        (tmp_path / f"{i}.png").write_bytes(b"png")
        (tmp_path / f"{i}.txt").write_text(f"a cat {i}")
    return FolderCorpus(tmp_path, limit=2)


@pytest.mark.parametrize("kind", ["yfcc", "text", "csv", "jsonl", "folder"])
def test_limit_stops_reading_after_the_limit(tmp_path, kind):
    corpus = _five(tmp_path, kind)
    assert len(list(corpus)) == 2
    assert corpus.stats.lines == 2, corpus.stats.summary()  # was 3: the record after the limit was read too
    assert corpus.stats.documents == 2


def test_limit_zero_reads_nothing(tmp_path):
    corpus = _five(tmp_path, "text")
    corpus.limit = 0
    assert list(corpus) == [] and corpus.stats.lines == 0


class _Counted:
    """A restartable corpus that counts the documents taken from it and fails on any past `fail_after`."""

    def __init__(self, docs, fail_after=None):
        self.docs, self.fail_after, self.taken = docs, fail_after, 0

    def __iter__(self):
        for i, d in enumerate(self.docs):
            if self.fail_after is not None and i >= self.fail_after:
                raise AssertionError("read past the limit")
            self.taken += 1
            yield d


def test_mixed_corpus_limit_takes_no_document_past_it():
    text = _Counted([["a", "b"]] * 10)
    images = _Counted([["img:1", "x"]] * 10, fail_after=2)  # its third document would fail the pass
    assert len(list(MixedCorpus(text, images, ratio=1, limit=4))) == 4  # text, image, text, image
    assert (text.taken, images.taken) == (2, 2)


def test_dictionary_text_limit_reads_no_entry_past_it(tmp_path, monkeypatch):
    root = tmp_path / "games"
    root.mkdir()
    (root / "fortunes").write_text("unused\n")

    def two_then_broken(_root):
        yield "the first fortune here"
        yield "the second fortune here"
        raise AssertionError("read past the limit")

    monkeypatch.setattr(ds, "_fortune_entries", two_then_broken)
    m = ds.build_dictionary_text(tmp_path / "out", limit=2, sources=("fortunes",), fortunes_root=root)
    assert m["documents"] == 2
    assert (tmp_path / "out" / "fortunes.txt").read_text().splitlines() == ["the first fortune here",
                                                                             "the second fortune here"]


# ---------------------------------------------------------------- 3. a file of the user's in the builder's folder
def _svg(title, tags):
    lis = "".join(f"<rdf:li>{t}</rdf:li>" for t in tags)
    return ('<svg xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><rdf:RDF><cc:Work rdf:about="">'
            f"<dc:title>{title}</dc:title><dc:subject><rdf:Bag>{lis}</rdf:Bag></dc:subject>"
            "</cc:Work></rdf:RDF></metadata><path d='M0 0'/></svg>")


def _clipart(tmp_path):
    svg_root, png_root = tmp_path / "svg", tmp_path / "png"
    for rel, title in (("animals/cat", "A cat"), ("animals/dog", "A dog"), ("plants/rose", "A rose")):
        (svg_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (svg_root / f"{rel}.svg").write_text(_svg(title, [title.split()[-1]]))
        (png_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (png_root / f"{rel}.png").write_bytes(b"png " + rel.encode())
    return svg_root, png_root


def test_build_does_not_replace_a_users_image_at_an_items_name_in_its_own_folder(tmp_path):
    # a user adds their own items to a built folder (FolderCorpus reads them along); a larger build
    # replaced the user's animals/dog.png and .json by the collection's drawing without a word
    svg_root, png_root = _clipart(tmp_path)
    out = tmp_path / "oc"
    assert ds.build_openclipart(out, svg_root=svg_root, png_root=png_root, limit=1)["images"] == 1
    (out / "animals" / "dog.png").write_bytes(b"my own dog")
    (out / "animals" / "dog.json").write_text(json.dumps({"title": "my dog", "tags": ["dog"]}))
    with pytest.raises(FileExistsError) as err:
        ds.build_openclipart(out, svg_root=svg_root, png_root=png_root)
    message = str(err.value)
    assert str(out / "animals" / "dog.png") in message and "'animals/dog'" in message
    assert "Move 'dog.png' out of" in message and "rerun" in message
    assert (out / "animals" / "dog.png").read_bytes() == b"my own dog"
    assert json.loads((out / "animals" / "dog.json").read_text()) == {"title": "my dog", "tags": ["dog"]}
    # no temporary file left; the build's lock and the marker of its unfinished build are there
    assert {p.name for p in out.rglob("*") if p.name.startswith(".")} == {".lock", ds.UNFINISHED_BUILD}
    (out / "animals" / "dog.png").rename(tmp_path / "dog.png")
    (out / "animals" / "dog.json").rename(tmp_path / "dog.json")
    m = ds.build_openclipart(out, svg_root=svg_root, png_root=png_root)  # the build resumes
    assert m["images"] == 3 and m["resumed"] == 1 and m["built"] == 2


def test_build_rewrites_its_own_items_and_an_interrupted_ones_png(tmp_path):
    svg_root, png_root = _clipart(tmp_path)
    out = tmp_path / "oc"
    ds.build_openclipart(out, svg_root=svg_root, png_root=png_root)
    (out / "animals" / "dog.json").unlink()  # interrupted between the PNG and its sidecar: same bytes
    m = ds.build_openclipart(out, svg_root=svg_root, png_root=png_root, drop_tags=False)  # other settings
    assert m["built"] == 3 and m["images"] == 3


# ---------------------------------------------------------------- 4. stale companion files of an earlier save
@pytest.mark.parametrize("name", ["w.model", "w.model.gz"])
def test_a_second_save_removes_the_first_saves_companions_it_does_not_write(tmp_path, name):
    from gensim.models import Word2Vec

    model = Word2Vec([["a", "b", "c"]] * 5, vector_size=4, min_count=1, workers=1, seed=1)
    path = tmp_path / name
    ext = "npz" if name.endswith(".gz") else "npy"
    atomic_save(model, tmp_path / "w.model.v2", sep_limit=0)  # another model, whose names extend ours
    (tmp_path / f"{name}.mine.{ext}").write_bytes(b"the user's own array file")
    atomic_save(model, path, sep_limit=0)
    first = {f"{name}.syn1neg.{ext}", f"{name}.wv.vectors.{ext}", f"{name}.wv.vectors_lockf.{ext}"}
    assert first <= set(os.listdir(tmp_path))
    atomic_save(model, path)  # every array small enough to go into the main file: no companion
    left = set(os.listdir(tmp_path))
    assert not first & left, left  # they stayed, read by nothing
    assert {name, f"{name}.mine.{ext}", "w.model.v2", "w.model.v2.wv.vectors.npy"} <= left
    assert np.array_equal(Word2Vec.load(str(path)).wv["a"], model.wv["a"])
    assert np.array_equal(Word2Vec.load(str(tmp_path / "w.model.v2")).wv["a"], model.wv["a"])


def test_a_save_over_a_file_that_is_no_gensim_pickle_removes_nothing(tmp_path):
    from gensim.models import KeyedVectors

    (tmp_path / "kv").write_text("not a pickle")
    (tmp_path / "kv.vectors_old.npy").write_bytes(b"x")
    kv = KeyedVectors(2)
    kv.add_vectors(["a"], np.ones((1, 2), dtype=np.float32))
    atomic_save(kv, tmp_path / "kv")
    assert sorted(os.listdir(tmp_path)) == ["kv", "kv.vectors_old.npy"]
