"""Two-stage from pretrained word vectors alone: ``Im2Vec.from_word2vec(KeyedVectors)`` (GoogleNews's
or fastText's file read by ``KeyedVectors.load_word2vec_format``, which has no output weights), and
``im2vec train --pretrained`` given such a file."""

from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import KeyedVectors, Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(sample=0, window=3, image_batch=16, space_negatives=10, workers=1, seed=3)


@pytest.fixture(scope="module")
def corpus():
    data = make_corpus(n_classes=4, n_images=300, n_features=24, n_text_sentences=1200, seed=2)
    text = [d for d in data.docs if not d[0].startswith("img:")]
    image_docs = [d + [f"fresh{data.labels[d[0]]}"] for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=10, workers=1, seed=1)
    return data, image_docs, w2v


def _class_margin(model, data, n=60):
    """Mean over training images of cos(image, its class word) − cos(image, the other class words)."""
    out = []
    for i in range(n):
        key = f"img:{i}"
        sims = model.wv.cosine_similarities(model.wv[key], model.wv[data.class_words])
        own = data.labels[key]
        out.append(sims[own] - np.delete(sims, own).mean())
    return float(np.mean(out))


def test_vectors_alone_start_the_output_weights_at_zero_and_keep_the_words(corpus, tmp_path):
    """From a word2vec-format file (no counts, no output weights): the text's words stay frozen bit
    for bit, the output weights learn from zero on the image documents, the tags the file lacks
    (fresh0..3) learn, and the images land by their class words about as well as from the Word2Vec."""
    data, image_docs, w2v = corpus
    w2v.wv.save_word2vec_format(str(tmp_path / "vectors.bin"), binary=True)
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "vectors.bin"), binary=True)
    model = Im2Vec.from_word2vec(kv, image_features=data.features, sentences=image_docs, epochs=6, min_count=1,
                                 sg=1, **OPTS)
    assert model.train_words == "new" and model.n_pretrained_words == len(kv)
    assert np.array_equal(model.wv.vectors[: len(kv)], kv.vectors)
    # the output weights: zero before training, as gensim starts them; learned for the tags
    assert not Im2Vec.from_word2vec(kv, image_features=data.features).syn1neg.any()
    tags = [model.wv.key_to_index[w] for d in image_docs for w in d[1:]]
    assert (np.abs(model.syn1neg[tags]).sum(axis=1) > 0).all()
    # counts: Zipf's law from the file's order in place of the rank gensim's loader makes up (the last
    # word at min_count), then the image documents' added
    assert np.array_equal(kv.expandos["count"], np.arange(len(kv), 0, -1))
    on_images = Counter(w for d in image_docs for w in d[1:])
    for r in (0, 1, 2, len(kv) - 1):
        word = kv.index_to_key[r]
        assert model.wv.get_vecattr(word, "count") == round(len(kv) / (r + 1)) + on_images[word], word
    for w in ("fresh0", "fresh1"):
        assert w in model.wv and not np.allclose(model.wv[w], 0)
    from_w2v = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=image_docs, epochs=6,
                                    min_count=1, **OPTS)
    margin, reference = _class_margin(model, data), _class_margin(from_w2v, data)
    assert margin > 0.2 and margin > 0.7 * reference, (margin, reference)
    # a fresh tag sits by its own class's images
    sims = [model.wv.similarity(f"img:{i}", f"fresh{data.labels[f'img:{i}']}") for i in range(40)]
    other = [model.wv.similarity(f"img:{i}", f"fresh{(data.labels[f'img:{i}'] + 1) % 4}") for i in range(40)]
    assert np.mean(sims) > np.mean(other) + 0.1


