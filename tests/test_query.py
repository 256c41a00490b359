"""`im2vec query`: the interactive prompt driven by scripted input (words, keys, a path, unknowns, EXIT).

Every table is checked against gensim's own answer in the one space (``model.wv``)."""

import io
import re

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.query import (
    PROMPT,
    QuerySession,
    extractor_settings,
    make_featurizer,
    query_loop,
)
from gensim_im2vec.synthetic import make_corpus


@pytest.fixture(scope="module")
def trained(query_model):
    return query_model


def _tables(text, title):
    """Rows (key, kind, score) of the table headed `title` in one answer (left or right column)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(rf"(?:^|\s\s){re.escape(title)}(?:\s\s|$)", line)
        if m:
            col = line.index(title, m.start())
            rows = []
            for row in lines[i + 4:]:
                part = row[col:].strip() if len(row) > col else ""
                m = re.match(r"^(\S+)\s+(word|image)\s+(-?\d+\.\d+)", part)
                if not m:
                    break
                rows.append((m.group(1), m.group(2), float(m.group(3))))
            return rows
    raise AssertionError(f"no table {title!r} in:\n{text}")


def _same(rows, pairs, atol=2e-6):
    """A printed table (6 decimals) lists exactly `pairs` (key, cosine), in their order."""
    assert [k for k, _, _ in rows] == [k for k, _ in pairs], (rows, pairs)
    np.testing.assert_allclose([s for _, _, s in rows], [s for _, s in pairs], atol=atol)


def _cosine_ranking(model, vector, words):
    """`words` by cosine to `vector`, best first, computed with numpy alone."""
    v = np.asarray(vector, dtype=np.float64)
    U = np.stack([model.wv.vectors[model.wv.key_to_index[w]] for w in words]).astype(np.float64)
    cos = U @ v / (np.linalg.norm(U, axis=1) * np.linalg.norm(v))
    return [(words[i], float(cos[i])) for i in np.argsort(-cos, kind="stable")]


def test_scripted_session(trained):
    model, store, root, _, unseen = trained
    own = root / "imgs" / "red" / "2.png"
    script = "\n".join([
        "red",                 # a word
        "img:green/1",         # an image key
        "blue/3",              # an image key without its prefix
        str(own),              # a file: its own training image
        str(unseen),           # a file never seen
        "nosuchword",          # unknown: one line, the loop goes on
        str(root / "missing.jpg"),
        "",                    # empty line: ignored
        "EXIT",
        "green",               # after EXIT: never read
    ]) + "\n"
    out = io.StringIO()
    # on CPU as the store was made: CUDA's default bf16 autocast finds the image at cosine 0.9999
    n = query_loop(model, io.StringIO(script), out, topn=5, extractor_options={"device": "cpu"})
    text = out.getvalue()
    assert n == 5
    assert text.count(PROMPT) == 9  # one per line read, up to and including EXIT
    assert "Out of dictionary word: nosuchword\n" in text
    assert f"Not in the vocabulary and no such image file: {root / 'missing.jpg'}" in text
    assert "Word: green" not in text

    answers = text.split(PROMPT)
    word = answers[1]
    assert word.startswith("red\nWord: red")
    mixed = _tables(word, "Nearest words and images")
    assert len(mixed) == 5 and {k for k, _, _ in mixed} <= set(model.wv.key_to_index)
    scores = [s for _, _, s in mixed]
    assert scores == sorted(scores, reverse=True)
    words, images = _tables(word, "Nearest words"), _tables(word, "Nearest images")
    assert all(kind == "word" for _, kind, _ in words) and all(kind == "image" for _, kind, _ in images)
    assert {k for k, _, _ in words} >= {"warm", "fire"}  # co-occurring tags
    assert all(k.startswith("img:red/") for k, _, _ in images)

    # an image key: gensim's own answers in the one space, no trained-score table
    key = answers[2]
    assert "Image: img:green/1" in key
    assert "trained score" not in key and "Given words" not in key
    _same(_tables(key, "Nearest words and images"), model.wv.most_similar("img:green/1", topn=5))
    everything = model.wv.most_similar("img:green/1", topn=len(model.wv))
    # an image's words are the tags (the words of the image documents): the same cosine, filtered
    assert "Nearest words\n" not in key
    _same(_tables(key, "Nearest tags"), [(k, s) for k, s in everything if k in model.image_tag_counts][:5])
    _same(_tables(key, "Nearest images"), [(k, s) for k, s in everything if model.is_image(k)][:5])
    assert {t for t, _, _ in _tables(key, "Nearest tags")[:3]} == {"green", "grass", "leaf"}  # its own tags
    assert "Image: img:blue/3" in answers[3]

    own_answer = answers[4]
    assert "Image file:" in own_answer and "Cannot" not in own_answer
    top_image, kind, cos = _tables(own_answer, "Nearest images")[0]
    assert (top_image, kind) == ("img:red/2", "image") and cos >= 0.99999  # found itself from the pixels
    assert {t for t, _, _ in _tables(own_answer, "Nearest tags")[:3]} == {"red", "warm", "fire"}
    # the file's tags are its stored twin's tags: project(features) and wv["img:red/2"] are one function
    # (the features re-extracted from the pixels match the float16 store to ~1e-3)
    _same(_tables(own_answer, "Nearest tags"), model.most_similar_tags("img:red/2", topn=5), atol=5e-3)
    assert "Image file:" in answers[5] and len(_tables(answers[5], "Nearest images")) == 5


def test_featurizer_rebuilt_from_metadata_matches_the_store(trained):
    model, store, root, _, _ = trained
    assert extractor_settings(model.image_features_metadata) == {
        "arch": "resnet18", "weights": None, "layer": "penultimate", "seed": 0}
    feat = make_featurizer(model.image_features_metadata, device="cpu")(root / "imgs" / "blue" / "4.png")
    np.testing.assert_allclose(feat, store.get_vector("img:blue/4").astype(np.float32), rtol=2e-3, atol=2e-3)


def test_eof_ends_and_factory_is_called_once(trained):
    model, _, root, _, unseen = trained
    calls = []

    def factory(meta):
        calls.append(meta["arch"])
        return lambda path: np.asarray(model.features.vectors[0], dtype=np.float32)

    out = io.StringIO()
    n = query_loop(model, io.StringIO(f"{unseen}\n{unseen}\n"), out, topn=2, featurizer_factory=factory)
    assert n == 2 and calls == ["resnet18"] and out.getvalue().endswith(PROMPT + "\n")


def test_image_paths_without_extractor_metadata_say_why(tmp_path):
    data = make_corpus(n_classes=3, n_images=60, n_features=8, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=8, min_count=1, epochs=1, workers=1)
    img = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(img)
    out = io.StringIO()
    n = query_loop(model, io.StringIO(f"{img}\nclass0\n"), out, topn=3)
    assert n == 1
    assert "Cannot extract features for image files: the model's features carry no extractor metadata" in out.getvalue()


def test_sum_of_tokens(trained):
    model, *_ = trained
    s = QuerySession(model, topn=3)
    text = s.answer("img:red/1 -red blue")
    assert text.startswith("Sum: img:red/1 + blue - red")
    positive, negative = ["img:red/1", "blue"], ["red"]
    _same(_tables(text, "Nearest words and images"), model.wv.most_similar(positive=positive, negative=negative, topn=3))
    _same(_tables(text, "Nearest words"), model.most_similar_words(positive=positive, negative=negative, topn=3))
    _same(_tables(text, "Nearest images"), model.most_similar_images(positive=positive, negative=negative, topn=3))
    assert s.answer("red nosuch") == "Out of dictionary word: nosuch"
    with pytest.raises(ValueError, match="topn"):
        QuerySession(model, topn=0)


def test_pca_store_needed(trained):
    model, *_ = trained
    meta = dict(model.image_features_metadata, pca={"n_components": 4})
    with pytest.raises(ValueError, match="--store"):
        make_featurizer(meta)


def test_weights_none_means_random_weights_as_extract_says(trained):
    """`im2vec query --weights none` (random weights, as `im2vec extract --weights none` writes
    them) was refused with "use one of ..., or None", which a shell cannot type."""
    model, *_ = trained
    fz = make_featurizer(model.image_features_metadata, device="cpu", weights="none")
    assert fz.extractor.weights is None and fz.dim == model.W.shape[1]
    assert make_featurizer(model.image_features_metadata, device="cpu", weights="None").extractor.weights is None


def test_cli_query(trained):
    _, _, root, path, unseen = trained
    res = CliRunner().invoke(main, ["query", str(path), "--topn", "3", "--device", "cpu"],
                             input=f"red\n{unseen}\nqwerty\nEXIT\n")
    assert res.exit_code == 0, res.output
    assert "Word: red" in res.output and "Image file:" in res.output
    assert "Out of dictionary word: qwerty" in res.output


def test_given_words_ranked_by_cosine_in_the_space(tmp_path):
    """--zero-shot-words: exactly the given words, by cosine to the image, as numpy computes it."""
    from gensim.models import Word2Vec

    data = make_corpus(n_classes=4, n_images=400, n_features=32, n_related=2, n_text_sentences=1500, seed=2)
    unseen = sorted(f"class{c}_r1" for c in range(4))  # tags that only the text knows
    text = [d for d in data.docs if not d[0].startswith("img:")]
    images = [[w for w in d if w not in unseen] for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=10, workers=1, seed=1)
    model = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=images, epochs=15, sample=0,
                                 image_alpha=4.0)
    session = QuerySession(model, topn=3, zero_shot_words=[*unseen, unseen[0]])  # a duplicate counts once
    own_first = 0
    for doc in images[:40]:
        key, cls = doc[0], doc[1]  # "img:<i>", "class<c>"
        answer = session.answer(key)
        listed = _tables(answer, "Given words ranked by cosine (3 of 4)")
        assert all(kind == "word" for _, kind, _ in listed)
        _same(listed, _cosine_ranking(model, model.wv[key], unseen)[:3])
        own_first += listed[0][0] == f"{cls}_r1"
    assert own_first >= 24, own_first  # its class's text-only tag first far above chance (1 in 4)
    # a file's features rank the same words through model.project, like its stored vector
    feats = np.asarray(data.features[images[0][0]], dtype=np.float32)
    (tmp_path / "x.png").write_bytes(b"")  # the factory below never opens it
    answer = QuerySession(model, topn=4, zero_shot_words=unseen,
                          featurizer_factory=lambda meta: lambda path: feats).answer(str(tmp_path / "x.png"))
    _same(_tables(answer, "Given words ranked by cosine (4 of 4)"), _cosine_ranking(model, model.project(feats), unseen))
    # a word not in the model is named at once; an image key is not a word
    with pytest.raises(KeyError, match="nosuchword"):
        QuerySession(model, zero_shot_words=["class0_r1", "nosuchword"])
    with pytest.raises(KeyError, match="img:0"):
        QuerySession(model, zero_shot_words=["class0_r1", "img:0"])
    # no given words: no such table
    assert "Given words" not in QuerySession(model, topn=3).answer(images[0][0])


def test_cli_query_zero_shot_words(trained, tmp_path):
    _, _, _, path, _ = trained
    words = tmp_path / "zs.txt"
    words.write_text("sea\nfire\n\n")
    res = CliRunner().invoke(main, ["query", str(path), "--topn", "3", "--zero-shot-words", str(words)],
                             input="img:red/1\nEXIT\n")
    assert res.exit_code == 0, res.output
    listed = _tables(res.output, "Given words ranked by cosine (2 of 2)")
    assert {w for w, _, _ in listed} == {"sea", "fire"} and listed[0][0] == "fire"  # a red image: fire first
    model, *_ = trained
    _same(listed, _cosine_ranking(model, model.wv["img:red/1"], ["sea", "fire"]))
    words.write_text("sea\nqwerty\n")
    res = CliRunner().invoke(main, ["query", str(path), "--zero-shot-words", str(words)], input="EXIT\n")
    assert res.exit_code != 0 and "qwerty" in res.output and "1 of 2" in res.output


def test_a_path_with_a_space_that_names_no_image_is_said_to_be_one(trained, tmp_path):
    """An unquoted folder path with a space was read as a sum of words ("Out of dictionary word:
    /tmp/my"); a mistyped file path the same ("Out of dictionary word: pics/missing.png")."""
    model, *_ = trained
    s = QuerySession(model, topn=3)
    (tmp_path / "my pics").mkdir()
    assert s.answer(str(tmp_path / "my pics")) == f"{tmp_path / 'my pics'} is a folder; give an image file in it"
    assert s.answer("my pics/missing.png") == "Not in the vocabulary and no such image file: my pics/missing.png"
    assert s.answer("red nosuch") == "Out of dictionary word: nosuch"  # words are still a sum
    assert s.answer("img:red/1 -red").startswith("Sum: img:red/1 - red")  # an image key with a '/' too
