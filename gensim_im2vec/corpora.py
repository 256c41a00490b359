"""Streaming, restartable training corpora: metadata files and folders → documents.

Every corpus here is an iterable that opens its source afresh on each ``iter()``, so gensim can
scan it once for the vocabulary and once per epoch, and reads it line by line (never the whole
file: memory stays constant in the file's size). A document is a list of str; an *image
document* starts with its image token ``"img:<key>"`` followed by normalised words:

    ["img:cats/001", "cat", "kitten", "sofa"]

Readers:

* :class:`YFCC100MCorpus`: the YFCC100M metadata file (23- or 25-column layout, plain/.bz2/.gz);
* :class:`FolderCorpus`: images with sidecar captions (``x.png`` + ``x.txt`` or ``x.json``);
* :class:`TableCorpus`: CSV / TSV / JSONL with an image column and text columns;
* :class:`TextCorpus`: plain text, one document per line (word pre-training);
* :class:`MixedCorpus`: interleaves a text and an image corpus in a set ratio;
* :class:`LineDocuments`: a documents file as written by ``im2vec normalize`` (gensim's
  :class:`~gensim.models.word2vec.LineSentence`, less a leading byte order mark).

Malformed input (a wrong column count, bad UTF-8, broken JSON, a quote that opens a CSV field and
never closes) is counted, skipped and summed up in :attr:`~_Corpus.stats` and in the log, never
fatal; a record read after a repair is counted too (:attr:`CorpusStats.repaired`: a stray quote
that merged rows of a table, for one). A table whose header cannot be what was asked for (a column
named twice, a ``;``-separated file read as comma-separated) is an error that says the fix.

Image keys follow one rule shared with the feature extractor, the readers, ``im2vec normalize``
and the data sets: prefix + the path relative to the root, without extension, with forward
slashes, and every whitespace character written as ``%XX`` (its UTF-8 bytes), so that a key
survives the one-document-per-line, space-separated format: ``holiday 2019/my cat.png`` →
``img:holiday%202019/my%20cat`` (:func:`image_key`, :func:`encode_key`). Folders are walked
following symlinks, each real folder once (:func:`walk_dirs`), so a symlink loop ends.

Examples
--------
A YFCC100M file in the original 23-column layout (columns in :data:`YFCC_COLUMNS`):

>>> import os, tempfile
>>> from gensim_im2vec.corpora import YFCC100MCorpus, FolderCorpus, MixedCorpus, TextCorpus
>>> tmp = tempfile.mkdtemp()
>>> row = ["6985418911", "4e2f7a26a1", "nick", "2012-03-11", "1331500000", "Canon",
...        "My+dog%2C+Rex", "Rex+at+the+beach", "dog,new+york,dsc_1234,geo:lat=40.7",
...        "", "", "", "", "", "", "", "", "", "", "", "", "jpg", "0"]
>>> with open(os.path.join(tmp, "yfcc.tsv"), "w") as f:
...     _ = f.write("\\t".join(row) + "\\n" + "broken\\tline\\n")
>>> corpus = YFCC100MCorpus(os.path.join(tmp, "yfcc.tsv"))
>>> list(corpus)
[['img:6985418911', 'dog', 'new_york', 'dog', 'rex', 'rex', 'beach']]
>>> corpus.stats.documents, dict(corpus.stats.skipped)
(1, {'wrong_columns': 1})
>>> list(corpus) == list(corpus)      # restartable
True

A folder of images with sidecars:

>>> os.makedirs(os.path.join(tmp, "imgs", "pets"))
>>> for name in ("pets/cat.png", "pets/dog.png"):
...     open(os.path.join(tmp, "imgs", name), "wb").close()
>>> _ = open(os.path.join(tmp, "imgs", "pets", "cat.txt"), "w").write("A cat on a sofa")
>>> _ = open(os.path.join(tmp, "imgs", "pets", "dog.json"), "w").write(
...     '{"title": "Good dog", "tags": ["dog", "pet", "unsorted"]}')
>>> list(FolderCorpus(os.path.join(tmp, "imgs")))
[['img:pets/cat', 'cat', 'sofa'], ['img:pets/dog', 'dog', 'pet', 'good', 'dog']]

Words and images interleaved, two text documents per image document:

>>> with open(os.path.join(tmp, "text.txt"), "w") as f:
...     _ = f.write("the cat sat\\nthe dog ran\\na bird sang\\n")
>>> for doc in MixedCorpus(TextCorpus(os.path.join(tmp, "text.txt")), FolderCorpus(os.path.join(tmp, "imgs")), ratio=2):
...     print(doc)
['the', 'cat', 'sat']
['the', 'dog', 'ran']
['img:pets/cat', 'cat', 'sofa']
['bird', 'sang']
['img:pets/dog', 'dog', 'pet', 'good', 'dog']
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import hashlib
import io
import itertools
import json
import logging
import os
import stat
import sys
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gensim_im2vec.keys import IMAGE_PREFIX, encode_key, image_key
from gensim_im2vec.text import Normalizer
from gensim_im2vec.validation import check_not_a_str, is_one_shot

__all__ = [
    "IMAGE_EXTENSIONS",
    "YFCC_COLUMNS",
    "CorpusStats",
    "FolderCorpus",
    "KeyRepeats",
    "LineDocuments",
    "MixedCorpus",
    "TableCorpus",
    "TextCorpus",
    "YFCC100MCorpus",
    "encode_key",
    "image_key",
    "open_text_source",
    "walk_dirs",
]

logger = logging.getLogger(__name__)

#: File name endings treated as images by :class:`FolderCorpus` (case-insensitive).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")

#: The 22 columns that follow the photo id in both YFCC100M layouts. The original release has
#: 23 columns (photo id + these); the later one 25 (line number, photo id, photo hash + these).
YFCC_COLUMNS: tuple[str, ...] = (
    "user_nsid", "user_nickname", "date_taken", "date_uploaded", "capture_device", "title",
    "description", "tags", "machine_tags", "longitude", "latitude", "accuracy", "page_url",
    "download_url", "license_name", "license_url", "server_id", "farm_id", "secret",
    "secret_original", "extension", "marker",
)  # fmt: skip

_TEXT_FIELDS = ("title", "description")
_TAG_FIELDS = ("tags", "machine_tags")
_MB = 1 << 20


def _warn_unreadable(e: OSError) -> None:
    logger.warning("%s: folder not read (%s); the images and documents under it are left out. Check its "
                   "permissions, or pass another folder.", e.filename, e.strerror or e)


def _kind(path: str) -> str:
    """What `path` is, for a message: "a folder", "a socket", "a named pipe (FIFO)", "a device"."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _check_input_file(path: str, what: str) -> None:
    """Refuse an input `path` that is not a regular file, before it is read: missing (the message
    says "`what` not found"), or there but of another kind (a folder, a socket, a FIFO), which
    cannot be read as a corpus (it is read again each epoch, which a pipe cannot be)."""
    if os.path.isfile(path):
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path!r}; check the path.")
    kind = _kind(path)
    if kind == "a folder":
        raise IsADirectoryError(
            f"{what} {path!r} is a folder, not a file, so it cannot be read; give the file itself (a folder of "
            f"images with caption files is read by FolderCorpus, `im2vec normalize --format folder`)."
        )
    raise OSError(
        f"{what} {path!r} is {kind}, not a regular file, so it cannot be read (a corpus is read once per epoch); "
        f"give a regular file, e.g. save what it carries to a file first and pass that."
    )


def walk_dirs(root: str | os.PathLike, *, follow_links: bool = True, quiet: bool = False,
              seen: dict[tuple[int, int], str] | None = None) -> Iterator[tuple[str, list[str], list[str]]]:
    """:func:`os.walk` (top-down) that enters every real directory once.

    Following symlinks, a loop (``ln -s . d/a``) would be walked forever and a folder linked
    twice would be listed twice; here a directory already entered (same device and inode) is
    skipped with an info log. A folder that cannot be read (permissions, removed while walked) is
    skipped with a warning that names it, rather than silently (`quiet`: neither said). Pruning
    ``dirnames`` in place works as with :func:`os.walk`. `seen`, a dict, is filled with ``{(device,
    inode): path}`` of each folder entered, under the path it was entered by.
    """
    seen = {} if seen is None else seen
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_links,
                                                onerror=None if quiet else _warn_unreadable):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            if not quiet:
                logger.info("%s: not entered, it is the folder %s again (a symlink loop or a second link)",
                            dirpath, seen[ident])
            dirnames[:] = []
            continue
        seen[ident] = dirpath
        yield dirpath, dirnames, filenames


#: Magic bytes of compressed or archive formats that are not read (they would be read as garbage text).
_UNREAD_FORMATS: tuple[tuple[bytes, str, str], ...] = (
    (b"\xfd7zXZ\x00", "xz", "xz -d"),
    (b"\x28\xb5\x2f\xfd", "zstd", "zstd -d"),
    (b"PK\x03\x04", "zip", "unzip"),
    (b"7z\xbc\xaf\x27\x1c", "7z", "7z x"),
    (b"\x04\x22\x4d\x18", "lz4", "lz4 -d"),
)


