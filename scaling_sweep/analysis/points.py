"""From runs to the points each law is fitted to (loss in nats/token, B in tokens per batch, S in
optimizer steps; N and C as the runs carry them: analysis.conventions puts them in the convention of
the fit, non-embedding N and C = 6·N·tokens by default)."""

from __future__ import annotations

import collections

import numpy as np
from scipy.interpolate import CubicSpline

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
    FLOPs, batch tokens and early-stopped loss: the lowest of its best validation loss and its wsd
    cooldown branches' (a data-limited run's branch from before it overfit can beat its end; the
    tokens and FLOPs stay the run's own). data_limited marks runs whose training set was capped
    (train.max_unique_tokens), the runs of an L(D) / L(N, D) sweep."""
    keys = ("N", "N_total", "unique_tokens", "tokens", "flops", "batch_tokens",
            "n_layer", "d_model", "n_head", "d_ff")
    points = {k: np.array([_float(getattr(r.summary, k)) for r in runs]) for k in keys}
    points["D"] = points.pop("unique_tokens")
    points["loss"] = np.array([min(length_points(r).values()) for r in runs])
    points["data_limited"] = np.array([r.summary.max_unique_tokens is not None for r in runs])
    return points


def _float(value) -> float:
    return float(value) if value is not None else np.nan


IMPROVING, TAIL = 0.01, 0.2  # a loss that fell by over 1% in the last 20% of training was still improving
HALF_LENGTH = (0.4, 0.625)  # a wsd cooldown branch at "about half" a run's tokens (within 1.25x of half)


def still_improving(run: Run) -> bool:
    """Whether the run had not converged at its end, so that its early-stopped loss overstates L(N).
    A wsd run with a cooldown branch at about half its length (HALF_LENGTH): its end below (1 - IMPROVING)
    times that branch's loss, the decayed loss of a run of half its length; the last TAIL of a wsd run is
    its decay (optim.decay_fraction), worth several percent at any length (docs/kaplan_cpu.md section 1),
    so the rule below would flag every one. Other runs (and wsd runs without such a branch: their stable
    phase only): the best validation loss fell by more than IMPROVING over the last TAIL of steps."""
    half = half_length_branch(run) if run.wsd else None
    if half is not None:
        return bool(run.final_loss < (1 - IMPROVING) * half["val_loss"])
    m = run.metrics
    seen = np.isfinite(m["val_loss"])
    steps, val = m["step"][seen], m["val_loss"][seen]
    if run.wsd:  # the stable phase only: evaluations before the final decay
        stable = steps <= (1 - run.optim.get("decay_fraction", TAIL)) * (run.summary.step or 0)
        steps, val = steps[stable], val[stable]
    if len(val) < 2:
        return False
    before = steps <= (1 - TAIL) * steps[-1]
    return bool(before.any() and val.min() < (1 - IMPROVING) * val[before].min())


def half_length_branch(run: Run) -> dict | None:
    """The run's cooldown branch nearest half its tokens (in log), if within HALF_LENGTH of them."""
    tokens = run.summary.tokens or 0
    branches = [c for c in run.summary.cooldowns
                if tokens and HALF_LENGTH[0] <= c["tokens"] / tokens <= HALF_LENGTH[1] and finite_loss(c)]
    return min(branches, key=lambda c: abs(np.log(2 * c["tokens"] / tokens)), default=None)


def finite_loss(branch: dict) -> bool:
    return branch.get("val_loss") is not None and bool(np.isfinite(branch["val_loss"]))


def decayed_curve(run: Run) -> dict[str, np.ndarray]:
    """step, tokens, flops and loss of the points of a wsd run that are the loss of a run of their
    length: its cooldown branches and its end (its early-stopped loss), in order of steps."""
    s = run.summary
    rows = [(c["step"], c["tokens"], c["flops"], c["val_loss"]) for c in s.cooldowns if finite_loss(c)]
    rows.append((s.step, s.tokens, s.flops, run.final_loss))
    step, tokens, flops, loss = np.array(sorted(rows), float).T
    return {"step": step, "tokens": tokens, "flops": flops, "loss": loss}


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


def length_points(run: Run) -> dict[int, float]:
    """{steps: loss} of the points that are the loss of a run of that length (decayed_curve's)."""
    curve = decayed_curve(run)
    return dict(zip(curve["step"].astype(int).tolist(), curve["loss"].tolist()))


