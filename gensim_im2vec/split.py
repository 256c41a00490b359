"""Hold out images (and tags) of a documents file, for an evaluation on your own data.

``im2vec evaluate`` scores images the model never saw against their true tags. For the built-in
data sets the split comes with the data (``split.json``, :func:`gensim_im2vec.datasets.make_split`);
for your own photos :func:`split_documents` makes it from the documents ``im2vec normalize``
wrote (any gensim ``LineSentence`` text: one document a line, tokens separated by whitespace; a
token that starts with the image prefix, ``img:``, is an image, the others are its words). It
writes into one folder:

=================  ==================================================================================
``train.txt``      the training documents: the source's lines without the held-out images' lines,
                   the zero-shot tags removed from every line with an image (``im2vec train`` reads it)
``train.jsonl``    each training image and its tags, ``{"key": "img:…", "tags": [...]}`` a line
                   (``im2vec evaluate --train``: the baselines fit on them)
``test.jsonl``     each held-out image and its tags, zero-shot tags included (``--test``)
``zero_shot.txt``  the zero-shot tags, one a line (``--zero-shot``; a hashtag, ``#nofilter``, is a tag
                   there, not a comment; a bare ``#`` is never drawn); only with `zero_shot_share` > 0
``split.json``     what made the split: seed, shares, counts, the source's path and SHA-256, and the
                   zero-shot tags (``--zero-shot`` reads this file too); written first as
                   ``"complete": false`` and last as ``true``
=================  ==================================================================================

What a line means:

* **one image token** and words: the image, with the words as its tags;
* **several image tokens**: every image carries all the line's words, and they are held out
  together (one held out while another trains would show the model its tags);
* **no image token**: text (a sentence of a text corpus), copied to ``train.txt`` as it is, the
  zero-shot tags included (text is where a zero-shot tag's vector comes from; it never meets an
  image there);
* an image in several lines carries the words of all of them, and those lines go together.

A zero-shot tag gets its vector from text only (or from pretrained word vectors, ``im2vec train
--pretrained``): ``split.json`` counts the zero-shot tags some text line carries
(``counts.zero_shot_tags_in_text``), and when a zero-shot tag is in none (documents without text
lines: none is) a warning says so at split time (:attr:`DocumentSplit.warnings`): a model trained
on ``train.txt`` alone would have no vector for it, and the evaluation could not score it.

Images are held out in whole groups, so that near-duplicates do not straddle the split (a model
that saw one of them would find the other's tags by its features, not by what it learned): the
images of one line, and with ``group_by="words"`` (the default) also the images whose lines carry
the same set of words, such as a batch of photos tagged alike at upload. The groups are drawn as
the built-in sets' are (:func:`~gensim_im2vec.datasets.pick_test_groups`), and the zero-shot tags
too (:func:`~gensim_im2vec.datasets.zero_shot_groups`: a tag and its plural together). A held-out
image's lines are left out of ``train.txt`` whole: its words are its true tags. An image without
words is never held out (it could not be scored), and a training line left without a word is
dropped (an image alone in a line has nothing to learn from).

>>> import json, os, tempfile
>>> from gensim_im2vec.split import split_documents
>>> tmp = tempfile.mkdtemp()
>>> docs = os.path.join(tmp, "docs.txt")
>>> with open(docs, "w", encoding="utf-8") as f:
...     for i in range(20):
...         _ = f.write(f"img:{i} {['red', 'green', 'blue'][i % 3]} circle n{i}\\n")
...     _ = f.write("a red sky at night\\n")                    # text: no image
>>> s = split_documents(docs, os.path.join(tmp, "split"), test_share=0.2, zero_shot_share=0.3)
>>> len(s.train_keys), len(s.test_keys), s.zero_shot_tags
(16, 4, ['red'])
>>> sorted(os.listdir(os.path.join(tmp, "split")))
['split.json', 'test.jsonl', 'train.jsonl', 'train.txt', 'zero_shot.txt']
>>> print(open(os.path.join(tmp, "split", "test.jsonl")).readline(), end="")
{"key": "img:0", "tags": ["red", "circle", "n0"]}
>>> lines = open(os.path.join(tmp, "split", "train.txt")).read().splitlines()
>>> lines[:3], lines[-1]   # no img:0 or img:2 (held out), no "red" beside an image, but in the text
(['img:1 green circle n1', 'img:3 circle n3', 'img:4 green circle n4'], 'a red sky at night')

Images without features: the split reads the documents only, so an image the feature store lacks
(never extracted, or skipped by ``im2vec extract``: too large, not an image) could be held out,
and ``im2vec evaluate`` cannot score it, or stay in ``train.txt``, which ``im2vec train`` refuses.
Given the store the model will train with (``features=``, ``im2vec split --features STORE``), such
an image is never held out (nor the images of its group: they go to training), and its token is
taken out of ``train.txt`` and ``train.jsonl``; its line's words stay in ``train.txt`` as text
(the zero-shot tags taken out, as from any line with an image), as ``im2vec train
--missing-images skip`` would have used them. ``split.json`` counts them
(``images_without_features``, ``images_skipped_by_extraction``) and names a few, with the
extraction's reason where it skipped them (``features.without_features``):

>>> import numpy as np
>>> from gensim_im2vec.store import FeatureStore
>>> store = FeatureStore.from_arrays(os.path.join(tmp, "feats"), [f"img:{i}" for i in range(1, 20)],
...                                  np.ones((19, 4), dtype=np.float32))   # no img:0
>>> s = split_documents(docs, os.path.join(tmp, "split2"), test_share=0.2, features=store.path)
>>> s.counts["images_without_features"], "img:0" in s.test_keys + s.train_keys
(1, False)
>>> open(os.path.join(tmp, "split2", "train.txt")).readline()   # its words stay, as text
'red circle n0\\n'

Run again with the same arguments, the folder is written again byte for byte; a folder that holds
other files than an earlier split's is refused before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from gensim_im2vec.corpora import compressed_data_error, open_text_source
from gensim_im2vec.datasets import pick_test_groups, zero_shot_groups
from gensim_im2vec.fileio import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    check_output_folder,
)
from gensim_im2vec.keys import IMAGE_PREFIX

if TYPE_CHECKING:
    from gensim_im2vec.store import FeatureStore

__all__ = ["DocumentSplit", "SPLIT_FILES", "is_split_folder", "split_documents"]

logger = logging.getLogger(__name__)

#: The files :func:`split_documents` writes, by role.
SPLIT_FILES = {"train_documents": "train.txt", "train": "train.jsonl", "test": "test.jsonl",
               "zero_shot": "zero_shot.txt", "record": "split.json"}
#: ``split.json``'s ``"format"``: how an earlier output of :func:`split_documents` is recognised.
FORMAT = "im2vec-document-split"
_VERSION = 1
GROUP_BY = ("words", "document")


@dataclass
class DocumentSplit:
    """What :func:`split_documents` wrote.

    Attributes
    ----------
    folder : Path
        The output folder.
    train_keys, test_keys : list of str
        Image tokens (``img:…``) of ``train.jsonl`` and ``test.jsonl``, in the source's order.
    zero_shot_tags : list of str
        Sorted; empty without `zero_shot_share`.
    counts : dict
        Lines read, written and dropped, images, groups, ... (as in ``split.json``).
    record : dict
        The whole ``split.json``.
    warnings : list of str
        What the split found that the model or the evaluation will miss (also logged as warnings):
        zero-shot tags that no text line carries (a model trained on ``train.txt`` alone has no
        vector for them, and ``im2vec evaluate`` cannot score them).
    """

    folder: Path
    train_keys: list[str]
    test_keys: list[str]
    zero_shot_tags: list[str]
    counts: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict, repr=False)
    warnings: list = field(default_factory=list)

    def summary(self) -> str:
        c = self.counts
        in_text = c.get("zero_shot_tags_in_text")
        zs = (f"; {len(self.zero_shot_tags)} zero-shot tags ({c['zero_shot_tags_in_test']} on a test image"
              + (f", {in_text} in a text line" if in_text is not None else "") + ")"
              if self.zero_shot_tags else "")
        return (f"{c['test_images']} test images in {c['test_groups']} groups, {c['train_images']} training images; "
                f"{c['train_lines']} of {c['lines']} lines in {SPLIT_FILES['train_documents']} "
                f"({c['test_lines']} held out, {c['dropped_lines']} left without a word){zs}{self._features_summary()}")

    def _features_summary(self) -> str:
        """What the feature store left out (empty when the split was made without one)."""
        features = self.record.get("features")
        if not features:
            return ""
        n = self.counts["images_without_features"]
        if not n:
            return f"; every image has features in {features['path']}"
        shown = features["without_features"]
        return (f"; {n} images lack features in {features['path']}: never held out, and taken out of "
                f"{SPLIT_FILES['train']} and {SPLIT_FILES['train_documents']} (their lines' words stay), "
                f"{_examples(shown, shown, self.counts['images_skipped_by_extraction'])}")


def is_split_folder(folder: str | os.PathLike) -> bool:
    """Whether `folder` holds an earlier output of :func:`split_documents` (its ``split.json``)."""
    try:
        with open(Path(folder) / SPLIT_FILES["record"], encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("format") == FORMAT


def _read_lines(path: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, tokens)`` of each line of the documents file `path`, split on whitespace as
    gensim's ``LineSentence`` splits it, a leading byte order mark dropped (as
    :class:`~gensim_im2vec.corpora.LineDocuments`); opened as ``im2vec normalize`` opens its sources
    (:func:`~gensim_im2vec.corpora.open_text_source`: ``.gz``/``.bz2`` by their content, not by the
    name, so plain text named ``.gz`` is read as text). A NUL byte or invalid UTF-8 is an error naming
    the line; compressed data that ends early or is damaged, one naming the file, the byte and the fix."""
    fix = "give a documents file: UTF-8 text, one document a line (`im2vec normalize` writes one)"
    with open_text_source(path) as f:
        n = 0
        while True:
            try:
                raw = f.readline()
            except (EOFError, OSError, zlib.error) as e:  # a .gz / .bz2 cut short or corrupt
                raise compressed_data_error(path, f, n, e) from None
            if not raw:
                return
            n += 1
            if b"\0" in raw:
                raise ValueError(f"{path}: line {n} holds a NUL byte: it is not a text file (a binary file, a "
                                 f"model, a feature store's .npy?); {fix}.")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}: line {n} is not UTF-8 (byte {e.start} of the line); {fix}.") from None
            if n == 1:
                text = text.removeprefix("\ufeff")
            yield n, text.split()


