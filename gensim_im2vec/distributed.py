"""Feature extraction past one machine, on Ray Data.

YFCC100M has 99.2M photos; one CNN forward per image is what outgrows a single machine.
:func:`extract_ray` cuts the image list into *parts* (``part_size`` images, whole batches),
runs them through ``Dataset.map_batches`` with one actor per GPU (CPU actors when the cluster
has no GPU), each actor a :class:`~gensim_im2vec.features.FeatureExtractor` that writes its part
as a :class:`~gensim_im2vec.store.FeatureStore` (sharded, committed, resumable), and finally
merges the parts by key into one store with :func:`merge_stores`:

    images ──► parts (plan files STORE.ray-parts/.plan/part-NNNNNN.json)
            ──ray.data map_batches(_PartExtractor, one actor per GPU)──► STORE.ray-parts/part-NNNNNN/
            ──merge_stores (identity checked, keys deduplicated)──► STORE (one consolidated FeatureStore)

Resumable at two levels: a finished part has a marker file (written last, listing every key its
store holds or skipped) and its images are not redone, also when a rerun cuts the list
differently (another batch size, a cluster with GPUs now, new images listed among the old ones):
finished work is found by key; a part whose actor died keeps its committed shards, so the rerun
redoes only that part's unfinished rows. The rerun of an interrupted ``mode="overwrite"`` keeps
the parts that run made.

The driver plans 100M images without a Python object per image: it reads the image list once (an
iterator, e.g. a generator over the YFCC metadata, or a folder, walked a folder at a time, is copied
to ``STORE.ray-parts/.plan/`` as it is read; a list is read again), keeps 128-bit hashes of the keys (duplicates found on them and
confirmed by the strings, so the error names the key), marks finished images in a byte per image,
one marker at a time, and writes each part's images still to do to a plan file: Ray is handed
part numbers and plan paths. ≈ 35-50 bytes per image at the peak of the planning, against ≈ 155
before (measured at 1M by ``benchmarks/bench_ray_plan.py``); the merge and the merged store's keys
(``FeatureStore`` holds them as Python strings) are what remains, ≈ 200 bytes per image (docs/scale.md §3).

Refused before any work (before Ray starts): a target that is not a feature store, a store or
parts of an unfinished run made with other settings (model, weights, layer, dtype,
preprocessing: :class:`~gensim_im2vec.store.StoreMismatchError` naming the field), a
``STORE.ray-parts/`` holding anything but parts (it is deleted after the merge), an unknown arch
or layer and weights that cannot be had (the extractor is built once on the driver), a Ray
address that does not answer (within :data:`ADDRESS_TIMEOUT` s), a second driver on the same
store (the lock of ``STORE.ray-parts/``), and, with ``on_changed="raise"``, images the target store
holds whose files changed since their extraction (the parts' stores record each file's stamp,
:func:`merge_stores` carries them into the target with the rows, and the driver compares them with
the files on a rerun, one ``os.stat`` per stored image given again; "warn", the default, names them
and counts them in the report). A part that fails on an actor does not stop the others;
the call then ends with one :class:`PartsFailedError` naming each failed part, its error and node,
keeping the finished parts for the rerun. The report's counts add up: ``extracted + already +
skipped == total``, with the skip reasons by kind, as :meth:`FeatureExtractor.extract
<gensim_im2vec.features.FeatureExtractor.extract>` reports them. Preprocessing, batching and the
model are the single-machine extractor's, so the features agree row for row.

On a local Ray (what the tests do; random weights need no download):

>>> import os, tempfile
>>> from PIL import Image
>>> from gensim_im2vec.distributed import extract_ray
>>> root = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(root, "photos"))
>>> for i, colour in enumerate(["red", "green", "blue", "white", "black"]):
...     Image.new("RGB", (48, 40), colour).save(os.path.join(root, "photos", f"{i}.png"))
>>> report = extract_ray(os.path.join(root, "photos"), os.path.join(root, "feats"),   # doctest: +SKIP
...                      arch="mobilenet_v3_small", weights=None, part_size=2, batch_size=2,
...                      ray_init={"num_cpus": 2})
>>> report.store.keys                                                               # doctest: +SKIP
['img:0', 'img:1', 'img:2', 'img:3', 'img:4']

On a cluster: ``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the
others (same Python environment; image paths visible to all nodes, e.g. a shared filesystem),
then ``im2vec extract-ray IMAGE_DIR -o STORE --address HEAD:6379``.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import logging
import marshal
import math
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gensim_im2vec.extras import missing_extra
from gensim_im2vec.fileio import atomic_write_json, check_output_folder
from gensim_im2vec.store import (
    IDENTITY_FIELDS,
    METADATA_FILE,
    STAMPS_FILE,
    FeatureStore,
    StoreMismatchError,
    _identity_diff,
    _key_row_blocks,
    _read_json,
    _read_stamps,
    _Underflow,
    check_store_folder,
    images_digest,
    is_store,
    unfinished_run,
)
from gensim_im2vec.validation import is_int

logger = logging.getLogger(__name__)

__all__ = ["PartsFailedError", "RayExtractionReport", "extract_ray", "merge_stores", "plan_parts"]

PARTS_SUFFIX = ".ray-parts"
#: What extract_ray writes in ``STORE.ray-parts/``: part stores and their finished markers.
_PART_NAME = re.compile(r"^part-\d{6,}(\.done\.json)?$")
_COPY_ROWS = 65536
_PROVENANCE_DROP = ("count", "last_shard", "created", "store_id", "updated", "package_version", "format_version", "pca")


# ----------------------------------------------------------------------------- merging


def _identity(meta) -> dict:
    return {f: meta.get(f) for f in IDENTITY_FIELDS}


class _WrittenKeys:
    """The keys a :class:`~gensim_im2vec.store.FeatureStoreWriter` holds (in the store, in committed
    shards, buffered), without a second set of them all (at 100M keys a set is ≈ 3-4 GB): its
    ``done_keys``, and the keys written since its last shard. Told of each ``write`` and ``skip``."""

    def __init__(self, writer) -> None:
        self.writer = writer
        self.buffered: set[str] = set()
        self.flushed = writer.rows_written

    def __contains__(self, key: str) -> bool:
        return key in self.writer.done_keys or key in self.buffered

    def add(self, keys) -> None:
        """After a ``write(keys)`` (or a ``skip``: no keys)."""
        if self.writer.rows_written != self.flushed:  # it committed a shard: every buffered row is in done_keys
            self.flushed = self.writer.rows_written
            self.buffered.clear()
        else:
            self.buffered.update(keys)


def _merge_writer(target, sources: Sequence, mode: str, shard_size: int):
    """:func:`merge_stores`' sources, opened and checked alike (no PCA on read, one identity), and the
    target's writer with their metadata (without the provenance of the first), PCA and shard size."""
    if isinstance(sources, (str, bytes, os.PathLike, FeatureStore)):  # its characters, or a store's keys
        raise TypeError(f"merge_stores: sources is a sequence of stores, got one {type(sources).__name__} "
                        f"({sources!r}); give a list, e.g. merge_stores(target, [source]).")
    stores = [s if isinstance(s, FeatureStore) else FeatureStore.open(s) for s in sources]
    if not stores:
        raise ValueError("merge_stores: no source stores given.")
    ref = stores[0]
    for s in stores:
        if (s.metadata.get("pca") or {}).get("applied") == "on_read":
            raise ValueError(f"merge_stores: {s.path} applies PCA on read; merge raw stores, then fit_pca().")
        diff = _identity_diff(_identity(ref.metadata), _identity(s.metadata))  # (a layer by its node)
        if diff:
            lines = "\n".join(
                f"  {f}: {ref.path.name} has {ref.metadata.get(f)!r}, {s.path.name} has {s.metadata.get(f)!r}"
                for f in diff
            )
            raise StoreMismatchError(
                f"cannot merge feature stores made with different settings:\n{lines}\nRe-extract "
                f"{s.path} with the same model/layer/dtype/preprocessing, or leave it out."
            )
    meta = {k: v for k, v in ref.metadata.items() if k not in _PROVENANCE_DROP}
    from gensim_im2vec.store import PCA

    pca = PCA.load(ref.path / "pca.npz") if ref.metadata.get("pca") else None
    writer = FeatureStore.create(target, dim=ref.dim, dtype=ref.metadata["dtype"], metadata=meta, mode=mode,
                                 shard_size=shard_size, pca=pca)
    return stores, writer


