"""Simulated sweeps with known constants, shaped like the ones users run, for measuring what the
analysis recovers and how often its 95% intervals hold the truth (tests/analysis/test_coverage.py,
docs/intervals.md). Noise is multiplicative (log-normal) on the loss; a run's noise is shared by all
of its points (its wsd cooldown branches, its learning-curve readings) besides each point's own."""

from __future__ import annotations

import numpy as np

from scaling_sweep.core import laws

TRUTH = laws.CHINCHILLA  # Hoffmann et al. 2022's E + A/N^alpha + B/D^beta
N_OPT_EXPONENT = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])  # Hoffmann eq. 4: N_opt ∝ C^a
D_OPT_EXPONENT = 1.0 - N_OPT_EXPONENT


def n_opt(C, truth=TRUTH):
    """Eq. 4 of Hoffmann et al. 2022: the size that minimises E + A/N^alpha + B/(C/6N)^beta."""
    alpha, beta = truth["alpha"], truth["beta"]
    G = (alpha * truth["A"] / (beta * truth["B"])) ** (1 / (alpha + beta))
    return G * (np.asarray(C, float) / 6) ** (beta / (alpha + beta))


def _profile(C, N, loss, run):
    return {"C": float(C), "N": N, "D": laws.tokens_for_budget(C, N), "loss": loss, "run": np.asarray(run, int)}


def narrow_profiles(rng, noise=0.003):
    """Few points near each optimum: 5-9 sizes within half a decade either side of it (the centre off
    by up to 0.15 decade), 5-12 budgets over three decades; every point its own run."""
    return _one_run_per_point(rng, np.geomspace(1e18, 1e21, rng.integers(5, 13)), None, 0.15, 0.5, noise)


def _one_run_per_point(rng, budgets, sizes, off_centre, half_span, noise):
    """At each budget, sizes (or 5-9) sizes over half_span decades either side of a centre up to
    off_centre decades from the optimum; every point its own run."""
    profiles, next_run = [], 0
    for C in budgets:
        k = sizes or rng.integers(5, 10)
        centre = n_opt(C) * 10 ** rng.uniform(-off_centre, off_centre)
        N = np.geomspace(centre / 10 ** half_span, centre * 10 ** half_span, k)
        loss = laws.chinchilla_loss(N, laws.tokens_for_budget(C, N), **TRUTH) * np.exp(noise * rng.standard_normal(k))
        profiles.append(_profile(C, N, loss, np.arange(next_run, next_run + k)))
        next_run += k
    return profiles


def wide_profiles(rng, noise=0.01):
    """Many sizes over several decades: one grid of 15-21 sizes over 4-5 decades trained at every budget
    (each size one run), 5-12 budgets whose optima lie between 20% and 80% of the grid's span in log N,
    so the profiles are lopsided and hold overlarge, undertrained models; noise on every point."""
    decades = rng.uniform(4, 5)
    N = np.geomspace(1e7, 1e7 * 10 ** decades, rng.integers(15, 22))
    lo, hi = (np.log10(1e7) + f * decades for f in (0.2, 0.8))
    # C at which N_opt = 10^lo and 10^hi, from N_opt ∝ C^a
    C_lo, C_hi = (1e18 * (10 ** v / n_opt(1e18)) ** (1 / N_OPT_EXPONENT) for v in (lo, hi))
    profiles = []
    for C in np.geomspace(C_lo, C_hi, rng.integers(5, 13)):
        loss = laws.chinchilla_loss(N, laws.tokens_for_budget(C, N), **TRUTH)
        profiles.append(_profile(C, N, loss * np.exp(noise * rng.standard_normal(len(N))), np.arange(len(N))))
    return profiles


