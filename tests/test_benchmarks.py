"""benchmarks/: every script still imports against today's package (a refactor once left
space_variants.py importing helpers evaluate.py no longer had, and nothing noticed), and says how
it is run."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parent.parent / "benchmarks"
BENCHMARKS = sorted(p for p in FOLDER.glob("*.py") if not p.name.startswith("_"))  # _common.py: shared helpers


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 5, BENCHMARKS


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_imports_and_documents_its_command(path, monkeypatch):
    monkeypatch.setattr(sys, "path", [str(FOLDER), *sys.path])  # as `python benchmarks/<script>.py` has it
    spec = importlib.util.spec_from_file_location(f"_benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # raises on an import the package no longer has
    assert module.__doc__ and f"benchmarks/{path.name}" in module.__doc__, f"{path.name}: docstring names no command"


def test_analogy_ceilings_splits_questions_by_the_features_nearness(monkeypatch):
    """analogy_ceilings.py's halves: a question is "near" when y is among x's k nearest images by
    the features' cosine (x itself not counted), whatever the order of the keys."""
    import numpy as np

    monkeypatch.setattr(sys, "path", [str(FOLDER), *sys.path])
    spec = importlib.util.spec_from_file_location("_benchmark_analogy_ceilings", FOLDER / "analogy_ceilings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    keys = ["img:a", "img:b", "img:c", "img:d"]
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.05]])
    quads = [("img:a", "p", "q", "img:b"), ("img:a", "p", "q", "img:c"), ("img:c", "p", "q", "img:d"),
             ("img:a", "p", "q", "img:zz")]
    assert module.feature_near(quads, keys, X, k=1) == {quads[0]}
    assert module.feature_near(quads, keys, X, k=2) == {quads[0], quads[1], quads[2]}