def merge_stores(target, sources: Sequence, *, mode: str = "extend", shard_size: int = _COPY_ROWS) -> FeatureStore:
    """Merge feature stores into `target` by key (first occurrence wins), refusing mixed models.

    A key skipped more than once keeps the first reason: the target's own, then the sources' in
    order; a key one store skipped and another stored is stored. Each row takes its image file's
    stamp along (:meth:`FeatureStore.file_stamps <gensim_im2vec.store.FeatureStore.file_stamps>`,
    read a chunk of rows at a time), so that an extraction into the merged store finds files changed
    since; rows of a source without stamps (made from arrays, or before stamps were recorded) are
    unstamped (:data:`~gensim_im2vec.store.NO_STAMP`) there too.

    Parameters
    ----------
    target : str or os.PathLike
        Store directory to create or extend (an existing store must have the same identity).
    sources : sequence of str, os.PathLike or FeatureStore
        Stores to merge, in order; their rows keep this order after the target's own.
    mode : {"extend", "create", "overwrite"}
        As :class:`~gensim_im2vec.store.FeatureStoreWriter`.
    shard_size : int
        Rows per committed shard of the target (a crash mid-merge keeps committed shards; a rerun
        skips their keys).

    Returns
    -------
    FeatureStore
        The merged store, opened memory-mapped.

    Raises
    ------
    StoreMismatchError
        Two sources (or a source and the target) were made by different models, layers, dtypes,
        preprocessing or PCA.
    ValueError
        No sources, or a source applies PCA on read (merge the raw stores, then fit the PCA).
    TypeError
        `sources` is one store (a path or a FeatureStore) instead of a sequence of them.
    """
    stores, writer = _merge_writer(target, sources, mode, shard_size)
    added = 0
    written = _WrittenKeys(writer)  # the first occurrence wins
    # a key skipped twice keeps the first reason: the target's own (extend), else the first source's
    skipped_here: set[str] = set(writer.skipped)
    try:
        for s in stores:
            # a store's keys are unique; an array (8 B a row), not a list of ints (≈ 36)
            rows = np.fromiter((i for i, k in enumerate(s.keys) if k not in written), dtype=np.int64)
            stamped = s._stamp_range()  # checked once per source; None: its rows go without stamps
            for lo in range(0, len(rows), _COPY_ROWS):
                chunk = rows[lo : lo + _COPY_ROWS]
                keys = [s.keys[i] for i in chunk]
                stamps = None if stamped is None else _read_stamps(s.path / STAMPS_FILE, stamped, len(s), chunk)
                writer.write(keys, np.asarray(s.raw_vectors[chunk]), stamps=stamps)
                written.add(keys)
                added += len(chunk)
            for k, reason in s.skipped.items():
                if k not in written and k not in skipped_here:
                    writer.skip(k, reason)
                    skipped_here.add(k)
                    written.add(())
    except BaseException:
        writer.abort()
        raise
    writer.close()
    n_stores = len(stores)
    del stores, written, rows, writer  # the sources' keys and the writer's set: not beside the merged store's keys
    out = FeatureStore.open(target)
    logger.info("merged %i store(s) into %s: %i rows added, %i in total", n_stores, target, added, len(out))
    return out


# ----------------------------------------------------------------------------- planning


#: In ``STORE.ray-parts/``: this run's plan, deleted when the run ends (and by the next run, after a
#: kill): ``part-NNNNNN.json``, the images of each part still to extract (a JSON list of ``[key, path]``,
#: what an actor reads), and :data:`_SPOOL`, the image list as it was read when it was given as an
#: iterator. Hidden: not a part, and no reason to refuse the folder.
_PLAN_DIR = ".plan"
_SPOOL = "images.marshal"
#: Images read, hashed, spooled or looked up at a time while planning (the driver's buffers).
_SCAN_CHUNK = 65536


def _key_hashes(keys: Sequence[str]) -> np.ndarray:
    """128 bits of BLAKE2b of each key, as an ``(n, 2)`` uint64 array: how the driver finds duplicate
    and finished keys without a set of them. Two keys share the first 64 bits with probability
    ≈ N²/2⁶⁵ (≈ 3·10⁻⁴ at 100M), so a duplicate found on them is confirmed by the key strings; a
    finished key is matched on all 128 bits (a false match: ≈ 10⁻²³ at 100M × 100M)."""
    blake = hashlib.blake2b
    data = b"".join([blake(k.encode("utf-8", "surrogatepass"), digest_size=16).digest() for k in keys])
    return np.frombuffer(data, dtype="<u8").reshape(len(keys), 2)


class _KeyIndex:
    """The run's keys by hash, for lookups: the first 64 bits sorted, the second 64 bits and the
    image's position in the list in the same order (24 bytes per image; no key strings)."""

    def __init__(self, firsts: list[np.ndarray], seconds: list[np.ndarray]) -> None:
        """From the hashes' halves in list order, in chunks (the lists are emptied: at most 32 bytes
        per image are held at once)."""
        first = np.concatenate(firsts) if firsts else np.zeros(0, dtype="<u8")
        firsts.clear()
        self.order = np.argsort(first, kind="stable")  # stable: equal first halves in list order
        self.first = first[self.order]
        del first
        second = np.concatenate(seconds) if seconds else np.zeros(0, dtype="<u8")
        seconds.clear()
        self.second = second[self.order]

    def __len__(self) -> int:
        return len(self.order)

    def collisions(self) -> list[np.ndarray]:
        """Groups of list positions (ascending) whose keys share the first 64 bits of their hash."""
        same = np.flatnonzero(self.first[1:] == self.first[:-1])  # sorted i with first[i] == first[i + 1]
        if not same.size:
            return []
        runs = np.split(same, np.flatnonzero(np.diff(same) != 1) + 1)
        return [np.sort(self.order[run[0] : run[-1] + 2]) for run in runs]

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        """The list position of each of `keys` (all 128 bits equal), -1 for a key not in the list:
        an array aligned with `keys`."""
        out = np.full(len(keys), -1, dtype=np.int64)
        if not len(keys) or not len(self):
            return out
        q = _key_hashes(keys)
        lo = np.searchsorted(self.first, q[:, 0], "left")
        hi = np.searchsorted(self.first, q[:, 0], "right")
        one = np.flatnonzero(hi - lo == 1)
        hit = one[self.second[lo[one]] == q[one, 1]]
        out[hit] = self.order[lo[hit]]
        for j in np.flatnonzero(hi - lo > 1).tolist():  # first halves shared: the second decides
            same = np.flatnonzero(self.second[lo[j] : hi[j]] == q[j, 1])
            if same.size:
                out[j] = self.order[lo[j] + same[0]]
        return out

    def positions(self, keys: Sequence[str]) -> np.ndarray:
        """The list positions of those of `keys` that are in the list (all 128 bits equal)."""
        pos = self.lookup(keys)
        return pos[pos >= 0]


class _Images:
    """The run's ``(key, path str)`` pairs, read as often as the driver needs them, without a list of
    its own: the caller's sequence again, or, for an iterator (a generator over a YFCC metadata file)
    or a folder (walked once, :func:`~gensim_im2vec.features.iter_images`), the spool it was copied to
    as it was read (``marshal`` chunks in ``STORE.ray-parts/.plan/``, read back only by this process)."""

    def __init__(self, images, prefix: str, key_rule: str | None = None) -> None:
        if isinstance(images, (str, os.PathLike)):  # walked a folder at a time and spooled, as a generator is
            from gensim_im2vec.features import images_in

            images = images_in(images, prefix, key_rule or "path")  # keyed by the run's rule
        self._seq = images if isinstance(images, Sequence) else None
        self._iter = None if self._seq is not None else images
        self._spool: Path | None = None
        self.n = 0

    def _given(self):
        for k, p in self._seq if self._seq is not None else self._iter:
            p = os.fspath(p)
            # exact str (a str subclass, e.g. from a metadata reader, cannot be spooled by marshal)
            yield str(k), (str(p) if isinstance(p, str) else p)

    def chunks(self):
        """The pairs in list order, in lists of up to :data:`_SCAN_CHUNK`."""
        if self._spool is not None:
            with open(self._spool, "rb") as f:
                while True:
                    try:
                        yield marshal.load(f)
                    except EOFError:
                        return
        chunk = []
        for pair in self._given():
            chunk.append(pair)
            if len(chunk) == _SCAN_CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def __iter__(self):
        for chunk in self.chunks():
            yield from chunk

    def scan(self, plan_dir: Path) -> tuple[str, _KeyIndex]:
        """Read the list once: its :func:`~gensim_im2vec.store.images_digest` and its keys' hashes
        (an iterator is spooled on the way). Duplicate keys are refused here, naming one."""
        if self._iter is None:
            digest, index = self._scan(None)
        else:
            plan_dir.mkdir(parents=True, exist_ok=True)
            spool = plan_dir / _SPOOL
            with open(spool, "wb") as f:  # not atomic: a plan of this run only, read back by it alone
                digest, index = self._scan(f)
            self._spool, self._iter = spool, None
        self._refuse_duplicates(index)
        return digest, index

    def _scan(self, spool) -> tuple[str, _KeyIndex]:
        firsts: list[np.ndarray] = []
        seconds: list[np.ndarray] = []
        chunk: list[tuple[str, str]] = []

        def flush() -> None:
            h = _key_hashes([k for k, _ in chunk])
            firsts.append(h[:, 0].copy())
            seconds.append(h[:, 1].copy())
            if spool is not None:
                marshal.dump(chunk, spool)
            chunk.clear()

        def pairs():
            for pair in self._given():
                chunk.append(pair)
                if len(chunk) == _SCAN_CHUNK:
                    flush()
                yield pair
            if chunk or not firsts:
                flush()

        digest = images_digest(pairs())
        index = _KeyIndex(firsts, seconds)
        self.n = len(index)
        return digest, index

    def _refuse_duplicates(self, index: _KeyIndex) -> None:
        """Refuse a key given twice (the first such pair in list order), confirmed by the key strings:
        keys that only share the hash's first 64 bits are not duplicates."""
        groups = index.collisions()
        if not groups:
            return
        wanted = np.unique(np.concatenate(groups))
        keys: dict[int, tuple[str, str]] = {}
        pos, w = 0, 0
        for chunk in self.chunks():
            while w < len(wanted) and wanted[w] < pos + len(chunk):
                keys[int(wanted[w])] = chunk[int(wanted[w]) - pos]
                w += 1
            pos += len(chunk)
        first: tuple[int, int] | None = None
        count = 0
        for group in groups:
            seen: dict[str, int] = {}
            for i in group.tolist():
                k = keys[i][0]
                if k in seen:
                    count += 1
                    if first is None or i < first[1]:
                        first = (seen[k], i)
                else:
                    seen[k] = i
        if first is not None:
            i, j = first
            raise ValueError(
                f"images: duplicate keys: {count} item(s) repeat the key of an earlier one, e.g. {keys[i][0]!r} "
                f"(items {i} and {j} of the list, from 0: {keys[i][1]!r} and {keys[j][1]!r}); every image needs "
                f"its own key.")

    def parts(self, size: int):
        """``(part number, position of its first image, its pairs)`` of consecutive parts of `size`."""
        part, buf, start = 0, [], 0
        for chunk in self.chunks():
            buf.extend(chunk)
            while len(buf) >= size:
                yield part, start, buf[:size]
                del buf[:size]
                part, start = part + 1, start + size
        if buf:
            yield part, start, buf


