"""Hyperparameter laws: the optimal peak learning rate and batch size of each (N, D), and power laws for them.

A grid of runs (columns N, D, lr, batch, loss and optionally loss_smoothed, which is used when given)
falls into cells of one (N, D). In each cell (:func:`cell_optimum`):
- the optimum is the lowest point, inside the grid's range, of a surface of log loss in (log lr, log batch):
  quadratic, plus a cubic term in log lr where the cell has 5 or more LRs, fitted by weighted least squares
  with each run weighted by exp(-(L/L_best - 1)/SURFACE_WINDOW), so that runs far up the walls (a
  diverging LR) weigh nothing. Chosen by simulation (tests/analysis/test_hparams.py,
  test_the_surface_form_is_chosen_by_simulation; 5 LRs x 3 batches a factor 2 apart, 0.3% noise): on a
  valley steeper on the high-LR side (loss excess 0.02 u² exp(0.3 u), u = log(lr/lr*)) the RMSE of log lr*
  is 0.06 with the cubic term against 0.12 for a quadratic at its best window (1%) and 0.21 for a quadratic
  over the whole grid, which leans to the flatter low-LR side; on a symmetric valley 0.057 against 0.024.
  Real LR valleys are asymmetric (the steep side is divergence), so the cubic term is the default.
  A minimum on the grid's edge is flagged: that cell bounds its optimum, and the laws leave it out.
- the near-optimal region: the runs within 0.25% of the cell's best loss, as DeepSeek-AI 2024
  (DeepSeek LLM, arXiv 2401.02954, sec. 3.1) defines it.
- intervals: a bootstrap of the cell's runs (stratified by batch size, so that every resample keeps the
  grid's batch sizes), the surface refitted on each resample.

Laws (:data:`HPARAM_LAWS`), each by weighted least squares in log-log, weights 1/Var(log optimum):
- Li et al. 2025 ("Predictable Scale: Part I, Step Law", arXiv 2503.04715): eta*(N, D) = a N^alpha D^beta
  and B*(D) = b D^gamma (published: 1.79 N^-0.713 D^0.307 and 0.58 D^0.571, B in tokens).
- DeepSeek-AI 2024 sec. 3.1: eta*(C) = a C^alpha and B*(C) = b C^beta (published: 0.3118 C^-0.1250 and
  0.2920 C^0.3271). DeepSeek count C = M·D with M the non-embedding FLOPs per token, attention included;
  here C = 6·N·D with N as the grid counts it (a grid of (N, D) has no shapes to count M from), which is
  M·D without the attention term 6·n_layer·n_ctx·d_model per token.
Intervals: bootstrap replicate k of every cell (its runs resampled) gives a set of optima, and the law
fitted to them replicate k of its constants, so each cell's own uncertainty propagates; when the optima
scatter about the law more than those uncertainties say (reduced chi-square > 1), the replicates'
spread is widened by sqrt(chi-square) (the Birge ratio); then fit.bootstrap_ci (percentiles). Checks: fit.held_out_check
and fit.rolling_check on the largest sizes, and :func:`prediction_check`: the laws fitted without the largest
size predict its optimal LR (as a factor) and the loss at the predicted (LR, batch) on that size's surface.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from scaling_sweep.analysis import fit
from scaling_sweep.analysis.fit import Fit, FitError
from scaling_sweep.analysis.points import gap_groups
from scaling_sweep.analysis.runs import Sweep, check_one_setting
from scaling_sweep.core import accounting, laws
from scaling_sweep.core.errors import UserError
from scaling_sweep.core.hparam_laws import (
    HPARAM_LAWS,
    PREFERRED,
    design,
    law_value,
    optimal_hparams,  # noqa: F401  (here too: training reads it from core)
    theta,
)
from scaling_sweep.core.runfiles import finite

NEAR_OPTIMAL = 0.0025  # DeepSeek LLM sec. 3.1: within 0.25% of the best loss
SURFACE_WINDOW = 0.05  # relative loss excess at which a run's weight in the surface fit falls by e
MIN_VALUES = 3  # distinct values an axis needs for a quadratic in it
CUBIC_FROM = 5  # learning rates a cell needs for a cubic term in log lr
TAME = 3.0  # robust standard deviations a cell's bootstrap replicate may lie from its optimum (Cell.tamed_samples)
GRID_POINTS = 61  # batch sizes over the grid's range at which the surface's minimum in log lr is found
COMPUTE_CONVENTION = ("C = 6·N·D FLOPs with N as the grid counts it (DeepSeek LLM counts C = M·D, M the "
                      "non-embedding FLOPs per token with attention; 6N leaves out 6·n_layer·n_ctx·d_model)")


class HparamsError(UserError):
    """A grid or targets file that cannot be read; the message names file, row and column."""


class HparamFit(Fit):
    """A fitted hyperparameter law; predict(N, D) whatever its variables are."""

    def predict(self, N, D):
        return law_value(self.law, self.params, N, D)

    def predict_samples(self, N, D) -> np.ndarray:
        """(n_boot, n): the prediction of every bootstrap replicate of the constants."""
        return np.exp(theta(HPARAM_LAWS[self.law], self.samples) @ design(HPARAM_LAWS[self.law], N, D).T)


# ---------------------------------------------------------------- files


def _read_columns(path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The named columns of a CSV (header names matched case-insensitively), every cell a positive finite
    number; HparamsError names file, row (as a spreadsheet numbers it, header row 1) and column otherwise."""
    path = Path(path)
    if not path.is_file():
        raise HparamsError(f"{path}: no such file")
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        rows = list(reader)
    if not rows:
        raise HparamsError(f"{path}: no rows")
    where = {name.lower(): i for i, name in reversed(list(enumerate(header)))}
    missing = [name for name in required if name.lower() not in where]
    if missing:
        raise HparamsError(f"{path}: needs columns {', '.join(required)}; lacks {', '.join(missing)} "
                           f"(found {', '.join(header) or 'no header'})")
    columns = {}
    for name in required + tuple(o for o in optional if o.lower() in where):
        i = where[name.lower()]
        cells = [row[i] if i < len(row) else "" for row in rows]
        columns[name] = np.array([_number(path, line + 2, header[i], text) for line, text in enumerate(cells)])
    return columns


