"""A small run's image counts: each count the evaluation prints or records is the size of the set it
names (held-out images scored, training images the baselines learn from, those that are images of
the model, the sample the in-sample and one-space checks take, the neighbours image → image draws)."""

import json

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec import evaluate as ev

CLASSES = ("red", "blue")


@pytest.fixture(scope="module")
def small():
    """20 training images, 8 of them images of the model (the other 12 never had a document, as an
    image with one tag has none in the demo); one of the model's images carries only a tag no other
    training image has, so it is no candidate. 6 held-out images."""
    rng = np.random.default_rng(0)
    protos = {c: rng.normal(size=8).astype(np.float32) for c in CLASSES}
    keys = [f"img:{i}" for i in range(20)]
    features = {k: protos[CLASSES[i % 2]] + 0.3 * rng.normal(size=8).astype(np.float32) for i, k in enumerate(keys)}
    tags_of = {k: ["rare"] if i == 4 else [CLASSES[i % 2], "shape"] for i, k in enumerate(keys)}
    in_model = keys[:8]
    order = [k for pair in zip(in_model, keys[8:]) for k in pair] + keys[16:]  # img:0 img:8 img:1 img:9 ...
    docs = [[k, *tags_of[k]] for k in in_model]
    text = [["red", "shape", "warm"], ["blue", "shape", "cold"], ["rare", "odd"]] * 5
    model = Im2Vec(docs + text, image_features={k: features[k] for k in in_model}, vector_size=8, sg=1,
                   min_count=1, epochs=5, sample=0, workers=1, seed=1)
    test_features = np.stack([protos[CLASSES[i % 2]] for i in range(6)]) + 0.3 * rng.normal(size=(6, 8))
    test_tags = [[CLASSES[i % 2], "shape"] for i in range(6)]
    task = ev.tagging_task({k: tags_of[k] for k in order}, {f"img:t{i}": t for i, t in enumerate(test_tags)})
    assert "rare" not in task.candidates and task.train_keys == order  # on one training image only: no candidate
    report = ev.run_evaluation(
        model, test_features.astype(np.float32), task.test_tags, task.candidates,
        train_features=np.stack([features[k] for k in task.train_keys]), train_tags=task.train_tags,
        train_keys=task.train_keys, train_docs=docs, baselines=("id-token", "knn"), word_similarity=False,
        n_in_sample=3)
    return dict(report=report, task=task, in_model=in_model, order=order)


def test_training_images_in_the_model_are_counted_apart_from_the_baselines(small):
    info = small["report"].info
    assert info["n_train_images"] == 20  # the baselines learn from every training image
    assert info["n_train_images_in_model"] == len(small["in_model"]) == 8


def test_in_sample_and_one_space_count_their_sample_of_the_model_images(small):
    rep = small["report"]
    ins = rep.row("Im2Vec (cosine in model.wv)").metrics["in_sample"]
    one = rep.space["one_space"]
    # every 2nd of the 8 images of the model (8 // 3), 3 of them: img:0, img:2, img:4
    for sample in (ins, one):
        assert (sample["n_pool"], sample["n_sampled"], sample["step"]) == (8, 3, 2)
    assert ins["n_images"] == 2  # img:4 has no candidate tag: the mAP averages over the other two
    assert one["n"] == 3  # its tag "rare" is a word of the model: the one-space check counts it


def test_the_id_token_in_sample_takes_im2vec_s_sample(small):
    """The two in-sample figures sit side by side in the table: they average over the same images
    (the id-token took the first ones before: 0.793 against 0.899 on Im2Vec's sample, demo split)."""
    rep = small["report"]
    ins = rep.row("id-token Word2Vec").metrics["in_sample"]
    ours = rep.row("Im2Vec (cosine in model.wv)").metrics["in_sample"]
    # img:0, img:2, img:4 (every 2nd of the 8 in its vocabulary); img:4 has no candidate tag
    assert (ins["n_pool"], ins["n_sampled"], ins["step"], ins["n_images"]) == (8, 3, 2, 2)
    assert [ins[k] for k in ("n_pool", "n_sampled", "step", "n_images")] == [
        ours[k] for k in ("n_pool", "n_sampled", "step", "n_images")]


def test_image_to_image_counts_the_neighbours_it_has(small):
    rep = small["report"]
    # 8 training images of the model: each held-out image's neighbours are all 8 of them, not 10
    text = rep.format_table()
    assert "a held-out image's 8 nearest" in text and "10 nearest" not in text
    assert any(t["target"].startswith("5. held-out image's 8 nearest") for t in rep.targets())
    assert rep.space["image_to_image"]["k"] == 8 and rep.space["image_to_image"]["n_base"] == 8


def test_the_counts_survive_the_json(small, tmp_path):
    path = tmp_path / "eval.json"
    small["report"].save_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["info"]["n_train_images_in_model"] == 8
    assert data["space"]["image_to_image"]["k"] == 8
    assert data["space"]["one_space"]["n_sampled"] == 3