def plan_parts(pairs: Sequence[tuple[str, str]], part_size: int) -> list[list[tuple[str, str]]]:
    """Cut the image list into consecutive parts of `part_size` (the last one shorter).

    Part ``i`` is always ``pairs[i·part_size : (i+1)·part_size]``, so a rerun on the same list
    finds its earlier parts again.
    """
    if not is_int(part_size) or part_size < 1:
        raise ValueError(f"part_size: expected a positive int, got {part_size!r}.")
    return [list(pairs[i : i + part_size]) for i in range(0, len(pairs), part_size)]


def _part_dir(parts_root: Path, i: int) -> Path:
    return parts_root / f"part-{i:06d}"


def _marker(parts_root: Path, i: int) -> Path:
    return parts_root / f"part-{i:06d}.done.json"


def _visible(folder: Path) -> list[Path]:
    """The entries of `folder` that are not hidden (temporary files of atomic writes and the store
    lock are hidden; no command writes a hidden name of the user's)."""
    return [e for e in folder.iterdir() if not e.name.startswith(".")]


def _own_parts(parts_root: Path) -> bool:
    """Whether `parts_root` holds only what extract_ray writes there: ``part-NNNNNN/`` feature stores
    (or still empty ones) and ``part-NNNNNN.done.json`` markers; then it may be reused and deleted."""
    for e in _visible(parts_root):
        if not _PART_NAME.match(e.name) or e.is_symlink():
            return False
        if e.name.endswith(".done.json") != e.is_file():
            return False
        if e.is_dir() and not is_store(e) and _visible(e):
            return False
    return True


def _check_folders(target: Path, parts_root: Path) -> None:
    """Refuse, before any work, a target that is not a feature store, or a parts folder that holds
    anything extract_ray did not write (it is deleted after the merge, and with mode='overwrite')."""
    for path, what in ((target, "the feature store"), (parts_root, "the parts folder of extract_ray")):
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{str(path)!r} is a file, but extract_ray needs it as {what}; move the file or "
                                  f"choose another store path.")
    check_store_folder(target)  # the store writer's own check, made before the work instead of at the merge
    try:
        check_output_folder(parts_root, command="extract_ray", owned=_own_parts)
    except FileExistsError as e:
        raise FileExistsError(
            f"{e} extract_ray keeps the parts of the store {str(target)!r} in {str(parts_root)!r} and deletes that "
            f"folder after the merge; move the folder away, or choose another store path."
        ) from None


def _probe_extractor(fx_options: dict):
    """The extractor the actors will build, built once here on the CPU before any work: an unknown
    arch or layer, weights that cannot be had, a bad ``max_pixels`` fail now, in one line, instead
    of in every actor after Ray has started. Its metadata is the identity the parts will have.
    Precision and the JPEG decoding device are not part of the identity, so they are set for the CPU."""
    from gensim_im2vec.features import FeatureExtractor

    probe = {**fx_options, "precision": "fp32", "jpeg_device": None,
             "draft": False if fx_options.get("jpeg_device") is not None else fx_options.get("draft")}
    return FeatureExtractor(**probe, device="cpu", batch_size=1, num_workers=0, threads=1, progress=False)


def _run_defaults(run_options: dict) -> tuple[str, str, bool]:
    """dtype, normalise and retry_skipped of the actors' ``extract`` (their defaults are its own)."""
    from gensim_im2vec.features import FeatureExtractor

    defaults = inspect.signature(FeatureExtractor.extract).parameters
    return tuple(run_options.get(n, defaults[n].default) for n in ("dtype", "normalise", "retry_skipped"))


def _check_target_identity(target: Path, fx, run_options: dict) -> None:
    """Refuse, before any work, to extend a store made with other settings (model, weights, layer,
    dtype, preprocessing, normalisation), as :meth:`FeatureExtractor.extract` refuses it."""
    dtype, normalise, _ = _run_defaults(run_options)
    fx._target_pca(target, [], "extend", dict(fx.metadata, normalisation=normalise), dtype, None, 0, normalise)


def _wanted_identity(fx, run_options: dict) -> dict:
    """The metadata identity of the part stores the actors write with these settings."""
    dtype, normalise, _ = _run_defaults(run_options)
    return dict(fx.metadata, normalisation=normalise, dim=fx.dim, dtype=np.dtype(dtype).name, pca_components=None)


def _parts_made_otherwise(parts_root: Path, want: dict) -> tuple[Path, dict, list[str]] | None:
    """The first part store in `parts_root` made with other settings than `want`, its metadata and
    the differing fields; None when every part agrees."""
    if not parts_root.is_dir():
        return None
    for d in sorted(parts_root.iterdir()):
        if not (d.is_dir() and _PART_NAME.match(d.name) and (d / METADATA_FILE).is_file()):
            continue
        try:
            with open(d / METADATA_FILE, encoding="utf-8") as f:
                have = json.load(f)
        except (OSError, ValueError):
            continue  # a damaged part: its actor's writer names it
        diff = _identity_diff(_identity(have), _identity(want))
        if diff:
            return d, have, diff
    return None


def _mark(index: _KeyIndex, keys, mask: np.ndarray) -> None:
    """Set `mask` at the list positions of those of `keys` that are in the list, a chunk at a time."""
    if not isinstance(keys, Sequence):  # a store's skipped dict; its key list is sliced, not copied
        keys = list(keys)
    for lo in range(0, len(keys), _SCAN_CHUNK):
        mask[index.positions(keys[lo : lo + _SCAN_CHUNK])] = True


def _mark_finished(parts_root: Path, index: _KeyIndex, done: np.ndarray) -> None:
    """Mark in `done` the images of every finished part (its marker, written last, lists them: stored
    or skipped there), one marker at a time (no set of the finished keys).

    Keys, not part numbers: a rerun that cuts the list differently (another batch size, a cluster with
    GPUs now, new images listed among the old ones) still finds the finished work wherever it is."""
    if not parts_root.is_dir():
        return
    for m in parts_root.iterdir():
        if not (m.name.endswith(".done.json") and _PART_NAME.match(m.name)):
            continue
        if not (parts_root / m.name[: -len(".done.json")] / METADATA_FILE).exists():
            continue  # a marker without its part store: that part is redone
        try:
            with open(m, encoding="utf-8") as f:
                keys = json.load(f)["keys"]
            if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("extract_ray: %s is not a finished-part marker (damaged?); that part is redone", m)
            continue
        _mark(index, keys, done)


