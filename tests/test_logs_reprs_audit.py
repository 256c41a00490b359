"""What a notebook shows and what the logs say (session h4's audit, "logs measure"): each test is a
repr that said too little, too much or a wrong figure, or a log line that did."""

import logging
import re

import pytest

from gensim_im2vec import Im2Vec
from gensim_im2vec.corpora import (
    FolderCorpus,
    LineDocuments,
    MixedCorpus,
    TableCorpus,
    TextCorpus,
    YFCC100MCorpus,
)
from gensim_im2vec.synthetic import make_corpus

OPTS = dict(vector_size=8, sg=1, min_count=1, epochs=2, workers=1, seed=1)


@pytest.fixture(scope="module")
def data():
    return make_corpus(n_classes=3, n_images=60, n_features=12, seed=0)


def test_the_models_repr_is_its_str_and_says_the_feature_dim_before_build_vocab(data, tmp_path):
    # a notebook cell that ends in `model` showed <gensim_im2vec.model.Im2Vec object at 0x...>, and
    # str() of a model given its features but no vocabulary yet said features=0
    empty = Im2Vec(image_features=data.features, **OPTS)
    assert repr(empty) == str(empty) == "Im2Vec<vocab=0 (0 images), vector_size=8, features=12, alpha=0.025>"
    assert str(Im2Vec(**OPTS)) == "Im2Vec<vocab=0 (0 images), vector_size=8, features=0, alpha=0.025>"
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    assert repr(model) == f"Im2Vec<vocab={len(model.wv)} (60 images), vector_size=8, features=12, alpha=0.025>"
    model.save(str(tmp_path / "m.model"))
    loaded = Im2Vec.load(str(tmp_path / "m.model"), mmap="r")
    assert repr(loaded) == repr(model)


def test_the_corpora_say_what_they_read_and_their_last_pass_in_their_repr(tmp_path):
    # each showed <gensim_im2vec.corpora.FolderCorpus object at 0x...>
    folder = FolderCorpus("tests/data/folder", keys=set(f"img:{i}" for i in range(10**5)), limit=3)
    assert repr(folder) == ("FolderCorpus('tests/data/folder', text_fields=('title', 'description', 'caption', "
                            "'text'), tag_fields=('tags', 'keywords'), keys=<100000 tokens>, limit=3)")
    yfcc = YFCC100MCorpus("tests/data/yfcc25.tsv")
    n = len(list(yfcc))
    assert repr(yfcc) == (f"YFCC100MCorpus('tests/data/yfcc25.tsv', fields=('tags', 'title', 'description'), "
                          f"key='id', layout='auto', last pass: {n} documents, {yfcc.stats.tokens} tokens)")
    table = TableCorpus("tests/data/table.csv", image_column="image", tag_columns=["tags"], exclude={"cat"})
    assert repr(table) == ("TableCorpus('tests/data/table.csv', image_column='image', text_columns=(), "
                           "tag_columns=('tags',), format='csv', exclude=<1 tokens>)")
    docs = tmp_path / "t.txt"
    docs.write_text("a b c\nd e\n")
    text = TextCorpus(str(docs))
    assert repr(text) == f"TextCorpus({str(docs)!r}, max_tokens=10000)"
    mixed = MixedCorpus(text, [["img:1", "b"]] * 1000)
    assert repr(mixed) == f"MixedCorpus(text={text!r}, images=<list of 1000 documents>, ratio=1, until='longest')"
    assert repr(LineDocuments(str(docs), limit=5)) == f"LineDocuments({str(docs)!r}, max_sentence_length=10000, limit=5)"