def _number(path, row: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise HparamsError(f"{path} row {row}, column {column}: {text!r} is not a number") from None
    if not np.isfinite(value) or value <= 0:
        raise HparamsError(f"{path} row {row}, column {column}: {text!r} must be a positive finite number")
    return value


def read_grid(path) -> tuple[dict[str, np.ndarray], str]:
    """A grid of runs: N, D, lr, batch, loss and, where the file has it, loss_smoothed; and the batch's unit.
    A column batch_tokens instead of batch says the batch is in tokens (the published laws' unit)."""
    table = _read_columns(path, ("N", "D", "lr", "loss"), ("batch", "batch_tokens", "loss_smoothed"))
    if "batch" in table:
        return table, "the grid's own unit (a column batch_tokens would say tokens)"
    if "batch_tokens" not in table:
        raise HparamsError(f"{path}: needs a column batch (or batch_tokens: batch in tokens)")
    table["batch"] = table.pop("batch_tokens")
    return table, "tokens"


GRID_COLUMNS = ("N", "D", "lr", "batch", "loss")
BUDGET_MATCH = 0.02  # runs of one size within this share of each other's tokens trained to one budget


def grid_from_sweep(sweep: Sweep) -> dict[str, np.ndarray]:
    """A sweep's runs as a grid: each finished run's end and each of its wsd cooldown branches is a run of
    (N non-embedding, D its tokens, its peak LR, its batch in tokens, its final validation loss in nats/token)."""
    runs = sweep.usable()
    if not runs:
        raise HparamsError(f"{sweep.path}: no finished runs to fit ({len(sweep.runs)} run folders)")
    check_one_setting(runs)
    rows = []
    for run in runs:
        s = run.summary
        rows += [(s.N, c["tokens"], s.lr, s.batch_tokens, c["val_loss"]) for c in s.cooldowns if finite(c["val_loss"])]
        rows.append((s.N, s.tokens, s.lr, s.batch_tokens, s.final_val_loss))
    table = dict(zip(GRID_COLUMNS, np.array(rows, float).T))
    table["D"] = _budget_tokens(table["N"], table["D"])
    return table


def _budget_tokens(N, D, within: float = BUDGET_MATCH) -> np.ndarray:
    """D with the runs of one size whose tokens differ by less than `within` (a budget ends at a whole step,
    so batches of different sizes overshoot it by different tokens) put at their median: one cell."""
    D = D.copy()
    for n in np.unique(N):
        rows = np.flatnonzero(N == n)
        for group in gap_groups(D[rows], 1 + within):
            D[rows[group]] = np.median(D[rows[group]])
    return D


def grid_csv(table: dict[str, np.ndarray], batch_unit: str) -> str:
    """The grid as a file analyze --hparams reads again (its batch column says the unit, as read_grid reads it)."""
    header = [c if c != "batch" or batch_unit != "tokens" else "batch_tokens" for c in GRID_COLUMNS]
    lines = [",".join(header)] + [",".join(f"{v:.12g}" for v in row) for row in zip(*(table[c] for c in GRID_COLUMNS))]
    return "\n".join(lines) + "\n"


def read_targets(path) -> dict[str, np.ndarray]:
    return _read_columns(path, ("N", "D"))


# ---------------------------------------------------------------- one cell


def _surface_columns(x, y, n_batches: int, cubic: bool) -> tuple[list[str], np.ndarray]:
    """Names and columns of the surface: 1, x, x², [x³], and in y as far as its distinct values allow,
    [y, xy], [y²]."""
    columns = {"1": np.ones_like(x), "x": x, "xx": x * x}
    if cubic:
        columns["xxx"] = x ** 3
    if n_batches >= 2:
        columns |= {"y": y, "xy": x * y}
    if n_batches >= MIN_VALUES:
        columns["yy"] = y * y
    return list(columns), np.column_stack(list(columns.values()))


def _weighted_fits(X, z, counts, window) -> np.ndarray:
    """(K, p) least-squares coefficients of z on X for each row of counts (K, n), each run also weighted by
    how close its loss is to the lowest loss among the runs the row draws; NaN where a row cannot
    determine them."""
    drawn = np.where(counts > 0, z, np.inf)
    w = counts * np.exp(-np.expm1(z - drawn.min(1, keepdims=True)) / window)
    A = np.einsum("kn,np,nq->kpq", w, X, X)
    b = np.einsum("kn,np,n->kp", w, X, z)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.linalg.cond(A) < 1e12
    coef = np.full(b.shape, np.nan)
    coef[ok] = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
    return coef


def _surface_at(c, x, y):
    """Surfaces with coefficients c (name -> (K, 1)) at x, y (broadcasting)."""
    terms = {"1": 1.0, "x": x, "xx": x * x, "xxx": x ** 3, "y": y, "xy": x * y, "yy": y * y}
    return sum(c[name] * terms[name] for name in c)


def _minima(coef, names, box, ys):
    """(x, y) of each surface's lowest point with x in [x_lo, x_hi] and y one of ys: for every y, the
    roots of the surface's derivative in x (a quadratic: the surface is at most cubic in x) and the ends."""
    (x_lo, x_hi), zero = box[0], np.zeros((len(coef), 1))
    c = {name: coef[:, i, None] for i, name in enumerate(names)}
    a, b = 3 * c.get("xxx", zero), 2 * c["xx"]
    lin = c["x"] + c.get("xy", zero) * ys[None]  # d/dx = a x² + b x + lin
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(np.maximum(b * b - 4 * a * lin, 0.0))
        flat = np.abs(a) < 1e-12
        roots = [np.where(flat, -lin / b, (-b + sign * root) / (2 * a)) for sign in (1.0, -1.0)]
    xs = np.stack([np.full_like(lin, x_lo), np.full_like(lin, x_hi)] + roots)  # (4, K, G)
    xs = np.clip(np.nan_to_num(xs, nan=x_lo, posinf=x_hi, neginf=x_lo), x_lo, x_hi)
    values = _surface_at(c, xs, ys[None, None])
    values[~np.isfinite(values)] = np.inf
    flat_index = np.argmin(values.transpose(1, 0, 2).reshape(len(coef), -1), 1)
    candidate, column = np.divmod(flat_index, len(ys))
    return xs[candidate, np.arange(len(coef)), column], ys[column]


def _stratified_counts(batch, n_boot, seed) -> np.ndarray:
    """(n_boot, n) case-bootstrap counts drawn within each batch size (fit.case_weights per batch size)."""
    counts = np.zeros((n_boot, len(batch)))
    for j, value in enumerate(np.unique(batch)):
        where = np.flatnonzero(batch == value)
        counts[:, where] = fit.case_weights(where, n_boot, seed + j)
    return counts


def _spread(log_samples) -> float:
    """Variance of a log optimum from its bootstrap replicates (the 16-84% range, robust to a few wild ones)."""
    values = log_samples[np.isfinite(log_samples)]
    if len(values) < 0.5 * len(log_samples):
        return np.nan
    lo, hi = np.percentile(values, [15.87, 84.13])
    return float(((hi - lo) / 2) ** 2)


@dataclass
class Cell:
    """One (N, D) of the grid: its runs' rows, its optimum and its uncertainty."""

    N: float
    D: float
    rows: np.ndarray  # indices into the grid
    lr: float
    batch: float  # nan when the cell has one batch size
    on_edge: dict[str, bool]  # the optimum sits on the grid's edge in lr / batch: a bound, not an optimum
    samples: dict[str, np.ndarray]  # log lr, log batch over the bootstrap replicates
    best_row: int
    best_loss: float
    near_optimal_rows: np.ndarray
    coef: dict[str, float]  # the surface's coefficients (_surface_columns), in x = log lr - x0, y = log batch - y0
    center: tuple[float, float]
    n_batches: int
    box: tuple  # the grid's range in x and y

    def log_variance(self, target: str) -> float:
        return _spread(self.samples[target])

    def tamed_samples(self, target: str) -> np.ndarray:
        """The log optimum's bootstrap replicates, each held within TAME robust standard deviations of the
        optimum: a resample that lacks the grid's lowest or highest LR can throw its surface's minimum to
        the far edge, a tail that belongs to the resampling of a fixed grid, not to the optimum."""
        reach = TAME * np.sqrt(self.log_variance(target))
        centre = np.log(getattr(self, target))
        return np.clip(self.samples[target], centre - reach, centre + reach)

    def usable(self, target: str) -> bool:
        return np.isfinite(getattr(self, target)) and not self.on_edge[target]

    def surface_loss(self, lr, batch) -> np.ndarray:
        """The fitted surface's loss at (lr, batch), each clipped to the grid's range."""
        x = np.log(np.atleast_1d(lr)) - self.center[0]
        y = np.log(np.atleast_1d(batch)) - self.center[1]
        x, y = np.clip(x, *self.box[0]), np.clip(y, *self.box[1])
        return np.exp(_surface_at(self.coef, x, y))


def cell_optimum(N, D, rows, lr, batch, loss, n_boot=fit.N_BOOT, seed=0, window=SURFACE_WINDOW,
                 cubic: bool | None = None) -> Cell:
    """The optimum of one cell's runs (see the module docstring); cubic: a cubic term in log lr (default:
    where the cell has CUBIC_FROM learning rates or more). FitError when its LRs are too few."""
    n_lrs = len(np.unique(lr))
    if n_lrs < MIN_VALUES:
        raise FitError(f"N={N:.4g}, D={D:.4g}: {n_lrs} learning rates, need {MIN_VALUES} or more")
    center = (float(np.mean(np.log(lr))), float(np.mean(np.log(batch))))
    x, y, z = np.log(lr) - center[0], np.log(batch) - center[1], np.log(loss)
    n_batches = len(np.unique(batch))
    box = ((x.min(), x.max()), (y.min(), y.max()))
    names, X = _surface_columns(x, y, n_batches, n_lrs >= CUBIC_FROM if cubic is None else cubic)
    counts = np.vstack([np.ones(len(z)), _stratified_counts(batch, n_boot, seed)])
    coef = _weighted_fits(X, z, counts, window)
    if not np.isfinite(coef[0]).all():
        raise FitError(f"N={N:.4g}, D={D:.4g}: its runs do not determine a surface in (log lr, log batch)")
    ys = np.linspace(*box[1], GRID_POINTS) if n_batches >= MIN_VALUES else np.unique(y)
    xs, ys = _minima(coef, names, box, ys)
    determined = n_batches >= MIN_VALUES
    edge = {"lr": bool(np.isclose(xs[0], box[0]).any()), "batch": determined and bool(np.isclose(ys[0], box[1]).any())}
    best = int(np.argmin(loss))
    return Cell(float(N), float(D), np.asarray(rows), float(np.exp(xs[0] + center[0])),
                float(np.exp(ys[0] + center[1])) if determined else np.nan, edge,
                {"lr": xs[1:] + center[0], "batch": ys[1:] + center[1] if determined else np.full(n_boot, np.nan)},
                int(rows[best]), float(loss[best]), np.asarray(rows)[loss <= loss[best] * (1 + NEAR_OPTIMAL)],
                dict(zip(names, coef[0])), center, n_batches, box)


# ---------------------------------------------------------------- laws over the cells


def _wls(X, Y, w) -> np.ndarray:
    """(K, p) weighted least squares of each row of Y (K, n) on X (n, p), weights w (n,)."""
    return Y @ np.linalg.solve(X.T @ (w[:, None] * X), (w[:, None] * X).T).T


def _law_points(key: str, cells: list[Cell]):
    """The cells a law can use (optimum inside the grid in its target), and why the others cannot."""
    target = HPARAM_LAWS[key].target
    used = [c for c in cells if c.usable(target)]
    left_out = [f"N={c.N:.4g}, D={c.D:.4g}" for c in cells if not c.usable(target)]
    return used, left_out


def _check_design(key: str, X: np.ndarray) -> None:
    n, p = X.shape
    if n <= p:
        raise FitError(f"{key}: {n} cells with an optimum inside the grid, need at least {p + 1}")
    if np.linalg.matrix_rank(X) < p:
        raise FitError(f"{key}: the cells' {', '.join(HPARAM_LAWS[key].variables)} do not vary independently "
                       "(e.g. one token budget, or D proportional to N): need cells that separate them")


def fit_law(key: str, N, D, values, log_variance, log_samples=None) -> HparamFit:
    """One law of HPARAM_LAWS fitted to optima at (N, D), weights 1/log_variance; with log_samples
    (n_boot, n), the bootstrap replicates of the optima (log), its intervals."""
    law = HPARAM_LAWS[key]
    X, y = design(law, N, D), np.log(np.asarray(values, float))
    _check_design(key, X)
    variance = np.asarray(log_variance, float)
    variance = np.where(np.isfinite(variance), variance, np.nanmedian(variance) if np.isfinite(variance).any() else 1)
    w = 1.0 / np.maximum(variance, 0.1 * np.median(variance) + 1e-12)  # none weighs over 10x the median cell
    theta = _wls(X, y[None], w)[0]
    n, p = X.shape
    chi2_per_dof = float(w @ (y - X @ theta) ** 2) / (n - p)
    params = {name: float(v) for name, v in zip((law.coef,) + law.exponents, [np.exp(theta[0]), *theta[1:]])}
    result = HparamFit(key, params, {}, n)
    result.extra.update(weights="1/Var(log optimum) of each cell, from its bootstrap", chi2_per_dof=chi2_per_dof)
    if log_samples is not None:
        boot = theta + (_wls(X, log_samples, w) - theta) * np.sqrt(max(1.0, chi2_per_dof))
        result.samples = {law.coef: np.exp(boot[:, 0]), **{e: boot[:, i + 1] for i, e in enumerate(law.exponents)}}
        result.ci = fit.bootstrap_ci(result.samples)
        result.extra["ci_method"] = ("bootstrap of the runs within each cell, the law refitted to each replicate's "
                                     "optima; spread widened by sqrt(reduced chi-square) when above 1")
    return result


def _law_on_cells(key: str, cells: list[Cell], n_boot: int):
    used, _ = _law_points(key, cells)
    target = HPARAM_LAWS[key].target
    N, D = np.array([c.N for c in used]), np.array([c.D for c in used])
    values = np.array([getattr(c, target) for c in used])
    variance = np.array([c.log_variance(target) for c in used])
    samples = np.array([c.tamed_samples(target) for c in used]).T if used and n_boot else None
    return N, D, values, variance, samples


def _law_at(key: str, variance_at: dict, N, D, values, n_boot=0) -> HparamFit:
    """fit_law on a subset of the cells (held-out and rolling checks), each with its own variance; n_boot is
    the fitter signature those checks call (they need no intervals)."""
    return fit_law(key, N, D, values, [variance_at[(n, d)] for n, d in zip(N, D)])


# ---------------------------------------------------------------- the whole grid


@dataclass
class HparamAnalysis:
    source: str
    loss_column: str
    batch_unit: str
    table: dict[str, np.ndarray]
    cells: list[Cell] = field(default_factory=list)
    skipped_cells: list[str] = field(default_factory=list)
    fits: dict[str, HparamFit] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    prediction: dict = field(default_factory=dict)
    predictions: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.source).stem

    def to_json(self) -> dict:
        return {
            "source": self.source, "loss_column": self.loss_column, "batch_unit": self.batch_unit,
            "lr_unit": "peak learning rate as the grid gives it", "compute_convention": COMPUTE_CONVENTION,
            "near_optimal_within": NEAR_OPTIMAL,
            "surface": f"quadratic in (log lr, log batch) fitted to log loss, runs weighted by "
                       f"exp(-(L/L_best - 1)/{SURFACE_WINDOW}); bootstrap of runs within each batch size",
            "cells": [self._cell_json(c) for c in self.cells],
            "skipped_cells": self.skipped_cells,
            "laws": {key: {"form": HPARAM_LAWS[key].form, "reference": HPARAM_LAWS[key].reference,
                           "target": HPARAM_LAWS[key].target, "published": HPARAM_LAWS[key].published,
                           **f.to_dict()} for key, f in self.fits.items()},
            "skipped": self.skipped, "prediction_check": self.prediction, "predictions": self.predictions,
        }

    def _cell_json(self, c: Cell) -> dict:
        out = {"N": c.N, "D": c.D, "C": 6 * c.N * c.D, "runs": len(c.rows), "best_loss": c.best_loss,
               "best_run": {k: float(self.table[k][c.best_row]) for k in ("lr", "batch")},
               "kaplan_lr": _kaplan_lr(c.N), "on_edge": c.on_edge}
        for target in ("lr", "batch"):
            value = getattr(c, target)
            out[target] = value
            finite = c.samples[target][np.isfinite(c.samples[target])]
            out[f"{target}_ci"] = ([float(v) for v in np.exp(np.percentile(finite, [2.5, 97.5]))]
                                   if len(finite) else None)
        near = c.near_optimal_rows
        out["near_optimal"] = {"runs": len(near), **{f"{k}_range": [float(self.table[k][near].min()),
                                                                      float(self.table[k][near].max())]
                                                     for k in ("lr", "batch")}}
        return out


