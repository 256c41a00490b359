"""The joint-space targets over several training seeds: mean and range, as the README reports them.

    python benchmarks/space_seeds.py [--demo-dir demo_output] [--modes two-stage joint] [--seeds 1 2 3] \
        [--set space_negatives=256 ...] [--demo-set image_epochs=100 ...]

Needs a finished ``make demo`` in `--demo-dir` (its data, features and word vectors). For each mode
and seed it trains Im2Vec exactly as the demo does (:func:`gensim_im2vec.pipeline.train_model`,
``DemoConfig(seed=…)``), evaluates it as the demo does
(:func:`gensim_im2vec.pipeline.evaluate_trained`: the same split, candidates, baselines, space
checks and analogies; of the baselines only ridge and kNN, the targets' references), prints each
seed's targets, then per target the mean and the range over
the seeds, beside the reference each target is measured against. Models are not saved.
``--set NAME=VALUE`` trains with an Im2Vec option changed (the demo's otherwise), ``--demo-set
NAME=VALUE`` with a field of :class:`~gensim_im2vec.pipeline.DemoConfig` changed (``image_epochs``,
``vector_size`` needs other word vectors: ``--demo-set vector_size=100 --text-words`` trains the
demo's text model at that size once, seed 1, into ``<demo-dir>/models/words-100d.w2v``, and uses it).
``--text-without-tags SHARE`` (two-stage) starts from a text model trained on the demo's text with
that share of the demo's tags taken out of it, so the text has no vector for them: the case of a
photo collection whose tags the text model mostly never saw (cached as
``<demo-dir>/models/words-200d-without<SHARE>-<digest>.w2v``). ``--vectors-only`` (two-stage)
starts from the text model's word vectors alone, as a word2vec-format file gives them (no output
weights: they start at zero; no counts: the file's order stands in), with the text model's ``sg``:
pretrained vectors such as GoogleNews's, against the Word2Vec they came from. ``--fasttext
ngrams|vectors`` (two-stage) starts from gensim's FastText trained on the same text instead
(:func:`_common.demo_text_fasttext`, cached): ``ngrams`` gives ``from_word2vec`` its KeyedVectors
with their character n-grams (the tags the text lacks start from them), ``vectors`` the same
vectors and counts as plain KeyedVectors (those tags start at random); word similarity is then
measured against the FastText model.
"""

import argparse
import time
from collections import defaultdict

import numpy as np
from _common import demo_text_fasttext, demo_text_words, settings, tag_share
from gensim.models import KeyedVectors

from gensim_im2vec.pipeline import (
    DemoConfig,
    evaluate_trained,
    open_features,
    train_model,
)


