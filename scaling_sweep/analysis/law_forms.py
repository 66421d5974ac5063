"""Law forms L(N, D, ...) as a registry, each fitted the same way, and selection among them by how
well each extrapolates from the smaller runs of a sweep to its larger ones.

Every form is one LawForm entry: its formula and source, the constants it fits, the columns of the
points table it needs beyond N, D and loss, and log L with its analytic gradient in a vector theta
(the shape fit.huber_fit takes). Each is fitted as fit.fit_chinchilla is: Huber (delta 1e-3) on
log-loss, L-BFGS from a grid of starts (fit.lbfgs_batch), the best start polished, intervals from
the bootstrap of what is independent (fit._make_fit).

A points table is a dict of arrays: N (parameters), D (tokens seen), loss (nats/token), and where
a form needs them U_D (unique tokens) and group (which rows share a run: the bootstrap's unit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

import numpy as np

from scaling_sweep.analysis import fit
from scaling_sweep.analysis.fit import FitError

TOKENS_PER_PARAMETER = 20  # Hoffmann et al. 2022's compute-optimal D/N, Muennighoff's U_N rule (see below)
FARSEER_UNIT = 1e9  # Farseer's N and D in billions (parameters, tokens): our scale, for conditioning


@dataclass(frozen=True)
class LawForm:
    """One law form. predict(theta (k, P), X) -> (log L (k, n), d log L / d theta (P, k, n)) with
    X = inputs(table); starts(table) -> (S, P) starting thetas; constants(theta (k, P)) -> the
    named constants, each (k,)."""

    name: str
    formula: str
    citation: str
    constants_names: tuple[str, ...]
    inputs: Callable[[dict], tuple]
    predict: Callable
    starts: Callable[[dict], np.ndarray]
    constants: Callable[[np.ndarray], dict]
    needs: tuple[str, ...] = ()
    floor: str | None = None  # the irreducible-loss constant, flagged when it vanishes
    min_sizes: int = 3  # distinct N the form needs to be fitted at all

    @property
    def n_params(self) -> int:
        return len(self.constants_names)

    def log_loss(self, theta: np.ndarray, table: dict) -> np.ndarray:
        """log L (k, n) for thetas (k, P) at the table's points."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self.predict(np.atleast_2d(theta), self.inputs(table))[0]


@dataclass
class FormFit:
    """A form fitted to a table: the best theta, the bootstrap's thetas (n_boot, P) and the constants
    with their intervals as a fit.Fit."""

    form: LawForm
    theta: np.ndarray
    boot: np.ndarray
    fit: fit.Fit

    def predict(self, table: dict) -> np.ndarray:
        """Loss (nats/token) at the table's points."""
        return np.exp(self.form.log_loss(self.theta, table)[0])

    def interval(self, table: dict, level: float = fit.CI_LEVEL) -> np.ndarray:
        """(n, 2) percentile interval of the predicted loss over the bootstrap's fits; NaN without one."""
        if not len(self.boot):
            return np.full((len(table["N"]), 2), np.nan)
        predicted = np.exp(self.form.log_loss(self.boot, table))
        return np.nanpercentile(predicted, [50 * (1 - level), 50 * (1 + level)], axis=0).T


def columns_needed(form: LawForm) -> tuple[str, ...]:
    return ("N", "D", "loss") + form.needs


def usable(form: LawForm, table: dict) -> dict:
    """The rows where every column the form needs is finite and positive."""
    keep = np.all([np.isfinite(table[k]) & (table[k] > 0) for k in columns_needed(form)], axis=0)
    return {k: np.asarray(v)[keep] for k, v in table.items()}


