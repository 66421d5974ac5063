"""The per-run files, the contract between training and analysis (DESIGN.md, "Per-run files").

Training writes `summary.json` (a :class:`RunSummary`) and `metrics.jsonl` (one :class:`MetricsRow`
per logged step) through this module; the analysis, the planner and the test fixtures read and
build them through it. Writes are atomic (temp file, fsync, rename); reads are tolerant: a
truncated or garbled metrics line (a killed run) is skipped and counted, and keys a reader does
not know are kept in ``extra``. The process training a run holds ``run.lock`` in its folder
(:func:`run_lock`), so two launches never write one folder.

Schema versions: 1 = files written before the schema carried a version (same keys); 2 adds
``schema_version``, ``hardware`` and ``cooldowns``; 3 adds MFU by both conventions (``mfu_convention``,
``mfu_datasheet`` and ``mfu_measured_peak`` with their denominators; in versions 1-2 ``mfu`` was over a
single 0.3 s torch.mm measurement, i.e. today's measured_peak convention); 4 adds ``planned_steps`` and the
stop reasons of a run stopped from outside (:data:`RESUMABLE_STOPS`), which its next launch resumes.
"""

from __future__ import annotations

import fcntl
import json
import math
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from scaling_sweep.core.errors import UserError
from scaling_sweep.core.files import LockHeldError, atomic_path, atomic_write_text, file_lock, remove_stale_temps

SCHEMA_VERSION = 4
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.pt"  # the one before: a damaged checkpoint.pt costs one interval
LOCK_FILE = "run.lock"  # held by the process training the run; names it (pid, host)
TB_DIR = "tb"
FINISHED = ("completed", "stopped")  # "stopped": a compute or data budget, or early stopping
# Stop reasons of a run stopped from outside at a step boundary, its checkpoint saved: SIGINT (Ctrl-C), SIGTERM
# (a scheduler's preemption), the process that launched it gone. Its status is "stopped", but it is not finished:
# launching it again resumes it.
RESUMABLE_STOPS = ("interrupted", "preempted", "launcher_lost")
DEAD_RUN = "interrupted (no process holds it)"  # a summary saying "running" whose run lock nobody holds
UNITS = {"loss": "nats/token", "N": "non-embedding parameters", "flops": "6*N*tokens",
         "flops_exact": "all matmuls, fwd+bwd"}


class RunFileError(UserError, ValueError):
    """A run file that cannot be read, with the file named."""


class RunLockedError(UserError):
    """Another process is training this run folder."""


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the run folder's lock (as the holder wrote it), or None when no process does. It asks for a shared
    lock, so it never takes the folder from a launch, which asks for an exclusive one (and would be turned
    away only in the microseconds this holds it)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        f = open(path)
    except FileNotFoundError:
        return None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return f.read().strip() or "another process"
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def live_status(run_dir: Path, summary: RunSummary | None) -> str:
    """The summary's status, except that a "running" summary whose lock no process holds is DEAD_RUN (a killed
    run, or one stopped at once, that could not say so); its next launch resumes it and corrects the file."""
    if summary is None:
        return "unknown"
    if summary.status == "running" and lock_holder(run_dir) is None:
        return DEAD_RUN
    return summary.status


@contextmanager
def run_lock(run_dir: Path):
    """Hold the run folder for this process, so that no second launch trains it at the same time;
    RunLockedError, naming the holder, at once when another process holds it. Temp files of writes
    that a kill cut short are removed."""
    with ExitStack() as held:
        try:
            held.enter_context(file_lock(Path(run_dir) / LOCK_FILE, wait=False))
        except LockHeldError as err:
            raise RunLockedError(f"{run_dir} is being trained by {err.holder} (lock {err.path}); "
                                 "not training it a second time") from None
        for name in (SUMMARY_FILE, METRICS_FILE, CHECKPOINT_FILE):
            remove_stale_temps(Path(run_dir) / name)
        yield


