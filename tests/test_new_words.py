"""space_calibrate_new_words: in two-stage, a tag the text model did not have is moved by the space
step alone, along image vectors; on the demo such tags ended nearer to every image than the text's
tags are. After training each gets the pretrained tags' share of its norm in the images' main
directions (`Im2Vec._calibrate_new_words`)."""

import numpy as np
import pytest
from gensim.models import Word2Vec

from gensim_im2vec import Im2Vec
from gensim_im2vec.space import principal_directions
from gensim_im2vec.synthetic import make_corpus


@pytest.fixture(scope="module")
def corpus():
    data = make_corpus(n_classes=4, n_images=400, n_features=32, n_related=2, n_text_sentences=1500, seed=2)
    text = [d for d in data.docs if not d[0].startswith("img:")]
    # a tag the text never saw, on every class-1 image: the space step alone places it
    image_docs = [d + ["unseen1"] if "class1" in d else d for d in data.docs if d[0].startswith("img:")]
    w2v = Word2Vec(text, vector_size=16, sg=1, min_count=1, epochs=10, workers=1, seed=1)
    return data, image_docs, w2v


def _train(corpus, **kwargs):
    """Two-stage with the new words placed by the space step alone (``train_words=False``), the
    only training the calibration applies to."""
    data, image_docs, w2v = corpus
    return Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=image_docs, epochs=8, sample=0,
                                workers=1, train_words=False, **kwargs)


