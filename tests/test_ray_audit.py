"""extract_ray as a user with 100M photos meets it: parity with `extract` (options, vectors, keys,
skip reasons), counts that add up, resumes that redo nothing finished (also when the rerun cuts the
image list differently, or new images were added), refusals before any work (settings, addresses,
a second driver), and actor failures reported in a few lines.

Most checks run the actors' code in this process instead of on Ray (:func:`in_process`): the same
``_PartExtractor`` the actors run, part by part, so they are fast; the checks that need Ray's
actors (row-for-row parity, a failing part) start a local Ray with 2 CPUs."""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="extract_ray needs Ray Data: pip install 'ray[data]'")
pytest.importorskip("ray.data", reason="extract_ray needs Ray Data: pip install 'ray[data]'")

from conftest import parts_here  # noqa: E402
from PIL import Image  # noqa: E402

from gensim_im2vec import distributed  # noqa: E402
from gensim_im2vec.distributed import extract_ray  # noqa: E402
from gensim_im2vec.features import FeatureExtractor, list_images  # noqa: E402
from gensim_im2vec.store import FeatureStore, StoreLockedError, StoreMismatchError  # noqa: E402

FX = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2, "dtype": "float32"}


def _photos(root, n):
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (36 + i, 44, 3), dtype=np.uint8)).save(sub / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return _photos(tmp_path_factory.mktemp("audit") / "photos", 10)


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """6 photos and one of each bad input: corrupt, truncated, zero-byte, text, a dangling link."""
    root = _photos(tmp_path_factory.mktemp("messy") / "photos", 6)
    (root / "corrupt.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (64, 64), "red").save(root / "whole.jpg")
    data = (root / "whole.jpg").read_bytes()
    (root / "whole.jpg").unlink()
    (root / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (root / "zero.png").write_bytes(b"")
    (root / "text.jpg").write_text("hello")
    os.symlink(root / "gone" / "x.jpg", root / "dangling.jpg")  # unreadable, also for root
    return root


@pytest.fixture(scope="module")
def local_ray():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def in_process(calls, stop_after=None):
    """A stand-in for ``distributed._run_parts`` (:func:`conftest.parts_here`) that records the images
    each part extracted in `calls`; ``stop_after=n`` stops the run after n parts, as a killed driver does."""
    return parts_here(lambda item, row: calls.append(int(row["extracted"][0])), stop_after)


@pytest.fixture
def fake_ray(monkeypatch):
    """Ray "started" with 2 CPUs; the parts run in this process (:func:`in_process`)."""
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(distributed, "_run_parts", in_process(calls))
    return calls


def _single(images, path, **kw):
    fx = FeatureExtractor(FX["arch"], None, device="cpu", batch_size=2, num_workers=0, threads=1, progress=False, **kw)
    return fx.extract(images, path, dtype="float32")


# ----------------------------------------------------------------------------- parity and counts


def test_parity_with_extract_and_counts_that_add_up(messy, tmp_path, local_ray):
    """Same keys, vectors, skip reasons as `extract`; stored + already + skipped = images found, the
    summary names the reasons; a rerun with retry_skipped=False starts nothing and says so."""
    single = _single(messy, tmp_path / "single").store
    rep = extract_ray(messy, tmp_path / "feats", **FX, part_size=4)
    store = rep.store
    assert store.keys == single.keys and len(store) == 6
    diff = float(np.abs(np.asarray(store.vectors, np.float32) - np.asarray(single.vectors, np.float32)).max())
    assert diff <= 1e-6 * float(np.abs(np.asarray(single.vectors)).max())
    assert store.skipped == single.skipped and len(store.skipped) == 5
    assert rep.total == 11 and (rep.extracted, rep.already, rep.skipped) == (6, 0, 5)
    assert rep.skip_reasons == dict(Counter(r.split(":", 1)[0] for r in single.skipped.values()))
    assert rep.skip_reasons["not an image"] == 2 and rep.skip_reasons["empty file (0 bytes)"] == 1
    assert rep.summary().startswith("11 images: 6 extracted") and "5 skipped (not an image: 2, " in rep.summary()

    again = extract_ray(messy, tmp_path / "feats", **FX, part_size=4, retry_skipped=False)
    assert (again.parts_run, again.extracted, again.already, again.skipped) == (0, 0, 6, 5)
    assert again.summary().startswith("11 images: nothing left to extract, 6 already stored, 5 skipped")


def test_rerun_retries_skipped_images_and_says_so(messy, tmp_path, fake_ray):
    first = extract_ray(messy, tmp_path / "feats", **FX, part_size=4)
    assert first.extracted + first.already + first.skipped == first.total == 11
    fake_ray.clear()
    again = extract_ray(messy, tmp_path / "feats", **FX, part_size=4)  # retry_skipped=True, as `extract`
    assert fake_ray == [0, 0] and again.retried == 5  # only the 2 parts holding the 5 skipped images ran
    assert (again.extracted, again.already, again.skipped) == (0, 6, 5)
    assert "after 5 image(s) skipped before were tried again (retry_skipped=False leaves them)" in again.summary()


# ----------------------------------------------------------------------------- resume


def test_rerun_that_cuts_the_list_differently_redoes_nothing(photos, tmp_path, fake_ray, monkeypatch):
    """A run stopped after 2 of its 3 parts (8 of 10 images finished, nothing merged yet) is rerun with
    another batch size, so the list is cut into parts of 6: only the 2 unfinished images are extracted."""
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray, stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    assert fake_ray == [4, 4] and not (tmp_path / "feats").exists()
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray))
    fake_ray.clear()
    rep = extract_ray(photos, tmp_path / "feats", **{**FX, "batch_size": 3}, part_size=6)
    assert sum(fake_ray) == 2 and rep.extracted == 2 and rep.already == 8
    single = _single(photos, tmp_path / "single").store
    assert sorted(rep.store.keys) == single.keys
    got = np.asarray(rep.store.vectors)[[rep.store.key_to_index[k] for k in single.keys]]
    np.testing.assert_allclose(got, np.asarray(single.vectors), rtol=1e-5, atol=1e-12)


def test_new_images_during_an_interrupted_run_cost_only_themselves(photos, tmp_path, fake_ray, monkeypatch):
    """Images added to the folder sort among the old ones and shift every part; the finished work is
    still found by key: the rerun extracts the 2 new and the 2 unfinished images, not 8."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for sub in ("a", "b"):
        (folder / sub).mkdir()
        for p in (photos / sub).iterdir():
            (folder / sub / p.name).write_bytes(p.read_bytes())
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray, stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        extract_ray(folder, tmp_path / "feats", **FX, part_size=4)
    for name in ("a/000.png", "b/001.png"):  # keys img:a/000 and img:b/001 sort before img:a/01
        Image.new("RGB", (40, 40), "red").save(folder / name)
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray))
    fake_ray.clear()
    rep = extract_ray(folder, tmp_path / "feats", **FX, part_size=4)
    assert sum(fake_ray) == 4 and (rep.extracted, rep.already, rep.skipped, rep.total) == (4, 8, 0, 12)
    keys = rep.store.keys
    assert len(keys) == len(set(keys)) == 12 and set(keys) == {k for k, _ in list_images(folder)}


def test_rerun_of_an_interrupted_overwrite_keeps_its_parts(photos, tmp_path, fake_ray, monkeypatch):
    """`extract-ray --mode overwrite`, stopped, says "run the same command again to continue": the
    rerun must not delete the parts the stopped run made (it deletes those of earlier runs)."""
    FeatureStore.from_arrays(tmp_path / "feats", ["img:old"], np.ones((1, 4), np.float32),
                             metadata={"arch": "resnet50"})  # the store to replace, made otherwise
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray, stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4, mode="overwrite")
    assert fake_ray == [4, 4]
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray))
    fake_ray.clear()
    rep = extract_ray(photos, tmp_path / "feats", **FX, part_size=4, mode="overwrite")
    assert fake_ray == [2] and rep.extracted == 2 and rep.already == 8
    assert len(rep.store) == 10 and "img:old" not in rep.store and rep.store.metadata["arch"] == FX["arch"]
    assert not (tmp_path / "feats.ray-parts").exists()


def test_rerun_of_a_create_run_stopped_in_its_merge_finishes_it(photos, tmp_path, fake_ray, monkeypatch):
    """`extract-ray --mode create` killed after the merge committed the rows, before it closed the
    store: the rerun was refused ("already exists") though it is the run's own store."""
    from gensim_im2vec.store import RUN_FILE, unfinished_run

    merge = distributed.merge_stores

    def killed_before_close(target, sources, **kw):
        merged = merge(target, sources, **kw)
        (merged.path / RUN_FILE).write_text('{"mode": "extend"}')  # what the kill leaves: not closed
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "merge_stores", killed_before_close)
    with pytest.raises(KeyboardInterrupt):
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4, mode="create")
    assert unfinished_run(tmp_path / "feats") is not None and (tmp_path / "feats.ray-parts").exists()
    monkeypatch.setattr(distributed, "merge_stores", merge)
    fake_ray.clear()
    rep = extract_ray(photos, tmp_path / "feats", **FX, part_size=4, mode="create")
    assert fake_ray == [] and rep.extracted == 0 and rep.already == 10 and len(rep.store) == 10
    assert unfinished_run(tmp_path / "feats") is None and not (tmp_path / "feats.ray-parts").exists()
    with pytest.raises(FileExistsError, match="already exists"):  # a finished store is still refused
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4, mode="create")


