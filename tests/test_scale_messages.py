"""Messages a scale review found misleading: each is said in the terms of what is really the case.

1. ``extract --keys flickr-id`` applied the path rule's duplicate check before the key rule, so
   ``a/x.jpg`` + ``a/x.png`` (no Flickr names: no key at all by that rule) were reported as a clash
   of "the file's path without its extension", and the real clash, two files of ``img:1000001``,
   was not said.
2. A stale index's message added its tags part to its words part (the tags are words): "1852
   keys" against the model's 1600 compared unlike counts.
3. The query prompt's hint for an unknown image key described path keys whatever the store's key
   rule, and said nothing of an image the extraction skipped (its reason is in skipped.json).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gensim_im2vec import Im2Vec
from gensim_im2vec import index as _index
from gensim_im2vec.cli import main

needs_faiss = pytest.mark.skipif(not _index._installed("faiss"), reason="needs faiss-cpu")

EXTRACT = ["--weights", "none", "--arch", "mobilenet_v3_small", "--device", "cpu", "--no-progress",
           "--num-workers", "0", "--dtype", "float32"]


def _save(path, color="red", size=32):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)


def _flat(text: str) -> str:
    return " ".join(text.split())


# --- 1. the key rule first, then its own clashes --------------------------------------------


@pytest.fixture
def dupimgs(tmp_path):
    """The reviewer's folder: one Flickr id in two folders, and x.jpg / x.png (no Flickr names)."""
    d = tmp_path / "dupimgs"
    _save(d / "a" / "1000001_abc000_o.jpg", "red")
    _save(d / "b" / "1000001_zzz_b.jpg", "blue")
    _save(d / "a" / "x.jpg", "green")
    _save(d / "a" / "x.png", "green")
    return d


def test_rule_key_names_files_by_each_rule_and_none_where_flickr_id_cannot():
    from gensim_im2vec.keys import describe_key_rule, rule_key

    assert rule_key("/r/a/1000001_abc000_o.jpg", "/r", "flickr-id") == "img:1000001"
    assert rule_key("/r/a/x.jpg", "/r", "flickr-id") is None
    assert rule_key("/r/a/x.jpg", "/r", "stem") == "img:x"
    assert rule_key("/r/a/my cat.jpg", "/r", "stem", prefix="p:") == "p:my%20cat"
    assert rule_key("/r/a/x.jpg", "/r", "path") == "img:a/x"
    with pytest.raises(ValueError, match="key rule"):
        rule_key("/r/x.jpg", "/r", "hash")
    assert "photo id" in describe_key_rule("flickr-id") and "path" not in describe_key_rule("flickr-id")


def test_list_images_by_flickr_id_names_the_unnamed_files_and_the_real_clash(dupimgs):
    from gensim_im2vec.features import list_images

    with pytest.raises(ValueError) as e:
        list_images(dupimgs, key_rule="flickr-id")
    msg = str(e.value)
    assert "2 files under" in msg and "have no key by --keys flickr-id: each is not named as Flickr names" in msg, msg
    assert str(dupimgs / "a" / "x.jpg") in msg and str(dupimgs / "a" / "x.png") in msg, msg
    assert f"'img:1000001': {dupimgs / 'a' / '1000001_abc000_o.jpg'} and {dupimgs / 'b' / '1000001_zzz_b.jpg'}" in msg, msg
    assert "by --keys flickr-id an image key is 'img:' + the photo id" in msg, msg
    assert "'a/x'" not in msg and "img:a/x" not in msg and "path under the image folder" not in msg, msg
    assert "key the folder by --keys path" in msg, msg  # it tells the two folders' files apart
    # without the unnamed files, only the clash; without the clash, the rule's keys
    (dupimgs / "a" / "x.jpg").unlink()
    (dupimgs / "a" / "x.png").unlink()
    with pytest.raises(ValueError) as e:
        list_images(dupimgs, key_rule="flickr-id")
    assert "not named as Flickr" not in str(e.value) and "'img:1000001'" in str(e.value)
    (dupimgs / "b" / "1000001_zzz_b.jpg").rename(dupimgs / "b" / "1000002_zzz_b.jpg")
    assert [k for k, _ in list_images(dupimgs, key_rule="flickr-id")] == ["img:1000001", "img:1000002"]


