"""The CLI as a new user meets it when a run is interrupted or an argument points at the wrong file:
Ctrl-C ends with exit status 130 and one line saying what was kept; a rerun continues; an input
that cannot be read, or an output inside an input folder, is named before any work; a damaged
step record of the demo makes that step run again (issue: CLI resume audit)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from gensim_im2vec import Im2Vec

    d = tmp_path_factory.mktemp("resume_audit")
    keys = [f"img:{i}" for i in range(6)]
    store = FeatureStore.from_arrays(d / "store", keys, np.random.default_rng(0).random((6, 8), np.float32) + 0.1)
    docs = [[k, "cat", "dog"] for k in keys] * 3
    (d / "docs.txt").write_text("".join(" ".join(doc) + "\n" for doc in docs))
    Im2Vec(docs, image_features=store, vector_size=4, min_count=1, epochs=1, workers=1).save(str(d / "m.model"))
    (d / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    return d


def _default_sigint() -> None:
    # a test run started in the background of a script (`pytest &`) has SIGINT ignored, and a child
    # inherits that: Python then installs no KeyboardInterrupt handler and the child trains on forever
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gensim_im2vec.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
                            **kwargs)


def _said(result) -> str:
    return " ".join(result.output.split())


# --- Ctrl-C: exit 130 and one line, not "Aborted!" and exit 1 ---


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_during_training_exits_130_with_one_line_and_writes_nothing(tmp_path, sig, status):
    """Ctrl-C exits 130; SIGTERM (a scheduler's preemption) the same way with 143: it killed the
    process at once (status -15), with no message and no clean-up of temporary files."""
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=5, n_images=2000, n_features=16, seed=2)
    keys = list(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    (tmp_path / "docs.txt").write_text("".join(" ".join(d) + "\n" for d in data.docs))
    from gensim.models import Word2Vec

    Word2Vec([["an", "earlier", "model"]] * 3, vector_size=2, min_count=1, workers=1).save(str(tmp_path / "m.model"))
    earlier = (tmp_path / "m.model").read_bytes()
    # -v: the log says when training has started; it could not end before the signal (10^6 epochs)
    proc = _cli("-v", "train", "docs.txt", "-f", "store", "-o", "m.model", "--epochs", "1000000", "--min-count", "1",
                "--workers", "1", cwd=tmp_path)
    err = []
    for line in proc.stderr:
        err.append(line)
        if "Im2Vec training:" in line:
            break
    proc.send_signal(sig)
    out, rest = proc.communicate(timeout=120)
    err = "".join(err) + rest
    # was: "Aborted!" and exit status 1, which a script cannot tell from an error
    assert proc.returncode == status, (proc.returncode, err[-2000:])
    assert err.rstrip().splitlines()[-1] == (
        "Interrupted: `im2vec train` stopped before it finished; no output is left half-written. Run the same "
        "command again to redo it. Add --resumable to keep the epochs it finishes (in OUTPUT.checkpoint) should it "
        "stop again.")
    assert "Traceback" not in err and "Aborted!" not in err and out == ""
    assert (tmp_path / "m.model").read_bytes() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.txt", "m.model", "store"]  # no temporary file


@pytest.mark.parametrize("patch,args,message", [
    ("gensim_im2vec.features:extract", ["extract", "{d}", "-o", "{d}/never"],
     "`im2vec extract` stopped; the work it finished is kept. Run the same command again to continue where it "
     "stopped."),
    ("gensim_im2vec.features:extract", ["extract", "{d}", "-o", "{d}/never", "--mode", "overwrite"],
     "the store's earlier rows are gone once extraction began (--mode overwrite replaces them as it starts, not "
     "when it ends)"),
    ("gensim_im2vec.datasets:build_dataset", ["datasets", "build", "emoji", "{d}/ds"],
     "`im2vec datasets build` stopped; the work it finished is kept."),
    ("gensim_im2vec.pipeline:run_demo", ["demo", "--out", "{d}/demo"], "`im2vec demo` stopped; the work it "
                                                                        "finished is kept."),
    ("gensim_im2vec.evaluate:run_evaluation", ["evaluate", "{d}/m.model", "--test", "{d}/test.jsonl", "--features",
                                               "{d}/store"], "`im2vec evaluate` stopped before it finished"),
    ("gensim_im2vec.query:query_loop", ["query", "{d}/m.model"], "Interrupted: `im2vec query` stopped."),
])
def test_ctrl_c_in_any_command_says_what_was_kept(files, monkeypatch, patch, args, message):
    import importlib

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    module, _, name = patch.partition(":")
    monkeypatch.setattr(importlib.import_module(module), name, interrupted)
    result = CliRunner().invoke(main, [a.format(d=files) for a in args])
    assert result.exit_code == 130 and isinstance(result.exception, SystemExit), result.output
    assert message in _said(result) and "Aborted!" not in result.output, result.output


# --- Ctrl-C once the output is written and announced: no failure ---


def test_ctrl_c_after_report_said_it_wrote_the_report_is_no_failure(files, tmp_path):
    """Ctrl-C just after `im2vec report` printed its index.html ended in exit status 130 and "stopped before it
    finished; ... Run the same command again to redo it" (still in the command), or a moment later, in the
    interpreter's clean-up of scikit-learn and matplotlib, in a death by SIGINT: a script took a report that was
    written and announced for a failed run."""
    proc = _cli("report", "m.model", "-o", str(tmp_path / "rep"), "--test", "test.jsonl", "--features", "store",
                cwd=files)
    line = proc.stdout.readline()  # the report is written and said
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert line.startswith(f"{tmp_path / 'rep' / 'index.html'} ("), (line, err[-2000:])
    assert proc.returncode == 0, (proc.returncode, err[-2000:])
    assert "Interrupted" not in err and "Traceback" not in err, err[-2000:]
    assert (tmp_path / "rep" / "index.html").is_file()


@pytest.mark.parametrize("args,said", [
    (["report", "{d}/m.model", "-o", "{t}/rep", "--test", "{d}/test.jsonl", "--features", "{d}/store"], "index.html ("),
    (["train", "{d}/docs.txt", "-f", "{d}/store", "-o", "{t}/m.model", "--epochs", "1", "--min-count", "1",
      "--workers", "1", "--resumable"], "words)"),
    (["split", "{d}/docs.txt", "-o", "{t}/split", "--group-by", "document", "-f", "{d}/store"], "{t}/split: "),
])
def test_an_interruption_as_a_command_says_its_output_is_written_is_no_failure(files, tmp_path, monkeypatch, args,
                                                                                said):
    """An interruption that reaches the command as it prints that its output is written (here: the print
    itself raises it) ended in exit status 130 and "stopped before it finished"; the output is whole."""
    import click

    real = click.echo

    def echo(message=None, *a, **k):
        if said.format(t=tmp_path) in str(message):
            raise KeyboardInterrupt
        return real(message, *a, **k)

    monkeypatch.setattr(click, "echo", echo)
    result = CliRunner().invoke(main, [a.format(d=files, t=tmp_path) for a in args])
    assert result.exit_code == 0 and "Interrupted" not in result.output, result.output
    assert (tmp_path / args[args.index("-o") + 1].rsplit("/", 1)[1]).exists()


def test_a_program_that_calls_the_command_line_keeps_its_ctrl_c():
    """A finished command ignores Ctrl-C to its end only as its own process: a program that calls
    ``main(..., standalone_mode=False)`` and goes on keeps its own handler."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    main(["datasets", "list"], standalone_mode=False)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_program_whose_command_is_interrupted_keeps_its_child_handler_and_excepthooks(monkeypatch, tmp_path):
    """An interrupted command set SIGCHLD to its default and wrapped ``sys.excepthook`` and
    ``threading.excepthook`` (what its own process needs as it ends: no report of its decode workers after the
    Interrupted line) also in a program that called it and goes on (a notebook; this test run, where every later
    test ran without torch's SIGCHLD handler and under the wrappers, depending on the tests before it)."""
    import threading

    def handler(signum, frame):
        pass

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGCHLD, handler)
    try:
        before = signal.getsignal(signal.SIGCHLD), sys.excepthook, threading.excepthook
        monkeypatch.setattr("gensim_im2vec.datasets.build_dataset", interrupted)
        result = CliRunner().invoke(main, ["datasets", "build", "emoji", str(tmp_path / "never")])
        assert result.exit_code == 130 and "Interrupted: `im2vec datasets build` stopped" in result.output
        assert (signal.getsignal(signal.SIGCHLD), sys.excepthook, threading.excepthook) == before
    finally:
        signal.signal(signal.SIGCHLD, previous)


