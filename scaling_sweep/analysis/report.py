"""report.md and TensorBoard hparams/text for an analysed sweep."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from scaling_sweep.analysis import law_forms, points
from scaling_sweep.core import laws

# The conventions the published constants were fitted in (DESIGN.md, "Conventions")
KAPLAN_CONVENTION, HOFFMANN_CONVENTION = "non_embedding/6N", "total/6N"
PUBLISHED_HEADER = f"published (Kaplan: {KAPLAN_CONVENTION}; Chinchilla, Epoch: {HOFFMANN_CONVENTION})"

# fitted law -> the published constants it is compared with, (label, constants)
PUBLISHED_FOR = {
    "L_N": [("Kaplan", laws.KAPLAN["L_N"])],
    "L_D": [("Kaplan", laws.KAPLAN["L_D"])],
    "L_Cmin": [("Kaplan", laws.KAPLAN["L_Cmin"])],
    "L_C": [("Kaplan, fixed batch", laws.KAPLAN["L_C"])],
    "L_ND": [("Kaplan table 2", laws.KAPLAN["L_ND_fit"])],
    "L_NS": [("Kaplan", laws.KAPLAN["L_NS"])],
    "B_crit": [("Kaplan", laws.KAPLAN["B_crit"])],
    "chinchilla": [("Chinchilla", laws.CHINCHILLA), ("Epoch", laws.EPOCH_REPLICATION)],
    "N_opt": [("Kaplan", {"exponent": laws.KAPLAN_EXPONENTS["N_opt"]}),
              ("Chinchilla", {"exponent": laws.CHINCHILLA_EXPONENTS["N_opt"]})],
    "D_opt": [("Kaplan", {"exponent": laws.KAPLAN_EXPONENTS["D_opt"]}),
              ("Chinchilla", {"exponent": laws.CHINCHILLA_EXPONENTS["D_opt"]})],
    "N_opt_frontier": [("Kaplan", {"exponent": laws.KAPLAN_EXPONENTS["N_opt"]})],
    "S_min_frontier": [("Kaplan", {"exponent": laws.KAPLAN_EXPONENTS["S_min"]})],
    "B_frontier": [("Kaplan", {"exponent": laws.KAPLAN_EXPONENTS["B_crit"]})],
}

# Short units of N and C in each convention, for table cells and axis labels
PARAM_UNITS = {"non_embedding": "non-embedding parameters", "total": "total parameters"}
COMPUTE_UNITS = {"6N": "FLOPs (6N per token)", "exact": "FLOPs (exact count)"}
FRONTIER_LAWS = ("L_Cmin", "N_opt_frontier", "S_min_frontier", "B_frontier")  # against C_min given B_crit


# A law holds here when its held-out prediction is within these (mean absolute relative error of what it
# predicts: the loss, or an allocation law's N_opt, D_opt, ...), every exponent's interval is finite and
# excludes 0, and no fitted floor vanished (fit.VANISHED_FLOOR).
HOLDS_WITHIN = {"loss": 0.01, "allocation": 0.2}

# The papers' scale. Kaplan et al. 2020 (abstract; section 2.3): 768 to 1.5e9 non-embedding parameters
# trained for 2.5e5 steps on WebText2 with GPT-2's BPE. Hoffmann et al. 2022 (abstract; section 3): 7e7 to
# 1.6e10 parameters on 5e9 to 5e11 tokens of MassiveText with a SentencePiece tokenizer.
PAPERS_LARGEST_N = {"Kaplan": 1.5e9, "Chinchilla": 1.6e10}
KAPLAN_STEPS = 2.5e5
BPE_TOKENIZERS = ("gpt2", "r50k_base", "p50k_base", "cl100k_base", "o200k_base")


def _published(law: str, name: str) -> str:
    values = [f"{label} {consts[name]:.4g}" for label, consts in PUBLISHED_FOR.get(law, []) if name in consts]
    return "; ".join(values) or "-"


def unit_words(result) -> dict[str, str]:
    """What N and C count in the result's convention, in a few words."""
    if "points_file" in result.setting:
        stated = result.setting.get("points_params")
        return {"N": f"{PARAM_UNITS[stated]} (points file)" if stated else "parameters as in the points file",
                "C": "FLOPs as in the points file, or 6·N·D"}
    return {"N": PARAM_UNITS[result.convention.params], "C": COMPUTE_UNITS[result.convention.compute]}


