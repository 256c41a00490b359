"""Built-in real data sets, made offline from Debian packages, and their fixed train/test split.

Each builder writes the *generic folder format* that :class:`~gensim_im2vec.corpora.FolderCorpus`
and the feature extractor read: ``DIR/<key>.png`` with a sidecar ``DIR/<key>.json`` (title,
description, tags, and facts such as the creator), plus ``DIR/dataset.json`` (counts and
provenance, written last) and ``DIR/split.json`` (see :func:`make_split`).

=================  ==============================================  ==============================
name               Debian packages (``apt-get install …``)          what
=================  ==============================================  ==============================
``openclipart``    ``openclipart-svg openclipart-png``              ~7,500 drawings; title,
                                                                    description and keywords
                                                                    from the SVG's RDF metadata,
                                                                    noisy as users left them
``emoji``          ``fonts-noto-color-emoji unicode-cldr-core``     ~1,900 emoji rendered to PNG
                   ``unicode-data``                                 with CLDR keywords and names
``dictionary-text`` ``dict-gcide dict-wn dict-foldoc dict-jargon``  clean English text, one
                   ``dict-devil fortunes``                          entry per line (``*.txt``)
=================  ==============================================  ==============================

Tags that describe nothing about the picture are dropped by the builder that knows why
(:func:`drop_undescriptive`): on OpenClipArt the creator's own name (``architetto_francesco_rollandin``
on that creator's drawings, "Clipart by Nicu Buculei" in titles), the collection's folder
names (``signs_and_symbols``, ``computer``) and tool or icon-set markers (``magick``,
``gramastar``, ``lemon_theme_icon``, ``theme``). The sidecar keeps what was dropped (``raw``,
``dropped``) and ``dataset.json`` counts it per rule (``dropped``). Noise that needs no such
facts (``hash``, ``hash(0x…)``, ``unsorted``, numbered file names such as ``head1``) is the
:class:`~gensim_im2vec.text.Normalizer`'s.

Builders are resumable and atomic: every file is written to a hidden temporary name and renamed;
an image item is complete once its sidecar exists (written after the PNG), so a rerun skips
finished items; ``dataset.json`` is written last (and removed when a build starts). A builder writes
only into a new or empty folder or an earlier build of its own (finished: its ``dataset.json``;
interrupted: its sidecars or ``build.json``); any other folder is refused before anything is written,
so no file of the user's is replaced; in its own folder, a file it did not make at the name of an item
it writes (an image of the user's added beside a smaller build) stops the build, naming the file. A rerun with
other parameters leaves the folder as a fresh build would: an item is resumed only when its sidecar
records the same settings (tag rules, source files, canvas and font), and the items an earlier
build of the same builder made that this one does not select (a smaller ``limit``, excluded
folders) are removed, files the builder did not make never; the text builder records its
parameters in ``build.json`` and rebuilds the source files of other parameters. ``limit`` builds
a small subset (tests, quick demos). A missing package raises :class:`MissingPackageError`
naming the ``apt-get`` line.

A folder has one build at a time: a build holds the folder's lock (``.lock``, the feature stores'
single-writer lock, released by the OS when the build ends, even by kill -9), so a second build
into it is refused at once, naming the pid of the first. From before its first item until after its
``dataset.json`` a build leaves the marker ``.unfinished-build`` (:data:`UNFINISHED_BUILD`): a
folder a killed build left holds part of the data set, and the folder readers
(:class:`~gensim_im2vec.corpora.FolderCorpus`, :func:`~gensim_im2vec.features.list_images`, so
``im2vec normalize`` and ``im2vec extract``) read it with one warning naming the command that
resumes the build (:func:`warn_unfinished_build`). A split the user made (``im2vec datasets split
DIR --seed …``, or :func:`make_split` with other arguments than its defaults: ``split.json`` records
them, ``config["args"]``) survives a rebuild of the same images; a rebuild that changes the images
writes the default split, keeps the user's as ``split.json.replaced`` and says in a warning which
command makes it again. The build's own default split is made again by every build (so a split
made under older split rules is brought up to date).

Examples
--------
>>> from gensim_im2vec.datasets import build_dataset, load_split, list_datasets
>>> list_datasets()
['dictionary-text', 'emoji', 'openclipart']
>>> info = build_dataset("emoji", "/tmp/emoji", limit=30)          # doctest: +SKIP
>>> info["images"], info["source_packages"][0]                     # doctest: +SKIP
(30, 'fonts-noto-color-emoji')
>>> split = load_split("/tmp/emoji")                               # doctest: +SKIP
>>> from gensim_im2vec.corpora import FolderCorpus
>>> train = FolderCorpus("/tmp/emoji", keys=set(split.train),
...                      exclude=set(split.zero_shot_tags))      # doctest: +SKIP

Why a grouped split: OpenClipArt holds many variants of one drawing (recoloured copies, numbered
series, one author's set sharing its keywords, the same file in two folders), and a split by
key hash puts siblings on both sides, so every method looks far better than it is (DESIGN.md §9:
kNN tag transfer 0.77 mAP on a random split, 0.44 with whole groups held out). :func:`make_split`
links images that share a creator, (for anonymous ones) a series stem (``flower_01``/``flower_02``), identical image
bytes, or an explicit ``split_group`` (emoji: the base sequence without skin tone and gender),
and assigns whole linked groups to train or test in an order fixed by a hash of the group name.
"""

from __future__ import annotations

import contextlib
import filecmp
import gzip
import hashlib
import html
import inspect
import itertools
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gensim_im2vec.corpora import FolderCorpus
from gensim_im2vec.extras import missing_extra
from gensim_im2vec.fileio import (
    atomic_path,
    atomic_write_json,
    check_output_folder,
    fsync_dir,
    pid_alive,
    process_start,
)
from gensim_im2vec.keys import IMAGE_PREFIX
from gensim_im2vec.text import Normalizer
from gensim_im2vec.weights import file_digest

__all__ = [
    "DATASETS",
    "MissingPackageError",
    "Split",
    "build_dataset",
    "build_dictionary_text",
    "build_emoji",
    "build_openclipart",
    "drop_undescriptive",
    "held_out_tags",
    "image_documents",
    "image_tags",
    "image_titles",
    "list_datasets",
    "load_split",
    "make_split",
    "pick_test_groups",
    "split_groups",
    "training_documents",
    "unfinished_build",
    "warn_unfinished_build",
]

logger = logging.getLogger(__name__)

OPENCLIPART_SVG = "/usr/share/openclipart/svg"
OPENCLIPART_PNG = "/usr/share/openclipart/png"
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
CLDR_ANNOTATIONS = (
    "/usr/share/unicode/cldr/common/annotations/en.xml",
    "/usr/share/unicode/cldr/common/annotationsDerived/en.xml",
)
DICTD_ROOT = "/usr/share/dictd"
FORTUNES_ROOT = "/usr/share/games/fortunes"
DICT_SOURCES = ("gcide", "wn", "foldoc", "jargon", "devil", "fortunes")

_SPLIT_VERSION = 2  # 2: a tag and its plural are held out together (inflection_root)


class MissingPackageError(FileNotFoundError):
    """A data file that a Debian package provides is missing; the message names the package."""


def _require(path: str | os.PathLike, packages: str, what: str, option: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise MissingPackageError(
            f"{what} not found at {str(p)!r}: the Debian package(s) {packages} are not installed. "
            f"Install them with `sudo apt-get install {packages}` (or `make system-deps`), "
            f"or pass {option}= pointing at a copy."
        )
    return p


def _package_versions(packages: Sequence[str]) -> dict[str, str | None]:
    """Installed Debian package versions (provenance); None where dpkg does not know them."""
    out: dict[str, str | None] = {}
    for pkg in packages:
        try:
            r = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, timeout=20, check=False
            )
            out[pkg] = r.stdout.strip() or None if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            out[pkg] = None
    return out


def _image_summary(out: Path, normalizer: Normalizer | None = None) -> dict:
    """Counts over the built folder: images, images with >= 2 normalised tags, tags/image."""
    norm = normalizer or Normalizer()
    before = Normalizer(**(norm.config() | {"track_vocab": True}))  # the same steps on the raw tags
    n = n2 = ntags = n2_before = ntags_before = n_touched = 0
    dropped: dict[str, Counter] = {"tags": Counter(), "text": Counter()}
    examples: dict[str, Counter] = {}
    for meta_path in sorted(out.rglob("*.json")):
        if meta_path.name in ("dataset.json", "split.json") and meta_path.parent == out:
            continue
        if meta_path.name.startswith("."):
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        tags = norm.tags(meta.get("tags") or [])
        n += 1
        n2 += len(tags) >= 2
        ntags += len(tags)
        raw_tags = before.tags((meta.get("raw") or {}).get("tags", meta.get("tags")) or [])
        n2_before += len(raw_tags) >= 2
        ntags_before += len(raw_tags)
        n_touched += bool(meta.get("dropped"))
        for rule, items in (meta.get("dropped") or {}).items():
            kind, _, name = rule.partition(":")  # "creator" (a tag) or "text:creator" (title words)
            if not name:
                kind, name = "tags", kind
            dropped[kind][name] += len(items)
            examples.setdefault(rule, Counter()).update(items)
    out_vocab = norm.stats.output_vocab
    return {
        "images": n,
        "images_with_2_tags": n2,
        "tags_per_image": round(ntags / n, 3) if n else 0.0,
        "tag_normalization": norm.stats.as_dict() | {"examples": {}},
        "dropped": {
            "rules": "drop_undescriptive",
            "images": n_touched,
            "tags": dict(dropped["tags"].most_common()),
            "text": dict(dropped["text"].most_common()),
            "examples": {r: [x for x, _ in c.most_common(5)] for r, c in sorted(examples.items())},
            "without_dropping": {
                "images_with_2_tags": n2_before,
                "tags_per_image": round(ntags_before / n, 3) if n else 0.0,
                "distinct_tags": len(before.stats.output_vocab or ()),
            },
            "distinct_tags": len(out_vocab) if out_vocab is not None else None,
        },
    }


# ---------------------------------------------------------------------------- openclipart
_META_RE = re.compile(rb"<metadata\b.*?</metadata>", re.S)
_WORK_RE = re.compile(r"<cc:Work\b.*?</cc:Work>", re.S)
_AGENT_RE = re.compile(r"<cc:Agent\b.*?</cc:Agent>", re.S)


