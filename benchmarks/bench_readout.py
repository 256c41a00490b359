"""What the zero-shot neighbour vote costs: the readout pass and zero-shot queries, with and without it.

    python benchmarks/bench_readout.py [--images 200000] [--features 256] [--size 200] [--queries 1000]

Builds a model on random features (``--images`` documents of one image and 5 of 500 tags; the
figures do not depend on what is learned), trains it one epoch, then times in the same run:

- ``fit_word_readout(docs, neighbours=0)`` (the reference: the readout alone) against
  ``neighbours=10`` (it also keeps one word-space target per image, merged as the pass streams),
  and against ``neighbours=10, max_neighbour_images=N/10`` (the cap that bounds it at scale);
- ``zero_shot_scores`` for ``--queries`` images against the whole vocabulary, without the vote
  (reference) and with it over all kept images: the exact search reads every kept image's vector.

It prints each time and its ratio to the reference; best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from gensim_im2vec import Im2Vec


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    keys = [f"img:{i}" for i in range(args.images)]
    feats = (keys, rng.standard_normal((args.images, args.features), dtype=np.float32))
    tags = rng.integers(0, 500, size=(args.images, 5))
    docs = [[k, *(f"tag{t}" for t in row)] for k, row in zip(keys, tags)]
    text = [[f"tag{t}" for t in rng.integers(0, 500, size=10)] for _ in range(20_000)]
    model = Im2Vec(text + docs, image_features=feats, vector_size=args.size, sg=1, min_count=1, epochs=1,
                   workers=2, sample=0, word_readout=None)
    queries = rng.standard_normal((args.queries, args.features), dtype=np.float32)
    print(f"{args.images:,} images x {args.features} features, vector_size {args.size}, "
          f"{args.queries} queries; best of {args.repeats}")

    ref = best(lambda: model.fit_word_readout(docs, neighbours=0), args.repeats)
    vote = best(lambda: model.fit_word_readout(docs, neighbours=10), args.repeats)
    cap = max(1, args.images // 10)
    capped = best(lambda: model.fit_word_readout(docs, neighbours=10, max_neighbour_images=cap), args.repeats)
    print(f"readout pass: neighbours=0 {ref:.2f}s ({args.images / ref:,.0f} docs/s) | neighbours=10 "
          f"{vote:.2f}s, ratio {vote / ref:.2f} | capped at {cap:,} images {capped:.2f}s, ratio {capped / ref:.2f}")

    model.fit_word_readout(docs, neighbours=0)
    q_ref = best(lambda: model.zero_shot_scores(queries), args.repeats)
    model.fit_word_readout(docs, neighbours=10)
    kept = model.word_readout["neighbour_images"]
    q_vote = best(lambda: model.zero_shot_scores(queries), args.repeats)
    print(f"zero_shot_scores over {len(model.word_space_keys)} words: without the vote "
          f"{1e3 * q_ref / args.queries:.2f} ms/query | with the vote over {kept:,} images "
          f"{1e3 * q_vote / args.queries:.2f} ms/query, ratio {q_vote / q_ref:.2f} "
          f"({1e9 * (q_vote - q_ref) / args.queries / kept:.2f} ns per query per kept image)")


if __name__ == "__main__":
    main()
