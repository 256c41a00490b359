"""The docs' quoted constants and defaults against the code: each value that README.md or docs/*.md
quotes beside a name (`NAME` = 1M, `NAME` (100,000), an option's row in README's table, "default
8192") is read from the doc's text and compared with the value the code holds, so a change of one
without the other fails here. Offline and fast: nothing trains."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from gensim_im2vec import Im2Vec

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGE = ROOT / "gensim_im2vec"

NUMBER = r"[0-9][0-9,_]*(?:\.[0-9]+)?(?:e-?[0-9]+)?(?: ?[kM]\b)?"


def number(text: str) -> float:
    """'1M' → 1e6, '100,000' → 1e5, '262,144' → 262144, '0.005' → 0.005, '1e-3' → 0.001."""
    text = text.replace(",", "").replace("_", "").replace(" ", "")
    scale = {"k": 1e3, "M": 1e6}.get(text[-1], 1)
    return float(text.rstrip("kM")) * scale


def doc_text(name: str) -> str:
    return " ".join((ROOT / name).read_text(encoding="utf-8").split())  # a sentence may wrap a line


def quoted(name: str, pattern: str) -> list[str]:
    """Every group 1 of `pattern` in the doc `name` (line breaks read as spaces); at least one."""
    found = re.findall(pattern, doc_text(name))
    assert found, f"{name} no longer says {pattern!r}: update the pattern in this test with the doc"
    return found


def constant_owner(name: str) -> str:
    """The module of gensim_im2vec that assigns `name` at its top level."""
    owners = [p.stem for p in PACKAGE.glob("*.py")
              if re.search(rf"^{name}\s*(?::[^=\n]+)?=", p.read_text(encoding="utf-8"), re.M)]
    assert len(owners) == 1, f"{name} is assigned in {owners or 'no module'} of gensim_im2vec"
    return owners[0]


# `NAME` = 1M, `NAME` (100,000), `NAME` is 20: an upper-case name in backticks and its value.
QUOTED_CONSTANT = re.compile(rf"`([A-Z][A-Z0-9_]{{2,}})`\s*(?:=\s*|\(\s*|is\s+)({NUMBER})")


def quoted_constants() -> list[tuple[str, str, str]]:
    return [(doc.relative_to(ROOT).as_posix(), name, value)
            for doc in DOCS
            for name, value in QUOTED_CONSTANT.findall(" ".join(doc.read_text(encoding="utf-8").split()))]


def test_the_docs_quote_the_constants_this_test_is_meant_to_pin():
    """The pattern still finds the constants the docs quote (a reworded doc must not empty the
    parametrised test below without notice)."""
    names = {name for _, name, _ in quoted_constants()}
    assert {"READOUT_MAX_IMAGES", "READOUT_GRAM_IMAGES", "NEIGHBOUR_WHITEN", "NEIGHBOUR_POWER",
            "NEIGHBOUR_EXACT_MAX"} <= names


@pytest.mark.parametrize("doc,name,value", quoted_constants())
def test_a_constant_quoted_with_its_value_is_the_codes(doc, name, value):
    module = importlib.import_module(f"gensim_im2vec.{constant_owner(name)}")
    assert float(getattr(module, name)) == number(value), (
        f"{doc} says `{name}` = {value}; gensim_im2vec.{module.__name__} has {getattr(module, name)!r}")


def readme_option_rows() -> list[tuple[str, str]]:
    """(option, its default as README's table of the options that decide how images learn writes it)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("| option | default | what it changes |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        options, default = (cell.strip() for cell in line.split("|")[1:3])
        names = re.findall(r"`([a-z_]+)`", options)
        defaults = re.findall(r"`([^`]+)`", default)[:len(names)]
        assert len(defaults) == len(names), f"README's row {options} names no default for each option"
        rows += zip(names, defaults)
    return rows


def test_readmes_table_of_options_is_read_whole():
    names = [name for name, _ in readme_option_rows()]
    assert len(names) >= 20 and {"space_negatives", "image_batch", "space_neighbour_nprobe"} <= set(names)


@pytest.mark.parametrize("option,default", readme_option_rows())
def test_readmes_default_of_an_option_is_im2vecs(option, default):
    parameters = inspect.signature(Im2Vec.__init__).parameters
    assert option in parameters, f"README's table lists `{option}`, which Im2Vec does not take"
    assert parameters[option].default == ast.literal_eval(default), (
        f"README says `{option}` defaults to {default}; Im2Vec's default is {parameters[option].default!r}")


def test_readmes_two_stage_default_of_train_words_is_from_word2vecs():
    """'`True` (`"new"` in `from_word2vec`)'."""
    from gensim.models import Word2Vec

    assert quoted("README.md", r'`train_words` \| `True` \(`"(new)"` in `from_word2vec`\)') == ["new"]
    w2v = Word2Vec([["a", "b", "c"]] * 5, vector_size=4, min_count=1, workers=1, epochs=1, seed=1)
    model = Im2Vec.from_word2vec(w2v, image_features={"img:x": np.ones(3, np.float32)})
    assert model.train_words == "new"


def test_space_negatives_quoted_in_prose_is_the_default():
    """joint-space.md 'plus `space_negatives` (256)', scale.md's 'the run's words + `space_negatives` (...)'."""
    default = inspect.signature(Im2Vec.__init__).parameters["space_negatives"].default
    for doc in ("docs/joint-space.md", "docs/scale.md"):
        for value in quoted(doc, rf"`space_negatives` \(({NUMBER})"):
            assert number(value) == default, f"{doc} quotes `space_negatives` ({value}); its default is {default}"


def test_the_document_split_the_docs_quote_is_the_codes():
    """README: 'Documents longer than 10,000 tokens are split'; kernel.md: 'documents longer than
    10,000 tokens split into chunks' (the kernel's `prepare_job` and a corpus file's reader)."""
    from gensim_im2vec import corpusfile, im2vec_inner

    found = quoted("README.md", rf"Documents longer than ({NUMBER}) tokens are split")
    found += quoted("docs/kernel.md", rf"documents longer than ({NUMBER}) tokens split")
    for value in found:
        assert number(value) == im2vec_inner.MAX_CHUNK == corpusfile.MAX_DOCUMENT_TOKENS


def test_gensims_job_size_the_kernel_doc_quotes_is_the_codes():
    """kernel.md: "gensim's 10,000-word jobs" (`batch_words`'s default and its limit)."""
    from gensim_im2vec.model import MAX_WORDS_IN_BATCH

    (value,) = quoted("docs/kernel.md", rf"gensim's ({NUMBER})-word jobs")
    assert number(value) == MAX_WORDS_IN_BATCH == inspect.signature(Im2Vec.__init__).parameters["batch_words"].default


def test_the_neighbours_figures_readme_quotes_are_the_codes():
    from gensim_im2vec import model

    (power,) = quoted("README.md", r"unit\(Σ_j s_j\^(\d+) · b̃_j\)")
    assert number(power) == model.NEIGHBOUR_POWER
    (limit,) = quoted("README.md", rf'`"exact"` compares every pair \(refused above ({NUMBER}) images\)')
    assert number(limit) == model.NEIGHBOUR_EXACT_MAX
    for doc in ("README.md", "docs/scale.md"):
        assert set(quoted(doc, r"`FNAME(\.[a-z.]+)`")) == {model.NEIGHBOUR_INDEX_SUFFIX}
    (rows,) = quoted("docs/scale.md", rf"trained on at most ({NUMBER}) evenly spaced rows")
    assert number(rows) == model.NEIGHBOUR_TRAIN_ROWS


def test_the_calibration_warning_readme_quotes_is_the_codes():
    from gensim_im2vec import model

    (share,) = quoted("README.md", r"it warns above (\d+)%")
    assert number(share) / 100 == model.CALIBRATION_MAX_SHARE


def test_the_feature_means_rows_the_docs_quote_are_the_codes():
    """'The feature mean reads at most 100,000 feature rows' (joint-space.md; scale.md: '`μ` reads')."""
    default = inspect.signature(Im2Vec._fit_feature_mean).parameters["max_images"].default
    for doc in ("docs/joint-space.md", "docs/scale.md"):
        for value in quoted(doc, rf"feature mean (?:`μ` )?reads at most ({NUMBER}) feature rows"):
            assert number(value) == default


def test_the_tags_directions_block_scale_quotes_is_the_codes():
    from gensim_im2vec import space

    (block,) = quoted("docs/scale.md", rf"read in place, in blocks of ({NUMBER}) rows")
    assert number(block) == space.DIRECTIONS_BLOCK


def test_the_stores_files_scale_names_are_the_codes():
    from gensim_im2vec import store

    assert quoted("docs/scale.md", r"keys \(`([a-z]+\.[a-z]+)`") == [store.KEYS_FILE]
    assert quoted("docs/scale.md", r"the files' stamps \(`([a-z]+\.[a-z]+)`") == [store.STAMPS_FILE]


def test_extraction_defaults_scale_quotes_are_the_codes():
    """scale.md §3: '(`part_size`, default 8192', '(`shard_size`, default 1024)', '(`on_changed`,
    default "warn")' of `extract_ray`, and '(default 1024 there, 4096 for `extract`)'."""
    from gensim_im2vec.distributed import extract_ray
    from gensim_im2vec.features import FeatureExtractor

    ray = inspect.signature(extract_ray).parameters
    for option in ("part_size", "shard_size"):
        (value,) = quoted("docs/scale.md", rf"\(`{option}`, default ({NUMBER})")
        assert number(value) == ray[option].default, f"scale.md: {option} default {value}; extract_ray: {ray[option].default}"
    (changed,) = quoted("docs/scale.md", r'\(`on_changed`, default "(\w+)"\)')
    assert changed == ray["on_changed"].default
    ((there, extract),) = quoted("docs/scale.md", rf"\(default ({NUMBER}) there, ({NUMBER}) for `extract`\)")
    assert number(there) == ray["shard_size"].default
    assert number(extract) == inspect.signature(FeatureExtractor.extract).parameters["shard_size"].default


def test_the_index_search_defaults_scale_quotes_are_the_codes():
    """scale.md §6: '**512 (the default now)**' of HNSW's ef_search, and annoy's '100 × that (the
    default now, `ANNOY_SEARCH_FACTOR`)'."""
    from gensim_im2vec import index

    (ef,) = quoted("docs/scale.md", r"\*\*(\d+) \(the default now\)\*\*")
    assert number(ef) == inspect.signature(index.ModalityIndexer.__init__).parameters["ef_search"].default
    (factor,) = quoted("docs/scale.md", r"(\d+) × that \(the default now, `ANNOY_SEARCH_FACTOR`\)")
    assert number(factor) == index.ANNOY_SEARCH_FACTOR


def readme_demo_settings() -> list[tuple[str, tuple[str, ...], str]]:
    """(option, the demo modes, the value) for each "Both demos set `v`", "The joint demo sets `v`"
    and "(the demos use v)" in a row of README's table of options."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("| option | default | what it changes |", 1)[1].split("\n\n", 1)[0]
    found = []
    for line in table.splitlines()[2:]:
        option = re.findall(r"`([a-z_]+)`", line.split("|")[1])[0]
        for who, quoted_value, bare in re.findall(r"(Both demos set|The joint demo sets|the demos use) (?:`([^`]+)`|(\d+))",
                                                  line):
            value = quoted_value or bare
            modes = ("joint",) if "joint" in who else ("joint", "two-stage")
            found.append((option, modes, value))
    return found


def test_readmes_table_quotes_the_demos_settings():
    assert {option for option, _, _ in readme_demo_settings()} >= {
        "space_common_directions", "space_tag_prior", "space_readout", "space_readout_directions",
        "space_neighbours", "image_batch"}


@pytest.mark.parametrize("option,modes,value", readme_demo_settings())
def test_the_demos_setting_readme_quotes_is_the_demos(option, modes, value):
    from gensim_im2vec.pipeline import DemoConfig

    for mode in modes:
        assert DemoConfig(mode=mode).im2vec.get(option) == ast.literal_eval(value), (
            f"README: the {mode} demo sets {option}={value}; DemoConfig has {DemoConfig(mode=mode).im2vec.get(option)!r}")
