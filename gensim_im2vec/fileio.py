"""Atomic file writes: every file the package writes appears whole or not at all.

A crash (or Ctrl-C) in the middle of a write leaves the previous file, never half of a new one:
the bytes go to a hidden temporary file beside the target, are flushed (and, with
``durable=True``, fsynced together with the directory entry), and only then renamed onto the
target with :func:`os.replace`, which is atomic on POSIX and Windows.

>>> import json, os, tempfile
>>> from pathlib import Path
>>> from gensim_im2vec.fileio import atomic_write, atomic_write_bytes, atomic_write_json
>>> d = Path(tempfile.mkdtemp())
>>> atomic_write_json(d / "stats.json", {"images": 3})
>>> json.loads((d / "stats.json").read_text())
{'images': 3}
>>> atomic_write(d / "rows.txt", lambda f: f.write(b"a\\nb\\n"))
>>> (d / "rows.txt").read_bytes()
b'a\\nb\\n'
>>> atomic_write_bytes(d / "rows.txt", b"c\\n"); (d / "rows.txt").read_text()
'c\\n'
>>> sorted(p.name for p in d.iterdir())  # no temporary file left behind
['rows.txt', 'stats.json']

gensim's ``save`` writes a main file and companion ``.npy`` files beside it (arrays saved
separately, memory-mappable at load); :func:`atomic_save` writes them all under a temporary name
and renames the companions first and the main file last:

>>> import numpy as np
>>> from gensim.models import KeyedVectors
>>> from gensim_im2vec.fileio import atomic_save
>>> kv = KeyedVectors(3)
>>> kv.add_vectors(["cat", "dog"], np.eye(2, 3, dtype=np.float32))
>>> [os.path.basename(f) for f in atomic_save(kv, d / "words.kv", sep_limit=0)]  # sep_limit=0: every array in its own .npy
['words.kv.vectors.npy', 'words.kv']
>>> sorted(p.name for p in d.iterdir() if p.name.startswith("words"))
['words.kv', 'words.kv.vectors.npy']
>>> KeyedVectors.load(str(d / "words.kv"), mmap="r")["dog"]
memmap([0., 1., 0.], dtype=float32)

A command that writes several files into a folder first checks that it may
(:func:`check_output_folder`): a new or empty folder, or one of its own earlier outputs (recognised
by `owned`, e.g. its manifest); any other folder is refused before anything is written, naming a
file in it (one the command would replace, where there is one):

>>> from gensim_im2vec.fileio import check_output_folder
>>> check_output_folder(d / "new", command="the export", owned=lambda p: False)  # missing: fine
>>> check_output_folder(d, command="the export", owned=lambda p: False)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
FileExistsError: the folder '...' is not empty and is not an earlier output of the export: it holds 'rows.txt', ...
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import glob
import gzip
import json
import logging
import os
import pickle
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

__all__ = ["atomic_copy", "atomic_path", "atomic_save", "atomic_write", "atomic_write_bytes",
           "atomic_write_json", "check_output_folder", "format_bytes", "format_bytes_pair", "free_space", "fsync_dir",
           "is_no_space", "lock_contents", "lock_file_current", "lock_target", "no_space_error", "OutputBusyError",
           "output_lock", "pid_alive", "process_start", "read_lock", "remove_unwritten_lock", "temp_name"]


def temp_name(path: str | os.PathLike) -> Path:
    """The hidden temporary name beside `path` that a write goes to first (unique per process
    and thread, so concurrent writers never share one).

    The temporary files a killed process left for `path` (their process is gone) are removed
    first: a write killed by SIGKILL cannot clean up after itself, and at YFCC100M's size one such
    leftover is gigabytes."""
    path = Path(path)
    remove_stale_temps(path)
    return path.with_name(f".{path.name}.tmp-{_writer_tag()}-{threading.get_ident()}")


def _writer_tag() -> str:
    """``PID-TICKS`` (the start ticks of :func:`process_start` in base 36, e.g. ``"25498-2n9c1"``) that
    :func:`remove_stale_temps` tells this process by, also from a later process given the same pid; the
    pid alone where the start cannot be read (not Linux), as the names of earlier versions."""
    start = process_start()
    if start is None:
        return str(os.getpid())
    return f"{os.getpid()}-{_base36(int(start.rpartition('/')[2]))}"


def _base36(n: int) -> str:
    """`n` (>= 0) in base 36, lower case: ``_base36(71)`` is ``"1z"``."""
    digits = ""
    while True:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
        if not n:
            return digits


def _temp_writer(rest: str) -> tuple[str, str | None]:
    """``(pid, start)`` of the process that wrote a temporary file, from its name after ``.tmp-``:
    ``PID-TICKS-TID[SUFFIX]`` (:func:`temp_name`; `start` as :func:`process_start` gives it, in this
    boot) or ``PID-TID[SUFFIX]`` (an earlier version's name, or no start to read: `start` None, the
    pid alone decides). The pid is returned as written (:func:`pid_alive` takes a non-pid as alive)."""
    fields = rest.split(".", 1)[0].split("-")
    if len(fields) != 3:
        return fields[0], None
    mine = process_start()
    try:
        ticks = int(fields[1], 36)
    except ValueError:
        return fields[0], None
    return fields[0], (f"{mine.rpartition('/')[0]}/{ticks}" if mine else None)


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the files left under :func:`temp_name`'s names for `path` by processes that no
    longer run (never a live writer's, never a folder); returns what was removed. A name that
    records its writer's start (``.NAME.tmp-PID-TICKS-TID``) is removed also where the pid now
    belongs to another process (the kernel reused the pid of a writer killed by SIGKILL); an
    earlier version's name (``.NAME.tmp-PID-TID``) goes by the pid alone, as before."""
    path = Path(path)
    prefix = f".{path.name}.tmp-"
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        if pid_alive(*_temp_writer(name[len(prefix):])):  # also: this process's, or not a pid
            continue
        left = path.parent / name
        try:
            if left.is_file() and not left.is_symlink():
                left.unlink()
                removed.append(left)
        except OSError:  # another process removed it first, or it is not ours to remove
            continue
    if removed:
        logger.info("removed %i temporary file(s) of %s left by a killed process, e.g. %s", len(removed), path,
                    removed[0].name)
    return removed


