"""A keyed, memory-mapped, resumable store of image feature vectors.

A :class:`FeatureStore` is a directory. It is what :class:`~gensim_im2vec.features.FeatureExtractor`
writes and what ``Im2Vec(documents, image_features=store)`` reads:

==================  ==========================================================================
``features.npy``    the feature matrix, one row per image, float16 or float32, opened with
                    ``np.load(..., mmap_mode="r")``; rows are only ever appended
``keys.txt``        the keys in row order, one per line (UTF-8), e.g. ``img:cats/001``; appended
``metadata.json``   arch, weights, layer, dim, dtype, preprocessing, normalisation, pca, count,
                    keys_bytes, creation time, package version; the commit: a store holds its
                    first ``count`` rows and ``keys_bytes`` bytes of keys, whatever follows them
``skipped.json``    images that could not be used, ``{key: reason}``
``stamps.npy``      optional: the size and modification time (ns) of each row's image file when it
                    was extracted, int64 ``(n, 2)``, for the rows ``stamps_from`` to ``stamps_from +
                    stamps_count`` (metadata; ``-1``: no file, e.g. rows given as arrays); appended
                    and committed with the rows. An extraction run again compares them with the
                    files, so that an image changed since is said, not silently kept
``pca.npz``         optional PCA (mean, components), fitted on a sample of the rows
``shards/``         work in progress: ``shard-NNNNNN.npy`` (rows), ``stamps-NNNNNN.npy`` (their
                    files' stamps, when given) + ``shard-NNNNNN.json`` (the commit record: keys,
                    skips, identity), written data first, record last
``.lock``           the single-writer lock (an OS lock held by the writing process, whose pid
                    the file names); the OS releases it when that process ends, even by kill -9
                    (children it forks, e.g. decode workers, close their copy at once)
``.unfinished-run`` the run that started the store (or replaced it, ``mode="overwrite"``) has not
                    finished: written before the store's first file, deleted by the writer's
                    ``close()`` once the store is complete. While it is there the store holds only
                    that run's rows so far, and an extraction run again continues it (also with
                    ``mode="create"`` or ``"overwrite"``), see ``resume`` of the writer
==================  ==========================================================================

Any features can go in, e.g. ones computed elsewhere:

>>> import numpy as np, tempfile, os
>>> from gensim_im2vec.store import FeatureStore
>>> tmp = tempfile.mkdtemp()
>>> vecs = np.random.default_rng(0).random((3, 8), dtype=np.float32) + 0.1
>>> store = FeatureStore.from_arrays(os.path.join(tmp, "feats"), ["img:a", "img:b", "img:c"], vecs)
>>> len(store), store.dim, store.vectors.dtype.name, "img:b" in store
(3, 8, 'float32', True)
>>> store = FeatureStore.open(os.path.join(tmp, "feats"))          # memory-mapped
>>> store.key_to_index["img:c"], store.get_vector("img:c").shape
(2, (8,))

Writing in pieces goes through a writer. Rows are buffered and committed in shards; a crash
loses at most the uncommitted shard, and reopening with ``mode="extend"`` continues (the
writer's ``done_keys`` says what is already there). ``close()`` appends the committed rows to
``features.npy`` and ``keys.txt`` and then commits their count in ``metadata.json``: rows already
stored are never rewritten, so closing or resuming costs O(new rows) at any store size:

>>> with FeatureStore.create(os.path.join(tmp, "more"), dim=8, dtype="float16") as w:
...     w.write(["img:x", "img:y"], vecs[:2])
...     w.skip("img:broken", "not an image: cannot identify image file")
>>> s = FeatureStore.open(os.path.join(tmp, "more"))
>>> s.keys, s.vectors.dtype.name, s.skipped
(['img:x', 'img:y'], 'float16', {'img:broken': 'not an image: cannot identify image file'})

A store has one writer at a time: a second writer, in this process or another, is refused with
:class:`StoreLockedError`, which names the pid of the process that writes:

>>> w = FeatureStore.create(os.path.join(tmp, "busy"), dim=8)
>>> FeatureStore.create(os.path.join(tmp, "busy"), dim=8, mode="extend")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
gensim_im2vec.store.StoreLockedError: feature store '...busy' is being written by another writer (pid ...); ...
>>> w.close()

A store made by one model or layer refuses rows from another (``mode="extend"`` checks the
identity: arch, weights, layer, feature dim, dtype, preprocessing, normalisation, PCA).

PCA shrinks wide features (e.g. AlexNet fc7, 4096-d) on a sample of rows; it is stored with the
metadata and applied on read (``vectors`` is then an in-memory float32 array) or, from the
extractor, on write:

>>> s = FeatureStore.from_arrays(os.path.join(tmp, "wide"), [f"img:{i}" for i in range(50)],
...                              np.random.default_rng(1).random((50, 16), dtype=np.float32))
>>> s = s.fit_pca(4)
>>> s.dim, s.raw_vectors.shape[1], s.metadata["pca"]["n_components"]
(4, 16, 4)
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import io
import itertools
import json
import logging
import operator
import os
import re
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from pathlib import Path

import numpy as np

from gensim_im2vec import __version__
from gensim_im2vec.fileio import (
    atomic_write,
    atomic_write_bytes,
    fsync_dir,
    lock_contents,
    lock_file_current,
    pid_alive,
    read_lock,
    remove_unwritten_lock,
    temp_name,
)
from gensim_im2vec.keys import IMAGE_SUFFIXES, encode_key
from gensim_im2vec.validation import check_features, is_int, npy_header

logger = logging.getLogger(__name__)
_INDEX_LOCK = threading.Lock()  # FeatureStore.key_to_index's first build

__all__ = ["FeatureStore", "FeatureStoreWriter", "KeyIndex", "PCA", "StoreMismatchError", "StoreLockedError", "IDENTITY_FIELDS",
           "NO_STAMP", "VocabKeyIndex", "check_store_folder", "file_stamp", "images_digest", "is_store", "key_rows",
           "unfinished_run"]

FORMAT_VERSION = 1
FEATURES_FILE = "features.npy"
KEYS_FILE = "keys.txt"
METADATA_FILE = "metadata.json"
SKIPPED_FILE = "skipped.json"
PCA_FILE = "pca.npz"
JOURNAL_FILE = "consolidate.json"  # renames of a PCA rewrite (and of stores written before appends)
LOCK_FILE = ".lock"
#: The record of an unfinished run (see the module notes): there from before a new store's first file
#: until its writer's close(); hidden, like the lock, so that it never makes a folder look like a user's.
RUN_FILE = ".unfinished-run"
SHARD_DIR = "shards"
#: The size and mtime_ns of each row's image file when it was extracted (see the module notes).
STAMPS_FILE = "stamps.npy"
#: The stamp of a row without a file (rows given as arrays) or of a file that could not be stat'ed.
NO_STAMP = -1
_SHARD_RE = re.compile(r"^(shard|stamps)-(\d{6,})\.(npy|json)$")  # groups: kind, shard id, ending
_WHITESPACE = re.compile(r"\s")
_STORE_FILES = (FEATURES_FILE, KEYS_FILE, METADATA_FILE, SKIPPED_FILE, PCA_FILE, JOURNAL_FILE, STAMPS_FILE)
_STAMP_BYTES = 16  # one row of stamps.npy: two int64
_STAMP_FIELDS = ("stamps_from", "stamps_count")  # the metadata that commits stamps.npy's rows
_LOOKUP_CHUNK = 1 << 20  # keys looked up at a time by _rows_of
#: What a writer found of a store's stamps (FeatureStoreWriter.stored_stamps): none.
_NO_FOUND_STAMPS: tuple = ([], (None, 0, 0), [], None)

#: Metadata fields that must agree before rows from two runs may share one store.
IDENTITY_FIELDS = (
    "arch",
    "weights",
    "layer",
    "feature_dim",
    "dim",
    "dtype",
    "preprocessing",
    "normalisation",
    "pca_components",
)
_DTYPES = {"float16": np.float16, "float32": np.float32}
_COPY_ROWS = 65536  # rows copied per step when appending shards (bounded memory)
#: A writer appends its committed shards to the store once they hold this many bytes (and at close).
APPEND_BYTES = 256 << 20


class StoreMismatchError(ValueError):
    """Rows from a different model, layer, dtype, preprocessing or PCA were about to be mixed."""


class StoreLockedError(OSError):
    """Another writer (in this process or another) holds the feature store's lock."""


# ----------------------------------------------------------------------------- the writer lock

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no OS lock, one writer is the user's duty
    fcntl = None


def lock_folder(path: Path, busy: Callable[[str], str], *, remove: bool = False) -> _StoreLock:
    """The single-writer lock (:class:`_StoreLock`) of a folder that is not a feature store (a data
    set being built, the parts of a Ray extraction), refused at once when another process holds
    it, with ``busy(pid of the holder)`` as the message; `remove`: its file is removed on release."""
    try:
        return _StoreLock(path, remove=remove)
    except StoreLockedError:
        try:
            holder = read_lock((path / LOCK_FILE).read_bytes())[0]
        except OSError:
            holder = "unknown"
        raise StoreLockedError(busy(holder)) from None


class _StoreLock:
    """The single-writer lock of a store: ``flock`` on ``DIR/.lock``, which holds the holder's pid and
    when it started (:func:`~gensim_im2vec.fileio.lock_contents`).

    The OS releases the lock when its file is closed or the holding process ends (also by
    kill -9), so a crashed writer never leaves a stale lock. Two writers in one process are
    refused too (each opens the file itself). A child forked while the lock is held (e.g. a
    decode worker) closes its inherited copy at once, so that it never keeps the store locked
    after its parent has ended.

    Parameters
    ----------
    path : pathlib.Path
        The store directory (must exist).
    wait : float
        Seconds to wait for a busy lock (0: refuse at once). When the pid in the lock file has
        ended although the lock is still held (a process it started holds a copy of the lock,
        e.g. one forked before this version closed them), it waits up to :data:`ORPHAN_WAIT`
        seconds more for that process to exit.
    remove : bool
        Remove the lock file on release (a folder that had none before, e.g. a user's own image
        folder that ``im2vec datasets split`` writes split.json into), instead of leaving it empty.
        Every holder checks, once it holds the lock, that the file it locked is still the one of
        that name, so a file removed under a waiting writer is never locked by two.
    """

    def __init__(self, path: Path, *, wait: float = 0.0, remove: bool = False) -> None:
        self.file = path / LOCK_FILE
        self._fd: int | None = None
        self._remove = remove
        while True:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    self._take(fd, path, wait)
                    # a holder that removes its lock file as it lets go (`remove`) may have removed this
                    # one between its open and its flock: lock the one now there, as output_lock does
                    if not lock_file_current(self.file, fd):
                        os.close(fd)
                        continue
            except BaseException as e:  # (refused, or no flock on this mount: the descriptor is not left open)
                if remove and isinstance(e, OSError) and not isinstance(e, StoreLockedError):
                    remove_unwritten_lock(self.file, fd)  # no flock here (ENOLCK): a lock file this one made is not left
                os.close(fd)
                raise
            break
        os.ftruncate(fd, 0)
        os.pwrite(fd, lock_contents(), 0)
        self._fd = fd
        _HELD_LOCKS.add(self)

    def _take(self, fd: int, path: Path, wait: float) -> None:
        """``flock`` the open lock file `fd`, waiting up to `wait` seconds (see the class)."""
        deadline = time.monotonic() + wait
        orphan_waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder, _, start = read_lock(os.pread(fd, 512, 0))
                    if not pid_alive(holder, start):  # (also: its pid now another process's)
                        if not orphan_waited and ORPHAN_WAIT > 0:
                            # the recorded writer has ended; what still holds the lock is a process it
                            # started (its decode workers exit within seconds of it): wait for them
                            orphan_waited = True
                            deadline = time.monotonic() + ORPHAN_WAIT
                            logger.info("%s: the writer that held the lock (pid %s) has ended, but a "
                                        "process it started still holds it; waiting up to %g s",
                                        path, holder, ORPHAN_WAIT)
                            continue
                        raise StoreLockedError(
                            f"feature store {str(path)!r} is locked, but not by a running writer: the "
                            f"writer that took the lock (pid {holder}) has ended, and a process it started "
                            f"(e.g. one of its image decode workers, which exit within seconds of it) still "
                            f"holds the lock. Retry in a few seconds; if it stays locked, find the holder "
                            f"with `fuser -v {self.file}` (or `lsof {self.file}`) and stop it. The lock "
                            f"is released when its last holder exits."
                        ) from None
                    raise StoreLockedError(
                        f"feature store {str(path)!r} is being written by another writer (pid {holder}); "
                        f"a store has one writer at a time. Wait for that process to finish (or stop it) "
                        f"and run again, or write to another directory. The lock is {str(self.file)!r}; "
                        f"the OS releases it when its holder exits."
                    ) from None
                time.sleep(0.05)

    def release(self) -> None:
        """Give the lock up (closing the file releases the OS lock); with `remove`, its file goes first."""
        fd, self._fd = self._fd, None
        _HELD_LOCKS.discard(self)
        if fd is not None:
            try:
                if self._remove:  # (while held: a writer waiting on this file sees it gone and takes a new one)
                    self.file.unlink(missing_ok=True)
                else:
                    os.ftruncate(fd, 0)
            finally:
                os.close(fd)

    def _forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptor without touching the lock file (the
        parent still holds the lock through its own descriptor)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> _StoreLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


#: Seconds a writer waits for a lock whose recorded writer has ended but that a process it started
#: (an orphaned decode worker) still holds, before it is refused.
ORPHAN_WAIT = 10.0
_HELD_LOCKS: weakref.WeakSet[_StoreLock] = weakref.WeakSet()


def _close_locks_in_child() -> None:
    for lock in list(_HELD_LOCKS):
        lock._forget_in_child()
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_locks_in_child)


def _writer_pid(path: Path) -> int | None:
    """The pid of a live process that holds (or held until it was killed) the store's writer lock, as
    its lock file names it; None when no writer runs. Reads the file only: taking the lock, even
    shared, could make a writer that starts at that moment fail."""
    try:
        first, _, start = read_lock((path / LOCK_FILE).read_bytes())
        pid = int(first)
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    # killed (kill -9 leaves its pid in the file), also when the pid is another process's now (its start differs)
    return pid if pid_alive(pid, start) else None


def unfinished_run(path) -> dict | None:
    """The record of the unfinished run that started (or overwrote) the store at `path`: ``mode``
    ("create", "extend" or "overwrite") and ``started``; None when the store is complete (its
    writer closed it), was written before these records existed, or there is no store.

    A run that was interrupted (Ctrl-C, kill -9, a crash, also during its final append) leaves
    it; an extraction run again continues that run (:class:`FeatureStoreWriter`'s ``resume``).
    """
    file = Path(path) / RUN_FILE
    if not file.is_file():
        return None
    try:
        run = _read_json(file)
    except (OSError, ValueError):
        run = None
    if not isinstance(run, dict):  # damaged: what it says is only for messages, that it is there counts
        run = {}
    return {"mode": str(run.get("mode", "unknown")), "started": str(run.get("started", "unknown")),
            "inputs": run.get("inputs")}


