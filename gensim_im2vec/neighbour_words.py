"""The images' words that `space_neighbours` fits (``Im2Vec.fit_neighbours``, and ``train()``'s last
epoch), held as NumPy arrays of (image, word) pairs instead of a Python dict per image.

An image's words are the other words of the documents it is in that the vocabulary has. Each
(image, word) pair of vocabulary indices is one int64 key ``image · base + word`` (``base`` the
vocabulary's size + 1), so the keys sort image-major and word-minor: the bags' order (the images in
vocabulary order, each one's words in vocabulary order) whatever order the documents came in.

What this replaces: a ``dict`` per image of its words' indices as keys, about 700 bytes an image
while training (70 GB at 100M images). The pairs cost 8 bytes each once distinct: each job's pairs
are copied into one buffer, sorted in place to its distinct pairs whenever it is full, and grown to
hold half as many again (:class:`DistinctKeys`), so the memory follows the distinct pairs (12 bytes
each at most), not the occurrences (joint mode repeats each image document about 12 times in an
epoch). Measured by ``benchmarks/bench_neighbour_words.py`` on 80,000 images of 14.3 distinct words
each: 172 bytes an image gathered (peak 212) against the dicts' 666, the gather 2-3 times as fast
(docs/scale.md, the neighbours' section).

The fitted bags are kept by key (``Im2Vec.neighbour_keys``, ``neighbour_tag_keys``), so the images
a later ``train()`` does not see keep their words across a vocabulary built again (which renumbers
the indices): :class:`NeighbourPool` holds them as the fit left them, and :func:`pool_keys` finds
them in the vocabulary as it is then.

>>> import numpy as np
>>> from gensim_im2vec.neighbour_words import ImageWords, add_documents, bags_from_pairs
>>> index = {"w0": 0, "w1": 1, "img:a": 2, "img:b": 3}
>>> rows_of = np.array([-1, -1, 0, 1])                   # image rows of the vocabulary (-1: a word)
>>> gathered = ImageWords(len(index))
>>> add_documents([["img:b", "w1"], ["img:a", "w1", "w0", "other"], ["img:b", "w0", "w1"]], index, rows_of, gathered)
>>> images, ptr, tag_ids, bag_words = bags_from_pairs(gathered.pairs.result(), gathered.base)
>>> images.tolist(), ptr.tolist(), tag_ids.tolist(), bag_words.tolist()
([2, 3], [0, 2, 4], [0, 1], [0, 1, 0, 1])
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from gensim_im2vec.store import key_rows

__all__ = ["DistinctKeys", "ImageWords", "NeighbourPool", "add_documents", "bags_from_pairs", "count_images",
           "document_keys", "pool_from_words", "pool_keys"]

#: Keys a :class:`DistinctKeys` makes room for beyond its distinct ones, at least (half as many as
#: those once they are more): 128 kB, a few jobs' pairs. (2 MB cost a demo-sized train() 0.2-1.5 ms
#: of fresh pages, a third of its gather.)
PENDING_MIN = 1 << 14
#: Tokens :func:`add_documents` looks up before it makes their pairs (a training job is one batch:
#: gensim's jobs hold at most 10,000 words).
DOCUMENT_BATCH = 1 << 16
#: Keys one step of :func:`bags_from_pairs`, :func:`pool_keys` and the de-duplication reads (its
#: temporaries a few times 2 MB).
PAIRS_CHUNK = 1 << 18


def _sort_distinct(a: np.ndarray) -> int:
    """Sort `a` in place (NumPy releases the GIL while it sorts) and move its distinct keys to its
    front, a chunk at a time (no copy of `a`); their count."""
    a.sort()
    n, last = 0, None
    for lo in range(0, len(a), PAIRS_CHUNK):
        chunk = a[lo:lo + PAIRS_CHUNK]
        keep = np.empty(len(chunk), dtype=bool)
        keep[0] = last is None or chunk[0] != last
        np.not_equal(chunk[1:], chunk[:-1], out=keep[1:])
        last = int(chunk[-1])
        kept = chunk[keep]  # (a copy: the writes below may reach into the chunk)
        a[n:n + len(kept)] = kept
        n += len(kept)
    return n


class DistinctKeys:
    """A set of int64 keys added an array at a time from several threads, in memory bounded by the
    distinct keys rather than the keys added (joint mode adds each image's pairs about 12 times an
    epoch): one buffer, its front the distinct keys so far and room for about half as many again
    (:data:`PENDING_MIN` at least). An add copies its keys into the room under the lock; the add
    that finds it full sorts the buffer in place, keeps its distinct keys at the front and makes
    the room again (the buffer grows by a ``realloc``), outside the lock, while the others' adds
    wait aside in a list. So about 12 bytes a distinct key at most (8 once :meth:`result` trims
    it), and each key sorted a few times."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._buf = np.empty(0, dtype=np.int64)
        self._n = 0  # the keys in _buf
        self._aside: list[np.ndarray] = []  # added while the buffer was being sorted
        self._making_room = False
        self._clean = True  # _buf[:_n] sorted and distinct
        self._closed = False  # result() was called: no more adds (the buffer it returned is the caller's)

    def add(self, keys: np.ndarray) -> None:
        """Add `keys`; once :meth:`result` has been called, nothing (a job of an interrupted
        ``train()`` that a worker still reads after it ended: its buffer is the fit's by then)."""
        if not len(keys):
            return
        with self.lock:
            if self._closed:
                return
            self._clean = False
            if not self._making_room and self._n + len(keys) <= len(self._buf):
                self._buf[self._n:self._n + len(keys)] = keys
                self._n += len(keys)
                return
            self._aside.append(keys)
            if self._making_room:  # (the thread making room moves them in)
                return
            self._making_room = True
        self._make_room()

    def _make_room(self) -> None:
        """(The one thread whose add found the buffer full, `_making_room` set.) Move the keys set
        aside into the buffer until none is left: when the next array does not fit, sort the buffer
        to its distinct keys, and grow it if that leaves less room than half of them."""
        while True:
            with self.lock:
                aside, self._aside = self._aside, []
                if not aside:
                    self._making_room = False
                    return
            for j, part in enumerate(aside):
                if self._n + len(part) > len(self._buf):
                    try:
                        self._n = _sort_distinct(self._buf[:self._n])
                        size = self._n + max(PENDING_MIN, self._n // 2, len(part))
                        if size > len(self._buf):
                            self._buf.resize(size, refcheck=False)  # (no view of it is held)
                    except BaseException:  # (e.g. MemoryError growing it) the keys aside stay aside
                        with self.lock:
                            self._aside[:0] = aside[j:]
                            self._making_room = False
                        raise
                self._buf[self._n:self._n + len(part)] = part
                self._n += len(part)

    def result(self) -> np.ndarray:
        """Every key added, sorted and distinct: the buffer itself, trimmed to them. (Once every
        thread's add has returned: the training's jobs have ended.)"""
        with self.lock:
            self._closed = True
            if self._clean and not self._aside:
                return self._buf
            self._making_room = True
        self._make_room()  # (the adds that were set aside; no add comes after it: closed)
        self._n = _sort_distinct(self._buf[:self._n])
        self._buf.resize(self._n, refcheck=False)
        self._clean = True
        return self._buf


class ImageWords:
    """The images of some documents and their words (:func:`add_documents`): the distinct (image,
    word) pairs as keys ``image · base + word`` (`pairs`), and the images met only in documents
    without a word of the vocabulary (`wordless`: a ``train()`` that sees such an image fits it with
    no words, as before). `base` is the vocabulary's size + 1."""

    def __init__(self, n_vocab: int) -> None:
        self.base = int(n_vocab) + 1
        self.pairs = DistinctKeys()
        self.wordless = DistinctKeys()

    def add(self, pairs: np.ndarray, wordless: np.ndarray) -> None:
        self.pairs.add(pairs)
        self.wordless.add(wordless)

    def seen(self, images: np.ndarray) -> np.ndarray:
        """Whether each of `images` (vocabulary indices) is among the images gathered, with or without
        words (a binary search of each; once the adds have ended: it sorts both first)."""
        keys, base = self.pairs.result(), self.base
        images = np.asarray(images, dtype=np.int64)
        with_words = np.searchsorted(keys, images * base + base, "left") > np.searchsorted(keys, images * base)
        wordless = self.wordless.result()
        at = np.minimum(np.searchsorted(wordless, images), max(len(wordless) - 1, 0))
        return with_words | (wordless[at] == images if len(wordless) else False)


def document_keys(ids: list[int], lengths: list[int], rows_of: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """The (image, word) keys of a batch of documents, and its images in documents without a word.

    `ids` are the documents' tokens' vocabulary indices one after the other (-1: not in it), `lengths`
    each document's count of them, `rows_of` the vocabulary's image rows (an index is an image where
    it is >= 0). Each distinct image of a document pairs with each distinct word of it (a token
    repeated in one document counts once; the same pair from two documents is left to
    :class:`DistinctKeys`): a few NumPy calls a batch, not a Python loop over the documents."""
    ids = np.asarray(ids, dtype=np.int64)
    doc = np.repeat(np.arange(len(lengths), dtype=np.int64), np.asarray(lengths, dtype=np.int64))
    known = ids >= 0
    # each document's distinct tokens (a document that repeats an image or a word pairs them once: its
    # pairs follow its distinct tokens, not their occurrences), in document order, each sorted
    tokens = np.unique(doc[known] * base + ids[known])
    doc = tokens // base
    ids = tokens - doc * base
    image = rows_of[ids] >= 0
    if not image.any():
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    img_ids, img_doc = ids[image], doc[image]
    word_ids = ids[~image]
    # each document's words: word_ids[starts[d]:starts[d + 1]] (the tokens are in document order)
    starts = np.searchsorted(doc[~image], np.arange(len(lengths) + 1, dtype=np.int64))
    first, count = starts[img_doc], np.diff(starts)[img_doc]
    ends = np.cumsum(count)
    at = np.repeat(first - (ends - count), count) + np.arange(int(ends[-1]), dtype=np.int64)
    keys = np.repeat(img_ids * base, count) + word_ids[at]
    return keys, img_ids[count == 0]


def add_documents(documents: Iterable[Sequence[str]], key_to_index: Mapping[str, int], rows_of: np.ndarray,
                  gathered: ImageWords) -> None:
    """Add the images of `documents` and their words to `gathered`: the tokens of
    :data:`DOCUMENT_BATCH` at a time looked up in `key_to_index` at once (:func:`key_rows`: a
    dict's ``get`` mapped in C, a model's :class:`~gensim_im2vec.store.VocabKeyIndex` its words'
    dict so and its image index in one search), their pairs made by :func:`document_keys`."""
    base = gathered.base
    tokens: list[str] = []
    lengths: list[int] = []
    for doc in documents:
        if isinstance(doc, str):
            raise TypeError(f"each document must be a list of tokens, got the str {doc[:50]!r}.")
        before = len(tokens)
        tokens.extend(doc)
        lengths.append(len(tokens) - before)
        if len(tokens) >= DOCUMENT_BATCH:
            gathered.add(*document_keys(key_rows(key_to_index, tokens), lengths, rows_of, base))
            tokens, lengths = [], []
    if tokens:
        gathered.add(*document_keys(key_rows(key_to_index, tokens), lengths, rows_of, base))


def count_images(keys: np.ndarray, base: int) -> int:
    """How many images the sorted (image, word) `keys` hold."""
    n, last = 0, -1
    for lo in range(0, len(keys), PAIRS_CHUNK):
        img = keys[lo:lo + PAIRS_CHUNK] // base
        n += int(np.count_nonzero(np.diff(img, prepend=last)))
        last = int(img[-1])
    return n


def bags_from_pairs(keys: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The neighbours' bags from sorted distinct (image, word) `keys` (``image · base + word``): the
    images (int64, vocabulary order), ``ptr`` (int64, one more than the images: image j's words are
    ``bag_words[ptr[j]:ptr[j + 1]]``), the distinct words (int64, vocabulary order) and ``bag_words``
    (int32 positions into them, each image's in vocabulary order). Read :data:`PAIRS_CHUNK` keys at
    a time: besides what it returns, a bool a vocabulary entry and a position a word."""
    n_vocab = base - 1
    present = np.zeros(n_vocab, dtype=bool)
    bag_words = np.empty(len(keys), dtype=np.int32 if n_vocab <= np.iinfo(np.int32).max else np.int64)
    images, counts = [], []
    for lo in range(0, len(keys), PAIRS_CHUNK):
        chunk = keys[lo:lo + PAIRS_CHUNK]
        img = chunk // base
        word = chunk - img * base
        present[word] = True
        bag_words[lo:lo + len(chunk)] = word
        first = np.flatnonzero(np.diff(img, prepend=img[0] - 1))
        u, c = img[first], np.diff(first, append=len(img))
        if images and images[-1][-1] == u[0]:  # (an image whose words a chunk's end cut)
            counts[-1][-1] += c[0]
            u, c = u[1:], c[1:]
        if len(u):
            images.append(u)
            counts.append(c)
    images = np.concatenate(images) if images else np.empty(0, dtype=np.int64)
    ptr = np.zeros(len(images) + 1, dtype=np.int64)
    if len(images):
        np.cumsum(np.concatenate(counts), out=ptr[1:])
    tag_ids = np.flatnonzero(present).astype(np.int64)
    position = np.cumsum(present[:tag_ids[-1] + 1] if len(tag_ids) else present[:0], dtype=np.int64) - 1
    for lo in range(0, len(bag_words), PAIRS_CHUNK):
        bag_words[lo:lo + PAIRS_CHUNK] = position[bag_words[lo:lo + PAIRS_CHUNK]]
    return images, ptr, tag_ids, bag_words.astype(np.int32, copy=False)


class NeighbourPool(NamedTuple):
    """The fitted images and their words by key, kept by a ``train()`` with `space_neighbours` for the
    images its last epoch does not see: the fit's own arrays (``neighbour_keys``, ``neighbour_bag_ptr``,
    ``neighbour_bag_words``, ``neighbour_tag_keys``), not a copy."""

    keys: list
    ptr: np.ndarray
    words: np.ndarray
    tags: list


def pool_from_words(words: Mapping[str, Sequence[str]]) -> NeighbourPool:
    """A pool as saved before the pools were arrays ({image key: [its words' keys]}, before 2026-12-07:
    an interrupted ``train()``'s, in a checkpoint, say)."""
    tags = list(dict.fromkeys(itertools.chain.from_iterable(words.values())))
    at = {t: j for j, t in enumerate(tags)}
    ptr = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, words.values()), dtype=np.int64, count=len(words)), out=ptr[1:])
    bag = np.fromiter((at[t] for t in itertools.chain.from_iterable(words.values())), dtype=np.int32,
                      count=int(ptr[-1]))
    return NeighbourPool(list(words), ptr, bag, tags)


def pool_keys(pool: NeighbourPool, key_to_index: Mapping[str, int], rows_of: np.ndarray, base: int,
              keep: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """`pool`'s (image, word) keys in the vocabulary as it is now, sorted: the images that are still
    images of it with their words that are still its words (an image left without one drops out),
    and with `keep` (a mask of vocabulary image indices: :meth:`ImageWords.seen` negated) only the
    images it keeps, decided once an image before its pairs are made. One lookup a key (its images,
    then its distinct words); the pairs written a chunk at a time into one array of at most the
    pool's pairs (8 bytes each), then trimmed and sorted in place."""
    def indices(keys, image: bool) -> np.ndarray:
        ids = key_rows(key_to_index, keys)  # (a VocabKeyIndex searches its images at once)
        ok = ids >= 0
        ok[ok] = (rows_of[ids[ok]] >= 0) == image
        ids[~ok] = -1
        return ids

    img, tag = indices(pool.keys, True), indices(pool.tags, False)
    if keep is not None and len(img):
        kept = img >= 0
        kept[kept] = keep(img[kept])
        img[~kept] = -1
    ptr = np.asarray(pool.ptr, dtype=np.int64)
    total = int(ptr[-1]) if len(ptr) else 0
    keys, n = np.empty(total, dtype=np.int64), 0
    for lo in range(0, total, PAIRS_CHUNK):
        at = np.arange(lo, min(lo + PAIRS_CHUNK, total), dtype=np.int64)
        i = img[np.searchsorted(ptr, at, "right") - 1]
        t = tag[np.asarray(pool.words[lo:lo + len(at)], dtype=np.int64)]
        ok = (i >= 0) & (t >= 0)
        got = int(np.count_nonzero(ok))
        keys[n:n + got] = i[ok] * base + t[ok]
        n += got
    keys.resize(n, refcheck=False)  # (no view of it is held)
    keys.sort()
    return keys
