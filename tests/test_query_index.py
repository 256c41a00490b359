"""`im2vec query --index`: the prompt's lists answered from an approximate-neighbour index.

On a small model an HNSW index with a large ef_search finds the exact neighbours, so every list
must be the one the exact search prints; the index is checked against the model, a list whose
modality the index lacks is searched exactly (and the header says so), and a missing backend
names its pip install."""

from __future__ import annotations

import io
import json
import os
import re
import sys

import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec
from gensim_im2vec import index as _index
from gensim_im2vec.cli import main
from gensim_im2vec.index import ModalityIndexer
from gensim_im2vec.query import PROMPT, QuerySession, open_index, query_loop
from gensim_im2vec.synthetic import make_corpus

needs_faiss = pytest.mark.skipif(not _index._installed("faiss"), reason="needs faiss-cpu")

HELD_OUT = ("img:0", "img:1")
TEXT_ONLY = ("alpha", "beta", "gamma")  # words no image document carries: words, not tags


def _model(seed: int = 1) -> tuple[Im2Vec, dict]:
    data = make_corpus(n_classes=4, n_images=300, n_features=16, seed=0)
    docs = [d for d in data.docs if d[0] not in HELD_OUT]  # in the features, not the vocabulary
    docs += [[*TEXT_ONLY, "class1"], ["alpha", "class2", "beta"], ["gamma", "class3", "alpha"]] * 5
    model = Im2Vec(docs, image_features=data.features, vector_size=16, sg=1, min_count=1, sample=0, epochs=2,
                   workers=1, seed=seed)
    return model, data.features


@pytest.fixture(scope="module")
def small():
    model, feats = _model()
    assert model._image_words() == "tags" and set(TEXT_ONLY) <= set(model.wv.key_to_index)
    assert not set(TEXT_ONLY) & set(model.image_tag_counts)
    assert all(model._held_out_features(k) is not None for k in HELD_OUT)
    return model, feats


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    """The model saved, and an exact-finding HNSW index beside it (MODEL.ann, with tags)."""
    pytest.importorskip("faiss")
    model, _ = small
    folder = tmp_path_factory.mktemp("query_index")
    path = str(folder / "m.model")
    model.save(path)
    ModalityIndexer(model, backend="faiss", modalities=("words", "tags", "images"), ef_search=2000).save(path + ".ann")
    return path


def _same_text(got: str, want: str, atol: float = 2e-6) -> None:
    """Two answers line by line: the same words in the same places, numbers equal to `atol`."""
    g, w = got.splitlines(), want.splitlines()
    assert len(g) == len(w), f"{len(g)} lines, expected {len(w)}:\n{got}\n---\n{want}"
    for a, b in zip(g, w):
        ta, tb = a.split(), b.split()
        assert len(ta) == len(tb), f"{a!r} != {b!r}"
        for x, y in zip(ta, tb):
            if re.fullmatch(r"-?\d+\.\d{6}", y):
                assert re.fullmatch(r"-?\d+\.\d{6}", x) and abs(float(x) - float(y)) <= atol, f"{a!r} != {b!r}"
            else:
                assert x == y, f"{a!r} != {b!r}"


