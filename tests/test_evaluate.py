"""Evaluation: the model's scorer and the baselines on a corpus with a known answer, the space's checks,
word similarity, the report and the `im2vec evaluate` command (metrics: test_metrics.py; baselines on
hand-made data: test_baselines.py)."""

import json
import logging
import math

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import Word2Vec
from gensim.test.utils import datapath
from gensim.utils import simple_preprocess

from gensim_im2vec import Im2Vec
from gensim_im2vec import evaluate as ev
from gensim_im2vec.synthetic import make_corpus


# ---------------------------------------------------------------------------- zero-shot restriction
def test_zero_shot_scope_restricts_the_same_scores_to_the_held_out_tags():
    cands = ["a", "b", "c"]
    true = [["a", "z1"], ["b"], ["z2", "c"]]
    feats = np.ones((3, 2), dtype=np.float32)

    def scorer(x, candidates):  # ranks zero-shot tags perfectly, the others badly
        out = np.zeros((len(x), len(candidates)), dtype=np.float32)
        for i, tags in enumerate(true):
            for j, c in enumerate(candidates):
                out[i, j] = (10.0 if c in tags and c.startswith("z") else 0.0) + (-1.0 if c in tags else 0.0)
        return out

    res = ev.evaluate_image_tagging(scorer, feats, true, cands, zero_shot=["z1", "z2"])
    assert res["zero_shot"]["n_candidates"] == 2 and res["zero_shot"]["n_images"] == 2  # image 1 has none
    assert res["zero_shot"]["map"] == 1.0 and res["zero_shot"]["p@1"] == 1.0 and res["zero_shot"]["tag_map"] == 1.0
    assert res["seen"]["n_candidates"] == 3 and res["seen"]["map"] < 0.5  # seen tags are ranked last
    assert res["all"]["n_candidates"] == 5  # zero-shot tags were appended to the candidates


# ---------------------------------------------------------------------------- scorers on a known answer
ZS = {f"class{c}_r1" for c in range(8)}


@pytest.fixture(scope="module")
def setup():
    data = make_corpus(n_classes=8, n_images=800, n_features=32, n_related=2, n_test=160,
                       n_text_sentences=1500, seed=3)
    img = [d for d in data.docs if d[0].startswith("img:")]
    text = [d for d in data.docs if not d[0].startswith("img:")]
    train_docs = [[w for w in d if w not in ZS] for d in img]  # zero-shot tags only in the text
    model = Im2Vec(train_docs + text, image_features=data.features, vector_size=24, sg=1, min_count=1,
                   epochs=12, sample=0, image_alpha=4.0, workers=1, seed=1)
    rng = np.random.default_rng(7)
    test_tags = [[f"class{c}"] + [f"class{c}_r{k}" for k in range(2) if rng.random() < 0.5]
                 + [f"tag{int(t)}" for t in rng.integers(0, 50, size=2)] for c in data.test_labels]
    train_keys = [d[0] for d in train_docs]
    return dict(data=data, model=model, train_docs=train_docs, text=text, test_tags=test_tags,
                cands=sorted({w for d in data.docs for w in d if not w.startswith("img:")}),
                train_keys=train_keys, train_tags=[d[1:] for d in train_docs],
                train_features=np.stack([data.features[k] for k in train_keys]))


@pytest.fixture(scope="module")
def report(setup):
    s = setup
    return ev.run_evaluation(s["model"], s["data"].test_features, s["test_tags"], s["cands"], zero_shot=sorted(ZS),
                             train_features=s["train_features"], train_tags=s["train_tags"],
                             train_keys=s["train_keys"], train_docs=s["train_docs"] + s["text"],
                             word_similarity=False, n_in_sample=200)


def test_a_model_unrelated_to_the_evaluation_data_is_warned_of(setup, caplog):
    """A model of other data (none of the candidate tags a word of it, none of the training images an
    image of it) scored near chance without a word but "0 of them are images of the model"."""
    s = setup
    other = make_corpus(n_classes=3, n_images=60, n_features=32, seed=9)
    docs = [["img:u" + d[0][4:], *("x" + w for w in d[1:])] for d in other.docs if d[0].startswith("img:")]
    unrelated = Im2Vec(docs, image_features={"img:u" + k[4:]: v for k, v in other.features.items()},
                       vector_size=8, min_count=1, epochs=1, workers=1, seed=1)
    args = (s["data"].test_features[:20], s["test_tags"][:20], s["cands"])
    train = dict(train_features=s["train_features"], train_tags=s["train_tags"], train_keys=s["train_keys"])
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.evaluate"):
        ev.run_evaluation(unrelated, *args, **train, baselines=(), word_similarity=False, n_in_sample=20)
    said = " ".join(caplog.text.split())
    assert f"0 of the {len(s['cands'])} candidate tags are words of the model" in said
    assert f"0 of the {len(s['train_keys'])} training images are images of the model" in said
    assert "its figures are near chance" in said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.evaluate"):  # the model of this data: no warning
        ev.run_evaluation(s["model"], *args, **train, baselines=(), word_similarity=False, n_in_sample=20)
    assert "near chance" not in caplog.text


def test_the_unrelated_warning_when_every_candidate_is_an_image_key(caplog):
    """Candidates that are all image keys of the model are in its vocabulary but no word of it: the
    warning says the count without an empty "(e.g. not )"."""
    from types import SimpleNamespace
    model = SimpleNamespace(wv=SimpleNamespace(key_to_index={"img:a": 0, "img:b": 1, "cat": 2}),
                            is_image=lambda k: k.startswith("img:"))
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.evaluate"):
        ev._warn_unrelated(model, ["img:a", "img:b"], {})
    said = " ".join(caplog.text.split())
    assert "only 0 of the 2 candidate tags are words of the model: the model" in said
    assert "e.g. not" not in said


def _chance_map(setup, scope):
    """mAP of a scorer that ties everything (the expectation of a random ranking)."""
    s = setup
    def flat(x, c):
        return np.zeros((len(x), len(c)))
    return ev.evaluate_image_tagging(flat, s["data"].test_features, s["test_tags"], s["cands"], sorted(ZS))[scope]["map"]


