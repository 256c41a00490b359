"""Training that survives an interruption: the model saved at each epoch's end, and continued.

At 100M images an epoch takes from minutes to hours (docs/scale.md §4); a crash, a preempted
machine or a Ctrl-C should cost at most the epoch it interrupted. :class:`EpochCheckpoint` is a
gensim callback that saves the model (atomically, as :meth:`Im2Vec.save` always does) after every
epoch but the last, with how many epochs are done and what the run was asked; :func:`resume`
loads such a checkpoint and trains the remaining epochs on the same learning-rate schedule:
gensim's alpha falls linearly from ``alpha`` to ``min_alpha`` over all the epochs, and the
remaining ones start where the interrupted run was.

>>> import os, tempfile
>>> from gensim_im2vec import Im2Vec
>>> from gensim_im2vec.checkpoint import EpochCheckpoint, resume
>>> from gensim_im2vec.synthetic import make_corpus
>>> data = make_corpus(n_classes=3, n_images=60, seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "run.checkpoint")
>>> model = Im2Vec(image_features=data.features, vector_size=8, sg=1, min_count=1, epochs=4, workers=1)
>>> model.build_vocab(data.docs)
>>> from gensim.models.callbacks import CallbackAny2Vec
>>> class Crash(Exception): pass
>>> class CrashAfter2(CallbackAny2Vec):  # stands in for a killed process
...     def __init__(self): self.n = 0
...     def on_epoch_end(self, model):
...         self.n += 1
...         if self.n == 2: raise Crash
>>> try:
...     model.train(data.docs, total_examples=model.corpus_count, epochs=model.epochs,
...                 callbacks=[EpochCheckpoint(path, epochs=4), CrashAfter2()])
... except Crash:
...     pass
>>> resumed = resume(path, data.docs)       # epochs 3 and 4, alpha from where epoch 2 ended
>>> resumed.epochs, resumed.alpha, os.path.exists(path)   # the checkpoint is gone once done
(4, 0.025, False)

Each checkpoint is an :meth:`Im2Vec.save` without the images' rows of ``wv.vectors`` (they are
``W``'s: loading the checkpoint writes them again), written once an epoch over the previous one:
at 100M images the vocabulary and the words' rows, a few GB, not the images' 40-80 GB
(docs/scale.md §7, item 4). Any loader restores them (``Im2Vec.load``, gensim's ``load``): in
memory, also with ``mmap="r"`` (the rows a checkpoint left out are computed, not mapped).
:func:`resume` does not: the training it continues never reads them and writes every one from
``W`` when it ends (or is interrupted), so its load reads no feature row; the words' rows go into
the run's own ``vectors_file``, written over in place, when the run has one (or into the one
:func:`resume` is given, below).

``im2vec train ... --resumable`` does this from the shell: the same command run again continues
from ``OUTPUT.checkpoint``. A checkpoint records what its run was given (``inputs``: the
command's documents, store and options); :func:`resume` refuses one made with other inputs,
naming what differs, rather than mixing two runs. A file is known by its content
(:func:`file_identity`: its size and a digest of its first, middle and last MiB), a store by its
``store_id`` and rows, so the same data resumes wherever it lies (touched, copied, moved):

>>> from gensim_im2vec.checkpoint import file_identity, check_inputs
>>> a = os.path.join(tempfile.mkdtemp(), "docs.txt")
>>> with open(a, "w") as f: _ = f.write("img:1 cat\\n")
>>> b = os.path.join(tempfile.mkdtemp(), "docs.txt")
>>> with open(b, "w") as f: _ = f.write("img:1 cat\\n")
>>> check_inputs("run.checkpoint", {"inputs": {"documents": file_identity(a)}}, {"documents": file_identity(b)})
>>> with open(b, "a") as f: _ = f.write("img:2 dog\\n")
>>> check_inputs("run.checkpoint", {"inputs": {"documents": file_identity(a)}},
...              {"documents": file_identity(b)})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: documents ...docs.txt' changed since the checkpoint run.checkpoint was made: size 10 -> 20 bytes. ...

A run's vectors file (``vectors_file``, ``--vectors-file``) is where it keeps ``wv.vectors``, not one of
its inputs (:data:`PLACE_OPTIONS` are not compared): a resume continues in the vectors file it is
given (``resume(..., vectors_file=PATH)``; ``im2vec train`` always gives its own ``--vectors-file``, or
None without it), never in a file it is not given. After the run's folder was moved, the file there is
the run's own (the same device and inode, its only name, the run's token in its header) and is written
over in place; after it was copied (or moved to another disk), the copy is another file, and a file
that another path also names (the folder copied with hard links, ``cp -al``) is everyone's: ``im2vec
train`` removes it (that name only), known as a copy of a run's vectors file by the marker copied
beside it (:func:`vectors_file_made_by` with ``copies=True``), once the checkpoint's inputs are found
to be the command's, and the resume makes the file again from the checkpoint, which holds the words'
rows (the images' are ``W``'s); the original folder is left as it is, and can be resumed too. A saved
model's vectors file (a run's, moved into its model) is never taken: the save takes the run's token
out of it.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from gensim.models.callbacks import CallbackAny2Vec

if TYPE_CHECKING:
    from gensim_im2vec.model import Im2Vec

logger = logging.getLogger(__name__)

__all__ = ["EpochCheckpoint", "resume", "read_checkpoint", "remove_checkpoint", "file_identity", "store_identity",
           "check_inputs", "saved_bytes", "SpaceCheck", "NotEnoughSpace"]

RECORD = "checkpoint"  # the model attribute that holds the record while it is a checkpoint


class EpochCheckpoint(CallbackAny2Vec):
    """Save the model to `path` at the end of each epoch but the last.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint's main file (gensim's companion ``.npy`` files go beside it).
    epochs : int
        All the epochs of the run (the model's ``epochs`` when it was started).
    done : int
        Epochs finished before this ``train()`` (a resumed run).
    inputs : mapping, optional
        What the run was given (JSON-able), kept in the checkpoint and compared by :func:`resume`.

    The model saved is the model as it is after the epoch, with a record ``model.checkpoint =
    {"epochs_done", "epochs", "alpha", "min_alpha", "inputs"}`` that is saved in the same atomic
    write: a checkpoint never says more epochs than it holds. The images' rows of ``wv.vectors``
    are left out (at 100M images 40-80 GB an epoch): they are ``W``'s, and loading the checkpoint
    writes them from ``W`` again, so the model loaded is the model saved (:func:`resume` leaves
    them to the training it continues, which writes them when it ends). Nor are they written at
    the epoch's end for this callback (``reads_image_rows = False``; a callback without that
    attribute gets them written from ``W`` at each epoch's end).
    """

    reads_image_rows = False  # Im2Vec.train: no need to write the images' rows at each epoch's end for it

    def __init__(self, path, *, epochs: int, done: int = 0, inputs: Mapping | None = None) -> None:
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs: expected a positive int (all the epochs of the run), got {epochs!r}.")
        if not isinstance(done, int) or not 0 <= done < epochs:
            raise ValueError(f"done: expected an int in [0, {epochs}), got {done!r}.")
        self.path = os.fspath(path)
        self.epochs = epochs
        self.done = done
        self.inputs = dict(inputs or {})
        self._schedule = None

    def on_train_begin(self, model) -> None:
        # the whole run's alpha and min_alpha: a resumed train() is given its part of the schedule
        record = getattr(model, RECORD, None)
        self._schedule = (record["alpha"], record["min_alpha"]) if record else (model.alpha, model.min_alpha)

    def on_epoch_end(self, model) -> None:
        self.done += 1
        if self.done >= self.epochs:
            return
        alpha, min_alpha = self._schedule or (model.alpha, model.min_alpha)
        setattr(model, RECORD, {"epochs_done": self.done, "epochs": self.epochs, "alpha": alpha,
                                "min_alpha": min_alpha, "inputs": self.inputs})
        try:
            with model._saved_without_image_rows():
                model.save(self.path)
        finally:
            model.__dict__.pop(RECORD, None)
        logger.info("checkpoint: epoch %i of %i saved to %s", self.done, self.epochs, self.path)


def read_checkpoint(path, **load_kwargs) -> tuple[Im2Vec, dict] | None:
    """The model saved at `path` by :class:`EpochCheckpoint` and its record, or None when there
    is no checkpoint there. `load_kwargs` go to :meth:`Im2Vec.load` (e.g. ``image_features``)."""
    from gensim_im2vec.model import Im2Vec

    path = os.fspath(path)
    if not os.path.exists(path):
        return None
    model = Im2Vec.load(path, **load_kwargs)
    record = getattr(model, RECORD, None)
    if not isinstance(record, dict) or "epochs_done" not in record:
        raise ValueError(f"{path} is a saved model, not a checkpoint of an interrupted training (it has no record "
                         f"of its epochs); load it with Im2Vec.load, or remove it to start over.")
    return model, record


def resume(path, corpus_iterable: Iterable, *, inputs: Mapping | None = None, callbacks=(),
           on_resume: Callable[[Mapping], object] | None = None, before_train: Callable | None = None,
           **load_kwargs) -> Im2Vec:
    """Continue the training saved at `path` by :class:`EpochCheckpoint`: load it, train the
    remaining epochs on `corpus_iterable` (the same documents), remove the checkpoint, and return
    the trained model (not saved: save it where the run's output goes).

    The remaining epochs take their part of the run's schedule, alpha falling from where the
    finished epochs left it to ``min_alpha``, so the run trains as many epochs at the same rates
    as without the interruption; ``model.epochs`` and ``model.alpha`` are the run's afterwards.
    The checkpoint goes on saving after each remaining epoch but the last, with `inputs` when given
    (a checkpoint of an earlier version's file identities is written in the current form). The
    inputs are checked as the checkpoint is loaded, before its vectors file is opened or made (a
    refused checkpoint leaves every file as it is). `on_resume`, when given, is called with the
    checkpoint's record once its inputs are checked, before the vectors file is opened or made and
    before training (e.g. to say that the run resumes only when it does, or to clear the way for the
    vectors file); `before_train`, when given, with the loaded model
    right before ``train()`` (e.g. :meth:`SpaceCheck.check`). The images' rows of
    ``wv.vectors`` are not written on load (no pass over the features): training writes them
    all from ``W`` when it ends, or when it is interrupted, as any ``train()`` does.

    The words' rows go into the run's ``vectors_file`` (the checkpoint's record), or with
    ``vectors_file=PATH`` (a `load_kwargs`, :meth:`Im2Vec.load`) into PATH instead, e.g. after the
    run's folder was moved or copied: the file at PATH is written over in place when it is the very
    file the run made (moved there: the same device and inode), else a new file is made there from the
    checkpoint (the run's rows are all in the checkpoint and ``W``; a file already at PATH that is not
    the run's, a copy of it included, is refused, as any ``vectors_file``); ``vectors_file=None`` keeps
    them in memory. The checkpoint's recorded file is then never opened. The very file the run made
    is known by its device and inode, a single name (a file that another path also names, e.g. in a
    folder copied with hard links, ``cp -al``, is never written in: another file is made) and the run's
    random token in its ``.npy`` header (a saved model's file, once the run's, has none): at another
    path than the recorded one, all three; a checkpoint of an earlier version, which records no token,
    continues in place only at its recorded path.

    Raises
    ------
    FileNotFoundError
        No checkpoint at `path`.
    ValueError
        `inputs` given and different from the checkpoint's (the message names the first field
        that differs), or `path` is a model that is not a checkpoint.
    """
    from gensim_im2vec.model import _RESUMING

    checked = []

    def ready(model):  # loaded, before its vectors file is opened or made: a checkpoint of other inputs touches none
        if checked:
            return
        checked.append(True)
        record = getattr(model, RECORD, None)
        if not isinstance(record, dict) or "epochs_done" not in record:
            return  # (read_checkpoint refuses it)
        if inputs is not None:
            check_inputs(path, record, inputs)
        if on_resume is not None:
            on_resume(record)

    # the words' rows go where training will write them (the run's vectors_file), and the images' rows
    # are left for training to write from W when it ends: no pass over the features on load
    token = _RESUMING.set(ready)
    try:
        got = read_checkpoint(path, **load_kwargs)
    finally:
        _RESUMING.reset(token)
    if got is None:
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)!r}: nothing to resume; train from the start.")
    model, record = got
    ready(model)  # (a checkpoint whose vectors were all saved: its load opened no vectors file)
    epochs, done = record["epochs"], record["epochs_done"]
    alpha, min_alpha = record["alpha"], record["min_alpha"]
    start = alpha - (alpha - min_alpha) * done / epochs
    if before_train is not None:  # e.g. a check that refuses the run before train() writes anything
        before_train(model)
    logger.info("resuming %s: epochs %i-%i of %i, alpha %.6f -> %.6f", path, done + 1, epochs, epochs, start,
                min_alpha)
    saver = EpochCheckpoint(path, epochs=epochs, done=done, inputs=record["inputs"] if inputs is None else inputs)
    model._epochs_before = done  # the run's epochs so far (the analogy step's draws go on from them)
    model.train(corpus_iterable, total_examples=model.corpus_count, epochs=epochs - done, start_alpha=start,
                end_alpha=min_alpha, compute_loss=model.compute_loss, callbacks=[saver, *callbacks])
    model.epochs, model.alpha, model.min_alpha = epochs, alpha, min_alpha
    model.__dict__.pop(RECORD, None)
    remove_checkpoint(path)
    return model


def check_inputs(path, record: Mapping, inputs: Mapping) -> None:
    """Refuse a checkpoint whose run was given other `inputs`, naming the first that differs.

    Files (:func:`file_identity`) compare by content, stores (:func:`store_identity`) by id and
    rows, wherever they lie; the identities an earlier version wrote (``[path, size, mtime_ns]``,
    ``[store path, rows]``) still match the same file, untouched, at the same place. The options that
    say where a run keeps its arrays, not what it trains (:data:`PLACE_OPTIONS`), are not compared."""
    saved = _without_places(record.get("inputs") or {})
    inputs = _without_places(inputs)
    for key in sorted(set(saved) | set(inputs)):
        was, now = saved.get(key), inputs.get(key)
        if _same_input(was, now):
            continue
        changed = _file_change(key, was, now, path)
        if changed:
            raise ValueError(changed)
        raise ValueError(
            f"{os.fspath(path)} is the checkpoint of a run with other inputs: {key} was {was!r}, now {now!r}. Run "
            f"the command that made it again to finish it, or remove the checkpoint (and its .npy files) to start "
            f"over.")


#: The options (of an ``"options"`` input) that say where a run keeps its arrays, not what it trains: a
#: resume may give others (``im2vec train --vectors-file``: the run's folder moved or copied, another disk).
PLACE_OPTIONS = ("vectors_file",)


def _without_places(inputs: Mapping) -> Mapping:
    options = inputs.get("options")
    if not isinstance(options, Mapping) or not any(k in options for k in PLACE_OPTIONS):
        return inputs
    return {**inputs, "options": {k: v for k, v in options.items() if k not in PLACE_OPTIONS}}


#: Bytes of a file read at its start, middle and end for :func:`file_identity` (all of a file up to 3 of them).
IDENTITY_BLOCK = 1 << 20


def file_identity(path) -> dict | None:
    """What a checkpoint knows an input file by: its content, wherever it lies.

    ``{"path", "size", "sample"}``: the absolute path (for messages only), the size in bytes and a
    BLAKE2b digest of its first, middle and last :data:`IDENTITY_BLOCK` bytes (the whole file up to
    three blocks): 3 MiB read whatever the size, so cheap at 100 GB; the same after ``touch``, a
    copy or a move; another after a change of size or of a sampled block (a change of equal size
    between the sampled blocks goes unseen: the price of not reading 100 GB). None for no file."""
    if not path:
        return None
    path = os.path.abspath(os.fspath(path))
    size = os.stat(path).st_size
    digest = hashlib.blake2b(digest_size=16)
    block = IDENTITY_BLOCK
    spans = [(0, size)] if size <= 3 * block else [(0, block), ((size - block) // 2, block), (size - block, block)]
    with open(path, "rb") as f:
        for start, n in spans:
            f.seek(start)
            digest.update(f.read(n))
    return {"path": path, "size": size, "sample": digest.hexdigest()}


def store_identity(store) -> dict:
    """What a checkpoint knows a FeatureStore by: ``{"path", "store_id", "rows"}`` (its random id,
    which a copy keeps, and its row count; the path for messages, and to tell stores without an id
    apart)."""
    meta = getattr(store, "metadata", None) or {}
    return {"path": os.path.abspath(os.fspath(store.path)), "store_id": meta.get("store_id"), "rows": len(store)}


def _is_file_identity(value) -> bool:
    return isinstance(value, dict) and "sample" in value and "size" in value


def _is_old_file_identity(value) -> bool:  # an earlier version's: [absolute path, size, mtime_ns]
    return (isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str)
            and all(isinstance(v, int) for v in value[1:]))


def _is_store_identity(value) -> bool:
    return isinstance(value, dict) and "store_id" in value and "rows" in value


def _is_old_store_identity(value) -> bool:  # an earlier version's: [absolute path, rows]
    return isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _old_identity_now(path: str) -> list | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [path, st.st_size, st.st_mtime_ns]


def _same_input(was, now) -> bool:
    if was == now:
        return True
    if _is_file_identity(was) and _is_file_identity(now):
        return (was["size"], was["sample"]) == (now["size"], now["sample"])
    if _is_old_file_identity(was) and _is_file_identity(now):
        return _old_identity_now(now["path"]) == list(was)
    if _is_store_identity(was) and _is_store_identity(now):
        if was["store_id"] and now["store_id"]:
            return (was["store_id"], was["rows"]) == (now["store_id"], now["rows"])
        return (was["path"], was["rows"]) == (now["path"], now["rows"])
    if _is_old_store_identity(was) and _is_store_identity(now):
        return [now["path"], now["rows"]] == list(was)
    return False


def _file_change(key: str, was, now, checkpoint) -> str | None:
    """The refusal for an input file or store that is not the checkpoint's: what changed, and the fixes."""
    checkpoint = os.fspath(checkpoint)
    fix = (f"Give the {key} the interrupted run was given to finish it (the checkpoint keeps its epochs), or "
           f"remove the checkpoint {checkpoint} (and its .npy files) to train on the new one from the start.")
    if _is_file_identity(now) and (_is_file_identity(was) or _is_old_file_identity(was)):
        name = now["path"]
        if _is_file_identity(was):
            what = (f"size {was['size']:,} -> {now['size']:,} bytes" if was["size"] != now["size"] else
                    f"the same size ({now['size']:,} bytes), other content (its first, middle or last MiB)")
            return f"{key} {name!r} changed since the checkpoint {checkpoint} was made: {what}. {fix}"
        old_path, old_size, _ = was
        if old_path != name:
            what = (f"the checkpoint was made by an earlier im2vec, which knew the file by its place, "
                    f"{old_path!r}, and its modification time; it is now given as {name!r}")
            fix = (f"Give it at {old_path!r} (move it back) to finish the run, or remove the checkpoint {checkpoint} "
                   f"(and its .npy files) to start over.")
        elif old_size != now["size"]:
            what = f"size {old_size:,} -> {now['size']:,} bytes"
        else:
            what = ("modified since (the checkpoint was made by an earlier im2vec, which knew a file by its "
                    "modification time)")
        return f"{key} {name!r} changed since the checkpoint {checkpoint} was made: {what}. {fix}"
    if _is_store_identity(now) and (_is_store_identity(was) or _is_old_store_identity(was)):
        name = now["path"]
        if _is_old_store_identity(was):
            old_path, old_rows = was
            what = (f"{old_rows:,} -> {now['rows']:,} rows" if old_path == name else
                    f"the checkpoint was made by an earlier im2vec, which knew the store by its place, {old_path!r}")
        elif not (was["store_id"] and now["store_id"]) and was["rows"] == now["rows"] and was["path"] != name:
            # a store made before store ids (no store_id in its metadata.json) is known by its place alone
            what = (f"the store has no store_id (made by an earlier im2vec), so the checkpoint knows it only by its "
                    f"place, {was['path']!r}, and its {was['rows']:,} rows; it is now given as {name!r}")
            fix = (f"Give it at {was['path']!r} (move it back) to finish the run, or remove the checkpoint "
                   f"{checkpoint} (and its .npy files) to start over.")
        elif was["store_id"] != now["store_id"]:
            what = f"it is another store (store_id {was['store_id']} -> {now['store_id']})"
        else:
            what = f"{was['rows']:,} -> {now['rows']:,} rows"
        return f"{key} {name!r} changed since the checkpoint {checkpoint} was made: {what}. {fix}"
    if (now is None) != (was is None) and any(_is_file_identity(v) or _is_old_file_identity(v) for v in (was, now)):
        given = now if now is not None else was
        name = given["path"] if isinstance(given, dict) else given[0]
        what = f"this run is given {name!r}, the checkpoint's run none" if was is None else \
            f"the checkpoint's run was given {name!r}, this run none"
        return f"{checkpoint} is the checkpoint of a run with other inputs: {key}: {what}. {fix}"
    return None


def saved_bytes(model, *, checkpoint: bool = False, vectors: bool = True) -> dict[str, int]:
    """The bytes of the arrays that :meth:`Im2Vec.save` writes for `model`, by name: ``wv.vectors``
    (`checkpoint`: the words' rows only, as :class:`EpochCheckpoint` saves it; `vectors` False: none,
    e.g. a vectors file moved into place), ``wv.norms`` (one float per row; none in a checkpoint),
    ``syn1neg``, ``W``, with ``space_neighbours`` the neighbours' word lists (:func:`_neighbour_lists_bytes`)
    and, with a faiss ``space_neighbour_index``, the neighbours' index (its codes:
    :func:`_neighbour_index_bytes`). A lower bound of what the save needs on its disk (the pickle of
    the vocabulary and settings comes on top), except that the neighbours' two parts count every
    image of the vocabulary (:data:`PER_FITTED_IMAGE`): an image whose documents hold no word is
    not fitted."""
    sizes = {}
    wv = getattr(model, "wv", None)
    vec = getattr(wv, "vectors", None)
    if vectors and vec is not None and getattr(vec, "ndim", 0) == 2:
        rows = len(vec)
        if checkpoint:
            image_rows = getattr(model, "_vocab_image_rows", None)
            if image_rows is not None and len(image_rows) == rows:
                rows = int((image_rows < 0).sum())
        sizes["vectors"] = int(rows * vec.shape[1] * vec.itemsize)
    if not checkpoint and vec is not None and getattr(vec, "ndim", 0) == 2:
        sizes["norms"] = int(len(vec) * vec.itemsize)  # (np.linalg.norm's float type is the vectors')
    for name in ("syn1neg", "W"):
        arr = getattr(model, name, None)
        if arr is not None and hasattr(arr, "nbytes"):
            sizes[name] = int(arr.nbytes)
    lists = 0 if checkpoint else _neighbour_lists_bytes(model)
    if lists:
        sizes["neighbours' word lists"] = lists
    index = 0 if checkpoint else _neighbour_index_bytes(model)
    if index:
        sizes["neighbours' faiss index"] = index
    return sizes


#: The parts of :func:`saved_bytes` counted for every image of the vocabulary, though only the images whose
#: documents hold a word of it are fitted (unknown before training): :class:`SpaceCheck` warns on them and
#: refuses on the rest.
PER_FITTED_IMAGE = ("neighbours' word lists", "neighbours' faiss index")


def _neighbour_lists_bytes(model) -> int:
    """A lower bound of the neighbours' word lists a model trained with ``space_neighbours`` saves, known
    before training (the words each image is gathered with are not): for each image of the vocabulary
    its bag's offset (8 bytes), scale (4) and at least one word's position (4); the whitened vectors of
    the words the bags use, at least one row. 0 without ``space_neighbours``."""
    rows, wv = getattr(model, "_vocab_image_rows", None), getattr(model, "wv", None)
    if not getattr(model, "space_neighbours", 0) or rows is None or wv is None:
        return 0
    images = int((rows >= 0).sum())
    return images * (8 + 4 + 4) + (4 * int(wv.vector_size) if images else 0)


def _neighbour_index_bytes(model) -> int:
    """A lower bound of the neighbours' faiss index :meth:`Im2Vec.save` writes beside the model
    (``space_neighbours`` with a faiss ``space_neighbour_index``, ``FNAME.neighbours.faiss``): a code
    per image of the vocabulary, and an 8-byte id in an IVF list, and a refine stage's code (the
    quantisers' own bytes on top).
    0 without one, or without faiss (the training refuses it then)."""
    spec = getattr(model, "space_neighbour_index", "exact")
    features, rows = getattr(model, "features", None), getattr(model, "_vocab_image_rows", None)
    if not getattr(model, "space_neighbours", 0) or spec == "exact" or features is None or rows is None:
        return 0
    try:
        import faiss

        index = faiss.index_factory(features.dim, spec, faiss.METRIC_INNER_PRODUCT)  # (empty: no memory to speak of)
    except (ImportError, RuntimeError):
        return 0
    top = faiss.downcast_index(index)
    refine = 0
    if isinstance(top, faiss.IndexRefine):  # (",Refine(SQ8)", ",RFlat": a second copy of each image, in its codes)
        refine = _code_bytes(faiss, faiss.downcast_index(top.refine_index), features.dim)
        top = faiss.downcast_index(top.base_index)
    return int((rows >= 0).sum()) * (_code_bytes(faiss, top, features.dim) + refine)


def _code_bytes(faiss, index, dim: int) -> int:
    """The bytes a faiss index (empty, from its factory string) keeps per vector: an IVF index's code and
    8-byte id; HNSW's storage's (its links on top); another's code."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return int(ivf.code_size) + 8
    if isinstance(index, faiss.IndexHNSW) and index.storage is not None:
        return _code_bytes(faiss, faiss.downcast_index(index.storage), dim)
    try:
        return int(index.sa_code_size())
    except RuntimeError:
        return 4 * dim


#: The environment variable that turns :class:`SpaceCheck` off (``IM2VEC_NO_SPACE_CHECK=1``), for a file system
#: whose free space is reported wrong.
NO_SPACE_CHECK = "IM2VEC_NO_SPACE_CHECK"


class NotEnoughSpace(OSError):
    """The disk a model is to be saved on has less free space than the save needs (:class:`SpaceCheck`):
    ``folder``, ``free``, ``need`` (bytes) and ``parts`` (the arrays' bytes by name)."""

    def __init__(self, folder: str, free: int, need: int, parts: Mapping[str, int]) -> None:
        from gensim_im2vec.fileio import format_bytes_pair

        shown = format_bytes_pair(free, need)
        super().__init__(errno.ENOSPC, f"not enough space in {folder!r} to save the model: {shown[0]} free, "
                                       f"the save needs at least {shown[1]}", folder)
        self.folder, self.free, self.need, self.parts = folder, free, need, dict(parts)


class SpaceCheck(CallbackAny2Vec):
    """Refuse to train a model whose save at the end cannot fit on its disk: at ``on_train_begin``
    (the vocabulary built, the arrays allocated, no epoch trained), the free space of `output`'s folder
    is compared with what the save needs, :func:`saved_bytes` (a lower bound: the arrays, not the pickle
    of the vocabulary), and :class:`NotEnoughSpace` raised when it is less, rather than failing after
    hours of training.

    Parameters
    ----------
    output : str or os.PathLike
        Where the trained model will be saved.
    checkpoint : str or os.PathLike, optional
        The run's checkpoint (:class:`EpochCheckpoint`): when none is there yet, it needs its own
        room beside the model (it stays until the model is saved).
    vectors_moved : bool
        The model's vectors file becomes the saved vectors (moved on one file system: no bytes).

    ``need`` and ``checkpoint_need`` (bytes) are what it found, for the message of a save that fails
    all the same (e.g. another process filled the disk); ``free`` the free bytes it measured (None
    before a check, or when it could not tell). Its repr gives the output and the last check.
    """

    reads_image_rows = False  # Im2Vec.train: no need to write the images' rows at each epoch's end for it

    def __init__(self, output, *, checkpoint=None, vectors_moved: bool = False) -> None:
        self.output = os.path.abspath(os.fspath(output))
        self.checkpoint = os.fspath(checkpoint) if checkpoint is not None else None
        self.vectors_moved = bool(vectors_moved)
        self.need = self.checkpoint_need = None
        self.free = None  # the free bytes of the last check (None: not checked, or not told)
        self.short = None  # (free, need) when a compressed output may not fit (warned, not refused)

    def __repr__(self) -> str:
        """The output (and checkpoint), then what the last check measured; never raises (a repr in a
        notebook or a traceback must not fail on an attribute set by hand)."""
        from gensim_im2vec.fileio import format_bytes

        try:
            head = f"output={self.output!r}" + (f", checkpoint={self.checkpoint!r}" if self.checkpoint else "")
            if self.need is None:
                return f"SpaceCheck({head}, not checked yet)"
            told = (f"{format_bytes(self.free)} free" + (", may not fit" if self.short else "")
                    if self.free is not None else "free space not told")
            return f"SpaceCheck({head}, last check: needs {format_bytes(self.need)}, {told})"
        except Exception:  # noqa: BLE001 - a repr must not raise
            return f"<SpaceCheck at {id(self):#x}>"

    def on_train_begin(self, model) -> None:
        if self.need is None:  # (not checked before train() was called, as `im2vec train` does)
            self.check(model)

    def check(self, model) -> None:
        """Raise :class:`NotEnoughSpace` when the save of `model` (its vocabulary built) cannot fit: called
        before ``train()`` writes anything, or by ``on_train_begin``. Skipped when the free space cannot be
        told (the folder's disk_usage fails, or its file system reports no size, e.g. ramfs, some FUSE or
        network file systems), or when the environment variable :data:`NO_SPACE_CHECK` is set (to 1)."""
        import shutil

        from gensim_im2vec.fileio import compression_suffix, format_bytes

        parts = saved_bytes(model, vectors=not self.vectors_moved)
        self.need = need = sum(parts.values())
        self.free = self.short = None  # (this check's, not an earlier one's)
        if self.checkpoint is not None:
            self.checkpoint_need = sum(saved_bytes(model, checkpoint=True).values())
            if not os.path.exists(self.checkpoint):  # it stays beside the model until the model is saved
                parts["checkpoint"] = self.checkpoint_need
                need += self.checkpoint_need
        folder = os.path.dirname(self.output)
        if os.environ.get(NO_SPACE_CHECK, "") not in ("", "0"):
            logger.info("disk space: not checked (%s is set)", NO_SPACE_CHECK)
            return
        try:
            usage = shutil.disk_usage(folder)
        except OSError:  # (the save will say what is wrong with the folder)
            return
        if usage.total == 0:  # a file system that reports no size (ramfs, some FUSE / network ones): unknown
            logger.info("disk space: not checked (the file system of %s reports no size)", folder)
            return
        self.free = free = usage.free
        # (the neighbours' parts count every image of the vocabulary; an image whose documents hold none of its
        # words is not fitted: what they need is not known before training, so it is said, not refused)
        unsure = sum(parts.get(name, 0) for name in PER_FITTED_IMAGE)
        compressed = compression_suffix(self.output)
        # ("disk space": the model's own "space: ..." lines are of its joint space)
        logger.info("disk space: saving the model to %s needs at least %s%s, %s free in %s", self.output,
                    format_bytes(need - unsure), f" and up to {format_bytes(unsure)} more for the neighbours" if unsure
                    else "", format_bytes(free), folder)
        if free < need - unsure and not compressed:
            raise NotEnoughSpace(folder, free, need - unsure, {k: v for k, v in parts.items()
                                                               if k not in PER_FITTED_IMAGE})
        if free < need:
            self.short = (free, need)
            if compressed:  # compressed: the arrays may well fit; said, not refused
                logger.warning("disk space: %s is compressed; its arrays take %s uncompressed, %s free in %s: the "
                               "save may not fit", self.output, format_bytes(need), format_bytes(free), folder)
            else:
                logger.warning("disk space: saving the model to %s needs %s and up to %s more for the neighbours' "
                               "index and word lists (if every image of the vocabulary has words), %s free in %s: "
                               "the save may not fit", self.output, format_bytes(need - unsure),
                               format_bytes(unsure), format_bytes(free), folder)


def vectors_file_marker(path) -> str:
    """The marker of the vectors file `path`: ``.NAME.im2vec-run.json`` beside it."""
    path = os.path.abspath(os.fspath(path))
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.im2vec-run.json")


#: What a run writes into its vectors file's ``.npy`` header (in the padding NumPy leaves after the header's
#: dict, as a comment NumPy's parser skips) before a random token of its own.
RUN_TOKEN_PREFIX = b"# im2vec-run "


def _header_with_token(header: bytes, token: str) -> bytes | None:
    """`header` (a whole ``.npy`` header, ending in a newline) with ``# im2vec-run TOKEN`` written into its
    padding, the same length; None when the padding has no room."""
    body = header[:-1].rstrip(b" ")
    at = body.find(RUN_TOKEN_PREFIX)
    if at >= 0:  # (a token of before: replaced)
        body = body[:at].rstrip(b" ")
    body += b" " + RUN_TOKEN_PREFIX + token.encode("ascii")
    if len(body) + 1 > len(header):
        return None
    return body + b" " * (len(header) - 1 - len(body)) + b"\n"


def _npy_header(f) -> tuple[bytes, tuple, object]:
    """The whole header of the ``.npy`` file open as `f` (its bytes), its shape and its dtype."""
    import numpy as np

    f.seek(0)
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    size = f.tell()
    f.seek(0)
    return f.read(size), tuple(shape), dtype


def write_run_token(file, token: str) -> bool:
    """Write ``# im2vec-run TOKEN`` into the padding of the ``.npy`` header of `file` (NumPy reads the file as
    before; the same length); False, nothing written, when the padding has no room."""
    with open(file, "r+b") as f:
        header, _, _ = _npy_header(f)
        marked = _header_with_token(header, token)
        if marked is None:
            return False
        if marked != header:
            os.pwrite(f.fileno(), marked, 0)
    return True


def has_run_token(file, token: str) -> bool:
    """Whether the ``.npy`` header of `file` holds the run token `token` (:func:`write_run_token`)."""
    try:
        with open(file, "rb") as f:
            header, _, _ = _npy_header(f)
    except (OSError, ValueError):
        return False
    return isinstance(token, str) and bool(token) and RUN_TOKEN_PREFIX + token.encode("ascii", "replace") in header


def clear_run_token(file) -> None:
    """Take the run token out of the ``.npy`` header of `file` (a run's vectors file become a saved model's:
    no checkpoint knows it as its run's any more); nothing when it has none."""
    with open(file, "r+b") as f:
        header, _, _ = _npy_header(f)
        at = header.find(RUN_TOKEN_PREFIX)
        if at < 0:
            return
        body = header[:at].rstrip(b" ")
        os.pwrite(f.fileno(), body + b" " * (len(header) - 1 - len(body)) + b"\n", 0)


def mark_vectors_file(path, file, shape, *, output, resumable: bool, token: str | None = None,
                      made_from: dict | None = None) -> None:
    """Record (atomically, in :func:`vectors_file_marker`) that this process made the vectors file
    `path`, now named `file` (its temporary name before it has its name): a random token written into
    the file's ``.npy`` header (in its padding: NumPy reads the file as before), its device and inode,
    its shape, the run's pid, output and ``--resumable``; written before the file has its name, so a
    file a killed run left is always known by the marker. A file whose header has no room for the
    token gets a marker without one, which :func:`vectors_file_made_by` never matches (the file is
    then refused, never removed). `token`: the one the model wrote there (its own, which its checkpoints
    record), written again; a new one when None. `made_from`: for a file a resume made, what the checkpoint
    it resumed was (recorded as it is: ``im2vec train`` gives its device, inode, size and digest), so that a
    resume of that same checkpoint, not written since, knows the file as made from it."""
    import secrets

    from gensim_im2vec.fileio import atomic_write_json

    token = token or secrets.token_hex(16)
    marked = write_run_token(file, token)
    st = os.stat(file)
    atomic_write_json(vectors_file_marker(path), {
        "pid": os.getpid(), "dev": int(st.st_dev), "ino": int(st.st_ino), "shape": [int(n) for n in shape],
        "token": token if marked else None, "output": os.path.abspath(os.fspath(output)),
        "resumable": bool(resumable), **({"made_from": made_from} if made_from is not None else {})})


def vectors_file_made_by(path, *, copies: bool = False) -> dict | None:
    """The marker's record of the run that made the vectors file at `path`, when the marker describes
    the very file there: its device, inode, a float32 ``.npy`` header of the recorded shape AND the
    run's random token in that header (an inode number reused for another file, e.g. a copy put in the
    place of a removed vectors file, has no such token); None otherwise (the file is then not known to
    be a run's, and is never removed). `copies`: also a copy of such a file, with its marker copied
    beside it (a run's folder copied, or moved to another disk): the token alone, whatever the inode."""
    import numpy as np

    try:
        with open(vectors_file_marker(path), encoding="utf-8") as f:
            record = json.load(f)
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if not copies and (record.get("dev"), record.get("ino")) != (st.st_dev, st.st_ino):
        return None
    token = record.get("token")
    if not isinstance(token, str) or not token:
        return None
    try:
        with open(path, "rb") as f:
            header, shape, dtype = _npy_header(f)
    except (OSError, ValueError):
        return None
    if dtype != np.float32 or list(shape) != record.get("shape"):
        return None
    if RUN_TOKEN_PREFIX + token.encode("ascii", "replace") not in header:
        return None
    return record


def remove_vectors_file_marker(path, *, pid: int | None = None) -> None:
    """Remove the marker of the vectors file `path` (only one written by process `pid`, when given)."""
    marker = vectors_file_marker(path)
    if not os.path.lexists(marker):
        return
    if pid is not None:
        try:
            with open(marker, encoding="utf-8") as f:
                if json.load(f).get("pid") != pid:
                    return
        except (OSError, ValueError, AttributeError):
            return
    try:
        os.remove(marker)
    except FileNotFoundError:
        pass
    except OSError as e:
        logger.warning("could not remove %s (the record of which run made %s): %s", vectors_file_marker(path),
                       path, e)


def remove_checkpoint(path) -> None:
    """Remove the checkpoint's main file, then its companion ``.npy`` files (the main file is the
    commit marker: without it the arrays are never read)."""
    path = os.fspath(path)
    if os.path.exists(path):
        os.remove(path)
    for companion in glob.glob(glob.escape(path) + ".*.npy"):
        os.remove(companion)
