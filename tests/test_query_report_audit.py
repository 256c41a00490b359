"""Audit of the query prompt, the HTML report and the evaluation's public functions, as a new user
meets them: edge cases (repeated candidates, images without tags, a cancelling sum), clear errors
instead of library tracebacks, the prompt's Ctrl-C / non-UTF-8 input, and the report's escaping.

Each test below a "fixed" comment failed before its fix; the others pin behaviour that was checked
and found right (a brute-force check of the tie-aware metrics, the report's escaping).
"""

import builtins
import io
import itertools
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import KeyedVectors

from gensim_im2vec import Im2Vec
from gensim_im2vec.baselines import RidgeScorer
from gensim_im2vec.evaluate import (
    EvaluationReport,
    TaggingResult,
    neighbour_tag_agreement,
    tagging_task,
)
from gensim_im2vec.metrics import (
    average_precision,
    evaluate_scores,
    precision_at_k,
    ranking_metrics,
    relevance_matrix,
)
from gensim_im2vec.query import QuerySession, query_loop
from gensim_im2vec.report import write_report
from gensim_im2vec.synthetic import make_corpus


@pytest.fixture(scope="module")
def small():
    data = make_corpus(n_classes=3, n_images=60, n_features=16, n_test=4, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1, epochs=3,
                   sample=0, workers=1, seed=1)
    return model, data


# ============================================================================ metrics
def _brute(scores, relevant, ks):
    """AP and hits@k averaged over every ordering of tied scores, by enumeration."""
    n = len(scores)
    aps, hits = [], {k: [] for k in ks}
    for perm in itertools.permutations(range(n)):
        order = sorted(range(n), key=lambda i: (-scores[i], perm.index(i)))
        r = [relevant[i] for i in order]
        if any(r):
            found, ap = 0, 0.0
            for rank, x in enumerate(r, 1):
                if x:
                    found += 1
                    ap += found / rank
            aps.append(ap / sum(r))
        for k in ks:
            hits[k].append(sum(r[:k]))
    return (float(np.mean(aps)) if aps else float("nan")), {k: float(np.mean(v)) for k, v in hits.items()}


def test_tie_aware_metrics_equal_the_mean_over_every_ordering_of_ties():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(1, 6))
        s = rng.integers(0, 3, n).astype(float)
        s[rng.random(n) < 0.2] = -np.inf  # what a scorer cannot rank: tied at the bottom
        r = rng.random(n) < 0.5
        ap, hits = _brute(list(s), list(r), (1, 2, 7))
        got = average_precision(s, r)
        assert (np.isnan(ap) and np.isnan(got)) or got == pytest.approx(ap, abs=1e-12), (s, r)
        if r.any():
            m = ranking_metrics(s, r, ks=(1, 2, 7))
            for k in (1, 2, 7):  # P@k divides by k even when k > n (documented)
                assert m[f"p@{k}"] == pytest.approx(hits[k] / k, abs=1e-12)
                assert m[f"r@{k}"] == pytest.approx(hits[k] / r.sum(), abs=1e-12)


def test_map_leaves_out_rows_without_a_relevant_item_and_says_how_many():
    s = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    r = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0]], bool)
    m = ranking_metrics(s, r, ks=(1,))
    assert m["n"] == 2 and m["map"] == pytest.approx((1.0 + (1 + 1 / 2 + 1 / 3) / 3) / 2)
    assert np.isnan(ranking_metrics(s, np.zeros_like(r), ks=(1,))["map"])  # nothing to average: NaN, not 0


# fixed: a candidate listed twice gave relevance_matrix fewer columns than candidates (IndexError)
def test_relevance_matrix_has_one_column_per_candidate_entry():
    rel = relevance_matrix([["a"], ["b"]], ["a", "a", "b"])
    assert rel.astype(int).tolist() == [[1, 1, 0], [0, 0, 1]]


