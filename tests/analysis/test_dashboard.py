"""The dashboard (figures.dashboard) and report.md's "What was reproduced" on analysed synthetic sweeps: an
IsoFLOP sweep of Chinchilla's law and a size sweep of Kaplan's, each also with its largest model bent off
the law. Each analysis takes about 30 s."""

import numpy as np
import pytest
from synthetic_sweep import run_specs, write_isoflop_sweep, write_synthetic_sweep

from scaling_sweep.analysis import analyze, figures, report
from scaling_sweep.core import laws

pytestmark = pytest.mark.slow

BENT = 1.05  # every loss of the largest model this much above the law: the law no longer holds


def size_specs(largest_factor=1.0):
    """The size runs of the synthetic sweep, the largest model's losses scaled by largest_factor."""
    specs = [s for s in run_specs() if s[0].startswith("size_")]
    return specs[:-1] + [specs[-1][:-1] + (largest_factor,)]


@pytest.fixture(scope="session")
def isoflop_analysis(tmp_path_factory):
    return analyze.analyze_sweep(write_isoflop_sweep(tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="session")
def bent_isoflop_analysis(tmp_path_factory):
    return analyze.analyze_sweep(write_isoflop_sweep(tmp_path_factory.mktemp("runs"), largest_factor=BENT))


@pytest.fixture(scope="session")
def size_analysis(tmp_path_factory):
    return analyze.analyze_sweep(write_synthetic_sweep(tmp_path_factory.mktemp("runs"), specs=size_specs()))


@pytest.fixture(scope="session")
def bent_size_analysis(tmp_path_factory):
    return analyze.analyze_sweep(write_synthetic_sweep(tmp_path_factory.mktemp("runs"), specs=size_specs(BENT)))


@pytest.fixture
def saved(monkeypatch):
    """Draws the dashboard and returns the matplotlib Figure it would have saved."""
    figs = []
    monkeypatch.setattr(figures, "_save", lambda fig, out_dir, stem: figs.append(fig) or stem)

    def draw(result):
        figures.dashboard(result, None)
        return figs[-1]

    return draw


def dashboard_panels(fig):
    """The dashboard's four panels, (a) to (d), without their colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def drawn_lines(ax):
    return [line for line in ax.get_lines() if len(line.get_xdata())]


def legend_labels(ax):
    return ax.get_legend_handles_labels()[1]


def assert_held_out_panel(ax, result):
    """Panel (c): each loss law's held-out points, predicted against measured, and y = x."""
    checks = {key: f.extra["held_out"] for key, f in result.fits.items()
              if "observed" in f.extra.get("held_out", {}) and report.predicted(f) == "loss"}
    assert checks
    for key, check in checks.items():
        (line,) = [line for line in ax.get_lines() if line.get_label().startswith(f"{key}: mean |error|")]
        assert np.allclose(line.get_xdata(), check["observed"]) and np.allclose(line.get_ydata(), check["predicted"])
    assert "y = x" in legend_labels(ax) and ax.get_xlabel() == "measured loss (nats/token, byte tokenizer)"


def test_dashboard_of_an_isoflop_sweep(saved, isoflop_analysis):
    result = isoflop_analysis
    a, b, c, d = dashboard_panels(saved(result))
    profiles = result.data["isoflop"]["profiles"]
    chin = result.fits["chinchilla"]
    points_a = [line for line in a.get_lines() if line.get_marker() == "o"]
    assert [len(line.get_xdata()) for line in points_a] == [len(p["N"]) for p in profiles]
    curves = [line for line in a.get_lines() if len(line.get_xdata()) > 10]
    grid = curves[0].get_xdata()
    assert len(curves) == len(profiles)
    assert np.allclose(curves[0].get_ydata(), chin.predict(grid, laws.tokens_for_budget(profiles[0]["C"], grid)))
    assert len([line for line in a.get_lines() if line.get_marker() == "*"]) == len(profiles)  # fitted optima
    assert "Chinchilla eq. 2" in a.get_title() and "alpha=" in a.get_title()
    assert a.get_xlabel() == "N, non-embedding parameters"
    assert len(drawn_lines(b)) >= len(result.runs) + 1 and b.get_xlabel() == "C, FLOPs (6N per token)"
    assert_held_out_panel(c, result)
    (minima,) = d.containers  # the IsoFLOP minima with their error bars
    assert np.allclose(minima.lines[0].get_ydata(), [m["N_opt"] for m in result.data["isoflop"]["minima"]])
    assert {"Kaplan: ∝ C^0.73", "Chinchilla: ∝ C^0.5"} <= set(legend_labels(d))
    assert "approach 2: exponent=" in d.get_title()


def test_dashboard_is_drawn_first_and_written(isoflop_analysis, tmp_path):
    drawn, _ = figures.draw_all(isoflop_analysis, tmp_path)
    assert drawn[0] == "dashboard" and (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_dashboard_of_a_size_sweep(saved, size_analysis):
    result = size_analysis
    a, b, c, d = dashboard_panels(saved(result))
    (points_a,) = [line for line in a.get_lines() if line.get_marker() == "o"]
    assert np.allclose(points_a.get_ydata(), result.data["L_N"]["loss"]) and "L(N)" in a.get_title()
    assert len(drawn_lines(b)) >= len(result.runs) + 1
    assert_held_out_panel(c, result)
    # no budgets: approach 2's minima come from the learning curves read at fixed compute
    (minima,) = d.containers
    assert np.allclose(minima.lines[0].get_ydata(), [m["N_opt"] for m in result.data["isoflop"]["minima"]])


def reproduced_line(result, key):
    return next(line for line in report.reproduced_section(result, []) if line.startswith(f"- **{key}**"))


def test_what_was_reproduced_heads_the_report(isoflop_analysis):
    result = isoflop_analysis
    text = report.markdown(result, ["dashboard", "isoflop_profiles"], [])
    assert text.index("## What was reproduced") < text.index("## Fitted constants")
    assert text.index("figures/dashboard.png") < text.index("figures/isoflop_profiles.png")
    assert all(f"- **{key}** (" in text for key in result.fits)
    line = reproduced_line(result, "chinchilla")
    alpha = result.by_convention[report.HOFFMANN_CONVENTION].fits["chinchilla"].params["alpha"]  # as Hoffmann counted
    assert f"alpha = {alpha:.3g} [" in line and f"Chinchilla's {laws.CHINCHILLA['alpha']:.4g}" in line
    assert f"Chinchilla's {laws.CHINCHILLA_EXPONENTS['N_opt']:.4g}" in reproduced_line(result, "N_opt")
    assert "nats per byte (byte tokenizer)" in text
    assert f"to {max(r.summary.N for r in result.runs):.2g} non-embedding parameters" in text


@pytest.mark.parametrize("sweep, key", [("isoflop", "chinchilla"), ("size", "L_NS")])
def test_the_verdict_flips_when_the_largest_model_leaves_the_law(request, sweep, key):
    follows = request.getfixturevalue(f"{sweep}_analysis")
    bent = request.getfixturevalue(f"bent_{sweep}_analysis")
    assert "**holds**" in reproduced_line(follows, key)
    assert "**does not hold** (held-out error" in reproduced_line(bent, key)
