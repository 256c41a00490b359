"""Image files → feature vectors, with any torchvision classification model, on GPU or CPU.

Images enter Im2Vec only through their feature vectors ``v_f`` (the model learns ``W`` and
uses ``W · v̂_f``). :class:`FeatureExtractor` computes them once and writes a
:class:`~gensim_im2vec.store.FeatureStore`: keyed, memory-mapped, resumable.

A tiny run on generated images (random weights, so it needs no download):

>>> import os, tempfile
>>> from PIL import Image
>>> from gensim_im2vec.features import FeatureExtractor
>>> root = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(root, "photos", "cats"))
>>> Image.new("RGB", (64, 48), "orange").save(os.path.join(root, "photos", "cats", "001.jpg"))
>>> Image.new("L", (40, 40), 128).save(os.path.join(root, "photos", "cats", "002.png"))
>>> open(os.path.join(root, "photos", "cats", "003.jpg"), "wb").close()          # empty file
>>> fx = FeatureExtractor("resnet18", weights=None, num_workers=0, progress=False)
>>> report = fx.extract(os.path.join(root, "photos"), os.path.join(root, "feats"))
>>> store = report.store
>>> store.keys, store.vectors.shape, store.vectors.dtype.name
(['img:cats/001', 'img:cats/002'], (2, 512), 'float16')
>>> report.skipped
{'img:cats/003': 'empty file (0 bytes)'}

Run it again (after a crash, Ctrl-C or ``kill -9``) with the same arguments and it continues
where it stopped; new files in the folder are appended; a store made by another model or
layer is refused. A file changed since its features were extracted (its size or modification
time is not the one the store recorded) is named in a warning and counted in
``report.changed``: the store keeps its old row (rows are never rewritten), so extract into a
new store to use the new file. The same from the shell::

    im2vec extract photos/ -o feats/ --arch mobilenet_v2 --weights IMAGENET1K_V1

Then ``Im2Vec(documents, image_features=FeatureStore.open("feats/"))``.

Choosing the model and the layer
--------------------------------
``arch`` is any name of ``torchvision.models.list_models()`` for classification
(``"resnet50"``, ``"mobilenet_v2"``, ``"alexnet"``, ``"vit_b_16"`` …). ``weights`` is a member
of its weights enum (``"IMAGENET1K_V1"``, ``"DEFAULT"`` or the full
``"ResNet50_Weights.IMAGENET1K_V2"``), a path to a local checkpoint (a ``state_dict``), or
None for random weights (tests). Preprocessing always comes from ``weights.transforms()``.
``layer=None`` takes the penultimate activation (the input of the last ``Linear`` layer: the
pooled 1280-d MobileNetV2 / 2048-d ResNet-50 features); a node name such as ``"layer4.2.relu_2"``
takes that node of the FX graph (spatial maps are average-pooled), see :func:`layer_names`, and
a module's name such as ``"layer4"`` its last node (recorded as ``"layer4 (layer4.2.relu_2)"``); AlexNet/VGG also know Caffe's names ``"fc6"``/``"fc7"`` (after ReLU, as in
Caffe, 4096-d) — the Im2Vec slides used AlexNet ``fc7``.

Without network, ImageNet weights load from ``$TORCH_HOME/hub/checkpoints/``; see
:mod:`gensim_im2vec.weights` (``im2vec fetch-weights`` puts MobileNetV2 there).

Speed
-----
Worker processes decode (:mod:`gensim_im2vec.decode`: JPEGs at reduced scale with PIL's
``draft`` when the image is at least twice the resize size) and resize/crop to uint8; the main
process moves uint8 batches to the device and normalises there; the model runs channels_last
under ``torch.inference_mode``. On CUDA: batches of 256 in pinned memory, non-blocking copies,
bf16 (fp16 without bf16) autocast. On CPU: batches of 4 (larger ones fall out of cache and are
slower) and the cores the decoding workers leave free as torch threads. Bad files (empty,
truncated, not an image, unsupported, too large) are skipped and recorded with their reason.
The report says where the time went (``report.stage_seconds``, the end of ``report.summary()``):
waiting for decoded input, the model, writing the store; the first of these large means more
decoding workers (or ``jpeg_device``) will help, the second a faster device or precision.

``jpeg_device="cuda"`` (``im2vec extract --jpeg-device cuda``) moves JPEG decoding onto the GPU:
workers only read bytes, ``torchvision.io.decode_jpeg`` decodes each batch with nvJPEG and the
resize/crop runs there too; PNGs and odd files still go through PIL, each counted with its reason
in ``report.decode_fallbacks``. On the CPU (``jpeg_device="cpu"``, the same path) the pixels
are PIL's and features agree with PIL decoding (``draft=False``) to cosine >= 0.999 per image.
nvJPEG upsamples the colour of 4:2:0 JPEGs differently (pixels differ by about 1 in 255 on
average), so on CUDA they agree to >= 0.99 (on an H200: mean 0.9993, lowest 0.994 for a
192 x 128 photo); 4:4:4 and greyscale JPEGs decode to the same pixels:

>>> fx = FeatureExtractor("resnet18", weights=None, num_workers=0, progress=False, jpeg_device="cpu")
>>> report = fx.extract(os.path.join(root, "photos"), os.path.join(root, "feats-jpeg"))
>>> report.store.keys, report.decode_fallbacks, report.skipped
(['img:cats/001', 'img:cats/002'], {'PNG file': 1}, {'img:cats/003': 'empty file (0 bytes)'})
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import itertools
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gensim_im2vec.extras import missing_extra

try:
    import torch
    from PIL import Image
    from torch import nn
except ModuleNotFoundError as _err:
    raise missing_extra(_err, "gensim_im2vec.features (feature extraction, image files)") from _err

from gensim_im2vec.corpora import _digest64, _repeats, _warn_unreadable, walk_dirs
from gensim_im2vec.decode import (
    DEFAULT_MAX_PIXELS,
    ImageSkipped,
    _check_jpeg_decoding,
    _load_batches,
    _Preprocess,
    _resolve_jpeg_device,
    load_image,
    to_rgb,
)
from gensim_im2vec.keys import (
    IMAGE_PREFIX,
    KEY_RULES,
    describe_key_rule,
    encode_key,
    image_key,
    rule_key,
)
from gensim_im2vec.store import (
    FLOAT16_TINY,
    KEYS_FILE,
    METADATA_FILE,
    NO_STAMP,
    PCA,
    PCA_FILE,
    FeatureStore,
    FeatureStoreWriter,
    StoreMismatchError,
    _identity,
    _identity_diff,
    _mismatch_message,
    _read_json,
    _unfinished_mismatch,
    _unfinished_other_images,
    file_stamp,
    images_digest,
    unfinished_run,
)
from gensim_im2vec.validation import is_int, l2_normalize
from gensim_im2vec.weights import DEFAULT_ARCH, DEFAULT_WEIGHTS, file_digest

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ChangedFilesError",
    "ExtractionReport",
    "FeatureExtractor",
    "ImageRootError",
    "KeyRuleError",
    "ImageSkipped",
    "LayerNotFoundError",
    "Progress",
    "extract",
    "split_extractor_options",
    "layer_names",
    "iter_images",
    "list_images",
    "load_image",
    "to_rgb",
]

#: File name endings tried as images when a directory is scanned (case-insensitive).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm"}
)

#: Caffe-style layer names (as in the Im2Vec slides) → torchvision graph nodes.
LAYER_ALIASES: dict[str, dict[str, str]] = {
    "alexnet": {"fc6": "classifier.2", "fc7": "classifier.5", "fc8": "classifier.6"},
    **{
        v: {"fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6"}
        for v in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")
    },
}

_PENULTIMATE = "penultimate"


# ----------------------------------------------------------------------------- files and keys


class KeyRuleError(ValueError):
    """Files under an image folder that its key rule cannot name (by "flickr-id", a name Flickr does
    not give), or two files of one key: raised by :func:`list_images` and :func:`iter_images` (the
    command line's error of ``--keys``). Its message names the files and the fix."""


def list_images(
    root, *, prefix: str = IMAGE_PREFIX, extensions: Iterable[str] | None = IMAGE_EXTENSIONS,
    key_rule: str = "path",
) -> list[tuple[str, Path]]:
    """Find image files under `root` and key them by relative path without extension
    (:func:`gensim_im2vec.keys.image_key`: whitespace is written as ``%XX``), or by another key rule.

    Parameters
    ----------
    root : str or os.PathLike
        Directory, scanned recursively (symlinks followed, each real folder once so a symlink
        loop ends; hidden files and folders skipped).
    prefix : str
        Prepended to every key (:data:`~gensim_im2vec.keys.IMAGE_PREFIX` marks image tokens in documents).
    extensions : iterable of str or None
        File endings to take (lower case, with dot); None takes every file (non-images are
        then skipped with a reason).
    key_rule : str
        How a file's key is made (:data:`gensim_im2vec.keys.KEY_RULES`, ``im2vec extract --keys``):
        "path" (default), "stem" or "flickr-id" (:func:`gensim_im2vec.keys.rule_key`). The rule is
        applied first; two files are a clash when the rule gives them one key.

    Returns
    -------
    list of (key, path)
        Sorted by path, e.g. ``("img:cats/001", Path(".../cats/001.jpg"))``,
        ``("img:my%20cat", Path(".../my cat.png"))`` (by "path", the order of the keys).
        :func:`iter_images` gives the same pairs one folder at a time, without the list.

    Raises
    ------
    NotADirectoryError
        `root` is not a directory.
    KeyRuleError
        A ValueError: files the rule cannot name (by "flickr-id": a name that does not start with the photo id),
        or two files of one key (``a.jpg`` and ``a.png``; by "stem" also ``a/x.jpg`` and
        ``b/x.jpg``), named in one message with the rule: rename or move them, or key the files
        yourself and pass ``(key, path)`` pairs instead of the folder.
    """
    root, exts = _image_root_checked(root, key_rule, extensions)
    return list(_keyed_images(root, prefix, exts, key_rule, paths=True))


def iter_images(
    root, *, prefix: str = IMAGE_PREFIX, extensions: Iterable[str] | None = IMAGE_EXTENSIONS,
    key_rule: str = "path",
) -> Iterator[tuple[str, str]]:
    """:func:`list_images` one folder at a time: the same ``(key, path str)`` pairs in the same order,
    without a list of them (a folder of 100M images listed costs ≈ 22 GB; this holds one folder's
    names). What :func:`gensim_im2vec.distributed.extract_ray` reads a folder with.

    The checks of `root` and `key_rule` are made when it is called; the files the rule cannot name
    and the keys of more than one file are refused (the ValueError of :func:`list_images`) when the
    last pair has been read, so a reader that must not act on a refused folder reads it to the end
    first, as ``extract_ray``'s planning does (:class:`KeyRuleError`). By "stem" and "flickr-id" a key can be any other
    folder's too: those keys' 8-byte digests are kept (8 bytes a file), and a folder with a repeated
    digest is walked a second time to find the files.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> for name in ("b.png", "a/x.jpg", "a b/y.jpg", "notes.txt"):
    ...     os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
    ...     open(os.path.join(root, name), "wb").close()
    >>> [key for key, path in iter_images(root)]   # the order of the keys: '%' sorts before '/'
    ['img:a%20b/y', 'img:a/x', 'img:b']
    """
    root, exts = _image_root_checked(root, key_rule, extensions)
    return _keyed_images(root, prefix, exts, key_rule)


def _image_root_checked(root, key_rule: str, extensions: Iterable[str] | None) -> tuple[Path, set[str] | None]:
    """The checks :func:`list_images` and :func:`iter_images` make when called: `root` a folder, a known
    key rule (and a warning when `root` is a data set whose build was killed); the root and endings."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"image root {str(root)!r} is not a directory.")
    if key_rule not in KEY_RULES:
        raise ValueError(f"key_rule: expected one of {', '.join(map(repr, KEY_RULES))}, got {key_rule!r}.")
    from gensim_im2vec.datasets import warn_unfinished_build

    warn_unfinished_build(root)  # a data set whose build was killed: only part of its images are here
    return root, None if extensions is None else {e.lower() for e in extensions}


def _keyed_images(root: Path, prefix: str, exts: set[str] | None, rule: str,
                  paths: bool = False) -> Iterator[tuple[str, str | Path]]:
    """The pairs of :func:`iter_images` (its arguments checked), and at the end its refusal; with
    `paths` each path a :class:`~pathlib.Path`, its folder's shared as ``Path(folder) / name`` shares
    them (:func:`list_images`)."""
    ignored: Counter = Counter()
    unnamed: list[Path] = []  # files the rule gives no key (by flickr-id: not a Flickr name)
    clashes: list[tuple[str, Path, Path]] = []
    digests = bytearray()  # by "stem" and "flickr-id": each key's 8-byte digest, for the clashes across folders
    last, last_path = None, ""
    in_folder, base, folder_path = None, "", None
    for path_key, folder, name in _image_files(root, exts, ignored):
        if folder is not in_folder:  # (one str object a folder)
            in_folder, base = folder, "" if folder == "." else os.path.join(folder, "")
            folder_path = Path(folder) if paths else None
        if path_key == last:  # one path key, two files (a.jpg, a.png): by any rule one key too
            if rule == "path":
                clashes.append((prefix + path_key, Path(last_path), Path(base + name)))
            elif (key := rule_key(name, "", rule, prefix)) is None:
                unnamed.append(Path(base + name))
            else:  # (found by the digests below)
                digests += _digest64(key).to_bytes(8, "little", signed=True)
            continue
        path = folder_path / name if paths else base + name
        last, last_path = path_key, path
        if rule == "path":
            yield prefix + path_key, path
            continue
        key = rule_key(name, "", rule, prefix)
        if key is None:
            unnamed.append(Path(path))
            continue
        digests += _digest64(key).to_bytes(8, "little", signed=True)
        yield key, path
    if digests:
        repeated, _ = _repeats(np.frombuffer(digests, dtype=np.int64).copy())
        del digests
        if repeated.size:  # a second walk finds the files of those keys (digests can collide: the keys decide)
            wanted = set(repeated.tolist())
            first: dict[str, Path] = {}
            for _, folder, name in _image_files(root, exts, None):
                key = rule_key(name, "", rule, prefix)
                path = name if folder == "." else os.path.join(folder, name)
                if key is None or _digest64(key) not in wanted:
                    continue
                if key in first:
                    clashes.append((key, first[key], Path(path)))
                else:
                    first[key] = Path(path)
    if unnamed or clashes:
        raise KeyRuleError(_key_rule_problems(root, rule, prefix, sorted(unnamed), clashes))
    if ignored:
        logger.info(
            "%s: ignored %i file(s) with other extensions (%s); pass extensions=None to try them",
            root,
            sum(ignored.values()),
            ", ".join(f"{e}: {n}" for e, n in ignored.most_common(5)),
        )


def _image_files(root: Path, exts: set[str] | None,
                 ignored: Counter | None) -> Iterator[tuple[str, str, str]]:
    """Every file under `root` with one of `exts` (None: any), not hidden, as ``(path key, folder,
    file name)``: the path key is the relative path without extension, encoded (``image_key`` without a
    prefix), the folder ``str(Path(folder))`` as ``os.walk`` names it (one str object for its files).

    In the order of the path keys, a folder at a time: its files and subfolders sorted together, a
    file by its key's last part and a subfolder by its encoded name and ``/`` (all its keys start with
    that), so each subfolder is walked where its keys fall. Subfolders whose names encode alike (``a
    b`` and ``a%20b``) hold keys of one prefix and are walked as one. Symlinks are followed and each
    real folder is entered once, under the name a walk in the order of the raw names meets it by first
    (:func:`_folder_owners`: the name ``list_images`` keyed it by when it sorted a whole listing; a
    second link, a loop: info log); a folder that cannot be read is left out with a warning (as
    :func:`~gensim_im2vec.corpora.walk_dirs`). Files of other endings are counted in `ignored`. Held
    at once: the folders' owners and the entries of the folders on the way down (≈ 200 bytes a file
    of the largest folder)."""
    owners = _folder_owners(root)
    seen: dict[tuple[int, int], str] = {}

    def entries(folders: list[str]) -> list[tuple]:
        """The entries of the folders `folders` (one key, one or more names), sorted:
        ``(key part, name, None, folder)`` a file, ``(key part, "", [paths], None)`` subfolders."""
        out, subs = [], {}
        for raw in folders:
            try:
                st = os.stat(raw)
            except OSError as err:
                _warn_unreadable(err)
                continue
            ident = (st.st_dev, st.st_ino)
            first = owners.get(ident, seen.get(ident, raw))
            if ident in seen or first != raw:
                logger.info("%s: not entered, it is the folder %s again (a symlink loop or a second link)",
                            raw, seen.get(ident, first))
                continue
            seen[ident] = raw
            clean = os.fspath(Path(raw))
            here = []
            try:
                with os.scandir(raw) as it:
                    for e in it:
                        name = e.name
                        if name.startswith("."):
                            continue
                        try:
                            is_dir = e.is_dir()
                        except OSError:
                            is_dir = False
                        if is_dir:
                            subs.setdefault(encode_key(name) + "/", []).append((name, os.path.join(raw, name)))
                            continue
                        stem, ext = os.path.splitext(name)
                        if exts is not None and ext.lower() not in exts:
                            if ignored is not None:
                                ignored[ext.lower() or "(no extension)"] += 1
                            continue
                        here.append((encode_key(stem), name, None, clean))
            except OSError as err:  # (as os.walk: a folder whose listing fails is left out whole)
                _warn_unreadable(err)
                continue
            out += here
            del here
        out += [(k, "", [p for _, p in sorted(group)], None) for k, group in subs.items()]
        out.sort()  # (two entries never tie: a key part once per subfolder key, a file's name once per folder)
        return out

    stack = [("", iter(entries([os.fspath(root)])))]
    while stack:
        key, it = stack[-1]
        entry = next(it, None)
        if entry is None:
            stack.pop()
        elif entry[2] is not None:  # a subfolder (or several whose names encode alike)
            stack.append((key + entry[0], iter(entries(entry[2]))))
        else:
            yield key + entry[0], entry[3], entry[1]


def _folder_owners(root: Path) -> dict[tuple[int, int], str]:
    """``{(device, inode): path}`` of every folder under `root` (hidden ones left out), each under the
    name a top-down walk following symlinks, subfolders in the order of their raw names, enters it by
    first: which of two links to one folder keys its files (what :func:`list_images` did before it
    walked in the order of the keys). Folders only: a few hundred bytes a folder, no file kept."""
    owners: dict[tuple[int, int], str] = {}
    for _, dirnames, _ in walk_dirs(root, quiet=True, seen=owners):  # (the main walk says what it skips)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return owners


def _key_rule_problems(root: Path, rule: str, prefix: str, unnamed: list[Path],
                       clashes: list[tuple[str, Path, Path]]) -> str:
    """The message of :func:`list_images` for files the key rule cannot name and keys of more than
    one file, each said in the terms of `rule`."""
    parts = []
    if unnamed:
        shown = ", ".join(str(p) for p in unnamed[:5]) + (", ..." if len(unnamed) > 5 else "")
        n = len(unnamed)
        parts.append(
            f"{n} file{'' if n == 1 else 's'} under {str(root)!r} {'has' if n == 1 else 'have'} no key by --keys "
            f"flickr-id: {'it' if n == 1 else 'each'} is not named as Flickr names photos ({shown}), and an image key "
            f"is {prefix!r} + the photo id that starts the file's name (<id>_<secret>_o.jpg, the id digits only). "
            f"Give {'it a Flickr name' if n == 1 else 'them Flickr names'}, move {'it' if n == 1 else 'them'} out of "
            f"the folder, or key the folder by --keys path or stem."
            if rule == "flickr-id" else
            f"{n} file(s) under {str(root)!r} have no key by --keys {rule} ({shown})."
        )
    if clashes:
        shown = "; ".join(f"{k!r}: {a} and {b}" for k, a, b in clashes[:5])
        if len(clashes) > 5:
            shown += "; ..."
        same_stem = [(a, b) for _, a, b in clashes if a.with_suffix("") == b.with_suffix("")]
        how = ("From the shell, rename or move one file of each pair" +
               (" (every `im2vec extract --keys` rule drops the extension, --keys path included)"
                if rule == "path" or same_stem else "") +
               (", or key the folder by --keys path (a file's whole path without its extension)"
                if rule != "path" and len(same_stem) < len(clashes) else "") + ".")
        parts.append(
            f"{len(clashes)} key(s) under {str(root)!r} belong to more than one file ({shown}): by --keys {rule} an "
            f"image key is {describe_key_rule(rule, prefix)}, so these files cannot be told apart. {how} From Python, pass the "
            f"images as explicit (key, path) pairs instead of the folder (`images=[(key, path), ...]`), with keys "
            f"of your own, e.g. with the extension ({prefix + 'x.jpg'!r}); documents must name the images by those "
            f"keys."
        )
    return " ".join(parts)


def _is_utf8(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def images_under(root, prefix: str, key_rule: str = "path") -> list[tuple[str, str]]:
    """:func:`list_images` of the folder `root` to extract, keyed by `key_rule`, as ``(key, path str)``; a
    folder without image files is refused (naming it), rather than making an empty feature store."""
    return list(images_in(root, prefix, key_rule))


def images_in(root, prefix: str, key_rule: str = "path") -> Iterator[tuple[str, str]]:
    """:func:`images_under` one folder at a time (:func:`iter_images`): a folder without image files is
    refused when it has been read to the end."""
    pairs = iter_images(root, prefix=prefix, key_rule=key_rule)

    def read() -> Iterator[tuple[str, str]]:
        n = 0
        for pair in pairs:
            n += 1
            yield pair
        if not n:
            endings = " ".join(sorted(IMAGE_EXTENSIONS))
            raise ValueError(f"no image files under {os.fspath(root)!r} (file endings {endings}); give the folder "
                             f"that holds the images.")

    return read()


def _as_items(images, prefix: str, key_rule: str | None = None) -> list[tuple[str, str]]:
    if isinstance(images, (str, os.PathLike)):
        return images_under(images, prefix, key_rule or "path")
    items = []
    for it in images:
        if isinstance(it, (str, os.PathLike)) or not isinstance(it, (tuple, list)) or len(it) != 2:
            raise TypeError(
                f"images: expected a directory or (key, path) pairs, got the item {it!r}; "
                f"use list_images(root) to key files by their relative path."
            )
        k, p = it
        if not isinstance(k, str) or not k or "\n" in k or "\r" in k:
            raise ValueError(f"images: key {k!r} (for {p!r}) must be a non-empty str without line breaks.")
        if not _is_utf8(k):
            raise ValueError(
                f"images: key {k!r} (for {p!r}) is not valid Unicode (a file name's bytes that are not UTF-8?); "
                f"keys are stored as UTF-8: use {encode_key(k)!r}."
            )
        if encode_key(k) != k:
            raise ValueError(
                f"images: key {k!r} (for {p!r}) contains whitespace, which splits it into several tokens in "
                f"a document; use {encode_key(k)!r} (gensim_im2vec.keys.encode_key / image_key)."
            )
        items.append((k, str(p)))
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        dups = [k for k in keys if k in seen or seen.add(k)]
        raise ValueError(f"images: duplicate keys {dups[:5]!r}; every image needs its own key.")
    return items


def _as_pil_images(images) -> list[Image.Image]:
    """The images given to :meth:`FeatureExtractor.__call__` as PIL images; one image instead of a
    list is refused (a single HxWx3 array would be taken as H images of its rows)."""
    if isinstance(images, Image.Image):
        raise TypeError("images: got one PIL image; pass a list of images, e.g. fx([img]).")
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise TypeError(f"images: got one array of shape {images.shape}; pass a list of images (fx([array]) for "
                        f"one image) or an (N, H, W, C) uint8 batch.")
    out = []
    for i, im in enumerate(images):
        if isinstance(im, np.ndarray):
            if im.dtype != np.uint8 or im.ndim not in (2, 3) or (im.ndim == 3 and im.shape[2] not in (1, 3, 4)):
                raise TypeError(
                    f"images[{i}]: expected a uint8 array of shape (H, W) or (H, W, 1|3|4), got {im.dtype} of shape "
                    f"{im.shape}; convert floats in [0, 1] with (a * 255).round().astype(np.uint8), CHW with "
                    f"a.transpose(1, 2, 0)."
                )
            im = Image.fromarray(im[:, :, 0] if im.ndim == 3 and im.shape[2] == 1 else im)
        if not isinstance(im, Image.Image):
            raise TypeError(f"images[{i}]: expected a PIL image or a uint8 array, got {type(im).__name__}.")
        out.append(im)
    return out


# ----------------------------------------------------------------------------- model building


def _close(name: str, names: Iterable[str], n: int = 5) -> str:
    m = difflib.get_close_matches(name, list(names), n=n, cutoff=0.5)
    return f" Close names: {', '.join(map(repr, m))}." if m else ""


def _check_arch(arch: str) -> None:
    import torchvision.models as tvm

    names = tvm.list_models(module=tvm)
    if arch not in names:
        raise ValueError(
            f"arch: {arch!r} is not a torchvision classification model.{_close(arch, names)} "
            f"All names: torchvision.models.list_models(module=torchvision.models)."
        )


def _resolve_weights(arch: str, weights):
    """→ (enum or None, local checkpoint Path or None, identity string)."""
    import torchvision.models as tvm

    enum_cls = tvm.get_model_weights(arch)
    if weights is None:
        return None, None, None
    if isinstance(weights, tvm.WeightsEnum):
        if type(weights) is not enum_cls:
            raise ValueError(f"weights: {weights} belong to another model than arch={arch!r}; use {enum_cls.__name__}.")
        return weights, None, str(weights)
    if isinstance(weights, os.PathLike) or (
        isinstance(weights, str)
        and (os.sep in weights or weights.endswith((".pth", ".pt", ".ckpt", ".bin")) or os.path.isfile(weights)
             or weights.startswith("~"))
    ):
        p = Path(weights).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"weights: checkpoint file {str(p)!r} does not exist.")
        digest = file_digest(p)
        for w in enum_cls:  # the official file under another path is the same weights
            url_name = os.path.basename(w.url)
            if url_name == p.name and digest.startswith(url_name.rsplit("-", 1)[-1].split(".")[0]):
                return w, p, str(w)
        return None, p, f"file:{p.name}#sha256:{digest[:16]}"
    if isinstance(weights, str):
        name = weights.split(".", 1)[1] if weights.startswith(enum_cls.__name__ + ".") else weights
        if "." in name:
            raise ValueError(
                f"weights: {weights!r} are not weights of {arch!r}; use one of "
                f"{', '.join(repr(w.name) for w in enum_cls)} or 'DEFAULT'."
            )
        try:
            w = enum_cls[name] if name != "DEFAULT" else enum_cls.DEFAULT
        except KeyError:
            raise ValueError(
                f"weights: {arch!r} has no weights {weights!r}; use one of "
                f"{', '.join(repr(w.name) for w in enum_cls)}, 'DEFAULT', a checkpoint path, or None."
            ) from None
        return w, None, str(w)
    raise TypeError(f"weights: expected a name, a WeightsEnum, a checkpoint path or None, got {weights!r}.")


def _load_state_dict(path: Path) -> dict:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds on a file that is no checkpoint (IndexError, ...)
        raise ValueError(
            f"weights: {str(path)!r} is not a PyTorch checkpoint ({type(e).__name__}: {str(e)[:200]}); give a "
            f"file written by torch.save(model.state_dict(), path), a weights name such as 'IMAGENET1K_V1', "
            f"or 'none' for random weights."
        ) from None
    for k in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and k in sd and isinstance(sd[k], dict):
            sd = sd[k]
    if not isinstance(sd, dict):
        raise ValueError(f"weights: {str(path)!r} holds a {type(sd).__name__}, not a state_dict.")
    return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}


class LayerNotFoundError(ValueError):
    """``layer=`` names no node of the model's graph. Its message names close names and
    :func:`layer_names`; ``arch`` and ``names`` (the graph's nodes, input to output) let a caller
    list them its own way (``im2vec extract --layer``); :func:`block_ends` picks the likely ones.
    ``layer``: the name given."""

    def __init__(self, message: str, arch: str, layer: str, names: Sequence[str]) -> None:
        super().__init__(message)
        self.arch, self.layer = arch, layer
        self.names = list(names)

    def __reduce__(self):  # (pickled by its arguments, as a worker process or Ray passes it on)
        return type(self), (self.args[0], self.arch, self.layer, self.names)


def block_ends(names: Sequence[str]) -> list[str]:
    """The last node of each block of a graph's `names` (:func:`layer_names`), input to output: the
    outputs a feature layer is usually taken from, not a block's inner convolutions and norms.

    A block is a node's first two name parts when the second is a number (``layer4.2`` of ResNet,
    ``features.17`` of MobileNetV2), else its first three (``encoder.layers.encoder_layer_11`` of a
    ViT); a name of one or two parts is its own block. The graph's input (``x``) is left out.

    >>> block_ends(["x", "conv1", "layer1.0.conv1", "layer1.0.relu", "layer1.1.relu", "avgpool", "fc"])
    ['conv1', 'layer1.0.relu', 'layer1.1.relu', 'avgpool', 'fc']
    """
    ends: dict[str, str] = {}
    for name in names:
        if name == "x":
            continue
        parts = name.split(".")
        block = ".".join(parts[:2] if len(parts) <= 2 or parts[1].isdigit() else parts[:3])
        ends.pop(block, None)  # (re-inserted: the block's place is where it ends)
        ends[block] = name
    return list(ends.values())


def _last_linear(model: nn.Module) -> str | None:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def layer_names(arch: str) -> list[str]:
    """The graph node names of `arch` usable as ``layer=`` (eval mode), input to output."""
    import torchvision.models as tvm
    from torchvision.models.feature_extraction import get_graph_node_names

    _check_arch(arch)
    return get_graph_node_names(tvm.get_model(arch, weights=None))[1]


class _FeatureModel(nn.Module):
    """The body of a classifier returning one (N, D) feature tensor."""

    def __init__(self, body: nn.Module, node: str | None) -> None:
        super().__init__()
        self.body = body
        self.node = node

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if isinstance(out, dict):
            out = out[self.node]
        if out.ndim == 4:
            out = out.mean(dim=(2, 3))
        elif out.ndim == 3:
            out = out.mean(dim=1)
        return out


def _layer_node(arch: str, layer: str, names: Sequence[str]) -> str:
    """The graph node of `arch` that ``layer=`` names: a node, a Caffe-style alias
    (:data:`LAYER_ALIASES`) or a module's name (its last node, the module's output, as torchvision
    reads it); `names` the graph's nodes. Raises :class:`LayerNotFoundError` for none of these."""
    alias = LAYER_ALIASES.get(arch, {})
    node = alias.get(layer, layer)
    inside = [n for n in names if n.startswith(f"{node}.")] if node not in names else []
    if inside:  # a module's name ("layer4"): its last node, the module's output (as torchvision reads it)
        node = inside[-1]
    if node not in names:
        hint = f" Caffe-style names for {arch}: {sorted(alias)}." if alias else ""
        raise LayerNotFoundError(
            f"layer: {layer!r} is not a node of {arch}.{_close(node, names)}{hint} Hint: use "
            f"gensim_im2vec.features.layer_names({arch!r}) (torchvision's get_graph_node_names) to "
            f"list them; the last ones are {names[-4:]}.", arch, layer, names,
        )
    return node


