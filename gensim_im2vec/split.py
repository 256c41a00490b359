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

A split stopped before its end (between two of its renames) leaves ``"complete": false``, and files
that may come from two runs: ``im2vec train``, ``evaluate`` and ``report`` (and the readers
:func:`~gensim_im2vec.evaluate.load_tagged_jsonl`, :func:`~gensim_im2vec.evaluate.read_tag_file`)
refuse them, giving the command that writes the folder again (:func:`check_split_complete`).

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
...                                  np.arange(76, dtype=np.float32).reshape(19, 4))   # no img:0
>>> s = split_documents(docs, os.path.join(tmp, "split2"), test_share=0.2, features=store.path)
>>> s.counts["images_without_features"], "img:0" in s.test_keys + s.train_keys
(1, False)
>>> open(os.path.join(tmp, "split2", "train.txt")).readline()   # its words stay, as text
'red circle n0\\n'

Copies: two files of one picture (a photo filed under two names, two renders a CNN cannot tell
apart) share no line and maybe no words, so the groups above cannot see them; their features can.
Given the store, images whose feature rows are identical, bit for bit (as float32), go together
too: held out together or trained together (a model or a kNN that trained on one would find the
other's tags by the copy; ``im2vec evaluate`` leaves such held-out images out, and says so).
``split.json`` counts them (``images_with_identical_features``: every image with words of such a
set; an image without words is never held out nor trained on, and links nothing) and names a few
sets (``features.identical_features``). The store's rows are read a block at a time, each hashed
to 8 bytes, and rows sharing a hash compared whole:

>>> vectors = np.arange(80, dtype=np.float32).reshape(20, 4)
>>> vectors[5] = vectors[2]                     # img:5 is img:2, filed again under another name
>>> store = FeatureStore.from_arrays(os.path.join(tmp, "feats2"), [f"img:{i}" for i in range(20)], vectors)
>>> split_documents(docs, os.path.join(tmp, "split3"), test_share=0.2).test_keys   # without the store
['img:0', 'img:2', 'img:7', 'img:14']
>>> s = split_documents(docs, os.path.join(tmp, "split4"), test_share=0.2, features=store.path)
>>> s.test_keys                                 # img:2 trains beside its copy
['img:0', 'img:7', 'img:14', 'img:16']
>>> s.counts["images_with_identical_features"], s.record["features"]["identical_features"]
(2, [['img:2', 'img:5']])

A row that many images share (blank renders, all zeros: a copy set of hundreds) can join, through
the groups by line and by words, nearly every image into one group, leaving too few outside it to
hold out the test share. Then the largest such sets are left apart (as without the store), with a
warning that names them
(``images_with_identical_features_apart``, ``features.identical_features_apart``): ``im2vec
evaluate --train`` leaves out a held-out image whose row a training image has. A store that gives
every image the same row tells none apart, and is refused.

Run again with the same arguments, the folder is written again byte for byte; a folder that holds
other files than an earlier split's is refused before anything is written.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gensim_im2vec.corpora import compressed_data_error, open_text_source
from gensim_im2vec.datasets import _unit_hash, zero_shot_groups
from gensim_im2vec.fileio import (
    atomic_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    check_output_folder,
)
from gensim_im2vec.keys import IMAGE_PREFIX

if TYPE_CHECKING:
    from gensim_im2vec.store import FeatureStore

__all__ = ["DocumentSplit", "SPLIT_FILES", "check_split_complete", "is_split_folder", "split_documents"]

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
        Image tokens (``img:…``) of ``train.jsonl`` and ``test.jsonl``, in the source's order (made
        at their first use from the tokens the split kept, ≈ 30 bytes an image: the lists take ≈ 80
        more, which `im2vec split` never needs).
    zero_shot_tags : list of str
        Sorted; empty without `zero_shot_share`.
    counts : dict
        Lines read, written and dropped, images, groups, ... (as in ``split.json``).
    record : dict
        The whole ``split.json``.
    warnings : list of str
        What the split found that the model or the evaluation will miss (also logged as warnings):
        zero-shot tags that no text line carries (a model trained on ``train.txt`` alone has no
        vector for them, and ``im2vec evaluate`` cannot score them); sets of images with identical
        features too large to keep together (held out and trained apart).
    """

    folder: Path
    zero_shot_tags: list[str]
    counts: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict, repr=False)
    warnings: list = field(default_factory=list)
    #: the image tokens, each followed by "\n", and where the training and the test images' tokens start
    _tokens: tuple = field(default=(b"", (), ()), repr=False, compare=False)

    @functools.cached_property
    def train_keys(self) -> list[str]:
        tokens, starts, _ = self._tokens
        return _token_list(tokens, np.asarray(starts, dtype=np.int64))

    @functools.cached_property
    def test_keys(self) -> list[str]:
        tokens, _, starts = self._tokens
        return _token_list(tokens, np.asarray(starts, dtype=np.int64))

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
        copies = self.counts.get("images_with_identical_features")
        apart = self.counts.get("images_with_identical_features_apart")
        # the example of copies kept together is a set that was kept together (a set left apart is no example of it)
        left = features.get("identical_features_apart") or []
        kept = [s for s in features["identical_features"] if s not in left]
        if not copies:
            same = ""
        elif apart and apart >= copies:  # (every set left apart: none was held out or trained together)
            same = (f"; {copies} images have features identical to another's (copies, e.g. "
                    f"{' = '.join((left or features['identical_features'])[0])}), all in sets too large to keep "
                    f"together: held out and trained apart, see the warning")
        else:
            same = (f"; {copies} images have features identical to another's (copies: held out or trained together"
                    + (f", e.g. {' = '.join(kept[0])}" if kept else "")
                    + (f"; {apart} of them, in sets too large to keep together, are not: see the warning"
                       if apart else "") + ")")
        if not n:
            return f"; every image has features in {features['path']}{same}"
        shown = features["without_features"]
        return (f"; {n} images lack features in {features['path']}: never held out, and taken out of "
                f"{SPLIT_FILES['train']} and {SPLIT_FILES['train_documents']} (their lines' words stay), "
                f"{_examples(shown, shown, self.counts['images_skipped_by_extraction'])}{same}")


def is_split_folder(folder: str | os.PathLike) -> bool:
    """Whether `folder` holds an earlier output of :func:`split_documents` (its ``split.json``)."""
    try:
        with open(Path(folder) / SPLIT_FILES["record"], encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("format") == FORMAT


def check_split_complete(path: str | os.PathLike) -> None:
    """Refuse a file of a split that did not finish: `path` is one of the files
    :func:`split_documents` writes (``train.txt``, ``test.jsonl``, ``split.json``, ...), and its
    folder's ``split.json`` says ``"complete": false``.

    The split writes ``split.json`` first as not complete and last as complete, each file renamed
    into place in between: a split stopped between two renames (Ctrl-C, kill, a full disk) leaves a
    folder whose files may come from two splits (an earlier split's ``test.jsonl`` beside this one's
    ``train.txt``: held-out images trained on), or one still being written. Run again with the same
    arguments, the split writes the folder again, whole; the message gives that command (from the
    record), or the process writing it now. Any other file, or a folder that is no such split's, is
    let through.

    Raises
    ------
    ValueError
        The split is not complete; the message names the folder, the file and the fix.
    """
    p = Path(path)
    if p.name not in SPLIT_FILES.values():
        return
    folder = p.parent
    try:
        with open(folder / SPLIT_FILES["record"], encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):  # none, or not this function's record: not such a split
        return
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("complete") is not False:
        return
    writer, by = _split_writer(folder)
    state = (f"an `{by or 'im2vec split'}` (pid {writer}) is writing it now. Wait for that process to finish, then run "
             f"this again" if writer is not None else
             f"the split into it stopped before it finished (interrupted, killed, a full disk), so {p.name} may be "
             f"an earlier split's beside this one's other files. Run the split again with the same arguments, "
             f"which writes the folder again, whole: `{_split_command(record, folder)}` (or split_documents() "
             f"with them), then run this again")
    raise ValueError(f"{str(p)!r}: the split in {str(folder)!r} is not complete (its {SPLIT_FILES['record']} says "
                     f"\"complete\": false): {state}.")


def _split_writer(folder: Path) -> tuple[int | None, str | None]:
    """The pid of a live ``im2vec split`` writing `folder` now, and the command its lock file names
    (:func:`~gensim_im2vec.fileio.output_lock`: the pid, the holder, its start), read only: taking the lock,
    even for a moment, could refuse a split starting then; (None, None) when none runs."""
    from gensim_im2vec.fileio import lock_target, pid_alive, read_lock

    target = lock_target(folder, folder=True)
    try:
        first, by, start = read_lock((target.parent / f".{target.name}.lock").read_bytes())
        pid = int(first)
    except (OSError, ValueError):
        return None, None
    # (a killed split's pid that the kernel has given to another process since: its start differs)
    if pid > 0 and pid != os.getpid() and pid_alive(pid, start):
        return pid, by
    return None, None


def _split_command(record: dict, folder: Path) -> str:
    """The `im2vec split` command line that makes the split `record` (``split.json``) describes again."""
    import shlex

    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    source = (record.get("documents") or {}).get("path") if isinstance(record.get("documents"), dict) else None
    words = ["im2vec", "split", str(source or "DOCUMENTS"), "-o", str(folder)]
    for key in ("test_share", "zero_shot_share", "seed", "prefix", "group_by", "min_tag_images"):
        if key == "min_tag_images" and not config.get("zero_shot_share"):
            continue  # (no tag is zero-shot: --min-tag-images would choose among none)
        if config.get(key) is not None:
            words += ["--" + key.replace("_", "-"), str(config[key])]
    features = record.get("features")
    if isinstance(features, dict) and features.get("path"):
        words += ["-f", str(features["path"])]
    return shlex.join(words)


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


def _index_dtype(n: int) -> type:
    """The smallest of int32 / int64 that holds indexes below `n`."""
    return np.int32 if n < 2**31 else np.int64


def _as_numpy(values: array, dtype) -> np.ndarray:
    """`values` (an ``array.array``) as a NumPy array sharing its memory."""
    return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype=dtype)


def _first_equal(hashes: np.ndarray, key: Callable[[int], object]) -> np.ndarray:
    """For each item ``i``, the first item whose ``key`` equals ``key(i)`` (``i`` itself when none
    comes before it), as int64. Items are bucketed by `hashes` (equal keys have equal hashes) and
    ``key`` is called only for items that share their hash with another, so a collision of hashes
    costs a comparison, never a wrong answer.

    >>> _first_equal(np.array([7, 3, 7, 7, 3]), key=lambda i: "abcab"[i]).tolist()
    [0, 1, 2, 0, 1]
    """
    n = len(hashes)
    first = np.arange(n, dtype=np.int64)
    if n < 2:
        return first
    order = np.argsort(hashes, kind="stable")  # equal hashes: in the items' order
    for a, b in _runs(hashes[order]):
        bucket: dict = {}
        for i in order[a:b].tolist():
            first[i] = bucket.setdefault(key(i), i)
    return first


def _runs(ordered: np.ndarray, block: int = 1 << 16) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each run of two or more equal values in the sorted array `ordered`.

    >>> list(_runs(np.array([1, 2, 2, 3, 4, 4, 4])))
    [(1, 3), (4, 7)]
    """
    same = np.flatnonzero(ordered[1:] == ordered[:-1])  # position p holds the value of p + 1
    if not same.size:
        return
    cut = np.flatnonzero(np.diff(same) != 1)
    starts = same[np.concatenate(([0], cut + 1))]
    ends = same[np.concatenate((cut, [len(same) - 1]))] + 2
    del same, cut
    for i in range(0, len(starts), block):  # (a block at a time: a list of every run would cost more than them)
        yield from zip(starts[i:i + block].tolist(), ends[i:i + block].tolist())