def images_digest(items) -> str:
    """SHA-256 of an extraction's image list, its ``(key, path)`` pairs in order: recorded by the
    run that starts a store (:func:`unfinished_run`'s ``inputs``), so that only a rerun given the
    same images continues it (another list would keep the first list's rows under its keys)."""
    h = hashlib.sha256()
    for key, p in items:
        h.update(f"{key}\t{os.fspath(p)}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _unfinished_other_images(path: Path, run: Mapping) -> str:
    return (f"feature store {str(path)!r} is the output of {_unfinished_note(run)} of another list of images "
            f"(other files or keys): continuing it would keep that run's rows under this run's keys. Run that "
            f"extraction again with its images to finish it, pass mode='overwrite' to replace it, or write to a "
            f"new directory.")


def _unfinished_note(run: Mapping) -> str:
    """``"the unfinished extraction (mode='overwrite', started 2026-...)"`` for messages."""
    return f"the unfinished extraction (mode={run['mode']!r}, started {run['started']})"


# ----------------------------------------------------------------------------- file helpers


def _atomic_write(path: Path, writer) -> None:
    """Write `path` through ``writer(fileobj)``, fsynced, all or nothing (:mod:`gensim_im2vec.fileio`)."""
    atomic_write(path, writer, durable=True)


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def _atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, _json_bytes(obj), durable=True)


def _read_json(path: Path):
    """Parse a JSON file; a damaged one raises ValueError naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{str(path)!r} is damaged: invalid UTF-8 at byte {e.start}.") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is damaged: not valid JSON ({e.msg} at byte {e.pos} of {len(data)}).") from None


def _keys_bytes(keys: Sequence[str]) -> bytes:
    return "".join(k + "\n" for k in keys).encode("utf-8")


def _read_keys_bytes(path: Path, nbytes: int | None) -> bytes:
    """The committed part of ``keys.txt``: its first `nbytes` bytes (all of it when None, as in a
    store written before ``keys_bytes`` was recorded). Bytes beyond are keys an interrupted append
    wrote but never committed; a shorter file is damaged."""
    try:
        with open(path, "rb") as f:
            data = f.read() if nbytes is None else f.read(nbytes)
    except FileNotFoundError:
        raise FileNotFoundError(_missing_keys_message(path, nbytes)) from None
    if nbytes is not None and len(data) < nbytes:
        try:  # a damaged file says where first, if it can
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise ValueError(f"{str(path)!r} is damaged: invalid UTF-8 at byte {e.start} (line {line}). Keys are "
                             f"written as UTF-8; re-extract the store into a new directory.") from None
        raise ValueError(
            f"{str(path)!r} is damaged: it has {len(data)} bytes, the store's committed keys take {nbytes} "
            f"(a truncated copy?). Copy the store again or re-extract it into a new directory."
        )
    if data and not data.endswith(b"\n"):
        raise ValueError(f"{str(path)!r} is damaged: its committed keys do not end with a line break; "
                         f"re-extract the store into a new directory.")
    return data


def _missing_keys_message(path: Path, nbytes: int | None) -> str:
    return (
        f"{str(path)!r} is missing: the feature store is incomplete, its rows have no keys"
        f"{f' (the store commits {nbytes} bytes of them)' if nbytes else ''}. Restore the file (e.g. from a "
        f"copy of the store) or re-extract the store into a new directory."
    )


_SKIPPED_FIX = ("It only lists the images that could not be used: restore it, or delete it (the store's rows "
                "stay; the next extraction in mode='extend' tries those images again).")


def _read_skipped(path: Path) -> dict[str, str]:
    """A store's ``skipped.json`` (``{key: reason}``; {} when there is none); anything else raises
    ValueError naming the file."""
    file = path / SKIPPED_FILE
    if not file.exists():
        return {}
    try:
        skipped = _read_json(file)
    except ValueError as e:
        raise ValueError(f"{e} {_SKIPPED_FIX}") from None
    if not isinstance(skipped, dict) or not all(isinstance(v, str) for v in skipped.values()):
        got = type(skipped).__name__ if not isinstance(skipped, dict) else "an object with non-text reasons"
        raise ValueError(
            f"{str(file)!r} is damaged: expected a JSON object {{key: reason}}, got {got}. {_SKIPPED_FIX}"
        )
    return skipped


def _parse_keys(path: Path, data: bytes) -> list[str]:
    """The keys of ``keys.txt`` bytes, one per line; invalid UTF-8 or a duplicate key raises
    ValueError naming the file (a duplicate would put the wrong row behind a key)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(
            f"{str(path)!r} is damaged: invalid UTF-8 at byte {e.start} (line {line}). Keys are written "
            f"as UTF-8; re-extract the store into a new directory."
        ) from None
    keys = text.split("\n")[:-1] if text else []
    if len(set(keys)) != len(keys):
        first: dict[str, int] = {}
        dups = []
        for i, k in enumerate(keys):
            if k in first:
                dups.append(f"{k!r} (lines {first[k] + 1} and {i + 1})")
            else:
                first[k] = i
        raise ValueError(
            f"{str(path)!r} lists {len(dups)} key(s) twice: {', '.join(dups[:5])}; each key must name one "
            f"row. The store was edited or damaged: re-extract it into a new directory."
        )
    return keys


def _read_keys(path: Path, nbytes: int | None = None) -> list[str]:
    """The committed keys of ``keys.txt`` (see :func:`_read_keys_bytes`, :func:`_parse_keys`)."""
    return _parse_keys(path, _read_keys_bytes(path, nbytes))


def _header_bytes(dtype: str, count: int, dim: int) -> bytes:
    """The ``.npy`` header of a C-order (count, dim) matrix. NumPy leaves room in it for the row
    count to grow to 21 digits, so appending rows rewrites these bytes in place, never the rows."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (int(count), int(dim))})
    return buf.getvalue()


def _features_layout(file: Path, dim: int, dtype: str) -> int:
    """Check ``features.npy``'s header against the store's dim and dtype; return its data offset.

    The header's row count is not checked: the count in ``metadata.json`` is the commit (a crash
    between the commit and the header update leaves an older count in the header)."""
    try:
        shape, dt, fortran, offset = npy_header(file)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{str(file)!r} is missing: the feature store is incomplete; re-extract it into a new directory."
        ) from None
    except ValueError as e:
        size = file.stat().st_size if file.exists() else 0
        raise ValueError(
            f"{str(file)!r} is damaged ({size} bytes; {e}). Its rows cannot be read: restore the file or "
            f"re-extract the store into a new directory."
        ) from None
    if len(shape) != 2 or shape[1] != dim or fortran or dt.name != dtype:
        raise ValueError(
            f"{str(file)!r} is damaged: it holds {'Fortran-order ' if fortran else ''}{dt.name} rows of shape "
            f"{tuple(shape)}, the store's metadata says rows of dim {dim} in {dtype}. Restore the file or "
            f"re-extract the store into a new directory."
        )
    return offset


def file_stamp(path) -> tuple[int, int]:
    """The stamp a store records for an image file: ``(size, mtime_ns)`` (one ``os.stat``, symlinks
    followed); ``(NO_STAMP, NO_STAMP)`` when the file cannot be stat'ed.

    An extraction takes it before the file is read, so that a file changed while it runs is found
    changed by the next run rather than stamped as new with its old features. An edit that keeps
    both the size and the modification time (``touch -r``, a copy that sets the old time) is not
    seen; on file systems with coarse times (FAT: 2 s) neither is one of the same size within that
    time.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "a.jpg")
    >>> with open(f, "wb") as fh:
    ...     _ = fh.write(b"12345")
    >>> file_stamp(f)[0], file_stamp(f + ".missing")
    (5, (-1, -1))
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, unreadable folder, a NUL in the name
        return NO_STAMP, NO_STAMP
    return int(st.st_size), int(st.st_mtime_ns)


def _read_stamps(file: Path, found: tuple[int, int, int], count: int, rows: np.ndarray | None) -> np.ndarray:
    """The stamps of `rows` (all `count` rows of the store when None) from ``stamps.npy`` (`file`),
    whose committed stamps `found` (``(stamps_from, stamps_count, data offset)``) says; NO_STAMP for
    rows outside them. Reads those rows only (a memory map)."""
    start, n, offset = found
    out = np.full((count if rows is None else len(rows), 2), NO_STAMP, dtype=np.int64)
    mm = np.memmap(file, dtype="<i8", mode="r", offset=offset, shape=(n, 2))
    if rows is None:
        out[start : start + n] = mm
    else:
        hit = np.flatnonzero((rows >= start) & (rows < start + n))
        if len(hit):
            out[hit] = mm[rows[hit] - start]
    del mm
    return out


def _stamps_problem(file: Path, rows: int, *, exact: bool = True) -> str | None:
    """Why `file` does not hold `rows` stamps (an ``(n, 2)`` int64 ``.npy``; exactly `rows` of them,
    or at least `rows` when not `exact`: the tail beyond a store's commit), or None."""
    try:
        shape, dt, fortran, offset = npy_header(file)
        size = file.stat().st_size
    except (ValueError, OSError) as e:
        return str(e)
    if len(shape) != 2 or shape[1] != 2 or dt != np.dtype("<i8") or fortran:
        return f"{str(file)!r} holds {dt.name} of shape {tuple(shape)}, not (n, 2) int64 stamps"
    need = offset + rows * _STAMP_BYTES
    if size < need or (exact and (size != need or shape[0] != rows)):
        return f"{str(file)!r} has {size} bytes, {rows} stamps need {need} (truncated?)"
    if len(_header_bytes("<i8", rows, 2)) != offset:
        return f"{str(file)!r} has a header of {offset} bytes, not one this writer can update in place"
    return None


def _committed_stamps_problem(file: Path, start, n, rows: int) -> str | None:
    """Why ``stamps_from`` `start` and ``stamps_count`` `n` of a store of `rows` rows do not describe
    the stamps in `file` (at least `n` of them; more are an interrupted append's), or None."""
    if not (is_int(start) and is_int(n) and start >= 0 and n >= 0 and start + n <= rows):
        return f"{METADATA_FILE} says stamps_from {start!r}, stamps_count {n!r} for a store of {rows} rows"
    return _stamps_problem(file, int(n), exact=False)


def _rows_of(stored: Sequence[str], query: Sequence[str]) -> np.ndarray:
    """The row of each key of `query` in `stored` (unique keys), -1 where it is not there: a
    :class:`KeyIndex` of `stored` (its keys' hashes sorted, each match confirmed on the key itself),
    the query looked up :data:`_LOOKUP_CHUNK` keys at a time."""
    rows = np.full(len(query), -1, dtype=np.int64)
    if not len(stored) or not len(query):
        return rows
    index = KeyIndex(stored if isinstance(stored, list) else list(stored))
    for lo in range(0, len(query), _LOOKUP_CHUNK):
        rows[lo : lo + _LOOKUP_CHUNK] = index.rows(query[lo : lo + _LOOKUP_CHUNK])
    return rows


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _check_keys(keys, name: str) -> list[str]:
    if isinstance(keys, str):
        raise TypeError(f"{name}: expected a sequence of key strings, got one string {keys!r}; wrap it in a list.")
    keys = list(keys)
    for k in keys:
        if not isinstance(k, str) or not k:
            raise TypeError(f"{name}: every key must be a non-empty str, got {k!r}.")
        if "\n" in k or "\r" in k:
            raise ValueError(f"{name}: key {k!r} contains a line break; keys are stored one per line. Rename it.")
        try:
            k.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{name}: key {k!r} is not valid Unicode (bytes of a file name that are not UTF-8, decoded "
                f"with surrogateescape?); keys are stored as UTF-8: write those bytes as %XX, as "
                f"gensim_im2vec.keys.encode_key does ({encode_key(k)!r})."
            ) from None
        if _WHITESPACE.search(k):
            raise ValueError(
                f"{name}: key {k!r} contains whitespace, so a document (tokens separated by whitespace) "
                f"could never name it; write whitespace as %XX, e.g. with gensim_im2vec.corpora.encode_key."
            )
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        dups = [k for k in keys if k in seen or seen.add(k)]
        raise ValueError(f"{name}: duplicate keys {dups[:5]!r}; every image needs its own key.")
    return keys


def _resolve_dtype(dtype) -> str:
    name = np.dtype(dtype).name if dtype is not None else "float16"
    if name not in _DTYPES:
        raise ValueError(f"dtype: expected 'float16' or 'float32', got {dtype!r}.")
    return name


def is_store(path) -> bool:
    """Whether folder `path` holds a feature store (finished, or one a writer started and may resume)."""
    path = Path(path)
    return (path / METADATA_FILE).exists() or (path / SHARD_DIR).is_dir() or (path / JOURNAL_FILE).exists()


