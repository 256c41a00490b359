"""The Python API against its own docstrings: each test is a documented claim that the code did not
keep (a limit stated but not checked, an argument form the hint allows that went wrong)."""

from __future__ import annotations

import numpy as np
import pytest

from gensim_im2vec import report


@pytest.mark.parametrize("size", [0, -5, 4, 2.5, "64"])
def test_make_thumbnail_refuses_a_size_it_documents_as_too_small(tmp_path, size):
    """``size : int, longest side in pixels (>= 8)``: 0, negative or a str returned False, the
    answer for an unreadable `src`, and 2.5 wrote a 2-pixel thumbnail."""
    pytest.importorskip("PIL")
    from PIL import Image

    src = tmp_path / "a.png"
    Image.new("RGB", (32, 16)).save(src)
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        report.make_thumbnail(src, tmp_path / "t.jpg", size=size)
    assert not (tmp_path / "t.jpg").exists()
    assert report.make_thumbnail(src, tmp_path / "t.jpg", size=8)
    with Image.open(tmp_path / "t.jpg") as im:
        assert im.size == (8, 4)


def test_merge_stores_names_one_store_given_instead_of_a_sequence(tmp_path):
    """``sources : sequence of str, os.PathLike or FeatureStore``: one store given alone was read as
    its path's characters ("no feature store at '/'"), its keys ("no feature store at 'img:1'") or
    refused as "'PosixPath' object is not iterable"."""
    from gensim_im2vec.distributed import merge_stores
    from gensim_im2vec.store import FeatureStore

    vectors = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    a = FeatureStore.from_arrays(tmp_path / "a", ["img:1", "img:2"], vectors)
    for one in (str(tmp_path / "a"), tmp_path / "a", a):
        with pytest.raises(TypeError, match=r"give a list, e\.g\. merge_stores\(target, \[source\]\)"):
            merge_stores(tmp_path / "m", one)
        assert not (tmp_path / "m").exists()
    assert merge_stores(tmp_path / "m", [tmp_path / "a"]).keys == ["img:1", "img:2"]


def test_merge_stores_takes_stores_naming_one_layer_by_its_module_and_its_node(tmp_path):
    """A store of ``--layer layer4`` (recorded "layer4 (layer4.1.relu_1)") and one of ``--layer
    layer4.1.relu_1`` hold the same features; merge_stores refused them as "made with different
    settings", as a store's extension did."""
    from gensim_im2vec.distributed import merge_stores
    from gensim_im2vec.store import FeatureStore, StoreMismatchError

    rng = np.random.default_rng(0)
    meta = {"arch": "resnet18", "weights": "none (random init, seed=0)"}
    a = FeatureStore.from_arrays(tmp_path / "a", ["img:1"], rng.random((1, 4), dtype=np.float32),
                                 metadata={**meta, "layer": "layer4 (layer4.1.relu_1)"})
    b = FeatureStore.from_arrays(tmp_path / "b", ["img:2"], rng.random((1, 4), dtype=np.float32),
                                 metadata={**meta, "layer": "layer4.1.relu_1"})
    assert merge_stores(tmp_path / "m", [a, b]).keys == ["img:1", "img:2"]
    c = FeatureStore.from_arrays(tmp_path / "c", ["img:3"], rng.random((1, 4), dtype=np.float32),
                                 metadata={**meta, "layer": "layer3 (layer3.1.relu_1)"})
    with pytest.raises(StoreMismatchError, match=r"layer: a has 'layer4 \(layer4\.1\.relu_1\)', c has"):
        merge_stores(tmp_path / "n", [a, c])


