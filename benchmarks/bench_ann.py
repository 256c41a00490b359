"""Exact vs approximate ``most_similar`` on mixed word + image vectors: latency and recall@10.

Both searches run in the same process on the same vectors, one query at a time on ONE core
(BLAS and OpenMP limited to one thread), so the ratio is the algorithmic gain, not a thread
count. The exact search is gensim's own ``wv.most_similar(key, topn=10)``; the approximate one
is :func:`gensim_im2vec.index.ann_most_similar` (same semantics: the query key left out).

The vectors imitate a trained joint space: topic centres, each topic a low-dimensional
Gaussian cluster in a ``--latent-dim`` space mapped linearly into ``--dim`` dimensions, plus a
little isotropic noise, images shifted by a common "modality gap" vector. Isotropic Gaussian
vectors (``--latent-dim 0``) are the worst
case for every ANN method and look nothing like trained embeddings.

    python benchmarks/bench_ann.py                          # 1M x 200, faiss HNSW (+ annoy if asked)
    python benchmarks/bench_ann.py --n 100000 --backends ivf hnsw annoy
    python benchmarks/bench_ann.py --n 200000 --backends ivf ivfpq --nprobe 16 32 --rerank 1 4 10

Prints recall@10 and the median/p95 latency of each setting, and the speed-up over exact; for
faiss indexes also the index's bytes per vector (its serialised size over the vectors it holds:
what it keeps in memory, less the slack of its growing lists). ``ivfpq`` re-ranks its candidates
by the exact cosines of the KeyedVectors' own rows: ``--mmap DIR`` saves them and queries them
memory-mapped, as a model loaded with ``Im2Vec.load(path, mmap="r")`` is.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def make_vectors(n: int, dim: int, image_share: float, n_topics: int, latent_dim: int, seed: int):
    """Keys and float32 vectors of `n` mixed words (``w<i>``) and images (``img:<i>``).

    Topics are Gaussian clusters in a `latent_dim`-dimensional space mapped linearly into `dim`
    dimensions, plus isotropic noise; images are shifted by a common modality-gap vector.
    ``latent_dim=0``: isotropic Gaussian vectors (no structure at all).
    """
    rng = np.random.default_rng(seed)
    n_img = int(round(n * image_share))
    out = np.empty((n, dim), dtype=np.float32)
    L = max(latent_dim, 1)
    centres = rng.normal(size=(n_topics, L)).astype(np.float32)
    proj = (rng.normal(size=(L, dim)) / np.sqrt(L)).astype(np.float32)
    gap = (0.3 * rng.normal(size=dim) / np.sqrt(dim) * np.sqrt(L)).astype(np.float32)
    chunk = 100_000
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        if latent_dim > 0:
            t = rng.integers(n_topics, size=hi - lo)
            z = centres[t] + 0.5 * rng.normal(size=(hi - lo, L)).astype(np.float32)
            x = z @ proj + 0.1 * rng.normal(size=(hi - lo, dim)).astype(np.float32)
        else:
            x = rng.normal(size=(hi - lo, dim)).astype(np.float32)
        x[np.arange(lo, hi) >= n - n_img] += gap
        out[lo:hi] = x
    keys = [f"w{i}" for i in range(n - n_img)] + [f"img:{i}" for i in range(n_img)]
    return keys, out


def percentile_ms(times, q):
    return 1000.0 * float(np.percentile(times, q))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="vectors (words + images)")
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--image-share", type=float, default=0.8, help="share of the vectors that are images")
    ap.add_argument("--topics", type=int, default=5000)
    ap.add_argument("--latent-dim", type=int, default=32, help="0: isotropic Gaussian (worst case)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--backends", nargs="+", default=["ivf", "hnsw"], choices=["ivf", "ivfpq", "hnsw", "annoy"],
                    help="faiss IVF-Flat, faiss IVF-PQ with exact re-rank, faiss HNSW, annoy (through gensim's "
                         "AnnoyIndexer)")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--nlist", type=int, default=None, help="IVF cells (default 4*sqrt(n) per modality)")
    ap.add_argument("--pq-m", type=int, default=None,
                    help="IVF-PQ bytes per vector, a divisor of --dim (default: the smallest divisor >= dim/4)")
    ap.add_argument("--rerank", type=int, nargs="+", default=[1, 4, 10],
                    help="IVF-PQ candidates per result re-ranked by exact cosine (1: PQ scores only); "
                         "each is measured at each --nprobe")
    ap.add_argument("--mmap", metavar="DIR", default=None,
                    help="save the vectors in DIR and query them memory-mapped (KeyedVectors.load(mmap='r'))")
    ap.add_argument("--m", type=int, default=32, help="faiss HNSW links per node")
    ap.add_argument("--ef-construction", type=int, default=80)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--num-trees", type=int, default=50)
    ap.add_argument("--search-k", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def exact_answers(kv, queries):
    """gensim's exact most_similar for every query, one core: ``({query: top-10 keys}, seconds per query)``."""
    from threadpoolctl import threadpool_limits

    exact, times = {}, []
    with threadpool_limits(1):
        kv.most_similar(queries[0], topn=10)  # warm-up
        for q in queries:
            s = time.perf_counter()
            exact[q] = [k for k, _ in kv.most_similar(q, topn=10)]
            times.append(time.perf_counter() - s)
    return exact, times