def test_list_images_by_stem_and_path_say_their_own_rule(tmp_path):
    from gensim_im2vec.features import list_images

    d = tmp_path / "imgs"
    _save(d / "a" / "x.jpg")
    _save(d / "b" / "x.jpg")
    assert [k for k, _ in list_images(d)] == ["img:a/x", "img:b/x"]  # by path: two keys
    with pytest.raises(ValueError) as e:
        list_images(d, key_rule="stem")
    msg = str(e.value)
    assert f"'img:x': {d / 'a' / 'x.jpg'} and {d / 'b' / 'x.jpg'}" in msg and "by --keys stem an image key is" in msg, msg
    assert "file's name without its extension" in msg and "key the folder by --keys path" in msg, msg
    _save(d / "a" / "x.png")  # the same path but for the extension: by every rule one key
    with pytest.raises(ValueError) as e:
        list_images(d)
    msg = str(e.value)
    assert "'img:a/x': " in msg and "by --keys path an image key is 'img:' + the file's path" in msg
    assert "every `im2vec extract --keys` rule drops the extension, --keys path included" in msg, msg


def test_extract_by_flickr_id_reports_the_rule_not_path_keys(dupimgs, tmp_path):
    res = CliRunner().invoke(main, ["extract", str(dupimgs), "-o", str(tmp_path / "st"), "--keys", "flickr-id",
                                    *EXTRACT])
    out = _flat(res.output)
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output  # a usage error, no traceback
    assert "Invalid value for '--keys'" in out and "is not named as Flickr names photos" in out, out
    assert "'img:1000001': " in out and "belong to more than one file" in out and "by --keys flickr-id" in out, out
    assert "a key is the file's path" not in out and "'a/x'" not in out, out
    assert not (tmp_path / "st").exists()


# --- 2. a stale index's counts, part by part ---------------------------------------------


def _tagged_model(extra_words: int, seed: int = 1) -> Im2Vec:
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=3, n_images=60, n_features=8, seed=0)
    docs = [list(d) for d in data.docs]
    for i in range(extra_words):  # words of image documents: tags too
        docs[i] = docs[i] + [f"extra{i}"]
    model = Im2Vec(docs, image_features=data.features, vector_size=8, min_count=1, sample=0, epochs=1, workers=1,
                   seed=seed)
    assert model._image_words() == "tags"
    return model


def _counts(model):
    n_img = int(model.image_mask.sum()) if hasattr(model, "image_mask") else None
    n_tags = int(model._tag_mask().sum())
    return len(model.wv) - n_img, n_tags, n_img


@needs_faiss
def test_a_stale_index_message_compares_like_with_like(tmp_path):
    from gensim_im2vec.index import ModalityIndexer
    from gensim_im2vec.query import open_index

    built, other = _tagged_model(extra_words=2), _tagged_model(extra_words=0)
    bw, bt, bi = _counts(built)
    ow, ot, oi = _counts(other)
    assert bt == bw and bw > ow  # every word is a tag here: the old sum counted the words twice
    ann = str(tmp_path / "built.model.ann")
    ModalityIndexer(built, backend="faiss", modalities=("words", "tags", "images")).save(ann)
    with pytest.raises(ValueError) as e:
        open_index(ann, other, model_path=str(tmp_path / "other.model"))
    msg = str(e.value)
    assert (f"built from other keys or vectors (words {bw}, tags {bt} of them, images {bi}: {bw + bi} keys, dim 8) "
            f"than this model's (words {ow}, tags {ot} of them, images {oi}: {len(other.wv)} keys, dim 8)") in msg, msg
    assert f"{bw + bt + bi} keys" not in msg, msg  # the tags are not added to the words
    with pytest.raises(ValueError) as e:  # the library's own check says the same counts
        ModalityIndexer.load(ann, other, check=True)
    assert f"(words {bw}, tags {bt} of them, images {bi}: {bw + bi} keys, dim 8)" in str(e.value)
    assert f"(words {ow}, tags {ot} of them, images {oi}: {len(other.wv)} keys, dim 8)" in str(e.value)
    # an index without tags: words and images only, on both sides
    ModalityIndexer(built, backend="faiss", modalities=("words", "images")).save(ann)
    with pytest.raises(ValueError) as e:
        open_index(ann, other)
    assert (f"(words {bw}, images {bi}: {bw + bi} keys, dim 8) than this model's (words {ow}, images {oi}: "
            f"{len(other.wv)} keys, dim 8)") in str(e.value)
    # the command line
    other.save(str(tmp_path / "other.model"))
    res = CliRunner().invoke(main, ["query", str(tmp_path / "other.model"), "--index", ann], input="EXIT\n")
    assert res.exit_code == 1 and f"images {bi}: {bw + bi} keys, dim 8) than this model's" in _flat(res.output)


