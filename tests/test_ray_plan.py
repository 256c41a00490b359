"""extract_ray's driver at 100M images: what it plans holds a few bytes per image (not the image list
and its copies), Ray gets part numbers and plan files, duplicate keys are found by hash and named,
a part's finished marker lists every key its store holds, the merge keeps first occurrences without
a second set of every key, and continuing its own store does not warn about it.

No test here starts Ray: the parts run in this process on the actors' own class (as
tests/test_ray_audit.py's ``in_process`` does), or the run is stopped where Ray would start."""

from __future__ import annotations

import json
import logging
import tracemalloc
import types

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="extract_ray needs Ray Data: pip install 'ray[data]'")
pytest.importorskip("ray.data", reason="extract_ray needs Ray Data: pip install 'ray[data]'")

from conftest import parts_here  # noqa: E402
from PIL import Image  # noqa: E402

from gensim_im2vec import distributed  # noqa: E402
from gensim_im2vec.distributed import extract_ray  # noqa: E402
from gensim_im2vec.features import FeatureExtractor, list_images  # noqa: E402
from gensim_im2vec.store import FeatureStore  # noqa: E402

FX = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2, "dtype": "float32"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan") / "photos"
    rng = np.random.default_rng(0)
    for i in range(10):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (36 + i, 44, 3), dtype=np.uint8)).save(sub / f"{i:02d}.png")
    return root


def in_process(seen: list, stop_after=None):
    """A stand-in for ``distributed._run_parts`` (:func:`conftest.parts_here`) that records each item
    handed to Ray, what its plan holds, and what the actor did, in `seen`; ``stop_after=n`` stops
    after n parts, as a killed driver does."""

    def record(item, row):
        with open(item["items"], encoding="utf-8") as f:
            seen.append({"item": dict(item), "plan": json.load(f), "extracted": int(row["extracted"][0])})

    return parts_here(record, stop_after)


@pytest.fixture
def fake_ray(monkeypatch):
    """Ray "started" with 2 CPUs; the parts run in this process (:func:`in_process`)."""
    seen = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(distributed, "_run_parts", in_process(seen))
    return seen


# ----------------------------------------------------------------------------- what Ray is handed


def test_ray_gets_part_numbers_and_plan_files_not_the_items(photos, tmp_path, fake_ray):
    """Each item handed to Ray is a part number and the path of that part's plan file (under
    STORE.ray-parts/.plan/, on the shared filesystem the parts are on), holding only the images still
    to do; the image list may be a generator, read once. The plans are gone after the run."""
    pairs = list_images(photos)
    FeatureExtractor(**{k: v for k, v in FX.items() if k != "dtype"}, device="cpu", num_workers=0,
                     progress=False).extract(pairs[:3], tmp_path / "feats", dtype="float32")
    reads = []

    def once():
        reads.append(1)
        yield from ((k, str(p)) for k, p in pairs)

    rep = extract_ray(once(), tmp_path / "feats", **FX, part_size=4)
    assert len(reads) == 1 and (rep.total, rep.extracted, rep.already, rep.skipped) == (10, 7, 3, 0)
    plans = tmp_path / "feats.ray-parts" / ".plan"
    assert [s["item"]["part"] for s in fake_ray] == [0, 1, 2]
    for s in fake_ray:
        ref = s["item"]["items"]
        assert set(s["item"]) == {"part", "items"} and ref == str(plans / f"part-{s['item']['part']:06d}.json")
        assert len(ref) < 200  # what Ray holds per part: a path, not the part's images
    # part 0 holds images 0-3, of which the store had 0-2: its plan lists image 3 only
    assert fake_ray[0]["plan"] == [[pairs[3][0], str(pairs[3][1])]] and fake_ray[0]["extracted"] == 1
    assert [k for k, _ in fake_ray[1]["plan"]] == [k for k, _ in pairs[4:8]]
    assert sorted(rep.store.keys) == sorted(k for k, _ in pairs)
    assert not (tmp_path / "feats.ray-parts").exists()  # plans and spool deleted with the parts


class _Stop(Exception):
    pass


