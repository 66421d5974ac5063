"""Kaplan et al. 2020's figures, Chinchilla's IsoFLOP profiles and approach-2 allocation, and the
residuals of every fit, from one analysed sweep, in its headline convention.

Each figure is written as PNG and SVG, titled with the sweep and its fitted constants; a
figure whose data the sweep lacks is skipped with one line saying what would provide it.
The dashboard comes first: whether the laws hold, in four panels (figures.dashboard).
Kaplan's published laws are drawn only where their scale applies (GPT-2's tokenizer); the
published exponents of the allocation laws are drawn as reference slopes everywhere.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from scipy.stats import norm as normal

from scaling_sweep.analysis import points, report
from scaling_sweep.analysis.fit import CI_LEVEL, LAWS
from scaling_sweep.core import laws

KAPLAN_TOKENIZERS = ("gpt2", "r50k_base")  # Kaplan's constants are in nats of GPT-2's BPE
LOSS_LABEL = "loss (nats/token)"
PANEL = (5.0, 4.0)
EXTRAPOLATE = 100  # approach 2's laws are drawn out to this multiple of the sweep's largest budget
# published exponents drawn as reference slopes beside each fitted allocation law
REFERENCE_SLOPES = {
    "N_opt_frontier": (("Kaplan", laws.KAPLAN_EXPONENTS["N_opt"]), ("Chinchilla", laws.CHINCHILLA_EXPONENTS["N_opt"])),
    "S_min_frontier": (("Kaplan", laws.KAPLAN_EXPONENTS["S_min"]),),
    "B_frontier": (("Kaplan", laws.KAPLAN_EXPONENTS["B_crit"]),),
    "N_opt": (("Kaplan", laws.KAPLAN_EXPONENTS["N_opt"]), ("Chinchilla", laws.CHINCHILLA_EXPONENTS["N_opt"])),
    "D_opt": (("Chinchilla", laws.CHINCHILLA_EXPONENTS["D_opt"]),),
}


class MissingData(Exception):
    """The sweep has no data for this figure; the message says what would provide it."""


# ---------------------------------------------------------------- helpers


def _figure(n_panels, result, title, rows=1, panel=PANEL):
    # A bare Figure draws with the Agg canvas and touches no pyplot state or backend.
    columns = n_panels // rows
    fig = Figure(figsize=(panel[0] * columns, panel[1] * rows + 0.4))
    axes = fig.subplots(rows, columns, squeeze=False)
    fig.suptitle(textwrap.fill(f"{result.name}: {title}", 60 * columns), fontsize=10)
    return fig, list(axes.flat)


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
    for _ in range(2):  # the legends' new places change what tight_layout makes room for, once
        fig.tight_layout()
        _legends_under_axis_labels(fig)
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"{stem}.{ext}", dpi=120)
    return stem


def _loglog(ax, xlabel, ylabel=LOSS_LABEL):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def _legends_under_axis_labels(fig) -> None:
    """Each legend (all sit below their axes) just under its x tick labels and x label: tight_layout
    resizes the axes, so an offset in axes units alone lands on the label of a short axes."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    for ax in fig.axes:
        if ax.get_legend() is None:
            continue
        labels_bottom = ax.transAxes.inverted().transform((0, ax.xaxis.get_tightbbox(renderer).y0))[1]
        ax.get_legend().set_bbox_to_anchor((0.5, labels_bottom - 0.02), transform=ax.transAxes)


def _legend(ax):
    """Below the axes: fit labels carry their constants and CIs, too wide to sit on the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)


def _constant(fit, name, digits=3):
    """'name=value [lo, hi]' of a fitted constant."""
    value = fit.params[name]
    if name not in fit.ci:
        return f"{name}={value:.{digits}g} [{report.TOO_FEW_SHORT if 'no_interval' in fit.extra else 'no CI'}]"
    lo, hi = fit.ci[name]
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


def _n_label(result):
    return f"N, {report.unit_words(result)['N']}"


def _x_label(result, name):
    """Axis label of a law's input: N, D, C or C_min with its unit."""
    return f"{name}, {report.input_unit(result, name)}"


