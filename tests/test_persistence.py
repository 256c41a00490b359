"""What a saved model holds (issue 13 item 4): its own arrays, never a feature store; the store is
referenced and opened again at load, and a moved or changed store is named with the fix."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec.store import FeatureStore, StoreMismatchError

DATA = Path(__file__).parent / "data"
N_ROWS, N_IMAGES, DIM = 20_000, 100, 64
SMALL = dict(vector_size=16, sg=1, min_count=1, epochs=2, workers=1, seed=1)


def _corpus():
    """100 images in documents, over 20,000 feature rows (the issue's example)."""
    rng = np.random.default_rng(0)
    keys = [f"img:{i:05d}" for i in range(N_ROWS)]
    protos = rng.normal(size=(4, DIM))
    labels = rng.integers(0, 4, N_ROWS)
    vecs = (protos[labels] + 0.3 * rng.normal(size=(N_ROWS, DIM))).astype(np.float32)
    used = rng.choice(N_ROWS, N_IMAGES, replace=False)
    docs = [[keys[i], f"class{labels[i]}", "photo"] for i in used]
    return keys, vecs, docs


KEYS, VECS, DOCS = _corpus()


def _files(path: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in path.parent.glob(path.name + "*")}


@pytest.fixture
def stored(tmp_path):
    """A model trained on a feature store, saved beside it."""
    store = FeatureStore.from_arrays(tmp_path / "feats", KEYS, VECS, metadata={"weights": "toy-v1"})
    model = Im2Vec(DOCS, image_features=store, **SMALL)
    path = tmp_path / "m.model"
    model.save(str(path))
    return model, store, path


def _same_model(a: Im2Vec, b: Im2Vec) -> None:
    assert a.image_keys == b.image_keys and a.wv.index_to_key == b.wv.index_to_key
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.project(VECS[:3]), b.project(VECS[:3]))
    img = a.image_keys[0]
    assert a.wv.most_similar(img, topn=5) == b.wv.most_similar(img, topn=5)


@pytest.mark.parametrize("mmap", ["r", None])
def test_a_model_on_a_store_saves_no_feature_row_and_opens_the_store_again(stored, mmap):
    model, store, path = stored
    files = _files(path)
    assert "m.model.image_vectors.npy" not in files, files
    assert sum(files.values()) < 200_000, files  # the store's rows are 5 MB
    assert model.image_store["path"] == str(store.path.resolve()) and model.image_store["count"] == N_ROWS
    loaded = Im2Vec.load(str(path), mmap=mmap)
    assert loaded.feature_store is not None and loaded.feature_store.path == store.path
    assert isinstance(loaded.features.vectors, np.memmap)  # the store's own memory map
    _same_model(model, loaded)
    loaded.train(DOCS, total_examples=len(DOCS), epochs=1)  # continues
    loaded.save(str(path))
    _same_model(loaded, Im2Vec.load(str(path)))


def test_features_in_memory_are_saved_but_only_the_vocabulary_images_rows(tmp_path):
    model = Im2Vec(DOCS, image_features=(KEYS, VECS), **SMALL)
    path = tmp_path / "m.model"
    model.save(str(path))
    assert len(model.image_feature_keys) == N_ROWS, "saving leaves the live model as it was"
    saved = np.load(tmp_path / "m.model.image_vectors.npy")
    assert saved.shape == (N_IMAGES, DIM)
    loaded = Im2Vec.load(str(path), mmap="r")
    assert sorted(loaded.image_feature_keys) == sorted(model.image_keys) and loaded.feature_store is None
    for key in model.image_keys[:5]:
        np.testing.assert_array_equal(loaded.features.vectors[loaded.features.row(key)], VECS[KEYS.index(key)])
    _same_model(model, loaded)
    loaded.train(DOCS, total_examples=len(DOCS), epochs=1)
    for key in model.image_keys[:3]:  # the renumbered rows are the images' own
        np.testing.assert_allclose(loaded.wv[key], loaded.project(VECS[KEYS.index(key)]), rtol=1e-5, atol=1e-6)


