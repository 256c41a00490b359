"""Tests for gensim_im2vec.datasets: builders on small subsets (when the Debian packages are
installed) and the grouped train/test split."""

import json
import os
from pathlib import Path

import pytest

from gensim_im2vec import datasets as ds
from gensim_im2vec.corpora import FolderCorpus, TextCorpus
from gensim_im2vec.datasets import (
    MissingPackageError,
    Split,
    build_dataset,
    build_dictionary_text,
    build_emoji,
    build_openclipart,
    emoji_base,
    load_split,
    make_split,
    parse_svg_metadata,
    split_groups,
)

HAVE_OPENCLIPART = os.path.isdir(ds.OPENCLIPART_SVG) and os.path.isdir(ds.OPENCLIPART_PNG)
HAVE_EMOJI = all(os.path.exists(p) for p in (ds.EMOJI_FONT, ds.EMOJI_TEST, *ds.CLDR_ANNOTATIONS))
HAVE_DICT = all(os.path.exists(f"{ds.DICTD_ROOT}/{s}.dict.dz") for s in ("gcide", "devil")) and os.path.isdir(
    ds.FORTUNES_ROOT
)
needs_openclipart = pytest.mark.skipif(
    not HAVE_OPENCLIPART, reason="Debian packages openclipart-svg openclipart-png not installed (make system-deps)"
)
needs_emoji = pytest.mark.skipif(
    not HAVE_EMOJI,
    reason="Debian packages fonts-noto-color-emoji unicode-cldr-core unicode-data not installed (make system-deps)",
)
needs_dict = pytest.mark.skipif(
    not HAVE_DICT, reason="Debian packages dict-gcide dict-devil fortunes not installed (make system-deps)"
)


def _check_split(split: Split, keys: set[str]) -> None:
    assert set(split.train) | set(split.test) == keys
    assert not set(split.train) & set(split.test)
    for side in (split.train, split.test):
        groups = {split.groups[k] for k in side}
        other = split.test if side is split.train else split.train
        assert not groups & {split.groups[k] for k in other}  # whole groups on one side


@needs_emoji
def test_build_emoji_subset_resume_and_read_back(tmp_path):
    from PIL import Image

    out = tmp_path / "emoji"
    m = build_emoji(out, limit=30)
    assert m["images"] == 30 and m["built"] == 30 and m["resumed"] == 0
    assert m["source_packages"] == ["fonts-noto-color-emoji", "unicode-cldr-core", "unicode-data"]
    meta = json.loads((out / "1f600.json").read_text())
    assert meta["title"] == "grinning face" and "grin" in meta["tags"] and meta["group"] == "Smileys & Emotion"
    img = Image.open(out / "1f600.png")
    assert img.size == (160, 160) and img.mode == "RGBA"
    bbox = img.getbbox()
    assert bbox is not None and bbox[2] - bbox[0] > 100  # the glyph was drawn, in colour
    assert len(img.convert("RGB").getcolors(maxcolors=1 << 16)) > 20
    docs = list(FolderCorpus(out))
    assert len(docs) == 30
    assert ["img:1f600", "face", "grin", "grinning_face", "grinning", "face"] in docs  # tags, then title
    assert json.loads((out / "dataset.json").read_text())["images"] == 30
    _check_split(load_split(out), {d[0][4:] for d in docs})
    # rerun: everything resumed; a half-written item (PNG without sidecar) is redone
    (out / "1f600.json").unlink()
    again = build_emoji(out, limit=30)
    assert again["built"] == 1 and again["resumed"] == 29
    assert not list(out.glob(".*tmp*"))


@needs_emoji
def test_emoji_skin_tones_share_the_base_group(tmp_path):
    m = build_emoji(tmp_path / "e", limit=400, skin_tones=True, split=False)
    assert m["images"] == 400
    groups = split_groups([(p.stem, json.loads(p.read_text())) for p in (tmp_path / "e").glob("*.json")
                           if p.name != "dataset.json"])  # fmt: skip
    # 👋 waving hand and its skin tones are one group
    waves = [k for k in groups if k.startswith("1f44b")]
    assert len(waves) == 6 and len({groups[k] for k in waves}) == 1


def test_emoji_base():
    assert emoji_base([0x1F44B, 0x1F3FD]) == "1f44b"
    assert emoji_base([0x1F469, 0x200D, 0x1F3EB]) == emoji_base([0x1F468, 0x1F3FF, 0x200D, 0x1F3EB]) == "1f3eb"
    assert emoji_base([0x1F1EB, 0x1F1F7]) == "1f1eb-1f1f7"


