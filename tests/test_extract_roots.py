"""Image keys are paths relative to the folder given to the extraction, so a feature store records
that folder (``metadata["image_root"]``) and says what a later run from another one is, as the package
treats changed files: stored images whose files look changed are warned about (``on_changed="raise"``
stops, "ignore" compares nothing) with what that may mean there: other pictures with the same file
names (``photos/red`` then ``photos/blue``: extract into a new store), or a copy that did not keep
modification times (nothing to do). A folder none of whose keys the store holds that holds or lies
inside the store's is warned about (its images may get a second key); a moved folder (the same
files, also moved into or above its old place) and an unrelated collection go on, said at INFO.
Stores made before the folder was recorded work as they did."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import ray_in_process
from test_extract_resume import _args, _cli, _counts

from gensim_im2vec import features
from gensim_im2vec import store as store_module
from gensim_im2vec.features import ChangedFilesError, FeatureExtractor, list_images

pytest.importorskip("torchvision")

N = 4  # images per colour
RUN = {"shard_size": 4, "dtype": "float32"}  # as the CLI arguments of test_extract_resume._args


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor("mobilenet_v3_small", weights=None, device="cpu", num_workers=0, batch_size=2,
                            progress=False)


def _draw(path: Path, rgb, i: int = 0) -> None:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (16, 16), (255, 255, 255))
    ImageDraw.Draw(im).ellipse((i, i, 12, 12), fill=rgb)
    im.save(path)


def _shift(path: Path, seconds: int) -> None:
    t = path.stat().st_mtime_ns + seconds * 10**9
    os.utime(path, ns=(t, t))


def _photos(root: Path) -> Path:
    """``root/photos/{red,blue}/circle_0N.png``: two folders of different pictures with the same file
    names; the blue files' modification times are surely not the red ones'."""
    for shift, (colour, rgb) in enumerate((("red", (220, 30, 30)), ("blue", (30, 60, 220)))):
        folder = root / "photos" / colour
        folder.mkdir(parents=True)
        for i in range(N):
            _draw(folder / f"circle_{i:02d}.png", rgb, i)
            _shift(folder / f"circle_{i:02d}.png", shift * 7)
    return root / "photos"


def _snapshot(store: Path) -> dict[str, bytes]:
    """Every file of the store (the writer's empty lock file aside) and its bytes."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _metadata(store: Path) -> dict:
    return json.loads((store / "metadata.json").read_text("utf-8"))


def _said(caplog, level: int, text: str = "") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


def _names_both(msg: str, recorded: Path, root: Path) -> None:
    """The diagnosis of files that look changed in a run from another folder than the store's."""
    assert f"keys are relative to the folder {str(recorded.resolve())!r}" in msg, msg
    assert f"this run reads {str(root.resolve())!r}" in msg, msg
    assert "other pictures than the store extracted (another folder whose files have the same names)" in msg, msg
    assert f"extract {str(root.resolve())!r} into a new store" in msg, msg
    assert "only copied without its modification times, nothing needs doing" in msg, msg


def _count_stats(monkeypatch) -> list[str]:
    """Every file_stamp (one os.stat) the extraction makes, recorded."""
    calls: list[str] = []
    real = store_module.file_stamp

    def counted(path):
        calls.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(features, "file_stamp", counted)
    monkeypatch.setattr(store_module, "file_stamp", counted)
    return calls


def test_same_names_from_another_folder_warn_naming_both_folders_and_keep_the_old_rows(fx, tmp_path, caplog):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / "red", store, **RUN)
    rows = features.FeatureStore.open(store).vectors.copy()
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    report = fx.extract(photos / "blue", store, **RUN)  # warned, not refused
    assert (report.extracted, report.already, report.changed) == (0, N, N)
    said = _said(caplog, logging.WARNING)
    assert len(said) == 1 and f"{N} image(s) already in feature store" in said[0] and "img:circle_00" in said[0], said
    _names_both(said[0], photos / "red", photos / "blue")
    assert (features.FeatureStore.open(store).vectors == rows).all()  # the old rows kept
    assert _metadata(store)["image_root"] == str((photos / "red").resolve())


