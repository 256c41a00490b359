"""The feature mean's reads from a feature store that is not in the page cache.

    python benchmarks/bench_feature_mean.py STORE [--images 100000] [--repeats 2]

The space head centres every image's features on ``μ``, the mean of at most 100,000 training
images' normalised features, read once per model when training begins
(``Im2Vec._fit_feature_mean``). At 100M images those rows are spread over the whole store (51 GB
at 256-d fp16, 256 GB at 1280-d), and each page fault on a memory map reads up to the disk's
``read_ahead_kb`` around the page: far more than the rows. This script evicts STORE's features
file from the page cache (``posix_fadvise(POSIX_FADV_DONTNEED)``, no root needed), then computes
μ as the model does from a pseudo-random `--images` of the store's rows, once with the map's
default advice (the reference) and once as the model reads them
(:func:`gensim_im2vec.image_features.scattered_reads`: ``MADV_RANDOM`` after ``MADV_WILLNEED``
on each run of the rows' pages), and prints the time and the bytes read from disk
(``read_bytes`` of /proc/self/io) of each and their ratios. Both give the same μ (checked).

A store of 10M rows: ``python benchmarks/bench_scale.py --images 10000000 --dir DIR`` writes one
(``DIR/store-10000000x256-s0``).
"""

from __future__ import annotations

import argparse
import os
import time
from types import SimpleNamespace

import numpy as np
from _common import evict, io_bytes

import gensim_im2vec.model as model_module
from gensim_im2vec import image_features
from gensim_im2vec.image_features import ImageFeatures
from gensim_im2vec.model import Im2Vec
from gensim_im2vec.store import FeatureStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store", help="a FeatureStore folder")
    ap.add_argument("--images", type=int, default=100_000, help="rows μ is fitted from (the model's at most 100k)")
    ap.add_argument("--repeats", type=int, default=2, help="cold runs of each way")
    args = ap.parse_args()
    store = FeatureStore.open(args.store, mmap=True)
    feats = ImageFeatures.from_any(store)
    path = os.path.join(args.store, "features.npy")
    n = len(store)
    # what _fit_feature_mean needs of a model: its images' rows (all of the store's here) and a seed
    model = SimpleNamespace(_vocab_image_rows=np.arange(n, dtype=np.int64), seed=1, features=feats,
                            normalize_features=True, feature_mean=None)
    print(f"{path}: {n:,} rows x {store.dim} {store.vectors.dtype}, {os.path.getsize(path) / 2**30:.2f} GiB; "
          f"μ from {min(args.images, n):,} rows")
    real = image_features.scattered_reads
    plain = lambda vectors, rows, mode="prefetch": real(vectors, rows, "plain")  # noqa: E731
    results = {}
    for name, reads in (("map's default advice (the reference)", plain), ("scattered_reads (the model's)", real)):
        times, read, means = [], [], []
        for _ in range(args.repeats):
            image_features.release(feats.vectors)  # its mapped pages first
            evict(path)
            model_module.scattered_reads = reads  # what _fit_feature_mean reads with
            try:
                r0, t0 = io_bytes("read_bytes"), time.perf_counter()
                Im2Vec._fit_feature_mean(model, max_images=args.images)
                times.append(time.perf_counter() - t0)
                read.append(io_bytes("read_bytes") - r0)
            finally:
                model_module.scattered_reads = real
            means.append(model.feature_mean.copy())
        results[name] = (float(np.median(times)), float(np.median(read)), means[0])
        print(f"  {name:<40} {np.median(times):7.2f} s  {np.median(read) / 2**20:9.1f} MiB read from disk "
              f"(runs: {', '.join(f'{t:.2f} s' for t in times)})", flush=True)
    (t_ref, r_ref, m_ref), (t_new, r_new, m_new) = results.values()
    assert np.array_equal(m_ref, m_new), "the two ways gave different means"
    print(f"scattered_reads / default: {t_new / t_ref:.2f}x the time, {r_new / max(r_ref, 1):.3f}x the bytes read "
          f"(the same μ)")


if __name__ == "__main__":
    main()