def fit_form(form: LawForm, table: dict, n_boot: int = 0, seed: int = 0, starts=None) -> FormFit:
    """Huber fit of the form on log-loss from its grid of starts (or `starts`), with n_boot bootstrap
    resamples over the table's groups (each row its own group without a group column)."""
    missing = [k for k in columns_needed(form) if k not in table]
    if missing:
        raise FitError(f"{form.name}: needs column {', '.join(missing)}")
    table = usable(form, table)
    n = len(table["loss"])
    fit._check_points(n, form.n_params, form.name)
    if len(np.unique(table["N"])) < form.min_sizes:
        raise FitError(f"{form.name}: {len(np.unique(table['N']))} model sizes, needs {form.min_sizes}")
    groups = table.get("group", np.arange(n))
    starts = form.starts(table) if starts is None else starts
    best, boot = fit.huber_fit(form.predict, form.inputs(table), np.log(table["loss"]), starts, n_boot, seed,
                               groups=groups)
    fitted = fit._make_fit(form.name, best, boot, form.constants, n, groups)
    if form.floor:
        fit._flag_vanished_floor(fitted, form.floor, table["loss"])
    return FormFit(form, best, boot, fitted)


# ---------------------------------------------------------------- the forms


def _log_n_d(table):
    return np.log(table["N"]), np.log(table["D"])


def _chinchilla_starts(table):
    return fit.CHINCHILLA_GRID[:, [0, 1, 3, 4, 2]]  # grid order -> (a, b, alpha, beta, e), as fit_chinchilla


CHINCHILLA = LawForm(
    "chinchilla", "L = E + A/N^alpha + B/D^beta",
    "Hoffmann et al. 2022, eq. 2 (approach 3), fitted as Besiroglu et al. 2024 replicate it",
    ("E", "A", "B", "alpha", "beta"), _log_n_d, fit.CHINCHILLA_PREDICT, _chinchilla_starts,
    fit.chinchilla_params, floor="E")


def _kaplan_starts(table, floor):
    alphas = (0.03, 0.1, 0.3)
    grid = fit._grid(alphas, alphas, np.log(table["N"].max()) + np.array([2.0, 10.0, 30.0]),
                     np.log(table["D"].max()) + np.array([2.0, 10.0, 30.0]))
    if not floor:
        return grid
    floors = np.log(table["loss"].min()) + np.array([-3.0, -1.0, -0.3])
    return np.column_stack([np.repeat(grid, len(floors), 0), np.tile(floors, len(grid))])


def _kaplan_constants(t):
    constants = {"N_c": np.exp(t[:, 2]), "D_c": np.exp(t[:, 3]), "alpha_N": t[:, 0], "alpha_D": t[:, 1]}
    return constants | ({"L_inf": np.exp(t[:, 4])} if t.shape[1] > 4 else {})


def _kaplan_nd_floor(theta, X):
    """log L of eq. 1.5 plus a floor: theta = (alpha_N, alpha_D, log N_c, log D_c, log L_inf)."""
    log_K, jac_K = fit._kaplan_nd(theta[:, :4], X)
    log_L, p = fit._log_sum_exp(np.stack([log_K, np.broadcast_to(theta[:, 4, None], log_K.shape)]))
    return log_L, np.concatenate([p[0] * jac_K, p[1][None]])


KAPLAN_ND = LawForm(
    "L_ND", "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D", "Kaplan et al. 2020, eq. 1.5",
    ("N_c", "D_c", "alpha_N", "alpha_D"), _log_n_d, fit._kaplan_nd,
    lambda table: _kaplan_starts(table, floor=False), _kaplan_constants)

KAPLAN_ND_FLOOR = LawForm(
    "L_ND_floor", "L = L_inf + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
    "Kaplan et al. 2020, eq. 1.5 with an additive irreducible loss L_inf (as fit_power_law's floor)",
    ("N_c", "D_c", "alpha_N", "alpha_D", "L_inf"), _log_n_d, _kaplan_nd_floor,
    lambda table: _kaplan_starts(table, floor=True), _kaplan_constants, floor="L_inf")


def _compute_multiplier(table):
    """(log C, log M) with C = 6·N·D (FLOPs) and M = D/N (tokens per parameter)."""
    log_N, log_D = _log_n_d(table)
    return np.log(6.0) + log_N + log_D, log_D - log_N