@pytest.mark.parametrize("workers", [1, 2])
def test_each_epochs_line_splits_its_tokens_into_image_occurrences_and_words(data, caplog, workers):
    # gensim's "EPOCH 0: training on 480 raw words (480 effective words)" counted the image tokens
    # as words, and no line said how many images an epoch trained
    n_img = sum(d[0].startswith("img:") for d in data.docs)
    tokens = sum(len(d) for d in data.docs)
    with caplog.at_level(logging.INFO):
        Im2Vec(data.docs, image_features=data.features, **{**OPTS, "sample": 0, "workers": workers})
    # each epoch's end line; not gensim's "EPOCH 0 - PROGRESS: ..." lines, which come when a job's report
    # arrives a second (report_delay) or more after the epoch began: on a loaded machine, not here
    epochs = [r.getMessage() for r in caplog.records if re.match(r"EPOCH \d+: ", r.getMessage())]
    assert len(epochs) == 2, caplog.text
    for i, line in enumerate(epochs):
        assert line.startswith(f"EPOCH {i}: training on {tokens} raw tokens ({tokens} effective: {n_img} image "
                               f"occurrences and {tokens - n_img} words) took "), line
        assert line.endswith(" effective tokens/s"), line


def test_the_downsampling_estimate_is_of_the_thresholds_the_words_train_with(caplog):
    # gensim's "downsampling leaves estimated 3604.35 word corpus (36.1%% of prior 9985)" was of a
    # threshold without the images' occurrences; the words then trained with one that counts them:
    # 4032 expected, 4019-4099 trained an epoch
    import re
    from collections import Counter

    import numpy as np

    data = make_corpus(n_classes=10, n_images=2000, seed=0)
    with caplog.at_level(logging.INFO):
        model = Im2Vec(image_features=data.features, **{**OPTS, "sample": 1e-3})
        model.build_vocab(data.docs)
    said = [r.getMessage() for r in caplog.records if "downsampl" in r.getMessage() and "lifecycle" in r.getMessage()]
    assert len(said) == 1 and "downsampling leaves estimated" not in said[0], said
    got = re.search(r"the images' (\d+) occurrences counted in the total\) leaves an estimated (\d+) of the (\d+) "
                    r"word occurrences \(([0-9.]+)%; (\d+) words downsampled\)", said[0])
    assert got, said[0]
    words = Counter(t for d in data.docs for t in d if not t.startswith("img:"))
    keep = np.array([model.wv.get_vecattr(w, "sample_int") / 2**32 for w in words])
    counts = np.array(list(words.values()), dtype=np.float64)
    assert int(got[1]) == 2000 and int(got[3]) == counts.sum() == 9985
    assert abs(int(got[2]) - (keep * counts).sum()) <= 1  # 4032
    assert int(got[5]) == int((keep < 1 - 1e-6).sum())


def test_the_train_event_says_vector_size_where_gensim_said_features(data, caplog):
    # "Im2Vec training: ... vector_size=8, features=12" then gensim's "training model with 1 workers
    # on 117 vocabulary and 8 features": the same word for the image features and the vectors' size
    with caplog.at_level(logging.INFO):
        model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    said = [r.getMessage() for r in caplog.records if "training model with" in r.getMessage()]
    assert len(said) == 1 and f"on {len(model.wv)} vocabulary and vector_size=8, using sg=1" in said[0], said
    recorded = [e["msg"] for e in model.lifecycle_events if e.get("msg", "").startswith("training model with")]
    assert len(recorded) == 1 and "vector_size=8," in recorded[0] and "features" not in recorded[0], recorded


def test_what_the_space_costs_is_said_once_with_the_space_steps_worker_time(data, caplog):
    # two lines said it: "space: feature mean 0.00s (3.5% of train), space step 0.0s of worker time
    # (10% of 1 worker(s) x 0.0s)" and then "space: 0.00s of train()'s 0.03s ... the space step (10%
    # of the epochs' 0.0s): the feature mean 0.00s, ...", where the share was of 2 workers' time
    import re

    with caplog.at_level(logging.INFO, logger="gensim_im2vec.model"):
        model = Im2Vec(data.docs, image_features=data.features, **{**OPTS, "workers": 2})
    said = [r.getMessage() for r in caplog.records if "space step" in r.getMessage() or "feature mean" in r.getMessage()]
    assert len(said) == 1, said
    got = re.search(r"the space step \((\d+)% of the epochs' ([0-9.]+)s x 2 worker\(s\): ([0-9.]+)s of worker time\): "
                    r"the feature mean and plans ([0-9.]+)s", said[0])
    assert got, said[0]
    assert int(got[1]) == round(100 * model.space_step_share)
    assert float(got[3]) == pytest.approx(model.space_step_share * float(got[2]) * 2, abs=0.01)


