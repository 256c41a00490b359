"""Resident memory while training over a memory-mapped FeatureStore far larger than the corpus.

Writes (once, reused afterwards) a store of ``--n-images`` random feature rows of ``--dim``
float16 through :class:`gensim_im2vec.store.FeatureStoreWriter` (1M x 1280 fp16 = 2.56 GB), then,
in a fresh process per configuration, evicts the file from the page cache, opens the store
memory-mapped, and trains an Im2Vec on documents that reference ``--touched`` images spread
over the whole store. A sampling thread records, every 20 ms:

- ``RssAnon``: the process's private memory (model, vocabulary, job buffers) — what must be
  bounded;
- ``RssFile``: page-cache pages of the memory-mapped store currently mapped into the process —
  clean, shared and dropped by the kernel under memory pressure, so it measures what was read,
  not what must stay resident;
- ``read_bytes`` from ``/proc/self/io``: bytes really read from disk (read amplification of the
  per-job feature gather).

Each configuration runs twice, with the full store and with a store of only ``--small`` rows,
so the table shows which figures grow with the store and which do not.

Then the first exact search of the big store's model, saved and loaded again with ``mmap="r"``
(a fresh process per search): the peak ``RssAnon`` over the search above the loaded model's,
sampled every 2 ms, against the size of ``wv.vectors``. Each search runs three ways, in the same run:
with gensim's ``KeyedVectors.fill_norms`` first (it squares a private copy of every vector at once),
with the loaded ``wv.norms`` dropped (a model saved without norms, as before ``Im2Vec.save`` saved them:
Im2Vec's searches fill them a block of rows at a time, :func:`gensim_im2vec.index.fill_norms`, and
gensim's own ``wv.most_similar`` squares every vector), and with the norms the model was saved with.
``--model PATH`` measures only that, on a saved model; ``--rows N`` on a model of N images
(``--vector-size``; built once in ``--store-dir`` over a small store, one epoch, and kept), and prints
what the norms cost the save.

    python benchmarks/bench_memory.py                       # 1M x 1280 fp16, 100k touched
    python benchmarks/bench_memory.py --n-images 200000     # smaller disk footprint
    python benchmarks/bench_memory.py --model m.model       # the searches of a saved model only
    python benchmarks/bench_memory.py --rows 1000000 --vector-size 100 --repeats 3   # a model of 1M rows x 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
from _common import evict, proc_status

MiB = 1024 * 1024


class Sampler(threading.Thread):
    """Peak RssAnon / RssFile, sampled every `interval` seconds, per named phase."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, dict] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self) -> None:
        s = proc_status(io=True)
        p = self.peaks.setdefault(self.phase, {"RssAnon": 0, "RssFile": 0})
        p["RssAnon"] = max(p["RssAnon"], s["RssAnon"])
        p["RssFile"] = max(p["RssFile"], s["RssFile"])

    def set_phase(self, name: str) -> None:
        self.sample()
        self.phase = name
        self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


def build_store(path: str, n: int, dim: int, seed: int) -> None:
    from gensim_im2vec.store import FeatureStore

    if os.path.exists(os.path.join(path, "metadata.json")):
        s = FeatureStore.open(path)
        if len(s) == n and s.dim == dim:
            print(f"reusing {path} ({n:,} x {dim} {s.metadata['dtype']})")
            return
        raise SystemExit(f"{path} holds another store ({len(s)} x {s.dim}); remove it or pass --store-dir")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    chunk = 65536
    with FeatureStore.create(path, dim=dim, dtype="float16", shard_size=chunk,
                             metadata={"arch": "random", "weights": "bench_memory"}) as w:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            x = rng.random((hi - lo, dim), dtype=np.float32)
            w.write([f"img:{i}" for i in range(lo, hi)], x)
    size = os.path.getsize(os.path.join(path, "features.npy"))
    print(f"wrote {path}: {n:,} x {dim} fp16 = {size / 1e9:.2f} GB in {time.perf_counter() - t0:.0f}s")


def _evict(memmap: np.ndarray, path: str) -> None:
    """Unmap the pages of `memmap` from this process and drop them from the page cache."""
    import mmap

    mm = getattr(memmap, "_mmap", None)
    if mm is None and isinstance(getattr(memmap, "base", None), mmap.mmap):
        mm = memmap.base
    if mm is not None:
        mm.madvise(mmap.MADV_DONTNEED)
    evict(path)