def compute_law(result) -> str:
    """The frontier's loss law: L(C_min) given a B_crit fit, else L(C) at the runs' own batch."""
    return "L_Cmin" if "B_crit" in result.fits else "L_C"


def frontier_compute(result) -> str:
    """The compute of the frontier points: C_min given a B_crit fit, else the runs' own C."""
    return "C_min" if compute_law(result) == "L_Cmin" else "C"


def first_input(result, f) -> str:
    """The variable a law's points are ordered by (held-out, rolling and residual x): N, D, C or C_min."""
    name = next(iter(f.extra.get("fit_range", {})), "x")
    return frontier_compute(result) if name == "C" and f.law in FRONTIER_LAWS else name


def input_unit(result, name: str) -> str:
    words = unit_words(result)
    return {"N": words["N"], "D": "tokens", "C": words["C"],
            "C_min": f"{words['C']} at B << B_crit, eq. 5.5"}.get(name, "")


def constants(f, result):
    """(name, value, CI low, CI high, unit) of each fitted constant; nan bounds without a CI."""
    words = unit_words(result)
    for name, value in f.params.items():
        lo, hi = f.ci.get(name, (np.nan, np.nan))
        yield name, value, lo, hi, laws.CONSTANT_UNITS.get(name, "dimensionless").format(**words)


TOO_FEW_SHORT = "too few runs for a CI"  # in a figure's legend; the report says how many runs would give one


def interval(f, name: str, fmt: str = ".4g", short: bool = False) -> str:
    """'[lo, hi]' of a constant's 95% interval, or why there is none (too few runs for one: in full,
    with how many would give one, or short, for a table's cell)."""
    if name in f.ci:
        lo, hi = f.ci[name]
        return f"[{lo:{fmt}}, {hi:{fmt}}]"
    if "no_interval" in f.extra:
        return f"[{TOO_FEW_SHORT}]" if short else f"({f.extra['no_interval']})"
    return "[no interval]"


def constants_rows(result) -> list[str]:
    rows = [f"| law | constant | fitted | 95% CI | unit | {PUBLISHED_HEADER} |", "| --- " * 6 + "|"]
    for key, f in result.fits.items():
        for name, value, lo, hi, unit in constants(f, result):
            rows.append(f"| {key} | {name} | {value:.4g} | {interval(f, name)} | {unit} | {_published(f.law, name)} |")
    return rows


def held_out_rows(result) -> list[str]:
    rows = ["| law | held out | points fitted / held out | mean abs. rel. error | max abs. rel. error |",
            "| --- | --- | --- | --- | --- |"]
    for key, f in result.fits.items():
        check = f.extra.get("held_out")
        if not check:
            continue
        if "skipped" in check:
            rows.append(f"| {key} | skipped: {check['skipped']} | | | |")
            continue
        name = first_input(result, f)
        rows.append(f"| {key} | {name} {check.get('direction', '≥')} {check['held_out_from']:.3g} "
                    f"{input_unit(result, name)} | "
                    f"{check['n_fit']} / {check['n_held_out']} | "
                    f"{100 * check['mean_abs_rel_error']:.2f}% | {100 * check['max_abs_rel_error']:.2f}% |")
    return rows


def predicted(f) -> str:
    """What a law predicts: the left-hand side of its formula (loss, N_opt, S_min, ...)."""
    predicted = law_form(f)[0].split(" = ")[0]
    return "loss" if predicted == "L" else predicted


def goodness_rows(result) -> list[str]:
    rows = ["| law | predicts | points | RMSE of ln(observed / fitted) |", "| --- | --- | --- | --- |"]
    for key, f in result.fits.items():
        if "goodness" in f.extra:
            rows.append(f"| {key} | {predicted(f)} | {f.n_points} | {f.extra['goodness']['rmse_log']:.3g} |")
    return rows


def rolling_rows(result) -> list[str]:
    rows = ["| law | sizes or budgets | fitted up to → predicted: mean abs. rel. error, each step |",
            "| --- | --- | --- |"]
    for key, f in result.fits.items():
        if f.extra.get("rolling"):
            name = first_input(result, f)
            steps = "; ".join(f"{r['fitted_up_to']:.3g} → {r['predicted']:.3g}: {100 * r['mean_abs_rel_error']:.2f}%"
                              for r in f.extra["rolling"])
            rows.append(f"| {key} | {name} ({input_unit(result, name)}) | {steps} |")
    return rows


