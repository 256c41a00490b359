"""Image files → model inputs: PIL decoding, the JPEG decoder option and batches for the extractor.

:func:`load_image` opens any file PIL reads as 8-bit RGB with its EXIF orientation applied, or
raises :class:`ImageSkipped` with the reason (what :class:`~gensim_im2vec.features.FeatureExtractor`
records for a file it skips); :func:`to_rgb` converts any PIL mode (transparency on white, 16-bit
grey rescaled):

>>> import os, tempfile
>>> from PIL import Image
>>> from gensim_im2vec.decode import ImageSkipped, load_image, to_rgb
>>> root = tempfile.mkdtemp()
>>> Image.new("RGBA", (64, 48), (255, 0, 0, 0)).save(os.path.join(root, "clear.png"))
>>> img = load_image(os.path.join(root, "clear.png"))
>>> img.mode, img.size, img.getpixel((0, 0))
('RGB', (64, 48), (255, 255, 255))
>>> to_rgb(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0))
(255, 255, 255)
>>> open(os.path.join(root, "empty.jpg"), "wb").close()
>>> try:
...     load_image(os.path.join(root, "empty.jpg"))
... except ImageSkipped as e:
...     print(e.reason)
empty file (0 bytes)

A large JPEG decodes at 1/2-1/8 scale with ``draft_size`` (the shorter side stays >= it), which
is what lets ``max_pixels`` keep huge files out without decoding them whole:

>>> Image.new("RGB", (1600, 1200), "navy").save(os.path.join(root, "big.jpg"))
>>> load_image(os.path.join(root, "big.jpg"), draft_size=256).size
(400, 300)
>>> try:
...     load_image(os.path.join(root, "big.jpg"), max_pixels=1_000_000)
... except ImageSkipped as e:
...     print(e.reason)
too large: 1600x1200 pixels > max_pixels=1000000; raise max_pixels (`im2vec extract --max-pixels`) to use it

``max_pixels`` replaces PIL's decompression-bomb limit (``None``: no limit). An image more than
:data:`MAX_ASPECT` times longer than wide (a banner, a 1x20000 spacer GIF) is resized only where the
centre crop looks, not whole.

For the extractor, DataLoader workers decode and resize/crop to uint8 (``_Preprocess``,
``_ImageDataset``); with ``jpeg_device`` they only read the JPEGs' bytes and headers, and the main
process decodes each batch with ``torchvision.io.decode_jpeg`` (nvJPEG on CUDA), PIL taking every
file it cannot (:func:`_decode_batch`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gensim_im2vec._resource_sharer import quiet_resource_sharer
from gensim_im2vec.extras import missing_extra

try:
    import torch
    from PIL import Image, ImageOps, UnidentifiedImageError
except ModuleNotFoundError as _err:
    raise missing_extra(_err, "gensim_im2vec.decode (reading image files)") from _err

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MAX_PIXELS", "ImageSkipped", "load_image", "to_rgb"]

#: Images with more decoded pixels are skipped (:func:`load_image`'s and the extractor's default).
DEFAULT_MAX_PIXELS = 100_000_000


class ImageSkipped(Exception):
    """An image that cannot be used; ``reason`` says why (recorded in the store)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason



def to_rgb(img: Image.Image, background=(255, 255, 255)) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    Transparent images (RGBA, LA, palette with transparency) are composited on `background`
    (white: clip art drawn in black stays visible); 16-bit and 32-bit grey is rescaled to 8 bits
    (not clipped); CMYK, YCbCr, grey, 1-bit and palette images are converted.

    Raises
    ------
    ImageSkipped
        A mode PIL cannot convert to RGB.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            a = a / 257.0
        elif mode == "I":
            a = a / 257.0 if a.max(initial=0) > 255 else a
        else:
            a = a * 255.0 if a.max(initial=0) <= 1.0 else a
        grey = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
        return grey.convert("RGB")
    if mode == "P" or "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        bg.alpha_composite(rgba)
        return bg.convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageSkipped(f"unsupported colour mode {mode!r}: {e}") from None


_PIL_LIMIT_LOCK = threading.Lock()


