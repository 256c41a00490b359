"""What a model's ``wv.key_to_index`` costs: :class:`~gensim_im2vec.store.VocabKeyIndex` against gensim's dict.

``Im2Vec`` puts each image in ``model.wv`` as a key after the words. ``wv.key_to_index`` was
gensim's dict of every key (≈ 57 B an image key); it is now a ``VocabKeyIndex``: a dict of the
words and a ``KeyIndex`` (the keys' digests sorted, the row of each) of the images' range of
``wv.index_to_key``. This builds (once, kept in ``--dir``) a float16 store of N images × 32 features
like ``img:photos/00012345_3fa9c1``, and a corpus of one document an image (its key and 2 of
20,000 tags) and N / 5 text documents of 10 tags. Each measurement runs in a fresh process, the
dict's (the reference: the model's ``key_to_index`` turned into a dict after ``build_vocab``) and
the index's interleaved ``--repeats`` times, the best of each, and prints:

* **held**: bytes an image key the mapping holds, built from ``wv.index_to_key`` (tracemalloc:
  NumPy reports its arrays to it; the key strings are the store's, counted in neither);
* **build**: seconds to build it from ``wv.index_to_key`` (the model's load does this);
* **one key**: ns a lookup ``k2i[key]`` of an image key, of a word, and ``key in k2i`` of a key it
  lacks (fresh strings, in random order): what ``wv[key]``, ``wv.get_index`` and ``key in wv`` do;
* **prepare_job**: ns a token for the kernel's lookup of a job's tokens (``im2vec_inner.prepare_job``,
  10,000-token jobs): of text documents, of image documents, and of text documents one token in ten
  of which is not in the vocabulary (a word under ``min_count``); the dict's is gensim's per-token
  ``get``, the index's the words' ``get`` and the tokens the words lack looked up in one call a job;
* **epoch**: seconds of one ``model.train`` epoch over the corpus (1 worker, D 16, ``sample`` 1e-3),
  the least of ``--epochs`` epochs in each process; and over the same corpus as a file
  (``corpus_file=``, whose reader checks each line's image tokens: ``missing_images="raise"``), and
  the same without that check (``missing_images="skip"``: the file has no unknown image), and
  with gensim's ``CythonVocab`` of every key built first, as gensim's file-mode epoch did before
  2026-12-08 (Im2Vec's reader never read it), for the ratio of an epoch without it to one with it;

and the index's figure over the dict's (× ratio) for each.

    OMP_NUM_THREADS=1 python benchmarks/bench_vocab_keys.py                         # 1M images, ≈ 6 min
    OMP_NUM_THREADS=1 python benchmarks/bench_vocab_keys.py --images 200000 --repeats 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np
from _common import fresh, key_store

QUERIES = 100_000
TAGS = 20_000
JOB_TOKENS = 10_000


def make_store(n: int, directory: str, seed: int) -> str:
    return key_store(directory, n, 32, seed)


def jobs_of(docs: list[list[str]]) -> list[list[list[str]]]:
    out, job, size = [], [], 0
    for d in docs:
        job.append(d)
        size += len(d)
        if size >= JOB_TOKENS:
            out.append(job)
            job, size = [], 0
    return out + ([job] if job else [])


def child(kind: str, store_path: str, seed: int, epochs: int = 1) -> dict:
    """One measurement of `kind` ("dict" or "index") in this (fresh) process."""
    from gensim_im2vec import Im2Vec, im2vec_inner
    from gensim_im2vec.store import FeatureStore, VocabKeyIndex

    store = FeatureStore.open(store_path)
    n = len(store)
    rng = np.random.default_rng(seed + 2)
    tags = rng.integers(0, TAGS, (n, 2)).tolist()
    text = rng.integers(0, TAGS, (n // 5, 10)).tolist()
    docs = [line.split() for line in "\n".join(  # fresh strings, as a corpus reader's
        [" ".join([k, *(f"t{j}" for j in row)]) for k, row in zip(store.keys, tags)]
        + [" ".join(f"t{j}" for j in row) for row in text]).split("\n")]
    del tags, text
    model = Im2Vec(image_features=store, vector_size=16, min_count=1, workers=1, seed=1, epochs=1)
    model.build_vocab(docs)
    wv = model.wv
    start, stop = model._image_range()
    assert stop - start == n and isinstance(wv.key_to_index, VocabKeyIndex)
    keys = wv.index_to_key

    def build():
        if kind == "dict":
            return {k: i for i, k in enumerate(keys)}
        return VocabKeyIndex.from_keys(keys, start, stop)

    words = keys[:start]
    wv.key_to_index = None
    gc.collect()
    t = time.perf_counter()
    k2i = build()
    build_s = time.perf_counter() - t
    del k2i
    gc.collect()
    tracemalloc.start()
    k2i = build()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()  # the words' part, the same in both: left out of the bytes an image key
    words_dict = dict(zip(words, range(start)))
    held_words, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del words_dict
    wv.key_to_index = k2i

    image_hits = fresh([keys[i] for i in rng.integers(start, stop, QUERIES).tolist()])
    word_hits = fresh([words[i] for i in rng.integers(0, len(words), QUERIES).tolist()])
    misses = [f"u{i}" for i in rng.integers(0, 2_000_000, QUERIES).tolist()]
    timings = {}
    for name, probe in (("image_ns", image_hits), ("word_ns", word_hits)):
        timings[name] = best_ns(lambda block: [k2i[k] for k in block], probe)
    timings["miss_ns"] = best_ns(lambda block: [k in k2i for k in block], misses)

    image_docs, text_docs = docs[:n], docs[n:]
    unknown_docs = [d[:9] + [f"u{j}"] for d, j in zip(text_docs, rng.integers(0, 2_000_000, len(text_docs)).tolist())]
    sample_int, rows = wv.expandos["sample_int"], model._vocab_image_rows
    for name, part in (("text_ns", text_docs), ("images_ns", image_docs), ("unknown_ns", unknown_docs)):
        jobs = jobs_of(fresh_docs(part))
        best = float("inf")
        for job in jobs:  # the least a token took in a job: what this shared machine's other loads add left out
            tokens = sum(map(len, job))
            t = time.perf_counter()
            im2vec_inner.prepare_job(job, k2i, sample_int, rows, True, 5, True, 1, max_images=model.image_batch)
            best = min(best, (time.perf_counter() - t) / tokens * 1e9)
        timings[name] = best

    corpus = fresh_docs(docs)
    del docs
    corpus_file = os.path.join(os.path.dirname(store_path), f"corpus{n}.txt")
    if not os.path.exists(corpus_file):
        with open(corpus_file + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(" ".join(d) + "\n" for d in corpus)
        os.replace(corpus_file + ".tmp", corpus_file)
    gc.collect()
    from gensim_im2vec.model import Im2Vec as _Im2Vec

    ranges = _Im2Vec._train_epoch_ranges

    def as_gensims_epoch(self, *args, **kwargs):  # the reference: gensim's epoch built its kernel's copy first
        from gensim.models.word2vec_corpusfile import CythonVocab

        CythonVocab(self.wv, hs=self.hs, fasttext=False)
        return ranges(self, *args, **kwargs)

    epoch_s = file_epoch_s = unchecked_s = vocab_copy_s = float("inf")
    for _ in range(epochs):
        t = time.perf_counter()
        model.train(corpus, total_examples=len(corpus), epochs=1)
        epoch_s = min(epoch_s, time.perf_counter() - t)
        t = time.perf_counter()
        model.train(corpus_file=corpus_file, total_examples=len(corpus), total_words=model.corpus_total_words,
                    epochs=1)
        file_epoch_s = min(file_epoch_s, time.perf_counter() - t)
        model.missing_images = "skip"  # the reader's check of the image tokens left out (the file has no unknown)
        t = time.perf_counter()
        model.train(corpus_file=corpus_file, total_examples=len(corpus), total_words=model.corpus_total_words,
                    epochs=1)
        unchecked_s = min(unchecked_s, time.perf_counter() - t)
        model.missing_images = "raise"
        _Im2Vec._train_epoch_ranges = as_gensims_epoch
        t = time.perf_counter()
        model.train(corpus_file=corpus_file, total_examples=len(corpus), total_words=model.corpus_total_words,
                    epochs=1)
        vocab_copy_s = min(vocab_copy_s, time.perf_counter() - t)
        _Im2Vec._train_epoch_ranges = ranges
    assert (type(wv.key_to_index) is dict) == (kind == "dict")
    return {"held_B": (held - held_words) / n, "build_s": build_s, **timings, "epoch_s": epoch_s,
            "file_epoch_s": file_epoch_s, "unchecked_s": unchecked_s,
            "vocab_copy_s": vocab_copy_s}


def best_ns(run, items: list, blocks: int = 50) -> float:
    """ns an item for `run` over `items`, the least over `blocks` blocks of them (the machine is shared)."""
    size = max(len(items) // blocks, 1)
    best = float("inf")
    for lo in range(0, len(items) - size + 1, size):
        block = items[lo:lo + size]
        t = time.perf_counter()
        run(block)
        best = min(best, (time.perf_counter() - t) / len(block) * 1e9)
    return best


def fresh_docs(docs: list[list[str]]) -> list[list[str]]:
    return [line.split() for line in "\n".join(" ".join(d) for d in docs).split("\n")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed in each process (the least counts)")
    ap.add_argument("--dir", default="/tmp/bench_vocab_keys", help="where the stores are written (kept)")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.seed, args.epochs)))
        return
    os.makedirs(args.dir, exist_ok=True)
    print(f"{'images':>10} {'figure':<40} {'dict':>10} {'index':>10} {'ratio':>7}")
    for n in args.images:
        path = make_store(n, args.dir, args.seed)
        runs: dict[str, list[dict]] = {"dict": [], "index": []}
        for _ in range(args.repeats):
            for kind in runs:  # interleaved, each in a fresh process
                out = subprocess.run([sys.executable, __file__, "--child", kind, path, "--seed", str(args.seed),
                                      "--epochs", str(args.epochs)], check=True, capture_output=True, text=True).stdout
                runs[kind].append(json.loads(out.strip().splitlines()[-1]))
        rows = [("held_B", "held, B an image key (tracemalloc)"), ("build_s", "build from index_to_key, s"),
                ("image_ns", "one image key, ns"), ("word_ns", "one word, ns"), ("miss_ns", "one key it lacks, ns"),
                ("text_ns", "prepare_job, text, ns a token"), ("images_ns", "prepare_job, images, ns a token"),
                ("unknown_ns", "prepare_job, text 10% unknown, ns a token"), ("epoch_s", "one epoch, s"),
                ("file_epoch_s", "one epoch of a corpus_file, s"),
                ("unchecked_s", "the same, the reader's check left out, s"),
                ("vocab_copy_s", "the same, gensim's CythonVocab built first, s")]
        for field, label in rows:
            d = min(r[field] for r in runs["dict"])
            k = min(r[field] for r in runs["index"])
            print(f"{n:>10,} {label:<40} {d:>10.4g} {k:>10.4g} {k / d:>6.2f}x", flush=True)
        for kind in runs:  # an epoch of Im2Vec's reader against gensim's epoch, which first copied the vocabulary
            now, before = (min(r[f] for r in runs[kind]) for f in ("file_epoch_s", "vocab_copy_s"))
            print(f"{n:>10,} {kind}: a corpus_file epoch without / with gensim's CythonVocab (as before "
                  f"2026-12-08): {now:.4g} / {before:.4g} s, {now / before:.2f}x", flush=True)


if __name__ == "__main__":
    main()
