"""Tests for gensim_im2vec.text: the metadata normaliser."""

import doctest
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gensim_im2vec import text as text_module
from gensim_im2vec.text import Normalizer, url_decode


def test_doctests():
    result = doctest.testmod(text_module)
    assert result.attempted > 5
    assert result.failed == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the slides' neighbour lists (YFCC100M metadata trained raw)
        ("udstillinger.", ["udstillinger"]),
        ("10%2f2005", []),
        ("butcherwhite%2c", ["butcherwhite"]),
        ("kennels%0asitejoplin", ["kennels", "sitejoplin"]),
        ("X28guitar%29", ["guitar"]),
        ("%e9%bb%83%e5%b1%b1", ["黃山"]),
        ("4x2f22x2f2007", []),
        ("11.2.13-64", []),
        ("barton%27s", ["barton"]),
        ("d%27affaires", ["affaires"]),
        ("copyright%3e", ["copyright"]),
        ("gnu%2flinux", ["gnu", "linux"]),
        ("chang%2c%a9", ["chang"]),  # %a9 is not UTF-8: read as Latin-1 ©, a symbol
        ("festival-9177", ["festival"]),
        # double-encoded
        ("new%252Cyork", ["new", "york"]),
        ("caf%25C3%25A9", ["café"]),
        # HTML
        ("Tom &amp; Jerry&#39;s <b>cartoon</b>", ["tom", "jerry", "cartoon"]),
        ("&lt;a href=&quot;x&quot;&gt;link&lt;/a&gt;", ["link"]),
        # URLs, machine tags, camera names, hashes, NFKC, case folding
        ("see http://www.flickr.com/photos/x/123 later", ["see", "later"]),
        ("geo:lat=51.5 geo:lon=-0.1 london", ["london"]),
        ("DSC_1234.JPG IMG_2009_12_11 p1010123 dscn0042", []),
        ("01267f59f5a2ef449dbfb30d080fb deadbeef", ["deadbeef"]),
        ("ＦＵＬＬ ｗｉｄｔｈ Straße", ["full", "width", "strasse"]),
        ("Cats 🐱 and dogs!!!", ["cats", "dogs"]),
    ],
)
def test_text_examples(raw, expected):
    assert Normalizer().text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "join", "split"),
    [
        ("new+york", ["new_york"], ["new", "york"]),
        ("Statue of Liberty", ["statue_of_liberty"], ["statue", "liberty"]),
        ("staffordshire_bull_terrier", ["staffordshire_bull_terrier"], ["staffordshire", "bull", "terrier"]),
        ("the beach 2009", ["beach"], ["beach"]),
        ("img 2009 12 11", [], []),
        ("hash(0x885c2bc)", [], []),
        ("uploaded:by=flickrmobile", [], []),
        ("unsorted", [], []),
        ("", [], []),
    ],
)
def test_tags_multiword(raw, join, split):
    assert Normalizer().tags([raw]) == join
    assert Normalizer(multiword="split").tags([raw]) == split


def test_tags_string_is_comma_separated_and_deduplicated():
    norm = Normalizer()
    assert norm.tags("dog,Dog,DOG%2c,puppy") == ["dog", "puppy"]
    assert norm.tags("a|b|cat", sep="|") == ["cat"]


def test_each_step_can_be_switched_off():
    raw = "Dog%2Ccat &amp; 2005 dsc_1234 geo:lat=1 0123456789abcdef the"
    assert Normalizer(url_decode=False).text("dog%2Ccat") == ["dog", "2ccat"]
    assert Normalizer(html=False).text("a &amp; b") == ["amp"]
    assert "dog" in Normalizer(lowercase=False).text("dog Dog") and "Dog" in Normalizer(lowercase=False).text("Dog")
    assert "2005" in Normalizer(numbers=False).text(raw)
    assert "dsc" not in Normalizer().text(raw)
    assert "dsc" in Normalizer(camera_names=False).text(raw)  # the number part still goes
    assert "dsc_1234" in Normalizer(camera_names=False, numbers=False).text(raw)
    assert "0123456789abcdef" in Normalizer(hashes=False).text(raw)
    assert "the" in Normalizer(stopwords=None).text(raw)
    assert Normalizer(stopwords={"dog"}).text("dog cat") == ["cat"]
    assert Normalizer(machine_tags=False).text("geo:lat=1") == ["geo", "lat"]
    assert Normalizer(punctuation=False).text("a,b c.d") == ["a,b", "c.d"]
    assert Normalizer(unicode_nfkc=False).text("ｆｕｌｌ") == ["ｆｕｌｌ"]
    assert Normalizer(junk=None).tags(["unsorted"]) == ["unsorted"]
    assert Normalizer(strip_urls=False).text("http://example.com") == ["http", "example", "com"]
    assert Normalizer(min_len=4).text("cat lion") == ["lion"]
    assert Normalizer(max_len=3).text("cat lion") == ["cat"]


