"""AdamW with GPT-style decay groups, and the learning-rate schedules: warmup + cosine, or
warmup-stable-decay (wsd) with its cooldowns."""

from __future__ import annotations

import math

import torch

from scaling_sweep.core.config import OptimConfig
from scaling_sweep.training.model import GPT


def decay_groups(parameters, no_decay: set[int], weight_decay: float) -> list[dict]:
    """AdamW parameter groups: decay on the matmul weights (2-D and up) whose id is not in
    `no_decay` (the embeddings); none on norms and biases."""
    decay, rest = [], []
    for p in parameters:
        (decay if p.dim() >= 2 and id(p) not in no_decay else rest).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def fused_adamw(device: torch.device) -> bool:
    """Fused AdamW (one kernel per parameter tensor) on CUDA and CPU: over the flat groups of
    flatten_groups that is one kernel per group, against about ten per tensor for the for-loop."""
    return device.type in ("cuda", "cpu")


def flatten_groups(groups: list[dict]) -> list[dict]:
    """The same parameter groups over one flat parameter each.

    Every parameter of a group becomes a view into its group's flat tensor, and its gradient a view
    into the flat tensor's gradient, so that the optimizer, gradient clipping and zeroing take a few
    ops per step instead of a few per tensor: at the CPU demo's sizes (29 tensors, a step of a few
    milliseconds) the per-tensor ops were most of the step's op count (docs/performance.md). Autograd
    accumulates into a gradient that exists in place, so the views stay views as long as gradients
    are zeroed, never set to None (optimizer_step). Empty groups are left out.
    """
    flat_groups = []
    for group in groups:
        params = group["params"]
        if not params:
            continue
        flat = torch.nn.Parameter(torch.cat([p.detach().flatten() for p in params]))
        flat.grad = torch.zeros_like(flat)
        offset = 0
        for p in params:
            p.data = flat.data[offset:offset + p.numel()].view_as(p)
            p.grad = flat.grad[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
        flat_groups.append({**group, "params": [flat]})
    return flat_groups


def build_optimizer(model: GPT, cfg: OptimConfig, lr: float, device: torch.device) -> torch.optim.AdamW:
    """Decoupled weight decay on the matmul weights only: not on norms, biases or embeddings; each
    group over one flat tensor that the model's parameters are views of (flatten_groups)."""
    no_decay = {id(p) for p in model.embedding_parameters()}
    return torch.optim.AdamW(
        flatten_groups(decay_groups(model.parameters(), no_decay, cfg.weight_decay)),
        lr=lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        fused=fused_adamw(device),
    )


def lr_at(step: int, peak_lr: float, cfg: OptimConfig, total_steps: int) -> float:
    """Linear warmup to peak_lr over warmup_steps, then cosine decay to peak_lr * min_lr_ratio at
    total_steps, or (schedule wsd) peak_lr until the final decay (decay_lr)."""
    if step < cfg.warmup_steps:
        return peak_lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "wsd":
        return decay_lr(step, peak_lr, cfg, total_steps)
    floor = peak_lr * cfg.min_lr_ratio
    decay_steps = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    return floor + 0.5 * (peak_lr - floor) * (1.0 + math.cos(math.pi * progress))


def decay_start(end_step: int, cfg: OptimConfig) -> int:
    """First step of a wsd decay that ends at end_step: the last decay_fraction of the steps."""
    return max(cfg.warmup_steps, end_step - max(1, round(cfg.decay_fraction * end_step)))


def decay_lr(step: int, peak_lr: float, cfg: OptimConfig, end_step: int) -> float:
    """Warmup-stable-decay after warmup: peak_lr until decay_start, then down to peak_lr * min_lr_ratio
    at end_step along 1 - sqrt(progress), the cooldown shape Hägele et al. 2024 found best."""
    start = decay_start(end_step, cfg)
    if step < start:
        return peak_lr
    progress = min(1.0, (step - start + 1) / max(1, end_step - start))
    floor = peak_lr * cfg.min_lr_ratio
    return floor + (peak_lr - floor) * (1.0 - math.sqrt(progress))


def flat_optimizer_state(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """An optimizer state_dict for `optimizer` (flat groups, flatten_groups) from `saved`: as it is when
    its groups already match, else one from before the groups were flat (a checkpoint of an earlier
    version: one state per tensor, in the same order), each moment concatenated into its group's flat
    tensor, so such a run resumes. The current optimizer's own settings (fused or not) are kept."""
    current = optimizer.state_dict()
    if [len(g["params"]) for g in saved["param_groups"]] == [len(g["params"]) for g in current["param_groups"]]:
        return saved
    old_groups = [g for g in saved["param_groups"] if g["params"]]
    if len(old_groups) != len(current["param_groups"]):
        raise ValueError("the checkpoint's optimizer has other parameter groups than this run's")
    state, groups = {}, []
    for old, new, flat in zip(old_groups, current["param_groups"], (g["params"][0] for g in optimizer.param_groups)):
        (flat_id,) = new["params"]
        per_tensor = [saved["state"].get(i) for i in old["params"]]
        if all(per_tensor):
            state[flat_id] = {"step": per_tensor[0]["step"].clone()} | {
                key: torch.cat([s[key].flatten() for s in per_tensor]) for key in ("exp_avg", "exp_avg_sq")}
            if state[flat_id]["exp_avg"].numel() != flat.numel():
                raise ValueError("the checkpoint's optimizer state is of other parameter shapes than this run's")
        elif any(per_tensor):
            raise ValueError("the checkpoint's optimizer holds state for only some parameters of a group")
        groups.append({**old, "params": [flat_id], **{k: new[k] for k in ("fused", "foreach") if k in new}})
    return {"state": state, "param_groups": groups}
