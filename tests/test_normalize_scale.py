"""`im2vec normalize` at YFCC100M scale: the distinct-token counts stop at a cap (memory grew with
every distinct raw token: ~160 bytes each, 455 MB for 2.4M), a removed token counts under one reason
(the report said "removed 16" with reasons adding to 17), and a photo id on several lines is counted
and warned about (it passed silently, and training merged two photos' tags onto one image). Each
test fails on the code before its fix."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gensim_im2vec import corpora, text
from gensim_im2vec.cli import main
from gensim_im2vec.corpora import KeyRepeats, YFCC100MCorpus
from gensim_im2vec.text import Normalizer


def _row(photo_id: str, title: str = "", tags: str = "", photo_hash: str = "h") -> str:
    """One line of the 25-column YFCC100M layout (line number, id, hash, then YFCC_COLUMNS)."""
    cols = ["0", photo_id, photo_hash, "1@N00", "u", "2012", "1331500000", "", title, "", tags,
            *[""] * 12, "jpg", "0"]
    assert len(cols) == 25
    return "\t".join(cols) + "\n"


def _normalize(tmp_path, lines, *args):
    src = tmp_path / "yfcc.tsv"
    src.write_text("".join(lines), encoding="utf-8")
    out, report = tmp_path / "docs.txt", tmp_path / "report.json"
    result = CliRunner().invoke(main, ["normalize", str(src), "-o", str(out), "--report", str(report), *args])
    assert result.exit_code == 0, result.output
    return result, out.read_text(encoding="utf-8").splitlines(), json.loads(report.read_text())


# ------------------------------------------------------------------ 1. bounded distinct-token counts
def test_the_vocabulary_sets_stop_growing_at_the_cap(monkeypatch):
    monkeypatch.setattr(text, "VOCAB_TRACK_LIMIT", 5)
    norm = Normalizer()
    assert norm.tags([f"tag{chr(97 + i)}x" for i in range(3)]) == ["tagax", "tagbx", "tagcx"]
    assert norm.stats.vocab_complete and len(norm.stats.raw_vocab) == 3
    assert "3 distinct raw tokens" in norm.stats.summary() and "at least" not in norm.stats.summary()
    norm.tags([f"word{chr(97 + i)}" for i in range(10)] + ["unsorted"])
    norm.text("more words here than the cap allows")
    st = norm.stats
    assert len(st.raw_vocab) == 5 and len(st.output_vocab) == 5 and st.removed_vocab == set()
    assert not st.vocab_complete and st.vocab_raw_tokens == 5
    assert st.raw_tokens == 3 + 11 + 7 and st.removed_tokens == 1 + 4  # the other counts go on
    norm.tags(["yet", "another", "tag"])
    assert len(st.raw_vocab) == 5 and len(st.output_vocab) == 5  # stopped for good
    line = st.summary()
    assert "at least 5 distinct raw tokens (stopped counting at 5 to bound memory, after 5 raw tokens" in line
    assert "5 of 5 distinct" not in line
    d = st.as_dict()
    assert d["raw_vocab"] == 5 and d["vocab_complete"] is False and d["vocab_raw_tokens"] == 5
    st.reset()
    assert st.vocab_complete and st.raw_vocab == set() and st.vocab_raw_tokens == 0


def test_the_cap_on_the_output_vocabulary_also_stops_the_counts(monkeypatch):
    """Free text gives several output tokens for one raw token: the output set is capped too."""
    monkeypatch.setattr(text, "VOCAB_TRACK_LIMIT", 4)
    norm = Normalizer()
    norm.text("alpha,beta,gamma,delta,epsilon zeta")
    assert len(norm.stats.raw_vocab) == 1 and len(norm.stats.output_vocab) == 5
    assert not norm.stats.vocab_complete and norm.stats.vocab_raw_tokens == 1


def test_normalize_reports_at_least_when_the_count_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "VOCAB_TRACK_LIMIT", 6)
    lines = [_row(str(1000 + i), tags=f"tag{chr(97 + i)}a,tag{chr(97 + i)}b") for i in range(5)]
    result, docs, report = _normalize(tmp_path, lines)
    assert len(docs) == 5
    assert "at least 6 distinct raw tokens (stopped counting at 6 to bound memory" in " ".join(result.output.split())
    assert report["normalizer"]["raw_vocab"] == 6 and report["normalizer"]["vocab_complete"] is False
    assert report["normalizer"]["raw_tokens"] == 10


# ------------------------------------------------------------------ 2. one reason per removed token
def test_a_removed_token_counts_under_the_first_rule_that_dropped_it():
    norm = Normalizer()
    assert norm.text("IMG_1234.JPG") == []
    assert norm.stats.removed_tokens == 1 and norm.stats.reasons == {"camera": 1}
    assert norm.stats.examples == {"camera": ["img_1234.jpg"]}


@pytest.mark.parametrize("multiword", ["join", "split"])
def test_the_reasons_add_up_to_the_tokens_removed(multiword):
    norm = Normalizer(multiword=multiword)
    norm.tags("dog,new+york,dsc_1234,DSCN2010.JPG,geo:lat=40.7,the,a,+,%2C,2012,unsorted,hash(0x885c2bc),"
              "no+parking+on+either+side+of+the+road+at+any+time+2010,http://x.com/a,img_2009_12_11,nyc_2010,"
              "the+unsorted,photo+2010,0123456789abcdef,x")
    norm.text("My dog at the beach IMG_1234.JPG head1 by the2 a, %2C %20 2012 photo.jpg www.x.com dsc01234 "
              "geo:lat=1 the+unsorted sxsw2009 0x885c2bc")
    st = norm.stats
    assert st.removed_tokens > 10
    assert sum(st.reasons.values()) == st.removed_tokens, (st.reasons, st.removed_tokens)
    assert set(st.examples) == set(st.reasons)
    assert st.trimmed["file_stem"] == 2  # head1, sxsw2009: the word kept, the number cut off
    assert "file_stem" not in st.reasons
    assert st.as_dict()["trimmed"] == dict(st.trimmed)


def test_the_yfcc_sample_report_adds_up(tmp_path):
    lines = [_row("1", "My+dog%2C+Rex IMG_1234.JPG", "dog,new+york,dsc_1234,DSCN2010.JPG,unsorted"),
             _row("2", "sunset over the sea", "sunset,sea,+,,%2C,2012,d700,nikon,geo:lat=40.7")]
    result, docs, report = _normalize(tmp_path, lines)
    n = report["normalizer"]
    assert sum(n["reasons"].values()) == n["removed_tokens"] > 0
    assert "removed by reason (the first rule that dropped each)" in " ".join(result.output.split())


# ------------------------------------------------------------------ 3. repeated image keys
def test_a_photo_id_on_several_lines_is_counted_and_warned_about(tmp_path):
    lines = [_row("1000001", "dog"), _row("1000002", "cat"), _row("1000001", "duplicate id title", "cat"),
             _row("1000003", "bird"), _row("1000001", "third copy", "dog"), _row("1000003", "bird again")]
    result, docs, report = _normalize(tmp_path, lines)
    assert [d.split()[0] for d in docs] == ["img:1000001", "img:1000002", "img:1000001", "img:1000003",
                                          "img:1000001", "img:1000003"]  # kept, written as they are
    keys = report["image_keys"]
    assert keys["keys"] == 6 and keys["duplicate_key"] == 3 and keys["repeated_keys"] == 2
    assert keys["examples"] == {"img:1000001": 3, "img:1000003": 2} and keys["exact"]
    assert "merge the words" in keys["note"]
    out = " ".join(result.output.split())
    assert "warning: 3 document(s) repeat the image key of an earlier one: 2 key(s) on several lines, e.g. " \
           "img:1000001 on 3 lines, img:1000003 on 2 lines" in out
    assert "`im2vec split` and `im2vec train` merge the words of all the lines of one image" in out
    assert "unique in YFCC100M" in out


def test_repeated_hash_keys_are_counted_exactly(tmp_path):
    h1, h2 = "4e2f7a26a1b2c3d4e5f60718293a4b5c", "00ff7a26a1b2c3d4e5f60718293a4b5c"
    lines = [_row("1", "dog", photo_hash=h1), _row("2", "cat", photo_hash=h2), _row("3", "dog", photo_hash=h1)]
    result, docs, report = _normalize(tmp_path, lines, "--key", "hash")
    assert report["image_keys"]["duplicate_key"] == 1 and report["image_keys"]["examples"] == {f"img:{h1}": 2}
    assert report["image_keys"]["exact"]


def test_unique_keys_say_nothing(tmp_path):
    result, docs, report = _normalize(tmp_path, [_row(str(i), "dog") for i in range(1, 5)])
    assert "warning" not in result.output
    assert report["image_keys"] == {"keys": 4, "duplicate_key": 0, "repeated_keys": 0, "examples": {},
                                    "exact": True}


def test_key_repeats_numeric_and_other_keys():
    seen = KeyRepeats(prefix="img:")
    for t in ["img:7", "img:007", "img:7", "img:0", "img:0", "img:a b", "img:99999999999999999999", "img:a b",
              "img:99999999999999999999", "img:٣"]:
        seen.add(t)
    assert len(seen._ids) == 4 and len(seen._hashes) == 6  # 007, a b, 20 digits, an Arabic digit: digests
    tokens = ["img:a b", "img:a b", "img:99999999999999999999", "img:99999999999999999999", "img:007", "img:٣"]
    r = seen.result(again=lambda: iter(tokens))
    assert r["duplicate_key"] == 4 and r["repeated_keys"] == 4 and r["exact"]
    assert r["examples"] == {"img:0": 2, "img:7": 2, "img:99999999999999999999": 2, "img:a b": 2}
    assert KeyRepeats().result() == {"keys": 0, "duplicate_key": 0, "repeated_keys": 0, "examples": {},
                                     "exact": True}


def test_colliding_digests_are_checked_exactly_or_called_probable(monkeypatch):
    monkeypatch.setattr(corpora, "_digest64", lambda token: 42)  # every key collides
    seen = KeyRepeats(prefix="img:")
    for t in ["img:a", "img:b", "img:c", "img:a"]:
        seen.add(t)
    exact = seen.result(again=lambda: ["img:a", "img:b", "img:c", "img:a"])
    assert exact["duplicate_key"] == 1 and exact["examples"] == {"img:a": 2} and exact["exact"]
    probable = seen.result()
    assert probable["duplicate_key"] == 3 and probable["repeated_keys"] == 1 and not probable["exact"]
    assert probable["examples"] == {}


def test_the_corpora_readers_still_pass_repeated_ids_on(tmp_path):
    """Kept, not merged: the reader yields each line; split/train merge an image's lines."""
    src = tmp_path / "y.tsv"
    src.write_text(_row("5", "dog") + _row("5", "cat"), encoding="utf-8")
    assert list(YFCC100MCorpus(src)) == [["img:5", "dog"], ["img:5", "cat"]]
