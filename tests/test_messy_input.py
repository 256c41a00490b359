"""Real-world messy metadata: each test is a bug found in an audit of the normaliser and readers.

Every input here is one a Flickr / YFCC100M-style collection holds: emoji with variation
selectors, soft hyphens from ``&shy;``, Persian text with zero-width non-joiners, Turkish tags,
Lightroom and camera file names, Flickr machine tags with quoted values, files saved by Excel or
Notepad with a byte order mark, and files compressed in formats that are not read.
"""

import bz2
import gzip
import json
import lzma

import pytest

from gensim_im2vec.corpora import FolderCorpus, TableCorpus, TextCorpus, YFCC100MCorpus
from gensim_im2vec.text import Normalizer, url_decode

BOM = b"\xef\xbb\xbf"


def _yfcc_row(photo_id: str = "6985418911", tags: str = "dog,cat", title: str = "My+dog") -> str:
    return "\t".join([photo_id, "4e2f7a26a1@N00", "nick", "2012-03-11", "1331500000", "Canon", title, "", tags,
                      *[""] * 12, "jpg", "0"])  # fmt: skip


# ----------------------------------------------------------------------------- the normaliser


@pytest.mark.parametrize(
    ("raw", "text", "tag"),
    [
        # U+FE0F (emoji presentation) was kept and glued to the next word: "\ufe0fny", "\ufe0flove"
        ("I\u2764\ufe0fNY", ["ny"], ["i_ny"]),
        ("\u2764\ufe0flove", ["love"], ["love"]),
        ("caf\u00e9\ufe0e", ["café"], ["café"]),
        # the keycap (an enclosing mark) made "1️⃣" a token of its own
        ("1\ufe0f\u20e3 party", ["party"], ["party"]),
        # the tag characters of a subdivision flag (🏴 + U+E0067 …) were glued to the word
        ("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007fscotland", ["scotland"], ["scotland"]),
    ],
)
def test_emoji_sequences_leave_no_invisible_characters_in_tokens(raw, text, tag):
    assert Normalizer().text(raw) == text
    assert Normalizer().tags([raw]) == tag


def test_invisible_characters_inside_a_word_do_not_split_it():
    norm = Normalizer()
    # a soft hyphen (HTML &shy;) is a hyphenation hint: "Ge-schich-te" was three tokens
    assert norm.text("Ge&shy;schich&shy;te") == ["geschichte"]
    assert norm.text("Ge\u00adschich\u00adte") == norm.text("Geschichte")
    # Persian writes the zero-width non-joiner inside words: "می‌خواهم" was split in two
    assert norm.text("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645") == ["\u0645\u06cc\u062e\u0648\u0627\u0647\u0645"]
    assert norm.tags(["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"]) == ["\u0645\u06cc\u062e\u0648\u0627\u0647\u0645"]
    # word joiner and zero-width no-break space
    assert norm.text("sun\u2060set sea\ufeffside") == ["sunset", "seaside"]
    # a zero-width *space* still separates words (a word boundary in Thai, Khmer)
    assert norm.text("foo\u200bbar") == ["foo", "bar"]


def test_turkish_dotted_capital_i_folds_to_plain_i():
    norm = Normalizer()
    # casefold() gives "i" + U+0307: "i̇stanbul" was another word than "istanbul"
    assert norm.text("İSTANBUL İstanbul Istanbul istanbul") == ["istanbul"] * 4
    assert norm.tags(["İzmir", "izmir"]) == ["izmir"]
    assert all("\u0307" not in t for t in norm.text("İ İİ İyi"))


def test_a_less_than_sign_is_not_an_html_tag():
    norm = Normalizer()
    # everything from "<" to the next ">" was removed as a tag: "cats", "bottle", "opener" were lost
    assert norm.text("I <3 cats > dogs") == ["cats", "dogs"]
    assert norm.text("drink < bottle; opener > glass") == ["drink", "bottle", "opener", "glass"]
    assert norm.text("&lt;3 cats &gt; dogs") == ["cats", "dogs"]
    # real tags still go
    assert norm.text('a <a href="http://x.com/">link</a> <br/>home <!-- note --> <b>bold</b>') == ["link", "home", "bold"]


