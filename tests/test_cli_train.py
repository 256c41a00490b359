"""`im2vec train`: documents file + FeatureStore -> saved model, joint and two-stage."""

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus


def _inputs(tmp_path):
    data = make_corpus(n_classes=5, n_images=300, n_features=16, seed=2)
    keys = list(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(" ".join(d) + "\n" for d in data.docs))
    return data, docs


def test_train_joint_and_two_stage(tmp_path):
    data, docs = _inputs(tmp_path)
    runner = CliRunner()
    out = tmp_path / "m.model"
    res = runner.invoke(main, ["train", str(docs), "-f", str(tmp_path / "store"), "-o", str(out),
                               "--vector-size", "16", "--epochs", "3", "--sg", "--min-count", "1",
                               "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "300 images" in res.output
    model = Im2Vec.load(str(out))
    assert model.vector_size == 16 and model.sg == 1 and model.epochs == 3
    assert len(model.image_keys) == 300 and model.features.metadata is not None

    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=16, min_count=1, epochs=2, workers=1)
    w2v.save(str(tmp_path / "w2v.model"))
    res = runner.invoke(main, ["train", str(docs), "-f", str(tmp_path / "store"), "-o", str(tmp_path / "m2.model"),
                               "--pretrained", str(tmp_path / "w2v.model"), "--epochs", "2"])
    assert res.exit_code == 0, res.output
    two = Im2Vec.load(str(tmp_path / "m2.model"))
    assert np.array_equal(two.wv["class1"], w2v.wv["class1"])  # words frozen in two-stage training


def test_train_reports_missing_images_clearly(tmp_path):
    _, docs = _inputs(tmp_path)
    with open(docs, "a") as f:
        f.write("img:not_extracted dog\n")
    res = CliRunner().invoke(main, ["train", str(docs), "-f", str(tmp_path / "store"), "-o", str(tmp_path / "x"),
                                    "--min-count", "1"])
    # the fix is said in the command line's terms, not the library's
    assert res.exit_code == 1 and "img:not_extracted" in res.output and "--missing-images skip" in res.output
    assert "Im2Vec(" not in res.output and "holds none" not in res.output  # the store holds the other images
    assert not (tmp_path / "x").exists()


def _small_train(tmp_path) -> list[str]:
    """`im2vec train` of the small inputs, one epoch of 8 dimensions on one thread (-o to add)."""
    _, docs = _inputs(tmp_path)
    return ["train", str(docs), "-f", str(tmp_path / "store"), "--vector-size", "8", "--epochs", "1", "--sg",
            "--min-count", "1", "--workers", "1", "--seed", "1"]


def test_train_passes_the_space_options_to_the_model(tmp_path):
    runner, base = CliRunner(), _small_train(tmp_path)
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "d.model"), "--space-decoder", "5",
                               "--space-common-directions", "0", "--space-tag-prior", "0.5", "--space-readout", "0.5"])
    assert res.exit_code == 0, res.output
    model = Im2Vec.load(str(tmp_path / "d.model"))
    assert model.space_decoder == 5.0 and model.space_common_directions == 0 and model.space_tag_prior == 0.5
    assert model.space_directions is not None  # the tags' mean was taken out of W
    assert model.space_readout == 0.5 and model.readout_W is not None  # the readout was fitted
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "p.model")])
    plain = Im2Vec.load(str(tmp_path / "p.model"))
    assert plain.space_decoder == 0.0 and plain.space_common_directions is None and plain.space_tag_prior == 0.0
    assert plain.space_readout == 0.0 and plain.readout_W is None
    assert plain.space_calibrate_new_words is False  # the library's default
    assert not np.allclose(plain.W, model.W)
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--space-decoder", "-1"])
    assert res.exit_code == 2 and "--space-decoder" in res.output
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--space-tag-prior", "-0.5"])
    assert res.exit_code == 2 and "--space-tag-prior" in res.output
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--space-readout", "-1"])
    assert res.exit_code == 2 and "--space-readout" in res.output