def _xml_text(s: str) -> str:
    s = re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", s, flags=re.S)
    return html.unescape(re.sub(r"<[^>]*>", " ", s)).strip()


def parse_svg_metadata(path: str | os.PathLike, max_bytes: int = 4 << 20) -> dict:
    """Title, description, keywords and creator from an SVG's RDF metadata (Dublin Core).

    Parameters
    ----------
    path : path-like
        The SVG file. Only the first `max_bytes` are searched for ``<metadata>``.

    Returns
    -------
    dict
        ``title``, ``description`` (str), ``tags`` (list of str, as written, empty ones
        dropped), ``creator``, ``date``, ``license`` (str); empty when there is no metadata.
    """
    with open(path, "rb") as f:
        head = f.read(max_bytes)
    m = _META_RE.search(head)
    out = {"title": "", "description": "", "tags": [], "creator": "", "date": "", "license": ""}
    if not m:
        return out
    block = m.group(0).decode("utf-8", "replace")
    w = _WORK_RE.search(block)
    work = w.group(0) if w else block

    def agent_title(tag: str) -> str:
        mm = re.search(rf"<dc:{tag}>\s*(?:<cc:Agent\b[^>]*>)?\s*<dc:title>(.*?)</dc:title>", work, re.S)
        return _xml_text(mm.group(1)) if mm else ""

    out["creator"] = agent_title("creator")
    bare = _AGENT_RE.sub(" ", work)  # so the Work's own title is not an agent's
    for tag in ("title", "description", "date"):
        mm = re.search(rf"<dc:{tag}>(.*?)</dc:{tag}>", bare, re.S)
        out[tag] = _xml_text(mm.group(1)) if mm else ""
    subj = re.search(r"<dc:subject>(.*?)</dc:subject>", work, re.S)
    if subj:
        lis = re.findall(r"<rdf:li>(.*?)</rdf:li>", subj.group(1), re.S) or [subj.group(1)]
        out["tags"] = [t for t in (_xml_text(x) for x in lis) if t]
    lic = re.search(r'<cc:license\s+rdf:resource="([^"]*)"', work)
    out["license"] = lic.group(1) if lic else ""
    return out


#: Tags and titles that OpenClipArt's tools and sets put on whole collections, saying nothing about
#: the picture: ``magick`` and the title ``gramastar`` are on all 1,375 star polygons of one
#: generator script (beside the descriptive ``stars``, ``shapes``, ``geometry``, so no count
#: tells them apart: hence a list).
OPENCLIPART_TOOL_WORDS: frozenset[str] = frozenset({"magick", "gramastar"})
#: Icon-set markers (normalised): ``theme``, ``lemon_theme_icon``, ``flat_theme``, and titles such
#: as "Lemon SVG theme", "gold-theme" (1,424 icons of four themes carry ``theme``).
_THEME_MARKER = re.compile(r"(?:.+_)?theme(?:_icon)?")
_TAG_RULES_VERSION = 1  # sidecars built under other rules are rebuilt on resume
_EMAIL_OR_BRACKETS = re.compile(r"\S+@\S+|https?://\S+|\[[^\]]*\]|\([^)]*\)")
_NAME_SEP = re.compile(r"\s*(?:[,;&/+]|\band\b)\s*", re.I)


def _creator_names(creator: str) -> list[list[str]]:
    """The name(s) in a creator field as lists of words: "Nicu Buculei and Nathan Eady" gives two;
    e-mail addresses, URLs and bracketed parts ("Jakob [x@y.com]") are left out."""
    bare = _EMAIL_OR_BRACKETS.sub(" ", creator or "")
    names = []
    for part in _NAME_SEP.split(bare):
        words = re.findall(r"[^\W_]+", part)
        if words:
            names.append(words)
    return names


def _creator_tag_forms(names: list[list[str]]) -> set[str]:
    """Normalised tags that are a creator's name: the whole name, or two or more of its words in
    order, joined by ``_`` or run together (``architetto_francesco_rollandin``,
    ``francesco_rollandin``, ``nicubuculei``). A single word of a longer name is not one
    ("Royal Navy" tags its flags ``navy``); a one-word name is (``codifiedivining``)."""
    forms: set[str] = set()
    for words in names:
        w = [unicodedata.normalize("NFKC", x).casefold() for x in words]  # as the normaliser
        if len(w) == 1:
            forms.add(w[0])
        for i in range(len(w)):
            for j in range(i + 2, len(w) + 1):
                forms.update(("_".join(w[i:j]), "".join(w[i:j])))
    return forms


def _creator_text_pattern(names: list[list[str]]) -> re.Pattern | None:
    """Where a title or description credits its creator: the name after "by" ("Clipart by Nicu
    Buculei - head1", "SVG Gradient Collection by Alan Horkan"), in whole words and not inside
    an e-mail address (the normaliser removes those whole). Elsewhere a name may describe the
    picture ("Royal Navy ensign" by the Royal Navy; "Rose bush" by the creator "rose")."""
    alts = [r"[\W_]+".join(re.escape(w) for w in words) for words in names]
    return re.compile(rf"(?<=\bby\s)(?:{'|'.join(alts)})(?![\w.-]*@)(?!\w)", re.I) if alts else None


#: OpenClipArt folders whose names are site categories, not words for what a drawing shows.
OPENCLIPART_NON_DESCRIPTIVE_FOLDERS = frozenset({"special", "unsorted"})


def _category_only(folder: str) -> bool:
    """True for a folder name that names no object: a compound category (``signs_and_symbols``)
    or one of :data:`OPENCLIPART_NON_DESCRIPTIVE_FOLDERS`."""
    name = folder.casefold()
    return "_" in name or name in OPENCLIPART_NON_DESCRIPTIVE_FOLDERS


def drop_undescriptive(
    meta: dict,
    *,
    folders: Collection[str] = (),
    tool_words: Collection[str] = OPENCLIPART_TOOL_WORDS,
    normalizer: Normalizer | None = None,
) -> dict:
    """Drop the tags (and title words) of one item that describe nothing about its picture.

    Three rules, each needing a fact the builder knows; a rule removes a tag when the tag's
    normalised form (``normalizer.tags``) matches:

    ``creator``
        The item's own creator's name: the whole name or two or more of its words in order
        (``architetto_francesco_rollandin`` on Architetto Francesco Rollandin's drawings). Only
        the item's own creator counts: the tag ``tux`` stays on others' drawings although a
        creator is called "tux". In the title and description the name is cut where it credits
        the creator ("Clipart by Nicu Buculei - head1" → "Clipart by - head1").
    ``folder``
        A folder name of `folders` (``signs_and_symbols``): the category the uploader picked from
        the site's list, on any drawing; a singular or more specific word (``sign``) stays. The
        builder passes only the folder names that name no object (compound categories and
        ``special``/``unsorted``): ``food`` on a drawing of food describes it.
    ``tool``
        A tool or icon-set marker: a word of `tool_words` (``magick``) or a theme marker
        (``theme``, ``lemon_theme_icon``). A title that is one ("gramastar", "Lemon SVG theme")
        is emptied; tool words inside a longer title are cut out.

    Parameters
    ----------
    meta : dict
        A sidecar: ``tags`` (list of str), ``title``, ``description``, ``creator`` (str).
    folders : collection of str
        The collection's folder names (OpenClipArt: its top-level directories).
    tool_words : collection of str
        Normalised tool words; empty disables the list (theme markers are still dropped).
    normalizer : Normalizer, optional
        How tags are compared (default ``Normalizer(track_vocab=False)``); use the training one.

    Returns
    -------
    dict
        A copy of `meta` with the kept tags (as written), cleaned ``title``/``description`` and,
        when anything went, ``raw`` (the original tags, title, description) and ``dropped``
        (rule → the raw tags it removed; ``text:<rule>`` → the title/description parts).

    Examples
    --------
    >>> m = drop_undescriptive({"tags": ["Architetto Francesco Rollandin", "cat", "Animals", "magick"],
    ...                         "title": "Clipart by Architetto Francesco Rollandin - cat1",
    ...                         "creator": "Architetto Francesco Rollandin"}, folders=["animals"])
    >>> m["tags"], m["title"]
    (['cat'], 'Clipart by - cat1')
    >>> sorted(m["dropped"])
    ['creator', 'folder', 'text:creator', 'tool']
    """
    norm = normalizer if normalizer is not None else Normalizer(track_vocab=False)
    names = _creator_names(str(meta.get("creator") or ""))
    creator_forms = _creator_tag_forms(names)
    folder_forms = {t for f in folders for t in norm.tags([f])}
    tools = frozenset(tool_words)
    dropped: dict[str, list[str]] = {}

    def is_tool(tok: str) -> bool:
        return tok in tools or _THEME_MARKER.fullmatch(tok) is not None

    kept = []
    for tag in meta.get("tags") or []:
        forms = norm.tags([tag])
        rule = None
        if forms and all(f in creator_forms for f in forms):
            rule = "creator"
        elif forms and all(f in folder_forms for f in forms):
            rule = "folder"
        elif forms and all(is_tool(f) for f in forms):
            rule = "tool"
        if rule:
            dropped.setdefault(rule, []).append(tag)
        else:
            kept.append(tag)
    out = dict(meta)
    pattern = _creator_text_pattern(names)
    tool_re = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(tools))) + r")\b", re.I) if tools else None
    for field_ in ("title", "description"):
        text = str(meta.get(field_) or "")
        if not text:
            continue
        if pattern is not None:
            found = pattern.findall(text)
            if found:
                dropped.setdefault("text:creator", []).extend(found)
                text = pattern.sub("", text)
        whole = norm.tags([text])
        if whole and all(is_tool(t) for t in whole):
            dropped.setdefault("text:tool", []).append(text.strip())
            text = ""
        elif tool_re is not None and tool_re.search(text):
            dropped.setdefault("text:tool", []).extend(tool_re.findall(text))
            text = tool_re.sub("", text)
        if text != meta.get(field_):
            out[field_] = re.sub(r"\s{2,}", " ", text).strip()
    if dropped:
        out["raw"] = {"tags": list(meta.get("tags") or []), "title": meta.get("title", ""),
                      "description": meta.get("description", "")}  # fmt: skip
        out["dropped"] = dropped
    out["tags"] = kept
    return out


def _walk_sorted(root: Path, suffix: str) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.endswith(suffix):
                yield Path(dirpath) / fn


