"""A synthetic image corpus with a known answer, for tests, benchmarks and the quick demo.

Each class has a prototype feature vector and a class word; an image's features are its class
prototype plus Gaussian noise, and its document holds the image token, its class word and a few
distractor tags drawn from a shared pool (noise, like real user tags).

>>> from gensim_im2vec.synthetic import make_corpus
>>> data = make_corpus(n_classes=3, n_images=30, n_features=8, seed=0)
>>> data.docs[0][:2]
['img:0', 'class0']
>>> data.features["img:0"].shape
(8,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gensim_im2vec.keys import IMAGE_PREFIX

__all__ = ["SyntheticCorpus", "make_corpus"]


@dataclass
class SyntheticCorpus:
    """Documents, features and ground truth of a synthetic image corpus.

    Attributes
    ----------
    docs : list of list of str
        ``["img:<i>", "class<c>", distractors…]`` per training image, then the text sentences.
    features : dict of str -> ndarray (n_features,), float32
        Training images' features.
    labels : dict of str -> int
        Class of each training image.
    prototypes : ndarray (n_classes, n_features)
    class_words : list of str
    test_features : ndarray (n_test, n_features), float32
        Images never seen in training.
    test_labels : ndarray (n_test,), int
    """

    docs: list
    features: dict
    labels: dict
    prototypes: np.ndarray
    class_words: list
    test_features: np.ndarray
    test_labels: np.ndarray


def make_corpus(n_classes: int = 10, n_images: int = 2000, n_features: int = 64, noise: float = 0.6,
                n_related: int = 2, n_distractors: int = 3, distractor_pool: int = 50, n_test: int = 200,
                n_text_sentences: int = 0, seed: int = 0) -> SyntheticCorpus:
    """Generate a :class:`SyntheticCorpus`.

    Parameters
    ----------
    n_classes, n_images, n_features : int
        Classes, training images, feature dimension.
    noise : float
        Standard deviation of the per-image noise added to the unit-scale prototypes (per feature).
    n_related : int
        Related tags per class (``class<c>_r<k>``); each image gets the class word and each related
        tag with probability 1/2, so class words co-occur with their related tags as real tags do ("dog", "puppy", "pet").
    n_distractors, distractor_pool : int
        Distractor tags per image, drawn uniformly from a pool of this many words.
    n_test : int
        Unseen test images (features and labels only).
    n_text_sentences : int
        Extra text-only sentences mixing class words and distractors (a text corpus).
    seed : int
        Everything is reproducible from it.
    """
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(n_classes, n_features)).astype(np.float32)
    class_words = [f"class{c}" for c in range(n_classes)]
    docs, feats, labels = [], {}, {}
    for i in range(n_images):
        c = i % n_classes
        key = f"{IMAGE_PREFIX}{i}"
        feats[key] = (protos[c] + noise * rng.normal(size=n_features)).astype(np.float32)
        labels[key] = c
        distractors = [f"tag{int(t)}" for t in rng.integers(0, distractor_pool, size=n_distractors)]
        related = [f"{class_words[c]}_r{k}" for k in range(n_related)]
        related = [r for r in related if rng.random() < 0.5]
        doc = [key, class_words[c], *related, *distractors]
        rng.shuffle(doc[1:])
        docs.append(doc)
    for _ in range(n_text_sentences):
        c = int(rng.integers(n_classes))
        related = [f"{class_words[c]}_r{k}" for k in range(n_related)]
        docs.append([class_words[c], *related] + [f"tag{int(t)}" for t in rng.integers(0, distractor_pool, size=2)])
    test_labels = np.arange(n_test) % n_classes
    test = (protos[test_labels] + noise * rng.normal(size=(n_test, n_features))).astype(np.float32)
    return SyntheticCorpus(docs, feats, labels, protos, class_words, test, test_labels)