def _over_training(theta, X):
    """log L of L = E + (a·M^eta + b·M^-eta)·C^-eta: theta = (log a, log b, eta, log E)."""
    log_C, log_M = X
    eta = theta[:, 2, None]
    z = np.stack([theta[:, 0, None] + eta * (log_M - log_C), theta[:, 1, None] - eta * (log_M + log_C),
                  np.broadcast_to(theta[:, 3, None], np.broadcast_shapes(eta.shape, log_C.shape))])
    log_L, p = fit._log_sum_exp(z)
    return log_L, np.stack([p[0], p[1], p[0] * (log_M - log_C) - p[1] * (log_M + log_C), p[2]])


def _over_training_starts(table):
    log_C, log_M = _compute_multiplier(table)
    etas = np.array([0.05, 0.15, 0.3])
    scale = np.log(table["loss"].max()) + np.array([-2.0, 0.0])  # each term's share of the largest loss
    floors = np.log(table["loss"].min()) + np.array([-3.0, -1.0, -0.3])
    grid = fit._grid(scale, scale, etas, floors)
    # a·M^eta·C^-eta is exp(scale) at the mean point: log a = scale + eta·(mean log C - mean log M)
    grid[:, 0] += grid[:, 2] * (log_C.mean() - log_M.mean())
    grid[:, 1] += grid[:, 2] * (log_C.mean() + log_M.mean())
    return grid


OVER_TRAINING = LawForm(
    "over_training", "L = E + (a·M^eta + b·M^-eta)·C^-eta,  C = 6ND, M = D/N",
    "Gadre et al. 2024, the over-training law L(C, M): Hoffmann's eq. 2 with alpha = beta = 2·eta, written in "
    "compute and the token multiplier",
    ("E", "a", "b", "eta"), _compute_multiplier, _over_training, _over_training_starts,
    lambda t: {"E": np.exp(t[:, 3]), "a": np.exp(t[:, 0]), "b": np.exp(t[:, 1]), "eta": t[:, 2]}, floor="E")


def _repeats(table):
    """(log N, log U_N, R_N, log D, log U_D, R_D): Muennighoff et al.'s unique data U_D, repetitions
    R_D = D/U_D - 1, base parameters U_N = min(N, U_D/20) and excess parameters R_N = N/U_N - 1."""
    N, D, U_D = (np.asarray(table[k], float) for k in ("N", "D", "U_D"))
    U_N = np.minimum(N, U_D / TOKENS_PER_PARAMETER)
    return np.log(N), np.log(U_N), N / U_N - 1, np.log(D), np.log(U_D), np.maximum(D / U_D - 1, 0.0)


def _effective(log_U, R, log_R_star):
    """log U' with U' = U + U·R*·(1 - exp(-R/R*)) (Muennighoff et al. 2023 eq. 5's D' and N'), and
    d log U' / d log R*. As R* -> inf, U' -> U·(1 + R): every repeat counts as new."""
    R_star = np.exp(log_R_star)
    with np.errstate(divide="ignore"):  # R* underflowing to 0: no repeat counts
        decay = np.exp(-R / R_star)
    gain = R_star * (1 - decay)
    return log_U + np.log1p(gain), (gain - R * decay) / (1 + gain)


def _data_constrained(theta, X):
    """log L of L = E + A/N'^alpha + B/D'^beta: theta = (log A, log B, alpha, beta, log E, log R*_N, log R*_D)."""
    _, log_U_N, R_N, _, log_U_D, R_D = X
    log_N_eff, dN = _effective(log_U_N, R_N, theta[:, 5, None])
    log_D_eff, dD = _effective(log_U_D, R_D, theta[:, 6, None])
    log_L, jac = fit.CHINCHILLA_PREDICT(theta[:, :5], (log_N_eff, log_D_eff))
    p_N, p_D = jac[0], jac[1]  # d log L / d log A is the N term's share of L
    return log_L, np.concatenate([jac, (-theta[:, 2, None] * p_N * dN)[None], (-theta[:, 3, None] * p_D * dD)[None]])


