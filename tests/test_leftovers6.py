"""Leftovers of the newcomer's and the resume review (f420859):

1. ``extract_ray`` adds up the rows of its parts that underflow float16 (each part's extraction counts
   them) and says them in its summary as ``extract`` does; it said nothing (the actors' warnings
   stayed in their logs). Ray is not needed: a stand-in of the few Ray calls ``_run_parts`` makes
   runs the actors' own class in this process (and, where Ray Data is installed, a local cluster).
2. A vectors file refused at train time never advises deleting a saved model's array
   (``MODEL.wv.vectors.npy``: a finished run's vectors file, moved into its model); the messages put
   "give another path" first. A file another run continues in is never advised removed by a command
   that is not that run's.
3. A project copied (``cp -r``) after its run was interrupted, the original resumed and interrupted
   again: the copy's resume still takes its vectors file as a copy (removed, made again from its own
   checkpoint), and both finish the same run. The original moved away and a copy put in its place
   (the moved file is not a copy: its marker describes it) stays refused, as another checkpoint may
   continue in it, with fixes that remove nothing.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DatasetHere
from test_resume_moved_project import _args, _files, _interrupt, _project, _resume

from gensim_im2vec import Im2Vec, distributed
from gensim_im2vec.cli import main
from gensim_im2vec.features import FeatureExtractor
from gensim_im2vec.store import UNDERFLOW_KEYS_KEPT
from gensim_im2vec.synthetic import make_corpus

# ----------------------------------------------------------------------------- 1. extract_ray's underflow


def _row(underflow: int, keys: list[str], extracted: int = 4) -> dict:
    """A part's row as the driver reads it (one value a column, the keys a JSON str)."""
    return {"part": 0, "extracted": extracted, "already": 0, "skipped": 0, "seconds": 1.0, "error": "",
            "changed_files": False, "underflow": underflow, "underflow_keys": json.dumps(keys),
            **{f"stage_{k}": 0.25 for k in ("input", "model", "write", "other")}}


def test_the_parts_rows_add_up_their_underflow_and_keep_the_first_keys():
    totals = distributed._PartTotals()
    totals.add(_row(6, [f"img:a{i}" for i in range(6)], extracted=6))
    totals.add(_row(0, [], extracted=3))
    totals.add(_row(7, [f"img:b{i}" for i in range(7)], extracted=7))
    assert (totals.extracted, totals.underflow.count, len(totals.part_seconds)) == (16, 13, 3)
    # as one extraction keeps them (store._Underflow): the first UNDERFLOW_KEYS_KEPT, in order
    assert totals.underflow.keys == [f"img:a{i}" for i in range(6)] + [f"img:b{i}" for i in range(4)]
    assert len(totals.underflow.keys) == UNDERFLOW_KEYS_KEPT
    assert totals.stages == {"input": 0.75, "model": 0.75, "write": 0.75, "other": 0.75}


@pytest.fixture
def ray_here(monkeypatch):
    """A stand-in ``ray`` package (``ray``, ``ray.data``, ``ray.exceptions``): a local "cluster" of 2 CPUs
    whose Dataset runs the real ``_run_parts``'s actors in this process."""
    ray = types.ModuleType("ray")
    data = types.ModuleType("ray.data")
    exceptions = types.ModuleType("ray.exceptions")
    context = types.SimpleNamespace(enable_progress_bars=True)
    data.DataContext = types.SimpleNamespace(get_current=lambda: context)
    data.from_items = lambda items, **_: DatasetHere(items)
    data.ActorPoolStrategy = lambda **_: None
    exceptions.RayError = type("RayError", (Exception,), {})
    ray.data, ray.exceptions = data, exceptions
    ray.is_initialized = lambda: True
    ray.init = lambda *a, **k: None
    ray.cluster_resources = lambda: {"CPU": 2.0}
    for name, module in (("ray", ray), ("ray.data", data), ("ray.exceptions", exceptions)):
        monkeypatch.setitem(sys.modules, name, module)


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("underflow") / "imgs"
    root.mkdir()
    for i, colour in enumerate(("red", "blue", "green", "white", "black")):
        Image.new("RGB", (16, 16), colour).save(root / f"{i}.png")
    return root


