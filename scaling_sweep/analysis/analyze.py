"""Fit Kaplan's and Chinchilla's laws to a sweep (or a CSV of points) and redraw the figures.

    python -m scaling_sweep.analyze runs/<sweep>            # -> runs/<sweep>/analysis/
    python -m scaling_sweep.analyze --points table.csv      # columns N, loss, and D or C
    python -m scaling_sweep.analyze --points table.csv --json
    python -m scaling_sweep.analyze --hparams runs.csv [--predict targets.csv]   # optimal LR and batch laws
    python -m scaling_sweep.analyze --points table.csv --law auto [--predict targets.csv]   # law forms by extrapolation

Conventions: loss in nats/token of the runs' tokenizer; D = training tokens; N and C in the
headline convention (--params non_embedding|total, --compute 6N|exact; default non-embedding N
and C = 6·N·D), and under all four in fits.json's by_convention; 95% bootstrap intervals.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from scaling_sweep.analysis import conventions, fit, hparams, law_forms, points, report
from scaling_sweep.analysis.conventions import HEADLINE, Convention
from scaling_sweep.analysis.fit import Fit, FitError
from scaling_sweep.analysis.runs import Run, SweepError, check_one_setting, read_sweep
from scaling_sweep.core import laws
from scaling_sweep.core.errors import entry_point
from scaling_sweep.core.files import strict_json

UNITS = {"loss": "nats/token", "D": "training tokens", "B": "tokens per batch", "S": "optimizer steps"}

# What a sweep needs for each law, for the line that says why one was skipped
NEEDS = {
    "L_N": "finished runs at 3 or more model sizes (a size sweep)",
    "L_D": "runs of one model at 3 or more dataset sizes (a data sweep: train.max_unique_tokens)",
    "L_ND": "a data sweep: runs at 2 or more model sizes and 2 or more dataset sizes (train.max_unique_tokens)",
    "L_Cmin": "learning curves of 3 or more finished runs",
    "L_NS": "learning curves at 2 or more model sizes",
    "B_crit": "a batch-size sweep: one model at 2 or more batch sizes (train.batch_size)",
    "chinchilla": ("IsoFLOP profiles: 3 or more sizes whose curves overlap in compute, "
                   "or runs stopped at train.compute_budget"),
    "N_opt": "3 or more IsoFLOP profiles whose parabolas have their minimum inside the sizes sampled",
    "D_opt": "3 or more IsoFLOP profiles whose parabolas have their minimum inside the sizes sampled",
    "L_C": "learning curves of 3 or more finished runs",
    "N_opt_frontier": "3 or more model sizes on the compute-efficient frontier",
    "S_min_frontier": "3 or more model sizes on the compute-efficient frontier and a B_crit fit",
    "B_frontier": "3 or more model sizes on the compute-efficient frontier and a B_crit fit",
}


# The inputs of each law, in the order the fitters take them (for the fitted range in fits.json)
INPUTS = {"L_N": "N", "L_D": "D", "L_ND": "ND", "L_NS": "NS", "chinchilla": "ND", "L_C": "C", "L_Cmin": "C",
          "N_opt": "C", "D_opt": "C", "N_opt_frontier": "C", "S_min_frontier": "C", "B_frontier": "C"}


def _fit_range(key: str, inputs) -> dict:
    """[lowest, highest] of each input a law was fitted on (and of C = 6·N·D for N and D), the range
    the planner warns about extrapolating past."""
    named = dict(zip(INPUTS[key.removesuffix("_floor")], (np.asarray(x, float) for x in inputs)))
    if {"N", "D"} <= named.keys():
        named["C"] = 6.0 * named["N"] * named["D"]
    return {name: [float(np.nanmin(x)), float(np.nanmax(x))] for name, x in named.items() if len(x)}


# The held-out Chinchilla refit starts from every 5th point of the 4500-start grid: it
# lands in the same minimum and halves the time of an analysis.
HELD_OUT_CHINCHILLA = partial(fit.fit_chinchilla, starts=fit.CHINCHILLA_GRID[::5])


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Analysis:
    name: str
    setting: dict  # tokenizer and n_ctx of the runs, or the source of external points
    fits: dict[str, Fit] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # law -> why it was not fitted
    data: dict = field(default_factory=dict)  # points behind each fit, for the figures
    runs: list[Run] = field(default_factory=list)  # runs used
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (run, why)
    convention: Convention = HEADLINE  # of N and C in every fit
    isoflop_min: str = points.DEFAULT_MINIMUM  # how approach 2 takes a profile's minimum (points.ISOFLOP_MINIMA)
    by_convention: dict[str, Analysis] = field(default_factory=dict)  # convention key -> its fits

    def attempt(self, key: str, make, held_out=None, points: str = "", data=None, rolling=None) -> Fit | None:
        """Run one fit; a FitError becomes a line in `skipped`. held_out() -> dict or FitError;
        points says what the fitted points are; data = (inputs, observed) gives the goodness of
        fit, and with it rolling (a fitter for fit.rolling_check) the rolling prediction check."""
        try:
            result = make()
        except FitError as err:
            self.skipped[key] = f"{err}; needs {NEEDS.get(key.removesuffix('_floor'), 'more points')}"
            return None
        result.extra["points"] = points
        if held_out is not None:
            try:
                result.extra["held_out"] = held_out()
            except FitError as err:
                result.extra["held_out"] = {"skipped": str(err)}
        if data is not None:
            result.extra["fit_range"] = _fit_range(key, data[0])
            result.extra["goodness"] = fit.goodness(result, *data)
            if rolling is not None:
                result.extra["rolling"] = fit.rolling_check(rolling, *data)
        self.fits[key] = result
        return result

    def units(self) -> dict:
        if "points_file" in self.setting:  # external points come in the convention of their source
            stated = self.setting.get("points_params")
            counted = {"params": stated, "N": f"{conventions.PARAMS[stated]}, as the points file counts them"} \
                if stated else {"N": "parameters as the points file counts them (not stated: analyze --params)"}
            return {**UNITS, **counted, "C": "FLOPs as the points file gives them (C = 6·N·D where it gives D)"}
        return {**UNITS, **self.convention.describe()}

    def to_json(self) -> dict:
        laws_out = {}
        for key, law_fit in self.fits.items():
            form, reference = report.law_form(law_fit)
            laws_out[key] = {"form": form, "reference": reference, **law_fit.to_dict(),
                             "convention": self.units(), **self.setting}
        return laws_out


# ---------------------------------------------------------------- fits on a sweep


def analyze_sweep(sweep_dir, allow_mixed: bool = False, convention: Convention = HEADLINE,
                  isoflop_min: str = points.DEFAULT_MINIMUM) -> Analysis:
    """Every law the sweep has data for, in the headline convention, and the headline exponents
    under all four conventions (by_convention)."""
    sweep = read_sweep(sweep_dir)
    usable = sweep.usable()
    progress(f"{sweep.name}: {len(sweep.runs)} runs, {len(usable)} finished and usable")
    if len(usable) < 3:
        reasons = "; ".join(f"{n}: {why}" for n, why in sweep.excluded()) or "none excluded"
        raise SweepError(f"{sweep.path}: {len(usable)} finished runs, a fit needs at least 3 "
                         f"(not usable: {reasons})")
    setting = check_one_setting(usable, allow_mixed)
    result = Analysis(sweep.name, setting, runs=usable, excluded=sweep.excluded(), convention=convention,
                      isoflop_min=isoflop_min)
    _fit_everything(result, [convention.apply(r) for r in usable])
    for other in conventions.ALL:
        progress(f"convention {other.key}")
        result.by_convention[other.key] = result if other == convention else _convention_fits(result, other)
    return result


def _fit_everything(result: Analysis, runs: list[Run]) -> None:
    full_data = [r for r in runs if r.summary.max_unique_tokens is None]
    size_runs = points.at_modal_batch(full_data)
    # L(N, D) and L(D) compare runs of one training setup: the batch sweep's other batches are B_crit's
    result.data["final"] = points.final_points(points.at_modal_batch(runs))
    result.data["size_runs"] = points.final_points(size_runs)
    _fit_size_and_data(result, runs, size_runs)
    B_crit = _fit_batch(result, full_data)
    _fit_compute(result, full_data, B_crit)
    _fit_steps(result, full_data, B_crit)
    profiles, source = points.isoflop_profiles(full_data)
    _fit_isoflops(result, profiles, source)
    _profile_caveats(result, profiles, source)
    _select_law_form(result, profiles)


SWEEP_LAW_FORM_STARTS = 24
# --points --law: each extrapolation check fitted from about this many of a form's starts (as the selection
# rates of tests/synthetic_law_forms.py were measured); the fits to all points, whose constants are reported,
# from every start
POINTS_LAW_FORM_STARTS = 100


def _select_law_form(result: Analysis, profiles: list[dict]) -> None:
    """The law forms of law_forms.py on approach 3's points (each run's points one group), scored by how
    each extrapolates from the smaller sizes to the larger: the candidates' table of the report."""
    if not profiles:
        result.skipped["law_forms"] = f"no IsoFLOP profile points; needs {NEEDS['chinchilla']}"
        return
    table = _profile_points(profiles)
    table["group"] = table.pop("run")
    progress(f"law forms: {len(table['loss'])} points; fitting on the smaller sizes, scoring on the larger ones")
    try:
        # a sweep's report is not the place for every form's intervals: the scores' bootstrap is kept, each
        # check fitted from a thinned grid of starts (--points --law gives the full fits)
        selection = law_forms.select(table, refit_boot=0, extrapolation_starts=SWEEP_LAW_FORM_STARTS)
    except FitError as err:
        result.skipped["law_forms"] = str(err)
        return
    selection.pop("fits")
    result.data["law_selection"] = selection