def _numpy_cosine(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T


def test_im2vec_scorer_is_the_numpy_cosine_in_model_wv(setup, monkeypatch):
    model, x = setup["model"], setup["data"].test_features[:5]

    def refuse():  # at 100M images a normalised copy of wv.vectors is the size of the model again
        raise AssertionError("get_normed_vectors() copies every image row")

    monkeypatch.setattr(model.wv, "get_normed_vectors", refuse)
    cands = ["class0", "nonexistent", "class3", "img:0", "tag7"]
    scorer = ev.Im2VecScorer(model)
    assert scorer.name == "Im2Vec (cosine in model.wv)"
    got = scorer(x, cands)
    assert got.shape == (5, 5) and got.dtype == np.float32
    want = _numpy_cosine(model.project(x), np.stack([model.wv[w] for w in ("class0", "class3", "tag7")]))
    np.testing.assert_allclose(got[:, [0, 2, 4]], want, atol=1e-5)
    assert np.all(np.isneginf(got[:, 1])) and np.all(np.isneginf(got[:, 3]))  # unknown, and an image: no word
    # a training image: its row of model.wv scores as its features do (one function)
    keys = setup["train_keys"][:4]
    rows = np.stack([model.wv[k] for k in keys])
    np.testing.assert_allclose(scorer.score_vectors(rows, cands), scorer(setup["train_features"][:4], cands),
                               atol=1e-5)
    # and ranks the words as gensim's most_similar does
    ranked = np.argsort(-scorer.score_vectors(rows[:1], model.word_keys)[0], kind="stable")[:5]
    assert [model.word_keys[j] for j in ranked] == [w for w, _ in model.most_similar_words(keys[0], topn=5)]


def test_supervised_references_are_near_perfect_on_seen_classes(report):
    for name in ("kNN (k=20)", "logistic (one-vs-rest)"):
        row = report.row(name)
        assert row.get("all", "p@1") >= 0.95, (name, row.metrics["all"])  # the class word on top
        # the random distractor tags of each test image are unpredictable, so mAP stays below 1
        assert row.get("seen", "map") > report.row("tag prior").get("seen", "map") + 0.2, name


def test_blind_baselines_are_exactly_at_chance_on_zero_shot_tags(setup, report):
    chance = _chance_map(setup, "zero_shot")
    for name in ("tag prior", "kNN (k=20)", "logistic (one-vs-rest)"):
        assert report.row(name).get("zero_shot", "map") == pytest.approx(chance), name


def test_prior_low_random_near_chance_ridge_decent(setup, report):
    chance = _chance_map(setup, "all")
    prior, rand, ridge = report.row("tag prior"), report.row("random W"), report.row("ridge → tag vectors")
    assert prior.get("all", "p@1") <= 0.3 and prior.get("all", "map") < 0.4
    assert abs(rand.get("all", "map") - chance) < 0.1, (rand.get("all", "map"), chance)
    assert ridge.get("all", "map") > chance + 0.2 and ridge.get("zero_shot", "map") > chance + 0.2
    assert report.row("kNN (k=20)").get("all", "map") > prior.get("all", "map") + 0.3


def test_im2vec_beats_prior_and_random_w_and_ranks_unseen_tags(setup, report):
    chance_zs = _chance_map(setup, "zero_shot")
    assert [r.method for r in report.rows if r.method.startswith("Im2Vec")] == ["Im2Vec (cosine in model.wv)"]
    row = report.row("Im2Vec (cosine in model.wv)")
    for base in ("tag prior", "random W"):
        assert row.get("all", "map") > report.row(base).get("all", "map") + 0.2, base
        assert row.get("all", "p@5") > report.row(base).get("all", "p@5"), base
    assert row.get("zero_shot", "map") > chance_zs + 0.2
    assert row.get("all", "p@1") >= 0.7  # a true tag on top, by cosine alone (tag prior: <= 0.3)


def test_id_token_word2vec_is_not_applicable_to_held_out_images(setup, report):
    row = report.row("id-token Word2Vec")
    assert not row.applicable and "cannot place unseen images" in row.note
    assert row.get("all", "map") is None
    # free id vectors trained in their own documents know those documents' tags: far above what tag
    # popularity gives (measured: 0.330 against the prior's 0.157)
    assert row.get("in_sample", "map") > report.row("tag prior").get("all", "map") + 0.1
    assert row.metrics["in_sample"]["n_images"] == 200
    with pytest.raises(ev.NotApplicableError):
        ev.IdTokenWord2VecScorer(Word2Vec([["a", "b"]], min_count=1, vector_size=4))(np.ones((1, 2)), ["a"])


def test_logistic_joint_solver_matches_scikit_learn(setup):
    s = setup
    x, tags = s["train_features"][:300], s["train_tags"][:300]
    joint = ev.LogisticScorer.fit(x, tags, C=0.5, max_iter=500, tol=1e-7)
    ref = ev.LogisticScorer.fit(x, tags, C=0.5, max_iter=500, backend="sklearn")
    assert joint.tags == ref.tags
    a, b = joint.decision_function(s["data"].test_features), ref.decision_function(s["data"].test_features)
    assert np.abs(a - b).max() < 0.05 * np.abs(b).max(), np.abs(a - b).max()


# ---------------------------------------------------------------------------- report
def test_report_table_and_json(tmp_path, report):
    text = report.format_table()
    lines = text.splitlines()
    header = next(ln for ln in lines if ln.startswith("method"))
    for col in ("P@1", "P@5", "R@10", "mAP", "tag→img", "ZS mAP"):
        assert col in header
    row_lines = [ln for ln in lines if ln.startswith("Im2Vec (cosine in model.wv)")]
    assert row_lines and header.index("mAP") < len(row_lines[0])
    assert "cannot place unseen images" in text and "—" in text
    path = tmp_path / "eval.json"
    report.save_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    names = [r["method"] for r in data["image_tagging"]]
    assert names[0] == "Im2Vec (cosine in model.wv)" and "kNN (k=20)" in names
    assert not any(n.startswith("Im2Vec") for n in names[1:])
    assert data["image_tagging"][0]["metrics"]["all"]["map"] == pytest.approx(report.rows[0].get("all", "map"))
    assert data["info"]["n_zero_shot_tags"] == len(ZS)
    assert data["space"]["one_space"]["n"] == 200 and data["targets"] == report.targets()


def test_run_evaluation_without_training_split_skips_with_the_reason(setup):
    s = setup
    rep = ev.run_evaluation(s["model"], s["data"].test_features[:20], s["test_tags"][:20], s["cands"],
                            baselines=("random", "prior"), word_similarity=False)
    assert rep.row("tag prior").note.startswith("skipped: needs train_features")
    with pytest.raises(ValueError, match="unknown baselines"):
        ev.run_evaluation(s["model"], s["data"].test_features, s["test_tags"], s["cands"], baselines=("svm",))


# ---------------------------------------------------------------------------- the space's own checks, by hand
def test_neighbour_tag_agreement_counts_neighbours_sharing_a_tag():
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    base = np.array([[1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 0.9]])
    base_tags = [["cat"], ["dog", "pet"], ["car"], ["car", "red"]]
    # query 0: nearest two are base 0 (cat) and 1 (dog) -> 1 of 2; query 1: base 2, 3 (car, car) -> 2 of 2
    # query 2 has no tag: left out
    assert ev.neighbour_tag_agreement(q, [["cat"], ["car"], []], base, base_tags, k=2) == pytest.approx(3 / 4)
    # k=1: query 0's nearest is base 1 (cosine 1.0 beats base 0's 0.995), query 1's is base 2
    assert ev.neighbour_tag_agreement(q[:2], [["pet"], ["red"]], base, base_tags, k=1) == pytest.approx(1 / 2)
    assert ev.neighbour_tag_agreement(q[:2], [["cat"], ["red"]], base, base_tags, k=1) == 0.0
    assert ev.neighbour_tag_agreement(q[:2], [["cat"], ["red"]], base, base_tags, k=2) == pytest.approx(2 / 4)
    # cosine, not distance: scaling a vector changes nothing; k beyond the base is the whole base
    assert ev.neighbour_tag_agreement(7 * q[:1], [["cat"]], 3 * base, base_tags, k=2) == pytest.approx(1 / 2)
    assert ev.neighbour_tag_agreement(q[:1], [["car"]], base, base_tags, k=10) == pytest.approx(2 / 4)
    # chunked the same
    assert ev.neighbour_tag_agreement(q, [["cat"], ["car"], []], base, base_tags, k=2, chunk=1) == pytest.approx(3 / 4)
    assert math.isnan(ev.neighbour_tag_agreement(q[:1], [[]], base, base_tags))
    with pytest.raises(ValueError, match="match one to one"):
        ev.neighbour_tag_agreement(q, [["cat"]], base, base_tags)


def test_analogy_quads_pair_titles_differing_in_one_known_word():
    titles = {"img:1": "Man biking", "img:2": "woman biking", "img:3": "man swimming",
              "img:4": "woman swimming", "img:5": "woman swimming",  # ambiguous: two images, one title
              "img:6": "red heart", "img:7": "blue heart", "img:8": "red heart shape",  # other length
              "img:9": "green car", "img:10": "blue car",  # "green" is not a word of the model
              "img:11": "old man biking", "img:12": "young woman biking"}  # two words differ
    words = {"man", "woman", "red", "blue", "biking", "swimming", "heart", "car", "old", "young"}
    quads = ev.analogy_quads(titles, words)
    assert quads == sorted(quads, key=lambda q: (q[0], q[3], q[1], q[2]))
    assert set(quads) == {
        ("img:1", "man", "woman", "img:2"), ("img:2", "woman", "man", "img:1"),
        ("img:1", "biking", "swimming", "img:3"), ("img:3", "swimming", "biking", "img:1"),
        ("img:6", "red", "blue", "img:7"), ("img:7", "blue", "red", "img:6"),
        ("img:7", "heart", "car", "img:10"), ("img:10", "car", "heart", "img:7"),
    }
    assert len(quads) == 8  # no duplicates; "woman swimming" (two images) takes part in none
    # a one-word title shares nothing with another: no question
    assert ev.analogy_quads({"img:1": "man", "img:2": "woman", "img:3": ""}, {"man", "woman"}) == []
    assert ev.analogy_quads(titles, set()) == []
    # a group of n titles differing at one place asks 2n questions (each with the next, both ways), not n²
    flags = {f"img:{c}": f"flag {c}" for c in ("fr", "de", "it", "es")}
    quads = ev.analogy_quads(flags, {"flag", "fr", "de", "it", "es"})
    assert len(quads) == 8 and len(set(quads)) == 8
    assert all(q[1] == q[0][4:] and q[2] == q[3][4:] and q[0] != q[3] for q in quads)
    assert sorted(q[0] for q in quads) == sorted(2 * list(flags))  # every title asks twice
    # with the images' own words: a swap is asked only where a is x's word and b is y's
    own = {"img:fr": {"flag", "fr"}, "img:de": {"flag"}, "img:it": {"flag", "it"}, "img:es": {"flag", "es"}}
    quads = ev.analogy_quads(flags, {"flag", "fr", "de", "it", "es"}, tags=own)
    assert quads and all(q[1] in own[q[0]] and q[2] in own[q[3]] for q in quads)
    assert not any("img:de" in (q[0], q[3]) for q in quads) and len(quads) == 6  # fr, it, es in a cycle


class _Stub:
    """What the space checks read from a model: wv (gensim KeyedVectors) and which rows are images."""

    def __init__(self, vectors: dict, images: set):
        from gensim.models import KeyedVectors

        self.wv = KeyedVectors(len(next(iter(vectors.values()))))
        self.wv.add_vectors(list(vectors), np.array(list(vectors.values()), dtype=np.float32))
        self._vocab_image_rows = np.array([i if k in images else -1 for i, k in enumerate(self.wv.index_to_key)])


def _analogy_stub():
    man, woman, biking, swimming = np.eye(4)
    vectors = {"man": man, "woman": woman, "biking": biking, "swimming": swimming,
               "img:x": man + biking, "img:y": woman + biking,
               "img:z": man + 0.2 * biking + swimming, "img:u": woman + swimming}
    return _Stub(vectors, {"img:x", "img:y", "img:z", "img:u"})


def test_image_analogies_answer_by_gensims_most_similar_among_images():
    stub = _analogy_stub()
    # x − man + woman → y and z − man + woman → u by cosine; but x's nearest image is z, z's is x
    res = ev.image_analogies(stub, [("img:x", "man", "woman", "img:y"), ("img:z", "man", "woman", "img:u"),
                                    ("img:x", "man", "nosuchword", "img:y")])
    assert res == {"n": 2, "hit@1": 1.0, "nearest_image_hit@1": 0.0}
    # a wrong expectation is a miss; the query image itself is never its own answer
    res = ev.image_analogies(stub, [("img:x", "man", "woman", "img:u"), ("img:x", "man", "man", "img:x")])
    assert res["n"] == 2 and res["hit@1"] == 0.0 and res["nearest_image_hit@1"] == 0.0
    # x − biking + swimming → z (its nearest image as well)
    assert ev.image_analogies(stub, [("img:x", "biking", "swimming", "img:z")]) == {
        "n": 1, "hit@1": 1.0, "nearest_image_hit@1": 1.0}
    empty = ev.image_analogies(stub, [])
    assert empty["n"] == 0 and math.isnan(empty["hit@1"])


def test_vector_analogies_answer_as_image_analogies_and_with_other_vectors():
    """The images at their own rows answer as gensim's most_similar does; other vectors for the
    same images give other answers; bad shapes are refused by name."""
    stub = _analogy_stub()
    quads = [("img:x", "man", "woman", "img:y"), ("img:z", "man", "woman", "img:u"),
             ("img:x", "biking", "swimming", "img:z"), ("img:x", "man", "nosuchword", "img:y")]
    keys = ["img:x", "img:y", "img:z", "img:u"]
    rows = stub.wv[keys]
    assert ev.vector_analogies(stub.wv, keys, rows, quads) == {
        "n": 3, "hit@1": ev.image_analogies(stub, quads)["hit@1"]}
    # y and u swap places: x − man + woman now lands on u, and the question is missed
    swapped = rows[[0, 3, 2, 1]]
    assert ev.vector_analogies(stub.wv, keys, rows, quads[:1])["hit@1"] == 1.0
    assert ev.vector_analogies(stub.wv, keys, swapped, quads[:1])["hit@1"] == 0.0
    # an image missing from keys skips the question
    assert ev.vector_analogies(stub.wv, keys[:3], rows[:3], quads[1:2])["n"] == 0
    with pytest.raises(ValueError, match="4 keys for vectors of shape"):
        ev.vector_analogies(stub.wv, keys, rows[:3], quads)
    with pytest.raises(ValueError, match="vectors have 3 dimensions, the words of wv 4"):
        ev.vector_analogies(stub.wv, keys, rows[:, :3], quads)
    assert math.isnan(ev.vector_analogies(stub.wv, [], np.zeros((0, 4)), quads)["hit@1"])


def test_bag_of_words_vectors_are_unit_sums_of_the_words():
    from gensim.models import KeyedVectors

    wv = KeyedVectors(2)
    wv.add_vectors(["a", "b"], np.array([[2, 0], [0, 3]], dtype=np.float32))
    keys, rows = ev.bag_of_words_vectors(wv, [["img:1", "a", "b"], ["img:2", "zz"], ["img:3", "b", "zz"]])
    assert keys == ["img:1", "img:3"]  # img:2 has no word of wv
    np.testing.assert_allclose(rows, [[2 ** -0.5, 2 ** -0.5], [0, 1]], rtol=1e-6)
    # an image's documents are one bag, each word once: repeating them (the joint demo's copies)
    # changes nothing, and the image is one row, so it cannot be its own analogy's answer
    again, twice = ev.bag_of_words_vectors(wv, [["img:1", "a", "a"], ["img:3", "b", "zz"], ["img:1", "b"]] * 3)
    assert again == keys
    np.testing.assert_array_equal(twice, rows)


def test_one_space_check_on_known_vectors():
    a, b, c = np.eye(3)
    vectors = {"a": a, "b": b, "c": c, "img:1": a + 0.5 * b, "img:2": 2 * a + b, "img:3": c}
    stub = _Stub(vectors, {"img:1", "img:2", "img:3"})
    res = ev.one_space_check(stub, ["img:1", "img:3", "img:missing", "img:2"], [["a"], ["c", "zzz"], ["a"], []],
                             n_random=20_000)
    assert res["n"] == 2  # img:missing is not in the model; img:2 has no tag
    # img:1 = (1, .5, 0)/|.|: nearest image img:2 (same direction, cosine 1), nearest word a
    # img:3 = c: nearest image has cosine 0.5/|(1,.5,0)| ... = 0, nearest word c (cosine 1)
    n1 = np.linalg.norm([1, 0.5, 0])
    assert res["nearest_image"] == pytest.approx((1.0 + 0.0) / 2, abs=1e-6)
    assert res["nearest_word"] == pytest.approx((1 / n1 + 1.0) / 2, abs=1e-6)
    assert res["own_tags"] == pytest.approx((1 / n1 + 1.0) / 2, abs=1e-6)  # unknown tags are left out
    # random words: uniform over a, b, c, so about the mean cosine to all three words
    mean_all = ((1 / n1 + 0.5 / n1 + 0) + (0 + 0 + 1)) / 3 / 2
    assert res["random_words"] == pytest.approx(mean_all, abs=0.01)
    assert ev.one_space_check(stub, ["img:1"], [["a"]], n_random=50, seed=3) == \
        ev.one_space_check(stub, ["img:1"], [["a"]], n_random=50, seed=3)  # seeded
    assert ev.one_space_check(stub, ["img:missing"], [["a"]])["n"] == 0


def _hand_report(**space):
    rows = [ev.TaggingResult("Im2Vec (cosine in model.wv)", metrics={
                "all": {"map": 0.46, "p@1": 0.5}, "seen": {"map": 0.4, "tag_map": 0.30},
                "zero_shot": {"map": 0.20}, "in_sample": {"map": 0.60, "n_images": 10}}),
            ev.TaggingResult("kNN (k=20)", metrics={"all": {"map": 0.50}, "seen": {"map": 0.5, "tag_map": 0.31}}),
            ev.TaggingResult("ridge → tag vectors", metrics={"all": {"map": 0.3}, "zero_shot": {"map": 0.25}}),
            ev.TaggingResult("id-token Word2Vec", applicable=False, note="cannot place unseen images")]
    ws = [{"model": "text-only Word2Vec", "wordsim353": 0.6, "simlex999": 0.3, "analogies": 0.5},
          {"model": "Im2Vec words", "wordsim353": 0.595, "simlex999": 0.31, "analogies": 0.49},
          {"model": "Δ (Im2Vec − text)", "wordsim353": -0.005, "simlex999": 0.01, "analogies": -0.01}]
    return ev.EvaluationReport(rows=rows, word_similarity=ws, info={"n_test_images": 3, "n_candidates": 9},
                               space=space)


def test_targets_pass_and_fail_by_the_issues_thresholds():
    rep = _hand_report(one_space={"n": 10, "nearest_image": 0.9, "nearest_word": 0.6, "own_tags": 0.5,
                                  "random_words": 0.0},
                       image_to_image={"k": 10, "model": 0.55, "raw_features": 0.5},
                       analogies={"n": 12, "hit@1": 0.85, "nearest_image_hit@1": 0.25})
    t = {d["target"].split(".")[0]: d for d in rep.targets()}
    assert [d["target"].split(".")[0] for d in rep.targets()] == ["1", "2", "3", "4", "5", "6", "7"]  # in order
    assert t["1"]["ok"] and (t["1"]["value"], t["1"]["reference"]) == (0.46, 0.50)  # 0.46 ≥ 0.9 × 0.50
    assert t["1"]["bar"] == pytest.approx(0.45) and t["6"]["bar"] == 0.8 and t["4"]["bar"] == 0.31
    printed = rep.format_table().split("Targets\n", 1)[1].splitlines()
    assert printed[0].split()[-4:] == ["bar", "compared", "with", "met"]
    assert printed[1].startswith("1. ") and printed[1].split()[-4:] == ["0.460", "0.450", "0.500", "yes"]
    assert not t["4"]["ok"] and (t["4"]["value"], t["4"]["reference"]) == (0.30, 0.31)
    assert t["2"]["ok"] and t["2"]["reference"] == 0.5
    assert not t["3"]["ok"] and t["3"]["reference"] == 0.25
    assert t["5"]["ok"] and t["6"]["ok"] and "12 questions" in t["6"]["target"]
    assert t["7"]["ok"] and t["7"]["value"] == pytest.approx(-0.005)
    # each threshold flips
    rep.row("kNN (k=20)").metrics["all"]["map"] = 0.52  # 0.46 < 0.468
    rep.space["analogies"]["hit@1"] = 0.79
    rep.space["image_to_image"]["model"] = 0.49
    rep.word_similarity[2]["analogies"] = -0.03  # more than 2 points lost
    rep.row("Im2Vec (cosine in model.wv)").metrics["in_sample"]["map"] = 0.49
    t = {d["target"].split(".")[0]: d for d in rep.targets()}
    assert not any(t[k]["ok"] for k in ("1", "2", "5", "6", "7"))
    rep.word_similarity[2].update(analogies=0.0, simlex999=-0.02)
    rep.space["analogies"].update({"hit@1": 0.9, "nearest_image_hit@1": 0.9})
    t = {d["target"].split(".")[0]: d for d in rep.targets()}
    assert not t["7"]["ok"] and t["7"]["value"] == pytest.approx(-0.02)
    assert not t["6"]["ok"]  # not more often than x's own nearest image


def test_targets_leave_out_what_was_not_measured():
    rep = _hand_report()
    rep.rows = [r for r in rep.rows if not r.method.startswith(("kNN", "ridge"))]
    rep.word_similarity = []
    rep.row("Im2Vec (cosine in model.wv)").metrics["in_sample"]["map"] = float("nan")
    assert rep.targets() == []
    rep.space["analogies"] = {"n": 0, "hit@1": float("nan"), "nearest_image_hit@1": float("nan")}
    assert rep.targets() == []
    assert ev.EvaluationReport().targets() == []


def test_format_table_shows_the_space_and_the_targets():
    rep = _hand_report(one_space={"n": 10, "nearest_image": 0.9, "nearest_word": 0.6, "own_tags": 0.5,
                                  "random_words": 0.01},
                       image_to_image={"k": 10, "model": 0.55, "raw_features": 0.5},
                       analogies={"n": 12, "hit@1": 0.85, "nearest_image_hit@1": 0.25})
    text = rep.format_table()
    space = text[text.index("The space itself"):]
    assert "one space, not two clouds (10 training images)" in space
    assert "nearest image 0.900, nearest word 0.600; to its own tags 0.500 vs random words 0.010" in space
    assert "10 nearest training images share a tag 55.0% (raw CNN cosine: 50.0%)" in space
    assert "12 questions: hit@1 85.0% (x's own nearest image is y: 25.0%)" in space
    targets = text[text.index("Targets"):].splitlines()
    assert len([ln for ln in targets if ln.lstrip().startswith(tuple("1234567"))]) == 7
    line4 = next(ln for ln in targets if ln.lstrip().startswith("4."))
    assert line4.rstrip().endswith("NO") and "0.300" in line4 and "0.310" in line4
    line1 = next(ln for ln in targets if ln.lstrip().startswith("1."))
    assert line1.rstrip().endswith("yes")
    assert "Targets" not in ev.EvaluationReport(info={}).format_table()
    assert "The space itself" not in _hand_report().format_table()


def test_run_evaluation_fills_the_space_checks(setup, report):
    s = setup
    one = report.space["one_space"]
    assert one["n"] == 200 and one["own_tags"] > one["random_words"] + 0.05
    i2i = report.space["image_to_image"]
    assert i2i["k"] == 10 and i2i["model"] >= 0.9  # the class word is shared
    assert i2i["raw_features"] >= 0.9  # raw features separate these classes too (measured 1.0)
    assert "analogies" not in report.space  # none were asked
    row = report.row("Im2Vec (cosine in model.wv)")
    assert row.metrics["in_sample"]["n_images"] == 200 and row.get("in_sample", "map") > 0.3
    names = [t["target"].split(".")[0] for t in report.targets()]
    assert names == ["1", "2", "3", "4", "5"]  # no analogies, no word similarity asked
    quads = [(k, f"class{s['data'].labels[k]}", f"class{(s['data'].labels[k] + 1) % 8}", "img:1") for k in
             s["train_keys"][:3]]
    rep = ev.run_evaluation(s["model"], s["data"].test_features[:20], s["test_tags"][:20], s["cands"],
                            baselines=(), word_similarity=False, analogies=quads)
    assert rep.space["analogies"]["n"] == 3 and "one_space" not in rep.space  # no training split given
    assert "bag_of_words_hit@1" not in rep.space["analogies"]  # its ceiling needs the training tags


def test_analogies_ceiling_is_asked_the_models_questions(setup):
    """The bag-of-tags ceiling comes from the documents the model trained on, so it is asked the
    same questions as the model, also when the tagging task's training split covers only some of
    the question images and when the documents are repeated (the joint demo's copies)."""
    s = setup
    keys = s["train_keys"]
    quads = [(keys[i], s["train_docs"][i][1], s["train_docs"][i + 1][1], keys[i + 1]) for i in range(0, 40, 2)]
    half = len(keys) // 2  # the tagging task's split holds only some of the images: they ask fewer
    rep = ev.run_evaluation(s["model"], s["data"].test_features[:20], s["test_tags"][:20], s["cands"],
                            train_features=s["train_features"][20:half], train_tags=s["train_tags"][20:half],
                            train_keys=keys[20:half], baselines=(), word_similarity=False, analogies=quads)
    assert rep.space["analogies"]["n"] == 20 and rep.space["analogies"]["bag_of_words_n"] == 10  # of images 20…39
    docs = s["train_docs"] * 3 + s["text"]
    rep = ev.run_evaluation(s["model"], s["data"].test_features[:20], s["test_tags"][:20], s["cands"],
                            train_features=s["train_features"][20:half], train_tags=s["train_tags"][20:half],
                            train_keys=keys[20:half], train_docs=docs, baselines=(), word_similarity=False,
                            analogies=quads)
    an = rep.space["analogies"]
    assert an["bag_of_words_n"] == an["n"] == 20
    assert an["bag_of_words_hit@1"] == ev.bag_of_words_analogies(s["model"], quads, s["train_docs"])["hit@1"]
    assert "the ceiling on these questions" in rep.format_table()
    an["bag_of_words_n"] = 7
    assert "the ceiling on 7 of these questions" in rep.format_table()


# ---------------------------------------------------------------------------- word similarity
@pytest.fixture(scope="module")
def text_w2v():
    with open(datapath("lee_background.cor"), encoding="utf-8") as f:
        sents = [simple_preprocess(line) for line in f]
    return Word2Vec(sents, vector_size=32, min_count=2, epochs=5, workers=1, seed=1)


def test_word_similarity_returns_numbers_for_a_small_model(text_w2v):
    ws = ev.word_similarity(text_w2v)
    assert ws["wordsim353_oov"] < 95
    for name, fname in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):  # gensim's own figures
        pearson, spearman, oov = text_w2v.wv.evaluate_word_pairs(datapath(fname), case_insensitive=True)
        assert ws[name] == pytest.approx(spearman[0]) and ws[f"{name}_pearson"] == pytest.approx(pearson[0])
        assert ws[f"{name}_oov"] == pytest.approx(oov)
    score, sections = text_w2v.wv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=30_000,
                                                          case_insensitive=True)
    asked = len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
    assert ws["analogy_questions"] == asked > 0 and ws["analogies"] == pytest.approx(score)