def build_index(kv, backend, args):
    """``(indexer, description, [{setting: value, ...}, ...])`` of one backend, built with `args.build_threads`."""
    from gensim_im2vec.index import ModalityIndexer

    if backend == "hnsw":
        idx = ModalityIndexer(kv, backend="faiss", kind="hnsw", m=args.m, ef_construction=args.ef_construction,
                              image_prefix="img:")
        return idx, f"faiss HNSW{args.m} efC={args.ef_construction}", [{"ef_search": v} for v in args.ef_search]
    if backend == "ivf":
        idx = ModalityIndexer(kv, backend="faiss", kind="ivf", nlist=args.nlist, image_prefix="img:")
        nl = "/".join(str(p.index.nlist) for p in idx._parts.values())
        return idx, f"faiss IVF{nl},Flat", [{"nprobe": v} for v in args.nprobe]
    if backend == "ivfpq":
        idx = ModalityIndexer(kv, backend="faiss", kind="ivfpq", nlist=args.nlist, pq_m=args.pq_m, image_prefix="img:")
        nl = "/".join(str(p.index.nlist) for p in idx._parts.values())
        return idx, f"faiss IVF{nl},PQ{idx.params['pq_m']}", [
            {"nprobe": v, "rerank": r} for v in args.nprobe for r in args.rerank]
    idx = ModalityIndexer(kv, backend="annoy", num_trees=args.num_trees, image_prefix="img:")
    return idx, f"annoy {args.num_trees} trees", [{"search_k": v} for v in args.search_k]


def index_bytes_per_vector(idx) -> float:
    """A faiss ModalityIndexer's size over the vectors it holds: each sub-index written by faiss
    (``write_index``: vectors or codes, ids, centroids, codebooks, graph links) to a temporary file,
    whose sizes are summed. Faiss's inverted lists grow by doubling in memory, so this is what the
    index must hold at least, not counting the labels (a list slot per key)."""
    import tempfile

    total = count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, part in idx._parts.items():
            fname = os.path.join(tmp, name)
            part.save(fname)
            total += os.path.getsize(fname)
            count += len(part.labels)
            os.unlink(fname)
    return total / max(count, 1)


