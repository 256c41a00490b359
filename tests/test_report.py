"""The static HTML report: structure (parsed), files, the 2-D map, and a headless Chromium render."""

import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gensim_im2vec import Im2Vec
from gensim_im2vec import report as report_module
from gensim_im2vec.evaluate import EvaluationReport, TaggingResult
from gensim_im2vec.report import embed_2d, render_table, write_report
from gensim_im2vec.synthetic import make_corpus

COLOURS = ["#d62728", "#2ca02c", "#1f77b4", "#ff7f0e"]
WINDOW = (1280, 2000)


class _Page(HTMLParser):
    """Collects img sources, section ids and the rows of every table by class."""

    def __init__(self):
        super().__init__()
        self.imgs, self.sections, self.rows, self.tables = [], [], {}, []
        self._table = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src"))
        elif tag == "section":
            self.sections.append(a.get("id"))
        elif tag == "table":
            self._table = a.get("class")
            self.tables.append(self._table)
            self.rows.setdefault(self._table, 0)
        elif tag == "tr" and self._table is not None:
            self.rows[self._table] += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    data = make_corpus(n_classes=4, n_images=160, n_features=16, n_test=8, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1, epochs=15,
                   sample=0, workers=1, seed=1)
    rng = np.random.default_rng(0)
    paths = {}

    def draw(key, c):
        p = tmp / "imgs" / (key.replace(":", "_").replace("/", "_") + ".png")
        im = Image.new("RGB", (80, 60), "white")
        x = int(rng.integers(0, 30))
        ImageDraw.Draw(im).ellipse((x, 10, x + 40, 50), fill=COLOURS[c])
        im.save(p)
        return str(p)

    (tmp / "imgs").mkdir()
    for k in list(data.labels)[:100]:  # the rest have no file: shown as a grey box
        paths[k] = draw(k, data.labels[k])
    test_keys = [f"img:test/{i}" for i in range(len(data.test_labels))]
    for k, c in zip(test_keys, data.test_labels):
        paths[k] = draw(k, int(c))
    (tmp / "imgs" / "broken.png").write_bytes(b"not a png")
    paths["img:0"] = str(tmp / "imgs" / "broken.png")  # unreadable: no thumbnail, no crash
    true = {k: [data.class_words[c]] for k, c in zip(test_keys, data.test_labels)}
    evaluation = {"Image → tag": [{"method": "im2vec", "P@1": 0.5, "zero-shot": {"mAP": 0.25}},
                                  {"method": "tag prior", "P@1": 0.1, "zero-shot": {"mAP": float("nan")}},
                                  {"method": "knn <k=20>", "P@1": 0.7, "zero-shot": {"mAP": None}}]}
    index = write_report(model, tmp / "out", test_keys=test_keys, test_features=data.test_features,
                         true_tags=true, image_paths=paths, evaluation=evaluation,
                         words=["class0", "class1", "no_such_word"], topn=3, map_method="pca", map_images=60)
    return model, data, index, test_keys


def test_files_and_structure(built):
    model, data, index, test_keys = built
    out = index.parent
    assert index.name == "index.html" and (out / "map.png").is_file()
    page = _Page()
    page.feed(index.read_text(encoding="utf-8"))
    assert page.sections == ["heldout", "words", "evaluation", "map"]
    # every referenced image exists, by a relative path inside the report folder
    assert page.imgs and all(src and not os.path.isabs(src) and "://" not in src for src in page.imgs)
    missing = [src for src in page.imgs if not (out / src).is_file()]
    assert not missing, missing
    thumbs = [src for src in page.imgs if src.startswith("thumbs/")]
    with Image.open(out / thumbs[0]) as im:
        assert im.format == "JPEG" and max(im.size) <= 128
    # one row per held-out image (+ header), per known word, per evaluation method (+ header)
    assert page.rows["tests"] == len(test_keys) + 1
    assert page.rows["words"] == 2
    assert page.rows["eval"] == 3 + 1
    html_text = index.read_text(encoding="utf-8")
    assert "zero-shot mAP" in html_text and "knn &lt;k=20&gt;" in html_text  # nested dict flattened; escaped
    assert "Not in the vocabulary: no_such_word" in html_text
    assert (out / "thumbs" / report_module._safe_name(test_keys[0])).is_file()


