"""The main job end to end: real images and tags → a joint space → numbers and a report.

Steps (each cached by its inputs under ``OUT/.steps/``, so a second run reuses them; the features
and the word vectors by the bytes of the images and texts they read, so a rebuilt data set that
holds the same images or text keeps them):

1. build the built-in data sets (``openclipart``, ``emoji``, ``dictionary-text``) from Debian packages;
2. extract ImageNet MobileNetV2 features (offline weights) into one FeatureStore per image set;
3. pre-train word vectors on ``dictionary-text`` (gensim Word2Vec, skip-gram, negative sampling);
4. train Im2Vec on the training split of the image sets (two-stage from the word vectors by
   default, or joint), the zero-shot tags removed from the training documents;
5. evaluate against baselines on the held-out images (see :mod:`gensim_im2vec.evaluate`);
6. print neighbour lists in the style of the 2015 slides and write an HTML report.

>>> from gensim_im2vec.pipeline import DemoConfig, run_demo
>>> result = run_demo(DemoConfig(out_dir="demo_output", limit=200))      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from gensim_im2vec.fileio import (
    atomic_save,
    atomic_write_bytes,
    atomic_write_json,
    check_output_folder,
)
from gensim_im2vec.weights import DEFAULT_ARCH, DEFAULT_WEIGHTS

logger = logging.getLogger(__name__)

__all__ = ["DemoConfig", "Steps", "run_demo"]


@dataclass
class DemoConfig:
    """Everything the demo depends on; a step reruns only when its part of this changes.

    Parameters
    ----------
    out_dir : str
        Where data, features, models, the evaluation and the report go.
    image_sets : tuple of str
        Built-in image data sets to train on (their training split).
    eval_set : str
        The image set whose test split is evaluated.
    limit : int, optional
        Build only this many images per set (quick runs and tests).
    text_limit : int, optional
        Use only this many documents of each of ``dictionary-text``'s source files (five dictionaries
        and the fortunes).
    arch, weights : str
        torchvision model and weights for the features (default: the package's default feature
        model, :data:`gensim_im2vec.weights.DEFAULT_ARCH` / ``DEFAULT_WEIGHTS``).
    mode : {"two-stage", "joint"}
        Two-stage: word vectors pre-trained on text, then W (and the output vectors) on the images.
        Joint: words, outputs and W learn together on text + image documents.
    vector_size, text_epochs, seed : int
    image_epochs : int, optional
        Passes over the image documents. Two-stage: the epochs of Im2Vec on them (default 50).
        Joint: the image documents are repeated ``image_epochs // text_epochs`` times beside the
        text, trained for ``text_epochs`` (default 36: 12 copies). Fewer copies move the tags less
        away from their text neighbours: over seeds 1–3, against a text model of the same seed, 12
        copies cost the words' analogies 0.9 [0.5, 1.2] points (16 copies: 1.6 [1.0, 2.1], more
        than target 7's 2 at seed 1), lift held-out image → word 0.229 → 0.241 and leave word →
        image at kNN's level (0.132 → 0.133); the cross-modal analogies fall 0.38 → 0.33
        (docs/experiments.md).
    workers : int
        Training threads for the word vectors and Im2Vec. The demo's default, 1, makes a run
        repeatable: the same machine gives the same vectors and figures bit for bit
        (``tests/test_repeatable.py``). With more workers, jobs train side by side and another run
        gets other figures (docs/kernel.md, Workers).
    tags_only : bool
        Image documents hold an image and its tags only (True), or also its title and description
        words. The space step takes every word of an image's document as one of its words: on the
        demo, tags alone place images better (held-out zero-shot mAP 0.35 against 0.31, seen tags
        equal; docs/joint-space.md).
    min_image_words : int, optional
        A training image whose document keeps fewer words (tags, after the zero-shot tags are
        removed) is left out of the model's training (default by mode, :data:`MIN_IMAGE_WORDS`).
        The baselines (kNN, ridge, logistic) learn from every training image with a tag.
    space_analogies : bool
        Train the analogy term (``Im2Vec(space_analogies=...)``) on half of the cross-modal analogy
        questions that the training images' titles give (:func:`training_analogies`, half 0 of
        :func:`~gensim_im2vec.evaluate.analogy_halves`); the evaluation then asks target 6 of the
        other half, about images no trained question named, and shows the trained half apart. Off
        by default: over seeds 1–3 (two-stage) it answers its own questions at 0.98 but those about
        other images at 0.31 against 0.24 without it, and costs held-out image → word 0.01,
        word → image 0.007, zero-shot 0.026 and a fifth of train() (docs/joint-space.md).
    im2vec : dict
        Extra :class:`~gensim_im2vec.model.Im2Vec` options (image_alpha, image_negatives, ...). The
        demo's: ``sample=0``, ``image_batch=64`` and ``space_common_directions=0`` (the image
        vectors lose the tags' mean direction: on the demo joint word → image +0.011, two-stage
        image → word +0.005, zero-shot unchanged; on a small subset with 32-d words it costs
        image → word 0.02, so the model's own default keeps ``W`` as trained; docs/joint-space.md),
        ``space_neighbours=20`` (:data:`DEMO_IM2VEC`), and, unless given here, ``space_decoder``, ``space_tag_prior``, ``space_readout`` and
        ``space_readout_directions`` by mode (:data:`SPACE_DECODER`, :data:`SPACE_TAG_PRIOR`,
        :data:`SPACE_READOUT`, :data:`SPACE_READOUT_DIRECTIONS`); two-stage, unless ``train_words``
        is given here, :data:`TWO_STAGE_NEW_WORDS`.
    """

    out_dir: str = "demo_output"
    image_sets: tuple = ("openclipart", "emoji")
    eval_set: str = "openclipart"
    limit: int | None = None
    text_limit: int | None = None
    arch: str = DEFAULT_ARCH
    weights: str = DEFAULT_WEIGHTS
    device: str = "auto"
    mode: str = "two-stage"
    vector_size: int = 200
    text_epochs: int = 3
    image_epochs: int | None = None  # by mode: IMAGE_EPOCHS
    workers: int = 1
    seed: int = 1
    tags_only: bool = True
    space_analogies: bool = False
    min_image_words: int | None = None  # by mode: MIN_IMAGE_WORDS
    im2vec: dict = field(default_factory=lambda: dict(DEMO_IM2VEC))

    def __post_init__(self) -> None:
        if self.image_epochs is None:
            self.image_epochs = IMAGE_EPOCHS.get(self.mode, IMAGE_EPOCHS["two-stage"])
        if self.min_image_words is None:
            self.min_image_words = MIN_IMAGE_WORDS.get(self.mode, MIN_IMAGE_WORDS["two-stage"])
        self.im2vec = {**self._mode_options(self.im2vec), **self.im2vec}  # a new dict: the caller's stays

    def _mode_options(self, given: dict) -> dict:
        """The Im2Vec options the mode adds to those `given` (these win): the space's settings by
        mode, and in two-stage :data:`TWO_STAGE_NEW_WORDS` (the calibration only with the
        ``train_words=False`` it needs)."""
        added = {"space_decoder": SPACE_DECODER.get(self.mode, 0.0),
                 "space_tag_prior": SPACE_TAG_PRIOR.get(self.mode, 0.0),
                 "space_readout": SPACE_READOUT.get(self.mode, 0.0),
                 "space_readout_directions": SPACE_READOUT_DIRECTIONS.get(self.mode, 0)}
        if self.mode == "two-stage":
            added["train_words"] = TWO_STAGE_NEW_WORDS["train_words"]
            if given.get("train_words", added["train_words"]) is False:
                added["space_calibrate_new_words"] = TWO_STAGE_NEW_WORDS["space_calibrate_new_words"]
        return added

    def with_options(self, **options) -> DemoConfig:
        """This configuration with Im2Vec `options` on top of its own (a benchmark's ``--set``):
        they win, and the mode's options follow them as at construction (``train_words="new"``
        leaves out the two-stage calibration, which needs ``False``); an option of the mode's that
        is at the mode's value counts as the mode's.

        >>> cfg = DemoConfig(mode="two-stage").with_options(train_words="new")
        >>> cfg.im2vec["train_words"], "space_calibrate_new_words" in cfg.im2vec
        ('new', False)
        >>> DemoConfig(mode="two-stage").with_options(space_calibrate_new_words=False).im2vec["train_words"]
        False
        """
        mode = self._mode_options(self.im2vec)
        own = {k: v for k, v in self.im2vec.items() if not (k in mode and type(mode[k]) is type(v) and mode[k] == v)}
        return replace(self, im2vec={**own, **options})


#: The demo's passes over the image documents, by mode (:class:`DemoConfig`, `image_epochs`).
IMAGE_EPOCHS = {"two-stage": 50, "joint": 36}
#: The fewest words an image's training document keeps, by mode (:class:`DemoConfig`,
#: `min_image_words`); the baselines learn from every training image with a tag.
MIN_IMAGE_WORDS = {"two-stage": 2, "joint": 2}
#: The decoder term's λ by mode (``Wᵀ`` also maps an image's words back to its features;
#: docs/joint-space.md). Off in both demos since the neighbours' words (``space_neighbours``) carry
#: what it added: two-stage without it, seeds 1–3 on the demo's split, held-out image → word 0.287
#: against 0.289, word → image 0.153 against 0.154, zero-shot 0.403 against 0.407 (all within the
#: seeds' spread), analogies 0.589 → 0.606 and image → image 0.406 → 0.414 (beyond it), train()
#: shorter; on five other splits zero-shot 1.20 × ridge either way (docs/experiments.md). Joint:
#: image → word −0.04 with it on five other splits, off since 2026-12-03.
SPACE_DECODER = {"two-stage": 0.0, "joint": 0.0}
#: The tags' prior γ by mode (each tag's logit in the space step − γ·log its count; docs/joint-space.md).
#: Joint: on five splits other than the demo's, held-out image → word on seen tags 0.236 → 0.263
#: (0.83 → 0.92 × kNN), word → image and zero-shot unchanged; on the demo's split (seeds 1–3)
#: image → word and word → image unchanged, zero-shot +0.013, analogies −0.025, ΔWordSim −0.005.
#: Two-stage (frozen words) does not gain.
SPACE_TAG_PRIOR = {"two-stage": 0.0, "joint": 0.25}
#: The demo's Im2Vec options in both modes (:class:`DemoConfig`, `im2vec`). ``space_neighbours``: every
#: image vector also carries its 20 nearest training images' whitened words (seeds 1–3 on the demo's
#: split, ``benchmarks/neighbour_bags.py``: two-stage word → held-out images 0.113 → 0.154, above
#: kNN's 0.150 at every seed, analogies 0.23 → 0.59; joint word → image 0.149 → 0.182; on five
#: other splits two-stage zero-shot 1.07 → 1.20 × ridge; nothing fell; docs/joint-space.md).
DEMO_IM2VEC = {"sample": 0, "image_batch": 64, "space_common_directions": 0, "space_neighbours": 20}
#: How two-stage places the tags its text model has no vector for (:class:`DemoConfig`): the space
#: step alone, then calibrated (``space_calibrate_new_words``), not ``from_word2vec``'s default
#: ``train_words="new"`` (the pair loop as well). The demo's text has a vector for 98.7% of its tags, and
#: there, over seeds 1–3, held-out image → word 0.256 against 0.253, zero-shot 0.342 against 0.325,
#: on five other splits seen image → word 0.215 against 0.201. Where the text lacks many tags it is
#: the other way (21% of them: 0.200 against 0.254; docs/joint-space.md).
TWO_STAGE_NEW_WORDS = {"train_words": False, "space_calibrate_new_words": True}
#: The readout's β by mode (an image's vector also carries a ridge readout of its features onto its
#: words' mean: ``space_readout``; docs/joint-space.md). Joint (every direction), seeds 1–3 on the demo's split:
#: zero-shot 0.261 → 0.278 and analogies 0.310 → 0.326, the other targets unchanged; on five other
#: splits zero-shot 0.97 → 1.00 × ridge and seen tag → image 0.131 → 0.138. Two-stage: with the
#: tags' top 50 principal directions left to ``W`` (:data:`SPACE_READOUT_DIRECTIONS`), seeds 1–3
#: on the demo's split held-out image → word 0.231 → 0.243, zero-shot 0.303 → 0.342, analogies
#: 0.250 → 0.237; on five other splits seen image → word 0.172 → 0.198, zero-shot 1.05 → 1.10 × ridge.
#: (The whole readout in two-stage trades image → word for zero-shot: below its bar at β = 0.5.)
SPACE_READOUT = {"two-stage": 0.5, "joint": 0.5}
#: How many of the tags' top principal directions the readout leaves to ``W``, by mode
#: (``space_readout_directions``; docs/joint-space.md, "The readout without the tags' main
#: directions"). Joint, seeds 1–3 against the readout over every direction: seen tag → held-out
#: images 0.130 → 0.134 (above kNN's 0.132 at every seed, by less than k moves it: 0.128–0.133 at
#: k = 50–100, seed 1), analogies 0.326 → 0.348, zero-shot 0.278 → 0.261 (the space's own level);
#: on five other splits seen image → word 0.260 → 0.272, zero-shot 1.00 → 1.01 × ridge.
SPACE_READOUT_DIRECTIONS = {"two-stage": 50, "joint": 50}


class Steps:
    """Run named steps once: a step is skipped when its record says it finished with the same inputs.

    The record (``OUT/.steps/<name>.json``) is written after the step's outputs, atomically, so an
    interrupted step runs again. ``OUT`` must be new, empty or an earlier run's (it has ``.steps/``,
    made first); any other folder is refused (FileExistsError), as the steps would replace files
    of the user's there.
    """

    def __init__(self, out_dir: str | os.PathLike, echo: Callable[[str], None] = print) -> None:
        self.dir = Path(out_dir) / ".steps"
        check_output_folder(out_dir, command="the demo", owned=lambda folder: (folder / ".steps").is_dir(),
                            marker=".steps/ folder of a demo run", writes=("data", "features", "models"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self.keys: dict[str, str] = {}  # each step's key in this run, for the steps that read its outputs

    def _record(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def made_before(self, name: str) -> bool:
        """Whether step `name` finished once (its record exists), with these inputs or others."""
        return self._record(name).exists()

    def upstream(self, *names: str) -> dict[str, str]:
        """The keys of the steps whose outputs a step reads (they ran or were reused before it in
        this run): in its own key, so that it runs again whenever one of them did."""
        missing = [n for n in names if n not in self.keys]
        if missing:
            raise RuntimeError(f"steps {missing} must run (or be reused) before the steps that read their outputs")
        return {n: self.keys[n] for n in names}

    @staticmethod
    def digest(params: dict) -> str:
        return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @staticmethod
    def _saved(record: Path) -> dict:
        """The step record at `record`; ``{}`` (the step runs again and rewrites it) when it is
        damaged: not JSON, not UTF-8, cut short, or not an object."""
        try:
            saved = json.loads(record.read_text(encoding="utf-8"))
        except ValueError as e:
            saved = e
        if not isinstance(saved, dict):
            why = saved if isinstance(saved, ValueError) else f"a JSON {type(saved).__name__}, not an object"
            logger.warning("step record %s is damaged (%s); running its step again, which rewrites it", record, why)
            return {}
        return saved

    def run(self, name: str, params: dict, outputs: list[Path], fn: Callable[[], object]):
        record = self._record(name)
        key = self.keys[name] = self.digest(params)
        if record.exists() and all(Path(p).exists() for p in outputs):
            saved = self._saved(record)
            if saved.get("key") == key:
                self.echo(f"[{name}] reused ({saved.get('seconds', 0):.1f}s when made)")
                return saved.get("result")
        self.echo(f"[{name}] running ...")
        t = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t
        # the record last, fsynced: a later run trusts it to skip the step
        atomic_write_json(record, {"key": key, "params": params, "seconds": seconds, "result": result},
                          default=str, durable=True)
        self.echo(f"[{name}] done in {seconds:.1f}s")
        return result


#: The model-free baselines' rows, shared by the evaluations of both modes (in ``OUT/evaluation/``).
BASELINE_CACHE = "baselines-cache.json"


def _paths(cfg: DemoConfig) -> dict[str, Path]:
    out = Path(cfg.out_dir)
    return {"data": out / "data", "features": out / "features", "models": out / "models",
            "eval": out / "evaluation", "report": out / "report"}


def build_data(cfg: DemoConfig, steps: Steps) -> None:
    from gensim_im2vec.datasets import build_dataset

    p = _paths(cfg)
    for name in (*cfg.image_sets, "dictionary-text"):
        limit = cfg.text_limit if name == "dictionary-text" else cfg.limit
        steps.run(f"dataset-{name}", {"name": name, "limit": limit, "code": _code("datasets", "text")},
                  [p["data"] / name / "dataset.json"],
                  lambda name=name, limit=limit: _summary(build_dataset(name, p["data"] / name, limit=limit)))


def _summary(info: dict) -> dict:
    return {k: v for k, v in info.items() if isinstance(v, (int, float, str))}


#: What a feature store's rows depend on, from the extractor's metadata: the feature step's key.
FEATURE_INPUTS = ("arch", "weights", "layer", "preprocessing", "precision", "decoding", "torch_version",
                  "torchvision_version")


def _files_digest(files) -> str:
    """A digest of ``(name, path)`` pairs' names and bytes."""
    from gensim_im2vec.weights import file_digest

    h = hashlib.sha256()
    for name, path in files:
        h.update(name.encode("utf-8") + b"\0" + bytes.fromhex(file_digest(path, "sha256")))
    return h.hexdigest()[:16]


