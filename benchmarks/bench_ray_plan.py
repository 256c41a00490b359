"""Memory and time of extract_ray's driver at scale, without Ray and without image files.

Builds ``--n`` synthetic ``(key, path)`` pairs as a user passes them (``--input list``: a list;
``--input generator``: a generator, never a list), a parts folder as an interrupted run leaves it
(the first ``--finished`` share of the parts finished: part stores and their markers; the other
parts' stores too, as the actors would write them), and then runs the driver's stages in the order
and with the functions :func:`gensim_im2vec.distributed.extract_ray` runs them:

    scan      read the list once: images digest, 128-bit key hashes, duplicate check (an iterator is spooled)
    finished  mark the images of the finished parts (one marker at a time)
    plans     cut the list into parts and write each part's plan file (what is left to do)
    to_ray    what Ray is handed: one {"part", "items": plan file} per part to run (pickled size)
    merge     merge_stores of the part stores into the target (rows of dim 4; the writer appends its
              shards every 256 MiB / ``--row-bytes`` rows, as with real rows of that size)
    report    the counts: each image stored or skipped in the merged store

Per stage: seconds, and the resident set at its start, its peak (``VmHWM``, reset at the start of
each stage through ``/proc/self/clear_refs`` where the kernel allows it) and its end. Then the
driver's peak over the planning and over the whole run, in bytes per image above the resident set
before the first stage (which holds the user's list with ``--input list``). ``--before`` runs the
stages of the code before this benchmark was written (a verbatim copy below: a list of the pairs,
a set of their keys, a set of the finished keys, parts as lists, a JSON copy of every part handed
to Ray, a merge that holds the sources' keys while it reopens the target), for comparison.

    python benchmarks/bench_ray_plan.py --n 1000000                     # ≈ 15 s, < 1 GB of RAM, ≈ 120 MB in /tmp
    python benchmarks/bench_ray_plan.py --n 1000000 --input generator
    python benchmarks/bench_ray_plan.py --n 1000000 --before
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import proc_status

MiB = 1024**2


# ----------------------------------------------------------------------------- measuring


def reset_peak() -> bool:
    """Reset VmHWM to the current resident set (False where the kernel does not allow it)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Stages:
    """Seconds and resident set (start, peak, end) per stage; the peak is VmHWM since the stage began."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.resets = True

    def run(self, name: str, fn, *args):
        gc.collect()
        self.resets &= reset_peak()
        start = proc_status()["VmRSS"]
        t0 = time.perf_counter()
        out = fn(*args)
        secs = time.perf_counter() - t0
        s = proc_status()
        self.rows.append({"stage": name, "seconds": secs, "start": start, "peak": s["VmHWM"], "end": s["VmRSS"]})
        print(f"{name:>9}: {secs:7.2f} s   RSS start {start / MiB:8.1f} MiB, peak {s['VmHWM'] / MiB:8.1f} MiB, "
              f"end {s['VmRSS'] / MiB:8.1f} MiB", flush=True)
        return out


# ----------------------------------------------------------------------------- the driver before (verbatim)


def _old_as_pairs(images, prefix):
    if isinstance(images, (str, os.PathLike)):
        from gensim_im2vec.features import images_under

        return images_under(images, prefix)
    pairs = [(str(k), os.fspath(p)) for k, p in images]
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("images: duplicate keys; every image needs its own key.")
    return pairs


def _old_finished_keys(parts_root):
    from gensim_im2vec.distributed import _PART_NAME
    from gensim_im2vec.store import METADATA_FILE

    done = set()
    if not parts_root.is_dir():
        return done
    for m in parts_root.iterdir():
        if not (m.name.endswith(".done.json") and _PART_NAME.match(m.name)):
            continue
        if not (parts_root / m.name[: -len(".done.json")] / METADATA_FILE).exists():
            continue
        try:
            with open(m, encoding="utf-8") as f:
                done.update(json.load(f)["keys"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return done


def _old_parts_to_run(parts, done):
    todo, already = [], 0
    for i, part in enumerate(parts):
        items = [[k, p] for k, p in part if k not in done]
        already += len(part) - len(items)
        if items:
            todo.append({"part": i, "items": json.dumps(items)})
    return todo, already


def _old_merge_stores(target, sources, *, mode="extend", shard_size=65536):
    """merge_stores before 2026-12-05: the same sources' checks and writer, then a set of every key."""
    from gensim_im2vec import distributed as d
    from gensim_im2vec.store import FeatureStore

    stores, writer = d._merge_writer(target, sources, mode, shard_size)
    added = 0
    seen = set(writer.done_keys)  # keys stored or buffered so far: the first occurrence wins
    try:
        for s in stores:
            rows = []
            for i, k in enumerate(s.keys):
                if k not in seen:
                    seen.add(k)
                    rows.append(i)
            for lo in range(0, len(rows), 65536):
                chunk = np.asarray(rows[lo : lo + 65536], dtype=np.int64)
                writer.write([s.keys[i] for i in chunk], np.asarray(s.raw_vectors[chunk]))
                added += len(chunk)
            for k, reason in s.skipped.items():
                if k not in seen:
                    writer.skip(k, reason)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    out = FeatureStore.open(target)
    return out


