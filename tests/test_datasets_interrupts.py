"""Data set builds that are rerun, killed or run twice at once, on the fake OpenClipArt collection
(no Debian package needed): a user's split survives a rebuild of the same images, a killed build
marks its folder unfinished and the folder readers say so, a second build of one folder is refused at
once, and a folder without split.json names the command that makes one."""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from test_datasets import _FAKE_CLIPART, _fake_clipart

import gensim_im2vec
from gensim_im2vec import datasets as ds
from gensim_im2vec.corpora import FolderCorpus
from gensim_im2vec.datasets import build_openclipart, load_split, make_split


def _warnings(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


@pytest.fixture
def clipart(tmp_path):
    svg_root, png_root = _fake_clipart(tmp_path)
    return tmp_path / "oc", {"svg_root": svg_root, "png_root": png_root}


# ---------------------------------------------------------------- f3: the user's split
def test_a_users_split_survives_a_rebuild_of_the_same_images(clipart, caplog):
    out, roots = clipart
    build_openclipart(out, **roots)
    make_split(out, seed="mine", test_share=0.5)  # as `im2vec datasets split DIR --seed mine --test-share 0.5`
    mine = (out / "split.json").read_bytes()
    assert json.loads(mine)["config"]["args"] == {"test_share": 0.5, "seed": "mine"}
    m = build_openclipart(out, **roots)  # "reruns resume": the same images
    assert (out / "split.json").read_bytes() == mine  # it used to be replaced by the default split
    assert m["split"]["args"] == {"test_share": 0.5, "seed": "mine"}
    assert not _warnings(caplog, "split")

    caplog.clear()
    m = build_openclipart(out, limit=4, **roots)  # other images: the user's split no longer covers them
    s = load_split(out)
    assert len(s.train) + len(s.test) == 4 and s.config["args"] == {} and m["split"]["args"] == {}
    assert s == make_split(out, write=False)  # the default split of these images
    assert (out / "split.json.replaced").read_bytes() == mine  # the user's split is not lost
    (said,) = _warnings(caplog, "replaced your split.json")
    assert f"im2vec datasets split {out} --test-share 0.5 --seed mine" in said and "split.json.replaced" in said
    assert m["images"] == 4 and len(list(FolderCorpus(out))) == 4  # the set-aside split is no item


def test_old_split_files_without_the_record(clipart, caplog):
    """split.json files written before the record (``config["args"]``): a default one of older split rules
    is the build's and is made again; one with other arguments is the user's and is kept."""
    out, roots = clipart
    build_openclipart(out, **roots)
    default = load_split(out)
    old = json.loads((out / "split.json").read_text())
    old["config"].pop("args", None)
    old["config"]["version"] = 1  # the rules before a tag and its plural were held out together
    old["train"], old["test"] = old["test"], old["train"]  # what the older rules put where
    (out / "split.json").write_text(json.dumps(old))
    build_openclipart(out, **roots)
    assert load_split(out) == default  # made again under the current rules

    theirs = dataclasses.asdict(make_split(out, seed="theirs", write=False))
    theirs["config"].pop("args", None)
    theirs["config"]["version"] = 1
    (out / "split.json").write_text(json.dumps(theirs))
    before = (out / "split.json").read_bytes()
    build_openclipart(out, **roots)
    assert (out / "split.json").read_bytes() == before  # the user's: kept
    (said,) = _warnings(caplog, "kept your split.json")
    assert "older split rules (version 1, now 2)" in said and f"im2vec datasets split {out} --seed theirs" in said


def test_a_builds_split_from_code_whose_normaliser_had_fewer_settings_is_the_builds(clipart, caplog):
    """Builds before the normaliser's ``file_stems`` wrote its config without that key: the build's own
    default split then counted as the user's ("kept your split.json (made with normalizer=<its own>)")
    and stayed under the version-1 rules."""
    out, roots = clipart
    build_openclipart(out, **roots)
    default = load_split(out)
    old = json.loads((out / "split.json").read_text())
    old["config"].pop("args", None)
    old["config"]["version"] = 1
    old["config"]["normalizer"].pop("file_stems")
    old["train"], old["test"] = old["test"], old["train"]
    (out / "split.json").write_text(json.dumps(old))
    build_openclipart(out, **roots)
    assert load_split(out) == default and not _warnings(caplog, "kept your split.json")


def test_a_users_own_file_named_like_the_marker_is_no_unfinished_build(tmp_path, caplog):
    """Any ``.unfinished-build`` file made readers warn "the data set build into this folder did not
    finish ... Run `im2vec datasets build NAME u`", a command that cannot run."""
    from gensim_im2vec.datasets import UNFINISHED_BUILD, unfinished_build

    (tmp_path / "u").mkdir()
    for text in ("", "not json", json.dumps({"name": "mine"})):
        (tmp_path / "u" / UNFINISHED_BUILD).write_text(text)
        assert unfinished_build(tmp_path / "u") is None
    (tmp_path / "u" / UNFINISHED_BUILD).write_text(json.dumps({"name": "emoji", "pid": 1}))
    assert unfinished_build(tmp_path / "u")["name"] == "emoji"


def test_a_split_with_its_own_normalizer_names_the_python_call(clipart, caplog):
    from gensim_im2vec.text import Normalizer

    out, roots = clipart
    build_openclipart(out, **roots)
    make_split(out, min_tag_images=1, normalizer=Normalizer(multiword="split", track_vocab=False))
    build_openclipart(out, limit=3, **roots)
    (said,) = _warnings(caplog, "replaced your split.json")
    assert f"`im2vec datasets split {out}`" in said and "gensim_im2vec.datasets.make_split(" in said
    assert "min_tag_images=1" in said and "split.json.replaced'))['config']['normalizer'])" in said


# ---------------------------------------------------------------- f10: a killed build
KILL_AFTER_THREE = """
import os, signal, sys
from gensim_im2vec import datasets as ds
real, n = ds.parse_svg_metadata, [0]
def dies(svg):
    n[0] += 1
    if n[0] == 4:
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 mid-build: nothing runs on the way out
    return real(svg)
ds.parse_svg_metadata = dies
ds.build_openclipart(sys.argv[1], svg_root=sys.argv[2], png_root=sys.argv[3])
"""


def _killed_build(out: Path, roots: dict) -> None:
    package_root = str(Path(gensim_im2vec.__file__).resolve().parent.parent)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=package_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_THREE, str(out), str(roots["svg_root"]),
                           str(roots["png_root"])], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def test_a_killed_build_is_marked_unfinished_and_readers_say_so_once(clipart, caplog, monkeypatch):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main
    from gensim_im2vec.features import list_images

    out, roots = clipart
    _killed_build(out, roots)
    assert not (out / "dataset.json").exists() and len(list(out.rglob("*.png"))) == 3
    record = json.loads((out / ds.UNFINISHED_BUILD).read_text())
    assert record["name"] == "openclipart" and ds.unfinished_build(out) == record

    docs = [list(FolderCorpus(out)) for _ in range(2)]  # read twice (two epochs, two readers): said once
    assert len(docs[0]) == len(docs[1]) == 3
    (said,) = _warnings(caplog, "did not finish")
    assert str(out) in said and f"`im2vec datasets build openclipart {out}` to resume" in said

    monkeypatch.setattr(ds, "_WARNED_UNFINISHED", set())  # another process: `im2vec extract` lists the images
    caplog.clear()
    assert len(list_images(out)) == 3
    assert len(_warnings(caplog, "did not finish")) == 1

    monkeypatch.setattr(ds, "_WARNED_UNFINISHED", set())
    caplog.clear()
    res = CliRunner().invoke(main, ["normalize", str(out), "-o", str(out.parent / "docs.txt")])
    assert res.exit_code == 0, res.output
    assert len(_warnings(caplog, f"im2vec datasets build openclipart {out}")) == 1

    monkeypatch.setattr(ds, "_WARNED_UNFINISHED", set())
    caplog.clear()
    m = build_openclipart(out, **roots)  # the rerun resumes and clears the marker
    assert m["resumed"] == 3 and m["built"] == len(_FAKE_CLIPART) - 3
    assert not (out / ds.UNFINISHED_BUILD).exists() and ds.unfinished_build(out) is None
    assert len(list(FolderCorpus(out))) == len(_FAKE_CLIPART) and len(list_images(out)) == len(_FAKE_CLIPART)
    assert not _warnings(caplog, "did not finish")