FX = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2}  # random init: features ~1e-8


def test_extract_ray_adds_up_the_parts_underflow_and_says_it_as_extract_does(tiny_images, tmp_path, ray_here,
                                                                             caplog):
    pytest.importorskip("torchvision")
    single = FeatureExtractor(**FX, device="cpu", num_workers=0, progress=False).extract(tiny_images, tmp_path / "one")
    assert single.underflow == 5
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.distributed"):
        report = distributed.extract_ray(tiny_images, tmp_path / "feats", **FX, part_size=2)
    assert report.parts_run == 3 and report.extracted == 5
    # was: no underflow on the report, and its summary silent (each actor warned in its own log only)
    assert report.underflow == 5 and report.underflow_keys == [f"img:{i}" for i in range(5)]
    said = report.summary()
    assert ("; WARNING: 5 of the 5 rows written underflow float16 (the model's values are below 6.1e-05: the stored "
            "rows are all zeros or nearly, e.g. 'img:0', 'img:1', 'img:2', ...); Im2Vec cannot use them. Extract into "
            "a new store with dtype='float32' (im2vec extract-ray --dtype float32 -o NEW_STORE") in said, said
    # the same words as extract's summary, its command named
    one = single.summary()
    assert said[said.index("WARNING"):].split("; actors' time")[0] == \
        one[one.index("WARNING"):].split("; time")[0].replace("im2vec extract ", "im2vec extract-ray ")
    assert any("5 of the 5 rows written underflow float16" in r.getMessage() and str(tmp_path / "feats") in
               r.getMessage() for r in caplog.records)
    # float32: nothing to say
    clean = distributed.extract_ray(tiny_images, tmp_path / "f32", **FX, part_size=2, dtype="float32")
    assert clean.underflow == 0 and clean.underflow_keys == [] and "underflow" not in clean.summary()


def test_extract_ray_on_ray_adds_up_the_parts_underflow(tiny_images, tmp_path):
    """The same on a local Ray cluster (where Ray Data is installed): the keys travel as one str a row."""
    pytest.importorskip("torchvision")
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = distributed.extract_ray(tiny_images, tmp_path / "feats", **FX, part_size=2)
    finally:
        ray.shutdown()
    assert report.parts_run == 3 and report.underflow == 5
    assert sorted(report.underflow_keys) == [f"img:{i}" for i in range(5)]
    assert "; WARNING: 5 of the 5 rows written underflow float16" in report.summary()