def common_length(runs: list[Run]) -> int | None:
    """The most steps at which every model size of the runs has a run of that length (an end or a
    cooldown branch), or None: Kaplan's size runs all trained for the same steps (sec. 2.2)."""
    steps_per_size = collections.defaultdict(set)
    for run in runs:
        steps_per_size[run.summary.N] |= length_points(run).keys()
    common = set.intersection(*steps_per_size.values()) if steps_per_size else set()
    return max(common, default=None)


def size_points(runs: list[Run]) -> dict:
    """L(N)'s points: per model size its lowest loss at the common length S of common_length (the best
    shape there), else (no common length) its lowest early-stopped loss; "S" the common length or None."""
    S = common_length(runs)
    if S is None:
        final = final_points(runs)
        N, loss = lowest_per_value(final["N"], final["loss"])
    else:
        at_S = [(r.summary.N, lengths[S]) for r in runs if S in (lengths := length_points(r))]
        N, loss = lowest_per_value(*(np.array(v, float) for v in zip(*at_S)))
    return {"N": N, "loss": loss, "S": S}


def _running_min_curve(run: Run, axis: str):
    curve = run.loss_curve()
    x, loss = curve[axis], np.minimum.accumulate(curve["loss"])
    keep = np.concatenate([[True], np.diff(x) > 0])  # interpolation needs increasing x
    return x[keep], loss[keep]


def frontier(runs: list[Run], B_crit=None) -> dict[str, np.ndarray]:
    """Kaplan fig. 1 left, figs. 13-14: the learning-curve points that lower the lowest loss any
    run has reached by their compute, the compute-efficient frontier, as measured (nothing
    interpolated). Of a wsd run only its decayed points (decayed_curve): its stable-phase evaluations
    lie 3-6% above the runs of their length (docs/kaplan_cpu.md section 1), Kaplan's cosine curves'
    every point is partly decayed. Returns C, loss, N, the run each point comes from (its group for the
    bootstrap), steps S and batch B (tokens). With a fitted B_crit(L) the compute is
    C_min = C/(1 + B/B_crit(L)) (eq. 5.5), the steps S_min = S/(1 + B_crit(L)/B) (eq. 5.4) and B
    the critical batch B_crit(L) at which compute-efficient training runs; C_raw, S_raw and B_run
    are each point's own compute, steps and batch (to redo the conversion under another B_crit)."""
    columns = []
    for index, run in enumerate(runs):
        curve, B = decayed_curve(run) if run.wsd else run.loss_curve(), float(run.summary.batch_tokens)
        C, S, batch = curve["flops"], curve["step"], np.full(len(curve["step"]), B)
        raw = [C, S, batch]
        if B_crit is not None:
            batch = B_crit.predict(curve["loss"])
            C, S = laws.min_compute(C, B / batch), laws.min_steps(S, B, batch)
        columns.append(np.stack([C, curve["loss"], np.full(len(C), float(run.summary.N)),
                                 np.full(len(C), index), S, batch, *raw]))
    keys = ("C", "loss", "N", "run", "S", "B", "C_raw", "S_raw", "B_run")
    if not columns:
        return {k: np.array([]) for k in keys}
    table = np.concatenate(columns, axis=1)
    table = table[:, np.argsort(table[0], kind="stable")]
    loss = table[1]
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(loss)[:-1]])
    on = loss < best_before
    front = dict(zip(keys, table[:, on]))
    front["run"] = front["run"].astype(int)
    return front


def frontier_resampled(front: dict, B_crit) -> dict | None:
    """C_min, S_min and B_crit of each frontier point under every bootstrap resample of the B_crit fit
    (eq. 5.4, 5.5), rows paired with the resamples of the fits made on the frontier: B_crit's
    uncertainty carried into C_min. None without a B_crit fit or without its resamples."""
    if B_crit is None or not B_crit.samples:
        return None
    B = laws.critical_batch(front["loss"][None], B_crit.samples["B_star"][:, None], B_crit.samples["alpha_B"][:, None])
    return {"C": laws.min_compute(front["C_raw"][None], front["B_run"][None] / B),
            "S": laws.min_steps(front["S_raw"][None], front["B_run"][None], B), "B": B}


