"""A folder's images listed one folder at a time (`iter_images`): the pairs and the order of
`list_images` as it sorted them, without a list, and what `extract_ray` plans a folder with."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from gensim_im2vec import distributed, features
from gensim_im2vec.features import (
    IMAGE_EXTENSIONS,
    images_in,
    images_under,
    iter_images,
    list_images,
)
from gensim_im2vec.keys import image_key, rule_key

# names whose keys sort otherwise than their folders would one level at a time: " " and "-" and "."
# sort before "/", "a b" and "a%20b" encode alike, "é" composed and decomposed, a surrogate-escaped byte
NAMES = ["a", "a b", "a%20b", "a-b", "a.b", "b", "B", "é", "e\u0301", "10", "9", "123_abc_o", "caf\udce9", "🐱"]


def _touch(path: str) -> None:
    os.makedirs(os.fsencode(os.path.dirname(path)), exist_ok=True)
    open(os.fsencode(path), "wb").close()


@pytest.fixture
def tree(tmp_path):
    """Every name as a folder holding every name as a file (one ending each), files of every name at
    the top, hidden files and folders, other endings, a link to a folder and a loop."""
    root = tmp_path / "imgs"
    exts = [".jpg", ".PNG", ".jpeg", ".gif"]
    files = [n for n in NAMES if n != "a%20b"]  # (its key is "a b"'s)
    for i, d in enumerate(NAMES):
        for j, f in enumerate(files):  # "a%20b/" holds other names: its keys are "a b/"'s folder's too
            _touch(os.path.join(root, d, f + ("_2" if d == "a%20b" else "") + exts[(i + j) % len(exts)]))
        _touch(os.path.join(root, d, ".hidden.jpg"))
        _touch(os.path.join(root, d, f"notes{i}.txt"))
    for f in files:
        _touch(os.path.join(root, "top " + f + ".webp"))
    _touch(os.path.join(root, ".cache", "x.jpg"))
    _touch(os.path.join(root, "deep", "er", "est", "x.jpg"))
    os.symlink(os.path.join(root, "deep"), os.path.join(root, "zlink"))  # the same folder again: entered once
    os.symlink("..", os.path.join(root, "deep", "er", "up"))  # a loop
    return root


def _reference(root, rule: str, extensions=IMAGE_EXTENSIONS):
    """What list_images returned before it walked a folder at a time: every file keyed, then one sort
    by the path keys (symlinked folders entered once, in the order os.walk meets them)."""
    seen, found = set(), []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in filenames:
            ext = os.path.splitext(fn)[1].lower()
            if fn.startswith(".") or (extensions is not None and ext not in extensions):
                continue
            p = Path(dirpath) / fn
            found.append((rule_key(p, root, rule, "img:"), str(p), image_key(p, root, "")))
    return [(k, p) for k, p, _ in sorted(found, key=lambda t: t[2])]


@pytest.mark.parametrize("extensions", [IMAGE_EXTENSIONS, None])
def test_the_pairs_and_their_order_are_those_of_one_sort_of_every_path_key(tree, extensions):
    got = list(iter_images(tree, extensions=extensions))
    want = _reference(tree, "path", extensions)
    assert got == want
    assert len(got) == (len(NAMES) + 1) * (len(NAMES) - 1) + 1 + (len(NAMES) if extensions is None else 0)
    # the order is not one level at a time: "a b/…" and "a%20b/…" interleave, "a-b/…" comes before "a/…"
    keys = [k for k, _ in got]
    assert keys == sorted(keys)
    assert keys.index("img:a-b/a") < keys.index("img:a/a")
    assert keys.index("img:a%20b/a") < keys.index("img:a%20b/a_2") < keys.index("img:a%20b/b")
    assert list_images(tree, extensions=extensions) == [(k, Path(p)) for k, p in want]


@pytest.mark.parametrize("root_as", ["relative", "dot"])
def test_paths_are_named_as_list_images_names_them_from_a_relative_root(tree, monkeypatch, root_as):
    monkeypatch.chdir(tree.parent if root_as == "relative" else tree)
    root = "imgs" if root_as == "relative" else "."
    got = list(iter_images(root))
    assert got == _reference(root, "path")
    assert got[0][1] == ("imgs/10/10.PNG" if root_as == "relative" else "10/10.PNG")  # as str(Path(folder) / name)


def test_files_of_other_folders_are_keyed_by_stem_and_flickr_id_in_path_order(tmp_path):
    root = tmp_path / "photos"
    for name in ("b/300_x_o.jpg", "a b/200_y.jpg", "a/100_z.png", "c/d/400_w.jpg"):
        _touch(os.path.join(root, name))
    assert list(iter_images(root, key_rule="flickr-id")) == _reference(root, "flickr-id")
    assert [k for k, _ in iter_images(root, key_rule="flickr-id")] == ["img:200", "img:100", "img:300", "img:400"]
    assert list(iter_images(root, key_rule="stem")) == _reference(root, "stem")


def test_one_folder_is_read_at_a_time(tmp_path, monkeypatch):
    """After one pass over the folders (which name owns each: `_folder_owners`), the first pair comes
    when the folders on the way to it were listed, not the whole tree."""
    root = tmp_path / "shards"
    for shard in range(20):
        _touch(os.path.join(root, f"{shard:05d}", "000.jpg"))
    read = []
    scandir = os.scandir
    monkeypatch.setattr(features.os, "scandir", lambda p: read.append(os.fspath(p)) or scandir(p))
    pairs = iter_images(root)
    assert not read  # nothing is read until the first pair is asked for
    assert next(pairs) == ("img:00000/000", os.path.join(root, "00000", "000.jpg"))
    assert len(read) == 21 + 2  # the pass over the folders, then the root and its first shard
    assert len(list(pairs)) == 19 and len(read) == 21 + 21


@pytest.mark.parametrize("case", ["alias after", "alias inside"])
def test_a_folder_of_two_names_is_keyed_by_the_name_a_walk_in_name_order_meets_first(tmp_path, case):
    """A link sorts otherwise among the keys ("photos-old/" before "photos/") than among the names
    ("photos" before "photos-old"): the files keep the keys list_images gave them before it walked
    in key order (the name met first in the order of the names), and the plan's digest with them."""
    root = tmp_path / "imgs"
    if case == "alias after":
        _touch(os.path.join(root, "photos", "x.jpg"))
        os.symlink(os.path.join(root, "photos"), os.path.join(root, "photos-old"))
        want = ["img:photos/x"]
    else:  # "a b" is walked before "a%20b" by name; its link "sub" reaches "a%20b" first
        _touch(os.path.join(root, "a b", "y.jpg"))
        _touch(os.path.join(root, "a%20b", "x.jpg"))
        os.symlink(os.path.join("..", "a%20b"), os.path.join(root, "a b", "sub"))
        want = ["img:a%20b/sub/x", "img:a%20b/y"]
    assert [k for k, _ in iter_images(root)] == [k for k, _ in _reference(root, "path")] == want
    folder = distributed._Images(root, "img:")
    listed = distributed._Images(_reference(root, "path"), "img:")
    assert folder.scan(tmp_path / "p1")[0] == listed.scan(tmp_path / "p2")[0]


