"""Review of the IVF-PQ index, the training path, the file stamps and merge_stores' skip reasons
(commits d87579e, c2fc012, 9003aef, 72264d6): defects found by it, each with a test that failed
before its fix."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_im2vec import index as _index
from gensim_im2vec.distributed import merge_stores
from gensim_im2vec.index import ModalityIndexer
from gensim_im2vec.store import FeatureStore

needs_faiss = pytest.mark.skipif(not _index._installed("faiss"), reason="needs faiss-cpu")


def _kv(n_words=100, n_images=1200, dim=16, seed=0) -> KeyedVectors:
    rng = np.random.default_rng(seed)
    kv = KeyedVectors(dim)
    kv.add_vectors([f"w{i}" for i in range(n_words)] + [f"img:{i}" for i in range(n_images)],
                   rng.normal(size=(n_words + n_images, dim)).astype(np.float32))
    return kv


def _exact(kv, key, vector):
    return float(kv[key] @ vector / np.linalg.norm(kv[key]) / np.linalg.norm(vector))


# ----------------------------------------------------------------------------- IVF-PQ re-rank


@needs_faiss
def test_an_ivfpq_index_answers_after_its_models_norms_were_dropped():
    """gensim's train() (and a vocabulary update) set ``wv.norms = None``; the re-rank read them and
    failed with "'NoneType' object is not subscriptable" when asked directly (gensim's own
    most_similar refills them first, the indexer protocol's most_similar did not)."""
    kv = _kv()
    pq = ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=4, rerank=8, modalities=("images",))
    kv.vectors[:] *= 1.5  # the model trained on: its rows moved, gensim dropped the norms
    kv.norms = None
    q = kv["img:3"]
    hits = pq.most_similar(q, 5)
    assert hits[0][0] == "img:3"
    for key, sim in hits:
        assert sim == pytest.approx(_exact(kv, key, q), abs=1e-5)


@needs_faiss
def test_an_ivfpq_index_refuses_a_model_whose_rows_hold_other_keys_now():
    """The re-rank reads the model's row of each candidate: after the model's vocabulary was rebuilt
    (another key at that row) it gave that key's cosine under the index's label, silently."""
    kv = _kv()
    pq = ModalityIndexer(kv, backend="faiss", kind="ivfpq", pq_m=4, rerank=8, modalities=("images",))
    q = kv["img:7"].copy()
    keys = list(kv.index_to_key)
    keys[100:] = keys[100:][::-1]  # the images' rows in another order (a rebuilt vocabulary)
    kv.index_to_key = keys
    kv.key_to_index = {k: i for i, k in enumerate(keys)}
    with pytest.raises(ValueError, match=r"vocabulary changed since it was built.*Rebuild the index"):
        pq.most_similar(q, 5)


