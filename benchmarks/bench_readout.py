"""What ``space_readout`` costs in ``train()``: the same training with and without the readout's sums.

    OMP_NUM_THREADS=1 python benchmarks/bench_readout.py [--images 20000] [--features 1280] [--dim 200] \
        [--epochs 2 5] [--repeats 2]

The readout (``Im2Vec(space_readout=β)``) adds, in the last epoch of each ``train()``, an F × F and
an F × D product per image (the sums its ridge solve reads) and, when training ends, one F × F
solve; training itself is unchanged. On synthetic documents (an image and five of 500 tags) with
random features, one worker, this trains the same model with β = 0 and β = 0.5, interleaved
``--repeats`` times per epoch count, and prints the medians and their ratio: the share the readout
adds to ``train()``, which falls as 1 / epochs (2026-12-05, 2 cores: 20,000 images, F 1,280, D 200,
2 epochs 1.46 → 2.17 s; docs/joint-space.md, "The readout").
"""

import argparse
import time

import numpy as np

from gensim_im2vec import Im2Vec


def corpus(n: int, n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    tags = [f"tag{i}" for i in range(500)]
    docs = [[f"img:{i}", *rng.choice(tags, 5, replace=False)] for i in range(n)]
    return docs, ([f"img:{i}" for i in range(n)], rng.random((n, n_features), dtype=np.float32))


def timed_train(docs, feats, dim: int, epochs: int, beta: float) -> float:
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
    args = ap.parse_args()
    docs, feats = corpus(args.images, args.features)
    print(f"{args.images} images, F {args.features}, D {args.dim}, one worker; median of {args.repeats} train() each")
    for epochs in args.epochs:
        times = {0.0: [], 0.5: []}
        for _ in range(args.repeats):
            for beta in times:
                times[beta].append(timed_train(docs, feats, args.dim, epochs, beta))
        plain, mixed = (float(np.median(times[b])) for b in (0.0, 0.5))
        print(f"  {epochs} epochs: without the readout {plain:.2f}s, with it {mixed:.2f}s -> x{mixed / plain:.2f} "
              f"(+{100 * (mixed - plain) / plain:.0f}% of train())", flush=True)


if __name__ == "__main__":
    main()