def plain_vectors(wv, counts: bool) -> KeyedVectors:
    """`wv`'s words and vectors as plain KeyedVectors (no n-grams, no output weights), with its
    counts or without them."""
    plain = KeyedVectors(wv.vector_size)
    plain.add_vectors(wv.index_to_key, wv.vectors)
    if counts:
        plain.expandos["count"] = np.array(wv.expandos["count"])
    return plain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an Im2Vec option")
    ap.add_argument("--demo-set", action="append", default=[], metavar="NAME=VALUE", help="a DemoConfig field")
    ap.add_argument("--text-words", action="store_true",
                    help="word vectors of the demo's text at the DemoConfig's vector_size (trained once, cached)")
    ap.add_argument("--text-without-tags", type=tag_share, default=0.0, metavar="SHARE",
                    help="word vectors of the demo's text with this share of the demo's tags taken out of it "
                         "(trained once, cached): a collection whose tags the text mostly never saw")
    ap.add_argument("--vectors-only", action="store_true",
                    help="two-stage from the text model's word vectors alone (no output weights, no counts)")
    ap.add_argument("--fasttext", choices=["ngrams", "vectors"], default=None,
                    help="two-stage from FastText on the demo's text: with its n-grams, or its vectors alone")
    args = ap.parse_args()
    opts = settings(args.set)
    fields = settings(args.demo_set)
    size = fields.get("vector_size", DemoConfig.vector_size)
    if args.text_without_tags and "joint" in args.modes:
        raise SystemExit("--text-without-tags changes the text model two-stage starts from; joint trains on the "
                         "demo's text itself: give --modes two-stage.")
    if size != DemoConfig.vector_size and not args.text_words:
        raise SystemExit(f"the demo's word vectors have vector_size={DemoConfig.vector_size}, the run asks for {size}: "
                         f"add --text-words to train the demo's text model at {size} (once, cached in the demo's "
                         f"models/).")
    if args.fasttext and (size != DemoConfig.vector_size or "joint" in args.modes or args.vectors_only):
        raise SystemExit("--fasttext is how two-stage starts, at the demo's vector_size: give --modes two-stage, "
                         "without --vectors-only or another vector_size.")
    words = (demo_text_fasttext(args.demo_dir, args.text_without_tags) if args.fasttext else
             demo_text_words(args.demo_dir, size if args.text_words else None, args.text_without_tags))
    if words.vector_size != size:
        raise SystemExit(f"the word vectors have vector_size={words.vector_size}, the run asks for {size}.")
    if args.vectors_only and "joint" in args.modes:
        raise SystemExit("--vectors-only is how two-stage starts; give --modes two-stage.")
    start = words
    if args.fasttext == "ngrams":
        start = words.wv
    elif args.fasttext == "vectors" or args.vectors_only:  # fastText's with their counts; --vectors-only without
        start = plain_vectors(words.wv, counts=args.fasttext == "vectors")  # (as load_word2vec_format gives them)
    if args.fasttext or args.vectors_only:
        opts.setdefault("sg", words.sg)  # (vectors alone carry no settings: the text model's skip-gram)
    for mode in args.modes:
        feats = open_features(DemoConfig(out_dir=args.demo_dir))
        values, refs = defaultdict(list), defaultdict(list)
        for seed in args.seeds:
            cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed, **fields)
            cfg = cfg.with_options(**opts)
            t = time.perf_counter()
            model = train_model(cfg, feats, start)
            trained = time.perf_counter() - t
            report = evaluate_trained(cfg, model, words, baselines=("ridge", "knn"))  # the targets' references
            print(f"{mode} seed {seed}: trained in {trained:.0f}s; the space step took "
                  f"{100 * model.space_step_share:.0f}% of the workers' time, the feature mean "
                  f"{model.space_setup_seconds:.2f}s ({100 * model.space_setup_seconds / trained:.1f}% of training), the "
                  f"neighbours' words {model.space_neighbour_seconds:.2f}s "
                  f"({100 * model.space_neighbour_seconds / trained:.1f}%)")
            for row in report.targets():
                values[row["target"]].append(row["value"])
                refs[row["target"]].append(row["reference"])
                print(f"  {row['target']:<90s} {row['value']:.3f}  (reference {row['reference']:.3f})"
                      f"  {'met' if row['ok'] else 'NOT met'}")
            delta = report.word_similarity[-1]  # Δ (Im2Vec − text): target 7's three parts
            for name in ("wordsim353", "simlex999", "analogies"):
                values[f"   Δ {name} (target 7)"].append(delta[name])
                refs[f"   Δ {name} (target 7)"].append(-0.02 if name == "analogies" else -0.01)
            print("  Δ word similarity: " + ", ".join(f"{k} {delta[k]:+.4f}" for k in ("wordsim353", "simlex999",
                                                                                     "analogies")))
        print(f"\n{mode}: mean [min, max] over seeds {args.seeds}")
        for name, v in values.items():
            r = refs[name]
            print(f"  {name:<90s} {np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]  reference {np.mean(r):.3f} "
                  f"[{min(r):.3f}, {max(r):.3f}]")
        print()


if __name__ == "__main__":
    main()
