"""A run's MFU by both conventions, each named (DESIGN.md, "Conventions").

- datasheet: exact FLOP/s per device over the device's datasheet dense peak in the run's dtype
  (PaLM's MFU, the field's convention; GPUs in core.hardware_peaks, any device via train.peak_flops);
- measured_peak: over the FLOP/s of a large torch.mm measured on the device: the median of the last
  CACHED_TRIALS one-second trials on this machine, device, dtype and thread count, which runs keep in a
  cache file (PEAK_CACHE). A run with fewer than PEAK_TRIALS there measures the missing ones before it
  trains; any run whose session lasted at least 1/REFRESH_SHARE trials adds one at its end, so the
  cache follows the machine at a cost of at most 5% of a run, and a short run starts training at once.
  A median, not a maximum: on a shared machine the mm rate swings from one second to the next
  (700-1,900 GFLOP/s on the 2-core VM of docs/performance.md), and the benchmark takes the median of its
  rounds' trials, so both estimate the same denominator.

The headline `mfu` is the datasheet one wherever a datasheet peak is known, else the measured one. A
fraction above 1 is recorded as it is, with a warning saying which denominator is suspect.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scaling_sweep.core.config import TrainConfig
from scaling_sweep.core.files import atomic_write_text, file_lock
from scaling_sweep.training import hardware

PEAK_CACHE = Path("~/.cache/scaling_sweep/matmul_peaks.json")
CACHED_TRIALS = 9  # the most recent trials kept per machine, device, dtype and thread count
REFRESH_SHARE = 0.05  # a run adds a trial at its end when that costs at most this share of its session


@dataclass(frozen=True)
class Mfu:
    headline: float | None
    convention: str | None  # "datasheet" or "measured_peak": which one the headline is
    datasheet: float | None
    measured_peak: float | None


@dataclass
class Peaks:
    """One device's peak FLOP/s in the run's dtype by both conventions."""

    device: torch.device
    dtype: str
    trial_s: float  # seconds per torch.mm trial; 0: no measured peak
    datasheet: hardware.DatasheetFlops
    measured: list[float] = field(default_factory=list)  # FLOP/s of every trial: at the start, at the end

    cache: Path | None = None  # the trial cache (PEAK_CACHE); None: this run's own trials only
    taken: int = 0  # trials this run measured itself (the others come from the cache)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def at_start(cls, device: torch.device, dtype: str, train: TrainConfig, cache: Path | None = None) -> Peaks:
        peaks = cls(device, dtype, train.peak_trial_s, hardware.datasheet_peak(device, dtype, train.peak_flops),
                    cache=(cache or PEAK_CACHE).expanduser())
        if peaks.trial_s > 0:
            peaks.measured = cached_trials(peaks.cache, peaks.key())
            peaks.take(hardware.PEAK_TRIALS - len(peaks.measured))
        return peaks

    def key(self) -> str:
        return hardware.matmul_peak_key(self.device, self.dtype, self.trial_s)

    def take(self, trials: int) -> None:
        """Measure `trials` more trials (none when <= 0) and add them to the cache."""
        if trials <= 0:
            return
        new = hardware.matmul_trials(self.device, self.dtype, self.trial_s, trials)
        self.measured.extend(new)
        self.taken += len(new)
        if self.cache is not None:
            add_cached_trials(self.cache, self.key(), new)

    def remeasure(self) -> None:
        """At the end of a run: one more trial, if the session was long enough that it costs at most REFRESH_SHARE."""
        if self.trial_s > 0 and time.monotonic() - self.started >= self.trial_s / REFRESH_SHARE:
            self.take(1)

    @property
    def measured_peak(self) -> float | None:
        return statistics.median(self.measured) if self.measured else None

    def mfu(self, flops_per_s: float | None) -> Mfu:
        """The fractions for `flops_per_s` achieved per device (None when nothing was timed)."""
        datasheet = fraction(flops_per_s, self.datasheet.flops)
        measured = fraction(flops_per_s, self.measured_peak)
        if datasheet is not None:
            return Mfu(datasheet, "datasheet", datasheet, measured)
        return Mfu(measured, "measured_peak" if measured is not None else None, None, measured)

    def method(self) -> str:
        if not self.measured:
            return "not measured (train.peak_trial_s=0)"
        size = hardware.peak_matrix_size(self.device)
        text = f"torch.mm {size}x{size} {self.dtype}: median of {len(self.measured)} trials of {self.trial_s:g} s"
        if self.cache is None:
            return text
        return (f"{text}, {self.taken} by this run and {len(self.measured) - self.taken} by earlier runs on this "
                f"machine (the last {CACHED_TRIALS} per machine, device, dtype and threads, kept in {self.cache})")

    def summary_fields(self, flops_per_s: float | None) -> dict:
        """The RunSummary fields of MFU: both fractions, their denominators and how each was obtained."""
        mfu = self.mfu(flops_per_s)
        return {
            "mfu": mfu.headline, "mfu_convention": mfu.convention,
            "mfu_datasheet": mfu.datasheet, "peak_flops_datasheet": self.datasheet.flops,
            "peak_flops_datasheet_source": self.datasheet.source,
            "mfu_measured_peak": mfu.measured_peak, "matmul_peak_flops": self.measured_peak,
            "matmul_peak_measurements": list(self.measured), "matmul_peak_method": self.method(),
            "mfu_warning": self.warning(mfu),
        }

    def warning(self, mfu: Mfu) -> str | None:
        """Why a fraction above 1 is not to be believed, or None when neither is."""
        warnings = []
        if mfu.measured_peak is not None and mfu.measured_peak > 1:
            warnings.append(f"mfu_measured_peak {mfu.measured_peak:.3f} > 1: the step beat the measured torch.mm "
                            f"peak ({self.measured_peak:.4g} FLOP/s), which was taken while the device was busy "
                            "or throttled")
        if mfu.datasheet is not None and mfu.datasheet > 1:
            warnings.append(f"mfu_datasheet {mfu.datasheet:.3f} > 1: the datasheet peak ({self.datasheet.flops:.4g} "
                            f"FLOP/s, {self.datasheet.source}) is not this device's (set train.peak_flops)")
        return "; ".join(warnings) or None


def fraction(flops_per_s: float | None, peak: float | None) -> float | None:
    return flops_per_s / peak if flops_per_s and peak else None


def cached_trials(cache: Path, key: str) -> list[float]:
    """The cache's trials for `key` (none when the file is missing or unreadable)."""
    try:
        entry = json.loads(cache.read_text()).get(key, {})
        return [float(t) for t in entry.get("trials", [])][-CACHED_TRIALS:]
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def add_cached_trials(cache: Path, key: str, trials: list[float]) -> None:
    """Append `trials` to the cache's list for `key`, keeping the last CACHED_TRIALS; under a lock, since
    the jobs of a sweep finish side by side. A cache that cannot be written is left as it is."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(cache.with_name(cache.name + ".lock")):
            try:
                entries = json.loads(cache.read_text())
            except (OSError, ValueError):
                entries = {}
            if not isinstance(entries, dict):
                entries = {}
            kept = (cached_trials(cache, key) + trials)[-CACHED_TRIALS:]
            entries[key] = {"trials": kept, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            atomic_write_text(cache, json.dumps(entries, indent=1) + "\n")
    except OSError:
        pass
