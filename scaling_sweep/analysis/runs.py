"""Read a sweep folder (runs/<sweep>/<run>/summary.json + metrics.jsonl) into runs and curves.

`python -m scaling_sweep.runs runs/<sweep>` prints one line per run: status, N, tokens,
FLOPs, final and best validation loss, throughput.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from scaling_sweep.core import runfiles
from scaling_sweep.core.errors import UserError, entry_point
from scaling_sweep.core.runfiles import METRICS_FILE, SUMMARY_FILE, RunFileError, RunSummary, finite

CURVE_KEYS = ("step", "tokens", "flops", "train_loss", "val_loss")
MIN_VAL_POINTS = 3  # fewer validation points than this: learning curves use train loss


class SweepError(UserError, ValueError):
    """A sweep folder that cannot be analysed, with the reason in words."""


@dataclass
class Run:
    name: str
    path: Path
    summary: RunSummary | None  # None: the run wrote no summary.json
    metrics: dict[str, np.ndarray]  # CURVE_KEYS -> arrays, NaN where a row lacks the key
    skipped_lines: int = 0  # unreadable metrics lines (a killed run truncates the last one)

    @property
    def status(self) -> str:
        """The summary's, except a "running" one that no process trains: runfiles.DEAD_RUN."""
        return runfiles.live_status(self.path, self.summary)

    @property
    def final_loss(self) -> float:
        """Early-stopped loss (Kaplan's convention for L(N), L(D)): best validation loss,
        else the last one, in nats/token."""
        for value in (self.summary.best_val_loss, self.summary.final_val_loss) if self.summary else ():
            if finite(value):
                return float(value)
        return float("nan")

    @property
    def optim(self) -> dict:
        """The run's optimizer settings (schedule, decay_fraction, ...) from its resolved config,
        .hydra/config.yaml; {} where the folder has none or it does not parse."""
        try:
            config = yaml.safe_load((self.path / ".hydra" / "config.yaml").read_text())
        except (OSError, yaml.YAMLError):
            return {}
        optim = config.get("optim") if isinstance(config, dict) else None
        return optim if isinstance(optim, dict) else {}

    @property
    def wsd(self) -> bool:
        """Whether the run trained under warmup-stable-decay: its stable-phase evaluations are not the
        loss of a run of their length, its end and cooldown branches are."""
        return self.optim.get("schedule") == "wsd"

    def exclusion(self) -> str | None:
        """Why this run cannot be fitted, or None."""
        if self.summary is None:
            return "no summary.json (not started, or killed before its first summary)"
        reason = self.summary.stop_reason or "no reason given"
        if self.status == "diverged":
            return f"diverged ({reason})"
        if not self.summary.finished:
            return f"unfinished (status {self.status}: {reason})"
        if not self.summary.step:
            return f"never trained (stopped at step 0: {reason}); its loss is that of an untrained model"
        if not np.isfinite(self.final_loss):
            return "no finite validation loss"
        return None

    def loss_curve(self) -> dict[str, np.ndarray]:
        """step, tokens, flops and loss (nats/token) of the learning curve: validation loss
        at evaluation steps, or train loss when the run has fewer than MIN_VAL_POINTS
        evaluations."""
        m = self.metrics
        kind = "val_loss" if np.isfinite(m["val_loss"]).sum() >= MIN_VAL_POINTS else "train_loss"
        ok = np.isfinite(m[kind]) & (m["step"] > 0)
        curve = {k: m[k][ok] for k in ("step", "tokens", "flops")}
        return {**curve, "loss": m[kind][ok]}


@dataclass
class Sweep:
    name: str
    path: Path
    runs: list[Run]

    def usable(self) -> list[Run]:
        return [r for r in self.runs if r.exclusion() is None]

    def excluded(self) -> list[tuple[str, str]]:
        return [(r.name, r.exclusion()) for r in self.runs if r.exclusion() is not None]