def wsd_profiles(rng, n_sizes=None, n_budgets=None, run_noise=0.006, point_noise=0.003, truth=TRUTH):
    """A wsd IsoFLOP sweep: 5-12 sizes spaced over the optima of 3-8 budgets (1.5 decades of N beyond the
    smallest and largest optimum), each size one run whose cooldown branches give its points at every
    budget; a run's noise (run_noise) is shared by its branches, each branch adds point_noise. A budget's
    profile keeps the sizes within a decade of its optimum either side."""
    n_sizes = n_sizes or rng.integers(5, 13)
    budgets = np.geomspace(1e17, 1e20, n_budgets or rng.integers(3, 9))
    optima = n_opt(budgets, truth)
    N = np.geomspace(optima[0] / 10 ** 0.75, optima[-1] * 10 ** 0.75, n_sizes)
    shared = run_noise * rng.standard_normal(n_sizes)
    profiles = []
    for C, best in zip(budgets, optima):
        keep = np.abs(np.log10(N / best)) <= 1.0
        D = laws.tokens_for_budget(C, N[keep])
        noise = shared[keep] + point_noise * rng.standard_normal(keep.sum())
        profiles.append(_profile(C, N[keep], laws.chinchilla_loss(N[keep], D, **truth) * np.exp(noise),
                                 np.flatnonzero(keep)))
    return profiles


def curve_profiles(rng, **kw):
    """Profiles read off learning curves: as wsd_profiles, but nearly all of a point's noise is its run's
    (a learning curve is smooth: its readings at different budgets move together)."""
    return wsd_profiles(rng, run_noise=0.008, point_noise=0.001, **kw)


def single_size_profiles(rng, n_budgets=None, sizes_per_budget=None, noise=0.006):
    """A sweep whose every run is trained to one budget (no shared branches): 3-8 budgets of 5-9 sizes
    each within 0.6 decade of the optimum; every point its own run."""
    budgets = np.geomspace(1e17, 1e20, n_budgets or rng.integers(3, 9))
    return _one_run_per_point(rng, budgets, sizes_per_budget, 0.1, 0.6, noise)


def columns(profiles):
    """N, D, loss and run of every profile point, for approach 3."""
    return [np.concatenate([p[k] for p in profiles]) for k in ("N", "D", "loss", "run")]


# ---------------------------------------------------------------- coverage cases
#
# A case draws one simulated sweep and fits it: case(rng, n_boot, seed) -> [(law, Fit, truth)], truth
# the constants the sweep was drawn from, named as the Fit names them.

def _noisy(values, rng, sigma):
    return values * np.exp(sigma * rng.standard_normal(np.shape(values)))


def _approach_2(profiles, n_boot, seed, truth=TRUTH):
    from scaling_sweep.analysis import analyze

    minima, resampled, n_runs = analyze.isoflop_optima(profiles, n_boot=n_boot, seed=seed)
    a = truth["beta"] / (truth["alpha"] + truth["beta"])
    N_coef = n_opt(laws.PF_DAY, truth)
    allocation = {"N_opt": {"N_coef": N_coef, "exponent": a},
                  "D_opt": {"D_coef": laws.PF_DAY / (6 * N_coef), "exponent": 1 - a}}
    return [(key, analyze.allocation_fit(key, minima, resampled, n_runs, "weighted"), allocation[key])
            for key in allocation]


def approach_2_wsd(rng, n_boot, seed):
    return _approach_2(wsd_profiles(rng), n_boot, seed)


def approach_2_curves(rng, n_boot, seed):
    return _approach_2(curve_profiles(rng), n_boot, seed)


def approach_2_single_size(rng, n_boot, seed):
    return _approach_2(single_size_profiles(rng), n_boot, seed)


def approach_2_table(rng, n_boot, seed):
    """A table of independent points read off a figure: the narrow profiles (every point its own)."""
    return _approach_2(narrow_profiles(rng), n_boot, seed)


def _chinchilla(N, D, loss, groups, n_boot, seed):
    from scaling_sweep.analysis import fit

    fitted = fit.fit_chinchilla(N, D, loss, n_boot=n_boot, seed=seed, starts=fit.CHINCHILLA_GRID[::15], groups=groups)
    return [("chinchilla", fitted, TRUTH)]