@pytest.fixture(scope="module")
def demo(tmp_path_factory, demo_packages):
    from gensim_im2vec.pipeline import DemoConfig, run_demo

    out = tmp_path_factory.mktemp("small-demo")
    cfg = DemoConfig(out_dir=str(out), limit=20, text_limit=300, vector_size=16, text_epochs=1, image_epochs=2,
                     device="cpu")
    result = run_demo(cfg, echo=lambda line: None)
    return cfg, result, json.loads((out / "evaluation" / "evaluation-two-stage.json").read_text(encoding="utf-8"))


def test_a_small_demo_records_the_sets_behind_its_counts(demo):
    from gensim_im2vec.datasets import load_split
    from gensim_im2vec.model import Im2Vec as Model
    from gensim_im2vec.pipeline import _paths

    cfg, result, evaluation = demo
    info, space = evaluation["info"], evaluation["space"]
    split = load_split(_paths(cfg)["data"] / cfg.eval_set)
    model = Model.load(result["model"])
    ours = {f"img:{k}" for k in split.train}
    in_model = sum(1 for k in model.image_keys if k in ours)  # the eval set's training images in the model
    k = min(10, in_model)  # --limit 20: 8 of them
    assert f"a held-out image's {k} nearest" in result["evaluation"]
    assert space["image_to_image"]["k"] == k and space["image_to_image"]["n_base"] == in_model
    assert info["n_train_images_in_model"] == in_model <= info["n_train_images"] <= len(split.train)
    assert space["one_space"]["n_pool"] == in_model
    assert info["eval_set"] == cfg.eval_set
    assert (info["n_test_images_in_split"], info["n_train_images_in_split"]) == (len(split.test), len(split.train))
    assert info["n_test_images"] <= info["n_test_images_in_split"]


def test_each_training_count_says_which_training_images(small):
    text = small["report"].format_table()
    assert "training images: the baselines learn from 20; 8 of them are images of the model" in text
    # Im2Vec's in-sample: every 2nd of the 8 images of the model, img:4 without a candidate tag
    assert "mAP" in text and "on 2 of 3 training images of the model, every 2nd of 8, those with a candidate tag" in text
    # the id-token's: the same sample, in its vocabulary
    assert "on 2 of 3 training images in its vocabulary, every 2nd of 8, those with a candidate tag" in text
    assert "one space, not two clouds (3 training images of the model, every 2nd of 8)" in text
    assert "a held-out image's 8 nearest training images (all 8 of the model) share a tag" in text


def test_the_header_says_which_held_out_images_the_columns_average_over():
    rows = [ev.TaggingResult("m", metrics={"all": {"map": 0.5, "n_images": 15}, "seen": {"map": 0.5, "n_images": 15},
                                           "zero_shot": {"map": 0.2, "n_images": 4}})]
    rep = ev.EvaluationReport(rows=rows, info={"n_test_images": 16, "n_candidates": 9, "n_zero_shot_tags": 2})
    head = rep.format_table().splitlines()[0]
    assert head.startswith("Image → tag on 15 of the 16 held-out images, those with a candidate tag "
                           "(tag → image ranks all 16)")
    assert "the ZS columns average over the 4 images that have one" in head
    rep.info.update(n_test_images=15, n_test_images_in_split=20, eval_set="openclipart")
    assert rep.format_table().startswith(
        "Image → tag on 15 of the 20 held-out images of openclipart's split (those with features and a candidate tag)")


def test_a_report_without_the_sample_keeps_its_plain_counts():
    rep = ev.EvaluationReport(rows=[ev.TaggingResult("id", applicable=False,
                                                     metrics={"in_sample": {"map": 0.6, "n_images": 10}})],
                              space={"one_space": {"n": 10, "nearest_image": 0.9, "nearest_word": 0.5,
                                                   "own_tags": 0.4, "random_words": 0.0},
                                     "image_to_image": {"k": 10, "model": 0.5, "raw_features": 0.4}})
    text = rep.format_table()
    assert "in-sample mAP 0.600 on 10 training images" in text and "(10 training images)" in text
    assert "10 nearest training images share a tag" in text


def test_the_id_token_takes_im2vec_s_sample_also_when_the_model_lacks_some_images():
    """The model has features of 150 of 200 training images (``missing_images="skip"``): the
    id-token's vocabulary holds all 200, and it drew its own sample from them (every 6th of 200)
    beside Im2Vec's (every 5th of 150). Review of 2026-12-05."""
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=200, n_features=16, n_test=40, seed=0)
    feats = {d[0]: data.features[d[0]] for d in data.docs[:150]}
    model = Im2Vec(data.docs, image_features=feats, vector_size=16, sg=1, min_count=1, epochs=5, sample=0,
                   workers=1, seed=1, missing_images="skip")
    train_keys = [d[0] for d in data.docs]
    rep = ev.run_evaluation(
        model, data.test_features, [[data.class_words[c]] for c in data.test_labels], model.word_keys,
        train_features=np.stack([data.features[k] for k in train_keys]), train_tags=[d[1:] for d in data.docs],
        train_keys=train_keys, train_docs=data.docs, baselines=("id-token",), word_similarity=False, n_in_sample=30)
    ours = rep.row("Im2Vec (cosine in model.wv)").metrics["in_sample"]
    idt = rep.row("id-token Word2Vec").metrics["in_sample"]
    assert [idt[k] for k in ("n_pool", "n_sampled", "step")] == [ours[k] for k in ("n_pool", "n_sampled", "step")] \
        == [150, 30, 5]
