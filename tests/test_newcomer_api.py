"""What a newcomer to the API ran into: documents given as strings, features that underflow a
float16 store, bare image keys, and ``indexer=`` on ``most_similar_words``."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gensim_im2vec import Im2Vec

DOCS = [["img:a", "cat", "dog"], ["img:b", "dog", "fish"], ["cat", "fish", "bird"]] * 4
FEATS = {"img:a": np.arange(1, 5, dtype=np.float32), "img:b": np.arange(4, 0, -1).astype(np.float32),
         "img:c": np.array([1, 3, 2, 4], dtype=np.float32)}  # img:c: held out (in no document)
KW = dict(vector_size=8, min_count=1, epochs=1, workers=1, seed=1)
STRINGS = [" ".join(doc) for doc in DOCS]


@pytest.fixture(scope="module")
def model():
    return Im2Vec(DOCS, image_features=FEATS, **KW)


# -- 1. documents given as strings -------------------------------------------------------------


def _said_str(index: int, text: str) -> str:
    return (rf"each document must be a list of tokens \(str\.split\(\) it\), got a str: document {index} of the "
            rf"corpus is '{text}'")


def test_documents_given_as_strings_are_refused_naming_the_first(model):
    # was: ValueError "... document tokens like ['i', 'm', 'g', ':', 'a'] ... without the prefix 'img:'"
    with pytest.raises(TypeError, match=_said_str(0, "img:a cat dog")):
        Im2Vec(STRINGS, image_features=FEATS, **KW)
    before = list(model.wv.index_to_key)
    with pytest.raises(TypeError, match=_said_str(0, "img:a cat dog")):
        model.build_vocab(STRINGS, update=True)  # was: accepted, the characters became words
    assert model.wv.index_to_key == before
    with pytest.raises(TypeError, match=_said_str(0, "img:a cat dog")):
        model.train(STRINGS, total_examples=len(STRINGS), epochs=1)  # was: trained on nothing, silently
    model.train(DOCS, total_examples=len(DOCS), epochs=1)  # the model trains as before


def test_a_text_only_model_keeps_gensims_warning(caplog):
    # without images gensim's behaviour stays (its own suite checks the warning): a str is read as characters
    with caplog.at_level(logging.WARNING, logger="gensim.models.word2vec"):
        Im2Vec([s for s in STRINGS if not s.startswith("img:")], **KW)
    assert "Each 'sentences' item should be a list of words" in caplog.text


class _Corpus:
    """A re-iterable corpus whose third document is a str."""

    def __iter__(self):
        yield from DOCS[:2]
        yield "img:b dog fish " + "word " * 30
        yield from DOCS[3:]


def test_a_corpus_yielding_a_string_names_that_document(model):
    with pytest.raises(TypeError, match=_said_str(2, "img:b dog fish word word .*…") + r"\. Pass \[doc\.split"):
        Im2Vec(_Corpus(), image_features=FEATS, **KW)
    with pytest.raises(TypeError, match=_said_str(2, "img:b dog fish word.*…")):
        model.train(_Corpus(), total_examples=len(DOCS), epochs=1)


def test_bytes_documents_and_a_corpus_given_as_one_string():
    with pytest.raises(TypeError, match=r"got bytes: document 0 of the corpus is b'img:a cat dog'\. Pass "
                                        r"\[doc\.decode\('utf-8'\)\.split\(\)"):
        Im2Vec([s.encode() for s in STRINGS], image_features=FEATS, **KW)
    with pytest.raises(TypeError, match=r"sentences must be an iterable of documents \(each a list of tokens\), got a "
                                        r"str: 'docs\.txt'\. For a text file .* corpus_file='docs\.txt'"):
        Im2Vec("docs.txt", image_features=FEATS, **KW)


# -- 3. bare image keys --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["most_similar_words", "most_similar_images", "most_similar_tags"])
def test_a_bare_image_key_names_the_image_it_may_mean(model, method):
    query = getattr(model, method)
    said = r"Key 'a' not present in vocabulary; did you mean the image 'img:a'\? Image keys carry the prefix 'img:'"
    with pytest.raises(KeyError, match=said):  # was: KeyError "Key 'a' not present in vocabulary"
        query("a", topn=2)
    with pytest.raises(KeyError, match=said):
        query(positive=["dog"], negative=[("a", 0.5)], topn=2)
    with pytest.raises(KeyError, match=r"image 'img:c'\?"):  # held out: in the features, not the vocabulary
        query("c", topn=2)
    assert query("img:c", topn=2)  # (its key answers: projected from its features)
    with pytest.raises(KeyError) as e:
        query("nosuchword", topn=2)
    assert str(e.value) == "\"Key 'nosuchword' not present in vocabulary\""  # gensim's words, nothing to suggest


@pytest.mark.parametrize("written", ["img:{}.jpg", "{}.png", "image:{}", "IMG:{}", "photo:{}.JPG"])
def test_an_image_key_written_as_a_file_or_with_another_prefix_names_the_image(model, written):
    typed = written.format("a")
    # was: gensim's bare KeyError "Key 'img:a.jpg' not present in vocabulary" (the query prompt said which)
    with pytest.raises(KeyError, match=rf"Key '{typed}' not present in vocabulary; did you mean the image 'img:a'\? "
                                       r"Image keys carry the prefix 'img:'"):
        model.most_similar_words(typed, topn=2)
    with pytest.raises(KeyError, match=r"did you mean the image 'img:c'"):  # held out: in the features
        model.most_similar_images(written.format("c"), topn=2)
    with pytest.raises(KeyError) as e:  # no image of that name: gensim's words alone
        model.most_similar_words("img:zebra.jpg", topn=2)
    assert str(e.value) == "\"Key 'img:zebra.jpg' not present in vocabulary\""
    with pytest.raises(KeyError) as e:  # a colon after digits is no prefix ("10:30"): no image meant
        model.most_similar_words("10:a", topn=2)
    assert "did you mean" not in str(e.value)


def test_similar_by_image_given_a_bare_key_names_the_image_and_the_call(model):
    with pytest.raises(TypeError, match=r"got 'a'\..*; 'a' names the model's image 'img:a': query it by its key, "
                                        r"model\.most_similar_words\('img:a'\)"):
        model.similar_by_image("a")
    with pytest.raises(TypeError, match=r"'img:a' names the model's image 'img:a'"):
        model.similar_by_image("img:a")


# -- 4. indexer= ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def indexer(model):
    from gensim_im2vec.index import ModalityIndexer

    try:
        return ModalityIndexer(model)
    except (ImportError, ValueError) as e:  # neither faiss nor annoy
        pytest.skip(f"no ANN backend: {e}")


def test_most_similar_words_takes_an_indexer(model, indexer):
    # was: TypeError: most_similar_words() got an unexpected keyword argument 'indexer'
    exact = model.most_similar_words("img:a", topn=3)
    approx = model.most_similar_words("img:a", topn=3, indexer=indexer)
    assert [k for k, _ in approx] == [k for k, _ in exact]
    np.testing.assert_allclose([s for _, s in approx], [s for _, s in exact], atol=1e-5)
    # any view: its words part answers; the query's keys are left out, as without an index
    assert [k for k, _ in model.most_similar_words("dog", topn=2, indexer=indexer.images)] == \
        [k for k, _ in model.most_similar_words("dog", topn=2)]
    assert [k for k, _ in model.most_similar_images("img:a", topn=2, indexer=indexer)] == \
        [k for k, _ in model.most_similar_images("img:a", topn=2)]
    assert len(model.most_similar_words("img:a", topn=None, indexer=indexer)) == 4  # None: exact, as gensim
    assert model.most_similar_words("img:c", topn=2, indexer=indexer)  # a held-out image: its projection
    with pytest.raises(ValueError, match=r"no tags index .*rebuild it with 'tags'"):
        model.most_similar_tags("img:a", topn=2, indexer=indexer)
    with pytest.raises(KeyError, match=r"did you mean the image 'img:a'"):
        model.most_similar_words("a", topn=2, indexer=indexer)


def test_an_indexer_that_mixes_words_and_images_is_refused(model):
    class Mixed:  # gensim's indexer protocol only (AnnoyIndexer's kind)
        def most_similar(self, vector, num_neighbors):
            return model.wv.similar_by_vector(vector, topn=num_neighbors)

    with pytest.raises(TypeError, match=r"indexer: answering only words takes .*ModalityIndexer.*got Mixed.*"
                                        r"model\.wv\.most_similar\(\.\.\., indexer=indexer\)"):
        model.most_similar_words("img:a", topn=2, indexer=Mixed())


# -- 2. features that underflow a float16 store ---------------------------------------------------


def test_float16_losses_finds_rows_float16_cannot_hold():
    from gensim_im2vec.store import float16_losses

    rng = np.random.default_rng(0)
    normal = rng.random((3, 64), dtype=np.float32) * 10
    tiny = rng.random((3, 64), dtype=np.float32) * 2e-8  # random-init MobileNetV2: ~1e-8, all 0 in float16
    partial = rng.random((1, 64), dtype=np.float32) * 2e-8
    partial[0, 0] = 5e-8  # one value survives: the row's direction is lost all the same
    small_ok = rng.random((1, 64), dtype=np.float32) * 5e-5  # subnormal in float16, yet close (cos > 0.99)
    rows = np.vstack([normal, tiny, partial, small_ok, np.zeros((1, 64), np.float32)])
    assert float16_losses(rows).tolist() == [False] * 3 + [True] * 4 + [False, False]


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("underflow") / "imgs"
    root.mkdir()
    for i, colour in enumerate(("red", "blue")):
        Image.new("RGB", (16, 16), colour).save(root / f"{i}.png")
    return root


def test_an_extraction_whose_rows_underflow_float16_says_so_at_the_end(tiny_images, tmp_path):
    pytest.importorskip("torchvision")
    from gensim_im2vec.features import FeatureExtractor

    fx = FeatureExtractor("mobilenet_v3_small", weights=None, device="cpu", num_workers=0, batch_size=2,
                          progress=False)  # random init: features ~1e-8
    report = fx.extract(tiny_images, tmp_path / "f16")
    assert report.extracted == 2 and report.underflow == 2 and report.underflow_keys == ["img:0", "img:1"]
    assert not report.store.vectors.any()  # (what the check is about: every row all zeros)
    said = report.summary()
    # was: "2 extracted in 0.5s ..., 0 skipped (none); store ... holds 2 rows of dim 576; time: ..."
    assert ("WARNING: 2 of the 2 rows written underflow float16 (the model's values are below 6.1e-05: the stored "
            "rows are all zeros or nearly, e.g. 'img:0', 'img:1'); Im2Vec cannot use them. Extract into a new store "
            "with dtype='float32' (im2vec extract --dtype float32 -o NEW_STORE") in said, said
    report = fx.extract(tiny_images, tmp_path / "f32", dtype="float32")
    assert report.underflow == 0 and "underflow" not in report.summary() and report.store.vectors.any()


def test_an_underflow_is_warned_of_once(tiny_images, tmp_path, caplog):
    """Review 3: one underflow was reported four times at extract (the store writer's "N row(s) became
    all zeros" and "… are all zeros", the extractor's warning and the summary): now the summary and one
    warning. The writer used directly (FeatureStore.create/from_arrays) still warns (test_store.py)."""
    pytest.importorskip("torchvision")
    from gensim_im2vec.features import FeatureExtractor

    fx = FeatureExtractor("mobilenet_v3_small", weights=None, device="cpu", num_workers=0, batch_size=1,
                          progress=False)  # two batches: the writer warned at the first and at close
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec"):
        report = fx.extract(tiny_images, tmp_path / "f16")
    assert report.underflow == 2
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1, said
    assert "2 of the 2 rows written underflow float16" in said[0] and "--dtype float32" in said[0]


def test_im2vec_extract_prints_the_underflow_and_the_fix(tiny_images, tmp_path):
    pytest.importorskip("torchvision")
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    res = CliRunner().invoke(main, ["extract", str(tiny_images), "-o", str(tmp_path / "s"), "--weights", "none",
                                    "--arch", "mobilenet_v3_small", "--device", "cpu", "--num-workers", "0",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 of the 2 rows written underflow float16" in res.output
    assert "im2vec extract --dtype float32 -o NEW_STORE" in res.output
