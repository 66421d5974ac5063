"""From runs to the points each law is fitted to (loss in nats/token, B in tokens per batch, S in
optimizer steps; N and C as the runs carry them: analysis.conventions puts them in the convention of
the fit, non-embedding N and C = 6·N·tokens by default)."""

from __future__ import annotations

import numpy as np

from scaling_sweep.analysis.runs import Run
from scaling_sweep.core import laws

MIN_PROFILE_SIZES = 3  # model sizes an IsoFLOP profile needs for a parabola
# the source of IsoFLOP profiles read off learning curves, where no run was trained to a budget
CURVE_PROFILES = "learning curves read at fixed compute (schedules not finished at C)"


def interp_loglog(x_new, x, y, hold_last=False):
    """y at x_new, interpolated linearly in log x and log y; NaN outside [x[0], x[-1]], or
    beyond x[-1] the last y when hold_last."""
    x_new = np.asarray(x_new, float)
    if len(x) < 2:
        return np.full(x_new.shape, np.nan)
    inside = (x_new >= x[0]) & ((x_new <= x[-1]) | hold_last)
    out = np.full(x_new.shape, np.nan)
    out[inside] = np.exp(np.interp(np.log(x_new[inside]), np.log(x), np.log(y)))
    return out


def final_points(runs: list[Run]) -> dict[str, np.ndarray]:
    """One point per run: its shape, N, N_total, dataset size D (unique tokens), tokens,
    FLOPs, batch tokens and early-stopped loss. data_limited marks runs whose training set
    was capped (train.max_unique_tokens), the runs of an L(D) / L(N, D) sweep."""
    keys = ("N", "N_total", "unique_tokens", "tokens", "flops", "batch_tokens",
            "n_layer", "d_model", "n_head", "d_ff")
    points = {k: np.array([_float(getattr(r.summary, k)) for r in runs]) for k in keys}
    points["D"] = points.pop("unique_tokens")
    points["loss"] = np.array([r.final_loss for r in runs])
    points["data_limited"] = np.array([r.summary.max_unique_tokens is not None for r in runs])
    return points


def _float(value) -> float:
    return float(value) if value is not None else np.nan


IMPROVING, TAIL = 0.01, 0.2  # a loss that fell by over 1% in the last 20% of training was still improving


def still_improving(run: Run) -> bool:
    """Whether the run's best validation loss fell by more than IMPROVING over its last TAIL of
    steps: a run that had not converged, whose early-stopped loss overstates L(N)."""
    m = run.metrics
    seen = np.isfinite(m["val_loss"])
    steps, val = m["step"][seen], m["val_loss"][seen]
    if len(val) < 2:
        return False
    before = steps <= (1 - TAIL) * steps[-1]
    return bool(before.any() and val.min() < (1 - IMPROVING) * val[before].min())


def at_modal_batch(runs: list[Run]) -> list[Run]:
    """The runs at the sweep's most common batch size: a size sweep's own runs, without the
    batch-size variants that train the same N on more or fewer tokens."""
    if not runs:
        return runs
    batches = [r.summary.batch_tokens for r in runs]
    modal = max(set(batches), key=batches.count)
    return [r for r in runs if r.summary.batch_tokens == modal]


def lowest_per_value(x, loss):
    """For each distinct x, the lowest loss (the best shape or batch size at that x)."""
    values = np.unique(x)
    return values, np.array([loss[x == v].min() for v in values])


def _running_min_curve(run: Run, axis: str):
    curve = run.loss_curve()
    x, loss = curve[axis], np.minimum.accumulate(curve["loss"])
    keep = np.concatenate([[True], np.diff(x) > 0])  # interpolation needs increasing x
    return x[keep], loss[keep]


def frontier(runs: list[Run], B_crit=None) -> dict[str, np.ndarray]:
    """Kaplan fig. 1 left, figs. 13-14: the learning-curve points that lower the lowest loss any
    run has reached by their compute, the compute-efficient frontier, as measured (nothing
    interpolated). Returns C, loss, N, the run each point comes from (its group for the
    bootstrap), steps S and batch B (tokens). With a fitted B_crit(L) the compute is
    C_min = C/(1 + B/B_crit(L)) (eq. 5.5), the steps S_min = S/(1 + B_crit(L)/B) (eq. 5.4) and B
    the critical batch B_crit(L) at which compute-efficient training runs."""
    columns = []
    for index, run in enumerate(runs):
        curve, B = run.loss_curve(), float(run.summary.batch_tokens)
        C, S, batch = curve["flops"], curve["step"], np.full(len(curve["step"]), B)
        if B_crit is not None:
            batch = B_crit.predict(curve["loss"])
            C, S = laws.min_compute(C, B / batch), laws.min_steps(S, B, batch)
        columns.append(np.stack([C, curve["loss"], np.full(len(C), float(run.summary.N)),
                                 np.full(len(C), index), S, batch]))
    if not columns:
        return {k: np.array([]) for k in ("C", "loss", "N", "run", "S", "B")}
    table = np.concatenate(columns, axis=1)
    C, loss, N, run, S, B = table[:, np.argsort(table[0], kind="stable")]
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(loss)[:-1]])
    on = loss < best_before
    return {"C": C[on], "loss": loss[on], "N": N[on], "run": run[on].astype(int), "S": S[on], "B": B[on]}


