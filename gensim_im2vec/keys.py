"""Image keys and tokens: the prefix that marks an image, the key rule, and the modality test.

An image enters a document as a token: the prefix :data:`IMAGE_PREFIX` followed by its key, the
path of its file relative to the image folder, without extension, with ``/`` separators and
whitespace written as ``%XX`` (:func:`image_key`, :func:`encode_key`). The feature extractor keys
its store by the same rule, so tokens and feature rows meet. ``im2vec extract --keys`` has two other
rules (:data:`KEY_RULES`, :func:`rule_key`): ``stem``, the file's name without extension, and
``flickr-id``, the photo id a Flickr file name starts with; :func:`describe_key_rule` says a rule in
words, for messages.

Which tokens of a model are images is answered in one place, :func:`image_test` (one key) and
:func:`image_mask` (the whole vocabulary): an Im2Vec model knows its images (the tokens with
features); for a plain Word2Vec or KeyedVectors, an image is a token with the prefix.

>>> from gensim_im2vec.keys import IMAGE_PREFIX, image_key, image_mask, image_test
>>> IMAGE_PREFIX
'img:'
>>> image_key("/data/imgs/holiday 2019/my cat.png", "/data/imgs")
'img:holiday%202019/my%20cat'
>>> from gensim.models import KeyedVectors
>>> kv = KeyedVectors(2)
>>> kv.add_vectors(["img:1", "dog"], [[1.0, 0.0], [0.0, 1.0]])
>>> is_image = image_test(kv)
>>> is_image("img:1"), is_image("dog")
(True, False)
>>> image_mask(kv).tolist()
[True, False]
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import numpy as np

__all__ = ["IMAGE_PREFIX", "IMAGE_SUFFIXES", "KEY_RULES", "check_image_keys", "describe_key_rule", "encode_key",
           "image_key", "image_mask", "image_test", "key_spellings", "rule_key"]

#: Marks a token as an image in documents, feature stores and models (``"img:cats/001"``).
IMAGE_PREFIX = "img:"

#: The extensions of an image file whose name is typed where its key goes (a key has none).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

# whitespace, what str.split() splits on (as gensim's LineSentence does), and the bytes of a file
# name that are not UTF-8, which os.walk / os.listdir give as lone surrogates (surrogateescape)
_TO_ENCODE = re.compile("\\s|[\x00-\x1f\x7f]|[\udc80-\udcff]")  # (and control characters: a NUL in a table's key)


#: Keys joined per scan in :func:`check_image_keys` (a few MB of text, whatever the number of keys).
_CHECK_BLOCK = 65536


def _encode_char(m: re.Match) -> str:
    c = m.group()
    if "\udc80" <= c <= "\udcff":
        return f"%{ord(c) - 0xDC00:02X}"  # the file name's own byte
    return "".join(f"%{b:02X}" for b in c.encode("utf-8"))


def encode_key(key: str) -> str:
    """Write each whitespace or control character of an image key as ``%XX`` (its UTF-8 bytes), and
    each byte of a file name that is not UTF-8 as ``%XX`` (that byte).

    Documents are stored one per line with tokens separated by whitespace, so a key with a space
    would fall apart into several tokens; documents and feature stores are UTF-8, which cannot
    hold the Latin-1 bytes of an old camera's or archive's file name (``caf\\xe9.jpg``: Python
    reads it as ``'caf\\udce9.jpg'``). Other keys are returned unchanged, so encoding twice changes
    nothing (a key that is already encoded stays as it is).

    Examples
    --------
    >>> encode_key("holiday 2019/my cat")
    'holiday%202019/my%20cat'
    >>> encode_key(encode_key("tab\\there"))
    'tab%09here'
    >>> encode_key(b"caf\\xe9".decode("utf-8", "surrogateescape"))
    'caf%E9'
    >>> encode_key("a\\x00b")  # (a NUL in a table's key column)
    'a%00b'
    """
    if not _TO_ENCODE.search(key):
        return key
    return _TO_ENCODE.sub(_encode_char, key)


def key_spellings(text: str, prefix: str = IMAGE_PREFIX) -> list[str]:
    """The image keys `text` may have been meant as, when it names no key: the key written without
    its prefix ("cats/001"), as its file ("img:cats/001.jpg", "cats/001.jpg"), with another prefix or
    in capitals ("image:cats/001", "IMG:cats/001"), with whitespace that keys write as ``%20``. The
    likeliest first; `text` itself is not among them. A caller keeps the first that is an image.

    Examples
    --------
    >>> key_spellings("cats/001.jpg")
    ['img:cats/001.jpg', 'img:cats/001']
    >>> key_spellings("IMG:cats/001")
    ['img:IMG:cats/001', 'img:cats/001']
    >>> key_spellings("10:30")
    ['img:10:30']
    """
    encoded = encode_key(text.strip())
    stem, ext = os.path.splitext(encoded)
    out: list[str] = []
    for form in (encoded, stem) if ext.lower() in IMAGE_SUFFIXES else (encoded,):
        rest = form[len(prefix):] if prefix and form.startswith(prefix) else form
        head, colon, other = rest.partition(":")  # after another prefix (image:, photo:, IMG:): letters alone,
        other = other if colon and head.isalpha() and len(head) <= 12 else ""  # not "10:30" nor a key's own colon
        for key in (prefix + rest, prefix + other if other else None):
            if key is not None and key != text and key not in out:
                out.append(key)
    return out


def check_image_keys(keys, *, name: str = "image_features") -> None:
    """Refuse image keys that :func:`encode_key` would change: whitespace, or bytes of a file name
    that are not UTF-8.

    Such a key cannot be named by a document (tokens separated by whitespace), and in a model's
    vocabulary it breaks ``model.wv.save_word2vec_format``: gensim's text format writes
    ``key v1 v2 ...`` separated by spaces, so ``"img:a b"`` is read back as the key ``"img:a"``
    and a vector that starts with ``"b"`` (the load fails), and a lone surrogate cannot be written
    as UTF-8 at all. Keys made by :func:`image_key` (``FolderCorpus``, ``list_images``, the feature
    extractor) never hold either; this checks keys a caller gives directly. Non-str keys are left
    to the caller's own check.

    Parameters
    ----------
    keys : iterable of str
    name : str
        Who passed the keys, for the message (``"image_features"``).

    Raises
    ------
    ValueError
        Naming how many keys are affected, the first, and its encoded form.

    Examples
    --------
    >>> check_image_keys(["img:holiday%202019/my%20cat"])
    >>> check_image_keys(["img:1", "img:my cat"])
    Traceback (most recent call last):
    ...
    ValueError: image_features: 1 image key(s) contain whitespace or bytes that are not UTF-8, e.g. 'img:my cat'; ...
    """
    keys = keys if isinstance(keys, (list, tuple)) else list(keys)
    try:  # scans in C over blocks of keys; the per-key loop below only runs when something was found
        if not any(_TO_ENCODE.search("\x00".join(keys[lo : lo + _CHECK_BLOCK]))
                   for lo in range(0, len(keys), _CHECK_BLOCK)):
            return
    except TypeError:  # a key that is not a str
        pass
    bad = [k for k in keys if isinstance(k, str) and _TO_ENCODE.search(k)]
    if bad:
        raise ValueError(
            f"{name}: {len(bad)} image key(s) contain whitespace or bytes that are not UTF-8, e.g. {bad[0]!r}; "
            f"a document (tokens separated by whitespace) cannot name such a key, and "
            f"model.wv.save_word2vec_format would write a file that does not load back. Write them as %XX with "
            f"gensim_im2vec.keys.encode_key ({encode_key(bad[0])!r}), in the documents too (image_key, "
            f"FolderCorpus and list_images already do)."
        )


def image_key(path: str | os.PathLike, root: str | os.PathLike, prefix: str = IMAGE_PREFIX) -> str:
    """The image token of a file: prefix + path relative to `root`, no extension, ``/`` separators,
    whitespace and bytes that are not UTF-8 written as ``%XX`` (:func:`encode_key`).

    This is the rule the feature extractor uses too, so tokens and feature keys match.

    Parameters
    ----------
    path : path-like
        The image file.
    root : path-like
        The folder the keys are relative to.
    prefix : str
        Marks the token as an image (default :data:`IMAGE_PREFIX`); ``""`` gives the bare key.

    Returns
    -------
    str

    Examples
    --------
    >>> image_key("/data/imgs/pets/cat.01.png", "/data/imgs")
    'img:pets/cat.01'
    """
    rel = os.path.relpath(os.fspath(path), os.fspath(root))
    stem, _ext = os.path.splitext(rel)
    return prefix + encode_key(stem.replace(os.sep, "/"))


#: How a file's key can be made (``im2vec extract --keys``, a store's ``metadata["key_rule"]``): "path",
#: its path under the image folder without extension (:func:`image_key`); "stem", its file name
#: without extension (YFCC100M's hash-sharded files); "flickr-id", the photo id that starts a Flickr
#: file name (``<id>_<secret>_o.jpg``).
KEY_RULES = ("path", "stem", "flickr-id")


def rule_key(path: str | os.PathLike, root: str | os.PathLike, rule: str = "path",
             prefix: str = IMAGE_PREFIX) -> str | None:
    """The key of the image file `path` under `root` by the key rule `rule` (:data:`KEY_RULES`), or
    None when the rule cannot name the file.

    "path" is :func:`image_key`; "stem" is `prefix` + the file name without its extension; "flickr-id"
    is `prefix` + the digits before the first ``_`` of the file name, and None for a file not named as
    Flickr names photos (``<id>_<secret>[_o].jpg``, the id digits only): such a file has no key by
    that rule, and a folder holding one is refused by
    :func:`gensim_im2vec.features.list_images` (``im2vec extract --keys flickr-id``), naming it,
    rather than skipped. Whitespace and bytes that are not UTF-8 are written as ``%XX``
    (:func:`encode_key`) by every rule.

    Examples
    --------
    >>> rule_key("/data/imgs/a/6985418911_4e2f7a26a1_o.jpg", "/data/imgs", "flickr-id")
    'img:6985418911'
    >>> rule_key("/data/imgs/d29/e7c/d29e7c6a30.jpg", "/data/imgs", "stem")
    'img:d29e7c6a30'
    >>> rule_key("/data/imgs/a/x.jpg", "/data/imgs", "flickr-id") is None
    True
    """
    if rule == "path":
        return image_key(path, root, prefix)
    if rule not in KEY_RULES:
        raise ValueError(f"key rule: expected one of {', '.join(map(repr, KEY_RULES))}, got {rule!r}.")
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    if rule == "flickr-id":
        stem = stem.split("_", 1)[0]
        if not (stem.isascii() and stem.isdigit()):
            return None
    return prefix + encode_key(stem)


def describe_key_rule(rule: str | None, prefix: str = IMAGE_PREFIX) -> str:
    """What an image key is by the key rule `rule` (:data:`KEY_RULES`), in words for a message
    ("An image key is ..."); None (a store of keys its caller made) says so.

    Examples
    --------
    >>> describe_key_rule("flickr-id")
    "'img:' + the photo id that starts the file's Flickr name (<id>_<secret>_o.jpg)"
    """
    if rule == "path":
        return f"{prefix!r} + the file's path under the image folder without its extension"
    if rule == "stem":
        return f"{prefix!r} + the file's name without its extension (its folders left out)"
    if rule == "flickr-id":
        return f"{prefix!r} + the photo id that starts the file's Flickr name (<id>_<secret>_o.jpg)"
    return f"{prefix!r} + the key its feature store was given with the image (keys made by its caller)"


def image_test(model, prefix: str | None = None) -> Callable[[str], bool]:
    """The modality test of `model`: ``test(key) -> True`` for an image token.

    Parameters
    ----------
    model : Im2Vec, Word2Vec or KeyedVectors
        An Im2Vec model answers with its own ``is_image`` (a token with features); anything else
        by the prefix.
    prefix : str, optional
        The image prefix of a plain model (default: the model's ``image_prefix``, else
        :data:`IMAGE_PREFIX`).
    """
    is_image = getattr(model, "is_image", None)
    if callable(is_image):
        return is_image
    p = _prefix(model, prefix)
    return lambda key: isinstance(key, str) and key.startswith(p)


def image_mask(model, prefix: str | None = None) -> np.ndarray:
    """Boolean mask over the vocabulary (``model.wv.index_to_key``): True for image tokens, by
    :func:`image_test`."""
    kv = getattr(model, "wv", model)
    keys = kv.index_to_key
    mask = getattr(model, "image_mask", None)  # an Im2Vec model knows which tokens have features
    if mask is not None and len(mask) == len(keys):
        return np.asarray(mask)
    test = image_test(model, prefix)
    return np.fromiter((test(k) for k in keys), dtype=bool, count=len(keys))


def _prefix(model, prefix: str | None) -> str:
    if prefix is None:
        prefix = getattr(model, "image_prefix", None)
    return IMAGE_PREFIX if prefix is None else prefix