class _Spy:
    """Counts the sub-index searches of every ModalityIndexer (views included)."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[tuple[str, ...]] = []
        real = ModalityIndexer.most_similar

        def most_similar(indexer, vector, num_neighbors):
            self.calls.append(indexer._active)
            return real(indexer, vector, num_neighbors)

        monkeypatch.setattr(ModalityIndexer, "most_similar", most_similar)


def _queries(tmp_path) -> list[str]:
    image_file = tmp_path / "photo.png"
    image_file.write_bytes(b"not read: the test's featurizer looks features up by name")
    return ["class1",            # a word: mixed, words, images
            "alpha",             # a text-only word
            "img:5",             # an image key: mixed, tags, images, given words
            "class1_r0",         # a tag
            "class1 -class2",    # a sum across keys
            "img:7 -class0",     # across modalities
            "0",                 # a held-out image key (img:0, in the features only)
            str(image_file)]     # an image file, placed by model.project


def _session(model, feats, **kw) -> QuerySession:
    return QuerySession(model, topn=6, zero_shot_words=["class0", "class1", "class2", "alpha"],
                        featurizer_factory=lambda meta: (lambda path: feats["img:9"]), **kw)


@needs_faiss
def test_every_list_from_the_index_equals_the_exact_one(small, saved, tmp_path, monkeypatch):
    model, feats = small
    exact = _session(model, feats)
    spy = _Spy(monkeypatch)
    indexed = _session(model, feats, index=saved + ".ann")
    assert exact.header == "" and exact.indexer is None
    assert indexed.header.startswith(f"Neighbours from the approximate index {saved}.ann (faiss hnsw, ef_search 2000;")
    assert "words 65, tags 62, images 298 keys" in indexed.header and "cosines exact" in indexed.header
    assert "No tags" not in indexed.header
    assert "Given words ranked by cosine: exact" in indexed.header
    for q in _queries(tmp_path):
        before = len(spy.calls)
        want, ok = exact.answer_ok(q)
        assert ok, want
        assert len(spy.calls) == before  # the exact session never asks the index
        got = indexed.answer_ok(q)[0]
        _same_text(got, want)
        searched = set(spy.calls[before:])
        # every list came from the index: words and images for the mixed list, an image's tags from its tags
        assert {("words",), ("images",)} <= searched, (q, searched)
        assert (("tags",) in searched) == ("Nearest tags" in want), (q, searched)
    assert "Given words ranked by cosine (4 of 4)" in want and "Image file:" in want


@needs_faiss
def test_cli_prints_the_header_and_the_exact_lists(saved):
    runner = CliRunner()
    script = "img:5\nclass1 -class2\nEXIT\n"
    exact = runner.invoke(main, ["query", saved, "--topn", "4"], input=script)
    indexed = runner.invoke(main, ["query", saved, "--topn", "4", "--index", saved + ".ann"], input=script)
    assert exact.exit_code == 0 and indexed.exit_code == 0, indexed.output
    head, rest = indexed.output.split(PROMPT, 1)
    assert head.startswith(f"Neighbours from the approximate index {saved}.ann (faiss hnsw") and "not an exact" in head
    assert not exact.output.startswith("Neighbours")
    _same_text(PROMPT + rest, exact.output)
    helped = runner.invoke(main, ["query", "--help"])
    assert "--index" in helped.output and "searched exactly" in helped.output.replace("\n", " ").replace("  ", " ")


@needs_faiss
def test_an_index_without_tags_answers_them_exactly_and_says_so(small, tmp_path, monkeypatch):
    model, feats = small
    no_tags = ModalityIndexer(model, backend="faiss", ef_search=2000)  # `im2vec index` without --tags
    spy = _Spy(monkeypatch)
    session = _session(model, feats, index=no_tags)
    assert "words 65, images 298 keys" in session.header
    note = [line for line in session.header.splitlines() if line.startswith("No tags in the index")]
    assert note == ["No tags in the index: an image's nearest tags by exact search over the model's 62 tags alone "
                    "(`im2vec index MODEL --tags` builds an index that has them)."]
    answer = session.answer("img:5")
    assert ("tags",) not in spy.calls and {("words",), ("images",)} <= set(spy.calls)
    _same_text(answer, _session(model, feats).answer("img:5"))
    tags = answer.split("Nearest tags", 1)[1].splitlines()[4:10]
    assert [row.split()[0] for row in tags] == [k for k, _ in model.most_similar_tags("img:5", topn=6)]
    # a word's answer needs no tags: the same lists, all from the index
    _same_text(session.answer("alpha"), _session(model, feats).answer("alpha"))


@needs_faiss
def test_an_ivfpq_index_without_rerank_prints_exact_cosines(small):
    model, feats = small
    pq = ModalityIndexer(model, backend="faiss", kind="ivfpq", pq_m=4, rerank=1, nprobe=64,
                         modalities=("words", "tags", "images"))
    assert pq.images.most_similar(model.wv["img:5"], 3)[0][1] != pytest.approx(1.0, abs=1e-6)  # PQ estimates
    session = _session(model, feats, index=pq)
    assert "ivfpq, pq_m 4, nprobe 64, rerank 1" in session.header and "recomputed" in session.header
    answer = session.answer("img:5")  # its neighbours are images: the PQ sub-index (words: too few, kept exact)
    mixed = answer.split("Nearest words and images\n", 1)[1].split("\n\n", 1)[0]  # that table alone
    rows = re.findall(r"^(\S+)\s+(word|image)\s+(-?\d+\.\d{6})$", mixed, re.MULTILINE)
    assert len(rows) == 6 and {kind for _, kind, _ in rows} == {"image"}
    for key, _, cos in rows:
        assert float(cos) == pytest.approx(float(model.wv.similarity("img:5", key)), abs=2e-6), key
    scores = [float(c) for _, _, c in rows]
    assert scores == sorted(scores, reverse=True)


@needs_faiss
def test_a_stale_index_is_refused_naming_it_and_the_fix(small, saved, tmp_path):
    retrained, _ = _model(seed=2)  # the same keys, other vectors
    path = str(tmp_path / "m.model")
    retrained.save(path)
    with open(saved + ".ann", encoding="utf-8") as f:
        manifest = json.load(f)
    with open(path + ".ann", "w", encoding="utf-8") as f:  # the index of the model before it was retrained
        json.dump(manifest, f)
    res = CliRunner().invoke(main, ["query", path, "--index", path + ".ann"], input="class1\nEXIT\n")
    assert res.exit_code == 1 and PROMPT not in res.output
    assert f"index {path + '.ann'!r} was built from other keys or vectors" in res.output
    assert "the model was retrained after the index was built, or the index is another model's" in res.output
    assert f"Build it again for this model: `im2vec index {path}`" in res.output  # MODEL.ann: no -o
    # another model's index, elsewhere: the fix builds this model's own, never over the other's (was: `-o` it)
    res = CliRunner().invoke(main, ["query", path, "--index", saved + ".ann"], input="EXIT\n")
    said = " ".join(res.output.split())
    assert res.exit_code == 1 and f"-o {saved}.ann" not in said
    assert (f"For this model, give {path}.ann, beside it, if it was built for this model, else build it: "
            f"`im2vec index {path}` (from Python: ModalityIndexer(model).save({path + '.ann'!r})), then give that "
            f"index, not {saved + '.ann'!r}, which may be another model's") in said
    os.remove(path + ".ann")  # none beside it: build one
    said = " ".join(CliRunner().invoke(main, ["query", path, "--index", saved + ".ann"], input="EXIT\n").output.split())
    assert f"For this model, build one at a path of its own: `im2vec index {path}` (from Python" in said
    with pytest.raises(ValueError, match=r"\(ModalityIndexer\(model\)\.save\(PATH\); on the command line `im2vec "
                                         r"index MODEL` writes MODEL\.ann\)"):
        QuerySession(retrained, index=saved + ".ann")
    with pytest.raises(ValueError, match="was built from other keys or vectors"):
        QuerySession(retrained, index=saved + ".ann")
    model, _ = small
    with pytest.raises(ValueError, match=r"ModalityIndexer\(model\) again"):
        open_index(ModalityIndexer(model, backend="faiss", modalities=("words",)), retrained)


def test_a_missing_or_foreign_index_file_says_what_to_give(small, tmp_path):
    model, _ = small
    path = str(tmp_path / "m.model")
    model.save(path)
    res = CliRunner().invoke(main, ["query", path, "--index", str(tmp_path / "nope.ann")], input="EXIT\n")
    assert res.exit_code == 1
    assert f"--index: index {str(tmp_path / 'nope.ann')!r}: no such file" in res.output
    assert f"`im2vec index {path} -o {tmp_path / 'nope.ann'}`" in res.output
    res = CliRunner().invoke(main, ["query", path, "--index", path], input="EXIT\n")  # the model, not its index
    assert res.exit_code == 1 and "is not an index manifest" in res.output and f"`im2vec index {path}`" in res.output
    res = CliRunner().invoke(main, ["query", path, "--index", str(tmp_path)], input="EXIT\n")
    assert res.exit_code == 1 and "is a folder; give the index's manifest file" in res.output


@pytest.mark.parametrize("backend", ["faiss", "annoy"])
def test_a_backend_not_installed_names_its_pip_install(small, tmp_path, monkeypatch, backend):
    model, _ = small
    path = str(tmp_path / "m.model")
    model.save(path)
    manifest = {"format": _index._FORMAT, "format_version": 1, "backend": backend, "dim": 16, "image_prefix": "img:",
                "params": {}, "parts": {}, "fingerprint": "not read"}
    with open(path + ".ann", "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    monkeypatch.setitem(sys.modules, backend, None)  # `import faiss` / `import annoy` fail
    res = CliRunner().invoke(main, ["query", path, "--index", path + ".ann"], input="EXIT\n")
    assert res.exit_code == 1 and PROMPT not in res.output
    pip = {"faiss": "pip install faiss-cpu", "annoy": "pip install annoy"}[backend]
    assert f"index {path + '.ann'!r} was built with {backend}, which is not installed here: `{pip}`" in res.output
    with pytest.raises(ImportError, match=re.escape(pip)):
        query_loop(model, io.StringIO("EXIT\n"), io.StringIO(), index=path + ".ann")