def test_vectors_alone_keep_every_text_word_and_train_again_after_a_save(corpus, tmp_path):
    """The text's words are never downsampled away (no real counts to do it by: every occurrence
    kept), the model saves and loads as any Im2Vec, and a later train() still leaves the text's
    words where they were."""
    data, image_docs, w2v = corpus
    kv = w2v.wv
    model = Im2Vec.from_word2vec(kv, image_features=data.features, sentences=image_docs, epochs=2, min_count=1,
                                 **{**OPTS, "sample": 1e-3})
    assert (model.wv.expandos["sample_int"][: len(kv)][
        [model.wv.key_to_index[w] for w in kv.index_to_key if w not in {x for d in image_docs for x in d}]]
        == np.iinfo(np.uint32).max).all()
    on_images = Counter(w for d in image_docs for w in d[1:])
    assert all(model.wv.get_vecattr(w, "count") == kv.get_vecattr(w, "count") + on_images[w]
               for w in kv.index_to_key)  # real counts (a Word2Vec's wv) are kept
    model.save(str(tmp_path / "m.model"))
    loaded = Im2Vec.load(str(tmp_path / "m.model"))
    loaded.train(image_docs, total_examples=len(image_docs), epochs=1)
    assert np.array_equal(loaded.wv.vectors[: len(kv)], kv.vectors)


def test_the_callers_vectors_are_not_touched(corpus, tmp_path):
    """Image documents that bring no new word (GoogleNews-sized vocabularies) add their counts in
    place, in gensim's build_vocab: not into the caller's KeyedVectors, whose counts an int64
    array (as load_word2vec_format makes them) would otherwise share."""
    data, image_docs, w2v = corpus
    w2v.wv.save_word2vec_format(str(tmp_path / "v.txt"))
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"))
    counts, vectors = kv.expandos["count"].copy(), kv.vectors.copy()
    docs = [[w for w in d if w in kv.key_to_index or w.startswith("img:")] for d in image_docs]  # no new word
    for seed in (1, 2):
        model = Im2Vec.from_word2vec(kv, image_features=data.features, sentences=docs, epochs=1, min_count=1,
                                     **{**OPTS, "seed": seed})
        assert model.wv.get_vecattr("class0", "count") > counts[kv.key_to_index["class0"]]
    assert np.array_equal(kv.expandos["count"], counts) and np.array_equal(kv.vectors, vectors)


def test_without_an_image_prefix_the_vectors_are_not_taken_for_images(corpus):
    """image_prefix="" (images known by their features alone): the check for image keys among the
    pretrained words, by prefix, does not apply."""
    data, image_docs, w2v = corpus
    features = {k[4:]: v for k, v in data.features.items()}
    docs = [[d[0][4:], *d[1:]] for d in image_docs]
    model = Im2Vec.from_word2vec(w2v.wv, image_features=features, sentences=docs, epochs=1, min_count=1,
                                 image_prefix="", **OPTS)
    assert len(model.image_keys) == len(docs) and model.n_pretrained_words == len(w2v.wv)


def test_vectors_alone_refuse_what_would_go_wrong(corpus):
    data, image_docs, w2v = corpus
    with pytest.raises(ValueError, match=r"vector_size=8 contradicts the KeyedVectors' vector_size=16"):
        Im2Vec.from_word2vec(w2v.wv, image_features=data.features, vector_size=8)
    with pytest.raises(ValueError, match=r"the KeyedVectors hold no word"):
        Im2Vec.from_word2vec(KeyedVectors(16), image_features=data.features)
    images = KeyedVectors(4)
    images.add_vectors(["cat", "img:a"], np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match=r"hold image keys \(\['img:a'\]"):
        Im2Vec.from_word2vec(images, image_features=data.features)
    model = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=image_docs, epochs=1, min_count=1,
                                 **OPTS)
    with pytest.raises(TypeError, match=r"hold image keys"):  # an Im2Vec's wv (gensim's KeyedVectors)
        Im2Vec.from_word2vec(model.wv, image_features=data.features)
    with pytest.raises(TypeError, match=r"a gensim Word2Vec model or KeyedVectors, got dict"):
        Im2Vec.from_word2vec({}, image_features=data.features)


@pytest.mark.parametrize("name,binary", [("vectors.bin", True), ("vectors.vec", False), ("vectors.txt.gz", False),
                                         ("vectors.kv", None), ("model.bin", "model"), ("cc.bin", "fasttext")])
