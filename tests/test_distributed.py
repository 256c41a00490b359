"""Ray Data extraction on a local Ray cluster: row for row the single-machine extractor's
features; finished parts are not redone; a part cut short by a dead worker is completed;
stores from different models are refused at merge."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from PIL import Image  # noqa: E402

from gensim_im2vec.distributed import extract_ray, merge_stores, plan_parts  # noqa: E402
from gensim_im2vec.features import FeatureExtractor, list_images  # noqa: E402
from gensim_im2vec.store import FeatureStore, StoreMismatchError  # noqa: E402

FX = {"arch": "mobilenet_v3_small", "weights": None, "batch_size": 2}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray") / "photos"
    rng = np.random.default_rng(0)
    for i in range(11):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (36 + i, 44, 3), dtype=np.uint8)).save(sub / f"{i:02d}.png")
    (root / "b" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_matches_single_machine_and_resumes(photos, tmp_path, local_ray):
    single = FeatureExtractor(**FX, device="cpu", num_workers=0, progress=False).extract(photos, tmp_path / "single")
    # a worker died in part 1 after committing two of its images: its store has those rows, no marker
    pairs = list_images(photos)
    parts = plan_parts(pairs, 4)
    assert [len(p) for p in parts] == [4, 4, 4]
    partial = tmp_path / "feats.ray-parts" / "part-000001"
    fx = FeatureExtractor(**FX, device="cpu", num_workers=0, progress=False)
    fx.extract(parts[1][:2], partial)

    rep = extract_ray(photos, tmp_path / "feats", **FX, part_size=4, keep_parts=True)
    assert rep.parts == 3 and rep.parts_run == 3 and rep.device == "cpu" and rep.actors == 2
    assert rep.extracted == 11 - 2 and rep.already == 2 and rep.skipped == 1
    assert rep.extracted + rep.already + rep.skipped == rep.total == 12
    # the actors' time by stage, summed over the parts: at most their wall time, the model's share in it
    assert list(rep.stage_seconds) == ["input", "model", "write", "other"] and rep.stage_seconds["model"] > 0
    assert sum(rep.stage_seconds.values()) <= sum(rep.part_seconds) + 1e-6
    assert "; actors' time: input " in rep.summary()
    assert rep.summary().startswith("12 images: 9 extracted") and "1 skipped (not an image: 1)" in rep.summary()
    store = rep.store
    # row for row the single-machine store: same keys in the same order, same fp16 bits
    assert store.keys == single.store.keys and len(store) == 11
    np.testing.assert_array_equal(np.asarray(store.vectors), np.asarray(single.store.vectors))
    assert store.skipped == single.store.skipped and "img:b/broken" in store.skipped
    ident = ("arch", "weights", "layer", "dim", "dtype", "preprocessing")
    assert {k: store.metadata[k] for k in ident} == {k: single.store.metadata[k] for k in ident}

    # rerun: every part has its marker, nothing goes to Ray, the store is unchanged
    again = extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    assert again.parts_run == 0 and again.extracted == 0 and again.already == 11 and again.skipped == 1
    assert again.device == "none" and again.summary().startswith("12 images: nothing left to extract")
    assert again.stage_seconds == {} and "actors' time" not in again.summary()
    assert again.store.keys == store.keys
    assert not (tmp_path / "feats.ray-parts").exists()  # removed after a merge without keep_parts


def test_merge_by_key_and_refuse_other_models(tmp_path):
    rng = np.random.default_rng(1)
    a = FeatureStore.from_arrays(tmp_path / "a", ["img:1", "img:2"], rng.random((2, 4), dtype=np.float32),
                                 metadata={"arch": "resnet50", "weights": "IMAGENET1K_V1"}, dtype="float16")
    b = FeatureStore.from_arrays(tmp_path / "b", ["img:2", "img:3"], rng.random((2, 4), dtype=np.float32),
                                 metadata={"arch": "resnet50", "weights": "IMAGENET1K_V1"}, dtype="float16")
    merged = merge_stores(tmp_path / "m", [a, b])
    assert merged.keys == ["img:1", "img:2", "img:3"]
    np.testing.assert_array_equal(merged.vectors[1], a.vectors[1])  # first occurrence wins
    np.testing.assert_array_equal(merged.vectors[2], b.vectors[1])
    other = FeatureStore.from_arrays(tmp_path / "c", ["img:9"], rng.random((1, 4), dtype=np.float32),
                                     metadata={"arch": "resnet50", "weights": "IMAGENET1K_V2"}, dtype="float16")
    with pytest.raises(StoreMismatchError, match="weights"):
        merge_stores(tmp_path / "n", [a, other])
    with pytest.raises(StoreMismatchError):  # nor into a target made by another model
        merge_stores(tmp_path / "m", [other])
    assert FeatureStore.open(tmp_path / "m").keys == ["img:1", "img:2", "img:3"]
    with pytest.raises(ValueError, match="part_size"):
        plan_parts([("img:1", "x")], 0)
    with pytest.raises(ValueError, match="no source"):
        merge_stores(tmp_path / "z", [])


# ----------------------------------------------------------------------------- checks before any work


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("mode", ["extend", "create", "overwrite"])
def test_user_folder_as_store_refused_before_any_work(photos, tmp_path, ray_not_reached, mode):
    mine = tmp_path / "feats"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    (mine / "sub" / "table.csv").write_text("a,b\n1,2\n")
    before = _snapshot(mine)
    with pytest.raises(FileExistsError) as e:
        extract_ray(photos, mine, **FX, part_size=4, mode=mode)
    assert str(mine) in str(e.value) and "notes.txt" in str(e.value) and "Choose a new or empty folder" in str(e.value)
    assert _snapshot(mine) == before  # byte for byte
    assert not (tmp_path / "feats.ray-parts").exists()


def test_target_refused_up_front_exactly_as_the_store_writer_refuses_it(photos, tmp_path, ray_not_reached):
    """extract_ray checks its target with the store writer's own check (store.check_store_folder),
    so a folder the writer would refuse at the merge (a file of the user's) is refused before any
    work. (Hidden files such as .DS_Store are ignored by both, as by every command that writes a
    folder.)"""
    mine = tmp_path / "feats"
    mine.mkdir()
    (mine / "notes.txt").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match=r"not a feature store: it holds 'notes\.txt'"):
        extract_ray(photos, mine, **FX, part_size=4)
    with pytest.raises(FileExistsError, match="not a feature store"):
        FeatureStore.from_arrays(mine, ["img:x"], np.zeros((1, 4), np.float32))
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_store_of_other_features_refused_before_any_work(photos, tmp_path, ray_not_reached):
    rng = np.random.default_rng(2)
    other = FeatureStore.from_arrays(tmp_path / "feats", ["img:x"], rng.random((1, 4), dtype=np.float32),
                                     metadata={"arch": "resnet50", "weights": "IMAGENET1K_V1"}, dtype="float16")
    before = _snapshot(other.path)
    with pytest.raises(StoreMismatchError, match="arch"):
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    assert _snapshot(other.path) == before
    assert not (tmp_path / "feats.ray-parts").exists()


@pytest.mark.parametrize("mode", ["extend", "overwrite"])
@pytest.mark.parametrize("theirs", ["notes.txt", "part-000000/notes.txt"])
def test_user_parts_folder_refused_not_deleted(photos, tmp_path, ray_not_reached, mode, theirs):
    parts = tmp_path / "feats.ray-parts"
    (parts / theirs).parent.mkdir(parents=True, exist_ok=True)
    (parts / theirs).write_text("mine")
    before = _snapshot(parts)
    with pytest.raises(FileExistsError) as e:
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4, mode=mode)
    assert str(parts) in str(e.value) and theirs in str(e.value) and "another store path" in str(e.value)
    assert _snapshot(parts) == before
    assert not (tmp_path / "feats").exists()


def test_own_parts_folder_passes_the_checks(photos, tmp_path, ray_not_reached):
    # what an interrupted run leaves: a finished part, a part cut short, an actor's temporary file
    parts = tmp_path / "feats.ray-parts"
    FeatureExtractor(**FX, device="cpu", num_workers=0, progress=False).extract(
        [("img:a/01", photos / "a" / "01.png")], parts / "part-000000")
    (parts / "part-000000.done.json").write_text('{"keys": ["img:a/01"]}')
    (parts / "part-000001" / "shards").mkdir(parents=True)
    (parts / ".part-000001.done.json.tmp-1-2").write_text("{")
    with pytest.raises(AssertionError, match="starting Ray"):  # past the checks, kept for the resume
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4)
    assert (parts / "part-000000.done.json").exists()
    with pytest.raises(AssertionError, match="starting Ray"):  # overwrite deletes its own parts
        extract_ray(photos, tmp_path / "feats", **FX, part_size=4, mode="overwrite")
    assert not parts.exists()  # and a parts folder left without parts is removed


def test_cli_refuses_user_parts_folder(photos, tmp_path, ray_not_reached):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    (tmp_path / "feats.ray-parts").mkdir()
    (tmp_path / "feats.ray-parts" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["extract-ray", str(photos), "-o", str(tmp_path / "feats"), "--weights", "none",
                                       "--arch", "mobilenet_v3_small", "--mode", "overwrite"])
    assert result.exit_code == 1, result.output  # a clean error, no traceback
    assert "Traceback" not in result.output
    assert "feats.ray-parts" in result.output and "notes.txt" in result.output
    assert (tmp_path / "feats.ray-parts" / "notes.txt").read_text() == "mine"
