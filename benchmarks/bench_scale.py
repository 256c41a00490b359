"""Memory and time of the whole life cycle at scale: store → build_vocab → train → save → load → ANN.

Builds (once; reused by later runs with the same ``--images --dim --seed``) a FeatureStore of
``--images`` synthetic image feature rows (``--dim`` fp16, e.g. CNN features after PCA to 256-d)
through :class:`gensim_im2vec.store.FeatureStoreWriter`, and streams a corpus of one document per
image: its key and ``--tags`` tags drawn Zipf-like from a ``--vocab``-word vocabulary (half from its
topic's words, half from the whole vocabulary), never a Python list of the documents. Then, in one
process: ``build_vocab``, one epoch of ``train``, ``save``; and in a fresh process:
``Im2Vec.load(mmap="r")``, a faiss IVF :class:`~gensim_im2vec.index.ModalityIndexer` and
``--queries`` ANN queries (half image keys, half words; recall@10 against the exact search on 100).

Per stage it prints wall time, the peak resident set (``VmHWM``, reset at the start of each stage
through ``/proc/self/clear_refs``) and the sampled peaks of its two parts: ``RssAnon`` (private
memory: what must fit) and ``RssFile`` (pages of memory-mapped files — the store, a loaded model
— which are clean page cache the kernel drops under pressure). After build_vocab, train and
load it prints what the large parts of the model hold (allocated and resident bytes, from
``/proc/self/smaps``). Everything goes to ``--dir`` (default /tmp/scale), the results also to
``DIR/results-N.json``.

``--vectors-file`` trains with ``Im2Vec(vectors_file=DIR/vectors.npy)``: ``wv.vectors`` memory-mapped
from that file (page cache, counted in ``RssFile``) instead of private memory; the results go to
``DIR/results-N-vectors-file.json``, so both runs can share one ``--dir`` (and its store). The file of
an earlier run is deleted first (it is this benchmark's own). Its save stage runs twice: first as
always (the vectors streamed from the file into the model's own ``.npy``, the reference, then
deleted), then with ``move_vectors_file=True`` (the file becomes the model's ``.npy``), and prints
the ratio of their times and the bytes each wrote (``wchar`` of /proc/self/io).

    python benchmarks/bench_scale.py --images 1000000          # ≈ 10 min on 2 cores
    python benchmarks/bench_scale.py --images 1000000 --dir /tmp/scale-vf --vectors-file   # docs/scale.md §5.4
    python -u benchmarks/bench_scale.py > /tmp/scale/log 2>&1 &  # 10M images (the issue's target)
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

import numpy as np
from _common import evict, io_bytes, proc_status

GiB = 1024**3
MiB = 1024**2
_CHUNK = 65536


# ----------------------------------------------------------------------------- measuring


class Stages:
    """Wall time and peak memory per stage: VmHWM (reset per stage) and sampled RssAnon/RssFile."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.rows: list[dict] = []
        self._cur: dict | None = None
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            time.sleep(self.interval)

    def _sample(self) -> None:
        s = proc_status()
        with self._lock:
            if self._cur is not None:
                for k in ("RssAnon", "RssFile"):
                    self._cur["peak_" + k] = max(self._cur["peak_" + k], s[k])

    def start(self, name: str) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
        except OSError:
            pass
        s = proc_status()
        with self._lock:
            self._cur = {"stage": name, "t0": time.perf_counter(), "start_rss": s["VmRSS"],
                         "peak_RssAnon": s["RssAnon"], "peak_RssFile": s["RssFile"]}
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)

    def stop(self, **extra) -> dict:
        self._sample()
        s = proc_status()
        with self._lock:
            row, self._cur = self._cur, None
        row["seconds"] = time.perf_counter() - row.pop("t0")
        row["peak_rss"] = s["VmHWM"]
        row["end_rss"] = s["VmRSS"]
        row["end_RssAnon"], row["end_RssFile"] = s["RssAnon"], s["RssFile"]
        row["load_avg"] = round(os.getloadavg()[0], 1)  # the machine is shared: how busy it was
        row.update(extra)
        self.rows.append(row)
        print(f"[{time.strftime('%H:%M:%S')}] {row['stage']}: {row['seconds']:.1f}s, peak RSS "
              f"{row['peak_rss'] / GiB:.2f} GiB (anon {row['peak_RssAnon'] / GiB:.2f}, file "
              f"{row['peak_RssFile'] / GiB:.2f}), end {row['end_rss'] / GiB:.2f} GiB, load {row['load_avg']}"
              + "".join(f", {k} {v}" for k, v in extra.items()), flush=True)
        return row