def test_an_interrupted_rebuild_of_a_finished_folder_is_unfinished_too(clipart, caplog, monkeypatch):
    out, roots = clipart
    build_openclipart(out, limit=2, **roots)
    assert ds.unfinished_build(out) is None

    def interrupted(svg):
        raise KeyboardInterrupt

    monkeypatch.setattr(ds, "parse_svg_metadata", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_openclipart(out, **roots)  # the third drawing is new: the build stops there
    monkeypatch.undo()
    assert not (out / "dataset.json").exists() and ds.unfinished_build(out)["name"] == "openclipart"
    FolderCorpus(out)  # this process's build has ended: it is said here too
    assert len(_warnings(caplog, "did not finish")) == 1


# ---------------------------------------------------------------- f5c: two builds of one folder
def test_a_second_build_of_a_folder_is_refused_at_once(clipart, monkeypatch):
    from gensim_im2vec.store import StoreLockedError

    out, roots = clipart
    first = threading.current_thread()
    started, go_on = threading.Event(), threading.Event()
    real = ds.parse_svg_metadata

    def slow(svg):  # the first build waits mid-way, holding the folder
        if threading.current_thread() is not first and not go_on.is_set():
            started.set()
            go_on.wait(30)
        return real(svg)

    monkeypatch.setattr(ds, "parse_svg_metadata", slow)
    result = {}
    builder = threading.Thread(target=lambda: result.update(build_openclipart(out, **roots)))
    builder.start()
    try:
        assert started.wait(30)
        with pytest.raises(StoreLockedError) as err:
            build_openclipart(out, **roots)
    finally:
        go_on.set()
        builder.join(60)
    message = str(err.value)
    assert f"data set folder {str(out)!r} is being written by another writer (pid {os.getpid()})" in message
    assert "Wait for that process to finish" in message
    assert result["built"] == len(_FAKE_CLIPART) and result["images"] == len(_FAKE_CLIPART)
    again = build_openclipart(out, **roots)  # the lock went with the first build
    assert again["resumed"] == len(_FAKE_CLIPART)


# ---------------------------------------------------------------- a folder without split.json
def test_report_dataset_without_split_names_the_command(tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec import Im2Vec
    from gensim_im2vec.cli import main
    from gensim_im2vec.store import FeatureStore

    folder = tmp_path / "set"
    folder.mkdir()
    keys = []
    for i, colour in enumerate(["red", "blue", "green", "red"]):
        (folder / f"x{i}.png").write_bytes(b"png")
        (folder / f"x{i}.json").write_text(json.dumps({"tags": [colour, "thing"]}))
        keys.append(f"img:x{i}")
    rng = np.random.default_rng(0)
    store = FeatureStore.from_arrays(tmp_path / "store", keys, rng.random((4, 8), dtype=np.float32) + 0.1)
    docs = [[k, "thing", c] for k, c in zip(keys, ["red", "blue", "green", "red"])]
    Im2Vec(docs * 3, image_features=store, vector_size=4, min_count=1, epochs=1, workers=1,
           seed=1).save(str(tmp_path / "m.model"))
    res = CliRunner().invoke(main, ["report", str(tmp_path / "m.model"), "-o", str(tmp_path / "out"),
                                    "--dataset", str(folder)])
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert f"no split.json in {str(folder)!r}" in text and f"`im2vec datasets split {folder}`" in text
    assert not (tmp_path / "out").exists()


def test_a_split_the_user_wrote_by_hand_is_theirs(clipart, caplog):
    """A :class:`Split` saved by the user's own code (no make_split parameters in its config) is theirs too."""
    from gensim_im2vec.datasets import Split

    out, roots = clipart
    build_openclipart(out, **roots)
    keys = sorted(k for _, k in FolderCorpus(out).iter_images())
    Split(train=keys[:2], test=keys[2:], zero_shot_tags=[], groups={k: k for k in keys}).save(out / "split.json")
    hand = (out / "split.json").read_bytes()
    build_openclipart(out, **roots)
    assert (out / "split.json").read_bytes() == hand and not _warnings(caplog, "split")
    build_openclipart(out, limit=2, **roots)
    assert (out / "split.json.replaced").read_bytes() == hand and load_split(out).config["args"] == {}
    (said,) = _warnings(caplog, "replaced your split.json")
    assert "made without make_split's parameters" in said and f"`im2vec datasets split {out}`" in said
