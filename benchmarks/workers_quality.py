"""What N workers change in the model: held-out image → word mAP with 1 and N workers, over seeds.

    python benchmarks/workers_quality.py [--limit 1000] [--epochs 50] [--seeds 30] [--variants 1 4 4s] \
        [--text-limit 3000 --text-epochs 1 --vector-size 32] [--baselines]

Builds a real subset of the demo's data (``--limit`` images, its own features and word vectors, in
``--out``; the steps are skipped when they are there already), then per seed trains Im2Vec as
``tests/test_workers.py`` does (D 32, jobs of 250 tokens, ``image_batch`` 64) with each variant and
scores the held-out images by cosine. A variant is a number of workers; ``4s`` is 4 workers made to
run one job at a time (a lock around each job): the same threads and job order as 4 workers, without
jobs in flight side by side. It prints each variant's mean, and its difference from the first
variant with the standard error of that difference over the seeds. ``--baselines`` first prints
the tag prior's, kNN's (k=20) and ridge's mAP on the same held-out images; ``--text-limit``,
``--text-epochs`` and ``--vector-size`` change the subset's word vectors (docs/kernel.md: with
the test's 3,000 documents of text the tag prior beats the space, with 30,000 it does not).

With N workers, up to N runs' steps train from copies of ``W`` that lack each other's changes
(:class:`gensim_im2vec.space.WorkerW`): if ``4s`` matches 1 worker, no update is lost and a gap
between 4 and 1 is the asynchronous path.
"""

import argparse
import contextlib
import dataclasses
import threading
import time

import numpy as np
from gensim.models import Word2Vec

from gensim_im2vec import space
from gensim_im2vec.baselines import KNNTagScorer, RidgeScorer, TagPriorScorer
from gensim_im2vec.evaluate import Im2VecScorer, evaluate_scores, words_only
from gensim_im2vec.pipeline import (
    DemoConfig,
    Steps,
    build_data,
    evaluation_data,
    extract_features,
    open_features,
    pretrain_words,
    train_model,
)


