"""One space over a model's life (issue 11): after every step a gensim user takes with a model, the
images' rows of ``model.wv`` are ``model.project`` of their features (one function), nothing is
NaN or zero, ``wv.norms`` matches the vectors, and ``wv.most_similar`` ranks as the projection does.

The steps: training and continued training, a vocabulary update with new images and words,
callbacks (looking each epoch, raising mid-training), save / load / ``mmap="r"`` and training on,
KeyedVectors files, two-stage, ``corpus_file``, gensim's norm helpers, arrays a user replaced,
``space_common_directions`` over several ``train()`` calls, a worker's error, an error of the
corpus iterator, and an interrupt (Ctrl-C) while the workers train.
"""

import threading
import time
import traceback

import numpy as np
import pytest
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

import gensim_im2vec.model as model_module
from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus

KW = dict(vector_size=16, sg=1, min_count=1, epochs=2, sample=0, seed=1)
TOL = 1e-5  # measured: rows vs project 0.6-1.8e-7 on this corpus
N_TRAIN = 300  # the first N_TRAIN image documents train the models; the rest are added by updates


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=5, n_images=400, n_features=32, n_related=1, n_test=10, seed=0)


@pytest.fixture(scope="module")
def docs(data):
    return data.docs[:N_TRAIN]


def _count_projected(monkeypatch):
    """Count the image rows written from W (:meth:`Im2Vec.project_rows` is how every row is made)."""
    projected = []
    project_rows = Im2Vec.project_rows

    def counted(self, rows):
        projected.append(len(rows))
        return project_rows(self, rows)

    monkeypatch.setattr(model_module.Im2Vec, "project_rows", counted)
    return projected


def assert_one_function(model, features, where=""):
    """Every vocabulary image's row == project(its features); finite, non-zero rows; wv.norms (as
    most_similar fills or finds them) those of the vectors; most_similar of an image key == the
    ranking by the cosine to its projection. Returns the rows' max abs difference."""
    idx = np.flatnonzero(model.image_mask)
    assert len(idx), where
    keys = [model.wv.index_to_key[i] for i in idx]
    vectors = np.asarray(model.wv.vectors)
    proj = model.project(np.stack([features[k] for k in keys]))
    assert np.isfinite(vectors).all(), where
    assert (np.linalg.norm(vectors[idx], axis=1) > 0).all(), where
    diff = float(np.abs(vectors[idx] - proj).max())
    assert diff < TOL, (where, diff)
    got = model.wv.most_similar(keys[0], topn=10)
    np.testing.assert_allclose(model.wv.norms, np.linalg.norm(vectors, axis=1), rtol=1e-5, atol=1e-7, err_msg=where)
    A, h = vectors.astype(np.float64), proj[0].astype(np.float64)
    cos = A @ h / np.linalg.norm(A, axis=1) / np.linalg.norm(h)
    cos[model.wv.key_to_index[keys[0]]] = -np.inf
    np.testing.assert_allclose([c for _, c in got], np.sort(cos)[::-1][:10], atol=1e-5, err_msg=where)
    return diff


