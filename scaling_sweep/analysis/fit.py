"""Fitters for the laws of :mod:`scaling_sweep.laws`, with bootstrap confidence intervals.

- Single power laws without a floor: least squares on log-loss (a straight line in log-log).
- Multi-term laws (a power law with an irreducible term, Kaplan's eq. 1.5 and 1.6,
  Chinchilla's E + A/N^alpha + B/D^beta): Huber loss (delta = 1e-3) on log-loss, minimised
  by L-BFGS from a grid of starting points, as Hoffmann et al. 2022 and Besiroglu et al. 2024
  do. All starts run together in one vectorised L-BFGS (:func:`lbfgs_batch`) with analytic
  gradients; the best one is then polished with scipy's L-BFGS-B.
- Bootstrap, resampling what is independent (docs/intervals.md has the coverage of every interval,
  measured on simulated sweeps). Points that are independent and few (one per model size, as in
  L(N)): a residual bootstrap in the space the fit is made in (log-loss), the fitted values plus
  residuals drawn with replacement, inflated by sqrt(n/(n-p)) for the p fitted constants and smoothed
  with a little Gaussian jitter. Lines fitted to points that come in groups sharing their noise (the
  frontier points of one run): a wild cluster bootstrap-t, each run's residuals scaled together.
  Multi-term laws on grouped points, or on many points whose errors may be correlated (a table read
  off a figure): a case bootstrap that redraws whole groups (case_weights), as Besiroglu et al. 2024
  did on Chinchilla's points (on those points its 95% intervals are 0.99-1.03x as wide as theirs).
  Each resample is one row of the same vectorised optimisation, started from the full-data fit.
  Intervals are percentiles at the normal quantiles (bootstrap-t for the grouped lines). Where the
  independent units are fewer than the constants plus MIN_SPARE, the Fit has no interval and says so
  (extra["no_interval"]): a bootstrap of so few runs reports its own extremes, not an interval.
- Approach 2 (fit_optima): per-budget optima, weighted least squares in log-log, intervals by a
  run-level bootstrap of the whole chain (analyze.isoflop_optima: runs redrawn, every profile's
  minimum retaken, the exponent refitted).
- Held-out check: fit on all but the largest models, report the relative error of the
  predicted loss of the held-out ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np
from scipy.optimize import minimize

from scaling_sweep.core import laws
from scaling_sweep.core.errors import UserError

HUBER_DELTA = 1e-3
LEAST_SQUARES_DELTA = 1.0  # a Huber delta beyond any log-loss residual: least squares
CI_LEVEL = 0.95
N_BOOT = 2000  # resamples of the fits that are cheap (lines, approach 2's minima)
N_BOOT_HUBER = 1000  # of the Huber/L-BFGS fits, each resample a full refit (Epoch's points: docs/intervals.md)
# An interval needs this many independent units (runs, or points of a table) beyond the constants
# fitted: with fewer, a bootstrap redraws too few distinct runs to say anything (docs/intervals.md).
MIN_SPARE = 5

# law name -> its formula in scaling_sweep.laws
LAWS = {
    "L_N": laws.loss_n,
    "L_D": laws.loss_d,
    "L_Cmin": laws.loss_cmin,
    "L_C": laws.loss_cmin,  # the same form at a fixed batch size (eq. 3.3), C not converted to C_min
    "L_ND": laws.loss_nd,
    "L_NS": laws.loss_ns,
    "chinchilla": laws.chinchilla_loss,
    "B_crit": laws.critical_batch,
}
POWER_LAW_NAMES = {"N": "L_N", "D": "L_D", "C": "L_Cmin"}  # fit_power_law's var -> law


def _allocation(C, exponent, **coef):
    """fit_allocation's form with its coefficient named by what it allocates (N_coef, D_coef, ...)."""
    return laws.allocation(C, *coef.values(), exponent)


LAWS |= {name: _allocation for name in ("N_opt", "D_opt", "N_opt_frontier", "S_min_frontier", "B_frontier")}


class FitError(UserError, ValueError):
    """Too few or unusable points for a fit."""


@dataclass
class Fit:
    """Fitted constants of one law, named as the keyword arguments of its formula."""

    law: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    n_points: int
    extra: dict = field(default_factory=dict)  # held-out check, per-law details
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # each constant over the bootstrap resamples

    def predict(self, *inputs):
        return LAWS[self.law](*inputs, **self.params)

    def warn(self, message: str) -> None:
        """Add a warning for the report (a floor that vanished, points that are not what the law assumes)."""
        self.extra["warning"] = "; ".join(filter(None, [self.extra.get("warning"), message]))

    def to_dict(self) -> dict:
        return {**self.params, "ci": {k: list(v) for k, v in self.ci.items()},
                "ci_level": CI_LEVEL, "n_points": self.n_points, **self.extra,
                "samples": {k: [float(x) for x in v] for k, v in self.samples.items()}}


def _check_points(n: int, n_params: int, law: str) -> None:
    need = max(3, n_params + 1)
    if n < need:
        raise FitError(f"{law}: {n} points, need at least {need} to fit {n_params} constants")