class _Images:
    """The images of a documents file, read once (pass 1) into flat arrays: each image token once
    (its UTF-8 bytes), each image line's words as ids into the vocabulary, and per image token read
    (an *occurrence*) the image's number, so that the second read needs no lookup by token. About
    40 bytes an image beside its token and its words' ids (a dict of lists of words and a
    union-find of tokens took ≈ 2 KB an image; docs/scale.md §5.2).

    Images are numbered in the order of their first occurrence (the order of ``test.jsonl``), words
    in the order of their first occurrence in a line with an image. A *words line* is an image
    line's words, in order, once each; an image in several lines gets one more, its lines' words
    merged (in the order of first appearance over its lines), unless its first line has them all.
    ``line`` maps each image to its words line, ``lengths`` each words line to its number of words.
    """

    def __init__(self, source: str, prefix: str, group_by: str) -> None:
        vocab: dict[str, int] = {}  # word -> id; only the words of lines with an image
        line_words, line_ends = array("i"), array("q")  # per image line: its words' ids (in order, once each)
        line_images = array("i")  # per image line: its number of image tokens
        line_sets = array("q")  # per image line: hash of its set of words (group_by="words")
        occ_hash = array("q")  # per occurrence: hash of the token (equal tokens, equal hashes)
        tokens = bytearray()  # the occurrences' tokens, each followed by "\n" (never in a token)
        by_words = group_by == "words"
        n_lines = n_docs = 0
        for _, toks in _read_lines(source):
            n_lines += 1
            if not toks:
                continue
            n_docs += 1
            images = [t for t in toks if t.startswith(prefix)]
            if not images:
                continue
            ids = [vocab.setdefault(w, len(vocab)) for w in dict.fromkeys(t for t in toks if not t.startswith(prefix))]
            line_words.extend(ids)
            line_ends.append(len(line_words))
            line_images.append(len(images))
            if by_words:
                line_sets.append(hash(frozenset(ids)))
            occ_hash.extend(map(hash, images))
            tokens += ("\n".join(images) + "\n").encode()
        self.n_lines, self.n_docs, self.n_image_lines = n_lines, n_docs, len(line_images)
        self.words = list(vocab)  # id -> word
        del vocab
        self.tokens = tokens
        self.n_occurrences = len(occ_hash)
        if not self.n_occurrences:
            self.n = 0
            return
        occ_start = np.empty(self.n_occurrences, dtype=np.int64)  # occurrence -> its token's first byte
        occ_start[0], done, block = 0, 1, 1 << 24
        view = np.frombuffer(self.tokens, dtype=np.uint8)
        for a in range(0, len(view), block):  # (a block at a time: a mask of every byte would cost more)
            ends = np.flatnonzero(view[a:a + block] == 10) + (a + 1)
            occ_start[done:done + len(ends)] = ends[:len(occ_start) - done]
            done += len(ends)
        del view, ends
        # images: occurrences of one token are one image, numbered by its first occurrence
        first = _first_equal(_as_numpy(occ_hash, np.int64), key=lambda o, starts=occ_start: self._token_at(int(starts[o])))
        del occ_hash
        is_new = first == np.arange(len(first))
        self.n = n = int(is_new.sum())
        idx = _index_dtype(max(n, len(line_images) + n))
        self.occurrence_image = (np.cumsum(is_new, dtype=np.int64) - 1).astype(idx)[first]  # occurrence -> image
        del first
        self.start = occ_start[is_new]  # image -> its token's first byte in self.tokens
        del occ_start
        lines = np.arange(len(line_images), dtype=idx)
        occ_line = np.repeat(lines, _as_numpy(line_images, np.int32))  # occurrence -> its image line
        self.line = occ_line[is_new]  # image -> its words line
        del is_new
        self.word_ids = _as_numpy(line_words, np.int32)
        self.word_ends = _as_numpy(line_ends, np.int64)
        self._merge_lines(occ_line)
        self.lengths = np.diff(self.word_ends, prepend=0).astype(np.int32)  # words line -> its number of words
        # groups: the images of a line, and with group_by="words" the lines with the same set of words
        line_first = self.occurrence_image[np.cumsum(_as_numpy(line_images, np.int32), dtype=np.int64)
                                           - _as_numpy(line_images, np.int32)]  # image line -> its first image
        a, b = self.occurrence_image, line_first[occ_line]
        keep = a != b
        pairs = [(a[keep], b[keep])]
        del occ_line, a, b, keep
        if by_words:
            with_words = np.flatnonzero(self.lengths[lines] > 0)
            same = _first_equal(_as_numpy(line_sets, np.int64)[with_words],
                                key=lambda j: frozenset(self.line_word_ids(int(with_words[j]))))
            other = same != np.arange(len(same))
            pairs.append((line_first[with_words[other]], line_first[with_words[same[other]]]))
            del with_words, same, other
        del line_sets, line_images, line_first, lines
        self.group, self.n_groups = _components(n, pairs)

    def _token_at(self, start: int) -> bytes:
        return bytes(self.tokens[start:self.tokens.index(b"\n", start)])

    def token(self, image: int) -> str:
        """The image token of image number `image`."""
        return self._token_at(int(self.start[image])).decode("utf-8")

    def tokens_of(self, images: np.ndarray) -> Iterator[str]:
        for i in images.tolist():
            yield self.token(i)

    def line_word_ids(self, line: int) -> list[int]:
        start = int(self.word_ends[line - 1]) if line else 0
        return self.word_ids[start:int(self.word_ends[line])].tolist()

    def _merge_lines(self, occ_line: np.ndarray) -> None:
        """Give each image in several lines a words line of its own: its lines' words merged."""
        counts = np.bincount(self.occurrence_image, minlength=self.n)
        repeated = np.flatnonzero(counts[self.occurrence_image] > 1)  # occurrences of such images, in order
        del counts
        if not repeated.size:
            return
        repeated = repeated[np.argsort(self.occurrence_image[repeated], kind="stable")]  # by image, in line order
        extra_ids, extra_ends = array("i"), array("q")
        end, n_lines = len(self.word_ids), len(self.word_ends)

        def merge(img: int, lines: list[int]) -> None:
            nonlocal end
            merged = dict.fromkeys(w for line in dict.fromkeys(lines) for w in self.line_word_ids(line))
            if len(merged) > len(self.line_word_ids(lines[0])):  # (else its first line has them all)
                extra_ids.extend(merged)
                end += len(merged)
                extra_ends.append(end)
                self.line[img] = n_lines + len(extra_ends) - 1

        image, lines = -1, []
        block = 1 << 16
        for a in range(0, len(repeated), block):
            part = repeated[a:a + block]
            for img, line in zip(self.occurrence_image[part].tolist(), occ_line[part].tolist()):
                if img != image:
                    if lines:
                        merge(image, lines)
                    image, lines = img, []
                lines.append(line)
        merge(image, lines)
        if extra_ends:
            self.word_ids = np.concatenate((self.word_ids, _as_numpy(extra_ids, np.int32)))
            self.word_ends = np.concatenate((self.word_ends, _as_numpy(extra_ends, np.int64)))

    def word_counts(self, images: np.ndarray) -> np.ndarray:
        """For each word id, the number of images of the boolean mask `images` that carry it (int64)."""
        per_line = np.bincount(self.line[images], minlength=len(self.word_ends))
        counts = np.zeros(len(self.words), dtype=np.int64)
        block = max(1 << 16, len(self.words) // 4)  # (each block's bincount costs the vocabulary's length)
        for a in range(0, len(per_line), block):
            lines = np.arange(a, min(a + block, len(per_line)))
            start = int(self.word_ends[a - 1]) if a else 0
            weights = np.repeat(per_line[lines], self.lengths[lines])
            counts += np.bincount(self.word_ids[start:int(self.word_ends[lines[-1]])], weights=weights,
                                  minlength=len(self.words)).astype(np.int64)
        return counts

    def kept_words(self, dropped: np.ndarray) -> np.ndarray:
        """For each words line, its number of words not in the boolean mask over word ids `dropped`."""
        lengths = self.lengths
        if not dropped.any():
            return lengths
        kept = np.zeros(len(lengths), dtype=np.int64)
        some = lengths > 0
        if some.any():
            starts = (self.word_ends - lengths)[some]
            kept[some] = np.add.reduceat(~dropped[self.word_ids], starts, dtype=np.int64)
        return kept


def _components(n: int, pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, int]:
    """The connected components of `n` nodes joined by the edges `pairs` (arrays of node numbers):
    each node's component number, and the number of components."""
    a = np.concatenate([p[0] for p in pairs])
    if not a.size:
        return np.arange(n, dtype=_index_dtype(n)), n
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    b = np.concatenate([p[1] for p in pairs])
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    del a, b
    n_groups, labels = connected_components(graph, directed=False)
    return labels, int(n_groups)


def _group_names(images: _Images, members: np.ndarray) -> np.ndarray:
    """Per group, the image that names it: its smallest token (by code point, as ``min`` of the
    tokens would; UTF-8 bytes sort as their code points). `members`: the group of each image."""
    sizes = np.bincount(members, minlength=images.n_groups)
    root = np.empty(images.n_groups, dtype=np.int64)
    root[members] = np.arange(images.n)
    shared = np.flatnonzero(sizes[members] > 1)  # images in a group of several, by group
    del sizes
    shared = shared[np.argsort(members[shared], kind="stable")]
    token = images._token_at
    group, best, best_token = -1, -1, b""
    block = 1 << 16
    for a in range(0, len(shared), block):
        part = shared[a:a + block]
        for i, g, start in zip(part.tolist(), members[part].tolist(), images.start[part].tolist()):
            t = token(start)
            if g != group:
                if group >= 0:
                    root[group] = best
                group, best, best_token = g, i, t
            elif t < best_token:
                best, best_token = i, t
    if group >= 0:
        root[group] = best
    return root


def _pick_groups(keys: np.ndarray, sizes: np.ndarray, name: Callable[[int], str], target: float
                 ) -> tuple[np.ndarray, int]:
    """:func:`~gensim_im2vec.datasets.pick_test_groups` over arrays: group ``i`` has the draw key
    ``keys[i]`` (its ``_unit_hash(seed, name)``), ``sizes[i]`` images and the name ``name(i)``
    (asked only of groups whose keys tie). The groups taken (a boolean mask), and their images.
    Visits the groups in the same order, ``(key, name)``, and takes each by the same test; a block
    of groups none of which would bring the count closer to `target` is passed over at once."""
    order = np.argsort(keys, kind="stable")
    for a, b in list(_runs(keys[order])):  # equal keys: by name
        order[a:b] = sorted(order[a:b].tolist(), key=name)
    taken = np.zeros(len(keys), dtype=bool)
    n_test = 0
    block = 4096
    for a in range(0, len(order), block):
        part = sizes[order[a:a + block]]
        if not (np.abs(n_test + part - target) < abs(n_test - target)).any():
            continue
        for g, size in zip(order[a:a + block].tolist(), part.tolist()):
            if abs(n_test + size - target) < abs(n_test - target):  # brings test closer to target
                taken[g] = True
                n_test += size
    return taken, n_test


def _digests(keys: Iterable[str], ordered: bool = True) -> np.ndarray:
    """The 128-bit BLAKE2b digests of `keys`, sorted unless not `ordered` ("S16"): a set of keys at 16 bytes a key.
    Two different keys share a digest with probability ≈ 2⁻¹²⁸ a pair (≈ 10⁻²⁰ for 10⁸ images
    against 10⁸ keys)."""
    out = bytearray()
    for k in keys:
        out += hashlib.blake2b(k.encode("utf-8"), digest_size=16).digest()
    digests = np.frombuffer(bytes(out), dtype="S16") if out else np.zeros(0, dtype="S16")
    return np.sort(digests) if ordered else digests


class _StoreKeys:
    """What the split needs of a feature store: its keys as a set of 128-bit digests, each with its
    row (read once, 20 bytes a key: :func:`_digests`; dropped once each image's row is known), its
    rows (memory-mapped, read by :func:`_linked_by_features`), and what ``split.json`` records of it."""

    def __init__(self, store) -> None:
        self.path = str(store.path)
        digests = _digests(store.keys, ordered=False)
        order = np.argsort(digests)  # (the keys are unique: any order of equal digests would do)
        self.digests: np.ndarray | None = digests[order]
        del digests
        self.rows: np.ndarray | None = order.astype(_index_dtype(len(order)))  # the store row of each digest
        del order
        self.vectors = store.raw_vectors  # (memory-mapped: read a block at a time, by _linked_by_features)
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

    def rows_of(self, tokens: Iterable[str], n: int) -> np.ndarray:
        """The store row of each of the `n` `tokens`, -1 for a token that is not a key of the store."""
        rows = np.full(n, -1, dtype=_index_dtype(self.count))
        if not len(self.digests):
            return rows
        block = 1 << 20
        tokens = iter(tokens)
        for a in range(0, n, block):
            part = _digests(islice(tokens, block), ordered=False)
            at = np.minimum(np.searchsorted(self.digests, part), len(self.digests) - 1)
            rows[a:a + len(part)] = np.where(self.digests[at] == part, self.rows[at], -1)
        return rows

    def holds(self, tokens: Iterable[str], n: int) -> np.ndarray:
        """Whether each of the `n` `tokens` is a key of the store (a boolean array)."""
        return self.rows_of(tokens, n) >= 0

    def record(self, missing: Iterable[str], copies: dict) -> dict:
        """``split.json``'s ``features``: the store, a few of the images it lacks (with the
        extraction's reason where it skipped them), and a few sets of images with identical features
        (and of those left apart: :func:`_link_copies`)."""
        return {"path": os.path.abspath(self.path), "store_id": self.store_id, "images": self.count,
                "keys_sha256": self.keys_sha256,
                "without_features": {k: self.skipped.get(k) for k in islice(missing, _EXAMPLES)},
                "identical_features": copies["sets"], "identical_features_apart": copies["apart_sets"]}


_EXAMPLES = 5  # images without features, and sets of images with identical features, named in split.json


_READ_BYTES, _READ_ROWS = 1 << 24, 1 << 16  # at most so many bytes (as float32) and rows of the store read at a time


def _feature_rows(block: np.ndarray) -> np.ndarray:
    """Feature rows as compared for copies: float32 (a float16 store's rows exactly), -0.0 as 0.0
    (:func:`~gensim_im2vec.evaluate.copies_of_training` compares them so too)."""
    return np.ascontiguousarray(block, dtype=np.float32) + np.float32(0)


def _row_hashes(rows: np.ndarray) -> np.ndarray:
    """A 64-bit BLAKE2b digest of each row of the float32 array `rows` (as int64): equal rows, equal
    hashes; rows that share a hash are then compared whole, so a collision never links two images."""
    out = bytearray()  # (not a join of the digests: that would hold a bytes object, ≈ 40 B, a row)
    for r in rows:
        out += hashlib.blake2b(r.tobytes(), digest_size=8).digest()
    return np.frombuffer(out, dtype="<i8").astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def _linked_by_features(vectors, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images whose feature rows are identical, bit for bit (as float32): copies of one picture
    (one photo filed under two names, a render that a CNN cannot tell from another), which a split by
    lines or words cannot see. `vectors`: the store's rows (memory-mapped); `rows`: each image's row
    in it, -1 for an image left out (without features, or without words).

    Returns ``(a, b, first)``: the pairs of images to link (``a[i]`` is a copy of ``b[i]``, the first
    image with that row), and for each image with a row (in the images' order) the position of
    the first one with its row. The store is read in its row order, a block of at most 16 MB (and
    65,536 rows) at a time (its pages let go of after each: :func:`~gensim_im2vec.image_features.release`), each row
    hashed (8 bytes); then the rows that share a hash are read again, in blocks in the store's row
    order too, and compared whole with the first row of their hash (:func:`_first_equal_rows`).
    About 40 bytes an image with a row, held while it runs."""
    from gensim_im2vec.image_features import release

    featured = np.flatnonzero(rows >= 0).astype(_index_dtype(len(rows)))
    where = rows[featured]  # each such image's store row
    n = len(featured)
    hashes = np.empty(n, dtype=np.int64)
    block = _read_block(vectors)
    by_row = np.argsort(where)  # positions in `featured`, in the store's row order
    for a in range(0, n, block):
        part = by_row[a:a + block]
        hashes[part] = _row_hashes(_feature_rows(vectors[where[part]]))
        release(vectors)  # (a store larger than memory never shows as its size in this process's RSS)
    del by_row
    first = _first_equal_rows(vectors, where, hashes, block)
    del hashes, where
    copy = np.flatnonzero(first != np.arange(n))
    return featured[copy], featured[first[copy]], first


def _read_block(vectors) -> int:
    """How many of the store's rows are read at a time: at most 16 MB (as float32) and 65,536 rows."""
    return max(1, min(_READ_ROWS, _READ_BYTES // (4 * max(1, int(np.prod(vectors.shape[1:]))))))


def _first_equal_rows(vectors, where: np.ndarray, hashes: np.ndarray, block: int) -> np.ndarray:
    """:func:`_first_equal` for feature rows: for each image, the first image (in the images' order)
    whose row of `vectors` (its row number in `where`) equals its own as float32, bit for bit.

    Equal rows have equal `hashes`; an image that shares its hash is compared with the first image
    of that hash, the rows read a block at a time in the store's row order (each first row once a
    block) and compared as arrays, not one row at a time from wherever the images' order puts them:
    a million blank renders with one all-zero row cost a sequential read, not a million random ones,
    and no more pages of the map than a block's stay mapped. A hash shared by rows that differ (a
    collision: about 10⁻⁶ over 10M distinct rows) sends its images to :func:`_first_equal`, row by row.
    """
    from gensim_im2vec.image_features import release

    n = len(hashes)
    first = np.arange(n, dtype=np.int64)
    if n < 2:
        return first
    order = np.argsort(hashes, kind="stable")  # equal hashes: in the images' order
    ordered = hashes[order]
    later = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1  # the sorted positions after a run's first
    del ordered
    if not later.size:
        return first
    opens = np.ones(len(later), dtype=bool)
    opens[1:] = np.diff(later) != 1
    head = np.maximum.accumulate(np.where(opens, later - 1, 0))  # each one's run's first sorted position
    items, refs = order[later], order[head]  # images, and the first image of their hash
    del order, later, opens, head
    by_row = np.argsort(where[items], kind="stable")
    step = max(1, block // 2)  # (a block of the images' rows and one of the first rows: 16 MB in all)
    differ = []
    for a in range(0, len(items), step):
        part = by_row[a:a + step]
        mine = _feature_rows(vectors[where[items[part]]]).reshape(len(part), -1).view(np.uint32)
        theirs, at = np.unique(where[refs[part]], return_inverse=True)
        theirs = _feature_rows(vectors[theirs]).reshape(len(theirs), -1).view(np.uint32)
        same = (mine == theirs[at.ravel()]).all(axis=1)
        first[items[part[same]]] = refs[part[same]]
        if not same.all():
            differ.append(np.unique(refs[part[~same]]))
        release(vectors)
    del items, refs, by_row
    for h in np.unique(np.concatenate(differ)).tolist() if differ else ():  # a collision: row by row
        run = np.flatnonzero(hashes == hashes[h])
        first[run] = run[_first_equal(hashes[run], key=lambda j: _feature_rows(vectors[int(where[run[j]])]).tobytes())]
        release(vectors)
    return first


def _copy_sets(images: _Images, rows: np.ndarray, first: np.ndarray, roots: np.ndarray | None = None,
               n: int = _EXAMPLES, size: int = 3) -> list[list[str]]:
    """A few sets of images that share their feature row (at most `size` tokens each, in the images'
    order), from :func:`_linked_by_features`' `first`: the first `n` sets, or those of `roots`."""
    if roots is None:
        roots = np.unique(first[first != np.arange(len(first))])
    featured = np.flatnonzero(rows >= 0)
    return [list(images.tokens_of(featured[np.flatnonzero(first == r)[:size]])) for r in roots[:n].tolist()]


def _scorable_groups(group: np.ndarray, n_groups: int, unusable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The groups that may be held out (none of their images in the boolean mask `unusable`: without
    words, or without features), and their numbers of images."""
    bad = np.zeros(n_groups, dtype=bool)
    bad[group[unusable]] = True
    scorable = np.flatnonzero(~bad)
    return scorable, np.bincount(group, minlength=n_groups)[scorable]


def _room(group: np.ndarray, n_groups: int, unusable: np.ndarray, test_share: float) -> tuple[int, bool]:
    """What groups `group` leave the draw: the images that may be held out outside the largest group
    that may be (0 with fewer than two such groups), and whether one of those groups is under twice
    the test share (:func:`_pick_groups` takes a group only if it brings the count closer to the
    share, so with none it holds out nothing). Joining groups never gives more of either."""
    _, sizes = _scorable_groups(group, n_groups, unusable)
    if len(sizes) < 2:
        return 0, False
    total = int(sizes.sum())
    return total - int(sizes.max()), int(sizes.min()) < 2 * test_share * total


def _link_copies(images: _Images, rows: np.ndarray, unusable: np.ndarray, test_share: float, vectors,
                 source: str) -> dict:
    """Put the images whose feature rows are identical into one group (``images.group``), and say what
    was done: ``copies`` (the images that share their row with another), ``sets`` (a few such sets),
    ``apart`` and ``apart_sets`` (of them, the images in sets left apart, and a few of those sets,
    the largest first).

    Copies go together, unless that takes from the draw the images it needs: a row that many images
    share (blank renders, all zeros; a failed decode) can join, through the groups by line and by
    words, nearly every image into one group, leaving too few outside it to hold out `test_share` of
    the images (or none). Then the largest sets are left apart, down to the largest size that leaves
    outside the largest group as many images as `test_share` of those with words and features (or
    as many as without the copies, if fewer) and a group the draw can take (:func:`_room`; linking
    fewer sets never leaves less, so that size is found by bisection). ``im2vec evaluate --train``
    leaves out a held-out image whose row is a training image's (and says so). A store that gives
    every image with words and features one row (it tells none apart) is refused: no split of it
    can be evaluated."""
    out = {"copies": 0, "sets": [], "apart": 0, "apart_sets": []}
    a, b, first = _linked_by_features(vectors, rows)
    if not len(a):
        return out
    counts = np.bincount(first, minlength=len(first))
    roots = np.flatnonzero(counts > 1)  # (positions among the images with a row, in the images' order)
    set_size = counts[roots]
    out["copies"], out["sets"] = int(set_size.sum()), _copy_sets(images, rows, first, roots)
    link_size = counts[first[first != np.arange(len(first))]]  # per pair (a, b): the size of its set
    del counts
    group = images.group

    def grouped(limit: int) -> tuple[np.ndarray, int]:
        keep = link_size <= limit
        if not keep.any():
            return group, images.n_groups
        labels, n_groups = _components(images.n_groups, [(group[a[keep]], group[b[keep]])])
        return labels[group], n_groups

    base_outside, base_drawable = _room(group, images.n_groups, unusable, test_share)
    if not (base_outside and base_drawable):
        return out  # (no split without them either: what the split says then is not about copies)
    if len(roots) == 1 and set_size[0] == len(first):  # (every image with words and features)
        raise ValueError(f"{source}: each of its {len(first)} images with words and features has the same feature "
                         f"row in the store, bit for bit (e.g. {' = '.join(out['sets'][0])}): the store tells none "
                         f"of them apart (constant rows, all zeros: an extraction that went wrong?), so no model "
                         f"or evaluation could either. Extract their features again into a new store (`im2vec "
                         f"extract`) and split with it.")
    need = min(base_outside, test_share * len(first))

    def enough(linked: tuple[np.ndarray, int]) -> bool:
        outside, drawable = _room(*linked, unusable, test_share)
        return drawable and outside >= need

    sizes = np.unique(set_size)
    linked = grouped(int(sizes[-1]))
    if not enough(linked):
        lo, hi = -1, len(sizes) - 1  # sizes[hi] too large; sizes[lo] (-1: no set) small enough
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if enough(grouped(int(sizes[mid]))):
                lo = mid
            else:
                hi = mid
        limit = int(sizes[lo]) if lo >= 0 else 0
        linked = grouped(limit)
        apart = np.flatnonzero(set_size > limit)
        apart = apart[np.argsort(-set_size[apart], kind="stable")]  # the largest first
        out["apart"] = int(set_size[apart].sum())
        out["apart_sets"] = _copy_sets(images, rows, first, roots[apart])
        out["apart_count"], out["apart_largest"] = len(apart), int(set_size[apart[0]])
    images.group, images.n_groups = linked
    return out


def _token_list(tokens: bytearray, starts: np.ndarray) -> list[str]:
    """The tokens of `tokens` (each followed by "\\n") that begin at `starts`, as a list."""
    find = tokens.index
    return [tokens[a:find(b"\n", a)].decode("utf-8") for a in starts.tolist()]


class _Missing:
    """The tokens of the images without features, in the source's order, as often as they are
    iterated (a list of them would cost what :class:`_Images` saves)."""

    def __init__(self, images: _Images, ids: np.ndarray) -> None:
        self.images, self.ids = images, ids

    def __iter__(self) -> Iterator[str]:
        return self.images.tokens_of(self.ids)


def _stamp(source: str) -> tuple[int, int, int]:
    """What changes when a file is written to or replaced: its inode, size and modification time."""
    st = os.stat(source)
    return st.st_ino, st.st_size, st.st_mtime_ns


def _changed(source: str) -> ValueError:
    return ValueError(f"{source}: the file changed between the split's two reads of it (the second finds each "
                      f"image by its place in the first); split it again once nothing writes to it.")


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
        (``counts.images_without_features``, examples under ``features``). Images with words whose
        feature rows are identical, bit for bit (copies of one picture), are held out or trained
        together, as a group (``counts.images_with_identical_features``, examples under
        ``features.identical_features``), unless that leaves too few images outside one group to
        hold out `test_share` (blank renders: one row on many images): then the largest such sets
        are left apart, with a warning (``counts.images_with_identical_features_apart``,
        ``features.identical_features_apart``). Without it the store is not looked at: an image
        without features may be held out, and a copy of a training image too.

    Returns
    -------
    DocumentSplit

    Raises
    ------
    ValueError
        A share out of range; a file that is not UTF-8 text, holds no document or no image token;
        a ``.gz``/``.bz2`` file cut short or damaged, or one compressed otherwise (xz, zstd, zip); a
        split that would leave no test or no training image, or no zero-shot tag when asked for;
        `features` holds none of the images with words, or gives them all one row; `documents`
        changed between the split's two reads of it.
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

    # pass 1: each image's words, and the groups (flat arrays, not a dict of lists: _Images)
    stamp = _stamp(source)  # pass 2 finds its images by position: a file changed in between is refused
    images = _Images(source, prefix, group_by)
    n_lines, n_docs, n_image_lines, n_images = images.n_lines, images.n_docs, images.n_image_lines, images.n
    if not n_docs:
        what = f"{n_lines} lines, all blank" if n_lines else "it is empty"
        raise ValueError(f"{source}: no documents in it ({what}); give one document a line, tokens separated by "
                         f"spaces (`im2vec normalize SOURCE -o {os.path.basename(source)}` writes them).")
    if not n_images:
        raise ValueError(f"{source}: no image token in its {n_docs} documents (no token starts with {prefix!r}); "
                         f"give documents with image tokens (`im2vec normalize` writes {IMAGE_PREFIX}<key> first in "
                         f"each line), or pass the prefix your image tokens start with as prefix=...")
    everyone = np.arange(n_images)

    # the images the store lacks (in the source's order); the store's keys are let go of here
    no_features = np.zeros(n_images, dtype=bool)
    copies: dict = {}
    if store is not None:
        rows = store.rows_of(images.tokens_of(everyone), n_images)
        store.digests = store.rows = None
        no_features = rows < 0
        # images whose features are identical (copies of one picture) go together: one group. An image
        # without words is left out: never held out nor trained on, it would only keep its copies from being held out
        n_words = images.lengths[images.line]
        unusable_images = (n_words == 0) | no_features
        rows[n_words == 0] = -1
        del n_words
        copies = _link_copies(images, rows, unusable_images, test_share, store.vectors, source)
        del rows, unusable_images
    missing = _Missing(images, np.flatnonzero(no_features))
    n_missing = len(missing.ids)
    n_skipped = sum(1 for img in missing if img in store.skipped) if n_missing else 0  # (of them, by the extraction)
    if n_missing and n_missing == n_images:
        raise ValueError(f"{source}: none of its {n_images} images is in the feature store "
                         f"{store.path!r}: its {store.count} keys look like {store.examples}, the documents' "
                         f"image tokens like {[images.token(i) for i in range(min(3, n_images))]}; give the store "
                         f"`im2vec extract` wrote for these images (a key must be the image token exactly, prefix "
                         f"included).")
    usable = "with words and features" if store is not None else "with words"

    # which groups are held out: only groups whose every image has words (a test image needs tags) and,
    # with a store, features (evaluate scores an image by its features)
    n_words = images.lengths[images.line]
    group = images.group
    unusable = np.zeros(images.n_groups, dtype=bool)
    unusable[group[(n_words == 0) | no_features]] = True
    scorable = np.flatnonzero(~unusable)  # the groups that may be held out
    del unusable
    sizes = np.bincount(group, minlength=images.n_groups)[scorable]
    n_scorable = int(sizes.sum())
    if not n_scorable:
        if store is not None and ((n_words > 0) & ~no_features).any():  # usable images, each grouped with another
            raise ValueError(f"{source}: each of its images with words and features shares a group (the images of "
                             f"one line" + (", or with the same words" if group_by == "words" else "") + ") with an "
                             f"image without words or without features in the feature store {store.path!r} "
                             f"({n_missing} of its {n_images} images lack features, "
                             f"{_examples(missing, store.skipped, n_skipped)}), "
                             f"and a group is held out whole, so none could be scored; extract the missing images' "
                             f"features into the store (`im2vec extract`)"
                             + (", or split with group_by='document'" if group_by == "words" else "") + ".")
        if store is not None and (n_words > 0).any():  # images with words, but none with features
            raise ValueError(f"{source}: none of its images with words is in the feature store {store.path!r} "
                             f"({n_missing} of its {n_images} images lack features, "
                             f"{_examples(missing, store.skipped, n_skipped)}; "
                             f"those it holds have no words), so none "
                             f"could be scored; extract the missing images' features into the store (`im2vec "
                             f"extract`), or give the store made from these documents' images.")
        raise ValueError(f"{source}: none of its {n_images} images has a word beside it, so none could be "
                         f"scored; give documents with each image's tags or caption words.")
    if len(sizes) == 1:
        raise ValueError(f"{source}: its {n_scorable} images {usable} form one group (images of one line, or with "
                         f"the same words, go together), so holding any out would leave none to train on; give more "
                         f"images" + (", or group_by='document' if they only share their words" if
                                      group_by == "words" else "") + ".")
    # drawn as pick_test_groups draws: a group is named by its smallest image token
    root = _group_names(images, group)[scorable]
    keys = np.fromiter((_unit_hash(seed, images.token(i)) for i in root.tolist()), dtype=np.float64,
                       count=len(root))
    taken, n_test = _pick_groups(keys, sizes, lambda g, root=root: images.token(int(root[g])), test_share * n_scorable)
    del keys, root
    if not n_test:
        raise ValueError(f"{source}: a test share of {test_share} holds out no image: the {n_scorable} images "
                         f"{usable} form {len(sizes)} groups (images of one line, or with the same words, go together), "
                         f"the smallest of {int(sizes.min())} images; raise test_share.")
    if n_test >= n_scorable:
        raise ValueError(f"{source}: a test share of {test_share} holds out every image {usable} ({n_scorable} "
                         f"in {len(sizes)} groups), leaving none to train on; lower test_share, or give more images.")
    n_test_groups = int(taken.sum())
    is_test_group = np.zeros(images.n_groups, dtype=bool)
    is_test_group[scorable[taken]] = True
    is_test = is_test_group[group]
    del is_test_group, scorable, taken, sizes
    featured = ~no_features

    zero: list[str] = []
    dropped = np.zeros(len(images.words), dtype=bool)  # the zero-shot tags, by word id
    if zero_shot_share > 0:
        counts_of = images.word_counts(featured)  # (an image without features is on neither side)
        tag_images = {images.words[w]: int(counts_of[w]) for w in np.flatnonzero(counts_of).tolist()}
        del counts_of
        tag_images.pop("#", None)  # a bare "#" is a comment in zero_shot.txt (evaluate.read_tag_file): never zero-shot
        zero = zero_shot_groups(tag_images, seed, zero_shot_share, int(min_tag_images))
        if not zero:
            eligible = sum(1 for n in tag_images.values() if n >= min_tag_images)
            raise ValueError(f"{source}: a zero-shot share of {zero_shot_share} draws no tag of the {eligible} on at "
                             f"least {min_tag_images} images (of {len(tag_images)} tags); raise "
                             f"zero_shot_share or try another seed, or leave zero_shot_share at 0 for no zero-shot "
                             f"tags.")
        del tag_images
        zero_ids = {w: i for i, w in enumerate(images.words)}
        dropped[[zero_ids[t] for t in zero]] = True
        del zero_ids
    zero_set = set(zero)
    # a training image keeps a line only if a word is left beside it
    if not (~is_test & featured & (images.kept_words(dropped)[images.line] > 0)).any():
        raise ValueError(f"{source}: the zero-shot tags {zero[:5]} take every word of the training images; lower "
                         f"zero_shot_share.")

    # pass 2: the training documents; the images that keep a line with words are the training images
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"lines": n_lines, "documents": n_docs, "image_lines": n_image_lines, "text_lines": n_docs - n_image_lines,
              "images": n_images, "images_without_words": int((n_words == 0).sum()),
              "groups": images.n_groups, "test_groups": n_test_groups, "test_images": n_test}
    del n_words
    if store is not None:
        counts["images_without_features"] = n_missing
        counts["images_skipped_by_extraction"] = n_skipped
        counts["images_with_identical_features"] = copies["copies"]
        counts["images_with_identical_features_apart"] = copies["apart"]
    config = {"seed": seed, "test_share": test_share, "zero_shot_share": zero_shot_share, "prefix": prefix,
              "group_by": group_by, "min_tag_images": int(min_tag_images)}
    record = {"format": FORMAT, "version": _VERSION, "complete": False,
              "documents": {"path": os.path.abspath(source), "sha256": None, "bytes": os.path.getsize(source)},
              "config": config, "counts": counts, "files": {}, "zero_shot_tags": zero,
              "features": None if store is None else store.record(missing, copies)}
    atomic_write_json(folder / SPLIT_FILES["record"], record)  # first: the folder is this function's from now on
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    # each image: 0 training (if a line keeps it), 1 held out, 2 without features; read by occurrence
    state = (is_test.astype(np.uint8) + 2 * no_features.astype(np.uint8)).tobytes()
    occurrence_image = memoryview(images.occurrence_image)
    n_occurrences = images.n_occurrences
    trained = bytearray(n_images)
    train_ids = array("q")  # in the order of their first training line
    zero_in_text: set[str] = set()  # the zero-shot tags a text line carries: where their vectors come from
    n_train_lines = n_test_lines = n_dropped = n_made_text = k = 0
    with atomic_path(folder / SPLIT_FILES["train_documents"]) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for _, tokens in _read_lines(source):
            if not tokens:
                continue
            line_images = [t for t in tokens if t.startswith(prefix)]
            if line_images:
                m = len(line_images)
                if k + m > n_occurrences:
                    raise _changed(source)
                ids = occurrence_image[k:k + m].tolist()
                k += m
                if images.token(ids[0]) != line_images[0]:  # (a rewrite that kept the size and the time stamp)
                    raise _changed(source)
                states = [state[i] for i in ids]
                if 1 in states:  # (all of them: one line is one group)
                    n_test_lines += 1
                    continue
                tokens = [t for t in tokens if t not in zero_set]
                if len(tokens) == m:  # no word left beside the images
                    n_dropped += 1
                    continue
                if 2 in states:  # train would refuse them
                    lacking = {img for img, s in zip(line_images, states) if s == 2}
                    tokens = [t for t in tokens if t not in lacking]
                    ids = [i for i, s in zip(ids, states) if s != 2]
                    n_made_text += not ids  # its words stay, as a text line
                for i in ids:
                    if not trained[i]:
                        trained[i] = 1
                        train_ids.append(i)
            elif zero_set:
                zero_in_text.update(t for t in tokens if t in zero_set)
            n_train_lines += 1
            out.write(" ".join(tokens) + "\n")
        if k != n_occurrences or _stamp(source) != stamp:
            raise _changed(source)
    del trained, state, occurrence_image
    train_order = _as_numpy(train_ids, np.int64)
    test_order = np.flatnonzero(is_test)
    words = images.words

    def jsonl(order: np.ndarray, keep: Callable[[int], bool]) -> Iterator[bytes]:
        """The lines of train.jsonl / test.jsonl for the images `order`, a block at a time."""
        block = 1 << 14
        for a in range(0, len(order), block):
            part = order[a:a + block]
            yield "".join(json.dumps({"key": images.token(i), "tags": [words[w] for w in images.line_word_ids(line)
                                                                     if keep(w)]}, ensure_ascii=False) + "\n"
                          for i, line in zip(part.tolist(), images.line[part].tolist())).encode()

    atomic_write(folder / SPLIT_FILES["train"], lambda f: f.writelines(jsonl(train_order, lambda w: not dropped[w])))
    # (the held-out share, at once)
    atomic_write_bytes(folder / SPLIT_FILES["test"], b"".join(jsonl(test_order, lambda w: True)))
    files = {k: SPLIT_FILES[k] for k in ("train_documents", "train", "test")}
    zs_path = folder / SPLIT_FILES["zero_shot"]
    if zero:
        atomic_write_bytes(zs_path, "".join(t + "\n" for t in zero).encode())
        files["zero_shot"] = SPLIT_FILES["zero_shot"]
    elif zs_path.is_file():  # an earlier split's, in this function's own folder: no longer true
        zs_path.unlink()
    n_zero_in_test = int((images.word_counts(is_test)[dropped] > 0).sum()) if zero else 0
    if store is not None:
        counts["lines_without_featured_images"] = n_made_text
    counts.update({"train_images": len(train_order), "train_lines": n_train_lines, "test_lines": n_test_lines,
                   "dropped_lines": n_dropped, "zero_shot_tags": len(zero),
                   "zero_shot_tags_in_test": n_zero_in_test,
                   "zero_shot_tags_in_text": len(zero_in_text)})
    record.update({"complete": True, "files": files})
    record["documents"]["sha256"] = digest.hexdigest()
    atomic_write_json(folder / SPLIT_FILES["record"], record)  # last: the split is whole
    tokens, starts = images.tokens, images.start
    images = is_test = no_features = featured = group = dropped = missing = None  # (let go: the result keeps the tokens and where its keys start)
    result = DocumentSplit(folder, zero, counts, record, _tokens=(tokens, starts[train_order], starts[test_order]))
    if len(zero_in_text) < len(zero):
        result.warnings.append(_zero_shot_without_text(source, zero, zero_in_text, counts["text_lines"]))
    if copies.get("apart"):
        result.warnings.append(_copies_apart(source, copies, test_share, group_by))
    for message in result.warnings:
        logger.warning(message, extra={"im2vec_warning": True})  # (im2vec split says it as `warning: ...`)
    logger.info("split of %s into %s: %s", source, folder, result.summary())
    return result


def _copies_apart(source: str, copies: dict, test_share: float, group_by: str) -> str:
    """The warning for sets of images with identical features that :func:`_link_copies` left apart."""
    n, largest = copies["apart_count"], copies["apart_largest"]
    sets = "one set" if n == 1 else f"{n} sets, the largest of {largest} images"
    return (f"{copies['apart']} of the {copies['copies']} images of {source} whose feature rows are identical to "
            f"another's, bit for bit ({sets}; e.g. {' = '.join(copies['apart_sets'][0])}), are not kept "
            f"together: held out or trained together, with the images of their lines"
            + (" and of lines with the same words" if group_by == "words" else "") + ", they would join so many "
            f"images into one group that too few are left to hold out a test share of {test_share}. Some of them "
            f"may be held out while a copy trains; `im2vec evaluate --train` leaves such held-out images out "
            f"(copies of training images), and says so. A row that many images share is a blank or broken picture, "
            f"or an extraction that went wrong: look at them, and if their features are wrong, extract them again "
            f"into a new store (`im2vec extract`) and split with it.")


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
