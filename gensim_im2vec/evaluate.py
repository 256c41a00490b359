"""How well does the joint space tag and retrieve images it never saw, and what do images do to words?

Everything here takes plain inputs — a feature matrix of held-out images, each image's true tags
(a list of str per image), the candidate tag vocabulary, and optionally the zero-shot tags (tags
never shown with a training image) — so any data set, split or reader can feed it.

Metrics live in :mod:`gensim_im2vec.metrics` (P@k, R@k, mAP, tag → image mAP; ties count by
their expectation) and the baseline scorers in :mod:`gensim_im2vec.baselines`; both are
re-exported here. This module holds the model's own scorer, the runner, the space's checks, word
similarity and the report.

Scorers
-------
A *scorer* is any callable ``scorer(features, candidates) -> scores`` returning an array of shape
``(n_images, len(candidates))``; a candidate it cannot score gets ``-inf`` (ranked last, tied).
:class:`Im2VecScorer` asks the space which words fit an image: cosine in ``model.wv``
between ``model.project(features)`` and the words, for seen and zero-shot tags alike (what
``model.wv.most_similar`` answers; nothing beside the space). The baselines
(:class:`~gensim_im2vec.baselines.RandomProjectionScorer`, :class:`~gensim_im2vec.baselines.RidgeScorer`,
:class:`~gensim_im2vec.baselines.IdTokenWord2VecScorer`, :class:`~gensim_im2vec.baselines.TagPriorScorer`,
:class:`~gensim_im2vec.baselines.KNNTagScorer`, :class:`~gensim_im2vec.baselines.LogisticScorer`)
are built from the training split.

>>> import os, tempfile
>>> import numpy as np
>>> from gensim_im2vec import Im2Vec
>>> from gensim_im2vec.synthetic import make_corpus
>>> from gensim_im2vec.evaluate import Im2VecScorer, TagPriorScorer, evaluate_image_tagging
>>> data = make_corpus(n_classes=4, n_images=200, n_features=16, n_test=40, seed=0)
>>> model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1,
...                epochs=20, sample=0, workers=1, seed=1)
>>> test_tags = [[data.class_words[c]] for c in data.test_labels]
>>> candidates = model.word_keys
>>> res = evaluate_image_tagging(Im2VecScorer(model), data.test_features, test_tags, candidates)
>>> res["all"]["p@1"] > 0.9
True
>>> train_tags = [doc[1:] for doc in data.docs]
>>> prior = TagPriorScorer.fit(train_tags)
>>> evaluate_image_tagging(prior, data.test_features, test_tags, candidates)["all"]["map"] < res["all"]["map"]
True

Everything in one run
---------------------
:func:`run_evaluation` scores the model (cosine in its space) and every baseline on the same
held-out images, adds word similarity and the space's own checks, and returns an :class:`EvaluationReport`; ``print(report)`` prints
aligned tables in the style of the slides, ``report.save_json(path)`` keeps the numbers
(``EvaluationReport.load_json(path)`` reads them back; ``report.table_rows()`` gives the printed
tables as rows, e.g. for :mod:`gensim_im2vec.report`'s HTML):

>>> from gensim_im2vec.evaluate import run_evaluation
>>> train_features = np.stack([data.features[d[0]] for d in data.docs])
>>> report = run_evaluation(model, data.test_features, test_tags, candidates,
...                         train_features=train_features, train_tags=train_tags,
...                         baselines=("random", "ridge", "prior", "knn"), word_similarity=False)
>>> [r.method for r in report.rows][:2]
['Im2Vec (cosine in model.wv)', 'random W']
>>> print(report.format_table())                     # doctest: +SKIP

The prior, kNN and logistic baselines do not depend on the model (:data:`MODEL_FREE_BASELINES`);
with ``baseline_cache=PATH`` their rows are kept in a JSON file, keyed by a digest of all they
depend on (the held-out and training features and tags, the candidates, the zero-shot tags, their
settings, the code and library versions), so a second model evaluated on the same data (the
demo's two modes) reuses them, and any change of an input computes them again:

>>> cache = os.path.join(tempfile.mkdtemp(), "baselines.json")
>>> again = [run_evaluation(model, data.test_features, test_tags, candidates, train_features=train_features,
...                         train_tags=train_tags, baselines=("prior", "knn"), word_similarity=False,
...                         baseline_cache=cache) for _ in range(2)]
>>> again[1].info["cached_baselines"], again[0].format_table() == again[1].format_table()
(['tag prior', 'kNN (k=20)'], True)

Word similarity (WordSim353, SimLex-999 and Google analogies, all bundled with gensim):
:func:`word_similarity` for one model, :func:`compare_word_similarity` for Im2Vec's words
against the text-only model they started from.

The same from the shell (see :func:`load_tagged_jsonl` for the file format)::

    im2vec evaluate model.im2vec --test test.jsonl --features store/ --train train.jsonl
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import os
import zlib
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from timeit import default_timer

import numpy as np
from gensim.models import KeyedVectors

from gensim_im2vec.baselines import (
    IdTokenWord2VecScorer,
    KNNTagScorer,
    LogisticScorer,
    NotApplicableError,
    RandomProjectionScorer,
    RidgeScorer,
    Scorer,
    TagPriorScorer,
    TagScorer,
    candidate_vectors,
    fill_scores,
)
from gensim_im2vec.fileio import atomic_write_json
from gensim_im2vec.index import cosine_neighbours, fill_norms
from gensim_im2vec.keys import image_mask
from gensim_im2vec.metrics import (
    average_precision,
    evaluate_scores,
    mean_average_precision,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    relevance_matrix,
    retrieval_map,
)
from gensim_im2vec.validation import (
    check_features,
    check_not_a_str,
    check_tag_lists,
    check_tagged_features,
    is_int,
    l2_normalize,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BASELINES",
    "EvaluationReport",
    "Im2VecScorer",
    "IdTokenWord2VecScorer",
    "KNNTagScorer",
    "LogisticScorer",
    "MODEL_FREE_BASELINES",
    "NotApplicableError",
    "RandomProjectionScorer",
    "RidgeScorer",
    "TagPriorScorer",
    "TagScorer",
    "TaggingResult",
    "TaggingTask",
    "analogy_halves",
    "analogy_questions",
    "analogy_quads",
    "average_precision",
    "bag_of_words_analogies",
    "bag_of_words_vectors",
    "compare_word_similarity",
    "copies_of_training",
    "in_vocabulary_order",
    "evaluate_image_tagging",
    "evaluate_scores",
    "features_for_keys",
    "image_analogies",
    "load_tagged_jsonl",
    "mean_average_precision",
    "neighbour_tag_agreement",
    "one_space_check",
    "precision_at_k",
    "ranking_metrics",
    "read_tag_file",
    "recall_at_k",
    "relevance_matrix",
    "retrieval_map",
    "run_evaluation",
    "tagging_task",
    "untrained_analogies",
    "vector_analogies",
    "word_similarity",
    "words_only",
]

#: Baselines :func:`run_evaluation` computes by default.
DEFAULT_BASELINES = ("random", "ridge", "id-token", "prior", "knn", "logistic")
#: The baselines whose rows do not depend on the model, only on the images, their tags, the
#: candidates and their own settings (random W and ridge map into the model's word space; the
#: id-token Word2Vec takes the model's hyperparameters): what ``baseline_cache`` keeps.
MODEL_FREE_BASELINES = ("prior", "knn", "logistic")

# ============================================================================ the model's scorer
class Im2VecScorer(TagScorer):
    """Score candidate tags for images by the space itself: cosine between an image's vector
    (``model.project(features)``, the same function that wrote the training images' rows of
    ``model.wv``) and the words' vectors in ``model.wv`` — what ``model.wv.most_similar`` ranks by.

    Parameters
    ----------
    model : Im2Vec
    name : str, optional
        Row label (default "Im2Vec (cosine in model.wv)").

    Candidates that are not words of the model score ``-inf``. The projection and the cosine are
    computed in float64 and the scores rounded to float32 once, at the end: float32 products
    round differently on different BLAS kernels (OpenBLAS picks one per CPU), enough to reorder
    near-tied images and move the table's third decimal between machines.
    """

    note = "cosine between model.project(f) and the words in model.wv"

    def __init__(self, model, name: str | None = None):
        self.model = model
        self.name = name or "Im2Vec (cosine in model.wv)"

    def score(self, features, candidates: Sequence[str]) -> np.ndarray:
        # model.project's own function, computed in float64
        arr, _ = self.model._as_feature_matrix(features)
        return self.score_vectors(self.model._project_normalized(arr, dtype=np.float64), candidates)

    def score_vectors(self, vectors, candidates: Sequence[str]) -> np.ndarray:
        """The same for vectors already in the space (e.g. training images' rows of ``model.wv``)."""
        mat, cols = candidate_vectors(self.model.wv, candidates, unit=False, exclude=self.model.is_image)
        mat = l2_normalize(mat.astype(np.float64), out_dtype=np.float64)
        H = l2_normalize(np.atleast_2d(np.asarray(vectors, dtype=np.float64)), out_dtype=np.float64)
        return fill_scores(len(H), candidates, cols, H @ mat.T)


# ============================================================================ image tagging
def _unique(seq: Iterable[str], name: str) -> list[str]:
    check_not_a_str(seq, name)
    seen, out = set(), []
    for c in seq:
        if not isinstance(c, str):
            raise TypeError(f"{name}: expected str tags, got {type(c).__name__} {c!r}.")
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def evaluate_image_tagging(scorer: Scorer, test_features, true_tags: Sequence[Iterable[str]],
                           candidates: Sequence[str], zero_shot: Iterable[str] | None = None,
                           ks: Sequence[int] = (1, 5, 10)) -> dict:
    """Image → tag and tag → image metrics of one scorer on held-out images.

    Parameters
    ----------
    scorer : callable ``(features, candidates) -> ndarray (n_images, n_candidates)``
        E.g. an :class:`Im2VecScorer` or a baseline; ``-inf`` for candidates it cannot rank.
    test_features : array_like (n_images, n_features)
        Raw features of the held-out images.
    true_tags : sequence of list of str
        Each image's own tags; tags outside the candidates are ignored.
    candidates : sequence of str
        The tag vocabulary every image's ranking runs over. Zero-shot tags missing from it are
        appended.
    zero_shot : iterable of str, optional
        Tags never seen with a training image. If given, the result also has ``"seen"`` (the
        candidates without them) and ``"zero_shot"`` (the same scores restricted to them).
    ks : sequence of int
        Cut-offs for P@k and R@k.

    Returns
    -------
    dict
        ``{"all": m, "seen": m, "zero_shot": m}`` (the last two only with `zero_shot`), each ``m``
        ``{"p@1", "r@1", "p@5", …, "map", "tag_map", "n_images", "n_tags", "n_candidates"}``:
        image → tag metrics averaged over images with at least one candidate tag, ``tag_map`` the
        tag → image retrieval mAP averaged over tags carried by at least one image.
    """
    candidates = _unique(candidates, "candidates")
    zs = None
    if zero_shot is not None:
        zs = _unique(zero_shot, "zero_shot")
        have = set(candidates)
        extra = [t for t in zs if t not in have]
        if extra:
            logger.info("adding %i zero-shot tags to the %i candidates", len(extra), len(candidates))
            candidates = candidates + extra
    X = check_features(test_features, name="test_features")
    true_tags = check_tag_lists(true_tags, "true_tags")
    if len(true_tags) != len(X):
        raise ValueError(f"{len(X)} test images but {len(true_tags)} tag lists; they must match one to one.")
    scores = np.asarray(scorer(X, candidates))
    if scores.shape != (len(X), len(candidates)):
        raise ValueError(f"scorer {scorer!r} returned shape {scores.shape}; expected ({len(X)}, {len(candidates)}).")
    return evaluate_scores(scores, true_tags, candidates, zs, ks)


# ============================================================================ the task
@dataclass
class TaggingTask:
    """Held-out images to tag, the training images the baselines learn from, and the candidates.

    Attributes
    ----------
    test_keys, test_tags : list
        The held-out images (tokens) that carry at least one candidate, and their tags.
    train_keys, train_tags : list
        The training images and their tags, zero-shot tags removed.
    candidates : list of str
        The seen candidates (sorted), then the zero-shot ones (sorted).
    zero_shot : list of str
        The zero-shot tags found on held-out images (sorted).
    """

    test_keys: list
    test_tags: list
    train_keys: list
    train_tags: list
    candidates: list
    zero_shot: list


def tagging_task(train_tags: Mapping[str, Sequence[str]], test_tags: Mapping[str, Sequence[str]],
                 zero_shot: Iterable[str] = (), min_images: int = 2) -> TaggingTask:
    """The evaluation's rule for candidates: the tags on at least `min_images` training images,
    plus the zero-shot tags found on held-out images; held-out images without a candidate are
    left out (they have nothing to be ranked by).

    >>> task = tagging_task({"img:1": ["dog", "pet"], "img:2": ["dog", "cat"]},
    ...                     {"img:3": ["dog", "wolf"], "img:4": ["fish"]}, zero_shot={"wolf"})
    >>> task.candidates, task.test_keys
    (['dog', 'wolf'], ['img:3'])
    """
    zs = set(zero_shot)
    train = {k: [t for t in v if t not in zs] for k, v in train_tags.items()}
    counts = Counter(t for tags in train.values() for t in set(tags))  # images, not occurrences
    seen = sorted(t for t, c in counts.items() if c >= min_images)
    zero = sorted(zs & {t for tags in test_tags.values() for t in tags})
    cands = set(seen) | set(zero)
    test = {k: list(v) for k, v in test_tags.items() if any(t in cands for t in v)}
    return TaggingTask(list(test), list(test.values()), list(train), list(train.values()), seen + zero, zero)


def analogy_questions(model, titles: Mapping[str, str], documents: Iterable[Sequence[str]]) -> list[tuple[str, str, str, str]]:
    """Cross-modal analogy questions for `model` (:func:`analogy_quads`) from the titles of its
    training images (``{image token: title}``, images of the model only), where the swapped words
    are words of the model and in the images' own training `documents`."""
    titles = {k: t for k, t in titles.items() if k in model.wv.key_to_index}
    tags = {doc[0]: set(doc[1:]) for doc in documents}
    words = {w for t in titles.values() for w in t.lower().split()
             if w in model.wv.key_to_index and not model.is_image(w)}
    return analogy_quads(titles, words, tags)


# ============================================================================ the space itself
def neighbour_tag_agreement(query_vectors, query_tags: Sequence[Iterable[str]], base_vectors,
                            base_tags: Sequence[Iterable[str]], k: int = 10, chunk: int = 1024) -> float:
    """How often an image's `k` nearest base images (cosine) share at least one of its tags.

    Image → image in one number: the fraction of (query, neighbour) pairs with a common tag,
    over queries with at least one tag (NaN when none has one). Compare a space with the raw CNN
    features. `k` larger than the base counts every base image as a neighbour.

    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0]]); b = np.array([[1.0, 0.1], [0.0, 1.0], [0.9, 0.0]])
    >>> neighbour_tag_agreement(q, [["cat"]], b, [["cat"], ["dog"], ["car"]], k=2)
    0.5
    """
    Q = l2_normalize(np.asarray(query_vectors, dtype=np.float32))
    B = l2_normalize(np.asarray(base_vectors, dtype=np.float32))
    qt = [set(t) for t in query_tags]
    bt = [set(t) for t in base_tags]
    if len(Q) != len(qt) or len(B) != len(bt):
        raise ValueError(f"neighbour_tag_agreement: {len(Q)} queries for {len(qt)} tag lists, "
                         f"{len(B)} base vectors for {len(bt)} tag lists; they must match one to one.")
    if not is_int(k) or k < 1:
        raise ValueError(f"neighbour_tag_agreement: k must be an int >= 1 (neighbours per query), got {k!r}.")
    if len(B) == 0:
        raise ValueError("neighbour_tag_agreement: base_vectors is empty; give the training images' vectors "
                         "(one row per image) that the queries' neighbours are drawn from.")
    k = min(int(k), len(B))
    hits, n = 0, 0
    for lo in range(0, len(Q), chunk):
        top, _ = cosine_neighbours(Q[lo:lo + chunk], B, k)
        for i, row in enumerate(top):
            tags = qt[lo + i]
            if tags:
                hits += sum(1 for j in row if tags & bt[j])
                n += k
    return hits / n if n else float("nan")


def analogy_halves(quads: Sequence[tuple[str, str, str, str]]) -> list[int]:
    """0 or 1 per question, so that no image of one half's questions is in the other half's.

    Questions link their two images x and y; every question of one connected group of linked
    images lands in one half, by a hash of the group's smallest key (CRC-32: the same on every
    machine and Python). A model trained on one half's questions (``Im2Vec(space_analogies=...)``)
    is then asked the other's about images no trained question named, neither as x nor as y: a
    question's reverse ``(y, b, a, x)``, which a trained ``(x, a, b, y)`` answers almost by itself,
    is always in the same half.

    >>> analogy_halves([("img:a", "man", "woman", "img:b"), ("img:b", "woman", "man", "img:a"),
    ...                 ("img:b", "red", "blue", "img:c"), ("img:d", "cat", "dog", "img:e")])
    [1, 1, 1, 0]
    """
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for q in quads:
        a, b = root(q[0]), root(q[3])
        if a != b:
            parent[max(a, b)] = min(a, b)  # a group's root is its smallest key
    return [zlib.crc32(root(q[0]).encode("utf-8")) % 2 for q in quads]


def untrained_analogies(model, quads: Sequence[tuple[str, str, str, str]]
                        ) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
    """`quads` cut into those about images the model's analogy term never saw, and the rest:
    ``(untrained, trained)``.

    A model trained with ``Im2Vec(space_analogies=...)`` has seen the answers to those questions,
    and a question that shares an image with one of them is answered partly from it (the reverse
    ``(y, b, a, x)`` of a trained ``(x, a, b, y)`` almost by itself). A question is untrained when
    neither of its images is an image of the model's questions; a model trained without questions
    has trained on none. :func:`analogy_halves` cuts questions so that one half is untrained for a
    model trained on the other.

    >>> class M:
    ...     space_analogies = [("img:a", "man", "woman", "img:b")]
    >>> untrained_analogies(M(), [("img:b", "woman", "man", "img:a"), ("img:c", "blue", "red", "img:d")])
    ([('img:c', 'blue', 'red', 'img:d')], [('img:b', 'woman', 'man', 'img:a')])
    """
    asked = {key for q in (getattr(model, "space_analogies", None) or ()) for key in (q[0], q[3])}
    quads = [tuple(q) for q in quads]
    return ([q for q in quads if q[0] not in asked and q[3] not in asked],
            [q for q in quads if q[0] in asked or q[3] in asked])


def analogy_quads(titles: Mapping[str, str], words: Container[str],
                  tags: Mapping[str, Container[str]] | None = None) -> list[tuple[str, str, str, str]]:
    """Cross-modal analogy questions from image titles that differ in one word.

    Two images titled "man biking" and "woman biking" give ``(x, a, b, y)`` = (the man's image,
    "man", "woman", the woman's image) and the reverse: ``image(x) − a + b`` should land on ``y``.
    Only titles of two or more words, of equal length and differing in exactly one word, both
    words in `words`, are used; a title shared by several images is skipped (the answer would be
    ambiguous). With `tags` (``{key: the words the model saw with that image}``), a question is kept
    only when ``a`` is one of x's words and ``b`` one of y's: the swap is one the model could learn.

    >>> analogy_quads({"img:1": "man biking", "img:2": "woman biking", "img:3": "red heart"},
    ...               {"man", "woman", "red", "blue"})
    [('img:1', 'man', 'woman', 'img:2'), ('img:2', 'woman', 'man', 'img:1')]
    """
    by_title: dict[tuple, list[str]] = {}
    for key, title in titles.items():
        toks = tuple(str(title).lower().split())
        if len(toks) >= 2:  # a one-word title shares nothing with the other: no analogy
            by_title.setdefault(toks, []).append(key)
    unique = {t: keys[0] for t, keys in by_title.items() if len(keys) == 1}
    groups: dict[tuple, list[tuple]] = {}
    for toks in unique:  # titles that differ only at position i share toks with a hole at i
        for i in range(len(toks)):
            groups.setdefault(toks[:i] + (None,) + toks[i + 1:], []).append(toks)
    quads = set()
    for hole, members in groups.items():
        i = hole.index(None)
        members = sorted(m for m in members if m[i] in words)
        if len(members) < 2:
            continue
        # each title with the next one (cyclic), both ways: a group of n titles ("flag: <country>",
        # 250 of them) asks 2n questions, not n²
        if tags is not None:
            members = [t for t in members if t[i] in tags.get(unique[t], ())]
        for t1, t2 in zip(members, members[1:] + members[:1]):
            if t1 != t2:
                quads.add((unique[t1], t1[i], t2[i], unique[t2]))
                quads.add((unique[t2], t2[i], t1[i], unique[t1]))
    return sorted(quads, key=lambda q: (q[0], q[3], q[1], q[2]))


def image_analogies(model, quads: Sequence[tuple[str, str, str, str]]) -> dict:
    """Answer ``image(x) − a + b`` with gensim's own ``model.wv.most_similar`` among the images.

    Returns ``{"n", "hit@1", "nearest_image_hit@1"}``: how often the nearest image to the
    analogy (excluding x) is y, and, as the reference, how often x's own nearest image is y.
    Questions whose keys are not in the model are skipped.
    """
    wv = model.wv
    is_image = image_mask(model)

    def nearest_image(positive, negative, exclude):
        sims = np.array(wv.most_similar(positive=positive, negative=negative, topn=None), dtype=np.float64)
        sims[~is_image] = -np.inf
        sims[wv.key_to_index[exclude]] = -np.inf
        return wv.index_to_key[int(np.argmax(sims))]

    asked = [q for q in quads if all(k in wv.key_to_index for k in q)]
    hits = sum(nearest_image([x, b], [a], x) == y for x, a, b, y in asked)
    near = sum(nearest_image([x], [], x) == y for x, _, _, y in asked)
    n = len(asked)
    return {"n": n, "hit@1": hits / n if n else float("nan"), "nearest_image_hit@1": near / n if n else float("nan")}


def vector_analogies(wv, keys: Sequence[str], vectors, quads: Sequence[tuple[str, str, str, str]]) -> dict:
    """The questions of :func:`image_analogies` with the images of `keys` at `vectors` (one row
    each) instead of their rows of ``wv``; the words stay ``wv``'s. ``image(x) − a + b`` is
    answered by cosine among these images (x excluded), as gensim's ``most_similar`` answers it.

    What another representation of the same images would answer: :func:`bag_of_words_analogies`
    (each image as its tags), or a map of the features fitted by any other rule
    (``benchmarks/analogy_ceilings.py``). Returns ``{"n", "hit@1"}``; questions whose images are
    not in `keys` or whose words are not in `wv` are skipped.

    >>> from gensim.models import KeyedVectors
    >>> wv = KeyedVectors(2); wv.add_vectors(["man", "woman"], [[1, 0], [0, 1]])
    >>> vector_analogies(wv, ["img:1", "img:2", "img:3"], [[1, 1], [0.2, 1], [1, 0.2]],
    ...                  [("img:1", "man", "woman", "img:2")])
    {'n': 1, 'hit@1': 1.0}
    """
    keys = list(keys)
    V = np.asarray(vectors, dtype=np.float32)
    if V.ndim != 2 or len(V) != len(keys):
        raise ValueError(f"vector_analogies: {len(keys)} keys for vectors of shape {V.shape}; give one row per key.")
    if V.shape[1] != wv.vector_size:
        raise ValueError(f"vector_analogies: vectors have {V.shape[1]} dimensions, the words of wv "
                         f"{wv.vector_size}; the images must live in the words' space.")
    if not keys:
        return {"n": 0, "hit@1": float("nan")}
    B = l2_normalize(V)
    row = {k: i for i, k in enumerate(keys)}
    hits = n = 0
    for x, a, b, y in quads:
        if x not in row or y not in row or a not in wv.key_to_index or b not in wv.key_to_index:
            continue
        sims = B @ (B[row[x]] - wv.get_vector(a, norm=True) + wv.get_vector(b, norm=True))
        sims[row[x]] = -np.inf
        hits += keys[int(np.argmax(sims))] == y
        n += 1
    return {"n": n, "hit@1": hits / n if n else float("nan")}


def bag_of_words_analogies(model, quads: Sequence[tuple[str, str, str, str]],
                           documents: Iterable[Sequence[str]]) -> dict:
    """The same questions as :func:`image_analogies`, with every image of `documents` replaced by
    the unit sum of its own words' unit vectors in ``model.wv``: what an image vector that is
    exactly "the sum of its tags" would answer, a ceiling for target 6 on these questions (a map
    of features cannot know an image's words better than the words themselves).

    Returns ``{"n", "hit@1"}``; questions whose images or words are not in `documents` / the
    model are skipped.

    >>> from gensim.models import KeyedVectors
    >>> class M:  # a stand-in with a wv of three words
    ...     wv = KeyedVectors(2); wv.add_vectors(["man", "woman", "bike"], [[1, 0], [0, 1], [1, 1]])
    >>> docs = [["img:1", "man", "bike"], ["img:2", "woman", "bike"], ["img:3", "man"]]
    >>> bag_of_words_analogies(M(), [("img:1", "man", "woman", "img:2")], docs)
    {'n': 1, 'hit@1': 1.0}
    """
    keys, bags = bag_of_words_vectors(model.wv, documents)
    return vector_analogies(model.wv, keys, bags, quads)


def bag_of_words_vectors(wv, documents: Iterable[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """``(keys, rows)``: each image (a document's first token) once, as the unit sum of the unit
    vectors in `wv` of its words, those of all its documents, each word once (a corpus that
    repeats its image documents, as the joint demo does, gives the same rows). Images with no
    word in `wv` are left out."""
    words: dict[str, dict[str, None]] = {}
    for doc in documents:
        if len(doc):
            words.setdefault(doc[0], {}).update(dict.fromkeys(w for w in doc[1:] if w in wv.key_to_index))
    keys = [k for k, ws in words.items() if ws]
    bags = [np.sum([wv.get_vector(w, norm=True) for w in words[k]], axis=0) for k in keys]
    return keys, l2_normalize(np.asarray(bags, dtype=np.float32).reshape(len(bags), wv.vector_size))


def one_space_check(model, keys: Sequence[str], tags: Sequence[Iterable[str]], n_random: int = 20,
                    seed: int = 0) -> dict:
    """Is it one space or two clouds? For images of the model (keys), the mean cosine to their
    nearest other image and to their nearest word, and to their own tags against random words.

    Returns ``{"nearest_image", "nearest_word", "own_tags", "random_words", "n"}`` (mean cosines).
    """
    wv = model.wv
    k2i = wv.key_to_index
    is_word = ~image_mask(model)
    words = np.flatnonzero(is_word)
    rng = np.random.default_rng(seed)
    fill_norms(wv)  # cosines from cached norms (filled a block at a time): never a normalised copy of wv
    inv = 1.0 / np.maximum(wv.norms, 1e-12)
    out = {"nearest_image": [], "nearest_word": [], "own_tags": [], "random_words": []}
    for key, t in zip(keys, tags):
        i = k2i.get(key)
        own = [k2i[w] for w in t if w in k2i and is_word[k2i[w]]]
        if i is None or not own:
            continue
        sims = (wv.vectors @ wv.vectors[i]) * (inv * inv[i])
        sims[i] = -np.inf
        out["nearest_image"].append(float(sims[~is_word].max()))
        out["nearest_word"].append(float(sims[is_word].max()))
        out["own_tags"].append(float(sims[own].mean()))
        out["random_words"].append(float(sims[words[rng.integers(0, len(words), n_random)]].mean()))
    n = len(out["own_tags"])
    res = {k: float(np.mean(v)) if v else float("nan") for k, v in out.items()}
    res["n"] = n
    return res


# ============================================================================ word similarity
def words_only(model_or_kv, word_space: bool = False) -> KeyedVectors:
    """The word vectors of a model or KeyedVectors, without Im2Vec's image tokens (vocab order kept).

    With ``word_space=True``, an Im2Vec model gives only the words with a trained input vector
    (:attr:`~gensim_im2vec.model.Im2Vec.word_space_keys`: words a vocabulary update added that no
    ``train()`` has trained yet keep their random start and are left out).
    """
    kv = model_or_kv.wv if hasattr(model_or_kv, "wv") else model_or_kv
    if not isinstance(kv, KeyedVectors):
        raise TypeError(f"expected a gensim model or KeyedVectors, got {type(model_or_kv).__name__}.")
    is_image = getattr(model_or_kv, "is_image", None)
    if is_image is None:
        return kv
    keys = list(model_or_kv.word_space_keys if word_space else model_or_kv.word_keys)
    out = KeyedVectors(kv.vector_size, count=0)
    if keys:
        idx = [kv.key_to_index[k] for k in keys]
        out.add_vectors(keys, np.asarray(kv.vectors)[idx])
    return out


#: The word-pair sets :func:`word_similarity` scores: (key, gensim's bundled file).
WORD_PAIR_SETS = (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt"))
#: Fewer pairs than this (both models cover) and target 7 says "n/a": a Spearman ρ of a handful of
#: pairs moves by tenths when one pair changes, far more than the target's −0.01.
MIN_WORD_PAIRS = 30


def _covered(kv: KeyedVectors, restrict_vocab: int) -> set[str]:
    """The words of `kv` that gensim's ``evaluate_word_pairs(restrict_vocab=..., case_insensitive=True)``
    finds: its most frequent `restrict_vocab`, upper-cased."""
    return {k.upper() for k in kv.index_to_key[:restrict_vocab]}


def _pairs_rho(kv: KeyedVectors, path: str, restrict_vocab: int) -> tuple[float, float]:
    """``(Spearman ρ, Pearson r)`` of `kv` on the word pairs of `path`, as gensim's
    ``evaluate_word_pairs`` scores them; NaN for both when fewer than two pairs are scored."""
    try:
        pearson, spearman, _ = kv.evaluate_word_pairs(path, restrict_vocab=restrict_vocab, case_insensitive=True)
    except (ValueError, ZeroDivisionError):
        return float("nan"), float("nan")
    return float(spearman[0]), float(pearson[0])


def _word_pairs(path: str) -> list[tuple[str, str, str]]:
    """The pairs of a word-similarity file as gensim's ``evaluate_word_pairs`` reads them: (line,
    word a, word b) upper-cased, comment lines and lines that are not ``a<TAB>b<TAB>score`` left out."""
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line or line.startswith("#"):
                continue
            fields = [w.upper() for w in line.split("\t")]
            try:
                a, b, score = fields
                float(score)
            except ValueError:
                continue
            pairs.append((line, a, b))
    return pairs


def word_similarity(model_or_kv, *, restrict_vocab: int = 300_000, analogy_vocab: int = 30_000,
                    analogies: bool = True, same_pairs_as=None) -> dict:
    """WordSim353 and SimLex-999 Spearman ρ and Google analogy accuracy (gensim's bundled files).

    Parameters
    ----------
    model_or_kv : Word2Vec, Im2Vec or KeyedVectors
        Image tokens are left out (:func:`words_only`).
    restrict_vocab : int
        Only the most frequent words count for the similarity pairs.
    analogy_vocab : int
        Analogy questions and answers are restricted to this many most frequent words (30k as
        in DESIGN §9); questions with a word outside are skipped.
    analogies : bool
        Whether to run the analogy test (tens of seconds on a large vocabulary).
    same_pairs_as : Word2Vec, Im2Vec or KeyedVectors, optional
        Score only the pairs whose words this model has too (its most frequent `restrict_vocab`),
        and ask only the analogies whose words are among its most frequent `analogy_vocab`, so
        that two models' ρ are of the same pairs and their accuracies of the same questions
        (:func:`compare_word_similarity`). None: every pair and question of `model_or_kv`'s vocabulary.

    Returns
    -------
    dict
        ``wordsim353`` / ``simlex999`` (Spearman ρ; NaN when fewer than two pairs are scored),
        their ``*_pearson``, ``*_pairs`` (pairs scored) and ``*_oov`` (percent of the file's pairs
        not scored), ``analogies`` (accuracy in [0, 1]) and ``analogy_questions`` (answered questions).
    """
    import tempfile

    from gensim.test.utils import datapath

    kv = words_only(model_or_kv)
    out: dict = {"vocab": len(kv)}
    covered = _covered(kv, restrict_vocab)
    other_kv = None if same_pairs_as is None else words_only(same_pairs_as)
    other = None if other_kv is None else _covered(other_kv, restrict_vocab)
    for name, fname in WORD_PAIR_SETS:
        pairs = _word_pairs(datapath(fname))
        own = [(line, a, b) for line, a, b in pairs if a in covered and b in covered]
        scored = [line for line, a, b in own if other is None or (a in other and b in other)]
        out[f"{name}_pairs"] = len(scored)
        out[f"{name}_oov"] = 100.0 * (len(pairs) - len(scored)) / len(pairs) if pairs else 100.0
        if len(scored) < len(own):  # gensim scores what the file holds: a file of the shared pairs
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, fname)
                with open(path, "w", encoding="utf-8") as f:
                    f.writelines(scored)
                out[name], out[f"{name}_pearson"] = _pairs_rho(kv, path, restrict_vocab)
        else:
            out[name], out[f"{name}_pearson"] = _pairs_rho(kv, datapath(fname), restrict_vocab)
    if analogies:
        with tempfile.TemporaryDirectory() as tmp:
            questions, n = datapath("questions-words.txt"), None
            if other_kv is not None:  # the questions the other model can answer too, as its pairs
                questions, n = _shared_questions(questions, other_kv, analogy_vocab, tmp)
            if n != 0:  # (gensim divides by the number of questions)
                score, sections = kv.evaluate_word_analogies(questions, restrict_vocab=analogy_vocab,
                                                             case_insensitive=True)
                total = sections[-1]
                n = len(total["correct"]) + len(total["incorrect"])
        out["analogies"] = float(score) if n else float("nan")
        out["analogy_questions"] = n
    return out


_word_similarity = word_similarity  # run_evaluation's flag of the same name shadows it


def _shared_questions(path: str, kv: KeyedVectors, analogy_vocab: int, folder: str) -> tuple[str, int]:
    """A copy in `folder` of the analogy file `path` with only the questions whose four words are
    among `kv`'s `analogy_vocab` most frequent (case-insensitive, as they are asked): a model that
    lacks most words answers a few questions, and its accuracy beside another's on thousands would
    differ by the questions, not by the vectors. Section lines (": name") are kept. Returns the
    copy's path and its number of questions."""
    words = {w.upper() for w in kv.index_to_key[:analogy_vocab]}
    out = os.path.join(folder, os.path.basename(path))
    with open(path, encoding="utf-8") as src:
        kept = [line for line in src if line.startswith(":") or all(w.upper() in words for w in line.split())]
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(kept)
    return out, sum(1 for line in kept if not line.startswith(":"))


def in_vocabulary_order(model_or_kv, reference) -> KeyedVectors:
    """The word vectors of `model_or_kv` (:func:`words_only`) in the order of `reference`'s
    vocabulary (a model or KeyedVectors), its words that `model_or_kv` lacks left out, then the
    words only `model_or_kv` has, in its own order: "the most frequent n words" then names the
    same words in both wherever `model_or_kv` has all of the reference's.

    >>> from gensim.models import KeyedVectors
    >>> a, b = KeyedVectors(2), KeyedVectors(2)
    >>> a.add_vectors(["tag", "the", "cat"], [[1, 0], [0, 1], [1, 1]])
    >>> b.add_vectors(["the", "cat", "dog"], [[0, 1], [1, 1], [1, 2]])
    >>> in_vocabulary_order(a, b).index_to_key
    ['the', 'cat', 'tag']
    """
    kv = words_only(model_or_kv)
    ref = words_only(reference)
    keys = [k for k in ref.index_to_key if k in kv.key_to_index]
    seen = set(keys)
    keys += [k for k in kv.index_to_key if k not in seen]
    if keys == list(kv.index_to_key):
        return kv
    out = KeyedVectors(kv.vector_size, count=0)
    out.add_vectors(keys, np.asarray(kv.vectors)[[kv.key_to_index[k] for k in keys]])
    return out


def compare_word_similarity(model, text_model, **kwargs) -> list[dict]:
    """Word similarity of Im2Vec's words next to the text-only model they came from.

    Both are asked the same questions: Im2Vec's words are measured in the text model's vocabulary
    order (:func:`in_vocabulary_order`), so that ``analogy_vocab``, the most frequent words that
    analogies are asked about and answered from, is the same set of words for both (in joint
    training the image documents' tags count too and would push other words out of it), and
    both score the same word pairs, those whose words both have (``same_pairs_as``): a ρ of 5
    pairs against one of 7 would differ by the two pairs, not by the models. The analogies, too,
    are the questions both can answer (a small model's accuracy on 50 of them beside the text
    model's on 10,000 read as a loss of 18 points).

    Returns
    -------
    list of dict
        Rows ``{"model": "text-only", …}``, ``{"model": "Im2Vec words", …}`` (keys as
        :func:`word_similarity`, ``*_pairs`` the same in both) and ``{"model": "Δ"}`` with the
        differences (Im2Vec − text).
    """
    words = in_vocabulary_order(model, text_model)
    a = {"model": "text-only Word2Vec", **word_similarity(text_model, same_pairs_as=words, **kwargs)}
    b = {"model": "Im2Vec words", **word_similarity(words, same_pairs_as=text_model, **kwargs)}
    delta = {"model": "Δ (Im2Vec − text)"}
    for k in ("wordsim353", "simlex999", "analogies"):
        if k in a and k in b:
            delta[k] = b[k] - a[k]
    return [a, b, delta]


# ============================================================================ one run, one table
@dataclass
class TaggingResult:
    """One row of the evaluation table.

    Attributes
    ----------
    method : str
    note : str
    applicable : bool
        False when the method cannot score held-out images (then `metrics` is empty).
    metrics : dict
        :func:`evaluate_image_tagging`'s result (``"all"``, ``"seen"``, ``"zero_shot"``), plus
        ``"in_sample"`` where computed on training images.
    seconds : float
        Fit and score time.
    """

    method: str
    note: str = ""
    applicable: bool = True
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0

    def get(self, scope: str, metric: str) -> float | None:
        """A number, or None when not computed."""
        v = self.metrics.get(scope, {}).get(metric)
        return None if v is None else float(v)


_COLUMNS = [("all", "p@1", "P@1"), ("all", "p@5", "P@5"), ("all", "r@10", "R@10"), ("all", "map", "mAP"),
            ("all", "tag_map", "tag→img"), ("seen", "map", "seen mAP"), ("zero_shot", "p@5", "ZS P@5"),
            ("zero_shot", "map", "ZS mAP"), ("zero_shot", "tag_map", "ZS tag→img")]


def _fmt(v, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _training_sample(m: Mapping, n: int | None, where: str, which: str) -> str:
    """The training images a figure averages over, in words: `n` of the sample that `m` records
    (``n_sampled`` of ``n_pool``, every ``step``-th; :func:`_space_checks`, :func:`_id_token_row`),
    `where` they are ("of the model", "in its vocabulary"), `which` of them count ("with a
    candidate tag"). A report without the sample's record (an older one) gives its count alone."""
    sampled, pool, step = m.get("n_sampled"), m.get("n_pool"), m.get("step", 1)
    if sampled is None or pool is None:
        return f"{n} training images"
    if sampled == pool:
        text = f"the {pool} training images {where}"
    elif step == 1:
        text = f"the first {sampled} of the {pool} training images {where}"
    else:
        text = f"{sampled} training images {where}, every {_ordinal(step)} of {pool}"
    if n is not None and n < sampled:
        text = f"{n} of {text}, those {which}"
    return text


def _na(v, pct: bool = False) -> str:
    """A mean in a sentence: "n/a" when there was nothing to average (None, NaN or ±inf)."""
    if v is None or not math.isfinite(float(v)):
        return "n/a"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [c.ljust(w) if i < left or i == len(header) - 1 and header[-1] == "note" else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@dataclass
class EvaluationReport:
    """Everything :func:`run_evaluation` measured.

    Attributes
    ----------
    rows : list of TaggingResult
        The model (both scorings) and each baseline, in table order.
    word_similarity : list of dict
        :func:`compare_word_similarity`'s rows (or one row for the model alone).
    info : dict
        Counts and settings: test images, candidates, zero-shot tags, baselines, seconds. The image
        counts name different sets: ``n_test_images`` the held-out images scored (tag → image ranks
        them all; the image → tag columns average over those with a tag of their scope: each row's
        ``metrics[scope]["n_images"]``), ``n_train_images`` the training images the baselines learn
        from, ``n_test_copies`` the held-out images left out as copies of a training image's features
        (:func:`copies_of_training`), ``n_train_images_in_model`` those of them that are images of the model (what the
        space's checks draw from); the demo adds ``eval_set``, ``n_test_images_in_split`` and
        ``n_train_images_in_split`` (its split, before images without features or tags are left out).
    space : dict
        The space's own checks: ``one_space`` (:func:`one_space_check`, with the sample it took:
        ``n_pool``, ``n_sampled``, ``step``), ``image_to_image`` (:func:`neighbour_tag_agreement`
        in the space and on raw features, ``k`` nearest of ``n_base`` training images), ``analogies``
        (:func:`image_analogies`, on the questions the model's analogy term never trained on) and
        ``analogies_trained`` (on those it did, when it did: :func:`untrained_analogies`).
    """

    rows: list[TaggingResult] = field(default_factory=list)
    word_similarity: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    space: dict = field(default_factory=dict)

    def row(self, method: str) -> TaggingResult:
        """The row of `method` (exact name)."""
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(f"no row {method!r}; rows are {[r.method for r in self.rows]}.")

    def to_dict(self) -> dict:
        """Plain JSON-ready data: an undefined number (NaN, ±inf: e.g. the nearest other image of a
        model with one image) becomes None, JSON null (``NaN``/``-Infinity`` are not JSON, and
        strict readers refuse them)."""
        def clean(o):
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [clean(v) for v in o]
            if isinstance(o, (float, np.floating)):
                return float(o) if math.isfinite(o) else None
            if isinstance(o, np.integer):
                return int(o)
            return o

        return clean({"info": self.info, "image_tagging": [r.__dict__ for r in self.rows],
                      "word_similarity": self.word_similarity, "space": self.space,
                      "targets": self.targets()})

    def _find(self, prefix: str) -> TaggingResult | None:
        return next((r for r in self.rows if r.method.startswith(prefix) and r.applicable), None)

    def targets(self) -> list[dict]:
        """The joint-space targets (issue 11) in their order, each ``{"target", "value",
        "reference", "bar", "ok"}``: `reference` is what the target compares with (kNN's mAP,
        ridge's, x's own nearest image ...), `bar` the least value that meets it (e.g. 0.9 × kNN's;
        for target 6 the larger of 0.8 and just above x's own nearest). A target whose inputs were
        not measured is left out, but for target 3 when zero-shot tags were given and gave no figure
        (none has a vector: :func:`run_evaluation`'s `zero_shot`; or no test image carries one):
        then its ``value``, ``reference`` and ``bar`` are NaN (JSON null), ``ok`` is None and
        ``not_measured`` says why. Target 7 counts only a pair set both models share at least
        :data:`MIN_WORD_PAIRS` pairs of; with none, its ``ok`` is None (not decided) and ``pairs``
        says how many pairs the larger set had. When test images are images the model trained on
        (``info["n_test_images_trained"]``: another split's files), targets 1, 3, 4 and 5, which are
        about held-out images, keep their figures but are not decided: ``ok`` is None and
        ``in_sample`` counts those images."""
        out = []

        def add(target, value, reference, met, bar=None):
            """Record a target when both figures were measured; `met(value, reference)` decides it,
            `bar(reference)` is the least value that meets it (default: the reference itself)."""
            if value is not None and reference is not None and not (math.isnan(value) or math.isnan(reference)):
                out.append({"target": target, "value": float(value), "reference": float(reference),
                            "bar": float(bar(reference) if bar else reference), "ok": bool(met(value, reference))})

        im, knn, ridge = self._find("Im2Vec"), self._find("kNN"), self._find("ridge")
        if im and knn:
            add("1. held-out image→word mAP ≥ 0.9 × kNN", im.get("all", "map"), knn.get("all", "map"),
                lambda v, r: v >= 0.9 * r, bar=lambda r: 0.9 * r)
            add("4. seen tag→held-out images mAP ≥ kNN", im.get("seen", "tag_map"), knn.get("seen", "tag_map"),
                lambda v, r: v >= r)
        if im:
            add("2. training image's own tags by wv.most_similar, mAP ≥ 0.5", im.get("in_sample", "map"), 0.5,
                lambda v, r: v >= r)
        if im and ridge:
            add("3. zero-shot tags mAP ≥ ridge", im.get("zero_shot", "map"), ridge.get("zero_shot", "map"),
                lambda v, r: v >= r)
            why = self._zero_shot_not_measured(im)
            if why:  # zero-shot tags were given, but gave no figure: say so, never leave it out unseen
                out.append({"target": "3. zero-shot tags mAP ≥ ridge", "value": float("nan"),
                            "reference": float("nan"), "bar": float("nan"), "ok": None, "not_measured": why})
        i2i = self.space.get("image_to_image")
        if i2i:
            add(f"5. held-out image's {i2i.get('k', 10)} nearest training images share a tag ≥ raw CNN cosine",
                i2i["model"], i2i["raw_features"], lambda v, r: v >= r)
        an = self.space.get("analogies")
        if an and an.get("n"):
            trained = (self.space.get("analogies_trained") or {}).get("n")
            about = f"{an['n']} questions" + (f" about images never trained on; {trained} were" if trained else "")
            add(f"6. image(x) − a + b finds y, hit@1 ≥ 0.8 and > x's own nearest ({about})",
                an["hit@1"], an["nearest_image_hit@1"], lambda v, r: v >= 0.8 and v > r, bar=lambda r: max(0.8, r))
        delta = next((w for w in self.word_similarity if w["model"].startswith("Δ")), None)
        if delta:
            def finite(key):
                v = delta.get(key)
                return None if v is None or math.isnan(v) else float(v)

            def pairs(key):  # the pairs both models were scored on (None: not recorded, an older report)
                n = [w[f"{key}_pairs"] for w in self.word_similarity if w.get(f"{key}_pairs") is not None]
                return min(n) if n else None

            sets = {key: pairs(key) for key in ("wordsim353", "simlex999")}
            rho = [finite(key) for key, n in sets.items() if finite(key) is not None
                   and (n is None or n >= MIN_WORD_PAIRS)]
            analog = finite("analogies")
            what = "7. word similarity: ΔWordSim, ΔSimLex ≥ −0.01 (worst shown), Δanalogies ≥ −2 points"
            if rho:
                add(what, min(rho), -0.01, lambda v, r: v >= r and (analog is None or analog >= -0.02))
            elif any(n is not None for n in sets.values()):  # too few pairs for a ρ to mean anything
                few = [v for v in (finite("wordsim353"), finite("simlex999")) if v is not None]
                out.append({"target": what, "value": min(few) if few else float("nan"), "reference": -0.01,
                            "bar": -0.01, "ok": False if analog is not None and analog < -0.02 else None,
                            "pairs": max(n or 0 for n in sets.values())})  # (the analogies decide alone)
        trained = self.info.get("n_test_images_trained") or 0
        if trained:  # test images the model trained on: a held-out target's figures are in-sample, nothing met
            for t in out:
                if t["target"].split(".")[0] in ("1", "3", "4", "5") and not t.get("not_measured"):
                    t.update(ok=None, in_sample=trained)
        return sorted(out, key=lambda t: int(t["target"].split(".")[0]))

    def _zero_shot_not_measured(self, im: TaggingResult) -> str | None:
        """Why target 3 has no value although zero-shot tags were given (None: it has one, or none
        were given): no zero-shot tag has a vector, or no test image carries one that has."""
        zs = self.info.get("n_zero_shot_tags")
        value = im.get("zero_shot", "map")
        if not zs or (value is not None and not math.isnan(value)):
            return None
        with_vector = _zero_shot_scored(self.info)
        if with_vector == 0:
            return f"0 of {zs} zero-shot tags are words of the model"
        return "no test image has a zero-shot tag" + (" that is a word of the model" if with_vector is not None
                                                      and with_vector < zs else "")

    def save_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON (atomically)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping) -> EvaluationReport:
        """The report that :meth:`to_dict` gave `data` (e.g. read back from :meth:`save_json`'s file).

        An undefined metric (JSON null: :meth:`to_dict` writes NaN as null) comes back as NaN, so
        the tables print as before they were saved; ``"targets"`` is not read (:meth:`targets`
        derives them from the rest). A row may leave out ``note``, ``applicable`` and ``seconds``
        (their defaults: ``""``, True, 0.0).

        Parameters
        ----------
        data : mapping
            ``{"image_tagging": [row, ...], "info": {...}, "word_similarity": [...], "space": {...},
            "targets": [...]}``; only ``"image_tagging"`` is required; each row has ``"method"``
            (str) and ``"metrics"`` ({scope: {name: number or null}}).

        Returns
        -------
        EvaluationReport

        Raises
        ------
        ValueError
            When `data` is not such a mapping; the message names the part that is wrong.

        Examples
        --------
        >>> r = EvaluationReport(rows=[TaggingResult("prior", metrics={"all": {"map": 0.25, "p@1": float("nan")}})])
        >>> EvaluationReport.from_dict(r.to_dict()).format_table() == r.format_table()
        True
        """
        fix = ("give EvaluationReport.to_dict()'s output (the JSON of EvaluationReport.save_json / "
               "im2vec evaluate --json)")
        if not isinstance(data, Mapping) or not isinstance(data.get("image_tagging"), list):
            got = (f"keys {sorted(map(str, data))}" if isinstance(data, Mapping) else type(data).__name__)
            raise ValueError(f"EvaluationReport.from_dict: expected a mapping with an 'image_tagging' list, got {got}; "
                             f"{fix}.")
        unknown = set(data) - {"info", "image_tagging", "word_similarity", "space", "targets"}
        if unknown:
            raise ValueError(f"EvaluationReport.from_dict: unknown key(s) {sorted(map(str, unknown))}; expected info, "
                             f"image_tagging, word_similarity, space and targets; {fix}.")
        names = {f.name for f in fields(TaggingResult)}
        rows = []
        for i, row in enumerate(data["image_tagging"]):
            where = f"EvaluationReport.from_dict: image_tagging[{i}]"
            if not isinstance(row, Mapping) or not isinstance(row.get("method"), str):
                raise ValueError(f"{where}: expected an object with a 'method' string, got {row!r:.80}; {fix}.")
            if set(row) - names:
                raise ValueError(f"{where} ({row['method']!r}): unknown field(s) {sorted(set(row) - names)}; a row "
                                 f"has {sorted(names)}.")
            kinds = {"note": (str, "a string"), "applicable": (bool, "true or false"),
                     "seconds": ((int, float), "a number")}
            for key, (kind, what) in kinds.items():
                if key in row and (not isinstance(row[key], kind) or key == "seconds" and isinstance(row[key], bool)):
                    raise ValueError(f"{where} ({row['method']!r}): {key!r} must be {what}, got {row[key]!r:.80}.")
            metrics = row.get("metrics", {})
            if not isinstance(metrics, Mapping) or not all(
                    isinstance(m, Mapping) and all(v is None or _is_number(v) for v in m.values())
                    for m in metrics.values()):
                raise ValueError(f"{where} ({row['method']!r}): 'metrics' must be {{scope: {{name: number or null}}}}, "
                                 f"got {metrics!r:.120}.")
            rows.append(TaggingResult(**{**row, "metrics": {
                scope: {k: float("nan") if v is None else v for k, v in m.items()} for scope, m in metrics.items()}}))
        words = data.get("word_similarity") or []
        if not isinstance(words, list) or not all(isinstance(w, Mapping) and isinstance(w.get("model"), str)
                                                  for w in words):
            raise ValueError(f"EvaluationReport.from_dict: 'word_similarity' must be a list of objects with a 'model' "
                             f"string, got {words!r:.120}; {fix}.")
        info, space = data.get("info") or {}, data.get("space") or {}
        for name, part in (("info", info), ("space", space)):
            if not isinstance(part, Mapping):
                raise ValueError(f"EvaluationReport.from_dict: {name!r} must be an object, got "
                                 f"{type(part).__name__}; {fix}.")
        needs = {"one_space": ("n", "nearest_image", "nearest_word", "own_tags", "random_words"),
                 "image_to_image": ("k", "model", "raw_features"), "analogies": ("n",), "analogies_trained": ("n",)}
        for name, keys in needs.items():
            part = space.get(name)
            if part and not (isinstance(part, Mapping) and all(k in part for k in keys)):
                raise ValueError(f"EvaluationReport.from_dict: space[{name!r}] must be an object with {list(keys)}, "
                                 f"got {part!r:.120}; {fix}.")
            if name.startswith("analogies") and part and part.get("n"):
                hits = ("hit@1", "nearest_image_hit@1") if name == "analogies" else ("hit@1",)
                if not all(_is_number(part.get(k)) for k in hits):
                    raise ValueError(f"EvaluationReport.from_dict: space[{name!r}] asks {part['n']} questions, so "
                                     f"{list(hits)} must be numbers, got {part!r:.120}.")
        return cls(rows=rows, word_similarity=[dict(w) for w in words], info=dict(info), space=dict(space))

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> EvaluationReport:
        """The report :meth:`save_json` wrote to `path` (see :meth:`from_dict`).

        Raises
        ------
        ValueError
            When the file is not JSON or not a report's; the message names the file.
        OSError
            When the file cannot be read.
        """
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except ValueError as e:  # not JSON, not UTF-8
            raise ValueError(f"{os.fspath(path)}: not a JSON file ({e}); expected the JSON of "
                             f"EvaluationReport.save_json (im2vec evaluate --json).") from None
        try:
            return cls.from_dict(data)
        except ValueError as e:
            raise ValueError(f"{os.fspath(path)}: {e}") from None

    def table_rows(self) -> list[dict]:
        """The parts of :meth:`format_table` as data, in its order, each figure the string it prints.

        :meth:`format_table` lays these parts out as text and :mod:`gensim_im2vec.report` as HTML
        tables, so the two always agree.

        Returns
        -------
        list of dict
            One dict per part with ``"name"`` (``"image_tagging"``, ``"in_sample"``, ``"space"``,
            ``"word_similarity"`` or ``"targets"``) and ``"title"`` (str; "" for none), and either
            ``"header"`` (list of str) and ``"rows"`` (one list of str per row, aligned with the
            header) or ``"lines"`` (list of str). The targets part adds ``"met"``: one bool per row
            (None: not decided, as target 7 on too few word pairs, or target 3 not measured).
            A part with nothing to show is left out.

        Examples
        --------
        >>> r = EvaluationReport(rows=[TaggingResult("prior", "tag frequency", metrics={"all": {"map": 0.25}})])
        >>> [(p["name"], p["header"], p["rows"]) for p in r.table_rows()]
        [('image_tagging', ['method', 'mAP', 'note'], [['prior', '0.250', 'tag frequency']])]
        """
        info = self.info
        parts = []
        zs = info.get("n_zero_shot_tags")
        held, split = info.get("n_test_images", "?"), info.get("n_test_images_in_split")
        scored = next((r.metrics["all"].get("n_images", held) for r in self.rows
                       if r.applicable and "all" in r.metrics), held)
        trained = info.get("n_test_images_trained") or 0  # test images the model trained on: not held-out
        held_out = "test" if trained else "held-out"
        n = info.get("n_test_copies") or 0
        copies = f"{n} {'copies' if n > 1 else 'copy'} of a training image's features" if n else ""
        if split is not None and split != held:
            where = (f"{held_out} images of {info['eval_set']}'s split" if info.get("eval_set")
                     else f"{held_out} images")
            images = (f"{held} of the {split} {where} (those with features and a candidate tag"
                      + (f", less {copies}" if copies else "") + ")")
            copies = ""  # (said)
        elif isinstance(held, int) and scored < held:
            images = (f"{scored} of the {held} {held_out} images, those with a candidate tag (tag → image ranks all "
                      f"{held})")
        else:
            images = f"{held} {held_out} images"
        if trained:
            images += f" ({trained} of them trained on: in-sample figures)"
        if copies:  # (after the trained ones: "of them" are the images scored, not the copies)
            images += f"; {copies} left out"
        head = f"Image → tag on {images}, {info.get('n_candidates', '?')} candidate tags"
        if zs is not None:
            per = {s: next((r.metrics[s].get("n_images") for r in self.rows if r.applicable and s in r.metrics), None)
                   for s in ("seen", "zero_shot")}
            head += f" ({zs} zero-shot: never seen with a training image"
            with_vector, seen_sep = _zero_shot_scored(info), ", "
            if with_vector is not None and with_vector < zs:  # the others tie at the bottom of every row
                words = info.get("n_zero_shot_words", with_vector)
                which = "of the model" + ("" if words == with_vector else
                                          f" with a trained vector ({words} are words of the model)")
                if with_vector:
                    head += (f"; {with_vector} of them " + (f"is a word {which}" if with_vector == 1 else
                                                           f"are words {which}")
                             + f", the other {zs - with_vector} rank last in every row")
                else:
                    head += ("; none of them is a word of the model" if not words else
                             f"; none of the {words} that are words of the model has a trained vector")
                    head += (" — a zero-shot tag's vector comes from text lines or pretrained word vectors — so no "
                             "ZS columns")
                    seen_sep = "; "
            if per["zero_shot"] is not None and per["zero_shot"] != scored:
                head += (f"; the ZS columns average over the {per['zero_shot']} "
                         + ("image that has one" if per["zero_shot"] == 1 else "images that have one"))
            if per["seen"] is not None and per["seen"] != scored:
                head += f"{seen_sep}seen mAP over the {per['seen']} that have a seen one"
            head += ")"
        cols = [c for c in _COLUMNS if any(r.get(c[0], c[1]) is not None for r in self.rows)]
        body = []
        for r in self.rows:
            note = r.note
            if not r.applicable:
                ins = r.get("in_sample", "map")
                if ins is not None:
                    m = r.metrics["in_sample"]
                    note += (f"; in-sample mAP {ins:.3f} on "
                             f"{_training_sample(m, m['n_images'], 'in its vocabulary', 'with a candidate tag')}")
            body.append([r.method, *[_fmt(r.get(s, m)) for s, m, _ in cols], note])
        parts.append({"name": "image_tagging", "title": head, "header": ["method", *[c[2] for c in cols], "note"],
                      "rows": body})
        ins_rows = [r for r in self.rows if r.applicable and r.get("in_sample", "map") is not None]
        in_lines = []
        n_train, in_model = info.get("n_train_images"), info.get("n_train_images_in_model")
        if n_train is not None and in_model is not None:
            split_train = info.get("n_train_images_in_split")
            of = (f" (of the {split_train} of the split: those with features and a tag)"
                  if split_train is not None and split_train != n_train else "")
            in_lines.append(f"training images: the baselines learn from {n_train}{of}; "
                            f"{in_model} of them are images of the model")
        if ins_rows:
            in_lines.append(
                "in-sample (training images' own tags, by their rows of model.wv): "
                + ", ".join(f"{r.method} mAP {r.get('in_sample', 'map'):.3f}"
                            + (" on " + _training_sample(r.metrics["in_sample"], r.metrics["in_sample"]["n_images"],
                                                         "of the model", "with a candidate tag")
                               if "n_images" in r.metrics["in_sample"] else "")
                            for r in ins_rows))
        if in_lines:
            parts.append({"name": "in_sample", "title": "", "lines": in_lines})
        sp = self.space
        if sp:
            lines = []
            one = sp.get("one_space")
            if one:
                lines.append(f"one space, not two clouds ({_training_sample(one, one['n'], 'of the model', 'with a tag in model.wv')}): mean cosine to the nearest "
                             f"image {_na(one['nearest_image'])}, nearest word {_na(one['nearest_word'])}; "
                             f"to its own tags {_na(one['own_tags'])} vs random words {_na(one['random_words'])}")
            i2i = sp.get("image_to_image")
            if i2i:
                base = i2i.get("n_base")
                near = (f"{i2i['k']} nearest training images" if base is None else
                        f"{i2i['k']} nearest of the {base} training images of the model" if i2i["k"] < base else
                        f"{i2i['k']} nearest training images (all {base} of the model)")
                lines.append(f"image → image: a {held_out} image's {near} share a tag "
                             f"{_na(i2i['model'], pct=True)} (raw CNN cosine: {_na(i2i['raw_features'], pct=True)})")
            an = sp.get("analogies")
            if an and an.get("n"):
                bag, bag_n = an.get("bag_of_words_hit@1"), an.get("bag_of_words_n", an["n"])
                asked = "these questions" if bag_n == an["n"] else f"{bag_n} of these questions"
                ceiling = "" if bag is None or math.isnan(bag) else (
                    f"; each image as the sum of its own tags' vectors: {100 * bag:.1f}%, the ceiling on {asked}")
                about = f"{an['n']} questions" + (" about images the analogy term never trained on"
                                                  if sp.get("analogies_trained") else "")
                lines.append(f"analogies image(x) − a + b → y on {about}: hit@1 {100 * an['hit@1']:.1f}% "
                             f"(x's own nearest image is y: {100 * an['nearest_image_hit@1']:.1f}%{ceiling})")
            tr = sp.get("analogies_trained")
            if tr and tr.get("n"):
                lines.append(f"analogies on the {tr['n']} questions the model trained on "
                             f"(Im2Vec(space_analogies=...)): hit@1 {100 * tr['hit@1']:.1f}%")
            parts.append({"name": "space", "title": "The space itself (plain cosine in model.wv)", "lines": lines})
        if self.word_similarity:
            body = []
            sets = ("wordsim353", "simlex999")
            counted = any(w.get(f"{k}_pairs") is not None for w in self.word_similarity for k in sets)
            for w in self.word_similarity:
                delta = w["model"].startswith("Δ")
                f = (lambda v: "—" if v is None or math.isnan(v) else f"{v:+.3f}") if delta else _fmt
                body.append([w["model"], f(w.get("wordsim353")), f(w.get("simlex999")),
                             (f"{100 * w['analogies']:+.1f}%" if delta and w.get("analogies") is not None
                              and not math.isnan(w["analogies"]) else _fmt(w.get("analogies"), pct=not delta)),
                             str(w.get("vocab", ""))])
                if counted:  # how many pairs each ρ is of, and the share of the file's pairs left out
                    n = [w.get(f"{k}_pairs") for k in sets]
                    body[-1].append("" if delta or None in n else " / ".join(map(str, n)) + " (" + " / ".join(
                        _fmt(w.get(f"{k}_oov", 0.0) / 100, pct=True) for k in sets) + ")")
            header = ["model", "WordSim353", "SimLex-999", "analogies", "vocab"]
            parts.append({"name": "word_similarity", "title": "Word similarity (Spearman ρ) and analogies "
                          f"(top {info.get('analogy_vocab', 30000)} words)",
                          "header": header + (["pairs WS / SL (missing)"] if counted else []), "rows": body})
        targets = self.targets()
        if targets:
            parts.append({"name": "targets", "title": "Targets",
                          "header": ["target", "value", "bar", "compared with", "met"],
                          "rows": [[t["target"], _fmt(t["value"]), _fmt(t["bar"]), _fmt(t["reference"]),
                                    "not measured" if t.get("not_measured")
                                    else f"n/a ({t['in_sample']} test images trained on)" if t.get("in_sample")
                                    else f"n/a (only {t.get('pairs')} pairs)" if t["ok"] is None
                                    else "yes" if t["ok"] else "NO"] for t in targets],
                          "met": [t["ok"] for t in targets]})
        return parts

    def format_table(self) -> str:
        """Aligned plain-text tables (image tagging, then word similarity), as in the slides: the
        parts of :meth:`table_rows`, laid out as text."""
        lines = []
        for part in self.table_rows():
            if part["name"] in ("space", "word_similarity", "targets"):
                lines.append("")
            if part["title"]:
                lines.append(part["title"])
            if "header" in part:
                lines.append(_table(part["header"], part["rows"]))
            else:
                indent = "  " if part["name"] == "space" else ""
                lines.extend(indent + line for line in part["lines"])
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format_table()

    def __repr__(self) -> str:
        """One line of key facts (the dataclass's repr printed every metric of every row, 3.5 KB on 20
        test images): the counts, the methods, the first row's P@1 and mAP; ``print()`` gives the table."""
        def num(x) -> str:
            return f"{x:.3f}" if isinstance(x, (int, float)) else "—"

        info = self.info
        first = next((r for r in self.rows if r.applicable and "all" in r.metrics), None)
        score = ""
        if first is not None:
            m = first.metrics["all"]
            score = f", {first.method}: P@1 {num(m.get('p@1'))} mAP {num(m.get('map'))}"
        counts = [f"{info[k]} {what}" for k, what in (("n_test_images", "test images"), ("n_candidates", "candidates"),
                                                       ("n_zero_shot_tags", "zero-shot tags"))
                  if info.get(k) is not None]
        return f"EvaluationReport({', '.join([*counts, f'{len(self.rows)} methods'])}{score}; print() it for the table)"

    def _repr_pretty_(self, p, cycle: bool) -> None:
        """IPython / Jupyter show the table (:meth:`format_table`)."""
        p.text("EvaluationReport(...)" if cycle else self.format_table())


def _space_checks(report, model, im2vec_row, X_test, test_tags, cands, X_train, train_tags, train_keys,
                  n_in_sample: int, analogies, train_docs=None) -> None:
    """The space's own checks (:attr:`EvaluationReport.space`): training images' own tags by their
    rows of ``model.wv``, one space or two clouds, image → image, cross-modal analogies.

    The training images these count are the training rows that are images of the model
    (``info["n_train_images_in_model"]``: the baselines may learn from more, e.g. images whose
    document was too short to train on). In-sample and one-space take every ``step``-th of them,
    at most `n_in_sample`; each records ``n_pool``, ``n_sampled`` and ``step`` beside its own
    ``n_images`` / ``n`` (those of the sample with a candidate tag / with a tag in ``model.wv``).
    Image → image draws each held-out image's ``k`` nearest (10, or all when fewer) from all
    ``n_base`` of them."""
    if X_train is not None and train_keys is not None:
        keys = list(train_keys)
        inside = [i for i, k in enumerate(keys) if model.is_image(k) and k in model.wv.key_to_index]
        report.info["n_train_images_in_model"] = len(inside)
        if inside and n_in_sample > 0:
            step = max(1, len(inside) // n_in_sample)
            pick = inside[::step][:n_in_sample]
            sample = {"n_pool": len(inside), "n_sampled": len(pick), "step": step}
            k_pick, t_pick = [keys[i] for i in pick], [train_tags[i] for i in pick]
            vecs = model.wv.vectors[[model.wv.key_to_index[k] for k in k_pick]]
            im2vec_row.metrics["in_sample"] = {**evaluate_scores(
                _score_distinct(lambda V: Im2VecScorer(model).score_vectors(V, cands), vecs, len(cands)),
                t_pick, cands)["all"], **sample}
            report.space["one_space"] = {**one_space_check(model, k_pick, t_pick), **sample}
        if inside:
            base = model.wv.vectors[[model.wv.key_to_index[keys[i]] for i in inside]]
            tags = [train_tags[i] for i in inside]
            k = min(10, len(inside))  # neighbour_tag_agreement takes every base image when there are fewer
            report.space["image_to_image"] = {
                "k": k, "n_base": len(inside),
                "model": neighbour_tag_agreement(model.project(X_test), test_tags, base, tags, k=k),
                "raw_features": neighbour_tag_agreement(X_test, test_tags, X_train[inside], tags, k=k)}
    if analogies:
        # a question the analogy term trained on measures fit: target 6 asks the others
        analogies, trained = untrained_analogies(model, analogies)
        if trained:
            report.space["analogies_trained"] = image_analogies(model, trained)
    if analogies:
        report.space["analogies"] = image_analogies(model, analogies)
        # the ceiling: each image as the sum of its words, from the documents the model trained on
        # (every image set's, so it is asked the model's questions), else from the tagging task's tags
        if train_docs is not None:
            mask, k2i = image_mask(model), model.wv.key_to_index  # text documents are not images
            bags = [doc for doc in train_docs if len(doc) and doc[0] in k2i and mask[k2i[doc[0]]]]
        elif train_keys is not None and train_tags is not None:
            bags = [[k, *t] for k, t in zip(train_keys, train_tags)]
        else:
            bags = None
        if bags:
            bag = bag_of_words_analogies(model, analogies, bags)
            report.space["analogies"]["bag_of_words_hit@1"] = bag["hit@1"]
            report.space["analogies"]["bag_of_words_n"] = bag["n"]


def run_evaluation(model, test_features, test_tags: Sequence[Iterable[str]], candidates: Sequence[str], *,
                   zero_shot: Iterable[str] | None = None, train_features=None,
                   train_tags: Sequence[Iterable[str]] | None = None, train_keys: Sequence[str] | None = None,
                   train_docs: Iterable[Sequence[str]] | None = None, text_model=None,
                   baselines: Sequence[str] = DEFAULT_BASELINES, scorers: Mapping[str, Scorer] | None = None,
                   word_similarity: bool = True,
                   analogy_vocab: int = 30_000, knn_k: int = 20, ridge_alpha: float = 1.0,
                   logistic_C: float = 1.0, n_in_sample: int = 500, seed: int = 0,
                   analogies: Sequence[tuple[str, str, str, str]] | None = None,
                   baseline_cache: str | os.PathLike | None = None,
                   test_keys: Sequence[str] | None = None, drop_copies: bool = True) -> EvaluationReport:
    """Evaluate an Im2Vec model and the baselines on the same held-out images, plus word similarity.

    Parameters
    ----------
    model : Im2Vec
        The trained model; rows "Im2Vec h·v_o + log Pn", "Im2Vec h·v_o", "Im2Vec cosine" (the
        ways of DESIGN §3) and "Im2Vec zero-shot" (words that never met an image, through the word space).
    test_features : array_like (n_test, n_features)
        Raw features of held-out images (never in training).
    test_tags : sequence of list of str
        Their true tags.
    candidates : sequence of str
        The tag vocabulary ranked for every image (zero-shot tags are appended if missing).
    zero_shot : iterable of str, optional
        Tags never shown with a training image; adds "seen" and "zero_shot" scopes. They are
        also removed from `train_tags` before any baseline is fitted. A zero-shot tag is scored
        through its word vector, which comes from text (documents without an image) or pretrained
        word vectors: ``info["n_zero_shot_words"]`` counts those that are words of the model (and
        ``info["n_zero_shot_word_space"]`` those with a trained vector, the word space random W and
        ridge map into, when they are asked for). A tag without one ranks last, tied, in every
        row (every row is scored over the same tags); when no zero-shot tag has a vector, every
        row's "zero_shot" scope is left out (every method would tie on them: the figures would be
        chance, the same in every row), a warning says so and target 3 is "not measured".
    train_features, train_tags : optional
        The training split (features aligned with tag lists), needed by the ridge, prior, kNN and
        logistic baselines; baselines that lack them are skipped with a warning.
    train_keys : sequence of str, optional
        Image tokens of the training rows; with `train_docs`, the id-token Word2Vec and Im2Vec
        are also scored in-sample on up to `n_in_sample` of them (those that are images of each).
    train_docs : iterable of list of str, optional
        The training documents (image tokens + tags); the id-token Word2Vec is trained on them
        with the model's hyperparameters. Without them its row just says it is not applicable.
        They also give the analogies' ceiling each image's words (every image of the model,
        each once); without them it is computed from `train_keys` / `train_tags`.
    text_model : Word2Vec or KeyedVectors, optional
        The text-only word space the model started from; adds the word similarity comparison.
    baselines : sequence of str
        Any of ``"random", "ridge", "id-token", "prior", "knn", "logistic"``.
    scorers : mapping of str to scorer, optional
        Extra rows (e.g. another Im2Vec mode), evaluated like the rest: every row's scorer is
        called once on the distinct held-out feature rows (a scorer must score an image from its
        own features alone), and images with identical features share their scores exactly.
    word_similarity : bool
        Run WordSim353 / SimLex-999 / analogies on the model's words (and the text model's).
    analogy_vocab : int
        Analogies restricted to this many most frequent words.
    knn_k, ridge_alpha, logistic_C : baseline settings. The kNN row is named by the k that votes:
        "kNN (k=20)", or "kNN (k=8)" when there are 8 training images (every one votes).
    n_in_sample : int
        Training images scored in-sample (0: none): their own tags ranked by their rows of
        ``model.wv`` (what ``model.wv.most_similar(key)`` answers), and the one-space check. Of the
        training images that are images of the model, every ``max(1, n // n_in_sample)``-th is
        taken (the id-token Word2Vec: the same images, those in its vocabulary); ``n_pool``,
        ``n_sampled`` and ``step`` in their results say which.
    analogies : sequence of (x, a, b, y), optional
        Cross-modal analogy questions (:func:`analogy_quads`), answered by :func:`image_analogies`.
        Those that share an image with the questions the model's analogy term trained on
        (``model.space_analogies``) are answered apart (``space["analogies_trained"]``): target 6
        is asked of the others (:func:`untrained_analogies`).
    seed : int
        Seed of the random projection and of the id-token Word2Vec.
    baseline_cache : path-like, optional
        JSON file (written atomically) that keeps the rows of :data:`MODEL_FREE_BASELINES`, keyed
        by a digest of everything they depend on: a later evaluation on the same data reuses them
        (``info["cached_baselines"]``), one with any input changed computes them again. None: none.
    test_keys : sequence of str, optional
        The image tokens of the test rows: those that are images of the model (it trained on them:
        their figures are in-sample) are counted, ``info["n_test_images_trained"]``, and the
        table's header says so instead of calling them held-out.
    drop_copies : bool
        Leave out the held-out images whose features are bit for bit a training image's
        (:func:`copies_of_training`: the same picture filed twice, or a render that collapses
        onto another, which a split by groups cannot see): every row would find such an image's
        tags by its copy, the model and kNN alike. ``info["n_test_copies"]`` counts them and the
        table's header says so. Only with `train_features`. A test row whose key (`test_keys`) is
        one of `train_keys` is that training image itself (in-sample: counted as trained on), not a
        copy; when every held-out image is a copy, all are scored, with a warning.

    Returns
    -------
    EvaluationReport
    """
    unknown = set(baselines) - set(DEFAULT_BASELINES)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; choose from {list(DEFAULT_BASELINES)}.")
    t_start = default_timer()
    scoring = _Scoring.of(test_features, test_tags, candidates, zero_shot)
    X_train, train_tags = _train_split(train_features, train_tags, scoring.zero_shot)
    copies = copies_of_training(scoring.X, X_train) if drop_copies and X_train is not None else None
    if copies is not None and test_keys is not None:
        test_keys = _test_keys(test_keys, len(copies))
        if train_keys is not None:
            # a test image that is a training image itself is in-sample, not a copy: it stays, and is said trained on
            trained = set(train_keys)
            copies &= np.fromiter((k not in trained for k in test_keys), dtype=bool, count=len(copies))
    if copies is not None and copies.all():
        logger.warning("all %i held-out images are copies of a training image's features, bit for bit: scored "
                       "anyway, but their figures are in-sample, not held-out (give the held-out images' own "
                       "features for a held-out evaluation)", len(copies))
        copies = np.zeros_like(copies)
    if copies is not None and copies.any():
        keep = ~copies
        if test_keys is not None:
            test_keys = [k for k, kept in zip(test_keys, keep, strict=True) if kept]
        logger.info("left out %i of the %i held-out images: their features are a training image's, bit for bit",
                    int(copies.sum()), len(copies))
        scoring = _Scoring(scoring.X[keep], [t for t, kept in zip(scoring.tags, keep) if kept], scoring.candidates,
                           scoring.zero_shot)
    report = EvaluationReport()
    report.info = {"n_test_images": len(scoring.X), "n_candidates": len(scoring.candidates),
                   "n_zero_shot_tags": len(scoring.zero_shot) if scoring.zero_shot is not None else None,
                   "n_train_images": len(X_train) if X_train is not None else None,
                   "baselines": list(baselines), "analogy_vocab": analogy_vocab, "model": str(model)}
    if copies is not None:
        report.info["n_test_copies"] = int(copies.sum())
    if test_keys is not None:
        report.info["n_test_images_trained"] = _trained_test_images(model, test_keys, len(scoring.X))
    zs_words = _zero_shot_vocabulary(model, scoring.zero_shot, baselines) if scoring.zero_shot else None
    if zs_words is not None:
        report.info.update(zs_words)
    im2vec_row = scoring.row("Im2Vec (cosine in model.wv)", lambda: Im2VecScorer(model))
    report.rows.append(im2vec_row)
    report.rows.extend(scoring.row(name, lambda sc=sc: sc) for name, sc in (scorers or {}).items())
    cache = _BaselineCache(baseline_cache, scoring, X_train, train_tags) if baseline_cache is not None else None
    report.rows.extend(_baseline_rows(
        scoring, model, baselines, X_train, train_tags, train_keys, train_docs, knn_k=knn_k,
        ridge_alpha=ridge_alpha, logistic_C=logistic_C, n_in_sample=n_in_sample, seed=seed, cache=cache))
    if cache is not None:
        report.info["cached_baselines"] = cache.save()
    if zs_words is not None and not _zero_shot_scored(report.info):
        for row in report.rows:  # every method ties on tags without a vector: no figure to give
            row.metrics.pop("zero_shot", None)
    _space_checks(report, model, im2vec_row, scoring.X, scoring.tags, scoring.candidates, X_train, train_tags,
                  train_keys, n_in_sample, analogies, train_docs)
    _warn_unrelated(model, scoring.candidates, report.info)
    if word_similarity:
        report.word_similarity = _word_similarity_rows(model, text_model, analogy_vocab)
    report.info["seconds"] = default_timer() - t_start
    logger.info("evaluation of %i methods on %i images took %.1fs", len(report.rows), len(scoring.X),
                report.info["seconds"])
    return report


#: Where a zero-shot tag's vector comes from (it never met an image): said wherever one is missing.
_ZERO_SHOT_VECTORS = ("a zero-shot tag's vector comes from text lines (documents without an image: `im2vec split` "
                      "keeps them in train.txt, zero-shot tags included) or pretrained word vectors "
                      "(`im2vec train --pretrained`)")


def copies_of_training(test_features, train_features) -> np.ndarray:
    """Which held-out images are copies of a training image: their feature rows equal, bit for bit
    (as float32), a row of `train_features`. A split by groups (creator, series, identical file
    bytes) cannot see two files of one picture, or two renders that a CNN cannot tell apart; the
    features can. Near-copies (a re-encoded JPEG) are not caught: they are held-out images that
    look like a training one, which is what kNN and the model are measured on.

    One 16-byte digest a training row, kept in a Python set: about 85 bytes a row, so 10M training
    rows take about 0.85 GB, and a pass over them.

    >>> train = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> copies_of_training(np.array([[0.0, 1.0], [0.6, 0.8]]), train).tolist()
    [True, False]
    """
    for name, X in (("test_features", test_features), ("train_features", train_features)):
        if np.ndim(X) != 2:
            raise ValueError(f"{name}: expected a 2-D array, one feature row per image, got {np.ndim(X)}-D.")

    # the rows as the split compares them (it links these copies), one definition for both
    from gensim_im2vec.split import _feature_rows

    def digests(X) -> Iterator[bytes]:
        for s in range(0, len(X), 4096):
            yield from (hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in _feature_rows(X[s : s + 4096]))

    seen = set(digests(train_features))
    return np.fromiter((d in seen for d in digests(test_features)), dtype=bool, count=len(test_features))


def _test_keys(test_keys: Sequence[str], n_rows: int) -> list[str]:
    """`test_keys` as a list, one key per test row, else a ValueError that says so."""
    keys = list(test_keys)
    if len(keys) != n_rows:
        raise ValueError(f"test_keys has {len(keys)} keys for {n_rows} test images; give one key per test row.")
    return keys


def _trained_test_images(model, test_keys: Sequence[str], n_rows: int) -> int:
    """How many of the test rows' image tokens are images of the model (their rows of ``model.wv``
    were fitted to these very tags: in-sample, not held-out)."""
    keys = _test_keys(test_keys, n_rows)
    k2i, is_image = model.wv.key_to_index, getattr(model, "is_image", None)
    return sum(1 for k in keys if k in k2i and (is_image is None or is_image(k)))


def _warn_unrelated(model, candidates: Sequence[str], info: Mapping, share: float = 0.1) -> None:
    """A warning when (almost: under `share`) none of the candidate tags are words of the model, or
    none of the training images (``info["n_train_images_in_model"]``) images of it: a model trained
    on other data (another data set, another split) ranks every tag it lacks last, tied, and its rows
    come out near chance with nothing else to tell why."""
    k2i, is_image = model.wv.key_to_index, getattr(model, "is_image", None)
    words = sum(1 for t in candidates if t in k2i and not (is_image is not None and is_image(t)))
    n_train, in_model = info.get("n_train_images"), info.get("n_train_images_in_model")
    said = []
    if candidates and words < share * len(candidates):
        missing = [t for t in candidates if t not in k2i][:5]  # (none when every candidate is an image key)
        said.append(f"{words} of the {len(candidates)} candidate tags are words of the model"
                    + (f" (e.g. not {', '.join(missing)})" if missing else ""))
    if n_train and in_model is not None and in_model < share * n_train:
        said.append(f"{in_model} of the {n_train} training images are images of the model")
    if said:
        logger.warning("only %s: the model was trained on other data than this evaluation's, and its figures are "
                       "near chance (a tag it lacks ranks last, tied). Evaluate the model trained on these images "
                       "and tags.", " and ".join(said), extra={"im2vec_warning": True})  # (the CLI: `warning: ...`)


def _zero_shot_vocabulary(model, zero_shot: Sequence[str], baselines: Sequence[str]) -> dict:
    """How many zero-shot tags have a vector to be scored by, for ``report.info``:
    ``n_zero_shot_words`` (words of the model: what :class:`Im2VecScorer` ranks; it gives any other
    candidate ``-inf``), with random W or ridge asked for ``n_zero_shot_word_space`` (those with a
    trained vector: the word space both map into, :func:`words_only` with ``word_space=True``), and
    ``zero_shot_without_vector`` (the others, sorted). Logged: a warning when none has one (then no
    zero-shot figure is given: :func:`_zero_shot_scored`), the count otherwise when some lack one."""
    unknown = getattr(model, "unknown_words", None)
    k2i = model.wv.key_to_index
    missing = set(unknown(zero_shot)) if unknown is not None else {t for t in zero_shot if t not in k2i}
    out: dict = {"n_zero_shot_words": len(zero_shot) - len(missing)}
    untrained: set = set()
    untrained_words = getattr(model, "_untrained_words", None) if {"random", "ridge"} & set(baselines) else None
    if untrained_words is not None:  # (an Im2Vec: looked up tag by tag, not in a set of every word)
        untrained = set(untrained_words([t for t in zero_shot if t not in missing]))
        out["n_zero_shot_word_space"] = out["n_zero_shot_words"] - len(untrained)
    out["zero_shot_without_vector"] = sorted(missing | untrained)
    n, scored = len(zero_shot), _zero_shot_scored(out)
    if scored == n:
        return out
    words = f"{out['n_zero_shot_words']} of the {n} zero-shot tags are words of the model"
    if untrained:
        words += (f", {out['n_zero_shot_word_space']} of them with a trained vector (the word space random W and "
                  f"ridge map into; a word a vocabulary update added keeps its random start until train() "
                  f"trains it, e.g. {sorted(untrained)[:3]})")
    example = f"e.g. {', '.join(out['zero_shot_without_vector'][:5])}"
    if not scored:
        logger.warning("%s (%s): %s. Every method would tie on them, so no zero-shot figure is given and target 3 "
                       "is not measured. Train the model with text lines or pretrained word vectors that have "
                       "these tags, or leave zero_shot (--zero-shot) out.",
                       words, example, _ZERO_SHOT_VECTORS, extra={"im2vec_warning": True})  # (the CLI: `warning: ...`)
    else:
        logger.info("%s; the other %i (%s) have no vector and rank last, tied, in every row (%s)",
                    words, n - scored, example, _ZERO_SHOT_VECTORS)
    return out


def _zero_shot_scored(info: Mapping) -> int | None:
    """The zero-shot tags every row can score (each has a vector in the model and, where random W or
    ridge was asked for, in their word space), from ``report.info``; None when not recorded (no
    zero-shot tags, or an older report)."""
    return info.get("n_zero_shot_word_space", info.get("n_zero_shot_words"))


@dataclass
class _Scoring:
    """The held-out images, their tags and the candidates every row of the table is scored on."""

    X: np.ndarray
    tags: list
    candidates: list
    zero_shot: list | None
    #: ``(distinct rows of X, index of each row's distinct row)``, found once for every row of the table
    distinct: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, test_features, test_tags, candidates, zero_shot) -> _Scoring:
        """Checked inputs; zero-shot tags missing from the candidates are appended."""
        cands = _unique(candidates, "candidates")
        zs = _unique(zero_shot, "zero_shot") if zero_shot is not None else None
        if zs is not None:
            cands = cands + [t for t in zs if t not in set(cands)]
        X = check_features(test_features, name="test_features")
        tags = check_tag_lists(test_tags, "test_tags")
        if len(tags) != len(X):
            raise ValueError(f"{len(X)} test images but {len(tags)} tag lists; they must match one to one.")
        return cls(X, tags, cands, zs)

    def row(self, name: str, make: Callable[[], Scorer]) -> TaggingResult:
        """Build a scorer with `make`, score the held-out images (each distinct feature row once:
        :func:`_score_distinct`), time both."""
        t0 = default_timer()
        scorer = make()
        if self.distinct is None:
            self.distinct = _distinct_rows(self.X)
        scores = _score_distinct(lambda X: scorer(X, self.candidates), self.X, len(self.candidates), scorer,
                                 self.distinct)
        res = evaluate_scores(scores, self.tags, self.candidates, self.zero_shot)
        row = TaggingResult(name, getattr(scorer, "note", ""), True, res, default_timer() - t0)
        logger.info("%s: mAP %.3f, P@5 %.3f on %i images (%.1fs)", name, res["all"]["map"],
                    res["all"]["p@5"], res["all"]["n_images"], row.seconds)
        return row


def _distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of `X` and, for each row of `X`, the index of its distinct row."""
    X = np.asarray(X)
    if len(X) <= 1:
        return X, np.arange(len(X))
    uniq, inv = np.unique(X, axis=0, return_inverse=True)
    return uniq, np.ravel(inv)


def _score_distinct(score: Callable[[np.ndarray], np.ndarray], X: np.ndarray, n_candidates: int,
                    scorer=None, distinct: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``score(X)`` computed on the distinct rows of `X` only, each copied to its duplicates
    (`distinct`: :func:`_distinct_rows` of `X`, if already known).

    Images with identical features must tie exactly in every tag → image ranking (the tie-aware
    metrics average exact ties only), but a BLAS product may round an identical row differently
    at another position of the matrix (by ~1e-7 in float32, depending on the CPU's kernel), which
    orders the tied images by rounding. Scored once, duplicates share their scores bit for bit.
    """
    uniq, inv = distinct if distinct is not None else _distinct_rows(X)
    S = np.asarray(score(uniq))
    if S.shape != (len(uniq), n_candidates):
        who = scorer if scorer is not None else score
        raise ValueError(f"scorer {who!r} returned shape {S.shape} for {len(uniq)} distinct images; "
                         f"expected ({len(uniq)}, {n_candidates}).")
    return S[inv]


def _train_split(train_features, train_tags, zero_shot) -> tuple[np.ndarray | None, list | None]:
    """The checked training split the baselines learn from, zero-shot tags removed (with a warning:
    they belong out of the training documents too); (None, None) without one."""
    if train_features is None or train_tags is None:
        return None, None
    X_train, train_tags = check_tagged_features(train_features, train_tags, "train")
    if zero_shot:
        n_before = sum(len(t) for t in train_tags)
        train_tags = check_tag_lists(train_tags, "train_tags", set(zero_shot))
        removed = n_before - sum(len(t) for t in train_tags)
        if removed:
            logger.warning("removed %i zero-shot tag occurrences from train_tags before fitting the "
                           "baselines; hold them out of the training documents as well", removed)
    return X_train, train_tags


def _baseline_rows(scoring: _Scoring, model, baselines, X_train, train_tags, train_keys, train_docs, *,
                   knn_k, ridge_alpha, logistic_C, n_in_sample, seed, cache=None) -> list[TaggingResult]:
    """One row per baseline, in the order asked; those that need the training split say so without one.
    With `cache` (a :class:`_BaselineCache`), the model-free ones come from it when it has them."""
    # the word space the linear baselines map into: built once for both
    space = words_only(model, word_space=True) if {"random", "ridge"} & set(baselines) else None
    fits = {
        "random": ("random W", lambda: RandomProjectionScorer(space, scoring.X.shape[1], seed=seed)),
        "ridge": (RidgeScorer.name, lambda: RidgeScorer.fit(X_train, train_tags, space, alpha=ridge_alpha)),
        "prior": (TagPriorScorer.name, lambda: TagPriorScorer.fit(train_tags)),
        # named by the k that votes: every training image when there are fewer than knn_k
        "knn": (KNNTagScorer.label(knn_k, len(X_train) if X_train is not None else None),
                lambda: KNNTagScorer.fit(X_train, train_tags, k=knn_k)),
        "logistic": (LogisticScorer.name, lambda: LogisticScorer.fit(X_train, train_tags, C=logistic_C)),
    }
    rows = []
    for b in baselines:
        if b == "id-token":
            rows.append(_id_token_row(model, scoring.candidates, train_docs, train_keys, train_tags,
                                      n_in_sample, seed))
            continue
        name, make = fits[b]
        if b != "random" and X_train is None:
            logger.warning("baseline %s skipped: %s", name, "needs train_features and train_tags")
            rows.append(TaggingResult(name, "skipped: needs train_features and train_tags", False))
        elif cache is not None and b in MODEL_FREE_BASELINES:
            settings = {"baseline": b, "name": name, "k": knn_k if b == "knn" else None,
                        "C": logistic_C if b == "logistic" else None}
            rows.append(cache.row(settings, lambda name=name, make=make: scoring.row(name, make)))
        else:
            rows.append(scoring.row(name, make))
    return rows


class _BaselineCache:
    """The rows of :data:`MODEL_FREE_BASELINES` in a JSON file ``{"version", "rows": {key: row}}``.

    A row's key is the SHA-256 of its settings and of everything else it depends on: the held-out
    features, tags, candidates and zero-shot tags, the training features and tags (zero-shot tags
    removed), the code of the modules that fit and score it and the numpy/scipy/scikit-learn
    versions. :meth:`save` keeps this evaluation's rows and a few recent others (:attr:`KEEP`). An
    unreadable file, one that is not such a cache, or a damaged row is ignored with a warning (and
    replaced); one that cannot be written is a warning, never a failed evaluation.
    """

    VERSION = 1
    #: Rows kept: this evaluation's, then the most recent others (other data, other settings).
    KEEP = 12
    #: The modules whose code computes a cached row.
    CODE = ("baselines", "evaluate", "index", "metrics", "validation")

    def __init__(self, path: str | os.PathLike, scoring: _Scoring, X_train, train_tags) -> None:
        self.path = Path(path)
        self.data = self._digest(scoring, X_train, train_tags)
        self.saved = self._load()
        self.used: dict[str, dict] = {}
        self.hits: list[str] = []

    @classmethod
    def _digest(cls, scoring: _Scoring, X_train, train_tags) -> str:
        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for m in cls.CODE:
            h.update(hashlib.sha256((here / f"{m}.py").read_bytes()).digest())
        versions = {}
        for dist in ("numpy", "scipy", "scikit-learn", "threadpoolctl"):
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                versions[dist] = None
        h.update(json.dumps([versions, scoring.tags, scoring.candidates, scoring.zero_shot, train_tags]).encode())
        for arr in (scoring.X, X_train):
            arr = np.ascontiguousarray(arr) if arr is not None else np.zeros(0)
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(memoryview(arr).cast("B"))
        return h.hexdigest()

    def _load(self) -> dict:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as e:
            logger.warning("baseline cache %s unreadable (%s); computing the baselines again", self.path, e)
            return {}
        if not (isinstance(saved, dict) and saved.get("version") == self.VERSION and isinstance(saved.get("rows"), dict)):
            logger.warning("baseline cache %s is not a baseline cache of version %i; computing the baselines again",
                           self.path, self.VERSION)
            return {}
        return saved["rows"]

    def row(self, settings: dict, compute: Callable[[], TaggingResult]) -> TaggingResult:
        """The cached row of a baseline with `settings`, or ``compute()``'s (then kept)."""
        key = hashlib.sha256(json.dumps([self.data, settings], sort_keys=True).encode()).hexdigest()
        saved = self.saved.get(key)
        row = _cached_row(saved) if saved is not None else None
        if row is not None:
            self.used[key] = saved
            self.hits.append(row.method)
            logger.info("%s: reused from %s (%.1fs when computed)", row.method, self.path, row.seconds)
            return row
        if saved is not None:
            logger.warning("baseline cache %s: the row of %s is damaged; computing it again", self.path,
                           settings.get("name"))
        row = compute()
        self.used[key] = json.loads(json.dumps(row.__dict__, default=_json_number))
        return row

    def save(self) -> list[str]:
        """Write the rows used, then the most recent others up to :attr:`KEEP` rows (atomically),
        when that changes what the file holds (an evaluation that only read rows writes nothing:
        the file may sit in a folder it only reads); returns the methods that came from the cache."""
        rows = {**self.used, **{k: v for k, v in self.saved.items() if k not in self.used and _cached_row(v)}}
        rows = dict(list(rows.items())[: max(self.KEEP, len(self.used))])
        if rows != self.saved:  # (dict equality: the same rows, in whatever order)
            try:
                atomic_write_json(self.path, {"version": self.VERSION, "rows": rows})
            except OSError as e:
                logger.warning("baseline cache %s not written (%s); the next evaluation computes them again",
                               self.path, e)
        return self.hits


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cached_row(saved) -> TaggingResult | None:
    """The :class:`TaggingResult` a baseline cache entry holds (as :meth:`_BaselineCache.row` wrote
    it: every field, metrics ``{scope: {name: number or None}}``), or None for anything else."""
    if not isinstance(saved, dict) or set(saved) != {f.name for f in fields(TaggingResult)}:
        return None
    metrics = saved["metrics"]
    ok = (isinstance(saved["method"], str) and isinstance(saved["note"], str)
          and isinstance(saved["applicable"], bool) and _is_number(saved["seconds"]) and isinstance(metrics, dict)
          and all(isinstance(m, dict) and all(v is None or _is_number(v) for v in m.values())
                  for m in metrics.values()))
    return TaggingResult(**saved) if ok else None


def _json_number(o):
    """JSON for numpy scalars (a row's metrics)."""
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _id_token_row(model, candidates, train_docs, train_keys, train_tags, n_in_sample, seed) -> TaggingResult:
    """The id-token Word2Vec: not applicable to held-out images; scored in-sample when the training
    documents are given, on the sample Im2Vec's in-sample takes (:func:`_space_checks`): every
    ``step``-th of the training images of the model, at most `n_in_sample`, those of them in its
    vocabulary (its ``in_sample`` metrics record ``n_pool``, ``n_sampled`` and ``step``). It took the first `n_in_sample` before,
    other images than Im2Vec's figure beside it (0.793 there against 0.899 on Im2Vec's sample, on
    the demo's split)."""
    row = TaggingResult(IdTokenWord2VecScorer.name, IdTokenWord2VecScorer.note, False)
    if train_docs is None or train_keys is None or train_tags is None or n_in_sample <= 0:
        return row
    t0 = default_timer()
    idt = IdTokenWord2VecScorer.fit(
        train_docs, vector_size=model.vector_size, sg=model.sg, window=model.window,
        negative=model.negative, epochs=model.epochs, sample=model.sample, seed=seed,
        workers=1)  # one worker: the same table from the same model, every run
    # Im2Vec's pool (:func:`_space_checks`: the training images of the model), of those in its vocabulary
    known, k2i = idt.w2v.wv.key_to_index, model.wv.key_to_index
    is_image = getattr(model, "is_image", None)
    inside = [i for i, k in enumerate(train_keys) if k in k2i and (is_image is None or is_image(k))]
    step = max(1, len(inside) // n_in_sample)
    pick = [i for i in inside[::step][:n_in_sample] if train_keys[i] in known]
    pool = [i for i in inside if train_keys[i] in known]
    if not pick:
        return row
    keys = [train_keys[i] for i in pick]
    tags = [train_tags[i] for i in pick]
    row.metrics["in_sample"] = {**evaluate_scores(idt.score_keys(keys, candidates), tags, candidates)["all"],
                                "n_pool": len(pool), "n_sampled": len(pick), "step": step}
    row.seconds = default_timer() - t0
    return row


def _word_similarity_rows(model, text_model, analogy_vocab: int) -> list[dict]:
    """Word similarity of the model's words, next to the text model's when there is one."""
    if text_model is not None:
        return compare_word_similarity(model, text_model, analogy_vocab=analogy_vocab)
    return [{"model": "Im2Vec words", **_word_similarity(model, analogy_vocab=analogy_vocab)}]


# ============================================================================ file inputs (CLI)
def load_tagged_jsonl(path: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """Read a test (or training) set: one JSON object per line, ``{"key": "img:…", "tags": [...]}``.

    Keys are image tokens as in the feature store and the training documents; tags must be
    normalised as the training documents were. Blank lines are skipped. A ``test.jsonl`` or
    ``train.jsonl`` of an ``im2vec split`` that did not finish is refused (ValueError:
    :func:`~gensim_im2vec.split.check_split_complete`).

    Returns
    -------
    keys : list of str
    tags : list of list of str
    """
    from gensim_im2vec.split import check_split_complete

    check_split_complete(path)
    keys, tags = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                key, t = obj["key"], obj["tags"]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: expected a JSON object with 'key' and 'tags', got "
                                 f"{line.strip()[:80]!r} ({e}).") from None
            if not isinstance(key, str) or not isinstance(t, list) or not all(isinstance(x, str) for x in t):
                raise ValueError(f"{path}:{n}: 'key' must be a str and 'tags' a list of str.")
            keys.append(key)
            tags.append(t)
    if not keys:
        raise ValueError(f"{path}: no images (expected JSON lines like {{\"key\": \"img:1\", \"tags\": [\"dog\"]}}).")
    return keys, tags


def features_for_keys(source, keys: Sequence[str]) -> np.ndarray:
    """Feature rows for `keys` from a FeatureStore directory, a ``.npy`` file, or an object with
    ``key_to_index`` and ``vectors`` (a FeatureStore, ``model.features``).

    A ``.npy`` file must hold one row per key, in the order of `keys`. Returns float32 (n, F).
    """
    if isinstance(source, (str, os.PathLike)):
        p = os.fspath(source)
        if p.endswith(".npy"):
            arr = np.load(p, mmap_mode="r")
            if arr.ndim != 2 or len(arr) != len(keys):
                raise ValueError(f"{p}: expected one feature row per key ({len(keys)}), got shape {arr.shape}.")
            return check_features(arr, name=p)
        from gensim_im2vec.store import FeatureStore

        source = FeatureStore.open(p)
    k2i = source.key_to_index
    missing = [k for k in keys if k not in k2i]
    if missing:
        raise ValueError(f"{len(missing)} key(s) have no features, e.g. {missing[:3]}; extract them into the store "
                       f"(keys must match exactly, prefix included).")
    rows = np.array([k2i[k] for k in keys], dtype=np.int64)
    return check_features(np.asarray(source.vectors)[rows], name="features", keys=list(keys))


def _is_comment(line: str) -> bool:
    """Whether a stripped line of a tag file is a comment: ``#`` alone, or ``#`` and words with spaces
    (``# held-out tags``). A tag is one token, so ``#nofilter`` is a tag (a hashtag: ``im2vec split``
    writes such zero-shot tags into ``zero_shot.txt``), never a comment."""
    return line.startswith("#") and (line == "#" or len(line.split(None, 1)) > 1)


def read_tag_file(path: str | os.PathLike) -> list[str]:
    """Tags from a file: one per line, or a JSON list, or a JSON object with ``"zero_shot_tags"`` (a
    data set's ``split.json``, or ``im2vec split``'s).

    In the one-per-line form blank lines are skipped, and so are comments: a line of ``#`` alone or
    starting with ``#`` and holding a space (``# seen in 2024``); a one-token line is a tag even when
    it starts with ``#`` (``#nofilter``: a hashtag, as ``im2vec split`` writes it), so that a
    ``zero_shot.txt`` gives the tags its ``split.json`` gives. Either file of an ``im2vec split`` that
    did not finish is refused (ValueError: :func:`~gensim_im2vec.split.check_split_complete`)."""
    from gensim_im2vec.split import check_split_complete

    p = os.fspath(path)
    check_split_complete(p)
    with open(p, encoding="utf-8") as f:
        text = f.read()
    if p.endswith(".json"):
        obj = json.loads(text)
        if isinstance(obj, dict):
            if "zero_shot_tags" not in obj:
                raise ValueError(f"{p}: a JSON object here needs a 'zero_shot_tags' list (as split.json has).")
            obj = obj["zero_shot_tags"]
        if not isinstance(obj, list) or not all(isinstance(t, str) for t in obj):
            raise ValueError(f"{p}: expected a JSON list of tags.")
        return obj
    return [t for t in (ln.strip() for ln in text.splitlines()) if t and not _is_comment(t)]