def _open_image(fp) -> Image.Image:
    """``Image.open`` without PIL's decompression-bomb limit, whose place :func:`load_image`'s
    ``max_pixels`` takes (checked after JPEG draft scaling, so a 300-megapixel JPEG still decodes at
    1/8 scale, and a larger ``max_pixels`` is honoured). PIL refuses images over twice its
    ``Image.MAX_IMAGE_PIXELS`` (179M pixels) at open; such a file is opened again with that limit
    lifted for the moment it takes to read its header (under a lock)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(fp)
        except Image.DecompressionBombError:
            pass
        with _PIL_LIMIT_LOCK:
            limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(fp)
            finally:
                Image.MAX_IMAGE_PIXELS = limit


def load_image(path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, draft_size: int | None = None) -> Image.Image:
    """Open an image file as 8-bit RGB (EXIF orientation applied), or raise :class:`ImageSkipped`.

    Parameters
    ----------
    path : str or os.PathLike
    max_pixels : int or None
        Larger decoded images are skipped (after JPEG draft scaling, so huge JPEGs still work);
        None: no limit. This limit replaces PIL's decompression-bomb check.
    draft_size : int, optional
        Let the JPEG decoder scale down by 2/4/8 while the shorter side stays >= this.
    """
    try:
        if os.path.getsize(path) == 0:
            raise ImageSkipped("empty file (0 bytes)")
    except OSError as e:
        raise ImageSkipped(f"unreadable: {e.strerror or e}") from None
    try:
        with _open_image(path) as im:
            w, h = im.size
            if w < 1 or h < 1:
                raise ImageSkipped(f"empty image ({w}x{h} pixels)")
            if draft_size and im.format == "JPEG":
                s = draft_size / min(w, h)
                if s < 1:
                    im.draft(None, (max(1, math.ceil(w * s)), max(1, math.ceil(h * s))))
            if max_pixels is not None and im.size[0] * im.size[1] > max_pixels:
                raise ImageSkipped(
                    f"too large: {w}x{h} pixels > max_pixels={max_pixels}; raise max_pixels (`im2vec extract --max-pixels`) to use it"
                )
            im.load()
            out = ImageOps.exif_transpose(im)
            rgb = to_rgb(out)
            if rgb is im:
                rgb = im.copy()
            return rgb
    except ImageSkipped:
        raise
    except Image.DecompressionBombError as e:
        raise ImageSkipped(f"too large: {e}") from None
    except UnidentifiedImageError:
        raise ImageSkipped("not an image: PIL cannot identify the file format") from None
    except OSError as e:
        if "truncated" in str(e):
            raise ImageSkipped(f"truncated: {e}") from None
        raise ImageSkipped(f"unreadable or corrupt: {e}") from None
    except Exception as e:  # noqa: BLE001 - decoders raise SyntaxError, ValueError, EOFError, ...
        raise ImageSkipped(f"corrupt: {type(e).__name__}: {e}") from None


@dataclass
class _EncodedJpeg:
    """A JPEG file's bytes, read by a worker for batched ``decode_jpeg``, and its EXIF orientation."""

    data: np.ndarray
    orientation: int = 1


