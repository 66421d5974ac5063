"""The demo's independent check: its small runs predict its large ones.

Reads a finished `+sweep=demo` (the folder in $SCALING_SWEEP_DEMO, e.g. runs/demo; else the committed
summaries of a real demo sweep in tests/fixtures/demo_sweep) and, without the project's analysis code,
fits Chinchilla's L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2, fitted as in their
approach 3: Huber loss with delta 1e-3 on log loss, L-BFGS from a grid of starts) to every point except
those of the two largest N, then predicts those. A point is a completed run's (N non-embedding, tokens
trained, best validation loss) or one of its wsd cooldown branches (the run of that length).

And Kaplan et al. 2020's L(N) with Henighan et al. 2020's floor (tests/independent_fits.py) at the one length
every size trained to (a run's end or its branch at the same step, as Kaplan's sizes all trained the same
steps): fitted on all sizes but the two largest, it predicts those within 1% each.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from independent_fits import held_out_errors
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

FIXTURE = Path(__file__).parent / "fixtures" / "demo_sweep"
HUBER_DELTA = 1e-3
MAX_MEAN_ERROR = 0.01  # the held-out runs' mean |predicted / measured - 1|
MIN_FLOOR = 0.2  # nats/token: E must sit well above zero (text keeps an entropy of its own)
MAX_SIZE_ERROR = 0.01  # L(N): each held-out size's |predicted / measured - 1|


def demo_points(sweep: Path) -> np.ndarray:
    """(N, D, loss) rows of every completed run of the sweep and of its cooldown branches."""
    rows = []
    for path in sorted(sweep.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        if summary["status"] != "completed":
            continue
        rows.append((summary["N"], summary["tokens"], summary["best_val_loss"]))
        rows += [(summary["N"], c["tokens"], c["val_loss"]) for c in summary.get("cooldowns", [])]
    return np.array(rows, dtype=float)


def size_points_at_common_length(sweep: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(N, loss) by N at the most steps at which every size has a run's end or a branch, and that step."""
    lengths = {}
    for path in sorted(sweep.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        if summary["status"] == "completed":
            points = {c["step"]: c["val_loss"] for c in summary.get("cooldowns", [])}
            lengths[summary["N"]] = {**points, summary["step"]: summary["best_val_loss"]}
    step = max(set.intersection(*(set(p) for p in lengths.values())))
    N = np.array(sorted(lengths), dtype=float)
    return N, np.array([lengths[n][step] for n in sorted(lengths)]), step


def log_loss_model(theta, log_N, log_D):
    a, b, e, alpha, beta = theta
    return logsumexp([a - alpha * log_N, b - beta * log_D, np.full_like(log_N, e)], axis=0)


def fit_chinchilla(N, D, loss):
    """E, A, B, alpha, beta minimising the summed Huber loss of log-loss residuals."""
    log_N, log_D, log_L = np.log(N), np.log(D), np.log(loss)

    def objective(theta):
        return huber(HUBER_DELTA, log_loss_model(theta, log_N, log_D) - log_L).sum()

    grid = itertools.product((0.0, 5.0, 10.0), (0.0, 5.0, 10.0), (-1.0, 0.5), (0.2, 0.5), (0.2, 0.5))
    best = min((minimize(objective, start, method="L-BFGS-B") for start in grid), key=lambda r: r.fun)
    a, b, e, alpha, beta = best.x
    return {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta, "theta": best.x}


def held_out_check(points: np.ndarray) -> dict:
    N, D, loss = points.T
    held_out = N >= np.unique(N)[-2]
    fitted = fit_chinchilla(N[~held_out], D[~held_out], loss[~held_out])
    predicted = np.exp(log_loss_model(fitted["theta"], np.log(N[held_out]), np.log(D[held_out])))
    errors = np.abs(predicted / loss[held_out] - 1)
    return {**fitted, "mean_error": errors.mean(), "max_error": errors.max(), "n_fitted": int((~held_out).sum()),
            "n_held_out": int(held_out.sum())}


def demo_sweep_dir() -> Path:
    return Path(os.environ.get("SCALING_SWEEP_DEMO", FIXTURE))


def test_the_fit_recovers_a_known_law_from_noisy_points():
    rng = np.random.default_rng(0)
    N = np.repeat([2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6], 3)
    D = N * np.tile([20.0, 60.0, 200.0], 7)
    true = 0.6 + 40 / N**0.35 + 300 / D**0.3
    check = held_out_check(np.column_stack([N, D, true * np.exp(rng.normal(0, 0.003, len(N)))]))
    assert check["mean_error"] < 0.01
    assert check["E"] == pytest.approx(0.6, abs=0.15)


def test_small_demo_runs_predict_the_two_largest_sizes():
    sweep = demo_sweep_dir()
    points = demo_points(sweep)
    assert len(np.unique(points[:, 0])) >= 4, f"{sweep} holds fewer than 4 completed demo sizes"
    check = held_out_check(points)
    summary = (f"{sweep}: fit on {check['n_fitted']} points, E={check['E']:.3f} A={check['A']:.3g} "
               f"B={check['B']:.3g} alpha={check['alpha']:.3f} beta={check['beta']:.3f}; "
               f"{check['n_held_out']} held-out points, mean error {check['mean_error']:.2%}, "
               f"max {check['max_error']:.2%}")
    print(summary)
    assert check["mean_error"] <= MAX_MEAN_ERROR, summary
    assert check["E"] >= MIN_FLOOR, summary


# Measured on the committed sweep (2026-12-04): its smallest size (6.6k, there for the 4e11 budget's profile)
# lies 1.6% above the law of the five sizes above it, and bends the fit.
@pytest.mark.xfail(strict=True, reason="the committed sweep misses: 0.91% and 1.26% at 224k and 397k; without its "
                   "6.6k size 0.45% and 0.24%, and with a 10k model in its place (run alone to 1,231 steps) 0.78% "
                   "and 1.02% (docs/kaplan_cpu.md, \"The README demo\")")
def test_l_of_n_at_the_common_length_predicts_the_two_largest_sizes():
    N, loss, step = size_points_at_common_length(demo_sweep_dir())
    assert len(N) >= 6, f"{len(N)} sizes share a training length"
    law, errors = held_out_errors(N, loss, 2)
    assert errors.max() < MAX_SIZE_ERROR, (step, law, errors)