def _mark_target(target: Path, index: _KeyIndex, done: np.ndarray, retry: np.ndarray | None,
                 stamps: bool = False) -> tuple[_TargetStamps | None, int]:
    """Mark in `done` the images the target store holds or lists as skipped (those in `retry` instead,
    when given: ``retry_skipped``). The store is opened as the run that continues it (an unfinished
    run in it, e.g. this command's own merge that was cut short, is said at INFO, not warned about).

    With `stamps`, also return what :func:`_changed_in_target` needs to compare the stored images given
    again with their files (None when the store has no stamps: said at INFO): the target's row of each
    list position, found in the same pass over its keys (4 bytes per image, beside the index). Also
    returns how many of the images given the store holds."""
    have = FeatureStore._open(target, continuing=True)
    found = have._stamp_range() if stamps else None
    row_of = None
    if found is not None:
        row_of = np.full(len(done), -1, dtype=np.int32 if len(have) < 2**31 else np.int64)
    given = 0  # stored images given again
    for lo in range(0, len(have.keys), _SCAN_CHUNK):
        pos = index.lookup(have.keys[lo : lo + _SCAN_CHUNK])
        hit = np.flatnonzero(pos >= 0)
        done[pos[hit]] = True
        given += len(hit)
        if row_of is not None:
            row_of[pos[hit]] = hit + lo
    _mark(index, have.skipped, done if retry is None else retry)
    if not stamps or not given:
        return None, given
    if found is None:
        from gensim_im2vec.features import _unstamped_note

        _unstamped_note(target, given, given)
        return None, given
    return _TargetStamps(have.path / STAMPS_FILE, found, len(have), row_of, given), given


@dataclass
class _TargetStamps:
    """The target's stamps as :func:`_changed_in_target` reads them (no key strings): its
    ``stamps.npy``, the committed range (``(stamps_from, stamps_count, data offset)``), its row count,
    the target row of each list position (-1: not stored) and how many stored images are given again."""

    file: Path
    found: tuple[int, int, int]
    count: int
    row_of: np.ndarray
    given: int


#: Changed images whose key and path :func:`_changed_in_target` keeps (all are counted): at 100M
#: files copied without their modification times, every image would be "changed".
_CHANGED_KEPT = 10_000


def _changed_in_target(images: _Images, target: Path, ts: _TargetStamps) -> tuple[list[tuple[str, str]], int, int]:
    """Compare the target's stored images given again with their files (one ``os.stat`` per stamped
    image, a chunk of the list at a time: their stamps are read from ``stamps.npy`` by row, no dict or
    list of keys is built). Returns the first :data:`_CHANGED_KEPT` changed ``(key, path)``, how many
    changed, and how many have no stamp (not checked, said at INFO)."""
    from gensim_im2vec.features import _stamp_changes, _unstamped_note

    changed: list[tuple[str, str]] = []
    count = unstamped = 0
    pos = 0
    for chunk in images.chunks():
        rows = ts.row_of[pos : pos + len(chunk)]
        pos += len(chunk)
        sel = np.flatnonzero(rows >= 0)
        if not sel.size:
            continue
        stored = _read_stamps(ts.file, ts.found, ts.count, rows[sel].astype(np.int64))
        found, n = _stamp_changes([chunk[i] for i in sel.tolist()], stored)
        unstamped += n
        count += len(found)
        changed.extend(found[: _CHANGED_KEPT - len(changed)])
    _unstamped_note(target, unstamped, ts.given)
    return changed, count, unstamped


# ----------------------------------------------------------------------------- the Ray actor

#: Seconds an actor waits for a part store that another process still writes: after the driver was
#: killed, its actors may go on for a few seconds before Ray ends them.
PART_LOCK_WAIT = 60.0


def _not_part_skip_warning(record: logging.LogRecord) -> bool:
    """Drop the actors' "N image(s) were skipped (reasons in PART/skipped.json)" warning: the part is
    deleted after the merge; the driver names the store's skipped.json instead."""
    return not str(record.msg).startswith("%i image(s) were skipped")


def _changed_in_part(part: int, error) -> str:
    """What an actor says of the unfinished part it continued whose images changed on disk
    (``on_changed="raise"``; `error` is :meth:`FeatureExtractor.extract`'s ChangedFilesError): the
    images; the fix, for every such part at once, is the driver's (:func:`_changed_parts_fix`)."""
    from gensim_im2vec.features import _changed_images

    return f"on_changed='raise': {_changed_images(error.changed, f'that unfinished part {part} holds')}"


def _changed_parts_fix(parts_root: Path, parts: list[int]) -> str:
    """The fix for unfinished parts whose images changed on disk: every part folder to delete (a part,
    unlike the target store, can simply be extracted again)."""
    folders = ", ".join(repr(str(_part_dir(parts_root, p))) for p in sorted(parts))
    return (f"To extract {'that part' if len(parts) == 1 else 'those parts'} again from the current files, delete "
            f"{'its folder' if len(parts) == 1 else 'their folders'} {folders} and run the same command again (the "
            f"other parts are kept; with on_changed='warn' the parts keep their old rows with a warning).")


def _part_items(plan: str) -> list[tuple[str, str]]:
    """A part's images as the driver hands them to an actor: its plan file in
    ``STORE.ray-parts/.plan/``, a JSON list of ``[key, path]`` (:func:`_write_plans`)."""
    with open(plan, encoding="utf-8") as f:
        return [tuple(p) for p in json.load(f)]