def _convention_fits(headline: Analysis, convention: Convention) -> Analysis:
    """The laws whose exponents move with the counting convention (L(N), the compute frontier,
    N_opt, Chinchilla's approach 3), refitted with the runs' N and FLOPs in `convention`."""
    result = Analysis(headline.name, headline.setting, runs=headline.runs, convention=convention,
                      isoflop_min=headline.isoflop_min)
    missing = [f"{r.name}: {why}" for r in headline.runs if (why := convention.missing(r))]
    if missing:
        result.skipped["all"] = f"runs lack what this convention needs: {'; '.join(missing[:3])}"
        return result
    runs = [convention.apply(r) for r in headline.runs]
    full_data = [r for r in runs if r.summary.max_unique_tokens is None]
    size = points.size_points(points.at_modal_batch(full_data))
    N, loss = size["N"], size["loss"]
    result.attempt("L_N", lambda: fit.fit_power_law(N, loss, "N"), points="as in the headline convention",
                   data=([N], loss))
    _fit_compute(result, full_data, headline.fits.get("B_crit"), with_floor=False)
    profiles, source = points.isoflop_profiles(full_data)
    _fit_approach_2(result, profiles, source)
    _fit_approach_3(result, profiles, source, starts=fit.CHINCHILLA_GRID[::5], held_out=False)
    _profile_caveats(result, profiles, source)
    return result


