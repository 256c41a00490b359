"""Export words and images to the TensorFlow Embedding Projector.

:func:`export_projector` writes a folder that TensorBoard's projector plugin opens as a log
directory (``tensorboard --logdir DIR``) and whose two TSV files also load into the standalone
projector at https://projector.tensorflow.org ("Load" → vectors, then metadata):

========================  ======================================================================
``vectors.tsv``           one row per key, the vector's components separated by tabs
``metadata.tsv``          a header ``key  modality  count``, then one row per key ("word"/"image")
``sprite.png``            thumbnails in a square grid, row-major in the order of the rows (when
                          image files are given); words get a grey tile with their text
``projector_config.pbtxt``  the ``ProjectorConfig`` naming the files and the thumbnail size
========================  ======================================================================

The rows are ``model.wv`` itself, words and images of the one space (an image's row is
``model.project`` of its features), so the projector's nearest points by cosine are the answers
of ``model.wv.most_similar``.

>>> import os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> from gensim_im2vec import Im2Vec
>>> from gensim_im2vec.export import export_projector
>>> rng = np.random.default_rng(0)
>>> root = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(root, "photos"))
>>> docs, feats = [], {}
>>> for i in range(20):
...     Image.new("RGB", (40, 30), ("red", "blue")[i % 2]).save(os.path.join(root, "photos", f"{i}.png"))
...     feats[f"img:{i}"] = rng.normal(size=8) + (3 if i % 2 else -3)
...     docs.append([f"img:{i}", ("red", "blue")[i % 2], "photo"])
>>> model = Im2Vec(docs, image_features=feats, vector_size=6, min_count=1, epochs=2, workers=1)
>>> out = export_projector(model, os.path.join(root, "projector"), images=os.path.join(root, "photos"))
>>> out.count, out.n_images, out.grid, sorted(os.listdir(out.directory))
(23, 20, 5, ['metadata.tsv', 'projector_config.pbtxt', 'sprite.png', 'vectors.tsv'])
>>> open(os.path.join(out.directory, "metadata.tsv")).readline().split()
['key', 'modality', 'count']

Without ``images`` no sprite is written; ``restrict="images"`` / ``"words"``, ``tags_only`` (of
the words, only the tags: the projector then shows an image among its tags, not among every word
of the text) and ``limit`` choose the rows (the projector handles up to ~100k points well; a sprite holds at most
``(8192 / thumbnail)²`` tiles).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gensim_im2vec.fileio import atomic_path, check_output_folder
from gensim_im2vec.keys import IMAGE_PREFIX, image_test
from gensim_im2vec.store import key_rows
from gensim_im2vec.validation import is_int, l2_normalize

logger = logging.getLogger(__name__)

__all__ = ["ProjectorExport", "export_projector", "MAX_SPRITE_SIDE"]

#: The projector refuses sprite images larger than this many pixels per side.
MAX_SPRITE_SIDE = 8192
_WORD_TILE = (232, 232, 232)
_MISSING_TILE = (160, 160, 160)
#: The files an export writes (the config last: it marks a finished export).
_FILES = ("vectors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt")


@dataclass
class ProjectorExport:
    """What :func:`export_projector` wrote.

    Attributes
    ----------
    directory : pathlib.Path
    count : int
        Rows (points) written.
    n_images : int
        Rows that are images.
    vectors, metadata, config : pathlib.Path
    sprite : pathlib.Path or None
        None when no image files were given.
    grid : int
        Tiles per sprite row and column (0 without a sprite).
    thumbnail : tuple of int
        Tile (width, height) in pixels.
    missing : list of str
        Image keys whose file was not found or could not be read (grey tiles).
    unreadable : list of str
        Those of `missing` whose file is there but could not be read as an image.
    """

    directory: Path
    count: int
    n_images: int
    vectors: Path
    metadata: Path
    config: Path
    sprite: Path | None = None
    grid: int = 0
    thumbnail: tuple[int, int] = (0, 0)
    missing: list | None = None
    unreadable: list | None = None


#: Tabs and every character ``str.splitlines`` breaks a line at (\n, \r, \v, \f, \x1c-\x1e, \x85,
#: U+2028, U+2029): in a key they would split its row or its columns.
_TSV_BREAKS = str.maketrans({c: " " for c in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def _tsv_field(value) -> str:
    """One TSV field: tabs and line breaks would split rows/columns; replace them by spaces."""
    return str(value).translate(_TSV_BREAKS)


def _image_paths(images, prefix: str) -> Mapping[str, str]:
    if images is None:
        return {}
    if isinstance(images, Mapping):
        return {k: os.fspath(v) for k, v in images.items()}
    if isinstance(images, (str, os.PathLike)):
        from gensim_im2vec.features import list_images

        return {k: os.fspath(p) for k, p in list_images(images, prefix=prefix)}
    if isinstance(images, (list, tuple)) and images and all(isinstance(f, (str, os.PathLike)) for f in images):
        paths: dict[str, str] = {}
        for folder in images:  # e.g. the demo's two image sets, each extracted from its own folder
            for k, p in _image_paths(folder, prefix).items():
                if paths.setdefault(k, p) != p:
                    raise ValueError(f"images: the key {k!r} names a file in two of the folders ({paths[k]} and {p}); "
                                     f"give folders whose keys do not overlap, or a {{key: path}} mapping.")
        return paths
    raise TypeError(f"images: expected a directory, a list of directories or a {{key: path}} mapping, got "
                    f"{type(images).__name__}.")


def _tile(path: str | None, size: tuple[int, int]):
    """A thumbnail of the image at `path` centred on white, or None if it cannot be read."""
    from PIL import Image

    from gensim_im2vec.decode import load_image, to_rgb

    try:
        img = to_rgb(load_image(path, draft_size=max(size)))
    except Exception as e:  # noqa: BLE001 - a bad file becomes a grey tile, never a failed export
        logger.debug("sprite: cannot read %s: %s", path, e)
        return None
    img.thumbnail(size)
    tile = Image.new("RGB", size, (255, 255, 255))
    tile.paste(img, ((size[0] - img.width) // 2, (size[1] - img.height) // 2))
    return tile


def _word_tile(word: str, size: tuple[int, int]):
    from PIL import Image, ImageDraw

    tile = Image.new("RGB", size, _WORD_TILE)
    if size[1] >= 10:
        ImageDraw.Draw(tile).text((1, max(0, size[1] // 2 - 6)), word[: max(1, size[0] // 6)], fill=(40, 40, 40))
    return tile


def export_projector(
    model,
    directory,
    *,
    keys: Sequence[str] | None = None,
    restrict: str | None = None,
    tags_only: bool = False,
    limit: int | None = None,
    images=None,
    thumbnail: int | tuple[int, int] = 32,
    normalize: bool = False,
    tensor_name: str = "im2vec",
    image_prefix: str = IMAGE_PREFIX,
) -> ProjectorExport:
    """Write vectors, metadata (with a modality column), a sprite and the projector config.

    Parameters
    ----------
    model : Im2Vec, Word2Vec or KeyedVectors
        Source of the vectors (``model.wv``).
    directory : str or os.PathLike
        Output folder: new, empty, or an earlier export (it has ``projector_config.pbtxt``), whose
        files are replaced. Any other folder is refused: it may hold files of these names.
    keys : sequence of str, optional
        Rows to export, in this order, each once (a repeated key is refused). Default: the
        vocabulary in its order (most frequent first), filtered by `restrict` and cut at `limit`.
    restrict : {"words", "images", None}
        Export only words, only images, or both.
    tags_only : bool
        Of the words, export only the tags (the words of an Im2Vec model's image documents,
        ``image_tag_counts``): the projector's neighbours of an image are then its tags and
        images, without the rest of the text's vocabulary (in two-stage most of an image's
        nearest words; see ``Im2Vec.most_similar_tags``). With `keys`, the words among them that
        are not tags are left out.
    limit : int, optional
        At most this many rows (None: all). Without `keys` and `restrict`, words and images each
        keep their most frequent rows in their share of the vocabulary (the vocabulary's own order
        would fill the limit with words, which occur far more often than images); images that
        occur equally often are taken evenly over the vocabulary's order (most images occur once,
        and the first ones would all come from the corpus's first folder); with `keys`, the first
        `limit` of them.
    images : str, os.PathLike, list of them, or mapping of str to path, optional
        Image files for the sprite: a folder keyed as the extractor keys it (prefix + relative
        path without extension), several such folders (a model trained on several stores), or
        ``{key: path}``. None: no sprite.
    thumbnail : int or (int, int)
        Tile size in pixels (width, height); the sprite is ``grid × tile`` with
        ``grid = ceil(sqrt(rows))`` and must stay within 8192 px per side.
    normalize : bool
        Write unit-length vectors (the projector can also do it: "Sphereize data").
    tensor_name : str
        Name shown in the projector.
    image_prefix : str
        For a plain Word2Vec/KeyedVectors: keys with this prefix are images (an Im2Vec model
        knows its images).

    Returns
    -------
    ProjectorExport

    Raises
    ------
    ValueError
        Unknown or repeated keys, nothing to export, a vector with NaN or inf, a sprite larger
        than the projector accepts, or `directory` inside the `images` folder (a later extraction
        of that folder would take the sprite for an image). Nothing is written.
    FileExistsError
        `directory` is not empty and not an earlier export (the message names a file in it).
    NotADirectoryError
        `directory` is a file, or lies under one.

    All files are written under temporary names and renamed into place together, the config
    last: an export that fails or is interrupted leaves an earlier export as it was. (Into a new
    folder the config goes first, so that a folder left by a killed export is recognised and
    completed by the next one.) After a
    successful export into an earlier one, the earlier files this export did not write (its
    ``sprite.png`` when this one has no images) are removed.
    """
    kv = getattr(model, "wv", model)
    if not (hasattr(kv, "index_to_key") and hasattr(kv, "vectors") and hasattr(kv, "key_to_index")):
        raise TypeError(f"model: expected an Im2Vec/Word2Vec model or a gensim KeyedVectors, got "
                        f"{type(model).__name__}.")
    if restrict not in (None, "words", "images"):
        raise ValueError(f"restrict: expected 'words', 'images' or None, got {restrict!r}.")
    if tags_only and restrict == "images":  # (tags_only picks words, and restrict="images" exports none)
        raise ValueError("tags_only (--tags-only) keeps the tags of the words, and restrict='images' (--restrict "
                         "images) exports no word: one of them would be ignored. Leave out one of the two.")
    is_tag = None
    if tags_only:
        mask = model._tag_mask() if hasattr(model, "_tag_mask") else None  # Im2Vec's, as most_similar_tags
        if mask is None or not mask.any():
            raise ValueError("tags_only: this model has no tags (image_tag_counts: the words of an Im2Vec model's "
                             "image documents); export without tags_only.")

        def is_tag(key: str) -> bool:
            return bool(mask[kv.key_to_index[key]])
    if limit is not None and (not is_int(limit) or limit < 1):
        raise ValueError(f"limit: expected a positive int or None, got {limit!r}.")
    size = _thumbnail_size(thumbnail)
    is_image = image_test(model, image_prefix)
    asked = keys
    keys = _export_keys(kv, keys, is_image, restrict, limit, is_tag)
    _check_outside_images(Path(directory), images)
    paths = _image_paths(images, getattr(model, "image_prefix", image_prefix))
    grid = math.ceil(math.sqrt(len(keys))) if images is not None else 0
    _check_sprite_size(len(keys), grid, size, tags_rows=None if tags_only else (
        lambda: _tags_only_rows(model, kv, asked, is_image, restrict, limit)))

    if images is not None and importlib.util.find_spec("PIL") is None:  # before any file is written
        raise ImportError("a sprite (images=...) needs Pillow, which is not installed: pip install pillow (or the "
                          "[vision] extra), or export without images.")

    out = Path(directory)
    _check_not_a_file(out)
    check_output_folder(out, command="the projector export", owned=_earlier_export, marker="projector_config.pbtxt",
                        writes=_FILES)
    created = not out.exists()
    earlier = not created and _earlier_export(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = _write_export(out, kv, keys, [bool(is_image(k)) for k in keys], normalize, images is not None,
                               paths, grid, size, tensor_name, config_first=not earlier)
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # a failed export leaves no folder it made
        raise
    if earlier:  # the new set is in place: the earlier export's files it did not write go (a stale sprite)
        _remove_unwritten(out, result)
    logger.info("projector export: %i rows (%i images) of dim %i to %s%s", result.count, result.n_images,
                kv.vector_size, out, f", sprite {grid}x{grid} tiles of {size[0]}x{size[1]}" if grid else "")
    return result


def _write_export(out: Path, kv, keys: list[str], flags: list[bool], normalize: bool, sprite: bool,
                  paths: Mapping[str, str], grid: int, size: tuple[int, int], tensor_name: str,
                  config_first: bool = False) -> ProjectorExport:
    """Write the export's files into `out`, all or none (see :func:`export_projector`); the config
    renamed into place first (`config_first`, a new folder) or last (over an earlier export)."""
    vec_path, meta_path, cfg_path = out / _FILES[0], out / _FILES[1], out / _FILES[3]
    sprite_path, missing, unreadable = (out / _FILES[2] if sprite else None), [], []
    with contextlib.ExitStack() as stack:
        # every file is written under a temporary name and all are renamed only once all are whole
        # (an ExitStack renames in the reverse order of entry). Over an earlier export the config is
        # renamed last: an export that fails or is interrupted leaves the earlier files as they
        # were. Into a new folder it is renamed first: a kill between two renames then leaves a
        # folder with the config, which the next export recognises as its own and completes (with
        # the config last, a folder of vectors.tsv alone was refused as the user's).
        if not config_first:
            cfg_tmp = stack.enter_context(atomic_path(cfg_path))
        sprite_tmp = stack.enter_context(atomic_path(sprite_path)) if sprite_path else None
        meta_tmp, vec_tmp = stack.enter_context(atomic_path(meta_path)), stack.enter_context(atomic_path(vec_path))
        if config_first:
            cfg_tmp = stack.enter_context(atomic_path(cfg_path))
        _write_vectors(vec_tmp, kv, keys, normalize)
        _write_metadata(meta_tmp, kv, keys, flags)
        if sprite_path:
            missing, unreadable = _write_sprite(sprite_tmp, keys, flags, paths, grid, size)
        cfg_tmp.write_bytes(_projector_config(tensor_name, vec_path, meta_path, sprite_path, size).encode("utf-8"))
    return ProjectorExport(
        directory=out, count=len(keys), n_images=sum(flags), vectors=vec_path, metadata=meta_path,
        config=cfg_path, sprite=sprite_path, grid=grid, thumbnail=size if grid else (0, 0), missing=missing,
        unreadable=unreadable,
    )


def _remove_unwritten(out: Path, result: ProjectorExport) -> None:
    """Remove the files of an earlier export in `out` (names of :data:`_FILES` only) that `result`
    did not write, e.g. its sprite when this export has none: a config that no longer names them
    left them beside it, stale."""
    written = {p.name for p in (result.vectors, result.metadata, result.sprite, result.config) if p is not None}
    for name in _FILES:
        path = out / name
        if name in written or not os.path.lexists(path):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:  # the export itself is complete: say what is left, do not fail it
            logger.warning("projector export: cannot remove the earlier export's %s (%s), which the new config "
                           "does not name; delete it by hand", path, e)
            continue
        logger.info("projector export: removed the earlier export's %s (this export does not write it)", path)


def _thumbnail_size(thumbnail) -> tuple[int, int]:
    """`thumbnail` as (width, height) of positive ints, else a ValueError naming it."""
    size = (thumbnail, thumbnail) if is_int(thumbnail) else thumbnail
    if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(is_int(x) and x >= 1 for x in size):
        raise ValueError(f"thumbnail: expected a positive int or (width, height) of positive ints, got {thumbnail!r}.")
    return int(size[0]), int(size[1])


def _check_outside_images(out: Path, images) -> None:
    """Refuse an export folder inside (or equal to) the `images` folder: a later ``im2vec extract``
    or :class:`~gensim_im2vec.corpora.FolderCorpus` of that folder would take the sprite for an image."""
    if isinstance(images, (list, tuple)):
        for folder in images:
            _check_outside_images(out, folder)
        return
    if not isinstance(images, (str, os.PathLike)):
        return
    folder, target = os.path.realpath(images), os.path.realpath(out)
    if os.path.commonpath([folder, target]) == folder:
        raise ValueError(
            f"the export's folder {str(out)!r} is inside the images folder {os.fspath(images)!r}: a later "
            f"`im2vec extract {os.fspath(images)}` (or FolderCorpus) would take its sprite.png for an image. Export "
            f"to a folder outside {os.fspath(images)!r}, e.g. beside it."
        )


def _check_not_a_file(out: Path) -> None:
    """Refuse an output folder that is a file, or lies under one (mkdir said only "File exists")."""
    anc = out
    while not os.path.lexists(anc) and anc != anc.parent:
        anc = anc.parent
    if os.path.lexists(anc) and not anc.is_dir():
        where = "is a file" if anc == out else f"lies under {str(anc)!r}, a file"
        raise NotADirectoryError(f"the export's folder {str(out)!r} {where}; give a folder (it is created if "
                                 f"missing) that is not a file.")


def _earlier_export(folder: Path) -> bool:
    """Whether `folder` holds an earlier export: its config (written last) names our vectors file."""
    try:
        return f'tensor_path: "{_FILES[0]}"' in (folder / _FILES[3]).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _export_keys(kv, keys, is_image, restrict: str | None, limit: int | None, is_tag=None) -> list[str]:
    """The rows to export: `keys` (checked) or the vocabulary, of the modality asked (words: only
    those `is_tag` accepts, when given), cut at `limit`."""
    cut_by_modality = keys is None and restrict is None and limit is not None
    if keys is None:
        keys = [k for k in kv.index_to_key if restrict is None or is_image(k) == (restrict == "images")]
    elif isinstance(keys, str):
        raise TypeError(f"keys is the str {keys!r}; give a list of keys, e.g. [{keys!r}].")
    else:
        keys = list(keys)
        unknown = [k for k in keys if k not in kv.key_to_index]
        if unknown:
            raise ValueError(f"keys: {len(unknown)} key(s) are not in the model, e.g. {unknown[:5]!r}.")
        if len(set(keys)) != len(keys):  # two rows of one point: the projector would show it twice
            first: dict[str, int] = {}
            for i, k in enumerate(keys):
                j = first.setdefault(k, i)
                if j != i:
                    raise ValueError(f"keys: {k!r} is given twice (positions {j} and {i}); each key is one point "
                                     f"of the projector. Drop the repeats, e.g. keys=list(dict.fromkeys(keys)).")
        if restrict is not None:
            keys = [k for k in keys if is_image(k) == (restrict == "images")]
    if is_tag is not None:
        keys = [k for k in keys if is_image(k) or is_tag(k)]
    if limit is not None and len(keys) > limit:
        keys = _limit_rows(keys, int(limit), is_image, _vocab_count(kv)) if cut_by_modality else keys[: int(limit)]
    if not keys:
        raise ValueError("nothing to export: no keys left after restrict/tags_only/limit.")
    return keys


def _limit_rows(keys: list[str], limit: int, is_image, count=None) -> list[str]:
    """The first `limit` of the vocabulary's `keys`, words and images each in their share of it.

    The vocabulary is sorted by count, and an image occurs once or a few times, so its first
    `limit` rows would be words alone; each modality keeps its own most frequent rows instead.
    Images of one count (`count`: key -> count; None: all alike) are taken evenly over their
    order: most images occur once, in the corpus's order, and its first ones are one folder's."""
    flags = [bool(is_image(k)) for k in keys]
    n_images = sum(flags)
    take_images = min(n_images, round(limit * n_images / len(keys)))
    if n_images and not take_images:
        take_images = 1
    take_words = limit - take_images
    chosen = _spread_images([k for k, img in zip(keys, flags) if img], take_images, count)
    kept, words, images = [], 0, 0
    for k, img in zip(keys, flags):
        if img and k in chosen:
            images += 1
            kept.append(k)
        elif not img and words < take_words:
            words += 1
            kept.append(k)
    logger.info("projector export: limit %i keeps %i of %i words and %i of %i images (each most frequent first, "
                "in their share of the vocabulary); pass keys=... to choose the rows", limit, words,
                len(keys) - n_images, images, n_images)
    return kept


def _spread_images(images: list[str], take: int, count=None) -> set[str]:
    """`take` of `images` (the vocabulary's order): the most frequent first, and of those that
    occur equally often at the cut, `take`'s remainder evenly spread over their order."""
    if take >= len(images):
        return set(images)
    counts = np.array([count(k) for k in images] if count else np.zeros(len(images)), dtype=np.float64)
    order = np.argsort(-counts, kind="stable")
    cut = counts[order[take - 1]]
    above = [images[i] for i in order if counts[i] > cut]
    tied = [images[i] for i in order if counts[i] == cut]
    need = take - len(above)
    return set(above) | {tied[j * len(tied) // need] for j in range(need)}


def _vocab_count(kv):
    """key -> its count in `kv` (gensim's "count" attribute), or None where `kv` has no counts."""
    try:
        kv.get_vecattr(kv.index_to_key[0], "count")
    except (KeyError, AttributeError, ValueError, IndexError):
        return None
    return lambda key: int(kv.get_vecattr(key, "count"))


def _tags_only_rows(model, kv, keys, is_image, restrict, limit) -> int | None:
    """The rows ``tags_only=True`` would export with the same other arguments (None: the model
    has no tags, or only images are exported)."""
    mask = model._tag_mask() if hasattr(model, "_tag_mask") else None
    if mask is None or not mask.any() or restrict == "images":
        return None
    try:
        n = len(_export_keys(kv, keys, is_image, restrict, limit, lambda k: bool(mask[kv.key_to_index[k]])))
    except (ValueError, TypeError):
        return None
    return n


def _check_sprite_size(n: int, grid: int, size: tuple[int, int], tags_rows=None) -> None:
    """Refuse a sprite over the projector's size; `tags_rows`: a callable giving the rows of the same
    export with ``tags_only`` (None: not a way out), named when their sprite would fit."""
    if grid and (grid * size[0] > MAX_SPRITE_SIDE or grid * size[1] > MAX_SPRITE_SIDE):
        most = (MAX_SPRITE_SIDE // max(size)) ** 2
        n_tags = tags_rows() if tags_rows is not None else None
        tags = (f"tags_only=True (`--tags-only`: of the words only the tags, the words of the image documents: "
                f"{n_tags} rows), " if n_tags is not None and n_tags < n and n_tags <= most else "")
        raise ValueError(
            f"a sprite of {n} tiles of {size[0]}x{size[1]} px would be {grid * size[0]}x{grid * size[1]} px; "
            f"the projector accepts at most {MAX_SPRITE_SIDE} px per side ({most} tiles at this size). Pass "
            f"{tags}limit={most} (`im2vec export --limit {most}`), a smaller thumbnail (`--thumbnail`), or "
            f"images=None (no `--images`: no sprite)."
        )


def _write_vectors(path: Path, kv, keys: list[str], normalize: bool) -> None:
    rows = key_rows(kv.key_to_index, keys, strict=True)  # (at once: a VocabKeyIndex searches its images together)
    with open(path, "w", encoding="utf-8") as f:
        for lo in range(0, len(rows), 65536):
            block = np.asarray(kv.vectors[rows[lo : lo + 65536]], dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
            if len(bad):  # "nan" / "inf" in vectors.tsv: the projector cannot place the point
                raise ValueError(f"the vectors of {keys[lo + bad[0]]!r} and maybe other keys contain NaN or inf; "
                                 f"the projector cannot show them. Retrain the model, or pass keys= without them.")
            if normalize:
                block = l2_normalize(block, out_dtype=np.float64)
            np.savetxt(f, block, fmt="%.7g", delimiter="\t")


def _write_metadata(path: Path, kv, keys: list[str], flags: list[bool]) -> None:
    count = _vocab_count(kv)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("key\tmodality\tcount\n")
        for k, img in zip(keys, flags):
            f.write(f"{_tsv_field(k)}\t{'image' if img else 'word'}\t{count(k) if count is not None else ''}\n")


def _write_sprite(path: Path, keys: list[str], flags: list[bool], paths: Mapping[str, str], grid: int,
                  size: tuple[int, int]) -> tuple[list[str], list[str]]:
    """The sprite: image thumbnails (grey where no file is readable) and word tiles; returns the images
    without a thumbnail, and those of them whose file could not be read."""
    from PIL import Image

    missing, unreadable = [], []
    sprite = Image.new("RGB", (grid * size[0], grid * size[1]), (255, 255, 255))
    for i, (k, img) in enumerate(zip(keys, flags)):
        if img:
            tile = _tile(paths.get(k), size) if k in paths else None
            if tile is None:
                missing.append(k)
                if k in paths and os.path.isfile(paths[k]):  # (a file given that is not there: without a file)
                    unreadable.append(k)
                tile = Image.new("RGB", size, _MISSING_TILE)
        else:
            tile = _word_tile(str(k), size)
        sprite.paste(tile, ((i % grid) * size[0], (i // grid) * size[1]))
    sprite.save(path)
    if missing:  # (as the report's note says it: one line, the two kinds counted apart)
        unread = set(unreadable)  # (a list: k not in it over 65k tiles was quadratic)
        given = [k for k in missing if k not in unread]
        parts = [f"{len(ks)} {what} (e.g. {', '.join(ks[:3])})"
                 for ks, what in ((given, "without a file"), (unreadable, "whose file could not be read")) if ks]
        logger.warning(
            "sprite: %i of %i image(s) have no thumbnail (grey tiles): %s. Give the folder(s) the features were "
            "extracted from (`im2vec export --images DIR`, repeatable; with --keys stem / flickr-id when `im2vec "
            "extract --keys` keyed them so), or a {key: path} mapping, as images=",
            len(missing), sum(flags), "; ".join(parts),
        )
    return missing, unreadable


def _projector_config(tensor_name: str, vec_path: Path, meta_path: Path, sprite_path: Path | None,
                      size: tuple[int, int]) -> str:
    lines = [
        "embeddings {",
        f'  tensor_name: "{_pbtxt(tensor_name)}"',
        f'  tensor_path: "{vec_path.name}"',
        f'  metadata_path: "{meta_path.name}"',
    ]
    if sprite_path is not None:
        lines += [
            "  sprite {",
            f'    image_path: "{sprite_path.name}"',
            f"    single_image_dim: {size[0]}",
            f"    single_image_dim: {size[1]}",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _pbtxt(s: str) -> str:
    """A string for a protobuf text-format literal: a raw line break ended the config's parse."""
    return str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
