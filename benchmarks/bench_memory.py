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

    python benchmarks/bench_memory.py                       # 1M x 1280 fp16, 100k touched
    python benchmarks/bench_memory.py --n-images 200000     # smaller disk footprint
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


def run_child(args, store: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--store", store, "--touched", str(args.touched),
           "--vector-size", str(args.vector_size), "--epochs", str(args.epochs), "--vocab", str(args.vocab), "--order", args.order]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"child failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")


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
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    big = os.path.join(args.store_dir, f"store-{args.n_images}x{args.dim}")
    small = os.path.join(args.store_dir, f"store-{args.small}x{args.dim}")
    build_store(big, args.n_images, args.dim, seed=0)
    build_store(small, args.small, args.dim, seed=0)
    results = {name: run_child(args, path) for name, path in (("small", small), ("big", big))}
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
    if not args.keep:
        import shutil

        shutil.rmtree(args.store_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