def test_heldout_words_are_the_spaces_nearest_tags(built):
    """Each held-out image lists its nearest tags (words of the image documents) by cosine in
    ``model.wv`` (gensim's own answer to ``model.project(features)``, filtered), in that order, with
    that cosine; true tags among them are marked."""
    model, data, index, test_keys = built
    html_text = index.read_text(encoding="utf-8")
    assert "nearest tags (top 3, cosine)" in html_text and "trained score" not in html_text
    body = html_text.split('<table class="tests">', 1)[1].split("</table>", 1)[0]
    rows = body.split("<tr>")[2:]  # after the header row
    assert len(rows) == len(test_keys)
    n_hits = 0
    for row, f, c in zip(rows, data.test_features, data.test_labels):
        ranked = model.wv.similar_by_vector(model.project(f), topn=len(model.wv))
        expected = [(w, s) for w, s in ranked if w in model.image_tag_counts][:3]
        positions = [row.index(f">{w} <small>{s:.3f}</small>") for w, s in expected]
        assert positions == sorted(positions)  # in the space's order, with its cosine
        assert row.count("<small>") == 3
        hits = sum(w == data.class_words[c] for w, _ in expected)
        assert f">{hits}/3<" in row
        n_hits += hits
    assert html_text.count('class="tag hit">') == 2 * n_hits  # marked in both columns
    assert n_hits >= len(test_keys) // 2  # a held-out image finds its class word by cosine


def test_map_png(built):
    _, _, index, _ = built
    with Image.open(index.parent / "map.png") as im:
        assert im.size == (1200, 900)
        arr = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert arr.std() > 10  # words and thumbnails drawn, not an empty canvas