def bootstrap_ci(samples: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Percentile intervals of bootstrap samples at the normal quantiles of CI_LEVEL (Efron &
    Tibshirani 1993, ch. 13); resamples whose fit failed (NaN) are left out."""
    q = np.array([0.5 - CI_LEVEL / 2, 0.5 + CI_LEVEL / 2])
    ci = {}
    for name, values in samples.items():
        values = values[~np.isnan(values)]
        lo, hi = percentiles(values, q) if len(values) else (np.nan, np.nan)
        ci[name] = (float(lo), float(hi))
    return ci


def percentiles(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """np.percentile's linear interpolation between order statistics at fractions q, except that
    an infinite order statistic (a constant past float range, e.g. x_c = exp(-a/b) of a resample
    whose slope is near 0) is the answer wherever it has weight: the interval then says inf, where
    dropping such resamples would narrow it and np.percentile would return NaN."""
    ordered = np.sort(values)
    position = np.asarray(q) * (len(ordered) - 1)
    below, above = ordered[np.floor(position).astype(int)], ordered[np.ceil(position).astype(int)]
    t = position - np.floor(position)
    with np.errstate(invalid="ignore"):
        between = below + (above - below) * t
    return np.where(np.isinf(below) & (t < 1), below, np.where(np.isinf(above) & (t > 0), above, between))


def residual_resamples(fitted, observed, n_params, n_boot, seed) -> np.ndarray:
    """(n_boot, n) pseudo-observations: fitted + residuals drawn with replacement, inflated
    by sqrt(n/(n - n_params)) so that their spread is unbiased, plus Gaussian jitter of
    bandwidth sd·n^(-1/5) (the smoothed bootstrap). Without the jitter the tails are too
    light with a handful of residuals, and a Huber fit with a small delta (nearly a
    least-absolute-deviations fit) gets intervals about 25% too narrow."""
    n = len(observed)
    residuals = (observed - fitted) * np.sqrt(n / (n - n_params))
    rng = np.random.default_rng(seed)
    draws = rng.choice(residuals, size=(n_boot, n))
    draws += rng.normal(0.0, residuals.std() * n ** -0.2, size=draws.shape)
    return fitted + draws


def case_weights(groups, n_boot, seed, strata=None) -> np.ndarray:
    """(n_boot, n) weights of a case bootstrap: each resample draws as many groups as there are,
    with replacement, and a point weighs as often as its group was drawn. A group is what is
    independent: a run whose learning-curve points share its noise, or a single point. strata (n),
    when given: groups are drawn within each stratum as many times as it holds groups (a stratified
    bootstrap, for a design fixed by stratum such as the runs of one IsoFLOP budget)."""
    labels, first, index = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    label_strata = np.zeros(len(labels)) if strata is None else np.asarray(strata)[first]
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(labels)))
    for stratum in np.unique(label_strata):
        members = np.flatnonzero(label_strata == stratum)
        counts[:, members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), n_boot)
    return counts[:, index]


# ---------------------------------------------------------------- straight lines in log-log


def _line(x, y, w=None):
    """Least-squares line y = a + b·x for each row of y (K, n), weighted by w (K, n) when
    given; returns (a, b), each (K,)."""
    w = np.ones_like(y) if w is None else w
    total = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample holding one x (or none) has no slope
        x_mean, y_mean = (w * x).sum(-1) / total, (w * y).sum(-1) / total
        dx = x - x_mean[:, None]
        b = (w * dx * (y - y_mean[:, None])).sum(-1) / (w * dx * dx).sum(-1)
    return y_mean - b * x_mean, b


def _fit_line(x, y, n_boot, seed, groups=None, w=None, x_boot=None, y_boot=None):
    """(intercept, slope) of the line through (x, y) (weights w) and of n_boot bootstrap
    resamples: residuals resampled, or with groups whole groups of points (case_weights). x_boot,
    y_boot (n_boot, n): where given, each resample's own x or y (an input that was itself estimated,
    such as C_min under each resample of B_crit)."""
    w = np.ones_like(y) if w is None else w
    a, b = _line(x, y[None], w[None])
    x_rows = x if x_boot is None else x_boot
    fitted = a + b * x
    if groups is None:
        return (a[0], b[0]), _line(x_rows, residual_resamples(fitted, y, 2, n_boot, seed), w[None]), None
    y_rows = fitted + _leverage_adjusted(x, y - fitted, w, groups) * wild_cluster_signs(groups, n_boot, seed)
    if y_boot is not None:
        y_rows = y_rows + (y_boot - y)  # the resampled input's own shift (e.g. S_min under B_crit's resample)
    w_rows = np.broadcast_to(w, y_rows.shape)
    a_boot, b_boot = _line(x_rows, y_rows, w_rows)
    studentize = (cluster_covariance(x, y[None], w[None], groups, a, b)[0],
                  cluster_covariance(x_rows, y_rows, w_rows, groups, a_boot, b_boot))
    return (a[0], b[0]), (a_boot, b_boot), studentize


def cluster_covariance(x, y, w, groups, a, b) -> np.ndarray:
    """(K, 2, 2) cluster-robust covariance of (intercept, slope) of each row's weighted line (CR1:
    the sandwich with each group's scores summed, times G/(G-1)·(n-1)/(n-2); Cameron & Miller 2015)."""
    x = np.broadcast_to(x, y.shape)
    u = w * (y - a[:, None] - b[:, None] * x)
    S0, S1, S2 = w.sum(-1), (w * x).sum(-1), (w * x * x).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bread = np.stack([np.stack([S2, -S1], -1), np.stack([-S1, S0], -1)], -2) / (S0 * S2 - S1 * S1)[:, None, None]
    labels, index = np.unique(np.asarray(groups), return_inverse=True)
    onehot = np.eye(len(labels))[index]
    scores = np.stack([u @ onehot, (u * x) @ onehot], -1)  # (K, G, 2)
    n, G = y.shape[1], len(labels)
    meat = np.einsum("kgi,kgj->kij", scores, scores) * G / (G - 1) * (n - 1) / max(n - 2, 1)
    return bread @ meat @ bread


def studentized_ci(value, gradient, line, boot, studentize) -> tuple[float, float]:
    """Bootstrap-t interval (Efron & Tibshirani 1993, ch. 12; the wild cluster bootstrap-t of Cameron,
    Gelbach & Miller 2008) of value(a, b), a function of a line's intercept and slope: each resample's
    t = (value* - value)/se*, se by the delta method from its cluster-robust covariance, and the
    interval value - t_(97.5%)·se .. value - t_(2.5%)·se. Unlike percentiles of the resamples, it
    holds a few runs' uncertainty about their own noise level (Student's t, not the normal quantile)."""
    (a, b), (a_boot, b_boot), (V, V_boot) = line, boot, studentize
    g, g_boot = gradient(np.array([a]), np.array([b]))[0], gradient(a_boot, b_boot)
    se = np.sqrt(g @ V @ g)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (value(a_boot, b_boot) - value(a, b)) / np.sqrt(np.einsum("ki,kij,kj->k", g_boot, V_boot, g_boot))
    t = t[np.isfinite(t)]
    if not len(t) or not np.isfinite(se):
        return (np.nan, np.nan)
    lo, hi = percentiles(t, np.array([0.5 - CI_LEVEL / 2, 0.5 + CI_LEVEL / 2]))
    return (float(value(a, b) - hi * se), float(value(a, b) - lo * se))


# value(a, b) and its gradient of the constants of a line in log-log: log x_c = -a/b, alpha = -b
# (fit_power_law); log coef = a, exponent = b (fit_allocation)
LINE_CONSTANTS = {
    "log_x_c": (lambda a, b: -a / b, lambda a, b: np.stack([-1 / b, a / b ** 2], -1)),
    "minus_slope": (lambda a, b: -b, lambda a, b: np.stack([0 * a, -1 + 0 * b], -1)),
    "intercept": (lambda a, b: a, lambda a, b: np.stack([1 + 0 * a, 0 * b], -1)),
    "slope": (lambda a, b: b, lambda a, b: np.stack([0 * a, 1 + 0 * b], -1)),
}


