"""Feature extraction and the store on a messy photo folder, as a torchvision user meets it.

Each test pins a bug found in an audit (it failed before the fix): PIL's decompression-bomb
limit overruling ``max_pixels`` and JPEG draft decoding, banner/spacer images resized whole
(gigabytes for a 1x20000 GIF), non-UTF-8 file names crashing the store at close, a FIFO named
``.jpg`` blocking the ``jpeg_device`` reader, unchecked extractor arguments (``threads=0``,
``max_pixels=None``, numpy ints, bools, an unusable device), ``fx(one_image)`` taken as a list of
its rows, checkpoint files with other endings, and store corners (``from_arrays`` extending a
store of another dtype, a foreign ``metadata.json``, opening a store while a writer runs).
Tiny random-init models and generated images; a few seconds in all.
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is needed for feature extraction (pip install '.[vision]')")
tvm = pytest.importorskip("torchvision.models", reason="torchvision is needed for feature extraction")
from PIL import Image  # noqa: E402

from gensim_im2vec.decode import ImageSkipped, _Preprocess, load_image  # noqa: E402
from gensim_im2vec.features import FeatureExtractor, list_images  # noqa: E402
from gensim_im2vec.store import FeatureStore  # noqa: E402

ARCH = "mobilenet_v2"


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor(ARCH, weights=None, num_workers=0, batch_size=2, progress=False)


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8), "RGB")


# ----------------------------------------------------------------------------- decoding


def test_pil_bomb_limit_gives_way_to_max_pixels_and_draft(tmp_path, monkeypatch):
    # PIL refuses images over 2 * MAX_IMAGE_PIXELS (179M pixels) at open: a 300-megapixel JPEG was
    # skipped although draft decoding reads it at 1/8, and max_pixels above PIL's limit was ignored.
    # A smaller PIL limit stands in for those sizes here.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400_000)
    Image.new("RGB", (1600, 1200), "navy").save(tmp_path / "big.jpg")
    Image.new("RGB", (1600, 1200), "navy").save(tmp_path / "big.png")
    assert load_image(tmp_path / "big.jpg", draft_size=256).size == (400, 300)
    assert load_image(tmp_path / "big.png", max_pixels=10**9).size == (1600, 1200)
    assert load_image(tmp_path / "big.png", max_pixels=None).size == (1600, 1200)
    with pytest.raises(ImageSkipped, match=r"too large: 1600x1200 pixels > max_pixels=1000000; raise max_pixels"):
        load_image(tmp_path / "big.png", max_pixels=1_000_000)
    assert Image.MAX_IMAGE_PIXELS == 400_000, "PIL's own limit is left as it was"


class _TooBig(AssertionError):
    pass


def test_banner_and_spacer_images_resize_only_what_the_crop_keeps(tmp_path, monkeypatch):
    # a 1x5000 spacer GIF was resized whole to 256x1280000 (1 GB; 1x20000: 5 GB and 14 s) to keep
    # a 224x224 crop
    tf = tvm.MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    prep = _Preprocess(tf, max_pixels=None, draft=True)
    Image.new("RGB", (1, 5000), "red").save(tmp_path / "spacer.gif")
    _photo(6000, 20).save(tmp_path / "banner.jpg", quality=95)
    real = Image.Image.resize

    def guarded(self, size, *args, **kwargs):
        if size[0] * size[1] > 1_000_000:
            raise _TooBig(f"resize of {self.size} to {size}")
        return real(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", guarded)
    assert tuple(prep(tmp_path / "spacer.gif").shape) == (3, 224, 224)
    assert tuple(prep(tmp_path / "banner.jpg").shape) == (3, 224, 224)
    assert prep.read_jpeg(tmp_path / "banner.jpg") == "extreme aspect ratio", "jpeg_device leaves it to PIL"
    monkeypatch.setattr(Image.Image, "resize", real)

    import torchvision.transforms.functional as F

    def whole(img):
        return np.asarray(F.center_crop(F.resize(img, tf.resize_size, interpolation=tf.interpolation), tf.crop_size))

    wide = _photo(3000, 40, seed=1)  # 75:1, small enough to resize whole for the comparison
    got = prep.pil_to_input(wide).permute(1, 2, 0).numpy()
    assert np.abs(got.astype(int) - whole(wide).astype(int)).max() <= 1
    ordinary = _photo(640, 160, seed=2)  # 4:1 and anything squarer: exactly as before
    assert np.array_equal(prep.pil_to_input(ordinary).permute(1, 2, 0).numpy(), whole(ordinary))


def test_fifo_named_jpg_is_skipped_by_the_jpeg_reader(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    prep = _Preprocess(tvm.MobileNet_V2_Weights.IMAGENET1K_V1.transforms(), max_pixels=None, draft=False)
    out = {}

    def read():
        try:
            out["r"] = prep.read_jpeg(fifo)
        except ImageSkipped as e:
            out["r"] = e.reason

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        t.join(10)
        pytest.fail("read_jpeg blocked on a FIFO named .jpg")
    assert out["r"] == "empty file (0 bytes)"


# ----------------------------------------------------------------------------- keys


def test_non_utf8_file_names_are_keyed_with_percent_bytes(fx, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    try:
        latin1 = os.fsdecode(os.fsencode(str(root)) + b"/caf\xe9 au lait.jpg")
        _photo(48, 40).save(latin1)
    except (OSError, UnicodeError):
        pytest.skip("this file system does not take non-UTF-8 file names")
    _photo(48, 40, seed=3).save(root / "plain.png")
    assert [k for k, _ in list_images(root)] == ["img:caf%E9%20au%20lait", "img:plain"]
    rep = fx.extract(root, tmp_path / "store")  # crashed at close with UnicodeEncodeError
    assert rep.store.keys == ["img:caf%E9%20au%20lait", "img:plain"] and not rep.skipped
    assert FeatureStore.open(tmp_path / "store").keys == rep.store.keys
    bad = "img:caf\udce9"
    with pytest.raises(ValueError, match=r"key 'img:caf\\udce9'.*not valid Unicode.*'img:caf%E9'"):
        fx.extract([(bad, latin1)], tmp_path / "other")
    with pytest.raises(ValueError, match=r"key 'img:caf\\udce9'.*not valid Unicode.*%XX"):
        FeatureStore.from_arrays(tmp_path / "arrays", [bad], np.ones((1, 4), np.float32))


def test_a_non_utf8_file_name_has_one_key_in_the_store_and_the_documents(tmp_path):
    """The extractor wrote a Latin-1 name's byte as %E9 but FolderCorpus kept the lone surrogate,
    so the document's token met no feature row (and could not be written as UTF-8)."""
    from gensim_im2vec.corpora import FolderCorpus

    root = tmp_path / "photos"
    root.mkdir()
    try:
        latin1 = os.fsdecode(os.fsencode(str(root)) + b"/caf\xe9.jpg")
        _photo(48, 40).save(latin1)
        with open(os.fsdecode(os.fsencode(str(root)) + b"/caf\xe9.txt"), "w", encoding="utf-8") as f:
            f.write("coffee with milk")
    except (OSError, UnicodeError):
        pytest.skip("this file system does not take non-UTF-8 file names")
    (key,) = [k for k, _ in list_images(root)]
    docs = list(FolderCorpus(root))
    assert key == "img:caf%E9" and docs and docs[0][0] == key
    "\n".join(" ".join(d) for d in docs).encode("utf-8")  # a document file can hold it