def test_two_stage_words_keep_text_word_similarity_and_images_are_left_out(text_w2v):
    data = make_corpus(n_classes=3, n_images=60, n_features=8, seed=0)
    model = Im2Vec.from_word2vec(text_w2v, image_features=data.features, sentences=data.docs, epochs=2,
                                 workers=1)
    assert not any(model.is_image(k) for k in ev.words_only(model).index_to_key)
    rows = ev.compare_word_similarity(model, text_w2v, analogies=False)
    assert [r["model"] for r in rows][:2] == ["text-only Word2Vec", "Im2Vec words"]
    assert rows[2]["wordsim353"] == pytest.approx(0.0, abs=1e-9)  # frozen words: identical
    assert math.isfinite(rows[0]["wordsim353"])


def test_word_similarity_comparison_asks_both_models_the_same_analogies():
    """In joint training the image documents' tags are frequent too and push text words out of the
    most frequent `analogy_vocab`: the comparison measures Im2Vec's words in the text model's
    vocabulary order, so both answer the same questions (the old code asked the model none here)."""
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(0)
    words = ["athens", "greece", "baghdad", "iraq", "berlin", "germany"]
    vectors = rng.normal(size=(len(words), 8)).astype(np.float32)
    text = KeyedVectors(8)
    text.add_vectors(words, vectors)
    joint = KeyedVectors(8)  # the same word vectors behind six more frequent tags
    joint.add_vectors([f"tag{i}" for i in range(6)] + words,
                      np.vstack([rng.normal(size=(6, 8)).astype(np.float32), vectors]))
    assert ev.in_vocabulary_order(joint, text).index_to_key[:6] == words
    a, b, delta = ev.compare_word_similarity(joint, text, analogy_vocab=len(words))
    assert a["analogy_questions"] == b["analogy_questions"] > 0
    assert delta["analogies"] == 0.0