def _check_layer(arch: str, layer: str | None) -> None:
    """Refuse a ``layer=`` that names no node of `arch`, as building the extractor would, without
    loading weights (the graph of a randomly initialised `arch` is traced: a second or so for a
    large model). None or ``"penultimate"``: nothing to check.

    Raises
    ------
    ValueError
        `arch` is not a torchvision classification model.
    LayerNotFoundError
        `layer` names no node, alias or module of `arch`.
    """
    if layer in (None, _PENULTIMATE):
        return
    _layer_node(arch, layer, layer_names(arch))


def _build_model(arch: str, enum, ckpt: Path | None, layer: str | None, seed: int):
    import torchvision.models as tvm
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    if enum is not None and ckpt is None:
        from gensim_im2vec.weights import ensure_weights

        ensure_weights(enum)
        model = tvm.get_model(arch, weights=enum)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = tvm.get_model(arch, weights=None)
        if ckpt is not None:
            sd = _load_state_dict(ckpt)
            last = _last_linear(model)
            wkey = f"{last}.weight" if last else None
            if wkey in sd and tuple(sd[wkey].shape) != tuple(model.get_submodule(last).weight.shape):
                model = tvm.get_model(arch, weights=None, num_classes=int(sd[wkey].shape[0]))
            try:
                model.load_state_dict(sd)
            except RuntimeError as e:
                raise ValueError(
                    f"weights: checkpoint {str(ckpt)!r} does not fit arch={arch!r}: {str(e)[:400]}. "
                    f"Pass the arch it was trained for."
                ) from None
    model.eval()
    if layer in (None, _PENULTIMATE):
        last = _last_linear(model)
        if last is not None:
            parent, _, child = last.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, nn.Identity())
            return _FeatureModel(model, None), _PENULTIMATE
    names = get_graph_node_names(model)[1]
    if layer in (None, _PENULTIMATE):
        # no Linear head (SqueezeNet's is convolutional): take the pooled output of the body
        body_nodes = [n for n in names if n.split(".")[0] == "features"]
        if not body_nodes:
            raise ValueError(
                f"layer=None: {arch} has no final Linear layer whose input could be taken; pass a node "
                f"name as layer= (gensim_im2vec.features.layer_names({arch!r}) lists them)."
            )
        layer = body_nodes[-1]
    node = _layer_node(arch, layer, names)
    body = create_feature_extractor(model, return_nodes={node: node})
    return _FeatureModel(body.eval(), node), node


