"""`im2vec index` on a full disk: one ``Error:`` line naming the file that did not fit, the free space left on its
disk and what is kept, as every other command says it, and the earlier index at that path still loads.

It ended in a traceback with faiss (a RuntimeError with the C++ message "write error in .../.m.model.ann.words.faiss
.tmp-...: 4051 != 3200000 (No space left on device)"), and said Annoy's "Error: Unable to write: No space left on
device (28)" naming no file. Worse, faiss's own writer says a full disk at its last flush (``fclose``) only on stderr
("file ... close error") and returns: the truncated part file was renamed into place under a new manifest.

No disk is filled: each backend's write fails as it does on a full disk (faiss writes through a Python file, whose
``write`` or ``close`` raises ``OSError(ENOSPC)``; Annoy's ``save`` raises its ``OSError`` without errno), after
writing part of the file.
"""

from __future__ import annotations

import builtins
import errno
import os
import types

import pytest
from click.testing import CliRunner

from gensim_im2vec import index as _index
from gensim_im2vec.cli import main
from gensim_im2vec.index import ModalityIndexer

BACKENDS = [b for b in _index.BACKENDS if _index._installed(b)]
pytestmark = pytest.mark.skipif(not BACKENDS, reason="needs faiss-cpu or annoy")
needs = {b: pytest.mark.skipif(b not in BACKENDS, reason=f"needs {b}") for b in _index.BACKENDS}


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as Python's write says it: no file named


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=120, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=8, sg=1, min_count=1, sample=0, epochs=1,
                   workers=1, seed=1)
    path = tmp_path_factory.mktemp("model") / "m.model"
    model.save(str(path))
    return path


@pytest.fixture
def earlier(tmp_path, model_file):
    """A model with an earlier index beside it; returns a function that builds it with a backend."""
    import shutil

    from gensim_im2vec import Im2Vec

    for p in model_file.parent.iterdir():
        shutil.copy(p, tmp_path / p.name)
    model = tmp_path / "m.model"

    def build(backend):
        knob = ["--ef-search", "40"] if backend == "faiss" else ["--num-trees", "3"]
        res = CliRunner().invoke(main, ["index", str(model), "--backend", backend, *knob, "--check", "0"])
        assert res.exit_code == 0, res.output
        files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("m.model.ann")}
        return Im2Vec.load(str(model)), files

    return build


def _rebuild(tmp_path, backend):
    """`im2vec index` again, with other settings than the earlier index's."""
    knob = ["--ef-search", "90"] if backend == "faiss" else ["--num-trees", "5"]
    return CliRunner().invoke(main, ["index", str(tmp_path / "m.model"), "--backend", backend, *knob, "--check", "0"])


def _assert_one_error_line(res, file, tmp_path):
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output and len(lines) == 1 and lines[0].startswith("Error: "), res.output
    said = lines[0]
    assert f"No space left on device writing {file} (" in said, said
    assert f" free in {tmp_path})" in said or f" free in '{tmp_path}')" in said, said  # the free space there
    assert "`im2vec index` stopped before it finished; no output is left half-written" in said, said
    assert "Free some space on that disk first" in said, said
    assert ".tmp-" not in said, said  # the file written for, not its temporary name


def _assert_earlier_index_kept(tmp_path, model, files, backend):
    now = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(("m.model.ann", ".m.model"))}
    assert now == files  # every file as it was, no temporary file left
    again = ModalityIndexer.load(tmp_path / "m.model.ann", model)
    assert again.params["ef_search" if backend == "faiss" else "num_trees"] == (40 if backend == "faiss" else 3)
    assert again.words.most_similar(model.wv.get_vector(model.wv.index_to_key[0], norm=True), 3)


# --- faiss ---------------------------------------------------------------------------------------


@needs["faiss"]
def test_faiss_full_disk_while_writing(tmp_path, earlier, monkeypatch):
    """faiss passes on the write's OSError (the real faiss.write_index, its writer's write failing part-way)."""
    import faiss

    model, files = earlier("faiss")
    real = faiss.PyCallbackIOWriter
    written = []

    def writer(write, *args):
        def full(data):
            if sum(written) > 100:
                raise _no_space()
            written.append(len(data))
            return write(data[:64])  # a part of it reaches the disk

        return real(full, *args)

    monkeypatch.setattr(faiss, "PyCallbackIOWriter", writer)
    res = _rebuild(tmp_path, "faiss")
    assert written, "faiss wrote through another writer"
    _assert_one_error_line(res, tmp_path / "m.model.ann.words.faiss", tmp_path)
    monkeypatch.undo()
    _assert_earlier_index_kept(tmp_path, model, files, "faiss")


