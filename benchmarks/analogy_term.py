"""The analogy term (``Im2Vec(space_analogies=...)``): trained on half of the demo's questions, asked the other half.

    OMP_NUM_THREADS=1 python benchmarks/analogy_term.py [--demo-dir demo_output] [--modes two-stage joint] \
        [--seeds 1 2 3] [--alphas 0 0.05] [--set space_analogy_negatives=4096 ...]

Target 6 of the joint-space issue asks ``image(x) − a + b`` to find y. The demo's questions come
from training images whose titles differ in one word ("man biking" / "woman biking",
:func:`gensim_im2vec.pipeline.analogy_questions`). Here they are cut in two by
:func:`~gensim_im2vec.evaluate.analogy_halves` (no image in both halves: a question and its reverse
always in one); each
mode is trained as the demo trains it, plus the analogy term on half 0's questions at each
``space_analogy_alpha`` of `--alphas` (0: the demo's model, without the term), and evaluated as the
demo evaluates it. Printed per setting, mean [min, max] over `--seeds`: hit@1 on the questions it
trained on (half 0) and on those it never saw (half 1, about images no trained question named; also
split by whether half 0 swaps the same two words, as "man" and "woman"), x's own nearest image
on half 1 (the reference target 6 asks to beat clearly), each of the issue's targets, and the
term's share of the training time (target 8: ≤ 25 %).

Needs a finished ``make demo`` in `--demo-dir`. Nothing is saved.
"""

import argparse
import ast
import time
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
from gensim.models import Word2Vec

from gensim_im2vec.evaluate import image_analogies, untrained_analogies
from gensim_im2vec.pipeline import (
    DemoConfig,
    analogy_questions,
    evaluate_trained,
    open_features,
    train_model,
    training_analogies,
    training_documents,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--alphas", nargs="+", type=float, default=[0.0, 0.05])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an Im2Vec option")
    args = ap.parse_args()
    opts = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    words = Word2Vec.load(f"{args.demo_dir}/models/words.w2v")
    feats = open_features(DemoConfig(out_dir=args.demo_dir))
    for mode in args.modes:
        base = DemoConfig(out_dir=args.demo_dir, mode=mode)
        docs, splits = training_documents(base, feats, tags_only=base.tags_only)
        train_half = training_analogies(base, splits, docs)
        for alpha in args.alphas:
            values = defaultdict(list)
            for seed in args.seeds:
                cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed, space_analogies=bool(alpha))
                cfg.im2vec = {**cfg.im2vec, **opts, **({"space_analogy_alpha": alpha} if alpha else {})}
                t = time.perf_counter()
                model = train_model(cfg, feats, words)
                trained = time.perf_counter() - t
                quads = analogy_questions(cfg, model, splits, docs)
                # cut by half 0's images, also at alpha 0, where the model itself trained on no question
                unseen, seen = untrained_analogies(SimpleNamespace(space_analogies=train_half), quads)
                # half 1 by whether its word pair {a, b} is one half 0 swaps (in either direction)
                pairs = {frozenset(q[1:3]) for q in train_half}
                taught = [q for q in unseen if frozenset(q[1:3]) in pairs]
                new_pair = [q for q in unseen if frozenset(q[1:3]) not in pairs]
                for name, qs in (("half 0 (trained on)", seen), ("half 1 (never seen)", unseen),
                                 ("half 1, a word pair half 0 swaps", taught), ("half 1, a word pair it does not", new_pair)):
                    res = image_analogies(model, qs)
                    values[f"{name}: hit@1 ({res['n']} questions)"].append(res["hit@1"])
                    if qs is unseen:
                        values["half 1: x's own nearest image"].append(res["nearest_image_hit@1"])
                values["the term's share of training"].append(model.space_analogy_seconds / trained)
                report = evaluate_trained(cfg, model, words, baselines=("ridge", "knn"))
                for row in report.targets():
                    values[row["target"]].append(row["value"])
                    values[f"   reference: {row['target'][:40]}"].append(row["reference"])
                print(f"{mode}, alpha {alpha:g}, seed {seed}: trained in {trained:.0f}s "
                      f"({len(train_half)} questions given)", flush=True)
            print(f"{mode}, space_analogy_alpha {alpha:g}: mean [min, max] over seeds {args.seeds}")
            for name, v in values.items():
                print(f"  {name:<90s} {np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]")


if __name__ == "__main__":
    main()
