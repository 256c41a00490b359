"""split_documents with a feature store links images whose feature rows are identical, bit for bit
(two files of one picture: a split by lines or words cannot see them, and a model or kNN that
trained on one finds the other's tags by the copy): they are held out together or trained
together, counted in split.json, and a split without such rows is the same as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec import split as split_module
from gensim_im2vec.cli import main
from gensim_im2vec.evaluate import copies_of_training
from gensim_im2vec.split import split_documents
from gensim_im2vec.store import FeatureStore

N = 40
SEEDS = [f"s{i}" for i in range(30)]


def _docs(path, n: int = N) -> list[str]:
    """`n` images, each in a line of its own with its own words (n groups, with either group_by)."""
    path.write_text("".join(f"img:{i} {['red', 'green', 'blue', 'grey'][i % 4]} thing w{i}\n" for i in range(n))
                    + "a red thing in a text line\n", encoding="utf-8")
    return [f"img:{i}" for i in range(n)]


def _distinct(n: int, dim: int = 4, dtype="float32") -> np.ndarray:
    return (np.arange(n * dim).reshape(n, dim) + 1).astype(dtype)


def _store(path, keys: list[str], vectors: np.ndarray) -> str:
    FeatureStore.from_arrays(path, keys, vectors)
    return str(path)


def _side(split, key: str) -> str:
    return "test" if key in split.test_keys else "train" if key in split.train_keys else "neither"


class _Recorded:
    """A store's rows, each read recorded in `reads` (the rows asked for, as a list)."""

    def __init__(self, rows, reads: list):
        self.rows, self.shape, self.ndim, self.reads = rows, rows.shape, rows.ndim, reads

    def __getitem__(self, index):
        self.reads.append(np.atleast_1d(index).tolist())
        return self.rows[index]


def _record_reads(opened) -> list:
    """Record every read of `opened`'s rows; returns the list the reads go to."""
    reads: list = []
    opened.raw_vectors = _Recorded(np.asarray(opened.raw_vectors), reads)
    return reads


def test_copies_in_different_groups_are_never_split_across_train_and_test(tmp_path):
    """img:3 and img:17 (different lines, different words) have one feature row: over 30 seeds, never
    one in test.jsonl and the other in train.jsonl. Without the store, some seed splits them (what
    the test would see without the linking)."""
    keys = _docs(tmp_path / "docs.txt")
    vectors = _distinct(N)
    vectors[17] = vectors[3]
    store = _store(tmp_path / "store", keys, vectors)
    apart_without, apart, held_out, splits = 0, [], 0, []
    for seed in SEEDS:
        plain = split_documents(tmp_path / "docs.txt", tmp_path / f"plain-{seed}", test_share=0.25, seed=seed)
        apart_without += _side(plain, "img:3") != _side(plain, "img:17")
        s = split_documents(tmp_path / "docs.txt", tmp_path / f"s-{seed}", test_share=0.25, seed=seed,
                            features=store)
        # in the files too: both keys in test.jsonl, or neither
        test = {json.loads(line)["key"] for line in (tmp_path / f"s-{seed}" / "test.jsonl").open(encoding="utf-8")}
        if _side(s, "img:3") != _side(s, "img:17") or len({"img:3", "img:17"} & test) == 1:
            apart.append(seed)
        held_out += _side(s, "img:3") == "test"
        splits.append(s)
    assert apart_without > 0  # (the seeds do put them apart when the store is not looked at)
    assert not apart, f"img:3 and img:17 (one feature row) on both sides of the split with seeds {apart}"
    assert held_out > 0  # (and copies are still held out, together, on some seeds)
    for s in splits:
        assert s.counts["images_with_identical_features"] == 2
        assert s.record["features"]["identical_features"] == [["img:3", "img:17"]]


@pytest.mark.parametrize("group_by", ["words", "document"])
def test_a_chain_of_copies_goes_together_and_evaluate_finds_no_copy_of_training(tmp_path, group_by):
    """Three files of one picture and two of another, float16 rows, -0.0 against 0.0 (a copy to the
    evaluation's guard too): each set lands on one side, and evaluate.copies_of_training finds no
    held-out image that is a training image's copy."""
    keys = _docs(tmp_path / "docs.txt")
    vectors = _distinct(N, dtype="float16")
    vectors[[9, 21, 33]] = vectors[2]
    vectors[5] = [0.0, 1.0, 2.0, 3.0]
    vectors[30] = [-0.0, 1.0, 2.0, 3.0]
    store = _store(tmp_path / "store", keys, vectors)
    rows = {k: i for i, k in enumerate(keys)}
    apart, splits = [], []
    for seed in SEEDS[:12]:
        s = split_documents(tmp_path / "docs.txt", tmp_path / seed, test_share=0.3, seed=seed, features=store,
                            group_by=group_by)
        test = vectors[[rows[k] for k in s.test_keys]]
        train = vectors[[rows[k] for k in s.train_keys]]
        if (len({_side(s, k) for k in ("img:2", "img:9", "img:21", "img:33")}) > 1
                or _side(s, "img:5") != _side(s, "img:30") or copies_of_training(test, train).any()):
            apart.append(seed)
        splits.append(s)
    assert not apart, f"copies on both sides of the split with seeds {apart}"
    for s in splits:
        assert s.counts["images_with_identical_features"] == 6
        assert s.record["features"]["identical_features"] == [["img:2", "img:9", "img:21"], ["img:5", "img:30"]]