def test_with_on_changed_raise_it_stops_with_a_changed_files_error_saying_why(fx, tmp_path):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / "red", store, **RUN)
    before = _snapshot(store)
    with pytest.raises(ChangedFilesError) as e:
        fx.extract(photos / "blue", store, on_changed="raise", **RUN)
    msg = str(e.value)
    _names_both(msg, photos / "red", photos / "blue")
    assert isinstance(e.value, features.ImageRootError)
    assert "Nothing was extracted" in msg and "on_changed='warn'" in msg, msg
    assert e.value.keys[0] == "img:circle_00" and e.value.changed[0][0] == "img:circle_00"
    assert (e.value.recorded, e.value.root) == (str((photos / "red").resolve()), str((photos / "blue").resolve()))
    assert _snapshot(store) == before  # nothing written: rows, keys, stamps, metadata
    opened = fx.extract(photos / "red", store, **RUN)  # the store's own folder still goes on
    assert (opened.extracted, opened.already, opened.changed) == (0, N, 0)


def test_the_command_line_warns_and_with_on_changed_raise_says_it_in_one_line_and_exits_1(tmp_path):
    photos, store = _photos(tmp_path), tmp_path / "S"
    code, _ = _cli(_args(photos / "red", store))
    assert code == 0
    before = _snapshot(store)
    code, out = _cli(_args(photos / "blue", store, "--on-changed", "raise"))
    assert code == 1, out
    assert out.startswith("Error: ") and out.count("Error:") == 1 and "Traceback" not in out, out
    assert str((photos / "red").resolve()) in out and str((photos / "blue").resolve()) in out, out
    assert "another folder whose files have the same names" in out and "--on-changed warn" in out, out
    assert _snapshot(store) == before
    code, out = _cli(_args(photos / "blue", store))
    assert code == 0 and "changed since extracted, old rows kept" in out, out


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
    said = _said(caplog, logging.INFO, "moved or mounted elsewhere")
    assert len(said) == 1 and str(moved.resolve()) in said[0] and str((photos / "red").resolve()) in said[0], said
    assert not _said(caplog, logging.WARNING)
    assert _metadata(store)["image_root"] == str((photos / "red").resolve())  # the folder it was made from


@pytest.mark.parametrize("way", ["into a subfolder of its old place", "up into its parent"])
def test_a_folder_moved_into_or_above_its_old_place_goes_on_without_a_warning(fx, tmp_path, caplog, way):
    """Review item 1: the same files, keyed as before, in a folder inside (or holding) the old one."""
    if way == "into a subfolder of its old place":  # photos/ becomes photos/2023/, a new photos/2024/ beside it
        old = _photos(tmp_path) / "red"
        fx.extract(old, tmp_path / "S", **RUN)
        old.rename(tmp_path / "moving")
        old.mkdir()
        (tmp_path / "moving").rename(old / "2023")
        (old / "2024").mkdir()
        _draw(old / "2024" / "square.png", (10, 200, 10))
        new = old / "2023"
    else:  # a/b/ flattened into a/
        old = tmp_path / "a" / "b"
        shutil.copytree(_photos(tmp_path) / "red", old, copy_function=shutil.copy2)
        fx.extract(old, tmp_path / "S", **RUN)
        for p in sorted(old.iterdir()):
            p.rename(old.parent / p.name)
        old.rmdir()
        new = old.parent
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    report = fx.extract(new, tmp_path / "S", on_changed="raise", **RUN)
    assert (report.extracted, report.already, report.changed) == (0, N, 0)
    assert not _said(caplog, logging.WARNING)  # no word of second keys (none are made)
    said = _said(caplog, logging.INFO, "moved or mounted elsewhere")
    assert len(said) == 1 and str(new.resolve()) in said[0], said