def child(args) -> None:
    """One measured run (fresh process)."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.store import FeatureStore

    feat_file = os.path.join(args.store, "features.npy")
    evict(feat_file)  # cold start: drop the store from the page cache
    base = proc_status(io=True)
    sampler = Sampler()
    sampler.start()
    t = {}
    t0 = time.perf_counter()
    sampler.set_phase("open store")
    store = FeatureStore.open(args.store)
    n = len(store)
    rng = np.random.default_rng(1)
    touched = np.sort(rng.choice(n, size=min(args.touched, n), replace=False))
    tags = [f"tag{i}" for i in range(args.vocab)]
    docs = []
    for j, r in enumerate(touched):
        t_ids = rng.integers(args.vocab, size=4)
        docs.append([f"img:{r}"] + [tags[i] for i in t_ids] + ["photo", "of", f"w{j % 997}"])
    if args.order == "random":  # jobs gather rows scattered over the whole store
        order = rng.permutation(len(docs))
        docs = [docs[i] for i in order]
    t["open"] = time.perf_counter() - t0
    sampler.set_phase("build_vocab")
    t1 = time.perf_counter()
    model = Im2Vec(image_features=store, vector_size=args.vector_size, sg=1, min_count=1, workers=2,
                   epochs=args.epochs, seed=1)
    model.build_vocab(docs)
    t["build_vocab"] = time.perf_counter() - t1
    # building the model validates every row of the store (a full read, see the phase table);
    # evict the store again so that training starts cold and its own gather is what is measured
    _evict(store.raw_vectors, feat_file)
    io_before_train = proc_status(io=True)["read_bytes"]
    sampler.set_phase("train (cold)")
    t2 = time.perf_counter()
    model.train(docs, total_examples=len(docs), epochs=args.epochs)
    t["train"] = time.perf_counter() - t2
    sampler.stop()
    end = proc_status(io=True)
    mem = model.estimate_memory()
    if args.save_model:
        model.save(args.save_model, sep_limit=0)  # wv.vectors in a .npy of its own: load(mmap="r") maps it
    out = {
        "store_rows": n,
        "store_bytes": os.path.getsize(feat_file),
        "touched": int(len(touched)),
        "peaks": sampler.peaks,
        "base_anon": base["RssAnon"],
        "read_bytes_total": end["read_bytes"] - base["read_bytes"],
        "read_bytes_train": end["read_bytes"] - io_before_train,
        "needed_bytes": int(len(touched)) * store.dim * store.vectors.dtype.itemsize,
        "seconds": t,
        "images_per_s": len(touched) * args.epochs / t["train"],
        "model_estimate": int(mem.get("total", 0)),
        "vm_hwm": end["VmHWM"],
    }
    print("RESULT " + json.dumps(out))


#: The first searches measured: Im2Vec's exact searches, the ``im2vec query`` prompt without an index,
#: and gensim's own ``model.wv.most_similar`` called directly (gensim's fill_norms either way).
SEARCHES = ("most_similar_words", "most_similar_images", "similar_by_image", "query (no index)", "wv.most_similar")


#: How a search child treats the loaded model's norms: "gensim": dropped, then gensim's own
#: ``KeyedVectors.fill_norms`` (every vector squared at once), as every search did before Im2Vec's searches
#: filled them in blocks; "unsaved": dropped (a model saved without norms, as before the save saved them);
#: "saved": as the model was saved with them.
NORMS = ("gensim", "unsaved", "saved")


def search_child(args) -> None:
    """One first search (`args.search`) of the model `args.model` loaded with ``mmap="r"`` (fresh
    process): the peak private memory over it, its norms as `args.norms` says (:data:`NORMS`)."""
    import gc

    from gensim.models.keyedvectors import KeyedVectors

    from gensim_im2vec import Im2Vec
    from gensim_im2vec.query import QuerySession

    model = Im2Vec.load(args.model, mmap="r")
    wv = model.wv
    saved_norms = None if wv.norms is None else type(wv.norms).__name__
    if args.norms != "saved":
        wv.norms = None
    image = next((k for k in wv.index_to_key if model.is_image(k)), None)
    key = image or wv.index_to_key[0]
    features = np.random.default_rng(1).standard_normal(model.W.shape[1]).astype(np.float32) \
        if model.W is not None else None
    session = QuerySession(model, topn=10, featurizer_factory=lambda metadata: None)
    searches = {
        "most_similar_words": lambda: model.most_similar_words(key, topn=10),
        "most_similar_images": lambda: model.most_similar_images(key, topn=10),
        "similar_by_image": lambda: model.similar_by_image(features, topn=10),
        "query (no index)": lambda: session.answer(key),
        "wv.most_similar": lambda: wv.most_similar(key, topn=10),
    }
    gc.collect()
    time.sleep(0.05)
    sampler = Sampler(interval=0.002)
    sampler.start()
    sampler.set_phase("search")
    base = proc_status()["RssAnon"]
    t0 = time.perf_counter()
    if args.norms == "gensim":
        KeyedVectors.fill_norms(wv)
    searches[args.search]()
    seconds = time.perf_counter() - t0
    time.sleep(0.02)
    sampler.stop()
    out = {"search": args.search, "norms": args.norms, "rows": len(wv), "wv_bytes": int(wv.vectors.nbytes),
           "base_anon": base, "peak_anon": sampler.peaks["search"]["RssAnon"],
           "end_anon": proc_status()["RssAnon"], "seconds": seconds, "mmap": isinstance(wv.vectors, np.memmap),
           "saved_norms": saved_norms}
    print("RESULT " + json.dumps(out))


def _result(cmd: list) -> dict:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"child failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")


def measure_searches(model_path: str, repeats: int = 1) -> None:
    """Each of :data:`SEARCHES`, each way of :data:`NORMS`, in a fresh process each, interleaved (the order
    of the ways turned by one each repeat); the least memory and time of `repeats`."""
    rows = []
    for search in SEARCHES:
        runs = {norms: [] for norms in NORMS}
        for k in range(repeats):
            for norms in NORMS[k % len(NORMS):] + NORMS[:k % len(NORMS)]:
                runs[norms].append(_result([sys.executable, __file__, "--search-child", "--model", model_path,
                                            "--search", search, "--norms", norms]))
        r = {}
        for norms, results in runs.items():
            best = min(results, key=lambda x: x["peak_anon"] - x["base_anon"])
            r[norms] = {**best, "seconds": min(x["seconds"] for x in results)}
        rows.append(r)
    first = rows[0]["saved"]
    print(f"\nfirst exact search of {model_path} loaded with mmap=\"r\" (wv.vectors "
          f"{'memory-mapped' if first['mmap'] else 'in memory'}: {first['rows']:,} rows, "
          f"{first['wv_bytes'] / MiB:,.1f} MiB; the norms it was saved with: {first['saved_norms'] or 'none'}); "
          f"transient private memory = peak RssAnon over the search - RssAnon before it (sampled every 2 ms); "
          f"best of {repeats}\n")
    print("| search | gensim's fill_norms first | no saved norms (saved before) | saved norms (now) "
          "| / wv.vectors (each) | saved / no saved | seconds (each) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        t = {how: max(0, r[how]["peak_anon"] - r[how]["base_anon"]) for how in NORMS}
        wvb = r["saved"]["wv_bytes"]
        print(f"| {r['saved']['search']} | " + " | ".join(f"{t[how] / MiB:,.1f} MiB" for how in NORMS)
              + " | " + " / ".join(f"{t[how] / wvb:.2f}" for how in NORMS)
              + f" | {t['saved'] / max(t['unsaved'], 1):.2f} | "
              + " / ".join(f"{r[how]['seconds']:.3f}" for how in NORMS) + " |")
    from gensim_im2vec.index import NORM_BLOCK_BYTES

    print(f"\n(no saved norms: Im2Vec's searches fill them in blocks of {NORM_BLOCK_BYTES / MiB:g} MiB, which live "
          "a few ms each and may fall between two samples; gensim's own wv.most_similar squares a copy of every "
          "vector. Saved norms: every search finds them filled.)")


def build_rows_model(args) -> str:
    """A model of `args.rows` images (`args.vector_size`), kept in `args.store_dir`: a float16 store of 32
    features, documents ``[image, two of 500 tags]``, one epoch on two workers; saved as ``save()`` saves it.
    Prints the save's time and the time of its norms' pass alone (:func:`gensim_im2vec.index.fill_norms`)."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.index import fill_norms
    from gensim_im2vec.store import FeatureStore

    n, d = args.rows, args.vector_size
    folder = os.path.join(args.store_dir, f"model-{n}x{d}")
    path = os.path.join(folder, "m.model")
    if os.path.exists(path):
        print(f"reusing {path}")
        return path
    os.makedirs(folder, exist_ok=True)
    store = os.path.join(folder, "store")
    rng = np.random.default_rng(0)
    with FeatureStore.create(store, dim=32, dtype="float16", mode="overwrite",
                             metadata={"arch": "random", "weights": "bench_memory"}) as w:
        for lo in range(0, n, 100_000):
            w.write([f"img:{i}" for i in range(lo, min(n, lo + 100_000))],
                    rng.random((min(100_000, n - lo), 32), dtype=np.float32) + 0.1)
    docs = [[f"img:{i}", f"t{i % 500}", f"t{(i * 7) % 500}"] for i in range(n)]
    t0 = time.perf_counter()
    model = Im2Vec(docs, image_features=FeatureStore.open(store), vector_size=d, min_count=1, epochs=1, workers=2,
                   sample=0, seed=1)
    print(f"built and trained {n:,} images x {d} in {time.perf_counter() - t0:.1f}s")
    model.wv.norms = None
    t0 = time.perf_counter()
    model.save(path)
    saved = time.perf_counter() - t0
    t0 = time.perf_counter()
    fill_norms(model.wv, force=True)  # the pass the save made
    norms = time.perf_counter() - t0
    print(f"save: {saved:.2f}s, of which the norms' pass ≈ {norms:.2f}s ({norms / saved:.2f}); the norms "
          f"{model.wv.norms.nbytes / MiB:,.1f} MiB beside {model.wv.vectors.nbytes / MiB:,.1f} MiB of vectors "
          f"({model.wv.norms.nbytes / model.wv.vectors.nbytes:.3f})")
    return path