def test_word_similarity_comparison_asks_a_small_model_only_the_analogies_both_answer():
    """A model with few of the text model's words answered its few questions while the text model
    answered all of its own: Δanalogies compared different questions (−18.5 points in the audit,
    while the WordSim pairs were already restricted to the words both have)."""
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(0)
    words = ["athens", "greece", "baghdad", "iraq", "berlin", "germany", "paris", "france"]
    vectors = rng.normal(size=(len(words), 8)).astype(np.float32)
    text = KeyedVectors(8)
    text.add_vectors(words, vectors)
    small = KeyedVectors(8)
    small.add_vectors(words[:4], vectors[:4])
    alone = ev.word_similarity(text, analogy_vocab=len(words))["analogy_questions"]
    a, b, delta = ev.compare_word_similarity(small, text, analogy_vocab=len(words))
    assert 0 < a["analogy_questions"] == b["analogy_questions"] < alone  # was: 15 questions against 3
    assert math.isfinite(delta["analogies"])
    tiny = KeyedVectors(8)
    tiny.add_vectors(words[:2], vectors[:2])  # no question of both: none asked (gensim would divide by 0)
    a, b, _ = ev.compare_word_similarity(tiny, text, analogy_vocab=len(words))
    assert a["analogy_questions"] == b["analogy_questions"] == 0 and math.isnan(a["analogies"])


