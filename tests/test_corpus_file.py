"""corpus_file=: gensim's file mode, text-only and with image tokens (issue 13 item 3)."""

import bz2
import os
import threading

import numpy as np
import pytest
from gensim.models import Word2Vec
from gensim.test.utils import datapath
from hypothesis import given, settings
from hypothesis import strategies as st

from gensim_im2vec import Im2Vec
from gensim_im2vec.corpusfile import CorpusFileEpoch, byte_ranges, n_ranges, read_documents
from gensim_im2vec.synthetic import make_corpus


def write_docs(path, docs):
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(" ".join(doc) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    data = make_corpus(n_classes=4, n_images=400, n_features=32, n_text_sentences=300, seed=0)
    path = write_docs(tmp_path_factory.mktemp("cf") / "docs.txt", data.docs)
    return data, path


IMG = dict(vector_size=16, min_count=1, sample=0, sg=1, epochs=4, batch_words=500, seed=1)


def test_text_only_is_gensims_file_mode_bit_for_bit():
    """Without images the file trains on gensim's own corpus_file kernel: the same vectors."""
    lee = datapath("lee_background.cor")
    for sg in (0, 1):
        params = dict(vector_size=16, min_count=2, workers=1, epochs=2, sg=sg, seed=3)
        ref, ours = Word2Vec(corpus_file=lee, **params), Im2Vec(corpus_file=lee, **params)
        assert ref.wv.index_to_key == ours.wv.index_to_key
        np.testing.assert_array_equal(ours.wv.vectors, ref.wv.vectors)
        np.testing.assert_array_equal(ours.syn1neg, ref.syn1neg)


def test_file_and_iterable_train_the_same_model_with_one_worker(synthetic):
    """With images, each job goes through _do_train_job as with corpus_iterable: one worker, the
    same jobs, learning rates and draws, so the very same model."""
    data, path = synthetic
    from_file = Im2Vec(corpus_file=path, image_features=data.features, workers=1, **IMG)
    from_docs = Im2Vec(data.docs, image_features=data.features, workers=1, **IMG)
    assert from_file.wv.index_to_key == from_docs.wv.index_to_key
    assert from_file.corpus_count == from_docs.corpus_count == len(data.docs)
    np.testing.assert_array_equal(from_file.wv.vectors, from_docs.wv.vectors)
    np.testing.assert_array_equal(from_file.W, from_docs.W)
    np.testing.assert_array_equal(from_file.syn1neg, from_docs.syn1neg)


def class_of_nearest_word(model, data):
    hits = model.similar_by_image(data.test_features, topn=1, restrict="words")
    return np.array([int(h[0][0][len("class"):].split("_")[0]) if h[0][0].startswith("class") else -1
                     for h in hits])


def class_of_nearest_class_word(model, data):
    H = model.project(data.test_features)
    C = model.wv[data.class_words]
    cos = (H / np.linalg.norm(H, axis=1, keepdims=True)) @ (C / np.linalg.norm(C, axis=1, keepdims=True)).T
    return np.array([int(data.class_words[j][len("class"):]) for j in cos.argmax(axis=1)])


def related_margin(model, data):
    """Mean cosine of each class word to its related tags minus to the distractor tags."""
    related = [model.wv.similarity(c, f"{c}_r{k}") for c in data.class_words for k in range(2)]
    distractors = [model.wv.similarity(c, t) for c in data.class_words for t in model.word_keys if t.startswith("tag")]
    return np.mean(related) - np.mean(distractors)


def test_two_workers_read_each_document_once_and_learn_as_well(synthetic):
    data, path = synthetic
    model = Im2Vec(corpus_file=path, image_features=data.features, workers=2, **IMG)
    n_images = sum(doc[0].startswith("img:") for doc in data.docs)
    assert model._image_occurrences == n_images * IMG["epochs"]  # every image line, once per epoch
    # image keys of the file are images of the space: W·(v̂ − μ) of their features
    key = data.docs[0][0]
    assert model.is_image(key) and key in model.image_keys
    np.testing.assert_allclose(model.wv[key], model.project(data.features[key]), rtol=1e-4, atol=1e-6)
    # held-out images find their own class word, and class words sit nearer their related tags than
    # the distractors, as with an iterable. Two workers are not deterministic, and on this 60-word
    # vocabulary (every space step moves every word) a 2-worker run is as different as a new seed.
    # Measured over 200 runs of each path (2026-12-05, a worker's run reading the shared W as the
    # run begins): held-out images nearest their class word among all words, median 0.99 (file)
    # and 0.97 (iterable), but in 1 file run and 10 iterable ones below 0.8 (min 0.745 and 0.67:
    # one class's images nearest a distractor tag: the space step's word updates side by side, see
    # docs/kernel.md; 1 worker over 100 seeds: min 0.905); among the
    # class words min 0.94; the related-tag margin from 0.275. The bounds are ground truth (not
    # another 2-worker run's neighbours, which this test once compared with, and failed on half
    # the time); the two models' mean is below 0.75 in 0.03% of the runs' pairs
    ref = Im2Vec(data.docs, image_features=data.features, workers=2, **IMG)
    nearest = [np.mean(class_of_nearest_word(trained, data) == data.test_labels) for trained in (model, ref)]
    assert np.mean(nearest) > 0.75, nearest
    for trained in (model, ref):
        assert np.mean(class_of_nearest_class_word(trained, data) == data.test_labels) > 0.85
        assert related_margin(trained, data) > 0.2


def test_build_vocab_and_train_separately_and_continue(synthetic, tmp_path):
    data, path = synthetic
    model = Im2Vec(image_features=data.features, workers=2, **IMG)
    model.build_vocab(corpus_file=path)
    assert model.corpus_count == len(data.docs)
    assert model.corpus_total_words == sum(len(d) for d in data.docs)
    before = model.W.copy()
    trained, raw = model.train(corpus_file=path, total_words=model.corpus_total_words, epochs=2)
    assert raw == 2 * model.corpus_total_words and trained > 0
    assert not np.array_equal(before, model.W)
    # new images: extend the vocabulary from a second file, then train on it
    extra = {f"img:new{i}": data.features[f"img:{i}"] + 0.01 for i in range(5)}
    new_path = write_docs(tmp_path / "more.txt", [[k, "class0", "photo"] for k in extra])
    model.build_vocab(corpus_file=new_path, update=True, image_features={**data.features, **extra})
    model.train(corpus_file=new_path, total_words=15, epochs=1)
    assert all(model.is_image(k) for k in extra)


def test_more_workers_than_lines(tmp_path):
    data = make_corpus(n_classes=2, n_images=3, n_features=8, seed=0)
    path = write_docs(tmp_path / "tiny.txt", data.docs)
    model = Im2Vec(corpus_file=path, image_features=data.features, workers=7, **IMG)
    assert model._image_occurrences == 3 * IMG["epochs"]


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.lists(st.sampled_from(["a", "bb", "img:3", "é", "ccc"]), max_size=6), max_size=20),
       workers=st.integers(1, 9), crlf=st.booleans())
