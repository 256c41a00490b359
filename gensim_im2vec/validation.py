"""Validate inputs once, at the boundary, with errors that name the culprit and the fix.

One helper, :func:`check_features`, is shared by the feature store, the model and the
evaluation code, so every path that lets feature vectors in checks them the same way:

>>> import numpy as np
>>> from gensim_im2vec.validation import check_features
>>> check_features(np.ones((2, 3)), dim=3, name="image_features").dtype
dtype('float32')
>>> check_features(np.ones(3), name="image_features")
Traceback (most recent call last):
...
ValueError: image_features: expected a 2-D array (n_images, n_features), got a 1-D array of shape (3,). Reshape a single vector with array.reshape(1, -1).
"""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import Container, Iterable, Iterator, Sequence

import numpy as np

__all__ = ["check_corpus", "check_document", "check_features", "check_not_a_str", "check_tag_lists", "check_tagged_features", "check_topn",
           "feature_array", "is_int", "is_one_shot", "l2_normalize", "npy_header", "npy_problem", "query_items", "query_keys"]


def _row_names(keys: Sequence[str] | None, rows: np.ndarray, limit: int = 5) -> str:
    rows = list(rows[:limit])
    if keys is not None:
        shown = ", ".join(repr(keys[int(i)]) for i in rows)
    else:
        shown = ", ".join(f"row {int(i)}" for i in rows)
    return shown


def check_features(
    arr,
    *,
    dim: int | None = None,
    name: str = "features",
    keys: Sequence[str] | None = None,
    dtype=np.float32,
    allow_zero: bool = False,
    copy: bool = False,
    check_finite: bool = True,
) -> np.ndarray:
    """Check a feature matrix and return it as a C-contiguous 2-D array of `dtype`.

    Parameters
    ----------
    arr : array_like of shape (n_images, n_features)
        The feature vectors, one row per image. A memory-mapped array stays memory-mapped
        when it already has the right dtype and layout.
    dim : int, optional
        Expected number of features per row; None accepts any width.
    name : str
        Who is asking (an argument or store name), used in error messages.
    keys : sequence of str, optional
        Row keys, so errors name the offending image (``'img:123'``) instead of a row number.
    dtype : numpy dtype
        Output dtype (float32 for the kernel; float16 is accepted for storage).
    allow_zero : bool
        Whether all-zero rows are allowed (they cannot be L2-normalised, so the model refuses them).
    copy : bool
        Always return a new array.
    check_finite : bool
        Scan for NaN/inf (one pass over the data).

    Returns
    -------
    numpy.ndarray of shape (n_images, n_features) and dtype `dtype`, C-contiguous.

    Raises
    ------
    ValueError
        Wrong number of dimensions, wrong width, empty input, NaN/inf or all-zero rows;
        the message names the rows (by key when `keys` is given) and says how to fix it.
    """
    a = _check_shape(arr, dim, name, keys)
    if check_finite:
        bad = ~np.isfinite(a).all(axis=1) if np.issubdtype(a.dtype, np.floating) else np.zeros(len(a), bool)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{name}: {len(rows)} feature vector(s) contain NaN or inf: {_row_names(keys, rows)}. "
                f"Drop or re-extract those images."
            )
    zero = None
    if not allow_zero:
        zero = ~np.any(a != 0, axis=1)
        if zero.any():
            rows = np.flatnonzero(zero)
            raise ValueError(
                f"{name}: {len(rows)} feature vector(s) are all zeros: {_row_names(keys, rows)}. "
                f"An all-zero vector has no direction; drop or re-extract those images."
            )
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(a, dtype=dtype)
    if check_finite and out.dtype != a.dtype and np.issubdtype(out.dtype, np.floating):
        # finite in the input's dtype is not finite after the cast (1e39 in float64 is inf in float32)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{name}: {len(rows)} feature vector(s) exceed the {out.dtype.name} range "
                f"(±{float(np.finfo(out.dtype).max):.3g}): {_row_names(keys, rows)}. Rescale the features "
                f"(e.g. L2-normalise each row in float64) or drop those images."
            )
    if not allow_zero:
        _check_norms(a, out, name, keys)
    if copy and out is a:
        out = out.copy()
    return out