def test_a_copy_grouped_with_an_image_without_features_is_never_held_out(tmp_path):
    """img:4 shares its line with img:m, which the store lacks: that group is never held out, so
    neither is img:25, img:4's copy in a line of its own."""
    keys = _docs(tmp_path / "docs.txt")
    text = (tmp_path / "docs.txt").read_text(encoding="utf-8").replace("img:4 ", "img:4 img:m ")
    (tmp_path / "docs.txt").write_text(text, encoding="utf-8")
    vectors = _distinct(N)
    vectors[25] = vectors[4]
    store = _store(tmp_path / "store", keys, vectors)
    for seed in SEEDS:
        s = split_documents(tmp_path / "docs.txt", tmp_path / seed, test_share=0.3, seed=seed, features=store)
        assert _side(s, "img:25") == _side(s, "img:4") == "train", seed
        assert s.counts["images_without_features"] == 1


def test_only_the_documents_images_count(tmp_path):
    """Store rows of images the documents do not name are no copies of anything here: the split is the
    one a store without them gives, byte for byte."""
    keys = _docs(tmp_path / "docs.txt")
    vectors = _distinct(N)
    extra = _store(tmp_path / "extra", keys + ["img:other", "img:another"],
                   np.concatenate([vectors, vectors[[3, 3]]]))
    plain = _store(tmp_path / "plain", keys, vectors)
    a = split_documents(tmp_path / "docs.txt", tmp_path / "a", test_share=0.3, seed="x", features=extra)
    b = split_documents(tmp_path / "docs.txt", tmp_path / "b", test_share=0.3, seed="x", features=plain)
    assert a.counts["images_with_identical_features"] == 0 and a.record["features"]["identical_features"] == []
    for name in ("train.txt", "train.jsonl", "test.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a.counts == b.counts


def test_colliding_row_hashes_link_nothing(tmp_path, monkeypatch):
    """Rows are bucketed by an 8-byte hash and compared whole within a bucket: with every row's hash the
    same, only the rows that are equal link their images, and the split is the one of real hashes."""
    keys = _docs(tmp_path / "docs.txt")
    vectors = _distinct(N)
    vectors[11] = vectors[30]
    store = _store(tmp_path / "store", keys, vectors)
    real = split_documents(tmp_path / "docs.txt", tmp_path / "real", test_share=0.3, seed="c", features=store)
    monkeypatch.setattr(split_module, "_row_hashes", lambda rows: np.zeros(len(rows), dtype=np.int64))
    same = split_documents(tmp_path / "docs.txt", tmp_path / "same", test_share=0.3, seed="c", features=store)
    assert same.counts == real.counts and same.counts["images_with_identical_features"] == 2
    assert same.test_keys == real.test_keys and same.record["features"]["identical_features"] == [["img:11", "img:30"]]


def test_the_store_is_read_in_blocks_in_its_row_order(tmp_path, monkeypatch):
    """The rows are hashed a block at a time (a 10M-image store is never in memory at once), in the
    store's row order (a sequential read), whatever the documents' order; then only the rows that
    share a hash are read again, one at a time."""
    keys = _docs(tmp_path / "docs.txt")
    order = np.random.default_rng(0).permutation(N)
    vectors = _distinct(N)
    vectors[7] = vectors[8]
    opened = FeatureStore.open(_store(tmp_path / "store", [keys[i] for i in order], vectors[order]))
    reads = _record_reads(opened)
    monkeypatch.setattr(split_module, "_READ_BYTES", 5 * 4 * 4)  # 5 rows of 4 float32 a block
    s = split_documents(tmp_path / "docs.txt", tmp_path / "s", test_share=0.3, seed="b", features=opened)
    assert s.counts["images_with_identical_features"] == 2
    blocks, again = reads[:8], reads[8:]
    assert [len(r) for r in blocks] == [5] * 8 and sum(blocks, []) == list(range(N))
    assert sorted(sum(again, [])) == sorted(int(np.flatnonzero(order == i)[0]) for i in (7, 8))


def test_rows_that_share_a_hash_are_compared_in_blocks_in_the_stores_row_order(tmp_path, monkeypatch):
    """Many blank renders (one all-zero row), in another order in the store than in the documents:
    their rows are read back a block at a time, each block in the store's row order, not one row at
    a time in the images' order (at 10M images, millions of random reads of a memory-mapped store)."""
    n = 60
    keys = _docs(tmp_path / "docs.txt", n)
    rng = np.random.default_rng(3)
    order = rng.permutation(n)
    vectors = _distinct(n)
    blank = np.flatnonzero(rng.random(n) < 0.6)
    vectors[blank] = 0.0
    opened = FeatureStore.open(_store(tmp_path / "store", [keys[i] for i in order], vectors[order]))
    reads = _record_reads(opened)
    monkeypatch.setattr(split_module, "_READ_BYTES", 10 * 4 * 4)  # 10 rows of 4 float32 a block
    s = split_documents(tmp_path / "docs.txt", tmp_path / "s", test_share=0.3, seed="b", features=opened)
    assert s.counts["images_with_identical_features"] == len(blank)
    hashed, again = reads[:n // 10], reads[n // 10:]
    assert sum(hashed, []) == list(range(n))
    assert len(again) <= 2 * -(-(len(blank) - 1) // 5), again  # blocks of 5 copies, and their first row once
    assert all(r == sorted(r) for r in again)  # each block in the store's row order
    assert set(sum(again, [])) == set(np.flatnonzero(np.isin(order, blank)).tolist())  # the blank rows only


def test_a_store_of_one_row_for_every_image_is_refused_naming_it_and_the_fix(tmp_path):
    """Every image with the same features (a broken extraction, a store written with one row): the
    store tells none apart; the message says why, names some, and says what to do. The command line
    says it too."""
    keys = _docs(tmp_path / "docs.txt", 12)
    store = _store(tmp_path / "store", keys, np.ones((12, 4), dtype=np.float32))
    with pytest.raises(ValueError) as e:
        split_documents(tmp_path / "docs.txt", tmp_path / "s", features=store)
    said = str(e.value)
    assert "each of its 12 images with words and features has the same feature row" in said
    assert "img:0 = img:1 = img:2" in said and "tells none of them apart" in said
    assert "`im2vec extract`" in said and "new store" in said
    assert not (tmp_path / "s" / "train.txt").exists()
    res = CliRunner().invoke(main, ["split", str(tmp_path / "docs.txt"), "-o", str(tmp_path / "c"), "-f", store])
    assert res.exit_code == 1 and "img:0 = img:1 = img:2" in " ".join(res.output.split())


def _batch_tagged(path, n: int) -> list[str]:
    """`n` images tagged in batches: 64 sets of two tags, each set on n/64 images (one group each by
    words), and a text line."""
    tags = ["cat", "dog", "car", "tree", "sky", "sea", "red", "blue"]
    path.write_text("".join(f"img:{i} {tags[i % 8]} {tags[i // 8 % 8]}\n" for i in range(n))
                    + "a red car under a blue sky\n", encoding="utf-8")
    return [f"img:{i}" for i in range(n)]


@pytest.mark.parametrize("free", [(), (0, 1)])
def test_a_third_of_blank_renders_still_splits_leaving_them_apart_with_a_warning(tmp_path, free):
    """30% of the images are blank renders (one all-zero row), in every batch of tags (or all but two):
    linked, they would join every image into one group (the split was refused), or all but those two
    batches (20 test images where 64 were asked for). The split goes on, holding out about its
    share: that set is left apart (a warning names it, split.json counts it), while a real pair of
    copies still goes together; the same files whatever the store's row order, and again on a rerun."""
    n = 640
    keys = _batch_tagged(tmp_path / "docs.txt", n)
    vectors = np.random.default_rng(1).normal(size=(n, 8)).astype(np.float32)
    i = np.arange(n)
    blank = np.flatnonzero(np.isin(i % 10, [0, 3, 6]) & ~np.isin(i % 64, free))  # (a batch: i, i + 64, ...)
    vectors[blank] = 0.0
    vectors[77] = vectors[5]  # one picture filed twice (two batches)
    store = _store(tmp_path / "store", keys, vectors)
    order = np.random.default_rng(2).permutation(n)
    shuffled = _store(tmp_path / "shuffled", [keys[i] for i in order], vectors[order])
    for seed in SEEDS[:6]:
        s = split_documents(tmp_path / "docs.txt", tmp_path / seed, test_share=0.1, seed=seed, features=store)
        assert abs(s.counts["test_images"] - 0.1 * n) <= 10 and s.counts["train_images"] > 0
        assert s.counts["images_with_identical_features"] == len(blank) + 2
        assert s.counts["images_with_identical_features_apart"] == len(blank)
        named = [f"img:{j}" for j in blank[:3]]
        assert s.record["features"]["identical_features_apart"] == [named]
        assert len(s.warnings) == 1 and f"{len(blank)} of the {len(blank) + 2} images" in s.warnings[0]
        assert " = ".join(named) in s.warnings[0] and "evaluate --train" in s.warnings[0]
        assert "in sets too large to keep together" in s.summary()
        assert _side(s, "img:5") == _side(s, "img:77")
        other = split_documents(tmp_path / "docs.txt", tmp_path / f"{seed}-shuffled", test_share=0.1, seed=seed,
                                features=shuffled)
        again = split_documents(tmp_path / "docs.txt", tmp_path / seed, test_share=0.1, seed=seed, features=store)
        for name in ("train.txt", "train.jsonl", "test.jsonl"):
            assert (tmp_path / seed / name).read_bytes() == (tmp_path / f"{seed}-shuffled" / name).read_bytes()
        assert other.counts == s.counts == again.counts
    res = CliRunner().invoke(main, ["split", str(tmp_path / "docs.txt"), "-o", str(tmp_path / "cli"), "-f", store])
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "are not kept together" in " ".join(res.output.split())


def test_a_copy_without_words_keeps_nothing_from_being_held_out(tmp_path):
    """img:w has no words (never held out, never trained on) and img:5's row: it links nothing, so
    img:5 is held out as often as with a store where img:w has a row of its own, and the split is
    that one, byte for byte."""
    keys = _docs(tmp_path / "docs.txt")
    with open(tmp_path / "docs.txt", "a", encoding="utf-8") as f:
        f.write("img:w\n")
    vectors = _distinct(N + 1)
    own = _store(tmp_path / "own", keys + ["img:w"], vectors)
    vectors[N] = vectors[5]
    copy = _store(tmp_path / "copy", keys + ["img:w"], vectors)
    held_out = 0
    for seed in SEEDS:
        a = split_documents(tmp_path / "docs.txt", tmp_path / f"a-{seed}", test_share=0.25, seed=seed, features=copy)
        b = split_documents(tmp_path / "docs.txt", tmp_path / f"b-{seed}", test_share=0.25, seed=seed, features=own)
        assert a.test_keys == b.test_keys and a.train_keys == b.train_keys, seed
        assert a.counts["images_with_identical_features"] == 0
        held_out += _side(a, "img:5") == "test"
    assert held_out > 0


def test_the_summary_and_the_command_line_name_the_copies(tmp_path):
    keys = _docs(tmp_path / "docs.txt")
    vectors = _distinct(N)
    vectors[12] = vectors[6]
    store = _store(tmp_path / "store", keys, vectors)
    res = CliRunner().invoke(main, ["split", str(tmp_path / "docs.txt"), "-o", str(tmp_path / "s"), "-f", store])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "every image has features in" in text
    assert "2 images have features identical to another's (copies: held out or trained together, e.g. img:6 = img:12)" in text
    record = json.loads((tmp_path / "s" / "split.json").read_text(encoding="utf-8"))
    assert record["counts"]["images_with_identical_features"] == 2
    assert record["features"]["identical_features"] == [["img:6", "img:12"]]


def test_the_summarys_example_of_copies_kept_together_is_never_a_set_left_apart(tmp_path):
    """Most images one blank row (left apart) and one real pair (kept together): the summary's
    "held out or trained together, e.g. ..." names the pair, not the blank set; with no pair,
    it says every copy was left apart instead of calling them held out or trained together."""
    n = 60
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"img:{i} t{i % 7} u{i % 5}\n" for i in range(n)), encoding="utf-8")
    keys = [f"img:{i}" for i in range(n)]
    vectors = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    vectors[:50] = 1.0  # blank renders
    alone = _store(tmp_path / "alone", keys, vectors)
    vectors[57] = vectors[55]  # one picture filed twice
    paired = _store(tmp_path / "paired", keys, vectors)

    s = split_documents(docs, tmp_path / "a", test_share=0.2, seed="s1", features=paired)
    assert s.counts["images_with_identical_features"] == 52
    assert s.counts["images_with_identical_features_apart"] == 50
    text = s.summary()
    assert "(copies: held out or trained together, e.g. img:55 = img:57; 50 of them" in text, text
    assert "img:0 = img:1" not in text

    s = split_documents(docs, tmp_path / "b", test_share=0.2, seed="s1", features=alone)
    assert s.counts["images_with_identical_features"] == s.counts["images_with_identical_features_apart"] == 50
    text = s.summary()
    assert "held out or trained together" not in text, text
    assert ("50 images have features identical to another's (copies, e.g. img:0 = img:1 = img:2), all in sets "
            "too large to keep together: held out and trained apart, see the warning") in text