def _regions() -> list[tuple[int, int, int]]:
    """(start, end, Rss bytes) of every mapping of this process."""
    out, cur = [], None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                a, b = head.split("-")
                cur = [int(a, 16), int(b, 16), 0]
                out.append(cur)
            elif head == "Rss:" and cur is not None:
                cur[2] = int(line.split()[1]) * 1024
    return [tuple(r) for r in out]


def _resident(arr, regions) -> int | None:
    """Resident bytes of the mapping that holds a large numpy array (None for a small one)."""
    if not isinstance(arr, np.ndarray) or arr.nbytes < 16 * MiB:
        return None
    lo = arr.__array_interface__["data"][0]
    hi = lo + arr.nbytes
    rss = [r for a, b, r in regions if a < hi and b > lo]  # a mapping may show as several regions
    return min(sum(rss), arr.nbytes) if rss else None


def _pyobj_bytes(d, sample: int = 2000, owner=None) -> int:
    """Approximate bytes of a dict/list of str (and of its int values): table + keys + values; key
    strings that are `owner`'s (a list of the same str objects) are not counted again. A store's
    KeyIndex (its key_to_index since 2026-12-07): its arrays (``nbytes``) + its key strings; a model's
    VocabKeyIndex (its wv.key_to_index since 2026-12-08): its words' dict + its images' KeyIndex."""
    from gensim_im2vec.store import KeyIndex, VocabKeyIndex

    if isinstance(d, VocabKeyIndex):
        return _pyobj_bytes(d.words, sample, owner) + _pyobj_bytes(d.images, sample, owner)
    n = len(d)
    table = d.nbytes if isinstance(d, KeyIndex) else sys.getsizeof(d)
    if not n:
        return table
    keys = list(itertools.islice(d, max(n - sample, 0), None)) if isinstance(d, Mapping) else d[-sample:]
    sampled = len(keys)
    if owner is not None:
        k2i = owner[1]
        keys = [k for k in keys if not (k in k2i and owner[0][k2i[k]] is k)]
    per_key = sum(sys.getsizeof(k) for k in keys) / sampled
    per_val = 28 if isinstance(d, dict) else 0  # an int object per entry
    return int(table + n * (per_key + per_val))


def breakdown(model, store=None) -> dict:
    """What the big parts of a model (and its store) hold: allocated / resident bytes."""
    regions = _regions()
    wv = model.wv
    parts = {
        "wv.vectors": wv.vectors,
        "syn1neg": getattr(model, "syn1neg", None),
        "wv count + sample_int": None,
        "cum tables (gensim + Im2Vec)": None,
        "_vocab_image_rows": getattr(model, "_vocab_image_rows", None),
    }
    out = {}
    for name, arr in parts.items():
        if arr is not None:
            out[name] = {"bytes": int(arr.nbytes), "resident": _resident(arr, regions)}
    out["wv count + sample_int"] = {"bytes": int(sum(v.nbytes for v in wv.expandos.values()))}
    cum = [getattr(model, a, None) for a in ("cum_table", "_neg_word_cum", "_neg_word_idx", "_neg_tag_cum",
                                              "_neg_tag_idx")]
    out["cum tables (gensim + Im2Vec)"] = {"bytes": int(sum(c.nbytes for c in cum if c is not None))}
    feats = model.features
    owner = (feats.keys, feats.key_to_index) if feats is not None else None
    out["wv.key_to_index (dict or words' dict + images' KeyIndex)"] = {"bytes": _pyobj_bytes(wv.key_to_index, owner=owner)}
    out["wv.index_to_key (list, keys shared)"] = {"bytes": int(sys.getsizeof(wv.index_to_key))}
    if feats is not None:
        out["features (memory-mapped store rows)"] = {"bytes": int(feats.vectors.nbytes),
                                                       "resident": _resident(feats.vectors, regions)}
        if store is None:
            store = model.feature_store
        k2i = feats.key_to_index
        shared = store is not None and k2i is getattr(store, "_key_to_index", None)
        out["feature keys index + key strings" + (" (the store's, shared)" if shared else "")] = {
            "bytes": _pyobj_bytes(k2i)}
        out["feature keys list"] = {"bytes": int(sys.getsizeof(feats.keys))}
    for name, v in out.items():
        res = v.get("resident")
        print(f"    {name:45s} {v['bytes'] / MiB:10.1f} MiB" + (f"  (resident {res / MiB:.1f} MiB)" if res is not None
                                                                else ""), flush=True)
    return out


