"""An image file changed under a key the store already holds (a photo edited or replaced, then the
extraction run again) is found by the stamp (size, mtime_ns) the store recorded when it extracted the
file, named in a warning and counted in the report, not silently kept; ``on_changed="raise"`` refuses
(a store's rows are never rewritten) and names the fix, a new store. Stamps are committed with the
rows (an interrupted run stays resumable), and stores without them (written before stamps existed,
or from arrays) work as before, said once at INFO."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from test_extract_resume import N, _args, _cli, _counts, _images, _killed

from gensim_im2vec.features import ChangedFilesError, FeatureExtractor, split_extractor_options
from gensim_im2vec.store import (
    NO_STAMP,
    STAMPS_FILE,
    FeatureStore,
    FeatureStoreWriter,
    _rows_of,
    file_stamp,
)

pytest.importorskip("torchvision")

RUN = {"shard_size": 4, "dtype": "float32"}  # as the CLI arguments of test_extract_resume._args


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor("mobilenet_v3_small", weights=None, device="cpu", num_workers=0, batch_size=2,
                            progress=False)


def _replace(path: Path, colour=(250, 10, 200)) -> None:
    """Another picture under the same file name, with a modification time that surely differs."""
    from PIL import Image

    t = path.stat().st_mtime_ns + 7 * 10**9
    Image.new("RGB", (16, 16), colour).save(path)
    os.utime(path, ns=(t, t))


def _add(folder: Path, name: str, colour=(1, 2, 3)) -> Path:
    from PIL import Image

    Image.new("RGB", (16, 16), colour).save(folder / name)
    return folder / name


def _want_stamps(store: FeatureStore, imgs: Path) -> np.ndarray:
    """The stamps of the files behind the store's rows now (keys ``img:NAME`` of ``imgs/NAME.png``)."""
    return np.array([file_stamp(imgs / f"{k[len('img:'):]}.png") for k in store.keys], dtype=np.int64)


def _changed_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "changed on disk" in r.getMessage()]


def _strip_stamps(store: Path) -> None:
    """Make `store` one written before stamps existed: no stamps.npy, no stamps in its metadata."""
    (store / STAMPS_FILE).unlink()
    meta = json.loads((store / "metadata.json").read_text("utf-8"))
    del meta["stamps_from"], meta["stamps_count"]
    (store / "metadata.json").write_text(json.dumps(meta), "utf-8")


# ----------------------------------------------------------------------------- found and said