# ---------------------------------------------------------------------------- files and CLI
def test_load_tagged_jsonl_names_the_bad_line(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"key": "img:1", "tags": ["a"]}\n\n{"key": "img:2"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"t.jsonl:3"):
        ev.load_tagged_jsonl(p)
    p.write_text('{"key": "img:1", "tags": ["a", "b"]}\n', encoding="utf-8")
    assert ev.load_tagged_jsonl(p) == (["img:1"], [["a", "b"]])


def test_cli_evaluate_on_a_tiny_saved_model(tmp_path):
    from gensim_im2vec.cli import main

    data = make_corpus(n_classes=3, n_images=90, n_features=8, n_related=1, n_test=30, n_text_sentences=60, seed=2)
    img = [d for d in data.docs if d[0].startswith("img:")]
    model = Im2Vec(data.docs, image_features=data.features, vector_size=8, sg=1, min_count=1, epochs=5,
                   workers=1, seed=1)
    model.save(str(tmp_path / "m.model"))
    with open(tmp_path / "test.jsonl", "w", encoding="utf-8") as f:
        for i, c in enumerate(data.test_labels):
            f.write(json.dumps({"key": f"test:{i}", "tags": [data.class_words[c]]}) + "\n")
    np.save(tmp_path / "test.npy", data.test_features)
    with open(tmp_path / "train.jsonl", "w", encoding="utf-8") as f:
        for d in img:
            f.write(json.dumps({"key": d[0], "tags": d[1:]}) + "\n")
    (tmp_path / "zs.txt").write_text("class0_r0\n", encoding="utf-8")
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path / "m.model"), "--test", str(tmp_path / "test.jsonl"),
                                    "--features", str(tmp_path / "test.npy"), "--train", str(tmp_path / "train.jsonl"),
                                    "--zero-shot", str(tmp_path / "zs.txt"), "--no-word-similarity",
                                    "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "Im2Vec (cosine in model.wv)" in res.output and "kNN (k=20)" in res.output and "ZS mAP" in res.output
    assert "cannot place unseen images" in res.output and "Targets" in res.output
    assert len(json.loads(out.read_text(encoding="utf-8"))["image_tagging"]) == 7  # 1 Im2Vec row + 6 baselines
    bad = CliRunner().invoke(main, ["evaluate", str(tmp_path / "m.model"), "--test", str(tmp_path / "test.jsonl"),
                                    "--features", str(tmp_path / "zs.txt")])
    assert bad.exit_code != 0