# ----------------------------------------------------------------------------- the extractor's arguments


def test_extractor_arguments_are_checked_when_given(fx, tmp_path):
    with pytest.raises(ValueError, match=r"threads: expected an int >= 1, got 0"):
        FeatureExtractor(ARCH, weights=None, num_workers=0, threads=0, progress=False)
    with pytest.raises(ValueError, match=r"max_pixels \(None: no limit\): expected an int >= 1, got '1e8'"):
        FeatureExtractor(ARCH, weights=None, num_workers=0, max_pixels="1e8", progress=False)
    with pytest.raises(ValueError, match=r"batch_size: expected an int >= 1, got True"):
        FeatureExtractor(ARCH, weights=None, num_workers=0, batch_size=True, progress=False)
    ok = FeatureExtractor(ARCH, weights=None, num_workers=np.int64(0), batch_size=np.int64(3), max_pixels=None,
                          progress=False)
    assert (ok.batch_size, ok.num_workers) == (3, 0) and type(ok.batch_size) is int
    (tmp_path / "p").mkdir()
    _photo(40, 30).save(tmp_path / "p" / "a.jpg")
    rep = ok.extract(tmp_path / "p", tmp_path / "s")  # max_pixels=None skipped every image as "corrupt"
    assert rep.store.keys == ["img:a"] and not rep.skipped
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match=r"device: 'mps' cannot be used here .*use 'cpu', 'cuda' or 'auto'"):
            FeatureExtractor(ARCH, weights=None, num_workers=0, device="mps", progress=False)