# ----------------------------------------------------------------------------- data


def _topics(seed: int, chunk: int, n: int, n_topics: int) -> np.ndarray:
    return np.random.default_rng([seed, 1, chunk]).integers(0, n_topics, n)


def image_key(i: int) -> str:
    return f"img:{i:09d}"


def build_store(path: str, args) -> None:
    """The store: row i = topic prototype + noise, fp16, keys img:000000000 ..."""
    from gensim_im2vec.store import FeatureStore

    rng = np.random.default_rng([args.seed, 0])
    protos = rng.normal(size=(args.topics, args.dim)).astype(np.float32)
    meta = {"arch": "synthetic", "weights": f"bench_scale-seed{args.seed}", "layer": "pca",
            "preprocessing": "none", "normalisation": "none"}
    with FeatureStore.create(path, dim=args.dim, dtype="float16", metadata=meta, mode="overwrite",
                             shard_size=_CHUNK) as w:
        for c, lo in enumerate(range(0, args.images, _CHUNK)):
            n = min(_CHUNK, args.images - lo)
            t = _topics(args.seed, c, n, args.topics)
            noise = np.random.default_rng([args.seed, 2, c]).standard_normal((n, args.dim), dtype=np.float32)
            w.write([image_key(i) for i in range(lo, lo + n)], protos[t] + 0.7 * noise)
            if c % 16 == 0:
                print(f"    store: {lo + n:,} rows", flush=True)


class Corpus:
    """One document per image, generated chunk by chunk (restartable; nothing kept)."""

    def __init__(self, args) -> None:
        self.args = args
        v = args.vocab
        self.words = np.array([f"w{j}" for j in range(v)], dtype=object)
        zipf = 1.0 / np.arange(1, v + 1)
        self.cum = np.cumsum(zipf / zipf.sum())
        per = 50  # each topic's own words: 50 of the vocabulary, Zipf-weighted within the topic
        tz = 1.0 / np.arange(1, per + 1)
        self.topic_cum = np.cumsum(tz / tz.sum())
        self.topic_words = np.random.default_rng([args.seed, 3]).integers(0, v, (args.topics, per))

    def __len__(self) -> int:
        return self.args.images

    def __iter__(self):
        a = self.args
        half = a.tags // 2
        for c, lo in enumerate(range(0, a.images, _CHUNK)):
            n = min(_CHUNK, a.images - lo)
            t = _topics(a.seed, c, n, a.topics)
            rng = np.random.default_rng([a.seed, 4, c])
            own = np.searchsorted(self.topic_cum, rng.random((n, half)))
            own = self.topic_words[t[:, None], np.minimum(own, self.topic_words.shape[1] - 1)]
            glob = np.minimum(np.searchsorted(self.cum, rng.random((n, a.tags - half))), a.vocab - 1)
            tags = self.words[np.concatenate([own, glob], axis=1)].tolist()
            for i, doc in enumerate(tags):
                doc.insert(0, image_key(lo + i))
                yield doc


# ----------------------------------------------------------------------------- stages