def _images_digest(folder: Path) -> str:
    """A digest of the images under `folder` (their keys and bytes): what a feature store's rows
    depend on of a data set. Its tags and texts are not in it, so a change of the normaliser
    rebuilds the data set and keeps its features."""
    from gensim_im2vec.features import list_images

    return _files_digest(list_images(folder))


def _text_digest(cfg: DemoConfig) -> str:
    """A digest of the text files the word vectors are trained on (:func:`text_sentences`): a
    rebuild of the text data set that writes the same text keeps the word vectors."""
    files = sorted(_paths(cfg)["data"].joinpath("dictionary-text").glob("*.txt"))
    return _files_digest((f.name, f) for f in files)


def extract_features(cfg: DemoConfig, steps: Steps) -> None:
    """One feature store per image set. The step's key is what the rows depend on: the images'
    keys and bytes (not the data set's tags, so a change of the normaliser keeps the features) and
    the extractor's :data:`FEATURE_INPUTS` (not its source: a refactor that keeps the arithmetic
    keeps the store); a store made with other inputs is rewritten, an interrupted one continued."""
    from gensim_im2vec.features import FeatureExtractor
    from gensim_im2vec.weights import install_offline_weights

    p = _paths(cfg)
    if (cfg.arch, cfg.weights) == (DEFAULT_ARCH, DEFAULT_WEIGHTS):  # the checkpoint that ships offline
        try:
            install_offline_weights()
        except Exception as err:  # a user with network gets torchvision's download instead
            logger.warning("offline MobileNetV2 weights not installed (%s); torchvision will try to download", err)
    fx = FeatureExtractor(arch=cfg.arch, weights=cfg.weights, device=cfg.device, progress=True)
    inputs = {k: fx.metadata.get(k) for k in FEATURE_INPUTS}
    for name in cfg.image_sets:
        store = p["features"] / name
        # the step runs with its record there only when that record is for other inputs (or the store is
        # gone): rewrite; without a record the step never finished: continue what is there
        mode = "overwrite" if steps.made_before(f"features-{name}") else "extend"

        def run(name=name, store=store, mode=mode):
            report = fx.extract(p["data"] / name, store, mode=mode)
            return {"images": len(report.store), "skipped": len(report.skipped)}

        steps.upstream(f"dataset-{name}")  # (built or reused in this run: its images are there)
        steps.run(f"features-{name}", {"name": name, "limit": cfg.limit, **inputs,
                                       "images": _images_digest(p["data"] / name)}, [store / "metadata.json"], run)