def open_text_source(path: str | os.PathLike) -> io.BufferedIOBase:
    """Open a file for binary streaming, decompressing ``.bz2`` / ``.gz`` (by magic bytes).

    Raises
    ------
    FileNotFoundError
        With the path, when it does not exist.
    ValueError
        When the file is compressed in another format (xz, zstd, zip, 7z, lz4) or is UTF-16 text,
        naming the fix.
    """
    path = os.fspath(path)
    _check_input_file(path, "corpus file")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(
            f"{path} is UTF-16 text (as Excel's 'Unicode text' saves it), and UTF-8 is read: convert it, "
            f"e.g. iconv -f UTF-16 -t UTF-8 {os.path.basename(path)} > out.txt, or save it as 'CSV UTF-8'."
        )
    for head, kind, tool in _UNREAD_FORMATS:
        if magic.startswith(head):
            raise ValueError(
                f"{path} is {kind}-compressed, and only plain text, .bz2 and .gz files are read: "
                f"decompress it first ({tool} {os.path.basename(path)}) or recompress it with gzip or bzip2."
            )
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=_MB)


@dataclass
class CorpusStats:
    """Counts of one pass over a corpus.

    Attributes
    ----------
    lines : int
        Input records read (lines, files or rows).
    documents : int
        Documents yielded.
    tokens : int
        Tokens yielded (image tokens included).
    skipped : collections.Counter
        Records skipped, by reason. Malformed input: ``wrong_columns``, ``bad_encoding``,
        ``bad_json``, ``too_long``, ``missing_key``, ``bad_marker``, ``bad_row``, ``bad_quote``
        (a CSV field opens a double quote that does not close before the end of the file, or
        closes with more text after it, across lines: a stray quote; the lines after the one it
        opened on are read again as records). Filtered by choice: ``video``, ``no_text``,
        ``not_in_keys``, ``no_sidecar``.
    repaired : collections.Counter
        Records read after a repair, by kind: ``literal_quote`` (a TSV field opens a double quote
        that does not close: read as the line stands, the quote a character, as YFCC100M and Flickr
        exports write quotes); ``suspect_quote`` (a CSV/TSV field opens a double quote that closes
        lines later, and every line from the one it opens on to the one it closes on reads as a row
        of the table: rows merged by a stray quote, each read as its own row again, the quote a
        character; the example names the lines, ``file:first-last``); ``suspect_quote_kept`` (the
        same in a table of two columns, where a caption line such as "2019, a good year" reads as a
        row too: the field is kept whole, counted and warned about, for the user to check).
    examples : dict of str to list of str
        Up to five places (``file:line``) per skip reason or repair, to find the culprits.
    seconds : float
        Wall time of the pass.
    """

    lines: int = 0
    documents: int = 0
    tokens: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    repaired: Counter = field(default_factory=Counter)

    MALFORMED = frozenset({"wrong_columns", "bad_encoding", "bad_json", "too_long", "missing_key", "bad_marker", "bad_row",
                           "bad_quote"})

    def skip(self, reason: str, where: str) -> None:
        """Count one skipped record and remember where it was."""
        self.skipped[reason] += 1
        self._example(reason, where)

    def repair(self, kind: str, where: str) -> None:
        """Count one record read after a repair (`kind`) and remember where it was."""
        self.repaired[kind] += 1
        self._example(kind, where)

    def _example(self, key: str, where: str) -> None:
        ex = self.examples.setdefault(key, [])
        if len(ex) < 5:
            ex.append(where)

    @property
    def malformed(self) -> int:
        """Records skipped because they were broken (not filtered on purpose)."""
        return sum(v for k, v in self.skipped.items() if k in self.MALFORMED)

    def as_dict(self) -> dict:
        return {
            "lines": self.lines, "documents": self.documents, "tokens": self.tokens,
            "skipped": dict(self.skipped), "malformed": self.malformed, "repaired": dict(self.repaired),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "seconds": round(self.seconds, 3),
        }  # fmt: skip

    def summary(self) -> str:
        rate = self.documents / self.seconds if self.seconds > 0 else float("nan")
        s = (
            f"read {self.lines} records -> {self.documents} documents, {self.tokens} tokens "
            f"in {self.seconds:.1f}s ({rate:.0f} docs/s)"
        )
        if self.skipped:
            s += "; skipped " + ", ".join(f"{k} {v}" for k, v in self.skipped.most_common())
        if self.repaired:
            s += "; repaired " + ", ".join(f"{k} {v}" for k, v in self.repaired.most_common())
        return s


#: What a reason of :attr:`CorpusStats.skipped` or :attr:`CorpusStats.repaired` means, for the log.
_HINTS = {
    "bad_quote": "bad_quote: a CSV field opens a double quote that does not close, or closes inside the field, "
                 "lines later (a stray quote?); the row it opens on was skipped and reading went on at the next "
                 "line. Double a quote inside a field (\"\") or quote the whole field",
    "literal_quote": "literal_quote: a TSV field opens a double quote that does not close; the line was read as it "
                     "stands, the quote as a character",
    "suspect_quote": "suspect_quote: a double quote opens a field that closes lines later, and every line between "
                     "reads as a row of the table (the header's column count, image keys alike): a stray quote, "
                     "not a field across lines. Each line was read as its own row, the quote as a character. Check "
                     "those rows; double a quote inside a field (\"\") or quote the whole field",
    "suspect_quote_kept": "suspect_quote_kept: a double quote opens a field that closes lines later, and every line "
                          "between reads like a row of this two-column table; with two columns a caption line "
                          "(\"2019, a good year\") reads the same, so the field was kept whole. Check those lines: "
                          "if they are rows, double the stray quote (\"\") or quote its whole field",
}


def _container(value: Container[str] | None, name: str) -> Container[str] | None:
    """`keys` or `exclude` as given; one str (or bytes) is refused: ``in`` would find its substrings."""
    check_not_a_str(value, name, "tokens")
    return value


def _short(corpus) -> str:
    """A corpus inside another's repr: its own repr when it is one of ours, else its type and size
    (a list of a million documents is not printed)."""
    if isinstance(corpus, _Corpus):
        return repr(corpus)
    try:
        return f"<{type(corpus).__name__} of {len(corpus)} documents>"
    except TypeError:
        return f"<{type(corpus).__name__}>"