def test_planning_holds_a_few_bytes_per_image(tmp_path, monkeypatch):
    """The driver's planning of N images given as a generator (no list anywhere): what it allocates,
    traced up to the moment Ray would be handed the parts, stays under 48 bytes per image (the code
    before held a list of the pairs, a set of their keys, a set of the finished keys, the parts as
    lists and a JSON copy of every part: ≈ 300 bytes per image here)."""
    n = 60_000
    monkeypatch.setattr(distributed, "_SCAN_CHUNK", 1024, raising=False)  # chunk buffers: not per image
    # a finished part from an interrupted run: its marker lists 4096 of the keys
    parts = tmp_path / "feats.ray-parts"
    (parts / "part-000000").mkdir(parents=True)
    (parts / "part-000000" / "metadata.json").write_text("{}")
    (parts / "part-000000.done.json").write_text(json.dumps({"keys": [f"img:{i:09d}" for i in range(4096)]}))
    seen = {}
    monkeypatch.setattr(distributed, "_parts_made_otherwise", lambda *a: None)  # the fake part store above
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})

    def probe(fx_options):  # no model to build: from here on, what is allocated is the planning's
        seen["start"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return types.SimpleNamespace(metadata={"arch": "x"}, dim=4)

    def run_parts(todo, *rest):
        seen["current"], seen["peak"] = tracemalloc.get_traced_memory()
        seen["todo"] = len(todo)
        raise _Stop

    monkeypatch.setattr(distributed, "_probe_extractor", probe)
    monkeypatch.setattr(distributed, "_run_parts", run_parts)
    pairs = ((f"img:{i:09d}", f"/data/yfcc/{i % 1000:03d}/{i:09d}.jpg") for i in range(n))
    tracemalloc.start()
    try:
        with pytest.raises(_Stop):
            extract_ray(pairs, tmp_path / "feats", arch="mobilenet_v3_small", weights=None, part_size=1024,
                        batch_size=32)
    finally:
        tracemalloc.stop()
    assert seen["todo"] == -(-n // 1024) - 4
    peak, held = (seen["peak"] - seen["start"]) / n, (seen["current"] - seen["start"]) / n
    assert peak < 48 and held < 8, (peak, held)  # measured: 34 and 2 (the hashes, 32 bytes per image)
    assert not (parts / ".plan").exists() and (parts / "part-000000.done.json").exists()


# ----------------------------------------------------------------------------- duplicate keys by hash


def test_duplicate_key_named_without_a_set_of_keys(tmp_path, ray_not_reached):
    """A key given twice is refused before Ray, naming the key and where it is in the list."""
    pairs = ((f"img:{i if i != 4321 else 17:05d}", f"/x/{i:05d}.jpg") for i in range(5000))
    with pytest.raises(ValueError) as e:
        extract_ray(pairs, tmp_path / "feats", **FX)
    msg = str(e.value)
    assert "'img:00017'" in msg and "items 17 and 4321" in msg and "every image needs its own key" in msg
    assert not (tmp_path / "feats.ray-parts").exists() and not (tmp_path / "feats").exists()


def test_hash_collisions_are_confirmed_by_the_keys(photos, tmp_path, fake_ray, monkeypatch):
    """Keys whose 64-bit hashes collide are not duplicates, and a finished key does not make another
    key with its hash look finished: with every key's first 64 bits made equal, the run is still
    exact (the second 64 bits and, for duplicates, the strings decide)."""
    real = getattr(distributed, "_key_hashes", None)  # (the code before had none: sets of keys)

    def colliding(keys):
        h = real(keys).copy()
        h[:, 0] = 7
        return h

    monkeypatch.setattr(distributed, "_key_hashes", colliding, raising=False)
    pairs = list_images(photos)
    FeatureExtractor(**{k: v for k, v in FX.items() if k != "dtype"}, device="cpu", num_workers=0,
                     progress=False).extract(pairs[:4], tmp_path / "feats", dtype="float32")
    rep = extract_ray(pairs, tmp_path / "feats", **FX, part_size=4)
    assert (rep.extracted, rep.already, rep.total) == (6, 4, 10)
    assert sorted(rep.store.keys) == sorted(k for k, _ in pairs)
    with pytest.raises(ValueError, match=r"duplicate keys.*'img:a/01'.*items 0 and 10"):
        extract_ray([*pairs, pairs[0]], tmp_path / "other", **FX, part_size=4)


# ----------------------------------------------------------------------------- finished markers


def test_marker_lists_every_key_its_part_store_holds(photos, tmp_path):
    """A part store that already holds images (an earlier run's, another cut) and gets the rest of
    its images: its marker lists all of them, also the earlier ones; it listed only the new ones,
    so an interrupted later rerun redid the earlier images."""
    pairs = [(k, str(p)) for k, p in list_images(photos)]
    part = tmp_path / "p" / "part-000000"
    FeatureExtractor(FX["arch"], None, device="cpu", batch_size=2, num_workers=0, progress=False).extract(
        pairs[:3], part, dtype="float32")
    actor = distributed._PartExtractor({"arch": FX["arch"], "weights": None, "device": "cpu", "batch_size": 2,
                                        "num_workers": 0, "progress": False}, {"dtype": "float32"},
                                       str(tmp_path / "p"))
    try:
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps(pairs[3:5] + [["img:gone", str(tmp_path / "gone.png")]]))
        row = actor({"part": [0], "items": [str(plan)]})
    finally:
        logging.getLogger("gensim_im2vec.features").removeFilter(distributed._not_part_skip_warning)
    assert not row["error"][0] and int(row["extracted"][0]) == 2 and int(row["skipped"][0]) == 1
    marker = json.loads((tmp_path / "p" / "part-000000.done.json").read_text())
    assert sorted(marker["keys"]) == sorted([k for k, _ in pairs[:5]] + ["img:gone"])


def test_interrupted_rerun_of_another_cut_redoes_nothing(photos, tmp_path, fake_ray, monkeypatch):
    """Run 1 (parts of 4) stops after 2 parts; run 2 (parts of 6) finishes part 1 (images 6-9: its
    store held 4-7) and is stopped before the merge; run 3 (parts of 2) finds all 10 finished. Run 2's
    marker for part 1 listed only images 8 and 9, so run 3 extracted images 4-7 again."""
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray, stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray))
    merge = distributed.merge_stores

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "merge_stores", killed)
    fake_ray.clear()
    with pytest.raises(KeyboardInterrupt):
        extract_ray(photos, tmp_path / "feats", **FX, part_size=6)
    assert [(s["item"]["part"], s["extracted"]) for s in fake_ray] == [(1, 2)]
    monkeypatch.setattr(distributed, "merge_stores", merge)
    fake_ray.clear()
    rep = extract_ray(photos, tmp_path / "feats", **FX, part_size=2)
    assert fake_ray == [] and (rep.parts_run, rep.extracted, rep.already, rep.total) == (0, 0, 10, 10)
    assert sorted(rep.store.keys) == sorted(k for k, _ in list_images(photos))


