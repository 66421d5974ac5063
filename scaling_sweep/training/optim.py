"""AdamW with GPT-style decay groups, and the warmup + cosine learning-rate schedule."""

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


def build_optimizer(model: GPT, cfg: OptimConfig, lr: float, device: torch.device) -> torch.optim.AdamW:
    """Decoupled weight decay on the matmul weights only: not on norms, biases or embeddings."""
    no_decay = {id(p) for p in model.embedding_parameters()}
    return torch.optim.AdamW(
        decay_groups(model.parameters(), no_decay, cfg.weight_decay),
        lr=lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        fused=device.type == "cuda",
    )


def lr_at(step: int, peak_lr: float, cfg: OptimConfig, total_steps: int) -> float:
    """Linear warmup to peak_lr over warmup_steps, then cosine decay to peak_lr * min_lr_ratio."""
    if step < cfg.warmup_steps:
        return peak_lr * (step + 1) / cfg.warmup_steps
    decay_steps = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    floor = peak_lr * cfg.min_lr_ratio
    return floor + 0.5 * (peak_lr - floor) * (1.0 + math.cos(math.pi * progress))
