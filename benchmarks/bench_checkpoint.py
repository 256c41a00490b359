"""What an epoch's checkpoint costs: the whole model, or the model without the images' rows.

    python benchmarks/bench_checkpoint.py MODEL [--dir DIR]

``EpochCheckpoint`` (``im2vec train --resumable``) saves the model at each epoch's end. The
images' rows of ``wv.vectors`` are ``W``'s (``W · (v̂ − μ)``, written from the features), so the
checkpoint leaves them out and loading it writes them again (``Im2Vec._saved_without_image_rows``,
``Im2Vec._restore_image_rows``). This script loads a trained MODEL (e.g. the 10M-image model
``benchmarks/bench_scale.py --images 10000000 --dir D`` leaves in ``D/model/m.model``, with its
feature store), saves it both ways into DIR (the whole model, as checkpoints were before: the
reference) and times each save and the load that resumes from it, with the files evicted from the
page cache first, and prints the bytes written (``wchar``) and the ratios. The model loaded from the
checkpoint is checked to equal the model saved whole, row for row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np
from _common import evict, io_bytes

from gensim_im2vec import Im2Vec

GiB = 2**30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a trained, saved Im2Vec model")
    ap.add_argument("--dir", default="/tmp/bench-checkpoint", help="where the two saves go (emptied first)")
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    whole, without = (os.path.join(args.dir, name, "run.checkpoint") for name in ("whole", "without"))
    for path in (whole, without):
        os.makedirs(os.path.dirname(path))
    t = time.perf_counter()
    model = Im2Vec.load(args.model, mmap="r")
    n_img = int(np.count_nonzero(model._vocab_image_rows >= 0))
    print(f"{args.model}: {len(model.wv):,} keys ({n_img:,} images), vector_size {model.wv.vector_size}; "
          f"loaded in {time.perf_counter() - t:.1f} s", flush=True)
    res = {}
    for name, path in (("whole model (the reference)", whole), ("images' rows left out", without)):
        w, t = io_bytes("wchar"), time.perf_counter()
        if path == without:
            with model._saved_without_image_rows():
                model.save(path)
        else:
            model.save(path)
        res[name] = [time.perf_counter() - t, (io_bytes("wchar") - w) / GiB]
        print(f"  save, {name:<28} {res[name][0]:6.1f} s, {res[name][1]:6.2f} GiB written", flush=True)
    del model
    loaded = {}
    for name, path in zip(res, (whole, without)):
        for name_ in os.listdir(os.path.dirname(path)):
            evict(os.path.join(os.path.dirname(path), name_))
        t = time.perf_counter()
        loaded[name] = Im2Vec.load(path)  # a load to look at it: the images' rows written (checkpoint.resume does not)
        res[name].append(time.perf_counter() - t)
        print(f"  load, {name:<28} {res[name][2]:6.1f} s", flush=True)
    a, b = loaded.values()
    assert np.array_equal(a.wv.vectors, b.wv.vectors), "the checkpoint's model differs from the model saved whole"
    (s0, w0, l0), (s1, w1, l1) = res.values()
    print(f"images' rows left out / whole: save {s1 / s0:.2f}x the time and {w1 / w0:.2f}x the bytes, "
          f"load {l1 / l0:.2f}x the time (the same vectors, row for row)")


if __name__ == "__main__":
    main()
