"""Target 6's ceilings: what the demo's cross-modal analogy questions can be answered with.

    OMP_NUM_THREADS=1 python benchmarks/analogy_ceilings.py --demo-dir demo_output \
        --modes two-stage joint --seeds 1 2 3 [--model PATH ...] [--ridge 0.001 0.01] [--fit-questions] \
        [--visual 0.1 0.2 0.3 0.5]

Needs a finished ``make demo`` in `--demo-dir`. For each mode and seed it trains Im2Vec as the
demo does (:func:`gensim_im2vec.pipeline.train_model`), but without the analogy term
(``DemoConfig(space_analogies=False)``: the model answers questions it never trained on;
``--model`` evaluates saved models instead) and answers the demo's questions (:func:`gensim_im2vec.pipeline.analogy_questions`,
``image(x) − a + b`` → y among the training images, target 6: hit@1 ≥ 0.8) with four
representations of the same images, the words always the model's:

- ``model``: the images' rows of ``model.wv`` (the evaluation's figure);
- ``nearest``: x's own nearest image, the reference the target asks to beat clearly;
- ``bag``: each image as the unit sum of its own tags' unit vectors
  (:func:`gensim_im2vec.evaluate.bag_of_words_analogies`): an image vector that knows its tags
  exactly;
- ``bag + δ·visual`` (``--visual``, δ 0.1 0.2 0.3 0.5 by default): the ``bag`` plus δ times a unit
  visual vector of the image, its centred features' coordinates on their top ``vector_size``
  principal axes (no word in it): the bag breaks a tie between images with the same tags by how
  alike they look, as an image vector that knew its tags exactly and kept some of its features
  would;
- ``linear λ`` (with the rows' mean cosine to their bags beside it, and the model's): each image as ``W*·(v̂ − μ)``, ``W*`` the least-squares map (ridge λ) of the
  training images' centred features onto their ``bag`` vectors, fitted on those very images. The
  questions' own images are in the fit, so nothing needs to generalise: it is how close a linear
  map of these features, the form every image vector of the model has, answers.
- ``questions`` and ``questions, other half`` (with ``--fit-questions``; needs torch): ``W`` fitted,
  from the model's, to the questions themselves (a softmax over the images of the cosine to
  ``image(x) − a + b``, Adam, :func:`fit_to_questions`). In-sample it is how far any linear map of
  these features can go; fitted to the questions of one half of the x images and asked those of
  the other (two halves that share no image, :func:`~gensim_im2vec.evaluate.analogy_halves`, each answered by the map fitted to the other), how
  far an objective that knew such questions could carry to new ones.

Each is also scored on two halves of the questions: those whose answer y is among x's 10 nearest
training images by the raw (centred) features, and the rest; and on two subsets the words alone
decide: the questions whose y has a set of tags no other training image has, and those the
``bag`` answers (y found when every image is its tags). Prints one JSON line per model, then
per mode the mean [min, max] over seeds. Models are not saved.
"""

import argparse
import json
from collections import Counter, defaultdict

import numpy as np
from gensim.models import Word2Vec

from gensim_im2vec.baselines import l2_normalize
from gensim_im2vec.evaluate import (
    analogy_halves,
    bag_of_words_vectors,
    image_analogies,
    vector_analogies,
)
from gensim_im2vec.index import cosine_neighbours
from gensim_im2vec.model import Im2Vec
from gensim_im2vec.pipeline import (
    DemoConfig,
    analogy_questions,
    open_features,
    train_model,
    training_documents,
)


def feature_near(quads, keys, Xc, k: int = 10) -> set:
    """The questions whose answer y is among x's `k` nearest images of `keys` by cosine of the
    centred features `Xc` (one row per key)."""
    row = {key: i for i, key in enumerate(keys)}
    asked = [q for q in quads if q[0] in row and q[3] in row]
    xs = sorted({row[q[0]] for q in asked})
    top, _ = cosine_neighbours(l2_normalize(Xc[xs]), l2_normalize(Xc), k + 1)  # + 1: x itself
    near = {x: set(t) - {x} for x, t in zip(xs, top)}
    return {q for q in asked if row[q[3]] in near[row[q[0]]]}