def _load(name, monkeypatch):
    monkeypatch.setattr(sys, "path", [str(FOLDER), *sys.path])
    spec = importlib.util.spec_from_file_location(f"_benchmark_{name}", FOLDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_feature_whitening_matrix(monkeypatch):
    """feature_whitening.py's P: at p = 0.5 and small ε the rows' covariance becomes a multiple of the
    identity; p = 0 leaves them as they are; the mean squared norm is kept either way."""
    import numpy as np

    module = _load("feature_whitening", monkeypatch)
    rng = np.random.default_rng(0)
    C = rng.normal(size=(4000, 6)) * np.array([10.0, 3.0, 1.0, 1.0, 0.3, 0.1])
    C -= C.mean(axis=0)
    for power, eps in ((0.5, 1e-6), (0.0, 1.0), (-0.25, 0.01)):
        P = module.whitening(C, eps, power)
        assert np.allclose(P, P.T)
        Y = C @ P
        assert np.isclose(np.mean(np.sum(Y * Y, axis=1)), np.mean(np.sum(C * C, axis=1)))
        spread = np.linalg.eigvalsh(Y.T @ Y / len(Y))
        if power == 0.5:
            assert spread.max() / spread.min() < 1.01
        elif power == 0:
            assert np.allclose(P, np.eye(6))
        else:  # amplified: the spread grows
            assert spread.max() / spread.min() > 1e4 * 1.5
    with pytest.raises(ValueError, match="eps"):
        module.whitening(C, 0.0, 0.5)


def test_feature_whitening_fold_keeps_the_space(monkeypatch):
    """A model trained on whitened features, folded (W ← W·P, mean μ, raw features): its images'
    rows of wv are what they were, and model.project of an image's raw features gives its row."""
    import numpy as np

    from gensim_im2vec import Im2Vec
    from gensim_im2vec.synthetic import make_corpus

    module = _load("feature_whitening", monkeypatch)
    data = make_corpus(n_classes=4, n_images=300, n_features=16, n_related=0, n_test=8, seed=3)
    keys = list(data.features)
    V = np.stack([data.features[k] for k in keys]).astype(np.float64)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    mu = V.mean(axis=0)
    P = module.whitening(V - mu, 0.1, 0.5)
    white = dict(zip(keys, ((V - mu) @ P).astype(np.float32)))
    model = Im2Vec(data.docs, image_features=white, normalize_features=False, vector_size=16, sg=1, min_count=1,
                   epochs=3, sample=0, workers=1, seed=1)
    before = np.array([model.wv[k] for k in keys])
    from gensim_im2vec.image_features import ImageFeatures

    raw = ImageFeatures(keys, np.stack([data.features[k] for k in keys]).astype(np.float32))
    module.fold_whitening(model, P, mu, raw)
    after = np.array([model.wv[k] for k in keys])
    assert np.allclose(after, before, atol=1e-4 * np.abs(before).max())
    assert np.allclose(model.project(raw.vectors[:5]), before[:5], atol=1e-4 * np.abs(before).max())


def test_analogy_ceilings_fit_to_questions(monkeypatch):
    """analogy_ceilings.py --fit-questions: W fitted to the questions answers them, where the map it
    starts from does not; each question's half follows its x, whatever the other images."""
    import numpy as np

    pytest.importorskip("torch", reason="fit_to_questions uses torch (pip install '.[vision]')")
    from gensim.models import KeyedVectors

    from gensim_im2vec.evaluate import vector_analogies

    module = _load("analogy_ceilings", monkeypatch)
    rng = np.random.default_rng(0)
    wv = KeyedVectors(8)
    wv.add_vectors(["red", "blue", "big", "small"], rng.normal(size=(4, 8)).astype(np.float32))
    keys = [f"img:{i}" for i in range(40)]
    Xc = rng.normal(size=(40, 40)).astype(np.float32)
    quads = [(keys[i], "red", "blue", keys[i + 20]) for i in range(10)] + \
            [(keys[i + 10], "big", "small", keys[i + 30]) for i in range(10)]
    W0 = rng.normal(size=(8, 40)).astype(np.float32) * 0.1
    before = vector_analogies(wv, keys, Xc @ W0.T, quads)["hit@1"]
    W = module.fit_to_questions(Xc, keys, wv, quads, W0, steps=300, lr=1e-2)
    after = vector_analogies(wv, keys, Xc @ W.T, quads)["hit@1"]
    assert before < 0.5 and after == 1.0, (before, after)


def test_feature_noise_rows(monkeypatch):
    """feature_noise.py's rows: no noise gives the rows unchanged; dropout zeroes about that share of
    the coordinates and scales the rest by 1 / (1 − p); Gaussian noise at s has about s × the row's
    norm, the same for the same noise seed; bad settings are refused by name."""
    import numpy as np

    from gensim_im2vec.model import Im2Vec

    module = _load("feature_noise", monkeypatch)
    X = np.random.default_rng(1).normal(size=(200, 400)).astype(np.float32)
    monkeypatch.setattr(Im2Vec, "_space_rows", lambda self, idx: X[idx])
    idx = np.arange(200)
    assert np.array_equal(module.noisy_rows(0.0, 0.0, 0)(None, idx), X)
    D = module.noisy_rows(0.0, 0.6, 0)(None, idx)
    kept = D != 0
    assert abs(kept.mean() - 0.4) < 0.01
    assert np.allclose(D[kept], X[kept] / 0.4, rtol=1e-5)
    N = module.noisy_rows(2.0, 0.0, 0)(None, idx)
    ratio = np.linalg.norm(N - X, axis=1) / np.linalg.norm(X, axis=1)
    assert abs(ratio.mean() - 2.0) < 0.05 and N.dtype == np.float32
    assert np.array_equal(N, module.noisy_rows(2.0, 0.0, 0)(None, idx))  # the noise seed repeats a run
    assert not np.array_equal(N, module.noisy_rows(2.0, 0.0, 1)(None, idx))
    with pytest.raises(ValueError, match="--dropout"):
        module.noisy_rows(0.0, 1.0, 0)
    with pytest.raises(ValueError, match="--noise"):
        module.noisy_rows(-1.0, 0.0, 0)


def test_nearest_words_figures(monkeypatch):
    """nearest_words.py: AP of a known ranking; among the tags every listed word is a tag and the
    image's own tags rank at least as well as among all words, where text-only words can come first."""
    import numpy as np
    from gensim.models import Word2Vec

    from gensim_im2vec.model import Im2Vec
    from gensim_im2vec.synthetic import make_corpus

    module = _load("nearest_words", monkeypatch)
    assert module.average_precision(np.array([True, False, True, False]), 2) == (1 + 2 / 3) / 2
    assert module.average_precision(np.array([False, True]), 2) == 0.25  # one of two never found
    data = make_corpus(n_classes=4, n_images=400, n_features=32, n_related=2, n_text_sentences=1500, seed=2)
    text = [d for d in data.docs if not d[0].startswith("img:")]
    text_only = {f"class{c}_r1" for c in range(4)}  # near their class in the text, on no image
    image_docs = [[w for w in d if w not in text_only] for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=10, workers=1, seed=1)
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=image_docs, epochs=5, sample=0)
    V = m.project(data.test_features)
    truth = [[f"class{c}"] for c in data.test_labels]
    words = module.neighbour_figures(m, V, truth, set(), "words")
    tags = module.neighbour_figures(m, V, truth, set(), "tags")
    assert tags["tags@10"] == 1.0 and words["tags@10"] < 1.0  # the text's own words come near too
    assert tags["mAP"] >= words["mAP"] and tags["mAP"] > 0.5
    assert np.isnan(words["zero-shot@10"])  # no zero-shot tag asked
    assert np.isnan(words["new@10"]) and np.isnan(words["new hit"])  # no text vocabulary given
    every = module.neighbour_figures(m, V, truth, set(), "tags", text_words=set(m.wv.key_to_index))
    assert every["new@10"] == 0 and np.isnan(every["new hit"])  # the text knows every tag
    no_class1 = set(m.wv.key_to_index) - {"class1"}
    one = module.neighbour_figures(m, V, truth, set(), "tags", text_words=no_class1)
    share1 = np.mean([t == ["class1"] for t in truth])
    assert share1 * 0.9 <= one["new@10"] * 10 <= 1.0  # one new tag: at most one place of ten, and on its images
    assert one["new hit"] > 0.5  # where it is listed, mostly on its own images


