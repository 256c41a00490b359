"""Im2Vec as a user meets it: learning, freezing, persistence, two-stage, helpers, bad input."""

import logging
import os

import numpy as np
import pytest
from gensim import utils
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec import im2vec_inner as K
from gensim_im2vec.evaluate import words_only
from gensim_im2vec.synthetic import make_corpus

SMALL = dict(vector_size=24, sg=1, min_count=1, workers=1, seed=1)


@pytest.fixture(scope="module")
def plain():
    """The issue's setup: tags = class words + random distractor tags."""
    return make_corpus(n_classes=10, n_images=2000, n_related=0, seed=0)


@pytest.fixture(scope="module")
def related():
    """Class words co-occur with related tags, as real tags do."""
    return make_corpus(n_classes=10, n_images=2000, n_related=1, seed=1)


@pytest.fixture(scope="module")
def trained(plain):
    return Im2Vec(plain.docs, image_features=plain.features, vector_size=32, sg=1, min_count=1, epochs=30,
                  sample=0, image_alpha=4.0, workers=2, seed=1)


# ---------------------------------------------------------------------------- learning
def test_unseen_images_get_their_class_word_as_top_tag(plain, trained):
    preds = trained.predict_tags(plain.test_features, topn=1)
    acc = np.mean([p[0][0] == plain.class_words[y] for p, y in zip(preds, plain.test_labels)])
    assert acc >= 0.9, acc


def test_word_to_unseen_image_retrieval_by_trained_score(plain, trained):
    scores, words = trained.tag_scores(plain.test_features)
    precs = []
    for c, w in enumerate(plain.class_words):
        top = np.argsort(-scores[:, words.index(w)])[:10]
        precs.append(np.mean(plain.test_labels[top] == c))
    assert np.mean(precs) >= 0.9, precs


def test_word_to_image_retrieval_by_cosine_in_the_joint_space(related):
    model = Im2Vec(related.docs, image_features=related.features, vector_size=32, sg=1, min_count=1,
                   epochs=10, sample=0, workers=2, seed=1)
    kv = model.project_to_keyedvectors([f"test{i}" for i in range(len(related.test_labels))], related.test_features)
    precs, precs_train = [], []
    for c, w in enumerate(related.class_words):
        hits = kv.similar_by_vector(model.wv[w], topn=10)
        precs.append(np.mean([related.test_labels[int(k[4:])] == c for k, _ in hits]))
        hits = model.most_similar_images(w, topn=10)
        precs_train.append(np.mean([related.labels[k] == c for k, _ in hits]))
    assert np.mean(precs) >= 0.9, precs
    assert np.mean(precs_train) >= 0.9, precs_train
    # and "dog" -> images through the plain gensim API
    mixed = model.wv.most_similar("class3", topn=len(model.wv))
    assert any(model.is_image(k) for k, _ in mixed[:50])


def test_modality_helpers(trained, plain):
    assert len(trained.image_keys) == 2000 and all(k.startswith("img:") for k in trained.image_keys)
    assert trained.is_image("img:5") and not trained.is_image("class1") and not trained.is_image("nope")
    words = trained.most_similar_words("img:0", topn=5)
    images = trained.most_similar_images("img:0", topn=5)
    assert len(words) == 5 and not any(trained.is_image(k) for k, _ in words)
    assert len(images) == 5 and all(trained.is_image(k) for k, _ in images) and "img:0" not in dict(images)
    mixed = trained.wv.most_similar("img:0", topn=30)
    assert {trained.is_image(k) for k, _ in mixed} == {True}  # images of the same class come first
    f = plain.test_features[0]
    assert all(trained.is_image(k) for k, _ in trained.similar_by_image(f, topn=4, restrict="images"))
    assert not any(trained.is_image(k) for k, _ in trained.similar_by_image(f, topn=4, restrict="words"))
    with pytest.raises(ValueError, match="restrict"):
        trained.similar_by_image(f, restrict="pixels")


def test_similar_by_image_is_the_cosine_without_a_normalised_copy_of_wv(trained, plain, monkeypatch):
    """At 100M images a normalised copy of wv.vectors would be the size of the model again."""
    f = plain.test_features[1]
    h = trained.project(f)
    vectors = np.asarray(trained.wv.vectors, dtype=np.float64)
    cos = vectors @ h / np.linalg.norm(vectors, axis=1) / np.linalg.norm(h)
    want = [trained.wv.index_to_key[i] for i in np.argsort(-cos)[:6]]

    def refuse():
        raise AssertionError("get_normed_vectors() copies every row of wv")

    monkeypatch.setattr(trained.wv, "get_normed_vectors", refuse)
    got = trained.similar_by_image(f, topn=6)
    assert [k for k, _ in got] == want
    np.testing.assert_allclose([c for _, c in got], np.sort(cos)[::-1][:6], atol=1e-5)


