"""The device a run trains on: which one, which dtype, its datasheet peak and its measured matmul peak."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scaling_sweep.core import hardware_peaks
from scaling_sweep.core.config import ConfigError
from scaling_sweep.core.system import cores_given

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """auto: the GPU this process sees first (a launcher such as Ray shows each job only its own), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name}: CUDA is not available on this machine (use device=cpu)")
    return device


def gpus_per_job(device: str) -> int:
    """The GPUs a sweep job asks a launcher for (configs/launcher/ray.yaml): one where the run's device
    is a GPU, or is auto and this process sees one; else none."""
    return int(device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()))


def resolve_threads(name: str) -> int:
    """train.threads: a number, or auto: OMP_NUM_THREADS where it is set for this job (by you, by torchrun for
    several ranks, by Ray as the num_cpus it gave the job), else one thread per core given to this process."""
    if name != "auto":
        return int(name)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return int(omp) if omp.isdigit() and int(omp) > 0 else cores_given()


def use_threads(name: str) -> int:
    """Set torch's intra-op threads from train.threads; returns the number. OpenMP threads beyond the cores a
    job has do not share well: with more threads than cores each step waits for the thread that lost its core."""
    threads = resolve_threads(name)
    torch.set_num_threads(threads)
    return threads


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), where autocast pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(name: str, device: torch.device) -> str:
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def resolve_compile(name: str, device: torch.device) -> bool:
    return name == "on" or (name == "auto" and device.type == "cuda")


def configure(device: torch.device) -> None:
    """Process-wide settings for training on this device.

    CUDA: TF32 matmuls for fp32 work (under bf16 autocast only the ops autocast keeps in fp32
    are affected). CPU: freed activation memory stays in the heap (see
    keep_freed_memory_in_heap); float32 matmul precision is left alone, as on CPU it would let
    oneDNN swap in bf16 arithmetic.
    """
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    else:
        keep_freed_memory_in_heap()


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 << 20  # the largest mmap threshold glibc accepts on 64-bit


def keep_freed_memory_in_heap() -> bool:
    """Make glibc reuse the step's freed activation buffers instead of mapping fresh pages.

    By default glibc serves large blocks by mmap and trims freed memory at the top of the
    heap, so every CPU step gets its multi-MB activations as new zero-filled pages: about
    11,000 page faults per step at L2 d32, a third of its time. A fixed 32 MiB mmap threshold
    and no trimming keep them in the heap (the process then holds its peak memory until it
    exits). Returns False where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict:
    """The library versions a run's numbers depend on."""
    found = {"torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__}
    if torch.version.cuda:
        found["cuda"] = torch.version.cuda
    return found


def describe(device: torch.device) -> dict:
    """The hardware facts every summary.json and the benchmark record."""
    facts = {"device": device_name(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
             "threads": torch.get_num_threads(), "cpu_has_bf16": cpu_has_bf16()}
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
        facts["gpu_count"] = torch.cuda.device_count()
    return facts


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class DatasheetFlops:
    """The device's datasheet dense peak in the run's dtype (None where there is none) and where it comes from."""

    flops: float | None
    source: str


def datasheet_peak(device: torch.device, dtype: str, override: float | None = None) -> DatasheetFlops:
    """The MFU denominator by the field's convention: the datasheet dense peak of this device in this dtype
    (fp32 counts against TF32 tensor cores where fp32 matmuls use them), or `override` (train.peak_flops)."""
    if override:
        return DatasheetFlops(override, "train.peak_flops (given in the config)")
    if device.type != "cuda":
        return DatasheetFlops(None, "none: a CPU has no datasheet peak in the table (train.peak_flops gives one)")
    name = torch.cuda.get_device_name(device)
    sheet = hardware_peaks.match_device(name)
    if sheet is None:
        return DatasheetFlops(None, f"none: {name!r} is not in core/hardware_peaks.py (train.peak_flops gives one)")
    tf32 = sheet.tf32 and torch.get_float32_matmul_precision() != "highest"  # hardware.configure: "high" on CUDA
    unit = "bf16" if dtype == "bf16" else "tf32" if tf32 else "fp32"
    if getattr(sheet, unit) is None:
        return DatasheetFlops(None, f"none: {sheet.product} has no {unit} peak ({sheet.source})")
    return DatasheetFlops(getattr(sheet, unit), f"{sheet.product}, dense {unit}: {sheet.source}")


PEAK_TRIALS = 3


def peak_matrix_size(device: torch.device) -> int:
    """The torch.mm size of the measured peak: 2048 on a CPU; 8192 on a GPU, which a 2048 product
    (a few microseconds of work) leaves partly idle."""
    return 8192 if device.type == "cuda" else 2048


def matmul_peak_key(device: torch.device, dtype: str, trial_s: float) -> str:
    """What a measured torch.mm peak depends on: the machine, the device and its threads, the dtype, torch,
    and the trial's size and length (training.mfu caches trials under this key)."""
    size = peak_matrix_size(device)
    chip = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return (f"{platform.node()} | {chip} | {device_name(device)} | {dtype} | torch {torch.__version__} | "
            f"mm {size}x{size}, {trial_s:g} s")


def matmul_trials(device: torch.device, dtype: str, seconds: float, trials: int = PEAK_TRIALS) -> list[float]:
    """`trials` fresh torch.mm measurements of `seconds` each (FLOP/s)."""
    return [measure_matmul_flops(device, dtype, seconds=seconds) for _ in range(trials)]


def measure_matmul_flops(device: torch.device, dtype: str, seconds: float = 1.0) -> float:
    """One fresh measurement of the FLOP/s of a square torch.mm of peak_matrix_size."""
    size = peak_matrix_size(device)
    a = torch.randn(size, size, device=device, dtype=DTYPES[dtype])
    b = torch.randn(size, size, device=device, dtype=DTYPES[dtype])
    torch.mm(a, b)
    synchronize(device)
    per_sync = 10 if device.type == "cuda" else 1  # queue several GPU products per host wait
    repeats, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(per_sync):
            torch.mm(a, b)
        synchronize(device)
        repeats += per_sync
    return 2.0 * size**3 * repeats / (time.perf_counter() - start)
