"""Two-stage training: a word space from clean text first, then the image map W on top of it.

    python examples/two_stage.py --text corpus.txt --documents image_docs.txt --features feats/ -o m.im2vec
    python examples/two_stage.py --word2vec words.model --documents image_docs.txt --features feats/ -o m.im2vec
    python examples/two_stage.py --vectors GoogleNews-vectors-negative300.bin.gz --documents image_docs.txt ...

Stage 1 learns word vectors (and their output vectors ``syn1neg``) with plain gensim Word2Vec on a
clean text corpus (one document per line), or loads one you trained before (``--word2vec``; it
must use negative sampling), or reads pretrained word vectors alone in word2vec's format
(``--vectors``: binary when the name has ``.bin``, text otherwise; their output vectors start at
zero and learn on the image documents). Stage 2 (:meth:`Im2Vec.from_word2vec`) keeps those words frozen (the
tags they lack learn, as gensim trains a new word) and learns ``W`` on the image documents — ``img:<key> tag tag …`` per line, as ``im2vec normalize``
writes them — with the images' features from a FeatureStore (``im2vec extract``). The words'
similarities are unchanged; images land among the words that describe them, in one space: at the
end, a word's nearest images and an image's nearest tags by cosine in ``model.wv``.
"""

import argparse
import logging
from pathlib import Path

from gensim.models import KeyedVectors, Word2Vec
from gensim.models.word2vec import LineSentence

from gensim_im2vec import Im2Vec
from gensim_im2vec.corpora import TextCorpus
from gensim_im2vec.store import FeatureStore


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="clean text, one document per line (stage 1 trains on it)")
    src.add_argument("--word2vec", help="a saved gensim Word2Vec with negative sampling (skips stage 1)")
    src.add_argument("--vectors", help="pretrained word vectors in word2vec's format, .bin or text (skips stage 1)")
    p.add_argument("--documents", required=True, help="image documents: 'img:<key> tag tag ...' per line")
    p.add_argument("--features", required=True, help="FeatureStore directory with the images' features")
    p.add_argument("-o", "--output", required=True, help="where to save the Im2Vec model")
    p.add_argument("--vector-size", type=int, default=200)
    p.add_argument("--text-epochs", type=int, default=5)
    p.add_argument("--epochs", type=int, default=15, help="epochs over the image documents")
    p.add_argument("--train-outputs", action="store_true",
                   help="let the words' output vectors (syn1neg) learn on the image documents too")
    p.add_argument("--query", default=None, help="a word to show the nearest images of at the end")
    p.add_argument("-v", "--verbose", action="store_true", help="log training progress")
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)

    if args.word2vec:
        w2v = Word2Vec.load(args.word2vec)
    elif args.vectors:
        w2v = KeyedVectors.load_word2vec_format(args.vectors, binary=".bin" in Path(args.vectors).suffixes)
    else:
        text = TextCorpus(args.text)  # normalised, restartable
        w2v = Word2Vec(text, vector_size=args.vector_size, sg=1, negative=5, min_count=1,
                       epochs=args.text_epochs, workers=2, seed=1)
    print(f"stage 1: {w2v}")

    store = FeatureStore.open(args.features)  # memory-mapped
    options = {"sg": 1} if args.vectors else {}  # (vectors alone carry no settings: skip-gram, as stage 1's)
    model = Im2Vec.from_word2vec(w2v, image_features=store, sentences=LineSentence(args.documents),
                                 epochs=args.epochs, train_outputs=args.train_outputs, sample=0,
                                 space_neighbours=20, **options)  # (each image also carries its 20 nearest' words)
    print(f"stage 2: {model} ({len(model.image_keys)} images; the text's words frozen)")
    model.save(args.output)
    word = args.query or next((w for w in model.word_keys if w in model.image_tag_counts), model.word_keys[0])
    print(f"\nnearest images of {word!r}:")
    for key, cos in model.most_similar_images(word, topn=5):
        print(f"    {key:<30s} {cos:.4f}")
    image = model.image_keys[0]
    print(f"\nnearest tags of {image!r} (the words of the image documents, not the whole text):")
    for w, cos in model.most_similar_tags(image, topn=5):
        print(f"    {w:<30s} {cos:.4f}")
    print(f"\nsaved to {args.output}; explore it with: im2vec query {args.output}")


if __name__ == "__main__":
    main()