def test_byte_ranges_cover_every_line_once(tmp_path_factory, lines, workers, crlf):
    path = tmp_path_factory.mktemp("ranges") / "c.txt"
    eol = "\r\n" if crlf else "\n"
    path.write_bytes("".join(" ".join(doc) + eol for doc in lines).encode())
    ranges = byte_ranges(str(path), workers)
    assert len(ranges) == workers and ranges[0][0] == 0 and ranges[-1][1] == os.path.getsize(path)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    read = [doc for start, end in ranges for doc in read_documents(str(path), start, end)]
    assert read == [doc for doc in lines if doc]


def test_the_file_is_cut_into_ranges_the_workers_share(synthetic):
    assert n_ranges(10 << 20, 2) == 32  # 16 per worker
    assert n_ranges(200 << 10, 2) == 3  # at least 64 KiB each
    assert n_ranges(100, 4) == 4  # never fewer than the workers
    data, path = synthetic
    model = Im2Vec(image_features=data.features, workers=3, **IMG)
    epoch = CorpusFileEpoch.open(model, path, 0, total_words=1)
    assert len(epoch.ranges) == n_ranges(os.path.getsize(path), 3)
    taken = []
    while (r := epoch.take()) is not None:
        taken.append(r)
    assert taken == epoch.ranges  # in file order: one worker reads the file front to back
    assert CorpusFileEpoch.open(Im2Vec(workers=3), path, 0, total_words=1).ranges == []  # gensim's reader


def test_long_lines_are_chunked_as_line_sentence(tmp_path):
    path = write_docs(tmp_path / "long.txt", [[f"w{i % 7}" for i in range(25_000)]])
    assert [len(d) for d in read_documents(path, 0, os.path.getsize(path))] == [10_000, 10_000, 5_000]


def test_missing_or_compressed_file_is_named(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match=r"nope\.txt.*no such file.*LineSentence format"):
        Im2Vec(corpus_file=missing)
    model = Im2Vec(min_count=1)
    with pytest.raises(FileNotFoundError, match="nope"):
        model.build_vocab(corpus_file=missing)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        model.build_vocab(corpus_file=str(tmp_path))
    packed = tmp_path / "docs.txt.bz2"
    packed.write_bytes(bz2.compress(b"a b c\n"))
    with pytest.raises(TypeError, match=r"compressed.*LineSentence\(path\)"):
        Im2Vec(corpus_file=str(packed))
    with pytest.raises(TypeError, match="not both"):
        model.build_vocab([["a"]], corpus_file=missing)


