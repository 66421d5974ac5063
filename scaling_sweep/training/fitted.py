"""`optim.lr=fitted` and `train.batch_size=fitted`: a run's peak LR and batch size from the hyperparameter laws
of an `analyze --hparams` fits.json (`hparams_fits=PATH`), evaluated at the run's N (non-embedding parameters,
as a sweep's summaries count it) and D (its training tokens, fixed by train.compute_budget, train.max_tokens or,
for the LR alone, train.max_steps at its batch). The values are resolved before the run is validated, so
the checkpoint holds them: a relaunch after the fits file changed is refused as a run of another config.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from scaling_sweep.core import accounting
from scaling_sweep.core.config import ConfigError, RunConfig
from scaling_sweep.core.errors import UserError
from scaling_sweep.core.hparam_laws import optimal_hparams

FITTED = "fitted"


def _check_value(key: str, value, kind: type) -> None:
    if isinstance(value, str) and value != FITTED:
        raise ConfigError(f"{key}={value!r} must be a {kind.__name__}, or {FITTED} (from hparams_fits)")


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
    """D of the laws: the fewest training tokens among the run's stop rules that fix it."""
    t = cfg.train
    limits = [t.compute_budget / accounting.training_flops(n_params, 1)] if t.compute_budget else []
    limits += [t.max_tokens] if t.max_tokens else []
    if isinstance(t.batch_size, int):
        limits.append(t.max_steps * t.batch_size * cfg.model.n_ctx)
    if not limits:
        raise ConfigError("train.batch_size=fitted needs the run's tokens fixed by train.compute_budget or "
                          "train.max_tokens (the batch law is a law of D)")
    return float(min(limits))


def _sequences(batch: float, unit: str, cfg: RunConfig) -> int:
    """The fitted batch in sequences of n_ctx tokens, a multiple of train.micro_batch_size where set."""
    if unit != "tokens":
        raise ConfigError(f"train.batch_size=fitted needs a fit whose batch is in tokens (analyze --hparams on a "
                          f"sweep folder, or a grid file with a batch_tokens column); this one's is in {unit}")
    step = cfg.train.micro_batch_size or 1
    return max(step, step * round(batch / cfg.model.n_ctx / step))


def resolve(cfg: RunConfig) -> tuple[RunConfig, dict | None]:
    """The config with its fitted values in place, and what they were fitted from (None: nothing fitted)."""
    _check_value("optim.lr", cfg.optim.lr, float)
    _check_value("train.batch_size", cfg.train.batch_size, int)
    lr_fitted, batch_fitted = cfg.optim.lr == FITTED, cfg.train.batch_size == FITTED
    if not (lr_fitted or batch_fitted):
        return cfg, None
    which = " and ".join(k for k, f in (("optim.lr", lr_fitted), ("train.batch_size", batch_fitted)) if f)
    if not cfg.hparams_fits:
        raise ConfigError(f"{which}=fitted needs hparams_fits=PATH: the fits.json of analyze --hparams")
    fits = _read_fits(cfg.hparams_fits)
    n_params = accounting.non_embedding_params(cfg.model)
    tokens = run_tokens(cfg, n_params)
    try:
        lr, batch, source = optimal_hparams(fits, n_params, tokens)
    except (UserError, KeyError, TypeError, ValueError) as err:  # what the file lacks, or a malformed entry
        raise ConfigError(f"hparams_fits={cfg.hparams_fits}: {err}") from None
    record = {"file": str(cfg.hparams_fits), "laws": source, "N": n_params, "D": tokens}
    optim, train = cfg.optim, cfg.train
    if lr_fitted:
        optim = replace(optim, lr=lr)
        record["lr"] = lr
    if batch_fitted:
        train = replace(train, batch_size=_sequences(batch, fits["hparams"].get("batch_unit", ""), cfg))
        record |= {"batch_tokens_fitted": batch, "batch_size": train.batch_size}
    return replace(cfg, optim=optim, train=train), record
