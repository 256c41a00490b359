"""Target 4's ceiling in two-stage mode: how well can ANY linear map W rank held-out images for a
seen tag when the words' vectors are the text model's, frozen?

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python benchmarks/space_ceilings.py --demo-dir demo_output --seeds 1 2 3

In two-stage mode a seen tag w ranks images by ``cos(h, u_w)``, ``h = W·(v̂ − μ)``, with ``u_w``
the vector of the demo's text Word2Vec (``models/words.w2v``), frozen; tags the text never saw get
a free vector (as the two-stage model gives them). This script fits W (D×F) directly (torch, CPU,
one thread; Adam on mini-batches of 2,048 images, or ``--optimizer lbfgs``) to objectives aimed at
word → image ranking, on the training images of the demo's evaluation set (those kNN and the
logistic baseline learn from), μ their mean:

- ``logistic``: one-vs-rest logistic on ``s_iw = a·cos(W x_i, u_w) + b_w`` (a, b_w learned);
- ``softmax``: per tag, a softmax over the batch's images of ``a·cos(W x_i, u_w)`` (word → images
  InfoNCE, every positive of the tag in the batch a target; a learned);
- ``softmax-dot``: the same on the unnormalised ``û_wᵀ W x_i`` (û_w the unit text vector);

each with a penalty λ·R(W) for λ in ``--weight-decays``: ``R = ‖W‖²`` for ``softmax-dot``; the two
cosine objectives ignore W's scale, so for them ``R = ‖W‖² / mean_i ‖W x_i‖²`` (scale-free: it
penalises directions of little feature variance). λ and the number of epochs are chosen on a
validation part of the training images (``--val-fraction`` of them, whole split groups as in the
demo's own split, fixed), with the first seed, on the validation w2i smoothed over 3 checks; then W
is refitted on all training images for that many epochs with every seed and evaluated on the
held-out images by the evaluation's own metric (``evaluate_scores``): ``w2i`` (seen tag → held-out
images, the ``seen`` ``tag_map``; ``w2i_all``: the same over all candidates), ``i2w`` (image → word
over all candidates, ``map``) and ``zs`` (zero-shot tags), every ranking by cosine in the word
space. One JSON line per fit, then:

- ``ref``: kNN (k=20), the logistic baseline (``LogisticScorer``, C=1), the demo's trained
  two-stage model (if it loads), and ``logistic→span(U)``: the logistic baseline's per-tag
  classifiers brought, by least squares, to the form ``u_wᵀ W`` (a closed-form frozen-U map);
- ``free-U``: the best objective (by validation) with every tag's vector trainable (a rank-D
  factorisation, text vectors as start): what freezing the words costs;
- ``oracle`` (``--oracle``): the best objective fitted on the held-out images themselves, frozen and
  free U: capacity, not a result (F = 1280 > 1,022 held-out images);
- ``summary``: per objective, w2i / i2w / zs as [mean, min, max] over the seeds.

About 10 minutes on one CPU thread (the logistic baseline alone ~3).
"""

import argparse
import json
import time
from dataclasses import dataclass, replace

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from gensim_im2vec.baselines import LogisticScorer, candidate_vectors, fill_scores
from gensim_im2vec.evaluate import Im2VecScorer, KNNTagScorer, evaluate_scores
from gensim_im2vec.metrics import relevance_matrix
from gensim_im2vec.pipeline import DemoConfig, evaluation_data, load_splits, open_features
from gensim_im2vec.validation import l2_normalize

OBJECTIVES = ("logistic", "softmax", "softmax-dot")
#: Adam's step of W and the most epochs, per objective (from short runs on the validation split;
#: ``--lr`` / ``--epochs`` override): where the validation w2i peaks well inside the run.
STEPS = {"logistic": 1e-2, "softmax": 3e-3, "softmax-dot": 1e-2}
EPOCHS = {"logistic": 200, "softmax": 100, "softmax-dot": 150}