def test_a_replaced_file_is_named_and_counted_and_unchanged_files_are_not(fx, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    imgs, store = _images(tmp_path / "imgs"), tmp_path / "store"
    first = fx.extract(imgs, store, **RUN)
    assert first.changed == 0
    np.testing.assert_array_equal(first.store.file_stamps(), _want_stamps(first.store, imgs))
    old_row = first.store.get_vector("img:003")

    again = fx.extract(imgs, store, **RUN)  # nothing changed: nothing said
    assert (again.changed, again.changed_keys, again.already) == (0, [], N)
    assert not _changed_warnings(caplog) and "changed" not in again.summary()

    _replace(imgs / "003.png")
    caplog.clear()
    rep = fx.extract(imgs, store, **RUN)
    assert (rep.extracted, rep.already, rep.changed, rep.changed_keys) == (0, N, 1, ["img:003"])
    [msg] = _changed_warnings(caplog)
    assert "1 image(s)" in msg and "img:003" in msg and "003.png" in msg, msg
    assert "img:004" not in msg and "new store" in msg and "mode='overwrite'" in msg, msg
    assert "1 of them changed on disk since they were extracted" in rep.summary()
    np.testing.assert_array_equal(rep.store.get_vector("img:003"), old_row)  # kept, as the warning says


def test_on_changed_raise_refuses_before_any_work_and_a_new_store_holds_the_new_picture(fx, tmp_path):
    imgs, store = _images(tmp_path / "imgs"), tmp_path / "store"
    fx.extract(imgs, store, **RUN)
    before = FeatureStore.open(store, mmap=False)

    assert fx.extract(imgs, store, on_changed="raise", **RUN).changed == 0  # nothing changed: runs as without it
    _replace(imgs / "003.png")
    _add(imgs, "new.png")
    with pytest.raises(ChangedFilesError) as e:
        fx.extract(imgs, store, on_changed="raise", **RUN)
    msg = str(e.value)
    assert "img:003" in msg and "never rewritten" in msg and "new store" in msg and "Nothing was extracted" in msg, msg
    after = FeatureStore.open(store, mmap=False)
    assert after.keys == before.keys and "img:new" not in after  # nothing was extracted, not even the new image
    np.testing.assert_array_equal(after.vectors, before.vectors)

    # the fix it names: a new store, whose row is the new picture's
    fresh = fx.extract(imgs, tmp_path / "new-store", **RUN).store
    assert fresh.keys == [f"img:{i:03d}" for i in range(N)] + ["img:new"] and len(fresh) == N + 1
    alone = fx.extract([("img:003", str(imgs / "003.png"))], tmp_path / "alone", **RUN).store.get_vector("img:003")
    scale = float(np.abs(alone).max())  # random weights: features of about 1e-9
    np.testing.assert_allclose(fresh.get_vector("img:003"), alone, rtol=1e-4, atol=1e-4 * scale)
    assert np.abs(before.get_vector("img:003") - alone).max() > 0.05 * scale, "the picture did change"

    rep = fx.extract(imgs, store, **RUN)  # the refused run let the store go: the plain run appends, warns
    assert (rep.extracted, rep.changed, len(rep.store)) == (1, 1, N + 1)


def test_the_command_names_the_changed_files_and_on_changed_raise_stops_it(tmp_path):
    imgs, store = _images(tmp_path / "imgs"), tmp_path / "store"
    assert _cli(_args(imgs, store))[0] == 0
    _replace(imgs / "005.png")

    code, out = _cli(_args(imgs, store, "--on-changed", "raise"))
    assert code == 1 and "--on-changed raise: 1 image(s)" in out and "img:005" in out, out
    assert "--mode overwrite" in out and "on_changed" not in out, out
    code, out = _cli(_args(imgs, store))
    assert code == 0 and _counts(out) == (0, N) and "1 of them changed on disk" in out, out
    assert "changed since extracted, old rows kept: img:005;" in out, out


# ----------------------------------------------------------------------------- committed with the rows


def test_an_interrupted_fresh_run_continues_with_every_row_stamped(fx, tmp_path):
    imgs, store = _images(tmp_path / "imgs"), tmp_path / "store"
    args = _args(imgs, store)
    _killed("after the first shard", args)
    assert list((store / "shards").glob("stamps-*.npy")), "the shard's stamps are committed with it"
    code, out = _cli(args)
    assert code == 0 and _counts(out) == (N - 4, 4), out
    s = FeatureStore.open(store)
    assert (s.metadata["stamps_from"], s.metadata["stamps_count"]) == (0, N)
    np.testing.assert_array_equal(s.file_stamps(), _want_stamps(s, imgs))
    assert not list((store / "shards").iterdir())

    _replace(imgs / "001.png")  # a row of the shard the killed run committed
    assert fx.extract(imgs, store, **RUN).changed_keys == ["img:001"]


@pytest.mark.parametrize("where", ["after the first shard", "in the final append"])
def test_an_interrupted_append_to_a_stamped_store_keeps_its_stamps_aligned(tmp_path, where):
    imgs, store = _images(tmp_path / "imgs", 8), tmp_path / "store"
    assert _cli(_args(imgs, store))[0] == 0
    for i in range(8, 12):
        _add(imgs, f"{i:03d}.png", (i, 2 * i, 3 * i))
    args = _args(imgs, store)
    _killed(where, args)  # "in the final append": rows, keys and stamps appended, their count not committed
    code, out = _cli(args)
    assert code == 0 and _counts(out) == (0, 12), out  # the 4 new rows were committed by the killed run
    s = FeatureStore.open(store)
    assert s.keys == [f"img:{i:03d}" for i in range(12)]
    assert (s.metadata["stamps_from"], s.metadata["stamps_count"]) == (0, 12)
    raw = np.load(store / STAMPS_FILE)
    np.testing.assert_array_equal(raw, _want_stamps(s, imgs))  # no tail beyond the commit, header up to date


def test_a_shard_of_a_run_without_stamps_is_continued_and_its_rows_are_unstamped(fx, tmp_path, caplog):
    """An interrupted run of a version without stamps (shard records without them) continues as before."""
    imgs, store = _images(tmp_path / "imgs"), tmp_path / "store"
    _killed("after the first shard", _args(imgs, store))
    for f in (store / "shards").glob("stamps-*.npy"):
        f.unlink()
    for f in (store / "shards").glob("shard-*.json"):
        rec = json.loads(f.read_text("utf-8"))
        del rec["stamps"]
        f.write_text(json.dumps(rec), "utf-8")

    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    rep = fx.extract(imgs, store, **RUN)
    assert (rep.extracted, rep.already, rep.changed) == (N - 4, 4, 0)
    assert any("4 of the 4 images already stored have no stamp" in r.getMessage() for r in caplog.records)
    stamps = rep.store.file_stamps()
    assert (stamps[:4] == NO_STAMP).all()
    np.testing.assert_array_equal(stamps[4:], _want_stamps(rep.store, imgs)[4:])


# ----------------------------------------------------------------------------- stores without stamps


def test_a_store_written_before_stamps_resumes_as_before_and_says_it_cannot_check(fx, tmp_path, caplog):
    imgs, store = _images(tmp_path / "imgs"), tmp_path / "store"
    fx.extract(imgs, store, **RUN)
    _strip_stamps(store)
    old = FeatureStore.open(store, mmap=False)
    _replace(imgs / "003.png")  # cannot be seen: the store has no stamp of it
    _add(imgs, "new.png")

    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    rep = fx.extract(imgs, store, **RUN)
    assert (rep.extracted, rep.already, rep.changed) == (1, N, 0)
    said = [r for r in caplog.records if "cannot be checked" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO, [r.getMessage() for r in said]
    assert f"{N} of the {N} images already stored have no stamp" in said[0].getMessage()
    assert not _changed_warnings(caplog)
    s = FeatureStore.open(store)
    assert s.keys == old.keys + ["img:new"]
    np.testing.assert_array_equal(np.asarray(s.vectors[:N]), old.vectors)
    stamps = s.file_stamps()  # from its first new row on
    assert s.metadata["stamps_from"] == N and (stamps[:N] == NO_STAMP).all()
    assert tuple(stamps[N]) == file_stamp(imgs / "new.png")

    _replace(imgs / "new.png")  # rows extracted since are checked
    assert fx.extract(imgs, store, **RUN).changed_keys == ["img:new"]


def test_rows_from_arrays_have_no_stamps_and_stamped_rows_after_them_stay_aligned(fx, tmp_path):
    vecs = np.random.default_rng(0).random((2, fx.dim), dtype=np.float32)
    arrays = FeatureStore.from_arrays(tmp_path / "arrays", ["img:a", "img:b"], vecs)
    assert not (tmp_path / "arrays" / STAMPS_FILE).exists() and "stamps_from" not in arrays.metadata
    assert (arrays.file_stamps() == NO_STAMP).all()

    imgs, store = _images(tmp_path / "imgs", 4), tmp_path / "store"
    meta = fx.extract(imgs, store, **RUN).store.metadata
    with FeatureStoreWriter(store, dim=meta["dim"], dtype=meta["dtype"], metadata=meta, mode="extend") as w:
        with pytest.raises(ValueError, match=r"write\(stamps\): expected whole numbers of shape \(2, 2\)"):
            w.write(["img:x1", "img:x2"], vecs, stamps=[1, 2])
        w.write(["img:x1", "img:x2"], vecs)  # e.g. a merge: no files
    assert FeatureStore.open(store).metadata["stamps_count"] == 4  # stamps.npy untouched
    for i in range(4, 6):
        _add(imgs, f"{i:03d}.png", (9 * i, 0, 0))
    s = fx.extract(imgs, store, **RUN).store
    assert s.keys == ["img:000", "img:001", "img:002", "img:003", "img:x1", "img:x2", "img:004", "img:005"]
    stamps = s.file_stamps()
    assert (stamps[4:6] == NO_STAMP).all() and s.metadata["stamps_count"] == 8
    files = [0, 1, 2, 3, 6, 7]
    np.testing.assert_array_equal(stamps[files], _want_stamps(s, imgs)[files])


def test_damaged_stamps_are_said_and_removed_and_the_rows_stay(fx, tmp_path, caplog):
    imgs, store = _images(tmp_path / "imgs", 4), tmp_path / "store"
    fx.extract(imgs, store, **RUN)
    data = (store / STAMPS_FILE).read_bytes()
    (store / STAMPS_FILE).write_bytes(data[:-10])  # a truncated copy
    caplog.set_level(logging.INFO, logger="gensim_im2vec")
    s = FeatureStore.open(store)
    assert len(s) == 4 and (s.file_stamps() == NO_STAMP).all()
    assert any("stamps of its image files are damaged" in r.getMessage() for r in caplog.records)

    _add(imgs, "004.png")
    caplog.clear()
    rep = fx.extract(imgs, store, **RUN)
    assert (rep.extracted, rep.already, len(rep.store)) == (1, 4, 5)
    assert any(r.levelno == logging.WARNING and "removing them" in r.getMessage() for r in caplog.records)
    assert rep.store.metadata["stamps_from"] == 4
    assert tuple(rep.store.file_stamps()[4]) == file_stamp(imgs / "004.png")


# ----------------------------------------------------------------------------- pieces


def test_on_changed_is_extract_rays_own_option_not_its_actors():
    """extract_ray checks its target's files itself (tests/test_ray_stamps.py); an actor's extract
    writes a new part store and must not be given it."""
    with pytest.raises(TypeError, match="extract_ray: on_changed cannot be given among the options of its actors"):
        split_extractor_options({"on_changed": "raise"}, owner="extract_ray")
    assert split_extractor_options({"on_changed": "raise"})[1] == {"on_changed": "raise"}


class _SameHash(str):
    """A key whose hash collides with every other one's."""

    def __hash__(self) -> int:
        return 7


def test_rows_of_finds_each_key_also_when_hashes_collide():
    stored = [f"img:{i}" for i in range(50)]
    query = ["img:7", "img:nope", "img:49", "img:0"]
    assert _rows_of(stored, query).tolist() == [7, -1, 49, 0]
    colliding = [_SameHash(k) for k in stored]
    assert _rows_of(colliding, [_SameHash(k) for k in query]).tolist() == [7, -1, 49, 0]
    assert _rows_of([], query).tolist() == [-1] * 4 and _rows_of(stored, []).tolist() == []


def test_on_changed_takes_warn_or_raise_only(fx, tmp_path):
    with pytest.raises(ValueError, match="on_changed: expected 'warn', 'raise' or 'ignore', got 'refresh'"):
        fx.extract(_images(tmp_path / "imgs"), tmp_path / "store", on_changed="refresh", **RUN)
    assert not (tmp_path / "store").exists()  # refused before the store was made


def test_on_changed_ignore_stats_no_stored_file(fx, tmp_path, monkeypatch):
    """A resume at 100M files on a network file system need not stat every stored file again."""
    from gensim_im2vec import features

    imgs, store = _images(tmp_path / "imgs"), tmp_path / "store"
    fx.extract(imgs, store, **RUN)
    _replace(imgs / "003.png")
    stats = []
    monkeypatch.setattr(features, "file_stamp", lambda p: stats.append(p) or (1, 1))
    rep = fx.extract(imgs, store, on_changed="ignore", **RUN)
    assert (rep.changed, rep.extracted, stats) == (0, 0, [])
    monkeypatch.undo()
    assert fx.extract(imgs, store, **RUN).changed == 1  # the default still finds it
