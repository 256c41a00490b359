"""A static HTML report of a trained model: thumbnails, tags, neighbours, numbers and a 2-D map.

Every list and the map come from the model's one space of words and images (``model.wv``, and
``model.project(features)`` for held-out images), ranked by cosine: the answers of gensim's own
``model.wv.most_similar``.

:func:`write_report` writes a folder that any browser opens from disk (no server, relative links
only)::

    report/
      index.html        the page
      thumbs/*.jpg      small copies of every image shown (longest side `thumb_size` pixels)
      map.png           words and images in 2-D (UMAP, t-SNE or PCA), images drawn as thumbnails
      .im2vec-report    written first: marks the folder as a report's, so a rerun may replace it

The folder must be new, empty or an earlier report (finished or interrupted); any other folder
is refused before anything is written, as it may hold files of the same names.

Sections of ``index.html``:

1. **Held-out images**: each test image's thumbnail, its nearest tags (the words of the image
   documents) by cosine in the space, from its features alone (``Im2Vec.similar_by_image(features,
   restrict="tags")``), next to its true tags; a listed tag that is a true tag is marked, and P@k
   is given per image;
2. **Words and their nearest images** among the model's images and the held-out ones;
3. **Evaluation**: an :class:`~gensim_im2vec.evaluate.EvaluationReport` (or the path of its JSON,
   :meth:`~gensim_im2vec.evaluate.EvaluationReport.save_json`) as the tables ``im2vec evaluate``
   prints (:meth:`~gensim_im2vec.evaluate.EvaluationReport.format_table`: same columns, headings
   and figures, built from :meth:`~gensim_im2vec.evaluate.EvaluationReport.table_rows`), targets
   met or missed marked; or any table(s) of rows (a list of dicts, or {title: rows}), rendered as
   they are;
4. **Map** of the words and images of the one space (their ``model.wv`` vectors; held-out images
   by ``model.project``).

Example on the synthetic corpus with generated images (t-SNE; ``method="auto"`` takes UMAP when
``umap-learn`` is installed):

>>> import os, re, tempfile
>>> from PIL import Image
>>> from gensim_im2vec import Im2Vec
>>> from gensim_im2vec.report import write_report
>>> from gensim_im2vec.synthetic import make_corpus
>>> data = make_corpus(n_classes=3, n_images=60, n_features=16, n_test=6, seed=0)
>>> model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1,
...                epochs=5, workers=1, seed=1)
>>> tmp = tempfile.mkdtemp()
>>> colours = ["red", "green", "blue"]
>>> paths = {}
>>> for key in list(data.features)[:30]:
...     paths[key] = os.path.join(tmp, key.replace(":", "_") + ".png")
...     Image.new("RGB", (40, 30), colours[data.labels[key]]).save(paths[key])
>>> test_keys = [f"test:{i}" for i in range(6)]
>>> true_tags = [[data.class_words[c]] for c in data.test_labels]
>>> index = write_report(model, os.path.join(tmp, "report"), test_keys=test_keys,
...                      test_features=data.test_features, true_tags=true_tags, image_paths=paths,
...                      evaluation=[{"method": "im2vec", "mAP": 0.5}], words=["class0", "class1"],
...                      map_method="pca")
>>> sorted(os.listdir(os.path.dirname(index)))
['.im2vec-report', 'index.html', 'map.png', 'thumbs']

The evaluation as ``im2vec evaluate`` prints it, from an
:class:`~gensim_im2vec.evaluate.EvaluationReport` (:func:`~gensim_im2vec.evaluate.run_evaluation`'s
result, or ``EvaluationReport.load_json(path)``; a path to that JSON works too, and the page links it):

>>> from gensim_im2vec.evaluate import EvaluationReport, TaggingResult
>>> prior = TaggingResult("tag prior", "tag frequency", metrics={"all": {"p@1": 0.1, "map": 0.19}})
>>> ev = EvaluationReport(rows=[prior], info={"n_test_images": 6, "n_candidates": 3})
>>> index = write_report(model, os.path.join(tmp, "report"), evaluation=ev, map_words=0, map_images=0)
>>> section = index.read_text(encoding="utf-8").split('<section id="evaluation">')[1]
>>> re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", section)  # the columns and figures ``print(ev)`` shows
['method', 'P@1', 'mAP', 'note', 'tag prior', '0.100', '0.190', 'tag frequency']
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import logging
import math
import os
import re
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gensim_im2vec.extras import missing_extra, require
from gensim_im2vec.fileio import atomic_path, atomic_write_bytes, check_output_folder
from gensim_im2vec.keys import check_image_keys
from gensim_im2vec.validation import check_not_a_str, is_int, l2_normalize

if TYPE_CHECKING:
    from gensim_im2vec.evaluate import EvaluationReport

logger = logging.getLogger(__name__)

__all__ = ["embed_2d", "make_thumbnail", "render_table", "write_report"]

#: Written first into a report's folder: a rerun recognises the folder as a report's, even one
#: interrupted before ``index.html``.
MARKER = ".im2vec-report"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:32px;border-bottom:2px solid #ddd;padding-bottom:4px}
.meta{color:#666;font-size:.9em}
ul.facts{list-style:none;padding:0;margin:0 0 8px}ul.facts li{display:inline}
ul.facts li+li::before{content:" · ";color:#aaa}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.tag{display:inline-block;margin:1px 3px;padding:0 5px;border-radius:3px;background:#eef}
.tag.hit{background:#c8f0c8;font-weight:bold}
.tag small{color:#777}
figure.nb{display:inline-block;margin:2px 6px;text-align:center;font-size:.75em;width:%(fig)dpx;vertical-align:top}
figure.nb figcaption{word-break:break-all}
.heldout{color:#b35c00}
img.thumb{max-width:%(thumb)dpx;max-height:%(thumb)dpx;border:1px solid #ccc;background:#fafafa}
.noimg{display:inline-block;width:%(thumb)dpx;height:%(thumb)dpx;line-height:%(thumb)dpx;background:#eee;
  color:#999;text-align:center;font-size:.8em}
img.map{max-width:100%%;border:1px solid #ccc}
th.num{text-align:right}td.met{font-weight:bold;text-align:center}td.met.yes{background:#c8f0c8;color:#135c13}
td.met.no{background:#f8cccc;color:#a00}td.met.na{background:#eee;color:#555}
tr.delta td{border-top:2px solid #999}
ul.space li{margin:2px 0}
"""


