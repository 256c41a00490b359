"""What a newcomer meets after `make demo` when opening `im2vec report`'s page and `im2vec export`'s
projector files: each test is a problem seen on the demo's models, reproduced on a tiny corpus."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.export import export_projector
from gensim_im2vec.report import write_report
from gensim_im2vec.synthetic import make_corpus

FOLDERS = ("animals", "food", "signs")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A model of 3 x 8 images keyed by folder (``img:animals/0`` ...), each image once, as the demo's:
    the vocabulary lists the images of one folder after another; their files; a split; a store."""
    from gensim_im2vec.datasets import Split
    from gensim_im2vec.store import FeatureStore

    root = tmp_path_factory.mktemp("newcomer")
    rng = np.random.default_rng(0)
    protos = rng.normal(size=(3, 16))
    keys, vecs, docs, train, test = [], [], [], [], []
    for c, folder in enumerate(FOLDERS):
        (root / "photos" / folder).mkdir(parents=True)
        for i in range(8):
            key = f"{folder}/{i}"
            Image.new("RGB", (24, 16), ("red", "green", "blue")[c]).save(root / "photos" / f"{key}.png")
            (root / "photos" / f"{key}.json").write_text(json.dumps({"tags": [folder, "thing"]}))
            keys.append("img:" + key)
            vecs.append(protos[c] + 0.2 * rng.normal(size=16))
            (test if i >= 6 else train).append(key)
            if i < 6:
                docs.append(["img:" + key, folder, "thing"])
    Split(train=train, test=test, zero_shot_tags=[], groups={k: k for k in train + test}).save(
        root / "photos" / "split.json")
    store = FeatureStore.from_arrays(root / "store", keys, np.array(vecs, dtype=np.float32))
    text = [["plain", "prose", "words"]] * 20
    model = Im2Vec(text + docs, image_features=store, vector_size=8, sg=1, min_count=1, epochs=5, sample=0,
                   workers=1, seed=1)
    path = root / "m.model"
    model.save(str(path))
    return model, root, path


# ---------------------------------------------------------------- im2vec export
def test_export_limit_keeps_images_of_every_folder_not_the_first_folders_alone(folders, tmp_path):
    """`im2vec export --limit 2000` of the demo's joint model kept 170 images, all from animals/: every
    image occurs as often, and the vocabulary's order (the corpus's, folder after folder) broke the tie.
    Among equally frequent images the limit now takes them evenly over the vocabulary."""
    model, _, _ = folders
    n_images = len(model.image_keys)
    limit = len(model.wv) // 2
    res = export_projector(model, tmp_path / "p", limit=limit)
    rows = [line.split("\t")[0] for line in res.metadata.read_text(encoding="utf-8").splitlines()[1:]]
    images = [k for k in rows if model.is_image(k)]
    assert 1 < len(images) < n_images
    assert {k.split(":")[1].split("/")[0] for k in images} == set(FOLDERS), images
    # the words are still the most frequent ones, and the rows keep the vocabulary's order
    words = [k for k in rows if not model.is_image(k)]
    assert words == [k for k in model.wv.index_to_key if not model.is_image(k)][: len(words)]
    assert rows == [k for k in model.wv.index_to_key if k in set(rows)]


def test_export_limit_still_takes_the_more_frequent_images_first(tmp_path):
    """An image in more documents than the others is kept before them."""
    data = make_corpus(n_classes=2, n_images=20, n_features=8, seed=0)
    docs = [list(d) for d in data.docs] + [list(data.docs[-1])] * 3  # the last image: 4 documents
    model = Im2Vec(docs, image_features=data.features, vector_size=6, min_count=1, epochs=1, workers=1, seed=1)
    frequent = data.docs[-1][0]
    res = export_projector(model, tmp_path / "p", limit=10)
    rows = [line.split("\t")[0] for line in res.metadata.read_text(encoding="utf-8").splitlines()[1:]]
    assert frequent in rows


def test_cli_export_says_how_to_open_the_files(folders, tmp_path):
    """`im2vec export` printed only "OUT: N rows (M images)"; a newcomer did not know what to do with the
    folder: TensorBoard opens it as is, projector.tensorflow.org's "Load" takes the two TSV files."""
    _, root, path = folders
    out = tmp_path / "proj"
    r = CliRunner().invoke(main, ["export", str(path), "-o", str(out), "--images", str(root / "photos")])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert f"tensorboard --logdir {out}" in text
    assert "projector.tensorflow.org" in text
    assert str(out / "vectors.tsv") in text and str(out / "metadata.tsv") in text
    assert "sprite" in text  # which the standalone page does not take


def test_export_too_large_a_sprite_names_tags_only(tmp_path):
    """On the demo, `im2vec export --images ...` was refused (68,803 rows: the sprite exceeds 8192 px) with
    `--limit`, `--thumbnail` or no images as the ways out; `--tags-only` (7,992 rows there, every image and
    its tags) is the one a newcomer wants and was not named."""
    from gensim.models import Word2Vec

    data = make_corpus(n_classes=3, n_images=30, n_features=8, n_text_sentences=300, seed=0)
    text = [d for d in data.docs if not d[0].startswith("img:")]
    text += [[f"prose{i}", f"prose{i + 1}"] for i in range(300)]
    w2v = Word2Vec(text, vector_size=8, sg=1, min_count=1, epochs=1, workers=1, seed=1)
    image_docs = [d for d in data.docs if d[0].startswith("img:")]
    model = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=image_docs, epochs=1, sample=0)
    tags = sum(1 for w in model.word_keys if w in model.image_tag_counts)
    folder = tmp_path / "imgs"
    folder.mkdir()
    with pytest.raises(ValueError) as err:  # 300+ rows of 512 px tiles: over 8192 px
        export_projector(model, tmp_path / "p", images=folder, thumbnail=512)
    message = str(err.value)
    assert "--tags-only" in message and f"{tags + len(model.image_keys)} rows" in message, message
    assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------- im2vec report