def test_stats_report_what_was_removed():
    norm = Normalizer()
    tags = ["dog", "dog", "unsorted", "hash(0x885c2bc)", "geo:lat=3", "dsc01234", "2005", "cat", "Dog"]
    assert norm.tags(tags) == ["dog", "cat"]
    st_ = norm.stats
    assert st_.raw_tokens == 9
    assert st_.removed_tokens == 5
    assert st_.removed_token_share == pytest.approx(5 / 9)
    # distinct raw: dog, unsorted, hash(..), geo.., dsc01234, 2005, cat, Dog -> 8, 5 removed
    assert st_.removed_vocab_share == pytest.approx(5 / 8)
    assert st_.reasons == {"junk": 1, "hash": 1, "machine_tag": 1, "camera": 1, "number": 1}
    assert st_.examples["junk"] == ["unsorted"]
    d = st_.as_dict()
    assert d["raw_vocab"] == 8 and d["output_vocab"] == 2
    assert "62.5%" in st_.summary()
    st_.reset()
    assert st_.raw_tokens == 0 and st_.raw_vocab == set()


def test_a_url_in_text_is_counted_as_a_removed_word():
    """A URL, an e-mail address, a machine tag and hash(...) inside a caption are removed and counted
    as removed words under their reason, as they are when they are a whole tag (they were removed
    without a count: ``im2vec normalize``'s report said nothing of them)."""
    norm = Normalizer()
    out = norm.text("My cat http://example.com/x.jpg sleeps, mail me@x.org geo:lat=43.1 hash(0xabc) www.foo.com")
    assert out == ["cat", "sleeps", "mail"]
    st_ = norm.stats
    assert st_.raw_tokens == 9 and st_.removed_tokens == 6 and st_.output_tokens == 3
    assert st_.reasons == {"url": 3, "machine_tag": 1, "hash": 1, "stopword": 1}
    assert st_.examples["url"] == ["http://example.com/x.jpg", "me@x.org", "www.foo.com"]
    assert "http://example.com/x.jpg" in st_.removed_vocab and st_.removed_vocab_share == pytest.approx(6 / 9)
    tag = Normalizer()
    assert tag.tags(["http://example.com/x.jpg"]) == [] and tag.stats.reasons == {"url": 1}
    assert Normalizer(strip_urls=False).text("see www.foo.com") == ["see", "www", "foo", "com"]


def test_a_url_glued_to_punctuation_is_one_removed_word():
    """A caption word that is a URL or an e-mail address with punctuation around it ("(http://x.com)",
    "me@x.org,") is one raw token, removed as a url; a word that keeps letters beside a URL is kept,
    the URL a piece trimmed off it. The leftover punctuation was counted as further raw tokens removed
    as 'empty' (a caption of 2 words reported 4 raw tokens, 3 removed)."""
    for kw in ({}, {"lowercase": False}, {"punctuation": False}):
        norm = Normalizer(**kw)
        assert norm.text('(me@x.org) "http://x.com/a" dog') == ["dog"]
        st_ = norm.stats
        assert (st_.raw_tokens, st_.removed_tokens, st_.output_tokens) == (3, 2, 1), kw
        assert st_.reasons == {"url": 2} and st_.examples["url"] == ["(me@x.org)", '"http://x.com/a"'], kw
        assert st_.removed_vocab_share == pytest.approx(2 / 3)
        kept = Normalizer(**kw)
        assert kept.text("see:http://x.com/a sleeps") == (["see", "sleeps"] if kw.get("punctuation", True)
                                                      else ["see:", "sleeps"])
        assert (kept.stats.raw_tokens, kept.stats.removed_tokens) == (2, 0) and not kept.stats.reasons, kw
        assert kept.stats.trimmed == {"url": 1}, kw
    # hash(...) written with spaces is one word of the caption, removed as a hash
    norm = Normalizer()
    assert norm.text("hash( 0x1f ) cat") == ["cat"]
    assert (norm.stats.raw_tokens, norm.stats.removed_tokens, dict(norm.stats.reasons)) == (2, 1, {"hash": 1})


