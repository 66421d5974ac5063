"""Kaplan et al. 2020's figures (and Chinchilla's IsoFLOP profiles) from one analysed sweep.

Each figure is written as PNG and SVG, titled with the sweep and its fitted constants; a
figure whose data the sweep lacks is skipped with one line saying what would provide it.
Published constants are drawn only where they apply: Kaplan's for GPT-2's tokenizer,
both papers' beside external points (a CSV of published runs).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from scaling_sweep.core import laws

KAPLAN_TOKENIZERS = ("gpt2", "r50k_base")  # Kaplan's constants are in nats of GPT-2's BPE
LOSS_LABEL = "loss (nats/token)"
N_LABEL = "N, non-embedding parameters"
C_LABEL = "C = 6N·tokens (FLOPs)"
PANEL = (5.0, 4.0)


class MissingData(Exception):
    """The sweep has no data for this figure; the message says what would provide it."""


# ---------------------------------------------------------------- helpers


def _figure(n_panels, result, title):
    # A bare Figure draws with the Agg canvas and touches no pyplot state or backend.
    fig = Figure(figsize=(PANEL[0] * n_panels, PANEL[1] + 0.4))
    axes = fig.subplots(1, n_panels, squeeze=False)
    fig.suptitle(textwrap.fill(f"{result.name}: {title}", 60 * n_panels), fontsize=10)
    return fig, list(axes[0])


def _label_2_and_5(value, _):
    mantissa = value / 10 ** np.floor(np.log10(value))
    return f"{value:g}" if round(mantissa) in (2, 5) else ""


def _tidy_log_ticks(axis, lo, hi):
    """Plain numbers on a log axis spanning less than a decade (its labels are on minor
    ticks): those with mantissa 1, 2, 3 or 5, or else about six evenly; mantissas 2 and 5
    up to two decades; no minor labels on wider axes, where they collide."""
    if hi / lo >= 100:
        axis.set_minor_formatter(NullFormatter())
    elif hi / lo >= 10:
        axis.set_minor_formatter(FuncFormatter(_label_2_and_5))
    else:
        ticks = np.array(sorted(t for t in (*axis.get_majorticklocs(), *axis.get_minorticklocs()) if lo <= t <= hi))
        mantissa = np.round(ticks / 10 ** np.floor(np.log10(ticks)), 6)
        round_ones = ticks[np.isin(mantissa, (1, 2, 3, 5))]
        shown = round_ones if len(round_ones) >= 3 else ticks[::max(1, int(np.ceil(len(ticks) / 6)))]
        plain = FuncFormatter(lambda v, _: f"{v:.4g}" if np.isclose(v, shown, rtol=1e-9).any() else "")
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(plain)


def _save(fig, out_dir: Path, stem: str) -> str:
    fig.draw_without_rendering()  # colorbars set their limits when drawn
    for ax in fig.axes:
        if ax.get_xscale() == "log":
            _tidy_log_ticks(ax.xaxis, *ax.get_xlim())
        if ax.get_yscale() == "log":
            _tidy_log_ticks(ax.yaxis, *ax.get_ylim())
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"{stem}.{ext}", dpi=120)
    return stem


def _loglog(ax, xlabel, ylabel=LOSS_LABEL):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def _legend(ax):
    """Below the axes: fit labels carry their constants and CIs, too wide to sit on the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)


def _constant(fit, name, digits=3):
    """'name=value [lo, hi]' of a fitted constant."""
    value = fit.params[name]
    lo, hi = fit.ci.get(name, (np.nan, np.nan))
    return f"{name}={value:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def _constants(fit, names):
    return ", ".join(_constant(fit, n) for n in names if n in fit.params)


def _span(x, pad=1.3):
    x = np.asarray(x, float)
    return np.geomspace(x.min() / pad, x.max() * pad, 100)


def _size_colors(N):
    norm = LogNorm(vmin=min(N), vmax=max(N) * 1.0001)
    return norm, lambda n: colormaps["viridis"](norm(n))


def _colorbar(fig, ax, norm, label):
    sm = ScalarMappable(norm=norm, cmap="viridis")
    fig.colorbar(sm, ax=ax, label=label)


def _fit_or_skip(result, key, why):
    if key not in result.fits:
        raise MissingData(why)
    return result.fits[key]