def before(st: Stages, pairs_in, parts_root: Path, target: Path, size: int, merge: bool) -> dict:
    from gensim_im2vec.distributed import plan_parts
    from gensim_im2vec.store import images_digest

    def scan():
        pairs = _old_as_pairs(pairs_in, "img:")
        return pairs, images_digest(pairs)

    pairs, digest = st.run("scan", scan)
    done = st.run("finished", lambda: _old_finished_keys(parts_root))
    left = sum(1 for k, _ in pairs if k not in done)
    parts = plan_parts(pairs, size)
    todo, _ = st.run("plans", lambda: _old_parts_to_run(parts, done))
    payload = st.run("to_ray", lambda: sum(len(pickle.dumps(t, protocol=5)) for t in todo))
    stored = None
    if merge:
        sources = sorted(p for p in parts_root.iterdir() if p.is_dir())
        merged = st.run("merge", lambda: _old_merge_stores(target, sources))

        def report():
            index = merged.key_to_index
            return sum(1 for k, _ in pairs if k in index)

        stored = st.run("report", report)
    return {"images": len(pairs), "left": left, "parts": len(parts), "todo": len(todo), "payload": payload,
            "digest": digest, "stored": stored}


# ----------------------------------------------------------------------------- the driver now


def now(st: Stages, pairs_in, parts_root: Path, target: Path, size: int, merge: bool) -> dict:
    from gensim_im2vec import distributed as d

    plan_dir = parts_root / d._PLAN_DIR
    images = d._Images(pairs_in, "img:")
    digest, index = st.run("scan", lambda: images.scan(plan_dir))
    done = np.zeros(images.n, dtype=bool)
    st.run("finished", d._mark_finished, parts_root, index, done)
    del index
    left = images.n - int(done.sum())
    todo, n_parts = st.run("plans", d._write_plans, images, done, size, plan_dir)
    del done
    disk = {p.name: p.stat().st_size for p in plan_dir.iterdir()}
    spool = disk.pop(d._SPOOL, 0)
    print(f"plan on disk: {sum(disk.values()) / MiB:.1f} MiB in {len(disk)} part plans, spool {spool / MiB:.1f} MiB",
          flush=True)
    payload = st.run("to_ray", lambda: sum(len(pickle.dumps(t, protocol=5)) for t in todo))
    stored = None
    if merge:
        sources = sorted(p for p in parts_root.iterdir() if p.is_dir() and not p.name.startswith("."))
        merged = st.run("merge", lambda: d.merge_stores(target, sources))

        def report():
            keys = merged.key_to_index
            return sum(1 for k, _ in images if k in keys)

        stored = st.run("report", report)
    return {"images": images.n, "left": left, "parts": n_parts, "todo": len(todo), "payload": payload,
            "digest": digest, "stored": stored}


# ----------------------------------------------------------------------------- main


def _pairs(n: int):
    return ((f"img:{i:09d}", f"/data/yfcc/{i % 1000:03d}/{i:09d}.jpg") for i in range(n))