# ----------------------------------------------------------------------------- pieces
def _safe_name(key: str) -> str:
    """A file name for `key`: readable, filesystem-safe, unique by a hash suffix."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:60] or "image"
    return f"{stem}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:10]}.jpg"


def make_thumbnail(src: str | os.PathLike, dst: str | os.PathLike, size: int = 128) -> bool:
    """Write a JPEG copy of image `src` whose longest side is at most `size` pixels.

    Transparent images are put on white; EXIF orientation is applied.

    Parameters
    ----------
    src, dst : path-like
        Source image (any format PIL reads) and the JPEG to write.
    size : int
        Longest side in pixels (>= 8).

    Returns
    -------
    bool
        True when written; False (with a debug log line) when `src` could not be read.

    Raises
    ------
    ValueError
        `size` is not an int >= 8 (checked before `src` is read).
    """
    if not is_int(size) or size < 8:  # (PIL's thumbnail((0, 0)) fails, and that read as an unreadable `src`)
        raise ValueError(f"make_thumbnail: size must be an int >= 8 pixels (the longest side), got {size!r}.")
    try:
        from PIL import Image, ImageOps
    except ModuleNotFoundError as err:
        raise missing_extra(err, "the report's thumbnails") from err

    try:
        with Image.open(src) as im:
            im.draft("RGB", (size, size))
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGB", im.size, "white")
                bg.paste(im, mask=im.getchannel("A"))
                im = bg
            else:
                im = im.convert("RGB")
            im.thumbnail((size, size))
            with atomic_path(dst) as tmp:
                im.save(tmp, "JPEG", quality=85)
        return True
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds; a bad image must not stop the report
        logger.debug("no thumbnail for %s: %s", src, e)
        return False


def _flatten(row: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in row.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + " "))
        else:
            out[name] = v
    return out


def _cell(v) -> tuple[str, bool]:
    """(html text, numeric?) of a table value."""
    if v is None:
        return "—", False
    if isinstance(v, (bool, np.bool_)):
        return ("yes" if v else "no"), False
    if isinstance(v, (int, np.integer)):
        return str(int(v)), True
    if isinstance(v, (float, np.floating)):
        return ("—" if math.isnan(v) else f"{float(v):.3f}"), True
    if isinstance(v, (list, tuple)):
        return html.escape(", ".join(str(x) for x in v)), False
    return html.escape(str(v)), False


def render_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> str:
    """An HTML ``<table>`` of `rows` (dicts; nested dicts become ``"outer inner"`` columns).

    Parameters
    ----------
    rows : sequence of mapping
        One dict per row. Floats print with 3 decimals, NaN/None as "—".
    columns : sequence of str, optional
        Column order; default: keys in order of first appearance.

    Returns
    -------
    str

    Examples
    --------
    >>> print(render_table([{"method": "prior", "mAP": 0.19}, {"method": "im2vec", "mAP": float("nan")}]))
    <table class="eval"><thead><tr><th>method</th><th>mAP</th></tr></thead><tbody>
    <tr><td>prior</td><td class="num">0.190</td></tr>
    <tr><td>im2vec</td><td class="num">—</td></tr>
    </tbody></table>
    """
    flat = [_flatten(r) for r in rows]
    if columns is None:
        columns = []
        for r in flat:
            columns.extend(k for k in r if k not in columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for r in flat:
        cells = []
        for c in columns:
            text, num = _cell(r.get(c))
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="eval"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body)
            + "\n</tbody></table>")


def embed_2d(vectors: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of `vectors` (cosine geometry) for the map.

    Parameters
    ----------
    vectors : ndarray (n, d)
        Rows to place; they are L2-normalised first, so distances follow cosine similarity.
    method : {"auto", "umap", "tsne", "pca"}
        "auto": UMAP when ``umap-learn`` is installed and there are at least 20 points, else t-SNE
        (scikit-learn); PCA (scikit-learn) below 5 points.
    seed : int
        Random state of UMAP / t-SNE.

    Returns
    -------
    coords : ndarray (n, 2), float64
    used : str
        The method actually used.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"embed_2d: expected a non-empty 2-D array, got shape {x.shape}.")
    if method not in ("auto", "umap", "tsne", "pca"):
        raise ValueError(f"map method must be 'auto', 'umap', 'tsne' or 'pca', got {method!r}.")
    x = l2_normalize(x, out_dtype=np.float64)
    n = len(x)
    if method == "auto":
        method = "pca" if n < 5 else "umap" if n >= 20 and importlib.util.find_spec("umap") else "tsne"
    if n < 4:
        method = "pca"
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ImportError("map method 'umap' needs umap-learn, which is not installed (pip install "
                              "umap-learn); use 'tsne', 'pca' or 'auto' (UMAP when installed, else t-SNE).") from None

        coords = umap.UMAP(n_neighbors=min(15, n - 1), metric="cosine", random_state=seed,
                           n_jobs=1).fit_transform(x)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        coords = TSNE(n_components=2, perplexity=float(min(30.0, max(2.0, (n - 1) / 3))), metric="cosine",
                      init="pca", random_state=seed).fit_transform(x)
    elif n == 1:
        coords = np.zeros((1, 2))
    else:
        from sklearn.decomposition import PCA

        coords = PCA(n_components=min(2, n, x.shape[1]), svd_solver="full").fit_transform(x)
        if coords.shape[1] < 2:
            coords = np.hstack([coords, np.zeros((n, 2 - coords.shape[1]))])
    return np.asarray(coords, dtype=np.float64), method


def _draw_map(path: Path, coords: np.ndarray, labels: Sequence[str], kinds: Sequence[str],
              thumbs: Sequence[str | None], title: str, zoom_px: int = 36) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from matplotlib.offsetbox import AnnotationBbox, OffsetImage
        from PIL import Image
    except ModuleNotFoundError as err:
        raise missing_extra(err, "the report's map") from err

    fig, ax = plt.subplots(figsize=(12, 9), dpi=100)
    try:
        xs, ys = coords[:, 0], coords[:, 1]
        pad_x = (xs.max() - xs.min()) * 0.06 + 1e-6
        pad_y = (ys.max() - ys.min()) * 0.06 + 1e-6
        ax.set_xlim(xs.min() - pad_x, xs.max() + pad_x)
        ax.set_ylim(ys.min() - pad_y, ys.max() + pad_y)
        colours = {"image": "#1f77b4", "held-out image": "#d9730d", "word": "#222222"}
        for kind in ("image", "held-out image"):
            idx = [i for i, k in enumerate(kinds) if k == kind]
            if idx:
                ax.scatter(xs[idx], ys[idx], s=8, c=colours[kind], label=kind, alpha=0.6)
        for i, (label, kind, thumb) in enumerate(zip(labels, kinds, thumbs)):
            if kind == "word":
                # plain text: a token such as '$\frac{$' is a word here, not matplotlib mathtext
                ax.annotate(label, (xs[i], ys[i]), fontsize=9, ha="center", va="center", color=colours["word"],
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "#999", "alpha": 0.8},
                            parse_math=False)
            elif thumb is not None:
                with Image.open(thumb) as im:
                    im = im.convert("RGB")
                    im.thumbnail((zoom_px, zoom_px))
                    arr = np.asarray(im)
                box = AnnotationBbox(OffsetImage(arr, zoom=1.0), (xs[i], ys[i]), frameon=True, pad=0.1,
                                     bboxprops={"edgecolor": colours[kind], "linewidth": 1.2})
                ax.add_artist(box)
        ax.scatter([], [], marker="s", c=colours["word"], label="word (text)")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- the report
def _as_tag_lists(true_tags, keys: Sequence[str]) -> list[list[str]]:
    """One list of tags per key, each tag once; a str is split on whitespace (never into letters)."""
    def tags(t) -> list[str]:
        return list(dict.fromkeys(t.split() if isinstance(t, str) else (t or [])))

    if isinstance(true_tags, Mapping):
        return [tags(true_tags.get(k)) for k in keys]
    lists = [tags(t) for t in true_tags]
    if len(lists) != len(keys):
        raise ValueError(f"true_tags: {len(lists)} tag lists for {len(keys)} test images; give one list per key.")
    return lists


def _default_words(model, n: int) -> list[str]:
    """The most frequent tags of image documents (else the most frequent words) in the model."""
    counts = getattr(model, "image_tag_counts", None) or {}
    k2i = model.wv.key_to_index
    if counts:
        ranked = sorted((w for w in counts if w in k2i and not model.is_image(w)), key=lambda w: (-counts[w], w))
        if ranked:
            return ranked[:n]
    return model.word_keys[:n]


def write_report(
    model,
    out_dir: str | os.PathLike,
    *,
    test_keys: Sequence[str] = (),
    test_features=None,
    true_tags: Mapping[str, Iterable[str]] | Sequence[Iterable[str]] | None = None,
    image_paths: Mapping[str, str | os.PathLike] | None = None,
    evaluation: EvaluationReport | str | os.PathLike | Sequence[Mapping] | Mapping[str, Sequence[Mapping]]
    | None = None,
    words: Sequence[str] | None = None,
    topn: int = 5,
    max_test_images: int = 60,
    n_words: int = 12,
    map_method: str = "auto",
    map_words: int = 60,
    map_images: int = 150,
    thumb_size: int = 128,
    title: str = "Im2Vec report",
    notes: str | None = None,
    seed: int = 0,
) -> Path:
    """Write a static HTML report (index.html, thumbnails, map.png) into `out_dir`.

    Parameters
    ----------
    model : Im2Vec
        A trained model with images.
    out_dir : path-like
        A new or empty folder, or an earlier report (its files are overwritten). Any other folder
        is refused (FileExistsError naming a file in it): it may hold files of the report's names.
    test_keys : sequence of str
        Keys of held-out images (not in the model), one per row of `test_features`; used for
        labels and to find their files in `image_paths`.
    test_features : array_like (n_test, n_features), optional
        Their raw features (as in the feature store). None: no held-out section.
    true_tags : mapping key → tags, or sequence of tag lists aligned with `test_keys`, optional
        The held-out images' own (normalised) tags.
    image_paths : mapping key → file, optional
        Image files for thumbnails, for model images and held-out images alike (keys with the
        image prefix, ``img:…``). Images without a file are shown as a grey box (the page counts
        them, names a few and says how to give their files; a warning says it too).
    evaluation : EvaluationReport, path, list of dict, or mapping title → list of dict, optional
        An :class:`~gensim_im2vec.evaluate.EvaluationReport`, or the path of its JSON (its
        ``save_json``; the page links the file): shown as the tables its ``format_table`` prints.
        Any other table(s): one dict per row (nested dicts become ``"outer inner"`` columns).
    words : sequence of str, optional
        Words whose nearest images are shown; default: the `n_words` most frequent image tags.
        Words not in the vocabulary are listed as missing.
    topn : int
        Nearest words per test image and images per word (>= 1).
    max_test_images : int
        Held-out images shown (the first ones); metrics in the page cover only those.
    n_words : int
        Number of default words.
    map_method : {"auto", "umap", "tsne", "pca"}
        See :func:`embed_2d`.
    map_words, map_images : int
        Words (most frequent first) and images (model images, evenly spaced, then held-out ones)
        on the map; 0 images or words leaves them out; both 0: no map.
    thumb_size : int
        Longest side of thumbnails in pixels.
    title, notes : str
        Page title; an optional paragraph under it (plain text).
    seed : int
        Seed of the map's layout.

    Returns
    -------
    pathlib.Path
        The written ``index.html``.
    """
    t0 = time.perf_counter()
    _check_report_options(model, topn, thumb_size, max_test_images=max_test_images, n_words=n_words,
                          map_words=map_words, map_images=map_images)
    check_not_a_str(test_keys, "test_keys", "keys")
    check_not_a_str(words, "words", "words")
    test_keys = list(test_keys)
    feats = None
    if test_features is not None:
        feats = np.asarray(test_features)
        if feats.ndim != 2 or len(feats) != len(test_keys):
            raise ValueError(f"test_features: expected shape ({len(test_keys)}, n_features) for {len(test_keys)} "
                             f"test_keys, got {feats.shape}.")
        check_image_keys(test_keys, name="write_report test_keys")  # before anything is written
    evaluation, eval_source = _read_evaluation(evaluation)  # before anything is written
    if map_words or map_images:
        require(("matplotlib", "PIL"), "the report's map (write_report with map_words=0, map_images=0 draws none)")
    if image_paths:
        require(("PIL",), "the report's thumbnails (image_paths)")
    out = Path(out_dir)
    check_output_folder(out, command="the report", owned=_earlier_report, marker=f"{MARKER} or report index.html",
                        writes=("index.html", "map.png", "thumbs"))
    atomic_write_bytes(out / MARKER, b"gensim-im2vec report\n")  # first: an interrupted report is still ours
    thumbs = _Thumbnails(out, image_paths, thumb_size)
    shown = min(len(test_keys), max_test_images) if feats is not None else 0
    tags_true = _as_tag_lists(true_tags, test_keys) if true_tags is not None else [[] for _ in test_keys]
    words = list(dict.fromkeys(words)) if words is not None else _default_words(model, n_words)
    known = [w for w in words if w in model.wv.key_to_index and not model.is_image(w)]
    sections = [
        _heldout_section(model, thumbs, test_keys, feats, tags_true, shown, topn) if shown else None,
        _words_section(model, thumbs, words, known, test_keys, feats, topn) if words else None,
        _evaluation_section(evaluation, eval_source, out) if evaluation is not None else None,
        _map_section(model, thumbs, known, test_keys, feats, shown, map_words=map_words, map_images=map_images,
                     map_method=map_method, seed=seed) if map_words or map_images else None,
    ]
    sections = [x for x in [thumbs.missing_note(), *sections] if x]
    index = out / "index.html"
    atomic_write_bytes(index, _page(model, title, notes, sections, thumb_size).encode("utf-8"))
    thumbs.remove_unused()  # an earlier report's thumbnails of images this page does not show
    logger.info("report: %s (%i held-out images, %i words, %i thumbnails, map: %s) in %.1fs", index, shown,
                len(known), thumbs.count(), any('id="map"' in x for x in sections), time.perf_counter() - t0)
    return index


def _earlier_report(folder: Path) -> bool:
    """Whether `folder` holds a report: its marker, or (a report of an older version) its page."""
    if (folder / MARKER).is_file():
        return True
    try:
        page = (folder / "index.html").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return '<p class="meta">' in page or '<ul class="meta facts">' in page


def _check_report_options(model, topn, thumb_size, **counts) -> None:
    if getattr(model, "W", None) is None:
        raise ValueError("write_report needs a model with images (Im2Vec trained with image_features).")
    if not is_int(topn) or topn < 1:
        raise ValueError(f"topn must be a positive int, got {topn!r}.")
    if not is_int(thumb_size) or thumb_size < 8:
        raise ValueError(f"thumb_size must be an int >= 8 pixels, got {thumb_size!r}.")
    for name, v in counts.items():  # a negative count would slice from the end ([:-1]) and print "-1 of …"
        if not is_int(v) or v < 0:
            raise ValueError(f"{name} must be an int >= 0 (0 leaves that part out), got {v!r}.")


class _Thumbnails:
    """The report's thumbnails, each made once on first use, under ``out/thumbs/``."""

    def __init__(self, out: Path, image_paths, size: int) -> None:
        self.out, self.size = out, size
        self.dir = out / "thumbs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.paths = {k: os.fspath(v) for k, v in (image_paths or {}).items()}
        self.made: dict[str, str | None] = {}

    def url(self, key: str) -> str | None:
        """Relative URL of key's thumbnail (made once), or None."""
        if key not in self.made:
            src = self.paths.get(key)
            name = _safe_name(key)
            self.made[key] = f"thumbs/{name}" if src and make_thumbnail(src, self.dir / name, self.size) else None
        return self.made[key]

    def html(self, key: str, css: str = "thumb") -> str:
        rel = self.url(key)
        alt = html.escape(key, quote=True)
        if rel is None:
            return f'<span class="noimg" title="{alt}">no image</span>'
        return f'<img class="{css}" src="{html.escape(rel, quote=True)}" alt="{alt}" title="{alt}">'

    def count(self) -> int:
        return sum(1 for v in self.made.values() if v)

    def missing_note(self) -> str | None:
        """A paragraph saying which images shown have no thumbnail (no file given, or an unreadable
        one) and how to give their files; None when every one has its thumbnail."""
        none = [k for k, v in self.made.items() if v is None]
        if not none:
            return None
        unread = [k for k in none if k in self.paths and os.path.isfile(self.paths[k])]
        unread_set = set(unread)  # (not the list: quadratic over thousands of thumbnails)
        given = [k for k in none if k not in unread_set]  # (no file given, or one given that is not there)
        parts = [f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})"
                 for keys, what in ((given, "without a file"), (unread, "whose file could not be read")) if keys]
        said = (f"{len(none)} of the {len(self.made)} images shown have no thumbnail (a grey box; on the map a dot): "
                f"{'; '.join(parts)}. Give the folders their features were extracted from: `im2vec report --images "
                f"DIR` (repeatable), or write_report(image_paths={{key: file}}).")
        logger.warning("report: %s", said)
        return f'<p class="meta noimg-note">{html.escape(said)}</p>'

    def remove_unused(self) -> int:
        """Remove the files of ``thumbs/`` this report does not show (an earlier report's, in the
        report's own folder); returns how many."""
        used = {Path(v).name for v in self.made.values() if v}
        stale = [p for p in self.dir.iterdir() if p.is_file() and p.name not in used]
        for p in stale:
            p.unlink()
        if stale:
            logger.info("report: removed %i thumbnail(s) of an earlier report", len(stale))
        return len(stale)