class OutputBusyError(OSError):
    """Another process writes the same output now (:func:`output_lock`): its ``pid`` and, when it
    gave one, its ``holder`` (``"im2vec report"``), as its lock file names them."""

    pid: str = "unknown"
    holder: str | None = None


def lock_target(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """The output `path` as :func:`output_lock` names its lock: its parent folder resolved
    (``os.path.realpath``: symlinks, ``..`` after a symlink as the OS takes it, a relative path), its
    own name kept. Two spellings of one output (``out/m.model``, ``/abs/out/m.model``,
    ``link-to-out/m.model``, ``link/../out/m.model``) give one path, so they take one lock. A symlink
    that is the output itself is followed for a `folder` (its writer writes into the folder it points
    to), not for a file (the atomic writes replace the link). A trailing separator is dropped
    (``split/`` is the folder ``split``).

    >>> import tempfile
    >>> d = Path(os.path.realpath(tempfile.mkdtemp()))
    >>> (d / "out").mkdir(); (d / "link").symlink_to(d / "out")
    >>> lock_target(d / "link" / "m.model") == lock_target(d / "out" / ".." / "out" / "m.model")
    True
    >>> lock_target(d / "link" / "m.model") == d / "out" / "m.model"
    True
    >>> lock_target(d / "link", folder=True) == d / "out", lock_target(d / "link") == d / "link"
    (True, True)
    """
    path = os.fspath(path)
    stripped = path.rstrip(os.sep) or path  # ("/" stays "/")
    head, name = os.path.split(stripped)
    if folder or name in ("", os.curdir, os.pardir):  # (a folder named through itself: "out/..", ".")
        return Path(os.path.realpath(stripped))
    return Path(os.path.realpath(head or os.curdir)) / name


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, busy: Callable[[str], str], *, folder: bool = False,
                holder: str | None = None) -> Iterator[None]:
    """Hold the single-writer lock of the output `path` (a file or a folder) while the block runs:
    ``flock`` on a hidden ``.NAME.lock`` beside it (in its real parent folder, :func:`lock_target`:
    every spelling of one output takes the same lock), holding this process's pid (and `holder`, and when it
    started: :func:`lock_contents`), removed at the end. Another process that holds it is refused at once with ``OutputBusyError(busy(its pid))``.

    The OS releases the lock when its holder ends (also by kill -9): the file such a holder leaves
    is taken over by the next writer. Being hidden, it is never taken for a file of the user's by
    the commands' output checks (:func:`check_output_folder` skips hidden names). Without ``fcntl``
    (not POSIX) nothing is locked; where the folder takes no lock (read-only, a mount without
    ``flock``) the ``OSError`` is raised, and no lock file is left.

    `folder`: the output is a folder that its writer creates with its parents (``im2vec split -o
    a/b``, `a` missing): the missing parent folders are made now, so that the lock is held from the
    start, and those that are left empty at the end (the writer failed before it made the output)
    are removed again; a symlink that is the output is followed. Without it a missing parent folder
    raises ``FileNotFoundError``.

    `holder`: who this is (``"im2vec export"``), written on the lock file's second line, so that
    another command refused on the same output can name it (``OutputBusyError.holder``): two
    commands may write one path (``report -o out`` while ``export -o out`` runs).

    A filesystem root (``-o /``, ``-o .`` in ``/``) has no folder beside it to hold its lock: the
    block runs unlocked (the commands refuse such a folder as not theirs before they write).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "m.model"
    >>> with output_lock(target, lambda pid: f"busy ({pid})"):
    ...     sorted(p.name for p in target.parent.iterdir())
    ['.m.model.lock']
    >>> sorted(p.name for p in target.parent.iterdir())
    []
    >>> with output_lock(target.parent / "a" / "b", lambda pid: f"busy ({pid})", folder=True):
    ...     sorted(p.name for p in (target.parent / "a").iterdir())  # (b itself is the writer's to make)
    ['.b.lock']
    >>> (target.parent / "a").exists()  # made for the lock, left empty: removed
    False
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: one writer is the user's duty
        yield
        return
    path = lock_target(path, folder=folder)
    if not path.name:  # the root: no folder to hold its lock (Path("/").with_name fails)
        yield
        return
    lock = path.with_name(f".{path.name}.lock")
    made = _make_parents(path.parent) if folder else []
    try:
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid, by, _ = read_lock(os.pread(fd, 512, 0))
                os.close(fd)
                err = OutputBusyError(busy(pid))
                err.pid, err.holder = pid, by
                raise err from None
            except OSError:  # no flock here (ENOLCK, EOPNOTSUPP: some NFS, FUSE, SMB mounts): no lock file is left
                remove_unwritten_lock(lock, fd)
                os.close(fd)
                raise
            if lock_file_current(lock, fd):
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, lock_contents(holder), 0)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock)  # (while held: a writer waiting on this file sees it gone and takes a new one)
            os.close(fd)
    finally:
        for folder in reversed(made):  # the deepest first; one that holds anything stays, and so do those above it
            try:
                folder.rmdir()
            except OSError:
                break


def lock_file_current(lock: str | os.PathLike, fd: int) -> bool:
    """Whether the lock file `lock`, just locked as the open descriptor `fd`, is still the file of
    that name. A holder that removes its lock file as it lets go (:func:`output_lock`, a
    :class:`~gensim_im2vec.store.FeatureStore` folder's lock with ``remove``) may have removed it
    between this one's open and its ``flock``: then the file now under that name is the one to lock
    (else two writers would each hold a lock, on two files)."""
    try:
        return os.stat(lock).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def remove_unwritten_lock(lock: str | os.PathLike, fd: int) -> None:
    """Remove the lock file `lock` (open as `fd`) if no holder ever wrote its pid into it: the one
    this process just made where no lock can be taken (a mount without ``flock``), not to be left in
    the user's folder. Nothing is raised."""
    with contextlib.suppress(OSError):
        if not os.fstat(fd).st_size:
            os.unlink(lock)


def _make_parents(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; return those this call made, the outermost first (one
    that another process made meanwhile is not among them: it is not this one's to remove)."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    made: list[Path] = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError:  # (no permission): nothing of this call's is left
            for done in reversed(made):
                with contextlib.suppress(OSError):
                    done.rmdir()
            raise
        made.append(folder)
    return made


def pid_alive(pid: int | str, start: str | None = None) -> bool:
    """Whether process `pid` (an int, or a lock file's text) runs; True when that cannot be told
    (not a pid, another user's process) or it is this process. A zombie (a killed process its
    parent has not reaped yet, Linux) does not run: it writes nothing more, and its files are
    the next writer's to remove.

    `start`: when the process that wrote `pid` started (:func:`process_start`, as its lock file or
    record holds it). A process of that pid that started at another time (or in another boot) is
    another process, which the kernel gave the pid of the first, killed one (pid reuse, common on a
    long-running machine and in a container): that one does not run. None (an older file without
    it), or where a start cannot be read (not Linux): the pid alone decides, as before.

    >>> import os
    >>> pid_alive(os.getpid(), process_start())
    True
    >>> pid_alive(os.getpid(), "another-boot/1") if process_start() else False  # (Linux: a reused pid)
    False
    """
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return True
    if pid <= 0:
        return True
    if pid == os.getpid():  # (a file of an earlier process that had this pid: not this one's)
        return start is None or process_start() in (None, start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        pass
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()  # (the name in parentheses may hold spaces)
    except OSError:  # not Linux, or gone meanwhile
        return True
    if fields[:1] == ["Z"]:
        return False
    now = _start_of(fields)
    return start is None or now is None or now == start


def process_start(pid: int | None = None) -> str | None:
    """When process `pid` (None: this process) started, as ``"BOOT_ID/TICKS"``: the kernel's boot id
    (``/proc/sys/kernel/random/boot_id``) and the start time in clock ticks after boot
    (``/proc/PID/stat``, field 22). With the pid it names one process: a later process the kernel
    gives the same pid has another start, and so has any process after a reboot. None where it
    cannot be read (not Linux, the process gone).

    This process's start is read once (every atomic write names its temporary file by it,
    :func:`temp_name`) and kept by pid: a forked child, a process of its own, reads its own.

    >>> start = process_start()
    >>> start is None or (start == process_start() and start.count("/") == 1)
    True
    """
    if pid is not None:
        return _read_start(pid)
    me = os.getpid()
    start = _OWN_START.get(me)
    if start is None:
        start = _read_start(me)
        if start is not None:  # (one that could not be read is read again next time)
            _OWN_START.clear()  # (in a forked child: its parent's)
            _OWN_START[me] = start
    return start


#: {pid: this process's :func:`process_start`}: one entry, of the process that reads it (a forked
#: child starts with none: a grandchild given its grandparent's old pid must not take its start).
_OWN_START: dict[int, str] = {}
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_OWN_START.clear)


def _read_start(pid: int | str) -> str | None:
    """:func:`process_start` of process `pid`, read from ``/proc/PID/stat``."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as f:
            return _start_of(f.read().rpartition(")")[2].split())
    except (OSError, ValueError):
        return None


def _start_of(fields: list[str]) -> str | None:
    """:func:`process_start` from the fields of ``/proc/PID/stat`` after the name (the state first)."""
    global _BOOT_ID
    if _BOOT_ID is None:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
                _BOOT_ID = f.read().strip() or ""
        except OSError:
            _BOOT_ID = ""
    if not _BOOT_ID or len(fields) < 20 or not fields[19].isdigit():
        return None
    return f"{_BOOT_ID}/{fields[19]}"


_BOOT_ID: str | None = None  # (read once: it changes only with a reboot)


def lock_contents(holder: str | None = None) -> bytes:
    """What a single-writer lock file holds for this process: its pid; the `holder` (``"im2vec
    split"``) on the second line; then ``start=`` and when this process started (:func:`process_start`,
    where it can be read), by which a reader tells this process from a later one given the same pid.
    :func:`read_lock` reads it back, and the files of earlier versions (the pid, the holder).

    >>> read_lock(lock_contents("im2vec split"))[:2] == (str(os.getpid()), "im2vec split")
    True
    """
    start = process_start()
    if start is None:
        return f"{os.getpid()}\n{holder}\n".encode() if holder else f"{os.getpid()}\n".encode()
    return f"{os.getpid()}\n{holder or ''}\nstart={start}\n".encode()


def read_lock(data: bytes | str) -> tuple[str, str | None, str | None]:
    """``(pid, holder, start)`` from a lock file's contents (:func:`lock_contents`): the pid as written
    (``"unknown"`` when empty), the holder or None, the holder's :func:`process_start` or None (a
    file of an earlier version: :func:`pid_alive` then goes by the pid alone).

    >>> read_lock(b"123\\nim2vec report\\nstart=b0/99\\n"), read_lock("123\\n")
    (('123', 'im2vec report', 'b0/99'), ('123', None, None))
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [line.strip() for line in text.split("\n")]
    start = next((line[len("start="):] for line in lines[1:] if line.startswith("start=")), None)
    holder = lines[1] if len(lines) > 1 and not lines[1].startswith("start=") else ""
    return lines[0] or "unknown", holder or None, start or None


def no_space_error(error: OSError, path: str | os.PathLike) -> OSError:
    """`error` itself, or for a full disk (ENOSPC, EDQUOT) while writing `path` (through a temporary
    name, or with no file named: a ``write`` says none) an OSError of the same errno that names
    `path` and the free space of its folder (``error.filename`` is `path`).

    >>> import errno
    >>> e = no_space_error(OSError(errno.ENOSPC, "No space left on device"), "/tmp/m.model")
    >>> e.errno == errno.ENOSPC, e.filename
    (True, '/tmp/m.model')
    >>> str(e)  # doctest: +ELLIPSIS
    "[Errno 28] No space left on device writing /tmp/m.model (... free in /tmp): '/tmp/m.model'"

    A folder output (a feature store, a data set) is measured itself, not its parent: it may be a mount of another
    disk.

    >>> str(no_space_error(OSError(errno.ENOSPC, "No space left on device"), "/tmp"))  # doctest: +ELLIPSIS
    "[Errno 28] No space left on device writing into /tmp (... free there): '/tmp'"
    """
    if not is_no_space(error):
        return error
    code = error.errno if error.errno is not None else errno.ENOSPC
    path = os.fspath(path)
    if os.path.isdir(path):
        free = _free_bytes(path)
        where = f"writing into {path} ({'its free space unknown' if free is None else format_bytes(free) + ' free there'})"
    else:
        where = f"writing {path} ({free_space(path)})"
    return OSError(code, f"{os.strerror(code)} {where}", path)


def free_space(path: str | os.PathLike, *, quote: bool = False) -> str:
    """The free space of the disk `path` is written on, for a message: ``"1.2 GiB free in /data"``, measured in the
    folder of `path` (in `path` itself when it is a folder), or ``"free space in /data unknown"``. `quote`: the
    folder as ``repr`` writes it (``'/data'``), for messages that quote their paths.

    >>> free_space("/tmp/m.model"), free_space("/tmp", quote=True)  # doctest: +ELLIPSIS
    ('... free in /tmp', "... free in '/tmp'")
    """
    path = os.fspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    name = repr(folder) if quote else folder
    free = _free_bytes(folder)
    return f"free space in {name} unknown" if free is None else f"{format_bytes(free)} free in {name}"


def _free_bytes(folder: str) -> int | None:
    """The bytes free on the disk of `folder`; None when that cannot be told (it is gone, not readable)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


#: How NumPy says a full disk while it writes an array (``ndarray.tofile``, as ``np.save`` of a large array):
#: an OSError without errno.
_NUMPY_NO_SPACE = re.compile(r"Not enough free space to write \d+ bytes after offset \d+|\d+ requested and \d+ written")


def is_no_space(error: BaseException) -> bool:
    """Whether `error` is a full disk (ENOSPC) or quota (EDQUOT), also as NumPy says it while it writes an array
    (an OSError without errno: "Not enough free space to write N bytes after offset M", "N requested and M
    written").

    >>> is_no_space(OSError(errno.ENOSPC, "No space left on device")), is_no_space(OSError("123 requested and 0 written"))
    (True, True)
    >>> is_no_space(OSError(errno.EACCES, "Permission denied")), is_no_space(OSError("requested and written"))
    (False, False)
    """
    if not isinstance(error, OSError):
        return False
    if error.errno is not None:
        return error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    return len(error.args) == 1 and isinstance(error.args[0], str) and bool(_NUMPY_NO_SPACE.fullmatch(error.args[0]))


def format_bytes(n: float, digits: int = 1) -> str:
    """`n` bytes for a person: ``"512 B"``, ``"1.5 KiB"``, ``"3.2 GiB"`` (`digits` decimals past bytes)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.{digits}f} {unit}"
        n /= 1024
    return f"{n:.{digits}f} TiB"  # pragma: no cover


def format_bytes_pair(a: float, b: float) -> tuple[str, str]:
    """`a` and `b` bytes for a person, with as many decimals as it takes for two different numbers not to read
    alike (exact bytes at worst).

    >>> format_bytes_pair(1_700_000, 1_690_000)
    ('1.62 MiB', '1.61 MiB')
    >>> format_bytes_pair(1_700_000, 1_700_001)
    ('1,700,000 B', '1,700,001 B')
    """
    if a == b:
        return format_bytes(a), format_bytes(b)
    for digits in (1, 2, 3):
        pair = format_bytes(a, digits), format_bytes(b, digits)
        if pair[0] != pair[1]:
            return pair
    return f"{a:,.0f} B", f"{b:,.0f} B"


def fsync_dir(directory: str | os.PathLike) -> None:
    """fsync a directory, so that a rename into it survives a power cut (a no-op where the
    platform cannot open directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write `path` through (by any writer that takes a file name, e.g.
    ``np.save`` or ``Image.save``); on success it is renamed onto `path`, on error removed.

    The temporary name keeps `path`'s suffix, for writers that choose the format by it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    tmp = tmp.with_name(tmp.name + path.suffix)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        no_space = no_space_error(e, path)
        if no_space is e:
            raise
        raise no_space from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, writer: Callable[[IO[bytes]], object], *, durable: bool = False) -> None:
    """Write `path` through ``writer(binary_file)``, all or nothing (see the module).

    Parameters
    ----------
    path : str or PathLike
        The target; its directory is created if missing.
    writer : callable
        Called once with the open temporary file (binary mode).
    durable : bool
        fsync the file and its directory before returning (for commit records and data a resume
        trusts); off for files that are cheap to redo.
    """
    with atomic_path(path, durable=durable) as tmp, open(tmp, "wb") as f:
        writer(f)
        f.flush()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> None:
    """Write `data` to `path`, all or nothing."""
    atomic_write(path, lambda f: f.write(data), durable=durable)


def atomic_write_json(path: str | os.PathLike, obj, *, durable: bool = False, indent: int = 1,
                      sort_keys: bool = False, default=None) -> None:
    """Write `obj` as UTF-8 JSON (one trailing newline) to `path`, all or nothing (`default`: as
    :func:`json.dumps`, for values JSON cannot hold, e.g. ``default=str``)."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent, sort_keys=sort_keys, default=default) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the bytes of `src` (following symlinks) to `dst`, all or nothing."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


#: Name endings by which gensim's ``save`` compresses what it writes.
COMPRESSED_SUFFIXES = (".gz", ".bz2")


def compression_suffix(path: str) -> str:
    """The ending of `path` by which gensim (and smart_open) compress or decompress it, or "".

    >>> compression_suffix("vectors.bin.gz"), compression_suffix("vectors.bin")
    ('.gz', '')
    """
    return next((s for s in COMPRESSED_SUFFIXES if path.endswith(s)), "")


def atomic_save(obj, fname: str | os.PathLike, *args, **kwargs) -> list[str]:
    """Save `obj` through gensim's ``obj.save(name, *args, **kwargs)``, all or nothing, companion
    files included.

    gensim writes the main file and one file per array saved separately (``fname + ".W.npy"``,
    ``".wv.vectors.npy"`` ...). All are written under :func:`temp_name`, then the companions are
    renamed onto their names and the main file last: it is the commit marker, so a save that fails
    or is interrupted before it leaves the previous main file, never one that points at half-written
    arrays. Whatever is left under the temporary name is removed. (The renames themselves are not
    one step: a crash between the companions' renames and the main file's leaves new arrays beside
    the previous main file.) A name ending in ``.gz`` or ``.bz2`` is compressed, as gensim does.

    Companion files of the earlier save at `fname` that this save does not write (an array now
    pickled in the main file, or no longer there) are removed once the new main file is in place:
    only the names that the earlier main file reads, never another file (a ``fname.v2`` model's
    arrays, a file of the user's).

    Parameters
    ----------
    obj : object with a ``save(fname, ...)`` method
        A gensim :class:`~gensim.utils.SaveLoad` (a model, ``KeyedVectors``). A subclass that
        overrides ``save`` to call this passes ``super()``, whose ``save`` is gensim's.
    fname : str or PathLike
        The main file; its directory must exist.
    *args, **kwargs
        Passed to ``obj.save`` (``separately``, ``sep_limit``, ``ignore``, ``pickle_protocol``).

    Returns
    -------
    list of str
        The files written: the companions, then the main file (absolute paths).
    """
    path = os.path.abspath(os.fspath(fname))
    # gensim compresses by the name it writes (".gz"/".bz2": the pickle, and ".npz" companions)
    tmp = str(temp_name(path)) + compression_suffix(path)
    try:
        obj.save(tmp, *args, **kwargs)
        written = sorted(glob.glob(glob.escape(tmp) + "?*"))
        new = {path + w[len(tmp):] for w in written}
        others = [p for p in glob.glob(glob.escape(path) + ".?*") if p.endswith(_COMPANION_SUFFIXES) and p not in new]
        stale = sorted(set(others) & _companions(path)) if others else []  # the earlier save's, this one has not
        for w in written:  # the companions first
            os.replace(w, path + w[len(tmp):])
        os.replace(tmp, path)  # the main file (the commit marker) last
        files = [path + w[len(tmp):] for w in written] + [path]
    except OSError as e:
        no_space = no_space_error(e, path)
        if no_space is e:
            raise
        raise no_space from e
    finally:
        for left in glob.glob(glob.escape(tmp) + "*"):
            os.unlink(left)
    for p in stale:  # no longer read by the main file now in place
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
        except OSError as e:
            logger.warning("could not remove %s, an array file of the earlier save of %s: %s", p, path, e)
    return files


#: Name endings of gensim's companion files: ``np.save`` (and a pickled sparse matrix's shell), ``np.savez_compressed``.
_COMPANION_SUFFIXES = (".npy", ".npz")


class _Stub:
    """Stands for any class or function in a pickle read by :func:`_companions`: nothing is imported or run."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Stub()

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], (dict, type(None))):
            state = state[0]  # (__dict__, slots)
        if isinstance(state, dict):
            self.__dict__.update((k, v) for k, v in state.items() if isinstance(k, str))

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


class _StubUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return _Stub


def _companions(path: str) -> set[str]:
    """The companion files that the gensim pickle at `path` reads (its objects' ``__numpys``, ``__scipys`` and
    ``__recursive_saveloads``, as gensim's ``_load_specials``); empty when it is missing or not such a pickle.

    The pickle is read without importing or running anything of it (every class is a :class:`_Stub`).
    """
    compressed = path.endswith(COMPRESSED_SUFFIXES)
    suffix = "npz" if compressed else "npy"
    opener = gzip.open if path.endswith(".gz") else bz2.open if path.endswith(".bz2") else open
    try:
        with opener(path, "rb") as f:
            root = _StubUnpickler(f).load()
    except Exception:  # noqa: BLE001 - another file, damaged, truncated: then nothing of it is known
        return set()
    names: set[str] = set()
    todo = [(root, path)]
    while todo:
        obj, fname = todo.pop()
        state = getattr(obj, "__dict__", None)
        if not isinstance(state, dict):
            continue
        for attrib in _names(state.get("__recursive_saveloads")):
            todo.append((state.get(attrib), f"{fname}.{attrib}"))
        names.update(f"{fname}.{a}.{suffix}" for a in _names(state.get("__numpys")))
        for a in _names(state.get("__scipys")):
            parts = ("sparse",) if compressed else ("data", "indptr", "indices")
            names.update([f"{fname}.{a}.{suffix}", *(f"{fname}.{a}.{p}.{suffix}" for p in parts)])
    return names


def _names(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _first_file(folder: Path, top: Path) -> str | None:
    """The first non-hidden file under `top` (sorted, depth first), relative to `folder`; None if none."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files = sorted(f for f in filenames if not f.startswith("."))
        if files:
            return Path(dirpath, files[0]).relative_to(folder).as_posix()
    return None


def _first_entry(folder: Path, writes: Sequence[str]) -> str:
    """The entry of `folder` to name in a refusal: the first of `writes` present (the first file in
    it, for a folder), else the folder's first non-hidden file, else its first non-hidden entry."""
    for name in writes:
        if os.path.lexists(folder / name):
            return (_first_file(folder, folder / name) if (folder / name).is_dir() else None) or name
    return _first_file(folder, folder) or min(e.name for e in folder.iterdir() if not e.name.startswith(".")) + "/"


def check_output_folder(path: str | os.PathLike, *, command: str, owned: Callable[[Path], bool],
                        marker: str = "", writes: Sequence[str] = ()) -> None:
    """Refuse to write into a folder the user made, before anything is written.

    Writing is allowed into a missing folder, an empty one (hidden entries such as a temporary
    file of an interrupted write or ``.DS_Store`` aside: no command writes a hidden name of the
    user's), or an earlier output of the same command, which ``owned(folder)`` recognises by that
    command's own marker (a manifest, a record). Any other folder may hold a file of the user's
    under a name the command writes, which would be replaced.

    Parameters
    ----------
    path : str or PathLike
        The output folder.
    command : str
        What writes, for the message (``"the projector export"``).
    owned : callable
        ``owned(folder) -> bool``: whether a non-empty folder is this command's earlier output.
    marker : str
        What `owned` looks for, for the message (``"projector_config.pbtxt"``).
    writes : sequence of str
        Names the command writes in the folder; the message names the first present (else the
        folder's first file).

    Raises
    ------
    FileExistsError
        The folder is not empty and not this command's output; the message names the folder, a
        file in it and the fix.
    """
    folder = Path(path)
    if not folder.is_dir() or not any(not e.name.startswith(".") for e in folder.iterdir()) or owned(folder):
        return
    first = _first_entry(folder, writes)
    why = f" (it has no {marker})" if marker else ""
    if first.split("/", 1)[0].rstrip("/") in writes:
        held = f"{first!r}, which {command} could replace"
    else:  # (a name it does not write: refused all the same, as the folder's other files are unknown to it)
        held = (f"{first!r}, and {command} writes only into a new or empty folder or an earlier output of its own, "
                f"never beside files of yours")
    raise FileExistsError(
        f"the folder {str(folder)!r} is not empty and is not an earlier output of {command}{why}: it holds "
        f"{held}. Choose a new or empty folder, or move {first!r} and your other files out of it."
    )