@needs_openclipart
def test_build_openclipart_subset_keeps_noise_and_reads_back(tmp_path):
    out = tmp_path / "oc"
    m = build_openclipart(out, limit=30)
    assert m["images"] == 30 and m["skipped"].get("svg_symlink_duplicate", 0) >= 1
    metas = {p.relative_to(out).with_suffix("").as_posix(): json.loads(p.read_text())
             for p in out.rglob("*.json") if p.parent != out or p.name not in ("dataset.json", "split.json")}  # fmt: skip
    assert len(metas) == 30
    frogs = metas["animals/2_dead_frogs_lumen_desig_01"]
    assert frogs["title"] == "2 dead frogs" and frogs["creator"] == "Lumen Design Studio"
    assert "kwaakwaa" in frogs["tags"] and len(frogs["tags"]) == 23  # raw, as the author wrote them
    assert all((out / (k + ".png")).stat().st_size > 100 for k in metas)
    corpus = FolderCorpus(out)
    docs = list(corpus)
    assert {d[0] for d in docs} <= {"img:" + k for k in metas} and len(docs) >= 25
    frog_doc = next(d for d in docs if d[0] == "img:animals/2_dead_frogs_lumen_desig_01")
    assert {"frog", "swamp", "skeleton"} <= set(frog_doc)
    split = load_split(out)
    _check_split(split, set(metas))
    # one author's drawings never straddle the split
    by_creator = {}
    for k, meta in metas.items():
        by_creator.setdefault(meta["creator"].lower(), set()).add(k in split.test)
    assert all(len(sides) == 1 for c, sides in by_creator.items() if c)


@needs_openclipart
def test_parse_svg_metadata_real_file():
    meta = parse_svg_metadata(Path(ds.OPENCLIPART_SVG) / "animals" / "bat_orlando_karam_.svg")
    assert meta["title"] == "bat" and meta["creator"] == "Orlando Karam"
    assert meta["tags"] == ["mammal", "bat", "animal"] and meta["description"] == ""


def test_parse_svg_metadata_handcrafted(tmp_path):
    svg = tmp_path / "x.svg"
    svg.write_text(
        '<svg xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><rdf:RDF><cc:Work rdf:about="">'
        "<dc:title>Red &amp; blue</dc:title><dc:description>A <![CDATA[nice]]> flag</dc:description>"
        "<dc:subject><rdf:Bag><rdf:li>flag</rdf:li><rdf:li></rdf:li><rdf:li>hash(0x885c2bc)</rdf:li></rdf:Bag>"
        "</dc:subject><dc:creator><cc:Agent><dc:title>Jane</dc:title></cc:Agent></dc:creator>"
        "</cc:Work></rdf:RDF></metadata><path d='M0 0'/></svg>"
    )
    meta = parse_svg_metadata(svg)
    assert meta["title"] == "Red & blue" and meta["description"] == "A nice flag"
    assert meta["tags"] == ["flag", "hash(0x885c2bc)"] and meta["creator"] == "Jane"
    (tmp_path / "y.svg").write_text("<svg/>")
    assert parse_svg_metadata(tmp_path / "y.svg")["tags"] == []


@needs_dict
def test_build_dictionary_text_subset(tmp_path):
    out = tmp_path / "dict"
    m = build_dictionary_text(out, limit=20, sources=("gcide", "devil", "fortunes"))
    assert m["documents"] == 60 and m["words"] > 600
    gcide = (out / "gcide.txt").read_text().splitlines()
    assert len(gcide) == 20
    assert not any(line.startswith("00-database") or "\\" in line for line in gcide)
    docs = list(TextCorpus(out))
    assert len(docs) == 60 and sum(map(len, docs)) > 500
    assert all(w == w.lower() for d in docs for w in d)
    again = build_dictionary_text(out, limit=20, sources=("gcide", "devil", "fortunes"))
    assert all(s["resumed"] for s in again["sources"].values()) and again["documents"] == 60


def test_missing_packages_name_the_fix(tmp_path):
    with pytest.raises(MissingPackageError, match="apt-get install openclipart-svg openclipart-png"):
        build_openclipart(tmp_path / "o", svg_root=tmp_path / "nope")
    with pytest.raises(MissingPackageError, match="fonts-noto-color-emoji"):
        build_emoji(tmp_path / "e", font_path=tmp_path / "nope.ttf")
    with pytest.raises(MissingPackageError, match="dict-gcide"):
        build_dictionary_text(tmp_path / "d", sources=("gcide",), dictd_root=tmp_path)
    with pytest.raises(MissingPackageError, match="apt-get install fortunes"):
        build_dictionary_text(tmp_path / "d", sources=("fortunes",), fortunes_root=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        build_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError, match="sources must be"):
        build_dictionary_text(tmp_path / "d", sources=("britannica",))


def _fake_set(root: Path, n_creators: int = 120, per_creator: int = 3) -> None:
    for c in range(n_creators):
        for i in range(per_creator):
            key = f"c{c:03d}/drawing{c}_{i:02d}"
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / (key + ".png")).write_bytes(b"png")
            tags = [f"tag{c % 40}", f"tag{(c + 1) % 40}", "common", "unsorted"]
            meta = {"title": f"drawing {c}", "tags": tags, "creator": f"Creator {c}" if c % 2 else ""}
            (root / (key + ".json")).write_text(json.dumps(meta))