def test_train_needs_total_words(synthetic):
    data, path = synthetic
    model = Im2Vec(image_features=data.features, **IMG)
    model.build_vocab(corpus_file=path)
    for counts in ({}, {"total_examples": model.corpus_count}):
        with pytest.raises(ValueError, match="needs total_words.*total_words=model.corpus_total_words"):
            model.train(corpus_file=path, epochs=1, **counts)


def test_unknown_image_key_in_the_file_is_an_error(synthetic, tmp_path):
    data, path = synthetic
    bad = write_docs(tmp_path / "bad.txt", [["img:0", "class0"], ["img:zz", "class1"]])
    with pytest.raises(ValueError, match=r"img:zz"):  # no features: at build_vocab
        Im2Vec(corpus_file=bad, image_features=data.features, **IMG)
    # features but not in the vocabulary: at train, naming the line; every worker stops, none hangs
    feats = {**data.features, "img:zz": data.features["img:1"]}
    model = Im2Vec(image_features=feats, workers=2, **IMG)
    model.build_vocab(corpus_file=path)
    errors = []

    def train():
        try:
            model.train(corpus_file=bad, total_words=4, epochs=1)
        except ValueError as err:
            errors.append(err)

    worker = threading.Thread(target=train, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "train() hangs after a worker's error"
    assert len(errors) == 1
    assert "'img:zz' is not in the model's vocabulary" in str(errors[0])
    assert "line at byte 13" in str(errors[0]) and "update=True" in str(errors[0])
    # missing_images="skip": such tokens are left out, as with corpus_iterable
    skip = Im2Vec(image_features=feats, workers=2, missing_images="skip", **IMG)
    skip.build_vocab(corpus_file=path)
    skip.train(corpus_file=bad, total_words=4, epochs=1)
    assert skip._image_occurrences == 1


def test_the_image_check_holds_a_bounded_number_of_tokens_not_1024_long_lines(tmp_path, monkeypatch):
    """read_documents(known=...) holds the documents it reads until it has looked their image tokens up:
    1,024 of them at a time, whatever their length, was up to 1,024 × 10,000 tokens a worker (≈ 650 MB of
    token strings a worker for a file of 10,000-token lines, against one line before the block check).
    The block ends at CHECK_TOKENS tokens too: no more than that (and the line that reaches it) is held."""
    from gensim_im2vec import corpusfile

    monkeypatch.setattr(corpusfile, "CHECK_TOKENS", 1000, raising=False)
    lines = [[f"img:{i}"] + [f"w{i}_{j}" for j in range(199)] for i in range(40)]  # 200 tokens a line
    path = write_docs(tmp_path / "long.txt", lines)
    checks = []
    real = corpusfile._check_image_tokens

    def counted(wanted, *args):
        checks.append(len(wanted))
        return real(wanted, *args)

    monkeypatch.setattr(corpusfile, "_check_image_tokens", counted)
    known = {t: i for i, t in enumerate(t for line in lines for t in line)}
    held: dict[int, int] = {}  # tokens yielded after each check, before the next
    got = []
    for doc in read_documents(path, 0, os.path.getsize(path), known=known, prefix="img:"):
        held[len(checks)] = held.get(len(checks), 0) + len(doc)
        got.append(doc)
    assert got == lines and sum(checks) == 40 * 200  # every line read and every token looked up
    assert max(held.values()) <= 1000 + 200  # the bound and the line that reached it (1,024 lines: all 8,000)


def test_an_epoch_read_by_im2vecs_reader_builds_no_copy_of_the_vocabulary_for_gensims_kernel(synthetic, monkeypatch):
    """gensim's file-mode epoch first copies every key of the vocabulary into a C++ map (CythonVocab) for
    its own kernel: 1.5 s and ≈ 100 MiB an epoch at 1M images, unread when Im2Vec's reader trains a model
    with images. Such an epoch builds none (and still trains and logs its progress); a text-only model,
    which gensim's kernel trains, builds one an epoch as before."""
    import gensim.models.word2vec_corpusfile as gensim_corpusfile

    data, path = synthetic
    built = []
    real = gensim_corpusfile.CythonVocab

    def counted(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gensim_corpusfile, "CythonVocab", counted)
    model = Im2Vec(corpus_file=path, image_features=data.features, workers=2, **IMG)
    assert built == [] and model._image_occurrences > 0
    assert model.most_similar_words("img:0", topn=1)[0][0].startswith("class")
    text = Im2Vec(corpus_file=datapath("lee_background.cor"), vector_size=16, min_count=5, workers=2, epochs=2)
    assert len(built) == 2 and len(text.wv) > 100  # text only: gensim's reader and kernel, one copy an epoch