# fixed: evaluate_scores with a repeated candidate died in numpy (IndexError) instead of naming it
def test_evaluate_scores_names_a_repeated_candidate():
    with pytest.raises(ValueError, match=r"more than once, e\.g\. \['dog'\].*dict\.fromkeys"):
        evaluate_scores(np.zeros((2, 3)), [["dog"], ["cat"]], ["dog", "cat", "dog"])


# fixed: k=2.5 was computed as 2 and reported under "p@2"; precision_at_k(k=2.0) raised KeyError 'p@2.0'
def test_fractional_cutoffs_are_refused_and_whole_floats_work():
    with pytest.raises(ValueError, match="whole numbers"):
        ranking_metrics([[1.0, 2.0]], [[True, False]], ks=(2.5,))
    with pytest.raises(ValueError, match="whole numbers"):
        precision_at_k([1.0, 2.0], [True, False], "2")
    assert precision_at_k([1.0, 2.0], [False, True], 2.0) == 0.5


# ============================================================================ evaluate
# fixed: a tag listed twice on one training image counted as two images towards min_images
def test_tagging_task_counts_images_not_repeated_tags():
    task = tagging_task({"img:1": ["dog", "dog"], "img:2": ["cat"]}, {"img:3": ["dog"]}, min_images=2)
    assert task.candidates == [] and task.test_keys == []
    task = tagging_task({"img:1": ["dog", "dog"], "img:2": ["dog"]}, {"img:3": ["dog"]}, min_images=2)
    assert task.candidates == ["dog"] and task.test_keys == ["img:3"]


# fixed: k=0 and an empty base raised scikit-learn's "'n_neighbors' parameter of NearestNeighbors"
def test_neighbour_tag_agreement_names_k_and_an_empty_base():
    q, b = np.array([[1.0, 0.0]]), np.array([[1.0, 0.1], [0.0, 1.0]])
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        neighbour_tag_agreement(q, [["cat"]], b, [["cat"], ["dog"]], k=0)
    with pytest.raises(ValueError, match="base_vectors is empty"):
        neighbour_tag_agreement(q, [["cat"]], np.zeros((0, 2)), [], k=3)
    # k larger than the base: every base image is a neighbour
    assert neighbour_tag_agreement(q, [["cat"]], b, [["cat"], ["dog"]], k=10) == 0.5
    assert np.isnan(neighbour_tag_agreement(q, [[]], b, [["cat"], ["dog"]], k=1))  # no query with a tag


# fixed: a mean over no image printed as "nan" (and "nan%") in the table's sentences
def test_format_table_says_n_a_for_a_mean_over_nothing():
    nan = float("nan")
    rep = EvaluationReport(rows=[TaggingResult("Im2Vec (cosine in model.wv)", metrics={"all": {"map": 0.5}})],
                           space={"one_space": {"nearest_image": nan, "nearest_word": nan, "own_tags": nan,
                                                "random_words": nan, "n": 0},
                                  "image_to_image": {"k": 10, "model": nan, "raw_features": 0.25}})
    text = rep.format_table()
    assert "nan" not in text.lower().replace("cannot", "")
    assert "nearest image n/a" in text and "share a tag n/a (raw CNN cosine: 25.0%)" in text


# ============================================================================ baselines
# fixed: a tag listed twice on a training image weighed twice in the ridge target (prior, kNN and
# logistic count it once)
def test_ridge_counts_a_repeated_tag_once():
    kv = KeyedVectors(3)
    kv.add_vectors(["a", "b", "c"], np.eye(3, dtype=np.float32))
    X = np.array([[1.0, 0.2], [0.1, 1.0], [0.7, 0.7]])
    once = RidgeScorer.fit(X, [["a", "b"], ["c"], ["a"]], kv)
    twice = RidgeScorer.fit(X, [["a", "a", "b"], ["c"], ["a"]], kv)
    np.testing.assert_allclose(twice.W, once.W, atol=1e-6)


# ============================================================================ report
class _Parsed(HTMLParser):
    def __init__(self):
        super().__init__()
        self.starts, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(index):
    p = _Parsed()
    p.feed(index.read_text(encoding="utf-8"))
    return p