def _learning_curves(result):
    """(N, curve) of each full-data run in the headline convention, its compute converted to C_min
    (eq. 5.5) when B_crit was fitted, so that the curves and the frontier share an axis."""
    B_crit = result.fits.get("B_crit")
    curves = []
    for run in result.runs:
        if run.summary.max_unique_tokens is not None:
            continue
        run = result.convention.apply(run)
        curve = run.loss_curve()
        if len(curve["step"]) < 2:
            continue
        if B_crit is not None:
            curve["flops"] = laws.min_compute(curve["flops"], run.summary.batch_tokens / B_crit.predict(curve["loss"]))
        curves.append((run.summary.N, curve))
    return curves


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


def _draw_allocation(ax, f, C, color):
    """A fitted allocation law (value ∝ C^exponent) over C with the pointwise CI_LEVEL band of its
    bootstrap resamples' lines."""
    ax.plot(C, f.predict(C), color=color, lw=1.2, label=f"fit: {_constant(f, 'exponent')}")
    if f.samples:
        resampled = LAWS[f.law](C[None], **{name: values[:, None] for name, values in f.samples.items()})
        tail = 100 * (1 - CI_LEVEL) / 2
        lo, hi = np.nanpercentile(resampled, [tail, 100 - tail], axis=0)
        ax.fill_between(C, lo, hi, color=color, alpha=0.2, lw=0, label=f"{CI_LEVEL:.0%} band of the bootstrap fits")


def _draw_reference_slopes(ax, key, f, C, x_name="C"):
    """The published exponents of the law as lines through the fit at the middle of C."""
    middle = np.exp(np.log(C).mean())
    for (name, exponent), style in zip(REFERENCE_SLOPES[key], (":", "--")):
        ax.plot(C, f.predict(middle) * (C / middle) ** exponent, style, color="k", lw=1,
                label=f"{name}: ∝ {x_name}^{exponent}")


def _draw_published_power(ax, result, key, x):
    if _kaplan_applies(result):
        grid = _span(x)
        ax.plot(grid, laws.power_law(grid, *laws.KAPLAN[key].values()), ":", color="k", lw=1,
                label=f"Kaplan: {', '.join(f'{k}={v:.3g}' for k, v in laws.KAPLAN[key].items())}")


# ---------------------------------------------------------------- Kaplan's figures


def fig1_loss_vs_compute_data_size(result, out_dir):
    """Fig. 1: L against compute (the frontier of the learning curves), dataset size and N."""
    law = report.compute_law(result)
    if not {law, "L_D", "L_N"} & result.fits.keys():
        raise MissingData("needs finished runs at 3 or more model sizes (a size sweep)")
    exponents = "; ".join(_constant(result.fits[k], name) for k, name in
                          ((law, "alpha_C"), ("L_D", "alpha_D"), ("L_N", "alpha_N")) if k in result.fits)
    fig, (ax_c, ax_d, ax_n) = _figure(3, result,
                                      f"fig. 1 - loss against compute, dataset size, parameters; {exponents}")
    _panel_compute(ax_c, result, law)
    _panel_data_size(ax_d, result)
    N, loss = result.data["L_N"]["N"], result.data["L_N"]["loss"]
    ax_n.plot(N, loss, "o", color="C0", label=_size_points_label(result))
    _draw_power_fits(ax_n, result, "L_N", N, "N")
    _draw_published_power(ax_n, result, "L_N", N)
    _loglog(ax_n, _n_label(result))
    ax_n.set_title("L(N)", fontsize=9)
    for ax in (ax_c, ax_d, ax_n):
        _legend(ax)
    return _save(fig, out_dir, "fig1_loss_vs_compute_data_size")


def _size_points_label(result) -> str:
    S = result.data["L_N"].get("S")
    return "best validation loss per N" if S is None else f"loss per N at S = {S:,} steps (every size's length)"


def _panel_compute(ax, result, law):
    """Learning curves and their frontier against C_min (given B_crit) or the runs' own C, with the fits."""
    for _, curve in _learning_curves(result):
        ax.plot(curve["flops"], curve["loss"], color="0.75", lw=0.7)
    front = result.data["frontier"]
    if len(front["C"]):
        ax.plot(front["C"], front["loss"], "o", ms=2.5, color="k", label="frontier: lowest loss yet at its compute")
        _draw_power_fits(ax, result, law, front["C"], "C")
        _draw_published_power(ax, result, law, front["C"])
    _loglog(ax, _x_label(result, report.frontier_compute(result)))
    ax.set_title("L(C_min), eq. 1.3" if law == "L_Cmin" else "L(C) at the runs' own batch, eq. 3.3 (not C_min)",
                 fontsize=9)