class _OneJobAtATime:
    """Patch WorkerW so that a job holds one lock from its copy of W to its fold (the ``Ns`` variants)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.begin, self.end = space.WorkerW.begin, space.WorkerW.end

    def __enter__(self):
        outer = self

        def begin(worker_w):
            outer.lock.acquire()
            return outer.begin(worker_w)

        def end(worker_w):
            try:
                outer.end(worker_w)
            finally:
                outer.lock.release()

        space.WorkerW.begin, space.WorkerW.end = begin, end
        return self

    def __exit__(self, *exc) -> None:
        space.WorkerW.begin, space.WorkerW.end = self.begin, self.end


def real_subset(out_dir, limit: int = 1000, epochs: int = 50, text_limit: int = 3000, text_epochs: int = 1,
                vector_size: int = 32):
    """(config, features, word vectors) of a real subset of the demo's data, built in `out_dir`
    (steps already there are skipped): ``limit`` images per set, ``text_limit`` documents per text
    source for ``text_epochs`` epochs of ``vector_size``-d word vectors, ``epochs`` image epochs.
    ``tests/test_workers.py`` trains on the default subset. Its word vectors are trained on one
    thread, so every build draws the same ones (with two, each build drew its own, and the
    comparison of workers moved with the draw). Im2Vec's options are the demo's (from 2026-12-03 to
    2026-12-07 with ``space_decoder=5``: 1 worker 0.2107 against 0.2076 without it, 12 seeds; since
    then without it and with ``space_neighbours=20``), but
    ``W`` is kept as trained (``space_common_directions=None``): what the workers change is the
    training; taking the tags' mean direction out afterwards costs this subset's held-out
    image → word 0.021 at 1 worker and 0.032 at 4 (30 seeds, docs/joint-space.md)."""
    im2vec = {**DemoConfig().im2vec, "space_common_directions": None}
    cfg = DemoConfig(out_dir=str(out_dir), limit=limit, text_limit=text_limit, vector_size=vector_size,
                     text_epochs=text_epochs, image_epochs=epochs, workers=1, device="cpu", im2vec=im2vec)
    steps = Steps(cfg.out_dir, lambda line: None)
    build_data(cfg, steps)
    extract_features(cfg, steps)
    words = Word2Vec.load(str(pretrain_words(cfg, steps)))
    return cfg, open_features(cfg), words


class HeldOutMap:
    """Held-out image → word mAP (cosine in ``model.wv``) of Im2Vec trained on a subset as the demo
    trains it, with jobs of `batch_words` tokens so that an epoch is many jobs."""

    def __init__(self, cfg, feats, words, batch_words: int = 250) -> None:
        self.cfg, self.feats, self.words, self.batch_words = cfg, feats, words, batch_words
        self.data = evaluation_data(cfg, feats)
        self.X = feats.gather_normalized([feats.row(k) for k in self.data.test_keys])

    def baselines(self, model) -> dict[str, float]:
        """The tag prior's, kNN's (k=20) and ridge's mAP (ridge into `model`'s word space)."""
        data, feats = self.data, self.feats
        X_train = feats.gather_normalized([feats.row(k) for k in data.train_keys])
        return {"tag prior": self.score(TagPriorScorer.fit(data.train_tags)),
                "kNN (k=20)": self.score(KNNTagScorer.fit(X_train, data.train_tags, k=20)),
                "ridge": self.score(RidgeScorer.fit(X_train, data.train_tags, words_only(model, word_space=True)))}

    def score(self, scorer) -> float:
        """`scorer`'s mAP over the held-out images and all candidates."""
        data = self.data
        return evaluate_scores(scorer(self.X, data.candidates), data.test_tags, data.candidates)["all"]["map"]

    def train(self, workers: int, seed: int, one_job_at_a_time: bool = False):
        """Im2Vec trained on the subset with `workers` workers and `seed`."""
        run = dataclasses.replace(self.cfg, workers=workers, seed=seed,
                                  im2vec={**self.cfg.im2vec, "batch_words": self.batch_words})
        with _OneJobAtATime() if one_job_at_a_time else contextlib.nullcontext():
            model = train_model(run, self.feats, self.words)
        if model.workers != workers or model.batch_words != self.batch_words:
            raise RuntimeError(f"trained with {model.workers} workers and jobs of {model.batch_words} tokens, "
                               f"not {workers} and {self.batch_words}")
        return model

    def __call__(self, workers: int, seed: int, one_job_at_a_time: bool = False) -> float:
        return self.score(Im2VecScorer(self.train(workers, seed, one_job_at_a_time)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=1000, help="images per built-in set (DemoConfig.limit)")
    ap.add_argument("--epochs", type=int, default=50, help="image epochs (the demo's: 50)")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--variants", nargs="+", default=["1", "4", "4s"])
    ap.add_argument("--batch-words", type=int, default=250)
    ap.add_argument("--text-limit", type=int, default=3000, help="documents per text source (the test's: 3000)")
    ap.add_argument("--text-epochs", type=int, default=1)
    ap.add_argument("--vector-size", type=int, default=32)
    ap.add_argument("--baselines", action="store_true", help="print the tag prior's, kNN's and ridge's mAP first")
    ap.add_argument("--out", default=None, help="where the subset is built (default: subset_LIMIT)")
    args = ap.parse_args()

    held_out_map = HeldOutMap(*real_subset(args.out or f"subset_{args.limit}", args.limit, args.epochs,
                                           args.text_limit, args.text_epochs, args.vector_size),
                              batch_words=args.batch_words)
    print(f"{args.limit} images, {len(held_out_map.data.test_keys)} held out, {args.epochs} epochs, jobs of "
          f"{args.batch_words} tokens; text: {args.text_limit} documents per source, {args.text_epochs} "
          f"epoch(s), D {args.vector_size}", flush=True)
    if args.baselines:
        for name, value in held_out_map.baselines(held_out_map.train(1, 1)).items():
            print(f"{name:>12}: mAP {value:.4f}")

    start = time.perf_counter()
    scores = {v: [] for v in args.variants}
    for seed in range(1, args.seeds + 1):
        for v in args.variants:  # interleaved, so the machine's load falls on every variant alike
            scores[v].append(held_out_map(int(v.rstrip("s")), seed, one_job_at_a_time=v.endswith("s")))
    first = np.array(scores[args.variants[0]])
    for v in args.variants:
        diff = np.array(scores[v]) - first
        print(f"{v:>4} workers: mAP {np.mean(scores[v]):.4f}   minus {args.variants[0]}: {diff.mean():+.4f} "
              f"(standard error {diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0:.4f})")
    print(f"{args.seeds} seeds in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
