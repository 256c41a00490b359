"""Training from a ``corpus_file``: gensim's multi-core file mode, with image tokens.

A corpus file is gensim's :class:`~gensim.models.word2vec.LineSentence` format: one document per
line, tokens separated by whitespace (image keys hold none: :func:`gensim_im2vec.keys.encode_key`
writes whitespace as ``%XX``). Every worker reads its own byte ranges of the file, so no single
producer thread feeds the workers. A UTF-8 byte order mark at the start of the file (Notepad,
PowerShell) is not part of the first token, in the vocabulary scan
(:class:`~gensim_im2vec.corpora.LineDocuments`) as in the workers' first range; gensim's own C++
reader (text-only models) keeps it, so there the file's first word is left out of training once.

Two readers, one per kind of model:

* **Text only** (the model has no image features, words and output vectors learn): gensim's own
  ``corpus_file`` path, unchanged — its C++ reader and its nogil loop
  (``gensim.models.word2vec_corpusfile``), at gensim's speed.
* **With images**: gensim's C++ reader cannot tell an image token from a word, so the workers
  read the file in Python. It is cut as gensim cuts it, at offsets ``size × k / n``, but into
  ``n`` = 16 ranges per worker (of at least 64 KiB), each moved on to the next line start so that
  no document is split; a worker takes the next range whenever it has read its last one, so a file
  whose image documents sit together (the costly ones) still keeps every worker busy. A worker
  reads the lines that *start* in its ranges, cuts them into jobs of ``batch_words`` as gensim's
  job producer does, and trains each job through
  :meth:`Im2Vec._do_train_job <gensim_im2vec.model.Im2Vec._do_train_job>` — the same path, and
  the same kernel, as ``corpus_iterable=`` (one worker trains the very same model). The learning
  rate decays with the words (or documents) that all workers together have trained, as in gensim's
  job producer.

>>> import os, tempfile
>>> import numpy as np
>>> from gensim_im2vec import Im2Vec
>>> rng = np.random.default_rng(0)
>>> feats = {f"img:{i}": rng.normal(size=16) + (5.0 if i % 2 else -5.0) for i in range(40)}
>>> path = os.path.join(tempfile.mkdtemp(), "docs.txt")
>>> with open(path, "w") as f:
...     for i in range(40):
...         _ = f.write(f"img:{i} {('cat', 'car')[i % 2]} photo\\n")
>>> model = Im2Vec(corpus_file=path, image_features=feats, vector_size=8, min_count=1, workers=2,
...                sample=0, epochs=2)
>>> model.is_image("img:3"), model.wv["img:3"].shape
(True, (8,))
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

import numpy as np
from smart_open.compression import get_supported_extensions

from gensim_im2vec.corpora import LineDocuments
from gensim_im2vec.store import key_rows

logger = logging.getLogger(__name__)

__all__ = ["CorpusFileEpoch", "byte_ranges", "check_corpus_file", "check_total_words", "corpus_file_sentences",
           "n_ranges", "read_documents", "train_ranges", "uses_gensim_reader"]

MAX_DOCUMENT_TOKENS = 10000  # LineSentence's max_sentence_length: longer lines are cut into chunks
RANGES_PER_WORKER = 16  # ranges the file is cut into, per worker: the workers share them out as they go
MIN_RANGE_BYTES = 1 << 16
_BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark

_FORMAT = ("a text file in LineSentence format: one document per line, tokens separated by spaces, "
           "image keys as written by gensim_im2vec.keys.encode_key")


def check_corpus_file(corpus_file, corpus_iterable=None) -> str:
    """Validate a ``corpus_file=`` argument at the boundary and return it as a str path.

    Raises
    ------
    TypeError
        Both `corpus_file` and `corpus_iterable` given, a path that is not str/PathLike, or a
        compressed file (gensim's file mode reads plain text only).
    FileNotFoundError, IsADirectoryError
        No such file.
    """
    if corpus_iterable is not None:
        raise TypeError("pass corpus_file= or corpus_iterable=, not both (corpus_file is read as the corpus).")
    if not isinstance(corpus_file, (str, os.PathLike)):
        raise TypeError(f"corpus_file must be a path (str or os.PathLike) to {_FORMAT}; got "
                        f"{type(corpus_file).__name__}. For documents in memory pass corpus_iterable=.")
    path = os.fspath(corpus_file)
    if os.path.isdir(path):
        raise IsADirectoryError(f"corpus_file={path!r} is a folder; pass the path of {_FORMAT} "
                                f"(for a folder of such files: corpus_iterable=PathLineSentences(folder)).")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"corpus_file={path!r}: no such file. Pass the path of {_FORMAT}.")
    if os.path.splitext(path)[1].lower() in get_supported_extensions():
        raise TypeError(f"corpus_file={path!r} is compressed; training from a file reads plain text only. "
                        f"Decompress it, or pass corpus_iterable=gensim.models.word2vec.LineSentence(path), "
                        f"which reads compressed files (from one producer thread).")
    return path


def check_total_words(total_words) -> None:
    """``train(corpus_file=...)`` needs the file's raw token count, as in gensim: each worker's
    learning rate decays with the share of it trained so far."""
    if not total_words:
        raise ValueError(
            f"train(corpus_file=...) needs total_words, the number of tokens in the file, got {total_words!r}; "
            f"after build_vocab(corpus_file=...) on the same file pass total_words=model.corpus_total_words.")


def corpus_file_sentences(corpus_file, corpus_iterable=None) -> LineDocuments:
    """The documents of `corpus_file` as gensim reads them to build a vocabulary from a file (its
    LineSentence), less a byte order mark at its start, as :func:`read_documents` reads them."""
    return LineDocuments(check_corpus_file(corpus_file, corpus_iterable))


def uses_gensim_reader(model) -> bool:
    """True when gensim's own ``corpus_file`` kernel trains `model` exactly as Im2Vec's would.

    That is when the model has no image features (so no image token, no W, no space step), and
    every word's input and output vectors may learn: not with ``train_words="new"``, whose lock
    factors for the text's words are the model's own (Im2Vec's kernel takes them; gensim's would
    read ``wv.vectors_lockf``, the user's).
    """
    return (model.features is None and model.train_words is True
            and bool(getattr(model, "train_outputs", True)))


def _line_start(f, pos: int) -> int:
    """The offset of the first line that starts at or after byte `pos` of the open binary file `f`."""
    if pos <= 0:
        return 0
    f.seek(pos - 1)
    f.readline()  # the rest of the line that holds byte pos - 1 (only its "\n" if a line starts at pos)
    return f.tell()


def byte_ranges(path: str, n: int) -> list[tuple[int, int]]:
    """Cut `path` into `n` byte ranges at gensim's offsets (``size × k / n``), each moved on to the
    next line start: a line belongs to the range its first byte is in, so every document is read
    once, whole. A range may be empty (a file of fewer lines than ranges)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        starts = [_line_start(f, size * k // n) for k in range(n)] + [size]
    return [(starts[k], max(starts[k], starts[k + 1])) for k in range(n)]


def n_ranges(size: int, workers: int) -> int:
    """How many ranges a file of `size` bytes is cut into for `workers` workers: 16 per worker,
    fewer for a small file (at least 64 KiB each), never fewer than `workers`."""
    return max(workers, min(workers * RANGES_PER_WORKER, size // MIN_RANGE_BYTES))


def read_documents(path: str, start: int, end: int, *, known=None, prefix: str = ""):
    """Yield the documents (lists of str tokens) of the lines that start in ``[start, end)``.

    Tokens as :class:`~gensim.models.word2vec.LineSentence` splits them (so as the vocabulary was
    built from the file); empty lines yield nothing, lines of more than 10,000 tokens yield
    10,000-token chunks. A UTF-8 byte order mark at byte 0 is dropped (the first range starts there),
    as :class:`~gensim_im2vec.corpora.LineDocuments` drops it. With `known` (a mapping of the vocabulary's keys) and `prefix`, a token
    that starts with `prefix` and is not in `known` raises ValueError naming it and its byte offset;
    the tokens of a block of :data:`CHECK_LINES` documents, or fewer of :data:`CHECK_TOKENS` tokens
    (long lines: the block is held until it is checked), from lines with the prefix in them are looked
    up at once (:func:`key_rows`: a model's :class:`~gensim_im2vec.store.VocabKeyIndex` searches its
    image keys together), before those documents are yielded.
    """
    check = known is not None and bool(prefix)
    block: list[list[str]] = []  # the documents read since the last check, and their tokens
    held = 0
    wanted: list[str] = []  # the tokens of the block's lines with the prefix in them,
    ends: list[int] = []  # where each of those lines' tokens end in it, and its byte offset
    ats: list[int] = []
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        for line in f:
            if pos >= end:
                break
            at, pos = pos, pos + len(line)
            if at == 0 and line.startswith(_BOM):
                line = line[len(_BOM):]
            text = line.decode("utf-8")  # as LineSentence: utils.to_unicode, strict
            tokens = text.split()
            if not tokens:
                continue
            if not check:
                if len(tokens) <= MAX_DOCUMENT_TOKENS:
                    yield tokens
                else:
                    yield from _chunks(tokens)
                continue
            if prefix in text:  # its tokens looked up with the block's, those it lacks tested for the prefix
                wanted.extend(tokens)
                ends.append(len(wanted))
                ats.append(at)
            if len(tokens) <= MAX_DOCUMENT_TOKENS:
                block.append(tokens)
            else:
                block.extend(_chunks(tokens))
            held += len(tokens)
            if len(block) >= CHECK_LINES or held >= CHECK_TOKENS:
                if wanted:
                    _check_image_tokens(wanted, ends, ats, known, prefix, path)
                yield from block
                block, wanted, ends, ats, held = [], [], [], [], 0
    if wanted:
        _check_image_tokens(wanted, ends, ats, known, prefix, path)
    yield from block


#: Documents of a corpus file whose image tokens :func:`read_documents` looks up at once.
CHECK_LINES = 1024
#: Tokens after which :func:`read_documents` checks its block of documents before CHECK_LINES of them: a
#: worker holds about this many token strings (≈ 4 MB) however long the lines (1,024 lines of 10,000
#: tokens: ≈ 650 MB).
CHECK_TOKENS = 1 << 16


def _chunks(tokens: list[str]):
    """A line of more than :data:`MAX_DOCUMENT_TOKENS` tokens, in chunks of that many."""
    for lo in range(0, len(tokens), MAX_DOCUMENT_TOKENS):
        yield tokens[lo:lo + MAX_DOCUMENT_TOKENS]


def _check_image_tokens(wanted, ends, ats, known, prefix, path) -> None:
    lacking = (i for i in np.flatnonzero(key_rows(known, wanted) < 0).tolist() if wanted[i].startswith(prefix))
    first = next(lacking, None)
    if first is None:
        return
    tok, at = wanted[first], ats[int(np.searchsorted(ends, first, side="right"))]
    raise ValueError(
        f"{path}, line at byte {at}: image token {tok!r} is not in the model's vocabulary. "
        f"Run build_vocab(corpus_file=..., update=True) on this file (with image_features that "
        f"contain it) before training on it, or create the model with missing_images='skip' "
        f"to train without such tokens.")


@dataclass
class CorpusFileEpoch:
    """What the workers of one ``corpus_file`` epoch share: the byte ranges still to read, the
    progress that sets the learning rate, and the first error (after which every worker stops at
    its next job)."""

    path: str
    cur_epoch: int
    total_examples: int | None
    total_words: int | None
    ranges: list = field(default_factory=list)
    next_range: int = 0
    done_examples: int = 0
    done_words: int = 0
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def open(cls, model, path: str, cur_epoch: int, total_examples=None, total_words=None) -> CorpusFileEpoch:
        """The epoch's shared state; the file is cut into ranges when Python reads it (images)."""
        epoch = cls(path, cur_epoch, total_examples, total_words)
        if not uses_gensim_reader(model):
            epoch.ranges = byte_ranges(path, n_ranges(os.path.getsize(path), max(int(model.workers), 1)))
        return epoch

    def take(self) -> tuple[int, int] | None:
        """The next range to read, in file order; None when all are taken or a worker failed."""
        with self.lock:
            if self.stop.is_set() or self.next_range >= len(self.ranges):
                return None
            self.next_range += 1
            return self.ranges[self.next_range - 1]

    def progress(self) -> float:
        """Share of the epoch trained so far, by documents when the total is known, else by words."""
        if self.total_examples:
            return self.done_examples / self.total_examples
        return self.done_words / self.total_words if self.total_words else 0.0

    def advance(self, examples: int, raw_words: int) -> None:
        with self.lock:
            self.done_examples += examples
            self.done_words += raw_words

    def fail(self, err: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = err
        self.stop.set()


def _documents(epoch: CorpusFileEpoch, known, prefix: str):
    """The documents of the ranges this worker takes, one range after another."""
    while (taken := epoch.take()) is not None:
        yield from read_documents(epoch.path, *taken, known=known, prefix=prefix)


def train_ranges(model, epoch: CorpusFileEpoch, inits) -> tuple[int, int, int]:
    """One worker's epoch: the ranges it takes, in jobs of ``model.batch_words`` raw words (a job
    may span two ranges), each trained by ``model._do_train_job``. Returns (documents, effective
    words, raw words)."""
    batch_words = int(model.batch_words)
    known = model.wv.key_to_index if getattr(model, "missing_images", "skip") == "raise" else None
    examples = tally = raw = 0
    batch, size = [], 0

    def run(job):
        alpha = model._get_next_alpha(epoch.progress(), epoch.cur_epoch)
        effective, raw_words = model._do_train_job(job, alpha, inits)
        epoch.advance(len(job), raw_words)
        return effective, raw_words

    for doc in _documents(epoch, known, getattr(model, "image_prefix", "")):
        if batch and size + len(doc) > batch_words:
            if epoch.stop.is_set():
                break
            t, r = run(batch)
            examples, tally, raw = examples + len(batch), tally + t, raw + r
            batch, size = [], 0
        batch.append(doc)
        size += len(doc)
    if batch and not epoch.stop.is_set():
        t, r = run(batch)
        examples, tally, raw = examples + len(batch), tally + t, raw + r
    return examples, tally, raw