class _Groups:
    """Union-find over image tokens; a group is named by its smallest token (so the split does not
    depend on the order of the lines)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, x: str) -> None:
        self.parent.setdefault(x, x)

    def find(self, x: str) -> str:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


class _StoreKeys:
    """What the split needs of a feature store: its keys as a set (read once; dropped once the images
    without features are known), and what ``split.json`` records of it."""

    def __init__(self, store) -> None:
        self.path = str(store.path)
        self.keys: frozenset[str] | set[str] = frozenset(store.keys)
        self.count = len(store)
        self.examples = list(store.keys[:3])
        self.skipped = dict(store.skipped)  # {key: reason} of the images the extraction could not use
        self.store_id = (store.metadata or {}).get("store_id")
        self.keys_sha256 = store.keys_sha256

    @classmethod
    def read(cls, features) -> _StoreKeys:
        if hasattr(features, "key_to_index") and hasattr(features, "keys"):  # an open FeatureStore
            return cls(features)
        from gensim_im2vec.store import FeatureStore

        path = os.fspath(features)
        if os.path.isfile(path):
            raise NotADirectoryError(f"{path!r} is a file; give the feature store's folder (`im2vec extract IMAGES "
                                     f"-o STORE` writes one; the folder `im2vec train -f` takes).")
        return cls(FeatureStore.open(path, mmap=True))

    def record(self, missing: dict[str, None]) -> dict:
        """``split.json``'s ``features``: the store, and a few of the images it lacks (with the
        extraction's reason where it skipped them)."""
        return {"path": os.path.abspath(self.path), "store_id": self.store_id, "images": self.count,
                "keys_sha256": self.keys_sha256,
                "without_features": {k: self.skipped.get(k) for k in islice(missing, _EXAMPLES)}}


