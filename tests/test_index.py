"""ModalityIndexer: gensim's indexer protocol, recall against the exact search, modality
filters, save/load beside the model, stale-index detection."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec import index as _index
from gensim_im2vec.index import ModalityIndexer, ann_most_similar

BACKENDS = [b for b in _index.BACKENDS if _index._installed(b)]  # the ones installed here
pytestmark = pytest.mark.skipif(not BACKENDS, reason="needs faiss-cpu or annoy")

# recall-oriented settings for small tests
STRONG = {"faiss": {"ef_search": 256}, "annoy": {"num_trees": 20, "search_k": 20_000}}


def _mixed_kv(n_words=600, n_images=1400, dim=24, n_clusters=40, seed=0, gap_scale=0.5, noise=0.6) -> KeyedVectors:
    """Clustered words and images with a modality offset, as in a trained joint space."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    gap = rng.normal(size=dim) * gap_scale
    w = centres[rng.integers(n_clusters, size=n_words)] + noise * rng.normal(size=(n_words, dim))
    im = centres[rng.integers(n_clusters, size=n_images)] + gap + noise * rng.normal(size=(n_images, dim))
    kv = KeyedVectors(dim)
    kv.add_vectors([f"w{i}" for i in range(n_words)] + [f"img:{i}" for i in range(n_images)],
                   np.vstack([w, im]).astype(np.float32))
    return kv


@pytest.fixture(scope="module")
def kv():
    return _mixed_kv()


@pytest.fixture(scope="module")
def indexers(kv):
    return {b: ModalityIndexer(kv, backend=b, **STRONG[b]) for b in BACKENDS}


def _recall(kv, indexer, queries, restrict=None, topn=10):
    mask = None
    if restrict is not None:
        is_img = np.array([k.startswith("img:") for k in kv.index_to_key])
        mask = is_img if restrict == "images" else ~is_img
    hit = 0
    for q in queries:
        sims = kv.most_similar(q, topn=None).astype(np.float64)
        sims[kv.get_index(q)] = -np.inf
        if mask is not None:
            sims[~mask] = -np.inf
        exact = {kv.index_to_key[i] for i in np.argsort(-sims)[:topn]}
        got = {k for k, _ in ann_most_similar(kv, q, topn=topn, indexer=indexer, restrict=restrict)}
        hit += len(exact & got)
    return hit / (topn * len(queries))


@pytest.mark.parametrize("backend", BACKENDS)
def test_recall_against_exact_search(kv, indexers, backend):
    queries = kv.index_to_key[::97]
    assert _recall(kv, indexers[backend], queries) >= 0.95
    # and with a modality filter: the words index alone must find the exact nearest words
    assert _recall(kv, indexers[backend], queries, restrict="words") >= 0.95
    assert _recall(kv, indexers[backend], queries, restrict="images") >= 0.95


@pytest.mark.parametrize("backend", BACKENDS)
def test_gensim_protocol_and_modality_views(kv, indexers, backend):
    idx = indexers[backend]
    assert len(idx.words) == 600 and len(idx.images) == 1400 and len(idx) == 2000
    both = kv.most_similar("w3", topn=20, indexer=idx)
    assert both[0][0] == "w3" and both[0][1] == pytest.approx(1.0, abs=1e-4)  # query comes back first
    sims = [s for _, s in both]
    assert sims == sorted(sims, reverse=True)
    assert {k.startswith("img:") for k, _ in both} == {True, False}  # mixed in this space
    words = kv.most_similar("w3", topn=20, indexer=idx.words)
    images = kv.most_similar("w3", topn=20, indexer=idx.images)
    assert len(words) == 20 and not any(k.startswith("img:") for k, _ in words)
    assert len(images) == 20 and all(k.startswith("img:") for k, _ in images)
    # "both" is the merge of the two modality lists
    merged = sorted(words + images, key=lambda t: -t[1])[:20]
    assert [k for k, _ in both] == [k for k, _ in merged]
    # reported similarities are the true cosines
    for k, s in both[:5]:
        assert s == pytest.approx(float(kv.cosine_similarities(kv["w3"], kv[k][None])[0]), abs=2e-3)
    # asking for more than a modality holds returns what there is
    assert len(idx.words.most_similar(kv.get_vector("w3", norm=True), 10_000)) == 600