def run_build(args) -> list[dict]:
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.store import FeatureStore

    os.makedirs(args.dir, exist_ok=True)
    stages = Stages()
    store_path = os.path.join(args.dir, f"store-{args.images}x{args.dim}-s{args.seed}")
    fresh = True
    try:
        fresh = len(FeatureStore.open(store_path)) != args.images
    except (FileNotFoundError, ValueError):
        pass
    if fresh:
        stages.start("store (write)")
        build_store(store_path, args)
        stages.stop(rows=args.images, gib_on_disk=round(os.path.getsize(os.path.join(store_path, "features.npy"))
                                                          / GiB, 2))
    evict(os.path.join(store_path, "features.npy"))
    corpus = Corpus(args)

    stages.start("stream corpus (one pass)")
    n_tok = sum(len(d) for d in corpus)
    stages.stop(tokens=n_tok)

    vectors_file = None
    if args.vectors_file:
        vectors_file = os.path.join(args.dir, "vectors.npy")
        if os.path.exists(vectors_file):  # an earlier run's (this benchmark's own file)
            os.remove(vectors_file)
    stages.start("open store + build_vocab")
    store = FeatureStore.open(store_path)
    model = Im2Vec(image_features=store, vector_size=args.vector_size, window=args.window, sg=args.sg,
                   min_count=args.min_count, workers=args.workers, epochs=1, seed=args.seed,
                   vectors_file=vectors_file)
    model.build_vocab(corpus, progress_per=10**9)
    n_img = int(np.count_nonzero(model._vocab_image_rows >= 0))
    stages.stop(vocab=len(model.wv), images=n_img)
    bd_vocab = breakdown(model, store)

    stages.start("train (1 epoch)")
    t0 = time.perf_counter()
    model.train(corpus, total_examples=model.corpus_count, epochs=1, report_delay=60)
    secs = time.perf_counter() - t0
    stages.stop(images_per_s=round(args.images / secs), words_per_s=round((n_tok - args.images) / secs))
    bd_train = breakdown(model, store)
    if vectors_file:
        st = os.stat(vectors_file)
        print(f"    vectors file: {st.st_size / MiB:.1f} MiB, {st.st_blocks * 512 / MiB:.1f} MiB allocated on disk",
              flush=True)

    path = os.path.join(args.dir, "model", "m.model")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if vectors_file:  # the reference: the vectors copied from the file into the model's own .npy
        copy = os.path.join(args.dir, "model-copy", "m.model")
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        stages.start("save (vectors copied, the reference)")
        wchar = io_bytes("wchar")
        model.save(copy)
        copied = stages.stop(gib_written=round((io_bytes("wchar") - wchar) / GiB, 2))
        shutil.rmtree(os.path.dirname(copy))
    stages.start("save" + (" (move_vectors_file=True)" if vectors_file else ""))
    wchar = io_bytes("wchar")
    model.save(path, move_vectors_file=bool(vectors_file))
    moved = stages.stop(gib_written=round((io_bytes("wchar") - wchar) / GiB, 2))
    files = {os.path.basename(p): os.path.getsize(os.path.join(os.path.dirname(path), p))
             for p in os.listdir(os.path.dirname(path)) if p.startswith("m.model")}
    if vectors_file:
        print(f"    save with the vectors file moved / copied: {moved['seconds'] / copied['seconds']:.2f}x the "
              f"time, {moved['gib_written']:.2f} / {copied['gib_written']:.2f} GiB written", flush=True)
    print("    files: " + ", ".join(f"{k} {v / MiB:.1f} MiB" for k, v in sorted(files.items())), flush=True)
    stages._halt.set()
    return stages.rows, {"after build_vocab": bd_vocab, "after train": bd_train, "saved files": files}