def test_zero_shot_study_per_tag_gap(monkeypatch, capsys):
    """zero_shot_study.py --per-tag: each held-out image's AP over the zero-shot candidates only, by
    both scorers, counted under every zero-shot tag it carries; images without one are left out; the
    printout orders the tags by images × the AP difference and counts those where the first scorer
    is at least as good."""
    import numpy as np

    module = _load("zero_shot_study", monkeypatch)
    candidates = ["seen", "flag", "icon", "spain"]
    zero_shot = ["flag", "icon", "spain"]
    tags = [["seen", "flag"], ["flag", "icon"], ["seen"], ["spain"]]
    a = np.array([[9.0, 3, 2, 1],     # flag first among the zero-shot: AP 1
                  [0.0, 1, 3, 2],     # icon 1st, flag 3rd: (1 + 2/3) / 2
                  [5.0, 1, 2, 3],     # no zero-shot tag: left out
                  [0.0, 3, 2, 1]])    # spain 3rd: 1/3
    b = np.array([[0.0, 1, 2, 3],     # flag 3rd: 1/3 (the seen column does not count)
                  [0.0, 3, 2, 1],     # flag 1st, icon 2nd: 1
                  [0.0, 0, 0, 0],
                  [9.0, 1, 2, 3]])    # spain 1st: 1
    gap = module.per_tag_gap(a, b, tags, candidates, zero_shot)
    assert set(gap) == {"flag", "icon", "spain"}
    np.testing.assert_allclose(gap["flag"], (2, (1 + 5 / 6) / 2, (1 / 3 + 1) / 2))
    np.testing.assert_allclose(gap["icon"], (1, 5 / 6, 1.0))
    np.testing.assert_allclose(gap["spain"], (1, 1 / 3, 1.0))
    module.print_per_tag(gap, 2)
    out = capsys.readouterr().out
    assert "on 1 of the 3 zero-shot tags" in out  # flag: 0.917 >= 0.667; icon and spain below
    assert f"Im2Vec {(11 / 12 + 5 / 6 + 1 / 3) / 3:.3f}, ridge {(2 / 3 + 1 + 1) / 3:.3f}" in out  # the tags' mean
    lines = [ln.split() for ln in out.splitlines()[1:]]
    assert [ln[0] for ln in lines] == ["'spain'", "'flag'"]  # |1 x 0.667| before |2 x -0.25|, icon left out


def test_common_helpers_examples_and_tags_to_drop(monkeypatch):
    """_common.py's examples (``settings``, ``tags_to_drop``) give what they show; the tags a
    benchmark takes out of the text are the same whatever order they come in, and a share outside
    [0, 1) is refused naming it."""
    import doctest

    module = _load("_common", monkeypatch)
    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0, result
    tags = [f"tag{i}" for i in range(100)]
    drop = module.tags_to_drop(tags, 0.6)
    assert len(drop) == 60 and drop <= set(tags)
    assert module.tags_to_drop(list(reversed(tags)) + tags[:10], 0.6) == drop  # order and repeats do not matter
    assert module.tags_to_drop(tags, 0.3) != module.tags_to_drop(tags, 0.31)
    with pytest.raises(ValueError, match="1.0"):
        module.tags_to_drop(tags, 1.0)


