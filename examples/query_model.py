"""Ask a trained model questions from a script (or interactively), as the slides' distance tool.

    python examples/query_model.py photos.im2vec red img:cats/001 photos/new.jpg
    python examples/query_model.py photos.im2vec            # interactive prompt (EXIT to end)

Each argument is a word, an image key (``img:…``; the prefix may be left out) or the path of an
image file never seen in training, whose features are extracted on the fly with the CNN the
model's feature store recorded (arch, weights, layer). Every answer is a cosine in the model's
one space of words and images (``model.wv``). The same as ``im2vec query MODEL``.
"""

import argparse
import sys

from gensim_im2vec import Im2Vec
from gensim_im2vec.query import QuerySession, query_loop


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a saved Im2Vec model")
    p.add_argument("queries", nargs="*", help="words, image keys or image files; none: interactive")
    p.add_argument("--topn", type=int, default=10, help="neighbours per table")
    p.add_argument("--store", help="the model's feature store (only needed when its features were PCA-reduced)")
    p.add_argument("--device", default="auto", help="where the CNN runs for image files")
    args = p.parse_args(argv)

    model = Im2Vec.load(args.model, mmap="r")
    options = {"device": args.device}
    if not args.queries:
        query_loop(model, None if sys.stdin.isatty() else sys.stdin, sys.stdout, topn=args.topn,
                   store=args.store, extractor_options=options)
        return
    session = QuerySession(model, topn=args.topn, store=args.store, extractor_options=options)
    for q in args.queries:
        print(session.answer(q), end="\n\n")

    # the same answers as data, for your own code:
    word = next((q for q in args.queries if q in model.wv and not model.is_image(q)), None)
    if word is not None:
        print(f"as data: model.most_similar_images({word!r}, topn=3) ->",
              [(k, round(s, 3)) for k, s in model.most_similar_images(word, topn=3)])
    image = next((key for key in map(session.resolve, args.queries) if key and model.is_image(key)), None)
    if image is not None:
        print(f"as data: model.most_similar_tags({image!r}, topn=3) ->",
              [(w, round(s, 3)) for w, s in model.most_similar_tags(image, topn=3)])


if __name__ == "__main__":
    main()