def test_a_second_folders_edited_file_warns_like_the_first_folders(fx, tmp_path, caplog):
    """Review item 2: folder B added beside A (unrelated); an edit in B is a warning, as in A, and B's
    new files are added."""
    photos, store = _photos(tmp_path), tmp_path / "S"
    a, b = photos / "red", tmp_path / "B"
    b.mkdir()
    for i in range(2):
        _draw(b / f"square_{i:02d}.png", (10, 200, 10), i)
    fx.extract(a, store, **RUN)
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    assert fx.extract(b, store, **RUN).extracted == 2
    assert len(_said(caplog, logging.INFO, "an unrelated folder")) == 1
    for folder, name in ((a, "circle_00.png"), (b, "square_00.png")):
        _draw(folder / name, (0, 0, 0), 3)  # edited
        _shift(folder / name, 30)
    _draw(b / "square_09.png", (200, 200, 10))  # new in B
    for folder, key, new in ((b, "img:square_00", 1), (a, "img:circle_00", 0)):
        caplog.clear()
        report = fx.extract(folder, store, **RUN)
        assert (report.extracted, report.changed, report.changed_keys) == (new, 1, [key])
        said = _said(caplog, logging.WARNING)
        assert len(said) == 1 and "1 image(s) already in feature store" in said[0] and key in said[0], said
        if folder == b:
            _names_both(said[0], a, b)
    with pytest.raises(ChangedFilesError, match="img:square_00"):
        fx.extract(b, store, on_changed="raise", **RUN)


def test_a_copy_without_modification_times_warns_and_with_on_changed_ignore_says_nothing_and_stats_nothing(
        fx, tmp_path, caplog, monkeypatch):
    """Review item 3: ``cp -r`` (or rsync without -t) gives the files new modification times."""
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / "red", store, **RUN)
    copy = tmp_path / "copy"
    shutil.copytree(photos / "red", copy, copy_function=shutil.copyfile)
    for p in copy.iterdir():
        _shift(p, 60)  # surely other modification times
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    report = fx.extract(copy, store, **RUN)
    assert (report.extracted, report.already, report.changed) == (0, N, N)
    said = _said(caplog, logging.WARNING)
    assert len(said) == 1, said
    _names_both(said[0], photos / "red", copy)
    caplog.clear()
    calls = _count_stats(monkeypatch)
    report = fx.extract(copy, store, on_changed="ignore", **RUN)
    assert (report.extracted, report.already, report.changed) == (0, N, 0)
    assert calls == [] and not _said(caplog, logging.WARNING), (calls, _said(caplog, logging.WARNING))


@pytest.mark.parametrize("first, then, where", [("red", ".", "holds that folder"),
                                                (".", "red", "lies inside that folder")])
def test_a_folder_holding_or_inside_the_stores_is_warned_about_with_a_true_example(fx, tmp_path, caplog,
                                                                                   first, then, where):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / first, store, **RUN)
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    report = fx.extract(photos / then, store, **RUN)  # goes on
    assert report.extracted == (2 * N if then == "." else N) and report.already == 0
    said = _said(caplog, logging.WARNING)
    assert len(said) == 1 and where in said[0] and "give the same folder as before" in said[0], said
    assert "into a new store" in said[0], said
    assert str((photos / first).resolve()) in said[0] and str((photos / then).resolve()) in said[0], said
    m = re.search(r"this run's '([^']+)' is the store's '([^']+)'", said[0])
    assert m, said
    ours = dict(list_images(photos / then))[m.group(1)]  # the file this run keys so
    theirs = dict(list_images(photos / first))[m.group(2)]  # the file the store's folder keys so
    assert os.path.samefile(ours, theirs), (ours, theirs)


def test_an_unrelated_folder_is_added_with_a_note(fx, tmp_path, caplog):
    photos, store = _photos(tmp_path), tmp_path / "S"
    fx.extract(photos / "red", store, **RUN)
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy2(photos / "blue" / "circle_00.png", other / "blue_circle.png")
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    report = fx.extract(other, store, **RUN)
    assert (report.extracted, report.already) == (1, 0)
    said = _said(caplog, logging.INFO, "an unrelated folder")
    assert len(said) == 1 and str(other.resolve()) in said[0], said
    assert not _said(caplog, logging.WARNING)


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


RAY_OPTIONS = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2, "dtype": "float32", "part_size": 2}


