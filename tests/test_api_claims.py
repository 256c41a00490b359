"""The Python API against its own docstrings: each test is a documented claim that the code did not
keep (a limit stated but not checked, an argument form the hint allows that went wrong)."""

from __future__ import annotations

import numpy as np
import pytest

from gensim_im2vec import report


@pytest.mark.parametrize("size", [0, -5, 4, 2.5, "64"])
def test_make_thumbnail_refuses_a_size_it_documents_as_too_small(tmp_path, size):
    """``size : int, longest side in pixels (>= 8)``: 0, negative or a str returned False, the
    answer for an unreadable `src`, and 2.5 wrote a 2-pixel thumbnail."""
    pytest.importorskip("PIL")
    from PIL import Image

    src = tmp_path / "a.png"
    Image.new("RGB", (32, 16)).save(src)
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        report.make_thumbnail(src, tmp_path / "t.jpg", size=size)
    assert not (tmp_path / "t.jpg").exists()
    assert report.make_thumbnail(src, tmp_path / "t.jpg", size=8)
    with Image.open(tmp_path / "t.jpg") as im:
        assert im.size == (8, 4)


def test_merge_stores_names_one_store_given_instead_of_a_sequence(tmp_path):
    """``sources : sequence of str, os.PathLike or FeatureStore``: one store given alone was read as
    its path's characters ("no feature store at '/'"), its keys ("no feature store at 'img:1'") or
    refused as "'PosixPath' object is not iterable"."""
    from gensim_im2vec.distributed import merge_stores
    from gensim_im2vec.store import FeatureStore

    vectors = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    a = FeatureStore.from_arrays(tmp_path / "a", ["img:1", "img:2"], vectors)
    for one in (str(tmp_path / "a"), tmp_path / "a", a):
        with pytest.raises(TypeError, match=r"give a list, e\.g\. merge_stores\(target, \[source\]\)"):
            merge_stores(tmp_path / "m", one)
        assert not (tmp_path / "m").exists()
    assert merge_stores(tmp_path / "m", [tmp_path / "a"]).keys == ["img:1", "img:2"]
