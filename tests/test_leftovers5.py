"""Leftovers of stop 33: small defects found by earlier audits, each with a test that failed before."""

from __future__ import annotations

import numpy as np
import pytest

from gensim_im2vec.distributed import merge_stores
from gensim_im2vec.store import FeatureStore

META = {"arch": "resnet50", "weights": "IMAGENET1K_V1"}


def _store_with_skips(path, keys, skips):
    rng = np.random.default_rng(len(keys))
    with FeatureStore.create(path, dim=4, dtype="float16", metadata=META) as w:
        w.write(keys, rng.random((len(keys), 4), dtype=np.float32))
        for key, reason in skips.items():
            w.skip(key, reason)
    return FeatureStore.open(path)


def test_merge_keeps_the_first_sources_skip_reason(tmp_path):
    """Two sources skipped the same key: the merged store says why the first did (as rows: the
    first occurrence wins), not the last."""
    a = _store_with_skips(tmp_path / "a", ["img:1"], {"img:9": "not an image: cannot identify"})
    b = _store_with_skips(tmp_path / "b", ["img:2"], {"img:9": "too large: 10^9 pixels", "img:8": "truncated"})
    merged = merge_stores(tmp_path / "m", [a, b])
    assert merged.keys == ["img:1", "img:2"]
    assert merged.skipped == {"img:9": "not an image: cannot identify", "img:8": "truncated"}
    # a key a later source stored is not skipped: a row wins over a reason
    c = _store_with_skips(tmp_path / "c", ["img:9"], {})
    merged = merge_stores(tmp_path / "m2", [a, c])
    assert merged.keys == ["img:1", "img:9"] and "img:9" not in merged.skipped


def test_an_interrupted_resumable_train_says_its_checkpoint_is_kept(tmp_path, monkeypatch):
    """`im2vec train --resumable` keeps OUTPUT.checkpoint when interrupted and continues from it when
    run again; its message said "no output is left half-written. Run the same command again to redo
    it", as for a run that keeps nothing. Without --resumable the message stays as it was."""
    from click.testing import CliRunner

    from gensim_im2vec import cli

    keys = [f"img:{i}" for i in range(6)]
    FeatureStore.from_arrays(tmp_path / "store", keys, np.random.default_rng(0).random((6, 8), np.float32) + 0.1)
    (tmp_path / "docs.txt").write_text("".join(f"{k} cat dog\n" for k in keys))

    def interrupted(*a, **k):  # once a checkpoint is saved (before one, nothing is kept: test_train_interrupts)
        (tmp_path / "m.model.checkpoint").write_bytes(b"a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_train_new", interrupted)
    args = ["train", str(tmp_path / "docs.txt"), "-f", str(tmp_path / "store"), "-o", str(tmp_path / "m.model")]
    said = CliRunner().invoke(cli.main, [*args, "--resumable"])
    text = " ".join(said.output.split())
    assert said.exit_code == 130, said.output
    assert f"kept in {tmp_path / 'm.model'}.checkpoint" in text and "--resumable) to continue" in text, text
    assert "redo it" not in text
    plain = CliRunner().invoke(cli.main, args)
    assert plain.exit_code == 130 and "Run the same command again to redo it." in " ".join(plain.output.split())


@pytest.mark.parametrize("extra,named", [
    (["--baselines", "none"], "--baselines"),
    (["--no-word-similarity"], "--no-word-similarity"),
    (["--candidates", "{d}/docs.txt", "--zero-shot", "{d}/docs.txt"], "--candidates, --zero-shot"),
])
def test_evaluate_with_demo_refuses_the_options_it_would_ignore(tmp_path, extra, named):
    """`im2vec evaluate MODEL --demo DIR` evaluates by the demo's rules; --baselines, --word-similarity,
    --candidates... were taken and ignored without a word (it printed every baseline anyway)."""
    from click.testing import CliRunner

    from gensim_im2vec.cli import main

    (tmp_path / "m.model").write_bytes(b"never read: refused first")
    (tmp_path / "docs.txt").write_text("img:0 cat\n")
    (tmp_path / "demo").mkdir()
    said = CliRunner().invoke(main, ["evaluate", str(tmp_path / "m.model"), "--demo", str(tmp_path / "demo"),
                                     *[a.format(d=tmp_path) for a in extra]])
    assert said.exit_code == 2, said.output
    assert f"leave {named} out" in " ".join(said.output.split()), said.output


def test_a_store_made_again_in_the_same_second_is_not_the_models_store(tmp_path):
    """`created` has a resolution of one second: a store overwritten within it, with the same keys,
    passed for the store a model recorded (its `reference`), so `Im2Vec.load` and the model's
    update took the new rows for the old ones. Each store now has a random `store_id`."""
    rng = np.random.default_rng(0)
    keys = ["img:a", "img:b"]
    first = FeatureStore.from_arrays(tmp_path / "s", keys, rng.random((2, 4), dtype=np.float32))
    ref = first.reference()
    again = FeatureStore.from_arrays(tmp_path / "s", keys, rng.random((2, 4), dtype=np.float32), mode="overwrite")
    if again.metadata["created"] != ref["created"]:
        pytest.skip("the second store was not made in the same second (a slow machine); nothing to tell apart")
    problems = again.reference_problems(ref)
    assert len(problems) == 1 and "made again in the same second" in problems[0], problems
    # the same store with rows appended is still the same store
    grown = FeatureStore.from_arrays(tmp_path / "s", ["img:c"], rng.random((1, 4), dtype=np.float32), mode="extend")
    assert grown.reference_problems(again.reference()) == []
    assert grown.metadata["store_id"] == again.metadata["store_id"] != ref["store_id"]