def test_image_vectors_in_wv_equal_projection(trained, plain):
    for key in ("img:0", "img:1999"):
        np.testing.assert_allclose(trained.wv[key], trained.project(plain.features[key]), rtol=1e-5, atol=1e-6)
    batch = trained.project(plain.test_features[:3])
    assert batch.shape == (3, 32) and batch.dtype == np.float32
    kv = trained.project_to_keyedvectors(["a", "b", "c"], plain.test_features[:3])
    assert len(kv) == 3 and "a" not in trained.wv  # never appended to the model's vocabulary


def test_analogy_and_doesnt_match_mix_modalities(trained):
    out = trained.wv.most_similar(positive=["img:0", "class1"], negative=["class0"], topn=3)
    assert len(out) == 3
    assert trained.wv.doesnt_match(["img:0", "img:10", "img:20", "class5"]) in {"img:0", "img:10", "img:20", "class5"}


# ---------------------------------------------------------------------------- freezing
def _snapshot(m):
    return m.wv.vectors.copy(), m.syn1neg.copy(), m.W.copy()


def test_frozen_words_and_frozen_W_stay_bit_identical(plain):
    docs = plain.docs[:400]
    m = Im2Vec(docs, image_features=plain.features, epochs=1, train_words=False, **SMALL)
    words = np.flatnonzero(m._vocab_image_rows < 0)
    before = _snapshot(m)
    m.train(docs, total_examples=len(docs), epochs=2)
    after = _snapshot(m)
    assert np.array_equal(before[0][words], after[0][words])
    assert not np.array_equal(before[2], after[2])  # W learned
    m.train_words, m.train_images = True, False
    before = _snapshot(m)
    m.train(docs, total_examples=len(docs), epochs=2)
    after = _snapshot(m)
    assert np.array_equal(before[2], after[2])
    assert not np.array_equal(before[0][words], after[0][words])
    m.train_words, m.train_images, m.train_outputs = False, False, False
    before = _snapshot(m)
    m.train(docs, total_examples=len(docs), epochs=1)
    after = _snapshot(m)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_determinism_with_one_worker(plain):
    docs = plain.docs[:500]
    a = Im2Vec(docs, image_features=plain.features, epochs=2, **SMALL)
    b = Im2Vec(docs, image_features=plain.features, epochs=2, **SMALL)
    assert np.array_equal(a.wv.vectors, b.wv.vectors)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.syn1neg, b.syn1neg)
    c = Im2Vec(docs, image_features=plain.features, epochs=2, **{**SMALL, "seed": 2})
    assert not np.array_equal(a.W, c.W)


def test_loss_is_the_exact_sum_of_job_losses_with_two_workers(plain, monkeypatch):
    seen = []
    real = K.train_job

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out[0])
        return out

    monkeypatch.setattr(K, "train_job", spy)
    docs = plain.docs * 3
    m = Im2Vec(docs, image_features=plain.features, epochs=2, compute_loss=True, batch_words=500,
               **{**SMALL, "workers": 2})
    assert len(seen) > 20
    assert m.get_latest_training_loss() == pytest.approx(sum(seen), rel=1e-12)
    assert m.get_latest_training_loss() > 1e4  # not saturated at float32 precision


# ---------------------------------------------------------------------------- persistence
def test_save_load_mmap_continue_save_again(tmp_path, plain):
    docs = plain.docs[:300]
    m = Im2Vec(docs, image_features=plain.features, epochs=1, **SMALL)
    path = tmp_path / "m.model"
    m.save(str(path))
    assert (tmp_path / "m.model.W.npy").exists() and (tmp_path / "m.model.image_vectors.npy").exists()
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    loaded = Im2Vec.load(str(path), mmap="r")
    assert isinstance(loaded.W, np.memmap) and isinstance(loaded.image_vectors, np.memmap)
    assert loaded.image_keys == m.image_keys
    assert np.array_equal(loaded.wv["img:3"], m.wv["img:3"])
    assert loaded.predict_tags(plain.test_features[0], topn=3) == m.predict_tags(plain.test_features[0], topn=3)
    W0 = np.array(loaded.W)
    loaded.train(docs, total_examples=len(docs), epochs=1)
    assert not np.array_equal(W0, loaded.W)
    assert isinstance(loaded.image_vectors, np.memmap)  # features stay memory-mapped
    loaded.save(str(tmp_path / "m2.model"))
    again = Im2Vec.load(str(tmp_path / "m2.model"))
    assert np.array_equal(again.W, loaded.W)
    np.testing.assert_allclose(again.wv["img:3"], loaded.project(plain.features["img:3"]), rtol=1e-5, atol=1e-6)