def run_child(args, store: str, save_model: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", "--store", store, "--touched", str(args.touched),
           "--vector-size", str(args.vector_size), "--epochs", str(args.epochs), "--vocab", str(args.vocab), "--order", args.order]
    if save_model:
        cmd += ["--save-model", save_model]
    return _result(cmd)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=1_000_000, help="rows of the big store")
    ap.add_argument("--small", type=int, default=120_000, help="rows of the comparison store")
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--touched", type=int, default=100_000, help="images the corpus references")
    ap.add_argument("--vector-size", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--order", choices=["random", "store"], default="random",
                    help="documents in random order, or in the store's row order (sequential gathers)")
    ap.add_argument("--vocab", type=int, default=2000, help="distinct tags")
    ap.add_argument("--store-dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "im2vec-bench-memory"))
    ap.add_argument("--keep", action="store_true", help="keep the stores for the next run")
    ap.add_argument("--model", help="measure only the first searches of this saved model (no store, no training)")
    ap.add_argument("--no-search", action="store_true", help="leave out the first-search measurement")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each first search (the best is shown)")
    ap.add_argument("--rows", type=int, help="measure only the first searches of a model of ROWS images "
                                              "(--vector-size; built once in --store-dir and kept)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--save-model", help=argparse.SUPPRESS)
    ap.add_argument("--search-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--search", choices=SEARCHES, help=argparse.SUPPRESS)
    ap.add_argument("--norms", choices=NORMS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    if args.search_child:
        search_child(args)
        return
    if args.model:
        measure_searches(args.model, args.repeats)
        return
    if args.rows:
        measure_searches(build_rows_model(args), args.repeats)
        return
    big = os.path.join(args.store_dir, f"store-{args.n_images}x{args.dim}")
    small = os.path.join(args.store_dir, f"store-{args.small}x{args.dim}")
    build_store(big, args.n_images, args.dim, seed=0)
    build_store(small, args.small, args.dim, seed=0)
    big_model = None if args.no_search else os.path.join(args.store_dir, "model-big", "m.model")
    if big_model:
        os.makedirs(os.path.dirname(big_model), exist_ok=True)
    results = {name: run_child(args, path, model) for name, path, model in (("small", small, None),
                                                                            ("big", big, big_model))}
    print(f"\ncorpus: {args.touched:,} images (+ tags), vector_size {args.vector_size}, {args.epochs} epoch(s), "
          f"documents in {args.order} order, 2 workers; store file evicted from the page cache before each run\n")
    print("| store | on disk | peak RssAnon train (private) | peak RssFile train (mapped page cache) "
          "| disk read in train | needed rows | train images/s |")
    print("|---|---|---|---|---|---|---|")
    for name in ("small", "big"):
        r = results[name]
        pk = r["peaks"]
        print(f"| {r['store_rows']:,} x {args.dim} fp16 | {r['store_bytes'] / MiB:,.0f} MiB "
              f"| {pk['train (cold)']['RssAnon'] / MiB:,.0f} MiB | {pk['train (cold)']['RssFile'] / MiB:,.0f} MiB "
              f"| {r['read_bytes_train'] / MiB:,.0f} MiB | {r['needed_bytes'] / MiB:,.0f} MiB "
              f"| {r['images_per_s']:,.0f} |")
    print("\npeak RssAnon / RssFile by phase (MiB):")
    for name in ("small", "big"):
        r = results[name]
        phases = ", ".join(f"{ph}: {v['RssAnon'] / MiB:,.0f} / {v['RssFile'] / MiB:,.0f}" for ph, v in r["peaks"].items()
                           if ph != "start")
        print(f"  {r['store_rows']:>9,} rows: {phases}; disk read in total {r['read_bytes_total'] / MiB:,.0f} MiB; "
              f"model.estimate_memory() {r['model_estimate'] / MiB:,.0f} MiB; seconds {r['seconds']}")
    b, s = results["big"], results["small"]
    ratio = b["peaks"]["train (cold)"]["RssAnon"] / s["peaks"]["train (cold)"]["RssAnon"]
    print(f"\nstore x{b['store_rows'] / s['store_rows']:.1f} larger -> private memory in training x{ratio:.2f}; "
          f"store / peak private memory = {b['store_bytes'] / b['peaks']['train (cold)']['RssAnon']:.1f}")
    if big_model:
        measure_searches(big_model, args.repeats)
    if not args.keep:
        import shutil

        shutil.rmtree(args.store_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