def _orient(img: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation (1-8) to a CHW tensor, as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return img.flip(-1)
    if orientation == 3:
        return img.flip(-2, -1)
    if orientation == 4:
        return img.flip(-2)
    if orientation == 5:
        return img.transpose(-2, -1)
    if orientation == 6:
        return torch.rot90(img, -1, dims=(-2, -1))
    if orientation == 7:
        return img.transpose(-2, -1).flip(-2, -1)
    if orientation == 8:
        return torch.rot90(img, 1, dims=(-2, -1))
    return img


def _decode_jpegs(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """``torchvision.io.decode_jpeg`` of a batch to RGB on `device` (nvJPEG on CUDA)."""
    import torchvision.io as tio

    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders in favour of TorchCodec (same nvJPEG/libjpeg-turbo)
        warnings.simplefilter("ignore", DeprecationWarning)
        return tio.decode_jpeg(datas, mode=tio.ImageReadMode.RGB, device=device)


#: Images whose long side is more than this many times their short side are resized only where the
#: centre crop looks (:func:`_resize_strip`); at 256 px a 1x20000 spacer GIF would become 256x5120000.
MAX_ASPECT = 64


def _resize_strip(img: Image.Image, t) -> Image.Image | None:
    """For an image more than :data:`MAX_ASPECT` times longer than wide (or the reverse): the part of
    ``F.resize(img, t.resize_size)`` that ``F.center_crop(., t.crop_size)`` keeps along the long side,
    computed with PIL's ``box`` from the source pixels under it, so memory and time stay those of
    the crop (resizing the whole image took 5 GB and 14 s for a 20000x1 PNG). Pixels agree with
    resizing the whole image to within 1/255. None for other images and for fixed (h, w) resizes."""
    from torchvision.transforms.functional import pil_modes_mapping

    w, h = img.size
    size = list(t.resize_size)
    if len(size) != 1 or max(w, h) <= MAX_ASPECT * min(w, h):
        return None
    crop = list(t.crop_size) * (2 if len(t.crop_size) == 1 else 1)  # (h, w)
    short, long = min(w, h), max(w, h)
    new_long = int(size[0] * long / short)  # as torchvision's resize computes it
    c = crop[1] if w > h else crop[0]
    start = int(round((new_long - c) / 2.0))  # as torchvision's center_crop places it
    scale = long / new_long
    lo, hi = start * scale, (start + c) * scale
    box, out = ((lo, 0, hi, h), (c, size[0])) if w > h else ((0, lo, w, hi), (size[0], c))
    return img.resize(out, resample=pil_modes_mapping[t.interpolation], box=box)


class _Preprocess:
    """Picklable per-image work for DataLoader workers: decode → resize → crop → uint8 CHW."""

    def __init__(self, transform, *, max_pixels: int | None, draft: bool) -> None:
        from torchvision.transforms._presets import ImageClassification

        self.transform = transform
        self.split = isinstance(transform, ImageClassification)
        self.max_pixels = max_pixels
        self.draft_size = None
        if draft and self.split:
            self.draft_size = max(transform.resize_size)

    def pil_to_input(self, img: Image.Image) -> torch.Tensor:
        import torchvision.transforms.functional as F

        if not self.split:
            return self.transform(img)
        t = self.transform
        strip = _resize_strip(img, t)
        if strip is not None:  # a banner or spacer image: only the part the centre crop keeps
            img = strip
        else:
            img = F.resize(img, t.resize_size, interpolation=t.interpolation, antialias=t.antialias)
        img = F.center_crop(img, t.crop_size)
        return F.pil_to_tensor(img)

    def __call__(self, path) -> torch.Tensor:
        return self.pil_to_input(load_image(path, max_pixels=self.max_pixels, draft_size=self.draft_size))

    def read_jpeg(self, path) -> _EncodedJpeg | str:
        """Worker side of device decoding: the file's bytes if ``decode_jpeg`` can take it, else
        the reason it goes to PIL. Only the header is parsed here (no pixel decoding)."""
        import io

        try:
            if os.path.getsize(path) == 0:  # also a FIFO or device named .jpg, whose read would block
                raise ImageSkipped("empty file (0 bytes)")
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ImageSkipped(f"unreadable: {e.strerror or e}") from None
        if not data:
            raise ImageSkipped("empty file (0 bytes)")
        try:
            with _open_image(io.BytesIO(data)) as im:
                fmt, mode, (w, h) = im.format, im.mode, im.size
                try:
                    orientation = int(im.getexif().get(0x0112, 1))
                except Exception:  # noqa: BLE001 - PIL's exif_transpose then decides
                    orientation = None
        except Exception:  # noqa: BLE001 - PIL's fallback names what is wrong with the file
            return "not identified by PIL"
        if fmt not in ("JPEG", "MPO"):  # MPO: camera JPEGs with extra frames; both decode the first
            return f"{fmt or 'unknown'} file"
        if orientation is None:
            return "unreadable EXIF"
        if mode not in ("RGB", "L"):
            return f"{mode} JPEG"
        if self.max_pixels is not None and w * h > self.max_pixels:
            return "over max_pixels"
        if max(w, h) > MAX_ASPECT * min(w, h):
            return "extreme aspect ratio"  # PIL resizes only the cropped part (_resize_strip)
        if data.rstrip(b"\0")[-2:] != b"\xff\xd9":
            return "no JPEG end marker (truncated?)"
        return _EncodedJpeg(np.frombuffer(data, dtype=np.uint8), orientation if 1 <= orientation <= 8 else 1)

    def tensor_to_input(self, img: torch.Tensor, orientation: int = 1) -> torch.Tensor:
        """Decoded uint8 CHW tensor (any device) → EXIF-oriented, resized, cropped uint8 CHW.

        The same steps as :meth:`pil_to_input` on tensors. PIL antialiases every bilinear/bicubic
        downscale; ``F.resize`` on a tensor only with ``antialias=True``, so it is always passed
        (the ImageClassification presets default to it; without it features drift).
        """
        import torchvision.transforms.functional as F

        img = _orient(img, orientation)
        t = self.transform
        img = F.resize(img, t.resize_size, interpolation=t.interpolation, antialias=True)
        return F.center_crop(img, t.crop_size)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 batch on the device → normalised float (what ``transforms()`` returns)."""
        if not self.split:
            return x
        import torchvision.transforms.functional as F

        x = F.convert_image_dtype(x, torch.float)
        return F.normalize(x, mean=self.transform.mean, std=self.transform.std)


class _ImageDataset(torch.utils.data.Dataset):
    """Sample ``(i, uint8 CHW, None)``, or ``(i, None, reason)`` for a skipped file. With `jpeg`:
    ``(i, _EncodedJpeg, None)`` for the device decoder, ``(i, uint8 CHW, reason)`` for a file
    that PIL decoded instead (the reason it could not go to the device)."""

    def __init__(self, paths: Sequence[str], prep: _Preprocess, jpeg: bool = False) -> None:
        self.paths = paths
        self.prep = prep
        self.jpeg = jpeg

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            if self.jpeg:
                enc = self.prep.read_jpeg(self.paths[i])
                if isinstance(enc, _EncodedJpeg):
                    return i, enc, None
                return i, self.prep(self.paths[i]), enc
            return i, self.prep(self.paths[i]), None
        except ImageSkipped as e:
            return i, None, e.reason
        except Exception as e:  # noqa: BLE001 - a bad file never stops the run
            return i, None, f"failed: {type(e).__name__}: {e}"


def _collate(samples):
    good = [(i, t) for i, t, _ in samples if t is not None]
    x = torch.stack([t for _, t in good]) if good else None
    bad = [(i, r) for i, t, r in samples if t is None]
    return [i for i, _ in good], x, bad


def _collate_jpeg(samples):
    """→ (idx, x, bad, fell_back, jpeg_idx, blob, sizes, orientations): PIL-decoded inputs as in
    :func:`_collate` (`fell_back`: their reasons), the JPEGs' bytes as one tensor (one shared
    memory segment per batch, not one per file) cut by `sizes`."""
    pil = [(i, t, r) for i, t, r in samples if isinstance(t, torch.Tensor)]
    idx, x, bad = _collate([(i, t, None) for i, t, _ in pil] + [s for s in samples if s[1] is None])
    fell = [(i, r) for i, _, r in pil]
    enc = [(i, t) for i, t, _ in samples if isinstance(t, _EncodedJpeg)]
    blob = torch.from_numpy(np.concatenate([t.data for _, t in enc])) if enc else None
    return (idx, x, bad, fell, [i for i, _ in enc], blob, [len(t.data) for _, t in enc],
            [t.orientation for _, t in enc])


def _worker_init(_):
    """A decode worker: one thread for torch, and its resource-sharer thread quiet. The worker hands
    each batch's memory to the main process through that thread; when the main process stops
    (Ctrl-C, SIGTERM) mid-handshake, the thread's ``BrokenPipeError`` was printed as a traceback
    after the main process's ``Interrupted:`` line."""
    torch.set_num_threads(1)
    quiet_resource_sharer()


def _resolve_jpeg_device(jpeg_device, draft: bool | None, device: torch.device) -> tuple[torch.device | None, bool]:
    """→ (device for ``decode_jpeg`` or None for PIL, draft)."""
    if jpeg_device is None:
        return None, True if draft is None else bool(draft)
    if draft:
        raise ValueError(
            f"draft=True: the JPEG draft mode is PIL's, but jpeg_device={str(jpeg_device)!r} decodes JPEGs at "
            f"full size with torchvision; pass draft=False (or leave it None), or jpeg_device=None for PIL."
        )
    if jpeg_device == "auto":
        return device, False
    try:
        d = torch.device(jpeg_device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"jpeg_device: expected 'cpu', 'cuda', 'cuda:N', 'auto' or None, got {jpeg_device!r}."
        ) from None
    if d.type not in ("cpu", "cuda"):
        raise ValueError(f"jpeg_device: torchvision decodes JPEGs on 'cpu' or 'cuda', not {str(d)!r}.")
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"jpeg_device: {str(jpeg_device)!r} was asked for but CUDA is not available here; use 'cpu', "
            f"or None to decode with PIL."
        )
    return d, False