def chinchilla_wsd(rng, n_boot, seed):
    """Approach 3 on a wsd IsoFLOP sweep of 10-12 sizes (5 constants need 10 runs) at 3-8 budgets."""
    N, D, loss, run = columns(wsd_profiles(rng, n_sizes=rng.integers(10, 13)))
    return _chinchilla(N, D, loss, run, n_boot, seed)


def chinchilla_table(rng, n_boot, seed):
    """Approach 3 on a table of independent points: 5 budgets x 8 sizes, 1% noise."""
    C = np.repeat(np.geomspace(1e18, 1e21, 5), 8)
    N = np.concatenate([n_opt(c) * np.geomspace(0.1, 10, 8) for c in np.geomspace(1e18, 1e21, 5)])
    D = laws.tokens_for_budget(C, N)
    loss = _noisy(laws.chinchilla_loss(N, D, **TRUTH), rng, 0.01)
    return _chinchilla(N, D, loss, np.arange(len(N)), n_boot, seed)


def size_table(rng, n_boot, seed):
    """L(N) and L(N) with a floor on one early-stopped loss per size: 5-12 sizes (8-12 with a floor)
    over 3 decades, 1% noise, independent points (residual bootstrap)."""
    from scaling_sweep.analysis import fit

    N = np.geomspace(1e5, 1e8, rng.integers(5, 13))
    truth = laws.KAPLAN["L_N"]
    pure = fit.fit_power_law(N, _noisy(laws.loss_n(N, **truth), rng, 0.01), n_boot=n_boot, seed=seed)
    N = np.geomspace(1e5, 1e8, rng.integers(8, 13))
    floor_truth = {"N_c": 1e13, "alpha_N": 0.15, "L_inf": 1.5}
    with_floor = fit.fit_power_law(N, _noisy(laws.loss_n(N, **floor_truth), rng, 0.01), floor=True, n_boot=n_boot,
                                   seed=seed)
    return [("L_N", pure, truth), ("L_N_floor", with_floor, floor_truth)]


def frontier_runs(rng, n_boot, seed):
    """L(C) and N against C on a compute frontier: 3 points from each of 7-12 runs, each run's points
    sharing its noise (1%) besides their own (0.3%)."""
    from scaling_sweep.analysis import fit

    n_runs = rng.integers(7, 13)
    run = np.repeat(np.arange(n_runs), 3)
    C = np.geomspace(1e15, 1e21, 3 * n_runs)
    shared = 0.01 * rng.standard_normal(n_runs)[run]
    truth = laws.KAPLAN["L_Cmin"]
    loss = laws.loss_cmin(C, **truth) * np.exp(shared + 0.003 * rng.standard_normal(len(C)))
    allocation = laws.KAPLAN["N_opt"]
    N = laws.kaplan_optimal(C, **allocation)[0] * np.exp(3 * shared + 0.01 * rng.standard_normal(len(C)))
    return [("L_Cmin", fit.fit_power_law(C, loss, "C", n_boot=n_boot, seed=seed, groups=run), truth),
            ("N_opt_frontier", fit.fit_allocation(C, N, "N_opt_frontier", n_boot=n_boot, seed=seed, groups=run),
             allocation)]


def batch_runs(rng, n_boot, seed):
    """B_crit from the steps 7 batch sizes x 2 model sizes (14 runs) needed to reach 4 target losses;
    a run's crossings share its noise (2%) besides their own (0.5%)."""
    from scaling_sweep.analysis import fit

    L, B = (x.ravel() for x in np.meshgrid(np.array([4.0, 3.5, 3.0, 2.6]), np.geomspace(2**12, 2**20, 7)))
    L, B = np.tile(L, 2), np.tile(B, 2)
    run = np.tile(np.repeat(np.arange(7), 4), 2) + np.repeat([0, 7], 28)
    truth = laws.KAPLAN["B_crit"]
    S_min = 1e3 * (4 / L) ** 6
    S = laws.steps_at_batch(B, S_min, S_min * laws.critical_batch(L, **truth))
    S = S * np.exp(0.02 * rng.standard_normal(14)[run] + 0.005 * rng.standard_normal(len(S)))
    return [("B_crit", fit.fit_critical_batch(L, B, S, n_boot=n_boot, seed=seed, groups=run), truth)]