def test_word2vec_format_holds_words_and_images(tmp_path, trained):
    path = tmp_path / "vectors.txt"
    trained.wv.save_word2vec_format(str(path))
    head = path.read_text().splitlines()
    assert head[0] == f"{len(trained.wv)} 32"
    keys = {line.split(" ", 1)[0] for line in head[1:]}
    assert "img:7" in keys and "class3" in keys


# ---------------------------------------------------------------------------- two-stage
def test_from_word2vec_two_stage(plain):
    text = [d[1:] for d in plain.docs] * 2 + [["onlytext", "prose"]] * 5
    w2v = Word2Vec(text, vector_size=24, sg=1, min_count=1, epochs=3, workers=1, seed=1)
    image_docs = [d + ["newtag"] if i % 10 == 0 else d for i, d in enumerate(plain.docs)]
    m = Im2Vec.from_word2vec(w2v, image_features=plain.features, sentences=image_docs, epochs=10)
    assert m.train_words is False
    for w in ("class1", "tag3"):
        assert np.array_equal(m.wv[w], w2v.wv[w])  # frozen word vectors
    assert "newtag" in m.wv and "img:5" in m.wv and m.is_image("img:5")
    acc = np.mean([p[0][0] == plain.class_words[y]
                   for p, y in zip(m.predict_tags(plain.test_features, topn=1), plain.test_labels)])
    assert acc >= 0.9, acc
    everything = m.predict_tags(plain.test_features[0], topn=len(m.wv), vocabulary="words")
    tags_only = m.predict_tags(plain.test_features[0], topn=len(m.wv))
    assert "onlytext" in dict(everything) and "onlytext" not in dict(tags_only)
    assert len(tags_only) == len(m.image_tag_counts)
    # update=True adds more images/tags later
    more = [["img:1500", "class0", "brandnew"]]
    m.build_vocab(more, update=True)
    assert "brandnew" in m.wv and "img:1500" in m.image_keys


def test_image_tokens_survive_min_count_max_final_vocab_and_trim_rule(plain):
    docs = plain.docs[:200]  # each image once, class words 20 times, distractor tags ~12 times
    drop_images = lambda w, c, mc: utils.RULE_DISCARD if w.startswith("img:") else utils.RULE_DEFAULT  # noqa: E731
    m = Im2Vec(docs, image_features=plain.features, epochs=1, vector_size=16, min_count=15, trim_rule=drop_images,
               workers=1)
    assert len(m.image_keys) == 200
    assert set(plain.class_words) <= set(m.word_keys)
    assert min(m.wv.get_vecattr(w, "count") for w in m.word_keys) >= 15
    m = Im2Vec(docs, image_features=plain.features, epochs=1, vector_size=16, min_count=1, max_final_vocab=12,
               workers=1)
    assert len(m.image_keys) == 200
    assert 10 <= len(m.word_keys) <= 12


# ---------------------------------------------------------------------------- text only
def test_text_only_goes_through_the_same_kernel_and_learns(monkeypatch):
    calls = []
    real = K.train_job
    monkeypatch.setattr(K, "train_job", lambda *a, **k: calls.append(1) or real(*a, **k))
    from gensim.test.utils import common_texts
    m = Im2Vec(common_texts * 20, vector_size=10, min_count=1, epochs=5, workers=1)
    assert calls and m.W is None and m.image_keys == []
    assert m.wv.most_similar("graph", topn=1)


# ---------------------------------------------------------------------------- bad input
def test_missing_image_features_raise_or_skip(plain, caplog):
    docs = plain.docs[:50] + [["img:nofeat", "class1"], ["img:gone", "tag1"]]
    with pytest.raises(ValueError, match=r"2 image token\(s\) have no features.*img:nofeat"):
        Im2Vec(docs, image_features=plain.features, **SMALL)
    with caplog.at_level(logging.WARNING):
        m = Im2Vec(docs, image_features=plain.features, missing_images="skip", epochs=1, **SMALL)
    assert "img:nofeat" not in m.wv and "class1" in m.wv
    assert sum("dropped 2 image token(s)" in r.message for r in caplog.records) == 1
    with pytest.raises(ValueError, match="have no features"):
        Im2Vec([["img:1", "a"]], **SMALL)


