"""Several workers train as well as one: each run's step trains a copy of W taken when it begins, whose change
is added to W when it ends (tests/test_space_candidates.py checks the arithmetic), and on a real subset of the demo's data the
held-out quality holds. The subset and the score are those of benchmarks/workers_quality.py, which measures
the same comparison with more seeds and variants."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "workers_quality.py"
_spec = importlib.util.spec_from_file_location("_workers_quality", _SCRIPT)
workers_quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(workers_quality)


@pytest.fixture(scope="module")
def held_out_map(tmp_path_factory, demo_packages):
    # limit=1000 images per set, the demo's 50 image epochs; jobs of 250 tokens: 25 jobs an epoch
    return workers_quality.HeldOutMap(*workers_quality.real_subset(tmp_path_factory.mktemp("subset"), 1000, 50))


@pytest.mark.slow
def test_four_workers_train_as_well_as_one(held_out_map):
    # With N workers up to N steps are in flight, each started from a W that lacks the others' changes: a
    # different path of the optimisation, not lost updates (4 workers made to run one job at a time train
    # as 1 worker does: +0.0008 ± 0.0012 over 30 seeds). How far the path moves depends on how much of an
    # epoch is in flight: with limit=200 (5 jobs an epoch) at 10 epochs 4 workers scored 0.014 below 1
    # worker, with limit=1000 at 10 epochs 0.027 above; at the demo's 50 epochs with limit=1000 (25 jobs
    # an epoch, 219 held-out images) -0.0003 with a standard error of 0.0012 over 30 seeds (per seed, the
    # difference has a standard deviation of ~0.0066), so over 12 seeds 0.01 is ~5 standard errors.
    # docs/kernel.md (Workers) has the measurements.
    seeds = range(1, 13)
    one = [held_out_map(1, seed) for seed in seeds]
    four = [held_out_map(4, seed) for seed in seeds]
    print(f"held-out image → word mAP over {len(seeds)} seeds: 1 worker {np.mean(one):.4f}, "
          f"4 workers {np.mean(four):.4f}")
    # the model trained at all (a broken one scores near 0.02-0.05 on the demo's split). Not more: on this
    # subset (139 candidates) the tag prior itself scores 0.21, above
    # Im2Vec's ~0.17 at D 32 and at D 100 (docs/kernel.md, Workers)
    assert np.mean(one) > 0.1
    # what must hold is that workers lose no quality: 4 workers at most 0.01 below 1. (Above is no
    # defect, and their mean moves by ~0.006 from run to run with the threads' timing: 0.2087 and
    # 0.2149 against 1 worker's 0.2076 in two runs of the same subset; with the demo's space_decoder=5,
    # which the subset trains with since 2026-12-03, 4 workers 0.2196 against 1 worker's 0.2107.) The subset's word vectors are
    # trained on one thread, so every run sees the same draw; with two threads each run drew its own,
    # and on one draw 4 workers scored 0.011 below 1 (0.1703 against 0.1815).
    assert np.mean(four) >= np.mean(one) - 0.01, (np.mean(one), np.mean(four))
