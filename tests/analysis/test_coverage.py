"""Coverage of the 95% intervals on simulated sweeps with known constants (tests/simulated_sweeps.py),
and the accuracy of approach 2's default minimum on both kinds of IsoFLOP profile. The measured
table is in docs/intervals.md; `python tests/simulated_sweeps.py 200 200` prints it again."""

import os

import numpy as np
import pytest
import simulated_sweeps as sim

from scaling_sweep.analysis import analyze

SEEDS = range(200)
N_BOOT = 200  # inside the harness only: 200 and 2000 resamples cover alike (docs/intervals.md)
# The Huber/L-BFGS fits refit every resample: 200 sweeps take 5-15 minutes a case on 2 cores, too long
# for the suite; their measured coverage is in docs/intervals.md, and this runs them again.
LONG = os.environ.get("SCALING_SWEEP_LONG_COVERAGE") == "1"
HUBER_CASES = {"approach 3, wsd branches", "approach 3, table of points", "B_crit, batch sweep runs",
               "L(N, D), table of runs", "L(N, S), learning curves"}


def assert_covers(table, low=0.90, high=0.98):
    for (law, constant), row in table.items():
        assert row["with_interval"] >= 0.5 * row["sweeps"], (law, constant, row)
        assert low <= row["coverage"] <= high, (law, constant, row)


# measured outside 90-98% (docs/intervals.md, "What does not hold yet")
NOT_YET = {"compute frontier, runs": "N on the frontier: its coefficient covers 87.5% of these 200 sweeps (90.6% "
                                     "of 1,000, where L(C)'s alpha_C covers 89.5%)",
           "approach 3, wsd branches": "E and B cover 99%", "B_crit, batch sweep runs":
               "alpha_B covers 98.5% of these 200 sweeps (97.3% of 1,000)",
           "L(N, S), learning curves": "S_c and alpha_S cover 98.4% and 99.2% (98.4% and 99.7% of 1,000)"}


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(reason=NOT_YET[c])) if c in NOT_YET else c
                                  for c in sim.CASES])
def test_every_95_percent_interval_covers_90_to_98_percent_of_200_sweeps(case):
    if case in HUBER_CASES and not LONG:
        pytest.skip("200 sweeps of Huber fits take 5-15 minutes: SCALING_SWEEP_LONG_COVERAGE=1 runs them")
    assert_covers(sim.coverage(sim.CASES[case], SEEDS, N_BOOT))


def test_approach_2_intervals_cover_on_a_few_wsd_sweeps():
    """The quick loop's version: 40 wsd sweeps, fewer resamples; a looser bound for 40 seeds."""
    assert_covers(sim.coverage(sim.approach_2_wsd, range(40), 200), low=0.8, high=1.0)


def approach_2_exponents(profiles):
    minima, resampled, n_runs = analyze.isoflop_optima(profiles)
    return {key: analyze.allocation_fit(key, minima, resampled, n_runs, "weighted") for key in ("N_opt", "D_opt")}


@pytest.mark.slow
@pytest.mark.parametrize("kind", [sim.narrow_profiles, sim.wide_profiles])
def test_approach_2_default_is_accurate_and_covers_on_both_kinds_of_profile(kind):
    """50 sweeps of 5-12 budgets: narrow profiles (5-9 sizes within half a decade of each optimum,
    0.3% noise) and wide ones (15-21 sizes over 4-5 decades, lopsided, 1% noise)."""
    truth = {"N_opt": sim.N_OPT_EXPONENT, "D_opt": sim.D_OPT_EXPONENT}
    errors, covered = {k: [] for k in truth}, {k: [] for k in truth}
    for seed in range(50):
        for key, fitted in approach_2_exponents(kind(np.random.default_rng(seed))).items():
            errors[key].append(abs(fitted.params["exponent"] - truth[key]))
            lo, hi = fitted.ci["exponent"]
            covered[key].append(lo <= truth[key] <= hi)
    for key in truth:
        assert np.mean(errors[key]) <= 0.02 and np.max(errors[key]) <= 0.04, (key, errors[key])
        assert 0.90 <= np.mean(covered[key]) <= 0.98, (key, np.mean(covered[key]))