# --- 3. the query hint follows the store's key rule, and says what extraction skipped ------


@pytest.fixture(scope="module")
def flickr_model(tmp_path_factory):
    """A model trained on a ``--keys flickr-id`` store whose skipped.json lists img:2000001."""
    pytest.importorskip("torchvision", reason="extraction needs torchvision")
    from gensim_im2vec.store import FeatureStore

    tmp = tmp_path_factory.mktemp("flickr")
    fl = tmp / "fl"
    colors = ["red", "blue", "green", "yellow"]
    for i, c in enumerate(colors):
        _save(fl / f"{1000001 + i}_s{i}_o.jpg", c, 32 + i)
    (fl / "2000001_bad_o.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage" * 10)
    store = tmp / "st"
    res = CliRunner().invoke(main, ["extract", str(fl), "-o", str(store), "--keys", "flickr-id", *EXTRACT])
    assert res.exit_code == 0, res.output
    st = FeatureStore.open(store)
    assert st.metadata["key_rule"] == "flickr-id" and set(st.skipped) == {"img:2000001"}
    words = ["cat", "dog", "sun", "sea"]
    docs = [[words[j % 4], words[(j + 1) % 4], f"img:{1000001 + j % 4}"] for j in range(24)]
    model = Im2Vec(docs, image_features=st, vector_size=8, min_count=1, epochs=1, workers=1, seed=1)
    path = str(tmp / "m.model")
    model.save(path)
    return path, store, json.loads((store / "skipped.json").read_text())["img:2000001"]


def _session(path, **kw):
    from gensim_im2vec.query import QuerySession

    return QuerySession(Im2Vec.load(path), topn=3, featurizer_factory=lambda meta: None, **kw)


def test_query_says_an_image_was_skipped_by_extraction_and_why(flickr_model, tmp_path):
    path, store, reason = flickr_model
    session = _session(path)
    for typed in ("img:2000001", "2000001"):
        said = session.answer(typed)
        assert said.startswith(f"Not an image key of the model: {typed}. img:2000001 was skipped by `im2vec extract`")
        assert reason in said and "skipped.json" in said and str(store) in said, said
        assert "path under the image folder" not in said, said
    # the store given to query (moved: --store) is the one read
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "skipped.json").write_text(json.dumps({"img:2000001": "not an image: a test"}))
    said = _session(path, store=str(moved)).answer("img:2000001")
    assert "not an image: a test" in said and str(moved) in said, said


def test_query_hint_follows_the_stores_key_rule(flickr_model):
    path, _, _ = flickr_model
    session = _session(path)
    said = session.answer("img:1000099")
    assert said.startswith("Not an image key of the model: img:1000099. An image key is 'img:' + the photo id"), said
    assert "--keys flickr-id" in said and "path under the image folder" not in said, said
    assert "type its path" in said
    # a Flickr file name typed as a key: the key the rule makes of it
    for typed in ("1000001_s0_o.jpg", "img:1000002_zz_o.png"):
        said = session.answer(typed)
        want = "img:1000001" if typed.startswith("1") else "img:1000002"
        assert said.startswith(f"Not a key of the model: {typed}; did you mean {want}?"), said
        assert "photo id" in said and "path under the image folder" not in said, said
