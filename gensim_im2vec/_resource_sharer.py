"""Quieting multiprocessing's resource-sharer thread when the other side of a hand-over is gone.

torch's DataLoader workers hand each batch's shared memory to the main process as a file
descriptor. multiprocessing passes it through a "resource sharer": a thread in the process that
gives the descriptor, serving the process that takes it. When extraction is interrupted (Ctrl-C,
SIGTERM) one side can stop mid-handshake, and the thread on the other side prints a traceback
(``BrokenPipeError`` in a worker whose main process stopped reading, ``ConnectionResetError`` in
the main process whose worker was stopped) after the ``Interrupted:`` line. Those errors say
nothing the interruption did not; :func:`quiet_resource_sharer` silences them and only them.

What is silenced: an OSError raised through multiprocessing's ``resource_sharer.py``, nothing else

>>> def raised(error, filename):
...     try:
...         exec(compile(f"raise {error}", filename, "exec"))
...     except Exception as e:
...         return e, e.__traceback__
>>> _sharer_error(*raised("BrokenPipeError(32, 'Broken pipe')", "multiprocessing/resource_sharer.py"))
True
>>> _sharer_error(*raised("ValueError('a bug')", "multiprocessing/resource_sharer.py"))
False
>>> _sharer_error(*raised("BrokenPipeError(32, 'Broken pipe')", "my_script.py"))
False
>>> _sharer_error(*raised("BrokenPipeError(32, 'Broken pipe')", "app/my_resource_sharer.py"))
False
"""

from __future__ import annotations

import sys
import threading
import traceback
from pathlib import PurePath

__all__ = ["quiet_resource_sharer"]

_SHARER = ("multiprocessing", "resource_sharer.py")  # the file whose frames mark the sharer thread


def _sharer_error(value: BaseException | None, tb) -> bool:
    """Whether an error is an OSError raised through multiprocessing's resource_sharer.py."""
    frames = traceback.extract_tb(tb) if tb is not None else []
    # (the module's own folder and name: not any file whose name ends so, this one's among them)
    return isinstance(value, OSError) and any(PurePath(f.filename).parts[-2:] == _SHARER for f in frames)


def quiet_resource_sharer() -> None:
    """From now on, in this process, an OSError of the resource-sharer thread is not printed; any
    other error, of that thread or another, is printed as before. The sharer's loop catches its
    error and calls ``sys.excepthook``; a thread that dies of one goes to ``threading.excepthook``,
    so both are wrapped."""
    previous_thread, previous_sys = threading.excepthook, sys.excepthook

    def thread_hook(args) -> None:
        if not _sharer_error(args.exc_value, args.exc_traceback):
            previous_thread(args)

    def sys_hook(kind, value, tb) -> None:
        if not _sharer_error(value, tb):
            previous_sys(kind, value, tb)

    threading.excepthook, sys.excepthook = thread_hook, sys_hook