def _data_constrained_starts(table):
    grid = fit.CHINCHILLA_GRID[::45][:, [0, 1, 3, 4, 2]]
    R_stars = np.log([5.0, 15.0, 50.0])
    return np.column_stack([np.repeat(grid, len(R_stars) ** 2, 0),
                            np.tile(fit._grid(R_stars, R_stars), (len(grid), 1))])


DATA_CONSTRAINED = LawForm(
    "data_constrained", "L = E + A/N'^alpha + B/D'^beta,  D' = U_D + U_D·R*_D·(1 - exp(-R_D/R*_D)), N' likewise",
    "Muennighoff et al. 2023, eq. 5 (U_N = min(N, U_D/20) by Hoffmann's 20 tokens per parameter)",
    ("E", "A", "B", "alpha", "beta", "R_star_N", "R_star_D"), _repeats, _data_constrained,
    _data_constrained_starts,
    lambda t: fit.chinchilla_params(t) | {"R_star_N": np.exp(t[:, 5]), "R_star_D": np.exp(t[:, 6])},
    needs=("U_D",), floor="E")


def _farseer_inputs(table):
    return np.log(table["N"] / FARSEER_UNIT), np.log(table["D"] / FARSEER_UNIT)


def _farseer(theta, X):
    """log L of L = exp(a3·N^gamma + b3) + exp(a2·N^beta + b2)·D^-exp(a1·N^alpha + b1):
    theta = (a1, b1, alpha, a2, b2, beta, a3, b3, gamma), N and D in FARSEER_UNIT."""
    log_N, log_D = X
    a1, b1, alpha, a2, b2, beta, a3, b3, gamma = (t[:, None] for t in theta.T)
    n_alpha, n_beta, n_gamma = np.exp(alpha * log_N), np.exp(beta * log_N), np.exp(gamma * log_N)
    exponent = np.exp(a1 * n_alpha + b1)  # the data exponent, a function of N
    log_L, (p_D, p_floor) = fit._log_sum_exp(np.stack([a2 * n_beta + b2 - exponent * log_D,
                                                        np.broadcast_to(a3 * n_gamma + b3, exponent.shape)]))
    d_exponent = -p_D * exponent * log_D
    return log_L, np.stack([d_exponent * n_alpha, d_exponent, d_exponent * a1 * n_alpha * log_N,
                            p_D * n_beta, p_D, p_D * a2 * n_beta * log_N,
                            p_floor * n_gamma, p_floor, p_floor * a3 * n_gamma * log_N])


def _farseer_starts(table):
    """From Chinchilla-like surfaces (every a_i 0: constant exponent and floor), with a data exponent
    and a floor that move with N either way."""
    low = np.log(table["loss"].min())
    log_D = np.log(table["D"] / FARSEER_UNIT).mean()
    rows = []
    for b1, b3, a1, a3, power in product(np.log([0.15, 0.4]), low + np.array([-1.0, -0.3]),
                                         (-0.3, 0.0, 0.3), (-0.3, 0.0, 0.3), (-0.3, 0.3)):
        b2 = low + np.exp(b1) * log_D  # the data term near the lowest loss at the mean D
        rows.append((a1, b1, power, 0.0, b2, power, a3, b3, power))
    return np.array(rows)


FARSEER = LawForm(
    "farseer", "L = exp(a3·N^gamma + b3) + exp(a2·N^beta + b2)·D^-exp(a1·N^alpha + b1)  (N, D in billions)",
    "Li et al. 2025 (Farseer), eq. 3: the floor, the data term's coefficient and its exponent each vary with N",
    ("a1", "b1", "alpha", "a2", "b2", "beta", "a3", "b3", "gamma"), _farseer_inputs, _farseer, _farseer_starts,
    lambda t: dict(zip(("a1", "b1", "alpha", "a2", "b2", "beta", "a3", "b3", "gamma"), t.T)), min_sizes=5)

FORMS = {form.name: form for form in (CHINCHILLA, KAPLAN_ND, KAPLAN_ND_FLOOR, OVER_TRAINING, DATA_CONSTRAINED,
                                      FARSEER)}


