"""Per-run files: metrics.jsonl (the record), summary.json, and TensorBoard scalars for people.

metrics.jsonl is the source of truth. On resume it is cut back to the checkpoint's step and
the TensorBoard events are rebuilt from it, so a killed run never shows steps twice.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from scaling_sweep.fsutil import atomic_path
from scaling_sweep.runs import METRICS_FILE, SUMMARY_FILE, read_jsonl

TB_DIR = "tb"
GFLOP = 1e9


def atomic_write_json(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_metric_rows(path: Path) -> list[dict]:
    """Rows of a metrics.jsonl; a truncated last line (a killed run) is dropped."""
    return read_jsonl(Path(path))[0]


def _write_scalars(writer: SummaryWriter, row: dict) -> None:
    step, tokens, gflops = row["step"], row["tokens"], int(row["flops"] / GFLOP)
    for key in ("train_loss", "val_loss"):
        if row.get(key) is not None:
            split = key.removesuffix("_loss")
            writer.add_scalar(f"loss/{split}", row[key], step)
            writer.add_scalar(f"loss_vs_tokens/{split}", row[key], tokens)
            writer.add_scalar(f"loss_vs_gflops_6N/{split}", row[key], gflops)
    for key, tag in (("lr", "optim/lr"), ("grad_norm", "optim/grad_norm"), ("tokens_per_s", "throughput/tokens_per_s"), ("mfu", "throughput/mfu")):
        if row.get(key) is not None:
            writer.add_scalar(tag, row[key], step)


class RunLog:
    """Appends metrics rows (flushed each time) and mirrors them into TensorBoard."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        self.run_dir = run_dir
        metrics_path = run_dir / METRICS_FILE
        kept = [] if resume_step is None else [r for r in read_metric_rows(metrics_path) if r["step"] <= resume_step]
        with atomic_path(metrics_path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        shutil.rmtree(run_dir / TB_DIR, ignore_errors=True)
        self.writer = SummaryWriter(str(run_dir / TB_DIR))
        for row in kept:
            _write_scalars(self.writer, row)
        self.metrics = open(metrics_path, "a")

    def log(self, row: dict) -> None:
        self.metrics.write(json.dumps(row) + "\n")
        self.metrics.flush()
        _write_scalars(self.writer, row)

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.run_dir / SUMMARY_FILE, summary)

    def log_hparams(self, hparams: dict, results: dict) -> None:
        self.writer.add_hparams(hparams, results, run_name=".")

    def close(self) -> None:
        self.metrics.close()
        self.writer.close()