class _Corpus:
    """Base: restartable iteration, per-pass statistics, a closing log line."""

    name = "corpus"
    _min_tokens_default = 1  # (shown in the repr when it differs)
    hints: dict[str, str] = _HINTS  # what a skip reason or repair means, logged beside its count

    def __init__(self, *, limit: int | None = None, exclude: Container[str] | None = None, min_tokens: int = 1) -> None:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be None or >= 0, got {limit}.")
        if min_tokens < 0:
            raise ValueError(f"min_tokens must be >= 0, got {min_tokens}.")
        self.limit = limit
        self.exclude = _container(exclude, "exclude")
        self.min_tokens = min_tokens
        self.stats = CorpusStats()

    def _documents(self, stats: CorpusStats) -> Iterator[list[str]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _repr_source(self) -> list[str]:  # pragma: no cover - each corpus names its own
        return []

    def __repr__(self) -> str:
        """What it reads and the settings that choose its documents, then its last pass's counts;
        `keys` and `exclude` by their size (a set of millions of keys is not printed), nothing read."""
        parts = self._repr_source()
        for name in ("keys", "exclude"):
            value = getattr(self, name, None)
            if value is not None:
                parts.append(f"{name}=<{len(value)} tokens>" if hasattr(value, "__len__") else
                             f"{name}=<{type(value).__name__}>")
        if self.limit is not None:
            parts.append(f"limit={self.limit}")
        if self.min_tokens != self._min_tokens_default:
            parts.append(f"min_tokens={self.min_tokens}")
        stats = self.stats
        if stats.lines or stats.documents:
            parts.append(f"last pass: {stats.documents} documents, {stats.tokens} tokens")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __iter__(self) -> Iterator[list[str]]:
        stats = CorpusStats()
        self.stats = stats
        t0 = time.perf_counter()
        docs = self._documents(stats)
        try:
            # `limit` is checked after a document, not before the next: reading on would read (and
            # count, or fail on) a record past the limit
            if self.limit != 0:
                for doc in docs:
                    stats.documents += 1
                    stats.tokens += len(doc)
                    yield doc
                    if self.limit is not None and stats.documents >= self.limit:
                        break
        finally:
            if hasattr(docs, "close"):  # a generator: its open file, now rather than when collected
                docs.close()
            stats.seconds = time.perf_counter() - t0
            logger.info("%s: %s", self.name, stats.summary())
            # gensim reads a corpus once per epoch (and once for the vocabulary): the same warnings
            # again on every pass say nothing new
            said = (dict(stats.skipped), dict(stats.repaired))
            repeat = said == getattr(self, "_warned", None)
            self._warned = said
            if stats.malformed and not repeat:
                # (with no document at all, "the rest was used" would contradict the caller's "no documents")
                logger.warning(
                    "%s: skipped %i malformed records (%s), e.g. at %s; %s",
                    self.name, stats.malformed,
                    ", ".join(f"{k} {v}" for k, v in stats.skipped.items() if k in CorpusStats.MALFORMED),
                    "; ".join(sum((v[:2] for k, v in stats.examples.items() if k in CorpusStats.MALFORMED), [])),
                    "fix or drop those lines, the rest was used." if stats.documents else
                    "fix those lines: no record gave a document, nothing was used.",
                )  # fmt: skip
                for k in sorted(stats.skipped.keys() & self.hints.keys()):
                    logger.warning("%s: %s (e.g. at %s).", self.name, self.hints[k], "; ".join(stats.examples[k][:2]))
            if stats.repaired and not repeat:
                logger.warning(
                    "%s: read %i records after a repair (%s), e.g. at %s.%s", self.name, sum(stats.repaired.values()),
                    ", ".join(f"{k} {v}" for k, v in stats.repaired.items()),
                    "; ".join(sum((stats.examples[k][:2] for k in stats.repaired), [])),
                    "".join(f" {self.hints[k]}." for k in stats.repaired if k in self.hints),
                )  # fmt: skip

    def _finish(self, head: list[str], words: list[str], stats: CorpusStats, where: str) -> list[str] | None:
        """Apply `exclude` and `min_tokens`; count a document with too few words as ``no_text``."""
        if self.exclude:
            ex = self.exclude
            words = [w for w in words if w not in ex]
        if len(words) < max(self.min_tokens, 1 if head else 0) or not (head or words):
            stats.skip("no_text", where)
            return None
        return head + words


def compressed_data_error(path: str, f, lineno: int, err: BaseException) -> ValueError:
    """The error for a compressed file that ends early or is corrupt: the file, where, and the fix.

    `f` is the file :func:`open_text_source` opened for `path`, `lineno` the complete lines read
    before `err` (the ``EOFError``, ``OSError`` or ``zlib.error`` its read raised). Shared by the
    readers of compressed sources, so that each says the same."""
    raw = getattr(f, "fileobj", None) or getattr(f, "_fp", None)  # gzip / bz2: the compressed file
    try:
        where = f"at byte {raw.tell()} of {os.path.getsize(path)}"
    except (AttributeError, OSError, ValueError):
        where = "in its compressed data"
    kind = "gzip" if isinstance(f, gzip.GzipFile) else "bz2" if isinstance(f, bz2.BZ2File) else "file"
    return ValueError(
        f"{path}: the {kind} data ends early or is damaged {where}, after {lineno} complete lines "
        f"({type(err).__name__}: {err or 'truncated'}). The file is cut short (an interrupted download "
        f"or copy?): fetch or compress it again."
    )


def _iter_lines(path: str, stats: CorpusStats, max_line_bytes: int) -> Iterator[tuple[int, str]]:
    """Yield (line number, decoded line without newline); skip bad UTF-8 and over-long lines.

    A UTF-8 byte order mark at the start of the file is dropped.

    Raises
    ------
    ValueError
        A ``.bz2``/``.gz`` file that ends early or is corrupt (naming the file and the byte offset).
    """
    max_line_bytes = min(max_line_bytes, sys.maxsize - 1)  # "no limit" (sys.maxsize) + 1 overflows readline
    with open_text_source(path) as f:
        lineno = 0

        def readline(limit: int) -> bytes:
            try:
                return f.readline(limit)
            except (EOFError, OSError, zlib.error) as e:  # truncated or corrupt compressed data
                raise compressed_data_error(path, f, lineno, e) from None

        while True:
            raw = readline(max_line_bytes + 1)
            if not raw:
                return
            lineno += 1
            stats.lines += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # drain the rest of the line in chunks
                    raw = readline(_MB)
                stats.skip("too_long", f"{path}:{lineno}")
                continue
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark (Excel, Notepad) is not part of the first field
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                stats.skip("bad_encoding", f"{path}:{lineno}")
                continue
            yield lineno, line.rstrip("\r\n")


def _keeping_machine_tags(norm: Normalizer) -> Normalizer:
    """`norm` with its ``machine_tags`` step off, for the YFCC100M ``machine_tags`` column (the step
    drops machine tags as noise: with it, that column gives no word). It counts into `norm`'s
    statistics; `norm` itself is unchanged."""
    if not getattr(norm, "machine_tags", False) or not dataclasses.is_dataclass(norm):
        return norm
    return dataclasses.replace(norm, machine_tags=False)  # stats is a field: the same object, shared


class YFCC100MCorpus(_Corpus):
    """Documents from the YFCC100M metadata file: ``["img:<id>", tag, …, title word, …]``.

    Parameters
    ----------
    path : path-like
        The tab-separated metadata file, plain, ``.bz2`` or ``.gz`` (detected by content).
    fields : sequence of {"tags", "title", "description", "machine_tags"}
        Which text goes into the document, in this order. Tags are comma-separated units
        (multi-word tags stay one token, see :class:`~gensim_im2vec.text.Normalizer`). The
        ``machine_tags`` column is read with the normaliser's ``machine_tags`` step off (that step
        drops machine tags from tags and text as noise, which would leave nothing of this field):
        ``taxonomy:common=lion`` → ``taxonomy_common_lion``, ``vision:outdoor=0.9`` →
        ``vision_outdoor`` (numbers, hashes and junk still go by the normaliser's other steps).
    key : {"id", "hash", "line"}
        The image key: the photo id (both layouts), the photo hash (25 columns only; the
        slides' image ids) or the line number (25 columns only). Must match the feature
        store's keys.
    layout : {"auto", 23, 25}
        Column layout; "auto" takes it from the first well-formed line, later lines with
        another column count are skipped as ``wrong_columns``.
    photos_only : bool
        Skip videos (marker column 1), counted as ``video``.
    prefix : str
        Image token prefix.
    normalizer : Normalizer, optional
        Defaults to ``Normalizer(track_vocab=False)`` (constant memory).
    keys : container of str, optional
        Keep only photos whose token (or bare key) is in here, e.g. a FeatureStore or a set of
        training keys; others are counted as ``not_in_keys``.
    exclude : container of str, optional
        Tokens to drop from documents (held-out zero-shot tags).
    min_tokens : int
        Photos with fewer words after normalisation are skipped (``no_text``); at least 1.
    limit : int, optional
        Stop after this many documents.
    max_line_bytes : int
        Longer lines are skipped (``too_long``) without being held in memory.
    """

    name = "yfcc100m"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fields: Sequence[str] = ("tags", "title", "description"),
        key: Literal["id", "hash", "line"] = "id",
        layout: Literal["auto", 23, 25] = "auto",
        photos_only: bool = True,
        prefix: str = IMAGE_PREFIX,
        normalizer: Normalizer | None = None,
        keys: Container[str] | None = None,
        exclude: Container[str] | None = None,
        min_tokens: int = 1,
        limit: int | None = None,
        max_line_bytes: int = 4 * _MB,
    ) -> None:
        super().__init__(limit=limit, exclude=exclude, min_tokens=min_tokens)
        self.path = os.fspath(path)
        _check_input_file(self.path, "YFCC100M metadata file")
        bad = [f for f in fields if f not in _TEXT_FIELDS + _TAG_FIELDS]
        if bad or not fields:
            raise ValueError(
                f"fields must be a non-empty subset of {_TAG_FIELDS + _TEXT_FIELDS}, got {tuple(fields)!r}."
            )
        if key not in ("id", "hash", "line"):
            raise ValueError(f"key must be 'id', 'hash' or 'line', got {key!r}.")
        if layout not in ("auto", 23, 25):
            raise ValueError(f"layout must be 'auto', 23 or 25, got {layout!r}.")
        if layout == 23 and key != "id":
            raise ValueError(f"key={key!r} needs the 25-column layout (line number, id, hash, …); the 23-column file only has the photo id: use key='id'.")
        self.fields = tuple(fields)
        self.key = key
        self.layout = layout
        self.photos_only = photos_only
        self.prefix = prefix
        self.normalizer = normalizer if normalizer is not None else Normalizer(track_vocab=False)
        self.keys = _container(keys, "keys")
        self.max_line_bytes = max_line_bytes

    def _repr_source(self) -> list[str]:
        return [repr(self.path), f"fields={self.fields!r}", f"key={self.key!r}", f"layout={self.layout!r}"]

    def _documents(self, stats: CorpusStats) -> Iterator[list[str]]:
        layout = self.layout
        norm = self.normalizer
        machine_norm = _keeping_machine_tags(norm) if "machine_tags" in self.fields else norm
        fields = self.fields
        prefix, keys, path = self.prefix, self.keys, self.path
        photos_only = self.photos_only
        idx = {}
        for lineno, line in _iter_lines(path, stats, self.max_line_bytes):
            cols = line.split("\t")
            n = len(cols)
            if layout == "auto":
                if n not in (23, 25):
                    stats.skip("wrong_columns", f"{path}:{lineno}")
                    continue
                layout = n
                if n == 23 and self.key != "id":
                    raise ValueError(
                        f"{path} has the 23-column layout (no hash or line number column); "
                        f"key={self.key!r} needs the 25-column file: use key='id'."
                    )
                logger.info("%s: %i-column layout", path, n)
            if not idx:
                off = 1 if layout == 23 else 3
                idx = {name: off + i for i, name in enumerate(YFCC_COLUMNS)}
                key_col = {"id": 0 if layout == 23 else 1, "hash": 2, "line": 0}[self.key]
                marker_col = idx["marker"]
                field_cols = [(f, idx[f]) for f in fields]
            if n != layout:
                stats.skip("wrong_columns", f"{path}:{lineno}")
                continue
            marker = cols[marker_col].strip()
            if marker not in ("0", "1"):
                stats.skip("bad_marker", f"{path}:{lineno}")
                continue
            if photos_only and marker == "1":
                stats.skip("video", f"{path}:{lineno}")
                continue
            key = encode_key(cols[key_col].strip())
            if not key:
                stats.skip("missing_key", f"{path}:{lineno}")
                continue
            token = prefix + key
            if keys is not None and token not in keys and key not in keys:
                stats.skip("not_in_keys", f"{path}:{lineno}")
                continue
            words: list[str] = []
            for fname, c in field_cols:
                value = cols[c]
                if not value:
                    continue
                if fname == "machine_tags":
                    words.extend(machine_norm.tags(value))
                elif fname in _TAG_FIELDS:
                    words.extend(norm.tags(value))
                else:
                    words.extend(norm.text(value))
            doc = self._finish([token], words, stats, f"{path}:{lineno}")
            if doc is not None:
                yield doc