def test_text_neighbourhoods_compares_a_tag_with_the_full_text(monkeypatch):
    """nearest_words.text_neighbourhoods: a tag placed where the full text model has it agrees
    with it (profile r 1, the same 10 nearest words); one placed at random does not; images and the
    other taken-out tags are not among the words compared; no tag in common gives NaN."""
    from types import SimpleNamespace

    import numpy as np
    from gensim.models import KeyedVectors

    module = _load("nearest_words", monkeypatch)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(200)]
    full = KeyedVectors(16)
    full.add_vectors(words + ["tagA", "tagB"], rng.normal(size=(202, 16)))

    def model_with(tag_vectors):
        kv = KeyedVectors(16)
        kv.add_vectors(words + ["tagA", "tagB", "img:x"],
                       np.vstack([full[words], tag_vectors, rng.normal(size=(1, 16))]))
        return SimpleNamespace(wv=kv, is_image=lambda k: k.startswith("img:"))

    same = model_with(full[["tagA", "tagB"]])
    r, shared = module.text_neighbourhoods(same, SimpleNamespace(wv=full), {"tagA", "tagB"})
    assert abs(r - 1.0) < 1e-9 and shared == 1.0
    scaled = model_with(3.0 * full[["tagA", "tagB"]])  # cosine does not see the norm
    assert module.text_neighbourhoods(scaled, SimpleNamespace(wv=full), {"tagA", "tagB"})[1] == 1.0
    other = model_with(rng.normal(size=(2, 16)))
    r, shared = module.text_neighbourhoods(other, SimpleNamespace(wv=full), {"tagA", "tagB"})
    assert abs(r) < 0.5 and shared < 0.5
    r, shared = module.text_neighbourhoods(same, SimpleNamespace(wv=full), {"tagC"})
    assert np.isnan(r) and np.isnan(shared)


def test_bench_split_documents_and_a_tiny_run(monkeypatch, tmp_path, capsys):
    """bench_split.py's documents hold what the split must handle (two images in a line, an image on
    a second line, text lines), and a tiny run of today's split measures and prints a row."""
    module = _load("bench_split", monkeypatch)
    keys = module.write_documents(str(tmp_path / "docs.txt"), 300)
    lines = (tmp_path / "docs.txt").read_text(encoding="utf-8").splitlines()
    images = [[t for t in line.split() if t.startswith("img:")] for line in lines]
    assert len(keys) == len(set(keys)) == 300 and {t for i in images for t in i} == set(keys)
    assert any(len(i) == 2 for i in images) and any(not i for i in images)
    assert sum(len(i) for i in images) > 300  # some image on a second line
    results = module.main(["--images", "300", "--only", "new", "--dir", str(tmp_path / "b")])
    assert results[300]["new"]["peak"] > 0 and "B per image" in capsys.readouterr().out