class _FullAtClose:
    """A file whose writes are taken (buffered) but whose last flush, at close, finds the disk full: half of it
    reached the disk. faiss's own writer returned without an error here (it prints "file ... close error")."""

    def __init__(self, name, mode="r", *args, **kwargs):
        self._f = builtins.open(name, mode, *args, **kwargs)
        self._buffered = bytearray()

    def write(self, data):
        self._buffered += data
        return len(data)

    def close(self):
        self._f.write(self._buffered[: len(self._buffered) // 2])
        self._f.close()
        raise _no_space()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@needs["faiss"]
def test_faiss_full_disk_at_the_last_flush_is_not_left_as_a_whole_file(tmp_path, earlier, monkeypatch):
    model, files = earlier("faiss")
    def full_at_close(name, mode="r", *args, **kwargs):  # the module's open, for the part files' writes
        return (_FullAtClose if "w" in mode else builtins.open)(name, mode, *args, **kwargs)

    monkeypatch.setattr(_index, "open", full_at_close, raising=False)
    res = _rebuild(tmp_path, "faiss")
    _assert_one_error_line(res, tmp_path / "m.model.ann.words.faiss", tmp_path)
    monkeypatch.undo()
    _assert_earlier_index_kept(tmp_path, model, files, "faiss")


# --- annoy ---------------------------------------------------------------------------------------


@needs["annoy"]
@pytest.mark.parametrize("step", ["write", "close", "open"])
def test_annoy_full_disk(tmp_path, earlier, monkeypatch, step):
    """Annoy's save says a full disk as an OSError without errno: "Unable to write: No space left on device (28)"
    (annoylib's set_error_from_errno)."""
    import annoy

    model, files = earlier("annoy")

    class Full(annoy.AnnoyIndex):
        def save(self, fname, prefault=False):
            if step != "open":
                with builtins.open(fname, "wb") as f:
                    f.write(b"\0" * 100)  # a part of it reached the disk
            raise OSError(f"Unable to {step}: {os.strerror(errno.ENOSPC)} ({errno.ENOSPC})")

    monkeypatch.setattr(annoy, "AnnoyIndex", Full)
    res = _rebuild(tmp_path, "annoy")
    _assert_one_error_line(res, tmp_path / "m.model.ann.words.annoy", tmp_path)
    monkeypatch.undo()
    _assert_earlier_index_kept(tmp_path, model, files, "annoy")


@needs["annoy"]
def test_annoy_full_disk_at_the_labels_names_the_labels_file(tmp_path, earlier, monkeypatch):
    """gensim's AnnoyIndexer.save writes the labels (``.dict``) through smart_open: Python's OSError, no file named."""
    import gensim.similarities.annoy as gensim_annoy

    model, files = earlier("annoy")

    def full_open(name, mode="r", *args, **kwargs):
        f = builtins.open(name, mode, *args, **kwargs)
        f.write = lambda data: (_ for _ in ()).throw(_no_space())
        return f

    monkeypatch.setattr(gensim_annoy, "utils", types.SimpleNamespace(open=full_open))
    res = _rebuild(tmp_path, "annoy")
    _assert_one_error_line(res, tmp_path / "m.model.ann.words.annoy.dict", tmp_path)
    monkeypatch.undo()
    _assert_earlier_index_kept(tmp_path, model, files, "annoy")


def test_annoy_errors_of_another_kind_keep_their_errno_and_name_the_part(monkeypatch):
    """Not every Annoy error is a full disk: its errno is kept (and the file named), never read as one."""
    from gensim_im2vec.fileio import is_no_space

    e = _index._named_at(OSError(errno.EACCES, "Permission denied", "/d/.x.ann.words.annoy.tmp-1-2"),
                         "/d/.x.ann.words.annoy.tmp-1-2", "/d/x.ann.words.annoy")
    assert isinstance(e, PermissionError) and e.filename == "/d/x.ann.words.annoy" and not is_no_space(e)
    other = OSError("something else")
    assert _index._named_at(other, "/d/.t", "/d/t") is other
    assert _index._ANNOY_ERROR.fullmatch("Unable to write: No space left on device (28)")[2] == "28"
    assert not _index._ANNOY_ERROR.fullmatch("You can't save an index that hasn't been built")


# --- the manifest, and the library's own error ---------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_disk_at_the_manifest_leaves_the_earlier_parts_too(tmp_path, earlier, monkeypatch, backend):
    """The manifest is written before any new part replaces an earlier one: the earlier manifest never lists new
    parts (another build's, of another model when the model at that path was retrained)."""
    import pathlib

    model, files = earlier(backend)
    real = pathlib.Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.startswith(".m.model.ann.tmp-"):
            real(self, "{", encoding="utf-8")
            raise _no_space()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    res = _rebuild(tmp_path, backend)
    _assert_one_error_line(res, tmp_path / "m.model.ann", tmp_path)
    monkeypatch.undo()
    _assert_earlier_index_kept(tmp_path, model, files, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_raises_enospc_naming_the_part_and_the_free_space(tmp_path, model_file, monkeypatch, backend):
    """ModalityIndexer.save itself: an OSError(ENOSPC) whose filename is the part file (not its temporary name)."""
    from gensim_im2vec import Im2Vec

    if backend == "faiss":
        import faiss

        def write_index(index, writer):  # as faiss passes on its writer's OSError
            raise _no_space()

        monkeypatch.setattr(faiss, "write_index", write_index)
    else:
        import annoy

        class Full(annoy.AnnoyIndex):
            def save(self, fname, prefault=False):
                raise OSError("Unable to write: No space left on device (28)")

        monkeypatch.setattr(annoy, "AnnoyIndex", Full)
    idx = ModalityIndexer(Im2Vec.load(str(model_file)), backend=backend)
    with pytest.raises(OSError) as e:
        idx.save(tmp_path / "m.model.ann")
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / f"m.model.ann.words.{backend}")
    assert f"No space left on device writing {tmp_path}/m.model.ann.words.{backend} (" in e.value.strerror
    assert not list(tmp_path.iterdir())  # nothing left: no manifest, no part, no temporary file


# --- the free space, said one way: fileio.no_space_error, fileio.free_space (cli._free_space) ------------------------


def test_the_free_space_is_measured_where_the_output_is(tmp_path, monkeypatch):
    """A folder output is measured itself (it may be a mount of another disk than its parent's), a file in its
    folder; cli's folder wording ("writing into FOLDER (... free there)") is no_space_error's own now."""
    import shutil

    from gensim_im2vec import cli
    from gensim_im2vec.fileio import no_space_error

    mount = tmp_path / "mount"
    mount.mkdir()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: usage._replace(free=5 << 30 if os.fspath(p) == str(mount) else 1024))
    e = no_space_error(_no_space(), mount)
    assert e.errno == errno.ENOSPC and e.filename == str(mount)
    assert e.strerror == f"No space left on device writing into {mount} (5.0 GiB free there)"
    assert no_space_error(_no_space(), mount / "f.json").strerror == \
        f"No space left on device writing {mount}/f.json (5.0 GiB free in {mount})"
    quota = no_space_error(OSError(errno.EDQUOT, "Disk quota exceeded"), mount)
    assert quota.strerror.startswith(f"Disk quota exceeded writing into {mount} (")
    assert cli._free_space(str(mount / "m.model")) == f"5.0 GiB free in {str(mount)!r}"  # train quotes its paths
    assert cli._free_space(str(tmp_path / "m.model")) == f"1.0 KiB free in {str(tmp_path)!r}"


def test_a_free_space_that_cannot_be_measured_is_said_unknown(tmp_path, monkeypatch):
    """It said "(in /d)" (no_space_error) and "no space in '/d'" (train's message) when the disk could not be
    measured."""
    import shutil

    from gensim_im2vec import cli
    from gensim_im2vec.fileio import no_space_error

    def unknown(path):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(shutil, "disk_usage", unknown)
    assert no_space_error(_no_space(), tmp_path / "f").strerror == \
        f"No space left on device writing {tmp_path}/f (free space in {tmp_path} unknown)"
    assert no_space_error(_no_space(), tmp_path).strerror == \
        f"No space left on device writing into {tmp_path} (its free space unknown)"
    assert cli._free_space(str(tmp_path / "m.model")) == f"free space in {str(tmp_path)!r} unknown"
