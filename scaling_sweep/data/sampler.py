"""Batches from a token array: random training windows that resume exactly, and a fixed
held-out set of validation windows."""

from __future__ import annotations

import numpy as np
import torch

from scaling_sweep.core.config import ConfigError


class BatchSampler:
    """Random training windows; batch ``step`` is a pure function of (seed, step), so resuming is exact.

    The global batch of ``batch_size`` windows is drawn identically on every rank and each rank
    keeps its contiguous slice, so the data seen does not depend on the number of processes.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        batch_size: int,
        n_ctx: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ):
        if len(tokens) < n_ctx + 1:
            raise ConfigError(
                f"the training split has {len(tokens)} tokens, fewer than model.n_ctx+1={n_ctx + 1}; "
                "lower model.n_ctx, raise train.max_unique_tokens or use more data"
            )
        if batch_size % world_size:
            raise ConfigError(f"train.batch_size={batch_size} is not divisible by the {world_size} processes")
        self.tokens, self.batch_size, self.n_ctx, self.seed = tokens, batch_size, n_ctx, seed
        self.rank, self.world_size, self.pin_memory = rank, world_size, pin_memory
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = np.random.default_rng([self.seed, self.step]).integers(
            0, len(self.tokens) - self.n_ctx, self.batch_size
        )
        per_rank = self.batch_size // self.world_size
        starts = starts[self.rank * per_rank : (self.rank + 1) * per_rank]
        self.step += 1
        return _windows(self.tokens, starts, self.n_ctx, self.pin_memory)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.step = state["seed"], state["step"]


def _windows(
    tokens: np.ndarray, starts: np.ndarray, n_ctx: int, pin_memory: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.from_numpy(tokens[starts[:, None] + np.arange(n_ctx + 1)].astype(np.int64))
    x, y = w[:, :-1].contiguous(), w[:, 1:].contiguous()
    return (x.pin_memory(), y.pin_memory()) if pin_memory else (x, y)


def validation_batches(
    val_tokens: np.ndarray, n_ctx: int, n_windows: int, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed set of evenly spaced held-out windows (at most one per start position), in batches."""
    n_starts = len(val_tokens) - n_ctx
    if n_starts < 1:
        raise ConfigError(
            f"the validation split has {len(val_tokens)} tokens, fewer than model.n_ctx+1={n_ctx + 1}; "
            "raise data.val_fraction or lower model.n_ctx"
        )
    starts = np.linspace(0, n_starts - 1, min(n_windows, n_starts)).round().astype(np.int64)
    return [
        _windows(val_tokens, starts[i : i + batch_size], n_ctx) for i in range(0, len(starts), batch_size)
    ]