def _write_images(tmp_path, keys):
    from PIL import Image

    folder = tmp_path / "my pics #1 50%"
    folder.mkdir()
    paths = {}
    for i, key in enumerate(keys):
        paths[key] = folder / f"a b#{i}%20.png"
        Image.new("RGB", (20, 16), (200, 30 * i, 30)).save(paths[key])
    return paths


def test_report_escapes_keys_and_tags_and_links_thumbnails_of_odd_paths(small, tmp_path):
    model, data = small
    nasty = 'img:t<script>&"q\''
    test_keys = [nasty, "img:t%202", "img:t#3", "img:t%4"]
    paths = _write_images(tmp_path, test_keys + ["img:1"])
    index = write_report(model, tmp_path / "r", test_keys=test_keys, test_features=data.test_features,
                         true_tags=[['<b>&"x'], ["class0"], ["class1"], ["class2"]], image_paths=paths,
                         words=["class1", "<i>nope&"], evaluation={"a<b": [{"m<": "x&y"}]}, map_images=0,
                         map_words=0, topn=2)
    page = _parse(index)
    html_text = index.read_text(encoding="utf-8")
    assert "<script>" not in html_text and "<i>" not in html_text and "<b>" not in html_text
    assert not any(tag in ("script", "i", "b") for tag, _ in page.starts)
    text = "".join(page.text)
    assert nasty in text and '<b>&"x' in text and "<i>nope&" in text and "a<b" in text and "x&y" in text
    srcs = [a["src"] for tag, a in page.starts if tag == "img"]
    assert len([s for s in srcs if s.startswith("thumbs/")]) >= 4  # every held-out file became a thumbnail
    for src in srcs:  # relative links the browser resolves as written
        assert (index.parent / src).is_file() and all(c not in src for c in ' #%"<>&')
    assert {a.get("alt") for tag, a in page.starts if tag == "img"} >= {nasty}


# fixed: an image without true tags showed "0/k" hits (a miss) and the page said "mean P@k over
# these images" of a mean that left it out; its row now says "—" and the mean says over how many
def test_report_an_image_without_true_tags_is_not_shown_as_a_miss(small, tmp_path):
    model, data = small
    keys = [f"img:test/{i}" for i in range(4)]
    index = write_report(model, tmp_path / "r", test_keys=keys, test_features=data.test_features,
                         true_tags=[["class0"], [], ["class1"], ["class2"]], words=[], map_images=0, map_words=0,
                         topn=2)
    html_text = index.read_text(encoding="utf-8")
    rows = html_text.split('<table class="tests">')[1].split("</table>")[0].split("<tr>")[2:]
    assert 'class="num">—</td>' in rows[1]
    assert all('class="num">—</td>' not in r for i, r in enumerate(rows) if i != 1)
    assert "over the 3 with true tags" in html_text and "1 without any left out" in html_text


# fixed: true_tags={key: "dog cat"} was shown as the letters d, o, g, ' ', c, a, t
def test_report_true_tags_as_a_string_in_a_mapping_are_words(small, tmp_path):
    model, data = small
    index = write_report(model, tmp_path / "r", test_keys=["img:test/0"], test_features=data.test_features[:1],
                         true_tags={"img:test/0": "class0 class1 class0"}, words=[], map_images=0, map_words=0)
    html_text = index.read_text(encoding="utf-8")
    truth = html_text.split("</td><td>")[-1]
    assert truth.count('<span class="tag') == 2 and ">class0</span>" in truth and ">c</span>" not in truth


# fixed: a negative count sliced from the end: max_test_images=-1 printed "-1 of 4 images"
@pytest.mark.parametrize("option", ["max_test_images", "n_words", "map_words", "map_images"])
def test_report_refuses_a_negative_count_naming_it(small, tmp_path, option):
    model, data = small
    with pytest.raises(ValueError, match=f"{option} must be an int >= 0"):
        write_report(model, tmp_path / "r", test_keys=[f"img:test/{i}" for i in range(4)],
                     test_features=data.test_features, **{option: -1})
    assert not (tmp_path / "r").exists()