@pytest.mark.parametrize("mode", ["join", "split"])
def test_a_machine_tag_with_spaces_in_its_value_goes_whole(mode):
    norm = Normalizer(multiword=mode)
    # the value after the first space was kept as a tag: "leo", "eos_5d"
    assert norm.tags(['taxonomy:binomial="Panthera leo"', "exif:model=Canon EOS 5D", "dog"]) == ["dog"]
    assert norm.tags("taxonomy%3Abinomial%3DPanthera+leo,uploaded%3Aby%3Dflickrmobile,lion") == ["lion"]
    assert norm.stats.reasons["machine_tag"] == 4
    assert norm.tags(["foo:bar", "time:12:30"]) == (["foo_bar", "time"] if mode == "join" else ["foo", "bar", "time"])


@pytest.mark.parametrize("mode", ["join", "split"])
@pytest.mark.parametrize(
    "raw",
    ["IMG_1234.JPG", "IMG_1234-2", "IMG_1234 (2)", "dsc_1234 copy", "_MG_1234", "_MG_1234.jpg", "DSC_0042-Edit"],
)
def test_camera_file_names_with_a_suffix_leave_no_prefix_behind(raw, mode):
    # tags kept "img_jpg", "img", "dsc_edit", "mg"; split text kept "img", "dsc"
    norm = Normalizer(multiword=mode)
    left = {"dsc_1234 copy": ["copy"], "DSC_0042-Edit": ["edit"]}.get(raw, [])
    assert norm.tags([raw]) == left
    assert norm.text(raw) == left


def test_camera_names_in_longer_tags_and_text():
    assert Normalizer().tags(["dsc_1234 sunset", "sunset"]) == ["sunset"]
    assert Normalizer(multiword="split").text("IMG_1234-2 at the beach") == ["beach"]
    assert Normalizer().text("_MG_4521 Sunset") == ["sunset"]
    assert Normalizer().tags(["new_york-city", "mg_midget"]) == ["new_york_city", "mg_midget"]  # not camera names


def test_a_percent_run_of_utf8_and_latin1_decodes_each_byte_as_it_can():
    # the whole run was read as Latin-1 once one byte was not UTF-8: "Ã©é"
    assert url_decode("%C3%A9%E9") == "éé"
    assert url_decode("caf%C3%A9%2C%E9t%E9") == "café,été"
    assert url_decode("%E9t%E9") == "été" and url_decode("%e9%bb%83%e5%b1%b1") == "黃山"  # as before
    assert Normalizer().text("caf%C3%A9%2C%E9t%E9") == ["café", "été"]


# ----------------------------------------------------------------------------- the readers


def test_a_byte_order_mark_is_not_part_of_the_first_field(tmp_path):
    # YFCC100M: the first photo's key was "img:\ufeff6985418911", which no feature store holds
    (tmp_path / "y.tsv").write_bytes(BOM + (_yfcc_row() + "\r\n" + _yfcc_row("42")).encode())
    assert [d[0] for d in YFCC100MCorpus(tmp_path / "y.tsv")] == ["img:6985418911", "img:42"]
    (tmp_path / "y.tsv.gz").write_bytes(gzip.compress((tmp_path / "y.tsv").read_bytes()))
    (tmp_path / "y.tsv.bz2").write_bytes(bz2.compress((tmp_path / "y.tsv").read_bytes()))
    for name in ("y.tsv.gz", "y.tsv.bz2"):
        assert [d[0] for d in YFCC100MCorpus(tmp_path / name)] == ["img:6985418911", "img:42"]
    # CSV saved by Excel: the header's first column was "\ufeffimage" ("not in the header")
    (tmp_path / "t.csv").write_bytes(BOM + b"image,caption\r\ncat.png,a cat\r\n")
    assert list(TableCorpus(tmp_path / "t.csv", image_column="image", text_columns=["caption"])) == [["img:cat", "cat"]]
    # JSONL: the first record was skipped as bad_json
    (tmp_path / "t.jsonl").write_bytes(BOM + b'{"image": "cat.png", "caption": "a cat"}\n{"image": "dog.png", "caption": "a dog"}\n')
    js = TableCorpus(tmp_path / "t.jsonl", image_column="image", text_columns=["caption"])
    assert list(js) == [["img:cat", "cat"], ["img:dog", "dog"]] and not js.stats.skipped
    # a JSON sidecar saved by Notepad was skipped as bad_json
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"")
    (tmp_path / "imgs" / "a.json").write_bytes(BOM + json.dumps({"title": "A cat", "tags": ["pet"]}).encode())
    folder = FolderCorpus(tmp_path / "imgs")
    assert list(folder) == [["img:a", "pet", "cat"]] and not folder.stats.skipped