def _parts_folder(parts_root: Path, n: int, size: int, finished: float, stores: bool) -> None:
    """Part stores (dim 4) for every part, markers for the first `finished` share, as an interrupted
    run leaves them (the other parts' stores as the actors would write them before the merge)."""
    from gensim_im2vec.store import METADATA_FILE, FeatureStore

    n_parts, n_done = math.ceil(n / size), int(n * finished) // size
    for j in range(n_parts):
        keys = [f"img:{i:09d}" for i in range(j * size, min(n, (j + 1) * size))]
        part = parts_root / f"part-{j:06d}"
        if stores:
            FeatureStore.from_arrays(part, keys, np.ones((len(keys), 4), np.float32), dtype="float16")
        elif j < n_done:
            part.mkdir(parents=True)
            (part / METADATA_FILE).write_text("{}")
        if j < n_done:
            (parts_root / f"part-{j:06d}.done.json").write_text(json.dumps({"keys": keys}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="images (default 1M)")
    ap.add_argument("--input", choices=("list", "generator"), default="list",
                    help="the pairs as a list (built before measuring) or a generator")
    ap.add_argument("--part-size", type=int, default=8192, help="images per part (extract_ray's default)")
    ap.add_argument("--finished", type=float, default=0.5, help="share of the parts finished before (markers)")
    ap.add_argument("--no-merge", action="store_true", help="the planning only (no part stores, no merge)")
    ap.add_argument("--before", action="store_true", help="the driver's stages before this change")
    ap.add_argument("--row-bytes", type=int, default=4096,
                    help="bytes of a real feature row, for when the merge appends (default: 2048-d float16)")
    ap.add_argument("--dir", default=None, help="where the parts folder goes (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.before and args.input == "generator":
        ap.error("--before holds a list of the pairs anyway; give --input list")
    import logging

    from gensim_im2vec import store

    logging.basicConfig(level=logging.WARNING)
    store.APPEND_BYTES = store.APPEND_BYTES * 8 // args.row_bytes  # the part stores' rows are 8 bytes
    n, size, merge = args.n, args.part_size, not args.no_merge
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_plan-", dir=args.dir))
    parts_root, target = tmp / "feats.ray-parts", tmp / "feats"
    try:
        t = time.perf_counter()
        _parts_folder(parts_root, n, size, args.finished, stores=merge)
        print(f"parts folder: {time.perf_counter() - t:.1f} s ({'with' if merge else 'without'} part stores)")
        st = Stages()
        pairs_in = _pairs(n)
        if args.input == "list":
            pairs_in = st.run("input", lambda: list(_pairs(n)))
        gc.collect()
        base = proc_status()["VmRSS"]
        out = (before if args.before else now)(st, pairs_in, parts_root, target, size, merge)
        rows = [r for r in st.rows if r["stage"] != "input"]
        plan_rows = [r for r in rows if r["stage"] not in ("merge", "report")]
        peak_plan = max(r["peak"] for r in plan_rows)
        peak_all = max(r["peak"] for r in rows)
        code = "before" if args.before else "now"
        print(f"{code}, input {args.input}, load average {os.getloadavg()[0]:.1f}: {out['images']} images, {out['left']} left, {out['parts']} parts, "
              f"{out['todo']} to run, stored after the merge {out['stored']}, digest {out['digest'][:12]}")
        print(f"driver planning: {sum(r['seconds'] for r in plan_rows):.1f} s, peak RSS {peak_plan / MiB:.1f} MiB "
              f"over {base / MiB:.1f} MiB before it: {(peak_plan - base) / n:.0f} bytes/image")
        if merge:
            m = [r for r in rows if r["stage"] in ("merge", "report")]
            print(f"with the merge and the counts: {sum(r['seconds'] for r in m):.1f} s more, peak RSS "
                  f"{peak_all / MiB:.1f} MiB: {(peak_all - base) / n:.0f} bytes/image")
        print(f"handed to Ray: {out['payload'] / MiB:.2f} MiB for {out['todo']} parts "
              f"({out['payload'] / max(1, out['todo']):.0f} bytes per part, "
              f"{out['payload'] / max(1, out['left']):.2f} per image to extract)")
        if args.input == "list":
            inp = st.rows[0]
            print(f"the user's list itself: {(inp['end'] - inp['start']) / n:.0f} bytes/image (not the driver's)")
        if not st.resets:
            print("note: /proc/self/clear_refs is not writable here; each peak is the process's peak so far")
    finally:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