def test_a_folder_that_cannot_be_entered_is_left_out_with_a_warning(tmp_path, monkeypatch, caplog):
    root = tmp_path / "imgs"
    for name in ("a/x.jpg", "b/sub/y.jpg", "c/z.jpg"):
        _touch(os.path.join(root, name))
    locked = os.path.join(root, "b", "sub")
    stat = os.stat

    def no_entry(path, *args, **kwargs):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(features.os, "stat", no_entry)
    with caplog.at_level("WARNING"):
        assert [k for k, _ in iter_images(root)] == ["img:a/x", "img:c/z"]
    assert f"{locked}: folder not read (Permission denied)" in caplog.text


def test_keys_of_two_files_are_refused_after_the_last_pair_naming_both(tmp_path):
    root = tmp_path / "imgs"
    for name in ("a b/x.jpg", "a%20b/x.png", "c/y.jpg", "c/y.gif"):  # one folder key; one file key
        _touch(os.path.join(root, name))
    pairs = iter_images(root)
    assert next(pairs)[0] == "img:a%20b/x"
    with pytest.raises(ValueError) as e:
        list(pairs)
    msg = str(e.value)
    assert msg.startswith(f"2 key(s) under {str(root)!r} belong to more than one file ('img:a%20b/x': ")
    for name in ("a b/x.jpg", "a%20b/x.png", "c/y.jpg", "c/y.gif"):
        assert os.path.join(root, name) in msg
    with pytest.raises(ValueError, match="belong to more than one file"):
        list_images(root)