# ---------------------------------------------------------------- selection by extrapolation

HELD_OUT_SHARE = 0.2  # the largest fifth of the model sizes (at least one) is held out


def applicable(table: dict, forms=None) -> tuple[list[LawForm], dict[str, str]]:
    """The forms whose columns the table has, and why each other one is left out."""
    forms = list(FORMS.values()) if forms is None else forms
    chosen, left_out = [], {}
    sizes = len(np.unique(table["N"]))
    for form in forms:
        missing = [k for k in form.needs if k not in table]
        if missing:
            left_out[form.name] = f"needs column {', '.join(missing)}"
        elif sizes <= form.min_sizes:
            left_out[form.name] = f"needs over {form.min_sizes} model sizes to extrapolate, the points have {sizes}"
        else:
            chosen.append(form)
    return chosen, left_out


def extrapolation_splits(N, min_sizes: int, share: float = HELD_OUT_SHARE) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, fitted rows, predicted rows) of every check: the rolling check (fit on the k smallest
    model sizes, predict the next, for k from min_sizes) and the held-out check (fit on all but the
    largest `share` of sizes, predict those)."""
    sizes = np.unique(N)
    splits = [(f"rolling: {k} sizes -> N = {sizes[k]:.3g}", N <= sizes[k - 1], N == sizes[k])
              for k in range(min_sizes, len(sizes))]
    cut = sizes[-max(1, int(np.ceil(share * len(sizes))))]
    if np.sum(sizes < cut) >= min_sizes:
        splits.append((f"held out: N >= {cut:.3g}", N < cut, N >= cut))
    return splits


def _subset(table: dict, rows) -> dict:
    return {k: v[rows] for k, v in table.items()}


def _check_errors(form: LawForm, table: dict, splits, starts, n_boot: int, seed: int) -> np.ndarray:
    """(checks, 1 + n_boot, n) absolute relative errors |L_pred/L - 1| of each check's predicted rows
    (NaN elsewhere), by the fit to the check's smaller sizes (row 0) and by n_boot bootstrap refits of
    it (the groups of those sizes redrawn, each refit started from the fit)."""
    errors = np.full((len(splits), n_boot + 1, len(table["loss"])), np.nan)
    for i, (_, fitted, predicted) in enumerate(splits):
        small = fit_form(form, _subset(table, fitted), n_boot, seed, starts)
        target = _subset(table, predicted)
        predictions = np.exp(form.log_loss(np.vstack([small.theta[None], small.boot]), target))
        errors[i][:, predicted] = np.abs(predictions / target["loss"] - 1)
    return errors


def _scores(errors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(1 + n_boot,) extrapolation errors: for the fits to the data (row 0) and each bootstrap refit, the
    mean over checks of each check's mean absolute relative error, its predicted points weighted by
    that row of weights (1 + n_boot, n): a redraw of the groups of the larger sizes."""
    seen = np.isfinite(errors)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_check = (np.einsum("bn,cbn->bc", weights, np.where(seen, errors, 0.0))
                     / np.einsum("bn,cbn->bc", weights, seen))
    checked = np.isfinite(per_check)  # a resample may draw none of a check's predicted groups: NaN, not a warning
    total = np.where(checked, per_check, 0.0).sum(axis=1)
    return np.where(checked.any(axis=1), total / np.maximum(checked.sum(axis=1), 1), np.nan)


