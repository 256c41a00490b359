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
    python benchmarks/bench_ann.py --n 1000000 --backends ivfpq --nprobe 16 --rerank 4 10 --mmap /tmp/ann --cold

Prints recall@10 and the median/p95 latency of each setting, and the speed-up over exact; for
faiss indexes also the index's bytes per vector (its serialised size over the vectors it holds:
what it keeps in memory, less the slack of its growing lists). ``ivfpq`` re-ranks its candidates
by the exact cosines of the KeyedVectors' own rows: ``--mmap DIR`` saves them and queries them
memory-mapped, as a model loaded with ``Im2Vec.load(path, mmap="r")`` is.

``--cold`` (ivfpq with ``--mmap``) also measures each setting with the vectors file out of the
page cache: the file read whole into the cache (checked with ``mincore``) and the queries timed
warm, then the file evicted (``posix_fadvise(POSIX_FADV_DONTNEED)``, this file only, no root
needed; checked with ``mincore`` before every query) before EACH query, the worst case: every row
the re-rank reads comes from disk. Warm and cold for each of the re-rank's ways of reading the
map (``index._RERANK_READS``): the map's default advice (the kernel reads up to ``read_ahead_kb``
around each faulting page), ``MADV_RANDOM`` (the faulting page only), and the library's,
``MADV_RANDOM`` after ``MADV_WILLNEED`` on every row (their reads start together). Prints
median/p90/p99 per query warm and cold, cold/warm, the rows a query's
re-rank reads, the distinct 4 KiB pages they lie on, and the pages read into the cache per cold
query (``mincore`` after it), over ``--cold-queries`` of the queries. One run; the latencies
depend on the disk, its cache on the host (a VM's virtual disk) and on what else runs.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import time

import numpy as np
from _common import evict


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
    ap.add_argument("--cold", action="store_true",
                    help="ivfpq with --mmap: also time each setting with the vectors file evicted from the page "
                         "cache before each query, and warm, in the same run")
    ap.add_argument("--cold-queries", type=int, default=200,
                    help="--cold: queries timed warm and cold, evenly spaced among --queries (a cold query with "
                         "the default read-around can read most of the file)")
    ap.add_argument("--m", type=int, default=32, help="faiss HNSW links per node")
    ap.add_argument("--ef-construction", type=int, default=80)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--num-trees", type=int, default=50)
    ap.add_argument("--search-k", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.cold and not args.mmap:
        ap.error("--cold needs --mmap DIR: it evicts the memory-mapped vectors file from the page cache")
    return args


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


PAGE = 4096  # the page size of the counts (mincore's is the system's: 4 KiB on x86-64 and most arm64)


class PageCache:
    """One file's pages in the page cache: counted with ``mincore(2)`` over a read-only map of it
    that is never read, dropped with ``posix_fadvise(POSIX_FADV_DONTNEED)``, filled by reading it."""

    def __init__(self, path: str) -> None:
        if os.sysconf("SC_PAGE_SIZE") != PAGE:
            raise RuntimeError(f"--cold counts 4 KiB pages; this system's pages are {os.sysconf('SC_PAGE_SIZE')} B")
        self.path = path
        self.size = os.path.getsize(path)
        self.pages = (self.size + PAGE - 1) // PAGE
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # DONTNEED leaves dirty pages (the file was just saved) in the cache
            self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self._addr = np.frombuffer(self._map, dtype=np.uint8).ctypes.data
        self._vec = np.zeros(self.pages, dtype=np.uint8)
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]

    def resident(self) -> int:
        """Pages of the file in the page cache now."""
        if self._libc.mincore(self._addr, self.size, self._vec.ctypes.data) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mincore: {os.strerror(err)}")
        return int(np.count_nonzero(self._vec & 1))

    def evict(self, vectors) -> None:
        """Drop the file from the page cache; the pages `vectors` (its memory map) holds are
        unmapped first (``MADV_DONTNEED``), as DONTNEED leaves mapped pages in the cache."""
        from gensim_im2vec.image_features import release

        release(vectors)
        evict(self.path)

    def fill(self) -> None:
        """Read the whole file (into the page cache)."""
        buf = bytearray(1 << 22)
        with open(self.path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def rerank_pages(kv, idx, queries, topn: int = 10):
    """Per query: the model rows its re-rank reads and the distinct 4 KiB pages of the vectors file
    they lie on (the query's own row, read to form the query, not counted). An untimed pass that
    records the rows each IVF-PQ part's ``cosines`` is given."""
    from gensim_im2vec.index import ann_most_similar

    log, parts = [], [p for p in idx._parts.values() if getattr(p, "rows", None) is not None]
    for part in parts:
        def cosines(positions, unit_query, _orig=part.rows.cosines, _rows=part.rows):
            log.append(_rows._model_rows(positions))
            return _orig(positions, unit_query)
        part.rows.cosines = cosines  # an instance attribute shadowing the method
    offset, row_bytes = int(getattr(kv.vectors, "offset", 0)), 4 * kv.vector_size
    rows, pages = [], []
    try:
        for q in queries:
            log.clear()
            ann_most_similar(kv, q, topn=topn, indexer=idx)
            r = np.concatenate(log) if log else np.empty(0, dtype=np.int64)
            start = offset + r * row_bytes
            rows.append(len(r))
            pages.append(len(np.unique(np.concatenate([start // PAGE, (start + row_bytes - 1) // PAGE]))))
    finally:
        for part in parts:
            del part.rows.cosines
    return rows, pages


#: The re-rank's ways of reading a memory-mapped model (``gensim_im2vec.index._RERANK_READS``), timed
#: cold each: the library's ("prefetch") and the two it was measured against.
READ_MODES = (("plain", "map's default advice (read-around)"), ("random", "MADV_RANDOM"),
              ("prefetch", "MADV_RANDOM + WILLNEED (the library's)"))


def measure_cold(kv, idx, queries, cache: PageCache, label: str) -> dict:
    """Latency per query of the current setting warm (the whole file cached, the library's reads)
    and cold (the file evicted before each query) with each of :data:`READ_MODES`."""
    from threadpoolctl import threadpool_limits

    from gensim_im2vec import index as index_module
    from gensim_im2vec.index import ann_most_similar

    rows, pages = rerank_pages(kv, idx, queries)  # `queries`: the --cold-queries of them
    out = {"label": label, "rows": float(np.median(rows)), "pages": float(np.median(pages))}
    cache.fill()
    out["warm_resident"] = cache.resident() / cache.pages
    library = index_module._RERANK_READS
    try:
        with threadpool_limits(1):
            for name, _ in READ_MODES:
                index_module._RERANK_READS = name  # warm: each mode's cost when nothing is read from disk
                times = []
                for q in queries:
                    s = time.perf_counter()
                    ann_most_similar(kv, q, topn=10, indexer=idx)
                    times.append(time.perf_counter() - s)
                out["warm_" + name] = times
            for name, _ in READ_MODES:
                index_module._RERANK_READS = name
                times, before, read = [], [], []
                for q in queries:
                    cache.evict(kv.vectors)
                    before.append(cache.resident())
                    s = time.perf_counter()
                    ann_most_similar(kv, q, topn=10, indexer=idx)
                    times.append(time.perf_counter() - s)
                    read.append(cache.resident())
                out[name], out[name + "_before"], out[name + "_read"] = times, max(before), float(np.median(read))
    finally:
        index_module._RERANK_READS = library
    cache.fill()  # the next setting's table row is timed warm
    w = out["warm_plain"]
    print(f"  {label}, {len(queries)} queries: re-rank reads {out['rows']:.0f} rows a query (median) on {out['pages']:.0f} distinct 4 KiB "
          f"pages; warm: {out['warm_resident']:.1%} of the file cached")
    for name, what in READ_MODES:
        for state in ("warm", "cold"):
            t = out["warm_" + name] if state == "warm" else out[name]
            extra = "" if state == "warm" else (
                f"  x{np.median(t) / np.median(w):.0f} warm (plain); pages read {out[name + '_read']:.0f} (median), "
                f"resident before a query <= {out[name + '_before']}")
            print(f"    {state} {what:<40} median {percentile_ms(t, 50):.3f} ms  p90 {percentile_ms(t, 90):.3f} ms  "
                  f"p99 {percentile_ms(t, 99):.3f} ms{extra}")
    return out


def measure_backend(kv, backend, args, queries, exact, ex_med, sizes, cold=None, vectors_path=None):
    """Recall@10 and latency of one backend at each of its settings: table rows. A faiss index's
    bytes per vector are appended to `sizes`; with ``args.cold`` an IVF-PQ's cold vs warm latencies
    (:func:`measure_cold`) to `cold`."""
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
    cache = PageCache(vectors_path) if args.cold and backend == "ivfpq" else None
    if cache is not None:
        cache.evict(kv.vectors)
        evicted = cache.resident()
        cache.fill()  # the table's latencies are warm ones, as without --cold
        print(f"  --cold: {cache.pages:,} pages in {vectors_path}; cached after an eviction: {evicted:,}, after "
              f"reading it: {cache.resident():,} (mincore)")
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
        if cache is not None:
            step = max(1, len(queries) // max(args.cold_queries, 1))
            cold.append((desc, measure_cold(kv, idx, queries[::step][: args.cold_queries], cache, label)))
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
    vectors_path = None
    if args.mmap:
        os.makedirs(args.mmap, exist_ok=True)
        path = os.path.join(args.mmap, "bench_ann.kv")
        kv.save(path, separately=["vectors"])
        kv = KeyedVectors.load(path, mmap="r")
        vectors_path = f"{path}.vectors.npy"
        print(f"vectors memory-mapped from {vectors_path}")
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
    sizes, cold = [], []
    rows = [row for backend in args.backends
            for row in measure_backend(kv, backend, args, queries, exact, ex_med, sizes, cold, vectors_path)]

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
    if cold:
        print("\n| index | setting | rows re-ranked / distinct 4 KiB pages per query | read mode | warm median / p90 "
              "/ p99 ms | cold (evicted before each query) median / p90 / p99 ms | cold / warm plain (median) | "
              "pages read per cold query |")
        print("|---|---|---|---|---|---|---|---|")
        for desc, c in cold:
            w = np.median(c["warm_plain"])
            for name, what in READ_MODES:
                cells = [" / ".join(f"{percentile_ms(t, q):.2f}" for q in (50, 90, 99))
                         for t in (c["warm_" + name], c[name])]
                print(f"| {desc} | {c['label']} | {c['rows']:.0f} / {c['pages']:.0f} | {what} | {cells[0]} | "
                      f"{cells[1]} | x{np.median(c[name]) / w:.0f} | {c[name + '_read']:.0f} |")
    ok = [r for r in rows if r[2] >= 0.95 and r[5] >= 20]
    print(f"\ntarget recall@10 >= 0.95 at >= 20x lower latency: {'met by ' + ok[0][1] if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