ISOFLOP_LAWS = ("N_opt", "D_opt", "chinchilla")
CURVE_CAVEAT = ("profiles read off learning curves mid-schedule, not runs trained to each budget: a run whose "
                "schedule had not finished at C lies above one trained for C (Hoffmann et al. 2022 section 3.1, "
                "their critique of Kaplan et al.), so the optimum moves; left out of the comparison with the papers")


def _profile_caveats(result: Analysis, profiles: list[dict], source: str) -> None:
    """The warnings IsoFLOP fits carry: profiles read off learning curves (a caveat the verdict
    carries too), and a sweep that is IsoFLOP only in the count its budgets were set in."""
    fitted = [result.fits[key] for key in ISOFLOP_LAWS if key in result.fits]
    spread = points.budget_spread(profiles) if source != points.CURVE_PROFILES else 1.0
    for f in fitted:
        if source == points.CURVE_PROFILES:
            f.warn(CURVE_CAVEAT)
            f.extra["caveat"] = "curve profiles"
        if spread > points.PROFILE_SPREAD:
            f.warn(f"the sweep is IsoFLOP only as its budgets were set (6·N·tokens, N non-embedding): counted as "
                   f"{result.convention.key}, one profile's points spend up to {spread:.3g}x different C; each profile "
                   "is still the budget its runs were trained to (D = their tokens), and approach 2's C is that of "
                   "its optimum")



def _with_and_without_floor(result: Analysis, key: str, fitter, inputs: list, loss, points_note: str,
                            **fit_kwargs) -> None:
    """Kaplan's form (fitter) and the same with an irreducible L_inf (its floor=True, Henighan et al. 2020),
    `key` and `key`_floor, each held out on the largest inputs; fit_kwargs go to the fits to all points."""
    for floor, suffix in ((False, ""), (True, "_floor")):
        form = partial(fitter, floor=floor)
        result.attempt(key + suffix, lambda: form(*inputs, loss, **fit_kwargs),
                       lambda: fit.held_out_check(form, inputs, loss), points_note, data=(inputs, loss),
                       rolling=form)


def _fit_size_and_data(result: Analysis, runs: list[Run], size_runs: list[Run]) -> None:
    """L(N) on the full-data runs at the common batch size (the best shape per N); L(D) on the
    data-limited runs of the largest data-limited model and its full-data run; L(N, D) on every run at
    the modal batch. Both laws are of early-stopped (converged) losses, so runs that were still improving
    at their end, and data-limited runs that never early-stopped, are named in a warning."""
    final, sizes = result.data["final"], result.data["size_runs"]
    result.data["L_N"] = size = points.size_points(size_runs)
    N, loss = size["N"], size["loss"]
    progress(f"L(N): {len(N)} model sizes")
    _with_and_without_floor(result, "L_N", partial(fit.fit_power_law, var="N"), [N], loss, _size_points_note(size))
    if size["S"] is None and any(r.summary.stop_reason != "early_stop" for r in size_runs):
        for key in ("L_N", "L_N_floor"):
            if key in result.fits:
                result.fits[key].warn(NO_COMMON_LENGTH)
    improving = [r.name for r in size_runs if points.still_improving(r)]
    _warn(result, ("L_N", "L_N_floor"), improving, "still improving at their end (validation loss fell by more "
          f"than {points.IMPROVING:.0%} over the last {points.TAIL:.0%} of training; a wsd run: its end more than "
          f"{points.IMPROVING:.0%} below its cooldown branch at half its length), so L(N) of converged models "
          "lies below these points")
    limited = final["data_limited"]
    if limited.any():
        N_D = final["N"][limited].max()
        largest, full = limited & (final["N"] == N_D), sizes["N"] == N_D
        D, loss_D = points.lowest_per_value(np.concatenate([final["D"][largest], sizes["D"][full]]),
                                            np.concatenate([final["loss"][largest], sizes["loss"][full]]))
        result.data["L_D"] = {"D": D, "loss": loss_D, "N": N_D}
        _with_and_without_floor(result, "L_D", partial(fit.fit_power_law, var="D"), [D], loss_D,
                                "early-stopped loss per dataset size D (unique training tokens) of the largest "
                                "data-limited model, its full-data run (at the most common batch size) the largest D")
        progress(f"L(N, D): {limited.sum()} data-limited runs")
        _with_and_without_floor(result, "L_ND", fit.fit_kaplan_nd, [final["N"], final["D"]], final["loss"],
                                "early-stopped loss of every finished run at the most common batch size; D = its "
                                "unique training tokens")
        not_stopped = [r.name for r in runs
                       if r.summary.max_unique_tokens is not None and r.summary.stop_reason != "early_stop"]
        _warn(result, ("L_D", "L_D_floor", "L_ND"), not_stopped, "data-limited but never early-stopped "
              "(Kaplan's L(D) is of early-stopped runs: train.early_stop_patience), so their loss may not be "
              "the lowest their data allows")
    else:
        for key in ("L_D", "L_ND"):
            result.skipped[key] = f"no data-limited runs; needs {NEEDS[key]}"