def _kaplan_lr(N: float) -> float:
    """Kaplan et al. 2020 eq. D.1 at N (N non-embedding), nan where it gives no positive LR."""
    try:
        return accounting.kaplan_lr(N)
    except UserError:
        return np.nan


def analyze_grid(table: dict[str, np.ndarray], source: str, n_boot=fit.N_BOOT, seed=0,
                 batch_unit: str = "as the grid gives it") -> HparamAnalysis:
    loss_column = "loss_smoothed" if "loss_smoothed" in table else "loss"
    result = HparamAnalysis(source, loss_column, batch_unit, table)
    keys = np.unique(np.column_stack([table["N"], table["D"]]), axis=0)
    for i, (N, D) in enumerate(keys):
        rows = np.flatnonzero((table["N"] == N) & (table["D"] == D))
        try:
            result.cells.append(cell_optimum(N, D, rows, table["lr"][rows], table["batch"][rows],
                                             table[loss_column][rows], n_boot, seed + 1000 * i))
        except FitError as err:
            result.skipped_cells.append(str(err))
    for key in HPARAM_LAWS:
        _fit_one(result, key, n_boot)
    result.prediction = prediction_check(result.cells)
    return result


def _fit_one(result: HparamAnalysis, key: str, n_boot: int) -> None:
    N, D, values, variance, samples = _law_on_cells(key, result.cells, n_boot)
    _, left_out = _law_points(key, result.cells)
    try:
        law_fit = fit_law(key, N, D, values, variance, samples)
    except FitError as err:
        result.skipped[key] = str(err) + (f"; cells with the optimum on the grid's edge: {'; '.join(left_out)}"
                                          if left_out else "")
        return
    variance_at = dict(zip(zip(N, D), variance))
    fitter = partial(_law_at, key, variance_at)
    law_fit.extra["cells_left_out"] = left_out
    law_fit.extra["fit_range"] = {"N": [float(N.min()), float(N.max())], "D": [float(D.min()), float(D.max())]}
    try:
        law_fit.extra["held_out"] = fit.held_out_check(fitter, [N, D], values)
    except FitError as err:
        law_fit.extra["held_out"] = {"skipped": str(err)}
    law_fit.extra["rolling"] = fit.rolling_check(fitter, [N, D], values, min_values=2)
    result.fits[key] = law_fit