def loss_at_steps(runs: list[Run], n_grid: int = 12) -> dict[str, np.ndarray]:
    """Points for L(N, S): each run's loss at log-spaced steps ("run" numbers the run of each
    point, its group for the bootstrap). The grid starts at the median second logged step, past
    the start of warmup."""
    curves = [r.loss_curve() for r in runs]
    curves = [(c, r) for c, r in zip(curves, runs) if len(c["step"]) >= 3]
    if not curves:
        return {k: np.array([]) for k in ("N", "S", "B", "loss", "run")}
    lo = np.median([c["step"][1] for c, _ in curves])
    S = np.geomspace(lo, max(c["step"][-1] for c, _ in curves), n_grid)
    rows = []
    for index, (curve, run) in enumerate(curves):
        loss = interp_loglog(S, curve["step"], curve["loss"])
        ok = np.isfinite(loss)
        rows += [(run.summary.N, s, run.summary.batch_tokens, l, index) for s, l in zip(S[ok], loss[ok])]
    N, S, B, loss, run = np.array(rows, float).T if rows else (np.array([]),) * 5
    return {"N": N, "S": S, "B": B, "loss": loss, "run": run.astype(int)}


def steps_to_targets(runs: list[Run], n_targets: int = 4) -> dict[str, np.ndarray]:
    """Points for B_crit (Kaplan section 5.1): among runs of one N at two or more batch sizes,
    the steps S each needed to first reach each of n_targets losses that all of them reach.
    Returns target loss, batch tokens B, steps S and N per point."""
    rows = []
    for N in np.unique([r.summary.N for r in runs]):
        group = [r for r in runs if r.summary.N == N]
        if len({r.summary.batch_tokens for r in group}) < 2:
            continue
        curves = [(_running_min_curve(r, "step"), r.summary.batch_tokens) for r in group]
        highest = min(loss[0] for (_, loss), _ in curves)  # every run starts above it
        lowest = max(loss[-1] for (_, loss), _ in curves)  # every run gets below it
        if not lowest < highest:
            continue
        for target in np.geomspace(lowest, highest, n_targets + 2)[1:-1]:
            for (steps, loss), B in curves:
                rows.append((target, B, _first_crossing(steps, loss, target), N))
    target, B, S, N = np.array(rows, float).T if rows else (np.array([]),) * 4
    return {"target": target, "B": B, "S": S, "N": N}


def _first_crossing(steps, loss, target):
    """Step at which a non-increasing loss curve first reaches target (log-log interpolation)."""
    i = int(np.argmax(loss <= target))
    if i == 0:
        return float(steps[0])
    t = (np.log(target) - np.log(loss[i - 1])) / (np.log(loss[i]) - np.log(loss[i - 1]))
    return float(np.exp(np.log(steps[i - 1]) + t * (np.log(steps[i]) - np.log(steps[i - 1]))))


def isoflop_profiles(runs: list[Run], n_budgets: int = 6) -> tuple[list[dict], str]:
    """Chinchilla approach 2: loss against N at fixed compute C. When the sweep holds runs
    stopped at compute budgets (stop_reason compute_budget) or wsd cooldown branches, each budget
    the runs were trained to forms a profile; otherwise each run's learning curve is read at
    log-spaced budgets (a run whose schedule had not finished by C: losses above a run trained for
    C), using the runs at the most common batch size. Returns the profiles (see _profile) with at
    least MIN_PROFILE_SIZES sizes, and how they were made."""
    budget_points = _budget_points(runs)
    if len(budget_points["budget"]):
        return (budget_profiles(**budget_points),
                "final losses of runs stopped at each compute budget and of their wsd cooldown branches")
    profiles = _curve_profiles(at_modal_batch(runs), n_budgets)
    return _with_enough_sizes(profiles), CURVE_PROFILES