def _train(model, documents, epochs=1, timeout=30.0, total_examples=None, **kwargs):
    """model.train on `documents`, failing (not hanging the suite) when it does not return in time.
    `total_examples`: the documents' count (default ``len(documents)``; give it for a generator)."""
    out = {}
    if total_examples is None:
        total_examples = len(documents)

    def run():
        try:
            out["result"] = model.train(documents, total_examples=total_examples, epochs=epochs, **kwargs)
        except BaseException as err:  # handed to the test's thread
            out["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"train() did not return in {timeout:.0f}s (a worker died and gensim waits for it)"
    if "error" in out:
        raise out["error"]
    return out["result"]


def _renamed_tags(documents, suffix="x"):
    """The documents with their distractor tags renamed: new words for a vocabulary update."""
    return [[t + suffix if t.startswith("tag") else t for t in d] for d in documents]


@pytest.mark.parametrize("workers", [1, 2])
def test_fresh_then_continued_training(data, docs, workers):
    m = Im2Vec(docs, image_features=data.features, workers=workers, **KW)
    assert_one_function(m, data.features, "fresh")
    W0, mean = m.W.copy(), m.feature_mean.copy()
    _train(m, docs, epochs=2)
    assert not np.array_equal(W0, m.W)
    np.testing.assert_array_equal(m.feature_mean, mean)
    assert_one_function(m, data.features, "continued")


@pytest.mark.parametrize("workers", [1, 2])
def test_an_update_places_new_images_by_W_at_once_and_training_moves_all_rows(data, docs, workers):
    """build_vocab(update=True) with new images (and new words): their rows are W·(v̂ − μ) right
    away, not gensim's random start (a model that adds images without training finds them by
    their features); train() then rewrites old and new rows with the new W, μ the first training's."""
    m = Im2Vec(docs, image_features=data.features, workers=workers, **KW)
    m.wv.most_similar("img:0")  # norms filled before the update
    mean = m.feature_mean.copy()
    new_docs = _renamed_tags(data.docs[N_TRAIN:])
    m.build_vocab(new_docs, update=True, image_features=data.features)
    assert "img:399" in m.image_keys and "tag1x" in m.word_keys
    assert_one_function(m, data.features, "after the update, before training")
    np.testing.assert_array_equal(m.feature_mean, mean)
    old_row = m.wv["img:0"].copy()
    _train(m, new_docs, epochs=2)
    assert not np.array_equal(old_row, m.wv["img:0"])  # an old image's row follows the new W
    np.testing.assert_array_equal(m.feature_mean, mean)
    assert_one_function(m, data.features, "after the update and training")


def test_a_text_only_model_given_images_by_an_update(data, docs):
    m = Im2Vec([d[1:] for d in docs], workers=1, **KW)
    m.build_vocab(docs, update=True, image_features=data.features)
    assert m.feature_mean is None
    assert_one_function(m, data.features, "update, W fresh, no μ yet")  # project() is W·v̂ then
    _train(m, docs, epochs=2)
    assert m.feature_mean is not None
    assert_one_function(m, data.features, "trained")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_callback_sees_the_rows_of_the_current_W_at_each_epoch_end(data, docs, workers):
    features = data.features

    class Look(CallbackAny2Vec):
        def __init__(self):
            self.diffs, self.W = [], []

        def on_epoch_end(self, model):
            self.diffs.append(assert_one_function(model, features, "epoch end"))
            self.W.append(model.W.copy())

    look = Look()
    m = Im2Vec(docs, image_features=features, workers=workers, callbacks=[look], space_common_directions=0,
               **dict(KW, epochs=3))
    assert len(look.diffs) == 3 and not np.array_equal(look.W[0], look.W[-1])
    assert_one_function(m, features, "after the directions were taken out")
    look2 = Look()
    _train(m, docs, epochs=2, callbacks=[look2])
    assert len(look2.diffs) == 2
    assert_one_function(m, features, "second train")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_callback_that_raises_mid_training_leaves_rows_of_the_trained_W(data, docs, workers):
    class Boom(CallbackAny2Vec):
        def __init__(self):
            self.n = 0

        def on_epoch_end(self, model):
            self.n += 1
            if self.n == 2:
                raise RuntimeError("boom")

    m = Im2Vec(docs, image_features=data.features, workers=workers, **KW)
    W0 = m.W.copy()
    with pytest.raises(RuntimeError, match="boom"):
        _train(m, docs, epochs=4, callbacks=[Boom()])
    assert not np.array_equal(W0, m.W)
    assert_one_function(m, data.features, "interrupted")
    _train(m, docs)
    assert_one_function(m, data.features, "trained again")


@pytest.mark.parametrize("mmap", [None, "r"])
def test_save_load_mmap_then_train(tmp_path, data, docs, mmap):
    m = Im2Vec(docs, image_features=data.features, workers=2, space_common_directions=1, **KW)
    m.wv.fill_norms()
    path = str(tmp_path / "m.model")
    m.save(path, sep_limit=0)  # every array in its own .npy: wv.vectors memory-mapped too
    loaded = Im2Vec.load(path, mmap=mmap)
    if mmap:
        assert isinstance(loaded.wv.vectors, np.memmap) and not loaded.wv.vectors.flags.writeable
        assert isinstance(loaded.W, np.memmap)
    assert_one_function(loaded, data.features, "loaded")
    assert loaded.wv.most_similar("img:3", topn=5) == m.wv.most_similar("img:3", topn=5)
    _train(loaded, docs, epochs=2)
    assert_one_function(loaded, data.features, "loaded and trained")
    loaded.save(str(tmp_path / "again.model"))
    again = Im2Vec.load(str(tmp_path / "again.model"), mmap="r")
    assert_one_function(again, data.features, "saved again")


def test_keyedvectors_files_answer_image_to_word_as_the_model(tmp_path, data, docs):
    m = Im2Vec(docs, image_features=data.features, workers=1, **KW)
    m.wv.save(str(tmp_path / "s.kv"))
    m.wv.save_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    m.wv.save_word2vec_format(str(tmp_path / "v.txt"), binary=False)
    files = [KeyedVectors.load(str(tmp_path / "s.kv")),
             KeyedVectors.load_word2vec_format(str(tmp_path / "v.bin"), binary=True),
             KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"), binary=False)]
    for key in ("img:0", "img:7", "img:299"):
        want = m.most_similar_words(key, topn=5)
        for kv in files:
            got = [(w, c) for w, c in kv.most_similar(key, topn=len(kv)) if not w.startswith("img:")][:5]
            assert [w for w, _ in got] == [w for w, _ in want]
            np.testing.assert_allclose([c for _, c in got], [c for _, c in want], atol=1e-5)
            np.testing.assert_allclose(kv[key], m.project(data.features[key]), atol=TOL)


def test_two_stage_then_more_image_documents(data):
    corpus = make_corpus(n_classes=4, n_images=300, n_features=32, n_related=2, n_text_sentences=600, seed=2)
    text = [d for d in corpus.docs if not d[0].startswith("img:")]
    images = [d for d in corpus.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    m = Im2Vec.from_word2vec(w2v, image_features=corpus.features, sentences=images[:200], epochs=2, sample=0)
    assert_one_function(m, corpus.features, "two-stage")
    m.build_vocab(images[200:], update=True)
    assert_one_function(m, corpus.features, "two-stage, more images")
    _train(m, images, epochs=2)
    assert np.array_equal(m.wv["class1"], w2v.wv["class1"])
    assert_one_function(m, corpus.features, "two-stage, trained on more")


def test_corpus_file_training_with_images(tmp_path, data, docs):
    path = tmp_path / "docs.txt"
    path.write_text("".join(" ".join(d) + "\n" for d in docs))
    m = Im2Vec(corpus_file=str(path), image_features=data.features, workers=2, **KW)
    assert_one_function(m, data.features, "corpus_file")
    m.train(corpus_file=str(path), total_words=m.corpus_total_words, total_examples=m.corpus_count, epochs=1)
    assert_one_function(m, data.features, "corpus_file, trained again")


def test_gensims_norm_helpers_then_training(data, docs):
    m = Im2Vec(docs, image_features=data.features, workers=2, **KW)
    m.wv.fill_norms(force=True)
    normed = m.wv.get_normed_vectors()
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)
    assert_one_function(m, data.features, "fill_norms / get_normed_vectors")
    _train(m, docs)
    assert_one_function(m, data.features, "trained after fill_norms")
    before = m.wv.most_similar("img:0", topn=5)
    m.wv.unit_normalize_all()  # gensim's destructive helper: the rows are unit vectors now, the cosines the same
    assert [w for w, _ in m.wv.most_similar("img:0", topn=5)] == [w for w, _ in before]
    _train(m, docs)  # the rows are W's again after training
    assert_one_function(m, data.features, "trained after unit_normalize_all")


@pytest.mark.parametrize("workers", [1, 2])
def test_arrays_a_user_replaced_then_train(data, docs, workers):
    m = Im2Vec(docs, image_features=data.features, workers=workers, **KW)
    m.wv.most_similar("img:0")  # norms cached for the old array
    m.wv.vectors = m.wv.vectors.copy()
    _train(m, docs)
    assert_one_function(m, data.features, "vectors copied")
    m.wv.vectors = np.asfortranarray(m.wv.vectors)
    m.W = m.W.copy()
    _train(m, docs)
    assert_one_function(m, data.features, "vectors in Fortran order, W copied")


@pytest.mark.parametrize("name", ["wv.vectors", "W", "syn1neg"])
def test_float64_arrays_a_user_assigned_train_instead_of_hanging(data, docs, name):
    """The kernel reads float32; a float64 array assigned by a user killed the worker thread and
    gensim's train() waited for it forever."""
    m = Im2Vec(docs, image_features=data.features, workers=2, **KW)
    owner, attr = (m.wv, "vectors") if name == "wv.vectors" else (m, name)
    setattr(owner, attr, getattr(owner, attr).astype(np.float64))
    _train(m, docs, timeout=20)
    assert getattr(owner, attr).dtype == np.float32
    assert_one_function(m, data.features, f"float64 {name}")


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_in_a_training_job_is_raised_not_waited_for(data, docs, workers, monkeypatch):
    m = Im2Vec(docs, image_features=data.features, workers=workers, **KW)
    W0 = m.W.copy()

    def broken(self, *args, **kwargs):
        raise MemoryError("job failed")

    monkeypatch.setattr(model_module.Im2Vec, "_train_space_job", broken)
    with pytest.raises(MemoryError, match="job failed"):
        _train(m, docs, epochs=2, timeout=20)
    np.testing.assert_array_equal(m.W, W0)  # no job trained
    assert_one_function(m, data.features, "after the error")
    monkeypatch.undo()
    _train(m, docs)  # the model is not left in a failed state
    assert not np.array_equal(m.W, W0)
    assert_one_function(m, data.features, "trained after the error")


@pytest.mark.parametrize("k", [0, 1])
@pytest.mark.parametrize("workers", [1, 2])
def test_common_directions_over_several_trainings(data, docs, k, workers):
    m = Im2Vec(docs, image_features=data.features, workers=workers, space_common_directions=k, **KW)
    for n in range(2):
        Q = m.space_directions
        assert Q.shape == (16, k + 1)
        assert np.abs(Q.T @ m.W).max() < 1e-6  # taken out of W by this train()
        assert np.abs(m.wv.vectors[m.image_mask] @ Q).max() < 1e-6
        assert np.abs(m.project(data.test_features) @ Q).max() < 1e-6
        assert_one_function(m, data.features, f"train {n + 1}")
        _train(m, docs, epochs=2)
    m.space_common_directions = None  # W trains on and keeps what it learns: no direction is taken out
    _train(m, docs, epochs=2)
    assert m.space_directions is None, "space_directions names directions the image vectors are no longer orthogonal to"
    assert_one_function(m, data.features, "after a train() with space_common_directions=None")


def _repeated(documents, reps, read=None):
    """`documents` `reps` times over, as a stream (a corpus too large to hold); `read` counts the
    documents it has handed out."""
    for _ in range(reps):
        for doc in documents:
            if read is not None:
                read.append(1)
            yield doc


@pytest.mark.parametrize("workers", [1, 2])
def test_a_job_error_stops_the_reading_of_the_corpus(data, docs, workers, monkeypatch):
    """After a job's error the epoch stops reading the corpus: at 100M documents, gensim's producer
    went on reading the whole epoch before train() raised."""
    batch_words = 100
    m = Im2Vec(docs, image_features=data.features, workers=workers, batch_words=batch_words, **KW)
    W0 = m.W.copy()

    def broken(self, *args, **kwargs):
        raise RuntimeError("job failed")

    monkeypatch.setattr(model_module.Im2Vec, "_train_job", broken)
    read, reps = [], 200
    with pytest.raises(RuntimeError, match="job failed"):
        _train(m, _repeated(docs, reps, read), total_examples=len(docs) * reps, timeout=60)
    # read ahead of the failed job, at most: the jobs the workers hold and the queue's (gensim's
    # queue_factor=2 per worker), the one the producer is putting, the one it is filling, and a
    # document; each job holds at most batch_words documents (of one word or more)
    bound = (3 * workers + 2) * batch_words + 1
    assert len(read) <= bound < len(docs) * reps, (len(read), bound)
    np.testing.assert_array_equal(m.W, W0)
    monkeypatch.undo()
    _train(m, docs)
    assert not np.array_equal(m.W, W0)
    assert_one_function(m, data.features, "trained after the error")


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_of_the_corpus_iterator_is_raised_not_waited_for(data, docs, workers):
    """An exception raised by the corpus iterator itself (e.g. an OSError reading a file mid-epoch)
    killed gensim's producer thread, and train() waited for it forever; now train() raises it, with
    the traceback of the iterator's frame."""
    m = Im2Vec(docs, image_features=data.features, workers=workers, **KW)
    W0 = m.W.copy()

    def vanishing_corpus():
        yield from docs[:50]
        raise OSError("corpus file vanished")

    with pytest.raises(OSError, match="corpus file vanished") as info:
        _train(m, vanishing_corpus(), total_examples=len(docs), timeout=20)
    assert "vanishing_corpus" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    np.testing.assert_array_equal(m.W, W0)  # the 50 documents' job is skipped: the epoch failed
    assert_one_function(m, data.features, "after the corpus error")
    _train(m, docs)
    assert not np.array_equal(m.W, W0)
    assert_one_function(m, data.features, "trained after the corpus error")


def test_a_refused_train_keeps_the_space_directions(data, docs):
    """train() refused before any epoch (gensim's total_examples check) leaves W as it was, so the
    directions taken out of it still hold: space_directions stays."""
    m = Im2Vec(docs, image_features=data.features, workers=1, space_common_directions=1, **KW)
    W0, Q = m.W.copy(), m.space_directions.copy()
    with pytest.raises(ValueError, match="total_examples"):
        m.train(docs)  # no total_examples: gensim refuses before the first epoch
    np.testing.assert_array_equal(m.W, W0)
    assert m.space_directions is not None, "a refused train() dropped space_directions"
    np.testing.assert_array_equal(m.space_directions, Q)
    assert np.abs(m.wv.vectors[m.image_mask] @ Q).max() < 1e-6


class _Scanned(np.ndarray):
    """``_vocab_image_rows`` that records how many entries each ``>=`` comparison reads."""

    sizes: list = []

    def __ge__(self, other):
        _Scanned.sizes.append(self.size)
        return np.asarray(self) >= other


def test_an_update_looks_at_the_new_rows_only(data, docs, monkeypatch):
    """build_vocab(update=True) on a trained model projects the new images only, and finds them
    among the new rows without a pass over every image of the vocabulary (that pass sorted all
    image rows: 26 s at 20M images for 10 new ones)."""
    m = Im2Vec(docs, image_features=data.features, workers=2, **KW)
    n_old = len(m.wv)
    projected = []
    write, project_rows = Im2Vec._write_image_vectors, Im2Vec.project_rows

    def scanned_write(self, among=None):
        self._vocab_image_rows = self._vocab_image_rows.view(_Scanned)
        try:
            return write(self, among)
        finally:
            self._vocab_image_rows = np.asarray(self._vocab_image_rows)

    def counted_project_rows(self, rows):
        projected.append(len(rows))
        return project_rows(self, rows)

    monkeypatch.setattr(model_module.Im2Vec, "_write_image_vectors", scanned_write)
    monkeypatch.setattr(model_module.Im2Vec, "project_rows", counted_project_rows)
    _Scanned.sizes = []
    m.build_vocab(_renamed_tags(data.docs[N_TRAIN:]), update=True)
    n_new = len(m.wv) - n_old
    new_images = int(np.sum(m.image_mask[n_old:]))
    assert 0 < new_images < len(m.image_keys)
    assert sum(projected) == new_images
    assert _Scanned.sizes and max(_Scanned.sizes) <= n_new, (_Scanned.sizes, n_new)
    assert_one_function(m, data.features, "after the update")


def test_from_word2vec_writes_the_image_rows_once(monkeypatch):
    """from_word2vec(..., sentences=...) trains right after its vocabulary update, and the training's
    end writes every image row: the update does not write them before (at 100M images every image
    is new, a whole extra read of the feature store). A user's own update still writes its new rows."""
    corpus = make_corpus(n_classes=4, n_images=300, n_features=32, n_related=2, n_text_sentences=600, seed=2)
    text = [d for d in corpus.docs if not d[0].startswith("img:")]
    images = [d for d in corpus.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=2, workers=1, seed=1)
    projected = _count_projected(monkeypatch)
    m = Im2Vec.from_word2vec(w2v, image_features=corpus.features, sentences=images[:200], epochs=2, sample=0)
    assert sum(projected) == len(m.image_keys), "the image rows were written more than once"
    assert_one_function(m, corpus.features, "two-stage")
    n_old, projected[:] = len(m.image_keys), []
    m.build_vocab(images[200:], update=True)
    assert sum(projected) == len(m.image_keys) - n_old > 0
    assert_one_function(m, corpus.features, "two-stage, more images")


@pytest.mark.parametrize("before", ["never trained", "vocabulary rebuilt"])
def test_an_update_of_a_model_whose_rows_are_not_W_yet_writes_every_image_row(data, docs, before):
    """After build_vocab without training, the old image rows are gensim's random start: an update
    writes them too (not only the new ones), so old and new images are in one space."""
    if before == "never trained":
        m = Im2Vec(image_features=data.features, workers=1, **KW)
    else:
        m = Im2Vec(docs, image_features=data.features, workers=1, **KW)
    m.build_vocab(docs)
    m.build_vocab(_renamed_tags(data.docs[N_TRAIN:]), update=True)
    assert_one_function(m, data.features, f"{before}, then updated")


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupt_leaves_no_worker_training(data, docs, workers, monkeypatch):
    """Ctrl-C while train() waits for the workers' reports: no job trains after train() has raised
    (in gensim the workers trained the queued jobs on, and the rows written by train()'s end went
    stale), the epoch's threads end, and a later train() trains as usual.

    Ctrl-C reaches the main thread where it waits on the progress queue, in gensim's
    ``_log_epoch_progress``: raising KeyboardInterrupt there after the first report stands in for it."""
    m = Im2Vec(docs, image_features=data.features, workers=workers, batch_words=500, **KW)
    calls = []
    train_job = Im2Vec._train_job

    def slow_train_job(self, *args, **kwargs):  # jobs long enough to be still queued at the interrupt
        calls.append(1)
        time.sleep(0.01)
        return train_job(self, *args, **kwargs)

    def interrupted(self, progress_queue=None, job_queue=None, **kwargs):
        progress_queue.get()  # the first job's report: the workers are training
        raise KeyboardInterrupt

    def epoch_threads():
        return {t for t in threading.enumerate() if t.name.endswith(("(_worker_loop)", "(_job_producer)"))}

    before = epoch_threads()
    monkeypatch.setattr(model_module.Im2Vec, "_train_job", slow_train_job)
    monkeypatch.setattr(Word2Vec, "_log_epoch_progress", interrupted)
    reps = 50
    with pytest.raises(KeyboardInterrupt):
        _train(m, _repeated(docs, reps), total_examples=len(docs) * reps, queue_factor=10)
    n_calls, W1 = len(calls), m.W.copy()
    time.sleep(0.5)
    assert len(calls) == n_calls, f"{len(calls) - n_calls} job(s) trained after train() raised"
    np.testing.assert_array_equal(m.W, W1)
    assert_one_function(m, data.features, "interrupted")
    for thread in epoch_threads() - before:  # (they end within moments; the bound is for a machine under load)
        thread.join(60)
    assert not epoch_threads() - before, "the interrupted epoch's threads are still alive"
    monkeypatch.undo()
    _train(m, docs)  # the stop of the interrupted epoch does not stop this one
    assert not np.array_equal(m.W, W1)
    assert_one_function(m, data.features, "trained after the interrupt")


@pytest.mark.parametrize("workers", [1, 2])
def test_build_vocab_from_a_callback_during_training_is_refused_and_after_it_works(tmp_path, data, docs, workers):
    """A callback that extends the vocabulary mid-training got a ValueError from the images' plan
    ("tokens, slots, word_lock or the negatives' table disagree in length"); now build_vocab says
    what happened and what to do, before it changes anything, and the same update between train()
    calls works. A model saved from a callback during training loads free to be updated."""
    new_docs = _renamed_tags(data.docs[N_TRAIN:])

    class Grow(CallbackAny2Vec):
        def __init__(self):
            self.errors = []

        def on_epoch_end(self, model):
            model.save(str(tmp_path / "during.model"))
            try:
                model.build_vocab(new_docs, update=True, image_features=data.features)
            except RuntimeError as err:
                self.errors.append(str(err))
                raise

    m = Im2Vec(docs, image_features=data.features, workers=workers, **KW)
    n_keys = len(m.wv.index_to_key)
    grow = Grow()
    with pytest.raises(RuntimeError, match=r"build_vocab\(\) was called during train\(\)"):
        _train(m, docs, epochs=2, callbacks=[grow])
    assert len(grow.errors) == 1 and "between train() calls" in grow.errors[0]
    assert len(m.wv.index_to_key) == n_keys and "img:399" not in m.image_keys  # nothing changed
    assert_one_function(m, data.features, "refused mid-training")
    m.build_vocab(new_docs, update=True, image_features=data.features)  # after train() returned
    _train(m, new_docs)
    assert "img:399" in m.image_keys
    assert_one_function(m, data.features, "updated after training")
    saved = Im2Vec.load(str(tmp_path / "during.model"))
    saved.build_vocab(new_docs, update=True, image_features=data.features)
    assert "img:399" in saved.image_keys
    assert_one_function(saved, data.features, "saved during training, loaded, updated")


def test_a_copy_made_during_training_is_not_training_and_other_vocabulary_calls_are_refused(data, docs):
    """Review: a save to a file handle and a deepcopy from a callback pickled the training flag
    (their build_vocab was refused for ever); build_vocab_from_freq and prepare_vocab from a
    callback got past the refusal and failed later in the space step; a train() run from a callback
    of another cleared the outer one's flag."""
    import copy
    import io
    import pickle

    seen = {}

    class During(CallbackAny2Vec):
        def on_epoch_end(self, model):
            buf = io.BytesIO()
            model.save(buf)
            seen["handle"] = pickle.loads(buf.getvalue())
            seen["copy"] = copy.deepcopy(model)
            for call in (lambda: model.build_vocab_from_freq({"newword": 3}, update=True),
                         lambda: model.prepare_vocab(update=True)):
                with pytest.raises(RuntimeError, match=r"was called during train\(\)"):
                    call()
            seen["refused"] = True

    m = Im2Vec(docs, image_features=data.features, workers=1, **KW)
    _train(m, docs, epochs=1, callbacks=[During()])
    assert seen["refused"] and "newword" not in m.wv.key_to_index
    new_docs = _renamed_tags(data.docs[N_TRAIN:])
    for name in ("handle", "copy"):
        other = seen[name]
        other.build_vocab(new_docs, update=True, image_features=data.features)
        assert "img:399" in other.image_keys, name
    m.build_vocab_from_freq({"newword": 3}, update=True)  # after train() returned
    assert "newword" in m.wv.key_to_index

    class Nested(CallbackAny2Vec):
        def __init__(self):
            self.flags, self.depth = [], 0

        def on_epoch_end(self, model):
            if self.depth == 0:
                self.depth += 1
                model.train(docs, total_examples=len(docs), epochs=1)
                self.flags.append(model._training)

    nested = Nested()
    _train(m, docs, epochs=1, callbacks=[nested])
    assert nested.flags == [True] and not m._training


@pytest.mark.parametrize("bad", [-1, 2.5, "3"])
def test_a_bad_readout_directions_set_after_construction_is_refused_before_training(data, docs, bad):
    m = Im2Vec(docs, image_features=data.features, workers=1, space_readout=0.5, **KW)
    W, readout = m.W.copy(), m.readout_W.copy()
    m.space_readout_directions = bad
    with pytest.raises(ValueError, match=r"space_readout_directions must be an int >= 0"):
        _train(m, docs)
    np.testing.assert_array_equal(m.W, W)  # refused before the first epoch: nothing moved
    np.testing.assert_array_equal(m.readout_W, readout)
    assert_one_function(m, data.features, "refused")


def test_a_save_to_a_handle_after_a_save_to_a_path_loads(data, docs, tmp_path):
    """gensim's save to a path leaves its list of companion files in the object; a save to a file
    handle after it pickled that list, and the load looked for FILE.W.npy beside the handle's file.
    Also with fit_neighbours' arrays in the model."""
    model = Im2Vec(docs, image_features=data.features, workers=1, **KW)
    for fitted in (False, True):
        if fitted:
            model.fit_neighbours(docs, k=5)
        model.save(str(tmp_path / f"m{fitted}.model"))
        with open(tmp_path / f"h{fitted}.pkl", "wb") as f:
            model.save(f)
        again = Im2Vec.load(str(tmp_path / f"h{fitted}.pkl"))
        assert not list(tmp_path.glob(f"h{fitted}.pkl.*"))  # one file
        np.testing.assert_allclose(again.wv.vectors, model.wv.vectors, rtol=1e-6)
        assert_one_function(again, data.features, f"handle after path, fitted={fitted}")
        assert "__numpys" in model.__dict__  # (the live model as gensim left it)