@pytest.mark.parametrize("call", ["main(['datasets', 'list'])", "main(args=['datasets', 'list'])"])
def test_a_program_that_catches_the_command_line_s_exit_keeps_its_ctrl_c(call):
    """A program that gives the command line its arguments and catches its ``SystemExit`` (a notebook cell:
    IPython catches it, and the kernel's interrupt button is a SIGINT) goes on after it: it ignored SIGINT and
    SIGTERM from then on, for the rest of its life, as only the console script (``main()``, ``sys.argv``'s
    arguments) should. In a process of its own, so that this one's handlers are never at stake."""
    code = f"""
import json, signal
from gensim_im2vec.cli import main
try:
    {call}
except SystemExit as e:
    code = e.code
print(json.dumps([code, signal.getsignal(signal.SIGINT) is signal.default_int_handler,
                  signal.getsignal(signal.SIGTERM) == signal.SIG_DFL]))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=_default_sigint)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines()[-1] == "[0, true, true]", res.stdout[-2000:]


def test_ctrl_c_during_index_check_says_the_index_is_written(files, tmp_path, monkeypatch):
    """`im2vec index --check N` measures the saved index's recall after it is written: a Ctrl-C there (which
    still stops it, exit status 130) said "stopped before it finished; no output is left half-written. Run the
    same command again to redo it" of an index that is written whole."""
    from gensim_im2vec.index import ModalityIndexer

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ModalityIndexer, "recall", interrupted)
    result = CliRunner().invoke(main, ["index", str(files / "m.model"), "-o", str(tmp_path / "m.ann"),
                                       "--backend", "annoy", "--check", "5"])
    assert result.exit_code == 130, result.output
    assert f"`im2vec index` stopped after it wrote {tmp_path / 'm.ann'} whole" in _said(result), result.output
    assert "redo it" not in result.output and (tmp_path / "m.ann").exists()