def _rows_without_metadata(path: Path) -> str | None:
    """What rows folder `path` holds although it has no ``metadata.json`` (nor a journal that brings
    one back), e.g. ``"features.npy (10 rows of dim 4) and keys.txt (10 keys)"``; None if there is
    metadata or no rows. Such rows are a store whose metadata was lost: a writer that started a store
    afresh there would delete them (a new store's ``features.npy`` holds a header only, its
    ``keys.txt`` nothing, until its metadata is written)."""
    if (path / METADATA_FILE).exists() or (path / JOURNAL_FILE).exists():
        return None
    found = []
    ffile, kfile = path / FEATURES_FILE, path / KEYS_FILE
    if ffile.is_file():
        size = ffile.stat().st_size
        try:
            shape, _, _, offset = npy_header(ffile)
            if size > offset or (len(shape) == 2 and shape[0] > 0):
                found.append(f"{FEATURES_FILE} ({shape[0] if len(shape) else '?'} rows"
                             f"{f' of dim {shape[1]}' if len(shape) == 2 else ''})")
        except (ValueError, OSError):
            if size:
                found.append(f"{FEATURES_FILE} ({size} bytes)")
    if kfile.is_file() and kfile.stat().st_size:
        with open(kfile, "rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        found.append(f"{KEYS_FILE} ({lines} keys)")
    return " and ".join(found) or None


def _lost_metadata_message(path: Path, rows: str) -> str:
    if is_store(path):
        replace = ("write the store again with mode='overwrite' (`im2vec extract --mode overwrite`), or write "
                   "to a new directory")
    else:  # not recognisably a store (no shards/ either): overwrite refuses it too
        replace = f"move {FEATURES_FILE} and {KEYS_FILE} out of it, or write to a new directory"
    return (
        f"feature store {str(path)!r} has lost its {METADATA_FILE}: the folder holds {rows}, but not the "
        f"{METADATA_FILE} that says how many of them are committed and what they are (dim, dtype, model). "
        f"Restore {str(path / METADATA_FILE)!r} (e.g. from a backup or a copy of the store) to use or extend "
        f"it; or, to replace these rows, {replace}."
    )


def check_store_folder(path) -> None:
    """Refuse a non-empty folder that is not a feature store, before anything is written there: a
    store's files would go in beside the user's. The message names one of them. Hidden entries
    (``.DS_Store``, ``.gitkeep``, the lock file, a temporary file of an interrupted write) do not
    count, as for the other commands' output folders (:func:`~gensim_im2vec.fileio.check_output_folder`):
    the only hidden names a store writes are its lock file and temporary files."""
    path = Path(path)
    if not path.is_dir() or is_store(path):
        return
    entries = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    rows = _rows_without_metadata(path) if entries else None
    if rows:
        raise FileExistsError(_lost_metadata_message(path, rows))
    if entries:
        first = entries[0]
        raise FileExistsError(
            f"{str(path)!r} is a non-empty directory that is not a feature store: it holds {first!r}. Choose a new "
            f"or empty folder, or move {first!r} and your other files out of it."
        )


def _identity(metadata: Mapping) -> dict:
    return {f: metadata.get(f) for f in IDENTITY_FIELDS}


def _recorded_node(layer) -> str | None:
    """The graph node a recorded `layer` resolved to, where the record names it in brackets
    (``"layer4 (layer4.1.relu_1)"``, a module's name; ``"fc7 (classifier.5)"``, a Caffe alias); None
    for a layer recorded as its node itself."""
    if isinstance(layer, str) and layer.endswith(")") and " (" in layer:
        return layer[layer.index(" (") + 2:-1]
    return None


def _identity_value(field: str, value):
    """An identity field's value as two runs' are compared: a layer by the graph node it resolved to
    (:func:`_recorded_node`: ``"layer4 (layer4.1.relu_1)"`` is ``"layer4.1.relu_1"``, the same rows)."""
    node = _recorded_node(value) if field == "layer" else None
    return value if node is None else node


def _identity_diff(have: Mapping, want: Mapping) -> list[str]:
    return [f for f in IDENTITY_FIELDS if _identity_value(f, have.get(f)) != _identity_value(f, want.get(f))]


def _mismatch_message(path: Path, have: Mapping, want: Mapping, fields: list[str]) -> str:
    lines = [f"  {f}: store has {have.get(f)!r}, this run has {want.get(f)!r}" for f in fields]
    return (
        f"feature store {str(path)!r} was made with different settings; its rows cannot be mixed "
        f"with these:\n" + "\n".join(lines) + "\nUse the same model/layer/dtype/PCA as the store, "
        "write to a new directory, or pass mode='overwrite' to replace it."
    )


def _unfinished_mismatch(path: Path, run: Mapping, have: Mapping, want: Mapping, fields: list[str]) -> str:
    lines = [f"  {f}: store has {have.get(f)!r}, this run has {want.get(f)!r}" for f in fields]
    return (
        f"feature store {str(path)!r} is the output of {_unfinished_note(run)}, made with other "
        f"settings:\n" + "\n".join(lines) + "\nRun that extraction again with its settings to finish it, pass "
        "mode='overwrite' to replace it, or write to a new directory."
    )


# ----------------------------------------------------------------------------- PCA


class PCA:
    """Principal component projection ``(x - mean) @ components.T``, fitted in float64.

    Parameters
    ----------
    mean : numpy.ndarray of shape (n_features,)
    components : numpy.ndarray of shape (n_components, n_features)
        Orthonormal rows, largest variance first.
    explained_variance_ratio : numpy.ndarray of shape (n_components,), optional
    """

    def __init__(self, mean: np.ndarray, components: np.ndarray, explained_variance_ratio=None) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.components = np.asarray(components, dtype=np.float32)
        if explained_variance_ratio is None:
            explained_variance_ratio = np.full(len(self.components), np.nan)
        self.explained_variance_ratio = np.asarray(explained_variance_ratio, dtype=np.float64)

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.components.shape[1])

    @classmethod
    def fit(cls, sample, n_components: int, *, name: str = "pca") -> PCA:
        """Fit on `sample` (n_samples, n_features); needs ``n_components <= min(n_samples, n_features)``."""
        x = check_features(sample, name=name, allow_zero=True)
        n, f = x.shape
        if not is_int(n_components) or n_components < 1:
            raise ValueError(f"{name}: n_components must be a positive int, got {n_components!r}.")
        if n_components > min(n, f):
            raise ValueError(
                f"{name}: cannot keep {n_components} components from {n} sample rows of dim {f}; "
                f"use n_components <= {min(n, f)} or a larger sample."
            )
        mean = x.mean(axis=0, dtype=np.float64)
        cov = np.zeros((f, f), dtype=np.float64)
        for start in range(0, n, 8192):
            c = x[start : start + 8192].astype(np.float64) - mean
            cov += c.T @ c
        cov /= max(n - 1, 1)
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1][:n_components]
        comps = evecs[:, order].T
        # deterministic sign: the largest-magnitude entry of each component is positive
        signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
        signs[signs == 0] = 1
        comps *= signs[:, None]
        total = float(np.clip(evals, 0, None).sum()) or 1.0
        ratio = np.clip(evals[order], 0, None) / total
        return cls(mean, comps, ratio)

    def transform(self, x) -> np.ndarray:
        """Project rows of `x` (n, n_features) to float32 (n, n_components)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"pca: expected rows of dim {self.n_features}, got shape {x.shape}.")
        return ((x - self.mean) @ self.components.T).astype(np.float32, copy=False)

    def save(self, path) -> None:
        """Write ``mean``, ``components`` and ``explained_variance_ratio`` to an .npz atomically."""
        path = Path(path)
        _atomic_write(
            path,
            lambda f: np.savez(
                f, mean=self.mean, components=self.components, explained_variance_ratio=self.explained_variance_ratio
            ),
        )

    @classmethod
    def load(cls, path) -> PCA:
        with np.load(path) as z:
            return cls(z["mean"], z["components"], z["explained_variance_ratio"])

    def digest(self) -> str:
        """What identifies the projection: the first 16 hex digits of the SHA-256 of its ``mean`` and
        ``components`` (little-endian float32). Another fit (another sample, other images) has another;
        a model trained on a PCA store maps only features of that digest's projection."""
        h = hashlib.sha256()
        for a in (self.mean, self.components):
            h.update(np.ascontiguousarray(a, dtype="<f4").tobytes())
        return h.hexdigest()[:16]

    def describe(self, applied: str, fitted_on: int) -> dict:
        return {
            "n_components": self.n_components,
            "n_features": self.n_features,
            "applied": applied,
            "fitted_on": int(fitted_on),
            "explained_variance": float(np.nansum(self.explained_variance_ratio)),
            "file": PCA_FILE,
            "sha256": self.digest(),
        }


# ----------------------------------------------------------------------------- journal and shards


def _roll_forward(path: Path, recovering: bool = True) -> bool:
    """Perform the renames and deletions of the journal (after a crash: finish them); True if
    there was a journal."""
    journal = path / JOURNAL_FILE
    if not journal.exists():
        return False
    if recovering:
        logger.warning("%s: finishing an interrupted consolidation (journal %s)", path, JOURNAL_FILE)
    plan = _read_json(journal)
    for tmp, final in plan["replace"]:
        if (path / tmp).exists():
            os.replace(path / tmp, path / final)
    fsync_dir(path)
    for name in plan["delete"]:
        # commit records are listed before their data, so a crash here never leaves a record
        # without its data
        try:
            (path / name).unlink()
        except FileNotFoundError:
            pass
    journal.unlink()
    fsync_dir(path)
    return True


def _shard_problem(d: Path, sid: int, dim: int, dtype: str) -> tuple[dict | None, str | None]:
    """Read shard `sid`'s commit record and check its data against it without loading the rows.

    Returns ``(record, None)`` for a usable shard, ``(None, why)`` for a damaged one (a truncated
    or empty ``.npy``, a record that is not valid JSON, a shape or size that disagrees).
    """
    jpath, npath = d / _shard_name(sid, "json"), d / _shard_name(sid, "npy")
    try:
        rec = _read_json(jpath)
    except (ValueError, OSError) as e:
        return None, str(e)
    ok = (
        isinstance(rec, dict)
        and isinstance(rec.get("count"), int)
        and isinstance(rec.get("keys"), list)
        and len(rec["keys"]) == rec["count"]
        and all(isinstance(k, str) for k in rec["keys"])
        and isinstance(rec.get("skipped"), dict)
    )
    if not ok:
        return None, f"{str(jpath)!r} is not a commit record (count, keys, skipped)"
    try:
        shape, dt, fortran, offset = npy_header(npath)
        size = npath.stat().st_size
    except (ValueError, OSError) as e:
        return None, str(e)
    want = (rec["count"], dim)
    if tuple(shape) != want or fortran or np.dtype(dt).name != dtype:
        return None, f"{str(npath)!r} holds {np.dtype(dt).name} rows of shape {tuple(shape)}, its record says {want} {dtype}"
    expected = offset + rec["count"] * dim * np.dtype(dtype).itemsize
    if size != expected:
        return None, f"{str(npath)!r} has {size} bytes, its {want} {dtype} rows need {expected} (truncated?)"
    if rec.get("stamps"):
        why = _stamps_problem(d / _stamps_name(sid), rec["count"])
        if why is not None:
            return None, why
    return rec, None


def _committed_shards(path: Path, after: int, dim: int, dtype: str) -> tuple[list[tuple[int, dict]], list[tuple[int, str]]]:
    """Commit records in shard order, ignoring shards at or below `after` (already consolidated),
    and the damaged shards with the reason (data that does not match its record)."""
    d = path / SHARD_DIR
    if not d.is_dir():
        return [], []
    out, damaged = [], []
    for name in os.listdir(d):
        m = _SHARD_RE.match(name)
        if m and m.group(3) == "json":
            sid = int(m.group(2))
            if sid > after and (d / _shard_name(sid, "npy")).exists():
                rec, why = _shard_problem(d, sid, dim, dtype)
                if rec is None:
                    damaged.append((sid, why))
                else:
                    out.append((sid, rec))
    out.sort(key=lambda t: t[0])
    damaged.sort()
    return out, damaged


def _load_rows(file: Path, count: int, dim: int, dtype: str, mmap: bool) -> np.ndarray:
    """The store's first `count` rows of ``features.npy`` (memory-mapped or read); a missing or
    damaged file raises an error naming it. Bytes beyond them are rows an interrupted append wrote
    but never committed."""
    offset = _features_layout(file, dim, dtype)
    size = file.stat().st_size
    need = offset + count * dim * np.dtype(dtype).itemsize
    if size < need:
        raise ValueError(
            f"{str(file)!r} is damaged ({size} bytes; the store's {count} rows of dim {dim} in {dtype} need "
            f"{need}: a truncated copy?). Its rows cannot be read: restore the file or re-extract the store "
            f"into a new directory."
        )
    if count == 0:
        return np.zeros((0, dim), dtype=dtype)
    if mmap:
        return np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=(count, dim))
    with open(file, "rb") as f:
        f.seek(offset)
        return np.fromfile(f, dtype=dtype, count=count * dim).reshape(count, dim)


def _shard_name(sid: int, ext: str) -> str:
    return f"shard-{sid:06d}.{ext}"


def _stamps_name(sid: int) -> str:
    """The file of a shard's stamps (its rows' files' size and mtime_ns), beside its rows."""
    return f"stamps-{sid:06d}.npy"


def _shard_files(d: Path, sid: int) -> list[Path]:
    """A shard's files in the order they are deleted: its commit record first (data without one is
    ignored, then removed), then its rows and stamps."""
    return [d / _shard_name(sid, "json"), d / _shard_name(sid, "npy"), d / _stamps_name(sid)]


def _read_metadata(path: Path) -> dict:
    """A store's ``metadata.json``, checked to be one (dim, dtype, count; a format this version reads)."""
    try:
        meta = _read_json(path / METADATA_FILE)
    except ValueError as e:
        raise ValueError(f"{e} It is the feature store's metadata: restore it or re-extract the store.") from None
    if not isinstance(meta, dict) or not all(f in meta for f in ("dim", "dtype", "count")):
        raise ValueError(
            f"{str(path / METADATA_FILE)!r} is damaged: expected a JSON object with dim, dtype and count; "
            f"restore it or re-extract the store."
        )
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"feature store {str(path)!r} has format_version {meta['format_version']}, newer than this "
            f"gensim-im2vec understands ({FORMAT_VERSION}); upgrade gensim-im2vec."
        )
    try:
        _resolve_dtype(meta["dtype"])
        if int(meta["count"]) < 0 or int(meta["dim"]) < 1:
            raise ValueError("negative count or dim")
    except (TypeError, ValueError):
        raise ValueError(
            f"{str(path / METADATA_FILE)!r} is damaged or not a feature store's: count {meta['count']!r}, dim "
            f"{meta['dim']!r}, dtype {meta['dtype']!r} (expected a count >= 0, a dim >= 1 and 'float16' or 'float32'); restore "
            f"it or re-extract the store."
        ) from None
    return meta


def _no_store(path: Path) -> None:
    """Raise FileNotFoundError for a folder without ``metadata.json``, saying what it does hold."""
    rows = _rows_without_metadata(path)
    if rows:
        raise FileNotFoundError(_lost_metadata_message(path, rows))
    hint = ""
    d = path / SHARD_DIR
    if d.is_dir() and any(_SHARD_RE.match(n) and n.endswith(".json") for n in os.listdir(d)):
        hint = (" It holds committed shards of an extraction that stopped before its first append: rerun "
                "it with the same arguments (mode='extend') to continue from them.")
    if not hint and (path.parent / METADATA_FILE).is_file():  # (its shards/ folder, say)
        raise FileNotFoundError(f"no feature store at {str(path)!r} (no {METADATA_FILE}): it lies inside the "
                                f"feature store {str(path.parent)!r}; give that folder.")
    if path.is_file():  # (FeatureStore.open("photo.jpg"): no extract writes into a file)
        raise FileNotFoundError(
            f"no feature store at {str(path)!r}: it is a file, not a folder. A feature store is the folder that "
            f"`im2vec extract IMAGE_DIR -o STORE` (or FeatureExtractor().extract) writes; give that folder.")
    image = None if hint else _an_image_in(path)
    if image is not None:  # the image folder given for the store (im2vec train docs.txt -f photos/)
        raise FileNotFoundError(
            f"no feature store at {str(path)!r} (no {METADATA_FILE}): it is a folder of images ({image}), not the "
            f"features extracted from them. Extract them into a store of their own with `im2vec extract {path} -o "
            f"STORE` (or FeatureExtractor().extract) and give STORE."
        )
    other = False  # another command's output (a folder that holds anything): not the store to make
    if not hint:  # (hidden names aside, as extract's check_store_folder: .DS_Store, another output's lock file)
        try:
            with os.scandir(path) as it:
                other = any(not e.name.startswith(".") for e in it)
        except OSError:
            pass
    raise FileNotFoundError(
        f"no feature store at {str(path)!r} (no {METADATA_FILE}).{hint} Create one with "
        f"`im2vec extract IMAGE_DIR -o {'STORE' if other else path}`{' (a new folder)' if other else ''} or "
        f"FeatureStore.from_arrays()."
    )


def _an_image_in(path: Path, *, limit: int = 200) -> str | None:
    """An image file in folder `path` or one of its subfolders (a path relative to it), looking at
    no more than `limit` entries at each of the two levels; None if none is seen in a folder whose
    files are mostly something else (a project folder with its logo.png beside many other files is
    no folder of images): its images must be all its files, or two or more and a quarter of them
    (an image with caption files beside it)."""
    def image_of(entries, where: str = "") -> str | None:
        files = [e for e in entries if not e.name.startswith(".") and e.is_file()]
        images = [e.name for e in files if e.name.lower().endswith(IMAGE_SUFFIXES)]
        if images and (len(images) == len(files) or (len(images) >= 2 and 4 * len(images) >= len(files))):
            return where + images[0]
        return None

    try:
        with os.scandir(path) as it:
            entries = [e for _, e in zip(range(limit), it)]
    except OSError:
        return None
    found = image_of(entries)
    if found is not None:
        return found
    for e in entries:
        if e.is_dir() and not e.name.startswith("."):
            try:
                with os.scandir(e.path) as it:
                    found = image_of([sub for _, sub in zip(range(limit), it)], f"{e.name}/")
            except OSError:
                continue
            if found is not None:
                return found
    return None


