"""Projector export: parse every file back and check it against the model and the images."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gensim.models import KeyedVectors
from PIL import Image

from gensim_im2vec import Im2Vec
from gensim_im2vec.export import MAX_SPRITE_SIDE, export_projector

COLOURS = [(255, 0, 0), (0, 0, 255), (0, 160, 0)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    photos = root / "photos" / "sub"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    docs, feats = [], {}
    for i in range(30):
        c = i % 3
        # tall and wide images: thumbnails keep their aspect and are centred
        Image.new("RGB", (60, 20) if i % 2 else (20, 50), COLOURS[c]).save(photos / f"{i}.png")
        feats[f"img:sub/{i}"] = rng.normal(size=8) + 4 * np.eye(8)[c]
        docs.append([f"img:sub/{i}", ("red", "blue", "green")[c], "photo"])
    model = Im2Vec(docs, image_features=feats, vector_size=6, min_count=1, epochs=2, workers=1, seed=1)
    return model, root


def _parse_pbtxt(text: str) -> dict:
    out = {}
    for key, val in re.findall(r'(\w+):\s*("(?:[^"\\]|\\.)*"|\d+)', text):
        out.setdefault(key, []).append(val.strip('"') if val.startswith('"') else int(val))
    return out


def test_files_parse_back(setup, tmp_path):
    model, root = setup
    res = export_projector(model, tmp_path / "p", images=root / "photos", thumbnail=(16, 12))
    keys = model.wv.index_to_key
    assert res.count == len(keys) == 34 and res.n_images == 30 and res.missing == []
    # vectors.tsv: one row per key, same numbers (7 significant digits)
    vecs = np.loadtxt(res.vectors, delimiter="\t")
    assert vecs.shape == (34, 6)
    np.testing.assert_allclose(vecs, model.wv.vectors, rtol=1e-6, atol=1e-7)
    # metadata.tsv: a header, then key / modality / count per row in the same order
    lines = res.metadata.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "key\tmodality\tcount" and len(lines) == 35
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == keys
    assert [r[1] for r in rows] == ["image" if model.is_image(k) else "word" for k in keys]
    assert int(rows[0][2]) == model.wv.get_vecattr(keys[0], "count")
    # the config names the files and the tile size
    cfg = _parse_pbtxt(res.config.read_text())
    assert cfg["tensor_path"] == ["vectors.tsv"] and cfg["metadata_path"] == ["metadata.tsv"]
    assert cfg["image_path"] == ["sprite.png"] and cfg["single_image_dim"] == [16, 12]
    assert cfg["tensor_name"] == ["im2vec"]
    assert res.config.read_text().count("{") == res.config.read_text().count("}") == 2


def test_the_projector_sees_the_space(setup, tmp_path):
    """The exported rows are the one space: an image's row is ``model.project`` of its features, and
    the projector's cosine neighbours of an image among the words are ``model.most_similar_words``."""
    model, root = setup
    res = export_projector(model, tmp_path / "p")
    keys = [line.split("\t")[0] for line in res.metadata.read_text(encoding="utf-8").splitlines()[1:]]
    vecs = np.loadtxt(res.vectors, delimiter="\t")
    rows = {k: v for k, v in zip(keys, vecs)}
    key = "img:sub/4"
    np.testing.assert_allclose(rows[key], model.project(model.features.vectors[model.features.row(key)]),
                               rtol=1e-5, atol=1e-6)
    words = [k for k in keys if not model.is_image(k)]
    unit = {k: v / np.linalg.norm(v) for k, v in rows.items()}
    by_cosine = sorted(words, key=lambda w: -float(unit[w] @ unit[key]))
    assert by_cosine == [w for w, _ in model.most_similar_words(key, topn=len(words))]