def test_candidates_or_zero_shot_given_as_one_str_is_named():
    """``candidates : sequence of str``, ``zero_shot : iterable of str``: one tag given as a str was
    read as its letters, silently: candidates "class0" scored p@1 NaN (no image carries 'c', 'l', ...)
    and zero_shot "class0" added five one-letter zero-shot tags, whose metrics were NaN."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.evaluate import Im2VecScorer, evaluate_image_tagging, run_evaluation
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=4, n_images=80, n_features=16, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=16, min_count=1, epochs=2,
                   sample=0, workers=1, seed=1)
    tags = [[f"class{c}"] for c in data.test_labels[:8]]
    scorer = Im2VecScorer(model)
    with pytest.raises(TypeError, match=r"candidates is the str 'class0', .*candidates=\['class0'\]"):
        evaluate_image_tagging(scorer, data.test_features[:8], tags, "class0")
    with pytest.raises(TypeError, match=r"zero_shot is the str 'class0', .*give a list"):
        evaluate_image_tagging(scorer, data.test_features[:8], tags, data.class_words, zero_shot="class0")
    with pytest.raises(TypeError, match=r"zero_shot is the str 'class3', .*give a list"):
        run_evaluation(model, data.test_features[:8], tags, data.class_words, zero_shot="class3",
                       baselines=("random",), word_similarity=False, n_in_sample=0)
    result = evaluate_image_tagging(scorer, data.test_features[:8], tags, data.class_words, zero_shot=["class3"])
    assert result["all"]["n_candidates"] == 4 and result["zero_shot"]["n_tags"] == 1


def test_corpus_keys_or_exclude_given_as_one_str_is_named(tmp_path):
    """``keys``/``exclude : container of str``: a str is one, of its substrings, so exclude="dog" also
    dropped the words "do" and "g", and keys="img:xy" kept the image img:x, silently."""
    from PIL import Image

    from gensim_im2vec.corpora import FolderCorpus, TextCorpus

    (tmp_path / "a.txt").write_text("the dog and do go\n", encoding="utf-8")
    with pytest.raises(TypeError, match=r"exclude is the str 'dog'.*exclude=\['dog'\]"):
        TextCorpus(tmp_path / "a.txt", exclude="dog")
    assert list(TextCorpus(tmp_path / "a.txt", exclude={"dog"})) == [["the", "and", "do", "go"]]
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    (tmp_path / "x.json").write_text('{"tags": ["dog", "cat"]}', encoding="utf-8")
    with pytest.raises(TypeError, match=r"keys is the str 'img:xy'"):
        FolderCorpus(tmp_path, keys="img:xy")
    with pytest.raises(TypeError, match=r"exclude is the str 'dog'"):
        FolderCorpus(tmp_path, exclude="dog")
    assert list(FolderCorpus(tmp_path, keys={"img:xy"})) == []
    assert list(FolderCorpus(tmp_path, keys={"img:x"}, exclude={"dog"})) == [["img:x", "cat"]]


def test_report_and_query_words_given_as_one_str_are_named(tmp_path):
    """``words``/``test_keys``/``zero_shot_words : sequence of str``: write_report(words="class0") showed
    the nearest images of the words 'c', 'l', 'a', 's', '0' (none: an empty section), test_keys="img:t0"
    was "6 test_keys", and the query prompt's zero-shot words were "the model does not have ['c', 'l', ...]"."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.query import QuerySession
    from gensim_im2vec.report import write_report
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=3, n_images=30, n_features=8, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=8, min_count=1, epochs=1, workers=1)
    with pytest.raises(TypeError, match=r"words is the str 'class0'.*words=\['class0'\]"):
        write_report(model, tmp_path / "r", words="class0", map_words=0, map_images=0)
    with pytest.raises(TypeError, match=r"test_keys is the str 'img:t0'"):
        write_report(model, tmp_path / "r", test_keys="img:t0", test_features=data.test_features[:1])
    assert not (tmp_path / "r").exists()
    with pytest.raises(TypeError, match=r"zero_shot_words is the str 'class0'"):
        QuerySession(model, zero_shot_words="class0")
    page = write_report(model, tmp_path / "r", words=["class0"], map_words=0, map_images=0).read_text()
    assert "class0" in page


def test_normalizer_stopwords_as_one_str_and_a_bad_cache_size_are_named():
    """``stopwords``/``junk : frozenset of str``: stopwords="the" became {'t', 'h', 'e'}, so "the"
    stayed, silently; ``cache_size : int`` (0 disables): None failed at the first word with a bare
    TypeError ('<' between int and NoneType), -1 was taken."""
    from gensim_im2vec.text import Normalizer

    with pytest.raises(TypeError, match=r"stopwords is the str 'the'.*stopwords=\['the'\]"):
        Normalizer(stopwords="the")
    with pytest.raises(TypeError, match=r"junk is the str 'flickr'"):
        Normalizer(junk="flickr")
    for size in (None, -1, 2.5):
        with pytest.raises(ValueError, match="cache_size must be an int >= 0"):
            Normalizer(cache_size=size)
    assert Normalizer(stopwords=["the"], cache_size=0).text("the cat sat") == ["cat", "sat"]


def test_an_empty_str_is_still_the_empty_collection(tmp_path):
    """The one-str checks above are for a str read as its characters; the empty str has none, and was
    (and is) the empty collection: no stop word, no word excluded, no zero-shot word. Refused, its
    message said to give stopwords=[''], a list of the empty word."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.corpora import TextCorpus
    from gensim_im2vec.query import QuerySession
    from gensim_im2vec.synthetic import make_corpus
    from gensim_im2vec.text import Normalizer

    assert Normalizer(stopwords="", junk="").text("the cat sat") == ["the", "cat", "sat"]
    (tmp_path / "a.txt").write_text("the dog and do go\n", encoding="utf-8")
    assert list(TextCorpus(tmp_path / "a.txt", exclude="")) == list(TextCorpus(tmp_path / "a.txt"))
    data = make_corpus(n_classes=3, n_images=30, n_features=8, seed=0)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=8, min_count=1, epochs=1, workers=1)
    assert QuerySession(model, zero_shot_words="").zero_shot_words == []