def test_make_split_is_grouped_deterministic_and_stable(tmp_path):
    root = tmp_path / "set"
    _fake_set(root)
    s1 = make_split(root)
    s2 = load_split(root)
    assert s1.train == s2.train and s1.test == s2.test and s1.zero_shot_tags == s2.zero_shot_tags
    assert s1 == make_split(root, write=False)
    keys = {f"c{c:03d}/drawing{c}_{i:02d}" for c in range(120) for i in range(3)}
    _check_split(s1, keys)
    assert s1.n_groups == 120  # creator, or for anonymous drawings the series stem
    assert abs(len(s1.test) / len(keys) - 0.2) <= 0.01  # groups of 3: as close as it gets
    assert "unsorted" not in s1.zero_shot_tags  # tags are normalised first
    assert set(s1.zero_shot_tags) <= {f"tag{i}" for i in range(40)} | {"common", "drawing"}
    assert 0 < len(s1.zero_shot_tags) < 15
    other = make_split(root, seed="another", write=False)
    assert other.test != s1.test and abs(len(other.test) - len(s1.test)) <= 3
    with pytest.raises(ValueError, match="test_share"):
        make_split(root, test_share=1.0)
    with pytest.raises(FileNotFoundError, match="no split.json"):
        load_split(tmp_path)


def test_make_split_holds_a_tag_and_its_plural_out_together(tmp_path):
    """A zero-shot tag's plural (or singular) never trains: "flag" held out with "flags" seen was
    a zero-shot tag the model had met under another spelling. Tags without another form are
    decided by their own hash, as before the rule (their decisions do not move)."""
    from gensim_im2vec.datasets import _unit_hash, inflection_root

    root = tmp_path / "set"
    _fake_set(root)
    plain = make_split(root, zero_shot_share=0.5, write=False)
    # add plurals of every tag on a few other images
    for c in range(40):
        key = f"p{c:03d}/plural{c}"
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / (key + ".png")).write_bytes(b"png")
        (root / (key + ".json")).write_text(json.dumps({"title": "x", "tags": [f"tag{c}s", f"tag{c}s", "extra"],
                                                        "creator": f"P {c}"}))
    s = make_split(root, zero_shot_share=0.5, write=False)
    zero = set(s.zero_shot_tags)
    singles = {f"tag{c}" for c in range(40)}
    assert {t for t in zero if t in singles} == {t for t in plain.zero_shot_tags if t in singles}
    for c in range(40):  # each pair is in or out together, decided by the singular's hash
        held = _unit_hash("im2vec-split", f"tag:tag{c}") < 0.5
        assert (f"tag{c}" in zero) == (f"tag{c}s" in zero) == held, c
    assert 0 < sum(f"tag{c}s" in zero for c in range(40)) < 40
    assert ("extra" in zero) == (_unit_hash("im2vec-split", "tag:extra") < 0.5)  # no other form: its own hash
    assert s.config["version"] == 2
    assert inflection_root("tag3s", {"tag3", "tag3s"}) == "tag3" and inflection_root("tag3s", {"tag3s"}) == "tag3s"


def test_training_documents_drop_a_held_out_tags_plural_from_titles_too(tmp_path):
    """A title's "americas" beside the held-out tag "america" (the emoji globe's, in the demo) is the
    held-out word on a training image; it leaves the training documents with the tag. Other words stay."""
    from gensim_im2vec.datasets import training_documents

    root = tmp_path / "set"
    _fake_set(root)
    split = make_split(root, zero_shot_share=0.3, write=False)
    held = sorted(split.zero_shot_tags)[0]
    key = split.train[0]
    meta = json.loads((root / (key + ".json")).read_text())
    meta["title"] = f"maps of the {held}s and cities"
    (root / (key + ".json")).write_text(json.dumps(meta))
    docs = training_documents({"set": (root, split)}, tags_only=False)
    doc = next(d for d in docs if d[0] == "img:" + key)
    assert held not in doc and held + "s" not in doc, doc
    assert {"maps", "cities"} <= set(doc)
    assert not any(w in split.zero_shot_tags or w in {t + "s" for t in split.zero_shot_tags}
                   for d in docs for w in d[1:])


def test_split_groups_links_creator_series_and_identical_bytes():
    items = [
        ("a/flower_01", {"creator": "Ann"}),
        ("c/tree", {"creator": "ann"}),  # same creator, case-insensitive
        ("b/flower_02", {}),  # anonymous series: flower_02, flower_03
        ("b/flower_03", {}),
        ("z/flower_04", {"creator": "Bob"}),  # Bob's flower is not Ann's: no series link across creators
        ("d/copy", {"sha1": "abc"}),
        ("e/other", {"sha1": "abc", "creator": "Bob"}),  # identical bytes link anyway
        ("f/alone", {}),
        ("g/x1", {"split_group": "emoji:1f44b", "creator": "Ann"}),  # split_group wins
        ("g/x2", {"split_group": "emoji:1f44b"}),
    ]
    g = split_groups(items)
    assert g["a/flower_01"] == g["c/tree"] == "creator:ann"
    assert g["b/flower_02"] == g["b/flower_03"] == "series:flower" != g["a/flower_01"]
    assert g["d/copy"] == g["e/other"] == g["z/flower_04"] == "creator:bob"
    assert g["g/x1"] == g["g/x2"] == "group:emoji:1f44b"
    assert len(set(g.values())) == 5
    assert split_groups(list(reversed(items))) == g  # order does not matter