def _exponent_rows(result) -> list[tuple[str, str, str]]:
    """(label, law, constant) of the exponents that move with the counting convention."""
    compute = ("α_C of L(C_min), eq. 1.3" if compute_law(result) == "L_Cmin"
               else "α_C of L(C) at a fixed batch, eq. 3.3 (no B_crit fit)")
    frontier = frontier_compute(result)
    return [("α_N of L(N), eq. 1.1", "L_N", "alpha_N"), (compute, compute_law(result), "alpha_C"),
            (f"N_opt ∝ {frontier}^a on the compute frontier, eq. 1.7", "N_opt_frontier", "exponent"),
            ("N_opt ∝ C^a from the IsoFLOP minima (approach 2)", "N_opt", "exponent"),
            ("Chinchilla α (approach 3)", "chinchilla", "alpha"), ("Chinchilla β (approach 3)", "chinchilla", "beta")]


def _value_with_ci(analysis, key: str, name: str) -> str:
    f = analysis.fits.get(key)
    if f is None:
        return "–"
    return f"{f.params[name]:.3g} {interval(f, name, '.3g', short=True)}"


def convention_rows(result) -> list[str]:
    keys = list(result.by_convention)
    header = [k + (" (headline)" if k == result.convention.key else "") for k in keys]
    rows = [f"| exponent | {' | '.join(header)} | {PUBLISHED_HEADER} |", "| --- " * (len(keys) + 2) + "|"]
    for label, key, name in _exponent_rows(result):
        cells = [_value_with_ci(result.by_convention[k], key, name) for k in keys]
        rows.append(f"| {label} | {' | '.join(cells)} | {_published(key, name)} |")
    return rows


def _shift_lines(result) -> list[str]:
    """The compute-optimal exponents counted as Kaplan and as Hoffmann counted, beside their published values."""
    kaplan, hoffmann = (result.by_convention.get(k) for k in (KAPLAN_CONVENTION, HOFFMANN_CONVENTION))
    if kaplan is None or hoffmann is None:
        return []
    lines = []
    for label, key, _ in _exponent_rows(result):
        if key in ("N_opt_frontier", "N_opt") and key in kaplan.fits and key in hoffmann.fits:
            lines.append(f"- {label}: a = {kaplan.fits[key].params['exponent']:.3g} counted as Kaplan did "
                         f"({KAPLAN_CONVENTION}), {hoffmann.fits[key].params['exponent']:.3g} counted as Hoffmann "
                         f"did ({HOFFMANN_CONVENTION}); published {laws.KAPLAN_EXPONENTS['N_opt']} (Kaplan) and "
                         f"{laws.CHINCHILLA_EXPONENTS['N_opt']} (Chinchilla).")
    return lines


def _isoflop_as_trained_line(result) -> list[str]:
    """Where the sweep's IsoFLOP profiles are IsoFLOP only in the count its budgets were set in."""
    spreads = {key: points.budget_spread(other.data["isoflop"]["profiles"])
               for key, other in result.by_convention.items()
               if other.data.get("isoflop") and other.data["isoflop"]["source"] != points.CURVE_PROFILES}
    spread = {key: value for key, value in spreads.items() if value > points.PROFILE_SPREAD}
    if not spread:
        return []
    counted = ", ".join(f"{value:.3g}x as {key}" for key, value in spread.items())
    return [f"IsoFLOP only as trained: in every convention each profile is the budget its runs were trained to "
            f"(6·N·tokens, N non-embedding) and D the tokens each saw, but the C one profile's points spend differs "
            f"by up to {counted}; approach 2 fits each optimum's own C.", ""]


def _convention_section(result) -> list[str]:
    if not result.by_convention:
        return []
    return (["## Headline exponents under every convention", "",
             "Each law refitted with N and C counted each way (exponents are dimensionless; 95% CI in brackets; "
             "– not fitted under that convention, fits.json `by_convention` says why). Part of the move from "
             "Kaplan's compute-optimal exponent to Chinchilla's is this counting alone (Porian et al. 2024, "
             "Pearce & Song 2024).", ""]
            + convention_rows(result) + [""] + _isoflop_as_trained_line(result) + _shift_lines(result) + [""])


def law_form(f) -> tuple[str, str]:
    """The formula a fit used, and where it comes from."""
    form, source = laws.LAW_INFO[f.law]
    return form + (laws.FLOOR_FORM if "L_inf" in f.params else ""), source