def _heldout_section(model, thumbs: _Thumbnails, test_keys, feats, tags_true, shown: int, topn: int) -> str:
    """Held-out images: their nearest tags (words of the image documents) by cosine against their true tags."""
    restrict = model._image_words()  # a model without image documents: every word
    preds = model.similar_by_image(feats[:shown], topn=topn, restrict=restrict)  # one batch
    rows, hits_at = [], []
    for key, pred, truth in zip(test_keys[:shown], preds, tags_true[:shown]):
        tset = set(truth)
        hits = sum(1 for w, _ in pred if w in tset)
        if tset:
            hits_at.append(hits / topn)
        hits_txt = f"{hits}/{topn}" if tset else "—"  # no true tag: nothing to hit, not a miss
        ptxt = " ".join(
            f'<span class="tag{" hit" if w in tset else ""}">{html.escape(w)} <small>{p:.3f}</small></span>'
            for w, p in pred)
        ttxt = " ".join(f'<span class="tag{" hit" if t in {w for w, _ in pred} else ""}">{html.escape(t)}</span>'
                        for t in truth) or "<em>none</em>"
        rows.append(f"<tr><td>{thumbs.html(key)}</td><td>{html.escape(key)}</td><td>{ptxt}</td><td>{ttxt}</td>"
                    f'<td class="num">{hits_txt}</td></tr>')
    if not hits_at:
        mean_p = f"No image shown has a true tag: P@{topn} n/a. "
    elif len(hits_at) == shown:
        mean_p = f"mean P@{topn} over these images: {np.mean(hits_at):.3f}. "
    else:
        mean_p = (f"mean P@{topn} over the {len(hits_at)} with true tags: {np.mean(hits_at):.3f} "
                  f"({shown - len(hits_at)} without any left out). ")
    return (
        f'<section id="heldout"><h2>Held-out images: nearest {restrict} vs. true tags</h2>'
        f'<p class="meta">{shown if shown == len(test_keys) else f"{shown} of {len(test_keys)}"} held-out images '
        f"(never seen in training), placed in the space from "
        f"their features alone (model.project); their nearest {restrict} by cosine in the space (cosine shown"
        f"{'; the tags are the words of the image documents' if restrict == 'tags' else ''}). "
        f"A green word is a true tag. {mean_p}</p>"
        f'<table class="tests"><thead><tr><th>image</th><th>key</th><th>nearest {restrict} (top {topn}, cosine)</th>'
        f"<th>true tags</th><th>hits</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></section>")


