"""Vendors' datasheet peak FLOP/s per device: the MFU denominator by the field's convention (PaLM,
Chowdhery et al. 2022, app. B: model FLOPs over the device's peak) and the planner's device-hours.

Figures are dense (NVIDIA prints tensor-core figures "with sparsity": those are halved here) and per
device as torch sees it. An MI250X is two devices (one per graphics compute die), so its entry is half
the board's. Pure data: training matches torch's device name against it, the planner takes it by key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

T = 1e12


@dataclass(frozen=True)
class DatasheetPeak:
    """One device's dense peaks; None where the part has no such unit (or, for tf32, see below)."""

    product: str
    bf16: float | None  # bf16 tensor / matrix cores
    tf32: float | None  # TF32 tensor cores: what fp32 matmuls run on under torch's "high" fp32 precision
    fp32: float | None  # fp32 without TF32 (AMD: the FP32 matrix figure)
    source: str  # the datasheet, with the figures as printed
    words: tuple[str, ...] = ()  # all of these words in torch.cuda.get_device_name() identify the part


# Most specific first: a name matches the first entry whose words it all holds.
# AMD parts carry no tf32 figure: whether torch's "high" fp32 precision uses xf32 there depends on the
# ROCm build, so fp32 runs on them are counted against the FP32 matrix peak.
DEVICE_PEAKS = {
    "h100-pcie": DatasheetPeak("NVIDIA H100 PCIe", 756 * T, 378 * T, 51 * T,
                               "NVIDIA H100 Tensor Core GPU datasheet (PCIe): BF16 tensor core 1,513 TFLOPS and "
                               "TF32 756 with sparsity, FP32 51 TFLOPS", ("h100", "pcie")),
    "h100-nvl": DatasheetPeak("NVIDIA H100 NVL", 835.5 * T, 417.5 * T, 60 * T,
                              "NVIDIA H100 Tensor Core GPU datasheet (H100 NVL): BF16 tensor core 1,671 TFLOPS and "
                              "TF32 835 with sparsity, FP32 60 TFLOPS", ("h100", "nvl")),
    "h100": DatasheetPeak("NVIDIA H100 SXM", 989 * T, 494.5 * T, 67 * T,
                          "NVIDIA H100 Tensor Core GPU datasheet (SXM): BF16 tensor core 1,979 TFLOPS and "
                          "TF32 989 with sparsity, FP32 67 TFLOPS", ("h100",)),
    "h200-nvl": DatasheetPeak("NVIDIA H200 NVL", 835.5 * T, 417.5 * T, 60 * T,
                              "NVIDIA H200 Tensor Core GPU datasheet (H200 NVL): BF16 tensor core 1,671 TFLOPS and "
                              "TF32 835 with sparsity, FP32 60 TFLOPS", ("h200", "nvl")),
    "h200": DatasheetPeak("NVIDIA H200 SXM", 989 * T, 494.5 * T, 67 * T,
                          "NVIDIA H200 Tensor Core GPU datasheet (SXM): BF16 tensor core 1,979 TFLOPS and "
                          "TF32 989 with sparsity, FP32 67 TFLOPS", ("h200",)),
    "a100": DatasheetPeak("NVIDIA A100 (SXM and PCIe)", 312 * T, 156 * T, 19.5 * T,
                          "NVIDIA A100 Tensor Core GPU datasheet (SXM4 and PCIe, 40 and 80 GB alike): BF16 tensor "
                          "core 312 TFLOPS and TF32 156 dense, FP32 19.5 TFLOPS", ("a100",)),
    "l40s": DatasheetPeak("NVIDIA L40S", 362.05 * T, 183 * T, 91.6 * T,
                          "NVIDIA L40S datasheet: BF16 tensor core 362.05 TFLOPS and TF32 183 dense, "
                          "FP32 91.6 TFLOPS", ("l40s",)),
    "l4": DatasheetPeak("NVIDIA L4", 121 * T, 60 * T, 30.3 * T,
                        "NVIDIA L4 Tensor Core GPU datasheet: BF16 tensor core 242 TFLOPS and TF32 120 with "
                        "sparsity, FP32 30.3 TFLOPS", ("l4",)),
    "a10": DatasheetPeak("NVIDIA A10", 125 * T, 62.5 * T, 31.2 * T,
                         "NVIDIA A10 Tensor Core GPU datasheet: BF16 tensor core 125 TFLOPS and TF32 62.5 dense, "
                         "FP32 31.2 TFLOPS", ("a10",)),
    "v100-pcie": DatasheetPeak("NVIDIA V100 PCIe", None, None, 14 * T,
                               "NVIDIA Tesla V100 datasheet (PCIe): single precision 14 TFLOPS; no bf16 or TF32 "
                               "tensor cores", ("v100", "pcie")),
    "v100": DatasheetPeak("NVIDIA V100 SXM2", None, None, 15.7 * T,
                          "NVIDIA Tesla V100 datasheet (SXM2): single precision 15.7 TFLOPS; no bf16 or TF32 "
                          "tensor cores", ("v100",)),
    "mi250x": DatasheetPeak("AMD Instinct MI250X (one GCD)", 191.5 * T, None, 47.85 * T,
                            "AMD Instinct MI250X datasheet: BF16 383.0 TFLOPS and FP32 matrix 95.7 TFLOPS per "
                            "board, halved: torch sees each of its two GCDs as a device", ("mi250x",)),
    "mi300x": DatasheetPeak("AMD Instinct MI300X", 1307.4 * T, None, 163.4 * T,
                            "AMD Instinct MI300X datasheet: BF16 1,307.4 TFLOPS dense, FP32 matrix 163.4 TFLOPS",
                            ("mi300x",)),
    # The planner's accelerators that torch does not train on here (no words: never matched by name).
    "tpu-v4": DatasheetPeak("Google TPU v4", 275 * T, None, None,
                            "Google Cloud TPU v4 documentation: 275 TFLOPS bf16 per chip"),
    "tpu-v5e": DatasheetPeak("Google TPU v5e", 197 * T, None, None,
                             "Google Cloud TPU v5e documentation: 197 TFLOPS bf16 per chip"),
    "tpu-v5p": DatasheetPeak("Google TPU v5p", 459 * T, None, None,
                             "Google Cloud TPU v5p documentation: 459 TFLOPS bf16 per chip"),
}


def name_words(device_name: str) -> set[str]:
    """'NVIDIA A100-SXM4-80GB' -> {'nvidia', 'a100', 'sxm4', '80gb'}."""
    return set(re.split(r"[^a-z0-9]+", device_name.lower())) - {""}


def match_device(device_name: str) -> DatasheetPeak | None:
    """The table's entry for a device as torch names it, or None for a part it does not hold. A MIG
    slice ('... MIG 1g.10gb') has an unknown share of its GPU's peak: None."""
    words = name_words(device_name)
    if "mig" in words:
        return None
    return next((peak for peak in DEVICE_PEAKS.values() if peak.words and set(peak.words) <= words), None)