@pytest.mark.parametrize("features, match", [
    ({"img:0": np.array([1.0, np.nan]), "img:1": np.ones(2)}, r"NaN or inf: 'img:0'"),
    ({"img:0": np.ones(2), "img:1": np.array([np.inf, 0])}, r"NaN or inf: 'img:1'"),
    ({"img:0": np.zeros(3), "img:1": np.ones(3)}, r"all zeros: 'img:0'"),
    ({"img:0": np.ones(3), "img:1": np.ones(4)}, r"mismatched feature dimensions.*'img:1' has 4"),
    ({"img:0": np.ones((2, 2))}, r"'img:0' must be a 1-D vector"),
    ((["img:0"], np.ones(3)), r"expected a 2-D array.*reshape"),
    ((["img:0", "img:1"], np.ones((3, 2))), r"2 keys for 3 feature rows"),
    ((["img:0", "img:0"], np.ones((2, 2))), r"duplicate image key 'img:0'"),
    ({}, r"mapping is empty"),
    ([1, 2, 3], r"expected a \{key: vector\} mapping"),
])
def test_bad_features_name_the_culprit(features, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Im2Vec([["img:0", "a", "b"]], image_features=features, **SMALL)


def test_bad_arguments():
    feats = {"img:0": np.ones(3)}
    with pytest.raises(ValueError, match="hs=1 with images"):
        Im2Vec(image_features=feats, hs=1, negative=0)
    with pytest.raises(ValueError, match="batch_words=20000 is larger than 10000"):
        Im2Vec(batch_words=20000)
    with pytest.raises(ValueError, match="corpus_file"):
        Im2Vec(corpus_file="x.txt")
    with pytest.raises(ValueError, match="image_negatives"):
        Im2Vec(image_negatives="words")
    with pytest.raises(ValueError, match="image_alpha"):
        Im2Vec(image_alpha=0)
    with pytest.raises(ValueError, match="missing_images"):
        Im2Vec(missing_images="ignore")


def test_hs_text_only_delegates_to_gensim():
    from gensim.test.utils import common_texts
    m = Im2Vec(common_texts, hs=1, negative=0, vector_size=8, min_count=1, epochs=2, workers=1)
    assert m.wv.vectors.shape == (12, 8)
    m2 = Im2Vec(image_features={"img:0": np.ones(3)}, hs=0, negative=5, vector_size=8, min_count=1)
    m2.hs = 1
    with pytest.raises(ValueError, match="hs=1 with images"):
        m2.build_vocab([["img:0", "a"]])


def test_vectors_lockf_is_validated(plain):
    docs = plain.docs[:50]
    m = Im2Vec(docs, image_features=plain.features, epochs=1, **SMALL)
    m.wv.vectors_lockf = np.ones(len(m.wv), dtype=np.float64)
    with pytest.raises(TypeError, match="vectors_lockf must be a 1-D float32 array.*float64"):
        m.train(docs, total_examples=len(docs), epochs=1)
    m.wv.vectors_lockf = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match="vectors_lockf has length 3"):
        m.train(docs, total_examples=len(docs), epochs=1)


def test_projection_input_is_checked(trained):
    with pytest.raises(ValueError, match="expected features of dim 64, got 5"):
        trained.project(np.ones(5))
    with pytest.raises(ValueError, match="NaN or inf"):
        trained.predict_tags(np.full(64, np.nan))
    with pytest.raises(ValueError, match="all zeros"):
        trained.project(np.zeros((2, 64)))


def test_update_with_features_of_another_dimension_is_refused(plain):
    m = Im2Vec(plain.docs[:20], image_features=plain.features, epochs=1, **SMALL)
    with pytest.raises(ValueError, match="expected features of dim 64"):
        m.build_vocab([["img:x", "a"]], update=True, image_features={"img:x": np.ones(10)})
    with pytest.raises(ValueError, match="lack 20 image"):
        m.build_vocab([["img:x", "a"]], update=True, image_features={"img:x": np.ones(64)})
    assert m.features.dim == 64 and m.image_keys  # nothing half-built


def test_long_documents_are_split_not_cut():
    doc = [f"w{i % 50}" for i in range(25_000)]
    m = Im2Vec(vector_size=8, min_count=1, sample=0, workers=1, epochs=1)
    m.build_vocab([doc])
    effective, raw = m.train([doc], total_examples=1, epochs=1)
    assert (effective, raw) == (25_000, 25_000)


