"""Scaling-law formulas and published constants, as pure functions of numpy arrays.

Conventions (the same everywhere in the project): loss L in nats per token of the run's
tokenizer; N = non-embedding parameters; D = training tokens; C = training FLOPs counted as
C = 6·N·D; S = optimizer steps; B = batch size in tokens; E = training tokens (Kaplan's
section 5 symbol, distinct from Chinchilla's irreducible loss E). Published constants keep the
convention they were fitted in: Kaplan's N is non-embedding; Hoffmann's and Besiroglu's
(CHINCHILLA, EPOCH_REPLICATION) N is total parameters, embeddings included.

Equation numbers refer to Kaplan et al. 2020 ("Scaling Laws for Neural Language Models",
arXiv 2001.08361) unless a docstring says Hoffmann et al. 2022 ("Chinchilla", arXiv
2203.15556). Every constant below is stored in those units (FLOPs, not PF-days), and named
as the keyword arguments of the functions that use it, so ``loss_nd(N, D, **KAPLAN["L_ND"])``
evaluates eq. 1.5 with the paper's constants.
"""

from __future__ import annotations

import numpy as np

from scaling_sweep.core.accounting import PF_DAY

KAPLAN = {
    # eq. 1.1-1.3, constants of Table 5; C_c in FLOPs (C = 6·N·D), converted from PF-days
    "L_N": {"N_c": 8.8e13, "alpha_N": 0.076},
    "L_D": {"D_c": 5.4e13, "alpha_D": 0.095},
    "L_Cmin": {"C_c": 3.1e8 * PF_DAY, "alpha_C": 0.050},
    # eq. 3.3, Table 5: L(C) of training at a fixed batch size (not compute-efficient)
    "L_C": {"C_c": 1.6e7 * PF_DAY, "alpha_C": 0.057},
    # eq. 1.4, B* in tokens
    "B_crit": {"B_star": 2e8, "alpha_B": 0.21},
    # eq. 1.5 with the eq. 1.1-1.2 constants (Table 5): gives about 1.73 nats at N=1.75e11, D=3e11
    "L_ND": {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095},
    # eq. 1.5 as fitted to the L(N, D) sweep (Table 2)
    "L_ND_fit": {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
    # eq. 1.6 with the fit of Table 3; S_c in steps
    "L_NS": {"N_c": 6.5e13, "S_c": 2.1e3, "alpha_N": 0.077, "alpha_S": 0.76},
    # eq. 1.7 / 6.1, Table 6: N_opt = 1.3e9 · (C_min / PF-day)^0.73
    "N_opt": {"N_coef": 1.3e9, "exponent": 0.73},
}

# Section 6.3: past C* ≈ 1e4 PF-days of C_min (N* ≈ 1e12 parameters, D* ≈ 1e12 tokens) L(C_min)
# would fall below L(D), which cannot be, so the laws must break down before it. In FLOPs.
KAPLAN_BREAKDOWN_C_MIN = 1e4 * PF_DAY

# Hoffmann et al. 2022, approach 3: eq. 2 with the constants of section 3.3. The text prints
# E = 1.69, alpha = 0.34 and beta = 0.28; these are the unrounded values of the paper's TeX source,
# which Besiroglu et al. 2024 point out (the rounded ones bias the predictions).
CHINCHILLA = {"E": 1.6934, "A": 406.4, "B": 410.7, "alpha": 0.3392, "beta": 0.2849}

# Besiroglu et al. 2024 (Epoch AI, arXiv 2404.10102): approach 3 refitted to the data of
# Chinchilla's figure 4
EPOCH_REPLICATION = {"E": 1.82, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3658}

# Hoffmann et al. 2022's largest budget: Gopher's 5.76e23 FLOPs, with which Chinchilla itself was
# trained (section 4). Hoffmann's and Besiroglu's N counts every parameter, embeddings included.
CHINCHILLA_LARGEST_BUDGET = 5.76e23

# Chinchilla's N_opt ∝ C^a, D_opt ∝ C^b (approaches 1 and 2). Kaplan's eq. 1.7 (Table 6): along the
# compute-efficient frontier N ∝ C_min^0.73, B ∝ B_crit ∝ C_min^0.24, S_min ∝ C_min^0.03, D_opt = C/(6·N_opt)
CHINCHILLA_EXPONENTS = {"N_opt": 0.50, "D_opt": 0.50}
KAPLAN_EXPONENTS = {"N_opt": 0.73, "D_opt": 0.27, "B_crit": 0.24, "S_min": 0.03}

# fits.json's layout version: analyze writes it (the fitted laws under "laws", keyed as
# LAW_INFO), plan --fit reads it. 2: each law's bootstrap "samples" and "fit_range", "by_convention".
FITS_SCHEMA_VERSION = 2

# What each law is, for reports and fits.json; constants are named as in the formulas below.
LAW_INFO = {
    "L_N": ("L = (N_c/N)^alpha_N", "Kaplan et al. 2020 eq. 1.1"),
    "L_D": ("L = (D_c/D)^alpha_D", "Kaplan et al. 2020 eq. 1.2"),
    "L_Cmin": ("L = (C_c/C_min)^alpha_C", "Kaplan et al. 2020 eq. 1.3 (C_min: eq. 5.5)"),
    "L_C": ("L = (C_c/C)^alpha_C", "Kaplan et al. 2020 eq. 3.3 (fixed batch size, not C_min)"),
    "L_ND": ("L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
             "Kaplan et al. 2020 eq. 1.5: a dataset of D unique tokens, early-stopped"),
    "L_NS": ("L = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S", "Kaplan et al. 2020 eq. 1.6"),
    "B_crit": ("B_crit = B_star / L^(1/alpha_B)", "Kaplan et al. 2020 eq. 1.4, 5.1"),
    "chinchilla": ("L = E + A/N^alpha + B/D^beta", "Hoffmann et al. 2022 eq. 2 (approach 3): D tokens seen"),
    "N_opt": ("N_opt = N_coef * (C/PF-day)^exponent", "Kaplan et al. 2020 eq. 1.7; Hoffmann et al. 2022 approach 2"),
    "D_opt": ("D_opt = D_coef * (C/PF-day)^exponent", "Hoffmann et al. 2022 approach 2"),
    "N_opt_frontier": ("N = N_coef * (C/PF-day)^exponent on the compute frontier",
                       "Kaplan et al. 2020 eq. 1.7, fig. 14"),
    "S_min_frontier": ("S_min = S_coef * (C_min/PF-day)^exponent on the frontier",
                       "Kaplan et al. 2020 eq. 1.7, fig. 14"),
    "B_frontier": ("B_crit = B_coef * (C_min/PF-day)^exponent on the frontier",
                   "Kaplan et al. 2020 eq. 1.7, fig. 14"),
}
FLOOR_FORM = " + L_inf"  # appended to a power law's form when fitted with an irreducible term

# {N} and {C} stand for the parameter and compute convention a fit was made in (report.constants fills them)
CONSTANT_UNITS = {
    "N_c": "{N}", "D_c": "tokens", "C_c": "{C}",
    "S_c": "steps", "B_star": "tokens", "L_inf": "nats/token", "E": "nats/token",
    "A": "nats/token * N^alpha", "B": "nats/token * D^beta",
    "N_coef": "{N} at 1 PF-day", "D_coef": "tokens at 1 PF-day",
    "S_coef": "steps at 1 PF-day", "B_coef": "tokens at 1 PF-day",
}  # exponents (alpha_*, alpha, beta, exponent) are dimensionless


def power_law(x, x_c, alpha, L_inf=0.0):
    """L(x) = L_inf + (x_c / x)^alpha, the common form of eq. 1.1-1.3."""
    return L_inf + (x_c / np.asarray(x, dtype=float)) ** alpha


def loss_n(N, N_c, alpha_N, L_inf=0.0):
    """Eq. 1.1: loss of models trained to convergence (early-stopped) on ample data."""
    return power_law(N, N_c, alpha_N, L_inf)


def loss_d(D, D_c, alpha_D, L_inf=0.0):
    """Eq. 1.2: loss of large models trained on D tokens with early stopping."""
    return power_law(D, D_c, alpha_D, L_inf)


def loss_cmin(C_min, C_c, alpha_C, L_inf=0.0):
    """Eq. 1.3: loss at compute-efficient training with C_min FLOPs."""
    return power_law(C_min, C_c, alpha_C, L_inf)


def loss_nd(N, D, N_c, D_c, alpha_N, alpha_D, L_inf=0.0):
    """Eq. 1.5: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, plus an irreducible L_inf where
    fitted with one (Henighan et al. 2020's additive floor)."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    return L_inf + ((N_c / N) ** (alpha_N / alpha_D) + D_c / D) ** alpha_D


def loss_ns(N, S_min, N_c, S_c, alpha_N, alpha_S, L_inf=0.0):
    """Eq. 1.6: L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S, plus an irreducible L_inf where
    fitted with one (Henighan et al. 2020's additive floor)."""
    N, S_min = np.asarray(N, dtype=float), np.asarray(S_min, dtype=float)
    return L_inf + (N_c / N) ** alpha_N + (S_c / S_min) ** alpha_S


def chinchilla_loss(N, D, E, A, B, alpha, beta):
    """Hoffmann et al. 2022 eq. 2: L(N, D) = E + A/N^alpha + B/D^beta."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    return E + A / N**alpha + B / D**beta


def critical_batch(L, B_star, alpha_B):
    """Eq. 1.4: critical batch size in tokens, B_crit(L) = B* / L^(1/alpha_B)."""
    return B_star / np.asarray(L, dtype=float) ** (1.0 / alpha_B)


def min_steps(S, B, B_crit):
    """Eq. 5.4: S_min = S / (1 + B_crit/B), steps needed at a very large batch."""
    return S / (1.0 + B_crit / np.asarray(B, dtype=float))


def min_compute(C, B_over_B_crit):
    """Eq. 5.5: C_min = C / (1 + B/B_crit), the compute of a run at batch B had it used B << B_crit."""
    return np.asarray(C, dtype=float) / (1.0 + B_over_B_crit)


def min_tokens(E, B, B_crit):
    """Eq. 5.5 in tokens: E_min = E / (1 + B/B_crit), tokens needed at a very small batch
    (C = 6·N·E, so C_min and E_min shrink by the same factor)."""
    return min_compute(E, np.asarray(B, dtype=float) / B_crit)


def steps_at_batch(B, S_min, E_min):
    """Steps to a target loss at batch B (tokens), from eq. 5.1:
    (S/S_min - 1)(E/E_min - 1) = 1 with E = B·S  ⇔  S = S_min + E_min/B."""
    return S_min + E_min / np.asarray(B, dtype=float)


def tokens_for_budget(C, N):
    """D = C / (6N): the tokens a budget of C FLOPs buys for a model of N parameters."""
    return np.asarray(C, dtype=float) / (6.0 * np.asarray(N, dtype=float))


def allocation(C, coef, exponent):
    """Eq. 1.7 / 6.1's form: coef · (C/PF-day)^exponent, with C in FLOPs (an N_opt or D_opt)."""
    return coef * (np.asarray(C, dtype=float) / PF_DAY) ** exponent


def kaplan_optimal(C, N_coef=1.3e9, exponent=0.73, B_over_B_crit=0.0):
    """Eq. 1.7 / 6.1 (Table 6) for a budget of C FLOPs spent at batch B: N_opt = N_coef ·
    (C_min/PF-day)^exponent with C_min = C/(1 + B/B_crit) (eq. 5.5); D_opt = C/(6·N_opt), so
    that 6·N_opt·D_opt is all of C. Returns (N_opt, D_opt)."""
    N_opt = allocation(min_compute(C, B_over_B_crit), N_coef, exponent)
    return N_opt, tokens_for_budget(C, N_opt)


def kaplan_compute_efficient_loss(C, C_c, alpha_C, B_over_B_crit=0.0):
    """Eq. 1.3: the loss at the end of compute-efficient training, L(C_min), for a budget of C
    FLOPs spent at batch B, C_min = C/(1 + B/B_crit) (eq. 5.5)."""
    return loss_cmin(min_compute(C, B_over_B_crit), C_c, alpha_C)


def tokens_per_param_optimal(C, tokens_per_param=20.0):
    """Hoffmann et al. 2022's rule of thumb, about 20 tokens per parameter at the optimum:
    N_opt = sqrt(C / (6·tokens_per_param)), D_opt = tokens_per_param·N_opt = C/(6·N_opt).
    Returns (N_opt, D_opt)."""
    N_opt = np.sqrt(np.asarray(C, dtype=float) / (6.0 * tokens_per_param))
    return N_opt, tokens_for_budget(C, N_opt)


def chinchilla_optimal(C, E, A, B, alpha, beta):
    """Hoffmann et al. 2022 eq. 4: the (N, D) minimising E + A/N^alpha + B/D^beta under
    C = 6·N·D. N_opt = G·(C/6)^a, D_opt = (C/6)^b / G with a = beta/(alpha+beta),
    b = alpha/(alpha+beta), G = (alpha·A / (beta·B))^(1/(alpha+beta)). Returns (N_opt, D_opt)."""
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    N_opt = G * (np.asarray(C, dtype=float) / 6.0) ** (beta / (alpha + beta))
    return N_opt, tokens_for_budget(C, N_opt)


def loss_nd_optimal(C, N_c, D_c, alpha_N, alpha_D):
    """The (N, D) minimising eq. 1.5 under C = 6·N·D (training to convergence on D tokens):
    setting d/dN of (N_c/N)^(alpha_N/alpha_D) + 6·N·D_c/C to zero gives
    N_opt^(1+r) = r·N_c^r·C / (6·D_c) with r = alpha_N/alpha_D. Returns (N_opt, D_opt)."""
    r = alpha_N / alpha_D
    N_opt = (r * N_c**r * np.asarray(C, dtype=float) / (6.0 * D_c)) ** (1.0 / (1.0 + r))
    return N_opt, tokens_for_budget(C, N_opt)


def loss_single_pass(N, D, N_c, S_c, alpha_N, alpha_S, B_star, alpha_B, B_over_B_crit=1.0):
    """Loss of an N-parameter model after one pass over D tokens at a batch B = B_over_B_crit·B_crit:
    L = L(N, S_min) (eq. 1.6) with S = D/B steps and S_min = S/(1 + B_crit(L)/B) (eq. 5.4), that is
    S_min = D/((1 + B/B_crit)·B_crit(L)) with B_crit(L) of eq. 1.4, solved for L. At B = B_crit
    (the default, as Kaplan's compute-efficient training runs) S_min = D/(2·B_crit(L)); at
    B << B_crit, D/B_crit(L). Not eq. 1.5, which is the loss of a dataset of D tokens trained with
    early stopping (as many passes as help). Element-wise over arrays (constants too)."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)

    def rhs(log_L):
        S_min = D / ((1.0 + B_over_B_crit) * critical_batch(np.exp(log_L), B_star, alpha_B))
        return np.log(loss_ns(N, S_min, N_c, S_c, alpha_N, alpha_S))

    # log L - rhs(log L) rises with L (a larger L means a smaller B_crit, more S_min, a lower
    # L(N, S_min)), so the root is unique: bisection from L(N) = L(N, S_min -> inf) up
    lo = np.log(loss_n(N, N_c, alpha_N)) + 0.0 * D
    hi = lo + 50.0
    for _ in range(80):
        mid = (lo + hi) / 2
        above = mid > rhs(mid)
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return np.exp((lo + hi) / 2)


def loss_ns_optimal(C_min, N_c, S_c, alpha_N, alpha_S, B_star, alpha_B):
    """The N minimising L(N, S_min) (eq. 1.6) for C_min FLOPs spent at the critical batch
    size B_crit(L) (eq. 1.4), as in Kaplan's section 6.1 (found numerically; for Kaplan's
    constants N_opt ∝ C_min^0.68, against the 0.73 Kaplan measured).
    Returns (N_opt, D_opt) with D_opt = C_min/(6·N_opt)."""
    from scipy.optimize import minimize_scalar

    C_min = np.atleast_1d(np.asarray(C_min, dtype=float))
    N_opt = np.empty_like(C_min)
    for i, C in enumerate(C_min):
        def loss_at(log_N):  # C_min spent at B << B_crit: D = C_min/(6N) tokens
            N = np.exp(log_N)
            return float(loss_single_pass(N, tokens_for_budget(C, N), N_c, S_c, alpha_N, alpha_S, B_star, alpha_B,
                                          B_over_B_crit=0.0))
        # the optimum lies well inside "one step at B_crit" to "a 1-token model"
        hi = np.log(C / (6.0 * B_star))
        N_opt[i] = np.exp(minimize_scalar(loss_at, bounds=(0.0, hi), method="bounded",
                                          options={"xatol": 1e-6}).x)
    return N_opt, tokens_for_budget(C_min, N_opt)


# Hyperparameter laws (analysis.hparams): the optimal peak learning rate and batch size, power laws whose
# constants are named as analysis.hparams.HPARAM_LAWS names them. B in tokens per optimizer step.
# Li et al. 2025 ("Predictable Scale: Part I, Step Law", arXiv 2503.04715): eta(N, D) = 1.79 N^-0.713 D^0.307
# and B(D) = 0.58 D^0.571, N non-embedding parameters, D training tokens.
STEPLAW = {"eta_ND": {"a": 1.79, "alpha": -0.713, "beta": 0.307}, "B_D": {"b": 0.58, "gamma": 0.571}}
# DeepSeek-AI 2024 (DeepSeek LLM, arXiv 2401.02954) sec. 3.1: eta_opt = 0.3118 C^-0.1250 and
# B_opt = 0.2920 C^0.3271, with C = M·D FLOPs, M the non-embedding FLOPs per token (attention included).
DEEPSEEK_HPARAMS = {"eta_C": {"a": 0.3118, "alpha": -0.1250}, "B_C": {"b": 0.2920, "beta": 0.3271}}