def prediction_check(cells: list[Cell]) -> dict:
    """The laws fitted to every size but the largest predict, at each of its cells, the optimal LR (as the
    factor max(pred/opt, opt/pred)) and batch, and the loss the cell's own surface gives at the predicted
    (LR, batch), relative to the cell's best run (the surface is evaluated inside the grid only)."""
    sizes = np.unique([c.N for c in cells])
    if len(sizes) < 3:
        return {"skipped": f"{len(sizes)} model sizes, need 3 or more"}
    small, held = [c for c in cells if c.N < sizes[-1]], [c for c in cells if c.N == sizes[-1]]
    fits = {}
    for target, keys in PREFERRED.items():
        for key in keys:
            try:
                fits[target] = fit_law(key, *_law_on_cells(key, small, 0)[:4])
                break
            except FitError:
                continue
    if "lr" not in fits:
        return {"skipped": "no LR law could be fitted without the largest size"}
    rows = []
    for c in held:
        lr = float(fits["lr"].predict(c.N, c.D)[0])
        batch = float(fits["batch"].predict(c.N, c.D)[0]) if "batch" in fits else c.batch
        row = {"N": c.N, "D": c.D, "lr_predicted": lr, "lr_optimum": c.lr, "batch_predicted": batch,
               "batch_optimum": c.batch, "lr_factor": float(np.exp(abs(np.log(lr / c.lr)))),
               "outside_grid": bool(not c.box[0][0] <= np.log(lr) - c.center[0] <= c.box[0][1]),
               # a cell of one batch size has a surface in lr alone: any batch reads it
               "loss_gap": float(c.surface_loss(lr, batch if np.isfinite(batch) else 1.0)[0] / c.best_loss - 1)}
        rows.append(row)
    return {"held_out_size": float(sizes[-1]), "lr_law": fits["lr"].law,
            "batch_law": fits["batch"].law if "batch" in fits else None, "cells": rows,
            "max_lr_factor": max(r["lr_factor"] for r in rows), "max_loss_gap": max(r["loss_gap"] for r in rows)}