def _forms(result) -> list[str]:
    return [f"- **{key}**: {law_form(f)[0]} ({law_form(f)[1]}); {f.n_points} points: {f.extra['points']}; "
            f"intervals: {f.extra.get('ci_method', 'none')}" for key, f in result.fits.items()]


def _conventions_line(result) -> str:
    u = result.units()
    if "points_file" in result.setting:
        counted = "N and C as counted in the points file (C = 6·N·D where it gives D)"
    else:
        counted = f"headline convention **{result.convention.key}**: N = {u['N']}; C = {u['C']}"
    return (f"{counted}. Loss in {u['loss']}; D in {u['D']}; B in {u['B']}; S in {u['S']}. Intervals: 95% "
            "bootstrap of what is independent (each law's method under Laws; their coverage measured by "
            "simulation in docs/intervals.md), or none where the runs are too few.")


def _section(title: str, intro: str, rows: list[str]) -> list[str]:
    """A titled table, or nothing when the table has no rows beyond its header."""
    if len(rows) <= 2:
        return []
    return [f"## {title}", ""] + ([intro, ""] if intro else []) + rows + [""]


def exponent_names(f) -> list[str]:
    return [name for name in f.params if name.startswith("alpha") or name in ("beta", "exponent")]


def verdict(f) -> tuple[str, list[str]]:
    """('holds' | 'does not hold' | 'not tested', the reasons) by the HOLDS_WITHIN rule."""
    check = f.extra.get("held_out", {})
    if "mean_abs_rel_error" not in check:
        return "not tested", [f"no held-out check: {check.get('skipped', 'none made for this law')}"]
    limit = HOLDS_WITHIN["loss" if predicted(f) == "loss" else "allocation"]
    error = check["mean_abs_rel_error"]
    held = f" ({check['sizes_held_out']} largest held out)" if check.get("sizes_held_out", 1) > 1 else ""
    reasons = [f"held-out error {100 * error:.2g}% {'>' if error > limit else '≤'} {limit:.0%}{held}"]
    failed = error > limit
    if f.extra.get("floor_vanished"):
        reasons.append("its floor fitted to 0")
        failed = True
    if "no_interval" in f.extra:  # the prediction is tested; the exponents cannot be
        reasons.append(f"its exponents have no interval: {f.extra['no_interval']}")
        return ("does not hold" if failed else "holds"), reasons
    for name in exponent_names(f):
        lo, hi = f.ci.get(name, (np.nan, np.nan))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            reasons.append(f"no finite interval for {name}")
        elif lo <= 0 <= hi:
            reasons.append(f"{name}'s interval includes 0")
        else:
            continue
        failed = True
    return ("does not hold" if failed else "holds"), reasons


# The convention each paper counted its N and C in, by the label PUBLISHED_FOR gives its constants
PAPER_CONVENTION = {"Kaplan": KAPLAN_CONVENTION, "Chinchilla": HOFFMANN_CONVENTION, "Epoch": HOFFMANN_CONVENTION}
FIXED_BATCH_CAVEAT = "fixed batch: no B_crit fit, so its {x} is not Kaplan's {x_min} (eq. 5.4-5.5)"


def caveat(result, key: str, f) -> str | None:
    """Why a law's comparison with the papers is not like for like: IsoFLOP profiles read off
    learning curves (left out of the comparison), or a law at the runs' fixed batch where the
    paper's is at B_crit."""
    if f.extra.get("caveat") == "curve profiles":
        return "curve profiles: read off learning curves mid-schedule, left out of the comparison with the papers"
    if "B_crit" in result.fits:
        return None
    fixed = {"L_C": ("C", "C_min"), "L_NS": ("S", "S_min"), "N_opt_frontier": ("C", "C_min")}
    return FIXED_BATCH_CAVEAT.format(x=fixed[key][0], x_min=fixed[key][1]) if key in fixed else None


def _paper_fit(result, key: str, f, paper: str):
    """The law fitted in the paper's own convention where the sweep was refitted in it, else the
    headline fit; with the convention's name."""
    convention = PAPER_CONVENTION[paper.split()[0].rstrip(",")]
    other = result.by_convention.get(convention)
    if other is not None and key in other.fits:
        return other.fits[key], convention
    if "points_file" in result.setting:
        return f, "as the points file counts"
    return f, result.convention.key