def run_query(args) -> list[dict]:
    """In a fresh process: load the saved model memory-mapped, index it, query it."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.image_features import release
    from gensim_im2vec.index import ModalityIndexer, ann_most_similar

    path = os.path.join(args.dir, "model", "m.model")
    for p in os.listdir(os.path.dirname(path)):
        evict(os.path.join(os.path.dirname(path), p))
    stages = Stages()
    stages.start("load (mmap='r')")
    model = Im2Vec.load(path, mmap="r")
    stages.stop(vocab=len(model.wv))
    bd = breakdown(model)

    stages.start("ANN index (faiss IVF)")
    indexer = ModalityIndexer(model, backend="faiss", kind="ivf", nlist=args.nlist, nprobe=args.nprobe)
    stages.stop()

    rng = np.random.default_rng(args.seed)
    images = np.flatnonzero(model._vocab_image_rows >= 0)
    words = np.flatnonzero(model._vocab_image_rows < 0)
    half = args.queries // 2
    keys = [model.wv.index_to_key[i] for i in rng.choice(images, half, replace=False)]
    keys += [model.wv.index_to_key[i] for i in rng.choice(words[: min(len(words), 5000)], args.queries - half,
                                                          replace=False)]
    stages.start(f"{args.queries} ANN queries")
    lat, answers = [], []
    for k in keys:
        t0 = time.perf_counter()
        answers.append(ann_most_similar(model, k, topn=10, indexer=indexer))
        lat.append(time.perf_counter() - t0)
    stages.stop(median_ms=round(1000 * float(np.median(lat)), 2), p99_ms=round(1000 * float(np.quantile(lat, .99)), 2))

    stages.start("exact search (100 of the queries, recall@10)")
    pick = list(range(0, len(keys), max(1, len(keys) // 100)))[:100]
    hits, t_exact = [], []
    for i in pick:
        t0 = time.perf_counter()
        exact = {k for k, _ in model.wv.most_similar(keys[i], topn=10)}
        t_exact.append(time.perf_counter() - t0)
        release(model.wv.vectors)  # the instrument reads every vector: not the pipeline's memory
        hits.append(len(exact & {k for k, _ in answers[i]}) / 10)
    stages.stop(recall_at_10=round(float(np.mean(hits)), 3), exact_median_ms=round(1000 * float(np.median(t_exact)), 1))
    stages._halt.set()
    return stages.rows, {"after load": bd}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10_000_000, help="images (= documents = store rows)")
    ap.add_argument("--dim", type=int, default=256, help="feature dim (fp16), e.g. after PCA")
    ap.add_argument("--vocab", type=int, default=100_000, help="distinct tags")
    ap.add_argument("--tags", type=int, default=8, help="tags per image")
    ap.add_argument("--topics", type=int, default=1000, help="topics: feature prototypes with their own tags")
    ap.add_argument("--vector-size", type=int, default=100)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--sg", type=int, default=0)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--nlist", type=int, default=1024, help="faiss IVF cells")
    ap.add_argument("--nprobe", type=int, default=16, help="faiss IVF cells scanned per query")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default="/tmp/scale", help="store, model and results go here")
    ap.add_argument("--query-only", action="store_true", help="only load the saved model and query it")
    ap.add_argument("--vectors-file", action="store_true",
                    help="keep wv.vectors in DIR/vectors.npy, memory-mapped (Im2Vec(vectors_file=...)), instead of "
                         "private memory")
    args = ap.parse_args(argv)

    if args.query_only:  # the child process
        rows, parts = run_query(args)
        print("RESULT " + json.dumps({"rows": rows, "parts": parts}), flush=True)
        return
    print(f"bench_scale: {args.images:,} images x {args.dim} fp16, {args.tags} tags from {args.vocab:,} words, "
          f"vector_size {args.vector_size}, window {args.window}, sg {args.sg}, {args.workers} workers"
          + (", wv.vectors in DIR/vectors.npy" if args.vectors_file else ""), flush=True)
    rows, parts = run_build(args)
    gc.collect()
    proc = subprocess.run([sys.executable, "-u", __file__, "--query-only", *(argv if argv is not None else sys.argv[1:])],
                          stdout=subprocess.PIPE, text=True)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        else:
            print(line, flush=True)
    if proc.returncode or result is None:
        raise SystemExit(f"the query process failed (exit {proc.returncode})")
    rows += result["rows"]
    parts.update(result["parts"])
    print(f"\n{'stage':45s} {'seconds':>9s} {'peak RSS':>10s} {'anon':>8s} {'file':>8s} {'end anon':>9s} "
          f"{'end file':>9s}  (GiB)  load")
    for r in rows:
        print(f"{r['stage']:45s} {r['seconds']:9.1f} {r['peak_rss'] / GiB:10.2f} {r['peak_RssAnon'] / GiB:8.2f} "
              f"{r['peak_RssFile'] / GiB:8.2f} {r['end_RssAnon'] / GiB:9.2f} {r['end_RssFile'] / GiB:9.2f}  "
              f"{r['load_avg']:10.1f}")
    pipeline = [r for r in rows if not r["stage"].startswith("exact search")]  # not the instrument
    peak = max(r["peak_rss"] for r in pipeline)
    print(f"peak RSS over the pipeline's stages (the exact-search check left out): {peak / GiB:.2f} GiB; "
          f"private (anon) peak {max(r['peak_RssAnon'] for r in pipeline) / GiB:.2f} GiB")
    out = os.path.join(args.dir, f"results-{args.images}{'-vectors-file' if args.vectors_file else ''}.json")
    with open(out, "w") as f:
        json.dump({"args": vars(args), "rows": rows, "parts": parts, "peak_rss": peak}, f, indent=1)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
