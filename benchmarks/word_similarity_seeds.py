"""Target 7 with its reference's spread: the joint model's words against text-only Word2Vec, both
trained at each seed.

    python benchmarks/word_similarity_seeds.py [--demo-dir demo_output] [--seeds 1 2 3] [--set NAME=VALUE ...] [--demo-set NAME=VALUE ...]

Needs a finished ``make demo`` in `--demo-dir` (its data and features). For each seed it trains
the demo's text-only word vectors (:func:`gensim_im2vec.pipeline.text_word2vec`, as ``make demo``
pre-trains them) and the demo's joint Im2Vec (:func:`gensim_im2vec.pipeline.train_model`) with
that seed, and measures both with :func:`gensim_im2vec.evaluate.compare_word_similarity` (WordSim353,
SimLex-999, Google analogies; both models asked the same questions, as the demo's table asks
them). It prints each seed's figures and the Δ (joint − text) at the same
seed, then mean [min, max] over seeds of the text model, the joint model and the Δ.

``space_seeds.py`` measures Δ against the one text model of the demo (seed 1), so its spread over
seeds mixes the joint model's seed with the text model's fixed draw; here each side has its own
spread, and a Δ smaller than the text model's own range is not a difference. ``--set`` trains the
joint model with an Im2Vec option changed, ``--demo-set`` with a field of
:class:`~gensim_im2vec.pipeline.DemoConfig` changed (the demo's otherwise; the text model is always
the demo's). Models are not saved.
"""

import argparse
import time

import numpy as np
from _common import settings

from gensim_im2vec.evaluate import compare_word_similarity
from gensim_im2vec.pipeline import DemoConfig, open_features, text_word2vec, train_model

MEASURES = ("wordsim353", "simlex999", "analogies")
BARS = {"wordsim353": -0.01, "simlex999": -0.01, "analogies": -0.02}  # target 7, joint


def _row(name: str, values: dict) -> str:
    return f"  {name:<22s} " + "  ".join(f"{m} {values[m]:+.4f}" for m in MEASURES)


def _summary(name: str, rows: list[dict]) -> str:
    parts = []
    for m in MEASURES:
        v = [r[m] for r in rows]
        parts.append(f"{m} {np.mean(v):+.4f} [{min(v):+.4f}, {max(v):+.4f}]")
    return f"  {name:<22s} " + "  ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an Im2Vec option")
    ap.add_argument("--demo-set", action="append", default=[], metavar="NAME=VALUE",
                    help="a DemoConfig field of the joint model (e.g. image_epochs=36)")
    args = ap.parse_args()
    opts = settings(args.set)
    fields = settings(args.demo_set)
    feats = open_features(DemoConfig(out_dir=args.demo_dir))
    text_rows, joint_rows, deltas = [], [], []
    for seed in args.seeds:
        cfg = DemoConfig(out_dir=args.demo_dir, mode="joint", seed=seed)
        cfg = cfg.with_options(**opts)
        t = time.perf_counter()
        text = text_word2vec(DemoConfig(out_dir=args.demo_dir, mode="joint", seed=seed))  # the reference: the demo's
        for k, v in fields.items():
            if not hasattr(cfg, k):
                raise SystemExit(f"--demo-set {k}: DemoConfig has no field {k!r}.")
            setattr(cfg, k, v)
        t_text = time.perf_counter() - t
        joint = train_model(cfg, feats, text)
        t_joint = time.perf_counter() - t - t_text
        # both asked the same questions: the joint words in the text model's vocabulary order (the image
        # documents' tags would push text words out of the top 30,000 that analogies are asked about)
        a, b, _ = compare_word_similarity(joint, text)
        d = {m: b[m] - a[m] for m in MEASURES}
        text_rows.append(a)
        joint_rows.append(b)
        deltas.append(d)
        print(f"seed {seed}: text-only trained in {t_text:.0f}s, joint in {t_joint:.0f}s")
        for name, r in (("text-only Word2Vec", a), ("joint Im2Vec words", b), ("Δ (same seed)", d)):
            print(_row(name, r))
    print(f"\nmean [min, max] over seeds {args.seeds}")
    print(_summary("text-only Word2Vec", text_rows))
    print(_summary("joint Im2Vec words", joint_rows))
    print(_summary("Δ (same seed)", deltas))
    means = {m: float(np.mean([r[m] for r in joint_rows]) - np.mean([r[m] for r in text_rows])) for m in MEASURES}
    print("  mean(joint) − mean(text): " + "  ".join(
        f"{m} {means[m]:+.4f} ({'met' if means[m] >= BARS[m] else 'NOT met'}; bar {BARS[m]:+.2f})" for m in MEASURES))


if __name__ == "__main__":
    main()
