"""Tests for gensim_im2vec.corpora: streaming, restartable readers on hand-made fixtures."""

import bz2
import gzip
import json
import logging
import os
import random
import shutil
import tracemalloc
from pathlib import Path

import pytest
from conftest import Restarting

from gensim_im2vec.corpora import (
    YFCC_COLUMNS,
    FolderCorpus,
    MixedCorpus,
    TableCorpus,
    TextCorpus,
    YFCC100MCorpus,
    encode_key,
    image_key,
    walk_dirs,
)
from gensim_im2vec.text import Normalizer

DATA = Path(__file__).parent / "data"

YFCC_DOCS = [
    ["dog", "new_york", "butcherwhite", "kennels_sitejoplin", "dog", "rex", "rex", "beach"],
    ["guitar", "黃山", "udstillinger"],
    ["sunset", "sea", "beach", "sunset", "sea", "taken", "new", "camera"],
]



def test_yfcc_column_names():
    assert len(YFCC_COLUMNS) == 22  # 23 with the photo id, 25 with line number and hash
    assert YFCC_COLUMNS[5:8] == ("title", "description", "tags") and YFCC_COLUMNS[-1] == "marker"


def test_yfcc_23_columns_with_malformed_lines(caplog):
    corpus = YFCC100MCorpus(DATA / "yfcc23.tsv")
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.corpora"):
        docs = list(corpus)
    assert [d[0] for d in docs] == ["img:6985418911", "img:3049276051", "img:4172610339"]
    assert [d[1:] for d in docs] == YFCC_DOCS
    st = corpus.stats
    assert st.lines == 8 and st.documents == 3
    assert st.skipped == {"wrong_columns": 1, "bad_encoding": 1, "video": 1, "bad_marker": 1, "no_text": 1}
    assert st.malformed == 3
    assert st.examples["bad_encoding"] == [f"{DATA / 'yfcc23.tsv'}:4"]
    assert "skipped 3 malformed records" in caplog.text and "yfcc23.tsv:3" in caplog.text


@pytest.mark.parametrize("name", ["yfcc25.tsv", "yfcc25.tsv.bz2"])
def test_yfcc_25_columns_plain_and_bz2(name):
    by_hash = list(YFCC100MCorpus(DATA / name, key="hash"))
    assert [d[0] for d in by_hash] == [
        "img:01267f59f5a2ef449dbfb30d080fb",
        "img:e2d7b6f8c0a94f1e8b3e1a9d2c4f6a8b",
        "img:9b1f3e5d7c9a1b3d5f7e9c1a3b5d7f9e",
    ]
    assert [d[1:] for d in by_hash] == YFCC_DOCS
    by_id = YFCC100MCorpus(DATA / name, key="id")
    assert [d[0] for d in by_id][:2] == ["img:6985418911", "img:3049276051"]
    # the row with an empty hash is only malformed when the hash is the key
    assert "missing_key" not in by_id.stats.skipped
    assert [d[0] for d in YFCC100MCorpus(DATA / name, key="line")][:2] == ["img:0", "img:1"]


def test_yfcc_gzip_and_options(tmp_path):
    gz = tmp_path / "meta.gz"
    gz.write_bytes(gzip.compress((DATA / "yfcc23.tsv").read_bytes()))
    assert [d[1:] for d in YFCC100MCorpus(gz)] == YFCC_DOCS
    tags_only = list(YFCC100MCorpus(gz, fields=["tags"]))
    assert tags_only[0] == ["img:6985418911", "dog", "new_york", "butcherwhite", "kennels_sitejoplin"]
    title_only = list(YFCC100MCorpus(gz, fields=["title"], prefix="photo/"))
    assert title_only[0] == ["photo/6985418911", "dog", "rex"]
    with_videos = YFCC100MCorpus(gz, photos_only=False)
    assert ["img:9999999999", "video", "cat"] in [d[:3] for d in with_videos]
    machine = list(YFCC100MCorpus(gz, fields=["machine_tags"], normalizer=Normalizer(machine_tags=False)))
    assert machine[0][1:] == ["geo_lat", "uploaded_by_flickrmobile"]
    only = YFCC100MCorpus(gz, keys={"img:4172610339", "3049276051"})
    assert [d[0] for d in only] == ["img:3049276051", "img:4172610339"]
    assert only.stats.skipped["not_in_keys"] == 2
    excl = list(YFCC100MCorpus(gz, exclude={"dog", "sea"}, min_tokens=4))
    assert excl[0] == ["img:6985418911", "new_york", "butcherwhite", "kennels_sitejoplin", "rex", "rex", "beach"]
    assert len(excl) == 2  # the guitar photo has 3 words < min_tokens
    assert len(list(YFCC100MCorpus(gz, limit=2))) == 2


