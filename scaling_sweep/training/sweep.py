"""Sweeps as Hydra multiruns: data prepared once before the jobs, and the grid a sweep file defines.

`python -m scaling_sweep.sweep [NAME ...]` prints each sweep's grid (what varies, N range,
tokens per run, total FLOPs) without training anything.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from scaling_sweep.core import accounting, budget
from scaling_sweep.core.config import ConfigError, DataConfig, RunConfig, TokenizerConfig, config_dir, register_configs
from scaling_sweep.core.errors import USER_ERROR_EXIT, UserError, entry_point, print_error
from scaling_sweep.data.tokens import prepare_tokens


class PrepareDataOnce(Callback):
    """Tokenize the sweep's corpus before any job starts, so parallel jobs only read the cache. Data
    out of reach ends the sweep here, before any job, with one line."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        data = DataConfig(**OmegaConf.to_container(config.data, resolve=True))
        tokenizer = TokenizerConfig(**OmegaConf.to_container(config.tokenizer, resolve=True))
        try:
            prepare_tokens(data, tokenizer)
        except UserError as err:
            print_error("train", err)
            sys.exit(USER_ERROR_EXIT)


def sweep_names(user_dir: Path | None = None) -> list[str]:
    """Sweeps in the shipped config tree and, when given, in a user's --config-dir."""
    dirs = [config_dir(), *([Path(user_dir)] if user_dir else [])]
    return sorted({p.stem for d in dirs for p in (d / "sweep").glob("*.yaml")})


def _search_path(user_dir: Path | None) -> list[str]:
    """The override that adds a user's config folder, as --config-dir does for training."""
    return [f"hydra.searchpath=[file://{Path(user_dir).resolve()}]"] if user_dir else []


def sweep_params(name: str, overrides: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """The sweep file's hydra.sweeper.params: each swept key and its values."""
    register_configs()
    with initialize_config_dir(str(config_dir()), version_base=None):
        base = compose("config", overrides=[f"+sweep={name}", *overrides], return_hydra_config=True)
    return {key: str(values).split(",") for key, values in OmegaConf.to_container(base.hydra.sweeper.params).items()}


def grid(name: str, overrides: tuple[str, ...] = (), params: dict[str, list[str]] | None = None) -> list[RunConfig]:
    """The run configs of sweep `name`: the cartesian product of its sweeper params (pass
    `params` when sweep_params(name, overrides) is already at hand)."""
    params = sweep_params(name, overrides) if params is None else params
    axes = [[f"{key}={value}" for value in values] for key, values in params.items()]
    with initialize_config_dir(str(config_dir()), version_base=None):
        return [
            OmegaConf.to_object(compose("config", overrides=[f"+sweep={name}", *overrides, *point]))
            for point in itertools.product(*axes)
        ]


def describe(name: str, runs: list[RunConfig]) -> dict:
    counts = [accounting.non_embedding_params(r.model) for r in runs]
    tokens = [planned_tokens(r, n) for r, n in zip(runs, counts)]
    flops = sum(accounting.training_flops(n, t) for n, t in zip(counts, tokens))
    return {
        "sweep": name,
        "runs": len(runs),
        "N_min": min(counts),
        "N_max": max(counts),
        "tokens_min": min(tokens),
        "tokens_max": max(tokens),
        "total_flops": flops,
    }


def planned_tokens(cfg: RunConfig, n_params: int) -> int:
    return budget.planned_steps(cfg, n_params) * cfg.train.batch_size * cfg.model.n_ctx


@entry_point("sweep")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling_sweep.sweep",
                                     description="Print the grid of each sweep (no training).")
    parser.add_argument("names", nargs="*", help=f"sweeps to show (default: all of {', '.join(sweep_names())})")
    parser.add_argument("--list", action="store_true", help="also list every run of each sweep")
    parser.add_argument("--config-dir", type=Path, help="a folder of your own configs (as train's --config-dir)")
    args = parser.parse_args(argv)
    if args.config_dir and not args.config_dir.is_dir():
        parser.error(f"--config-dir {args.config_dir}: no such folder")
    known = sweep_names(args.config_dir)
    if unknown := [name for name in args.names if name not in known]:
        raise ConfigError(f"{', '.join(unknown)}: no such sweep; choose among {', '.join(known)}")
    extra = tuple(_search_path(args.config_dir))
    print("| sweep | varies | runs | N (non-embedding) | tokens per run | total C = 6ND (FLOPs) | PF-days |")
    print("|---|---|---|---|---|---|---|")
    for name in args.names or known:
        params = sweep_params(name, extra)
        runs = grid(name, extra, params=params)
        row = describe(name, runs)
        varies = ", ".join(f"{key} ({len(values)})" for key, values in params.items())
        print(
            f"| {name} | {varies} | {row['runs']} | {row['N_min']:.3g} .. {row['N_max']:.3g} | "
            f"{row['tokens_min']:.3g} .. {row['tokens_max']:.3g} | {row['total_flops']:.3g} | "
            f"{accounting.pf_days(row['total_flops']):.3g} |"
        )
        if args.list:
            print_runs(runs)
    return 0


def print_runs(runs: list[RunConfig]) -> None:
    for cfg in runs:
        n = accounting.non_embedding_params(cfg.model)
        print(f"    {cfg.run_name:<40} N={n:.3g}  tokens<={planned_tokens(cfg, n):.3g}  "
              f"batch={cfg.train.batch_size}x{cfg.model.n_ctx}")