def _studentized_intervals(f: Fit, named: dict[str, tuple[str, bool]], line, boot, studentize) -> Fit:
    """Replace f's percentile intervals by studentized ones: named maps a constant to its entry of
    LINE_CONSTANTS and whether the constant is exp of it."""
    if not f.ci or studentize is None:
        return f
    for name, (kind, log_scale) in named.items():
        lo, hi = studentized_ci(*LINE_CONSTANTS[kind], line, boot, studentize)
        f.ci[name] = (float(np.exp(lo)), float(np.exp(hi))) if log_scale else (lo, hi)
    return f


def _leverage_adjusted(x, residuals, w, groups) -> np.ndarray:
    """Each run's residuals times (I - H_gg)^(-1/2), H_gg its block of the hat matrix (Bell & McCaffrey
    2002's CR2): a run at the end of the line pulls the line towards itself, and its residuals
    understate its noise by that much."""
    X = np.stack([np.ones_like(x), x], -1) * np.sqrt(w)[:, None]
    inverse = np.linalg.inv(X.T @ X)
    adjusted = np.array(residuals, float)
    for label in np.unique(np.asarray(groups)):
        rows = np.flatnonzero(np.asarray(groups) == label)
        values, vectors = np.linalg.eigh(np.eye(len(rows)) - X[rows] @ inverse @ X[rows].T)
        root = vectors @ np.diag(1 / np.sqrt(np.clip(values, 1e-6, None))) @ vectors.T
        adjusted[rows] = root @ residuals[rows]
    return adjusted


WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


def wild_cluster_signs(groups, n_boot, seed) -> np.ndarray:
    """(n_boot, n) multipliers of a wild cluster bootstrap (Cameron, Gelbach & Miller 2008): every
    residual of one group (a run) is scaled by the same draw of Webb's (2014) six-point distribution
    (mean 0, variance 1), so a run's shared noise moves together while the design stays fixed. For
    a line fitted to the points of few runs the case bootstrap's percentile intervals cover too
    rarely (86-88% for 7-12 runs in docs/intervals.md); these cover 90-98%."""
    labels, index = np.unique(np.asarray(groups), return_inverse=True)
    draws = np.random.default_rng(seed).choice(WEBB, size=(n_boot, len(labels)))
    return draws[:, index]


def _resampled_inputs(law, x, values, groups, n_boot, *resampled):
    """The points _columns keeps (finite and positive) and, of each resampled input (n_boot, n) or
    None, the same columns; n_boot 0 where the units are too few for an interval."""
    finite = np.isfinite(np.asarray(x, float)) & (np.asarray(x, float) > 0) \
        & np.isfinite(np.asarray(values, float)) & (np.asarray(values, float) > 0)
    (x, values), groups = _columns(law, x, values, groups=groups)
    n_boot = _boot_count(n_boot, len(x), groups, 2)
    n_boot = min([n_boot] + [len(r) for r in resampled if r is not None])  # each resample paired with one row
    kept = [None if r is None else np.log(np.asarray(r, float)[:n_boot, finite]) for r in resampled]
    return x, values, groups, n_boot, kept


def fit_power_law(x, loss, var="N", floor=False, n_boot=N_BOOT, seed=0, groups=None, law=None,
                  x_resampled=None) -> Fit:
    """Eq. 1.1-1.3: L = (x_c/x)^alpha by least squares on log L against log x, or with floor=True
    L = L_inf + (x_c/x)^alpha by least squares on log L (L-BFGS from a grid). var is "N", "D" or "C" and
    names the constants as Kaplan does (N_c, alpha_N, ...); law names the result (default L_N, L_D,
    L_Cmin). groups: what is independent (see case_weights); None for independent points.
    x_resampled (n_boot, n): x under each resample of what it was computed from (C_min under the
    B_crit fit's resamples), paired row by row with this fit's resamples."""
    law = law or POWER_LAW_NAMES[var]
    if floor:
        return _fit_power_law_with_floor(x, loss, var, n_boot, seed, groups, law)
    x, loss, groups, n_boot, (x_boot,) = _resampled_inputs(law, x, loss, groups, n_boot, x_resampled)
    _check_points(len(x), 2, law)
    # log L = alpha·log x_c - alpha·log x
    (a, b), (a_boot, b_boot), studentize = _fit_line(np.log(x), np.log(loss), n_boot, seed, groups, x_boot=x_boot)
    names = (f"{var}_c", f"alpha_{var}")
    with np.errstate(over="ignore"):  # a resample's slope near 0 puts its x_c past float range: inf
        x_c_boot = np.exp(-a_boot / b_boot)
    f = _line_fit(law, {names[0]: np.exp(-a / b), names[1]: -b}, {names[0]: x_c_boot, names[1]: -b_boot},
                  len(x), groups)
    return _studentized_intervals(f, {names[0]: ("log_x_c", True), names[1]: ("minus_slope", False)},
                                  (a, b), (a_boot, b_boot), studentize)


def fit_allocation(C, values, name="N_opt", n_boot=N_BOOT, seed=0, groups=None, weights=None,
                   C_resampled=None, values_resampled=None) -> Fit:
    """value = coef · (C / PF-day)^exponent, the form of eq. 1.7 / 6.1 (N_opt, D_opt, B, S),
    by least squares in log-log (weighted by `weights` when given). C_resampled, values_resampled
    (n_boot, n): inputs under each resample of what they were computed from (see fit_power_law)."""
    C, values, groups, n_boot, (C_boot, v_boot) = _resampled_inputs(name, C, values, groups, n_boot,
                                                                     C_resampled, values_resampled)
    _check_points(len(C), 2, name)
    w = None if weights is None else np.asarray(weights, float)
    x_boot = None if C_boot is None else C_boot - np.log(laws.PF_DAY)
    (a, b), (a_boot, b_boot), studentize = _fit_line(np.log(C / laws.PF_DAY), np.log(values), n_boot, seed,
                                                     groups, w, x_boot, v_boot)
    coef = f"{name.split('_')[0]}_coef"
    f = _line_fit(name, {coef: np.exp(a), "exponent": b}, {coef: np.exp(a_boot), "exponent": b_boot},
                  len(C), groups)
    return _studentized_intervals(f, {coef: ("intercept", True), "exponent": ("slope", False)},
                                  (a, b), (a_boot, b_boot), studentize)


