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
    budgets = np.geomspace(1e18, 1e21, rng.integers(5, 13))
    profiles, next_run = [], 0
    for C in budgets:
        k = rng.integers(5, 10)
        centre = n_opt(C) * 10 ** rng.uniform(-0.15, 0.15)
        N = np.geomspace(centre / 10 ** 0.5, centre * 10 ** 0.5, k)
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
    profiles, next_run = [], 0
    for C in budgets:
        k = sizes_per_budget or rng.integers(5, 10)
        centre = n_opt(C) * 10 ** rng.uniform(-0.1, 0.1)
        N = np.geomspace(centre / 10 ** 0.6, centre * 10 ** 0.6, k)
        loss = laws.chinchilla_loss(N, laws.tokens_for_budget(C, N), **TRUTH) * np.exp(noise * rng.standard_normal(k))
        profiles.append(_profile(C, N, loss, np.arange(next_run, next_run + k)))
        next_run += k
    return profiles


def columns(profiles):
    """N, D, loss and run of every profile point, for approach 3."""
    return [np.concatenate([p[k] for p in profiles]) for k in ("N", "D", "loss", "run")]
