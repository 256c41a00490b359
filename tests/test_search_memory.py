"""An exact search fills ``wv.norms`` a block of rows at a time (``gensim_im2vec.index.fill_norms``):
gensim's own ``KeyedVectors.fill_norms``, which ``wv.most_similar`` calls when they are missing (after
a load, a ``train``), squares a private copy of every vector at once, as much memory again as
``wv.vectors`` (40 GB at 100M × 100), even of a model loaded with ``mmap="r"``.

No timing here (``benchmarks/bench_memory.py --search`` measures the memory): with blocks of
``BLOCK_ROWS`` rows, every array ``np.linalg.norm`` is given during a search has at most that many
rows, gensim's ``fill_norms`` never computes, and the answers are those of gensim's norms."""

import numpy as np
import pytest
from gensim.models.keyedvectors import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec import index as index_module
from gensim_im2vec.index import fill_norms
from gensim_im2vec.query import QuerySession
from gensim_im2vec.synthetic import make_corpus

BLOCK_ROWS = 8
VECTOR_SIZE = 12


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=120, n_features=16, n_related=0, n_test=5, seed=0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, data):
    model = Im2Vec(data.docs, image_features=data.features, vector_size=VECTOR_SIZE, sg=1, min_count=1,
                   epochs=3, workers=1, seed=1)
    path = tmp_path_factory.mktemp("search_memory") / "m.model"
    model.save(str(path), sep_limit=0)  # wv.vectors in a file of its own: memory-mapped by load(mmap="r")
    return str(path)


def _load(path):
    model = Im2Vec.load(path, mmap="r")
    assert isinstance(model.wv.vectors, np.memmap) and model.wv.norms is not None  # (saved with the model)
    model.wv.norms = None  # as a model saved without them loads (before they were saved): filled at the first search
    assert len(model.wv) > 4 * BLOCK_ROWS
    return model


def _watched(monkeypatch):
    """Blocks of BLOCK_ROWS rows; the shapes of the 2-D arrays np.linalg.norm is given, and how often
    gensim's KeyedVectors.fill_norms computed norms (found them missing)."""
    seen = {"shapes": [], "gensim": 0}
    real_norm, real_fill = np.linalg.norm, KeyedVectors.fill_norms

    def norm(x, *args, **kwargs):
        if np.ndim(x) == 2:
            seen["shapes"].append(np.shape(x))
        return real_norm(x, *args, **kwargs)

    def gensim_fill(self, force=False):
        if self.norms is None or force:
            seen["gensim"] += 1
        return real_fill(self, force)

    monkeypatch.setattr(index_module, "NORM_BLOCK_BYTES", BLOCK_ROWS * VECTOR_SIZE * 4)
    monkeypatch.setattr(np.linalg, "norm", norm)
    monkeypatch.setattr(KeyedVectors, "fill_norms", gensim_fill)
    return seen


def _session_answer(model, line):
    return QuerySession(model, topn=5, featurizer_factory=lambda metadata: None).answer(line)


SEARCHES = {
    "most_similar_words": lambda m, d: m.most_similar_words("img:0", topn=5),
    "most_similar_words_sum": lambda m, d: m.most_similar_words(positive=["class0", "img:3"], negative=["class1"],
                                                                topn=5),
    "most_similar_images": lambda m, d: m.most_similar_images("class0", topn=5),
    "most_similar_tags": lambda m, d: m.most_similar_tags("img:1", topn=5),
    "most_similar_images_all": lambda m, d: m.most_similar_images(np.asarray(m.wv["class2"]), topn=None),
    "similar_by_image": lambda m, d: m.similar_by_image(d.test_features[0], topn=5),
    "similar_by_image_batch": lambda m, d: m.similar_by_image(d.test_features, topn=5, restrict="words"),
    "query_key": lambda m, d: _session_answer(m, "img:0"),
    "query_sum": lambda m, d: _session_answer(m, "class0 class1"),
}


def _same_answer(got, want):
    if isinstance(got, str):
        assert got == want
        return
    if got and isinstance(got[0], list):
        for g, w in zip(got, want, strict=True):
            _same_answer(g, w)
        return
    assert [k for k, _ in got] == [k for k, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)


@pytest.mark.parametrize("search", sorted(SEARCHES))
def test_the_first_exact_search_never_squares_all_of_wv(saved, data, monkeypatch, search):
    run = SEARCHES[search]
    # the old path: gensim's fill_norms (all rows at once), then the search
    old_model = _load(saved)
    KeyedVectors.fill_norms(old_model.wv)
    want = run(old_model, data)

    model = _load(saved)
    with monkeypatch.context() as mp:
        seen = _watched(mp)
        got = run(model, data)
    assert seen["gensim"] == 0, "gensim's fill_norms computed the norms: a square of every vector at once"
    assert seen["shapes"], "no norm was computed"
    assert max(rows for rows, _ in seen["shapes"]) <= BLOCK_ROWS, seen["shapes"]
    np.testing.assert_array_equal(model.wv.norms, old_model.wv.norms)  # the same values as gensim's
    _same_answer(got, want)


def test_an_index_search_fills_norms_a_block_at_a_time(saved, monkeypatch):
    index_module_backends = [b for b in index_module.BACKENDS if index_module._installed(b)]
    if not index_module_backends:
        pytest.skip("no ANN backend installed")
    model = _load(saved)
    indexer = index_module.ModalityIndexer(model, backend=index_module_backends[0])
    model.wv.norms = None  # (as after a load)
    with monkeypatch.context() as mp:
        seen = _watched(mp)
        hits = model.most_similar_images("class0", topn=3, indexer=indexer)
    assert len(hits) == 3 and seen["gensim"] == 0
    assert max(rows for rows, _ in seen["shapes"]) <= BLOCK_ROWS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block_rows", [1, 3, 7, 1000])
def test_fill_norms_equals_gensims(monkeypatch, dtype, block_rows):
    rng = np.random.default_rng(0)
    kv = KeyedVectors(5, count=0, dtype=dtype)
    kv.add_vectors([f"k{i}" for i in range(23)], rng.standard_normal((23, 5)).astype(dtype))
    kv.vectors[4] = 0
    monkeypatch.setattr(index_module, "NORM_BLOCK_BYTES", block_rows * 5 * np.dtype(dtype).itemsize)
    fill_norms(kv)
    mine = kv.norms
    assert mine.dtype == dtype
    kv.norms = None
    KeyedVectors.fill_norms(kv)
    np.testing.assert_array_equal(mine, kv.norms)


def test_fill_norms_keeps_norms_of_every_row_and_refills_stale_or_forced():
    kv = KeyedVectors(2, count=0)
    fill_norms(kv)  # no rows
    assert kv.norms.shape == (0,)
    kv.add_vectors(["a", "b"], [[3.0, 4.0], [0.0, 2.0]])  # (gensim's add_vectors keeps the old norms)
    fill_norms(kv)
    assert kv.norms.tolist() == [5.0, 2.0]
    kept = kv.norms
    fill_norms(kv)
    assert kv.norms is kept
    kv.vectors[1] = [0.0, 1.0]
    fill_norms(kv, force=True)
    assert kv.norms.tolist() == [5.0, 1.0]
