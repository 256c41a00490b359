"""Explore a trained model at a prompt, like word2vec's ``distance`` tool in the 2015 slides.

Type a word, an image key or the path of an image file; the answer is a table of neighbours with
their cosine in the one space of words and images (``model.wv``), each marked ``word`` or
``image``. Every list is what gensim's own ``model.wv.most_similar`` answers, nothing else:

* a **word** or an **image key** (``img:animals/cat``, or just ``animals/cat``): its nearest words
  and images mixed, then the nearest words alone (an image's: the nearest *tags*, the words of
  the image documents, :meth:`Im2Vec.most_similar_tags`, not the text's whole vocabulary) and
  the nearest images alone;
* several tokens (``img:cats/1 -cat dog``): the neighbours of the sum of their unit vectors, a
  token with a leading ``-`` subtracted (an analogy across modalities);
* an **image file** never seen in training: its features are extracted on the fly by a
  :class:`~gensim_im2vec.features.FeatureExtractor` rebuilt from the model's feature metadata
  (the store's arch, weights, layer, normalisation; PCA from ``store=``), then placed in the space
  by ``model.project(features)``: the same tables, by :meth:`Im2Vec.similar_by_image`;
* with ``zero_shot_words`` (``im2vec query --zero-shot-words FILE``, e.g. the held-out tags the
  demo writes), an image's answer also ranks exactly those words by their cosine to the image
  (``1 - model.wv.distances(vector, words)``): "Given words ranked by cosine";
* an unknown word gets one line (``Out of dictionary word: …``) and the prompt comes back, as
  does an unknown image key (``Not an image key of the model: …``; one typed with its file's
  extension or a space, which keys write as ``%20``, is answered with the key it stands for) and
  a line that is not UTF-8 text (one line saying so); a path may be quoted or have
  backslash-escaped spaces, as a terminal writes a file dropped on it;
* ``EXIT`` (or end of input, Ctrl-D, or Ctrl-C at the prompt) ends the session; Ctrl-C while an
  answer is computed (an image file's features) drops that answer and the prompt comes back;
* with ``index`` (``im2vec query MODEL --index MODEL.ann``, the file ``im2vec index MODEL``
  writes), every neighbour list comes from the approximate index's modality views
  (:func:`~gensim_im2vec.index.ann_most_similar`: milliseconds instead of a read of every vector,
  seconds at 100M images), with exact cosines; a header before the first prompt says so (backend,
  kind, knobs). An index built from another model, or before the model was retrained, is refused
  (:func:`open_index`); a list whose modality the index lacks (an image's tags, from an index built
  without ``--tags``) is searched exactly over that modality's keys alone, and the header says so.

From the shell::

    im2vec query model.im2vec                       # interactive
    printf 'red\\nphotos/x.jpg\\nEXIT\\n' | im2vec query model.im2vec
    im2vec query model.im2vec --zero-shot-words heldout_tags.txt
    im2vec index model.im2vec --tags && im2vec query model.im2vec --index model.im2vec.ann

From Python, with any text streams (the loop returns the number of queries answered):

>>> import io
>>> from gensim_im2vec import Im2Vec
>>> from gensim_im2vec.query import QuerySession, query_loop
>>> from gensim_im2vec.synthetic import make_corpus
>>> data = make_corpus(n_classes=3, n_images=90, n_features=16, seed=0)
>>> model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1,
...                epochs=5, workers=1, seed=1)
>>> out = io.StringIO()
>>> query_loop(model, io.StringIO("class1\\nimg:4\\nno_such_word\\nEXIT\\n"), out, topn=3)
2
>>> print(out.getvalue().splitlines()[1])   # doctest: +ELLIPSIS
Word: class1  (position in vocabulary: ...)
>>> "Out of dictionary word: no_such_word" in out.getvalue()
True

An image's answer with given words ranked by cosine (their order is the order of
``model.wv.distances``):

>>> session = QuerySession(model, topn=3, zero_shot_words=["class0", "class1", "class2"])
>>> answer = session.answer("img:4")
>>> "Given words ranked by cosine (3 of 3)" in answer
True
>>> listed = [line.split()[0] for line in answer.split("Given words")[1].splitlines()[4:7]]
>>> listed == [w for _, w in sorted(zip(model.wv.distances("img:4", ["class0", "class1", "class2"]),
...                                      ["class0", "class1", "class2"]))]
True

The answers as data, without a prompt: :meth:`QuerySession.answer` returns the text of one answer.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from gensim_im2vec.keys import (
    IMAGE_PREFIX,
    IMAGE_SUFFIXES,
    describe_key_rule,
    encode_key,
    key_spellings,
    rule_key,
)
from gensim_im2vec.validation import check_not_a_str, is_int

if TYPE_CHECKING:
    from gensim_im2vec.index import ModalityIndexer

logger = logging.getLogger(__name__)

__all__ = [
    "EXIT",
    "PROMPT",
    "FileFeaturizer",
    "QuerySession",
    "check_extractor_options",
    "extractor_settings",
    "format_neighbours",
    "make_featurizer",
    "open_index",
    "query_loop",
]

PROMPT = "Enter word, image key or image path (EXIT to break): "
EXIT = "EXIT"
_RULE_CHAR = "-"
_MAX_KEY_WIDTH = 48

#: ``(metadata) -> featurizer``: builds what turns an image file into the model's features.
FeaturizerFactory = Callable[[dict], Callable[[str], np.ndarray]]


# ----------------------------------------------------------------------------- formatting
def _fit(key: str, width: int) -> str:
    return key if len(key) <= width else key[: width - 1] + "…"


def format_neighbours(title: str, pairs: Sequence[tuple[str, float]], is_image: Callable[[str], bool],
                      *, score_name: str = "Cosine similarity", key_name: str = "Neighbour") -> str:
    """An aligned table in the slides' style: key, its kind (``word``/``image``) and the score.

    Parameters
    ----------
    title : str
        Printed above the table.
    pairs : sequence of (key, score)
        Neighbours, best first (``wv.most_similar`` output).
    is_image : callable
        ``is_image(key) -> bool`` (``Im2Vec.is_image``), marks the kind column.
    score_name : str
        Header of the score column (the slides' tool said "Cosine distance" for what is a cosine
        similarity: 1 for the key itself).
    key_name : str
        Header of the key column.

    Returns
    -------
    str
        The table, lines joined by newlines, without a trailing newline.

    Examples
    --------
    >>> print(format_neighbours("Word: red", [("yellow", 0.765134), ("img:7", 0.5)],
    ...                         lambda k: k.startswith("img:")))
    Word: red
    -----------------------------------
    Neighbour  Kind   Cosine similarity
    -----------------------------------
    yellow     word            0.765134
    img:7      image           0.500000
    """
    width = min(_MAX_KEY_WIDTH, max([len(key_name)] + [len(k) for k, _ in pairs]))
    score_width = max(15, len(score_name))
    header = f"{key_name:<{width}}  {'Kind':<5}  {score_name:>{score_width}}"
    rule = _RULE_CHAR * len(header)
    lines = [title, rule, header, rule]
    if not pairs:
        lines.append("(none)")
    for key, score in pairs:
        kind = "image" if is_image(key) else "word"
        lines.append(f"{_fit(key, width):<{width}}  {kind:<5}  {score:>{score_width}.6f}")
    return "\n".join(lines)


def _side_by_side(left: str, right: str, gap: int = 6) -> str:
    """Two tables next to each other (top-aligned)."""
    a, b = left.split("\n"), right.split("\n")
    width = max(len(x) for x in a)
    rows = [f"{(a[i] if i < len(a) else ''):<{width}}{' ' * gap}{b[i] if i < len(b) else ''}".rstrip()
            for i in range(max(len(a), len(b)))]
    return "\n".join(rows)


# ----------------------------------------------------------------------------- image files
def extractor_settings(metadata: dict) -> dict:
    """The :class:`~gensim_im2vec.features.FeatureExtractor` arguments that made a store's features.

    Parameters
    ----------
    metadata : dict
        A feature store's metadata (``model.image_features_metadata``): ``arch``, ``weights``
        (an enum name such as ``"MobileNet_V2_Weights.IMAGENET1K_V1"``, ``"none (random init,
        seed=0)"`` or ``"file:<name>#sha256:<digest>"``) and ``layer``.

    Returns
    -------
    dict
        ``arch``, ``weights`` (name, or None for random init), ``layer`` and ``seed``.

    Raises
    ------
    ValueError
        No ``arch`` in the metadata (features given as a plain dict/array), or weights from a
        local checkpoint file, which cannot be found again from its name: pass ``weights=``
        (``--weights PATH``) to :func:`make_featurizer`.

    Examples
    --------
    >>> extractor_settings({"arch": "alexnet", "weights": "AlexNet_Weights.IMAGENET1K_V1",
    ...                     "layer": "fc7 (classifier.5)"})
    {'arch': 'alexnet', 'weights': 'AlexNet_Weights.IMAGENET1K_V1', 'layer': 'fc7', 'seed': 0}
    >>> extractor_settings({"arch": "resnet18", "weights": "none (random init, seed=3)",
    ...                     "layer": "penultimate"})["weights"] is None
    True
    """
    arch = metadata.get("arch")
    if not arch:
        raise ValueError(
            "the model's features carry no extractor metadata (no 'arch'): they were given as a "
            "dict or array, not a FeatureStore made by `im2vec extract`. Pass arch/weights/layer "
            "explicitly (im2vec query --arch … --weights … --layer …)."
        )
    weights = metadata.get("weights")
    seed = 0
    if weights is None or str(weights).startswith("none"):
        text = str(weights or "")
        if "seed=" in text:
            seed = int(text.split("seed=", 1)[1].rstrip(")").strip() or 0)
        weights = None
    elif str(weights).startswith("file:"):
        raise ValueError(
            f"the model's features come from the local checkpoint {weights!r}, which cannot be found "
            "from its name; pass its path as weights= (im2vec query --weights PATH)."
        )
    layer = metadata.get("layer") or None
    if isinstance(layer, str) and " (" in layer:  # "fc7 (classifier.5)": alias (resolved node)
        layer = layer.split(" (", 1)[0]
    return {"arch": arch, "weights": weights, "layer": layer, "seed": seed}


class FileFeaturizer:
    """Image file → feature vector exactly as the model's feature store holds them.

    Runs the extractor on one file, then applies the store's normalisation (``"l2"``) and PCA, so
    the vector can go straight into ``Im2Vec.project`` / ``similar_by_image``.

    Parameters
    ----------
    extractor : FeatureExtractor
        Built with the store's arch, weights and layer.
    normalisation : {"none", "l2"}
        The store's ``metadata["normalisation"]``.
    pca : gensim_im2vec.store.PCA, optional
        The store's PCA, when its features were reduced.
    """

    def __init__(self, extractor, normalisation: str = "none", pca=None) -> None:
        self.extractor = extractor
        self.normalisation = normalisation
        self.pca = pca

    @property
    def dim(self) -> int:
        """Dimension of the returned features."""
        return self.pca.n_components if self.pca is not None else int(self.extractor.dim)

    def __call__(self, path: str | os.PathLike) -> np.ndarray:
        """Features of the image file at `path`, float32 of shape (dim,).

        Raises
        ------
        gensim_im2vec.decode.ImageSkipped
            The file is not a usable image (the message says why).
        """
        from gensim_im2vec.decode import load_image
        from gensim_im2vec.validation import l2_normalize

        feats = self.extractor([load_image(path)])
        if self.normalisation == "l2":
            feats = l2_normalize(feats)
        if self.pca is not None:
            feats = self.pca.transform(feats)
        return np.asarray(feats[0], dtype=np.float32)

    def __repr__(self) -> str:
        return f"FileFeaturizer({self.extractor!r}, normalisation={self.normalisation!r}, pca={self.pca is not None})"


def make_featurizer(metadata: dict, *, store=None, device: str = "auto", **overrides) -> FileFeaturizer:
    """Rebuild the feature extractor a model's features came from (the default factory).

    Parameters
    ----------
    metadata : dict
        ``model.image_features_metadata`` (a FeatureStore's metadata).
    store : str, os.PathLike or FeatureStore, optional
        The store the model was trained on. Needed only when its features were PCA-reduced (the
        PCA lives in the store, not in the model).
    device : str
        Where the CNN runs: "auto", "cpu", "cuda".
    **overrides
        ``arch``, ``weights``, ``layer``, ``seed``: replace what the metadata says (needed for
        features without metadata, or from a local checkpoint file). ``weights="none"``: random
        weights (as ``im2vec extract --weights none``).

    Returns
    -------
    FileFeaturizer

    Raises
    ------
    ValueError
        The metadata does not say how to extract (see :func:`extractor_settings`), or the features
        were PCA-reduced and `store` is missing.
    """
    from gensim_im2vec.features import FeatureExtractor

    metadata = dict(metadata or {})
    given = {k: v for k, v in overrides.items() if v is not None}
    if "arch" in given and not metadata.get("arch"):
        metadata["arch"] = given["arch"]
    if "weights" in given and str(metadata.get("weights", "")).startswith("file:"):
        metadata["weights"] = given["weights"]
    settings = extractor_settings(metadata)
    settings.update(given)
    settings["weights"] = _weights_none(settings.get("weights"))
    pca = None
    if metadata.get("pca"):
        if store is None:
            raise ValueError(
                "the model's features were reduced by the feature store's PCA "
                f"({metadata['pca'].get('n_components')} components); pass the store the model was "
                "trained on (store=, im2vec query --store DIR) so image files get the same PCA."
            )
        from gensim_im2vec.store import FeatureStore

        st = store if isinstance(store, FeatureStore) else FeatureStore.open(store)
        pca = st.pca
        if pca is None:
            raise ValueError(f"feature store {str(st.path)!r} has no PCA file, but the model's features were PCA-reduced.")
    fx = FeatureExtractor(settings["arch"], weights=settings["weights"], layer=settings["layer"],
                          seed=int(settings.get("seed") or 0), device=device, num_workers=0, batch_size=1,
                          progress=False)
    logger.info("on-the-fly features: %r", fx)
    return FileFeaturizer(fx, normalisation=metadata.get("normalisation") or "none", pca=pca)


def _weights_none(weights):
    """``"none"`` (any case) is random weights, as ``im2vec extract --weights none`` writes them: None."""
    return None if isinstance(weights, str) and weights.lower() == "none" else weights


def check_extractor_options(metadata: dict | None, *, device: str | None = None, **overrides) -> None:
    """Refuse now the options :func:`make_featurizer` would refuse at the first image file.

    A session builds its feature extractor at the first image file (building it loads the CNN);
    a device that is not there or weights the arch does not have were reported only then. Here
    they are checked by the :class:`~gensim_im2vec.features.FeatureExtractor`'s own checks (the
    same messages as ``im2vec extract``), without building it: no CNN is built, no weights are
    loaded or downloaded (a checkpoint file is only hashed). Only what is given is checked.

    Parameters
    ----------
    metadata : dict or None
        ``model.image_features_metadata``: its ``arch`` is the one `weights` must belong to, when
        no ``arch`` is given.
    device : str, optional
        "auto", "cpu", "cuda" or "cuda:N"; None or "auto": not checked (auto always works).
    **overrides
        ``arch``, ``weights`` (a name, ``"DEFAULT"``, a checkpoint path, or ``"none"``), as for
        :func:`make_featurizer`; None: not given. Others (``layer``, ``seed``) are not checked here:
        a layer is checked against the model's graph when the extractor is built.

    Raises
    ------
    ValueError
        An unknown arch, a device that is not a device or is not on this machine (``cuda:7`` on a
        machine with one GPU, or none), weights that `arch` does not have.
    FileNotFoundError
        A checkpoint path that does not exist.

    Without torchvision (the ``vision`` extra) nothing is checked: the first image file says what
    to install, and words and image keys work without it.

    Examples
    --------
    >>> check_extractor_options({"arch": "resnet18"}, device="cpu", weights="none")
    >>> check_extractor_options({"arch": "resnet18"}, device="banana")
    Traceback (most recent call last):
    ...
    ValueError: device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'banana'.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if device in (None, "auto") and "arch" not in given and "weights" not in given:
        return  # nothing to check: no need to import torch
    try:
        from gensim_im2vec.features import _check_arch, _resolve_device, _resolve_weights
    except ImportError:
        return
    arch = given.get("arch") or (metadata or {}).get("arch")
    if "arch" in given:
        _check_arch(given["arch"])
    if device not in (None, "auto"):
        _resolve_device(device)
    if "weights" in given and arch:  # without an arch, the first image file says to give one
        if "arch" not in given:
            _check_arch(arch)
        _resolve_weights(arch, _weights_none(given["weights"]))


