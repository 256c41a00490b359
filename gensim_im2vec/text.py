"""Normalise noisy user metadata (tags, titles, descriptions) into clean training tokens.

User tags are "very messy, lots of noise, heterogeneous, and sometimes irrelevant" (the Im2Vec
slides): the neighbour lists of a model trained on raw YFCC100M metadata are full of undecoded
``%2c``, ``%27s``, ``X28``, dates, camera file names and hashes.  :class:`Normalizer` removes that
noise with a pipeline of switchable steps and reports what it removed.

The steps, in order (each is a constructor flag):

1. ``url_decode``: ``+`` → space and ``%XX`` runs (UTF-8, Latin-1 for bytes that are not),
   repeated until nothing changes so double-encoded ``%252C`` decodes too; Flickr's
   ``x28``/``x2f`` escapes.
2. ``html``: entities (``&amp;``, ``&#39;``) and tags (``<a href=…>``).
3. ``strip_urls``: ``http://…``, ``www.…`` and e-mail addresses.
4. ``unicode_nfkc`` and ``lowercase`` (Unicode case folding).
5. ``machine_tags``: ``geo:lat=51.5``, ``uploaded:by=flickrmobile``.
6. ``punctuation``: split on punctuation and symbols (emoji included), not only on whitespace.
7. ``numbers`` (``2005``, ``10/2005``), ``camera_names`` (``dsc_1234``, ``img_2009_12_11``) and
   ``hashes`` (``01267f59f5a2ef449dbfb30d080fb``, ``hash(0x885c2bc)``, and the bare tag ``hash``
   that the same exporter leaves beside it) are dropped; in free text ``file_stems`` cuts the
   number off a numbered file name left as a title (``head1``, ``tigre01``, ``arrow08_4`` →
   ``head``, ``tigre``, ``arrow``).  Letters followed by a year (1900–2039) are Flickr's event and
   place tags, not camera names: ``nyc2010``, ``sxsw2009`` are kept like ``paris2008`` (whole as a
   tag, cut to the word in free text), unless the letters are a camera's prefix (``dscn2010``,
   ``img2009``, ``p2010`` go).
8. ``multiword``: a multi-word tag is kept as one token (``"join"``: ``new_york``) or split.
9. ``stopwords`` and ``junk`` (tags that say nothing about an image: ``unsorted``), then the
   ``min_len``/``max_len`` limits.

The slides' own noise:

>>> from gensim_im2vec.text import Normalizer
>>> norm = Normalizer()
>>> norm.text("udstillinger. 10%2f2005 butcherwhite%2c kennels%0asitejoplin")
['udstillinger', 'butcherwhite', 'kennels', 'sitejoplin']
>>> norm.text("X28guitar%29 %e9%bb%83%e5%b1%b1 DSC_1234.JPG")
['guitar', '黃山']
>>> norm.text("Clipart by Nicu Buculei - head1")   # what a title left by an export script gives
['nicu', 'buculei', 'head']

Tags are units: a multi-word tag stays one token unless ``multiword="split"``:

>>> norm.tags("new+york,statue%20of%20liberty,geo:lat=40.68,img_2009_12_11,NYC")
['new_york', 'statue_of_liberty', 'nyc']
>>> Normalizer(multiword="split").tags(["New York", "hash(0x885c2bc)"])
['new', 'york']

Stop words leave a tag's ends, but not the words that turn its meaning round, nor the particle
that ends it (:data:`KEPT_AT_ENDS`, :data:`KEPT_AT_END`; such a tag also stays whole when split):

>>> norm.tags("the+beatles,no+smoking,thumbs+up,in+the+park")
['beatles', 'no_smoking', 'thumbs_up', 'park']

Such a tag is one token, so ``max_len`` judges it whole: one too long goes whole (reason ``long``),
it is not split into words that would say the opposite (``smoking``, ``area``):

>>> Normalizer(multiword="split", max_len=12).tags("no+smoking+area,no+smoking")
['no_smoking']

What was removed, and why (the slides estimate ~15% of a raw tag vocabulary is noise):

>>> norm = Normalizer()
>>> _ = norm.tags(["dog", "unsorted", "dsc01234", "Dog", "2005"])
>>> norm.stats.removed_vocab_share
0.6
>>> sorted(norm.stats.reasons)
['camera', 'junk', 'number']

Each token removed counts under one reason, the first rule that dropped it (``IMG_1234.JPG`` is a
camera name, not also the junk word ``jpg``); pieces dropped from a token that is kept (the number
of ``geo:lat=43.1`` → ``geo_lat``, the ``1`` of ``head1``) are counted apart, in ``trimmed``:

>>> norm = Normalizer()
>>> norm.text("IMG_1234.JPG head1")
['head']
>>> norm.stats.removed_tokens, dict(norm.stats.reasons), dict(norm.stats.trimmed)
(1, {'camera': 1}, {'file_stem': 1})

An event or a place with its year is a tag, a camera's prefix with a number is a file name:

>>> norm.tags(["sxsw2009", "nyc_2010", "DSCN2010.JPG", "img2009", "sdc10001"])
['sxsw2009', 'nyc']
>>> norm.text("SXSW2009 and CES2011 on DSCN2010.JPG")
['sxsw', 'ces']

Normalisation is idempotent: ``norm.text(" ".join(norm.text(s))) == norm.text(s)``.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from gensim_im2vec.validation import check_not_a_str, is_int

__all__ = [
    "ENGLISH_STOPWORDS",
    "VOCAB_TRACK_LIMIT",
    "DEFAULT_JUNK",
    "KEPT_AT_END",
    "KEPT_AT_ENDS",
    "Normalizer",
    "NormalizationStats",
    "url_decode",
]

logger = logging.getLogger(__name__)

#: English function words (and the stubs left when apostrophes split ``don't``).
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either else
    ever few for from further get got had has have having he her here hers herself him himself
    his how however if in into is it its itself just let may me might more most much must my
    myself neither no nor not now of off on once only or other ought our ours ourselves out over
    own per same shall she should since so some such than that the their theirs them themselves
    then there these they this those though through thus to too under until up upon us very via
    was we were what when where whether which while who whom whose why will with within without
    would yet you your yours yourself yourselves
    don didn doesn isn wasn weren aren hasn haven hadn couldn wouldn shouldn won ll ve re
    """.split()
)