def _check_shape(arr, dim: int | None, name: str, keys: Sequence[str] | None) -> np.ndarray:
    """`arr` as a numeric 2-D array of at least one row and column, `dim` wide, one row per key."""
    if isinstance(arr, (list, tuple)) and len(arr) == 0:
        raise ValueError(f"{name}: got no feature vectors (an empty sequence).")
    a = feature_array(arr, name, keys)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name}: expected numeric feature vectors, got an array of dtype {a.dtype}.")
    if a.ndim != 2:
        hint = ""
        if a.ndim == 1:
            hint = " Reshape a single vector with array.reshape(1, -1)."
        raise ValueError(
            f"{name}: expected a 2-D array (n_images, n_features), got a {a.ndim}-D array "
            f"of shape {a.shape}.{hint}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one image with at least one feature, got shape {a.shape}.")
    if keys is not None and len(keys) != a.shape[0]:
        raise ValueError(f"{name}: {len(keys)} keys for {a.shape[0]} feature rows; they must match one to one.")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(
            f"{name}: expected features of dim {dim}, got {a.shape[1]}; re-extract them with the same "
            f"model and layer, or open the matching store."
        )
    return a


def feature_array(arr, name: str = "features", keys: Sequence[str] | None = None) -> np.ndarray:
    """``np.asarray(arr)``, but rows of different lengths (a list of vectors, one of them shorter) are a
    ValueError that names `name` and the first row that differs (by key when `keys` is given), where
    numpy says "setting an array element with a sequence ... inhomogeneous shape".

    >>> feature_array([[1.0, 2.0], [3.0, 4.0]]).shape
    (2, 2)
    >>> feature_array([[1.0, 2.0], [3.0]], name="image_features", keys=["img:a", "img:b"])
    Traceback (most recent call last):
    ...
    ValueError: image_features: the feature vectors are not all of one length: 'img:a' has 2, 'img:b' has 1. All images need features of one dim, from the same model and layer.
    """
    try:
        return np.asarray(arr)
    except ValueError:
        raise ValueError(f"{name}: the feature vectors are not all of one length{_ragged_rows(arr, keys)}. All images "
                         f"need features of one dim, from the same model and layer.") from None


def _ragged_rows(rows, keys: Sequence[str] | None) -> str:
    """The first row of `rows` whose length differs from the first's, as ``": 'img:0' has 16, 'img:5' has 15"``
    (``""`` where it cannot be told)."""
    try:
        sizes = [np.size(r) for r in rows]
    except (TypeError, ValueError):
        return ""
    odd = next((i for i, n in enumerate(sizes) if n != sizes[0]), None)
    if odd is None:
        return ""
    if keys is not None and len(keys) != len(sizes):  # (rows told by number: the keys do not match them)
        keys = None
    first, other = _row_names(keys, np.array([0])), _row_names(keys, np.array([odd]))
    return f": {first} has {sizes[0]}, {other} has {sizes[odd]}"


#: Squared L2 norms that float32 represents as a normal number: the model normalises rows with
#: ``1 / sqrt(sum(x * x))`` in float32, so a row outside this range would become NaN or 0.
_SQ_NORM_RANGE = (float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max))


