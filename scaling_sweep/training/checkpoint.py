"""checkpoint.pt: the state a run resumes from (model, optimizer, RNG, sampler position, loop state),
written atomically, and refused when it belongs to a run of another config."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from omegaconf import OmegaConf

from scaling_sweep.core.config import ConfigError, RunConfig
from scaling_sweep.core.files import atomic_path
from scaling_sweep.core.runfiles import CHECKPOINT_FILE

# Keys that may change between a run and its resumption without changing what is trained.
RESUMABLE_KEYS = {"train.progress", "device"}


def flat_config(cfg: RunConfig) -> dict:
    """The resolved config as {"section.key": value}, to compare a run with its checkpoint."""
    return _flatten(OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True))


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def save_checkpoint(run_dir: Path, cfg: RunConfig, step, sampler, loop_state) -> None:
    payload = {
        "model": step.model.state_dict(),
        "optimizer": step.optimizer.state_dict(),
        "state": asdict(loop_state) | {"rates": []},
        "rng": torch.get_rng_state(),
        "sampler": sampler.state_dict(),
        "config": flat_config(cfg),
    }
    with atomic_path(run_dir / CHECKPOINT_FILE) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(run_dir: Path, cfg: RunConfig, step, sampler, device: torch.device) -> dict | None:
    """Restore model, optimizer, RNG and sampler from run_dir's checkpoint; returns the loop state
    saved with it, or None when there is no checkpoint."""
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    payload = torch.load(path, map_location=device, weights_only=False)
    changed = [
        f"{key}: {payload['config'].get(key)!r} -> {value!r}"
        for key, value in flat_config(cfg).items()
        if key not in RESUMABLE_KEYS and payload["config"].get(key) != value
    ]
    if changed:
        raise ConfigError(
            f"{run_dir} holds a checkpoint of a different run ({'; '.join(changed[:3])}); "
            "choose another run_name or delete that folder"
        )
    step.model.load_state_dict(payload["model"])
    step.optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["rng"].cpu())
    sampler.load_state_dict(payload["sampler"])
    return payload["state"]