def metric_columns(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """CURVE_KEYS columns of a run folder's metrics.jsonl and the number of unreadable lines skipped."""
    rows, skipped = runfiles.read_metrics(path)
    columns = {k: np.array([getattr(r, k) if finite(getattr(r, k)) else np.nan for r in rows], float)
               for k in CURVE_KEYS}
    return columns, skipped


def read_run(path: Path) -> Run:
    try:
        summary = runfiles.read_summary(path)
    except RunFileError as err:
        raise SweepError(str(err)) from None
    metrics, skipped = metric_columns(path)
    name = summary.run_name if summary and summary.run_name else path.name
    return Run(name, path, summary, metrics, skipped)


def read_sweep(path) -> Sweep:
    """Every run folder (one holding summary.json or metrics.jsonl) directly under path."""
    path = Path(path)
    if not path.exists():
        raise SweepError(f"{path}: no such folder")
    if not path.is_dir():
        raise SweepError(f"{path}: not a folder (expected runs/<sweep>/)")
    run_dirs = sorted(p for p in path.iterdir()
                      if p.is_dir() and ((p / SUMMARY_FILE).exists() or (p / METRICS_FILE).exists()))
    if not run_dirs:
        raise SweepError(f"{path}: no runs (no subfolder holds {SUMMARY_FILE} or {METRICS_FILE}); "
                         "train one with: python -m scaling_sweep.train +sweep=demo")
    return Sweep(path.name, path, [read_run(p) for p in run_dirs])


SETTING_KEYS = ("tokenizer", "n_ctx")


def check_one_setting(runs: list[Run], allow_mixed: bool = False) -> dict:
    """The tokenizer and context shared by the runs. Losses in nats/token of different
    tokenizers or contexts are not comparable, so several settings are refused unless
    allow_mixed (then every setting is listed)."""
    groups: dict[tuple, list[str]] = {}
    for run in runs:
        groups.setdefault(tuple(getattr(run.summary, k) for k in SETTING_KEYS), []).append(run.name)
    if len(groups) > 1 and not allow_mixed:
        listing = "; ".join(f"tokenizer={t} n_ctx={c}: {len(names)} runs ({', '.join(names[:3])}"
                            f"{', ...' if len(names) > 3 else ''})" for (t, c), names in groups.items())
        raise SweepError(f"runs mix tokenizers or contexts, whose losses are not comparable: {listing}. "
                         "Analyse one setting at a time, or pass --allow-mixed to fit across them anyway")
    if len(groups) == 1:
        return dict(zip(SETTING_KEYS, next(iter(groups))))
    return {k: sorted({str(key[i]) for key in groups}) for i, k in enumerate(SETTING_KEYS)}


def _fmt(value, spec) -> str:
    return format(value, spec) if finite(value) else "-"


def summary_table(sweep: Sweep) -> str:
    header = (f"{'run':<28} {'status':<10} {'N (non-emb.)':>12} {'tokens':>10} {'FLOPs (6N)':>11} "
              f"{'final val':>9} {'best val':>9} {'tokens/s':>9}")
    lines = [f"sweep {sweep.name}: {len(sweep.runs)} runs; loss in nats/token", header]
    for run in sweep.runs:
        s = run.summary or RunSummary()
        lines.append(f"{run.name[:28]:<28} {run.status[:10]:<10} {_fmt(s.N, '12.3e')} "
                     f"{_fmt(s.tokens, '10.3e')} {_fmt(s.flops, '11.3e')} "
                     f"{_fmt(s.final_val_loss, '9.4f')} {_fmt(s.best_val_loss, '9.4f')} "
                     f"{_fmt(s.tokens_per_s, '9.0f')}")
    lines += [progress(run) for run in sweep.runs if run.status in ("running", runfiles.DEAD_RUN)]
    for name, reason in sweep.excluded():
        lines.append(f"not fitted: {name}: {reason}")
    return "\n".join(lines)


def progress(run: Run) -> str:
    """How far an unfinished run got and, while it trains, when it will end at its measured rate."""
    s = run.summary
    step = max(s.step or 0, int(np.nanmax(run.metrics["step"], initial=0)))
    planned = f" of {s.planned_steps:,} ({step / s.planned_steps:.0%})" if s.planned_steps else ""
    line = f"{run.name}: {run.status} at step {step:,}{planned}"
    if run.status == runfiles.DEAD_RUN:
        return f"{line}; its launch command, run again, resumes it"
    if s.planned_steps and s.tokens_per_s:
        eta_s = (s.planned_steps - step) * s.batch_tokens / s.tokens_per_s
        line += f", ETA {eta_s / 60:.1f} min at {s.tokens_per_s:,.0f} tokens/s"
    return line


@entry_point("runs")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling_sweep.runs", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="runs/<sweep>")
    args = parser.parse_args(argv)
    print(summary_table(read_sweep(args.sweep_dir)))
    return 0