_EXAMPLES = 5  # images without features named in split.json


def _examples(missing, skipped: dict[str, str | None], n_skipped: int, n: int = 3) -> str:
    """``e.g. img:a, img:b, img:c; 2 of them skipped by the extraction (...)`` for a message: a few of
    the images without features, and how many the extraction skipped, with one's reason."""
    text = "e.g. " + ", ".join(islice(missing, n))
    if n_skipped:
        key = next((k for k in missing if skipped.get(k)), None)
        text += (f"; {n_skipped} of them skipped by the extraction (the store's skipped.json says why"
                 + (f", e.g. {key}: {skipped[key]})" if key else ")"))
    return text


def _check_share(name: str, value: float, low_open: bool) -> None:
    ok = (0.0 < value < 1.0) if low_open else (0.0 <= value < 1.0)
    if not ok:
        interval = "(0, 1)" if low_open else "[0, 1)"
        example = "0.1 holds out a tenth of the images" if name == "test_share" else "0.1 holds out a tenth of the tags"
        raise ValueError(f"{name} must be in {interval}, got {value!r}: it is a share ({example}).")


def split_documents(
    documents: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    test_share: float = 0.1,
    zero_shot_share: float = 0.0,
    seed: str = "im2vec-split",
    prefix: str = IMAGE_PREFIX,
    group_by: str = "words",
    min_tag_images: int = 2,
    features: str | os.PathLike | FeatureStore | None = None,
) -> DocumentSplit:
    """Hold out a share of the images of a documents file (and optionally of its tags), and write
    the training documents and the evaluation's files into `out_dir` (see the module).

    Parameters
    ----------
    documents : path-like
        One document a line (``.gz``/``.bz2`` by content), as ``im2vec normalize`` writes it.
    out_dir : path-like
        A new or empty folder, or an earlier output of this function (written again, its
        ``zero_shot.txt`` removed when no longer asked for). Any other folder is refused
        (FileExistsError) before anything is written.
    test_share : float
        Expected share of the images with words held out, in (0, 1); whole groups are held out,
        so the share reached is close to it, not exact.
    zero_shot_share : float
        Expected share of the eligible tags held out as zero-shot tags, in [0, 1); 0: none.
    seed : str
        Changes which images and tags are held out; the same seed and file give the same split.
    prefix : str
        The image tokens' prefix (the model's ``image_prefix``).
    group_by : {"words", "document"}
        "document": the images of one line go together; "words": also the images whose lines
        carry the same set of words (near-duplicates, batch-tagged uploads).
    min_tag_images : int
        A tag on fewer images (≥ 1) is never zero-shot (it could hardly be scored).
    features : path-like or FeatureStore, optional
        The feature store the model will train with (``im2vec extract``'s folder). An image it lacks
        (not extracted, or skipped by the extraction: ``skipped.json``) is never held out, and its
        token is taken out of ``train.txt`` (its line's words stay, as text) and ``train.jsonl``:
        so ``im2vec train`` (which refuses an image without features) and ``im2vec evaluate`` (which
        scores only images with features) take the split as it is. Counted in ``split.json``
        (``counts.images_without_features``, examples under ``features``). Without it the store is
        not looked at, and an image without features may be held out.

    Returns
    -------
    DocumentSplit

    Raises
    ------
    ValueError
        A share out of range; a file that is not UTF-8 text, holds no document or no image token;
        a ``.gz``/``.bz2`` file cut short or damaged, or one compressed otherwise (xz, zstd, zip); a
        split that would leave no test or no training image, or no zero-shot tag when asked for;
        `features` holds none of the images with words.
    FileExistsError
        `out_dir` holds files that are not an earlier split's.
    FileNotFoundError, IsADirectoryError
        `documents` is missing or a folder; `features` is not a feature store.
    """
    _check_share("test_share", test_share, low_open=True)
    _check_share("zero_shot_share", zero_shot_share, low_open=False)
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {list(GROUP_BY)}, got {group_by!r}.")
    if not prefix:
        raise ValueError("prefix must not be empty: every token would be an image; give the image tokens' prefix "
                         f"(default {IMAGE_PREFIX!r}).")
    if int(min_tag_images) < 1:
        raise ValueError(f"min_tag_images must be at least 1, got {min_tag_images!r}.")
    source = os.fspath(documents)
    if os.path.isdir(source):
        raise IsADirectoryError(f"{source!r} is a folder; give the documents file (`im2vec normalize SOURCE -o "
                                f"docs.txt` writes one from a folder of images and captions).")
    if not os.path.exists(source):
        raise FileNotFoundError(f"documents file not found: {source!r}; check the path.")
    if not os.path.isfile(source):
        raise ValueError(f"{source!r} is not a regular file (a pipe, a device?): the split reads it twice; save the "
                         f"documents to a file first.")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{str(folder)!r} is a file; give a folder for the split (it is created if "
                                 f"missing).")
    for name in SPLIT_FILES.values():
        target = folder / name
        if target.exists() and os.path.samefile(target, source):
            raise ValueError(f"{source!r} is the split's own {name} in {str(folder)!r}; writing the split would "
                             f"destroy it. Split the original documents file, or write the split to another folder.")
    check_output_folder(folder, command="im2vec split", owned=is_split_folder, marker=SPLIT_FILES["record"],
                        writes=tuple(SPLIT_FILES.values()))
    store = _StoreKeys.read(features) if features is not None else None  # before the long read: a bad store fails now

    # pass 1: each image's words, and the groups
    words_of: dict[str, list[str]] = {}  # image token -> its words, in order, once each
    groups = _Groups()
    by_words: dict[frozenset, str] = {}
    n_lines = n_docs = n_image_lines = 0
    for _, tokens in _read_lines(source):
        n_lines += 1
        if not tokens:
            continue
        n_docs += 1
        images = [t for t in tokens if t.startswith(prefix)]
        if not images:
            continue
        n_image_lines += 1
        words = [t for t in tokens if not t.startswith(prefix)]
        for img in images:
            groups.add(img)
            own = words_of.setdefault(img, [])
            seen = set(own)
            own.extend(w for w in dict.fromkeys(words) if w not in seen)
            groups.union(images[0], img)
        if group_by == "words" and words:
            signature = frozenset(words)
            other = by_words.setdefault(signature, images[0])
            groups.union(other, images[0])
    if not n_docs:
        what = f"{n_lines} lines, all blank" if n_lines else "it is empty"
        raise ValueError(f"{source}: no documents in it ({what}); give one document a line, tokens separated by "
                         f"spaces (`im2vec normalize SOURCE -o {os.path.basename(source)}` writes them).")
    if not words_of:
        raise ValueError(f"{source}: no image token in its {n_docs} documents (no token starts with {prefix!r}); "
                         f"give documents with image tokens (`im2vec normalize` writes {IMAGE_PREFIX}<key> first in "
                         f"each line), or pass the prefix your image tokens start with as prefix=...")

    # the images the store lacks (in the source's order); the store's keys are let go of here
    no_features: dict[str, None] = {}
    if store is not None:
        no_features = dict.fromkeys(img for img in words_of if img not in store.keys)
        store.keys = frozenset()
        if len(no_features) == len(words_of):
            raise ValueError(f"{source}: none of its {len(words_of)} images is in the feature store "
                             f"{store.path!r}: its {store.count} keys look like {store.examples}, the documents' "
                             f"image tokens like {list(islice(words_of, 3))}; give the store `im2vec extract` wrote "
                             f"for these images (a key must be the image token exactly, prefix included).")
    has_features = (lambda img: img not in no_features) if no_features else (lambda img: True)
    usable = "with words and features" if store is not None else "with words"

    # which groups are held out: only groups whose every image has words (a test image needs tags) and,
    # with a store, features (evaluate scores an image by its features)
    members: dict[str, list[str]] = {}
    for img in words_of:
        members.setdefault(groups.find(img), []).append(img)
    sizes = {g: len(imgs) for g, imgs in members.items() if all(words_of[i] and has_features(i) for i in imgs)}
    n_scorable = sum(sizes.values())
    if not n_scorable:
        if store is not None and any(words_of.values()):  # images with words, but none with features
            raise ValueError(f"{source}: none of its images with words is in the feature store {store.path!r} "
                             f"({len(no_features)} of its {len(words_of)} images lack features, "
                             f"{_examples(no_features, store.skipped, sum(k in store.skipped for k in no_features))}; "
                             f"those it holds have no words), so none "
                             f"could be scored; extract the missing images' features into the store (`im2vec "
                             f"extract`), or give the store made from these documents' images.")
        raise ValueError(f"{source}: none of its {len(words_of)} images has a word beside it, so none could be "
                         f"scored; give documents with each image's tags or caption words.")
    if len(sizes) == 1:
        raise ValueError(f"{source}: its {n_scorable} images {usable} form one group (images of one line, or with "
                         f"the same words, go together), so holding any out would leave none to train on; give more "
                         f"images" + (", or group_by='document' if they only share their words" if
                                      group_by == "words" else "") + ".")
    test_groups = pick_test_groups(sizes, test_share * n_scorable, seed)
    n_test = sum(sizes[g] for g in test_groups)
    if not n_test:
        raise ValueError(f"{source}: a test share of {test_share} holds out no image: the {n_scorable} images "
                         f"{usable} form {len(sizes)} groups (images of one line, or with the same words, go together), "
                         f"the smallest of {min(sizes.values())} images; raise test_share.")
    if n_test >= n_scorable:
        raise ValueError(f"{source}: a test share of {test_share} holds out every image {usable} ({n_scorable} "
                         f"in {len(sizes)} groups), leaving none to train on; lower test_share, or give more images.")
    is_test = {img for g in test_groups for img in members[g]}

    zero: list[str] = []
    if zero_shot_share > 0:
        tag_images: Counter = Counter()
        for img, ws in words_of.items():
            if has_features(img):  # (an image without features is on neither side)
                tag_images.update(ws)
        del tag_images["#"]  # a bare "#" is a comment in zero_shot.txt (evaluate.read_tag_file): never zero-shot
        zero = zero_shot_groups(tag_images, seed, zero_shot_share, int(min_tag_images))
        if not zero:
            eligible = sum(1 for n in tag_images.values() if n >= min_tag_images)
            raise ValueError(f"{source}: a zero-shot share of {zero_shot_share} draws no tag of the {eligible} on at "
                             f"least {min_tag_images} images (of {len(tag_images)} tags); raise "
                             f"zero_shot_share or try another seed, or leave zero_shot_share at 0 for no zero-shot "
                             f"tags.")
    zero_set = set(zero)
    train_tags = {img: [w for w in ws if w not in zero_set] for img, ws in words_of.items()
                  if img not in is_test and has_features(img)}
    # a training image keeps a line only if a word is left beside it
    if not any(train_tags.values()):
        raise ValueError(f"{source}: the zero-shot tags {zero[:5]} take every word of the training images; lower "
                         f"zero_shot_share.")

    # pass 2: the training documents; the images that keep a line with words are the training images
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"lines": n_lines, "documents": n_docs, "image_lines": n_image_lines, "text_lines": n_docs - n_image_lines,
              "images": len(words_of), "images_without_words": sum(1 for ws in words_of.values() if not ws),
              "groups": len(members), "test_groups": len(test_groups), "test_images": n_test}
    if store is not None:
        counts["images_without_features"] = len(no_features)
        counts["images_skipped_by_extraction"] = sum(1 for img in no_features if img in store.skipped)
    config = {"seed": seed, "test_share": test_share, "zero_shot_share": zero_shot_share, "prefix": prefix,
              "group_by": group_by, "min_tag_images": int(min_tag_images)}
    record = {"format": FORMAT, "version": _VERSION, "complete": False,
              "documents": {"path": os.path.abspath(source), "sha256": None, "bytes": os.path.getsize(source)},
              "config": config, "counts": counts, "files": {}, "zero_shot_tags": zero,
              "features": None if store is None else store.record(no_features)}
    atomic_write_json(folder / SPLIT_FILES["record"], record)  # first: the folder is this function's from now on
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    trained: dict[str, None] = {}
    zero_in_text: set[str] = set()  # the zero-shot tags a text line carries: where their vectors come from
    n_train_lines = n_test_lines = n_dropped = n_made_text = 0
    with atomic_path(folder / SPLIT_FILES["train_documents"]) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for _, tokens in _read_lines(source):
            if not tokens:
                continue
            images = [t for t in tokens if t.startswith(prefix)]
            if images:
                if any(img in is_test for img in images):  # (all of them: one line is one group)
                    n_test_lines += 1
                    continue
                tokens = [t for t in tokens if t not in zero_set]
                if len(tokens) == len(images):  # no word left beside the images
                    n_dropped += 1
                    continue
                if no_features and any(img in no_features for img in images):  # train would refuse them
                    tokens = [t for t in tokens if t not in no_features]
                    images = [img for img in images if img not in no_features]
                    n_made_text += not images  # its words stay, as a text line
                trained.update(dict.fromkeys(images))
            elif zero_set:
                zero_in_text.update(t for t in tokens if t in zero_set)
            n_train_lines += 1
            out.write(" ".join(tokens) + "\n")
    train_keys = list(trained)
    test_keys = [img for img in words_of if img in is_test]

    def jsonl(keys: list[str], tags: dict[str, list[str]]) -> bytes:
        return "".join(json.dumps({"key": k, "tags": tags[k]}, ensure_ascii=False) + "\n" for k in keys).encode()

    atomic_write_bytes(folder / SPLIT_FILES["train"], jsonl(train_keys, train_tags))
    atomic_write_bytes(folder / SPLIT_FILES["test"], jsonl(test_keys, words_of))
    files = {k: SPLIT_FILES[k] for k in ("train_documents", "train", "test")}
    zs_path = folder / SPLIT_FILES["zero_shot"]
    if zero:
        atomic_write_bytes(zs_path, "".join(t + "\n" for t in zero).encode())
        files["zero_shot"] = SPLIT_FILES["zero_shot"]
    elif zs_path.is_file():  # an earlier split's, in this function's own folder: no longer true
        zs_path.unlink()
    test_tags = {t for img in test_keys for t in words_of[img]}
    if store is not None:
        counts["lines_without_featured_images"] = n_made_text
    counts.update({"train_images": len(train_keys), "train_lines": n_train_lines, "test_lines": n_test_lines,
                   "dropped_lines": n_dropped, "zero_shot_tags": len(zero),
                   "zero_shot_tags_in_test": sum(1 for t in zero if t in test_tags),
                   "zero_shot_tags_in_text": len(zero_in_text)})
    record.update({"complete": True, "files": files})
    record["documents"]["sha256"] = digest.hexdigest()
    atomic_write_json(folder / SPLIT_FILES["record"], record)  # last: the split is whole
    result = DocumentSplit(folder, train_keys, test_keys, zero, counts, record)
    if len(zero_in_text) < len(zero):
        result.warnings.append(_zero_shot_without_text(source, zero, zero_in_text, counts["text_lines"]))
    for message in result.warnings:
        logger.warning(message, extra={"im2vec_warning": True})  # (im2vec split says it as `warning: ...`)
    logger.info("split of %s into %s: %s", source, folder, result.summary())
    return result


def _zero_shot_without_text(source: str, zero: list[str], in_text: set[str], n_text_lines: int) -> str:
    """The warning for zero-shot tags that no text line carries: a model trained on train.txt has
    no vector for them (they are taken out of every line with an image), so the evaluation cannot
    score them; what gives them one."""
    missing = [t for t in zero if t not in in_text]
    example = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    if not n_text_lines:
        where = (f"{source} has no text lines (lines without an image token), so none of the {len(zero)} zero-shot "
                 f"tags ({example}) occurs in one")
    elif not in_text:
        where = f"none of the {len(zero)} zero-shot tags ({example}) occurs in a text line of {source}"
    else:
        where = (f"{len(missing)} of the {len(zero)} zero-shot tags ({example}) occur in no text line of {source} "
                 f"({len(in_text)} do)")
    return (f"{where}: they are taken out of every line with an image, so a model trained on "
            f"{SPLIT_FILES['train_documents']} alone has no vector for them, and `im2vec evaluate --zero-shot` "
            f"cannot score them (a zero-shot tag's vector comes from text). Add text lines that use them (captions, a "
            f"text corpus: lines without an image token, at least --min-count times) to the documents and split "
            f"again, or train with --pretrained word vectors that have them; or leave zero_shot_share at 0.")
