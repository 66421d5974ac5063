"""Kaplan's power law with Henighan et al. 2020's additive floor, L = L_inf + (x_c/x)^alpha, fitted without
the project's analysis code: the independent checks of the committed sweeps (test_demo_sweep.py,
test_kaplan_cpu_sweep.py) use it."""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares


def fit_floor_power_law(x, loss):
    """(L_inf, x_c, alpha) of L = L_inf + (x_c/x)^alpha, least squares on log L from a grid of starts."""
    log_x, log_L = np.log(x), np.log(loss)

    def residuals(theta):
        log_inf, log_xc, alpha = theta
        return np.logaddexp(log_inf, alpha * (log_xc - log_x)) - log_L

    starts = [(np.log(f * loss.min()), log_xc, alpha) for f in (0.5, 0.9) for log_xc in (np.log(x.min()), 10.0, 25.0)
              for alpha in (0.1, 0.5)]
    best = min((least_squares(residuals, s, method="lm") for s in starts), key=lambda r: r.cost)
    log_inf, log_xc, alpha = best.x
    return {"L_inf": np.exp(log_inf), "x_c": np.exp(log_xc), "alpha": alpha}


def predict(law: dict, x) -> np.ndarray:
    return law["L_inf"] + (law["x_c"] / np.asarray(x, float)) ** law["alpha"]


def held_out_errors(x, loss, n_held_out: int) -> tuple[dict, np.ndarray]:
    law = fit_floor_power_law(x[:-n_held_out], loss[:-n_held_out])
    return law, np.abs(predict(law, x[-n_held_out:]) / loss[-n_held_out:] - 1)
