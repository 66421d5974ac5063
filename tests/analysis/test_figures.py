"""The figures of hand-made analyses and analysed synthetic sweeps: what each panel plots, and when one is skipped."""

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from synthetic_sweep import TRUTH

from scaling_sweep.analysis import figures, fit
from scaling_sweep.analysis.analyze import Analysis
from scaling_sweep.core import laws

SETTING = {"tokenizer": "byte", "n_ctx": 128}
B_CRIT = {"B_star": 1.6e5, "alpha_B": 0.3}


@pytest.fixture
def saved(monkeypatch, tmp_path):
    """Draws a figure and returns the matplotlib Figure it would have saved."""
    figs = []
    monkeypatch.setattr(figures, "_save", lambda fig, out_dir, stem: figs.append(fig) or stem)

    def draw(figure, result):
        figure(result, tmp_path)
        return figs[-1]

    return draw


def data_axes(fig):
    """The figure's panels, without its colorbars."""
    return [ax for ax in fig.axes if ax.get_xlabel() and ax.get_label() != "<colorbar>"]


def legend_labels(ax):
    return ax.get_legend_handles_labels()[1]


def frontier_analysis(with_b_crit: bool) -> Analysis:
    """Frontier points of 8 runs, N ∝ C^0.7, and the allocation laws on them (with B_crit: S_min and B too)."""
    rng = np.random.default_rng(0)
    C = np.geomspace(1e12, 1e16, 40)
    run = np.arange(40) // 5  # 8 runs: enough for an interval of 2 constants (fit.MIN_SPARE)
    N = 1e6 * (C / laws.PF_DAY) ** 0.7 * np.exp(0.05 * rng.standard_normal(40))
    B = np.full(40, 2048.0) * (C / C[0]) ** 0.2
    front = {"C": C, "loss": 3.0 * (C / C[0]) ** -0.05, "N": N, "run": run, "S": C / (6 * N * B), "B": B}
    result = Analysis("hand", SETTING, data={"frontier": front})
    if with_b_crit:
        result.fits["B_crit"] = fit.Fit("B_crit", dict(B_CRIT), {}, 20)
    for key, column in figures.FRONTIER_PANELS[: 3 if with_b_crit else 1]:
        result.attempt(key, lambda: fit.fit_allocation(C, front[column], key, n_boot=200, groups=run),
                       data=([C], front[column]))
    return result


def test_fig14_without_b_crit_is_against_the_runs_own_compute(saved):
    fig = saved(figures.fig14_optimal_size, frontier_analysis(with_b_crit=False))
    (ax,) = data_axes(fig)
    assert ax.get_xlabel() == "C, FLOPs (6N per token)" and ax.get_ylabel() == "N, non-embedding parameters"
    assert "fixed batch" in ax.get_title()
    assert {"Kaplan: ∝ C^0.73", "Chinchilla: ∝ C^0.5"} <= set(legend_labels(ax))


def test_fig14_with_b_crit_has_n_s_min_and_b_against_c_min(saved):
    fig = saved(figures.fig14_optimal_size, frontier_analysis(with_b_crit=True))
    axes = data_axes(fig)
    assert [ax.get_ylabel() for ax in axes] == ["N, non-embedding parameters", "S_min, optimizer steps",
                                               "B_crit, tokens per batch"]
    assert all(ax.get_xlabel().startswith("C_min, FLOPs (6N per token)") for ax in axes)
    assert "Kaplan: ∝ C_min^0.03" in legend_labels(axes[1]) and "Kaplan: ∝ C_min^0.24" in legend_labels(axes[2])
    assert all(ax.collections for ax in axes)  # each fit's bootstrap band


def approach_2_analysis() -> Analysis:
    rng = np.random.default_rng(1)
    C = np.geomspace(1e18, 1e21, 7)  # 7 budgets: enough for an interval of 2 constants (fit.MIN_SPARE)
    N_opt = 0.1 * C**0.5 * np.exp(0.03 * rng.standard_normal(7))
    minima = [{"C": c, "N_opt": n, "D_opt": c / (6 * n)} for c, n in zip(C, N_opt)]
    result = Analysis("hand", SETTING, data={"isoflop": {"profiles": [], "minima": minima, "source": "hand"}})
    for key in ("N_opt", "D_opt"):
        values = np.array([m[key] for m in minima])
        result.attempt(key, lambda: fit.fit_allocation(C, values, key, n_boot=200), data=([C], values))
    return result


def test_approach_2_panels_extrapolate_with_a_band_and_the_published_slope(saved):
    result = approach_2_analysis()
    axes = data_axes(saved(figures.chinchilla_approach2, result))
    largest = result.data["isoflop"]["minima"][-1]["C"]
    assert [ax.get_ylabel() for ax in axes] == ["N_opt, non-embedding parameters", "D_opt, training tokens"]
    for ax in axes:
        assert ax.get_xlim()[1] >= figures.EXTRAPOLATE * largest
        assert ax.collections and "Chinchilla: ∝ C^0.5" in legend_labels(ax)
    with pytest.raises(figures.MissingData, match="IsoFLOP profiles"):
        figures.chinchilla_approach2(replace(result, fits={}), None)


