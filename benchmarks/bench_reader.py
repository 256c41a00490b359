"""Throughput of the YFCC100M reader + normaliser on a synthetic metadata file.

The reader must never be the bottleneck of training: gensim's Word2Vec trains roughly
300k–1M words/s on 2 cores, so the reader should deliver well above that in tokens/s.

    python benchmarks/bench_reader.py                 # 1M lines, plain text
    python benchmarks/bench_reader.py --lines 200000 --bz2

Prints the file size, then for the bare line split (I/O + tab split, the floor) and for the full
reader (decoding, normalising tags, title and description), documents/s and tokens/s.
"""

from __future__ import annotations

import argparse
import bz2
import logging
import os
import random
import tempfile
import time

from gensim_im2vec.corpora import YFCC100MCorpus, open_text_source
from gensim_im2vec.text import Normalizer

NOISE = ["dsc_{:04d}", "img_2009_12_{:02d}", "{:08x}{:08x}", "geo:lat={}.{}", "{}%2c", "x28{}%29", "{}%27s"]


def make_file(path: str, n_lines: int, *, compress: bool, seed: int = 0) -> None:
    """Write `n_lines` of 25-column YFCC100M metadata with Zipf tags and realistic noise."""
    rng = random.Random(seed)
    vocab = [_pseudo_word(i) for i in range(50_000)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    cum = list(_cumsum(weights))

    def words(k):
        return rng.choices(vocab, cum_weights=cum, k=k)

    opener = bz2.open if compress else open
    with opener(path, "wt", encoding="utf-8") as f:
        for i in range(n_lines):
            tags = words(rng.randint(2, 12))
            if rng.random() < 0.5:
                tags.append(rng.choice(NOISE).format(rng.randrange(100), rng.randrange(100)))
            if rng.random() < 0.2:
                tags.append("new+york")
            title = "+".join(words(rng.randint(1, 5)))
            desc = "+".join(words(rng.randint(0, 12))) if rng.random() < 0.6 else ""
            if desc and rng.random() < 0.1:
                desc += "+%3Ca+href%3D%22http%3A%2F%2Fflickr.com%22%3Elink%3C%2Fa%3E"
            cols = [str(i), str(10**9 + i), f"{rng.getrandbits(128):032x}", "1@N00", "nick",
                    "2010-01-01 00:00:00.0", "1262304000", "Canon+EOS", title, desc, ",".join(tags), "",
                    "", "", "", "", "", "", "", "1", "2", "abc", "def", "jpg", "0"]  # fmt: skip
            f.write("\t".join(cols) + "\n")


def _pseudo_word(i: int) -> str:
    """A pronounceable letters-only word per integer (like real tags, unlike ``w123``)."""
    cons, vow = "bcdfghjklmnprstvwz", "aeiou"
    out = ""
    i += 90  # at least two syllables
    while i:
        i, r = divmod(i, len(cons) * len(vow))
        out += cons[r // len(vow)] + vow[r % len(vow)]
    return out


def _cumsum(xs):
    s = 0.0
    for x in xs:
        s += x
        yield s


def bench_split(path: str) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    n = toks = 0
    with open_text_source(path) as f:
        for raw in f:
            cols = raw.decode("utf-8").split("\t")
            n += 1
            toks += len(cols[10].split(","))
    return n, toks, time.perf_counter() - t0


def bench_reader(path: str, normalizer: Normalizer) -> tuple[int, int, float]:
    corpus = YFCC100MCorpus(path, key="hash", normalizer=normalizer)
    t0 = time.perf_counter()
    n = toks = 0
    for doc in corpus:
        n += 1
        toks += len(doc)
    return n, toks, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--bz2", action="store_true", help="compress the synthetic file with bzip2")
    ap.add_argument("--file", help="use this metadata file instead of generating one")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = os.path.join(tmp, "yfcc.tsv" + (".bz2" if args.bz2 else ""))
            t0 = time.perf_counter()
            make_file(path, args.lines, compress=args.bz2)
            print(f"generated {args.lines} lines in {time.perf_counter() - t0:.1f}s")
        print(f"file: {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
        n, toks, dt = bench_split(path)
        print(f"line split only : {n / dt:10.0f} docs/s  ({toks / dt:10.0f} tags/s)   {dt:.1f}s")
        for label, norm in [
            ("reader+normaliser", Normalizer(track_vocab=False)),
            ("  + vocab report", Normalizer(track_vocab=True)),
        ]:
            n, toks, dt = bench_reader(path, norm)
            print(f"{label:17s}: {n / dt:10.0f} docs/s  ({toks / dt:10.0f} tokens/s) {dt:.1f}s, "
                  f"{toks / max(n, 1):.1f} tokens/doc")  # fmt: skip
            if norm.track_vocab:
                print("   ", norm.stats.summary()[:300])


if __name__ == "__main__":
    main()
