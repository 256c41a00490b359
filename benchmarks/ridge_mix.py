"""Joint mode: each held-out image at ``unit(h) + β · unit(p − m)``, ranked by plain cosine in ``model.wv``.

    OMP_NUM_THREADS=1 python benchmarks/ridge_mix.py demo:1 demo:2 demo:3 study-1 study-2 study-3 study-4 study-5

``h`` is the image's vector in the space (``model.project``, the evaluation's float64 path), ``p``
the ridge baseline's prediction for it (:class:`~gensim_im2vec.baselines.RidgeScorer`, fitted on
the same training images onto the same word vectors) and ``m`` the mean word vector ridge centres
on. β = 0 is the space itself (checked: the Im2Vec row's scores). A question for issue 11's target 3
(zero-shot tags against ridge): does mixing ridge's direction into the image vector carry its
zero-shot ranking into the space, and at what cost to seen tags (target 1) and tag → image
(target 4)? A measurement outside the model (docs/joint-space.md, "Measured on 2026-12-05, later");
the model's own readout, fitted while it trains, is ``Im2Vec(space_readout=β)``.

Jobs: ``demo:SEED`` trains the joint demo at that seed on the demo's own split; ``study-N`` one of
the five study splits of ``benchmarks/zero_shot_study.py`` (30% of the tags held out, the demo's
seed). Each job trains the joint model once (≈ 3 min on one CPU thread) and prints, per scorer,
zero-shot mAP and its ratio to ridge's, held-out image → word mAP over all candidates and over
the seen tags (ratio to kNN's), and seen tag → image mAP. ``--out FILE`` appends each job's figures
as a JSON line. ``--targets BETA`` (demo jobs) gives the model the mix at BETA as its projection
(held-out images and the training images' rows of ``wv``) and prints the demo's targets 1-7 from
its own evaluation, beside the space's. Needs a finished ``make demo`` in ``--demo-dir``.
"""

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from gensim.models import Word2Vec

from gensim_im2vec.baselines import RidgeScorer, TagPriorScorer
from gensim_im2vec.datasets import make_split
from gensim_im2vec.evaluate import Im2VecScorer, KNNTagScorer, evaluate_scores, words_only
from gensim_im2vec.pipeline import (
    DemoConfig,
    evaluation_data,
    load_splits,
    open_features,
    train_model,
)
from gensim_im2vec.validation import l2_normalize

BETAS = (0.0, 0.25, 0.5, 1.0)


class MixScorer:
    """Scores of ``unit(h) + β · unit(p − m)`` against the candidates, by plain cosine in ``model.wv``."""

    def __init__(self, model, ridge: RidgeScorer, beta: float) -> None:
        self.model, self.ridge, self.beta = model, ridge, float(beta)
        self.space = Im2VecScorer(model)

    def __call__(self, X, candidates):
        arr, _ = self.model._as_feature_matrix(X)
        H = l2_normalize(self.model._project_normalized(arr, dtype=np.float64), out_dtype=np.float64)
        P = l2_normalize(self.ridge.project(X) - self.ridge.word_mean.astype(np.float64), out_dtype=np.float64)
        return self.space.score_vectors(H + self.beta * P, candidates)


def one_job(cfg, feats, words_path, split):
    """The scores of one split (`split`: the split to evaluate on) with the mixed scorers beside
    zero_shot_study's: the same model, ridge and data."""
    splits = load_splits(cfg)
    splits[cfg.eval_set] = split
    data = evaluation_data(cfg, feats, split=split)
    t = time.perf_counter()
    model = train_model(cfg, feats, Word2Vec.load(str(words_path)), splits=splits)
    trained = time.perf_counter() - t
    rows = lambda keys: feats.gather_normalized([feats.row(k) for k in keys])  # noqa: E731
    X_test, X_train = rows(data.test_keys), rows(data.train_keys)
    ridge = RidgeScorer.fit(X_train, data.train_tags, words_only(model, word_space=True))
    scorers = [("Im2Vec (cosine)", Im2VecScorer(model)), ("ridge", ridge),
               ("kNN (k=20)", KNNTagScorer.fit(X_train, data.train_tags, k=20)),
               ("tag prior", TagPriorScorer.fit(data.train_tags))]
    scorers += [(f"mix beta={b:g}", MixScorer(model, ridge, b)) for b in BETAS]
    out = {}
    for name, scorer in scorers:
        res = evaluate_scores(scorer(X_test, data.candidates), data.test_tags, data.candidates,
                              zero_shot=data.zero_shot)
        out[name] = {**res["zero_shot"], "all_map": res["all"]["map"], "all_tag_map": res["all"]["tag_map"],
                     "seen_map": res["seen"]["map"], "seen_tag_map": res["seen"]["tag_map"]}
    zero = set(data.zero_shot)
    top = Counter(t for tags in data.test_tags for t in tags if t in zero).most_common(1)
    return out, len(data.zero_shot), (top[0] if top else ("-", 0)), trained