def test_bag_of_words_analogies_is_the_sum_of_the_images_own_words():
    """Target 6's ceiling: an image as the unit sum of its words answers x − a + b with the image
    that has x's other words and b, and misses when another image is closer to that sum."""
    from gensim.models import KeyedVectors

    class M:
        wv = KeyedVectors(4)

    M.wv.add_vectors(["man", "woman", "bike", "car"], np.eye(4, dtype=np.float32))
    docs = [["img:x", "man", "bike"], ["img:y", "woman", "bike"], ["img:z", "woman", "car"]]
    assert ev.bag_of_words_analogies(M(), [("img:x", "man", "woman", "img:y")], docs) == {"n": 1, "hit@1": 1.0}
    # y holds the car instead: z (woman + car) and y (woman + car + bike) compete, y no longer wins
    docs_far = [["img:x", "man", "bike"], ["img:y", "woman", "car", "man"], ["img:z", "woman", "bike", "car"]]
    assert ev.bag_of_words_analogies(M(), [("img:x", "man", "woman", "img:y")], docs_far)["hit@1"] == 0.0
    # a question whose image has no document is skipped, not counted as a miss
    assert ev.bag_of_words_analogies(M(), [("img:q", "man", "woman", "img:y")], docs)["n"] == 0


# ---------------------------------------------------------------------------- the model-free baselines' cache
def _model_free(setup, *, cache=None, knn_k=20, n_test=None, **kwargs):
    s = setup
    n = n_test or len(s["test_tags"])
    return ev.run_evaluation(s["model"], s["data"].test_features[:n], s["test_tags"][:n], s["cands"],
                             zero_shot=sorted(ZS), train_features=s["train_features"], train_tags=s["train_tags"],
                             baselines=("random", "prior", "knn", "logistic"), word_similarity=False,
                             n_in_sample=0, knn_k=knn_k, baseline_cache=cache, **kwargs)


