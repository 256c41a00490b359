"""What the model sees of images: keys, a feature matrix and the map between them.

:class:`ImageFeatures` turns every form ``Im2Vec(image_features=...)`` accepts into one object:

- a ``{key: vector}`` mapping,
- a ``(keys, 2-D array)`` pair,
- a feature store (anything with ``keys`` and ``vectors`` attributes, e.g.
  :class:`gensim_im2vec.store.FeatureStore`), whose array may be memory-mapped and stays so.

>>> import numpy as np
>>> from gensim_im2vec.image_features import ImageFeatures
>>> feats = ImageFeatures.from_any({"img:1": np.ones(4), "img:2": np.arange(1, 5)})
>>> len(feats), feats.dim, feats.row("img:2")
(2, 4, 1)
>>> feats.gather_normalized([1, 0]).shape
(2, 4)
"""

from __future__ import annotations

import contextlib
import logging
import mmap
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from gensim_im2vec.store import FeatureStore, KeyIndex
from gensim_im2vec.validation import check_features

logger = logging.getLogger(__name__)

__all__ = ["ImageFeatures"]

#: Rows checked per chunk when validating a large (memory-mapped) feature matrix.
_CHECK_CHUNK = 65536
#: Rows read from a memory-mapped feature matrix between two releases of its pages (:func:`release`):
#: rows spread over a large file map up to 64 kB each (the kernel's fault-around), so at most ~256 MB.
_RELEASE_ROWS = 4096


def release(vectors) -> None:
    """Unmap the pages of a memory-mapped feature matrix from this process (``MADV_DONTNEED``).

    They stay in the page cache, and a later read maps them again from there; they only leave
    the process's resident set, so reading a 100 GB store once never shows as 100 GB of RSS.
    A no-op for an array in memory (or where ``madvise`` is missing), and for a copy-on-write map
    (``np.load(..., mmap_mode="c")``, ``Im2Vec.load(path, mmap="c")``): there ``MADV_DONTNEED``
    would throw away the rows this process changed and read the file's back.
    """
    if getattr(vectors, "mode", None) == "c":
        return
    mm = getattr(vectors, "_mmap", None)  # numpy's memmap (and its views) keep their mmap here
    if mm is not None and hasattr(mmap, "MADV_DONTNEED"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # pragma: no cover - a closed map, a platform without it
            pass


@contextlib.contextmanager
def scattered_reads(vectors, rows: np.ndarray, mode: str = "prefetch"):
    """While a few hundred to a few hundred thousand scattered `rows` (any order) of a memory-mapped,
    C-contiguous matrix are read: the map advised ``MADV_RANDOM``, and with ``mode="prefetch"`` each
    run of the rows' pages ``MADV_WILLNEED`` first. ``mode="plain"``, an array in memory or another
    layout (a Fortran-order map's row is spread over the file): nothing. The advice is best-effort:
    rows outside the matrix are left to the read that follows, and a refused ``madvise`` changes
    nothing but speed.

    A page fault on a file map reads up to ``read_ahead_kb`` around the page (8 MB on the VM of
    docs/scale.md §6): an IVF-PQ re-rank of 88 rows over a file not in the page cache read 388 MB
    in 0.3 s, where its rows lie on 104 pages. ``MADV_RANDOM`` reads the faulting page alone, and
    ``MADV_WILLNEED`` starts the reads of all the rows' pages at once instead of one fault after
    another (3.2 ms there). The map's advice is the default again afterwards (sequential scans keep
    the kernel's read-ahead)."""
    mm = getattr(vectors, "_mmap", None)
    if (mm is None or mode == "plain" or not len(rows) or not hasattr(mmap, "MADV_RANDOM")
            or vectors.ndim != 2 or not vectors.flags.c_contiguous):
        yield
        return
    try:
        mm.madvise(mmap.MADV_RANDOM)
    except (OSError, ValueError):  # pragma: no cover - a closed map, a platform without it
        yield
        return
    try:
        if mode == "prefetch":
            rows = np.unique(np.asarray(rows, dtype=np.int64))  # ascending, each once: runs of pages below
            rows = rows[(rows >= 0) & (rows < len(vectors))]
            if len(rows):
                base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
                row_bytes = vectors.strides[0]
                start = vectors.ctypes.data - base + rows * row_bytes
                first, last = start // mmap.PAGESIZE, (start + row_bytes - 1) // mmap.PAGESIZE
                # runs of pages: a run starts where a row's first page is past the run so far
                ends = np.maximum.accumulate(last)
                new = np.flatnonzero(np.concatenate(([True], first[1:] > ends[:-1] + 1)))
                stops = np.append(new[1:], len(first)) - 1
                with contextlib.suppress(OSError, ValueError):
                    for lo, hi in zip(first[new].tolist(), ends[stops].tolist()):
                        mm.madvise(mmap.MADV_WILLNEED, lo * mmap.PAGESIZE, (hi - lo + 1) * mmap.PAGESIZE)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            mm.madvise(mmap.MADV_NORMAL)


def _fix_for(obj) -> str:
    """How to give `obj`, refused by :meth:`ImageFeatures.from_any`, in a form it takes (``""``: no guess)."""
    if isinstance(obj, np.ndarray):
        return "; an array has no keys: pass (keys, array), the image keys in the array's row order"
    if not isinstance(obj, (list, tuple)) or not obj:
        return ""
    if all(isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str) for p in obj):
        return " of (key, vector) pairs; pass dict(pairs)"
    if isinstance(obj, list) and len(obj) == 2 and _looks_like_keys(obj[0]):
        return "; a (keys, array) pair is a tuple: pass (keys, array), not [keys, array]"
    if all(isinstance(v, np.ndarray) or (isinstance(v, (list, tuple)) and v and all(
            isinstance(x, (int, float, np.number)) for x in v)) for v in obj):
        return "; a list of vectors has no keys: pass (keys, vectors), the image keys in the vectors' order"
    return ""