# ----------------------------------------------------------------------------- the merge


def test_merge_keeps_first_occurrences_without_a_set_of_its_own(tmp_path):
    """merge_stores finds the keys already written in the store writer's ``done_keys`` and the few it
    still buffers (``_WrittenKeys``) instead of a second set of every key: first occurrences still
    win when a shard is committed by a write or by a skip, across sources that overlap, into a store
    that holds keys already. (The merge before held that second set; its results were the same, so
    this test passes on it: it guards the bookkeeping that replaced the set.)"""
    from gensim_im2vec.store import FeatureStoreWriter

    meta = {"arch": "resnet50"}
    FeatureStore.from_arrays(tmp_path / "m", ["k05", "k11"], np.full((2, 3), -1, np.float32), metadata=meta,
                             dtype="float32")
    given = [  # (keys, skipped) of each source; the merge commits a shard every 16 rows + skips
        ([f"k{i:02d}" for i in range(11)], [f"x{i:02d}" for i in range(6)]),  # 10 new rows + 6 skips: a skip commits
        ([f"k{i}" for i in range(20, 25)], []),  # 5 rows, buffered
        (["k05", "k22", "k30", "k31", "k32"], ["k24", "x00", "k40"]),  # k22 still buffered, k05 in the target
        (["x01", "k00", "k50"], []),  # x01 was skipped before: now stored
    ]
    sources = []
    for j, (keys, skips) in enumerate(given):
        w = FeatureStoreWriter(tmp_path / f"s{j}", dim=3, dtype="float32", metadata=meta)
        w.write(keys, np.full((len(keys), 3), j, np.float32))
        for k in skips:
            w.skip(k, f"bad {j}")
        w.close()
        sources.append(tmp_path / f"s{j}")
    merged = distributed.merge_stores(tmp_path / "m", sources, shard_size=16)
    rows = {"k05": -1, "k11": -1}  # key: the source whose row it keeps (-1: the target's)
    for j, (keys, _) in enumerate(given):
        for k in keys:
            rows.setdefault(k, j)
    assert list(rows)[-5:] == ["k30", "k31", "k32", "x01", "k50"]
    assert merged.keys == list(rows)
    np.testing.assert_array_equal(np.asarray(merged.vectors)[:, 0], np.array(list(rows.values()), np.float32))
    # x00, skipped by sources 0 and 2, keeps the first one's reason (tests/test_leftovers5.py)
    assert merged.skipped == {"x00": "bad 0", "x02": "bad 0", "x03": "bad 0", "x04": "bad 0", "x05": "bad 0",
                              "k40": "bad 2"}


