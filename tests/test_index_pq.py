"""ModalityIndexer(kind="ivfpq"): faiss IVF over product-quantised codes, re-ranked by the exact
cosines of the model's own rows: recall against the exact search, exact similarities, save/load,
parameter checks, tiny sub-indexes and the `im2vec index` command."""

from __future__ import annotations

import os

import numpy as np
import pytest
from gensim.models import KeyedVectors
from test_index import _mixed_kv

from gensim_im2vec import index as _index
from gensim_im2vec.index import ModalityIndexer, ann_most_similar

pytestmark = pytest.mark.skipif(not _index._installed("faiss"), reason="needs faiss-cpu (kind='ivfpq' is faiss's)")

N_WORDS, N_IMAGES, DIM = 800, 4000, 32


def _clustered_kv(n_words=N_WORDS, n_images=N_IMAGES, dim=DIM, n_clusters=60, seed=0) -> KeyedVectors:
    """Words then images, clustered around shared centres, images shifted by a modality gap (wider
    than test_index's, with more noise)."""
    return _mixed_kv(n_words, n_images, dim, n_clusters, seed, gap_scale=1.5, noise=0.7)


@pytest.fixture(scope="module")
def kv():
    return _clustered_kv()


@pytest.fixture(scope="module")
def pq(kv):
    return ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=8, nprobe=16, rerank=10)


def _exact_keys(kv, key, restrict, topn):
    """The `topn` nearest words or images of `key` by cosine, `key` left out (gensim's exact search)."""
    sims = kv.most_similar(key, topn=None).astype(np.float64)
    sims[kv.get_index(key)] = -np.inf
    sims[[k.startswith("img:") != (restrict == "images") for k in kv.index_to_key]] = -np.inf
    return [kv.index_to_key[i] for i in np.argsort(-sims)[:topn]]


def _exact_cosines(kv, keys, vector):
    unit = vector / np.linalg.norm(vector)
    return np.array([kv[k] @ unit / np.linalg.norm(kv[k]) for k in keys])


def test_rerank_finds_the_exact_neighbours_and_pq_scores_alone_do_not(kv, pq):
    import faiss

    assert all(isinstance(p.index, faiss.IndexIVFPQ) for p in pq._parts.values())
    assert pq.params["pq_m"] == 8 and pq._parts["images"].index.pq.M == 8
    reranked = pq.recall(kv, queries=100)
    assert set(reranked) == {"words -> words", "words -> images", "images -> words", "images -> images"}
    assert min(reranked.values()) >= 0.9, reranked
    pq_only = pq.set_search(rerank=1).recall(kv, queries=100)
    pq.set_search(rerank=10)
    # 8 bytes for 32 dims: the PQ order alone misses many of the exact 10 nearest images
    assert pq_only["images -> images"] <= reranked["images -> images"] - 0.1, (pq_only, reranked)
    assert np.mean(list(pq_only.values())) < np.mean(list(reranked.values()))


def test_reranked_similarities_are_the_exact_cosines(kv, pq):
    rng = np.random.default_rng(1)
    for key in ("w3", "img:17", "img:3999"):
        hits = kv.most_similar(key, topn=10, indexer=pq)
        keys, sims = [k for k, _ in hits], np.array([s for _, s in hits])
        assert keys[0] == key
        np.testing.assert_allclose(sims, _exact_cosines(kv, keys, kv[key]), rtol=0, atol=1e-5)
        assert list(sims) == sorted(sims, reverse=True)
    vec = rng.normal(size=DIM)
    hits = pq.images.most_similar(vec, 10)
    assert all(k.startswith("img:") for k, _ in hits)
    np.testing.assert_allclose([s for _, s in hits], _exact_cosines(kv, [k for k, _ in hits], vec), atol=1e-5)
    # rerank=1: PQ scores, approximations of the cosines (what rerank > 1 replaces)
    approx = pq.set_search(rerank=1).images.most_similar(vec, 10)
    pq.set_search(rerank=10)
    err = np.abs(np.array([s for _, s in approx]) - _exact_cosines(kv, [k for k, _ in approx], vec))
    assert err.max() > 1e-3


def test_every_cell_and_every_candidate_is_the_exact_search():
    """nprobe = nlist and rerank × topn >= the sub-index's size: nothing is left to approximation."""
    kv = _clustered_kv(n_words=300, n_images=700, dim=16, seed=2)
    idx = ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=4, nprobe=10_000, rerank=100)
    rng = np.random.default_rng(3)
    for vec in [kv["w5"], kv["img:100"], *rng.normal(size=(5, 16))]:
        exact = kv.most_similar(positive=[vec], topn=10)  # a vector query leaves nothing out
        got = idx.most_similar(vec, 10)
        assert [k for k, _ in got] == [k for k, _ in exact]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in exact], atol=1e-5)
    for key in ("w5", "img:9"):
        for restrict in ("words", "images"):
            got = ann_most_similar(kv, key, topn=5, indexer=idx, restrict=restrict)
            assert [k for k, _ in got] == _exact_keys(kv, key, restrict, 5)


