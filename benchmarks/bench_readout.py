"""What ``space_readout`` costs in ``train()``: the same training with and without the readout's sums.

    OMP_NUM_THREADS=1 python benchmarks/bench_readout.py [--images 20000] [--features 1280] [--dim 200] \
        [--epochs 2 5] [--repeats 2] [--gram-images N ...]

The readout (``Im2Vec(space_readout=β)``) adds, in the last epoch of each ``train()``, an F × F and
an F × D product per image (the sums its ridge solve reads) and, when training ends, one F × F
solve; training itself is unchanged. On synthetic documents (an image and five of 500 tags) with
random features, one worker, this trains the same model with β = 0 and β = 0.5, interleaved
``--repeats`` times per epoch count, and prints the medians and their ratio: the share the readout
adds to ``train()``, which falls as 1 / epochs (2026-12-05, 2 cores: 20,000 images, F 1,280, D 200,
2 epochs 1.46 → 2.17 s; docs/joint-space.md, "The readout").

The F × F Gram is the bulk of it; past ``READOUT_GRAM_IMAGES`` images the readout gathers it from a
sample of about that many. ``--gram-images`` runs the readout once per value of that bound, in the
same interleaved rounds (e.g. ``--images 200000 --epochs 5 --gram-images 100000 1000000000``: the
default sample against every image).
"""

import argparse
import time

import numpy as np

import gensim_im2vec.model as M
from gensim_im2vec import Im2Vec


def corpus(n: int, n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    tags = [f"tag{i}" for i in range(500)]
    docs = [[f"img:{i}", *rng.choice(tags, 5, replace=False)] for i in range(n)]
    return docs, ([f"img:{i}" for i in range(n)], rng.random((n, n_features), dtype=np.float32))


def timed_train(docs, feats, dim: int, epochs: int, beta: float, gram_images: int | None = None) -> float:
    if gram_images is not None:
        M.READOUT_GRAM_IMAGES = gram_images
    model = Im2Vec(image_features=feats, vector_size=dim, min_count=1, sample=0, sg=1, epochs=epochs, workers=1,
                   seed=1, space_readout=beta)
    model.build_vocab(docs)
    start = time.perf_counter()
    model.train(docs, total_examples=len(docs), epochs=epochs)
    elapsed = time.perf_counter() - start
    assert (model.readout_W is not None) == (beta > 0)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--features", type=int, default=1280)
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--epochs", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gram-images", type=int, nargs="+", default=[M.READOUT_GRAM_IMAGES],
                    help="READOUT_GRAM_IMAGES for the readout's runs, one run per value (default: the model's)")
    args = ap.parse_args()
    docs, feats = corpus(args.images, args.features)
    print(f"{args.images} images, F {args.features}, D {args.dim}, one worker; median of {args.repeats} train() each")
    for epochs in args.epochs:
        runs = [(0.0, None)] + [(0.5, g) for g in args.gram_images]
        times = {run: [] for run in runs}
        for _ in range(args.repeats):
            for beta, gram in runs:
                times[beta, gram].append(timed_train(docs, feats, args.dim, epochs, beta, gram))
        plain = float(np.median(times[0.0, None]))
        print(f"  {epochs} epochs: without the readout {plain:.2f}s", flush=True)
        for beta, gram in runs[1:]:
            mixed = float(np.median(times[beta, gram]))
            print(f"    with it, its Gram from at most ~{gram:,} images: {mixed:.2f}s -> x{mixed / plain:.2f} "
                  f"(+{100 * (mixed - plain) / plain:.0f}% of train())", flush=True)


if __name__ == "__main__":
    main()