def fit_optima(C, values, resampled=None, name="N_opt", runs=None, weights=None, method="") -> Fit:
    """Chinchilla approach 2's allocation, value = coef · (C/PF-day)^exponent, from per-budget optima:
    least squares in log-log, each optimum weighted by `weights` (default: optimum_weights of the
    resamples; equal without them). resampled (R, J): log value of every budget's optimum rebuilt from
    each run-level bootstrap resample of the sweep (its runs redrawn, the profiles and their minima
    retaken: points.resampled_log_optima), NaN where a resample left a profile without a bracketed
    minimum; each row is refitted and the intervals are their percentiles. runs: how many
    independent runs the profiles hold (default: every optimum its own)."""
    (C, values), _ = _columns(name, C, values)
    _check_points(len(C), 2, name)
    x, y = np.log(C / laws.PF_DAY), np.log(values)
    if weights is None:
        weights = np.ones(len(C)) if resampled is None else optimum_weights(resampled)
    a, b = (v[0] for v in _line(x, y[None], np.asarray(weights, float)[None]))
    coef = f"{name.split('_')[0]}_coef"
    units = len(C) if runs is None else runs
    samples = {}
    fit = Fit(name, {coef: float(np.exp(a)), "exponent": float(b)}, {}, len(C))
    if resampled is not None and len(resampled):
        w = np.where(np.isfinite(resampled), weights, 0.0)
        a_boot, b_boot = _line(x, np.nan_to_num(resampled), w)
        failed = (w > 0).sum(1) < 2
        a_boot[failed], b_boot[failed] = np.nan, np.nan
        samples = {coef: np.exp(a_boot), "exponent": b_boot}
        fit.extra["failed_resamples"] = int(failed.sum())
    fit = _with_intervals(fit, samples, units, np.arange(units), 2)
    fit.extra.update(ci_method=f"run-level bootstrap over {units} runs: runs redrawn, every profile and its "
                               f"minimum ({method or 'as fitted'}) rebuilt, the exponent refitted",
                     weights="1/s² of each log optimum over the resamples (s = IQR/1.349)"
                     if resampled is not None else "as given")
    return fit


def optimum_weights(resampled) -> np.ndarray:
    """1/s² of each budget's log optimum, s its spread over the bootstrap resamples measured robustly
    (interquartile range / 1.349, the standard deviation of a normal distribution): a resample that
    left a profile few sizes throws its vertex far, and a variance would let those few decide. 0 for
    a budget whose optimum was found in fewer than 2 resamples."""
    weights = np.zeros(resampled.shape[1])
    for j, column in enumerate(resampled.T):
        column = column[np.isfinite(column)]
        if len(column) > 1:
            q25, q75 = np.percentile(column, [25, 75])
            weights[j] = 1.0 / ((q75 - q25) / 1.349) ** 2 if q75 > q25 else 0.0
    return weights


def _line_fit(law, params, boot, n, groups) -> Fit:
    params = {k: float(v) for k, v in params.items()}
    f = _with_intervals(Fit(law, params, {}, n), boot, n, groups, 2)
    if groups is not None:
        f.extra["ci_method"] = (f"wild cluster bootstrap-t over {_independent(n, groups)} independent groups of "
                                "points (runs): Webb weights by run, cluster-robust standard errors")
    return f


def _with_intervals(f: Fit, samples: dict, n, groups, n_params) -> Fit:
    """The fit's bootstrap samples and their percentile intervals, or, where its independent units
    are too few (interval_identified), the explicit state no_interval saying how many would give one."""
    f.extra["ci_method"] = _ci_method(n, groups)
    units = _independent(n, groups)
    if not interval_identified(units, n_params):
        unit = "runs" if groups is not None else "points"
        f.extra["no_interval"] = (f"too few {unit} for an interval: {units} independent {unit} for {n_params} "
                                  f"constants; {n_params + MIN_SPARE} or more give one")
        return f
    if samples and len(next(iter(samples.values()))):
        f.samples, f.ci = samples, bootstrap_ci(samples)
    return f


def interval_identified(units: int, n_params: int) -> bool:
    return units - n_params >= MIN_SPARE


# ---------------------------------------------------------------- vectorised L-BFGS


def lbfgs_batch(fg, x0, max_iter=1000, memory=10, ftol=1e-13, gtol=1e-9):
    """Minimise K independent problems at once by L-BFGS with backtracking line search.

    fg(x, rows) -> (f (k,), g (k, P)) evaluates the problems numbered `rows` at x (k, P).
    Returns x (K, P) and f (K,). A problem stops when its objective changes by less than
    ftol (relative) or its largest gradient component falls below gtol.
    """
    x = np.array(x0, dtype=float)
    K, P = x.shape
    rows = np.arange(K)
    f, g = fg(x, rows)
    s_hist, y_hist = np.zeros((memory, K, P)), np.zeros((memory, K, P))
    rho = np.zeros((memory, K))
    for _ in range(max_iter):
        if rows.size == 0:
            break
        d = _two_loop(g[rows], s_hist[:, rows], y_hist[:, rows], rho[:, rows])
        slope = (d * g[rows]).sum(1)
        uphill = slope >= 0  # a stale curvature pair: restart from steepest descent
        if uphill.any():
            d[uphill] = -g[rows][uphill]
            rho[:, rows[uphill]] = 0.0
            slope = (d * g[rows]).sum(1)
        x_new, f_new, g_new, found = _backtrack(fg, x[rows], f[rows], slope, d, rows)
        s, y = x_new - x[rows], g_new - g[rows]
        sy = (s * y).sum(1)
        s_hist[:, rows], y_hist[:, rows], rho[:, rows] = (
            np.roll(s_hist[:, rows], 1, 0), np.roll(y_hist[:, rows], 1, 0), np.roll(rho[:, rows], 1, 0))
        curved = sy > 1e-10 * np.linalg.norm(s, axis=1) * np.linalg.norm(y, axis=1) + 1e-300
        s_hist[0, rows], y_hist[0, rows] = s, y
        rho[0, rows] = np.divide(1.0, sy, out=np.zeros_like(sy), where=curved)
        done = ~found | (np.abs(f[rows] - f_new) <= ftol * np.maximum(np.abs(f_new), 1.0)) \
            | (np.abs(g_new).max(1) <= gtol)
        x[rows], f[rows], g[rows] = x_new, f_new, g_new
        rows = rows[~done]
    return x, f