NO_COMMON_LENGTH = ("the sizes share no training length (an end or a wsd cooldown branch at the same step) and not "
                    "all early-stopped, so each size's point is its lowest loss at whatever length it trained; in "
                    "an IsoFLOP design those lie along a compute diagonal, not on L(N) (optim.cooldown_steps adds "
                    "branches at a common step)")


def _size_points_note(size: dict) -> str:
    where = "full-data runs at the most common batch size"
    if size["S"] is None:
        return f"lowest early-stopped (best validation) loss per N of the {where}"
    return (f"loss per N at S = {size['S']:,} steps, the longest length every size trained to (a run's end or a "
            f"wsd cooldown branch), of the {where}: L(N, S) at one S, as Kaplan et al. train every size for the "
            "same steps (sec. 2.2); its excess over converged L(N) is to first order the same at every N "
            "(eq. 1.6), which the floor form absorbs")


def _warn(result: Analysis, keys: tuple[str, ...], run_names: list[str], why: str) -> None:
    if not run_names:
        return
    listed = ", ".join(run_names[:5]) + (f" and {len(run_names) - 5} more" if len(run_names) > 5 else "")
    for key in keys:
        if key in result.fits:
            result.fits[key].warn(f"{len(run_names)} runs {why}: {listed}")


def _fit_compute(result: Analysis, runs: list[Run], B_crit: Fit | None, with_floor: bool = True) -> None:
    """Kaplan's compute laws on the frontier of the learning curves: with a B_crit fit, L(C_min)
    (eq. 1.3) and the compute-efficient N, S_min and B against C_min (eq. 1.7, fig. 14); without
    one, L(C) at the runs' own fixed batch (eq. 3.3), which is not C_min."""
    front = points.frontier(runs, B_crit)
    result.data["frontier"] = front
    law = "L_Cmin" if B_crit is not None else "L_C"
    progress(f"{law}: {len(front['C'])} frontier points of {len(runs)} learning curves")
    if B_crit is not None:
        where = "C_min = C/(1 + B/B_crit(L)) (eq. 5.5) with the fitted B_crit"
    else:
        where = "C = FLOPs at each run's own batch size (no B_crit fit: not converted to C_min)"
    note = f"learning-curve points on the compute frontier (lowest loss yet at their compute); {where}"
    if any(r.wsd for r in runs):
        note += ("; of wsd runs only the decayed points, each run's end and its cooldown branches (the runs of "
                 "those lengths), not stable-phase evaluations")
    runs_on = np.unique(front["run"]) if len(front["run"]) else []
    if len(runs_on) < 3:
        front = {k: v[:0] for k, v in front.items()}  # a frontier of one or two runs is no scaling law
    resampled = points.frontier_resampled(front, B_crit) or {}
    if resampled:
        note += "; intervals carry B_crit's: each resample converts C with its own B_crit resample"
    for floor, suffix in ((False, ""), (True, "_floor"))[: 2 if with_floor else 1]:
        fitter = partial(fit.fit_power_law, var="C", floor=floor, law=law)
        carried = {} if floor else {"x_resampled": resampled.get("C")}
        result.attempt(law + suffix, lambda: fitter(front["C"], front["loss"], groups=front["run"], **carried),
                       lambda: fit.held_out_check(fitter, [front["C"]], front["loss"]),
                       points=note, data=([front["C"]], front["loss"]))
    frontier_laws = [("N_opt_frontier", "N")] + ([("S_min_frontier", "S"), ("B_frontier", "B")] if B_crit else [])
    for key, column in frontier_laws:
        if len(np.unique(front["N"])) < 3:
            result.skipped[key] = f"{len(np.unique(front['N']))} sizes on the frontier; needs {NEEDS[key]}"
            continue
        fitter = partial(fit.fit_allocation, name=key)
        carried = {"C_resampled": resampled.get("C"), "values_resampled": resampled.get(column)}
        result.attempt(key, lambda: fitter(front["C"], front[column], groups=front["run"], **carried),
                       lambda: fit.held_out_check(fitter, [front["C"]], front[column]),
                       points=f"{column} of each frontier point; {where}", data=([front["C"]], front[column]))


def _fit_batch(result: Analysis, runs: list[Run]) -> Fit | None:
    targets = points.steps_to_targets(runs)
    result.data["batch"] = targets
    progress(f"B_crit: {len(targets['S'])} (target loss, batch size) points")
    columns = (targets["target"], targets["B"], targets["S"])
    return result.attempt("B_crit", lambda: fit.fit_critical_batch(*columns, groups=targets["run"]),
                          lambda: fit.critical_batch_held_out(*columns, groups=targets["run"]),
                          points="steps each batch size needed to first reach target losses, runs of one "
                                 "N at 2 or more batch sizes; intervals resample whole runs")