def extrapolation_scores(table: dict, forms=None, n_boot: int = 100, seed: int = 0,
                         extrapolation_starts: int | None = None) -> tuple[dict, list, dict]:
    """Fit every applicable form on the smaller sizes and score it on the larger ones: the mean over
    the rolling and held-out checks of their mean absolute relative errors, for the fits to the data
    and for n_boot bootstrap resamples that redraw the groups both of the sizes fitted (each check
    refitted) and of the sizes predicted; the resamples are the same for every form, so differences
    are paired. extrapolation_starts thins each form's grid of starts to about that many for the
    checks' fits (None: the full grid). Returns ({form: (errors (checks, n) of the fits to the data,
    scores (1 + n_boot,))}, the checks, {form: why it was not scored})."""
    chosen, left_out = applicable(table, forms)
    if not chosen:
        raise FitError("no law form applies to these points: " + "; ".join(f"{k}: {v}" for k, v in left_out.items()))
    splits = extrapolation_splits(table["N"], max(form.min_sizes for form in chosen))
    groups = table.get("group", np.arange(len(table["loss"])))
    weights = np.vstack([np.ones(len(groups)), fit.case_weights(groups, n_boot, seed + 1)])  # row 0: the data
    scored = {}
    for form in chosen:
        starts = form.starts(usable(form, table))
        if extrapolation_starts and len(starts) > extrapolation_starts:  # a seeded draw: a stride can hold an axis
            drawn = np.random.default_rng(seed).choice(len(starts), extrapolation_starts, replace=False)
            starts = starts[np.sort(drawn)]
        try:
            errors = _check_errors(form, table, splits, starts, n_boot, seed)
        except FitError as err:
            left_out[form.name] = str(err)
            continue
        scored[form.name] = (errors[:, 0], _scores(errors, weights))
    if not scored:
        raise FitError("no law form could be fitted: " + "; ".join(f"{k}: {v}" for k, v in left_out.items()))
    return scored, splits, left_out


def select(table: dict, forms=None, n_boot: int = 100, seed: int = 0, refit_boot: int = 200,
           extrapolation_starts: int | None = None) -> dict:
    """Every applicable form scored by extrapolation (extrapolation_scores), the recommendation
    (recommend), and every form refitted on all points with refit_boot resamples for its intervals.
    Returns {"candidates", "recommended", "not_applicable"} and the fits to all points under "fits"."""
    table = {k: np.asarray(v) for k, v in table.items()}
    scored, splits, left_out = extrapolation_scores(table, forms, n_boot, seed, extrapolation_starts)
    fits = {name: fit_form(FORMS[name], table, n_boot=refit_boot, seed=seed) for name in scored}
    candidates = {name: _candidate(FORMS[name], fits[name], errors, splits, scores)
                  for name, (errors, scores) in scored.items()}
    recommended = recommend({name: scores for name, (_, scores) in scored.items()})
    return {"candidates": candidates, "recommended": recommended, "not_applicable": left_out, "fits": fits}


def _interval(values) -> list[float]:
    return [float(v) for v in np.nanpercentile(values, [50 * (1 - fit.CI_LEVEL), 50 * (1 + fit.CI_LEVEL)])]


def _candidate(form, form_fit, errors, splits, scores) -> dict:
    constants = form_fit.fit.to_dict()
    constants.pop("samples")
    checks = [{"check": name, "n_fitted": int(fitted.sum()), "n_predicted": int(predicted.sum()),
               "mean_abs_rel_error": float(np.nanmean(row))} for row, (name, fitted, predicted) in zip(errors, splits)]
    return {"form": form.formula, "reference": form.citation, "n_constants": form.n_params, **constants,
            "extrapolation": {"mean_abs_rel_error": float(scores[0]), "ci": _interval(scores[1:]),
                              "method": "mean over the checks of each check's mean |L_pred/L - 1|; interval: "
                                        "case bootstrap over groups of points, each check refitted",
                              "checks": checks}}


