"""What a new user met on a first afternoon with the package (session 22's audit): each test is a
mistake they made or a message that sent them the wrong way, and what they now get instead."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import _training_mode, main
from gensim_im2vec.corpora import FolderCorpus
from gensim_im2vec.export import export_projector
from gensim_im2vec.store import FeatureStore
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=16, sg=1, min_count=1, sample=0, epochs=2, workers=1, seed=1)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=200, n_related=1, seed=0)


def test_features_that_name_no_image_of_the_documents_are_an_error(data):
    # documents that name the images by a bare id ("0"), features keyed "img:0": before, a plain
    # text model was trained without a word of warning
    docs = [[d[0][len("img:"):]] + d[1:] for d in data.docs]
    with pytest.raises(ValueError) as e:
        Im2Vec(docs, image_features=data.features, **OPTS)
    msg = str(e.value)
    assert "none of its 200 keys occurs in the documents" in msg
    assert "'img:0'" in msg and "'0'" in msg  # an example of each kind of key
    assert "without the prefix 'img:'" in msg
    # keys that share nothing with the documents: the same error, without the prefix hint
    other = {f"img:x{i}": v for i, v in enumerate(data.features.values())}
    with pytest.raises(ValueError, match="none of its 200 keys") as e:
        Im2Vec(data.docs[:0] + [d[1:] for d in data.docs], image_features=other, **OPTS)
    assert "prefix" not in str(e.value)
    # an update with text-only documents is fine: the images are already in the vocabulary
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    model.build_vocab([["class0", "tag1"]], update=True)
    assert len(model.image_keys) == 200


def test_from_word2vec_refuses_a_model_with_images(data):
    first = Im2Vec(data.docs, image_features=data.features, **OPTS)
    docs2 = [[f"img:x{i}"] + d[1:] for i, d in enumerate(data.docs[:50])]
    feats2 = {f"img:x{i}": data.features[d[0]] for i, d in enumerate(data.docs[:50])}
    with pytest.raises(TypeError, match=r"got an Im2Vec model \(200 images\): its images would become frozen words"):
        Im2Vec.from_word2vec(first, image_features=feats2, sentences=docs2, epochs=1)
    # its text-only Word2Vec is the way
    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=16, min_count=1, epochs=1, workers=1)
    two = Im2Vec.from_word2vec(w2v, image_features=feats2, sentences=docs2, epochs=1, sample=0)
    assert not any(k.startswith("img:") for k in two.word_keys) and len(two.image_keys) == 50


def _train_cli(tmp_path, docs, store: str, out: str, *more: str):
    """`im2vec train DOCS -f tmp_path/STORE -o tmp_path/OUT ...`, its result and its output on one line."""
    res = CliRunner().invoke(main, ["train", str(docs), "-f", str(tmp_path / store), "-o", str(tmp_path / out), *more])
    return res, " ".join(res.output.split())


def test_train_cli_refuses_an_im2vec_model_as_pretrained(data, tmp_path):
    keys = list(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(" ".join(d) + "\n" for d in data.docs))
    Im2Vec(data.docs, image_features=data.features, **OPTS).save(str(tmp_path / "first.model"))
    res, _ = _train_cli(tmp_path, docs, "store", "m", "--pretrained", str(tmp_path / "first.model"))
    assert res.exit_code == 1 and "its images would become frozen words" in res.output
    assert not (tmp_path / "m").exists()


def test_train_cli_says_a_store_holds_none_of_the_images(data, tmp_path):
    FeatureStore.from_arrays(tmp_path / "other", ["img:a", "img:b"], np.ones((2, 8), "f"))
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(" ".join(d) + "\n" for d in data.docs))
    res, said = _train_cli(tmp_path, docs, "other", "m", "--min-count", "1")
    assert res.exit_code == 1 and "200 image token(s) have no features" in said
    assert "holds none of the documents' images: its 2 keys look like ['img:a', 'img:b']" in said
    assert "--missing-images skip" in said and "-f / --features store" in said and "Im2Vec(" not in said


def test_train_cli_on_documents_without_images_gives_advice_for_the_command_line(tmp_path):
    FeatureStore.from_arrays(tmp_path / "store", ["img:a", "img:b"], np.ones((2, 8), "f"))
    docs = tmp_path / "textonly.txt"
    docs.write_text("the cat sat on the mat\nthe dog ran\n")
    res, said = _train_cli(tmp_path, docs, "store", "t", "--min-count", "1")
    assert res.exit_code == 1 and "none of its 2 keys occurs in the documents" in said
    # was: "or leave image_features out to train words alone", which -f (required) does not allow
    assert "image_features" not in said and "leave" not in said
    assert "`im2vec train` trains images with their words" in said
    assert "Word2Vec(LineSentence(" in said and "--pretrained" in said


def test_train_cli_pretrained_refuses_documents_that_name_no_image(tmp_path):
    """--pretrained with documents that name none of the store's images used to write, with exit 0, a
    model of the pretrained words alone (0 images): refused, as without --pretrained, and nothing written."""
    FeatureStore.from_arrays(tmp_path / "store", ["img:a", "img:b"], np.ones((2, 8), "f"))
    docs = tmp_path / "textonly.txt"
    docs.write_text("the cat sat on the mat\nthe dog ran\n")
    Word2Vec([line.split() for line in docs.read_text().splitlines()], vector_size=8, min_count=1,
             workers=1).save(str(tmp_path / "w.model"))
    res, said = _train_cli(tmp_path, docs, "store", "t", "--min-count", "1", "--pretrained", str(tmp_path / "w.model"))
    assert res.exit_code == 1, res.output
    assert f"the -f store {tmp_path / 'store'}: none of its 2 keys occurs in the documents" in said
    assert "no images" in said and "image_features" not in said
    assert not (tmp_path / "t").exists()


def test_train_cli_says_which_images_without_features_the_extraction_skipped(data, tmp_path):
    keys = list(data.features)
    store = FeatureStore.from_arrays(tmp_path / "store", keys[2:], np.stack([data.features[k] for k in keys[2:]]))
    (store.path / "skipped.json").write_text(json.dumps({keys[0]: "cannot identify image file (truncated?)"}))
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(" ".join(d) + "\n" for d in data.docs))
    res, said = _train_cli(tmp_path, docs, "store", "m", "--min-count", "1")
    assert res.exit_code == 1 and "2 image token(s) have no features" in said
    # as `im2vec split -f` says it: how many the extraction skipped, one with its reason
    assert (f"1 of them skipped by the extraction (the store's skipped.json says why, e.g. {keys[0]}: cannot "
            f"identify image file (truncated?))") in said
    assert "--missing-images skip" in said
    # from pretrained word vectors (the library adds the images by build_vocab(update=True)): the same advice
    Word2Vec([d for d in data.docs], vector_size=8, min_count=1, workers=1).save(str(tmp_path / "w.model"))
    res, said = _train_cli(tmp_path, docs, "store", "m2", "--min-count", "1", "--pretrained", str(tmp_path / "w.model"))
    assert res.exit_code == 1 and "Pass a -f / --features store that holds them" in said and "build_vocab" not in said


def test_train_help_shows_the_defaults_it_trains_with():
    res = CliRunner().invoke(main, ["train", "--help"], terminal_width=200)
    said = " ".join(res.output.split())
    for option, default in [("--min-count", "5"), ("--epochs", "5"), ("--sample", "0.001"), ("--vector-size", "100"),
                            ("--window", "5"), ("--negative", "5")]:
        part = said[said.index(option + " "):]
        assert f"[default: {default};" in part[: part.index("]") + 1], option
    assert "[default: cbow" in said


def test_export_limit_keeps_images_in_their_share(data, tmp_path):
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    n_words, n_images = len(model.word_keys), len(model.image_keys)
    res = export_projector(model, tmp_path / "p", limit=50)
    share = round(50 * n_images / (n_words + n_images))
    assert res.count == 50 and res.n_images == share > 0
    rows = (tmp_path / "p" / "metadata.tsv").read_text(encoding="utf-8").splitlines()[1:]
    words = [r.split("\t")[0] for r in rows if "\tword" in r]
    assert words == [k for k in model.wv.index_to_key if not model.is_image(k)][: 50 - share]  # most frequent first
    # with keys given, the limit takes the first of them, whatever their kind
    keys = model.image_keys[:5] + model.word_keys[:5]
    assert export_projector(model, tmp_path / "q", keys=keys, limit=5).n_images == 5


def test_sprite_too_large_names_the_command_lines_options(data, tmp_path):
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    with pytest.raises(ValueError) as e:
        export_projector(model, tmp_path / "p", images={}, thumbnail=4000)
    assert "`im2vec export --limit 4`" in str(e.value) and "`--thumbnail`" in str(e.value)


def test_extract_cli_takes_max_pixels(tmp_path):
    pytest.importorskip("torchvision", reason="extraction needs torchvision")
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (300, 200), "red").save(tmp_path / "imgs" / "big.jpg")
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "imgs" / "small.png")
    base = ["extract", str(tmp_path / "imgs"), "--weights", "none", "--arch", "mobilenet_v2", "--device", "cpu",
            "--no-progress", "--num-workers", "0"]
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "a"), "--max-pixels", "10000"])
    assert res.exit_code == 0, res.output
    skipped = json.loads((tmp_path / "a" / "skipped.json").read_text(encoding="utf-8"))
    assert list(skipped) == ["img:big"] and "`im2vec extract --max-pixels`" in skipped["img:big"]
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b"), "--max-pixels", "none"])
    assert res.exit_code == 0 and len(FeatureStore.open(tmp_path / "b")) == 2, res.output
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "c"), "--max-pixels", "lots"])
    assert res.exit_code == 2 and "'--max-pixels'" in res.output and "'lots'" in res.output


def test_a_folder_with_two_files_of_one_key_is_refused_by_the_corpus_too(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("dup.png", "dup.jpg", "ok.png"):
        (tmp_path / "b" / name).write_bytes(b"")
    (tmp_path / "b" / "dup.txt").write_text("a dup", encoding="utf-8")
    with pytest.raises(ValueError, match=r"key 'img:b/dup' under .* belongs to more than one file"):
        list(FolderCorpus(str(tmp_path)))
    res = CliRunner().invoke(main, ["normalize", str(tmp_path), "-o", str(tmp_path.parent / "docs.txt")])
    assert res.exit_code != 0 and "belongs to more than one file" in res.output
    assert not (tmp_path.parent / "docs.txt").exists()


def test_evaluate_warns_when_test_images_were_trained_on(data, tmp_path):
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    model.save(str(tmp_path / "m.model"))
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps({"key": d[0], "tags": d[1:]}) + "\n" for d in data.docs[:10]), encoding="utf-8")
    keys = [d[0] for d in data.docs[:10]]
    FeatureStore.from_arrays(tmp_path / "seen", keys, np.stack([data.features[k] for k in keys]))
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path / "m.model"), "--test", str(test), "--features",
                                    str(tmp_path / "seen"), "--baselines", "none", "--no-word-similarity"])
    assert res.exit_code == 0, res.output
    assert "warning: 10 of the 10 --test images are images MODEL trained on" in " ".join(res.output.split())
    held = tmp_path / "held.jsonl"
    feats = {f"img:new{i}": v for i, v in enumerate(data.test_features[:10])}
    FeatureStore.from_arrays(tmp_path / "store", list(feats), np.stack(list(feats.values())))
    held.write_text("".join(json.dumps({"key": k, "tags": ["class0"]}) + "\n" for k in feats), encoding="utf-8")
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path / "m.model"), "--test", str(held), "--features",
                                    str(tmp_path / "store"), "--baselines", "none", "--no-word-similarity"])
    assert res.exit_code == 0 and "warning" not in res.output, res.output


def test_the_training_mode_is_read_from_the_model(data):
    joint = Im2Vec(data.docs, image_features=data.features, **OPTS)
    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=16, min_count=1, epochs=1, workers=1)
    two = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=data.docs, epochs=1, sample=0)
    assert _training_mode(joint) == "joint" and _training_mode(two) == "two-stage"


def test_report_without_a_dataset_says_how_to_show_held_out_images(data, tmp_path):
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    model.save(str(tmp_path / "m.model"))
    res = CliRunner().invoke(main, ["report", str(tmp_path / "m.model"), "-o", str(tmp_path / "rep"),
                                    "--map-method", "pca"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "(0 held-out images)" in said and "pass --test FILE.jsonl" in said and "or --dataset FOLDER" in said


def test_query_methods_name_a_bad_query_vector(data):
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    v = model.wv["img:0"]
    for method in (model.most_similar_words, model.most_similar_images, model.most_similar_tags):
        with pytest.raises(ValueError, match=r"a query vector has shape \(5,\), the model's vectors \(16,\)"):
            method(v[:5])
        with pytest.raises(ValueError, match=r"shape \(2, 16\)"):  # a batch: similar_by_image takes those
            method(np.stack([v, v]))
        with pytest.raises(ValueError, match="NaN or inf"):  # before: an empty answer
            method(np.full(16, np.nan, np.float32))
        with pytest.raises(ValueError, match="NaN or inf"):
            method(positive=[("img:1", 1.0)], negative=[(np.full(16, np.inf, np.float32), 1.0)])
    # a good vector still answers as its key does (an image's words: its own key is not among them)
    assert [w for w, _ in model.most_similar_words(v, topn=3)] == [w for w, _ in model.most_similar_words("img:0", topn=3)]


def test_export_sprite_from_several_image_folders(tmp_path):
    """A model trained on two stores (the demo's emoji and clip art) gets a whole sprite from both
    folders (`im2vec export --images A --images B`); with one folder it had grey tiles only."""
    pytest.importorskip("PIL", reason="a sprite needs Pillow")
    from PIL import Image

    feats, docs = {}, []
    rng = np.random.default_rng(0)
    for folder, colour in (("a", "red"), ("b", "blue")):
        (tmp_path / folder).mkdir()
        for i in range(6):
            Image.new("RGB", (8, 8), colour).save(tmp_path / folder / f"{folder}{i}.png")
            feats[f"img:{folder}{i}"] = rng.normal(size=8)
            docs.append([f"img:{folder}{i}", colour, "shape"])
    model = Im2Vec(docs * 3, image_features=feats, **OPTS)
    model.save(str(tmp_path / "m.model"))
    res = CliRunner().invoke(main, ["export", str(tmp_path / "m.model"), "-o", str(tmp_path / "p"), "--restrict",
                                    "images", "--images", str(tmp_path / "a"), "--images", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "12 rows (12 images), sprite 4x4 (0 images without a file)" in res.output
    one = export_projector(model, tmp_path / "q", restrict="images", images=tmp_path / "a")
    assert len(one.missing) == 6
    (tmp_path / "c").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "c" / "a0.png")
    with pytest.raises(ValueError, match="names a file in two of the folders"):
        export_projector(model, tmp_path / "r", images=[tmp_path / "a", tmp_path / "c"])


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    """`im2vec normalize` killed mid-write left its hidden temporary file (13 MB in the audit,
    gigabytes at YFCC100M's size) for good; the next write of the same file removes it, never a
    live writer's."""
    import subprocess
    import sys

    from gensim_im2vec.fileio import atomic_write_bytes

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    stale = tmp_path / f".docs.txt.tmp-{dead_pid}-123.txt"
    live = tmp_path / f".docs.txt.tmp-{os.getppid()}-456"
    other = tmp_path / f".other.txt.tmp-{dead_pid}-123"
    for p in (stale, live, other):
        p.write_bytes(b"half a file")
    atomic_write_bytes(tmp_path / "docs.txt", b"whole\n")
    assert (tmp_path / "docs.txt").read_bytes() == b"whole\n"
    assert not stale.exists() and live.exists() and other.exists()


def test_extract_keys_files_as_yfcc_documents_name_them(tmp_path):
    """Flickr names a photo <id>_<secret>_o.jpg and YFCC100M shards them as d29/e7c/<hash>.jpg;
    `normalize --key id|hash` names the documents' images by the bare id or hash. `extract --keys
    flickr-id|stem` keys the files the same way (by path the two never met)."""
    pytest.importorskip("torchvision", reason="extraction needs torchvision")
    from PIL import Image

    (tmp_path / "fl").mkdir()
    (tmp_path / "hs" / "d29" / "e7c").mkdir(parents=True)
    Image.new("RGB", (40, 40), "red").save(tmp_path / "fl" / "6985418911_4e2f7a26a1_o.jpg")
    Image.new("RGB", (40, 40), "blue").save(tmp_path / "fl" / "12_ab.png")
    Image.new("RGB", (40, 40), "green").save(tmp_path / "hs" / "d29" / "e7c" / "d29e7c6a30.jpg")
    base = ["--weights", "none", "--arch", "mobilenet_v2", "--device", "cpu", "--no-progress", "--num-workers", "0",
            "--dtype", "float32"]
    run = CliRunner().invoke
    res = run(main, ["extract", str(tmp_path / "fl"), "-o", str(tmp_path / "a"), "--keys", "flickr-id", *base])
    assert res.exit_code == 0, res.output
    assert sorted(FeatureStore.open(tmp_path / "a").keys) == ["img:12", "img:6985418911"]
    res = run(main, ["extract", str(tmp_path / "hs"), "-o", str(tmp_path / "b"), "--keys", "stem", *base])
    assert res.exit_code == 0 and list(FeatureStore.open(tmp_path / "b").keys) == ["img:d29e7c6a30"], res.output
    res = run(main, ["extract", str(tmp_path / "hs"), "-o", str(tmp_path / "c"), "--keys", "flickr-id", *base])
    assert res.exit_code == 2 and "is not named as Flickr names photos" in res.output
    Image.new("RGB", (40, 40), "red").save(tmp_path / "hs" / "d29" / "d29e7c6a30.png")  # the same stem twice
    res = run(main, ["extract", str(tmp_path / "hs"), "-o", str(tmp_path / "d"), "--keys", "stem", *base])
    assert res.exit_code == 2 and "'img:d29e7c6a30': " in " ".join(res.output.split())
    assert "by --keys stem an image key is" in " ".join(res.output.split())