def _shares(model, word="unseen1"):
    """`word`'s and the pretrained tags' mean share of their unit vectors in the images' top
    vector_size // 4 principal directions."""
    images = np.flatnonzero(model._vocab_image_rows >= 0)
    top = principal_directions(model.wv.vectors, model.layer1_size // 4, rows=images)
    U = model.wv.get_normed_vectors()
    share = lambda i: float(np.sum((U[i] @ top) ** 2))  # noqa: E731
    pretrained = [i for i in model._tag_rows() if i < model.n_pretrained_words]
    return share(model.wv.key_to_index[word]), float(np.mean([share(i) for i in pretrained]))


def _labels(data):
    return data.labels  # {image key: its class}


def _among_the_images(model, data):
    """`unseen1` where the demo's tags without a text vector ended: along the images (here the
    mean of its class-1 images' rows), at its own norm."""
    i = model.wv.key_to_index["unseen1"]
    mine = [model.wv.key_to_index[k] for k, c in _labels(data).items() if c == 1]
    v = model.wv.vectors[mine].mean(axis=0)
    model.wv.vectors[i] = v / np.linalg.norm(v) * np.linalg.norm(model.wv.vectors[i])
    model.wv.norms = None


def test_a_tag_among_the_images_gets_the_pretrained_tags_share(corpus):
    m = _train(corpus, space_calibrate_new_words=False)
    _among_the_images(m, corpus[0])
    before, reference = _shares(m)
    assert before > 2 * reference  # the case it is for
    kept = {k: np.array(m.wv[k]) for k in m.wv.index_to_key if k != "unseen1"}
    old = np.array(m.wv["unseen1"])
    img = [k for k in m.wv.index_to_key if m.is_image(k)]
    c_before = m.wv.distances("unseen1", img)
    m.space_calibrate_new_words = True
    m._calibrate_new_words(m.n_pretrained_words)  # as the train() that moved the words after the text's
    after, reference_after = _shares(m)
    assert reference_after == pytest.approx(reference)  # the images and the pretrained tags are as they were
    assert after == pytest.approx(reference, rel=1e-4)
    for k, v in kept.items():
        np.testing.assert_array_equal(m.wv[k], v)
    assert np.linalg.norm(m.wv["unseen1"]) == pytest.approx(np.linalg.norm(old), rel=1e-5)
    # its cosines to the images shrink, and the images it ranks first are still its own (class 1):
    # an image's cosine to it changes by about one factor where the images live in few directions
    c_after = m.wv.distances("unseen1", img)
    assert np.mean(np.abs(1 - c_after)) < 0.8 * np.mean(np.abs(1 - c_before))
    labels = _labels(corpus[0])
    own = lambda d: np.mean([labels[img[j]] == 1 for j in np.argsort(d, kind="stable")[:50]])  # noqa: E731
    assert own(c_before) >= 0.9 and own(c_after) >= 0.9
    # once it holds the pretrained tags' share, another call leaves it
    again = np.array(m.wv["unseen1"])
    m._calibrate_new_words(m.n_pretrained_words)
    np.testing.assert_array_equal(m.wv["unseen1"], again)


def test_a_later_train_leaves_the_words_an_earlier_one_placed(corpus):
    """Two-stage keeps every trained word frozen in later train() calls; the calibration too (it
    calibrated them again, each time with another random direction, until a review found it)."""
    data, image_docs, _ = corpus
    m = _train(corpus, space_calibrate_new_words=False)
    _among_the_images(m, data)  # more of it along the images than the pretrained tags
    m.space_calibrate_new_words = True
    placed = np.array(m.wv["unseen1"])
    m.train(image_docs, total_examples=len(image_docs), epochs=1)
    np.testing.assert_array_equal(m.wv["unseen1"], placed)
    more = [d + ["unseen2"] if "class2" in d else d for d in image_docs]
    m.build_vocab(more, update=True)
    m.train(more, total_examples=len(more), epochs=1)
    np.testing.assert_array_equal(m.wv["unseen1"], placed)
    assert "unseen2" in m.wv.key_to_index


def test_training_calls_it_in_two_stage_and_changes_nothing_else(corpus, monkeypatch):
    """Off by default (the two-stage demo turns it on); after the epochs it runs once a train()
    (two-stage); the text's words, W and the images' rows are those of the same training without
    it, bit for bit."""
    _, _, w2v = corpus
    calls = []
    real = Im2Vec._calibrate_new_words

    def spy(self, moved_from):
        calls.append((self.space_calibrate_new_words, moved_from))
        return real(self, moved_from)

    monkeypatch.setattr(Im2Vec, "_calibrate_new_words", spy)
    on = _train(corpus, space_calibrate_new_words=True)
    off = _train(corpus)
    n = len(w2v.wv)  # the words after the text's: this train() moved them
    assert calls == [(True, n), (False, n)] and off.space_calibrate_new_words is False  # the default
    for w in w2v.wv.index_to_key:
        np.testing.assert_array_equal(on.wv[w], off.wv[w])
    np.testing.assert_array_equal(on.W, off.W)
    img = [on.wv.key_to_index[k] for k in on.wv.index_to_key if on.is_image(k)]
    np.testing.assert_array_equal(on.wv.vectors[img], off.wv.vectors[img])


def test_joint_training_is_left_alone(corpus):
    data, image_docs, _ = corpus
    text = [d for d in data.docs if not d[0].startswith("img:")]
    kw = dict(image_features=data.features, vector_size=16, sg=1, min_count=1, epochs=3, sample=0, workers=1, seed=1)
    a = Im2Vec(text + image_docs, space_calibrate_new_words=False, **kw)
    b = Im2Vec(text + image_docs, **kw)  # joint: every word trains on the text too
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)


def test_calibration_with_words_that_learn_is_refused_naming_the_fix(corpus):
    """The calibration is for words only the space step placed (train_words=False): asked for with
    words that learn by skip-gram (joint's True, from_word2vec's default "new") it would do nothing,
    so it is refused, naming train_words=False; with it, it runs."""
    data, image_docs, w2v = corpus
    for make in (lambda: Im2Vec(space_calibrate_new_words=True),
                 lambda: Im2Vec.from_word2vec(w2v, image_features=data.features, space_calibrate_new_words=True),
                 lambda: Im2Vec.from_word2vec(w2v, image_features=data.features, train_words="new",
                                              space_calibrate_new_words=True)):
        with pytest.raises(ValueError, match="train_words=False") as err:
            make()
        assert "space_calibrate_new_words" in str(err.value)
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, train_words=False, space_calibrate_new_words=True)
    assert m.train_words is False and m.space_calibrate_new_words is True


