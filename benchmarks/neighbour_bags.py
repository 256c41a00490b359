"""Issue 11's targets with each image vector carrying its nearest training images' whitened tag bags.

Every image vector (a training image's row of ``wv`` and ``model.project(f)`` of a held-out image,
one function of the features) becomes

    unit(v) + γ · unit( Σ_j s_j^p · b̃_j )

where ``v`` is the model's own vector, ``j`` runs over the ``--k`` training images nearest by
the cosine of the features (a training image finds itself, at cosine 1), ``s_j`` is that cosine
(clipped at 0) and ``b̃_j`` is image j's tag bag, whitened: the sum of its tags' unit vectors times
``(G + λI)⁻¹``, ``G`` the mean outer product of the unit vectors of the words of the image
documents, then unit length. Whitening is what makes the bag decodable by cosine: a plain sum of
unit word vectors is nearest the general words every bag shares. Nothing is trained: the model's
``W``, readout and words stay as trained; the term is added to the rows and to ``project`` (a
scratch patch of the model, not the package's code), and the model is evaluated as the demo
evaluates it (:func:`gensim_im2vec.pipeline.evaluate_trained`, baselines ridge and kNN).

    OMP_NUM_THREADS=1 python benchmarks/neighbour_bags.py --modes two-stage joint --seeds 1 2 3 --gammas 0 0.5 1 2

Needs a finished ``make demo`` in ``--demo-dir``. ``--saved`` evaluates the demo's saved models
(seed 1) instead of training one per seed as the demo trains them (``pipeline.train_model``).
Prints each setting's targets, then per γ the mean and the range over the seeds.
"""

from __future__ import annotations

import argparse
import time
import types
from collections import defaultdict

import numpy as np
from _common import demo_text_words

from gensim_im2vec.evaluate import bag_of_words_vectors
from gensim_im2vec.model import Im2Vec
from gensim_im2vec.pipeline import (
    DemoConfig,
    evaluate_trained,
    open_features,
    train_model,
    training_documents,
)
from gensim_im2vec.validation import l2_normalize


class NeighbourBags:
    """The training images' normalised features and whitened bags, and the term of any features."""

    def __init__(self, model, feats, docs, k: int, power: float, whiten: float) -> None:
        keys, bags = bag_of_words_vectors(model.wv, docs)
        kept = [i for i, key in enumerate(keys) if key in feats]
        bags = np.asarray(bags, dtype=np.float64)[kept]
        tags = sorted({w for d in docs for w in d[1:] if w in model.wv.key_to_index})
        U = l2_normalize(np.asarray(model.wv[tags], dtype=np.float64))
        G = U.T @ U / len(U)
        self.bags = l2_normalize(bags @ np.linalg.inv(G + whiten * np.eye(len(G))))
        rows = [feats.row(keys[i]) for i in kept]
        self.T = l2_normalize(np.asarray(feats.vectors[rows], dtype=np.float64))
        self.k, self.power, self.n_tags = min(k, len(rows)), power, len(tags)

    def term(self, V: np.ndarray) -> np.ndarray:
        Q = l2_normalize(np.asarray(V, dtype=np.float64))
        out = np.empty((len(Q), self.bags.shape[1]))
        for lo in range(0, len(Q), 2048):
            S = Q[lo:lo + 2048] @ self.T.T
            idx = np.argpartition(-S, self.k - 1, axis=1)[:, :self.k]
            w = np.take_along_axis(S, idx, 1).clip(0) ** self.power
            out[lo:lo + 2048] = np.einsum("nk,nkd->nd", w, self.bags[idx])
        return l2_normalize(out)


def with_term(model, nb: NeighbourBags, gamma: list[float]) -> None:
    """Patch `model`'s map (project) and its rows' projection with the term at ``gamma[0]``."""
    plain = model._map

    def mapped(self, V, dtype=np.float32):
        base = plain(V, dtype)
        if not gamma[0]:
            return base
        return (l2_normalize(np.asarray(base, dtype=np.float64)) + gamma[0] * nb.term(V)).astype(dtype)

    def rows(self, idx):
        V, inv = self.features.gather(idx)
        V = np.asarray(V, dtype=np.float64) * inv[:, None] if self.normalize_features else V
        return mapped(self, V, np.float32)

    model._map = types.MethodType(mapped, model)
    model.project_rows = types.MethodType(rows, model)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--saved", action="store_true", help="the demo's saved models (seed 1), not one trained per seed")
    ap.add_argument("--gammas", nargs="+", type=float, default=[0.0, 0.5, 1.0, 2.0])
    ap.add_argument("--k", type=int, default=20, help="nearest training images")
    ap.add_argument("--power", type=float, default=20.0, help="p: a neighbour weighs its cosine to the p")
    ap.add_argument("--whiten", type=float, default=0.005, help="λ of (G + λI)⁻¹ (G's trace is 1)")
    args = ap.parse_args(argv)
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
            else:
                model = train_model(cfg, feats, words)
            docs = training_documents(cfg, feats, tags_only=cfg.tags_only)[0]
            nb = NeighbourBags(model, feats, docs, args.k, args.power, args.whiten)
            print(f"{mode} seed {seed}: model in {time.perf_counter() - t:.0f}s; {len(nb.T)} training images with a "
                  f"bag, {nb.n_tags} tags; k={nb.k} p={args.power:g} λ={args.whiten:g}", flush=True)
            gamma = [0.0]
            with_term(model, nb, gamma)
            for g in args.gammas:
                gamma[0] = g
                t = time.perf_counter()
                model._write_image_vectors()
                report = evaluate_trained(cfg, model, words, baselines=("ridge", "knn"))
                print(f"  γ = {g:g} ({time.perf_counter() - t:.0f}s)")
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