def loss_at_steps(runs: list[Run], n_grid: int = 12) -> dict[str, np.ndarray]:
    """Points for L(N, S) ("run" numbers the run of each point, its group for the bootstrap): of a wsd
    run its decayed points (decayed_curve: its end and cooldown branches, each the run of its length;
    its stable-phase evaluations lie 3-6% above those, docs/kaplan_cpu.md section 1), of other runs the
    loss at log-spaced steps, a grid from the median second logged step (past the start of warmup)."""
    curves = [(decayed_curve(r) if r.wsd else r.loss_curve(), r) for r in runs]
    on_grid = [c for c, r in curves if not r.wsd and len(c["step"]) >= 3]
    if on_grid:
        lo = np.median([c["step"][1] for c in on_grid])
        S = np.geomspace(lo, max(c["step"][-1] for c in on_grid), n_grid)
    rows = []
    for index, (curve, run) in enumerate(curves):
        if run.wsd:
            steps, loss = curve["step"], curve["loss"]
        elif len(curve["step"]) >= 3:
            steps, loss = S, interp_loglog(S, curve["step"], curve["loss"])
        else:
            continue
        ok = np.isfinite(loss)
        rows += [(run.summary.N, s, run.summary.batch_tokens, l, index) for s, l in zip(steps[ok], loss[ok])]
    N, S, B, loss, run = np.array(rows, float).T if rows else (np.array([]),) * 5
    return {"N": N, "S": S, "B": B, "loss": loss, "run": run.astype(int)}