def test_the_option_is_checked_and_saved(corpus, tmp_path):
    with pytest.raises(ValueError, match="space_calibrate_new_words must be True or False"):
        Im2Vec(space_calibrate_new_words="yes")
    m = _train(corpus, space_calibrate_new_words=False)
    m.save(str(tmp_path / "m.model"))
    assert Im2Vec.load(str(tmp_path / "m.model")).space_calibrate_new_words is False
    m.space_calibrate_new_words = True
    del m.__dict__["space_calibrate_new_words"]  # a model saved before the option: trained without it
    m.save(str(tmp_path / "old.model"))
    assert Im2Vec.load(str(tmp_path / "old.model")).space_calibrate_new_words is False


def test_no_word_moved_no_word_calibrated(corpus):
    """With space_word_alpha=0 the space step moves no word: the new ones keep gensim's random
    start, which says nothing about the images, and the calibration leaves them."""
    m = _train(corpus, space_word_alpha=0.0)
    _among_the_images(m, corpus[0])
    before = np.array(m.wv["unseen1"])
    m._calibrate_new_words(m.n_pretrained_words)
    np.testing.assert_array_equal(m.wv["unseen1"], before)


def test_blocks_change_nothing(corpus, monkeypatch):
    """The words are calibrated a block at a time (no float64 copy of millions of tags): with
    blocks of one word the vectors are the same bit for bit."""
    import copy

    import gensim_im2vec.model as model_module

    data, image_docs, w2v = corpus
    docs = [d + ["unseen2"] if "class2" in d else d for d in image_docs]
    m = Im2Vec.from_word2vec(w2v, image_features=data.features, sentences=docs, epochs=8, sample=0, workers=1,
                             train_words=False, space_calibrate_new_words=False)
    _among_the_images(m, data)
    j = m.wv.key_to_index["unseen2"]  # the other one along the class-2 images
    mine = [m.wv.key_to_index[k] for k, c in data.labels.items() if c == 2]
    m.wv.vectors[j] = m.wv.vectors[mine].mean(axis=0)
    m.space_calibrate_new_words = True
    whole, blocks = copy.deepcopy(m), copy.deepcopy(m)
    whole._calibrate_new_words(m.n_pretrained_words)
    monkeypatch.setattr(model_module, "DIRECTIONS_BLOCK", 1)
    blocks._calibrate_new_words(m.n_pretrained_words)
    for w in ("unseen1", "unseen2"):
        assert not np.array_equal(whole.wv[w], m.wv[w])  # both were calibrated
        np.testing.assert_array_equal(blocks.wv[w], whole.wv[w])


def test_many_new_tags_draw_a_warning_with_the_measured_harm(corpus, caplog, monkeypatch):
    """The calibration is for a few tags without a text vector: above CALIBRATION_MAX_SHARE of the
    tags it warns (on the demo it harmed with 7.8% and 21% of them), naming the share and
    train_words='new'; below it, nothing."""
    import logging

    import gensim_im2vec.model as model_module

    m = _train(corpus, space_calibrate_new_words=False)
    tags = m._tag_rows()
    share = 1 / len(tags)  # one tag of them, "unseen1", has no text vector
    m.space_calibrate_new_words = True
    with caplog.at_level(logging.WARNING, logger="gensim_im2vec.model"):
        monkeypatch.setattr(model_module, "CALIBRATION_MAX_SHARE", share * 1.5)
        m._calibrate_new_words(m.n_pretrained_words)
        assert "space_calibrate_new_words" not in caplog.text
        monkeypatch.setattr(model_module, "CALIBRATION_MAX_SHARE", share / 2)
        m._calibrate_new_words(m.n_pretrained_words)
    assert f"1 of the {len(tags)} tags" in caplog.text and "train_words='new'" in caplog.text