@pytest.mark.parametrize("patch,args,error,said", [
    ("gensim_im2vec.features:extract", ["extract", "{d}", "-o", "{d}/never"], OSError("66560 requested and 32704 written"),
     ["No space left on device writing {d}/never (", "`im2vec extract` stopped; the work it finished is kept"]),
    ("gensim_im2vec.datasets:build_dataset", ["datasets", "build", "emoji", "{d}/ds"],
     OSError(errno.ENOSPC, "No space left on device"),
     ["No space left on device writing {d}/ds (", "`im2vec datasets build` stopped; the work it finished is kept"]),
    ("gensim_im2vec.datasets:make_split", ["datasets", "split", "{d}"], OSError(errno.ENOSPC, "No space left on device"),
     ["No space left on device writing into {d} (", "free there)"]),  # a folder: the free space of its own disk
    ("gensim_im2vec.cli:_write_documents", ["normalize", "{d}/docs.txt", "-o", "{d}/out.txt"],
     OSError(errno.ENOSPC, "No space left on device"),
     ["No space left on device writing {d}/out.txt (", "no output is left half-written"]),
])
def test_a_full_disk_names_the_output_and_what_was_kept(files, monkeypatch, patch, args, error, said):
    """A full disk said "Error: [Errno 28] No space left on device", or NumPy's "66560 requested and
    32704 written" (extract), naming no file and not what was kept."""
    import importlib

    def full(*a, **k):
        raise error

    module, _, name = patch.partition(":")
    monkeypatch.setattr(importlib.import_module(module), name, full)
    result = CliRunner().invoke(main, [a.format(d=files) for a in args])
    assert result.exit_code == 1, result.output
    for part in said:
        assert part.format(d=files) in _said(result), result.output
    assert "Free some space on that disk first" in _said(result)


