"""Fit Kaplan's and Chinchilla's laws to a sweep (or a CSV of points) and redraw the figures.

    python -m scaling_sweep.analyze runs/<sweep>            # -> runs/<sweep>/analysis/
    python -m scaling_sweep.analyze --points table.csv      # columns N, loss, and D or C
    python -m scaling_sweep.analyze --points table.csv --json

Conventions: loss in nats/token of the runs' tokenizer; N = non-embedding parameters;
D = training tokens; C = 6·N·D FLOPs; 95% bootstrap intervals.
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

from scaling_sweep.analysis import fit, points, report
from scaling_sweep.analysis.fit import Fit, FitError
from scaling_sweep.analysis.runs import Run, SweepError, check_one_setting, read_sweep
from scaling_sweep.core import laws
from scaling_sweep.core.errors import entry_point

CONVENTION = {"loss": "nats/token", "N": "non-embedding parameters", "D": "training tokens",
              "C": "FLOPs = 6*N*D", "B": "tokens per batch", "S": "optimizer steps"}

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
    "N_opt_frontier": "3 or more model sizes on the compute-efficient frontier",
}


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

    def attempt(self, key: str, make, held_out=None, points: str = "") -> Fit | None:
        """Run one fit; a FitError becomes a line in `skipped`. held_out() -> dict or FitError;
        points says what the fitted points are."""
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
        self.fits[key] = result
        return result

    def to_json(self) -> dict:
        laws_out = {}
        for key, law_fit in self.fits.items():
            form, reference = report.law_form(law_fit)
            laws_out[key] = {"form": form, "reference": reference, **law_fit.to_dict(),
                             "convention": CONVENTION, **self.setting}
        return laws_out


# ---------------------------------------------------------------- fits on a sweep


def analyze_sweep(sweep_dir, allow_mixed: bool = False) -> Analysis:
    sweep = read_sweep(sweep_dir)
    usable = sweep.usable()
    progress(f"{sweep.name}: {len(sweep.runs)} runs, {len(usable)} finished and usable")
    if len(usable) < 3:
        reasons = "; ".join(f"{n}: {why}" for n, why in sweep.excluded()) or "none excluded"
        raise SweepError(f"{sweep.path}: {len(usable)} finished runs, a fit needs at least 3 "
                         f"(not usable: {reasons})")
    setting = check_one_setting(usable, allow_mixed)
    result = Analysis(sweep.name, setting, runs=usable, excluded=sweep.excluded())
    full_data = [r for r in usable if r.summary.max_unique_tokens is None]
    final = points.final_points(usable)
    result.data["final"] = final
    result.data["size_runs"] = points.final_points(points.at_modal_batch(full_data))
    _fit_size_and_data(result, final, result.data["size_runs"])
    _fit_compute(result, full_data)
    B_crit = _fit_batch(result, full_data)
    _fit_steps(result, full_data, B_crit)
    _fit_isoflops(result, *points.isoflop_profiles(full_data))
    return result


def _power_law_pair(result: Analysis, key: str, x, loss, var: str, points_note: str) -> None:
    """Kaplan's pure power law and the same with an irreducible term, each held out on
    the largest x."""
    for floor, suffix in ((False, ""), (True, "_floor")):
        fitter = partial(fit.fit_power_law, var=var, floor=floor)
        result.attempt(key + suffix, lambda: fitter(x, loss),
                       lambda: fit.held_out_check(fitter, [x], loss), points_note)


def _fit_size_and_data(result: Analysis, final: dict, size_runs: dict) -> None:
    """L(N) on the full-data runs at the common batch size (the best shape per N); L(D) on the
    data-limited runs of the largest model; L(N, D) on every run."""
    N, loss = points.lowest_per_value(size_runs["N"], size_runs["loss"])
    result.data["L_N"] = {"N": N, "loss": loss}
    progress(f"L(N): {len(N)} model sizes")
    _power_law_pair(result, "L_N", N, loss, "N", "lowest early-stopped (best validation) loss per N of "
                    "the full-data runs at the most common batch size")
    limited = final["data_limited"]
    if limited.any():
        largest = limited & (final["N"] == final["N"][limited].max())
        D, loss_D = points.lowest_per_value(final["D"][largest], final["loss"][largest])
        result.data["L_D"] = {"D": D, "loss": loss_D, "N": final["N"][limited].max()}
        _power_law_pair(result, "L_D", D, loss_D, "D", "early-stopped loss per dataset size D (unique "
                        "training tokens) of the largest data-limited model")
        progress(f"L(N, D): {limited.sum()} data-limited runs")
        result.attempt("L_ND", lambda: fit.fit_kaplan_nd(final["N"], final["D"], final["loss"]),
                       lambda: fit.held_out_check(fit.fit_kaplan_nd, [final["N"], final["D"]], final["loss"]),
                       "early-stopped loss of every finished run; D = its unique training tokens")
    else:
        for key in ("L_D", "L_ND"):
            result.skipped[key] = f"no data-limited runs; needs {NEEDS[key]}"


def _fit_compute(result: Analysis, runs: list[Run]) -> None:
    frontier = points.envelope(runs)
    result.data["envelope"] = frontier
    progress(f"L(C): envelope of {len(runs)} learning curves")
    if len(runs) < 3:
        frontier = {k: v[:0] for k, v in frontier.items()}
    for floor, suffix in ((False, ""), (True, "_floor")):
        result.attempt("L_Cmin" + suffix, lambda: fit.fit_power_law(frontier["C"], frontier["loss"], "C", floor),
                       points="envelope of the learning curves, the lowest loss reached by each C; C = "
                              "6N·tokens at each run's own batch size (not converted to C_min)")
    if len(np.unique(frontier["N"])) >= 3:
        result.attempt("N_opt_frontier", lambda: fit.fit_allocation(frontier["C"], frontier["N"]),
                       points="N of the run on the envelope at each C")
    else:
        result.skipped["N_opt_frontier"] = (f"{len(np.unique(frontier['N']))} sizes on the frontier; "
                                            f"needs {NEEDS['N_opt_frontier']}")


def _fit_batch(result: Analysis, runs: list[Run]) -> Fit | None:
    targets = points.steps_to_targets(runs)
    result.data["batch"] = targets
    progress(f"B_crit: {len(targets['S'])} (target loss, batch size) points")
    return result.attempt("B_crit", lambda: fit.fit_critical_batch(targets["target"], targets["B"], targets["S"]),
                          points="steps each batch size needed to first reach target losses, runs of one "
                                 "N at 2 or more batch sizes")


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
    result.attempt("L_NS", lambda: fit.fit_kaplan_ns(pts["N"], pts["S_min"], pts["loss"]),
                   lambda: fit.held_out_check(fit.fit_kaplan_ns, [pts["N"], pts["S_min"]], pts["loss"]),
                   f"loss of each run at log-spaced steps; {pts['steps_note']}")


def _fit_isoflops(result: Analysis, profiles: list[dict], source: str) -> None:
    """Chinchilla approaches 2 and 3 (E + A/N^alpha + B/D^beta on every profile point)."""
    _fit_approach_2(result, profiles, source)
    if profiles:
        N, D, loss = (np.concatenate([p[k] for p in profiles]) for k in ("N", "D", "loss"))
    else:
        N = D = loss = np.array([])
    progress(f"Chinchilla approach 3: {len(fit.CHINCHILLA_GRID)} L-BFGS starts on {len(loss)} points")
    result.attempt("chinchilla", lambda: fit.fit_chinchilla(N, D, loss),
                   lambda: fit.held_out_check(HELD_OUT_CHINCHILLA, [N, D], loss),
                   f"every point of the IsoFLOP profiles, D = C/(6N): {source}")


def _fit_approach_2(result: Analysis, profiles: list[dict], source: str) -> None:
    """Chinchilla approach 2: each IsoFLOP profile's optimum from the points near its minimum,
    then N_opt and D_opt against C, each optimum weighted by its own uncertainty."""
    minima = [m for m in map(points.isoflop_minimum, profiles) if m is not None]
    result.data["isoflop"] = {"profiles": profiles, "minima": minima, "source": source}
    progress(f"IsoFLOP: {len(profiles)} profiles ({source}), {len(minima)} with a bracketed minimum")
    C = np.array([m["C"] for m in minima])
    variances = points.optimum_variances(minima) if minima else np.array([])
    for key in ("N_opt", "D_opt"):
        values = np.array([m[key] for m in minima])
        result.attempt(key, lambda: fit.fit_optima(C, values, variances, name=key),
                       points=f"optimum of each IsoFLOP profile, a parabola of log-loss in log N over its points "
                              f"within {points.NEAR_MINIMUM:.0%} of its lowest loss: {source}")


# ---------------------------------------------------------------- fits on external points

COLUMN_ALIASES = {"n": "N", "params": "N", "parameters": "N", "model size": "N",
                  "d": "D", "tokens": "D", "c": "C", "flops": "C", "training flop": "C",
                  "loss": "loss"}


def read_points(path, drop_highest_loss: int = 0) -> dict[str, np.ndarray]:
    """N, D, C and loss from a CSV with columns N, loss and D or C (D = C/(6N) or
    C = 6·N·D for the missing one). Epoch's column names ("Model Size", "Training FLOP")
    are understood too. Each of their cells must be a positive finite number; SweepError names
    the file, row (as a spreadsheet numbers it, the header being row 1) and column of one that is not."""
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
    if "N" not in columns or "loss" not in columns or not ({"D", "C"} & columns.keys()):
        raise SweepError(f"{path}: needs columns N, loss and D or C; found {', '.join(reader.fieldnames)}")
    if "D" not in columns:
        columns["D"] = laws.tokens_for_budget(columns["C"], columns["N"])
    if "C" not in columns:
        columns["C"] = 6 * columns["N"] * columns["D"]
    keep = np.argsort(columns["loss"], kind="stable")[: len(rows) - drop_highest_loss]
    return {k: v[np.sort(keep)] for k, v in columns.items()}


def analyze_points(path, drop_highest_loss: int = 0) -> Analysis:
    table = read_points(path, drop_highest_loss)
    result = Analysis(Path(path).stem, {"points_file": str(path), "tokenizer": None, "n_ctx": None})
    result.data["table"] = table
    N, D, loss = table["N"], table["D"], table["loss"]
    progress(f"{path}: {len(loss)} points; Chinchilla approach 3 from {len(fit.CHINCHILLA_GRID)} starts")
    note = f"external points from {path}"
    cases = np.arange(len(loss))  # each point resampled as a whole (Besiroglu et al. 2024's bootstrap)
    result.attempt("chinchilla", lambda: fit.fit_chinchilla(N, D, loss, groups=cases),
                   lambda: fit.held_out_check(HELD_OUT_CHINCHILLA, [N, D], loss), note)
    result.attempt("L_ND", lambda: fit.fit_kaplan_nd(N, D, loss, groups=cases),
                   lambda: fit.held_out_check(fit.fit_kaplan_nd, [N, D], loss), note)
    profiles = points.budget_profiles(table["C"], table["N"], table["loss"])
    _fit_approach_2(result, profiles, "external points grouped by compute budget")
    return result


# ---------------------------------------------------------------- outputs


def fits_json(result: Analysis) -> dict:
    return {
        "schema_version": laws.FITS_SCHEMA_VERSION,
        "sweep": result.name,
        **result.setting,
        "convention": CONVENTION,
        "ci": {"level": fit.CI_LEVEL, "method": "smoothed residual bootstrap, bias-corrected percentiles "
                                               "widened to the t quantile with n - p degrees of freedom"},
        "runs": {"used": [r.name for r in result.runs],
                 "excluded": [{"run": n, "reason": why} for n, why in result.excluded]},
        "laws": result.to_json(),
        "skipped": result.skipped,
    }


def write_outputs(result: Analysis, out_dir: Path) -> None:
    from scaling_sweep.analysis import figures  # matplotlib loads only here

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fits.json").write_text(json.dumps(fits_json(result), indent=2, default=float))
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
        for name, value, lo, hi, unit in report.constants(law_fit):
            lines.append(f"    {name:<9} = {value:<10.4g} 95% CI [{lo:.4g}, {hi:.4g}]  {unit}")
        if "warning" in law_fit.extra:
            lines.append(f"    warning: {law_fit.extra['warning']}")
    for key, why in result.skipped.items():
        lines.append(f"{key}: not fitted: {why}")
    return "\n".join(lines)


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
    args = parser.parse_args(argv)
    if bool(args.sweep_dir) == bool(args.points):
        parser.error("give a sweep folder or --points CSV (one of them)")
    start = time.perf_counter()
    if args.points:
        result = analyze_points(args.points, args.drop_highest_loss)
    else:
        result = analyze_sweep(args.sweep_dir, args.allow_mixed)
    out = args.out or (None if args.points else Path(args.sweep_dir) / "analysis")
    if out:
        write_outputs(result, Path(out))
    print(json.dumps(fits_json(result), indent=2, default=float) if args.json else constants_table(result))
    progress(f"done in {time.perf_counter() - start:.1f} s" + (f"; wrote {out}" if out else ""))
    return 0