def against_papers(result, key: str, f) -> list[str]:
    """Each exponent's 95% interval against each published value, in the paper's own convention:
    contains it, lies above or below it, or has no finite interval; one clause per exponent and
    convention."""
    clauses: dict[tuple[str, str], list[str]] = {}
    for paper, published in PUBLISHED_FOR.get(f.law, []):
        fitted, convention = _paper_fit(result, key, f, paper)
        for name in (n for n in exponent_names(fitted) if n in published):
            value, (lo, hi) = fitted.params[name], fitted.ci.get(name, (np.nan, np.nan))
            if "no_interval" in fitted.extra:
                where = "too few runs for an interval to compare with"
            elif not (np.isfinite(lo) and np.isfinite(hi)):
                where = "no finite interval to compare with"
            else:
                where = "contains" if lo <= published[name] <= hi else "above" if lo > published[name] else "below"
            fitted_text = f"{name} = {value:.3g} {interval(fitted, name, '.3g', short=True)} ({convention})"
            clauses.setdefault((fitted_text, name), []).append(f"{where} {paper}'s {published[name]:.4g}")
    return [f"{text}: {', '.join(parts)}" for (text, _), parts in clauses.items()]


def _reproduced_line(result, key, f) -> str:
    outcome, reasons = verdict(f)
    note = caveat(result, key, f)
    if f.extra.get("caveat") == "curve profiles":
        return (f"- **{key}** ({law_form(f)[1]}): held out: **excluded from the verdict** ({'; '.join(reasons)}; "
                f"{note})")
    held_out = f"held out: **{outcome}** ({'; '.join(reasons)})"
    papers = "; ".join(against_papers(result, key, f)) or "no published exponent"
    return (f"- **{key}** ({law_form(f)[1]}): {held_out}; against the papers: {papers}"
            + (f" (caveat: {note})" if note else ""))


def _why_exponents_differ(result) -> str:
    """Why a small sweep's exponents can differ from the papers', from what its run files say."""
    tokenizer = result.setting.get("tokenizer")
    if tokenizer is None:
        return f"The points come from {result.setting.get('points_file')}: their setup decides the comparison."
    if tokenizer == "byte":
        unit = "loss is in nats per byte (byte tokenizer), not per BPE token as in both papers"
    elif tokenizer in BPE_TOKENIZERS:
        unit = f"loss is in nats per {tokenizer} token (Kaplan: GPT-2's BPE; Chinchilla: SentencePiece)"
    else:
        unit = f"loss is in nats per {tokenizer} token, not per the papers' BPE tokens"
    clauses = [f"the {unit}, so scale constants do not compare and exponents need not"]
    summaries = [r.summary for r in result.runs]
    if summaries:
        N = [s.N for s in summaries]
        data = ", ".join(sorted({str(s.data) for s in summaries}))
        below = {paper: np.log10(largest / max(N)) for paper, largest in PAPERS_LARGEST_N.items()}
        improving = sum(points.still_improving(r) for r in result.runs)
        clauses += [f"the data are {data}, not WebText2 (Kaplan) or MassiveText (Chinchilla)",
                    f"the models span N = {min(N):.2g} to {max(N):.2g} {unit_words(result)['N']}, "
                    f"{below['Kaplan']:.1f} orders of magnitude below Kaplan's largest "
                    f"({PAPERS_LARGEST_N['Kaplan']:.2g}) and {below['Chinchilla']:.1f} below Chinchilla's "
                    f"({PAPERS_LARGEST_N['Chinchilla']:.2g})",
                    f"the runs train for at most {max(s.step for s in summaries):,} steps (Kaplan: "
                    f"{KAPLAN_STEPS:.2g}), {improving} of {len(N)} still improving at their end, so the fits are "
                    "of a data- or steps-limited regime, not of converged models"]
    return "Why the exponents here can differ from the papers': " + "; ".join(clauses) + "."


