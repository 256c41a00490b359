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
3. A PCA store of another fit is refused (by the fits' digests, else sample size and explained
   variance; unknown: warned of); the same weights file under another name, and a layer named by the
   node it is (``flatten`` for mobilenet_v2's penultimate), are the model's extractor.
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
    return _trained_beside(tmp_path, _store(tmp_path / "feats"), epochs=3)


def _trained_beside(folder, store, epochs):
    """`folder` with m.im2vec, a model trained on `store` (vector_size 8), and its held-out images in test.jsonl."""
    docs = [[k, TAGS[int(k[5:]) % 3], "photo"] for k in TRAIN] * 3
    model = Im2Vec(docs, image_features=store, vector_size=8, sg=1, min_count=1, epochs=epochs, workers=1, seed=1,
                   sample=0)
    model.save(str(folder / "m.im2vec"))
    with open(folder / "test.jsonl", "w", encoding="utf-8") as f:
        for k in TEST:
            f.write(json.dumps({"key": k, "tags": [TAGS[int(k[5:]) % 3]]}) + "\n")
    return folder


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


# --- 3. a PCA store of another fit; the same weights, layer or store named otherwise -----------------
#
# Review 3: a store re-extracted with another PCA fit (`--pca 8 --pca-sample 20` for a model trained
# on `--pca 8 --pca-sample 40`: other rows, projected cosines median 0.876) was taken silently; the
# same weights file under another name and `--layer flatten` (mobilenet_v2's penultimate node) were
# refused; a store that could not stand in got "…was trained with.. Put the store back".

K = 4  # PCA components


def _pca(seed=0, n=40):
    from gensim_im2vec.store import PCA

    return PCA.fit(np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32), K)


def _pca_store(path, pca, fitted_on=40, keys=TRAIN + TEST, digest=True, metadata=MOBILENET):
    """A store as `im2vec extract --pca K --pca-sample N` writes one (`digest=False`: as it did
    before the PCA's digest was recorded)."""
    pca_meta = pca.describe("on_write", fitted_on)
    if not digest:
        pca_meta.pop("sha256", None)
    with FeatureStore.create(path, dim=K, metadata={**metadata, "pca": pca_meta}, pca=pca) as w:
        w.write(keys, pca.transform(_vectors(keys)))
    return FeatureStore.open(path)


@pytest.fixture(params=[True, False], ids=["digest", "no-digest"])
def pca_project(tmp_path, request):
    """A model trained on a PCA store (fitted on 40 images), with or without the PCA's digest:
    (its folder, whether the stores record digests)."""
    store = _pca_store(tmp_path / "feats", _pca(0), digest=request.param)
    return _trained_beside(tmp_path, store, epochs=2), request.param


def test_the_extraction_records_a_digest_of_its_pca():
    pca = _pca(0)
    said = pca.describe("on_write", 40)
    assert said["sha256"] == pca.digest() and len(said["sha256"]) == 16
    assert _pca(1).digest() != said["sha256"]  # another fit, another digest
    from gensim_im2vec.store import PCA

    assert PCA(pca.mean, pca.components).digest() == said["sha256"]  # the projection, not its variances


def test_a_store_of_another_pca_fit_is_refused(pca_project):
    p, digest = pca_project
    other = _pca_store(p / "refit", _pca(5, n=20), fitted_on=20, digest=digest)  # --pca-sample 20
    with pytest.raises(StoreMismatchError, match=r"pca: the store's 4 of 6 dims fitted on 20 images.*the "
                                                 r"model's 4 of 6 dims fitted on 40 images") as err:
        Im2Vec.load(str(p / "m.im2vec"), image_features=other)
    assert "im2vec extract IMAGES -o MODEL_STORE --mode extend" in str(err.value)
    res = _evaluate(p, other.path)
    assert res.exit_code == 1, res.output
    assert "pca: the store's 4 of 6 dims fitted on 20 images" in res.output, res.output
    assert "P@1" not in res.stdout
    _moved(p)  # standing in for the moved store: refused too
    res = _run("query", p / "m.im2vec", "--store", other.path, input="EXIT\n")
    assert res.exit_code == 1 and "fitted on 20 images" in res.output, res.output


def test_a_store_of_the_same_size_of_sample_but_another_fit_is_refused_by_its_digest(pca_project):
    p, digest = pca_project
    if not digest:
        pytest.skip("without digests, the same sample size and variance cannot be told apart (warned of below)")
    other = _pca_store(p / "refit", _pca(7))  # fitted on 40 other images
    with pytest.raises(StoreMismatchError, match="pca: "):
        Im2Vec.load(str(p / "m.im2vec"), image_features=other)


def test_a_raw_store_for_a_pca_model_is_refused(pca_project):
    p, _ = pca_project
    raw = _store(p / "raw", {**MOBILENET})
    res = _evaluate(p, raw.path)
    assert res.exit_code == 1, res.output
    assert "pca: the store's none, the model's 4 of 6 dims fitted on 40 images" in res.output, res.output