def _two_loop(g, s_hist, y_hist, rho):
    """L-BFGS direction -H·g for each row; unused memory slots have rho = 0."""
    q = g.copy()
    alpha = np.zeros(rho.shape)
    for i in range(len(rho)):  # newest first
        alpha[i] = rho[i] * (s_hist[i] * q).sum(1)
        q -= alpha[i, :, None] * y_hist[i]
    # initial Hessian s·y / y·y from the newest pair; a short first step without one
    sy, yy = (s_hist[0] * y_hist[0]).sum(1), (y_hist[0] * y_hist[0]).sum(1)
    has_pair = (rho[0] > 0) & (yy > 0)
    scale = np.where(has_pair, sy / np.where(has_pair, yy, 1.0),
                     1.0 / np.maximum(np.linalg.norm(g, axis=1), 1.0))
    r = scale[:, None] * q
    for i in reversed(range(len(rho))):
        beta = rho[i] * (y_hist[i] * r).sum(1)
        r += (alpha[i] - beta)[:, None] * s_hist[i]
    return -r


def _backtrack(fg, x, f, slope, d, rows, c1=1e-4, max_halvings=40):
    """Armijo backtracking from step 1 for each row; `found` is False where none was found."""
    x_new, f_new, g_new = x.copy(), f.copy(), np.zeros_like(x)
    found = np.zeros(len(x), bool)
    step = np.ones(len(x))
    todo = np.arange(len(x))
    for _ in range(max_halvings):
        trial = x[todo] + step[todo, None] * d[todo]
        ft, gt = fg(trial, rows[todo])
        ok = np.isfinite(ft) & (ft <= f[todo] + c1 * step[todo] * slope[todo])
        hit = todo[ok]
        x_new[hit], f_new[hit], g_new[hit], found[hit] = trial[ok], ft[ok], gt[ok], True
        todo = todo[~ok]
        if todo.size == 0:
            break
        step[todo] *= 0.5
    return x_new, f_new, g_new, found


# ---------------------------------------------------------------- Huber fits on log-loss


def _huber(r, delta):
    """Huber loss of residuals r and its derivative."""
    slope = np.clip(r, -delta, delta)
    return slope * (r - 0.5 * slope), slope


def _huber_objective(predict, X, log_y, delta, weights=None):
    """fg(theta, rows) for lbfgs_batch: Huber sum of log-loss residuals; log_y is (1, n) for
    one data set shared by all rows, or (K, n) with one data set per row; weights (K, n), when
    given, weigh each row's points (a case bootstrap's counts).
    predict(theta (k, P), X) -> (log L (k, n), d log L / d theta (P, k, n))."""

    def fg(theta, rows):
        with np.errstate(over="ignore", invalid="ignore"):
            pred, jac = predict(theta, X)
            loss, dloss = _huber(pred - (log_y if len(log_y) == 1 else log_y[rows]), delta)
        if weights is not None:
            loss, dloss = loss * weights[rows], dloss * weights[rows]
        f = loss.sum(1)
        g = np.einsum("kn,pkn->kp", dloss, jac)
        bad = ~np.isfinite(f) | ~np.isfinite(g).all(1)
        f[bad], g[bad] = np.inf, 0.0
        return f, g

    return fg


def _log_sum_exp(z):
    """log Σ_i exp(z_i) for z (m, k, n) and the softmax weights p (m, k, n); z is reused.
    The small term axis comes first so that each reduction is an elementwise operation."""
    top = np.maximum.reduce(z, axis=0)
    np.exp(np.subtract(z, top, out=z), out=z)
    total = z.sum(0)
    z /= total
    return top + np.log(total), z


def _sum_of_powers(n_terms, floor):
    """log L for L = [exp(e)] + Σ_i exp(a_i) / x_i^alpha_i; theta = (a_1.., alpha_1.., [e]);
    X = (log x_1, ..) each (n,). Returns predict(theta, X) for _huber_objective."""

    def predict(theta, X):
        z = np.empty((n_terms + floor, len(theta), np.shape(X[0])[-1]))  # X may be (n,) or per row (k, n)
        for i, logx in enumerate(X):
            z[i] = theta[:, i, None] - theta[:, n_terms + i, None] * logx
        if floor:
            z[-1] = theta[:, -1, None]
        log_L, p = _log_sum_exp(z)
        jac = np.empty((theta.shape[1],) + log_L.shape)
        for i, logx in enumerate(X):
            jac[i] = p[i]
            jac[n_terms + i] = -p[i] * logx
        if floor:
            jac[-1] = p[-1]
        return log_L, jac

    return predict


def _kaplan_nd(theta, X):
    """log L of eq. 1.5, theta = (alpha_N, alpha_D, log N_c, log D_c), X = (log N, log D)."""
    alpha_N, alpha_D, cN, cD = (t[:, None] for t in theta.T)
    lN, lD = X
    u = alpha_N / alpha_D * (cN - lN)
    s, p = _log_sum_exp(np.stack([u, cD - lD]))
    pu, pv = p
    return alpha_D * s, np.stack([pu * (cN - lN), s - pu * u, pu * alpha_N, alpha_D * pv])


def _plus_floor(predict):
    """predict(theta, X) for log(L_inf + L) from predict for log L; theta's last entry is log L_inf."""

    def with_floor(theta, X):
        log_L, jac = predict(theta[:, :-1], X)
        total, p = _log_sum_exp(np.stack([log_L, np.broadcast_to(theta[:, -1:], log_L.shape)]))
        return total, np.concatenate([p[0] * jac, p[1][None]])

    return with_floor


def _floor_starts(starts, loss):
    """Each start with each starting log L_inf below the lowest loss (as fit_power_law's floor starts)."""
    floors = np.log(np.min(loss)) + np.array([-3.0, -1.0, -0.3])
    return np.array([[*start, e] for start in starts for e in floors])


# A grid of more starts than SCREEN_FROM (Chinchilla's 4,500) is screened: every start runs SCREEN_ITERATIONS of
# L-BFGS, and the lowest SCREEN_SHARE of them (at least SCREEN_KEPT) go on to convergence. On Epoch's points, on
# 320 points of the data-constrained law and on kaplan_cpu the Chinchilla fit ends at the same theta (to 1e-7)
# 2-5x sooner: a tenth of its starts wander for the full 1,000 iterations, and none of those is the best. Smaller
# grids are not screened: L(N, D) with a floor's 243 starts, screened so, missed kaplan_cpu's best minimum.
SCREEN_FROM, SCREEN_ITERATIONS, SCREEN_SHARE, SCREEN_KEPT = 1000, 30, 0.05, 20


def _minimise_from_starts(objective, starts):
    if len(starts) <= SCREEN_FROM:
        return lbfgs_batch(objective, starts)
    theta, f = lbfgs_batch(objective, starts, max_iter=SCREEN_ITERATIONS)
    kept = np.argsort(np.where(np.isfinite(f), f, np.inf))[: max(SCREEN_KEPT, int(SCREEN_SHARE * len(starts)))]
    return lbfgs_batch(objective, theta[kept])