def test_save_load_round_trip_reranks_from_the_memory_mapped_model(tmp_path, kv, pq):
    path = str(tmp_path / "vectors.kv")
    kv.save(path, separately=["vectors"])  # an .npy of its own, as a large model's (gensim's sep_limit: 10 MB)
    pq.save(path + ".ann")
    loaded_kv = KeyedVectors.load(path, mmap="r")
    again = ModalityIndexer.load(path + ".ann", loaded_kv)
    assert again.params == pq.params and again.params["kind"] == "ivfpq" and again.params["rerank"] == 10
    rng = np.random.default_rng(4)
    for q in ("w0", "w400", "img:1", "img:2500"):
        assert loaded_kv.most_similar(q, topn=10, indexer=again) == kv.most_similar(q, topn=10, indexer=pq)
    vec = rng.normal(size=DIM)
    assert again.images.most_similar(vec, 10) == pq.images.most_similar(vec, 10)
    # the re-rank reads the memory-mapped rows; the images' rows (after the words) as a range, no row array
    rows = again._parts["images"].rows
    assert isinstance(rows.kv.vectors, np.memmap) and rows.rows is None and rows.start == N_WORDS
    # the part file holds codes, not vectors: under a quarter of a copy of the images' float32 rows
    assert os.path.getsize(path + ".ann.images.faiss") < N_IMAGES * DIM * 4 / 4
    # a knob given at load, instead of the saved one
    fewer = ModalityIndexer.load(path + ".ann", loaded_kv, rerank=1, nprobe=2)
    assert fewer.params["rerank"] == 1 and fewer._parts["images"].rerank == 1 and fewer._parts["words"].nprobe == 2
    assert fewer.images.most_similar(vec, 10) != again.images.most_similar(vec, 10)


def test_pq_m_and_rerank_are_checked_and_name_the_fix(kv):
    with pytest.raises(ValueError, match=r"pq_m: 7 does not divide the vectors' dimension 32 .*divisors: "
                                         r"1, 2, 4, 8, 16, 32 .*pq_m=None \(8\)"):
        ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=7)
    for bad in (0, -4, 2.5, True, "8"):
        with pytest.raises(ValueError, match="pq_m: expected a positive int"):
            ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=bad)
    for bad in (0, -1, 1.5, None, True):
        with pytest.raises(ValueError, match=r"rerank: expected an int >= 1 .*1: PQ scores only"):
            ModalityIndexer(kv, backend="faiss", kind="ivfpq", rerank=bad)
    idx = ModalityIndexer(_clustered_kv(n_words=50, n_images=300, seed=5), backend="faiss", kind="ivfpq")
    assert idx.params["pq_m"] == 8  # None: the smallest divisor >= dim / 4
    with pytest.raises(ValueError, match="rerank: expected an int >= 1"):
        idx.set_search(rerank=0)
    assert idx.params["rerank"] == 8
    with pytest.raises(ValueError, match="kind: expected 'hnsw', 'ivf' or 'ivfpq'"):
        ModalityIndexer(kv, backend="faiss", kind="pq")


def test_a_sub_index_too_small_for_a_codebook_keeps_exact_vectors():
    """Fewer than 256 vectors cannot train an 8-bit codebook (faiss refused with "Number of
    training points (100) should be at least as large as number of clusters (256)"): that
    sub-index is IVF-Flat, exact, and the large one stays IVF-PQ."""
    import faiss

    kv = _clustered_kv(n_words=100, n_images=600, dim=16, seed=6)
    idx = ModalityIndexer(kv, backend="faiss", kind="ivfpq", nprobe=10_000)
    assert type(idx._parts["words"].index) is faiss.IndexIVFFlat and idx._parts["words"].rows is None
    assert isinstance(idx._parts["images"].index, faiss.IndexIVFPQ)
    got = ann_most_similar(kv, "w1", topn=5, indexer=idx, restrict="words")
    assert [k for k, _ in got] == _exact_keys(kv, "w1", "words", 5)
    one = _clustered_kv(n_words=1, n_images=300, dim=16, seed=7)
    tiny = ModalityIndexer(one, backend="faiss", kind="ivfpq")
    assert [k for k, _ in tiny.words.most_similar(one["img:0"], 3)] == ["w0"]