def _rows(report) -> str:
    """The rows as JSON without their timing (NaN compares equal as text)."""
    return json.dumps([{k: v for k, v in r.__dict__.items() if k != "seconds"} for r in report.rows],
                      default=lambda o: o.item())


def test_cached_baseline_rows_are_the_computed_ones(setup, tmp_path, monkeypatch):
    cache = tmp_path / "evaluation" / "baselines.json"
    plain = _model_free(setup)
    first = _model_free(setup, cache=cache)
    assert first.info["cached_baselines"] == [] and cache.is_file()
    assert len(json.loads(cache.read_text())["rows"]) == 3  # prior, kNN, logistic; not random W (the model's)

    def refit(*a, **k):
        raise AssertionError("a cached baseline was fitted again")

    for scorer in (ev.TagPriorScorer, ev.KNNTagScorer, ev.LogisticScorer):
        monkeypatch.setattr(scorer, "fit", refit)
    second = _model_free(setup, cache=cache)
    assert second.info["cached_baselines"] == ["tag prior", "kNN (k=20)", "logistic (one-vs-rest)"]
    assert second.format_table() == first.format_table() == plain.format_table()
    assert _rows(second) == _rows(plain)
    assert second.to_dict()["targets"] == plain.to_dict()["targets"]


def test_an_evaluation_that_only_reads_the_cache_writes_nothing(setup, tmp_path):
    """Every row a hit, in another order than the file's: the file is left as it is (it may sit in
    a folder the evaluation only reads, e.g. `im2vec evaluate MODEL --demo DIR`)."""
    cache = tmp_path / "baselines.json"
    _model_free(setup, cache=cache)
    _model_free(setup, cache=cache, knn_k=5)  # the kNN row of k=5 first in the file now
    before = cache.read_bytes()
    again = _model_free(setup, cache=cache)  # k=20's rows, all hits, in another order
    assert again.info["cached_baselines"] == ["tag prior", "kNN (k=20)", "logistic (one-vs-rest)"]
    assert cache.read_bytes() == before


def test_a_changed_input_computes_the_baselines_again(setup, tmp_path):
    cache = tmp_path / "baselines.json"
    _model_free(setup, cache=cache)
    other_k = _model_free(setup, cache=cache, knn_k=5)  # k changed: kNN again, the others reused
    assert other_k.info["cached_baselines"] == ["tag prior", "logistic (one-vs-rest)"]
    assert _rows(other_k) == _rows(_model_free(setup, knn_k=5))
    fewer = _model_free(setup, cache=cache, n_test=100)  # another split of the held-out images: all again
    assert fewer.info["cached_baselines"] == []
    assert fewer.format_table() == _model_free(setup, n_test=100).format_table()
    other_c = _model_free(setup, cache=cache, logistic_C=0.1)
    assert other_c.info["cached_baselines"] == ["tag prior", "kNN (k=20)"]
    assert _rows(other_c) == _rows(_model_free(setup, logistic_C=0.1))
    # the training images' tags changed (features as they were): every row computed again
    s = dict(setup, train_tags=[t[:1] for t in setup["train_tags"]])
    assert _model_free(s, cache=cache).info["cached_baselines"] == []


def test_an_unreadable_cache_is_ignored_and_replaced(setup, tmp_path):
    cache = tmp_path / "baselines.json"
    cache.write_text("{not json")
    report = _model_free(setup, cache=cache)
    assert report.info["cached_baselines"] == [] and json.loads(cache.read_text())["version"] == 1


def test_cli_evaluate_asks_analogies_from_a_file_and_answers_trained_ones_apart(tmp_path):
    """`im2vec evaluate --analogies FILE` (the format of train --space-analogies): questions that
    share an image with the model's own space_analogies are answered apart, target 6 on the rest;
    with --demo, or a bad line, it is a usage error naming --analogies."""
    from gensim_im2vec.cli import main

    data = make_corpus(n_classes=3, n_images=90, n_features=8, n_test=30, n_text_sentences=0, seed=2)
    by_class = {c: [k for k, y in data.labels.items() if y == c] for c in range(3)}

    def swap(x):
        c = data.labels[x]
        return (x, data.class_words[c], data.class_words[(c + 1) % 3], by_class[(c + 1) % 3][0])

    trained = [swap(x) for x in by_class[0][5:25] + by_class[1][5:25]]
    fresh = [swap(x) for x in by_class[0][1:4] + by_class[2][1:4]]
    model = Im2Vec(data.docs, image_features=data.features, vector_size=8, sg=1, min_count=1, epochs=3,
                   workers=1, seed=1, space_analogies=trained)
    model.save(str(tmp_path / "m.model"))
    with open(tmp_path / "test.jsonl", "w", encoding="utf-8") as f:
        for i, c in enumerate(data.test_labels):
            f.write(json.dumps({"key": f"test:{i}", "tags": [data.class_words[c]]}) + "\n")
    np.save(tmp_path / "test.npy", data.test_features)
    questions = tmp_path / "q.txt"
    questions.write_text("# x a b y\n" + "".join(" ".join(q) + "\n" for q in trained[:4] + fresh), encoding="utf-8")
    base = ["evaluate", str(tmp_path / "m.model"), "--test", str(tmp_path / "test.jsonl"),
            "--features", str(tmp_path / "test.npy"), "--baselines", "none", "--no-word-similarity"]
    res = CliRunner().invoke(main, [*base, "--analogies", str(questions), "--json", str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    space = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))["space"]
    # the fresh questions about class-0 images have a trained question's y as their y: trained too
    untrained, seen = ev.untrained_analogies(model, trained[:4] + fresh)
    assert untrained == fresh[3:] and len(seen) == 7
    assert space["analogies"]["n"] == 3 and space["analogies_trained"]["n"] == 7
    assert f"analogies on the {len(seen)} questions the model trained on" in res.output
    questions.write_text("img:0 class0 img:1\n", encoding="utf-8")
    bad = CliRunner().invoke(main, [*base, "--analogies", str(questions)])
    assert bad.exit_code == 2 and "'--analogies'" in bad.output and "line 1" in bad.output
    demo = CliRunner().invoke(main, ["evaluate", str(tmp_path / "m.model"), "--demo", str(tmp_path),
                                     "--analogies", str(questions)])
    assert demo.exit_code == 2 and "--analogies" in demo.output