def _settled_metadata(path: Path) -> dict:
    """The metadata of the store at `path`, a rewrite that a crash left half done (or that a writer
    is finishing now) completed first; FileNotFoundError saying what the folder holds if it has none."""
    if not (path / METADATA_FILE).exists() and not (path / JOURNAL_FILE).exists():
        _no_store(path)
    if (path / JOURNAL_FILE).exists():
        with _StoreLock(path, wait=60.0):
            _roll_forward(path)
    return _read_metadata(path)


def _report_shards(path: Path, meta: Mapping, continuing: bool = False) -> None:
    """Log committed shards not yet appended to the store: a writer's work in progress (its pid), or
    an interrupted run's (how to fold them in), and damaged ones. `continuing`: the caller is the run
    that goes on to finish the store (extract_ray opening its target), so an unfinished run and its
    shards are said at INFO instead of a warning to run it again."""
    count = int(meta["count"])
    pending, damaged = _committed_shards(path, meta.get("last_shard", -1), int(meta["dim"]), meta["dtype"])
    for sid, why in damaged:
        logger.warning(
            "%s: unconsolidated shard %i is damaged (%s); its images are extracted again by the next "
            "run in mode='extend'", path, sid, why,
        )
    writer = _writer_pid(path)
    run = unfinished_run(path)
    if run is not None and writer is None:
        if continuing:
            logger.info("%s: continuing %s: it holds the %i rows that extraction stored so far", path,
                        _unfinished_note(run), count + sum(r["count"] for _, r in pending))
        else:
            logger.warning(
                "%s: this store is %s: it holds the %i rows that extraction stored so far; run it again with the "
                "same arguments to finish it", path, _unfinished_note(run), count + sum(r["count"] for _, r in pending),
            )
    if pending and continuing and writer is None:
        logger.info("%s: %i committed shard(s) with %i rows are not consolidated yet; this run appends them", path,
                    len(pending), sum(r["count"] for _, r in pending))
    elif pending and writer is not None:
        logger.info("%s: being written by pid %i; this view holds the %i rows appended so far (%i more in "
                    "committed shards); open it again when the writer has finished", path, writer, count,
                    sum(r["count"] for _, r in pending))
    elif pending:
        logger.warning(
            "%s: %i committed shard(s) with %i rows are not consolidated yet (an interrupted "
            "extraction); rerun it with the same arguments or call FeatureStore.consolidate(%r)",
            path,
            len(pending),
            sum(r["count"] for _, r in pending),
            str(path),
        )


# ----------------------------------------------------------------------------- key → row

#: The 64-bit digest of a key that :class:`KeyIndex` sorts and searches: Python's own string hash (the
#: builtin itself, so ``map`` calls it in C: ≈ 10× faster than a BLAKE2b loop). It is salted per process
#: (``PYTHONHASHSEED``), so an index is never saved or sent: a pickle or copy builds it again from the
#: keys. Two keys may share a digest; every candidate is confirmed by comparing the key itself.
_key_hash = hash
_HASH_OFFSET = 1 << 63  # a signed digest + this: the same order, as an unsigned one (its bucket bits)


class _RowItems(ItemsView):
    """``KeyIndex.items()``: ``(key, row)`` in row order, without a lookup per key."""

    def __iter__(self):
        index = self._mapping
        return zip(iter(index), range(index._start, index._start + len(index)))


class _RowValues(ValuesView):
    """``KeyIndex.values()``: the rows, `start` to `stop` - 1."""

    def __iter__(self):
        index = self._mapping
        return iter(range(index._start, index._start + len(index)))


class KeyIndex(Mapping):
    """``key → row`` of a list of unique keys, read-only, at ≈ 14-16 bytes a key instead of a dict's ≈ 57.

    A :class:`collections.abc.Mapping` (``[]`` raising KeyError, ``get``, ``in``, ``len``, iteration in
    row order, ``items``) over the keys list it is given, which it shares, never copies. It holds each
    key's 64-bit digest (:data:`_key_hash`) sorted (8 bytes), the row of each (4 bytes below 2**31 rows),
    and where each run of digests with the same top bits starts (one entry per 1-2 keys). One key:
    its run is found in two reads, each digest in it compared, and the key string of an equal digest
    compared with the key, so two keys with one digest are both found. Many keys: :meth:`rows`,
    a binary search (``np.searchsorted``) of all their digests at once.

    Read-only: setting, deleting or updating a key raises TypeError. ``dict(index)`` (or
    ``index.copy()``) gives a dict to change, or to write with :func:`json.dump` (which takes a dict,
    not another mapping); it equals (``==``) a dict of the same keys and rows. Pickling and
    ``copy.deepcopy`` give a KeyIndex again.

    Parameters
    ----------
    keys : list of str
        One key per row, unique (a feature store's keys are by construction). Not copied: the list
        must not change while the index is used.
    start, stop : int, optional
        Index ``keys[start:stop]`` only (default: all of them), each key's row still its position in
        `keys` (a model's image keys, which follow its words in ``wv.index_to_key``:
        :class:`VocabKeyIndex`). Keys appended after `stop` are not indexed.

    Examples
    --------
    >>> index = KeyIndex(["img:a", "img:b", "img:c"])
    >>> index["img:c"], index.get("img:z", -1), "img:b" in index, list(index.items())[0]
    (2, -1, True, ('img:a', 0))
    >>> index.rows(["img:b", "img:z"]).tolist()
    [1, -1]
    >>> import json
    >>> json.dumps(dict(index)), index == {"img:a": 0, "img:b": 1, "img:c": 2}
    ('{"img:a": 0, "img:b": 1, "img:c": 2}', True)
    >>> tail = KeyIndex(["dog", "img:a", "img:b"], start=1)
    >>> tail["img:b"], "dog" in tail, len(tail), dict(tail)
    (2, False, 2, {'img:a': 1, 'img:b': 2})
    """

    __slots__ = ("_keys", "_digests", "_rows", "_starts", "_shift", "_digest_at", "_row_at", "_start_at",
                 "_start", "_stop")

    def __init__(self, keys: list[str], start: int = 0, stop: int | None = None) -> None:
        if not 0 <= start <= (len(keys) if stop is None else stop) <= len(keys):
            raise ValueError(f"KeyIndex: expected 0 <= start <= stop <= len(keys) = {len(keys)}, got start={start}, "
                             f"stop={stop}; give the range of keys to index.")
        self._start, self._stop = int(start), None if stop is None else int(stop)
        end = len(keys) if stop is None else stop
        n = end - start
        part = keys if start == 0 and end == len(keys) else itertools.islice(keys, start, end)
        digests = np.fromiter(map(_key_hash, part), dtype=np.int64, count=n)
        order = np.argsort(digests, kind="stable")  # (equal digests in row order)
        self._digests = digests[order]
        del digests
        row_type = np.int32 if end < 2**31 else np.int64
        self._rows = order.astype(row_type)
        del order
        if start:
            self._rows += row_type(start)  # (rows are positions in `keys`)
        bits = max(n.bit_length() - 1, 0)  # 2**bits runs: 1-2 keys each on average
        self._shift = 64 - bits
        if bits:
            runs = (self._digests.view(np.uint64) ^ np.uint64(_HASH_OFFSET)) >> np.uint64(self._shift)
            counts = np.bincount(runs.view(np.int64), minlength=1 << bits)  # (runs < 2**bits: a view, no copy)
            del runs
        else:
            counts = np.array([n], dtype=np.int64)
        starts = np.zeros(len(counts) + 1, dtype=row_type)
        np.cumsum(counts, out=starts[1:])
        self._starts = starts
        self._keys = keys
        # memoryviews: an item of one is a Python int in ≈ 30 ns (a NumPy scalar takes ≈ 100)
        self._digest_at, self._row_at, self._start_at = memoryview(self._digests), memoryview(self._rows), \
            memoryview(starts)

    def _find(self, key) -> int:
        """The row of `key`, -1 when it is not one of the keys: the digest's run, the digests in it, and
        the key string of an equal digest compared with `key` (two keys of one digest are both found)."""
        digest = _key_hash(key)
        run = (digest + _HASH_OFFSET) >> self._shift
        digest_at = self._digest_at
        for j in range(self._start_at[run], self._start_at[run + 1]):
            if digest_at[j] == digest:
                row = self._row_at[j]
                if self._keys[row] == key:
                    return row
        return -1

    def __getitem__(self, key) -> int:
        row = self._find(key)
        if row < 0:
            raise KeyError(key)
        return row

    def get(self, key, default=None):
        row = self._find(key)
        return default if row < 0 else row

    def __contains__(self, key) -> bool:
        return self._find(key) >= 0

    def __len__(self) -> int:
        return (len(self._keys) if self._stop is None else self._stop) - self._start

    def __iter__(self):
        if self._start == 0 and self._stop is None:
            return iter(self._keys)
        return itertools.islice(self._keys, self._start, self._start + len(self))

    def items(self) -> ItemsView:
        return _RowItems(self)

    def values(self) -> ValuesView:
        return _RowValues(self)

    def rows(self, keys: Iterable) -> np.ndarray:
        """The row of each of `keys` (int64, in their order), -1 for a key that is not one of them.

        All at once: each key's digest and run (NumPy), the digests of the runs compared entry by
        entry (a run holds 1-2 digests on average), and the key string of each equal digest
        compared with the key (in C, ``map``), so a key whose digest another key shares is found.
        """
        keys = keys if isinstance(keys, list) else list(keys)
        wanted = np.fromiter(map(_key_hash, keys), dtype=np.int64, count=len(keys))
        out = np.full(len(keys), -1, dtype=np.int64)
        if self._shift < 64:
            runs = (wanted.view(np.uint64) ^ np.uint64(_HASH_OFFSET)) >> np.uint64(self._shift)
        else:
            runs = np.zeros(len(keys), dtype=np.uint64)
        at = self._starts[runs].astype(np.int64)
        end = self._starts[runs + np.uint64(1)]
        del runs
        pending = np.flatnonzero(at < end)
        while len(pending):
            equal = pending[self._digests[at[pending]] == wanted[pending]]
            if len(equal):
                rows = self._rows[at[equal]]
                same = np.fromiter(map(operator.eq, map(self._keys.__getitem__, rows.tolist()),
                                       map(keys.__getitem__, equal.tolist())), dtype=bool, count=len(equal))
                out[equal[same]] = rows[same]
            at[pending] += 1  # (a found key's entry moves on too: it is left out below)
            pending = pending[(at[pending] < end[pending]) & (out[pending] < 0)]
        return out

    def copy(self) -> dict:
        """``key → row`` as a dict, to change or to write as JSON (the index itself is read-only)."""
        return dict(self)

    def _read_only(self, *args, **kwargs):
        raise TypeError("KeyIndex is read-only: it indexes the keys list it was built on (a feature store's keys); "
                        "dict(key_to_index) gives a dict you can change.")

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = _read_only

    @property
    def nbytes(self) -> int:
        """Bytes of the index's arrays (the keys list is the caller's)."""
        return int(self._digests.nbytes + self._rows.nbytes + self._starts.nbytes)

    def __reduce__(self):
        # the digests are this process's (salted): built again from the keys
        return KeyIndex, (self._keys, self._start, self._stop)

    def __repr__(self) -> str:
        return f"KeyIndex({len(self)} keys, {self.nbytes} bytes)"