def test_bench_split_store_rows_are_distinct_unless_copies_are_asked_for(monkeypatch, tmp_path, capsys):
    """bench_split.py --features: the store's rows are the images' own (identical rows would link
    every image into one group: the split would refuse), and --copies N makes every N-th row a copy."""
    import numpy as np

    from gensim_im2vec.store import FeatureStore

    module = _load("bench_split", monkeypatch)
    keys = module.write_documents(str(tmp_path / "docs.txt"), 3000)
    module.write_store(str(tmp_path / "plain"), keys)
    module.write_store(str(tmp_path / "copies"), keys, copies=50)
    plain, copies = (np.asarray(FeatureStore.open(tmp_path / name).raw_vectors) for name in ("plain", "copies"))
    assert len(np.unique(plain, axis=0)) == len(plain) == 2850
    assert len(copies) - len(np.unique(copies, axis=0)) == 2850 // 50
    results = module.main(["--images", "3000", "--only", "new", "--features", "--copies", "50",
                           "--dir", str(tmp_path / "b")])
    assert results[3000]["new"]["test_images"] > 0 and "B per image" in capsys.readouterr().out
    record = json.loads((tmp_path / "b" / "split3000-new-features" / "split.json").read_text(encoding="utf-8"))
    assert record["counts"]["images_with_identical_features"] == 2 * (2850 // 50)


def test_bench_list_images_a_tiny_run_compares_the_old_listing(monkeypatch, tmp_path, capsys):
    """bench_list_images.py makes its folders, measures every way in a fresh process, and finds the
    listing before this change (from git, where the checkout has the commit) equal to today's."""
    module = _load("bench_list_images", monkeypatch)
    best = module.main(["--files", "250", "--per-folder", "100", "--dir", str(tmp_path)])
    assert sorted(os.listdir(tmp_path / "images")) == [".made", "00000", "00001", "00002"]
    assert {"new list", "new walk", "new plan"} <= set(best) and all(r["n"] == 250 for r in best.values())
    out = capsys.readouterr().out
    if "old list" in best:  # the lists' equality is asserted by main
        assert best["old list"]["check"] == best["new list"]["check"] and "the same pairs in the same order" in out


def test_bench_neighbour_words_a_tiny_run_gives_the_dicts_bags(monkeypatch, capsys):
    """bench_neighbour_words.py builds the dict per image itself, checks the pairs give its bags, and
    prints both ways' bytes an image, their ratio and a train()'s space_neighbour_seconds."""
    module = _load("bench_neighbour_words", monkeypatch)
    results = module.main(["--images", "400", "--words", "50", "--trains", "1"])
    old, new = results["dict per image"], results["NumPy pairs"]
    assert new["held"] < old["held"] and new["gather_peak"] > 0 and old["fit"] > 0
    out = capsys.readouterr().out
    assert "the same bags both ways" in out and "gathered state, B/image" in out and "space_neighbour_seconds" in out


def _store_backed_model(tmp_path, n: int):
    """A model whose vocabulary is built over a FeatureStore of `n` images ``img:0``… (one document each,
    with "dog"), and the store."""
    import numpy as np

    from gensim_im2vec import Im2Vec
    from gensim_im2vec.store import FeatureStore

    keys = [f"img:{i}" for i in range(n)]
    FeatureStore.from_arrays(tmp_path / "s", keys, np.random.default_rng(0).random((n, 4), dtype=np.float32) + 0.1)
    store = FeatureStore.open(tmp_path / "s")
    model = Im2Vec(image_features=store, vector_size=4, min_count=1, workers=1, seed=1)
    model.build_vocab([[k, "dog"] for k in keys])
    return model, store


def test_bench_scale_breakdown_of_a_store_backed_model(monkeypatch, tmp_path):
    """bench_scale.py's breakdown sizes the store's key_to_index, a KeyIndex since 2026-12-07 (no dict:
    a slice of it was looked up as a key, TypeError), as its arrays and its key strings."""
    module = _load("bench_scale", monkeypatch)
    model, store = _store_backed_model(tmp_path, 3000)
    out = module.breakdown(model, store)
    index = out["feature keys index + key strings (the store's, shared)"]["bytes"]
    assert store.key_to_index.nbytes + 3000 * sys.getsizeof("img:1000") * 0.9 < index < 2 * 3000 * 60


def test_bench_scale_breakdown_sizes_the_models_vocab_key_index(monkeypatch, tmp_path):
    """A model's wv.key_to_index is a VocabKeyIndex since 2026-12-08: the breakdown counts its words'
    dict and its images' KeyIndex (it counted the wrapper object alone, ≈ 100 bytes)."""
    module = _load("bench_scale", monkeypatch)
    model, store = _store_backed_model(tmp_path, 3000)
    held = module.breakdown(model, store)["wv.key_to_index (dict or words' dict + images' KeyIndex)"]["bytes"]
    assert model.wv.key_to_index.nbytes < held < 3000 * 30  # its arrays (the key strings are the store's)


def test_bench_vocab_keys_child_measures_both_mappings(monkeypatch, tmp_path):
    module = _load("bench_vocab_keys", monkeypatch)
    path = module.make_store(3000, str(tmp_path), 0)
    got = {kind: module.child(kind, path, 0) for kind in ("dict", "index")}
    assert got["index"]["held_B"] < 30 < got["dict"]["held_B"]  # KeyIndex ≈ 15 B a key, the dict ≈ 57
    assert all(v > 0 for r in got.values() for k, v in r.items() if k != "held_B")