def test_yfcc_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        YFCC100MCorpus(tmp_path / "nope.tsv")
    with pytest.raises(ValueError, match="fields must be"):
        YFCC100MCorpus(DATA / "yfcc23.tsv", fields=["comments"])
    with pytest.raises(ValueError, match="25-column"):
        YFCC100MCorpus(DATA / "yfcc23.tsv", layout=23, key="hash")
    with pytest.raises(ValueError, match="use key='id'"):
        list(YFCC100MCorpus(DATA / "yfcc23.tsv", key="hash"))
    # forcing the wrong layout skips every line as malformed, but does not crash
    c = YFCC100MCorpus(DATA / "yfcc23.tsv", layout=25)
    assert list(c) == [] and c.stats.skipped == {"wrong_columns": 7, "bad_encoding": 1}


def test_yfcc_too_long_line_is_skipped_without_holding_it(tmp_path):
    good = (DATA / "yfcc23.tsv").read_bytes().splitlines()[0]
    long = b"\t".join([b"1"] + [b"x" * 5000] * 22)
    p = tmp_path / "long.tsv"
    p.write_bytes(good + b"\n" + long + b"\n" + good + b"\n")
    c = YFCC100MCorpus(p, max_line_bytes=4096)
    assert len(list(c)) == 2
    assert c.stats.skipped == {"too_long": 1}


def test_folder_corpus():
    corpus = FolderCorpus(DATA / "folder")
    docs = list(corpus)
    assert docs == [
        ["img:animals/cat", "ginger", "cat", "sleeping", "sofa"],
        ["img:animals/dog.01", "dog", "pet", "dog", "running", "fast", "dog", "ball"],
        ["img:animals/birds/robin", "bird", "red_breast", "garden", "robin"],
    ]
    assert corpus.stats.skipped == {"bad_json": 1, "no_sidecar": 1, "no_text": 1}
    # a folder's files, then its subfolders, each in sorted order
    assert [k for _, k in corpus.iter_images()] == [
        "animals/cat", "animals/dog.01", "animals/birds/robin", "food/apple", "food/pear", "food/soup",
    ]  # fmt: skip
    assert list(corpus) == docs
    only = FolderCorpus(DATA / "folder", keys={"animals/cat"}, prefix="i/")
    assert list(only) == [["i/animals/cat", "ginger", "cat", "sleeping", "sofa"]]


def test_image_key_rule():
    assert image_key("/r/a/b/c.x.png", "/r") == "img:a/b/c.x"
    assert image_key("/r/c.png", "/r", prefix="") == "c"


def test_table_corpus_csv_and_jsonl():
    csv_c = TableCorpus(DATA / "table.csv", image_column="image", text_columns=["caption"], tag_columns=["tags"], tag_sep="|")
    assert list(csv_c) == [
        ["img:animals/cat", "cat", "pet", "cat", "sleeping"],
        ["img:animals/dog.01", "dog", "ball", "dog", "running"],
        ["img:food/soup", "soup", "multi", "line", "caption"],
    ]
    assert csv_c.stats.skipped == {"wrong_columns": 1, "missing_key": 1}
    js = TableCorpus(DATA / "table.jsonl", image_column="image", text_columns=["caption"], tag_columns=["tags"])
    assert list(js)[-1] == ["img:food/soup", "hot", "soup"]
    assert js.stats.skipped == {"bad_json": 2}
    # the table's keys match the folder reader's keys for the same images
    folder_keys = {d[0] for d in FolderCorpus(DATA / "folder")}
    assert {d[0] for d in js} & folder_keys == {"img:animals/cat", "img:animals/dog.01"}
    with pytest.raises(ValueError, match="not in the header"):
        list(TableCorpus(DATA / "table.csv", image_column="path", text_columns=["caption"]))
    with pytest.raises(ValueError, match="text_columns or tag_columns"):
        TableCorpus(DATA / "table.csv", image_column="image")


