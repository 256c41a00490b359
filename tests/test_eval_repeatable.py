"""The evaluation's table does not depend on the CPU's BLAS kernel, nor on where an image sits.

Images with identical features must tie exactly in every tag → image ranking (the tie-aware
metrics average exact ties only), but a float32 matrix product may round an identical row
differently at another position of the matrix, by ~1e-7, depending on the kernel OpenBLAS picked
for the CPU (``OPENBLAS_CORETYPE=Haswell`` does it, SkylakeX does not): rounding then ordered the
tied images and the table moved in its third decimal between machines. The evaluation scores each
distinct feature row once (duplicates share its scores) and the linear scorers compute in float64.

The evaluation runs in a child process (this file run as a script) under the default kernel and
under ``OPENBLAS_CORETYPE=Haswell``, on a model trained once by the parent: training itself uses
BLAS, so the children must share one model.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

#: Held-out images whose features are copied to far-away rows (with other tags than the original's).
N_TEST, N_DUPLICATES = 3000, 40
SCORED_ROWS = ("Im2Vec (cosine in model.wv)", "random W", "ridge → tag vectors", "tag prior", "kNN (k=20)",
               "logistic (one-vs-rest)")


def _duplicate_pairs() -> list[tuple[int, int]]:
    """(original, copy) rows: originals near the top, copies spread over the rest of the matrix."""
    copies = np.linspace(N_TEST // 3, N_TEST - 1, N_DUPLICATES).astype(int)
    return [(i, int(j)) for i, j in zip(range(N_DUPLICATES), copies)]


def _make_case(folder) -> None:
    """A small trained model and held-out images with duplicated features, saved in `folder`."""
    from gensim_im2vec import Im2Vec
    from gensim_im2vec.synthetic import make_corpus

    data = make_corpus(n_classes=6, n_images=300, n_features=48, n_test=N_TEST, seed=3)
    model = Im2Vec(data.docs, image_features=data.features, vector_size=16, sg=1, min_count=1, epochs=5,
                   sample=0, workers=1, seed=1)
    model.save(str(folder / "model"))
    X = np.array(data.test_features, dtype=np.float32)
    for i, j in _duplicate_pairs():
        X[j] = X[i]  # same features; the copy keeps its own (other) tags
    train_tags = [list(doc[1:]) for doc in data.docs]
    np.savez(folder / "data.npz", test=X, train=np.stack([data.features[d[0]] for d in data.docs]))
    (folder / "tags.json").write_text(json.dumps({
        "test": [[data.class_words[c]] for c in data.test_labels], "train": train_tags,
        "candidates": sorted({t for tags in train_tags for t in tags})}))


def _evaluate_case(folder) -> dict:
    """Run the evaluation on the case in `folder`; each row's metrics, the score matrix it was
    computed from (captured where the evaluation passes it to the metrics), and the BLAS kernels."""
    from threadpoolctl import threadpool_info

    from gensim_im2vec import Im2Vec
    from gensim_im2vec import evaluate as ev

    model = Im2Vec.load(str(folder / "model"))
    arrays = np.load(folder / "data.npz")
    tags = json.loads((folder / "tags.json").read_text())
    captured = []
    metrics = ev.evaluate_scores

    def capture(scores, *args, **kwargs):
        captured.append(np.array(scores, copy=True))
        return metrics(scores, *args, **kwargs)

    ev.evaluate_scores = capture
    try:
        report = ev.run_evaluation(model, arrays["test"], tags["test"], tags["candidates"],
                                   train_features=arrays["train"], train_tags=tags["train"],
                                   baselines=("random", "ridge", "prior", "knn", "logistic"),
                                   word_similarity=False, n_in_sample=0)
    finally:
        ev.evaluate_scores = metrics
    assert [r.method for r in report.rows] == list(SCORED_ROWS) and len(captured) == len(SCORED_ROWS)
    return {"kernels": [[i.get("internal_api"), i.get("architecture")] for i in threadpool_info()
                        if i.get("user_api") == "blas"],
            "rows": {r.method: {"metrics": r.metrics, "scores": S} for r, S in zip(report.rows, captured)}}


def _in_child(folder, name: str, coretype: str | None) -> dict:
    """:func:`_evaluate_case` in a fresh process, with OPENBLAS_CORETYPE=`coretype` (None: the default)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = folder / name
    proc = subprocess.run([sys.executable, __file__, str(folder), str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode < 0:  # e.g. SIGILL: the CPU lacks the kernel's instructions
        return {"crashed": f"killed by signal {-proc.returncode}"}
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "result.json").read_text())
    with np.load(out / "scores.npz") as z:
        for i, method in enumerate(SCORED_ROWS):
            res["rows"][method]["scores"] = z[f"s{i}"]
    return res


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval_repeatable")
    _make_case(folder)
    return folder