# ---------------------------------------------------------------- predictions and use


def predict(result: HparamAnalysis, N, D) -> list[dict]:
    """Each (N, D)'s optimal LR and batch from the preferred fitted laws, with 95% intervals."""
    rows = [{"N": float(n), "D": float(d)} for n, d in zip(N, D)]
    for target, keys in PREFERRED.items():
        key = next((k for k in keys if k in result.fits), None)
        if key is None:
            continue
        f = result.fits[key]
        values, samples = f.predict(N, D), f.predict_samples(N, D)
        for i, row in enumerate(rows):
            lo, hi = fit.bootstrap_ci({target: samples[:, i]})[target]
            row.update({target: float(values[i]), f"{target}_lo": lo, f"{target}_hi": hi, f"{target}_law": key})
    return rows


# ---------------------------------------------------------------- outputs


def _interval(lo, hi) -> str:
    return f"[{lo:.4g}, {hi:.4g}]"


def _constants(result: HparamAnalysis):
    """(law, fit, constant, value, CI low, CI high, published value) of every fitted constant."""
    for key, f in result.fits.items():
        for name, value in f.params.items():
            yield key, f, name, value, *f.ci.get(name, (np.nan, np.nan)), HPARAM_LAWS[key].published[name]


def markdown(result: HparamAnalysis) -> str:
    """The report's section: each cell's optimum, the laws beside the published ones, the checks."""
    lines = [f"## Hyperparameter laws ({result.source})", "",
             f"Loss column: `{result.loss_column}` (nats/token). LR: the peak LR as the grid gives it; batch: "
             f"{result.batch_unit}; {COMPUTE_CONVENTION}. Near-optimal: runs within {NEAR_OPTIMAL:.2%} of the "
             "cell's best loss (DeepSeek LLM sec. 3.1). 95% intervals.", "",
             "| N | D | runs | lr* | 95% CI | batch* | 95% CI | on grid's edge | near-optimal runs (lr range) "
             "| Kaplan eq. D.1 LR (x lr*) |", "| --- " * 10 + "|"]
    for c in result.to_json()["cells"]:
        edge = ", ".join(k for k, v in c["on_edge"].items() if v) or "no"
        near = c["near_optimal"]
        lines.append(f"| {c['N']:.4g} | {c['D']:.4g} | {c['runs']} | {c['lr']:.4g} | "
                     f"{_interval(*c['lr_ci']) if c['lr_ci'] else '-'} | {c['batch']:.4g} | "
                     f"{_interval(*c['batch_ci']) if c['batch_ci'] else '-'} | {edge} | {near['runs']} "
                     f"({near['lr_range'][0]:.3g}-{near['lr_range'][1]:.3g}) | {c['kaplan_lr']:.3g} "
                     f"({c['kaplan_lr'] / c['lr']:.2f}) |")
    lines += [f"- skipped cell: {why}" for why in result.skipped_cells]
    lines += ["", "| law | form | constant | fitted | 95% CI | published | held-out mean abs. rel. error |",
              "| --- " * 7 + "|"]
    for key, f, name, value, lo, hi, published in _constants(result):
        held = f.extra["held_out"]
        held = f"{held['mean_abs_rel_error']:.1%}" if "mean_abs_rel_error" in held else f"- ({held['skipped']})"
        lines.append(f"| {key} | {HPARAM_LAWS[key].form} ({HPARAM_LAWS[key].reference}) | {name} | {value:.4g} | "
                     f"{_interval(lo, hi)} | {published:.4g} | {held} |")
    lines += [f"- {key}: not fitted: {why}" for key, why in result.skipped.items()]
    check = result.prediction
    if "cells" in check:
        laws = (f"{check['lr_law']} and {check['batch_law']}" if check["batch_law"] else
                f"{check['lr_law']} (no batch law could be fitted: each cell's own optimal batch)")
        lines += ["", f"Prediction check: {laws} fitted without N = "
                      f"{check['held_out_size']:.4g} predict its optimal LR within a factor "
                      f"{check['max_lr_factor']:.3f} (target 1.5) and, on its surface, a loss at most "
                      f"{check['max_loss_gap']:+.3%} from its best run (target 0.5%)."]
    else:
        lines += ["", f"Prediction check: skipped: {check['skipped']}"]
    return "\n".join(lines) + "\n"


