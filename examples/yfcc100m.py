"""YFCC100M end to end: metadata file → documents → features → Im2Vec → neighbours.

    python examples/yfcc100m.py yfcc100m_dataset.bz2 --images photos/ -o yfcc.im2vec
    python examples/yfcc100m.py yfcc100m_dataset.bz2 --download photos/ --limit 2000 -o yfcc.im2vec
    python examples/yfcc100m.py tests/data/yfcc25.tsv --random-features 32 -o /tmp/yfcc.im2vec  # offline smoke test

The metadata file is the tab-separated release (23 or 25 columns, plain, .bz2 or .gz). Each photo
becomes a document ``["img:<photo id>", tag, …, title word, …, description word, …]`` with the URL
encoding, HTML, machine tags, camera file names and numbers removed (the noise of the slides'
neighbour lists). Features come from

* ``--images DIR``: photos already on disk, named ``<photo id>.<ext>`` (any depth is not searched:
  DIR/<id>.jpg);
* ``--download DIR``: the same, fetched first from each photo's download URL (needs network;
  failures are counted and skipped);
* ``--store DIR``: an existing FeatureStore keyed ``img:<photo id>`` (e.g. made on a GPU machine
  with ``im2vec extract``);
* ``--random-features DIM``: random vectors, to try the pipeline without images (meaningless).

Photos without features are dropped from training (``missing_images="skip"``). At the end, words
and photos are one space (``model.wv``): the most frequent tags' nearest words and photos, and a
photo's nearest words, by cosine.
"""

import argparse
import logging
import os
import urllib.request

import numpy as np

from gensim_im2vec import Im2Vec
from gensim_im2vec.corpora import YFCC_COLUMNS, YFCC100MCorpus, open_text_source
from gensim_im2vec.features import FeatureExtractor
from gensim_im2vec.store import FeatureStore

PREFIX = "img:"


def download_urls(metadata, limit=None):
    """{photo id: download URL} from the metadata file (photos only)."""
    urls = {}
    with open_text_source(metadata) as raw:
        for line in raw:
            cols = line.decode("utf-8-sig", "replace").rstrip("\r\n").split("\t")  # a BOM, CRLF endings
            if len(cols) not in (23, 25):
                continue
            off = 1 if len(cols) == 23 else 3  # 25 columns: line number, photo id, hash, ...
            col = {name: off + i for i, name in enumerate(YFCC_COLUMNS)}
            if cols[col["marker"]].strip() == "0" and cols[col["download_url"]].startswith("http"):
                urls[cols[0 if len(cols) == 23 else 1].strip()] = cols[col["download_url"]]
            if limit and len(urls) >= limit:
                break
    return urls


def download(urls, out_dir, timeout=20):
    """Fetch each URL to out_dir/<id>.jpg (skipping files already there); returns (ok, failed)."""
    os.makedirs(out_dir, exist_ok=True)
    ok = failed = 0
    for pid, url in urls.items():
        dst = os.path.join(out_dir, f"{pid}.jpg")
        if os.path.exists(dst):
            ok += 1
            continue
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(dst + ".part", "wb") as f:
                f.write(r.read())
            os.replace(dst + ".part", dst)
            ok += 1
        except OSError as e:
            logging.warning("download of %s failed: %s", url, e)
            failed += 1
    return ok, failed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("metadata", help="YFCC100M metadata file (.tsv, .bz2 or .gz)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder with the photos as <photo id>.<ext>")
    src.add_argument("--download", metavar="DIR", help="download the photos into DIR first (network)")
    src.add_argument("--store", help="an existing FeatureStore keyed img:<photo id>")
    src.add_argument("--random-features", type=int, metavar="DIM", help="random features (pipeline smoke test)")
    p.add_argument("-o", "--output", required=True, help="where to save the model")
    p.add_argument("--limit", type=int, default=None, help="use the first N photos")
    p.add_argument("--fields", default="tags,title,description", help="metadata fields making a document")
    p.add_argument("--arch", default="mobilenet_v2")
    p.add_argument("--weights", default="IMAGENET1K_V1", help="'none' for a random-init CNN")
    p.add_argument("--vector-size", type=int, default=200)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--neighbour-index", default="exact",
                   help="how each image's 20 nearest training images are found: 'exact' (up to 1M images) or a "
                        "faiss index factory string over the features, e.g. IVF65536,PQ64")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]

    corpus = YFCC100MCorpus(args.metadata, fields=fields, prefix=PREFIX, limit=args.limit)
    docs = list(corpus)  # small runs: keep them in memory; large ones: pass the corpus itself
    print(f"documents: {corpus.stats.summary()}")
    if not docs:
        raise SystemExit("no usable photo in the metadata file")

    if args.store:
        store = FeatureStore.open(args.store)
    elif args.random_features:
        keys = [d[0] for d in docs]
        vecs = np.random.default_rng(0).normal(size=(len(keys), args.random_features)).astype(np.float32)
        store = FeatureStore.from_arrays(args.output + ".features", keys, vecs, mode="overwrite")
    else:
        image_dir = args.images
        if args.download:
            ok, failed = download(download_urls(args.metadata, args.limit), args.download)
            print(f"downloaded: {ok} photos, {failed} failed")
            image_dir = args.download
        weights = None if args.weights.lower() == "none" else args.weights
        fx = FeatureExtractor(args.arch, weights=weights, progress=True)
        names = {os.path.splitext(n)[0]: n for n in os.listdir(image_dir)}
        items = [(d[0], os.path.join(image_dir, names[d[0][len(PREFIX):]])) for d in docs
                 if d[0][len(PREFIX):] in names]
        report = fx.extract(items, args.output + ".features")
        print(report.summary())
        store = report.store

    # each image vector also carries its 20 nearest images' words; past 1M images they are found by a
    # faiss index over the features (--neighbour-index IVF65536,PQ64), not by comparing every pair
    model = Im2Vec(docs, image_features=store, vector_size=args.vector_size, sg=1, window=10,
                   min_count=args.min_count, epochs=args.epochs, sample=0, workers=2, seed=1,
                   missing_images="skip", space_neighbours=20, space_neighbour_index=args.neighbour_index)
    model.save(args.output)
    print(f"saved {model} to {args.output}")
    for word in sorted(model.image_tag_counts, key=lambda w: -model.image_tag_counts[w])[:3]:
        print(f"\n{word}: nearest words", [(w, round(s, 3)) for w, s in model.most_similar_words(word, topn=5)])
        print(f"{word}: nearest images", [(k, round(s, 3)) for k, s in model.most_similar_images(word, topn=3)])
    for key in model.image_keys[:2]:
        print(f"\n{key}: nearest words", [(w, round(s, 3)) for w, s in model.most_similar_words(key, topn=5)])


if __name__ == "__main__":
    main()