def data_table(rng, n_boot, seed):
    """L(N, D) (eq. 1.5) on 6 sizes x 6 dataset sizes, one independent run each, 1% noise."""
    from scaling_sweep.analysis import fit

    N, D = (x.ravel() for x in np.meshgrid(np.geomspace(1e5, 1e8, 6), np.geomspace(1e7, 1e10, 6)))
    truth = laws.KAPLAN["L_ND_fit"]
    loss = _noisy(laws.loss_nd(N, D, **truth), rng, 0.01)
    return [("L_ND", fit.fit_kaplan_nd(N, D, loss, n_boot=n_boot, seed=seed, groups=np.arange(len(N))), truth)]


def curve_runs(rng, n_boot, seed):
    """L(N, S) (eq. 1.6) read at 8 steps off the learning curves of 6-12 sizes, a curve's readings
    sharing its run's noise (1%) besides their own (0.3%)."""
    from scaling_sweep.analysis import fit

    n_runs = rng.integers(6, 13)
    N, S = (x.ravel() for x in np.meshgrid(np.geomspace(1e5, 1e8, n_runs), np.geomspace(1e2, 1e5, 8), indexing="ij"))
    run = np.repeat(np.arange(n_runs), 8)
    truth = laws.KAPLAN["L_NS"]
    loss = laws.loss_ns(N, S, **truth) * np.exp(0.01 * rng.standard_normal(n_runs)[run]
                                                + 0.003 * rng.standard_normal(len(N)))
    return [("L_NS", fit.fit_kaplan_ns(N, S, loss, n_boot=n_boot, seed=seed, groups=run), truth)]


CASES = {"approach 2, wsd branches": approach_2_wsd, "approach 2, curve profiles": approach_2_curves,
         "approach 2, one size per run": approach_2_single_size, "approach 2, table of points": approach_2_table,
         "approach 3, wsd branches": chinchilla_wsd, "approach 3, table of points": chinchilla_table,
         "L(N), table of sizes": size_table, "compute frontier, runs": frontier_runs,
         "B_crit, batch sweep runs": batch_runs, "L(N, D), table of runs": data_table,
         "L(N, S), learning curves": curve_runs}


def coverage(case, seeds, n_boot) -> dict[tuple[str, str], dict]:
    """For each (law, constant) of a case: how many of its simulated sweeps had an interval, and the
    share of those whose 95% interval held the true value."""
    hits, given, total = {}, {}, {}
    for seed in seeds:
        for law, fitted, truth in case(np.random.default_rng(seed), n_boot, seed):
            for name, value in truth.items():
                key = (law, name)
                total[key] = total.get(key, 0) + 1
                if name in fitted.ci:
                    lo, hi = fitted.ci[name]
                    given[key] = given.get(key, 0) + 1
                    hits[key] = hits.get(key, 0) + bool(lo <= value <= hi)
    return {key: {"sweeps": total[key], "with_interval": given.get(key, 0),
                  "coverage": hits.get(key, 0) / given[key] if given.get(key) else float("nan")} for key in total}


def main(argv=None) -> None:
    """Print the coverage table of docs/intervals.md: python tests/simulated_sweeps.py [seeds] [n_boot] [case...]"""
    import sys
    import time

    args = sys.argv[1:] if argv is None else argv
    seeds, n_boot = (int(args[0]) if args else 200), (int(args[1]) if len(args) > 1 else 200)
    chosen = args[2:] or list(CASES)
    print("| case | law | constant | sweeps with an interval | coverage of the 95% interval |")
    print("| --- | --- | --- | --- | --- |")
    for name in chosen:
        start = time.perf_counter()
        for (law, constant), row in coverage(CASES[name], range(seeds), n_boot).items():
            print(f"| {name} | {law} | {constant} | {row['with_interval']}/{row['sweeps']} | {row['coverage']:.1%} |",
                  flush=True)
        print(f"<!-- {name}: {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