def test_cache_does_not_change_the_stats_of_captions_with_urls():
    captions = ["My cat http://example.com/x.jpg sleeps", "(me@x.org) dog, geo:lat=43.1", "see:http://x.com now",
                "hash(0xabc) cat (http://x.com)", "My cat http://example.com/x.jpg sleeps", "www.foo.com, mail me@x.org."]
    for kw in ({}, {"lowercase": False}, {"punctuation": False}):
        cached, uncached = Normalizer(**kw), Normalizer(cache_size=0, **kw)
        for c in captions * 2:
            assert cached.text(c) == uncached.text(c)
        assert cached.stats.as_dict() == uncached.stats.as_dict(), kw
        st_ = cached.stats
        assert sum(st_.reasons.values()) == st_.removed_tokens
        assert st_.raw_tokens == 2 * sum(len(c.split()) for c in captions)


def test_stats_without_vocab():
    norm = Normalizer(track_vocab=False)
    norm.text("a dog 2005")
    assert norm.stats.raw_vocab is None
    assert norm.stats.raw_tokens == 3 and norm.stats.removed_tokens == 2
    assert "raw_vocab" not in norm.stats.as_dict()
    norm.stats.reset()
    assert norm.stats.raw_vocab is None


def test_cache_does_not_change_results_or_stats():
    cached, uncached = Normalizer(), Normalizer(cache_size=0)
    for s in ["dog,dog,2005", "new+york,dog", "dog"]:
        assert cached.tags(s) == uncached.tags(s)
    assert cached.stats.as_dict() == uncached.stats.as_dict()


def test_pickle_round_trip():
    norm = Normalizer(multiword="split", stopwords={"x"})
    norm.tags("new york")
    again = pickle.loads(pickle.dumps(norm))
    assert again.tags("new york") == ["new", "york"]
    assert again.config() == norm.config()
    assert again.config()["stopwords"] == ["x"]


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="multiword must be 'join' or 'split'"):
        Normalizer(multiword="glue")
    with pytest.raises(ValueError, match="min_len"):
        Normalizer(min_len=-1)


def test_for_text_keeps_stopwords():
    assert Normalizer.for_text().text("The dog of the house.") == ["the", "dog", "of", "the", "house"]


def test_url_decode_helper():
    assert url_decode("a+b") == "a b"
    assert url_decode("a+b", plus=False) == "a+b"
    assert url_decode("%25252C") == ","
    assert url_decode("X28a", flickr_hex=False) == "X28a"
    assert url_decode("box27") == "box27"  # letter before x: not an escape
    assert url_decode("%zz%") == "%zz%"


noisy_text = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(list("%+&;<>/:=_-.,'x#0123456789abcdefXAZ ") + ["%2c", "%25", "&amp;", "x28", "%e9", "\n"]),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(noisy_text)
def test_text_never_raises_and_is_idempotent(s):
    norm = Normalizer()
    once = norm.text(s)
    assert all(isinstance(t, str) and t and " " not in t for t in once)
    assert norm.text(" ".join(once)) == once


@settings(max_examples=300, deadline=None)
@given(st.lists(noisy_text, max_size=6))
def test_tags_never_raise_and_are_idempotent(tags):
    for mode in ("join", "split"):
        norm = Normalizer(multiword=mode)
        once = norm.tags(tags)
        assert norm.tags(once) == once
        assert len(set(once)) == len(once)


def test_bare_hash_tag_is_dropped_but_hash_in_text_and_longer_tags_stays():
    norm = Normalizer()
    assert norm.tags(["hash", "Hash", "hash(0x8a07724)", "hash browns", "flag"]) == ["hash_browns", "flag"]
    assert norm.stats.reasons["hash"] == 3
    assert norm.text("corned beef hash") == ["corned", "beef", "hash"]  # free text: a word
    assert Normalizer(hashes=False).tags(["hash"]) == ["hash"]


