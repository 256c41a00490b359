"""Every module's docstring examples run and give what they show (they are the first documentation)."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import gensim_im2vec

MODULES = sorted(m.name for m in pkgutil.iter_modules(gensim_im2vec.__path__, "gensim_im2vec.")
                 if not m.name.endswith("im2vec_inner"))
NO_EXAMPLES = {"gensim_im2vec.cli"}  # taught by `im2vec COMMAND --help`
# modules whose examples build something only an optional package provides
NEEDS = {"gensim_im2vec.index": ("faiss", "annoy")}


def _missing(name: str) -> bool:
    return name in NEEDS and not any(importlib.util.find_spec(p) for p in NEEDS[name])


def test_the_package_has_modules():
    assert {"gensim_im2vec.model", "gensim_im2vec.evaluate", "gensim_im2vec.store"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name):
    if _missing(name):
        pytest.skip(f"{name}'s examples build an ANN index: needs faiss-cpu or annoy (the [scale] extra)")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    # a module docstring teaches (house rule 1): examples that run, not only skipped ones
    assert result.attempted > 0 or name in NO_EXAMPLES, f"{name} has no example that runs"