def recommend(scores: dict) -> dict:
    """From each form's scores (1 + n_boot,) of extrapolation_scores: the lowest extrapolation error,
    or the form with the fewest constants among those within noise of it (the 95% interval of the
    paired difference holds 0), and by how much it beats the next best."""
    ranked = sorted(scores, key=lambda k: scores[k][0])
    best = ranked[0]

    def difference(other, base):
        return float(scores[other][0] - scores[base][0]), _interval(scores[other][1:] - scores[base][1:])

    within_noise = [k for k in ranked[1:] if difference(k, best)[1][0] <= 0]
    chosen = min([best] + within_noise, key=lambda k: (FORMS[k].n_params, ranked.index(k)))
    error = float(scores[chosen][0])
    result = {"law": chosen, "mean_abs_rel_error": error, "lowest_error": best, "within_noise_of_lowest": within_noise}
    others = [k for k in ranked if k != chosen]
    if not others:
        result["reason"] = f"the only form fitted ({error:.2%} mean absolute relative error extrapolating)"
        return result
    runner_up = others[0]
    gap, gap_ci = difference(runner_up, chosen)
    result |= {"next": runner_up, "margin": gap, "margin_ci": gap_ci}
    if chosen != best:
        result["reason"] = (f"{chosen} ({error:.2%}) is within noise of the lowest error, {best} "
                            f"({scores[best][0]:.2%}), with fewer constants "
                            f"({FORMS[chosen].n_params} against {FORMS[best].n_params})")
    elif gap_ci[0] <= 0:
        result["reason"] = (f"lowest error ({error:.2%}), {gap:.2%} below {runner_up}, but within noise "
                            f"(95% interval of the difference [{gap_ci[0]:.2%}, {gap_ci[1]:.2%}]); "
                            f"no form within noise has fewer constants")
    else:
        result["reason"] = (f"lowest error ({error:.2%}), {gap:.2%} below {runner_up} "
                            f"(95% interval of the difference [{gap_ci[0]:.2%}, {gap_ci[1]:.2%}])")
    return result


def candidates_table(selection: dict) -> str:
    """One line per candidate: its extrapolation error with its interval, and its constants."""
    lines = ["law forms by extrapolation error (mean |L_pred/L - 1| over the rolling and held-out checks, "
             f"{fit.CI_LEVEL:.0%} bootstrap interval):"]
    ranked = sorted(selection["candidates"].items(), key=lambda kv: kv[1]["extrapolation"]["mean_abs_rel_error"])
    for name, c in ranked:
        x = c["extrapolation"]
        mark = "*" if name == selection["recommended"]["law"] else " "
        constants = ", ".join(f"{k}={c[k]:.4g}" for k in FORMS[name].constants_names)
        lines.append(f" {mark}{name:<17} {x['mean_abs_rel_error']:7.2%} [{x['ci'][0]:.2%}, {x['ci'][1]:.2%}]  "
                     f"{c['n_constants']} constants: {constants}")
    for name, why in selection["not_applicable"].items():
        lines.append(f"  {name:<17} not fitted: {why}")
    lines.append(f"recommended: {selection['recommended']['law']}: {selection['recommended']['reason']}")
    for row in selection.get("predictions", []):
        others = ", ".join(f"{k} {v:.4g}" for k, v in row["candidates"].items() if k != row["law"])
        lines.append(f"predicted at N = {row['N']:.4g}, D = {row['D']:.4g}: {row['loss']:.4g} nats/token "
                     f"95% CI [{row['ci'][0]:.4g}, {row['ci'][1]:.4g}] ({row['law']}); {others}")
    return "\n".join(lines)


def predictions(fits: dict[str, FormFit], recommended: str, targets: dict) -> list[dict]:
    """For each target row (N, D and the columns the forms need): the recommended form's loss with the
    95% interval of its bootstrap fits (the fitted surface's uncertainty, not a run's own noise), and
    every candidate's loss (NaN where a form lacks a column it needs)."""
    missing = np.full(len(targets["N"]), np.nan)
    chosen = fits[recommended]
    interval = chosen.interval(targets) if _has_columns(chosen.form, targets) else np.column_stack([missing, missing])
    by_form = {name: f.predict(targets) if _has_columns(f.form, targets) else missing for name, f in fits.items()}
    rows = []
    for i in range(len(targets["N"])):
        inputs = {k: float(targets[k][i]) for k in ("N", "D", "U_D") if k in targets}
        rows.append({**inputs, "law": recommended, "loss": float(by_form[recommended][i]),
                     "ci": [float(v) for v in interval[i]], "candidates": {k: float(v[i]) for k, v in by_form.items()}})
    return rows


def _has_columns(form: LawForm, table: dict) -> bool:
    return all(k in table for k in ("N", "D") + form.needs)