def test_a_moved_store_is_named_with_the_fix_and_given_at_load(stored, tmp_path):
    model, store, path = stored
    shutil.move(tmp_path / "feats", tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError) as err:
        Im2Vec.load(str(path))
    msg = str(err.value)
    assert f"feature store {str((tmp_path / 'feats').resolve())!r}" in msg and "no feature store at" in msg
    assert f"Im2Vec.load({str(path)!r}, image_features='NEW/STORE/PATH')" in msg
    assert "the model's 100 images" in msg
    loaded = Im2Vec.load(str(path), image_features=str(tmp_path / "elsewhere"))
    _same_model(model, loaded)
    loaded.save(str(path))  # records the new place
    again = Im2Vec.load(str(path))
    assert again.feature_store.path == tmp_path / "elsewhere"
    _same_model(model, again)


def test_a_model_moved_together_with_its_store_finds_it(stored, tmp_path):
    model, _, path = stored
    (tmp_path / "moved").mkdir()
    for f in tmp_path.iterdir():
        if f.name != "moved":
            shutil.move(f, tmp_path / "moved" / f.name)
    loaded = Im2Vec.load(str(tmp_path / "moved" / "m.model"), mmap="r")
    assert loaded.feature_store.path.resolve() == (tmp_path / "moved" / "feats").resolve()
    _same_model(model, loaded)


def test_a_changed_store_is_refused_and_a_grown_one_is_taken(stored, tmp_path):
    model, store, path = stored
    with FeatureStore.create(store.path, dim=DIM, dtype="float32", mode="extend",
                             metadata=store.metadata) as w:  # rows appended: the same store
        w.write(["img:new"], np.ones((1, DIM), np.float32))
    grown = Im2Vec.load(str(path))
    assert len(grown.feature_store) == N_ROWS + 1 and grown.is_image("img:new")
    _same_model(model, grown)
    # re-extracted into the same place: other keys in the same rows (even within the same second)
    FeatureStore.from_arrays(store.path, KEYS[::-1], VECS, metadata={"weights": "toy-v1"}, mode="overwrite")
    _set_created(store.path, model.image_store["created"])
    with pytest.raises(StoreMismatchError, match=r"which changed: .*feats' is not the model's store: its first "
                                                 r"20000 keys are not the model's store's keys\. .*Im2Vec.load\("):
        Im2Vec.load(str(path))
    FeatureStore.from_arrays(store.path, KEYS, VECS, metadata={"weights": "toy-v1"}, mode="overwrite")
    _set_created(store.path, "2001-01-01T00:00:00+00:00")  # the same keys, but made again
    with pytest.raises(StoreMismatchError, match=r"it was created 2001-01-01.*\(re-extracted or another store\)"):
        Im2Vec.load(str(path))
    FeatureStore.from_arrays(store.path, KEYS, VECS, metadata={"weights": "toy-v2"}, mode="overwrite")
    with pytest.raises(StoreMismatchError, match=r"weights: it has 'toy-v2', the model's store had 'toy-v1'"):
        Im2Vec.load(str(path))


def _set_created(path: Path, when: str) -> None:
    meta = json.loads((path / "metadata.json").read_text())
    meta["created"] = when
    (path / "metadata.json").write_text(json.dumps(meta))


def test_features_given_at_load_must_hold_every_image_and_the_dim(stored, tmp_path):
    model, _, path = stored
    images = model.image_keys
    partial = {k: VECS[KEYS.index(k)] for k in images[1:]}
    with pytest.raises(ValueError, match=rf"lack 1 of the model's 100 images, e.g. \['{images[0]}'\]"):
        Im2Vec.load(str(path), image_features=partial)
    with pytest.raises(ValueError, match="expected features of dim 64 .*got 8"):
        Im2Vec.load(str(path), image_features={k: np.ones(8) for k in images})
    given = {k: VECS[KEYS.index(k)] for k in images}
    loaded = Im2Vec.load(str(path), image_features=given)
    assert loaded.feature_store is None
    _same_model(model, loaded)


