"""Several workers train as well as one: each job trains a copy of W whose change is added to W when the job
ends (tests/test_space_candidates.py checks the arithmetic), and on a real subset of the demo's data the
held-out quality holds."""

import dataclasses

import numpy as np
import pytest
from gensim.models import Word2Vec

from gensim_im2vec.evaluate import Im2VecScorer, evaluate_scores
from gensim_im2vec.pipeline import (
    DemoConfig,
    Steps,
    build_data,
    evaluation_data,
    extract_features,
    open_features,
    pretrain_words,
    train_model,
)


@pytest.fixture(scope="module")
def real_subset(tmp_path_factory, demo_packages):
    cfg = DemoConfig(out_dir=str(tmp_path_factory.mktemp("subset")), limit=1000, text_limit=3000, vector_size=32,
                     text_epochs=1, image_epochs=50, workers=2, device="cpu")
    steps = Steps(cfg.out_dir, lambda line: None)
    build_data(cfg, steps)
    extract_features(cfg, steps)
    words = Word2Vec.load(str(pretrain_words(cfg, steps)))
    return cfg, open_features(cfg), words


@pytest.mark.slow
def test_four_workers_train_as_well_as_one(real_subset):
    cfg, feats, words = real_subset
    data = evaluation_data(cfg, feats)
    X = feats.gather_normalized([feats.row(k) for k in data.test_keys])

    def held_out_map(workers, seed):
        # jobs of ~250 tokens: an epoch is many jobs, so 4 workers really train side by side
        run = dataclasses.replace(cfg, workers=workers, seed=seed, im2vec={**cfg.im2vec, "batch_words": 250})
        model = train_model(run, feats, words)
        assert model.workers == workers and model.batch_words == 250
        return evaluate_scores(Im2VecScorer(model)(X, data.candidates), data.test_tags, data.candidates)["all"]["map"]

    # With N workers up to N jobs are in flight, each started from a W that lacks the others' changes: a
    # different path of the optimisation, not lost updates (4 workers made to run one job at a time train
    # as 1 worker does: +0.0008 ± 0.0012 over 30 seeds). How far the path moves depends on how much of an
    # epoch is in flight: on 200 images (5 jobs an epoch) at 10 epochs 4 workers scored 0.014 below 1
    # worker, on 1,000 images at 10 epochs 0.027 above; at the demo's 50 epochs on 1,000 images (25 jobs
    # an epoch, 219 held-out images) -0.0003 with a standard error of 0.0012 over 30 seeds (per seed, the
    # difference has a standard deviation of ~0.0066), so over 12 seeds 0.01 is ~5 standard errors.
    # docs/kernel.md (Workers) has the measurements.
    seeds = range(1, 13)
    one = [held_out_map(1, seed) for seed in seeds]
    four = [held_out_map(4, seed) for seed in seeds]
    print(f"held-out image → word mAP over {len(seeds)} seeds: 1 worker {np.mean(one):.4f}, "
          f"4 workers {np.mean(four):.4f}")
    assert np.mean(one) > 0.1  # the space works at all on this subset (else the comparison says nothing)
    assert abs(np.mean(four) - np.mean(one)) <= 0.01, (np.mean(one), np.mean(four))