@pytest.mark.parametrize("backend", BACKENDS)
def test_ann_most_similar_matches_gensim_semantics(kv, indexers, backend):
    idx = indexers[backend]
    exact = kv.most_similar(positive=["w1", "img:5"], negative=["w9"], topn=5)
    approx = ann_most_similar(kv, positive=["w1", "img:5"], negative=["w9"], topn=5, indexer=idx)
    assert len(approx) == 5 and not {"w1", "img:5", "w9"} & {k for k, _ in approx}
    assert len({k for k, _ in exact} & {k for k, _ in approx}) >= 4
    vec_query = ann_most_similar(kv, kv["img:7"], topn=3, indexer=idx, restrict="images")
    assert vec_query[0][0] == "img:7"  # a vector query excludes nothing


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_beside_the_model_and_stale_index(tmp_path, backend):
    kv = _mixed_kv(n_words=100, n_images=200, seed=3)
    idx = ModalityIndexer(kv, backend=backend, **STRONG[backend])
    path = tmp_path / "vectors.kv"
    kv.save(str(path))
    idx.save(str(path) + ".ann")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert f"vectors.kv.ann.words.{backend}" in files and f"vectors.kv.ann.images.{backend}" in files
    kv2 = KeyedVectors.load(str(path), mmap="r")
    again = ModalityIndexer.load(str(path) + ".ann", kv2)
    for q in ("w0", "img:1", "w50"):
        assert kv2.most_similar(q, topn=8, indexer=again) == kv.most_similar(q, topn=8, indexer=idx)
    assert again.params == idx.params and again.backend == backend
    # a retrained (changed) model refuses the stale index
    kv3 = KeyedVectors.load(str(path))
    kv3.vectors[0] += 1.0
    kv3.norms = None
    with pytest.raises(ValueError, match="retrained"):
        ModalityIndexer.load(str(path) + ".ann", kv3)
    assert len(ModalityIndexer.load(str(path) + ".ann", kv3, check=False)) == 300


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_interrupted_save_leaves_the_previous_index_whole(tmp_path, backend, monkeypatch):
    # the part files used to be written under their final names: a save interrupted over an older
    # index left its manifest pointing at a half-written part
    kv = _mixed_kv(n_words=100, n_images=200, seed=3)
    fname = str(tmp_path / "vectors.kv.ann")
    ModalityIndexer(kv, backend=backend).save(fname)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    rebuilt = ModalityIndexer(kv, backend=backend, seed=7)
    part_cls = type(rebuilt._parts["images"])
    save = part_cls.save

    def half_then_fail(self, name):
        save(self, name)
        with open(name, "r+b") as f:
            f.truncate(f.seek(0, 2) // 2)
        if "images" in name:
            raise KeyboardInterrupt

    monkeypatch.setattr(part_cls, "save", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        rebuilt.save(fname)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary file either
    monkeypatch.undo()
    assert len(ModalityIndexer.load(fname, kv)) == 300


def test_a_damaged_index_file_is_named(tmp_path):
    kv = _mixed_kv(n_words=100, n_images=200, seed=3)
    fname = tmp_path / "vectors.kv.ann"
    ModalityIndexer(kv, backend=BACKENDS[0]).save(fname)
    words = tmp_path / f"vectors.kv.ann.words.{BACKENDS[0]}"
    words.write_bytes(b"")
    with pytest.raises(ValueError, match=f"its words index '{words}' cannot be read"):
        ModalityIndexer.load(fname, kv)
    fname.write_text("{not json")
    with pytest.raises(ValueError, match="is not a ModalityIndexer manifest \\(not JSON"):
        ModalityIndexer.load(fname, kv)


def test_with_an_im2vec_model(tmp_path):
    rng = np.random.default_rng(0)
    protos = {"dog": rng.normal(size=16), "car": rng.normal(size=16)}
    docs, feats = [], {}
    for i in range(120):
        cls = ("dog", "car")[i % 2]
        # image tokens without the default prefix: the model, not the prefix, says what is an image
        feats[f"photo{i}"] = protos[cls] + 0.3 * rng.normal(size=16)
        docs.append([f"photo{i}", cls, ("puppy", "wheel")[i % 2], "photo"])
    model = Im2Vec(docs, image_features=feats, image_prefix="pic:", vector_size=12, min_count=1,
                   epochs=5, workers=1, seed=1)
    idx = ModalityIndexer(model, backend=BACKENDS[0], **STRONG[BACKENDS[0]])
    assert len(idx.images) == 120 and len(idx.words) == len(model.word_keys) == 5
    hits = model.wv.most_similar("photo0", topn=4, indexer=idx.words)
    assert {k for k, _ in hits} <= set(model.word_keys)
    exact = model.most_similar_images("dog", topn=5)
    approx = ann_most_similar(model, "dog", topn=5, indexer=idx, restrict="images")
    assert len({k for k, _ in exact} & {k for k, _ in approx}) >= 4
    path = str(tmp_path / "m.model")
    model.save(path)
    idx.save(path + ".ann")
    loaded = Im2Vec.load(path, mmap="r")
    again = ModalityIndexer.load(path + ".ann", loaded)
    assert loaded.wv.most_similar("photo3", topn=5, indexer=again) == model.wv.most_similar(
        "photo3", topn=5, indexer=idx)


def test_bad_arguments(kv):
    with pytest.raises(ValueError, match="backend"):
        ModalityIndexer(kv, backend="hnswlib")
    with pytest.raises(ValueError, match="modalities"):
        ModalityIndexer(kv, modalities=("audio",))
    with pytest.raises(ValueError, match="ef_search"):
        ModalityIndexer(kv, ef_search=0)
    only_words = ModalityIndexer(kv, backend=BACKENDS[0], modalities=("words",))
    with pytest.raises(ValueError, match="no images index"):
        only_words.images  # noqa: B018
    with pytest.raises(ValueError, match="dim"):
        only_words.most_similar(np.ones(5), 3)
    with pytest.raises(ValueError, match=r"one vector, got a batch of shape \(2, 24\)"):
        only_words.most_similar(np.ones((2, 24)), 3)
    with pytest.raises(RuntimeError, match="empty"):
        ModalityIndexer(backend=BACKENDS[0]).most_similar(np.ones(24), 3)
    with pytest.raises(TypeError, match="KeyedVectors"):
        ModalityIndexer(np.zeros((3, 3)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tags_index_answers_most_similar_tags(tmp_path, backend):
    """modalities=("words", "tags", "images"): the tags view holds exactly the words of the image
    documents and finds an image's nearest tags as Im2Vec.most_similar_tags does; a query without a
    modality reads words and images (a tag does not come back twice); saved and loaded beside the
    model; a plain KeyedVectors has no tags and says so."""
    from gensim.models import Word2Vec

    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=400, n_features=32, n_related=2, n_text_sentences=1500, seed=2)
    text = [d for d in data.docs if not d[0].startswith("img:")] + [[f"text{i}", "prose"] for i in range(50)]
    image_docs = [d for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=5, workers=1, seed=1)
    model = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=image_docs, epochs=5, sample=0)
    idx = ModalityIndexer(model, backend=backend, modalities=("words", "tags", "images"), **STRONG[backend])
    tags = {w for w in model.word_keys if w in model.image_tag_counts}
    assert set(idx.tags._parts["tags"].labels) == tags and len(idx.tags) == len(tags) < len(idx.words)
    assert len(idx) == len(idx.words) + len(idx.images)  # no view: words and images, each key once
    for key in ("img:0", "img:7", "img:123"):
        exact = model.most_similar_tags(key, topn=5)
        approx = ann_most_similar(model, key, topn=5, indexer=idx, restrict="tags")
        assert {k for k, _ in approx} <= tags
        assert len({k for k, _ in exact} & {k for k, _ in approx}) >= 4
    path = str(tmp_path / "m.model")
    model.save(path)
    idx.save(path + ".ann")
    assert (tmp_path / f"m.model.ann.tags.{backend}").exists()
    again = ModalityIndexer.load(path + ".ann", Im2Vec.load(path, mmap="r"))
    assert again.tags.most_similar(model.wv["img:0"], 5) == idx.tags.most_similar(model.wv["img:0"], 5)
    with pytest.raises(ValueError, match="a 'tags' index needs an Im2Vec model"):
        ModalityIndexer(_mixed_kv(n_words=20, n_images=20), backend=backend, modalities=("tags",))
    with pytest.raises(ValueError, match="no tags index"):
        ModalityIndexer(model, backend=backend).tags  # noqa: B018
    # the command line: im2vec index --tags
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    out = CliRunner().invoke(main, ["index", path, "-o", str(tmp_path / "cli.ann"), "--backend", backend, "--tags"])
    assert out.exit_code == 0, out.output
    assert f"tags={len(tags)}" in ModalityIndexer.load(str(tmp_path / "cli.ann"), model).tags.__repr__()


def _cross_modal_kv(seed=0, dim=32) -> KeyedVectors:
    """Words and images in two clouds far apart (cosine ~0.3 across), as a trained model's are: a
    word's nearest images are the hard case for a graph built on images alone."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(60, dim))
    gap = 2.5 * rng.normal(size=dim)
    w = centres[rng.integers(60, size=800)] + 0.8 * rng.normal(size=(800, dim))
    im = centres[rng.integers(60, size=6000)] + gap + 0.8 * rng.normal(size=(6000, dim))
    kv = KeyedVectors(dim)
    kv.add_vectors([f"w{i}" for i in range(800)] + [f"img:{i}" for i in range(6000)], np.vstack([w, im]))
    return kv


@pytest.mark.skipif(not _index._installed("faiss"), reason="needs faiss-cpu")
def test_recall_is_measured_per_direction_and_ef_search_moves_it(tmp_path):
    """recall() agrees with the exact search done in the test; across modalities it needs a larger
    ef_search than within one, which set_search and load(..., ef_search=) change after the build."""
    kv = _cross_modal_kv()
    idx = ModalityIndexer(kv, backend="faiss", m=8, ef_construction=20, ef_search=10)
    low = idx.recall(kv, queries=60)
    assert set(low) == {"words -> words", "words -> images", "images -> words", "images -> images"}
    rng = np.random.default_rng(0)  # recall()'s own draw: the same 60 word queries
    words = [kv.index_to_key[i] for i in np.sort(rng.choice(800, size=60, replace=False))]
    assert low["words -> images"] == pytest.approx(_recall(kv, idx, words, restrict="images"), abs=1e-9)
    high = idx.set_search(ef_search=400).recall(kv, queries=60)
    assert idx.params["ef_search"] == 400 and idx.images.params["ef_search"] == 400  # views share it
    assert high["words -> images"] > low["words -> images"] and high["words -> images"] >= 0.95
    idx.save(tmp_path / "kv.ann")
    again = ModalityIndexer.load(tmp_path / "kv.ann", kv, ef_search=10)
    assert again.recall(kv, queries=60) == low
    assert ModalityIndexer.load(tmp_path / "kv.ann", kv).recall(kv, queries=60) == high  # the saved knob
    with pytest.raises(ValueError, match="ef_search: expected a positive int"):
        idx.set_search(ef_search=0)


@pytest.mark.skipif(not _index._installed("annoy"), reason="needs annoy")
def test_annoy_inspects_enough_nodes_by_default(monkeypatch):
    kv = _mixed_kv(n_words=50, n_images=50)
    idx = ModalityIndexer(kv, backend="annoy", num_trees=7)
    seen = []
    part = idx._parts["images"]
    real = part.index.get_nns_by_vector
    monkeypatch.setattr(part, "index", type("Spy", (), {"get_nns_by_vector": lambda self, v, k, search_k, **kw: (
        seen.append(search_k), real(v, k, search_k=search_k, **kw))[1]})())
    idx.images.most_similar(kv["img:0"], 5)
    assert seen == [_index.ANNOY_SEARCH_FACTOR * 5 * 7]


def test_index_cli_prints_recall_and_takes_the_knobs(tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=300, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1, sample=0, epochs=2,
                   workers=1)
    model.save(str(tmp_path / "m.model"))
    backend = BACKENDS[0]
    knob = ["--ef-search", "64"] if backend == "faiss" else ["--search-k", "5000"]
    res = CliRunner().invoke(main, ["index", str(tmp_path / "m.model"), "--backend", backend, *knob, "--check", "20"])
    assert res.exit_code == 0, res.output
    assert "recall@10 against the exact search (20 queries each): words -> words" in res.output
    loaded = ModalityIndexer.load(tmp_path / "m.model.ann", Im2Vec.load(str(tmp_path / "m.model")))
    assert loaded.params["ef_search" if backend == "faiss" else "search_k"] == int(knob[1])


@pytest.mark.parametrize("k, says", [(5, "got 5; pass min(k, len(base)) to have all 3"),
                                     (2.5, "got 2.5 (float); give a whole number"),
                                     (True, "got True (bool); give a whole number"), (0, "got 0; give k >= 1")])
def test_cosine_neighbours_refuses_a_k_it_cannot_give_naming_k_and_the_base(k, says):
    # was: scikit-learn's "Expected n_neighbors <= n_samples_fit" for 5, and 2.5 truncated to 2 without a word
    from gensim_im2vec.index import cosine_neighbours

    base = [[0.0, 1.0], [2.0, 0.1], [1.0, 1.0]]
    with pytest.raises(ValueError, match="k must be an int from 1 to the base's 3 rows") as caught:
        cosine_neighbours([[1.0, 0.0]], base, k)
    assert says in str(caught.value)
    with pytest.raises(ValueError, match="base has no rows"):
        cosine_neighbours([[1.0, 0.0]], np.zeros((0, 2)), 1)
    rows, _ = cosine_neighbours([[1.0, 0.0]], base, np.int64(3))  # all of them, nearest first
    assert rows.tolist() == [[1, 2, 0]]