def trained_budget(run: Run, tokens) -> float:
    """The compute budget a point of the run was trained to, counted as training counts
    train.compute_budget and optim.cooldown_budgets (core.budget: 6·N·tokens, N non-embedding),
    whatever convention the run's N and FLOPs were put in (analysis.conventions)."""
    s = run.summary
    return (s.flops_per_token_kaplan_6N or 6.0 * s.N) * tokens


def _budget_points(runs: list[Run]) -> dict[str, np.ndarray]:
    """budget (trained_budget), C (in the runs' convention), N, D (tokens), loss and run of every
    run stopped at its compute budget and of every wsd cooldown branch (optim.cooldown_budgets:
    the run of that length, trained from the stable phase)."""
    rows = []
    for index, run in enumerate(runs):
        s = run.summary
        rows += [(trained_budget(run, c["tokens"]), c["flops"], s.N, c["tokens"], c["val_loss"], index)
                 for c in s.cooldowns]
        if s.stop_reason == "compute_budget":
            rows.append((trained_budget(run, s.tokens), s.flops, s.N, s.tokens, run.final_loss, index))
    budget, C, N, D, loss, run = np.array(rows, float).T if rows else (np.array([]),) * 6
    return {"budget": budget, "C": C, "N": N, "D": D, "loss": loss, "run": run.astype(int)}


def budget_profiles(C, N, loss, run=None, D=None, budget=None, gap: float = 1.25,
                    spread: float = 1.5) -> list[dict]:
    """Points grouped into compute budgets: sorted budget (the budget each point was trained to;
    default C) is split wherever consecutive values differ by more than a factor gap (budgets
    read off a figure scatter by a few percent); a group spanning more than a factor spread is no
    budget and is dropped. A point keeps its own C (in the fit's convention, which may spread
    within a budget: conventions other than the one the budgets were set in) and D (tokens;
    default C/(6N)). run numbers the run each point comes from (default: every point its own)."""
    C, N, loss = (np.asarray(x, float) for x in (C, N, loss))
    run = np.arange(len(C)) if run is None else np.asarray(run)
    D = laws.tokens_for_budget(C, N) if D is None else np.asarray(D, float)
    budget = C if budget is None else np.asarray(budget, float)
    order = np.argsort(budget)
    breaks = np.nonzero(np.diff(np.log(budget[order])) > np.log(gap))[0] + 1
    groups = [g for g in np.split(order, breaks) if budget[g].max() <= spread * budget[g].min()]
    return _with_enough_sizes([_profile(budget[g], C[g], N[g], D[g], loss[g], run[g]) for g in groups])


def _with_enough_sizes(profiles):
    return [p for p in profiles if len(np.unique(p["N"])) >= MIN_PROFILE_SIZES]


def _profile(budget, C, N, D, loss, run):
    """One IsoFLOP profile sorted by N: "budget" (FLOPs as the points were trained to) and "C" (in
    the fit's convention) geometric means over its points, and each point's N, D (tokens), loss,
    C ("C_each") and run (or point) number."""
    order = np.argsort(N)
    N, D, C_each, loss = (np.asarray(x, float)[order] for x in (N, D, C, loss))
    return {"budget": _geometric_mean(budget), "C": _geometric_mean(C_each), "N": N, "D": D, "C_each": C_each,
            "loss": loss, "run": np.asarray(run, int)[order]}


def _geometric_mean(x) -> float:
    return float(np.exp(np.mean(np.log(x)))) if len(x) else float("nan")


def at_optimum(profile: dict, N_opt: float) -> tuple[float, float]:
    """C (in the fit's convention) and D (tokens) of a profile at N_opt, interpolated in log-log
    between its points: C, the cost of the optimum's own N and D, is what an allocation law is
    fitted against. A profile given only its C (a table's budget): C and C/(6·N_opt)."""
    if "C_each" not in profile:
        return profile["C"], float(laws.tokens_for_budget(profile["C"], N_opt))
    return tuple(float(interp_loglog(N_opt, profile["N"], profile[key])) for key in ("C_each", "D"))


PROFILE_SPREAD = 1.1  # a profile whose points' C differ by more than this is not IsoFLOP in the fit's count


def budget_spread(profiles: list[dict]) -> float:
    """The largest factor by which one profile's points' C differ (1 for profiles at one C each)."""
    return max((p["C_each"].max() / p["C_each"].min() for p in profiles), default=1.0)