def build_openclipart(
    out_dir: str | os.PathLike,
    *,
    limit: int | None = None,
    svg_root: str | os.PathLike = OPENCLIPART_SVG,
    png_root: str | os.PathLike = OPENCLIPART_PNG,
    exclude_folders: Sequence[str] = (),
    split: bool = True,
    drop_tags: bool = True,
) -> dict:
    """Build the OpenClipArt image set: PNG + sidecar with the SVG's title, description, keywords.

    The keywords are kept as their authors wrote them (``unsorted``, ``hash(0x885c2bc)``: the
    normaliser copes with those), except the ones that need this collection's facts to be
    recognised as saying nothing: the creator's own name, the folder names, tool and icon-set
    markers (:func:`drop_undescriptive`; the sidecar keeps them under ``raw``/``dropped``, the
    manifest counts them under ``dropped``). SVGs that are symlinks to
    another SVG of the package are skipped (the same drawing twice), and a drawing filed under
    several folders (PNGs of the same bytes: ``animals/2_dead_frogs…`` and
    ``animals/amphibian/2_dead_frogs…``) becomes one image, at its first path in sorted order,
    with the tags of every copy (the sidecar's ``copies``; counted as skipped
    ``duplicate_image``): twins would be each other's nearest image at cosine 1 and held-out
    twins scored twice. The PNG of the same relative path is copied (PNG symlinks are resolved,
    and the file's SHA-1 is recorded so :func:`make_split` keeps identical images on one side).

    Parameters
    ----------
    out_dir : path-like
        Output folder (created). Keys are the SVG paths without extension (``animals/bat_…``).
    limit : int, optional
        Build only the first `limit` drawings (in sorted path order) that have a PNG.
    svg_root, png_root : path-like
        Where ``openclipart-svg`` and ``openclipart-png`` put the files.
    exclude_folders : sequence of str
        Top-level folders to leave out (e.g. ``("computer", "shapes", "special")``: icon sets
        and geometric shapes with repetitive keywords).
    split : bool
        Write ``split.json`` with :func:`make_split`'s defaults at the end; a split of the user's (other
        arguments) that holds exactly the built images is kept (see the module notes).
    drop_tags : bool
        Apply :func:`drop_undescriptive` (folder names: the top-level directories of
        `svg_root`; tool words: :data:`OPENCLIPART_TOOL_WORDS`). False keeps every keyword.
        Sidecars written under other settings (or from other `svg_root`/`png_root` files) are
        rewritten on a rerun; drawings of an earlier build that this one does not select (other
        `limit` or `exclude_folders`) are removed.

    Returns
    -------
    dict
        The manifest also written to ``dataset.json``: counts, skipped items by reason,
        dropped tags by rule, package versions.

    Raises
    ------
    MissingPackageError
        ``openclipart-svg`` or ``openclipart-png`` is not installed.
    """
    pkgs = "openclipart-svg openclipart-png"
    svg_root = _require(svg_root, pkgs, "OpenClipArt SVG files", "svg_root")
    png_root = _require(png_root, pkgs, "OpenClipArt PNG files", "png_root")
    out = Path(out_dir)
    with _start_build(out, "openclipart", limit):
        t0 = time.perf_counter()
        skipped: Counter = Counter()
        built = resumed = 0
        selected: set[str] = set()  # this build's items: built or resumed
        excl = set(exclude_folders)
        # folder names that name no object (``signs_and_symbols``, ``special``, ``unsorted``): a
        # folder such as ``food`` or ``animals`` describes the drawings in it and stays a tag
        folders = sorted(p.name for p in svg_root.iterdir() if p.is_dir() and _category_only(p.name)) \
            if drop_tags else []
        rules = _TAG_RULES_VERSION if drop_tags else 0
        tag_norm = Normalizer(track_vocab=False)
        def wanted() -> bool:
            return limit is None or built + resumed < limit

        for svg, rel, png, copies in _clipart_drawings(svg_root, png_root, excl, skipped, wanted):
            key = rel.with_suffix("").as_posix()
            dst_png, dst_json = out / (key + ".png"), out / (key + ".json")
            copy_keys = [c.with_suffix("").as_posix() for _, c in copies]
            made = {"tag_rules": rules, "source": str(svg), "source_png": str(png.resolve()), "copies": copy_keys}
            if _resumable(dst_png, dst_json, made, defaults={"tag_rules": 0, "copies": []}):  # as this build's
                resumed += 1
                if copies:
                    skipped["duplicate_image"] += len(copies)
                selected.add(key)
                continue
            try:
                meta = parse_svg_metadata(svg)
            except OSError as e:
                skipped["unreadable_svg"] += 1
                logger.warning("openclipart: cannot read %s (%s); skipped", svg, e)
                continue
            for copy_svg, _ in copies:  # the same drawing filed under other folders: one image, every tag
                try:
                    more = parse_svg_metadata(copy_svg)["tags"]
                except OSError as e:
                    logger.warning("openclipart: cannot read %s (%s), a copy of %s; its tags left out", copy_svg, e, svg)
                    continue
                meta["tags"] += [t for t in more if t not in meta["tags"]]
            if copies:
                skipped["duplicate_image"] += len(copies)
            with atomic_path(dst_png) as tmp:  # the drawing, once nothing of the user's is in its way
                shutil.copyfile(png, tmp)
                _check_item_names(out, "openclipart", dst_png, dst_json, tmp)
            meta.update(
                source=str(svg),
                source_png=str(png.resolve()),
                folder=rel.parts[0] if len(rel.parts) > 1 else "",
                sha1=file_digest(dst_png, "sha1"),
                tag_rules=rules,
                copies=copy_keys,
            )
            if drop_tags:
                meta = drop_undescriptive(meta, folders=folders, normalizer=tag_norm)
            atomic_write_json(dst_json, meta)  # the item's completion marker
            built += 1
            selected.add(key)
            if built % 1000 == 0:
                logger.info("openclipart: %i drawings built (%.0f/s)", built, built / (time.perf_counter() - t0))
        counts = {"built": built, "resumed": resumed, "removed": _remove_unselected(out, "openclipart", selected)}
        return _finish_image_set(
            out, "openclipart", ["openclipart-svg", "openclipart-png"], counts, skipped, t0, split,
            {"limit": limit, "exclude_folders": sorted(excl), "svg_root": str(svg_root), "png_root": str(png_root),
             "drop_tags": {"version": rules, "folders": folders, "tool_words": sorted(OPENCLIPART_TOOL_WORDS)}
             if drop_tags else False},
        )  # fmt: skip


def _clipart_drawings(svg_root: Path, png_root: Path, excluded: Collection[str], skipped: Counter,
                      wanted: Callable[[], bool] = lambda: True,
                      ) -> Iterator[tuple[Path, Path, Path, list[tuple[Path, Path]]]]:
    """The drawings of the collection in sorted path order, each once: ``(svg, its relative path,
    png, copies)``, where `copies` are the ``(svg, relative path)`` of the later drawings whose
    PNG holds the same bytes (one drawing filed under several folders: ``animals/2_dead_frogs…``
    and ``animals/amphibian/2_dead_frogs…``). Counts what it leaves out in `skipped` as it yields
    past it, and stops when `wanted()` is false (a build at its limit), so such a build counts what
    came before it (the copies are the caller's to count)."""
    found: list[tuple[Path, Path, Path]] = []
    walked: list[str | int] = []  # in walk order: why a file was left out, or its index in `found`
    for svg in _walk_sorted(svg_root, ".svg"):
        rel = svg.relative_to(svg_root)
        png = png_root / rel.with_suffix(".png")
        if rel.parts[0] in excluded:
            walked.append("excluded_folder")
        elif svg.is_symlink():
            walked.append("svg_symlink_duplicate")
        elif not png.exists():
            walked.append("no_png")
        else:
            walked.append(len(found))
            found.append((svg, rel, png))
    # the bytes are read only where sizes collide (a few hundred of ~7,500 files)
    by_size: dict[int, list[int]] = {}
    for i, (_, _, png) in enumerate(found):
        by_size.setdefault(png.stat().st_size, []).append(i)
    first_of: dict[int, int] = {}  # index → the index of the first drawing with its bytes
    for same_size in by_size.values():
        if len(same_size) > 1:
            seen: dict[str, int] = {}
            for i in same_size:
                first_of[i] = seen.setdefault(file_digest(found[i][2], "sha1"), i)
    copies: dict[int, list[tuple[Path, Path]]] = {}
    for i, first in first_of.items():
        if first != i:
            copies.setdefault(first, []).append(found[i][:2])
    for i in walked:
        if not wanted():
            return
        if isinstance(i, str):
            skipped[i] += 1
        elif first_of.get(i, i) == i:
            svg, rel, png = found[i]
            yield svg, rel, png, sorted(copies.get(i, []), key=lambda c: c[1].as_posix())