def test_save_and_load_name_the_saved_files_not_each_private_attribute(data, caplog, tmp_path):
    # a save logged "not storing attribute _epoch" and 15 more private names, a load "setting ignored
    # attribute _epoch to None" and 15 more, and the only "saved" line named the temporary file
    import glob
    import os

    from gensim_im2vec.fileio import format_bytes

    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    path = str(tmp_path / "m.model")
    with caplog.at_level(logging.INFO):
        model.save(path)
        Im2Vec.load(path, mmap="r")
    said = [r.getMessage() for r in caplog.records]
    private = [m for m in said if m.startswith(("not storing attribute _", "setting ignored attribute _"))]
    assert not private, private
    assert "not storing attribute cum_table" in said  # (gensim's own: as a Word2Vec's save says)
    files = [path, *glob.glob(path + ".*")]
    done = [m for m in said if m.startswith(f"saved {path} ")]
    assert len(done) == 1, said
    assert done[0].startswith(f"saved {path} and {len(files) - 1} array file(s) beside it, "
                              f"{format_bytes(sum(os.path.getsize(f) for f in files))} in all ("), done


def test_a_plain_gensim_model_saved_in_the_same_process_still_says_its_ignored_attributes(data, caplog, tmp_path):
    # the filter that keeps Im2Vec's private names out of gensim.utils's lines was on that logger for the whole
    # process from import on: a Word2Vec saved with ignore=["_epoch"] (a name Im2Vec also leaves out) lost its
    # "not storing attribute _epoch" and its load "setting ignored attribute _epoch to None"
    import threading

    from gensim.models import Word2Vec

    lines = ["not storing attribute _epoch", "setting ignored attribute _epoch to None"]
    w2v = Word2Vec([d[1:] for d in data.docs], vector_size=8, min_count=1, epochs=1, workers=1)
    w2v._epoch = 3
    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    with caplog.at_level(logging.INFO):
        w2v.save(str(tmp_path / "w.model"), ignore=["_epoch"])
        Word2Vec.load(str(tmp_path / "w.model"))
    said = [r.getMessage() for r in caplog.records]
    assert all(line in said for line in lines), said
    caplog.clear()
    with caplog.at_level(logging.INFO):
        model.save(str(tmp_path / "m.model"))  # (Im2Vec's own still quiet)
        saving = threading.Thread(target=model.save, args=(str(tmp_path / "m2.model"),))
        saving.start()  # an Im2Vec saved in another thread quiets only its own lines
        w2v.save(str(tmp_path / "w2.model"), ignore=["_epoch"])
        saving.join()
    said = [r.getMessage() for r in caplog.records]
    assert said.count("not storing attribute _epoch") == 1, said


def test_the_disk_space_check_says_disk_space_in_units_and_no_zero_for_the_neighbours(data, tmp_path, monkeypatch,
                                                                                         caplog):
    # "space: saving the model to m.model needs at least 292992 bytes (and up to 0 more for the
    # neighbours), 74425184256 free in ...": "space:" was also the joint space's lines' prefix
    import shutil

    from gensim_im2vec.checkpoint import SpaceCheck, saved_bytes
    from gensim_im2vec.fileio import format_bytes

    model = Im2Vec(image_features=data.features, **OPTS)
    model.build_vocab(data.docs)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=5 << 30))
    with caplog.at_level(logging.INFO, logger="gensim_im2vec.checkpoint"):
        SpaceCheck(tmp_path / "m.model").check(model)
    need = format_bytes(sum(saved_bytes(model).values()))
    said = [r.getMessage() for r in caplog.records if r.name == "gensim_im2vec.checkpoint"]  # (not build_vocab's,
    assert said == [f"disk space: saving the model to {tmp_path / 'm.model'} needs at least {need}, "  # which an
                    f"5.0 GiB free in {tmp_path}"], said  # earlier test's root level may let through)