def huber_fit(predict, X, log_y, starts, n_boot=N_BOOT, seed=0, delta=HUBER_DELTA, groups=None):
    """Best theta over all starts (vectorised L-BFGS, then polished by scipy's L-BFGS-B)
    and the thetas of n_boot bootstrap resamples (n_boot, P), each started from the best:
    resampled residuals when the points are independent (groups None), else whole groups of
    points (case_weights)."""
    objective = _huber_objective(predict, X, log_y[None], delta)
    theta, f = _minimise_from_starts(objective, starts)
    best = theta[np.nanargmin(f)]
    one = np.zeros(1, int)
    res = minimize(lambda t: objective(t[None], one)[0][0], best, method="L-BFGS-B",
                   jac=lambda t: objective(t[None], one)[1][0])
    best = res.x if res.fun <= f.min() else best
    if not n_boot:
        return best, np.empty((0, len(best)))
    if groups is None:
        fitted = predict(best[None], X)[0][0]
        resampled = _huber_objective(predict, X, residual_resamples(fitted, log_y, len(best), n_boot, seed), delta)
    else:
        resampled = _huber_objective(predict, X, log_y[None], delta, case_weights(groups, n_boot, seed))
    boot, _ = lbfgs_batch(resampled, np.repeat(best[None], n_boot, 0))
    return best, boot


def _grid(*axes):
    return np.array(list(product(*axes)), dtype=float)


def _columns(law, *arrays, groups=None):
    """The points where every input is finite and positive, and their groups."""
    arrays = [np.asarray(a, float) for a in arrays]
    if len({a.shape for a in arrays}) != 1 or (groups is not None and len(groups) != len(arrays[0])):
        raise FitError(f"{law}: inputs of different lengths")
    finite = np.all([np.isfinite(a) & (a > 0) for a in arrays], axis=0)
    return [a[finite] for a in arrays], (None if groups is None else np.asarray(groups)[finite])


def _independent(n, groups) -> int:
    """How many independent units the points are: the degrees of freedom of the intervals."""
    return n if groups is None else len(np.unique(groups))


def _ci_method(n, groups) -> str:
    if groups is None:
        return f"smoothed residual bootstrap over {n} independent points"
    return f"case bootstrap over {_independent(n, groups)} independent groups of points (runs or points)"


def _make_fit(law, theta, boot, to_params, n, groups=None):
    params = {k: float(v[0]) for k, v in to_params(theta[None]).items()}
    return _with_intervals(Fit(law, params, {}, n), to_params(boot) if len(boot) else {}, n, groups, len(theta))


def _boot_count(n_boot, n, groups, n_params) -> int:
    """n_boot, or 0 where the fit's units are too few for an interval (no resamples to waste time on)."""
    return n_boot if interval_identified(_independent(n, groups), n_params) else 0


VANISHED_FLOOR = 1e-3  # a floor below this share of the lowest loss explains none of it


def _flag_vanished_floor(f: Fit, floor: str, loss) -> Fit:
    """A floor fitted to ~0 means the points show no irreducible loss: the law has reduced to
    its form without one, and the floor's interval (stuck at ~0) says nothing."""
    if f.params[floor] < VANISHED_FLOOR * np.min(loss):
        f.extra["floor_vanished"] = True
        f.warn(f"{floor} -> 0 ({f.params[floor]:.2g} nats/token): these points show no irreducible loss, "
               f"so {floor} and its interval are not determined (the models may be far from converged)")
    return f


# Grids of starting points. Chinchilla's is the one of Hoffmann et al. 2022 as replicated
# by Besiroglu et al. 2024: 5·5·5·6·6 = 4500 starts.
CHINCHILLA_GRID = _grid(np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5),
                        np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5))  # a, b, e, alpha, beta


def fit_chinchilla(N, D, loss, n_boot=N_BOOT_HUBER, seed=0, starts=CHINCHILLA_GRID, groups=None) -> Fit:
    """Hoffmann et al. 2022 approach 3: E + A/N^alpha + B/D^beta, Huber on log-loss.
    theta = (log A, log B, log E, alpha, beta)."""
    (N, D, loss), groups = _columns("chinchilla", N, D, loss, groups=groups)
    _check_points(len(loss), 5, "chinchilla")
    theta = starts[:, [0, 1, 3, 4, 2]]  # grid order -> (a, b, alpha, beta, e)
    n_boot = _boot_count(n_boot, len(loss), groups, 5)
    best, boot = huber_fit(CHINCHILLA_PREDICT, (np.log(N), np.log(D)), np.log(loss), theta, n_boot, seed,
                           groups=groups)
    fitted = _make_fit("chinchilla", best, boot, chinchilla_params, len(loss), groups)
    return _flag_vanished_floor(fitted, "E", loss)


CHINCHILLA_PREDICT = _sum_of_powers(2, floor=True)  # theta = (log A, log B, alpha, beta, log E)


def chinchilla_params(t):
    """Chinchilla's constants from thetas (k, 5) of CHINCHILLA_PREDICT."""
    return {"E": np.exp(t[:, 4]), "A": np.exp(t[:, 0]), "B": np.exp(t[:, 1]), "alpha": t[:, 2], "beta": t[:, 3]}


def _fit_power_law_with_floor(x, loss, var, n_boot, seed, groups, law) -> Fit:
    """Least squares on log-loss (the line of the pure form is least squares too), from a grid of starts.
    Independent points get the smoothed residual bootstrap, points grouped by run the case bootstrap of
    runs. On 8-12 sizes with 1% noise the Huber fit of the other laws (delta 1e-3: nearly least absolute
    deviations, which passes through some points exactly) covered 86.5-87% by a case bootstrap and 85.5% by
    a residual one; least squares with the residual bootstrap covers 92.5% (docs/intervals.md)."""
    (x, loss), groups = _columns(law, x, loss, groups=groups)
    _check_points(len(loss), 3, law)
    # the power term starts near the largest loss at the smallest x, the floor below the lowest
    starts = _grid([np.log(loss.max())], np.linspace(0.05, 1.5, 7),
                   np.log(loss.min()) + np.array([-3.0, -1.0, -0.3]))  # a, alpha, e
    starts[:, 0] += starts[:, 1] * np.log(x.min())
    n_boot = _boot_count(n_boot, len(loss), groups, 3)
    best, boot = huber_fit(_sum_of_powers(1, floor=True), (np.log(x),), np.log(loss), starts, n_boot, seed,
                           delta=LEAST_SQUARES_DELTA, groups=groups)

    def to_params(t):
        return {f"{var}_c": np.exp(t[:, 0] / t[:, 1]), f"alpha_{var}": t[:, 1], "L_inf": np.exp(t[:, 2])}

    return _flag_vanished_floor(_make_fit(law, best, boot, to_params, len(loss), groups), "L_inf", loss)