# fixed: a test key with a space failed in project_to_keyedvectors after the folder and
# thumbnails were written; now refused first, naming write_report's test_keys
def test_report_refuses_a_test_key_with_whitespace_before_writing(small, tmp_path):
    model, data = small
    with pytest.raises(ValueError, match="write_report test_keys.*'img:t%202'"):
        write_report(model, tmp_path / "r", test_keys=["img:t 2", "a", "b", "c"], test_features=data.test_features)
    assert not (tmp_path / "r").exists()


# fixed: an image key among `words` was listed as "Not in the vocabulary"; a word given twice had
# two rows; words that were all unknown left no trace on the page
def test_report_words_image_keys_repeats_and_unknowns_are_named(small, tmp_path):
    model, _ = small
    index = write_report(model, tmp_path / "r", words=["class1", "img:0", "class1", "zzz"], map_images=0,
                         map_words=0)
    html_text = index.read_text(encoding="utf-8")
    assert "Not in the vocabulary: zzz</p>" in html_text
    assert "Image keys, not words (this section ranks images for words): img:0" in html_text
    assert html_text.count("<tr><th>class1</th>") == 1
    only_unknown = write_report(model, tmp_path / "r2", words=["zzz"], map_images=0, map_words=0)
    assert "Not in the vocabulary: zzz" in only_unknown.read_text(encoding="utf-8")


# ============================================================================ query prompt
class _Raises:
    """A stdin whose readline raises `exc` (Ctrl-C at the prompt)."""

    def __init__(self, exc):
        self.exc = exc

    def readline(self):
        raise self.exc


# fixed: Ctrl-C at the prompt ended `im2vec query` with a KeyboardInterrupt traceback
def test_ctrl_c_at_the_prompt_ends_the_session(small):
    model, _ = small
    out = io.StringIO()
    try:
        n = query_loop(model, _Raises(KeyboardInterrupt()), out)
    except KeyboardInterrupt:  # caught here: escaping, it would stop the whole pytest run
        pytest.fail("Ctrl-C at the prompt escaped query_loop")
    assert n == 0 and out.getvalue().endswith("\n")


# fixed: Ctrl-C during an answer (an image file's CNN) ended the session; now the prompt comes back
def test_ctrl_c_during_an_answer_brings_the_prompt_back(small, tmp_path):
    model, _ = small
    img = tmp_path / "x.png"
    img.write_bytes(b"not read")

    def factory(meta):
        def featurize(path):
            raise KeyboardInterrupt

        return featurize

    out = io.StringIO()
    try:
        n = query_loop(model, io.StringIO(f"{img}\nclass1\nEXIT\n"), out, topn=2, featurizer_factory=factory)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during an answer escaped query_loop")
    assert n == 1 and "Interrupted; the prompt is back" in out.getvalue() and "Word: class1" in out.getvalue()


# fixed: one line of non-UTF-8 bytes ended the session with a UnicodeDecodeError (and the lines
# before it, decoded in the same chunk, were never answered)
def test_a_line_that_is_not_utf8_is_one_message(small):
    model, _ = small
    stdin = io.TextIOWrapper(io.BytesIO(b"class1\n\xff\xfe bad\r\nclass2\nEXIT\n"), encoding="utf-8")
    out = io.StringIO()
    assert query_loop(model, stdin, out, topn=1) == 2
    text = out.getvalue()
    assert "Not utf-8 text: byte 0xff at position 0" in text
    assert "Word: class1" in text and "Word: class2" in text


def test_a_tty_line_that_is_not_utf8_is_one_message(small, monkeypatch):
    model, _ = small
    lines = iter([UnicodeDecodeError("utf-8", b"\xffab", 0, 1, "invalid start byte"), "class0", EOFError()])

    def fake_input(prompt):
        item = next(lines)
        if isinstance(item, BaseException):
            raise item
        return item

    monkeypatch.setattr(builtins, "input", fake_input)
    out = io.StringIO()
    assert query_loop(model, None, out, topn=1) == 1
    assert "Not utf-8 text: byte 0xff at position 0" in out.getvalue()