def test_a_model_saved_before_stores_were_referenced_loads(tmp_path):
    """tests/data/old_model: saved by the code of commit 7f1b8a8 (20 images in the vocabulary,
    24 feature rows, the features in m.model.image_vectors.npy)."""
    old = DATA / "old_model"
    loaded = Im2Vec.load(str(old / "m.model"), mmap="r")
    assert len(loaded.image_keys) == 20 and loaded.image_store is None and loaded.features.vectors.shape == (24, 8)
    np.testing.assert_array_equal(loaded.wv["img:3"], np.load(old / "expected_img3.npy"))
    np.testing.assert_allclose(loaded.project(np.load(old / "probe.npy")), np.load(old / "expected_probe.npy"),
                               rtol=1e-6)
    loaded.save(str(tmp_path / "m.model"))  # saved again: the vocabulary's 20 rows
    again = Im2Vec.load(str(tmp_path / "m.model"))
    assert again.features.vectors.shape == (20, 8)
    np.testing.assert_array_equal(again.wv.vectors, loaded.wv.vectors)
    assert os.path.getsize(tmp_path / "m.model.image_vectors.npy") < os.path.getsize(old / "m.model.image_vectors.npy")


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.parent.glob(path.name + "*")}


class _Interrupted(RuntimeError):
    pass


def _interrupt(monkeypatch, where: str) -> None:
    """Make gensim's save raise midway: after the first array file is written, or when it pickles
    the main file (every companion then written)."""
    import gensim.utils

    if where == "second array":
        real, calls = np.save, []

        def save(*args, **kwargs):
            calls.append(args[0])
            if len(calls) == 2:
                raise _Interrupted("disk full")
            return real(*args, **kwargs)

        monkeypatch.setattr(np, "save", save)
    else:
        def pickle(*args, **kwargs):
            raise _Interrupted("killed")

        monkeypatch.setattr(gensim.utils, "pickle", pickle)


@pytest.mark.parametrize("where", ["second array", "main file"])
def test_an_interrupted_save_leaves_the_previous_model_and_no_temporary_file(stored, monkeypatch, where):
    model, store, path = stored
    before = _snapshot(path)
    assert {"m.model", "m.model.W.npy"} <= set(before)
    other = Im2Vec(DOCS, image_features=store, **{**SMALL, "seed": 2})
    assert not np.array_equal(other.W, model.W)
    _interrupt(monkeypatch, where)
    with pytest.raises(_Interrupted):
        other.save(str(path), sep_limit=0)  # every array in a file of its own
    monkeypatch.undo()
    assert _snapshot(path) == before
    assert not [p.name for p in path.parent.iterdir() if ".tmp-" in p.name]
    _same_model(model, Im2Vec.load(str(path)))


@pytest.mark.parametrize("where", ["second array", "main file"])
def test_atomic_save_of_a_gensim_model_is_all_or_nothing(tmp_path, monkeypatch, where):
    """fileio.atomic_save as pipeline.pretrain_words uses it: a Word2Vec and its .npy files."""
    from gensim.models import Word2Vec

    from gensim_im2vec.fileio import atomic_save

    docs = [["cat", "dog", "photo"], ["dog", "ball"], ["cat", "sofa"]] * 5
    first = Word2Vec(docs, vector_size=8, min_count=1, epochs=1, workers=1, seed=1)
    path = tmp_path / "words.w2v"
    atomic_save(first, path, sep_limit=0)
    before = _snapshot(path)
    assert len(before) >= 3, before.keys()  # the main file and at least two arrays of their own
    second = Word2Vec(docs, vector_size=8, min_count=1, epochs=1, workers=1, seed=2)
    _interrupt(monkeypatch, where)
    with pytest.raises(_Interrupted):
        atomic_save(second, path, sep_limit=0)
    monkeypatch.undo()
    assert _snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)
    np.testing.assert_array_equal(Word2Vec.load(str(path)).wv.vectors, first.wv.vectors)
    third = Word2Vec(docs, vector_size=8, min_count=1, epochs=1, workers=1, seed=3)
    atomic_save(third, path, sep_limit=0)  # a save that goes through replaces every file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)
    np.testing.assert_array_equal(Word2Vec.load(str(path)).wv.vectors, third.wv.vectors)
