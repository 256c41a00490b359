"""Defects of the document readers found in an audit: a stray double quote in a CSV/TSV field that
swallowed the rows after it, a UTF-8 byte order mark that lost the first image of a documents file
read by ``corpus_file=`` or ``im2vec train``, and ``fields=("machine_tags",)`` that gave no word; then a
stray quote that closed at the end of a field lines later (the rows between merged into one caption), a
header naming a column twice, and a ``;``-separated CSV read as comma-separated."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import re

import numpy as np
import pytest

from gensim_im2vec.corpora import TableCorpus, YFCC100MCorpus
from gensim_im2vec.text import Normalizer

BOM = b"\xef\xbb\xbf"


def _table(tmp_path, name, rows, sep):
    path = tmp_path / name
    path.write_text("\n".join(sep.join(r) for r in [("image", "caption"), *rows]) + "\n")
    return path


def _cars(n, start=2):
    return [(f"{i}.jpg", f"red car number {i}") for i in range(start, start + n)]


# ----------------------------------------------------------------------------- 1. stray quotes


def test_a_stray_quote_in_a_tsv_field_is_read_as_a_character(tmp_path, caplog):
    # was: 1 document of 6,003 tokens (every later row swallowed into one caption), no skip, no warning
    path = _table(tmp_path, "photos.tsv", [("1.jpg", '"Best sunset ever'), *_cars(2000)], "\t")
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"])
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        docs = list(corpus)
    assert len(docs) == 2001 and docs[0] == ["img:1", "best", "sunset"]  # "ever": a stop word
    assert docs[1] == ["img:2", "red", "car", "number"] and docs[-1][0] == "img:2001"
    assert not corpus.stats.skipped
    assert corpus.stats.repaired == {"literal_quote": 1} and corpus.stats.examples["literal_quote"] == [f"{path}:2"]
    assert f"{path}:2" in caplog.text and "literal_quote" in caplog.text
    assert "repaired literal_quote 1" in corpus.stats.summary() and corpus.stats.as_dict()["repaired"] == {
        "literal_quote": 1}


@pytest.mark.parametrize("ending", ["end of file", "a later quote"])
def test_a_stray_quote_in_a_tsv_field_closed_by_a_later_quote_or_the_end(tmp_path, ending):
    last = [("9.jpg", 'he said "hi" twice')] if ending == "a later quote" else []
    path = _table(tmp_path, "t.tsv", [("1.jpg", '"Best sunset ever'), *_cars(5), *last], "\t")
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"])
    docs = list(corpus)
    assert [d[0] for d in docs] == ["img:1", "img:2", "img:3", "img:4", "img:5", "img:6"] + (["img:9"] if last else [])
    assert corpus.stats.repaired == {"literal_quote": 1} and not corpus.stats.skipped


def test_a_stray_quote_in_a_csv_costs_its_row_counted_not_the_rows_after_it(tmp_path, caplog):
    # was: the quote ate up to max_line_bytes of the rows after it (200,001 rows -> 66,167 documents),
    # counted as one too_long record; here the field limit is 128 KiB: ~6,500 rows of 20 bytes
    path = _table(tmp_path, "big.csv", [("1.jpg", '"Best sunset ever'), *_cars(10_000)], ",")
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"], max_line_bytes=1000)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        docs = list(corpus)
    assert [d[0] for d in docs] == [f"img:{i}" for i in range(2, 10_002)]
    assert corpus.stats.skipped == {"too_long": 1} and corpus.stats.examples["too_long"] == [f"{path}:2"]
    assert "stray double quote" in caplog.text and f"{path}:2" in caplog.text


def test_a_quoted_csv_field_over_max_quoted_lines_is_skipped_and_reading_goes_on(tmp_path):
    path = _table(tmp_path, "t.csv", [("1.jpg", '"Best sunset ever'), *_cars(300)], ",")
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"], max_quoted_lines=50)
    assert [d[0] for d in corpus] == [f"img:{i}" for i in range(2, 302)]
    assert corpus.stats.skipped == {"too_long": 1} and corpus.stats.examples["too_long"] == [f"{path}:2"]
    with pytest.raises(ValueError, match="max_quoted_lines must be None or >= 1"):
        TableCorpus(path, image_column="image", text_columns=["caption"], max_quoted_lines=0)


def test_a_csv_quote_that_never_closes_is_a_bad_quote_naming_its_line(tmp_path, caplog):
    # was: ["img:x", "unterminated", "quote", "fine", "words", "words"]: two rows gone, nothing said
    path = tmp_path / "q.csv"
    path.write_text('image,caption\nx.png,"unterminated quote\ny.png,fine words\nz.png,more words\n')
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"])
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        assert list(corpus) == [["img:y", "fine", "words"], ["img:z", "words"]]
    assert corpus.stats.skipped == {"bad_quote": 1} and corpus.stats.examples["bad_quote"] == [f"{path}:2"]
    assert corpus.stats.malformed == 1 and "bad_quote" in caplog.text and f"{path}:2" in caplog.text


def test_a_csv_quote_closed_by_a_later_stray_quote_does_not_merge_the_rows_between(tmp_path):
    # was: row 1's caption ran to the quote on line 4 and the rows between were gone (a valid 2-column row)
    path = tmp_path / "t.csv"
    path.write_text('image,caption\n1.jpg,"Best sunset\n2.jpg,red car\n3.jpg,"quoted" caption\n4.jpg,ok go\n')
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"])
    assert list(corpus) == [["img:2", "red", "car"], ["img:3", "quoted", "caption"], ["img:4", "ok", "go"]]
    assert corpus.stats.skipped == {"bad_quote": 1} and corpus.stats.examples["bad_quote"] == [f"{path}:2"]


@pytest.mark.parametrize("sep", [",", "\t"])
def test_well_formed_quoting_as_csv_and_pandas_write_it_is_still_read(tmp_path, sep):
    rows = [("a.png", "a caption\nwith a line break"), ("b.png", 'he said "hi"'), ("c.png", "tab\there, comma"),
            ("d.png", "plain words"), ("e.png", '"quoted from the start"\n\nand two breaks')]
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\n").writerows([("image", "caption"), *rows])
    path = tmp_path / ("t.tsv" if sep == "\t" else "t.csv")
    path.write_text(buf.getvalue())
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"])
    assert list(corpus) == [["img:a", "caption", "line", "break"], ["img:b", "said", "hi"],
                            ["img:c", "tab", "comma"], ["img:d", "plain", "words"],
                            ["img:e", "quoted", "start", "two", "breaks"]]  # fmt: skip
    assert not corpus.stats.skipped and not corpus.stats.repaired
    assert not corpus.stats.examples


def test_a_quote_inside_one_line_is_read_leniently_as_before(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('image,caption\nx.png,"ab"cd ef\ny.png,"hello" world\nz.png,fine words\n')
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"])
    assert list(corpus) == [["img:x", "abcd", "ef"], ["img:y", "hello", "world"], ["img:z", "fine", "words"]]
    assert not corpus.stats.skipped


def test_a_header_with_a_quote_that_never_closes_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('image,"caption\nx.png,a cat\n')
    with pytest.raises(ValueError, match=r"t\.csv:1: cannot read the header row \(a double quote opens a field"):
        list(TableCorpus(path, image_column="image", text_columns=["caption"]))


# ----------------------------------------------------------------------------- 2. byte order mark


def _bom_docs(tmp_path, n=40):
    path = tmp_path / "docs.txt"
    with open(path, "w", encoding="utf-8-sig") as f:
        for i in range(n):
            f.write(f"img:{i} {('cat', 'car')[i % 2]} photo\n")
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_corpus_file_with_a_byte_order_mark_keeps_its_first_image(tmp_path, workers):
    # was: the first token became the word '\ufeffimg:0' and image img:0 was not trained
    from gensim_im2vec import Im2Vec

    rng = np.random.default_rng(0)
    feats = {f"img:{i}": rng.normal(size=16) + (5.0 if i % 2 else -5.0) for i in range(40)}
    path = _bom_docs(tmp_path)
    m = Im2Vec(corpus_file=str(path), image_features=feats, vector_size=8, min_count=1, workers=workers, sample=0,
               epochs=2)  # fmt: skip
    assert "\ufeffimg:0" not in m.wv.key_to_index
    assert m.is_image("img:0") and len(m.image_keys) == 40


def test_read_documents_and_the_vocabulary_scan_drop_the_byte_order_mark(tmp_path):
    from gensim_im2vec.corpusfile import byte_ranges, corpus_file_sentences, read_documents

    path = str(_bom_docs(tmp_path, 5))
    docs = list(read_documents(path, 0, os.path.getsize(path)))
    assert docs[0] == ["img:0", "cat", "photo"] and len(docs) == 5
    assert [d for lo, hi in byte_ranges(path, 3) for d in read_documents(path, lo, hi)] == docs
    assert list(corpus_file_sentences(path)) == docs


def test_line_documents_is_gensims_line_sentence_less_the_byte_order_mark(tmp_path):
    from gensim.models.word2vec import LineSentence

    from gensim_im2vec.corpora import LineDocuments

    text = "img:0  cat\tphoto\n\n\u00a0spaced  out \n" + " ".join(f"w{i}" for i in range(25_000)) + "\nlast\n"
    plain, marked, gz = tmp_path / "p.txt", tmp_path / "b.txt", tmp_path / "p.txt.gz"
    plain.write_text(text, encoding="utf-8")
    marked.write_bytes(BOM + text.encode())
    gz.write_bytes(gzip.compress(text.encode()))
    want = list(LineSentence(str(plain)))
    assert [len(d) for d in want] == [3, 2, 10_000, 10_000, 5_000, 1]
    assert list(LineDocuments(str(plain))) == want == list(LineDocuments(plain)) == list(LineDocuments(str(gz)))
    assert list(LineDocuments(str(marked))) == want  # gensim's: ['\ufeffimg:0', 'cat', 'photo'] first
    assert list(LineSentence(str(marked)))[0][0] == "\ufeffimg:0"
    for kw in ({"limit": 2}, {"max_sentence_length": 7}):
        assert list(LineDocuments(str(marked), **kw)) == list(LineSentence(str(plain), **kw))
    with open(marked, "rb") as f:  # a file object, read again on each pass
        docs = LineDocuments(f)
        assert list(docs) == want and list(docs) == want
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    with pytest.raises(UnicodeDecodeError):  # strict, as gensim's
        list(LineDocuments(str(bad)))


def test_im2vec_train_on_a_documents_file_with_a_byte_order_mark_trains_every_image(tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main
    from gensim_im2vec.model import Im2Vec
    from gensim_im2vec.store import FeatureStore

    keys = [f"img:{i}" for i in range(40)]
    FeatureStore.from_arrays(tmp_path / "feats", keys, np.random.default_rng(0).normal(size=(40, 16)).astype("float32"))
    path = _bom_docs(tmp_path)
    r = CliRunner().invoke(main, ["train", str(path), "-f", str(tmp_path / "feats"), "-o", str(tmp_path / "m.model"),
                                  "--min-count", "1", "--epochs", "1", "--workers", "1", "--vector-size", "8"])
    assert r.exit_code == 0, r.output
    model = Im2Vec.load(str(tmp_path / "m.model"))
    assert sorted(model.image_keys) == sorted(keys) and "\ufeffimg:0" not in model.wv.key_to_index


# ----------------------------------------------------------------------------- 3. machine tags


def _yfcc(tmp_path, tags="beach,sea", machine="uploaded:by=flickrmobile,taxonomy:common=lion,vision:outdoor=0.9"):
    row = ["5", "u", "nick", "2012", "13", "Canon", "Sunset", "", tags, machine, *[""] * 11, "jpg", "0"]
    path = tmp_path / "yfcc.tsv"
    path.write_text("\t".join(row) + "\n")
    return path


def test_the_machine_tags_field_gives_the_machine_tags_as_words(tmp_path):
    # was: the default Normalizer dropped every machine tag: every photo skipped as no_text
    norm = Normalizer(track_vocab=False)
    corpus = YFCC100MCorpus(_yfcc(tmp_path), fields=("machine_tags",), normalizer=norm)
    assert list(corpus) == [["img:5", "uploaded_by_flickrmobile", "taxonomy_common_lion", "vision_outdoor"]]
    assert not corpus.stats.skipped
    assert norm.machine_tags and norm.stats.raw_tokens == 3  # the caller's normaliser: unchanged, and counting
    # in the tags column a machine tag is still noise
    corpus = YFCC100MCorpus(_yfcc(tmp_path, tags="beach,geo:lat=40.7"), fields=("tags", "machine_tags"))
    assert list(corpus) == [["img:5", "beach", "uploaded_by_flickrmobile", "taxonomy_common_lion", "vision_outdoor"]]


def test_cli_normalize_fields_machine_tags(tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    out = tmp_path / "docs.txt"
    r = CliRunner().invoke(main, ["normalize", str(_yfcc(tmp_path)), "-o", str(out), "--fields", "machine_tags"])
    assert r.exit_code == 0, r.output
    assert out.read_text() == "img:5 uploaded_by_flickrmobile taxonomy_common_lion vision_outdoor\n"


def test_a_malformed_record_is_warned_once_not_on_every_pass(tmp_path, caplog):
    """gensim reads a corpus once for the vocabulary and once per epoch: train_folder.py printed the
    same 'skipped 1 malformed records' warning epochs + 1 times."""
    import logging

    from gensim_im2vec.corpora import TableCorpus

    path = tmp_path / "t.csv"
    path.write_text("image,caption\na.jpg,a dog\nb.jpg,a cat,extra\nc.jpg,a cow\n", encoding="utf-8")
    corpus = TableCorpus(str(path), image_column="image", text_columns=["caption"])
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        for _ in range(4):
            assert len(list(corpus)) == 2
    assert caplog.text.count("skipped 1 malformed records") == 1
    assert corpus.stats.skipped["wrong_columns"] == 1  # still counted on every pass
    path.write_text("image,caption\na.jpg,a dog\nb.jpg,x,y\nc.jpg,u,v\n", encoding="utf-8")  # the file changed
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        list(corpus)
    assert caplog.text.count("malformed records") == 2


# ----------------------------------------------------------------------------- 4. rows merged by a quote; headers


@pytest.mark.parametrize("sep", [",", "\t"])
def test_rows_merged_by_a_stray_quote_closing_at_a_field_end_are_read_as_rows(tmp_path, caplog, sep):
    # was: [["img:1", "best", "sunset", "red", "car"], ...]: the quote on line 2 closed at the end of line 4, rows 2
    # and 3 went into row 1's caption, and nothing was counted or said. Captions across lines stay one field.
    lines = [("image", "caption", "tags"), ("1.jpg", '"Best sunset', "sky"), ("2.jpg", "red car", "car"),
             ("3.jpg", 'said hi"', "dog"), ("4.jpg", '"A caption', ""), ('across lines"', "x"),
             ("5.jpg", '"Day one, beach', ""), ('Day two, park"', "sea"), ("6.jpg", '"Monday', ""),
             ('Tuesday, rain"', "x"), ("7.jpg", "ok go", "")]  # fmt: skip
    path = tmp_path / ("t.tsv" if sep == "\t" else "t.csv")
    path.write_text("\n".join(sep.join(x) for x in lines) + "\n")
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"])
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        docs = list(corpus)
    assert docs == [["img:1", "best", "sunset"], ["img:2", "red", "car"], ["img:3", "said", "hi"],
                    ["img:4", "caption", "across", "lines"], ["img:5", "day", "one", "beach", "day", "two", "park"],
                    ["img:6", "monday", "tuesday", "rain"], ["img:7", "ok", "go"]]  # fmt: skip
    assert corpus.stats.repaired == {"suspect_quote": 1} and not corpus.stats.skipped
    assert corpus.stats.examples == {"suspect_quote": [f"{path}:2-4"]}
    assert f"{path}:2-4" in caplog.text and "suspect_quote" in caplog.text and "stray quote" in caplog.text


@pytest.mark.parametrize("text, key", [
    ('image,caption\n1.jpg,"Best sunset\n2.jpg,red car\n3.jpg,said hi"\n4.jpg,ok go\n', "img:1"),
    ('id,caption\n123,"Our trip to Rome\n2019, best year ever"\n124,plain row\n', "img:123"),  # review, 2026-12-05
    ('image,caption\nphoto1,"Went to the beach\nSunny, warm"\nphoto2,plain row\n', "img:photo1"),
])
def test_in_a_table_of_two_columns_a_field_across_lines_is_kept_and_warned_about(tmp_path, caplog, text, key):
    """With two columns a caption line ("2019, best year ever") splits into a key and a text as a row
    does: splitting made documents of images that do not exist ("img:2019", "img:Sunny"). The field is
    kept whole, counted and warned about with its lines."""
    path = tmp_path / "t.csv"
    path.write_text(text)
    corpus = TableCorpus(path, image_column=text.split(",")[0], text_columns=["caption"])
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        docs = list(corpus)
    assert [d[0] for d in docs] == [key, docs[-1][0]] and len(docs) == 2
    assert corpus.stats.repaired == {"suspect_quote_kept": 1}
    assert corpus.stats.examples["suspect_quote_kept"][0].startswith(f"{path}:2-")
    assert "suspect_quote_kept" in caplog.text and "kept whole" in caplog.text


def test_merged_rows_keyed_by_photo_ids_with_the_quote_in_a_middle_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,description,tags\n1001,"Sunset at,sea\n1002,red car,car\n1003,a 12",art\n1004,ok,dog\n'
                    '1005,"Taken at the beach.\n\nCanon EOS, 50mm",sea\n')
    corpus = TableCorpus(path, image_column="id", text_columns=["description"], tag_columns=["tags"])
    assert list(corpus) == [["img:1001", "sea", "sunset"], ["img:1002", "car", "red", "car"], ["img:1003", "art"],
                            ["img:1004", "dog", "ok"], ["img:1005", "sea", "taken", "beach", "canon", "eos", "50mm"]]
    assert corpus.stats.examples == {"suspect_quote": [f"{path}:2-4"]}


def test_a_header_naming_a_column_asked_for_twice_is_an_error_naming_both_positions(tmp_path):
    # was: [["img:1", "dog"]]: the first tags column ("cat") was dropped without a word
    path = tmp_path / "t.csv"
    path.write_text("image,tags,caption,tags\n1.jpg,cat,a photo,dog\n")
    with pytest.raises(ValueError, match=r"t\.csv: the header names the column 'tags' more than once, as columns 2 "
                                         r"and 4 .*Rename one in the header \(e\.g\. 'tags_2'\)"):
        list(TableCorpus(path, image_column="image", text_columns=["caption"], tag_columns=["tags"]))
    path.write_text("image,notes,caption,notes\n1.jpg,x,sunny beach,y\n")  # a column not asked for may repeat
    assert list(TableCorpus(path, image_column="image", text_columns=["caption"])) == [["img:1", "sunny", "beach"]]


@pytest.mark.parametrize(("sep", "what", "fix"), [(";", "semicolon", "delimiter=';'"), ("|", "pipe", "delimiter='|'"),
                                                  ("\t", "tab", "format='tsv'")])
def test_a_table_separated_otherwise_says_which_separator_to_pass(tmp_path, sep, what, fix):
    # was: "columns ['image', 'caption'] not in the header ['image;caption']", and no way to pass the separator
    path = tmp_path / "t.csv"
    path.write_text(sep.join(["image", "caption"]) + "\n" + sep.join(["1.jpg", '"a dog' + sep + ' brown"']) + "\n"
                    + sep.join(["2.jpg", "a cat"]) + "\n")
    with pytest.raises(ValueError, match=rf"looks {what}-separated .*pass {re.escape(fix)}"):
        list(TableCorpus(path, image_column="image", text_columns=["caption"]))
    corpus = TableCorpus(path, image_column="image", text_columns=["caption"], delimiter=sep)
    assert list(corpus) == [["img:1", "dog", "brown"], ["img:2", "cat"]] and not corpus.stats.skipped


def test_the_delimiter_is_checked(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("image;caption\n1.jpg;a cat\n")
    for bad in ("ab", "", '"', "\n", 5):
        with pytest.raises(ValueError, match="delimiter must be one character"):
            TableCorpus(path, image_column="image", text_columns=["caption"], delimiter=bad)
    (tmp_path / "t.jsonl").write_text('{"image": "1.jpg", "caption": "a cat"}\n')
    with pytest.raises(ValueError, match="applies to CSV/TSV tables"):
        TableCorpus(tmp_path / "t.jsonl", image_column="image", text_columns=["caption"], delimiter=";")


@pytest.mark.parametrize("given, sep", [(";", ";"), ("|", "|"), ("tab", "\t"), ("\\t", "\t")])
def test_im2vec_normalize_reads_a_table_with_the_delimiter_given(tmp_path, given, sep):
    """``im2vec normalize --delimiter``: the CLI's way to the reader's `delimiter` (the error that
    asks for one names it); 'tab' and a typed backslash-t mean a tab."""
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    path = tmp_path / "t.csv"
    path.write_text(sep.join(["image", "caption"]) + "\n" + sep.join(["1.jpg", "a brown dog"]) + "\n")
    out = tmp_path / "docs.txt"
    args = ["normalize", str(path), "-o", str(out), "--format", "csv", "--image-column", "image",
            "--text-column", "caption"]
    if sep != "\t":
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code == 1 and f"im2vec normalize --delimiter '{sep}'" in refused.output
    result = CliRunner().invoke(main, args + ["--delimiter", given])
    assert result.exit_code == 0, result.output
    assert out.read_text().split() == ["img:1", "brown", "dog"]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"image": "1.jpg", "caption": "a cat"}\n')
    wrong = CliRunner().invoke(main, ["normalize", str(jsonl), "-o", str(tmp_path / "j.txt"), "--image-column",
                                      "image", "--text-column", "caption", "--delimiter", ";"])
    assert wrong.exit_code == 2 and "--delimiter" in wrong.output


def test_a_header_with_spaces_after_its_separators_reads_with_the_delimiter_it_names(tmp_path):
    """"id; caption": the error said to pass delimiter=';', which then failed with "columns ['caption'] not
    in the header ['id', ' caption']" (review of 2026-12-05). Header names are read without the spaces
    around them."""
    path = tmp_path / "t.csv"
    path.write_text("id; caption\n1; a brown dog\n")
    with pytest.raises(ValueError, match="delimiter=';'"):
        list(TableCorpus(path, image_column="id", text_columns=["caption"]))
    assert list(TableCorpus(path, image_column="id", text_columns=["caption"], delimiter=";")) == [
        ["img:1", "brown", "dog"]]


@pytest.mark.parametrize("body", ['"a.jpg,one two\n', "a.jpg,x,y,z\nb.jpg,p,q,r\n"], ids=["bad_quote", "wrong_columns"])
def test_malformed_records_with_no_document_left_do_not_say_the_rest_was_used(tmp_path, caplog, body):
    """Every record malformed: the warning said "the rest was used" just before `im2vec normalize`'s
    error that the file gave no documents."""
    path = tmp_path / "t.csv"
    path.write_text("image,caption\n" + body, encoding="utf-8")
    corpus = TableCorpus(str(path), image_column="image", text_columns=["caption"])
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        assert list(corpus) == []
    assert "malformed records" in caplog.text and "the rest was used" not in caplog.text
    assert "no record gave a document" in caplog.text


def test_malformed_records_beside_good_ones_still_say_the_rest_was_used(tmp_path, caplog):
    path = tmp_path / "t.csv"
    path.write_text("image,caption\na.jpg,a dog\nb.jpg,x,y,z\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        assert len(list(TableCorpus(str(path), image_column="image", text_columns=["caption"]))) == 1
    assert "the rest was used" in caplog.text and "no record gave a document" not in caplog.text