@pytest.mark.parametrize("args,name", [
    (["normalize", "{d}/docs.txt", "-o", "{d}/out2.txt", "--report", "{d}/rep.json"], "rep.json"),
    (["evaluate", "{d}/m.model", "--test", "{d}/test.jsonl", "--features", "{d}/store", "--baselines", "none",
      "--no-word-similarity", "--json", "{d}/ev.json"], "ev.json"),
])
def test_a_full_disk_at_a_side_file_names_that_file(files, monkeypatch, args, name):
    """``normalize --report`` and ``evaluate --json`` wrote their JSON outside the commands' error
    handling: a full disk there ended in a traceback; it names that file now, not the main output."""
    import gensim_im2vec.fileio as fileio

    real = fileio.atomic_write_json

    def full(path, *a, **k):
        if os.path.basename(path) == name:
            raise fileio.no_space_error(OSError(errno.ENOSPC, "No space left on device"), path)
        return real(path, *a, **k)

    monkeypatch.setattr(fileio, "atomic_write_json", full)
    monkeypatch.setattr("gensim_im2vec.evaluate.atomic_write_json", full, raising=False)
    result = CliRunner().invoke(main, [a.format(d=files) for a in args])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"No space left on device writing {files}/{name} (" in _said(result), result.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_extract_continues_where_it_stopped(tmp_path, sig):
    pytest.importorskip("torchvision")
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i in range(400):
        Image.new("RGB", (16, 16), (i % 256, (7 * i) % 256, 40)).save(tmp_path / "imgs" / f"{i:03d}.png")
    # shards of 20 images: each commit is fsynced, slow on a busy disk; 20 shards leave time to interrupt
    args = ["extract", "imgs", "-o", "store", "--weights", "none", "--arch", "mobilenet_v3_small", "--device", "cpu",
            "--num-workers", "0", "--batch-size", "1", "--shard-size", "20", "--dtype", "float32", "--no-progress"]
    proc = _cli(*args, cwd=tmp_path)
    shards = tmp_path / "store" / "shards"
    while proc.poll() is None and not (shards.is_dir() and any(shards.glob("shard-*.json"))):
        time.sleep(0.01)  # until a shard is committed
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err[-2000:]
        assert err.rstrip().splitlines()[-1].startswith("Interrupted: `im2vec extract` stopped; the work it finished "
                                                        "is kept. Run the same command again")
    again = _cli(*args, cwd=tmp_path)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-2000:]
    done = int(out.split(" already stored")[0].rsplit(", ", 1)[1])
    assert done >= 20, out  # the committed shards were kept, not redone
    store = FeatureStore.open(tmp_path / "store")
    assert sorted(store.keys) == [f"img:{i:03d}" for i in range(400)]


def test_sigterm_to_extract_with_decode_workers_ends_in_one_line(tmp_path):
    """SIGTERM (a scheduler's preemption) to ``extract --num-workers 2`` printed the Interrupted line
    and then a traceback from torch's DataLoader ("worker (pid N) is killed by signal: Terminated")
    as the process exited."""
    pytest.importorskip("torchvision")
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i in range(400):
        Image.new("RGB", (16, 16), (i % 256, (7 * i) % 256, 40)).save(tmp_path / "imgs" / f"{i:03d}.png")
    proc = _cli("extract", "imgs", "-o", "store", "--weights", "none", "--arch", "mobilenet_v3_small", "--device",
                "cpu", "--num-workers", "2", "--batch-size", "1", "--shard-size", "20", "--dtype", "float32",
                "--no-progress", cwd=tmp_path)
    shards = tmp_path / "store" / "shards"
    while proc.poll() is None and not (shards.is_dir() and any(shards.glob("shard-*.json"))):
        time.sleep(0.01)  # until the workers run and a shard is committed
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and err.rstrip().splitlines()[-1].startswith("Interrupted: `im2vec extract`")


# --- inputs that cannot be read: one line, not a traceback ---


