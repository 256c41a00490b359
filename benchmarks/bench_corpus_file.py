"""corpus_file= speed (issue 13 item 3), measured side by side in one run.

    python benchmarks/bench_corpus_file.py [--words 2000000] [--images 20000] [--features 1280] [--repeats 2]

1. Text: effective words/s of gensim's Word2Vec(corpus_file=...) and Im2Vec(corpus_file=...) on the
   same LineSentence file, same parameters, ``--workers`` workers; ratio Im2Vec / Word2Vec
   (target >= 1.0 within noise). The text is Debian's WordNet dictionary (dict-wn) when installed,
   else gensim's bundled head500 corpus, repeated up to ``--words``.
2. Images: image tokens/s of Im2Vec(corpus_file=...) on a file of ``[tag, image, tag]`` documents
   (F=``--features``, D=200, window 1, as issue 13 measures), with 1 and 2 workers; ratio 2 / 1.
   The same documents through ``corpus_iterable=`` with 2 workers are printed for reference.

Runs are interleaved (best of ``--repeats``) so that slow spells of a shared machine hit all.
Only ``train()`` is timed; the vocabulary is built before.
"""

import argparse
import os
import tempfile
import time

import numpy as np
from _common import text_chunks, text_corpus_name
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec


def write_text(path, limit):
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for chunk in text_chunks(limit, repeat=True):
            out.write(" ".join(chunk) + "\n")
            n += len(chunk)
    return text_corpus_name(), n


def text_rate(cls, path, params):
    model = cls(**params)
    model.build_vocab(corpus_file=path)
    t = time.perf_counter()
    effective, _ = model.train(corpus_file=path, total_words=model.corpus_total_words, epochs=model.epochs)
    return effective / (time.perf_counter() - t)


def image_corpus(path, n_images, n_features, n_tags=50, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.random((n_images, n_features), dtype=np.float32)
    keys = [f"img:{i}" for i in range(n_images)]
    docs = [[f"tag{rng.integers(n_tags)}", key, f"tag{rng.integers(n_tags)}"] for key in keys]
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(" ".join(doc) + "\n")
    return (keys, features), docs


def image_rate(path, docs, features, workers, from_file=True):
    model = Im2Vec(image_features=features, vector_size=200, window=1, min_count=1, sample=0, sg=1,
                   epochs=1, workers=workers, seed=1)
    if from_file:
        model.build_vocab(corpus_file=path)
        t = time.perf_counter()
        model.train(corpus_file=path, total_words=model.corpus_total_words, epochs=1)
    else:
        model.build_vocab(docs)
        t = time.perf_counter()
        model.train(docs, total_examples=model.corpus_count, epochs=1)
    elapsed = time.perf_counter() - t
    # the epoch alone (gensim's total_train_time: the workers' time), and the whole train() call
    # (also the feature mean before and the image vectors written after, which do not scale)
    return model._image_occurrences / model.total_train_time, model._image_occurrences / elapsed


def best(name, rates, unit):
    print(f"  {name:28s} {max(rates):12,.0f} {unit} (best of {len(rates)}; all: "
          f"{', '.join(f'{r:,.0f}' for r in rates)})")
    return max(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=2_000_000)
    ap.add_argument("--workers", type=int, default=2, help="workers of the text runs")
    ap.add_argument("--sg", type=int, default=0)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--features", type=int, default=1280)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "text.txt")
        name, n = write_text(text_path, args.words)
        params = dict(vector_size=100, window=5, min_count=5, sg=args.sg, negative=5, epochs=3,
                      workers=args.workers, seed=1)
        print(f"1. text corpus_file: {name}, {n} words; {params}")
        runs = {"Word2Vec": [], "Im2Vec": []}
        for _ in range(args.repeats):
            for cls in (Word2Vec, Im2Vec):
                runs[cls.__name__].append(text_rate(cls, text_path, params))
        w2v = best("Word2Vec(corpus_file)", runs["Word2Vec"], "effective words/s")
        ours = best("Im2Vec(corpus_file)", runs["Im2Vec"], "effective words/s")
        pairs = [b / a for a, b in zip(runs["Word2Vec"], runs["Im2Vec"])]
        print(f"  ratio Im2Vec / Word2Vec = {ours / w2v:.2f} best to best; per interleaved pair "
              f"{min(pairs):.2f}–{max(pairs):.2f} (target >= 1.0)")

        img_path = os.path.join(tmp, "images.txt")
        features, docs = image_corpus(img_path, args.images, args.features)
        print(f"2. image corpus_file: {args.images} documents [tag, image, tag], F={args.features}, D=200, "
              f"window 1, one epoch")
        runs = {"corpus_file, 1 worker": (1, True), "corpus_file, 2 workers": (2, True),
                "corpus_iterable, 2 workers": (2, False)}
        rates = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, (workers, from_file) in runs.items():
                rates[name].append(image_rate(img_path, docs, features, workers, from_file))
        tops = {}
        for what, i in (("the epoch", 0), ("the whole train() call", 1)):
            print(f"  image tokens/s over {what}:")
            tops[what] = {name: best(name, [r[i] for r in rs], "image tokens/s") for name, rs in rates.items()}
        one, two = (rates["corpus_file, 1 worker"], rates["corpus_file, 2 workers"])
        pairs = [b[0] / a[0] for a, b in zip(one, two)]
        top = tops["the epoch"]
        print(f"  ratio 2 workers / 1 worker (epoch) = "
              f"{top['corpus_file, 2 workers'] / top['corpus_file, 1 worker']:.2f} best to best; per "
              f"interleaved pair {min(pairs):.2f}–{max(pairs):.2f} (cores: {os.cpu_count()}, load average "
              f"{os.getloadavg()[0]:.1f})")
        print(f"  ratio corpus_file / corpus_iterable, 2 workers (epoch) = "
              f"{top['corpus_file, 2 workers'] / top['corpus_iterable, 2 workers']:.2f}")


if __name__ == "__main__":
    main()