@pytest.mark.parametrize("raw, reason", [
    ("HASH(0x885c2bc)", "hash"), ("Hash(0x885C2BC)", "hash"), ("hash(0X1F2E)", "hash"), ("HASH( 0X1F )", "hash"),
    ("01267F59F5A2EF449DBFB30D080FB", "hash"), ("0X1F2E", "hash"), ("DEADBEEF12", "hash"),
    ("DSC_1234", "camera"), ("IMG_2009_12_11", "camera"), ("P1010123", "camera"), ("ABC12345", "camera"),
    ("WWW.Example.com", "url"), ("Www.foo.COM/Path", "url"), ("HTTPS://Example.COM/X.jpg", "url"),
    ("Me@Example.ORG", "url"), ("GEO:LAT=51.5", "machine_tag"), ("Taxonomy:Binomial=Panthera", "machine_tag"),
])
def test_patterns_remove_noise_in_any_case_when_the_case_is_kept(raw, reason):
    """With ``lowercase=False`` the patterns (written lower case, for lower-cased text) let upper-case noise
    through: ``HASH(0x885c2bc)`` gave the word HASH, ``01267F59…`` and ``DSC_1234`` stayed, ``WWW.x.com`` became
    WWW, Example, com. They are noise in any case: removed under the same reason as lower-cased."""
    for kw in ({}, {"lowercase": False}):
        tag = Normalizer(**kw)
        assert tag.tags([raw]) == [], (raw, kw)
        assert dict(tag.stats.reasons) == {reason: 1}, (raw, kw)
        text = Normalizer(**kw)
        assert text.text(f"Red {raw} Fox") == (["Red", "Fox"] if kw else ["red", "fox"]), (raw, kw)
        assert dict(text.stats.reasons) == {reason: 1}, (raw, kw)


def test_the_case_kept_keeps_words_that_only_look_like_noise():
    """The same words as lower-cased are kept: an event tag with its year, a word of hex letters shorter than
    a hash, a bare HASH in free text; stop words match as written."""
    norm = Normalizer(lowercase=False)
    assert norm.tags(["NYC2010", "Paris2008", "Cafe", "HASH", "Hash Browns"]) == ["NYC2010", "Paris2008", "Cafe",
                                                                                 "Hash_Browns"]
    assert norm.text("Corned Beef HASH in NYC2010") == ["Corned", "Beef", "HASH", "NYC"]


def test_each_any_case_pattern_is_its_lower_case_twin_with_re_i():
    """The case-kept patterns are the lower-case ones with re.I, one definition each (the ASCII word splitter's
    was written out a second time, ``[A-Za-z0-9_]+``, free to drift from ``[a-z0-9_]+``)."""
    twins = {name: getattr(text_module, name) for name in dir(text_module) if name.endswith("_ANY_CASE")}
    assert {"_HASH_CALL_ANY_CASE", "_HEX_HASH_ANY_CASE", "_CAMERA_ANY_CASE", "_ASCII_TOKEN_ANY_CASE"} <= set(twins)
    for name, any_case in twins.items():
        cased = getattr(text_module, name[: -len("_ANY_CASE")])
        assert any_case.pattern == cased.pattern and any_case.flags & re.I and not cased.flags & re.I, name
    assert Normalizer(lowercase=False).text("Red_Fox and MP3 Cat") == ["Red_Fox", "MP3", "Cat"]


def test_lower_cased_text_keeps_the_case_sensitive_patterns():
    """On lower-cased text re.I would take the dotless ı (which casefold keeps) for an i: the lower-case
    patterns run there, and "ımg_1234" is no camera name (as before the twins existed)."""
    assert Normalizer().text("ımg_1234 pıc99999 img_1234") == ["ımg", "pıc99999"]


def test_numbered_file_stems_in_text_lose_their_number():
    norm = Normalizer()
    assert norm.text("head1 smiley111 arrow08_4 tigre01 summer2005") == ["head", "smiley", "arrow", "tigre", "summer"]
    assert norm.stats.trimmed["file_stem"] == 5 and norm.stats.removed_tokens == 0 and not norm.stats.reasons
    assert norm.text("mp3 a4 f16 md5 r2d2 dog") == ["mp3", "a4", "f16", "md5", "r2d2", "dog"]  # codes
    assert norm.text("Clipart by Nicu Buculei - head1") == ["nicu", "buculei", "head"]
    assert norm.text("unsorted2") == []  # what is left is noise: idempotent
    assert norm.tags(["route66", "head1"]) == ["route66", "head1"]  # a tag is chosen: kept whole
    assert Normalizer(multiword="split").tags(["route66 sign"]) == ["route66", "sign"]
    assert Normalizer(file_stems=False).text("head1") == ["head1"]
    old = Normalizer().__getstate__()
    del old["file_stems"]  # a normaliser pickled before the step existed keeps its behaviour
    again = Normalizer.__new__(Normalizer)
    again.__setstate__(old)
    assert again.text("head1") == ["head1"]


