"""What ``most_similar`` lists for an image: its nearest words among the whole vocabulary, or among the tags.

    OMP_NUM_THREADS=1 python benchmarks/nearest_words.py [--demo-dir demo_output] [--modes two-stage joint] \
        [--seeds 1 2 3] [--set space_calibrate_new_words=False ...]

The evaluation ranks an image's tags among the candidate tags (the tags of at least two training
images), as issue 11's targets ask. A user who calls ``model.wv.most_similar(image)`` or
``model.similar_by_image(features, restrict="words")`` gets the nearest words of the whole
vocabulary instead: in two-stage the text's 60,000 words, which the space step never trains
against (its candidates are the tags). ``restrict="tags"`` (:meth:`Im2Vec.most_similar_tags`)
keeps the words of the image documents. For the demo's held-out images (placed by
``model.project``) and 500 of its training images (their rows of ``wv``), this prints, per
vocabulary:

- ``mAP``: the image's own tags ranked among those words (tags the model has no vector for are
  left out of the image's truth);
- ``own@10``: the share of the 10 nearest that are the image's own tags;
- ``tags@10``: the share of the 10 nearest that are tags of some training image (1 by
  construction among the tags);
- ``zero-shot@10`` (held-out images with a zero-shot tag): the share whose 10 nearest hold one of
  their zero-shot tags, which the tags leave out by construction;
- ``new@10``: the share of the 10 nearest that are tags the text model has no vector for (in
  two-stage the space step alone places them; the line per model says what share of the tags
  they are), and ``new hit``: of those places, the share that are the image's own tags (beside
  ``own@10``, the same over all ten).

Without ``--seeds`` the demo's saved models are read (``make demo``); with it, each mode is trained
per seed as the demo trains (:func:`gensim_im2vec.pipeline.train_model`) and each figure is the
mean [min, max] over the seeds; ``--set NAME=VALUE`` trains them with an Im2Vec option changed.
``--text-without-tags SHARE`` (two-stage, with ``--seeds``) starts from the demo's text model
trained without that share of the demo's tags (as ``space_seeds.py`` has it), and prints one more
line: how the tags taken out sit among the text's words against where the full text model puts
them (:func:`text_neighbourhoods`), e.g.

    OMP_NUM_THREADS=1 python benchmarks/nearest_words.py --modes two-stage --seeds 1 2 3 --text-without-tags 0.6 \
        --set train_words=False --set space_calibrate_new_words=False
"""

import argparse
from collections import defaultdict

import numpy as np
from _common import demo_tags_dropped, demo_text_words, settings, tag_share

from gensim_im2vec.model import Im2Vec
from gensim_im2vec.pipeline import DemoConfig, evaluation_data, open_features, train_model


def average_precision(hits: np.ndarray, n_relevant: int) -> float:
    """AP of a ranking given as a boolean array (True where an item is relevant), `n_relevant` in all."""
    at = np.flatnonzero(hits)
    return float(np.sum(np.arange(1, len(at) + 1) / (at + 1)) / n_relevant) if n_relevant else 0.0


def neighbour_figures(model, V: np.ndarray, truth: list, zero_shot: set, restrict: str, k: int = 10,
                      text_words=None) -> dict:
    """The figures above for the image vectors `V` (rows) with true tags `truth`, the words of
    `restrict` ("words" or "tags") ranked by cosine, as ``model.similar_by_image`` ranks them;
    ``new@k`` and ``new hit`` with `text_words` (the text model's keys), else NaN."""
    rows = np.flatnonzero(model._modality_mask(restrict))
    keys = [model.wv.index_to_key[i] for i in rows]
    U = model.wv.vectors[rows].astype(np.float64)
    U /= np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)
    is_tag = model._tag_mask()[rows]
    zs_col = np.array([w in zero_shot for w in keys])
    new_col = is_tag & np.array([text_words is not None and w not in text_words for w in keys], dtype=bool)
    pos = {w: j for j, w in enumerate(keys)}
    aps, own, tags, zs, new, new_hit = [], [], [], [], [], []
    for lo in range(0, len(V), 256):
        H = V[lo:lo + 256].astype(np.float64)
        H /= np.maximum(np.linalg.norm(H, axis=1, keepdims=True), 1e-12)
        order = np.argsort(-(H @ U.T), axis=1, kind="stable")
        for ranked, t in zip(order, truth[lo:lo + 256]):
            tags.append(is_tag[ranked[:k]].mean())
            listed = ranked[:k][new_col[ranked[:k]]]
            new.append(len(listed) / k)
            new_hit.extend(keys[j] in t for j in listed)
            relevant = [pos[w] for w in t if w in pos]
            if relevant:
                hits = np.isin(ranked, relevant)
                aps.append(average_precision(hits, len(relevant)))
                own.append(hits[:k].mean())
            if zero_shot & set(t):
                mine = np.array([keys[j] in t for j in ranked[:k]])
                zs.append(bool(np.any(mine & zs_col[ranked[:k]])))
    return {"mAP": np.mean(aps), f"own@{k}": np.mean(own), f"tags@{k}": np.mean(tags),
            f"zero-shot@{k}": np.mean(zs) if zs else float("nan"),
            f"new@{k}": np.mean(new) if text_words is not None else float("nan"),
            "new hit": np.mean(new_hit) if new_hit else float("nan")}


