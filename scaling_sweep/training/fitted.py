"""`optim.lr=fitted` and `train.batch_size=fitted`: a run's peak LR and batch size from the hyperparameter laws
of an `analyze --hparams` fits.json (`hparams_fits=PATH`), evaluated at the run's N (non-embedding parameters,
as a sweep's summaries count it) and D (its training tokens: the fewest that train.compute_budget,
train.stop_at=compute_optimal, train.max_tokens and, for the LR alone, train.max_steps at its batch allow).
The values are resolved before the run is validated, so the checkpoint holds them: a relaunch after the fits
file changed is refused as a run of another config.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

from scaling_sweep.core import accounting, budget
from scaling_sweep.core.config import ConfigError, RunConfig
from scaling_sweep.core.errors import UserError
from scaling_sweep.core.hparam_laws import optimal_hparams
from scaling_sweep.data.tokenizer import vocab_size

FITTED = "fitted"


def _given(key: str, value, kind: type):
    """The value as `kind` (Hydra reads optim.lr=1 as an int and a quoted '0.004' as a string), or FITTED."""
    if value == FITTED or value is None:
        return value
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} must be a {kind.__name__}, or {FITTED} (from hparams_fits)") from None


def _read_fits(path: str) -> dict:
    file = Path(path).expanduser()
    try:
        fits = json.loads(file.read_text())
    except OSError as err:
        raise ConfigError(f"hparams_fits={path}: cannot read it ({err.strerror or err})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"hparams_fits={path}: not JSON ({err})") from None
    if not isinstance(fits, dict):
        raise ConfigError(f"hparams_fits={path}: not a fits.json object")
    return fits


def run_tokens(cfg: RunConfig, n_params: int) -> float:
    """D of the laws: the fewest training tokens among the run's stop rules that fix it without the batch."""
    t = cfg.train
    limits = [t.compute_budget / accounting.training_flops(n_params, 1)] if t.compute_budget else []
    if t.stop_at == "compute_optimal" and t.compute_budget:
        n_total = accounting.param_counts(cfg.model, cfg.model.vocab_size or vocab_size(cfg.tokenizer)).total
        optimal = budget.stop_tokens(n_params, t.compute_budget, n_total=n_total)[0]
        limits += [optimal] if optimal > 0 else []  # 0: too large for its budget, the run stops at once
    limits += [t.max_tokens] if t.max_tokens else []
    if t.batch_size != FITTED:
        limits.append(t.max_steps * t.batch_size * cfg.model.n_ctx)
    if not limits:
        raise ConfigError("train.batch_size=fitted needs the run's tokens fixed by train.compute_budget or "
                          "train.max_tokens (the batch law is a law of D)")
    return float(min(limits))


def _sequences(batch: float, unit: str, cfg: RunConfig) -> int:
    """The fitted batch in sequences of n_ctx tokens, a multiple of train.micro_batch_size and of the processes."""
    if unit != "tokens":
        raise ConfigError(f"train.batch_size=fitted needs a fit whose batch is in tokens (analyze --hparams on a "
                          f"sweep folder, or a grid file with a batch_tokens column); this one's is in {unit}")
    if not (math.isfinite(batch) and batch > 0):
        raise ConfigError(f"hparams_fits={cfg.hparams_fits}: its batch law gives {batch} tokens at this run's N and D")
    step = math.lcm(cfg.train.micro_batch_size or 1, int(os.environ.get("WORLD_SIZE", "1")))
    return max(step, step * round(batch / cfg.model.n_ctx / step))


def _check_steps(cfg: RunConfig, tokens: float) -> None:
    """A fitted batch is the law's for D tokens: train.max_steps must not stop the run before them."""
    reach = cfg.train.max_steps * cfg.train.batch_size * cfg.model.n_ctx
    if reach < tokens:
        raise ConfigError(f"train.max_steps={cfg.train.max_steps} stops the run at {reach:,} tokens, before the "
                          f"{tokens:,.0f} its fitted batch is for: raise train.max_steps")


def resolve(cfg: RunConfig) -> tuple[RunConfig, dict | None]:
    """The config with its fitted values in place, and what they were fitted from (None: nothing fitted)."""
    cfg = replace(cfg, optim=replace(cfg.optim, lr=_given("optim.lr", cfg.optim.lr, float)),
                  train=replace(cfg.train, batch_size=_given("train.batch_size", cfg.train.batch_size, int)))
    targets = tuple(t for t, value in (("lr", cfg.optim.lr), ("batch", cfg.train.batch_size)) if value == FITTED)
    if not targets:
        return cfg, None
    keys = " and ".join({"lr": "optim.lr", "batch": "train.batch_size"}[t] for t in targets)
    if not cfg.hparams_fits:
        raise ConfigError(f"{keys}=fitted needs hparams_fits=PATH: the fits.json of analyze --hparams")
    fits = _read_fits(cfg.hparams_fits)
    n_params = accounting.non_embedding_params(cfg.model)
    tokens = run_tokens(cfg, n_params)
    try:
        lr, batch, source = optimal_hparams(fits, n_params, tokens, targets)
    except (UserError, KeyError, TypeError, ValueError) as err:  # what the file lacks, or a malformed entry
        raise ConfigError(f"hparams_fits={cfg.hparams_fits}: {err}") from None
    record = {"file": str(cfg.hparams_fits), "laws": source, "N": n_params, "D": tokens}
    if lr is not None:
        cfg = replace(cfg, optim=replace(cfg.optim, lr=lr))
        record["lr"] = lr
    if batch is not None:
        cfg = replace(cfg, train=replace(cfg.train, batch_size=_sequences(batch, fits["hparams"].get("batch_unit", ""),
                                                                          cfg)))
        _check_steps(cfg, tokens)
        record |= {"batch_tokens_fitted": batch, "batch_size": cfg.train.batch_size}
    return cfg, record
