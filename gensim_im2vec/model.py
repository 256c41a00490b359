"""Im2Vec: gensim's Word2Vec with images as pseudo-words in one space with the words.

Introduction
------------
Each image is a token (``"img:<key>"``) that sits in a document with its tags, title or caption.
Its vector is not a free row of ``wv.vectors`` but a learned linear map of its CNN feature vector
(``W · (v̂_f − μ)``: ``v̂_f`` the L2-normalised features, ``μ`` their mean over the training images).
The map is trained by the *space step* (:mod:`gensim_im2vec.space`): each image against the words
of its document, by cosine to the words' own input vectors, so that the answer to "which words fit
this image" is the one gensim's ``model.wv.most_similar`` gives, in every direction
(image → word, word → image, image → image, analogies), from a saved KeyedVectors file or an ANN
index alike. Any image, also one never seen in training, is placed in the space from its features
alone (:meth:`Im2Vec.project`). Words train by skip-gram/CBOW as in Word2Vec.

Usage examples
--------------
Train on documents that mix images and words (features: a ``{key: vector}`` dict, a
``(keys, array)`` pair or a :class:`gensim_im2vec.store.FeatureStore`):

>>> import numpy as np
>>> from gensim_im2vec import Im2Vec
>>> rng = np.random.default_rng(0)
>>> protos = {"dog": rng.normal(size=64), "car": rng.normal(size=64)}
>>> docs, feats = [], {}
>>> for i in range(200):
...     cls = ("dog", "car")[i % 2]
...     feats[f"img:{i}"] = protos[cls] + 0.3 * rng.normal(size=64)
...     docs.append([f"img:{i}", cls, ("puppy", "wheel")[i % 2], "photo"])
>>> model = Im2Vec(docs, image_features=feats, vector_size=32, sg=1, min_count=1, epochs=20,
...                workers=1, seed=1)
>>> model.is_image("img:3"), model.is_image("dog")
(True, False)
>>> model.wv.most_similar("img:0", topn=1)[0][0].startswith("img:")   # its nearest: an image
True
>>> model.most_similar_words("img:0", topn=2)[0][0] in ("dog", "puppy")   # and its own words
True

Place an image never seen in training: its nearest words in the same space.

>>> new = protos["dog"] + 0.3 * rng.normal(size=64)
>>> model.similar_by_image(new, topn=1, restrict="words")[0][0] in ("dog", "puppy")
True
>>> [hits[0][0] in ("dog", "puppy") for hits in model.similar_by_image(np.stack([new, new]), topn=1,
...                                                                        restrict="words")]
[True, True]

Save and load (W and the vectors go to their own ``.npy`` files, memory-mappable; features given
in memory are saved with the model, only its images' rows; a :class:`~gensim_im2vec.store.FeatureStore`
is not copied but opened again at load), then continue training:

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "m.model")
>>> model.save(path)
>>> again = Im2Vec.load(path, mmap="r")
>>> again.train(docs, total_examples=len(docs), epochs=1)[0] > 0
True

For 10–100M images, keep ``wv.vectors`` (``vector_size × 4`` bytes per image) in a memory-mapped
``.npy`` file instead of private memory: page cache, which the kernel writes back and drops under
pressure (docs/scale.md §5.4). The same model, bit for bit:

>>> on_disk = Im2Vec(docs, image_features=feats, vector_size=32, sg=1, min_count=1, epochs=20, workers=1,
...                  seed=1, vectors_file=os.path.join(tempfile.mkdtemp(), "vectors.npy"))
>>> type(on_disk.wv.vectors).__name__, bool(np.array_equal(on_disk.wv.vectors, model.wv.vectors))
('memmap', True)

Two-stage training: learn the word space on clean text with gensim, then learn ``W`` on the
image corpus with the text vectors frozen (see :meth:`Im2Vec.from_word2vec`; the tags the text
never saw learn as words, from the tags beside them and from the images). A word
that only the text knows (never in a document with an image) is still a word of the space: here
``class<c>_r1`` co-occurs with ``class<c>`` in text only, and an image of class ``c`` finds it
among the other such words by plain cosine.

>>> from gensim.models import Word2Vec
>>> from gensim_im2vec.synthetic import make_corpus
>>> data = make_corpus(n_classes=4, n_images=400, n_features=32, n_related=2, n_text_sentences=1500, seed=2)
>>> unseen = [f"class{c}_r1" for c in range(4)]
>>> text = [d for d in data.docs if not d[0].startswith("img:")]
>>> image_docs = [[w for w in d if w not in unseen] for d in data.docs if d[0].startswith("img:")]
>>> w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=10, workers=1, seed=1)
>>> two_stage = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=image_docs, epochs=15,
...                                  sample=0)
>>> key, its_class = image_docs[0][:2]
>>> cos = 1 - two_stage.wv.distances(key, unseen)
>>> unseen[int(np.argmax(cos))] == its_class + "_r1"
True

An image's describing words among the tags (the words of the image documents) rather than the
whole text: the space step trains images against the tags, and a text-only word near an image is
no answer to "which words fit it" (a zero-shot word like ``class0_r1`` above is ranked by
``wv.distances``, not listed here):

>>> tags = two_stage.most_similar_tags(key, topn=3)
>>> all(w in two_stage.image_tag_counts for w, _ in tags) and not set(unseen) & {w for w, _ in tags}
True
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import errno
import glob
import hashlib
import inspect
import io
import itertools
import logging
import math
import numbers
import operator
import os
import queue
import re
import shutil
import threading
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from timeit import default_timer
from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.sparse
from gensim import matutils, utils
from gensim.models.callbacks import CallbackAny2Vec
from gensim.models.fasttext import FastTextKeyedVectors
from gensim.models.keyedvectors import KeyedVectors
from gensim.models.word2vec import Word2Vec
from threadpoolctl import threadpool_limits

from gensim_im2vec import corpusfile
from gensim_im2vec.fileio import (
    COMPRESSED_SUFFIXES,
    atomic_copy,
    atomic_save,
    atomic_write,
    format_bytes,
    temp_name,
)
from gensim_im2vec.image_features import ImageFeatures, scattered_reads
from gensim_im2vec.keys import IMAGE_PREFIX, IMAGE_SUFFIXES, check_image_keys, key_spellings
from gensim_im2vec.neighbour_words import (
    ImageWords,
    NeighbourPool,
    add_documents,
    bags_from_pairs,
    count_images,
    pool_from_words,
    pool_keys,
)
from gensim_im2vec.portable import portable_state
from gensim_im2vec.space import (
    DIRECTIONS_BLOCK,
    JobPlan,
    WorkerW,
    analogy_step,
    common_directions,
    mean_unit_words,
    principal_directions,
    remove_directions,
    run_pairs,
    space_step,
    unit,
)
from gensim_im2vec.store import (
    FeatureStore,
    StoreMismatchError,
    VocabKeyIndex,
    _key_row_blocks,
    _recorded_node,
    key_rows,
)
from gensim_im2vec.validation import (
    check_corpus,
    check_document,
    check_features,
    check_query_vectors,
    check_topn,
    feature_array,
    is_int,
    is_one_shot,
    l2_normalize,
    npy_problem,
    query_items,
    query_keys,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: a vectors file is never taken over (see _VectorsFile)
    fcntl = None

try:
    from gensim_im2vec import im2vec_inner
except ImportError as err:  # pragma: no cover - exercised only without a build
    raise ImportError(
        "gensim_im2vec's compiled kernel (gensim_im2vec.im2vec_inner) is missing or broken "
        f"({err}). Build it from the source checkout with `pip install -e .` or "
        "`python setup.py build_ext --inplace` (needs Cython, numpy, scipy and a C compiler)."
    ) from err

logger = logging.getLogger(__name__)

#: The model's own transient attributes (locks, tables, a training's state), never saved: gensim's
#: save and load said so of each, a line apiece ("not storing attribute _epoch", "setting ignored
#: attribute _epoch to None"); :class:`_QuietTransients` keeps those lines of these names out.
_NOT_SAVED = frozenset({
    "_scan_tag_counts", "_neg_word_idx", "_neg_word_cum", "_neg_tag_idx", "_neg_tag_cum", "_space_lock",
    "_space_bias", "_tag_mask_cache", "_epoch", "_vectors_file_state", "_moving_vectors", "_w_workers",
    "_epochs_before", "_readout_sums", "_epochs_begun", "_image_rows_unwritten", "_training", "_lockf",
    "_gathered_words", "_neighbour_index_file", "_epoch_images_from",
})


class _QuietTransients(logging.Filter):
    """gensim.utils's line for each ignored attribute at save and load, less those of :data:`_NOT_SAVED`
    (16 lines of private names a save, 16 a load; gensim's own, such as ``cum_table``, stay), and only
    while this thread saves or loads an Im2Vec (:func:`_transients_quiet`): another gensim model saved
    in the same process (a Word2Vec saved with ``ignore=["_epoch"]``) still says each of its lines."""

    MESSAGES = ("not storing attribute %s", "setting ignored attribute %s to None")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (getattr(_IM2VEC_SAVELOAD, "depth", 0) and record.msg in self.MESSAGES
                    and isinstance(record.args, tuple) and len(record.args) == 1 and record.args[0] in _NOT_SAVED)


#: Per thread: how many Im2Vec saves or loads are under way (:func:`_transients_quiet`).
_IM2VEC_SAVELOAD = threading.local()


@contextlib.contextmanager
def _transients_quiet():
    """While it is open, :class:`_QuietTransients` drops this thread's lines of :data:`_NOT_SAVED` names
    (gensim logs them in the thread that saves or loads)."""
    _IM2VEC_SAVELOAD.depth = getattr(_IM2VEC_SAVELOAD, "depth", 0) + 1
    try:
        yield
    finally:
        _IM2VEC_SAVELOAD.depth -= 1


if not any(isinstance(f, _QuietTransients) for f in logging.getLogger("gensim.utils").filters):
    logging.getLogger("gensim.utils").addFilter(_QuietTransients())

__all__ = ["Im2Vec", "MAX_WORDS_IN_BATCH", "NotAModelError", "load_saved"]

REAL = np.float32
MAX_WORDS_IN_BATCH = im2vec_inner.MAX_WORDS_IN_BATCH
_CUM_DOMAIN = 2**31 - 1
_TAP_DOCUMENTS = 4096  # documents whose tokens build_vocab's scan looks up in the features at once,
_TAP_TOKENS = 1 << 16  # and at most the documents that reach this many tokens (text8's are 10,000 tokens each)
_LOOKUP_BLOCK = 1 << 16  # keys looked up in the features at once (key_rows) where every key of the vocabulary is
_WRITE_CHUNK = 4096  # rows per gather when writing or averaging image vectors: buffers of a few MB, reused
_STATS_LOCK = threading.Lock()
_WORKER = threading.local()  # .epoch: the _Epoch a gensim worker thread of an epoch over an iterable belongs to
_SETTLE_GRACE = 2.0  # seconds an interrupted epoch waits for its idle threads to end (_Epoch.settle)
#: Features given to :meth:`Im2Vec.load` (``image_features=``), seen by ``_load_specials``.
_LOAD_FEATURES: contextvars.ContextVar = contextvars.ContextVar("im2vec_load_features", default=None)
#: Set while a checkpoint is loaded to be trained on (checkpoint.resume): the words' rows it kept go into the
#: model's vectors_file, when it has one, instead of into memory, and the images' rows it left out are not
#: written on load (train() writes them all from W when it ends or is interrupted). A callable: called with the
#: model before its vectors file is opened or made (resume checks the checkpoint's inputs there).
_RESUMING: contextvars.ContextVar = contextvars.ContextVar("im2vec_resuming", default=False)
#: Called as ``hook(path, file, shape, token)`` when a model makes its vectors file `path` (`file`: its temporary
#: name, before the file has its name) or grows it (`file` is `path`); `token`: the random token the model wrote
#: into the file's header (None: no room): ``im2vec train`` records which file its run made,
#: so that a rerun after a kill -9 can tell the file it left from any other
#: (gensim_im2vec.checkpoint.mark_vectors_file, which writes a token into the file's header padding).
_VECTORS_FILE_MADE: contextvars.ContextVar = contextvars.ContextVar("im2vec_vectors_file_made", default=None)
#: The ``vectors_file`` given to :meth:`Im2Vec.load` (``vectors_file=``), seen by ``_load_specials``; the
#: default, :data:`_RECORDED`, keeps the one the model was saved with.
_RECORDED = type("_Recorded", (), {"__repr__": lambda self: "<the one it was saved with>"})()
_LOAD_VECTORS_FILE: contextvars.ContextVar = contextvars.ContextVar("im2vec_load_vectors_file", default=_RECORDED)
#: The model whose save() is pickling it without ``wv.key_to_index`` (Im2Vec._saved_without_key_index).
_PICKLED_WITHOUT_KEY_INDEX: contextvars.ContextVar = contextvars.ContextVar("im2vec_no_key_index", default=None)
#: The model whose save() is pickling it with its numpy objects in a form both numpy majors read
#: (Im2Vec.__getstate__, gensim_im2vec.portable).
_PICKLED_PORTABLE: contextvars.ContextVar = contextvars.ContextVar("im2vec_portable", default=None)



def _check_readout_directions(k) -> int:
    """`space_readout_directions`, checked: an int >= 0."""
    if not is_int(k) or k < 0:
        raise ValueError("space_readout_directions must be an int >= 0 (how many of the tags' top principal "
                         f"directions the readout leaves to W), got {k!r}.")
    return int(k)


def _check_neighbours(k, image_heads: str) -> None:
    """`space_neighbours`, checked: an int >= 0, and 0 unless the image head is the space's."""
    if not is_int(k) or k < 0:
        raise ValueError("space_neighbours must be an int >= 0 (how many nearest training images' words each "
                         f"image vector takes; 0: none), got {k!r}.")
    if k and image_heads != "space":
        raise ValueError(f"space_neighbours adds to the space head's image vectors; image_heads={image_heads!r} "
                         f"has none. Use image_heads='space', or space_neighbours=0.")


def _check_neighbour_index(spec, dim: int | None = None, n: int | None = None, faiss_needed: bool = True) -> str:
    """`space_neighbour_index`, checked: "exact", or a faiss index factory string with faiss installed
    (when needed) that faiss can build over `dim`-d features with no more IVF lists than the `n`
    images it will hold (when given)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"space_neighbour_index must be 'exact' or a faiss index factory string (e.g. 'IVF1024,Flat' "
                         f"or 'IVF4096,PQ64'), got {spec!r}.")
    if spec != "exact" and faiss_needed:
        try:
            import faiss
        except ImportError:
            raise ImportError(f"space_neighbour_index={spec!r} is a faiss index: pip install faiss-cpu (or "
                              f"'gensim-im2vec[scale]'), or use space_neighbour_index='exact'.") from None
        if dim is not None:
            try:
                index = faiss.index_factory(int(dim), spec, faiss.METRIC_INNER_PRODUCT)
            except RuntimeError as err:
                raise ValueError(f"space_neighbour_index={spec!r}: faiss cannot build it over {dim}-d features: "
                                 f"{_faiss_reason(err)}") from None
            if index.metric_type not in _neighbour_metrics(faiss):
                raise ValueError(f"space_neighbour_index={spec!r}: faiss builds it with metric {index.metric_type}, "
                                 f"neither inner product nor L2, which the features' cosines need; use another "
                                 f"index, e.g. 'IVF1024,PQ64'.")
            ivf = faiss.try_extract_index_ivf(index)
            if ivf is not None and n is not None and ivf.nlist > n:
                raise ValueError(f"space_neighbour_index={spec!r} has {ivf.nlist:,} IVF lists for {n:,} images: "
                                 f"give it fewer lists than images (faiss trains them on 39 or more images each), "
                                 f"e.g. 'IVF{max(1, n // 39)},Flat', or use 'exact'.")
    return spec


def _neighbour_metrics(faiss) -> tuple[int, int]:
    """The faiss metrics a neighbours' index may have: inner product (asked for), or L2 (which faiss's
    factory gives some indexes whatever is asked; on unit vectors the same order, the cosine 1 - d/2)."""
    return (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2)


def _faiss_reason(err: BaseException) -> str:
    """A faiss RuntimeError's message without the C++ function and file it came from."""
    text = str(err).strip().splitlines()[-1]
    return re.sub(r"^Error in .*? at \S+:\d+: (Error: )?", "", text)


def _check_neighbour_weight(weight) -> None:
    """`space_neighbour_weight`, checked: a finite real number >= 0 (not a bool)."""
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"space_neighbour_weight must be a finite number >= 0, got {weight!r}.")


def _attributes_of(obj) -> list[tuple[object, dict]]:
    """`obj`'s attributes and those of the objects gensim's save walks into with it (its attributes
    that have ``_save_specials``: ``wv``), each as ``(object, a shallow copy of its __dict__)``."""
    held, todo, seen = [], [obj], set()
    while todo:
        o = todo.pop()
        if id(o) in seen or not isinstance(getattr(o, "__dict__", None), dict):
            continue
        seen.add(id(o))
        held.append((o, dict(o.__dict__)))
        todo.extend(v for v in o.__dict__.values() if hasattr(v, "_save_specials"))
    return held


class _GivenFeaturesError(ValueError):
    """The features given to :meth:`Im2Vec.load` (``image_features=``) were refused: raised by the
    load as it is, not as a damaged model file (the file is fine, the argument is not)."""


class NotAModelError(TypeError, AttributeError):
    """A saved file holds another kind of object than the model asked for (e.g. KeyedVectors or a
    Doc2Vec given to :meth:`Im2Vec.load`). Both a TypeError and the AttributeError that gensim's
    ``Word2Vec.load`` raises there, so code written for either catches it."""


_HS_WITH_IMAGES = ("hs=1 with images is not supported: the image kernel trains with negative sampling. "
                   "Use hs=0, negative=5 (or more).")


#: Steps of the analogy term at each epoch's end (``space_analogies``), and questions per step (one
#: step of 0.05 answered the demo's unseen questions as well as two of 0.025 or five of 0.01, at a fifth of the cost).
ANALOGY_STEPS = 1
ANALOGY_BATCH = 4096


def _check_analogies(quads) -> list[tuple[str, str, str, str]] | None:
    """``space_analogies`` as a list of 4-tuples of str (None or empty: None)."""
    if quads is None:
        return None
    if isinstance(quads, (str, bytes)):
        raise TypeError("space_analogies must be a sequence of (image x, word a, word b, image y) tuples, "
                        f"got a {type(quads).__name__}.")
    out = []
    for n, q in enumerate(quads):
        if isinstance(q, (str, bytes)) or not hasattr(q, "__len__") or len(q) != 4 or not all(isinstance(t, str) for t in q):
            raise ValueError(f"space_analogies[{n}] = {q!r}: each question must be 4 strings (image x, word a, "
                             f"word b, image y), as evaluate.analogy_quads makes them.")
        out.append(tuple(q))
    return out or None


def _check_positive(name: str, value, hint: str = "") -> None:
    """Raise ValueError naming `name` unless `value` is a finite real number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0{f' ({hint})' if hint else ''}, got {value!r}.")


def _check_non_negative(name: str, value, hint: str = "", allow_none: bool = False) -> None:
    """Raise ValueError naming `name` unless `value` is a finite real number >= 0 (or None when allowed)."""
    if allow_none and value is None:
        return
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        what = "None or a finite number >= 0" if allow_none else "a finite number >= 0"
        raise ValueError(f"{name} must be {what}{f' ({hint})' if hint else ''}, got {value!r}.")


def _cum_table(weights: np.ndarray, domain: int = _CUM_DOMAIN) -> np.ndarray:
    """Cumulative table of `weights` scaled to [0, domain] (uint32), as gensim's make_cum_table."""
    weights = np.asarray(weights, dtype=np.float64)
    cum = np.cumsum(weights)
    total = cum[-1] if len(cum) else 0.0  # summed in order, as gensim's loop (not NumPy's pairwise sum)
    if total <= 0:
        return np.zeros(0, dtype=np.uint32)
    cum = np.round(cum / total * domain)
    cum[-1] = domain
    return cum.astype(np.uint32)


def zipf_counts(n: int, last: int = 5) -> np.ndarray:
    """Word counts for `n` words listed by frequency without their counts (word2vec's and fastText's
    files): Zipf's law, ``count(r) ∝ 1 / r``, scaled so that the last word has `last` (a vocabulary
    cut at ``min_count``). They weigh the negatives (``count ** ns_exponent``): against the file's
    rank as counts (gensim's loader makes up ``n − r``), which draws nearly uniformly from the whole
    vocabulary, the tags the text lacked sit nearer where the text would put them (on the demo with
    a fifth of its tags lacking a vector, ΔWordSim353 −0.073 against −0.080, seeds 1–3; the text's
    real counts −0.070; docs/joint-space.md).

    >>> zipf_counts(4, last=5).tolist()
    [20, 10, 7, 5]
    """
    return np.maximum(np.rint(last * n / np.arange(1, n + 1)), 1).astype(np.int64)


def _check_pretrained_size(kwargs: dict, size: int, what: str) -> None:
    """``from_word2vec``'s `vector_size`, if given, must be the pretrained words' own."""
    asked = kwargs.get("vector_size", size)
    if asked != size:
        raise ValueError(
            f"vector_size={asked!r} contradicts the {what} vector_size={size}: from_word2vec keeps its {size}-d "
            f"word vectors. Leave vector_size out, or train the word vectors with vector_size={asked!r} first.")



def _keys_in(key_to_index, keys: Iterable, held: bool = True) -> list:
    """The `keys` that `key_to_index` holds (or, not `held`, lacks), in their order; taken and looked
    up :data:`_LOOKUP_BLOCK` at a time (:func:`~gensim_im2vec.store.key_rows`: a store's KeyIndex
    looks many keys up at once faster than one at a time), so `keys` may be a generator: only a
    block of them is held at once."""
    out = []
    for part, rows in _key_row_blocks(key_to_index, keys, _LOOKUP_BLOCK):
        out.extend(itertools.compress(part, ((rows >= 0) if held else (rows < 0)).tolist()))
    return out


def _document_blocks(documents: Iterable):
    """`documents` in lists of :data:`_TAP_DOCUMENTS` at most, each ending with the document that
    brings its tokens to :data:`_TAP_TOKENS` (a block's tokens are looked up at once: a block of
    4096 long documents would hold tens of millions of them, and their digests, rows and runs)."""
    block, tokens = [], 0
    for doc in documents:
        block.append(doc)
        tokens += len(doc) if isinstance(doc, Sized) else 0  # (not a document: the scan says so, as before)
        if len(block) >= _TAP_DOCUMENTS or tokens >= _TAP_TOKENS:
            yield block
            block, tokens = [], 0
    if block:
        yield block


class Im2Vec(Word2Vec):
    """Word2Vec whose vocabulary also holds images, each embedded as ``W · v̂_f``.

    Every :class:`gensim.models.word2vec.Word2Vec` argument keeps its meaning (and position);
    the image arguments are keyword-only.

    Parameters
    ----------
    sentences : iterable of list of str, optional
        Documents. An image document holds the image's token (``"img:<key>"``) and its tags /
        caption words; text-only documents are ordinary sentences. If given, the model is built
        and trained at once (as Word2Vec).
    corpus_file : str, optional
        Path to a corpus in :class:`~gensim.models.word2vec.LineSentence` format (one document per
        line, tokens separated by spaces; not compressed), instead of `sentences`. Every worker
        reads its own byte range of the file (:mod:`gensim_im2vec.corpusfile`): a model without
        image features trains on gensim's own file kernel; with features, image tokens train by
        the same path as with `sentences`.
    image_features : mapping, (keys, array) pair, feature store or its path, optional
        Feature vectors of the images, ``{key: 1-D vector}``, ``(keys, 2-D array)``, an object
        with ``keys`` and ``vectors`` attributes (e.g. :class:`gensim_im2vec.store.FeatureStore`,
        possibly memory-mapped; it is not copied) or a feature store's folder (str or PathLike,
        opened with :meth:`FeatureStore.open <gensim_im2vec.store.FeatureStore.open>`). A token is
        an image token when it has features. Keys hold no whitespace (a ValueError names one that
        does): write it as ``%XX`` with :func:`gensim_im2vec.keys.encode_key`, as ``image_key``
        and ``FolderCorpus`` do, so documents can name it and ``wv.save_word2vec_format`` loads back.
    image_prefix : str
        Tokens starting with this prefix must have features (see `missing_images`). Default ``IMAGE_PREFIX`` ("img:").
    missing_images : {"raise", "skip"}
        What to do with a prefixed token that has no features: raise (default, naming the keys)
        or drop it from the vocabulary with one warning and a count.
    train_words : bool or "new"
        True: word input vectors learn. "new" (:meth:`from_word2vec`'s default): the text's words
        stay frozen (bit-identical) and the words added after it, tags the text never saw, learn in
        every ``train()`` as gensim trains a word (the model's skip-gram or CBOW, from the words
        beside them) and from the images by the space step. False: every word that has a trained
        vector stays frozen: the text's words and any word an earlier ``train()`` trained; a word
        without one learns from the images alone (the space step, not the words beside it) in the
        first ``train()`` that has it, so it lies among the images rather than the words
        (`space_calibrate_new_words` corrects part of that).
        On the demo with a share of its tags taken out of the text (a collection whose tags the text
        mostly never saw; docs/joint-space.md, "Tags the text never saw, trained as words"), "new"
        places those tags among the words they would have had (their cosine profile against the
        text's words correlates 0.39 with the full text's, False 0.17; ΔWordSim353 −0.04 against −0.15)
        and ranks an image's tags as well (held-out image → word 0.254 against 0.258).
    train_outputs : bool
        Whether the output vectors (``syn1neg``) learn. Default True.
    train_images : bool
        Whether ``W`` learns. False keeps it bit-identical.
    normalize_features : bool
        L2-normalise feature vectors before use (default True; raw CNN features have norms of
        10–100, which would blow the step size up by that squared).
    tied_image_targets : bool
        If True, an image as the centre word of a pair uses its own ``h`` as output vector, so tags'
        input vectors are pulled straight towards the image (first-order word↔image cosine).
        If False (default), an image only acts as input, as in the original slides.
    image_negatives : {"tags", "vocab"}
        Where negatives for image-input pairs come from: the tag distribution of the image
        documents ("tags", default: negatives are other tags, not "the"/"of"), or the whole
        vocabulary's unigram^ns_exponent table ("vocab").
    image_alpha : float
        Learning-rate multiplier for ``W`` (its step is ``image_alpha × alpha``). > 0.
    image_context : {"window", "document"}
        For the pair heads ("output", "input", "both"; the space head always pairs an image with
        every word of its document). "window" (default): an image token is a context of the
        tokens within `window`, like a word. "document": of every token of its document (its tags all describe it, wherever
        they stand; documents are chunked at 10,000 tokens) — for long captions where tags sit far
        from the image token. On OpenClipArt (tags first) "window" measured better.
    image_heads : {"space", "output", "input", "both"}
        How images learn. "space" (default): the space step (:mod:`gensim_im2vec.space`), each
        image against its document's words by cosine to their input vectors, so ``model.wv``'s
        cosine relates images and words. The others are the skip-gram pair heads of the first
        build, kept for comparison: an image's ``h`` predicts its tags' output vectors
        (``syn1neg``, the slides' objective: images then form a cloud of their own in ``wv``),
        their input vectors, or both (CBOW: "output").
    image_batch : int
        Image tokens per W update (a job is cut into runs of documents holding about this many);
        0: one update per job. The space step's candidates are the run's words plus
        `space_negatives`. Larger is faster (bigger sgemms), smaller is more stable.
    space_temperature : float
        τ of the space step's cosine softmax (> 0). Measured on the demo: 0.1 beats 0.3 and 1.0.
    space_negatives : int
        Negative words drawn per run (from the tag distribution, or the vocabulary with
        ``image_negatives="vocab"``), beside the run's own words. On the demo 256 ranks zero-shot tags and answers analogies
        better than 1,024, held-out images' tags a little worse (docs/experiments.md).
    space_alpha : float
        Step of ``W`` in the space step, relative to ``alpha × image_alpha`` (> 0). The loss is
        scale-free in ``h``, so this is small. A dial (docs/experiments.md): on the demo 0.03
        ranks held-out images' words better than 0.01 (two-stage mAP 0.22 vs 0.205), the training
        images' own tags and cross-modal analogies worse (analogies 0.22 vs 0.30); on the tests'
        synthetic corpus with style directions, held-out images find their class word less often
        (0.82 vs 0.95).
    space_word_alpha : float
        Step of the words' input vectors in the space step, relative to ``alpha`` (0: the space
        step moves no word). Which words move: see `space_pull`.
    space_pull : float or None
        None: the space step moves only the words ``train_words`` lets learn, and words without a
        pretrained vector (two-stage leaves those at their random start otherwise). A number:
        pretrained words move too, each pulled back towards its text vector with this strength
        (the dial between the words' text meaning and their fit to images).
    space_symmetric : float
        Weight of the word → images term (each word of a run against the run's images).
    space_candidates : {"run", "own"}
        The words each image's softmax runs over. "run": every word of the run (the other images'
        words are its negatives too) plus `space_negatives`; its cost per image grows with the
        run's distinct words. "own": its own words plus the shared `space_negatives`, a fixed
        cost per image.
    space_common_directions : int or None
        After each ``train()``, the image vectors lose their component along the direction every
        tag shares (the mean of the tags' unit vectors) and, if > 0, along the tags' top
        `space_common_directions` principal directions ("all-but-the-top"): ``W`` loses it (the
        readout of `space_readout` keeps it). The words keep their
        vectors. None (the default): keep ``W`` as trained. With the mean alone (0, the demo's
        setting) a tag's nearest images are no longer the images that lean towards every tag: on
        the demo word → held-out images +0.011 mAP in joint mode, held-out image → word +0.005 in
        two-stage, zero-shot tags unchanged; but on a 1,000-image subset with 32-d word vectors,
        where the tag prior beats the space, held-out image → word −0.02. 2 ranks the demo split's
        zero-shot tags +0.06 better but those of five other splits 0.02 worse
        (docs/joint-space.md). Measure on your data before you set it.
    space_decoder : float
        λ of the decoder term (:mod:`gensim_im2vec.space`): ``Wᵀ`` must also map the mean of an
        image's unit words back to its features, ``λ · ‖(v̂ − μ) − Wᵀ·c‖²``, so the map keeps what
        the words say about the features (a semantic autoencoder). 0 (the default): off. On the
        demo (two-stage, seeds 1–3, docs/joint-space.md) 5 raises held-out image → word mAP from
        0.201 to 0.230 and word → image from 0.089 to 0.112 at every seed, for training images'
        own tags 0.81 → 0.76 and analogies 0.26 → 0.24; on five other splits word → image gains
        at every split but image → word does not on average, and in joint mode it loses 0.04.
        It costs two sgemms per run (the space step's share of two-stage training 39% → 52%).
        The term's step is capped per run (:func:`~gensim_im2vec.space.decoder_step_size`), so a
        large λ cannot make W diverge; it only weighs the term more (λ 100 on the demo: image →
        word 0.13).
    space_tag_prior : float
        γ: each candidate word's logit in the space step's softmax is lowered by ``γ · log n_w``
        (``n_w``: its count in the image documents), the sampled softmax's correction for drawing
        frequent tags more often. Without it the cosine learns how much likelier a tag is on this
        image than on any, and ranks a tag that is on most images low even on images it is on;
        with it the cosine itself must carry the tags' prior. 0 (the default): off. What it did on
        the demo's data: docs/joint-space.md ("The tags' prior").
    space_analogies : sequence of (str, str, str, str), optional
        Cross-modal analogy questions ``(image x, word a, word b, image y)``: ``x − a + b`` should
        find ``y``, as ``model.wv.most_similar(positive=[x, b], negative=[a])`` ranks. At each
        epoch's end ``W`` takes a step of a softmax over images of that cosine
        (:func:`~gensim_im2vec.space.analogy_step`), so that the difference between two images
        becomes the difference between the words that tell them apart. Mine them from titles or
        captions that differ in one word (:func:`~gensim_im2vec.evaluate.analogy_quads`); questions
        whose images or words the vocabulary lacks are left out with a warning. It teaches the
        word pairs it is given, and little else: on the demo's data (two-stage), trained on half of
        its questions, it answers them at 0.98, and on images no trained question names the swaps
        it was taught at 0.72 instead of 0.51, the others at 0.14 instead of 0.13
        (docs/joint-space.md, "The analogy term").
    space_readout : float
        β: an image's vector becomes ``unit(W·(v̂ − μ)) + β · unit(R·(v̂ − μ) + c)``, the space's map
        and a ridge readout summed. ``R`` maps the features to the mean unit vector of an image's
        words (ridge regression, penalty 1, fitted in one solve from sums gathered while the last
        epoch of each ``train()`` trains the images: no pass of its own over the corpus) and ``c``
        centres its output on the mean unit word vector, so it points where the image's words lie
        relative to all words. Least squares towards the words' centroid ranks words the images
        never carried (zero-shot) better than the softmax does, and carries the tags' direction
        into word → image; stored in ``model.wv`` and given by :meth:`project` alike, so gensim's
        cosine answers with it. The tags' common directions (`space_common_directions`) leave ``W``
        only: taken out of the readout too, the joint demo's zero-shot rose on its split and fell
        on five others. 0 (the default): off, an image's vector is ``W·(v̂ − μ)``. Both demos
        train with 0.5 and `space_readout_directions` 50 (docs/joint-space.md; over every direction
        the readout costs two-stage's held-out image → word).
    space_readout_directions : int
        k > 0: the readout leaves out the tags' top k principal directions
        (:func:`~gensim_im2vec.space.principal_directions`, of the tags' unit vectors when the readout
        is fitted): ``R ← (I − P·Pᵀ)·R``, the same for ``c``. ``W`` ranks the tags along the directions
        where they differ most; the readout adds what the features say along the others. 0 (the
        default): the readout keeps every direction. It takes effect when the readout is fitted
        (each ``train()`` with `space_readout`). Both demos set 50 of 200 dimensions (the tags'
        top 50 hold 80% of their variance): two-stage held-out image → word 0.231 → 0.243 and
        zero-shot 0.303 → 0.342 against no readout; joint word → held-out images 0.130 → 0.134
        (above kNN's at every seed) and zero-shot 0.278 → 0.261 against the readout over every
        direction (seeds 1–3; docs/joint-space.md).
    space_calibrate_new_words : bool
        Only with ``train_words=False`` (else a ValueError): after each ``train()``, every word
        without a pretrained vector (a tag the text model did not have; the space step alone moves
        it, along image vectors only) gets the share of its norm in the images' main directions
        that the pretrained tags have, the rest along a direction the images hardly use: its cosine
        to every image shrinks by about one factor, so it stops coming before the text's tags for
        every image, and its own ranking of the images stays about as it was (on the demo,
        unchanged). False (the default): such words stay as the space step left them. The two-stage
        demo sets it with ``train_words=False``: its 27 such tags (1.3% of the tags) were 18% of a
        held-out image's 10 nearest tags, 4% with it, and held-out image → word rose by 0.013 at
        every seed. Where many tags lack a text vector it does harm: with 7.8% / 21% of the demo's
        tags lacking one, held-out image → word 0.246 → 0.227 / 0.258 → 0.200 (seeds 1–3;
        docs/joint-space.md), and above :data:`CALIBRATION_MAX_SHARE` of them it warns;
        ``train_words="new"`` is the setting for that case. Nothing changes for pretrained words.
    space_neighbours : int
        k > 0: every image vector, its row of ``wv`` and :meth:`project` alike, also carries the
        words of its k nearest training images by the cosine of the features: it becomes
        ``unit(v) + γ · unit(Σ_j s_j^p · b̃_j)`` (γ = `space_neighbour_weight`; see
        :meth:`fit_neighbours` for the terms), kNN tag transfer written into the space, where
        gensim's cosine, a saved KeyedVectors file, the ANN index and the projector read it. The
        images' words are gathered while the last epoch of each ``train()`` trains them (no pass of
        its own over the corpus; with `corpus_file`, a line's first 10,000 tokens, as gensim reads
        it) and fitted as it ends, from the words as trained; images a ``train()`` does not see
        (``build_vocab(update=True)`` then a ``train()`` on the new documents) keep the words of the
        one before, also after an interrupted ``train()``. The words gathered are NumPy arrays of
        (image, word) pairs, 8-12 bytes a distinct pair while the epoch runs (172 bytes an image of
        14 words, against 666 for the dict per image they replace; gensim_im2vec.neighbour_words).
        Each ``train()`` refits every image's k
        nearest (exact: O(n² F), 2 s on the demo's 5,911 images; refused above
        :data:`NEIGHBOUR_EXACT_MAX`, see `space_neighbour_index`); k set after a fit takes effect
        at the next one. Both demos set 20 (seeds
        1–3 on the demo's split: two-stage word → held-out images 0.113 → 0.154, above kNN's 0.150
        at every seed, analogies 0.23 → 0.59, zero-shot 0.366 → 0.407; joint word → image
        0.149 → 0.182; nothing fell; docs/joint-space.md). 0 (the default): off.
    space_neighbour_weight : float
        γ, the neighbours' words' weight against the image's own vector (>= 0). Set after training,
        the images' rows of ``wv`` are written again with the new γ (0: the vectors without them).
    space_neighbour_index : str
        How the nearest training images are found: ``"exact"`` (the default: every fitted image's
        unit features in memory, ``n × F`` floats, each image compared with all of them; refused
        above :data:`NEIGHBOUR_EXACT_MAX` images), or a faiss index factory string over the
        features with inner product, e.g. ``"IVF1024,Flat"`` (the vectors in IVF lists) or
        ``"IVF4096,PQ64"`` (64 bytes of code an image; its 4k best candidates re-ranked by their
        exact cosines, read from the features, the fit's queries grouped by IVF list so that a block
        of them reads its shared candidates once: a training image finds itself whenever it is among
        them), or with a faiss refine stage, ``"IVF4096,PQ64,Refine(SQ8)"`` (the 4k candidates
        re-ranked in memory by a copy of the features in F bytes an image, ``SQfp16`` 2F, ``RFlat``
        4F, exact: no feature row read from the store, which at 100M images is the fit's largest
        cost, docs/scale.md). Built from the feature rows a chunk at a time as the fit needs it, and saved with the
        model (``FNAME.neighbours.faiss``, read back when a loaded model first writes or projects an
        image: no k-means again; built again, logged, where that file is missing or of another fit).
        ``benchmarks/bench_neighbour_search.py`` measures each against the exact
        search (docs/scale.md: at 50,000 images ``IVF1024`` with nprobe 16 took 0.28-0.35 × its
        time at recall@20 0.99; an IVF that scans an eighth of the lists is slower than it).
    space_neighbour_nprobe : int
        The IVF lists a faiss `space_neighbour_index` searches per image (32); the fit keeps the
        value it was made with (a later setting takes effect at the next fit).
    space_analogy_alpha : float
        The analogy steps' learning rate (constant over training).
    space_analogy_negatives : int
        Other images each analogy step ranks ``y`` against, drawn from the vocabulary's images
        (0, or fewer images than this: all of them).
    vectors_file : str or os.PathLike, optional
        Keep ``model.wv.vectors`` in this ``.npy`` file, memory-mapped, instead of private memory:
        for 10–100M images, whose rows (``vector_size × 4`` bytes each: 40 GB at 100M and D = 100)
        are the largest part of a model. Its pages are page cache, which the kernel writes back and
        drops under memory pressure (docs/scale.md §5.4 measures it). The file is made when the
        vocabulary is built, its disk space allocated at once (a full disk is an OSError naming the
        file, then, not a crash in training), grown in place by ``build_vocab(update=True)``, and
        flushed when :meth:`train` returns; another process can read it with
        ``np.load(path, mmap_mode="r")``. Training is the same, bit for bit (the words' random start
        is gensim's, and the images' rows, zero until then, are written from ``W``). An existing
        file is never written over: the model refuses any file but its own (naming it and the fix).
        :meth:`save` writes the vectors into the model's own files as always (streamed from the
        file), so a saved model does not need this one (``save(fname, move_vectors_file=True)``
        makes this file the saved model's own instead of copying it); a model loaded from it keeps the setting,
        and moves its vectors into a file of its own before it trains (the one it was made with,
        when no live model maps it any more, e.g. after an interrupted run; set
        ``model.vectors_file`` to another path, or None for memory, to choose). A ``copy.deepcopy``
        of the model holds its vectors in memory (``vectors_file`` None): the file stays this
        model's. None (the default): in memory, as gensim.

    Attributes
    ----------
    W : ndarray of shape (vector_size, n_features), float32
        The learned image → word-space map.
    feature_mean : ndarray of shape (n_features,) or None
        ``μ``, the mean normalised feature vector of the training images (space head): an image's
        vector is ``W · (v̂ − μ)``. Fitted as the first ``train()`` begins and kept from then on
        (W is trained against it; a vocabulary update with new features does not refit it). Zero
        (no centring) when the training images have fewer than two distinct feature vectors: one
        image's ``v̂ − μ`` would be zero. None before the first ``train()``.
    space_analogy_seconds : float
        Time the last ``train()`` spent in the analogy steps (``space_analogies``).
    space_neighbour_seconds : float
        Time the last ``train()`` spent on `space_neighbours`: the workers' time gathering the last
        epoch's images' words, and the fit after the epochs.
    readout_W, readout_offset : ndarray of shape (vector_size, n_features) and (vector_size,), or None
        ``R`` and ``c`` of `space_readout`, refitted by each ``train()`` that ran with it; None before.
    space_directions : ndarray of shape (vector_size, k + 1), float32, or None
        The orthonormal basis of the tags' common directions taken out of ``W`` by the last
        ``train()`` (`space_common_directions`); every ``W · (v̂ − μ)`` is orthogonal to it (the
        readout's part of an image vector, `space_readout`, is not: see there). None when
        the last ``train()`` that moved ``W`` took none out (None, too few tags, or interrupted).
    image_vectors : ndarray of shape (n_feature_rows, n_features)
        Raw features (float16/float32, possibly memory-mapped), rows keyed by `image_feature_keys`.
    """

    _defer_image_rows = False  # from_word2vec's update: the train() right after it writes the image rows

    def __init__(
        self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5, min_count=5,
        max_vocab_size=None, sample=1e-3, seed=1, workers=3, min_alpha=0.0001,
        sg=0, hs=0, negative=5, ns_exponent=0.75, cbow_mean=1, hashfxn=hash, epochs=5, null_word=0,
        trim_rule=None, sorted_vocab=1, batch_words=MAX_WORDS_IN_BATCH, compute_loss=False, callbacks=(),
        comment=None, max_final_vocab=None, shrink_windows=True, *,
        image_features=None, image_prefix: str = IMAGE_PREFIX, missing_images: str = "raise",
        train_words: bool | str = True, train_outputs: bool = True, train_images: bool = True,
        normalize_features: bool = True, tied_image_targets: bool = False,
        image_negatives: str = "tags", image_alpha: float = 1.0, image_context: str = "window",
        image_batch: int = 256, image_heads: str = "space",
        space_temperature: float = 0.1, space_negatives: int = 256, space_alpha: float = 0.01,
        space_word_alpha: float = 1.0, space_pull: float | None = None, space_symmetric: float = 0.0,
        space_candidates: str = "run", space_common_directions: int | None = None, space_decoder: float = 0.0,
        space_tag_prior: float = 0.0, space_analogies: Iterable[Sequence[str]] | None = None,
        space_analogy_alpha: float = 0.05, space_analogy_negatives: int = 4096, space_readout: float = 0.0,
        space_readout_directions: int = 0, space_calibrate_new_words: bool = False,
        space_neighbours: int = 0, space_neighbour_weight: float = 1.0, space_neighbour_index: str = "exact",
        space_neighbour_nprobe: int = 32, vectors_file: str | os.PathLike | None = None,
    ):
        if not is_int(vector_size) or vector_size < 1:  # (gensim: numpy's "negative dimensions", or 0-d vectors)
            raise ValueError(f"vector_size must be an int >= 1 (the dim of the space words and images share, e.g. "
                             f"100), got {vector_size!r}.")
        if corpus_file is not None:
            corpus_file = corpusfile.check_corpus_file(corpus_file, sentences)
        check_corpus(sentences, "sentences")
        self._check_batch_words(batch_words)
        self._init_image_state(
            image_prefix=image_prefix, missing_images=missing_images, train_words=train_words,
            train_outputs=train_outputs, train_images=train_images, normalize_features=normalize_features,
            tied_image_targets=tied_image_targets, image_negatives=image_negatives, image_alpha=image_alpha,
            image_context=image_context, image_batch=image_batch, image_heads=image_heads,
            space_temperature=space_temperature, space_negatives=space_negatives, space_alpha=space_alpha,
            space_word_alpha=space_word_alpha, space_pull=space_pull, space_symmetric=space_symmetric,
            space_candidates=space_candidates, space_common_directions=space_common_directions,
            space_decoder=space_decoder, space_tag_prior=space_tag_prior, space_analogies=space_analogies,
            space_analogy_alpha=space_analogy_alpha, space_analogy_negatives=space_analogy_negatives,
            space_readout=space_readout, space_readout_directions=space_readout_directions,
            space_calibrate_new_words=space_calibrate_new_words, space_neighbours=space_neighbours,
            space_neighbour_weight=space_neighbour_weight, space_neighbour_index=space_neighbour_index,
            space_neighbour_nprobe=space_neighbour_nprobe, vectors_file=vectors_file,
        )
        if image_features is not None:
            self._set_features(_image_features(image_features))
            if hs:
                raise ValueError(_HS_WITH_IMAGES)
        super().__init__(
            sentences=sentences, corpus_file=corpus_file, vector_size=vector_size, alpha=alpha, window=window,
            min_count=min_count, max_vocab_size=max_vocab_size, sample=sample, seed=seed, workers=workers,
            min_alpha=min_alpha, sg=sg, hs=hs, negative=negative, ns_exponent=ns_exponent,
            cbow_mean=cbow_mean, hashfxn=hashfxn, epochs=epochs, null_word=null_word, trim_rule=trim_rule,
            sorted_vocab=sorted_vocab, batch_words=batch_words, compute_loss=compute_loss,
            callbacks=callbacks, comment=comment, max_final_vocab=max_final_vocab,
            shrink_windows=shrink_windows,
        )

    def _init_image_state(self, *, image_prefix, missing_images, train_words, train_outputs, train_images,
                          normalize_features, tied_image_targets, image_negatives, image_alpha, image_context,
                          image_batch, image_heads, space_temperature, space_negatives, space_alpha,
                          space_word_alpha, space_pull, space_symmetric, space_candidates,
                          space_common_directions, space_decoder, space_tag_prior, space_analogies=None,
                          space_analogy_alpha=0.05, space_analogy_negatives=4096, space_readout=0.0,
                          space_readout_directions=0, space_calibrate_new_words=False,
                          space_neighbours=0, space_neighbour_weight=1.0, space_neighbour_index="exact",
                          space_neighbour_nprobe=32, vectors_file=None) -> None:
        """Check and set Im2Vec's own options (:meth:`__init__`'s keyword-only arguments, whose
        signature holds their defaults) and its empty image state: no features, no W, no images."""
        if missing_images not in ("raise", "skip"):
            raise ValueError(f"missing_images must be 'raise' or 'skip', got {missing_images!r}.")
        if image_negatives not in ("tags", "vocab"):
            raise ValueError(f"image_negatives must be 'tags' or 'vocab', got {image_negatives!r}.")
        if image_context not in ("document", "window"):
            raise ValueError(f"image_context must be 'document' or 'window', got {image_context!r}.")
        if train_words not in (True, False, "new"):
            raise ValueError(f"train_words must be True, False or 'new', got {train_words!r}.")
        _check_positive("image_alpha", image_alpha)
        if not isinstance(image_prefix, str):
            raise TypeError(f"image_prefix must be a str, got {type(image_prefix).__name__}.")
        self.image_prefix = image_prefix
        self.missing_images = missing_images
        self.train_words = train_words
        self.train_outputs = bool(train_outputs)
        self.train_images = bool(train_images)
        self.normalize_features = bool(normalize_features)
        self.tied_image_targets = bool(tied_image_targets)
        self.image_negatives = image_negatives
        self.image_alpha = float(image_alpha)
        self.image_context = image_context
        if not is_int(image_batch) or image_batch < 0:
            raise ValueError(f"image_batch must be an int >= 0 (0: one W update per job), got {image_batch!r}.")
        self.image_batch = int(image_batch)
        if image_heads not in ("space", "output", "input", "both"):
            raise ValueError(f"image_heads must be 'space', 'output', 'input' or 'both', got {image_heads!r}.")
        self.image_heads = image_heads
        _check_positive("space_temperature", space_temperature)
        _check_positive("space_alpha", space_alpha)
        _check_non_negative("space_word_alpha", space_word_alpha)
        _check_non_negative("space_pull", space_pull, allow_none=True)
        _check_non_negative("space_symmetric", space_symmetric)
        _check_non_negative("space_decoder", space_decoder)
        _check_non_negative("space_tag_prior", space_tag_prior)
        if space_candidates not in ("run", "own"):
            raise ValueError(f"space_candidates must be 'run' or 'own', got {space_candidates!r}.")
        if space_candidates == "own" and space_symmetric:
            raise ValueError("space_symmetric needs space_candidates='run' (the word → images term "
                             "runs over the run's images); set one of them back.")
        if not is_int(space_negatives) or space_negatives < 0:
            raise ValueError(f"space_negatives must be an int >= 0, got {space_negatives!r}.")
        self.space_temperature = float(space_temperature)
        self.space_negatives = int(space_negatives)
        self.space_alpha = float(space_alpha)
        self.space_word_alpha = float(space_word_alpha)
        self.space_pull = None if space_pull is None else float(space_pull)
        self.space_symmetric = float(space_symmetric)
        self.space_candidates = space_candidates
        if space_common_directions is not None and (not is_int(space_common_directions) or space_common_directions < 0):
            raise ValueError("space_common_directions must be None or an int >= 0 (how many of the tags' top "
                             f"principal directions leave the image vectors), got {space_common_directions!r}.")
        self.space_common_directions = None if space_common_directions is None else int(space_common_directions)
        self.space_decoder = float(space_decoder)
        self.space_tag_prior = float(space_tag_prior)
        self.space_analogies = _check_analogies(space_analogies)
        _check_positive("space_analogy_alpha", space_analogy_alpha)
        if not is_int(space_analogy_negatives) or space_analogy_negatives < 0:
            raise ValueError("space_analogy_negatives must be an int >= 0 (images drawn per analogy step; 0: all "
                             f"of them), got {space_analogy_negatives!r}.")
        if self.space_analogies and image_heads != "space":
            raise ValueError(f"space_analogies trains the space head; image_heads={image_heads!r} has none. Use "
                             f"image_heads='space' or leave space_analogies out.")
        self.space_analogy_alpha = float(space_analogy_alpha)
        self.space_analogy_negatives = int(space_analogy_negatives)
        self.space_readout_directions = _check_readout_directions(space_readout_directions)
        if not isinstance(space_calibrate_new_words, (bool, np.bool_)):
            raise ValueError(f"space_calibrate_new_words must be True or False, got {space_calibrate_new_words!r}.")
        if space_calibrate_new_words and self.train_words is not False:
            raise ValueError(
                f"space_calibrate_new_words=True calibrates the words that only the space step moved, which "
                f"happens with train_words=False alone; with train_words={self.train_words!r} the new words "
                f"learn from the words beside them too and are left as trained. Pass train_words=False with "
                f"it (from_word2vec's default is 'new'; `im2vec train --pretrained ... --freeze-words "
                f"--space-calibrate-new-words`), or leave it out.")
        self.space_calibrate_new_words = bool(space_calibrate_new_words)
        self.readout_W = None
        self.space_readout = space_readout  # (checked by the property's setter)
        self.readout_offset = None
        _check_neighbours(space_neighbours, image_heads)
        self.space_neighbours = int(space_neighbours)
        self.space_neighbour_index = _check_neighbour_index(space_neighbour_index, faiss_needed=bool(space_neighbours))
        if not is_int(space_neighbour_nprobe) or space_neighbour_nprobe < 1:
            raise ValueError(f"space_neighbour_nprobe must be an int >= 1 (the IVF lists a faiss "
                             f"space_neighbour_index searches), got {space_neighbour_nprobe!r}.")
        self.space_neighbour_nprobe = int(space_neighbour_nprobe)
        self.space_neighbour_weight = space_neighbour_weight  # (checked by the property's setter)
        self._drop_neighbours("Im2Vec()")  # (nothing fitted yet: the neighbours' state, empty)
        self._gathered_words = self._previous_pool = None
        self.space_neighbour_seconds = 0.0
        self._readout_sums = None
        self.space_analogy_seconds = 0.0
        self.space_analogy_loss = float("nan")
        self._analogy_plan = None
        self.space_anchor = None
        self.space_directions = None
        self.W = None
        self._image_rows_from_W = False  # every image row of wv is project() of W (see update_weights)
        self.feature_mean = None
        self.image_vectors = None
        self.image_feature_keys = []
        self.image_features_metadata = {}
        self.image_tag_counts = {}
        self.n_pretrained_words = 0
        self.n_trained_words = 0  # vocabulary indices below it have trained input vectors
        self._features_cache = None
        self._scan_tag_counts = None
        self._vocab_image_rows = np.zeros(0, dtype=np.int64)
        self._image_occurrences = 0
        self._vectors_file_state = None  # the file wv.vectors is mapped from (vectors_file), while it is
        self._vectors_file_id = None  # (path, device, inode) of the last vectors file this model made (saved)
        self._vectors_file_token = None  # the random token in that file's .npy header (saved; None: none)
        self.vectors_file = _check_vectors_file(vectors_file)
        if self.vectors_file is not None:
            self._claim_vectors_path(self.vectors_file)  # a new model owns no file: refused before any work

    # ------------------------------------------------------------------ features and vocabulary
    @staticmethod
    def _check_batch_words(batch_words):
        if not is_int(batch_words) or batch_words <= 0:
            raise ValueError(f"batch_words must be a positive int, got {batch_words!r}.")
        if batch_words > MAX_WORDS_IN_BATCH:
            raise ValueError(
                f"batch_words={batch_words} is larger than {MAX_WORDS_IN_BATCH}, gensim's job size. "
                f"Use batch_words <= {MAX_WORDS_IN_BATCH}; longer documents are split automatically."
            )

    @property
    def features(self) -> ImageFeatures | None:
        """The image features as an :class:`~gensim_im2vec.image_features.ImageFeatures` (None without images)."""
        if self.image_vectors is None:
            return None
        if self._features_cache is None or self._features_cache.vectors is not self.image_vectors:
            feats = ImageFeatures.__new__(ImageFeatures)
            feats.keys = self.image_feature_keys
            feats.vectors = self.image_vectors
            feats.key_to_index = None  # built from the keys when first asked for (the vocabulary has the rows)
            feats.source = None
            feats.name = "image_features"
            feats.metadata = self.image_features_metadata
            feats.checked = True  # a model's own features were checked when it was built
            self._features_cache = feats
        return self._features_cache

    def _set_features(self, feats: ImageFeatures) -> None:
        """Take `feats` as the model's features (build_vocab checks them against W first)."""
        self._attach_features(feats)
        self.add_lifecycle_event(  # provenance: which store, model and layer made the features
            "image_features", msg=f"{len(feats)} images x {feats.dim} features from {feats.name}",
            metadata={k: v for k, v in feats.metadata.items() if isinstance(v, (str, int, float))},
        )

    def _attach_features(self, feats: ImageFeatures) -> None:
        """Hold `feats`; a :class:`~gensim_im2vec.store.FeatureStore` behind them is kept as the
        store the model refers to when saved (:meth:`save` writes no feature row of it)."""
        self.image_vectors = feats.vectors
        self.image_feature_keys = feats.keys
        self.image_features_metadata = feats.metadata
        self._features_cache = feats
        self._neighbour_search = None  # (fit_neighbours' images' features: read from these by key)
        source = getattr(feats, "source", None)
        self._feature_store = source if isinstance(source, FeatureStore) else None

    @property
    def feature_store(self) -> FeatureStore | None:
        """The feature store the image features come from (None for a mapping or an array)."""
        return getattr(self, "_feature_store", None)

    @property
    def _vocab_image_rows(self) -> np.ndarray:
        """Per vocabulary row: the image's row in the features, or -1 for a word."""
        try:
            return self.__dict__["_vocab_image_rows"]
        except KeyError:
            raise AttributeError("_vocab_image_rows") from None

    @_vocab_image_rows.setter
    def _vocab_image_rows(self, rows: np.ndarray) -> None:
        self.__dict__["_vocab_image_rows"] = rows
        wv = self.__dict__.get("wv")  # the key list these rows index (_follow_vocab)
        self.__dict__["_indexed_keys"] = None if wv is None else wv.index_to_key

    @_vocab_image_rows.deleter
    def _vocab_image_rows(self) -> None:  # (gensim's save sets large arrays aside while it pickles the rest)
        self.__dict__.pop("_vocab_image_rows", None)

    def _follow_vocab(self) -> None:
        """Follow what gensim's own KeyedVectors methods did to ``model.wv``'s keys since the model
        indexed its images (nothing to do, the common case, costs a comparison):

        - ``wv.add_vector(s)`` of new keys appends them: a new word is a word with a count of 0
          (zero output weights, never a negative, never downsampled, a lock factor of 1); a key
          the features hold is an image, its row ``W``'s (written now);
        - ``wv.sort_by_descending_frequency()`` (or another ``wv``) reorders them: the images are
          found again by their keys, so queries answer right, but the model's other per-row state
          (output weights, the frozen pretrained words) is in the old order, so :meth:`train` and
          :meth:`build_vocab` refuse it (:meth:`_refuse_reordered`); a new order equal to the old
          one is no change."""
        d = self.__dict__
        wv, rows = d.get("wv"), d.get("_vocab_image_rows")
        if wv is None or rows is None or d.get("_building_vocab"):
            return
        keys, indexed = wv.index_to_key, d.get("_indexed_keys")
        if indexed is None and len(rows) == len(keys):  # (loaded or copied: the saved state is consistent)
            d["_indexed_keys"] = indexed = keys
        if keys is indexed and len(keys) == len(rows):
            return
        wv.norms = None  # (gensim's add_vectors and sort leave them as they were)
        n_old = len(rows)
        if keys is indexed and len(keys) > n_old:
            self._follow_added_keys(n_old)
        elif indexed is not None and len(keys) == len(indexed) and keys == indexed:
            d["_indexed_keys"] = keys  # the same keys in the same order (e.g. sorted when already sorted)
        elif not n_old:  # a wv given to a model without a vocabulary: nothing in an old order
            self._refresh_image_index()
        else:
            logger.warning("model.wv's keys were reordered or replaced (e.g. by wv.sort_by_descending_frequency()) "
                           "after the vocabulary was built: queries find the images by their keys again; "
                           "training this model is refused (its output weights follow the old order)")
            self._refresh_image_index()
            self._vocab_reordered = True

    def _follow_added_keys(self, n_old: int) -> None:
        """:meth:`_follow_vocab` for keys ``wv.add_vector(s)`` appended after row `n_old`."""
        keys = self.wv.index_to_key
        if len(self.wv.vectors) < len(keys):  # keys without vectors: not add_vectors, which adds both
            raise RuntimeError(
                f"model.wv has {len(keys)} keys but {len(self.wv.vectors)} vectors: its key list was extended "
                f"elsewhere, e.g. by a model sharing it since reset_from() (gensim's reset_from shares the "
                f"vocabulary; neither model may extend it afterwards). Build this model's own vocabulary "
                f"(model.build_vocab(documents)).")
        self.wv.allocate_vecattrs()  # (gensim's add_vectors sizes them before it appends the keys: a count of 0)
        feats = self.features
        k2i = feats.key_to_index if feats is not None else {}
        added = np.array([k2i.get(k, -1) if isinstance(k, str) else -1 for k in keys[n_old:]], dtype=np.int64)
        if feats is not None and hasattr(feats, "check_rows") and (added >= 0).any():
            feats.check_rows(added[added >= 0])
        self.__dict__["_vocab_image_rows"] = np.concatenate([self.__dict__["_vocab_image_rows"], added])
        sample_ints = self.wv.expandos.get("sample_int")
        if sample_ints is not None:  # never downsampled: an image never is, and a count of 0 gives no rate
            sample_ints[n_old:] = np.iinfo(np.uint32).max
        self._grow_row_state(n_old)
        if self.negative and "count" in self.wv.expandos:
            self.make_cum_table()
        images = n_old + np.flatnonzero(added >= 0)
        if len(images) and self.W is not None:
            logger.warning("wv.add_vector(s) gave %i image key(s) (e.g. %r): an image's vector is W's "
                           "projection of its features, written now", len(images), keys[int(images[0])])
            self._write_image_vectors(images)
        self.__dict__["_indexed_keys"] = keys
        logger.info("followed wv.add_vector(s): %i key(s) added (%i image(s))", len(added), len(images))

    def _grow_row_state(self, n_old: int) -> None:
        """The per-row state of the vocabulary rows after `n_old` (new words or images): a
        ``wv.vectors_lockf`` given per row (the user's, e.g. ``intersect_word2vec_format``'s) kept
        and extended with ones (the new rows learn, as gensim's default; gensim leaves it a row short
        of every new word), and ``syn1neg`` grown to :meth:`_output_rows` with zero rows, their
        memory untouched until training writes them (vstack would write 3.6 GB of zeros at
        GoogleNews's size)."""
        n = len(self.wv.index_to_key)
        lockf = getattr(self.wv, "vectors_lockf", None)
        if isinstance(lockf, np.ndarray) and lockf.ndim == 1 and len(lockf) == n_old > 1:
            self.wv.vectors_lockf = np.concatenate([lockf, np.ones(n - n_old, dtype=lockf.dtype)])
        if self.negative and getattr(self, "syn1neg", None) is not None:
            need, have = self._output_rows(), len(self.syn1neg)
            if need > have:
                grown = np.zeros((need, self.layer1_size), dtype=REAL)
                grown[:have] = self.syn1neg
                self.syn1neg = grown

    def _refuse_reordered(self, call: str) -> None:
        if getattr(self, "_vocab_reordered", False):
            raise RuntimeError(
                f"{call}(): model.wv's keys were reordered after the vocabulary was built (e.g. by "
                "wv.sort_by_descending_frequency()), and the model's output weights and frozen pretrained "
                "words follow the old order. Query and save it as it is; to train, load the model saved "
                "before the reorder, or sort a copy for export (kv = copy.deepcopy(model.wv); "
                "kv.sort_by_descending_frequency(); kv.fill_norms(force=True)). (gensim's sort keeps "
                "wv.norms in the old order: a copy of a model searched before answers from other rows' "
                "norms, and its kv.save writes them, without fill_norms.)"
            )

    def is_image(self, key) -> bool:
        """True when `key` is an image token: an image of the vocabulary (:attr:`image_keys`), or a
        key outside it that has features. A word of the vocabulary is never an image, also when
        features given later (``Im2Vec.load(..., image_features=)``) have a key like it."""
        feats = self.features
        if feats is None or not isinstance(key, str):
            return False
        self._follow_vocab()
        i = self.wv.key_to_index.get(key)
        rows = self._vocab_image_rows
        if i is not None and i < len(rows):
            return bool(rows[i] >= 0)
        return key in feats.key_to_index

    @property
    def image_mask(self) -> np.ndarray:
        """Boolean mask over the vocabulary (``wv.index_to_key``): True for the images."""
        self._follow_vocab()
        return self._vocab_image_rows >= 0

    @property
    def image_keys(self) -> list[str]:
        """Image tokens in the vocabulary, in vocabulary order."""
        self._follow_vocab()
        rows = self._vocab_image_rows
        return [self.wv.index_to_key[i] for i in np.flatnonzero(rows >= 0)]

    @property
    def word_keys(self) -> list[str]:
        """Word (non-image) tokens in the vocabulary, in vocabulary order."""
        self._follow_vocab()
        rows = self._vocab_image_rows
        return [self.wv.index_to_key[i] for i in np.flatnonzero(rows < 0)]

    def _refresh_image_index(self) -> None:
        n = len(self.wv.index_to_key)
        rows = np.full(n, -1, dtype=np.int64)
        feats = self.features
        if feats is not None:
            a = 0
            for _, block in _key_row_blocks(feats.key_to_index, self.wv.index_to_key, _LOOKUP_BLOCK):
                rows[a:a + len(block)] = block
                a += len(block)
            if hasattr(feats, "check_rows"):
                feats.check_rows(rows[rows >= 0])
        self._vocab_image_rows = rows

    def _keep_images_rule(self, trim_rule):
        feats = self.features
        if feats is None:
            return trim_rule
        k2i = feats.key_to_index

        def rule(word, count, min_count):
            if word in k2i:
                return utils.RULE_KEEP
            if trim_rule is not None:
                return trim_rule(word, count, min_count)
            return utils.RULE_DEFAULT

        return rule

    def _tap_tag_counts(self, sentences, images: Counter | None):
        """Yield `sentences`, counting the words of image documents into ``_scan_tag_counts``; with
        `images`, each document without its image tokens, which are counted into `images`."""
        counts = Counter()
        self._scan_tag_counts = counts
        feats = self.features
        k2i = feats.key_to_index if feats is not None else {}
        if not k2i:  # text only: a document given as one str gets gensim's warning, as in gensim
            yield from sentences
            return
        # with images, a document given as one str (read as its characters: no image token could match)
        # is refused, naming it (check_document); gensim only warns about the first document.
        # The tokens of a block of documents (_TAP_DOCUMENTS, _TAP_TOKENS) are looked up at once (key_rows: a
        # store's KeyIndex searches them together, one token at a time it is ≈ 1.7x a dict's lookup)
        first = 0
        for chunk in _document_blocks(sentences):
            for i, doc in enumerate(chunk, first):
                if isinstance(doc, (str, bytes)):
                    check_document(doc, i)
            first += len(chunk)
            held = key_rows(k2i, list(itertools.chain.from_iterable(chunk))) >= 0
            if not held.any():
                yield from chunk
                continue
            word = (~held).tolist()
            held = held.tolist()
            end = 0
            for doc in chunk:
                start, end = end, end + len(doc)
                if all(word[start:end]):
                    yield doc
                    continue
                words = list(itertools.compress(doc, word[start:end]))  # an image document
                counts.update(words)  # counted in C
                if images is not None:
                    images.update(itertools.compress(doc, held[start:end]))
                    yield words
                    continue
                yield doc

    def build_vocab(self, corpus_iterable=None, corpus_file=None, update=False, progress_per=10000,
                    keep_raw_vocab=False, trim_rule=None, image_features=None, **kwargs):
        """Build (or with ``update=True`` extend) the vocabulary of words and images.

        Same as :meth:`gensim.models.word2vec.Word2Vec.build_vocab`, plus `image_features` (any
        form :class:`Im2Vec` takes), which sets or replaces the features (with ``update=True`` the
        new features must cover every image already in the vocabulary, have the same dimension,
        and hold no key that is a word of the vocabulary). Image tokens are kept whatever
        `min_count`, `max_final_vocab` and `trim_rule` say.

        After an update every image's row of ``model.wv`` is :meth:`project` of its current
        features. New features that may give other vectors for images already in the model
        (a mapping, an array, another store, the same store re-extracted) rewrite every image's
        row; the model's own :class:`~gensim_im2vec.store.FeatureStore` opened again after rows
        were appended to it (the same store: :meth:`FeatureStore.reference_problems
        <gensim_im2vec.store.FeatureStore.reference_problems>` finds nothing; a store only ever
        appends) holds the old images'
        rows unchanged, so only the new images' rows are written. ``feature_mean`` stays as the
        first training fitted it, whatever the new features: ``W`` was trained against it.
        """
        self._refuse_during_training("build_vocab")
        check_corpus(corpus_iterable)
        if update:
            self._follow_vocab()
            self._refuse_reordered("build_vocab")  # (a new vocabulary clears it: init_weights)
        if corpus_file is not None:  # gensim, too, scans a corpus_file as LineSentence(path)
            corpus_iterable, corpus_file = corpusfile.corpus_file_sentences(corpus_file, corpus_iterable), None
        previous = self.features
        held = getattr(self, "_image_rows_from_W", False)
        if image_features is not None:
            feats = _image_features(image_features)
            if self.W is not None and feats.dim != self.W.shape[1]:
                raise ValueError(
                    f"{feats.name}: expected features of dim {self.W.shape[1]} (the model's W), got "
                    f"{feats.dim}; re-extract them with the same model and layer, or open the matching store."
                )
            if update:
                self._check_update_features(feats, previous)
            grown = update and previous is not None and self._same_rows_appended(feats)
            self._set_features(feats)
            if update and not grown:
                # the images already in the model may have other features now: update_weights writes
                # every image's row, not only the new ones
                self._image_rows_from_W = False
        self._building_vocab = True  # (_follow_vocab waits: gensim appends the new words before we index them)
        try:
            return super().build_vocab(
                corpus_iterable=corpus_iterable, corpus_file=None, update=update, progress_per=progress_per,
                keep_raw_vocab=keep_raw_vocab, trim_rule=trim_rule, **kwargs)
        except Exception:
            if image_features is not None and previous is not None:
                self._set_features(previous)
                self._image_rows_from_W = held
            raise
        finally:
            del self._building_vocab

    def reset_from(self, other_model):
        """gensim's: take `other_model`'s vocabulary (keys, counts, corpus size; shared, not
        copied, so neither model should extend it afterwards) and start this model's weights
        afresh, e.g. to train several models on one corpus. The vocabulary's images are found in
        this model's features, or in `other_model`'s when this model has none; an Im2Vec's tag
        counts come along."""
        self._refuse_during_training("reset_from")
        if self.features is None and getattr(other_model, "features", None) is not None:
            self._set_features(other_model.features)
        super().reset_from(other_model)  # (its init_weights() indexes the images)
        if isinstance(other_model, Im2Vec):
            self.image_tag_counts = dict(other_model.image_tag_counts)
        if self.negative:
            self.make_cum_table()  # gensim shares the other's table; Im2Vec's negatives' tables are built here

    def predict_output_word(self, context_words_list, topn=10):
        """gensim's, over the words only: the probability distribution of the center word given
        `context_words_list` (words or image keys; their input vectors summed, or averaged with
        `cbow_mean`), by the output weights. Images have none, so none is ever an answer."""
        if not self.negative or getattr(self, "syn1neg", None) is None:
            return super().predict_output_word(context_words_list, topn=topn)  # (gensim's RuntimeError)
        self._follow_vocab()
        indices = [self.wv.get_index(w) for w in context_words_list if w in self.wv]
        if not indices:
            logger.warning("All the input context words are out-of-vocabulary for the current model.")
            return None
        l1 = np.sum(self.wv.vectors[indices], axis=0)
        if self.cbow_mean:
            l1 /= len(indices)
        out = self._output_rows()
        images = self._vocab_image_rows[:out] >= 0
        logits = (self.syn1neg[:out] @ np.asarray(l1, dtype=self.syn1neg.dtype)).astype(np.float64)
        logits[images] = -np.inf  # (an image's output row: zeros, never an answer)
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        top = matutils.argsort(prob, topn=topn, reverse=True)
        return [(self.wv.index_to_key[i], float(prob[i])) for i in top[: out - int(images.sum())]]

    def _refuse_during_training(self, call: str) -> None:
        """A vocabulary change from a callback during :meth:`train` is refused before anything changes."""
        if getattr(self, "_training", False):
            raise RuntimeError(
                f"{call}() was called during train() (from a callback?): the workers train on the "
                "vocabulary, the negatives' tables and the images' plan as they were when the epoch began. "
                "Extend the vocabulary between train() calls: let train() return (or stop it), then call "
                "build_vocab(..., update=True) and train() again."
            )

    def build_vocab_from_freq(self, word_freq, keep_raw_vocab=False, corpus_count=None, trim_rule=None,
                              update=False):
        """gensim's :meth:`~gensim.models.word2vec.Word2Vec.build_vocab_from_freq`, refused during
        :meth:`train` as :meth:`build_vocab` is."""
        self._refuse_during_training("build_vocab_from_freq")
        return super().build_vocab_from_freq(word_freq, keep_raw_vocab=keep_raw_vocab, corpus_count=corpus_count,
                                             trim_rule=trim_rule, update=update)

    def _same_rows_appended(self, feats: ImageFeatures) -> bool:
        """Whether `feats` are provably the model's features with rows appended (an update then
        writes only the new images' rows): the model's own feature store, or that store opened
        again after it grew. A store only appends, and the same store is one that
        :meth:`~gensim_im2vec.store.FeatureStore.reference_problems` finds nothing against (its
        ``store_id`` tells a store replaced with ``mode="overwrite"``, even in the second it was
        created). Features given as a mapping or an array are never provably the same."""
        old, new = self.feature_store, getattr(feats, "source", None)
        if old is None or not isinstance(new, FeatureStore):
            return False
        return new is old or not new.reference_problems(old.reference())

    def _check_update_features(self, feats: ImageFeatures, previous: ImageFeatures | None) -> None:
        """Refuse new features (``build_vocab(update=True, image_features=...)``) that lack an image of
        the vocabulary, or that would turn a word of the vocabulary into an image (its trained
        vector would be overwritten by ``W``'s, and it would leave the words)."""
        if previous is not None:
            missing = _keys_in(feats.key_to_index, self.image_keys, held=False)
            if missing:
                raise ValueError(
                    f"image_features: the new features lack {len(missing)} image(s) already in the "
                    f"vocabulary, e.g. {missing[:5]}; pass features that cover old and new images "
                    f"(e.g. a FeatureStore opened in append mode)."
                )
        words = _keys_in(feats.key_to_index, self.word_keys)
        if words:
            raise ValueError(
                f"image_features: {len(words)} key(s) of the new features are words of the vocabulary, e.g. "
                f"{words[:5]}; an update cannot turn a word into an image. Give those images keys no word has "
                f"(e.g. with the prefix {self.image_prefix!r}), or drop them from the features."
            )

    def _scan_vocab(self, sentences, progress_per, trim_rule):
        """gensim's scan of the words; the images are counted beside it (:meth:`_tap_tag_counts`), so
        `max_vocab_size` caps the words, as it caps gensim's, and never prunes on the images'
        account (at 100M images every document past the cap would prune the whole dictionary)."""
        if not self.max_vocab_size:  # (no cap: gensim counts the images too, in its one dictionary)
            return super()._scan_vocab(self._tap_tag_counts(sentences, None), progress_per,
                                       self._keep_images_rule(trim_rule))
        images = Counter()
        total_words, corpus_count = super()._scan_vocab(self._tap_tag_counts(sentences, images), progress_per,
                                                        trim_rule)
        self.raw_vocab.update(images)  # (no image is a word: the tap took out the features' keys)
        return total_words + sum(images.values()), corpus_count

    def _resolve_missing_images(self) -> None:
        feats = self.features
        k2i = feats.key_to_index if feats is not None else {}
        prefix = self.image_prefix
        # (the image tokens a block at a time: at 100M images a list of them all is 0.8 GB)
        missing = _keys_in(k2i, (w for w in self.raw_vocab if w.startswith(prefix)) if prefix else (), held=False)
        if not missing:
            return
        if self.missing_images == "raise":
            found = any(w in k2i for w in self.raw_vocab if w.startswith(prefix)) if k2i else False
            where = ""
            if feats is None:
                where = " No image_features were given."
            elif not found:  # not one image of the documents: most likely the wrong features
                where = (f" {feats.name} holds none of the documents' images: its {len(feats)} keys look like "
                         f"{list(feats.keys[:3])}.")
            how = ("model.build_vocab(..., update=True, image_features=...) with features" if len(self.wv)
                   else "image_features")
            from gensim_im2vec.split import _examples

            # those the extraction could not use (its skipped.json), with a reason: as `im2vec split -f` says it
            skipped = getattr(feats.source, "skipped", None) if feats is not None else None
            n_skipped = sum(1 for w in missing if w in skipped) if skipped else 0
            raise ValueError(
                f"{len(missing)} image token(s) have no features, {_examples(missing, skipped or {}, n_skipped, 5)}."
                f"{where} Pass {how} "
                f"that contain them, or set missing_images='skip' (Im2Vec(..., missing_images='skip'), or "
                f"model.missing_images = 'skip') to drop them with a warning."
            )
        n_occ = sum(self.raw_vocab[w] for w in missing)
        for w in missing:
            del self.raw_vocab[w]
        logger.warning(
            "missing_images='skip': dropped %i image token(s) without features (%i occurrences), e.g. %s; "
            "extract their features to use them.", len(missing), n_occ, missing[:3],
        )

    def prepare_vocab(self, update=False, keep_raw_vocab=False, trim_rule=None, min_count=None,
                      sample=None, dry_run=False):
        """As Word2Vec's, but image tokens are always kept and never downsampled.

        Images bypass gensim's per-token loops (at 10M images those take minutes): gensim prepares
        the words, then the images are added after them in one step, by count (most frequent
        first) when ``sorted_vocab``. The words' downsampling thresholds count the images'
        occurrences in the corpus total, as gensim does for every kept token.
        """
        if not dry_run:
            self._refuse_during_training("prepare_vocab")
        if update and not dry_run:  # (build_vocab_from_freq and gensim's split calls come here, not by build_vocab)
            self._follow_vocab()
            self._refuse_reordered("build_vocab")
        self._check_rates()
        self._check_tokens()
        self._resolve_missing_images()
        old_rows = self._vocab_image_rows.copy()  # (gensim's part below may look the rows up again)
        feats = self.features
        k2i = feats.key_to_index if feats is not None else {}
        raw = self.raw_vocab
        words_raw, img_keys, img_counts, img_rows = defaultdict(int), [], [], []
        feature_keys = feats.keys if feats is not None else ()
        for block, rows in _key_row_blocks(k2i, raw.items(), _LOOKUP_BLOCK, key=operator.itemgetter(0)):
            for (w, c), r in zip(block, rows.tolist()):
                if r < 0:
                    words_raw[w] = c
                else:
                    # the features' own key string: the vocabulary shares it, the corpus's copy goes
                    # with raw_vocab (~60 bytes per image)
                    key = feature_keys[r]
                    img_keys.append(key if key == w else w)
                    img_counts.append(c)
                    img_rows.append(r)
        if not update and not dry_run and not img_keys and feats is not None and len(feature_keys):
            raise ValueError(_no_image_tokens_message(feats, raw, self.image_prefix, self.corpus_count))
        if self.hs and img_keys:
            raise ValueError(_HS_WITH_IMAGES)
        if img_keys:  # what enters model.wv: e.g. a store written before stores refused such keys
            check_image_keys(img_keys, name=feats.name)
        max_final_vocab = self.max_final_vocab
        if max_final_vocab is not None and k2i:
            # max_final_vocab counts words; images are kept on top of it
            counts = sorted(words_raw.values(), reverse=True)
            calc = counts[max_final_vocab] + 1 if max_final_vocab < len(counts) else 1
            min_count = max(calc, min_count or self.min_count)
            self.max_final_vocab = None
        self.raw_vocab = words_raw  # (no feature key: the images' rule would look every word up for nothing)
        # gensim's estimate of the words that downsampling leaves is of a threshold without the images'
        # occurrences, which _downsample_words then counts in: its lifecycle event gives way to ours
        self._downsampled_with_images = bool(img_keys)
        try:
            report = super().prepare_vocab(
                update=update, keep_raw_vocab=True, trim_rule=trim_rule,
                min_count=min_count, sample=sample, dry_run=dry_run)
        finally:
            self.max_final_vocab = max_final_vocab
            self.raw_vocab = raw
            del self._downsampled_with_images
        img_counts = np.asarray(img_counts, dtype=np.int64)
        if len(img_keys):
            words_total = report["retain_total"]
            self._downsample_words(report, words_raw, int(img_counts.sum()), trim_rule, sample, dry_run)
            left = report["downsample_total"] - int(img_counts.sum())
            self.add_lifecycle_event("prepare_vocab", msg=(
                f"downsampling (sample={sample or self.sample:g}, the images' {int(img_counts.sum())} occurrences "
                f"counted in the total) leaves an estimated {left} of the {words_total} word occurrences "
                f"({100.0 * left / max(words_total, 1):.1f}%; {report['downsample_unique']} words downsampled), "
                f"and every image occurrence"))
            report["retain_total"] += int(img_counts.sum())
            report["num_retained_words"] += len(img_keys)
            logger.info("%i images (%i occurrences) kept beside the words, never downsampled", len(img_keys),
                        int(img_counts.sum()))
        if not keep_raw_vocab and not dry_run:
            self.raw_vocab = defaultdict(int)
        del raw, words_raw
        if not dry_run:
            scanned = self._scan_tag_counts or {}
            if not update:
                self.image_tag_counts = dict(scanned)
            else:
                for w, c in scanned.items():
                    self.image_tag_counts[w] = self.image_tag_counts.get(w, 0) + c
            self._scan_tag_counts = None
            fresh = self._add_images(img_keys, img_counts, np.asarray(img_rows, dtype=np.int64), update)
            if fresh is None:
                self._refresh_image_index()
                # a word stays a word, also one the features have a key for (features given to load())
                n_old = min(len(old_rows), len(self._vocab_image_rows))
                self._vocab_image_rows[:n_old][old_rows[:n_old] < 0] = -1
            else:
                self._vocab_image_rows = fresh
                if feats is not None and hasattr(feats, "check_rows"):
                    feats.check_rows(fresh[fresh >= 0])
            sample_ints = self.wv.expandos.get("sample_int")
            if sample_ints is not None:
                sample_ints[self._vocab_image_rows >= 0] = np.iinfo(np.uint32).max
            self.make_cum_table()
        return report

    def add_lifecycle_event(self, event_name, log_level=logging.INFO, **event) -> None:
        """gensim's, less its estimate of what downsampling leaves when the words are downsampled with
        the images' occurrences in the total (:meth:`prepare_vocab` records the right one); its
        "training model with ... and 32 features" says ``vector_size=32`` (an Im2Vec's features are
        the images')."""
        msg = event.get("msg")
        if (event_name == "prepare_vocab" and isinstance(msg, str) and msg.startswith("downsampling leaves estimated")
                and getattr(self, "_downsampled_with_images", False)):
            return
        if event_name == "train" and isinstance(msg, str) and msg.startswith("training model with "):
            event["msg"] = msg.replace(f" vocabulary and {self.layer1_size} features, ",
                                       f" vocabulary and vector_size={self.layer1_size}, ", 1)
        super().add_lifecycle_event(event_name, log_level=log_level, **event)

    def _downsample_words(self, report, words_raw, image_total, trim_rule, sample, dry_run) -> None:
        """The words' ``sample_int`` with the images' occurrences in the corpus total (gensim's
        formula, vectorised), and the report's downsampling figures."""
        sample = sample or self.sample
        kept = [(w, v) for w, v in words_raw.items()  # (words only: trim_rule as given, not the images' rule)
                if utils.keep_vocab_item(w, v, self.effective_min_count, trim_rule=trim_rule)]
        v = np.asarray([c for _, c in kept], dtype=np.float64)
        retain_total = float(v.sum()) + image_total
        if not sample:
            threshold = retain_total
        elif sample < 1.0:
            threshold = sample * retain_total
        else:
            threshold = int(sample * (3 + np.sqrt(5)) / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            prob = (np.sqrt(v / threshold) + 1) * (threshold / v)
        down = prob < 1.0
        prob[~down] = 1.0
        report["downsample_unique"] = int(down.sum())
        report["downsample_total"] = int(float((prob * v).sum()) + image_total)
        if dry_run or not len(kept):
            return
        k2i = self.wv.key_to_index
        idx = key_rows(k2i, [w for w, _ in kept], strict=True)  # (the words: each in the vocabulary)
        self.wv.expandos["sample_int"][idx] = (prob * (2**32 - 1)).astype(np.uint32)

    def _add_images(self, keys: list, counts: np.ndarray, rows: np.ndarray, update: bool) -> np.ndarray | None:
        """Put the scanned images into the vocabulary after the words; return the vocabulary's
        feature rows (``_vocab_image_rows``), or None when they must be looked up again (update)."""
        wv = self.wv
        k2i = wv.key_to_index
        if update:  # images seen before add to their counts, new ones go at the end
            seen = key_rows(k2i, keys)  # (a VocabKeyIndex looks its images up at once)
            old = seen >= 0
            np.add.at(wv.expandos["count"], seen[old], counts[old])
            keys = [k for k, o in zip(keys, old) if not o]
            counts, rows = counts[~old], rows[~old]
        elif self.sorted_vocab and len(keys):
            order = np.argsort(-counts, kind="stable")
            keys = [keys[i] for i in order]
            counts, rows = counts[order], rows[order]
        n0 = len(wv.index_to_key)
        if len(keys):
            wv.index_to_key.extend(keys)
            if isinstance(k2i, VocabKeyIndex) or len(k2i) != n0:  # (an update's new images: in the dict, after
                k2i.update(zip(keys, range(n0, n0 + len(keys))))  # its new words)
            else:  # the images in a KeyIndex after the words' dict (≈ 15 bytes a key, a dict's 57); also the first
                # images an update brings to a dict (a text model's, from_word2vec's pretrained words)
                wv.key_to_index = VocabKeyIndex(k2i if isinstance(k2i, dict) else dict(k2i.items()),
                                                wv.index_to_key, n0, n0 + len(keys))
            wv.allocate_vecattrs()
            for attr, kind in (("count", int), ("sample_int", np.uint32)):  # a vocabulary of images only
                if attr not in wv.expandos:
                    wv.allocate_vecattrs(attrs=[attr], types=[kind])
            wv.expandos["count"][n0:] = counts
        if update:
            return None
        out = np.full(len(wv.index_to_key), -1, dtype=np.int64)
        out[n0:] = rows
        return out

    def make_cum_table(self, domain=2**31 - 1):
        """Build gensim's table plus Im2Vec's two negative tables (images are in neither).

        ``_neg_word_idx/_neg_word_cum``: words by count**ns_exponent (negatives for word inputs and,
        with ``image_negatives="vocab"``, for image inputs); ``_neg_tag_idx/_neg_tag_cum``: words by
        their count in image documents (negatives for image inputs with ``image_negatives="tags"``).
        """
        if self.__dict__.get("_key_index_pending"):  # gensim's load, before ours has the key index: ours builds it
            return
        n = len(self.wv.index_to_key)
        counts = np.asarray(self.wv.expandos["count"], dtype=np.float64) if n else np.zeros(0)
        # gensim's table (its own kernel, text-only hs, reads it) without its per-token Python loop:
        # Python's pow of each distinct count (NumPy's may differ in the last bit), summed in order
        distinct, inverse = np.unique(counts, return_inverse=True)
        power = np.array([c ** float(self.ns_exponent) for c in distinct.tolist()], dtype=np.float64)
        self.cum_table = _cum_table(power[inverse], domain)
        rows = getattr(self, "_vocab_image_rows", None)
        if rows is None or len(rows) != len(self.wv.index_to_key):
            self._refresh_image_index()
        is_word = self._vocab_image_rows < 0
        power = float(self.ns_exponent)
        word_idx = np.flatnonzero(is_word).astype(np.int32)
        self._neg_word_idx = word_idx
        self._neg_word_cum = _cum_table(counts[word_idx] ** power if len(word_idx) else np.zeros(0))
        tag_counts = self._vocab_tag_counts()
        tag_idx = np.flatnonzero(tag_counts > 0).astype(np.int32)
        self._neg_tag_idx = tag_idx
        self._neg_tag_cum = _cum_table(tag_counts[tag_idx] ** power if len(tag_idx) else np.zeros(0))

    # ------------------------------------------------------------------ weights
    def _init_W(self) -> None:
        self._image_rows_from_W = False  # the image rows are not this W's until written
        self.readout_W = self.readout_offset = None  # fitted for the W and the words being reset
        self._drop_neighbours("a new W")
        feats = self.features
        if feats is None:
            self.W = None
            return
        rng = np.random.default_rng(self.seed)
        # entries U(-0.5, 0.5) / vector_size: for a unit v̂, h = W v̂ has the variance of a
        # freshly initialised gensim word vector
        self.W = ((rng.random((self.layer1_size, feats.dim), dtype=np.float32) - 0.5)
                  / self.layer1_size).astype(REAL)
        self.feature_mean = None  # set by the first train() of the space head

    def _fit_feature_mean(self, max_images: int = 100_000) -> None:
        """The mean of the training images' normalised features (from at most `max_images` of them,
        a fixed pseudo-random subset): the space head maps ``v̂ − mean``, so that the direction every
        CNN feature vector shares does not dominate ``W``'s updates.

        With fewer than two distinct feature vectors there is nothing to centre on (the mean is
        each image's own ``v̂``, and every image vector ``W · 0``: zero, whose cosine gensim makes
        nan): the mean is then zero, no centring, said at INFO for a single image and with a
        WARNING, naming the images, when several images all have the same features. Either way
        it is fitted: later trainings keep it (W is trained against it)."""
        rows = self._vocab_image_rows[self._vocab_image_rows >= 0]
        if not len(rows):
            return
        sampled = len(rows) > max_images
        if sampled:
            rows = np.sort(np.random.default_rng(self.seed).choice(rows, max_images, replace=False))
        total = np.zeros(self.features.dim, dtype=np.float64)
        first, distinct = None, False
        for lo in range(0, len(rows), _WRITE_CHUNK):
            # rows spread over a store that may be far larger than RAM: read without the kernel's read-around
            with scattered_reads(self.features.vectors, rows[lo:lo + _WRITE_CHUNK]):
                chunk = self.features.gather_normalized(rows[lo:lo + _WRITE_CHUNK], normalize=self.normalize_features)
            total += chunk.sum(axis=0)
            if not distinct:  # each row against the first, up to float32 rounding
                if first is None:
                    first = chunk[0].copy()
                    tol = 1e-6 * max(float(np.linalg.norm(first)), np.finfo(REAL).tiny)
                distinct = bool((np.linalg.norm(chunk - first, axis=1) > tol).any())
        if distinct:
            self.feature_mean = (total / len(rows)).astype(REAL)
            return
        self.feature_mean = np.zeros(self.features.dim, dtype=REAL)
        keys = self.features.keys
        if len(rows) == 1:
            logger.info("space: one training image (%s), nothing to centre its features on: feature_mean is 0 "
                        "(no centring), its vector W·v̂", keys[int(rows[0])])
            return
        logger.warning(
            "space: all %i%s training images have identical features (e.g. %s and %s): the feature vectors "
            "cannot tell them apart, so they all get one vector (W·v̂, feature_mean 0: no centring; centred "
            "on their mean it would be zero). Their features are likely broken (blank or unreadable images, "
            "the wrong layer, a store written with the same row for every key): check and re-extract them.",
            len(rows), " sampled" if sampled else "", keys[int(rows[0])], keys[int(rows[1])])

    def init_weights(self):
        """Reset word vectors, output vectors and W to an untrained state (with `vectors_file`, the
        word vectors in that file: the same random start as in memory, the images' rows zero until
        they are written from W)."""
        rows = self.__dict__.get("_vocab_image_rows")
        if rows is None or len(rows) != len(self.wv.index_to_key) or self.wv.index_to_key is not self.__dict__.get(
                "_indexed_keys", self.wv.index_to_key):  # (reset_from's vocabulary, or a wv replaced)
            self._refresh_image_index()
        self.__dict__.pop("_vocab_reordered", None)  # every row starts afresh: no old order left
        self.n_pretrained_words = self.n_trained_words = 0
        if getattr(self, "vectors_file", None) is None:
            super().init_weights()
        else:  # gensim's init_weights, without a random matrix of every row in memory first
            logger.info("resetting layer weights (wv.vectors in %s)", self.vectors_file)
            self._resize_vectors()
            if self.hs:
                self.syn1 = np.zeros((len(self.wv), self.layer1_size), dtype=REAL)
        if self.negative:  # output rows for the words only (see _output_rows)
            self.syn1neg = np.zeros((self._output_rows(), self.layer1_size), dtype=REAL)
        self._init_W()

    def update_weights(self):
        """Grow word and output vectors for new vocabulary; keep W (create it if missing); write the new
        images' rows from W, or every image's when the old rows are not W's (a model never trained
        since its vocabulary was built holds gensim's random start in them; a W made here is new to
        all; :meth:`build_vocab` gave other features, which may move the old images), so old and new
        images are in one space. Not from :meth:`from_word2vec`, whose
        ``train()`` right after writes every row: at 100M new images, a whole read of the features."""
        if not len(self.wv.vectors):
            raise RuntimeError(
                "You cannot do an online vocabulary-update of a model which has no prior vocabulary. "
                "First build the vocabulary of your model with a corpus before doing an online update."
            )
        preresize_count = len(self.wv.vectors)
        self._resize_vectors()  # as gensim's update_weights
        if self.hs:
            gained = len(self.wv.vectors) - preresize_count
            self.syn1 = np.vstack([self.syn1, np.zeros((gained, self.layer1_size), dtype=REAL)])
        self._grow_row_state(preresize_count)
        feats = self.features
        if self.W is None or (feats is not None and self.W.shape[1] != feats.dim):
            self._init_W()
        if self._defer_image_rows:
            return
        # the new images' rows are W's, not gensim's random start: project() of their features
        # (a model that adds images without training finds them by their features at once)
        current = getattr(self, "_image_rows_from_W", False)  # False: the old rows too
        among = np.arange(preresize_count, len(self.wv.vectors)) if current else None
        self._write_image_vectors(among)

    # ------------------------------------------------------------------ wv.vectors in a file
    def _resize_vectors(self) -> None:
        """gensim's ``wv.resize_vectors(seed=self.seed)``: a row per key, the new ones at gensim's random
        start; with `vectors_file`, in that file (:meth:`_vectors_to_file`)."""
        if getattr(self, "vectors_file", None) is None:
            self.wv.resize_vectors(seed=self.seed)
            return
        self._vectors_to_file(len(self.wv.index_to_key))
        self.wv.allocate_vecattrs()
        self.wv.norms = None

    def _vectors_in_file(self) -> bool:
        """Whether ``wv.vectors`` is the writable memory map of this model's vectors file."""
        vf = getattr(self, "_vectors_file_state", None)
        return vf is not None and self.wv.vectors is vf.array

    def _writable_vectors(self) -> np.ndarray:
        """``wv.vectors`` as training writes it: the memory map of `vectors_file` (the vectors moved
        there first when they are elsewhere, e.g. after ``load(mmap="r")``), or without one a
        writable C-contiguous float32 array in memory (a memory map, read-only or not, copied in)."""
        path = _check_vectors_file(getattr(self, "vectors_file", None))
        arr = self.wv.vectors
        if path is not None:
            if not (self._vectors_in_file() and self._vectors_file_state.path == path):
                logger.info("moving wv.vectors %s into the vectors file %s", np.shape(arr), path)
                self._vectors_to_file(len(arr))
            return self.wv.vectors
        if (not isinstance(arr, np.ndarray) or arr.dtype != REAL or not arr.flags.writeable
                or not arr.flags.c_contiguous or isinstance(arr, np.memmap)):
            logger.info("copying vectors (%s, %s: read-only, memory-mapped or not C-contiguous float32) into "
                        "memory as float32 for training", np.shape(arr), getattr(arr, "dtype", None))
            self.wv.vectors = np.array(arr, dtype=REAL, order="C")
        vf = getattr(self, "_vectors_file_state", None)
        if vf is not None:  # vectors_file was set to None: the file is let go
            self._vectors_file_state = None
            vf.close()
        return self.wv.vectors

    def _vectors_to_file(self, n_rows: int) -> None:
        """Make ``wv.vectors`` this model's writable memory map of `vectors_file`, with `n_rows` rows:
        the same file grown in place when it is already there (new rows at the end), else a new file
        holding the current vectors' first rows. New rows of words get gensim's random start (the
        values ``resize_vectors`` gives them in memory), new rows of images stay zero (pages never
        written) until they are written from W."""
        path = _check_vectors_file(self.vectors_file)
        prior = self.wv.vectors
        vf = self._vectors_file_state
        if (self._vectors_in_file() and vf.path == path and prior.shape[1] == self.wv.vector_size
                and n_rows >= len(prior) and _file_id(path) == vf.id):
            if n_rows > len(prior):
                self._grow_vectors_file(n_rows)
            return
        self._new_vectors_file(path, n_rows, prior)

    def _claim_vectors_path(self, path: str) -> None:
        """Refuse to put a new vectors file at `path` (nothing is written) unless no file is there or
        it is this model's own: the file it maps now, or the file it made before it was saved (its
        recorded path, device and inode, and its random token in the header when it recorded one) that no
        live model maps (its lock is free: e.g. the file of an interrupted run, continued from a
        checkpoint): replaced (a new file given the name: another name of the old one, a hard link, keeps
        it as it is). Any other file is the user's or another model's, and stays as it is."""
        if not os.path.lexists(path):
            return
        fid = _file_id(path)
        vf = getattr(self, "_vectors_file_state", None)
        if fid is not None and vf is not None and fid == vf.id:
            return
        record = getattr(self, "_vectors_file_id", None)
        if fid is not None and record is not None and tuple(record) == fid and fcntl is not None \
                and self._has_own_token(path):
            try:
                _VectorsFile.lock(path).close()
            except BlockingIOError:
                raise FileExistsError(
                    errno.EEXIST, f"vectors_file {path!r} is in use: another model maps it as its wv.vectors (in this "
                                  f"process or another, e.g. the model this one was saved from), and it is left as it "
                                  f"is. Give this model a file of its own (model.vectors_file = 'OTHER.npy'), or "
                                  f"vectors_file=None to keep its vectors in memory.") from None
            logger.info("replacing %s, the vectors file this model was made with (no live model maps it)", path)
            return
        owner = _saved_model_of(path)
        raise FileExistsError(
            errno.EEXIST, f"vectors_file {path!r} exists and is not this model's vectors file; it is left as it is "
                          f"(a vectors file is never written over another file). Give another path "
                          f"(vectors_file='OTHER.npy'; None keeps the vectors in memory)." + (
                              f" It is an array of the saved model {owner!r} (a model keeps its arrays beside it, "
                              f"as {os.path.basename(owner)}.ATTR.npy): keep it." if owner else
                              " Delete it yourself only if it is an old vectors file that no model uses."))

    def _reopen_own_vectors_file(self, path: str, n_rows: int) -> bool:
        """Map the file at `path` as ``wv.vectors`` in place (written over, the same file) when it is
        the vectors file this model made, no live model maps it, and it holds `n_rows` rows of this
        model's width: a checkpoint resumed into its run's file keeps that file, so a resume
        interrupted before its next checkpoint can be resumed again (a new file would not be the one
        the checkpoint records). The file this model made is known by its recorded device and inode,
        its only name (a file that another path also names, e.g. a folder copied with hard links, is
        never written in: it is that path's too), and the random token the model wrote into its
        header (a saved model's file, once a run's, has none: :meth:`save` takes it out), wherever it
        lies now (the folder of an interrupted run moved: ``load(vectors_file=...)``); a model that
        recorded no token (saved by an earlier version) knows it only at its recorded path. A copy is
        another file. False: it is not, nothing done."""
        record, fid = getattr(self, "_vectors_file_id", None), _file_id(path)
        if fid is None or record is None or tuple(record)[1:] != fid[1:] or fcntl is None:
            return False
        if getattr(self, "_vectors_file_token", None) is None and tuple(record)[0] != path:
            logger.info("%s is not taken as the vectors file this model made as %s: the model records no token of "
                        "it (saved by an earlier version) and it is not at its recorded path", path, tuple(record)[0])
            return False
        try:
            handle = _VectorsFile.lock(path)
        except BlockingIOError:
            return False  # in use: _new_vectors_file refuses it, naming the fix
        links = os.fstat(handle.fileno()).st_nlink
        if links != 1 or not self._has_own_token(path):
            handle.close()
            logger.info("%s is not written in place: %s", path,
                        f"{links} paths name that file (hard links: a folder copied with cp -al?); a new file is made"
                        if links != 1 else "its header lacks the token this model wrote into its vectors file")
            return False
        try:
            array = np.lib.format.open_memmap(path, mode="r+")
        except (OSError, ValueError):
            handle.close()
            return False
        if array.dtype != REAL or array.shape != (int(n_rows), int(self.wv.vector_size)):
            del array
            handle.close()
            return False
        vf = _VectorsFile(path, array, handle)
        if vf.id != fid:  # replaced between the check and the open
            del array
            vf.close()
            return False
        self.wv.vectors, self._vectors_file_state = array, vf
        if tuple(record)[0] != path:
            logger.info("%s is the vectors file this model made as %s (moved since)", path, tuple(record)[0])
        self._vectors_file_id = vf.id  # (where it lies now)
        logger.info("wv.vectors in %s again (the run's own vectors file, written over in place)", path)
        return True

    def _has_own_token(self, path: str) -> bool:
        """Whether the file at `path` holds in its header the token this model wrote into the vectors file
        it made (True when it recorded none: a model saved by an earlier version, or a header without room)."""
        token = getattr(self, "_vectors_file_token", None)
        if token is None:
            return True
        from gensim_im2vec.checkpoint import has_run_token

        return has_run_token(path, token)

    def _new_vectors_file(self, path: str, n_rows: int, prior) -> None:
        """Write a new vectors file of `n_rows` rows at `path` (refused by :meth:`_claim_vectors_path`
        before anything is written): under a temporary name beside it, its disk space allocated first,
        `prior`'s first rows copied in, gensim's random start in the new words' rows; then named
        `path` and mapped as ``wv.vectors``."""
        self._claim_vectors_path(path)
        if prior is not None and not isinstance(prior, np.ndarray):
            prior = np.asarray(prior, dtype=REAL)
        shape = (int(n_rows), int(self.wv.vector_size))
        tmp = str(temp_name(path))
        handle = None
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=REAL, shape=shape)
            handle = _VectorsFile.lock(tmp)  # the same file once it has its name
            token = _new_run_token(tmp)
            made = _VECTORS_FILE_MADE.get()
            if made is not None:  # (before the name: a process killed from here on leaves a file it is known by)
                made(path, tmp, shape, token)
            with open(tmp, "r+b") as f:
                _reserve(f, out.offset, out.offset + out.nbytes, path, shape)
            keep = min(len(prior), shape[0]) if prior is not None and np.ndim(prior) == 2 else 0
            cols = min(prior.shape[1], shape[1]) if keep else 0
            for lo in range(0, keep, _VECTORS_CHUNK):
                hi = min(keep, lo + _VECTORS_CHUNK)
                out[lo:hi, :cols] = prior[lo:hi, :cols]
            self._init_word_rows(out, keep, shape[0])
            del out
            _publish(tmp, path, replace=os.path.lexists(path))
        except BaseException:
            if handle is not None:
                handle.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        logger.info("wv.vectors %s in %s (%.2f GiB on disk)", shape, path, shape[0] * shape[1] * 4 / _GiB)
        old, vf = self._vectors_file_state, _VectorsFile(path, np.lib.format.open_memmap(path, mode="r+"), handle)
        self.wv.vectors = vf.array
        self._vectors_file_state = vf
        self._vectors_file_id = vf.id
        self._vectors_file_token = token
        if old is not None:
            old.close()

    def _grow_vectors_file(self, n_rows: int) -> None:
        """Grow this model's vectors file to `n_rows` rows in place: the new rows' disk space allocated
        (a full disk leaves the file as it was), the header's row count rewritten, the rows before
        untouched; a header without room for the longer count (an old NumPy's) makes a new file."""
        vf = self._vectors_file_state
        old = vf.array
        shape = (int(n_rows), int(old.shape[1]))
        header = _npy_header(shape)
        if len(header) != old.offset:
            self._new_vectors_file(vf.path, n_rows, old)
            return
        token = getattr(self, "_vectors_file_token", None)
        if token is not None:  # (the token kept in the header written: one write, the file always known by it)
            from gensim_im2vec.checkpoint import _header_with_token

            marked = _header_with_token(header, token)
            if marked is None:  # no room left for it: the file is known at its recorded path alone from now on
                self._vectors_file_token = token = None
            else:
                header = marked
        start, end = old.offset + old.nbytes, old.offset + shape[0] * shape[1] * np.dtype(REAL).itemsize
        with open(vf.path, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            try:
                _reserve(f, start, end, vf.path, shape)
            except BaseException:
                os.ftruncate(f.fileno(), size)
                raise
            f.write(header)
            f.flush()
            made = _VECTORS_FILE_MADE.get()
            if made is not None:  # (the header rewritten: the record of the file's shape written again)
                made(vf.path, vf.path, shape, token)
        vf.array = array = np.lib.format.open_memmap(vf.path, mode="r+")
        self._init_word_rows(array, len(old), shape[0])
        self.wv.vectors = array
        logger.info("wv.vectors grown to %s in %s", shape, vf.path)

    def _init_word_rows(self, out: np.ndarray, lo: int, hi: int) -> None:
        """gensim's random start (``prep_vectors``: U[-1, 1) / vector_size from ``default_rng(seed)``,
        row i from value i × vector_size of its stream) in the rows lo..hi of `out` that are words;
        the images' rows are left as they are (zero in a new file)."""
        if hi <= lo:
            return
        rows = self._vocab_image_rows
        if len(rows) == len(self.wv.index_to_key) and len(rows) >= hi:
            word = rows[lo:hi] < 0
        else:  # gensim's own weights call (no image rows known): every row, as gensim
            word = np.ones(hi - lo, dtype=bool)
        edges = np.diff(np.concatenate(([0], word.astype(np.int8), [0])))
        dim = out.shape[1]
        for a, b in zip(np.flatnonzero(edges == 1) + lo, np.flatnonzero(edges == -1) + lo):
            rng = _gensim_stream(self.seed, int(a) * dim)
            for s in range(int(a), int(b), _VECTORS_CHUNK):
                e = min(int(b), s + _VECTORS_CHUNK)
                block = rng.random((e - s, dim), dtype=REAL)
                block *= 2.0
                block -= 1.0
                block /= dim
                out[s:e] = block

    def _flush_vectors(self) -> None:
        """Write the vectors file's changed pages to its disk (the end of :meth:`train`)."""
        if self._vectors_in_file():
            start = default_timer()
            self.wv.vectors.flush()
            logger.info("flushed %s (%.1fs)", self._vectors_file_state.path, default_timer() - start)

    def _output_rows(self) -> int:
        """Rows of ``syn1neg``: up to the vocabulary's last word. An image has no output row (the
        kernel never reads or writes one), and a fresh vocabulary puts the images after the words,
        so 10M images cost no ``syn1neg`` memory, nor bytes in a saved model."""
        rows = getattr(self, "_vocab_image_rows", None)
        if rows is None or len(rows) != len(self.wv.index_to_key):
            return len(self.wv.index_to_key)
        words = np.flatnonzero(rows < 0)
        return int(words[-1]) + 1 if len(words) else 0

    # ------------------------------------------------------------------ training
    def _check_lockf(self) -> None:
        lockf = getattr(self.wv, "vectors_lockf", None)
        if lockf is None:
            self.wv.vectors_lockf = np.ones(1, dtype=REAL)
            return
        if not isinstance(lockf, np.ndarray) or lockf.dtype != REAL or lockf.ndim != 1:
            raise TypeError(
                f"model.wv.vectors_lockf must be a 1-D float32 array, got "
                f"{type(lockf).__name__} of dtype {getattr(lockf, 'dtype', None)} and shape "
                f"{getattr(lockf, 'shape', None)}; fix it with model.wv.vectors_lockf = "
                f"np.asarray(lockf, dtype=np.float32). (gensim does not check this: a float64 array is "
                f"read as float32 bits and silently freezes or corrupts training.)"
            )
        if len(lockf) not in (1, len(self.wv)):
            raise ValueError(
                f"model.wv.vectors_lockf has length {len(lockf)}; it must be 1 (one factor for all words) "
                f"or the vocabulary size {len(self.wv)} (one per word)."
            )

    def _warn_locked_images(self) -> None:
        """Warn when a per-row ``wv.vectors_lockf`` (the user's, e.g. gensim's
        ``wv.intersect_word2vec_format(path, lockf=0.0)`` of a file that holds image keys) gives
        images a factor below 1: an image's row is ``W``'s projection of its features, written again
        as ``train()`` ends, and ``W`` learns whatever the rows' factors say, so the lock would be
        silently without effect."""
        lockf = self.wv.vectors_lockf
        rows = self.__dict__.get("_vocab_image_rows")
        if len(lockf) < 2 or rows is None or len(rows) != len(lockf):
            return
        locked = np.flatnonzero((lockf < 1) & (rows >= 0))
        if len(locked):
            logger.warning(
                "model.wv.vectors_lockf gives %i image row(s) a factor below 1 (e.g. %r: %g), as gensim's "
                "intersect_word2vec_format does for the image keys of a file: lock factors hold words only; an "
                "image's vector is W's projection of its features, and this train() moves W and writes the "
                "images' rows from it again. Set their factors to 1 to say so "
                "(model.wv.vectors_lockf[model.image_mask] = 1.0), or do not train to keep the rows as they are.",
                len(locked), self.wv.index_to_key[int(locked[0])], float(lockf[locked[0]]))

    def _check_rates(self) -> None:
        """Refuse a learning rate or downsampling threshold that would train garbage (alpha=-1)."""
        _check_positive("alpha", self.alpha, "the initial learning rate, e.g. 0.025")
        _check_non_negative("min_alpha", self.min_alpha, "the final learning rate, e.g. 0.0001")
        _check_non_negative("sample", self.sample, "e.g. 1e-3; 0: no downsampling")

    def _check_tokens(self) -> None:
        """Refuse tokens that are not str (an int in a document), naming them and the fix."""
        bad = [w for w in self.raw_vocab if not isinstance(w, str)]
        if bad:
            shown = ", ".join(f"{w!r} ({type(w).__name__})" for w in bad[:5])
            raise TypeError(
                f"documents must be lists of str tokens; {len(bad)} token(s) are not: {shown}. Convert them, "
                f"e.g. [[str(t) for t in doc] for doc in documents]."
            )

    def _check_corpus_sanity(self, corpus_iterable=None, corpus_file=None, passes=1):
        # gensim refuses a generator for more than one pass but takes any other one-shot iterator (map(),
        # iter(list), an open file): its first pass empties it, and every later epoch trains nothing, with
        # only a logged warning; the model looked trained, W barely moved from its random start
        if passes > 1 and corpus_file is None and is_one_shot(corpus_iterable):
            raise TypeError(
                f"corpus_iterable is a one-shot iterator ({type(corpus_iterable).__name__}: a generator, map(), "
                f"iter(...) or an open file is used up by one pass), but it is read {passes} times here (train() "
                f"reads it once per epoch, and Im2Vec(corpus, ...) once more to build the vocabulary): every pass "
                f"after the first would find it empty and train nothing. Pass a list of documents, a re-iterable corpus (an object whose "
                f"__iter__ starts over, e.g. gensim_im2vec.corpora.LineDocuments(path)), or corpus_file=PATH.")
        super()._check_corpus_sanity(corpus_iterable=corpus_iterable, corpus_file=corpus_file, passes=passes)

    def _check_training_sanity(self, epochs=0, total_examples=None, total_words=None, **kwargs):
        super()._check_training_sanity(epochs=epochs, total_examples=total_examples, total_words=total_words,
                                       **kwargs)
        self._check_rates()
        self._check_batch_words(self.batch_words)
        if isinstance(self.workers, (int, float, np.integer, np.floating)) and not self.workers >= 1:
            # gensim starts no worker thread then, and train() returns having trained nothing
            raise ValueError(f"workers must be >= 1 (the number of training threads), got {self.workers!r}; "
                             f"with none, train() would silently train nothing. Use e.g. workers=1.")
        self._check_lockf()
        self._warn_locked_images()
        has_images = bool(np.any(self._vocab_image_rows >= 0))
        if self.hs and has_images:
            raise ValueError(_HS_WITH_IMAGES)
        if self.hs and self.train_words == "new":  # gensim's hs kernel would train the text's words too
            raise ValueError("train_words='new' trains with negative sampling (hs=0, negative > 0), as "
                             "from_word2vec sets it; this model has hs=1.")
        if not self.hs:
            if self.negative <= 0:
                raise ValueError("Im2Vec trains with negative sampling: set negative > 0 (e.g. 5).")
            if len(self._neg_word_idx) == 0:
                min_count = int(getattr(self, "effective_min_count", None) or self.min_count)
                why = (f"each word of the corpus occurs fewer than min_count={min_count} times (lower min_count) "
                       f"or the documents hold images only (add text to them)" if min_count > 1 else
                       "the documents hold images only; add their tags or caption words to them")
                raise RuntimeError(f"the vocabulary holds no words to draw negatives from ({len(self.wv)} "
                                   f"image(s), no word): {why}.")
            if getattr(self, "syn1neg", None) is None:
                raise RuntimeError("model.syn1neg is missing (the model was saved with ignore=['syn1neg']?): it "
                                   "answers queries, but training needs the output weights; train the model "
                                   "saved with them, or start them again with build_vocab().")
            if len(self.syn1neg) < self._output_rows():  # the kernel indexes it by word without a check
                raise RuntimeError(f"model.syn1neg has {len(self.syn1neg)} rows, the vocabulary's words need "
                                   f"{self._output_rows()}; rebuild the weights with build_vocab().")

    def _ensure_writable(self) -> None:
        """Copy read-only (e.g. ``mmap='r'``) arrays the kernel writes to into memory, and arrays
        the kernel reads as float32 (e.g. ``model.wv.vectors`` a user replaced with float64: its
        worker thread would die on it, and gensim's ``train()`` wait for it forever) as float32.
        ``wv.vectors`` goes where :meth:`_writable_vectors` says: with `vectors_file`, the model's own
        memory map of it stays as it is, and any other array (read-only, foreign) is moved there.
        A ``wv.vectors_lockf`` the kernels cannot take is refused first (:meth:`_check_lockf`)."""
        self._check_lockf()
        self._writable_vectors()  # in memory, or in vectors_file
        for owner, name in ((self, "syn1neg"), (self, "W"), (self.wv, "vectors_lockf"), (self, "feature_mean")):
            arr = getattr(owner, name, None)
            if arr is None:
                continue
            arr_dtype = getattr(arr, "dtype", None)
            if (not isinstance(arr, np.ndarray) or arr_dtype != REAL or not arr.flags.writeable
                    or not arr.flags.c_contiguous or isinstance(arr, np.memmap)):
                logger.info("copying %s (%s, %s: read-only, memory-mapped or not C-contiguous float32) into "
                            "memory as float32 for training", name, np.shape(arr), arr_dtype)
                setattr(owner, name, np.array(arr, dtype=REAL, order="C"))
        if self.space_pull is not None and self.space_anchor is None and self.image_heads == "space":
            logger.warning("space_pull=%s does nothing here: the model has no text vectors to pull its words back "
                           "to (Im2Vec.from_word2vec keeps them); its words move freely in the space step",
                           self.space_pull)
        self._space_lock = self._space_word_lock()
        self._space_bias = self._space_tag_bias()

    def _training_lockf(self) -> np.ndarray:
        """The pair loop's lock factors for this ``train()``: ``wv.vectors_lockf`` (gensim's, the
        user's to set) as it is, or with ``train_words="new"`` the same times 0 for the text's
        words, in an array of the model's own: ``wv.vectors_lockf`` is left as it was (a later
        ``train_words=True`` trains the text's words again), and the array has a row per word, not
        per image (the kernel reads it for words only; images come after the last word row or
        are skipped by their slot)."""
        lockf = self.wv.vectors_lockf
        if self.train_words != "new":
            return lockf
        rows = self._output_rows()  # every word's row is below it
        if not rows:
            return lockf
        mine = np.empty(rows, dtype=REAL)
        mine[:] = lockf[0] if len(lockf) == 1 else lockf[:rows]
        mine[: self.n_pretrained_words] = 0.0
        return mine

    def train(self, corpus_iterable=None, corpus_file=None, total_examples=None, total_words=None,
              epochs=None, start_alpha=None, end_alpha=None, word_count=0, queue_factor=2,
              report_delay=1.0, compute_loss=False, callbacks=(), **kwargs):
        """Train words, output vectors and W; afterwards the images' vectors are in ``model.wv``.

        Same arguments as :meth:`gensim.models.word2vec.Word2Vec.train` (``corpus_file`` needs
        `total_words`, as in gensim). The loss (``compute_loss=True``) is summed in double precision per job, so
        :meth:`get_latest_training_loss` is exact with several workers.

        Nothing of the model changes before gensim has accepted the arguments: a call it refuses
        (e.g. a generator without `total_examples`, or no `epochs`) leaves ``feature_mean``, ``W``,
        the image rows, the analogy plan, the last training's figures and ``epochs``/``alpha``/
        ``min_alpha`` (which gensim sets before it checks) as they were. The first ``train()`` of
        the space head fits ``feature_mean`` as training begins (:meth:`_begin_training`).
        """
        if corpus_file is not None:
            corpus_file = corpusfile.check_corpus_file(corpus_file, corpus_iterable)
            corpusfile.check_total_words(total_words)
        check_corpus(corpus_iterable)
        self._follow_vocab()
        self._refuse_reordered("train")
        self._ensure_writable()
        feats = self.features
        n_img = int(np.sum(self._vocab_image_rows >= 0))
        logger.info(
            "Im2Vec training: %i words + %i images in the vocabulary, vector_size=%i, features=%s, "
            "sg=%i negative=%i image_negatives=%s tied=%s image_alpha=%g train_words=%s train_outputs=%s "
            "train_images=%s, one BLAS thread per worker",
            len(self.wv) - n_img, n_img, self.layer1_size, feats.dim if feats is not None else 0, self.sg,
            self.negative, self.image_negatives, self.tied_image_targets, self.image_alpha, self.train_words,
            self.train_outputs, self.train_images,
        )
        start = default_timer()
        _check_readout_directions(self.space_readout_directions)  # (attributes a user may have set)
        _check_neighbours(self.space_neighbours, self.image_heads)
        if self.space_neighbours and n_img:  # (a search that cannot be built: refused before training)
            self._check_neighbour_search(n_img, "space_neighbours")
        k = self.space_common_directions
        if self.image_heads == "space" and n_img and k is not None and k + 1 >= self.layer1_size:
            raise ValueError(f"space_common_directions={k} would take {k + 1} of the {self.layer1_size} "
                             f"dimensions out of the image vectors (the tags' mean and top {k} directions), "
                             f"leaving none; use a number below vector_size - 1, or None.")
        # the analogy questions are checked now (none left is an error before gensim is asked), and
        # become the model's plan only once gensim has accepted the call (_begin_training)
        plan = self._plan_analogies() if self.space_analogies and n_img else None
        plan_seconds = default_timer() - start
        # several workers and one dense W: a job with images trains on the worker's own copy of W,
        # folded into W after each run (WorkerW), so no update is lost; one worker needs none
        shared = max(int(self.workers), 1) > 1 and n_img and self.W is not None
        self._w_workers = WorkerW(self.W) if shared else None
        # the images' rows of wv follow W when a callback looks (each epoch's end, after the last
        # W step; the end of training, after the steps below), and when training stops early
        # (a callback that says it does not read them, as EpochCheckpoint, which leaves them out, costs no write)
        callbacks = tuple(callbacks)  # (a generator of them is read once, here)
        sync = _ImageSync(lambda: self._begin_training(n_img, plan, plan_seconds),
                          lambda: self._finish_training(n_img, start),
                          each_epoch=any(getattr(c, "reads_image_rows", True) for c in callbacks))
        schedule = self.alpha, self.min_alpha, self.epochs  # gensim sets them before it checks the arguments
        was_training, self._training = getattr(self, "_training", False), True  # build_vocab refuses meanwhile (not saved)
        try:
            # the kernels' lock factors (gensim's own never train "new": corpusfile); wv.vectors_lockf was
            # checked by _ensure_writable
            self._lockf = self._training_lockf()
            # one BLAS thread inside each worker; gensim's worker threads give the parallelism
            with threadpool_limits(limits=1, user_api="blas"):
                result = super().train(
                    corpus_iterable=corpus_iterable, corpus_file=corpus_file, total_examples=total_examples,
                    total_words=total_words,
                    epochs=epochs, start_alpha=start_alpha, end_alpha=end_alpha, word_count=word_count,
                    queue_factor=queue_factor, report_delay=report_delay, compute_loss=compute_loss,
                    callbacks=(sync, *callbacks), **kwargs)
        except BaseException:
            if not sync.started:  # refused (or stopped) before training began: the model as it was
                self.alpha, self.min_alpha, self.epochs = schedule
            raise
        finally:
            self._training = was_training  # (a train() from a callback of another leaves that one's flag)
            self._w_workers = None  # not saved with the model
            self._readout_sums = None  # a train() stopped in its last epoch: its sums go (they hold a lock)
            self._gathered_words = None  # (and the images' words it gathered)
            if sync.started and not sync.finished:  # interrupted (Ctrl-C, a callback's error): W as it is
                self.wv.norms = None  # the rows moved; gensim clears them only when train() ends (_clear_post_train)
                self._write_image_vectors()
            self._flush_vectors()  # vectors_file: on its disk when train() returns
        return result

    def _begin_training(self, n_img: int, plan, plan_seconds: float) -> None:
        """What precedes the first epoch of :meth:`train`, once gensim has accepted its arguments
        (gensim's ``on_train_begin``, ahead of the user's callbacks); a ``train()`` refused before
        (e.g. without `total_examples`) changes none of it.

        The space head's first ``train()`` fits ``feature_mean`` (:meth:`_fit_feature_mean`); the
        analogy questions checked by :meth:`train` become the plan; the training's figures start
        from zero, ``space_setup_seconds`` the time of the fit and the plan. W is about to move, so
        only the directions this ``train()`` takes out will hold (``space_directions``)."""
        start = default_timer()
        self._image_occurrences = 0
        self._space_seconds = 0.0
        if self.image_heads == "space" and n_img and self.feature_mean is None:
            self._image_rows_from_W = False  # project() maps from the mean fitted now: not the rows' mean
            self._fit_feature_mean()
        self._analogy_plan = plan
        self.space_analogy_seconds = 0.0
        # the analogy step draws per epoch of the run: a resumed run (checkpoint.resume) goes on from its epochs
        self._analogy_epochs = int(self.__dict__.pop("_epochs_before", 0))
        self._epochs_begun = 0
        self._readout_sums = None
        self._gathered_words = None
        start_pool = default_timer()
        if self.neighbour_keys is not None:  # what this train() adds its last epoch's images to
            self._previous_pool = self._pool_words() if self.space_neighbours else None
            if self.space_neighbours and self._previous_pool is None:
                logger.info("space_neighbours: the neighbours fitted before were saved without their words (by "
                            "fit_neighbours before 2026-12-07); this train()'s last epoch's images alone are fitted")
        elif not self.space_neighbours:  # (else the pool of an interrupted or resumed train(), if any, stays)
            self._previous_pool = None
        self.space_neighbour_seconds = default_timer() - start_pool if self.space_neighbours else 0.0
        self._drop_neighbours("train()")
        self.space_setup_seconds = plan_seconds + (default_timer() - start)
        if self.train_images and n_img:
            self.space_directions = None

    def _finish_training(self, n_img: int, start: float) -> None:
        """What follows the epochs of :meth:`train` (before the callbacks' ``on_train_end``): the
        space's statistics, the removal of the tags' common directions from W, the images' rows of
        ``wv``, the count of trained words."""
        elapsed = default_timer() - start
        if self._image_occurrences:
            logger.info("trained %i image occurrences in %.1fs (%.0f image tokens/s)",
                        self._image_occurrences, elapsed, self._image_occurrences / max(elapsed, 1e-9))
        if self.image_heads == "space" and n_img:
            # what the space costs: its setup (the feature mean, outside the epochs) and the space
            # step's share of the workers' time (inside the epochs, no pass of its own)
            # (said with the rest of what the space costs, in one line, as train() ends)
            self.space_step_share = self._space_seconds / max(elapsed * max(int(self.workers), 1), 1e-9)
            if self._analogy_plan is not None:
                logger.info("space: analogy term on %i questions, last loss %.3f, %.1fs (%.1f%% of train)",
                            len(self._analogy_plan[0]), self.space_analogy_loss, self.space_analogy_seconds,
                            100 * self.space_analogy_seconds / max(elapsed, 1e-9))
        # the words this train() moved in two-stage (read before n_trained_words counts them placed)
        moved_from = self._placed_words()
        if self.train_words is not False or (self.image_heads == "space" and n_img):
            # every word of the vocabulary has now learned (the space step moves the new words)
            self.n_trained_words = len(self.wv)
        if self.image_heads == "space" and n_img:
            self._remove_common_directions()
            self._fit_readout()
        gathered, self._gathered_words = self._gathered_words, None
        words = None if gathered is None else gathered.pairs.result()
        if gathered is not None and self._previous_pool is not None:  # the images this train() did not see
            # keep their words (by key: the vocabulary may have been rebuilt)
            previous = self._pool_keys(self._previous_pool, gathered.base, keep=lambda i: ~gathered.seen(i))
            kept = count_images(previous, gathered.base)
            if kept:  # appended to the gathered buffer itself (its own array: no view of it is held), then
                n = len(words)  # sorted in place (no pair twice: no image is in both)
                words.resize(n + len(previous), refcheck=False)
                words[n:] = previous
                words.sort()
                logger.info("space_neighbours: %i images fitted before and not in this train()'s last epoch keep "
                            "their words (model.fit_neighbours(documents) fits the given documents' alone)", kept)
            del previous
        self._previous_pool = None
        space = self.image_heads == "space" and n_img
        fit = words is not None and len(words) > 0
        calibrating = space and self._calibrates()  # (it reads the images' rows)
        if not fit or calibrating:
            self._write_image_vectors()  # (else the neighbours' fit below writes them, once)
        if space:
            self._calibrate_new_words(moved_from)
        if fit:  # space_neighbours: from the words as calibrated
            start_fit = default_timer()
            try:
                self._fit_neighbour_words(words, gathered.base, start_fit)
            except ValueError as err:
                raise ValueError(f"{err} train() has trained the model; its image vectors are left without the "
                                 f"neighbours' words until model.fit_neighbours(documents).") from None
            fitted = default_timer() - start_fit
            self.space_neighbour_seconds += self._neighbour_seconds + fitted
            logger.info("space_neighbours: the last epoch's images' words gathered in %.2fs of worker time, fitted "
                        "in %.2fs (train() took %.1fs before it)", self._neighbour_seconds, fitted, elapsed)
        elif words is not None:
            logger.warning("space_neighbours=%i: no image of the last epoch had a word of the vocabulary in its "
                           "documents; the image vectors are left without neighbours", self.space_neighbours)
        if space:  # what the space adds to this train() beside the images' own training (the space step)
            after = default_timer() - start - elapsed
            total = elapsed + after
            added = self.space_setup_seconds + self.space_analogy_seconds + after
            workers = max(int(self.workers), 1)
            logger.info("space: %.2fs of train()'s %.2fs (%.0f%%) beside the images' training, the space step (%.0f%% of "
                        "the epochs' %.2fs x %i worker(s): %.2fs of worker time): the feature mean and plans %.2fs, the "
                        "analogy term %.2fs, after the epochs %.2fs (common directions, readout, new words, neighbours, "
                        "the image rows)", added, total, 100 * added / max(total, 1e-9), 100 * self.space_step_share,
                        elapsed, workers, self._space_seconds, self.space_setup_seconds, self.space_analogy_seconds,
                        after)

    def _calibrates(self) -> bool:
        """Whether :meth:`_calibrate_new_words` has words to move (then it reads the images' rows)."""
        return bool(self.space_calibrate_new_words and self.train_words is False and self.space_word_alpha > 0)

    def _calibrate_new_words(self, moved_from: int) -> None:
        """Two-stage (``train_words=False``), `space_calibrate_new_words`: each word without a
        pretrained vector (a tag the text model did not have, moved by the space step alone, so
        along image vectors only) gets the share of its unit vector in the images' top
        ``vector_size // 4`` principal directions that the pretrained tags have on average, the rest
        of it along a direction of its own outside the images' top ``vector_size // 2``:
        ``v ← ‖v‖ · (s · v̂ + √(1 − s²) · d)``, ``s = √(their share / its share)`` when below 1. Its
        cosine to an image is then about ``s`` times what it was, the more exactly the less of the
        images' norm lies outside their top ``vector_size // 2`` directions (on the demo, its
        ranking of the images did not change); without it such tags sit nearer every image than
        the text's tags do and fill an image's nearest words (the two-stage demo: 1.3% of the tags,
        18% of a held-out image's 10 nearest; with it 4%, and held-out image → word +0.01 at every
        seed: docs/joint-space.md). Only the words this ``train()`` moved (rows from `moved_from`
        on): a later ``train()`` keeps them frozen, as every trained word in two-stage, and leaves
        them as they are. None when the space step moves no word (``space_word_alpha=0``). The
        images' directions come from at most :data:`CALIBRATION_IMAGES` of their rows; the random
        directions from the model's seed."""
        if not self._calibrates():
            return
        dim = self.layer1_size
        k, outside = dim // 4, dim // 2
        n_pre = int(self.n_pretrained_words)
        tags = self._tag_rows()
        reference = tags[tags < n_pre]
        new = tags[tags >= max(n_pre, int(moved_from))]
        new = new[self._space_lock[new] > 0]  # (not a word the user locked: vectors_lockf)
        images = np.flatnonzero(self._vocab_image_rows >= 0)
        if not len(new):
            return
        if k < 1 or len(reference) < 2 or len(images) < outside + 1:
            logger.info("space_calibrate_new_words: %i word(s) without a pretrained vector left as trained (%s)",
                        len(new), f"vector_size {dim} too small" if k < 1 else
                        "fewer than 2 pretrained tags to take their share from" if len(reference) < 2 else
                        f"{len(images)} image(s), too few for {outside} directions")
            return
        lacking = len(tags) - len(reference)  # (this train()'s and those an earlier one placed)
        if lacking > CALIBRATION_MAX_SHARE * len(tags):
            logger.warning(
                "space_calibrate_new_words: %i of the %i tags (%.1f%%) have no pretrained vector; the calibration "
                "is for a few of them: on the demo it raised held-out image -> word with 1.3%% of the tags "
                "without one and lowered it with 7.8%% and 21%% (0.246 -> 0.227, 0.258 -> 0.200; "
                "docs/joint-space.md). train_words='new' (from_word2vec's default) trains such tags as words.",
                lacking, len(tags), 100 * lacking / len(tags))
        start = default_timer()
        images = images[np.linspace(0, len(images) - 1, min(len(images), CALIBRATION_IMAGES)).astype(np.int64)]
        P = principal_directions(self.wv.vectors, outside, rows=images)  # D x outside, the top first
        top = P[:, :k]

        def unit_rows(idx):  # (float64, its norms)
            return unit(np.asarray(self.wv.vectors[idx], dtype=np.float64))

        share_ref = sum(float(np.sum((unit_rows(reference[lo:lo + DIRECTIONS_BLOCK])[0] @ top) ** 2))
                        for lo in range(0, len(reference), DIRECTIONS_BLOCK)) / len(reference)
        rng = np.random.default_rng([int(self.seed), 0x6E6577])
        vectors = self._writable_vectors()
        n_moved, shares = 0, 0.0
        for lo in range(0, len(new), DIRECTIONS_BLOCK):  # a block at a time: no float64 copy of millions of tags
            part = new[lo:lo + DIRECTIONS_BLOCK]
            U, norms = unit_rows(part)
            share = np.sum((U @ top) ** 2, axis=1)
            shares += float(share.sum())
            s = np.sqrt(np.minimum(1.0, share_ref / np.maximum(share, 1e-12)))
            D = rng.standard_normal((len(part), dim))
            D -= (D @ P) @ P.T  # outside the images' directions, and orthogonal to the word itself: to its
            rest = unit(U - (U @ P) @ P.T)[0]  # part outside them (the rest is along them, which D already leaves)
            D -= np.sum(D * rest, axis=1, keepdims=True) * rest
            D = unit(D)[0]
            moved = s < 1.0 - 1e-6  # (one already at the pretrained tags' share, to float rounding, stays)
            out = (s[:, None] * U + np.sqrt(1.0 - s * s)[:, None] * D) * norms[:, None]
            vectors[part[moved]] = out[moved].astype(REAL)
            n_moved += int(moved.sum())
        self.wv.norms = None
        logger.info("space_calibrate_new_words: %i of %i word(s) without a pretrained vector had more of their "
                    "norm in the images' top %i directions than the %i pretrained tags' %.3f (theirs: %.3f on "
                    "average), and now have that (%.2fs)", n_moved, len(new), k, len(reference), share_ref,
                    shares / len(new), default_timer() - start)

    def _train_epoch_corpusfile(self, corpus_file, cur_epoch=0, total_examples=None, total_words=None,
                                callbacks=(), **kwargs):
        """gensim's file-mode epoch (a thread per worker, each on its own part of the file), with
        what the workers share (:class:`~gensim_im2vec.corpusfile.CorpusFileEpoch`); a worker's
        error is raised here, once every worker has stopped."""
        epoch = corpusfile.CorpusFileEpoch.open(self, corpus_file, cur_epoch, total_examples, total_words)
        if corpusfile.uses_gensim_reader(self):  # a text-only model: gensim's file-mode kernel and its vocabulary
            result = super()._train_epoch_corpusfile(
                corpus_file, cur_epoch=cur_epoch, total_examples=total_examples, total_words=total_words,
                callbacks=callbacks, corpus_file_epoch=epoch, **kwargs)
        else:  # Im2Vec's reader: gensim's epoch would first copy every key into a C++ map (its CythonVocab)
            result = self._train_epoch_ranges(corpus_file, epoch, cur_epoch, total_examples, total_words, **kwargs)
        if epoch.error is not None:
            raise epoch.error
        return result

    def _train_epoch_ranges(self, corpus_file, epoch, cur_epoch, total_examples, total_words, **kwargs):
        """A file-mode epoch read by Im2Vec's reader: a thread per worker, each running gensim's
        ``_worker_loop_corpusfile`` (its working memory, :meth:`_do_train_epoch`, its report), and
        gensim's progress log over their reports. gensim's own epoch does the same after building a
        ``CythonVocab`` of every key of the vocabulary (each image's key encoded and copied into a C++
        map: 1.5 s and ≈ 100 MiB an epoch at 1M images), which only its own kernel reads. (train()
        checked `total_words`: :func:`~gensim_im2vec.corpusfile.check_total_words`.)"""
        reports: queue.Queue = queue.Queue()
        threads = [
            threading.Thread(target=self._worker_loop_corpusfile, args=(corpus_file, i, 0, None, reports),
                             kwargs={**kwargs, "cur_epoch": cur_epoch, "total_examples": total_examples,
                                     "total_words": total_words, "corpus_file_epoch": epoch},
                             daemon=True, name=f"im2vec-file-worker-{i}")
            for i in range(int(self.workers))]
        for t in threads:
            t.start()
        return self._log_epoch_progress(progress_queue=reports, job_queue=None, cur_epoch=cur_epoch,
                                        total_examples=total_examples, total_words=total_words,
                                        is_corpus_file_mode=True)

    def _do_train_epoch(self, corpus_file, thread_id, offset, cython_vocab, thread_private_mem, cur_epoch,
                        total_examples=None, total_words=None, corpus_file_epoch=None, **kwargs):
        """One worker's part of a file-mode epoch: gensim's kernel for a text-only model, else
        :func:`gensim_im2vec.corpusfile.train_ranges` (jobs through :meth:`_do_train_job`)."""
        try:
            if corpusfile.uses_gensim_reader(self):
                return super()._do_train_epoch(
                    corpus_file, thread_id, offset, cython_vocab, thread_private_mem, cur_epoch,
                    total_examples=total_examples, total_words=total_words, **kwargs)
            return corpusfile.train_ranges(self, corpus_file_epoch, thread_private_mem)
        except Exception as err:  # a worker that dies silently would leave train() waiting forever
            corpus_file_epoch.fail(err)
            return 0, 0, 0

    def _next_seed(self) -> int:
        rnd = self.random
        draw = rnd.randint if hasattr(rnd, "randint") else rnd.integers
        return int(draw(0, 2**24)) * (2**24) + int(draw(0, 2**24))

    def _job_seeds(self, n_runs: int) -> np.ndarray:
        """Two seeds per run of a job (its pair loop's, its space negatives'), from one draw of
        the model's generator: ``(n_runs, 2)`` uint64 below 2**48."""
        return np.random.default_rng(self._next_seed()).integers(0, 2**48, (n_runs, 2), dtype=np.uint64)

    def _train_epoch(self, data_iterable, *args, **kwargs):
        """gensim's epoch over an iterable (a thread per worker, one producer reading the corpus),
        with its errors raised here once the epoch's threads are done: a job's error, or the corpus
        iterator's own (e.g. an OSError reading a file mid-epoch). In gensim either ends its thread
        and ``train()`` waits for it forever.

        The producer reads the corpus through :func:`_epoch_corpus`, which stops at the first
        error, so a failed epoch does not read the rest of the corpus (at 100M documents, a whole
        epoch of reading); the workers skip the jobs left (:meth:`_do_train_job`). Any exception
        leaving here (Ctrl-C, which reaches the main thread while it waits for the workers'
        reports) halts the epoch the same way, after the jobs in flight have ended: no worker moves
        W once ``train()`` has raised, so the rows its end writes are W's (:class:`_Epoch`)."""
        epoch = self._epoch = _Epoch(int(self.workers))  # None between epochs (not saved)
        try:
            result = super()._train_epoch(_epoch_corpus(data_iterable, epoch, self.features is not None), *args,
                                          **kwargs)
        except BaseException:
            epoch.halt()
            epoch.settle()
            raise
        finally:
            self._epoch = None
        if epoch.errors:
            raise epoch.errors[0]
        return result

    def _worker_loop(self, job_queue, progress_queue):
        """gensim's worker thread of an epoch over an iterable, bound to that epoch (:class:`_Epoch`)
        for its whole life: once the epoch halts, the jobs left are skipped, even those a thread
        takes after ``train()`` has raised, whatever a later ``train()`` does."""
        # None: its epoch ended before the thread ran (halted)
        epoch = getattr(self, "_epoch", None) or _Epoch.ended()
        _WORKER.epoch = epoch
        epoch.enter()
        try:
            super()._worker_loop(job_queue, progress_queue)
        finally:
            _WORKER.epoch = None
            epoch.leave()

    def _log_epoch_progress(self, progress_queue=None, job_queue=None, *args, **kwargs):
        """gensim's wait for the workers' reports; when it is left by an exception (Ctrl-C arrives
        here) in an epoch over an iterable, the epoch halts and its reports are taken off the queue
        until its threads end: gensim's workers and producer would block on the full queues for
        the life of the process, the producer holding the corpus open."""
        try:
            return super()._log_epoch_progress(progress_queue, job_queue, *args, **kwargs)
        except BaseException:
            epoch = getattr(self, "_epoch", None)  # None in file mode
            if epoch is not None and progress_queue is not None:
                epoch.halt()
                epoch.settle(progress_queue)
            raise

    def _log_epoch_end(self, cur_epoch, example_count, total_examples, raw_word_count, total_words,
                       trained_word_count, elapsed, is_corpus_file_mode):
        """gensim's line at an epoch's end, which says "words" for tokens: its raw and effective
        counts hold the image tokens too. Here the effective ones are split into the image
        occurrences the epoch trained and the words; gensim's checks of the corpus's size follow."""
        images = max(self._image_occurrences - (getattr(self, "_epoch_images_from", 0) or 0), 0)
        logger.info("EPOCH %i: training on %i raw tokens (%i effective: %i image occurrences and %i words) took %.1fs, "
                    "%.0f effective tokens/s", cur_epoch, raw_word_count, trained_word_count, images,
                    max(trained_word_count - images, 0), elapsed, trained_word_count / max(elapsed, 1e-9))
        if is_corpus_file_mode:  # (gensim's: a corpus file's workers count their own parts)
            return
        if total_examples and total_examples != example_count:
            logger.warning("EPOCH %i: %i documents read, where total_examples said %i; give train() the corpus's "
                           "count (model.corpus_count after build_vocab on it)", cur_epoch, example_count,
                           total_examples)
        if total_words and total_words != raw_word_count:
            logger.warning("EPOCH %i: %i raw tokens read, where total_words said %i; give train() the corpus's "
                           "count (model.corpus_total_words after build_vocab on it)", cur_epoch, raw_word_count,
                           total_words)

    def _do_train_job(self, sentences, alpha, inits):
        """Train one job (:meth:`_train_job`); in an epoch over an iterable (:meth:`_train_epoch`) an
        error is kept for the epoch to raise, and once the epoch has an error or is halted the jobs
        are skipped."""
        epoch = getattr(_WORKER, "epoch", None)
        if epoch is None:  # file mode: corpusfile's workers catch their own errors
            return self._train_job(sentences, alpha, inits)
        if not epoch.begin_job():
            return 0, self._raw_word_count(sentences)
        try:
            return self._train_job(sentences, alpha, inits)
        except Exception as err:
            epoch.fail(err)
            return 0, self._raw_word_count(sentences)
        finally:
            epoch.end_job()

    def _train_job(self, sentences, alpha, inits):
        """Train one job: prepare it (GIL held), then per run of ~``image_batch`` image tokens,
        gather the features and run the kernel (GIL released).

        W is updated once per run: a whole job's worth of images (thousands) summed into one step
        overshoots when many of them look alike; runs of a few hundred keep the step stable and
        the sgemms efficient. ``prepare_job`` cuts the runs (at document ends) in the same pass
        that looks the tokens up.

        With several workers a job with images trains on the worker's own copy of W, folded into
        the shared W after each run (:class:`~gensim_im2vec.space.WorkerW`), whatever the head.
        """
        if self.hs:  # text-only hierarchical softmax: gensim's own kernel
            return super()._do_train_job(sentences, alpha, inits)
        limit = self.image_batch if self.features is not None else 0
        tokens, slots, bounds, rwin, rows, runs, _ = im2vec_inner.prepare_job(
            sentences, self.wv.key_to_index, self.wv.expandos["sample_int"], self._vocab_image_rows,
            bool(self.sample), int(self.window), bool(self.shrink_windows), self._next_seed(),
            max_images=max(limit, 0),
        )
        if self._gathered_words is not None and len(rows):  # (a job of text alone has no image to gather)
            self._gather_neighbour_words(sentences)
        seeds = self._job_seeds(len(runs) - 1)
        shared = self._w_workers if len(rows) else None
        W = shared.begin() if shared is not None else self.W
        try:
            if len(rows) and self._space_in_kernel():
                self._train_space_job(W, tokens, slots, bounds, rwin, rows, runs, seeds, alpha, inits, shared)
                return len(tokens), self._raw_word_count(sentences)
            for r in range(len(runs) - 1):
                t0, b0, r0 = (int(v) for v in runs[r])
                t1, b1, r1 = (int(v) for v in runs[r + 1])
                if t1 > t0:
                    if shared is not None:
                        shared.refresh()  # the run reads the shared W as it is now
                    self._train_run(W, tokens[t0:t1], slots[t0:t1], bounds[b0:b1 + 1] - t0, rwin[t0:t1],
                                    rows[r0:r1], seeds[r], alpha, inits)
                    if shared is not None:
                        shared.fold()
            if self._readout_sums is not None:  # (only the space head gathers them)
                self._readout_job(tokens, slots, bounds, runs, rows)
        finally:
            if shared is not None:
                shared.end()
        return len(tokens), self._raw_word_count(sentences)

    def _gather_neighbour_words(self, sentences) -> None:
        """Add a job's images and their words to the last epoch's (`space_neighbours`): the job's
        tokens looked up with the GIL held, as gensim's workers hold it to read their jobs, then their
        (image, word) pairs as one int64 array appended to the epoch's
        (:class:`~gensim_im2vec.neighbour_words.ImageWords`, de-duplicated as it grows)."""
        start = default_timer()
        gathered = self._gathered_words
        if gathered is None:  # (training ended meanwhile: an interrupted train() let it go)
            return
        self._add_image_words(sentences, gathered)
        with _STATS_LOCK:
            self._neighbour_seconds += default_timer() - start

    def _space_in_kernel(self) -> bool:
        """The space head's jobs run whole in the kernel (:func:`im2vec_inner.train_space_job`)
        unless an option only the per-run NumPy path has is set."""
        return (self.image_heads == "space" and self.space_candidates == "run" and not self.space_symmetric
                and self.W is not None and self.W.dtype == REAL)

    def _draw_space_negatives(self, seeds: np.ndarray) -> np.ndarray:
        """``space_negatives`` words per seed (a row each), from the tags' table (or the
        vocabulary's), drawn by the kernel's generator (:func:`im2vec_inner.draw_negatives`)."""
        idx, cum = self._space_negative_table()
        return im2vec_inner.draw_negatives(idx, cum, np.ascontiguousarray(seeds, dtype=np.uint64),
                                           int(self.space_negatives or 0))

    def _space_negative_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, cumulative table) the space negatives are drawn from: the tags', unless there
        are none or ``image_negatives="vocab"``."""
        if not len(self._neg_tag_idx) or self.image_negatives == "vocab":
            return self._neg_word_idx, self._neg_word_cum
        return self._neg_tag_idx, self._neg_tag_cum

    def _space_source(self):
        """The feature matrix the kernel may gather a job's rows from itself (an in-memory, C-contiguous
        float32 array), or None: a memory map or another dtype is read by
        :meth:`ImageFeatures.gather <gensim_im2vec.image_features.ImageFeatures.gather>`, which keeps
        a memory map's resident pages in check."""
        vectors = self.features.vectors
        if (isinstance(vectors, np.ndarray) and not isinstance(vectors, np.memmap) and vectors.dtype == REAL
                and vectors.flags.c_contiguous):
            return vectors
        return None

    def _space_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the feature matrix as the space step trains on them (normalised, centred)."""
        V, _ = self.features.gather(rows)
        return im2vec_inner.space_rows(V, None, self.feature_mean, bool(self.normalize_features))

    def _train_space_job(self, W, tokens, slots, bounds, rwin, rows, runs, seeds, alpha, inits, shared=None) -> None:
        """A job of the space head in one kernel call: per run, the words' pair loop, then the run's
        space step and W's update, GIL released throughout; what the runs need (pairs, negatives,
        candidates) is planned for the whole job first, also with the GIL released
        (:func:`im2vec_inner.plan_space_job`), and the kernel gathers each run's feature rows
        itself when they are in memory. The same arithmetic, in the same order, with the same
        random draws, as the per-run path (:meth:`_train_run`): one worker trains the same model
        bit for bit."""
        lock = self._space_lock
        neg_idx, neg_cum = self._space_negative_table()
        plan = JobPlan(*im2vec_inner.plan_space_job(tokens, slots, bounds, runs, len(self.wv), lock, neg_idx, neg_cum,
                                                    seeds[:, 1].copy(), int(self.space_negatives or 0)))
        source = self._space_source()
        if source is not None:  # the kernel gathers, normalises and centres each run's rows
            X, x_rows = source, rows[plan.image_slots]
        else:
            X, x_rows = self._space_rows(rows[plan.image_slots]), np.zeros(0, np.int64)
        anchor = self.space_anchor if self.space_pull and self.space_anchor is not None else np.zeros(
            (0, self.layer1_size), REAL)
        words_loss, space_loss, seconds = self._space_job_kernel(W, tokens, slots, bounds, rwin, runs,
                                                                 seeds[:, 0].copy(), X, x_rows, plan, anchor, alpha,
                                                                 inits, shared)
        if self._readout_sums is not None:
            self._readout_add(X if source is None else im2vec_inner.space_rows(
                source, x_rows, self.feature_mean, bool(self.normalize_features)), plan)
        with _STATS_LOCK:
            self._space_seconds += seconds
            if self.compute_loss:
                self.running_training_loss += words_loss + space_loss
            self._image_occurrences += int(np.count_nonzero(slots >= 0))

    def _space_job_kernel(self, W, tokens, slots, bounds, rwin, runs, seeds, X, x_rows, plan, anchor, alpha, inits,
                          shared=None):
        """One :func:`im2vec_inner.train_space_job` call on `W` (the model's, or a worker's copy of
        `shared`'s, folded into it after each run)."""
        work, neu1 = inits
        fold = {} if shared is None else dict(w_shared=shared.W, w_base=shared.base(), fold_lock=shared.lock)
        return im2vec_inner.train_space_job(
            self.wv.vectors, self.syn1neg, self._lockf, W, tokens, slots, bounds, rwin,
            self._neg_word_idx, self._neg_word_cum, self._neg_tag_idx, self._neg_tag_cum, work, neu1,
            runs[:, 1].copy(), seeds, X, plan.run_rows, x_rows, self.feature_mean, plan.cand, plan.run_cands,
            plan.run_move, plan.pair_row, plan.pair_col, plan.pair_w, plan.run_pairs, plan.cand_lock,
            np.ascontiguousarray(anchor, dtype=REAL),
            sg=int(self.sg), window=int(self.window), negative=int(self.negative), cbow_mean=int(self.cbow_mean),
            alpha=float(alpha), train_words=bool(self.train_words), train_outputs=self.train_outputs,
            tag_negatives=self.image_negatives == "tags", compute_loss=bool(self.compute_loss),
            train_images=self.train_images, alpha_w=float(alpha * self.image_alpha * self.space_alpha),
            temperature=self.space_temperature, alpha_u=float(alpha * self.space_word_alpha),
            pull=float(self.space_pull or 0.0), x_normalize=bool(self.normalize_features),
            decoder=float(self.space_decoder), bias=self._space_bias, **fold)

    def _train_run(self, W, tokens, slots, bounds, rwin, rows, seeds, alpha, inits) -> None:
        """One run through ``train_job`` (the slides' heads, or the space head's word pairs), then
        the space head's step (:func:`~gensim_im2vec.space.space_step`), on `W` (the model's, or
        the worker's copy)."""
        work, neu1 = inits
        heads = self.image_heads
        space = heads == "space"
        n_slots = len(rows)
        size = self.layer1_size
        W = W if W is not None else np.zeros((size, 1), dtype=REAL)
        if n_slots:
            V, inv_norms = self.features.gather(rows)
            if not self.normalize_features:
                inv_norms[:] = 1.0
            H = np.empty((n_slots, size), dtype=REAL)
            E = np.zeros((n_slots, size), dtype=REAL)
        else:
            V = np.zeros((1, W.shape[1]), dtype=REAL)
            inv_norms = np.ones(1, dtype=REAL)
            H = E = np.zeros((1, size), dtype=REAL)
        loss, _ = im2vec_inner.train_job(
            self.wv.vectors, self.syn1neg, self._lockf, W, V, inv_norms, H, E,
            tokens, slots, bounds, rwin, self._neg_word_idx, self._neg_word_cum,
            self._neg_tag_idx, self._neg_tag_cum, work, neu1,
            n_slots=n_slots, sg=int(self.sg), window=int(self.window), negative=int(self.negative),
            cbow_mean=int(self.cbow_mean), alpha=float(alpha), image_alpha=self.image_alpha,
            train_words=bool(self.train_words), train_outputs=self.train_outputs,
            train_images=self.train_images, tied=self.tied_image_targets,
            tag_negatives=self.image_negatives == "tags", compute_loss=bool(self.compute_loss),
            next_random=int(seeds[0]),
            image_context_document=self.image_context == "document",
            output_head=heads in ("output", "both"), input_head=heads in ("input", "both"),
            image_pairs=not space,
        )
        t_space = 0.0
        if space and n_slots:
            t0 = default_timer()
            Vn = im2vec_inner.space_rows(V, None, self.feature_mean, bool(self.normalize_features))
            loss += self._space_run(W, tokens, slots, bounds, Vn, int(seeds[1]), alpha)
            t_space = default_timer() - t0
        n_img = int(np.count_nonzero(slots >= 0)) if n_slots else 0
        with _STATS_LOCK:
            self._space_seconds += t_space
            if self.compute_loss:
                self.running_training_loss += loss
            self._image_occurrences += n_img

    def _vocab_tag_counts(self) -> np.ndarray:
        """Each vocabulary row's count in the image documents (``image_tag_counts``), float64;
        0 for words on no image and for the images' own rows."""
        counts = np.zeros(len(self.wv), dtype=np.float64)
        tags = self.image_tag_counts
        idx = key_rows(self.wv.key_to_index, list(tags))  # (at once: a VocabKeyIndex's images in one search)
        take = idx >= 0
        take[take] = self._vocab_image_rows[idx[take]] < 0
        counts[idx[take]] = np.fromiter(tags.values(), dtype=np.float64, count=len(tags))[take]
        return counts

    def _space_tag_bias(self) -> np.ndarray | None:
        """``space_tag_prior`` = γ > 0: each word's logit offset in the space step's softmax,
        ``−γ · log n_w`` with ``n_w`` the word's count in the image documents (1 for words on no
        image), per vocabulary row; None when γ is 0."""
        gamma = float(self.space_tag_prior)
        if not gamma > 0:
            return None
        return (-gamma * np.log(np.maximum(self._vocab_tag_counts(), 1.0))).astype(REAL)

    def _placed_words(self) -> int:
        """The vocabulary rows below which the words have their place: the text's pretrained ones and
        those an earlier ``train()`` trained. In two-stage the space step moves the words from here
        on (:meth:`_space_word_lock`), and they are the ones :meth:`_calibrate_new_words` may scale."""
        return max(int(self.n_pretrained_words), int(self.n_trained_words or 0))

    def _space_word_lock(self) -> np.ndarray:
        """Which input vectors the space step moves (1) or leaves (0): never an image's row; the
        words ``train_words`` lets learn; words without a pretrained vector always (two-stage
        leaves them at their random start otherwise); pretrained words too when ``space_pull``
        is set (each pulled back towards its text vector). With ``space_word_alpha=0`` none: no
        word moves, so none is planned as movable. Each factor is then multiplied by the word's
        ``wv.vectors_lockf``, as gensim's pair loop multiplies its step: a word a user locked (e.g.
        ``wv.intersect_word2vec_format(path, lockf=0.0)`` on pretrained vectors) stays where it is in
        the space step too (checked by :meth:`_check_lockf` before)."""
        lock = np.zeros(len(self.wv), dtype=REAL)
        if not self.space_word_alpha > 0:
            return lock
        placed = self._placed_words()
        if self.train_words is True or self.space_pull is not None:
            lock[:] = 1.0
        elif self.train_words == "new":  # as the pair loop's vectors_lockf: every word after the text's
            lock[int(self.n_pretrained_words):] = 1.0
        else:  # frozen words stay; words added since the last training (random starts) learn
            lock[placed:] = 1.0
        lock[self._vocab_image_rows >= 0] = 0.0
        lock *= self.wv.vectors_lockf  # (one factor for all, or one per row: _check_lockf)
        return lock

    def _space_run(self, W, tokens, slots, bounds, Vn, seed, alpha) -> float:
        """The space step of one run (:func:`gensim_im2vec.space.space_step`): the run's images
        against their documents' words, by cosine to the words' input vectors."""
        pair_slot, pair_word = run_pairs(tokens, slots, bounds, len(Vn))
        if not len(pair_slot):
            return 0.0
        negatives = self._draw_space_negatives(np.array([seed], np.uint64))[0]
        return space_step(
            W, self.wv.vectors, Vn, pair_slot, pair_word, negatives,
            alpha_w=alpha * self.image_alpha * self.space_alpha, alpha_u=alpha * self.space_word_alpha,
            temperature=self.space_temperature, symmetric=self.space_symmetric, word_lock=self._space_lock,
            anchor=self.space_anchor, pull=self.space_pull or 0.0, train_images=self.train_images,
            candidates=self.space_candidates, compute_loss=bool(self.compute_loss), decoder=self.space_decoder,
            bias=self._space_bias)

    def _remove_common_directions(self) -> None:
        """Take the directions every tag shares out of the image vectors (`space_common_directions`).

        The tags (the words of the image documents) share a mean direction and a few dominant ones
        (:func:`~gensim_im2vec.space.common_directions`). After training, ``W ← (I − Q·Qᵀ)·W`` with
        ``Q`` their orthonormal basis, so an image vector's cosine to a word is carried by the
        directions where words differ. The words keep their vectors; ``W`` itself changes, so
        :meth:`project` and the stored image rows stay one function. A few tags (fewer than the
        directions + 2) have no common direction to speak of: ``W`` is then kept, with a warning."""
        k = self.space_common_directions
        if k is None or self.W is None or not self.train_images:  # train_images=False: W stays as it is
            return
        rows = self._tag_rows()
        if len(rows) < k + 2:  # a direction common to the tags needs more tags than directions
            logger.warning("space: %i tag(s) with a vector, too few for %i common direction(s); W kept as trained",
                           len(rows), k + 1)
            return
        start = default_timer()
        self.space_directions = common_directions(self.wv.vectors, k, rows=rows).astype(REAL)
        remove_directions(self.W, self.space_directions)
        logger.info("space: %i common direction(s) of %i tags taken out of W (%.2fs)",
                    self.space_directions.shape[1], len(rows), default_timer() - start)

    def _tag_rows(self) -> np.ndarray:
        """The rows of ``wv`` of the tags (the words of the image documents), in row order."""
        return np.flatnonzero(self._vocab_tag_counts() > 0)

    def _epoch_begins(self) -> None:
        """An epoch of :meth:`train` begins (every worker idle): W moves from its first job on, so the
        images' rows of ``wv`` are no longer W's (:meth:`save` of the model in a callback leaves them
        out, to be written from W at load) until :meth:`_write_image_vectors` writes them (at this
        epoch's end for callbacks that read them, else as training ends); its last gathers the
        readout's sums (`space_readout`)."""
        self._epochs_begun += 1  # (from 0 as training began)
        self._epoch_images_from = self._image_occurrences  # (this epoch's images, for _log_epoch_end)
        if self.W is not None:
            self._image_rows_from_W = False  # the flag only: the rows are written when they always were
        if (self.space_readout > 0 and self.image_heads == "space" and self.features is not None
                and self._epochs_begun == self.epochs):
            if self._epochs_begun > 1:  # the image occurrences the epoch will train: as many as each before
                expected = self._image_occurrences / (self._epochs_begun - 1)
            else:  # (a one-epoch train(): the vocabulary's counts, which a smaller corpus than built on lowers)
                counts = self.wv.expandos.get("count")
                expected = (float(np.asarray(counts, dtype=np.float64)[self._vocab_image_rows >= 0].sum())
                            if counts is not None else 0.0)
            expected = min(expected, READOUT_MAX_IMAGES)
            rate = 1.0 if expected <= READOUT_GRAM_IMAGES else READOUT_GRAM_IMAGES / expected
            self._readout_sums = _ReadoutSums(self.features.dim, self.layer1_size, READOUT_MAX_IMAGES,
                                              gram_rate=rate, seed=self.seed)
        if (self.space_neighbours and self.image_heads == "space" and self.features is not None
                and self._epochs_begun == self.epochs):
            # the last epoch's images and their words (_gather_neighbour_words)
            self._gathered_words = ImageWords(len(self.wv.index_to_key))
            self._neighbour_seconds = 0.0

    def _readout_add(self, X: np.ndarray, plan) -> None:
        """Add a job's images to the readout's sums: `X` their rows as the space step trains on
        them (normalised, centred), in the order of `plan`'s rows, and as targets the mean unit
        vector of each one's words (each word once, the words as they are now)."""
        sums = self._readout_sums
        if sums is None or not len(X):
            return
        start = default_timer()
        run_of = np.repeat(np.arange(len(plan.run_rows) - 1), np.diff(plan.run_pairs))  # each pair's run
        word = plan.cand[plan.run_cands[run_of] + plan.pair_col]
        sums.add(X, mean_unit_words(self.wv.vectors, word, plan.run_rows[run_of] + plan.pair_row, plan.pair_w, len(X)))
        with _STATS_LOCK:  # part of what the space costs in training
            self._space_seconds += default_timer() - start

    def _readout_job(self, tokens, slots, bounds, runs, rows) -> None:
        """The readout's sums for a job of the per-run path (the kernel's job path adds its own
        plan's rows in :meth:`_train_space_job`)."""
        if not len(rows):
            return
        neg_idx, neg_cum = self._space_negative_table()
        plan = JobPlan(*im2vec_inner.plan_space_job(tokens, slots, bounds, runs, len(self.wv), self._space_lock,
                                                    neg_idx, neg_cum, np.zeros(max(len(runs) - 1, 1), np.uint64), 0))
        self._readout_add(self._space_rows(rows[plan.image_slots]), plan)

    def _fit_readout(self) -> None:
        """``R`` and ``c`` of `space_readout` from the last epoch's sums (:class:`_ReadoutSums`):
        ridge regression with an intercept, ``R = (Sxxᶜ + λI)⁻¹ Sxyᶜ`` on the centred sums, and
        ``c`` the intercept less the mean unit vector of the words with a trained vector."""
        sums, self._readout_sums = self._readout_sums, None
        if sums is None or sums.n < 2:
            if sums is not None:
                logger.warning("space_readout: %i image(s) with a word in the last epoch, too few to fit the "
                               "readout; it is left as it was", sums.n)
            return
        if sums.g < 2:  # a sampled Gram of fewer rows than the epoch's images were fewer than expected
            logger.warning("space_readout: the Gram's sample holds %i of the last epoch's %i image occurrences, too "
                           "few to fit the readout; it is left as it was", sums.g, sums.n)
            return
        start = default_timer()
        n, g = sums.n, sums.g
        xm, ym, xs = sums.sx / n, sums.sy / n, sums.sxs / g
        # the Gram's rows centred on their own mean, scaled to the n images (λ keeps its weight against
        # them); with every row in it (g = n) that is the centred Gram of all of them, to the bit
        sxx = (sums.sxx - g * np.outer(xs, xs)) * (n / g)
        sxx[np.diag_indices_from(sxx)] += READOUT_PENALTY
        R = scipy.linalg.solve(sxx, sums.sxy - n * np.outer(xm, ym), assume_a="pos")
        try:
            words = self._word_space_index()
            m = l2_normalize(np.asarray(self.wv.vectors[words]), out_dtype=np.float64).mean(axis=0)
        except ValueError:  # no word with a trained vector: nothing to centre on
            m = np.zeros(self.layer1_size)
        # (the tags' common directions, space_common_directions, are W's alone: taken out of the readout
        # too, the joint demo's zero-shot rose on its split, 0.278 -> 0.287, and fell on five others,
        # 1.00 -> 0.94 x ridge, with seen image -> word 0.260 -> 0.253; docs/joint-space.md)
        c = ym - m - xm @ R
        left = self._readout_directions()
        if left is not None:  # the readout without the tags' top principal directions: R <- R (I - P Pᵀ)
            R -= (R @ left) @ left.T
            c -= left @ (left.T @ c)
        self.readout_W = np.ascontiguousarray(R.T, dtype=REAL)
        self.readout_offset = c.astype(REAL)
        logger.info("space: readout fitted on %i images (%i x %i; their features' Gram from %i of them%s; %.2fs)",
                    n, *R.shape, g, "" if left is None else f"; the tags' top {left.shape[1]} directions left to W",
                    default_timer() - start)

    def _readout_directions(self) -> np.ndarray | None:
        """The tags' top `space_readout_directions` principal directions (D × k), which the readout
        leaves out (:func:`~gensim_im2vec.space.principal_directions`), or None (0, or too few tags:
        a warning)."""
        k = self.space_readout_directions
        if not k:
            return None
        rows = self._tag_rows()
        if len(rows) < k + 2 or k >= self.layer1_size:
            logger.warning("space_readout_directions=%i: %i tag(s) with a vector in %i dimensions, too few for "
                           "%i principal direction(s); the readout keeps every direction", k, len(rows),
                           self.layer1_size, k)
            return None
        return principal_directions(self.wv.vectors, k, rows=rows)

    @property
    def space_readout(self) -> float:
        """β, the readout's weight in every image vector (see the class's parameters). Set after
        training, the images' rows of ``wv`` are written again with the new β, so that ``wv`` and
        :meth:`project` stay one function (a model whose readout is not fitted yet keeps its rows:
        the next ``train()`` writes them). A write that fails (e.g. a `vectors_file` in use) leaves
        the old β, and setting the new one again writes them; at 100M images it is a pass over the
        features, into the model's `vectors_file` when it has one."""
        return self.__dict__.get("_space_readout", 0.0)

    @space_readout.setter
    def space_readout(self, beta: float) -> None:
        _check_non_negative("space_readout", beta)
        heads = self.__dict__.get("image_heads", "space")
        if beta and heads != "space":
            raise ValueError(f"space_readout sums a readout into the space head's image vectors; "
                             f"image_heads={heads!r} has none. Use image_heads='space' or space_readout=0.")
        old, self.__dict__["_space_readout"] = self.__dict__.get("_space_readout"), float(beta)
        if (old is not None and float(beta) != old and self.__dict__.get("readout_W") is not None
                and self.W is not None and self.features is not None):  # a fitted readout: a trained model
            self._rows_after_setting("space_readout", "_space_readout", old)

    def _rows_after_setting(self, name: str, attr: str, old: float) -> None:
        """The images' rows of ``wv`` written again after the setting `name` (kept in `attr`) changed
        from `old`; a write that fails puts `old` back (setting the new value again writes them)."""
        start = default_timer()
        self._follow_vocab()  # (wv's keys reordered or added since: the rows are written where they are now)
        self._image_rows_from_W = False  # until every row is written with the new value
        try:
            self._write_image_vectors()
        except BaseException:
            self.__dict__[attr] = old
            raise
        logger.info("%s %g -> %g: the images' rows of wv written again (%.2fs)", name, old, self.__dict__[attr],
                    default_timer() - start)

    def _readout_on(self) -> bool:
        return self.space_readout > 0 and self.readout_W is not None

    # ------------------------------------------------------------------ the neighbours' tags
    @property
    def space_neighbour_weight(self) -> float:
        """γ, the weight of the nearest training images' words in every image vector
        (`space_neighbours`, :meth:`fit_neighbours`). Set on a model whose neighbours are fitted, the
        images' rows of ``wv`` are written again with the new γ (0: the vectors as they are without
        them), so that ``wv`` and :meth:`project` stay one function, as `space_readout`'s setter does;
        a write that fails (Ctrl-C) leaves the old γ, and the rows written so far until it is set
        again, to any value (or a save, which leaves them out to be written at load)."""
        return self.__dict__.get("_space_neighbour_weight", 1.0)

    @space_neighbour_weight.setter
    def space_neighbour_weight(self, weight: float) -> None:
        _check_neighbour_weight(weight)
        old, self.__dict__["_space_neighbour_weight"] = self.__dict__.get("_space_neighbour_weight"), float(weight)
        if (old is not None and (float(weight) != old or not self._image_rows_from_W)
                and self.__dict__.get("neighbour_keys") is not None):
            self._rows_after_setting("space_neighbour_weight", "_space_neighbour_weight", old)

    def fit_neighbours(self, documents: Iterable[Sequence[str]], *, k: int | None = None,
                       weight: float | None = None) -> Im2Vec:
        """Write into every image vector the words of its nearest training images, as a ``train()``
        with `space_neighbours` does as it ends, for a model trained without it (or to fit again
        with another `k`): kNN tag transfer, in the space, where gensim's cosine reads it.

        Each image's vector, a row of ``model.wv`` and :meth:`project` of any features alike, becomes

            unit(v) + γ · unit( Σ_j s_j^p · b̃_j )

        with ``v`` the vector it had, ``j`` the `k` images of `documents` nearest by the cosine of
        the features (a training image finds itself, at cosine 1), ``s_j`` that cosine, ``p`` =
        :data:`NEIGHBOUR_POWER` (20: a neighbour at cosine 0.9 weighs 0.12, one at 0.8 0.01), and
        ``b̃_j`` image j's words *whitened*: the sum of their unit vectors times ``(G + λI)⁻¹``, ``G``
        the mean outer product of the unit vectors of every word of the images' documents, λ =
        :data:`NEIGHBOUR_WHITEN`, then unit length (a plain sum lies nearest the general words every
        image shares; whitened, its nearest words by cosine are its own). γ is
        `space_neighbour_weight`. On the demo, seeds 1-3 (``benchmarks/neighbour_bags.py``,
        docs/joint-space.md): two-stage word → held-out images 0.113 → 0.154 (kNN 0.150),
        analogies 0.23 → 0.59; joint word → image 0.149 → 0.182.

        One pass over `documents` (an image's words are the other words of the documents it is in
        that have a vector): the images of `documents`, and those alone, become the neighbours; the
        words' and the images' vectors are read as they are now. `k` and `weight` become the
        model's `space_neighbours` and `space_neighbour_weight`, so each later ``train()`` fits
        them again as it ends, from its own last epoch (training moves the vectors they were read
        from). Kept with the model (:meth:`save`): the images' keys and their words (a 4-byte
        position each, into the whitened vectors of the words they use), their features found by
        key when first needed (from the features the model holds then); :meth:`project` compares
        new features with every one of those images (exact, in blocks: ``n × n_features`` floats in
        memory; no ANN index yet, so not for 100M images: above :data:`NEIGHBOUR_EXACT_MAX` it is
        refused). Interrupted while the rows are written (Ctrl-C), the model's settings and fit are
        those before the call, and the rows written so far stay until the next write: setting
        `space_neighbour_weight`, to any value, writes them (a save leaves them out, to be written
        at load).

        Parameters
        ----------
        documents : iterable of list of str
            The training documents (the images' tags); images the model does not hold are skipped.
        k : int, optional
            Nearest images each vector takes the words of (default: `space_neighbours`, or
            :data:`NEIGHBOURS` when that is 0).
        weight : float, optional
            γ, their weight against the image's own vector (default: `space_neighbour_weight`).

        Returns
        -------
        Im2Vec
            The model itself (its images' rows of ``wv`` written again).

        Examples
        --------
        >>> from gensim_im2vec import Im2Vec
        >>> from gensim_im2vec.synthetic import make_corpus
        >>> data = make_corpus(n_classes=3, n_images=60, n_features=16, n_text_sentences=60, seed=0)
        >>> model = Im2Vec(data.docs, image_features=data.features, vector_size=16, min_count=1, epochs=2, workers=1)
        >>> model = model.fit_neighbours(data.docs, k=5)
        >>> key = next(d[0] for d in data.docs if d[0].startswith("img:"))
        >>> bool(abs(model.wv[key] - model.project(data.features[key])).max() < 1e-4)
        True
        >>> model.space_neighbours  # the next train() fits them again as it ends
        5
        """
        start = default_timer()
        self._refuse_during_training("fit_neighbours")
        k = (self.space_neighbours or NEIGHBOURS) if k is None else k
        if not is_int(k) or k < 1:
            raise ValueError(f"fit_neighbours: k must be a positive int, got {k!r}.")
        weight = self.space_neighbour_weight if weight is None else weight
        try:
            _check_neighbour_weight(weight)
        except ValueError:
            raise ValueError(f"fit_neighbours: weight (the model's space_neighbour_weight) must be a finite number "
                             f">= 0, got {weight!r}.") from None
        if self.image_heads != "space":
            raise ValueError(f"fit_neighbours adds to the space head's image vectors; this model has "
                             f"image_heads={self.image_heads!r}. Train one with image_heads='space' (the default).")
        if self.features is None or not (self._vocab_image_rows >= 0).any():
            raise ValueError("fit_neighbours: this model holds no image (no image_features, or none of its keys in "
                             "the vocabulary); build it with Im2Vec(documents, image_features=...).")
        if self.W is None or self.feature_mean is None:
            raise ValueError("fit_neighbours needs a trained space: train the model first (model.train(...)).")
        if isinstance(documents, (str, bytes)):
            raise TypeError("fit_neighbours: documents must be an iterable of token lists, got a str.")
        gathered = ImageWords(len(self.wv.index_to_key))
        self._add_image_words(documents, gathered)
        words = gathered.pairs.result()
        n_img = count_images(words, gathered.base)
        if not n_img:
            raise ValueError("fit_neighbours: no document holds an image of this model with a word of it; give the "
                             "documents the model was trained on.")
        self._check_neighbour_search(n_img, "fit_neighbours")
        before = {name: self.__dict__.get(name) for name in _NEIGHBOUR_STATE}
        self.space_neighbours, self._previous_pool = int(k), None
        self.__dict__["_space_neighbour_weight"] = float(weight)
        try:
            self._fit_neighbour_words(words, gathered.base, start)
        except BaseException:  # (e.g. Ctrl-C while the rows are written) the settings and the fit as they were;
            self.__dict__.update(before)  # rows already written stay until the next write (a save leaves them
            self._image_rows_from_W = False  # out, to be written at load)
            raise
        return self

    def _pool_words(self) -> NeighbourPool | None:
        """The fitted images and their words, by key (a vocabulary rebuilt meanwhile renumbers them):
        the fit's own arrays and key lists, which :meth:`_drop_neighbours` then lets go of (no copy,
        nothing per image in Python beyond the key list the fit held); None for bags saved without
        their words (by fit_neighbours before 2026-12-07)."""
        if self.neighbour_tag_keys is None:
            return None
        return NeighbourPool(self.neighbour_keys, self.neighbour_bag_ptr, self.neighbour_bag_words,
                             self.neighbour_tag_keys)

    def _pool_keys(self, pool: NeighbourPool, base: int, keep=None) -> np.ndarray:
        """`pool` (:meth:`_pool_words`) as :meth:`_add_image_words` gathers words: sorted (image, word)
        keys ``image · base + word`` by vocabulary index, the images that are still images of the
        model with their words that are still its words (:func:`~gensim_im2vec.neighbour_words.pool_keys`)."""
        return pool_keys(pool, self.wv.key_to_index, self._vocab_image_rows, base, keep)

    def _check_neighbour_search(self, n: int, what: str) -> None:
        """The search `space_neighbour_index` names, checked for `n` fitted images before `what` fits:
        a faiss index faiss can build with no more lists than images, or the exact search up to
        :data:`NEIGHBOUR_EXACT_MAX` images."""
        _check_neighbour_index(self.space_neighbour_index, self.features.dim, n)
        if self.space_neighbour_index == "exact" and n > NEIGHBOUR_EXACT_MAX:
            raise ValueError(self._too_many_for_neighbours(n, what))

    def _too_many_for_neighbours(self, n: int, what: str) -> str:
        gb = n * self.features.dim * 4 / 1e9
        return (f"{what}: space_neighbours compares every image with each of the {n:,} training images, exactly "
                f"(their features in memory, {gb:.1f} GB, and {n:,}² comparisons to fit: about 9 minutes at 200,000 "
                f"images on 2 cores, 25 times that at 1M), and takes at most NEIGHBOUR_EXACT_MAX = "
                f"{NEIGHBOUR_EXACT_MAX:,} of them. Give it a faiss index over the features instead "
                f"(space_neighbour_index='IVF4096,PQ64', say), train with space_neighbours=0, or raise "
                f"gensim_im2vec.model.NEIGHBOUR_EXACT_MAX to run it exactly anyway.")

    def _add_image_words(self, documents: Iterable[Sequence[str]], gathered: ImageWords) -> None:
        """Add the images of `documents` to `gathered`: each one with the other words of the documents
        it is in that the vocabulary has, as (image, word) pairs of vocabulary indices in NumPy arrays
        (:func:`~gensim_im2vec.neighbour_words.add_documents`; a dict per image cost about 700 bytes
        an image, the distinct pairs cost 8 bytes each)."""
        add_documents(documents, self.wv.key_to_index, self._vocab_image_rows, gathered)

    def _fit_neighbour_words(self, words: np.ndarray, base: int, start: float) -> None:
        """The neighbours' state from `words`, sorted distinct (image, word) keys ``image · base +
        word`` (:meth:`_add_image_words`), at `space_neighbours` and `space_neighbour_weight`, and the
        images' rows of ``wv`` written with it. The images in vocabulary order, each one's words in
        vocabulary order (the keys' order): the same state whatever order the documents came in (a
        train()'s workers, or fit_neighbours' documents)."""
        images, ptr, tag_ids, bag_words = bags_from_pairs(words, base)
        U = l2_normalize(np.asarray(self.wv.vectors[tag_ids], dtype=np.float64), out_dtype=np.float64)
        M = np.linalg.inv(U.T @ U / len(U) + NEIGHBOUR_WHITEN * np.eye(U.shape[1]))
        vectors = (U @ M).astype(REAL)  # each tag's unit vector, whitened
        scale = np.empty(len(images), dtype=REAL)
        for lo in range(0, len(images), _WRITE_CHUNK):
            hi = min(lo + _WRITE_CHUNK, len(images))
            B = scipy.sparse.csr_matrix((np.ones(ptr[hi] - ptr[lo], dtype=REAL), bag_words[ptr[lo]:ptr[hi]],
                                         ptr[lo:hi + 1] - ptr[lo]), shape=(hi - lo, len(vectors)))
            scale[lo:hi] = 1.0 / np.maximum(np.linalg.norm(B @ vectors, axis=1), 1e-12)
        keys = self.wv.index_to_key
        self.neighbour_keys = [keys[i] for i in images.tolist()]
        self.neighbour_bag_ptr, self.neighbour_bag_words, self.neighbour_bag_scale = ptr, bag_words, scale
        self.neighbour_word_vectors, self.neighbour_tag_keys = vectors, [keys[t] for t in tag_ids.tolist()]
        self.neighbour_k, self.neighbour_index = int(self.space_neighbours), self.space_neighbour_index
        self.neighbour_nprobe = int(self.space_neighbour_nprobe)
        # (names this fit's faiss index in the file saved beside the model: a file of another fit is not read)
        self.neighbour_index_token = None if self.neighbour_index == "exact" else uuid.uuid4().hex
        self.__dict__.pop("_neighbour_index_file", None)  # (the index saved of the fit before: not this one's)
        self._neighbour_search = None
        try:
            self._neighbour_features()  # once, before the rows are written on several threads
        except BaseException as err:  # (e.g. faiss out of memory): no half-fitted state for the rows' next write
            self.neighbour_keys = None
            self._drop_neighbours("a failed fit")
            if isinstance(err, RuntimeError):  # faiss's, building the index over these features
                raise ValueError(f"space_neighbour_index={self.space_neighbour_index!r}: faiss could not build it "
                                 f"over these {len(images):,} images' features: {_faiss_reason(err)}. Set another "
                                 f"space_neighbour_index (or 'exact').") from None
            raise
        self._image_rows_from_W = False
        self._write_image_vectors()
        logger.info("neighbours: %i images' words (%i distinct words) in every image vector, k=%i, weight %g "
                    "(%.2fs)", len(images), len(tag_ids), self.neighbour_k, self.space_neighbour_weight,
                    default_timer() - start)

    def _neighbours_on(self) -> bool:
        return self.neighbour_keys is not None and self.space_neighbour_weight > 0

    def _drop_neighbours(self, why: str) -> None:
        """Forget the neighbours' fitted state (`why`: what moved the vectors it was read from)."""
        if self.__dict__.get("neighbour_keys") is not None:
            if self.space_neighbours and why == "train()":
                logger.info("train(): the neighbours' words leave the image vectors until it ends "
                            "(space_neighbours=%i: fitted again from its last epoch)", self.space_neighbours)
            else:
                logger.info("%s: the neighbours' words leave the image vectors (they were read from the vectors "
                            "this changes); call model.fit_neighbours(documents) again after it", why)
        self.neighbour_keys = self.neighbour_bag_ptr = self.neighbour_bag_words = self.neighbour_bag_scale = None
        self.neighbour_word_vectors = self.neighbour_tag_keys = None
        self.neighbour_k, self.neighbour_index, self.neighbour_nprobe = 0, "exact", 0
        self.neighbour_index_token = None
        self._neighbour_search = None

    def _neighbour_features(self):
        """The search over the unit feature rows of the fitted images, found by key in the model's
        features (:class:`_ExactNeighbours`, or :class:`_FaissNeighbours` for a faiss
        `space_neighbour_index`): built once, kept until the features change or the model is saved."""
        search = self._neighbour_search
        if search is None:
            index, rows_of = self.wv.key_to_index, self._vocab_image_rows
            at = key_rows(index, self.neighbour_keys)  # (at once: a VocabKeyIndex searches its images together)
            rows = np.where(at >= 0, rows_of[np.maximum(at, 0)], -1) if len(at) else np.zeros(0, dtype=np.int64)
            if (rows < 0).any():
                gone = [k for k, r in zip(self.neighbour_keys, rows.tolist()) if r < 0]
                raise ValueError(f"fit_neighbours' images {gone[:3]} are no longer images of this model (its "
                                 f"vocabulary or features changed): call model.fit_neighbours(documents) again.")
            if self.neighbour_index == "exact":
                search = _ExactNeighbours(self.features, rows)
            else:
                nprobe = self.neighbour_nprobe or self.space_neighbour_nprobe
                saved = self.__dict__.get("_neighbour_index_file")
                if self.__dict__.get("neighbour_index_token") is None:  # (fitted before indexes were saved)
                    self.neighbour_index_token, saved = uuid.uuid4().hex, None
                search = None if saved is None else _FaissNeighbours.read(
                    saved, self.neighbour_index_token, self._neighbour_digest(), self.features, rows,
                    self.neighbour_index, nprobe, self.neighbour_k)
                if search is None:
                    search = _FaissNeighbours(self.features, rows, self.neighbour_index, nprobe, self.neighbour_k)
            self._neighbour_search = search
        return search

    def _neighbour_order(self, idx: np.ndarray) -> np.ndarray:
        """The images at vocabulary indices `idx` in the order their rows are best written in: as given,
        unless the neighbours' search re-ranks an IVF index's candidates from the features; then grouped
        by the IVF list each fitted image is in (the images not fitted first), so that a block of
        queries shares its candidates and each of their feature rows is read once a block, not once a
        query (docs/scale.md: the fit's reads at 100M images). The rows written are the same (to float
        rounding: the chunks differ)."""
        search = self._neighbour_features()
        lists = search.lists() if isinstance(search, _FaissNeighbours) else None
        if lists is None or len(idx) < 2:
            return idx
        # (by feature row, not vocabulary index: the search's rows stay right when wv's keys are reordered)
        fitted, order = search.rows, search.rows_order()
        want = self._vocab_image_rows[idx]
        pos = order[np.searchsorted(fitted, want, sorter=order).clip(0, len(fitted) - 1)]
        key = np.where(fitted[pos] == want, lists[pos], -1)
        return idx[np.argsort(key, kind="stable")]

    def _with_neighbours(self, H: np.ndarray, V: np.ndarray, dtype=REAL) -> np.ndarray:
        """``unit(H) + weight · unit(Σ_j s_j^p · b̃_j)`` for image vectors `H` of the feature rows `V`;
        ``b̃_j`` = image j's whitened tag vectors summed, times its scale (kept as word lists)."""
        search, k = self._neighbour_features(), min(self.neighbour_k, len(self.neighbour_keys))
        Q = l2_normalize(np.asarray(V, dtype=REAL), out_dtype=REAL)
        term = np.empty((len(Q), self.neighbour_word_vectors.shape[1]), dtype=np.float64)
        for top in range(0, len(Q), search.span):
            self._neighbour_terms(search, k, Q[top:top + search.span], term[top:top + search.span])
        out = l2_normalize(np.asarray(H, dtype=np.float64), out_dtype=np.float64)
        out += self.space_neighbour_weight * l2_normalize(term, out_dtype=np.float64)
        return out.astype(dtype, copy=False)

    def _neighbour_terms(self, search, k: int, Q: np.ndarray, term: np.ndarray) -> None:
        """``Σ_j s_j^p · b̃_j`` of the unit queries `Q` into `term`, a block at a time; a batch whose
        candidates are read from the features is searched grouped by IVF list (:meth:`_FaissNeighbours.plan`)."""
        ptr, bag_words, scale = self.neighbour_bag_ptr, self.neighbour_bag_words, self.neighbour_bag_scale
        vectors = self.neighbour_word_vectors
        plan = search.plan(Q)
        for lo in range(0, len(Q), search.block):
            if plan is None:
                at, probes = slice(lo, lo + search.block), None
            else:
                at = plan[0][lo:lo + search.block]
                probes = plan[1][at], plan[2][at]
            S, idx = search.search(Q[at], k, probes)
            w = S.clip(0).astype(np.float64) ** NEIGHBOUR_POWER * scale[idx]
            # the neighbours' bags as one sparse matrix over the whitened tags: a row per image
            flat = idx.ravel()
            starts = ptr[flat]
            lens = ptr[flat + 1] - starts
            ends = np.cumsum(lens)
            pos = np.repeat(starts - (ends - lens), lens) + np.arange(int(ends[-1]) if len(ends) else 0)
            A = scipy.sparse.csr_matrix((np.repeat(w.ravel(), lens), (np.repeat(np.arange(len(flat)) // k, lens),
                                                                    bag_words[pos])), shape=(len(idx), len(vectors)))
            term[at] = A @ vectors

    def _plan_analogies(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`space_analogies` as arrays: x's and y's feature rows, a's and b's vocabulary rows. A
        question whose images are not images of the vocabulary, or whose words are not its words
        (a word below ``min_count``, as gensim leaves such words out of sentences), is left out with
        a warning that names the first; none left is an error."""
        k2i, rows = self.wv.key_to_index, self._vocab_image_rows
        out, skipped = [], []
        for n, (x, a, b, y) in enumerate(self.space_analogies):
            ix, ia, ib, iy = (k2i.get(key) for key in (x, a, b, y))
            if (None in (ix, ia, ib, iy) or rows[ix] < 0 or rows[iy] < 0 or rows[ia] >= 0 or rows[ib] >= 0
                    or x == y):
                skipped.append(n)
                continue
            out.append((rows[ix], rows[iy], ia, ib))
        if skipped:
            n = skipped[0]
            msg = (f"{len(skipped)} of {len(self.space_analogies)} space_analogies are not (image x, word a, word "
                   f"b, image y) of this vocabulary with x != y, e.g. [{n}] = {self.space_analogies[n]!r}")
            if not out:
                raise ValueError(msg + "; none is left to train on. Give questions whose images and words the "
                                       "vocabulary has (x − a + b → y).")
            logger.warning("%s; they are left out", msg)
        x_rows, y_rows, a, b = (np.array(c, dtype=np.int64) for c in zip(*out))
        return x_rows, y_rows, a, b

    def _space_analogy_epoch(self) -> None:
        """The analogy term, at an epoch's end (every worker idle): `ANALOGY_STEPS` steps of
        :func:`~gensim_im2vec.space.analogy_step` on ``W``, each over at most `ANALOGY_BATCH`
        questions against their own images and `space_analogy_negatives` other images of the
        vocabulary (all of them when there are fewer), the words' current vectors giving each
        question's shift ``û_b − û_a``."""
        plan = self._analogy_plan
        if plan is None or self.W is None:
            return
        start = default_timer()
        x_all, y_all, a_all, b_all = plan
        words = self.wv.vectors  # as they are this epoch (joint training moves them)
        shift_all = l2_normalize(words[b_all], out_dtype=REAL) - l2_normalize(words[a_all], out_dtype=REAL)
        images = self._vocab_image_rows[self._vocab_image_rows >= 0]
        rng = np.random.default_rng((int(self.seed), self._analogy_epochs))
        self._analogy_epochs += 1
        k = self.space_analogy_negatives
        with threadpool_limits(limits=max(int(self.workers), 1), user_api="blas"):
            for _ in range(ANALOGY_STEPS):
                pick = (rng.choice(len(x_all), ANALOGY_BATCH, replace=False) if len(x_all) > ANALOGY_BATCH
                        else slice(None))
                x, y = x_all[pick], y_all[pick]
                neg = images if not k or len(images) <= k else images[rng.integers(0, len(images), k)]
                rows = np.unique(np.concatenate([x, y, neg]))
                X = self._space_rows(rows)
                self.space_analogy_loss = analogy_step(self.W, X, np.searchsorted(rows, x), np.searchsorted(rows, y),
                                                       shift_all[pick], alpha=self.space_analogy_alpha)
        self.space_analogy_seconds += default_timer() - start

    def _write_image_vectors(self, among: np.ndarray | None = None, into: np.ndarray | None = None) -> None:
        """Write every vocabulary image's vector (:meth:`project_rows`) into ``model.wv.vectors``, in
        chunks, on ``workers`` threads (one BLAS thread each): done once after the epochs, on one
        thread it was the part of ``train()`` that more workers did not shorten (9% of a 2-epoch
        ``train()`` of 20,000 images, ``benchmarks/bench_image_kernel.py`` section 4). `among`:
        only the images at these vocabulary indices (the new rows of a vocabulary update), found
        among them alone: not a pass over every image row (that sorted 20M rows for 10 new ones).
        `into`: ``wv.vectors`` as it is (:meth:`save` moving the vectors file), not wherever
        :meth:`_writable_vectors` would put it."""
        rows = self._vocab_image_rows
        idx = np.flatnonzero(rows >= 0) if among is None else among[rows[among] >= 0]
        if self.W is None:
            return
        if len(idx):
            self._write_rows(idx, into)
        if among is None:
            self._image_rows_from_W = True

    def _write_rows(self, idx: np.ndarray, vectors: np.ndarray | None = None) -> None:
        """The images' rows at vocabulary indices `idx` (:meth:`_write_image_vectors`), into `vectors`
        (default: ``wv.vectors`` as training writes it, :meth:`_writable_vectors`)."""
        vectors = self._writable_vectors() if vectors is None else vectors
        workers = max(int(self.workers), 1)
        if self._neighbours_on() and self.feature_mean is not None:
            idx = self._neighbour_order(idx)
        size = max(256, min(_WRITE_CHUNK, -(-len(idx) // (4 * workers))))  # a few chunks per thread
        chunks = [idx[lo:lo + size] for lo in range(0, len(idx), size)]

        def write(chunk):
            vectors[chunk] = self.project_rows(self._vocab_image_rows[chunk])

        if workers == 1 or len(chunks) == 1:
            for chunk in chunks:
                write(chunk)
        else:
            with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
                list(pool.map(write, chunks))
        self.wv.norms = None

    # ------------------------------------------------------------------ two-stage
    @classmethod
    def from_word2vec(cls, w2v: Word2Vec | KeyedVectors, image_features=None, sentences: Iterable | None = None,
                      *, epochs: int | None = None, **kwargs) -> Im2Vec:
        """Start from a trained gensim Word2Vec (its vocabulary, vectors, ``syn1neg``, counts), or
        from pretrained word vectors alone (a KeyedVectors, e.g. GoogleNews's or fastText's file read
        by ``KeyedVectors.load_word2vec_format``).

        Parameters
        ----------
        w2v : gensim.models.Word2Vec or gensim.models.KeyedVectors
            A model trained with negative sampling (it must have ``syn1neg``), or its word vectors
            alone: then the output weights start at zero, as gensim starts them, and learn on
            `sentences`; the word counts are the vectors' ``count`` attribute, or, where the file
            had none (gensim's loader makes up the rank), Zipf's law from the words' order
            (:func:`zipf_counts`), and the text's words are not downsampled (no real counts to do
            it by). fastText's vectors (``load_facebook_vectors``, or a FastText's ``wv``) start
            the words `sentences` adds from their character n-grams instead of at random.
        image_features : mapping, (keys, array) pair or feature store
            The images' features.
        sentences : iterable of list of str, optional
            The image corpus. If given, its new tags and images are added
            (``build_vocab(update=True)``) and the model is trained on it for `epochs`.
        epochs : int, optional
            Epochs over `sentences` (default: the Word2Vec's; Im2Vec's default, 5, from vectors alone).
        **kwargs
            Im2Vec options; ``train_words`` defaults to "new" (two-stage training: the text's words
            stay frozen, the tags it never saw learn). Word2Vec hyperparameters default to the
            source model's (to Im2Vec's from vectors alone). ``callbacks`` run during the training
            on `sentences`, as gensim's constructor runs them.

        Returns
        -------
        Im2Vec

        Examples
        --------
        Pretrained vectors in word2vec's file format, and an image corpus whose tags they mostly have:

        >>> from gensim.models import KeyedVectors
        >>> from gensim_im2vec.synthetic import make_corpus
        >>> data = make_corpus(n_classes=3, n_images=60, n_features=8, seed=0)
        >>> words = sorted({w for doc in data.docs for w in doc[1:]})
        >>> kv = KeyedVectors(16)  # (stands in for KeyedVectors.load_word2vec_format(path, binary=True))
        >>> kv.add_vectors(words[:-5], np.random.default_rng(0).normal(size=(len(words) - 5, 16)))
        >>> model = Im2Vec.from_word2vec(kv, image_features=data.features, sentences=data.docs, min_count=1,
        ...                              workers=1, epochs=2)
        >>> bool(np.array_equal(model.wv[words[0]], kv[words[0]]))  # the pretrained words stay frozen
        True
        >>> model.n_pretrained_words, words[-1] in model.wv  # the tags they lack learn
        (52, True)
        """
        callbacks = kwargs.pop("callbacks", ())  # run by the train() below, as gensim's constructor runs them
        model = cls._vocab_from_word2vec(w2v, image_features, sentences, **kwargs)
        model._train_started(sentences, epochs, callbacks)
        return model

    @classmethod
    def _vocab_from_word2vec(cls, w2v: Word2Vec | KeyedVectors, image_features, sentences, **kwargs) -> Im2Vec:
        """:meth:`from_word2vec` up to its training: the model with `w2v`'s words (copies) and, when
        `sentences` are given, their vocabulary added. It keeps no reference to `w2v`, so a caller
        that loaded it for this (``im2vec train --pretrained``) frees it before training."""
        if isinstance(w2v, KeyedVectors):
            return cls._from_vectors(w2v, image_features, sentences, **kwargs)
        if not isinstance(w2v, Word2Vec):
            raise TypeError(f"from_word2vec expects a gensim Word2Vec model or KeyedVectors, got "
                            f"{type(w2v).__name__}.")
        if isinstance(w2v, Im2Vec) and len(w2v.image_keys):
            raise TypeError(
                f"from_word2vec expects a text-only gensim Word2Vec, got an Im2Vec model ({len(w2v.image_keys)} "
                f"images): its images would become frozen words. To add images to it, continue it with "
                f"model.build_vocab(sentences, update=True, image_features=...) and model.train(...); to start "
                f"a new model from its words alone, give its text-only Word2Vec (e.g. the demo's words.w2v).")
        if not getattr(w2v, "negative", 0) or getattr(w2v, "syn1neg", None) is None:
            raise ValueError(
                "from_word2vec needs a Word2Vec trained with negative sampling (negative > 0, so it has "
                f"syn1neg); this one has negative={getattr(w2v, 'negative', None)!r}. Retrain it with hs=0, "
                "negative=5, or give its word vectors alone (w2v.wv: the output weights then start at zero)."
            )
        _check_pretrained_size(kwargs, w2v.vector_size, "Word2Vec's")
        params = dict(
            vector_size=w2v.vector_size, alpha=w2v.alpha, window=w2v.window, min_count=w2v.min_count,
            max_vocab_size=w2v.max_vocab_size, sample=w2v.sample, seed=w2v.seed, workers=w2v.workers,
            min_alpha=w2v.min_alpha, sg=w2v.sg, hs=0, negative=w2v.negative, ns_exponent=w2v.ns_exponent,
            cbow_mean=w2v.cbow_mean, hashfxn=w2v.hashfxn, epochs=w2v.epochs, null_word=w2v.null_word,
            sorted_vocab=w2v.sorted_vocab, batch_words=min(w2v.batch_words, MAX_WORDS_IN_BATCH),
            max_final_vocab=w2v.max_final_vocab, shrink_windows=getattr(w2v, "shrink_windows", True),
            train_words="new",
        )
        expandos = {k: np.array(v) for k, v in w2v.wv.expandos.items()}
        return cls._started_from(w2v.wv, expandos, w2v.syn1neg, params, kwargs,
                                 image_features, sentences,
                                 corpus=(w2v.corpus_count, w2v.corpus_total_words,
                                         getattr(w2v, "effective_min_count", w2v.min_count)),
                                 msg=f"started from {w2v} ({len(w2v.wv)} words)", given=w2v.wv)

    @classmethod
    def _from_vectors(cls, kv: KeyedVectors, image_features, sentences, **kwargs) -> Im2Vec:
        """:meth:`from_word2vec` from word vectors alone: output weights at zero, counts from `kv`."""
        if not len(kv):
            raise ValueError("from_word2vec: the KeyedVectors hold no word; give the pretrained vectors "
                             "(e.g. KeyedVectors.load_word2vec_format(path, binary=True)).")
        prefix = kwargs.get("image_prefix", IMAGE_PREFIX)  # (an Im2Vec's wv is a KeyedVectors with its images)
        images = list(itertools.islice((k for k in kv.index_to_key if isinstance(k, str) and k.startswith(prefix)),
                                       3)) if prefix else []  # (no prefix: images are known by their features)
        if images:
            raise TypeError(
                f"from_word2vec: the KeyedVectors hold image keys ({images[:3]}...; prefix {prefix!r}): they would "
                f"become frozen words. Give the text's word vectors (e.g. the demo's words.w2v), not an Im2Vec "
                f"model's wv.")
        _check_pretrained_size(kwargs, kv.vector_size, "KeyedVectors'")
        given, counts = kv, kv.expandos.get("count")
        if any(k is None for k in kv.index_to_key):  # a word twice in a word2vec file: gensim's loader keeps the
            keep = [i for i, k in enumerate(kv.index_to_key) if k is not None]  # first, and leaves a keyless row
            logger.warning("from_word2vec: %i of the KeyedVectors' %i rows have no word (gensim's "
                           "load_word2vec_format leaves one per word listed twice in the file); left out",
                           len(kv.index_to_key) - len(keep), len(kv.index_to_key))
            trimmed = KeyedVectors(kv.vector_size, count=0)
            trimmed.index_to_key = [kv.index_to_key[i] for i in keep]
            trimmed.key_to_index = {k: j for j, k in enumerate(trimmed.index_to_key)}
            trimmed.vectors = np.asarray(kv.vectors)[keep]
            counts = None if counts is None or len(counts) != len(kv.index_to_key) else np.asarray(counts)[keep]
            kv = trimmed
        n = len(kv)
        if (counts is None or counts.dtype == object or len(counts) != n  # none, or a vocabulary file with gaps
                or (n > 1 and np.all(np.diff(counts) == -1))):  # those load_word2vec_format makes up: n − rank
            counts = zipf_counts(n, max(math.ceil(kwargs.get("min_count", 5)), 1))
            logger.info("from_word2vec: the KeyedVectors have no word counts (or those gensim's loader makes up "
                        "from the order); Zipf's law from their order stands in for them (the negatives' table): "
                        "%i for the first word, %i for the last", counts[0], counts[-1])
        expandos = {"count": np.array(counts, dtype=np.int64),  # a copy: build_vocab adds to it
                    "sample_int": np.full(n, np.iinfo(np.uint32).max, dtype=np.uint32)}  # every occurrence kept
        params = dict(vector_size=kv.vector_size, hs=0, train_words="new")
        # zero, as gensim starts them; with sentences, the vocabulary's growth makes all the rows
        syn1neg = np.zeros((0 if sentences is not None else n, kv.vector_size), dtype=REAL)
        return cls._started_from(kv, expandos, syn1neg, params, kwargs, image_features, sentences,
                                 corpus=(0, int(expandos["count"].sum()), None),
                                 msg=f"started from {kv} ({n} words; output weights from zero)", given=given)

    @classmethod
    def _started_from(cls, source: KeyedVectors, expandos: dict, syn1neg: np.ndarray, params: dict, kwargs: dict,
                      image_features, sentences, *, corpus: tuple, msg: str, given: KeyedVectors) -> Im2Vec:
        """The model :meth:`from_word2vec` makes, untrained: `source`'s words (a copy) with their
        `expandos` and output weights `syn1neg`, the Im2Vec options `params` updated by the caller's
        `kwargs`, and the vocabulary of `sentences` when given; the words `sentences` add start from
        their character n-grams when the vectors as `given` are fastText's (:meth:`_start_from_ngrams`).
        The source's arrays are copied once: with `sentences`, by the vocabulary's growth (a new array
        with rows added; the copy of GoogleNews's vectors before it, 3.6 GB, was a third one alive)."""
        params.update(kwargs)
        model = cls(image_features=image_features, **params)
        wv = KeyedVectors(source.vector_size, count=0)
        wv.index_to_key = list(source.index_to_key)
        wv.key_to_index = dict(source.key_to_index)
        sources = (source.vectors, syn1neg)
        wv.vectors = np.asarray(source.vectors, dtype=REAL, order="C")  # (copied below unless the vocabulary's
        wv.expandos = expandos  # growth copies it)
        wv.vectors_lockf = np.ones(1, dtype=REAL)
        model.wv = wv
        model.syn1neg = np.asarray(syn1neg, dtype=REAL, order="C")
        model.corpus_count, model.corpus_total_words, min_count = corpus
        model.effective_min_count = model.min_count if min_count is None else min_count
        model.raw_vocab = defaultdict(int)
        model.n_pretrained_words = model.n_trained_words = len(wv)
        if model.space_pull is not None:  # the words the space step moves are pulled back to these
            model.space_anchor = wv.vectors.copy()
        model._refresh_image_index()
        model._init_W()
        model.make_cum_table()
        model.add_lifecycle_event("from_word2vec", msg=msg)
        if sentences is not None:
            model._defer_image_rows = True  # _train_started's train() writes every image row at its end
            try:
                model.build_vocab(sentences, update=True)
            finally:
                del model._defer_image_rows  # back to the class's False
            model._start_from_ngrams(given)
        for name, owner in (("vectors", model.wv), ("syn1neg", model)):  # the caller's arrays are not the model's
            if any(np.may_share_memory(getattr(owner, name), a) for a in sources):
                setattr(owner, name, getattr(owner, name).copy())
        return model

    def _train_started(self, sentences, epochs: int | None, callbacks=()) -> None:
        """:meth:`from_word2vec`'s training on `sentences` (nothing without them) for `epochs`
        (default: the model's), after :meth:`_vocab_from_word2vec`."""
        if sentences is None:
            if callbacks:
                logger.warning("from_word2vec: callbacks given without sentences are not run (nothing is "
                               "trained); give them to train() instead")
            return
        self.train(sentences, total_examples=self.corpus_count, epochs=epochs if epochs is not None else self.epochs,
                   compute_loss=self.compute_loss, callbacks=callbacks)  # as gensim's constructor runs its callbacks

    def _start_from_ngrams(self, subwords: KeyedVectors) -> None:
        """When `subwords` are fastText's vectors (with n-gram buckets), the words added after the
        pretrained ones (not the images) start at their vector of the words' character n-grams
        (``subwords.get_vector``), where gensim starts a new word at random: a tag the text never
        saw as a whole ("newyorkcity", a misspelling) starts from the n-grams it shares with the
        words it is made of, then learns (``train_words="new"``). Other vectors: nothing."""
        if not (isinstance(subwords, FastTextKeyedVectors) and subwords.bucket):
            return
        rows = np.arange(int(self.n_pretrained_words), len(self.wv.index_to_key))
        rows = rows[self._vocab_image_rows[rows] < 0]
        if not len(rows):
            return
        vectors = self._writable_vectors()
        for lo in range(0, len(rows), DIRECTIONS_BLOCK):
            part = rows[lo:lo + DIRECTIONS_BLOCK]
            vectors[part] = np.stack([subwords.get_vector(self.wv.index_to_key[i]) for i in part]).astype(REAL)
        self.wv.norms = None
        logger.info("from_word2vec: %i new word(s) start from their character n-grams (fastText), not at random",
                    len(rows))

    # ------------------------------------------------------------------ placing and querying images
    def _as_feature_matrix(self, features, name="features") -> tuple[np.ndarray, bool]:
        if isinstance(features, (str, os.PathLike)) or (hasattr(features, "getbands") and hasattr(features, "size")):
            what = "an image" if hasattr(features, "getbands") else f"{os.fspath(features)!r}"
            raise TypeError(
                f"{name}: expected CNN feature vectors, got {what}. Extract an image's features first with "
                f"the model's extractor: gensim_im2vec.query.make_featurizer(model.image_features_metadata, "
                f"store=model.feature_store)(path) for a file, or FeatureExtractor(...)([image])"
                + (self._key_not_features(features) if isinstance(features, str) else "."))
        if isinstance(features, (list, tuple)) and features and all(isinstance(f, str) for f in features):
            shown = ", ".join(repr(f) for f in features[:3]) + (", ..." if len(features) > 3 else "")
            raise TypeError(
                f"{name}: expected CNN feature vectors, got {len(features)} str ({shown}): keys or paths, not "
                f"features. Extract the images' features first with the model's extractor (FeatureExtractor(...)"
                f"(images))" + self._key_not_features(features[0]))
        if self.W is None or self.features is None:
            raise RuntimeError(
                "this model has no images (no map W from features to the space): it was built without "
                "image_features, or loaded from a plain gensim Word2Vec. Give it images: "
                "model.build_vocab(documents, update=True, image_features=...) then model.train(...), or "
                "Im2Vec(documents, image_features=...) / Im2Vec.from_word2vec(w2v, image_features=..., sentences=...).")
        arr = feature_array(features, name)
        single = arr.ndim == 1
        if single:
            arr = arr.reshape(1, -1)
        arr = check_features(arr, dim=self.W.shape[1], name=name)
        return arr, single

    def _key_not_features(self, text: str) -> str:
        """The end of :meth:`_as_feature_matrix`'s refusal of a str: how to query the image it names."""
        key = text if self._held_out_features(text) is not None or self.is_image(text) else \
            self._prefixed_image_key(text)
        if key is None:
            return ("; an image key the model's features hold is queried by its key: "
                    "model.most_similar_words(key).")
        return (f"; {text!r} names the model's image {key!r}: query it by its key, "
                f"model.most_similar_words({key!r}) (or most_similar_images, most_similar_tags).")

    def _project_normalized(self, arr: np.ndarray, dtype=REAL) -> np.ndarray:
        if self.normalize_features:
            arr = l2_normalize(arr, out_dtype=dtype)
        return self._map(np.asarray(arr, dtype=dtype), dtype)

    def _map(self, V: np.ndarray, dtype=REAL) -> np.ndarray:
        """``W · (v̂ − μ)`` (space head) or ``W · v̂``, for rows of normalised features, computed in
        `dtype` (float64: the evaluation, whose scores must not depend on the BLAS kernel's rounding);
        with the readout (`space_readout`), ``unit(W·(v̂ − μ)) + β · unit(R·(v̂ − μ) + c)``."""
        W, mean = self.W, self.feature_mean
        if dtype != REAL:
            W = np.asarray(W, dtype=dtype)
            mean = None if mean is None else np.asarray(mean, dtype=dtype)
        if mean is None:
            return (V @ W.T).astype(dtype, copy=False)
        Vc = V - mean
        H = Vc @ W.T
        if self._readout_on():
            P = Vc @ np.asarray(self.readout_W, dtype=dtype).T + np.asarray(self.readout_offset, dtype=dtype)
            H = self._mix(H, P, dtype)
        if self._neighbours_on():
            return self._with_neighbours(H, V, dtype)
        return H.astype(dtype, copy=False)

    def _mix(self, H: np.ndarray, P: np.ndarray, dtype=REAL) -> np.ndarray:
        """``unit(H) + β · unit(P)``, row by row (`space_readout`)."""
        out = l2_normalize(H, out_dtype=dtype)
        out += np.asarray(self.space_readout, dtype=dtype) * l2_normalize(P, out_dtype=dtype)
        return out

    def project_rows(self, rows) -> np.ndarray:
        """Vectors of rows of the model's own feature matrix, shape (len(rows), vector_size).

        The same function as :meth:`project`, with the normalisation and the mean folded in after
        the product, ``W(v/‖v‖ − μ) = (W v)/‖v‖ − W μ``: no F-wide pass besides the sgemm."""
        V, inv = self.features.gather(rows)
        readout = self._readout_on() and self.feature_mean is not None
        maps = np.concatenate([self.W, self.readout_W]) if readout else self.W
        H = V @ maps.T
        if self.normalize_features:
            H *= inv[:, None]
        mean = self.feature_mean
        if mean is not None:
            H -= maps @ mean
        if readout:
            size = self.layer1_size
            H = self._mix(H[:, :size], H[:, size:] + self.readout_offset)
        if self._neighbours_on() and mean is not None:
            return self._with_neighbours(H, V * inv[:, None] if self.normalize_features else V)
        return H.astype(REAL, copy=False)

    def project(self, features) -> np.ndarray:
        """Place images in the space from their features alone.

        Parameters
        ----------
        features : array_like of shape (n_features,) or (n_images, n_features)
            Raw feature vectors (normalised here as in training).

        Returns
        -------
        ndarray, float32, of shape (vector_size,) or (n_images, vector_size)
        """
        arr, single = self._as_feature_matrix(features)
        out = self._project_normalized(arr)
        return out[0] if single else out

    def project_to_keyedvectors(self, keys: Sequence[str] | str, features) -> KeyedVectors:
        """Project unseen images into a separate KeyedVectors (never into ``model.wv``): one key per
        feature row (a single str for a single image)."""
        arr, _ = self._as_feature_matrix(features)
        keys = [keys] if isinstance(keys, str) else list(keys)  # one key, not its characters
        if len(keys) != len(arr):
            raise ValueError(f"project_to_keyedvectors: {len(keys)} keys for {len(arr)} feature rows.")
        check_image_keys(keys, name="project_to_keyedvectors")  # its save_word2vec_format splits on spaces
        kv = KeyedVectors(self.layer1_size)
        kv.add_vectors(keys, self._project_normalized(arr))
        return kv

    def _modality_mask(self, restrict: str | None) -> np.ndarray | None:
        if restrict is None:
            return None
        self._follow_vocab()
        if restrict == "words":
            return self._vocab_image_rows < 0
        if restrict == "images":
            return self._vocab_image_rows >= 0
        if restrict == "tags":
            mask = self._tag_mask()
            if not mask.any():
                raise ValueError("restrict='tags': no word of this model occurs in an image document (it has "
                                 "no images, or none was trained); use restrict='words'.")
            return mask
        raise ValueError(f"restrict must be 'words', 'tags', 'images' or None, got {restrict!r}.")

    def _image_words(self) -> str:
        """The `restrict` that lists an image's describing words: "tags" (the words of the image
        documents), or "words" for a model none of whose words occurs in an image document."""
        return "tags" if self._tag_mask().any() else "words"

    def _tag_mask(self) -> np.ndarray:
        """Which vocabulary rows are tags (words of the image documents), kept until the vocabulary
        or the tags change: a query asks it once per call, and a collection has millions of tags."""
        key = (len(self.wv), len(self.image_tag_counts))
        cached = getattr(self, "_tag_mask_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, self._vocab_tag_counts() > 0)
            self._tag_mask_cache = cached
        return cached[1]

    def _top(self, sims: np.ndarray, topn: int | None, mask: np.ndarray | None,
             exclude: Iterable[int] = ()) -> list[tuple[str, float]]:
        """The `topn` best keys of `sims` (all of them for None) within `mask`, without the
        vocabulary indices in `exclude`."""
        sims = np.array(sims, dtype=np.float64)
        if mask is not None:
            sims[~mask] = -np.inf
        for i in exclude:
            sims[i] = -np.inf
        finite = int(np.isfinite(sims).sum())
        k = finite if topn is None else min(int(topn), finite)
        if k <= 0:
            return []
        best = np.argpartition(-sims, k - 1)[:k]
        best = best[np.argsort(-sims[best], kind="stable")]
        return [(self.wv.index_to_key[i], float(sims[i])) for i in best]

    def _most_similar_restricted(self, positive, negative, topn, restrict, indexer=None):
        topn = check_topn(topn)
        self._follow_vocab()
        positive, negative = self._held_out_keys(query_items(positive)), self._held_out_keys(query_items(negative))
        check_query_vectors(self.wv, positive + negative)
        self._check_query_keys(positive + negative)
        if indexer is not None and topn is not None:  # (gensim, too, answers topn=None exactly, indexer or not)
            return self._most_similar_indexed(positive, negative, topn, restrict, indexer)
        self._ensure_norms()
        sims = self.wv.most_similar(positive=positive, negative=negative, topn=None)
        # the query's keys are left out, as gensim does: plain keys, indices and (key, weight) pairs
        wv = self.wv
        exclude = [wv.get_index(k) for k in query_keys(positive + negative) if wv.has_index_for(k)]
        return self._top(sims, topn, self._modality_mask(restrict), exclude)

    def _ensure_norms(self) -> None:
        """``wv.norms`` filled a block of rows at a time (:func:`gensim_im2vec.index.fill_norms`)
        before a search reads them: gensim's own ``wv.fill_norms()``, which ``wv.most_similar``
        calls when they are missing (after a load, a ``train``), squares a private copy of all of
        ``wv.vectors`` at once, even of a model loaded with ``mmap="r"``. The same values."""
        from gensim_im2vec.index import fill_norms

        fill_norms(self.wv)

    def _most_similar_indexed(self, positive, negative, topn: int, restrict: str, indexer):
        """:meth:`_most_similar_restricted` answered by `indexer`'s sub-index of `restrict` (a
        :class:`~gensim_im2vec.index.ModalityIndexer` or one of its views, whatever modality the view
        answers): :func:`~gensim_im2vec.index.ann_most_similar`, the query's keys left out."""
        from gensim_im2vec.index import ann_most_similar

        if not callable(getattr(indexer, "restrict", None)):
            raise TypeError(
                f"indexer: answering only {restrict} takes an index with one part per modality, a "
                f"gensim_im2vec.index.ModalityIndexer(model) with {restrict!r} among its modalities; got "
                f"{type(indexer).__name__}, which answers words and images mixed: ask it through "
                f"model.wv.most_similar(..., indexer=indexer) and keep the {restrict} yourself.")
        return ann_most_similar(self, positive, negative, topn, indexer=indexer, restrict=restrict)

    def _check_query_keys(self, items: list) -> None:
        """Refuse a key of a query that the vocabulary lacks (after :meth:`_held_out_keys`) with
        gensim's KeyError, which also names the image key it may stand for: a bare key ("0"),
        as the CLI's query prompt takes it, for the vocabulary's or the features' "img:0"."""
        k2i = self.wv.key_to_index
        for key in query_keys(items):
            if isinstance(key, str) and key not in k2i:
                raise KeyError(self._unknown_key_message(key))

    def _unknown_key_message(self, key: str) -> str:
        """gensim's "Key ... not present in vocabulary", with the image key `key` may stand for (as
        the `im2vec query` prompt answers "did you mean ...?")."""
        said = f"Key {key!r} not present in vocabulary"
        full = self._prefixed_image_key(key)
        if full is not None:
            ext = os.path.splitext(key)[1]
            file = (" and name no file extension" if ext.lower() in IMAGE_SUFFIXES
                    and os.path.splitext(full)[1].lower() not in IMAGE_SUFFIXES else "")
            return (f"{said}; did you mean the image {full!r}? Image keys carry the prefix "
                    f"{self.image_prefix!r}{file}.")
        return said

    def _prefixed_image_key(self, key) -> str | None:
        """The model's image key (in the vocabulary or the features) that `key` stands for when it
        misses by how it is written (:func:`~gensim_im2vec.keys.key_spellings`): without the prefix
        ("0" for "img:0"), as a file ("img:0.jpg"), with another prefix ("image:0", "IMG:0");
        else None."""
        prefix = self.image_prefix
        if not isinstance(key, str) or not prefix:
            return None
        feats = self.features
        for full in key_spellings(key, prefix):
            if (full in self.wv.key_to_index and self.is_image(full)) or (feats is not None and
                                                                          full in feats.key_to_index):
                return full
        return None

    def _held_out_features(self, key) -> np.ndarray | None:
        """The features of `key` when it is an image the model's features hold but its vocabulary
        lacks (held out of training, in the model's store), else None."""
        feats = self.features
        if feats is None or not isinstance(key, str) or key in self.wv.key_to_index:
            return None
        row = feats.key_to_index.get(key)
        return None if row is None else feats.vectors[row]

    def _held_out_keys(self, items: list) -> list:
        """Query items with each image key the vocabulary lacks but the features hold
        (:meth:`_held_out_features`) replaced by its :meth:`project` vector, unit length as gensim
        takes a key's."""
        if self.features is None:
            return items
        out = []
        for item in items:
            pair = isinstance(item, (tuple, list)) and len(item) == 2
            v = self._held_out_features(item[0] if pair else item)
            if v is not None:
                vector = l2_normalize(self.project(v)[None])[0]
                item = (vector, item[1]) if pair else vector
            out.append(item)
        return out

    def most_similar_words(self, positive=None, negative=None, topn: int | None = 10,
                           indexer=None) -> list[tuple[str, float]]:
        """Like ``wv.most_similar`` (keys, vectors or ``(key, weight)`` pairs, words or images),
        returning only words (an image's describing words: ``most_similar_words("img:0")``); the
        query's own keys are left out. ``topn=None``: every word, best first.

        `indexer`: as gensim's ``most_similar(..., indexer=)``, an approximate index answers
        instead of the exact scan of every vector, when `topn` is an int (``topn=None`` is
        answered exactly, as gensim does). It must be able to answer words alone: a
        :class:`~gensim_im2vec.index.ModalityIndexer` (or any of its views, e.g.
        ``indexer.images``: its words part answers) built with "words"; the answer is
        :func:`~gensim_im2vec.index.ann_most_similar` ``(model, ..., indexer=indexer,
        restrict="words")``. Another indexer is refused (it mixes words and images).

        Raises
        ------
        KeyError
            A key in neither the vocabulary nor the features (held-out images are projected); a
            bare image key ("0" for "img:0") is named with the key it may stand for.
        """
        return self._most_similar_restricted(positive, negative, topn, "words", indexer)

    def most_similar_tags(self, positive=None, negative=None, topn: int | None = 10,
                          indexer=None) -> list[tuple[str, float]]:
        """Like :meth:`most_similar_words`, returning only the words of the image documents (the
        tags the images trained with, ``image_tag_counts``): an image's describing words without
        the rest of the text's vocabulary. The same cosine as ``wv.most_similar``; a word no
        training image carries (a zero-shot tag) is not among them, so rank those by
        ``wv.distances`` or :meth:`most_similar_words`. `indexer`: as in :meth:`most_similar_words`,
        a :class:`~gensim_im2vec.index.ModalityIndexer` built with "tags" among its modalities."""
        return self._most_similar_restricted(positive, negative, topn, "tags", indexer)

    def most_similar_images(self, positive=None, negative=None, topn: int | None = 10,
                            indexer=None) -> list[tuple[str, float]]:
        """Like ``wv.most_similar`` (keys, vectors or ``(key, weight)`` pairs, words or images),
        returning only images; the query's own keys are left out. ``topn=None``: every image, best
        first. `indexer`: as in :meth:`most_similar_words`, a
        :class:`~gensim_im2vec.index.ModalityIndexer` built with "images"."""
        return self._most_similar_restricted(positive, negative, topn, "images", indexer)

    def similar_by_image(self, features, topn: int | None = 10, restrict: str | None = None
                         ) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """Nearest words and/or images (cosine in ``model.wv``) to images given by their features.

        The same answer as ``model.wv.similar_by_vector(model.project(features))``, with a
        modality filter, for one image or a batch (one sgemm against ``wv`` for the batch).

        Parameters
        ----------
        features : array_like (n_features,) or (n_images, n_features)
            Raw features of images (they need not be in the model).
        topn : int or None
            Number of neighbours (None: all of them, best first).
        restrict : {"words", "tags", "images", None}
            Keep only words, only the words of the image documents (the tags the images trained
            with: an image's describing words without the rest of the text's vocabulary; no
            zero-shot tag), only images, or all of them.

        Returns
        -------
        list of (key, cosine), or one such list per image for a 2-D `features`
        """
        topn = check_topn(topn)
        self._follow_vocab()
        mask = self._modality_mask(restrict)
        arr, single = self._as_feature_matrix(features)
        H = l2_normalize(self._project_normalized(arr))
        self._ensure_norms()  # as gensim's most_similar: cached norms, never a normalised copy of wv
        inv = 1.0 / np.maximum(self.wv.norms, 1e-12)
        # images per sgemm: up to 1024, their cosines to every row at most 2^24 floats (64 MiB; one image's
        # at least), not 1024 × len(wv) (4 GB at 1M rows)
        step = max(1, min(1024, (1 << 24) // max(1, len(inv))))
        out = []
        for lo in range(0, len(H), step):
            S = H[lo:lo + step] @ self.wv.vectors.T
            S *= inv
            out.extend(self._top(row, topn, mask) for row in S)
            del S  # (before the next block's)
        return out[0] if single else out

    def _word_space_index(self) -> np.ndarray:
        """Vocabulary indices (ascending) of the words whose input vectors were trained: the
        pretrained words of :meth:`from_word2vec` and every word of a :meth:`train` call with
        ``train_words`` True or "new", and the words a ``train_words=False`` training placed by the
        space step. Words a vocabulary update added that no ``train()`` has trained yet keep their
        random start and have no place among the words."""
        idx = np.flatnonzero(self._vocab_image_rows < 0)
        idx = idx[idx < self._word_space_end()]
        if not len(idx):
            raise ValueError("no word of this model has a trained input vector (train_words=False and no "
                             "pretrained words): build it with Im2Vec.from_word2vec(w2v, ...) or train the "
                             "words (train_words=True or 'new').")
        return idx

    def _word_space_end(self) -> int:
        """The vocabulary index below which input vectors were trained (:meth:`_word_space_index`)."""
        trained = self.n_trained_words
        if trained is None:  # a model saved before n_trained_words was kept
            trained = self.n_pretrained_words if self.train_words is False else len(self.wv)
        return trained

    def _untrained_words(self, words: Sequence[str]) -> list[str]:
        """The entries of `words` (words of this model) without a trained input vector: those not among
        :attr:`word_space_keys`, found by their own index (no list of every word is made). Raises the
        ValueError of :attr:`word_space_keys` where no word of the model has one."""
        end, k2i = self._word_space_end(), self.wv.key_to_index
        untrained = [w for w in words if k2i[w] >= end]
        if len(untrained) == len(words):  # none of them: has any word one? (a scan, as word_space_keys)
            self._word_space_index()
        return untrained

    @property
    def word_space_keys(self) -> list[str]:
        """The words with a trained input vector, in vocabulary order (a word added to a frozen
        vocabulary and never trained keeps its random start and is left out)."""
        return [self.wv.index_to_key[i] for i in self._word_space_index()]

    def unknown_words(self, words: Iterable[str]) -> list[str]:
        """The entries of `words` that are not words of this model (not in it, or image keys)."""
        k2i = self.wv.key_to_index
        return [w for w in words if w not in k2i or self.is_image(w)]

    def estimate_memory(self, vocab_size=None, report=None):
        report = super().estimate_memory(vocab_size=vocab_size, report=report)
        feats = self.features
        if feats is not None:
            report["W"] = self.layer1_size * feats.dim * np.dtype(REAL).itemsize
            report["total"] = report.get("total", 0) + report["W"]
            if self.feature_store is not None:
                report["image features (a FeatureStore: page cache, not private memory)"] = int(feats.vectors.nbytes)
            else:  # a mapping or an array: in memory, saved with the model
                report["image features"] = int(feats.vectors.nbytes)
                report["total"] += report["image features"]
        if getattr(self, "vectors_file", None) is not None and "vectors" in report:
            size = report.pop("vectors")
            report["vectors (in vectors_file: page cache, not private memory)"] = size
            report["total"] -= size
        return report

    def _save_specials(self, fname, separately, sep_limit, ignore, pickle_protocol, compress, subname):
        # gensim deletes the arrays it writes to .npy files and the attributes it ignores from the model and
        # its wv before it writes them, and puts them back once the pickle is written; where a write fails
        # (no space left) it puts back only those of the object whose own write failed, and the model in
        # memory lost W, syn1neg, its sampling tables or wv's vectors_lockf: every one is put back here
        held = _attributes_of(self)
        try:
            with _transients_quiet():
                return self._set_aside(fname, separately, sep_limit, ignore, pickle_protocol, compress, subname)
        except BaseException:
            for obj, attributes in held:
                for name, value in attributes.items():
                    obj.__dict__.setdefault(name, value)
            raise

    def _set_aside(self, fname, separately, sep_limit, ignore, pickle_protocol, compress, subname):
        """gensim's ``_save_specials`` with the model's arrays and ignored attributes (:meth:`_save_specials`)."""
        if separately is None:
            separately = [a for a, v in self.__dict__.items() if isinstance(v, np.ndarray) and v.size >= sep_limit]
        separately = list(separately)
        for name in ("W", "image_vectors"):
            if getattr(self, name, None) is not None and name not in separately:
                separately.append(name)
        # (the features and the store are set aside by _saved_features: gensim would set ignored
        # attributes to None at load, after _load_specials has opened the store again)
        ignore = set(ignore).union(_NOT_SAVED)
        if not getattr(self, "_moving_vectors", False):
            return super()._save_specials(fname, separately, sep_limit, ignore, pickle_protocol, compress, subname)
        # save(move_vectors_file=True): gensim would stream wv.vectors, the whole vectors file, into
        # FNAME.wv.vectors.npy; that name becomes a second name of the file itself instead, and the pickled
        # wv lists "vectors" among its separately saved arrays as gensim's own save would
        source = self._vectors_file_state.id  # (gensim sets ignored attributes aside until the pickle is written)
        vectors = self.wv.__dict__.pop("vectors")
        try:
            restores = super()._save_specials(fname, separately, sep_limit, ignore, pickle_protocol, compress,
                                              subname)
        except BaseException:
            self.wv.vectors = vectors
            raise
        try:
            _link_or_copy(source, subname(".".join((fname, "wv")), "vectors"), vectors)
        except BaseException:
            for obj, asides in restores:
                for attrib, val in asides.items():
                    setattr(obj, attrib, val)
            self.wv.vectors = vectors
            raise
        self.wv.__dict__["__numpys"] = [*self.wv.__dict__.get("__numpys", []), "vectors"]
        return restores + [(self.wv, {"vectors": vectors})]

    def save(self, fname_or_handle, *args, move_vectors_file: bool = False, **kwargs) -> None:
        """Save the model: its own arrays (W, vectors, ``syn1neg``) in ``.npy`` files beside it
        (memory-mappable), never a whole feature store.

        With `vectors_file`, ``wv.vectors`` is written from that file (streamed, never copied into
        memory) into the model's own files, so the saved model does not need it. With
        ``move_vectors_file=True`` the file itself becomes the saved model's ``FNAME.wv.vectors.npy``
        instead (a second name of the same file, then the first name removed: nothing is written, where
        a copy writes ``rows × vector_size × 4`` bytes, 40-80 GB at 100M images, and needs as much disk
        again), for the end of a run, as ``im2vec train --vectors-file`` does. The model then holds
        the saved vectors read-only, as after ``Im2Vec.load(FNAME, mmap="r")``, so training it again
        never changes the saved model: it moves them into a new `vectors_file` first. On another file
        system than the vectors file (no second name possible) the vectors are copied, with a
        warning, and the file is removed all the same.

        Features from a :class:`~gensim_im2vec.store.FeatureStore` are not copied: the model records
        the store (``image_store``: its path, also relative to the model file, its row count, key
        digest, dim and weights) and :meth:`load` opens it again. Features given as a mapping or an
        array are saved with the model, only the rows of the vocabulary's images.

        Neighbours fitted with a faiss `space_neighbour_index` save that index too, as
        ``FNAME.neighbours.faiss`` (the index this process built, or the file the model was loaded
        from, linked or copied; renamed into place once the model is saved, so a save that fails leaves the
        index saved before), so that the loaded model reads it when it first writes or projects an
        image instead of training its quantisers and adding every image again. The file holds the
        fit's token, a digest of the features it was built over and a CRC-32 of its bytes: one of
        another fit, over other features (``load(image_features=...)`` with other values), damaged or
        missing is built again, with a warning. An index that cannot be written (no space left) is
        left out, with a warning: the model is saved. A model without one removes such a file another
        fit left under `fname_or_handle`.

        With a path, all files are first written under a temporary name and then renamed, the main
        file last, so an interrupted save never leaves a half-written model under `fname_or_handle`. A path
        ending in ``.gz`` or ``.bz2`` is compressed, as with gensim (not memory-mappable then).

        The images' rows of ``wv.vectors`` are saved only when they are ``W``'s (:meth:`project` of
        each image's features). When they are not (a save from a callback during :meth:`train`, which
        writes them only at the epochs' ends for callbacks that read them and as training ends; a
        checkpoint just resumed; a vocabulary not trained since it was built or given new features),
        the model is saved as a checkpoint is, without them, and loading it (any loader) writes them
        from the saved ``W``; with ``move_vectors_file=True`` they are written from ``W`` into the
        vectors file first; to a file handle (gensim's plain pickle, which ``pickle.load`` reads back
        with no load of ours after it) they are written from ``W`` into the pickled copy.

        ``wv.norms`` are saved with the rows they are the norms of, computed here from the rows saved
        (:func:`~gensim_im2vec.index.fill_norms`: a block of rows at a time, one pass over the vectors;
        4 bytes a row, float32), so that gensim's own ``model.wv.most_similar``, ``similar_by_vector``
        and ``get_vector(key, norm=True)`` of the loaded model find them filled: else gensim's
        ``fill_norms`` squares a private copy of every vector on the first search (40 GB at 100M × 100).
        They are a ``.npy`` of their own when gensim saves them so (10M rows or more with the default
        ``sep_limit``; any number with ``sep_limit=0``), memory-mapped by ``load(mmap="r")``, else in the
        pickle. A save whose rows are not final saves none (the loaded model computes them at its first
        search, as before): one from a callback during :meth:`train`, an
        :class:`~gensim_im2vec.checkpoint.EpochCheckpoint`, or one whose images' rows are left out or
        written into the pickled copy (above).

        The file loads under numpy 1.x (>= 1.24) and 2.x, whichever of them saved it: the random
        generator (gensim's ``random``) is pickled as its plain state and rebuilt in that state on
        load (training goes on with the same draws), the arrays in the pickle as their dtype, shape and
        bytes, never through numpy's own pickling, which the other major cannot read
        (:meth:`_saved_portable`).
        """
        self._follow_vocab()
        directory = None
        if isinstance(fname_or_handle, (str, os.PathLike)):
            fname_or_handle = _check_save_path(fname_or_handle)
            directory = os.path.dirname(fname_or_handle)
        moving = bool(move_vectors_file) and self._check_move_vectors(fname_or_handle, directory, args, kwargs)
        stale = self._image_rows_stale()
        if stale:
            start = default_timer()
            if moving:  # the file itself becomes the saved array: W's rows in it first
                self._write_image_vectors(into=self.wv.vectors)  # (the map being moved, as _check_move_vectors saw it)
                self.wv.vectors.flush()
                how = f"written from W into {self._vectors_file_state.path} first"
            elif directory is None:  # a handle: gensim's plain pickle, which pickle.load reads with no load of
                how = "written from W into the saved copy"  # ours after it to write left-out rows
            else:  # as a checkpoint: no pass over the features now, the load writes them from W
                how = f"{fname_or_handle} is saved without them, and loading it writes them from W"
            logger.info("save: the images' %i rows of wv are not W's (saved during train(), or not written since W "
                        "or the features changed); %s (%.2fs)", int(np.sum(self._vocab_image_rows >= 0)), how,
                        default_timer() - start)
        final = self._saved_rows_final(stale and not moving)
        if final:  # gensim's own wv.most_similar of the loaded model finds them filled (see _saved_norms)
            from gensim_im2vec.index import fill_norms

            start = default_timer()
            fill_norms(self.wv, force=True)
            logger.info("save: wv.norms of %i rows filled (%.2fs), saved with the vectors", len(self.wv.norms),
                        default_timer() - start)
        written = self._saved_with_image_rows() if stale and directory is None else contextlib.nullcontext()
        left_out = (self._saved_without_image_rows() if stale and not moving and directory is not None
                    else contextlib.nullcontext())
        no_index = self._saved_without_key_index() if directory is not None else self._saved_as_one_pickle()
        index_file = self._prepare_neighbour_index(fname_or_handle) if directory is not None else None
        try:
            with self._saved_norms(final), written, self._saved_features(directory), self._saved_vectors(moving), \
                    left_out, no_index, self._saved_portable():
                if directory is None:
                    return super().save(fname_or_handle, *args, **kwargs)
                start = default_timer()
                files = atomic_save(super(), fname_or_handle, *args, **kwargs)  # super(): gensim's save, not this one
                # (gensim's lines named the temporary files: this one names what is there now)
                logger.info("saved %s and %i array file(s) beside it, %s in all (%.2fs)", fname_or_handle,
                            len(files) - 1, format_bytes(sum(os.path.getsize(f) for f in files)),
                            default_timer() - start)
        except BaseException:
            if index_file not in (None, _INDEX_IN_PLACE):  # (the index of a model not saved: the one before stays)
                os.remove(index_file)
            raise
        if directory is not None:
            self._place_neighbour_index(fname_or_handle + NEIGHBOUR_INDEX_SUFFIX, index_file)
        if moving:
            self._let_go_of_vectors_file(fname_or_handle + ".wv.vectors.npy")

    def _neighbour_digest(self) -> str:
        """What the neighbours' faiss index was built over, in 40 hex digits: its spec, the fitted images'
        count and the unit features of 64 of them, evenly spaced (read from the model's features now; a
        saved index whose digest differs was built over other features, :meth:`_neighbour_features`)."""
        keys, index, rows_of = self.neighbour_keys, self.wv.key_to_index, self._vocab_image_rows
        at = np.unique(np.linspace(0, len(keys) - 1, min(len(keys), 64)).astype(np.int64))
        rows = np.array([rows_of[index[keys[j]]] if keys[j] in index else -1 for j in at.tolist()], dtype=np.int64)
        h = hashlib.sha1(f"{self.neighbour_index}|{len(keys)}|{self.features.dim}|".encode())
        if (rows >= 0).all():
            h.update(np.ascontiguousarray(self.features.gather_normalized(rows), dtype="<f4").tobytes())
        else:
            h.update(b"images gone")
        return h.hexdigest()

    def _prepare_neighbour_index(self, fname: str) -> str | None:
        """Before :meth:`save` writes the model to `fname`: the neighbours' faiss index, when they were
        fitted with one, written under a temporary name (:meth:`_place_neighbour_index` renames it once
        the model is saved): the index built in memory, else the file it was saved in before (a hard
        link to it where the file system allows, else a copy).
        :data:`_INDEX_IN_PLACE` when ``fname +`` :data:`NEIGHBOUR_INDEX_SUFFIX` already holds it (the
        model saved over itself, or a copy of it saved there), None when there is none to save: not
        built since the load and none saved (the loaded model builds it when first needed), or a write
        that failed (warned: the model is saved without it)."""
        token = self.__dict__.get("neighbour_index_token")
        if token is None or self.neighbour_keys is None:
            return None
        path = fname + NEIGHBOUR_INDEX_SUFFIX
        digest = self._neighbour_digest()
        if _FaissNeighbours.header_of(path) == (token, digest):
            return _INDEX_IN_PLACE
        search, saved = self._neighbour_search, self.__dict__.get("_neighbour_index_file")
        from_file = saved is not None and _FaissNeighbours.header_of(saved) == (token, digest)
        if not isinstance(search, _FaissNeighbours) and not from_file:
            logger.info("save: the neighbours' faiss index %r is not saved with %s: neither built since the load nor "
                        "found where it was saved; the loaded model builds it when first needed",
                        self.neighbour_index, fname)
            return None
        tmp = str(temp_name(path))
        try:
            if isinstance(search, _FaissNeighbours):
                search.write(tmp, token, digest)
            else:  # (a saved index is never written in place, only replaced: a second name is safe)
                try:
                    os.link(saved, tmp)
                    how = "given a second name"
                except OSError:  # (another file system, no hard links)
                    atomic_copy(saved, tmp)
                    how = "copied"
                logger.info("save: the neighbours' faiss index %s from %s", how, saved)
        except OSError as err:  # (e.g. no space left): the model matters more than its index
            with contextlib.suppress(OSError):
                os.remove(tmp)
            logger.warning("save: the neighbours' faiss index could not be written beside %s (%s): the model is "
                           "saved without it, and the loaded model builds it when first needed", fname, err)
            return None
        return tmp

    def _place_neighbour_index(self, path: str, written: str | None) -> None:
        """After :meth:`save`: the index :meth:`_prepare_neighbour_index` `written` renamed to `path`; with
        none, a file of ours another fit left at `path` removed (never read for this model: a stale
        copy of many GB at scale; a file not ours is left alone)."""
        if written is _INDEX_IN_PLACE:
            return
        if written is not None:
            os.replace(written, path)
            return
        head = _FaissNeighbours.header_of(path)
        if head is not None and head[0] != self.__dict__.get("neighbour_index_token"):
            try:
                os.remove(path)
            except OSError as err:
                logger.warning("save: %s, another fit's neighbours' faiss index, could not be removed (%s)", path, err)

    def _saved_rows_final(self, left_out: bool) -> bool:
        """Whether :meth:`save` saves ``wv.norms`` (filled there): the rows it saves are the model's as they
        stay, one per key. Not when the images' rows are `left_out` (a save during training or of a
        checkpoint just resumed, which the load writes from ``W``) or written into a copy (to a file handle),
        nor in :class:`~gensim_im2vec.checkpoint.EpochCheckpoint`'s save or any other from a callback of
        :meth:`train`: the rows move on, and a checkpoint's load or resume writes them again."""
        wv = self.wv
        vectors = getattr(wv, "vectors", None)
        return (not left_out and "_image_rows_left_out" not in self.__dict__ and not self.__dict__.get("_training")
                and vectors is not None and vectors.ndim == 2 and len(vectors) == len(wv.index_to_key))

    @contextlib.contextmanager
    def _saved_norms(self, final: bool):
        """While saving: ``wv.norms`` as :meth:`save` filled them from the rows it saves when they are
        `final` (:meth:`_saved_rows_final`), else None, whatever the live model holds (norms a search
        filled before training moved the rows on; the live ones are left as they are). A saved model's
        norms are the norms of its saved rows, or there are none: gensim computes them again then."""
        wv = self.wv
        if final:
            yield
            return
        norms = wv.__dict__.get("norms")
        wv.norms = None
        try:
            yield
        finally:
            wv.norms = norms

    @contextlib.contextmanager
    def _saved_as_one_pickle(self):
        """While saving to a file handle: the model without the list of companion files an earlier save
        to a path left in it (gensim's ``_save_specials`` keeps ``__numpys`` and the like in the
        object's ``__dict__``): pickled with it, the load looked for ``FILE.W.npy`` beside the handle's
        file and failed. Put back afterwards, as gensim left it."""
        stale = {k: self.__dict__.pop(k) for k in _GENSIM_SAVE_RECORDS if k in self.__dict__}
        try:
            yield
        finally:
            self.__dict__.update(stale)

    @contextlib.contextmanager
    def _saved_portable(self):
        """While saving (to a path or a file handle): the model pickled so that numpy 1.x (>= 1.24, the
        floor the package declares) and numpy 2.x read it back, whichever of them wrote it
        (:func:`~gensim_im2vec.portable.portable_state`, applied by :meth:`__getstate__`).

        numpy pickles its objects through its own module paths and constructors, and the majors do not
        read each other's: gensim's ``Word2Vec.random`` (a ``np.random.RandomState``) pickled by numpy 2
        fails on every numpy 1.x with ``ValueError: <class 'numpy.random._mt19937.MT19937'> is not a
        known BitGenerator module.``, and an array pickled by numpy 2 (``wv.norms``, ``syn1neg``, the
        arrays below gensim's ``sep_limit``) names ``numpy._core.multiarray``, which numpy 1.24 and 1.25
        lack. Instead, every random generator the model holds is pickled as its plain state
        (``RandomState.get_state(legacy=False)``, ``bit_generator.state``: a dict of its bit
        generator's name and ints or arrays) and rebuilt from it on load in the same state, so that
        training the loaded model goes on with the same random draws, bit for bit; every array
        and numpy scalar as its dtype string, shape and raw bytes. The ``.npy`` files beside the model
        are portable as they are. Models saved before (numpy's own pickles) load as they did: a numpy
        2 one under numpy 2 only, a numpy 1.x one under both (``numpy.core`` is an alias in numpy 2).
        Only the pickle written by save(); a ``pickle.dumps`` or ``copy`` of the model is numpy's own."""
        token = _PICKLED_PORTABLE.set(self)
        try:
            yield
        finally:
            _PICKLED_PORTABLE.reset(token)

    @contextlib.contextmanager
    def _saved_without_key_index(self):
        """While saving to a path: ``wv.key_to_index`` empty in the pickle (it is ``index_to_key``
        inverted; unpickling it took longer than building it again, 0.25 s a million keys, and 10 MB
        of the file), rebuilt once by the load (:meth:`_load_specials`). Not for a file handle, which
        ``pickle.load`` reads back with no load of ours after it. The live dict is left as it is
        (:meth:`__getstate__` pickles a shallow copy of ``wv`` without it), so threads that look
        words up while the model saves go on finding them."""
        wv = self.wv
        if len(wv.key_to_index) != len(wv.index_to_key):  # not gensim's invariant: saved as it is
            yield
            return
        token = _PICKLED_WITHOUT_KEY_INDEX.set(self)
        try:
            yield
        finally:
            _PICKLED_WITHOUT_KEY_INDEX.reset(token)

    def __getstate__(self):
        wv = self.__dict__.get("wv")
        state = self.__dict__  # (_indexed_keys is wv.index_to_key's object: pickled once, shared again)
        if state.get("_training"):  # (a save to a handle, a deepcopy from a callback: the copy is not training)
            state = {**state, "_training": False}
        if state.get("_neighbour_search") is not None:  # (the neighbours' features: read from the store again)
            state = {**state, "_neighbour_search": None}
        for name in ("_gathered_words", "_readout_sums"):  # (the last epoch's words and readout sums, and their
            if state.get(name) is not None:  # locks: the live model's train() fits them; the copy does not train)
                state = {**state, name: None}
        if _PICKLED_WITHOUT_KEY_INDEX.get() is self and wv is not None:
            shallow = copy.copy(wv)  # save() to a path (see there): the live wv keeps its dict
            shallow.key_to_index = {}
            state = {**state, "wv": shallow}
        if _PICKLED_PORTABLE.get() is self:  # save(): readable by numpy 1.x and 2.x (_saved_portable)
            state = portable_state(state)
        return state

    def __deepcopy__(self, memo: dict) -> Im2Vec:
        """A copy made as pickling makes it (:meth:`__getstate__`), holding ``wv.vectors`` in memory. With
        `vectors_file`, that file stays the original model's: the copy keeps its vectors in memory
        (``vectors_file`` None, said at INFO) and forgets which file the original made, so it never maps
        the original's file, not even once the original is gone (a loaded model takes back its run's file,
        a copy does not). ``copy.vectors_file = 'OTHER.npy'`` moves the copy's vectors into a file of its
        own when it next trains."""
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__getstate__(), memo))
        path = new.__dict__.get("vectors_file")
        if path is not None:
            new.vectors_file = None
            new._vectors_file_state = new._vectors_file_id = new._vectors_file_token = None
            vectors = getattr(getattr(new, "wv", None), "vectors", None)
            if isinstance(vectors, np.memmap):  # (a copy in memory already; not a map of any file)
                new.wv.vectors = vectors.view(np.ndarray)
            logger.info("copy.deepcopy: the copy keeps wv.vectors in memory (vectors_file None); %s stays the "
                        "original model's. Set the copy's vectors_file = 'OTHER.npy' to keep its vectors in a file "
                        "of its own.", path)
        return new

    @contextlib.contextmanager
    def _saved_with_image_rows(self):
        """While saving to a file handle a model whose images' rows are not W's: ``wv.vectors`` a copy
        with them written from ``W`` (and the flag saying so), the live model's rows left as they are
        (:meth:`train` writes them when it always did). Entered before :meth:`_saved_features`, which
        sets the features aside."""
        vectors, norms, flag = self.wv.vectors, self.wv.norms, self._image_rows_from_W
        whole = np.array(vectors, dtype=REAL, order="C")
        self._write_rows(np.flatnonzero(self._vocab_image_rows >= 0), whole)
        self.wv.vectors, self._image_rows_from_W = whole, True
        try:
            yield
        finally:
            self.wv.vectors, self.wv.norms, self._image_rows_from_W = vectors, norms, flag

    def _image_rows_stale(self) -> bool:
        """Whether :meth:`save` must not save the images' rows of ``wv.vectors`` as they are: the model
        has images, ``W`` and their features, and the rows are not known to be W's
        (``_image_rows_from_W``); not when a checkpoint's save already leaves them out."""
        rows = getattr(self, "_vocab_image_rows", None)
        return (self.W is not None and not getattr(self, "_image_rows_from_W", False)
                and "_image_rows_left_out" not in self.__dict__ and self.features is not None
                and rows is not None and len(rows) == len(self.wv.vectors) and bool(np.any(rows >= 0)))

    def _check_move_vectors(self, fname, directory, args, kwargs) -> bool:
        """``save(move_vectors_file=True)``: whether there is a vectors file to move (False: the vectors
        are saved as always, said at INFO), refused when the save cannot take the file as it is."""
        if getattr(self, "vectors_file", None) is None:
            raise ValueError("save(move_vectors_file=True): this model keeps wv.vectors in memory (vectors_file is "
                             "None), there is no file to move; leave move_vectors_file out.")
        if not self._vectors_in_file():
            logger.info("save(move_vectors_file=True): wv.vectors is not in %s (the model has not trained since "
                        "it was loaded, or since its vectors file was moved by a save), so it is saved as always",
                        self.vectors_file)
            return False
        if directory is None or str(fname).endswith(COMPRESSED_SUFFIXES):
            raise ValueError(f"save(move_vectors_file=True) to {fname!r}: the vectors file can become only an "
                             f"uncompressed .npy beside a model saved to a path; save to a path without "
                             f".gz/.bz2, or leave move_vectors_file out (the vectors are then copied).")
        ignore = kwargs.get("ignore", args[2] if len(args) > 2 else ())
        if "vectors" in set(ignore or ()):
            raise ValueError("save(move_vectors_file=True, ignore=...) ignores 'vectors': the moved file would be "
                             "removed with the vectors saved nowhere; leave one of the two out.")
        vf = self._vectors_file_state
        if vf.path == fname or vf.path.startswith(fname + "."):
            raise ValueError(f"save(move_vectors_file=True) to {fname!r}: the vectors file {vf.path!r} is a name the "
                             f"save writes (the model or a file saved beside it); save to another path, or give the "
                             f"model another vectors_file before it trains.")
        self.wv.vectors.flush()
        if _file_id(vf.path) != vf.id:  # deleted, or another file put in its place, since the model mapped it
            logger.warning("save(move_vectors_file=True): %s is no longer the file this model's vectors are mapped "
                           "from (deleted or replaced since); the vectors are copied from the model's own map into "
                           "%s.wv.vectors.npy and the file now at that path is left as it is", vf.path, fname)
            return False
        return True

    def _let_go_of_vectors_file(self, saved: str) -> None:
        """After a save that took the vectors file as its own: the run's token taken out of its header (no
        checkpoint of the run continues in a saved model's file), the file's first name removed, its lock
        released, and ``wv.vectors`` the saved vectors, read-only (as ``load(mmap="r")`` gives them)."""
        vf = self._vectors_file_state
        if _file_id(saved)[1:] == vf.id[1:]:  # (moved, not copied) the saved model's now: no run's token in it
            from gensim_im2vec.checkpoint import clear_run_token

            clear_run_token(saved)
        self.wv.vectors = np.load(saved, mmap_mode="r")
        self._vectors_file_state = None
        vf.close()
        if _file_id(vf.path) == vf.id:  # still the model's file at that path (never another one put there)
            os.unlink(vf.path)
        logger.info("%s is now %s (moved, not copied); this model holds it read-only", vf.path, saved)

    @contextlib.contextmanager
    def _saved_vectors(self, moving: bool = False):
        """While saving: ``wv.vectors`` of a `vectors_file` as a plain array over the same pages (no
        copy), so the saved model holds plain vectors of its own (``np.save`` streams them from the
        file, in the main file or a companion ``.npy``) and its load never looks for the file.
        `moving`: the file itself becomes the companion (:meth:`_save_specials`)."""
        vectors = self.wv.vectors
        if isinstance(vectors, np.memmap):
            self.wv.vectors = np.asarray(vectors)
        self._moving_vectors = moving
        try:
            yield
        finally:
            self._moving_vectors = False
            self.wv.vectors = vectors

    @contextlib.contextmanager
    def _saved_features(self, directory: str | None):
        """While saving: ``image_store`` names the feature store (or is None) and the store's rows
        and keys are set aside; features held in memory shrink to the rows of the vocabulary's
        images (``_vocab_image_rows`` renumbered to match)."""
        store = self.feature_store
        held = {name: getattr(self, name, None) for name in
                ("image_vectors", "image_feature_keys", "_features_cache", "_feature_store", "_vocab_image_rows")}
        self.image_store = None
        self._features_cache = self._feature_store = None
        if store is not None:
            self.image_store = store.reference()
            if directory is not None:
                self.image_store["relpath"] = os.path.relpath(self.image_store["path"], directory)
            self.image_vectors = self.image_feature_keys = None
        elif self.image_vectors is not None:
            rows = self._vocab_image_rows
            keep = np.unique(rows[rows >= 0])
            if len(keep) < len(self.image_feature_keys):
                order = np.full(len(self.image_feature_keys), -1, dtype=np.int64)
                order[keep] = np.arange(len(keep))
                self.image_vectors = np.asarray(self.image_vectors[keep])
                self.image_feature_keys = [self.image_feature_keys[i] for i in keep]
                self._vocab_image_rows = np.where(rows >= 0, order[np.maximum(rows, 0)], -1)
        try:
            yield
        finally:
            for name, value in held.items():
                setattr(self, name, value)

    @classmethod
    def load(cls, fname, *args, image_features=None, vectors_file=_RECORDED, **kwargs) -> Im2Vec:
        """Load a model written by :meth:`save` (``mmap="r"``: W, the vectors and features saved with
        the model are memory-mapped read-only).

        A model whose features come from a feature store opens that store again: at the path it
        was saved with, else at the same place relative to the model file (model and store moved
        together). The store must be the same one, possibly with rows appended since.

        Model files are pickles, like every gensim model: load only files you trust.

        A model saved under numpy 1.x loads under numpy 2.x and the other way round (:meth:`save`);
        one that a version before that saved under numpy 2 loads under numpy 2 only (under numpy 1.x a
        ValueError says so): load it there and save it again.

        Parameters
        ----------
        fname : str or os.PathLike
            The saved model (its companion ``.npy`` files beside it).
        image_features : str, os.PathLike, feature store, mapping or (keys, array) pair, optional
            Features to use instead of the recorded ones, e.g. the store's new path after it moved.
            They must hold every image of the vocabulary, with the model's feature dim; a store must
            come from the model's extractor (arch, weights, layer, preprocessing, normalisation:
            each its metadata and the model's record both hold must agree; the same extractor's store
            extracted again is taken). A store that records no extractor (``FeatureStore.from_arrays``
            without that metadata) is taken with a warning; a mapping or pair is not checked.
        vectors_file : str, os.PathLike or None, optional
            The model's ``vectors_file`` from now on instead of the one it was saved with (left out:
            that one), e.g. its new place after the folder of an interrupted run moved or was copied;
            None keeps its vectors in memory. A plain load only records it (the next ``train()``
            moves ``wv.vectors`` there); a checkpoint loaded to be trained on
            (:func:`~gensim_im2vec.checkpoint.resume`) continues in it: the file there written over
            in place when it is the very file the run made (moved there), else a new file, made
            from the checkpoint (any other file already there is refused, as always).
        **kwargs
            As gensim's ``load``, e.g. ``mmap="r"``.

        Raises
        ------
        ValueError
            `fname` is not a saved model, or a companion ``.npy`` beside it is damaged (named); or
            `image_features` was given with a plain gensim Word2Vec file, which has no ``W`` to
            place images with (use :meth:`from_word2vec` to add images); or `mmap` is none of None,
            ``"r"`` (or ``"readonly"``), ``"c"``, ``"r+"`` (numpy's ``"w+"`` would empty the saved arrays' files).
        FileNotFoundError
            `fname`, or a companion file saved beside it (named), or the model's feature store is
            missing (the message names the path and how to give the new one).
        StoreMismatchError
            The feature store at the recorded path is another store, or changed (named); or the store
            given as `image_features` was made by another extractor than the model's (both named).
        NotAModelError
            `fname` holds another kind of object (KeyedVectors, a Doc2Vec, a FastText ...): both a
            TypeError and the AttributeError gensim's ``Word2Vec.load`` raises there.

        Notes
        -----
        A file holding a plain gensim :class:`~gensim.models.word2vec.Word2Vec` (of any version
        gensim itself loads) is loaded as a text-only Im2Vec: the same vocabulary, vectors,
        ``syn1neg`` and settings, no image features, Im2Vec's own options at their defaults
        (logged at INFO and recorded as the lifecycle event "upgraded"). It trains, saves and loads
        like any Im2Vec; :meth:`from_word2vec` adds images to it.

        The ``wv.norms`` saved with the model (:meth:`save`; a plain gensim Word2Vec's too) come with it
        where its vectors are memory-mapped (``mmap="r"``, or a `vectors_file`), themselves memory-mapped
        when saved in their own file; they are checked against the vectors on 64 rows spread over them
        and dropped, with a warning, when they do not match (files changed since the save). A load into
        memory (no `mmap`) leaves them out, as gensim's own load of a model never searched: gensim's
        ``wv.add_vector(s)`` (``wv[key] = vector``) and ``wv.sort_by_descending_frequency()`` keep
        filled norms as they were (its next ``most_similar`` then fails, or ranks by the old order's
        norms), as does a ``wv.vectors`` you replace or write yourself; after any of these on a
        memory-mapped model, or on any ``wv`` searched before (a copy of it too), call
        ``model.wv.fill_norms(force=True)`` before gensim's own searches (the model's calls and
        :meth:`save` compute them again after a sort or an add). Rows written through
        ``mmap="r+"`` change the saved file, not the saved norms, and only 64 rows are checked: save
        the model again after. :meth:`train` drops them (at each epoch's end, for its callbacks). A
        model saved without them (by an earlier version, or during training) has none until its first
        search computes them.
        """
        kwargs.pop("rethrow", None)  # gensim's Word2Vec.load option (log, then raise): errors here always raise
        if vectors_file is not _RECORDED:  # the argument's fault, before the file is read
            vectors_file = _check_vectors_file(vectors_file)
        token = _LOAD_FEATURES.set(image_features)
        vf_token = _LOAD_VECTORS_FILE.set(vectors_file)
        try:
            # gensim's SaveLoad.load, under Word2Vec.load: that one's own type check raises a bare
            # AttributeError for e.g. a KeyedVectors file (reported as a damaged file then)
            model = _checked_load(super(Word2Vec, cls).load, (cls,), fname, *args, upgrade=True, **kwargs)
        finally:
            _LOAD_VECTORS_FILE.reset(vf_token)
            _LOAD_FEATURES.reset(token)
        if not isinstance(model, cls):
            model = cls._from_plain_word2vec(model, os.fspath(fname), image_features)
            if vectors_file is not _RECORDED:
                model.vectors_file = vectors_file
            # gensim saves wv.norms as a search left them, stale when the rows changed after it: the same check
            model._check_saved_norms(fname, args[0] if args else kwargs.get("mmap"),
                                     "gensim saved the norms a search filled before its rows changed?")
        return model

    @contextlib.contextmanager
    def _saved_without_image_rows(self):
        """While saving a checkpoint: ``wv.vectors`` holds the words' rows only, and the model records
        how many rows it had (``_image_rows_left_out``); loading it (any loader: ``_load_specials``)
        writes the images' rows from ``W`` again (:meth:`_restore_image_rows`), as training writes them
        (:func:`~gensim_im2vec.checkpoint.resume` leaves them to the training it resumes). At 100M images the images'
        rows are 40-80 GB that each epoch's checkpoint would write; a model that has not trained (no
        W) is saved whole. Inside another (:class:`~gensim_im2vec.checkpoint.EpochCheckpoint` around
        :meth:`save`, which leaves stale rows out by itself) it does nothing more."""
        if "_image_rows_left_out" in self.__dict__:  # the outer one has set the words' rows aside
            yield
            return
        rows = self._vocab_image_rows
        words = np.flatnonzero(rows < 0)
        if self.W is None or len(words) == len(rows) or len(rows) != len(self.wv.vectors):
            yield
            return
        vectors, norms = self.wv.vectors, self.wv.norms
        whole = np.asarray(vectors)  # a memory map's pages, not a copy (as _saved_vectors)
        prefix = not len(words) or int(words[-1]) == len(words) - 1  # a fresh vocabulary: words, then images
        self.wv.vectors = whole[: len(words)] if prefix else whole[words]
        self.wv.norms = None
        self._image_rows_left_out = len(rows)
        try:
            yield
        finally:
            self.wv.vectors, self.wv.norms = vectors, norms
            self.__dict__.pop("_image_rows_left_out", None)

    def _restore_image_rows(self) -> None:
        """A checkpoint's ``wv.vectors`` back to a row per key: the words' rows where they were, the
        images' written from ``W`` (:meth:`_write_rows`, as :meth:`_write_image_vectors` writes them);
        in the model's `vectors_file` (its own file, in place, when it is still there) when it is
        loaded to be trained on (:func:`~gensim_im2vec.checkpoint.resume`), else in memory.

        Loaded to be trained on, the images' rows are not written (zeros in memory or in a new file;
        the run's own file keeps what it held) and ``_image_rows_from_W`` is False: training never
        reads them, and :meth:`train` writes every one from ``W`` when it ends
        (:meth:`_finish_training`), when it is interrupted once begun, and at each epoch's end for
        callbacks that may read them. At 100M images that saves a pass over the whole feature store
        per resume."""
        n = int(self.__dict__.pop("_image_rows_left_out"))
        words = self.wv.vectors
        at = np.flatnonzero(self._vocab_image_rows < 0)
        if len(at) != len(words) or len(self._vocab_image_rows) != n:
            raise ValueError(f"a checkpoint with {len(words)} word rows of {n} for a vocabulary of "
                             f"{len(self._vocab_image_rows)} keys, {len(at)} of them words: its files do not "
                             f"belong together; remove the checkpoint to start over.")
        resuming = _RESUMING.get()
        if callable(resuming):  # (resume: the checkpoint's inputs checked before any file is opened or made)
            try:
                resuming(self)
            except Exception as e:  # (the resume's refusal, as it is: not a damaged file)
                e._im2vec_as_is = True
                raise
        if resuming and getattr(self, "vectors_file", None) is not None:
            try:
                try:
                    path = _check_vectors_file(self.vectors_file)
                except FileNotFoundError as e:  # the run's folder moved: say how to give its new place
                    raise FileNotFoundError(
                        f"{e} The checkpoint's run kept its vectors there: give its new place, "
                        f"resume(..., vectors_file=PATH) (e.g. its folder moved), or vectors_file=None to keep them "
                        f"in memory.") from None
                if not self._reopen_own_vectors_file(path, n):
                    self._new_vectors_file(path, n, None)
            except OSError as e:  # (a file in the way, a full disk: the load raises it as it is, not as a damaged file)
                e._im2vec_as_is = True
                raise
            whole = self.wv.vectors
        else:
            whole = self.wv.vectors = np.zeros((n, self.wv.vector_size), dtype=REAL)
        for lo in range(0, len(at), _VECTORS_CHUNK):
            whole[at[lo:lo + _VECTORS_CHUNK]] = words[lo:lo + _VECTORS_CHUNK]
        del words
        self.wv.norms = None
        images = np.flatnonzero(self._vocab_image_rows >= 0)
        if resuming:  # train() writes them all from W (nothing reads them before): not here as well
            self._image_rows_from_W = False
            self._image_rows_unwritten = True  # (written as the training begins if a callback may read them)
            logger.info("checkpoint: the images' %i rows of wv left unwritten; training writes them from W when "
                        "it ends", len(images))
            return
        if len(images):
            self._write_rows(images, whole)  # here, not moved into vectors_file by a load that only reads
        self._image_rows_from_W = True
        logger.info("checkpoint: the images' %i rows of wv written from W", len(images))

    @classmethod
    def _from_plain_word2vec(cls, w2v: Word2Vec, path: str, image_features=None) -> Im2Vec:
        """`w2v`, loaded from `path` (gensim's ``_load_specials`` has brought an old one up to
        date), as a text-only Im2Vec: its own attributes and arrays, not copied; Im2Vec's options
        at the defaults of :meth:`__init__`'s signature, its image state empty."""
        if image_features is not None:
            raise ValueError(
                f"{path!r} holds a plain gensim Word2Vec: it has no image mapping W, so it cannot be loaded "
                f"with image_features=. To add images to it, use Im2Vec.from_word2vec(Im2Vec.load(path), "
                f"image_features=..., sentences=...) or `im2vec train DOCUMENTS -f STORE -o MODEL --pretrained "
                f"{path}`."
            )
        model = cls.__new__(cls)
        model.__dict__.update(w2v.__dict__)
        options = [p.name for p in inspect.signature(Im2Vec._init_image_state).parameters.values()
                   if p.kind is p.KEYWORD_ONLY]
        defaults = inspect.signature(cls.__init__).parameters
        model._init_image_state(**{name: defaults[name].default for name in options})
        model.image_store = None
        model.n_pretrained_words = model.n_trained_words = len(model.wv)  # its words have their vectors
        model._refresh_image_index()
        if model.negative:
            model.make_cum_table()  # gensim's table again, and Im2Vec's negative tables
        logger.info("%r holds a plain gensim Word2Vec (%i words, vector_size %i, %s): loaded as a text-only "
                    "Im2Vec (no image features, Im2Vec's options at their defaults); Im2Vec.from_word2vec adds "
                    "images to it", path, len(model.wv), model.wv.vector_size,
                    f"negative={model.negative}" if model.negative else f"hs={model.hs}")
        model.add_lifecycle_event("upgraded", log_level=False,
                                  msg=f"loaded a plain gensim Word2Vec from {path!r} as a text-only Im2Vec")
        return model

    def _load_specials(self, *args, **kwargs):
        fname = args[0] if args else kwargs.get("fname")
        # a model saved before feature stores were referenced holds its features itself: the one
        # place where old saved models are brought up to date
        # (the defaults are what those older models trained with: the pair heads, one W step a job)
        for name, default in (("image_store", None), ("image_vectors", None), ("image_feature_keys", []),
                              ("feature_mean", None), ("image_batch", 0), ("image_heads", "output"),
                              ("image_context", "window"), ("n_trained_words", None), ("space_candidates", "run"),
                              ("space_common_directions", None), ("space_directions", None),
                              ("space_decoder", 0.0), ("space_tag_prior", 0.0), ("space_analogies", None),
                              ("space_analogy_alpha", 0.05), ("space_analogy_negatives", 4096),
                              ("space_analogy_seconds", 0.0), ("space_analogy_loss", float("nan")),
                              ("_analogy_plan", None), ("vectors_file", None), ("_vectors_file_id", None),
                              ("_vectors_file_token", None),
                              ("_space_readout", 0.0), ("readout_W", None), ("readout_offset", None),
                              ("space_readout_directions", 0), ("space_calibrate_new_words", False),
                              ("_readout_sums", None), ("neighbour_keys", None), ("neighbour_bag_ptr", None),
                              ("neighbour_bag_words", None), ("neighbour_bag_scale", None),
                              ("neighbour_word_vectors", None), ("neighbour_tag_keys", None),
                              ("_previous_pool", None), ("space_neighbour_seconds", 0.0),
                              ("neighbour_index", "exact"), ("space_neighbour_index", "exact"),
                              ("neighbour_nprobe", 0),
                              ("space_neighbour_nprobe", 32),
                              ("neighbour_k", 0), ("_gathered_words", None), ("neighbour_index_token", None)):
            self.__dict__.setdefault(name, default)
        # a model saved before the flag was kept: its image rows are W's if it has trained
        self.__dict__.setdefault("_image_rows_from_W", bool(getattr(self, "train_count", 0)))
        if "space_readout" in self.__dict__:  # saved before space_readout was a property (its rows as they are)
            self.__dict__["_space_readout"] = float(self.__dict__.pop("space_readout"))
        self._features_cache = None
        self._feature_store = None
        self._neighbour_search = None
        self._vectors_file_state = None  # the saved vectors are the model's own, never its vectors_file
        vectors_file = _LOAD_VECTORS_FILE.get()
        if vectors_file is not _RECORDED:  # Im2Vec.load(vectors_file=...): for this model only
            _LOAD_VECTORS_FILE.set(_RECORDED)
            self.vectors_file = vectors_file
        wv = self.__dict__.get("wv")
        # saved without its key dict (_saved_without_key_index): built once below, after the vocabulary's
        # image keys share the features' strings; gensim's own load would build the tables with it first
        pending = wv is not None and len(wv.__dict__.get("key_to_index", ())) != len(getattr(wv, "index_to_key", ()))
        self._key_index_pending = pending
        given = _LOAD_FEATURES.get()
        _LOAD_FEATURES.set(None)  # for this model only, not for objects loaded inside it
        if given is None and self.image_store is not None:
            feats = ImageFeatures.from_any(_open_referenced_store(self.image_store, fname, self))
            feats.checked = True  # the same store the model was built on
            self._attach_features(feats)
        # gensim's own _load_specials rebuilds the cumulative tables (ours too, see make_cum_table)
        try:
            with _transients_quiet():
                super()._load_specials(*args, **kwargs)
        finally:
            self.__dict__.pop("_key_index_pending", None)
        self._scan_tag_counts = None
        self._image_occurrences = 0
        self._old_neighbour_state()  # (after gensim's load: it reads arrays saved in files of their own)
        rows = getattr(self, "_vocab_image_rows", None)
        if given is not None:
            try:
                self._use_given_features(given, fname)
            except StoreMismatchError:
                raise
            except (ValueError, TypeError) as e:  # the argument's fault, not the file's (_checked_load)
                raise _GivenFeaturesError(str(e)) from e
        elif rows is None or len(rows) != len(self.wv.index_to_key):
            self._refresh_image_index()  # a model saved before the rows were kept
        else:
            self._vocab_image_rows = np.array(rows, dtype=np.int64)  # writable, in memory
        self._share_feature_keys()
        if len(self.wv.key_to_index) != len(self.wv.index_to_key):
            self._build_key_index()  # no image strings to share (no images, or no features)
        if pending:
            self.make_cum_table()  # the one gensim's load skipped, with the key index now
        if "_image_rows_left_out" in self.__dict__:  # a checkpoint (_saved_without_image_rows), by any loader
            self._restore_image_rows()
        mmap = args[1] if len(args) > 1 else kwargs.get("mmap")
        self._check_saved_norms(fname, mmap)
        # (the neighbours' faiss index saved beside it: read when first needed, _neighbour_features)
        self._neighbour_index_file = (os.path.abspath(os.fspath(fname)) + NEIGHBOUR_INDEX_SUFFIX
                                      if isinstance(fname, (str, os.PathLike)) else None)

    def _old_neighbour_state(self) -> None:
        """The neighbours' state of a model saved by fit_neighbours before `space_neighbours`
        (2026-12-06): its dense bags (an image's whitened words summed) become bags of one "word"
        each, its k and weight the model's settings; a model never fitted then held weight 0.0 for
        "nothing fitted", which is not its γ."""
        state = self.__dict__
        bags, old_weight = state.pop("neighbour_bags", None), state.pop("neighbour_weight", None)
        state.pop("_neighbour_T", None)  # (the old name of the search's features: saved when large)
        if isinstance(state.get("_previous_pool"), dict):  # an interrupted train()'s pool, saved as word lists
            self._previous_pool = pool_from_words(state["_previous_pool"])
        ids = state.pop("neighbour_tag_ids", None)  # (a day's name: vocabulary indices, as keys now)
        if ids is not None and state.get("neighbour_tag_keys") is None:
            self.neighbour_tag_keys = [self.wv.index_to_key[t] for t in np.asarray(ids).tolist()]
        if bags is not None:
            n = len(bags)
            self.neighbour_bag_ptr, self.neighbour_bag_words = np.arange(n + 1), np.arange(n, dtype=np.int32)
            self.neighbour_bag_scale, self.neighbour_word_vectors = np.ones(n, dtype=REAL), np.asarray(bags)
            state.setdefault("space_neighbours", int(state["neighbour_k"]))
            state.setdefault("_space_neighbour_weight", float(old_weight if old_weight is not None else 1.0))
        state.setdefault("space_neighbours", 0)
        state.setdefault("_space_neighbour_weight", 1.0)

    #: Rows of a loaded model whose saved norm :meth:`_check_saved_norms` computes again (evenly spaced).
    _NORMS_CHECKED = 64

    def _check_saved_norms(self, fname, mmap=None, cause: str = "its files changed since it was saved?") -> None:
        """The ``wv.norms`` a model was saved with (:meth:`save` fills them from the rows it saves), kept
        only when they are one per row, of the vectors' float type, and the norms of
        :attr:`_NORMS_CHECKED` rows spread over ``wv.vectors`` (a few pages of a memory-mapped file)
        match: else None (gensim's ``fill_norms`` or :meth:`_ensure_norms` computes them again), with a
        warning. A load that writes rows (a checkpoint's) sets them to None itself. Kept only where the
        vectors are memory-mapped (`mmap` given, or a vectors file), the loads at scale: one into memory
        leaves them out (None), as gensim's own load of a model never searched, because gensim's
        ``add_vectors`` keeps filled norms as they were and its next search then fails (:meth:`load`)."""
        wv = self.__dict__.get("wv")
        norms = None if wv is None else wv.__dict__.get("norms")
        if norms is None:
            return
        vectors = wv.vectors
        if mmap is None and not isinstance(vectors, np.memmap):
            wv.norms = None
            return
        n = len(vectors)
        why = None
        if not isinstance(norms, np.ndarray) or norms.shape != (n,) or norms.dtype != vectors.dtype:
            why = (f"{getattr(norms, 'shape', None)} {getattr(norms, 'dtype', type(norms).__name__)} for "
                   f"{vectors.shape} {vectors.dtype} vectors")
        elif n:
            at = np.unique(np.linspace(0, n - 1, min(n, self._NORMS_CHECKED)).astype(np.int64))
            expected = np.linalg.norm(np.asarray(vectors[at]), axis=1)
            wrong = np.flatnonzero(~np.isclose(np.asarray(norms[at]), expected, rtol=1e-5, atol=1e-6, equal_nan=True))
            if len(wrong):
                i = int(at[wrong[0]])
                why = (f"row {i} ({wv.index_to_key[i]!r}): saved norm {float(norms[i]):.6g}, its vector's "
                       f"{float(expected[wrong[0]]):.6g}")
        if why is None:
            return
        wv.norms = None
        logger.warning("%s: the saved wv.norms do not belong to its vectors (%s; %s), so they are dropped and "
                       "computed again at the first search; save the model again to store right ones", fname, why, cause)

    def _share_feature_keys(self) -> None:
        """Point the vocabulary's image keys at the features' own key strings: unpickling made a
        second copy of each (~60 bytes per image, 0.6 GB at 10M)."""
        feats, rows = self.features, self._vocab_image_rows
        idx = np.flatnonzero(rows >= 0)
        if feats is None or not len(idx):
            return
        keys, index_to_key = feats.keys, self.wv.index_to_key
        stale = 0
        for lo in range(0, len(idx), 1 << 20):  # a million at a time: few temporary int objects
            part = idx[lo:lo + (1 << 20)]
            for i, r in zip(part.tolist(), rows[part].tolist()):
                if keys[r] == index_to_key[i]:
                    index_to_key[i] = keys[r]
                else:
                    stale += 1
        if stale:  # saved after wv's keys were reordered by a version that did not follow it
            logger.warning("%i of the saved model's image rows name another key than wv's (its keys were reordered, "
                           "e.g. by wv.sort_by_descending_frequency(), before it was saved): the images are found by "
                           "their keys again; training it is refused (its output weights follow the old order)", stale)
            self._refresh_image_index()
            self._vocab_reordered = True
            self.wv.norms = None  # (gensim's sort kept the old ones, and they may have been saved)
            self._share_feature_keys()
            return
        self._build_key_index()  # the copies go now (a dict loaded with the model: rebuilt in place)

    def _build_key_index(self) -> None:
        """``wv.key_to_index`` from ``wv.index_to_key``: a :class:`~gensim_im2vec.store.VocabKeyIndex`
        (the images' range in a KeyIndex, ≈ 15 bytes a key; the other keys in a dict) where the
        vocabulary has images, else a dict, emptied and filled in place."""
        wv = self.wv
        index_to_key = wv.index_to_key
        start, stop = self._image_range()
        if stop > start:
            wv.key_to_index = VocabKeyIndex.from_keys(index_to_key, start, stop)
            return
        k2i = wv.key_to_index
        if not isinstance(k2i, dict):
            k2i = wv.key_to_index = {}
        k2i.clear()
        k2i.update(zip(index_to_key, range(len(index_to_key))))

    def _image_range(self) -> tuple[int, int]:
        """The first run of images in the vocabulary, ``(start, stop)`` (``(0, 0)`` without one): the
        images build_vocab put after the words (an update's new ones come after its new words)."""
        rows = getattr(self, "_vocab_image_rows", None)
        if rows is None or len(rows) != len(self.wv.index_to_key):
            return 0, 0
        images = np.flatnonzero(np.asarray(rows) >= 0)
        if not len(images):
            return 0, 0
        start = int(images[0])
        words_after = np.flatnonzero(np.asarray(rows[start:]) < 0)
        return start, start + (int(words_after[0]) if len(words_after) else len(rows) - start)

    def _use_given_features(self, given, fname) -> None:
        """Take the features passed to :meth:`load` instead of the recorded ones (checked: a store's
        extractor against the model's record, dim, and every image of the vocabulary)."""
        src = FeatureStore.open(given) if isinstance(given, (str, os.PathLike)) else given
        feats = ImageFeatures.from_any(src, name="image_features")
        _check_given_extractor(self, feats, fname)
        saved = getattr(self, "_vocab_image_rows", None)
        if saved is None or len(saved) != len(self.wv.index_to_key):
            self._refresh_image_index()
            saved = self._vocab_image_rows
        was_image = np.asarray(saved) >= 0
        if self.W is not None and feats.dim != self.W.shape[1]:
            raise ValueError(f"{feats.name}: expected features of dim {self.W.shape[1]} (the model's W), got "
                             f"{feats.dim}; give the features the model {fname!r} was trained with.")
        self._attach_features(feats)
        self._refresh_image_index()
        rows = self._vocab_image_rows
        lost = np.flatnonzero(was_image & (rows < 0))
        if len(lost):
            shown = [self.wv.index_to_key[i] for i in lost[:5]]
            raise ValueError(f"{feats.name}: the features lack {len(lost)} of the model's {int(was_image.sum())} "
                             f"images, e.g. {shown}; give features that hold every image of the vocabulary.")
        rows[~was_image] = -1  # the vocabulary's words stay words (the negative tables hold)

    def __str__(self) -> str:
        # the feature dim from the image features as soon as they are given (W comes with build_vocab)
        vectors = getattr(self, "image_vectors", None)
        dim = int(vectors.shape[1]) if vectors is not None and np.ndim(vectors) == 2 else 0
        n_img = int(np.sum(self._vocab_image_rows >= 0))
        return (f"{self.__class__.__name__}<vocab={len(self.wv.index_to_key)} ({n_img} images), "
                f"vector_size={self.wv.vector_size}, features={dim}, alpha={self.alpha}>")

    def __repr__(self) -> str:  # (a notebook shows the repr: gensim leaves it object's <... object at 0x...>)
        try:
            return self.__str__()
        except Exception:  # (a model not fully made, e.g. in a subclass's __init__ or a failed load: never raise)
            return f"<{self.__class__.__name__} (not fully made) at {id(self):#x}>"


# ---------------------------------------------------------------------------------- the neighbours' search


class _ExactNeighbours:
    """Every fitted image's unit features in memory (``n × F`` floats); a query block is compared
    with each of them (:data:`NEIGHBOUR_EXACT_MAX` bounds n)."""

    def __init__(self, features: ImageFeatures, rows: np.ndarray) -> None:
        self.T = np.empty((len(rows), features.dim), dtype=REAL)
        for lo in range(0, len(rows), _WRITE_CHUNK):
            self.T[lo:lo + _WRITE_CHUNK] = features.gather_normalized(rows[lo:lo + _WRITE_CHUNK])
        self.block = max(1, min(1024, (1 << 22) // max(len(rows), 1)))  # 4M cosines at a time: ≈ 64 MB

    #: Queries a :meth:`plan` covers (:attr:`_FaissNeighbours.span`): all of them.
    span = 1 << 62

    def plan(self, Q: np.ndarray) -> None:
        """Nothing to group: every query reads the same memory (:meth:`_FaissNeighbours.plan`)."""
        return None

    def search(self, Q: np.ndarray, k: int, probes=None) -> tuple[np.ndarray, np.ndarray]:
        """The cosines and positions of the `k` nearest fitted images of each unit query (any order)."""
        S = Q @ self.T.T
        if k >= S.shape[1]:
            return S, np.broadcast_to(np.arange(S.shape[1]), S.shape)
        idx = np.argpartition(-S, k - 1, axis=1)[:, :k]
        return np.take_along_axis(S, idx, 1), idx


def _import_faiss(spec: str):
    try:
        import faiss
    except ImportError:
        raise ImportError(f"this model's neighbours were fitted with the faiss index {spec!r}: pip install "
                          f"faiss-cpu, or fit them exactly: model.space_neighbour_index = 'exact'; "
                          f"model.fit_neighbours(documents).") from None
    return faiss


#: The first bytes of a saved neighbours' index (``FNAME.neighbours.faiss``), before the fit's token
#: and the features' digest (a line each: :data:`_NEIGHBOUR_INDEX_HEAD` bytes), faiss's own bytes and
#: their CRC-32 (4 bytes).
_NEIGHBOUR_INDEX_MAGIC = b"gensim-im2vec neighbours faiss index v1\n"
#: The token's and the digest's lines: 32 and 40 hex digits.
_NEIGHBOUR_INDEX_HEAD = 33 + 41
#: The name ending of the file :meth:`Im2Vec.save` writes a faiss `space_neighbour_index` into.
NEIGHBOUR_INDEX_SUFFIX = ".neighbours.faiss"
#: :meth:`Im2Vec._prepare_neighbour_index`: the file beside the model already holds its index.
_INDEX_IN_PLACE = "(in place)"


class _FaissNeighbours:
    """A faiss index over the fitted images' unit features (inner product = cosine), its rows
    added a chunk at a time (an IVF-PQ index keeps its codes alone: no ``n × F`` copy), trained on
    at most :data:`NEIGHBOUR_TRAIN_ROWS` evenly spaced rows. Where the index's scores are not the
    features' cosines (codes: PQ, SQ; a transform first: PCA, OPQ) the ``4k`` best candidates are
    re-ranked by their exact cosines, read from the features: a training image finds itself,
    at cosine 1, whenever it is among them. Saved beside the model (:meth:`write`: the fit's token
    and the features' digest, faiss's bytes, their CRC-32) and read back after a load (:meth:`read`)
    instead of built again."""

    def __init__(self, features: ImageFeatures, rows: np.ndarray, spec: str, nprobe: int, k: int,
                 index=None) -> None:
        faiss = _import_faiss(spec)
        start = default_timer()
        self.features, self.rows = features, rows
        built = index is None
        if built:
            index = faiss.index_factory(features.dim, spec, faiss.METRIC_INNER_PRODUCT)
        self.index = index
        top = faiss.downcast_index(index)
        # (an index whose scores are the inner products of the vectors as given: the cosines)
        self.exact = isinstance(top, (faiss.IndexFlat, faiss.IndexIVFFlat, faiss.IndexHNSWFlat))
        # faiss builds some indexes by L2 whatever the metric asked ("HNSW16_PQ8"): on unit vectors the same
        # order, and a squared distance d is the cosine 1 - d/2
        self.l2 = index.metric_type == faiss.METRIC_L2
        # a refine stage (",Refine(SQ8)", ",RFlat"): faiss re-ranks the base's candidates by the refine
        # index's own copy of the vectors, in memory: no feature row read from the store
        self.refine = isinstance(top, faiss.IndexRefine)
        if self.refine:
            top.k_factor = float(NEIGHBOUR_RERANK)
        self.rerank = 1 if self.exact or self.refine else NEIGHBOUR_RERANK
        # the index under a refine stage and transforms (PCA, OPQ), and the transforms on the way to it
        self._chain, base = [], top
        while isinstance(base, (faiss.IndexRefine, faiss.IndexPreTransform)):
            if isinstance(base, faiss.IndexPreTransform):
                self._chain += [base.chain.at(i) for i in range(base.chain.size())]
            base = faiss.downcast_index(base.base_index if isinstance(base, faiss.IndexRefine) else base.index)
        if isinstance(base, faiss.IndexHNSW):  # (HNSW returns fewer than asked below it: k, or the 4k re-ranked)
            base.hnsw.efSearch = max(128, 4 * k * (1 if self.exact else NEIGHBOUR_RERANK))
        # an IVF index whose candidates are re-ranked from the features (no refine stage: nothing is read then):
        # a batch of queries can be searched grouped by the list each is nearest (:meth:`plan`)
        self._ivf = base if isinstance(base, faiss.IndexIVF) and self.rerank > 1 else None
        if built and not index.is_trained:
            n_train = min(len(rows), NEIGHBOUR_TRAIN_ROWS)
            take = np.unique(np.linspace(0, len(rows) - 1, n_train).astype(np.int64))
            index.train(features.gather_normalized(rows[take]))
        if built:
            for lo in range(0, len(rows), _WRITE_CHUNK):
                index.add(features.gather_normalized(rows[lo:lo + _WRITE_CHUNK]))
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = min(int(nprobe), ivf.nlist)  # (faiss's own search probes at most every list)
        self.block = 256
        self._lists = self._rows_order = None
        if built:
            logger.info("space_neighbours: faiss %r over %i images' features built in %.1fs (%s)", spec, len(rows),
                        default_timer() - start, "exact scores" if self.exact else
                        f"re-ranked x{NEIGHBOUR_RERANK} by its refine index" if self.refine else
                        f"re-ranked x{self.rerank} by the features")

    def rows_order(self) -> np.ndarray:
        """The positions of :attr:`rows` in increasing order (their feature rows), once."""
        if self._rows_order is None:
            self._rows_order = np.argsort(self.rows, kind="stable")
        return self._rows_order

    def lists(self) -> np.ndarray | None:
        """The IVF list each fitted image (by position) is in, or None where nothing is grouped by list
        (:meth:`plan`: no lists, or no feature row read)."""
        if self._lists is None:
            faiss, ivf = _import_faiss(""), self._ivf
            if ivf is None:
                return None
            lists = np.full(len(self.rows), -1, dtype=np.int32)  # (400 MB at 100M images)
            invlists = ivf.invlists
            for number in range(ivf.nlist):
                size = invlists.list_size(number)
                if size:
                    lists[faiss.rev_swig_ptr(invlists.get_ids(number), size)] = number
            self._lists = lists
        return self._lists

    def write(self, path: str, token: str, digest: str) -> None:
        """Write the index to `path` (all or nothing): :data:`_NEIGHBOUR_INDEX_MAGIC`, the fit's `token`
        and the `digest` of the features it was built over (a line each), faiss's bytes, their CRC-32."""
        faiss = _import_faiss("")
        start = default_timer()

        def writer(f):
            f.write(_NEIGHBOUR_INDEX_MAGIC + f"{token}\n{digest}\n".encode("ascii"))
            crc = 0

            def put(data):
                nonlocal crc
                crc = zlib.crc32(data, crc)
                return f.write(data)

            out = faiss.PyCallbackIOWriter(put)
            faiss.write_index(self.index, out)
            del out  # (flushes faiss's buffer into f)
            f.write(crc.to_bytes(4, "big"))

        atomic_write(path, writer)
        logger.info("save: the neighbours' faiss index (%i images) written in %.1fs", self.index.ntotal,
                    default_timer() - start)

    @staticmethod
    def header_of(path: str) -> tuple[str, str] | None:
        """The fit's token and the features' digest a saved index at `path` holds, or None (no such
        file, or not one of ours)."""
        try:
            with open(path, "rb") as f:
                head = f.read(len(_NEIGHBOUR_INDEX_MAGIC) + _NEIGHBOUR_INDEX_HEAD)
        except OSError:
            return None
        lines = head[len(_NEIGHBOUR_INDEX_MAGIC):].split(b"\n")
        if not head.startswith(_NEIGHBOUR_INDEX_MAGIC) or len(lines) != 3 or lines[2]:
            return None
        return lines[0].decode("ascii", "replace"), lines[1].decode("ascii", "replace")

    @classmethod
    def read(cls, path: str, token: str, digest: str, features: ImageFeatures, rows: np.ndarray, spec: str,
             nprobe: int, k: int) -> _FaissNeighbours | None:
        """The index :meth:`write` saved at `path` for the fit `token` over features of this `digest`,
        or None, with a warning, where there is none to read: no such file, another fit's, built over
        other features, or not whole (its CRC, its end, a faiss error)."""
        head = cls.header_of(path)
        why = ("there is no such file" if not os.path.exists(path) else
               "it is not an index saved by Im2Vec.save" if head is None else
               "it is another fit's" if head[0] != token else
               "it was built over other features (the model's features changed since)" if head[1] != digest else None)
        faiss = _import_faiss(spec)
        start = default_timer()
        index = None
        if why is None:
            try:
                with open(path, "rb") as f:
                    f.seek(len(_NEIGHBOUR_INDEX_MAGIC) + _NEIGHBOUR_INDEX_HEAD)
                    crc = 0

                    def get(n):
                        nonlocal crc
                        data = f.read(n)
                        crc = zlib.crc32(data, crc)
                        return data

                    source = faiss.PyCallbackIOReader(get)
                    index = faiss.read_index(source)
                    del source
                    if f.read() != crc.to_bytes(4, "big"):
                        why = "its bytes are damaged (their CRC-32 or its end)"
            except Exception as err:  # (faiss: RuntimeError; a damaged size: MemoryError)
                why = f"faiss could not read it: {_faiss_reason(err) if isinstance(err, RuntimeError) else repr(err)}"
        if why is None and (not index.is_trained or index.metric_type not in _neighbour_metrics(faiss)
                            or index.ntotal != len(rows) or index.d != features.dim):
            why = (f"it holds {index.ntotal} vectors of dim {index.d} (trained: {index.is_trained}), not the fit's "
                   f"{len(rows)} of dim {features.dim} by inner product or L2")
        if why is not None:
            logger.warning("space_neighbours: the saved faiss index %s is not read (%s); building it again", path,
                           why)
            return None
        logger.info("space_neighbours: faiss %r over %i images read from %s in %.1fs", spec, len(rows), path,
                    default_timer() - start)
        return cls(features, rows, spec, nprobe, k, index=index)

    def plan(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """For a batch of unit queries `Q` whose candidates are re-ranked from the features: an order
        of the queries grouped by the IVF list each is nearest, and the lists each probes with their
        distances (faiss's coarse search, done here once instead of inside :meth:`search`). Searched
        in that order, a block of queries from a few lists shares its candidates, whose feature rows
        are read once a block (docs/scale.md); the neighbours are those of the queries' own order (to
        float rounding: a near tie may fall the other way, as with other blocks). None where there is
        nothing to group: an exact or refined index, no lists, a single block. :attr:`span` queries at
        most (the lists and distances: 12 bytes a query and probe)."""
        if self._ivf is None or len(Q) <= self.block:
            return None
        if self._ivf.nprobe > self._ivf.nlist:  # (set after the build: faiss's preassigned search reads the
            self._ivf.nprobe = self._ivf.nlist  # lists at the width it probes, every list; its search does the same)
        nprobe, step = self._ivf.nprobe, 1 << 14
        dist, lists = np.empty((len(Q), nprobe), dtype=REAL), np.empty((len(Q), nprobe), dtype=np.int64)
        for lo in range(0, len(Q), step):
            dist[lo:lo + step], lists[lo:lo + step] = self._ivf.quantizer.search(self._transform(Q[lo:lo + step]), nprobe)
        return np.argsort(lists[:, 0], kind="stable"), dist, lists

    @property
    def span(self) -> int:
        """How many queries one :meth:`plan` covers: its lists and distances within about 256 MB."""
        nprobe = 1 if self._ivf is None else min(self._ivf.nprobe, self._ivf.nlist)
        return max(self.block, (1 << 28) // (12 * max(nprobe, 1)))

    def _transform(self, Q: np.ndarray) -> np.ndarray:
        """The queries as the IVF index under the transforms (PCA, OPQ) sees them."""
        Q = np.ascontiguousarray(Q, dtype=REAL)
        for transform in self._chain:
            Q = transform.apply(Q)
        return Q

    def search(self, Q: np.ndarray, k: int, probes: tuple[np.ndarray, np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`_ExactNeighbours.search`; a position faiss could not fill (fewer candidates than
        `k` in the probed lists) gets cosine 0, which weighs nothing. `probes`: these queries' rows
        of :meth:`plan`'s distances and lists (the coarse search already done)."""
        want = min(len(self.rows), k * self.rerank)
        Q = np.ascontiguousarray(Q, dtype=REAL)
        if probes is None:
            S, idx = self.index.search(Q, want)
        else:
            S, idx = self._ivf.search_preassigned(self._transform(Q), want, probes[1], probes[0])
        if self.l2:
            S = 1.0 - 0.5 * S
        missing = idx < 0
        idx = np.where(missing, 0, idx)
        if self.rerank > 1:  # the candidates' exact cosines, from the features (≈ 64 MB of rows at a time)
            S = np.empty(idx.shape, dtype=REAL)
            step = max(1, (1 << 24) // max(want * self.features.dim, 1))
            for lo in range(0, len(Q), step):
                part = idx[lo:lo + step]
                uniq, inverse = np.unique(part.ravel(), return_inverse=True)
                U = self.features.gather_normalized(self.rows[uniq])
                S[lo:lo + step] = np.einsum("qcf,qf->qc", U[inverse].reshape(*part.shape, -1), Q[lo:lo + step])
        S = np.where(missing, 0.0, S).astype(REAL)
        if k < S.shape[1]:
            best = np.argpartition(-S, k - 1, axis=1)[:, :k]
            S, idx = np.take_along_axis(S, best, 1), np.take_along_axis(idx, best, 1)
        return S, idx


# ---------------------------------------------------------------------------------- training


#: The readout's ridge penalty λ (`space_readout`; the ridge baseline's own, on unit-norm features).
READOUT_PENALTY = 1.0
#: What gensim's ``SaveLoad._save_specials`` writes into an object's ``__dict__`` (and leaves there): the
#: attributes saved as companion files, and the objects saved recursively.
_GENSIM_SAVE_RECORDS = ("__numpys", "__scipys", "__ignoreds", "__recursive_saveloads")

#: The neighbours' words (`space_neighbours`, :meth:`Im2Vec.fit_neighbours`): a neighbour weighs its
#: feature cosine to this power (20: a training image's own words outweigh its neighbours', a new
#: image takes mostly its nearest images').
NEIGHBOUR_POWER = 20.0
#: The neighbours' words: λ of the whitening ``(G + λI)⁻¹`` (``G``'s trace is 1).
NEIGHBOUR_WHITEN = 0.005
#: What :meth:`Im2Vec.fit_neighbours` sets: the settings and the fitted state.
_NEIGHBOUR_STATE = ("space_neighbours", "_space_neighbour_weight", "neighbour_keys", "neighbour_bag_ptr",
                    "neighbour_bag_words", "neighbour_bag_scale", "neighbour_word_vectors", "neighbour_tag_keys",
                    "neighbour_k", "neighbour_index", "neighbour_nprobe", "neighbour_index_token",
                    "_neighbour_index_file", "_neighbour_search", "_previous_pool")
#: :meth:`Im2Vec.fit_neighbours`' `k` on a model whose `space_neighbours` is 0 (the demo's k).
NEIGHBOURS = 20
#: The most training images the neighbours' exact search takes (their features kept in memory, every
#: pair compared to fit: hours at 1M images); more is refused before training, naming this constant.
NEIGHBOUR_EXACT_MAX = 1_000_000
#: A faiss `space_neighbour_index` that does not keep the vectors (PQ, SQ) re-ranks this many times k
#: candidates by their exact cosines.
NEIGHBOUR_RERANK = 4
#: The most feature rows a faiss `space_neighbour_index` trains on (evenly spaced; faiss asks for 39 to
#: 256 a list: enough for 1,024-6,700 lists; 1 GB of float32 rows at 1,024 features).
NEIGHBOUR_TRAIN_ROWS = 262_144

#: The most image occurrences whose sums the readout gathers in a ``train()``'s last epoch (an F × D
#: product each): at 100M images a sample, the first to train.
READOUT_MAX_IMAGES = 1_000_000
#: About how many of those images' feature rows make the readout's F × F Gram ``XᵀX`` (2·F² flops a row:
#: 3.3 Mflop at F = 1,280, three times the rest of the readout and of the map's step on that row). The
#: Gram needs no words, so past this many image occurrences a uniform sample of them estimates it (each
#: row kept with probability this / the occurrences the last epoch trains, then scaled to all of them):
#: the readout's cost in ``train()`` is then F × D a row, and its Gram a bounded 0.33 Tflop (about 6 s on
#: one core). The joint demo's 61,608 (12 copies of 5,134 images) are under it: its Gram is every row's.
READOUT_GRAM_IMAGES = 100_000
#: How many of the images' rows (evenly spread over the vocabulary) give the images' principal directions
#: that `space_calibrate_new_words` measures the new words' share in (a D × D covariance: no pass over
#: all of them at 100M images).
CALIBRATION_IMAGES = 100_000
#: Above this share of the tags without a pretrained vector, `space_calibrate_new_words` warns: on the
#: demo it helped with 1.3% of them and harmed with 7.8% and 21% (docs/joint-space.md).
CALIBRATION_MAX_SHARE = 0.05


class _ReadoutSums:
    """What the readout is fitted from (`space_readout`): the count, sums and cross-products of the
    images' feature rows ``x`` and targets ``y`` in float64, added a job at a time from the
    workers' threads (each job's products in float32 outside the lock).

    The Gram ``Σ xxᵀ`` and its rows' sum (``sxx``, ``sxs``, ``g`` rows) are of each row with
    probability `gram_rate` (a fixed pseudo-random draw from `seed`; all of them at 1), at most
    twice ``READOUT_GRAM_IMAGES``; ``Σ x``, ``Σ y`` and ``Σ xyᵀ`` are of every row."""

    def __init__(self, n_features: int, size: int, limit: int, gram_rate: float = 1.0, seed: int = 0) -> None:
        self.lock = threading.Lock()
        self.limit = int(limit)
        self.gram_rate = float(gram_rate)
        # a hard stop far above the draw's ~READOUT_GRAM_IMAGES ± its root (at the bound itself, about half
        # the epochs would lose their last documents' rows): only a rate from too few counted images reaches it
        self.gram_limit = self.limit if self.gram_rate >= 1.0 else 2 * READOUT_GRAM_IMAGES
        self.rng = np.random.default_rng(seed)
        self.n = self.g = 0
        self.sx, self.sy, self.sxs = np.zeros(n_features), np.zeros(size), np.zeros(n_features)
        self.sxx, self.sxy = np.zeros((n_features, n_features)), np.zeros((n_features, size))

    def add(self, X: np.ndarray, Y: np.ndarray) -> None:
        with self.lock:
            take = min(len(X), self.limit - self.n)
            self.n += max(take, 0)
            if take <= 0:
                return
            if self.gram_rate >= 1.0:
                gram = None  # every row (the sample is X itself)
                self.g += take
            else:
                gram = np.flatnonzero(self.rng.random(take) < self.gram_rate)[: max(self.gram_limit - self.g, 0)]
                self.g += len(gram)
        X, Y = X[:take], Y[:take]
        G = X if gram is None else X[gram]
        xx, xy = G.T @ G, X.T @ Y
        with self.lock:
            self.sxx += xx
            self.sxy += xy
            self.sx += X.sum(axis=0, dtype=np.float64)
            self.sy += Y.sum(axis=0, dtype=np.float64)
            self.sxs += G.sum(axis=0, dtype=np.float64)


class _ImageSync(CallbackAny2Vec):
    """Im2Vec's own callback, ahead of the user's: as training begins (gensim's ``on_train_begin``,
    once it has accepted the arguments) `begin` runs (:meth:`Im2Vec._begin_training`), and from
    then on an interrupted ``train()`` writes the image rows (`started`); at each epoch's end
    (only when the user gave callbacks that may read them, e.g. one that evaluates; not for
    :class:`~gensim_im2vec.checkpoint.EpochCheckpoint`) the images' rows of ``wv`` are written from
    W; at the end of training `finish` runs
    (:meth:`Im2Vec._finish_training`) before any user's ``on_train_end``. At each epoch's end
    ``wv.norms`` go (None: a search computes them again), as gensim drops them only when
    ``train()`` ends: a callback's search would rank by the rows as they were (a model loaded
    with ``mmap="r"`` brings the saved ones, :meth:`Im2Vec.load`)."""

    def __init__(self, begin, finish, each_epoch: bool) -> None:
        self.begin = begin
        self.finish = finish
        self.each_epoch = each_epoch
        self.started = self.finished = False

    def on_train_begin(self, model) -> None:
        self.begin()
        self.started = True
        if model.__dict__.pop("_image_rows_unwritten", False) and self.each_epoch:
            model._write_image_vectors()  # a resumed checkpoint's rows, for the user's on_train_begin

    def on_epoch_begin(self, model) -> None:
        model._epoch_begins()

    def on_epoch_end(self, model) -> None:
        model.wv.norms = None  # the epoch moved the rows: the user's callbacks' searches compute them again
        model._space_analogy_epoch()
        if self.each_epoch:
            model._write_image_vectors()

    def on_train_end(self, model) -> None:
        self.finish()
        self.finished = True


class _Epoch:
    """What the threads of one epoch over an iterable share (:meth:`Im2Vec._train_epoch`): the
    errors of its jobs and of its corpus iterator, whether it is halted (an exception left the
    epoch in the main thread), and the count of its worker threads and of the jobs they train.

    Each worker thread keeps its own epoch's object (:meth:`Im2Vec._worker_loop`), so a halted
    epoch's threads train nothing more, and a later ``train()`` starts with a new one."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.errors: list[BaseException] = []
        self.halted = False  # a plain attribute: the producer reads it before each document
        self._cond = threading.Condition()
        self._active = self._entered = self._left = 0

    @classmethod
    def ended(cls) -> _Epoch:
        """An epoch already halted: for a worker thread that first runs after its epoch ended."""
        epoch = cls(0)
        epoch.halted = True
        return epoch

    def fail(self, err: BaseException) -> None:
        """Keep `err` for the epoch to raise (the first one is raised), and halt it."""
        with self._cond:
            self.errors.append(err)
            self.halted = True

    def halt(self) -> None:
        with self._cond:
            self.halted = True

    def enter(self) -> None:
        with self._cond:
            self._entered += 1
            self._cond.notify_all()

    def leave(self) -> None:
        with self._cond:
            self._left += 1
            self._cond.notify_all()

    def begin_job(self) -> bool:
        """Whether a worker trains its next job (no, once halted); a job begun is counted until
        :meth:`end_job`."""
        with self._cond:
            if self.halted:
                return False
            self._active += 1
            return True

    def end_job(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def settle(self, progress_queue=None, grace: float = _SETTLE_GRACE) -> None:
        """After :meth:`halt`: wait until no job trains (W no longer moves), and for up to `grace`
        seconds more until every worker thread has entered the epoch (so none takes a later
        epoch's object) or, given gensim's `progress_queue`, has ended, its reports taken off the
        queue (gensim's workers block on a full one). Past `grace` (a producer blocked in the
        corpus iterator keeps its workers waiting) the threads are left, halted."""
        deadline = default_timer() + grace
        while True:
            with self._cond:
                done = self._entered if progress_queue is None else self._left
                if self._active == 0 and (done >= self.workers or default_timer() >= deadline):
                    if done < self.workers:
                        logger.warning("%i of the %i worker thread(s) of the interrupted epoch are still waiting "
                                       "(for the corpus iterator, or to start); they train nothing more",
                                       self.workers - done, self.workers)
                    return
                if progress_queue is None:
                    self._cond.wait(0.05)
                    continue
            try:
                progress_queue.get(timeout=0.05)
            except queue.Empty:
                pass


def _epoch_corpus(data_iterable, epoch: _Epoch, check_documents: bool = False):
    """`data_iterable`, read for gensim's producer thread until `epoch` halts (a job's error, an
    interrupt): a failed epoch reads no more of the corpus. An exception of the iterator itself
    (e.g. an OSError reading a file) is kept for the epoch to raise, and the reading stops: in
    gensim it ends the producer's thread, and ``train()`` waits for it forever. Any exception is
    kept (it would kill the thread as surely); it is raised by ``train()`` with its traceback. With
    `check_documents` (a model with images), a document given as one str (read as its characters) is
    such an error (:func:`check_document`)."""
    try:
        docs = iter(data_iterable)
    except BaseException as err:  # whatever it is: a dead producer would hang train()
        epoch.fail(err)
        return
    i = -1
    while not epoch.halted:
        try:
            doc = next(docs)
            i += 1
            if check_documents and isinstance(doc, (str, bytes)):
                check_document(doc, i)
        except StopIteration:
            return
        except BaseException as err:
            epoch.fail(err)
            return
        yield doc


# ---------------------------------------------------------------------------------- features


def _no_image_tokens_message(feats: ImageFeatures, raw_vocab, prefix: str, n_documents: int | None = None) -> str:
    """Why a corpus given with features trained no image: no token of it is a feature key, or it
    yielded no document at all (an empty folder or file: said as such, not as keys that differ)."""
    if not raw_vocab:
        docs = "no document" if not n_documents else f"{n_documents} empty documents"
        return (f"the corpus yielded {docs}, so there is nothing to train on (and {feats.name}'s {len(feats)} "
                f"images would have no words). Check the corpus: an empty folder or file yields no document, and so "
                f"does a FolderCorpus whose images have no sidecar (x.json or x.txt beside x.jpg; its .stats say "
                f"what it skipped).")
    corpus = list(itertools.islice(raw_vocab, 5))
    keys = list(feats.keys[:5])
    hint = ""
    if prefix and any(k.startswith(prefix) and k[len(prefix):] in raw_vocab for k in feats.keys[:1000]):
        hint = (f" The documents name the images without the prefix {prefix!r}: write "
                f"'{prefix}<key>' in the documents (e.g. corpora's prefix= option).")
    return (f"{feats.name}: none of its {len(feats)} keys occurs in the documents, so the model would have no "
            f"images. Feature keys look like {keys}; document tokens like {corpus}.{hint} Make the documents "
            f"name each image by its feature key, or leave image_features out to train words alone.")


def _image_features(obj) -> ImageFeatures:
    """`obj` (``image_features=``: a mapping, a ``(keys, array)`` pair, a feature store or the path
    of one, as :meth:`Im2Vec.load` takes) as :class:`ImageFeatures`."""
    if isinstance(obj, (str, os.PathLike)):
        obj = FeatureStore.open(obj)
    feats = ImageFeatures.from_any(obj)
    if not isinstance(feats.source, FeatureStore):  # a FeatureStore refuses such keys when they are written
        check_image_keys(feats.keys, name=feats.name)
    return feats


# ---------------------------------------------------------------------------------- saving


def _file_path(fname, subject: str, example: str, or_else: str = "") -> str:
    """`fname` as the absolute path of a file to write, refused (naming it and the fix) when it is a
    folder or its folder is missing; `subject` opens the message, `example` names a file to give in
    the folder, `or_else` ends the missing folder's fix."""
    path = os.path.abspath(os.fspath(fname))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{subject}: it is a folder; give a file name in it, e.g. "
                                f"{os.path.join(os.fspath(fname), example)!r}.")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{subject}: the folder {folder!r} does not exist; create it first "
                                f"(os.makedirs({folder!r}, exist_ok=True)){or_else}.")
    return path


def _check_save_path(fname) -> str:
    """The absolute path a model is saved to, refused (naming it and the fix) when it is a folder
    or its folder is missing: the error would otherwise name a temporary file, and a folder's
    companion files would land beside it."""
    return _file_path(fname, f"cannot save the model to {os.fspath(fname)!r}", "model.im2vec")


# ---------------------------------------------------------------------------------- vectors on disk

_VECTORS_CHUNK = 1 << 16  # rows per step when a vectors file is filled or copied (25 MB at D = 100)
_GiB = 1024**3


def _check_vectors_file(value) -> str | None:
    """``vectors_file`` as an absolute path (None stays None), refused (naming it and the fix) when it
    is not a path, is a folder, or its folder is missing."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or isinstance(os.fspath(value), bytes):
        raise TypeError(f"vectors_file must be a file path (str or os.PathLike) or None (the vectors in memory), "
                        f"got {type(value).__name__} {value!r}.")
    return _file_path(value, f"vectors_file {os.fspath(value)!r}", "vectors.npy", " or choose another path")


def _new_run_token(file: str) -> str | None:
    """A new random token, written into the ``.npy`` header of the vectors file `file` this model makes (None
    when the header has no room): the file is known by it as the one the model made, whatever its path
    (:meth:`Im2Vec._reopen_own_vectors_file`)."""
    import secrets

    from gensim_im2vec.checkpoint import write_run_token

    token = secrets.token_hex(16)
    return token if write_run_token(file, token) else None


def _file_id(path: str) -> tuple[str, int, int] | None:
    """``(path, device, inode)`` of the file at `path` (None when there is none): which file it is,
    whatever its content or size."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return path, st.st_dev, st.st_ino


def _saved_model_of(path) -> str | None:
    """The saved model (or checkpoint) whose array the ``.npy`` file at `path` is, by its name: gensim saves a
    model ``FNAME``'s large arrays beside it as ``FNAME.ATTR.npy`` (``FNAME.wv.vectors.npy``, ``FNAME.W.npy``;
    ``save(move_vectors_file=True)`` makes a run's vectors file the first), so a file ``FNAME.ATTR.npy`` beside a
    saved model ``FNAME`` (:func:`_looks_saved`) is that model's. None otherwise. For messages: such a file is
    never to be deleted."""
    path = os.path.abspath(os.fspath(path))
    if not path.endswith(".npy"):
        return None
    stem = path[: -len(".npy")]
    for _ in range(3):  # ATTR: up to three dotted parts ("wv.vectors")
        if "." not in os.path.basename(stem):
            return None
        stem = stem.rsplit(".", 1)[0]
        if os.path.isfile(stem) and _looks_saved(stem):
            return stem
    return None


def _link_or_copy(source: tuple[str, int, int], target: str, vectors: np.ndarray) -> None:
    """Give the file `source` (``(path, device, inode)``, the file `vectors` maps) the second name
    `target` (nothing written); where the file system cannot (another device, no hard links), or the
    path no longer names that file, write `vectors` to `target` as ``np.save`` does, with a warning
    that says why and what it cost."""
    path = source[0]
    try:
        os.link(path, target)
        if _file_id(target)[1:] == tuple(source[1:]):
            return
        os.unlink(target)  # another file was put at the path since the model mapped its own
        reason = "the file at that path is no longer the one this model maps"
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES,
                           errno.ENOENT):
            raise
        reason = e.strerror or str(e)
    logger.warning("save(move_vectors_file=True): %s cannot get a second name beside the model (%s): its %.2f GiB "
                   "are copied instead; put the vectors file on the model's file system to move it", path, reason,
                   vectors.nbytes / _GiB)
    np.save(target, vectors)


def _nothing() -> None:
    """What a :class:`_VectorsFile` becomes when its model is pickled or copied."""
    return None


class _VectorsFile:
    """The file of a model's ``wv.vectors`` (``vectors_file``) while the model maps it: the writable
    memory map and an open handle holding an exclusive advisory lock (``flock``) on the file. The lock
    goes when the model lets go of the file or ends, also when its process is killed; so a file that
    no live model maps is told from one that a model still writes. Neither is saved nor copied: a
    saved, loaded or copied model holds neither, and never writes into another model's file."""

    def __init__(self, path: str, array: np.memmap, handle) -> None:
        self.path = path
        self.array = array
        self.handle = handle
        st = os.fstat(handle.fileno())
        self.id = (path, st.st_dev, st.st_ino)

    @staticmethod
    def lock(path: str):
        """An open handle of `path` that holds its exclusive lock (BlockingIOError: another holds it)."""
        handle = open(path, "rb")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise
        return handle

    def close(self) -> None:
        self.handle.close()

    def __reduce__(self):
        return _nothing, ()


def _npy_header(shape: tuple[int, int]) -> bytes:
    """The ``.npy`` header of a C-order float32 matrix of `shape` (NumPy leaves room in it for the row
    count to grow, so a vectors file grows by rewriting these bytes, never the rows)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(REAL)),
                                               "fortran_order": False, "shape": tuple(int(n) for n in shape)})
    return buf.getvalue()


def _no_space(path: str, need: int, shape: tuple[int, int]) -> OSError:
    """The error for a vectors file its disk has no room for: what it needs, what is free, the fixes."""
    try:
        free = f", {shutil.disk_usage(os.path.dirname(path)).free / _GiB:.2f} GiB is free"
    except OSError:
        free = ""
    ram = shape[0] * shape[1] * np.dtype(REAL).itemsize / _GiB
    return OSError(errno.ENOSPC, f"no space on the disk of vectors_file {path!r}: its {shape[0]:,} x {shape[1]} "
                                 f"float32 vectors need {need / _GiB:.2f} GiB more there{free}. Free space there, set "
                                 f"vectors_file to a path on a larger disk, or vectors_file=None to keep the vectors "
                                 f"in memory ({ram:.2f} GiB of RAM).")


def _reserve(handle, start: int, end: int, path: str, shape: tuple[int, int]) -> None:
    """Allocate bytes [start, end) of the open file `handle` on its disk now (``posix_fallocate``:
    nothing is written, the pages read as zeros), so that a full disk is an OSError here, naming the
    file and the fixes, and not a SIGBUS when the memory map's pages are written back during training.
    Where the file system cannot allocate ahead, the free space is checked and the file extended."""
    if end <= start:
        return
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is not None:
        try:
            allocate(handle.fileno(), start, end - start)
            return
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)):
                raise _no_space(path, end - start, shape) from None
            if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
    usage = shutil.disk_usage(os.path.dirname(path))
    if usage.total and usage.free < end - start:  # (a file system that reports no size, e.g. ramfs: unknown)
        raise _no_space(path, end - start, shape)
    logger.warning("the file system of %s cannot allocate its %.2f GiB ahead: if its disk fills up during "
                   "training, the process ends with SIGBUS", path, (end - start) / _GiB)
    if os.fstat(handle.fileno()).st_size < end:
        os.ftruncate(handle.fileno(), end)


def _publish(tmp: str, path: str, replace: bool) -> None:
    """Give the finished file `tmp` its name `path`: over this model's own file (`replace`), else only
    where no file is (a hard link fails on an existing name: a file made meanwhile is never replaced)."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"vectors_file {path!r} was created by someone else meanwhile; it is "
                                            f"left as it is. Give this model another vectors_file.") from None
    except OSError:  # a file system without hard links
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, f"vectors_file {path!r} was created by someone else meanwhile; it "
                                                f"is left as it is. Give this model another vectors_file.") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _gensim_stream(seed, offset: int) -> np.random.Generator:
    """gensim's generator of new vectors (``prep_vectors``: ``default_rng(seed)``, one float32 per
    value, row after row) at value `offset` of its stream, without drawing the values before it:
    PCG64 makes two float32 of each 64-bit draw, so it skips ``offset // 2`` draws (and one value)."""
    rng = np.random.default_rng(seed)
    rng.bit_generator.advance(offset // 2)
    if offset % 2:
        rng.random(1, dtype=REAL)
    return rng


# ---------------------------------------------------------------------------------- loading


#: The fields of a feature store's metadata that say which extractor made its rows: another CNN, other
#: weights, another layer, preprocessing or normalisation give features that a model's W does not map,
#: even at the same dim (which is checked apart, as is dtype: a store extracted again in float32 holds
#: the same extractor's features). A PCA store's projection is compared too (:func:`_pca_comparison`).
_EXTRACTOR_FIELDS = ("arch", "weights", "layer", "preprocessing", "normalisation")


def _extractor_record(model) -> dict:
    """Which extractor made the features `model` was trained on, as far as it recorded it: the identity
    of the store it refers to (``image_store``, as saved; a load with other features leaves it until the
    next save), else its features' metadata; with that store's ``pca`` (its description, None for none)
    and ``store_id`` where recorded. {} where no extractor is recorded (features from arrays)."""
    ref = getattr(model, "image_store", None) or {}
    source = ref if ref.get("identity") else (getattr(model, "image_features_metadata", None) or {})
    meta = ref.get("identity") or source
    record = {f: meta[f] for f in _EXTRACTOR_FIELDS if meta.get(f) is not None}
    if record and "pca" in source:
        record["pca"] = source["pca"]
        if source.get("store_id"):
            record["store_id"] = source["store_id"]
    return record


def _extractor_differences(record: dict, metadata, pca=None) -> list[tuple[str, object, object]] | None:
    """How the extractor that a store's `metadata` records differs from the model's `record`
    (:func:`_extractor_record`): ``(field, the store's, the model's)`` for each field both record and
    differ in (:func:`_same_field`: a layer by its node, weights files by their digest), and
    ``("pca", …)`` (described in words, :func:`_pca_words`) where its PCA is another
    (:func:`_pca_comparison`; `pca`: the store's PCA or the path of its pca.npz, for its digest where its
    metadata has none). None where the store records no extractor (neither arch nor weights: a
    ``FeatureStore.from_arrays`` store made without that metadata) while the model does: unknown,
    not refused (its rows are taken on the caller's word), warned of."""
    if not record or not metadata:
        return []
    if metadata.get("arch") is None and metadata.get("weights") is None:
        return None if ("arch" in record or "weights" in record) else []
    arch = metadata.get("arch") if metadata.get("arch") == record.get("arch") else None
    diff = [(f, metadata[f], record[f]) for f in _EXTRACTOR_FIELDS
            if f in record and metadata.get(f) is not None and not _same_field(f, metadata[f], record[f], arch)]
    if _pca_comparison(record, metadata, pca) == "differs":
        diff.append(("pca", _pca_words(metadata.get("pca")), _pca_words(record.get("pca"))))
    return diff


def _as_compared(field: str, value):
    """An extractor field's value as two stores are compared: a layer by the node it resolved to
    (``"fc7 (classifier.5)"`` is ``"classifier.5"``), the preprocessing without how JPEGs were
    decoded (PIL's draft mode or ``decode_jpeg``: the same features to cosine >= 0.999, see
    ``FeatureExtractor(jpeg_device=)``), a weights file by its digest (``file:NAME#sha256:HEX``: the
    same file under another name is the same weights)."""
    text = str(value)
    if field == "layer" and (node := _recorded_node(text)) is not None:
        return node
    if field == "preprocessing":
        return text.split(" + JPEG draft decode", 1)[0]
    if field == "weights" and text.startswith("file:") and "#sha256:" in text:
        return "sha256:" + text.rsplit("#sha256:", 1)[1].lower()
    return value


def _same_field(field: str, have, want, arch: str | None) -> bool:
    """Whether a store's value of an extractor field is the model's: as compared (:func:`_as_compared`),
    else, for the same `arch`, a layer resolved to its graph node (:func:`_layer_node`) and torchvision's
    weights against their file under another name (:func:`_official_weights_prefix`)."""
    if _as_compared(field, have) == _as_compared(field, want):
        return True
    if arch is None or field not in ("layer", "weights"):
        return False
    if field == "layer":
        return _layer_node(arch, have) == _layer_node(arch, want)
    files = [str(_as_compared(field, v))[7:] for v in (have, want) if str(v).startswith("file:") and "#sha256:" in str(v)]
    enums = [str(v) for v in (have, want) if not str(v).startswith(("file:", "none"))]
    if len(files) != 1 or len(enums) != 1:
        return False
    prefix = _official_weights_prefix(arch, enums[0])
    return prefix is not None and files[0].startswith(prefix)


def _official_weights_prefix(arch: str, weights: str) -> str | None:
    """The SHA-256 prefix in the file name of torchvision's `weights` of `arch`
    (``MobileNet_V2_Weights.IMAGENET1K_V1``: mobilenet_v2-b0353104.pth, ``"b0353104"``; the rule
    ``FeatureExtractor`` takes a local file by), None where they are not torchvision's or it is absent."""
    try:
        import torchvision.models as tvm

        enum_cls = tvm.get_model_weights(arch)
        if not weights.startswith(enum_cls.__name__ + "."):
            return None
        url = enum_cls[weights.split(".", 1)[1]].url
    except Exception:  # no torchvision (or a broken one), an arch or weights it does not know
        return None
    prefix = os.path.basename(url).rsplit("-", 1)[-1].split(".")[0].lower()
    return prefix if len(prefix) >= 6 and all(c in "0123456789abcdef" for c in prefix) else None


#: (arch, layer as recorded) -> its graph node (:func:`_layer_node`), traced once per process.
_LAYER_NODES: dict[tuple[str, str], str] = {}


def _layer_node(arch: str, layer) -> str:
    """The graph node of `arch` whose output the features of a store's recorded `layer` are, followed
    back through the nodes that pass their input on unchanged in eval mode (Dropout, Identity): for
    mobilenet_v2, ``"penultimate"`` (the last Linear's input: classifier.0, a Dropout of flatten),
    ``"classifier.0"`` and ``"flatten"`` are ``"flatten"``; for VGG16 ``"penultimate"`` and
    ``"fc7"`` are ``"classifier.4"``. Traced without weights (the meta device, ~0.05 s); without
    torchvision, or for a name the graph lacks, the name as recorded (:func:`_as_compared`)."""
    text = str(_as_compared("layer", layer))
    key = (arch, text)
    if key not in _LAYER_NODES:
        _LAYER_NODES[key] = _traced_layer_node(arch, text) or text
    return _LAYER_NODES[key]


def _traced_layer_node(arch: str, layer: str) -> str | None:
    """:func:`_layer_node` by torch.fx (None where it cannot say)."""
    try:
        import warnings

        import torch
        import torchvision.models as tvm
        import torchvision.models.feature_extraction as tvfx

        from gensim_im2vec.features import _PENULTIMATE, LAYER_ALIASES, _last_linear

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (inception_v3's init_weights notice)
            with torch.device("meta"):
                model = tvm.get_model(arch, weights=None).eval()
            tracer = tvfx.NodePathTracer(**getattr(tvfx, "_set_default_tracer_kwargs", lambda kwargs: {})(None))
            graph = tracer.trace(model)
    except Exception:  # no torchvision (or a broken one), an arch it does not know, a graph fx cannot trace
        return None
    names, modules = tracer.node_to_qualname, dict(model.named_modules())
    if layer == _PENULTIMATE:
        last = _last_linear(model)
        calls = [n for n in graph.nodes if n.op == "call_module" and n.target == last]
        node = calls[-1].args[0] if calls and calls[-1].args else None
    else:
        want = LAYER_ALIASES.get(arch, {}).get(layer, layer)
        node = next((n for n in graph.nodes if names.get(n) == want), None)
    passing = (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d, torch.nn.AlphaDropout,
               torch.nn.FeatureAlphaDropout, torch.nn.Identity)
    while (isinstance(node, torch.fx.Node) and node.op == "call_module"
           and isinstance(modules.get(node.target), passing) and node.args):
        node = node.args[0]
    return names.get(node) if isinstance(node, torch.fx.Node) else None


def _pca_comparison(record: dict, metadata, pca=None) -> str:
    """Whether the PCA a store's `metadata` records is the one the features of the model's `record`
    (:func:`_extractor_record`) were projected with: ``"same"``, ``"differs"`` or ``"unknown"``.

    No PCA on either side is the same; a PCA and none, or other sizes, differ. The model's own store
    (its ``store_id``: moved, copied or grown) holds its PCA. Otherwise the fits' digests say it
    (``sha256``, :meth:`~gensim_im2vec.store.PCA.digest`, recorded at extraction; the store's computed
    from `pca`, its PCA or the path of its pca.npz, where its metadata has none). Without the model's,
    another sample size or explained variance tell another fit apart (a store re-extracted with another
    ``--pca-sample``), while their agreement proves nothing: unknown (warned of, not refused)."""
    if "pca" not in record or "pca" not in metadata:
        return "same"  # (not recorded: nothing to compare)
    want, have = record["pca"], metadata["pca"]
    if not want or not have:
        return "same" if not want and not have else "differs"
    if record.get("store_id") and record["store_id"] == metadata.get("store_id"):
        return "same"
    if any(want.get(f) != have.get(f) for f in ("n_components", "n_features")):
        return "differs"
    theirs = have.get("sha256")
    if want.get("sha256") and not theirs and pca is not None:
        theirs = _pca_digest(pca)
    if want.get("sha256") and theirs:
        return "same" if want["sha256"] == theirs else "differs"
    if any(want.get(f) is not None and have.get(f) is not None and want[f] != have[f]
           for f in ("fitted_on", "explained_variance")):
        return "differs"
    return "unknown"


def _pca_digest(pca) -> str | None:
    """:meth:`~gensim_im2vec.store.PCA.digest` of a store's PCA, given as one or as the path of its
    pca.npz (None where it cannot be read)."""
    if isinstance(pca, (str, os.PathLike)):
        from gensim_im2vec.store import PCA

        try:
            pca = PCA.load(pca)
        except (OSError, ValueError, KeyError):
            return None
    return pca.digest()


def _pca_words(pca) -> str:
    """A store's PCA (its metadata's ``pca``) in words: ``"8 of 1280 dims fitted on 40 images
    (explained variance 0.991056, sha256 …)"``, ``"none"``."""
    if not pca:
        return "none"
    ev = pca.get("explained_variance")
    said = [f"explained variance {ev:.6g}" if isinstance(ev, (int, float)) else None,
            f"sha256 {pca['sha256']}" if pca.get("sha256") else None]
    return (f"{pca.get('n_components')} of {pca.get('n_features')} dims fitted on {pca.get('fitted_on')} images"
            + (f" ({', '.join(s for s in said if s)})" if any(said) else ""))


def _extractor_words(record: dict) -> str:
    """The model's extractor as ``arch='…', weights='…', layer='…'`` (the fields it records)."""
    return ", ".join(f"{f}={record[f]!r}" for f in ("arch", "weights", "layer") if f in record) or "unrecorded"


def _difference_words(diff) -> list[str]:
    """Each ``(field, the store's, the model's)`` of :func:`_extractor_differences` as
    ``"field: the store's …, the model's …"`` (values quoted, a PCA's words not)."""
    return [f"{f}: the store's {have if f == 'pca' else repr(have)}, the model's {want if f == 'pca' else repr(want)}"
            for f, have, want in diff]


def _pca_fix(record: dict) -> str:
    """How to get features of the model's PCA (:func:`_extractor_differences` found another)."""
    n = (record.get("pca") or {}).get("n_components")
    more = f" --pca {n}" if n else ""
    return (f"the model's W maps only features projected with the PCA its store was extracted with (another fit "
            f"has another basis): give that store, or extract more images into it "
            f"(`im2vec extract IMAGES -o MODEL_STORE --mode extend{more}` with the model's extractor options "
            f"applies its PCA)")


class _ExtractorFinding(NamedTuple):
    """What :func:`_extractor_finding` found of a store given for a model, for the caller to say in its
    own words: `kind` ``"differs"`` (refused; `diff` as :func:`_extractor_differences` gives it),
    ``"unrecorded"`` (the store records no extractor) or ``"pca unknown"`` (its PCA cannot be told
    from the model's, :func:`_pca_comparison`), both warned of; with the model's `record`
    (:func:`_extractor_record`) and the store's `metadata`."""

    kind: str
    diff: list | None
    record: dict
    metadata: dict


def _extractor_finding(record: dict, metadata, pca=None) -> _ExtractorFinding | None:
    """The one check of a feature store given for a model (:meth:`Im2Vec.load` with ``image_features=``,
    and the command line's store options): None where its `metadata` (and `pca`: its PCA or the path
    of its pca.npz) say the extractor of the model's `record`, or say nothing to compare (no metadata:
    a mapping, a pair), else what differs or is unknown."""
    metadata = metadata or {}
    diff = _extractor_differences(record, metadata, pca)
    if diff is None:
        return _ExtractorFinding("unrecorded", None, record, metadata)
    if diff:
        return _ExtractorFinding("differs", diff, record, metadata)
    if _pca_comparison(record, metadata, pca) == "unknown":
        return _ExtractorFinding("pca unknown", [], record, metadata)
    return None


def _check_given_extractor(model, feats: ImageFeatures, fname) -> None:
    """Features given to :meth:`Im2Vec.load` (``image_features=``) from a store whose metadata says
    another extractor than the model's record, or another PCA, are refused (StoreMismatchError), naming
    both and the fix; a store that records no extractor, or a PCA that cannot be told from the model's
    (:func:`_pca_comparison`), is warned of. Features without metadata (a mapping, a pair) are not checked.
    The finding (:func:`_extractor_finding`) goes with the error (``_im2vec_extractor``) and the warning
    (its log record's ``im2vec_extractor``), for a caller that says it in its own words (the CLI)."""
    source = getattr(feats, "source", None)
    found = _extractor_finding(_extractor_record(model), feats.metadata, getattr(source, "pca", None))
    if found is None:
        return
    record, tag = found.record, {"im2vec_extractor": found}
    where = repr(str(source.path)) if getattr(source, "path", None) is not None else feats.name
    if found.kind == "unrecorded":
        logger.warning("image_features: the feature store %s records no extractor (no arch or weights in its "
                       "metadata, as FeatureStore.from_arrays writes it without them), while the model %r was trained "
                       "on features of %s: taken on your word that its rows come from that extractor (another's would "
                       "place the images wrongly without an error)", where, os.fspath(fname), _extractor_words(record),
                       extra=tag)
    elif found.kind == "differs":
        said = "; ".join(_difference_words(found.diff))
        pca_fix = f" For the PCA: {_pca_fix(record)}." if any(f == "pca" for f, _, _ in found.diff) else ""
        err = StoreMismatchError(
            f"image_features: the feature store {where} was made by another extractor than the features the model "
            f"{os.fspath(fname)!r} was trained on ({said}): its W maps only its own extractor's features, so these "
            f"would place the images wrongly. Give a store extracted as the model's was ({_extractor_words(record)}: "
            f"FeatureExtractor with them, or `im2vec extract IMAGES -o STORE --arch ... --weights ...`), or train a "
            f"model on this store.{pca_fix}")
        err._im2vec_extractor = found  # (the CLI says it in its own words, naming its option)
        raise err
    else:
        logger.warning("image_features: %s", _pca_unknown_words(f"the feature store {where}", record,
                                                                 found.metadata, os.fspath(fname)), extra=tag)


def _pca_unknown_words(store: str, record: dict, metadata, model: str) -> str:
    """The warning of a store whose PCA cannot be told from the model's (:func:`_pca_comparison`)."""
    return (f"cannot tell whether the PCA of {store} ({_pca_words(metadata.get('pca'))}) is the one the model "
            f"{model!r} was trained on ({_pca_words(record.get('pca'))}): there are no two digests of them to compare "
            f"(a store extracted before they were recorded) and their sample sizes and explained variances agree; taken on your "
            f"word that it is (another fit of the same size would place the images wrongly without an error)")


def _open_referenced_store(ref: dict, fname, model) -> FeatureStore:
    """Open the feature store a saved model refers to (:meth:`Im2Vec.save`): at its recorded path,
    else at the same place relative to the model file; it must be that store, possibly grown."""
    places = [ref["path"]]
    if ref.get("relpath") and isinstance(fname, (str, os.PathLike)):
        near = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(os.fspath(fname))), ref["relpath"]))
        if near != places[0]:
            places.append(near)
    found = []
    for place in places:
        try:
            store = FeatureStore.open(place)
        except FileNotFoundError:
            continue
        except (ValueError, OSError) as e:
            found.append(f"{place!r} cannot be opened: {e}")
            continue
        problems = store.reference_problems(ref)
        if not problems:
            return store
        found.append(f"{place!r} is not the model's store: " + "; ".join(problems))
    n_img = int(np.count_nonzero(np.asarray(getattr(model, "_vocab_image_rows", ())) >= 0)) or "its"
    weights = (ref.get("identity") or {}).get("weights")
    what = (f"the model {os.fspath(fname)!r} takes its image features from the feature store {ref['path']!r} "
            f"({ref['count']} images of dim {ref['dim']}, weights {weights!r})")
    fix = (f"Put the store back, or load the model with the store's new place: Im2Vec.load({os.fspath(fname)!r}, "
           f"image_features='NEW/STORE/PATH') (any features that hold the model's {n_img} images), and save it "
           f"again to record that place.")
    if not found:
        where = " or ".join(repr(p) for p in places)
        problem = f"{what}, and there is no feature store at {where}"
        err = FileNotFoundError(f"{problem}. {fix}")
    else:
        problem = f"{what}, which changed: " + "; ".join(found)
        err = StoreMismatchError(f"{problem}. {fix}")
    err._im2vec_recorded_store = (ref, problem)  # for a caller that has the store's new place (the CLI's options)
    raise err


def load_saved(fname, expected=(Word2Vec,), **kwargs):
    """Load a file written by a gensim ``save()`` and check what it holds.

    Parameters
    ----------
    fname : str or os.PathLike
        The saved file (its companion ``.npy`` files beside it).
    expected : tuple of classes
        What the file must hold, e.g. ``(Word2Vec, KeyedVectors)``.
    **kwargs
        Passed to the loader, e.g. ``mmap="r"``.

    Raises
    ------
    ValueError, FileNotFoundError, NotAModelError
        As :meth:`Im2Vec.load`: each says what the file is and what was expected.
    """
    return _checked_load(utils.SaveLoad.load, tuple(expected), fname, **kwargs)


def _checked_load(load, expected: tuple, fname, *args, upgrade: bool = False, **kwargs):
    """``load(fname, ...)``, checked: an object of a class in `expected` (or, with `upgrade`, a
    plain gensim Word2Vec, which :meth:`Im2Vec.load` then brings up), else an error that says what
    the file holds and what was expected."""
    _check_mmap(args[0] if args else kwargs.get("mmap"))
    path = os.fspath(fname)
    try:
        obj = load(path, *args, **kwargs)  # gensim wants a str
    except FileNotFoundError as e:
        if (e.filename and os.path.abspath(os.fspath(e.filename)) != os.path.abspath(path)
                and not getattr(e, "_im2vec_as_is", False)):
            raise FileNotFoundError(
                f"{os.fspath(e.filename)!r} is missing: the model {path!r} keeps arrays in companion files saved "
                f"beside it ({os.path.basename(path)}.*.npy); copy them together with it."
            ) from None
        raise
    except (StoreMismatchError, _GivenFeaturesError):
        raise
    except Exception as e:  # not a pickle, a damaged pickle, a damaged companion file
        if getattr(e, "_im2vec_as_is", False):  # (a resumed checkpoint's vectors file: not the model file's fault)
            raise
        raise ValueError(_unloadable(path, e)) from e
    if isinstance(obj, expected) or (upgrade and type(obj) is Word2Vec):
        return obj
    names = " or ".join(c.__name__ for c in expected)
    names = ("an " if names[0] in "AEIOU" else "a ") + names
    if upgrade:
        names += " (or a plain gensim Word2Vec, loaded as a text-only Im2Vec)"
    hint = "give a file written by its save()"
    if type(obj) is Word2Vec and any(issubclass(c, Im2Vec) for c in expected):
        hint = ("to add images to it, use Im2Vec.from_word2vec(Word2Vec.load(path), image_features=..., "
                "sentences=...) or `im2vec train DOCUMENTS -f STORE -o MODEL --pretrained PATH`")
    raise NotAModelError(f"{path!r} holds a {type(obj).__module__}.{type(obj).__name__} where {names} was "
                         f"expected; {hint}.")


#: The ``mmap`` modes a load takes (numpy's ``np.load(mmap_mode=...)``, which gensim passes it to, but "w+";
#: "readonly" is numpy's other name of "r". Its other long names, "copyonwrite" and "readwrite", hold a "w":
#: np.load takes them for a write mode and fails on them).
_MMAP_MODES = (None, "r", "c", "r+", "readonly")


def _check_mmap(mmap) -> None:
    """A load's `mmap`, checked before any file is opened: numpy's ``mmap_mode="w+"`` creates each
    array's file anew (the first companion file it opens is emptied: the saved model lost), and another
    value failed as a "damaged" model."""
    if mmap in _MMAP_MODES:
        return
    why = (": 'w+' creates each array's file anew, which would empty the saved model's arrays" if mmap == "w+"
           else "")
    raise ValueError(f"mmap must be None (load into memory), 'r' (memory-mapped read-only), 'c' (copy-on-write: "
                     f"changes stay in memory) or 'r+' (read-write: changes go to the saved files), got "
                     f"{mmap!r}{why}.")


def _looks_saved(path: str) -> bool:
    """Whether `path` starts as a model gensim saved does: a pickle naming a gensim or gensim_im2vec
    class in its first bytes (an ``.gz`` / ``.bz2`` one decompressed, as gensim opens it)."""
    try:
        with utils.open(path, "rb") as f:
            head = f.read(64)
    except (OSError, EOFError):  # (unreadable, or not the compressed data its suffix says)
        return False
    return head.startswith(b"\x80") and b"gensim" in head


def _unloadable(path: str, err: Exception) -> str:
    """Say why `path` could not be loaded: a folder, a damaged companion file, not a model at all, or damaged."""
    if os.path.isdir(path):
        saved = sorted(p for p in glob.glob(os.path.join(glob.escape(path), "*"))
                       if not p.endswith(".npy") and os.path.isfile(p) and _looks_saved(p))
        return (f"{path!r} is a folder, not a saved model; give the model's main file (the one Im2Vec.save() was "
                f"given)" + (f", e.g. {saved[0]!r}." if saved else "."))
    for companion in sorted(glob.glob(glob.escape(path) + ".*.npy")):
        why = npy_problem(companion)
        if why:
            return f"a companion file of the model {path!r} is damaged: {why}. Copy it again with the model."
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = b""
    if not head.startswith(b"\x80"):  # every pickle gensim writes starts with the protocol opcode
        return (f"{path!r} is not a saved model (it starts with {head[:12]!r}); expected a file written by "
                f"Im2Vec.save() or Word2Vec.save() (a pickle with companion .npy files). Check the path.")
    if ((isinstance(err, ModuleNotFoundError) and (err.name or "").startswith("numpy._core"))
            or (isinstance(err, ValueError) and "is not a known BitGenerator module" in str(err))):
        # numpy 2's own pickles of arrays / a RandomState, which numpy 1.x cannot read (Im2Vec._saved_portable)
        return (f"{path!r} was saved under numpy 2 by an earlier version of gensim-im2vec, whose model files "
                f"numpy {np.__version__} cannot read ({type(err).__name__}: {err}). Load it under numpy 2 and save "
                f"it again there: a model saved by this version loads under numpy 1.x and 2.x.")
    return (f"{path!r} could not be loaded as a model ({type(err).__name__}: {err}); it is damaged or was "
            f"saved by an incompatible version. Save the model again.")
