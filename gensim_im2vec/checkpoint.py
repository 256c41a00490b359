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
the run's own ``vectors_file``, written over in place, when the run has one.

``im2vec train ... --resumable`` does this from the shell: the same command run again continues
from ``OUTPUT.checkpoint``. A checkpoint records what its run was given (``inputs``: the
command's documents, store and options); :func:`resume` refuses one made with other inputs,
naming what differs, rather than mixing two runs.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Mapping

from gensim.models.callbacks import CallbackAny2Vec

logger = logging.getLogger(__name__)

__all__ = ["EpochCheckpoint", "resume", "read_checkpoint", "remove_checkpoint"]

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


def read_checkpoint(path, **load_kwargs):
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


def resume(path, corpus_iterable: Iterable, *, inputs: Mapping | None = None, callbacks=(), **load_kwargs):
    """Continue the training saved at `path` by :class:`EpochCheckpoint`: load it, train the
    remaining epochs on `corpus_iterable` (the same documents), remove the checkpoint, and return
    the trained model (not saved: save it where the run's output goes).

    The remaining epochs take their part of the run's schedule, alpha falling from where the
    finished epochs left it to ``min_alpha``, so the run trains as many epochs at the same rates
    as without the interruption; ``model.epochs`` and ``model.alpha`` are the run's afterwards.
    The checkpoint goes on saving after each remaining epoch but the last. The images' rows of
    ``wv.vectors`` are not written on load (no pass over the features): training writes them
    all from ``W`` when it ends, or when it is interrupted, as any ``train()`` does.

    Raises
    ------
    FileNotFoundError
        No checkpoint at `path`.
    ValueError
        `inputs` given and different from the checkpoint's (the message names the first field
        that differs), or `path` is a model that is not a checkpoint.
    """
    from gensim_im2vec.model import _RESUMING

    # the words' rows go where training will write them (the run's vectors_file), and the images' rows
    # are left for training to write from W when it ends: no pass over the features on load
    token = _RESUMING.set(True)
    try:
        got = read_checkpoint(path, **load_kwargs)
    finally:
        _RESUMING.reset(token)
    if got is None:
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)!r}: nothing to resume; train from the start.")
    model, record = got
    if inputs is not None:
        check_inputs(path, record, inputs)
    epochs, done = record["epochs"], record["epochs_done"]
    alpha, min_alpha = record["alpha"], record["min_alpha"]
    start = alpha - (alpha - min_alpha) * done / epochs
    logger.info("resuming %s: epochs %i-%i of %i, alpha %.6f -> %.6f", path, done + 1, epochs, epochs, start,
                min_alpha)
    saver = EpochCheckpoint(path, epochs=epochs, done=done, inputs=record["inputs"])
    model._epochs_before = done  # the run's epochs so far (the analogy step's draws go on from them)
    model.train(corpus_iterable, total_examples=model.corpus_count, epochs=epochs - done, start_alpha=start,
                end_alpha=min_alpha, compute_loss=model.compute_loss, callbacks=[saver, *callbacks])
    model.epochs, model.alpha, model.min_alpha = epochs, alpha, min_alpha
    model.__dict__.pop(RECORD, None)
    remove_checkpoint(path)
    return model


def check_inputs(path, record: Mapping, inputs: Mapping) -> None:
    """Refuse a checkpoint whose run was given other `inputs`, naming the first that differs."""
    saved = record.get("inputs") or {}
    for key in sorted(set(saved) | set(inputs)):
        if saved.get(key) != inputs.get(key):
            raise ValueError(
                f"{os.fspath(path)} is the checkpoint of a run with other inputs: {key} was {saved.get(key)!r}, now "
                f"{inputs.get(key)!r}. Run the command that made it again to finish it, or remove the checkpoint "
                f"(and its .npy files) to start over.")


def remove_checkpoint(path) -> None:
    """Remove the checkpoint's main file, then its companion ``.npy`` files (the main file is the
    commit marker: without it the arrays are never read)."""
    path = os.fspath(path)
    if os.path.exists(path):
        os.remove(path)
    for companion in glob.glob(glob.escape(path) + ".*.npy"):
        os.remove(companion)