def _check_jpeg_decoding(device: torch.device, prep: _Preprocess) -> None:
    """Decode one tiny JPEG on `device` now, so a missing decoder fails here, not mid-run."""
    import io

    from torchvision.transforms._presets import ImageClassification

    if not isinstance(prep.transform, ImageClassification):
        raise ValueError(
            f"jpeg_device: the weights' transforms are {type(prep.transform).__name__}, not ImageClassification, "
            f"so decoded tensors cannot be resized the same way; use jpeg_device=None."
        )
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 40, 10)).save(buf, "JPEG", quality=95)
    try:
        img = _decode_jpegs([torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)], device)[0]
    except Exception as e:  # noqa: BLE001 - missing image extension, nvJPEG errors
        raise ValueError(
            f"jpeg_device={str(device)!r}: torchvision.io.decode_jpeg does not work here ({type(e).__name__}: "
            f"{str(e)[:300]}); use jpeg_device=None to decode with PIL."
        ) from None
    if tuple(img.shape) != (3, 8, 16):
        raise ValueError(f"jpeg_device={str(device)!r}: decode_jpeg returned shape {tuple(img.shape)} for a "
                         f"16x8 RGB JPEG; use jpeg_device=None to decode with PIL.")

def _load_batches(paths: Sequence[str], batches: list[list[int]], prep: _Preprocess, *, num_workers: int,
                  pin_memory: bool, jpeg_device: torch.device | None):
    """Yield ``(idx, x, bad, fell_back)`` per batch: dataset indices and their uint8 inputs
    ``x`` (None if all were skipped), ``(i, reason)`` of skipped files and of files PIL
    decoded instead of ``decode_jpeg`` (always empty without `jpeg_device`)."""
    jpeg = jpeg_device is not None
    ds = _ImageDataset(paths, prep, jpeg=jpeg)
    kw = {}
    if num_workers > 0:
        kw = {"worker_init_fn": _worker_init, "prefetch_factor": 4, "persistent_workers": False}
    loader = torch.utils.data.DataLoader(
        ds,
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=_collate_jpeg if jpeg else _collate,
        pin_memory=pin_memory,
        **kw,
    )
    for batch in loader:
        yield _decode_batch(batch, paths, prep, jpeg_device) if jpeg else (*batch, [])


