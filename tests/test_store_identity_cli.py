"""A model's feature store given to the commands that open the model (a moved store, issue: "moved
feature store"), and a store of another extractor refused (issue: "a store from another CNN is
accepted silently").

1. A store moved after training: ``query --store``, ``evaluate --features`` / ``--train-features``,
   ``report --features``, ``export --store`` and ``index --store`` load the model with the store
   given (``Im2Vec.load(..., image_features=STORE)``) instead of stopping with the Python fix; the
   error of a command given no store names that command's own option.
2. A store whose metadata.json says another extractor (arch, weights, layer, preprocessing,
   normalisation) than the model's record is refused, by the CLI and by ``Im2Vec.load(...,
   image_features=)``, naming both and the fix; a store that records no extractor (made by
   ``FeatureStore.from_arrays`` without it) is taken with a warning; the same extractor's store
   extracted again (another store id, the same images) is taken.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore, StoreMismatchError

DIM = 6
PRE = ("ImageClassification( crop_size=[224] resize_size=[256] mean=[0.485, 0.456, 0.406] std=[0.229, 0.224, "
       "0.225] interpolation=InterpolationMode.BILINEAR ) + JPEG draft decode (shorter side >= 256)")
MOBILENET = {"arch": "mobilenet_v2", "weights": "MobileNet_V2_Weights.IMAGENET1K_V1", "layer": "penultimate",
             "preprocessing": PRE, "normalisation": "none"}
EFFICIENTNET = {"arch": "efficientnet_b0", "weights": "none (random init, seed=0)", "layer": "penultimate",
                "preprocessing": PRE.replace("BILINEAR", "BICUBIC"), "normalisation": "none"}
TAGS = ["red", "green", "blue"]
TRAIN = [f"img:t{i}" for i in range(12)]
TEST = [f"img:h{i}" for i in range(3)]


def _vectors(keys, seed=0):
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(3, DIM))
    return np.stack([protos[int(k[5:]) % 3] + 0.1 * rng.normal(size=DIM) for k in keys]).astype(np.float32)


def _store(path, metadata=MOBILENET, keys=TRAIN + TEST, seed=0):
    """A store as `im2vec extract` writes one: its metadata says which extractor made its rows."""
    return FeatureStore.from_arrays(path, keys, _vectors(keys, seed), metadata=metadata)


@pytest.fixture
def project(tmp_path):
    """A tiny model trained on the store feats/ (vector_size 8), held-out images in test.jsonl."""
    store = _store(tmp_path / "feats")
    docs = [[k, TAGS[int(k[5:]) % 3], "photo"] for k in TRAIN] * 3
    model = Im2Vec(docs, image_features=store, vector_size=8, sg=1, min_count=1, epochs=3, workers=1, seed=1,
                   sample=0)
    model.save(str(tmp_path / "m.im2vec"))
    with open(tmp_path / "test.jsonl", "w", encoding="utf-8") as f:
        for k in TEST:
            f.write(json.dumps({"key": k, "tags": [TAGS[int(k[5:]) % 3]]}) + "\n")
    return tmp_path


def _run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def _evaluate(p, features, *more):
    return _run("evaluate", p / "m.im2vec", "--test", p / "test.jsonl", "--features", features,
                "--baselines", "none", "--no-word-similarity", *more)


def _moved(p):
    shutil.move(p / "feats", p / "feats_moved")
    return p / "feats_moved"


# --- 1. a moved store given to the command ---------------------------------------------------------


def test_query_takes_the_moved_store_from_store(project):
    moved = _moved(project)
    res = _run("query", project / "m.im2vec", "--store", moved, "--topn", "2", input="red\nimg:t0\nEXIT\n")
    assert res.exit_code == 0, res.output
    assert "image_features='NEW/STORE/PATH'" not in res.output and "img:t" in res.stdout
    assert f"using the --store {str(moved)!r}" in res.stderr  # said once, with how to record the new place


def test_evaluate_takes_the_moved_store_from_features(project):
    moved = _moved(project)
    res = _evaluate(project, moved)
    assert res.exit_code == 0, res.output
    assert "image_features='NEW/STORE/PATH'" not in res.output and "P@1" in res.stdout


def test_report_takes_the_moved_store_from_features(project):
    moved = _moved(project)
    res = _run("report", project / "m.im2vec", "-o", project / "rep", "--test", project / "test.jsonl",
               "--features", moved, "--map-method", "pca")
    assert res.exit_code == 0, res.output
    assert (project / "rep" / "index.html").exists()


def test_export_and_index_name_their_store_option_and_take_it(project):
    moved = _moved(project)
    for command, args in (("export", ["-o", project / "proj"]), ("index", ["--check", "0", "--backend", "annoy"])):
        res = _run(command, project / "m.im2vec", *args)
        assert res.exit_code == 1, res.output
        assert "no feature store at" in res.output and "Im2Vec.load(" not in res.output
        assert f"`im2vec {command} " in res.output and "--store NEW/STORE/PATH" in res.output, res.output
        res = _run(command, project / "m.im2vec", *args, "--store", moved)
        assert res.exit_code == 0, res.output


def test_a_store_given_that_lacks_the_models_images_is_named_with_the_fix(project):
    _moved(project)
    held_out = _store(project / "test_feats", keys=TEST)  # only the --test images: cannot stand in
    res = _evaluate(project, held_out.path)
    assert res.exit_code == 1, res.output
    out = res.output
    assert "no feature store at" in out and str((project / "feats").resolve()) in out
    assert f"The --features store {str(held_out.path)!r} cannot stand in for it" in out and "lacks 12 of the model's 12 images" in out
    assert "--features NEW/STORE/PATH" in out or "--train-features NEW/STORE/PATH" in out
    assert "Im2Vec.load(" not in out


def test_a_query_without_store_names_its_option(project):
    _moved(project)
    res = _run("query", project / "m.im2vec", input="EXIT\n")
    assert res.exit_code == 1
    assert "`im2vec query " in res.output and "--store NEW/STORE/PATH" in res.output, res.output


# --- 2. a store of another extractor ----------------------------------------------------------------


def _check_refusal(out, store):
    assert f"{str(store)!r}" in out, out
    assert "'efficientnet_b0'" in out and "'mobilenet_v2'" in out, out  # the store's and the model's
    assert "'none (random init, seed=0)'" in out and "'MobileNet_V2_Weights.IMAGENET1K_V1'" in out
    assert "--arch mobilenet_v2 --weights MobileNet_V2_Weights.IMAGENET1K_V1" in out  # the fix: extract again
    assert "im2vec train" in out  # or retrain on it


def test_evaluate_refuses_a_store_of_another_cnn(project):
    eff = _store(project / "feats_eff", EFFICIENTNET).path
    res = _evaluate(project, eff)
    assert res.exit_code == 1, res.output
    assert "P@1" not in res.stdout  # no table
    _check_refusal(res.output, eff)


@pytest.mark.parametrize("option", ["--train-features"])
def test_evaluate_refuses_train_features_of_another_cnn(project, option):
    eff = _store(project / "feats_eff", EFFICIENTNET).path
    train = project / "train.jsonl"
    train.write_text("".join(json.dumps({"key": k, "tags": [TAGS[int(k[5:]) % 3]]}) + "\n" for k in TRAIN))
    res = _evaluate(project, project / "feats", "--train", train, option, eff)
    assert res.exit_code == 1, res.output
    _check_refusal(res.output, eff)


def test_query_and_report_refuse_a_store_of_another_cnn(project):
    eff = _store(project / "feats_eff", EFFICIENTNET).path
    res = _run("query", project / "m.im2vec", "--store", eff, input="EXIT\n")
    assert res.exit_code == 1, res.output
    _check_refusal(res.output, eff)
    res = _run("report", project / "m.im2vec", "-o", project / "rep", "--test", project / "test.jsonl",
               "--features", eff, "--map-method", "pca")
    assert res.exit_code == 1, res.output
    _check_refusal(res.output, eff)
    assert not (project / "rep" / "index.html").exists()


def test_a_moved_store_replaced_by_another_cnns_is_refused(project):
    _moved(project)
    eff = _store(project / "feats_eff", EFFICIENTNET).path  # the same images, another CNN
    res = _run("query", project / "m.im2vec", "--store", eff, input="EXIT\n")
    assert res.exit_code == 1, res.output
    _check_refusal(res.output, eff)


@pytest.mark.parametrize("field,value", [("layer", "features.17"), ("normalisation", "l2"),
                                         ("preprocessing", "Resize(320) + CenterCrop(300)")])
def test_another_layer_or_preprocessing_is_refused(project, field, value):
    other = _store(project / "other", {**MOBILENET, field: value}).path
    res = _evaluate(project, other)
    assert res.exit_code == 1, res.output
    assert field in res.output and repr(value) in res.output and repr(MOBILENET[field]) in res.output


def test_a_store_that_records_no_extractor_is_taken_with_a_warning(project):
    bare = FeatureStore.from_arrays(project / "bare", TRAIN + TEST, _vectors(TRAIN + TEST)).path
    res = _evaluate(project, bare)
    assert res.exit_code == 0, res.output
    assert "P@1" in res.stdout
    assert "warning:" in res.stderr and "records no extractor" in res.stderr and "'mobilenet_v2'" in res.stderr


def test_the_same_cnns_store_extracted_again_is_taken(project):
    again = _store(project / "again", dict(MOBILENET), seed=0).path  # another store id, the same extractor
    res = _evaluate(project, again)
    assert res.exit_code == 0, res.output
    assert "warning:" not in res.stderr or "extractor" not in res.stderr
    shutil.rmtree(project / "feats")  # and standing in for the model's own store
    res = _run("query", project / "m.im2vec", "--store", again, input="img:t1\nEXIT\n")
    assert res.exit_code == 0, res.output


def test_python_load_refuses_another_cnns_store_and_warns_on_an_unknown_one(project, caplog):
    path = str(project / "m.im2vec")
    eff = _store(project / "feats_eff", EFFICIENTNET)
    with pytest.raises(StoreMismatchError) as err:
        Im2Vec.load(path, image_features=eff)
    msg = str(err.value)
    assert "'efficientnet_b0'" in msg and "'mobilenet_v2'" in msg and str(eff.path) in msg
    assert "arch='mobilenet_v2'" in msg and "weights='MobileNet_V2_Weights.IMAGENET1K_V1'" in msg
    with pytest.raises(StoreMismatchError):
        Im2Vec.load(path, image_features=str(eff.path))
    bare = FeatureStore.from_arrays(project / "bare", TRAIN, _vectors(TRAIN))
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        loaded = Im2Vec.load(path, image_features=bare)
    assert loaded.feature_store.path == bare.path
    assert any("records no extractor" in r.getMessage() for r in caplog.records)
    again = _store(project / "again")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        assert Im2Vec.load(path, image_features=again).feature_store.path == again.path
    assert not any("extractor" in r.getMessage() for r in caplog.records)


def test_the_same_extractor_decoding_jpegs_otherwise_or_naming_its_layer_so_is_taken(project):
    """A store extracted again with --jpeg-device (no PIL draft decode: the same features to cosine
    >= 0.999) or with the layer's node named (``fc7 (classifier.5)`` is ``classifier.5``) is the
    model's extractor's."""
    same = {**MOBILENET, "preprocessing": PRE.split(" + ")[0], "layer": "penultimate"}
    res = _evaluate(project, _store(project / "nvjpeg", same).path)
    assert res.exit_code == 0, res.output
    assert "extractor" not in res.stderr


def test_a_layer_named_by_its_alias_or_its_node_is_one_layer():
    from gensim_im2vec.model import _extractor_differences

    model = {"arch": "alexnet", "weights": "AlexNet_Weights.IMAGENET1K_V1", "layer": "fc7 (classifier.5)"}
    assert _extractor_differences(model, {**model, "layer": "classifier.5"}) == []
    assert _extractor_differences(model, {**model, "layer": "classifier.4"}) == [
        ("layer", "classifier.4", "fc7 (classifier.5)")]
    assert _extractor_differences(model, {"dim": 4096, "normalisation": "none"}) is None  # records none: unknown
    assert _extractor_differences({}, {**model, "arch": "vgg16"}) == []  # the model records none: nothing to check
