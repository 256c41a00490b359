"""``Im2Vec(vectors_file=...)``: ``model.wv.vectors`` in a memory-mapped ``.npy`` file instead of
private memory (docs/scale.md §5.4), the same model bit for bit.

Every model here trains with ``workers=1`` and one seed, so the model without the option is the
reference: the file changes where the vectors live, never what they are.
"""

from __future__ import annotations

import errno
import gc
import os

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.models.keyedvectors import prep_vectors

from gensim_im2vec import Im2Vec
from gensim_im2vec.model import _gensim_stream
from gensim_im2vec.synthetic import make_corpus

KW = dict(vector_size=16, sg=1, min_count=1, epochs=3, workers=1, seed=5)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=4, n_images=240, n_features=32, n_text_sentences=200, seed=2)


def _split(data):
    """The corpus in two halves: the text and images 0-119; images 120-239, with tags the first
    half lacks (new words after the old images: their random start is further into gensim's stream)."""
    first = [d for d in data.docs if not d[0].startswith("img:") or int(d[0][4:]) < 120]
    second = [[*d, f"fresh{int(d[0][4:]) % 3}"] for d in data.docs if d[0].startswith("img:") and int(d[0][4:]) >= 120]
    return first, second


def _train(data, docs, **kw):
    model = Im2Vec(image_features=data.features, **KW, **kw)
    model.build_vocab(docs)
    model.train(docs, total_examples=model.corpus_count, epochs=model.epochs)
    return model


def _answers(model, keys):
    return [model.wv.most_similar(k, topn=5) for k in keys] + [model.most_similar_words(k, topn=3) for k in keys]


