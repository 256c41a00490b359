"""A one-minute tour of Im2Vec on a synthetic corpus with a known answer (no data to download).

    python examples/synthetic_demo.py [--images 4000] [--epochs 10]

Ten classes of "images" (noisy feature prototypes) are tagged with their class word, a related tag
and random distractor tags. After training, words and images live in one space, ``model.wv``, and
every answer below is a cosine in it, printed like the 2015 slides: an image's nearest words
(``model.wv.most_similar`` restricted to words), an image never seen in training placed by
``model.project`` (``model.similar_by_image``), words find images, images find images.
"""

import argparse
import logging
import time

import numpy as np

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus


def show(title, pairs, n=6):
    print(f"\n{title}")
    for key, score in pairs[:n]:
        print(f"    {key:<22s} {score:8.4f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=4000, help="training images (10 classes)")
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.WARNING)
    data = make_corpus(n_classes=10, n_images=args.images, n_features=128, n_related=1, n_text_sentences=2000,
                       seed=0)
    t = time.perf_counter()
    model = Im2Vec(data.docs, image_features=data.features, vector_size=64, sg=1, min_count=1, epochs=args.epochs,
                   sample=0, workers=2, seed=1)
    print(f"trained {model} in {time.perf_counter() - t:.1f}s")

    show('Word: class3  (nearest words)', model.most_similar_words("class3"))
    show('Word: class3  (nearest images)', model.most_similar_images("class3"))
    show(f"Image: img:7 (class {data.labels['img:7']}), nearest words", model.most_similar_words("img:7"))
    show(f"Image: img:7 (class {data.labels['img:7']}), nearest images", model.most_similar_images("img:7"))
    unseen = data.test_features[3]
    show(f"Unseen image of class {data.test_labels[3]}: nearest words by cosine (model.similar_by_image)",
         model.similar_by_image(unseen, topn=6, restrict="words"))
    hits = model.most_similar_images(positive=["img:1", "class2"], negative=["class1"], topn=6)
    show("Analogy: img:1 (class 1) - class1 + class2  ->  images", hits)
    print(f"their classes: {[data.labels[k] for k, _ in hits]} (class 2 would answer the analogy; at the default "
          f"space_temperature an image moves too little with a word difference and stays among its own class: "
          f"cross-modal analogies are not solved yet, docs/joint-space.md)")

    preds = model.similar_by_image(data.test_features, topn=1, restrict="words")  # one batch
    acc = np.mean([p[0][0].split("_r")[0] == data.class_words[y] for p, y in zip(preds, data.test_labels)])
    print(f"\nheld-out images whose nearest word is their class's (class word or related tag): "
          f"{acc:.1%} of {len(preds)}")


if __name__ == "__main__":
    main()
