"""Sweeps as Hydra multiruns: data prepared once before the jobs, and the grid a sweep file defines.

`python -m scaling_sweep.sweep [NAME ...] [--list]` prints each sweep's grid (what varies, N range,
tokens per run, total FLOPs, device-hours at an assumed peak and MFU) without training anything; --list
adds every run's shape, steps, tokens and device-hours.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from scaling_sweep.core import accounting, budget, hardware_peaks, runfiles
from scaling_sweep.core.config import ConfigError, DataConfig, RunConfig, TokenizerConfig, config_dir, register_configs
from scaling_sweep.core.errors import USER_ERROR_EXIT, UserError, entry_point, print_error
from scaling_sweep.data.tokenizer import vocab_size
from scaling_sweep.data.tokens import prepare_tokens
from scaling_sweep.training import fitted
from scaling_sweep.training.launch import EXIT_CODES, RESUME, STOP, Launch

DEFAULT_DEVICE, DEFAULT_MFU = "h100", 0.4  # the device-hours' assumption unless --device/--peak and --mfu say


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


class RecordLaunch(Callback):
    """Keep the launch's folder in the sweep folder (training.launch.Launch), named to the jobs by the environment
    before any starts: every job reaches it, in launcher workers (joblib, Ray) or on other nodes (SLURM), which
    inherit the sweep's environment but share neither its memory nor its /tmp. From now on a signal asks the
    jobs to stop (the launcher waits for them) instead of raising here."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        STOP.launching(Launch.create(Path(config.hydra.sweep.dir)))
        try:
            plans = planned_jobs(config)
        except Exception:  # noqa: BLE001 - a display must not stop the sweep: a bad job says why when it runs
            return
        STOP.launch.progress = SweepProgress(config.hydra.sweep.dir, plans, STOP.launch)
        STOP.launch.progress.start()


def planned_jobs(config: DictConfig) -> dict[str, PlannedRun]:
    """The sweep's runs by run folder, each as its config plans it: the grid the basic sweeper expands."""
    hydra = OmegaConf.to_container(config.hydra, resolve=False)  # an override's ${...} is its job's, not the launch's
    params = [f"{key}={value}" for key, value in (hydra["sweeper"]["params"] or {}).items()]
    overrides = OverridesParser.create().parse_overrides([*params, *hydra["overrides"]["task"]])
    (jobs,) = BasicSweeper.split_arguments(overrides, None)
    plans = [plan_run(OmegaConf.to_object(compose(config.hydra.job.config_name, overrides=job))) for job in jobs]
    return {str((Path(config.hydra.sweep.dir) / plan.cfg.run_name).resolve()): plan for plan in plans}


class SweepProgress(threading.Thread):
    """The sweep's total as its jobs run: runs done of all, and an ETA, the exact FLOPs left of the planned
    tokens over the exact FLOP/s the running jobs measure. On a terminal a line above the jobs' bars; on plain
    logs a line each time a job ends."""

    def __init__(self, sweep_dir: str, plans: dict[str, PlannedRun], launch: Launch):
        super().__init__(daemon=True, name="sweep-progress")
        self.name_, self.plans, self.launch = Path(sweep_dir).name, plans, launch
        self.ended = threading.Event()
        self.job_rate: float | None = None  # exact FLOP/s of one job, as the running jobs last measured it

    def finish(self) -> None:
        """Show the end, and stop."""
        self.ended.set()
        self.join()

    def run(self) -> None:
        terminal = sys.stderr.isatty()
        while not self.launch.notes("started"):  # below the launcher's own lines
            if self.ended.wait(0.2):
                return
        if terminal:
            tqdm.set_lock(self.launch.terminal_lock())
        bar = tqdm(total=len(self.plans), position=0, disable=not terminal, bar_format="{desc}", leave=False)
        shown, last = None, False
        while not last:
            last = self.ended.is_set()  # once more after the end: the last job's end is shown too
            done = {str(Path(run).resolve()) for run, *_ in self.launch.notes("ended")}
            text = f"sweep {self.name_}: {len(done)} of {len(self.plans)} runs done; {self.eta(done)}"
            if terminal:
                bar.set_description_str(text)
            elif len(done) != shown:
                print(text, file=sys.stderr, flush=True)
            shown = len(done)
            if not last:
                self.ended.wait(1.0)
        bar.close()
        if terminal:  # the jobs' bars, drawn by other processes, may have left parts of lines below: cleared
            print(f"\r\x1b[J{text}", file=sys.stderr, flush=True)

    def eta(self, done: set[str]) -> str:
        """A job that has not measured its rate yet (just started, as others end) counts at the mean rate of
        those that have, or else at the last rate a job measured."""
        gone = {str(Path(run).resolve()) for kind in ("skipped", "stopped") for run, *_ in self.launch.notes(kind)}
        started = {str(Path(run).resolve()) for run, *_ in self.launch.notes("started")} - done - gone
        left, rates = 0.0, []
        for run_dir, plan in self.plans.items():
            summary = read_summary_quietly(Path(run_dir)) if run_dir in started or run_dir not in done else None
            tokens = summary.tokens or 0 if summary else 0
            if run_dir not in done:
                left += max(plan.tokens - tokens, 0) * plan.flops_exact_per_token
            if run_dir in started and summary and summary.tokens_per_s:
                rates.append(summary.tokens_per_s * plan.flops_exact_per_token)
        if not left:
            return "ETA now"
        self.job_rate = statistics.mean(rates) if rates else self.job_rate
        rate = self.job_rate * max(len(started), 1) if self.job_rate else 0.0
        return f"ETA {left / rate / 60:.1f} min at {rate:.3g} FLOP/s (exact)" if rate else "ETA once a run is measured"


