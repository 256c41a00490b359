"""What several benchmark scripts read: the text corpus of the text benchmarks, this process's
memory and I/O counters, a file dropped from the page cache, synthetic image keys and a float16
store of them (the key benchmarks'), the ``--set`` /
``--demo-set NAME=VALUE`` options, and the demo's text model at another size or without some of
its tags. Imported by the scripts (their folder is on ``sys.path`` when run as
``python benchmarks/<script>.py``); not a benchmark itself."""

import ast
import gzip
import hashlib
import os
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

WORDNET = "/usr/share/dictd/wn.dict.dz"


def settings(pairs: list[str]) -> dict:
    """``NAME=VALUE`` options (``--set``, ``--demo-set``) as a dict, each value a Python literal
    (``space_readout=0.5``, ``image_negatives='"vocab"'``; the first ``=`` splits).

    >>> settings(["space_readout=0.5", "space_common_directions=None"])
    {'space_readout': 0.5, 'space_common_directions': None}
    """
    return {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in pairs)}


def tags_to_drop(tags, share: float) -> set:
    """A share of `tags` (rounded down), drawn with a fixed seed from their sorted list, so every
    run and every script drops the same ones.

    >>> sorted(tags_to_drop(["sea", "dog", "cat", "sky"], 0.5)) == sorted(tags_to_drop(["sky", "cat", "dog", "sea"], 0.5))
    True
    >>> len(tags_to_drop(["sea", "dog", "cat", "sky"], 0.5)), tags_to_drop(["sea"], 0.0), len(tags_to_drop(range(100), 0.29))
    (2, set(), 29)
    """
    share = tag_share(share)
    ordered = sorted(set(tags))
    return set(random.Random(0).sample(ordered, int(share * len(ordered) + 1e-9)))


def tag_share(value) -> float:
    """``--text-without-tags``'s value: a share in [0, 1) (argparse's `type`: a bad one is a usage error)."""
    share = float(value)
    if not 0.0 <= share < 1.0:
        raise ValueError(f"the share of tags to take out of the text must be in [0, 1), got {value!r}.")
    return share


def demo_tags_dropped(demo_dir: str, share: float) -> set:
    """The demo's training tags that :func:`demo_text_words` takes out of the text at `share`."""
    from gensim_im2vec.pipeline import DemoConfig, open_features, training_documents

    if not share:
        return set()
    cfg = DemoConfig(out_dir=demo_dir)
    docs, _ = training_documents(cfg, open_features(cfg), tags_only=True)
    return tags_to_drop((w for doc in docs for w in doc[1:]), share)


def demo_text_words(demo_dir: str, vector_size: int | None = None, without_tags: float = 0.0,
                    dropped: set | None = None):
    """The demo's text model (dictionary text, skip-gram, seed 1): its own ``words.w2v`` at the
    demo's size; at another `vector_size`, or with a share `without_tags` of the demo's training
    tags taken out of the text (every occurrence, so the model has no vector for them: a collection
    whose tags the text mostly never saw, the Flickr-against-Wikipedia case;
    :func:`demo_tags_dropped`), trained once into
    ``<demo_dir>/models/words-<size>d[-without<share>-<digest of the tags>].w2v`` and loaded from
    there after (another demo's tags, another file). `dropped`: those tags, when the caller has
    them already (:func:`demo_tags_dropped` reads the demo's documents)."""
    from gensim.models import Word2Vec

    from gensim_im2vec.pipeline import DemoConfig

    size = vector_size or DemoConfig.vector_size
    if size == DemoConfig.vector_size and not without_tags:
        return Word2Vec.load(str(Path(demo_dir) / "models" / "words.w2v"))
    return _cached_text_model(demo_dir, Word2Vec, "words", ".w2v", size, without_tags, dropped)


def demo_text_fasttext(demo_dir: str, without_tags: float = 0.0):
    """gensim's FastText on the demo's text, as :func:`demo_text_words` trains Word2Vec (the same
    settings, the same share of the demo's tags taken out; character n-grams 3–6, 2M buckets, gensim's
    defaults), trained once into ``<demo_dir>/models/fasttext-<size>d[-without<share>-<digest>].ft``."""
    from gensim.models.fasttext import FastText

    from gensim_im2vec.pipeline import DemoConfig

    return _cached_text_model(demo_dir, FastText, "fasttext", ".ft", DemoConfig.vector_size, without_tags, None)


