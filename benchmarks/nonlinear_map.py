"""A map with a hidden layer against a linear one, by the same objective, the words frozen.

    OMP_NUM_THREADS=1 python benchmarks/nonlinear_map.py [--demo-dir demo_output] [--seeds 1 2 3] \
        [--epochs 40] [--arms linear dropout-linear mlp]

DESIGN.md §10's prototype found a two-layer map ahead of a linear ``W`` with the words frozen
(image → word 0.13–0.14 against 0.11–0.12). This asks the same of today's two-stage space, outside
the model (PyTorch, CPU): each arm maps the training images' centred unit features to the space and
is trained by the space step's objective without its extras (softmax over every tag of the image
documents of ``cos(f(x), u_w) / 0.1``, the image's tags as a uniform target, Adam, batches of 64),
against the two-stage demo model's word vectors, frozen; then held-out image → word (all
candidates), seen tag → held-out images (target 4) and zero-shot mAP by the evaluation's own
metrics (:func:`gensim_im2vec.metrics.evaluate_scores`; candidates without a vector rank last).
The demo model's own projection is printed first, by the same code, as the check that the figures
are the evaluation's. Arms: ``linear`` (``W``), ``dropout-linear`` (dropout 0.3 on the features),
``mlp`` (1,280 → 1,024 ReLU → 200, dropout 0.3 on the features and the hidden layer). Needs a
finished ``make demo`` (its two-stage model, features and split). About 2 minutes a seed.
``--with-readout`` adds the demo model's own readout to every arm's vector as the model adds it to
its map's (``unit(f(x)) + β · unit(R·(x − μ) + c)``, the model's β, R, c and μ), and prints the
model's map alone beside: whether a hidden layer's gain stays once the readout is there.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

import numpy as np

from gensim_im2vec import Im2Vec
from gensim_im2vec.metrics import evaluate_scores
from gensim_im2vec.pipeline import DemoConfig, evaluation_data, open_features, training_documents

if TYPE_CHECKING:
    import torch

TEMPERATURE = 0.1
BATCH = 64


def make_arm(name: str, n_features: int, size: int) -> torch.nn.Module:
    import torch

    if name == "linear":
        return torch.nn.Linear(n_features, size, bias=False)
    if name == "dropout-linear":
        return torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(n_features, size, bias=False))
    if name == "mlp":
        return torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(n_features, 1024), torch.nn.ReLU(),
                                   torch.nn.Dropout(0.3), torch.nn.Linear(1024, size, bias=False))
    raise SystemExit(f"unknown arm {name!r}: linear, dropout-linear or mlp")


def fit(net: torch.nn.Module, X: np.ndarray, targets: np.ndarray, U: torch.Tensor, epochs: int,
        seed: int) -> None:
    """The space step's objective without its extras, by Adam: softmax over the tags of cos / τ."""
    import torch

    torch.manual_seed(seed)
    X, T = torch.from_numpy(X), torch.from_numpy(targets)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=order)
        for lo in range(0, len(X), BATCH):
            idx = perm[lo:lo + BATCH]
            h = net(X[idx])
            h = h / (h.norm(dim=1, keepdim=True) + 1e-8)
            loss = -(T[idx] * torch.log_softmax(h @ U.T / TEMPERATURE, dim=1)).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--arms", nargs="+", default=["linear", "dropout-linear", "mlp"])
    ap.add_argument("--with-readout", action="store_true", help="each arm's vector mixed with the model's readout")
    args = ap.parse_args()
    import torch  # (here: the package's tests import every benchmark, torch or not)

    torch.set_num_threads(1)
    cfg = DemoConfig(out_dir=args.demo_dir)
    feats = open_features(cfg)
    data = evaluation_data(cfg, feats)
    model = Im2Vec.load(f"{args.demo_dir}/models/im2vec-two-stage.model")
    docs, _ = training_documents(cfg, feats, tags_only=True)
    docs = [d for d in docs if d[0] in model.wv.key_to_index]
    tags = sorted({w for d in docs for w in d[1:] if w in model.wv.key_to_index})
    column = {t: j for j, t in enumerate(tags)}
    U = torch.from_numpy(np.asarray(model.wv[tags], dtype=np.float32))
    U = U / U.norm(dim=1, keepdim=True)
    X = feats.gather_normalized([feats.row(d[0]) for d in docs]).astype(np.float32)
    mean = X.mean(axis=0)
    targets = np.zeros((len(docs), len(tags)), np.float32)
    for i, d in enumerate(docs):
        cols = [column[w] for w in d[1:] if w in column]
        targets[i, cols] = 1.0 / max(len(cols), 1)
    X_test = feats.gather_normalized([feats.row(k) for k in data.test_keys]).astype(np.float32)
    cands = list(data.candidates)
    has = np.array([c in model.wv.key_to_index for c in cands])
    C = np.zeros((len(cands), model.wv.vector_size))
    C[has] = model.wv[[c for c, h in zip(cands, has) if h]]
    C[has] /= np.linalg.norm(C[has], axis=1, keepdims=True)

    def figures(H: np.ndarray) -> tuple[float, float, float]:
        H = np.asarray(H, dtype=np.float64)
        S = (H / (np.linalg.norm(H, axis=1, keepdims=True) + 1e-12)) @ C.T
        S[:, ~has] = -np.inf
        m = evaluate_scores(S, data.test_tags, cands, zero_shot=data.zero_shot)
        return m["all"]["map"], m["seen"]["tag_map"], m["zero_shot"]["map"]

    print(f"{len(docs)} training images, {len(tags)} tags (frozen: the two-stage demo's word vectors), "
          f"{len(data.test_keys)} held-out images, {len(cands)} candidates")
    line = "{:<32s} image → word {:.3f}   seen tag → images {:.3f}   zero-shot {:.3f}"
    print(line.format("the demo model's projection", *figures(model.project(X_test))))
    finish = lambda H: H  # noqa: E731
    if args.with_readout:
        if not model._readout_on():
            raise SystemExit("--with-readout: the demo model has no readout (space_readout=0)")
        Xc = np.asarray(X_test, np.float64) - np.asarray(model.feature_mean, np.float64)
        P = Xc @ np.asarray(model.readout_W, np.float64).T + np.asarray(model.readout_offset, np.float64)
        finish = lambda H: model._mix(np.asarray(H, np.float64), P, np.float64)  # noqa: E731
        print(line.format("the model's map alone, no readout", *figures(Xc @ np.asarray(model.W, np.float64).T)))
    results = {arm: [] for arm in args.arms}
    for seed in args.seeds:
        for arm in args.arms:
            torch.manual_seed(seed)
            net = make_arm(arm, X.shape[1], U.shape[1])
            t = time.perf_counter()
            fit(net, X - mean, targets, U, args.epochs, seed)
            with torch.no_grad():
                results[arm].append(figures(finish(net(torch.from_numpy(X_test - mean)).numpy())))
            print(line.format(f"seed {seed} {arm} ({time.perf_counter() - t:.0f}s)", *results[arm][-1]), flush=True)
    print(f"\nmean [min, max] over seeds {args.seeds}, {args.epochs} epochs")
    for arm, rows in results.items():
        cols = np.array(rows)
        print(f"  {arm:<16s} " + "   ".join(f"{name} {cols[:, j].mean():.3f} [{cols[:, j].min():.3f}, "
                                               f"{cols[:, j].max():.3f}]"
                                               for j, name in enumerate(("image → word", "tag → images",
                                                                         "zero-shot"))))


if __name__ == "__main__":
    main()