@needs_faiss
def test_overlapping_ivfpq_builds_restore_faiss_s_blas_threshold():
    """faiss's ``distance_compute_blas_threshold`` is process-wide: two builds that overlapped (two
    threads) each restored what they found, so the one that began second left it at 20 for good."""
    import faiss

    before = faiss.cvar.distance_compute_blas_threshold
    a, b = _index._blas_distances(True), _index._blas_distances(True)
    a.__enter__()
    b.__enter__()
    assert faiss.cvar.distance_compute_blas_threshold == min(before, 20)
    a.__exit__(None, None, None)
    assert faiss.cvar.distance_compute_blas_threshold == min(before, 20)  # b still builds
    b.__exit__(None, None, None)
    assert faiss.cvar.distance_compute_blas_threshold == before

    kvs = [_kv(50, 600, 16, seed=s) for s in range(3)]
    threads = [threading.Thread(target=ModalityIndexer, args=(kv,),
                                kwargs=dict(backend="faiss", kind="ivfpq", pq_m=8, modalities=("images",)))
               for kv in kvs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert faiss.cvar.distance_compute_blas_threshold == before


@needs_faiss
@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_an_index_keeps_the_changes_of_a_copy_on_write_model(tmp_path, kind):
    """``load(..., mmap="c")`` maps the vectors copy-on-write: the index's page release
    (``MADV_DONTNEED``) threw away the rows the process had changed since (a model trained after
    loading) and read the saved ones back, while building and at IVF-PQ queries."""
    kv = _kv(100, 1200)
    kv.save(str(tmp_path / "kv"), sep_limit=0)
    loaded = KeyedVectors.load(str(tmp_path / "kv"), mmap="c")
    assert getattr(loaded.vectors, "mode", None) == "c"
    loaded.vectors[:] = loaded.vectors * 2 + 1  # changed in this process only
    want = np.array(loaded.vectors)
    idx = ModalityIndexer(loaded, backend="faiss", kind=kind, modalities=("images",),
                          **({"pq_m": 4} if kind == "ivfpq" else {}))
    np.testing.assert_array_equal(np.asarray(loaded.vectors), want)
    part = idx._parts["images"]
    if part.rows is not None:
        part.rows._read = _index._READ_ROWS  # the next query releases the pages
    idx.most_similar(want[150], 5)
    np.testing.assert_array_equal(np.asarray(loaded.vectors), want)


# ----------------------------------------------------------------------------- merge_stores


def test_merging_into_a_store_keeps_its_own_skip_reason(tmp_path):
    """A key the target already lists as skipped and a source skipped too: the target's reason is
    the first occurrence (its rows come first too); the source's replaced it."""
    meta = {"arch": "resnet50", "weights": "IMAGENET1K_V1"}

    def store(path, keys, skips):
        with FeatureStore.create(path, dim=4, dtype="float32", metadata=meta) as w:
            w.write(keys, np.random.default_rng(len(keys)).random((len(keys), 4), dtype=np.float32))
            for k, why in skips.items():
                w.skip(k, why)

    store(tmp_path / "m", ["img:1"], {"img:9": "target: truncated file"})
    store(tmp_path / "a", ["img:2"], {"img:9": "source: not an image", "img:8": "too large"})
    merged = merge_stores(tmp_path / "m", [tmp_path / "a"])
    assert merged.keys == ["img:1", "img:2"]
    assert merged.skipped == {"img:9": "target: truncated file", "img:8": "too large"}


def test_pq_m_for_an_index_that_keeps_exact_vectors_is_refused():
    """`pq_m` with kind="hnsw"/"ivf" was taken and ignored without a word (the CLI's wording of
    --pq-m errors: tests/test_index_pq.py's CLI test)."""
    pytest.importorskip("faiss")
    kv = KeyedVectors(8)
    kv.add_vectors([f"w{i}" for i in range(300)], np.random.default_rng(0).normal(size=(300, 8)))
    for kind in ("ivf", "hnsw"):
        with pytest.raises(ValueError, match=rf"pq_m: .*faiss {kind} index, which keeps exact vectors; pass "
                                             rf"kind='ivfpq'"):
            ModalityIndexer(kv, backend="faiss", kind=kind, pq_m=4, modalities=("words",))


def test_release_keeps_the_changes_of_a_copy_on_write_map(tmp_path):
    """image_features.release (every reader's page drop, not only the index's) leaves a
    copy-on-write map alone: MADV_DONTNEED there reads the file's rows back over the changed ones."""
    from gensim_im2vec.image_features import release

    np.save(tmp_path / "v.npy", np.zeros((4096, 8), dtype=np.float32))
    cow = np.load(tmp_path / "v.npy", mmap_mode="c")
    cow[5] = 1.0
    release(cow)
    assert float(cow[5, 0]) == 1.0
    shared = np.load(tmp_path / "v.npy", mmap_mode="r+")
    shared[6] = 2.0
    release(shared)  # a shared map's changes are the file's: kept in the page cache
    assert float(shared[6, 0]) == 2.0