def _words_section(model, thumbs: _Thumbnails, words, known, test_keys, feats, topn: int) -> str:
    """Words and their nearest images (the model's, and the held-out ones placed by model.project)."""
    missing = [w for w in words if w not in known and w not in model.wv.key_to_index]
    images = [w for w in words if w not in known and w in model.wv.key_to_index]
    test_kv = model.project_to_keyedvectors(test_keys, feats) if feats is not None and len(test_keys) else None
    held = set(test_keys)
    cap_held = ' class="heldout"'
    rows = []
    for w in known:
        cands = model.most_similar_images(w, topn=topn)
        if test_kv is not None:
            wvec = model.wv.get_vector(w, norm=True)
            cands += [(k, float(s)) for k, s in test_kv.similar_by_vector(wvec, topn=topn)]
            cands.sort(key=lambda kv: -kv[1])
            cands = cands[:topn]
        figs = "".join(
            f'<figure class="nb">{thumbs.html(k)}<figcaption{cap_held if k in held else ""}>'
            f"{html.escape(k)}<br>{s:.3f}{' (held out)' if k in held else ''}</figcaption></figure>"
            for k, s in cands)
        rows.append(f"<tr><th>{html.escape(w)}</th><td>{figs}</td></tr>")
    miss = (f'<p class="meta">Not in the vocabulary: {html.escape(", ".join(missing))}</p>' if missing else "")
    if images:
        miss += (f'<p class="meta">Image keys, not words (this section ranks images for words): '
                 f'{html.escape(", ".join(images))}</p>')
    scope = "the model's images and the held-out images" if test_kv is not None else "the model's images"
    return (
        f'<section id="words"><h2>Words and their nearest images</h2><p class="meta">Cosine between the '
        f"word's vector and the images' vectors (their rows of model.wv; held-out images placed by model.project), "
        f"over {scope} (held-out ones in orange).</p>"
        + miss + ('<table class="words"><tbody>\n' + "\n".join(rows) + "\n</tbody></table>" if rows else "")
        + "</section>")