def test_missing_kernel_says_how_to_build_it():
    import subprocess
    import sys

    code = ("import sys; sys.modules['gensim_im2vec.im2vec_inner'] = None\n"
            "try:\n    import gensim_im2vec.model\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "compiled kernel" in out and "build_ext --inplace" in out and "pip install -e ." in out


def test_image_batch_cuts_jobs_into_runs_of_images(plain):
    m = Im2Vec(image_features=plain.features, image_batch=100, **SMALL)
    docs = plain.docs[:1000] + [["img:0", "class0", "img:0"]]  # one image twice in the last run
    m.build_vocab(docs)
    wv = m.wv

    def prepare(limit):
        return K.prepare_job(docs, wv.key_to_index, wv.expandos["sample_int"], m._vocab_image_rows, False,
                             m.window, False, 1, max_images=limit)

    tokens, slots, bounds, rwin, rows, runs, _ = prepare(100)
    assert len(runs) == 12 and runs[0].tolist() == [0, 0, 0]  # 10 runs of 100 images, then the tail
    assert runs[-1].tolist() == [len(tokens), len(bounds) - 1, len(rows)]
    for (t0, b0, r0), (t1, b1, r1) in zip(runs[:-1], runs[1:]):
        s = slots[t0:t1]
        assert bounds[b0] == t0 and bounds[b1] == t1  # runs end at document ends
        assert s.max() == r1 - r0 - 1 and s[s >= 0].min() == 0  # slots are local to their run
        assert [rows[r0 + x] for x in s[s >= 0]] == [m._vocab_image_rows[t] for t in tokens[t0:t1][s >= 0]]
    assert runs[-1][2] - runs[-2][2] == 1 and np.count_nonzero(slots[runs[-2][0]:] >= 0) == 2  # shared slot
    whole = prepare(0)
    assert len(whole[5]) == 2 and np.array_equal(whole[0], tokens)  # one run: the same tokens
    with pytest.raises(ValueError, match="image_batch"):
        Im2Vec(image_batch=-1)


def test_document_context_reaches_tags_outside_the_window(plain):
    """A tag far from its image (window=1) is still learned as its tag in document mode only."""
    rng = np.random.default_rng(0)
    docs = [d[:1] + [f"filler{int(i)}" for i in rng.integers(0, 300, 6)] + d[1:2]
            for d in plain.docs]  # the class word stands 7 tokens from its image
    accs = {}
    for mode in ("document", "window"):
        m = Im2Vec(docs, image_features=plain.features, window=1, epochs=10, sample=0, image_context=mode,
                   **{**SMALL, "workers": 2})
        preds = m.predict_tags(plain.test_features, topn=1)
        accs[mode] = np.mean([p[0][0] == plain.class_words[y] for p, y in zip(preds, plain.test_labels)])
    assert accs["document"] >= 0.9 and accs["window"] < 0.5, accs


def test_calibrated_scores_add_the_log_negative_prior(trained, plain):
    raw, words = trained.tag_scores(plain.test_features[:5])
    cal, words2 = trained.tag_scores(plain.test_features[:5], calibrated=True)
    idx, logp = trained.negative_log_prior()
    assert words == words2 and len(idx) == len(words)
    np.testing.assert_allclose(cal - raw, np.broadcast_to(logp, raw.shape), rtol=1e-5, atol=1e-5)
    counts = np.array([trained.image_tag_counts.get(w, 0) for w in words], dtype=float)
    seen = counts > 0
    expected = 0.75 * np.log(counts[seen]) - np.log(np.sum(counts[seen] ** 0.75))
    np.testing.assert_allclose(logp[seen], expected, atol=1e-3)
    top = trained.predict_tags(plain.test_features[0], topn=3, calibrated=True)
    assert len(top) == 3 and all(0 < p <= 1 for _, p in top)


def test_memory_mapped_features_are_checked_only_where_the_vocabulary_uses_them(tmp_path):
    arr = np.ones((5, 4), dtype=np.float32)
    arr[4] = np.nan  # an image no document mentions
    np.save(tmp_path / "f.npy", arr)
    mm = np.load(tmp_path / "f.npy", mmap_mode="r")
    keys = [f"img:{i}" for i in range(5)]
    m = Im2Vec([["img:0", "a", "b"], ["img:1", "b", "c"]] * 5, image_features=(keys, mm), epochs=1, **SMALL)
    assert len(m.image_keys) == 2
    with pytest.raises(ValueError, match=r"NaN or inf: 'img:4'"):
        Im2Vec([["img:4", "a", "b"]], image_features=(keys, mm), **SMALL)


# ---------------------------------------------------------------------------- zero-shot through the word space
@pytest.fixture(scope="module")
def two_stage_zero_shot():
    """Two-stage: `class<c>_r1` co-occurs with `class<c>` in the text only, never with an image."""
    data = make_corpus(n_classes=8, n_images=800, n_features=32, n_related=2, n_test=160,
                       n_text_sentences=3000, seed=5)
    unseen = {f"class{c}_r1" for c in range(8)}
    text = [d for d in data.docs if not d[0].startswith("img:")]
    images = [[w for w in d if w not in unseen] for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=24, sg=1, min_count=1, epochs=10, workers=1, seed=1)
    model = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images, epochs=15, sample=0)
    return data, unseen, model