def data_sweep_analysis() -> Analysis:
    """Early-stopped losses of eq. 1.5 at 3 sizes and 2 dataset sizes, plus full-data runs, and the L(N, D) fit."""
    N = np.repeat([1e5, 3e5, 1e6], 3)
    D = np.tile([1e5, 1e6, 1e9], 3)
    loss = laws.loss_nd(N, D, **TRUTH["L_ND"])
    final = {"N": N, "D": D, "loss": loss, "data_limited": D < 1e9}
    full = {k: v[D == 1e9] for k, v in final.items()}
    result = Analysis("hand", SETTING, data={"final": final, "size_runs": full})
    result.attempt("L_ND", lambda: fit.fit_kaplan_nd(N, D, loss, n_boot=0), data=([N, D], loss))
    return result


def test_fig9_left_draws_loss_against_n_for_each_data_size(saved):
    result = data_sweep_analysis()
    left, right = data_axes(saved(figures.fig9_overfitting, result))
    assert left.get_xlabel() == "N, non-embedding parameters" and "dataset size D" in left.get_title()
    curves = [line for line in left.get_lines() if len(line.get_xdata()) > 10]
    assert len(curves) == 3  # D = 1e5, 1e6 and D → ∞
    f = result.fits["L_ND"]
    grid = curves[0].get_xdata()
    assert np.allclose(curves[0].get_ydata(), f.predict(grid, np.full_like(grid, 1e5)))
    assert right.get_xlabel() == "N^(α_N/α_D) / D"
    with pytest.raises(figures.MissingData, match="a data sweep"):
        figures.fig9_overfitting(replace(result, fits={}), None)


def test_residuals_of_loss_and_allocation_laws_are_panels_of_their_own(saved):
    result = frontier_analysis(with_b_crit=True)
    N = np.geomspace(1e5, 1e7, 6)
    loss = laws.loss_n(N, 1e10, 0.1) * np.exp(0.01 * np.random.default_rng(2).standard_normal(6))
    result.attempt("L_N", lambda: fit.fit_power_law(N, loss, "N", n_boot=0), data=([N], loss),
                   rolling=partial(fit.fit_power_law, var="N"))
    axes = data_axes(saved(figures.residuals, result))
    assert [ax.get_xlabel().split(",")[0] for ax in axes] == ["C_min", "N"]
    assert axes[1].get_ylabel() == "ln(observed / fitted) of loss"
    (points,) = [line for line in axes[1].get_lines() if line.get_label().startswith("L_N")]
    assert np.allclose(points.get_ydata(), result.fits["L_N"].extra["goodness"]["residuals"])
    assert len([line for line in axes[0].get_lines() if "RMSE" in line.get_label()]) == 3


def dashboard_panels(fig):
    """The dashboard's four panels, (a) to (d), without their colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def drawn_lines(ax):
    return [line for line in ax.get_lines() if len(line.get_xdata())]


def test_dashboard_panels_without_data_say_what_they_need(saved):
    axes = dashboard_panels(saved(figures.dashboard, Analysis("empty", SETTING)))
    assert [ax.get_title()[:3] for ax in axes] == ["(a)", "(b)", "(c)", "(d)"]
    assert all(not ax.get_lines() and ax.texts for ax in axes)
    assert "no IsoFLOP profiles in this sweep" in axes[0].texts[0].get_text()


def test_dashboard_without_isoflop_minima_draws_the_frontiers_n(saved):
    result = frontier_analysis(with_b_crit=False)
    d = dashboard_panels(saved(figures.dashboard, result))[3]
    assert np.allclose(drawn_lines(d)[0].get_ydata(), result.data["frontier"]["N"])
    assert "compute frontier" in d.get_title() and d.get_ylabel() == "N, non-embedding parameters"
    assert {"Kaplan: ∝ C^0.73", "Chinchilla: ∝ C^0.5"} <= set(legend_labels(d))


def test_residuals_without_a_finite_residual_are_skipped_with_the_reason(tmp_path):
    """Runs of one step all sit at the initial loss: L(N)'s line is flat, its N_c past float range and
    every residual not finite, which a log axis cannot draw (matplotlib: 'Data cannot be log-scaled')."""
    N = np.geomspace(1e4, 1e6, 4)
    flat = fit.Fit("L_N", {"N_c": np.inf, "alpha_N": 1e-12}, {}, 4)
    result = Analysis("one_step", SETTING)
    result.attempt("L_N", lambda: flat, data=([N], np.full(4, np.log(257))))
    assert not np.isfinite(result.fits["L_N"].extra["goodness"]["residuals"]).any()
    with pytest.raises(figures.MissingData, match="no finite residual: the fits of L_N"):
        figures.residuals(result, tmp_path)
