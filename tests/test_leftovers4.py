"""Leftovers, fourth batch: `im2vec query` checked its extractor options twice (a local checkpoint
hashed twice), the kNN baseline's row claimed k=20 when fewer training images voted, and the HTML
report's header was the model's repr run together with the rest on one line. Each test failed on
the code before its fix (a comment says what it did)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec
from gensim_im2vec.baselines import KNNTagScorer
from gensim_im2vec.cli import main
from gensim_im2vec.evaluate import EvaluationReport, run_evaluation
from gensim_im2vec.query import PROMPT
from gensim_im2vec.report import write_report
from gensim_im2vec.synthetic import make_corpus


# ------------------------------------------------------------ 1. `im2vec query` checks its options once
@pytest.fixture
def counted_checks(monkeypatch):
    """Counts the calls of query.check_extractor_options (the CLI's check and the session's)."""
    from gensim_im2vec import query

    calls = []
    real = query.check_extractor_options

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(query, "check_extractor_options", counting)
    return calls


def test_query_checks_the_extractor_options_once(query_model, counted_checks, monkeypatch, tmp_path):
    pytest.importorskip("torchvision", reason="the extractor's checks need the [vision] extra")
    from gensim_im2vec import features

    model, _, _, path, _ = query_model
    digests = []
    real_digest = features.file_digest

    def digest(p, *args, **kwargs):
        digests.append(p)
        return real_digest(p, *args, **kwargs)

    monkeypatch.setattr(features, "file_digest", digest)
    ckpt = tmp_path / "mine.pth"
    ckpt.write_bytes(b"\0" * 4096)  # only hashed by the check: no image file is typed, nothing is loaded
    res = CliRunner().invoke(main, ["query", str(path), "--device", "cpu", "--weights", str(ckpt)],
                             input="red\nEXIT\n")
    assert res.exit_code == 0, res.output
    assert PROMPT in res.output and "Word: red" in res.output
    # was: 2 checks (the CLI's, then QuerySession's), the checkpoint hashed twice
    assert len(counted_checks) == 1, counted_checks
    assert len(digests) == 1, digests


def test_query_still_refuses_a_bad_option_at_the_start_with_the_extractors_message(query_model, counted_checks):
    pytest.importorskip("torchvision", reason="the extractor's checks need the [vision] extra")
    model, _, _, path, _ = query_model
    res = CliRunner().invoke(main, ["query", str(path), "--device", "banana"], input="red\nEXIT\n")
    assert res.exit_code == 1, res.output
    assert res.output == ("Error: cannot extract features for image files: device: expected 'auto', 'cpu', "
                          "'cuda' or 'cuda:N', got 'banana'.\n")
    assert PROMPT not in res.output
    assert len(counted_checks) == 1


def test_a_session_made_from_python_still_checks(query_model, counted_checks):
    from gensim_im2vec.query import QuerySession

    model, *_ = query_model
    with pytest.raises(ValueError, match="got 'banana'"):
        QuerySession(model, extractor_options={"device": "banana"})
    QuerySession(model, extractor_options={"device": "cpu"})
    assert len(counted_checks) == 2


# ------------------------------------------------------------ 2. the kNN row says the k it used
@pytest.fixture(scope="module")
def small_run():
    """A model and split with 8 training images: fewer than kNN's default k=20."""
    data = make_corpus(n_classes=2, n_images=8, n_features=8, n_test=6, n_distractors=1, distractor_pool=5, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=8, sg=1, min_count=1, epochs=5, sample=0,
                   workers=1, seed=1)
    train_features = np.stack([data.features[d[0]] for d in data.docs])
    train_tags = [d[1:] for d in data.docs]
    test_tags = [[data.class_words[c]] for c in data.test_labels]
    return data, model, train_features, train_tags, test_tags


def test_knn_scorer_is_named_by_the_k_it_uses():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 4)).astype(np.float32)
    tags = [["a"], ["b"]] * 4
    # was: "kNN (k=20)" with 8 training images, all of which vote
    assert KNNTagScorer.fit(X, tags).name == "kNN (k=8)"
    assert KNNTagScorer.fit(X, tags, k=5).name == "kNN (k=5)"
    assert KNNTagScorer.fit(np.vstack([X] * 3), tags * 3).name == "kNN (k=20)"