def read_summary_quietly(run_dir: Path):
    try:
        return runfiles.read_summary(run_dir)
    except runfiles.RunFileError:
        return None


def note(kind: str, *fields) -> None:
    """Note how a job of this process's sweep ended (nothing outside a sweep)."""
    if STOP.launch is not None:
        STOP.launch.note(kind, *fields)


def end_of_launch(prog: str) -> int:
    """Print what the sweep this process launched left undone, one line each, and remove its folder; the exit
    code: 130 or 143 when it was interrupted or preempted, 2 when a user error skipped runs, else 0."""
    launch, reason = STOP.launch, STOP.reason
    if launch is None or not launch.is_launcher:
        return 0
    if launch.progress is not None:
        launch.progress.finish()
    skipped, stopped, unstarted = launch.notes("skipped"), launch.notes("stopped"), launch.notes("unstarted")
    launch.remove()
    code = 0
    if skipped:
        print(f"{prog}: {len(skipped)} run(s) of the sweep skipped: {', '.join(run for run, in skipped)}",
              file=sys.stderr)
        code = USER_ERROR_EXIT
    reason = reason or (stopped[0][1] if stopped else None)
    if reason is not None:
        runs = ", ".join(f"{Path(run).name} at step {step}" for run, _, step in stopped) or "no run had started"
        rest = f"; {len(unstarted)} run(s) not started" if unstarted else ""
        print(f"{prog}: sweep {reason}: stopped {runs}, each saved at that step{rest}; {RESUME}", file=sys.stderr)
        code = EXIT_CODES[reason]
    return code


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


@dataclass(frozen=True)
class PlannedRun:
    """What one run of a sweep will train, as its schedule plans it (early stopping may end it sooner)."""

    cfg: RunConfig
    counts: accounting.ParamCounts
    steps: int
    tokens: int
    flops_exact_per_token: float

    @property
    def flops(self) -> float:
        return accounting.training_flops(self.counts.non_embedding, self.tokens)

    def device_hours(self, flops_per_s: float) -> float:
        return self.flops_exact_per_token * self.tokens / flops_per_s / 3600


@dataclass(frozen=True)
class Throughput:
    """Exact FLOP/s (every matmul, as runs count MFU) that one device is assumed to sustain."""

    flops_per_s: float
    words: str


def plan_run(cfg: RunConfig) -> PlannedRun:
    cfg, _ = fitted.resolve(cfg)
    vocab = cfg.model.vocab_size or vocab_size(cfg.tokenizer)
    counts = accounting.param_counts(cfg.model, vocab)
    steps = budget.planned_steps(cfg, counts.non_embedding)
    return PlannedRun(cfg, counts, steps, steps * cfg.train.batch_size * cfg.model.n_ctx,
                      accounting.flops_per_token(cfg.model, vocab).exact)


