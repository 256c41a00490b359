"""What a feature store's ``key → row`` costs: :class:`~gensim_im2vec.store.KeyIndex` against a dict.

``FeatureStore.key_to_index`` was a dict of every key (``{k: i for i, k in enumerate(keys)}``),
built when a key is first looked up (``build_vocab``, ``model.features``, the CLI's report); it is
now a ``KeyIndex``: the keys' 64-bit digests sorted, the row of each, and where each run of
digests with the same top bits starts. This builds both over the same synthetic keys (``--keys``
of them, like ``img:photos/00012345_3fa9c1``, fresh strings as a store's ``keys.txt`` gives them),
each in a fresh process of its own (the dict's first, then the index's, interleaved
``--repeats`` times; the best of each), and prints for each size:

* **build**: seconds to build it from the key list (the key strings' hashes not yet cached);
* **memory**: bytes a key it holds once built, and the peak while building, above the key list
  (tracemalloc: NumPy reports its arrays to it), and the process's resident set (VmRSS) grown by
  the build, measured in a run of its own without tracemalloc;
* **one key**: ns a lookup of a key it holds (``k2i[key]``), and of one it does not (``key in
  k2i``, a tag word), the keys fresh strings in random order;
* **a document's tokens**: ns a token for ``[t for t in doc if t not in k2i]`` over documents of
  one image key and 8 tag words (what ``build_vocab``'s scan of the corpus did for each token);
* **a batch**: ns a key for the rows of 100,000 keys (half held) at once, ``key_rows(k2i, keys)``:
  ``KeyIndex.rows`` against the dict's ``get`` mapped in C (``np.fromiter(map(k2i.get, keys, repeat(-1)))``),
  as build_vocab now looks up the tokens of 4,096 documents at a time;

and the index's figure over the dict's (× ratio) for each.

With ``--build-vocab N``: ``Im2Vec.build_vocab`` over a store of N such keys (float16, 16 features,
in ``--dir``) and a corpus of one document an image (its key and 8 of 100,000 tags), each in a
fresh process, the store's ``key_to_index`` a KeyIndex or (the reference) the dict it was; the
rest of the code the same (its lookups a block of keys at a time). Seconds, and the peak resident
set above what it was before ``build_vocab`` (VmHWM, reset through ``/proc/self/clear_refs`` after
``malloc_trim`` gave the freed heap back: else build_vocab reuses it unseen).

    OMP_NUM_THREADS=1 python benchmarks/bench_store_keys.py                      # 1M and 5M keys, ≈ 2 min
    OMP_NUM_THREADS=1 python benchmarks/bench_store_keys.py --keys 1000000 --repeats 1
    OMP_NUM_THREADS=1 python benchmarks/bench_store_keys.py --build-vocab 1000000 --repeats 2   # ≈ 5 min

Measured 2026-12-07 on the project's 2-core VM, shared (load 2-3.6; docs/scale.md §7.2): held 14.1 / 15.4
B a key against the dict's 58.8 / 52.6 at 1M / 5M keys (× 0.24 / × 0.29), built in × 0.45 / × 0.38 the
time; one key × 1.0-1.5 the dict's time, 100,000 at once × 0.5; build_vocab over 1M images × 0.75 the
time, × 0.83 the peak resident set above its start.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc

import numpy as np
from _common import fresh, key_store, make_keys

QUERIES = 100_000


def build(kind: str, keys: list[str]):
    if kind == "dict":
        return {k: i for i, k in enumerate(keys)}
    from gensim_im2vec.store import KeyIndex

    return KeyIndex(keys)


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def child(kind: str, n: int, seed: int) -> dict:
    """One measurement of `kind` over `n` keys, in this (fresh) process."""
    from gensim_im2vec.store import key_rows  # (imported before any measurement)

    keys = make_keys(n, seed)
    gc.collect()
    before = rss()
    t = time.perf_counter()
    k2i = build(kind, keys)
    seconds = time.perf_counter() - t
    grown = rss() - before
    del k2i
    gc.collect()
    keys = fresh(keys)
    tracemalloc.start()
    k2i = build(kind, keys)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    rng = np.random.default_rng(seed + 1)
    hits = fresh([keys[i] for i in rng.integers(0, n, QUERIES).tolist()])
    misses = [f"tag{i}" for i in rng.integers(0, 2_000_000, QUERIES).tolist()]
    t = time.perf_counter()
    for k in hits:
        k2i[k]
    hit_ns = (time.perf_counter() - t) / QUERIES * 1e9
    t = time.perf_counter()
    for k in misses:
        k in k2i  # noqa: B015
    miss_ns = (time.perf_counter() - t) / QUERIES * 1e9
    docs = [[keys[i], *(f"tag{j}" for j in rng.integers(0, 100_000, 8).tolist())]
            for i in rng.integers(0, n, QUERIES // 9).tolist()]
    docs = [fresh(d) for d in docs]
    t = time.perf_counter()
    for doc in docs:
        [tok for tok in doc if tok not in k2i]
    doc_ns = (time.perf_counter() - t) / (len(docs) * 9) * 1e9
    batch = fresh([keys[i] for i in rng.integers(0, n, QUERIES // 2).tolist()] + misses[: QUERIES // 2])
    t = time.perf_counter()
    got = key_rows(k2i, batch)
    batch_ns = (time.perf_counter() - t) / len(batch) * 1e9
    assert (got[: QUERIES // 2] >= 0).all() and (got[QUERIES // 2:] == -1).all()
    return {"build_s": seconds, "held_B": held / n, "peak_B": peak / n, "rss_B": grown / n, "hit_ns": hit_ns,
            "miss_ns": miss_ns, "doc_ns": doc_ns, "batch_ns": batch_ns}


def status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def vocab_child(kind: str, store_path: str, seed: int) -> dict:
    """``build_vocab`` over the store at `store_path`, its key_to_index a dict (`kind` "dict") or a KeyIndex."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.store import FeatureStore

    if kind == "dict":  # the reference: the dict FeatureStore.key_to_index was
        def as_dict(self):
            if self._key_to_index is None:
                self._key_to_index = {k: i for i, k in enumerate(self.keys)}
            return self._key_to_index

        FeatureStore.key_to_index = property(as_dict)
    store = FeatureStore.open(store_path)
    rng = np.random.default_rng(seed + 2)
    tags = rng.integers(0, 100_000, (len(store), 8)).tolist()
    docs = [line.split() for line in  # fresh strings, as a corpus reader's
            "\n".join(" ".join([k, *(f"t{j}" for j in row)]) for k, row in zip(store.keys, tags)).split("\n")]
    del tags
    gc.collect()
    try:  # the freed heap back to the system, so that the peak counts what build_vocab allocates
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
    except OSError:
        pass
    before = status("VmRSS")
    t = time.perf_counter()
    model = Im2Vec(image_features=store, vector_size=16, min_count=1, workers=1, sample=0, seed=1)
    model.build_vocab(docs)
    seconds = time.perf_counter() - t
    assert len(model.image_keys) == len(store) and type(store.key_to_index).__name__ == ("dict" if kind == "dict"
                                                                                          else "KeyIndex")
    return {"seconds": seconds, "peak_MiB": (status("VmHWM") - before) / 2**20}