def _files(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ----------------------------------------------------------------------------- the same model


@pytest.mark.parametrize("dim", [7, 16])
def test_word_rows_start_where_gensim_starts_them(dim):
    """The words' random start in a new file is gensim's ``prep_vectors``'s, row for row, from any
    row on (odd and even offsets into its stream), without drawing the rows before."""
    full = prep_vectors((60, dim), seed=5)
    for lo, hi in ((0, 60), (13, 29), (1, 2), (59, 60)):
        block = _gensim_stream(5, lo * dim).random((hi - lo, dim), dtype=np.float32)
        block *= 2.0
        block -= 1.0
        block /= dim
        assert np.array_equal(block, full[lo:hi])


def test_same_vectors_and_answers_as_in_memory(tmp_path, data):
    path = tmp_path / "vectors.npy"
    plain = _train(data, data.docs)
    on_disk = _train(data, data.docs, vectors_file=path)
    vectors = on_disk.wv.vectors
    assert isinstance(vectors, np.memmap) and vectors.flags.writeable and vectors.filename == str(path)
    assert np.array_equal(vectors, plain.wv.vectors)  # bit for bit
    keys = ["img:0", "img:7", "class1", "class2_r1"]
    assert _answers(on_disk, keys) == _answers(plain, keys)
    # a plain .npy: another reader opens it read-only and finds the trained vectors (flushed by train())
    assert np.array_equal(np.load(path, mmap_mode="r"), plain.wv.vectors)
    assert _files(tmp_path) == ["vectors.npy"]  # no temporary file left


def test_train_flushes_the_file(tmp_path, data, monkeypatch):
    model = Im2Vec(image_features=data.features, vectors_file=tmp_path / "v.npy", **KW)
    model.build_vocab(data.docs)
    flushed = []
    real = np.memmap.flush
    monkeypatch.setattr(np.memmap, "flush", lambda self: (flushed.append(self.filename), real(self))[1])
    model.train(data.docs, total_examples=model.corpus_count, epochs=1)
    assert flushed == [str(tmp_path / "v.npy")]  # once, when train() returns


def test_image_rows_are_written_from_w_and_zero_before(tmp_path, data):
    model = Im2Vec(image_features=data.features, vectors_file=tmp_path / "v.npy", **KW)
    model.build_vocab(data.docs)
    images = np.flatnonzero(model.image_mask)
    assert not np.any(model.wv.vectors[images])  # untouched until trained: never a random start
    assert np.all(np.any(model.wv.vectors[~model.image_mask], axis=1))  # words: gensim's random start
    model.train(data.docs, total_examples=model.corpus_count, epochs=model.epochs)
    keys = model.image_keys
    feats = np.stack([data.features[k] for k in keys])
    stored = np.asarray(model.wv.vectors[[model.wv.key_to_index[k] for k in keys]])
    assert np.allclose(stored, model.project(feats), rtol=1e-5, atol=1e-6)


def test_vocabulary_update_grows_the_file_in_place_and_trains_the_same(tmp_path, data):
    path = tmp_path / "v.npy"
    first, second = _split(data)
    plain, on_disk = _train(data, first), _train(data, first, vectors_file=path)
    inode, rows = os.stat(path).st_ino, len(on_disk.wv)
    for model in (plain, on_disk):
        model.build_vocab(second, update=True)
    assert len(on_disk.wv) > rows and os.stat(path).st_ino == inode  # the same file, longer
    assert isinstance(on_disk.wv.vectors, np.memmap) and on_disk.wv.vectors.filename == str(path)
    assert np.load(path, mmap_mode="r").shape == on_disk.wv.vectors.shape  # its header says so
    assert np.array_equal(on_disk.wv.vectors, plain.wv.vectors)  # new images placed from W at once
    assert {"fresh0", "fresh1", "fresh2"} <= set(on_disk.word_keys)
    new = [k for k in on_disk.image_keys if int(k[4:]) >= 120]
    stored = np.asarray(on_disk.wv.vectors[[on_disk.wv.key_to_index[k] for k in new]])
    assert np.allclose(stored, on_disk.project(np.stack([data.features[k] for k in new])), rtol=1e-5, atol=1e-6)
    for model in (plain, on_disk):  # continued training: still in the file, still the same
        model.train(data.docs, total_examples=len(data.docs), epochs=2)
    assert on_disk.wv.vectors.filename == str(path) and os.stat(path).st_ino == inode
    assert np.array_equal(on_disk.wv.vectors, plain.wv.vectors)
    assert np.array_equal(np.load(path), plain.wv.vectors)


def test_two_stage_from_word2vec_trains_in_the_file(tmp_path, data):
    from gensim.models import Word2Vec

    text = [d for d in data.docs if not d[0].startswith("img:")]
    images = [d for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    kw = dict(image_features=data.features, sentences=images, epochs=2)
    plain = Im2Vec.from_word2vec(w2v, **kw)
    on_disk = Im2Vec.from_word2vec(w2v, vectors_file=tmp_path / "v.npy", **kw)
    assert on_disk.wv.vectors.filename == str(tmp_path / "v.npy")
    assert np.array_equal(on_disk.wv.vectors, plain.wv.vectors)


# ----------------------------------------------------------------------------- saving and loading


@pytest.mark.parametrize("sep_limit", [None, 0], ids=["pickled", "npy-companion"])
def test_save_and_load_answer_the_same(tmp_path, data, sep_limit):
    path = tmp_path / "v.npy"
    model = _train(data, data.docs, vectors_file=path)
    saved = str(tmp_path / "m.model")
    model.save(saved, **({} if sep_limit is None else {"sep_limit": sep_limit}))
    keys = ["img:3", "class0", "class3_r0"]
    expected = _answers(model, keys)
    assert isinstance(model.wv.vectors, np.memmap) and model.wv.vectors.filename == str(path)  # unchanged by save
    for kwargs in ({}, {"mmap": "r"}):
        loaded = Im2Vec.load(saved, **kwargs)
        assert np.array_equal(loaded.wv.vectors, model.wv.vectors)
        own = saved + ".wv.vectors.npy"  # its own vectors: plain, or mapped from its own companion file
        assert type(loaded.wv.vectors) is np.ndarray or loaded.wv.vectors.filename == own
        assert loaded.vectors_file == str(path)  # the setting, kept
        assert _answers(loaded, keys) == expected
    if sep_limit == 0:  # the vectors in a companion file of their own, streamed from the file
        assert np.array_equal(np.load(saved + ".wv.vectors.npy"), model.wv.vectors)


def test_keyedvectors_save_and_load(tmp_path, data):
    model = _train(data, data.docs, vectors_file=tmp_path / "v.npy")
    kv_path = str(tmp_path / "words.kv")
    model.wv.save(kv_path)
    for kwargs in ({}, {"mmap": "r"}):
        kv = KeyedVectors.load(kv_path, **kwargs)
        assert np.array_equal(kv.vectors, model.wv.vectors)
        assert kv.most_similar("img:5", topn=5) == model.wv.most_similar("img:5", topn=5)
        assert kv.most_similar("class1", topn=5) == model.wv.most_similar("class1", topn=5)


def test_loaded_model_trains_in_a_file_of_its_own(tmp_path, data):
    """A loaded model (mmap='r') moves its vectors into its vectors_file before it trains: never
    copied into memory, never written through the read-only map or into the saved model's files."""
    model = _train(data, data.docs, vectors_file=tmp_path / "v.npy")
    saved = str(tmp_path / "m.model")
    model.save(saved, sep_limit=0)
    before = open(saved + ".wv.vectors.npy", "rb").read()
    reference = Im2Vec.load(saved)
    reference.vectors_file = None  # trained in memory (the first model still maps its file)
    reference.train(data.docs, total_examples=len(data.docs), epochs=1)
    loaded = Im2Vec.load(saved, mmap="r")
    loaded.vectors_file = tmp_path / "other.npy"
    loaded.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert loaded.wv.vectors.filename == str(tmp_path / "other.npy")
    assert np.array_equal(loaded.wv.vectors, reference.wv.vectors)
    assert open(saved + ".wv.vectors.npy", "rb").read() == before
    loaded.vectors_file = None  # back to memory: the file is let go
    loaded.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert type(loaded.wv.vectors) is np.ndarray and loaded._vectors_file_state is None


def test_a_deepcopy_trains_in_memory_and_never_in_the_originals_file(tmp_path, data, caplog):
    """``copy.deepcopy(model)`` of a model in its vectors_file, then ``train()`` on the copy: it raised
    "vectors_file ... is in use" while the original lived, and once the original was gone the copy took
    its file over and wrote in it. The copy keeps its vectors in memory and says so; the file is not
    touched; a file of its own is the copy's to choose."""
    import copy
    import hashlib
    import logging

    path = tmp_path / "v.npy"
    model = _train(data, data.docs, vectors_file=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    content = np.array(model.wv.vectors)
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        twin = copy.deepcopy(model)
    assert "copy keeps wv.vectors in memory" in caplog.text and str(path) in caplog.text
    assert twin.vectors_file is None and model.vectors_file == str(path)
    reference = copy.deepcopy(model)
    later = copy.deepcopy(model)
    twin.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert type(twin.wv.vectors) is np.ndarray and not np.array_equal(twin.wv.vectors, content)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert np.array_equal(model.wv.vectors, content) and model.wv.vectors.filename == str(path)
    del model
    gc.collect()  # the original is gone (its lock with it): still not the copy's file
    later.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert type(later.wv.vectors) is np.ndarray and np.array_equal(later.wv.vectors, twin.wv.vectors)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    reference.vectors_file = tmp_path / "own.npy"  # a file of its own: the same training, in that file
    reference.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert reference.wv.vectors.filename == str(tmp_path / "own.npy")
    assert np.array_equal(reference.wv.vectors, twin.wv.vectors)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


# ----------------------------------------------------------------------------- files that are not the model's


def test_an_existing_file_is_refused_and_left_untouched(tmp_path, data):
    path = tmp_path / "mine.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    before, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    with pytest.raises(FileExistsError, match="mine.npy.*not this model's.*another path.*Delete it"):
        Im2Vec(data.docs, image_features=data.features, vectors_file=path, **KW)
    assert path.read_bytes() == before and os.stat(path).st_mtime_ns == mtime
    assert _files(tmp_path) == ["mine.npy"]
    # nor when the user sets the option on a built model: refused when the vectors would move there
    model = _train(data, data.docs)
    model.vectors_file = path
    with pytest.raises(FileExistsError, match="mine.npy"):
        model.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert path.read_bytes() == before and os.stat(path).st_mtime_ns == mtime


def test_another_models_file_is_refused_while_it_lives(tmp_path, data):
    """A second model, or a model loaded from a save of the first, never writes the first one's
    file while the first maps it; once the first is gone (an interrupted run continued from its
    checkpoint), its loaded copy takes the file over, and only that copy."""
    path = tmp_path / "v.npy"
    first = _train(data, data.docs, vectors_file=path)
    with pytest.raises(FileExistsError, match="not this model's"):
        Im2Vec(image_features=data.features, vectors_file=path, **KW)
    saved = str(tmp_path / "m.model")
    first.save(saved)
    copy = Im2Vec.load(saved, mmap="r")
    content = np.array(first.wv.vectors)
    with pytest.raises(FileExistsError, match="is in use"):
        copy.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert np.array_equal(np.load(path), content)
    stranger = Im2Vec.load(saved)
    stranger._vectors_file_id = None  # a model that did not make the file
    del first
    gc.collect()  # the first model is gone: its lock with it
    with pytest.raises(FileExistsError, match="not this model's"):
        stranger.train(data.docs, total_examples=len(data.docs), epochs=1)
    copy.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert copy.wv.vectors.filename == str(path)
    assert np.array_equal(np.load(path), copy.wv.vectors)


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, data, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "v.npy"
    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match=r"no space on the disk of vectors_file .*v\.npy.*need .* GiB more.*"
                                      r"vectors_file=None") as e:
        Im2Vec(data.docs, image_features=data.features, vectors_file=path, **KW)
    assert e.value.errno == errno.ENOSPC
    assert _files(tmp_path) == []  # neither the file nor a temporary one
    # growing an existing file: refused the same way, the file as it was
    monkeypatch.undo()
    first, second = _split(data)
    model = _train(data, first, vectors_file=path)
    before, shape = path.read_bytes(), model.wv.vectors.shape
    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match="no space") as e:
        model.build_vocab(second, update=True)
    assert e.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and model.wv.vectors.shape == shape


def test_a_new_file_never_replaces_one_made_meanwhile(tmp_path):
    from gensim_im2vec.model import _publish

    tmp, path = tmp_path / ".v.npy.tmp", tmp_path / "v.npy"
    tmp.write_bytes(b"new")
    path.write_bytes(b"made by someone else meanwhile")
    with pytest.raises(FileExistsError, match="created by someone else meanwhile"):
        _publish(str(tmp), str(path), replace=False)
    assert path.read_bytes() == b"made by someone else meanwhile"
    path.unlink()
    _publish(str(tmp), str(path), replace=False)
    assert path.read_bytes() == b"new" and not tmp.exists()


def test_ensure_writable_keeps_the_models_own_map(tmp_path, data):
    model = _train(data, data.docs, vectors_file=tmp_path / "v.npy")
    vectors = model.wv.vectors
    model._ensure_writable()
    assert model.wv.vectors is vectors  # not copied into memory
    # a foreign map (the user's np.load(mmap_mode="r+") of the same file) is not the model's: it goes
    # into a file the model owns, here by replacing its own
    model.wv.vectors = np.load(tmp_path / "v.npy", mmap_mode="r+")
    model._ensure_writable()
    assert model._vectors_in_file() and model.wv.vectors is not vectors


def test_options_are_checked():
    with pytest.raises(TypeError, match="vectors_file must be a file path"):
        Im2Vec(vectors_file=3)
    with pytest.raises(FileNotFoundError, match="the folder .* does not exist"):
        Im2Vec(vectors_file="/no/such/folder/v.npy")


def test_estimate_memory_leaves_the_file_out(tmp_path, data):
    plain = Im2Vec(image_features=data.features, **KW)
    plain.build_vocab(data.docs)
    on_disk = Im2Vec(image_features=data.features, vectors_file=tmp_path / "v.npy", **KW)
    on_disk.build_vocab(data.docs)
    a, b = plain.estimate_memory(), on_disk.estimate_memory()
    assert b["total"] == a["total"] - a["vectors"]


def _cli_train(tmp_path, data):
    """`im2vec train` of the synthetic data in `tmp_path` (a store, docs.txt, -o m.model): a runner of
    its arguments with more."""
    from click.testing import CliRunner

    from gensim_im2vec.cli import main
    from gensim_im2vec.store import FeatureStore

    keys = sorted(data.features)
    with FeatureStore.create(tmp_path / "store", dim=32) as w:
        w.write(keys, np.stack([data.features[k] for k in keys]))
    (tmp_path / "docs.txt").write_text("".join(" ".join(d) + "\n" for d in data.docs))
    args = ["train", str(tmp_path / "docs.txt"), "-f", str(tmp_path / "store"), "-o", str(tmp_path / "m.model"),
            "--min-count", "1", "--vector-size", "8", "--epochs", "1", "--workers", "1"]
    return lambda *more: CliRunner().invoke(main, [*args, *more])


def test_cli_train_vectors_file(tmp_path, data):
    train = _cli_train(tmp_path, data)
    result = train("--vectors-file", str(tmp_path / "v.npy"))
    assert result.exit_code == 0, result.output
    model = Im2Vec.load(str(tmp_path / "m.model"))
    assert model.vectors_file == str(tmp_path / "v.npy") and np.isfinite(model.wv.vectors).all()
    # the run's file becomes OUTPUT's vectors (moved, not copied), so the same command runs again
    assert not (tmp_path / "v.npy").exists() and "moved" in result.output
    assert np.array_equal(np.load(str(tmp_path / "m.model.wv.vectors.npy")), model.wv.vectors)
    again = train("--vectors-file", str(tmp_path / "v.npy"))
    assert again.exit_code == 0, again.output
    # a file that is not the run's own is refused and left as it is
    (tmp_path / "user.npy").write_bytes(b"the user's")
    mine = train("--vectors-file", str(tmp_path / "user.npy"))
    assert mine.exit_code != 0 and "user.npy" in mine.output and "no unfinished `im2vec train` run" in mine.output
    assert (tmp_path / "user.npy").read_bytes() == b"the user's"


@pytest.mark.parametrize("name", ["m.model", "m.model.wv.vectors.npy", "m.model.checkpoint", "docs.txt"])
def test_cli_vectors_file_is_not_the_output_or_an_input(tmp_path, data, name):
    """--vectors-file naming OUTPUT, a file saved beside it or an input is refused before any work."""
    train = _cli_train(tmp_path, data)
    result = train("--vectors-file", str(tmp_path / name))
    assert result.exit_code == 2, result.output
    assert "--vectors-file" in result.output and name in result.output
    assert not (tmp_path / "m.model").exists()


def test_an_interrupted_run_continues_in_its_file(tmp_path, data):
    """A run killed after an epoch (here: its model deleted) and continued from its checkpoint
    trains on in the same vectors file, and ends as the uninterrupted run does, bit for bit."""
    from gensim.models.callbacks import CallbackAny2Vec

    from gensim_im2vec.checkpoint import EpochCheckpoint, resume

    class Crash(Exception):
        pass

    class CrashAfterOne(CallbackAny2Vec):
        def on_epoch_end(self, model):
            raise Crash

    path, checkpoint = tmp_path / "v.npy", str(tmp_path / "run.checkpoint")
    model = Im2Vec(image_features=data.features, vectors_file=path, **KW)
    model.build_vocab(data.docs)
    try:
        model.train(data.docs, total_examples=model.corpus_count, epochs=3,
                    callbacks=[EpochCheckpoint(checkpoint, epochs=3), CrashAfterOne()])
    except Crash:
        pass
    del model
    gc.collect()  # the process that ran it is gone, and the lock on its file with it
    resumed = resume(checkpoint, data.docs)
    assert resumed.wv.vectors.filename == str(path)
    assert np.array_equal(resumed.wv.vectors, _train(data, data.docs).wv.vectors)


# ----------------------------------------------------------------------------- save(move_vectors_file=True)


def test_save_moves_the_file_instead_of_copying_it(tmp_path, data, monkeypatch):
    """The vectors file becomes the saved model's FNAME.wv.vectors.npy: the same file (device and
    inode), not a copy; nothing streams the vectors into a new file; the model answers the same
    before, after and loaded, and its first name is gone."""
    path = tmp_path / "v.npy"
    model = _train(data, data.docs, vectors_file=path)
    inode = os.stat(path).st_ino
    keys = ["img:3", "img:200", "class0", "class3_r0"]
    expected, vectors = _answers(model, keys), np.array(model.wv.vectors)
    saves = []
    real_save = np.save
    monkeypatch.setattr(np, "save", lambda f, a, *ar, **kw: (saves.append(np.shape(a)), real_save(f, a, *ar, **kw)))
    saved = str(tmp_path / "m.model")
    model.save(saved, move_vectors_file=True)
    assert vectors.shape not in saves  # W, syn1neg... were written, never the vectors
    assert not path.exists() and os.stat(saved + ".wv.vectors.npy").st_ino == inode
    assert sorted(p for p in _files(tmp_path) if "v.npy" in p or ".tmp" in p) == []  # no scratch left
    # the model holds the saved vectors read-only, as load(mmap="r") would
    assert isinstance(model.wv.vectors, np.memmap) and not model.wv.vectors.flags.writeable
    assert model.wv.vectors.filename == saved + ".wv.vectors.npy" and model._vectors_file_state is None
    assert _answers(model, keys) == expected
    for kwargs in ({}, {"mmap": "r"}):
        loaded = Im2Vec.load(saved, **kwargs)
        assert np.array_equal(loaded.wv.vectors, vectors) and _answers(loaded, keys) == expected


def test_training_after_a_move_never_changes_the_saved_model(tmp_path, data):
    """After the move the model trains on in a new vectors file at its vectors_file path (the
    saved file is never written through), as a model loaded with mmap='r' does."""
    path = tmp_path / "v.npy"
    model = _train(data, data.docs, vectors_file=path)
    saved = str(tmp_path / "m.model")
    model.save(saved, move_vectors_file=True)
    before = open(saved + ".wv.vectors.npy", "rb").read()
    model.train(data.docs, total_examples=len(data.docs), epochs=1)
    assert model.wv.vectors.filename == str(path) and model.wv.vectors.flags.writeable
    assert os.stat(path).st_ino != os.stat(saved + ".wv.vectors.npy").st_ino
    assert open(saved + ".wv.vectors.npy", "rb").read() == before
    # and the same model saved again (moved again) over the first save
    model.save(saved, move_vectors_file=True)
    assert not path.exists()
    assert np.array_equal(Im2Vec.load(saved).wv.vectors, model.wv.vectors)


def test_a_move_across_file_systems_copies_with_a_warning(tmp_path, data, monkeypatch, caplog):
    """Where the file cannot get a second name (another device), the vectors are copied, the run
    is told what it cost, and the file is removed all the same."""
    path = tmp_path / "v.npy"
    model = _train(data, data.docs, vectors_file=path)
    inode, vectors = os.stat(path).st_ino, np.array(model.wv.vectors)

    def no_link(src, dst, *a, **kw):
        raise OSError(errno.EXDEV, "Invalid cross-device link", src)

    monkeypatch.setattr(os, "link", no_link)
    saved = str(tmp_path / "m.model")
    with caplog.at_level("WARNING", logger="gensim_im2vec.model"):
        model.save(saved, move_vectors_file=True)
    assert "copied instead" in caplog.text and "v.npy" in caplog.text
    assert not path.exists() and os.stat(saved + ".wv.vectors.npy").st_ino != inode
    assert np.array_equal(Im2Vec.load(saved).wv.vectors, vectors)


def test_a_failed_move_keeps_the_vectors_file(tmp_path, data, monkeypatch):
    """A save that fails after the file got its second name (here: the pickle) leaves the vectors
    file as it was, still the model's own writable file, and no companion under the save's name."""
    import gensim.utils

    path = tmp_path / "v.npy"
    model = _train(data, data.docs, vectors_file=path)
    vectors = np.array(model.wv.vectors)

    def broken(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gensim.utils, "pickle", broken)
    saved = str(tmp_path / "m.model")
    with pytest.raises(OSError, match="No space"):
        model.save(saved, move_vectors_file=True)
    monkeypatch.undo()
    assert path.exists() and np.array_equal(np.load(path), vectors)
    assert model._vectors_in_file() and model.wv.vectors.flags.writeable and "vectors" in model.wv.__dict__
    assert [p for p in _files(tmp_path) if p.startswith("m.model") or ".tmp" in p] == []
    model.save(saved, move_vectors_file=True)  # the same model saves (and moves) afterwards
    assert np.array_equal(Im2Vec.load(saved).wv.vectors, vectors) and not path.exists()


def test_move_vectors_file_is_refused_where_it_cannot_move(tmp_path, data):
    in_memory = _train(data, data.docs)
    with pytest.raises(ValueError, match="vectors_file is None"):
        in_memory.save(str(tmp_path / "a.model"), move_vectors_file=True)
    path = tmp_path / "v.npy"
    model = _train(data, data.docs, vectors_file=path)
    with pytest.raises(ValueError, match=r"\.gz"):
        model.save(str(tmp_path / "b.model.gz"), move_vectors_file=True)
    with pytest.raises(ValueError, match="ignores 'vectors'"):
        model.save(str(tmp_path / "c.model"), ignore=["vectors"], move_vectors_file=True)
    assert path.exists() and model._vectors_in_file()  # nothing was moved
    assert not any(p.startswith(("a.model", "b.model", "c.model")) for p in _files(tmp_path))


def test_move_of_a_model_not_in_its_file_saves_as_always(tmp_path, data):
    """A loaded model keeps the vectors_file setting, but until it trains its vectors are the saved
    ones: save(move_vectors_file=True) then writes them as always and removes nothing."""
    model = _train(data, data.docs, vectors_file=tmp_path / "v.npy")
    first = str(tmp_path / "m.model")
    model.save(first, move_vectors_file=True)
    loaded = Im2Vec.load(first, mmap="r")
    (tmp_path / "v.npy").write_bytes(b"someone's")  # a file at the path is not touched
    second = str(tmp_path / "n.model")
    loaded.save(second, move_vectors_file=True)
    assert (tmp_path / "v.npy").read_bytes() == b"someone's"
    assert np.array_equal(Im2Vec.load(second).wv.vectors, Im2Vec.load(first).wv.vectors)


@pytest.mark.parametrize("name", ["m.model", "m.model.wv.vectors.npy"])
def test_move_refuses_a_vectors_file_the_save_would_write(tmp_path, data, name):
    """A vectors file named as the model or one of its companions would be renamed onto itself and
    then removed, the saved model's vectors with it: refused, nothing written."""
    path = tmp_path / name
    model = _train(data, data.docs, vectors_file=path)
    with pytest.raises(ValueError, match="is a name the save writes"):
        model.save(str(tmp_path / "m.model"), move_vectors_file=True)
    assert _files(tmp_path) == [name] and model._vectors_in_file()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_move_of_a_file_deleted_or_replaced_copies_the_models_own_map(tmp_path, data, how, caplog):
    """The path no longer names the file the model maps: its own vectors are copied from the map
    (never the file now at the path given a second name), and the path is left as it is."""
    path = tmp_path / "v.npy"
    model = _train(data, data.docs, vectors_file=path)
    vectors = np.array(model.wv.vectors)
    os.unlink(path)
    if how == "replaced":
        np.save(path, np.zeros((3, 3), dtype=np.float32))
    saved = str(tmp_path / "m.model")
    with caplog.at_level("WARNING", logger="gensim_im2vec.model"):
        model.save(saved, move_vectors_file=True)
    assert "no longer the file this model's vectors are mapped from" in caplog.text
    assert np.array_equal(Im2Vec.load(saved).wv.vectors, vectors)
    assert path.exists() == (how == "replaced")
    if how == "replaced":
        assert np.load(path).shape == (3, 3)


def test_link_checks_it_named_the_models_own_file(tmp_path, caplog):
    """A file put at the path between the check and the link (a race) is never given the saved
    name: the link is undone and the model's own vectors are written instead."""
    from gensim_im2vec.model import _file_id, _link_or_copy

    path, target = tmp_path / "v.npy", str(tmp_path / "m.model.wv.vectors.npy")
    np.save(path, np.ones((4, 2), dtype=np.float32))
    own, mapped = _file_id(str(path)), np.load(path, mmap_mode="r")  # the model's map keeps its inode in use
    os.unlink(path)
    np.save(path, np.zeros((3, 3), dtype=np.float32))  # another file, same name
    with caplog.at_level("WARNING", logger="gensim_im2vec.model"):
        _link_or_copy(own, target, mapped)
    assert "no longer the one this model maps" in caplog.text
    assert np.array_equal(np.load(target), np.ones((4, 2))) and os.stat(target).st_ino != os.stat(path).st_ino
    np.save(path, np.full((2, 2), 7, dtype=np.float32))
    fresh = _file_id(str(path))
    _link_or_copy(fresh, str(tmp_path / "b.npy"), np.full((2, 2), 7, dtype=np.float32))
    assert os.stat(tmp_path / "b.npy").st_ino == os.stat(path).st_ino  # its own file: linked