def test_an_interrupted_run_on_other_images_is_not_continued(photos, tmp_path, fake_ray, monkeypatch):
    """An overwrite (or a create stopped in its merge) continues its parts only when the rerun is
    given the same images: with others (the same keys, other pictures) it kept the first run's
    rows under the new keys."""
    other = tmp_path / "other"
    rng = np.random.default_rng(1)
    for p in sorted(photos.rglob("*.png")):
        dst = other / p.relative_to(photos)
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(dst)
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray, stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        extract_ray(other, tmp_path / "feats", **FX, part_size=4, mode="overwrite")
    monkeypatch.setattr(distributed, "_run_parts", in_process(fake_ray))
    fake_ray.clear()
    rep = extract_ray(photos, tmp_path / "feats", **FX, part_size=4, mode="overwrite")
    assert rep.extracted == 10 and rep.already == 0, fake_ray  # was 2 and 8: the other pictures' rows kept
    clean = _single(photos, tmp_path / "clean")
    np.testing.assert_allclose(rep.store.vectors[[rep.store.key_to_index[k] for k in clean.store.keys]],
                               clean.store.vectors, atol=1e-4)

    from gensim_im2vec.store import RUN_FILE

    merge = distributed.merge_stores

    def killed_before_close(target, sources, **kw):
        merged = merge(target, sources, **kw)
        (merged.path / RUN_FILE).write_text('{"mode": "extend"}')
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "merge_stores", killed_before_close)
    with pytest.raises(KeyboardInterrupt):
        extract_ray(other, tmp_path / "made", **FX, part_size=4, mode="create")
    monkeypatch.setattr(distributed, "merge_stores", merge)
    with pytest.raises(FileExistsError, match="another list of images"):
        extract_ray(photos, tmp_path / "made", **FX, part_size=4, mode="create")