@dataclass
class Task:
    """The demo's split: training and held-out images (L2-normalised features) and their tags."""

    X_train: np.ndarray
    train_tags: list
    X_test: np.ndarray
    test_tags: list
    candidates: list
    zero_shot: list
    seen: list            # the seen candidates: the tags every fit learns
    text: KeyedVectors    # the text model's word vectors (frozen)
    groups: list          # each training image's split group (creator, series, ...)


@dataclass
class Fit:
    """A fitted map: ``h = W (x − mu)``, the seen tags' vectors ``U`` (rows of `Task.seen`)."""

    W: np.ndarray
    mu: np.ndarray
    U: np.ndarray


def load_task(demo_dir: str) -> Task:
    cfg = DemoConfig(out_dir=demo_dir, mode="two-stage", seed=1, tags_only=True)
    feats = open_features(cfg)
    data = evaluation_data(cfg, feats)

    def rows(keys):
        return feats.gather_normalized([feats.row(k) for k in keys])

    zs = set(data.zero_shot)
    text = Word2Vec.load(f"{demo_dir}/models/words.w2v").wv
    groups = load_splits(cfg)[cfg.eval_set].groups  # bare keys; the tokens carry a prefix
    return Task(rows(data.train_keys), data.train_tags, rows(data.test_keys), data.test_tags,
                data.candidates, data.zero_shot, [c for c in data.candidates if c not in zs], text,
                [groups.get(k.split(":", 1)[-1], k) for k in data.train_keys])