def test_im2vec_extract_ray_prints_the_underflow(tiny_images, tmp_path, ray_here):
    pytest.importorskip("torchvision")
    res = CliRunner().invoke(main, ["extract-ray", str(tiny_images), "-o", str(tmp_path / "s"), "--weights", "none",
                                    "--arch", "mobilenet_v3_small", "--batch-size", "2", "--part-size", "2"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "5 of the 5 rows written underflow float16" in text, text
    assert "im2vec extract-ray --dtype float32 -o NEW_STORE" in text, text


# ----------------------------------------------------------------------------- 2. what a refusal advises


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=3, n_images=60, seed=0)


KW = {"vector_size": 8, "sg": 1, "min_count": 1, "epochs": 1, "sample": 0, "workers": 1, "seed": 1}


def test_a_saved_models_array_is_refused_without_advice_to_delete_it(data, tmp_path):
    model = Im2Vec(data.docs, image_features=data.features, vectors_file=tmp_path / "vf.npy", **KW)
    model.save(str(tmp_path / "m.model"), move_vectors_file=True)
    saved = tmp_path / "m.model.wv.vectors.npy"
    assert saved.exists() and not (tmp_path / "vf.npy").exists()
    del model
    before = saved.read_bytes()
    with pytest.raises(FileExistsError) as e:
        Im2Vec(data.docs, image_features=data.features, vectors_file=saved, **KW)
    said = str(e.value)
    # was: "... Delete it if it is an old vectors file that no model uses, or give another path ..."
    assert "Delete" not in said and "delete" not in said, said
    assert f"It is an array of the saved model {str(tmp_path / 'm.model')!r}" in said and "keep it" in said, said
    assert saved.read_bytes() == before
    # another file: another path first, deleting it last and only if no model uses it
    mine = tmp_path / "mine.npy"
    np.save(mine, np.ones((3, 4), np.float32))
    with pytest.raises(FileExistsError) as e:
        Im2Vec(data.docs, image_features=data.features, vectors_file=mine, **KW)
    said = str(e.value)
    assert said.index("Give another path") < said.index("Delete it yourself only if it is an old vectors file"), said
    assert "saved model" not in said


def test_train_given_a_saved_models_array_says_keep_it(data, tmp_path):
    """`im2vec train --vectors-file MODEL.wv.vectors.npy` (no run made it): refused by the command, in its terms."""
    model = Im2Vec(data.docs, image_features=data.features, vectors_file=tmp_path / "vf.npy", **KW)
    model.save(str(tmp_path / "m.model"), move_vectors_file=True)
    del model
    from gensim_im2vec.store import FeatureStore

    keys = list(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    (tmp_path / "docs.txt").write_text("".join(" ".join(d) + "\n" for d in data.docs), encoding="utf-8")
    saved = tmp_path / "m.model.wv.vectors.npy"
    before = saved.read_bytes()
    res = CliRunner().invoke(main, ["train", str(tmp_path / "docs.txt"), "-f", str(tmp_path / "store"), "-o",
                                    str(tmp_path / "other.model"), "--min-count", "1", "--vectors-file", str(saved)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2, said
    assert "Give --vectors-file another path" in said and "keep it" in said and "elete" not in said, said
    assert f"saved model '{tmp_path / 'm.model'}'" in said, said
    assert saved.read_bytes() == before and not (tmp_path / "other.model").exists()


# ----------------------------------------------------------------------------- 3. a copy, the original resumed again


def _model(project):
    return Im2Vec.load(str(project / "model.im2vec"))


def test_a_copy_resumes_after_the_original_was_resumed_and_interrupted_again(tmp_path, monkeypatch):
    a = _project(tmp_path / "A")
    _interrupt(a)
    b = tmp_path / "B"
    subprocess.run(["cp", "-r", str(a), str(b)], check=True)
    _interrupt(a)  # A resumed (in its own file, in place) and interrupted again
    a_files = _files(a)
    said = _resume(b, monkeypatch)  # B's marker names A's output; B's vf.npy is a copy (another inode)
    assert "resuming the interrupted run" in said and "copy of the vectors file" in said, said
    assert _files(a) == a_files
    _resume(a, monkeypatch)
    mb, ma = _model(b), _model(a)
    assert mb.wv.index_to_key == ma.wv.index_to_key
    np.testing.assert_allclose(mb.W, ma.W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mb.wv.vectors, ma.wv.vectors, rtol=1e-5, atol=1e-6)


def test_the_moved_original_beside_a_resumed_copy_stays_refused_and_untouched(tmp_path, monkeypatch):
    """A moved to B, a copy of it put back as A and resumed (interrupted): B's vf.npy is the run's own file (its
    marker, naming A's output, describes it: not a copy), and A's checkpoint may still record it (a checkpoint's
    record is not read here), so B's resume does not take it; it names a fix that removes nothing, which works."""
    a = _project(tmp_path / "A")
    _interrupt(a)
    b = tmp_path / "B"
    os.rename(a, b)
    subprocess.run(["cp", "-r", str(b), str(a)], check=True)
    _interrupt(a)  # the copy at A: its vf.npy made again from its checkpoint, then killed
    before = _files(b)
    result = CliRunner().invoke(main, _args(b))
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "give --vectors-file another path" in said and "remove" not in said, said
    assert _files(b) == before
    args = _args(b)
    args[args.index("--vectors-file") + 1] = str(b / "vf2.npy")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert _files(a) and (b / "model.im2vec").exists() and (b / "vf.npy").read_bytes() == before["vf.npy"]
