"""Data parallelism under torchrun: process group, DDP wrapping, and no-sync micro-steps.

The global batch (train.batch_size) is split across ranks, so the optimizer step, the
token count and the FLOP count do not depend on the world size.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel

from scaling_sweep.training import hardware


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def setup(device_name: str) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPU, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = hardware.resolve_device(device_name)
    if world_size == 1:
        return DistInfo(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, device=device)


def wrap(model: torch.nn.Module, dist: DistInfo) -> torch.nn.Module:
    if dist.world_size == 1:
        return model
    return DistributedDataParallel(model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)


def maybe_no_sync(model: torch.nn.Module, sync: bool):
    """Skip DDP's gradient all-reduce on all but the last micro-step of an accumulation."""
    if sync or not isinstance(model, DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def teardown(dist: DistInfo) -> None:
    if dist.world_size > 1 and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def all_sum(value: torch.Tensor, dist: DistInfo) -> torch.Tensor:
    """The sum of a per-rank tensor over all ranks."""
    if dist.world_size == 1:
        return value
    value = value.clone()
    torch_dist.all_reduce(value, op=torch_dist.ReduceOp.SUM)
    return value


def all_mean(value: torch.Tensor, dist: DistInfo) -> torch.Tensor:
    """The mean of a per-rank scalar over all ranks (each rank saw its slice of the batch)."""
    return all_sum(value, dist) / dist.world_size