@pytest.fixture(scope="module")
def default_kernel(case):
    return _in_child(case, "default", None)


@pytest.fixture(scope="module")
def haswell_kernel(case):
    res = _in_child(case, "haswell", "Haswell")
    if "crashed" in res:
        pytest.skip(f"OpenBLAS's Haswell kernel does not run on this CPU ({res['crashed']})")
    kernels = {arch for api, arch in res["kernels"]}
    if not res["kernels"] or any(api != "openblas" for api, _ in res["kernels"]):
        pytest.skip(f"numpy/scipy do not use OpenBLAS here ({res['kernels']}): OPENBLAS_CORETYPE has no effect")
    if kernels != {"Haswell"}:
        pytest.skip(f"OPENBLAS_CORETYPE=Haswell was not honoured on this CPU (OpenBLAS reports {sorted(kernels)})")
    return res


def _split_duplicates(scores: np.ndarray) -> int:
    """Cells where a copied image's score differs from its original's (bit for bit)."""
    return sum(int((scores[i] != scores[j]).sum()) for i, j in _duplicate_pairs())


def _assert_duplicates_tie(result: dict) -> None:
    split = {m: _split_duplicates(r["scores"]) for m, r in result["rows"].items()}
    assert split == dict.fromkeys(SCORED_ROWS, 0), f"kernels {result['kernels']}"
    for method in SCORED_ROWS:  # the copies were scored: rows of real scores, not a blank matrix
        S = result["rows"][method]["scores"]
        assert S.shape[0] == N_TEST and np.isfinite(S).any(axis=1).all(), method


# ---------------------------------------------------------------------------- (a) duplicates tie
def test_duplicate_feature_rows_get_identical_scores_from_every_scorer_in_process(case):
    _assert_duplicates_tie(_evaluate_case(case))


def test_duplicate_feature_rows_get_identical_scores_from_every_scorer_under_the_haswell_kernel(haswell_kernel):
    # the kernel under which float32 products round a row by where it sits in the matrix
    _assert_duplicates_tie(haswell_kernel)


def test_each_distinct_feature_row_is_scored_once_and_shared_by_its_duplicates(monkeypatch):
    """A scorer whose arithmetic depends on a row's position (as a BLAS kernel's may) still gives
    identical rows identical scores: the evaluation hands it each distinct row once."""
    from gensim_im2vec import evaluate as ev

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 8)).astype(np.float32)
    X[[300, 450, 499]] = X[[0, 0, 7]]
    seen = []

    def by_position(features, candidates):  # an image's score drifts with its row number
        seen.append(len(features))
        base = features[:, :len(candidates)].astype(np.float64)
        return base + 1e-9 * np.arange(len(features))[:, None]

    scoring = ev._Scoring.of(X, [["c0"]] * 500, ["c0", "c1", "c2"], None)
    captured, metrics = [], ev.evaluate_scores
    monkeypatch.setattr(ev, "evaluate_scores", lambda S, *a, **k: captured.append(np.array(S)) or metrics(S, *a, **k))
    scoring.row("by position", lambda: by_position)
    (S,) = captured
    assert seen == [497]  # 500 rows, 3 of them copies
    assert np.array_equal(S[300], S[0]) and np.array_equal(S[450], S[0]) and np.array_equal(S[499], S[7])
    np.testing.assert_allclose(S, X[:, :3], atol=1e-6)  # every image got its own row's scores back


# ---------------------------------------------------------------------------- (b) kernels agree
def test_im2vec_ridge_and_random_rows_are_identical_under_two_blas_kernels(default_kernel, haswell_kernel):
    for method in ("Im2Vec (cosine in model.wv)", "ridge → tag vectors", "random W"):
        a, b = default_kernel["rows"][method], haswell_kernel["rows"][method]
        assert a["metrics"] == b["metrics"], method
        assert np.array_equal(a["scores"], b["scores"]), method  # float64 products, rounded once to float32
    im2vec = default_kernel["rows"]["Im2Vec (cosine in model.wv)"]["metrics"]["all"]
    assert im2vec["map"] > default_kernel["rows"]["random W"]["metrics"]["all"]["map"]  # a trained space


if __name__ == "__main__":  # the child of _in_child: evaluate the case in argv[1], write to argv[2]
    from pathlib import Path

    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir()
    result = _evaluate_case(folder)
    np.savez(out / "scores.npz", **{f"s{i}": result["rows"][m].pop("scores") for i, m in enumerate(SCORED_ROWS)})
    (out / "result.json").write_text(json.dumps(result))
