"""Memory and time of listing a folder of images: `list_images` before it walked a folder at a time,
and `extract_ray`'s planning of a folder before and now.

Makes ``--files`` empty ``.jpg`` files laid out as img2dataset writes them (``00000/000000000.jpg``,
``--per-folder`` a folder; made once, kept in ``--dir``) and measures, each in a fresh process, the
peak resident set (``VmHWM``) above the process's after its imports, in bytes per file, and the
seconds:

    old list      list_images as it was (``git show REF:gensim_im2vec/features.py``, ``--ref``): every
                  file in a dict, then one sort
    new list      list_images now (iter_images into a list: the list is the result)
    new walk      iter_images read to the end, nothing kept (what a reader of the pairs holds)
    old plan      extract_ray's planning of a folder before: the folder listed (old list_images), then
                  read from the list (``_Images(list).scan``)
    new plan      extract_ray's planning now: the folder walked once and spooled (``_Images(folder).scan``)

The plan rows include the 128-bit key hashes the planning keeps (24-32 bytes a file) and its chunk
buffers (65,536 pairs). The pairs of both lists are compared (they must be equal, in order).

    python benchmarks/bench_list_images.py --files 200000          # ≈ 1 min to make the files, then ≈ 1 min
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _common import module_at

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import hashlib, importlib.util, json, os, sys, time
sys.path.insert(0, os.path.join(sys.argv[4], "benchmarks"))
from _common import proc_status
from gensim_im2vec import distributed, features
which, root, old_path, _ = sys.argv[1:5]
old = None
if old_path:
    spec = importlib.util.spec_from_file_location("old_features", old_path)
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_features"] = old
    spec.loader.exec_module(old)
base = proc_status()["VmRSS"]
t = time.perf_counter()
n, check = 0, None
pairs = None
if which == "old list":
    pairs = old.list_images(root)
elif which == "new list":
    pairs = features.list_images(root)
elif which == "new walk":
    for _ in features.iter_images(root):
        n += 1
elif which in ("old plan", "new plan"):
    import pathlib, tempfile
    if which == "old plan":
        images = distributed._Images([(k, str(p)) for k, p in old.list_images(root)], "img:")
    else:
        images = distributed._Images(root, "img:")
    with tempfile.TemporaryDirectory() as d:
        images.scan(pathlib.Path(d) / "plan")
        n = images.n
secs = time.perf_counter() - t
peak = proc_status()["VmHWM"] - base
if pairs is not None:  # (after the peak is read: str(path) caches a string in each Path)
    n = len(pairs)
    check = hashlib.sha256("\n".join(f"{k}\t{p}" for k, p in pairs).encode("utf-8", "surrogateescape")).hexdigest()
print(json.dumps({"n": n, "seconds": secs, "peak": peak, "check": check}))
"""

WAYS = ("old list", "new list", "new walk", "old plan", "new plan")


def make_files(root: str, n: int, per_folder: int) -> None:
    """`n` empty files in folders of `per_folder` (kept: made again only when the count differs)."""
    stamp = os.path.join(root, ".made")
    if os.path.exists(stamp) and open(stamp).read() == f"{n} {per_folder}":
        return
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    for i in range(n):
        folder = os.path.join(root, f"{i // per_folder:05d}")
        if i % per_folder == 0:
            os.makedirs(folder)
        open(os.path.join(folder, f"{i:09d}.jpg"), "wb").close()
    with open(stamp, "w") as f:
        f.write(f"{n} {per_folder}")
    print(f"made {n:,} files in {time.perf_counter() - t:.1f} s", flush=True)


def measure(which: str, root: str, old: str | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
    res = subprocess.run([sys.executable, "-c", _CHILD, which, root, old or "", REPO], env=env,
                         capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{which} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200_000)
    ap.add_argument("--per-folder", type=int, default=10_000, help="files a folder (img2dataset: 10,000)")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench-list-images"))
    ap.add_argument("--ref", default="b102506", help="the commit whose list_images is the reference")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each, interleaved; the best is printed")
    args = ap.parse_args(argv)
    if args.files < 1 or args.per_folder < 1:
        ap.error("--files and --per-folder must be positive")
    root = os.path.join(args.dir, "images")
    make_files(root, args.files, args.per_folder)
    with tempfile.TemporaryDirectory() as tmp:
        old = module_at(args.ref, "gensim_im2vec/features.py", tmp)
        ways = WAYS if old else tuple(w for w in WAYS if not w.startswith("old"))
        if not old:
            print(f"(commit {args.ref} is not in this checkout: the new ways alone)")
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for way in ways:
                r = measure(way, root, old)
                if way not in best or r["seconds"] < best[way]["seconds"]:
                    best[way] = {**r, "peak": min(r["peak"], best.get(way, r)["peak"])}
    n = args.files
    print(f"{n:,} files, {args.per_folder:,} a folder; peak resident set above the start, and seconds "
          f"(best of {args.repeats}):")
    for way, r in best.items():
        assert r["n"] == n, (way, r["n"])
        print(f"  {way:>9}: {r['peak'] / n:7.1f} B/file  {r['seconds']:6.2f} s")
    if old:
        assert best["old list"]["check"] == best["new list"]["check"], "the lists differ"
        for a, b in (("old list", "new list"), ("old plan", "new plan")):
            print(f"  {b} / {a}: memory x{best[b]['peak'] / max(best[a]['peak'], 1):.2f}, "
                  f"time x{best[b]['seconds'] / best[a]['seconds']:.2f}")
        print("  the two lists: the same pairs in the same order")
    return best


if __name__ == "__main__":
    main()
