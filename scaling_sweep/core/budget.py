"""Stop rules shared by training and the planner: how many steps a run's schedule spans and
when a run with a compute budget should stop. A budget counts C = 6·N·tokens with N non-embedding
(Kaplan's convention, as training counts its FLOPs); Chinchilla's compute-optimal rule counts every
parameter, embeddings included (Hoffmann et al. 2022), and is applied in that count."""

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


def stop_tokens(n_params: float, compute_budget: float, allocate: Allocation = chinchilla_allocation,
                n_total: float | None = None) -> tuple[float, str]:
    """Training tokens after which a run of n_params non-embedding parameters (n_total in all,
    default n_params) with this budget should stop, and why. The budget buys C/(6·n_params)
    tokens; the allocation rule sees those tokens counted as its paper counts, C·n_total/n_params
    for Chinchilla's total parameters, and N = n_total: the run stops at once when N > 2·N_opt
    ("too_large_for_budget"); at D_opt when N is within a factor 2 of N_opt and D_opt comes
    before the budget is spent ("compute_optimal_tokens"); else when 6·n_params·tokens reaches
    the budget ("compute_budget"). Pass n_total only with an allocation in total parameters."""
    counted = n_params if n_total is None else n_total
    N_opt, D_opt = allocate(compute_budget * counted / n_params)
    budget_tokens = float(laws.tokens_for_budget(compute_budget, n_params))
    if counted > NEAR_OPTIMAL * N_opt:
        return 0.0, "too_large_for_budget"
    if counted >= N_opt / NEAR_OPTIMAL and D_opt < budget_tokens:
        return D_opt, "compute_optimal_tokens"
    return budget_tokens, "compute_budget"


def planned_steps(cfg: RunConfig, n_params: int, n_total: int | None = None) -> int:
    """Steps the schedule spans: the tightest of max_steps, max_tokens, compute_budget and,
    with train.stop_at=compute_optimal, the compute-optimal stop (stop_tokens, for a run of
    n_params non-embedding and n_total parameters in all)."""
    batch_tokens = cfg.train.batch_size * cfg.model.n_ctx
    steps = cfg.train.max_steps
    if cfg.train.max_tokens is not None:
        steps = min(steps, -(-cfg.train.max_tokens // batch_tokens))
    if cfg.train.compute_budget is not None:
        per_step = accounting.training_flops(n_params, batch_tokens)
        steps = min(steps, max(1, int(-(-cfg.train.compute_budget // per_step))))
    if cfg.train.stop_at == "compute_optimal":
        tokens, _ = stop_tokens(n_params, cfg.train.compute_budget, n_total=n_total)
        steps = min(steps, max(1, -(-int(tokens) // batch_tokens)))
    return steps
