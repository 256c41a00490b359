"""Train Im2Vec on a folder of captioned images (image + sidecar .txt/.json per image).

    python examples/train_folder.py PHOTOS/ -o photos.im2vec
    python examples/train_folder.py tests/data/folder -o /tmp/tiny.im2vec --weights none --arch resnet18

Layout of PHOTOS/ (any depth)::

    cats/001.jpg   cats/001.txt    "A ginger cat asleep on the sofa"
    dogs/rex.png   dogs/rex.json   {"title": "Rex", "tags": ["dog", "beach"]}

Steps: extract CNN features once into a FeatureStore (resumable: rerun after a crash and it
continues), normalise the captions into documents ``["img:cats/001", "ginger", "cat", ...]``,
train, save, and print a few neighbours by cosine in the one space (``model.wv``). Offline, ImageNet weights need ``im2vec fetch-weights``
first; ``--weights none`` uses a random-init CNN (a smoke test: the features carry no meaning).
"""

import argparse
import logging

from gensim_im2vec import Im2Vec
from gensim_im2vec.corpora import FolderCorpus
from gensim_im2vec.features import FeatureExtractor


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("images", help="folder of images with sidecar .txt/.json captions")
    p.add_argument("-o", "--output", required=True, help="where to save the model")
    p.add_argument("--store", help="feature store directory (default: OUTPUT.features)")
    p.add_argument("--arch", default="mobilenet_v2", help="torchvision model (default mobilenet_v2)")
    p.add_argument("--weights", default="IMAGENET1K_V1", help="its weights; 'none' for random init")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--vector-size", type=int, default=100)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--min-count", type=int, default=1, help="ignore rarer words (images are always kept)")
    p.add_argument("-v", "--verbose", action="store_true", help="log training progress")
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)

    store_dir = args.store or args.output + ".features"
    weights = None if args.weights.lower() == "none" else args.weights
    fx = FeatureExtractor(args.arch, weights=weights, device=args.device, num_workers=0, progress=False)
    report = fx.extract(args.images, store_dir)  # keys: img:<relative path without extension>
    print(report.summary())
    store = report.store

    corpus = FolderCorpus(args.images, keys=store)  # restartable: gensim iterates it once per epoch
    # space_neighbours: each image vector also carries its 20 nearest images' words (the demos' setting)
    model = Im2Vec(corpus, image_features=store, vector_size=args.vector_size, sg=1, window=10,
                   min_count=args.min_count, epochs=args.epochs, sample=0, workers=2, seed=1, space_neighbours=20)
    print(corpus.stats.summary())
    model.save(args.output)
    print(f"saved {model} to {args.output}")

    for key in model.image_keys[:3]:
        print(f"\n{key}  nearest words:",
              ", ".join(f"{w} {s:.2f}" for w, s in model.most_similar_words(key, topn=5)))
        print("    nearest images:", ", ".join(f"{k} {s:.2f}" for k, s in model.most_similar_images(key, topn=3)))
    print(f"\nExplore it: im2vec query {args.output}")


if __name__ == "__main__":
    main()
