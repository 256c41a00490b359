"""benchmarks/: every script still imports against today's package (a refactor once left
space_variants.py importing helpers evaluate.py no longer had, and nothing noticed), and says how
it is run."""

import importlib.util
import sys
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parent.parent / "benchmarks"
BENCHMARKS = sorted(p for p in FOLDER.glob("*.py") if not p.name.startswith("_"))  # _common.py: shared helpers


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 5, BENCHMARKS


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_imports_and_documents_its_command(path, monkeypatch):
    monkeypatch.setattr(sys, "path", [str(FOLDER), *sys.path])  # as `python benchmarks/<script>.py` has it
    spec = importlib.util.spec_from_file_location(f"_benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # raises on an import the package no longer has
    assert module.__doc__ and f"benchmarks/{path.name}" in module.__doc__, f"{path.name}: docstring names no command"


def test_analogy_ceilings_splits_questions_by_the_features_nearness(monkeypatch):
    """analogy_ceilings.py's halves: a question is "near" when y is among x's k nearest images by
    the features' cosine (x itself not counted), whatever the order of the keys."""
    import numpy as np

    monkeypatch.setattr(sys, "path", [str(FOLDER), *sys.path])
    spec = importlib.util.spec_from_file_location("_benchmark_analogy_ceilings", FOLDER / "analogy_ceilings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    keys = ["img:a", "img:b", "img:c", "img:d"]
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.05]])
    quads = [("img:a", "p", "q", "img:b"), ("img:a", "p", "q", "img:c"), ("img:c", "p", "q", "img:d"),
             ("img:a", "p", "q", "img:zz")]
    assert module.feature_near(quads, keys, X, k=1) == {quads[0]}
    assert module.feature_near(quads, keys, X, k=2) == {quads[0], quads[1], quads[2]}
