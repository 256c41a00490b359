"""What `space_neighbours`' gathering of the images' words costs: NumPy pairs against a dict per image.

A ``train()`` with ``space_neighbours=k`` gathers, in its last epoch, each image's words (the other
words of the documents it is in), and fits the neighbours' bags from them as it ends. The package
keeps them as int64 (image, word) keys, de-duplicated as they grow
(``gensim_im2vec.neighbour_words``); before, a dict per image of its words' indices. This builds
the dict of dicts here, in a few lines, from the same documents (the reference, the code that was
replaced), and measures in the same run, for each:

* the gather, as the training's jobs run it: the documents a job (``--job-tokens`` tokens) at a
  time, the pairs added to the epoch's (the package's ``add_documents``, an ``ImageWords``);
* the bags made from it (images, ``ptr``, the distinct words, each image's word positions), as
  the fit begins (the package's ``bags_from_pairs``; the reference as the fit made them from the
  dicts);

the peak of memory allocated above what the documents and the vocabulary take (tracemalloc: NumPy
reports its arrays to it), per image, what the gathered state holds once the epoch ends, per image,
and the seconds of each (best of ``--repeats``, without tracemalloc). Last, the logged
``space_neighbour_seconds`` of a few small synthetic ``train()`` runs (the test fixtures' size), to
compare with another version of the package run the same way.

The documents: ``--images`` images, each in ``--documents`` documents of its own (a Zipf draw of
``--tags`` words among ``--words``), each document ``--repeat`` times in the epoch (joint mode's
corpus holds each image document about 12 times), shuffled.

    OMP_NUM_THREADS=1 python benchmarks/bench_neighbour_words.py              # ≈ 45-50 s on a loaded core

Measured 2026-12-07 (80,000 images, 14.3 distinct words each; docs/scale.md, the neighbours'
section): 172 bytes an image gathered against the dicts' 666 (× 0.26), the gather's peak 212
against 672, the bags' build's peak 290 against 977; the gather × 0.33-0.49 the time.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from gensim_im2vec.neighbour_words import ImageWords, add_documents, bags_from_pairs


def corpus(n_images: int, n_words: int, docs: int, tags: int, repeat: int, seed: int):
    rng = np.random.default_rng(seed)
    words = [f"w{j}" for j in range(n_words)]
    images = [f"img:{j}" for j in range(n_images)]
    index = {k: i for i, k in enumerate(words + images)}
    rows_of = np.concatenate([np.full(n_words, -1), np.arange(n_images)]).astype(np.int64)
    p = 1.0 / np.arange(1, n_words + 1)
    draws = rng.choice(n_words, size=(n_images * docs, tags), p=p / p.sum())
    documents = [[images[d // docs], *(words[w] for w in row)] for d, row in enumerate(draws.tolist())]
    order = rng.permutation(len(documents) * repeat) % len(documents)
    return [documents[j] for j in order.tolist()], index, rows_of


def jobs(documents, job_tokens: int):
    job, n = [], 0
    for doc in documents:
        job.append(doc)
        n += len(doc)
        if n >= job_tokens:
            yield job
            job, n = [], 0
    if job:
        yield job


def gather_pairs(documents, index, rows_of, job_tokens):
    gathered = ImageWords(len(index))
    for job in jobs(documents, job_tokens):
        add_documents(job, index, rows_of, gathered)
    return gathered


def fit_pairs(gathered):
    return bags_from_pairs(gathered.pairs.result(), gathered.base)


def gather_dicts(documents, index, rows_of, job_tokens):
    """The reference: a dict per image of its words' indices (as keys), each job's merged in."""
    words = {}
    for job in jobs(documents, job_tokens):
        mine = {}
        for doc in job:
            ids = [index.get(t, -1) for t in doc]
            images = [i for i in ids if i >= 0 and rows_of[i] >= 0]
            if images:
                tags = dict.fromkeys(i for i in ids if i >= 0 and rows_of[i] < 0)
                for i in images:
                    mine.setdefault(i, {}).update(tags)
        for i, ws in mine.items():
            words.setdefault(i, {}).update(ws)
    return words


def fit_dicts(words):
    images = sorted(i for i, ws in words.items() if ws)
    tag_ids = np.array(sorted({t for i in images for t in words[i]}), dtype=np.int64)
    ptr = np.zeros(len(images) + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(words[i]) for i in images), dtype=np.int64, count=len(images)), out=ptr[1:])
    flat = np.fromiter((t for i in images for t in sorted(words[i])), dtype=np.int64, count=int(ptr[-1]))
    return np.array(images), ptr, tag_ids, np.searchsorted(tag_ids, flat).astype(np.int32)


def measure(gather, fit, args, documents, index, rows_of, repeats: int):
    seconds = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        state = gather(documents, index, rows_of, args.job_tokens)
        t1 = time.perf_counter()
        bags = fit(state)
        t2 = time.perf_counter()
        seconds.append((t1 - t0, t2 - t1))
        del state, bags
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    state = gather(documents, index, rows_of, args.job_tokens)
    held, gather_peak = (v - base for v in tracemalloc.get_traced_memory())
    tracemalloc.reset_peak()
    bags = fit(state)
    fit_peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    g, f = min(s[0] for s in seconds), min(s[1] for s in seconds)
    return dict(held=held, gather_peak=gather_peak, fit_peak=fit_peak, gather=g, fit=f), bags


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=80_000)
    ap.add_argument("--words", type=int, default=5_000)
    ap.add_argument("--documents", type=int, default=2, help="documents of its own an image is in")
    ap.add_argument("--tags", type=int, default=8, help="words drawn a document")
    ap.add_argument("--repeat", type=int, default=4, help="times each document is in the epoch")
    ap.add_argument("--job-tokens", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trains", type=int, default=5, help="small synthetic trains timed at the end")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    documents, index, rows_of = corpus(args.images, args.words, args.documents, args.tags, args.repeat, args.seed)
    print(f"{args.images:,} images, {len(documents):,} documents ({args.documents} an image, each {args.repeat} "
          f"times), {sum(map(len, documents)):,} tokens, {args.words:,} words")
    new, new_bags = measure(gather_pairs, fit_pairs, args, documents, index, rows_of, args.repeats)
    old, old_bags = measure(gather_dicts, fit_dicts, args, documents, index, rows_of, args.repeats)
    for a, b in zip(new_bags, old_bags):
        np.testing.assert_array_equal(a, b)  # the same bags
    pairs = len(new_bags[3])
    print(f"{pairs:,} distinct (image, word) pairs, {pairs / args.images:.1f} an image; the same bags both ways")
    n = args.images
    print(f"{'':28s}{'dict per image':>16s}{'NumPy pairs':>14s}{'ratio':>8s}")
    for label, key, unit in (("gathered state, B/image", "held", n), ("gather's peak, B/image", "gather_peak", n),
                             ("bags' build peak, B/image", "fit_peak", n)):
        print(f"{label:28s}{old[key] / unit:16,.0f}{new[key] / unit:14,.0f}{new[key] / old[key]:8.3f}")
    for label, key in (("gather, s", "gather"), ("bags' build, s", "fit")):
        print(f"{label:28s}{old[key]:16.2f}{new[key]:14.2f}{new[key] / old[key]:8.3f}")
    trained = [train_seconds(seed) for seed in range(args.trains)]
    print(f"a train() with space_neighbours=5 on 300 synthetic images (2,000 documents, one worker), "
          f"{args.trains} trains: space_neighbour_seconds min {min(t[0] for t in trained) * 1e3:.1f} ms, the "
          f"workers' gather in it min {min(t[1] for t in trained) * 1e3:.1f} ms")
    print(f"(ran {time.perf_counter() - start:.0f}s)")
    return {"dict per image": old, "NumPy pairs": new}


def train_seconds(seed: int) -> tuple[float, float]:
    """`space_neighbour_seconds` and its gather (the workers' time) of a small synthetic train: the
    test fixtures' corpus four times, one worker."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=300, n_features=32, n_text_sentences=200, seed=0)
    m = Im2Vec(data.docs * 4, image_features=data.features, space_neighbours=5, workers=1, vector_size=16,
               min_count=1, sample=0, sg=1, epochs=3, seed=1 + seed)
    return m.space_neighbour_seconds, m._neighbour_seconds


if __name__ == "__main__":
    main()
