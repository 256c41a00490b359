"""A store built by extract_ray finds image files changed since their extraction, as one built by
``FeatureExtractor.extract`` does: :func:`merge_stores` carries each part's stamps (size, mtime_ns)
into the target with its rows, and extract_ray's driver compares the target's stored images given
again with their files before any part runs (``on_changed``: warn, raise or ignore), a chunk of the
list at a time. Stores without stamps (old ones, rows from arrays) work as before.

No test here starts Ray: the parts run in this process on the actors' own class
(:func:`conftest.parts_here`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="extract_ray needs Ray Data: pip install 'ray[data]'")
pytest.importorskip("ray.data", reason="extract_ray needs Ray Data: pip install 'ray[data]'")

from conftest import DatasetHere, parts_here  # noqa: E402
from PIL import Image  # noqa: E402

from gensim_im2vec import distributed, features  # noqa: E402
from gensim_im2vec.distributed import extract_ray, merge_stores  # noqa: E402
from gensim_im2vec.features import ChangedFilesError, FeatureExtractor, list_images  # noqa: E402
from gensim_im2vec.store import IDENTITY_FIELDS, NO_STAMP, STAMPS_FILE, FeatureStore, file_stamp  # noqa: E402

FX = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2, "dtype": "float32"}
N = 8


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor("mobilenet_v3_small", weights=None, device="cpu", num_workers=0, batch_size=2,
                            progress=False)


def _photos(root: Path, n: int = N) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (30 + i, 34, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def _replace(path: Path, colour=(250, 10, 200)) -> None:
    """Another picture under the same file name, with a modification time that surely differs."""
    t = path.stat().st_mtime_ns + 7 * 10**9
    Image.new("RGB", (16, 16), colour).save(path)
    os.utime(path, ns=(t, t))


def _stamps_now(store: FeatureStore, photos: Path) -> np.ndarray:
    """The stamps of the files behind the store's rows now (keys ``img:NAME`` of ``photos/NAME.png``)."""
    return np.array([file_stamp(photos / f"{k[len('img:'):]}.png") for k in store.keys], dtype=np.int64)


def _strip_stamps(store: Path) -> None:
    """Make `store` one written before stamps existed: no stamps.npy, no stamps in its metadata."""
    (store / STAMPS_FILE).unlink()
    meta = json.loads((store / "metadata.json").read_text("utf-8"))
    del meta["stamps_from"], meta["stamps_count"]
    (store / "metadata.json").write_text(json.dumps(meta), "utf-8")


def _arrays_like(store: FeatureStore, path: Path, keys: list[str]) -> FeatureStore:
    """A store of `keys` made from arrays (no files, no stamps), with `store`'s identity: mergeable."""
    meta = {f: store.metadata.get(f) for f in IDENTITY_FIELDS if f not in ("dim", "dtype")}
    return FeatureStore.from_arrays(path, keys, np.ones((len(keys), store.dim), dtype=np.float32), metadata=meta,
                                    dtype=store.metadata["dtype"])


def _changed_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "changed on disk" in r.getMessage()]


@pytest.fixture
def fake_ray(monkeypatch):
    """Ray "started" with 2 CPUs; the parts run in this process. Returns the actors' extract
    options of each run, and the list of parts run."""
    runs = []
    real = parts_here(lambda item, row: runs[-1]["parts"].append(item["part"]))

    def run(todo, plan, fx_kwargs, extract_kwargs, *rest):
        runs.append({"extract_kwargs": dict(extract_kwargs), "parts": []})
        return real(todo, plan, fx_kwargs, extract_kwargs, *rest)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(distributed, "_run_parts", run)
    monkeypatch.setattr(distributed, "_SCAN_CHUNK", 3)  # the driver's passes over the list, in several chunks
    return runs


# ----------------------------------------------------------------------------- the merge


