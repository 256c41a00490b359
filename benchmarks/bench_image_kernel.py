"""Image kernel speed against the machine's limit, and what images cost in realistic documents.

    python benchmarks/bench_image_kernel.py [--features 512 1280 4096] [--images 20000]

1. Documents ``[tag, image, tag]`` with window=1 (image work dominates), D=200, one worker:
   image tokens/s, and the ratio of the achieved rate (4·D·F flops per image occurrence: the
   projection and the W update) to numpy's single-thread sgemm rate for the same shapes, measured
   in the same run. Target: >= 0.5 at F=1280.
2. Realistic documents (one image + 8 tags), F=1280: documents/s with the image vs the same
   documents without it.
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from gensim_im2vec import Im2Vec

D = 200


def sgemm_rate(n, F):
    """Single-thread sgemm flop rate for one job's projection + update shapes."""
    rng = np.random.default_rng(0)
    V = rng.random((n, F), dtype=np.float32)
    W = rng.random((D, F), dtype=np.float32)
    E = rng.random((n, D), dtype=np.float32)
    with threadpool_limits(limits=1, user_api="blas"):
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            H = V @ W.T
            W += E.T @ V
            best = max(best, 4 * n * D * F / (time.perf_counter() - t))
    assert H.shape == (n, D)
    return best


def train_rate(docs, feats, epochs=2):
    m = Im2Vec(image_features=feats, vector_size=D, window=1, sg=1, negative=5, min_count=1, sample=0,
               workers=1, epochs=epochs, seed=1, batch_words=10000)
    m.build_vocab(docs)
    t = time.perf_counter()
    m.train(docs, total_examples=len(docs), epochs=epochs)
    return time.perf_counter() - t, m._image_occurrences


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=int, nargs="+", default=[512, 1280, 4096])
    ap.add_argument("--images", type=int, default=20000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.images
    tags = [f"tag{i}" for i in range(500)]
    print(f"1. [tag, image, tag], window=1, D={D}, one worker, {n} images x 2 epochs")
    for F in args.features:
        feats = (list(f"img:{i}" for i in range(n)), rng.random((n, F), dtype=np.float32) + 0.01)
        docs = [[tags[i % 500], f"img:{i}", tags[(i * 7) % 500]] for i in range(n)]
        elapsed, occ = train_rate(docs, feats)
        rate = occ / elapsed
        per_job = 10000 // 3
        limit = sgemm_rate(per_job, F)
        print(f"   F={F:5d}: {rate:10,.0f} image tokens/s, {rate * 4 * D * F / 1e9:6.1f} GFLOP/s achieved, "
              f"sgemm {limit / 1e9:6.1f} GFLOP/s -> ratio {rate * 4 * D * F / limit:.2f}")
    F = 1280
    print(f"2. realistic documents: one image + 8 tags, F={F}, D={D}, window=5, one worker")
    feats = (list(f"img:{i}" for i in range(n)), rng.random((n, F), dtype=np.float32) + 0.01)
    with_img = [[f"img:{i}"] + [tags[int(t)] for t in rng.integers(0, 500, 8)] for i in range(n)]
    without = [d[1:] for d in with_img]
    res = {}
    for name, docs in (("with image", with_img), ("tags only", without)):
        m = Im2Vec(image_features=feats, vector_size=D, window=5, sg=1, negative=5, min_count=1, workers=1,
                   epochs=2, seed=1)
        m.build_vocab(docs)
        t = time.perf_counter()
        m.train(docs, total_examples=len(docs), epochs=2)
        res[name] = 2 * len(docs) / (time.perf_counter() - t)
        print(f"   {name:10s}: {res[name]:10,.0f} documents/s")
    print(f"   cost of the image: documents/s ratio {res['with image'] / res['tags only']:.2f} "
          f"(with / without)")


if __name__ == "__main__":
    main()