# ----------------------------------------------------------------------------- an ANN index
def _rebuild_hint(path: str, model_path: str | None) -> str:
    """The command that builds the index at `path` again, for the model at `model_path`."""
    model = model_path or "MODEL"
    out = "" if model_path is not None and os.path.abspath(path) == os.path.abspath(model_path + ".ann") else \
        f" -o {shlex.quote(path)}"
    return f"`im2vec index {shlex.quote(model) if model_path else model}{out}` (from Python: " \
           f"ModalityIndexer(model).save({path!r}))"


def open_index(index: str | os.PathLike | ModalityIndexer, model, *, model_path: str | None = None) -> ModalityIndexer:
    """The :class:`~gensim_im2vec.index.ModalityIndexer` a query session answers from, checked against `model`.

    Parameters
    ----------
    index : str, os.PathLike or ModalityIndexer
        The manifest ``im2vec index MODEL`` wrote (``MODEL.ann``, or where its ``-o`` said), or an
        indexer built or loaded in Python.
    model : Im2Vec
        The model the queries are about; the index must have been built from it as it is now.
    model_path : str, optional
        Where `model` was loaded from: named in the command that rebuilds a stale index.

    Returns
    -------
    ModalityIndexer

    Raises
    ------
    FileNotFoundError, IsADirectoryError, OSError
        No file at `index`, a folder, or a file that cannot be read.
    ValueError
        A file that is not an index manifest, or an index built from other keys or vectors than
        `model`'s (the model was retrained since, or it is another model's): a stale index would
        answer with wrong neighbours. The message names the command that builds it again.
    ImportError
        The index's backend (faiss or annoy) is not installed; the message names the pip install.
    """
    from gensim_im2vec import index as ann

    kv = model.wv
    if isinstance(index, ann.ModalityIndexer):
        name, man, path = repr(index), {"fingerprint": index.fingerprint}, None
    else:
        path = os.fspath(index)
        name = repr(path)
        try:
            with open(path, "rb") as f:
                raw = f.read(ann._MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            raise FileNotFoundError(f"index {name}: no such file. Build one for this model with "
                                    f"{_rebuild_hint(path, model_path)}; `im2vec index MODEL` writes MODEL.ann beside "
                                    f"the model.") from None
        except IsADirectoryError:
            raise IsADirectoryError(f"index {name} is a folder; give the index's manifest file (`im2vec index MODEL` "
                                    f"writes MODEL.ann beside the model).") from None
        except OSError as e:
            raise OSError(f"index {name} cannot be read ({e.strerror or e}); make it readable, or build it again: "
                          f"{_rebuild_hint(path, model_path)}.") from None
        try:
            man = json.loads(raw.decode("utf-8")) if len(raw) <= ann._MAX_MANIFEST_BYTES else None
        except ValueError:  # not JSON, not UTF-8: the model itself, a part file, ...
            man = None
        if not isinstance(man, dict) or man.get("format") != ann._FORMAT:
            beside = model_path + ".ann" if model_path else "MODEL.ann"  # (writing over this file is refused)
            raise ValueError(f"index {name} is not an index manifest (the small JSON file `im2vec index` writes, "
                             f"MODEL.ann; not the model or one of the index's .faiss/.annoy parts). Give that file, or "
                             f"build it: {_rebuild_hint(beside, model_path)}.")
        backend = man.get("backend")
        if backend in ann.BACKENDS and not ann._installed(backend):
            raise ImportError(f"index {name} was built with {backend}, which is not installed here: "
                              f"`{ann._PIP[backend]}` (both backends: the [scale] extra), or query without the index "
                              f"(an exact search).")
    fingerprint = ann._fingerprint(kv.index_to_key, ann._UnitRows(kv))
    if man.get("fingerprint") != fingerprint:
        if isinstance(index, ann.ModalityIndexer):  # its parts as a manifest lists them
            man = {"parts": {m: {"count": len(p.labels)} for m, p in index._parts.items()}, "dim": index.dim,
                   "image_prefix": index.image_prefix}
        built, have = ann._mismatch_counts(man, model)
        if path is None:
            fix = "Build it again for this model: ModalityIndexer(model) again"
        elif model_path is not None and os.path.abspath(path) == os.path.abspath(model_path + ".ann"):
            fix = f"Build it again for this model: {_rebuild_hint(path, model_path)}"  # the model's own: in place
        elif model_path is None:  # perhaps another model's index: building over it would lose that one
            fix = (f"Build one for this model at a path of its own (ModalityIndexer(model).save(PATH); on the command "
                   f"line `im2vec index MODEL` writes MODEL.ann), then give that index, not {name}, which may be "
                   f"another model's")
        else:
            own = model_path + ".ann"
            how = (f"give {own}, beside it, if it was built for this model, else build it: "
                   if os.path.exists(own) else "build one at a path of its own: ")
            fix = (f"For this model, {how}{_rebuild_hint(own, model_path)}, then give that index, not {name}, which "
                   f"may be another model's")
        raise ValueError(
            f"index {name} was built from other keys or vectors ({built}) than this model's ({have}): the model "
            f"was retrained after the index was built, or the index is another model's. "
            f"Its answers would be wrong neighbours, so it is not used. {fix}."
        )
    if path is None:
        return index
    try:
        return ann.ModalityIndexer.load(path, model, check=False)  # checked above: the keys are hashed once
    except (ValueError, KeyError, TypeError) as e:  # a damaged manifest or part file
        what = str(e) if isinstance(e, ValueError) else f"a damaged manifest ({type(e).__name__}: {e})"
        raise ValueError(f"index {name}: {what} On the command line: {_rebuild_hint(path, model_path)}.") from None


def _index_settings(indexer) -> str:
    """``faiss hnsw, ef_search 512``: the backend, its kind and the query-time knobs."""
    p = indexer.params
    if indexer.backend == "annoy":
        return f"annoy, {p.get('num_trees')} trees, search_k {p.get('search_k') or 'default'}"
    kind = p.get("kind", "hnsw")
    knobs = {"hnsw": f"ef_search {p.get('ef_search')}", "ivf": f"nprobe {p.get('nprobe')}",
             "ivfpq": f"pq_m {p.get('pq_m')}, nprobe {p.get('nprobe')}, rerank {p.get('rerank')}"}[kind]
    return f"faiss {kind}, {knobs}"


def _by_rule(rule: str | None) -> str:
    """``; this model's feature store keys its files by --keys stem`` when it keys otherwise than by path."""
    return f"; this model's feature store keys its files by --keys {rule}" if rule in ("stem", "flickr-id") else ""


def _index_cosines_exact(indexer) -> bool:
    """Whether the index returns exact cosines: faiss HNSW and IVF (inner products of the unit
    vectors), IVF-PQ with a re-rank (the model's rows), annoy (1 - d²/2 of its angular distance);
    not IVF-PQ with ``rerank`` 1 (product-quantised estimates)."""
    p = indexer.params
    return not (indexer.backend == "faiss" and p.get("kind") == "ivfpq" and int(p.get("rerank") or 1) <= 1)


class _ExactRows:
    """The gensim indexer protocol over one modality's rows of the model, searched exactly: what a
    list whose modality the index lacks is answered from. Reads only those rows."""

    def __init__(self, model, modality: str, image_prefix: str) -> None:
        from gensim_im2vec.index import _selection, _UnitRows
        from gensim_im2vec.keys import image_mask

        self.kv = model.wv
        self.rows = _selection(model, modality, image_mask(model, image_prefix))
        self.unit = _UnitRows(self.kv, self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def most_similar(self, vector, num_neighbors: int) -> list[tuple[str, float]]:
        from gensim_im2vec.validation import l2_normalize

        q = l2_normalize(np.asarray(vector, dtype=np.float32)[None, :])[0]
        k = min(int(num_neighbors), len(self.rows))
        if k <= 0:
            return []
        pos, sims = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        lo = 0
        for block in self.unit.blocks():
            s = block @ q
            top = np.argpartition(-s, k - 1)[:k] if len(s) > k else np.arange(len(s))
            pos, sims = np.concatenate([pos, top + lo]), np.concatenate([sims, s[top]])
            lo += len(block)
        best = np.argsort(-sims, kind="stable")[:k]
        return [(self.kv.index_to_key[int(self.rows[pos[i]])], float(sims[i])) for i in best]


class _ExactCosines:
    """An index view whose hits get their exact cosines (the model's rows, as gensim computes them),
    best first: for an index that returns estimates (IVF-PQ without a re-rank)."""

    def __init__(self, view, kv) -> None:
        from gensim_im2vec.index import _UnitRows

        self.view, self.kv, self.unit = view, kv, _UnitRows(kv)

    def most_similar(self, vector, num_neighbors: int) -> list[tuple[str, float]]:
        from gensim_im2vec.validation import l2_normalize

        hits = self.view.most_similar(vector, num_neighbors)
        if not hits:
            return hits
        q = l2_normalize(np.asarray(vector, dtype=np.float32)[None, :])[0]
        rows = np.array([self.kv.key_to_index[k] for k, _ in hits], dtype=np.int64)
        cos = self.unit.cosines(rows, q)
        return [(hits[i][0], float(cos[i])) for i in np.argsort(-cos, kind="stable")]


class _Merged:
    """Several searchers (one per modality) as one: their hits merged by cosine."""

    def __init__(self, parts: Sequence) -> None:
        self.parts = list(parts)

    def most_similar(self, vector, num_neighbors: int) -> list[tuple[str, float]]:
        hits = [hit for part in self.parts for hit in part.most_similar(vector, num_neighbors)]
        return sorted(hits, key=lambda t: -t[1])[:num_neighbors]


# ----------------------------------------------------------------------------- the session
class QuerySession:
    """Answers queries about one model; :func:`query_loop` wraps it in a prompt.

    Parameters
    ----------
    model : Im2Vec
        A trained model (images in ``model.wv`` next to the words).
    topn : int
        Neighbours per table (>= 1).
    featurizer_factory : callable, optional
        ``factory(metadata) -> featurizer`` where ``featurizer(path) -> 1-D features``; called
        once, at the first image-file query. Default: :func:`make_featurizer` with `store` and
        `extractor_options`.
    store : str, os.PathLike or FeatureStore, optional
        The model's feature store (for its PCA), passed to :func:`make_featurizer`.
    extractor_options : dict, optional
        ``device``, ``arch``, ``weights``, ``layer`` for :func:`make_featurizer`. Without a
        `featurizer_factory`, a bad device, arch or weights name raises here
        (:func:`check_extractor_options`), not at the first image file.
    extractor_options_checked : bool
        True when the caller has already passed these `extractor_options` through
        :func:`check_extractor_options` (``im2vec query`` does, before it reads its other
        inputs): they are not checked again (a checkpoint file is hashed once). Default False:
        checked here.
    zero_shot_words : sequence of str, optional
        Words that every image answer also ranks by cosine to the image (e.g. held-out tags that
        never met a training image): the best `topn` of them, in a table titled "Given words
        ranked by cosine (k of n)". None or empty: no such table. Duplicates count once. A word
        the model does not have (or an image key) raises ``KeyError`` naming it; a model word
        without a trained input vector (:attr:`Im2Vec.word_space_keys`) is named under the table,
        not ranked. This ranking reads only the given words' vectors: it stays exact with an `index`.
    index : str, os.PathLike or ModalityIndexer, optional
        An approximate-neighbour index of `model` (the ``MODEL.ann`` that ``im2vec index MODEL``
        writes, or a :class:`~gensim_im2vec.index.ModalityIndexer`): every neighbour list (mixed,
        words or tags, images; of a key, a sum, an image file, a held-out image) is answered from
        its modality views (:func:`~gensim_im2vec.index.ann_most_similar`, gensim's semantics)
        instead of a read of every vector, and :attr:`header` says so. The cosines printed are the
        exact ones (an IVF-PQ index without a re-rank gives estimates: its hits' cosines are
        recomputed from the model's rows). A list whose modality the index lacks (an image's
        nearest tags from an index built without ``--tags``) is searched exactly over that
        modality's rows alone, and the header says which. None: exact search throughout.
    index_checked : bool
        True when `index` is a ModalityIndexer that :func:`open_index` already checked against
        `model` (``im2vec query`` does): not hashed again. Default False: checked here.

    Attributes
    ----------
    indexer : ModalityIndexer or None
        The index the lists come from.
    header : str
        What the session answers from (the index, its backend, kind and knobs, any list searched
        exactly); "" without an index. :func:`query_loop` prints it before the first prompt.

    Raises
    ------
    ValueError, FileNotFoundError
        `extractor_options` that the feature extractor would refuse (see
        :func:`check_extractor_options`); an `index` that :func:`open_index` refuses (missing,
        not an index, built from another model or before the model was retrained).
    ImportError
        The `index`'s backend is not installed.
    """

    def __init__(self, model, *, topn: int = 10, featurizer_factory: FeaturizerFactory | None = None,
                 store=None, extractor_options: dict | None = None,
                 zero_shot_words: Sequence[str] | None = None, extractor_options_checked: bool = False,
                 index: str | os.PathLike | ModalityIndexer | None = None, index_checked: bool = False) -> None:
        if not is_int(topn) or topn < 1:
            raise ValueError(f"topn must be a positive int, got {topn!r}.")
        if featurizer_factory is None and not extractor_options_checked:
            check_extractor_options(getattr(model, "image_features_metadata", None), **dict(extractor_options or {}))
        if zero_shot_words is not None:
            check_not_a_str(zero_shot_words, "zero_shot_words", "words")
            zero_shot_words = list(dict.fromkeys(zero_shot_words))
            missing = model.unknown_words(zero_shot_words)
            if missing:
                raise KeyError(f"zero-shot words the model does not have: {missing[:10]}"
                               f"{' …' if len(missing) > 10 else ''} ({len(missing)} of {len(zero_shot_words)})")
        self.zero_shot_words = zero_shot_words
        self._unplaced: list[str] = []  # given words without a trained input vector: named, not ranked
        if zero_shot_words:
            try:
                self._unplaced = model._untrained_words(zero_shot_words)
            except ValueError:  # no word of the model has a trained input vector
                self._unplaced = list(zero_shot_words)
            unplaced = set(self._unplaced)
            self.zero_shot_words = [w for w in zero_shot_words if w not in unplaced]
        self.model = model
        self.topn = int(topn)
        self.store = store
        self.extractor_options = dict(extractor_options or {})
        self.featurizer_factory = featurizer_factory
        self._featurizer = None
        self.indexer = None
        self.header = ""
        self._searchers: dict[str, object] = {}
        if index is not None:
            self._use_index(index, checked=index_checked)

    def _use_index(self, index, *, checked: bool) -> None:
        """Answer every neighbour list from `index`: one searcher per list ("all", "words",
        "tags", "images"), each an index view, or the exact search of that modality's rows when the
        index has none; and the header that says so."""
        from gensim_im2vec.index import ModalityIndexer

        m = self.model
        if not (checked and isinstance(index, ModalityIndexer)):
            index = open_index(index, m)
        self.indexer = index
        has_images = getattr(m, "W", None) is not None
        needed = ["words", "images"] if has_images else ["words"]
        if has_images and m._image_words() == "tags":
            needed.insert(1, "tags")
        exact_cosines = _index_cosines_exact(index)
        sizes, notes = [], []
        for modality in needed:
            try:
                view = index.restrict(modality)
            except ValueError:  # not built: this list is searched exactly
                searcher = _ExactRows(m, modality, index.image_prefix)
                what = {"words": "nearest words", "tags": "an image's nearest tags",
                        "images": "nearest images"}[modality]
                flag = " --tags" if modality == "tags" else ""
                notes.append(f"No {modality} in the index: {what} by exact search over the model's {len(searcher)} "
                             f"{modality} alone (`im2vec index MODEL{flag}` builds an index that has them).")
            else:
                sizes.append(f"{modality} {len(view)}")
                searcher = view if exact_cosines else _ExactCosines(view, m.wv)
            self._searchers[modality] = searcher
        self._searchers["all"] = _Merged([self._searchers[x] for x in needed if x != "tags"])
        cosines = ("exact" if exact_cosines else
                   "exact, recomputed from the model's rows (the index ranks by product-quantised estimates)")
        lines = [f"Neighbours from the approximate index {index.path or repr(index)} ({_index_settings(index)}; "
                 f"{', '.join(sizes) or 'none of the lists'} keys),",
                 f"not an exact search: it may miss a true neighbour (`im2vec index` prints its recall); cosines "
                 f"{cosines}."]
        lines += notes
        if self.zero_shot_words:
            lines.append("Given words ranked by cosine: exact (only their own vectors are read).")
        self.header = "\n".join(lines)

    # -- lookup -------------------------------------------------------------------------------
    def resolve(self, token: str) -> str | None:
        """The vocabulary key `token` stands for, or None.

        Tries the token itself, the image prefix + token (``cats/1`` → ``img:cats/1``), its
        lower case, and spaces joined by ``_`` (multi-word tags such as ``new_york``).
        """
        k2i = self.model.wv.key_to_index
        prefix = getattr(self.model, "image_prefix", IMAGE_PREFIX)
        base = token.strip()
        for cand in (base, prefix + base, base.lower(), "_".join(base.lower().split())):
            if cand in k2i:
                return cand
        return None

    def _is_image(self, key: str) -> bool:
        return self.model.is_image(key)

    def _featurizer_for(self):
        if self._featurizer is None:
            meta = dict(getattr(self.model, "image_features_metadata", None) or {})
            if self.featurizer_factory is not None:
                self._featurizer = self.featurizer_factory(meta)
            else:
                opts = {k: v for k, v in self.extractor_options.items() if v is not None}
                self._featurizer = make_featurizer(meta, store=self.store, **opts)
        return self._featurizer

    # -- answers ------------------------------------------------------------------------------
    def answer(self, line: str) -> str:
        """The text answer to one query line (a key, several tokens, or an image file path)."""
        return self.answer_ok(line)[0]

    def answer_ok(self, line: str) -> tuple[str, bool]:
        """``(text, answered)``: the answer, and False when it only says what went wrong."""
        text = line.strip()
        if not text:
            return "", False
        key = self.resolve(text)
        if key is not None:
            return self._answer_key(key), True
        held_out = self._held_out_features(text)
        if held_out is not None:
            key, feats = held_out
            return self._answer_features(feats, f"Image {key}: in the model's features, not its vocabulary (held "
                                                f"out of training); placed by model.project(features)"), True
        path = self._file_path(text)
        if path is not None:
            return self._answer_file(path)
        tokens = text.split()
        prefix = getattr(self.model, "image_prefix", IMAGE_PREFIX)
        unknown = [t.lstrip("-") for t in tokens if self.resolve(t.lstrip("-")) is None]
        # a path (spaces and all) has an unknown part with a folder or a suffix; an image key is no path,
        # so "img:cats/1 -cat dog" with an unknown word is a sum that names the word
        # (an image suffix makes a path of the line's end only: "7.jpg -dog cat" is a sum that names 7.jpg)
        last = tokens[-1].lstrip("-")
        looks_like_path = any((os.sep in t or (t == last and t.lower().endswith(IMAGE_SUFFIXES)))
                              and not t.startswith(prefix) for t in unknown)
        if looks_like_path:
            # a path (spaces and all) that names no image file: not a sum of words
            if os.path.isdir(os.path.expanduser(text)):
                return f"{text} is a folder; give an image file in it", False
            return self._unknown(text, f"Not in the vocabulary and no such image file: {text}"), False
        if len(tokens) > 1 or (text.startswith("-") and len(text) > 1):  # "-cat": a subtraction alone
            answer, ok = self._answer_tokens(tokens)
            return (answer, ok) if ok or not answer.startswith("Out of dictionary") else (self._unknown(text, answer),
                                                                                          False)
        return self._unknown(text, f"Out of dictionary word: {text}"), False

    def _unknown(self, text: str, message: str) -> str:
        """What to say of `text`, which names no key: the key it was probably meant as (an image key
        typed with its file's extension, or with a space that keys write as ``%20``; by the store's
        key rule, the file name it was made of), that its feature store skipped it (with the reason
        recorded), or that it is not an image key of the model (when it has the image prefix), each
        in the terms of the store's key rule; else `message`."""
        prefix = getattr(self.model, "image_prefix", IMAGE_PREFIX)
        rule = self._key_rule()
        stem, ext = os.path.splitext(text)
        for cand in (text, stem) if ext.lower() in IMAGE_SUFFIXES else (text,):
            key = None if encode_key(cand) == text else self.resolve(encode_key(cand))  # (text itself: no key)
            if rule in ("stem", "flickr-id") and key is None and ext.lower() in IMAGE_SUFFIXES:
                named = rule_key(text.removeprefix(prefix), "", rule, prefix)  # the key the rule makes of the file
                key = named if named is not None and named in self.model.wv.key_to_index else None
            if key is not None and self._is_image(key):  # (a word it resolves to is no image key it meant)
                break
        else:  # with another prefix or in capitals (image:x, IMG:x), as the API's KeyError says it; an image
            k2i = self.model.wv.key_to_index  # held out of training (in the features only) too, as the API names it
            key = next((k for k in key_spellings(text, prefix) if (k in k2i and self._is_image(k))
                        or (k not in k2i and self._held_out_features(k) is not None)), None)
        if key is not None:
            whitespace = ", whitespace written as %20" if rule in ("path", "stem") else ""
            return (f"Not a key of the model: {text}; did you mean {key}? (An image key is "
                    f"{describe_key_rule(rule, prefix)}{whitespace}{_by_rule(rule)}.)")
        skipped = self._skipped_reason(text, prefix)
        if skipped is not None:
            key, reason, store = skipped
            return (f"Not an image key of the model: {text}. {key} was skipped by `im2vec extract`, which could not "
                    f"use its file: {reason} (the feature store {store!r} lists it in skipped.json). Once the file is "
                    f"fixed, the same extract run again tries it again; train again to place it.")
        if text.startswith(prefix) and len(text.split()) == 1:
            close = self._close_image_key(text, prefix) if rule == "path" else None  # (not ids: 1000099 ≠ 1000004)
            return (f"Not an image key of the model: {text}.{f' Did you mean {close}?' if close else ''} An image "
                    f"key is {describe_key_rule(rule, prefix)}{_by_rule(rule)}. To place an image file by its "
                    f"features, type its path.")
        return message

    #: Above this many keys in the vocabulary, a mistyped image key gets no close-match suggestion
    #: (difflib over every key would hold the prompt for seconds).
    CLOSE_MATCH_MAX_KEYS = 200_000
    #: Nor when more image keys than this would be compared with it: those of its folder when the
    #: folder is one of the model's, else all (difflib took 4.5 s on 200,000 keys of one shape, 0.7 s on
    #: 20,000, on a busy 2-core machine).
    CLOSE_MATCH_MAX_COMPARED = 20_000

    def _close_image_key(self, text: str, prefix: str) -> str | None:
        """The model's image key closest to `text` (a typo: ``img:cats/blak_cat`` for
        ``img:cats/black_cat``), by :func:`difflib.get_close_matches`; None when none is close or
        the vocabulary is too large to compare with (:data:`CLOSE_MATCH_MAX_KEYS`, and
        :data:`CLOSE_MATCH_MAX_COMPARED` keys of its folder, or of all folders when its own is none of
        the model's), or `text` is a number (an id one digit from another is no typo of it)."""
        import difflib

        keys = self.model.wv.index_to_key
        if len(keys) > self.CLOSE_MATCH_MAX_KEYS or not any(c.isalpha() for c in text[len(prefix):]):
            return None
        images = [k for k in keys if k.startswith(prefix) and self._is_image(k)]
        folder = text.rpartition("/")[0]  # (a typo in the file name: its folder's keys alone)
        images = [k for k in images if k.rpartition("/")[0] == folder] or images if folder else images
        if len(images) > self.CLOSE_MATCH_MAX_COMPARED:
            return None
        close = difflib.get_close_matches(text, images, n=1, cutoff=0.8)
        return close[0] if close else None

    def _key_rule(self) -> str | None:
        """How the model's image keys were made of their files: its feature store's ``key_rule``
        (``im2vec extract --keys``); "path" for a store of a folder that predates the record; None
        for keys a caller made (pairs, arrays)."""
        meta = getattr(self.model, "image_features_metadata", None) or {}
        rule = meta.get("key_rule")
        if rule is None and (meta.get("image_root") or not meta):  # (no metadata: features from Python,
            rule = "path"  # keyed most likely by image_key, as the prompt's hint always said)
        return rule

    def _skipped_reason(self, text: str, prefix: str) -> tuple[str, str, str] | None:
        """``(key, reason, store path)`` when the feature store (``store=``, else the model's) lists
        `text` (with or without the image prefix) as skipped by the extraction; else None. A store
        that cannot be read gives no hint (never an error: this only words a message)."""
        if not hasattr(self, "_skipped"):
            self._skipped = None
            try:
                from gensim_im2vec.store import FeatureStore, _read_skipped

                st = self.store if self.store is not None else getattr(self.model, "feature_store", None)
                if isinstance(st, FeatureStore):
                    self._skipped = (dict(st.skipped), str(st.path))
                elif st is not None:
                    self._skipped = (_read_skipped(Path(st)), os.fspath(st))
            except (OSError, ValueError, TypeError):
                self._skipped = None
        if not self._skipped:
            return None
        skipped, where = self._skipped
        for key in (text, prefix + text) if not text.startswith(prefix) else (text,):
            if key in skipped:
                return key, skipped[key], where
        return None

    @staticmethod
    def _file_path(text: str) -> str | None:
        """The image file `text` names: as typed, or quoted / with backslash-escaped spaces as a terminal
        writes a dropped file (``'my photos/cat.jpg'``, ``my\\ photos/cat.jpg``); None if no file."""
        path = os.path.expanduser(text)
        if os.path.isfile(path):
            return path
        try:
            parts = shlex.split(text)
        except ValueError:  # an unmatched quote: not a quoted path
            return None
        if len(parts) == 1 and parts[0] != text:
            path = os.path.expanduser(parts[0])
            if os.path.isfile(path):
                return path
        return None

    def _cancels(self, positive, negative) -> bool:
        """Whether the unit vectors of `positive` minus those of `negative` sum to (almost) nothing:
        what ``wv.most_similar`` would rank by has no direction, and every cosine would print 0."""
        wv = self.model.wv
        total = np.zeros(wv.vector_size, dtype=np.float64)
        for keys, sign in ((positive, 1.0), (negative, -1.0)):
            for k in keys:
                v = np.asarray(wv.vectors[wv.key_to_index[k]], dtype=np.float64)
                norm = np.linalg.norm(v)
                if not np.isfinite(norm) or norm == 0:
                    return True
                total += sign * v / norm
        return bool(np.linalg.norm(total) < 1e-6 * max(1, len(positive) + len(negative)))

    def _from_index(self, positive, negative, which: str) -> list[tuple[str, float]]:
        """:func:`~gensim_im2vec.index.ann_most_similar` (gensim's semantics: the query's keys left
        out) through the searcher of list `which` ("all", "words", "tags", "images")."""
        from gensim_im2vec.index import ann_most_similar

        return ann_most_similar(self.model, positive, negative, self.topn, indexer=self._searchers[which])

    def _tables(self, positive, negative, tags: bool = False) -> list[str]:
        """The neighbours by ``wv.most_similar``: words and images together, then words (with
        `tags`, an image's query: only the words of the image documents, :meth:`Im2Vec.most_similar_tags`)
        beside images. With an index, the same lists from its modality views."""
        m, n = self.model, self.topn
        indexed = self.indexer is not None
        if not indexed:  # (else wv.most_similar's gensim fill_norms: a private copy of all of wv, at once)
            m._ensure_norms()
        if m.W is None:  # a model without images: plain neighbours
            hits = (self._from_index(positive, negative, "all") if indexed
                    else m.wv.most_similar(positive=positive, negative=negative, topn=n))
            return [format_neighbours("Nearest words", hits, self._is_image)]
        restrict = m._image_words() if tags else "words"
        if indexed:
            mixed, words, images = (self._from_index(positive, negative, which) for which in ("all", restrict, "images"))
        else:
            mixed = m.wv.most_similar(positive=positive, negative=negative, topn=n)
            words = m._most_similar_restricted(positive, negative, n, restrict)
            images = m.most_similar_images(positive=positive, negative=negative, topn=n)
        return [
            format_neighbours("Nearest words and images", mixed, self._is_image),
            _side_by_side(_words_table(restrict, words, self._is_image),
                          format_neighbours("Nearest images", images, self._is_image, key_name="Image")),
        ]

    def _answer_key(self, key: str) -> str:
        m = self.model
        kind = "Image" if self._is_image(key) else "Word"
        parts = [f"{kind}: {key}  (position in vocabulary: {m.wv.key_to_index[key]})"]
        if self._cancels([key], []):
            return parts[0] + "\n\nIts vector is zero (or not finite): it has no direction, so no neighbours by cosine."
        parts += self._tables([key], [], tags=kind == "Image")
        if kind == "Image":
            parts += self._given_words(key)
        return "\n\n".join(parts)

    def _given_words(self, image) -> list[str]:
        """The given words (``zero_shot_words``) ranked by cosine to `image` (a key in ``wv`` or a
        vector in the space): ``1 - wv.distances``, best `topn` first. [] when none were given."""
        if not self.zero_shot_words and not self._unplaced:
            return []
        words, n = self.zero_shot_words, self.topn
        ranked = []
        if words:
            cos = 1.0 - self.model.wv.distances(image, words)
            order = np.argsort(-cos, kind="stable")[:n]
            ranked = [(words[i], float(cos[i])) for i in order]
        table = format_neighbours(f"Given words ranked by cosine ({len(ranked)} of {len(words)})", ranked,
                                  self._is_image, score_name="Cosine", key_name="Word")
        if self._unplaced:
            table += (f"\nNot ranked, no trained vector in the space: {', '.join(self._unplaced[:10])}"
                      f"{' …' if len(self._unplaced) > 10 else ''}")
        return [table]

    def _answer_tokens(self, tokens: Sequence[str]) -> tuple[str, bool]:
        positive, negative, missing = [], [], []
        for tok in tokens:
            sign = tok.startswith("-") and len(tok) > 1 and self.resolve(tok) is None
            key = self.resolve(tok[1:] if sign else tok)
            if key is None:
                missing.append(tok)
            else:
                (negative if sign else positive).append(key)
        if missing:
            hints = []  # what a missing image key was meant as (a typo, its file's extension, held out)
            prefix = getattr(self.model, "image_prefix", IMAGE_PREFIX)
            for tok in missing:
                tok = tok.lstrip("-")
                # (also typed as its file or with another prefix: 7.jpg, IMG:7 for a held-out img:7, which
                # _unknown would offer as the key to type, though a sum cannot take it)
                held_out = next((h for k in (tok, *key_spellings(tok, prefix))
                                 if (h := self._held_out_features(k)) is not None), None)
                hints.append(self._unknown(tok, "") if held_out is None else (
                    f"{held_out[0]} is held out of training (in the model's features, not its vocabulary): type it "
                    f"alone to place it by its features; a sum takes the model's words and images only."))
            return "\n".join([f"Out of dictionary word: {' '.join(missing)}", *filter(None, hints)]), False
        if not positive:
            return "Give at least one word or image to add (a leading '-' subtracts).", False
        expr = " + ".join(positive) + "".join(f" - {k}" for k in negative)
        if self._cancels(positive, negative):
            return (f"Sum: {expr}\n\nThe tokens cancel out (or one has a zero vector): their sum has no direction, "
                    f"so no neighbours by cosine. Change or drop a token."), False
        return "\n\n".join([f"Sum: {expr}"] + self._tables(positive, negative)), True

    def _answer_file(self, path: str) -> tuple[str, bool]:
        from gensim_im2vec.decode import ImageSkipped

        m = self.model
        if m.W is None:
            return "This model has no images (no W): it cannot place an image file.", False
        try:
            featurize = self._featurizer_for()
        except ImportError as e:  # torch / torchvision / Pillow: the [vision] extra
            return (f"Cannot extract features for image files: {e}. Install the vision extra "
                    f"(pip install 'gensim-im2vec[vision]'); words and image keys work without it."), False
        except (ValueError, TypeError, OSError, RuntimeError) as e:
            return f"Cannot extract features for image files: {e}", False
        try:
            feats = featurize(path)
        except ImageSkipped as e:
            return f"Cannot read image {path}: {e}", False
        except (ValueError, OSError, RuntimeError) as e:  # one bad file (or CUDA out of memory) ends no session
            return f"Cannot extract features of {path}: {e}", False
        dim = m.W.shape[1]
        if np.asarray(feats).shape != (dim,):
            return (f"Cannot place {path}: its features have shape {np.asarray(feats).shape}, the model "
                    f"expects ({dim},); the extractor does not match the model's features."), False
        return self._answer_features(feats, f"Image file: {path}  (placed by model.project(features); not in the "
                                            f"vocabulary)"), True

    def _held_out_features(self, text: str):
        """``(key, features)`` of an image the model's features hold but its vocabulary does not
        (`text` the key, with or without the image prefix), else None."""
        m = self.model
        if getattr(m, "W", None) is None or not hasattr(m, "_held_out_features"):
            return None
        prefix = getattr(m, "image_prefix", IMAGE_PREFIX)
        for key in (text, prefix + text) if not text.startswith(prefix) else (text,):
            v = m._held_out_features(key)
            if v is not None:
                return key, np.asarray(v, dtype=np.float32)
        return None

    def _answer_features(self, feats, title: str) -> str:
        """The answer for an image given by its features: its nearest words and images."""
        m = self.model
        n = self.topn
        vec = m.project(feats)
        restrict = m._image_words()
        if self.indexer is not None:
            if not (np.all(np.isfinite(vec)) and np.any(vec)):
                return title + "\n\nIts vector is zero (or not finite): it has no direction, so no neighbours by cosine."
            mixed, words, images = (self._from_index(vec, None, which) for which in ("all", restrict, "images"))
        else:
            # similar_by_image == wv.similar_by_vector(project(feats)) filtered by modality
            mixed = m.similar_by_image(feats, topn=n)
            words = m.similar_by_image(feats, topn=n, restrict=restrict)
            images = m.similar_by_image(feats, topn=n, restrict="images")
        return "\n\n".join([
            title,
            format_neighbours("Nearest words and images", mixed, self._is_image),
            _side_by_side(_words_table(restrict, words, self._is_image),
                          format_neighbours("Nearest images", images, self._is_image, key_name="Image")),
            *self._given_words(vec),
        ])


def _words_table(restrict: str, hits, is_image) -> str:
    """The table of an answer's words: "Nearest tags" for `restrict` "tags", else "Nearest words"."""
    return format_neighbours(f"Nearest {restrict}", hits, is_image, key_name="Tag" if restrict == "tags" else "Word")


class _Undecodable(Exception):
    """A line of input that is not text in the stream's encoding (the message says where)."""


def _undecodable(raw: bytes, encoding: str, e: UnicodeDecodeError) -> _Undecodable:
    shown = raw.rstrip(b"\r\n")[:60]
    return _Undecodable(f"Not {encoding} text: byte 0x{raw[e.start]:02x} at position {e.start} of {shown!r}; "
                        f"type the word, key or path as {encoding} text (rename a file whose name is not).")


def _read_line(stdin: TextIO | None, stdout: TextIO, prompt: str) -> str | None:
    """One line without its line break; None at end of input; :class:`_Undecodable` for bytes that
    are not text (the session goes on)."""
    if stdin is None:
        try:
            return input(prompt)
        except EOFError:
            stdout.write("\n")
            return None
        except UnicodeDecodeError as e:
            raise _undecodable(e.object, e.encoding, e) from None
    stdout.write(prompt)
    stdout.flush()
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None and hasattr(buffer, "readline"):
        # a text stream over bytes (sys.stdin): decode line by line, so one bad line is one message,
        # not a UnicodeDecodeError that ends the session (the text layer decodes whole chunks)
        raw = buffer.readline()
        if not raw:
            stdout.write("\n")
            return None
        encoding = getattr(stdin, "encoding", None) or "utf-8"
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as e:
            stdout.write("\n")
            raise _undecodable(raw, encoding, e) from None
    else:
        line = stdin.readline()
    if not line:
        stdout.write("\n")
        return None
    line = line.rstrip("\r\n")
    isatty = getattr(stdin, "isatty", None)
    if not (callable(isatty) and isatty()):
        stdout.write(line + "\n")  # echo scripted input, so the transcript reads like a session
    return line


def query_loop(model, stdin: TextIO | None = None, stdout: TextIO | None = None, *, topn: int = 10,
               featurizer_factory: FeaturizerFactory | None = None, store=None,
               extractor_options: dict | None = None, prompt: str = PROMPT,
               zero_shot_words: Sequence[str] | None = None, extractor_options_checked: bool = False,
               index: str | os.PathLike | ModalityIndexer | None = None, index_checked: bool = False) -> int:
    """Prompt for queries until ``EXIT``, end of input or Ctrl-C at the prompt; print each answer.

    A blank line is skipped; a line that is not text in the input's encoding is answered with one
    line saying so; Ctrl-C while an answer is computed drops that answer.

    Parameters
    ----------
    model : Im2Vec
        The model to explore.
    stdin : text stream, optional
        Where queries come from, one per line. None: ``input()`` (line editing when the
        :mod:`readline` module is available).
    stdout : text stream, optional
        Where answers go (default ``sys.stdout``).
    topn : int
        Neighbours per table.
    featurizer_factory, store, extractor_options, zero_shot_words, extractor_options_checked, index, index_checked
        See :class:`QuerySession`. With an `index`, the session's header (the index, its
        backend and kind) is printed before the first prompt.
    prompt : str
        The prompt.

    Returns
    -------
    int
        Number of queries answered (unknown words do not count).
    """
    stdout = stdout if stdout is not None else sys.stdout
    if stdin is None:
        try:  # line editing and history for input()
            import readline  # noqa: F401
        except ImportError:  # pragma: no cover - not on every platform
            pass
    session = QuerySession(model, topn=topn, featurizer_factory=featurizer_factory, store=store,
                           extractor_options=extractor_options, zero_shot_words=zero_shot_words,
                           extractor_options_checked=extractor_options_checked, index=index,
                           index_checked=index_checked)
    if session.header:
        stdout.write(session.header + "\n\n")
    answered = 0
    while True:
        try:
            line = _read_line(stdin, stdout, prompt)
        except _Undecodable as e:
            stdout.write(f"{e}\n\n")
            continue
        except KeyboardInterrupt:  # Ctrl-C at the prompt: the end of the session, not a traceback
            stdout.write("\n")
            break
        if line is None or line.strip() == EXIT:
            break
        if not line.strip():
            continue
        try:
            text, ok = session.answer_ok(line)
        except KeyboardInterrupt:  # Ctrl-C during an answer (a CNN on an image file): back to the prompt
            text, ok = "Interrupted; the prompt is back (EXIT or Ctrl-D ends the session).", False
        stdout.write(text + "\n\n")
        stdout.flush()
        answered += ok
    logger.info("query session: %i queries answered", answered)
    return answered