def measure_backend(kv, backend, args, queries, exact, ex_med, sizes):
    """Recall@10 and latency of one backend at each of its settings: table rows. A faiss index's
    bytes per vector are appended to `sizes`."""
    from threadpoolctl import threadpool_limits

    from gensim_im2vec.index import ann_most_similar

    faiss = None
    if backend in ("hnsw", "ivf", "ivfpq"):
        import faiss

        faiss.omp_set_num_threads(args.build_threads)
    idx, desc, settings = build_index(kv, backend, args)
    print(f"{desc}: built in {idx.build_seconds:.1f}s ({args.build_threads} threads)")
    if faiss is not None:
        faiss.omp_set_num_threads(1)
        per_vector = index_bytes_per_vector(idx)
        print(f"  index size: {per_vector * args.n / 2**20:,.1f} MiB, {per_vector:,.1f} B per vector (the vectors "
              f"themselves: {4 * args.dim} B)")
        sizes.append((desc, per_vector))
    rows = []
    width = max(len(" ".join(f"{k}={v}" for k, v in setting.items())) for setting in settings) + 1
    for setting in settings:
        for name, val in setting.items():
            for part in idx._parts.values():
                setattr(part, name, val)
        label = " ".join(f"{name}={val}" for name, val in setting.items())
        pad = len(label) - len(str(val)) + 6 if len(setting) == 1 else width
        times, hit = [], 0
        with threadpool_limits(1):
            for q in queries:
                s = time.perf_counter()
                got = ann_most_similar(kv, q, topn=10, indexer=idx)
                times.append(time.perf_counter() - s)
                hit += len(set(exact[q]) & {k for k, _ in got})
        med = float(np.median(times))
        recall = hit / (10 * len(queries))
        rows.append((desc, label, recall, 1000 * med, percentile_ms(times, 95), ex_med / med))
        print(f"  {label:<{pad}} recall@10 {recall:.3f}  median {1000 * med:.3f} ms  "
              f"p95 {percentile_ms(times, 95):.3f} ms  speed-up x{ex_med / med:.0f}")
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    from gensim.models import KeyedVectors

    print(f"data: {args.n:,} vectors x {args.dim} ({args.image_share:.0%} images), {args.topics} topics, "
          f"latent dim {args.latent_dim}; {args.queries} queries (half words, half images); one core per query")
    t0 = time.perf_counter()
    keys, vecs = make_vectors(args.n, args.dim, args.image_share, args.topics, args.latent_dim, args.seed)
    kv = KeyedVectors(args.dim)
    kv.add_vectors(keys, vecs)
    del vecs
    if args.mmap:
        os.makedirs(args.mmap, exist_ok=True)
        path = os.path.join(args.mmap, "bench_ann.kv")
        kv.save(path, separately=["vectors"])
        kv = KeyedVectors.load(path, mmap="r")
        print(f"vectors memory-mapped from {path}.vectors.npy")
    kv.fill_norms()
    print(f"generated in {time.perf_counter() - t0:.1f}s")

    rng = np.random.default_rng(args.seed + 1)
    n_img = int(round(args.n * args.image_share))
    q_idx = np.concatenate([
        rng.choice(args.n - n_img, size=args.queries // 2, replace=False),
        args.n - n_img + rng.choice(n_img, size=args.queries - args.queries // 2, replace=False),
    ])
    queries = [keys[i] for i in q_idx]
    exact, t_exact = exact_answers(kv, queries)
    ex_med = float(np.median(t_exact))
    print(f"exact (gensim most_similar): median {1000 * ex_med:.2f} ms, p95 {percentile_ms(t_exact, 95):.2f} ms")
    sizes = []
    rows = [row for backend in args.backends
            for row in measure_backend(kv, backend, args, queries, exact, ex_med, sizes)]

    print("\n| index | setting | recall@10 | median ms | p95 ms | speed-up vs exact |")
    print("|---|---|---|---|---|---|")
    print(f"| exact (gensim) | - | 1.000 | {1000 * ex_med:.2f} | {percentile_ms(t_exact, 95):.2f} | x1 |")
    for desc, setting, recall, med, p95, sp in rows:
        print(f"| {desc} | {setting} | {recall:.3f} | {med:.3f} | {p95:.3f} | x{sp:.0f} |")
    if sizes:
        print(f"\n| index | index bytes per vector (vectors: {4 * args.dim} B) |")
        print("|---|---|")
        for desc, per_vector in sizes:
            print(f"| {desc} | {per_vector:,.1f} |")
    ok = [r for r in rows if r[2] >= 0.95 and r[5] >= 20]
    print(f"\ntarget recall@10 >= 0.95 at >= 20x lower latency: {'met by ' + ok[0][1] if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