def test_text_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("The quick brown fox.\n\nJumps over 12 lazy dogs\n")
    (tmp_path / "b.txt.bz2").write_bytes(bz2.compress(b"second file\n" + b"\xff bad\n" + b"w " * 25 + b"\n"))
    (tmp_path / "skip.csv").write_text("not read\n")
    c = TextCorpus(tmp_path, max_tokens=10, min_tokens=1, normalizer=Normalizer.for_text(min_len=1))
    docs = list(c)
    assert docs[:3] == [["the", "quick", "brown", "fox"], ["jumps", "over", "lazy", "dogs"], ["second", "file"]]
    assert [len(d) for d in docs[3:]] == [10, 10, 5]  # 25 words cut into pieces of max_tokens
    assert c.stats.skipped == {"no_text": 1, "bad_encoding": 1}
    assert list(c) == docs
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no text files"):
        TextCorpus(empty)


def test_mixed_corpus_ratio_and_modes(tmp_path):
    text = [[f"w{i}"] for i in range(5)]
    imgs = [[f"img:{i}", "x"] for i in range(4)]
    docs = list(MixedCorpus(text, imgs, ratio=0.5))
    assert [d[0] for d in docs] == ["w0", "img:0", "img:1", "w1", "img:2", "img:3", "w2", "w3", "w4"]
    docs = list(MixedCorpus(text, imgs, ratio=2, until="shortest"))
    assert [d[0] for d in docs] == ["w0", "w1", "img:0", "w2", "w3", "img:1", "w4"]
    docs = list(MixedCorpus(text, imgs, ratio=2, until="images"))
    assert [d[0] for d in docs] == ["w0", "w1", "img:0", "w2", "w3", "img:1", "w4", "w0", "img:2", "w1", "w2", "img:3"]
    docs = list(MixedCorpus([], imgs, ratio=3, until="images"))
    assert docs == imgs
    with pytest.raises(TypeError, match="restartable"):
        MixedCorpus(iter(text), imgs)
    with pytest.raises(ValueError, match="ratio must be > 0"):
        MixedCorpus(text, imgs, ratio=0)


def test_mixed_corpus_takes_an_iterator_class_whose_iter_starts_over():
    """MixedCorpus refused any corpus with ``iter(c) is c``, also an iterator class whose own ``__iter__`` starts
    over (re-iterable: gensim, and Im2Vec.train since 6839936, take it); it shares the model's check now, and
    still refuses generators, iter(list), map() and what is not iterable at all."""
    text = [[f"w{i}"] for i in range(3)]
    imgs = [[f"img:{i}", "x"] for i in range(2)]
    mixed = MixedCorpus(Restarting(text), Restarting(imgs), ratio=1)
    first = [d[0] for d in mixed]
    assert first == ["w0", "img:0", "w1", "img:1", "w2"]
    assert [d[0] for d in mixed] == first  # every pass sees the data
    for one_shot in (iter(text), (d for d in text), map(list, text)):
        with pytest.raises(TypeError, match="text is a one-shot iterator"):
            MixedCorpus(one_shot, imgs)
    with pytest.raises(TypeError, match="not iterable"):
        MixedCorpus(text, 5)


