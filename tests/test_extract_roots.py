"""Image keys are paths relative to the folder given to the extraction, so a feature store records
that folder (``metadata["image_root"]``) and checks a later run from another one before any work:
files whose keys the store holds for other files (``photos/red`` then ``photos/blue``, same file
names) are refused, as is a folder that holds or lies inside the store's (the same images under a
second key); a moved copy of the folder (the same files) and an unrelated collection go on, said at
INFO. Stores made before the folder was recorded work as they did."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from test_extract_resume import _args, _cli, _counts

from gensim_im2vec.features import FeatureExtractor, ImageRootError

pytest.importorskip("torchvision")

N = 4  # images per colour
RUN = {"shard_size": 4, "dtype": "float32"}  # as the CLI arguments of test_extract_resume._args


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor("mobilenet_v3_small", weights=None, device="cpu", num_workers=0, batch_size=2,
                            progress=False)


def _photos(root: Path) -> Path:
    """``root/photos/{red,blue}/circle_0N.png``: two folders of different pictures with the same file
    names; the blue files' modification times are surely not the red ones'."""
    from PIL import Image, ImageDraw

    for shift, (colour, rgb) in enumerate((("red", (220, 30, 30)), ("blue", (30, 60, 220)))):
        folder = root / "photos" / colour
        folder.mkdir(parents=True)
        for i in range(N):
            im = Image.new("RGB", (16, 16), (255, 255, 255))
            ImageDraw.Draw(im).ellipse((i, i, 12, 12), fill=rgb)
            im.save(folder / f"circle_{i:02d}.png")
            t = (folder / f"circle_{i:02d}.png").stat().st_mtime_ns + shift * 7 * 10**9
            os.utime(folder / f"circle_{i:02d}.png", ns=(t, t))
    return root / "photos"


def _snapshot(store: Path) -> dict[str, bytes]:
    """Every file of the store (the writer's empty lock file aside) and its bytes."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _metadata(store: Path) -> dict:
    return json.loads((store / "metadata.json").read_text("utf-8"))


def _infos(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and text in r.getMessage()]


def test_same_names_from_another_folder_are_refused_and_the_store_is_unchanged(fx, tmp_path):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / "red", store, **RUN)
    assert _metadata(store)["image_root"] == str((photos / "red").resolve())
    before = _snapshot(store)
    with pytest.raises(ImageRootError) as e:
        fx.extract(photos / "blue", store, **RUN)
    msg = str(e.value)
    assert str((photos / "red").resolve()) in msg and str((photos / "blue").resolve()) in msg, msg
    assert f"{N} of its files have keys the store already holds" in msg and "img:circle_00" in msg, msg
    assert "not the same images" in msg and "into a new store" in msg, msg
    assert e.value.keys[0] == "img:circle_00"
    assert _snapshot(store) == before  # nothing written: rows, keys, stamps, metadata
    opened = fx.extract(photos / "red", store, **RUN)  # the store's own folder still goes on
    assert (opened.extracted, opened.already, opened.changed) == (0, N, 0)


def test_the_command_line_says_it_in_one_line_and_exits_1(tmp_path):
    photos, store = _photos(tmp_path), tmp_path / "S"
    code, _ = _cli(_args(photos / "red", store))
    assert code == 0
    before = _snapshot(store)
    code, out = _cli(_args(photos / "blue", store))
    assert code == 1, out
    assert out.startswith("Error: ") and out.count("Error:") == 1 and "Traceback" not in out, out
    assert str((photos / "red").resolve()) in out and "not the same images" in out, out
    code, out = _cli(_args(photos, store))
    assert code == 1 and "which holds that folder" in out and "Traceback" not in out, out
    assert _snapshot(store) == before


def test_a_moved_copy_of_the_folder_goes_on_and_extracts_only_new_files(fx, tmp_path, caplog):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / "red", store, **RUN)
    moved = tmp_path / "mounted" / "red"
    shutil.copytree(photos / "red", moved, copy_function=shutil.copy2)  # same sizes and mtimes
    from PIL import Image

    Image.new("RGB", (16, 16), (10, 200, 10)).save(moved / "square.png")
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    report = fx.extract(moved, store, on_changed="raise", **RUN)
    assert (report.extracted, report.already, report.changed) == (1, N, 0)
    assert report.store.keys == [f"img:circle_{i:02d}" for i in range(N)] + ["img:square"]
    said = _infos(caplog, "moved or mounted elsewhere")
    assert len(said) == 1 and str(moved.resolve()) in said[0] and str((photos / "red").resolve()) in said[0], said
    assert _metadata(store)["image_root"] == str((photos / "red").resolve())  # the folder it was made from