def test_call_refuses_one_image_given_instead_of_a_list(fx):
    one = np.asarray(_photo(20, 30))
    with pytest.raises(TypeError, match=r"one array of shape \(30, 20, 3\); pass a list"):
        fx(one)  # was taken as 30 images, one per row: 30 feature rows
    with pytest.raises(TypeError, match=r"one PIL image; pass a list"):
        fx(Image.fromarray(one))
    with pytest.raises(TypeError, match=r"images\[0\]: expected a uint8 array .* got float32 of shape \(30, 20, 3\)"):
        fx([one.astype(np.float32) / 255])
    assert fx(one[None]).shape == (1, fx.dim) == fx([one]).shape
    grey = one[:, :, 0]
    assert np.array_equal(fx([grey[:, :, None]]), fx([grey]))


def test_a_checkpoint_file_with_another_ending_is_a_checkpoint(tmp_path, monkeypatch):
    torch.save(tvm.get_model(ARCH, weights=None).state_dict(), tmp_path / "finetuned.pth.tar")
    monkeypatch.chdir(tmp_path)
    fx = FeatureExtractor(ARCH, weights="finetuned.pth.tar", num_workers=0, progress=False)
    assert fx.metadata["weights"].startswith("file:finetuned.pth.tar#sha256:")


# ----------------------------------------------------------------------------- the store


def test_from_arrays_extends_a_store_in_its_dtype(tmp_path):
    v = np.random.default_rng(0).random((3, 4), dtype=np.float32) + 0.1
    FeatureStore.from_arrays(tmp_path / "s", ["img:a", "img:b"], v[:2])
    s = FeatureStore.from_arrays(tmp_path / "s", ["img:c"], v[2:].astype(np.float16), mode="extend")
    assert s.keys == ["img:a", "img:b", "img:c"] and s.vectors.dtype == np.float32
    np.testing.assert_allclose(s.get_vector("img:c"), v[2].astype(np.float16), rtol=0)


def test_open_names_a_metadata_file_that_is_no_stores(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "metadata.json").write_text('{"count": 3, "dim": "wide", "dtype": "float32"}')
    with pytest.raises(ValueError, match=r"metadata\.json' is damaged or not a feature store's: .*dim 'wide'"):
        FeatureStore.open(tmp_path / "x")


def test_open_while_a_writer_runs_says_so(tmp_path, caplog):
    v = np.ones((3, 4), np.float32)
    w = FeatureStore.create(tmp_path / "s", dim=4, shard_size=2)
    try:
        w.write(["img:a", "img:b", "img:c"], v)  # one shard committed, one row buffered
        with caplog.at_level(logging.INFO, logger="gensim_im2vec.store"):
            s = FeatureStore.open(tmp_path / "s")
        assert len(s) == 0
        text = caplog.text
        assert f"being written by pid {os.getpid()}" in text and "interrupted" not in text, text
    finally:
        w.close()
    assert FeatureStore.open(tmp_path / "s").keys == ["img:a", "img:b", "img:c"]