def fit_kaplan_nd(N, D, loss, n_boot=N_BOOT_HUBER, seed=0, groups=None, floor=False) -> Fit:
    """Eq. 1.5: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, or with floor=True the same plus
    an irreducible L_inf (Henighan et al. 2020's additive form), Huber on log-loss; independent
    points (groups None) are resampled whole, the bootstrap whose coverage docs/intervals.md measures."""
    (N, D, loss), groups = _columns("L_ND", N, D, loss, groups=groups)
    groups = np.arange(len(loss)) if groups is None else groups
    _check_points(len(loss), 4 + floor, "L_ND")
    alphas = (0.03, 0.1, 0.3)
    starts = _grid(alphas, alphas, np.log(N.max()) + np.array([2.0, 10.0, 30.0]),
                   np.log(D.max()) + np.array([2.0, 10.0, 30.0]))
    predict = _plus_floor(_kaplan_nd) if floor else _kaplan_nd
    starts = _floor_starts(starts, loss) if floor else starts
    n_boot = _boot_count(n_boot, len(loss), groups, 4 + floor)
    best, boot = huber_fit(predict, (np.log(N), np.log(D)), np.log(loss), starts, n_boot, seed, groups=groups)

    def to_params(t):
        return {"N_c": np.exp(t[:, 2]), "D_c": np.exp(t[:, 3]), "alpha_N": t[:, 0], "alpha_D": t[:, 1],
                **({"L_inf": np.exp(t[:, 4])} if floor else {})}

    return _floor_checked(_make_fit("L_ND", best, boot, to_params, len(loss), groups), floor, loss)


def fit_kaplan_ns(N, S_min, loss, n_boot=N_BOOT_HUBER, seed=0, groups=None, floor=False) -> Fit:
    """Eq. 1.6: L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S, or with floor=True the same plus
    an irreducible L_inf (Henighan et al. 2020's additive form), Huber on log-loss."""
    (N, S_min, loss), groups = _columns("L_NS", N, S_min, loss, groups=groups)
    _check_points(len(loss), 4 + floor, "L_NS")
    alphas = (0.05, 0.2, 0.6, 1.2)
    lo = np.log(loss.min())
    starts = _grid(lo + np.array([0.0, 3.0]), lo + np.array([0.0, 3.0]), alphas, alphas)
    starts[:, 0] += starts[:, 2] * np.log(np.median(N))  # a_i = log(term) + alpha_i·log x
    starts[:, 1] += starts[:, 3] * np.log(np.median(S_min))
    starts = _floor_starts(starts, loss) if floor else starts
    predict = _sum_of_powers(2, floor=floor)
    n_boot = _boot_count(n_boot, len(loss), groups, 4 + floor)
    best, boot = huber_fit(predict, (np.log(N), np.log(S_min)), np.log(loss), starts, n_boot, seed, groups=groups)

    def to_params(t):
        return {"N_c": np.exp(t[:, 0] / t[:, 2]), "S_c": np.exp(t[:, 1] / t[:, 3]),
                "alpha_N": t[:, 2], "alpha_S": t[:, 3], **({"L_inf": np.exp(t[:, 4])} if floor else {})}

    return _floor_checked(_make_fit("L_NS", best, boot, to_params, len(loss), groups), floor, loss)


def _floor_checked(f: Fit, floor: bool, loss) -> Fit:
    return _flag_vanished_floor(f, "L_inf", loss) if floor else f


def _batch_tradeoff(target):
    """predict(theta, X) for log S = log S_min_j + log(1 + B_crit(L_j)/B), eq. 5.1 with
    B_crit from eq. 1.4: theta = (log B*, 1/alpha_B, log S_min_1..J), X = (log L_j, log B)
    per point; target (n,) numbers each point's target loss j."""
    onehot = np.eye(target.max() + 1)[target].T  # (J, n)

    def predict(theta, X):
        log_L, log_B = X
        z = theta[:, :1] - theta[:, 1:2] * log_L - log_B
        sigmoid = 1.0 / (1.0 + np.exp(-z))
        log_S = theta[:, 2:] @ onehot + np.logaddexp(0.0, z)
        jac = np.concatenate([sigmoid[None], (-sigmoid * log_L)[None],
                              np.broadcast_to(onehot[:, None], (len(onehot),) + z.shape)])
        return log_S, jac

    return predict


def fit_critical_batch(target_loss, batch_tokens, steps, n_boot=N_BOOT_HUBER, seed=0, groups=None) -> Fit:
    """B_crit(L) = B*/L^(1/alpha_B) (eq. 1.4) from the steps S each batch size B (tokens)
    needed to reach each target loss L: every target's points lie on the hyperbola
    (S/S_min - 1)(E/E_min - 1) = 1 with E = B·S (eq. 5.1), i.e. S = S_min·(1 + B_crit/B).
    All targets are fitted together, Huber on log S; extra["targets"] lists S_min, E_min and
    B_crit per target with their CIs. groups: the run each crossing comes from (a run's crossings
    share its noise: whole runs are resampled); None for independent points."""
    (target_loss, batch_tokens, steps), groups = _columns("B_crit", target_loss, batch_tokens, steps, groups=groups)
    losses, target = np.unique(target_loss, return_inverse=True)
    if len(losses) < 2 or any(len(np.unique(batch_tokens[target == j])) < 2 for j in range(len(losses))):
        raise FitError("B_crit: need at least 2 target losses, each reached at 2 or more batch sizes")
    _check_points(len(steps), 2 + len(losses), "B_crit")
    log_S_floor = [np.log(steps[target == j].min()) - 0.5 for j in range(len(losses))]
    ks = (2.0, 5.0, 10.0)
    starts = np.array([[np.log(B) + k * np.log(np.median(losses)), k, *log_S_floor]
                       for k in ks for B in np.quantile(batch_tokens, (0.1, 0.5, 0.9))])
    X = (np.log(losses)[target], np.log(batch_tokens))
    n_boot = _boot_count(n_boot, len(steps), groups, len(starts[0]))
    best, boot = huber_fit(_batch_tradeoff(target), X, np.log(steps), starts, n_boot, seed, groups=groups)
    fit = _make_fit("B_crit", best, boot, lambda t: {"B_star": np.exp(t[:, 0]), "alpha_B": 1.0 / t[:, 1]},
                    len(steps), groups)
    fit.extra["targets"] = [_target_row(L, j, best, boot if fit.samples else boot[:0]) for j, L in enumerate(losses)]
    return fit