@pytest.mark.parametrize("first, then, where", [("red", ".", "holds that folder"),
                                                (".", "red", "lies inside that folder")])
def test_a_folder_holding_or_inside_the_stores_is_refused(fx, tmp_path, first, then, where):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / first, store, **RUN)
    before = _snapshot(store)
    with pytest.raises(ImageRootError) as e:
        fx.extract(photos / then, store, **RUN)
    msg = str(e.value)
    assert where in msg and "give the same folder as before" in msg, msg
    assert str((photos / first).resolve()) in msg and str((photos / then).resolve()) in msg, msg
    assert "'img:red/circle_00' is the store's 'img:circle_00'" in msg or \
        "'img:circle_00' is the store's 'img:red/circle_00'" in msg, msg
    assert _snapshot(store) == before


def test_an_unrelated_folder_is_added_with_a_note(fx, tmp_path, caplog):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / "red", store, **RUN)
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy2(photos / "blue" / "circle_00.png", other / "blue_circle.png")
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    report = fx.extract(other, store, **RUN)
    assert (report.extracted, report.already) == (1, 0)
    said = _infos(caplog, "an unrelated folder")
    assert len(said) == 1 and str(other.resolve()) in said[0], said


def test_a_store_without_a_recorded_folder_behaves_as_before(fx, tmp_path):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / "red", store, **RUN)
    meta = _metadata(store)
    assert meta.pop("image_root") == str((photos / "red").resolve())
    (store / "metadata.json").write_text(json.dumps(meta), "utf-8")  # as a store made before roots were recorded
    report = fx.extract(photos / "blue", store, **RUN)  # as before: the old rows kept, the files named
    assert (report.extracted, report.already, report.changed) == (0, N, N)
    report = fx.extract(photos, store, **RUN)
    assert (report.extracted, report.already) == (2 * N, 0)  # red/circle_00 beside circle_00, as before
    assert "image_root" not in _metadata(store)  # not guessed afterwards either


def test_the_cli_summary_counts_a_moved_folders_new_files(tmp_path):
    photos, store = _photos(tmp_path), tmp_path / "S"
    assert _cli(_args(photos / "red", store))[0] == 0
    moved = tmp_path / "copy"
    shutil.copytree(photos / "red", moved, copy_function=shutil.copy2)
    shutil.copy2(photos / "blue" / "circle_00.png", moved / "blue_circle.png")
    code, out = _cli(_args(moved, store))
    assert code == 0, out
    assert _counts(out) == (1, N)
    assert _metadata(store)["image_root"] == str((photos / "red").resolve())


def test_extract_ray_records_the_folder_and_refuses_the_same_names_from_another(tmp_path, monkeypatch):
    """The Ray path: its parts run in this process (:func:`conftest.parts_here`), no Ray is started."""
    ray = pytest.importorskip("ray", reason="extract_ray needs Ray Data: pip install 'ray[data]'")
    pytest.importorskip("ray.data", reason="extract_ray needs Ray Data: pip install 'ray[data]'")
    from conftest import parts_here

    from gensim_im2vec import distributed

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(distributed, "_run_parts", parts_here(lambda item, row: None))
    options = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2, "dtype": "float32", "part_size": 2}
    photos, store = _photos(tmp_path), tmp_path / "S"
    first = distributed.extract_ray(photos / "red", store, **options)
    assert first.extracted == N and _metadata(store)["image_root"] == str((photos / "red").resolve())
    before = _snapshot(store)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray was started"))
    with pytest.raises(ImageRootError, match="not the same images"):
        distributed.extract_ray(photos / "blue", store, **options)
    with pytest.raises(ImageRootError, match="which holds that folder"):
        distributed.extract_ray(photos, store, **options)
    assert _snapshot(store) == before and not (tmp_path / "S.ray-parts").exists()
    moved = tmp_path / "copy"
    shutil.copytree(photos / "red", moved, copy_function=shutil.copy2)
    report = distributed.extract_ray(moved, store, **options, on_changed="raise")
    assert (report.extracted, report.already, report.changed) == (0, N, 0)