@pytest.mark.parametrize("args,message", [
    (["train", "sock", "-f", "{d}/store", "-o", "x.model"],
     "Error: DOCUMENTS sock: cannot read it (No such device or address); check that it is a readable file"),
    (["query", "{d}/m.model", "--zero-shot-words", "sock"],
     "Error: --zero-shot-words sock: cannot read it (No such device or address)"),
])
def test_an_input_that_cannot_be_read_is_named(files, tmp_path, monkeypatch, args, message):
    # a socket: a path that exists and is no folder, which open() refuses even for root (where
    # chmod 000 would not); it used to end in a traceback
    monkeypatch.chdir(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind("sock")
        result = CliRunner().invoke(main, [a.format(d=files) for a in args])
    finally:
        sock.close()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert message in _said(result), result.output
    assert not os.path.exists("x.model")


# --- an output inside an input folder ---


@pytest.mark.parametrize("args,option,what,target", [
    (["train", "{d}/docs.txt", "-f", "{d}/store", "-o", "{d}/store/metadata.json", "--min-count", "1"],
     "'-o' / '--output'", "the -f / --features store", "store"),
    (["evaluate", "{d}/m.model", "--test", "{d}/test.jsonl", "--features", "{d}/store", "--json", "{d}/store/keys.txt"],
     "'--json'", "the --features input", "store"),
    (["normalize", "{d}/folder", "-o", "{d}/folder/cat.txt"], "'-o' / '--output'", "the SOURCE", "folder"),
])
def test_an_output_that_would_replace_a_file_of_an_input_folder_is_refused(files, tmp_path, args, option, what,
                                                                            target):
    # `im2vec train DOCS -f STORE -o STORE/metadata.json` used to replace the store's commit record
    # with the model (the features, hours of extraction, unreadable after it)
    import shutil

    d = tmp_path
    shutil.copytree(files / "store", d / "store")
    (d / "folder").mkdir()
    (d / "folder" / "cat.png").write_bytes(b"")
    (d / "folder" / "cat.txt").write_text("my caption of the cat\n")
    for name in ("docs.txt", "m.model", "m.model.W.npy", "test.jsonl"):
        if (files / name).exists():
            shutil.copy(files / name, d / name)
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, [a.format(d=d) for a in args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    out = args[-1] if args[-1].startswith("{d}") else args[args.index("-o") + 1]
    assert (f"Invalid value for {option}: '{out.format(d=d)}' is a file in {what} '{d / target}'; writing it would "
            f"destroy that file. Choose a path outside '{d / target}'.") in _said(result), result.output
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


def test_a_new_file_in_a_feature_store_folder_is_still_allowed(files, tmp_path):
    import shutil

    shutil.copytree(files / "store", tmp_path / "store")
    result = CliRunner().invoke(main, ["train", str(files / "docs.txt"), "-f", str(tmp_path / "store"), "-o",
                                       str(tmp_path / "store" / "new.model"), "--min-count", "1", "--epochs", "1",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output


# --- messages in the command line's terms ---


def test_extract_into_an_existing_store_names_the_cli_option(files, tmp_path):
    pytest.importorskip("torchvision")
    import shutil

    from PIL import Image

    shutil.copytree(files / "store", tmp_path / "store")
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "imgs" / "red.png")
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "imgs"), "-o", str(tmp_path / "store"), "--mode",
                                       "create", "--weights", "none", "--arch", "resnet18", "--num-workers", "0",
                                       "--device", "cpu", "--no-progress"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    said = _said(result)
    # was: "pass mode='extend' ... or mode='overwrite'", the Python API's spelling
    assert "already exists; pass --mode extend to continue or append to it, or --mode overwrite to replace it" \
        in said, said
    assert "mode='" not in said


def test_library_messages_in_cli_terms():
    from gensim_im2vec.cli import _in_cli_terms

    assert _in_cli_terms("feature store 'x' already exists; pass mode='extend' or 'overwrite'.") == \
        "feature store 'x' already exists; pass --mode extend or --mode overwrite."
    assert _in_cli_terms("or pass mode='overwrite' to replace it; image_mode='x' stays") == \
        "or pass --mode overwrite to replace it; image_mode='x' stays"


# --- the demo's step records ---


@pytest.mark.parametrize("damage", [b'{"key": "ab', b"[1, 2]", b"", b"\xff\xfe"])
def test_a_damaged_step_record_reruns_its_step(tmp_path, damage, caplog):
    # a step record cut short (a copy, a sync, a full disk) used to stop every later run of the
    # demo with "Error: Unterminated string ..." or an AttributeError traceback, naming no file
    from gensim_im2vec.pipeline import Steps

    steps = Steps(tmp_path / "out", echo=lambda line: None)
    assert steps.run("one", {"a": 1}, [], lambda: 1) == 1
    record = tmp_path / "out" / ".steps" / "one.json"
    record.write_bytes(damage)
    lines = []
    with caplog.at_level("WARNING", logger="gensim_im2vec.pipeline"):
        assert Steps(tmp_path / "out", lines.append).run("one", {"a": 1}, [], lambda: 2) == 2  # ran again
    assert lines[0] == "[one] running ..."
    assert f"step record {record} is damaged" in caplog.text and "running its step again" in caplog.text
    assert Steps(tmp_path / "out", lines.append).run("one", {"a": 1}, [], lambda: 3) == 2  # its new record


def test_datasets_split_names_a_folder_in_the_way_of_split_json(tmp_path):
    (tmp_path / "split.json").mkdir()
    result = CliRunner().invoke(main, ["datasets", "split", str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    # was: "... is a folder; give a file name", which DIRECTORY cannot
    assert (f"Invalid value for 'DIRECTORY': '{tmp_path / 'split.json'}' is a folder, and the split is written to "
            f"that name; move or rename it, then run again.") in _said(result), result.output
    assert (tmp_path / "split.json").is_dir()


def test_an_interruption_quiets_the_resource_sharer_threads_reset_and_nothing_else(monkeypatch, capsys):
    """CI once printed, after the Interrupted line of a SIGTERM to ``extract --num-workers 2``, a traceback
    of multiprocessing's resource-sharer thread (ConnectionResetError: a decode worker gone mid-handshake).
    From the interruption on that thread's OSError is silent; other threads' errors are printed."""
    import threading

    from gensim_im2vec import cli

    def raised_in(filename: str, exc: BaseException):
        code = compile("def serve(e):\n    raise e\n", filename, "exec")
        space: dict = {}
        exec(code, space)
        try:
            space["serve"](exc)
        except BaseException as e:  # noqa: BLE001 (a traceback to hand to the hook)
            return threading.ExceptHookArgs([type(e), e, e.__traceback__, threading.current_thread()])

    import sys

    printed = []
    monkeypatch.setattr(threading, "excepthook", lambda args: printed.append(args.exc_type))
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: printed.append(kind))
    cli._quiet_resource_sharer()
    sharer = "/usr/lib/python3.11/multiprocessing/resource_sharer.py"
    reset = raised_in(sharer, ConnectionResetError(104, "Connection reset by peer"))
    threading.excepthook(reset)
    sys.excepthook(reset.exc_type, reset.exc_value, reset.exc_traceback)  # (how the sharer's loop reports it)
    assert printed == []
    threading.excepthook(raised_in(sharer, ValueError("bug")))
    other = raised_in("/work/other.py", ConnectionResetError(104, "reset"))
    sys.excepthook(other.exc_type, other.exc_value, other.exc_traceback)
    assert printed == [ValueError, ConnectionResetError]


_SHARER_SCRIPT = """
import sys
from multiprocessing import resource_sharer

if sys.argv[1] == "worker":
    from gensim_im2vec import decode

    decode._worker_init(0)


def send(conn, pid):  # the hand-over, failing as when the process taking it has stopped
    raise {error}


sharer = resource_sharer._resource_sharer
conn = sharer.get_connection(sharer.register(send, lambda: None))
try:
    conn.recv()
except EOFError:
    pass
sharer.stop(timeout=30)  # (served after the failed hand-over, so its error has been reported)
print("done")
"""


@pytest.mark.parametrize("role,error,printed", [
    ("plain", "BrokenPipeError(32, 'Broken pipe')", True),  # what a worker printed before
    ("worker", "BrokenPipeError(32, 'Broken pipe')", False),
    ("worker", "ValueError('a bug')", True),  # only the sharer's OSError is quiet
])
def test_a_decode_worker_quiets_its_resource_sharer_thread(tmp_path, role, error, printed):
    """CI printed, after the Interrupted line of a SIGTERM to ``extract --num-workers 2``, a decode
    worker's traceback: its resource-sharer thread was handing a batch's memory to the main process,
    which had stopped reading (BrokenPipeError). A worker now quiets that thread's OSError from its
    start (``decode._worker_init``); any other error of the thread is still printed."""
    pytest.importorskip("torch")
    script = tmp_path / "sharer.py"
    script.write_text(_SHARER_SCRIPT.format(error=error))
    proc = subprocess.run([sys.executable, str(script), role], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]
    assert ("Traceback" in proc.stderr) is printed, proc.stderr[-2000:]
    if printed:
        assert error.split("(")[0] in proc.stderr


@pytest.mark.parametrize("filename,silenced", [
    ("/usr/lib/python3.12/multiprocessing/resource_sharer.py", True),
    ("/work/app/my_resource_sharer.py", False),  # another module whose name only ends the same
    ("/work/gensim_im2vec/_resource_sharer.py", False),  # (the hook's own module)
])
def test_only_multiprocessings_resource_sharer_is_quieted(filename, silenced):
    """The hook silences an OSError raised through multiprocessing's resource_sharer.py and nothing
    else; it matched any file whose name ends in "resource_sharer.py", its own
    gensim_im2vec/_resource_sharer.py and a user's my_resource_sharer.py among them."""
    from gensim_im2vec._resource_sharer import _sharer_error

    try:
        exec(compile("raise BrokenPipeError(32, 'Broken pipe')", filename, "exec"))
    except OSError as e:
        assert _sharer_error(e, e.__traceback__) is silenced
