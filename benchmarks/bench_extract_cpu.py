"""CPU feature extraction: our FeatureExtractor vs a plain per-image torchvision loop.

Same files, same model, same weights, one run each (after a short warm-up of both), in this
process. Prints images/s of both and their ratio (target: >= 2). No assertion: a measurement.

The images are JPEG photos made from scikit-image's bundled photos (random crops, flips and
rescales to a long side of --size pixels, quality 90), like downloaded Flickr photos.

    python benchmarks/bench_extract_cpu.py                 # 200 images, long side 1024
    python benchmarks/bench_extract_cpu.py --n 400 --size 640 --arch resnet50 --weights none
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_photos(root: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.stereo_motorcycle()[0]]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = src[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        im = Image.fromarray(np.ascontiguousarray(crop))
        scale = size / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BICUBIC)
        p = root / f"{i // 100:03d}" / f"{i:06d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p, quality=90)
        paths.append(p)
    return paths


def plain_loop(paths, model, transform) -> float:
    """The obvious code: open, convert, transform, forward one image at a time."""
    import torch
    from PIL import Image

    t0 = time.perf_counter()
    feats = []
    with torch.inference_mode():
        for p in paths:
            x = transform(Image.open(p).convert("RGB"))[None]
            feats.append(model(x)[0].numpy())
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="images")
    ap.add_argument("--size", type=int, default=1024, help="long side of the generated JPEGs")
    ap.add_argument("--arch", default="mobilenet_v2")
    ap.add_argument("--weights", default="IMAGENET1K_V1", help="'none' for random weights")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--num-workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="our torch threads (default: cores - workers)")
    ap.add_argument("--plain-threads", type=int, default=None,
                    help="torch threads of the plain loop (default: torch's default, all cores)")
    args = ap.parse_args()

    import torch

    from gensim_im2vec.features import FeatureExtractor
    from gensim_im2vec.weights import WeightsNotAvailableError

    weights = None if args.weights.lower() == "none" else args.weights
    try:
        fx = FeatureExtractor(args.arch, weights, device="cpu", batch_size=args.batch_size,
                              num_workers=args.num_workers, threads=args.threads, progress=False)
    except WeightsNotAvailableError as e:
        sys.exit(f"{e}\n(or run with --weights none)")
    # the plain loop: the same network (penultimate features) in torch's default memory format,
    # torchvision's transforms, one image at a time
    import copy

    model, transform = copy.deepcopy(fx.model).to(memory_format=torch.contiguous_format), fx.transform
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        paths = make_photos(root, args.n, args.size)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{args.n} JPEGs, long side {args.size}px, {mb:.1f} MB; {args.arch} weights={args.weights}; "
              f"{os.cpu_count()} CPU cores; torch {torch.__version__} ({torch.get_num_threads()} threads); "
              f"load average before: {os.getloadavg()[0]:.1f}")
        # warm-up both paths (first-call allocations, thread pools)
        plain_loop(paths[:4], model, transform)
        fx.extract([(f"w{i}", str(p)) for i, p in enumerate(paths[:8])], Path(tmp) / "warm")

        default_threads = torch.get_num_threads()
        if args.plain_threads:
            torch.set_num_threads(args.plain_threads)
        plain_threads = torch.get_num_threads()
        t_plain = plain_loop(paths, model, transform)
        torch.set_num_threads(default_threads)
        t0 = time.perf_counter()
        rep = fx.extract(root, Path(tmp) / "store")
        t_ours = time.perf_counter() - t0
        assert len(rep.store) == args.n, rep.summary()

    ips_plain, ips_ours = args.n / t_plain, args.n / t_ours
    print(f"plain per-image loop : {ips_plain:7.1f} images/s ({t_plain:.1f} s, {plain_threads} torch threads)")
    print(f"FeatureExtractor     : {ips_ours:7.1f} images/s ({t_ours:.1f} s, batch {fx.batch_size}, "
          f"{fx.num_workers} decode workers, {fx.threads} torch threads, incl. writing the store)")
    print(f"ratio                : {ips_ours / ips_plain:.2f}x (target >= 2); load average after: "
          f"{os.getloadavg()[0]:.1f} (other processes on the machine skew both numbers)")


if __name__ == "__main__":
    main()
