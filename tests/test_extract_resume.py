"""The single-machine `im2vec extract` run again after an interruption, as `extract-ray` is: an
interrupted ``--mode overwrite`` or ``--mode create`` continues (kill -9 after a shard, or during the
final append), ``--retry-skipped/--no-retry-skipped`` as in extract-ray, and two files of one key
named with the ways out (issue: leftovers of the single-machine extraction)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gensim_im2vec
from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore, FeatureStoreWriter, StoreMismatchError, unfinished_run

pytest.importorskip("torchvision")

N = 12  # images; shards of 4 (batches of 2): the first shard commits a third of them


def _images(folder: Path, n: int = N) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (16, 16), (20 * i % 256, (7 * i) % 256, 40)).save(folder / f"{i:03d}.png")
    return folder


def _args(imgs: Path, store: Path, *extra: str) -> list[str]:
    return ["extract", str(imgs), "-o", str(store), "--weights", "none", "--arch", "mobilenet_v3_small",
            "--device", "cpu", "--num-workers", "0", "--batch-size", "2", "--shard-size", "4", "--dtype", "float32",
            "--no-progress", *extra]


def _cli(args: list[str]):
    result = CliRunner().invoke(main, args)
    return result.exit_code, " ".join(result.output.split())


def _counts(summary: str) -> tuple[int, int]:
    """(extracted, already stored) of an `im2vec extract` summary."""
    m = re.search(r"(\d+) extracted in .*?, (\d+) already stored", summary)
    assert m, summary
    return int(m.group(1)), int(m.group(2))


# the command in a child process that kills itself with SIGKILL at `where` (no handler runs, no message)
KILL = textwrap.dedent(
    """
    import os, signal, sys
    from gensim_im2vec.store import FeatureStoreWriter
    from gensim_im2vec.cli import main
    where, args = sys.argv[1], sys.argv[2:]
    commit, commit_metadata = FeatureStoreWriter._commit, FeatureStoreWriter._commit_metadata
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    def after_first_shard(self, path, record):
        commit(self, path, record)
        die()
    def final_append(self, meta):
        if where == "in the final append":  # rows appended to features.npy, their count not committed
            die()
        commit_metadata(self, meta)
        die()  # "after the final append": the store is complete, the run not marked finished
    if where == "after the first shard":
        FeatureStoreWriter._commit = after_first_shard
    else:
        FeatureStoreWriter._commit_metadata = final_append
    main(args, prog_name="im2vec")
    """
)


def _killed(where: str, args: list[str]) -> None:
    package_root = str(Path(gensim_im2vec.__file__).resolve().parent.parent)  # the package under test
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=package_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", KILL, where, *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def imgs(tmp_path_factory):
    return _images(tmp_path_factory.mktemp("extract_resume") / "imgs")


@pytest.fixture(scope="module")
def clean(imgs, tmp_path_factory):
    """The store an uninterrupted run makes."""
    store = tmp_path_factory.mktemp("clean") / "store"
    code, out = _cli(_args(imgs, store))
    assert code == 0, out
    return FeatureStore.open(store, mmap=False)


# ----------------------------------------------------------------------------- 1. --mode overwrite


def test_an_interrupted_overwrite_continues_on_the_rerun_keeping_its_own_rows(imgs, clean, tmp_path):
    store = tmp_path / "store"
    old = _images(tmp_path / "old", N + 1)  # the old store: one image more, which the overwrite drops
    assert _cli(_args(old, store))[0] == 0 and "img:012" in FeatureStore.open(store)

    args = _args(imgs, store, "--mode", "overwrite")
    _killed("after the first shard", args)  # kill -9 once the overwrite committed its first shard
    assert unfinished_run(store)["mode"] == "overwrite"
    code, out = _cli(args)  # the same command again
    assert code == 0, out
    assert _counts(out) == (N - 4, 4), out  # was (12, 0): the overwrite started again from zero
    s = FeatureStore.open(store)
    assert s.keys == clean.keys and "img:012" not in s  # the old store's rows were not kept
    np.testing.assert_array_equal(s.vectors, clean.vectors)
    assert unfinished_run(store) is None and not list((store / "shards").iterdir())

    code, out = _cli(args)  # a finished overwrite run again: it replaces the store afresh
    assert code == 0 and _counts(out) == (N, 0), out


def test_an_interrupted_overwrite_with_other_settings_starts_afresh(imgs, tmp_path):
    store = tmp_path / "store"
    _killed("after the first shard", _args(imgs, store, "--mode", "overwrite"))
    code, out = _cli(_args(imgs, store, "--mode", "overwrite", "--dtype", "float16"))
    assert code == 0 and _counts(out) == (N, 0), out  # float32 rows of the other run are not mixed in
    assert FeatureStore.open(store).metadata["dtype"] == "float16"


def test_an_interrupted_run_on_other_images_is_not_continued(imgs, clean, tmp_path):
    """The rerun that continues an interrupted create/overwrite must be given the same images: with
    others (the same keys, other files) overwrite kept the first run's rows under the new keys, and
    counted them as already stored."""
    other = tmp_path / "other"
    for i, p in enumerate(sorted(imgs.iterdir())):  # the same names, other pictures
        from PIL import Image

        other.mkdir(exist_ok=True)
        Image.new("RGB", (16, 16), (250 - 20 * i % 256, 90, (13 * i) % 256)).save(other / p.name)
    store = tmp_path / "store"
    _killed("after the first shard", _args(other, store, "--mode", "overwrite"))
    code, out = _cli(_args(imgs, store, "--mode", "overwrite"))
    assert code == 0 and _counts(out) == (N, 0), out  # was (8, 4): 4 rows of the other pictures kept
    np.testing.assert_array_equal(FeatureStore.open(store).vectors, clean.vectors)

    store2 = tmp_path / "store2"
    _killed("after the first shard", _args(other, store2, "--mode", "create"))
    code, out = _cli(_args(imgs, store2, "--mode", "create"))
    assert code == 1 and "of another list of images" in out and "mode='overwrite'" not in out, out
    assert "--mode overwrite" in out, out
    assert unfinished_run(store2) is not None  # refused before anything was written


# ----------------------------------------------------------------------------- 2. --mode create


@pytest.mark.parametrize("where,kept", [("after the first shard", 4), ("in the final append", N),
                                        ("after the final append", N)])
def test_an_interrupted_create_continues_on_the_rerun(imgs, clean, tmp_path, where, kept):
    store = tmp_path / "store"
    args = _args(imgs, store, "--mode", "create", "--shard-size", "4" if where == "after the first shard" else "64")
    _killed(where, args)
    assert store.is_dir() and unfinished_run(store)["mode"] == "create"
    code, out = _cli(args)  # was: "Error: feature store ... already exists"
    assert code == 0, out
    assert _counts(out) == (N - kept, kept), out  # the rows written before the kill are kept
    s = FeatureStore.open(store)
    assert s.keys == clean.keys
    np.testing.assert_array_equal(s.vectors, clean.vectors)
    assert unfinished_run(store) is None
    code, out = _cli(args)  # a finished store is still refused by --mode create
    assert code == 1 and "already exists; pass --mode extend" in out, out


def test_an_interrupted_create_with_other_settings_says_what_to_do(imgs, tmp_path):
    store = tmp_path / "store"
    _killed("after the first shard", _args(imgs, store, "--mode", "create"))
    code, out = _cli(_args(imgs, store, "--mode", "create", "--dtype", "float16"))
    assert code == 1, out
    assert "is the output of the unfinished extraction (--mode create, started" in out, out
    assert "dtype: store has 'float32', this run has 'float16'" in out, out
    assert "Run that extraction again with its settings to finish it, pass --mode overwrite to replace it" in out
    from gensim_im2vec.features import extract

    with pytest.raises(StoreMismatchError, match=r"(?s)unfinished extraction \(mode='create', started .*dtype"):
        extract(imgs, store, arch="mobilenet_v3_small", weights=None, device="cpu", num_workers=0, batch_size=2,
                dtype="float16", mode="create", progress=False)
    assert len(FeatureStore.consolidate(store)) == 4  # nothing lost; folding the rows in keeps the run unfinished
    assert unfinished_run(store) is not None
    code, out = _cli(_args(imgs, store, "--mode", "create"))
    assert code == 0 and _counts(out) == (N - 4, 4), out


def test_an_unfinished_store_warns_on_open_and_plain_writers_keep_their_modes(tmp_path, caplog):
    d = tmp_path / "feats"
    keys = [f"img:{i}" for i in range(4)]
    vecs = np.random.default_rng(0).random((4, 8), dtype=np.float32) + 0.1
    w = FeatureStore.create(d, dim=8, dtype="float32", shard_size=2)
    w.write(keys[:2], vecs[:2])
    w.abort()  # interrupted: its shard is committed, the run is not finished
    with caplog.at_level("WARNING", logger="gensim_im2vec.store"):
        FeatureStore.open(d)
    assert "this store is the unfinished extraction (mode='create'" in caplog.text
    assert "holds the 2 rows that extraction stored so far; run it again" in caplog.text
    with pytest.raises(FileExistsError, match="already exists"):  # without resume=True: as before
        FeatureStore.create(d, dim=8, dtype="float32")
    with FeatureStoreWriter(d, dim=8, dtype="float32", mode="create", resume=True) as w:
        assert w.done_keys == set(keys[:2])
        w.write(keys[2:], vecs[2:])
    assert FeatureStore.open(d).keys == keys and unfinished_run(d) is None
    w = FeatureStore.create(d, dim=8, dtype="float32", mode="overwrite", shard_size=2)
    w.write(keys[:2], vecs[:2])
    w.abort()
    assert FeatureStore.from_arrays(d, keys, vecs, mode="overwrite").keys == keys  # replaced, not continued


# ----------------------------------------------------------------------------- 3. --retry-skipped


def test_extract_takes_retry_skipped_as_extract_ray_does(tmp_path):
    imgs = _images(tmp_path / "imgs", 3)
    (imgs / "bad.png").write_bytes(b"")  # skipped: empty file
    store = tmp_path / "store"
    code, out = _cli(_args(imgs, store))
    assert code == 0 and FeatureStore.open(store).skipped == {"img:bad": "empty file (0 bytes)"}, out
    _images(tmp_path / "fixed", 1)
    os.replace(tmp_path / "fixed" / "000.png", imgs / "bad.png")  # the file is fixed
    code, out = _cli(_args(imgs, store, "--no-retry-skipped"))
    assert code == 0 and _counts(out) == (0, 3), out
    assert "1 skipped before and not tried again (--retry-skipped tries them)" in out, out
    code, out = _cli(_args(imgs, store))  # the default tries it again, as extract-ray's
    assert code == 0 and _counts(out) == (1, 3), out
    assert "after 1 image(s) skipped before were tried again (--no-retry-skipped leaves them)" in out, out
    s = FeatureStore.open(store)
    assert "img:bad" in s and s.skipped == {}

    options = {c: {p.name: p for p in main.commands[c].params} for c in ("extract", "extract-ray")}
    mine, ray = options["extract"]["retry_skipped"], options["extract-ray"]["retry_skipped"]
    assert mine.opts == ray.opts and mine.secondary_opts == ray.secondary_opts
    assert mine.library == ray.library  # the same library default (True)
    assert ray.help.startswith(mine.help)


# ----------------------------------------------------------------------------- 4. two files, one key


def test_two_files_of_one_key_name_the_ways_out(tmp_path):
    from PIL import Image

    from gensim_im2vec.features import list_images

    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("RGB", (16, 16), "red").save(d / "x.png")
    Image.new("RGB", (16, 16), "blue").save(d / "x.jpg")
    with pytest.raises(ValueError) as e:
        list_images(d)
    msg = str(e.value)
    assert "'img:x'" in msg and "x.jpg and" in msg and "x.png" in msg, msg
    assert "From the shell, rename or move one file of each pair" in msg, msg
    assert "--keys path included" in msg, msg  # --keys path drops the extension too: no way out there
    assert "From Python, pass the images as explicit (key, path) pairs instead of the folder" in msg, msg
    for rule in ("path", "stem", "flickr-id"):
        result = CliRunner().invoke(main, _args(d, tmp_path / "s", "--keys", rule))
        # no traceback; --keys stem|flickr-id: an error of '--keys' (exit 2), by flickr-id x.jpg / x.png have no key
        assert result.exit_code == (1 if rule == "path" else 2), result.output
        assert isinstance(result.exception, SystemExit), result.output
        said = "not named as Flickr names photos" if rule == "flickr-id" else "rename or move one file"
        assert "Error: " in result.output and said in " ".join(result.output.split()), result.output
    assert not (tmp_path / "s").exists()


def test_extract_ray_names_two_files_of_one_key_without_a_traceback(tmp_path):
    """As extract: ``--keys stem|flickr-id`` on two files of one key ended in a traceback."""
    pytest.importorskip("ray", reason="Ray Data is an optional dependency (pip install 'gensim-im2vec[scale]')")
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("RGB", (16, 16), "red").save(d / "x.png")
    Image.new("RGB", (16, 16), "blue").save(d / "x.jpg")
    for rule in ("path", "stem", "flickr-id"):
        result = CliRunner().invoke(main, ["extract-ray", str(d), "-o", str(tmp_path / "s"), "--keys", rule])
        assert result.exit_code == (1 if rule == "path" else 2), result.output
        assert isinstance(result.exception, SystemExit), result.output
        said = "not named as Flickr names photos" if rule == "flickr-id" else "rename or move one file"
        assert "Error: " in result.output and said in " ".join(result.output.split()), result.output