# ----------------------------------------------------------------------------- refused before any work


def test_bad_model_settings_refused_before_ray(photos, tmp_path, ray_not_reached, monkeypatch):
    """An unknown layer or missing weights end in one line before Ray starts (they used to kill
    every actor in turn, hundreds of lines of Ray tracebacks, and leave a parts folder)."""
    import torch.hub

    from gensim_im2vec.weights import WeightsNotAvailableError

    with pytest.raises(ValueError, match="layer: 'nope' is not a node of mobilenet_v3_small"):
        extract_ray(photos, tmp_path / "feats", **FX, layer="nope")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(WeightsNotAvailableError, match="Copy resnet18-f37072fd.pth"):
        extract_ray(photos, tmp_path / "feats", arch="resnet18", weights="IMAGENET1K_V1")
    assert not (tmp_path / "feats").exists() and not (tmp_path / "feats.ray-parts").exists()


def test_parts_of_other_settings_refused_before_ray(photos, tmp_path, ray_not_reached):
    """Parts an unfinished run made with another model: refused naming the field and the part, before
    Ray (they used to fail in the actors, as Ray tracebacks); mode='overwrite' replaces them."""
    part = tmp_path / "feats.ray-parts" / "part-000000"
    FeatureExtractor("resnet18", None, device="cpu", num_workers=0, progress=False).extract(
        list_images(photos)[:1], part, dtype="float32")
    with pytest.raises(StoreMismatchError) as e:
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    msg = str(e.value)
    assert "part-000000" in msg and "arch: store has 'resnet18', this run has 'mobilenet_v3_small'" in msg
    assert "unfinished extract_ray" in msg and (part / "metadata.json").exists()