def _read_sidecar(path: Path) -> dict | None:
    """A sidecar's content; None when it is missing, unreadable or not a JSON object."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _resumable(dst_png: Path, dst_json: Path, expected: Mapping, defaults: Mapping | None = None) -> bool:
    """True when an item is complete (PNG, then its sidecar) and was made under this build's
    parameters: its sidecar records `expected` (a field that sidecars of older builds lack takes
    its value from `defaults`)."""
    meta = _read_sidecar(dst_json) if dst_png.exists() else None
    return meta is not None and all({**(defaults or {}), **meta}.get(k) == v for k, v in expected.items())


#: The fields every sidecar of a builder has: how a rerun recognises the items it made (a
#: user's own items in the folder lack them and are never removed).
_BUILDER_FIELDS = {
    "openclipart": ("source", "source_png", "folder", "sha1"),
    "emoji": ("emoji", "codepoints", "split_group", "sha1"),
}


def _check_item_names(out: Path, name: str, dst_png: Path, dst_json: Path, new_png: Path) -> None:
    """Refuse to write an item of builder `name` over a file of the user's at its names.

    The names are free when missing, when the sidecar there is the builder's (an item of an earlier
    build, rebuilt with this build's settings), or, for the PNG alone, when it holds the bytes of
    `new_png` (what the item's PNG would hold: a build interrupted between the PNG and its sidecar).
    Anything else is a file the user put there, e.g. an image of their own beside a smaller build,
    which the item would replace.

    Raises
    ------
    FileExistsError
        Naming the file and the fix; the items built so far stay (a rerun resumes them).
    """
    if _is_builders(_read_sidecar(dst_json) if dst_json.is_file() else None, name):
        return
    for path in (dst_png, dst_json):
        if not os.path.lexists(path) or (path == dst_png and path.is_file() and filecmp.cmp(path, new_png, shallow=False)):
            continue
        raise FileExistsError(
            f"the {name} build would replace {str(path)!r}, which it did not make (no sidecar of the {name} build "
            f"beside it): it is the name of the item {dst_png.relative_to(out).with_suffix('').as_posix()!r}. Move "
            f"{path.name!r} out of {str(out)!r} (or rename it) and rerun: the build resumes where it stopped."
        )


def _is_builders(meta: Mapping | None, name: str) -> bool:
    """Whether a sidecar's content is one builder `name` wrote (it has all of :data:`_BUILDER_FIELDS`)."""
    return meta is not None and all(f in meta for f in _BUILDER_FIELDS[name])


def _own_output(out: Path, name: str) -> bool:
    """Whether the non-empty folder `out` is an earlier build of builder `name`: finished (its
    ``dataset.json`` names `name`) or interrupted (its :data:`UNFINISHED_BUILD` marker; dictionary-text:
    its ``build.json`` record; an image set: a sidecar with all of the builder's :data:`_BUILDER_FIELDS`)."""
    if os.path.lexists(out / "dataset.json"):  # a finished build's, or a file of the user's
        manifest = _read_sidecar(out / "dataset.json")
        return manifest is not None and manifest.get("name") == name
    started = _read_sidecar(out / UNFINISHED_BUILD)  # written after this check passed: the folder is the build's
    if started is not None and started.get("name") == name:
        return True
    if name not in _BUILDER_FIELDS:
        record = _read_sidecar(out / "build.json")
        return record is not None and {"version", "limit", "sources"} <= record.keys()
    fields = _BUILDER_FIELDS[name]
    return any((meta := _read_sidecar(p)) is not None and all(f in meta for f in fields) for p in out.rglob("*.json"))


#: The marker of a data set build that has not finished: written into the folder (JSON: the builder's
#: ``name``, ``limit``, ``pid``, ``started``) before the build's first item, removed after its
#: ``dataset.json``. While it is there without a ``dataset.json``, the folder holds only part of the data
#: set, and the folder readers (:class:`~gensim_im2vec.corpora.FolderCorpus`,
#: :func:`~gensim_im2vec.features.list_images`) say so (:func:`warn_unfinished_build`). Hidden, like the
#: build's lock (``.lock``, held while a build runs: a second build of the folder is refused).
UNFINISHED_BUILD = ".unfinished-build"
_BUILDING: set[str] = set()  # the folders (real paths) a build of this process is writing now
_WARNED_UNFINISHED: set[tuple[str, str]] = set()  # (folder, marker) said once per process


def unfinished_build(folder: str | os.PathLike) -> dict | None:
    """The record of the data set build into `folder` that has not finished (killed, interrupted, failed,
    or still running), or None when there is none (a finished build, or not a built data set).

    Returns
    -------
    dict or None
        The marker's record: ``name`` (the builder), ``limit``, ``pid`` (of the build) and ``pid_start`` (when
        that process started, :func:`~gensim_im2vec.fileio.process_start`), ``started``;
        None also when the marker is no builder's record.
    """
    root = Path(folder)
    marker = root / UNFINISHED_BUILD
    if not marker.is_file() or (root / "dataset.json").exists():  # (both: killed just before its removal)
        return None
    record = _read_sidecar(marker)
    # a file of that name that is not a builder's record (a user's folder, a damaged marker) says nothing
    return record if record is not None and record.get("name") in list_datasets() else None


def _resume_command(folder: str | os.PathLike, record: Mapping) -> str:
    """The command that resumes the build `record` (:func:`unfinished_build`) describes."""
    name = record.get("name") if isinstance(record.get("name"), str) else "NAME"
    limit = record.get("limit")
    return (f"im2vec datasets build {shlex.quote(name)} {shlex.quote(os.fspath(folder))}"
            + (f" --limit {limit}" if isinstance(limit, int) else ""))


def warn_unfinished_build(folder: str | os.PathLike) -> None:
    """Warn (once per folder and build, per process) when `folder` is a data set whose build did not
    finish: it holds only the items built so far, and a reader of it would silently see part of the
    data set. Silent for a finished build, a folder that is no built data set, and the build of this
    process that is writing the folder (it reads its own items to finish)."""
    record = unfinished_build(folder)
    if record is None or os.path.realpath(folder) in _BUILDING:
        return
    said = (os.path.realpath(folder), json.dumps(record, sort_keys=True, default=str))
    if said in _WARNED_UNFINISHED:
        return
    _WARNED_UNFINISHED.add(said)
    pid = record.get("pid")
    command = _resume_command(folder, record)
    start = record.get("pid_start")  # (None in a record of an earlier version: the pid alone decides)
    if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid, start if isinstance(start, str) else None):
        logger.warning("%s: its data set build (pid %i) is still running: the folder holds only the images built so "
                       "far, and only those are read. Wait for that build to finish (its dataset.json marks the end), "
                       "then run this again; `%s` resumes it if it is stopped.", folder, pid, command)
    else:
        logger.warning("%s: the data set build into this folder did not finish (it has %s and no dataset.json): it "
                       "holds only part of the data set, and only that part is read. Run `%s` to resume the build "
                       "(it keeps what is built), then run this again.", folder, UNFINISHED_BUILD, command)


def _lock_build(out: Path, name: str):
    """One build at a time per folder: the single-writer lock feature stores use (``out/.lock``, released
    by the OS when the build ends, also by kill -9). Two builds would each find the other's items
    half-written and take them for files of the user's."""
    from gensim_im2vec.store import LOCK_FILE, lock_folder

    return lock_folder(out, lambda holder: (
        f"data set folder {str(out)!r} is being written by another writer (pid {holder}): another build of "
        f"the {name} data set (`im2vec datasets build`) or an `im2vec datasets split` of it writes into it, and a "
        f"folder has one writer at a time. "
        f"Wait for that process to finish (or stop it) and run again (a rerun resumes), or build into another "
        f"folder. The lock is {str(out / LOCK_FILE)!r}; the OS releases it when its holder exits."))