def _sidecars(image_path: str) -> tuple[str | None, str | None]:
    """The JSON and text sidecars of an image that exist: ``x.json`` / ``x.txt`` beside ``x.jpg``,
    or ``x.jpg.json`` / ``x.jpg.txt`` (as gallery-dl writes them)."""
    stem = os.path.splitext(image_path)[0]
    found = [next((p for p in (stem + ext, image_path + ext) if os.path.isfile(p)), None) for ext in (".json", ".txt")]
    return found[0], found[1]


def _sidecar_of(image_path: str) -> str:
    """The sidecar file that :meth:`FolderCorpus.read_sidecar` reads for an image (the JSON wins)."""
    jpath, tpath = _sidecars(image_path)
    return jpath or tpath or os.path.splitext(image_path)[0] + ".txt"


#: What FolderCorpus's skip reasons mean, in the warning of a pass that yields no document.
_EMPTY_REASONS = {
    "no_sidecar": "without a sidecar with words (x.json or x.txt beside x.jpg: give each image its caption or tags)",
    "no_text": "with fewer words than min_tokens after the filters (exclude=, the normaliser)",
    "not_in_keys": "not in keys= (give the keys of these images)",
    "bad_json": "with a sidecar that is not valid JSON",
    "bad_encoding": "with a sidecar that is not UTF-8",
}


class FolderCorpus(_Corpus):
    """Documents from a folder of images with sidecar text: the generic folder format.

    For each image ``dir/x.png`` (any depth; extensions in :data:`IMAGE_EXTENSIONS`) the
    sidecar ``dir/x.json`` or ``dir/x.txt`` (or ``dir/x.png.json`` / ``dir/x.png.txt``, as
    gallery-dl names them) gives its words:

    * ``.json``: an object; text fields (`text_fields`: title, description, caption, text) are
      free text (a string, or a list of strings: several captions), tag fields (`tag_fields`:
      tags, keywords) are lists of tags (or one comma-separated string);
    * ``.txt``: free text (a caption, or tags separated by spaces or commas).

    When both exist the JSON wins. The image token is :func:`image_key` (``img:sub/x``).
    A folder's files are visited in sorted order, then its subfolders in sorted order, so
    every pass yields the same documents without listing the whole tree first. Hidden files
    and folders (``.name``) are skipped, as the feature extractor skips them.

    A built-in data set whose build did not finish (killed: no ``dataset.json``, its
    ``.unfinished-build`` marker still there) is read as it is, with one warning that names the
    command that resumes the build (:func:`gensim_im2vec.datasets.warn_unfinished_build`).

    Parameters
    ----------
    root : path-like
        The folder.
    prefix : str
        Image token prefix.
    normalizer : Normalizer, optional
        Defaults to ``Normalizer(track_vocab=False)``.
    text_fields, tag_fields : sequence of str
        JSON fields read as text / as tags, in this order (tags first by default).
    keys : container of str, optional
        Keep only images whose token or bare key is in here (e.g. a split's training keys);
        others are counted as ``not_in_keys``.
    exclude : container of str, optional
        Tokens to drop from documents (e.g. held-out zero-shot tags).
    min_tokens : int
        Images with fewer words are skipped (``no_text``; ``no_sidecar`` when there is no
        sidecar at all).
    limit : int, optional
        Stop after this many documents.
    follow_links : bool
        Descend into symlinked folders (each real folder once: a symlink loop ends).
    """

    name = "folder"

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        prefix: str = IMAGE_PREFIX,
        normalizer: Normalizer | None = None,
        text_fields: Sequence[str] = ("title", "description", "caption", "text"),
        tag_fields: Sequence[str] = ("tags", "keywords"),
        keys: Container[str] | None = None,
        exclude: Container[str] | None = None,
        min_tokens: int = 1,
        limit: int | None = None,
        follow_links: bool = True,
    ) -> None:
        super().__init__(limit=limit, exclude=exclude, min_tokens=min_tokens)
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            if os.path.exists(self.root):
                raise NotADirectoryError(
                    f"image folder {self.root!r} is {'a file' if os.path.isfile(self.root) else _kind(self.root)}, "
                    f"not a folder; give the folder of images (a metadata file is read by YFCC100MCorpus or "
                    f"TableCorpus, `im2vec normalize --format yfcc/csv/jsonl`)."
                )
            raise FileNotFoundError(f"image folder not found: {self.root!r}.")
        self.prefix = prefix
        self.normalizer = normalizer if normalizer is not None else Normalizer(track_vocab=False)
        self.text_fields = tuple(text_fields)
        self.tag_fields = tuple(tag_fields)
        self.keys = _container(keys, "keys")
        self.follow_links = follow_links
        # imported here: gensim_im2vec.datasets reads its folders with this class
        from gensim_im2vec.datasets import warn_unfinished_build

        warn_unfinished_build(self.root)  # a data set whose build was killed: only part of it is here

    def __iter__(self) -> Iterator[list[str]]:
        """The documents; a pass that yields none (an empty folder, images without sidecars) says why
        in a warning, once: training on nothing would fail far from the cause."""
        yield from super().__iter__()
        stats = self.stats
        chosen_none = self.keys is not None and not len(self.keys)  # (an empty keys= filter: asked for nothing)
        if not stats.documents and self.limit != 0 and not chosen_none and not getattr(self, "_said_empty", False):
            self._said_empty = True
            if not stats.lines:
                why = (f"it holds no image file ({', '.join(IMAGE_EXTENSIONS)}; hidden files and folders are left "
                       f"out); give the folder of the images")
            else:
                reasons = [f"{n} {_EMPTY_REASONS.get(reason, reason)}" for reason, n in stats.skipped.most_common()]
                why = (f"each of its {stats.lines} image files was skipped: {'; '.join(reasons)} (its .stats.examples "
                       f"name them)")
            logger.warning("FolderCorpus %r: no documents in it (%s): %s.", self.root, stats.summary(), why)

    def iter_images(self) -> Iterator[tuple[str, str]]:
        """Yield ``(image path, bare key)`` for every image under the root (files, then subfolders).

        Two files whose key is the same (``x.png`` and ``x.jpg`` in one folder) are an error, as
        the extractor makes them: one key cannot name two images."""
        for dirpath, dirnames, filenames in walk_dirs(self.root, follow_links=self.follow_links):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # as the extractor
            seen: dict[str, str] = {}  # a key is the path without its extension: clashes stay in one folder
            for fn in sorted(filenames):
                if not fn.startswith(".") and fn.lower().endswith(IMAGE_EXTENSIONS):
                    p = os.path.join(dirpath, fn)
                    key = image_key(p, self.root, prefix="")
                    if key in seen:
                        raise ValueError(
                            f"key {self.prefix + key!r} under {self.root!r} belongs to more than one file "
                            f"({seen[key]} and {p}); rename one of them (the extractor refuses the folder too).")
                    seen[key] = p
                    yield p, key

    def read_sidecar(self, image_path: str) -> tuple[list[str], list[str]] | None:
        """The (text strings, tag strings) of an image's sidecar, or None when it has none.

        Raises
        ------
        ValueError
            When the JSON sidecar cannot be parsed or is not an object (naming the file and line).
        """
        jpath, tpath = _sidecars(image_path)
        if jpath:
            with open(jpath, encoding="utf-8-sig") as f:  # -sig: a byte order mark (Notepad) is not JSON
                try:
                    meta = json.load(f)
                except json.JSONDecodeError as e:
                    raise ValueError(
                        f"{jpath}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno}); fix or remove the sidecar."
                    ) from e
            if not isinstance(meta, dict):
                raise ValueError(f"{jpath}: expected a JSON object, got {type(meta).__name__}")
            texts, tags = [], []
            for k in self.tag_fields:
                v = meta.get(k)
                if isinstance(v, str):
                    tags.extend(v.split(","))
                elif isinstance(v, list):
                    tags.extend(str(t) for t in v if t is not None)
            for k in self.text_fields:
                v = meta.get(k)
                if isinstance(v, str):
                    texts.append(v)
                elif isinstance(v, list):  # several captions of one image
                    texts.extend(t for t in v if isinstance(t, str))
            return texts, tags
        if tpath:
            with open(tpath, encoding="utf-8-sig") as f:
                return [f.read(_MB)], []
        return None

    def _repr_source(self) -> list[str]:
        return [repr(self.root), f"text_fields={self.text_fields!r}", f"tag_fields={self.tag_fields!r}"]

    def _documents(self, stats: CorpusStats) -> Iterator[list[str]]:
        norm, keys = self.normalizer, self.keys
        for path, key in self.iter_images():
            stats.lines += 1
            token = self.prefix + key
            if keys is not None and token not in keys and key not in keys:
                stats.skip("not_in_keys", path)
                continue
            try:
                side = self.read_sidecar(path)
            except UnicodeDecodeError:
                stats.skip("bad_encoding", _sidecar_of(path))
                continue
            except (ValueError, OSError) as e:
                where, cause = _sidecar_of(path), e.__cause__
                stats.skip("bad_json", f"{where}:{cause.lineno}" if isinstance(cause, json.JSONDecodeError) else where)
                continue
            if side is None:
                stats.skip("no_sidecar", path)
                continue
            texts, tags = side
            words = norm.tags(tags)
            for t in texts:
                words.extend(norm.text(t))
            doc = self._finish([token], words, stats, path)
            if doc is not None:
                yield doc