def test_merge_carries_each_sources_stamps_row_for_row(fx, tmp_path, monkeypatch):
    """Rows keep their files' stamps through a merge, also those of a source whose first rows were
    dropped as already merged, read a chunk at a time; a source made from arrays gives NO_STAMP rows."""
    monkeypatch.setattr(distributed, "_COPY_ROWS", 2)
    photos = _photos(tmp_path / "photos")
    pairs = list_images(photos)
    a = fx.extract(pairs[:4], tmp_path / "a", dtype="float32").store
    arrays = _arrays_like(a, tmp_path / "arrays", ["img:x1", "img:x2", "img:x3"])
    b = fx.extract(pairs[2:], tmp_path / "b", dtype="float32").store  # img:02, img:03 again: a's rows win

    out = merge_stores(tmp_path / "merged", [a, arrays, b])
    assert out.keys == [k for k, _ in pairs[:4]] + arrays.keys + [k for k, _ in pairs[4:]]
    want = np.concatenate([a.file_stamps(), np.full((3, 2), NO_STAMP), b.file_stamps()[2:]])
    np.testing.assert_array_equal(out.file_stamps(), want)
    np.testing.assert_array_equal(out.file_stamps()[[0, 1, 2, 3, 7, 8, 9, 10]], _stamps_now(out, photos)[
        [0, 1, 2, 3, 7, 8, 9, 10]])
    # a source without stamps alone: the merged store has none, as before
    alone = merge_stores(tmp_path / "alone", [arrays])
    assert not (tmp_path / "alone" / STAMPS_FILE).exists() and (alone.file_stamps() == NO_STAMP).all()


def test_file_stamps_reads_the_rows_asked_for(fx, tmp_path):
    """``file_stamps(rows)``: what a chunked reader (the merge) needs, the rows in the order asked."""
    photos = _photos(tmp_path / "photos", 4)
    first = fx.extract(photos, tmp_path / "s", dtype="float32").store
    s = merge_stores(tmp_path / "s", [_arrays_like(first, tmp_path / "arr", ["img:x", "img:y"])])
    full = s.file_stamps()
    assert full.shape == (6, 2) and (full[4:] == NO_STAMP).all() and (full[:4] != NO_STAMP).all()
    for rows in ([5, 0, 3], np.array([-1, 1]), slice(1, 5, 2), slice(None), []):
        np.testing.assert_array_equal(s.file_stamps(rows), full[rows])
    with pytest.raises(IndexError, match=r"row 6 is outside feature store .* of 6 rows"):
        s.file_stamps([0, 6])


# ----------------------------------------------------------------------------- extract_ray reruns


def test_extract_ray_stamps_its_rows_and_a_rerun_names_a_changed_file(tmp_path, fake_ray, caplog):
    photos = _photos(tmp_path / "photos")
    store = tmp_path / "feats"
    first = extract_ray(photos, store, **FX, part_size=4)
    np.testing.assert_array_equal(first.store.file_stamps(), _stamps_now(first.store, photos))
    assert first.changed == 0 and first.changed_keys == []

    _replace(photos / "03.png")
    Image.new("RGB", (20, 20), (1, 2, 3)).save(photos / "new.png")
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    rep = extract_ray(iter(list_images(photos)), store, **FX, part_size=4)  # an iterator: read from its spool
    assert (rep.extracted, rep.already, rep.changed, rep.changed_keys) == (1, N, 1, ["img:03"])
    said = _changed_warnings(caplog)
    assert len(said) == 1 and "img:03" in said[0] and str(photos / "03.png") in said[0], said
    assert "extract into a new store" in said[0]
    assert "1 of them changed on disk" in rep.summary()
    assert fake_ray[-1]["extract_kwargs"]["on_changed"] == "warn"  # for the parts an actor continues
    s = rep.store
    assert s.keys[-1] == "img:new" and tuple(s.file_stamps()[-1]) == file_stamp(photos / "new.png")
    old = first.store.file_stamps()
    np.testing.assert_array_equal(s.file_stamps()[:N], old)  # the old row keeps its old stamp: found again
    assert extract_ray(photos, store, **FX, part_size=4).changed_keys == ["img:03"]


def test_on_changed_raise_stops_before_any_work_and_leaves_the_store(tmp_path, fake_ray, monkeypatch):
    photos = _photos(tmp_path / "photos")
    store = tmp_path / "feats"
    extract_ray(photos, store, **FX, part_size=4)
    before = {f.name: f.read_bytes() for f in store.iterdir() if f.is_file()}
    _replace(photos / "05.png")
    Image.new("RGB", (20, 20), (1, 2, 3)).save(photos / "new.png")  # work that is not done
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray was started"))
    with pytest.raises(ChangedFilesError) as e:
        extract_ray(photos, store, **FX, part_size=4, on_changed="raise")
    msg = str(e.value)
    assert "on_changed='raise'" in msg and "img:05" in msg and "1 image(s)" in msg and "new store" in msg
    assert {f.name: f.read_bytes() for f in store.iterdir() if f.is_file()} == before
    assert len(fake_ray) == 1 and not (tmp_path / "feats.ray-parts").exists()
    with pytest.raises(ValueError, match="on_changed: expected 'warn', 'raise' or 'ignore', got 'refresh'"):
        extract_ray(photos, store, **FX, on_changed="refresh")


