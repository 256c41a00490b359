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