def _write_yfcc(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocab = [f"word{i}" for i in range(500)] + ["new+york", "dsc_1234", "%e9%bb%83", "butcher%2c"]
    with open(path, "w") as f:
        for i in range(n):
            tags = ",".join(rng.choice(vocab) for _ in range(rng.randint(1, 8)))
            title = "+".join(rng.choice(vocab) for _ in range(4))
            cols = [str(i), str(10**9 + i), f"{i:032x}", "1@N00", "nick", "2010-01-01", "0", "cam",
                    title, "desc+" + "+".join([title] * 6), tags, ""] + [""] * 12 + ["0"]
            cols[23] = "jpg"
            f.write("\t".join(cols) + "\n")
            if i % 1000 == 7:
                f.write("bad\tline\n")


def test_streams_are_restartable_and_constant_memory(tmp_path):
    small, large = tmp_path / "small.tsv", tmp_path / "large.tsv"
    _write_yfcc(small, 4_000)
    _write_yfcc(large, 16_000)
    assert large.stat().st_size > 5 * 1024 * 1024

    def peak(path):
        corpus = YFCC100MCorpus(path, key="hash")
        tracemalloc.start()
        try:
            n = sum(1 for _ in corpus)
            _, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return n, top, corpus

    n_small, peak_small, _ = peak(small)
    n_large, peak_large, corpus = peak(large)
    assert n_small == 4_000 and n_large == 16_000
    assert corpus.stats.skipped == {"wrong_columns": 16}
    # 4x the file, not 4x the memory: the reader holds a line, not the file
    assert peak_large < 1.3 * peak_small + 256 * 1024, (peak_small, peak_large)
    assert peak_large < large.stat().st_size / 3
    # restartable: two passes give the same documents
    c = YFCC100MCorpus(small, key="hash")
    first = [d for d in c]
    assert first == list(c) and len(first) == 4_000


def test_a_folder_corpus_that_yields_no_document_says_why(tmp_path, caplog):
    """An empty folder (or one whose images have no sidecar) was read as no documents without a
    word, and training on it failed far from the cause ("none of its keys occurs in the documents …
    document tokens like []")."""
    import numpy as np

    from gensim_im2vec import Im2Vec

    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        assert list(FolderCorpus(tmp_path / "empty")) == []
    assert f"FolderCorpus {str(tmp_path / 'empty')!r}: no documents in it" in caplog.text
    assert "it holds no image file (.png, .jpg" in caplog.text
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "a.png").write_bytes(b"")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        assert list(FolderCorpus(tmp_path / "bare")) == []
    assert "each of its 1 image files was skipped: 1 without a sidecar with words" in caplog.text
    # each reason said as it is: a sidecar that is not JSON, words filtered out; an empty keys= is no mistake
    (tmp_path / "bare" / "a.json").write_text("{not json")
    (tmp_path / "bare" / "b.png").write_bytes(b"")
    (tmp_path / "bare" / "b.json").write_text(json.dumps({"tags": ["cat"]}))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        assert list(FolderCorpus(tmp_path / "bare", exclude={"cat"})) == []
    assert "was skipped: 1 with a sidecar that is not valid JSON; 1 with fewer words" in caplog.text or \
        "was skipped: 1 with fewer words than min_tokens after the filters (exclude=, the normaliser); 1 with a " \
        "sidecar that is not valid JSON" in caplog.text, caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        assert list(FolderCorpus(tmp_path / "bare", keys=set())) == []
    assert "no documents in it" not in caplog.text
    feats = {"img:a": np.ones(4, dtype=np.float32)}
    with pytest.raises(ValueError, match=r"the corpus yielded no document, so there is nothing to train on"):
        Im2Vec(FolderCorpus(tmp_path / "empty"), image_features=feats, min_count=1, workers=1)