def text_sentences(cfg: DemoConfig):
    from gensim_im2vec.corpora import TextCorpus
    from gensim_im2vec.text import Normalizer

    root = _paths(cfg)["data"] / "dictionary-text"
    files = sorted(str(f) for f in root.glob("*.txt"))
    return TextCorpus(files, normalizer=Normalizer.for_text())


def text_word2vec(cfg: DemoConfig, sentences=None, model_class=None):
    """The demo's text-only word vectors: gensim's Word2Vec on ``dictionary-text`` (skip-gram), or
    with the same settings on `sentences` (a benchmark's variant of that text), or by `model_class`
    (gensim's FastText, which takes the same settings)."""
    from gensim.models import Word2Vec

    return (model_class or Word2Vec)(
        text_sentences(cfg) if sentences is None else sentences, vector_size=cfg.vector_size, sg=1, negative=5,
        window=5, min_count=5, epochs=cfg.text_epochs, workers=cfg.workers, seed=cfg.seed)


def pretrain_words(cfg: DemoConfig, steps: Steps) -> Path:
    path = _paths(cfg)["models"] / "words.w2v"

    def run():
        path.parent.mkdir(parents=True, exist_ok=True)
        model = text_word2vec(cfg)
        atomic_save(model, path)  # with gensim's companion .npy files, the main file last
        return {"words": len(model.wv), "corpus_words": model.corpus_total_words}

    steps.upstream("dataset-dictionary-text")  # (built or reused in this run: its text is there)
    steps.run("pretrain-words", {"vector_size": cfg.vector_size, "epochs": cfg.text_epochs,
                                 "text_limit": cfg.text_limit, "seed": cfg.seed, "code": _code("text", "corpora"),
                                 "text": _text_digest(cfg)}, [path], run)
    return path