def _read_evaluation(evaluation):
    """(evaluation, the path of its JSON or None): a path is read as an EvaluationReport's JSON."""
    if isinstance(evaluation, (str, os.PathLike)):
        from gensim_im2vec.evaluate import EvaluationReport

        try:
            return EvaluationReport.load_json(evaluation), Path(evaluation)
        except ValueError as e:
            raise ValueError(f"write_report evaluation: {e} To show plain rows, pass the list of dicts or "
                             f"{{title: rows}} itself, not a file.") from None
    return evaluation, None


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str) -> str:
    """An HTML table of printed figures (str cells, as in EvaluationReport.table_rows): numbers
    right-aligned; a "met" column marked yes/no by class; a Δ row set apart."""
    num = [i > 0 and h not in ("note", "met") for i, h in enumerate(header)]
    head = "".join(f'<th class="num">{html.escape(h)}</th>' if is_num else f"<th>{html.escape(h)}</th>"
                   for h, is_num in zip(header, num))
    body = []
    for row in rows:
        cells = []
        for h, is_num, text in zip(header, num, row):
            if h == "met":
                cls = f"met {'yes' if text == 'yes' else 'no' if text in ('no', 'NO') else 'na'}"
            else:
                cls = "num" if is_num else ""
            cells.append(f'<td class="{cls}">{html.escape(text)}</td>' if cls else f"<td>{html.escape(text)}</td>")
        tr = '<tr class="delta">' if row and row[0].startswith("Δ") else "<tr>"
        body.append(tr + "".join(cells) + "</tr>")
    return (f'<table class="eval {css}"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body)
            + "\n</tbody></table>")