def test_embed_2d_methods():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(15, 8)) + 5 * np.eye(8)[0], rng.normal(size=(15, 8)) - 5 * np.eye(8)[0]])
    for method in ("pca", "tsne"):
        coords, used = embed_2d(x, method)
        assert used == method and coords.shape == (30, 2) and np.isfinite(coords).all()
        # the two clusters stay apart: each point's nearest neighbour is in its own cluster
        d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        assert (d.argmin(axis=1) // 15 == np.arange(30) // 15).mean() > 0.9
    with pytest.raises(ValueError, match="map method"):
        embed_2d(x, "mds")


def test_render_table():
    html_text = render_table([{"a": 1, "b": {"c": 0.12345}}, {"a": "<x>"}])
    assert "<th>b c</th>" in html_text and "0.123" in html_text and "&lt;x&gt;" in html_text


def test_make_thumbnail(tmp_path):
    src = tmp_path / "rgba.png"
    Image.new("RGBA", (300, 100), (0, 0, 0, 0)).save(src)  # fully transparent: must become white
    assert report_module.make_thumbnail(src, tmp_path / "t.jpg", size=64)
    with Image.open(tmp_path / "t.jpg") as im:
        assert im.size == (64, 21) and min(im.convert("L").getextrema()) > 240
    (tmp_path / "bad.png").write_bytes(b"not a png")
    assert not report_module.make_thumbnail(tmp_path / "bad.png", tmp_path / "b.jpg")
    assert not (tmp_path / "b.jpg").exists()


def test_bad_input(built):
    model, data, _, _ = built
    with pytest.raises(ValueError, match="test_keys"):
        write_report(model, "/tmp/never", test_keys=["a"], test_features=data.test_features)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_renders_in_headless_chromium(built, tmp_path):
    _, _, index, _ = built
    shot = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", index.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"chromium wrote no screenshot (rc {res.returncode}): {res.stderr[-2000:]}"
    with Image.open(shot) as im:
        assert im.size == WINDOW
        arr = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert arr.std() > 20, "the screenshot is blank"
    # the thumbnails rendered: strongly coloured pixels (the drawn discs) fill part of the page
    sat = arr.max(axis=2) - arr.min(axis=2)
    assert (sat > 100).mean() > 0.005


def test_cli_report_on_a_dataset_folder(tmp_path):
    import json

    from click.testing import CliRunner

    from gensim_im2vec.cli import main
    from gensim_im2vec.datasets import Split
    from gensim_im2vec.store import FeatureStore

    rng = np.random.default_rng(0)
    names = {"red": ["fire", "warm"], "green": ["grass", "leaf"], "blue": ["sea", "sky"]}
    protos = {c: rng.normal(size=16) for c in names}
    keys, vecs, docs, train, test = [], [], [], [], []
    ds = tmp_path / "ds"
    (ds / "shapes").mkdir(parents=True)
    for ci, (colour, tags) in enumerate(names.items()):
        for i in range(8):
            key = f"shapes/{colour}{chr(97 + i)}"
            Image.new("RGB", (30, 20), COLOURS[ci]).save(ds / f"{key}.png")
            (ds / f"{key}.json").write_text(json.dumps({"title": f"A {colour} thing", "tags": [colour, *tags]}))
            keys.append("img:" + key)
            vecs.append(protos[colour] + 0.2 * rng.normal(size=16))
            (test if i >= 6 else train).append(key)
            if i < 6:
                docs.append(["img:" + key, colour, *tags])
    Split(train=train, test=test, zero_shot_tags=[], groups={k: k for k in train + test}).save(ds / "split.json")
    store = FeatureStore.from_arrays(tmp_path / "store", keys, np.array(vecs, dtype=np.float32))
    model = Im2Vec(docs * 5, image_features=store, vector_size=8, sg=1, min_count=1, epochs=10, sample=0,
                   workers=1, seed=1)
    model.save(str(tmp_path / "m.model"))
    (tmp_path / "eval.json").write_text(json.dumps({
        "info": {"n_test_images": 6},
        "image_tagging": [{"method": "im2vec", "metrics": {"all": {"map": 0.5, "p@5": 0.2}}},
                          {"method": "prior", "metrics": {"all": {"map": 0.1, "p@5": None}}}],
        "word_similarity": [{"model": "text only", "wordsim353": 0.55}]}))
    res = CliRunner().invoke(main, ["report", str(tmp_path / "m.model"), "-o", str(tmp_path / "out"),
                                    "--dataset", str(ds), "--evaluation", str(tmp_path / "eval.json"),
                                    "--map-method", "pca", "--words", "red,sky", "--topn", "3"])
    assert res.exit_code == 0, res.output
    assert "(6 held-out images)" in res.output
    fewer = CliRunner().invoke(main, ["report", str(tmp_path / "m.model"), "-o", str(tmp_path / "out2"),
                                      "--dataset", str(ds), "--map-method", "pca", "--max-test-images", "2"])
    assert fewer.exit_code == 0, fewer.output
    assert "(2 held-out images of the 6 with features (--max-test-images shows more))" in fewer.output
    page = _Page()
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    page.feed(text)
    # an EvaluationReport's JSON (even a partial one): its readable tables, not "metrics all map" columns
    assert page.rows["tests"] == 7 and page.rows["words"] == 2
    assert page.rows["eval image-tagging"] == 2 + 1 and page.rows["eval word-similarity"] == 1 + 1
    assert "metrics all map" not in text and "Word similarity" in text
    assert '<th class="num">P@5</th><th class="num">mAP</th><th>note</th>' in text
    assert all((tmp_path / "out" / src).is_file() for src in page.imgs)
    # true tags come from the sidecars, normalised; the held-out images have thumbnails
    row = text.split("<td>img:shapes/blueg</td>", 1)[1].split("</tr>", 1)[0]
    assert all(f'">{t}</span>' in row for t in ("blue", "sea", "sky"))
    assert sum(src.startswith("thumbs/") for src in page.imgs) >= 6


def test_cli_report_on_a_demo_dataset_finds_its_feature_store(tmp_path):
    """`im2vec report MODEL --dataset OUT/data/NAME` of a demo run: the model's features hold its
    training images only, the held-out ones are in OUT/features/NAME (where `im2vec evaluate --demo`
    reads them). The report used to stop, advising `im2vec extract` of features that were there."""
    from click.testing import CliRunner

    from gensim_im2vec.cli import main
    from gensim_im2vec.datasets import Split
    from gensim_im2vec.store import FeatureStore

    rng = np.random.default_rng(0)
    meta = {"arch": "mobilenet_v2", "weights": "MobileNet_V2_Weights.IMAGENET1K_V1", "layer": "penultimate"}
    ds = tmp_path / "out" / "data" / "shapes"
    ds.mkdir(parents=True)
    keys, vecs, docs, train, test = [], [], [], [], []
    for ci, colour in enumerate(["red", "green", "blue"]):
        proto = rng.normal(size=16)
        for i in range(6):
            key = f"{colour}{i}"
            Image.new("RGB", (20, 20), COLOURS[ci]).save(ds / f"{key}.png")
            (ds / f"{key}.json").write_text(json.dumps({"tags": [colour]}))
            keys.append("img:" + key)
            vecs.append(proto + 0.2 * rng.normal(size=16))
            (test if i >= 4 else train).append(key)
            if i < 4:
                docs.append(["img:" + key, colour, "thing"])
    Split(train=train, test=test, zero_shot_tags=[], groups={k: k for k in train + test}).save(ds / "split.json")
    vecs = np.array(vecs, dtype=np.float32)
    FeatureStore.from_arrays(tmp_path / "out" / "features" / "shapes", keys, vecs, metadata=meta)  # every image
    trained = [i for i, k in enumerate(keys) if k[4:] in train]
    own = FeatureStore.from_arrays(tmp_path / "own", [keys[i] for i in trained], vecs[trained], metadata=meta)
    Im2Vec(docs * 5, image_features=own, vector_size=8, min_count=1, epochs=2, workers=1,
           seed=1).save(str(tmp_path / "m.model"))
    res = CliRunner().invoke(main, ["report", str(tmp_path / "m.model"), "-o", str(tmp_path / "r"), "--dataset",
                                    str(ds), "--map-method", "pca"])
    said = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "(6 held-out images)" in said
    assert (f"the held-out images' features from {tmp_path / 'out' / 'features' / 'shapes'}, which holds 6 of the 6 "
            f"test images of {ds} and comes from the model's extractor") in said
    # given a store that lacks them, the error names the one that holds them, not `im2vec extract`
    res = CliRunner().invoke(main, ["report", str(tmp_path / "m.model"), "-o", str(tmp_path / "r2"), "--dataset",
                                    str(ds), "--features", str(tmp_path / "own")])
    said = " ".join(res.output.split())
    assert res.exit_code == 1 and "none of the 6 test images" in said and "im2vec extract" not in said
    assert f"Pass --features {tmp_path / 'out' / 'features' / 'shapes'}, which holds 6 of them." in said
    # a damaged store where one is looked for (its pca.npz) is passed over, not a traceback
    damaged = tmp_path / "out" / "data" / "features" / "shapes"
    shutil.copytree(tmp_path / "out" / "features" / "shapes", damaged)
    record = json.loads((damaged / "metadata.json").read_text())
    (damaged / "metadata.json").write_text(json.dumps({**record, "pca": {"n_components": 16, "applied": "on_read"}}))
    (damaged / "pca.npz").write_bytes(b"PK\x03\x04garbage")
    res = CliRunner().invoke(main, ["report", str(tmp_path / "m.model"), "-o", str(tmp_path / "r4"), "--dataset",
                                    str(ds), "--map-method", "pca"])
    assert res.exit_code == 0 and "(6 held-out images)" in " ".join(res.output.split()), res.output
    # a model trained from arrays records no extractor: the store is named, not used (it may be another's)
    Im2Vec(docs * 5, image_features={keys[i]: vecs[i] for i in trained}, vector_size=8, min_count=1, epochs=2,
           workers=1, seed=1).save(str(tmp_path / "arrays.model"))
    res = CliRunner().invoke(main, ["report", str(tmp_path / "arrays.model"), "-o", str(tmp_path / "r5"),
                                    "--dataset", str(ds)])
    said = " ".join(res.output.split())
    assert res.exit_code == 1 and "the held-out images' features from" not in said, res.output
    assert (f"Pass --features {tmp_path / 'out' / 'features' / 'shapes'}, which holds 6 of them (the model records "
            f"no extractor") in said
    # no such store: extracting them is the fix
    shutil.rmtree(tmp_path / "out" / "features")
    res = CliRunner().invoke(main, ["report", str(tmp_path / "m.model"), "-o", str(tmp_path / "r3"), "--dataset",
                                    str(ds)])
    assert res.exit_code == 1 and f"(`im2vec extract {ds} -o STORE`)" in " ".join(res.output.split())


def test_mathtext_like_words_are_drawn_as_plain_text(tmp_path):
    # '$\frac{$' used to abort the whole report (matplotlib parsed it as mathtext)
    data = make_corpus(n_classes=2, n_images=40, n_features=8, n_test=2, seed=0)
    odd = ["$\\frac{$", "$x^2$", "a$b"]
    docs = [doc + odd for doc in data.docs]  # the most frequent words: they are on the map
    model = Im2Vec(docs, image_features=data.features, vector_size=8, sg=1, min_count=1, epochs=2, sample=0,
                   workers=1, seed=1)
    index = write_report(model, tmp_path / "out", map_method="pca", words=odd)
    with Image.open(index.parent / "map.png") as im:
        assert im.size == (1200, 900)
    html_text = index.read_text(encoding="utf-8")
    assert "$\\frac{$" in html_text  # listed as it is (escaped for HTML, nothing to escape here)


# ---------------------------------------------------------------- a folder of the user's is never written into
@pytest.mark.parametrize("mine", ["index.html", "thumbs/holiday.jpg", "notes.txt"])
def test_refuses_a_folder_of_the_users_and_leaves_it_as_it_was(built, tmp_path, mine):
    # the report used to replace a user's index.html / map.png / thumbs/... in the folder
    model = built[0]
    out = tmp_path / "mine"
    (out / mine).parent.mkdir(parents=True)
    (out / mine).write_text("<p>my own page</p>")
    with pytest.raises(FileExistsError) as err:
        write_report(model, out, map_method="pca")
    message = str(err.value)
    assert f"the folder {str(out)!r} is not empty" in message and f"it holds {mine!r}" in message
    assert "Choose a new or empty folder" in message
    assert (out / mine).read_text() == "<p>my own page</p>"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [mine]


def test_an_empty_folder_an_earlier_or_an_interrupted_report_is_written(built, tmp_path, monkeypatch):
    model = built[0]
    out = tmp_path / "r"
    out.mkdir()
    assert write_report(model, out, map_method="pca", words=["class0"]).is_file()  # empty, existing
    assert write_report(model, out, map_method="pca", words=["class1"]).is_file()  # its own earlier report
    interrupted = tmp_path / "i"
    monkeypatch.setattr(report_module, "_draw_map", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # dies after the thumbnails, before index.html
        write_report(model, interrupted, map_method="pca", words=["class0"])
    assert not (interrupted / "index.html").exists()
    monkeypatch.undo()
    assert write_report(model, interrupted, map_method="pca", words=["class0"]).is_file()  # rerun: fine
    older = tmp_path / "older"  # a report of a version without the marker: recognised by its page
    (older / "thumbs").mkdir(parents=True)
    (older / "index.html").write_text((out / "index.html").read_text(encoding="utf-8"), encoding="utf-8")
    assert write_report(model, older, map_method="pca", words=["class0"]).is_file()


def test_a_replaced_report_keeps_only_its_own_thumbnails(built, tmp_path):
    """A report written over an earlier one kept the earlier one's thumbnails (39 of 77 files in
    the audit, some of images no longer in the data); every file of thumbs/ is now one the page shows."""
    model, data, _, test_keys = built
    paths = {}
    for i, k in enumerate(test_keys):
        paths[k] = str(tmp_path / f"{i}.png")
        Image.new("RGB", (20, 20), COLOURS[i % len(COLOURS)]).save(paths[k])
    out = tmp_path / "r"
    write_report(model, out, test_keys=test_keys, test_features=data.test_features, image_paths=paths,
                 words=["class0"], topn=2, map_images=0, map_words=0)
    first = {p.name for p in (out / "thumbs").iterdir()}
    index = write_report(model, out, test_keys=test_keys[:2], test_features=data.test_features[:2],
                         image_paths=paths, words=["class0"], topn=2, map_images=0, map_words=0)
    page = _Page()
    page.feed(index.read_text(encoding="utf-8"))
    shown = {Path(src).name for src in page.imgs if src and src.startswith("thumbs/")}
    left = {p.name for p in (out / "thumbs").iterdir()}
    assert left == shown and len(left) < len(first)


# ---------------------------------------------------------------- the evaluation as `im2vec evaluate` prints it
def _ev() -> EvaluationReport:
    """A report with every part format_table prints: a not-applicable row, in-sample, the space's
    checks, word similarity with its Δ row, and targets met (1, 2, 5, 7) and missed (3: ridge's
    zero-shot mAP is higher; 4; 6)."""
    def m(p1, mp, zs_map, seen_tag):
        return {"all": {"p@1": p1, "p@5": p1 / 2, "r@10": 0.75, "map": mp, "tag_map": 0.4, "n_candidates": 30},
                "seen": {"map": mp + 0.02, "tag_map": seen_tag}, "zero_shot": {"p@5": 0.1, "map": zs_map,
                                                                               "tag_map": 0.05}}
    rows = [TaggingResult("Im2Vec (cosine in model.wv)", "cosine in the space",
                          metrics={**m(0.5, 0.6, 0.2, 0.3), "in_sample": {"map": 0.8, "n_images": 10}}, seconds=1.5),
            TaggingResult("ridge → tag vectors", "linear <map> & cosine", metrics=m(0.4, 0.5, 0.3, 0.2)),
            TaggingResult("kNN (k=20)", "supervised", metrics=m(0.45, 0.55, float("nan"), 0.35)),
            TaggingResult("id-token Word2Vec", "cannot place unseen images", applicable=False,
                          metrics={"in_sample": {"map": 0.9, "n_images": 10}})]
    words = [{"model": "text-only Word2Vec", "wordsim353": 0.5, "simlex999": 0.3, "analogies": 0.2, "vocab": 100},
             {"model": "Im2Vec words", "wordsim353": 0.49, "simlex999": float("nan"), "analogies": 0.19, "vocab": 110},
             {"model": "Δ (Im2Vec − text)", "wordsim353": -0.01, "simlex999": float("nan"), "analogies": -0.01}]
    space = {"one_space": {"n": 10, "nearest_image": 0.9, "nearest_word": 0.5, "own_tags": 0.4, "random_words": 0.0},
             "image_to_image": {"k": 10, "model": 0.4, "raw_features": 0.3},
             "analogies": {"n": 12, "hit@1": 0.25, "nearest_image_hit@1": 0.1, "bag_of_words_hit@1": 0.5}}
    info = {"n_test_images": 20, "n_candidates": 30, "n_zero_shot_tags": 5, "seconds": 3.0}
    return EvaluationReport(rows=rows, word_similarity=words, info=info, space=space)


class _Cells(HTMLParser):
    """The evaluation section's tables by class: rows of (text, td/th class)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._cls = {}, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._rows = self.tables.setdefault(a.get("class"), [])
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._cls = "", a.get("class")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._rows[-1].append((self._cell, self._cls))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _section(index) -> str:
    return index.read_text(encoding="utf-8").split('<section id="evaluation">', 1)[1].split("</section>", 1)[0]


def _text_row(table_text: str, first: str) -> list[str]:
    """A row of format_table's text, split into its cells (columns are 2+ spaces apart)."""
    line = next(x for x in table_text.splitlines() if x.startswith(first))
    return re.split(r" {2,}", line)


def test_an_evaluation_report_shows_the_tables_im2vec_evaluate_prints(built, tmp_path):
    model = built[0]
    ev = _ev()
    index = write_report(model, tmp_path / "out", evaluation=ev, words=["class0"], map_words=0, map_images=0)
    section = _section(index)
    parser = _Cells()
    parser.feed(section)
    tables = {k: [[text for text, _ in row] for row in rows] for k, rows in parser.tables.items()}
    assert list(tables) == ["eval image-tagging", "eval word-similarity", "eval targets"]
    printed = ev.format_table()
    # the tagging table: format_table's columns and headings, and a method's figures as printed
    tagging = tables["eval image-tagging"]
    assert tagging[0] == _text_row(printed, "method") == [
        "method", "P@1", "P@5", "R@10", "mAP", "tag→img", "seen mAP", "ZS P@5", "ZS mAP", "ZS tag→img", "note"]
    im2vec = next(r for r in tagging if r[0].startswith("Im2Vec"))
    assert im2vec == _text_row(printed, "Im2Vec") == [
        "Im2Vec (cosine in model.wv)", "0.500", "0.250", "0.750", "0.600", "0.400", "0.620", "0.100", "0.200",
        "0.050", "cosine in the space"]
    assert tagging[-1] == ["id-token Word2Vec", *["—"] * 9,
                           "cannot place unseen images; in-sample mAP 0.900 on 10 training images"]
    # every row of every table is a line of the printed text (same cells, same precision)
    lines = {" ".join(x.split()) for x in printed.splitlines()}
    for rows in tables.values():
        for row in rows:
            assert " ".join(" ".join(row).split()) in lines, row
    assert tables["eval word-similarity"][-1][:4] == ["Δ (Im2Vec − text)", "-0.010", "—", "-1.0%"]
    # the lines between the tables
    for line in ("in-sample (training images&#x27; own tags, by their rows of model.wv): Im2Vec (cosine in "
                 "model.wv) mAP 0.800", "The space itself (plain cosine in model.wv)",
                 "one space, not two clouds (10 training images)", "hit@1 25.0%",
                 "Word similarity (Spearman ρ) and analogies (top 30000 words)",
                 "Image → tag on 20 held-out images, 30 candidate tags (5 zero-shot"):
        assert line in section, line
    # targets with their met column, marked by class
    targets = parser.tables["eval targets"]
    assert [t for t, _ in targets[0]] == ["target", "value", "bar", "compared with", "met"]
    met = [(row[0][0].split(".")[0], row[-1]) for row in targets[1:]]
    assert met == [("1", ("yes", "met yes")), ("2", ("yes", "met yes")), ("3", ("NO", "met no")),
                   ("4", ("NO", "met no")), ("5", ("yes", "met yes")), ("6", ("NO", "met no")),
                   ("7", ("yes", "met yes"))]
    assert [t["ok"] for t in ev.targets()] == [m == "yes" for _, (m, _) in met]
    assert "td.met.no{" in index.read_text(encoding="utf-8")  # styled
    # readable: no internal names; text escaped; where the rest is
    for internal in ("n_candidates", "metrics", "seconds", "zero_shot", "tag_map", "in_sample", "applicable"):
        assert internal not in section, internal
    assert "linear &lt;map&gt; &amp; cosine" in section and "<map>" not in section
    assert "EvaluationReport.save_json" in section


def test_an_evaluation_json_path_is_read_and_linked(built, tmp_path):
    model = built[0]
    ev = _ev()
    ev.save_json(tmp_path / "ev" / "e v.json")
    by_object = _section(write_report(model, tmp_path / "a", evaluation=ev, words=["class0"], map_words=0,
                                      map_images=0))
    index = write_report(model, tmp_path / "out", evaluation=tmp_path / "ev" / "e v.json", words=["class0"],
                         map_words=0, map_images=0)
    by_path = _section(index)
    tables = by_path.split('<table class="eval image-tagging">', 1)[1]
    assert tables == by_object.split('<table class="eval image-tagging">', 1)[1]  # the same tables, read back
    href = re.search(r'<a href="([^"]+)"><code>[^<]*e v\.json</code></a>', by_path).group(1)
    assert href == "../ev/e%20v.json" and (index.parent / "../ev/e v.json").is_file()
    # a file that is not a report's: refused, naming it, before anything is written
    (tmp_path / "rows.json").write_text(json.dumps([{"method": "m", "mAP": 0.5}]))
    with pytest.raises(ValueError, match=r"rows\.json: .*'image_tagging' list, got list.*pass the list of dicts"):
        write_report(model, tmp_path / "never", evaluation=str(tmp_path / "rows.json"), map_words=0, map_images=0)
    assert not (tmp_path / "never").exists()


def test_rows_of_dicts_render_as_they_are():
    rows = [{"method": "im2vec", "metrics": {"all": {"map": 0.5}}, "seconds": 1.25}]
    want = render_table(rows)
    assert "<th>metrics all map</th>" in want
    for evaluation, title in ((rows, ""), ({"My <table>": rows}, "<h3>My &lt;table&gt;</h3>")):
        assert report_module._evaluation_section(evaluation) == (
            f'<section id="evaluation"><h2>Evaluation</h2>{title}{chr(10) if title else ""}{want}</section>')


def test_an_evaluation_report_round_trips_through_its_json(tmp_path):
    ev = _ev()
    for row in ev.rows:  # a column undefined for every method is still shown (as "—") after the trip
        row.metrics.setdefault("all", {})["p@1"] = float("nan")
    back = EvaluationReport.from_dict(ev.to_dict())
    assert back.format_table() == ev.format_table() and "P@1" in back.format_table().splitlines()[1]
    assert math.isnan(back.rows[0].metrics["all"]["p@1"]) and back.rows[0].seconds == 1.5
    ev.save_json(tmp_path / "e.json")
    assert EvaluationReport.load_json(tmp_path / "e.json").format_table() == ev.format_table()
    assert back.to_dict() == ev.to_dict()
    # format_table lays out table_rows: the same cells
    parts = {p["name"]: p for p in ev.table_rows()}
    assert list(parts) == ["image_tagging", "in_sample", "space", "word_similarity", "targets"]
    assert parts["targets"]["met"] == [t["ok"] for t in ev.targets()]
    for row in [parts["image_tagging"]["header"], *parts["image_tagging"]["rows"]]:
        assert _text_row(ev.format_table(), row[0]) == row
    # a damaged file names the culprit
    bad = ev.to_dict()
    del bad["image_tagging"][1]["method"]
    with pytest.raises(ValueError, match=r"image_tagging\[1\]: expected an object with a 'method' string"):
        EvaluationReport.from_dict(bad)
    bad = ev.to_dict()
    bad["image_tagging"][0]["metrics"]["all"]["map"] = "high"
    with pytest.raises(ValueError, match=r"image_tagging\[0\] \('Im2Vec \(cosine in model.wv\)'\): 'metrics' must"):
        EvaluationReport.from_dict(bad)
    (tmp_path / "x.json").write_text("not json")
    with pytest.raises(ValueError, match=r"x\.json: not a JSON file"):
        EvaluationReport.load_json(tmp_path / "x.json")


def test_cli_report_shows_an_evaluation_reports_json_and_plain_rows(built, tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    model = built[0]
    model.save(str(tmp_path / "m.model"))
    ev = _ev()
    ev.save_json(tmp_path / "evaluation.json")
    (tmp_path / "rows.json").write_text(json.dumps([{"method": "im2vec", "zero-shot": {"mAP": 0.25}}]))
    base = ["report", str(tmp_path / "m.model"), "--map-method", "pca", "--words", "class0"]
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "r"), "--evaluation",
                                    str(tmp_path / "evaluation.json")])
    assert res.exit_code == 0, res.output
    section = _section(tmp_path / "r" / "index.html")
    parser = _Cells()
    parser.feed(section)
    assert [t for t, _ in parser.tables["eval image-tagging"][1]] == _text_row(ev.format_table(), "Im2Vec")
    assert [c for _, c in parser.tables["eval targets"][3]][-1] == "met no"
    assert "n_candidates" not in section and 'href="../evaluation.json"' in section
    # a plain list of rows: one table as before
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "p"), "--evaluation", str(tmp_path / "rows.json")])
    assert res.exit_code == 0, res.output
    section = _section(tmp_path / "p" / "index.html")
    assert section == '<h2>Evaluation</h2>' + render_table([{"method": "im2vec", "zero-shot": {"mAP": 0.25}}])
    # a damaged report's JSON names the file and the fault
    bad = ev.to_dict()
    bad["image_tagging"][0]["metrics"] = {"all": {"map": "high"}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b"), "--evaluation", str(tmp_path / "bad.json")])
    assert res.exit_code != 0 and f"--evaluation {tmp_path / 'bad.json'}: EvaluationReport.from_dict" in res.output
    assert "'metrics' must be" in res.output and not (tmp_path / "b" / "index.html").exists()