def fit_to_questions(Xc, keys, wv, quads, W0, steps: int = 400, scale: float = 20.0, lr: float = 3e-3,
                     ) -> np.ndarray:
    """``W`` (from `W0`) fitted with Adam so that ``unit(W·xc) − a + b`` (unit word vectors) ranks
    y first among the images of `keys` (rows `Xc`, x itself left out), by a softmax of `scale` ×
    cosine: the questions `quads` answered by a linear map of the features trained on them."""
    import torch

    row = {k: i for i, k in enumerate(keys)}
    qs = [q for q in quads if q[0] in row and q[3] in row and q[1] in wv.key_to_index and q[2] in wv.key_to_index]
    if not qs:
        return np.array(W0, dtype=np.float32)
    x = torch.tensor([row[q[0]] for q in qs])
    y = torch.tensor([row[q[3]] for q in qs])
    shift = torch.tensor(np.stack([wv.get_vector(q[2], norm=True) - wv.get_vector(q[1], norm=True) for q in qs]))
    X = torch.tensor(np.asarray(Xc, dtype=np.float32))
    W = torch.tensor(np.asarray(W0, dtype=np.float32), requires_grad=True)
    opt = torch.optim.Adam([W], lr=lr)
    for _ in range(steps):
        H = torch.nn.functional.normalize(X @ W.T, dim=1)
        Q = torch.nn.functional.normalize(H[x] + shift, dim=1)
        S = scale * (Q @ H.T)
        S[torch.arange(len(qs)), x] = float("-inf")
        loss = torch.nn.functional.cross_entropy(S, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach().numpy()


def ceilings(cfg: DemoConfig, model, feats, ridges, fit_questions: bool = False, visual=()) -> dict:
    docs, splits = training_documents(cfg, feats, tags_only=cfg.tags_only)
    quads = analogy_questions(cfg, model, splits, docs)
    wv = model.wv
    keys, bags = bag_of_words_vectors(wv, [d for d in docs if d[0] in wv.key_to_index])
    X = feats.gather_normalized([feats.row(k) for k in keys]).astype(np.float64)
    Xc = X - np.asarray(model.feature_mean, dtype=np.float64)
    reps = {"model": wv.vectors[[wv.key_to_index[k] for k in keys]], "bag": bags}
    G = Xc.T @ Xc
    B = bags.astype(np.float64)
    if len(visual):
        axes = np.linalg.svd(Xc, full_matrices=False)[2][: wv.vector_size]  # the features' top principal axes
        look = l2_normalize(Xc @ axes.T, out_dtype=np.float64)
        for delta in visual:
            reps[f"bag + {delta:g}·visual"] = l2_normalize(bags, out_dtype=np.float64) + delta * look
    for lam in ridges:
        reps[f"linear {lam:g}"] = Xc @ np.linalg.solve(G + lam * np.eye(len(G)), Xc.T @ B)
    fit = {name: float(np.mean(np.sum(l2_normalize(V, out_dtype=np.float64) * B, axis=1)))  # rows' cosine to their bags
           for name, V in reps.items() if not name.startswith("bag")}
    near = feature_near(quads, keys, Xc)
    parts = {"all": quads, "y near x": sorted(near), "y far from x": [q for q in quads if q not in near]}
    # the questions the words alone decide: y's tags are no other image's, and the bags answer y
    own: dict[str, set] = {}  # each image's words in wv, over all its documents (as its bag has them)
    for d in docs:
        if d and d[0] in wv.key_to_index:
            own.setdefault(d[0], set()).update(w for w in d[1:] if w in wv.key_to_index)
    own = {k: frozenset(ws) for k, ws in own.items()}
    tag_sets = Counter(own.values())
    parts["y's tags unique"] = [q for q in quads if q[3] in own and tag_sets[own[q[3]]] == 1]
    parts["bags answer y"] = [q for q in quads if vector_analogies(wv, keys, bags, [q])["hit@1"] == 1.0]
    out = {"n": {p: len(qs) for p, qs in parts.items()}, "fit_cosine": fit}
    check = image_analogies(model, quads)
    out["nearest"] = check["nearest_image_hit@1"]
    for name, V in reps.items():
        out[name] = {p: vector_analogies(wv, keys, V, qs)["hit@1"] for p, qs in parts.items()}
    if fit_questions:
        W0 = np.asarray(model.W, dtype=np.float64)
        Xf = Xc.astype(np.float32)
        V = Xf @ fit_to_questions(Xf, keys, wv, quads, W0).T
        out["questions"] = {p: vector_analogies(wv, keys, V, qs)["hit@1"] for p, qs in parts.items()}
        half = dict(zip(quads, analogy_halves(quads)))
        other = {}  # each half answered by the map fitted to the other
        for h in (0, 1):
            V = Xf @ fit_to_questions(Xf, keys, wv, [q for q in quads if half[q] != h], W0).T
            for p, qs in parts.items():
                asked = [q for q in qs if half[q] == h]
                res = vector_analogies(wv, keys, V, asked)
                hits, n = other.get(p, (0.0, 0))
                other[p] = (hits + (res["hit@1"] * res["n"] if res["n"] else 0.0), n + res["n"])
        out["questions, other half"] = {p: hits / n if n else float("nan") for p, (hits, n) in other.items()}
    if abs(out["model"]["all"] - check["hit@1"]) > 1e-9:  # the model's rows answer as gensim's most_similar does
        raise RuntimeError(f"vector_analogies gave {out['model']['all']}, image_analogies {check['hit@1']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--model", nargs="+", default=[], metavar="PATH", help="saved models to evaluate instead")
    ap.add_argument("--ridge", nargs="+", type=float, default=[1e-3, 1e-2], metavar="LAMBDA",
                    help="ridge penalties of the linear map (default: 0.001 0.01)")
    ap.add_argument("--fit-questions", action="store_true",
                    help="also W fitted to the questions themselves, and to the other half's (torch; ~4 min a model)")
    ap.add_argument("--visual", nargs="*", type=float, default=[0.1, 0.2, 0.3, 0.5], metavar="DELTA",
                    help="weights of the visual vector added to the bags (default: 0.1 0.2 0.3 0.5; none: leave out)")
    args = ap.parse_args()
    feats = open_features(DemoConfig(out_dir=args.demo_dir))
    runs = [(path, None, lambda p=path: Im2Vec.load(p)) for path in args.model]
    if not args.model:
        w2v = Word2Vec.load(f"{args.demo_dir}/models/words.w2v")
        for mode in args.modes:
            for seed in args.seeds:
                cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed, space_analogies=False)
                runs.append((mode, seed, lambda c=cfg: train_model(c, feats, w2v)))
    results = defaultdict(list)
    for mode, seed, make in runs:
        res = ceilings(DemoConfig(out_dir=args.demo_dir), make(), feats, args.ridge, args.fit_questions, args.visual)
        print(json.dumps({"mode": mode, "seed": seed, **res}), flush=True)
        results[mode].append(res)
    for mode, rows in results.items():
        print(f"\n{mode}: {len(rows)} model(s), {rows[0]['n']} questions")
        print(f"  {'nearest image (all)':<18s} " + _spread([r["nearest"] for r in rows]))
        for name in [k for k in rows[0] if isinstance(rows[0][k], dict) and k not in ("n", "fit_cosine")]:
            cos = f"  (mean cosine to the bags {np.mean([r['fit_cosine'][name] for r in rows]):.3f})" if name in rows[0]["fit_cosine"] else ""
            print(f"  {name:<18s} " + "  ".join(f"{p} {_spread([r[name][p] for r in rows])}" for p in rows[0]["n"]) + cos)


def _spread(values) -> str:
    return f"{np.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


if __name__ == "__main__":
    main()
