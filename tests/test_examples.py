"""examples/: a user's first scripts, run for real on fixtures (query, YFCC100M, two-stage)."""

import subprocess
import sys
from pathlib import Path

import numpy as np

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


def test_example_help():  # the other examples run for real below; this one needs a CNN and images
    assert "usage: train_folder.py" in _run_example("train_folder.py", "--help")


def test_example_query_model(query_model):
    _, _, _, path, _ = query_model  # (image files at the prompt: test_scripted_session, test_cli_query)
    out = _run_example("query_model.py", path, "red", "green/1", "--topn", "3")
    assert "Word: red" in out and "Image: img:green/1" in out
    assert "as data: model.most_similar_images('red'" in out


def test_example_yfcc100m_on_the_fixture(tmp_path):
    out = _run_example("yfcc100m.py", DATA / "yfcc25.tsv", "--random-features", 16, "-o", tmp_path / "y.model",
                       "--vector-size", 8, "--epochs", 2)
    assert "4 documents" in out and "nearest images" in out
    model = Im2Vec.load(str(tmp_path / "y.model"))
    assert set(model.image_keys) == {"img:6985418911", "img:3049276051", "img:4172610339", "img:4444444444"}
    assert "sunset" in model.wv and "%2c" not in " ".join(model.word_keys)  # normalised, not raw


def test_example_two_stage(tmp_path):
    data = make_corpus(n_classes=3, n_images=90, n_features=8, n_text_sentences=200, seed=0)
    (tmp_path / "text.txt").write_text("".join(" ".join(d) + "\n" for d in data.docs if not d[0].startswith("img:")))
    (tmp_path / "docs.txt").write_text("".join(" ".join(d) + "\n" for d in data.docs if d[0].startswith("img:")))
    keys = list(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    out = _run_example("two_stage.py", "--text", tmp_path / "text.txt", "--documents", tmp_path / "docs.txt",
                       "--features", tmp_path / "store", "-o", tmp_path / "m.model", "--vector-size", 8,
                       "--text-epochs", 2, "--epochs", 2, "--query", "class1")
    assert "stage 2:" in out and "nearest images of 'class1'" in out
    model = Im2Vec.load(str(tmp_path / "m.model"))
    assert len(model.image_keys) == 90