def _looks_like_keys(obj) -> bool:
    """Whether `obj` is a sequence of str (image keys), as the first item of a ``[keys, array]`` list is."""
    if isinstance(obj, (str, bytes)) or not isinstance(obj, Iterable):
        return False
    first = next(iter(obj), None)
    return isinstance(first, str)


class ImageFeatures:
    """Keys, a feature matrix (float16/float32, possibly memory-mapped) and ``key → row``.

    Parameters
    ----------
    keys : sequence of str
        One key per row, unique.
    vectors : ndarray of shape (n_images, n_features)
        Raw (un-normalised) features; left as given (a memmap stays a memmap).
    name : str
        Where the features came from, for error messages.
    metadata : dict, optional
        Provenance (e.g. a feature store's metadata: arch, weights, layer).
    key_to_index : mapping, optional
        ``key → row``, when the caller already has it: a dict or :class:`~gensim_im2vec.store.KeyIndex`
        is used as given, not copied.

    Attributes
    ----------
    key_to_index : Mapping of str to int
        ``key → row``. From a store (:meth:`from_any`) it is the store's own
        :class:`~gensim_im2vec.store.KeyIndex`, built on first use: a model loaded to be queried never
        needs it (its vocabulary keeps each image's row); at 100M images it is ≈ 1.5 GB (a dict was
        ≈ 6 GB). A model's features without a store (``model.features`` after a load) build their own
        KeyIndex of their keys when first asked; features given as a mapping or pair hold a dict.
    source : object or None
        The feature store the features came from (:meth:`from_any`), None for a mapping or pair.
    """

    def __init__(self, keys: Sequence[str], vectors: np.ndarray, *, name: str = "image_features",
                 metadata: dict | None = None, key_to_index: Mapping[str, int] | None = None,
                 _lazy_source=None):
        keys = keys if isinstance(keys, list) else list(keys)
        self.checked = False
        if isinstance(vectors, np.ndarray) and vectors.ndim == 2 and vectors.dtype in (np.float16, np.float32):
            arr = vectors  # kept as given (a memmap stays a memmap); rows checked below or on use
            if arr.shape[0] == 0 or arr.shape[1] == 0:
                raise ValueError(f"{name}: expected at least one image with at least one feature, got shape {arr.shape}.")
        else:
            arr = check_features(vectors, name=name, keys=keys)
            self.checked = True
        if len(keys) != arr.shape[0]:
            raise ValueError(f"{name}: {len(keys)} keys for {arr.shape[0]} feature rows; they must match one to one.")
        self.source = _lazy_source
        if _lazy_source is not None:  # a store's keys, unique by construction: its dict when first asked
            key_to_index = None
        elif key_to_index is None:
            key_to_index = {}
            for i, k in enumerate(keys):
                if not isinstance(k, str):
                    raise TypeError(f"{name}: image keys must be str, got {type(k).__name__} {k!r} at row {i}.")
                if k in key_to_index:
                    raise ValueError(f"{name}: duplicate image key {k!r} (rows {key_to_index[k]} and {i}).")
                key_to_index[k] = i
        self.keys = keys
        self.vectors = arr
        # a store's dict is shared, not copied (at 10M images a copy costs ~0.5 GB)
        self._key_to_index = (key_to_index if key_to_index is None or isinstance(key_to_index, (dict, KeyIndex))
                              else dict(key_to_index))
        self.name = name
        self.metadata = dict(metadata or {})
        # a memory-mapped store may be far larger than what a model uses: its rows are checked
        # when a vocabulary takes them (check_rows); an in-memory array is checked now
        if not self.checked and not isinstance(arr, np.memmap):
            self.check_rows(np.arange(len(keys)))
            self.checked = True

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_any(cls, obj, *, name: str = "image_features") -> ImageFeatures:
        """Accept a mapping, a ``(keys, array)`` pair, a store object or an ImageFeatures."""
        if isinstance(obj, ImageFeatures):
            return obj
        if hasattr(obj, "keys") and hasattr(obj, "vectors") and not isinstance(obj, Mapping):
            keys = obj.keys() if callable(obj.keys) else obj.keys
            meta = getattr(obj, "metadata", None)
            store_name = f"{name} ({getattr(obj, 'path', type(obj).__name__)})"
            keys = keys if isinstance(keys, list) else list(keys)
            if isinstance(obj, FeatureStore):  # its dict is built when first asked for, and shared
                return cls(keys, obj.vectors, name=store_name, metadata=meta, _lazy_source=obj)
            feats = cls(keys, obj.vectors, name=store_name, metadata=meta,
                        key_to_index=getattr(obj, "key_to_index", None))
            feats.source = obj
            return feats
        if isinstance(obj, Mapping):
            if not obj:
                raise ValueError(f"{name}: the mapping is empty; give at least one image's features.")
            keys = list(obj.keys())
            rows = []
            dim = None
            for k in keys:
                v = np.asarray(obj[k])
                if v.ndim != 1:
                    raise ValueError(f"{name}: the features of {k!r} must be a 1-D vector, got shape {v.shape}.")
                if dim is None:
                    dim = v.shape[0]
                elif v.shape[0] != dim:
                    raise ValueError(
                        f"{name}: mismatched feature dimensions: {keys[0]!r} has {dim} features, "
                        f"{k!r} has {v.shape[0]}. All images need features from the same model and layer."
                    )
                rows.append(v)
            return cls(keys, np.stack(rows), name=name)
        if isinstance(obj, tuple) and len(obj) == 2:
            keys, arr = obj
            return cls(list(keys), arr, name=name)
        raise TypeError(
            f"{name}: expected a {{key: vector}} mapping, a (keys, 2-D array) pair or a feature store "
            f"(an object with .keys and .vectors), got {type(obj).__name__}{_fix_for(obj)}."
        )

    # -- access -------------------------------------------------------------------------------
    @property
    def key_to_index(self) -> Mapping[str, int]:
        if self._key_to_index is None:  # a store's (shared), or one of our own keys (model.features)
            source = self.source.key_to_index if self.source is not None else None
            self._key_to_index = source if source is not None else KeyIndex(self.keys)
        return self._key_to_index

    @key_to_index.setter
    def key_to_index(self, value: Mapping[str, int] | None) -> None:
        self._key_to_index = value

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key) -> bool:
        return key in self.key_to_index

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def row(self, key: str) -> int:
        return self.key_to_index[key]

    def check_rows(self, rows) -> None:
        """Check the given rows (finite, not all zero) chunk by chunk, in row order, so a memmap is
        never loaded whole; a no-op once all rows were checked."""
        if self.checked:
            return
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        for lo in range(0, len(rows), _CHECK_CHUNK):
            chunk = rows[lo:lo + _CHECK_CHUNK]
            block = np.empty((len(chunk), self.dim), dtype=self.vectors.dtype)
            self._read_sorted(chunk, block)
            check_features(block, name=self.name, keys=[self.keys[int(i)] for i in chunk], dtype=block.dtype)

    def _read_sorted(self, rows: np.ndarray, out: np.ndarray, where: np.ndarray | None = None) -> None:
        """``out[where] = vectors[rows]`` for ascending `rows`; from a memory map a few thousand rows
        at a time, releasing the read pages in between (:func:`release`)."""
        vectors = self.vectors
        step = _RELEASE_ROWS if isinstance(vectors, np.memmap) else max(len(rows), 1)
        for lo in range(0, len(rows), step):
            part = slice(lo, lo + step)
            out[part if where is None else where[part]] = vectors[rows[part]]
            if step == _RELEASE_ROWS:
                self._since_release = getattr(self, "_since_release", 0) + len(rows[part])
                if self._since_release >= _RELEASE_ROWS:
                    self._since_release = 0
                    release(vectors)

    def gather(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the feature matrix as C-contiguous float32, and their inverse L2 norms.

        A memory-mapped matrix is read in ascending row order (sequential reads); an in-memory
        float32 matrix is gathered in one pass.
        """
        rows = np.asarray(rows, dtype=np.int64)
        vectors = self.vectors
        if isinstance(vectors, np.memmap) or vectors.dtype != np.float32:
            order = np.argsort(rows, kind="stable")
            out = np.empty((len(rows), self.dim), dtype=np.float32)
            self._read_sorted(rows[order], out, order)
        else:
            out = np.take(vectors, rows, axis=0)
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))
        norms[norms == 0] = 1.0
        return out, (1.0 / norms).astype(np.float32)

    def gather_normalized(self, rows, normalize: bool = True) -> np.ndarray:
        """Rows of the feature matrix as C-contiguous float32, L2-normalised when `normalize`."""
        out, inv = self.gather(rows)
        if normalize:
            out *= inv[:, None]
        return out
