"""Feature extraction past one machine, on Ray Data.

YFCC100M has 99.2M photos; one CNN forward per image is what outgrows a single machine.
:func:`extract_ray` cuts the image list into *parts* (``part_size`` images, whole batches),
runs them through ``Dataset.map_batches`` with one actor per GPU (CPU actors when the cluster
has no GPU), each actor a :class:`~gensim_im2vec.features.FeatureExtractor` that writes its part
as a :class:`~gensim_im2vec.store.FeatureStore` (sharded, committed, resumable), and finally
merges the parts by key into one store with :func:`merge_stores`:

    images ──► parts ──ray.data map_batches(_PartExtractor, one actor per GPU)──► STORE.ray-parts/part-NNNNNN/
            ──merge_stores (identity checked, keys deduplicated)──► STORE (one consolidated FeatureStore)

Resumable at two levels: a finished part has a marker file (written last) and is not redone; a
part whose actor died keeps its committed shards, so the rerun redoes only that part's
unfinished rows. Parts made by another model, layer, dtype or preprocessing are refused at
merge time (:class:`~gensim_im2vec.store.StoreMismatchError`). Before any work, a target that is
not a feature store, a store made with other settings (when extending it), and a
``STORE.ray-parts/`` holding anything but parts (it is deleted after the merge) are refused.
Preprocessing, batching and the model are the single-machine extractor's, so the features agree
row for row.

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

import inspect
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gensim_im2vec.fileio import atomic_write_json, check_output_folder
from gensim_im2vec.store import (
    IDENTITY_FIELDS,
    METADATA_FILE,
    FeatureStore,
    StoreMismatchError,
    check_store_folder,
    is_store,
)
from gensim_im2vec.validation import is_int

logger = logging.getLogger(__name__)

__all__ = ["RayExtractionReport", "extract_ray", "merge_stores", "plan_parts"]

PARTS_SUFFIX = ".ray-parts"
#: What extract_ray writes in ``STORE.ray-parts/``: part stores and their finished markers.
_PART_NAME = re.compile(r"^part-\d{6,}(\.done\.json)?$")
_COPY_ROWS = 65536
_PROVENANCE_DROP = ("count", "last_shard", "created", "updated", "package_version", "format_version", "pca")


# ----------------------------------------------------------------------------- merging


def _identity(meta) -> dict:
    return {f: meta.get(f) for f in IDENTITY_FIELDS}


def merge_stores(target, sources: Sequence, *, mode: str = "extend", shard_size: int = _COPY_ROWS) -> FeatureStore:
    """Merge feature stores into `target` by key (first occurrence wins), refusing mixed models.

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
    """
    stores = [s if isinstance(s, FeatureStore) else FeatureStore.open(s) for s in sources]
    if not stores:
        raise ValueError("merge_stores: no source stores given.")
    ref = stores[0]
    for s in stores:
        if (s.metadata.get("pca") or {}).get("applied") == "on_read":
            raise ValueError(f"merge_stores: {s.path} applies PCA on read; merge raw stores, then fit_pca().")
        diff = [f for f in IDENTITY_FIELDS if s.metadata.get(f) != ref.metadata.get(f)]
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
    added = 0
    seen = set(writer.done_keys)  # keys stored or buffered so far: the first occurrence wins
    try:
        for s in stores:
            rows = []
            for i, k in enumerate(s.keys):
                if k not in seen:
                    seen.add(k)
                    rows.append(i)
            for lo in range(0, len(rows), _COPY_ROWS):
                chunk = np.asarray(rows[lo : lo + _COPY_ROWS], dtype=np.int64)
                writer.write([s.keys[i] for i in chunk], np.asarray(s.raw_vectors[chunk]))
                added += len(chunk)
            for k, reason in s.skipped.items():
                if k not in seen:
                    writer.skip(k, reason)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    out = FeatureStore.open(target)
    logger.info("merged %i store(s) into %s: %i rows added, %i in total", len(stores), target, added, len(out))
    return out


# ----------------------------------------------------------------------------- planning


def _as_pairs(images, prefix: str) -> list[tuple[str, str]]:
    if isinstance(images, (str, os.PathLike)):
        from gensim_im2vec.features import images_under

        return images_under(images, prefix)
    pairs = [(str(k), os.fspath(p)) for k, p in images]
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("images: duplicate keys; every image needs its own key.")
    return pairs


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


def _check_target_identity(target: Path, fx_options: dict, run_options: dict) -> None:
    """Refuse, before any work, to extend a store made with other settings (model, weights, layer,
    dtype, preprocessing, normalisation): the extractor is built once here, on the CPU, for the
    identity the actors' parts will have, and checked as :meth:`FeatureExtractor.extract` checks it.
    Precision and JPEG decoding device are not part of the identity, so they are set for the CPU."""
    from gensim_im2vec.features import FeatureExtractor

    defaults = inspect.signature(FeatureExtractor.extract).parameters
    dtype = run_options.get("dtype", defaults["dtype"].default)
    normalise = run_options.get("normalise", defaults["normalise"].default)
    probe = {**fx_options, "precision": "fp32", "jpeg_device": None,
             "draft": False if fx_options.get("jpeg_device") is not None else fx_options.get("draft")}
    fx = FeatureExtractor(**probe, device="cpu", batch_size=1, num_workers=0, threads=1, progress=False)
    fx._target_pca(target, [], "extend", dict(fx.metadata, normalisation=normalise), dtype, None, 0, normalise)


def _part_finished(parts_root: Path, i: int, keys: Sequence[str]) -> bool:
    m = _marker(parts_root, i)
    if not m.exists() or not (_part_dir(parts_root, i) / "metadata.json").exists():
        return False
    with open(m, encoding="utf-8") as f:
        rec = json.load(f)
    return set(keys) <= set(rec["keys"])


# ----------------------------------------------------------------------------- the Ray actor


class _PartExtractor:
    """Ray Data actor: one FeatureExtractor (one GPU or a few CPU cores) extracting whole parts."""

    def __init__(self, fx_kwargs: dict, extract_kwargs: dict, parts_root: str) -> None:
        from gensim_im2vec.features import FeatureExtractor

        self.fx = FeatureExtractor(**fx_kwargs)
        self.extract_kwargs = extract_kwargs
        self.parts_root = Path(parts_root)

    def __call__(self, batch: dict) -> dict:
        from gensim_im2vec.features import STAGES

        out = {"part": [], "extracted": [], "already": [], "skipped": [], "seconds": [],
               **{f"stage_{k}": [] for k in STAGES}}
        for part, items in zip(batch["part"], batch["items"]):
            part = int(part)
            pairs = [tuple(p) for p in json.loads(items)]
            t0 = time.perf_counter()
            rep = self.fx.extract(pairs, _part_dir(self.parts_root, part), mode="extend", **self.extract_kwargs)
            marker = _marker(self.parts_root, part)
            # the marker last: the part is complete (a resume trusts it, so it is fsynced)
            atomic_write_json(marker, {"keys": [k for k, _ in pairs], "extracted": rep.extracted,
                                       "skipped": rep.skipped}, durable=True, indent=None)
            out["part"].append(part)
            out["extracted"].append(rep.extracted)
            out["already"].append(rep.already)
            out["skipped"].append(len(rep.skipped))
            out["seconds"].append(time.perf_counter() - t0)
            for k in STAGES:
                out[f"stage_{k}"].append(rep.stage_seconds.get(k, 0.0))
        return {k: np.asarray(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- driver


@dataclass
class RayExtractionReport:
    """What one :func:`extract_ray` call did.

    Attributes
    ----------
    store : FeatureStore
        The merged store.
    total : int
        Images given.
    extracted : int
        Rows extracted by this call (over all actors).
    already : int
        Images already in the target store or in finished parts (no work).
    parts : int
        Parts the image list was cut into.
    parts_run : int
        Parts sent to the actors (the others were finished before).
    actors : int
    device : str
        "cuda" (one actor per GPU) or "cpu".
    skipped : int
        Images that could not be used (reasons in the store's ``skipped``).
    seconds : float
    images_per_second : float
        Extracted images per second of wall time (incl. Ray start-up and the merge).
    part_seconds : list of float
        Wall time of each part run (per actor throughput = part_size / seconds).
    stage_seconds : dict of str to float
        The actors' :attr:`ExtractionReport.stage_seconds <gensim_im2vec.features.ExtractionReport>`
        summed over the parts run: where the actors spent their time.
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
    seconds: float = 0.0
    images_per_second: float = 0.0
    part_seconds: list = field(default_factory=list)
    stage_seconds: dict = field(default_factory=dict)

    def summary(self) -> str:
        from gensim_im2vec.features import stage_shares

        shares = stage_shares(self.stage_seconds)
        return (
            f"{self.extracted} extracted by {self.actors} {self.device} actor(s) in {self.seconds:.1f}s "
            f"({self.images_per_second:.1f} images/s), {self.parts_run}/{self.parts} parts run, {self.already} "
            f"already done, {self.skipped} skipped; {self.store.path} holds {len(self.store)} rows"
            + (f"; actors' time: {shares}" if shares else "")
        )


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
    return fx_options, run_options, mode, prefix


def _open_target(target: Path, parts_root: Path, mode: str, fx_options: dict, run_options: dict) -> set[str]:
    """Check the target store and the parts folder before any work (:func:`_check_folders`), and
    `mode` and the settings against the target store; the keys it already holds (extend), else none."""
    if mode not in ("extend", "create", "overwrite"):
        raise ValueError(f"mode: expected 'extend', 'create' or 'overwrite', got {mode!r}.")
    _check_folders(target, parts_root)
    if mode == "create" and (target / METADATA_FILE).exists():
        raise FileExistsError(f"feature store {str(target)!r} already exists; pass mode='extend' or 'overwrite'.")
    if mode == "extend" and (target / METADATA_FILE).exists():
        _check_target_identity(target, fx_options, run_options)
        return set(FeatureStore.open(target).keys)
    if mode == "overwrite":
        _remove_parts(parts_root)
    return set()


def _remove_parts(parts_root: Path) -> None:
    """Delete the parts folder if it still holds only what extract_ray wrote (else keep it, warning)."""
    if not parts_root.is_dir():
        return
    if not _own_parts(parts_root):
        logger.warning("extract_ray: %s now holds files extract_ray did not write; it is kept (delete it yourself "
                       "once they are safe)", parts_root)
        return
    shutil.rmtree(parts_root, ignore_errors=True)


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


def _parts_to_run(parts: list, parts_root: Path, done: set[str]) -> tuple[list[dict], int]:
    """The parts still to extract (as Ray items) and the images already done (in the store or in
    finished parts)."""
    todo, already = [], 0
    for i, part in enumerate(parts):
        keys = [k for k, _ in part if k not in done]
        if not keys or _part_finished(parts_root, i, keys):
            already += len(part)
            continue
        already += len(part) - len(keys)
        todo.append({"part": i, "items": json.dumps([[k, p] for k, p in part if k not in done])})
    return todo, already


def _run_parts(todo: list[dict], plan: _ClusterPlan, fx_kwargs: dict, extract_kwargs: dict,
               parts_root: Path) -> tuple[int, int, list[float], int, dict[str, float]]:
    """Extract the parts on a pool of actors; returns images extracted, skipped, seconds per part,
    images the actors found already done and the actors' seconds per stage, summed."""
    import ray.data

    from gensim_im2vec.features import STAGES

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
    extracted = skipped = already = 0
    part_seconds = []
    stages = dict.fromkeys(STAGES, 0.0)
    for row in results.iter_rows():
        for k in STAGES:
            stages[k] += float(row[f"stage_{k}"])
        extracted += int(row["extracted"])
        already += int(row["already"])
        skipped += int(row["skipped"])
        part_seconds.append(float(row["seconds"]))
        logger.info("part %i: %i extracted, %i skipped in %.1fs", row["part"], row["extracted"],
                    row["skipped"], row["seconds"])
    return extracted, skipped, part_seconds, already, stages


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
    **options,
) -> RayExtractionReport:
    """Extract features on a Ray cluster into one :class:`FeatureStore` (resumable).

    Parameters
    ----------
    images : str, os.PathLike or iterable of (key, path)
        A directory (keys as :func:`gensim_im2vec.features.list_images`) or explicit pairs, e.g.
        from a YFCC metadata file mapped to local paths. Paths must be readable on every node.
    store : str or os.PathLike
        Target store. Parts are written beside it, in ``STORE.ray-parts/``.
    address : str, optional
        Ray cluster address (``"auto"``, ``"HOST:6379"``); None starts or reuses a local Ray.
    ray_init : dict, optional
        Extra arguments of ``ray.init`` (e.g. ``{"num_cpus": 2}``) when Ray is not running yet.
    num_actors : int, optional
        Extractor actors. Default: one per GPU of the cluster (``GPUs / gpus_per_actor``); with no
        GPU, ``CPUs / cpus_per_actor``.
    gpus_per_actor : float
        GPUs per actor (1: one actor per GPU; 0.5 packs two on one GPU).
    cpus_per_actor : int, optional
        CPU cores per actor: its decoding workers on GPU nodes, its torch threads on CPU nodes
        (default: 1 without GPUs; 8 with).
    batch_size : int, optional
        Images per forward pass (default 256 with GPUs, 32 without).
    num_workers : int, optional
        Decoding processes per actor (default: ``cpus_per_actor - 1`` on GPU, 0 on CPU).
    part_size : int
        Images per part, the unit of work handed to an actor (rounded up to whole batches).
        A finished part is never redone.
    shard_size : int
        Images per committed shard inside a part: the most a dying actor loses.
    keep_parts : bool
        Keep ``STORE.ray-parts/`` after the merge (default: delete it). It is only ever deleted
        while it holds nothing but parts (``part-NNNNNN/`` stores, ``part-NNNNNN.done.json``).
    **options
        Options of :class:`~gensim_im2vec.features.FeatureExtractor` (``arch``, ``weights``,
        ``layer``, ``precision``, ``seed``, ...) and of its ``extract`` (``dtype``, ``normalise``,
        ``prefix``, ``mode``), with their defaults. ``mode`` applies to the target store:
        "extend" continues / appends, "create" refuses an existing store, "overwrite" also deletes
        earlier parts. The device, threads and progress are set per actor; a PCA is not supported
        across parts.

    Returns
    -------
    RayExtractionReport

    Raises
    ------
    FileExistsError
        Before any work: `store` is a non-empty folder that is not a feature store, or
        ``STORE.ray-parts/`` holds a file extract_ray did not write (the message names it); or
        mode="create" and the store exists.
    StoreMismatchError
        Before any work (mode="extend"): the existing store was made with other settings.
    """
    import ray

    t0 = time.perf_counter()
    fx_options, run_options, mode, prefix = _extractor_options(options)
    target = Path(store)
    parts_root = target.with_name(target.name + PARTS_SUFFIX)
    done = _open_target(target, parts_root, mode, fx_options, run_options)
    pairs = _as_pairs(images, prefix)
    if not ray.is_initialized():
        ray.init(address=address, **(ray_init or {}))
    plan = _ClusterPlan.of(ray.cluster_resources(), gpus_per_actor=gpus_per_actor, cpus_per_actor=cpus_per_actor,
                           num_actors=num_actors, batch_size=batch_size, num_workers=num_workers)
    part_size = max(1, math.ceil(part_size / plan.batch_size)) * plan.batch_size
    parts = plan_parts(pairs, part_size)
    parts_root.mkdir(parents=True, exist_ok=True)
    todo, already = _parts_to_run(parts, parts_root, done)
    logger.info(
        "extract_ray: %i images in %i parts of %i, %i parts to run on %i %s actor(s) (cluster: %g CPU, %g GPU)",
        len(pairs), len(parts), part_size, len(todo), plan.num_actors, "GPU" if plan.use_gpu else "CPU",
        plan.n_cpus, plan.n_gpus,
    )
    fx_kwargs = {
        **fx_options, "device": plan.device, "batch_size": plan.batch_size, "num_workers": plan.num_workers,
        "progress": False, "threads": None if plan.use_gpu else plan.cpus_per_actor,
    }
    extract_kwargs = {**run_options, "shard_size": min(shard_size, part_size)}
    extracted, skipped, part_seconds, more, stages = (
        _run_parts(todo, plan, fx_kwargs, extract_kwargs, parts_root) if todo else (0, 0, [], 0, {}))
    already += more
    sources = [_part_dir(parts_root, i) for i in range(len(parts)) if (_part_dir(parts_root, i) / "metadata.json").exists()]
    if sources:
        merged = merge_stores(target, sources, mode="overwrite" if mode == "overwrite" else "extend")
    else:
        merged = FeatureStore.open(target)
    if not keep_parts:
        _remove_parts(parts_root)
    secs = time.perf_counter() - t0
    report = RayExtractionReport(
        store=merged, total=len(pairs), extracted=extracted, already=already, parts=len(parts),
        parts_run=len(todo), actors=min(plan.num_actors, len(todo)) if todo else 0, device=plan.device,
        skipped=skipped, seconds=secs, images_per_second=extracted / secs if secs > 0 else 0.0,
        part_seconds=part_seconds, stage_seconds=stages,
    )
    logger.info("extract_ray: %s", report.summary())
    return report