def steps_to_targets(runs: list[Run], n_targets: int = 4) -> dict[str, np.ndarray]:
    """Points for B_crit (Kaplan section 5.1): among runs of one N at two or more batch sizes,
    the steps S each needed to first reach each of n_targets losses that all of them reach.
    Returns target loss, batch tokens B, steps S, N and the run (its index in runs: a run's crossings
    share its noise, the unit the bootstrap redraws) per point."""
    rows = []
    for N in np.unique([r.summary.N for r in runs]):
        group = [(i, r) for i, r in enumerate(runs) if r.summary.N == N]
        if len({r.summary.batch_tokens for _, r in group}) < 2:
            continue
        curves = [(_running_min_curve(r, "step"), r.summary.batch_tokens, i) for i, r in group]
        highest = min(loss[0] for (_, loss), _, _ in curves)  # every run starts above it
        lowest = max(loss[-1] for (_, loss), _, _ in curves)  # every run gets below it
        if not lowest < highest:
            continue
        for target in np.geomspace(lowest, highest, n_targets + 2)[1:-1]:
            for (steps, loss), B, index in curves:
                rows.append((target, B, _first_crossing(steps, loss, target), N, index))
    target, B, S, N, run = np.array(rows, float).T if rows else (np.array([]),) * 5
    return {"target": target, "B": B, "S": S, "N": N, "run": run.astype(int)}


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
    run stopped at its compute budget and of every wsd cooldown branch at a budget (optim.cooldown_budgets:
    the run of that length, trained from the stable phase; not the branches at optim.cooldown_steps)."""
    rows = []
    for index, run in enumerate(runs):
        s = run.summary
        rows += [(trained_budget(run, c["tokens"]), c["flops"], s.N, c["tokens"], c["val_loss"], index)
                 for c in s.cooldowns if c.get("reason", "compute_budget") == "compute_budget"]
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
    groups = [g for g in gap_groups(budget, gap) if budget[g].max() <= spread * budget[g].min()]
    return _with_enough_sizes([_profile(budget[g], C[g], N[g], D[g], loss[g], run[g]) for g in groups])


def gap_groups(values, gap: float) -> list[np.ndarray]:
    """Indices of positive values grouped in sorted order, a new group wherever consecutive values differ by
    more than a factor gap."""
    order = np.argsort(values)
    breaks = np.nonzero(np.diff(np.log(np.asarray(values, float)[order])) > np.log(gap))[0] + 1
    return np.split(order, breaks)


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


# ---------------------------------------------------------------- the minimum of an IsoFLOP profile
#
# Every recipe takes a profile's sizes x = log N, losses y and weights w (R, n), one row per bootstrap
# resample (a point weighs as often as its run was drawn, 0 when it was not), and returns each row's
# log N_opt (NaN where the row's minimum is not bracketed by its sizes) and its fitted loss along GRID
# points of the profile's span (for the figure).

WINDOW = 0.2  # "window": the points within 20% of the lowest loss
BANDWIDTH = 1.5  # "weighted": Gaussian weights of width 1.5 in ln N (a factor 4.5) around the minimum
GRID = 201


def _parabolas(x, y, w):
    """Weighted least-squares parabolas y = a·x² + b·x + c, one per row of w (R, n): (R, 3),
    NaN where a row has fewer than 3 sizes of positive weight."""
    X = np.vander(x, 3)
    XtWX = np.einsum("ni,rn,nj->rij", X, w, X)
    XtWy = np.einsum("ni,rn,n->ri", X, w, y)
    scale = np.trace(XtWX, axis1=1, axis2=2)
    ok = ((w > 0).sum(1) >= 3) & (np.linalg.det(XtWX) > 1e-10 * scale ** 3)
    coef = np.full((len(w), 3), np.nan)
    if ok.any():
        coef[ok] = np.linalg.solve(XtWX[ok], XtWy[ok][..., None])[..., 0]
    return coef


def _vertex(coef, x, w):
    """x of each parabola's minimum; NaN where it opens downward or lies outside the sizes of
    positive weight (the budget's optimum not bracketed)."""
    a, b = coef[:, 0], coef[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        vertex = np.where(a > 0, -b / (2 * a), np.nan)
    inside = (vertex >= np.where(w > 0, x, np.inf).min(1)) & (vertex <= np.where(w > 0, x, -np.inf).max(1))
    return np.where(inside, vertex, np.nan)


def _on_grid(coef, grid):
    return coef[:, :1] * grid ** 2 + coef[:, 1:2] * grid + coef[:, 2:]


def _lowest(x, y, w):
    """x of each row's lowest loss among its points of positive weight, NaN at either end (not bracketed)."""
    masked = np.where(w > 0, y, np.inf)
    low = np.argmin(masked, 1)
    present = w > 0
    first, last = np.argmax(present, 1), len(x) - 1 - np.argmax(present[:, ::-1], 1)
    return np.where((low == first) | (low == last), np.nan, x[low]), masked[np.arange(len(w)), low]


def minimum_quadratic(x, y, w, grid):
    """Hoffmann et al. 2022 approach 2 (section 3.2, fig. 3): a parabola of loss in log N over the
    whole profile."""
    coef = _parabolas(x, y, w)
    return _vertex(coef, x, w), _on_grid(coef, grid)


def minimum_window(x, y, w, grid, window=WINDOW):
    """A parabola of loss in log N over the points within `window` of the profile's lowest loss
    and, at least, the lowest point's neighbours on either side (this project's recipe before the
    weighted one)."""
    centre, low_loss = _lowest(x, y, w)
    rank = np.cumsum(w > 0, 1)
    low_rank = np.where(w > 0, rank, 0)[np.arange(len(w)), np.argmin(np.where(w > 0, y, np.inf), 1)]
    near = (y <= low_loss[:, None] * (1 + window)) | (np.abs(rank - low_rank[:, None]) <= 1)
    near_w = np.where(near, w, 0.0)
    coef = _parabolas(x, y, near_w)
    return np.where(np.isnan(centre), np.nan, _vertex(coef, x, near_w)), _on_grid(coef, grid)


def minimum_weighted(x, y, w, grid, bandwidth=BANDWIDTH):
    """The default: a parabola of loss in log N with each point weighted by exp(-u²/2), u its distance
    from the minimum in units of `bandwidth` (in ln N), centred first at the lowest point, then once
    more at the vertex so found. Near the optimum every budget's profile has the same shape (the two
    power terms keep a fixed ratio there), so a window of fixed width in ln N biases every budget's
    vertex alike and the exponent not at all; points far off the optimum, which pull a whole-profile
    parabola aside, weigh nothing."""
    centre, _ = _lowest(x, y, w)
    for _ in range(2):
        local = w * np.exp(-0.5 * ((x - centre[:, None]) / bandwidth) ** 2)
        local = np.where(np.isnan(local), 0.0, local)
        coef = _parabolas(x, y, local)
        vertex = _vertex(coef, x, w)
        centre = np.where(np.isnan(centre), np.nan, vertex)
    return centre, _on_grid(coef, grid)


def minimum_interpolant(x, y, w, grid):
    """The minimum of a cubic spline through the profile's points (not-a-knot, in log N; a size drawn
    twice is one knot), on a fine grid refined by a parabola through the three grid points around it."""
    fine = np.linspace(x.min(), x.max(), 20 * GRID)
    vertex, curve = np.full(len(w), np.nan), np.full((len(w), len(grid)), np.nan)
    for pattern in np.unique(w > 0, axis=0):
        rows = np.all((w > 0) == pattern, 1)
        if pattern.sum() < 4:
            continue
        spline = CubicSpline(x[pattern], y[pattern])
        inside = (fine >= x[pattern].min()) & (fine <= x[pattern].max())
        values = np.where(inside, spline(fine), np.inf)
        i = int(np.argmin(values))
        if 0 < i < len(fine) - 1 and np.isfinite(values[i - 1]) and np.isfinite(values[i + 1]):
            a, b, _ = np.polyfit(fine[i - 1:i + 2] - fine[i], values[i - 1:i + 2], 2)
            vertex[rows] = fine[i] - b / (2 * a) if a > 0 else fine[i]
        curve[rows] = np.where((grid >= x[pattern].min()) & (grid <= x[pattern].max()), spline(grid), np.nan)
    return vertex, curve


ISOFLOP_MINIMA = {"weighted": minimum_weighted, "quadratic": minimum_quadratic, "interpolant": minimum_interpolant,
                  "window": minimum_window}
DEFAULT_MINIMUM = "weighted"
MINIMUM_NOTES = {
    "weighted": f"a parabola of loss in log N, points weighted by a Gaussian of width {BANDWIDTH:g} in ln N "
                "around the minimum (this project's default, chosen by simulation: docs/intervals.md)",
    "quadratic": "a parabola of loss in log N over the whole profile (Hoffmann et al. 2022, approach 2)",
    "interpolant": "the minimum of a cubic spline through the profile's points",
    "window": f"a parabola of loss in log N over the points within {WINDOW:.0%} of the lowest loss",
}


def isoflop_minimum(profile: dict, method: str = DEFAULT_MINIMUM) -> dict | None:
    """Chinchilla approach 2: the optimum of one IsoFLOP profile by one of ISOFLOP_MINIMA. Returns
    N_opt, D_opt = C/(6·N_opt), the fitted loss there and the fitted curve over the profile (N, loss),
    or None when the minimum is not bracketed by the profile's sizes."""
    x, y, middle = _centred(profile)
    grid = np.linspace(x.min(), x.max(), GRID)
    vertex, curve = ISOFLOP_MINIMA[method](x, y, np.ones((1, len(x))), grid)
    if np.isnan(vertex[0]):
        return None
    N_opt = float(np.exp(vertex[0] + middle))
    C, D_opt = at_optimum(profile, N_opt)
    return {"C": C, "budget": profile.get("budget", profile["C"]), "N_opt": N_opt, "D_opt": D_opt,
            "loss": float(np.interp(vertex[0], grid, curve[0])), "method": method,
            "curve": {"N": np.exp(grid + middle), "loss": curve[0]},
            "log_N_log_D": (x + middle, np.log(_tokens(profile)))}


def _tokens(profile: dict) -> np.ndarray:
    """Each point's D (tokens): recorded, or C/(6N) for a table's profile given only its C."""
    return profile["D"] if "D" in profile else laws.tokens_for_budget(profile["C"], profile["N"])


def log_tokens_at(minimum: dict, log_N_opt: np.ndarray) -> np.ndarray:
    """log D at (resampled) log N_opt, interpolated between the profile's points as at_optimum does."""
    return np.interp(log_N_opt, *minimum["log_N_log_D"])


def _centred(profile):
    """log N of a profile less its middle (well-conditioned parabolas), the losses, and the middle."""
    log_N = np.log(np.asarray(profile["N"], float))
    middle = 0.5 * (log_N.min() + log_N.max())
    return log_N - middle, np.asarray(profile["loss"], float), middle


def resampled_log_optima(profiles: list[dict], run_weights: np.ndarray, method: str = DEFAULT_MINIMUM) -> np.ndarray:
    """(R, J) log N_opt of each profile rebuilt from each row of run_weights (R, runs): a point weighs
    as often as its run (profile["run"], an index into the columns) was drawn. NaN where a resample's
    profile has no bracketed minimum."""
    columns = []
    for p in profiles:
        x, y, middle = _centred(p)
        vertex, _ = ISOFLOP_MINIMA[method](x, y, run_weights[:, p["run"]], x[:1])
        columns.append(vertex + middle)
    return np.stack(columns, 1) if columns else np.empty((len(run_weights), 0))