# ----------------------------------------------------------------------------- bad input (issue 12)

_MB_INPUTS = {
    # each took minutes to hours with the old patterns (64 kB of the first: 24 s, growing as n^2)
    "mail_local_part": "a." * 500_000 + "@",
    "mail_domain": "a@" + "b-" * 500_000,
    "scheme_run": "a." * 500_000 + ":",
    "scheme_dashes": "a-" * 500_000 + ":/",
    "plus_run": "a+" * 500_000 + "@x",
    "hash_call": "hash(" + " " * 1_000_000,
    "machine_tag": "a:" + "b" * 1_000_000 + "=",
    "nested_percent": "%" + "25" * 500_000,
}


@pytest.mark.parametrize("name", sorted(_MB_INPUTS))
def test_patterns_are_linear_on_pathological_megabytes(name):
    # each step completes on 1 MB (with the quadratic patterns this would run for minutes to hours)
    s = _MB_INPUTS[name]
    assert len(Normalizer()._remove_patterns(s)) <= len(s)  # URLs, e-mail, machine tags, hash()
    assert len(url_decode(s)) <= len(s)


def test_the_normaliser_completes_on_a_pathological_megabyte():
    norm = Normalizer()
    assert norm.text("a." * 500_000 + "@") == []  # single letters are too short to keep
    assert norm.tags(["a." * 500_000 + "@"]) == []
    assert norm.text("%" + "25" * 500_000) == []  # the rest after 8 rounds of decoding is a number


def test_url_pattern_reads_each_run_once():
    # the structure that makes it linear: every alternative starts at the start of its run
    # (a lookbehind) and reads the run possessively, so a failed start is never retried inside it
    pattern = text_module._URL.pattern
    assert pattern.count("(?<!") >= 3 and "*+" in pattern and "++" in pattern
    for old_quadratic in (r"\b[\w.+-]+@", r"\b[a-z][a-z0-9+.-]*://"):
        assert old_quadratic not in pattern


_OLD_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)\S*|\b[\w.+-]+@[\w-]+\.[\w.-]+", re.I)


@pytest.mark.parametrize("s", [
    "see http://example.com/a?b=c and www.flickr.com/photos/x, mail me: jane.doe+tag@mail.example.org.",
    "(https://x.org) svn+ssh://host/repo -http://a.b 9-ab-cd://e ...http://x.com x_http://y",
    "a.b@c.d, .john@x.com +foo@bar.com a@b @c.com -www.x@y.com/p HTTP://UPPER.CASE/ Www.Site.COM",
    "a@b.http://x x.http://y 1http://z é@x.y éhttp://z caf\u00e9 www.x@y.com",
])
def test_url_pattern_removes_what_the_old_one_did(s):
    # (the URL pass of the normaliser's own pattern removal, the other patterns off)
    assert Normalizer(machine_tags=False, hashes=False)._remove_patterns(s) == _OLD_URL.sub(" ", s)


@pytest.mark.parametrize("value,kind", [(b"bytes", "bytes"), (5, "int"), (3.5, "float"), (["a"], "list")])
def test_text_names_a_value_that_is_not_text(value, kind):
    with pytest.raises(TypeError, match=rf"Normalizer.text: expected a str, got {kind}"):
        Normalizer().text(value)


def test_tags_name_a_value_that_is_not_text():
    norm = Normalizer()
    with pytest.raises(TypeError, match=r"got bytes b'dog,cat'; decode them first"):
        norm.tags(b"dog,cat")
    with pytest.raises(TypeError, match="got int 5"):
        norm.tags(5)
    with pytest.raises(TypeError, match=r"each tag as a str, got bytes b'x'"):
        norm.tags(["dog", b"x"])
    assert norm.tags(["dog", None, 2005, "new york"]) == ["dog", "new_york"]  # numbers are str()-ed
    assert norm.text(None) == [] and norm.text("") == []


def test_a_multiword_tag_keeps_the_words_that_turn_its_meaning_round():
    """YFCC100M's ``no+smoking`` was ``smoking`` (its stop words stripped at both ends), the
    emoji's "no vacancy" button ``vacancy``, "thumbs down" ``thumbs``; ``the+beatles`` still loses
    its article, and a tag of stop words alone is dropped as one, not as an empty tag."""
    norm = Normalizer()
    assert norm.tags("no+smoking,not+for+sale,out+of+order,off+road,thumbs+down,the+beatles,new+york") == [
        "no_smoking", "not_for_sale", "out_of_order", "off_road", "thumbs_down", "beatles", "new_york"]
    norm = Normalizer()
    assert norm.tags("the,a,the+who") == []
    assert norm.stats.reasons["stopword"] == 3 and norm.stats.reasons.get("empty", 0) == 0