def _check_norms(a: np.ndarray, out: np.ndarray, name: str, keys: Sequence[str] | None) -> None:
    """Refuse rows whose float32 squared norm overflows or underflows (the row cannot be normalised)."""
    lo, hi = _SQ_NORM_RANGE
    bad_rows = []
    for start in range(0, len(out), 65536):
        block = out[start:start + 65536]
        if block.dtype != np.float32:
            block = block.astype(np.float32)
        with np.errstate(over="ignore", under="ignore"):
            sq = np.einsum("ij,ij->i", block, block)
        bad = ~((sq >= lo) & (sq <= hi))
        if bad.any():
            bad_rows.extend(start + np.flatnonzero(bad))
    if not bad_rows:
        return
    rows = np.asarray(bad_rows)
    norms = np.linalg.norm(np.asarray(a[rows[:5]], dtype=np.float64), axis=1)
    shown = ", ".join(f"{n:.3g}" for n in norms)
    raise ValueError(
        f"{name}: {len(rows)} feature vector(s) have an L2 norm that float32 cannot normalise "
        f"({_row_names(keys, rows)}: norm {shown}; the norm must lie between {np.sqrt(lo):.2g} and "
        f"{np.sqrt(hi):.2g}). Rescale the features (e.g. L2-normalise each row in float64) or drop "
        f"those images."
    )


