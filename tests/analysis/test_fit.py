"""Fitters: recovery of known constants from synthetic data, and Epoch's Chinchilla refit."""

import csv
import time

import numpy as np
import pytest
from conftest import REPO

from scaling_sweep.analysis import fit
from scaling_sweep.core import laws

NOISE = 0.01  # multiplicative, as log-normal noise on the loss (or steps)
SEEDS = range(20)
# shared/ sits beside the repo root in CI; beside the worktrees' folder on a dev machine
REFERENCE = next((p for p in (REPO.parent / "shared" / "reference", REPO.parent.parent / "shared" / "reference")
                  if p.is_dir()), REPO.parent / "shared" / "reference")


def noisy(values, rng):
    return values * np.exp(NOISE * rng.standard_normal(np.shape(values)))


def grid(a, b):
    return [x.ravel() for x in np.meshgrid(a, b)]


def power_law(rng):
    N = np.geomspace(1e5, 1e9, 9)
    truth = laws.KAPLAN["L_N"]
    return fit.fit_power_law, (N, noisy(laws.loss_n(N, **truth), rng)), truth


def power_law_with_floor(rng):
    N = np.geomspace(1e5, 1e9, 9)
    truth = {"N_c": 1e13, "alpha_N": 0.15, "L_inf": 1.5}

    def fitter(*args, **kw):
        return fit.fit_power_law(*args, floor=True, **kw)

    return fitter, (N, noisy(laws.loss_n(N, **truth), rng)), truth


def allocation(rng):
    C = np.geomspace(1e15, 1e21, 7)
    truth = laws.KAPLAN["N_opt"]
    return fit.fit_allocation, (C, noisy(laws.kaplan_optimal(C, **truth)[0], rng)), truth


def chinchilla(rng):
    C = np.repeat(np.geomspace(1e16, 1e20, 5), 8)
    N = np.tile(np.geomspace(1e6, 1e9, 8), 5)
    D = C / (6 * N)
    truth = laws.EPOCH_REPLICATION

    def fitter(*args, **kw):  # every 15th start of the grid: recovery, not the grid, is tested
        return fit.fit_chinchilla(*args, starts=fit.CHINCHILLA_GRID[::15], **kw)

    return fitter, (N, D, noisy(laws.chinchilla_loss(N, D, **truth), rng)), truth


def kaplan_nd(rng):
    N, D = grid(np.geomspace(1e5, 1e8, 6), np.geomspace(1e7, 1e10, 6))
    truth = laws.KAPLAN["L_ND_fit"]
    return fit.fit_kaplan_nd, (N, D, noisy(laws.loss_nd(N, D, **truth), rng)), truth


def kaplan_ns(rng):
    N, S = grid(np.geomspace(1e5, 1e8, 6), np.geomspace(1e2, 1e5, 8))
    truth = laws.KAPLAN["L_NS"]
    return fit.fit_kaplan_ns, (N, S, noisy(laws.loss_ns(N, S, **truth), rng)), truth


def critical_batch(rng):
    L, B = grid(np.array([4.0, 3.5, 3.0, 2.6]), np.geomspace(2**12, 2**20, 7))
    truth = laws.KAPLAN["B_crit"]
    S_min = 1e3 * (4 / L) ** 6
    E_min = S_min * laws.critical_batch(L, **truth)
    return fit.fit_critical_batch, (L, B, noisy(laws.steps_at_batch(B, S_min, E_min), rng)), truth


@pytest.mark.parametrize("case", [power_law, power_law_with_floor, allocation, chinchilla,
                                  kaplan_nd, kaplan_ns, critical_batch])
@pytest.mark.slow
def test_each_constant_within_its_ci_in_90_percent_of_seeds(case):
    covered = {}
    for seed in SEEDS:
        fitter, data, truth = case(np.random.default_rng(seed))
        result = fitter(*data, n_boot=400, seed=seed)
        for name, value in truth.items():
            lo, hi = result.ci[name]
            covered.setdefault(name, []).append(lo <= value <= hi)
    coverage = {name: np.mean(hits) for name, hits in covered.items()}
    assert min(coverage.values()) >= 0.9, coverage


def test_line_fit_is_exact_without_noise():
    C = np.geomspace(1e15, 1e21, 5)
    result = fit.fit_allocation(C, 2e9 * (C / laws.PF_DAY) ** 0.5, n_boot=0)
    assert result.params["N_coef"] == pytest.approx(2e9)
    assert result.params["exponent"] == pytest.approx(0.5)


def test_too_few_points_is_a_clear_error():
    with pytest.raises(fit.FitError, match="2 points, need at least 3"):
        fit.fit_power_law([1e6, 1e7], [3.0, 2.8])


def test_a_floor_fitted_to_zero_is_flagged():
    N = np.geomspace(1e5, 1e9, 8)
    without_floor = fit.fit_power_law(N, laws.loss_n(N, N_c=8.8e13, alpha_N=0.076), floor=True, n_boot=0)
    assert "L_inf -> 0" in without_floor.extra["warning"]
    noise = np.exp(np.random.default_rng(0).normal(0, 0.005, len(N)))
    with_floor = fit.fit_power_law(N, (laws.loss_n(N, N_c=8.8e13, alpha_N=0.076) + 1.5) * noise, floor=True, n_boot=0)
    assert "warning" not in with_floor.extra


def test_held_out_check_predicts_the_largest_model():
    N = np.geomspace(1e5, 1e9, 9)
    loss = laws.loss_n(N, **laws.KAPLAN["L_N"])
    check = fit.held_out_check(fit.fit_power_law, [N], loss)
    assert check["held_out_from"] == pytest.approx(1e9)
    assert check["n_held_out"] == 1 and check["n_fit"] == 8
    assert check["max_abs_rel_error"] < 1e-9


def test_lbfgs_batch_solves_independent_quadratics():
    centres = np.array([[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0]])

    def fg(x, rows):
        d = x - centres[rows]
        return (d * d * [1.0, 10.0]).sum(1), 2 * d * [1.0, 10.0]

    x, f = fit.lbfgs_batch(fg, np.zeros_like(centres))
    np.testing.assert_allclose(x, centres, atol=1e-6)


def read_reference_points():
    path = REFERENCE / "chinchilla_svg_extracted.csv"
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (shared/ beside the repo root)")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    N = np.array([float(r["Model Size"]) for r in rows])
    C = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.argsort(loss)[:-5]  # Epoch drops the 5 highest-loss points
    return N[keep], C[keep] / (6 * N[keep]), loss[keep]


@pytest.mark.slow
def test_chinchilla_refit_matches_epoch_replication():
    N, D, loss = read_reference_points()
    start = time.perf_counter()
    result = fit.fit_chinchilla(N, D, loss)
    elapsed = time.perf_counter() - start
    expected = {"E": 1.817, "A": 478, "B": 2143, "alpha": 0.3473, "beta": 0.3672}
    for name, value in expected.items():
        assert result.params[name] == pytest.approx(value, rel=0.01), name
        lo, hi = result.ci[name]
        assert lo < result.params[name] < hi
    assert elapsed < 10, f"{elapsed:.1f} s"