def test_expected_tag_vectors_are_the_posterior_mean_of_centred_tag_vectors(two_stage_zero_shot):
    data, _, m = two_stage_zero_shot
    x = data.test_features[:4]
    got = m.expected_tag_vectors(x)
    # independent recomputation from the public calibrated scores and the word vectors
    scores, words = m.tag_scores(x, calibrated=True)
    tags = [j for j, w in enumerate(words) if w in m.image_tag_counts]
    s = scores[:, tags].astype(np.float64)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    unit = {w: m.wv[w] / np.linalg.norm(m.wv[w]) for w in m.word_keys}
    mean = np.mean(list(unit.values()), axis=0)
    want = p @ np.stack([unit[words[j]] - mean for j in tags])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert got.shape == (4, m.vector_size) and got.dtype == np.float32
    np.testing.assert_allclose(m.expected_tag_vectors(x[0])[0], got[0], atol=1e-6)  # one image = a row


def test_words_never_seen_with_an_image_are_ranked_through_the_word_space(two_stage_zero_shot):
    data, unseen, m = two_stage_zero_shot
    assert unseen.isdisjoint(m.image_tag_counts) and unseen <= set(m.word_keys)
    preds = m.predict_tags(data.test_features, topn=1, vocabulary="unseen")
    hits = np.mean([p[0][0] == f"class{y}_r1" for p, y in zip(preds, data.test_labels)])
    assert hits >= 0.8, hits  # 8 unseen words, so chance is 1/8 at best
    scores, cols_words = m.zero_shot_scores(data.test_features[:3], sorted(unseen))
    assert cols_words == sorted(unseen) and scores.shape == (3, 8) and np.all(np.abs(scores) <= 1 + 1e-5)


def test_zero_shot_inputs_are_checked(two_stage_zero_shot, plain):
    data, _, m = two_stage_zero_shot
    with pytest.raises(KeyError, match="nosuchword"):
        m.zero_shot_scores(data.test_features[:1], ["class0_r1", "nosuchword"])
    with pytest.raises(KeyError, match="img:0"):
        m.zero_shot_scores(data.test_features[:1], ["img:0"])
    with pytest.raises(TypeError, match=r"\['class0_r1'\]"):
        m.zero_shot_scores(data.test_features[:1], "class0_r1")
    with pytest.raises(ValueError, match="'unseen'"):
        m.predict_tags(data.test_features[0], vocabulary="zero-shot")
    with pytest.raises(ValueError, match="n_features|dimension|features"):
        m.expected_tag_vectors(np.ones(5))
    text_only = Im2Vec([["a", "b", "c"]] * 20, image_features={"img:x": np.ones(4)}, min_count=1, workers=1,
                       vector_size=8, epochs=1)
    with pytest.raises(ValueError, match="no tag vocabulary"):
        text_only.expected_tag_vectors(np.ones(4))