#: Stop words a multi-word tag keeps at its ends: they turn its meaning round (``no_smoking``,
#: ``not_for_sale``, ``off_road``, ``out_of_order``), where ``the_beatles`` loses its ``the``.
KEPT_AT_ENDS: frozenset[str] = frozenset({"no", "not", "nor", "off", "out", "without", "against", "down"})

#: Stop words a multi-word tag keeps at its end: the particles of ``thumbs_up``, ``check_in``,
#: ``rock_on``, ``game_over`` (their opposites ``down``, ``out``, ``off`` are kept at both ends),
#: where ``in_the_park`` still loses its leading ``in``.
KEPT_AT_END: frozenset[str] = KEPT_AT_ENDS | {"up", "on", "in", "over"}

#: Tags that describe the upload, not the picture (seen in OpenClipArt and Flickr metadata).
DEFAULT_JUNK: frozenset[str] = frozenset(
    """
    unsorted openclipart clipart clip_art clipart_library openclipart_org public_domain
    publicdomain pd svg png jpg jpeg inkscape image images picture pictures photo photos untitled
    flickr flickrmobile iphoneography instagram uploaded
    """.split()
)

_PCT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
# Flickr's lost-percent escapes: X28guitar%29, 4x2f22x2f2007 (only after a non-letter).
_FLICKR_HEX = re.compile(r"(?<![^\W\d_])[xX](2[26789cCfF])")
_NEEDS_DECODING = re.compile(r"[%+&<]|[xX]2[26789cCfF]")
# An HTML tag starts with a letter, "/", "!" or "?" after the "<" (as HTML parsers read it), so
# "I <3 cats > dogs" and "5 < 6 and 7 > 3" keep their words.
_HTML_TAG = re.compile(r"<[A-Za-z/!?][^<>]{0,2000}>")
# URLs and e-mail addresses, in linear time on any input. A pattern that may start anywhere
# inside a run of its characters (``\b[\w.+-]+@``) rescans the rest of the run from every start:
# quadratic on ``"a." * n``. Here each alternative starts only where its run starts (the
# lookbehinds), reads the run once with possessive quantifiers (no backtracking into it) and
# keeps the run's leading characters that the old ``\b`` start skipped (group ``keep_*``, put
# back by :func:`_url_kept`), so the same text is removed:
# - scheme URL: the first letter of the run before ``://`` that starts a word (``\b[a-z]``);
# - ``www.`` at a word start (a fixed prefix: no rescan);
# - e-mail: from the run's first word character to ``@``, then ``domain.tld`` (a ``www.`` there is
#   left to the ``www.`` alternative, as before).
# One difference remains: a match that the old pattern began right where the previous one ended
# inside a run (``a@b.c+d@e.f``: ``+d@e.f``) is not taken, as a run is only entered at its start.
_URL = re.compile(
    r"(?<![a-z0-9+.-])(?:(?<!\w)|(?P<keep_scheme>[a-z0-9]*+(?:[+.-]++[0-9][a-z0-9]*+)*+[+.-]++))"
    r"[a-z][a-z0-9+.-]*+://\S*+"
    r"|\bwww\.\S*+"
    r"|(?<![\w.+-])(?P<keep_mail>[.+-]*+)(?!www\.)\w[\w.+-]*+@[\w-]++\.[\w.-]++",
    re.I,
)
_MACHINE_TAG = re.compile(r"(?<![\w:])[^\W\d][\w]*+:[\w]++=\S*+")
# A whole tag that is a machine tag: its value may hold spaces (taxonomy:binomial="Panthera leo").
_MACHINE_TAG_UNIT = re.compile(r"[^\W\d]\w*+:\w++=.*+", re.S)
_HASH_CALL = re.compile(r"\bhash\s*+\(\s*+(?:0x)?[0-9a-f]*+\s*+\)")
#: Rounds of URL decoding (``%2525`` → ``%25`` → ``%``): real text is encoded at most a few times
#: over; a bound keeps ``"%" + "25" * n`` linear (one round per level would be quadratic).
_MAX_DECODE_ROUNDS = 8
_ASCII_TOKEN = re.compile(r"[a-z0-9_]+")
_NUMBER = re.compile(r"_*\d[\d_]*")
# Camera file names (matched whole): a known camera prefix and a number, also when the number looks
# like a year (dsc_1234, dscn2010, img2009, p1010123, img_2009_12_11); or any 1-4 letters and a
# number of 4+ digits (abc12345) unless the number is a year, 1900-2039, possibly followed by a
# month and day of 1-2 digits (nyc2010, sxsw2009, ces2011, nyc2010_05_12): Flickr's event and place
# tags. A prefix of the list wins (it is tried first), so dscn2010 goes and nyc2010 stays.
_CAMERA = re.compile(
    r"(?:img|dsc|dscn|dscf|dsci|imgp|pict|pic|dcp|dcim|sam|gopr|mvi|cimg|pano|photo|scan|"
    r"snapshot|image|screenshot|vid|mov|dji|wp|mg|sdc|sany|hpim|pdrm|kif|imag|p)_?\d+(?:_\d+)*"
    r"|(?![a-z]{1,4}(?:19\d\d|20[0-3]\d)(?:_\d{1,2}){0,2}\Z)[a-z]{1,4}\d{4,}(?:_\d+)*"
)
_HEX_HASH = re.compile(r"0x[0-9a-f]+|(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}")
# A numbered file name: a word of 3+ letters and a number of 1-4 digits (head1, tigre01, summer2005).
# Shorter letter parts are codes, kept whole (mp3, a4, f16, md5).
_FILE_STEM = re.compile(r"([^\W\d_]{3,})\d{1,4}")
# The lower-case patterns above run on lower-cased text. With ``lowercase=False`` the text keeps its
# case, and ``HASH(0x885C2BC)``, ``01267F59F5A2EF449DBFB30D080FB``, ``0X1F2E``, ``DSC_1234`` are the
# same noise: these case-insensitive twins, the same patterns with re.I, are used then. Only then: on
# lower-cased text re.I would also take the dotless ı (U+0131, which casefold keeps) for an i, so
# "ımg_1234" would go as a camera name, and it costs time. The URL pattern is case-insensitive already;
# machine tags have no case.
_HASH_CALL_ANY_CASE = re.compile(_HASH_CALL.pattern, re.I)
_HEX_HASH_ANY_CASE = re.compile(_HEX_HASH.pattern, re.I)
_CAMERA_ANY_CASE = re.compile(_CAMERA.pattern, re.I)
_ASCII_TOKEN_ANY_CASE = re.compile(_ASCII_TOKEN.pattern, re.I)  # (run on ASCII text only: [A-Za-z0-9_]+)
#: The bare tag left beside ``hash(0x…)`` by an exporter (1,795 of 7,458 OpenClipArt drawings carry it).
_BARE_HASH_TAG = "hash"