def test_a_multiword_tag_keeps_the_particle_at_its_end():
    """``thumbs+up`` was ``thumbs`` while ``thumbs+down`` was ``thumbs_down`` (down was kept, up
    stripped), the emoji "index pointing up" lost its ``up`` and "pointing down" kept its ``down``;
    a particle at the end stays, a preposition at the start still goes."""
    norm = Normalizer()
    assert norm.tags("thumbs+up,thumbs+down,check-in,rock-on,game+over,pick-up,in+the+park,up+up,upc-a") == [
        "thumbs_up", "thumbs_down", "check_in", "rock_on", "game_over", "pick_up", "park", "upc"]
    assert norm.tags(["thumbs_up"]) == ["thumbs_up"]  # idempotent


def test_split_multiword_tags_keep_a_negation_whole():
    """``multiword="split"`` turned ``no+smoking`` into ``smoking`` (``no`` a stop word dropped as a
    token of its own) and ``thumbs+up`` into ``thumbs``: such a tag stays one token; other tags
    split, and without stop words nothing is lost by splitting, so everything splits."""
    split = Normalizer(multiword="split")
    assert split.tags("no+smoking,thumbs+up,off+road,new+york,hands+on+deck,the+beatles") == [
        "no_smoking", "thumbs_up", "off_road", "new", "york", "hands", "deck", "beatles"]
    assert Normalizer(multiword="split", stopwords=None).tags("no+smoking") == ["no", "smoking"]
    # a custom stop word list without "no": the negation is a token of its own
    assert Normalizer(multiword="split", stopwords=frozenset({"the"})).tags("no+smoking") == ["no", "smoking"]


def test_split_negation_tag_over_max_len_is_dropped_whole_not_cut_into_its_other_words():
    """With ``multiword="split"`` a negation tag longer than ``max_len`` fell through to splitting:
    ``no+smoking+area`` with max_len=10 gave ``smoking``, ``area`` (the ``no`` dropped as a stop
    word, the meaning turned round) and a long YFCC100M ``no+parking+...`` tag ``parking``, ``side``,
    ``road``. Kept whole it is one token, judged whole as ``multiword="join"`` judges it: dropped,
    counted as "long", with its raw tag as the example."""
    long_tag = "no parking on either side of the road at any time"  # 49 characters joined
    for multiword in ("split", "join"):
        norm = Normalizer(multiword=multiword)  # max_len=40
        assert norm.tags([long_tag, "no smoking", "dog"]) == ["no_smoking", "dog"], multiword
        assert norm.stats.reasons["long"] == 1 and norm.stats.examples["long"] == [long_tag]
        assert norm.stats.removed_tokens == 1 and long_tag in norm.stats.removed_vocab
        assert "parking" not in norm.stats.output_vocab
    # the limit is on the joined token: at max_len it is kept, one character over it goes whole
    assert Normalizer(multiword="split", max_len=15).tags("no+smoking+area") == ["no_smoking_area"]
    norm = Normalizer(multiword="split", max_len=14)
    assert norm.tags("no+smoking+area,out+of+order,thumbs+up+from+everyone+up") == ["out_of_order"]
    assert norm.stats.reasons["long"] == 2 and norm.stats.reasons.get("stopword", 0) == 0
    # a tag that is not kept whole still splits, each word judged by max_len on its own
    assert Normalizer(multiword="split", max_len=14).tags("the+extraordinarily+big+parade") == ["big", "parade"]
    assert Normalizer(multiword="split", max_len=10).tags("the+quite+big+parade") == ["quite", "big", "parade"]


def test_the_summary_says_reasons_count_pieces():
    """Pieces dropped from kept tokens (geo:lat=43.1 keeps geo_lat and drops a number) are counted
    apart from the tokens removed, and the summary says so (it read "removed 0 ...; dropped:
    number 1236")."""
    from gensim_im2vec.text import Normalizer as N

    norm = N(machine_tags=False)
    assert norm.tags(["geo:lat=43.1", "geo:lon=7.2"]) == ["geo_lat", "geo_lon"]
    line = norm.stats.summary()
    assert "removed 0 " in line and "pieces dropped from kept tokens: number 4" in line and "by reason" not in line