def test_stems_of_other_folders_are_found_by_digest_and_confirmed_by_the_keys(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    for name in ("a/x.jpg", "b/y.jpg", "c/x.png", "d/z.jpg"):
        _touch(os.path.join(root, name))
    with pytest.raises(ValueError) as e:
        list(iter_images(root, key_rule="stem"))
    assert "1 key(s)" in str(e.value)
    assert f"'img:x': {os.path.join(root, 'a/x.jpg')} and {os.path.join(root, 'c/x.png')}" in str(e.value)
    # every digest the same: the second walk compares the keys, and only x is two files
    monkeypatch.setattr(features, "_digest64", lambda key: 7)
    with pytest.raises(ValueError) as e:
        list(iter_images(root, key_rule="stem"))
    assert str(e.value).startswith("1 key(s)") and "'img:y'" not in str(e.value)
    os.remove(os.path.join(root, "c/x.png"))
    assert [k for k, _ in iter_images(root, key_rule="stem")] == ["img:x", "img:y", "img:z"]


def test_files_flickr_cannot_name_are_refused_after_the_last_pair(tmp_path):
    root = tmp_path / "imgs"
    for name in ("a/100_x.jpg", "b/holiday.jpg", "b/holiday.png", "c/200_y.jpg"):
        _touch(os.path.join(root, name))
    pairs = iter_images(root, key_rule="flickr-id")
    assert next(pairs)[0] == "img:100"
    with pytest.raises(ValueError, match=r"^2 files under .* have no key by --keys flickr-id") as e:
        list(pairs)
    assert os.path.join(root, "b/holiday.png") in str(e.value)


def test_a_folder_without_images_is_refused_when_read(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    pairs = images_in(tmp_path / "empty", "img:")  # the folder exists: nothing said yet
    with pytest.raises(ValueError, match="no image files under"):
        list(pairs)
    with pytest.raises(NotADirectoryError):
        iter_images(tmp_path / "missing")  # said when called
    with pytest.raises(ValueError, match="key_rule"):
        iter_images(tmp_path / "empty", key_rule="name")


def test_extract_ray_plans_a_folder_from_its_walk_with_the_digest_of_its_listing(tree, tmp_path):
    """A folder is spooled as a generator is (no list of its pairs), and planned as its listing was:
    the same images digest (a run interrupted before this change goes on) and the same positions."""
    folder = distributed._Images(tree, "img:")
    assert folder._seq is None
    listed = distributed._Images(images_under(tree, "img:"), "img:")
    d1, i1 = folder.scan(tmp_path / "plan1")
    d2, i2 = listed.scan(tmp_path / "plan2")
    assert d1 == d2 and folder.n == listed.n == len(list_images(tree))
    keys = [k for k, _ in listed]
    assert i1.lookup(keys).tolist() == i2.lookup(keys).tolist() == list(range(len(keys)))
    assert list(folder) == list(listed)  # read back from the spool
    assert (tmp_path / "plan1" / distributed._SPOOL).exists()


def test_planning_a_folder_holds_no_list_of_its_pairs(tmp_path, monkeypatch):
    root = tmp_path / "shards"
    for shard in range(50):
        for i in range(60):
            _touch(os.path.join(root, f"{shard:05d}", f"{shard:05d}{i:04d}.jpg"))
    monkeypatch.setattr(distributed, "_SCAN_CHUNK", 100)
    tracemalloc.start()
    try:
        pairs = images_under(root, "img:")
        listed = tracemalloc.get_traced_memory()[0]
        del pairs
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        images = distributed._Images(root, "img:")
        images.scan(tmp_path / "plan")
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert images.n == 3000
    # a folder's names and a chunk of 100 pairs, not 3,000 pairs (≈ 0.5 MB as a list)
    assert listed > 400_000 and peak < listed / 4, (listed, peak)


def test_the_command_line_keys_a_folder_by_stem_a_folder_at_a_time(tmp_path):
    """`im2vec extract(-ray) --keys stem` hands the walk on (extract_ray spools it, no list), and a clash
    found at its end is the KeyRuleError the command words as an error of --keys."""
    from gensim_im2vec import cli

    root = tmp_path / "imgs"
    for name in ("a/x.jpg", "b/y.jpg"):
        _touch(os.path.join(root, name))
    pairs = cli._keyed_files(str(root), "stem", "img:")
    assert not isinstance(pairs, (list, tuple)) and list(pairs) == _reference(root, "stem")
    assert distributed._Images(cli._keyed_files(str(root), "stem", "img:"), "img:")._seq is None
    _touch(os.path.join(root, "c", "x.png"))
    with pytest.raises(features.KeyRuleError) as e:
        list(cli._keyed_files(str(root), "stem", "img:"))
    assert cli._keys_error(e.value, "stem").param_hint == "'--keys'"
    assert cli._keys_error(e.value, "path").exit_code == 1  # the default rule: an error of the folder
