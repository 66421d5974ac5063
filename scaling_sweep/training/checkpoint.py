"""checkpoint.pt: the state a run resumes from (model, optimizer, RNG, sampler position, loop state).

A new checkpoint is written beside the last (temp file, fsync, rename) and the last is kept as
checkpoint.prev.pt, so a damaged checkpoint.pt costs one checkpoint interval: it is set aside and
the run resumes from the previous one. A checkpoint holds tensors and plain values only and is
loaded with ``weights_only=True``: a pickled object that would run code is refused, and never run.
A checkpoint of a run of another config is refused too.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from omegaconf import OmegaConf

from scaling_sweep.core.config import ConfigError, RunConfig
from scaling_sweep.core.errors import UserError
from scaling_sweep.core.files import atomic_path
from scaling_sweep.core.runfiles import CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, read_metrics
from scaling_sweep.training.optim import flat_optimizer_state

# Keys that may change between a run and its resumption without changing what is trained.
RESUMABLE_KEYS = {"train.progress", "device", "train.peak_flops", "train.peak_trial_s"}  # the last two: MFU only
PAYLOAD_KEYS = {"model", "optimizer", "state", "rng", "sampler", "config"}
# How torch.load(weights_only=True) names a global it refused to import (allowlist or blocklist).
UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module)")


class CheckpointError(UserError):
    """A checkpoint that cannot be written, or none of a run's checkpoints that can be read."""


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
    """Write the run's state as checkpoint.pt, the one before becoming checkpoint.prev.pt. A failed
    write (a full disk) leaves the earlier checkpoints as they were and raises CheckpointError."""
    latest, previous = run_dir / CHECKPOINT_FILE, run_dir / PREVIOUS_CHECKPOINT_FILE
    payload = {
        "model": step.model.state_dict(),
        "optimizer": step.optimizer.state_dict(),
        "state": asdict(loop_state) | {"rates": []},
        "rng": torch.get_rng_state(),
        "sampler": sampler.state_dict(),
        "config": flat_config(cfg),
    }
    try:
        with atomic_path(latest) as tmp:
            with open(tmp, "wb") as f:  # through a Python file, a full disk is an OSError naming its cause
                torch.save(payload, f)
            if latest.exists():
                os.replace(latest, previous)
    except OSError as err:
        kept = ("the last good checkpoint is kept, and relaunching resumes from it"
                if latest.exists() or previous.exists() else "no checkpoint was written before")
        reason = err.strerror or err
        raise CheckpointError(f"cannot write {latest} at step {loop_state.step} ({reason}); {kept}") from None


def read_checkpoint(run_dir: Path, cfg: RunConfig, device: torch.device, set_aside: bool = True) -> dict | None:
    """The state of run_dir's checkpoint, read before anything is built so that a bad one fails
    fast; None when there is none. An unreadable checkpoint.pt is renamed (when ``set_aside``: DDP
    ranks other than the first leave that to it) and the previous one used, with one line saying
    what that cost; CheckpointError when none is readable, ConfigError when it is another run's."""
    payload = _usable_payload(run_dir, device, set_aside)
    if payload is None:
        return None
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
    return payload


def restore(payload: dict, step, sampler) -> dict:
    """Put a checkpoint's model, optimizer, RNG and sampler state back; returns its loop state."""
    step.model.load_state_dict(payload["model"])
    try:
        step.optimizer.load_state_dict(flat_optimizer_state(payload["optimizer"], step.optimizer))
    except ValueError as err:
        raise CheckpointError(f"the checkpoint cannot be resumed by this version ({err}); "
                              "delete the run folder to train it anew") from None
    torch.set_rng_state(payload["rng"].cpu())
    sampler.load_state_dict(payload["sampler"])
    return payload["state"]


def _usable_payload(run_dir: Path, device: torch.device, set_aside: bool) -> dict | None:
    latest, previous = run_dir / CHECKPOINT_FILE, run_dir / PREVIOUS_CHECKPOINT_FILE
    if not latest.exists():  # none yet, or killed between the two renames of a save
        return _read(previous, device) if previous.exists() else None
    try:
        return _read(latest, device)
    except CheckpointError as err:
        damaged = err
    if not previous.exists():
        raise CheckpointError(f"{damaged}; there is no earlier checkpoint: move it away to train this run from step 0")
    try:
        payload = _read(previous, device)
    except CheckpointError as err:
        raise CheckpointError(f"{damaged}; {err}") from None
    if set_aside:
        aside = latest.rename(latest.with_name(f"{latest.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}"))
        print(f"warning: {damaged}; set aside as {aside.name}; {_cost(run_dir, payload['state']['step'])}",
              file=sys.stderr, flush=True)
    return payload


def _read(path: Path, device: torch.device) -> dict:
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # damage surfaces as whichever error the layer that meets it raises (zip, pickle, I/O)
        raise CheckpointError(f"{path}: {_load_failure(err)}") from None
    missing = PAYLOAD_KEYS - payload.keys() if isinstance(payload, dict) else PAYLOAD_KEYS
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint of this trainer (no {', '.join(sorted(missing))})")
    return payload


def _load_failure(err: Exception) -> str:
    text = str(err)
    if unsafe := UNSAFE_GLOBAL.search(text):
        return (f"refused: it holds a pickled {unsafe[1]}, and loading that could run any code; nothing of it "
                "was run (a checkpoint holds tensors and plain values only)")
    if text.startswith("Weights only load failed"):  # torch puts the unpickler's reason between advice and a link
        parts = text.split("\n\n")
        text = parts[-2] if len(parts) > 2 else text
    return f"unreadable ({type(err).__name__}: {(text.strip().splitlines() or ['no detail'])[0]})"


def _cost(run_dir: Path, step: int) -> str:
    logged = max((row.step for row in read_metrics(run_dir)[0]), default=step)
    return (f"resuming from {PREVIOUS_CHECKPOINT_FILE} at step {step}: the {logged - step} steps logged after it "
            f"(up to step {logged}) are trained again")