class VocabKeyIndex(MutableMapping):
    """A model's ``wv.key_to_index`` at ≈ 15 bytes an image key instead of a dict's ≈ 57: a dict of
    the words, and a :class:`KeyIndex` of the image keys, a range of ``wv.index_to_key`` (they follow
    the words).

    A mapping of ``key → index`` like gensim's dict: ``[]`` (KeyError for a key it lacks), ``get``,
    ``in``, ``len``, iteration and ``items`` in index order (the words before the images, the
    images, the keys added after them), ``==`` a dict of the same keys and indices. Setting a key
    puts it in the dict (gensim's ``add_vectors`` and ``build_vocab(update=True)`` append keys so);
    an image key of the range keeps its index: setting it to another, or deleting it, raises
    TypeError. :meth:`rows` looks many keys up at once (:func:`key_rows`).

    Pickled (``wv.save``, ``pickle``) as a plain dict, so plain gensim loads the vectors without this
    package; ``Im2Vec.load`` builds the index again. ``copy.copy`` and ``copy.deepcopy`` give a
    VocabKeyIndex (the copy's words dict its own).

    Parameters
    ----------
    words : dict of str to int
        The other keys (used as it is, not copied): the words, before `start` in `keys`.
    keys : list of str
        ``wv.index_to_key`` (shared, not copied); ``keys[start:stop]`` are the indexed image keys,
        unique, and none of them in `words`. Keys may be appended to it, not changed in the range.
    start, stop : int
        The range of image keys.

    Examples
    --------
    >>> keys = ["dog", "cat", "img:a", "img:b"]
    >>> k2i = VocabKeyIndex({"dog": 0, "cat": 1}, keys, 2, 4)
    >>> k2i["img:b"], k2i.get("fish", -1), "cat" in k2i, len(k2i), list(k2i)
    (3, -1, True, 4, ['dog', 'cat', 'img:a', 'img:b'])
    >>> keys.append("fish"); k2i["fish"] = 4
    >>> k2i.rows(["fish", "img:a", "cow"]).tolist(), k2i == {"dog": 0, "cat": 1, "img:a": 2, "img:b": 3, "fish": 4}
    ([4, 2, -1], True)
    >>> import pickle
    >>> type(pickle.loads(pickle.dumps(k2i)))
    <class 'dict'>
    """

    __slots__ = ("_words", "_images", "_start", "_stop")

    def __init__(self, words: dict, keys: list[str], start: int, stop: int) -> None:
        if not isinstance(words, dict):
            raise TypeError(f"VocabKeyIndex: expected the words as a dict, got {type(words).__name__}; "
                            "give dict(words).")
        self._words = words
        self._images = KeyIndex(keys, start, stop)
        self._start, self._stop = int(start), int(stop)

    @classmethod
    def from_keys(cls, keys: list[str], start: int, stop: int) -> VocabKeyIndex:
        """The index of `keys` (``wv.index_to_key``): ``keys[start:stop]`` in a :class:`KeyIndex`,
        the others in a dict."""
        words = dict(zip(itertools.islice(keys, start), range(start)))
        if stop < len(keys):
            words.update(zip(itertools.islice(keys, stop, None), range(stop, len(keys))))
        return cls(words, keys, start, stop)

    @property
    def words(self) -> dict:
        """The dict of the keys outside the image range (the words, and keys added later)."""
        return self._words

    @property
    def images(self) -> KeyIndex:
        """The read-only index of the image range, ``keys[start:stop]``."""
        return self._images

    def __getitem__(self, key) -> int:
        found = self._words.get(key)
        if found is not None:
            return found
        row = self._images._find(key)
        if row < 0:
            raise KeyError(key)
        return row

    def get(self, key, default=None):
        found = self._words.get(key)
        if found is not None:
            return found
        row = self._images._find(key)
        return default if row < 0 else row

    def __contains__(self, key) -> bool:
        return key in self._words or self._images._find(key) >= 0

    def __setitem__(self, key, value) -> None:
        if key not in self._words:
            row = self._images._find(key)
            if row >= 0:
                if value == row:
                    return
                raise TypeError(f"VocabKeyIndex: the image key {key!r} is at index {row}, which is kept (it is one "
                                f"of the indexed range {self._start}:{self._stop}), got {value!r}; build a new "
                                "key_to_index (e.g. dict(wv.key_to_index)) to reorder the keys.")
        self._words[key] = value

    def __delitem__(self, key) -> None:
        if key in self._words:
            del self._words[key]
            return
        if self._images._find(key) >= 0:
            raise TypeError(f"VocabKeyIndex: the image key {key!r} cannot be deleted (the indexed range "
                            f"{self._start}:{self._stop} is read-only); build a new key_to_index to drop keys.")
        raise KeyError(key)

    def clear(self) -> None:
        """Empty it: the words' dict cleared, the image range dropped."""
        self._words.clear()
        self._images = KeyIndex([])
        self._start = self._stop = 0

    def __len__(self) -> int:
        return len(self._words) + len(self._images)

    def _ordered(self):
        """``(key, index)`` in index order: the words before the range, the range, the others."""
        start, words = self._start, self._words
        yield from ((k, i) for k, i in words.items() if i < start)
        yield from self._images.items()
        yield from ((k, i) for k, i in words.items() if not i < start)

    def __iter__(self):
        return (k for k, _ in self._ordered())

    def items(self) -> ItemsView:
        return _OrderedItems(self)

    def rows(self, keys: Iterable) -> np.ndarray:
        """The index of each of `keys` (int64, in their order), -1 for a key it lacks: the words'
        dict in C (``map``), the keys it lacks in the image index at once (:meth:`KeyIndex.rows`)."""
        keys = keys if isinstance(keys, list) else list(keys)
        out = np.fromiter(map(self._words.get, keys, itertools.repeat(-1)), dtype=np.int64, count=len(keys))
        missing = np.flatnonzero(out < 0)
        if len(missing) and len(self._images):
            out[missing] = self._images.rows([keys[i] for i in missing.tolist()])
        return out

    def copy(self) -> dict:
        """``key → index`` as a dict."""
        return dict(self.items())

    @property
    def nbytes(self) -> int:
        """Bytes of the image index's arrays (the words' dict and the keys list not counted)."""
        return self._images.nbytes

    def __reduce__(self):
        # a plain dict in the pickle: gensim's KeyedVectors.load reads it without this package
        return dict, (), None, None, iter(self.items())

    def __copy__(self) -> VocabKeyIndex:
        return VocabKeyIndex(dict(self._words), self._images._keys, self._start, self._stop)

    def __deepcopy__(self, memo: dict) -> VocabKeyIndex:
        keys = copy.deepcopy(self._images._keys, memo)
        new = VocabKeyIndex(dict(self._words), keys, self._start, self._stop)
        memo[id(self)] = new
        return new

    def __repr__(self) -> str:
        return (f"VocabKeyIndex({len(self._words)} keys in a dict, {len(self._images)} image keys "
                f"{self._start}:{self._stop} in {self._images.nbytes} bytes)")


class _OrderedItems(ItemsView):
    """``VocabKeyIndex.items()``: ``(key, index)`` in index order, without a lookup per key."""

    def __iter__(self):
        return self._mapping._ordered()


def key_rows(key_to_index: Mapping, keys: Sequence, *, strict: bool = False) -> np.ndarray:
    """The row of each of `keys` in `key_to_index` (int64, in their order), -1 for a key it lacks
    (`strict`: a KeyError naming the first key it lacks, as ``key_to_index[key]`` raises it).

    A :class:`KeyIndex` or :class:`VocabKeyIndex` looks them up all at once (:meth:`KeyIndex.rows`:
    one key in it costs more than one key in a dict, many keys less); any other mapping by its ``get``, called from C
    (``map``) for a dict.

    >>> key_rows({"img:a": 0, "img:b": 1}, ["img:b", "dog"]).tolist(), key_rows(KeyIndex(["x"]), ["x"]).tolist()
    ([1, -1], [0])
    >>> key_rows({"img:a": 0}, ["img:a", "dog"], strict=True)
    Traceback (most recent call last):
    ...
    KeyError: 'dog'
    """
    if isinstance(key_to_index, (KeyIndex, VocabKeyIndex)):
        rows = key_to_index.rows(keys)
    else:
        rows = np.fromiter(map(key_to_index.get, keys, itertools.repeat(-1)), dtype=np.int64, count=len(keys))
    if strict and (rows < 0).any():
        raise KeyError(keys[int(np.flatnonzero(rows < 0)[0])])
    return rows


def _key_row_blocks(key_to_index: Mapping, items: Iterable, block: int, key: Callable | None = None):
    """``(items, rows)`` for each run of `block` items taken from `items` (any iterable, a generator
    too: only a block of it is held at once), `rows` their keys' :func:`key_rows` in
    `key_to_index` (a KeyIndex looks many keys up at once faster than one at a time); an item's key
    is ``key(item)``, or the item itself. An empty `key_to_index` looks nothing up: every row -1.

    >>> [(part, rows.tolist()) for part, rows in _key_row_blocks({"img:a": 0}, ["dog", "img:a", "cat"], 2)]
    [(['dog', 'img:a'], [-1, 0]), (['cat'], [-1])]
    """
    items = iter(items)
    while part := list(itertools.islice(items, block)):
        if not key_to_index:
            yield part, np.full(len(part), -1, dtype=np.int64)
        else:
            yield part, key_rows(key_to_index, part if key is None else [key(item) for item in part])


# ----------------------------------------------------------------------------- reader


class FeatureStore:
    """Feature vectors of images, keyed, in row order; usually memory-mapped from a directory.

    Use :meth:`open`, :meth:`from_arrays` or :meth:`create` rather than the constructor.

    Attributes
    ----------
    path : pathlib.Path
        The store directory.
    keys : list of str
        Keys in row order (``"img:cats/001"``).
    key_to_index : KeyIndex
        Row of each key: a read-only mapping (≈ 15 bytes a key; a dict took ≈ 57), built when first
        asked for; ``key_to_index.rows(keys)`` looks up many keys at once.
    vectors : numpy.ndarray of shape (len(store), dim)
        float16/float32 memory-mapped rows; float32 in memory when PCA is applied on read.
    raw_vectors : numpy.ndarray
        The rows as stored (before a PCA applied on read).
    metadata : dict
        arch, weights, layer, feature_dim, dim, dtype, preprocessing, normalisation, pca,
        pca_components, count, created, store_id, updated, package_version, format_version.
    skipped : dict of str to str
        Images that were not used, with the reason.
    pca : PCA or None
    """

    def __init__(
        self,
        path,
        raw_vectors: np.ndarray,
        keys: list[str],
        metadata: dict,
        *,
        skipped: dict | None = None,
        pca: PCA | None = None,
    ) -> None:
        self.path = Path(path)
        self.raw_vectors = raw_vectors
        self.keys = keys
        self.metadata = metadata
        self.skipped = dict(skipped or {})
        self.pca = pca
        self._key_to_index: KeyIndex | None = None
        self._projected: np.ndarray | None = None
        self._keys_sha256: str | None = None
        self._keys_bytes: int | None = None

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def open(cls, path, mmap: bool = True) -> FeatureStore:
        """Open a store directory.

        Parameters
        ----------
        path : str or os.PathLike
            A directory written by :class:`FeatureStoreWriter` (or :meth:`from_arrays`).
        mmap : bool
            Memory-map ``features.npy`` read-only (True) or load it into memory (False).

        Returns
        -------
        FeatureStore

        Raises
        ------
        FileNotFoundError
            No store at `path`.
        ValueError
            The files disagree (row count, keys), e.g. a store edited by hand.
        """
        return cls._open(path, mmap)

    @classmethod
    def _open(cls, path, mmap: bool = True, *, continuing: bool = False) -> FeatureStore:
        """:meth:`open`; `continuing`: the caller goes on to finish the store's unfinished run (an
        extract_ray continuing its target), which is then said at INFO, not warned about."""
        path = Path(path)
        meta = _settled_metadata(path)
        count, dim = int(meta["count"]), int(meta["dim"])
        vectors = _load_rows(path / FEATURES_FILE, count, dim, meta["dtype"], mmap)
        data = _read_keys_bytes(path / KEYS_FILE, meta.get("keys_bytes"))
        keys = _parse_keys(path / KEYS_FILE, data)
        if len(keys) != count:
            raise ValueError(
                f"feature store {str(path)!r} is inconsistent: {len(keys)} keys in {KEYS_FILE}, metadata count "
                f"{count}. Re-extract it into a new directory."
            )
        skipped = _read_skipped(path)
        pca = PCA.load(path / PCA_FILE) if meta.get("pca") and (path / PCA_FILE).exists() else None
        _report_shards(path, meta, continuing)
        store = cls(path, vectors, keys, meta, skipped=skipped, pca=pca)
        store._keys_sha256 = hashlib.sha256(data).hexdigest()
        store._keys_bytes = len(data)
        return store

    @classmethod
    def create(
        cls,
        path,
        *,
        dim: int,
        dtype="float16",
        metadata: Mapping | None = None,
        mode: str = "create",
        shard_size: int = 4096,
        pca: PCA | None = None,
    ) -> FeatureStoreWriter:
        """Open a :class:`FeatureStoreWriter` (see there for the parameters)."""
        return FeatureStoreWriter(
            path, dim=dim, dtype=dtype, metadata=metadata, mode=mode, shard_size=shard_size, pca=pca
        )

    @classmethod
    def from_arrays(
        cls,
        path,
        keys: Sequence[str],
        vectors,
        *,
        metadata: Mapping | None = None,
        dtype=None,
        mode: str = "create",
    ) -> FeatureStore:
        """Write features computed elsewhere as a store and open it (memory-mapped).

        Parameters
        ----------
        path : str or os.PathLike
            New directory (or an existing store with ``mode="overwrite"``/``"extend"``).
        keys : sequence of str
            One key per row, e.g. ``"img:123"``; unique, no line breaks.
        vectors : array_like of shape (len(keys), dim)
            Finite values; all-zero rows are allowed here but refused by the model.
        metadata : mapping, optional
            Provenance (arch, weights, layer, preprocessing, ...); unknown fields are kept.
        dtype : {"float16", "float32"}, optional
            Storage dtype; default: float16 if `vectors` is float16, else float32.
        mode : {"create", "overwrite", "extend"}
            What to do when `path` already holds a store.

        Returns
        -------
        FeatureStore
        """
        keys = _check_keys(keys, "keys")
        arr = check_features(vectors, name="vectors", keys=keys, allow_zero=True)
        if dtype is None and mode == "extend" and (Path(path) / METADATA_FILE).exists():
            dtype = _read_json(Path(path) / METADATA_FILE).get("dtype")  # rows join the store as it stores them
        if dtype is None:
            dtype = "float16" if np.asarray(vectors).dtype == np.float16 else "float32"
        with cls.create(
            path, dim=arr.shape[1], dtype=dtype, metadata=metadata, mode=mode, shard_size=max(len(keys), 1)
        ) as w:
            w.write(keys, arr)
        return cls.open(path)

    @classmethod
    def consolidate(cls, path) -> FeatureStore:
        """Fold committed shards of an interrupted run into the store, without extracting more."""
        meta = _settled_metadata(Path(path))
        writer = FeatureStoreWriter(path, dim=meta["dim"], dtype=meta["dtype"], metadata=meta, mode="extend")
        writer._close(finish_run=False)  # the rows are folded in, the interrupted run is not finished
        return cls.open(path)

    # -- mapping interface ------------------------------------------------------------------

    @property
    def key_to_index(self) -> KeyIndex:
        if self._key_to_index is None:
            with _INDEX_LOCK:  # built once (≈ 15 B a key), also when two threads ask for it at once
                if self._key_to_index is None:
                    self._key_to_index = KeyIndex(self.keys)
        return self._key_to_index

    @property
    def vectors(self) -> np.ndarray:
        if self.pca is not None and (self.metadata.get("pca") or {}).get("applied") == "on_read":
            if self._projected is None:
                out = np.empty((len(self.keys), self.pca.n_components), dtype=np.float32)
                for s in range(0, len(out), _COPY_ROWS):
                    out[s : s + _COPY_ROWS] = self.pca.transform(self.raw_vectors[s : s + _COPY_ROWS])
                self._projected = out
            return self._projected
        return self.raw_vectors

    @property
    def dim(self) -> int:
        return int(self.metadata["dim"] if self.pca is None else self.metadata["pca"]["n_components"])

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key) -> bool:
        return key in self.key_to_index

    def __iter__(self):
        return iter(self.keys)

    def _row(self, key: str) -> int:
        try:
            return self.key_to_index[key]
        except KeyError:
            hint = f" It was skipped: {self.skipped[key]}." if key in self.skipped else ""
            raise KeyError(f"{key!r} is not in feature store {str(self.path)!r}.{hint}") from None

    def get_vector(self, key: str, norm: bool = False) -> np.ndarray:
        """The float32 feature vector of `key` (after PCA on read); unit length if `norm`."""
        i = self._row(key)
        v = np.asarray(self.raw_vectors[i], dtype=np.float32)
        if self.pca is not None and self.metadata["pca"]["applied"] == "on_read":
            v = self.pca.transform(v[None, :])[0]
        if norm:
            n = float(np.linalg.norm(v))
            v = v / n if n > 0 else v
        return v

    __getitem__ = get_vector

    def file_stamps(self, rows=None) -> np.ndarray:
        """The size and mtime_ns of each row's image file when it was extracted, in row order
        (``stamps.npy``, see the module notes).

        Parameters
        ----------
        rows : slice or array_like of int, optional
            Only these rows, in this order (negative rows count from the end), e.g. a chunk of a
            large store: memory in the rows asked for, not in the store. None (default): every row.

        Returns
        -------
        numpy.ndarray of shape (len(store) or len(rows), 2), int64
            :data:`NO_STAMP` (-1) for rows without one: rows given as arrays (:meth:`from_arrays`),
            rows merged from a store that had none, rows of a store written before stamps were
            recorded, or all rows when the stamps are damaged (said in a warning, at each call).

        Raises
        ------
        IndexError
            A row outside the store.
        """
        if rows is None:
            idx = None
        elif isinstance(rows, slice):
            r = range(len(self))[rows]
            idx = np.arange(r.start, r.stop, r.step, dtype=np.int64)
        else:
            idx = np.asarray(rows)
            if idx.ndim != 1 or not (idx.dtype.kind in "iu" or idx.size == 0):
                raise IndexError(f"file_stamps(rows): expected a slice or a 1-d array of row numbers, got "
                                 f"{idx.dtype} of shape {idx.shape}.")
            # bounds before the cast: a uint64 row >= 2**63 would wrap around to a negative one
            bad = (idx >= len(self)) if idx.dtype.kind == "u" else (idx < -len(self)) | (idx >= len(self))
            if bad.any():
                raise IndexError(f"file_stamps(rows): row {int(idx[bad][0])} is outside feature store "
                                 f"{str(self.path)!r} of {len(self)} rows.")
            idx = idx.astype(np.int64)
            idx = np.where(idx < 0, idx + len(self), idx)
        found = self._stamp_range()
        if found is None:
            return np.full((len(self) if idx is None else len(idx), 2), NO_STAMP, dtype=np.int64)
        return _read_stamps(self.path / STAMPS_FILE, found, len(self), idx)

    def _stamp_range(self) -> tuple[int, int, int] | None:
        """``(stamps_from, stamps_count, data offset)`` of this store's committed stamps, checked
        (damaged ones are said in a warning and count as none), or None when it has none."""
        start, n = self.metadata.get("stamps_from"), self.metadata.get("stamps_count")
        if start is None or not n:
            return None
        file = self.path / STAMPS_FILE
        why = _committed_stamps_problem(file, start, n, len(self))
        if why is not None:
            logger.warning("%s: the stamps of its image files are damaged (%s); the next extraction into it "
                           "removes them", self.path, why)
            return None
        return int(start), int(n), npy_header(file)[3]

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"FeatureStore({str(self.path)!r}, n={len(self)}, dim={self.dim}, dtype={m.get('dtype')}, "
            f"arch={m.get('arch')!r}, weights={m.get('weights')!r}, layer={m.get('layer')!r})"
        )

    # -- identity for the models that use the store ------------------------------------------

    @property
    def keys_sha256(self) -> str:
        """SHA-256 of the store's committed ``keys.txt`` bytes (its keys, in row order)."""
        if self._keys_sha256 is None:
            data = _keys_bytes(self.keys)
            self._keys_sha256, self._keys_bytes = hashlib.sha256(data).hexdigest(), len(data)
        return self._keys_sha256

    def reference(self) -> dict:
        """What a model records to find this store again and to know it is the same store.

        Returns
        -------
        dict
            ``path`` (absolute), ``count``, ``dim``, ``dtype``, ``keys_bytes`` and ``keys_sha256`` (of
            the keys in row order), ``created``, ``store_id`` (a random id given when the store was
            created: a store made again in the same second has another) and the identity fields (:data:`IDENTITY_FIELDS`,
            ``pca``): a store that only grew since (rows appended) still matches it.
        """
        sha = self.keys_sha256
        meta = self.metadata
        ref = {
            "path": str(self.path.resolve()),
            "count": len(self),
            "dim": self.dim,
            "dtype": meta.get("dtype"),
            "keys_bytes": int(self._keys_bytes),
            "keys_sha256": sha,
            "created": meta.get("created"),
            "store_id": meta.get("store_id"),
            "pca": meta.get("pca"),
        }
        ref["identity"] = _identity(meta)
        return ref

    def reference_problems(self, ref: Mapping) -> list[str]:
        """How this store differs from the store `ref` (:meth:`reference`) describes; [] if it is that
        store, possibly with rows appended since."""
        problems = []
        meta = self.metadata
        if len(self) < int(ref["count"]):
            problems.append(f"it holds {len(self)} images, the model's store held {ref['count']}")
        if ref.get("created") != meta.get("created"):
            problems.append(f"it was created {meta.get('created')}, the model's store {ref.get('created')} "
                            f"(re-extracted or another store)")
        ident = ref.get("identity") or {}
        problems += [f"{f}: it has {meta.get(f)!r}, the model's store had {ident.get(f)!r}"
                     for f in IDENTITY_FIELDS if meta.get(f) != ident.get(f)]
        if self.dim != int(ref["dim"]):
            problems.append(f"its features have dim {self.dim}, the model's {ref['dim']}")
        if meta.get("pca") != ref.get("pca"):
            problems.append(f"its PCA is {meta.get('pca')!r}, the model's store had {ref.get('pca')!r}")
        if not problems and self._keys_prefix_sha256(int(ref["count"]), int(ref["keys_bytes"])) != ref["keys_sha256"]:
            problems.append(f"its first {ref['count']} keys are not the model's store's keys")
        if not problems and ref.get("store_id") and ref.get("store_id") != meta.get("store_id"):
            problems.append(f"it is store {meta.get('store_id')}, the model's store was {ref['store_id']} (made again "
                            f"in the same second, with the same keys: re-extracted or another store)")
        return problems

    def _keys_prefix_sha256(self, count: int, nbytes: int) -> str | None:
        """SHA-256 of the first `count` keys as ``keys.txt`` bytes (None if they take other than
        `nbytes` bytes)."""
        if count == len(self) and nbytes == self._keys_bytes:
            return self.keys_sha256
        data = _keys_bytes(self.keys[:count])
        return hashlib.sha256(data).hexdigest() if len(data) == nbytes else None

    # -- PCA ----------------------------------------------------------------------------------

    def fit_pca(
        self, n_components: int, *, sample_size: int = 100_000, seed: int = 0, apply: str = "on_read"
    ) -> FeatureStore:
        """Fit a PCA on a random sample of rows and store it with the metadata.

        Parameters
        ----------
        n_components : int
            Output dim, at most ``min(sample rows, dim)`` (e.g. 512 for 4096-d fc7).
        sample_size : int
            Rows to fit on (all rows if the store is smaller). 10k-100k is plenty.
        seed : int
            Seed of the row sample.
        apply : {"on_read", "on_write"}
            ``"on_read"`` keeps the stored rows and projects when ``vectors`` is read;
            ``"on_write"`` rewrites ``features.npy`` projected (smaller; cannot be undone).

        Returns
        -------
        FeatureStore
            The reopened store.
        """
        if apply not in ("on_read", "on_write"):
            raise ValueError(f"apply: expected 'on_read' or 'on_write', got {apply!r}.")
        if self.metadata.get("pca"):
            raise ValueError(
                f"feature store {str(self.path)!r} already has a PCA ({self.metadata['pca']['n_components']} "
                f"components); re-extract without PCA to fit another."
            )
        n = len(self)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
        pca = PCA.fit(np.asarray(self.raw_vectors[rows], dtype=np.float32), n_components, name="fit_pca")
        with _StoreLock(self.path):  # the store's files change: no writer may run meanwhile
            # this handle may be older than the store (a writer appended rows since it was opened):
            # what is written back is the store's current metadata, with the PCA added
            _roll_forward(self.path)
            meta = self._current_metadata("fit_pca")
            self._write_pca(meta, pca, apply, len(rows))
        return FeatureStore.open(self.path)

    def _current_metadata(self, what: str) -> dict:
        """The store's metadata as it is now (under the lock), checked to describe the store this
        handle was opened on, possibly with rows appended since; else ValueError naming the fix."""
        meta = _read_metadata(self.path)
        changed = [f for f in ("created", "store_id", "dim", "dtype", *IDENTITY_FIELDS, "pca")
                   if meta.get(f) != self.metadata.get(f)]
        if changed or int(meta["count"]) < len(self):
            raise ValueError(
                f"{what}: feature store {str(self.path)!r} was changed since this handle was opened "
                f"({', '.join(changed) or 'count'}: it was re-extracted, overwritten or given a PCA); reopen it "
                f"with FeatureStore.open() and call {what} on the store as it is now."
            )
        if int(meta["count"]) != len(self):
            logger.info("%s: %i rows were appended since this handle was opened (%i -> %i); %s updates the "
                        "store as it is now", self.path, int(meta["count"]) - len(self), len(self),
                        int(meta["count"]), what)
        return meta

    def _write_pca(self, meta: dict, pca: PCA, apply: str, fitted_on: int) -> None:
        """Store `pca` with `meta` (the store's current metadata, read under the lock); ``on_write``
        rewrites the store's current rows projected."""
        n, dim, dtype = int(meta["count"]), int(meta["dim"]), meta["dtype"]
        pca.save(self.path / PCA_FILE)
        meta = dict(meta)
        meta["pca"] = pca.describe(apply, fitted_on)
        meta["updated"] = _now()
        if apply == "on_read":
            _atomic_write_json(self.path / METADATA_FILE, meta)
            return
        raw = _load_rows(self.path / FEATURES_FILE, n, dim, dtype, mmap=True)
        meta["dim"] = pca.n_components
        meta["pca_components"] = pca.n_components
        tmp = temp_name(self.path / FEATURES_FILE)
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=raw.dtype, shape=(n, pca.n_components))
        for s in range(0, n, _COPY_ROWS):
            out[s : s + _COPY_ROWS] = pca.transform(raw[s : s + _COPY_ROWS])
        out.flush()
        del out
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        meta_tmp = temp_name(self.path / METADATA_FILE)
        with open(meta_tmp, "wb") as f:
            f.write(_json_bytes(meta))
            f.flush()
            os.fsync(f.fileno())
        _atomic_write_json(
            self.path / JOURNAL_FILE,
            {"replace": [[tmp.name, FEATURES_FILE], [meta_tmp.name, METADATA_FILE]], "delete": []},
        )
        _roll_forward(self.path, recovering=False)