def start_vectors(task: Task, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seen tags' start vectors (text vectors; random ones for tags the text lacks) and a mask
    of the tags that have a text vector (those stay frozen)."""
    rng = np.random.default_rng(10_000 + seed)
    k2i = task.text.key_to_index
    known = np.array([t in k2i for t in task.seen])
    U = rng.standard_normal((len(task.seen), task.text.vector_size)).astype(np.float32)
    U[known] = task.text.vectors[[k2i[t] for t in task.seen if t in k2i]]
    return U, known


def tag_space(task: Task, U: np.ndarray) -> KeyedVectors:
    """The words an image is ranked against: the text vectors, with the seen tags' rows from `U`."""
    kv = KeyedVectors(task.text.vector_size)
    words = list(dict.fromkeys([*task.candidates, *task.seen]))
    k2i = task.text.key_to_index
    text_words = [w for w in words if w in k2i and w not in set(task.seen)]
    if text_words:
        kv.add_vectors(text_words, task.text.vectors[[k2i[w] for w in text_words]])
    kv.add_vectors(task.seen, U)
    return kv


def score(fit: Fit, kv: KeyedVectors, X: np.ndarray, candidates: list) -> np.ndarray:
    """Cosine between ``W (x − mu)`` and the candidates' vectors: the evaluation's ranking."""
    mat, cols = candidate_vectors(kv, candidates)
    H = l2_normalize((X - fit.mu) @ fit.W.T)
    return fill_scores(len(X), candidates, cols, H @ mat.T)


def figures(task: Task, scores: np.ndarray) -> dict:
    res = evaluate_scores(scores, task.test_tags, task.candidates, zero_shot=task.zero_shot)
    return {"w2i": res["seen"]["tag_map"], "i2w": res["all"]["map"], "zs": res["zero_shot"]["map"],
            "w2i_all": res["all"]["tag_map"]}


def val_w2i(task: Task, fit: Fit, X_val: np.ndarray, val_tags: list) -> float:
    kv = tag_space(task, fit.U)
    return evaluate_scores(score(fit, kv, X_val, task.seen), val_tags, task.seen)["all"]["tag_map"]


# ============================================================================ the fit
def _loss(torch, kind: str, H, U, Y, log_a, b):
    """Mean loss of a batch: H (n×D) images, U (T×D) tags, Y (n×T) 0/1 targets."""
    F = torch.nn.functional
    Un = F.normalize(U, dim=1)
    if kind == "softmax-dot":
        logits = H @ Un.T
    else:
        logits = log_a.exp() * (F.normalize(H, dim=1) @ Un.T)
    if kind == "logistic":
        return F.binary_cross_entropy_with_logits(logits + b, Y, reduction="sum") / len(H)
    logp = torch.log_softmax(logits, dim=0)  # per tag, over the batch's images
    return -(Y * logp).sum() / Y.sum().clamp(min=1.0)


@dataclass
class FitSpec:
    kind: str
    weight_decay: float
    epochs: int
    batch: int = 2048        # images per Adam mini-batch; 0: all (full batch)
    lr: float = 1e-3         # Adam's step of W
    free_u: bool = False
    eval_every: int = 5
    optimizer: str = "adam"  # or "lbfgs" (full batch, one iteration an epoch)
    lr_tags: float = 3e-2    # Adam's step of the scale, the biases and the trainable tag vectors


def _batch_loss(torch, spec: FitSpec, Xc, Y, idx, W, current_u, log_a, b):
    """The objective on images `idx` (all with None) plus λ times the penalty."""
    X, Yb = (Xc, Y) if idx is None else (Xc[idx], Y[idx])
    H = X @ W.T
    loss = _loss(torch, spec.kind, H, current_u(), Yb, log_a, b)
    penalty = (W * W).sum()
    if spec.kind != "softmax-dot":  # cosines ignore W's scale: ‖W‖² per unit of the images' ‖h‖²
        penalty = penalty / (H * H).sum(dim=1).mean()
    return loss + spec.weight_decay * penalty


def fit_map(task: Task, X: np.ndarray, tags: list, spec: FitSpec, seed: int, val=None):
    """Fit W (and the tags' trainable vectors) on images X with `tags`; with `val` = (X_val,
    val_tags), also the validation w2i every `spec.eval_every` epochs (L-BFGS: iterations).
    Returns (Fit, history of (epoch, validation w2i, loss))."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    U0, known = start_vectors(task, seed)
    mu = X.mean(axis=0)
    Xc = torch.from_numpy(np.ascontiguousarray(X - mu, dtype=np.float32))
    Y = torch.from_numpy(relevance_matrix(tags, task.seen).astype(np.float32))
    W = (torch.randn(task.text.vector_size, X.shape[1]) / np.sqrt(X.shape[1])).requires_grad_()
    log_a = torch.tensor(float(np.log(10.0)), requires_grad=True)
    b = torch.full((len(task.seen),), -5.0, requires_grad=True)
    U_text = torch.from_numpy(U0)
    trainable = torch.from_numpy(np.ones_like(known) if spec.free_u else ~known)
    U_var = U_text.clone().requires_grad_()
    extra = [log_a, b, U_var]  # those the objective does not use get no gradient

    def current_u():
        return torch.where(trainable[:, None], U_var, U_text)

    def loss_of(idx):
        return _batch_loss(torch, spec, Xc, Y, idx, W, current_u, log_a, b)

    if spec.optimizer == "lbfgs":
        opt = torch.optim.LBFGS([W, *extra], lr=1, max_iter=1, history_size=20, line_search_fn="strong_wolfe")
    else:
        opt = torch.optim.Adam([{"params": [W], "lr": spec.lr}, {"params": extra, "lr": spec.lr_tags}])
    history = []
    for epoch in range(1, spec.epochs + 1):
        if spec.optimizer == "lbfgs":
            loss = opt.step(lambda: _backward(opt, loss_of(None)))
        else:
            n_batches = max(1, round(len(Xc) / spec.batch)) if spec.batch else 1
            for idx in np.array_split(rng.permutation(len(Xc)), n_batches):  # equal batches
                loss = _backward(opt, loss_of(torch.from_numpy(idx)))
                opt.step()
        if val is not None and (epoch % spec.eval_every == 0 or epoch == spec.epochs):
            fit = Fit(W.detach().numpy().copy(), mu, current_u().detach().numpy().copy())
            history.append((epoch, val_w2i(task, fit, *val), float(loss)))
    return Fit(W.detach().numpy().copy(), mu, current_u().detach().numpy().copy()), history


def _backward(opt, loss):
    opt.zero_grad()
    loss.backward()
    return loss.detach()


def validation_split(groups: list, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A fixed split of the training images by whole groups, as the demo's own train/test split
    (near-duplicates on both sides would reward memorising): groups in a fixed random order
    (seed 0, whatever the fits' seeds) each go to validation when that brings its size closer to
    `fraction` of the images. Returns (fit rows, validation rows)."""
    names, inverse, sizes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True,
                                      return_counts=True)
    target, size = fraction * len(groups), 0
    held = np.zeros(len(names), dtype=bool)
    for g in np.random.default_rng(0).permutation(len(names)):
        if abs(size + sizes[g] - target) < abs(size - target):
            held[g] = True
            size += sizes[g]
    is_val = held[inverse]
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def select(task: Task, args, kind: str, free_u: bool, seed: int) -> tuple[FitSpec, float]:
    """λ and epochs with the best validation w2i (one fit per λ, seed `seed`); the curve is
    smoothed over 3 checks first, so that a lone spike is not chosen."""
    part, held = validation_split(task.groups, args.val_fraction)
    val = (task.X_train[held], [task.train_tags[i] for i in held])
    tags = [task.train_tags[i] for i in part]
    best = (-1.0, None)
    for wd in args.weight_decays:
        spec = FitSpec(kind, wd, args.epochs or EPOCHS[kind], args.batch, args.lr or STEPS[kind], free_u,
                       args.eval_every, args.optimizer)
        t = time.perf_counter()
        _, history = fit_map(task, task.X_train[part], tags, spec, seed, val)
        values = np.array([h[1] for h in history])
        smooth = np.convolve(np.pad(values, 1, mode="edge"), np.ones(3) / 3, mode="valid")
        at = int(np.argmax(smooth))
        emit({"stage": "val", "objective": kind, "free_u": free_u, "weight_decay": wd,
              "best_epoch": history[at][0], "val_w2i": float(smooth[at]), "peak_val_w2i": float(values.max()),
              "last_val_w2i": float(values[-1]), "last_loss": history[-1][2], "n_fit": len(part),
              "n_val": len(held), "fit_s": time.perf_counter() - t})
        if smooth[at] > best[0]:
            best = (float(smooth[at]), replace(spec, epochs=history[at][0]))
    return best[1], best[0]