def test_word_readout_is_the_ridge_map_from_image_vectors_to_their_words(two_stage_zero_shot, tmp_path):
    data, unseen, m = two_stage_zero_shot
    r = m.word_readout  # fitted by train() (from_word2vec trains on the image documents)
    docs = [d for d in data.docs if d[0].startswith("img:")]
    assert r is not None and r["n_images"] == len(docs) and r["alpha"] == 1.0
    # independent least squares from the model's public pieces
    H = m.project(np.stack([data.features[d[0]] for d in docs])).astype(np.float64)
    unit = lambda w: m.wv[w] / np.linalg.norm(m.wv[w])  # noqa: E731
    Y = np.stack([np.mean([unit(w) for w in d[1:] if w not in unseen], axis=0) for d in docs])
    Hc, Yc = H - H.mean(0), Y - Y.mean(0)
    A = np.linalg.solve(Hc.T @ Hc + np.eye(H.shape[1]), Hc.T @ Yc)
    np.testing.assert_allclose(r["A"], A, atol=2e-4)
    np.testing.assert_allclose(r["h_mean"], H.mean(0), atol=1e-4)
    # readout vectors: the map applied and centred on the mean unit word vector, unit rows
    x = data.test_features[:3]
    mean = np.mean([unit(w) for w in m.word_keys], axis=0)
    want = (m.project(x) - H.mean(0)) @ A + Y.mean(0) - mean
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(m.readout_vectors(x), want, atol=1e-3)
    # neighbour targets: each training image's word centroid, kept in vocabulary order
    assert r["neighbours"] == 10
    vocab = np.array([m.wv.key_to_index[d[0]] for d in docs])
    order = np.argsort(vocab)
    np.testing.assert_array_equal(m.neighbour_index, vocab[order])
    np.testing.assert_allclose(m.neighbour_targets, Y[order], atol=1e-5)
    # the vote: mean target of the 10 training images nearest by cosine of h, centred, unit rows
    unit_rows = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    nearest = np.argsort(-(unit_rows(m.project(x)) @ unit_rows(H).T), axis=1)[:, :10]
    vote = unit_rows(Y[nearest].mean(axis=1) - mean)
    np.testing.assert_allclose(m.neighbour_vectors(x), vote, atol=1e-4)
    # a training image finds itself first: with one neighbour, its vote is its own words
    m.word_readout["neighbours"] = 1
    try:
        np.testing.assert_allclose(m.neighbour_vectors(data.features[docs[7][0]])[0], unit_rows(Y[7:8] - mean)[0],
                                   atol=1e-4)
    finally:
        m.word_readout["neighbours"] = 10
    three = m.expected_tag_vectors(x) + m.readout_vectors(x) + vote
    np.testing.assert_allclose(m.zero_shot_vectors(x), unit_rows(three), atol=1e-4)
    # it is saved with the model
    m.save(str(tmp_path / "zs.model"))
    again = Im2Vec.load(str(tmp_path / "zs.model"), mmap="r")
    np.testing.assert_allclose(again.zero_shot_vectors(x), m.zero_shot_vectors(x), atol=1e-6)


def test_neighbour_targets_are_a_fixed_bounded_sample_averaged_over_documents(two_stage_zero_shot, monkeypatch):
    data, unseen, m = two_stage_zero_shot
    for name in ("word_readout", "neighbour_index", "neighbour_targets"):  # refits below are undone after the test
        monkeypatch.setattr(m, name, getattr(m, name))
    docs = [[w for w in d if w not in unseen] for d in data.docs if d[0].startswith("img:")]
    docs.append([docs[0][0], "class7", "class7"])  # the first image in a second document
    unit = lambda w: m.wv[w] / np.linalg.norm(m.wv[w])  # noqa: E731
    centroid = lambda d: np.mean([unit(w) for w in d[1:]], axis=0)  # noqa: E731
    m.fit_word_readout(docs)
    assert m.word_readout["neighbour_images"] == len(docs) - 1 == len(m.neighbour_index)
    first = int(np.searchsorted(m.neighbour_index, m.wv.key_to_index[docs[0][0]]))
    np.testing.assert_allclose(m.neighbour_targets[first], (centroid(docs[0]) + centroid(docs[-1])) / 2, atol=1e-5)
    # at most 50 images, the same 50 whatever the order and the chunking (merged every 50 rows here)
    m.fit_word_readout(docs, max_neighbour_images=50, chunk=16)
    small, targets = m.neighbour_index.copy(), m.neighbour_targets.copy()
    assert len(small) == 50 == m.word_readout["neighbour_images"] and np.all(np.diff(small) > 0)
    m.fit_word_readout(docs[::-1], max_neighbour_images=50)
    np.testing.assert_array_equal(m.neighbour_index, small)
    np.testing.assert_allclose(m.neighbour_targets, targets, atol=1e-6)
    by_key = {m.wv.key_to_index[d[0]]: centroid(d) for d in docs[1:-1]}
    for i, row in zip(small, targets):
        if i != m.wv.key_to_index[docs[0][0]]:
            np.testing.assert_allclose(row, by_key[i], atol=1e-5)
    assert m.word_readout["n_images"] == len(docs)  # the readout itself still sees every image
    with pytest.raises(ValueError, match="max_neighbour_images"):
        m.fit_word_readout(docs, max_neighbour_images=0)