def test_cli_pretrained_takes_word_vectors_alone(corpus, tmp_path, name, binary):
    """`im2vec train --pretrained` takes word2vec's file format by its suffix (.bin binary; .txt /
    .vec text) and a KeyedVectors saved by gensim, as well as a Word2Vec."""
    from gensim_im2vec.cli import main
    from gensim_im2vec.store import FeatureStore

    data, image_docs, w2v = corpus
    path = tmp_path / name
    if binary is None:
        w2v.wv.save(str(path))
    elif binary == "model":  # a Word2Vec saved by gensim under a word2vec suffix: read as what it is
        w2v.save(str(path))
    elif binary == "fasttext":  # fastText's own binary (cc.en.300.bin): vectors and character n-grams
        from gensim.models.fasttext import FastText, save_facebook_model

        w2v = FastText([d for d in data.docs if not d[0].startswith("img:")], vector_size=16, sg=1, min_count=1,
                       epochs=1, workers=1, seed=1)
        save_facebook_model(w2v, str(path))
    else:
        w2v.wv.save_word2vec_format(str(path), binary=binary)
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(" ".join(d) + "\n" for d in image_docs))
    keys = sorted(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    out = tmp_path / "m.model"
    result = CliRunner().invoke(main, ["train", str(docs), "-f", str(tmp_path / "store"), "-o", str(out),
                                       "--pretrained", str(path), "--epochs", "1", "--min-count", "1",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    model = Im2Vec.load(str(out))
    assert model.n_pretrained_words == len(w2v.wv) and "fresh0" in model.wv
    assert np.allclose(model.wv.vectors[: len(w2v.wv)], w2v.wv.vectors, atol=1e-6)
    if binary == "fasttext":  # read by fastText's own reader: the n-grams the new tags start from came along
        from gensim.models.fasttext import FastTextKeyedVectors

        from gensim_im2vec.cli import _load_pretrained

        loaded = _load_pretrained(str(path))
        assert isinstance(loaded, FastTextKeyedVectors) and loaded.bucket > 0
        assert np.allclose(loaded["fresh0"], w2v.wv["fresh0"], atol=1e-6)  # a word it never saw, composed


@pytest.mark.parametrize("name,content", [("vectors.txt", b"not a header\n"), ("vectors.bin.gz", b"not gzip\n"),
                                          ("vectors.bin", b"2 3\na 0.5 0.25 1\nb 1 2 3\n"),  # text, named binary
                                          ("vectors.bin", None),  # the same, long enough to read as numbers
                                          ("vectors.vec", b"3000000000000 300\n"),  # a damaged header
                                          ("cc.bin.gz", "fasttext-gz"), ("cc.bin", "fasttext-cut")])
def test_cli_pretrained_names_a_file_it_cannot_read(tmp_path, corpus, name, content):
    from gensim_im2vec.cli import main
    from gensim_im2vec.store import FeatureStore

    data, image_docs, w2v = corpus
    bad = tmp_path / name
    if content is None:
        w2v.wv.save_word2vec_format(str(bad), binary=False)
    elif isinstance(content, str):  # fastText's own binary, gzipped (gensim cannot read it so) or cut short
        import gzip

        from gensim.models.fasttext import FastText, save_facebook_model

        ft = FastText([d[1:] for d in image_docs[:50]], vector_size=8, min_count=1, epochs=1, workers=1, bucket=1000)
        save_facebook_model(ft, str(tmp_path / "whole.bin"))
        raw = (tmp_path / "whole.bin").read_bytes()
        bad.write_bytes(gzip.compress(raw) if content == "fasttext-gz" else raw[: len(raw) // 2])
    else:
        bad.write_bytes(content)
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(" ".join(d) + "\n" for d in image_docs))
    keys = sorted(data.features)
    FeatureStore.from_arrays(tmp_path / "store", keys, np.stack([data.features[k] for k in keys]))
    result = CliRunner().invoke(main, ["train", str(docs), "-f", str(tmp_path / "store"), "-o", str(tmp_path / "m"),
                                       "--pretrained", str(bad)])
    assert result.exit_code != 0
    said = " ".join(result.output.split())
    assert f"{name}' is not a saved model, nor word vectors in word2vec's" in said \
        or (content is None and "word2vec's" in said) or (content == "fasttext-gz" and "Decompress it first" in said) \
        or (content == "fasttext-cut" and "starts as fastText's own binary format but does not read" in said), said
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    if content is None:
        assert "not finite or far too large" in result.output and "probably in the other format" in result.output
    if name == "vectors.vec":
        assert "asks for more vectors than memory holds" in result.output


def test_a_word2vec_without_negative_sampling_starts_from_its_vectors(corpus):
    """A Word2Vec trained with hierarchical softmax has no syn1neg to continue: the error says so and
    points at its vectors alone, which start the model."""
    data, image_docs, _ = corpus
    hs = Word2Vec([d[1:] for d in image_docs], vector_size=16, hs=1, negative=0, min_count=1, epochs=1, workers=1)
    with pytest.raises(ValueError, match=r"negative=0. Retrain it with hs=0, negative=5, or give its word vectors "
                                         r"alone \(w2v.wv"):
        Im2Vec.from_word2vec(hs, image_features=data.features)
    model = Im2Vec.from_word2vec(hs.wv, image_features=data.features, sentences=image_docs, epochs=1, min_count=1,
                                 **OPTS)
    assert model.hs == 0 and model.negative > 0 and np.array_equal(model.wv.vectors[: len(hs.wv)], hs.wv.vectors)


def test_the_readmes_recipe_fixes_the_words_a_binary_file_has(corpus, tmp_path):
    """README, "Pretrained vectors without their Word2Vec": a vocabulary of one's own corpus, the
    words a binary word2vec file has copied in and locked (gensim's intersect_word2vec_format
    cannot read a binary file under NumPy 2); they stay bit for bit, the corpus's other words learn."""
    data, image_docs, w2v = corpus
    w2v.wv.save_word2vec_format(str(tmp_path / "vectors.bin.gz"), binary=True)
    model = Im2Vec(vector_size=16, image_features=data.features, min_count=1, **OPTS)
    model.build_vocab(image_docs)
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "vectors.bin.gz"), binary=True)
    shared = [w for w in model.wv.index_to_key if w in kv.key_to_index]
    rows = [model.wv.key_to_index[w] for w in shared]
    model.wv.vectors[rows] = kv[shared]
    model.wv.vectors_lockf = np.ones(len(model.wv), dtype=np.float32)
    model.wv.vectors_lockf[rows] = 0.0
    fresh = model.wv["fresh0"].copy()
    model.train(image_docs, total_examples=model.corpus_count, epochs=6)
    assert shared and np.array_equal(model.wv[shared], kv[shared])
    assert "fresh0" not in kv and not np.array_equal(model.wv["fresh0"], fresh)
    assert _class_margin(model, data) > 0.1  # (chance: 0) the images by their class words


def test_a_word_listed_twice_in_the_file_leaves_no_keyless_row(corpus, tmp_path):
    """gensim's load_word2vec_format keeps the first of a word listed twice and leaves an empty row
    without a key at the end (index_to_key holds None, its counts are made up and end at 0): the
    model leaves that row out, and still takes the counts for made up."""
    data, image_docs, w2v = corpus
    words = w2v.wv.index_to_key[:6]
    lines = [f"{w} " + " ".join(f"{x:.4f}" for x in w2v.wv[w]) for w in [*words, words[1]]]
    (tmp_path / "dup.txt").write_text(f"{len(lines)} {w2v.vector_size}\n" + "\n".join(lines) + "\n")
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "dup.txt"))
    assert kv.index_to_key[-1] is None  # (gensim's doing)
    model = Im2Vec.from_word2vec(kv, image_features=data.features, min_count=1, **OPTS)
    assert model.wv.index_to_key == words and model.n_pretrained_words == 6 and len(model.wv.vectors) == 6
    assert model.wv.expandos["count"].tolist() == [6, 3, 2, 2, 1, 1]  # Zipf's law, the last at min_count=1
    assert np.array_equal(model.wv.vectors, kv.vectors[:6])