def test_folder_corpus_reads_a_copied_tree(tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(DATA / "folder", root)
    os.remove(root / "food" / "apple.json")
    c = FolderCorpus(root)
    assert len(list(c)) == 3 and c.stats.skipped == {"no_sidecar": 2, "no_text": 1}


def test_cli_normalize(tmp_path):
    import json

    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    runner = CliRunner()
    out, rep = tmp_path / "docs.txt", tmp_path / "report.json"
    r = runner.invoke(main, ["normalize", str(DATA / "yfcc25.tsv.bz2"), "-o", str(out), "--key", "hash",
                             "--report", str(rep)])  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[1] == "img:e2d7b6f8c0a94f1e8b3e1a9d2c4f6a8b guitar 黃山 udstillinger"
    report = json.loads(rep.read_text())
    assert report["reader"]["documents"] == 3 and report["reader"]["malformed"] == 3
    assert report["normalizer"]["removed_vocab"] > 0 and "removed" in r.output
    r = runner.invoke(main, ["normalize", str(DATA / "folder"), "-o", str(out), "--multiword", "split"])
    assert r.exit_code == 0 and "img:animals/birds/robin bird red breast garden robin" in out.read_text()
    r = runner.invoke(main, ["normalize", str(DATA / "table.csv"), "-o", str(out)])
    assert r.exit_code != 0 and "--image-column" in r.output
    r = runner.invoke(main, ["normalize", str(DATA / "table.jsonl"), "-o", str(out), "--image-column", "image",
                             "--text-column", "caption", "--limit", "1"])  # fmt: skip
    assert r.exit_code == 0 and out.read_text() == "img:animals/cat cat sleeping\n"


# ----------------------------------------------------------------------------- bad input (issue 12)


def test_keys_with_whitespace_survive_extract_normalize_and_train(tmp_path):
    """A file 'holiday 2019/my cat.png' is one image token in every step, not 'img:holiday' + words."""
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from gensim_im2vec.cli import main
    from gensim_im2vec.model import Im2Vec
    from gensim_im2vec.store import FeatureStore

    root = tmp_path / "imgs"
    names = ["holiday 2019/my cat", "holiday 2019/dog\u00a0two", "tab\tname", "plain"]
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (40 * i, 200 - 40 * i, 90)).save(root / f"{name}.png")
        (root / f"{name}.txt").write_text(f"kitten sofa color{i}")
    keys = ["img:holiday%202019/dog%C2%A0two", "img:holiday%202019/my%20cat", "img:plain", "img:tab%09name"]
    runner = CliRunner()
    r = runner.invoke(main, ["extract", str(root), "-o", str(tmp_path / "s"), "--arch", "resnet18", "--weights",
                             "none", "--device", "cpu", "--num-workers", "0", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert FeatureStore.open(tmp_path / "s").keys == keys
    r = runner.invoke(main, ["normalize", str(root), "-o", str(tmp_path / "docs.txt")])
    assert r.exit_code == 0, r.output
    heads = sorted(line.split()[0] for line in (tmp_path / "docs.txt").read_text().splitlines())
    assert heads == keys  # one token each: the document format keeps them whole
    r = runner.invoke(main, ["train", str(tmp_path / "docs.txt"), "-f", str(tmp_path / "s"), "-o",
                             str(tmp_path / "m.model"), "--vector-size", "8", "--min-count", "1", "--epochs", "1",
                             "--workers", "1"])
    assert r.exit_code == 0, r.output
    model = Im2Vec.load(str(tmp_path / "m.model"))
    assert sorted(model.image_keys) == keys
    assert not {"img:holiday", "2019/my", "cat"} & set(model.wv.key_to_index)
    assert np.isfinite(model.wv["img:holiday%202019/my%20cat"]).all()


def test_every_reader_writes_keys_by_the_one_rule(tmp_path):
    keys_in_stores_before = ["img:cats/001", "img:café/ü%201", "img:6985418911", "img:a+b,c(1)"]
    assert image_key("/r/holiday 2019/my cat.png", "/r") == "img:holiday%202019/my%20cat"
    table = tmp_path / "t.csv"
    table.write_text("image,caption\nholiday 2019/my cat.png,a kitten\n")
    assert list(TableCorpus(table, image_column="image", text_columns=["caption"])) == [
        ["img:holiday%202019/my%20cat", "kitten"]]
    row = ["1 2", "h", "nick", "2012-03-11", "1331500000", "Canon", "title", "", "dog", *[""] * 12, "jpg", "0"]
    (tmp_path / "y.tsv").write_text("\t".join(row) + "\n")
    assert list(YFCC100MCorpus(tmp_path / "y.tsv", fields=["tags"])) == [["img:1%202", "dog"]]
    assert encode_key("my cat") == "my%20cat" and encode_key("my%20cat") == "my%20cat"  # idempotent
    assert [encode_key(k) for k in keys_in_stores_before] == keys_in_stores_before  # no whitespace: unchanged


def _looped_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "x.png").write_bytes(b"")
    (root / "x.txt").write_text("red fox")
    (root / "sub" / "y.png").write_bytes(b"")
    (root / "sub" / "y.txt").write_text("blue jay")
    os.symlink(".", root / "a")  # ln -s . d/a; ln -s . d/b: walked forever before
    os.symlink(".", root / "b")
    os.symlink("..", root / "sub" / "up")


def test_symlink_loops_are_walked_once(tmp_path):
    from gensim_im2vec.features import list_images

    _looped_tree(tmp_path / "d")
    # completes, and every real folder is listed once
    assert [k for k, _ in list_images(tmp_path / "d")] == ["img:sub/y", "img:x"]
    assert sorted(list(FolderCorpus(tmp_path / "d"))) == [["img:sub/y", "blue", "jay"], ["img:x", "red", "fox"]]
    assert [d for d, _, _ in walk_dirs(tmp_path / "d")] == [str(tmp_path / "d"), str(tmp_path / "d" / "sub")]


def test_a_linked_folder_is_still_entered(tmp_path):
    from gensim_im2vec.features import list_images

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "z.png").write_bytes(b"")
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "d" / "linked")
    assert [k for k, _ in list_images(tmp_path / "d")] == ["img:linked/z"]


