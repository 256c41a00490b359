"""Review of ff721f5 (extract_ray finds changed files): damaged stamp metadata that passed the checks
(a negative ``stamps_count``) and row numbers that wrap around when cast."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from gensim_im2vec.distributed import merge_stores
from gensim_im2vec.store import NO_STAMP, FeatureStore


def _stamped(path: Path) -> FeatureStore:
    w = FeatureStore.create(path, dim=3, dtype="float32", metadata={"arch": "x"})
    w.write(["a", "b", "c"], np.ones((3, 3)), stamps=np.array([[1, 2], [3, 4], [5, 6]]))
    w.close()
    return FeatureStore.open(path)


def _set_stamp_fields(path: Path, start, n) -> None:
    meta = json.loads((path / "metadata.json").read_text("utf-8"))
    meta["stamps_from"], meta["stamps_count"] = start, n
    (path / "metadata.json").write_text(json.dumps(meta), "utf-8")


def test_a_negative_stamps_count_is_damaged_stamps_not_a_crash(tmp_path, caplog):
    """``stamps_count: -1`` passed ``start + n <= len``: file_stamps, merge_stores (and extract_ray's
    check of its target) failed with NumPy's "negative dimensions are not allowed", naming nothing."""
    _stamped(tmp_path / "s")
    _set_stamp_fields(tmp_path / "s", 2, -1)
    s = FeatureStore.open(tmp_path / "s")
    caplog.set_level(logging.WARNING, logger="gensim_im2vec")
    assert (s.file_stamps() == NO_STAMP).all()
    assert any("stamps of its image files are damaged" in r.getMessage() and "stamps_count -1" in r.getMessage()
               for r in caplog.records)
    out = merge_stores(tmp_path / "t", [s])
    assert out.keys == ["a", "b", "c"] and (out.file_stamps() == NO_STAMP).all()


def test_file_stamps_refuses_unsigned_rows_beyond_the_store(tmp_path):
    """A uint64 row ≥ 2**63 was cast to a negative int64 first: 2**64 - 1 read the last row."""
    s = _stamped(tmp_path / "s")
    for row in (2**64 - 1, 2**63, 3):
        with pytest.raises(IndexError, match=rf"row {row} is outside feature store .* of 3 rows"):
            s.file_stamps(np.array([row], dtype=np.uint64))
    np.testing.assert_array_equal(s.file_stamps(np.array([2, 0], dtype=np.uint64)), [[5, 6], [1, 2]])


def test_extract_ray_extends_a_target_whose_stamp_count_is_negative(tmp_path, monkeypatch, caplog):
    """The driver's check of the target read its stamps with the negative count and stopped with NumPy's
    error before any work; now they are damaged stamps: said, not compared, removed by the merge."""
    from conftest import ray_in_process
    from PIL import Image

    _, distributed = ray_in_process(monkeypatch)
    extract_ray = distributed.extract_ray
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.new("RGB", (20 + i, 20), (i * 60, 10, 10)).save(photos / f"{i}.png")
    fx = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2, "dtype": "float32", "part_size": 2}
    store = tmp_path / "feats"
    extract_ray(photos, store, **fx)
    _set_stamp_fields(store, 2, -1)
    Image.new("RGB", (9, 9), (1, 2, 3)).save(photos / "new.png")
    caplog.set_level(logging.WARNING, logger="gensim_im2vec")
    rep = extract_ray(photos, store, **fx, on_changed="raise")
    assert (rep.extracted, rep.already, rep.changed) == (1, 3, 0)
    assert any("stamps of its image files are damaged" in r.getMessage() for r in caplog.records)
    meta = rep.store.metadata
    assert meta["stamps_from"] == 3 and meta["stamps_count"] == 1 and (rep.store.file_stamps()[:3] == NO_STAMP).all()


def test_only_an_extractions_writer_keeps_the_stamped_keys(tmp_path):
    """A writer keeps the keys of the store's stamped rows for stored_stamps (8 B a row, ≈ 0.8 GB at
    100M); a merge's or from_arrays' writer never looks them up, so it keeps none and reads them
    again if asked. Both answer the same."""
    from gensim_im2vec.store import FeatureStoreWriter

    keys = [f"img:{i}" for i in range(10)]
    with FeatureStoreWriter(tmp_path / "s", dim=3, dtype="float32", resume=True) as w:
        w.write(keys, np.ones((10, 3), np.float32), stamps=np.arange(20, dtype=np.int64).reshape(10, 2))
    ask = ["img:3", "img:nope", "img:9"]
    want = [[6, 7], [-1, -1], [18, 19]]
    for resume, kept in ((True, keys), (False, None)):  # one writer at a time (the store's lock)
        w = FeatureStoreWriter(tmp_path / "s", dim=3, dtype="float32", mode="extend", resume=resume)
        try:
            assert w._found_stamps[0] == kept
            assert w.stored_stamps(ask).tolist() == want
        finally:
            w.abort()