def open_features(cfg: DemoConfig):
    """One ImageFeatures over all image sets' stores (keys are unique across sets by prefix)."""
    from gensim_im2vec.image_features import ImageFeatures
    from gensim_im2vec.store import FeatureStore

    keys, arrays, meta = [], [], {}
    for name in cfg.image_sets:
        store = FeatureStore.open(_paths(cfg)["features"] / name, mmap=True)
        keys.extend(store.keys)
        arrays.append(np.asarray(store.vectors))
        meta = dict(store.metadata)
    return ImageFeatures(keys, np.concatenate(arrays), name="demo features", metadata=meta)


def load_splits(cfg: DemoConfig) -> dict:
    """``{image set: its Split}`` for every image set of the demo."""
    from gensim_im2vec.datasets import load_split

    return {name: load_split(_paths(cfg)["data"] / name) for name in cfg.image_sets}


def training_documents(cfg: DemoConfig, features=None, *, tags_only: bool = False,
                       splits: dict | None = None) -> tuple[list, dict]:
    """Training documents of all image sets (their train split, every set's zero-shot tags removed;
    with `features`, only images that have features: the extractor skips unreadable or huge files).

    `tags_only`: each image with its tags alone (no title or description). `splits`: ``{image set:
    Split}`` to use instead of the saved ones (default :func:`load_splits`). Returns the documents
    and the splits.
    """
    from gensim_im2vec.datasets import training_documents as documents

    splits = splits if splits is not None else load_splits(cfg)
    sets = {name: (_paths(cfg)["data"] / name, split) for name, split in splits.items()}
    return documents(sets, has_features=features, tags_only=tags_only, min_words=cfg.min_image_words), splits


