"""One optimizer step over a global batch: the training loop's inner work, on its own.

It takes (model, optimizer, batch) rather than a whole run, so the throughput benchmark
(scripts/bench_throughput.py) times exactly the step that training runs.
"""

from __future__ import annotations

import torch

from scaling_sweep import distributed


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
    model: torch.nn.Module,
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

    `train_model` is the compiled and/or DDP-wrapped view of `model`; gradients are clipped
    over `model`'s parameters. Nothing here waits for the device.
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
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else float("inf"))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total_loss, grad_norm