def test_cli_report_refuses_an_output_inside_the_image_folders(folders, tmp_path):
    """`im2vec report MODEL -o photos/report --dataset photos` wrote photos/report/thumbs/*.jpg: a later
    `im2vec extract photos` would take the report's thumbnails for images (as `im2vec export` refuses)."""
    _, root, path = folders
    photos = root / "photos"
    before = sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*"))
    for args in (["--dataset", str(photos)], ["--images", str(photos)]):
        r = CliRunner().invoke(main, ["report", str(path), "-o", str(photos / "report"), *args,
                                      "--map-method", "pca"])
        assert r.exit_code != 0, r.output
        text = " ".join(r.output.split())
        assert str(photos) in text and "thumbnails" in text and "outside" in text, text
        assert sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*")) == before
    # beside it is fine
    r = CliRunner().invoke(main, ["report", str(path), "-o", str(tmp_path / "report"), "--dataset", str(photos),
                                  "--map-method", "pca"])
    assert r.exit_code == 0, r.output


def test_words_section_says_what_the_images_vectors_are(folders, tmp_path):
    """The "Words and their nearest images" section said the images' vectors were W·v̂_f: the demo's
    models add a readout (space_readout) and centre the features, so the ranked vectors are the images'
    rows of model.wv (held-out ones by model.project), which is what the page now says."""
    model, _, _ = folders
    index = write_report(model, tmp_path / "r", words=["animals"], map_words=0, map_images=0)
    section = index.read_text(encoding="utf-8").split('<section id="words">')[1].split("</section>")[0]
    assert "W·v̂" not in section
    assert "rows of model.wv" in section


def test_heldout_count_does_not_claim_a_total_it_does_not_know(folders, tmp_path):
    """`im2vec report --dataset` passes the first --max-test-images (60) of the demo's 1,385 held-out
    images; the page said "60 of 60 images never seen in training", as if there were 60."""
    model, _, _ = folders
    src = model.features
    feats = np.stack([np.asarray(src.vectors[src.key_to_index[k]], dtype=np.float32) for k in model.image_keys[:3]])
    keys = ["img:new/0", "img:new/1", "img:new/2"]
    index = write_report(model, tmp_path / "r", test_keys=keys, test_features=feats, map_words=0, map_images=0)
    text = index.read_text(encoding="utf-8")
    assert "3 of 3 " not in text and "3 held-out images" in text
    index = write_report(model, tmp_path / "r2", test_keys=keys, test_features=feats, max_test_images=2,
                         map_words=0, map_images=0)
    assert "2 of 3 held-out images" in index.read_text(encoding="utf-8")


def test_images_without_a_thumbnail_are_explained(folders, tmp_path, caplog):
    """`im2vec report` of the demo's model with --dataset openclipart alone showed 15 grey "no image" boxes
    (its emoji images) and said nothing about them: the page, and a warning, now count them, name a
    few and say how to give their files."""
    from gensim_im2vec.store import FeatureStore

    model, root, path = folders
    store = FeatureStore.open(root / "store")
    keys = ["img:animals/6", "img:food/6", "img:signs/7"]  # held out: shown once each
    feats = np.stack([np.asarray(store.vectors[store.key_to_index[k]], dtype=np.float32) for k in keys])
    files = {"img:animals/6": root / "photos" / "animals" / "6.png",
             "img:signs/7": root / "store" / "keys.txt"}  # not an image; img:food/6: no file at all
    index = write_report(model, tmp_path / "r", test_keys=keys, test_features=feats, image_paths=files, words=[],
                         map_words=0, map_images=0)
    text = index.read_text(encoding="utf-8")
    assert text.count('class="noimg"') == 2
    note = text.split('<p class="meta noimg-note">')[1].split("</p>")[0]
    assert note.startswith("2 of the 3 images shown have no thumbnail")
    assert "1 without a file (e.g. img:food/6)" in note and "1 whose file could not be read (e.g. img:signs/7)" in note
    assert "im2vec report --images" in note
    index = write_report(model, tmp_path / "r2", test_keys=keys[:1], test_features=feats[:1], image_paths=files,
                         words=[], map_words=0, map_images=0)
    assert "noimg-note" not in index.read_text(encoding="utf-8")
    # the command line warns too (no --images: the model's images have no file)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.report"):
        r = CliRunner().invoke(main, ["report", str(path), "-o", str(tmp_path / "r3"), "--words", "signs",
                                      "--map-method", "pca", "--max-test-images", "0"])
    assert r.exit_code == 0, r.output
    assert any("have no thumbnail" in rec.getMessage() and "--images" in rec.getMessage() for rec in caplog.records)