def test_a_small_evaluation_labels_and_finds_the_knn_row_by_the_k_used(small_run, tmp_path):
    data, model, train_features, train_tags, test_tags = small_run
    assert len(train_features) == 8
    report = run_evaluation(model, data.test_features, test_tags, model.word_keys, train_features=train_features,
                            train_tags=train_tags, baselines=("ridge", "prior", "knn"), word_similarity=False,
                            n_in_sample=0, baseline_cache=tmp_path / "cache.json")
    names = [r.method for r in report.rows]
    # was: "kNN (k=20)"
    assert "kNN (k=8)" in names and not any(n.startswith("kNN (k=20") for n in names), names
    knn = report.row("kNN (k=8)")
    assert knn.applicable and knn.get("all", "map") > 0
    # the targets that compare with kNN still find it
    targets = {t["target"].split(".")[0]: t for t in report.targets()}
    assert targets["1"]["reference"] == pytest.approx(knn.get("all", "map"))
    # the printed table, the JSON and the cache carry the same name
    assert "kNN (k=8)" in report.format_table()
    report.save_json(tmp_path / "ev.json")
    again = EvaluationReport.load_json(tmp_path / "ev.json")
    assert again.row("kNN (k=8)").get("all", "map") == pytest.approx(knn.get("all", "map"))
    assert again.targets() == report.targets()
    cached = run_evaluation(model, data.test_features, test_tags, model.word_keys, train_features=train_features,
                            train_tags=train_tags, baselines=("prior", "knn"), word_similarity=False,
                            n_in_sample=0, baseline_cache=tmp_path / "cache.json")
    assert cached.info["cached_baselines"] == ["tag prior", "kNN (k=8)"]


def test_the_knn_row_without_a_training_split_keeps_the_k_asked(small_run):
    data, model, _, _, test_tags = small_run
    report = run_evaluation(model, data.test_features, test_tags, model.word_keys, baselines=("knn",),
                            word_similarity=False, n_in_sample=0, knn_k=20)
    row = report.row("kNN (k=20)")
    assert not row.applicable and "needs train_features" in row.note


# ------------------------------------------------------------ 3. the report's header reads as facts
class _Header(HTMLParser):
    """The text of each item of the header's facts (the element after the <h1>)."""

    def __init__(self):
        super().__init__()
        self.facts, self._in, self._after_h1, self._depth = [], None, False, 0
        self.header_tags = []

    def handle_starttag(self, tag, attrs):
        if tag == "h1":
            self._after_h1 = True
            return
        if self._after_h1 and not self.header_tags:
            self.header_tags.append((tag, dict(attrs).get("class")))
            self._depth = 1
            return
        if self._depth:
            self._depth += 1
            if tag == "li":
                self.facts.append("")
                self._in = True

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1
            if tag == "li":
                self._in = False
            if self._depth == 0:
                self._after_h1 = False

    def handle_data(self, data):
        if self._in:
            self.facts[-1] += data


def test_the_report_header_lists_short_facts_not_the_models_repr(tmp_path):
    data = make_corpus(n_classes=3, n_images=60, n_features=16, n_test=4, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1, epochs=3,
                   workers=1, seed=1)
    model.image_features_metadata = {"arch": "resnet18", "weights": "<mine> & co", "layer": "penultimate",
                                     "dim": 16}
    index = write_report(model, tmp_path / "out", words=["class0"], map_words=0, map_images=0,
                         title="Im2Vec on <toy>")
    page = index.read_text(encoding="utf-8")
    head = page.split("<h1>", 1)[1].split("<nav>", 1)[0]
    # was: '<p class="meta">Im2Vec&lt;vocab=..., vector_size=16, features=16, alpha=0.025&gt;; features: arch=...'
    assert str(model) not in head and "Im2Vec&lt;vocab=" not in head and "alpha=" not in head
    parser = _Header()
    parser.feed(page)
    assert parser.header_tags == [("ul", "meta facts")]
    facts = [" ".join(f.split()) for f in parser.facts]
    assert facts[:4] == [
        "model: Im2Vec, 16-d vectors",
        "training: words and images together (joint)",
        f"vocabulary: {len(model.word_keys)} words, {len(model.image_keys)} images",
        "image features: resnet18 (<mine> & co), penultimate layer, 16-d",
    ]
    assert re.fullmatch(r"written \d{4}-\d\d-\d\d \d\d:\d\d", facts[4]), facts
    assert len(facts) == 5
    assert "&lt;mine&gt; &amp; co" in head and "<mine>" not in head  # escaped
    assert "Im2Vec on &lt;toy&gt;" in head


def test_a_two_stage_models_header_says_its_words_were_frozen(tmp_path):
    from gensim.models import Word2Vec

    data = make_corpus(n_classes=3, n_images=40, n_features=8, n_test=2, seed=0)
    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=8, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    docs = [d + ["brandnew"] for d in data.docs if d[0].startswith("img:")]  # a tag the text never saw
    for train_words, line in (("new", "the text's words frozen, images and the words new to the text trained "
                                      "(two-stage)"),  # from_word2vec's default
                              (False, "words frozen, images trained into them (two-stage)")):
        kw = {} if train_words == "new" else {"train_words": train_words}
        model = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=docs, epochs=2, workers=1, **kw)
        page = write_report(model, tmp_path / "out", words=["class0"], map_words=0, map_images=0).read_text("utf-8")
        parser = _Header()
        parser.feed(page)
        facts = [" ".join(f.split()) for f in parser.facts]
        assert f"training: {line}" in facts, facts
    assert "image features: 8-d" in facts  # no extractor recorded: the features' size alone