def _kaplan_applies(result) -> bool:
    return result.setting.get("tokenizer") in KAPLAN_TOKENIZERS


def _external(result) -> bool:
    return "points_file" in result.setting


def _draw_power_fits(ax, result, law, x, var):
    """The fitted power law and its variant with a floor as lines over x."""
    for key, style in ((law, "-"), (law + "_floor", "--")):
        f = result.fits.get(key)
        if f is None:
            continue
        grid = _span(x)
        names = (f"alpha_{var}", "L_inf")
        ax.plot(grid, f.predict(grid), style, color="C3", lw=1.2, label=f"fit: {_constants(f, names)}")


def _draw_published_power(ax, result, key, x):
    if _kaplan_applies(result):
        grid = _span(x)
        ax.plot(grid, laws.power_law(grid, *laws.KAPLAN[key].values()), ":", color="k", lw=1,
                label=f"Kaplan: {', '.join(f'{k}={v:.3g}' for k, v in laws.KAPLAN[key].items())}")


# ---------------------------------------------------------------- Kaplan's figures


def fig1_loss_vs_compute_data_size(result, out_dir):
    """Fig. 1: L against compute (envelope of learning curves), dataset size and N."""
    if not {"L_Cmin", "L_D", "L_N"} & result.fits.keys():
        raise MissingData("needs finished runs at 3 or more model sizes (a size sweep)")
    exponents = "; ".join(_constant(result.fits[k], f"alpha_{k[2]}") for k in ("L_Cmin", "L_D", "L_N")
                          if k in result.fits)
    fig, (ax_c, ax_d, ax_n) = _figure(3, result,
                                      f"fig. 1 - loss against compute, dataset size, parameters; {exponents}")
    for run in result.runs:
        if run.summary.max_unique_tokens is None:
            curve = run.loss_curve()
            ax_c.plot(curve["flops"], curve["loss"], color="0.75", lw=0.7)
    env = result.data["envelope"]
    if len(env["C"]):
        ax_c.plot(env["C"], env["loss"], color="k", lw=1.5, label="envelope (lowest loss reached)")
        _draw_power_fits(ax_c, result, "L_Cmin", env["C"], "C")
        _draw_published_power(ax_c, result, "L_Cmin", env["C"])
    _loglog(ax_c, C_LABEL)
    ax_c.set_title("L(C): C at the run's batch, not C_min", fontsize=9)
    _panel_data_size(ax_d, result)
    N, loss = result.data["L_N"]["N"], result.data["L_N"]["loss"]
    ax_n.plot(N, loss, "o", color="C0", label="lowest early-stopped loss per N")
    _draw_power_fits(ax_n, result, "L_N", N, "N")
    _draw_published_power(ax_n, result, "L_N", N)
    _loglog(ax_n, N_LABEL)
    ax_n.set_title("L(N)", fontsize=9)
    for ax in (ax_c, ax_d, ax_n):
        _legend(ax)
    return _save(fig, out_dir, "fig1_loss_vs_compute_data_size")