def build_vocab_runs(n: int, directory: str, repeats: int, seed: int) -> None:
    path = key_store(directory, n, 16, seed)
    runs: dict[str, list[dict]] = {"dict": [], "index": []}
    for _ in range(repeats):
        for kind in runs:
            out = subprocess.run([sys.executable, __file__, "--vocab-child", kind, path, "--seed", str(seed)],
                                 check=True, capture_output=True, text=True).stdout
            runs[kind].append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'images':>10} {'build_vocab':<34} {'dict':>10} {'KeyIndex':>10} {'ratio':>7}")
    for field, label in (("seconds", "seconds"), ("peak_MiB", "peak RSS above before, MiB")):
        d = min(r[field] for r in runs["dict"])
        k = min(r[field] for r in runs["index"])
        print(f"{n:>10,} {label:<34} {d:>10.4g} {k:>10.4g} {k / d:>6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--build-vocab", type=int, metavar="N", help="build_vocab over a store of N keys instead")
    ap.add_argument("--dir", default="/tmp/bench_store_keys", help="where --build-vocab's store is written")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--vocab-child", nargs=2, metavar=("KIND", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.seed)))
        return
    if args.vocab_child:
        print(json.dumps(vocab_child(args.vocab_child[0], args.vocab_child[1], args.seed)))
        return
    if args.build_vocab:
        build_vocab_runs(args.build_vocab, args.dir, args.repeats, args.seed)
        return
    print(f"{'keys':>10} {'figure':<34} {'dict':>10} {'KeyIndex':>10} {'ratio':>7}")
    for n in args.keys:
        runs: dict[str, list[dict]] = {"dict": [], "index": []}
        for _ in range(args.repeats):
            for kind in runs:
                out = subprocess.run([sys.executable, __file__, "--child", kind, str(n), "--seed", str(args.seed)],
                                     check=True, capture_output=True, text=True).stdout
                runs[kind].append(json.loads(out.strip().splitlines()[-1]))
        rows = [("build_s", "build, s"), ("held_B", "held, B a key (tracemalloc)"),
                ("peak_B", "build's peak, B a key (tracemalloc)"), ("rss_B", "RSS grown, B a key"),
                ("hit_ns", "one key held, ns"), ("miss_ns", "one key not held, ns"),
                ("doc_ns", "a document's token, ns"), ("batch_ns", "a batch, ns a key")]
        for field, label in rows:
            d = min(r[field] for r in runs["dict"])
            k = min(r[field] for r in runs["index"])
            print(f"{n:>10,} {label:<34} {d:>10.3g} {k:>10.3g} {k / d:>6.2f}x")


if __name__ == "__main__":
    main()