def _fit_steps(result: Analysis, runs: list[Run], B_crit: Fit | None) -> None:
    """L(N, S_min): with a B_crit fit, every run's steps become S_min (eq. 5.4); without
    one, only the runs at the sweep's most common batch size are used, with raw S."""
    if B_crit is None:
        runs = points.at_modal_batch(runs)
    pts = points.loss_at_steps(runs)
    if B_crit is not None:
        pts["S_min"] = laws.min_steps(pts["S"], pts["B"], B_crit.predict(pts["loss"]))
        pts["steps_note"] = "S_min = S/(1 + B_crit(L)/B), eq. 5.4, with the fitted B_crit"
    else:
        pts["S_min"] = pts["S"]
        pts["steps_note"] = (f"S at batch {int(pts['B'][0]) if len(pts['B']) else '-'} tokens "
                             "(no B_crit fit to convert to S_min)")
    result.data["steps"] = pts
    progress(f"L(N, S): {len(pts['S'])} points from {len(runs)} runs")
    _with_and_without_floor(result, "L_NS", fit.fit_kaplan_ns, [pts["N"], pts["S_min"]], pts["loss"],
                            "loss of each run at log-spaced steps (a wsd run: at its end and cooldown branches, the "
                            f"runs of those lengths); {pts['steps_note']}", groups=pts["run"])


def _fit_isoflops(result: Analysis, profiles: list[dict], source: str) -> None:
    """Chinchilla approaches 2 and 3."""
    _fit_approach_2(result, profiles, source)
    _fit_approach_3(result, profiles, source)


def _profile_points(profiles: list[dict]) -> dict[str, np.ndarray]:
    """Every point of the IsoFLOP profiles, approach 3's: N, D, loss and the run each comes from."""
    return {k: np.concatenate([p[k] for p in profiles]) if profiles else np.array([])
            for k in ("N", "D", "loss", "run")}


def _fit_approach_3(result: Analysis, profiles: list[dict], source: str, starts=fit.CHINCHILLA_GRID,
                    held_out: bool = True) -> None:
    """E + A/N^alpha + B/D^beta on every profile point, resampled by the run each point comes from."""
    N, D, loss, run = _profile_points(profiles).values()
    progress(f"Chinchilla approach 3: {len(starts)} L-BFGS starts on {len(loss)} points")
    result.attempt("chinchilla", lambda: fit.fit_chinchilla(N, D, loss, starts=starts, groups=run),
                   (lambda: fit.held_out_check(HELD_OUT_CHINCHILLA, [N, D], loss)) if held_out else None,
                   f"every point of the IsoFLOP profiles, D = the tokens it was trained on: {source}",
                   data=([N, D], loss),
                   rolling=HELD_OUT_CHINCHILLA if held_out else None)


def _optima_at(all_C, all_weights, key, C, values, n_boot=0):
    """fit_optima on a subset of the budgets (the rolling check), each with its own weight."""
    return fit.fit_optima(C, values, name=key, weights=all_weights[np.searchsorted(all_C, C)])


def isoflop_optima(profiles: list[dict], method: str = points.DEFAULT_MINIMUM, n_boot: int = fit.N_BOOT,
                   seed: int = 0) -> tuple[list[dict], np.ndarray | None, int]:
    """Each profile's minimum (those bracketed), the (n_boot, J) log N_opt of each rebuilt from a
    run-level bootstrap (the runs of all profiles redrawn together: a run's points at every budget go
    in or out as one), or None where the runs are too few for an interval, and how many runs there are.
    Each minimum gets log_sd, the spread of its log N_opt over the resamples."""
    found = [(p, m) for p in profiles if (m := points.isoflop_minimum(p, method)) is not None]
    minima = [m for _, m in found]
    labels = np.unique(np.concatenate([p["run"] for p, _ in found])) if found else np.array([], int)
    if not minima or not fit.interval_identified(len(labels), 2):
        return minima, None, len(labels)
    run_weights = fit.case_weights(labels, n_boot, seed, _budget_strata(labels, [p for p, _ in found]))
    resampled = points.resampled_log_optima([{**p, "run": np.searchsorted(labels, p["run"])} for p, _ in found],
                                            run_weights, method)
    for m, column in zip(minima, resampled.T):
        m["log_sd"] = float(np.nanstd(column)) if np.isfinite(column).sum() > 1 else np.nan
    return minima, resampled, len(labels)


def _budget_strata(labels, profiles) -> np.ndarray | None:
    """The profile each run belongs to where every run is in one profile only (a sweep whose runs were
    each trained to one budget, or a table): then each profile's runs are redrawn from its own, as the
    design fixed how many sizes each budget has. None where runs cross budgets (wsd branches, curves)."""
    where = np.concatenate([np.full(len(p["run"]), j) for j, p in enumerate(profiles)])
    runs = np.concatenate([p["run"] for p in profiles])
    if len(np.unique(runs)) < len(runs):
        return None
    return where[np.argsort(runs)][np.searchsorted(np.sort(runs), labels)]


