"""Figures of analysis.hparams: loss against LR in each cell, and the optima against N, D and C with the
fitted laws' 95% bands beside the published ones (Step Law, Li et al. 2025; DeepSeek LLM sec. 3.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps

from scaling_sweep.analysis.figures import _figure, _save
from scaling_sweep.analysis.hparams import HparamAnalysis
from scaling_sweep.core.hparam_laws import HPARAM_LAWS, law_value

MAX_CELL_PANELS = 12  # loss-against-LR panels drawn, spread over the cells


def _band(ax, f, N, D, x, color, label):
    """The law's value along (N, D) against x, with its bootstrap 95% band."""
    ax.plot(x, f.predict(N, D), color=color, label=label)
    if f.samples:
        lo, hi = np.nanpercentile(f.predict_samples(N, D), [2.5, 97.5], axis=0)
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


def loss_vs_lr(result: HparamAnalysis, out_dir: Path) -> str:
    cells = result.cells[:: max(1, int(np.ceil(len(result.cells) / MAX_CELL_PANELS)))]
    columns = min(4, len(cells))
    rows = int(np.ceil(len(cells) / columns))
    fig, axes = _figure(rows * columns, result, f"loss against peak LR per cell (N, D) and batch "
                                                f"({len(cells)} of {len(result.cells)} cells)", rows=rows)
    colors = colormaps["viridis"]
    for ax, c in zip(axes, cells):
        lr, batch, loss = (result.table[k][c.rows] for k in ("lr", "batch", result.loss_column))
        batches = np.unique(batch)
        grid = np.geomspace(lr.min(), lr.max(), 100)
        for j, b in enumerate(batches):
            color = colors(j / max(1, len(batches) - 1))
            at = batch == b
            ax.plot(lr[at], loss[at], "o", color=color, ms=4, label=f"batch {b:.4g}")
            ax.plot(grid, c.surface_loss(grid, np.full_like(grid, b)), color=color, lw=1)
        ax.axvline(c.lr, color="k", ls="--", lw=1, label=f"lr* {c.lr:.3g}" + (" (edge)" if c.on_edge["lr"] else ""))
        ax.axhspan(c.best_loss, c.best_loss * 1.0025, color="orange", alpha=0.3, label="within 0.25% of best")
        ax.set_xscale("log")
        ax.set_ylim(c.best_loss * 0.995, min(loss.max(), c.best_loss * 1.06))
        ax.set_title(f"N={c.N:.3g}, D={c.D:.3g}", fontsize=9)
        ax.set_xlabel("peak LR")
        ax.set_ylabel(f"{result.loss_column} (nats/token)")
        ax.legend(fontsize=6)
    for ax in axes[len(cells):]:
        ax.set_visible(False)
    return _save(fig, out_dir, "hparams_loss_vs_lr")


def _optima_points(ax, result, target, x_of, color_of=None):
    for c in result.cells:
        samples = np.exp(c.samples[target][np.isfinite(c.samples[target])])
        if not len(samples) or not np.isfinite(getattr(c, target)):
            continue
        value = getattr(c, target)
        lo, hi = np.percentile(samples, [2.5, 97.5])
        ax.errorbar(x_of(c), value, yerr=[[max(value - lo, 0)], [max(hi - value, 0)]], fmt="o" if
                    c.usable(target) else "x", color=color_of(c) if color_of else "k", ms=4, capsize=2)


def optima(result: HparamAnalysis, out_dir: Path) -> str:
    fig, (ax_n, ax_d, ax_c, ax_b) = _figure(4, result, "optimal LR and batch with the fitted laws (95% bands) "
                                                 "and the published ones (dashed)")
    ratios = np.unique(np.round(np.log([c.D / c.N for c in result.cells]), 1)) if result.cells else []
    drawn = np.unique(ratios[[0, len(ratios) // 2, -1]]) if len(ratios) else ratios  # lines at 3 D/N at most
    colors = colormaps["plasma"]

    def color_at(log_ratio):
        return colors(float(np.searchsorted(ratios, log_ratio) / max(1, len(ratios))))

    def ratio_color(c):
        return color_at(np.round(np.log(c.D / c.N), 1))

    N = np.geomspace(min(c.N for c in result.cells) / 1.5, max(c.N for c in result.cells) * 1.5, 50)
    _optima_points(ax_n, result, "lr", lambda c: c.N, ratio_color)
    for r in drawn:
        color = color_at(r)
        if "eta_ND" in result.fits:
            _band(ax_n, result.fits["eta_ND"], N, N * np.exp(r), N, color, f"eta*(N, D) at D/N = {np.exp(r):.2g}")
        ax_n.plot(N, law_value("eta_ND", HPARAM_LAWS["eta_ND"].published, N, N * np.exp(r)), "--", color=color,
                  lw=1, label="Step Law published (dashed)" if r == drawn[0] else None)
    ax_n.set(xscale="log", yscale="log", xlabel="N (as the grid counts it)", ylabel="optimal peak LR")

    D = np.geomspace(min(c.D for c in result.cells) / 1.5, max(c.D for c in result.cells) * 1.5, 50)
    _optima_points(ax_d, result, "batch", lambda c: c.D)
    if "B_D" in result.fits:
        _band(ax_d, result.fits["B_D"], D, D, D, "C0", "B*(D) fitted")
    _published_batch(ax_d, result, "B_D", D, D, D)
    ax_d.set(xscale="log", yscale="log", xlabel="D (training tokens)", ylabel=f"optimal batch ({result.batch_unit})")

    C = np.geomspace(min(6 * c.N * c.D for c in result.cells) / 2, max(6 * c.N * c.D for c in result.cells) * 2, 50)
    ND = (np.sqrt(C / 6), np.sqrt(C / 6))  # any (N, D) with 6ND = C: these laws depend on C alone
    _optima_points(ax_c, result, "lr", lambda c: 6 * c.N * c.D, lambda c: "C3")
    if "eta_C" in result.fits:
        _band(ax_c, result.fits["eta_C"], *ND, C, "C3", "eta*(C) fitted")
    ax_c.plot(C, law_value("eta_C", HPARAM_LAWS["eta_C"].published, *ND), "--", color="C3", lw=1,
              label="DeepSeek eta_opt = 0.3118 C^-0.125")
    ax_c.set(xscale="log", yscale="log", xlabel="C = 6ND (FLOPs)", ylabel="optimal peak LR")
    _optima_points(ax_b, result, "batch", lambda c: 6 * c.N * c.D, lambda c: "C0")
    if "B_C" in result.fits:
        _band(ax_b, result.fits["B_C"], *ND, C, "C0", "B*(C) fitted")
    _published_batch(ax_b, result, "B_C", *ND, C)
    ax_b.set(xscale="log", yscale="log", xlabel="C = 6ND (FLOPs)", ylabel=f"optimal batch ({result.batch_unit})")
    for ax in (ax_n, ax_d, ax_c, ax_b):
        ax.legend(fontsize=6)
    return _save(fig, out_dir, "hparams_optima")


def _published_batch(ax, result, key, N, D, x):
    """The published batch law, in tokens: drawn only where the grid's batch is in tokens too."""
    if result.batch_unit == "tokens":
        ax.plot(x, law_value(key, HPARAM_LAWS[key].published, N, D), "--", color="C0", lw=1,
                label=f"{key} published ({HPARAM_LAWS[key].reference.split(',')[0]})")


def draw_all(result: HparamAnalysis, out_dir: Path) -> list[str]:
    if not result.cells:
        return []
    return [loss_vs_lr(result, out_dir), optima(result, out_dir)]
