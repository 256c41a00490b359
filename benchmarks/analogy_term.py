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
demo evaluates it. Printed per setting, mean [min, max] over `--seeds`: hit@1 on the questions
that share an image with a trained question (with the title questions: half 0, trained on) and on
half 1 (about images no trained question names; also split by whether the trained questions swap
the same two words, as "man" and "woman"), x's own nearest image
on half 1 (the reference target 6 asks to beat clearly), each of the issue's targets, and the
term's share of the training time (target 8: ≤ 25 %).

``--questions`` says what the term trains on: ``titles`` (the default: half 0 above), ``swaps``
or ``both``. A swap question comes from two training images whose tag sets differ in one tag
each, ``image(x) − a + b → y`` with x's tags minus a equal to y's minus b (both directions;
groups of more than 50 images with the same remaining tags are skipped); only those about no
image of half 1 are given, so half 1 stays about images no trained question names. On the demo's
data there are about 20 times as many swap questions as title questions: whether many more
questions teach the term swaps in general, or only the word pairs they contain.

Needs a finished ``make demo`` in `--demo-dir`. Nothing is saved.
"""

import argparse
import time
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
from _common import settings
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


def swap_questions(docs: list, largest: int = 50) -> list[tuple[str, str, str, str]]:
    """``(x, a, b, y)`` for every two images of `docs` (``[image, tags…]``) whose tags differ in one
    swap: x's tags without a are y's without b. Groups of more than `largest` images sharing the
    rest are skipped (a tag on its own, as "flag" + one country, says little of the swap)."""
    rest = defaultdict(list)
    for doc in docs:
        tags = frozenset(doc[1:])
        if len(tags) >= 2:
            for w in sorted(tags):
                rest[tags - {w}].append((doc[0], w))
    quads = set()
    for members in rest.values():
        if len(members) <= largest:
            for i, (x, a) in enumerate(members):
                for y, b in members[i + 1:]:
                    if x != y and a != b:
                        quads.update([(x, a, b, y), (y, b, a, x)])
    return sorted(quads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--alphas", nargs="+", type=float, default=[0.0, 0.05])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an Im2Vec option")
    ap.add_argument("--questions", choices=["titles", "swaps", "both"], default="titles",
                    help="what the term trains on: half 0 of the title questions, tag-swap questions, or both")
    args = ap.parse_args()
    titles = args.questions == "titles"  # the demo's own path (im2vec demo --space-analogies); else the questions
    opts = settings(args.set)
    words = Word2Vec.load(f"{args.demo_dir}/models/words.w2v")
    feats = open_features(DemoConfig(out_dir=args.demo_dir))
    for mode in args.modes:
        base = DemoConfig(out_dir=args.demo_dir, mode=mode)
        docs, splits = training_documents(base, feats, tags_only=base.tags_only)
        train_half = training_analogies(base, splits, docs)
        asked = {k for q in training_analogies(base, splits, docs, half=1) for k in (q[0], q[3])}  # half 1's images
        if not titles:
            swaps = [q for q in swap_questions(docs) if q[0] not in asked and q[3] not in asked]
            train_half = swaps + (train_half if args.questions == "both" else [])
        for alpha in args.alphas:
            values = defaultdict(list)
            for seed in args.seeds:
                cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed, space_analogies=bool(alpha) and titles)
                term = {"space_analogy_alpha": alpha} if alpha else {}
                if alpha and not titles:
                    term["space_analogies"] = train_half  # Im2Vec leaves out those its vocabulary cannot ask
                cfg = cfg.with_options(**opts, **term)
                t = time.perf_counter()
                model = train_model(cfg, feats, words)
                trained = time.perf_counter() - t
                quads = analogy_questions(cfg, model, splits, docs)
                # cut by half 0's images, also at alpha 0, where the model itself trained on no question
                unseen, seen = untrained_analogies(SimpleNamespace(space_analogies=train_half), quads)
                unseen = [q for q in unseen if q[0] in asked]  # half 1 (with swaps, not the rest of half 0)
                # half 1 by whether its word pair {a, b} is one the trained questions swap (in either direction)
                pairs = {frozenset(q[1:3]) for q in train_half}
                taught = [q for q in unseen if frozenset(q[1:3]) in pairs]
                new_pair = [q for q in unseen if frozenset(q[1:3]) not in pairs]
                for name, qs in (("sharing an image with a trained question", seen), ("half 1 (never seen)", unseen),
                                 ("half 1, a word pair the trained questions swap", taught), ("half 1, a word pair they do not", new_pair)):
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
                      f"({len(train_half)} {args.questions} questions given)", flush=True)
            print(f"{mode}, space_analogy_alpha {alpha:g}: mean [min, max] over seeds {args.seeds}")
            for name, v in values.items():
                print(f"  {name:<90s} {np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]")


if __name__ == "__main__":
    main()