# ----------------------------------------------------------------------------- its own unfinished store


@pytest.mark.parametrize("killed", ["before_close", "before_append"])
def test_continuing_its_own_store_does_not_warn(photos, tmp_path, fake_ray, monkeypatch, caplog, killed):
    """extract_ray killed in its merge -- after the rows were appended, before the store was closed; or
    before the committed shards were appended -- is run again: opening its target it warned "this store
    is the unfinished extraction ...: run it again with the same arguments to finish it" (and that the
    shards "are not consolidated yet"), about itself. It says at INFO that it continues; the store
    opened by anyone else still warns."""
    from gensim_im2vec.store import RUN_FILE, SHARD_DIR, FeatureStoreWriter, unfinished_run

    merge = distributed.merge_stores

    def killed_before_close(target, sources, **kw):
        merged = merge(target, sources, **kw)
        (merged.path / RUN_FILE).write_text('{"mode": "extend"}')  # what the kill leaves: not closed
        raise KeyboardInterrupt

    def killed_before_append(target, sources, **kw):
        def close(writer):  # its shards committed, not appended: as a kill in close() leaves them
            writer.abort()
            raise KeyboardInterrupt

        with monkeypatch.context() as m:
            m.setattr(FeatureStoreWriter, "close", close)
            merge(target, sources, **{**kw, "shard_size": 4})

    monkeypatch.setattr(distributed, "merge_stores",
                        killed_before_close if killed == "before_close" else killed_before_append)
    with pytest.raises(KeyboardInterrupt):
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    monkeypatch.setattr(distributed, "merge_stores", merge)
    assert unfinished_run(tmp_path / "feats") is not None
    pending = list((tmp_path / "feats" / SHARD_DIR).glob("*.json"))
    assert len(pending) == (3 if killed == "before_append" else 0)  # 10 rows in shards of 4
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.store"):
        FeatureStore.open(tmp_path / "feats")  # someone else opening it: warned
    assert any("run it again with the same arguments" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rep = extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    assert rep.extracted == 0 and rep.already == 10 and len(rep.store) == 10
    assert unfinished_run(tmp_path / "feats") is None
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [], warned
    assert any("continuing" in r.getMessage() and "unfinished" in r.getMessage() for r in caplog.records)


def test_pairs_of_str_subclasses_from_an_iterator_are_planned(tmp_path):
    """Keys and paths that subclass str (a metadata reader's own string type) are planned from an
    iterator as from a list: the spool stores exact strings (marshal refused the subclass)."""

    class Tagged(str):
        pass

    pairs = [(Tagged(f"img:{i}"), Tagged(f"/data/{i}.jpg")) for i in range(5)]
    got = {}
    for name, given in (("list", list(pairs)), ("iterator", iter(pairs))):
        images = distributed._Images(given, "")
        digest, index = images.scan(tmp_path / name / ".plan")
        got[name] = (digest, [tuple(map(type, p)) for p in images], list(images))
    assert got["iterator"][0] == got["list"][0]
    assert got["iterator"][2] == [(f"img:{i}", f"/data/{i}.jpg") for i in range(5)]
    assert set(got["iterator"][1]) == {(str, str)}