def test_fasttext_vectors_start_the_new_tags_from_their_ngrams(corpus):
    """fastText's KeyedVectors (load_facebook_vectors, or a FastText model's wv) compose a vector for
    a word they never saw from its character n-grams: the tags the text lacks start there, where
    gensim starts a new word at random; the images and the text's words are not touched."""
    from gensim.models.fasttext import FastText

    data, image_docs, _ = corpus
    text = [d for d in data.docs if not d[0].startswith("img:")]
    ft = FastText(text, vector_size=16, sg=1, min_count=1, epochs=2, workers=1, seed=1, min_n=3, max_n=5)
    docs = [d + [f"{d[1]}x"] for d in image_docs]  # "class0x": unseen, but made of class0's n-grams
    still = dict(train_words=False, space_word_alpha=0.0)  # (nothing moves a new word: its start is kept)
    model = Im2Vec.from_word2vec(ft.wv, image_features=data.features, sentences=docs, epochs=1, min_count=1,
                                 **{**OPTS, **still})
    new = [w for w in model.word_keys[model.n_pretrained_words:]]
    assert "class0x" in new and "class0x" not in ft.wv.key_to_index
    assert np.allclose(model.wv[new], ft.wv[new])
    assert np.array_equal(model.wv.vectors[: len(ft.wv)], ft.wv.vectors)
    assert ft.wv.similarity("class0x", "class0") > 0.5  # (n-grams shared: a start near its word)
    assert model.is_image("img:0") and np.allclose(model.wv["img:0"], model.project(data.features["img:0"]), atol=1e-5)
    whole = Im2Vec.from_word2vec(ft, image_features=data.features, sentences=docs, epochs=1, min_count=1,
                                 **{**OPTS, **still})  # the FastText model itself (a Word2Vec): the same starts
    assert np.allclose(whole.wv[new], ft.wv[new])
    plain = KeyedVectors(16)
    plain.add_vectors(ft.wv.index_to_key, ft.wv.vectors)
    random_start = Im2Vec.from_word2vec(plain, image_features=data.features, sentences=docs, epochs=1, min_count=1,
                                        **{**OPTS, **still})
    assert not np.allclose(random_start.wv["class0x"], ft.wv["class0x"])