def _report_tables(report: EvaluationReport, source: Path | None, out: Path) -> list[str]:
    """An EvaluationReport as the tables and lines of its format_table, in HTML."""
    where = "the evaluation's JSON (EvaluationReport.save_json)"
    if source is not None:
        try:
            href = urllib.request.pathname2url(os.path.relpath(source, out))
            where = (f'<a href="{html.escape(href, quote=True)}"><code>{html.escape(os.fspath(source))}</code></a>')
        except ValueError:  # another drive (Windows): no relative link
            where = f"<code>{html.escape(os.fspath(source))}</code>"
    parts = [f'<p class="meta">The tables <code>im2vec evaluate</code> prints (figures as printed); every '
             f"figure (R@1, P@10, counts per scope, timings, settings) is in {where}.</p>"]
    for part in report.table_rows():
        if part["title"]:
            parts.append(f"<h3>{html.escape(part['title'])}</h3>")
        if "header" in part:
            parts.append(_html_table(part["header"], part["rows"], part["name"].replace("_", "-")))
        elif part["name"] == "space":
            parts.append('<ul class="space">' + "".join(f"<li>{html.escape(x)}</li>" for x in part["lines"])
                         + "</ul>")
        else:
            parts.extend(f'<p class="meta">{html.escape(x)}</p>' for x in part["lines"])
    return parts


