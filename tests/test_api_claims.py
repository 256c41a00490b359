"""The Python API against its own docstrings: each test is a documented claim that the code did not
keep (a limit stated but not checked, an argument form the hint allows that went wrong)."""

from __future__ import annotations

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