def _panel_data_size(ax, result):
    if "L_D" not in result.fits:
        ax.text(0.5, 0.5, "no L(D) fit: needs runs of one model\nat 3+ dataset sizes (a data sweep,\n"
                "train.max_unique_tokens)", ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    D, loss = result.data["L_D"]["D"], result.data["L_D"]["loss"]
    ax.plot(D, loss, "o", color="C0", label=f"N={result.data['L_D']['N']:.3g}, early-stopped")
    _draw_power_fits(ax, result, "L_D", D, "D")
    _draw_published_power(ax, result, "L_D", D)
    _loglog(ax, "D, dataset size (tokens)")
    ax.set_title("L(D)", fontsize=9)


def fig2_learning_curves(result, out_dir):
    """Fig. 2: learning curves against tokens and FLOPs, coloured by N, with the frontier."""
    runs = [r for r in result.runs if r.summary.max_unique_tokens is None and len(r.loss_curve()["step"]) >= 2]
    if len(runs) < 2:
        raise MissingData("needs learning curves of 2 or more full-data runs")
    fit_c = result.fits.get("L_Cmin")
    title = "fig. 2 - learning curves" + (f"; frontier L=(C_c/C)^alpha_C, {_constants(fit_c, ['alpha_C', 'C_c'])}"
                                          if fit_c else "")
    fig, (ax_t, ax_c) = _figure(2, result, title)
    norm, color = _size_colors([r.summary.N for r in runs])
    for run in runs:
        curve = run.loss_curve()
        ax_t.plot(curve["tokens"], curve["loss"], color=color(run.summary.N), lw=1)
        ax_c.plot(curve["flops"], curve["loss"], color=color(run.summary.N), lw=1)
    env = result.data["envelope"]
    ax_c.plot(env["C"], env["loss"], "k--", lw=1.2, label="compute-efficient frontier")
    if fit_c:
        ax_c.plot(env["C"], fit_c.predict(env["C"]), color="C3", lw=1, label="L(C) fit")
    _loglog(ax_t, "tokens processed")
    _loglog(ax_c, C_LABEL)
    _legend(ax_c)
    _colorbar(fig, ax_c, norm, N_LABEL)
    return _save(fig, out_dir, "fig2_learning_curves")


def fig4_loss_vs_n_d_and_n_s(result, out_dir):
    """Fig. 4: L(N, D) against D for each N (left), L(N, S_min) against steps (right)."""
    panels = [k for k in ("L_ND", "L_NS") if k in result.fits]
    if not panels:
        raise MissingData("needs a data sweep (L(N, D)) or learning curves at 2+ sizes (L(N, S))")
    fig, axes = _figure(len(panels), result, "fig. 4 - " + "; ".join(
        f"{k}: {_constants(result.fits[k], ['alpha_N', 'alpha_D', 'alpha_S'])}" for k in panels))
    for ax, key in zip(axes, panels):
        (_panel_nd if key == "L_ND" else _panel_ns)(fig, ax, result)
    return _save(fig, out_dir, "fig4_loss_vs_n_d_and_n_s")


def _panel_by_size(fig, ax, f, N, x, loss, make_inputs, xlabel):
    """Points coloured by N with the fitted law's curve for each N."""
    norm, color = _size_colors(N)
    grid = _span(x)
    for n in np.unique(N):
        mine = N == n
        ax.plot(x[mine], loss[mine], "o", ms=3.5, color=color(n))
        ax.plot(grid, f.predict(*make_inputs(n, grid)), color=color(n), lw=1)
    _loglog(ax, xlabel)
    _colorbar(fig, ax, norm, N_LABEL)


def _panel_nd(fig, ax, result):
    final = result.data["final"]
    _panel_by_size(fig, ax, result.fits["L_ND"], final["N"], final["D"], final["loss"],
                   lambda n, g: (np.full_like(g, n), g), "D, dataset size (tokens)")
    ax.set_title("L(N, D), eq. 1.5: early-stopped loss", fontsize=9)


def _panel_ns(fig, ax, result):
    pts = result.data["steps"]
    _panel_by_size(fig, ax, result.fits["L_NS"], pts["N"], pts["S_min"], pts["loss"],
                   lambda n, g: (np.full_like(g, n), g), "S_min, steps" if "eq. 5.4" in pts["steps_note"]
                   else "S, steps")
    ax.set_title(textwrap.fill(f"L(N, S), eq. 1.6; {pts['steps_note']}", 70), fontsize=8)


SHAPE_FEATURES = (("aspect ratio d_model / n_layer", lambda f: f["d_model"] / f["n_layer"]),
                  ("head dimension d_model / n_head", lambda f: f["d_model"] / f["n_head"]),
                  ("feed-forward ratio d_ff / d_model", lambda f: f["d_ff"] / f["d_model"]))


def _same_size_groups(N, tolerance=0.1):
    """Index groups of runs whose N lie within tolerance of the group's smallest."""
    order = np.argsort(N)
    groups, current = [], [order[0]]
    for i in order[1:]:
        if N[i] <= N[current[0]] * (1 + tolerance):
            current.append(i)
        else:
            groups.append(current)
            current = [i]
    return [np.array(g) for g in groups + [current] if len(g) >= 2]


def fig5_shape(result, out_dir):
    """Fig. 5: loss increase against shape at (about) fixed N."""
    full = result.data["size_runs"]
    groups = _same_size_groups(full["N"]) if len(full["N"]) else []
    panels = [(label, f(full)) for label, f in SHAPE_FEATURES
              if any(len(np.unique(f(full)[g])) >= 2 for g in groups)]
    if not panels:
        raise MissingData("needs a shape sweep: runs of about the same N (within 10%) with different "
                          "n_layer, n_head or d_ff")
    fig, axes = _figure(len(panels), result, "fig. 5 - loss against shape at fixed N (within 10%)")
    for ax, (label, feature) in zip(axes, panels):
        for g in groups:
            if len(np.unique(feature[g])) < 2:
                continue
            order = g[np.argsort(feature[g])]
            ratio = full["loss"][order] / full["loss"][g].min() - 1
            ax.plot(feature[order], 100 * ratio, "o-", ms=4, label=f"N≈{full['N'][g].mean():.2g}")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("loss increase over the best shape (%)")
        ax.grid(True, alpha=0.3)
        _legend(ax)
    return _save(fig, out_dir, "fig5_shape")


def fig6_embedding_parameters(result, out_dir):
    """Fig. 6: loss against N with and without embedding parameters, coloured by depth."""
    full = result.data["size_runs"]
    if len(np.unique(full["N"])) < 3:
        raise MissingData("needs finished runs at 3 or more model sizes (a size sweep)")
    fig, axes = _figure(2, result, "fig. 6 - loss against parameters, with and without embeddings")
    depths = np.unique(full["n_layer"])
    for ax, key, label in ((axes[0], "N_total", "parameters including embeddings"),
                           (axes[1], "N", N_LABEL)):
        for i, depth in enumerate(depths):
            mine = full["n_layer"] == depth
            color = colormaps["plasma"](0.85 * i / max(1, len(depths) - 1))
            ax.plot(full[key][mine], full["loss"][mine], "o", ms=4, color=color, label=f"{int(depth)} layers")
        _loglog(ax, label)
        _legend(ax)
    return _save(fig, out_dir, "fig6_embedding_parameters")


def fig9_overfitting(result, out_dir):
    """Fig. 9 right: L(N, D)/L(N, inf) - 1 against N^(alpha_N/alpha_D)/D."""
    f = _fit_or_skip(result, "L_ND", "needs an L(N, D) fit: a data sweep (train.max_unique_tokens at 2+ sizes)")
    p = f.params
    final = result.data["final"]
    ratio = p["alpha_N"] / p["alpha_D"]
    x = final["N"] ** ratio / final["D"]
    excess = final["loss"] / laws.loss_n(final["N"], p["N_c"], p["alpha_N"]) - 1
    fig, (ax,) = _figure(1, result, f"fig. 9 - overfitting; {_constants(f, ['alpha_N', 'alpha_D'])}")
    norm, color = _size_colors(final["N"])
    above = excess > 0  # a log axis cannot show runs that beat the fitted L(N, inf)
    ax.scatter(x[above], excess[above], c=[color(n) for n in final["N"][above]], s=18,
               label=f"runs ({(~above).sum()} below L(N, ∞) not shown)")
    grid = _span(x)
    ax.plot(grid, (1 + grid * p["D_c"] / p["N_c"] ** ratio) ** p["alpha_D"] - 1, color="C3",
            label="eq. 1.5: (1 + x·D_c/N_c^(α_N/α_D))^α_D - 1")
    _loglog(ax, "N^(α_N/α_D) / D", "L(N, D) / L(N, ∞) - 1")
    _colorbar(fig, ax, norm, N_LABEL)
    _legend(ax)
    return _save(fig, out_dir, "fig9_overfitting")


def fig10_critical_batch(result, out_dir):
    """Fig. 11-style hyperbolae (steps against tokens per target) and fig. 10, B_crit(L)."""
    f = _fit_or_skip(result, "B_crit", "needs a batch-size sweep: one model at 2 or more batch sizes "
                     "(train.batch_size)")
    fig, (ax_h, ax_b) = _figure(2, result, f"fig. 10 - critical batch; {_constants(f, ['B_star', 'alpha_B'])}")
    pts = result.data["batch"]
    targets = f.extra["targets"]
    for i, row in enumerate(targets):
        color = colormaps["viridis"](i / max(1, len(targets) - 1))
        mine = np.isclose(pts["target"], row["loss"])
        ax_h.plot(pts["S"][mine], pts["S"][mine] * pts["B"][mine], "o", ms=4, color=color,
                  label=f"L={row['loss']:.3g}")
        B = np.geomspace(pts["B"].min() / 4, pts["B"].max() * 4, 100)
        S = laws.steps_at_batch(B, row["S_min"], row["E_min"])
        ax_h.plot(S, S * B, color=color, lw=1)
    _loglog(ax_h, "steps S", "tokens E = B·S")
    ax_h.set_title("(S/S_min - 1)(E/E_min - 1) = 1, eq. 5.1", fontsize=9)
    L = np.array([r["loss"] for r in targets])
    B_crit = np.array([r["B_crit"] for r in targets])
    err = np.array([[r["B_crit"] - r["ci"]["B_crit"][0], r["ci"]["B_crit"][1] - r["B_crit"]] for r in targets]).T
    ax_b.errorbar(L, B_crit, yerr=np.clip(err, 0, None), fmt="o", color="C0", label="B_crit per target (95% CI)")
    grid = np.linspace(L.min() * 0.95, L.max() * 1.05, 50)
    ax_b.plot(grid, f.predict(grid), color="C3", label="fit B*/L^(1/α_B)")
    if _kaplan_applies(result):
        ax_b.plot(grid, laws.critical_batch(grid, **laws.KAPLAN["B_crit"]), "k:", label="Kaplan B*=2e8, α_B=0.21")
    _loglog(ax_b, LOSS_LABEL, "critical batch size (tokens)")
    for ax in (ax_h, ax_b):
        _legend(ax)
    return _save(fig, out_dir, "fig10_critical_batch")


def fig14_optimal_size(result, out_dir):
    """Fig. 14-style: compute-efficient N against C, from the frontier and IsoFLOP minima,
    beside Kaplan's N ∝ C^0.73 and Chinchilla's N ∝ C^0.5 through the same middle point."""
    sources = []
    env = result.data.get("envelope")
    if "N_opt_frontier" in result.fits:
        sources.append(("frontier (run on the envelope)", env["C"], env["N"], result.fits["N_opt_frontier"], "C0"))
    minima = result.data.get("isoflop", {}).get("minima", [])
    if "N_opt" in result.fits:
        sources.append(("IsoFLOP minima", np.array([m["C"] for m in minima]),
                        np.array([m["N_opt"] for m in minima]), result.fits["N_opt"], "C1"))
    if not sources:
        raise MissingData("needs 3+ model sizes on the compute frontier or 3+ IsoFLOP minima")
    fig, (ax,) = _figure(1, result, "fig. 14 - compute-efficient model size, N_opt ∝ C^exponent; " + "; ".join(
        f"{label.split(' ')[0]}: {_constant(f, 'exponent')}" for label, _, _, f, _ in sources))
    all_C = np.concatenate([s[1] for s in sources])
    grid = _span(all_C)
    for label, C, N, f, color in sources:
        ax.plot(C, N, "o", ms=3.5, color=color, label=label)
        ax.plot(grid, laws.allocation(grid, f.params["N_coef"], f.params["exponent"]), color=color, lw=1)
    C_mid, N_mid = np.exp(np.log(all_C).mean()), np.exp(np.log(np.concatenate([s[2] for s in sources])).mean())
    for name, exponent, style in (("Kaplan", laws.KAPLAN_EXPONENTS["N_opt"], ":"),
                                  ("Chinchilla", laws.CHINCHILLA_EXPONENTS["N_opt"], "--")):
        ax.plot(grid, N_mid * (grid / C_mid) ** exponent, style, color="k", lw=1,
                label=f"{name} slope C^{exponent}")
    _loglog(ax, C_LABEL, N_LABEL)
    _legend(ax)
    return _save(fig, out_dir, "fig14_optimal_size")


def isoflop_profiles(result, out_dir):
    """Chinchilla fig. 3: loss against N at fixed compute with parabolas, and N_opt, D_opt."""
    iso = result.data.get("isoflop", {})
    profiles = iso.get("profiles", [])
    if not profiles:
        raise MissingData("needs 3+ model sizes whose learning curves overlap in compute, "
                          "or runs stopped at train.compute_budget (an IsoFLOP sweep)")
    chin = result.fits.get("chinchilla")
    title = "Chinchilla IsoFLOP profiles" + (f"; E + A/N^α + B/D^β: {_constants(chin, ['E', 'alpha', 'beta'])}"
                                             if chin else "")
    fig, (ax_p, ax_o) = _figure(2, result, title)
    norm = LogNorm(vmin=min(p["C"] for p in profiles), vmax=max(p["C"] for p in profiles) * 1.0001)
    minima = {m["C"]: m for m in iso["minima"]}
    for p in profiles:
        color = colormaps["viridis"](norm(p["C"]))
        ax_p.plot(p["N"], p["loss"], "o", ms=3.5, color=color)
        grid = _span(p["N"], 1.1)
        if p["C"] in minima:
            ax_p.plot(*_near_minimum_parabola(minima[p["C"]]), color=color, lw=1)
            ax_p.plot(minima[p["C"]]["N_opt"], minima[p["C"]]["loss"], "*", ms=10, color=color, mec="k")
        if chin:
            ax_p.plot(grid, chin.predict(grid, laws.tokens_for_budget(p["C"], grid)), ":", color=color, lw=1)
    ax_p.set_xscale("log")
    ax_p.set_xlabel(N_LABEL)
    ax_p.set_ylabel(LOSS_LABEL)
    ax_p.grid(True, alpha=0.3)
    ax_p.set_title(textwrap.fill(f"{iso['source']}; lines: parabola of log-loss in log N near each minimum"
                                 + (", dotted: approach 3" if chin else ""), 70), fontsize=8)
    _colorbar(fig, ax_p, norm, "compute budget C (FLOPs)")
    _panel_allocation(ax_o, result, iso["minima"])
    return _save(fig, out_dir, "isoflop_profiles")


def _near_minimum_parabola(minimum):
    """(N, loss) along the parabola that located a profile's optimum, over the sizes it was fitted to."""
    parabola = minimum["parabola"]
    x = np.linspace(*parabola["span_log_N"], 50) - parabola["center_log_N"]
    return np.exp(x + parabola["center_log_N"]), np.exp(np.polyval(parabola["coef"], x))


def _panel_allocation(ax, result, minima):
    if not minima:
        ax.text(0.5, 0.5, "no profile has its minimum inside\nthe sizes sampled", ha="center", va="center",
                transform=ax.transAxes, fontsize=9)
        return
    C = np.array([m["C"] for m in minima])
    grid = _span(C)
    for key, color in (("N_opt", "C0"), ("D_opt", "C1")):
        ax.plot(C, [m[key] for m in minima], "o", color=color, label=f"{key} (profile optima)")
        f = result.fits.get(key)
        if f is not None:
            coef = f.params[f"{key[0]}_coef"]
            ax.plot(grid, laws.allocation(grid, coef, f.params["exponent"]), color=color, lw=1,
                    label=f"{key} ∝ C^{f.params['exponent']:.3f} [{f.ci['exponent'][0]:.2f}, {f.ci['exponent'][1]:.2f}]"
                    if f.ci else f"{key} ∝ C^{f.params['exponent']:.3f}")
    _loglog(ax, "compute budget C (FLOPs)", "N_opt (parameters), D_opt (tokens)")
    ax.set_title("Chinchilla approach 2 (published: both ∝ C^0.50)", fontsize=9)
    _legend(ax)


FIGURES = (fig1_loss_vs_compute_data_size, fig2_learning_curves, fig4_loss_vs_n_d_and_n_s, fig5_shape,
           fig6_embedding_parameters, fig9_overfitting, fig10_critical_batch, fig14_optimal_size,
           isoflop_profiles)
POINTS_FIGURES = (isoflop_profiles, fig14_optimal_size)  # figures that external points support


def draw_all(result, out_dir: Path) -> tuple[list[str], list[str]]:
    """Draw every figure the data supports; returns (stems drawn, 'name: why' for skipped)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn, missing = [], []
    for draw in POINTS_FIGURES if _external(result) else FIGURES:
        try:
            drawn.append(draw(result, out_dir))
        except MissingData as why:
            missing.append(f"{draw.__name__}: {why}")
    return drawn, missing