def test_set_search_changes_nprobe_and_rerank_of_every_view(kv):
    idx = ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=8, nprobe=1, rerank=1)
    low = idx.recall(kv, queries=60)
    view = idx.images
    idx.set_search(nprobe=32, rerank=10)
    assert view.params["nprobe"] == 32 and view.params["rerank"] == 10
    assert {(p.nprobe, p.rerank) for p in idx._parts.values()} == {(32, 10)}
    high = idx.recall(kv, queries=60)
    assert high["words -> images"] > low["words -> images"] and high["images -> images"] > low["images -> images"]


def test_index_cli_builds_an_ivfpq_index(tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec import Im2Vec
    from gensim_im2vec.cli import main
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=400, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1, sample=0, epochs=2,
                   workers=1)
    path = str(tmp_path / "m.model")
    model.save(path)
    res = CliRunner().invoke(main, ["index", path, "--backend", "faiss", "--kind", "ivfpq", "--pq-m", "4",
                                    "--rerank", "6", "--check", "20"])
    assert res.exit_code == 0, res.output
    assert "recall@10 against the exact search (20 queries each): words -> words" in res.output
    loaded = Im2Vec.load(path, mmap="r")
    idx = ModalityIndexer.load(path + ".ann", loaded)
    assert (idx.params["kind"], idx.params["pq_m"], idx.params["rerank"]) == ("ivfpq", 4, 6)
    key = model.image_keys[0]
    hits = loaded.wv.most_similar(key, topn=5, indexer=idx.images)
    np.testing.assert_allclose([s for _, s in hits], _exact_cosines(model.wv, [k for k, _ in hits], model.wv[key]),
                               atol=1e-5)
    bad = CliRunner().invoke(main, ["index", path, "-o", str(tmp_path / "bad.ann"), "--backend", "faiss",
                                    "--kind", "ivfpq", "--pq-m", "5"])
    assert bad.exit_code != 0 and "--pq-m: 5 does not divide the vectors' dimension 16" in bad.output
    assert "leave --pq-m out" in " ".join(bad.output.split()) and "pq_m=None" not in bad.output
    assert not (tmp_path / "bad.ann").exists()
    helped = CliRunner().invoke(main, ["index", "--help"])
    assert "--pq-m" in helped.output and "--rerank" in helped.output and "ivfpq" in helped.output
    cells = CliRunner().invoke(main, ["index", path, "-o", str(tmp_path / "cells.ann"), "--backend", "faiss",
                                      "--kind", "ivfpq", "--pq-m", "4", "--nlist", "3"])
    assert cells.exit_code == 0, cells.output
    assert ModalityIndexer.load(str(tmp_path / "cells.ann"), loaded).params["nlist"] == 3


class _AdvisedMap(__import__("mmap").mmap):
    """A read-only map of a file that records the advice it is given (and takes it)."""

    def madvise(self, option, start=0, length=None):
        self.calls.append((option, start, length))
        return super().madvise(option, start, *(() if length is None else (length,)))


def _advised_matrix(tmp_path, n=3000, dim=24, offset=128):
    """An (n, dim) float32 matrix over an _AdvisedMap of a file, at `offset` bytes into it, as
    ``np.memmap`` holds one (its ``_mmap``)."""
    import mmap

    path = tmp_path / "rows.bin"
    data = np.random.default_rng(3).normal(size=(n, dim)).astype(np.float32)
    path.write_bytes(b"\0" * offset + data.tobytes())
    with open(path, "rb") as f:
        mm = _AdvisedMap(f.fileno(), 0, access=mmap.ACCESS_READ)
    mm.calls = []
    arr = np.ndarray((n, dim), dtype=np.float32, buffer=mm, offset=offset).view(np.memmap)
    arr._mmap = mm
    return arr, data, mm


def test_scattered_reads_advise_random_and_prefetch_every_rows_pages(tmp_path):
    """The re-rank's rows of a memory-mapped model: the map advised MADV_RANDOM while they are
    read (no read-around: docs/scale.md §6 measured 388 MB read for 104 pages), each row's pages
    MADV_WILLNEED first (their reads start together), and the default advice back afterwards."""
    import mmap

    arr, data, mm = _advised_matrix(tmp_path)
    rows = np.array([0, 1, 2, 170, 171, 1500, 2999], dtype=np.int64)  # neighbours share pages and runs
    with _index._scattered_reads(arr, rows):
        got = np.array(arr[rows])
    np.testing.assert_array_equal(got, data[rows])
    options = [c[0] for c in mm.calls]
    assert options[0] == mmap.MADV_RANDOM and options[-1] == mmap.MADV_NORMAL
    ranges = [(s, s + n) for o, s, n in mm.calls if o == mmap.MADV_WILLNEED]
    assert 1 < len(ranges) < len(rows)  # runs of pages, not a call per row
    for r in rows.tolist():  # every byte of every row lies in a prefetched range, page-aligned
        lo, hi = 128 + r * 96, 128 + (r + 1) * 96
        assert any(s <= lo and hi <= e for s, e in ranges), r
    assert all(s % mmap.PAGESIZE == 0 for s, _ in ranges)
    assert sum(e - s for s, e in ranges) <= len(ranges) * 2 * mmap.PAGESIZE  # only the rows' pages


