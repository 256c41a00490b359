"""Peak memory of ``im2vec split`` (:func:`gensim_im2vec.split.split_documents`), now and as it was.

    python benchmarks/bench_split.py --images 50000 200000        # docs/scale.md §5.2's row
    python benchmarks/bench_split.py --images 1000000 --only new   # the new one alone, larger
    python benchmarks/bench_split.py --images 200000 --features    # with a feature store (--features STORE)
    python benchmarks/bench_split.py --images 200000 --features --copies 50 --old-ref HEAD   # copies: 1 in 50
    python benchmarks/bench_split.py --images 200000 --zero-shot-share 0.1   # zero-shot tags too

Writes (once, kept in ``--dir``) a documents file of N images as ``im2vec normalize`` writes them:
an image token (16 hex digits) and 3-12 tags drawn from 50,000 (Zipf-like) a line, with what the
split must handle: a line of two images every 25 lines, an image on a second line (with one more
tag) every 50, a line with an earlier line's set of tags (shuffled) every 20, and a text line
(no image) every 10. ``--features`` also writes a store of 95% of the images (5% lack features), a
row of its own each (identical rows link their images, as copies of one picture), or with
``--copies N`` every N-th row the row before it.

Each implementation splits the file in a fresh process: "new" is today's package, "old" the module
as it was before the split held its images in flat arrays (``git show REF:gensim_im2vec/split.py``
into a temporary file, ``--old-ref``, the commit before that change; nothing of it is kept in the
repository; ``--old-ref HEAD``: the checkout's last commit, to measure a change not yet
committed). The child reports its peak resident memory (``ru_maxrss``; ``VmHWM`` where that is
less: Linux carries the parent's peak over the fork) and its resident memory just before the call; "per image" is their difference over N, and, given two sizes or more, also the
slope between the smallest and the largest (what a larger file adds an image). The two outputs are
compared byte for byte.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from _common import module_at

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD_REF = "af3fe513eae6670f00e6cfc43ab1356823244352"  # the last commit with the dict-and-list split

_CHILD = r"""
import importlib.util, json, resource, sys, time
which, docs, out, old, features, zero_shot_share = sys.argv[1:7]
if which == "old":
    spec = importlib.util.spec_from_file_location("_old_split", old)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_old_split"] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
else:
    from gensim_im2vec import split as module
def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(field + ":"))
before = status("VmRSS"); t = time.perf_counter()
s = module.split_documents(docs, out, seed="bench", features=features or None,
                           zero_shot_share=float(zero_shot_share))
seconds = time.perf_counter() - t
# this process's peak: ru_maxrss, unless the parent's was larger (Linux carries it over the fork and exec)
peak = min(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, status("VmHWM"))
print(json.dumps({"seconds": seconds, "peak": peak, "before": before, "test_images": len(s.test_keys),
                  "train_images": len(s.train_keys)}))
"""


def write_documents(path: str, n: int, seed: int = 0) -> list[str]:
    """Write a documents file of `n` images to `path` (see the module); its image tokens, in order."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"t{k}" for k in range(50_000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    keys = [f"img:{(i * 0x9E3779B97F4A7C15) & (2**64 - 1):016x}" for i in range(n)]
    n_tags = rng.integers(3, 13, size=n)
    drawn = vocab[rng.choice(len(vocab), size=int(n_tags.sum()), p=weights)]
    ends = np.cumsum(n_tags)
    lines: list[str] = []
    later: list[str] = []  # second lines of some images, written further down
    previous: list[str] = []
    i = 0
    while i < n:
        tags = list(drawn[ends[i] - n_tags[i]:ends[i]])
        images = [keys[i]]
        if i % 25 == 24 and i + 1 < n:  # two images in one line
            i += 1
            images.append(keys[i])
        if len(lines) % 20 == 19 and previous:  # an earlier line's words, in another order
            tags = list(rng.permutation(previous))
        lines.append(" ".join(images + tags))
        previous = tags
        if i % 50 == 7:
            later.append(f"{keys[i]} {vocab[rng.integers(len(vocab))]}")
        if len(lines) % 10 == 9:
            lines.append(" ".join(vocab[rng.integers(0, 500, size=8)]))  # a text line
        if later and len(lines) % 97 == 0:
            lines.append(later.pop(0))
        i += 1
    lines.extend(later)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return keys