# ---------------------------------------------------------------------------- copies of training images
def test_copies_of_training_are_bit_for_bit_equal_rows_in_any_dtype():
    train = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    test = np.vstack([train[[3, 17]], train[3] + 1e-6, -np.zeros((1, 8))])
    got = ev.copies_of_training(test.astype(np.float64), np.vstack([train, np.zeros((1, 8), np.float32)]))
    assert got.tolist() == [True, True, False, True]  # a near copy is held out; -0.0 is 0.0
    assert ev.copies_of_training(train[:0], train).shape == (0,)


def test_held_out_copies_of_training_images_are_left_out_of_every_row(setup, report):
    """A held-out image whose features are a training image's: kNN and the model find its tags by the copy.
    The evaluation leaves it out of every row, counts it, and its header says so; the figures are those of
    the evaluation without it."""
    s = setup
    X = np.array(s["data"].test_features[:40], dtype=np.float32)
    tags = list(s["test_tags"][:40])
    for i, j in ((2, 0), (9, 5), (30, 11)):  # three copies of training images, tagged alike
        X[i], tags[i] = s["train_features"][j], list(s["train_tags"][j])
    train = dict(train_features=s["train_features"], train_tags=s["train_tags"], train_keys=s["train_keys"])
    opts = dict(zero_shot=sorted(ZS), baselines=("ridge", "knn"), word_similarity=False, n_in_sample=20)
    rep = ev.run_evaluation(s["model"], X, tags, s["cands"], **train, **opts,
                            test_keys=[f"img:t{i}" for i in range(40)])
    assert rep.info["n_test_copies"] == 3 and rep.info["n_test_images"] == 37
    assert "3 copies of a training image's features left out" in rep.format_table()
    keep = [i for i in range(40) if i not in (2, 9, 30)]
    want = ev.run_evaluation(s["model"], X[keep], [tags[i] for i in keep], s["cands"], **train, **opts)
    assert want.info["n_test_copies"] == 0
    for name in ("Im2Vec (cosine in model.wv)", "ridge → tag vectors", "kNN (k=20)"):
        assert rep.row(name).metrics == want.row(name).metrics
    kept = ev.run_evaluation(s["model"], X, tags, s["cands"], **train, **opts, drop_copies=False)
    assert kept.info["n_test_images"] == 40 and "n_test_copies" not in kept.info
    assert kept.row("kNN (k=20)").metrics["all"]["map"] > rep.row("kNN (k=20)").metrics["all"]["map"]


def test_copies_of_training_wants_rows():
    """One vector is not a row per element (it answered one bool per feature)."""
    train = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"^test_features: expected a 2-D array, one feature row per image, got 1-D"):
        ev.copies_of_training(train[1], train)
    assert ev.copies_of_training(train[1:2], train).tolist() == [True]


def test_dropping_copies_says_what_is_wrong_with_test_keys_or_with_nothing_left(setup, caplog):
    """test_keys of another length than the test rows failed in the copies' zip ("zip() argument 2 is longer
    than argument 1"), and held-out images that are all copies failed as "features: expected at least one
    image" of no argument given: each says what it is."""
    s = setup
    train = dict(train_features=s["train_features"], train_tags=s["train_tags"], train_keys=s["train_keys"])
    opts = dict(zero_shot=sorted(ZS), baselines=("knn",), word_similarity=False, n_in_sample=20)
    X = np.array(s["data"].test_features[:10], dtype=np.float32)
    tags = list(s["test_tags"][:10])
    X[2], tags[2] = s["train_features"][0], list(s["train_tags"][0])
    with pytest.raises(ValueError, match=r"^test_keys has 9 keys for 10 test images; give one key per test row"):
        ev.run_evaluation(s["model"], X, tags, s["cands"], **train, **opts, test_keys=[f"img:t{i}" for i in range(9)])
    copies = np.array(s["train_features"][:5], dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.evaluate"):
        rep = ev.run_evaluation(s["model"], copies, [list(t) for t in s["train_tags"][:5]], s["cands"], **train,
                                **opts)
    assert rep.info["n_test_images"] == 5 and not rep.info["n_test_copies"]  # all scored, said in-sample
    assert "all 5 held-out images are copies of a training image's features" in caplog.text
    # the training images themselves (their own keys): in-sample, counted as trained on, not copies
    rep = ev.run_evaluation(s["model"], X, tags, s["cands"], **train, **opts,
                            test_keys=[s["train_keys"][0] if i == 2 else f"img:t{i}" for i in range(10)])
    assert rep.info["n_test_copies"] == 0 and rep.info["n_test_images"] == 10
    assert rep.info["n_test_images_trained"] == 1
    rep = ev.run_evaluation(s["model"], X, tags, s["cands"], **train, **opts,
                            test_keys=[f"img:t{i}" for i in range(10)])
    assert rep.info["n_test_copies"] == 1 and rep.info["n_test_images"] == 9


def test_the_header_says_the_copies_after_the_images_trained_on():
    """"3 copies of a training image's features left out (2 of them trained on: in-sample figures)" made the
    copies the images trained on; the trained ones are of the images scored, and are said first."""
    def head(n_scored, **info):
        rows = [ev.TaggingResult("prior", "x", metrics={"all": {"map": 0.2, "n_images": n_scored}})]
        return ev.EvaluationReport(rows=rows, info={"n_candidates": 9, **info}).format_table().splitlines()[0]

    info = dict(n_test_images=37, n_test_copies=3, n_test_images_trained=2)
    assert head(37, **info) == ("Image → tag on 37 test images (2 of them trained on: in-sample figures); 3 copies of "
                                "a training image's features left out, 9 candidate tags")
    assert head(35, **info) == ("Image → tag on 35 of the 37 test images, those with a candidate tag (tag → image ranks "
                                "all 37) (2 of them trained on: in-sample figures); 3 copies of a training image's "
                                "features left out, 9 candidate tags")
    assert head(37, n_test_images=37, n_test_copies=1) == ("Image → tag on 37 held-out images; 1 copy of a training "
                                                           "image's features left out, 9 candidate tags")
    assert head(37, n_test_images=37, n_test_images_in_split=40, n_test_copies=3) == (
        "Image → tag on 37 of the 40 held-out images (those with features and a candidate tag, less 3 copies of a "
        "training image's features), 9 candidate tags")
