"""Session 43's walk through README's "Your own images" and "Evaluate on your own data" on a small
folder of clip art: the slips a newcomer made and what each now answers. Synthetic data only."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.evaluate import EvaluationReport, TaggingResult
from gensim_im2vec.query import QuerySession
from gensim_im2vec.store import FeatureStore

OPTS = dict(vector_size=16, sg=1, min_count=1, sample=0, epochs=2, workers=1, seed=1)


@pytest.fixture(scope="module")
def folder_model():
    """A model whose image keys are paths under an image folder, as `im2vec extract` keys them."""
    rng = np.random.default_rng(0)
    docs, feats = [], {}
    for kind in ("dogs", "cats"):
        for i in range(20):
            key = f"img:animals/{kind}_black_lab_{i:02d}"
            docs.append([key, kind, "animals", "black"])
            feats[key] = rng.standard_normal(8).astype(np.float32)
    return Im2Vec(docs, image_features=feats, **OPTS)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_query_sum_with_an_image_key_names_the_unknown_word(folder_model):
    # README's `img:cats/1 -cat dog` with a word the model lacks: before, the whole line was
    # "Not in the vocabulary and no such image file" (the key's "/" made it look like a path)
    session = QuerySession(folder_model)
    answer, ok = session.answer_ok("img:animals/dogs_black_lab_01 -dogs horses")
    assert not ok and answer == "Out of dictionary word: horses"
    # the sum itself answers
    answer, ok = session.answer_ok("img:animals/dogs_black_lab_01 -dogs cats")
    assert ok and answer.startswith("Sum: img:animals/dogs_black_lab_01 + cats - dogs")
    # a path with a space that names no file is still answered as a path
    answer, ok = session.answer_ok("photos/animals/my dog.png")
    assert not ok and answer == "Not in the vocabulary and no such image file: photos/animals/my dog.png"


def test_query_suggests_the_image_key_a_typo_meant(folder_model):
    session = QuerySession(folder_model)
    answer, ok = session.answer_ok("img:animals/dogs_blak_lab_01")
    assert not ok
    assert "Not an image key of the model: img:animals/dogs_blak_lab_01. Did you mean img:animals/dogs_black_lab_01?" \
        in _one_line(answer)
    # in a sum too
    answer, ok = session.answer_ok("img:animals/dogs_blak_lab_01 -dogs cats")
    assert not ok and answer.startswith("Out of dictionary word: img:animals/dogs_blak_lab_01\n")
    assert "Did you mean img:animals/dogs_black_lab_01?" in answer
    # nothing close: no suggestion
    answer, _ = session.answer_ok("img:zzzz")
    assert "Did you mean" not in answer


def test_train_with_the_image_folder_for_the_store_says_to_extract_it(tmp_path):
    # before: "Create one with `im2vec extract IMAGE_DIR -o photos`", i.e. extract into the image folder
    (tmp_path / "photos" / "cats").mkdir(parents=True)
    (tmp_path / "photos" / "cats" / "001.png").write_bytes(b"\x89PNG")
    docs = tmp_path / "docs.txt"
    docs.write_text("img:cats/001 cat\n")
    res = CliRunner().invoke(main, ["train", str(docs), "-f", str(tmp_path / "photos"), "-o", str(tmp_path / "m")])
    out = _one_line(res.output)
    assert res.exit_code == 1, res.output
    assert "it is a folder of images (cats/001.png), not the features extracted from them" in out
    assert f"`im2vec extract {tmp_path / 'photos'} -o STORE`" in out and "-o " + str(tmp_path / "photos") + "`" not in out
    # a store's own subfolder: the store is named
    FeatureStore.from_arrays(tmp_path / "feats", ["img:cats/001"], np.ones((1, 4), "f"))
    (tmp_path / "feats" / "shards").mkdir(exist_ok=True)
    res = CliRunner().invoke(main, ["train", str(docs), "-f", str(tmp_path / "feats" / "shards"), "-o",
                                    str(tmp_path / "m")])
    assert res.exit_code == 1 and f"it lies inside the feature store {str(tmp_path / 'feats')!r}; give that folder" \
        in _one_line(res.output), res.output
    # another command's output folder: not offered as the store to extract into
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "split.json").write_text("{}")
    res = CliRunner().invoke(main, ["train", str(docs), "-f", str(tmp_path / "split"), "-o", str(tmp_path / "m")])
    out = _one_line(res.output)
    assert res.exit_code == 1 and "`im2vec extract IMAGE_DIR -o STORE` (a new folder)" in out, res.output
    assert not (tmp_path / "m").exists()


def test_documents_and_store_arguments_say_which_command_makes_them(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    docs = tmp_path / "docs.txt"
    docs.write_text("img:cats/001 cat\n")
    for args in (["train", str(photos), "-f", str(tmp_path), "-o", str(tmp_path / "m")],
                 ["split", str(photos), "-o", str(tmp_path / "split")]):
        res = CliRunner().invoke(main, args)
        out = _one_line(res.output)
        assert res.exit_code == 2 and "is a directory. It takes a documents file" in out, res.output
        assert "`im2vec normalize IMAGE_DIR -o docs.txt`" in out
    # train before extract
    res = CliRunner().invoke(main, ["train", str(docs), "-f", str(tmp_path / "feats"), "-o", str(tmp_path / "m")])
    out = _one_line(res.output)
    assert res.exit_code == 2 and "does not exist. It takes the feature store that `im2vec extract IMAGE_DIR -o " \
        "STORE` writes: extract the images first." in out, res.output
    # evaluate given split's folder for --test
    model = tmp_path / "m.model"
    model.write_bytes(b"")
    res = CliRunner().invoke(main, ["evaluate", str(model), "--test", str(tmp_path)])
    assert res.exit_code == 2 and "`im2vec split`'s test.jsonl" in _one_line(res.output), res.output


def test_targets_about_held_out_images_are_not_met_by_trained_images():
    # evaluating a model with another split's files: its test images were trained on, and the
    # targets said "yes" to in-sample figures under a "held-out" title
    rows = [TaggingResult("Im2Vec (cosine in model.wv)", "", metrics={"all": {"map": 0.8}, "seen": {"tag_map": 0.7},
                                                                      "in_sample": {"map": 0.9}}),
            TaggingResult("kNN (k=20)", "", metrics={"all": {"map": 0.4}, "seen": {"tag_map": 0.5}})]
    clean = EvaluationReport(rows=rows, info={"n_test_images": 10})
    assert [t["ok"] for t in clean.targets()] == [True, True, True]
    mixed = EvaluationReport(rows=rows, info={"n_test_images": 10, "n_test_images_trained": 7})
    targets = mixed.targets()
    assert [(t["target"][0], t["ok"], t.get("in_sample")) for t in targets] == [("1", None, 7), ("2", True, None),
                                                                                ("4", None, 7)]
    assert targets[0]["value"] == 0.8  # the figure is kept
    table = mixed.format_table()
    assert "n/a (7 test images trained on)" in table and "yes" in table
    assert json.loads(json.dumps(mixed.to_dict()))["targets"][0]["in_sample"] == 7


def test_a_mistyped_key_is_compared_with_a_bounded_number_of_keys(folder_model, monkeypatch):
    # difflib over up to 200,000 image keys held the prompt ~4.5 s per mistyped key (more in a sum); now the
    # keys of the typed folder (all keys when the folder is none of the model's), and none above a bound
    import difflib

    compared = []
    real = difflib.get_close_matches
    monkeypatch.setattr(difflib, "get_close_matches",
                        lambda word, keys, **kw: compared.append(len(keys)) or real(word, keys, **kw))
    session = QuerySession(folder_model)
    monkeypatch.setattr(QuerySession, "CLOSE_MATCH_MAX_COMPARED", 39)  # the folder holds 40 keys
    assert "Did you mean" not in session.answer("img:animals/dogs_blak_lab_01") and compared == []
    monkeypatch.setattr(QuerySession, "CLOSE_MATCH_MAX_COMPARED", 40)
    assert "Did you mean img:animals/dogs_black_lab_01?" in _one_line(session.answer("img:animals/dogs_blak_lab_01"))
    assert "Did you mean img:animals/dogs_black_lab_01?" in _one_line(session.answer("img:animls/dogs_black_lab_01"))
    assert compared == [40, 40]


def test_a_project_folder_or_a_file_given_as_the_store_is_not_called_a_folder_of_images(tmp_path):
    # a folder with one logo.png among its other files was "a folder of images (logo.png)", to extract; a file
    # given as the store was offered as the store to write: `im2vec extract IMAGE_DIR -o photo.jpg`
    proj = tmp_path / "proj"
    proj.mkdir()
    for i in range(20):
        (proj / f"notes{i}.txt").write_text("x")
    (proj / "logo.png").write_bytes(b"\x89PNG")
    with pytest.raises(FileNotFoundError) as e:
        FeatureStore.open(proj)
    assert "folder of images" not in str(e.value) and "`im2vec extract IMAGE_DIR -o STORE` (a new folder)" in str(e.value)
    # images with their caption files beside them are a folder of images
    (tmp_path / "photos").mkdir()
    for name in ("a.jpg", "a.txt", "b.jpg", "b.json", "b.txt"):
        (tmp_path / "photos" / name).write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"it is a folder of images \((a|b)\.jpg\)"):
        FeatureStore.open(tmp_path / "photos")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    with pytest.raises(FileNotFoundError) as e:
        FeatureStore.open(photo)
    assert "it is a file, not a folder" in str(e.value) and f"-o {photo}" not in str(e.value)


def test_a_folder_with_hidden_files_only_is_offered_as_the_store_to_extract_into(tmp_path):
    # a new folder that holds only hidden files (.DS_Store; the lock file a killed `im2vec train -o feats/m.model`
    # left) was called another command's output ("-o STORE (a new folder)"), though extract writes into it
    feats = tmp_path / "feats"
    feats.mkdir()
    (feats / ".DS_Store").write_bytes(b"x")
    (feats / ".m.model.lock").write_text("99999\n")
    with pytest.raises(FileNotFoundError) as e:
        FeatureStore.open(feats)
    assert f"`im2vec extract IMAGE_DIR -o {feats}`" in str(e.value) and "(a new folder)" not in str(e.value)
    FeatureStore.from_arrays(feats, ["img:a"], np.ones((1, 4), "f"))  # (what extract -o feats does: accepted)
    assert FeatureStore.open(feats).keys == ["img:a"]
