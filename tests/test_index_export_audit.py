"""Audit of the ANN index and the projector export as a new user meets them: each test failed on
the code before its fix (the docstring says how)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec import index as _index
from gensim_im2vec.export import export_projector
from gensim_im2vec.index import ModalityIndexer, ann_most_similar
from gensim_im2vec.synthetic import make_corpus

BACKENDS = [b for b in _index.BACKENDS if _index._installed(b)]  # the ones installed here
needs_backend = pytest.mark.skipif(not BACKENDS, reason="needs faiss-cpu or annoy")


def _kv(keys, vectors) -> KeyedVectors:
    kv = KeyedVectors(np.shape(vectors)[1])
    kv.add_vectors(list(keys), np.asarray(vectors, dtype=np.float32))
    return kv


def _mixed(n=60, dim=8, seed=0) -> KeyedVectors:
    rng = np.random.default_rng(seed)
    return _kv([f"w{i}" for i in range(n // 2)] + [f"img:{i}" for i in range(n - n // 2)], rng.normal(size=(n, dim)))


@pytest.fixture(scope="module")
def model():
    data = make_corpus(n_classes=5, n_images=200, n_features=16, n_related=1, n_test=5, seed=0)
    return Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1, epochs=2, sample=0,
                  workers=1, seed=1)


# ---------------------------------------------------------------------------------------- the index


@needs_backend
@pytest.mark.parametrize("backend", BACKENDS)
def test_ann_most_similar_keeps_the_modality_of_a_view(model, backend):
    """``ann_most_similar(..., indexer=idx.images)`` answered words too: restrict=None widened the
    view back to both sub-indexes."""
    idx = ModalityIndexer(model, backend=backend)
    hits = ann_most_similar(model, "class0", topn=8, indexer=idx.images)
    assert len(hits) == 8 and all(model.is_image(k) for k, _ in hits)
    words = ann_most_similar(model, "img:0", topn=5, indexer=idx.words)
    assert words and not any(model.is_image(k) for k, _ in words)
    both = ann_most_similar(model, "class0", topn=8, indexer=idx.images, restrict=None)
    assert all(model.is_image(k) for k, _ in both)


def test_an_explicit_backend_that_is_not_installed_names_the_install(monkeypatch):
    """backend="faiss" without faiss failed with a bare "No module named 'faiss'" (at build, or at
    load after the stale check); "auto" named `pip install gensim-im2vec[scale]`, not the extra."""
    kv = _mixed()
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"backend='faiss' needs the faiss package.*pip install faiss-cpu.*"
                                          r"pip install 'gensim-im2vec\[scale\]'"):
        ModalityIndexer(kv, backend="faiss")
    monkeypatch.setitem(sys.modules, "annoy", None)
    with pytest.raises(ImportError, match=r"backend='annoy' needs the annoy package.*pip install annoy"):
        ModalityIndexer(kv, backend="annoy")
    with pytest.raises(ImportError, match=r"neither is installed.*pip install 'gensim-im2vec\[scale\]'"):
        ModalityIndexer(kv)


@needs_backend
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_zero_vector_of_the_model_is_indexed_and_a_nan_one_is_named(backend):
    """An all-zero row was normalised to NaN: faiss's HNSW never returned its key (the images index
    answered nothing) and its IVF training failed with "input contains NaN's or Inf's"."""
    kv = _kv(["w0", "w1", "img:z"], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    kinds = ("hnsw", "ivf") if backend == "faiss" else ("hnsw",)
    for kind in kinds:
        idx = ModalityIndexer(kv, backend=backend, kind=kind)
        assert [k for k, _ in idx.images.most_similar(np.ones(4), 3)] == ["img:z"]
        assert {k for k, _ in ann_most_similar(kv, "w0", topn=2, indexer=idx)} == {"w1", "img:z"}
    bad = _kv(["w0", "img:n"], [[1, 0], [np.nan, 1]])
    with pytest.raises(ValueError, match=r"vectors of 1 key\(s\) are not finite.*\['img:n'\]"):
        ModalityIndexer(bad, backend=backend)


@needs_backend
@pytest.mark.parametrize("backend", BACKENDS)
def test_query_vectors_and_counts_are_checked(backend):
    """A zero query vector got arbitrary keys at cosine 0 (NaN and inf were refused); a vector of
    another dim gave numpy's "operands could not be broadcast"; num_neighbors=None a bare
    TypeError, 2.5 two answers."""
    kv = _mixed()
    idx = ModalityIndexer(kv, backend=backend)
    with pytest.raises(ValueError, match="query vector is all zeros"):
        idx.most_similar(np.zeros(8), 3)
    with pytest.raises(ValueError, match="query vector is all zeros"):
        ann_most_similar(kv, positive=["w1"], negative=["w1"], topn=3, indexer=idx)
    with pytest.raises(ValueError, match=r"a query vector has shape \(5,\), the model's vectors \(8,\)"):
        ann_most_similar(kv, np.ones(5), topn=3, indexer=idx)
    with pytest.raises(ValueError, match=r"a query vector has shape \(2, 8\)"):
        ann_most_similar(kv, [(np.ones((2, 8)), 1.0)], topn=3, indexer=idx)
    for bad in (None, 2.5, -1):
        with pytest.raises(ValueError, match="num_neighbors must be an int >= 0"):
            idx.most_similar(np.ones(8), bad)
    assert len(ann_most_similar(kv, np.ones(8, dtype=np.int64), topn=3, indexer=idx)) == 3  # an int vector is fine


@needs_backend
@pytest.mark.parametrize("backend", BACKENDS)
def test_save_into_a_missing_folder(tmp_path, backend):
    """faiss: "could not open .../.x.ann.words.faiss.tmp-... for writing"; annoy: "Unable to open"."""
    kv = _mixed()
    fname = tmp_path / "new" / "sub" / "x.ann"
    ModalityIndexer(kv, backend=backend).save(fname)
    assert len(ModalityIndexer.load(fname, kv)) == 60
    assert sorted(p.name for p in fname.parent.iterdir()) == sorted(
        ["x.ann", f"x.ann.words.{backend}", f"x.ann.images.{backend}"] + (
            ["x.ann.words.annoy.dict", "x.ann.images.annoy.dict"] if backend == "annoy" else []))


@needs_backend
def test_save_never_replaces_a_file_that_is_not_an_index(tmp_path):
    """``indexer.save(model_path)`` replaced the model with a JSON manifest (and any other file of
    the user's under that name); an earlier index is still replaced."""
    kv = _mixed()
    path = tmp_path / "vectors.kv"
    kv.save(str(path))
    before = path.read_bytes()
    idx = ModalityIndexer(kv, backend=BACKENDS[0])
    with pytest.raises(FileExistsError, match=r"'.*vectors\.kv' exists and is not a ModalityIndexer manifest"):
        idx.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["vectors.kv"]
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        idx.save(notes)
    assert notes.read_text() == "mine"
    with pytest.raises(IsADirectoryError, match="is a folder"):
        idx.save(tmp_path)
    idx.save(str(path) + ".ann")
    idx.save(str(path) + ".ann")  # an earlier index: replaced
    assert len(ModalityIndexer.load(str(path) + ".ann", KeyedVectors.load(str(path)))) == 60


# ---------------------------------------------------------------------------------------- the export


def test_an_interrupted_re_export_leaves_the_earlier_export_whole(tmp_path, monkeypatch):
    """A re-export replaced vectors.tsv, then failed: the folder held the new vectors (4 rows) beside
    the old metadata (10 rows) and the old config, which says the export is finished."""
    import gensim_im2vec.export as export

    kv = _mixed(n=10)
    out = tmp_path / "p"
    export_projector(kv, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_write_metadata", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_projector(kv, out, limit=4)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary file either
    monkeypatch.undo()
    res = export_projector(kv, out, limit=4)
    assert len(res.vectors.read_text().splitlines()) == 4 and len(res.metadata.read_text().splitlines()) == 5


def test_every_line_break_in_a_key_keeps_one_row_per_key(tmp_path):
    r"""Only \t, \n and \r were replaced: a key with U+2028, U+0085, \v, \f or \x1c-\x1e split its
    metadata row for a reader that splits lines as Python does (``str.splitlines``)."""
    keys = ["a\tb", "n\nl", "c\rr", "ls\u2028x", "nel\x85x", "vt\x0bx", "ff\x0cx", "fs\x1cx", "ps\u2029x",
            "naïve 😀", "img:caf%C3%A9", "sp ace", "x" * 3000]
    kv = _kv(keys, np.random.default_rng(0).normal(size=(len(keys), 3)))
    res = export_projector(kv, tmp_path / "p")
    lines = res.metadata.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(keys) + 1 == len(np.loadtxt(res.vectors, delimiter="\t")) + 1
    assert all(len(line.split("\t")) == 3 for line in lines)
    assert [line.split("\t")[0] for line in lines[1:4]] == ["a b", "n l", "c r"]
    assert lines[4].split("\t")[0] == "ls x" and lines[10].split("\t")[0] == "naïve 😀"
    assert lines[11].split("\t")[0] == "img:caf%C3%A9" and lines[13].split("\t")[0] == "x" * 3000


def test_vectors_with_nan_are_refused_and_nothing_is_written(tmp_path):
    """vectors.tsv got "nan" fields (the projector cannot place the point) and no key was named."""
    kv = _kv(["ok", "bad"], [[1, 2, 3], [np.nan, 1, 2]])
    with pytest.raises(ValueError, match=r"the vectors of 'bad' .* contain NaN or inf"):
        export_projector(kv, tmp_path / "p")
    assert not (tmp_path / "p").exists()  # the folder it made is removed again
    assert export_projector(kv, tmp_path / "q", keys=["ok"]).count == 1


def test_an_output_folder_that_is_a_file_is_named(tmp_path):
    """A file as `directory` gave mkdir's "[Errno 17] File exists", a path under a file "[Errno 20]
    Not a directory"."""
    kv = _mixed(n=4)
    mine = tmp_path / "mine.txt"
    mine.write_text("mine")
    with pytest.raises(NotADirectoryError, match=r"folder '.*mine\.txt' is a file; give a folder"):
        export_projector(kv, mine)
    with pytest.raises(NotADirectoryError, match=r"'.*mine\.txt/sub' lies under '.*mine\.txt', a file"):
        export_projector(kv, mine / "sub")
    assert mine.read_text() == "mine"


def test_a_tensor_name_with_a_line_break_gives_a_config_tensorboard_reads(tmp_path):
    """The name was written with its raw line break: protobuf's text format refused the config
    ("String missing ending quote")."""
    pb = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2",
                             reason="tensorboard is not installed (pip install tensorboard)")
    from google.protobuf import text_format

    name = 'photos\n"2024"\\tags\r'
    res = export_projector(_mixed(n=4), tmp_path / "p", tensor_name=name)
    config = text_format.Parse(res.config.read_text(encoding="utf-8"), pb.ProjectorConfig())
    assert config.embeddings[0].tensor_name == name


def test_bad_export_arguments_are_named(tmp_path):
    """keys="img:1" was read as its characters ("5 key(s) are not in the model, e.g. ['i', 'm', ...]");
    thumbnail=2.5 gave "'float' object is not iterable"; thumbnail=True and limit=True were taken as 1;
    an array as the model gave "'numpy.ndarray' object has no attribute 'index_to_key'"."""
    kv = _mixed(n=4)
    with pytest.raises(TypeError, match=r"keys is the str 'img:1'; give a list of keys, e.g. \['img:1'\]"):
        export_projector(kv, tmp_path / "a", keys="img:1")
    for bad in (2.5, True, (8,), (8, 0), "32"):
        with pytest.raises(ValueError, match="thumbnail: expected a positive int or"):
            export_projector(kv, tmp_path / "b", thumbnail=bad, images={})
    with pytest.raises(ValueError, match="limit: expected a positive int"):
        export_projector(kv, tmp_path / "c", limit=True)
    with pytest.raises(TypeError, match="expected an Im2Vec/Word2Vec model or a gensim KeyedVectors, got ndarray"):
        export_projector(np.zeros((3, 3)), tmp_path / "d")
    assert not any(tmp_path.iterdir())
    assert export_projector(kv, tmp_path / "e", thumbnail=(8, 6), images={}).thumbnail == (8, 6)


def test_a_new_folder_left_by_a_killed_export_is_completed_by_the_next(tmp_path):
    """A kill between two renames of an export into a new folder: the next export recognises the
    folder as its own and completes it (the config was renamed last, so a folder of vectors.tsv alone
    was refused as the user's)."""
    import subprocess
    import textwrap

    kv = KeyedVectors(3)
    kv.add_vectors(["cat", "dog", "img:1"], np.eye(3, dtype=np.float32))
    kv.save(str(tmp_path / "kv"))
    out = tmp_path / "proj"
    child = textwrap.dedent(f"""
        import os
        from gensim.models import KeyedVectors
        from gensim_im2vec.export import export_projector
        real = os.replace
        def replace(src, dst, _n=[0]):
            _n[0] += 1
            if _n[0] == 2:
                os._exit(9)  # killed after the first file is in place
            real(src, dst)
        os.replace = replace
        export_projector(KeyedVectors.load({str(tmp_path / "kv")!r}), {str(out)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert len([p for p in out.iterdir() if not p.name.startswith(".")]) == 1  # one file in place
    res = export_projector(KeyedVectors.load(str(tmp_path / "kv")), out)
    assert res.count == 3
    assert [line.split("\t")[0] for line in (out / "metadata.tsv").read_text().splitlines()] == ["key", "cat", "dog",
                                                                                             "img:1"]
    assert len((out / "vectors.tsv").read_text().splitlines()) == 3
