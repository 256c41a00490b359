"""Text-only training speed: Im2Vec's kernel vs gensim's Word2Vec, same corpus, same parameters, one run.

    python benchmarks/bench_text.py [--words 2000000] [--workers 2] [--sg 0] [--repeats 2]

Prints effective words/s of each (runs interleaved, best of ``--repeats``) and the ratio
Im2Vec / Word2Vec (target >= 1.0), best to best and per interleaved pair. The corpus is
Debian's WordNet dictionary text (dict-wn) when installed, else gensim's bundled head500 corpus.
"""

import argparse
import time

from _common import text_chunks, text_corpus_name
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec


def load_corpus(limit):
    sentences = list(text_chunks(limit))
    return text_corpus_name(), sentences, sum(map(len, sentences))


def effective_rate(cls, sentences, params):
    model = cls(**params)
    model.build_vocab(sentences)
    t = time.perf_counter()
    effective, _ = model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    return effective / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=2_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sg", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    name, sentences, n = load_corpus(args.words)
    params = dict(vector_size=100, window=5, min_count=5, sg=args.sg, negative=5, epochs=3,
                  workers=args.workers, seed=1)
    print(f"corpus: {name}, {n} words; {params}")
    runs = {"Word2Vec": [], "Im2Vec": []}
    for _ in range(args.repeats):  # interleaved, so slow spells of a shared machine hit both
        for cls in (Word2Vec, Im2Vec):
            runs[cls.__name__].append(effective_rate(cls, sentences, params))
    for name_, rates in runs.items():
        print(f"{name_:9s} {max(rates):12,.0f} effective words/s (best of {len(rates)}; all: "
              f"{', '.join(f'{r:,.0f}' for r in rates)})")
    pairs = [b / a for a, b in zip(runs["Word2Vec"], runs["Im2Vec"])]
    print(f"ratio Im2Vec / Word2Vec = {max(runs['Im2Vec']) / max(runs['Word2Vec']):.2f} best to best; "
          f"per interleaved pair {min(pairs):.2f}–{max(pairs):.2f} (target >= 1.0)")


if __name__ == "__main__":
    main()
