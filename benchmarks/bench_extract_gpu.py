"""GPU feature extraction throughput (made for one H200; prints measurements, asserts nothing).

For ResNet-50 and MobileNetV2 at batch 256 with bf16 autocast, channels_last, inference_mode:

1. model only: images/s of the forward pass on a batch already on the GPU;
2. end to end, CPU decode: ``FeatureExtractor.extract`` on JPEG files (DataLoader workers
   decode with PIL, pinned memory, non-blocking copies; includes writing the FeatureStore);
3. end to end, GPU decode: the same ``extract`` with ``FeatureExtractor(jpeg_device="cuda")``:
   workers only read the file bytes; ``torchvision.io.decode_jpeg`` decodes each batch on the GPU
   (nvJPEG), then resize/crop/normalise run there. (That its features match PIL decoding is
   checked with real weights by ``tests/test_features_jpeg.py::test_nvjpeg_matches_pil_features``;
   random weights cannot show it: MobileNetV2's random activations vanish.)

Target: end to end >= 3,000 images/s for ResNet-50 on one H200. If (2) falls short while
(3) reaches it, CPU decode is the bottleneck on that machine. Each end-to-end run also prints
where the main process spent its time (``ExtractionReport.stage_seconds``: waiting for input,
the model with the GPU's queued decoding, writing the store).

Random weights are used (``weights=None``): the speed is the same as with ImageNet weights and
nothing has to be downloaded. JPEGs are generated (Flickr-like: long side 500 px, quality 90).

    python benchmarks/bench_extract_gpu.py                  # needs CUDA; exits with a message otherwise
    python benchmarks/bench_extract_gpu.py --n 20000 --archs resnet50
    python benchmarks/bench_extract_gpu.py --cpu-smoke      # tiny run of the same code on CPU (checks the script)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

if os.environ.get("BENCH_FAULTHANDLER"):  # debugging aid: dump stacks of a hung run
    import faulthandler

    faulthandler.dump_traceback_later(float(os.environ["BENCH_FAULTHANDLER"]), exit=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _make_one(args):
    i, root, size, seed = args
    from PIL import Image

    rng = np.random.default_rng(seed + i)
    h = int(size * rng.uniform(0.6, 0.8))
    # smooth random colour fields + noise: decodes like a photo (not a flat image)
    small = rng.integers(0, 256, size=(h // 16 + 1, size // 16 + 1, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((size, h), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.int16) + rng.integers(-12, 13, size=(h, size, 3), dtype=np.int16)
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    p = Path(root) / f"{i // 1000:04d}" / f"{i:07d}.jpg"
    p.parent.mkdir(parents=True, exist_ok=True)
    im.save(p, quality=90)
    return str(p)


def make_jpegs(root: Path, n: int, size: int, workers: int) -> list[str]:
    with ProcessPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(_make_one, [(i, str(root), size, 0) for i in range(n)], chunksize=64))


def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(fx, batch: int, iters: int) -> float:
    import torch

    crop = fx.transform.crop_size[0]
    x = torch.randint(0, 256, (batch, 3, crop, crop), dtype=torch.uint8, device=fx.device)
    for _ in range(3):
        fx._forward(x)
    sync(fx.device)
    t0 = time.perf_counter()
    for _ in range(iters):
        with torch.inference_mode(), fx._autocast():
            xx = fx._prep.finish(x)
            if fx._channels_last:
                xx = xx.contiguous(memory_format=torch.channels_last)
            fx.model(xx)
    sync(fx.device)
    return batch * iters / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=12_000, help="JPEG files for the end-to-end runs")
    ap.add_argument("--size", type=int, default=500, help="long side of the generated JPEGs")
    ap.add_argument("--archs", default="resnet50,mobilenet_v2")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--num-workers", type=int, default=None, help="decode workers (default: cores - 1)")
    ap.add_argument("--iters", type=int, default=30, help="batches timed for model-only")
    ap.add_argument("--dir", default=None, help="where to write the JPEGs (default: a temp dir)")
    ap.add_argument("--cpu-smoke", action="store_true", help="run everything tiny on CPU, to check the script")
    args = ap.parse_args()

    import torch
    import torchvision

    from gensim_im2vec.features import FeatureExtractor, stage_shares

    if args.cpu_smoke:
        device, args.n, args.batch_size, args.iters, args.precision = "cpu", 16, 8, 1, "fp32"
    elif not torch.cuda.is_available():
        sys.exit(
            "bench_extract_gpu: no CUDA device here (torch.cuda.is_available() is False). Run it on a GPU "
            "machine, or pass --cpu-smoke to check the script on CPU; for CPU speed see bench_extract_cpu.py."
        )
    else:
        device = "cuda"
    cores = os.cpu_count() or 1
    workers = args.num_workers if args.num_workers is not None else max(1, min(cores - 1, 32))
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (smoke run)"
    print(f"{gpu}; {cores} CPU cores; torch {torch.__version__}, torchvision {torchvision.__version__}; "
          f"batch {args.batch_size}, {args.precision}, {workers} decode workers")

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        t0 = time.perf_counter()
        paths = make_jpegs(Path(tmp) / "jpegs", args.n, args.size, workers=cores)
        mb = sum(os.path.getsize(p) for p in paths) / 1e6
        print(f"made {len(paths)} JPEGs ({args.size}px long side, {mb:.0f} MB) in {time.perf_counter() - t0:.0f} s")
        for arch in [a.strip() for a in args.archs.split(",") if a.strip()]:
            fx = FeatureExtractor(arch, weights=None, device=device, batch_size=args.batch_size,
                                  num_workers=workers, precision=args.precision, progress=False)
            m = model_only(fx, args.batch_size, args.iters)
            # warm-up of the file pipeline (worker start, cudnn autotune for the batch shape)
            fx.extract([(f"w{i}", p) for i, p in enumerate(paths[: 2 * args.batch_size])], Path(tmp) / f"warm-{arch}",
                       dtype="float32")
            t1 = time.perf_counter()
            rep = fx.extract(Path(tmp) / "jpegs", Path(tmp) / f"store-{arch}", prefix="", dtype="float32")  # random MobileNetV2 underflows fp16
            e2e = len(paths) / (time.perf_counter() - t1)
            assert len(rep.store) == len(paths), rep.summary()
            del fx
            gx = FeatureExtractor(arch, weights=None, device=device, batch_size=args.batch_size, num_workers=workers,
                                  precision=args.precision, jpeg_device=device, progress=False)
            gx.extract([(f"w{i}", p) for i, p in enumerate(paths[: 2 * args.batch_size])], Path(tmp) / f"warm-g-{arch}",
                       dtype="float32")
            t1 = time.perf_counter()
            grep = gx.extract(Path(tmp) / "jpegs", Path(tmp) / f"store-gpu-{arch}", prefix="", dtype="float32")
            gdec = len(paths) / (time.perf_counter() - t1)
            assert len(grep.store) == len(paths) and not grep.decode_fallbacks, grep.summary()
            print(f"{arch:14s} dim {gx.dim:5d} | model only {m:8.0f} img/s | end to end, CPU decode "
                  f"{e2e:7.0f} img/s | end to end, GPU decode {gdec:7.0f} img/s")
            for name, r in (("CPU decode", rep), ("GPU decode", grep)):  # where the main process waited
                print(f"{'':14s} {name}: {stage_shares(r.stage_seconds)}")
            if device == "cuda":
                print(f"{'':14s} peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if device == "cuda":
        print("target: ResNet-50 end to end >= 3000 img/s on one H200")


if __name__ == "__main__":
    main()