#: Invisible format characters that sit inside words and are deleted (not made separators): the soft
#: hyphen (``&shy;``), zero-width (non-)joiners (Persian, Indic scripts, emoji sequences), the word
#: joiner and zero-width no-break space (BOM), and variation selectors (``❤️`` is ``❤`` + U+FE0F).
_INVISIBLE: dict[int, None] = dict.fromkeys(
    [0x00AD, 0x200C, 0x200D, 0x2060, 0xFEFF, *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
)

_SEP_TABLE: dict[int, str] | None = None

#: ``track_vocab`` counts distinct tokens exactly up to this many distinct raw tokens (and as many
#: distinct output tokens), then stops counting: each costs ~160 bytes (the string and its set entry,
#: raw and output), so a corpus of tens of millions of distinct tags (YFCC100M) would hold gigabytes
#: for a count. At the limit the sets take ~160 MB, and the report says "at least" that many.
VOCAB_TRACK_LIMIT = 1_000_000

#: Reasons that cut a piece off a token without dropping it (the number of ``head1``).
_TRIM_ONLY = frozenset({"file_stem"})


def _separator_table() -> dict[int, str]:
    """Map every punctuation, symbol, separator and control code point to a space (built once)."""
    global _SEP_TABLE
    if _SEP_TABLE is None:
        table = {}
        for cp in range(0x30000):
            cat = unicodedata.category(chr(cp))
            # enclosing marks (Me: the keycap of 1️⃣) are symbols too
            if (cat[0] in "PSZC" or cat == "Me") and cp != 0x5F:  # keep "_": it joins multi-word tags
                table[cp] = " "
        for cp in (0xE0001, *range(0xE0020, 0xE0080)):  # emoji tag characters (flags of 🏴 regions)
            table[cp] = " "
        _SEP_TABLE = table
    return _SEP_TABLE


def _not_text(who: str, value, expected: str = "a str") -> str:
    """The message for a value that is not text (bytes are named with their fix)."""
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if isinstance(value, (bytes, bytearray)):
        return f"{who}: expected {expected}, got bytes {shown}; decode them first, e.g. data.decode('utf-8')."
    return f"{who}: expected {expected}, got {type(value).__name__} {shown}; convert it with str() if it is text."


def _url_kept(m: re.Match) -> str:
    """What is left of a match of :data:`_URL`: the run's leading characters it keeps, and a space."""
    return (m.group("keep_scheme") or m.group("keep_mail") or "") + " "


def _without_whitespace(m: re.Match) -> str:
    return "".join(m.group(0).split())


_ESCAPED_BYTE = re.compile(r"[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape keeps it


def _decode_pct_run(match: re.Match) -> str:
    raw = bytes.fromhex(match.group(0).replace("%", ""))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # the bytes that are not UTF-8 are Latin-1: caf%C3%A9%E9t%E9 -> café été
        s = raw.decode("utf-8", "surrogateescape")
        return _ESCAPED_BYTE.sub(lambda m: chr(ord(m.group()) - 0xDC00), s)


def url_decode(s: str, *, plus: bool = True, flickr_hex: bool = True) -> str:
    """Undo (possibly repeated) URL encoding.

    Parameters
    ----------
    s : str
        Encoded text such as ``"new+york%2C+ny"``.
    plus : bool
        Decode ``+`` as a space (form encoding, as in YFCC100M's text fields).
    flickr_hex : bool
        Also decode ``x28``-style escapes whose ``%`` got lost (``X28guitar%29``), for
        ``"&'(),/`` only and only after a non-letter, so ``box27`` is left alone.

    Returns
    -------
    str
        The decoded text. Bytes of a ``%XX`` run that are not valid UTF-8 are read as Latin-1.
        At most 8 levels of encoding are undone (linear time on any input).

    Examples
    --------
    >>> url_decode("butcher%252Cwhite+%e9%bb%83%e5%b1%b1")
    'butcher,white 黃山'
    """
    for _ in range(_MAX_DECODE_ROUNDS):
        prev = s
        if plus and "+" in s:
            s = s.replace("+", " ")
        if "%" in s:
            s = _PCT_RUN.sub(_decode_pct_run, s)
        if flickr_hex and ("x" in s or "X" in s):
            s = _FLICKR_HEX.sub(lambda m: chr(int(m.group(1), 16)), s)
        if s == prev:
            break
    return s


@dataclass
class NormalizationStats:
    """What a :class:`Normalizer` kept and removed.

    A *raw token* is one input unit: a tag, or a whitespace-separated word of a text field.
    It is *removed* when nothing of it survives normalisation.

    Attributes
    ----------
    raw_tokens : int
        Input units seen.
    removed_tokens : int
        Input units that produced no output token.
    output_tokens : int
        Tokens produced.
    reasons : collections.Counter
        Why raw tokens were removed, each under one reason: the first rule that dropped it
        (``number``, ``camera``, ``hash``, ``machine_tag``, ``url``, ``stopword``, ``junk``,
        ``short``, ``long``, ``empty``), so the counts add up to :attr:`removed_tokens`.
    examples : dict of str to list of str
        Up to five raw examples per reason of :attr:`reasons`.
    trimmed : collections.Counter
        Pieces dropped from raw tokens that were kept, per piece and by the same reasons
        (``geo:lat=43.1`` with ``machine_tags=False`` keeps ``geo_lat`` and drops a ``number``),
        and ``file_stem``: numbers cut off numbered file names (``head1`` → ``head``).
    trimmed_examples : dict of str to list of str
        Up to five raw examples per reason of :attr:`trimmed`.
    raw_vocab, removed_vocab, output_vocab : set of str or None
        Distinct raw units, those removed, and distinct output tokens; None when the normaliser
        was built with ``track_vocab=False`` (saves memory on huge corpora). Counted up to
        :data:`VOCAB_TRACK_LIMIT` distinct raw (or output) tokens, then no more (see
        :attr:`vocab_complete`): memory stays bounded on any corpus.
    vocab_complete : bool
        False when the sets stopped growing at :data:`VOCAB_TRACK_LIMIT`: they then hold the
        distinct tokens of the first :attr:`vocab_raw_tokens` raw tokens only, and the corpus has
        at least that many.
    vocab_raw_tokens : int
        Raw tokens counted into the sets (all of :attr:`raw_tokens` while :attr:`vocab_complete`).
    """

    raw_tokens: int = 0
    removed_tokens: int = 0
    output_tokens: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    raw_vocab: set[str] | None = field(default_factory=set)
    removed_vocab: set[str] | None = field(default_factory=set)
    output_vocab: set[str] | None = field(default_factory=set)
    trimmed: Counter = field(default_factory=Counter)
    trimmed_examples: dict[str, list[str]] = field(default_factory=dict)
    vocab_complete: bool = True
    vocab_raw_tokens: int = 0

    @property
    def removed_token_share(self) -> float:
        """Share of raw tokens that were removed entirely (0.0 when nothing was seen)."""
        return self.removed_tokens / self.raw_tokens if self.raw_tokens else 0.0

    @property
    def removed_vocab_share(self) -> float:
        """Share of the distinct raw tokens that were removed (needs ``track_vocab``; of those
        counted, when :attr:`vocab_complete` is False)."""
        if not self.raw_vocab:
            return 0.0
        return len(self.removed_vocab) / len(self.raw_vocab)

    def as_dict(self) -> dict:
        """Plain, JSON-serialisable summary (counts and shares, not the vocabularies)."""
        out = {
            "raw_tokens": self.raw_tokens,
            "removed_tokens": self.removed_tokens,
            "removed_token_share": round(self.removed_token_share, 4),
            "output_tokens": self.output_tokens,
            "reasons": dict(self.reasons.most_common()),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "trimmed": dict(self.trimmed.most_common()),
            "trimmed_examples": {k: list(v) for k, v in self.trimmed_examples.items()},
        }
        if self.raw_vocab is not None:
            out.update(
                raw_vocab=len(self.raw_vocab),
                removed_vocab=len(self.removed_vocab),
                removed_vocab_share=round(self.removed_vocab_share, 4),
                output_vocab=len(self.output_vocab),
                vocab_complete=self.vocab_complete,
                vocab_raw_tokens=self.vocab_raw_tokens,
            )
        return out

    def summary(self) -> str:
        """One human-readable line, e.g. for a log or the CLI."""
        s = (
            f"normalised {self.raw_tokens} raw tokens into {self.output_tokens}; removed "
            f"{self.removed_tokens} ({100 * self.removed_token_share:.1f}%)"
        )
        if self.raw_vocab is not None and self.vocab_complete:
            s += (
                f", {len(self.removed_vocab)} of {len(self.raw_vocab)} distinct raw tokens "
                f"({100 * self.removed_vocab_share:.1f}%) -> {len(self.output_vocab)} kept"
            )
        elif self.raw_vocab is not None:
            s += (
                f"; at least {len(self.raw_vocab)} distinct raw tokens (stopped counting at {len(self.raw_vocab)} "
                f"to bound memory, after {self.vocab_raw_tokens} raw tokens; of those {len(self.raw_vocab)}: "
                f"{len(self.removed_vocab)} removed ({100 * self.removed_vocab_share:.1f}%) -> "
                f"{len(self.output_vocab)} distinct kept)"
            )
        if self.reasons:
            s += ("; removed by reason (the first rule that dropped each): "
                  + ", ".join(f"{k} {v}" for k, v in self.reasons.most_common()))
        if self.trimmed:  # a kept unit loses pieces: geo:lat=43.1 → geo_lat drops a number
            s += ("; pieces dropped from kept tokens: "
                  + ", ".join(f"{k} {v}" for k, v in self.trimmed.most_common()))
        return s

    def reset(self) -> None:
        """Forget everything counted so far."""
        track = self.raw_vocab is not None
        self.__init__()
        if not track:
            self.raw_vocab = self.removed_vocab = self.output_vocab = None


@dataclass
class Normalizer:
    """Turn noisy metadata strings into clean tokens; every step can be switched off.

    Parameters
    ----------
    url_decode : bool
        Decode ``+``, ``%XX`` (repeatedly: ``%252C`` → ``,``) and ``x28``-style escapes.
    html : bool
        Unescape HTML entities and remove HTML tags.
    strip_urls : bool
        Remove URLs and e-mail addresses.
    unicode_nfkc : bool
        Apply Unicode NFKC (full-width letters, ligatures, ``①`` → ``1``) and delete the invisible
        characters inside words (soft hyphens, zero-width joiners, variation selectors).
    lowercase : bool
        Unicode case folding (``Straße`` → ``strasse``, ``İstanbul`` → ``istanbul``). False keeps the
        case of the words; URLs, e-mail addresses, machine tags, camera names and hashes are removed
        in any case all the same (``WWW.x.com``, ``DSC_1234``, ``HASH(0x885C2BC)``, ``0A1B2C3D4E``),
        while ``stopwords`` and ``junk`` match as they are written (lower case).
    machine_tags : bool
        Drop machine tags ``namespace:predicate=value``; a tag that is one is dropped whole, also
        when its value holds spaces (``taxonomy:binomial="Panthera leo"``).
    punctuation : bool
        Split on punctuation and symbols (emoji included). False splits on whitespace only.
    numbers : bool
        Drop tokens made of digits (years, dates, counts).
    camera_names : bool
        Drop camera file names (``dsc_1234``, ``img_2009_12_11``, ``p1010123``): a camera's prefix
        (``dsc``, ``dscn``, ``dscf``, ``img``, ``imgp``, ``pict``, ``cimg``, ``sdc``, ``mvi``, ``p``, …)
        and a number, or any 1–4 letters and a number of 4+ digits (``abc12345``). A number that is
        a year, 1900–2039, after letters that are not a camera's prefix makes an event or a place
        tag, kept (``nyc2010``, ``sxsw2009``, ``ces2011``, also with a month and day:
        ``nyc2010-05-12`` → ``nyc2010``); after a prefix it is a file number (``dscn2010``,
        ``img2009``, ``p2010`` are dropped). Kept, such a token is treated as one with a longer word
        (``paris2008``): whole as a tag, and in free text ``file_stems`` keeps the word of 3+ letters
        (``nyc2010`` → ``nyc``) and a shorter code whole (``la2010``). With a separator the year is
        a number of its own and goes (``nyc_2010``, ``sxsw 2009`` → ``nyc``, ``sxsw``).
    hashes : bool
        Drop hexadecimal hashes of 8+ digits and ``hash(0x…)``; in tags also the bare word
        ``hash`` that the same exporter leaves as a tag of its own (free text keeps it).
    file_stems : bool
        In free text, a word of 3+ letters followed by a 1–4 digit number is a numbered file
        name (titles such as "Clipart by Nicu Buculei - head1"): keep the word, drop the number
        (``head1`` → ``head``, ``smiley111`` → ``smiley``), as a separate ``_01`` is dropped.
        Shorter letter parts are codes and stay whole (``mp3``, ``a4``, ``f16``). Tags are left
        alone: a tag is chosen (``route66``, ``apollo11``). Counted as reason ``file_stem``
        (the word is kept, so this removes no token).
    multiword : {"join", "split"}
        A tag of several words becomes one token joined by ``_`` or several tokens. In free
        text an existing ``a_b`` token is kept (join) or split. Noise parts of a joined tag
        (numbers, hashes) are dropped, and stop words at its ends.
    stopwords : frozenset of str or None
        Words to drop (already normalised); None keeps all words.
    junk : frozenset of str or None
        Whole tokens that describe the upload rather than the picture (``unsorted``).
    min_len, max_len : int
        Drop tokens shorter / longer than this many characters (0 disables ``max_len``). A tag
        that is one token (``multiword="join"``, or a tag kept whole with ``"split"``: a negation,
        :data:`KEPT_AT_ENDS`) is judged whole: one too long is dropped whole (reason ``long``),
        not cut into its words, so ``no_…`` never loses its ``no``.
    track_vocab : bool
        Keep the sets of distinct raw/removed/output tokens in :attr:`stats`, up to
        :data:`VOCAB_TRACK_LIMIT` distinct tokens (~160 bytes each), then stop counting
        (:attr:`NormalizationStats.vocab_complete`); the other counts are always kept.
    cache_size : int
        Up to this many distinct tags and words keep their result in a cache (the first ones
        seen; tag vocabularies are Zipf-distributed, so most work becomes a dictionary
        lookup). Bounds the memory; 0 disables. Do not change other settings afterwards.

    Attributes
    ----------
    stats : NormalizationStats
        Accumulates over all calls; :meth:`NormalizationStats.reset` starts afresh.
    """

    url_decode: bool = True
    html: bool = True
    strip_urls: bool = True
    unicode_nfkc: bool = True
    lowercase: bool = True
    machine_tags: bool = True
    punctuation: bool = True
    numbers: bool = True
    camera_names: bool = True
    hashes: bool = True
    file_stems: bool = True
    multiword: Literal["join", "split"] = "join"
    stopwords: frozenset[str] | None = ENGLISH_STOPWORDS
    junk: frozenset[str] | None = DEFAULT_JUNK
    min_len: int = 2
    max_len: int = 40
    track_vocab: bool = True
    cache_size: int = 1 << 17
    stats: NormalizationStats = field(default_factory=NormalizationStats, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.multiword not in ("join", "split"):
            raise ValueError(f"multiword must be 'join' or 'split', got {self.multiword!r}.")
        if self.min_len < 0 or self.max_len < 0:
            raise ValueError(f"min_len and max_len must be >= 0, got {self.min_len}, {self.max_len}.")
        if not is_int(self.cache_size) or self.cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0 (0 disables the cache), got {self.cache_size!r}.")
        check_not_a_str(self.stopwords, "stopwords", "words")  # frozenset("the") would be {'t', 'h', 'e'}
        check_not_a_str(self.junk, "junk", "words")
        if self.stopwords is not None:
            self.stopwords = frozenset(self.stopwords)
        if self.junk is not None:
            self.junk = frozenset(self.junk)
        if not self.track_vocab:
            self.stats.raw_vocab = self.stats.removed_vocab = self.stats.output_vocab = None
        self._caches: tuple[dict, dict] = ({}, {})  # words of text, tags

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_caches", None)  # the cache is rebuilt on use
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("file_stems", False)  # pickled before the step existed: keep its behaviour
        st = state.get("stats")
        if st is not None and not hasattr(st, "trimmed"):  # stats pickled before `trimmed` existed
            st.trimmed, st.trimmed_examples = Counter(), {}
        self.__dict__.update(state)
        self._caches: tuple[dict, dict] = ({}, {})  # words of text, tags

    # ------------------------------------------------------------------ presets
    @classmethod
    def for_text(cls, **kwargs) -> Normalizer:
        """A preset for clean prose (dictionaries, books): keeps stop words, no junk list.

        Word2Vec handles frequent words by downsampling, so stop words stay in clean text.
        """
        kwargs.setdefault("stopwords", None)
        kwargs.setdefault("junk", None)
        kwargs.setdefault("track_vocab", False)
        return cls(**kwargs)

    def __repr__(self) -> str:
        """The settings that differ from the defaults (``Normalizer()`` for none), a word set of more
        than 8 by its size: the dataclass's repr printed all 179 stop words and 26 junk words."""
        parts = []
        for name, f in self.__dataclass_fields__.items():
            if not f.repr:
                continue
            value = getattr(self, name)
            if value == f.default:
                continue
            if isinstance(value, (set, frozenset)):
                shown = repr(sorted(value)) if len(value) <= 8 else f"<{len(value)} words>"
            else:
                shown = repr(value)
            parts.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def config(self) -> dict:
        """The settings as a plain dict (provenance for models and data sets)."""
        out = {}
        for k in self.__dataclass_fields__:
            if k in ("stats",):
                continue
            v = getattr(self, k)
            if isinstance(v, frozenset):
                v = sorted(v)
            out[k] = v
        return out

    # ------------------------------------------------------------------ public API
    def __call__(self, text: str) -> list[str]:
        """Same as :meth:`text`."""
        return self.text(text)

    def text(self, text: str | None) -> list[str]:
        """Normalise free text (a title, a description, a caption).

        Parameters
        ----------
        text : str or None
            Raw text; None and ``""`` give ``[]``.

        Returns
        -------
        list of str
            Clean tokens in their original order (duplicates kept).

        Raises
        ------
        TypeError
            `text` is not a str (bytes must be decoded first).
        """
        if text is None:
            return []
        if not isinstance(text, str):
            raise TypeError(_not_text("Normalizer.text", text))
        if not text:
            return []
        text = self._clean(text)
        lowercase = self.lowercase
        # hash( 0x1f ) written with spaces: one word (HASH( 0X1F ) too, when the case is kept)
        if self.hashes and "(" in text and "hash" in (text if lowercase else text.lower()):
            text = (_HASH_CALL if lowercase else _HASH_CALL_ANY_CASE).sub(_without_whitespace, text)
        # URLs, machine tags and hash(...) are removed word by word (_unit_uncached), so that a word
        # that was one, punctuation and all ("(http://x.com)", "me@x.org,"), is one removed raw token
        return self._run(text.split(), False)

    def tags(self, tags: Iterable[str] | str | None, sep: str = ",") -> list[str]:
        """Normalise a list of tags; each tag is one unit (see ``multiword``).

        Parameters
        ----------
        tags : iterable of str, or str
            The tags, or one string of tags separated by `sep` (YFCC100M: ``"new+york,nyc"``).
        sep : str
            Separator when `tags` is a string.

        Returns
        -------
        list of str
            Clean tag tokens in order, duplicates removed (first occurrence kept).
        """
        if tags is None:
            return []
        if isinstance(tags, str):
            units = [t.strip() for t in tags.split(sep)]
        elif isinstance(tags, (bytes, bytearray)) or not isinstance(tags, Iterable):
            raise TypeError(_not_text("Normalizer.tags", tags, "a list of tags or one string of tags"))
        else:
            units = []
            for t in tags:
                if isinstance(t, (bytes, bytearray)):
                    raise TypeError(_not_text("Normalizer.tags", t, "each tag as a str"))
                if t is not None:
                    units.append(str(t).strip())
        out = self._run([u for u in units if u], True)
        if len(out) > 1:
            out = list(dict.fromkeys(out))
        return out

    # ------------------------------------------------------------------ internals
    def _run(self, units: list[str], is_tag: bool) -> list[str]:
        """Normalise units through the cache and count them (the hot loop: keep it lean)."""
        cache = self._caches[is_tag]
        room = len(cache) < self.cache_size
        st = self.stats
        vocab = counting = st.raw_vocab is not None and st.vocab_complete
        raw_vocab, output_vocab, limit = st.raw_vocab, st.output_vocab, VOCAB_TRACK_LIMIT
        counted = 0
        out: list[str] = []
        removed = 0
        for u in units:
            r = cache.get(u)
            if r is None:
                r = self._unit_uncached(u, is_tag)
                if room:
                    cache[u] = r
                    room = len(cache) < self.cache_size
            toks, reasons = r
            if toks:
                out.extend(toks)
            else:
                removed += 1
            if reasons:
                self._note(u, reasons, not toks)
            if vocab:
                if len(raw_vocab) >= limit or len(output_vocab) >= limit:  # stop counting: bounded memory
                    vocab = st.vocab_complete = False
                    continue
                counted += 1
                raw_vocab.add(u)
                if toks:
                    output_vocab.update(toks)
                else:
                    st.removed_vocab.add(u)
        if counting:
            st.vocab_raw_tokens += counted
        st.raw_tokens += len(units)
        st.removed_tokens += removed
        st.output_tokens += len(out)
        return out

    def _note(self, raw: str, reasons: tuple[str, ...], removed: bool) -> None:
        """Count a removed unit under its one reason (:meth:`_unit_uncached` gives a removed unit
        one), and the pieces dropped from a kept one each."""
        st = self.stats
        counts, examples = (st.reasons, st.examples) if removed else (st.trimmed, st.trimmed_examples)
        for r in reasons:
            counts[r] += 1
            ex = examples.get(r)
            if ex is None:
                ex = examples[r] = []
            if len(ex) < 5 and raw not in ex:
                ex.append(raw)

    def _clean(self, s: str) -> str:
        """String-level steps, repeated until stable (decoding can reveal more encoding)."""
        if s.isascii() and not _NEEDS_DECODING.search(s):  # the common case: nothing to decode
            return s.lower() if self.lowercase else s
        for _ in range(8):
            prev = s
            if self.url_decode:
                s = url_decode(s)
            if self.html and ("&" in s or "<" in s):
                s = html.unescape(s)
                s = _HTML_TAG.sub(" ", s)
            if self.unicode_nfkc and not s.isascii():
                s = unicodedata.normalize("NFKC", s).translate(_INVISIBLE)
            if self.lowercase:
                # casefold() turns the Turkish dotted capital İ into i + U+0307 (a combining dot):
                # "İstanbul" would be another word than "istanbul"
                s = s.casefold().replace("i\u0307", "i") if not s.isascii() else s.lower()
            if s == prev:
                break
        return s

    def _remove_patterns(self, s: str, found: list[str] | None = None) -> str:
        """URLs, machine tags and ``hash(…)`` calls out of `s`, each replaced by a space; the reason of
        each one removed is appended to `found` (when given), in the order of the passes."""
        def sub(pattern: re.Pattern, reason: str, s: str, keep: bool = False) -> str:
            if found is None:
                return pattern.sub(_url_kept if keep else " ", s)

            def repl(m: re.Match) -> str:
                found.append(reason)
                return _url_kept(m) if keep else " "
            return pattern.sub(repl, s)

        low = s if self.lowercase else s.lower()  # (the guards' words in any case: WWW.x.com, HASH(…))
        if self.strip_urls and (":" in s or "www" in low or "@" in s):
            s = sub(_URL, "url", s, keep=True)
        if self.machine_tags and ":" in s and "=" in s:
            s = sub(_MACHINE_TAG, "machine_tag", s)
        if self.hashes and "hash" in (s if self.lowercase else s.lower()):  # (s: the URLs are gone)
            s = sub(_HASH_CALL if self.lowercase else _HASH_CALL_ANY_CASE, "hash", s)
        return s

    def _text_word_patterns(self, word: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """A word of text that holds a URL, e-mail address, machine tag or ``hash(…)``: what is left
        of it normalised, piece by piece, as one raw token (removed under the pattern's reason when
        nothing is left; else the patterns are pieces trimmed off it); None if it holds none."""
        found: list[str] = []
        s = self._remove_patterns(word, found)
        if not found:
            return None
        toks: list[str] = []
        reasons = list(found)
        for piece in s.split():
            t, r = self._unit_uncached(piece, False, patterns=False)
            toks.extend(t)
            reasons.extend(x for x in r if x != "empty")  # (the "(" left of "(http://x.com)": no word)
        if not toks:
            return (), (found[0],)
        return tuple(toks), tuple(reasons)

    def _split(self, s: str) -> list[str]:
        if not self.punctuation:
            return s.split()
        if s.isascii():
            return (_ASCII_TOKEN if self.lowercase else _ASCII_TOKEN_ANY_CASE).findall(s)
        return s.translate(_separator_table()).split()

    def _noise(self, tok: str) -> str | None:
        """The reason a single token is noise, or None."""
        if self.numbers and _NUMBER.fullmatch(tok):
            return "number"
        if self.camera_names and (_CAMERA if self.lowercase else _CAMERA_ANY_CASE).fullmatch(tok):
            return "camera"
        if self.hashes and (_HEX_HASH if self.lowercase else _HEX_HASH_ANY_CASE).fullmatch(tok):
            return "hash"
        return None

    def _keep(self, tok: str, reasons: list[str], is_tag: bool = False) -> bool:
        if len(tok) < self.min_len:
            reasons.append("short")
            return False
        if self.max_len and len(tok) > self.max_len:
            reasons.append("long")
            return False
        if self.stopwords is not None and tok in self.stopwords:
            reasons.append("stopword")
            return False
        if self.junk is not None and tok in self.junk:
            reasons.append("junk")
            return False
        if is_tag and self.hashes and (tok if self.lowercase else tok.lower()) == _BARE_HASH_TAG:
            reasons.append("hash")
            return False
        return True

    def _unstem(self, tok: str, reasons: list[str]) -> str:
        """``head1`` → ``head``: the word of a numbered file name (when ``file_stems``)."""
        if self.file_stems:
            m = _FILE_STEM.fullmatch(tok)
            if m:
                reasons.append("file_stem")
                return m.group(1)
        return tok

    def _unit_uncached(self, unit: str, is_tag: bool,
                       patterns: bool = True) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Normalise one tag (``is_tag``) or one whitespace-separated word of text (`patterns`:
        URLs, machine tags and ``hash(…)`` not removed from it yet)."""
        reasons: list[str] = []
        if is_tag:
            cleaned = self._clean(unit)
            if self.machine_tags and _MACHINE_TAG_UNIT.fullmatch(cleaned.strip()):
                return (), ("machine_tag",)  # the whole tag, also a value with spaces
            s = self._remove_patterns(cleaned)
            removed = _removed_whole(cleaned, s)
            if removed:
                return (), (removed,)
        else:
            s = unit  # already cleaned by text()
            low = s if self.lowercase else s.lower()
            if patterns and (":" in s or "www" in low or "@" in s or "hash" in low):
                word = self._text_word_patterns(s)
                if word is not None:
                    return word
        if not s.strip():
            return (), ("empty",)
        # Whole-unit noise before splitting: camera names and hashes contain separators' parts.
        whole = s.strip().replace(" ", "_") if is_tag else s
        r = self._noise(whole.strip("_")) if self.punctuation else None
        if r:
            return (), (r,)
        pieces = self._split(s)
        if is_tag and self.multiword == "join":
            out = self._joined_tag(pieces, reasons)
        elif is_tag and (kept := self._kept_whole(pieces, reasons)) is not None:
            out = kept
        else:
            out = [tok for p in pieces for tok in self._piece_tokens(p, is_tag, reasons)]
        if not out:  # removed: counted under the first rule that dropped it (not a trim, head1's file_stem)
            first = next((r for r in reasons if r not in _TRIM_ONLY), "empty")
            return (), (first,)
        return tuple(out), tuple(reasons)

    def _joined_tag(self, pieces: list[str], reasons: list[str]) -> list[str]:
        """A multi-word tag as one token (``new_york``): its words without noise, stop words
        stripped at both ends (``the_beatles`` → ``beatles``), but not the words that turn its
        meaning round (``no_smoking``, ``not_for_sale``, ``off_road``: :data:`KEPT_AT_ENDS`) nor
        the particle that ends a phrase (``thumbs_up``, ``check_in``: :data:`KEPT_AT_END`); a tag
        of stop words alone goes as one (reason "stopword"), and so does a token outside
        ``min_len``/``max_len`` ("short", "long") or a junk one."""
        parts = self._joined_parts(pieces, reasons)
        if parts:
            tok = "_".join(parts)
            if self._keep(tok, reasons, True):
                return [tok]
        return []

    def _joined_parts(self, pieces: list[str], reasons: list[str]) -> list[str]:
        """The words of :meth:`_joined_tag`'s token, before ``_keep`` judges it ([] when nothing is
        left: noise or stop words alone)."""
        parts: list[str] = []
        for p in pieces:
            subs = [x for x in p.split("_") if x]
            # a piece that is a camera name or a hash as a whole goes whole (``img_1234.jpg``)
            if len(subs) > 1 and self._noise_logged("_".join(subs), reasons):
                continue
            parts.extend(subs)
        parts = [p for p in parts if not self._noise_logged(p, reasons)]
        sw = self.stopwords or ()
        lo, hi = 0, len(parts)  # strip stop words at both ends (indices: pop(0) is quadratic)
        while lo < hi and parts[lo] in sw and parts[lo] not in KEPT_AT_ENDS:
            lo += 1
        while hi > lo and parts[hi - 1] in sw and parts[hi - 1] not in KEPT_AT_END:
            hi -= 1
        if parts and (lo == hi or all(p in sw for p in parts[lo:hi])):
            reasons.append("stopword")  # (the, not_a, out_of: nothing of its own)
            return []
        return parts[lo:hi]

    def _kept_whole(self, pieces: list[str], reasons: list[str]) -> list[str] | None:
        """With ``multiword="split"``: a tag whose end words would be dropped as stop words but
        turn its meaning round stays one token (``no_smoking``, not ``smoking``; ``thumbs_up``,
        not ``thumbs``); None for a tag that splits.

        Such a tag is one token, so ``max_len`` (and ``min_len``, ``junk``) judge it whole, as
        ``multiword="join"`` does: one too long is dropped whole (``[]``, reason "long"), never
        split into its other words (``no_parking_on_either_side_of_the_road`` is not ``parking``,
        ``side``, ``road``: the negation would be lost and the meaning turned round)."""
        if not self.stopwords:
            return None
        scratch: list[str] = []
        parts = self._joined_parts(pieces, scratch)
        if len(parts) < 2:
            return None
        first, last = parts[0], parts[-1]
        if not ((first in KEPT_AT_ENDS and first in self.stopwords)
                or (last in KEPT_AT_END and last in self.stopwords)):
            return None
        reasons.extend(scratch)
        tok = "_".join(parts)
        return [tok] if self._keep(tok, reasons, True) else []

    def _piece_tokens(self, piece: str, is_tag: bool, reasons: list[str]) -> list[str]:
        """The tokens of one piece of a text word or of a tag split into several words."""
        subs = [x for x in piece.split("_") if x]
        if not subs:
            return []
        # a camera name or hash as a whole goes whole, also when split (``img_1234`` is not ``img``)
        if len(subs) > 1 and self._noise_logged("_".join(subs), reasons):
            return []
        subs = [x for x in subs if not self._noise_logged(x, reasons)]
        if not is_tag:
            subs = [self._unstem(x, reasons) for x in subs]
        if not subs:
            return []
        cands = ["_".join(subs)] if self.multiword == "join" else subs
        return [tok for tok in cands if self._keep(tok, reasons, is_tag)]

    def _noise_logged(self, tok: str, reasons: list[str]) -> bool:
        r = self._noise(tok)
        if r:
            reasons.append(r)
            return True
        return False


def _removed_whole(tag: str, after: str) -> str | None:
    """Why a tag was nothing but a removed pattern (``machine_tag``, ``hash``, ``url``), or None when
    something is left of it after the patterns are removed."""
    if after == tag or after.strip():
        return None
    if "=" in tag and ":" in tag:
        return "machine_tag"
    if "(" in tag and "hash" in tag.lower():  # (HASH(0x…) with lowercase=False)
        return "hash"
    return "url"