def _resolve_device(device) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for but CUDA is not available here; use 'cpu' or 'auto'.")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise ValueError(f"device: {device!r} was asked for but this machine has {torch.cuda.device_count()} CUDA "
                         f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}.")
    if d.type not in ("cpu", "cuda"):
        try:
            torch.empty(1, device=d)
        except Exception as e:  # noqa: BLE001 - no backend compiled in, no device attached, ...
            raise ValueError(f"device: {device!r} cannot be used here ({type(e).__name__}: {str(e)[:200]}); use "
                             f"'cpu', 'cuda' or 'auto'.") from None
    return d


def _count(value, name: str, minimum: int):
    """`value` as an int >= `minimum` (numpy ints too); bools and floats refused, naming `name`."""
    if is_int(value) and value >= minimum:
        return int(value)
    raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}.")


def _resolve_batching(batch_size: int | None, num_workers: int | None, device: torch.device) -> tuple[int, int]:
    """Images per forward pass and decoding processes: as given (checked), or chosen for the device."""
    cuda = device.type == "cuda"
    cores = os.cpu_count() or 1
    if batch_size is None:
        # CPU: small batches stay in cache (MobileNetV2, 1 thread, channels_last: 57 img/s at
        # batch 4, 32 img/s at 32; ResNet-50 is also fastest at 4)
        batch_size = 256 if cuda else 4
    batch_size = _count(batch_size, "batch_size", 1)
    if num_workers is None:
        num_workers = min(16, max(1, cores - 1)) if cuda else max(1, cores // 2)
    return batch_size, _count(num_workers, "num_workers", 0)


def _resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"precision: expected 'auto', 'fp32', 'bf16' or 'fp16', got {precision!r}.")
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision: fp16 autocast is for CUDA; use 'fp32' or 'bf16' on CPU.")
    return precision