def test_a_bom_only_file_and_a_bom_header_only_file_give_nothing(tmp_path):
    (tmp_path / "e.csv").write_bytes(BOM)
    (tmp_path / "h.csv").write_bytes(BOM + b"image,caption\n")
    for name in ("e.csv", "h.csv"):
        assert list(TableCorpus(tmp_path / name, image_column="image", text_columns=["caption"])) == []


def test_csv_rows_are_named_by_their_line_in_the_file(tmp_path):
    # the csv module counts only the lines it was given: after a line skipped as bad UTF-8 every
    # later row was named one line too early
    p = tmp_path / "t.csv"
    p.write_bytes(b"image,caption\ncat.png,a cat\nbad.png,\xff\xfe\ndog.png,a dog,extra\n"
                  b'soup.png,"two\nlines",x\nx.png,ok\n')  # fmt: skip
    c = TableCorpus(p, image_column="image", text_columns=["caption"])
    assert list(c) == [["img:cat", "cat"], ["img:x", "ok"]]
    assert c.stats.examples == {"bad_encoding": [f"{p}:3"], "wrong_columns": [f"{p}:4", f"{p}:5"]}


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("c.txt.xz", lzma.compress(b"hello world\n" * 50), r"c.txt.xz is xz-compressed.*xz -d c.txt.xz"),
        ("c.txt.zst", b"\x28\xb5\x2f\xfd" + b"\x00" * 40, r"c.txt.zst is zstd-compressed.*zstd -d"),
        ("c.zip", b"PK\x03\x04" + b"\x00" * 40, r"c.zip is zip-compressed.*unzip"),
        ("c.txt", "hello world\n".encode("utf-16"), r"c.txt is UTF-16 text.*iconv -f UTF-16 -t UTF-8"),
    ],
)
def test_a_file_in_a_format_that_is_not_read_is_named_with_the_fix(tmp_path, name, data, message):
    # it was read as text: garbage lines counted as bad_encoding, or garbage tokens trained on
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ValueError, match=message):
        list(TextCorpus(tmp_path / name))
    with pytest.raises(ValueError, match=message):
        list(YFCC100MCorpus(tmp_path / name))


def test_a_broken_json_sidecar_is_named_with_its_line(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "a.json").write_text('{\n  "title": "A cat",\n  "tags": ["pet",]\n}\n')
    c = FolderCorpus(tmp_path)
    assert list(c) == []
    # the skip named the image, a.png, not the file to fix
    assert c.stats.examples["bad_json"] == [f"{tmp_path / 'a.json'}:3"]
    # read_sidecar's error named neither the file nor its fix ("Expecting value: line 3 column 19")
    with pytest.raises(ValueError, match=r"a\.json:3: not valid JSON .*fix or remove the sidecar"):
        c.read_sidecar(str(tmp_path / "a.png"))


def test_several_captions_in_a_list_are_all_read(tmp_path):
    # FolderCorpus ignored a list of captions (the image was skipped as no_text)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"")
    (tmp_path / "imgs" / "a.json").write_text(json.dumps({"caption": ["A cat on a mat", "A sleeping kitten"]}))
    assert list(FolderCorpus(tmp_path / "imgs")) == [["img:a", "cat", "mat", "sleeping", "kitten"]]
    # TableCorpus normalised str(list): a newline inside a caption became the letter "n" ("nline")
    (tmp_path / "t.jsonl").write_text(json.dumps({"image": "a.png", "caption": ["first\nline", "second"]}) + "\n")
    assert list(TableCorpus(tmp_path / "t.jsonl", image_column="image", text_columns=["caption"])) == [
        ["img:a", "first", "line", "second"]]