def test_split_groups_links_an_anonymous_drawing_to_its_copies_series():
    """Before copies were merged, ``plants/flower_01`` and its byte-identical ``special/bloom_01``
    were linked by their bytes, and ``bloom_01`` to ``bloom_02`` by its series: one group. The
    merged drawing keeps both links through its ``copies``."""
    items = [("plants/flower_01", {"sha1": "x", "copies": ["special/bloom_01"]}),
             ("special/bloom_02", {"sha1": "y"}), ("plants/tree_01", {"sha1": "z"})]
    g = split_groups(items)
    assert g["plants/flower_01"] == g["special/bloom_02"] != g["plants/tree_01"]


def test_a_limited_build_counts_the_skips_it_walked_past_only(tmp_path):
    """The copies are found over the whole collection, but a build that stops at its limit counted
    every skipped file of the collection (663 symlinks for ``limit=5``): only those before it."""
    svg_root, png_root = _fake_clipart(tmp_path)
    (png_root / "signs_and_symbols/star_8.png").unlink()  # the last drawing in sorted order has no PNG
    (svg_root / "animals/cat_link.svg").symlink_to(svg_root / "animals/cat_afr.svg")  # the second in order
    m = build_openclipart(tmp_path / "oc", svg_root=svg_root, png_root=png_root, limit=1)
    assert m["images"] == 1 and m["skipped"] == {}
    m = build_openclipart(tmp_path / "oc", svg_root=svg_root, png_root=png_root, limit=3)
    assert m["skipped"] == {"svg_symlink_duplicate": 1}
    m = build_openclipart(tmp_path / "oc", svg_root=svg_root, png_root=png_root)
    assert m["skipped"] == {"svg_symlink_duplicate": 1, "no_png": 1}


