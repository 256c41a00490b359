"""Noise on the space step's features: does a regulariser of ``W`` carry off the demo's split?

    OMP_NUM_THREADS=1 python benchmarks/feature_noise.py --noise 2.0 benchmarks/space_seeds.py --modes two-stage
    OMP_NUM_THREADS=1 python benchmarks/feature_noise.py --noise 2.0 benchmarks/zero_shot_study.py
    OMP_NUM_THREADS=1 python benchmarks/feature_noise.py --dropout 0.6 benchmarks/space_seeds.py --seeds 1

Runs another benchmark of this folder (its arguments follow its path) with every row the space
step trains on, ``x = v̂ − μ`` (:meth:`Im2Vec._space_rows`), replaced by a noisy copy drawn anew
each time the row is used:

- ``--noise s``: ``x + s·‖x‖/√d · ε``, ``ε`` standard normal (``s = 1``: noise as large as the row);
- ``--dropout p``: each coordinate kept with probability ``1 − p`` and scaled by ``1 / (1 − p)``.

In least squares, input noise is ridge's penalty on ``W``; the space step's cosine softmax has no
penalty of its own. Only training sees the noise: ``model.project``, the stored image rows and
every baseline use the features as they are. The kernel gathers the rows itself when the features
are in memory; here they are gathered in Python (the path a memory-mapped store takes, the same
arithmetic), so ``--noise 0`` trains the unchanged model bit for bit. The draws come from one
generator seeded with ``--noise-seed``, and with one worker (the demo's setting) a run repeats.

Scratch-level on purpose: the model has no such option. It measures whether one would help
([docs/joint-space.md](../docs/joint-space.md), "Noise on the features").
"""

import argparse
import runpy
import sys

import numpy as np

from gensim_im2vec.model import Im2Vec


def noisy_rows(noise: float, dropout: float, seed: int):
    """A replacement for :meth:`Im2Vec._space_rows` that adds the noise to the rows it returns."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"--dropout must be in [0, 1), got {dropout}.")
    if noise < 0:
        raise ValueError(f"--noise must be >= 0, got {noise}.")
    rng = np.random.default_rng(seed)
    rows_of = Im2Vec._space_rows

    def rows(self, idx):
        X = rows_of(self, idx)
        if dropout:
            X = X * (rng.random(X.shape) >= dropout) / (1.0 - dropout)
        if noise:
            scale = noise * np.linalg.norm(X, axis=1, keepdims=True) / np.sqrt(X.shape[1])
            X = X + scale * rng.standard_normal(X.shape)
        return np.ascontiguousarray(X, dtype=np.float32)

    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--noise", type=float, default=0.0, help="Gaussian noise, relative to the row's norm")
    ap.add_argument("--dropout", type=float, default=0.0, help="share of each row's coordinates zeroed")
    ap.add_argument("--noise-seed", type=int, default=0)
    ap.add_argument("script", help="the benchmark to run, e.g. benchmarks/space_seeds.py")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    a = ap.parse_args()
    Im2Vec._space_rows = noisy_rows(a.noise, a.dropout, a.noise_seed)
    Im2Vec._space_source = lambda self: None  # rows through _space_rows, not gathered by the kernel
    print(f"feature noise {a.noise}, dropout {a.dropout} (noise seed {a.noise_seed}) on the space step's rows",
          flush=True)
    sys.argv = [a.script, *a.args]
    runpy.run_path(a.script, run_name="__main__")


if __name__ == "__main__":
    main()
