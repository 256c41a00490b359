"""Issue 11's targets with and without each image vector carrying its nearest training images'
whitened tag bags (``Im2Vec(space_neighbours=K)``, :meth:`gensim_im2vec.Im2Vec.fit_neighbours`).

Every image vector (a training image's row of ``wv`` and ``model.project(f)`` of a held-out image,
one function of the features) becomes

    unit(v) + γ · unit( Σ_j s_j^p · b̃_j )

where ``v`` is the model's own vector, ``j`` runs over the ``--k`` training images nearest by
the cosine of the features (a training image finds itself, at cosine 1), ``s_j`` is that cosine
(clipped at 0) and ``b̃_j`` is image j's tag bag, whitened: the sum of its tags' unit vectors times
``(G + λI)⁻¹``, ``G`` the mean outer product of the unit vectors of the words of the image
documents, then unit length. Whitening is what makes the bag decodable by cosine: a plain sum of
unit word vectors is nearest the general words every bag shares. Each seed's model is trained as
the demo trains it (``pipeline.train_model``, with ``space_neighbours=K``: the bags gathered in
its last epoch), then evaluated as the demo evaluates it
(:func:`gensim_im2vec.pipeline.evaluate_trained`, baselines ridge and kNN) at each γ
(``model.space_neighbour_weight = γ``; γ = 0: the model's vectors without them).

    OMP_NUM_THREADS=1 python benchmarks/neighbour_bags.py --modes two-stage joint --seeds 1 2 3 --gammas 0 1 2

Needs a finished ``make demo`` in ``--demo-dir``. ``--saved`` evaluates the demo's saved models
(seed 1) instead of training one per seed (refitted at ``--k``, ``--power`` and ``--whiten`` when they
are not theirs). ``--power`` and ``--whiten`` set the package's ``NEIGHBOUR_POWER`` and ``NEIGHBOUR_WHITEN`` for the run. Prints
each setting's targets, then per γ the mean and the range over the seeds.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
from _common import demo_text_words

import gensim_im2vec.model as model_module
from gensim_im2vec.model import Im2Vec
from gensim_im2vec.pipeline import (
    DemoConfig,
    evaluate_trained,
    open_features,
    train_model,
    training_documents,
)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--saved", action="store_true", help="the demo's saved models (seed 1), not one trained per seed")
    ap.add_argument("--gammas", nargs="+", type=float, default=[0.0, 0.5, 1.0, 2.0])
    ap.add_argument("--k", type=int, default=model_module.NEIGHBOURS, help="nearest training images")
    ap.add_argument("--power", type=float, default=model_module.NEIGHBOUR_POWER,
                    help="p: a neighbour weighs its cosine to the p")
    ap.add_argument("--whiten", type=float, default=model_module.NEIGHBOUR_WHITEN,
                    help="λ of (G + λI)⁻¹ (G's trace is 1)")
    args = ap.parse_args(argv)
    # (the saved models were fitted at the package's p and λ: another --power or --whiten fits them again)
    refit = (args.power, args.whiten) != (model_module.NEIGHBOUR_POWER, model_module.NEIGHBOUR_WHITEN)
    model_module.NEIGHBOUR_POWER, model_module.NEIGHBOUR_WHITEN = args.power, args.whiten
    words = demo_text_words(args.demo_dir, None, 0.0)
    feats = open_features(DemoConfig(out_dir=args.demo_dir))
    results: dict = {}
    for mode in args.modes:
        values = defaultdict(lambda: defaultdict(list))
        refs = defaultdict(list)
        for seed in [1] if args.saved else args.seeds:
            cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed)
            t = time.perf_counter()
            if args.saved:
                model = Im2Vec.load(f"{args.demo_dir}/models/im2vec-{mode}.model")
                if model.neighbour_k != args.k or refit:
                    model.fit_neighbours(training_documents(cfg, feats, tags_only=cfg.tags_only)[0], k=args.k)
            else:
                model = train_model(cfg.with_options(space_neighbours=args.k), feats, words)
            print(f"{mode} seed {seed}: model in {time.perf_counter() - t:.0f}s; k={args.k} p={args.power:g} "
                  f"λ={args.whiten:g}", flush=True)
            for g in args.gammas:
                t = time.perf_counter()
                model.space_neighbour_weight = g  # (0: the model's vectors without the neighbours' words)
                fitted = time.perf_counter() - t
                report = evaluate_trained(cfg, model, words, baselines=("ridge", "knn"))
                print(f"  γ = {g:g} (rows written in {fitted:.1f}s, evaluated in {time.perf_counter() - t - fitted:.0f}s)")
                for row in report.targets():
                    values[g][row["target"]].append(row["value"])
                    if g == args.gammas[0]:  # (the references do not depend on γ)
                        refs[row["target"]].append(row["reference"])
                    print(f"    {row['target'][:84]:<84s} {row['value']:.3f}  (reference {row['reference']:.3f})"
                          f"  {'met' if row['ok'] else 'NOT met'}", flush=True)
        print(f"\n{mode}: mean [min, max] over seeds {[1] if args.saved else args.seeds}")
        for g, rows in values.items():
            print(f"  γ = {g:g}")
            for name, v in rows.items():
                r = refs[name]
                print(f"    {name[:84]:<84s} {np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]  (reference "
                      f"{np.mean(r):.3f} [{min(r):.3f}, {max(r):.3f}])")
        results[mode] = {g: dict(rows) for g, rows in values.items()}
    return results


if __name__ == "__main__":
    main()