def test_cli_datasets(tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    runner = CliRunner()
    r = runner.invoke(main, ["datasets", "list"])
    assert r.exit_code == 0 and r.output.split() == ["dictionary-text", "emoji", "openclipart"]
    r = runner.invoke(main, ["datasets", "build", "nope", str(tmp_path / "x")])
    assert r.exit_code != 0 and "unknown dataset" in r.output
    root = tmp_path / "set"
    _fake_set(root, n_creators=20)
    r = runner.invoke(main, ["datasets", "split", str(root), "--test-share", "0.5"])
    assert r.exit_code == 0 and "20 groups" in r.output
    assert json.loads((root / "split.json").read_text())["config"]["test_share"] == 0.5
    if HAVE_EMOJI:
        r = runner.invoke(main, ["datasets", "build", "emoji", str(tmp_path / "e"), "--limit", "5"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["images"] == 5


# ---------------------------------------------------------------- tags that describe nothing
def _svg_text(title: str, tags: list[str], creator: str, description: str = "") -> str:
    lis = "".join(f"<rdf:li>{t}</rdf:li>" for t in tags)
    return (
        '<svg xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><rdf:RDF><cc:Work rdf:about="">'
        f"<dc:title>{title}</dc:title><dc:description>{description}</dc:description>"
        f"<dc:subject><rdf:Bag>{lis}</rdf:Bag></dc:subject>"
        f"<dc:creator><cc:Agent><dc:title>{creator}</dc:title></cc:Agent></dc:creator>"
        "</cc:Work></rdf:RDF></metadata><path d='M0 0'/></svg>"
    )


# rel path: (title, tags, creator, description)
_FAKE_CLIPART = {
    "animals/cat_afr.svg": ("Cat", ["Architetto Francesco Rollandin", "francesco rollandin", "cat", "animal",
                                    "Animals"], "Architetto Francesco Rollandin", ""),
    "animals/dog_afr.svg": ("Clipart by Architetto Francesco Rollandin - dog1", ["dog", "rollandin"],
                            "Architetto Francesco Rollandin", ""),
    "plants/rose_by_rose.svg": ("Rose bush", ["rose", "flower", "plants"], "rose", "Drawn by rose"),
    "plants/rose_by_ann.svg": ("A rose", ["rose", "flower"], "Ann Smith", "Drawn for the rose garden"),
    "signs_and_symbols/navy_flag.svg": ("Royal Navy ensign", ["navy", "flag", "Signs and Symbols", "sign"],
                                        "Royal Navy", ""),
    "signs_and_symbols/star_7.svg": ("gramastar", ["stars", "magick", "geometry", "hash"], "codifiedivining", ""),
    "signs_and_symbols/star_8.svg": ("Blue gramastar", ["stars", "Magick"], "codifiedivining", ""),
    "food/apple_icon.svg": ("Lemon SVG theme", ["lemon_theme_icon", "theme", "icon", "food", "fruit", "theme park"],
                            "Jose Hevia", "jose.hevia@example.org"),
}  # fmt: skip


def _fake_clipart(root: Path) -> tuple[Path, Path]:
    svg_root, png_root = root / "svg", root / "png"
    for rel, (title, tags, creator, desc) in _FAKE_CLIPART.items():
        (svg_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (svg_root / rel).write_text(_svg_text(title, tags, creator, desc))
        png = (png_root / rel).with_suffix(".png")
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(b"png " + rel.encode())
    (svg_root / "unsorted").mkdir()  # a folder name of the collection without drawings
    return svg_root, png_root


def _docs(out: Path) -> dict[str, list[str]]:
    return {d[0][4:]: d[1:] for d in FolderCorpus(out)}


def _built_clipart(tmp_path: Path) -> tuple[Path, dict, dict[str, list[str]]]:
    """The fake collection built with the default rules: output folder, build report, documents."""
    svg_root, png_root = _fake_clipart(tmp_path)
    out = tmp_path / "oc"
    m = build_openclipart(out, svg_root=svg_root, png_root=png_root)
    return out, m, _docs(out)


def test_creator_rule_drops_the_own_name_only(tmp_path):
    out, m, docs = _built_clipart(tmp_path)
    cat = json.loads((out / "animals/cat_afr.json").read_text())
    assert cat["tags"] == ["cat", "animal", "Animals"]
    assert cat["dropped"]["creator"] == ["Architetto Francesco Rollandin", "francesco rollandin"]
    assert cat["raw"]["tags"][0] == "Architetto Francesco Rollandin"  # what was dropped is kept
    # one word of a longer name is a word ("Royal Navy" tags its flags "navy"); the rest is a name
    assert "rollandin" in docs["animals/dog_afr"] and "navy" in docs["signs_and_symbols/navy_flag"]
    assert docs["signs_and_symbols/navy_flag"][-3:] == ["royal", "navy", "ensign"]  # not a credit: kept
    # the name leaves the title ("Clipart by <creator> - dog1"); the file stem keeps its word
    dog = json.loads((out / "animals/dog_afr.json").read_text())
    assert dog["title"] == "Clipart by - dog1" and dog["dropped"]["text:creator"] == ["Architetto Francesco Rollandin"]
    assert "architetto" not in docs["animals/dog_afr"] and "dog" in docs["animals/dog_afr"]
    # a creator called "rose": other creators' roses keep their tag and title word
    assert docs["plants/rose_by_ann"][:2] == ["rose", "flower"] and docs["plants/rose_by_ann"].count("rose") == 3
    assert docs["plants/rose_by_rose"] == ["flower", "plants", "rose", "bush", "drawn"]  # a one-word name: its own tag
    assert m["dropped"]["tags"]["creator"] == 3 and m["dropped"]["text"]["creator"] == 2  # + "by rose"
    assert m["dropped"]["examples"]["creator"][0] == "Architetto Francesco Rollandin"


def test_folder_rule_drops_category_folder_names_and_keeps_words(tmp_path):
    out, m, docs = _built_clipart(tmp_path)
    navy = json.loads((out / "signs_and_symbols/navy_flag.json").read_text())
    assert navy["tags"] == ["navy", "flag", "sign"] and navy["dropped"] == {"folder": ["Signs and Symbols"]}
    # a folder that is a word describes its drawings: "food" on an apple, "animals" on a cat stay
    assert "animals" in docs["animals/cat_afr"] and "animal" in docs["animals/cat_afr"]
    assert "food" in docs["food/apple_icon"] and "fruit" in docs["food/apple_icon"]
    assert "plants" in docs["plants/rose_by_rose"]
    assert m["dropped"]["tags"]["folder"] == 1
    assert m["params"]["drop_tags"]["folders"] == ["signs_and_symbols", "unsorted"]


def test_tool_rule_drops_tool_and_icon_set_markers(tmp_path):
    out, m, docs = _built_clipart(tmp_path)
    assert docs["signs_and_symbols/star_7"] == ["stars", "geometry"]  # magick, hash, title "gramastar"
    assert docs["signs_and_symbols/star_8"] == ["stars", "blue"]  # a tool word inside a title goes
    icon = json.loads((out / "food/apple_icon.json").read_text())
    assert icon["title"] == "" and icon["dropped"]["text:tool"] == ["Lemon SVG theme"]
    assert icon["dropped"]["tool"] == ["lemon_theme_icon", "theme"]
    assert docs["food/apple_icon"] == ["icon", "food", "fruit", "theme_park"]  # e-mail: the normaliser's
    assert m["dropped"]["tags"]["tool"] == 4 and m["dropped"]["text"]["tool"] == 3
    assert m["dropped"]["images"] == 7  # all but Ann's rose
    # the report compares with the same tags undropped
    assert m["dropped"]["without_dropping"]["tags_per_image"] > m["tags_per_image"]
    assert m["images_with_2_tags"] == 7 and m["dropped"]["without_dropping"]["images_with_2_tags"] == 8


def test_drop_tags_off_keeps_every_keyword_and_rerun_applies_the_rules(tmp_path):
    svg_root, png_root = _fake_clipart(tmp_path)
    out = tmp_path / "oc"
    m = build_openclipart(out, svg_root=svg_root, png_root=png_root, drop_tags=False)
    assert m["dropped"]["images"] == 0 and m["params"]["drop_tags"] is False
    assert "magick" in json.loads((out / "signs_and_symbols/star_7.json").read_text())["tags"]
    again = build_openclipart(out, svg_root=svg_root, png_root=png_root)  # sidecars of other rules: redone
    assert again["built"] == len(_FAKE_CLIPART) and again["resumed"] == 0
    assert "magick" not in json.loads((out / "signs_and_symbols/star_7.json").read_text())["tags"]
    assert build_openclipart(out, svg_root=svg_root, png_root=png_root)["resumed"] == len(_FAKE_CLIPART)


def test_a_drawing_filed_under_several_folders_is_one_image_with_every_tag(tmp_path):
    """The real collection files 371 drawings under two or three folders (PNGs of the same bytes:
    ``animals/2_dead_frogs…`` and ``animals/amphibian/2_dead_frogs…``): the frog's nearest image was
    its twin at cosine 1.000 and held-out twins were scored twice. One image now, the first path
    in sorted order, with the tags of every copy."""
    svg_root, png_root = _fake_clipart(tmp_path)
    (svg_root / "animals/pets").mkdir()
    (svg_root / "animals/pets/cat_copy.svg").write_text(_svg_text("Cat", ["cat", "pet", "animal"], "AFR", ""))
    (png_root / "animals/pets").mkdir()
    (png_root / "animals/pets/cat_copy.png").write_bytes(b"png other bytes")  # not yet the same drawing
    out = tmp_path / "oc"
    m = build_openclipart(out, svg_root=svg_root, png_root=png_root)
    assert m["images"] == len(_FAKE_CLIPART) + 1 and "duplicate_image" not in m["skipped"]
    (png_root / "animals/pets/cat_copy.png").write_bytes((png_root / "animals/cat_afr.png").read_bytes())
    m = build_openclipart(out, svg_root=svg_root, png_root=png_root)
    assert m["images"] == len(_FAKE_CLIPART) and m["skipped"]["duplicate_image"] == 1
    assert m["removed"] == 1 and m["built"] == 1  # the copy's item of the earlier build went; the cat is redone
    assert "animals/pets/cat_copy" not in _sidecar_keys(out) and not (out / "animals/pets/cat_copy.png").exists()
    cat = json.loads((out / "animals/cat_afr.json").read_text())
    assert cat["tags"] == ["cat", "animal", "Animals", "pet"] and cat["copies"] == ["animals/pets/cat_copy"]
    assert build_openclipart(out, svg_root=svg_root, png_root=png_root)["resumed"] == len(_FAKE_CLIPART)
    assert "pet" in _docs(out)["animals/cat_afr"]


# ---------------------------------------------------------------- reruns with other parameters
def _sidecar_keys(out: Path) -> set[str]:
    """The keys of the builder's items in a folder: its sidecars, less the manifest and split."""
    return {p.relative_to(out).with_suffix("").as_posix() for p in out.rglob("*.json")
            if not (p.parent == out and p.name in ("dataset.json", "split.json", "build.json"))}  # fmt: skip


def test_smaller_limit_removes_the_earlier_builds_extra_items(tmp_path):
    svg_root, png_root = _fake_clipart(tmp_path)
    out = tmp_path / "oc"
    assert build_openclipart(out, svg_root=svg_root, png_root=png_root)["images"] == len(_FAKE_CLIPART)
    (out / "notes.txt").write_text("mine")  # the user's files: the builder did not make them
    (out / "animals" / "my_cat.png").write_bytes(b"png mine")
    (out / "animals" / "my_cat.json").write_text(json.dumps({"title": "my cat", "tags": ["cat", "pet"]}))
    m = build_openclipart(out, svg_root=svg_root, png_root=png_root, limit=3)
    ours = _sidecar_keys(out) - {"animals/my_cat"}
    assert len(ours) == 3 and m["built"] + m["resumed"] == 3 and m["removed"] == len(_FAKE_CLIPART) - 3
    pngs = {p.relative_to(out).with_suffix("").as_posix() for p in out.rglob("*.png")}
    assert pngs == ours | {"animals/my_cat"}  # the removed items' images went with their sidecars
    assert (out / "notes.txt").read_text() == "mine" and (out / "animals" / "my_cat.png").exists()
    assert m["images"] == 3 + 1  # the user's own item counts, it is in the folder
    assert json.loads((out / "dataset.json").read_text())["images"] == 4
    _check_split(load_split(out), ours | {"animals/my_cat"})
    assert not [p for p in out.iterdir() if p.is_dir() and not any(p.iterdir())]  # no emptied folders left
    # without the user's item: the folder, the manifest and the split hold the smaller build exactly
    (out / "animals" / "my_cat.png").unlink()
    (out / "animals" / "my_cat.json").unlink()
    m = build_openclipart(out, svg_root=svg_root, png_root=png_root, limit=2)
    assert m["images"] == 2 == len(_sidecar_keys(out)) and m["removed"] == 1 and m["resumed"] == 2
    _check_split(load_split(out), _sidecar_keys(out))


def test_excluded_folders_and_no_split_leave_a_consistent_folder(tmp_path):
    svg_root, png_root = _fake_clipart(tmp_path)
    out = tmp_path / "oc"
    build_openclipart(out, svg_root=svg_root, png_root=png_root)
    m = build_openclipart(out, svg_root=svg_root, png_root=png_root, exclude_folders=("animals",), split=False)
    keys = _sidecar_keys(out)
    assert not any(k.startswith("animals/") for k in keys) and len(keys) == len(_FAKE_CLIPART) - 2
    assert m["images"] == len(keys) and m["removed"] == 2
    assert not (out / "split.json").exists()  # the earlier build's split names removed items: gone, not stale
    # another copy of the collection (other roots): items are rebuilt from it, not resumed
    svg2, png2 = _fake_clipart(tmp_path / "copy")
    m = build_openclipart(out, svg_root=svg2, png_root=png2, exclude_folders=("animals",))
    assert m["built"] == len(keys) and m["resumed"] == 0 and m["removed"] == 0
    assert json.loads((out / "food/apple_icon.json").read_text())["source"].startswith(str(svg2))


@needs_emoji
def test_emoji_rerun_with_smaller_limit_or_other_canvas(tmp_path):
    from PIL import Image

    out = tmp_path / "emoji"
    build_emoji(out, limit=12)
    (out / "README.md").write_text("my notes")
    m = build_emoji(out, limit=5)
    assert len(_sidecar_keys(out)) == 5 == m["images"] and m["removed"] == 7
    assert len(list(out.glob("*.png"))) == 5 and (out / "README.md").exists()
    assert json.loads((out / "dataset.json").read_text())["images"] == 5
    _check_split(load_split(out), _sidecar_keys(out))
    m = build_emoji(out, limit=5, canvas=200)  # resumed items were drawn on the other canvas
    assert m["built"] == 5 and m["resumed"] == 0
    assert {Image.open(p).size for p in out.glob("*.png")} == {(200, 200)}


@needs_dict
def test_build_dictionary_text_rebuilds_when_the_limit_changes(tmp_path):
    out = tmp_path / "dict"
    src = ("gcide", "devil", "fortunes")
    for limit in (20, 40, 20):
        m = build_dictionary_text(out, limit=limit, sources=src)
        assert {s: v["documents"] for s, v in m["sources"].items()} == dict.fromkeys(src, limit)
        assert not any(v["resumed"] for v in m["sources"].values())
        assert all(len((out / f"{s}.txt").read_text().splitlines()) == limit for s in src)
        assert len(list(TextCorpus(out))) == 3 * limit
    # an interrupted build with the same parameters resumes
    (out / "dataset.json").unlink()
    (out / "devil.txt").unlink()
    m = build_dictionary_text(out, limit=20, sources=src)
    assert {s: v["resumed"] for s, v in m["sources"].items()} == {"gcide": True, "devil": False, "fortunes": True}
    assert m["documents"] == 60
    # fewer sources: the earlier build's other file goes (a file of the user's stays)
    (out / "mine.txt").write_text("my own text here\n")
    m = build_dictionary_text(out, limit=20, sources=("gcide", "devil"))
    assert all(v["resumed"] for v in m["sources"].values()) and not (out / "fortunes.txt").exists()
    assert (out / "mine.txt").exists()


@needs_dict
def test_build_dictionary_text_rebuilds_files_of_unknown_or_interrupted_builds(tmp_path, monkeypatch):
    out = tmp_path / "dict"
    out.mkdir()
    # a finished build of an older version: a manifest, no build.json record of what made the files
    (out / "dataset.json").write_text(json.dumps({"name": "dictionary-text", "documents": 5}))
    (out / "gcide.txt").write_text("a stale line of text\n" * 5)
    m = build_dictionary_text(out, limit=20, sources=("gcide", "fortunes"))
    assert m["sources"]["gcide"] == m["sources"]["gcide"] | {"documents": 20, "resumed": False}
    assert "stale" not in (out / "gcide.txt").read_text()

    def broken(root):
        raise OSError("disk gone")

    monkeypatch.setattr(ds, "_fortune_entries", broken)  # a limit=40 build dies after gcide
    with pytest.raises(OSError, match="disk gone"):
        build_dictionary_text(out, limit=40, sources=("gcide", "fortunes"))
    assert not (out / "dataset.json").exists()  # the folder does not claim a finished build
    monkeypatch.undo()
    m = build_dictionary_text(out, limit=40, sources=("gcide", "fortunes"))
    assert m["sources"]["gcide"]["resumed"] and not m["sources"]["fortunes"]["resumed"]
    assert len((out / "fortunes.txt").read_text().splitlines()) == 40  # not the limit=20 file


# ---------------------------------------------------------------- a folder of the user's is never written into
@pytest.mark.parametrize("mine", ["animals/cat_afr.png", "dataset.json", "split.json", "notes.txt"])
def test_build_refuses_a_folder_of_the_users_and_leaves_it_as_it_was(tmp_path, mine):
    # the builder used to replace a same-named file there: a user's animals/cat_afr.png by the copied drawing,
    # their dataset.json (removed at the start), their split.json (rewritten by make_split)
    svg_root, png_root = _fake_clipart(tmp_path)
    out = tmp_path / "mine"
    (out / mine).parent.mkdir(parents=True, exist_ok=True)
    (out / mine).write_bytes(b"the user's own bytes")
    with pytest.raises(FileExistsError) as err:
        build_openclipart(out, svg_root=svg_root, png_root=png_root)
    message = str(err.value)
    assert f"the folder {str(out)!r} is not empty" in message and f"it holds {mine!r}" in message
    assert "Choose a new or empty folder" in message
    assert (out / mine).read_bytes() == b"the user's own bytes"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [mine]


def test_build_refuses_another_builders_folder(tmp_path):
    svg_root, png_root = _fake_clipart(tmp_path)
    out = tmp_path / "e"
    out.mkdir()
    (out / "1f600.png").write_bytes(b"png")
    (out / "dataset.json").write_text(json.dumps({"name": "emoji"}))
    with pytest.raises(FileExistsError, match="not an earlier output of the openclipart build"):
        build_openclipart(out, svg_root=svg_root, png_root=png_root)
    assert json.loads((out / "dataset.json").read_text()) == {"name": "emoji"}


def test_build_into_an_empty_folder_and_resume_an_interrupted_build(tmp_path, monkeypatch):
    svg_root, png_root = _fake_clipart(tmp_path)
    out = tmp_path / "oc"
    out.mkdir()
    (out / ".DS_Store").write_bytes(b"hidden: no name a build writes")  # still empty for a build
    calls = []

    def dies_after_three(svg):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the build dies mid-way: items, no dataset.json
        calls.append(svg)
        return parse_svg_metadata(svg)

    monkeypatch.setattr(ds, "parse_svg_metadata", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        build_openclipart(out, svg_root=svg_root, png_root=png_root)
    assert not (out / "dataset.json").exists() and len(_sidecar_keys(out)) == 3
    monkeypatch.undo()
    m = build_openclipart(out, svg_root=svg_root, png_root=png_root)  # its own interrupted build: resumed
    assert m["resumed"] == 3 and m["built"] == len(_FAKE_CLIPART) - 3
    again = build_openclipart(out, svg_root=svg_root, png_root=png_root)  # its own finished build: rerun
    assert again["resumed"] == len(_FAKE_CLIPART) and again["built"] == 0
    assert (out / ".DS_Store").read_bytes() == b"hidden: no name a build writes"


@needs_dict
def test_text_build_refuses_a_users_text_file(tmp_path):
    out = tmp_path / "dict"
    out.mkdir()
    (out / "gcide.txt").write_text("my own dictionary\n")  # the builder used to replace it
    with pytest.raises(FileExistsError, match="'gcide.txt'"):
        build_dictionary_text(out, limit=5, sources=("gcide",))
    assert (out / "gcide.txt").read_text() == "my own dictionary\n" and not (out / "build.json").exists()


@needs_emoji
def test_cli_datasets_build_refuses_a_folder_of_the_users(tmp_path):
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    out = tmp_path / "photos"
    out.mkdir()
    (out / "1f600.png").write_bytes(b"my photo")  # the name of the first emoji's drawing
    r = CliRunner().invoke(main, ["datasets", "build", "emoji", str(out), "--limit", "5"])
    assert r.exit_code == 1 and r.output.startswith("Error: "), r.output
    text = " ".join(r.output.split())
    assert str(out) in text and "'1f600.png'" in text and "Choose a new or empty folder" in text
    assert (out / "1f600.png").read_bytes() == b"my photo" and sorted(p.name for p in out.iterdir()) == ["1f600.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(main, ["datasets", "build", "emoji", str(empty), "--limit", "5"])
    assert r.exit_code == 0 and json.loads(r.output)["images"] == 5, r.output
    r = CliRunner().invoke(main, ["datasets", "build", "emoji", str(empty), "--limit", "5"])  # a rerun resumes
    assert r.exit_code == 0 and json.loads(r.output)["resumed"] == 5, r.output


def test_cli_datasets_split_refuses_a_split_with_no_test_or_no_training_image(tmp_path):
    """`im2vec datasets split` of a folder whose images are one series (im0.png, im1.png, ...: one group)
    wrote a split.json with 0 test images and exited 0 (which `im2vec report --dataset` then showed as a
    report without held-out images); a share that holds out every group left nothing to train on."""
    from click.testing import CliRunner
    from PIL import Image

    from gensim_im2vec.cli import main

    one = tmp_path / "one"
    one.mkdir()
    for i in range(6):
        Image.new("RGB", (4, 4), (40 * i, 0, 0)).save(one / f"im{i}.png")
    r = CliRunner().invoke(main, ["datasets", "split", str(one)])
    said = " ".join(r.output.split())
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert f"Error: {one}: its 6 images form one group" in said and "split.json was not written" in said
    assert "creator or split_group" in said and f"`im2vec normalize {one} -o docs.txt`" in said
    assert not (one / "split.json").exists()
    two = tmp_path / "two"
    two.mkdir()
    for i in range(6):
        Image.new("RGB", (4, 4), (40 * i, 0, 0)).save(two / f"im{i}.png")
        (two / f"im{i}.json").write_text(json.dumps({"tags": ["cat"], "creator": f"c{i % 2}"}))
    r = CliRunner().invoke(main, ["datasets", "split", str(two), "--test-share", "0.95"])
    said = " ".join(r.output.split())
    assert r.exit_code == 1, r.output
    assert "a test share of 0.95 holds out every image, none is left to train on: its 6 images form 2 groups" in said
    assert "lower --test-share" in said and not (two / "split.json").exists()
    r = CliRunner().invoke(main, ["datasets", "split", str(two), "--test-share", "0.05"])
    said = " ".join(r.output.split())
    assert r.exit_code == 1, r.output
    assert "a test share of 0.05 holds out no image: its 6 images form 2 groups, the largest of 3" in said
    assert "raise --test-share" in said and not (two / "split.json").exists()
    r = CliRunner().invoke(main, ["datasets", "split", str(two), "--test-share", "0.5"])
    assert r.exit_code == 0 and "3 train, 3 test images in 2 groups" in r.output, r.output
    assert (two / "split.json").is_file()