@contextlib.contextmanager
def _start_build(out: Path, name: str, limit: int | None = None) -> Iterator[None]:
    """Any builder's first step, held for the whole build: refuse a folder of the user's (not empty and
    not an earlier build of `name`: the build would replace same-named files); create the output
    folder; take its lock (:func:`_lock_build`: a second build is refused at once); mark the build
    unfinished (:data:`UNFINISHED_BUILD`, until :func:`_finish_build`); drop the manifest, the finished
    build's marker, until this build writes its own (an interrupted rebuild must not pass for the
    earlier, finished one). The lock is released when the block ends, however it ends."""
    marker = "dataset.json or build.json" if name not in _BUILDER_FIELDS else "dataset.json or item sidecar"
    check_output_folder(out, command=f"the {name} build", owned=lambda folder: _own_output(folder, name),
                        marker=f"{marker} of one", writes=("dataset.json", "split.json", "build.json"))
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock_build(out, name)
    real = os.path.realpath(out)
    _BUILDING.add(real)
    try:
        earlier = unfinished_build(out)
        if earlier is not None:
            logger.info("%s: resuming the %s build started %s that did not finish", out, earlier.get("name"),
                        earlier.get("started"))
        # (pid_start: when this process started, by which a reader tells it from a later process given its pid)
        atomic_write_json(out / UNFINISHED_BUILD, {"name": name, "limit": limit, "pid": os.getpid(),
                                                   "pid_start": process_start(),
                                                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, durable=True)
        (out / "dataset.json").unlink(missing_ok=True)
        yield
    finally:
        _BUILDING.discard(real)
        lock.release()


def _finish_build(out: Path, manifest: Mapping) -> None:
    """Any builder's last step: write the manifest (durable), then remove the unfinished-build marker."""
    atomic_write_json(out / "dataset.json", manifest, durable=True)  # written last: the build's marker
    (out / UNFINISHED_BUILD).unlink(missing_ok=True)
    fsync_dir(out)


def _remove_unselected(out: Path, name: str, selected: Collection[str]) -> int:
    """Remove the items that an earlier build of builder `name` made in `out` and this build did
    not select (another `limit`, ``exclude_folders``, ``skin_tones``, …), so the folder holds
    exactly this build's items; returns their number. An item is the builder's when its sidecar
    has all of :data:`_BUILDER_FIELDS`; its PNG goes first (the sidecar marks a complete item),
    and is kept (with a warning) when its bytes are no longer the ones the sidecar records."""
    fields = _BUILDER_FIELDS[name]
    removed = 0
    for meta_path in sorted(out.rglob("*.json")):
        rel = meta_path.relative_to(out)
        key = rel.with_suffix("").as_posix()
        if key in selected or str(rel) in ("dataset.json", "split.json") or any(x.startswith(".") for x in rel.parts):
            continue
        meta = _read_sidecar(meta_path)
        if meta is None or not all(f in meta for f in fields):
            continue  # not this builder's sidecar
        png = meta_path.with_suffix(".png")
        if png.exists() and file_digest(png, "sha1") != meta["sha1"]:
            logger.warning("%s: %s was changed since it was built; kept it, removed its sidecar", name, png)
        else:
            png.unlink(missing_ok=True)
        meta_path.unlink()
        removed += 1
        for parent in meta_path.parents:  # the folders this emptied
            if parent == out or any(parent.iterdir()):
                break
            parent.rmdir()
    if removed:
        logger.info("%s: removed %i items of an earlier build that this build does not select", name, removed)
    return removed


def _old_split(out: Path) -> tuple[Split | None, dict, bool]:
    """The split in ``out/split.json`` (None when missing or unreadable), the arguments it was made with
    that differ from :func:`make_split`'s defaults (:func:`_split_arguments`), and whether it is the
    user's: made with other arguments (``im2vec datasets split --seed …``), or not by :func:`make_split`
    at all (no parameters in its config: a split the user wrote as a :class:`Split`). A default split,
    such as the build writes, is the build's own."""
    try:
        old = Split.load(out / "split.json")
    except (OSError, ValueError, TypeError):
        return None, {}, False
    config = old.config if isinstance(old.config, dict) else {}
    if "args" not in config and "seed" not in config:
        return old, {}, True
    args = config.get("args")  # recorded since splits record it; older ones: their config against the defaults
    args = dict(args) if isinstance(args, dict) else _split_arguments(config)
    return old, args, bool(args)


def _split_command(out: Path, args: Mapping, source: str = "split.json") -> str:
    """How to make the split of `args` (:func:`_split_arguments`) again: the ``im2vec datasets split``
    line, and the Python call when it has arguments the command has no option for (its normaliser is
    read from the split's file, `source` in `out`)."""
    options = {"seed": "--seed", "test_share": "--test-share", "zero_shot_share": "--zero-shot-share"}
    line = " ".join(["im2vec datasets split", shlex.quote(str(out))]
                    + [f"{options[k]} {shlex.quote(str(v))}" for k, v in args.items() if k in options])
    if set(args) - set(options):
        norm = f"Normalizer(**json.load(open({str(out / source)!r}))['config']['normalizer'])"
        call = ", ".join([repr(str(out))] + [f"{k}={norm if k == 'normalizer' else repr(v)}" for k, v in args.items()])
        return f"`{line}` (from Python, with every argument: `gensim_im2vec.datasets.make_split({call})`)"
    return f"`{line}`"


def _set_aside_split(out: Path) -> Path:
    """Rename the user's ``split.json`` to ``split.json.replaced`` (not a name a reader takes for a split
    or a sidecar), so that the split it held is not lost; returns the new path."""
    kept = out / "split.json.replaced"
    os.replace(out / "split.json", kept)
    return kept


def _drop_stale_split(out: Path) -> None:
    """Remove ``split.json`` when it does not hold exactly the folder's images (a build with
    ``split=False`` that added or removed items): a stale split would silently leave images out
    of both sides or name missing ones. A split the user made (other arguments than
    :func:`make_split`'s defaults) is set aside as ``split.json.replaced``, and the warning gives the
    command that makes it again."""
    path = out / "split.json"
    if not path.exists():
        return
    old, args, users = _old_split(out)
    keys = set(old.train) | set(old.test) if old is not None else None
    images = {key for _, key in FolderCorpus(out).iter_images()}
    if keys == images:
        return
    if old is not None and users:
        kept = _set_aside_split(out)
        logger.warning("%s: your split.json (%s) did not match the %i images now in the folder; moved it "
                       "to %s. Run %s to make it again over these images.", out, _describe_args(args), len(images),
                       kept.name, _split_command(out, args, kept.name))
        return
    path.unlink()
    logger.warning("%s: removed split.json, which did not match the %i images now in the folder; run %s to make "
                   "it again", out, len(images), _split_command(out, {}))


def _describe_args(args: Mapping) -> str:
    """`args` (:func:`_split_arguments`) for a message: ``made with seed='mine', …``."""
    if not args:
        return "made without make_split's parameters"
    return "made with " + ", ".join(f"{k}={'<its own>' if k == 'normalizer' else repr(v)}" for k, v in args.items())


def _write_build_split(out: Path) -> tuple[Split, dict]:
    """The split a build with ``split=True`` leaves: the user's split (``im2vec datasets split`` with
    other arguments than the defaults) when it still holds exactly the folder's images, else
    :func:`make_split`'s default split (rewritten, so that a default split made under older split
    rules is made again under the current ones). A user's split that no longer covers the images is
    set aside (``split.json.replaced``) and replaced, in a warning that gives the command that makes it
    again. Returns the split and the arguments it was made with (``{}``: the defaults)."""
    old, args, users = _old_split(out)
    if old is not None and users:
        images = {key for _, key in FolderCorpus(out).iter_images()}
        if set(old.train) | set(old.test) == images:
            version = old.config.get("version") if isinstance(old.config, dict) else None
            if args and version != _SPLIT_VERSION:  # (one without make_split's parameters has no rules' version)
                logger.warning("%s: kept your split.json (%s), which holds the same images; it was made "
                               "under older split rules (version %s, now %i): run %s to make it again under the "
                               "current ones", out, _describe_args(args), version, _SPLIT_VERSION,
                               _split_command(out, args))
            else:
                logger.info("%s: kept your split.json (%s): it holds the same images", out,
                            _describe_args(args))
            return old, args
        kept = _set_aside_split(out)
        held = set(old.train) | set(old.test)
        logger.warning("%s: replaced your split.json (%s) by the default split: it held %i images, the "
                       "folder now holds %i (%i in both). Yours is kept as %s; run %s to make it again over these "
                       "images.", out, _describe_args(args), len(held), len(images), len(images & held), kept.name,
                       _split_command(out, args, kept.name))
    return make_split(out), {}


def _finish_image_set(out: Path, name: str, packages, counts: Mapping[str, int], skipped, t0, split,
                      params) -> dict:
    """Write the manifest (last) and, with `split`, the split; `counts`: built, resumed, removed."""
    built, resumed = counts["built"], counts["resumed"]
    manifest = {
        "name": name,
        "format": "folder: <key>.png + <key>.json (title, description, tags, …)",
        "source_packages": list(packages),
        "package_versions": _package_versions(packages),
        "built": built,
        "resumed": resumed,
        "removed": counts["removed"],
        "skipped": dict(skipped),
        "params": params,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    manifest.update(_image_summary(out))
    if split:
        s, args = _write_build_split(out)
        manifest["split"] = {"train": len(s.train), "test": len(s.test), "groups": s.n_groups,
                             "zero_shot_tags": len(s.zero_shot_tags), "args": args}  # fmt: skip
    else:
        _drop_stale_split(out)
    _finish_build(out, manifest)
    logger.info(
        "%s: %i images (%i new, %i already built, %i of an earlier build removed), %i with >= 2 tags, "
        "%.2f tags/image; skipped %s; %.1fs",
        name, manifest["images"], built, resumed, counts["removed"], manifest["images_with_2_tags"],
        manifest["tags_per_image"], dict(skipped) or "none", manifest["seconds"],
    )  # fmt: skip
    d = manifest["dropped"]
    if d["images"]:
        logger.info(
            "%s: dropped tags that describe nothing from %i images: tags %s, title/description parts %s "
            "(without dropping: %i images with >= 2 tags, %.2f tags/image)",
            name, d["images"], d["tags"] or "none", d["text"] or "none",
            d["without_dropping"]["images_with_2_tags"], d["without_dropping"]["tags_per_image"],
        )  # fmt: skip
    return manifest


# ---------------------------------------------------------------------------- emoji
_SKIN_TONES = set(range(0x1F3FB, 0x1F400))
_GENDER = {0x2640, 0x2642}
_PERSON_LEAD = {0x1F468, 0x1F469, 0x1F9D1}


def emoji_base(codepoints: Sequence[int]) -> str:
    """The base sequence of an emoji for grouping: no skin tone, gender, ZWJ or VS16.

    ``man teacher``, ``woman teacher`` and ``teacher`` (all skin tones) share one base.

    >>> emoji_base([0x1F468, 0x200D, 0x1F3EB]) == emoji_base([0x1F9D1, 0x1F3FD, 0x200D, 0x1F3EB])
    True
    >>> emoji_base([0x1F3C3, 0x200D, 0x2640, 0xFE0F])
    '1f3c3'
    """
    cps = [c for c in codepoints if c not in _SKIN_TONES and c not in _GENDER and c not in (0x200D, 0xFE0F)]
    if len(cps) > 1 and cps[0] in _PERSON_LEAD:
        cps = cps[1:]
    return "-".join(f"{c:x}" for c in cps) or "-".join(f"{c:x}" for c in codepoints)


def _read_emoji_test(path: Path) -> Iterator[dict]:
    group = subgroup = ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# group:"):
                group = line.split(":", 1)[1].strip()
            elif line.startswith("# subgroup:"):
                subgroup = line.split(":", 1)[1].strip()
            elif line.strip() and not line.startswith("#"):
                m = re.match(r"([0-9A-F ]+);\s*([\w-]+)\s*#\s*(\S+)\s+E[\d.]+\s+(.*)", line.strip())
                if m:
                    yield {
                        "codepoints": [int(x, 16) for x in m.group(1).split()],
                        "status": m.group(2),
                        "emoji": m.group(3),
                        "name": m.group(4).strip(),
                        "group": group,
                        "subgroup": subgroup,
                    }


def _read_cldr_annotations(paths: Sequence[Path]) -> tuple[dict[str, list[str]], dict[str, str]]:
    keywords: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for p in paths:
        for _, el in ET.iterparse(p):
            if el.tag != "annotation":
                continue
            cp = el.get("cp", "")
            text = (el.text or "").strip()
            if el.get("type") == "tts":
                names.setdefault(cp, text)
            else:
                keywords.setdefault(cp, [k.strip() for k in text.split("|") if k.strip()])
            el.clear()
    return keywords, names


def build_emoji(
    out_dir: str | os.PathLike,
    *,
    limit: int | None = None,
    font_path: str | os.PathLike = EMOJI_FONT,
    emoji_test: str | os.PathLike = EMOJI_TEST,
    annotations: Sequence[str | os.PathLike] = CLDR_ANNOTATIONS,
    skin_tones: bool = False,
    canvas: int = 160,
    split: bool = True,
) -> dict:
    """Build the emoji image set: Noto Color Emoji rendered to PNG, CLDR keywords as tags.

    Each fully-qualified emoji of ``emoji-test.txt`` is drawn at the font's only bitmap size
    (109 pt, a 136×128 glyph) centred on a transparent `canvas`-pixel square. Sidecar: ``title``
    (the CLDR name), ``tags`` (CLDR keywords, e.g. 🐶 ``dog | face | pet``), ``group`` /
    ``subgroup``, ``emoji``, ``codepoints``, ``split_group`` (:func:`emoji_base`), ``canvas`` and
    ``font`` (a rerun with others redraws the item; emoji of an earlier build that this one does
    not select, by `limit` or `skin_tones`, are removed). Keys are the code points in hex without
    VS16, joined by ``-`` (``1f436``, ``1f468-200d-1f3eb``).

    Parameters
    ----------
    out_dir : path-like
        Output folder.
    limit : int, optional
        Build only the first `limit` emoji (in emoji-test.txt order).
    font_path, emoji_test, annotations : path-like
        Files of ``fonts-noto-color-emoji``, ``unicode-data`` and ``unicode-cldr-core``.
    skin_tones : bool
        Also render the skin-tone variants (~1,900 more; near-duplicates of their base).
    canvas : int
        Output image size in pixels (>= 136).
    split : bool
        Write ``split.json`` at the end (as `build_openclipart`: a split of the user's that holds
        exactly the built images is kept).

    Returns
    -------
    dict
        The manifest written to ``dataset.json``.

    Raises
    ------
    MissingPackageError
        A package is missing. ModuleNotFoundError when Pillow is missing (``pip install
        'gensim-im2vec[vision]'``).
    """
    font_path = _require(font_path, "fonts-noto-color-emoji", "Noto Color Emoji font", "font_path")
    emoji_test = _require(emoji_test, "unicode-data", "emoji-test.txt", "emoji_test")
    ann = [_require(p, "unicode-cldr-core", "CLDR emoji annotations", "annotations") for p in annotations]
    if canvas < 136:
        raise ValueError(f"canvas must be >= 136 pixels (the glyph is 136x128), got {canvas}.")
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ModuleNotFoundError as e:
        raise missing_extra(e, "build_emoji (drawing the emoji)") from e
    font = ImageFont.truetype(str(font_path), 109)  # the only size the bitmap font has
    keywords, names = _read_cldr_annotations(ann)
    out = Path(out_dir)
    with _start_build(out, "emoji", limit):
        t0 = time.perf_counter()
        skipped: Counter = Counter()
        built = resumed = 0
        selected: set[str] = set()  # this build's items: built or resumed
        render = {"canvas": canvas, "font": str(font_path)}  # recorded in each sidecar: what a resume must match
        for e in _read_emoji_test(emoji_test):
            if limit is not None and built + resumed >= limit:
                break
            if e["status"] != "fully-qualified":
                skipped[e["status"]] += 1
                continue
            cps = e["codepoints"]
            if not skin_tones and any(c in _SKIN_TONES for c in cps):
                skipped["skin_tone_variant"] += 1
                continue
            key = "-".join(f"{c:x}" for c in cps if c != 0xFE0F)
            dst_png, dst_json = out / f"{key}.png", out / f"{key}.json"
            if _resumable(dst_png, dst_json, render):
                resumed += 1
                selected.add(key)
                continue
            ch = e["emoji"]
            bare = ch.replace("\ufe0f", "")
            tags = keywords.get(ch) or keywords.get(bare) or []
            name = names.get(ch) or names.get(bare) or e["name"]
            img = Image.new("RGBA", (canvas, canvas), (255, 255, 255, 0))
            draw = ImageDraw.Draw(img)
            x0, y0, x1, y1 = draw.textbbox((0, 0), ch, font=font, embedded_color=True)
            draw.text(((canvas - (x1 - x0)) // 2 - x0, (canvas - (y1 - y0)) // 2 - y0), ch, font=font, embedded_color=True)
            if img.getbbox() is None:
                skipped["not_in_font"] += 1
                continue
            with atomic_path(dst_png) as tmp:
                img.save(tmp, format="PNG")
                _check_item_names(out, "emoji", dst_png, dst_json, tmp)
            meta = {
                "title": name,
                "description": "",
                "tags": tags,
                "emoji": ch,
                "codepoints": [f"{c:04x}" for c in cps],
                "group": e["group"],
                "subgroup": e["subgroup"],
                "split_group": "emoji:" + emoji_base(cps),
                "sha1": file_digest(dst_png, "sha1"),
                **render,
            }
            atomic_write_json(dst_json, meta)
            built += 1
            selected.add(key)
        counts = {"built": built, "resumed": resumed, "removed": _remove_unselected(out, "emoji", selected)}
        return _finish_image_set(
            out, "emoji", ["fonts-noto-color-emoji", "unicode-cldr-core", "unicode-data"], counts, skipped, t0,
            split, {"limit": limit, "skin_tones": skin_tones, "canvas": canvas, "font": str(font_path)},
        )  # fmt: skip


# ---------------------------------------------------------------------------- dictionary text
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_PRON = re.compile(r"\\[^\\\n]{0,100}\\")  # GCIDE pronunciations: \Dog\
_BRACKET = re.compile(r"\[[^\[\]]{0,400}\]")  # etymologies [AS. docga], [syn: ...], [1913 Webster]
_ANGLE = re.compile(r"<[^<>\n]{0,60}>")  # FOLDOC <category> tags
_POS = re.compile(r"\b(?:n|v|adj|adv)\s+\d+:")  # WordNet sense markers "n 1:"
_WS = re.compile(r"\s+")


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64[c]
    return n


def _clean_entry(text: str) -> str:
    text = _PRON.sub(" ", text)
    text = _BRACKET.sub(" ", text)
    text = _ANGLE.sub(" ", text)
    text = _POS.sub(" ", text)
    text = text.replace("{", " ").replace("}", " ").replace("%%%", " ")
    return _WS.sub(" ", text).strip()


def _dictd_entries(index: Path, data: Path) -> Iterator[str]:
    """Entries of a dictd database, in file order, cleaned to one line each."""
    spans = set()
    with open(index, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-database") or parts[0].startswith("00database"):
                continue
            try:
                spans.add((_b64(parts[1]), _b64(parts[2])))
            except KeyError:
                continue
    with gzip.open(data, "rb") as f:
        for off, length in sorted(spans):
            f.seek(off)  # forward only: gzip decompresses and discards
            text = f.read(length).decode("utf-8", "replace")
            line = _clean_entry(text)
            if line.startswith(("00-database", "00database")):  # the database's own header
                continue
            if len(line.split()) >= 3:
                yield line


def _fortune_entries(root: Path) -> Iterator[str]:
    for p in sorted(root.iterdir()):
        if p.suffix in (".dat", ".u8") or p.is_symlink() or not p.is_file() or p.name in ("ascii-art",):
            continue
        buf: list[str] = []
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.rstrip("\n") == "%":
                    text = _WS.sub(" ", " ".join(buf)).strip()
                    if len(text.split()) >= 3:
                        yield text
                    buf = []
                else:
                    buf.append(line)
        text = _WS.sub(" ", " ".join(buf)).strip()
        if len(text.split()) >= 3:
            yield text


_TEXT_VERSION = 1  # of the text a source file holds; files of other versions are rebuilt


def _start_text_build(out: Path, params: dict) -> set[str]:
    """Prepare `out` for a dictionary-text build with `params`; returns the sources whose file
    this build may resume.

    ``build.json`` records the parameters of the build that writes the source files. A file is
    resumed only under a record with the same version and `limit` that lists its source. Files
    that another build made (or an unknown one: no record) are removed before the new record is
    written (atomically, durable), so a file beside a record is always that record's, even when a
    build is interrupted; files of sources the earlier build had and this one has not are removed
    too. Files of the user's are left alone. Called inside :func:`_start_build`.
    """
    record = out / "build.json"
    old = _read_sidecar(record)
    same = old is not None and all(old.get(k) == params[k] for k in ("version", "limit"))
    old_sources = set(old.get("sources") or ()) & set(DICT_SOURCES) if old is not None else set()
    resumable = old_sources & set(params["sources"]) if same else set()
    present = {s for s in DICT_SOURCES if (out / f"{s}.txt").exists()}
    stale = sorted(present & (set(params["sources"]) - resumable))  # rebuilt
    gone = sorted(present & (old_sources - set(params["sources"])))  # the earlier build's, not this one's
    if old is None:
        why = "no build.json: made by an unknown build"
    else:
        why = ", ".join(f"{k} {old.get(k)!r} -> {params[k]!r}" for k in params if old.get(k) != params[k])
    for s in stale + gone:
        (out / f"{s}.txt").unlink()
    if stale or gone:
        logger.info("dictionary-text: %i source files rebuilt (%s), %i removed (%s): %s",
                    len(stale), ", ".join(stale) or "none", len(gone), ", ".join(gone) or "none", why)
    unknown = sorted(present - set(params["sources"]) - old_sources)
    if unknown:
        logger.warning("dictionary-text: %s in %s not made by this build; kept (a TextCorpus on the folder "
                       "reads them)", ", ".join(f"{s}.txt" for s in unknown), out)
    if old != params:
        atomic_write_json(record, params, durable=True)
    return resumable


def build_dictionary_text(
    out_dir: str | os.PathLike,
    *,
    limit: int | None = None,
    sources: Sequence[str] = DICT_SOURCES,
    dictd_root: str | os.PathLike = DICTD_ROOT,
    fortunes_root: str | os.PathLike = FORTUNES_ROOT,
) -> dict:
    """Build the clean English text corpus: one dictionary entry or fortune per line.

    Writes ``DIR/<source>.txt`` for each source (GCIDE, WordNet, FOLDOC, the Jargon File, the
    Devil's Dictionary, fortunes) with pronunciations (``\\Dog\\``), bracketed etymologies and
    markup removed; read it with :class:`~gensim_im2vec.corpora.TextCorpus` on ``DIR``.
    ``DIR/build.json`` records `limit` and `sources`: a rerun resumes the files of the same
    parameters only, rebuilds the others and removes the files of sources it no longer builds.

    Parameters
    ----------
    out_dir : path-like
        Output folder.
    limit : int, optional
        At most this many documents per source.
    sources : sequence of str
        A subset of ``("gcide", "wn", "foldoc", "jargon", "devil", "fortunes")``.
    dictd_root, fortunes_root : path-like
        Where the ``dict-*`` packages and ``fortunes`` put their files.

    Returns
    -------
    dict
        The manifest written to ``dataset.json``: documents and words per source.

    Raises
    ------
    MissingPackageError
        A source's package is not installed (the message names it).
    """
    bad = [s for s in sources if s not in DICT_SOURCES]
    if bad or not sources:
        raise ValueError(f"sources must be a non-empty subset of {DICT_SOURCES}, got {tuple(sources)!r}.")
    readers: dict[str, Callable[[], Iterator[str]]] = {}
    for s in sources:
        if s == "fortunes":
            root = _require(Path(fortunes_root) / "fortunes", "fortunes", "the fortune files", "fortunes_root").parent
            readers[s] = lambda root=root: _fortune_entries(root)
        else:
            pkg = f"dict-{s}"
            idx = _require(Path(dictd_root) / f"{s}.index", pkg, f"the {s} dictionary index", "dictd_root")
            dat = _require(Path(dictd_root) / f"{s}.dict.dz", pkg, f"the {s} dictionary", "dictd_root")
            readers[s] = lambda idx=idx, dat=dat: _dictd_entries(idx, dat)
    out = Path(out_dir)
    with _start_build(out, "dictionary-text", limit):
        t0 = time.perf_counter()
        resumable = _start_text_build(out, {"version": _TEXT_VERSION, "limit": limit, "sources": list(readers)})
        per_source = {}
        for s, read in readers.items():
            dst = out / f"{s}.txt"
            if s in resumable and dst.exists():
                docs = words = 0
                with open(dst, encoding="utf-8") as f:
                    for line in f:
                        docs += 1
                        words += len(line.split())
                per_source[s] = {"documents": docs, "words": words, "resumed": True}
                continue
            docs = words = 0
            with atomic_path(dst) as tmp, open(tmp, "w", encoding="utf-8") as f:
                for text in itertools.islice(read(), limit):  # stops after `limit`: never reads one more
                    f.write(text + "\n")
                    docs += 1
                    words += len(text.split())
            per_source[s] = {"documents": docs, "words": words, "resumed": False}
            logger.info("dictionary-text: %s: %i documents, %i words", s, docs, words)
        packages = [("fortunes" if s == "fortunes" else f"dict-{s}") for s in readers]
        manifest = {
            "name": "dictionary-text",
            "format": "text: <source>.txt, one document per line",
            "source_packages": packages,
            "package_versions": _package_versions(packages),
            "sources": per_source,
            "documents": sum(v["documents"] for v in per_source.values()),
            "words": sum(v["words"] for v in per_source.values()),
            "params": {"limit": limit, "sources": list(readers)},
            "seconds": round(time.perf_counter() - t0, 1),
        }
        _finish_build(out, manifest)
        logger.info("dictionary-text: %i documents, %i words in %.1fs", manifest["documents"], manifest["words"], manifest["seconds"])
        return manifest


# ---------------------------------------------------------------------------- registry
DATASETS: dict[str, Callable[..., dict]] = {
    "openclipart": build_openclipart,
    "emoji": build_emoji,
    "dictionary-text": build_dictionary_text,
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset` (and ``im2vec datasets build``)."""
    return sorted(DATASETS)


def build_dataset(name: str, out_dir: str | os.PathLike, **kwargs) -> dict:
    """Build the named data set into `out_dir`; keyword arguments go to its builder.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    """
    try:
        builder = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list_datasets()}.") from None
    return builder(out_dir, **kwargs)


# ---------------------------------------------------------------------------- splits
@dataclass
class Split:
    """A fixed train/test split of an image set and its zero-shot tags.

    Attributes
    ----------
    train, test : list of str
        Bare image keys (``animals/bat_orlando_karam_``; the token is prefix + key), sorted.
    zero_shot_tags : list of str
        Normalised tags to hold out: drop them from every training document (e.g.
        ``FolderCorpus(dir, keys=set(split.train), exclude=set(split.zero_shot_tags))``), so
        they are never seen with a training image; evaluate them on the test images.
    groups : dict of str to str
        The group of every key (whole groups sit on one side).
    n_groups : int
        Number of groups.
    config : dict
        The parameters that made the split (version, seed, shares).
    """

    train: list[str]
    test: list[str]
    zero_shot_tags: list[str]
    groups: dict[str, str] = field(repr=False)
    n_groups: int = 0
    config: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        """Write as JSON (atomically)."""
        atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Split:
        with open(path, encoding="utf-8") as f:
            return cls(**json.load(f))


def _unit_hash(seed: str, name: str) -> float:
    """A deterministic number in [0, 1) for `name` (stable across Python runs and machines)."""
    h = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def inflection_root(tag: str, tags: Container[str]) -> str:
    """The singular of an English plural `tag` when that singular is also one of `tags`, else
    `tag` itself: the key that holds a tag and its plural out of training together.

    Only the regular endings are folded ("-s", "-es", "-ies" → "-y"; never "-ss"), and only when
    both forms are tags, so a word that merely ends in "s" stays itself.

    >>> tags = {"flag", "flags", "city", "cities", "box", "boxes", "glass", "news", "state", "states", "stat"}
    >>> [inflection_root(t, tags) for t in ["flags", "cities", "boxes", "glass", "news", "states", "flag"]]
    ['flag', 'city', 'box', 'glass', 'news', 'state', 'flag']
    """
    if tag.endswith("s") and not tag.endswith("ss") and tag[:-1] in tags:  # "states": "state", not "stat"
        return tag[:-1]
    if tag.endswith("es") and tag[:-2] in tags:
        return tag[:-2]
    if tag.endswith("ies") and tag[:-3] + "y" in tags:  # "ties" → "tie" above, "cities" → "city" here
        return tag[:-3] + "y"
    return tag


def zero_shot_groups(tag_images: Mapping[str, int], seed: str, share: float, min_tag_images: int = 2) -> list[str]:
    """The zero-shot tags of a split: every tag whose :func:`inflection_root` hashes below
    `share` (``sha256(seed, "tag:" + root)``), when the tag or another tag of its root is on at
    least `min_tag_images` images (`tag_images`: ``{tag: number of images}``). A root decides for
    all its forms, so a plural is never trained while its singular is held out; a tag without
    another form is decided by its own hash, as before.

    >>> groups = zero_shot_groups({"flag": 5, "flags": 1, "dog": 9}, seed="s", share=0.999)
    >>> groups
    ['dog', 'flag', 'flags']
    >>> zero_shot_groups({"flag": 5, "flags": 1, "dog": 9}, seed="s", share=0.0)
    []
    """
    roots: dict[str, list[str]] = {}
    for t in tag_images:
        roots.setdefault(inflection_root(t, tag_images), []).append(t)
    zero = []
    for root, forms in roots.items():
        if max(tag_images[t] for t in forms) >= min_tag_images and _unit_hash(seed, "tag:" + root) < share:
            zero.extend(forms)
    return sorted(zero)


_SERIES_RE = re.compile(r"[\W_]*\d*$")


def _series_stem(key: str) -> str:
    """``people/flower_02`` → ``flower``: the basename without its trailing number."""
    base = key.rsplit("/", 1)[-1].lower()
    stem = _SERIES_RE.sub("", base)
    return stem or base


def _iter_sidecars(dataset_dir: Path) -> Iterator[tuple[str, dict]]:
    corpus = FolderCorpus(dataset_dir)
    for path, key in corpus.iter_images():
        j = Path(os.path.splitext(path)[0] + ".json")
        meta = {}
        if j.exists():
            try:
                meta = json.loads(j.read_text(encoding="utf-8"))
            except ValueError:
                meta = {}
        yield key, meta if isinstance(meta, dict) else {}


def split_groups(items: Sequence[tuple[str, dict]]) -> dict[str, str]:
    """Link near-duplicates and name each linked group; returns key → group name.

    Each image gets one label: its ``split_group`` if given (emoji: the base sequence), else
    its ``creator`` (case-insensitive: one author's set shares style and keywords), else its
    series stem (:func:`_series_stem`: ``flower_01``/``flower_02``, for anonymous drawings).
    Images with the same label, or with identical bytes (``sha1``), are linked (an anonymous
    drawing built from several copies, ``copies``, also to each copy's series); linked images
    form one group (union–find), named by its smallest label, so the result does not depend
    on the order of `items`. (Series stems are not used across creators: icon themes by
    different authors share names such as ``mouse`` or ``printer`` without being copies.)
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra

    for key, meta in items:
        node = "key:" + key
        parent.setdefault(node, node)
        labels = []
        creator = str(meta.get("creator") or "").strip().lower()
        if meta.get("split_group"):
            labels.append("group:" + str(meta["split_group"]))
        elif creator:
            labels.append("creator:" + creator)
        else:  # (a drawing filed under several folders is a member of each copy's series too)
            labels += ["series:" + _series_stem(k) for k in (key, *(meta.get("copies") or ()))]
        if meta.get("sha1"):
            labels.append("sha1:" + str(meta["sha1"]))
        for lab in labels:
            parent.setdefault(lab, lab)
            union(node, lab)
    # name each component by its smallest non-key label (stable), else by its key
    names: dict[str, str] = {}
    for node in parent:
        r = find(node)
        if not node.startswith("key:") and (r not in names or node < names[r]):
            names[r] = node
    return {k: names.get(find("key:" + k), "key:" + k) for k, _ in items}


def pick_test_groups(sizes: Mapping[str, int], target: float, seed: str) -> set[str]:
    """The groups held out for testing: visited in the order of ``sha256(seed, group name)``, each
    taken when that brings the number of test images closer to `target` (`sizes`: ``{group: number
    of images}``). Whole groups only, the same on every machine, and close to `target` even when a
    few groups hold most images (a group larger than twice what is left to take is passed over).

    >>> sorted(pick_test_groups({"a": 1, "b": 1, "c": 1, "d": 1, "big": 40}, target=2, seed="s"))
    ['a', 'd']
    """
    test_groups: set[str] = set()
    n_test = 0
    for g in sorted(sizes, key=lambda g: (_unit_hash(seed, g), g)):
        if abs(n_test + sizes[g] - target) < abs(n_test - target):  # brings test closer to target
            test_groups.add(g)
            n_test += sizes[g]
    return test_groups


def make_split(
    dataset_dir: str | os.PathLike,
    *,
    test_share: float = 0.2,
    zero_shot_share: float = 0.1,
    min_tag_images: int = 2,
    seed: str = "im2vec-split",
    normalizer: Normalizer | None = None,
    write: bool = True,
) -> Split:
    """The fixed train/test split of a built image set, grouped so near-duplicates stay together.

    Groups come from :func:`split_groups` (``split_group``, creator, series, identical bytes).
    Groups are visited in the order of ``sha256(seed, group name)``, and each goes to test when
    that brings the number of test images closer to ``test_share ×`` all images. So the split
    is a pseudo-random choice of whole groups, identical on every machine, and its test share
    is close to `test_share` even when a few creators hold most images (OpenClipArt: the
    largest eight creators hold 64% of the drawings). Adding images can move other groups;
    keep ``split.json`` with the data.
    Zero-shot tags: among normalised tags on at least `min_tag_images` images, those whose
    ``sha256(seed, "tag:" + root)`` maps below `zero_shot_share`, ``root`` the tag's singular
    form when that is a tag too (:func:`inflection_root`). A tag and its plural are held out
    together: "flag" held out while "flags" trains would be a zero-shot tag whose twin the model
    saw on the same kind of image (on the demo's first split, 39% of the zero-shot tags' test
    occurrences were such twins, and they decided which method won).

    Parameters
    ----------
    dataset_dir : path-like
        A folder in the generic folder format.
    test_share : float
        Expected share of groups (not images) in test, in (0, 1).
    zero_shot_share : float
        Expected share of the eligible tag vocabulary held out, in [0, 1).
    min_tag_images : int
        Tags on fewer images are never zero-shot (they could not be evaluated).
    seed : str
        Changes the split; keep the default to compare with published numbers.
    normalizer : Normalizer, optional
        How tags are normalised (must match training; default ``Normalizer(track_vocab=False)``).
    write : bool
        Save the split as ``dataset_dir/split.json``. Its ``config`` records the parameters, and under
        ``args`` those that differ from the defaults: a split with any is the user's, which a rebuild
        of the same images keeps (a default one the build makes again).

    Returns
    -------
    Split
    """
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must be in (0, 1), got {test_share!r}.")
    if not 0.0 <= zero_shot_share < 1.0:
        raise ValueError(f"zero_shot_share must be in [0, 1), got {zero_shot_share!r}.")
    root = Path(dataset_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {str(root)!r}; build it with `im2vec datasets build`.")
    norm = normalizer or Normalizer(track_vocab=False)
    items = list(_iter_sidecars(root))
    if not items:
        raise ValueError(f"no images in {str(root)!r}; is it a built image data set (not dictionary-text)?")
    groups = split_groups(items)
    sizes = Counter(groups.values())
    test_groups = pick_test_groups(sizes, test_share * len(groups), seed)
    train = sorted(k for k, g in groups.items() if g not in test_groups)
    test = sorted(k for k, g in groups.items() if g in test_groups)
    tag_images: Counter = Counter()
    for _, meta in items:
        tag_images.update(set(norm.tags(meta.get("tags") or [])))
    zero = zero_shot_groups(tag_images, seed, zero_shot_share, min_tag_images)
    split = Split(
        train=train, test=test, zero_shot_tags=zero, groups=groups, n_groups=len(set(groups.values())),
        config={"version": _SPLIT_VERSION, "seed": seed, "test_share": test_share,
                "zero_shot_share": zero_shot_share, "min_tag_images": min_tag_images,
                "normalizer": norm.config()},
    )  # fmt: skip
    split.config["args"] = _split_arguments(split.config)  # how a build tells its own split from the user's
    if write:
        split.save(root / "split.json")
    logger.info(
        "split of %s: %i train / %i test images, %i groups (largest %i images), %i zero-shot tags of %i eligible",
        root, len(train), len(test), split.n_groups, max(sizes.values()), len(zero),
        sum(1 for n in tag_images.values() if n >= min_tag_images),
    )  # fmt: skip
    return split


#: Normaliser settings that change no tag (how much it caches, whether it counts), left out when a
#: split's normaliser is compared with the default one.
_NORMALIZER_BOOKKEEPING = ("track_vocab", "cache_size")


def _split_arguments(config: Mapping) -> dict:
    """The arguments of the split whose ``config`` is `config` that differ from :func:`make_split`'s
    defaults (``normalizer``: its config, when its tag rules differ from the default normaliser's);
    ``{}`` for a default split, such as a build writes."""
    defaults = {k: p.default for k, p in inspect.signature(make_split).parameters.items()
                if k in ("seed", "test_share", "zero_shot_share", "min_tag_images")}
    args = {k: config[k] for k, v in defaults.items() if k in config and config[k] != v}

    def rules(norm_config) -> dict:
        return {k: v for k, v in (norm_config or {}).items() if k not in _NORMALIZER_BOOKKEEPING}

    if "normalizer" in config:
        # a key the stored config lacks was added to the normaliser later: the split was made with its
        # default then (a build's own split from older code is not the user's), and a key today's
        # normaliser lacks cannot be compared
        today = rules(Normalizer(track_vocab=False).config())
        if any(k in today and today[k] != v for k, v in rules(config["normalizer"]).items()):
            args["normalizer"] = config.get("normalizer")
    return args


def load_split(dataset_dir: str | os.PathLike) -> Split:
    """Read ``dataset_dir/split.json`` (written by the builders or :func:`make_split`).

    Raises
    ------
    FileNotFoundError
        There is no split yet; the message says how to make one.
    """
    p = Path(dataset_dir) / "split.json"
    if not p.exists():
        raise FileNotFoundError(f"no split.json in {str(dataset_dir)!r}; make one with `im2vec datasets split "
                                f"{shlex.quote(str(dataset_dir))}` (from Python: "
                                f"gensim_im2vec.datasets.make_split({str(dataset_dir)!r})).")
    return Split.load(p)


# ---------------------------------------------------------------------------- reading a built image set
def image_documents(dataset_dir: str | os.PathLike, keys: Collection[str] | None = None,
                    exclude: Collection[str] | None = None, tags_only: bool = False,
                    min_words: int = 2) -> FolderCorpus:
    """Restartable training documents of a built image set: ``[img:<key>, its normalised words…]``.

    Parameters
    ----------
    dataset_dir : path-like
        A set built by :func:`build_dataset`.
    keys : collection of str, optional
        Bare keys (as in :class:`Split`) to keep; None keeps every image.
    exclude : collection of str, optional
        Words to leave out of every document (the zero-shot tags).
    tags_only : bool
        Each image with its tags alone (no title or description words).
    min_words : int
        An image whose document keeps fewer words (after `exclude`) is left out (counted as
        ``no_text`` in the corpus's stats).
    """
    return FolderCorpus(dataset_dir, keys=keys, exclude=exclude, min_tokens=min_words,
                        **({"text_fields": ()} if tags_only else {}))


def image_tags(dataset_dir: str | os.PathLike, keys: Collection[str]) -> dict[str, list[str]]:
    """Each image's own normalised keywords (its ``tags`` field, in order, once each), by image token:
    the ground truth of tagging."""
    corpus = FolderCorpus(dataset_dir, keys=set(keys), text_fields=(), min_tokens=1)
    return {doc[0]: list(dict.fromkeys(doc[1:])) for doc in corpus}


def image_titles(dataset_dir: str | os.PathLike, keys: Collection[str]) -> dict[str, str]:
    """The title of each of the images `keys` (bare keys) that has one, by image token."""
    keys = set(keys)
    return {IMAGE_PREFIX + key: str(meta["title"]) for key, meta in _iter_sidecars(Path(dataset_dir))
            if key in keys and meta.get("title")}


def held_out_tags(splits: Iterable[Split]) -> set[str]:
    """The zero-shot tags of several image sets' splits together: each is held out of every set's
    training documents (a tag held out of one set must not reach a model through another's)."""
    return set().union(*(split.zero_shot_tags for split in splits))


def with_plurals(tags: Iterable[str]) -> set[str]:
    """`tags` and their English plurals: what a training document must not carry, title words
    included. The regular ones ("-s"; "-es" after s, x, z, ch, sh; a consonant's "-y" → "-ies"),
    and where English has two ways for an ending, both: "-o" also "-oes" ("potatoes"), "-z" also
    "-zzes" ("quizzes"), "-f" / "-fe" also "-ves" ("leaves", "knives"), "-man" also "-men"
    ("firemen"). A form that is no word costs nothing (no document holds it); one that is another
    word ("axes" for "ax") leaves that word out of the training documents too.
    :func:`zero_shot_groups` holds a tag and its plural out together when both are tags; a plural
    that only a title holds ("americas" beside the held-out tag "america") is not a tag, and would
    show the model the held-out word on a training image. Singulars are not added: the singular of
    a held-out plural that is not a tag itself is as often another word ("news", "glasses").

    >>> sorted(with_plurals(["america", "box", "city", "key"]))
    ['america', 'americas', 'box', 'boxes', 'cities', 'city', 'key', 'keys']
    >>> sorted(with_plurals(["potato", "quiz", "leaf", "knife", "fireman"]))  # doctest: +NORMALIZE_WHITESPACE
    ['fireman', 'firemans', 'firemen', 'knife', 'knifes', 'knives', 'leaf', 'leafs', 'leaves',
     'potato', 'potatoes', 'potatos', 'quiz', 'quizes', 'quizzes']
    >>> sorted(with_plurals(["", "bus", "y"]))  # ("" has no plural: not the word "s")
    ['', 'bus', 'buses', 'y', 'ys']
    """
    out = set()
    for t in tags:
        out.add(t)
        if not t:
            continue
        if t.endswith(("s", "x", "z", "ch", "sh")):
            out.add(t + "es")
        elif len(t) > 1 and t.endswith("y") and t[-2] not in "aeiou":
            out.add(t[:-1] + "ies")
        else:
            out.add(t + "s")
        if len(t) > 1:  # the second way of these endings
            if t.endswith("o"):
                out.add(t + "es")
            elif t.endswith("z"):
                out.add(t + "zes")
            elif t.endswith("f"):
                out.add(t[:-1] + "ves")
            elif t.endswith("fe"):
                out.add(t[:-2] + "ves")
            elif t.endswith("man"):
                out.add(t[:-3] + "men")
    return out


def training_documents(sets: Mapping[str, tuple[str | os.PathLike, Split]], *, has_features=None,
                       tags_only: bool = False, min_words: int = 2) -> list[list[str]]:
    """The training documents of several built image sets: each set's training split, every set's
    zero-shot tags and their plurals removed (:func:`held_out_tags`, :func:`with_plurals`).

    Parameters
    ----------
    sets : mapping of name to (dataset_dir, Split)
    has_features : container of str, optional
        Image tokens with features: the other training images are left out (the extractor skips
        unreadable or huge files).
    tags_only, min_words : bool, int
        As :func:`image_documents`.
    """
    held_out = with_plurals(held_out_tags(split for _, split in sets.values()))  # (also a plural in a title)
    docs = []
    for name, (directory, split) in sets.items():
        keys = set(split.train)
        if has_features is not None:
            usable = {k for k in keys if IMAGE_PREFIX + k in has_features}
            if len(usable) < len(keys) and not tags_only:
                logger.warning("%s: %i training images have no features (skipped by the extractor, see "
                               "its skipped.json); training on %i", name, len(keys) - len(usable), len(usable))
            keys = usable
        docs.extend(image_documents(directory, keys=keys, exclude=held_out, tags_only=tags_only, min_words=min_words))
    return docs