def text_table(result: HparamAnalysis) -> str:
    """What analyze --hparams prints: the laws' constants with intervals, the checks, and the predictions."""
    lines = [f"{len(result.cells)} cells of {len(result.table['N'])} runs ({result.loss_column}, nats/token); N as the "
             f"grid counts it (a sweep's: non-embedding), D in tokens, batch in {result.batch_unit}, C = 6·N·D FLOPs"]
    lines += [f"skipped cell: {why}" for why in result.skipped_cells]
    for key, f, name, value, lo, hi, published in _constants(result):
        if name == HPARAM_LAWS[key].coef:
            lines.append(f"{key}: {HPARAM_LAWS[key].form}  ({HPARAM_LAWS[key].reference}; {f.n_points} cells)")
        lines.append(f"    {name:<6} = {value:<10.4g} 95% CI {_interval(lo, hi)}  (published {published:.4g})")
    lines += [f"{key}: not fitted: {why}" for key, why in result.skipped.items()]
    check = result.prediction
    lines.append(f"prediction check: LR within x{check['max_lr_factor']:.3f}, loss gap {check['max_loss_gap']:+.3%}"
                 if "cells" in check else f"prediction check: skipped: {check['skipped']}")
    if result.predictions:
        lines.append(predictions_csv(result.predictions).rstrip())
    return "\n".join(lines)


PREDICTION_COLUMNS = ("N", "D", "lr", "lr_lo", "lr_hi", "lr_law", "batch", "batch_lo", "batch_hi", "batch_law")


def predictions_csv(rows: list[dict]) -> str:
    out = [",".join(PREDICTION_COLUMNS)]
    for row in rows:
        out.append(",".join(f"{row[k]:.6g}" if isinstance(row.get(k), float) else str(row.get(k, ""))
                            for k in PREDICTION_COLUMNS))
    return "\n".join(out) + "\n"


def fits_entry(result: HparamAnalysis) -> dict:
    """fits.json with the grid's laws under "hparams" (what optimal_hparams reads)."""
    return {"schema_version": laws.FITS_SCHEMA_VERSION, "hparams": result.to_json()}