def test_scattered_reads_leave_arrays_in_memory_and_plain_mode_alone(tmp_path, monkeypatch):
    arr, _, mm = _advised_matrix(tmp_path)
    with _index._scattered_reads(np.zeros((4, 2), dtype=np.float32), np.arange(2)):
        pass
    monkeypatch.setattr(_index, "_RERANK_READS", "plain")
    with _index._scattered_reads(arr, np.arange(5)):
        pass
    assert mm.calls == []


def test_memory_mapped_rerank_answers_the_same_with_each_read_mode(tmp_path, kv, pq, monkeypatch):
    """The advice changes how the rows are read, never what: the same neighbours and similarities
    from the memory-mapped model in every read mode, as from the model in memory."""
    path = str(tmp_path / "kv.kv")
    kv.save(path)
    mapped = KeyedVectors.load(path, mmap="r")
    index = ModalityIndexer(mapped, backend="faiss", kind="ivfpq", pq_m=8, nprobe=16, rerank=10)
    queries = [kv.index_to_key[i] for i in (3, 77, N_WORDS + 5, N_WORDS + 900)]
    answers = {}
    for mode in ("plain", "random", "prefetch"):
        monkeypatch.setattr(_index, "_RERANK_READS", mode)
        answers[mode] = [ann_most_similar(mapped, q, topn=10, indexer=index) for q in queries]
    assert answers["plain"] == answers["random"] == answers["prefetch"]
    assert [[k for k, _ in a] for a in answers["prefetch"]] == [
        [k for k, _ in ann_most_similar(kv, q, topn=10, indexer=index)] for q in queries]


def test_scattered_reads_prefetch_rows_in_any_order_and_skip_what_they_cannot_advise(tmp_path):
    """Rows in vocabulary order (the feature mean of <= 100k images), duplicates and rows outside
    the matrix: every row in it has its pages prefetched, the others are left to the read; a map
    whose rows are not contiguous (Fortran order) is not advised at all (one fault per element)."""
    import mmap

    arr, data, mm = _advised_matrix(tmp_path)
    rows = np.array([2999, 5, 1500, 5, 0, -1, 3000, 171], dtype=np.int64)
    with _index._scattered_reads(arr, rows):
        pass
    ranges = [(s, s + n) for o, s, n in mm.calls if o == mmap.MADV_WILLNEED]
    for r in (0, 5, 171, 1500, 2999):
        assert any(s <= 128 + r * 96 and 128 + (r + 1) * 96 <= e for s, e in ranges), r
    assert mm.calls[-1][0] == mmap.MADV_NORMAL
    mm.calls.clear()
    fortran = np.ndarray(arr.shape, dtype=np.float32, buffer=mm, offset=128, order="F").view(np.memmap)
    fortran._mmap = mm
    with _index._scattered_reads(fortran, np.arange(3)):
        pass
    assert mm.calls == []


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_a_given_nlist_too_large_for_a_sub_index_is_said_once_with_the_cells_used(caplog, capfd, kind):
    """nlist above n / 39 was lowered without a word (or with faiss's own stderr warning alone)."""
    import logging

    kv = _mixed_kv(n_words=20, n_images=300, dim=8)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.index"):
        idx = ModalityIndexer(kv, backend="faiss", kind=kind, nlist=50)
    assert {m: p.index.nlist for m, p in idx._parts.items()} == {"words": 1, "images": 7}
    said = [r.getMessage() for r in caplog.records if "nlist" in r.getMessage()]
    assert len(said) == 1, said
    assert "nlist 50" in said[0] and "words 1 cell (20 vectors), images 7 cells (300 vectors)" in said[0]
    assert ">= 39 vectors a cell" in said[0]
    assert "please provide at least 39 training points" not in capfd.readouterr().err  # (faiss's, for one cell)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.index"):
        ModalityIndexer(kv, backend="faiss", kind=kind, nlist=7, modalities=("images",))  # as given: nothing said
        ModalityIndexer(kv, backend="faiss", kind=kind)  # the default's cap is its rule: nothing said
    assert not [r for r in caplog.records if "nlist" in r.getMessage()]
