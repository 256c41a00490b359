"""split_documents holds its images in flat arrays (_Images), not in a dict of lists and a union-find
of tokens (≈ 2 KB an image before; docs/scale.md §5.2, benchmarks/bench_split.py): what it writes
must not have changed. The expected files below were written by the dict-and-list implementation
(commit af3fe51) for one messy corpus: several images in a line, an image in several lines (its
words merged, its lines' images grouped), an image twice in one line, lines with the same set of
words, an image alone in a line, text lines, a blank line, non-ASCII tokens, a bare "#", zero-shot
tags, a store lacking two images (one skipped by the extraction), and both group_by values."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from gensim_im2vec import datasets
from gensim_im2vec import split as split_module
from gensim_im2vec.split import split_documents
from gensim_im2vec.store import FeatureStore

CORPUS = """\
img:a1 red car street red
img:a2 img:a3 blue car
img:a2 parking night
img:b1 cat sofa ginger
img:b2 ginger cat sofa
img:b3 sofa cat ginger cats
the red car drove by at night

img:c1 dog park
img:c2 dogs park grass
img:c3 img:c3 dog beach
img:c4
img:d1 sunset beach sea
img:d2 sunset sea
img:d3 sea beach sunset
a dog on the beach at sunset
img:é1 café paris #nofilter
img:e2 café # night
img:e3 paris tower night
img:f1 tree park
img:f2 trees forest
img:f3 forest
img:g1 car red
img:g2 street night
img:g3 img:g4 img:g5 party friends
img:h1 cat
img:h2 cats
img:h3 dog cat
img:h4 beach
img:h5 grass tree
img:c4 dog
"""
NOT_IN_STORE = ("img:e3", "img:g1")  # img:g1 skipped by the extraction

WORDS_WITH_STORE = {
    "test.jsonl": (
        '{"key": "img:a1", "tags": ["red", "car", "street"]}\n'
        '{"key": "img:a2", "tags": ["blue", "car", "parking", "night"]}\n'
        '{"key": "img:a3", "tags": ["blue", "car"]}\n'
        '{"key": "img:b1", "tags": ["cat", "sofa", "ginger"]}\n'
        '{"key": "img:b2", "tags": ["ginger", "cat", "sofa"]}\n'
        '{"key": "img:c3", "tags": ["dog", "beach"]}\n'
        '{"key": "img:c4", "tags": ["dog"]}\n'
        '{"key": "img:h4", "tags": ["beach"]}\n'
    ),
    "train.jsonl": (
        '{"key": "img:b3", "tags": ["cat", "ginger", "cats"]}\n'
        '{"key": "img:c1", "tags": ["dog", "park"]}\n'
        '{"key": "img:c2", "tags": ["dogs", "park", "grass"]}\n'
        '{"key": "img:d1", "tags": ["sunset", "beach"]}\n'
        '{"key": "img:d2", "tags": ["sunset"]}\n'
        '{"key": "img:d3", "tags": ["beach", "sunset"]}\n'
        '{"key": "img:é1", "tags": ["paris", "#nofilter"]}\n'
        '{"key": "img:e2", "tags": ["#", "night"]}\n'
        '{"key": "img:f1", "tags": ["tree", "park"]}\n'
        '{"key": "img:f2", "tags": ["trees", "forest"]}\n'
        '{"key": "img:f3", "tags": ["forest"]}\n'
        '{"key": "img:g2", "tags": ["night"]}\n'
        '{"key": "img:g3", "tags": ["party"]}\n'
        '{"key": "img:g4", "tags": ["party"]}\n'
        '{"key": "img:g5", "tags": ["party"]}\n'
        '{"key": "img:h1", "tags": ["cat"]}\n'
        '{"key": "img:h2", "tags": ["cats"]}\n'
        '{"key": "img:h3", "tags": ["dog", "cat"]}\n'
        '{"key": "img:h5", "tags": ["grass", "tree"]}\n'
    ),
    "train.txt": (
        'img:b3 cat ginger cats\n'
        'the red car drove by at night\n'
        'img:c1 dog park\n'
        'img:c2 dogs park grass\n'
        'img:d1 sunset beach\n'
        'img:d2 sunset\n'
        'img:d3 beach sunset\n'
        'a dog on the beach at sunset\n'
        'img:é1 paris #nofilter\n'
        'img:e2 # night\n'
        'paris tower night\n'
        'img:f1 tree park\n'
        'img:f2 trees forest\n'
        'img:f3 forest\n'
        'car red\n'
        'img:g2 night\n'
        'img:g3 img:g4 img:g5 party\n'
        'img:h1 cat\n'
        'img:h2 cats\n'
        'img:h3 dog cat\n'
        'img:h5 grass tree\n'
    ),
    "zero_shot.txt": (
        'café\n'
        'friends\n'
        'sea\n'
        'sofa\n'
        'street\n'
    ),
    "split.json": {'format': 'im2vec-document-split',
                   'version': 1,
                   'complete': True,
                   'documents': {'sha256': '8f8cc2b0845c89f8b81a1e2d1df43b072d440e10548eccb1d05b982f2fea1190', 'bytes': 617},
                   'config': {'seed': 'e',
                              'test_share': 0.3,
                              'zero_shot_share': 0.4,
                              'prefix': 'img:',
                              'group_by': 'words',
                              'min_tag_images': 2},
                   'counts': {'lines': 31,
                              'documents': 30,
                              'image_lines': 28,
                              'text_lines': 2,
                              'images': 29,
                              'images_without_words': 0,
                              'groups': 24,
                              'test_groups': 6,
                              'test_images': 8,
                              'images_without_features': 2,
                              'images_skipped_by_extraction': 1,
                              'images_with_identical_features': 0,
                              'images_with_identical_features_apart': 0,
                              'lines_without_featured_images': 2,
                              'train_images': 19,
                              'train_lines': 21,
                              'test_lines': 9,
                              'dropped_lines': 0,
                              'zero_shot_tags': 5,
                              'zero_shot_tags_in_test': 2,
                              'zero_shot_tags_in_text': 0},
                   'files': {'train_documents': 'train.txt',
                             'train': 'train.jsonl',
                             'test': 'test.jsonl',
                             'zero_shot': 'zero_shot.txt'},
                   'zero_shot_tags': ['café', 'friends', 'sea', 'sofa', 'street'],
                   'features': {'images': 27,
                                'keys_sha256': '7b0bc33934241e1dfef64aa2d3c52fd474e8bd19106f8a56f2408ff5038dc489',
                                'without_features': {'img:e3': None, 'img:g1': 'not an image: cannot identify image file'},
                                'identical_features': [],
                                'identical_features_apart': []}},
}

BY_DOCUMENT = {
    "test.jsonl": (
        '{"key": "img:a1", "tags": ["red", "car", "street"]}\n'
        '{"key": "img:a2", "tags": ["blue", "car", "parking", "night"]}\n'
        '{"key": "img:a3", "tags": ["blue", "car"]}\n'
        '{"key": "img:b1", "tags": ["cat", "sofa", "ginger"]}\n'
        '{"key": "img:c1", "tags": ["dog", "park"]}\n'
        '{"key": "img:c3", "tags": ["dog", "beach"]}\n'
        '{"key": "img:c4", "tags": ["dog"]}\n'
        '{"key": "img:d2", "tags": ["sunset", "sea"]}\n'
        '{"key": "img:h4", "tags": ["beach"]}\n'
    ),
    "train.jsonl": (
        '{"key": "img:b2", "tags": ["ginger", "cat"]}\n'
        '{"key": "img:b3", "tags": ["cat", "ginger", "cats"]}\n'
        '{"key": "img:c2", "tags": ["dogs", "park", "grass"]}\n'
        '{"key": "img:d1", "tags": ["sunset", "beach"]}\n'
        '{"key": "img:d3", "tags": ["beach", "sunset"]}\n'
        '{"key": "img:é1", "tags": ["paris", "#nofilter"]}\n'
        '{"key": "img:e2", "tags": ["#", "night"]}\n'
        '{"key": "img:e3", "tags": ["paris", "tower", "night"]}\n'
        '{"key": "img:f1", "tags": ["tree", "park"]}\n'
        '{"key": "img:f2", "tags": ["trees", "forest"]}\n'
        '{"key": "img:f3", "tags": ["forest"]}\n'
        '{"key": "img:g1", "tags": ["car", "red"]}\n'
        '{"key": "img:g2", "tags": ["night"]}\n'
        '{"key": "img:g3", "tags": ["party"]}\n'
        '{"key": "img:g4", "tags": ["party"]}\n'
        '{"key": "img:g5", "tags": ["party"]}\n'
        '{"key": "img:h1", "tags": ["cat"]}\n'
        '{"key": "img:h2", "tags": ["cats"]}\n'
        '{"key": "img:h3", "tags": ["dog", "cat"]}\n'
        '{"key": "img:h5", "tags": ["grass", "tree"]}\n'
    ),
    "train.txt": (
        'img:b2 ginger cat\n'
        'img:b3 cat ginger cats\n'
        'the red car drove by at night\n'
        'img:c2 dogs park grass\n'
        'img:d1 sunset beach\n'
        'img:d3 beach sunset\n'
        'a dog on the beach at sunset\n'
        'img:é1 paris #nofilter\n'
        'img:e2 # night\n'
        'img:e3 paris tower night\n'
        'img:f1 tree park\n'
        'img:f2 trees forest\n'
        'img:f3 forest\n'
        'img:g1 car red\n'
        'img:g2 night\n'
        'img:g3 img:g4 img:g5 party\n'
        'img:h1 cat\n'
        'img:h2 cats\n'
        'img:h3 dog cat\n'
        'img:h5 grass tree\n'
    ),
    "zero_shot.txt": (
        'café\n'
        'friends\n'
        'sea\n'
        'sofa\n'
        'street\n'
    ),
    "split.json": {'format': 'im2vec-document-split',
                   'version': 1,
                   'complete': True,
                   'documents': {'sha256': '8f8cc2b0845c89f8b81a1e2d1df43b072d440e10548eccb1d05b982f2fea1190', 'bytes': 617},
                   'config': {'seed': 'e',
                              'test_share': 0.3,
                              'zero_shot_share': 0.4,
                              'prefix': 'img:',
                              'group_by': 'document',
                              'min_tag_images': 2},
                   'counts': {'lines': 31,
                              'documents': 30,
                              'image_lines': 28,
                              'text_lines': 2,
                              'images': 29,
                              'images_without_words': 0,
                              'groups': 26,
                              'test_groups': 8,
                              'test_images': 9,
                              'train_images': 20,
                              'train_lines': 20,
                              'test_lines': 10,
                              'dropped_lines': 0,
                              'zero_shot_tags': 5,
                              'zero_shot_tags_in_test': 3,
                              'zero_shot_tags_in_text': 0},
                   'files': {'train_documents': 'train.txt',
                             'train': 'train.jsonl',
                             'test': 'test.jsonl',
                             'zero_shot': 'zero_shot.txt'},
                   'zero_shot_tags': ['café', 'friends', 'sea', 'sofa', 'street'],
                   'features': None},
}

WORDS_MIN_1 = {
    "test.jsonl": (
        '{"key": "img:a1", "tags": ["red", "car", "street"]}\n'
        '{"key": "img:a2", "tags": ["blue", "car", "parking", "night"]}\n'
        '{"key": "img:a3", "tags": ["blue", "car"]}\n'
        '{"key": "img:b1", "tags": ["cat", "sofa", "ginger"]}\n'
        '{"key": "img:b2", "tags": ["ginger", "cat", "sofa"]}\n'
        '{"key": "img:c3", "tags": ["dog", "beach"]}\n'
        '{"key": "img:h4", "tags": ["beach"]}\n'
    ),
    "train.jsonl": (
        '{"key": "img:b3", "tags": ["sofa", "cat", "ginger", "cats"]}\n'
        '{"key": "img:c1", "tags": ["dog", "park"]}\n'
        '{"key": "img:c2", "tags": ["dogs", "park", "grass"]}\n'
        '{"key": "img:d1", "tags": ["sunset", "beach", "sea"]}\n'
        '{"key": "img:d2", "tags": ["sunset", "sea"]}\n'
        '{"key": "img:d3", "tags": ["sea", "beach", "sunset"]}\n'
        '{"key": "img:é1", "tags": ["café", "paris", "#nofilter"]}\n'
        '{"key": "img:e2", "tags": ["café", "#", "night"]}\n'
        '{"key": "img:e3", "tags": ["paris", "tower", "night"]}\n'
        '{"key": "img:f1", "tags": ["tree", "park"]}\n'
        '{"key": "img:f2", "tags": ["trees", "forest"]}\n'
        '{"key": "img:f3", "tags": ["forest"]}\n'
        '{"key": "img:g1", "tags": ["car", "red"]}\n'
        '{"key": "img:g2", "tags": ["street", "night"]}\n'
        '{"key": "img:g3", "tags": ["party", "friends"]}\n'
        '{"key": "img:g4", "tags": ["party", "friends"]}\n'
        '{"key": "img:g5", "tags": ["party", "friends"]}\n'
        '{"key": "img:h1", "tags": ["cat"]}\n'
        '{"key": "img:h2", "tags": ["cats"]}\n'
        '{"key": "img:h3", "tags": ["dog", "cat"]}\n'
        '{"key": "img:h5", "tags": ["grass", "tree"]}\n'
        '{"key": "img:c4", "tags": ["dog"]}\n'
    ),
    "train.txt": (
        'img:b3 sofa cat ginger cats\n'
        'the red car drove by at night\n'
        'img:c1 dog park\n'
        'img:c2 dogs park grass\n'
        'img:d1 sunset beach sea\n'
        'img:d2 sunset sea\n'
        'img:d3 sea beach sunset\n'
        'a dog on the beach at sunset\n'
        'img:é1 café paris #nofilter\n'
        'img:e2 café # night\n'
        'img:e3 paris tower night\n'
        'img:f1 tree park\n'
        'img:f2 trees forest\n'
        'img:f3 forest\n'
        'img:g1 car red\n'
        'img:g2 street night\n'
        'img:g3 img:g4 img:g5 party friends\n'
        'img:h1 cat\n'
        'img:h2 cats\n'
        'img:h3 dog cat\n'
        'img:h5 grass tree\n'
        'img:c4 dog\n'
    ),
    "split.json": {'format': 'im2vec-document-split',
                   'version': 1,
                   'complete': True,
                   'documents': {'sha256': '8f8cc2b0845c89f8b81a1e2d1df43b072d440e10548eccb1d05b982f2fea1190', 'bytes': 617},
                   'config': {'seed': 'e',
                              'test_share': 0.25,
                              'zero_shot_share': 0.0,
                              'prefix': 'img:',
                              'group_by': 'words',
                              'min_tag_images': 1},
                   'counts': {'lines': 31,
                              'documents': 30,
                              'image_lines': 28,
                              'text_lines': 2,
                              'images': 29,
                              'images_without_words': 0,
                              'groups': 24,
                              'test_groups': 5,
                              'test_images': 7,
                              'train_images': 22,
                              'train_lines': 22,
                              'test_lines': 7,
                              'dropped_lines': 1,
                              'zero_shot_tags': 0,
                              'zero_shot_tags_in_test': 0,
                              'zero_shot_tags_in_text': 0},
                   'files': {'train_documents': 'train.txt', 'train': 'train.jsonl', 'test': 'test.jsonl'},
                   'zero_shot_tags': [],
                   'features': None},
}

CASES = {
    "words, zero-shot, store": (dict(group_by="words", test_share=0.3, zero_shot_share=0.4), True, WORDS_WITH_STORE),
    "document, zero-shot": (dict(group_by="document", test_share=0.3, zero_shot_share=0.4), False, BY_DOCUMENT),
    "words, min_tag_images=1": (dict(group_by="words", test_share=0.25, min_tag_images=1), False, WORDS_MIN_1),
}


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    d = tmp_path_factory.mktemp("messy")
    (d / "docs.txt").write_text(CORPUS, encoding="utf-8")
    keys = [t for line in CORPUS.splitlines() for t in line.split() if t.startswith("img:")]
    keys = [k for k in dict.fromkeys(keys) if k not in NOT_IN_STORE]
    with FeatureStore.create(d / "store", dim=2, dtype="float32") as w:
        # (a row of its own each: identical rows would link the images, as copies of one picture)
        w.write(keys, np.arange(2 * len(keys), dtype=np.float32).reshape(-1, 2))
        w.skip("img:g1", "not an image: cannot identify image file")
    return d


def _check(messy, out, kwargs, with_store, expected):
    s = split_documents(messy / "docs.txt", out, seed="e", features=messy / "store" if with_store else None,
                        **kwargs)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(expected), names
    for name, want in expected.items():
        got = (out / name).read_bytes()
        if name == "split.json":
            record = json.loads(got)
            assert record["documents"].pop("path") == str((messy / "docs.txt").resolve())
            if with_store:
                assert record["features"].pop("path") == str((messy / "store").resolve())
                assert record["features"].pop("store_id")
            assert record == want
            assert got.startswith(b'{\n "format": "im2vec-document-split",\n "version": 1,\n')  # (indent=1, as before)
        else:
            assert got.decode("utf-8") == want, name
    test = [json.loads(line)["key"] for line in expected["test.jsonl"].splitlines()]
    train = [json.loads(line)["key"] for line in expected["train.jsonl"].splitlines()]
    assert s.test_keys == test and s.train_keys == train and type(s.train_keys) is list
    assert s.counts == expected["split.json"]["counts"]
    assert s.zero_shot_tags == expected["split.json"]["zero_shot_tags"]
    return s


@pytest.mark.parametrize("case", CASES)
def test_a_messy_corpus_is_split_as_before(messy, tmp_path, case):
    kwargs, with_store, expected = CASES[case]
    s = _check(messy, tmp_path / "out", kwargs, with_store, expected)
    assert bool(s.warnings) == bool(kwargs.get("zero_shot_share"))  # (no text line carries the zero-shot tags)


@pytest.mark.parametrize("case", CASES)
def test_colliding_hashes_change_nothing(messy, tmp_path, monkeypatch, case):
    """Tokens and sets of words are bucketed by hash and compared only within a bucket: with every
    hash the same (every token and every set of words in one bucket), the split is the same."""
    monkeypatch.setattr(split_module, "hash", lambda value: 7, raising=False)
    kwargs, with_store, expected = CASES[case]
    _check(messy, tmp_path / "out", kwargs, with_store, expected)


def test_groups_are_drawn_as_pick_test_groups_draws_them(monkeypatch):
    """_pick_groups over arrays takes the groups datasets.pick_test_groups takes, ties of the draw's
    key included (broken by the group's name, as pick_test_groups' sort does)."""
    rng = random.Random(0)
    for coarse in (False, True):
        if coarse:  # many ties: the key rounded to a tenth
            real = datasets._unit_hash
            monkeypatch.setattr(datasets, "_unit_hash", lambda seed, name, real=real: round(real(seed, name), 1))
        for trial in range(60):
            names = [f"img:{rng.randrange(10**6)}" for _ in range(rng.randint(2, 80))]
            sizes = {n: rng.choice([1, 1, 1, 2, 3, 7, 40]) for n in names}
            names = list(sizes)
            target = rng.uniform(0.05, 0.7) * sum(sizes.values())
            seed = str(trial)
            want = datasets.pick_test_groups(sizes, target, seed)
            keys = np.array([datasets._unit_hash(seed, n) for n in names])
            taken, n_test = split_module._pick_groups(keys, np.array([sizes[n] for n in names]),
                                                      lambda g, names=names: names[g], target)
            assert {names[g] for g in np.flatnonzero(taken)} == want
            assert n_test == sum(sizes[g] for g in want)


def test_store_membership_by_digest(messy):
    store = split_module._StoreKeys.read(messy / "store")
    tokens = ["img:a1", "img:e3", "img:g1", "img:é1", "img:zz", "img:h5"]
    assert store.holds(iter(tokens), len(tokens)).tolist() == [True, False, False, True, False, True]
    assert split_module._digests([]).shape == (0,)


def test_a_file_rewritten_between_the_two_reads_is_refused(tmp_path, monkeypatch):
    """The second read finds each image by its place in the first. Rewritten in between with the
    same number of image tokens (here the same bytes, lines reversed), the file was split without a
    word at 875e045, and held-out img:6's line went to train.txt (test keys img:1, img:6, img:8 with
    seed "x"): now it is refused, and train.txt is not written."""
    docs = tmp_path / "docs.txt"
    lines = [f"img:{i} w{i}\n" for i in range(10)]
    docs.write_text("".join(lines), encoding="utf-8")
    s = split_documents(docs, tmp_path / "before", test_share=0.3, seed="x")
    assert s.test_keys == ["img:1", "img:6", "img:8"]  # (the old code's split of the unchanged file)

    images = split_module._Images  # (each stand-in below reads as the module's own, then rewrites the file)

    class Rewritten(images):
        def __init__(self, *args):
            super().__init__(*args)
            stat = docs.stat()
            docs.write_text("".join(reversed(lines)), encoding="utf-8")
            os.utime(docs, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # (a clock's tick may not show it)

    monkeypatch.setattr(split_module, "_Images", Rewritten)
    with pytest.raises(ValueError, match="changed between the split's two reads"):
        split_documents(docs, tmp_path / "after", test_share=0.3, seed="x")
    assert not (tmp_path / "after" / "train.txt").exists()

    class Unseen(images):  # the same size and time stamp (a coarse clock, a file system without ns)
        def __init__(self, *args):
            super().__init__(*args)
            stat = docs.stat()
            docs.write_text("".join(lines), encoding="utf-8")
            os.utime(docs, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    monkeypatch.setattr(split_module, "_Images", Unseen)
    with pytest.raises(ValueError, match="changed between the split's two reads"):  # each line's first image, read again
        split_documents(docs, tmp_path / "again", test_share=0.3, seed="x")
    assert not (tmp_path / "again" / "train.txt").exists()


@pytest.mark.parametrize("group_by", ["words", "document"])
def test_images_with_features_grouped_with_images_without_are_explained(tmp_path, group_by):
    """Every image with words and features shares its line with one the store lacks: no group can be
    held out whole. The error said 'none of its images with words is in the feature store', which is
    not so; it says what is."""
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"img:a{i} img:b{i} tag{i % 3} word\n" for i in range(6)), encoding="utf-8")
    store = FeatureStore.from_arrays(str(tmp_path / "store"), [f"img:a{i}" for i in range(6)],
                                     np.ones((6, 4), dtype=np.float32))
    with pytest.raises(ValueError) as e:
        split_documents(docs, tmp_path / "split", features=store.path, group_by=group_by)
    said = str(e.value)
    assert "shares a group" in said and "6 of its 12 images lack features" in said and "img:b0" in said
    assert "none of its images with words is in the feature store" not in said
    assert ("group_by='document'" in said) == (group_by == "words")


def test_the_lists_of_keys_are_made_at_their_first_use(tmp_path):
    """im2vec split never reads DocumentSplit.train_keys/test_keys: they are made from the kept tokens
    when asked (≈ 80 B an image saved at the split's peak), equal to the keys of the files written."""
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"img:{i} w{i % 4} x{i}\nimg:{i} again{i}\n" for i in range(12)), encoding="utf-8")
    s = split_documents(docs, tmp_path / "split", test_share=0.3, seed="lazy")
    assert "train_keys" not in vars(s) and "test_keys" not in vars(s)
    for name, keys in (("train.jsonl", s.train_keys), ("test.jsonl", s.test_keys)):
        lines = (tmp_path / "split" / name).read_text(encoding="utf-8").splitlines()
        assert keys == [json.loads(line)["key"] for line in lines] and keys
    assert len(s.train_keys) + len(s.test_keys) == 12 and s.train_keys is s.train_keys