def test_cli_query_survives_bytes_that_are_not_utf8(small, tmp_path):
    from gensim_im2vec.cli import main

    model, _ = small
    path = tmp_path / "m.model"
    model.save(str(path))
    res = CliRunner().invoke(main, ["query", str(path), "--topn", "1"], input=b"\xff\nclass1\nEXIT\n")
    assert res.exit_code == 0, res.output
    assert "Not utf-8 text" in res.output and "Word: class1" in res.output


# fixed: a path as a terminal writes a dropped file ('…/my pics/x.png', my\ pics/x.png) was
# "Out of dictionary word"
def test_a_quoted_or_escaped_path_with_spaces_is_an_image_file(small, tmp_path):
    model, data = small
    folder = tmp_path / "my pics #1"
    folder.mkdir()
    img = folder / "a b.png"
    img.write_bytes(b"features come from the factory")
    seen = []

    def factory(meta):
        def featurize(path):
            seen.append(path)
            return np.asarray(data.test_features[0], dtype=np.float32)

        return featurize

    session = QuerySession(model, topn=2, featurizer_factory=factory)
    for typed in (f"'{img}'", f'"{img}"', str(img).replace(" ", "\\ "), str(img)):
        text, ok = session.answer_ok(typed)
        assert ok and text.startswith(f"Image file: {img}"), (typed, text)
    assert seen == [str(img)] * 4


# fixed: "-cat" alone said "Out of dictionary word: -cat" although cat is a word
def test_a_lone_subtraction_says_what_to_add(small):
    model, _ = small
    text, ok = QuerySession(model).answer_ok("-class1")
    assert not ok and text.startswith("Give at least one word or image to add")


# fixed: "cat -cat" printed tables of arbitrary keys, every cosine 0.000000, as an answer
def test_a_sum_that_cancels_out_is_not_ranked(small):
    model, _ = small
    text, ok = QuerySession(model, topn=3).answer_ok("class1 -class1")
    assert not ok and "cancel out" in text and "0.000000" not in text


def test_a_key_with_a_zero_vector_has_no_neighbours(small):
    model, _ = small
    wv = model.wv
    i = wv.key_to_index["class2"]
    saved = wv.vectors[i].copy()
    try:
        wv.vectors[i] = 0
        wv.norms = None
        text, ok = QuerySession(model, topn=3).answer_ok("class2")
    finally:
        wv.vectors[i] = saved
        wv.norms = None
    assert "no direction" in text and "nan" not in text


# fixed: without torch (no [vision] extra) an image path ended the session with ModuleNotFoundError
def test_an_image_file_without_the_vision_extra_keeps_the_session(small, tmp_path, monkeypatch):
    model, _ = small
    img = tmp_path / "x.png"
    img.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "gensim_im2vec.features", None)  # import fails as without torch
    out = io.StringIO()
    n = query_loop(model, io.StringIO(f"{img}\nclass1\nEXIT\n"), out, topn=1)
    assert n == 1 and "pip install 'gensim-im2vec[vision]'" in out.getvalue()


# fixed: an extractor error on one file (e.g. CUDA out of memory, a RuntimeError) ended the session
def test_an_extractor_error_on_one_file_keeps_the_session(small, tmp_path):
    model, _ = small
    img = tmp_path / "x.png"
    img.write_bytes(b"x")

    def factory(meta):
        def featurize(path):
            raise RuntimeError("CUDA out of memory")

        return featurize

    out = io.StringIO()
    n = query_loop(model, io.StringIO(f"{img}\nclass1\nEXIT\n"), out, topn=1, featurizer_factory=factory)
    assert n == 1 and f"Cannot extract features of {img}: CUDA out of memory" in out.getvalue()