#: The csv module's default field size limit (128 KiB), and the largest one it accepts everywhere (a C
#: long: 32 bits on Windows, where ``sys.maxsize`` overflows it).
_CSV_FIELD_LIMIT = 128 * 1024
_C_LONG_MAX = 2**31 - 1


def _next_row(reader, field_limit: int) -> list[str]:
    """``next(reader)`` with the csv module's field size limit (128 KiB by default: a longer caption
    was a broken row) at `field_limit`; the process-wide limit is restored after."""
    old = csv.field_size_limit(field_limit)
    try:
        return next(reader)
    finally:
        csv.field_size_limit(old)


def _field_hint(err: csv.Error) -> str:
    """For a csv error of a too long field, what to do; else ""."""
    return " (a field longer than max_line_bytes: raise it to read the row)" if "field limit" in str(err) else ""


class _OpenQuote(Exception):
    """The record being read is inside a quoted field at the end of the file (`reason` ``bad_quote``)
    or would run past the limits on a quoted field across lines (``too_long``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _RecordLines:
    """The lines of a CSV/TSV file as :class:`csv.reader` takes them, one record at a time.

    :meth:`start` begins a record; the (line number, line) pairs the reader takes for it are kept in
    :attr:`held`: one, unless a quoted field holds line breaks. The reader asks for another line
    only inside a quoted field, so a record that is still in one at the end of the file, or that
    would take more than `max_lines` lines or `max_bytes` bytes, stops with :class:`_OpenQuote`
    instead of swallowing the rest of the file; :meth:`again_after_first` then hands back its lines
    but the first, to be read again as records: a stray quote costs the row it opens on, not the
    rows after it (at most the limits are held in memory).
    """

    def __init__(self, lines: Iterator[tuple[int, str]], max_lines: int, max_bytes: int) -> None:
        self.src = lines
        self.max_lines, self.max_bytes = max_lines, max_bytes
        self.pending: deque[tuple[int, str]] = deque()
        self.held: list[tuple[int, str]] = []
        self.nbytes = 0

    def start(self) -> None:
        self.held = []

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        item = self.pending.popleft() if self.pending else next(self.src, None)
        held = self.held
        if item is None:
            if held:  # inside a quoted field: the reader wants more, and the file has ended
                raise _OpenQuote("bad_quote")
            raise StopIteration
        if held:  # the second line of a record, or later: only then are bytes counted
            if len(held) == 1:
                self.nbytes = len(held[0][1].encode("utf-8")) + 1
            nbytes = self.nbytes + len(item[1].encode("utf-8")) + 1
            if len(held) >= self.max_lines or nbytes > self.max_bytes:
                self.pending.appendleft(item)
                raise _OpenQuote("too_long")
            self.nbytes = nbytes
        held.append(item)
        return item[1] + "\n"

    def again_after_first(self) -> None:
        """Read the lines of the record being read again, from its second line on."""
        self.pending.extendleft(reversed(self.held[1:]))
        self.held = []


def _csv_rows(lines: _RecordLines, delimiter: str, field_limit: int) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """``(first line, row, None)`` per record of `lines`; ``(first line, None, reason)`` for one that
    cannot be read (``too_long``, ``bad_quote``, ``bad_row``); in a TSV file
    ``(first line, the line split on tabs, "literal_quote")`` for one whose quote does not close.

    Quoting is the csv module's (pandas' ``to_csv`` writes it so, with ``sep="\\t"`` too): a quoted
    field may hold delimiters, doubled quotes and line breaks. A record on one line is read as the
    csv module always read it (leniently: ``"ab"cd`` is ``abcd``). One across lines must be
    well-formed: its quote must close, before the end of the file and within the limits of `lines`,
    and be followed by a delimiter or the line's end. Otherwise it is a stray quote: in a CSV file
    the row it opens on is skipped and reading goes on at the next line; in a TSV file, where
    quotes are mostly text (YFCC100M, Flickr and database exports write no quoting), that line is
    read as it stands, the quote a character. A well-formed record across lines may still be rows
    merged by a stray quote whose closing quote happens to end a field lines later: the caller,
    which knows the header, tells them apart (:func:`_stray_quote_row`) while the record's lines are
    still in ``lines.held``.
    """
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    tsv = delimiter == "\t"
    while True:
        lines.start()
        try:
            row = _next_row(reader, field_limit)
        except StopIteration:
            return
        except (_OpenQuote, csv.Error) as e:
            lineno, line = lines.held[0]
            if isinstance(e, csv.Error) and len(lines.held) == 1:
                try:  # one line: as the lenient reader reads it
                    row = _next_row(csv.reader([line + "\n"], delimiter=delimiter), field_limit)
                except csv.Error as e2:  # NUL, a lone carriage return, a field over the limit
                    yield lineno, None, "too_long" if _field_hint(e2) else "bad_row"
                    continue
                yield lineno, row, None
                continue
            lines.again_after_first()
            if tsv:
                yield lineno, line.split("\t"), "literal_quote"
            else:
                reason = e.reason if isinstance(e, _OpenQuote) else "too_long" if _field_hint(e) else "bad_quote"
                yield lineno, None, reason
            continue
        yield lines.held[0][0] if lines.held else 0, row, None


def _key_kind(cell: str) -> str | None:
    """What an image-column cell looks like, to tell a row of a table from a line of prose: a
    ``"number"`` (a photo id), an ``"image file"`` (a name or path with an image extension), a
    ``"url"`` or a ``"name"`` (one token: a hash, a key); None when empty or when it is text with
    whitespace and no image extension (prose, or a key that cannot be told from it)."""
    s = cell.strip()
    if not s:
        return None
    if s.isdigit():
        return "number"
    if s.lower().endswith(IMAGE_EXTENSIONS):
        return "image file"
    if any(c.isspace() for c in s):
        return None
    return "url" if "://" in s else "name"


def _stray_quote_row(held: Sequence[tuple[int, str]], row: list[str], delimiter: str, width: int, column: int,
                     field_limit: int) -> list[str] | None:
    """For a record the csv reader read across lines (`held`: its ``(line number, line)`` pairs, `row`:
    what the reader made of them): when it is rows of the table that a stray quote merged, the row of
    its first line with that quote read as a character (the lines after it are then to be read again
    as rows); None when it may be a real field across lines.

    The rule: every line of the record reads as a row of the header's `width` (the first line with
    the quote that opens the field across lines read as a character, every later line read alone as
    the csv module reads one line), and the image-column cells (`column`) of all these rows look
    alike (:func:`_key_kind`: all photo ids, all image file names, all URLs or all one-token names).
    A field across lines holds text, whose lines rarely each split into `width` cells with a key
    where the image column is: a blank line, a line with fewer or more delimiters, or one whose
    image cell is prose or of another kind than the first line's keeps the field whole. A table of
    one column cannot tell, and keeps the field.
    """
    if width < 2 or len(held) < 2:
        return None
    s = next((i for i, v in enumerate(row) if "\n" in v), None)
    if s is None:
        return None
    first = held[0][1]
    tail = row[s].split("\n", 1)[0].replace('"', '""')  # the field's text on the first line, as written
    start = len(first) - len(tail) - 1  # where its opening quote stands
    if start < 0 or first[start] != '"' or not first.endswith(tail):
        return None
    rows = [row[:s] + first[start:].split(delimiter)]
    for _, line in held[1:]:
        try:
            rows.append(_next_row(csv.reader([line + "\n"], delimiter=delimiter), field_limit))
        except csv.Error:
            return None
    if any(len(r) != width for r in rows):
        return None
    kinds = {_key_kind(r[column]) for r in rows}
    if len(kinds) != 1 or None in kinds:
        return None
    return rows[0]


#: Column separators a header of one column is checked for (the first that splits it into the columns asked
#: for is named in the error), and their names.
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}


def _header_problem(path: str, header: list[str], wanted: Sequence[str], delimiter: str) -> str | None:
    """What is wrong with a CSV/TSV `header` for the columns `wanted` (a message naming the fix), or None.

    A column asked for that the header names twice (a row would keep one of the two values, the
    other's words lost without a word); columns asked for that are not in it, and when the header
    is one column that another separator splits into names holding them (a ``;``-separated file
    read as comma-separated: every row one field), which `delimiter` to pass."""
    for name in dict.fromkeys(wanted):
        at = [i + 1 for i, h in enumerate(header) if h == name]
        if len(at) > 1:
            return (f"{path}: the header names the column {name!r} more than once, as columns "
                    f"{' and '.join(map(str, at))} (counting from 1), and a row keeps only one of them: the other's "
                    f"words would be lost. Rename one in the header (e.g. {name + '_2'!r}) and pass both "
                    f"(text_columns / tag_columns take several).")
    missing = [c for c in dict.fromkeys(wanted) if c not in header]
    if not missing:
        return None
    if len(header) == 1:
        for d, what in _DELIMITERS.items():
            names = [h.strip() for h in header[0].split(d)]
            if d != delimiter and len(names) > 1 and all(c in names for c in missing):
                fix = ("format='tsv' or delimiter='\\t' (im2vec normalize --format tsv)" if d == "\t"
                       else f"delimiter={d!r} to TableCorpus (im2vec normalize --delimiter '{d}')")
                return (f"{path}: the header is one column, {header[0]!r}, and looks {what}-separated ({d!r}): "
                        f"split on {d!r} it names {names}. The file is read with the delimiter {delimiter!r}, so "
                        f"every row would be one field; pass {fix}.")
    return (f"{path}: columns {missing} not in the header {header}; pick from the header (image_column / "
            f"text_columns / tag_columns).")


#: Separators of tags in a cell that :class:`TableCorpus` looks for when a cell lacks its `tag_sep`.
_TAG_SEPARATORS = (";", "|", ",")


class TableCorpus(_Corpus):
    """Documents from a CSV / TSV / JSONL table with an image column and text columns.

    Parameters
    ----------
    path : path-like
        The table, plain, ``.bz2`` or ``.gz``. CSV/TSV need a header row.
    image_column : str
        Column holding the image key or the image's relative path; a known image extension
        is removed (``pets/cat.png`` → ``img:pets/cat``) and whitespace is written as ``%XX``
        (``my cat.png`` → ``img:my%20cat``), as the feature extractor does.
    text_columns : sequence of str
        Columns of free text (captions, titles); in JSONL a list of strings is several texts.
    tag_columns : sequence of str
        Columns of tags: a JSON list (JSONL) or a string split on `tag_sep`.
    format : {"auto", "csv", "tsv", "jsonl"}
        "auto" decides by the file name (``.jsonl``/``.ndjson``, ``.tsv``, else CSV).
    delimiter : str, optional
        The column separator of a CSV/TSV table, one character (``";"`` for the CSV files of a
        spreadsheet set to a language that writes decimal commas, ``"|"``). None: ``","`` for CSV,
        a tab for TSV. A tab reads as TSV does (a quote that does not close is a character). A
        header that is one column which another separator splits into the columns asked for is an
        error naming that separator; not allowed with JSONL.
    tag_sep : str
        Separator of tags within a string cell. When most of a tag column's string cells hold
        none of it but ``;``, ``|`` or ``,`` (``red;circle`` with the default ``","``: one tag,
        ``red_circle``), a pass ends with a warning naming the column and the separator to pass;
        :attr:`tag_sep_suspects` holds what it found.
    prefix, normalizer, keys, exclude, min_tokens, limit, max_line_bytes
        As in :class:`YFCC100MCorpus`. A CSV/TSV field may be as long as `max_line_bytes` (at least
        128 KiB; a quoted one across lines too, whatever :func:`csv.field_size_limit` says); a row
        with a longer one is skipped as ``too_long``.
    max_quoted_lines : int, optional
        A quoted CSV/TSV field may hold up to this many lines (None: as many as `max_line_bytes`
        allows). A quote that does not close within these limits (or before the end of the file,
        or closes with more text after it) is a stray one, and the rows after it are read as rows:
        in a CSV file the row it opens on is skipped (``too_long`` past the limits, else
        ``bad_quote``, naming the line); in a TSV file that line is read as it stands, the quote as
        a character (counted in :attr:`CorpusStats.repaired` as ``literal_quote``), as YFCC100M
        and Flickr exports write quotes. Quoting as the csv module and pandas write it is read.

        A quote that closes lines later at the end of a field is well-formed, and may still be a
        stray one that merged the rows between into one field. The rule that tells them apart: when
        every line of the record reads as a row of the header's column count (the first with its
        opening quote read as a character, each later one alone) and their image-column cells look
        alike (all photo ids, all image file names, all URLs, or all one-token names; not prose),
        the lines are rows: each is read as its own row, counted in :attr:`CorpusStats.repaired` as
        ``suspect_quote`` with the lines it spans (``file:2-4``) and warned about. A caption across
        lines has lines of prose (a line without the column's delimiters, a blank line, words before
        the first delimiter), so it stays one field; a table of one column keeps it too. A table of
        two columns keeps it as well, counted as ``suspect_quote_kept`` and warned about: there a
        caption line like "2019, a good year" splits into a key and a text as a row does.

    Raises
    ------
    ValueError
        On iteration, for a CSV/TSV header that lacks a column asked for (saying which separator
        the file looks separated by, when the header is one column that another one splits into
        the columns asked for), or that names a column asked for twice (naming both positions;
        a column not asked for may repeat).
    """

    name = "table"
    hints = {**_HINTS, "too_long": "too_long: a line, or a quoted field across lines, longer than max_line_bytes "
                                   "or max_quoted_lines (a stray double quote?): the row was skipped and reading "
                                   "went on at its next line. Raise the limit if the field is real"}

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        image_column: str,
        text_columns: Sequence[str] = (),
        tag_columns: Sequence[str] = (),
        format: Literal["auto", "csv", "tsv", "jsonl"] = "auto",
        delimiter: str | None = None,
        tag_sep: str = ",",
        prefix: str = IMAGE_PREFIX,
        normalizer: Normalizer | None = None,
        keys: Container[str] | None = None,
        exclude: Container[str] | None = None,
        min_tokens: int = 1,
        limit: int | None = None,
        max_line_bytes: int = 4 * _MB,
        max_quoted_lines: int | None = 100_000,
    ) -> None:
        super().__init__(limit=limit, exclude=exclude, min_tokens=min_tokens)
        self.path = os.fspath(path)
        _check_input_file(self.path, "table")
        if max_quoted_lines is not None and max_quoted_lines < 1:
            raise ValueError(f"max_quoted_lines must be None or >= 1, got {max_quoted_lines}.")
        if not text_columns and not tag_columns:
            raise ValueError("give at least one of text_columns or tag_columns (the words of each image).")
        if format == "auto":
            low = self.path.lower().removesuffix(".bz2").removesuffix(".gz")
            format = "jsonl" if low.endswith((".jsonl", ".ndjson", ".json")) else "tsv" if low.endswith(".tsv") else "csv"
        if format not in ("csv", "tsv", "jsonl"):
            raise ValueError(f"format must be 'auto', 'csv', 'tsv' or 'jsonl', got {format!r}.")
        if delimiter is not None:
            if format == "jsonl":
                raise ValueError(f"delimiter={delimiter!r} applies to CSV/TSV tables, and {self.path} is read as "
                                 f"JSONL; leave it out, or pass format='csv'.")
            if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
                raise ValueError(f"delimiter must be one character other than a double quote or a line break "
                                 f"(',', ';', '\\t', '|'), got {delimiter!r}.")
        self.format = format
        self.delimiter = delimiter if delimiter is not None else "\t" if format == "tsv" else ","
        self.image_column = image_column
        self.text_columns = tuple(text_columns)
        self.tag_columns = tuple(tag_columns)
        self.tag_sep = tag_sep
        #: {tag column: (separator, cells holding it and not `tag_sep`, string cells, an example cell)}
        #: after a pass: the columns whose cells look separated by another separator than `tag_sep`
        self.tag_sep_suspects: dict[str, tuple[str, int, int, str]] = {}
        self.prefix = prefix
        self.normalizer = normalizer if normalizer is not None else Normalizer(track_vocab=False)
        self.keys = _container(keys, "keys")
        self.max_line_bytes = max_line_bytes
        self.max_quoted_lines = max_quoted_lines

    def _records(self, stats: CorpusStats) -> Iterator[tuple[str, dict]]:
        path = self.path
        if self.format == "jsonl":
            for lineno, line in _iter_lines(path, stats, self.max_line_bytes):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    stats.skip("bad_json", f"{path}:{lineno}")
                    continue
                if not isinstance(rec, dict):
                    stats.skip("bad_json", f"{path}:{lineno}")
                    continue
                yield f"{path}:{lineno}", rec
            return
        yield from self._csv_records(stats)

    def _csv_records(self, stats: CorpusStats) -> Iterator[tuple[str, dict]]:
        """CSV/TSV rows as dicts, each with ``file:line`` of the line it starts on in the file (lines
        skipped as bad UTF-8 or too long still count, unlike in :attr:`csv.reader.line_num`). A stray
        quote costs one row, counted, not the rest of the file (:func:`_csv_rows`)."""
        path = self.path
        field_limit = min(max(self.max_line_bytes, _CSV_FIELD_LIMIT), _C_LONG_MAX)
        lines = _RecordLines(_iter_lines(path, stats, self.max_line_bytes), self.max_quoted_lines or sys.maxsize,
                             field_limit)
        delimiter = self.delimiter
        rows = _csv_rows(lines, delimiter, field_limit)
        header: list[str] | None = []
        while header == []:  # blank lines before the header (a file that is only a byte order mark)
            lineno, header, problem = next(rows, (0, None, None))
            if problem in ("too_long", "bad_quote", "bad_row"):
                why = {"too_long": "a field longer than max_line_bytes: raise it to read the row",
                       "bad_quote": "a double quote opens a field and does not close"}.get(problem, "broken quoting")
                raise ValueError(f"{path}:{lineno}: cannot read the header row ({why}); a CSV/TSV table starts "
                                 f"with a row of column names.")
            if header is not None:
                stats.lines -= 1  # the header (or a blank line before it) is not a record
        if header is None:
            return
        # names as written around the separators ("id; caption"): what the column names asked for mean
        header = [h.strip() for h in header]
        problem = _header_problem(path, header, (self.image_column, *self.text_columns, *self.tag_columns),
                                  delimiter)
        if problem:
            raise ValueError(problem)
        width, column = len(header), header.index(self.image_column)
        for lineno, row, problem in rows:
            where = repaired_at = f"{path}:{lineno}"
            if row is None:
                stats.skip(problem, where)
                continue
            if len(lines.held) > 1 and not problem:
                # a record across lines (`rows` waits at its yield: `lines.held` still holds its lines):
                # rows of the table merged by a stray quote are read as rows again
                first = _stray_quote_row(lines.held, row, delimiter, width, column, field_limit)
                if first is not None:
                    repaired_at = f"{where}-{lines.held[-1][0]}"
                    if width >= 3:
                        lines.again_after_first()
                        row, problem = first, "suspect_quote"
                    else:  # two columns: a caption line "2019, a good year" reads as a row too
                        problem = "suspect_quote_kept"
            if len(row) != width:
                if row:  # blank lines are not records
                    stats.skip("wrong_columns", where)
                continue
            if problem:
                stats.repair(problem, repaired_at)
            yield where, dict(zip(header, row, strict=True))

    def _repr_source(self) -> list[str]:
        return [repr(self.path), f"image_column={self.image_column!r}", f"text_columns={self.text_columns!r}",
                f"tag_columns={self.tag_columns!r}", f"format={self.format!r}"]

    def _documents(self, stats: CorpusStats) -> Iterator[list[str]]:
        cells: dict[str, Counter] = {c: Counter() for c in self.tag_columns}  # string cells; cells by other sep
        examples: dict[tuple[str, str], str] = {}
        try:
            yield from self._table_documents(stats, cells, examples)
        finally:
            self._check_tag_sep(cells, examples)

    def _check_tag_sep(self, cells: dict[str, Counter], examples: dict[tuple[str, str], str]) -> None:
        """Name the tag columns whose string cells mostly hold another separator than `tag_sep` and not it."""
        suspects = {}
        for column, counts in cells.items():
            total = counts.pop("", 0)
            if counts:
                sep, n = counts.most_common(1)[0]
                if 2 * n >= total:
                    suspects[column] = (sep, n, total, examples[column, sep])
        if suspects and suspects != self.tag_sep_suspects:  # (not again on each pass of a training run)
            for column, (sep, n, total, example) in suspects.items():
                logger.warning("%s: %i of the %i cells of tag column %r hold %r and no %r (e.g. %r), so each became "
                               "one tag; if %r separates their tags, pass tag_sep=%r (im2vec normalize --tag-sep %r).",
                               self.name, n, total, column, sep, self.tag_sep, example, sep, sep, sep)
        self.tag_sep_suspects = suspects

    def _table_documents(self, stats: CorpusStats, cells: dict[str, Counter],
                         examples: dict[tuple[str, str], str]) -> Iterator[list[str]]:
        norm, keys = self.normalizer, self.keys
        for where, rec in self._records(stats):
            raw = rec.get(self.image_column)
            if raw is None or not str(raw).strip():
                stats.skip("missing_key", where)
                continue
            key = str(raw).strip().replace("\\", "/").removeprefix("./")
            if key.lower().endswith(IMAGE_EXTENSIONS):
                key = os.path.splitext(key)[0]
            key = encode_key(key)
            token = self.prefix + key
            if keys is not None and token not in keys and key not in keys:
                stats.skip("not_in_keys", where)
                continue
            words: list[str] = []
            for c in self.tag_columns:
                v = rec.get(c)
                if isinstance(v, list):
                    words.extend(norm.tags([str(t) for t in v if t is not None]))
                elif v:
                    v = str(v)
                    cells[c][""] += 1
                    if self.tag_sep not in v:
                        for sep in _TAG_SEPARATORS:
                            if sep in v:
                                cells[c][sep] += 1
                                examples.setdefault((c, sep), v)
                    words.extend(norm.tags(v, sep=self.tag_sep))
            for c in self.text_columns:
                v = rec.get(c)
                if isinstance(v, list):  # several captions (JSONL): each is a text, not str(list)
                    for t in v:
                        if t is not None:
                            words.extend(norm.text(str(t)))
                elif v:
                    words.extend(norm.text(str(v)))
            doc = self._finish([token], words, stats, where)
            if doc is not None:
                yield doc


class TextCorpus(_Corpus):
    """Plain text, one document per line, for word pre-training (no image tokens).

    Parameters
    ----------
    paths : path-like or sequence of path-likes
        Files (plain, ``.bz2``, ``.gz``) or folders; a folder contributes its ``*.txt`` files
        (and compressed ``*.txt.bz2`` / ``*.txt.gz``) in sorted order.
    normalizer : Normalizer, optional
        Defaults to :meth:`Normalizer.for_text() <gensim_im2vec.text.Normalizer.for_text>`
        (stop words kept: Word2Vec downsamples frequent words itself).
    max_tokens : int
        Longer documents are cut into pieces of this many tokens (gensim's jobs hold at most
        10,000 words and would silently truncate); 0 disables.
    min_tokens, limit, exclude, max_line_bytes
        As in :class:`YFCC100MCorpus`.
    """

    name = "text"

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        normalizer: Normalizer | None = None,
        max_tokens: int = 10_000,
        min_tokens: int = 1,
        limit: int | None = None,
        exclude: Container[str] | None = None,
        max_line_bytes: int = 4 * _MB,
    ) -> None:
        super().__init__(limit=limit, exclude=exclude, min_tokens=min_tokens)
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        files: list[str] = []
        for p in paths:
            p = os.fspath(p)
            if os.path.isdir(p):
                files.extend(
                    str(q) for q in sorted(Path(p).rglob("*")) if q.is_file() and q.name.endswith((".txt", ".txt.bz2", ".txt.gz"))
                )
            elif os.path.isfile(p):
                files.append(p)
            elif os.path.exists(p):
                raise OSError(
                    f"text corpus path {p!r} is {_kind(p)}, neither a file nor a folder, so it cannot be read (a "
                    f"corpus is read once per epoch); give a text file (plain, .bz2 or .gz) or a folder of *.txt "
                    f"files, e.g. save what it carries to a file first and pass that."
                )
            else:
                raise FileNotFoundError(f"text corpus path not found: {p!r}.")
        if not files:
            raise ValueError(f"no text files found in {list(map(os.fspath, paths))!r} (a folder contributes *.txt files).")
        self.files = files
        self.normalizer = normalizer if normalizer is not None else Normalizer.for_text()
        self.max_tokens = max_tokens
        self.max_line_bytes = max_line_bytes

    def _repr_source(self) -> list[str]:
        first = repr(self.files[0])
        return [first if len(self.files) == 1 else f"{len(self.files)} files: {first}, ...",
                f"max_tokens={self.max_tokens}"]

    def _documents(self, stats: CorpusStats) -> Iterator[list[str]]:
        norm, step = self.normalizer, self.max_tokens
        for path in self.files:
            for lineno, line in _iter_lines(path, stats, self.max_line_bytes):
                doc = self._finish([], norm.text(line), stats, f"{path}:{lineno}")
                if doc is None:
                    continue
                if step and len(doc) > step:
                    for i in range(0, len(doc), step):
                        yield doc[i : i + step]
                else:
                    yield doc


_END = object()  # (MixedCorpus: next()'s default at the end of a corpus)


class MixedCorpus(_Corpus):
    """Interleave a text corpus and an image corpus: `ratio` text documents per image document.

    The order is fixed (no randomness): after each image document, text documents are emitted
    until their count reaches ``ratio ×`` the image count, so any prefix of the stream holds the
    two kinds in the set ratio.

    Parameters
    ----------
    text : iterable of list of str
        A restartable corpus of word documents.
    images : iterable of list of str
        A restartable corpus of image documents.
    ratio : float
        Text documents per image document (0.5: one text document per two images); > 0.
    until : {"longest", "shortest", "images"}
        When to stop: when both are exhausted (the rest of the longer one follows at the
        end), when either is, or when the images are (the text is restarted as needed; an
        empty text corpus just stops contributing).
    limit : int, optional
        Stop after this many documents.
    """

    name = "mixed"
    _min_tokens_default = 0

    def __init__(
        self,
        text: Iterable[list[str]],
        images: Iterable[list[str]],
        *,
        ratio: float = 1.0,
        until: Literal["longest", "shortest", "images"] = "longest",
        limit: int | None = None,
    ) -> None:
        super().__init__(limit=limit, min_tokens=0)
        if not ratio > 0:
            raise ValueError(f"ratio must be > 0 (text documents per image document), got {ratio!r}.")
        if until not in ("longest", "shortest", "images"):
            raise ValueError(f"until must be 'longest', 'shortest' or 'images', got {until!r}.")
        for name, c in (("text", text), ("images", images)):
            if not isinstance(c, Iterable):
                iter(c)  # (not iterable at all: Python's TypeError now, not at the first pass)
            # (model.train's check: an iterator class whose own __iter__ starts over is re-iterable)
            if is_one_shot(c):
                raise TypeError(f"{name} is a one-shot iterator; pass a restartable corpus (e.g. TextCorpus) so every epoch sees the data.")
        self.text, self.images, self.ratio, self.until = text, images, ratio, until

    def _repr_source(self) -> list[str]:
        return [f"text={_short(self.text)}", f"images={_short(self.images)}", f"ratio={self.ratio:g}",
                f"until={self.until!r}"]

    def _documents(self, stats: CorpusStats) -> Iterator[list[str]]:
        text_it = iter(self.text)
        n_img = n_txt = 0
        text_done = False
        since_restart = 0  # text documents since the text corpus was (re)started
        for doc in self.images:
            n_img += 1
            while not text_done and n_txt < self.ratio * n_img:
                try:
                    t = next(text_it)
                except StopIteration:
                    if self.until == "images" and since_restart:
                        text_it, since_restart = iter(self.text), 0
                        continue
                    text_done = True
                    break
                n_txt += 1
                since_restart += 1
                stats.lines += 1
                yield t
            if text_done and self.until == "shortest":
                return
            stats.lines += 1
            yield doc
        if self.until == "longest" and not text_done:
            # (next(), not `for t in text_it`: a corpus that is its own iterator may start over on iter())
            while (t := next(text_it, _END)) is not _END:
                stats.lines += 1
                yield t


class LineDocuments:
    """gensim's :class:`~gensim.models.word2vec.LineSentence`, less a leading byte order mark.

    A documents file (one document per line, tokens separated by whitespace, as ``im2vec normalize``
    writes it) saved by Notepad or PowerShell (``Out-File -Encoding utf8``) starts with a UTF-8 byte
    order mark, which :meth:`str.split` keeps: the first token, the first image's key, became the
    word ``"\\ufeffimg:…"`` and its image was lost without a word. Here it is dropped; everything
    else is as in gensim: a path (read through gensim's ``utils.open``, so ``.gz``/``.bz2`` by
    extension) or a file object with ``seek``, strict UTF-8, documents of more than
    `max_sentence_length` tokens cut into pieces of that many, `limit` lines at most, empty lines
    giving no document. Restartable: each ``iter()`` reads the file afresh.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "docs.txt")
    >>> with open(path, "w", encoding="utf-8-sig") as f:
    ...     _ = f.write("img:0 cat photo\\n\\nimg:1 car\\n")
    >>> list(LineDocuments(path))
    [['img:0', 'cat', 'photo'], ['img:1', 'car']]
    """

    def __init__(self, source, max_sentence_length: int = 10_000, limit: int | None = None) -> None:
        self.source = source
        self.max_sentence_length = max_sentence_length
        self.limit = limit

    def __repr__(self) -> str:
        src = self.source
        shown = repr(os.fspath(src)) if isinstance(src, (str, os.PathLike)) else f"<{type(src).__name__}>"
        limit = "" if self.limit is None else f", limit={self.limit}"
        return f"LineDocuments({shown}, max_sentence_length={self.max_sentence_length}{limit})"

    def _lines(self) -> Iterator[bytes | str]:
        if hasattr(self.source, "seek"):
            self.source.seek(0)
            yield from itertools.islice(self.source, self.limit)
            return
        # imported here: importing gensim costs a second, and the readers need none of it
        from gensim import utils

        with utils.open(self.source, "rb") as f:
            yield from itertools.islice(f, self.limit)

    def __iter__(self) -> Iterator[list[str]]:
        step = self.max_sentence_length
        first = True
        for line in self._lines():
            text = line if isinstance(line, str) else str(line, "utf-8")  # gensim's utils.to_unicode, strict
            if first:
                first = False
                text = text.removeprefix("\ufeff")
            words = text.split()
            for i in range(0, len(words), step):
                yield words[i : i + step]


@dataclass
class KeyRepeats:
    """Image keys on more than one document, found in 8 bytes per key (YFCC100M: 800 MB).

    A photo id is unique in YFCC100M, so an id on several lines is a data error (a file
    concatenated twice, an export that wrote a photo once per set); the readers pass such lines
    on as documents of their own, and `im2vec split` and `im2vec train` merge their words onto
    the one image. :meth:`add` each document's image token, then :meth:`result`.

    Memory: a numeric key (YFCC100M's photo ids: ASCII digits, no leading zero, below 10**18) is
    kept as an int64; any other as the 8-byte BLAKE2b digest of its token, so 8 bytes per key
    (100 million keys: 800 MB; the growing array over-allocates by ~6% at times), and 1 byte per
    key more for the comparison in :meth:`result`, which sorts the arrays in place.

    Exactness: ids are exact. Two different other keys share a digest with probability
    ~n²/2**65 over n keys (3e-4 for 100 million); :meth:`result` counts the tokens behind a
    repeated digest exactly when given them again (`again`, e.g. the documents file read back),
    which happens only when a digest repeats; else it calls its counts probable (``exact`` False).

    >>> seen = KeyRepeats(prefix="img:")
    >>> for token in ["img:1000001", "img:7", "img:1000001", "img:cats/a", "img:1000001", "img:cats/a"]:
    ...     seen.add(token)
    >>> r = seen.result(again=lambda: ["img:cats/a", "img:cats/a"])
    >>> r["keys"], r["duplicate_key"], r["repeated_keys"], r["examples"], r["exact"]
    (6, 3, 2, {'img:1000001': 3, 'img:cats/a': 2}, True)
    """

    prefix: str = IMAGE_PREFIX

    def __post_init__(self) -> None:
        from array import array

        self._ids = array("q")
        self._hashes = array("q")

    def add(self, token: str) -> None:
        """Count one document's image token."""
        p = self.prefix
        key = token[len(p):] if p and token.startswith(p) else token
        if key.isdigit() and key.isascii() and len(key) < 19 and (key[0] != "0" or len(key) == 1):
            self._ids.append(int(key))
        else:
            self._hashes.append(_digest64(token))

    def result(self, again: Callable[[], Iterable[str]] | None = None, examples: int = 5,
               max_exact: int = 1_000_000) -> dict:
        """What repeats: a JSON-ready dict.

        Parameters
        ----------
        again : callable, optional
            Gives the image tokens once more (any order; other tokens are ignored): read only when
            a non-numeric key's digest repeats, to count those keys exactly.
        examples : int
            How many repeated keys to name (the most repeated first).
        max_exact : int
            Check at most this many repeated digests exactly (their set is held in memory).

        Returns
        -------
        dict
            ``keys`` (documents counted), ``duplicate_key`` (documents whose key an earlier one
            had), ``repeated_keys`` (distinct keys on several documents), ``examples`` (key →
            documents), ``exact`` (False: digests only, see the class).
        """
        import numpy as np

        found: dict[str, int] = {}
        extra = distinct = 0
        exact = True
        ids, counts = _repeats(np.frombuffer(self._ids, dtype=np.int64) if self._ids else None)
        extra += int(counts.sum()) - len(counts)
        distinct += len(counts)
        for i in np.lexsort((ids, -counts))[:examples]:
            found[f"{self.prefix}{int(ids[i])}"] = int(counts[i])
        digests, dcounts = _repeats(np.frombuffer(self._hashes, dtype=np.int64) if self._hashes else None)
        if len(digests) and again is not None and len(digests) <= max_exact:
            wanted = set(digests.tolist())
            tally = Counter(t for t in again() if _digest64(t) in wanted)
            tally = Counter({t: n for t, n in tally.items() if n > 1})
            extra += sum(tally.values()) - len(tally)
            distinct += len(tally)
            for t, n in tally.most_common(max(examples - len(found), 0)):
                found[t] = n
        elif len(digests):
            exact = False
            extra += int(dcounts.sum()) - len(dcounts)
            distinct += len(dcounts)
        found = dict(sorted(found.items(), key=lambda kv: -kv[1])[:examples])
        return {"keys": len(self._ids) + len(self._hashes), "duplicate_key": extra, "repeated_keys": distinct,
                "examples": found, "exact": exact}


def _digest64(token: str) -> int:
    """The 8-byte BLAKE2b digest of `token` as a signed int64 (:class:`KeyRepeats`)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little", signed=True)


def _repeats(a):
    """The values that occur more than once in the int64 array `a` (sorted in place) and their
    counts: 1 byte per value beside `a` (the comparison of neighbours)."""
    import numpy as np

    if a is None or len(a) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    a.sort()
    same = a[1:] == a[:-1]
    vals, counts = np.unique(a[1:][same], return_counts=True)  # counts: documents after the first
    return vals, counts + 1
