import numpy as np
import pytest

from scaling_sweep.core import laws
from scaling_sweep.core.laws import CHINCHILLA, EPOCH_REPLICATION, KAPLAN, PF_DAY

BUDGETS = np.array([1e18, 1e20, 1e22, 1e24])


def test_kaplan_eq_1_5_gpt3_check():
    # reference/kaplan2020.md: N = 1.75e11, D = 3e11 gives about 1.73 nats/token
    assert laws.loss_nd(1.75e11, 3e11, **KAPLAN["L_ND"]) == pytest.approx(1.73, abs=0.005)


def test_eq_1_5_reduces_to_eq_1_1_and_1_2_at_the_limits():
    p = KAPLAN["L_ND"]
    L_N = laws.loss_n(1e9, p["N_c"], p["alpha_N"])
    L_D = laws.loss_d(1e10, p["D_c"], p["alpha_D"])
    assert laws.loss_nd(1e9, 1e30, **p) == pytest.approx(L_N, rel=1e-6)
    assert laws.loss_nd(1e30, 1e10, **p) == pytest.approx(L_D, rel=1e-6)


def test_power_law_irreducible_term():
    assert laws.power_law(10.0, 100.0, 1.0, L_inf=2.0) == pytest.approx(12.0)


@pytest.mark.parametrize("allocate, constants", [
    (laws.kaplan_optimal, KAPLAN["N_opt"]),
    (laws.chinchilla_optimal, CHINCHILLA),
    (laws.chinchilla_optimal, EPOCH_REPLICATION),
    (laws.tokens_per_param_optimal, {}),
    (laws.loss_nd_optimal, KAPLAN["L_ND"]),
    (laws.loss_ns_optimal, {**KAPLAN["L_NS"], **KAPLAN["B_crit"]}),
])
def test_allocations_spend_the_budget_exactly(allocate, constants):
    N, D = allocate(BUDGETS, **constants)
    np.testing.assert_allclose(6 * N * D, BUDGETS, rtol=1e-12)
    assert np.all(np.diff(N) > 0) and np.all(np.diff(D) > 0)


def test_kaplan_allocation_exponent_and_scale():
    N, _ = laws.kaplan_optimal(np.array([PF_DAY, 1e3 * PF_DAY]))
    assert N[0] == pytest.approx(1.3e9)
    assert np.log(N[1] / N[0]) / np.log(1e3) == pytest.approx(0.73)


def test_chinchilla_optimum_is_the_minimum_on_the_isoflop_line():
    C = 1e21
    N_opt, _ = laws.chinchilla_optimal(C, **CHINCHILLA)
    N = N_opt * np.array([0.8, 1.0, 1.25])
    L = laws.chinchilla_loss(N, laws.tokens_for_budget(C, N), **CHINCHILLA)
    assert L[1] < L[0] and L[1] < L[2]
    a = CHINCHILLA["beta"] / (CHINCHILLA["alpha"] + CHINCHILLA["beta"])
    N2, _ = laws.chinchilla_optimal(1e3 * C, **CHINCHILLA)
    assert np.log(N2 / N_opt) / np.log(1e3) == pytest.approx(a)


def test_twenty_tokens_per_parameter():
    N, D = laws.tokens_per_param_optimal(1e21)
    assert D / N == pytest.approx(20.0)


def test_loss_ns_optimum_follows_alpha_c_over_alpha_n():
    # Kaplan section 6.1: N_opt ∝ C_min^(alpha_C/alpha_N), alpha_C = 1/(1/a_S + 1/a_B + 1/a_N)
    p = {**KAPLAN["L_NS"], **KAPLAN["B_crit"]}
    N, _ = laws.loss_ns_optimal(BUDGETS, **p)
    alpha_C = 1 / (1 / p["alpha_S"] + 1 / p["alpha_B"] + 1 / p["alpha_N"])
    slopes = np.diff(np.log(N)) / np.diff(np.log(BUDGETS))
    np.testing.assert_allclose(slopes, alpha_C / p["alpha_N"], rtol=1e-3)


def test_batch_size_tradeoff_eq_5_1_to_5_5():
    S_min, E_min = 1e3, 1e6
    B_crit = E_min / S_min
    B = np.array([1e2, 1e3, 1e4])
    S = laws.steps_at_batch(B, S_min, E_min)
    E = B * S
    np.testing.assert_allclose((S / S_min - 1) * (E / E_min - 1), 1.0)
    np.testing.assert_allclose(laws.min_steps(S, B, B_crit), S_min)
    np.testing.assert_allclose(laws.min_tokens(E, B, B_crit), E_min)


def test_critical_batch_eq_1_4():
    p = KAPLAN["B_crit"]
    assert laws.critical_batch(1.0, **p) == pytest.approx(2e8)
    assert laws.critical_batch(2.0, **p) == pytest.approx(2e8 / 2 ** (1 / 0.21))


def test_single_pass_loss_solves_eq_1_6_with_s_min_of_eq_5_4():
    # N = 1e9 trained once over D = 2e10 tokens at B = B_crit: S_min = D/(2·B_crit(L)); by hand from
    # kaplan2020.md: (6.5e13/1e9)^0.077 = 2.347, B_crit(2.774) = 2e8/2.774^(1/0.21) = 1.55e6 tokens,
    # S_min = 6.44e3, (2.1e3/S_min)^0.76 = 0.427: L = 2.774 (eq. 1.5 says 2.435 for an early-stopped dataset)
    p = {**KAPLAN["L_NS"], **KAPLAN["B_crit"]}
    L = laws.loss_single_pass(1e9, 2e10, **p)
    assert L == pytest.approx(2.774, abs=1e-3)
    S_min = 2e10 / (2 * laws.critical_batch(L, **KAPLAN["B_crit"]))
    assert L == pytest.approx(laws.loss_ns(1e9, S_min, **KAPLAN["L_NS"]), rel=1e-9)
    assert laws.loss_nd(1e9, 2e10, **KAPLAN["L_ND"]) == pytest.approx(2.435, abs=1e-3)
    # a smaller batch wastes fewer tokens per step: lower loss for the same D
    assert laws.loss_single_pass(1e9, 2e10, **p, B_over_B_crit=0.0) < L


def test_single_pass_loss_is_element_wise_and_falls_to_l_n_with_more_tokens():
    p = {**KAPLAN["L_NS"], **KAPLAN["B_crit"]}
    D = np.geomspace(1e8, 1e16, 5)
    L = laws.loss_single_pass(np.full(5, 1e9), D, **p)
    assert np.all(np.diff(L) < 0)
    assert L[-1] == pytest.approx(laws.loss_n(1e9, p["N_c"], p["alpha_N"]), rel=1e-3)
    np.testing.assert_allclose(L[1], laws.loss_single_pass(1e9, D[1], **p), rtol=1e-12)
