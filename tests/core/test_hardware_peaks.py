"""core.hardware_peaks: torch's device names find their datasheet entry, and the planner reads the same table."""

import pytest

from scaling_sweep.core.hardware_peaks import DEVICE_PEAKS, match_device
from scaling_sweep.planning import plan


@pytest.mark.parametrize("name,key", [
    ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H100 NVL", "h100-nvl"),
    ("NVIDIA H200", "h200"), ("NVIDIA H200 NVL", "h200-nvl"), ("NVIDIA A100-SXM4-80GB", "a100"),
    ("NVIDIA A100-PCIE-40GB", "a100"), ("NVIDIA A100 80GB PCIe", "a100"), ("NVIDIA L4", "l4"), ("NVIDIA L40S", "l40s"),
    ("NVIDIA A10", "a10"), ("Tesla V100-SXM2-32GB", "v100"), ("Tesla V100-PCIE-16GB", "v100-pcie"),
    ("AMD Instinct MI250X/MI250", "mi250x"), ("AMD Instinct MI300X", "mi300x"),
])
def test_torch_device_names_find_their_datasheet(name, key):
    assert match_device(name) is DEVICE_PEAKS[key]


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-40GB MIG 1g.5gb"])
def test_parts_not_in_the_table_and_mig_slices_have_no_datasheet_peak(name):
    assert match_device(name) is None


def test_every_entry_names_its_datasheet_and_the_planner_reads_the_same_table():
    for peak in DEVICE_PEAKS.values():
        assert "datasheet" in peak.source or "documentation" in peak.source
        figures = [f for f in (peak.bf16, peak.tf32, peak.fp32) if f is not None]
        assert figures == sorted(figures, reverse=True), peak.product  # dense bf16 >= tf32 >= fp32
    assert plan.DEVICE_PEAKS["h100"] is DEVICE_PEAKS["h100"] and DEVICE_PEAKS["h100"].bf16 == 989e12
    assert "v100" not in plan.DEVICE_PEAKS  # the planner prices bf16 training: a V100 has no bf16 peak