def test_the_normalizers_repr_gives_the_settings_that_differ_not_every_stop_word():
    # Normalizer() printed 1984 characters, 179 stop words and 26 junk words among them
    from gensim_im2vec.text import Normalizer

    assert repr(Normalizer()) == "Normalizer()"
    assert repr(Normalizer.for_text()) == "Normalizer(stopwords=None, junk=None, track_vocab=False)"
    custom = Normalizer(lowercase=False, stopwords=frozenset({"the", "a"}), junk=frozenset(map(str, range(20))))
    assert repr(custom) == "Normalizer(lowercase=False, stopwords=['a', 'the'], junk=<20 words>)"


def test_the_evaluation_reports_repr_is_one_line_and_a_notebook_shows_its_table(data):
    # a notebook cell ending in run_evaluation(...) printed the dataclass: every metric of every row
    from gensim_im2vec.evaluate import run_evaluation

    model = Im2Vec(data.docs, image_features=data.features, **OPTS)
    report = run_evaluation(model, data.test_features[:10], [[f"class{c}"] for c in data.test_labels[:10]],
                            data.class_words)
    first = report.rows[0].metrics["all"]
    assert repr(report) == (f"EvaluationReport(10 test images, 3 candidates, {len(report.rows)} methods, "
                            f"{report.rows[0].method}: P@1 {first['p@1']:.3f} mAP {first['map']:.3f}; "
                            f"print() it for the table)")

    class Printer:  # (IPython's pretty printer, as far as _repr_pretty_ uses it)
        def __init__(self):
            self.said = []

        def text(self, s):
            self.said.append(s)

    p = Printer()
    report._repr_pretty_(p, False)
    assert p.said == [str(report)] and str(report).startswith("Image → tag on 10 held-out images, 3 candidate tags")


def test_the_space_checks_repr_gives_its_output_and_last_measure_and_never_raises(data, tmp_path, monkeypatch):
    # was: <gensim_im2vec.checkpoint.SpaceCheck object at 0x7f...>, in a notebook holding the callback
    import shutil

    from gensim_im2vec.checkpoint import SpaceCheck, saved_bytes
    from gensim_im2vec.fileio import format_bytes

    out = str(tmp_path / "m.model")
    check = SpaceCheck(out, checkpoint=str(tmp_path / "m.ckpt"))
    assert repr(check) == f"SpaceCheck(output={out!r}, checkpoint={str(tmp_path / 'm.ckpt')!r}, not checked yet)"
    model = Im2Vec(image_features=data.features, **OPTS)
    model.build_vocab(data.docs)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=5 << 30))
    plain = SpaceCheck(out)
    plain.check(model)
    need = format_bytes(sum(saved_bytes(model).values()))
    assert repr(plain) == f"SpaceCheck(output={out!r}, last check: needs {need}, 5.0 GiB free)"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(total=0))  # a file system of no size
    plain.check(model)
    assert repr(plain) == f"SpaceCheck(output={out!r}, last check: needs {need}, free space not told)"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    small = SpaceCheck(out + ".gz")  # (compressed: said, not refused)
    small.check(model)
    assert repr(small) == f"SpaceCheck(output={out + '.gz'!r}, last check: needs {need}, 1000 B free, may not fit)"
    plain.need = "lots"  # set by hand: the repr still answers
    assert repr(plain).startswith("<SpaceCheck at 0x")


def test_the_repr_of_a_model_not_fully_made_does_not_raise():
    # __repr__ was __str__, which reads attributes a model gets in __init__: repr(Im2Vec.__new__(Im2Vec))
    # raised AttributeError (a debugger, a traceback's locals, a notebook showed that instead of the object)
    text = repr(Im2Vec.__new__(Im2Vec))
    assert text.startswith("<Im2Vec (not fully made) at 0x"), text
