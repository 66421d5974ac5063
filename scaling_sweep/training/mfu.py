"""A run's MFU by both conventions, each named (DESIGN.md, "Conventions").

- datasheet: exact FLOP/s per device over the device's datasheet dense peak in the run's dtype
  (PaLM's MFU, the field's convention; GPUs in core.hardware_peaks, any device via train.peak_flops);
- measured_peak: over the FLOP/s of a large torch.mm measured on the device, the median of 6 one-second
  trials, 3 at the start of the run and 3 at its end. A median, not a maximum: on a shared machine the
  mm rate swings from one second to the next (700-1,900 GFLOP/s on the 2-core VM of docs/performance.md),
  and the benchmark takes the median of its rounds' trials, so both estimate the same denominator.

The headline `mfu` is the datasheet one wherever a datasheet peak is known, else the measured one. A
fraction above 1 is recorded as it is, with a warning saying which denominator is suspect.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import torch

from scaling_sweep.core.config import TrainConfig
from scaling_sweep.training import hardware


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

    @classmethod
    def at_start(cls, device: torch.device, dtype: str, train: TrainConfig) -> Peaks:
        peaks = cls(device, dtype, train.peak_trial_s, hardware.datasheet_peak(device, dtype, train.peak_flops))
        peaks.remeasure()
        return peaks

    def remeasure(self) -> None:
        if self.trial_s > 0:
            self.measured.extend(hardware.matmul_trials(self.device, self.dtype, self.trial_s))

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
        when = " at the start of the run and at its end" if len(self.measured) > hardware.PEAK_TRIALS else ""
        return f"torch.mm {size}x{size} {self.dtype}: median of {len(self.measured)} trials of {self.trial_s:g} s{when}"

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