def reproduced_section(result, figures: list[str]) -> list[str]:
    """One line per fitted law: its exponents beside the papers' and whether it holds here; why they may
    differ; the dashboard."""
    loss, allocation = HOLDS_WITHIN["loss"], HOLDS_WITHIN["allocation"]
    lines = ["## What was reproduced", "",
             "Two separate tests per law. Held out: the law **holds** when, fitted on all but the largest sizes "
             "(budgets, compute; the two largest where the sweep has six or more), it predicts the held-out ones "
             f"within {loss:.0%} mean absolute error of the loss ({allocation:.0%} of the optimum for an allocation "
             "law: N_opt, D_opt, N, S_min, B), every exponent's 95% interval (where the runs give one) is finite "
             "and excludes 0, and no "
             "fitted floor vanished to 0. Against the papers: whether each exponent's 95% interval contains the "
             "published value or lies above or below it, the law fitted in the paper's own convention (Kaplan: "
             f"{KAPLAN_CONVENTION}; Chinchilla, Epoch: {HOFFMANN_CONVENTION}).", ""]
    lines += [_reproduced_line(result, key, f) for key, f in result.fits.items()] or ["- no law fitted"]
    lines += ["", _why_exponents_differ(result), ""]
    if "dashboard" in figures:
        lines += ["![dashboard](figures/dashboard.png)", ""]
    return lines


def markdown(result, figures: list[str], missing: list[str]) -> str:
    setting = ", ".join(f"{k} {v}" for k, v in result.setting.items())
    lines = [f"# Scaling-law fits: {result.name}", "", f"Setting: {setting}; {_conventions_line(result)}", ""]
    lines += reproduced_section(result, figures)
    if result.runs or result.excluded:
        lines += [f"## Runs: {len(result.runs)} used, {len(result.excluded)} excluded", ""]
        lines += [f"- excluded {name}: {why}" for name, why in result.excluded] or ["- none excluded"]
        lines.append("")
    lines += _convention_section(result)
    lines += ["## Laws", ""] + _forms(result) + [""]
    lines += ["## Fitted constants", "",
              "In the headline convention. Published constants are for other tokenizers and data (Kaplan: GPT-2 "
              "BPE on WebText2, N non-embedding; Chinchilla: MassiveText, N total parameters): exponents compare "
              "across setups, scales only with the same tokenizer and convention.", ""] + constants_rows(result) + [""]
    warnings = [f"- {key}: {f.extra['warning']}" for key, f in result.fits.items() if "warning" in f.extra]
    if warnings:
        lines += ["## Warnings", ""] + warnings + [""]
    lines += _section("Goodness of fit", "Root mean square of the log residuals over the points fitted "
                      "(dimensionless; about the typical relative error).", goodness_rows(result))
    lines += _section("Rolling prediction", "Fit on the k smallest sizes (or budgets), predict the next: mean "
                      "absolute relative error of the predicted loss (N_opt, D_opt: of the predicted optimum).",
                      rolling_rows(result))
    lines += _section("Held-out check", "Fit on all but the largest models (or budgets, or compute), predict "
                      "the held-out ones (relative error of what the law predicts: the loss, or the N_opt, D_opt, "
                      "N, S_min or B of an allocation law).", held_out_rows(result))
    if "law_selection" in result.data:
        lines += ["## Law forms by extrapolation", "", "Each form fitted to approach 3's points of the smaller "
                  "sizes, scored on the larger ones (analysis/law_forms.py; N and D as in the headline "
                  "convention).", "", "```", law_forms.candidates_table(result.data["law_selection"]), "```", ""]
    if result.skipped:
        lines += ["## Not fitted", ""] + [f"- {k}: {why}" for k, why in result.skipped.items()] + [""]
    lines += ["## Figures", ""] + [f"![{stem}](figures/{stem}.png)\n" for stem in figures if stem != "dashboard"]
    lines += [f"- skipped {line}" for line in missing]
    return "\n".join(lines) + "\n"


def to_tensorboard(result, log_dir: Path) -> None:
    """The fitted constants in the HParams tab (a row of their own, beside the runs' rows: this writes the
    sweep's experiment record, core.hparams_tab) and the report's tables in the Text tab; no scalars. An
    earlier analysis's events are removed: TensorBoard would show its session, the first in the folder."""
    from tensorboard.plugins.text.summary_v2 import text_pb  # tensorboard loads only here

    from scaling_sweep.core import hparams_tab

    shutil.rmtree(log_dir, ignore_errors=True)
    constants = {f"fit/{key}/{name}": value for key, f in result.fits.items() for name, value in f.params.items()}
    tables = {"fits/constants": constants_rows(result), "fits/held_out": held_out_rows(result)}
    hparams_tab.write(log_dir, [
        hparams_tab.experiment({name: name for name in constants}),
        *hparams_tab.session(f"{result.name}/analysis", constants, "completed"),
        *(text_pb(tag, "\n".join(rows)) for tag, rows in tables.items()),
    ])