def test_words_added_to_a_frozen_word_space_have_no_place_among_the_words(two_stage_zero_shot):
    """Two-stage with frozen words: a tag the text never saw keeps its random initial vector, so it
    is neither a target of the readout, the expected tag vector or the vote, nor rankable."""
    data, unseen, _ = two_stage_zero_shot
    text = [d for d in data.docs if not d[0].startswith("img:")]
    images = [[w for w in d if w not in unseen] + ["brandnew"] for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=24, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images, epochs=2, sample=0)
    assert "brandnew" in m.word_keys and "brandnew" not in m.word_space_keys
    assert set(m.word_space_keys) == set(w2v.wv.index_to_key)
    assert "brandnew" not in words_only(m, word_space=True).key_to_index and "brandnew" in words_only(m).key_to_index
    unit = lambda w: m.wv[w] / np.linalg.norm(m.wv[w])  # noqa: E731
    first = m.wv.key_to_index[images[0][0]]
    row = int(np.searchsorted(m.neighbour_index, first))
    want = np.mean([unit(w) for w in images[0][1:-1]], axis=0)  # its words, without "brandnew"
    np.testing.assert_allclose(m.neighbour_targets[row], want, atol=1e-5)
    scores, words = m.zero_shot_scores(data.test_features[:2], ["brandnew", "class0_r1"])
    assert words == ["brandnew", "class0_r1"]
    assert np.all(scores[:, 0] == -np.inf) and np.all(np.isfinite(scores[:, 1]))
    # train_words="new": the added words learn, and join the word space
    learnt = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images[:200], epochs=1, sample=0,
                                  train_words="new")
    assert "brandnew" in learnt.word_space_keys
    # what was trained stays placed when the words are frozen afterwards; words added then do not
    joint = Im2Vec(images[:200], image_features=data.features, min_count=1, workers=1, vector_size=8, epochs=1)
    joint.train_words = False
    assert set(joint.word_space_keys) == set(joint.word_keys)
    joint.build_vocab([["img:0", "laterword"]] * 3, update=True)
    joint.train([["img:0", "laterword"]] * 3, total_examples=3, epochs=1)
    assert "laterword" in joint.word_keys and "laterword" not in joint.word_space_keys
    # frozen words that were never pretrained: nothing has a place, and the error says how to fix it
    frozen = Im2Vec(images[:200], image_features=data.features, train_words=False, min_count=1, workers=1,
                    vector_size=8, epochs=1)
    with pytest.raises(ValueError, match="from_word2vec"):
        frozen.zero_shot_vectors(data.test_features[0])


def test_without_a_readout_zero_shot_falls_back_to_the_expected_tag_vector(plain):
    m = Im2Vec(plain.docs[:300], image_features=plain.features, word_readout=None, epochs=2, **SMALL)
    assert m.word_readout is None
    x = plain.test_features[:2]
    np.testing.assert_array_equal(m.zero_shot_vectors(x), m.expected_tag_vectors(x))
    with pytest.raises(ValueError, match="fit_word_readout"):
        m.readout_vectors(x)
    m.fit_word_readout(plain.docs[:300], alpha=0.5, neighbours=0)
    assert m.word_readout["n_images"] == 300 and m.word_readout["alpha"] == 0.5
    assert m.neighbour_targets is None and m.neighbour_index is None  # no vote, nothing kept
    both = m.expected_tag_vectors(x) + m.readout_vectors(x)
    np.testing.assert_allclose(m.zero_shot_vectors(x), both / np.linalg.norm(both, axis=1, keepdims=True), atol=1e-5)
    with pytest.raises(ValueError, match="neighbours=10"):
        m.neighbour_vectors(x)
    with pytest.raises(ValueError, match="neighbours must be an int >= 0"):
        m.fit_word_readout(plain.docs[:10], neighbours=-1)
    with pytest.raises(ValueError, match="image documents"):
        m.fit_word_readout([["class1", "tag2"], ["img:0"]])  # no image with a word
    with pytest.raises(ValueError, match="alpha"):
        m.fit_word_readout(plain.docs[:10], alpha=0)
    with pytest.raises(ValueError, match="word_readout"):
        Im2Vec(word_readout=-1.0)


def test_zero_shot_never_normalises_the_image_rows(two_stage_zero_shot, monkeypatch):
    """At 100M images a normalised copy of wv.vectors would be the size of the model again."""
    data, unseen, m = two_stage_zero_shot
    before = m.zero_shot_scores(data.test_features[:2], sorted(unseen))[0]

    def refuse():
        raise AssertionError("get_normed_vectors() copies every image row")

    monkeypatch.setattr(m.wv, "get_normed_vectors", refuse)
    monkeypatch.setattr(m, "word_readout", m.word_readout)  # the refit below is undone after the test
    m.fit_word_readout([d for d in data.docs if d[0].startswith("img:")][:200])
    after = m.zero_shot_scores(data.test_features[:2], sorted(unseen))[0]
    assert after.shape == before.shape and np.all(np.isfinite(after))
