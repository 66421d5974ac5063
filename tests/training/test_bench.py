"""The throughput benchmark runs end to end on a tiny shape (it is a script, not a timed test)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

KEYS = {"ours_tokens_per_s", "peer_tokens_per_s", "peer_fastest", "peer_fastest_tokens_per_s", "ratio", "ratios",
        "baseline_tokens_per_s", "speedup_over_baseline", "mfu", "mfu_convention", "mfu_datasheet",
        "mfu_measured_peak", "peak_flops_datasheet", "data_wait_frac"}
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


def run_bench(out: Path, env: dict | None = None, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_throughput.py"), "--device", "cpu", "--shapes", "1,16,2",
         "--ctx", "16", "--vocab", "64", "--batch", "4", "--micro-batch", "2", "--repeats", "2", "--warmup", "1",
         "--round-s", "0.05", "--peak-s", "0.02", "--data-tokens", "10000", "--json", str(out), *extra],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "L1_d16_h2_ctx16_v64" in proc.stdout and "data loading" in proc.stdout
    table = json.loads(out.read_text())
    assert table["environment"]["torch"]
    (row,) = table["shapes"]
    assert KEYS <= row.keys()
    assert row["ours_tokens_per_s"] > 0 and 0 < row["mfu"] < 1 and 0 <= row["data_wait_frac"] < 1
    # a CPU has no datasheet peak: the headline is the measured-peak MFU
    assert row["mfu_convention"] == "measured_peak" and row["mfu"] == row["mfu_measured_peak"]
    return proc, row


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="the peer needs transformers (pip install -e .[bench])")
def test_bench_compares_with_the_fastest_peer_and_a_baseline_on_a_tiny_shape(tmp_path):
    # two of the peer's four configurations (the compiled ones cost a compilation each), HEAD as the baseline
    proc, row = run_bench(tmp_path / "bench.json", None, "--peer-configs", "fp32-eager", "bf16-eager",
                          "--baseline-ref", "HEAD")
    peers = row["peer_tokens_per_s"]
    assert set(peers) == {"peer fp32 eager", "peer bf16 eager"} and min(peers.values()) > 0
    assert row["peer_fastest"] == max(peers, key=peers.get)
    assert row["ratio"] == row["ours_tokens_per_s"] / max(peers.values()) == row["ratios"][row["peer_fastest"]]
    assert row["baseline_ref"] == "HEAD" and row["baseline_tokens_per_s"] > 0 and row["speedup_over_baseline"] > 0
    assert "ours / the peer at its fastest configuration: lowest" in proc.stdout


@pytest.mark.slow
def test_bench_without_transformers_times_ours_only(tmp_path):
    hidden = tmp_path / "site" / "transformers"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('transformers hidden by the test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(hidden.parent), os.environ.get("PYTHONPATH")])))
    proc, row = run_bench(tmp_path / "bench.json", env)
    assert "transformers is not installed" in proc.stderr
    assert row["peer_tokens_per_s"] == {} and row["ratio"] is None and row["peer_fastest"] is None


@pytest.mark.parametrize("sweep,sizes", [("demo", 8), ("cpu_ladder", 9)])
def test_a_cpu_sweeps_preset_is_its_grid(sweep, sizes):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import bench_throughput
    finally:
        sys.path.remove(str(REPO / "scripts"))
    from scaling_sweep.data.tokenizer import vocab_size
    from scaling_sweep.training.sweep import grid

    runs = grid(sweep)
    preset = bench_throughput.preset(sweep)
    expected = {f"{r.model.n_layer},{r.model.d_model},{r.model.n_head},{r.model.n_ctx}" for r in runs}
    assert set(preset["shapes"]) == expected and len(preset["shapes"]) == sizes
    assert {preset["batch"]} == {r.train.batch_size for r in runs} and {preset["ctx"]} == {r.model.n_ctx for r in runs}
    assert {preset["vocab"]} == {vocab_size(r.tokenizer) for r in runs} and preset["threads"] == 1
