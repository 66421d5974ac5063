"""report.md and TensorBoard hparams/text for an analysed sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaling_sweep.core import laws

# fitted law -> the published constants it is compared with, (label, constants)
PUBLISHED_FOR = {
    "L_N": [("Kaplan", laws.KAPLAN["L_N"])],
    "L_D": [("Kaplan", laws.KAPLAN["L_D"])],
    "L_Cmin": [("Kaplan", laws.KAPLAN["L_Cmin"])],
    "L_ND": [("Kaplan table 2", laws.KAPLAN["L_ND_fit"])],
    "L_NS": [("Kaplan", laws.KAPLAN["L_NS"])],
    "B_crit": [("Kaplan", laws.KAPLAN["B_crit"])],
    "chinchilla": [("Chinchilla", laws.CHINCHILLA), ("Epoch", laws.EPOCH_REPLICATION)],
    "N_opt": [("Kaplan", {"exponent": laws.KAPLAN_EXPONENTS["N_opt"]}),
              ("Chinchilla", {"exponent": laws.CHINCHILLA_EXPONENTS["N_opt"]})],
    "D_opt": [("Kaplan", {"exponent": laws.KAPLAN_EXPONENTS["D_opt"]}),
              ("Chinchilla", {"exponent": laws.CHINCHILLA_EXPONENTS["D_opt"]})],
}


def _published(law: str, name: str) -> str:
    values = [f"{label} {consts[name]:.4g}" for label, consts in PUBLISHED_FOR.get(law, []) if name in consts]
    return "; ".join(values) or "-"


def constants(f):
    """(name, value, CI low, CI high, unit) of each fitted constant; nan bounds without a CI."""
    for name, value in f.params.items():
        lo, hi = f.ci.get(name, (np.nan, np.nan))
        yield name, value, lo, hi, laws.CONSTANT_UNITS.get(name, "dimensionless")


def constants_rows(result) -> list[str]:
    rows = ["| law | constant | fitted | 95% CI | unit | published |", "| --- | --- | --- | --- | --- | --- |"]
    for key, f in result.fits.items():
        for name, value, lo, hi, unit in constants(f):
            rows.append(f"| {key} | {name} | {value:.4g} | [{lo:.4g}, {hi:.4g}] | {unit} | {_published(f.law, name)} |")
    return rows


def held_out_rows(result) -> list[str]:
    rows = ["| law | held out (first input ≥) | points fitted / held out "
            "| mean abs. rel. error | max abs. rel. error |",
            "| --- | --- | --- | --- | --- |"]
    for key, f in result.fits.items():
        check = f.extra.get("held_out")
        if not check:
            continue
        if "skipped" in check:
            rows.append(f"| {key} | skipped: {check['skipped']} | | | |")
            continue
        rows.append(f"| {key} | {check['held_out_from']:.3g} | {check['n_fit']} / {check['n_held_out']} | "
                    f"{100 * check['mean_abs_rel_error']:.2f}% | {100 * check['max_abs_rel_error']:.2f}% |")
    return rows


def law_form(f) -> tuple[str, str]:
    """The formula a fit used, and where it comes from."""
    form, source = laws.LAW_INFO[f.law]
    return form + (laws.FLOOR_FORM if "L_inf" in f.params else ""), source


def _forms(result) -> list[str]:
    return [f"- **{key}**: {law_form(f)[0]} ({law_form(f)[1]}); {f.n_points} points: {f.extra['points']}"
            for key, f in result.fits.items()]


def markdown(result, figures: list[str], missing: list[str]) -> str:
    setting = ", ".join(f"{k} {v}" for k, v in result.setting.items())
    lines = [f"# Scaling-law fits: {result.name}", "",
             f"Setting: {setting}. Loss in nats/token; N = non-embedding parameters; D = tokens; "
             "C = 6·N·D FLOPs; B in tokens; S in steps. Intervals: 95% bootstrap (smoothed residual "
             "bootstrap, bias-corrected percentiles widened to the t quantile).", ""]
    if result.runs or result.excluded:
        lines += [f"## Runs: {len(result.runs)} used, {len(result.excluded)} excluded", ""]
        lines += [f"- excluded {name}: {why}" for name, why in result.excluded] or ["- none excluded"]
        lines.append("")
    lines += ["## Laws", ""] + _forms(result) + [""]
    lines += ["## Fitted constants", "",
              "Published constants are for other tokenizers and data (Kaplan: GPT-2 BPE on WebText2; "
              "Chinchilla: MassiveText): exponents compare across setups, scales only with the same "
              "tokenizer.", ""] + constants_rows(result) + [""]
    warnings = [f"- {key}: {f.extra['warning']}" for key, f in result.fits.items() if "warning" in f.extra]
    if warnings:
        lines += ["## Warnings", ""] + warnings + [""]
    lines += ["## Held-out check", "", "Fit on all but the largest models, predict the held-out ones "
              "(relative error of the predicted loss).", ""] + held_out_rows(result) + [""]
    if result.skipped:
        lines += ["## Not fitted", ""] + [f"- {k}: {why}" for k, why in result.skipped.items()] + [""]
    lines += ["## Figures", ""] + [f"![{stem}](figures/{stem}.png)\n" for stem in figures]
    lines += [f"- skipped {line}" for line in missing]
    return "\n".join(lines) + "\n"


def to_tensorboard(result, log_dir: Path) -> None:
    """The fitted constants as hparams metrics and the report tables as text, beside the runs."""
    from torch.utils.tensorboard import SummaryWriter

    metrics = {f"fit/{key}/{name}": value for key, f in result.fits.items() for name, value in f.params.items()}
    hparams = {k: str(v) for k, v in result.setting.items()}
    with SummaryWriter(str(log_dir)) as writer:
        writer.add_hparams(hparams, metrics, run_name=".")
        writer.add_text("fits/constants", "\n".join(constants_rows(result)))
        writer.add_text("fits/held_out", "\n".join(held_out_rows(result)))