@dataclass
class RunSummary:
    """summary.json: what a run is and how far it got. Counts of parameters follow
    core.accounting (N non-embedding), losses are nats/token, flops = 6·N·tokens."""

    run_name: str | None = None
    sweep: str | None = None
    status: str = "unknown"  # completed | stopped | diverged | running
    stop_reason: str | None = None
    n_layer: int | None = None
    d_model: int | None = None
    n_head: int | None = None
    n_ctx: int | None = None
    d_ff: int | None = None
    vocab_size: int | None = None
    tie_embeddings: bool | None = None
    tokenizer: str | None = None
    data: str | None = None
    N: int | None = None
    N_embed: int | None = None
    N_total: int | None = None
    N_kaplan_approx: int | None = None
    batch_size: int | None = None
    batch_tokens: int | None = None
    step: int | None = None
    max_steps: int | None = None
    planned_steps: int | None = None  # the steps its schedule plans (a budget or early stopping may end it sooner)
    tokens: int | None = None
    unique_tokens: int | None = None
    max_unique_tokens: int | None = None
    flops: float | None = None
    flops_exact: float | None = None
    flops_per_token_exact: float | None = None
    flops_per_token_kaplan_6N: float | None = None
    final_val_loss: float | None = None
    best_val_loss: float | None = None
    best_val_step: int | None = None
    final_train_loss: float | None = None
    unigram_entropy: float | None = None
    lr: float | None = None
    lr_rule: str | None = None  # fixed | kaplan_eq_D1 | fitted
    # optim.lr / train.batch_size=fitted: the fits file, its laws, the (N, D) they were read at and the values
    fitted_hparams: dict | None = None
    device: str | None = None
    world_size: int = 1
    dtype: str | None = None
    tokens_per_s: float | None = None
    # MFU (training.mfu): the headline is mfu_datasheet where a datasheet peak is known, else mfu_measured_peak
    mfu: float | None = None
    mfu_convention: str | None = None  # datasheet | measured_peak: which one mfu is
    mfu_datasheet: float | None = None  # exact FLOP/s per device over peak_flops_datasheet
    peak_flops_datasheet: float | None = None
    peak_flops_datasheet_source: str | None = None  # the datasheet (or train.peak_flops), or why there is none
    mfu_measured_peak: float | None = None  # exact FLOP/s per device over matmul_peak_flops
    matmul_peak_flops: float | None = None  # the median of matmul_peak_measurements
    matmul_peak_measurements: list = field(default_factory=list)  # FLOP/s of each trial, start and end of the run
    matmul_peak_method: str | None = None
    mfu_warning: str | None = None  # set when a fraction is above 1: which denominator is suspect
    wall_time_s: float | None = None
    units: dict = field(default_factory=lambda: dict(UNITS))
    versions: dict = field(default_factory=dict)
    hardware: dict = field(default_factory=dict)
    # wsd cooldown branches, each a point of its own: step, tokens, flops, val_loss and reason, "compute_budget"
    # (optim.cooldown_budgets; summaries before the reason was recorded have only these) or "steps" (cooldown_steps)
    cooldowns: list = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)  # keys of a newer schema, kept as read

    @property
    def finished(self) -> bool:
        return self.status in FINISHED and not self.resumable

    @property
    def ended(self) -> bool:
        """Finished or diverged: launching it again trains nothing."""
        return self.finished or self.status == "diverged"

    @property
    def resumable(self) -> bool:
        """Stopped from outside (RESUMABLE_STOPS): its next launch resumes it from its checkpoint."""
        return self.status == "stopped" and self.stop_reason in RESUMABLE_STOPS

    def to_dict(self) -> dict:
        payload = asdict(self)
        return payload.pop("extra") | payload

    @classmethod
    def from_dict(cls, payload: dict) -> RunSummary:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in payload.items() if k in known}
        values.setdefault("schema_version", 1)
        return cls(**values, extra={k: v for k, v in payload.items() if k not in known})


@dataclass
class MetricsRow:
    """One line of metrics.jsonl: the state after `step` optimizer steps. val_loss only on
    evaluation steps; flops = 6·N·tokens, flops_exact every matmul; losses nats/token."""

    step: int
    tokens: int
    flops: float
    flops_exact: float | None = None
    lr: float | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None  # the headline, as in the summary
    mfu_datasheet: float | None = None
    mfu_measured_peak: float | None = None
    elapsed_s: float | None = None

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def from_dict(cls, payload: dict) -> MetricsRow:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in known})


def write_summary(run_dir: Path, summary: RunSummary) -> None:
    atomic_write_text(Path(run_dir) / SUMMARY_FILE, json.dumps(summary.to_dict(), indent=2, sort_keys=True))


def read_summary(run_dir: Path) -> RunSummary | None:
    """The run's summary, or None when it has none yet; RunFileError when it is not a JSON object."""
    path = Path(run_dir) / SUMMARY_FILE
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunFileError(f"{path}: not readable as JSON ({err})") from None
    if not isinstance(payload, dict):
        raise RunFileError(f"{path}: holds a {type(payload).__name__}, not a run summary")
    return RunSummary.from_dict(payload)


def read_metrics(run_dir: Path) -> tuple[list[MetricsRow], int]:
    """The rows of the run's metrics.jsonl and the number of unreadable lines skipped."""
    path = Path(run_dir) / METRICS_FILE
    rows, skipped = [], 0
    if not path.exists():
        return rows, skipped
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(MetricsRow.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError, AttributeError):
            skipped += 1
    return rows, skipped


def write_metrics(run_dir: Path, rows: list[MetricsRow]) -> None:
    """Replace metrics.jsonl with rows (a resumed run cuts it back to its checkpoint)."""
    with atomic_path(Path(run_dir) / METRICS_FILE) as tmp:
        tmp.write_text("".join(row.to_json() + "\n" for row in rows))


class MetricsAppender:
    """Appends rows to metrics.jsonl, flushed after each, so a killed run loses at most a line."""

    def __init__(self, run_dir: Path):
        self._file = open(Path(run_dir) / METRICS_FILE, "a")

    def append(self, row: MetricsRow) -> None:
        self._file.write(row.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