def _cached_text_model(demo_dir: str, model_class, stem: str, ext: str, size: int, without_tags: float,
                       dropped: set | None):
    """`model_class` (Word2Vec or FastText) trained as the demo trains its text model
    (:func:`gensim_im2vec.pipeline.text_word2vec`) on the demo's text without the tags
    :func:`demo_tags_dropped` takes out at `without_tags` (or `dropped`), once, into
    ``<demo_dir>/models/<stem>-<size>d[-without<share>-<digest of the tags>]<ext>``; loaded from there."""
    from gensim_im2vec.fileio import atomic_save
    from gensim_im2vec.pipeline import DemoConfig, text_sentences, text_word2vec

    drop = dropped if dropped is not None else demo_tags_dropped(demo_dir, without_tags)
    digest = hashlib.sha1(" ".join(sorted(drop)).encode()).hexdigest()[:8]
    path = Path(demo_dir) / "models" / (f"{stem}-{size}d" + (f"-without{without_tags:g}-{digest}" if drop else "") + ext)
    if not path.exists():
        t = time.perf_counter()
        cfg = DemoConfig(out_dir=demo_dir, vector_size=size, seed=1)
        model = text_word2vec(cfg, [[w for w in s if w not in drop] for s in text_sentences(cfg)], model_class)
        atomic_save(model, path)
        print(f"trained the text's {model_class.__name__} ({size}-d, {len(drop)} tags taken out of its text) into "
              f"{path} in {time.perf_counter() - t:.0f}s")
    return model_class.load(str(path))


def text_corpus_name() -> str:
    """Debian's WordNet dictionary text (package dict-wn) when installed, else gensim's head500."""
    # (imported here: the key benchmarks measure memory with no gensim imported)
    from gensim.test.utils import datapath

    return WORDNET if os.path.exists(WORDNET) else datapath("head500.noblanks.cor")


def text_chunks(limit: int, repeat: bool = False) -> Iterator[list[str]]:
    """Lower-cased ``[a-z]+`` tokens of :func:`text_corpus_name`, in sentences of at most 1,000
    tokens (shorter than 3 skipped), until `limit` tokens; with `repeat`, the text again from the
    start until the limit is reached."""
    token = re.compile(r"[a-z]+")
    name = text_corpus_name()

    def lines():
        if name == WORDNET:
            return gzip.open(name, "rt", encoding="utf-8", errors="replace")
        return open(name, encoding="utf-8")

    n = 0
    while n < limit:
        before = n
        with lines() as f:
            for line in f:
                tokens = token.findall(line.lower())
                for lo in range(0, len(tokens), 1000):
                    chunk = tokens[lo:lo + 1000]
                    if len(chunk) > 2:
                        yield chunk
                        n += len(chunk)
                if n >= limit:
                    return
        if not repeat or n == before:
            return


def proc_status(io: bool = False) -> dict:
    """This process's RssAnon, RssFile, VmHWM and VmRSS in bytes (``/proc/self/status``), and with
    `io` the bytes it really read from disk (``read_bytes`` of ``/proc/self/io``)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "VmHWM", "VmRSS"):
                out[k] = int(v.split()[0]) * 1024
    if io:
        with open("/proc/self/io") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "read_bytes":
                    out["read_bytes"] = int(v)
    return out


def io_bytes(field: str) -> int:
    """A counter of this process's ``/proc/self/io``: ``wchar`` (bytes passed to write()),
    ``read_bytes`` (bytes really read from disk), ..."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def evict(path: str) -> None:
    """Drop a file from the page cache (this file only, no root needed), so that reads of it are
    measured cold: its dirty pages written first (DONTNEED keeps them), then
    ``posix_fadvise(POSIX_FADV_DONTNEED)``. Pages a process maps stay: unmap them first
    (``gensim_im2vec.image_features.release``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def module_at(ref: str, path: str, directory: str) -> str | None:
    """The package file `path` (``gensim_im2vec/split.py``) as it was at commit `ref`, written to
    `directory` as ``old_<name>``: what a benchmark measures the code before a change by. None when
    this checkout lacks the commit (a shallow clone)."""
    import subprocess

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(["git", "-C", repo, "show", f"{ref}:{path}"], capture_output=True)
    if out.returncode:
        return None
    written = os.path.join(directory, "old_" + os.path.basename(path))
    with open(written, "wb") as f:
        f.write(out.stdout)
    return written


def make_keys(n: int, seed: int) -> list[str]:
    """`n` unique keys like ``img:photos/00012345_3fa9c1``, fresh strings (as parsed from a store's
    keys.txt: no hash cached)."""
    import numpy as np

    tails = np.random.default_rng(seed).integers(0, 1 << 24, size=n).tolist()
    return "\n".join(f"img:photos/{i:08d}_{t:06x}" for i, t in enumerate(tails)).split("\n")


def fresh(strings: list[str]) -> list[str]:
    """Equal strings, new objects (their hashes computed again, as a corpus reader's tokens)."""
    return "\n".join(strings).split("\n")


def key_store(directory: str, n: int, dim: int, seed: int) -> str:
    """``DIRECTORY/store{n}``: a float16 FeatureStore of :func:`make_keys`'s `n` keys and random
    `dim`-d features, written once (kept for the next run)."""
    import numpy as np

    from gensim_im2vec.store import FeatureStore

    path = os.path.join(directory, f"store{n}")
    if not os.path.exists(os.path.join(path, "metadata.json")):
        keys, rng = make_keys(n, seed), np.random.default_rng(seed)
        with FeatureStore.create(path, dim=dim, dtype="float16", mode="overwrite") as w:
            for lo in range(0, n, 100_000):
                w.write(keys[lo:lo + 100_000], rng.random((min(100_000, n - lo), dim), dtype=np.float32) + 0.1)
    return path
