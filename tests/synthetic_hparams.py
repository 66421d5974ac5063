"""Synthetic grids of runs drawn from known optimal-LR and batch laws, for tests/analysis/test_hparams.py."""

from __future__ import annotations

import numpy as np

# eta*(N, D) = a N^alpha D^beta and B*(D) = b D^gamma (the forms of Li et al. 2025), B in tokens
TRUE = {"eta_ND": {"a": 2.0, "alpha": -0.6, "beta": 0.25}, "B_D": {"b": 0.5, "gamma": 0.5}}
SIZES = (1e5, 3e5, 1e6, 3e6, 1e7)
TOKENS_PER_PARAM = (10, 40)  # two token budgets per size: D no longer proportional to N
LR_STEPS = np.arange(-2, 3)  # 5 LRs, a factor 2 apart
BATCH_STEPS = np.arange(-1, 2)  # 3 batch sizes, a factor 2 apart


def true_lr(N, D):
    p = TRUE["eta_ND"]
    return p["a"] * N ** p["alpha"] * D ** p["beta"]


def true_batch(D):
    return TRUE["B_D"]["b"] * D ** TRUE["B_D"]["gamma"]


def loss_surface(N, D, lr, batch, curvature=(0.02, 0.01), skew=0.3):
    """Chinchilla-like L(N, D) times a valley in log LR and log batch around the true optimum: quadratic,
    steeper on the high-LR side by exp(skew·u) (not a polynomial, so no surface form fits it exactly),
    minimal at exactly (true_lr, true_batch)."""
    u, v = np.log(lr / true_lr(N, D)), np.log(batch / true_batch(D))
    best = 1.8 + 400 / N ** 0.34 + 400 / D ** 0.28
    return best * np.exp(curvature[0] * u * u * np.exp(skew * u) + curvature[1] * v * v)


def grid(seed=0, noise=0.003, sizes=SIZES, budgets=TOKENS_PER_PARAM, skew=0.3):
    """Columns N, D, lr, batch, loss of a grid: per cell LR_STEPS x BATCH_STEPS, the grid's centre off the
    true optimum by up to a factor 1.6 in LR and 1.4 in batch, multiplicative Gaussian noise of `noise`."""
    rng = np.random.default_rng(seed)
    rows = []
    for N in sizes:
        for k in budgets:
            D = k * N
            lr0 = true_lr(N, D) * 2.0 ** rng.uniform(-0.7, 0.7)
            b0 = true_batch(D) * 2.0 ** rng.uniform(-0.5, 0.5)
            for i in LR_STEPS:
                for j in BATCH_STEPS:
                    lr, batch = lr0 * 2.0 ** i, b0 * 2.0 ** j
                    rows.append((N, D, lr, batch, loss_surface(N, D, lr, batch, skew=skew)))
    N, D, lr, batch, loss = (np.array(c) for c in zip(*rows))
    return {"N": N, "D": D, "lr": lr, "batch": batch, "loss": loss * (1 + noise * rng.standard_normal(len(loss)))}


def write_csv(path, table) -> None:
    names = list(table)
    lines = [",".join(names)] + [",".join(f"{table[k][i]:.10g}" for k in names) for i in range(len(table["N"]))]
    path.write_text("\n".join(lines) + "\n")
