"""One optimizer step over a global batch: the training loop's inner work, on its own.

:func:`build_training_step` builds the model, its optimizer and the step from the configs;
training and the throughput benchmark (scripts/bench_throughput.py) both call it, so the
benchmark times exactly the step that training runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scaling_sweep.core.config import ModelConfig, OptimConfig
from scaling_sweep.training import distributed
from scaling_sweep.training.model import GPT
from scaling_sweep.training.optim import build_optimizer


@dataclass
class TrainingStep:
    """A model, its optimizer and how one step over a global batch runs; call it with (x, y)."""

    model: GPT
    train_model: torch.nn.Module  # compiled and/or DDP-wrapped view of model
    optimizer: torch.optim.Optimizer
    device: torch.device
    dtype: str
    micro_batch_size: int | None
    grad_clip: float

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return optimizer_step(self.train_model, self.optimizer, x, y, device=self.device,
                              dtype=self.dtype, micro_batch_size=self.micro_batch_size, grad_clip=self.grad_clip)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr


def build_training_step(model_cfg: ModelConfig, vocab_size: int, optim_cfg: OptimConfig, lr: float, *,
                        device: torch.device, dtype: str, compile_model: bool, micro_batch_size: int | None,
                        seed: int, dist: distributed.DistInfo | None = None) -> TrainingStep:
    """The model initialised from `seed`, AdamW at peak `lr`, compiled and DDP-wrapped as asked."""
    torch.manual_seed(seed)
    model = GPT(model_cfg, vocab_size).to(device)
    optimizer = build_optimizer(model, optim_cfg, lr, device)  # before DDP, which then sees the flat views
    train_model = compile_for_training(model) if compile_model else model
    if dist is not None:
        train_model = distributed.wrap(train_model, dist)
    return TrainingStep(model, train_model, optimizer, device, dtype, micro_batch_size, optim_cfg.grad_clip)


def autocast(device: torch.device, dtype: str):
    """bf16 autocast when the run's dtype is bf16; a no-op context in fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")


def compile_for_training(model: torch.nn.Module) -> torch.nn.Module:
    """torch.compile with static shapes: every micro-batch has one shape, so one graph serves the
    whole run and nothing in it depends on a shape guard (the form CUDA graphs need too)."""
    return torch.compile(model, dynamic=False)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host batch to the device without blocking the host: a copy from pinned, contiguous memory.

    A pageable or strided source (the sampler's x and y are views of one window tensor) would
    make the copy synchronous, so it is first gathered into pinned memory (a few hundred kB).
    """
    if device.type != "cuda" or t.device == device:
        return t
    if not (t.is_pinned() and t.is_contiguous()):
        t = t.contiguous().pin_memory()
    return t.to(device, non_blocking=True)


def optimizer_step(
    train_model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    device: torch.device,
    dtype: str,
    micro_batch_size: int | None,
    grad_clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward/backward over micro-batches of (x, y), clip, step; returns (mean loss, grad norm) on device.

    `train_model` is the model, compiled and/or DDP-wrapped; gradients are clipped over the
    optimizer's parameters (the flat tensors whose views the model's are: optim.flatten_groups),
    and zeroed in place, never set to None, so those views stay views. Nothing here waits for the device.
    """
    x, y = to_device(x, device), to_device(y, device)
    micro = micro_batch_size or x.shape[0]
    micro = min(micro, x.shape[0])
    chunks = list(zip(x.split(micro), y.split(micro)))
    total_loss = torch.zeros((), device=device)
    for i, (xb, yb) in enumerate(chunks):
        sync = i == len(chunks) - 1
        with distributed.maybe_no_sync(train_model, sync), autocast(device, dtype):
            _, loss = train_model(xb, yb)
            loss = loss / len(chunks)
        loss.backward()
        total_loss += loss.detach()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)
    return total_loss, grad_norm