def text_neighbourhoods(model, full, taken_out, n_words: int = 5000, k: int = 10) -> tuple:
    """How well the tags `taken_out` of the text sit among the text's words, against where the full
    text model `full` puts them: over the tags that both models have, the mean Pearson correlation
    of a tag's cosines to the `n_words` most frequent words of both (its profile; rotation-free, so
    two models trained apart compare) and the mean share of its `k` nearest of those words that
    are the same. NaN, NaN when no such tag is in the model."""
    vocab = model.wv.key_to_index
    tags = sorted(t for t in taken_out if t in vocab and t in full.wv.key_to_index)
    words = [w for w in full.wv.index_to_key if w in vocab and w not in taken_out and not model.is_image(w)][:n_words]
    if not tags or len(words) < k:
        return float("nan"), float("nan")

    def cosines(kv, rows):
        T = np.asarray(kv[tags], dtype=np.float64)
        W = np.asarray(kv[rows], dtype=np.float64)
        T /= np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
        W /= np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
        return T @ W.T

    A, B = cosines(model.wv, words), cosines(full.wv, words)
    r = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(A, B)])
    near_a, near_b = np.argsort(-A, axis=1)[:, :k], np.argsort(-B, axis=1)[:, :k]
    shared = np.mean([len(set(a) & set(b)) / k for a, b in zip(near_a, near_b)])
    return float(r), float(shared)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--modes", nargs="+", default=["two-stage", "joint"], choices=["two-stage", "joint"])
    ap.add_argument("--seeds", nargs="*", type=int, default=None, help="train per seed (default: the saved models)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an Im2Vec option (with --seeds)")
    ap.add_argument("--text-without-tags", type=tag_share, default=0.0, metavar="SHARE",
                    help="two-stage from the demo's text model with this share of the demo's tags taken out of its "
                         "text (with --seeds; space_seeds.py has the same)")
    args = ap.parse_args()
    opts = settings(args.set)
    if (opts or args.text_without_tags) and not args.seeds:
        raise SystemExit("--set and --text-without-tags train the models: give --seeds too.")
    if args.text_without_tags and "joint" in args.modes:
        raise SystemExit("--text-without-tags changes the text model two-stage starts from: give --modes two-stage.")
    feats = open_features(DemoConfig(out_dir=args.demo_dir))
    data = evaluation_data(DemoConfig(out_dir=args.demo_dir), feats)
    X = feats.gather_normalized([feats.row(k) for k in data.test_keys])
    zero_shot = set(data.zero_shot)
    taken_out = demo_tags_dropped(args.demo_dir, args.text_without_tags)
    words = demo_text_words(args.demo_dir, without_tags=args.text_without_tags, dropped=taken_out)
    text_words = words.wv.key_to_index
    full = demo_text_words(args.demo_dir) if args.text_without_tags else None
    for mode in args.modes:
        figures = defaultdict(list)
        for seed in args.seeds or [None]:
            if seed is None:
                model = Im2Vec.load(f"{args.demo_dir}/models/im2vec-{mode}.model")
            else:
                cfg = DemoConfig(out_dir=args.demo_dir, mode=mode, seed=seed)
                cfg = cfg.with_options(**opts)
                model = train_model(cfg, feats, words)
            inside = [i for i, key in enumerate(data.train_keys) if key in model.wv.key_to_index]
            pick = inside[:: max(1, len(inside) // 500)][:500]
            train_V = model.wv.vectors[[model.wv.key_to_index[data.train_keys[i]] for i in pick]]
            sets = {"held-out": (model.project(X), data.test_tags),
                    "training": (train_V, [data.train_tags[i] for i in pick])}
            for name, (V, truth) in sets.items():
                for restrict in ("words", "tags"):
                    for fig, value in neighbour_figures(model, V, truth, zero_shot, restrict,
                                                        text_words=text_words).items():
                        figures[(name, restrict, fig)].append(value)
            tag_keys = [model.wv.index_to_key[i] for i in np.flatnonzero(model._modality_mask("tags"))]
            unseen = sum(w not in text_words for w in tag_keys)
            if full is not None:
                r, shared = text_neighbourhoods(model, full, taken_out & set(tag_keys))
                figures["profile"].append(r)
                figures["shared"].append(shared)
            print(f"{mode}{'' if seed is None else f' seed {seed}'}: {len(model.wv)} keys, {len(tag_keys)} tags, "
                  f"{unseen} of them ({unseen / max(len(tag_keys), 1):.1%}) not in the text model", flush=True)
        print(f"\n{mode}: images' nearest words, mean [min, max] over {len(args.seeds or [None])} model(s)")
        names = ("mAP", "own@10", "tags@10", "zero-shot@10", "new@10", "new hit")
        print(f"  {'images':<10s} {'among':<6s} " + "  ".join(f"{f:>22s}" for f in names))
        for name in ("held-out", "training"):
            for restrict in ("words", "tags"):
                cells = []
                for fig in names:
                    v = figures[(name, restrict, fig)]
                    cells.append("—" if np.isnan(v).all() else f"{np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]")
                print(f"  {name:<10s} {restrict:<6s} " + "  ".join(f"{c:>22s}" for c in cells))
        if full is not None:
            r, shared = figures["profile"], figures["shared"]
            print(f"  the tags taken out of the text, against the full text model: cosine profile over its "
                  f"5,000 most frequent words r = {np.mean(r):.3f} [{min(r):.3f}, {max(r):.3f}], 10 nearest "
                  f"of them shared {np.mean(shared):.3f} [{min(shared):.3f}, {max(shared):.3f}]")
        print()


if __name__ == "__main__":
    main()