def test_sprite_geometry_and_tiles(setup, tmp_path):
    model, root = setup
    res = export_projector(model, tmp_path / "p", images=root / "photos", thumbnail=(16, 12))
    sprite = Image.open(res.sprite)
    assert res.grid == 6  # ceil(sqrt(34))
    assert sprite.size == (6 * 16, 6 * 12) and sprite.mode == "RGB"
    arr = np.asarray(sprite)
    for i, key in enumerate(model.wv.index_to_key):
        tile = arr[(i // 6) * 12 : (i // 6 + 1) * 12, (i % 6) * 16 : (i % 6 + 1) * 16]
        centre = tuple(int(x) for x in tile[6, 8])
        if model.is_image(key):
            n = int(key.rsplit("/", 1)[1])
            assert centre == COLOURS[n % 3], (key, centre)  # the image's own colour, in row order
            # aspect kept: a wide (60x20) image leaves white bands above and below
            if n % 2:
                assert tuple(tile[0, 8]) == (255, 255, 255)
        else:
            assert centre != (255, 255, 255) and centre not in COLOURS  # a grey word tile
    # tiles past the last row stay blank
    assert (arr[5 * 12 :, 4 * 16 :] == 255).all()


def test_restrict_limit_keys_and_missing_files(setup, tmp_path):
    model, root = setup
    res = export_projector(model, tmp_path / "w", restrict="words")
    assert res.count == 4 and res.n_images == 0 and res.sprite is None and res.grid == 0
    assert "sprite" not in res.config.read_text()
    res = export_projector(model, tmp_path / "i", restrict="images", limit=4, images={}, thumbnail=8)
    assert res.count == 4 and res.n_images == 4 and len(res.missing) == 4
    assert Image.open(res.sprite).size == (16, 16)
    paths = {"img:sub/1": root / "photos" / "sub" / "1.png", "img:sub/2": root / "nowhere.png"}
    res = export_projector(model, tmp_path / "k", keys=["img:sub/1", "img:sub/2", "red"], images=paths,
                           normalize=True, thumbnail=8)
    assert res.missing == ["img:sub/2"]
    np.testing.assert_allclose(np.linalg.norm(np.loadtxt(res.vectors, delimiter="\t"), axis=1), 1.0, rtol=1e-6)


def test_images_without_a_thumbnail_are_counted_as_the_report_counts_them(setup, tmp_path, caplog):
    # neither the export nor the report fails on a picture it cannot make (a grey tile; a grey box), and
    # both warn in one line; the export called an unreadable file "no readable file" and its summary
    # "(2 images without a file)", sending a user after files that are there; the report's note tells the
    # two apart ("1 without a file (e.g. ...)", "1 whose file could not be read (e.g. ...)"), and so does it now
    import logging

    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    model, root = setup
    (tmp_path / "broken.png").write_bytes(b"not a png")
    paths = {"img:sub/1": root / "photos" / "sub" / "1.png", "img:sub/2": root / "nowhere.png",
             "img:sub/3": tmp_path / "broken.png"}
    keys = ["img:sub/1", "img:sub/2", "img:sub/3", "red"]
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.export"):
        res = export_projector(model, tmp_path / "e", keys=keys, images=paths, thumbnail=8)
    assert res.missing == ["img:sub/2", "img:sub/3"] and res.unreadable == ["img:sub/3"]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("sprite: 2 of 3 image(s) have no thumbnail (grey tiles): "), said
    assert "1 without a file (e.g. img:sub/2); 1 whose file could not be read (e.g. img:sub/3)" in said[0]
    # the report's count of the same files (a file given that is not there was one "whose file could not be read")
    from gensim_im2vec.report import _Thumbnails

    thumbs = _Thumbnails(tmp_path / "r", paths, 16)
    assert [thumbs.url(k) is None for k in keys[:3]] == [False, True, True]
    assert "1 without a file (e.g. img:sub/2); 1 whose file could not be read (e.g. img:sub/3)" in thumbs.missing_note()
    model.save(str(tmp_path / "m.model"))
    folder = tmp_path / "imgs" / "sub"
    folder.mkdir(parents=True)
    (folder / "1.png").write_bytes((root / "photos" / "sub" / "1.png").read_bytes())
    (folder / "3.png").write_bytes(b"not a png")
    out = CliRunner().invoke(main, ["export", str(tmp_path / "m.model"), "-o", str(tmp_path / "c"), "--images",
                                    str(tmp_path / "imgs"), "--restrict", "images"])
    assert out.exit_code == 0, out.output
    assert "sprite 6x6 (28 images without a file, 1 whose file could not be read)" in out.output, out.output


def test_plain_keyed_vectors_and_awkward_keys(tmp_path):
    kv = KeyedVectors(3)
    kv.add_vectors(["a\tb", "img:x", "new\nline"], np.eye(3, dtype=np.float32))
    res = export_projector(kv, tmp_path / "kv")
    lines = res.metadata.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert [line.split("\t")[:2] for line in lines[1:]] == [["a b", "word"], ["img:x", "image"], ["new line", "word"]]


def test_bad_arguments(setup, tmp_path):
    model, root = setup
    with pytest.raises(ValueError, match="not in the model"):
        export_projector(model, tmp_path / "x", keys=["nope"])
    with pytest.raises(ValueError, match="restrict"):
        export_projector(model, tmp_path / "x", restrict="audio")
    with pytest.raises(ValueError, match="8192 px"):
        export_projector(model, tmp_path / "x", images=root / "photos", thumbnail=MAX_SPRITE_SIDE // 5)
    with pytest.raises(ValueError, match="nothing to export"):
        export_projector(model, tmp_path / "x", keys=["red"], restrict="images")


def test_config_is_read_by_tensorboards_projector_schema(setup, tmp_path):
    """TensorBoard's own ProjectorConfig message parses the config (what its projector plugin reads)."""
    pb = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2",
                             reason="tensorboard is not installed (pip install tensorboard)")
    from google.protobuf import text_format

    model, root = setup
    res = export_projector(model, tmp_path / "p", images=root / "photos", thumbnail=(16, 12))
    config = text_format.Parse(res.config.read_text(), pb.ProjectorConfig())
    (emb,) = config.embeddings
    assert emb.tensor_path == "vectors.tsv" and emb.metadata_path == "metadata.tsv"
    assert emb.sprite.image_path == "sprite.png" and list(emb.sprite.single_image_dim) == [16, 12]
    assert (tmp_path / "p" / emb.tensor_path).exists() and (tmp_path / "p" / emb.sprite.image_path).exists()


# ---------------------------------------------------------------- a folder of the user's is never written into
@pytest.mark.parametrize("mine", ["metadata.tsv", "vectors.tsv", "notes/todo.txt"])
def test_refuses_a_folder_of_the_users_and_leaves_it_as_it_was(setup, tmp_path, mine):
    # the export used to replace a user's metadata.tsv / vectors.tsv in the folder
    model, root = setup
    out = tmp_path / "mine"
    (out / mine).parent.mkdir(parents=True)
    (out / mine).write_text("the user's own rows\n")
    with pytest.raises(FileExistsError) as err:
        export_projector(model, out, images=root / "photos")
    message = str(err.value)
    assert f"the folder {str(out)!r} is not empty" in message and f"it holds {mine!r}" in message
    assert "Choose a new or empty folder" in message
    assert (out / mine).read_text() == "the user's own rows\n"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [mine]


def test_an_empty_folder_or_an_earlier_export_is_written(setup, tmp_path):
    model, root = setup
    out = tmp_path / "p"
    out.mkdir()
    assert export_projector(model, out, images=root / "photos").count == 34  # empty, existing
    res = export_projector(model, out, restrict="words")  # its own earlier export: replaced
    assert res.count == 4 and len(res.metadata.read_text().splitlines()) == 5
    assert "sprite" not in res.config.read_text()


def test_cli_export_refuses_a_folder_of_the_users(setup, tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    model, _ = setup
    model.save(str(tmp_path / "m.model"))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metadata.tsv").write_text("my labels\n")
    r = CliRunner().invoke(main, ["export", str(tmp_path / "m.model"), "-o", str(out)])
    assert r.exit_code == 1 and r.output.startswith("Error: "), r.output
    text = " ".join(r.output.split())
    assert str(out) in text and "'metadata.tsv'" in text and "Choose a new or empty folder" in text
    assert (out / "metadata.tsv").read_text() == "my labels\n" and [p.name for p in out.iterdir()] == ["metadata.tsv"]
    r = CliRunner().invoke(main, ["export", str(tmp_path / "m.model"), "-o", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["export", str(tmp_path / "m.model"), "-o", str(tmp_path / "p")])  # a rerun
    assert r.exit_code == 0 and "34 rows" in r.output, r.output


def test_tags_only_leaves_out_the_texts_other_words(tmp_path):
    """tags_only: of the words, only those of the image documents are exported (every image stays);
    with restrict="words" only the tags; a model without tags says so; the CLI's --tags-only does the same."""
    from click.testing import CliRunner
    from gensim.models import Word2Vec

    from gensim_im2vec.cli import main
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=3, n_images=60, n_features=8, n_text_sentences=200, seed=0)
    text = [d for d in data.docs if not d[0].startswith("img:")] + [["onlytext", "prose"]] * 5
    w2v = Word2Vec(text, vector_size=8, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    image_docs = [d for d in data.docs if d[0].startswith("img:")]
    model = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=image_docs, epochs=2, sample=0)
    tags = {w for w in model.word_keys if w in model.image_tag_counts}
    assert {"onlytext", "prose"} <= set(model.word_keys) and {"onlytext", "prose"}.isdisjoint(tags)
    res = export_projector(model, tmp_path / "t", tags_only=True)
    rows = [line.split("\t")[0] for line in res.metadata.read_text(encoding="utf-8").splitlines()[1:]]
    assert set(rows) == tags | set(model.image_keys) and res.n_images == len(model.image_keys)
    assert [k for k in model.wv.index_to_key if k in set(rows)] == rows  # the vocabulary's order
    res = export_projector(model, tmp_path / "w", tags_only=True, restrict="words")
    assert res.count == len(tags) and res.n_images == 0
    with pytest.raises(ValueError, match=r"restrict='images' \(--restrict images\) exports no word"):
        export_projector(model, tmp_path / "i", tags_only=True, restrict="images")  # (tags_only was ignored)
    assert not (tmp_path / "i").exists()
    with pytest.raises(ValueError, match="tags_only: this model has no tags"):
        export_projector(w2v, tmp_path / "x", tags_only=True)
    path = str(tmp_path / "m.model")
    model.save(path)
    out = CliRunner().invoke(main, ["export", path, "-o", str(tmp_path / "cli"), "--tags-only"])
    assert out.exit_code == 0, out.output
    assert f"{len(tags) + len(model.image_keys)} rows ({len(model.image_keys)} images)" in out.output