def test_train_space_neighbours_fits_them_as_training_ends(tmp_path):
    runner, base = CliRunner(), _small_train(tmp_path)
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "n.model"), "--space-neighbours", "3",
                               "--space-neighbour-weight", "0.5"])
    assert res.exit_code == 0, res.output
    model = Im2Vec.load(str(tmp_path / "n.model"))
    assert (model.space_neighbours, model.space_neighbour_weight, model.neighbour_k) == (3, 0.5, 3)
    assert model.neighbour_keys is not None and model._neighbours_on()
    key = model.image_keys[0]
    np.testing.assert_allclose(model.wv[key], model.project(model.features.vectors[model.features.row(key)]),
                               rtol=1e-4, atol=1e-5)
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "p.model")])
    plain = Im2Vec.load(str(tmp_path / "p.model"))
    assert plain.space_neighbours == 0 and plain.neighbour_keys is None  # the library's default
    for opt, bad in (("--space-neighbours", "-1"), ("--space-neighbours", "2.5"), ("--space-neighbour-weight", "-1"),
                     ("--space-neighbour-weight", "nan"), ("--space-neighbour-weight", "inf"),
                     ("--space-readout", "nan")):
        res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--space-neighbours", "3", opt, bad])
        assert res.exit_code == 2 and opt in res.output, (opt, bad, res.output)
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--space-neighbour-weight", "0.5"])
    assert res.exit_code == 2 and "give it with --space-neighbours K" in res.output
    assert not (tmp_path / "x.model").exists()
    pytest.importorskip("faiss", reason="faiss-cpu is a test extra (pip install -e .[test])")
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "f.model"), "--space-neighbours", "3",
                               "--space-neighbour-index", "IVF2,Flat", "--space-neighbour-nprobe", "2"])
    assert res.exit_code == 0, res.output
    model = Im2Vec.load(str(tmp_path / "f.model"))
    assert (model.neighbour_index, model.space_neighbour_nprobe) == ("IVF2,Flat", 2)
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--space-neighbour-nprobe", "2"])
    assert res.exit_code == 2 and "--space-neighbour-nprobe is a setting" in res.output
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--space-neighbours", "3",
                               "--space-neighbour-index", "IVF2,PQ7"])
    assert res.exit_code == 2 and "--space-neighbour-index" in res.output and "faiss cannot build it" in res.output
    assert not (tmp_path / "x.model").exists()


def test_train_refuses_readout_directions_without_the_readout(tmp_path):
    # --space-readout-directions without --space-readout trained and saved a model that ignored it, where
    # the --space-neighbours settings without --space-neighbours are refused
    runner, base = CliRunner(), _small_train(tmp_path)
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--space-readout-directions", "5"])
    assert res.exit_code == 2, res.output
    assert "--space-readout-directions is a setting of the readout that --space-readout β adds" in res.output
    assert not (tmp_path / "x.model").exists()
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "r.model"), "--space-readout", "0.5",
                               "--space-readout-directions", "2"])
    assert res.exit_code == 0, res.output
    assert Im2Vec.load(str(tmp_path / "r.model")).space_readout_directions == 2


def test_train_pretrained_new_words_learn_unless_frozen(tmp_path):
    """--pretrained: the text's words stay frozen and a tag it never saw learns (train_words="new",
    from_word2vec's default; --train-new-words says it); --freeze-words keeps the space step alone
    for it, and only then takes --space-calibrate-new-words; contradictions are refused."""
    data, _ = _inputs(tmp_path)
    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=16, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    w2v.save(str(tmp_path / "w2v.model"))
    docs = tmp_path / "tagged.txt"  # class-0 images carry a tag the text never saw
    docs.write_text("".join(" ".join(d + (["brandnew"] if data.labels[d[0]] == 0 else [])) + "\n"
                            for d in data.docs if d[0].startswith("img:")))
    runner = CliRunner()
    base = ["train", str(docs), "-f", str(tmp_path / "store"), "--pretrained", str(tmp_path / "w2v.model"),
            "--epochs", "2", "--workers", "1", "--min-count", "1"]
    models = {}
    for name, flags in (("default", []), ("new", ["--train-new-words"]),
                        ("frozen", ["--freeze-words", "--space-calibrate-new-words"])):
        res = runner.invoke(main, [*base, "-o", str(tmp_path / f"{name}.model"), *flags])
        assert res.exit_code == 0, res.output
        models[name] = Im2Vec.load(str(tmp_path / f"{name}.model"))
        assert np.array_equal(models[name].wv["class1"], w2v.wv["class1"])  # the text's words frozen
    assert models["default"].train_words == "new" and models["new"].train_words == "new"
    np.testing.assert_array_equal(models["default"].wv["brandnew"], models["new"].wv["brandnew"])
    frozen = models["frozen"]
    assert frozen.train_words is False and frozen.space_calibrate_new_words is True
    assert not np.allclose(frozen.wv["brandnew"], models["new"].wv["brandnew"])  # placed another way
    for flags in (["--space-calibrate-new-words"], ["--train-words", "--space-calibrate-new-words"]):
        res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), *flags])
        assert res.exit_code == 2 and "--pretrained W2V --freeze-words" in res.output, res.output
    res = runner.invoke(main, ["train", str(docs), "-f", str(tmp_path / "store"), "-o", str(tmp_path / "x.model"),
                               "--space-calibrate-new-words", "--freeze-words"])
    assert res.exit_code == 2 and "--pretrained W2V --freeze-words" in res.output
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "x.model"), "--train-new-words", "--freeze-words"])
    assert res.exit_code == 2 and "give one of them" in res.output
    res = runner.invoke(main, ["train", str(docs), "-f", str(tmp_path / "store"), "-o", str(tmp_path / "x.model"),
                               "--train-new-words"])
    assert res.exit_code == 2 and "needs --pretrained" in res.output
    assert not (tmp_path / "x.model").exists()