def refit(task: Task, spec: FitSpec, seeds, label: str) -> list[dict]:
    """Fit `spec` on all training images with each seed; the held-out figures of each."""
    out = []
    for seed in seeds:
        t = time.perf_counter()
        fit, _ = fit_map(task, task.X_train, task.train_tags, spec, seed)
        row = {"stage": "test", "objective": label, "seed": seed, "weight_decay": spec.weight_decay,
               "epochs": spec.epochs, **figures(task, score(fit, tag_space(task, fit.U), task.X_test,
                                                               task.candidates)),
               "fit_s": time.perf_counter() - t}
        emit(row)
        out.append(row)
    return out


# ============================================================================ references
def projected_logistic(task: Task, logistic: LogisticScorer, seed: int) -> Fit:
    """The logistic baseline's classifiers c_w (on v̂ − its mean) in the form u_wᵀ W: W by least
    squares over the tags with a text vector, then each other tag's vector by least squares."""
    U0, known = start_vectors(task, seed)
    index = {t: j for j, t in enumerate(logistic.tags)}
    have = np.array([t in index for t in task.seen])
    C = np.zeros((len(task.seen), logistic.coef.shape[0]))
    C[have] = (logistic.coef / logistic.scale[:, None]).T[[index[t] for t in task.seen if t in index]]
    Uk = l2_normalize(U0[known & have]).astype(np.float64)
    W = np.linalg.lstsq(Uk, C[known & have], rcond=None)[0]  # D×F
    U = l2_normalize(U0).astype(np.float64)
    free = ~known & have
    if free.any():
        U[free] = np.linalg.lstsq(W.T, C[free].T, rcond=None)[0].T
    return Fit(W.astype(np.float32), logistic.mean.astype(np.float32), U.astype(np.float32))