class _PartExtractor:
    """Ray Data actor: one FeatureExtractor (one GPU or a few CPU cores) extracting whole parts.

    It never raises: an extractor that cannot be built on its node, or a part that fails, comes back
    as that part's ``error`` (with the node's name), so one bad part does not end the others and the
    driver reports every failure in a few lines instead of Ray's tracebacks.

    `extract_kwargs` carry the driver's ``on_changed``: a part an interrupted run left unfinished is
    continued (``mode="extend"``) with its images given again, and those it holds are compared with
    their files as the driver was asked (warn, raise, or no stat at all with "ignore")."""

    def __init__(self, fx_kwargs: dict, extract_kwargs: dict, parts_root: str, lock_wait: float = PART_LOCK_WAIT
                 ) -> None:
        import socket

        self.node = socket.gethostname()
        self.extract_kwargs = extract_kwargs
        self.parts_root = Path(parts_root)
        self.lock_wait = lock_wait
        features_log = logging.getLogger("gensim_im2vec.features")
        if _not_part_skip_warning not in features_log.filters:
            features_log.addFilter(_not_part_skip_warning)
        self.fx, self.error = None, ""
        try:
            from gensim_im2vec.features import FeatureExtractor

            self.fx = FeatureExtractor(**fx_kwargs)
        except Exception as e:  # noqa: BLE001 - reported per part, see the class notes
            self.error = f"the extractor could not be built on node {self.node}: {type(e).__name__}: {e}"

    def _extract(self, part: int, pairs: list):
        from gensim_im2vec.features import ChangedFilesError
        from gensim_im2vec.store import StoreLockedError

        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                return self.fx.extract(pairs, _part_dir(self.parts_root, part), mode="extend", **self.extract_kwargs)
            except StoreLockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)
            except ChangedFilesError as e:  # on_changed="raise": extract()'s fixes are the target store's
                raise ChangedFilesError(_changed_in_part(part, e), e.changed) from None

    def __call__(self, batch: dict) -> dict:
        from gensim_im2vec.features import STAGES, ChangedFilesError

        out = {"part": [], "extracted": [], "already": [], "skipped": [], "seconds": [], "error": [],
               "changed_files": [], "underflow": [], "underflow_keys": [], **{f"stage_{k}": [] for k in STAGES}}
        for part, items in zip(batch["part"], batch["items"]):
            part = int(part)
            t0 = time.perf_counter()
            rep, error, changed_files = None, self.error, False
            if not error:
                try:
                    pairs = _part_items(str(items))
                    rep = self._extract(part, pairs)
                    # the marker last: the part is complete (a resume trusts it, so it is fsynced). It
                    # lists every key the part store holds or skipped, also those an earlier run put
                    # there (this run was handed only the rest): it replaces that run's marker
                    keys = dict.fromkeys(rep.store.keys)
                    keys.update(dict.fromkeys(rep.store.skipped))
                    keys.update(dict.fromkeys(k for k, _ in pairs))
                    atomic_write_json(_marker(self.parts_root, part), {
                        "keys": list(keys), "extracted": rep.extracted, "skipped": rep.skipped},
                        durable=True, indent=None)
                except Exception as e:  # noqa: BLE001 - reported per part, see the class notes
                    rep, error = None, f"{type(e).__name__} on node {self.node}: {e}"
                    changed_files = isinstance(e, ChangedFilesError)  # on_changed="raise": the driver says the fix
            out["part"].append(part)
            out["extracted"].append(rep.extracted if rep else 0)
            out["already"].append(rep.already if rep else 0)
            out["skipped"].append(len(rep.skipped) if rep else 0)
            out["seconds"].append(time.perf_counter() - t0)
            out["error"].append(error)
            out["changed_files"].append(changed_files)
            out["underflow"].append(rep.underflow if rep else 0)  # rows float16 cannot hold, some of their keys
            out["underflow_keys"].append(json.dumps(rep.underflow_keys if rep else []))  # (one str a row)
            for k in STAGES:
                out[f"stage_{k}"].append(rep.stage_seconds.get(k, 0.0) if rep else 0.0)
        return {k: np.asarray(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- driver


class PartsFailedError(RuntimeError):
    """Parts of an :func:`extract_ray` run failed; the finished ones are kept for the rerun."""


@dataclass
class RayExtractionReport:
    """What one :func:`extract_ray` call did.

    ``extracted + already + skipped == total``: every image given ends stored or skipped.

    Attributes
    ----------
    store : FeatureStore
        The merged store.
    total : int
        Images given.
    extracted : int
        Rows extracted by this call (over all actors).
    already : int
        Images stored before this call: in the target store, or in parts an earlier, interrupted
        run finished (no work).
    parts : int
        Parts the image list was cut into (0 when nothing was left to extract: Ray was not started).
    parts_run : int
        Parts sent to the actors (the others were finished before).
    actors : int
    device : str
        "cuda" (one actor per GPU), "cpu", or "none" (nothing to extract, Ray not started).
    skipped : int
        Images that are not stored: they could not be used, by this call or (in a part an earlier run
        finished, or with ``retry_skipped=False``) before. Reasons in the store's ``skipped.json``.
    skip_reasons : dict of str to int
        Those images by kind of reason ("not an image", "truncated", ...).
    retried : int
        Images the target store listed as skipped that this call tried again (``retry_skipped``).
    seconds : float
    images_per_second : float
        Extracted images per second of wall time (incl. Ray start-up and the merge).
    part_seconds : list of float
        Wall time of each part run (per actor throughput = part_size / seconds).
    stage_seconds : dict of str to float
        The actors' :attr:`ExtractionReport.stage_seconds <gensim_im2vec.features.ExtractionReport>`
        summed over the parts run: where the actors spent their time.
    changed : int
        Images the target store held before this call whose file changed on disk since its row was
        extracted (its size or modification time differs from the stamp the store recorded, or it
        can no longer be read): the store keeps their old rows (said in a warning with the fix).
        Images stored without a stamp (a store written before stamps were recorded, or merged from
        stores without them) cannot be checked; ``on_changed="ignore"`` checks none (0).
    changed_keys : list of str
        Their keys: all of them up to 10,000, the first 10,000 in list order beyond (the driver
        keeps no list of every image).
    underflow : int
        Rows the actors wrote that a float16 store cannot hold, summed over the parts run
        (:attr:`ExtractionReport.underflow <gensim_im2vec.features.ExtractionReport>`): all zeros or
        nearly. :meth:`summary` ends with them and the fix (extract into a new store with
        ``dtype="float32"``).
    underflow_keys : list of str
        The first :data:`~gensim_im2vec.store.UNDERFLOW_KEYS_KEPT` of them.
    """

    store: FeatureStore
    total: int
    extracted: int
    already: int
    parts: int
    parts_run: int
    actors: int
    device: str
    skipped: int = 0
    skip_reasons: dict = field(default_factory=dict)
    retried: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0
    part_seconds: list = field(default_factory=list)
    stage_seconds: dict = field(default_factory=dict)
    changed: int = 0
    changed_keys: list = field(default_factory=list)
    underflow: int = 0
    underflow_keys: list = field(default_factory=list)

    def summary(self) -> str:
        from gensim_im2vec.features import retry_note, stage_shares

        why = ", ".join(f"{k}: {n}" for k, n in self.skip_reasons.items()) or "none"
        changed = ""
        if self.changed:
            changed = (f" ({self.changed} of them changed on disk since they were extracted: their old rows are "
                       f"kept, extract into a new store to use the new files)")
        counts = (f"{self.already} already stored{changed}, {self.skipped} skipped ({why})"
                  f"{retry_note(self.retried)}")
        tail = f"; {self.store.path} holds {len(self.store)} rows of dim {self.store.dim}"
        if not self.parts_run:
            return f"{self.total} images: nothing left to extract, {counts}{tail}"
        shares = stage_shares(self.stage_seconds)
        return (
            f"{self.total} images: {self.extracted} extracted by {self.actors} {self.device} actor(s) in "
            f"{self.seconds:.1f}s ({self.images_per_second:.1f} images/s), {self.parts_run}/{self.parts} parts "
            f"run, {counts}{tail}{self._underflow()}" + (f"; actors' time: {shares}" if shares else "")
        )

    def _underflow(self) -> str:
        return f"; WARNING: {self._underflow_message()}" if self.underflow else ""

    def _underflow_message(self) -> str:
        """What :meth:`summary` says of the rows that underflow float16, as :meth:`ExtractionReport.summary
        <gensim_im2vec.features.ExtractionReport.summary>` says it (this command's name in the fix); "" when none."""
        from gensim_im2vec.features import underflow_message

        if not self.underflow:
            return ""
        return underflow_message(self.underflow, self.extracted, self.underflow_keys).replace(
            "im2vec extract ", "im2vec extract-ray ")


def _extractor_options(options: dict) -> tuple[dict, dict, str, str]:
    """The extractor's and its extract()'s options for the actors, and the target store's mode and
    the key prefix (their defaults are :meth:`FeatureExtractor.extract`'s)."""
    from gensim_im2vec.features import FeatureExtractor, split_extractor_options

    per_actor = sorted({"device", "threads", "progress", "pca", "pca_sample"} & set(options))
    if per_actor:
        raise TypeError(f"extract_ray: {per_actor} cannot be given: the device, threads and progress are set per "
                        f"actor, and a PCA is not supported across parts.")
    fx_options, run_options = split_extractor_options(options, owner="extract_ray")
    defaults = inspect.signature(FeatureExtractor.extract).parameters
    mode = run_options.pop("mode", defaults["mode"].default)
    prefix = run_options.pop("prefix", defaults["prefix"].default)
    if mode not in ("extend", "create", "overwrite"):
        raise ValueError(f"mode: expected 'extend', 'create' or 'overwrite', got {mode!r}.")
    return fx_options, run_options, mode, prefix


def _check_counts(**values) -> None:
    """The run's sizes, before any work: ``name=(value, minimum)``; None means "chosen for the cluster"."""
    for name, (value, minimum) in values.items():
        if value is None:
            continue
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum
              if name == "gpus_per_actor" else is_int(value) and value >= minimum)
        if not ok:
            raise ValueError(f"{name}: expected {'a number' if name == 'gpus_per_actor' else 'an int'} >= {minimum}, "
                             f"got {value!r}.")


#: Seconds to wait for a Ray cluster's address to answer before saying it cannot be reached (Ray
#: itself retries an unreachable address for minutes, printing a warning every few seconds).
ADDRESS_TIMEOUT = 10.0


def _check_address(address: str | None, timeout: float = ADDRESS_TIMEOUT) -> None:
    """Refuse, within `timeout` seconds, a Ray cluster address (or ``$RAY_ADDRESS``) that does not
    answer; "auto", "local" and other schemes are left to ``ray.init``."""
    import socket

    given = address if address is not None else os.environ.get("RAY_ADDRESS")
    if not given or given in ("auto", "local"):
        return
    source = "address" if address is not None else "$RAY_ADDRESS"
    leave = "leave the address out" if address is not None else "unset $RAY_ADDRESS"
    rest = given[len("ray://"):] if given.startswith("ray://") else given
    if "://" in rest:
        return
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"{source}: expected 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got {given!r}; "
                         f"`ray start --head` prints the address to give (HOST:6379).")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        why = f"no answer within {timeout:g}s" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ConnectionError(
            f"cannot reach the Ray cluster at {given!r} ({source}): {why}. Check that the "
            f"cluster runs (`ray status` on its head node) and that this machine reaches that host and port "
            f"(`ray start --head` prints the address to give); or {leave} to run on a local Ray."
        ) from None


#: In ``STORE.ray-parts/``: an ``overwrite`` run started these parts (so its rerun keeps them).
_OVERWRITE_RUN = ".overwrite-run"
#: In ``STORE.ray-parts/``: the image list (:func:`~gensim_im2vec.store.images_digest`) of the run that
#: made the parts; an overwrite or create continues them only for the same images.
_RUN_INPUTS = ".run-inputs"


