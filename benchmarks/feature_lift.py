"""A non-linear lift of the features before the map: does a higher-capacity image map help?

    OMP_NUM_THREADS=1 python benchmarks/feature_lift.py --modes joint --seeds 1 --lifts 0 8192 [--gamma 2]

Every image vector of the model is a linear map of its CNN features, ``W·(v̂ − μ)``. This trains
each mode as the demo does (:func:`gensim_im2vec.pipeline.train_model`) on the demo's features
lifted by random Fourier features first, ``φ(v) = unit(cos(v̂ · Ω + b))`` with ``Ω`` of
``lift`` columns drawn from ``N(0, 2γ)`` and ``b`` uniform on [0, 2π) (a fixed draw, seed 12345;
an approximation of the Gaussian kernel ``exp(−γ‖v̂ − v̂'‖²)``), so that ``W·φ(v)`` is a
non-linear function of the features, and prints the demo's issue-11 targets
(:func:`gensim_im2vec.pipeline.evaluate_trained`, every figure from the lifted features, kNN and
ridge too) as one JSON line per (mode, seed, lift); ``--lifts 0`` is the model as it is. Needs a
finished ``make demo`` in `--demo-dir`. A lift of 8,192 trains the joint demo in ≈ 3.5 min against
2.5 (one thread) and its readout solves an 8,192-wide system.
"""

import argparse
import json
import time

import numpy as np
from gensim.models import Word2Vec

from gensim_im2vec.image_features import ImageFeatures
from gensim_im2vec.pipeline import DemoConfig, evaluate_trained, open_features, train_model
from gensim_im2vec.validation import l2_normalize


def lifted(feats: ImageFeatures, size: int, gamma: float, seed: int = 12345) -> ImageFeatures:
    """The features' random Fourier features (`size` of them), as an in-memory ImageFeatures."""
    rng = np.random.default_rng(seed)
    X = np.asarray(feats.vectors, dtype=np.float32)
    omega = (rng.normal(size=(X.shape[1], size)) * np.sqrt(2 * gamma)).astype(np.float32)
    shift = rng.uniform(0, 2 * np.pi, size).astype(np.float32)
    out = np.empty((len(X), size), dtype=np.float32)
    for lo in range(0, len(X), 2048):
        out[lo:lo + 2048] = l2_normalize(np.cos(l2_normalize(X[lo:lo + 2048]) @ omega + shift))
    return ImageFeatures(list(feats.keys), out, name=f"demo features lifted to {size}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--lifts", nargs="+", type=int, default=[0, 8192], help="random features (0: the features as they are)")
    ap.add_argument("--gamma", type=float, default=2.0, help="the kernel's γ on unit features (default 2)")
    args = ap.parse_args()
    raw = open_features(DemoConfig(out_dir=args.demo_dir))
    words = Word2Vec.load(f"{args.demo_dir}/models/words.w2v")
    for size in args.lifts:
        feats = lifted(raw, size, args.gamma) if size else raw
        for mode in args.modes:
            for seed in args.seeds:
                cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed, workers=1)
                start = time.perf_counter()
                model = train_model(cfg, feats, words)
                seconds = time.perf_counter() - start
                report = evaluate_trained(cfg, model, words, features=feats, baselines=("ridge", "knn"),
                                          baseline_cache=None)
                targets = {row["target"].split(".")[0]: [round(row["value"], 4), round(row["reference"], 4)]
                           for row in report.targets()}
                print(json.dumps({"mode": mode, "seed": seed, "lift": size, "gamma": args.gamma,
                                  "train_s": round(seconds, 1), "targets [value, reference]": targets}), flush=True)


if __name__ == "__main__":
    main()
