import math

import pytest

from scaling_sweep.core import budget
from scaling_sweep.planning.plan import PUBLISHED_LAWS

CHINCHILLA, KAPLAN = PUBLISHED_LAWS["chinchilla"], PUBLISHED_LAWS["kaplan"]


def steps_until_stop(N, C, batch, allocate=budget.chinchilla_allocation):
    tokens, reason = budget.stop_tokens(N, C, allocate)
    return math.ceil(tokens / batch), reason


def test_a_small_model_stops_when_the_budget_is_spent():
    C, batch = 1e15, 4096
    N = 1e5  # far below N_opt for 1e15 FLOPs: trains on until the budget is spent
    assert steps_until_stop(N, C, batch) == (math.ceil(C / (6 * N * batch)), "compute_budget")


def test_a_near_optimal_model_stops_at_d_opt():
    C, batch = 1e18, 1024
    N_opt, D_opt = CHINCHILLA.allocate(C)
    assert steps_until_stop(0.8 * N_opt, C, batch) == (math.ceil(D_opt / batch), "compute_optimal_tokens")
    assert budget.stop_tokens(1.5 * N_opt, C) == (pytest.approx(C / (6 * 1.5 * N_opt)), "compute_budget")


def test_a_model_too_large_for_the_budget_stops_at_once():
    C = 1e18
    N_opt, _ = CHINCHILLA.allocate(C)
    assert budget.stop_tokens(2.1 * N_opt, C) == (0.0, "too_large_for_budget")
    assert budget.stop_tokens(1.9 * N_opt, C)[0] > 0
    kaplan_N_opt = KAPLAN.allocate(C)[0]
    assert budget.stop_tokens(2.1 * kaplan_N_opt, C, KAPLAN.allocate) == (0.0, "too_large_for_budget")


def test_the_default_allocation_is_chinchillas_20_tokens_per_parameter():
    assert budget.chinchilla_allocation(1e21) == pytest.approx(CHINCHILLA.allocate(1e21))


def test_the_compute_optimal_rule_counts_every_parameter_as_chinchilla_does():
    # a small model with a 50k vocabulary: 5x more parameters in all than in its blocks
    N, N_total, C = 2.5e6, 1.25e7, 1.2e16
    N_opt, D_opt = budget.chinchilla_allocation(C * N_total / N)  # the budget's tokens, counted with N_total
    assert N_opt == pytest.approx(math.sqrt(C * 5 / 120))  # 20 tokens per parameter: C = 6·N·20N
    assert N_opt / 2 < N_total < N_opt and D_opt < C / (6 * N)
    assert budget.stop_tokens(N, C, n_total=N_total) == (pytest.approx(D_opt), "compute_optimal_tokens")
    # counted by non-embedding N alone it is under half of N_opt and would spend the whole budget
    assert budget.stop_tokens(N, C) == (pytest.approx(C / (6 * N)), "compute_budget")
