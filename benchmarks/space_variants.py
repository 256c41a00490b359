"""Train one variant of Im2Vec on the demo's data and print the joint-space figures in one line.

    python benchmarks/space_variants.py two-stage [--epochs 20] [--full-docs] [--center-words] \
        [--set space_temperature=0.3 --set space_pull=0.3 ...] [--seed 1]

The figures of docs/joint-space.md come from this script (one line per variant). Needs a finished
``make demo`` in `--demo-dir` (data, features, word vectors). Trains two-stage (from the demo's word
vectors) or joint (text + image documents, as the demo), then prints, on the demo's held-out split:

- ``i2w_all`` / ``seen`` / ``zs``: held-out image → word mAP by cosine in ``model.wv`` over all
  candidate tags / the seen ones / the zero-shot ones; ``w2i_seen``: seen tag → held-out images;
- ``knn_all``, ``knn_w2i_seen``: kNN (k=20) on raw features, the references of targets 1 and 4;
- ``ridge_zs``: ridge to the model's word space, cosine centred (the evaluation's baseline);
  ``ridge_unc_zs``: the same ranked by plain (uncentred) cosine; ``cent_zs``: the model ranked by
  centred cosine (what centring alone is worth);
- ``insample``: training images' own tags by their rows of ``model.wv``;
- ``i2i`` / ``i2i_raw``: a held-out image's 10 nearest training images share a tag (space / raw);
- ``nn_img`` / ``nn_word``: mean cosine of training images to their nearest image / word;
- ``d_wordsim`` / ``d_simlex`` / ``d_analogies`` (joint, ``--word-similarity``): the model's words minus the
  demo's text-only model's (target 7);
- ``an_hit`` / ``an_near``: cross-modal analogies hit@1 / x's own nearest image (``an_n`` questions);
  ``an_bag``: the same questions answered by each image's bag of its own words (the ceiling, target 6).
"""

import argparse
import json
import time

import numpy as np
from _common import settings
from gensim.models import Word2Vec

from gensim_im2vec.baselines import candidate_vectors, fill_scores
from gensim_im2vec.evaluate import (
    Im2VecScorer,
    KNNTagScorer,
    RidgeScorer,
    bag_of_words_analogies,
    compare_word_similarity,
    evaluate_scores,
    image_analogies,
    neighbour_tag_agreement,
    one_space_check,
    words_only,
)
from gensim_im2vec.pipeline import (
    DemoConfig,
    analogy_questions,
    evaluation_data,
    open_features,
    train_model,
    training_documents,
)
from gensim_im2vec.validation import l2_normalize


def centre_words(w2v: Word2Vec) -> None:
    """Subtract the mean unit word vector from every word (norms kept): 'all-but-the-top'."""
    V = w2v.wv.vectors
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    unit = V / norms
    w2v.wv.vectors = ((unit - unit.mean(axis=0)) * norms).astype(np.float32)
    w2v.wv.norms = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["two-stage", "joint"])
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--epochs", type=int, default=None, help="image epochs (default: the demo's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--full-docs", action="store_true", help="image documents with titles and descriptions")
    ap.add_argument("--center-words", action="store_true", help="centre the text word vectors first")
    ap.add_argument("--word-similarity", action="store_true", help="Δ word similarity vs the demo's text model")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an Im2Vec option")
    args = ap.parse_args()
    opts = settings(args.set)
    cfg = DemoConfig(out_dir=args.demo_dir, mode=args.mode, seed=args.seed, tags_only=not args.full_docs)
    if args.epochs:
        cfg.image_epochs = args.epochs
    cfg = cfg.with_options(**opts)
    feats = open_features(cfg)
    data = evaluation_data(cfg, feats)
    w2v = Word2Vec.load(f"{args.demo_dir}/models/words.w2v")
    if args.center_words:
        centre_words(w2v)
    t = time.perf_counter()
    m = train_model(cfg, feats, w2v)
    out = {"train_s": round(time.perf_counter() - t, 1)}
    rows = lambda keys: feats.gather_normalized([feats.row(k) for k in keys])  # noqa: E731
    X_test, X_train = rows(data.test_keys), rows(data.train_keys)
    cands, zs = data.candidates, data.zero_shot

    def ev(scorer):
        return evaluate_scores(scorer(X_test, cands), data.test_tags, cands, zero_shot=zs)

    cos = ev(Im2VecScorer(m))
    out.update(i2w_all=cos["all"]["map"], seen=cos["seen"]["map"], zs=cos["zero_shot"]["map"],
               w2i_seen=cos["seen"]["tag_map"])
    knn = ev(KNNTagScorer.fit(X_train, data.train_tags, k=20))
    out.update(knn_all=knn["all"]["map"], knn_w2i_seen=knn["seen"]["tag_map"])
    space = words_only(m, word_space=True)
    out["ridge_zs"] = ev(RidgeScorer.fit(X_train, data.train_tags, space))["zero_shot"]["map"]
    out["ridge_unc_zs"] = ev(RidgeScorer.fit(X_train, data.train_tags, space, center=False))["zero_shot"]["map"]
    mean = space.get_normed_vectors().mean(axis=0)

    def centred(X, candidates):
        mat, c = candidate_vectors(m.wv, candidates, exclude=m.is_image)
        return fill_scores(len(X), candidates, c, l2_normalize(l2_normalize(m.project(X)) - mean) @ l2_normalize(mat - mean).T)

    out["cent_zs"] = ev(centred)["zero_shot"]["map"]
    inside = [i for i, k in enumerate(data.train_keys) if k in m.wv.key_to_index and m.is_image(k)]
    keys = [data.train_keys[i] for i in inside]
    tags = [data.train_tags[i] for i in inside]
    pick = slice(None, None, max(1, len(keys) // 500))
    vecs = m.wv.vectors[[m.wv.key_to_index[k] for k in keys]]
    out["insample"] = evaluate_scores(Im2VecScorer(m).score_vectors(vecs[pick], cands), tags[pick], cands)["all"]["map"]
    out["i2i"] = neighbour_tag_agreement(m.project(X_test), data.test_tags, vecs, tags)
    out["i2i_raw"] = neighbour_tag_agreement(X_test, data.test_tags, X_train[inside], tags)
    one = one_space_check(m, keys[pick], tags[pick])
    out.update(nn_img=one["nearest_image"], nn_word=one["nearest_word"])
    quads = analogy_questions(cfg, m)
    an = image_analogies(m, quads)
    out.update(an_hit=an["hit@1"], an_near=an["nearest_image_hit@1"], an_n=an["n"])
    docs = training_documents(cfg, feats, tags_only=cfg.tags_only)[0]
    out["an_bag"] = bag_of_words_analogies(m, quads, docs)["hit@1"]
    if args.word_similarity:
        delta = compare_word_similarity(m, w2v)[2]
        out.update({f"d_{k}": v for k, v in delta.items() if k != "model"})
    label = " ".join([args.mode, *(f"--{k}" for k in ("full_docs", "center_words") if getattr(args, k)),
                      *(f"--set {s}" for s in args.set), f"--epochs {cfg.image_epochs}", f"--seed {args.seed}"])
    print(label, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
