"""gensim-im2vec: images and words in one vector space.

An image is a pseudo-word whose vector is ``W · v̂_f`` (``v̂_f`` its L2-normalised CNN feature
vector); it is trained with gensim's skip-gram / CBOW negative-sampling objective next to its
tags and captions, so ``model.wv.most_similar()`` answers word→word, word→image, image→word
and image→image.

>>> from gensim_im2vec import Im2Vec   # doctest: +SKIP
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: importing the package (e.g. for the feature store) must not require the compiled kernel.
    if name == "Im2Vec":
        from gensim_im2vec.model import Im2Vec

        return Im2Vec
    raise AttributeError(f"module 'gensim_im2vec' has no attribute {name!r}")


__all__ = ["Im2Vec", "__version__"]
