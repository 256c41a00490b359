"""examples/: a user's first scripts, run for real on fixtures (synthetic tour, folder, query, YFCC100M,
two-stage); what they print is the space's answer (``model.wv``), checked against the saved model."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATA = Path(__file__).resolve().parent / "data"


def _run_example(name, *args):
    res = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True, text=True,
                         timeout=240, cwd=EXAMPLES.parent)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res.stdout


def _listed(out, title):
    """The (key, score) rows printed under `title` by synthetic_demo.py's show()."""
    block = out.split(title + "\n", 1)[1].split("\n\n", 1)[0]
    return [(k, float(s)) for k, s in (line.split() for line in block.splitlines())]


def test_example_synthetic_demo():
    out = _run_example("synthetic_demo.py", "--images", 1000, "--epochs", 5)
    assert "predict" not in out and "trained score" not in out
    words = [w for w, _ in _listed(out, "Image: img:7 (class 7), nearest words")]
    assert words[:2] == ["class7", "class7_r0"], out  # a training image's own tags, by cosine in model.wv
    unseen = [w for w, _ in _listed(out, "Unseen image of class 3: nearest words by cosine (model.similar_by_image)")]
    assert unseen and unseen[0].split("_r")[0] == "class3", out
    acc = float(re.search(r"their class's \(class word or related tag\): ([\d.]+)%", out).group(1))
    assert acc >= 80.0, out  # chance: 10 %
    # the analogy's images are listed with their true classes (the heading alone claimed class 2)
    block = out.split("Analogy: img:1 (class 1) - class1 + class2  ->  images\n", 1)[1].split("\n\n", 1)[0]
    rows, said = block.splitlines()[:-1], block.splitlines()[-1]
    data = make_corpus(n_classes=10, n_images=1000, n_features=128, n_related=1, n_text_sentences=2000, seed=0)
    assert said.startswith(f"their classes: {[data.labels[line.split()[0]] for line in rows]} "), out


def test_example_help():
    assert "usage: train_folder.py" in _run_example("train_folder.py", "--help")


def test_example_train_folder(tmp_path):
    """The README's offline smoke test: random-init CNN on the bundled folder; an image's printed
    nearest words are the saved model's ``most_similar_words`` and hold its own caption words."""
    out = _run_example("train_folder.py", DATA / "folder", "-o", tmp_path / "tiny.im2vec", "--weights", "none",
                       "--arch", "resnet18", "--device", "cpu", "--vector-size", 8, "--epochs", 3)
    assert "trained score" not in out
    model = Im2Vec.load(str(tmp_path / "tiny.im2vec"))
    printed = dict(re.findall(r"^(img:\S+)  nearest words: (.*)$", out, flags=re.M))
    assert printed and set(printed) <= set(model.image_keys)
    for key, line in printed.items():
        assert line == ", ".join(f"{w} {s:.2f}" for w, s in model.most_similar_words(key, topn=5))
    assert "robin" in printed["img:animals/birds/robin"].split()  # its caption's words come first


def test_example_query_model(query_model):
    _, _, _, path, _ = query_model  # (image files at the prompt: test_scripted_session, test_cli_query)
    model = query_model[0]
    out = _run_example("query_model.py", path, "red", "green/1", "--topn", "3")
    assert "Word: red" in out and "Image: img:green/1" in out
    assert "as data: model.most_similar_images('red'" in out
    line = re.search(r"as data: model.most_similar_tags\('img:green/1', topn=3\) -> (.*)", out).group(1)
    assert ast.literal_eval(line) == [(w, round(s, 3)) for w, s in model.most_similar_tags("img:green/1", topn=3)]


def test_example_yfcc100m_on_the_fixture(tmp_path):
    out = _run_example("yfcc100m.py", DATA / "yfcc25.tsv", "--random-features", 16, "-o", tmp_path / "y.model",
                       "--vector-size", 8, "--epochs", 2)
    assert "4 documents" in out and "nearest images" in out
    model = Im2Vec.load(str(tmp_path / "y.model"))
    key = model.image_keys[0]
    line = re.search(rf"^{re.escape(key)}: nearest words (.*)$", out, flags=re.M).group(1)
    assert ast.literal_eval(line) == [(w, round(s, 3)) for w, s in model.most_similar_words(key, topn=5)]
    assert set(model.image_keys) == {"img:6985418911", "img:3049276051", "img:4172610339", "img:4444444444"}
    assert "sunset" in model.wv and "%2c" not in " ".join(model.word_keys)  # normalised, not raw


@pytest.mark.parametrize("source", ["text", "vectors"])
def test_example_two_stage(tmp_path, source):
    data = make_corpus(n_classes=3, n_images=90, n_features=8, n_text_sentences=200, seed=0)
    text = [d for d in data.docs if not d[0].startswith("img:")]
    (tmp_path / "text.txt").write_text("".join(" ".join(d) + "\n" for d in text))
    (tmp_path / "docs.txt").write_text("".join(" ".join(d) + "\n" for d in data.docs if d[0].startswith("img:")))
    keys = list(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    if source == "text":
        first = ["--text", tmp_path / "text.txt", "--vector-size", 8, "--text-epochs", 2]
    else:  # pretrained vectors alone, as GoogleNews's file
        vectors = Word2Vec(text, vector_size=8, min_count=1, epochs=2, workers=1, seed=1).wv
        vectors.save_word2vec_format(str(tmp_path / "vectors.bin.gz"), binary=True)
        first = ["--vectors", tmp_path / "vectors.bin.gz"]
    out = _run_example("two_stage.py", *first, "--documents", tmp_path / "docs.txt",
                       "--features", tmp_path / "store", "-o", tmp_path / "m.model", "--epochs", 2, "--query", "class1")
    assert "stage 2:" in out and "nearest images of 'class1'" in out
    model = Im2Vec.load(str(tmp_path / "m.model"))
    assert len(model.image_keys) == 90
    if source == "vectors":
        assert np.array_equal(model.wv["class1"], vectors["class1"]) and model.sg == 1
    image = model.image_keys[0]
    block = out.split(f"nearest tags of {image!r} (the words of the image documents, not the whole text):\n",
                      1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in block.splitlines()] == [w for w, _ in model.most_similar_tags(image, topn=5)]


def test_yfcc100m_example_reads_download_urls_of_a_bom_crlf_file(tmp_path):
    """A metadata file saved by a Windows tool (a BOM, CRLF endings) gave the first photo's id a
    BOM and every URL a trailing CR."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_yfcc_example", EXAMPLES / "yfcc100m.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [line.split(b"\t") for line in (DATA / "yfcc25.tsv").read_bytes().splitlines()]
    lines = [b"\t".join([r[1], *r[3:]]) for r in rows if len(r) == 25]  # the 23-column layout: the id first
    plain = tmp_path / "plain.tsv"
    plain.write_bytes(b"\n".join(lines) + b"\n")
    windows = tmp_path / "windows.tsv"
    windows.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    expected = module.download_urls(str(plain))
    assert expected and all(not u.endswith("\r") for u in expected.values())
    assert module.download_urls(str(windows)) == expected
