"""Whitened features: a dial between how well the space fits its training images and how it ranks new ones.

    OMP_NUM_THREADS=1 python benchmarks/feature_whitening.py [--demo-dir demo_output] [--modes two-stage] \
        [--seeds 1 2 3] [--settings 1:0.5 10:0.5 0.01:-0.25] [--study]

The space step learns ``W`` by SGD on the centred features ``v̂ − μ``. Their covariance ``Σ`` has a
few large directions, and SGD learns those first: after the demo's epochs ``W`` has used little of
the rest, an implicit regularisation no option of the model sets. This script trains on
``P·(v̂ − μ)`` instead, ``P = (Σ + ε·λ̄·I)^(−p)`` (``λ̄`` the mean eigenvalue of ``Σ``, scaled so that
the mean squared norm stays that of ``v̂ − μ``; ``Σ`` and ``μ`` from the training images only), each
setting given as ``ε:p``:

- ``p = 0.5``: whitening, every direction of the features learns as fast (``ε`` large: nearly none);
- ``p < 0``: the large directions amplified, the small ones learn even less;
- ``p = 0``: the demo's model itself (the reference every setting is read against).

Each model is trained exactly as the demo trains (:func:`gensim_im2vec.pipeline.train_model`) on
those features, then ``P`` is folded into ``W`` (``W ← W·P``, the mean back to ``μ``): an ordinary
model, whose stored rows are ``model.project`` of the raw features. It is evaluated as the demo
evaluates it (:func:`~gensim_im2vec.pipeline.evaluate_trained`; of the baselines ridge and kNN),
and each target of the joint-space issue is printed as mean [min, max] over `--seeds`. With
``--study`` each setting is also run on the five splits of ``zero_shot_study.py`` (two-stage
only): zero-shot mAP against ridge and seen-tag mAP against kNN, per split and on average.

Needs a finished ``make demo`` in `--demo-dir`. Nothing is saved.
"""

import argparse
import time
from collections import defaultdict
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from gensim.models import Word2Vec

from gensim_im2vec.image_features import ImageFeatures
from gensim_im2vec.pipeline import (
    DemoConfig,
    evaluate_trained,
    open_features,
    train_model,
    training_documents,
)

REAL = np.float32


def whitening(centred: np.ndarray, eps: float, power: float) -> np.ndarray:
    """``P = (Σ + eps·λ̄·I)^(−power)`` for rows `centred` (``Σ`` their covariance, ``λ̄`` its mean
    eigenvalue), scaled so that the rows' mean squared norm is kept; symmetric, float64."""
    if eps < 0 or (eps == 0 and power > 0):
        raise ValueError(f"eps must be > 0 (or 0 with power <= 0), got eps={eps!r}, power={power!r}.")
    C = np.asarray(centred, dtype=np.float64)
    lam, U = np.linalg.eigh(C.T @ C / len(C))
    lam = np.clip(lam, 0.0, None)
    P = (U * (lam + eps * lam.mean()) ** -power) @ U.T
    return P * np.sqrt(np.mean(np.sum(C * C, axis=1)) / np.mean(np.sum((C @ P) ** 2, axis=1)))


def fold_whitening(model, P: np.ndarray, mean: np.ndarray, features) -> None:
    """Turn `model`, trained on the features ``P·(v̂ − mean)`` (``normalize_features=False``), into
    the model of the raw `features`: ``W ← W·P``, its feature mean `mean`, the features normalised as
    usual, and its images' rows of ``wv`` rewritten from them (``model.project`` of raw features)."""
    model.W = (np.asarray(model.W, dtype=np.float64) @ P).astype(REAL)
    model.feature_mean = np.asarray(mean, dtype=REAL)
    model.normalize_features = True
    model._attach_features(features)
    model._write_image_vectors()