def test_messy_yfcc_lines_are_read_the_same_on_every_pass(tmp_path):
    rows = [
        _yfcc_row("1", "dog,new+york,taxonomy%3Abinomial%3DCanis+lupus,IMG_1234.JPG", "I+%E2%9D%A4%EF%B8%8F+NY"),
        _yfcc_row("2")[:40],  # cut short
        _yfcc_row("3") + "\textra",
        _yfcc_row("4", "%C4%B0stanbul,Ge%C2%ADschich%C2%ADte", "%3C3+cats+%3E+dogs"),
    ]
    p = tmp_path / "y.tsv"
    p.write_bytes(BOM + "\r\n".join(rows).encode() + b"\r\n" + _yfcc_row("5").encode()[:-3])  # ends mid-line
    c = YFCC100MCorpus(p)
    docs = list(c)
    assert docs == [["img:1", "dog", "new_york", "ny"], ["img:4", "istanbul", "geschichte", "cats", "dogs"]]
    assert c.stats.examples["wrong_columns"] == [f"{p}:2", f"{p}:3", f"{p}:5"]
    assert list(c) == docs


# ----------------------------------------------------------------------------- letters and a year


@pytest.mark.parametrize(
    ("raw", "tag", "text"),
    [
        ("nyc2010", "nyc2010", ["nyc"]),
        ("SXSW2009", "sxsw2009", ["sxsw"]),
        ("wwdc2008", "wwdc2008", ["wwdc"]),
        ("ces2011", "ces2011", ["ces"]),
        ("paris2008", "paris2008", ["paris"]),  # kept before too: 5 letters were no camera name
        ("la1999", "la1999", ["la1999"]),  # a 2-letter code stays whole in text, as mp3 does
        ("nyc2010-05-12", "nyc2010", ["nyc"]),  # a month and a day after the year are numbers
    ],
)
def test_letters_and_a_year_are_an_event_tag_not_a_camera_name(raw, tag, text):
    # 1-4 letters and 4+ digits were all camera names: Flickr's nyc2010, sxsw2009 were dropped
    norm = Normalizer()
    assert norm.tags([raw]) == [tag]
    assert norm.text(raw) == text
    assert norm.text(" ".join(text)) == text  # idempotent
    assert "camera" not in norm.stats.reasons


@pytest.mark.parametrize("mode", ["join", "split"])
def test_a_year_after_a_separator_is_a_number(mode):
    norm = Normalizer(multiword=mode)
    assert norm.tags(["nyc_2010", "sxsw-2009", "ces 2011"]) == ["nyc", "sxsw", "ces"]
    assert norm.stats.trimmed == {"number": 3} and not norm.stats.reasons  # the tags are kept, less a number


@pytest.mark.parametrize(
    "raw",
    ["dsc1234", "dscn2010", "dsc2010", "DSCF2010.JPG", "img2009", "IMGP2010", "pict2010", "sdc2010", "cimg2010",
     "mvi2010", "p2010", "p1010123", "p1012010", "img_2009_12_11", "sdc10001", "abc12345", "abcd1899", "abc2050",
     "nyc20101", "abc2010_1234"],
)
def test_a_camera_prefix_wins_over_a_year_like_file_number(raw):
    norm = Normalizer()
    assert norm.tags([raw]) == []
    assert norm.text(raw) == []
    assert norm.stats.reasons["camera"] == 2  # (".jpg" is counted as junk)


def test_the_drop_reasons_count_camera_names_not_event_tags():
    norm = Normalizer()
    tags = ["sxsw2009", "DSCN2010.JPG", "nyc2010", "img_2009_12_11", "ces2011", "2011", "dsc01234", "wwdc2008"]
    assert norm.tags(tags) == ["sxsw2009", "nyc2010", "ces2011", "wwdc2008"]
    assert norm.stats.reasons == {"camera": 3, "number": 1}  # DSCN2010.JPG once, as camera (not its ".jpg" as junk)
    assert norm.stats.removed_tokens == 4 and norm.stats.removed_vocab_share == 0.5
    assert norm.stats.examples["camera"] == ["DSCN2010.JPG", "img_2009_12_11", "dsc01234"]
    norm.stats.reset()
    assert norm.text("SXSW2009 keynote, photo DSCN2010.JPG by wwdc2008 fan") == ["sxsw", "keynote", "wwdc", "fan"]
    assert norm.stats.reasons == {"camera": 1, "junk": 1, "stopword": 1}  # camera: DSCN2010.JPG, junk: photo
    assert norm.stats.trimmed == {"file_stem": 2}  # sxsw2009, wwdc2008 keep their words
