"""Leftovers of stop 33: small defects found by earlier audits, each with a test that failed before."""

from __future__ import annotations

import numpy as np

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