def mixed_model(model, ridge: RidgeScorer, beta: float):
    """`model` with the mix as its projection, for the demo's whole evaluation (targets 1-7): every
    image's vector, held-out (``_map``) and trained (its row of ``wv``, rewritten through
    ``project_rows``), is ``unit(h) + β · unit(p − m)``. A measurement, on this instance only."""
    space_map = model._map

    def mix(V, dtype=np.float32):
        H = l2_normalize(np.asarray(space_map(V, np.float64), dtype=np.float64), out_dtype=np.float64)
        P = l2_normalize(ridge.project(V) - ridge.word_mean.astype(np.float64), out_dtype=np.float64)
        return (H + beta * P).astype(dtype, copy=False)

    def rows(r):
        V, inv = model.features.gather(r)
        return mix(V * inv[:, None] if model.normalize_features else V)

    model._map, model.project_rows = mix, rows
    model._write_image_vectors()
    return model


def targets(cfg, feats, words, beta: float) -> None:
    """Train the joint demo at `cfg`, then print the demo's targets 1-7 of the space and of the
    same model with the mix at `beta`."""
    from gensim_im2vec.pipeline import evaluate_trained

    data = evaluation_data(cfg, feats)
    model = train_model(cfg, feats, words)
    rows = lambda keys: feats.gather_normalized([feats.row(k) for k in keys])  # noqa: E731
    ridge = RidgeScorer.fit(rows(data.train_keys), data.train_tags, words_only(model, word_space=True))
    for name, m in (("the space", model), (f"mix beta={beta:g}", None)):
        if m is None:
            m = mixed_model(model, ridge, beta)
        report = evaluate_trained(cfg, m, words, features=feats, baselines=("ridge", "knn"))
        print(f"  {name}:", flush=True)
        for row in report.targets():
            print(f"    {row['target']:<90s} {row['value']:.4f}  (reference {row['reference']:.4f})  "
                  f"{'met' if row['ok'] else 'NOT met'}", flush=True)


def _config(demo_dir: str, seed: int = 1) -> DemoConfig:
    """The joint demo's settings, without the model's own readout (``space_readout``, which the
    joint demo trains with since this measurement): β = 0 here is the space's map alone."""
    return DemoConfig(out_dir=demo_dir, mode="joint", seed=seed).with_options(space_readout=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jobs", nargs="+", help="demo:SEED or a study split (study-1 ... study-5)")
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--share", type=float, default=0.3, help="the study splits' share of tags held out")
    ap.add_argument("--out", default=None, help="append each job's figures to this file, a JSON line each")
    ap.add_argument("--targets", type=float, default=None, metavar="BETA",
                    help="demo:SEED jobs only: the demo's targets 1-7 (its own evaluation) of the space and of the "
                         "model with the mix at BETA as its projection, training images' rows included")
    args = ap.parse_args()
    words_path = Path(args.demo_dir) / "models" / "words.w2v"
    if not words_path.exists():
        raise SystemExit(f"{words_path} not found: run `make demo` (or `im2vec demo --out {args.demo_dir}`) first.")
    if args.targets is not None:
        words = Word2Vec.load(str(words_path))
        for job in args.jobs:
            if not job.startswith("demo:"):
                raise SystemExit(f"--targets: {job!r} is not a demo:SEED job (the targets are the demo split's)")
            cfg = _config(args.demo_dir, seed=int(job.split(":", 1)[1]))
            print(f"{job}:", flush=True)
            targets(cfg, open_features(cfg), words, args.targets)
        return
    for job in args.jobs:
        t0 = time.perf_counter()
        if job.startswith("demo:"):
            cfg = _config(args.demo_dir, seed=int(job.split(":", 1)[1]))
            split = load_splits(cfg)[cfg.eval_set]  # the demo's own split
        else:
            cfg = _config(args.demo_dir)
            split = make_split(Path(cfg.out_dir) / "data" / cfg.eval_set, zero_shot_share=args.share, seed=job,
                                  write=False)
        res, n_zero, top, trained = one_job(cfg, open_features(cfg), words_path, split)
        r, k = res["ridge"], res["kNN (k=20)"]
        print(f"{job}: {n_zero} zero-shot tags (most frequent: {top[0]!r} on {top[1]} test images); trained in "
              f"{trained:.0f} s, {time.perf_counter() - t0:.0f} s in all", flush=True)
        for name, v in res.items():
            print(f"  {name:16s} ZS mAP {v['map']:.4f} (/ridge {v['map'] / r['map']:.4f})  all mAP "
                  f"{v['all_map']:.4f} (/kNN {v['all_map'] / k['all_map']:.4f})  seen mAP {v['seen_map']:.4f} "
                  f"(/kNN {v['seen_map'] / k['seen_map']:.4f})  seen tag->image {v['seen_tag_map']:.4f}", flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps({"job": job, "n_zero": n_zero, "top": list(top), "res": res}) + "\n")


if __name__ == "__main__":
    main()