def _no_data(ax, why):
    """An empty panel that says what it lacks and what would provide it."""
    ax.text(0.5, 0.5, textwrap.fill(why, 40), ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _panel_data_size(ax, result):
    if "L_D" not in result.fits:
        _no_data(ax, "no L(D) fit: needs runs of one model at 3+ dataset sizes (a data sweep, "
                 "train.max_unique_tokens)")
        return
    D, loss = result.data["L_D"]["D"], result.data["L_D"]["loss"]
    ax.plot(D, loss, "o", color="C0", label=f"N={result.data['L_D']['N']:.3g}, best validation loss")
    _draw_power_fits(ax, result, "L_D", D, "D")
    _draw_published_power(ax, result, "L_D", D)
    _loglog(ax, "D, dataset size (tokens)")
    ax.set_title("L(D)", fontsize=9)


def fig2_learning_curves(result, out_dir):
    """Fig. 2: learning curves against tokens and compute, coloured by N, with the frontier."""
    curves = _learning_curves(result)
    if len(curves) < 2:
        raise MissingData("needs learning curves of 2 or more full-data runs")
    law = report.compute_law(result)
    fit_c = result.fits.get(law)
    title = "fig. 2 - learning curves" + (f"; frontier {laws.LAW_INFO[law][0]}, {_constants(fit_c, ['alpha_C', 'C_c'])}"
                                          if fit_c else "")
    fig, (ax_t, ax_c) = _figure(2, result, title)
    norm, color = _size_colors([N for N, _ in curves])
    for N, curve in curves:
        ax_t.plot(curve["tokens"], curve["loss"], color=color(N), lw=1)
        ax_c.plot(curve["flops"], curve["loss"], color=color(N), lw=1)
    front = result.data["frontier"]
    ax_c.plot(front["C"], front["loss"], "k--", lw=1.2, label="compute-efficient frontier")
    if fit_c:
        ax_c.plot(front["C"], fit_c.predict(front["C"]), color="C3", lw=1, label=f"{law} fit")
    _loglog(ax_t, "tokens processed")
    _loglog(ax_c, _x_label(result, report.frontier_compute(result)))
    _legend(ax_c)
    _colorbar(fig, ax_c, norm, _n_label(result))
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


def _panel_by_size(fig, ax, result, f, N, x, loss, make_inputs, xlabel):
    """Points coloured by N with the fitted law's curve for each N."""
    norm, color = _size_colors(N)
    grid = _span(x)
    for n in np.unique(N):
        mine = N == n
        ax.plot(x[mine], loss[mine], "o", ms=3.5, color=color(n))
        ax.plot(grid, f.predict(*make_inputs(n, grid)), color=color(n), lw=1)
    _loglog(ax, xlabel)
    _colorbar(fig, ax, norm, _n_label(result))


def _panel_nd(fig, ax, result):
    final = result.data["final"]
    _panel_by_size(fig, ax, result, result.fits["L_ND"], final["N"], final["D"], final["loss"],
                   lambda n, g: (np.full_like(g, n), g), "D, dataset size (tokens)")
    ax.set_title("L(N, D), eq. 1.5: best validation loss", fontsize=9)


def _panel_ns(fig, ax, result):
    pts = result.data["steps"]
    _panel_by_size(fig, ax, result, result.fits["L_NS"], pts["N"], pts["S_min"], pts["loss"],
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
                           (axes[1], "N", _n_label(result))):
        for i, depth in enumerate(depths):
            mine = full["n_layer"] == depth
            color = colormaps["plasma"](0.85 * i / max(1, len(depths) - 1))
            ax.plot(full[key][mine], full["loss"][mine], "o", ms=4, color=color, label=f"{int(depth)} layers")
        _loglog(ax, label)
        _legend(ax)
    return _save(fig, out_dir, "fig6_embedding_parameters")


def fig9_overfitting(result, out_dir):
    """Fig. 9: loss against N for each dataset size D (left), L(N, D)/L(N, inf) - 1 against
    N^(alpha_N/alpha_D)/D (right), with eq. 1.5 as fitted."""
    f = _fit_or_skip(result, "L_ND", "needs an L(N, D) fit: a data sweep (train.max_unique_tokens at 2+ sizes)")
    title = f"fig. 9 - data size and overfitting; {_constants(f, ['alpha_N', 'alpha_D'])}"
    fig, (ax_n, ax_x) = _figure(2, result, title)
    _panel_loss_per_data_size(fig, ax_n, result, f)
    _panel_overfitting(fig, ax_x, result, f)
    return _save(fig, out_dir, "fig9_overfitting")


def _panel_loss_per_data_size(fig, ax, result, f):
    final, full = result.data["final"], result.data["size_runs"]
    limited = final["data_limited"]
    norm, color = _size_colors(final["D"][limited])
    grid = _span(final["N"])
    for D in np.unique(final["D"][limited]):
        mine = limited & (final["D"] == D)
        ax.plot(final["N"][mine], final["loss"][mine], "o", ms=4, color=color(D))
        ax.plot(grid, f.predict(grid, np.full_like(grid, D)), color=color(D), lw=1)
    ax.plot(full["N"], full["loss"], "s", ms=3.5, color="k", label="full-data runs")
    ax.plot(grid, f.predict(grid, np.full_like(grid, np.inf)), "k--", lw=1, label="eq. 1.5 at D → ∞, i.e. L(N)")
    _loglog(ax, _n_label(result))
    ax.set_title("best validation loss per dataset size D, eq. 1.5", fontsize=9)
    _colorbar(fig, ax, norm, "D, dataset size (tokens)")
    _legend(ax)


def _panel_overfitting(fig, ax, result, f):
    p = f.params
    final = result.data["final"]
    ratio = p["alpha_N"] / p["alpha_D"]
    x = final["N"] ** ratio / final["D"]
    excess = final["loss"] / laws.loss_n(final["N"], p["N_c"], p["alpha_N"]) - 1
    norm, color = _size_colors(final["N"])
    above = excess > 0  # a log axis cannot show runs that beat the fitted L(N, inf)
    ax.scatter(x[above], excess[above], c=[color(n) for n in final["N"][above]], s=18,
               label=f"runs ({(~above).sum()} below L(N, ∞) not shown)")
    grid = _span(x)
    ax.plot(grid, (1 + grid * p["D_c"] / p["N_c"] ** ratio) ** p["alpha_D"] - 1, color="C3",
            label="eq. 1.5: (1 + x·D_c/N_c^(α_N/α_D))^α_D - 1")
    _loglog(ax, "N^(α_N/α_D) / D", "L(N, D) / L(N, ∞) - 1")
    _colorbar(fig, ax, norm, _n_label(result))
    _legend(ax)


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
    err = np.array([[r["B_crit"] - r["ci"]["B_crit"][0], r["ci"]["B_crit"][1] - r["B_crit"]] if "ci" in r else [0, 0]
                    for r in targets]).T
    ax_b.errorbar(L, B_crit, yerr=np.clip(err, 0, None), fmt="o", color="C0", label="B_crit per target (95% CI)")
    grid = np.linspace(L.min() * 0.95, L.max() * 1.05, 50)
    ax_b.plot(grid, f.predict(grid), color="C3", label="fit B*/L^(1/α_B)")
    if _kaplan_applies(result):
        ax_b.plot(grid, laws.critical_batch(grid, **laws.KAPLAN["B_crit"]), "k:", label="Kaplan B*=2e8, α_B=0.21")
    _loglog(ax_b, LOSS_LABEL, "critical batch size (tokens)")
    for ax in (ax_h, ax_b):
        _legend(ax)
    return _save(fig, out_dir, "fig10_critical_batch")


def fig11_min_steps_and_examples(result, out_dir):
    """Fig. 11: the fewest steps S_min and the fewest tokens E_min (examples, here in tokens) that reach each
    target loss, read off eq. 5.1's hyperbola of the batch sweep's runs at that target (fig. 10's left panel),
    with their 95% intervals where the runs give one."""
    f = _fit_or_skip(result, "B_crit", "needs a batch-size sweep: one model at 2 or more batch sizes "
                     "(train.batch_size)")
    fig, axes = _figure(2, result, "fig. 11 - minimum steps and tokens to reach each target loss, eq. 5.1")
    pts = result.data["batch"]
    targets = f.extra["targets"]
    size = np.array([pts["N"][np.isclose(pts["target"], r["loss"])][0] for r in targets])  # each target is one N's
    sizes = np.unique(size)
    for ax, key, label in ((axes[0], "S_min", "S_min, optimizer steps"), (axes[1], "E_min", "E_min, tokens")):
        for i, N in enumerate(sizes):
            rows = sorted((r for r, n in zip(targets, size) if n == N), key=lambda r: r["loss"])
            value = np.array([r[key] for r in rows])
            err = np.array([[r[key] - r["ci"][key][0], r["ci"][key][1] - r[key]] if key in r.get("ci", {})
                            else [0, 0] for r in rows]).T
            ax.errorbar([r["loss"] for r in rows], value, yerr=np.clip(err, 0, None), fmt="o-", ms=4,
                        color=colormaps["viridis"](i / max(1, len(sizes) - 1)), label=f"N={N:.3g}")
        _loglog(ax, LOSS_LABEL, label)
        _legend(ax)
    return _save(fig, out_dir, "fig11_min_steps_and_examples")


FRONTIER_PANELS = (("N_opt_frontier", "N"), ("S_min_frontier", "S"), ("B_frontier", "B"))


def fig14_optimal_size(result, out_dir):
    """Fig. 14: the model size N (and, given B_crit, the steps S_min and batch B_crit) of the frontier
    points against C_min (eq. 1.7), or against the runs' own C without B_crit, beside the published slopes."""
    panels = [(key, column) for key, column in FRONTIER_PANELS if key in result.fits]
    if not panels:
        raise MissingData("needs 3 or more model sizes on the compute-efficient frontier")
    compute = report.frontier_compute(result)
    fig, axes = _figure(len(panels), result, f"fig. 14 - compute-efficient training against {compute}; " + "; ".join(
        f"{key}: {_constant(result.fits[key], 'exponent')}" for key, _ in panels))
    front = result.data["frontier"]
    grid = _span(front["C"])
    ylabels = {"N": _n_label(result), "S": "S_min, optimizer steps", "B": "B_crit, tokens per batch"}
    for ax, (key, column) in zip(axes, panels):
        ax.plot(front["C"], front[column], "o", ms=3, color="C0", label="frontier points")
        _draw_allocation(ax, result.fits[key], grid, "C0")
        _draw_reference_slopes(ax, key, result.fits[key], grid, compute)
        _loglog(ax, _x_label(result, compute), ylabels[column])
        _legend(ax)
    if compute == "C":
        axes[0].set_title("fixed batch: C at the runs' own batch size, not C_min (no B_crit fit)", fontsize=9)
    return _save(fig, out_dir, "fig14_optimal_size")


def isoflop_profiles(result, out_dir):
    """Chinchilla fig. 3 left: loss against N at fixed compute, with the parabola near each minimum."""
    iso = result.data.get("isoflop", {})
    profiles = iso.get("profiles", [])
    if not profiles:
        raise MissingData("needs 3+ model sizes whose learning curves overlap in compute, "
                          "or runs stopped at train.compute_budget (an IsoFLOP sweep)")
    chin = result.fits.get("chinchilla")
    title = "Chinchilla IsoFLOP profiles" + (f"; E + A/N^α + B/D^β: {_constants(chin, ['E', 'alpha', 'beta'])}"
                                             if chin else "")
    fig, (ax,) = _figure(1, result, title)
    norm = LogNorm(vmin=min(p["C"] for p in profiles), vmax=max(p["C"] for p in profiles) * 1.0001)
    minima = {m["budget"]: m for m in iso["minima"]}
    for p in profiles:
        color = colormaps["viridis"](norm(p["C"]))
        ax.plot(p["N"], p["loss"], "o", ms=3.5, color=color)
        grid = _span(p["N"], 1.1)
        if p["budget"] in minima:
            ax.plot(*_minimum_curve(minima[p["budget"]]), color=color, lw=1)
            ax.plot(minima[p["budget"]]["N_opt"], minima[p["budget"]]["loss"], "*", ms=10, color=color, mec="k")
        if chin:
            ax.plot(grid, chin.predict(grid, laws.tokens_for_budget(p["C"], grid)), ":", color=color, lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(_n_label(result))
    ax.set_ylabel(LOSS_LABEL)
    ax.grid(True, alpha=0.3)
    ax.set_title(textwrap.fill(f"{iso['source']}; lines: the curve each minimum was taken from"
                               + (", dotted: approach 3" if chin else ""), 70), fontsize=8)
    _colorbar(fig, ax, norm, _x_label(result, "C"))
    return _save(fig, out_dir, "isoflop_profiles")


def _minimum_curve(minimum):
    """(N, loss) along the curve that located a profile's optimum (points.isoflop_minimum)."""
    return minimum["curve"]["N"], minimum["curve"]["loss"]


def chinchilla_approach2(result, out_dir):
    """Chinchilla fig. 3 centre and right: N_opt and D_opt of the IsoFLOP minima against C, the fitted
    laws with their bootstrap bands extrapolated to EXTRAPOLATE times the largest budget, and the
    published exponents."""
    keys = [key for key in ("N_opt", "D_opt") if key in result.fits]
    if not keys:
        raise MissingData("needs 3 or more IsoFLOP profiles whose parabolas have their minimum inside the "
                          "sizes sampled (sizes on both sides of each budget's optimum)")
    minima = result.data["isoflop"]["minima"]
    C = np.array([m["C"] for m in minima])
    fig, axes = _figure(len(keys), result, "Chinchilla approach 2 - optimal allocation; " + "; ".join(
        f"{key}: {_constant(result.fits[key], 'exponent')}" for key in keys))
    grid = np.geomspace(C.min() / 1.3, EXTRAPOLATE * C.max(), 100)
    ylabels = {"N_opt": f"N_opt, {report.unit_words(result)['N']}", "D_opt": "D_opt, training tokens"}
    for ax, key, color in zip(axes, keys, ("C0", "C1")):
        ax.plot(C, [m[key] for m in minima], "o", color=color, label="IsoFLOP minima")
        _draw_allocation(ax, result.fits[key], grid, color)
        _draw_reference_slopes(ax, key, result.fits[key], grid)
        ax.axvline(C.max(), color="0.5", lw=0.8, ls="-.", label="largest budget fitted")
        _loglog(ax, _x_label(result, "C"), ylabels[key])
        _legend(ax)
    return _save(fig, out_dir, "chinchilla_approach2")


def residuals(result, out_dir):
    """Each fitted law's residuals, ln(observed / fitted), against the input its points are ordered by;
    loss laws and allocation laws (N, S_min, B_crit, N_opt, D_opt) in panels of their own."""
    panels, not_finite = {}, []
    for key, f in result.fits.items():
        if "goodness" not in f.extra:
            continue
        if not np.isfinite(f.extra["goodness"]["residuals"]).any():  # constants past float range (a flat fit)
            not_finite.append(key)
            continue
        kind = "loss" if report.predicted(f) == "loss" else "allocation"
        panels.setdefault((kind, report.first_input(result, f)), []).append((key, f))
    if not panels:
        raise MissingData(f"no finite residual: the fits of {', '.join(not_finite)} predict no finite value "
                          "at their points" if not_finite else "needs a fitted law")
    fig, axes = _figure(len(panels), result, "residuals of each fit, ln(observed / fitted)")
    for ax, ((kind, x_name), members) in zip(axes, panels.items()):
        for i, (key, f) in enumerate(members):
            goodness = f.extra["goodness"]
            residual = np.asarray(goodness["residuals"], float)
            finite = np.isfinite(residual)
            ax.plot(np.asarray(goodness["x"])[finite], residual[finite], "os^vD<>"[i % 7], ms=3.5, color=f"C{i}",
                    alpha=0.7, label=f"{key} (RMSE {goodness['rmse_log']:.3g})")
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(_x_label(result, x_name))
        ax.set_ylabel("ln(observed / fitted) of " + ", ".join(sorted({report.predicted(f) for _, f in members})))
        ax.grid(True, alpha=0.3)
        _legend(ax)
    return _save(fig, out_dir, "residuals")


# ---------------------------------------------------------------- the dashboard

HELD_OUT_MARKERS = "os^vD<>"


def dashboard(result, out_dir):
    """Whether the laws hold, at a glance: (a) loss against N with the fitted law, per compute budget where
    the sweep has IsoFLOP profiles; (b) the learning curves and the compute frontier's law; (c) the laws'
    predictions of the held-out largest runs against what they measured; (d) N_opt against C beside the
    published exponents. A panel the sweep has no data for says what would provide it."""
    outcomes = [report.verdict(f)[0] for f in result.fits.values()]
    fig, axes = _figure(4, result, f"dashboard: {outcomes.count('holds')} of {len(outcomes)} fitted laws hold "
                        f"(held-out error, intervals; report.md, What was reproduced)", rows=2, panel=(6.4, 5.2))
    for ax, (title, draw) in zip(axes, DASHBOARD_PANELS):
        ax.set_title(title, fontsize=9)
        try:
            draw(fig, ax, result)
        except MissingData as why:
            _no_data(ax, str(why))
        _legend(ax)
    return _save(fig, out_dir, "dashboard")


def _loss_label(result):
    tokenizer = result.setting.get("tokenizer")
    return f"loss (nats/token, {tokenizer} tokenizer)" if tokenizer else LOSS_LABEL


def _labelled_once(label, i):
    return label if i == 0 else "_"  # matplotlib leaves labels starting with "_" out of the legend


def _dash_loss_vs_n(fig, ax, result):
    iso = result.data.get("isoflop", {})
    if iso.get("profiles") and iso["source"] != points.CURVE_PROFILES:
        _dash_profiles(fig, ax, result, iso)
        return
    if "L_N" not in result.fits:
        raise MissingData("no IsoFLOP profiles in this sweep and no L(N) fit: "
                          + result.skipped.get("L_N", "needs finished runs at 3+ model sizes"))
    N, loss = result.data["L_N"]["N"], result.data["L_N"]["loss"]
    ax.plot(N, loss, "o", color="C0", label=_size_points_label(result))
    _draw_power_fits(ax, result, "L_N", N, "N")
    _loglog(ax, _n_label(result), _loss_label(result))
    ax.set_title(f"(a) L(N) = (N_c/N)^α_N, eq. 1.1: {_constants(result.fits['L_N'], ['alpha_N', 'N_c'])}",
                 fontsize=9)


def _dash_profiles(fig, ax, result, iso):
    """Each budget's losses against N, with approach 3's law at D = C/(6N) and its optimum (Hoffmann et al.
    2022 eq. 4) when fitted, else the L(N) fit of the sizes' lowest losses."""
    chin = result.fits.get("chinchilla")
    profiles = iso["profiles"]
    norm = LogNorm(vmin=min(p["C"] for p in profiles), vmax=max(p["C"] for p in profiles) * 1.0001)
    for i, p in enumerate(profiles):
        color = colormaps["viridis"](norm(p["C"]))
        ax.plot(p["N"], p["loss"], "o", ms=4, color=color, label=_labelled_once("loss at its budget C", i))
        if chin:
            grid = _span(p["N"], 1.1)
            ax.plot(grid, chin.predict(grid, laws.tokens_for_budget(p["C"], grid)), color=color, lw=1,
                    label=_labelled_once("E + A/N^α + B/D^β at D = C/(6N)", i))
            N_opt, D_opt = laws.chinchilla_optimal(p["C"], **chin.params)
            ax.plot(N_opt, chin.predict(N_opt, D_opt), "*", ms=11, color=color, mec="k",
                    label=_labelled_once("fitted optimum at each C (eq. 4)", i))
    _loglog(ax, _n_label(result), _loss_label(result))
    _colorbar(fig, ax, norm, _x_label(result, "C"))
    if chin:
        ax.set_title(textwrap.fill(f"(a) IsoFLOP profiles, L = E + A/N^α + B/D^β (Chinchilla eq. 2): "
                                   f"{_constants(chin, ['E', 'alpha', 'beta'])}", 75), fontsize=9)
        return
    if "L_N" in result.fits:
        N, loss = result.data["L_N"]["N"], result.data["L_N"]["loss"]
        ax.plot(N, loss, "s", ms=4, color="k", label="lowest loss per N (any budget)")
        _draw_power_fits(ax, result, "L_N", N, "N")
    ax.set_title(textwrap.fill("(a) IsoFLOP profiles, loss at each budget C (no Chinchilla fit: report.md, Not "
                               "fitted)" + (", and L(N), eq. 1.1" if "L_N" in result.fits else ""), 75), fontsize=9)


def _dash_frontier(fig, ax, result):
    curves = _learning_curves(result)
    if not curves:
        raise MissingData("no learning curves: needs finished runs with logged losses")
    law = report.compute_law(result)
    norm, color = _size_colors([N for N, _ in curves])
    for N, curve in curves:
        ax.plot(curve["flops"], curve["loss"], color=color(N), lw=0.8, alpha=0.8)
    if law in result.fits:
        _draw_power_fits(ax, result, law, result.data["frontier"]["C"], "C")
    _loglog(ax, _x_label(result, report.frontier_compute(result)), _loss_label(result))
    _colorbar(fig, ax, norm, _n_label(result))
    form = laws.LAW_INFO[law]
    constants = _constants(result.fits[law], ["alpha_C", "C_c"]) if law in result.fits else "not fitted"
    ax.set_title(textwrap.fill(f"(b) learning curves and their frontier, {form[0]} ({form[1]}): {constants}", 75),
                 fontsize=9)


def _dash_held_out(fig, ax, result):
    checks = [(key, f.extra["held_out"]) for key, f in result.fits.items()
              if report.predicted(f) == "loss" and "observed" in f.extra.get("held_out", {})]
    if not checks:
        raise MissingData("no held-out predictions: needs a loss law fitted on 3+ sizes with a larger one to predict")
    for i, (key, check) in enumerate(checks):
        ax.plot(check["observed"], check["predicted"], HELD_OUT_MARKERS[i % len(HELD_OUT_MARKERS)], ms=5,
                color=f"C{i}", alpha=0.8, label=f"{key}: mean |error| {100 * check['mean_abs_rel_error']:.2g}%")
    values = np.concatenate([check[k] for _, check in checks for k in ("observed", "predicted")])
    line = np.array([values.min(), values.max()]) * [0.98, 1.02]
    within = report.HOLDS_WITHIN["loss"]
    ax.plot(line, line, "k-", lw=0.8, label="y = x")
    ax.fill_between(line, line * (1 - within), line * (1 + within), color="0.5", alpha=0.2, lw=0,
                    label=f"within {within:.0%}: the held-out part of 'holds'")
    ax.set_xlabel(f"measured {_loss_label(result)}")
    ax.set_ylabel(f"predicted {_loss_label(result)}")
    ax.grid(True, alpha=0.3)
    errors = np.concatenate([np.abs(check["rel_error"]) for _, check in checks])
    ax.set_title(f"(c) held-out largest runs, predicted by laws fitted without them: mean |error| "
                 f"{100 * errors.mean():.2g}%", fontsize=9)


def _dash_n_opt(fig, ax, result):
    if "N_opt" in result.fits:
        f, compute, key = result.fits["N_opt"], "C", "N_opt"
        minima = result.data["isoflop"]["minima"]
        C, N = np.array([m["C"] for m in minima]), np.array([m["N_opt"] for m in minima])
        log_sd = np.nan_to_num([m.get("log_sd", np.nan) for m in minima])  # over the run-level bootstrap
        spread = np.exp(normal.ppf(0.5 + CI_LEVEL / 2) * log_sd)
        ax.errorbar(C, N, yerr=[N - N / spread, N * spread - N], fmt="o", color="C0", capsize=3,
                    label=f"IsoFLOP minima with {CI_LEVEL:.0%} CI")
        title = f"(d) N_opt ∝ C^a, Chinchilla approach 2: {_constant(f, 'exponent')}"
    elif "N_opt_frontier" in result.fits:
        f, compute, key = result.fits["N_opt_frontier"], report.frontier_compute(result), "N_opt_frontier"
        C, N = result.data["frontier"]["C"], result.data["frontier"]["N"]
        ax.plot(C, N, "o", ms=3, color="C0", label="N of each frontier point")
        title = f"(d) N on the compute frontier ∝ {compute}^a, Kaplan eq. 1.7: {_constant(f, 'exponent')}"
    else:
        raise MissingData("no IsoFLOP profiles in this sweep with a bracketed minimum, and fewer than 3 sizes on "
                          "the compute frontier: needs an IsoFLOP sweep (sizes on both sides of each budget's "
                          "optimum)")
    grid = _span(C)
    _draw_allocation(ax, f, grid, "C0")
    _draw_reference_slopes(ax, key, f, grid, compute)
    _loglog(ax, _x_label(result, compute), f"{'N_opt' if key == 'N_opt' else 'N'}, {report.unit_words(result)['N']}")
    ax.set_title(title, fontsize=9)


DASHBOARD_PANELS = (("(a) loss against N", _dash_loss_vs_n), ("(b) loss against compute", _dash_frontier),
                    ("(c) held-out predictions", _dash_held_out), ("(d) N_opt against compute", _dash_n_opt))


FIGURES = (dashboard, fig1_loss_vs_compute_data_size, fig2_learning_curves, fig4_loss_vs_n_d_and_n_s, fig5_shape,
           fig6_embedding_parameters, fig9_overfitting, fig10_critical_batch, fig11_min_steps_and_examples,
           fig14_optimal_size, isoflop_profiles, chinchilla_approach2, residuals)
POINTS_FIGURES = (dashboard, isoflop_profiles, chinchilla_approach2, residuals)  # figures that external points support


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