@pytest.mark.parametrize("kind", ["bz2", "gz"])
def test_a_truncated_compressed_file_is_named_with_the_offset_and_leaves_no_temp(tmp_path, kind):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    text = "".join(f"line {i} with some words about cats and dogs\n" for i in range(5000)).encode()
    data = bz2.compress(text) if kind == "bz2" else gzip.compress(text)
    src = tmp_path / f"corpus.txt.{kind}"
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"corpus.txt.{kind}: the {'gzip' if kind == 'gz' else 'bz2'} data ends "
                                         rf"early or is damaged at byte \d+ of {len(data) // 2}"):
        list(TextCorpus(src))
    out = tmp_path / "out.txt"
    r = CliRunner().invoke(main, ["normalize", str(src), "-o", str(out)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"corpus.txt.{kind}: the" in r.output and "ends early or is damaged at byte" in r.output
    assert "Aborted" not in r.output
    assert not out.exists() and not (tmp_path / "out.txt.tmp").exists()


def test_an_unreadable_subfolder_is_named_in_a_warning(tmp_path, monkeypatch, caplog):
    """os.walk skipped a folder it could not list without a word: its images were silently left out."""
    import logging
    import os

    from gensim_im2vec.corpora import walk_dirs

    (tmp_path / "open").mkdir()
    (tmp_path / "locked").mkdir()
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.corpora"):
        walked = [d for d, _, _ in walk_dirs(tmp_path)]
    assert sorted(walked) == [str(tmp_path), str(tmp_path / "open")]
    assert any("locked: folder not read (Permission denied)" in r.getMessage() for r in caplog.records)


def test_gallery_dl_sidecars_are_read(tmp_path):
    """gallery-dl writes an image's metadata as ``x.jpg.json``: FolderCorpus skipped such images as
    having no sidecar."""
    from gensim_im2vec.corpora import FolderCorpus

    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "a.jpg.json").write_text('{"title": "red fox", "tags": ["fox", "snow"]}', encoding="utf-8")
    (tmp_path / "b.png").write_bytes(b"")
    (tmp_path / "b.png.txt").write_text("grey heron", encoding="utf-8")
    docs = sorted(FolderCorpus(tmp_path))
    assert [d[0] for d in docs] == ["img:a", "img:b"]
    assert set(docs[0][1:]) == {"red", "fox", "snow"} and docs[1][1:] == ["grey", "heron"]