def throughput(device: str, mfu: float, peak: float | None) -> Throughput:
    """A device's bf16 dense datasheet peak (or `peak` FLOP/s) times MFU."""
    if peak is not None:
        return Throughput(peak * mfu, f"a peak of {peak:.4g} FLOP/s at MFU {mfu:g}")
    sheet = hardware_peaks.DEVICE_PEAKS[device]
    words = f"the bf16 dense peak of one {sheet.product}, {sheet.bf16:.4g} FLOP/s, at MFU {mfu:g}"
    return Throughput(sheet.bf16 * mfu, words)


def describe(name: str, runs: list[PlannedRun], speed: Throughput) -> dict:
    counts = [r.counts.non_embedding for r in runs]
    tokens = [r.tokens for r in runs]
    return {
        "sweep": name,
        "runs": len(runs),
        "N_min": min(counts),
        "N_max": max(counts),
        "tokens_min": min(tokens),
        "tokens_max": max(tokens),
        "total_flops": sum(r.flops for r in runs),
        "device_hours": sum(r.device_hours(speed.flops_per_s) for r in runs),
    }


def mfu_fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: MFU is a fraction in (0, 1]")
    return value


def positive_flops(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: a peak is a positive number of FLOP/s")
    return value


@entry_point("sweep")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling_sweep.sweep",
                                     description="Print the grid of each sweep (no training).")
    parser.add_argument("names", nargs="*", help=f"sweeps to show (default: all of {', '.join(sweep_names())})")
    parser.add_argument("--list", action="store_true", help="also list every run of each sweep")
    parser.add_argument("--config-dir", type=Path, help="a folder of your own configs (as train's --config-dir)")
    devices = [name for name, sheet in hardware_peaks.DEVICE_PEAKS.items() if sheet.bf16]
    parser.add_argument("--device", choices=devices, default=DEFAULT_DEVICE,
                        help=f"device whose bf16 dense peak the device-hours assume (default {DEFAULT_DEVICE})")
    parser.add_argument("--peak", type=positive_flops, metavar="FLOP/S",
                        help="a device's peak FLOP/s, instead of --device's")
    parser.add_argument("--mfu", type=mfu_fraction, default=DEFAULT_MFU,
                        help=f"model FLOPs utilisation, exact FLOPs over the peak (default {DEFAULT_MFU})")
    args = parser.parse_args(argv)
    if args.config_dir and not args.config_dir.is_dir():
        parser.error(f"--config-dir {args.config_dir}: no such folder")
    known = sweep_names(args.config_dir)
    if unknown := [name for name in args.names if name not in known]:
        raise ConfigError(f"{', '.join(unknown)}: no such sweep; choose among {', '.join(known)}")
    extra = tuple(_search_path(args.config_dir))
    speed = throughput(args.device, args.mfu, args.peak)
    print(f"Device-hours: exact FLOPs over {speed.words}.\n")
    print("| sweep | varies | runs | N (non-embedding) | tokens per run | total C = 6ND (FLOPs) | PF-days "
          "| device-hours |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.names or known:
        params = sweep_params(name, extra)
        runs = [plan_run(cfg) for cfg in grid(name, extra, params=params)]
        row = describe(name, runs, speed)
        varies = ", ".join(f"{key} ({len(values)})" for key, values in params.items())
        print(
            f"| {name} | {varies} | {row['runs']} | {row['N_min']:.3g} .. {row['N_max']:.3g} | "
            f"{row['tokens_min']:.3g} .. {row['tokens_max']:.3g} | {row['total_flops']:.3g} | "
            f"{accounting.pf_days(row['total_flops']):.3g} | {row['device_hours']:.3g} |"
        )
        if args.list:
            print_runs(runs, speed)
    return 0


def print_runs(runs: list[PlannedRun], speed: Throughput) -> None:
    for run in runs:
        cfg, counts = run.cfg, run.counts
        print(f"    {cfg.run_name:<32} N={counts.non_embedding:<9.3g} N_total={counts.total:<9.3g} "
              f"steps={run.steps:<8,} tokens<={run.tokens:<9.3g} ({run.tokens / counts.total:.3g} per N_total)  "
              f"batch={cfg.train.batch_size}x{cfg.model.n_ctx}  "
              f"{run.device_hours(speed.flops_per_s):.3g} device-hours")
