"""MFU by both conventions: the datasheet dense peak of a GPU by name and dtype (or train.peak_flops),
and the measured torch.mm peak, the median of the trials cached per machine, device, dtype and threads,
which a run adds to before it trains (when short of three) and at its end (when long enough); both named in
summary.json, metrics.jsonl and TensorBoard, and a fraction above 1 recorded with a warning."""

import json
import statistics

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from scaling_sweep.core.config import TrainConfig
from scaling_sweep.core.runfiles import read_metrics
from scaling_sweep.training import hardware, mfu
from scaling_sweep.training.loop import train
from scaling_sweep.training.mfu import Mfu, Peaks

CPU = torch.device("cpu")
NO_DATASHEET = hardware.DatasheetFlops(None, "none")


@pytest.fixture
def h100(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    precision = torch.get_float32_matmul_precision()
    yield torch.device("cuda")
    torch.set_float32_matmul_precision(precision)


def test_a_gpus_datasheet_peak_follows_its_name_and_the_runs_dtype(h100):
    assert hardware.datasheet_peak(h100, "bf16").flops == 989e12
    torch.set_float32_matmul_precision("high")  # hardware.configure on CUDA: fp32 matmuls on TF32 tensor cores
    tf32 = hardware.datasheet_peak(h100, "fp32")
    assert tf32.flops == 494.5e12 and "dense tf32" in tf32.source and "H100 Tensor Core GPU datasheet" in tf32.source
    torch.set_float32_matmul_precision("highest")
    assert hardware.datasheet_peak(h100, "fp32").flops == 67e12


def test_a_given_peak_overrides_the_table_and_a_cpu_has_none_without_one():
    assert hardware.datasheet_peak(CPU, "bf16", override=2e12) == hardware.DatasheetFlops(
        2e12, "train.peak_flops (given in the config)")
    none = hardware.datasheet_peak(CPU, "bf16")
    assert none.flops is None and "train.peak_flops" in none.source


def test_the_measured_peak_is_the_median_of_the_cached_trials_and_a_run_adds_to_them(monkeypatch, tmp_path):
    trials = iter([9e11, 1e11, 8e11, 7e11, 2e12] + [6e11] * 20)  # one trial slowed by another process, one a burst
    monkeypatch.setattr(hardware, "measure_matmul_flops", lambda device, dtype, seconds: next(trials))
    cache, train_cfg = tmp_path / "peaks.json", TrainConfig(peak_trial_s=1.0)
    first = Peaks.at_start(CPU, "bf16", train_cfg, cache)  # an empty cache: three trials before training
    assert first.measured_peak == 8e11 and first.taken == 3
    assert "median of 3 trials of 1 s, 3 by this run and 0 by earlier runs" in first.method()
    first.remeasure()  # a session shorter than 20 trials adds none at its end
    assert first.taken == 3
    second = Peaks.at_start(CPU, "bf16", train_cfg, cache)  # starts at once from the cache
    assert second.measured == [9e11, 1e11, 8e11] and second.taken == 0
    second.started -= 20.0  # a session of 20 trial lengths: one trial at its end
    second.remeasure()
    assert second.measured_peak == pytest.approx(7.5e11) and second.taken == 1
    assert mfu.cached_trials(cache, second.key()) == [9e11, 1e11, 8e11, 7e11]
    assert Peaks.at_start(CPU, "fp32", train_cfg, cache).taken == 3  # another dtype has trials of its own
    for _ in range(10):
        later = Peaks.at_start(CPU, "bf16", train_cfg, cache)
        later.started -= 20.0
        later.remeasure()
    assert mfu.cached_trials(cache, later.key()) == [6e11] * mfu.CACHED_TRIALS  # the most recent ones only


def test_an_unreadable_cache_is_measured_again_and_rewritten(monkeypatch, tmp_path):
    monkeypatch.setattr(hardware, "measure_matmul_flops", lambda device, dtype, seconds: 5e11)
    cache = tmp_path / "peaks.json"
    cache.write_text("{not json")
    peaks = Peaks.at_start(CPU, "bf16", TrainConfig(peak_trial_s=1.0), cache)
    assert peaks.measured == [5e11] * 3 and mfu.cached_trials(cache, peaks.key()) == [5e11] * 3


def test_the_headline_is_the_datasheet_one_where_known():
    measured = Peaks(CPU, "bf16", 1.0, NO_DATASHEET, measured=[4e11, 5e11, 6e11])
    assert measured.mfu(1e11) == Mfu(0.2, "measured_peak", None, 0.2)
    sheet = Peaks(CPU, "bf16", 1.0, hardware.DatasheetFlops(1e12, "given"), measured=[4e11, 5e11, 6e11])
    assert sheet.mfu(1e11) == Mfu(0.1, "datasheet", 0.1, 0.2)
    assert Peaks(CPU, "bf16", 0, NO_DATASHEET).mfu(1e11) == Mfu(None, None, None, None)  # train.peak_trial_s=0


def test_a_fraction_above_one_is_recorded_with_a_warning_not_clamped():
    fields = Peaks(CPU, "bf16", 1.0, NO_DATASHEET, measured=[1e11]).summary_fields(1.5e11)
    assert fields["mfu"] == fields["mfu_measured_peak"] == 1.5
    assert fields["mfu_warning"].startswith("mfu_measured_peak 1.500 > 1")
    assert Peaks(CPU, "bf16", 1.0, NO_DATASHEET, measured=[1e12]).summary_fields(1.5e11)["mfu_warning"] is None


@pytest.mark.parametrize("peak_flops,convention", [(None, "measured_peak"), (1e12, "datasheet")])
def test_a_runs_files_name_both_mfus_and_their_denominators(tiny_config, tmp_path, monkeypatch, peak_flops,
                                                            convention):
    monkeypatch.setattr(mfu, "PEAK_CACHE", tmp_path / "cache" / "peaks.json")
    cfg = tiny_config(train={"max_steps": 10, "eval_every": 10, "peak_trial_s": 0.01, "peak_flops": peak_flops})
    train(cfg, tmp_path)
    s = json.loads((tmp_path / "summary.json").read_text())
    device_flops = s["flops_per_token_exact"] * s["tokens_per_s"]
    assert s["mfu_convention"] == convention and s["mfu"] == s[f"mfu_{convention}"]
    trials = s["matmul_peak_measurements"]
    assert len(trials) in (3, 4) and s["matmul_peak_flops"] == pytest.approx(statistics.median(trials))
    assert trials == mfu.cached_trials(mfu.PEAK_CACHE, hardware.matmul_peak_key(CPU, "fp32", 0.01))
    assert s["mfu_measured_peak"] == pytest.approx(device_flops / s["matmul_peak_flops"])
    assert f"median of {len(trials)} trials of 0.01 s, {len(trials)} by this run" in s["matmul_peak_method"]
    assert s["peak_flops_datasheet"] == peak_flops and s["peak_flops_datasheet_source"]
    if peak_flops:
        assert s["mfu_datasheet"] == pytest.approx(device_flops / peak_flops)
    rows = [r for r in read_metrics(tmp_path)[0] if r.tokens_per_s]
    assert rows and all(r.mfu == getattr(r, f"mfu_{convention}") for r in rows)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"throughput/mfu", "throughput/mfu_measured_peak"} <= tags
    assert ("throughput/mfu_datasheet" in tags) == bool(peak_flops)