def references(task: Task, demo_dir: str, seed: int) -> None:
    """kNN, the logistic baseline, the trained two-stage model and logistic→span(U), one line each."""
    def line(name, scores, t):
        emit({"stage": "ref", "objective": name, **figures(task, scores), "fit_s": time.perf_counter() - t})

    t = time.perf_counter()
    line("kNN (k=20)", KNNTagScorer.fit(task.X_train, task.train_tags, k=20)(task.X_test, task.candidates), t)
    t = time.perf_counter()
    logistic = LogisticScorer.fit(task.X_train, task.train_tags)
    line("logistic (C=1)", logistic(task.X_test, task.candidates), t)
    t = time.perf_counter()
    fit = projected_logistic(task, logistic, seed)
    line("logistic→span(U)", score(fit, tag_space(task, fit.U), task.X_test, task.candidates), t)
    t = time.perf_counter()
    try:
        from gensim_im2vec.model import Im2Vec

        model = Im2Vec.load(f"{demo_dir}/models/im2vec-two-stage.model")
    except Exception as e:  # noqa: BLE001 - a reference only: report and go on
        emit({"stage": "ref", "objective": "trained two-stage", "skipped": repr(e)})
        return
    line("trained two-stage", Im2VecScorer(model)(task.X_test, task.candidates), t)


def oracle(task: Task, spec: FitSpec, seed: int) -> None:
    """Capacity, not a result: `spec`'s objective fitted on the held-out images themselves (all
    `spec.epochs`, no early stopping), frozen and free U: can any such map rank them at all?"""
    for free_u in (False, True):
        t = time.perf_counter()
        fit, _ = fit_map(task, task.X_test, task.test_tags, replace(spec, free_u=free_u), seed)
        kv = tag_space(task, fit.U)
        emit({"stage": "oracle", "objective": f"{'free-U' if free_u else 'frozen-U'} {spec.kind} on test",
              "epochs": spec.epochs, **figures(task, score(fit, kv, task.X_test, task.candidates)),
              "fit_s": time.perf_counter() - t})


# ============================================================================ main
def emit(row: dict) -> None:
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


def summary(label: str, rows: list[dict]) -> dict:
    out = {"stage": "summary", "objective": label, "n_seeds": len(rows)}
    for key in ("w2i", "i2w", "zs"):
        v = np.array([r[key] for r in rows])
        out[key] = [round(float(v.mean()), 4), round(float(v.min()), 4), round(float(v.max()), 4)]
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="demo_output")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=list(OBJECTIVES))
    ap.add_argument("--weight-decays", type=float, nargs="+", default=[0.0, 1e-4, 1e-3],
                    help="λ of λ‖W‖² tried on the validation split")
    ap.add_argument("--epochs", type=int, default=None,
                    help="most epochs (default: EPOCHS, per objective); the best on validation is kept")
    ap.add_argument("--eval-every", type=int, default=5, help="epochs between validation checks")
    ap.add_argument("--batch", type=int, default=2048, help="images per mini-batch (0: all)")
    ap.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam",
                    help="lbfgs: full batch, one iteration an epoch")
    ap.add_argument("--lr", type=float, default=None, help="Adam's step (default: STEPS, per objective)")
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--no-free-u", action="store_true", help="skip the free-U reference")
    ap.add_argument("--no-references", action="store_true", help="skip kNN, logistic and the model")
    ap.add_argument("--oracle", action="store_true",
                    help="also fit the best objective on the held-out images themselves (capacity)")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    args = parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        task = load_task(args.demo_dir)
        if not args.no_references:
            references(task, args.demo_dir, args.seeds[0])
        chosen = []
        for kind in args.objectives:
            spec, value = select(task, args, kind, False, args.seeds[0])
            chosen.append((value, spec))
            emit(summary(kind, refit(task, spec, args.seeds, kind)))
        best = max(chosen, key=lambda c: c[0])[1]
        if not args.no_free_u:
            spec, _ = select(task, args, best.kind, True, args.seeds[0])
            emit(summary(f"free-U {best.kind}", refit(task, spec, args.seeds, f"free-U {best.kind}")))
        if args.oracle:
            oracle(task, replace(best, epochs=args.epochs or EPOCHS[best.kind]), args.seeds[0])
    emit({"stage": "done", "total_s": time.perf_counter() - t0})


if __name__ == "__main__":
    main()