# ----------------------------------------------------------------------------- writer


#: float16's smallest normal number (6.1e-05): a row whose values all lie below it keeps few bits in
#: a float16 store, and its values below half the smallest subnormal (3e-08) become 0.
FLOAT16_TINY = float(np.finfo(np.float16).tiny)
#: A row whose float16 copy has a lower cosine than this to the model's row is said to underflow.
FLOAT16_MIN_COSINE = 0.99
#: Keys of underflowing rows an :class:`_Underflow` (an extraction's report) keeps as examples.
UNDERFLOW_KEYS_KEPT = 10


def float16_losses(feats: np.ndarray) -> np.ndarray:
    """Which rows of `feats` (one batch, before the store's cast) float16 cannot hold: non-zero rows
    whose values all lie below float16's smallest normal (:data:`FLOAT16_TINY`) and whose float16
    copy is all zeros or points elsewhere (cosine below :data:`FLOAT16_MIN_COSINE` to the row).
    Randomly initialised MobileNets give such features (values ~1e-8: every row all zeros).

    One max-abs pass over the batch; only rows that small are compared with their float16 copy,
    computed, not cast (NumPy's cast of such values to float16 takes ~70 ns each): below
    :data:`FLOAT16_TINY` float16 holds exactly the multiples of 2**-24, rounded to the nearest even.

    >>> float16_losses(np.array([[1e-8, 2e-8], [0.5, 1e-9], [0.0, 0.0], [3e-5, 1e-5]], dtype=np.float32)).tolist()
    [True, False, False, False]
    """
    with np.errstate(invalid="ignore"):
        amax = np.abs(feats).max(axis=1)
        small = np.flatnonzero((amax > 0) & (amax < FLOAT16_TINY))  # (NaN rows: neither)
    lost = np.zeros(len(feats), dtype=bool)
    if len(small):
        rows = np.asarray(feats[small], dtype=np.float64) * 2.0**24  # (exact: a power of two)
        cast = np.rint(rows)  # the float16 copy, in units of 2**-24
        dot = np.einsum("ij,ij->i", rows, cast)
        norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(cast, axis=1)
        cos = np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)
        lost[small] = cos < FLOAT16_MIN_COSINE
    return lost


class _Underflow:
    """Rows that underflow float16 (:func:`float16_losses`): how many (`count`), and the first
    :data:`UNDERFLOW_KEYS_KEPT` of their keys (`keys`). A :class:`FeatureStoreWriter`'s own
    (:attr:`FeatureStoreWriter.underflow`), or the parts of a distributed extraction added up."""

    def __init__(self) -> None:
        self.count = 0
        self.keys: list[str] = []

    def add(self, keys: Sequence[str], count: int | None = None) -> None:
        """Count `count` rows (default: one a key of `keys`), `keys` some or all of theirs."""
        self.count += len(keys) if count is None else int(count)
        self.keys.extend(keys[: max(0, UNDERFLOW_KEYS_KEPT - len(self.keys))])