def _decode_batch(batch, paths: Sequence[str], prep: _Preprocess, dev: torch.device):
    """Main-process half of `jpeg_device` decoding: one batched ``decode_jpeg`` call, then
    orientation/resize/crop per image on that device, merged with the PIL-decoded inputs in
    dataset order. If the batch call fails, each file is retried alone; a file that still
    fails is decoded by PIL here (or skipped with PIL's reason)."""
    idx, x, bad, fell, jpeg_idx, blob, sizes, orients = batch
    bad, fell = list(bad), list(fell)
    parts = [x.to(dev, non_blocking=True)] if x is not None else []
    order = list(idx)
    if jpeg_idx:
        datas = list(torch.split(blob, sizes))
        try:
            imgs = _decode_jpegs(datas, dev)
        except RuntimeError:
            imgs = []
            for d in datas:
                try:
                    imgs.append(_decode_jpegs([d], dev)[0])
                except RuntimeError as e:
                    imgs.append(e)
        done = []
        for i, img, o in zip(jpeg_idx, imgs, orients, strict=True):
            if isinstance(img, torch.Tensor):
                done.append(prep.tensor_to_input(img, o))
                order.append(i)
                continue
            msg = str(img).strip().splitlines()[-1] if str(img).strip() else type(img).__name__
            try:
                t = prep(paths[i])
            except ImageSkipped as e:
                bad.append((i, e.reason))
                continue
            except Exception as e:  # noqa: BLE001 - a bad file never stops the run
                bad.append((i, f"failed: {type(e).__name__}: {e}"))
                continue
            logger.debug("decode_jpeg failed on %s (%s); decoded by PIL", paths[i], msg)
            fell.append((i, "decode_jpeg failed"))
            done.append(t.to(dev))
            order.append(i)
        if done:
            parts.append(torch.stack(done))
    if not parts:
        return [], None, bad, fell
    x = torch.cat(parts) if len(parts) > 1 else parts[0]
    perm = sorted(range(len(order)), key=order.__getitem__)
    if perm != list(range(len(order))):
        x = x[torch.tensor(perm, device=x.device)]
    return [order[p] for p in perm], x, bad, fell