def train_whitened(cfg: DemoConfig, features, w2v, splits=None, *, eps: float, power: float):
    """:func:`~gensim_im2vec.pipeline.train_model` on the whitened features (``P`` from the training
    images of `splits`), ``P`` folded in afterwards."""
    if power == 0:
        return train_model(cfg, features, w2v, splits=splits)
    docs, _ = training_documents(cfg, features, tags_only=cfg.tags_only, splits=splits)
    k2i = features.key_to_index
    rows = sorted({k2i[t] for doc in docs for t in doc if t in k2i})
    V = features.gather_normalized(np.arange(len(features))).astype(np.float64)
    mu = V[rows].mean(axis=0)
    P = whitening(V[rows] - mu, eps, power)
    white = ImageFeatures(features.keys, ((V - mu) @ P).astype(REAL), name="whitened features",
                          metadata=features.metadata)
    model = train_model(replace(cfg, im2vec={**cfg.im2vec, "normalize_features": False}), white, w2v, splits=splits)
    fold_whitening(model, P, mu, features)
    return model


def _setting(text: str) -> tuple[float, float]:
    """``"ε:p"`` → (p, ε) (ε first: an argument starting with "-" would be taken for an option)."""
    eps, _, power = text.partition(":")
    return float(power or 0.5), float(eps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--settings", nargs="+", type=_setting, default=[(0.0, 1.0), (0.5, 100.0), (0.5, 10.0),
                                                                     (0.5, 1.0), (-0.25, 0.01)],
                    metavar="EPS:P", help="ε and whitening power p (p 0.5 when left out; 1:0 is the demo's model)")
    ap.add_argument("--study", action="store_true", help="also the five zero-shot study splits (two-stage)")
    args = ap.parse_args()
    words_path = Path(args.demo_dir) / "models" / "words.w2v"
    words = Word2Vec.load(str(words_path))
    feats = open_features(DemoConfig(out_dir=args.demo_dir))
    for mode in args.modes:
        for power, eps in args.settings:
            values = defaultdict(list)
            for seed in args.seeds:
                cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed)
                t = time.perf_counter()
                model = train_whitened(cfg, feats, words, eps=eps, power=power)
                trained = time.perf_counter() - t
                report = evaluate_trained(cfg, model, words, baselines=("ridge", "knn"))
                for row in report.targets():
                    values[row["target"]].append((row["value"], row["reference"]))
                print(f"{mode}, p {power:g}, ε {eps:g}, seed {seed}: trained in {trained:.0f}s", flush=True)
            print(f"{mode}, p {power:g}, ε {eps:g}: mean [min, max] over seeds {args.seeds}")
            for target, pairs in values.items():
                v, r = np.array(pairs).T
                print(f"  {target:<90s} {v.mean():.3f} [{v.min():.3f}, {v.max():.3f}]  reference {r.mean():.3f}")
            if args.study and mode == "two-stage":
                study(DemoConfig(out_dir=args.demo_dir, mode=mode), feats, words_path, power, eps)


def study(cfg: DemoConfig, feats, words_path: Path, power: float, eps: float) -> None:
    """The five splits of zero_shot_study.py with this setting."""
    from zero_shot_study import one_split

    zs, seen = [], []
    for split in ("study-1", "study-2", "study-3", "study-4", "study-5"):
        res, *_ = one_split(cfg, feats, words_path, split, 0.3, train=partial(train_whitened, eps=eps, power=power))
        a, b, c = res["Im2Vec (cosine)"], res["ridge"], res["kNN (k=20)"]
        zs.append((a["map"], b["map"]))
        seen.append((a["seen_map"], c["seen_map"]))
        print(f"  {split}: zero-shot {a['map']:.3f} (ridge {b['map']:.3f}, {a['map'] / b['map']:.2f}x); seen tags "
              f"{a['seen_map']:.3f} (kNN {c['seen_map']:.3f})", flush=True)
    (za, zb), (sa, sb) = np.mean(zs, axis=0), np.mean(seen, axis=0)
    print(f"  five splits: zero-shot {za:.3f} against ridge {zb:.3f} ({za / zb:.2f}x); seen tags {sa:.3f} against "
          f"kNN {sb:.3f} ({sa / sb:.2f}x)")


if __name__ == "__main__":
    main()
