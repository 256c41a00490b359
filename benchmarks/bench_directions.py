"""The tags' common and principal directions at YFCC scale: time and memory, blocked against a whole-array SVD.

    OMP_NUM_THREADS=1 python benchmarks/bench_directions.py [--tags 1000000] [--dim 200] [--k 0 50]

``space_common_directions`` (the tags' mean direction, and k principal ones, out of ``W``) and
``space_readout_directions`` (k principal directions the readout leaves to ``W``) are computed
once per ``train()`` from the tags' rows of ``wv`` (:func:`gensim_im2vec.space.common_directions`,
:func:`~gensim_im2vec.space.principal_directions`). At YFCC100M's 1-2M tags the rows are
0.8-1.6 GB at D = 200 in float32. The functions read them in blocks of ``DIRECTIONS_BLOCK`` rows
and take the directions from the unit rows' D × D covariance; the reference (the code until
2026-12-06) made a float64 unit copy of every row, centred it (k > 0) and took its SVD. Each way
runs in a fresh process on the same random float32 rows (``--tags`` × ``--dim``, offset so that
the rows share a mean direction, as word vectors do); this prints each one's time and peak
resident memory above the rows themselves, their ratios, and the largest angle between the two
ways' directions (the same directions: checked).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def rows(n: int, dim: int) -> np.ndarray:
    V = np.random.default_rng(0).standard_normal(size=(n, dim), dtype=np.float32)
    V += np.linspace(0.1, 0.5, dim, dtype=np.float32)  # a shared mean direction, as word vectors have
    return V


def reference(V: np.ndarray, k: int) -> np.ndarray:
    """The directions as computed until 2026-12-06: a float64 unit copy of every row, its SVD."""
    U = np.asarray(V, dtype=np.float64)
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    U = U / np.where(norms > 0, norms, 1.0)
    mean = U.mean(axis=0)
    top = np.linalg.svd(U - mean, full_matrices=False)[2][:k] if k else np.zeros((0, U.shape[1]))
    return np.vstack([mean / np.linalg.norm(mean), top]).T


def blocked(V: np.ndarray, k: int) -> np.ndarray:
    from gensim_im2vec.space import common_directions, principal_directions

    mean = common_directions(V, 0)
    return np.hstack([mean, principal_directions(V, k)]) if k else mean


def arm(way: str, n: int, dim: int, k: int) -> None:
    """One way in this process: prints its figures as a JSON line."""
    import gensim_im2vec.space  # noqa: F401  (imported before the count starts, in both ways)

    V = rows(n, dim)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    D = (reference if way == "reference" else blocked)(V, k)
    seconds = time.perf_counter() - start
    extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    np.save(f"/tmp/bench_directions_{way}.npy", D)
    print(json.dumps({"seconds": seconds, "extra_bytes": extra}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--k", type=int, nargs="+", default=[0, 50], help="principal directions (0: the mean only)")
    ap.add_argument("--arm", choices=["reference", "blocked"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.arm:
        return arm(args.arm, args.tags, args.dim, args.k[0])
    print(f"{args.tags:,} tags x {args.dim} float32 rows ({args.tags * args.dim * 4 / 2**20:,.0f} MiB)")
    for k in args.k:
        out = {}
        for way in ("reference", "blocked"):
            run = subprocess.run([sys.executable, __file__, "--arm", way, "--tags", str(args.tags), "--dim",
                                  str(args.dim), "--k", str(k)], capture_output=True, text=True, check=True)
            out[way] = json.loads(run.stdout.strip().splitlines()[-1])
        ref, new = (np.load(f"/tmp/bench_directions_{w}.npy") for w in ("reference", "blocked"))
        cos = np.abs(np.sum(ref * new, axis=0))  # each direction, up to its sign
        r, b = out["reference"], out["blocked"]
        print(f"k = {k}: reference {r['seconds']:.2f} s, +{r['extra_bytes'] / 2**20:,.0f} MiB; blocked "
              f"{b['seconds']:.2f} s, +{b['extra_bytes'] / 2**20:,.0f} MiB; time x {b['seconds'] / r['seconds']:.3f}, "
              f"memory x {b['extra_bytes'] / max(r['extra_bytes'], 1):.3f}; directions' smallest |cos| "
              f"{cos.min():.9f}")


if __name__ == "__main__":
    main()