def test_the_models_pca_store_moved_or_extracted_again_the_same_is_taken(pca_project, caplog):
    p, digest = pca_project
    same = _pca_store(p / "again", _pca(0), digest=digest)  # another store id, the same fit
    moved = _moved(p)
    for store in (moved, same.path):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
            Im2Vec.load(str(p / "m.im2vec"), image_features=str(store))
        warned = [r.getMessage() for r in caplog.records if "PCA" in r.getMessage()]
        if store == moved or digest:  # its own store (store id), or the same digest: no doubt
            assert not warned, warned
        else:  # two stores without digests, fitted on as many images with the same variance: unknown
            assert len(warned) == 1 and "cannot tell whether" in warned[0] and str(store) in warned[0]
        res = _run("query", p / "m.im2vec", "--store", store, input="img:t1\nEXIT\n")
        assert res.exit_code == 0, res.output
        assert ("PCA" in res.stderr) == (store != moved and not digest), res.stderr
        assert res.stderr.count("cannot tell whether") <= 1


def test_a_store_whose_metadata_lacks_the_digest_is_compared_by_its_pca_file(pca_project):
    p, digest = pca_project
    if not digest:
        pytest.skip("the model records no digest")
    old = _pca_store(p / "old", _pca(0), digest=False)  # the same fit, written before digests
    assert Im2Vec.load(str(p / "m.im2vec"), image_features=old).feature_store.path == old.path
    assert _evaluate(p, old.path).exit_code == 0
    refit = _pca_store(p / "refit", _pca(3), digest=False)
    with pytest.raises(StoreMismatchError, match="pca: "):
        Im2Vec.load(str(p / "m.im2vec"), image_features=refit)
    assert _evaluate(p, refit.path).exit_code == 1


def test_the_same_weights_file_under_another_name_is_one_extractor(project):
    from gensim_im2vec.model import _extractor_differences

    model = {**MOBILENET, "weights": "file:ckA.pth#sha256:b03531047ffacf1e"}
    assert _extractor_differences(model, {**model, "weights": "file:finetuned.pth#sha256:b03531047ffacf1e"}) == []
    assert _extractor_differences(model, {**model, "weights": "file:ckA.pth#sha256:0123456789abcdef"}) == [
        ("weights", "file:ckA.pth#sha256:0123456789abcdef", "file:ckA.pth#sha256:b03531047ffacf1e")]
    renamed = _store(project / "renamed", {**MOBILENET, "weights": "file:finetuned.pth#sha256:b03531047ffacf1e"})
    trained = Im2Vec.load(str(project / "m.im2vec"))
    trained.image_store["identity"]["weights"] = "file:ckA.pth#sha256:b03531047ffacf1e"
    trained.save(str(project / "m.im2vec"))
    res = _evaluate(project, renamed.path)
    assert res.exit_code == 0, res.output


def test_torchvisions_weights_and_their_file_renamed_are_one_extractor():
    pytest.importorskip("torchvision")
    from gensim_im2vec.model import _extractor_differences

    # mobilenet_v2-b0353104.pth (IMAGENET1K_V1) saved as ckA.pth: its sha256 begins with the name's b0353104
    renamed = {**MOBILENET, "weights": "file:ckA.pth#sha256:b03531047ffacf1e"}
    assert _extractor_differences(MOBILENET, renamed) == []
    assert _extractor_differences(renamed, MOBILENET) == []
    other = {**MOBILENET, "weights": "file:ckB.pth#sha256:77777777deadbeef"}
    assert [f for f, _, _ in _extractor_differences(MOBILENET, other)] == ["weights"]


def test_a_layer_named_by_its_node_is_the_penultimate_it_is():
    pytest.importorskip("torchvision")
    from gensim_im2vec.model import _extractor_differences

    # mobilenet_v2: the last Linear (classifier.1) takes classifier.0 (Dropout) of flatten
    assert _extractor_differences(MOBILENET, {**MOBILENET, "layer": "flatten"}) == []
    assert _extractor_differences({**MOBILENET, "layer": "flatten"}, MOBILENET) == []
    assert _extractor_differences(MOBILENET, {**MOBILENET, "layer": "classifier.0"}) == []
    assert _extractor_differences(MOBILENET, {**MOBILENET, "layer": "features.18"}) == [
        ("layer", "features.18", "penultimate")]
    vgg = {"arch": "vgg16", "weights": "VGG16_Weights.IMAGENET1K_V1", "layer": "penultimate"}
    assert _extractor_differences(vgg, {**vgg, "layer": "fc7 (classifier.4)"}) == []  # ReLU, then Dropout
    assert _extractor_differences(vgg, {**vgg, "layer": "classifier.3"}) != []  # fc7 before its ReLU


def test_evaluate_takes_a_store_extracted_with_layer_flatten(project):
    pytest.importorskip("torchvision")
    flat = _store(project / "flat", {**MOBILENET, "layer": "flatten"}).path
    res = _evaluate(project, flat)
    assert res.exit_code == 0, res.output
    assert "extractor" not in res.stderr


def test_a_store_that_cannot_stand_in_is_said_with_one_full_stop(project):
    _moved(project)
    wide = FeatureStore.from_arrays(project / "wide", TRAIN + TEST, np.ones((15, DIM + 2), np.float32),
                                    metadata=MOBILENET).path  # the same extractor's metadata, another dim
    res = _evaluate(project, wide)
    assert res.exit_code == 1, res.output
    assert "cannot stand in for it: expected features of dim 6" in res.output, res.output
    assert "trained with.." not in res.output and "trained with. Put the store back" in res.output