def _fit_approach_2(result: Analysis, profiles: list[dict], source: str, n_boot: int = fit.N_BOOT) -> None:
    """Chinchilla approach 2: each IsoFLOP profile's optimum by result.isoflop_min, then N_opt and D_opt
    against C; intervals by a run-level bootstrap (the runs redrawn, every profile and its minimum
    rebuilt, the exponents refitted), each optimum weighted by its spread over the resamples."""
    method = result.isoflop_min
    minima, resampled, n_runs = isoflop_optima(profiles, method, n_boot)
    result.data["isoflop"] = {"profiles": profiles, "minima": minima, "source": source}
    progress(f"IsoFLOP: {len(profiles)} profiles ({source}), {len(minima)} with a bracketed minimum ({method})")
    C = np.array([m["C"] for m in minima])
    weights = fit.optimum_weights(resampled) if resampled is not None else np.ones(len(C))
    for key in ("N_opt", "D_opt"):
        values = np.array([m[key] for m in minima])
        fitter = partial(_optima_at, C, weights, key)
        result.attempt(key, lambda: allocation_fit(key, minima, resampled, n_runs, method),
                       lambda: fit.held_out_check(fitter, [C], values), data=([C], values), rolling=fitter,
                       points=f"optimum of each IsoFLOP profile, {points.MINIMUM_NOTES[method]}: {source}")


def allocation_fit(key: str, minima: list[dict], resampled, n_runs: int, method: str) -> Fit:
    """N_opt or D_opt (key) against C from isoflop_optima's minima and resamples (log N_opt; for D_opt,
    log D_opt = log(C/6) - log N_opt of the same resample)."""
    C = np.array([m["C"] for m in minima])
    if key == "D_opt" and resampled is not None:
        resampled = np.column_stack([points.log_tokens_at(m, column) for m, column in zip(minima, resampled.T)])
    weights = fit.optimum_weights(resampled) if resampled is not None else None
    return fit.fit_optima(C, [m[key] for m in minima], resampled, name=key, runs=n_runs, weights=weights,
                          method=method)


# ---------------------------------------------------------------- fits on external points

COLUMN_ALIASES = {"n": "N", "params": "N", "parameters": "N", "model size": "N",
                  "d": "D", "tokens": "D", "c": "C", "flops": "C", "training flop": "C",
                  "loss": "loss", "unique_tokens": "U_D", "unique tokens": "U_D", "u_d": "U_D", "epochs": "epochs"}
GROUP_COLUMNS = ("group", "run")  # rows sharing a label come from one run: the bootstrap redraws them together


def read_points(path, drop_highest_loss: int = 0, need_loss: bool = True) -> dict[str, np.ndarray]:
    """N, D, C and loss from a CSV with columns N, loss and D or C (D = C/(6N) or
    C = 6·N·D for the missing one). Epoch's column names ("Model Size", "Training FLOP")
    are understood too. Each of their cells must be a positive finite number; SweepError names
    the file, row (as a spreadsheet numbers it, the header being row 1) and column of one that is not.
    Optional: unique tokens U_D (column unique_tokens, or epochs: U_D = D/epochs; at most D) and a
    group column (group or run: a label per row, rows of one run sharing it). need_loss False: a
    file of targets, without loss."""
    path = Path(path)
    if not path.exists():
        raise SweepError(f"{path}: no such file")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = [(reader.line_num, r) for r in reader]
    if not rows:
        raise SweepError(f"{path}: no rows")

    def number(row: int, name: str, text: str | None) -> float:
        try:
            value = float(text or "")
        except ValueError:
            raise SweepError(f"{path} row {row}, column {name}: {text or ''!r} is not a number") from None
        if not (np.isfinite(value) and value > 0):
            raise SweepError(f"{path} row {row}, column {name}: {text!r} must be a positive finite number")
        return value

    columns = {}
    for name in reader.fieldnames:
        key = COLUMN_ALIASES.get(name.strip().lower())
        if key and key not in columns:
            columns[key] = np.array([number(row, name, r[name]) for row, r in rows])
    required = ("N", "loss") if need_loss else ("N",)
    if any(k not in columns for k in required) or not ({"D", "C"} & columns.keys()):
        raise SweepError(f"{path}: needs columns {', '.join(required)} and D or C; "
                         f"found {', '.join(reader.fieldnames)}")
    if "D" not in columns:
        columns["D"] = laws.tokens_for_budget(columns["C"], columns["N"])
    if "C" not in columns:
        columns["C"] = 6 * columns["N"] * columns["D"]
    _unique_tokens(path, columns, [row for row, _ in rows])
    group = next((name for name in reader.fieldnames if name.strip().lower() in GROUP_COLUMNS), None)
    if group:
        columns["group"] = np.array([_label(path, row, group, r[group]) for row, r in rows])
    if not need_loss:
        return columns
    keep = np.argsort(columns["loss"], kind="stable")[: len(rows) - drop_highest_loss]
    return {k: v[np.sort(keep)] for k, v in columns.items()}


def _unique_tokens(path, columns: dict, row_numbers: list[int]) -> None:
    """U_D from unique_tokens or epochs (D/epochs), each at most D (unique tokens are tokens seen once)."""
    if "epochs" in columns:
        if "U_D" in columns:
            raise SweepError(f"{path}: give unique_tokens or epochs, not both")
        columns["U_D"] = columns["D"] / columns.pop("epochs")
    if "U_D" in columns:
        over = np.flatnonzero(columns["U_D"] > columns["D"] * (1 + 1e-9))
        if len(over):
            i = over[0]
            raise SweepError(f"{path} row {row_numbers[i]}: {columns['U_D'][i]:.6g} unique tokens exceed the "
                             f"{columns['D'][i]:.6g} tokens seen (epochs must be at least 1)")


def _label(path, row: int, name: str, text: str | None) -> str:
    if not (text or "").strip():
        raise SweepError(f"{path} row {row}, column {name}: empty; every row needs its run's label")
    return text.strip()


