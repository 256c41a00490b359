"""What loading a model over a feature store costs, now and as it was: time and private memory.

    python benchmarks/bench_load.py [--images 1000000] [--dir /tmp/bench-load] [--repeats 2]

Two things a load no longer does: build the store's ``key → row`` dict (the model's vocabulary
keeps each image's row; the dict is built when a key is first looked up in ``model.features``), and
unpickle ``wv.key_to_index`` (``save()`` leaves it out of the pickle, the load builds it once from
``index_to_key``). Builds (once, kept in DIR) a float16 store of N images × 32 features and a model
of one epoch over documents ``[image, two of 500 tags]`` (D 16), saved twice beside it: as
``save()`` saves it now, and with ``wv.key_to_index`` in the pickle (as before). Each load runs in
a fresh process, interleaved; the reference ("before") loads the second file and then builds the
store's dict. Prints seconds, private memory (``RssAnon``) and the saved pickle's size, and their
ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys

import numpy as np

from gensim_im2vec import Im2Vec
from gensim_im2vec.store import FeatureStore

_CHILD = r"""
import gc, json, sys, time
from gensim_im2vec import Im2Vec
def anon():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("RssAnon:"))
before = anon(); t = time.perf_counter()
model = Im2Vec.load(sys.argv[1])
if sys.argv[2] == "before":
    model.features.key_to_index
seconds = time.perf_counter() - t; gc.collect()
print(json.dumps({"seconds": seconds, "private": anon() - before}))
"""


def build(n: int, directory: str) -> tuple[str, str]:
    path, before = (os.path.join(directory, f"m{n}{tail}.model") for tail in ("", "-before"))
    if os.path.exists(path) and os.path.exists(before):
        return path, before
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    keys = [f"img:{i:09d}" for i in range(n)]
    store_path = os.path.join(directory, f"store{n}")
    with FeatureStore.create(store_path, dim=32, dtype="float16", mode="overwrite") as w:
        for lo in range(0, n, 100_000):
            w.write(keys[lo:lo + 100_000], rng.random((min(100_000, n - lo), 32), dtype=np.float32) + 0.1)
    docs = [[k, f"t{i % 500}", f"t{(i * 7) % 500}"] for i, k in enumerate(keys)]
    model = Im2Vec(docs, image_features=FeatureStore.open(store_path), vector_size=16, min_count=1, epochs=1,
                   workers=1, sample=0, seed=1)
    model.save(path)
    with contextlib.ExitStack() as stack:  # the pickle as it was: with wv.key_to_index
        stack.callback(setattr, Im2Vec, "_saved_without_key_index", Im2Vec._saved_without_key_index)
        Im2Vec._saved_without_key_index = lambda self: contextlib.nullcontext()
        model.save(before)
    return path, before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--dir", default="/tmp/bench-load", help="the store and the model (kept between runs)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    files = dict(zip(("now", "before"), build(args.images, args.dir)))
    runs: dict[str, list[dict]] = {"before": [], "now": []}
    for _ in range(args.repeats):
        for how in ("before", "now"):  # interleaved
            out = subprocess.run([sys.executable, "-c", _CHILD, files[how], how], check=True, capture_output=True,
                                 text=True)
            runs[how].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {how: (min(r["seconds"] for r in rs), min(r["private"] for r in rs), os.path.getsize(files[how]))
            for how, rs in runs.items()}
    print(f"Im2Vec.load of {args.images:,} images over a store ({args.repeats} runs each, best):")
    for how, label in (("before", "before (key dicts built/unpickled)"), ("now", "now")):
        s, p, size = best[how]
        print(f"  {label:<36s} {s:6.2f} s  {p / 2**20:8.0f} MiB private  pickle {size / 2**20:6.1f} MiB")
    (s0, p0, z0), (s1, p1, z1) = best["before"], best["now"]
    print(f"  ratio now / before: time {s1 / s0:.2f}, private memory {p1 / p0:.2f}, pickle {z1 / z0:.2f}")


if __name__ == "__main__":
    main()