def l2_normalize(arr: np.ndarray, out_dtype=np.float32) -> np.ndarray:
    """Return the rows of `arr` scaled to unit L2 norm (all-zero rows stay zero).

    The package's one row normaliser. Computed in float32, or in float64 when `out_dtype` is
    float64; returned as `out_dtype`.

    >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    a = np.asarray(arr, dtype=np.promote_types(np.float32, out_dtype))
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (a / norms).astype(out_dtype, copy=False)


def _shown_text(text, limit: int = 60) -> str:
    """`text` (a str or bytes) for a message: its repr, cut to about `limit` characters with "…"."""
    shown = repr(text[:limit])
    return shown[:-1] + "…" + shown[-1] if len(text) > limit else shown


def check_corpus(corpus_iterable, name: str = "corpus_iterable") -> None:
    """Refuse a corpus given as one str or bytes (a file's path, or one document): gensim would
    read its characters as documents.

    >>> check_corpus([["img:0", "dog"]])
    >>> check_corpus("docs.txt")
    Traceback (most recent call last):
    ...
    TypeError: corpus_iterable must be an iterable of documents (each a list of tokens), got a str: 'docs.txt'. For a text file of one document a line, pass corpus_file='docs.txt' or gensim_im2vec.corpora.LineDocuments('docs.txt'); for one document, [text.split()].
    """
    if isinstance(corpus_iterable, (str, bytes)):
        what = "a str" if isinstance(corpus_iterable, str) else "bytes"
        text = corpus_iterable if isinstance(corpus_iterable, str) else corpus_iterable.decode("utf-8", "replace")
        raise TypeError(
            f"{name} must be an iterable of documents (each a list of tokens), got {what}: "
            f"{_shown_text(corpus_iterable)}. For a text file of one document a line, pass corpus_file={text!r} "
            f"or gensim_im2vec.corpora.LineDocuments({text!r}); for one document, [text.split()].")


def is_one_shot(corpus) -> bool:
    """Whether `corpus` is used up by one pass for certain: a generator, or an iterator whose
    ``__iter__`` is built in or inherited from ``collections.abc.Iterator`` (returns the iterator
    itself, where it stopped: map(), zip(), iter(list), an open file, itertools, a class with only
    ``__next__`` of its own). A class's own Python ``__iter__`` that returns ``self`` may start over
    first (``self.i = 0; return self``): such a corpus is re-iterable, taken as gensim takes it.
    Shared by :meth:`Im2Vec.train <gensim_im2vec.model.Im2Vec.train>` and
    :class:`~gensim_im2vec.corpora.MixedCorpus`.

    >>> is_one_shot(iter([["a"]])), is_one_shot(x for x in [["a"]]), is_one_shot([["a"]])
    (True, True, False)
    """
    if isinstance(corpus, types.GeneratorType):
        return True
    if not isinstance(corpus, Iterator):
        return False
    own = getattr(type(corpus), "__iter__", None)
    if inspect.isfunction(own) and own is not Iterator.__iter__:
        return False
    return iter(corpus) is corpus


def check_document(doc, index: int) -> None:
    """Refuse document `index` of a corpus when it is one str (or bytes) instead of a list of
    tokens. gensim reads such a document as its characters ('i', 'm', 'g', ':', '0') and only logs
    a warning for the first document (so does a text-only Im2Vec); with images it can never be
    right (no image token would match a feature key), so an Im2Vec with image features raises,
    naming the document and the fix.

    >>> check_document(["img:0", "dog"], 0)
    >>> check_document("img:0 class0 tag3", 2)
    Traceback (most recent call last):
    ...
    TypeError: each document must be a list of tokens (str.split() it), got a str: document 2 of the corpus is 'img:0 class0 tag3'. Pass [doc.split() for doc in documents], or read a text file of one document a line with corpus_file= or gensim_im2vec.corpora.LineDocuments(path).
    """
    if isinstance(doc, (str, bytes)):
        if isinstance(doc, str):
            what, fix = "a str", "str.split() it"
            how = "[doc.split() for doc in documents]"
        else:
            what, fix = "bytes", "decode and split it"
            how = "[doc.decode('utf-8').split() for doc in documents]"
        raise TypeError(
            f"each document must be a list of tokens ({fix}), got {what}: document {index} of the corpus is "
            f"{_shown_text(doc)}. Pass {how}, or read a text file of one document a line with corpus_file= or "
            f"gensim_im2vec.corpora.LineDocuments(path).")


def check_not_a_str(value, name: str, of: str = "tags") -> None:
    """Refuse one str (or bytes) given where a collection of them is expected: it would be read as
    its characters, or, by ``in``, as its substrings (``exclude="dog"`` also drops "do").

    >>> check_not_a_str("dog", "exclude")
    Traceback (most recent call last):
    ...
    TypeError: exclude is the str 'dog', where a collection of tags is expected (it would be read as its characters); give a list, e.g. exclude=['dog'].

    The empty str holds no character to misread: it is the empty collection, as it always was
    (``exclude=""`` drops nothing; ``exclude=['']`` would name the empty word).

    >>> check_not_a_str("", "exclude")
    """
    if isinstance(value, (str, bytes)) and value:
        raise TypeError(f"{name} is the {type(value).__name__} {value!r}, where a collection of {of} is expected (it "
                        f"would be read as its characters); give a list, e.g. {name}=[{value!r}].")


def check_tag_lists(tags: Sequence[Iterable[str]], name: str = "tags",
                    drop: Container[str] | None = None) -> list[list[str]]:
    """Each image's tags as a list (without the tags in `drop`); a bare str in place of a list is
    refused (it would be read as its characters).

    >>> check_tag_lists([("dog", "pet"), ["car"]], drop={"pet"})
    [['dog'], ['car']]
    """
    out = []
    for i, t in enumerate(tags):
        if isinstance(t, str):
            raise TypeError(f"{name}[{i}] is the str {t!r}; give each image a list of tags, e.g. [{t!r}].")
        out.append([x for x in t if not drop or x not in drop])
    return out


def check_tagged_features(features, tags: Sequence[Iterable[str]], name: str) -> tuple[np.ndarray, list[list[str]]]:
    """Feature rows (:func:`check_features`) and their tag lists (:func:`check_tag_lists`), one to one."""
    X = check_features(features, name=f"{name} features")
    if len(tags) != len(X):
        raise ValueError(f"{name}: {len(X)} feature rows but {len(tags)} tag lists; they must match one to one.")
    return X, check_tag_lists(tags, f"{name} tags")


def is_int(value) -> bool:
    """Whether `value` is an integer (Python or NumPy) and not a bool: ``True`` is an int to
    Python, but a count given as ``True`` is a mistake to name, not the number 1.

    >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
    (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_topn(topn, name: str = "topn", allow_none: bool = True) -> int | None:
    """`topn` as an int >= 0 (None kept where `allow_none`), else a ValueError naming `name`.

    >>> check_topn(3), check_topn(None), check_topn(np.int64(0))
    (3, None, 0)
    >>> check_topn(2.5)
    Traceback (most recent call last):
    ...
    ValueError: topn must be an int >= 0 (how many neighbours) or None (all of them), got 2.5.
    """
    if topn is None and allow_none:
        return None
    if not is_int(topn) or topn < 0:
        what = "an int >= 0 (how many neighbours)" + (" or None (all of them)" if allow_none else "")
        raise ValueError(f"{name} must be {what}, got {topn!r}.")
    return int(topn)


#: What gensim's ``most_similar`` reads as one key or vector (anything else is a ``(key, weight)`` pair).
_KEY_OR_VECTOR = (str, int, np.integer, np.ndarray)


def query_items(items) -> list:
    """``positive``/``negative`` of a ``most_similar`` call as a list, as gensim reads them: one key
    (str, int index) or vector alone, else a sequence of keys, vectors and ``(key, weight)`` pairs.

    >>> query_items("dog"), query_items(None), query_items(["dog", ("cat", 0.5)])
    (['dog'], [], ['dog', ('cat', 0.5)])
    """
    if items is None:
        return []
    if isinstance(items, _KEY_OR_VECTOR):
        return [items]
    return list(items)


def check_query_vectors(kv, items: list) -> None:
    """Refuse a query vector of ``most_similar`` that is not one finite row of the model's dim:
    gensim fails on another shape with a bare "operands could not be broadcast together", and
    answers a NaN vector with nothing or arbitrary keys.

    >>> from gensim.models import KeyedVectors
    >>> kv = KeyedVectors(3)
    >>> check_query_vectors(kv, [np.ones(3), ("dog", 0.5)])
    >>> check_query_vectors(kv, [np.ones((2, 3))])
    Traceback (most recent call last):
    ...
    ValueError: a query vector has shape (2, 3), the model's vectors (3,); give one vector of the model's space (e.g. model.project(features)[0] for one image, or model.wv[key]).
    """
    for item in items:
        v = item[0] if isinstance(item, (tuple, list)) and item else item  # a (key or vector, weight) pair
        if isinstance(v, np.ndarray):
            if v.shape != (kv.vector_size,):
                raise ValueError(
                    f"a query vector has shape {v.shape}, the model's vectors ({kv.vector_size},); give one vector "
                    f"of the model's space (e.g. model.project(features)[0] for one image, or model.wv[key]).")
            if not np.isfinite(v).all():
                raise ValueError("a query vector contains NaN or inf, so no key is nearer than another; query with a "
                                 "finite vector (e.g. model.project(features) of finite features).")


def query_keys(items: Sequence) -> list:
    """The keys (str, or int vocabulary index) of query items (:func:`query_items`), weighted
    ``(key, weight)`` pairs included: the keys gensim's ``most_similar`` leaves out of its answer.

    >>> query_keys(["dog", ("cat", 0.5), np.ones(2), 3])
    ['dog', 'cat', 3]
    """
    keys = []
    for item in items:
        key = item if isinstance(item, _KEY_OR_VECTOR) else item[0]
        if isinstance(key, (str, int, np.integer)):
            keys.append(key)
    return keys


def npy_header(path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Read a ``.npy`` file's header without loading it: ``(shape, dtype, fortran_order, data_offset)``.

    Raises
    ------
    ValueError
        The file is empty or not a ``.npy`` file (the message names it).
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dt = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dt = np.lib.format.read_array_header_2_0(f)
            return tuple(shape), np.dtype(dt), bool(fortran), f.tell()
    except (ValueError, EOFError) as e:
        raise ValueError(f"{str(path)!r} is not a readable .npy file ({e or 'empty'}).") from None


def npy_problem(path) -> str | None:
    """Why the ``.npy`` file at `path` cannot be read whole (unreadable header, fewer bytes than its
    array needs: a truncated copy), or None when it looks complete."""
    try:
        shape, dt, _, offset = npy_header(path)
        size = os.path.getsize(path)
    except (ValueError, OSError) as e:
        return str(e)
    need = offset + int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if size < need:
        return f"{str(path)!r} has {size} bytes, its {shape} {dt.name} array needs {need} (a truncated copy?)"
    return None
