"""A run's record while it trains: metrics.jsonl and summary.json through core.runfiles, and
TensorBoard scalars for people, with the run's row of the HParams tab once it ends.

metrics.jsonl is the source of truth. On resume it is cut back to the checkpoint's step and
the TensorBoard events are rebuilt from it, so a killed run never shows steps twice.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from scaling_sweep.core import hparams_tab, runfiles
from scaling_sweep.core.runfiles import MetricsRow, RunSummary

GFLOP = 1e9


def _write_scalars(writer: SummaryWriter, row: MetricsRow) -> None:
    step, tokens, gflops = row.step, row.tokens, int(row.flops / GFLOP)
    for split, loss in (("train", row.train_loss), ("val", row.val_loss)):
        if loss is not None:
            writer.add_scalar(f"loss/{split}", loss, step)
            writer.add_scalar(f"loss_vs_tokens/{split}", loss, tokens)
            writer.add_scalar(f"loss_vs_gflops_6N/{split}", loss, gflops)
    for value, tag in ((row.lr, "optim/lr"), (row.grad_norm, "optim/grad_norm"),
                       (row.tokens_per_s, "throughput/tokens_per_s"), (row.mfu, "throughput/mfu"),
                       (row.mfu_datasheet, "throughput/mfu_datasheet"),
                       (row.mfu_measured_peak, "throughput/mfu_measured_peak")):
        if value is not None:
            writer.add_scalar(tag, value, step)


class RunLog:
    """Appends metrics rows (flushed each time) and mirrors them into TensorBoard."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        self.run_dir = run_dir
        kept = [] if resume_step is None else [r for r in runfiles.read_metrics(run_dir)[0] if r.step <= resume_step]
        runfiles.write_metrics(run_dir, kept)
        shutil.rmtree(run_dir / runfiles.TB_DIR, ignore_errors=True)
        self.writer = SummaryWriter(str(run_dir / runfiles.TB_DIR))
        self.best_val_loss = math.inf
        for row in kept:
            self._write(row)
        self.metrics = runfiles.MetricsAppender(run_dir)

    def _write(self, row: MetricsRow) -> None:
        _write_scalars(self.writer, row)
        if row.val_loss is not None:  # the best so far: the HParams tab shows its last value
            self.best_val_loss = min(self.best_val_loss, row.val_loss)
            self.writer.add_scalar(hparams_tab.BEST_VAL_TAG, self.best_val_loss, row.step)

    def log(self, row: MetricsRow) -> None:
        self.metrics.append(row)
        self._write(row)

    def log_cooldown(self, point: dict) -> None:
        """A wsd cooldown branch's validation loss, against the step, tokens and GFLOPs where it ended."""
        self.writer.add_scalar("cooldown/val", point["val_loss"], point["step"])
        self.writer.add_scalar("cooldown_vs_tokens/val", point["val_loss"], point["tokens"])
        self.writer.add_scalar("cooldown_vs_gflops_6N/val", point["val_loss"], int(point["flops"] / GFLOP))

    def write_summary(self, summary: RunSummary) -> None:
        """summary.json; a run that has ended (not running, nor stopped to be resumed) also gets its HParams
        session."""
        runfiles.write_summary(self.run_dir, summary)
        if summary.ended:
            for record in hparams_tab.run_session(summary):
                self.writer.file_writer.add_summary(record)

    def close(self) -> None:
        self.metrics.close()
        self.writer.close()
