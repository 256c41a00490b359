"""What taking the tags' common directions out of the image vectors does (``space_common_directions``).

    OMP_NUM_THREADS=1 python benchmarks/common_directions.py --demo-dir demo_output \
        --modes two-stage joint --seeds 1 2 3 --k none 0 1 2 [--demo-set image_epochs=50]

Needs a finished ``make demo`` in `--demo-dir`. For each mode and seed it trains Im2Vec once, as
the demo does (:func:`gensim_im2vec.pipeline.train_model`) but with ``space_common_directions=None``
(``W`` as trained), then for each `--k` applies what ``train()`` applies at its end with that
setting (:meth:`Im2Vec._remove_common_directions`: ``W ← (I − QQᵀ)W``, ``Q`` the tags' unit mean
and top k principal directions; ``none``: nothing) and evaluates the same model on the demo's
held-out split. The comparison is paired: every k sees the same training, so the differences are
the setting's alone. One JSON line per mode, seed and k:

- ``i2w``: held-out image → word mAP over all candidates (target 1: ≥ 0.9 × kNN's);
- ``zs`` / ``ridge_zs``: zero-shot tags by cosine, and the ridge baseline's (target 3);
- ``w2i``: seen tag → held-out images (target 4: ≥ kNN's 0.131);
- ``analogies``: ``image(x) − a + b`` hit@1 on the demo's questions (target 6);

then, per k, the mean and range over the seeds and the mean paired difference against ``none``.
The five other zero-shot splits: ``python benchmarks/zero_shot_study.py --set
space_common_directions=K`` (``None`` for W as trained).
"""

import argparse
import json
from collections import defaultdict

import numpy as np
from _common import settings
from gensim.models import Word2Vec

from gensim_im2vec.evaluate import (
    Im2VecScorer,
    RidgeScorer,
    evaluate_scores,
    image_analogies,
    words_only,
)
from gensim_im2vec.pipeline import (
    DemoConfig,
    analogy_questions,
    evaluation_data,
    open_features,
    train_model,
)

FIGURES = ("i2w", "zs", "ridge_zs", "w2i", "analogies")


def parse_k(text: str):
    return None if text.lower() == "none" else int(text)


def variants(cfg, feats, w2v, ks):
    """Train once (W as trained), then yield (k, figures) for each k."""
    data = evaluation_data(cfg, feats)
    rows = lambda keys: feats.gather_normalized([feats.row(k) for k in keys])  # noqa: E731
    X_test, X_train = rows(data.test_keys), rows(data.train_keys)
    cands = data.candidates

    def scores(scorer):
        return evaluate_scores(scorer(X_test, cands), data.test_tags, cands, zero_shot=data.zero_shot)

    cfg = cfg.with_options(space_common_directions=None)
    model = train_model(cfg, feats, w2v)
    ridge = scores(RidgeScorer.fit(X_train, data.train_tags, words_only(model, word_space=True)))
    quads = analogy_questions(cfg, model)
    trained = model.W.copy()
    for k in ks:
        model.W = trained.copy()
        model.space_common_directions, model.space_directions = k, None
        model._remove_common_directions()
        model._write_image_vectors()
        res = scores(Im2VecScorer(model))
        yield k, {"i2w": res["all"]["map"], "zs": res["zero_shot"]["map"], "ridge_zs": ridge["zero_shot"]["map"],
                  "w2i": res["seen"]["tag_map"], "analogies": image_analogies(model, quads)["hit@1"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--k", nargs="+", type=parse_k, default=[None, 0, 1, 2], help="'none' or an int >= 0")
    ap.add_argument("--demo-set", action="append", default=[], metavar="NAME=VALUE",
                    help="a DemoConfig field (e.g. image_epochs=50: the joint demo's 16 copies before 2026-12-03)")
    args = ap.parse_args()
    fields = settings(args.demo_set)
    words = Word2Vec.load(f"{args.demo_dir}/models/words.w2v")
    feats = open_features(DemoConfig(out_dir=args.demo_dir))
    for mode in args.modes:
        got = defaultdict(dict)
        for seed in args.seeds:
            cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed, **fields)
            for k, fig in variants(cfg, feats, words, args.k):
                got[k][seed] = fig
                print(json.dumps({"mode": mode, "seed": seed, "k": k, **{n: round(v, 4) for n, v in fig.items()}}),
                      flush=True)
        base = got.get(None)
        for k, by_seed in got.items():
            parts = []
            for n in FIGURES:
                v = np.array([by_seed[s][n] for s in args.seeds])
                part = f"{n} {v.mean():.4f} [{v.min():.4f}, {v.max():.4f}]"
                if base is not None and k is not None and n != "ridge_zs":
                    part += f" (Δ {np.mean(v - [base[s][n] for s in args.seeds]):+.4f})"
                parts.append(part)
            print(f"{mode} k={k}: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
