"""A one-minute tour of Im2Vec on a synthetic corpus with a known answer (no data to download).

    python examples/synthetic_demo.py

Ten classes of "images" (noisy feature prototypes) are tagged with their class word, a related tag
and random distractor tags. After training, images never seen in training are tagged from their
features alone, words find images, and images find images — printed like the 2015 slides.
"""

import logging
import time

import numpy as np

from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus


def show(title, pairs, n=6):
    print(f"\n{title}")
    for key, score in pairs[:n]:
        print(f"    {key:<22s} {score:8.4f}")


def main():
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.WARNING)
    data = make_corpus(n_classes=10, n_images=4000, n_features=128, n_related=1, n_text_sentences=2000, seed=0)
    t = time.perf_counter()
    model = Im2Vec(data.docs, image_features=data.features, vector_size=64, sg=1, min_count=1, epochs=10,
                   sample=0, workers=2, seed=1)
    print(f"trained {model} in {time.perf_counter() - t:.1f}s")

    show('Word: class3  (nearest words)', model.most_similar_words("class3"))
    show('Word: class3  (nearest images)', model.most_similar_images("class3"))
    show("Image: img:7 (class 7), nearest images", model.most_similar_images("img:7"))
    unseen = data.test_features[3]
    show(f"Unseen image of class {data.test_labels[3]}: tags by trained score h·v_o",
         model.predict_tags(unseen, topn=6))
    show(f"Unseen image of class {data.test_labels[3]}: nearest words by cosine",
         model.similar_by_image(unseen, topn=6, restrict="words"))
    show("Analogy: img:1 (class 1) - class1 + class2  ->  images",
         model.most_similar_images(positive=["img:1", "class2"], negative=["class1"]))

    preds = model.predict_tags(data.test_features, topn=1)
    acc = np.mean([p[0][0].split("_r")[0] == data.class_words[y] for p, y in zip(preds, data.test_labels)])
    print(f"\nheld-out images whose top tag is their class's (class word or related tag): "
          f"{acc:.1%} of {len(preds)}")


if __name__ == "__main__":
    main()