def test_unreachable_address_refused_fast(photos, tmp_path, ray_not_reached, monkeypatch):
    """Ray retries an address that does not answer for minutes (measured: still waiting after 5 min);
    extract_ray says so within seconds, names the address, and leaves nothing behind."""
    # A port bound and not listening: refused at once, and held, so that no other process (a Ray of another test
    # starts many) listens there meanwhile and no connection of this one is given it as its own end (Linux
    # connects a socket to itself when that end is the port it asks for). It was bound, closed, then asked.
    # Not timed: Ray's own retry of minutes is never reached (ray_not_reached fails the test as Ray starts).
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(ConnectionError,
                           match=rf"cannot reach the Ray cluster at '127\.0\.0\.1:{port}' \(address\): Connection refused"):
            extract_ray(photos, tmp_path / "feats", **FX, address=f"127.0.0.1:{port}")
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
        with pytest.raises(ConnectionError, match=r"\(\$RAY_ADDRESS\): Connection refused.*unset \$RAY_ADDRESS"):
            extract_ray(photos, tmp_path / "feats", **FX)
    finally:
        s.close()
    with pytest.raises(ValueError, match=r"expected 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got '10\.0\.0\.1'"):
        extract_ray(photos, tmp_path / "feats", **FX, address="10.0.0.1")
    assert not (tmp_path / "feats").exists() and not (tmp_path / "feats.ray-parts").exists()


def test_second_driver_on_one_store_refused(photos, tmp_path, ray_not_reached):
    """Two drivers on one store used to run the same parts at once until an actor hit a part's lock
    (a Ray traceback after the start-up); the second is refused before it starts Ray."""
    from gensim_im2vec.store import _StoreLock

    parts = tmp_path / "feats.ray-parts"
    parts.mkdir()
    held = _StoreLock(parts)  # as the first driver holds it
    try:
        with pytest.raises(StoreLockedError, match=rf"another extract_ray \(pid {os.getpid()}\) is extracting into"):
            extract_ray(photos, tmp_path / "feats", **FX)
    finally:
        held.release()


# ----------------------------------------------------------------------------- the actors