def _curve_profiles(runs, n_budgets):
    curves = [(r.loss_curve(), r.summary.N) for r in runs]
    curves = [(c, N) for c, N in curves if len(c["flops"]) >= 2]
    if len(curves) < MIN_PROFILE_SIZES:
        return []
    # budgets that the 3rd-smallest run's curve still covers, so profiles have 3+ sizes
    ends = sorted(c["flops"][-1] for c, _ in curves)
    starts = sorted(c["flops"][1] for c, _ in curves)
    lo, hi = starts[MIN_PROFILE_SIZES - 1], ends[-MIN_PROFILE_SIZES]
    if not lo < hi:
        return []
    profiles = []
    for C in np.geomspace(lo, hi, n_budgets):
        at_C = np.array([(N, float(interp_loglog(C, c["flops"], c["loss"])),
                          float(interp_loglog(C, c["flops"], c["tokens"])), i) for i, (c, N) in enumerate(curves)])
        N, loss, D, run = at_C[np.isfinite(at_C[:, 1])].T
        profiles.append(_profile(np.full(len(N), C), np.full(len(N), C), N, D, loss, run))
    return profiles


# A profile's points within 20% of its lowest loss locate its minimum: on wide synthetic profiles
# of Chinchilla's law with 1% noise this gave the N_opt exponent within 0.015 (bias +0.003), where
# 3% was too noisy (0.03) and the whole profile biased (-0.044).
NEAR_MINIMUM = 0.2


def isoflop_minimum(profile: dict, window: float = NEAR_MINIMUM) -> dict | None:
    """Chinchilla approach 2: the optimum of one IsoFLOP profile from the points near its lowest
    loss, a parabola of log-loss in log N over those within `window` of it (at least the lowest,
    its two neighbours and, where the profile has them, a fourth). A parabola over a whole wide profile is
    pulled off the minimum by the far, overlarge and undertrained models. Returns N_opt, its
    C and D_opt (at_optimum), the profile's budget, the loss there and what the vertex's
    uncertainty needs (see optimum_variances); None when the lowest loss is at either end of the profile or the
    parabola opens downward (the budget's optimum was not bracketed)."""
    log_N, loss = np.log(profile["N"]), np.asarray(profile["loss"], float)
    low = int(np.argmin(loss))
    if low in (0, len(loss) - 1):
        return None
    near = np.flatnonzero(loss <= loss[low] * (1 + window))
    by_distance = np.argsort(np.abs(np.arange(len(loss)) - low), kind="stable")
    near = np.union1d(near, by_distance[:min(4, len(loss))])
    x = log_N[near] - log_N[low]  # centred for a well-conditioned fit
    a, b, c = np.polyfit(x, np.log(loss[near]), 2)
    if a <= 0:
        return None
    vertex = -b / (2 * a)
    if not x.min() <= vertex <= x.max():
        return None
    N_opt = float(np.exp(log_N[low] + vertex))
    C, D_opt = at_optimum(profile, N_opt)
    residuals = np.log(loss[near]) - np.polyval([a, b, c], x)
    design = np.vander(x, 3)
    return {"C": C, "budget": profile.get("budget", profile["C"]), "N_opt": N_opt, "D_opt": D_opt,
            "loss": float(np.exp(c - b * b / (4 * a))), "n_near": len(near),
            "parabola": {"center_log_N": float(log_N[low]), "coef": [float(a), float(b), float(c)],
                         "span_log_N": [float(log_N[near].min()), float(log_N[near].max())]},
            "rss": float(residuals @ residuals), "dof": len(near) - 3,
            "vertex_variance_factor": _vertex_variance_factor(a, b, design)}


def _vertex_variance_factor(a, b, design) -> float:
    """Var(log N_opt) / sigma² by the delta method: vertex = -b/(2a) of the least-squares parabola,
    whose coefficients have covariance sigma²·(XᵀX)⁻¹ for residual variance sigma² of log-loss."""
    gradient = np.array([b / (2 * a * a), -1 / (2 * a), 0.0])
    return float(gradient @ np.linalg.pinv(design.T @ design) @ gradient)


def optimum_variances(minima: list[dict]) -> np.ndarray:
    """Var(log N_opt) of each profile's optimum, with the residual variance of log-loss pooled
    over every profile's near-minimum parabola (one noise level for the sweep); NaN when no
    parabola has a point to spare (dof 0 everywhere)."""
    dof = sum(m["dof"] for m in minima)
    sigma2 = sum(m["rss"] for m in minima) / dof if dof else np.nan
    return np.array([m["vertex_variance_factor"] * sigma2 for m in minima])
