"""What `space_neighbours`' search costs, exact against a faiss index over the features
(``Im2Vec(space_neighbour_index=...)``), on synthetic CNN-like features.

The fit after training finds the k nearest of every training image among all of them: with the
exact search that is ``n²·F`` multiply-adds and the ``n × F`` unit features in memory; an IVF index
probes ``nprobe`` of its lists per image, and an IVF-PQ index keeps ``m`` bytes of code per image
and re-ranks ``4k`` candidates by their exact cosines, read from the features (or, with a faiss
refine stage, ``IVF256,PQ64,Refine(SQ8)``, by faiss's own copy of them in memory). For each search this
prints the seconds to find every image's k nearest (the fit's search; the same searches ``project``
runs for new images), the bytes it holds per image, the seconds to write it beside a saved model and
to read it back at a load against those to build it (``Im2Vec.save`` keeps it: no k-means again), and how close its neighbours are to the exact
ones, measured in the same run: recall@k of the exact neighbour sets, and the largest difference of
the neighbours' weight ``Σ s_j^20`` (a training image finds itself at cosine 1, the term's largest
weight, unless the index misses it); the largest error of its scores against the exact cosines of
the images it found ("max |Δs|": the weights' error apart from the images missed), and the feature
rows its search read per image ("rows read": at 100M images those are scattered reads of the store),
in the images' order and grouped by IVF list as the fit searches them ("by list"), and the same for
``--new`` images not in the index projected as one batch ("new read", "by list": ``project`` groups a
batch by the list each new image is nearest; the fewer new images a list gets, the less it saves).

The features: ``--images`` non-negative vectors (as a ReLU network's are) around ``--clusters``
centres of ``--features`` dimensions, the nearest image at cosine 0.8-0.95 as on the demo's
OpenClipArt features.

    OMP_NUM_THREADS=2 python benchmarks/bench_neighbour_search.py --images 50000 --features 1280 \
        --specs IVF256,Flat IVF256,PQ64     # ≈ 3 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import gensim_im2vec.model as model_module
from gensim_im2vec.image_features import ImageFeatures


def features(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.normal(size=(clusters, dim))) * (rng.random((clusters, dim)) < 0.3)
    X = centres[rng.integers(0, clusters, n)] + 0.35 * np.abs(rng.normal(size=(n, dim)))
    return X.astype(np.float32)


def run(search, Q: np.ndarray, k: int, grouped: bool = False) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Every query's k nearest by `search`, the seconds, and the feature rows it read per query (a
    code index's re-rank reads its candidates' rows from the features: at scale, from the store);
    `grouped`: the queries searched grouped by IVF list, as the model searches a batch (``plan``)."""
    read = [0]
    features = getattr(search, "features", None)
    if features is not None:  # (counted on this instance alone)
        gather = features.gather_normalized
        features.gather_normalized = lambda rows, **kw: read.__setitem__(0, read[0] + len(rows)) or gather(rows, **kw)
    start = time.perf_counter()
    S, idx = np.empty((len(Q), k), np.float32), np.empty((len(Q), k), np.int64)
    try:
        plan = search.plan(Q) if grouped else None
        for lo in range(0, len(Q), search.block):
            at = slice(lo, lo + search.block) if plan is None else plan[0][lo:lo + search.block]
            S[at], idx[at] = search.search(Q[at], k, None if plan is None else (plan[1][at], plan[2][at]))
    finally:
        if features is not None:
            del features.gather_normalized
    return S, idx, time.perf_counter() - start, read[0] / max(len(Q), 1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--features", type=int, default=1280)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--k", type=int, default=model_module.NEIGHBOURS)
    ap.add_argument("--specs", nargs="+", default=["IVF256,Flat", "IVF256,PQ64"])
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--new", type=int, default=10_000, help="images not in the index, projected as one batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rerank", type=int, default=model_module.NEIGHBOUR_RERANK,
                    help="candidates re-ranked by their exact cosines, times k, for code indexes (1: none)")
    args = ap.parse_args(argv)
    model_module.NEIGHBOUR_RERANK = args.rerank
    import faiss

    X = features(args.images + args.new, args.features, args.clusters, args.seed)
    X, N = X[:args.images], X[args.images:]
    N /= np.linalg.norm(N, axis=1, keepdims=True)
    feats = ImageFeatures([f"img:{i}" for i in range(len(X))], X)
    rows = np.arange(len(X))
    Q = feats.gather_normalized(rows)
    print(f"{args.images:,} images x {args.features} features, k={args.k}; every image's k nearest among them "
          f"(code indexes re-rank {args.rerank} x k)")
    start = time.perf_counter()
    exact = model_module._ExactNeighbours(feats, rows)
    built = time.perf_counter() - start
    S0, I0, t0, _ = run(exact, Q, args.k)
    w0 = (S0.clip(0).astype(np.float64) ** model_module.NEIGHBOUR_POWER).sum(1)
    second = np.sort(S0, axis=1)[:, -2]
    print(f"  nearest other image: cosine median {np.median(second):.3f} [10%: {np.quantile(second, 0.1):.3f}, "
          f"90%: {np.quantile(second, 0.9):.3f}]")
    print(f"  {'search':<16s} {'build s':>8s} {'search s':>9s} {'x exact':>8s} {'B/image':>8s} {'recall@k':>9s} "
          f"{'self found':>10s} {'max |Δw|/w':>10s} {'max |Δs|':>9s} {'rows read':>9s} {'by list':>8s} {'new read':>8s} {'by list':>8s} {'save s':>7s} {'load s':>7s} {'load/build':>10s}")
    print(f"  {'exact':<16s} {built:8.1f} {t0:9.1f} {1.0:8.2f} {exact.T.nbytes / len(X):8.0f} {1.0:9.3f} "
          f"{1.0:10.3f} {0.0:10.4f} {0.0:9.5f} {0:9.0f} {0:8.0f} {0:8.0f} {0:8.0f}")
    sets = [set(r) for r in I0.tolist()]
    for spec in args.specs:
        start = time.perf_counter()
        search = model_module._FaissNeighbours(feats, rows, spec, args.nprobe, args.k)
        built = time.perf_counter() - start
        S, idx, t, read = run(search, Q, args.k)
        # (the fit and project() search a batch grouped by IVF list when they re-rank from the features: their
        # reads, for the fitted images and for --new images not in the index, searched as one batch)
        grouped = run(search, Q, args.k, grouped=True)[3]
        new, new_grouped = run(search, N, args.k)[3], run(search, N, args.k, grouped=True)[3]
        recall = np.mean([len(sets[q] & set(r)) / len(sets[q]) for q, r in enumerate(idx.tolist())])
        found = np.mean([q in r for q, r in enumerate(idx.tolist())])
        w = (S.clip(0).astype(np.float64) ** model_module.NEIGHBOUR_POWER).sum(1)
        error = max(float(np.abs(S[lo:lo + 4096] - np.einsum("qkf,qf->qk", Q[idx[lo:lo + 4096]], Q[lo:lo + 4096])).max())
                    for lo in range(0, len(Q), 4096))  # (the scores against the cosines of the images it found)
        size = len(faiss.serialize_index(search.index)) / len(X)
        with tempfile.TemporaryDirectory() as tmp:  # as Im2Vec.save writes it and a loaded model reads it
            path, token, digest = os.path.join(tmp, "m.model.neighbours.faiss"), "0" * 32, "0" * 40
            start = time.perf_counter()
            search.write(path, token, digest)
            saved = time.perf_counter() - start
            start = time.perf_counter()
            again = model_module._FaissNeighbours.read(path, token, digest, feats, rows, spec, args.nprobe, args.k)
            loaded = time.perf_counter() - start
        assert again is not None and again.index.ntotal == len(X)
        print(f"  {spec:<16s} {built:8.1f} {t:9.1f} {t / t0:8.2f} {size:8.0f} {recall:9.3f} {found:10.3f} "
              f"{np.max(np.abs(w - w0) / w0):10.4f} {error:9.5f} {read:9.1f} {grouped:8.1f} {new:8.1f} {new_grouped:8.1f} {saved:7.2f} {loaded:7.2f} {loaded / built:10.4f}", flush=True)


if __name__ == "__main__":
    main()
