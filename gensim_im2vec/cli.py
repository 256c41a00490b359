"""The ``im2vec`` command line: a thin click group over the library.

Each command loads its inputs, calls one library function and saves its output; defaults live
in the library's signatures, not here.

    im2vec --help
"""

from __future__ import annotations

import logging

import click


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """gensim-im2vec: images and words in one vector space."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)


# --- features: `im2vec extract` (issue 3) ---

# --- text/corpora/datasets: `im2vec normalize`, `im2vec datasets build` (issue 4) ---

# --- model: `im2vec train` (issue 2) ---


if __name__ == "__main__":
    main()