def test_extract_ray_records_the_folder_and_says_what_another_one_is(tmp_path, monkeypatch, caplog):
    """The Ray path: its parts run in this process (:func:`conftest.parts_here`), no Ray is started."""
    ray, distributed = ray_in_process(monkeypatch)
    options = RAY_OPTIONS
    photos, store = _photos(tmp_path), tmp_path / "S"
    first = distributed.extract_ray(photos / "red", store, **options)
    assert first.extracted == N and _metadata(store)["image_root"] == str((photos / "red").resolve())
    before = _snapshot(store)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray was started"))
    with pytest.raises(ChangedFilesError) as e:
        distributed.extract_ray(photos / "blue", store, on_changed="raise", **options)
    assert isinstance(e.value, features.ImageRootError)
    _names_both(str(e.value), photos / "red", photos / "blue")
    assert _snapshot(store) == before and not (tmp_path / "S.ray-parts").exists()
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    report = distributed.extract_ray(photos / "blue", store, **options)  # warned, the old rows kept
    assert (report.extracted, report.already, report.changed) == (0, N, N)
    said = _said(caplog, logging.WARNING)
    assert len(said) == 1, said
    _names_both(said[0], photos / "red", photos / "blue")
    caplog.clear()
    calls = _count_stats(monkeypatch)
    report = distributed.extract_ray(photos / "blue", store, on_changed="ignore", **options)
    assert (report.extracted, report.already, report.changed) == (0, N, 0)
    assert calls == [] and not _said(caplog, logging.WARNING)
    monkeypatch.undo()  # the stat counter and the Ray stand-ins; set again below
    ray_in_process(monkeypatch)
    moved = tmp_path / "copy"
    shutil.copytree(photos / "red", moved, copy_function=shutil.copy2)
    report = distributed.extract_ray(moved, store, **options, on_changed="raise")
    assert (report.extracted, report.already, report.changed) == (0, N, 0)
    caplog.clear()
    report = distributed.extract_ray(photos, store, **options)  # holds the store's folder: a warning, goes on
    assert report.extracted == 2 * N
    said = _said(caplog, logging.WARNING)
    assert len(said) == 1 and "which holds that folder" in said[0], said
    assert "this run's 'img:red/circle_00' is the store's 'img:circle_00'" in said[0], said


def test_a_run_that_makes_the_keys_otherwise_is_refused(tmp_path):
    """`extract --keys stem` then the same folder without --keys: every image was stored a second
    time under its path key (the store doubled, exit 0); the store records how its keys were made."""
    photos, store = _photos(tmp_path), tmp_path / "S"
    code, out = _cli(_args(photos / "red", store, "--keys", "stem"))
    assert code == 0, out
    assert _metadata(store)["key_rule"] == "stem"
    before = _snapshot(store)
    code, out = _cli(_args(photos / "red", store))
    assert code == 1 and "--keys stem" in out and "second time" in out and "Traceback" not in out, out
    assert _snapshot(store) == before
    code, out = _cli(_args(photos / "red", store, "--keys", "stem"))  # as it was made: goes on
    assert code == 0, out
    other = tmp_path / "P"
    code, out = _cli(_args(photos / "red", other))
    assert code == 0 and _metadata(other)["key_rule"] == "path"
    code, out = _cli(_args(photos / "red", other, "--keys", "stem"))
    assert code == 1 and "--keys path" in out, out


def test_extract_ray_records_how_the_keys_were_made_and_refuses_another_way(tmp_path, monkeypatch):
    """(a review: extract_ray neither recorded nor checked key_rule; extract --keys stem then
    extract_ray of the folder stored every image a second time)"""
    ray, distributed = ray_in_process(monkeypatch)
    options = RAY_OPTIONS
    photos = _photos(tmp_path)
    store = tmp_path / "S"
    distributed.extract_ray(photos / "red", store, **options)
    assert _metadata(store)["key_rule"] == "path"
    before = _snapshot(store)
    stems = [(f"img:{Path(p).stem}", p) for _, p in list_images(photos / "red")]
    with pytest.raises(ValueError, match="--keys path"):
        distributed.extract_ray(stems, store, key_rule="stem", **options)
    assert _snapshot(store) == before
    other = tmp_path / "T"
    code, out = _cli(_args(photos / "red", other, "--keys", "stem"))
    assert code == 0, out
    with pytest.raises(ValueError, match="--keys stem"):
        distributed.extract_ray(photos / "red", other, **options)