def _target_row(L, j, best, boot):
    """S_min, E_min (tokens) and B_crit (tokens) at one target loss, with CIs."""

    def values(t):
        B_crit = np.exp(t[:, 0] - t[:, 1] * np.log(L))
        S_min = np.exp(t[:, 2 + j])
        return {"S_min": S_min, "E_min": B_crit * S_min, "B_crit": B_crit}

    estimates = {k: float(v[0]) for k, v in values(best[None]).items()}
    row = {"loss": float(L), **estimates}
    if len(boot):
        row["ci"] = {k: list(v) for k, v in bootstrap_ci(values(boot)).items()}
    return row


def goodness(fitted: Fit, inputs, observed) -> dict:
    """RMSE of the log residuals over the points fitted (finite and positive), and the residuals
    themselves (log observed - log predicted) for the report's residual panel."""
    (*inputs, observed), _ = _columns(fitted.law, *inputs, observed)
    residuals = np.log(observed) - np.log(fitted.predict(*inputs))
    return {"rmse_log": float(np.sqrt(np.mean(residuals ** 2))), "x": [float(v) for v in inputs[0]],
            "residuals": [float(r) for r in residuals]}


def rolling_check(fitter, inputs, loss, min_values=3) -> list[dict]:
    """How well small runs predict the next larger: for every k from min_values, fit on the points
    at the k smallest values of the first input (sizes or budgets) and predict those at the next;
    each row gives the mean absolute relative error of that prediction. fitter(*inputs, loss,
    n_boot=0) -> Fit; fits that fail on too few points are left out."""
    inputs, loss = [np.asarray(x, float) for x in inputs], np.asarray(loss, float)
    values = np.unique(inputs[0][np.isfinite(inputs[0])])
    rows = []
    for k in range(min_values, len(values)):
        keep, target = inputs[0] <= values[k - 1], inputs[0] == values[k]
        try:
            small = fitter(*(x[keep] for x in inputs), loss[keep], n_boot=0)
        except FitError:
            continue
        rel = small.predict(*(x[target] for x in inputs)) / loss[target] - 1
        rows.append({"fitted_up_to": float(values[k - 1]), "predicted": float(values[k]), "n_values_fitted": k,
                     "mean_abs_rel_error": float(np.mean(np.abs(rel)))})
    return rows


# sizes held out where this many are left to fit on (as many as a law of N and D or S has constants)
HELD_OUT_SIZES, HELD_OUT_FIT_SIZES = 2, 4


def held_out_check(fitter, inputs, loss, share=0.1) -> dict:
    """Fit on all but the largest models and report the relative error of the predicted loss,
    L_pred/L - 1, of the held-out points, and their observed and predicted values ("loss" is
    whatever the law predicts: an allocation law's N_opt too). Held out: the largest `share` of
    distinct values of the first input, at least HELD_OUT_SIZES where HELD_OUT_FIT_SIZES are left
    to fit on (one size extrapolated says little of a trend), else one. fitter(*inputs, loss,
    n_boot=0) -> Fit."""
    inputs = [np.asarray(x, float) for x in inputs]
    loss = np.asarray(loss, float)
    sizes = np.unique(inputs[0])
    least = HELD_OUT_SIZES if len(sizes) >= HELD_OUT_SIZES + HELD_OUT_FIT_SIZES else 1
    n_held = max(least, int(np.ceil(share * len(sizes))))
    cut = sizes[-n_held]
    keep = inputs[0] < cut
    if len(np.unique(inputs[0][keep])) < 2:
        raise FitError(f"held-out check: only {len(np.unique(inputs[0][keep]))} sizes left to fit on")
    fit = fitter(*(x[keep] for x in inputs), loss[keep], n_boot=0)
    predicted = fit.predict(*(x[~keep] for x in inputs))
    rel = predicted / loss[~keep] - 1
    return {"held_out_from": float(cut), "n_fit": int(keep.sum()), "n_held_out": int((~keep).sum()),
            "sizes_held_out": n_held,
            "mean_abs_rel_error": float(np.mean(np.abs(rel))),
            "max_abs_rel_error": float(np.max(np.abs(rel))), "rel_error": [float(r) for r in rel],
            "observed": [float(v) for v in loss[~keep]], "predicted": [float(v) for v in predicted]}


def critical_batch_held_out(target_loss, batch_tokens, steps, groups=None, share=0.1) -> dict:
    """B_crit(L)'s held-out check: fitted on all but the lowest `share` of the target losses (at least
    one; lower losses are the longer training the law extrapolates to), its B_crit at each held-out
    target against the B_crit that target's own crossings give alone (eq. 5.1 as S = S_min + E_min/B,
    least squares in relative error of S). The error is B_crit's, as an allocation law's is N_opt's."""
    L, B, S = (np.asarray(x, float) for x in (target_loss, batch_tokens, steps))
    losses = np.unique(L)
    n_held = max(1, int(np.ceil(share * len(losses))))
    if len(losses) - n_held < 2:
        raise FitError(f"held-out check: {len(losses)} target losses; needs 3 or more")
    held = L <= losses[n_held - 1]
    fitted = fit_critical_batch(L[~held], B[~held], S[~held], n_boot=0,
                                groups=None if groups is None else np.asarray(groups)[~held])
    observed = np.array([_own_critical_batch(B[L == t], S[L == t]) for t in losses[:n_held]])
    predicted = fitted.predict(losses[:n_held])
    rel = predicted / observed - 1
    return {"held_out_from": float(losses[n_held - 1]), "direction": "≤", "n_fit": int((~held).sum()),
            "n_held_out": int(held.sum()), "sizes_held_out": n_held,
            "mean_abs_rel_error": float(np.mean(np.abs(rel))), "max_abs_rel_error": float(np.max(np.abs(rel))),
            "rel_error": [float(r) for r in rel], "observed": [float(v) for v in observed],
            "predicted": [float(v) for v in predicted]}


def _own_critical_batch(batch_tokens, steps) -> float:
    """B_crit = E_min/S_min of one target's crossings, S = S_min + E_min/B fitted by least squares in
    relative error; infinity where S falls as 1/B throughout (S_min <= 0), 0 where it does not fall."""
    if len(np.unique(batch_tokens)) < 2:
        raise FitError("held-out check: a held-out target loss reached at fewer than 2 batch sizes")
    design = np.stack([np.ones_like(steps), 1.0 / batch_tokens], axis=1) / steps[:, None]
    S_min, E_min = np.linalg.lstsq(design, np.ones_like(steps), rcond=None)[0]
    if S_min <= 0:
        return float("inf")
    return max(float(E_min / S_min), 0.0)