class FeatureStoreWriter:
    """Append rows to a store in committed shards; :meth:`close` appends them to the store.

    Parameters
    ----------
    path : str or os.PathLike
        Store directory (created if missing).
    dim : int
        Width of the rows that :meth:`write` receives and stores.
    dtype : {"float16", "float32"}
        Storage dtype. float16 halves the size (100M × 512 ≈ 100 GB) and holds CNN features
        well; values beyond ±65504 are refused.
    metadata : mapping, optional
        Provenance: arch, weights, layer, feature_dim (before PCA), preprocessing,
        normalisation ("none" or "l2"), ... Stored in ``metadata.json``; the fields in
        :data:`IDENTITY_FIELDS` must match an existing store in ``mode="extend"``.
    mode : {"create", "extend", "overwrite"}
        ``"create"`` refuses an existing store; ``"extend"`` continues an interrupted run or
        appends new keys (see :attr:`done_keys`); ``"overwrite"`` deletes the store first.
    shard_size : int
        Rows (plus skips) per committed shard: the most work a crash can lose.
    pca : PCA, optional
        The PCA already applied to the rows written here (saved with the store).
    resume : bool or str
        False (default): `mode` as above. True, or the run's :func:`images_digest` (then only a
        store whose unfinished run was given the same images is continued): a store whose run has not finished
        (:func:`unfinished_run`: its writer was interrupted before :meth:`close`) and that has the
        same identity is continued as with ``"extend"``, also with ``"create"`` (instead of being
        refused) and ``"overwrite"`` (instead of being deleted again: it holds that overwrite's
        rows, not the old store's). For a caller that leaves out :attr:`done_keys`, as
        :meth:`FeatureExtractor.extract <gensim_im2vec.features.FeatureExtractor.extract>` does, so
        that running the same extraction again continues it. A store with other settings is refused
        with ``"create"`` and started afresh with ``"overwrite"``.

    Attributes
    ----------
    underflow : _Underflow
        The rows written in float16 that it cannot hold (:func:`float16_losses`: all zeros or
        nearly), counted with some of their keys; warned of at the first and summed at :meth:`close`
        unless ``warn_zeroed`` is False (a caller that reports them itself).

    Notes
    -----
    Order of writes: shard data (temp file + ``os.replace``), then its commit record (same);
    a shard without a record is ignored and deleted. :meth:`close` (and :meth:`flush`, once the
    committed shards hold :data:`APPEND_BYTES`) appends the shards' rows to ``features.npy`` and
    their keys to ``keys.txt``, fsyncs both, then commits the new ``count`` and ``keys_bytes`` in
    ``metadata.json`` (atomically replaced), then updates the ``.npy`` header's row count in place
    and deletes the shards. Rows already in the store are never rewritten: closing or resuming
    costs O(new rows). Readers take the first ``count`` rows and ``keys_bytes`` bytes, so the tail
    of an interrupted append is invisible to them; the next writer cuts it off and appends the
    shards again. A writer that starts a store (a new one, or one it overwrites) writes the run
    record ``.unfinished-run`` before any of the store's files; :meth:`close` deletes it last,
    :meth:`abort` and a crash leave it (see `resume`).

    Rows written with ``stamps`` (the size and mtime_ns of their image files, :func:`file_stamp`)
    take them along the same way: ``stamps-NNNNNN.npy`` beside the shard's rows, before its
    record; appended to ``stamps.npy`` with the rows and committed in the same ``metadata.json``
    (``stamps_from``, ``stamps_count``). A store gets ``stamps.npy`` with its first stamped rows;
    rows written without stamps (arrays, a merge's rows from a store that has none) add nothing to
    it, and count as unstamped (:data:`NO_STAMP`) if stamped rows follow them. A merge
    (:func:`~gensim_im2vec.distributed.merge_stores`) writes each source's stamps with its rows.
    """

    _stamps_from: int | None = None  # the store's first row with a stamp (None: no stamps.npy)
    _stamps_count = 0  # stamps committed in stamps.npy: rows _stamps_from .. _stamps_from + _stamps_count
    _stamps_offset = 0  # the data offset of stamps.npy

    def __init__(
        self,
        path,
        *,
        dim: int,
        dtype="float16",
        metadata: Mapping | None = None,
        mode: str = "create",
        shard_size: int = 4096,
        pca: PCA | None = None,
        resume: bool | str = False,
    ) -> None:
        if mode not in ("create", "extend", "overwrite"):
            raise ValueError(f"mode: expected 'create', 'extend' or 'overwrite', got {mode!r}.")
        if not is_int(dim) or dim < 1:
            raise ValueError(f"dim: expected a positive int, got {dim!r}.")
        if not is_int(shard_size) or shard_size < 1:
            raise ValueError(f"shard_size: expected a positive int, got {shard_size!r}.")
        self.path = Path(path)
        self.dim = int(dim)
        self.dtype = _resolve_dtype(dtype)
        self.underflow = _Underflow()  # rows float16 cannot hold (warned once, summed at close)
        self.warn_zeroed = True  # False: the caller reports them (FeatureExtractor.extract, from `underflow`)
        self.shard_size = int(shard_size)
        self.mode = mode
        meta = dict(metadata or {})
        meta.setdefault("normalisation", "none")
        meta.setdefault("feature_dim", pca.n_features if pca is not None else self.dim)
        meta["dim"] = self.dim
        meta["dtype"] = self.dtype
        meta["pca_components"] = pca.n_components if pca is not None else None
        for f in ("arch", "weights", "layer", "preprocessing"):
            meta.setdefault(f, None)
        self._closed = False
        self._buf_keys: list[str] = []
        self._buf_keyset: set[str] = set()
        self._buf_rows: list[np.ndarray] = []
        self._buf_skips: dict[str, str] = {}
        self._buf_stamps: list[np.ndarray] = []
        self._buf_stamped = False  # some buffered row was given a stamp
        self._found_stamps: tuple = _NO_FOUND_STAMPS  # see stored_stamps
        self.rows_written = 0
        self._lock: _StoreLock | None = None

        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"feature store path {str(self.path)!r} is a file; give a directory.")
        if not (self.path / LOCK_FILE).exists():
            check_store_folder(self.path)  # before the lock file goes in: never into a user's folder
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _StoreLock(self.path)  # one writer at a time: everything below runs under it
        try:
            # again under the lock: a folder with a lock file is another writer's, and while it held the
            # lock it may have been half-way through creating the store (shards, no metadata yet), which
            # the check before the lock refused as a user's folder
            check_store_folder(self.path)
            self._inputs = resume if isinstance(resume, str) else None
            self._open_under_lock(meta, mode, pca, resume=bool(resume))
        except BaseException:
            self._release()
            raise

    _inputs: str | None = None  # the run's images_digest, when `resume` gave one

    def _continues_run(self, meta: dict, mode: str) -> bool:
        """Whether a ``resume`` writer in `mode` "create" or "overwrite" continues the store's unfinished
        run (:func:`unfinished_run`) instead of refusing or replacing the store; a store with other
        settings is refused here for "create" (naming them) and left to be replaced for "overwrite"."""
        run = unfinished_run(self.path)
        if run is None:
            return False
        if self._inputs is not None and run["inputs"] != self._inputs:
            if mode == "create":
                raise FileExistsError(_unfinished_other_images(self.path, run))
            logger.info("%s: %s in it was given other images; overwrite starts afresh", self.path,
                        _unfinished_note(run))
            return False
        if (self.path / METADATA_FILE).exists() or (self.path / JOURNAL_FILE).exists():
            _roll_forward(self.path)
            have = _read_metadata(self.path)
            diff = _identity_diff(_identity(have), _identity(meta))
            if diff:
                if mode == "create":
                    raise StoreMismatchError(_unfinished_mismatch(self.path, run, have, meta, diff))
                logger.info("%s: %s in it was made with other settings (%s); overwrite starts afresh",
                            self.path, _unfinished_note(run), ", ".join(diff))
                return False
        logger.info("%s: continuing %s with mode=%r: the rows it stored are kept, only the rest is done (to "
                    "start afresh instead, delete the folder)", self.path, _unfinished_note(run), mode)
        return True

    def _open_under_lock(self, meta: dict, mode: str, pca: PCA | None, *, resume: bool = False) -> None:
        rows = _rows_without_metadata(self.path)
        if rows and mode != "overwrite":  # starting afresh would delete them: only overwrite may
            raise FileExistsError(_lost_metadata_message(self.path, rows))
        if is_store(self.path) and resume and mode in ("create", "overwrite") and self._continues_run(meta, mode):
            mode = "extend"
        if is_store(self.path):
            if mode == "create":
                raise FileExistsError(
                    f"feature store {str(self.path)!r} already exists; pass mode='extend' to continue or "
                    f"append to it, or mode='overwrite' to replace it."
                )
            if mode == "overwrite":
                foreign = sorted(p.name for p in self.path.iterdir()
                                 if not p.name.startswith(".") and p.name not in _STORE_FILES and p.name != SHARD_DIR)
                if foreign:  # the store's files would go, and then the folder be refused as the user's
                    more = f" and {len(foreign) - 1} other file(s)" if len(foreign) > 1 else ""
                    raise FileExistsError(
                        f"feature store {str(self.path)!r} also holds {foreign[0]!r}{more}, which are not the "
                        f"store's: mode='overwrite' replaces a store's own files only. Move them out of it first.")
                self._remove_store()
        check_store_folder(self.path)
        fresh = not ((self.path / METADATA_FILE).exists() or (self.path / JOURNAL_FILE).exists())
        if fresh and not (self.path / RUN_FILE).exists():
            # before the store's first file: from here until close() a rerun continues this run
            _atomic_write_json(self.path / RUN_FILE, {"mode": mode, "started": _now(), "pid": os.getpid(),
                                                      "inputs": self._inputs})
        (self.path / SHARD_DIR).mkdir(exist_ok=True)

        if (self.path / METADATA_FILE).exists() or (self.path / JOURNAL_FILE).exists():
            _roll_forward(self.path)
            have = _read_metadata(self.path)
            diff = _identity_diff(_identity(have), _identity(meta))
            if diff:
                raise StoreMismatchError(_mismatch_message(self.path, have, meta, diff))
            self._base_meta = have
            self.metadata = dict(have)
        else:
            self._base_meta = None
            meta["created"] = _now()
            # which store this is: `created` has a resolution of one second, and a store re-extracted
            # or overwritten within it, with the same keys, would pass for the one a model recorded
            meta["store_id"] = uuid.uuid4().hex
            self.metadata = meta
        self._cleanup_stale()
        if self._base_meta is None:
            self._init_empty(pca)
        self.pca = pca
        self._recover_tail()
        self._recover_stamps()
        # what is already there: the store's rows + committed shards
        self._count = int(self._base_meta["count"])
        self._keys_bytes = int(self._base_meta["keys_bytes"])
        self._last_consolidated = int(self._base_meta.get("last_shard", -1))
        base_keys = _read_keys(self.path / KEYS_FILE, self._keys_bytes)
        if len(base_keys) != self._count:
            raise ValueError(
                f"feature store {str(self.path)!r} is inconsistent: {len(base_keys)} keys in {KEYS_FILE}, "
                f"metadata count {self._count}. Re-extract it into a new directory."
            )
        self._shards, damaged = _committed_shards(self.path, self._last_consolidated, self.dim, self.dtype)
        for sid, why in damaged:
            # its data does not match its commit record: forget the shard, its images are redone
            logger.warning("%s: shard %i is damaged (%s); removing it, its images are extracted again",
                           self.path, sid, why)
            for file in _shard_files(self.path / SHARD_DIR, sid):  # the record first: data without one is ignored
                try:
                    file.unlink()
                except FileNotFoundError:
                    pass
        self._find_stamps(base_keys, keep=resume)
        self.done_keys: set[str] = set(base_keys)
        del base_keys
        self.skipped: dict[str, str] = _read_skipped(self.path)
        for _, rec in self._shards:
            self.done_keys.update(rec["keys"])
            self.skipped.update(rec["skipped"])
        for k in self.done_keys.intersection(self.skipped):
            del self.skipped[k]
        self._next_shard = max([self._last_consolidated] + [s for s, _ in self._shards]) + 1
        if self.done_keys:
            logger.info(
                "%s: %i rows already stored (%i in %i shards not yet appended), %i skipped before",
                self.path,
                len(self.done_keys),
                sum(r["count"] for _, r in self._shards),
                len(self._shards),
                len(self.skipped),
            )

    # -- setup helpers ------------------------------------------------------------------------

    def _remove_store(self) -> None:
        logger.info("%s: overwriting the existing feature store", self.path)
        for name in _STORE_FILES:
            try:
                (self.path / name).unlink()
            except FileNotFoundError:
                pass
        shutil.rmtree(self.path / SHARD_DIR, ignore_errors=True)
        for p in self.path.glob(".*.tmp-*"):
            p.unlink()
        (self.path / RUN_FILE).unlink(missing_ok=True)

    def _cleanup_stale(self) -> None:
        """Delete temp files and shard data without a commit record (a crash mid-write)."""
        for p in list(self.path.glob(".*.tmp-*")) + list((self.path / SHARD_DIR).glob(".*.tmp-*")):
            p.unlink()
        d = self.path / SHARD_DIR
        last = int((self._base_meta or {}).get("last_shard", -1))
        for name in os.listdir(d):
            m = _SHARD_RE.match(name)
            if not m:
                continue
            sid = int(m.group(2))
            if sid <= last or (m.group(3) != "json" and not (d / _shard_name(sid, "json")).exists()):
                logger.debug("%s: removing stale shard file %s", self.path, name)
                (d / name).unlink()

    def _init_empty(self, pca: PCA | None) -> None:
        if pca is not None:
            pca.save(self.path / PCA_FILE)
            if not self.metadata.get("pca"):
                self.metadata["pca"] = pca.describe("on_write", 0)
        else:
            self.metadata["pca"] = None
        header = _header_bytes(self.dtype, 0, self.dim)
        _atomic_write(self.path / FEATURES_FILE, lambda f: f.write(header))
        _atomic_write(self.path / KEYS_FILE, lambda f: None)
        meta = self._final_metadata(count=0, last_shard=-1, keys_bytes=0)
        _atomic_write_json(self.path / METADATA_FILE, meta)
        self._base_meta = meta

    def _recover_tail(self) -> None:
        """Make ``features.npy`` and ``keys.txt`` exactly the committed store (under the lock).

        Cuts off rows and keys an interrupted append wrote beyond the commit, brings the ``.npy``
        header's row count up to the committed count, and records ``keys_bytes`` in the metadata
        of a store written before appends (whose ``keys.txt`` was replaced whole, so all of it
        is committed)."""
        meta = self._base_meta
        count = int(meta["count"])
        file = self.path / FEATURES_FILE
        self._offset = _features_layout(file, self.dim, self.dtype)
        end = self._offset + count * self._row_bytes
        size = file.stat().st_size
        if size < end:
            raise ValueError(
                f"{str(file)!r} is damaged ({size} bytes; the store's {count} rows of dim {self.dim} in "
                f"{self.dtype} need {end}: a truncated copy?). Restore it or re-extract the store."
            )
        if size > end:
            logger.warning("%s: removing %i bytes of rows an interrupted append wrote beyond the %i committed "
                           "rows (its shards are appended again)", self.path, size - end, count)
            os.truncate(file, end)
        if npy_header(file)[0][0] != count:
            self._set_header(count)
        kfile = self.path / KEYS_FILE
        try:
            ksize = kfile.stat().st_size
        except FileNotFoundError:
            raise FileNotFoundError(_missing_keys_message(kfile, meta.get("keys_bytes"))) from None
        if "keys_bytes" not in meta:
            meta = dict(meta, keys_bytes=ksize)
            _atomic_write_json(self.path / METADATA_FILE, meta)
            self._base_meta = meta
            self.metadata["keys_bytes"] = ksize
        elif ksize > meta["keys_bytes"]:
            logger.warning("%s: removing %i bytes of keys an interrupted append wrote beyond the committed "
                           "keys", self.path, ksize - meta["keys_bytes"])
            os.truncate(kfile, meta["keys_bytes"])

    def _recover_stamps(self) -> None:
        """Make ``stamps.npy`` exactly the committed stamps (under the lock, after :meth:`_recover_tail`).

        Cuts off stamps an interrupted append wrote beyond the commit and brings the header's row
        count up to it; deletes a ``stamps.npy`` that no metadata commits (an interrupted first
        append). Damaged stamps (a truncated or foreign file) are removed with a warning: they only
        serve to find changed image files, the rows stay; rows extracted from then on get stamps again."""
        meta = self._base_meta
        file = self.path / STAMPS_FILE
        start, n = meta.get("stamps_from"), meta.get("stamps_count")
        if start is None:
            if file.exists():
                file.unlink()
            return
        why = _committed_stamps_problem(file, start, n, int(meta["count"]))
        if why is not None:
            logger.warning(
                "%s: the stamps of its image files are damaged (%s); removing them. The rows stay, but for the "
                "rows they covered an image file changed since its extraction can no longer be found; rows "
                "extracted from now on get stamps again", self.path, why)
            meta = {k: v for k, v in meta.items() if k not in _STAMP_FIELDS}
            _atomic_write_json(self.path / METADATA_FILE, meta)
            self._base_meta = meta
            for f in _STAMP_FIELDS:
                self.metadata.pop(f, None)
            file.unlink(missing_ok=True)
            return
        offset = npy_header(file)[3]
        end = offset + int(n) * _STAMP_BYTES
        if file.stat().st_size > end:
            logger.debug("%s: removing stamps an interrupted append wrote beyond the %i committed ones",
                         self.path, n)
            os.truncate(file, end)
        self._stamps_from, self._stamps_count, self._stamps_offset = int(start), int(n), offset
        if npy_header(file)[0][0] != n:
            self._set_stamps_header()

    def _find_stamps(self, base_keys: list[str], keep: bool = True) -> None:
        """Keep what :meth:`stored_stamps` looks up: the keys of the store's stamped rows (a slice of
        the keys the writer reads anyway: 8 bytes a row, ≈ 0.8 GB at 100M) and the stamps of its
        committed shards. Only an extraction's writer (`keep`: opened with ``resume``) looks them up
        at once; another (a merge, :meth:`FeatureStore.from_arrays`) keeps none of the keys, and reads
        them again from ``keys.txt`` if :meth:`stored_stamps` is ever asked."""
        start, n = self._stamps_from, self._stamps_count
        keys = (base_keys[start : start + n] if keep else None) if start is not None else []
        shard_keys: list[str] = []
        shard_stamps = []
        for sid, rec in self._shards:
            if rec.get("stamps"):
                shard_keys.extend(rec["keys"])
                shard_stamps.append(np.load(self.path / SHARD_DIR / _stamps_name(sid)))
        self._found_stamps = (keys, (start, n, self._stamps_offset), shard_keys,
                              np.concatenate(shard_stamps) if shard_stamps else None)

    def stored_stamps(self, keys: Sequence[str]) -> np.ndarray:
        """The stamps the store holds for `keys`, as this writer found it when it was opened (its rows
        and committed shards).

        Parameters
        ----------
        keys : sequence of str
            Keys to look up, e.g. those of :attr:`done_keys` an extraction is given again.

        Returns
        -------
        numpy.ndarray of shape (len(keys), 2), int64
            The size and mtime_ns (:func:`file_stamp`) of each key's image file when its row was
            extracted; :data:`NO_STAMP` for a key without one: not stored, stored from arrays, or
            stored before stamps were recorded (a store without ``stamps.npy`` has none).
        """
        out = np.full((len(keys), 2), NO_STAMP, dtype=np.int64)
        stored, (start, n, offset), shard_keys, shard_stamps = self._found_stamps
        if stored is None:  # a writer that did not keep them (_find_stamps): the store's keys as opened
            stored = _read_keys(self.path / KEYS_FILE, self._keys_bytes)[start : start + n]
        rows = _rows_of(stored, keys)
        hit = np.flatnonzero(rows >= 0)
        if len(hit):
            mm = np.memmap(self.path / STAMPS_FILE, dtype="<i8", mode="r", offset=offset, shape=(n, 2))
            out[hit] = mm[rows[hit]]
            del mm
        rows = _rows_of(shard_keys, keys)
        hit = np.flatnonzero(rows >= 0)
        if len(hit):
            out[hit] = shard_stamps[rows[hit]]
        return out

    def _set_stamps_header(self) -> None:
        """Write the stamp count into ``stamps.npy``'s header, in place (room checked by
        :func:`_stamps_problem`, or the file made by this writer)."""
        header = _header_bytes("<i8", self._stamps_count, 2)
        with open(self.path / STAMPS_FILE, "r+b") as f:
            f.write(header)
            f.flush()
            os.fsync(f.fileno())

    @property
    def _row_bytes(self) -> int:
        return self.dim * np.dtype(self.dtype).itemsize

    def _set_header(self, count: int) -> None:
        """Write the row count into ``features.npy``'s header, in place (the rows stay where they are)."""
        file = self.path / FEATURES_FILE
        header = _header_bytes(self.dtype, count, self.dim)
        if len(header) == self._offset:
            with open(file, "r+b") as f:
                f.write(header)
                f.flush()
                os.fsync(f.fileno())
            return
        # a header written without room for a longer count (an old NumPy): copy the rows once
        logger.warning("%s: rewriting %s once, its header has no room for a larger row count", self.path,
                       FEATURES_FILE)
        rows = _load_rows(file, count, self.dim, self.dtype, mmap=True)

        def copy(f):
            f.write(header)
            self._append_rows(f, rows)

        _atomic_write(file, copy)
        self._offset = len(header)

    def _final_metadata(self, count: int, last_shard: int, keys_bytes: int,
                        stamps: tuple[int | None, int] | None = None) -> dict:
        meta = dict(self.metadata)
        meta.update(
            count=int(count),
            last_shard=int(last_shard),
            keys_bytes=int(keys_bytes),
            updated=_now(),
            package_version=__version__,
            format_version=FORMAT_VERSION,
        )
        start, n = stamps if stamps is not None else (self._stamps_from, self._stamps_count)
        for f in _STAMP_FIELDS:
            meta.pop(f, None)
        if start is not None:
            meta.update(stamps_from=int(start), stamps_count=int(n))
        return meta

    # -- writing ------------------------------------------------------------------------------

    def write(self, keys: Sequence[str], vectors, stamps=None) -> None:
        """Buffer rows; a shard is committed whenever ``shard_size`` rows (+skips) are buffered.

        Parameters
        ----------
        keys : sequence of str
            One new key per row (a key already in the store is an error).
        vectors : array_like of shape (len(keys), dim)
        stamps : array_like of shape (len(keys), 2), optional
            The size and mtime_ns of each row's image file, taken before it was read
            (:func:`file_stamp`; :data:`NO_STAMP` for a row without a file); kept in ``stamps.npy``
            so that an extraction run again finds files changed since. None: rows without files.
        """
        self._check_open()
        keys = _check_keys(keys, "write(keys)")
        if not keys:
            return
        arr = check_features(vectors, dim=self.dim, name="write(vectors)", keys=keys, allow_zero=True)
        if stamps is not None:
            stamps = np.asarray(stamps)
            if stamps.shape != (len(keys), 2) or not np.issubdtype(stamps.dtype, np.integer):
                raise ValueError(
                    f"write(stamps): expected whole numbers of shape ({len(keys)}, 2), the (size, mtime_ns) of each "
                    f"row's file (gensim_im2vec.store.file_stamp), got {stamps.dtype} of shape {stamps.shape}."
                )
            stamps = stamps.astype("<i8")
        again = [k for k in keys if k in self.done_keys or k in self._buf_keyset]
        if again:
            raise ValueError(
                f"write: {len(again)} key(s) are already in feature store {str(self.path)!r}: {again[:5]!r}; "
                f"leave out the writer's done_keys."
            )
        with np.errstate(over="ignore"):
            stored = arr.astype(self.dtype)
        if self.dtype == "float16" and not np.isfinite(stored).all():
            bad = [keys[i] for i in np.flatnonzero(~np.isfinite(stored).all(axis=1))]
            raise ValueError(
                f"write: features of {bad[:5]!r} exceed the float16 range (±65504); store float32 "
                f"(dtype='float32') or L2-normalise them."
            )
        if self.dtype == "float16":
            lost = np.flatnonzero(float16_losses(arr))
            if len(lost):
                if not self.underflow.count and self.warn_zeroed:  # once per writer; close() sums them up
                    logger.warning(
                        "%s: %i row(s) became all zeros in float16 or nearly (values below %.2g), e.g. %r; store "
                        "float32 (dtype='float32', `im2vec extract --dtype float32`) or L2-normalise them "
                        "(random weights give such features)",
                        self.path,
                        len(lost),
                        FLOAT16_TINY,
                        keys[int(lost[0])],
                    )
                self.underflow.add([keys[i] for i in lost[:UNDERFLOW_KEYS_KEPT]], len(lost))
        self._buf_keys.extend(keys)
        self._buf_keyset.update(keys)
        self._buf_rows.append(stored)
        self._buf_stamps.append(stamps if stamps is not None else len(keys))
        self._buf_stamped = self._buf_stamped or stamps is not None
        for k in keys:
            self._buf_skips.pop(k, None)
        if len(self._buf_keys) + len(self._buf_skips) >= self.shard_size:
            self.flush()

    def skip(self, key: str, reason: str) -> None:
        """Record that `key` was not stored and why (kept in ``skipped.json``)."""
        self._check_open()
        self._buf_skips[str(key)] = str(reason)
        if len(self._buf_keys) + len(self._buf_skips) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Commit the buffered rows and skips as one shard (data first, commit record last)."""
        if not self._buf_keys and not self._buf_skips:
            return
        sid = self._next_shard
        d = self.path / SHARD_DIR
        rows = (
            np.concatenate(self._buf_rows) if self._buf_rows else np.zeros((0, self.dim), dtype=self.dtype)
        )
        _atomic_write(d / _shard_name(sid, "npy"), lambda f: np.save(f, rows))
        record = {
            "shard": sid,
            "count": len(self._buf_keys),
            "keys": self._buf_keys,
            "skipped": self._buf_skips,
            "identity": _identity(self.metadata),
            "committed": _now(),
        }
        if self._buf_stamped and self._buf_keys:  # the rows' stamps, beside their data, before the record
            stamps = np.concatenate([s if isinstance(s, np.ndarray) else np.full((s, 2), NO_STAMP, dtype="<i8")
                                     for s in self._buf_stamps])
            _atomic_write(d / _stamps_name(sid), lambda f: np.save(f, stamps))
            record["stamps"] = True
        self._commit(d / _shard_name(sid, "json"), record)
        self._shards.append((sid, record))
        self.done_keys.update(self._buf_keys)
        self.skipped.update(self._buf_skips)
        self.rows_written += len(self._buf_keys)
        logger.debug("%s: committed shard %i (%i rows, %i skips)", self.path, sid, record["count"], len(self._buf_skips))
        self._next_shard += 1
        self._buf_keys, self._buf_rows, self._buf_skips = [], [], {}
        self._buf_keyset = set()
        self._buf_stamps, self._buf_stamped = [], False
        if sum(r["count"] for _, r in self._shards) * self._row_bytes >= APPEND_BYTES:
            self._append_shards()  # keep the shards (a second copy of the rows) small on disk

    def _commit(self, path: Path, record: dict) -> None:
        # one place that makes a shard visible; tests interrupt here
        _atomic_write_json(path, record)

    def close(self) -> None:
        """Commit what is buffered, append all committed shards to the store, mark the run finished
        (delete ``.unfinished-run``), release the lock."""
        self._close(finish_run=True)

    def _close(self, *, finish_run: bool) -> None:
        if self._closed:
            return
        try:
            self.flush()
            self._append_shards()
            if finish_run and (self.path / RUN_FILE).exists():
                (self.path / RUN_FILE).unlink()  # last, under the lock: the store is complete
                fsync_dir(self.path)
        finally:
            self._closed = True
            self._found_stamps = _NO_FOUND_STAMPS
            self._release()
        underflow = getattr(self, "underflow", None)
        if underflow is not None and underflow.count and getattr(self, "warn_zeroed", True):
            logger.warning("%s: %i row(s) written by this writer are all zeros or nearly (float16 could not hold "
                           "them); rewrite them in float32", self.path, underflow.count)

    def abort(self) -> None:
        """Commit what is buffered (complete rows only) as shards, stop without appending them to the
        store (the next writer or :meth:`FeatureStore.consolidate` does), release the lock."""
        if not self._closed:
            try:
                self.flush()
            finally:
                self._closed = True
                self._found_stamps = _NO_FOUND_STAMPS
                self._release()

    def _release(self) -> None:
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            lock.release()

    def __del__(self) -> None:
        # a writer dropped without close()/abort() (a crash in this process) frees the store;
        # its committed shards stay and the next writer continues from them
        self._release()

    def __enter__(self) -> FeatureStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"feature store writer for {str(self.path)!r} is closed.")

    def _append_shards(self) -> None:
        """Append the committed shards to the store (see the class notes): O(their rows)."""
        if not self._shards:
            return
        d = self.path / SHARD_DIR
        shards = self._shards
        for sid, rec in shards:  # every shard readable before the store grows
            shape = npy_header(d / _shard_name(sid, "npy"))[0]
            if tuple(shape) != (rec["count"], self.dim):
                raise ValueError(
                    f"shard {sid} of {str(self.path)!r} holds {tuple(shape)}, its commit record says "
                    f"{rec['count']} rows of dim {self.dim}; delete {d / _shard_name(sid, 'json')} to redo it."
                )
        keys = [k for _, rec in shards for k in rec["keys"]]
        with open(self.path / FEATURES_FILE, "r+b") as f:
            f.seek(self._offset + self._count * self._row_bytes)
            f.truncate()  # what a failed append of this writer left
            for sid, _ in shards:
                self._append_rows(f, np.load(d / _shard_name(sid, "npy"), mmap_mode="r"))
            f.flush()
            os.fsync(f.fileno())
        kdata = _keys_bytes(keys)
        with open(self.path / KEYS_FILE, "r+b") as f:
            f.seek(self._keys_bytes)
            f.truncate()
            f.write(kdata)
            f.flush()
            os.fsync(f.fileno())
        stamps = self._append_stamps(shards)
        skipped = {k: v for k, v in self.skipped.items() if k not in self.done_keys}
        _atomic_write_json(self.path / SKIPPED_FILE, skipped)
        count, last = self._count + len(keys), shards[-1][0]
        meta = self._final_metadata(count=count, last_shard=last, keys_bytes=self._keys_bytes + len(kdata),
                                    stamps=stamps[:2] if stamps is not None else None)
        self._commit_metadata(meta)
        self._count, self._keys_bytes, self._last_consolidated, self._shards = count, meta["keys_bytes"], last, []
        self._base_meta = meta
        self._set_header(count)
        if stamps is not None:
            self._stamps_from, self._stamps_count, self._stamps_offset = stamps
            self._set_stamps_header()
        for sid, _ in shards:  # the record first: data without a record is ignored
            for file in _shard_files(d, sid):
                try:
                    file.unlink()
                except FileNotFoundError:
                    pass
        logger.info(
            "%s: appended %i shard(s) (%i rows); the store holds %i rows of dim %i (%s), %i skipped",
            self.path, len(shards), len(keys), count, self.dim, self.dtype, len(skipped),
        )

    def _append_stamps(self, shards: list[tuple[int, dict]]) -> tuple[int, int, int] | None:
        """Append the stamps of `shards` to ``stamps.npy`` (fsynced, not committed: the caller's
        metadata commits them), after :data:`NO_STAMP` rows for any rows stored without stamps since
        the last stamped ones; the first stamped shards of a store start the file at their first row.
        Returns the new ``(stamps_from, stamps_count, data offset)``, or None when no shard has stamps
        (then ``stamps.npy`` is left as it is)."""
        if not any(rec.get("stamps") for _, rec in shards):
            return None
        d, file = self.path / SHARD_DIR, self.path / STAMPS_FILE
        start, n, offset = self._stamps_from, self._stamps_count, self._stamps_offset
        if start is None:  # the store's first stamps
            header = _header_bytes("<i8", 0, 2)
            _atomic_write(file, lambda f: f.write(header))
            start, n, offset = self._count, 0, len(header)
        gap = self._count - (start + n)  # rows stored without stamps after the last stamped ones
        with open(file, "r+b") as f:
            f.seek(offset + n * _STAMP_BYTES)
            f.truncate()  # what a failed append of this writer left
            for sid, rec in [(None, {"count": gap})] + shards:
                if rec.get("stamps"):
                    self._append_rows(f, np.load(d / _stamps_name(sid), mmap_mode="r"))
                else:
                    for s in range(0, rec["count"], _COPY_ROWS):
                        f.write(np.full((min(_COPY_ROWS, rec["count"] - s), 2), NO_STAMP, dtype="<i8").data)
                n += rec["count"]
            f.flush()
            os.fsync(f.fileno())
        return start, n, offset

    def _append_rows(self, f, rows: np.ndarray) -> None:
        """Write a shard's rows at the end of ``features.npy`` (bounded memory)."""
        for s in range(0, len(rows), _COPY_ROWS):
            f.write(np.ascontiguousarray(rows[s : s + _COPY_ROWS]).data)

    def _commit_metadata(self, meta: dict) -> None:
        # the one write that makes appended rows part of the store; tests interrupt around it
        _atomic_write_json(self.path / METADATA_FILE, meta)