def _evaluation_section(evaluation, source: Path | None = None, out: Path = Path(".")) -> str:
    """The evaluation: an EvaluationReport's tables (`source`: its JSON, linked from `out`), or
    generic table(s): one list of row dicts, or {title: rows}."""
    from gensim_im2vec.evaluate import EvaluationReport

    if isinstance(evaluation, EvaluationReport):
        parts = _report_tables(evaluation, source, out)
        return '<section id="evaluation"><h2>Evaluation</h2>' + "\n".join(parts) + "</section>"
    if not evaluation:
        return ""
    tables = evaluation.items() if isinstance(evaluation, Mapping) else [("", evaluation)]
    parts = []
    for name, rows in tables:
        rows = list(rows)
        if name:
            parts.append(f"<h3>{html.escape(str(name))}</h3>")
        parts.append(render_table(rows) if rows else "<p><em>no rows</em></p>")
    return '<section id="evaluation"><h2>Evaluation</h2>' + "\n".join(parts) + "</section>"


def _map_section(model, thumbs: _Thumbnails, known, test_keys, feats, shown: int, *, map_words: int,
                 map_images: int, map_method: str, seed: int) -> str | None:
    """A 2-D map of words, model images and held-out images (map.png); None with fewer than 2 points."""
    mwords = _default_words(model, map_words) if map_words else []
    for w in known:
        if w not in mwords:
            mwords.append(w)
    img_keys = model.image_keys
    n_model = min(len(img_keys), max(0, map_images - (min(shown, map_images // 3) if shown else 0)))
    pick = np.unique(np.linspace(0, len(img_keys) - 1, num=n_model).astype(int)) if n_model else []
    mimgs = [img_keys[i] for i in pick]
    n_test_map = min(shown, max(0, map_images - len(mimgs)))
    vecs = [model.wv.get_vector(w) for w in mwords] + [model.wv.get_vector(k) for k in mimgs]
    if n_test_map:
        vecs += list(model.project(feats[:n_test_map]))
    if len(vecs) < 2:
        return None
    labels = mwords + mimgs + test_keys[:n_test_map]
    kinds = ["word"] * len(mwords) + ["image"] * len(mimgs) + ["held-out image"] * n_test_map
    coords, used = embed_2d(np.stack(vecs), map_method, seed=seed)
    tpaths = []
    for lab, k in zip(labels, kinds):
        rel = thumbs.url(lab) if k != "word" else None
        tpaths.append(str(thumbs.out / rel) if rel else None)
    _draw_map(thumbs.out / "map.png", coords, labels, kinds, tpaths,
              f"{len(mwords)} words and {len(mimgs) + n_test_map} images ({used.upper()}, cosine)")
    map_info = (f"{len(mwords)} words (text) and {len(mimgs)} model images + {n_test_map} held-out images "
                f"(thumbnails; held-out framed in orange), all vectors of the one space (model.wv; held-out "
                f"images by model.project), laid out by {used.upper()} on cosine geometry.")
    return (f'<section id="map"><h2>Map of words and images</h2><p class="meta">{map_info}</p>'
            f'<img class="map" src="map.png" alt="2-D map of words and images"></section>')


#: How the header names a model's training, by its ``train_words`` (:class:`~gensim_im2vec.model.Im2Vec`).
_TRAINING = {True: "words and images together (joint)",
             False: "words frozen, images trained into them (two-stage)",
             "new": "the text's words frozen, images and the words new to the text trained (two-stage)"}


def _header_facts(model) -> list[str]:
    """The page header's facts, one short plain-text line each (escaped when written): the model
    and its vector size, how it was trained, its vocabulary, the features' extractor, the date.

    Not the model's repr (``Im2Vec<vocab=…, alpha=…>``): it ran the facts together on one line.
    What the model does not record (e.g. the data sets) belongs in the page's `title` or `notes`.
    """
    facts = [f"model: {type(model).__name__}, {model.wv.vector_size}-d vectors"]
    training = _TRAINING.get(getattr(model, "train_words", None))
    if training:
        facts.append(f"training: {training}")
    facts.append(f"vocabulary: {len(model.word_keys):,} words, {len(model.image_keys):,} images")
    meta = getattr(model, "image_features_metadata", None) or {}
    feature = []
    if meta.get("arch"):
        feature.append(f"{meta['arch']} ({meta['weights']})" if meta.get("weights") else str(meta["arch"]))
    if meta.get("layer"):
        feature.append(f"{meta['layer']} layer")
    dim = meta.get("dim") or (model.W.shape[1] if getattr(model, "W", None) is not None else None)
    if dim:
        feature.append(f"{dim}-d")
    if feature:
        facts.append(f"image features: {', '.join(feature)}")
    facts.append(f"written {time.strftime('%Y-%m-%d %H:%M')}")
    return facts


def _page(model, title: str, notes: str | None, sections: list[str], thumb_size: int) -> str:
    """The whole HTML page: heading, its facts (:func:`_header_facts`), table of contents, sections."""
    facts = "".join(f"<li>{html.escape(fact)}</li>" for fact in _header_facts(model))
    head = f'<h1>{html.escape(title)}</h1><ul class="meta facts">{facts}</ul>'
    if notes:
        head += f"<p>{html.escape(notes)}</p>"
    joined = "".join(sections)
    toc = " · ".join(f'<a href="#{sid}">{label}</a>' for sid, label in (
        ("heldout", "held-out images"), ("words", "words → images"), ("evaluation", "evaluation"),
        ("map", "map")) if f'id="{sid}"' in joined)
    css = _CSS % {"thumb": thumb_size, "fig": thumb_size + 16}
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{css}</style></head><body>\n{head}\n<nav>{toc}</nav>\n" + "\n".join(sections)
            + "\n</body></html>\n")
