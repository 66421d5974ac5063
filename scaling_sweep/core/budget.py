"""Stop rules shared by training and the planner: how many steps a run's schedule spans and
when a run with a compute budget should stop (Kaplan's C = 6·N·tokens, N non-embedding)."""

from __future__ import annotations

from collections.abc import Callable

from scaling_sweep.core import accounting, laws
from scaling_sweep.core.config import RunConfig

NEAR_OPTIMAL = 2.0  # a model within this factor of N_opt counts as compute-optimal in size
Allocation = Callable[[float], tuple[float, float]]  # C (FLOPs) -> (N_opt, D_opt)


def chinchilla_allocation(compute: float) -> tuple[float, float]:
    """Hoffmann et al. 2022's rule of thumb from approaches 1-2: 20 tokens per parameter."""
    N, D = laws.tokens_per_param_optimal(compute)
    return float(N), float(D)


def stop_tokens(n_params: float, compute_budget: float,
                allocate: Allocation = chinchilla_allocation) -> tuple[float, str]:
    """Training tokens after which an N-parameter run with this budget should stop, and why:
    at once when N > 2·N_opt ("too_large_for_budget"); at D_opt when N is within a factor 2
    of N_opt and D_opt comes before the budget is spent ("compute_optimal_tokens"); else when
    6·N·tokens reaches the budget ("compute_budget")."""
    N_opt, D_opt = allocate(compute_budget)
    budget_tokens = float(laws.tokens_for_budget(compute_budget, n_params))
    if n_params > NEAR_OPTIMAL * N_opt:
        return 0.0, "too_large_for_budget"
    if n_params >= N_opt / NEAR_OPTIMAL and D_opt < budget_tokens:
        return D_opt, "compute_optimal_tokens"
    return budget_tokens, "compute_budget"


def planned_steps(cfg: RunConfig, n_params: int) -> int:
    """Steps the schedule spans: the tightest of max_steps, max_tokens, compute_budget and,
    with train.stop_at=compute_optimal, the compute-optimal stop."""
    batch_tokens = cfg.train.batch_size * cfg.model.n_ctx
    steps = cfg.train.max_steps
    if cfg.train.max_tokens is not None:
        steps = min(steps, -(-cfg.train.max_tokens // batch_tokens))
    if cfg.train.compute_budget is not None:
        per_step = accounting.training_flops(n_params, batch_tokens)
        steps = min(steps, max(1, int(-(-cfg.train.compute_budget // per_step))))
    if cfg.train.stop_at == "compute_optimal":
        tokens, _ = stop_tokens(n_params, cfg.train.compute_budget)
        steps = min(steps, max(1, -(-int(tokens) // batch_tokens)))
    return steps