@pytest.mark.parametrize("source", ["word2vec", "vectors"])
def test_the_model_never_shares_the_callers_arrays(corpus, source):
    """from_word2vec copies the caller's vectors and output weights once (with sentences, the
    vocabulary's growth is that copy): whether or not sentences add rows, and when the words learn
    (train_words=True), the caller's arrays stay as they were."""
    data, image_docs, w2v = corpus
    given = w2v if source == "word2vec" else w2v.wv
    before = w2v.wv.vectors.copy(), w2v.syn1neg.copy()
    text_only = [d for d in data.docs if not d[0].startswith("img:")][:50]  # known words only: no rows added
    for sentences, images in ((None, data.features), (text_only, None), (image_docs, data.features)):
        model = Im2Vec.from_word2vec(given, image_features=images, sentences=sentences, epochs=1, min_count=1,
                                     train_words=True, **OPTS)
        assert not np.may_share_memory(model.wv.vectors, w2v.wv.vectors)
        assert not np.may_share_memory(model.syn1neg, w2v.wv.vectors)
        assert not np.may_share_memory(model.syn1neg, w2v.syn1neg)
        if sentences is not None:
            assert not np.array_equal(model.wv.vectors[: len(w2v.wv)], before[0])  # the words learned
    np.testing.assert_array_equal(w2v.wv.vectors, before[0])
    np.testing.assert_array_equal(w2v.syn1neg, before[1])