def _run_inputs(parts_root: Path) -> str | None:
    """The image-list digest recorded in `parts_root` (None: none, or unreadable)."""
    try:
        with open(parts_root / _RUN_INPUTS, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record.get("inputs") if isinstance(record, dict) else None


def _lock_parts(parts_root: Path, target: Path):
    """One extract_ray at a time per store: the lock of ``STORE.ray-parts/`` (released by the OS when
    the driver ends, also by kill -9). Two drivers would run the same parts twice and collide."""
    from gensim_im2vec.store import LOCK_FILE, lock_folder

    parts_root.mkdir(parents=True, exist_ok=True)
    return lock_folder(parts_root, lambda holder: (
        f"another extract_ray (pid {holder}) is extracting into {str(target)!r}: it holds "
        f"{str(parts_root / LOCK_FILE)!r}. Wait for it to finish (or stop it), then run again; two runs on "
        f"one store would extract the same parts twice."))


def _clear_parts(parts_root: Path, keep_plan: bool = False) -> None:
    """Delete what extract_ray wrote in `parts_root` (the parts, markers, temporary files), keeping
    the folder and its lock (and this run's plan, with `keep_plan`). Only called while
    :func:`_own_parts` holds."""
    from gensim_im2vec.store import LOCK_FILE

    for e in parts_root.iterdir():
        if e.name == LOCK_FILE or (keep_plan and e.name == _PLAN_DIR):
            continue
        if e.is_dir() and not e.is_symlink():
            shutil.rmtree(e)
        else:
            e.unlink()


def _finish_parts(parts_root: Path, keep: bool) -> None:
    """After the merge: delete the parts folder (while it holds only what extract_ray wrote), or keep it."""
    from gensim_im2vec.store import LOCK_FILE

    if keep:
        (parts_root / _OVERWRITE_RUN).unlink(missing_ok=True)
        (parts_root / _RUN_INPUTS).unlink(missing_ok=True)
        _drop_plan(parts_root)
        return
    if not _own_parts(parts_root):
        logger.warning("extract_ray: %s now holds files extract_ray did not write; it is kept (delete it yourself "
                       "once they are safe)", parts_root)
        return
    _clear_parts(parts_root)
    (parts_root / LOCK_FILE).unlink(missing_ok=True)  # under the lock: the next run makes its own
    try:
        parts_root.rmdir()
    except OSError:
        pass


def _drop_plan(parts_root: Path) -> None:
    """Delete the run's plan (``.plan/``: the part plans and the spool), which means nothing after it."""
    shutil.rmtree(parts_root / _PLAN_DIR, ignore_errors=True)


def _drop_if_empty(parts_root: Path) -> None:
    """Remove a parts folder that holds no part (a run that stopped before its first part, e.g. Ray
    could not start): only its lock and run flag, which mean nothing without parts."""
    from gensim_im2vec.store import LOCK_FILE

    if not parts_root.is_dir() or _visible(parts_root):
        return
    for name in (_OVERWRITE_RUN, _RUN_INPUTS, LOCK_FILE):
        (parts_root / name).unlink(missing_ok=True)
    try:
        parts_root.rmdir()
    except OSError:
        pass


@dataclass
class _ClusterPlan:
    """How the extraction uses the cluster: GPU or CPU actors, how many, and their batching."""

    use_gpu: bool
    n_gpus: float
    n_cpus: float
    cpus_per_actor: int
    num_actors: int
    batch_size: int
    num_workers: int
    gpus_per_actor: float

    @property
    def device(self) -> str:
        return "cuda" if self.use_gpu else "cpu"

    @classmethod
    def of(cls, resources: dict, *, gpus_per_actor: float, cpus_per_actor: int | None, num_actors: int | None,
           batch_size: int | None, num_workers: int | None) -> _ClusterPlan:
        """The plan for these cluster resources; what is None is chosen for them."""
        n_gpus = float(resources.get("GPU", 0))
        n_cpus = float(resources.get("CPU", 1))
        use_gpu = n_gpus >= gpus_per_actor > 0
        if cpus_per_actor is None:
            cpus_per_actor = 8 if use_gpu else 1
        if num_actors is None:
            num_actors = int(n_gpus // gpus_per_actor) if use_gpu else max(1, int(n_cpus // cpus_per_actor))
        if batch_size is None:
            batch_size = 256 if use_gpu else 32
        if num_workers is None:
            num_workers = max(0, cpus_per_actor - 1) if use_gpu else 0
        return cls(use_gpu, n_gpus, n_cpus, cpus_per_actor, num_actors, batch_size, num_workers, gpus_per_actor)


def _write_plans(images: _Images, done: np.ndarray, size: int, plan_dir: Path) -> tuple[list[dict], int]:
    """Cut the list into parts of `size` (part ``i`` is always images ``i·size`` to ``(i+1)·size``, as
    :func:`plan_parts`) and write the plan of each part that has images not in `done` (stored in the
    target, finished in a part): ``plan_dir/part-NNNNNN.json``. Returns what Ray is handed, one
    ``{"part": i, "items": plan file}`` per part to run (a part number and a path: not its images),
    and the number of parts."""
    from gensim_im2vec.fileio import atomic_write_bytes

    plan_dir.mkdir(parents=True, exist_ok=True)
    todo, parts = [], 0
    for part, start, pairs in images.parts(size):
        parts = part + 1
        left = np.flatnonzero(~done[start : start + len(pairs)])
        if not left.size:
            continue
        plan = plan_dir / f"part-{part:06d}.json"
        # ASCII JSON: a path that is not valid UTF-8 (surrogate escapes) survives the trip, as it did in Ray
        atomic_write_bytes(plan, json.dumps([pairs[i] for i in left.tolist()]).encode("ascii"))
        todo.append({"part": part, "items": str(plan)})
    return todo, parts


def _failures_message(failed: list[tuple[int, str]], n_run: int, parts_root: Path, target: Path,
                      changed: list[int] = ()) -> str:
    """The parts that failed, a line per distinct error (three at most); `changed`: those that failed
    because images they hold changed on disk, every one of whose folders the fix names."""
    by_error: dict[str, list[int]] = {}
    for part, error in sorted(failed):
        by_error.setdefault(error, []).append(part)
    lines = []
    for error, parts in list(by_error.items())[:3]:
        shown = ", ".join(map(str, parts[:5])) + (f" and {len(parts) - 5} more" if len(parts) > 5 else "")
        lines.append(f"  part(s) {shown}: {error}")
    if len(by_error) > 3:
        lines.append(f"  ... and {len(by_error) - 3} other error(s)")
    others = "the others are finished and" if len(failed) < n_run else "the parts finished before are"
    fix = "Fix the cause and run the same command again: finished parts are not redone."
    if changed:
        fix = _changed_parts_fix(parts_root, list(changed)) + ("" if len(changed) == len(failed) else " " + fix)
    return (f"{len(failed)} of {n_run} part(s) failed; {others} kept in {str(parts_root)!r} "
            f"(nothing was merged into {str(target)!r} yet):\n" + "\n".join(lines) + "\n" + fix)


@dataclass
class _PartTotals:
    """The rows of the parts that finished (:class:`_PartExtractor`'s, one a part), added up: images
    extracted, skipped and found already done, seconds per part, the actors' seconds per stage, and
    the rows that underflow float16 (:attr:`ExtractionReport.underflow
    <gensim_im2vec.features.ExtractionReport>`) with the first of their keys, as one extraction's writer
    keeps them (:class:`~gensim_im2vec.store._Underflow`)."""

    extracted: int = 0
    skipped: int = 0
    already: int = 0
    part_seconds: list = field(default_factory=list)
    stages: dict = field(default_factory=dict)
    underflow: _Underflow = field(default_factory=_Underflow)

    def add(self, row) -> None:
        """Add the row of a part that finished (a failed part's row is the caller's)."""
        from gensim_im2vec.features import STAGES

        for k in STAGES:
            self.stages[k] = self.stages.get(k, 0.0) + float(row[f"stage_{k}"])
        self.extracted += int(row["extracted"])
        self.already += int(row["already"])
        self.skipped += int(row["skipped"])
        self.part_seconds.append(float(row["seconds"]))
        if int(row["underflow"]):
            self.underflow.add(json.loads(str(row["underflow_keys"])), int(row["underflow"]))


def _run_parts(todo: list[dict], plan: _ClusterPlan, fx_kwargs: dict, extract_kwargs: dict,
               parts_root: Path, target: Path) -> _PartTotals:
    """Extract the parts on a pool of actors; returns their rows added up (:class:`_PartTotals`). Raises
    :class:`PartsFailedError` when a part failed (after the others have run); ChangedFilesError when
    every failed part failed because images it held changed on disk (``on_changed="raise"``: what the
    caller asked to stop on, as the driver's own check of the target raises it)."""
    import ray.data
    import ray.exceptions

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ds = ray.data.from_items(todo, override_num_blocks=len(todo))
    remote = {"num_gpus": plan.gpus_per_actor} if plan.use_gpu else {"num_cpus": plan.cpus_per_actor}
    results = ds.map_batches(
        _PartExtractor,
        fn_constructor_kwargs={"fx_kwargs": fx_kwargs, "extract_kwargs": extract_kwargs,
                               "parts_root": str(parts_root)},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(plan.num_actors, len(todo))),
        **remote,
    )
    totals = _PartTotals()
    failed: list[tuple[int, str]] = []
    changed: list[int] = []  # the failed parts that hold images changed on disk (on_changed="raise")
    try:
        for row in results.iter_rows():
            if row["error"]:
                failed.append((int(row["part"]), str(row["error"])))
                if row["changed_files"]:
                    changed.append(int(row["part"]))
                logger.warning("part %i failed: %s", row["part"], row["error"])
                continue
            totals.add(row)
            logger.info("part %i: %i extracted, %i skipped in %.1fs", row["part"], row["extracted"],
                        row["skipped"], row["seconds"])
    except ray.exceptions.RayError as e:  # an actor or node lost (killed, out of memory): not a part's error
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise PartsFailedError(
            f"the Ray job stopped: {type(e).__name__}: {first}. The parts finished so far are kept in "
            f"{str(parts_root)!r}; run the same command again to continue from them."
        ) from e
    if failed:
        message = _failures_message(failed, len(todo), parts_root, target, changed)
        if len(changed) == len(failed):  # what the caller asked to stop on, as the driver's check raises it
            from gensim_im2vec.features import ChangedFilesError

            raise ChangedFilesError(message)
        raise PartsFailedError(message)
    return totals


def extract_ray(
    images,
    store,
    *,
    address: str | None = None,
    ray_init: dict | None = None,
    num_actors: int | None = None,
    gpus_per_actor: float = 1.0,
    cpus_per_actor: int | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    part_size: int = 8192,
    shard_size: int = 1024,
    keep_parts: bool = False,
    on_changed: str = "warn",
    **options,
) -> RayExtractionReport:
    """Extract features on a Ray cluster into one :class:`FeatureStore` (resumable).

    Parameters
    ----------
    images : str, os.PathLike or iterable of (key, path)
        A directory (keys as :func:`gensim_im2vec.features.list_images`) or explicit pairs, e.g.
        from a YFCC metadata file mapped to local paths. Paths must be readable on every node. A
        list (any sequence) is read as often as needed; any other iterable, e.g. a generator over a
        metadata file, and a directory (walked a folder at a time,
        :func:`gensim_im2vec.features.iter_images`) are read once and copied to
        ``STORE.ray-parts/.plan/`` as they are read, so 100M images need no list of pairs on the
        driver.
    store : str or os.PathLike
        Target store. Parts are written beside it, in ``STORE.ray-parts/``.
    address : str, optional
        Ray cluster address (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``); None starts or
        reuses a local Ray (or connects to ``$RAY_ADDRESS``). An address that does not answer within
        :data:`ADDRESS_TIMEOUT` seconds is refused (ConnectionError) before any work.
    ray_init : dict, optional
        Extra arguments of ``ray.init`` (e.g. ``{"num_cpus": 2}``) when Ray is not running yet.
    num_actors : int, optional
        Extractor actors. Default: one per GPU of the cluster (``GPUs / gpus_per_actor``); with no
        GPU, ``CPUs / cpus_per_actor``.
    gpus_per_actor : float
        GPUs per actor (1: one actor per GPU; 0.5 packs two on one GPU; 0: CPU actors).
    cpus_per_actor : int, optional
        CPU cores per actor: its decoding workers on GPU nodes, its torch threads on CPU nodes
        (default: 1 without GPUs; 8 with).
    batch_size : int, optional
        Images per forward pass (default 256 with GPUs, 32 without).
    num_workers : int, optional
        Decoding processes per actor (default: ``cpus_per_actor - 1`` on GPU, 0 on CPU).
    part_size : int
        Images per part, the unit of work handed to an actor (rounded up to whole batches).
        A finished part is never redone, also when a rerun cuts the list differently (another
        batch size, new images): finished work is found by key.
    shard_size : int
        Images per committed shard inside a part: the most a dying actor loses.
    keep_parts : bool
        Keep ``STORE.ray-parts/`` after the merge (default: delete it). It is only ever deleted
        while it holds nothing but parts (``part-NNNNNN/`` stores, ``part-NNNNNN.done.json``).
    on_changed : {"warn", "raise", "ignore"}
        What to do with images the existing target store holds (``mode="extend"``) whose file
        changed on disk since their row was extracted, as :meth:`FeatureExtractor.extract
        <gensim_im2vec.features.FeatureExtractor.extract>`: the driver compares the stamps the store
        recorded (size, modification time; merged from the parts with their rows) with the files,
        one ``os.stat`` per stored image given again, a chunk at a time, before any part runs.
        "warn" (default): warn (the count, the first keys, the fix), count them in
        :attr:`RayExtractionReport.changed`, keep their old rows and go on. "raise": stop with
        :class:`~gensim_im2vec.features.ChangedFilesError` before Ray starts, the store unchanged.
        "ignore": no stat pass (a rerun at 100M files on a network file system). A store's rows are
        never rewritten: extract into a new store (or ``mode="overwrite"``) to use the new files.
        Images in the parts of an interrupted run are checked by the next run once merged (a
        finished part), or by the actor that continues the part (an unfinished one), with this
        ``on_changed``: "raise" fails that part, kept as it was (the others run), and the call
        (ChangedFilesError naming the files and the part's folder: delete it to extract the part
        again from the current files); "ignore" stats none of its files.

        A folder given as `images` is recorded in a store the run makes (``metadata["image_root"]``,
        through its parts), and a later run from another folder is said for what it is, as
        :meth:`FeatureExtractor.extract <gensim_im2vec.features.FeatureExtractor.extract>` says it
        (Notes there): the changed files above, in the same stat pass, with what they may mean there
        ("raise": :class:`~gensim_im2vec.features.ImageRootError`); with "ignore" no file is compared.
    **options
        Options of :class:`~gensim_im2vec.features.FeatureExtractor` (``arch``, ``weights``,
        ``layer``, ``precision``, ``max_pixels``, ``seed``, ...) and of its ``extract`` (``dtype``,
        ``normalise``, ``prefix``, ``mode``, ``retry_skipped``), with their defaults. ``mode``
        applies to the target store: "extend" continues / appends, "create" refuses an existing
        store, "overwrite" replaces it and starts its parts afresh (the rerun of an interrupted
        overwrite keeps the parts that run made). ``retry_skipped`` tries images the target store
        lists as skipped again (images skipped in a part an interrupted run finished are retried
        once that run is merged). The device, threads and progress are set per actor; a PCA is not
        supported across parts.

    Returns
    -------
    RayExtractionReport
        ``extracted + already + skipped == total``.

    Raises
    ------
    FileExistsError
        Before any work: `store` is a file or a non-empty folder that is not a feature store, or
        ``STORE.ray-parts/`` holds a file extract_ray did not write (the message names it); or
        mode="create" and the store exists.
    StoreMismatchError
        Before any work: the existing store (mode="extend") or the parts of an earlier,
        unfinished run were made with other settings (the message names the field).
    StoreLockedError
        Another extract_ray is writing the same store.
    ValueError
        Before Ray starts: two images have one key (the message names the key and both items).
    ImageRootError
        Before Ray starts: a ChangedFilesError (``on_changed="raise"``) in a run from another folder than
        the target's (:class:`~gensim_im2vec.features.ImageRootError`: the message says what it may mean).
    ChangedFilesError
        Before Ray starts: ``on_changed="raise"`` and images the target store holds changed on disk
        (the message names them; nothing was done). Or after the parts ran: images a part that an
        interrupted run left unfinished holds changed on disk (the message names them and the part;
        the part is kept as it was, the other parts finished are kept, nothing is merged).
    ConnectionError
        `address` cannot be reached.
    PartsFailedError
        Parts failed (the message names each part's error and node); the finished ones are kept,
        nothing is merged, and the same call continues from them.
    """
    t0 = time.perf_counter()
    from gensim_im2vec.features import _check_on_changed, _image_root, _key_rule, check_key_rule

    _check_on_changed(on_changed)
    fx_options, run_options, mode, prefix = _extractor_options(options)
    root = _image_root(images, run_options.get("image_root"))  # what a folder's keys are relative to
    if root is not None:  # the parts record it, and the store the merge makes takes it from them
        run_options["image_root"] = root
    rule = _key_rule(images, run_options.get("key_rule"))
    if rule:  # how the keys were made of the files: the parts record it too (FeatureExtractor.extract)
        run_options["key_rule"] = rule
    _check_counts(part_size=(part_size, 1), shard_size=(shard_size, 1), num_actors=(num_actors, 1),
                  gpus_per_actor=(gpus_per_actor, 0), cpus_per_actor=(cpus_per_actor, 1),
                  batch_size=(batch_size, 1), num_workers=(num_workers, 0))
    target = Path(store)
    parts_root = target.with_name(target.name + PARTS_SUFFIX)
    _check_folders(target, parts_root)
    continue_create = False  # a create run's own store, its merge interrupted: finished if given the same images
    if mode == "create" and (target / METADATA_FILE).exists():
        if unfinished_run(target) is None:
            raise FileExistsError(f"feature store {str(target)!r} already exists; pass mode='extend' or 'overwrite'.")
        continue_create = True
    probe = _probe_extractor(fx_options)
    extend_target = (mode == "extend" or continue_create) and (target / METADATA_FILE).exists()
    recorded = None  # the folder the target's keys are relative to, when it is not this run's
    if extend_target:
        _check_target_identity(target, probe, run_options)
        target_meta = _read_json(target / METADATA_FILE) or {}
        check_key_rule(target, target_meta.get("key_rule"), rule)
        recorded = target_meta.get("image_root") if root is not None else None
        recorded = None if recorded == root else recorded
    want = _wanted_identity(probe, run_options)
    del probe
    images = _Images(images, prefix, rule)  # a folder or an iterator is read once, under the lock
    try:
        import ray
    except ModuleNotFoundError as err:
        raise missing_extra(err, "extraction on a Ray cluster") from err

    if not ray.is_initialized():
        _check_address(address)
    lock = _lock_parts(parts_root, target)
    plan_dir = parts_root / _PLAN_DIR
    try:
        _drop_plan(parts_root)  # the plan of a driver that was killed
        t_plan = time.perf_counter()
        inputs, index = images.scan(plan_dir)  # duplicate keys refused here
        same_images = _run_inputs(parts_root) == inputs  # the parts are an unfinished run's over these images
        if continue_create:
            if not same_images:
                raise FileExistsError(
                    f"feature store {str(target)!r} is the output of an unfinished extraction of another list of "
                    f"images (or of one whose parts are gone): continuing it would keep that run's rows under this "
                    f"run's keys. Run that extraction again with its images to finish it, pass mode='overwrite' "
                    f"to replace it, or write to a new directory.")
            logger.info("extract_ray: %s was left unfinished by an interrupted run of these images; finishing it",
                        target)
            mode = "extend"
        if mode == "overwrite" and not ((parts_root / _OVERWRITE_RUN).exists() and same_images):
            _clear_parts(parts_root, keep_plan=True)  # the parts of an earlier run; those of an unfinished overwrite stay
            atomic_write_json(parts_root / _OVERWRITE_RUN, {"started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        other = _parts_made_otherwise(parts_root, want)
        if other is not None:
            from gensim_im2vec.store import _mismatch_message

            part, have, diff = other
            if mode != "overwrite":
                raise StoreMismatchError(
                    _mismatch_message(part, have, want, diff).replace(
                        "or pass mode='overwrite' to replace it.",
                        f"or pass mode='overwrite' to replace it. (It is a part of an earlier, unfinished "
                        f"extract_ray into {str(target)!r}: rerun with its settings to finish that run.)"))
            logger.warning("extract_ray: the parts in %s were made with other settings (%s); overwrite starts them "
                           "afresh", parts_root, ", ".join(diff))
            _clear_parts(parts_root, keep_plan=True)
            atomic_write_json(parts_root / _OVERWRITE_RUN, {"started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        atomic_write_json(parts_root / _RUN_INPUTS, {"mode": mode, "inputs": inputs})
        # what is done, by position in the list: one byte per image, no set of keys
        total = images.n
        done = np.zeros(total, dtype=bool)
        retry = np.zeros(total, dtype=bool) if extend_target and _run_defaults(run_options)[2] else None
        stamps, given = None, 0
        if extend_target:  # retry_skipped: its skipped images go to `retry`
            stamps, given = _mark_target(target, index, done, retry, stamps=on_changed != "ignore")
            if not given and root is not None and target_meta.get("image_root") == root:  # (the store's folder
                # under another --prefix: its files would be stored a second time)
                from gensim_im2vec.features import check_prefix, first_stored_keys

                chunks = images.chunks()
                try:
                    check_prefix(target, first_stored_keys(target), next(chunks, []), prefix)
                finally:
                    chunks.close()
        _mark_finished(parts_root, index, done)
        del index
        changed, n_changed = [], 0
        roots = (recorded, root) if recorded is not None else None  # the target's keys are another folder's
        if stamps is not None:  # before any part runs: on_changed="raise" stops here
            t_stat = time.perf_counter()
            changed, n_changed, _ = _changed_in_target(images, target, stamps)
            logger.info("extract_ray: %i stored images given again checked against their files in %.1fs (those "
                        "without a stamp are not compared)", stamps.given, time.perf_counter() - t_stat)
            del stamps
            if n_changed:
                from gensim_im2vec.features import _changed_error, _changed_message

                if on_changed == "raise":
                    raise _changed_error(target, changed, roots=roots, count=n_changed)
                logger.warning("%s", _changed_message(target, changed, refused=False, count=n_changed, roots=roots))
        if roots:  # what else a run from another folder is: moved, unrelated, or around the target's (paths only)
            from gensim_im2vec.features import root_note

            root_note(target, recorded, root, images, prefix, given, on_changed != "ignore", n_changed)
        left = total - int(done.sum())
        retried = int((retry & ~done).sum()) if retry is not None else 0
        del retry
        logger.info("extract_ray: %i images, %i left to extract (%i of them skipped before, tried again), %i "
                    "stored or finished before; planned in %.1fs", total, left, retried, total - left,
                    time.perf_counter() - t_plan)
        plan, n_parts, todo = None, 0, []
        totals = _PartTotals()
        if left:
            if not ray.is_initialized():
                ray.init(address=address, **(ray_init or {}))
            plan = _ClusterPlan.of(ray.cluster_resources(), gpus_per_actor=gpus_per_actor,
                                   cpus_per_actor=cpus_per_actor, num_actors=num_actors, batch_size=batch_size,
                                   num_workers=num_workers)
            jpeg = fx_options.get("jpeg_device")
            if jpeg is not None and str(jpeg).startswith("cuda") and not plan.use_gpu:
                raise ValueError(f"jpeg_device={str(jpeg)!r} decodes on a GPU, but this run's actors are CPU actors "
                                 f"(cluster: {plan.n_gpus:g} GPU, gpus_per_actor={gpus_per_actor:g}); pass "
                                 f"jpeg_device='cpu', or None to decode with PIL.")
            size = max(1, math.ceil(part_size / plan.batch_size)) * plan.batch_size
            todo, n_parts = _write_plans(images, done, size, plan_dir)
            del done
            logger.info(
                "extract_ray: %i parts of %i, %i to run on %i %s actor(s) (cluster: %g CPU, %g GPU)",
                n_parts, size, len(todo), plan.num_actors, "GPU" if plan.use_gpu else "CPU",
                plan.n_cpus, plan.n_gpus,
            )
            fx_kwargs = {
                **fx_options, "device": plan.device, "batch_size": plan.batch_size,
                "num_workers": plan.num_workers, "progress": False,
                "threads": None if plan.use_gpu else plan.cpus_per_actor,
            }
            # on_changed: an unfinished part that an actor continues holds images given again
            extract_kwargs = {**run_options, "shard_size": min(shard_size, size), "on_changed": on_changed}
            totals = _run_parts(todo, plan, fx_kwargs, extract_kwargs, parts_root, target)
        else:
            del done
        sources = sorted(d for d in parts_root.iterdir()
                         if d.is_dir() and _PART_NAME.match(d.name) and (d / METADATA_FILE).exists())
        if sources:
            merged = merge_stores(target, sources, mode="overwrite" if mode == "overwrite" else "extend")
        else:
            merged = FeatureStore.open(target)
        # every image given ends stored or skipped (counted while an iterator's spool is still there)
        # (their keys looked up a block at a time: key_rows, the store's KeyIndex searching them together)
        stored, reasons = 0, {}
        for block, rows in _key_row_blocks(merged.key_to_index, (k for k, _ in images), 1 << 16):
            held = rows >= 0
            stored += int(held.sum())
            for k in itertools.compress(block, (~held).tolist()):
                if k in merged.skipped:
                    kind = merged.skipped[k].split(":", 1)[0]
                    reasons[kind] = reasons.get(kind, 0) + 1
        _finish_parts(parts_root, keep_parts)
    finally:
        _drop_plan(parts_root)
        _drop_if_empty(parts_root)
        lock.release()
    secs = time.perf_counter() - t0
    skipped = sum(reasons.values())
    if stored + skipped < total:
        logger.warning("extract_ray: %i of the %i images are neither in %s nor listed as skipped; run the same "
                       "command again to extract them", total - stored - skipped, total, target)
    extracted = totals.extracted
    report = RayExtractionReport(
        store=merged, total=total, extracted=extracted, already=max(0, stored - extracted),
        parts=n_parts, parts_run=len(todo), actors=min(plan.num_actors, len(todo)) if todo else 0,
        device=plan.device if plan else "none", skipped=skipped,
        skip_reasons=dict(sorted(reasons.items(), key=lambda kv: -kv[1])), retried=retried, seconds=secs,
        images_per_second=extracted / secs if secs > 0 else 0.0, part_seconds=totals.part_seconds,
        stage_seconds=totals.stages, changed=n_changed, changed_keys=[k for k, _ in changed],
        underflow=totals.underflow.count, underflow_keys=totals.underflow.keys,
    )
    logger.info("extract_ray: %s", report.summary())
    if totals.underflow.count:
        logger.warning("%s: %s.", target, report._underflow_message())
    if skipped:
        logger.warning("%i image(s) were skipped (reasons in %s); fix them and rerun to add them", skipped,
                       target / "skipped.json")
    return report