def test_on_changed_ignore_stats_no_stored_file(tmp_path, fake_ray, monkeypatch):
    photos = _photos(tmp_path / "photos")
    store = tmp_path / "feats"
    extract_ray(photos, store, **FX, part_size=4)
    _replace(photos / "03.png")
    stats = []
    monkeypatch.setattr(features, "file_stamp", lambda p: stats.append(p) or (1, 1))
    rep = extract_ray(photos, store, **FX, part_size=4, on_changed="ignore")
    assert (rep.changed, rep.extracted, rep.already, stats) == (0, 0, N, [])
    monkeypatch.undo()  # the default still finds it
    monkeypatch.setattr(distributed, "_run_parts", lambda *a: pytest.fail("nothing to run"))
    assert extract_ray(photos, store, **FX, part_size=4).changed_keys == ["img:03"]


def test_an_old_target_without_stamps_is_extended_as_before(fx, tmp_path, fake_ray, caplog):
    """A target written before stamps existed: nothing to compare (said at INFO), the rerun adds the new
    images, stamped from its first new row on; those are checked by the next rerun."""
    photos = _photos(tmp_path / "photos")
    store = tmp_path / "feats"
    fx.extract(photos, store, dtype="float32")
    _strip_stamps(store)
    _replace(photos / "02.png")  # cannot be seen: the store has no stamp of it
    Image.new("RGB", (20, 20), (1, 2, 3)).save(photos / "new.png")
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    rep = extract_ray(photos, store, **FX, part_size=4)
    assert (rep.extracted, rep.already, rep.changed, len(rep.store)) == (1, N, 0, N + 1)
    assert not _changed_warnings(caplog)
    said = [r for r in caplog.records if "cannot be checked" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO and f"{N} of the {N} images" in said[0].getMessage()
    stamps = rep.store.file_stamps()
    assert rep.store.metadata["stamps_from"] == N and (stamps[:N] == NO_STAMP).all()
    assert tuple(stamps[N]) == file_stamp(photos / "new.png")
    _replace(photos / "new.png")
    assert extract_ray(photos, store, **FX, part_size=4).changed_keys == ["img:new"]


def test_the_extract_ray_command_takes_on_changed():
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    helped = CliRunner().invoke(main, ["extract-ray", "--help"])
    assert helped.exit_code == 0 and "--on-changed [warn|raise|ignore]" in helped.output, helped.output
    bad = CliRunner().invoke(main, ["extract-ray", ".", "-o", "never", "--on-changed", "refresh"])
    assert bad.exit_code == 2 and "'refresh' is not one of" in bad.output, bad.output


# ----------------------------------------------------------------------------- a part an interrupted run left


@pytest.fixture
def ray_data_here(monkeypatch):
    """Ray "started" with 2 CPUs; the real ``_run_parts`` runs its parts in this process
    (:class:`conftest.DatasetHere`). Returns the constructor arguments of each run's actor."""
    import ray.data

    made: list[dict] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(ray.data, "from_items", lambda items, **k: DatasetHere(items, made))
    ctx = ray.data.DataContext.get_current()
    monkeypatch.setattr(ctx, "enable_progress_bars", ctx.enable_progress_bars)  # _run_parts sets it
    return made


def _interrupted(photos: Path, store: Path, monkeypatch) -> Path:
    """An extract_ray into `store` interrupted after part 0 (img:00 to img:03) was extracted but before
    its actor wrote the part's marker (killed in between): the rerun continues that part store, whose
    images are given to its actor again. Returns the part store."""
    run_parts = distributed._run_parts
    monkeypatch.setattr(distributed, "_run_parts", parts_here(lambda item, row: None, stop_after=1))
    with pytest.raises(KeyboardInterrupt):
        extract_ray(photos, store, **FX, part_size=4)
    monkeypatch.setattr(distributed, "_run_parts", run_parts)
    parts = store.with_name(store.name + distributed.PARTS_SUFFIX)
    (parts / "part-000000.done.json").unlink()
    assert not store.exists() and FeatureStore.open(parts / "part-000000").keys == [f"img:{i:02d}" for i in range(4)]
    return parts / "part-000000"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def test_on_changed_raise_stops_on_a_changed_file_of_an_unfinished_part(tmp_path, ray_data_here, monkeypatch):
    """The actor that continues an unfinished part compares its stored images with their files as the
    driver was asked: "raise" fails that part (kept as it was, the others run) and the call, with
    ChangedFilesError naming the file, the part and the fix (deleting the part), which works."""
    photos = _photos(tmp_path / "photos")
    store = tmp_path / "feats"
    part = _interrupted(photos, store, monkeypatch)
    before = _files(part)
    _replace(photos / "01.png")
    with pytest.raises(ChangedFilesError) as e:
        extract_ray(photos, store, **FX, part_size=4, on_changed="raise")
    msg = str(e.value)
    assert ray_data_here[-1]["extract_kwargs"]["on_changed"] == "raise"
    assert msg.startswith("1 of 2 part(s) failed; the others are finished and kept in"), msg
    assert "part(s) 0: ChangedFilesError on node " in msg and "on_changed='raise'" in msg
    assert "img:01" in msg and str(photos / "01.png") in msg and "Traceback" not in msg
    assert f"delete its folder {str(part)!r}" in msg and "on_changed='warn'" in msg
    assert _files(part) == before and not store.exists()
    assert (part.parent / "part-000001.done.json").exists()
    shutil.rmtree(part)  # the fix it names: that part is extracted again, from the new file
    rep = extract_ray(photos, store, **FX, part_size=4, on_changed="raise")
    assert (rep.extracted, rep.already, len(rep.store)) == (4, 4, N) and not part.parent.exists()
    assert tuple(rep.store.file_stamps()[rep.store.key_to_index["img:01"]]) == file_stamp(photos / "01.png")


def test_on_changed_ignore_compares_no_file_of_an_unfinished_part(tmp_path, ray_data_here, monkeypatch, caplog):
    photos = _photos(tmp_path / "photos")
    store = tmp_path / "feats"
    _interrupted(photos, store, monkeypatch)
    _replace(photos / "01.png")
    stats, stamp = [], features.file_stamp
    monkeypatch.setattr(features, "file_stamp", lambda p: stats.append(Path(p).name) or stamp(p))
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    rep = extract_ray(photos, store, **FX, part_size=4, on_changed="ignore")
    assert (rep.extracted, rep.already, rep.changed, len(rep.store)) == (4, 4, 0, N)
    assert sorted(stats) == [f"{i:02d}.png" for i in range(4, N)]  # only the new images' stamps are taken
    assert not _changed_warnings(caplog) and ray_data_here[-1]["extract_kwargs"]["on_changed"] == "ignore"


def test_on_changed_warn_names_a_changed_file_of_an_unfinished_part(tmp_path, ray_data_here, monkeypatch, caplog):
    photos = _photos(tmp_path / "photos")
    store = tmp_path / "feats"
    part = _interrupted(photos, store, monkeypatch)
    old = FeatureStore.open(part).file_stamps()
    _replace(photos / "02.png")
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    rep = extract_ray(photos, store, **FX, part_size=4)
    assert (rep.extracted, rep.already, len(rep.store)) == (4, 4, N)
    assert ray_data_here[-1]["extract_kwargs"]["on_changed"] == "warn"
    said = _changed_warnings(caplog)
    assert len(said) == 1 and "img:02" in said[0] and str(photos / "02.png") in said[0], said
    np.testing.assert_array_equal(rep.store.file_stamps()[:4], old)  # the old row, its old stamp: found again
    assert extract_ray(photos, store, **FX, part_size=4).changed_keys == ["img:02"]


def test_every_changed_part_is_named_with_its_folder(tmp_path):
    """Several unfinished parts with changed images (one per actor an interruption stopped): the
    fix names every part folder to delete, not the first three distinct errors; beside another
    failure, both fixes are said."""
    from gensim_im2vec.distributed import _failures_message, _part_dir

    root, target = tmp_path / "feats.ray-parts", tmp_path / "feats"
    failed = [(p, f"ChangedFilesError on node n1: on_changed='raise': 1 image(s) that unfinished part {p} holds "
                  f"changed on disk: img:{p}") for p in range(5)]
    msg = _failures_message(failed, 10, root, target, changed=list(range(5)))
    assert all(repr(str(_part_dir(root, p))) in msg for p in range(5)), msg
    assert "delete their folders" in msg and "Fix the cause" not in msg
    mixed = _failures_message([*failed[:1], (7, "OSError on node n2: [Errno 5] Input/output error")], 10, root,
                              target, changed=[0])
    assert repr(str(_part_dir(root, 0))) in mixed and repr(str(_part_dir(root, 7))) not in mixed
    assert "delete its folder" in mixed and "Fix the cause" in mixed