def zero_shot_tags(cfg: DemoConfig, splits: dict | None = None) -> set:
    """The zero-shot tags of every image set: each is held out of every set's training documents
    (a tag held out of OpenClipArt must not reach the model through an emoji's document either)."""
    from gensim_im2vec.datasets import held_out_tags

    return held_out_tags((splits if splits is not None else load_splits(cfg)).values())


def train_model(cfg: DemoConfig, features, w2v, splits: dict | None = None):
    """Train Im2Vec as the demo does, on the training documents of `splits` (default: the saved
    ones): two-stage from the text model `w2v` (a Word2Vec, or its vectors alone), or joint on text + image documents; with
    `cfg.space_analogies`, the analogy term on :func:`training_analogies`."""
    from gensim_im2vec.model import Im2Vec

    docs, splits = training_documents(cfg, features, tags_only=cfg.tags_only, splits=splits)
    opts = dict(cfg.im2vec)
    copies = max(1, cfg.image_epochs // cfg.text_epochs) if cfg.mode == "joint" else 1
    # two-stage: the text model's (a Word2Vec's, or Im2Vec's default from its vectors alone); joint: the Im2Vec below
    min_count = getattr(w2v, "min_count", opts.get("min_count", 5)) if cfg.mode == "two-stage" else 5
    if cfg.space_analogies and "space_analogies" not in opts:
        # the words the vocabulary will keep: gensim keeps a new word seen min_count times
        counts = Counter(w for doc in docs for w in doc[1:])
        known = {w for w, c in counts.items() if c * copies >= min_count}
        if cfg.mode == "two-stage":
            known |= set(getattr(w2v, "wv", w2v).key_to_index)  # (a Word2Vec, or its vectors alone)
        quads = training_analogies(cfg, splits, docs, known)
        if quads:
            logger.info("analogy term: %i questions about half of the training images", len(quads))
        else:  # --space-analogies would change nothing, silently
            logger.warning("analogy term: no question found (no two training titles differ in one word whose "
                           "words are in the images' documents; a small --limit has few titles): trained without "
                           "it, as without --space-analogies")
        opts["space_analogies"] = quads or None
    if cfg.mode == "two-stage":
        return Im2Vec.from_word2vec(w2v, image_features=features, sentences=docs, epochs=cfg.image_epochs,
                                    workers=cfg.workers, seed=cfg.seed, **opts)
    if cfg.mode == "joint":
        opts.pop("sample", None)  # text needs gensim's frequent-word downsampling
        text = list(text_sentences(cfg))
        return Im2Vec(text + docs * copies, image_features=features,
                      vector_size=cfg.vector_size, sg=1, negative=5, min_count=min_count, epochs=cfg.text_epochs,
                      workers=cfg.workers, seed=cfg.seed, **opts)
    raise ValueError(f"mode must be 'two-stage' or 'joint', got {cfg.mode!r}.")


def train_im2vec(cfg: DemoConfig, steps: Steps, words_path: Path) -> Path:
    from gensim.models import Word2Vec

    path = _paths(cfg)["models"] / f"im2vec-{cfg.mode}.model"

    def run():
        model = train_model(cfg, open_features(cfg), Word2Vec.load(str(words_path)))
        model.save(str(path))
        return {"images": len(model.image_keys), "words": len(model.word_keys)}

    params = {k: v for k, v in asdict(cfg).items() if k not in ("out_dir", "device", "eval_set")}
    reads = (*(f"dataset-{n}" for n in cfg.image_sets), *(f"features-{n}" for n in cfg.image_sets), "pretrain-words")
    steps.run(f"train-{cfg.mode}", {**params, "code": _code("model", "space", "pipeline"),
                                    "upstream": steps.upstream(*reads)}, [path], run)
    return path


def tag_documents(cfg: DemoConfig, features, splits: dict | None = None) -> list:
    """``[image, its tags…]`` of every training image with features, zero-shot tags removed."""
    return training_documents(cfg, features, tags_only=True, splits=splits)[0]


def evaluation_data(cfg: DemoConfig, features, min_images: int = 2, split=None):
    """The held-out images of `cfg.eval_set` (its saved split, or `split`) that have features, and
    the training images, by the evaluation's rule for candidates
    (:func:`gensim_im2vec.evaluate.tagging_task`); returns a :class:`~gensim_im2vec.evaluate.TaggingTask`."""
    from gensim_im2vec.datasets import image_tags, load_split
    from gensim_im2vec.evaluate import tagging_task

    d = _paths(cfg)["data"] / cfg.eval_set
    split = split if split is not None else load_split(d)
    train = {k: v for k, v in image_tags(d, split.train).items() if k in features}
    test = {k: v for k, v in image_tags(d, split.test).items() if k in features}
    return tagging_task(train, test, split.zero_shot_tags, min_images=min_images)


def _code(*modules: str) -> str:
    """Digest of this package's modules: a step reruns when the code that computes it changes."""
    here = Path(__file__).resolve().parent
    return Steps.digest({m: hashlib.sha256((here / f"{m}.py").read_bytes()).hexdigest() for m in modules})


def evaluate_trained(cfg: DemoConfig, model, text_model, splits: dict | None = None, features=None, **kwargs):
    """:func:`gensim_im2vec.evaluate.run_evaluation` of a trained model on the held-out images of
    `cfg.eval_set` (the saved split, or `splits`), with every baseline, word similarity against
    `text_model`, the space's checks and the cross-modal analogies; returns the report. The
    features of held-out and training images come from `features` (default: the demo's stores,
    :func:`open_features`; a saved model keeps only its own images' rows). `kwargs` go to
    ``run_evaluation`` (e.g. ``baselines=("ridge", "knn")``); by default the model-free baselines'
    rows are cached in ``OUT/evaluation/baselines-cache.json`` (``baseline_cache=None``: not), so
    the second mode's evaluation, or ``im2vec evaluate --demo``, reuses the first one's.

    The report's ``info`` also says which images the split held: ``eval_set``,
    ``n_test_images_in_split`` and ``n_train_images_in_split`` (the evaluation scores the held-out
    images with features and a candidate tag, ``n_test_images``, and the baselines learn from the
    training images with features and a tag, ``n_train_images``)."""
    from gensim_im2vec.datasets import load_split
    from gensim_im2vec.evaluate import run_evaluation

    kwargs.setdefault("baseline_cache", _paths(cfg)["eval"] / BASELINE_CACHE)

    feats = features if features is not None else open_features(cfg)
    split = splits[cfg.eval_set] if splits else load_split(_paths(cfg)["data"] / cfg.eval_set)
    data = evaluation_data(cfg, feats, split=split)
    # images of its vocabulary (is_image is also True for any key with features, and a model just
    # trained holds the whole store: every held-out image has features there)
    is_image, vocab = getattr(model, "is_image", None), model.wv.key_to_index
    seen = [k for k in data.test_keys if is_image is not None and k in vocab and is_image(k)]
    if seen:  # e.g. a model left in OUT/models by a run with another --limit: its split differs
        raise ValueError(
            f"{len(seen)} of the {len(data.test_keys)} held-out images of {cfg.eval_set}'s split are images this "
            f"model trained on (e.g. {seen[:3]}): it was trained on another split (a run with other data options), "
            f"and its figures would be in-sample. Train it again on this split (im2vec demo --out {cfg.out_dir} "
            f"with the same options and --mode), or evaluate it where it was trained.")
    rows = lambda keys: feats.gather_normalized([feats.row(k) for k in keys])  # noqa: E731
    docs, splits = training_documents(cfg, feats, tags_only=cfg.tags_only, splits=splits)
    analogies = analogy_questions(cfg, model, splits=splits, docs=docs, features=feats)
    if cfg.mode == "joint":  # the id-token baseline sees the image documents as often as the model did
        docs = docs * max(1, cfg.image_epochs // cfg.text_epochs)
    report = run_evaluation(
        model, rows(data.test_keys), data.test_tags, data.candidates, zero_shot=data.zero_shot,
        train_features=rows(data.train_keys), train_tags=data.train_tags, train_keys=data.train_keys,
        train_docs=docs, text_model=text_model, seed=cfg.seed, analogies=analogies, **kwargs)
    report.info.update(eval_set=cfg.eval_set, n_test_images_in_split=len(split.test),
                       n_train_images_in_split=len(split.train))
    return report


def evaluate_model(cfg: DemoConfig, steps: Steps, model_path: Path, words_path: Path, model, features) -> str:
    """Evaluate the demo's model (`model`, loaded from `model_path`, on `features`:
    :func:`evaluate_trained`), cached; returns the printed table."""
    from gensim.models import Word2Vec

    out = _paths(cfg)["eval"]
    json_path = out / f"evaluation-{cfg.mode}.json"
    table_path = out / f"evaluation-{cfg.mode}.txt"

    def run():
        out.mkdir(parents=True, exist_ok=True)
        report = evaluate_trained(cfg, model, Word2Vec.load(str(words_path)), features=features)
        report.save_json(json_path)
        atomic_write_bytes(table_path, (report.format_table() + "\n").encode("utf-8"))
        return {k: report.info[k] for k in ("n_test_images", "n_candidates", "n_zero_shot_tags")}

    steps.run(f"evaluate-{cfg.mode}", {"model": Steps.digest({"m": os.path.getmtime(model_path)}),
                                       "eval_set": cfg.eval_set,
                                       "code": _code("evaluate", "metrics", "baselines", "index", "datasets", "model",
                                                     "pipeline")},
              [json_path, table_path], run)
    return table_path.read_text()


def training_titles(cfg: DemoConfig, splits: dict) -> dict[str, str]:
    """``{image token: title}`` of the training images of every image set of `splits`."""
    from gensim_im2vec.datasets import image_titles

    titles = {}
    for name, split in splits.items():
        titles.update(image_titles(_paths(cfg)["data"] / name, split.train))
    return titles


def analogy_questions(cfg: DemoConfig, model, splits: dict | None = None, docs: list | None = None,
                      features=None) -> list[tuple[str, str, str, str]]:
    """Cross-modal analogies among the training images of every image set, from titles that differ
    in one word ("man biking" / "woman biking": ``image − man + woman`` → the woman's image), where
    the swapped words are in the images' own training documents (`docs`, default: read them again
    with :func:`training_documents` for the images of `features`, default the demo's stores); see
    :func:`gensim_im2vec.evaluate.analogy_questions`."""
    from gensim_im2vec.evaluate import analogy_questions as questions

    splits = splits if splits is not None else load_splits(cfg)
    titles = training_titles(cfg, splits)
    if docs is None:
        features = features if features is not None else open_features(cfg)
        docs = training_documents(cfg, features, tags_only=cfg.tags_only, splits=splits)[0]
    return questions(model, titles, docs)


def training_analogies(cfg: DemoConfig, splits: dict, docs: list, words=None,
                       half: int = 0) -> list[tuple[str, str, str, str]]:
    """The questions the demo's analogy term trains on, before any model exists: half 0 of
    :func:`~gensim_im2vec.evaluate.analogy_halves` of the questions :func:`analogy_questions`
    finds (no image of theirs is in a question of the other half, which the evaluation asks;
    ``half=1`` gives those). The swapped words must be in the images' own training `docs` and,
    when `words` is given, in it (the words the model's vocabulary will have; the halves are cut
    before, so they are the evaluation's)."""
    from gensim_im2vec.evaluate import analogy_halves, analogy_quads

    tags = {doc[0]: set(doc[1:]) for doc in docs}
    titles = {k: t for k, t in training_titles(cfg, splits).items() if k in tags}
    quads = analogy_quads(titles, {w for t in titles.values() for w in t.lower().split()}, tags)
    words = None if words is None else set(words)
    return [q for q, h in zip(quads, analogy_halves(quads))
            if h == half and (words is None or (q[1] in words and q[2] in words))]


def _listing(title: str, pairs, model=None, n: int = 8) -> str:
    lines = [title]
    for key, score in pairs[:n]:
        mark = "  [image]" if model is not None and model.is_image(key) else ""
        lines.append(f"    {key:<40s} {score:8.4f}{mark}")
    return "\n".join(lines)


def show_examples(cfg: DemoConfig, model, features) -> str:
    """Neighbour lists in the style of the slides, all answered by cosine in ``model.wv``: a word's
    nearest words and images, a held-out image's nearest words and images (placed by
    ``model.project`` from `features`), its zero-shot tags among the others, and two cross-modal
    analogies about images the model's analogy term never trained on."""
    feats = features
    data = evaluation_data(cfg, feats)
    out = []
    for word in ("red", "dog", "car", "flower"):
        if word in model.wv:
            out.append(_listing(f"Word: {word}  (nearest words)", model.most_similar_words(word), model))
            out.append(_listing(f"Word: {word}  (nearest images)", model.most_similar_images(word), model))
    zs = [t for t in data.zero_shot if t in model.wv.key_to_index]
    shown = list(zip(data.test_keys, data.test_tags))[:3]
    shown += [(k, t) for k, t in zip(data.test_keys, data.test_tags) if set(t) & set(zs)][:2]
    X = feats.gather_normalized([feats.row(k) for k in (k for k, _ in shown)], normalize=False)
    words = model.similar_by_image(X, topn=8, restrict="tags")  # its describing words, not the whole text
    images = model.similar_by_image(X, topn=5, restrict="images")
    for (key, tags), w, im, x in zip(shown, words, images, X):
        out.append(_listing(f"Held-out image {key}  (true tags: {', '.join(tags[:8])})\n"
                            f"  nearest tags (cosine in model.wv, the image placed by model.project):", w, model))
        out.append(_listing("  nearest images:", im, model))
        own = sorted(set(tags) & set(zs))
        if own:
            cos = 1.0 - model.wv.distances(model.project(x), zs)
            order = np.argsort(-cos, kind="stable")
            rank = {zs[i]: r + 1 for r, i in enumerate(order)}
            out.append(_listing(f"  its zero-shot tags: {', '.join(f'{t} (rank {rank[t]} of {len(zs)})' for t in own)};"
                                f" the {len(zs)} zero-shot tags by cosine:", [(zs[i], float(cos[i])) for i in order], n=5))
    from gensim_im2vec.evaluate import untrained_analogies

    quads = untrained_analogies(model, analogy_questions(cfg, model, features=features))[0]
    for x, a, b, y in quads[:2]:
        out.append(_listing(f"Analogy: {x} - {a} + {b}  (expected: {y})",
                            model.most_similar_images(positive=[x, b], negative=[a], topn=5), model))
    return "\n\n".join(out)


def image_paths(cfg: DemoConfig) -> dict[str, str]:
    """``img:<key>`` → PNG file of every image of the image sets (for thumbnails)."""
    from gensim_im2vec.features import list_images

    paths = {}
    for name in cfg.image_sets:
        for key, path in list_images(_paths(cfg)["data"] / name):
            paths[key] = str(path)
    return paths


def write_demo_report(cfg: DemoConfig, steps: Steps, model_path: Path, model, features) -> Path:
    """The static HTML report of `model` (loaded from `model_path`; held-out images from
    `features`): thumbnails, predicted vs true tags, the evaluation's tables (those of
    ``OUT/evaluation/evaluation-<mode>.txt``, from its JSON, linked), a 2-D map."""
    from gensim_im2vec.report import write_report

    out = _paths(cfg)["report"] / cfg.mode
    eval_json = _paths(cfg)["eval"] / f"evaluation-{cfg.mode}.json"

    def run():
        feats = features
        data = evaluation_data(cfg, feats)
        keys = data.test_keys[:: max(1, len(data.test_keys) // 60)][:60]
        # the EvaluationReport's JSON: the tables evaluation-<mode>.txt prints, the page links the file
        evaluation = eval_json if eval_json.exists() else None
        words = [w for w in ("red", "dog", "cat", "car", "flower", "tree", "house", "music", "food", "star",
                             "heart", "sun") if w in model.wv]
        write_report(model, out, test_keys=keys,
                     test_features=feats.gather_normalized([feats.row(k) for k in keys], normalize=False),
                     true_tags=dict(zip(data.test_keys, data.test_tags)), image_paths=image_paths(cfg),
                     evaluation=evaluation, words=words, map_method="tsne",
                     title=f"Im2Vec ({cfg.mode}) on {', '.join(cfg.image_sets)}")
        return {"html": str(out / "index.html")}

    steps.run(f"report-{cfg.mode}", {"model": Steps.digest({"m": os.path.getmtime(model_path)}),
                                     "eval": Steps.digest({"e": os.path.getmtime(eval_json)})
                                     if eval_json.exists() else None, "code": _code("report", "evaluate")},
              [out / "index.html"], run)
    return out / "index.html"


def run_demo(cfg: DemoConfig | None = None, echo: Callable[[str], None] = print) -> dict:
    """Run (or reuse) every step of the demo; returns paths, examples and the evaluation table."""
    from gensim_im2vec.model import Im2Vec

    cfg = cfg or DemoConfig()
    _check_device(cfg.device)
    steps = Steps(cfg.out_dir, echo)
    build_data(cfg, steps)
    extract_features(cfg, steps)
    words = pretrain_words(cfg, steps)
    path = train_im2vec(cfg, steps, words)
    model = Im2Vec.load(str(path), mmap="r")  # once, for every step that reads it
    features = open_features(cfg)  # held-out images too: a saved model keeps its own images' rows only
    examples = show_examples(cfg, model, features)
    echo(examples)
    table = evaluate_model(cfg, steps, path, words, model, features)
    echo(table)
    html = write_demo_report(cfg, steps, path, model, features)
    echo(f"report: {html}")
    zs_path = write_zero_shot_words(cfg, model)
    default = cfg.mode == "two-stage" and Path(cfg.out_dir).resolve() == Path("demo_output").resolve()
    echo(f"explore: im2vec query {path} --zero-shot-words {zs_path}" + ("   (or: make query)" if default else ""))
    return {"words": str(words), "model": str(path), "examples": examples, "evaluation": table,
            "report": str(html), "zero_shot_words": str(zs_path)}


def _check_device(device: str) -> None:
    """`device` (``DemoConfig.device``) checked before any step, as the feature step checks it (every
    run builds its extractor, cached features or not): a device that is not one, or is not on this
    machine, failed only after the data sets were built (minutes and 260 MB). Without torch nothing is
    checked: the feature step says what to install."""
    if device in (None, "auto"):
        return
    try:
        from gensim_im2vec.features import _resolve_device
    except ImportError:
        return
    _resolve_device(device)


def write_zero_shot_words(cfg: DemoConfig, model) -> Path:
    """``OUT/zero_shot_tags.txt``: the held-out tags that are words of `model`, one per line
    (for ``im2vec query --zero-shot-words``). Written atomically."""
    words = sorted(t for t in zero_shot_tags(cfg) if t in model.wv.key_to_index and not model.is_image(t))
    path = Path(cfg.out_dir) / "zero_shot_tags.txt"
    atomic_write_bytes(path, "".join(w + "\n" for w in words).encode("utf-8"))
    return path