def test_actor_reports_errors_and_waits_for_a_part_still_locked(photos, tmp_path):
    """The actor never raises (an error is its part's row, with the node), and it waits for a part
    store that a dying actor of a killed driver still holds, instead of failing the part."""
    import threading

    from gensim_im2vec.store import _StoreLock

    broken = distributed._PartExtractor({"arch": "mobilenet_v3_small", "weights": None, "layer": "nope"}, {},
                                        str(tmp_path / "p"))
    plan = tmp_path / "plan-x.json"
    plan.write_text('[["img:x", "x.png"]]')
    row = broken({"part": [0], "items": [str(plan)]})
    assert "could not be built on node" in str(row["error"][0]) and "layer: 'nope'" in str(row["error"][0])

    part = tmp_path / "p" / "part-000000"
    part.mkdir(parents=True)
    held = _StoreLock(part)
    threading.Timer(1.5, held.release).start()
    actor = distributed._PartExtractor({"arch": "mobilenet_v3_small", "weights": None, "device": "cpu",
                                        "batch_size": 2, "num_workers": 0, "progress": False}, {},
                                       str(tmp_path / "p"))
    plan = tmp_path / "plan.json"
    plan.write_text(distributed.json.dumps([[k, str(p)] for k, p in list_images(photos)[:2]]))
    try:
        row = actor({"part": [0], "items": [str(plan)]})
    finally:
        logging.getLogger("gensim_im2vec.features").removeFilter(distributed._not_part_skip_warning)
    assert not row["error"][0] and int(row["extracted"][0]) == 2
    assert (tmp_path / "p" / "part-000000.done.json").exists()


def test_failed_part_reported_in_lines_others_kept(photos, tmp_path, local_ray):
    """A part that fails (here: its store was damaged) ends the call with one error naming the part,
    the file and the node, after the other parts finished; they are kept and the rerun continues."""
    damaged = tmp_path / "feats.ray-parts" / "part-000001"
    damaged.mkdir(parents=True)
    (damaged / "metadata.json").write_text("{broken")
    with pytest.raises(Exception) as e:
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    assert type(e.value).__name__ == "PartsFailedError"
    msg = str(e.value)
    assert msg.startswith("1 of 3 part(s) failed; the others are finished and kept in")
    assert "part(s) 1: ValueError on node " in msg and "part-000001/metadata.json' is damaged" in msg
    assert "Traceback" not in msg and len(msg.splitlines()) == 3
    assert sorted(p.name for p in (tmp_path / "feats.ray-parts").glob("*.done.json")) == [
        "part-000000.done.json", "part-000002.done.json"]
    import shutil

    shutil.rmtree(damaged)  # the fix; the rerun does only that part
    rep = extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    assert rep.parts_run == 1 and rep.extracted == 4 and rep.already == 6 and len(rep.store) == 10


# ----------------------------------------------------------------------------- the command


def test_cli_has_the_options_of_extract(tmp_path, fake_ray):
    """`im2vec extract-ray` takes `extract`'s --keys, --prefix and --max-pixels (it had none of them), keys
    the files as `extract` does, and names skipped.json."""
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    folder = tmp_path / "yfcc"
    for i, (size, shard) in enumerate([(40, "d29/e7c"), (300, "d29/e7d"), (44, "a01/b02")]):
        (folder / shard).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (size, size), "blue").save(folder / shard / f"{1000 + i}_ab{i}_o.jpg")
    common = ["--arch", "mobilenet_v3_small", "--weights", "none", "--dtype", "float32", "--prefix", "p:",
              "--max-pixels", "10000"]
    outs = {}
    for cmd, extra in (("extract", ["--device", "cpu", "--num-workers", "0", "--no-progress"]), ("extract-ray", [])):
        for rule in ("stem", "flickr-id"):
            out = tmp_path / f"{cmd}-{rule}"
            result = CliRunner().invoke(main, [cmd, str(folder), "-o", str(out), "--keys", rule, *common, *extra])
            assert result.exit_code == 0, result.output
            assert f"skipped images and reasons: {out / 'skipped.json'}" in result.output
            outs[cmd, rule] = FeatureStore.open(out)
    assert sorted(outs["extract-ray", "flickr-id"].keys) == ["p:1000", "p:1002"]
    assert outs["extract-ray", "flickr-id"].skipped.keys() == {"p:1001"}  # 300 x 300 > 10000 pixels
    for rule in ("stem", "flickr-id"):
        a, b = outs["extract", rule], outs["extract-ray", rule]
        assert a.keys == b.keys and a.skipped == b.skipped
        np.testing.assert_allclose(np.asarray(b.vectors), np.asarray(a.vectors), rtol=1e-5, atol=1e-12)