def write_store(path: str, keys: list[str], copies: int = 0) -> None:
    """A feature store of 95% of `keys`: three float16 features each, a row of its own (its number,
    exact in float16 digits below 2048), or with `copies` > 0 every `copies`-th row the one before it."""
    from gensim_im2vec.store import FeatureStore

    kept = [k for j, k in enumerate(keys) if j % 20 != 3]
    j = np.arange(len(kept))
    if copies:
        j[copies - 1::copies] -= 1
    rows = np.stack([j % 2048, j // 2048 % 2048, j // 2048**2], axis=1).astype(np.float16)
    FeatureStore.from_arrays(path, kept, rows, mode="overwrite")


def measure(which: str, docs: str, out: str, old: str | None, features: str | None,
            zero_shot_share: float = 0.0) -> dict:
    """Split `docs` into `out` with implementation `which` ("old" / "new") in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
    res = subprocess.run([sys.executable, "-c", _CHILD, which, docs, out, old or "", features or "",
                          str(zero_shot_share)], env=env,
                         capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{which} split failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def same_files(a: str, b: str) -> bool:
    """The two split folders hold the same files, byte for byte; ``split.json`` the same record but
    for the keys one side's code does not write (the old module's record lacks the newer counts)."""
    names = sorted(os.listdir(a))
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    if names != sorted(os.listdir(b)) or errors or any(name != "split.json" for name in mismatch):
        return False
    if mismatch:
        with open(os.path.join(a, "split.json"), encoding="utf-8") as fa, \
                open(os.path.join(b, "split.json"), encoding="utf-8") as fb:
            ra, rb = json.load(fa), json.load(fb)
        for part in (None, "counts", "features"):
            da, db = (ra, rb) if part is None else (ra.get(part), rb.get(part))
            if isinstance(da, dict) and isinstance(db, dict):
                for extra in set(da) ^ set(db):
                    da.pop(extra, None)
                    db.pop(extra, None)
        return ra == rb
    return True


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench-split"),
                    help="the documents files (kept between runs) and the splits")
    ap.add_argument("--only", choices=("old", "new"), help="measure one implementation")
    ap.add_argument("--features", action="store_true", help="split with a feature store lacking 5%% of the images")
    ap.add_argument("--copies", type=int, default=0, metavar="N",
                    help="with --features: every N-th stored image has the row of the one before (0: none)")
    ap.add_argument("--zero-shot-share", type=float, default=0.0, help="hold out this share of the tags too")
    ap.add_argument("--old-ref", default=OLD_REF, help="the commit whose split.py is the old implementation")
    args = ap.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    which = [args.only] if args.only else ["old", "new"]
    old = module_at(args.old_ref, "gensim_im2vec/split.py", args.dir) if "old" in which else None
    if "old" in which and old is None:
        print(f"commit {args.old_ref} is not in this checkout: measuring the new implementation only")
        which = ["new"]
    results: dict[int, dict[str, dict]] = {}
    for n in args.images:
        docs = os.path.join(args.dir, f"docs{n}.txt")
        store = os.path.join(args.dir, f"store{n}-rows{args.copies or ''}") if args.features else None
        if not os.path.exists(docs) or (store and not os.path.isdir(store)):
            keys = write_documents(docs, n)
            if store:
                write_store(store, keys, args.copies)
        results[n] = {}
        for w in which:
            out = os.path.join(args.dir, f"split{n}-{w}{'-features' if store else ''}")
            r = measure(w, docs, out, old, store, args.zero_shot_share)
            r["per_image"] = (r["peak"] - r["before"]) / n
            results[n][w] = r
            print(f"{w:>3s} {n:>10,} images: peak {r['peak'] / 1e6:8.1f} MB ({(r['peak'] - r['before']) / 1e6:8.1f} MB "
                  f"above the start), {r['per_image']:7.0f} B per image, {r['seconds']:6.1f} s "
                  f"({r['test_images']:,} test, {r['train_images']:,} training images)", flush=True)
        if len(which) == 2:
            a, b = (os.path.join(args.dir, f"split{n}-{w}{'-features' if store else ''}") for w in which)
            r_old, r_new = results[n]["old"], results[n]["new"]
            print(f"    old / new per image: {r_old['per_image'] / r_new['per_image']:.1f}x, time: "
                  f"{r_old['seconds'] / r_new['seconds']:.2f}x; "
                  f"outputs byte for byte the same: {'yes' if same_files(a, b) else 'NO'}"
                  + (" (with --copies the new split links copies: it may differ)" if args.copies else ""), flush=True)
    if len(args.images) > 1:
        lo, hi = min(args.images), max(args.images)
        for w in which:
            slope = (results[hi][w]["peak"] - results[lo][w]["peak"]) / (hi - lo)
            print(f"{w:>3s}: peak grows {slope:.0f} B per image from {lo:,} to {hi:,} images")
    return results


if __name__ == "__main__":
    main()
