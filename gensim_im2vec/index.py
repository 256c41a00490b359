"""Approximate nearest neighbours for Im2Vec models, through gensim's indexer protocol.

An exact ``model.wv.most_similar`` reads every vector for every query: ~60 ms per query at
1M × 200 on one core, seconds at 100M. :class:`ModalityIndexer` builds an approximate index
(faiss HNSW, or Annoy through gensim's own :class:`~gensim.similarities.annoy.AnnoyIndexer`)
with **one sub-index per modality** — words and images — so that "only words" or "only images"
is an exact filter instead of an over-fetch that may come back empty, and "both" merges the two
result lists by cosine.

Any object with ``most_similar(vector, num_neighbors)`` is a gensim indexer; pass it (or one of
its modality views ``.words`` / ``.images``) to ``most_similar``:

>>> import numpy as np
>>> from gensim_im2vec import Im2Vec
>>> from gensim_im2vec.index import ModalityIndexer, ann_most_similar
>>> rng = np.random.default_rng(0)
>>> protos = {"dog": rng.normal(size=32), "car": rng.normal(size=32)}
>>> docs, feats = [], {}
>>> for i in range(100):
...     cls = ("dog", "car")[i % 2]
...     feats[f"img:{i}"] = protos[cls] + 0.3 * rng.normal(size=32)
...     docs.append([f"img:{i}", cls, "photo"])
>>> model = Im2Vec(docs, image_features=feats, vector_size=16, min_count=1, epochs=5,
...                workers=1, seed=1)
>>> indexer = ModalityIndexer(model, backend="faiss")
>>> len(indexer.words), len(indexer.images)
(3, 100)
>>> hits = model.wv.most_similar("img:0", topn=5, indexer=indexer)         # words and images
>>> hits[0][0]                               # like gensim's AnnoyIndexer, the query comes back first
'img:0'
>>> all(k.startswith("img:") for k, _ in model.wv.most_similar("dog", topn=5, indexer=indexer.images))
True
>>> [k for k, _ in model.wv.most_similar("img:0", topn=3, indexer=indexer.words)] != []
True

With ``modalities=("words", "tags", "images")`` a third sub-index holds the tags alone (the
words of the image documents): ``indexer.tags`` answers an image's nearest tags, as
``Im2Vec.most_similar_tags`` does exactly, without the rest of the text's vocabulary.

:func:`ann_most_similar` has gensim's exact semantics (the query keys left out, several
positive/negative keys) with an index and an optional modality filter:

>>> ann_most_similar(model, "img:0", topn=2, indexer=indexer, restrict="images")[0][0] != "img:0"
True

The index is saved beside the model (a small JSON manifest plus one file per modality) and
checked against the model's vectors when loaded, so a retrained model never silently answers
from a stale index:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "m.model")
>>> model.save(path)
>>> indexer.save(path + ".ann")
>>> again = ModalityIndexer.load(path + ".ann", Im2Vec.load(path))
>>> again.most_similar(model.wv["img:0"] / np.linalg.norm(model.wv["img:0"]), 1)[0][0]
'img:0'

Choosing a backend
------------------
``"faiss"`` (``pip install faiss-cpu``): HNSW graph over unit vectors with inner product;
``ef_search`` trades latency for recall at query time. ``"annoy"`` (``pip install annoy``):
random-projection trees through gensim's ``AnnoyIndexer``; the file is memory-mapped when
loaded (several processes share one copy), ``search_k`` trades latency for recall.
``"auto"`` takes faiss when it is installed, else annoy. ``benchmarks/bench_ann.py`` measures
both against the exact search in one run (recall@10 and latency).

At 100M images faiss's HNSW and IVF-Flat hold a private copy of every vector (38.5 GB at dim 100),
beside the model's own ``wv.vectors``. ``kind="ivfpq"`` holds ``pq_m`` bytes of product-quantised
code per vector instead (+ faiss's 8-byte id) and re-ranks the ``rerank × topn`` best candidates
by their exact cosines, read from the model's rows — memory-mapped, not copied, when the model
was loaded with ``Im2Vec.load(path, mmap="r")``. The similarities it returns are the exact ones:

>>> from gensim.models import KeyedVectors
>>> kv = KeyedVectors(16)
>>> kv.add_vectors([f"w{i}" for i in range(1000)], rng.normal(size=(1000, 16)))
>>> pq = ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=4, rerank=10, modalities=("words",))
>>> pq.params["pq_m"], pq.params["rerank"]                       # 4 bytes per vector instead of 64
(4, 10)
>>> [(k, round(s, 5)) for k, s in pq.most_similar(kv["w7"], 3)] == [
...     (k, round(s, 5)) for k, s in kv.most_similar(kv["w7"], topn=3)]
True
>>> ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=5)
Traceback (most recent call last):
...
ValueError: pq_m: 5 does not divide the vectors' dimension 16 ...divisors: 1, 2, 4, 8, 16 (bytes per vector; ...

``nprobe`` and ``rerank`` change after building (:meth:`ModalityIndexer.set_search`, or
``ModalityIndexer.load(..., rerank=)``); ``benchmarks/bench_ann.py --backends ivf ivfpq`` measures
recall, latency and the index's bytes per vector of both.

Exact neighbours between two matrices (raw features, held-out images against training images),
as the evaluation's kNN baseline and image → image check need them: :func:`cosine_neighbours`.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gensim_im2vec.fileio import atomic_path, is_no_space, no_space_error, temp_name
from gensim_im2vec.image_features import release, scattered_reads
from gensim_im2vec.keys import IMAGE_PREFIX, image_mask
from gensim_im2vec.store import key_rows
from gensim_im2vec.validation import (
    check_query_vectors,
    check_topn,
    is_int,
    l2_normalize,
    query_items,
    query_keys,
)

logger = logging.getLogger(__name__)

__all__ = ["ModalityIndexer", "ann_most_similar", "cosine_neighbours", "fill_norms", "BACKENDS", "MODALITIES",
           "ALL_MODALITIES"]

#: Index engines ModalityIndexer can use.
BACKENDS = ("faiss", "annoy")
#: faiss index types (``kind``).
FAISS_KINDS = ("hnsw", "ivf", "ivfpq")
#: Sub-indexes of a ModalityIndexer.
MODALITIES = ("words", "images")
#: Every sub-index one can build: besides the default two, "tags" (the words of an Im2Vec model's image
#: documents, ``image_tag_counts``): an image's describing words, as ``Im2Vec.most_similar_tags`` lists them.
ALL_MODALITIES = ("words", "tags", "images")
_FORMAT = "gensim-im2vec-ann"
_FORMAT_VERSION = 1
_FINGERPRINT_ROWS = 1024
#: annoy's nodes inspected per query when ``search_k`` is None: this × topn × num_trees (annoy's own
#: default, 1 ×, found 0.37 of a word's 10 nearest images on the demo's model; 100 ×: 0.94).
ANNOY_SEARCH_FACTOR = 100


# ----------------------------------------------------------------------------- helpers


def _keyed_vectors(model):
    """The KeyedVectors of a model (``model.wv``) or the KeyedVectors itself."""
    kv = getattr(model, "wv", model)
    if not (hasattr(kv, "index_to_key") and hasattr(kv, "vectors") and hasattr(kv, "get_normed_vectors")):
        raise TypeError(
            f"expected an Im2Vec/Word2Vec model or a gensim KeyedVectors, got {type(model).__name__}."
        )
    return kv


_READ_ROWS = 4096  # rows of a memory-mapped model read between two releases of its pages
#: How the re-rank reads a memory-mapped model's rows (benchmarks/bench_ann.py --cold measures each):
#: "prefetch": the map advised MADV_RANDOM while the rows are read, after MADV_WILLNEED on each of
#: them (their reads start together); "random": MADV_RANDOM only; "plain": the map's default advice.
_RERANK_READS = "prefetch"


#: Bytes of rows whose norms :func:`fill_norms` computes at once: its one temporary, their squares
#: (gensim's ``KeyedVectors.fill_norms`` squares all of ``kv.vectors`` at once).
NORM_BLOCK_BYTES = 8 << 20


def fill_norms(kv, force: bool = False) -> None:
    """``kv.fill_norms(force)``, a block of :data:`NORM_BLOCK_BYTES` of rows at a time, and the
    pages of a memory-mapped ``kv.vectors`` released after each block
    (:func:`~gensim_im2vec.image_features.release`).

    gensim's own, which ``kv.most_similar``, ``similar_by_vector`` and ``get_vector(key, norm=True)``
    call when ``kv.norms`` is None, squares a private copy of every vector at once: as much memory
    again as ``kv.vectors`` on the first search (40 GB at 100M × 100), even of a model loaded with
    ``mmap="r"``. The same values (each row is reduced on its own, by the same ``np.linalg.norm``),
    so gensim finds them filled and uses them. Nothing to do when ``kv.norms`` holds one norm per
    row, unless `force`.

    >>> from gensim.models import KeyedVectors
    >>> kv = KeyedVectors(2); kv.add_vectors(["a", "b"], [[3.0, 4.0], [0.0, 1.0]])
    >>> fill_norms(kv); kv.norms.tolist()
    [5.0, 1.0]
    """
    vectors = kv.vectors
    n = len(vectors)
    if not force and kv.norms is not None and len(kv.norms) == n:
        return
    row_bytes = vectors.itemsize * int(np.prod(vectors.shape[1:], dtype=np.int64))
    step = max(1, NORM_BLOCK_BYTES // max(1, row_bytes))
    if n <= step:
        kv.norms = np.linalg.norm(vectors, axis=1)
        release(vectors)
        return
    norms = None
    for lo in range(0, n, step):
        part = np.linalg.norm(vectors[lo : lo + step], axis=1)
        if norms is None:
            norms = np.empty(n, dtype=part.dtype)  # (np.linalg.norm's dtype, as gensim's)
        norms[lo : lo + len(part)] = part
        release(vectors)
    kv.norms = norms


def _is_range(rows: np.ndarray) -> bool:
    """Whether `rows` is ``start, start + 1, ...`` (checked a block at a time: no temporary the size of it)."""
    n = len(rows)
    if n == 0 or int(rows[-1]) - int(rows[0]) != n - 1:
        return False
    step = 1 << 20
    return all(bool(np.all(np.diff(rows[lo : lo + step + 1]) == 1)) for lo in range(0, n - 1, step))


class _UnitRows:
    """Unit vectors of some rows of a KeyedVectors, normalised a block at a time when read: an index
    over 10M vectors never holds a normalised copy of them all (``get_normed_vectors`` does).

    A contiguous selection (an Im2Vec model's images follow its words) is held as its first row
    only, not as an array of 8 bytes per row: an IVF-PQ index keeps its ``_UnitRows`` for the re-rank.
    """

    ndim = 2

    def __init__(self, kv, rows: np.ndarray | None = None) -> None:
        fill_norms(kv)
        self.kv = kv
        self.shape = (len(kv.index_to_key) if rows is None else len(rows), int(kv.vector_size))
        self.start = 0
        if rows is not None and _is_range(rows):
            self.start, rows = int(rows[0]), None
        self.rows = rows
        self._read = 0  # rows read by cosines() since the pages were last released

    def __len__(self) -> int:
        return self.shape[0]

    def _model_rows(self, item) -> np.ndarray:
        """Rows of ``kv.vectors`` of positions `item` (a slice or an index array) among the selected rows."""
        if self.rows is not None:
            return np.asarray(self.rows[item], dtype=np.int64)
        if isinstance(item, slice):
            return np.arange(*item.indices(self.shape[0]), dtype=np.int64) + self.start
        return np.asarray(item, dtype=np.int64) + self.start

    def __getitem__(self, item) -> np.ndarray:
        """Rows by a slice or an index array (positions among the selected rows), float32, C order.

        Rows are read in ascending order a few thousand at a time; the pages of a memory-mapped
        model read for them leave the resident set in between
        (:func:`gensim_im2vec.image_features.release`: a sample of rows spread over a 4 GB file
        would map most of it at once)."""
        rows = self._model_rows(item)
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        order = np.argsort(rows, kind="stable")
        for lo in range(0, len(rows), _READ_ROWS):
            part = order[lo : lo + _READ_ROWS]
            r = rows[part]
            norms = self.kv.norms[r]
            # an all-zero row stays zero (as l2_normalize): 0/0 made it NaN, which faiss's HNSW never
            # returned and its IVF training refused
            out[part] = self.kv.vectors[r] / np.where(norms > 0, norms, 1)[:, np.newaxis]
            release(self.kv.vectors)
        return out

    def cosines(self, positions: np.ndarray, unit_query: np.ndarray) -> np.ndarray:
        """Exact cosines of a unit query with the rows at `positions`, float32, as gensim's
        ``most_similar`` computes them (row · query / row norm; an all-zero row: 0).

        For a query's few hundred candidates: the rows are read in ascending order and the pages of
        a memory-mapped model leave the resident set once every :data:`_READ_ROWS` rows read, not
        at each query (``madvise`` over a 40 GB map costs more than the read)."""
        rows = self._model_rows(positions)
        fill_norms(self.kv)  # gensim's train() and a vocabulary update drop them (kv.norms = None)
        order = np.argsort(rows, kind="stable")
        r = rows[order]
        norms = self.kv.norms[r]
        out = np.empty(len(r), dtype=np.float32)
        with _scattered_reads(self.kv.vectors, r):
            vectors = np.asarray(self.kv.vectors[r], dtype=np.float32)
        out[order] = (vectors @ unit_query) / np.where(norms > 0, norms, 1)
        self._read += len(r)
        if self._read >= _READ_ROWS:
            release(self.kv.vectors)
            self._read = 0
        return out

    def moved(self, positions: np.ndarray, labels: Sequence[str]) -> tuple[str, str | None] | None:
        """The first of `positions` whose row of the model no longer holds the key the index was built
        with (``labels[position]``), as ``(label, key now there or None)``; None when every one does."""
        keys = self.kv.index_to_key
        for pos, row in zip(np.asarray(positions).tolist(), self._model_rows(positions).tolist()):
            now = keys[row] if row < len(keys) else None
            if now != labels[pos]:
                return labels[pos], now
        return None

    def blocks(self, size: int = 65536):
        """The rows a block at a time."""
        for lo in range(0, self.shape[0], size):
            yield self[lo : lo + size]


def _scattered_reads(vectors, rows: np.ndarray):
    """:func:`~gensim_im2vec.image_features.scattered_reads` in this module's :data:`_RERANK_READS` mode."""
    return scattered_reads(vectors, rows, _RERANK_READS)


def _check_finite_rows(kv) -> None:
    """Refuse a model with NaN or infinite vectors (by their norms, filled by :func:`fill_norms`): an
    index cannot place them, and faiss dropped or refused them with no key named."""
    bad = np.flatnonzero(~np.isfinite(kv.norms))
    if len(bad):
        keys = [kv.index_to_key[i] for i in bad[:5]]
        raise ValueError(
            f"the model's vectors of {len(bad)} key(s) are not finite (NaN or inf), e.g. {keys!r}: an index "
            f"cannot place them. The training diverged (retrain with a lower alpha) or the vectors were edited; "
            f"fix or drop those keys before building the index."
        )


def _check_rerank(rerank) -> None:
    if not is_int(rerank) or rerank < 1:
        raise ValueError(f"rerank: expected an int >= 1 (IVF-PQ candidates re-ranked by exact cosine per result, "
                         f"4-16 typical; 1: PQ scores only), got {rerank!r}.")


def _fingerprint(keys: Sequence[str], unit: np.ndarray) -> str:
    """Hash of the keys and of evenly spaced unit vectors: changes when the model is retrained."""
    h = hashlib.sha1()
    h.update(f"{len(keys)}x{unit.shape[1] if unit.ndim == 2 else 0}\n".encode())
    h.update("\n".join(map(str, keys)).encode("utf-8"))
    if len(keys):
        rows = np.unique(np.linspace(0, len(keys) - 1, num=min(_FINGERPRINT_ROWS, len(keys))).astype(np.int64))
        h.update(np.ascontiguousarray(np.round(unit[rows], 4), dtype=np.float32).tobytes())
    return h.hexdigest()


#: What installs each backend's package.
_PIP = {"faiss": "pip install faiss-cpu", "annoy": "pip install annoy"}
_SCALE_EXTRA = "or both with the [scale] extra: `pip install 'gensim-im2vec[scale]'`"


def _installed(backend: str) -> bool:
    try:
        importlib.import_module(backend)
    except ImportError:
        return False
    return True


def _resolve_backend(backend: str) -> str:
    """The backend to use; an ImportError naming the package to install when it is missing (an explicit
    backend used to fail later with a bare "No module named 'faiss'")."""
    if backend == "auto":
        for name in BACKENDS:
            if _installed(name):
                return name
        raise ImportError(
            f"ModalityIndexer needs faiss or annoy, and neither is installed: `{_PIP['faiss']}` (or "
            f"`{_PIP['annoy']}`), {_SCALE_EXTRA}."
        )
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected 'auto' or one of {BACKENDS}, got {backend!r}.")
    if not _installed(backend):
        raise ImportError(
            f"backend={backend!r} needs the {backend} package, which is not installed: `{_PIP[backend]}`, "
            f"{_SCALE_EXTRA} (or backend='auto': whichever is installed)."
        )
    return backend


# ----------------------------------------------------------------------------- per-modality indexes


#: Fewest vectors a product quantiser trains on: one 8-bit codebook has 256 centroids, and faiss's
#: k-means refuses fewer points than centroids. A smaller "ivfpq" sub-index keeps exact vectors.
PQ_MIN_VECTORS = 256
_PQ_BITS = 8  # bits per sub-quantiser code: pq_m bytes per vector
#: Vectors per k-means cell that faiss asks for (fewer: it warns): an IVF sub-index of n vectors has at most
#: ``n // 39`` cells (``nlist``), however many are asked for.
IVF_POINTS_PER_CELL = 39
#: Training vectors faiss advises for one codebook (39 per centroid); fewer train coarser codes.
_PQ_ADVISED = IVF_POINTS_PER_CELL * 256


def _divisors(d: int) -> list[int]:
    return [v for v in range(1, d + 1) if d % v == 0]


def _default_pq_m(d: int) -> int:
    """The smallest divisor of `d` that is ≥ d / 4: at most 4 dimensions per sub-quantiser (50 bytes
    per vector at dim 200, 25 at 100, 32 at 128)."""
    return min(v for v in _divisors(d) if 4 * v >= d)


def _check_pq_m(pq_m: int | None, d: int) -> int:
    """`pq_m` resolved for vectors of dimension `d` (None: :func:`_default_pq_m`); a ValueError naming
    the divisors of `d` when it does not divide it."""
    if pq_m is None:
        return _default_pq_m(d)
    if d % pq_m:
        raise ValueError(
            f"pq_m: {pq_m} does not divide the vectors' dimension {d} (each sub-quantiser encodes d / pq_m of "
            f"them); choose one of its divisors: {', '.join(map(str, _divisors(d)))} (bytes per vector; more: "
            f"better recall, more memory), or pq_m=None ({_default_pq_m(d)})."
        )
    return int(pq_m)


_BLAS_LOCK = threading.Lock()
#: The builds inside :func:`_blas_distances` now, and faiss's threshold before the first of them.
_BLAS_STATE = {"users": 0, "before": None}


@contextlib.contextmanager
def _blas_distances(on: bool):
    """faiss's k-means through BLAS for the duration (``distance_compute_blas_threshold``, restored
    after): faiss-cpu 1.15 computes distances without BLAS below 128,000 query rows, and its k-means of
    a PQ codebook in fewer than 8 dimensions (pq_m > dim / 8) then took 0.34 s instead of 0.03 s per
    codebook on 16k points: 17 s instead of 1.6 s for pq_m=50 at dim 200.

    The threshold is process-wide: builds on several threads at once share one change, made by the
    first to begin and undone by the last to end (each restoring what it found left it lowered for
    good when two overlapped)."""
    import faiss

    cvar = getattr(faiss, "cvar", None)
    if not on or getattr(cvar, "distance_compute_blas_threshold", None) is None:
        yield
        return
    with _BLAS_LOCK:
        if not _BLAS_STATE["users"]:
            _BLAS_STATE["before"] = before = cvar.distance_compute_blas_threshold
            cvar.distance_compute_blas_threshold = min(before, 20)
        _BLAS_STATE["users"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["users"] -= 1
            if not _BLAS_STATE["users"]:
                cvar.distance_compute_blas_threshold = _BLAS_STATE["before"]


class _FaissPart:
    """faiss over unit vectors with inner product (= cosine): HNSW graph, IVF lists of the vectors,
    or IVF lists of product-quantised codes re-ranked by the model's own rows ("ivfpq")."""

    ext = "faiss"

    def __init__(self, index, labels: list[str], params: dict, rows: _UnitRows | None = None) -> None:
        import faiss

        self.index = index
        self.labels = labels
        self.ef_search = int(params["ef_search"])
        self.nprobe = int(params["nprobe"])
        self.rerank = int(params.get("rerank") or 1)
        # the model's rows the PQ candidates are re-ranked by (None: PQ scores only)
        self.rows = rows if isinstance(index, faiss.IndexIVFPQ) else None

    @classmethod
    def build(cls, unit: np.ndarray, labels: list[str], params: dict, name: str = "vectors"):
        import faiss

        d = unit.shape[1]
        n = len(unit)
        kind = params["kind"]
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, params["m"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params["ef_construction"]
        else:
            nlist = params["nlist"] or int(4 * np.sqrt(max(n, 1)))
            nlist = max(1, min(nlist, n // IVF_POINTS_PER_CELL))  # (ModalityIndexer._build says a given one capped)
            train = 64 * nlist
            if kind == "ivfpq" and n >= PQ_MIN_VECTORS:
                pq_m = _check_pq_m(params.get("pq_m"), d)
                index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, pq_m, _PQ_BITS, faiss.METRIC_INNER_PRODUCT)
                train = max(train, 64 * 256)  # the codebooks' k-means subsamples 256 per centroid
                if n < _PQ_ADVISED:
                    logger.info("ivfpq %s: %i vectors train the 256-centroid codebooks (faiss advises >= %i): "
                                "coarser PQ scores, which the re-rank corrects", name, n, _PQ_ADVISED)
                    index.pq.cp.min_points_per_centroid = 1  # said here once instead of faiss's warning per codebook
            else:
                if kind == "ivfpq":
                    logger.info("ivfpq %s: %i vectors, fewer than the %i a product quantiser's codebook trains on: "
                                "this sub-index keeps them exactly (IVF-Flat, %i kB)", name, n, PQ_MIN_VECTORS,
                                n * d * 4 // 1024)
                index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            if nlist == 1:  # one cell, its centroid the mean: faiss's "provide at least 39 training points" is noise
                index.cp.min_points_per_centroid = 1
            if n:
                rng = np.random.default_rng(params["seed"])
                take = np.sort(rng.choice(n, size=min(n, train), replace=False))
                with _blas_distances(kind == "ivfpq"):
                    index.train(np.ascontiguousarray(unit[take], dtype=np.float32))
        for block in unit.blocks() if isinstance(unit, _UnitRows) else [unit]:
            if len(block):
                index.add(np.ascontiguousarray(block, dtype=np.float32))
        return cls(index, labels, params, unit if isinstance(unit, _UnitRows) else None)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        import faiss

        k = min(int(k), len(self.labels))
        if k <= 0:
            return []
        q = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        if isinstance(self.index, faiss.IndexHNSWFlat):
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        else:
            params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        rerank = self.rows is not None and self.rerank > 1
        sims, ids = self.index.search(q, min(k * self.rerank, len(self.labels)) if rerank else k, params=params)
        if not rerank:
            return [(self.labels[i], float(s)) for i, s in zip(ids[0], sims[0]) if i >= 0]
        # the PQ candidates by their exact cosines, read from the model's own (memory-mapped) rows
        cand = ids[0][ids[0] >= 0]
        moved = self.rows.moved(cand, self.labels)
        if moved is not None:  # the rows are another key's now: their cosines would be given under these keys
            label, now = moved
            there = f"its row holds {now!r} now" if now is not None else "the model has fewer rows now"
            raise ValueError(
                f"this IVF-PQ index re-ranks by its model's rows, and the model's vocabulary changed since it was "
                f"built: {label!r} is no longer at its row ({there}). Rebuild the index from the model as it is: "
                f"ModalityIndexer(model, kind='ivfpq', ...)."
            )
        cos = self.rows.cosines(cand, q[0])
        best = np.argsort(-cos, kind="stable")[:k]
        return [(self.labels[cand[j]], float(cos[j])) for j in best]

    def save(self, fname: str) -> None:
        import faiss

        # through a Python file, not faiss's own: faiss's writer says a failed last flush (a full disk at fclose)
        # only on stderr ("file ... close error") and returns, leaving a truncated file that reads as written; a
        # failed write it raises as a RuntimeError with the C++ message. Python raises both as an OSError with errno
        # (faiss passes on the callback's exception).
        with open(fname, "wb") as f:
            faiss.write_index(self.index, faiss.PyCallbackIOWriter(f.write))

    @classmethod
    def load(cls, fname: str, labels: list[str], params: dict, rows: _UnitRows | None = None) -> _FaissPart:
        import faiss

        return cls(faiss.read_index(fname), labels, params, rows)


#: How Annoy says a failed write of its index file (``AnnoyIndex.save``): an OSError without errno, with C's
#: errno in its text ("Unable to write: No space left on device (28)"; annoylib's ``set_error_from_errno``).
_ANNOY_ERROR = re.compile(r"Unable to (open|write|close): .* \((\d+)\)")


def _annoy_class():
    from gensim.similarities.annoy import AnnoyIndexer

    class _AnnoyPart(AnnoyIndexer):
        """gensim's AnnoyIndexer, plus Annoy's ``search_k`` (gensim's uses ``n × num_trees``,
        too few nodes for recall ≥ 0.95 in 100-300 dims)."""

        ext = "annoy"

        def __init__(self, search_k: int | None = None, num_trees: int = 100) -> None:
            super().__init__()
            self.search_k = search_k
            self.num_trees = int(num_trees)

        @classmethod
        def build(cls, unit, labels, *, num_trees: int, search_k: int | None, seed: int):
            from annoy import AnnoyIndex

            self = cls(search_k, num_trees)
            index = AnnoyIndex(unit.shape[1], "angular")
            index.set_seed(int(seed))
            i = 0
            for block in unit.blocks() if isinstance(unit, _UnitRows) else [unit]:
                for v in block:
                    index.add_item(i, v)
                    i += 1
            index.build(self.num_trees)
            self.index, self.labels = index, labels
            self.model = _Dim(unit.shape[1])  # AnnoyIndexer.save reads model.vector_size
            return self

        def search(self, vector, k):
            k = min(int(k), len(self.labels))
            if k <= 0:
                return []
            search_k = self.search_k if self.search_k is not None else ANNOY_SEARCH_FACTOR * k * self.num_trees
            ids, dist = self.index.get_nns_by_vector(vector, k, search_k=search_k, include_distances=True)
            # angular distance d = sqrt(2 - 2 cos)  →  cos = 1 - d² / 2 (as gensim's AnnoyIndexer)
            return [(self.labels[i], 1.0 - d * d / 2.0) for i, d in zip(ids, dist)]

        def save(self, fname, *args, **kwargs) -> None:
            """gensim's save (the index at `fname`, its labels at ``fname + ".dict"``), its errors as OSErrors with
            errno that name the file: Annoy says them as an OSError without errno ("Unable to write: No space left
            on device (28)"), the labels' write names no file."""
            try:
                super().save(fname, *args, **kwargs)
            except OSError as e:
                m = _ANNOY_ERROR.fullmatch(e.args[0]) if e.errno is None and len(e.args) == 1 and isinstance(
                    e.args[0], str) else None
                if m is not None:  # Annoy's, of the index file
                    raise OSError(int(m[2]), os.strerror(int(m[2])), fname) from e
                if e.errno is not None and e.filename is None:  # Python's, of the labels
                    raise OSError(e.errno, e.strerror, fname + ".dict") from e
                raise

        @classmethod
        def load(cls, fname, labels, params):
            self = cls(params.get("search_k"), params.get("num_trees") or 100)
            AnnoyIndexer.load(self, fname)  # memory-maps the index file
            if list(self.labels) != labels:
                raise ValueError(f"{fname}: its labels differ from the model's keys; rebuild the index.")
            self.labels = labels
            self.model = _Dim(params["dim"])
            return self

    return _AnnoyPart


class _Dim:
    def __init__(self, vector_size: int) -> None:
        self.vector_size = vector_size


# ----------------------------------------------------------------------------- the indexer


class ModalityIndexer:
    """Approximate cosine neighbours over a model's words and images, one index per modality.

    Parameters
    ----------
    model : Im2Vec, Word2Vec or KeyedVectors, optional
        The vectors to index (``model.wv``). None: an empty indexer for :meth:`load`.
    backend : {"auto", "faiss", "annoy"}
        Index engine; "auto" prefers faiss.
    modalities : sequence of {"words", "tags", "images"}
        Sub-indexes to build (default words and images); leaving one out saves its build time and
        memory. "tags": the words of an Im2Vec model's image documents only, so that an image's
        nearest tags (``Im2Vec.most_similar_tags``) come from an index too; a few thousand to a
        few million keys, beside the images' hundreds of millions.
    image_prefix : str
        For a plain Word2Vec/KeyedVectors: keys starting with it are images. An Im2Vec model
        says itself which keys are images.
    kind : {"hnsw", "ivf", "ivfpq"}
        faiss index type. "hnsw": a graph, fastest queries, slow build (~1-2 min per million
        vectors per core). "ivf": inverted lists over k-means cells, builds several times faster,
        queries scan ``nprobe`` cells. Both hold a copy of every vector (``4·dim`` bytes each: 38.5 GB
        at 100M × 100). "ivfpq": the same cells holding ``pq_m``-byte product-quantised codes instead
        (+ 8 bytes of faiss's id), whose ``rerank × topn`` best candidates are re-ranked by their exact
        cosines read from the model's own rows (``model.wv.vectors``, memory-mapped by
        ``Im2Vec.load(path, mmap="r")``): no private copy of the vectors, exact similarities returned.
        A sub-index of fewer than :data:`PQ_MIN_VECTORS` vectors (too few to train a codebook) keeps
        them exactly (IVF-Flat).
    m : int
        faiss: HNSW links per node (16-64; more: better recall, more memory: ``8·m`` bytes/vector).
    ef_construction : int
        faiss: build-time candidate list (40-200; more: better graph, slower build).
    ef_search : int
        faiss: query-time candidate list (≥ topn; 64-1024). The recall/latency knob, also after
        building (:meth:`set_search`, :meth:`load`). Queries from one modality into the other's
        index (a word's nearest images, an image's nearest words) need far more than queries
        within one: on the demo's model recall@10 word → images 0.81 / 0.94 / 0.97 and image →
        words 0.75 / 0.87 / 0.91 at 128 / 512 / 1024, word → words and image → images ≥ 0.99 at
        all three (:meth:`recall` measures it on any model; ``im2vec index`` prints it).
    nlist : int, optional
        faiss IVF and IVF-PQ: number of k-means cells (default ``4·√n``, at most ``n / 39``). One
        above ``n / 39`` for a sub-index of n vectors is lowered to it, with a warning naming the
        cells each sub-index used.
    nprobe : int
        faiss IVF and IVF-PQ: cells scanned per query (8-128). The recall/latency knob, also after
        building.
    pq_m : int, optional
        faiss IVF-PQ: sub-quantisers, i.e. bytes of code per vector (8 bits each); must divide the
        vectors' dimension (at dim 200: 20, 25, 40, 50, 100, 200). More: PQ scores closer to the
        cosines (fewer candidates needed), more memory. None: the smallest divisor ≥ dim / 4 (50 at
        dim 200, 25 at 100).
    rerank : int
        faiss IVF-PQ: candidates per result, an int >= 1 (4-16 typical; no upper limit):
        ``rerank × topn`` candidates by PQ score are re-ranked by their exact cosines from the
        model's rows. More: better recall, more rows read per query; at ``rerank × topn`` ≥ the
        sub-index's size every vector the probed cells hold is re-ranked. 1: PQ scores only
        (approximate similarities, no read of the model's vectors). A recall/latency knob, also
        after building.
    num_trees : int
        annoy: trees (10-200; more: better recall, bigger file, slower build).
    search_k : int, optional
        annoy: nodes inspected per query (default :data:`ANNOY_SEARCH_FACTOR` ``× topn ×
        num_trees``; annoy's own default, ``topn × num_trees``, found 0.37 of a word's nearest
        images on the demo's model). The recall/latency knob, also after building.
    seed : int
        annoy: random seed of the trees.

    Attributes
    ----------
    words, tags, images : ModalityIndexer
        Views answering from one sub-index only (pass them as ``indexer=``); ``tags`` needs
        ``modalities`` with "tags".
    backend : str
    fingerprint : str
        Hash of the indexed keys and vectors (checked by :meth:`load`).
    path : str or None
        The manifest :meth:`load` read it from (None: built here).
    build_seconds : float
    """

    def __init__(
        self,
        model=None,
        *,
        backend: str = "auto",
        modalities: Sequence[str] = MODALITIES,
        image_prefix: str = IMAGE_PREFIX,
        kind: str = "hnsw",
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 512,
        nlist: int | None = None,
        nprobe: int = 32,
        pq_m: int | None = None,
        rerank: int = 8,
        num_trees: int = 100,
        search_k: int | None = None,
        seed: int = 0,
    ) -> None:
        modalities = tuple(modalities)
        bad = [x for x in modalities if x not in ALL_MODALITIES]
        if bad or not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities: expected a non-empty subset of {ALL_MODALITIES}, got {modalities!r}.")
        for name, val, lo in (("m", m, 2), ("ef_construction", ef_construction, 1), ("ef_search", ef_search, 1),
                              ("num_trees", num_trees, 1)):
            if not is_int(val) or val < lo:
                raise ValueError(f"{name}: expected an int >= {lo}, got {val!r}.")
        if kind not in FAISS_KINDS:
            raise ValueError(f"kind: expected 'hnsw', 'ivf' or 'ivfpq' (faiss index type), got {kind!r}.")
        if nlist is not None and (not is_int(nlist) or nlist < 1):
            raise ValueError(f"nlist: expected a positive int or None, got {nlist!r}.")
        if not is_int(nprobe) or nprobe < 1:
            raise ValueError(f"nprobe: expected an int >= 1, got {nprobe!r}.")
        if pq_m is not None and (not is_int(pq_m) or pq_m < 1):
            raise ValueError(f"pq_m: expected a positive int (bytes per vector; a divisor of the dimension) or None "
                             f"(the smallest divisor >= dim / 4), got {pq_m!r}.")
        _check_rerank(rerank)
        if search_k is not None and (not is_int(search_k) or search_k < 1):
            raise ValueError(f"search_k: expected a positive int or None, got {search_k!r}.")
        self.backend = _resolve_backend(backend)
        if pq_m is not None and (self.backend != "faiss" or kind != "ivfpq"):
            raise ValueError(f"pq_m: the bytes per vector of an IVF-PQ index, given for a {self.backend} "
                             f"{kind if self.backend == 'faiss' else ''} index, which keeps exact vectors; pass "
                             f"kind='ivfpq' (faiss), or leave pq_m out.".replace("  ", " "))
        self.image_prefix = image_prefix
        self.params = {
            "kind": kind, "nlist": None if nlist is None else int(nlist), "nprobe": int(nprobe),
            "pq_m": None if pq_m is None else int(pq_m), "rerank": int(rerank),
            "m": int(m), "ef_construction": int(ef_construction), "ef_search": int(ef_search),
            "num_trees": int(num_trees), "search_k": None if search_k is None else int(search_k),
            "seed": int(seed),
        }
        self._parts: dict[str, object] = {}
        self._active: tuple[str, ...] = _default_view(modalities)
        self.fingerprint: str | None = None
        self.path: str | None = None
        self.build_seconds = 0.0
        if model is not None:
            self._build(model, modalities)

    # -- building ----------------------------------------------------------------------------

    def _build(self, model, modalities) -> None:
        kv = _keyed_vectors(model)
        if self.backend == "faiss" and self.params["kind"] == "ivfpq":  # before any pass over the vectors
            self.params["pq_m"] = _check_pq_m(self.params["pq_m"], int(kv.vector_size))
        t0 = time.perf_counter()
        unit = _UnitRows(kv)
        _check_finite_rows(kv)
        is_img = image_mask(model, self.image_prefix)
        self.dim = int(kv.vector_size)
        self.fingerprint = _fingerprint(kv.index_to_key, unit)
        p = self.params
        for modality in modalities:
            sel = _selection(model, modality, is_img)
            labels = [kv.index_to_key[i] for i in sel]
            vecs = _UnitRows(kv, sel)
            t1 = time.perf_counter()
            if self.backend == "faiss":
                part = _FaissPart.build(vecs, labels, p, name=modality)
            else:
                part = _annoy_class().build(vecs, labels, num_trees=p["num_trees"], search_k=p["search_k"],
                                            seed=p["seed"])
            self._parts[modality] = part
            cells = getattr(getattr(part, "index", None), "nlist", None) if self.backend == "faiss" else None
            logger.info("ANN %s index over %i %s (dim %i%s) built in %.1fs", self.backend, len(labels), modality,
                        self.dim, f", {cells} cells" if cells is not None else "", time.perf_counter() - t1)
        self.build_seconds = time.perf_counter() - t0
        self._say_capped_nlist()

    def _say_capped_nlist(self) -> None:
        """One warning when a given `nlist` was more cells than a sub-index's vectors train: the cells
        each used (faiss's k-means wants :data:`IVF_POINTS_PER_CELL` vectors a cell), and why."""
        asked = self.params["nlist"]
        if self.backend != "faiss" or self.params["kind"] == "hnsw" or asked is None:
            return
        used = {m: (getattr(part.index, "nlist", asked), len(part.labels)) for m, part in self._parts.items()}
        capped = {m: v for m, v in used.items() if v[0] < asked}
        if capped:
            logger.warning(
                "nlist %i: more k-means cells than the vectors of %s train (faiss asks for >= %i vectors a cell, so n "
                "vectors make at most n // %i cells); used %s. The index is built and usable as it is (one cell is "
                "searched whole); nlist <= %i is used as given by every sub-index, and no nlist gives 4·√n cells, "
                "capped the same way.",
                asked, "these sub-indexes" if len(capped) > 1 else f"the {next(iter(capped))} sub-index",
                IVF_POINTS_PER_CELL, IVF_POINTS_PER_CELL,
                ", ".join(f"{m} {c} cell{'s' if c != 1 else ''} ({n} vectors)" for m, (c, n) in capped.items()),
                max(1, min(n for _, n in used.values()) // IVF_POINTS_PER_CELL),
            )  # fmt: skip

    # -- views -------------------------------------------------------------------------------

    def restrict(self, modality: str | None) -> ModalityIndexer:
        """A view answering from one modality's index (``"words"``/``"tags"``/``"images"``), or
        all it has (None; the tags only when no words index holds them already).

        The view shares the indexes; no copy is made.
        """
        if modality is None:
            want = _default_view(tuple(self._parts))
        elif modality in ALL_MODALITIES:
            want = (modality,)
        else:
            raise ValueError(f"restrict: expected 'words', 'tags', 'images' or None, got {modality!r}.")
        missing = [m for m in want if m not in self._parts]
        if missing:
            raise ValueError(
                f"restrict: this indexer has no {missing[0]} index (built with modalities="
                f"{tuple(self._parts)!r}); rebuild it with {missing[0]!r} among its modalities."
            )
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._active = want
        return view

    @property
    def words(self) -> ModalityIndexer:
        return self.restrict("words")

    @property
    def tags(self) -> ModalityIndexer:
        return self.restrict("tags")

    @property
    def images(self) -> ModalityIndexer:
        return self.restrict("images")

    def __len__(self) -> int:
        return sum(len(self._parts[m].labels) for m in self._active if m in self._parts)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{m}={len(self._parts[m].labels)}" for m in self._active if m in self._parts)
        return f"ModalityIndexer(backend={self.backend!r}, {sizes})"

    def set_search(self, *, ef_search: int | None = None, nprobe: int | None = None,
                   search_k: int | None = None, rerank: int | None = None) -> ModalityIndexer:
        """Change the query-time recall/latency knobs of a built or loaded index (its views too):
        faiss HNSW's `ef_search`, faiss IVF's and IVF-PQ's `nprobe`, IVF-PQ's `rerank`, annoy's
        `search_k`. Those not given stay. :meth:`save` records them. Returns the indexer.

        >>> import numpy as np
        >>> from gensim.models import KeyedVectors
        >>> kv = KeyedVectors(8)
        >>> kv.add_vectors([f"w{i}" for i in range(50)], np.random.default_rng(0).normal(size=(50, 8)))
        >>> idx = ModalityIndexer(kv, backend="faiss", modalities=("words",)).set_search(ef_search=64)
        >>> idx.params["ef_search"]
        64
        """
        if rerank is not None:
            _check_rerank(rerank)
        for name, value in (("ef_search", ef_search), ("nprobe", nprobe), ("search_k", search_k),
                            ("rerank", rerank)):
            if value is None:
                continue
            if not is_int(value) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}.")
            self.params[name] = int(value)
            for part in self._parts.values():
                if hasattr(part, name):
                    setattr(part, name, int(value))
        return self

    def recall(self, model, *, queries: int = 100, topn: int = 10, seed: int = 0) -> dict[str, float]:
        """Recall@`topn` of this index against the exact search, per direction.

        `queries` keys drawn from each built modality (the same generator seed each call) ask each
        sub-index for their `topn` nearest keys, the query itself left out; the exact answer is the
        cosine ranking over the same sub-index. Returns ``{"words -> images": 0.94, ...}`` for every
        pair of a query modality (words, images) and a sub-index. The exact side reads each
        sub-index's vectors once, in blocks, for the queries of both modalities.
        """
        kv = _keyed_vectors(model)
        is_img = image_mask(model, self.image_prefix)
        rng = np.random.default_rng(seed)
        key_row = kv.key_to_index
        drawn = {}  # query modality: its query rows
        for q_name, q_rows in (("words", np.flatnonzero(~is_img)), ("images", np.flatnonzero(is_img))):
            if len(q_rows):
                drawn[q_name] = np.sort(rng.choice(q_rows, size=min(queries, len(q_rows)), replace=False))
        if not drawn:
            return {}
        qs = np.concatenate(list(drawn.values()))
        Q = _UnitRows(kv, qs)[:]
        hits: dict[str, np.ndarray] = {}  # sub-index: recall of each query of qs
        for part_name, part in self._parts.items():
            pool = key_rows(key_row, part.labels, strict=True)  # (at once: a VocabKeyIndex searches its images together)
            k = min(topn, len(pool) - 1)
            if k < 1:
                continue
            exact = _exact_top(Q, _UnitRows(kv, pool), qs, pool, k)
            found = []
            for q, vec, truth in zip(qs, Q, exact):
                got = [key_row[key] for key, _ in part.search(vec, k + 1) if key_row[key] != q][:k]
                found.append(len(set(got) & truth) / k)
            hits[part_name] = np.asarray(found)
        out: dict[str, float] = {}
        lo = 0
        for q_name, q_rows in drawn.items():
            for part_name, h in hits.items():
                out[f"{q_name} -> {part_name}"] = float(np.mean(h[lo:lo + len(q_rows)]))
            lo += len(q_rows)
        return out

    # -- the gensim indexer protocol ---------------------------------------------------------

    def most_similar(self, vector, num_neighbors: int) -> list[tuple[str, float]]:
        """The `num_neighbors` keys with the highest (approximate) cosine to `vector`.

        This is the method gensim calls for ``most_similar(..., indexer=self)``.

        Parameters
        ----------
        vector : ndarray (vector_size,)
            Query; gensim passes the unit-length mean of the positive/negative keys.
        num_neighbors : int
            Number of results (fewer if the active indexes hold fewer keys).

        Returns
        -------
        list of (str, float)
            Keys and cosine similarities, best first. The query key itself is not left out
            (as with gensim's AnnoyIndexer); see :func:`ann_most_similar`.
        """
        if not self._parts:
            raise RuntimeError("this ModalityIndexer is empty; build it from a model or load() one.")
        num_neighbors = check_topn(num_neighbors, "num_neighbors", allow_none=False)
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim == 2 and len(vector) > 1:  # gensim asks one vector at a time
            raise ValueError(f"query: one vector, got a batch of shape {vector.shape}; ask one row at a time.")
        vector = vector.reshape(-1)
        if vector.shape[0] != self.dim:
            raise ValueError(f"query vector has dim {vector.shape[0]}, the index {self.dim}.")
        if not np.isfinite(vector).all():
            raise ValueError("query vector contains NaN or inf (an index answers such a query with arbitrary keys); "
                             "query with a finite vector, e.g. model.project(features) of finite features.")
        if not vector.any():
            raise ValueError("query vector is all zeros: it has no direction, every key is at cosine 0 to it and an "
                             "index answers arbitrary keys; query with a non-zero vector (positive and negative keys "
                             "that do not cancel out).")
        vector = l2_normalize(vector[None, :])[0]
        hits: list[tuple[str, float]] = []
        for modality in self._active:
            hits.extend(self._parts[modality].search(vector, num_neighbors))
        if len(self._active) > 1:
            hits.sort(key=lambda t: -t[1])
        return hits[:num_neighbors]

    # -- persistence -------------------------------------------------------------------------

    def save(self, fname) -> None:
        """Save beside the model: `fname` (JSON manifest) and ``fname.<modality>.<backend>``.

        Its folder is created if missing. An existing `fname` is replaced only when it is an earlier
        index's manifest: any other file (the model itself, a file of the user's) is refused. Once
        the new manifest is in place, the earlier save's part files it does not list (another
        backend, a modality left out) are removed.

        Parameters
        ----------
        fname : str or os.PathLike
            E.g. ``model_path + ".ann"``.

        Raises
        ------
        FileExistsError
            `fname` exists and is not a ModalityIndexer manifest; nothing is written.
        """
        if not self._parts:
            raise RuntimeError("nothing to save: this ModalityIndexer is empty.")
        fname = os.fspath(fname)
        earlier = _part_files(fname, _check_save_target(fname))  # read before the new manifest replaces it
        Path(fname).parent.mkdir(parents=True, exist_ok=True)  # the part files' folder (faiss/annoy do not make it)
        parts = {}
        temps = {}  # each part's files go to a temporary name first: all whole before any replaces the old
        try:
            for modality, part in self._parts.items():
                pf = f"{fname}.{modality}.{part.ext}"
                temps[pf] = tmp = str(temp_name(pf))
                try:
                    part.save(tmp)  # annoy writes tmp and tmp + ".dict"
                except OSError as e:
                    named = _named_at(e, tmp, pf)  # the part's own name (a full disk: with the free space there)
                    if named is e:
                        raise
                    raise named from e
                parts[modality] = {"file": os.path.basename(pf), "count": len(part.labels)}
            manifest = {
                "format": _FORMAT, "format_version": _FORMAT_VERSION, "backend": self.backend,
                "dim": self.dim, "image_prefix": self.image_prefix, "params": self.params, "parts": parts,
                "fingerprint": self.fingerprint,
            }
            # the manifest (it marks a complete save) is written whole before any part replaces the earlier save's,
            # so a full disk at it too leaves the earlier index as it was; it replaces the earlier manifest last
            with atomic_path(fname) as new_manifest:
                new_manifest.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
                for pf, tmp in temps.items():
                    for written in sorted(glob.glob(glob.escape(tmp) + "*")):
                        os.replace(written, pf + written[len(tmp):])
        finally:
            for tmp in temps.values():
                for left in glob.glob(glob.escape(tmp) + "*"):
                    os.unlink(left)
        # then the earlier save's parts the new manifest does not list (another backend or modalities)
        _remove_stale_parts(fname, earlier - _part_files(fname, manifest))
        logger.info("saved %r to %s", self, fname)

    @classmethod
    def load(cls, fname, model, *, check: bool = True, ef_search: int | None = None, nprobe: int | None = None,
             search_k: int | None = None, rerank: int | None = None) -> ModalityIndexer:
        """Load an index saved by :meth:`save` for `model` (the labels come from the model).

        Parameters
        ----------
        fname : str or os.PathLike
            The manifest written by :meth:`save`.
        model : Im2Vec, Word2Vec or KeyedVectors
            The model the index was built from (e.g. ``Im2Vec.load(path, mmap="r")``).
        check : bool
            Refuse an index whose keys or vectors differ from the model's (a stale index).
        ef_search, nprobe, search_k, rerank : int, optional
            Query-time knobs instead of the saved ones (:meth:`set_search`). An IVF-PQ index
            re-ranks by `model`'s rows: load the model with ``mmap="r"`` to keep its vectors out of
            private memory.

        Raises
        ------
        ValueError
            The index was built from other keys or vectors (when `check`), or the file is not
            a ModalityIndexer manifest.
        """
        fname = os.fspath(fname)
        try:
            with open(fname, encoding="utf-8") as f:
                man = json.load(f)
        except ValueError as e:  # not JSON, not UTF-8
            raise ValueError(f"{fname!r} is not a ModalityIndexer manifest (not JSON: {e}); give the file "
                             f"ModalityIndexer.save() or `im2vec index` wrote.") from None
        if not isinstance(man, dict) or man.get("format") != _FORMAT:
            what = man.get("format") if isinstance(man, dict) else type(man).__name__
            raise ValueError(f"{fname!r} is not a ModalityIndexer manifest (format {what!r}).")
        kv = _keyed_vectors(model)
        self = cls(backend=man["backend"], image_prefix=man["image_prefix"],
                   **{k: v for k, v in man["params"].items() if v is not None})
        self.params = dict(man["params"])
        self.dim = int(man["dim"])
        # (the fingerprint reads every key and vector: only when asked; query.open_index checks it itself)
        if check and _fingerprint(kv.index_to_key, _UnitRows(kv)) != man["fingerprint"]:
            built, have = _mismatch_counts(man, model)
            raise ValueError(
                f"ANN index {fname!r} was built from other keys or vectors ({built}) than this model's "
                f"({have}): the model was retrained, is another one, "
                f"or holds its keys in another order (save_word2vec_format writes them by count). Rebuild it: "
                f"ModalityIndexer(model).save({fname!r}) (or pass check=False)."
            )
        self.fingerprint = man["fingerprint"]
        self.path = fname
        is_img = image_mask(model, self.image_prefix)
        folder = Path(fname).parent
        part_cls = _FaissPart if self.backend == "faiss" else _annoy_class()
        for modality, info in man["parts"].items():
            if modality not in ALL_MODALITIES:
                raise ValueError(f"ANN index {fname!r}: unknown part {modality!r} (a newer version's index?); rebuild it.")
            sel = _selection(model, modality, is_img)
            labels = [kv.index_to_key[i] for i in sel]
            if len(labels) != info["count"]:
                raise ValueError(
                    f"ANN index {fname!r}: its {modality} index holds {info['count']} keys, the model has "
                    f"{len(labels)}; rebuild it."
                )
            part_file = str(folder / info["file"])
            # a faiss IVF-PQ part re-ranks by the model's own rows: it keeps a reader of them, not a copy
            rows = {"rows": _UnitRows(kv, sel)} if self.backend == "faiss" else {}
            try:
                self._parts[modality] = part_cls.load(part_file, labels, dict(self.params, dim=self.dim), **rows)
            except (RuntimeError, OSError, EOFError) as e:  # faiss/annoy: a missing or damaged file
                raise ValueError(f"ANN index {fname!r}: its {modality} index {part_file!r} cannot be read ({e}); "
                                 f"rebuild the index: ModalityIndexer(model).save({fname!r}).") from e
        self._active = _default_view(tuple(self._parts))
        return self.set_search(ef_search=ef_search, nprobe=nprobe, search_k=search_k, rerank=rerank)


def _named_at(error: OSError, tmp: str, target: str) -> OSError:
    """`error` of a write to the temporary name `tmp` (or a companion file, `tmp` + suffix; or no file named: a
    ``write``) as naming `target` (+ the suffix), the file it was written for; a full disk with the free space there
    (:func:`~gensim_im2vec.fileio.no_space_error`). An error naming another file, or without errno, is `error`."""
    name = error.filename
    if isinstance(name, str) and name.startswith(tmp):
        target += name[len(tmp):]
    elif name is not None:
        return error
    if is_no_space(error):
        return no_space_error(error, target)
    return error if error.errno is None else OSError(error.errno, error.strerror, target)


def _exact_top(Q: np.ndarray, base: _UnitRows, q_rows: np.ndarray, pool: np.ndarray, k: int) -> list[set]:
    """For each unit query row, the vocabulary rows of its `k` nearest of `pool` (by cosine; the
    query's own row left out), reading `base` (the pool's unit rows) once in blocks."""
    best_s = np.full((len(Q), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(Q), k), dtype=np.int64)
    lo = 0
    for block in base.blocks():
        S = Q @ block.T
        ids = pool[lo:lo + len(block)]
        S[ids[None, :] == q_rows[:, None]] = -np.inf
        lo += len(block)
        cand_s = np.concatenate([best_s, S], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(ids, S.shape)], axis=1)
        top = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, top, axis=1)
        best_i = np.take_along_axis(cand_i, top, axis=1)
    return [set(row) for row in best_i]


def _default_view(built: tuple[str, ...]) -> tuple[str, ...]:
    """The sub-indexes a query without a modality reads: all that were built, in a fixed order,
    but the tags only when no words index holds them already (a tag would come back twice)."""
    return tuple(m for m in ALL_MODALITIES if m in built and not (m == "tags" and "words" in built))


def _selection(model, modality: str, is_img: np.ndarray) -> np.ndarray:
    """Rows of ``model.wv`` that the `modality` sub-index holds."""
    if modality == "images":
        return np.flatnonzero(is_img)
    if modality == "words":
        return np.flatnonzero(~is_img)
    counts = getattr(model, "image_tag_counts", None)
    if not counts:
        raise ValueError("modalities: a 'tags' index needs an Im2Vec model whose images have documents (its "
                         "image_tag_counts: the words of the image documents); this model has none. Leave 'tags' out.")
    return np.flatnonzero(model._tag_mask())


def _count_keys(counts: dict[str, int], dim) -> str:
    """``words 251, tags 251 of them, images 1350: 1601 keys, dim 8``: the keys of each part, and
    the distinct keys of all (a tag is a word: the tags part is not added to the words part)."""
    among = "tags" in counts and "words" in counts
    shown = [f"{m} {counts[m]}{' of them' if m == 'tags' and among else ''}" for m in ALL_MODALITIES if m in counts]
    distinct = sum(n for m, n in counts.items() if not (m == "tags" and among))
    return f"{', '.join(shown)}: {distinct} keys" + (f", dim {dim}" if dim is not None else "")


def _mismatch_counts(man: dict, model) -> tuple[str, str]:
    """What a stale index was built from and what `model` has, part by part (the parts the index
    has, words and images when it says none), for the message that refuses it: like with like."""
    parts = man.get("parts") if isinstance(man.get("parts"), dict) else {}
    built = {m: int(info["count"]) for m, info in parts.items()
             if m in ALL_MODALITIES and isinstance(info, dict) and is_int(info.get("count"))}
    kv = _keyed_vectors(model)
    is_img = image_mask(model, man.get("image_prefix"))
    have: dict[str, int] = {}
    for m in [m for m in ALL_MODALITIES if m in built] or ["words", "images"]:
        try:
            have[m] = len(_selection(model, m, is_img))
        except ValueError:  # no tags in this model
            have[m] = 0
    index_side = _count_keys(built, man.get("dim")) if built else "other keys"
    return index_side, _count_keys(have, kv.vector_size)


_MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few hundred bytes; a model file is not read whole to find out


#: The files one part is saved as, by backend (suffixes of ``fname.<modality>.<backend>``): faiss
#: writes one; gensim's AnnoyIndexer the index and its labels (``.dict``).
_PART_SUFFIXES = {"faiss": ("",), "annoy": ("", ".dict")}


def _read_manifest(fname: str) -> dict | None:
    """The ModalityIndexer manifest at `fname` (JSON of our format), or None."""
    try:
        if os.path.getsize(fname) > _MAX_MANIFEST_BYTES:
            return None
        with open(fname, encoding="utf-8") as f:
            man = json.load(f)
    except (OSError, ValueError):
        return None
    return man if isinstance(man, dict) and man.get("format") == _FORMAT else None


def _part_files(fname: str, man: dict | None) -> set[str]:
    """The part files (paths) a manifest for `fname` lists: only the names :meth:`ModalityIndexer.save`
    gives (``fname.<modality>.<backend>`` and the backend's companions), so a hand-edited manifest
    can name no other file of the folder."""
    if man is None:
        return set()
    backend, parts = man.get("backend"), man.get("parts")
    if backend not in _PART_SUFFIXES or not isinstance(parts, dict):
        return set()
    folder, base = os.path.dirname(fname), os.path.basename(fname)
    files = set()
    for modality, info in parts.items():
        name = f"{base}.{modality}.{backend}"
        if modality in ALL_MODALITIES and isinstance(info, dict) and info.get("file") == name:
            files.update(os.path.join(folder, name + suffix) for suffix in _PART_SUFFIXES[backend])
    return files


def _remove_stale_parts(fname: str, stale: set[str]) -> None:
    """Remove an earlier save's part files that the new manifest does not list (another backend or
    modality); a file that cannot be removed is named in a warning, the save stands."""
    for path in sorted(stale):
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as e:
            logger.warning("index %s: cannot remove %s of an earlier save (%s), which the manifest no longer "
                           "lists; delete it by hand", fname, path, e)
            continue
        logger.info("index %s: removed %s of an earlier save (the new manifest does not list it)", fname, path)


def _check_save_target(fname: str) -> dict | None:
    """Refuse to save over a folder or a file that is not an earlier index (e.g. the model itself);
    returns the earlier index's manifest, or None when `fname` does not exist."""
    if os.path.isdir(fname):
        raise IsADirectoryError(f"{fname!r} is a folder; give the index a file name, e.g. the model's path + '.ann'.")
    if not os.path.lexists(fname):
        return None
    earlier = _read_manifest(fname)
    if earlier is None:
        raise FileExistsError(
            f"{fname!r} exists and is not a ModalityIndexer manifest (only an earlier index is replaced); saving "
            f"would destroy it. Give another name, e.g. the model's path + '.ann', or move that file."
        )
    return earlier


# ----------------------------------------------------------------------------- queries


def ann_most_similar(
    model,
    positive=None,
    negative=None,
    topn: int = 10,
    *,
    indexer: ModalityIndexer,
    restrict: str | None = None,
) -> list[tuple[str, float]]:
    """``most_similar`` with an approximate index and gensim's exact semantics.

    Like ``model.wv.most_similar(positive, negative, topn)``: the query keys are left out of
    the results, and several keys or vectors combine by their unit-length mean.

    Parameters
    ----------
    model : Im2Vec, Word2Vec or KeyedVectors
    positive, negative : key, vector or list of them, optional
    topn : int
        Number of results (an int >= 0; an index answers a fixed number, so None is refused).
    indexer : ModalityIndexer
        Built from `model`.
    restrict : {"words", "tags", "images", None}
        Return only words, only tags (an index built with "tags"), only images, or (None) what
        `indexer` answers: words and images, or one modality for a view such as ``indexer.images``.

    Returns
    -------
    list of (str, float)
        Keys and cosine similarities, best first.
    """
    kv = _keyed_vectors(model)
    topn = check_topn(topn, allow_none=False)
    positive, negative = query_items(positive), query_items(negative)
    check_query_vectors(kv, positive + negative)
    # the query's keys are left out, as gensim does: plain keys, indices and (key, weight) pairs
    rows = sorted({kv.get_index(k) for k in query_keys(positive + negative) if kv.has_index_for(k)})
    left_out = {kv.index_to_key[i] for i in rows}
    view = indexer if restrict is None else indexer.restrict(restrict)  # None kept a view's modality out
    fill_norms(kv)  # (gensim would scan every row for them inside the window below)
    with _scattered_reads(kv.vectors, np.asarray(rows, dtype=np.int64)):  # gensim reads the query's rows
        hits = kv.most_similar(positive=positive, negative=negative, topn=topn + len(left_out), indexer=view)
    return [(k, s) for k, s in hits if k not in left_out][:topn]


def cosine_neighbours(queries, base, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows of `base` nearest to each row of `queries` by cosine, exactly (scikit-learn's
    brute-force :class:`~sklearn.neighbors.NearestNeighbors`, cosine metric).

    Parameters
    ----------
    queries : array_like (n, d)
    base : array_like (m, d)
    k : int
        Neighbours per query, 1 to m (callers with fewer base rows than they want pass
        ``min(k, m)``).

    Returns
    -------
    rows : ndarray (n, k), int64
        Rows of `base`, nearest first.
    cosines : ndarray (n, k), float32
        Their cosine similarities to the query.

    Raises
    ------
    ValueError
        `k` not an int (``2.5``, ``True``), below 1, or above the base's m rows.

    >>> rows, cos = cosine_neighbours([[1.0, 0.0]], [[0.0, 1.0], [2.0, 0.1], [1.0, 1.0]], k=2)
    >>> rows.tolist(), [round(float(c), 3) for c in cos[0]]
    ([[1, 2]], [0.999, 0.707])
    """
    from sklearn.neighbors import NearestNeighbors

    base = np.asarray(base, dtype=np.float32)
    m = len(base)
    if not m:
        raise ValueError("cosine_neighbours: base has no rows, so there is no neighbour to find; give the (m, d) "
                         "vectors the neighbours are drawn from, m >= 1.")
    if not is_int(k) or not 1 <= k <= m:
        fix = ("give a whole number of neighbours" if not is_int(k) else "give k >= 1" if k < 1 else
               f"pass min(k, len(base)) to have all {m} where fewer than k are there")
        got = f"{k!r} ({type(k).__name__})" if not is_int(k) else repr(k)
        raise ValueError(f"cosine_neighbours: k must be an int from 1 to the base's {m} rows (neighbours per "
                         f"query), got {got}; {fix}.")
    nn = NearestNeighbors(n_neighbors=int(k), algorithm="brute", metric="cosine").fit(base)
    dist, rows = nn.kneighbors(np.asarray(queries, dtype=np.float32))
    return rows.astype(np.int64, copy=False), (1.0 - dist).astype(np.float32)