def analyze_points(path, drop_highest_loss: int = 0, params: str | None = None,
                   isoflop_min: str = points.DEFAULT_MINIMUM) -> Analysis:
    """Chinchilla's law fitted to a CSV of (N, D or C, loss); `params` states what its N counts
    (a key of conventions.PARAMS, or None when the file does not say)."""
    table = read_points(path, drop_highest_loss)
    setting = {"points_file": str(path), "tokenizer": None, "n_ctx": None, "points_params": params}
    result = Analysis(Path(path).stem, setting, isoflop_min=isoflop_min)
    result.data["table"] = table
    N, D, loss = table["N"], table["D"], table["loss"]
    progress(f"{path}: {len(loss)} points; Chinchilla approach 3 from {len(fit.CHINCHILLA_GRID)} starts")
    note = f"external points from {path}"
    # each point, or each run's points, resampled as a whole (Besiroglu et al. 2024's bootstrap)
    cases = table.get("group", np.arange(len(loss)))
    result.attempt("chinchilla", lambda: fit.fit_chinchilla(N, D, loss, groups=cases),
                   lambda: fit.held_out_check(HELD_OUT_CHINCHILLA, [N, D], loss), note, data=([N, D], loss))
    result.attempt("L_ND", lambda: fit.fit_kaplan_nd(N, D, loss, groups=cases),
                   lambda: fit.held_out_check(fit.fit_kaplan_nd, [N, D], loss), note, data=([N, D], loss))
    profiles = points.budget_profiles(table["C"], table["N"], table["loss"])
    _fit_approach_2(result, profiles, "external points grouped by compute budget")
    return result


def select_law(result: Analysis, law: str, targets=None) -> None:
    """Law forms fitted to the points and scored by extrapolation (law_forms.select; law "auto": every
    form that applies, else that one form), and with targets (a CSV of N, D and any column a form
    needs) each row's predicted loss by the recommended form with its 95% interval and by every
    candidate. Recorded in result.data["law_selection"] for fits.json."""
    table = result.data["table"]
    forms = None if law == "auto" else [law_forms.FORMS[law]]
    progress(f"law forms: {law}; fitting on the smaller sizes, scoring on the larger ones")
    selection = law_forms.select({k: table[k] for k in ("N", "D", "loss", "U_D", "group") if k in table}, forms,
                                 extrapolation_starts=POINTS_LAW_FORM_STARTS)
    fitted = selection.pop("fits")
    if targets:
        selection["predictions"] = law_forms.predictions(fitted, selection["recommended"]["law"],
                                                         read_points(targets, need_loss=False))
    result.data["law_selection"] = selection


# ---------------------------------------------------------------- outputs


def fits_json(result: Analysis) -> dict:
    """fits.json as strict JSON: a number that is not finite (an interval open above, a constant the
    resamples cannot give) is null, and "non_finite" names each by its path and says what it was."""
    payload, non_finite = strict_json(_fits_payload(result))
    return {**payload, "non_finite": non_finite}


def _fits_payload(result: Analysis) -> dict:
    return {
        "schema_version": laws.FITS_SCHEMA_VERSION,
        "sweep": result.name,
        **result.setting,
        "convention": result.units(),
        "ci": {"level": fit.CI_LEVEL, "method": "bootstrap of what is independent (each law's ci_method), "
                                               "percentile intervals; none where too few runs (no_interval)"},
        "runs": {"used": [r.name for r in result.runs],
                 "excluded": [{"run": n, "reason": why} for n, why in result.excluded]},
        "laws": result.to_json(),
        "skipped": result.skipped,
        **result.data.get("law_selection", {}),
        "by_convention": {key: {"convention": other.units(), "laws": other.to_json(), "skipped": other.skipped}
                          for key, other in result.by_convention.items()},
    }


def write_outputs(result: Analysis, out_dir: Path) -> None:
    from scaling_sweep.analysis import figures  # matplotlib loads only here

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fits.json").write_text(json.dumps(fits_json(result), indent=2, allow_nan=False))
    progress(f"figures -> {out_dir / 'figures'}")
    drawn, missing = figures.draw_all(result, out_dir / "figures")
    for line in missing:
        progress(f"skipped {line}")
    (out_dir / "report.md").write_text(report.markdown(result, drawn, missing))
    report.to_tensorboard(result, out_dir / "tb")


def constants_table(result: Analysis) -> str:
    """The fitted constants, one line each, with units and intervals."""
    lines = []
    for key, law_fit in result.fits.items():
        lines.append(f"{key}: {report.law_form(law_fit)[0]}  ({law_fit.n_points} points)")
        for name, value, lo, hi, unit in report.constants(law_fit, result):
            lines.append(f"    {name:<9} = {value:<10.4g} 95% CI {report.interval(law_fit, name)}  {unit}")
        if "warning" in law_fit.extra:
            lines.append(f"    warning: {law_fit.extra['warning']}")
    for key, why in result.skipped.items():
        lines.append(f"{key}: not fitted: {why}")
    if "law_selection" in result.data:
        lines.append(law_forms.candidates_table(result.data["law_selection"]))
    return "\n".join(lines)