def test_train_takes_analogy_questions_from_a_file(tmp_path):
    """--space-analogies: one question a line (comments and blank lines skipped) reach the model;
    a line without four fields, or a file without questions, is named."""
    _, docs = _inputs(tmp_path)
    runner = CliRunner()
    base = ["train", str(docs), "-f", str(tmp_path / "store"), "--vector-size", "8", "--epochs", "2", "--sg",
            "--min-count", "1", "--workers", "1", "--seed", "1"]
    questions = tmp_path / "q.txt"
    questions.write_text("# x a b y\nimg:0 class0 class1 img:1\n\nimg:2 class2 class3 img:3\n")
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "a.model"), "--space-analogies", str(questions)])
    assert res.exit_code == 0, res.output
    model = Im2Vec.load(str(tmp_path / "a.model"))
    assert model.space_analogies == [("img:0", "class0", "class1", "img:1"), ("img:2", "class2", "class3", "img:3")]
    assert model.space_analogy_seconds > 0
    questions.write_text("img:0 class0 class1 img:1\nimg:2 class2 img:3\n")
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "b.model"), "--space-analogies", str(questions)])
    assert res.exit_code == 2 and "line 2" in res.output and "IMAGE_X WORD_A WORD_B IMAGE_Y" in res.output
    questions.write_text("# nothing\n")
    res = runner.invoke(main, [*base, "-o", str(tmp_path / "b.model"), "--space-analogies", str(questions)])
    assert res.exit_code == 2 and "no question" in res.output
    assert not (tmp_path / "b.model").exists()


def test_train_pretrained_frees_the_loaded_file_before_training(tmp_path, monkeypatch):
    """--pretrained: the loaded Word2Vec or word vectors (GoogleNews's: 3.6 GB) are not kept alive
    through training: the model holds copies of what it needs. The model is the one
    Im2Vec.from_word2vec makes from the same file, bit for bit, for the epochs given or the Word2Vec's."""
    import weakref

    from gensim_im2vec import cli

    data, docs = _inputs(tmp_path)
    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=16, sg=1, min_count=1, epochs=3, workers=1, seed=1)
    w2v.save(str(tmp_path / "w2v.model"))
    w2v.wv.save_word2vec_format(str(tmp_path / "w2v.bin"), binary=True)
    loaded, alive_at_training = [], []
    real_load, real_train = cli._load_pretrained, Im2Vec._train_started

    def load(path):
        obj = real_load(path)
        loaded.append(weakref.ref(obj))
        return obj

    def train(self, *args, **kwargs):
        alive_at_training.append(loaded[-1]() is not None)
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(cli, "_load_pretrained", load)
    monkeypatch.setattr(Im2Vec, "_train_started", train)
    runner = CliRunner()
    for name, epochs in (("w2v.model", []), ("w2v.bin", ["--epochs", "2"])):
        out = tmp_path / f"{name}.im2vec"
        res = runner.invoke(main, ["train", str(docs), "-f", str(tmp_path / "store"), "-o", str(out),
                                   "--pretrained", str(tmp_path / name), "--workers", "1", "--min-count", "1",
                                   "--seed", "3", *epochs])
        assert res.exit_code == 0, res.output
        assert alive_at_training[-1] is False, name
        got = Im2Vec.load(str(out))
        store = FeatureStore.open(tmp_path / "store")
        sentences = [line.split() for line in docs.read_text().splitlines()]
        want = Im2Vec.from_word2vec(real_load(str(tmp_path / name)), image_features=store, sentences=sentences,
                                    workers=1, min_count=1, seed=3, epochs=2 if epochs else None)
        np.testing.assert_array_equal(got.wv.vectors, want.wv.vectors)
        np.testing.assert_array_equal(got.W, want.W)


def test_freeze_words_without_pretrained_places_the_words_by_the_images_alone(tmp_path):
    """--freeze-words without --pretrained is not an option without effect (so not refused like
    --space-readout-directions without --space-readout): no word has a vector yet, so every word is
    placed by the images alone (the space step), not by the words beside it (train_words=False).
    The help said only "Whether word input vectors learn", which read as: frozen, never moved."""
    _, docs = _inputs(tmp_path)
    runner = CliRunner()
    base = ["train", str(docs), "-f", str(tmp_path / "store"), "--vector-size", "16", "--epochs", "2", "--sg",
            "--min-count", "1", "--workers", "1", "--seed", "1"]
    models = {}
    for name, flags in (("learn", []), ("frozen", ["--freeze-words"])):
        res = runner.invoke(main, [*base, "-o", str(tmp_path / f"{name}.model"), *flags])
        assert res.exit_code == 0, res.output
        models[name] = Im2Vec.load(str(tmp_path / f"{name}.model"))
    frozen = models["frozen"]
    assert frozen.train_words is False and models["learn"].train_words is True
    assert not np.allclose(frozen.wv["class1"], models["learn"].wv["class1"])
    assert "class1" in frozen.word_space_keys  # placed (by the images), not left at its random start
    help_text = " ".join(runner.invoke(main, ["train", "--help"]).output.split())
    assert "a word without one (every word, without --pretrained) is placed by the images alone" in help_text