# ----------------------------------------------------------------------------- progress


class Progress:
    """Progress of a long loop, readable on a terminal and in a log file alike.

    On a terminal (`stream` is a TTY) a tqdm bar with the rate; anywhere else (a log file, CI, a
    pipe) no bar, which would write a line per update, but an info log line every `every` of the
    total or every `interval` seconds, whichever comes first, and one at the end:
    ``extract: 1200 of 4000 img (30%), 57.1 img/s``.

    Parameters
    ----------
    total : int
        Units the loop will do.
    enabled : bool
        False: neither bar nor log lines.
    desc, unit : str
        Shown before the counts and after them.
    every : float
        Share of the total between two log lines (0.1: ten lines per run).
    interval : float
        Seconds between two log lines at most.
    stream : file, optional
        Where the bar goes (default ``sys.stderr``); a log line goes to this module's logger.
    """

    def __init__(self, total: int, *, enabled: bool = True, desc: str = "extract", unit: str = "img",
                 every: float = 0.1, interval: float = 30.0, stream=None) -> None:
        self.total, self.done, self.desc, self.unit = int(total), 0, desc, unit
        self.enabled, self.interval = bool(enabled), float(interval)
        self.step = max(1, math.ceil(self.total * every))
        self.t0 = self._last = time.perf_counter()
        self._next, self._last_logged = self.step, 0
        stream = sys.stderr if stream is None else stream
        self.bar = None
        if self.enabled and _is_terminal(stream):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit=unit, desc=desc, smoothing=0.05, file=stream)

    def update(self, n: int) -> None:
        """`n` more units done."""
        self.done += int(n)
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled:
            now = time.perf_counter()
            if self.done >= self._next or now - self._last >= self.interval:
                self._log(now)

    def close(self) -> None:
        """End the bar, or log the last line (when the last update did not)."""
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.done and self._last_logged != self.done:
            self._log(time.perf_counter())

    def _log(self, now: float) -> None:
        secs = now - self.t0
        logger.info("%s: %i of %i %s (%.0f%%), %.1f %s/s", self.desc, self.done, self.total, self.unit,
                    100.0 * self.done / max(self.total, 1), self.done / secs if secs > 0 else 0.0, self.unit)
        self._last, self._last_logged = now, self.done
        self._next = (self.done // self.step + 1) * self.step


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


# ----------------------------------------------------------------------------- the extractor


@dataclass
class ExtractionReport:
    """What one :meth:`FeatureExtractor.extract` call did.

    Attributes
    ----------
    store : FeatureStore
        The consolidated store (all rows, also earlier ones).
    total : int
        Images given.
    extracted : int
        Rows added by this call.
    already : int
        Images already in the store (skipped without work: a resume or an append).
    skipped : dict of str to str
        Images this call could not use, with the reason.
    seconds : float
    images_per_second : float
        Images processed (extracted + skipped) per second of this call.
    decode_fallbacks : dict of str to int
        With ``jpeg_device``: why files were decoded by PIL instead of ``decode_jpeg``
        ("PNG file", "CMYK JPEG", "decode_jpeg failed", ...) → how many; empty otherwise.
    stage_seconds : dict of str to float
        Where the main process spent `seconds`: ``"input"`` waiting for the next decoded batch
        (the decoding workers; with ``jpeg_device``, also launching ``decode_jpeg`` and the
        resize), ``"model"`` moving the batch to the device, normalising it and the forward pass
        until its features are back (on CUDA this includes the GPU's share of the decoding queued
        before it: the GPU runs it in order), ``"write"`` L2/PCA and the store's shards, and
        ``"other"`` the rest (opening the store, listing the images, fitting PCA, closing).
    retried : int
        Images the store listed as skipped by an earlier run that this call tried again
        (``retry_skipped=True``); those it could still not use are in `skipped` again.
    skipped_before : int
        Images the store lists as skipped by an earlier run that this call left alone
        (``retry_skipped=False``); their reasons are in the store's ``skipped.json``.
    changed : int
        Images among `already` whose file changed on disk since its row was extracted (its size or
        modification time differs from the stamp the store recorded, or it can no longer be
        read): the store keeps their old rows (said in a warning with the fix). Images stored
        without a stamp (a store written before stamps were recorded) cannot be checked.
    changed_keys : list of str
        Their keys.
    underflow : int
        Rows this call wrote that a float16 store cannot hold (:func:`~gensim_im2vec.store.float16_losses`): the
        model's values are below float16's range (random weights give ~1e-8), so the stored row
        is all zeros or nearly. They are written (the run goes on), and :meth:`summary` ends
        with the fix: extract into a new store with ``dtype="float32"``. Im2Vec refuses an
        all-zero row and learns nothing true from a damaged one.
    underflow_keys : list of str
        The first :data:`~gensim_im2vec.store.UNDERFLOW_KEYS_KEPT` of them.
    """

    store: FeatureStore
    total: int
    extracted: int
    already: int
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    images_per_second: float = 0.0
    decode_fallbacks: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    retried: int = 0
    skipped_before: int = 0
    changed: int = 0
    changed_keys: list[str] = field(default_factory=list)
    underflow: int = 0
    underflow_keys: list[str] = field(default_factory=list)

    def summary(self) -> str:
        kinds = Counter(r.split(":", 1)[0] for r in self.skipped.values())
        why = ", ".join(f"{k}: {n}" for k, n in kinds.most_common()) or "none"
        pil = ""
        if self.decode_fallbacks:
            pil = (f", {sum(self.decode_fallbacks.values())} decoded by PIL instead of decode_jpeg ("
                   + ", ".join(f"{k}: {n}" for k, n in self.decode_fallbacks.items()) + ")")
        again = retry_note(self.retried, self.skipped_before)
        changed = ""
        if self.changed:
            changed = (f" ({self.changed} of them changed on disk since they were extracted: their old rows are "
                       f"kept, extract into a new store to use the new files)")
        return (
            f"{self.extracted} extracted in {self.seconds:.1f}s ({self.images_per_second:.1f} images/s), "
            f"{self.already} already stored{changed}, {len(self.skipped)} skipped ({why}){again}{pil}; store "
            f"{self.store.path} holds {len(self.store)} rows of dim {self.store.dim}{self._underflow()}{self._stages()}"
        )

    def _underflow(self) -> str:
        if not self.underflow:
            return ""
        return "; WARNING: " + underflow_message(self.underflow, self.extracted, self.underflow_keys)

    def _stages(self) -> str:
        shares = stage_shares(self.stage_seconds)
        return f"; time: {shares}" if shares else ""


def underflow_message(count: int, written: int, keys: Sequence[str]) -> str:
    """What :class:`ExtractionReport` says of `count` of the `written` rows that underflow float16
    (:func:`~gensim_im2vec.store.float16_losses`), `keys` some of them, with the fix."""
    shown = ", ".join(repr(k) for k in keys[:3]) + (", ..." if count > 3 else "")
    return (f"{count} of the {written} rows written underflow float16 (the model's values are below "
            f"{FLOAT16_TINY:.2g}: the stored rows are all zeros or nearly, e.g. {shown}); Im2Vec cannot use them. "
            f"Extract into a new store with dtype='float32' (im2vec extract --dtype float32 -o NEW_STORE, or "
            f"--mode overwrite to replace this one)")


class ChangedFilesError(ValueError):
    """Images already in a feature store changed on disk since they were extracted, and the run was
    asked to stop then (``on_changed="raise"``): a store cannot re-extract them in place.
    ``changed``: their ``(key, path)`` (the first of them at least; empty when not known)."""

    def __init__(self, message: str, changed: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.changed = list(changed)


class ImageRootError(ChangedFilesError, StoreMismatchError):
    """Images already in a feature store look changed on disk, in a run from another folder than the
    one the store's keys are relative to (``metadata["image_root"]``), and the run was asked to stop
    then (``on_changed="raise"``): files of this folder have keys the store holds, but not the size and
    modification time it recorded, so they may be other pictures with the same names (or the folder was
    copied without its modification times). A :class:`ChangedFilesError` whose message says which.
    ``recorded``: the store's folder; ``root``: this run's; ``changed``: the ``(key, path)`` in question
    (the first of them at least); ``keys``: their keys."""

    def __init__(self, message: str, recorded: str, root: str, changed: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message, changed)
        self.recorded, self.root = recorded, root
        self.keys = [k for k, _ in self.changed]


class FeatureExtractor:
    """A torchvision classifier cut at a feature layer, ready to turn images into vectors.

    Parameters
    ----------
    arch : str
        A torchvision classification model name (``torchvision.models.list_models()``).
    weights : str, torchvision.models.WeightsEnum, path or None
        ``"IMAGENET1K_V1"``/``"DEFAULT"``/full enum name; a local ``state_dict`` checkpoint
        (the official torchvision file is recognised as its enum); None: random weights
        (seeded by `seed`, so reruns agree; for tests).
    layer : str, optional
        None: the penultimate activation (input of the last Linear layer). A graph node name
        (:func:`layer_names`), a module's name (``"layer4"``: its last node) or a Caffe alias
        (``"fc7"`` for AlexNet/VGG); 4-D maps are average-pooled over space, token sequences
        over tokens.
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device
        "auto" takes CUDA when available.
    batch_size : int, optional
        Images per forward pass; default 256 on CUDA, 4 on CPU (small batches stay in cache).
    num_workers : int, optional
        Decoding processes; 0 decodes in the main process. Default: CPU cores - 1 (at most 16)
        on CUDA, half the cores (at least 1) on CPU, where the model needs the rest.
    precision : {"auto", "fp32", "bf16", "fp16"}
        Autocast dtype; "auto" is bf16 (fp16 without bf16 support) on CUDA and fp32 on CPU.
        Features are returned and stored from float32.
    threads : int, optional
        torch intra-op threads on CPU during extraction (restored afterwards); default: the
        cores not used by decoding workers.
    max_pixels : int or None
        Images with more decoded pixels are skipped (huge JPEGs are first decoded at 1/2-1/8);
        None: no limit. It replaces PIL's decompression-bomb limit (179M pixels).
    draft : bool, optional
        Let PIL's JPEG decoder downscale large images by 1/2-1/8 (much faster; close features:
        MobileNetV2 ImageNet on 512-1280 px photos, cosine to full-size decoding >= 0.984).
        None (default): True, except with `jpeg_device`, which decodes at full size (True is
        then refused).
    jpeg_device : {"cpu", "cuda", "cuda:N", "auto"}, torch.device or None
        None (default): worker processes decode every file with PIL. A device: workers only read
        the files' bytes and check their headers; the main process decodes each batch's JPEGs
        with ``torchvision.io.decode_jpeg(list, device=jpeg_device)`` (nvJPEG, batched, on CUDA;
        libjpeg-turbo one by one on "cpu"), applies the EXIF orientation and resizes/crops the
        tensors there ("auto": the model's device). Files it cannot take are decoded by PIL in
        the workers, per file, with the reason counted in
        :attr:`ExtractionReport.decode_fallbacks`: PNG and other formats, CMYK JPEGs, JPEGs
        over `max_pixels` or without an end marker (truncated), and files ``decode_jpeg``
        rejects. Features agree with PIL decoding at ``draft=False`` to cosine >= 0.999 per
        image (tested, MobileNetV2 ImageNet, 20 photo JPEGs: min 0.99965), so the store's identity
        (``preprocessing``) is that of ``draft=False`` and either decoder may continue it.
    seed : int
        Seed of the random weights when ``weights=None``.
    progress : bool
        Show progress with images/s: a tqdm bar on a terminal, an info log line every 10% or 30 s
        otherwise (:class:`Progress`).

    Attributes
    ----------
    model : torch.nn.Module
    transform : torchvision.transforms._presets.ImageClassification
        ``weights.transforms()`` (for random or unknown weights: the arch's default weights').
    dim : int
        Feature dimension of the chosen layer.
    metadata : dict
        Provenance written into the store.
    """

    def __init__(
        self,
        arch: str = DEFAULT_ARCH,
        weights=DEFAULT_WEIGHTS,
        layer: str | None = None,
        *,
        device="auto",
        batch_size: int | None = None,
        num_workers: int | None = None,
        precision: str = "auto",
        threads: int | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        draft: bool | None = None,
        jpeg_device: str | torch.device | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        import torchvision.models as tvm

        _check_arch(arch)
        self.arch = arch
        self.device = _resolve_device(device)
        self.precision = _resolve_precision(precision, self.device)
        batch_size, num_workers = _resolve_batching(batch_size, num_workers, self.device)
        self.batch_size = batch_size
        self.num_workers = num_workers
        default_threads = max(1, (os.cpu_count() or 1) - num_workers)
        self.threads = default_threads if threads is None else _count(threads, "threads", 1)
        if max_pixels is not None:
            max_pixels = _count(max_pixels, "max_pixels (None: no limit)", 1)
        self.progress = progress
        self.jpeg_device, draft = _resolve_jpeg_device(jpeg_device, draft, self.device)
        enum, ckpt, weights_id = _resolve_weights(arch, weights)
        self.weights = enum
        self.model, self.layer = _build_model(arch, enum, ckpt, layer, seed)
        if weights_id is None:
            weights_id = f"none (random init, seed={seed})"
        transform_src = enum if enum is not None else tvm.get_model_weights(arch).DEFAULT
        self.transform = transform_src.transforms()
        self._prep = _Preprocess(self.transform, max_pixels=max_pixels, draft=draft)
        if self.jpeg_device is not None:
            _check_jpeg_decoding(self.jpeg_device, self._prep)
        self._channels_last = True  # faster on CUDA, and on CPU too (measured: 1.0-1.8x)
        self.model.to(self.device, memory_format=torch.channels_last)
        self.dim = self._probe_dim()
        self.metadata = self._provenance(weights_id, layer)
        logger.info(
            "feature extractor: %s weights=%s layer=%s dim=%i on %s (%s), batch %i, %i decode workers, %s",
            arch,
            weights_id,
            self.layer,
            self.dim,
            self.device,
            self.precision,
            batch_size,
            num_workers,
            self.metadata["decoding"],
        )

    def _provenance(self, weights_id: str, layer: str | None) -> dict:
        """What a store records about the features: model, weights, layer, preprocessing, versions."""
        import torchvision

        preprocessing = " ".join(repr(self.transform).split())
        if self._prep.draft_size:
            preprocessing += f" + JPEG draft decode (shorter side >= {self._prep.draft_size})"
        return {
            "arch": self.arch,
            "weights": weights_id,
            "layer": self.layer if layer in (None, _PENULTIMATE) or layer == self.layer else f"{layer} ({self.layer})",
            "feature_dim": self.dim,
            "preprocessing": preprocessing,
            "torch_version": torch.__version__,
            "torchvision_version": torchvision.__version__,
            "precision": self.precision,
            "decoding": "PIL in worker processes"
            if self.jpeg_device is None
            else f"torchvision.io.decode_jpeg on {self.jpeg_device} (batched); PIL for other files",
        }

    def __repr__(self) -> str:
        return (
            f"FeatureExtractor(arch={self.arch!r}, weights={self.metadata['weights']!r}, layer={self.layer!r}, "
            f"dim={self.dim}, device={str(self.device)!r}, precision={self.precision!r})"
        )

    # -- forward ------------------------------------------------------------------------------

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dt = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dt)

    def _probe_dim(self) -> int:
        crop = getattr(self.transform, "crop_size", [224])[0]
        x = torch.zeros(1, 3, crop, crop, device=self.device)
        with torch.inference_mode():
            return int(self.model(x).shape[1])

    def _forward(self, x: torch.Tensor) -> np.ndarray:
        x = x.to(self.device, non_blocking=True)
        x = self._prep.finish(x)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            out = self.model(x)
        return out.float().cpu().numpy()

    @contextlib.contextmanager
    def _runtime(self):
        """CPU: set intra-op threads for the run; CUDA: cudnn autotuning. Both restored."""
        old_threads = torch.get_num_threads()
        old_bench = torch.backends.cudnn.benchmark
        try:
            if self.device.type == "cpu":
                torch.set_num_threads(self.threads)
            else:
                torch.backends.cudnn.benchmark = True
            yield
        finally:
            torch.set_num_threads(old_threads)
            torch.backends.cudnn.benchmark = old_bench

    def __call__(self, images: Sequence | np.ndarray) -> np.ndarray:
        """Features of in-memory images, float32 (n, dim): a list of PIL images or of (H, W) /
        (H, W, 1|3|4) uint8 arrays, or one (N, H, W, C) uint8 array."""
        pil = [to_rgb(im) for im in _as_pil_images(images)]
        if not pil:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with self._runtime():
            for s in range(0, len(pil), self.batch_size):
                x = torch.stack([self._prep.pil_to_input(im) for im in pil[s : s + self.batch_size]])
                out.append(self._forward(x))
        return np.concatenate(out)

    def _loader(self, paths: Sequence[str], batches: list[list[int]]):
        """Yield ``(idx, x, bad, fell_back)`` per batch (:func:`gensim_im2vec.decode._load_batches`
        with this extractor's decoding workers, preprocessing and `jpeg_device`)."""
        return _load_batches(paths, batches, self._prep, num_workers=self.num_workers,
                             pin_memory=self.device.type == "cuda", jpeg_device=self.jpeg_device)

    def _batches(self, positions: Sequence[int]) -> list[list[int]]:
        """Group dataset indices by global position // batch_size, so a resumed run forms the
        same batches as a clean one (bit-identical features where kernels are deterministic)."""
        batches: list[list[int]] = []
        last = None
        for i, pos in enumerate(positions):
            g = pos // self.batch_size
            if g != last:
                batches.append([])
                last = g
            batches[-1].append(i)
        return batches

    def _fit_pca(self, items, n_components: int, sample: int, normalise: str) -> PCA:
        n = len(items)
        take = np.unique(np.linspace(0, n - 1, num=min(sample, n)).astype(int)) if n else np.array([], int)
        paths = [items[i][1] for i in take]
        logger.info("fitting PCA (%i components) on %i of %i images", n_components, len(paths), n)
        feats = []
        with self._runtime():
            for _, x, _, _ in self._loader(paths, self._batches(range(len(paths)))):
                if x is not None:
                    feats.append(self._forward(x))
        if not feats:
            raise ValueError("pca: none of the sampled images could be read; nothing to fit PCA on.")
        f = np.concatenate(feats)
        if normalise == "l2":
            f = l2_normalize(f)
        return PCA.fit(f, n_components, name="pca")

    # -- extraction ---------------------------------------------------------------------------

    def extract(
        self,
        images,
        store,
        *,
        mode: str = "extend",
        prefix: str = IMAGE_PREFIX,
        dtype: str = "float16",
        normalise: str = "none",
        pca: int | None = None,
        pca_sample: int = 10_000,
        shard_size: int = 4096,
        retry_skipped: bool = True,
        on_changed: str = "warn",
        image_root=None,
        key_rule: str | None = None,
    ) -> ExtractionReport:
        """Extract features of image files into a :class:`FeatureStore` (resumable).

        Parameters
        ----------
        images : str, os.PathLike or iterable of (key, path)
            A directory (keys: ``prefix`` + relative path without extension, see
            :func:`list_images`) or explicit pairs (keys used as given, in the given order).
        store : str or os.PathLike
            Store directory.
        mode : {"extend", "create", "overwrite"}
            "extend" (default) continues an interrupted run and appends new images to an
            existing store made with the same settings; "create" refuses an existing store;
            "overwrite" replaces it. Whatever the mode, the same call run again after an
            interruption (Ctrl-C, kill -9, a crash, also during the final append) continues where
            it stopped: an interrupted "create" is not refused, an interrupted "overwrite" keeps
            the rows it wrote (the old store's were already replaced). To start afresh instead,
            delete the store folder.
        prefix : str
            Key prefix for a directory.
        dtype : {"float16", "float32"}
            Storage dtype.
        normalise : {"none", "l2"}
            Store raw activations (the model L2-normalises them itself) or unit vectors.
        pca : int, optional
            Reduce to this many dims with a PCA fitted on `pca_sample` evenly spaced images
            before the run (reused when extending a store that has one).
        pca_sample : int
            Images to fit the PCA on (must be >= `pca`).
        shard_size : int
            Images per committed shard (rounded up to whole batches): the most work a crash loses.
        retry_skipped : bool
            True (default): try the images the store lists as skipped (``skipped.json``) again, a
            file may have been fixed. False: leave them skipped (they count as skipped before,
            :attr:`ExtractionReport.skipped_before`).
        on_changed : {"warn", "raise", "ignore"}
            What to do with images already in the store whose file changed on disk since their
            row was extracted. The store records each file's size and modification time when it
            extracts it (``stamps.npy``) and compares them, one ``os.stat`` per image given again,
            with the files. "warn" (default): warn (the count, the first keys, the fix), count them
            in :attr:`ExtractionReport.changed`, keep their old rows and go on. "raise": stop
            before any work with :class:`ChangedFilesError` naming them (for pipelines that must
            not train on stale rows). "ignore": no check, no ``os.stat`` of the stored files (a
            resume after a crash at 100M images, on a network file system where the stats take
            long). A store cannot re-extract them: its rows are never
            rewritten (models saved with it and readers that have it open rely on that); extract
            into a new store to use the new files (or ``mode="overwrite"``). Images stored without
            stamps (a store written before they were recorded, rows from arrays) are not checked
            (said at INFO).
        image_root : str, os.PathLike or None
            With `images` as ``(key, path)`` pairs keyed relative to a folder (as :func:`list_images`
            keys them), that folder: recorded and checked as a directory given as `images` is (see
            Notes). None (default): a directory is its own root; pairs are not checked.
        key_rule : str, optional
            How `images`' keys are made of their files (the name of ``im2vec extract --keys``:
            "path", a directory's default, "stem", "flickr-id"): a directory is keyed by it (as
            :func:`list_images` with ``key_rule``), pairs were keyed by it; recorded when the store is made; a later
            run whose keys are made otherwise is refused before any work (every image would be
            stored a second time under another key). None with pairs: not recorded, not checked.

        Returns
        -------
        ExtractionReport
            ``.store`` is the opened store; ``.skipped`` maps keys to reasons.

        Raises
        ------
        ChangedFilesError
            ``on_changed="raise"`` and images already stored changed on disk (nothing was done).
        ImageRootError
            A :class:`ChangedFilesError` (``on_changed="raise"``) in a run from another folder than the
            store's (see Notes): its message says what that may mean.

        Notes
        -----
        Keys are paths relative to the folder given, so a store records that folder (resolved, in
        ``metadata["image_root"]``) when it is made and keeps it. A later run from another folder is
        treated as any run, and said for what it is: stored images whose files changed (the check of
        `on_changed`, the same single ``os.stat`` pass) are warned about with what it may mean there
        (other pictures with the same file names: extract into a new store; a copy that did not keep
        modification times: nothing to do), or, with "raise", stop the run (:class:`ImageRootError`); a
        folder holding keys the store has, all of them the files it extracted, was moved or mounted
        elsewhere (INFO); a folder none of whose keys the store holds is unrelated (INFO), unless it
        holds or lies inside the store's folder: then its images may be stored a second time under
        other keys (``red/circle_00`` beside ``circle_00``), said in a warning naming both folders and
        an example. With ``on_changed="ignore"`` no file is compared (no ``os.stat``), only the folders'
        paths. Stores made before the folder was recorded, or from ``(key, path)`` pairs, are not
        checked.
        """
        t0 = time.perf_counter()
        if normalise not in ("none", "l2"):
            raise ValueError(f"normalise: expected 'none' or 'l2', got {normalise!r}.")
        _check_on_changed(on_changed)
        items = _as_items(images, prefix, key_rule)  # a directory keyed by `key_rule`, as `im2vec extract --keys`
        root = _image_root(images, image_root)
        path = Path(store)
        meta = dict(self.metadata, normalisation=normalise)
        if root is not None:  # what the keys are relative to: recorded by the run that makes the store
            meta["image_root"] = root
        rule = _key_rule(images, key_rule)
        if rule:  # and how they were made of the files
            meta["key_rule"] = rule
        inputs = images_digest(items) if mode in ("create", "overwrite") else True  # what a rerun must be given
        pca_obj = self._target_pca(path, items, mode, meta, dtype, pca, pca_sample, normalise, inputs)
        shard = max(1, math.ceil(shard_size / self.batch_size)) * self.batch_size
        writer = FeatureStoreWriter(path, dim=int(pca) if pca else self.dim, dtype=dtype, metadata=meta, mode=mode,
                                    shard_size=shard, pca=pca_obj, resume=inputs)
        writer.warn_zeroed = False  # (its `underflow` is reported once, below and in the summary)
        try:
            done = writer.done_keys
            before = {k for k, _ in items if k not in done and k in writer.skipped}  # skipped by an earlier run
            todo = [
                (pos, k, p)
                for pos, (k, p) in enumerate(items)
                if k not in done and (retry_skipped or k not in before)
            ]
            if len(done):
                check_key_rule(path, writer.metadata.get("key_rule"), rule)
            seen = [it for it in items if it[0] in done]  # stored before: checked against their files' stamps
            if len(done) and not seen and root is not None and writer.metadata.get("image_root") == root:
                check_prefix(path, first_stored_keys(path), items, prefix)  # (the store's folder, another --prefix?)
            changed = _changed_files(writer, seen) if on_changed != "ignore" else []
            recorded = writer.metadata.get("image_root") if root is not None else None
            roots = (recorded, root) if recorded is not None and recorded != root else None  # keys of another folder
            if changed and on_changed == "raise":
                raise _changed_error(path, changed, roots=roots)
            if changed:
                logger.warning("%s", _changed_message(path, changed, refused=False, roots=roots))
            if roots:  # what else a run from another folder is: moved, unrelated, or around the store's
                root_note(path, recorded, root, items, prefix, len(seen), on_changed != "ignore", len(changed))
            logger.info(
                "extracting %i of %i images into %s (%i already there; %i skipped before, %s)", len(todo), len(items),
                path, len(seen), len(before), "tried again" if retry_skipped else "left skipped (retry_skipped=False)"
            )
            stamps = _file_stamps([p for _, _, p in todo])  # before the files are read: see file_stamp
        except BaseException:
            writer.abort()
            raise
        stages = dict.fromkeys(STAGES[:-1], 0.0)
        extracted, skipped, fallbacks = self._extract_into(writer, todo, normalise, pca_obj, stages, stamps)
        writer.close()
        underflow = writer.underflow
        secs = time.perf_counter() - t0
        stages["other"] = max(0.0, secs - sum(stages.values()))
        n_done = extracted + len(skipped)
        report = ExtractionReport(
            store=FeatureStore.open(path),
            total=len(items),
            extracted=extracted,
            already=len(seen),
            skipped=skipped,
            seconds=secs,
            images_per_second=n_done / secs if secs > 0 else 0.0,
            decode_fallbacks=dict(fallbacks.most_common()),
            stage_seconds=stages,
            retried=len(before) if retry_skipped else 0,
            skipped_before=0 if retry_skipped else len(before),
            changed=len(changed),
            changed_keys=[k for k, _ in changed],
            underflow=underflow.count,
            underflow_keys=underflow.keys,
        )
        logger.info("extraction: %s", report.summary())
        if underflow.count:
            logger.warning("%s: %s.", path, underflow_message(underflow.count, extracted, underflow.keys))
        if skipped:
            logger.warning(
                "%i image(s) were skipped (reasons in %s/skipped.json); fix them and rerun to add them",
                len(skipped),
                path,
            )
        return report

    def _target_pca(self, path: Path, items, mode: str, meta: dict, dtype: str, pca, pca_sample: int,
                    normalise: str, inputs: str | bool = True) -> PCA | None:
        """Check the target store against these settings ("create" refuses an existing one, "extend"
        needs the same identity; a store whose run was interrupted is continued in any mode, see
        :func:`~gensim_im2vec.store.unfinished_run`) and return the PCA to apply: the store's when
        extending or continuing one, else one fitted now (its description goes into `meta`), else None."""
        want = dict(meta, dim=int(pca) if pca else self.dim, dtype=np.dtype(dtype).name,
                    pca_components=int(pca) if pca else None)
        stored = (path / METADATA_FILE).exists()
        # a store whose run was interrupted (also one this call's mode made): the rerun continues it
        run = unfinished_run(path) if stored and mode in ("create", "overwrite") else None
        if run is not None and isinstance(inputs, str) and run["inputs"] != inputs:  # another list of images
            if mode == "create":
                raise FileExistsError(_unfinished_other_images(path, run))
            run = None  # overwrite replaces it (the writer says so)
        if mode == "create" and stored and run is None:
            raise FileExistsError(
                f"feature store {str(path)!r} already exists; pass mode='extend' to continue or append to "
                f"it, or mode='overwrite' to replace it."
            )
        pca_obj = None
        existing = _read_json(path / METADATA_FILE) if stored and (mode == "extend" or run is not None) else None
        if existing is not None:
            diff = _identity_diff(_identity(existing), _identity(want))
            if diff and run is not None and mode == "overwrite":
                existing = None  # another run's rows: this overwrite replaces them (the writer says so)
            elif diff and run is not None:
                raise StoreMismatchError(_unfinished_mismatch(path, run, existing, want, diff))
            elif diff:
                raise StoreMismatchError(_mismatch_message(path, existing, want, diff))
        if existing is not None:
            drift = [f for f in _NUMERICS_FIELDS if f in existing and existing.get(f) != want.get(f)]
            if drift:  # same model and layer, other arithmetic: allowed, said once
                logger.warning(
                    "%s: this run computes features differently from the run that made the store (%s); the "
                    "rows agree closely (cosine >= 0.997 between fp32 and bf16, >= 0.99 between PIL and nvJPEG "
                    "decoding, measured) but not bit for bit, and the store's metadata keeps the first run's "
                    "settings. For identical rows: %s.", path,
                    "; ".join(f"{f} {existing[f]!r} -> {want.get(f)!r}" for f in drift),
                    ", ".join(_same_arithmetic(f, existing[f]) for f in drift))
            if pca:
                pca_obj = PCA.load(path / PCA_FILE)
        if pca and pca_obj is None:
            if not is_int(pca) or pca < 1:
                raise ValueError(f"pca: expected a positive number of components, got {pca!r}.")
            pca_obj = self._fit_pca(items, pca, pca_sample, normalise)
            meta["pca"] = pca_obj.describe("on_write", min(pca_sample, len(items)))
        return pca_obj

    def _extract_into(self, writer: FeatureStoreWriter, todo: list, normalise: str,
                      pca_obj: PCA | None, stages: dict[str, float],
                      stamps: np.ndarray | None = None) -> tuple[int, dict[str, str], Counter]:
        """Decode, run and write every image of `todo` (``(position, key, path)``, with its file's
        stamp in `stamps`, one row each); returns the rows written, the skipped keys with their
        reasons, and the decoding fallbacks by reason, and adds the seconds of each stage to
        `stages` (:attr:`ExtractionReport.stage_seconds`). An interruption leaves every finished
        shard committed."""
        skipped: dict[str, str] = {}
        fallbacks: Counter = Counter()
        extracted = 0
        bar = None
        try:
            bar = Progress(len(todo), enabled=self.progress, desc="extract", unit="img")
            loader = self._loader([p for _, _, p in todo], self._batches([pos for pos, _, _ in todo]))
            batches = iter(loader)
            with self._runtime():
                while True:
                    t = time.perf_counter()
                    batch = next(batches, None)
                    stages["input"] += time.perf_counter() - t
                    if batch is None:
                        break
                    idx, x, bad, fell_back = batch
                    for i, reason in bad:
                        key = todo[i][1]
                        skipped[key] = reason
                        writer.skip(key, reason)
                        logger.debug("skipped %s (%s): %s", key, todo[i][2], reason)
                    for i, reason in fell_back:
                        fallbacks[reason] += 1
                        logger.debug("decoded %s (%s) with PIL: %s", todo[i][1], todo[i][2], reason)
                    if x is not None:
                        t = time.perf_counter()
                        feats = self._forward(x)
                        t1 = time.perf_counter()
                        extracted += self._write_batch(writer, [todo[i][1] for i in idx], feats, normalise, pca_obj,
                                                       skipped, None if stamps is None else stamps[idx])
                        stages["model"] += t1 - t
                        stages["write"] += time.perf_counter() - t1
                    bar.update(len(idx) + len(bad))
        except BaseException:
            writer.abort()
            logger.warning(
                "extraction into %s stopped after %i new rows (all committed); run the same command "
                "again to continue",
                writer.path,
                writer.rows_written,
            )
            raise
        finally:
            if bar is not None:
                bar.close()
        return extracted, skipped, fallbacks

    def _write_batch(self, writer: FeatureStoreWriter, keys: list[str], feats: np.ndarray, normalise: str,
                     pca_obj: PCA | None, skipped: dict[str, str], stamps: np.ndarray | None = None) -> int:
        """One batch's features (and their files' stamps) into the store (rows the model made
        non-finite are skipped with the reason; rows a float16 store cannot hold are counted by the
        writer: :attr:`FeatureStoreWriter.underflow`); returns the rows written."""
        ok = np.isfinite(feats).all(axis=1)
        if normalise == "l2":
            feats = l2_normalize(feats)
        if not ok.all():
            for i in np.flatnonzero(~ok):
                skipped[keys[i]] = "non-finite features (NaN/inf) from the model"
                writer.skip(keys[i], skipped[keys[i]])
            feats, keys = feats[ok], [k for k, o in zip(keys, ok, strict=True) if o]
            stamps = None if stamps is None else stamps[ok]
        if pca_obj is not None and len(keys):
            feats = pca_obj.transform(feats)
        writer.write(keys, feats, stamps=stamps)
        return len(keys)


STAGES = ("input", "model", "write", "other")
#: Files stat'ed per step by :func:`_file_stamps` and :func:`_changed_files` (bounded memory).
_STAT_CHUNK = 65536


def _file_stamps(paths: Sequence[str]) -> np.ndarray:
    """The stamps of `paths` (:func:`~gensim_im2vec.store.file_stamp`), as an ``(n, 2)`` int64 array."""
    out = np.empty((len(paths), 2), dtype=np.int64)
    for lo in range(0, len(paths), _STAT_CHUNK):
        out[lo : lo + _STAT_CHUNK] = [file_stamp(p) for p in paths[lo : lo + _STAT_CHUNK]]
    return out


def _changed_files(writer: FeatureStoreWriter, seen: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(key, path)`` of `seen` (images the store holds, given again) whose file's stamp is not the
    one the store recorded when it extracted them: changed, or no longer readable. One ``os.stat`` per
    stamped image; images without a stamp are not checked (said once at INFO)."""
    if not seen:
        return []
    stored = writer.stored_stamps([k for k, _ in seen])
    changed: list[tuple[str, str]] = []
    unstamped = 0
    for lo in range(0, len(seen), _STAT_CHUNK):
        found, n = _stamp_changes(seen[lo : lo + _STAT_CHUNK], stored[lo : lo + _STAT_CHUNK])
        changed.extend(found)
        unstamped += n
    _unstamped_note(writer.path, unstamped, len(seen))
    return changed


# ----------------------------------------------------------------------------- the folder keys are relative to

def _key_rule(images, key_rule: str | None) -> str | None:
    """How the keys of `images` were made: `key_rule` as given, "path" for a directory (its own
    keys, :func:`list_images`), else None (pairs keyed some other way: not recorded, not checked)."""
    return key_rule or ("path" if isinstance(images, (str, os.PathLike)) else None)


def check_key_rule(path, stored: str | None, rule: str | None) -> None:
    """Refuse a run whose keys are made by `rule` into the store `path`, whose keys were made by
    `stored` (``metadata["key_rule"]``; shared by :meth:`FeatureExtractor.extract` and
    :func:`~gensim_im2vec.distributed.extract_ray`): every image would be stored a second time under
    another key. Either unknown (a store made before it was recorded, pairs): nothing to check."""
    if rule and stored and rule != stored:
        raise ValueError(
            f"feature store {str(path)!r} holds keys made by --keys {stored} (key_rule={stored!r}), and this run "
            f"makes them by --keys {rule}: every image would be stored a second time under another key. Give "
            f"--keys {stored} (key_rule={stored!r}) as the store was made, or extract into a new store (another "
            f"output directory). Nothing was extracted.")


def first_stored_keys(path, n: int = 1000) -> list[str]:
    """The first `n` keys of the store `path` in row order, as ``keys.txt`` spells them (for
    :func:`check_prefix`, which compares them only: a key written escaped compares unequal), read
    without reading the rest; [] where the file cannot be read."""
    try:
        with open(Path(path) / KEYS_FILE, "rb") as f:
            return [line.rstrip(b"\n").decode("utf-8", "replace") for line in itertools.islice(f, n)]
    except OSError:
        return []


def check_prefix(path, stored: Iterable[str], items: Iterable[tuple[str, str]], prefix: str, *,
                 sample: int = 1000) -> None:
    """Refuse a run with key prefix `prefix` none of whose keys the store `path` holds, while the store
    holds its images under another prefix: the same files, given again with another ``--prefix``,
    would be stored a second time (``pic:a/1`` beside ``img:a/1``), as with another key rule
    (:func:`check_key_rule`; shared by :meth:`FeatureExtractor.extract` and
    :func:`~gensim_im2vec.distributed.extract_ray`). Compares the first `sample` stored keys (`stored`,
    in row order) with the first `sample` images of the run (`items`, ``(key, path)``, in list order):
    refused when most of the fewer of them are the same paths under one other prefix, which is what
    a store made from the same folder (listed in the same order) holds. The callers ask only for a
    run from the folder the store records (``metadata["image_root"]``): two folders of like names
    (IMG_0001.jpg ...) under two prefixes in one store is what prefixes are for. A prefix that
    extends the other (a run from a subfolder of the store's folder, or around it) is left to
    :func:`root_note`, which warns."""
    rels: dict[int, set[str]] = {}
    for key, _ in itertools.islice(items, sample):
        if key.startswith(prefix):
            rels.setdefault(len(key) - len(prefix), set()).add(key[len(prefix):])
    asked = sum(len(g) for g in rels.values())
    others: Counter = Counter()
    example: dict[str, str] = {}
    n = 0
    for key in itertools.islice(stored, sample):
        n += 1
        for size, group in rels.items():
            other = key[: len(key) - size]
            if len(key) > size and key[len(key) - size:] in group and not (other.startswith(prefix)
                                                                         or prefix.startswith(other)):
                others[other] += 1
                example.setdefault(other, key[len(key) - size:])
    if not others:
        return
    other, held = others.most_common(1)[0]
    if 2 * held > min(n, asked):
        rel = example[other]
        raise ValueError(
            f"feature store {str(path)!r} holds this run's images under the key prefix {other!r} ({other + rel!r}), "
            f"and this run keys them with --prefix {prefix!r} ({prefix + rel!r}): every image would be stored a "
            f"second time under another key. Give --prefix {other!r} (prefix={other!r}) as the store was made, or "
            f"extract into a new store (another output directory). Nothing was extracted.")


def _changed_error(path, changed: list[tuple[str, str]], *, roots: tuple[str, str] | None,
                   count: int | None = None) -> ChangedFilesError:
    """The error that stops a run (``on_changed="raise"``) whose `changed` files look changed: an
    :class:`ImageRootError` in a run from another folder than the store's (`roots`), else a
    :class:`ChangedFilesError` (shared by :meth:`FeatureExtractor.extract` and
    :func:`~gensim_im2vec.distributed.extract_ray`)."""
    message = _changed_message(path, changed, refused=True, count=count, roots=roots)
    return ImageRootError(message, *roots, changed) if roots else ChangedFilesError(message, changed)


def _image_root(images, image_root) -> str | None:
    """The folder the keys of `images` are relative to, resolved: a directory given as `images`, else
    `image_root` (None: pairs keyed otherwise, not checked). Both given and different is refused."""
    given = os.fspath(images) if isinstance(images, (str, os.PathLike)) else None
    if image_root is None:
        return None if given is None else str(Path(given).resolve())
    if not isinstance(image_root, (str, os.PathLike)):
        raise TypeError(f"image_root: expected a folder (str or os.PathLike) or None, got {image_root!r}.")
    root = str(Path(image_root).resolve())
    if given is not None and str(Path(given).resolve()) != root:
        raise ValueError(f"image_root={os.fspath(image_root)!r} is not the folder given as images ({given!r}), "
                         f"whose keys are relative to itself; leave image_root out.")
    return root


def _second_key(recorded: str, root: str, items: Iterable[tuple[str, str]], prefix: str) -> tuple[str, str] | None:
    """An example for the warning about a folder that holds, or lies inside, the store's: one of this
    run's keys and the key the store's folder gives the same file, or None (none found among the first
    keys). Paths only, no ``os.stat``: the file's place is `root` joined with the key (its extension
    from the path), taken only when keying that place from `root` gives the key back and its name is
    the path's; the store's key is that place keyed from `recorded`, as :func:`list_images` keys it."""
    rec, top = Path(recorded), Path(root)
    inner = top.is_relative_to(rec)
    head = "" if inner else prefix + encode_key(os.path.relpath(recorded, root).replace(os.sep, "/")) + "/"
    for i, (k, p) in enumerate(items):
        if i >= 100_000:
            break
        if not k.startswith(prefix) or not k.startswith(head):
            continue
        place = top / (k[len(prefix):] + os.path.splitext(os.fspath(p))[1])
        if place.name == os.path.basename(os.fspath(p)) and image_key(place, root, prefix) == k \
                and place.is_relative_to(rec):
            return k, image_key(place, recorded, prefix)
    return None


def root_note(path, recorded: str, root: str, items: Iterable[tuple[str, str]], prefix: str, overlap: int,
              compared: bool, n_changed: int) -> None:
    """Say what a run from the folder `root` into the store `path`, whose keys are relative to
    `recorded`, is (shared by :meth:`FeatureExtractor.extract` and
    :func:`~gensim_im2vec.distributed.extract_ray`; their changed-files warning or error says the rest):
    a folder none of whose keys the store holds that holds or lies inside `recorded` (a warning: its
    images may get a second key), else an unrelated one (INFO); or one with keys the store holds, whose
    files are the ones it extracted (moved or mounted elsewhere, INFO) or were not compared
    (``on_changed="ignore"``, INFO). `items`: this run's ``(key, path)``, in order; `overlap`: how many
    of them the store holds; `compared`: whether those were compared with their files; `n_changed`: how
    many of them differ. Paths only: no ``os.stat``."""
    if overlap:
        if not compared:
            logger.info("%s: the store's keys are relative to %s and this run reads %s; %i of its images have keys the "
                        "store holds, not compared with their files (on_changed='ignore'); going on. The store keeps "
                        "recording %s", path, recorded, root, overlap, recorded)
        elif not n_changed:
            logger.info("%s: the store's keys are relative to %s and this run reads %s, where the %i image(s) the "
                        "store holds are the files it extracted (same size and modification time, those with a "
                        "recorded stamp): the folder was moved or mounted elsewhere (or its images were added to "
                        "this store before); going on. The store keeps recording %s, the folder it was made from",
                        path, recorded, root, overlap, recorded)
        return
    outer = Path(recorded).is_relative_to(root)
    if outer or Path(root).is_relative_to(recorded):
        pair = _second_key(recorded, root, items, prefix)
        example = f" (this run's {pair[0]!r} is the store's {pair[1]!r})" if pair else ""
        where = "holds that folder" if outer else "lies inside that folder"
        logger.warning(
            "feature store %r holds keys relative to the folder %r, and this run reads %r, which %s, and none of its "
            "keys is in the store: keys are paths relative to the folder given, so images the store holds may be "
            "stored a second time under other keys%s. Going on. To key them once, give the same folder as before "
            "(%r; new files under it, in subfolders too, are added), or extract %r into a new store (another output "
            "directory).", str(path), recorded, root, where, example, recorded, root)
        return
    logger.info("%s: the store's keys are relative to %s and this run reads %s, an unrelated folder none of whose keys "
                "the store holds: its images are added beside the store's (keys relative to %s); the store keeps "
                "recording %s", path, recorded, root, root, recorded)


def _stamp_changes(seen: Sequence[tuple[str, str]], stored: np.ndarray) -> tuple[list[tuple[str, str]], int]:
    """Compare one chunk of stored images with their files: `seen` their ``(key, path)``, `stored` the
    stamps the store recorded for them, row for row. Returns the pairs whose file's stamp differs
    (changed, or no longer readable: one ``os.stat`` each) and how many have no stamp (not checked).
    Shared by :meth:`FeatureExtractor.extract` and :func:`~gensim_im2vec.distributed.extract_ray`."""
    changed: list[tuple[str, str]] = []
    unstamped = 0
    for (key, p), stamp in zip(seen, stored.tolist(), strict=True):
        if stamp[0] == NO_STAMP:
            unstamped += 1
        elif file_stamp(p) != tuple(stamp):
            changed.append((key, p))
    return changed, unstamped


def _check_on_changed(on_changed) -> None:
    """`on_changed` of :meth:`FeatureExtractor.extract` and :func:`~gensim_im2vec.distributed.extract_ray`."""
    if on_changed not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_changed: expected 'warn', 'raise' or 'ignore', got {on_changed!r}.")


def _unstamped_note(path: Path, unstamped: int, seen: int) -> None:
    """Say at INFO that `unstamped` of the `seen` images already in store `path` cannot be checked."""
    if unstamped:
        logger.info(
            "%s: %i of the %i images already stored have no stamp of their file (stored by a version before "
            "gensim-im2vec recorded them, or given as arrays): whether their files changed since cannot be checked",
            path, unstamped, seen)


def _changed_images(changed: Sequence[tuple[str, str]], whose: str, count: int | None = None) -> str:
    """"N image(s) `whose` changed on disk since ...: the first five ``key (path)``": how the
    messages about changed files name them. `count`: how many there are (default: ``len(changed)``)."""
    count = len(changed) if count is None else count
    shown = ", ".join(f"{k} ({p})" for k, p in changed[:5]) + (", ..." if count > 5 else "")
    return (f"{count} image(s) {whose} changed on disk since their features were extracted (file size or "
            f"modification time differs, or the file is gone): {shown}")


def _changed_message(path: Path, changed: list[tuple[str, str]], *, refused: bool, count: int | None = None,
                     roots: tuple[str, str] | None = None) -> str:
    """What :meth:`FeatureExtractor.extract` (and :func:`~gensim_im2vec.distributed.extract_ray`) says of
    images whose files changed since their extraction: a warning (their old rows are kept) or, with
    ``on_changed="raise"``, the error that stops the run. `changed` are their ``(key, path)`` (the first
    of them at least), `count` how many there are (default: ``len(changed)``), `roots` the store's folder
    and this run's when they differ (the files may then be other pictures with the same names)."""
    what = _changed_images(changed, f"already in feature store {str(path)!r}", count)
    new_store = ("extract into a new store (another output directory), or pass mode='overwrite' to extract this one "
                 "again from scratch")
    if roots is not None:
        recorded, root = roots
        why = (f"The store's keys are relative to the folder {recorded!r}, and this run reads {root!r}: if these are "
               f"other pictures than the store extracted (another folder whose files have the same names), their "
               f"features are not these files': extract {root!r} into a new store (another output directory). If "
               f"the folder was only copied without its modification times, nothing needs doing")
        if refused:
            return (f"on_changed='raise': {what}. {why} (run again with on_changed='warn'). If the files were edited "
                    f"since, they cannot be re-extracted into this store (its rows are never rewritten): to use the "
                    f"new files, {new_store}. Nothing was extracted.")
        return (f"{what}. {why}. If the files were edited since, the store keeps their old rows (they are never "
                f"rewritten): to use the new files, {new_store}.")
    if refused:
        return (f"on_changed='raise': {what}. They cannot be re-extracted into this store: a feature store's rows "
                f"are never rewritten (models saved with the store, and readers that have it open, rely on that). To "
                f"use the new files, {new_store}. Nothing was extracted; with on_changed='warn' the run keeps their "
                f"old rows with a warning.")
    return (f"{what}. The store keeps their old rows, so a model trained on it sees the old pictures. Its rows are "
            f"never rewritten: to use the new files, {new_store}. If the files only look changed (copied without "
            f"their modification times), nothing needs doing.")


#: Metadata that may differ between the runs of one store (rows then differ in the last digits).
_NUMERICS_FIELDS = ("precision", "decoding", "torch_version", "torchvision_version")


def _same_arithmetic(field_name: str, stored) -> str:
    """What gives rows computed as the store's were, for one of :data:`_NUMERICS_FIELDS`."""
    if field_name == "precision":
        return f"precision={stored!r}"
    if field_name == "decoding":
        on = str(stored).split(" on ", 1)[1].split(" ", 1)[0] if " on " in str(stored) else None
        return f"jpeg_device={on!r}"
    return f"{field_name.replace('_version', '')} {stored}"


def retry_note(retried: int, skipped_before: int = 0) -> str:
    """What a run did with the images an earlier run skipped, for the extraction summaries (``extract``,
    ``extract_ray``): "" when there were none."""
    if retried:
        return f" after {retried} image(s) skipped before were tried again (retry_skipped=False leaves them)"
    if skipped_before:
        return f", {skipped_before} skipped before and not tried again (retry_skipped=True tries them)"
    return ""


def stage_shares(stage_seconds: dict[str, float]) -> str:
    """``"input 12%, model 80%, write 6%, other 2%"``: each stage's share of their sum ("" if 0)."""
    total = sum(stage_seconds.values())
    if total <= 0:
        return ""
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in stage_seconds.items())


def extract(images, store, **options) -> ExtractionReport:
    """Build a :class:`FeatureExtractor` and run :meth:`FeatureExtractor.extract`.

    `options` are keyword arguments of either (:func:`split_extractor_options`); what is not
    given takes their own defaults.
    """
    build, run = split_extractor_options(options)
    return FeatureExtractor(**build).extract(images, store, **run)


def _keywords(fn) -> set[str]:
    return {n for n, p in inspect.signature(fn).parameters.items()
            if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def split_extractor_options(options: dict, *, owner: str = "extract") -> tuple[dict, dict]:
    """Split keyword options into those of :class:`FeatureExtractor` (the model, device,
    batching) and those of :meth:`FeatureExtractor.extract` (the store: mode, dtype, PCA, ...).

    Raises
    ------
    TypeError
        An option neither takes (the message lists both sets).
    """
    build_names, run_names = _keywords(FeatureExtractor.__init__), _keywords(FeatureExtractor.extract)
    if owner == "extract_ray" and "on_changed" in options:  # extract_ray's own option, never its actors'
        raise TypeError("extract_ray: on_changed cannot be given among the options of its actors' extract(): "
                        "it is extract_ray's own (extract_ray(..., on_changed=...)): its driver compares the images "
                        "already in the target store with their files before any part runs, and gives it to the "
                        "actors for the unfinished parts they continue.")
    unknown = sorted(set(options) - build_names - run_names - {"images", "store"})
    if unknown:
        raise TypeError(f"{owner}: unknown option(s) {unknown}; FeatureExtractor takes {sorted(build_names)}, "
                        f"its extract() {sorted(run_names - {'images', 'store'})}.")
    return ({k: v for k, v in options.items() if k in build_names},
            {k: v for k, v in options.items() if k in run_names})