def hparams_command(grid_path, targets_path=None, as_json=False, out=None, n_boot=fit.N_BOOT) -> str:
    """analyze --hparams: the analysis of a grid file or a sweep folder (its runs and cooldown branches), its
    predictions for a targets file, the outputs written to `out` (default for a folder: <sweep>/analysis/hparams;
    fits.json, report.md, grid.csv, predictions.csv, figures/) when given; returns what to print."""
    if Path(grid_path).is_dir():
        table, batch_unit = hparams.grid_from_sweep(read_sweep(grid_path)), "tokens"
        out = out or Path(grid_path) / "analysis" / "hparams"
    else:
        table, batch_unit = hparams.read_grid(grid_path)
    targets = hparams.read_targets(targets_path) if targets_path else None
    result = hparams.analyze_grid(table, str(grid_path), n_boot, batch_unit=batch_unit)
    if targets is not None:
        result.predictions = hparams.predict(result, targets["N"], targets["D"])
    entry = hparams.fits_entry(result)
    if out:
        from scaling_sweep.analysis import hparams_figures  # matplotlib loads only here

        out = Path(out)
        (out / "figures").mkdir(parents=True, exist_ok=True)
        (out / "fits.json").write_text(json.dumps(entry, indent=2, default=float))
        (out / "grid.csv").write_text(hparams.grid_csv(table, batch_unit))
        drawn = hparams_figures.draw_all(result, out / "figures")
        figures = "".join(f"\n![{stem}](figures/{stem}.png)\n" for stem in drawn)
        (out / "report.md").write_text(hparams.markdown(result) + figures)
        if result.predictions:
            (out / "predictions.csv").write_text(hparams.predictions_csv(result.predictions))
    return json.dumps(entry, indent=2, default=float) if as_json else hparams.text_table(result)


@entry_point("analyze")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling_sweep.analyze",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", nargs="?", help="runs/<sweep>; writes runs/<sweep>/analysis/")
    parser.add_argument("--points", help="CSV of external points: columns N, loss and D or C")
    parser.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                        help="with --points: leave out the K highest-loss points (Epoch drops 5)")
    parser.add_argument("--json", action="store_true",
                        help="print fits.json to standard output: every law fitted, and those skipped and why")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="fit across runs with different tokenizers or contexts")
    parser.add_argument("--out", help="output folder (default: <sweep_dir>/analysis; with --points: none)")
    parser.add_argument("--params", choices=conventions.PARAMS,
                        help="parameter convention of the headline fits: non_embedding (Kaplan, the default) or "
                             "total (Hoffmann, Epoch); fits.json has all four conventions under by_convention. "
                             "With --points: what the file's N counts (the planner needs it to plan from the fit)")
    parser.add_argument("--compute", choices=conventions.COMPUTE, default=HEADLINE.compute,
                        help="compute convention of the headline fits: 6N (C = 6·N·tokens) or exact (every matmul)")
    parser.add_argument("--hparams", metavar="FILE",
                        help="CSV of runs (columns N, D, lr, batch or batch_tokens, loss, optionally loss_smoothed), "
                             "or a sweep folder (runs/hparams_cpu; outputs in its analysis/hparams/): the optimal LR "
                             "and batch per (N, D) and their power laws (analysis/hparams.py)")
    parser.add_argument("--predict", metavar="TARGETS",
                        help="CSV of columns N, D: with --hparams each row's optimal LR and batch, with --law each "
                             "row's loss by the recommended law form and by every candidate; 95%% intervals")
    parser.add_argument("--law", choices=["auto", *law_forms.FORMS],
                        help="with --points: fit these law forms (auto: every one the columns allow), score each by "
                             "how it extrapolates from the smaller sizes to the larger, recommend one (law_forms.py)")
    parser.add_argument("--isoflop-min", choices=points.ISOFLOP_MINIMA, default=points.DEFAULT_MINIMUM,
                        help="how Chinchilla approach 2 takes each IsoFLOP profile's minimum: weighted (default: a "
                             "parabola of loss in log N, points weighted by their distance from the minimum), "
                             "quadratic (a parabola over the whole profile, Hoffmann et al. 2022), interpolant "
                             "(a cubic spline's minimum), window (a parabola over the points within 20%% of the "
                             "lowest loss)")
    args = parser.parse_args(argv)
    if args.hparams:
        if args.sweep_dir or args.points:
            parser.error("--hparams takes no sweep folder or --points")
        print(hparams_command(args.hparams, args.predict, args.json, args.out))
        return 0
    if args.predict and not args.law:
        parser.error("--predict needs --hparams, or --law with --points")
    if args.law and not args.points:
        parser.error("--law needs --points")
    if bool(args.sweep_dir) == bool(args.points):
        parser.error("give a sweep folder or --points CSV (one of them)")
    start = time.perf_counter()
    if args.points:
        result = analyze_points(args.points, args.drop_highest_loss, args.params, args.isoflop_min)
        if args.law:
            select_law(result, args.law, args.predict)
    else:
        result = analyze_sweep(args.sweep_dir, args.allow_mixed, Convention(args.params or HEADLINE.params,
                                                                             args.compute), args.isoflop_min)
    out = args.out or (None if args.points else Path(args.sweep_dir) / "analysis")
    if out:
        write_outputs(result, Path(out))
    print(json.dumps(fits_json(result), indent=2, allow_nan=False) if args.json else constants_table(result))
    progress(f"done in {time.perf_counter() - start:.1f} s" + (f"; wrote {out}" if out else ""))
    return 0
