"""core.runfiles: the per-run files round-trip, read tolerantly, and read as written before the schema."""

import json
import os
import shutil
from pathlib import Path

import pytest

from scaling_sweep.analysis.runs import read_run
from scaling_sweep.core import runfiles
from scaling_sweep.core.runfiles import MetricsRow, RunFileError, RunLockedError, RunSummary

# A summary.json and the first metrics lines exactly as the trainer wrote them before RunSummary
# existed (schema 1: no version field), from a demo-sweep run.
V1_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "v1_run"


def test_a_summary_round_trips_through_the_file(tmp_path):
    summary = RunSummary(run_name="r", status="completed", N=10, tokens=100, flops=6000.0, best_val_loss=2.5)
    runfiles.write_summary(tmp_path, summary)
    assert runfiles.read_summary(tmp_path) == summary
    assert json.loads((tmp_path / runfiles.SUMMARY_FILE).read_text())["schema_version"] == runfiles.SCHEMA_VERSION
    assert not list(tmp_path.glob(".*tmp")), "the temporary file of the atomic write was left behind"


def test_files_written_before_the_schema_still_read(tmp_path):
    for name in (runfiles.SUMMARY_FILE, runfiles.METRICS_FILE):
        shutil.copy(V1_RUN / name, tmp_path / name)
    summary = runfiles.read_summary(tmp_path)
    assert summary.schema_version == 1 and summary.finished and summary.N == 25472
    assert summary.best_val_loss == pytest.approx(2.4329845905303955) and summary.extra == {}
    assert summary.mfu == pytest.approx(0.10840585708538181) and summary.mfu_convention is None  # before schema 3
    rows, skipped = runfiles.read_metrics(tmp_path)
    assert skipped == 0 and [r.step for r in rows] == [0, 5, 10] and rows[0].val_loss == pytest.approx(5.5545626)
    run = read_run(tmp_path)
    assert run.exclusion() is None and run.final_loss == pytest.approx(2.4329845905303955)


def test_unknown_keys_of_a_newer_schema_are_kept(tmp_path):
    (tmp_path / runfiles.SUMMARY_FILE).write_text(json.dumps({"status": "stopped", "from_the_future": [1, 2]}))
    summary = runfiles.read_summary(tmp_path)
    assert summary.extra == {"from_the_future": [1, 2]} and summary.to_dict()["from_the_future"] == [1, 2]


def test_a_truncated_or_garbled_metrics_line_is_skipped_and_counted(tmp_path):
    rows = [MetricsRow(step=s, tokens=8 * s, flops=48.0 * s, train_loss=3.0 - s / 10) for s in (1, 2, 3)]
    runfiles.write_metrics(tmp_path, rows)
    with open(tmp_path / runfiles.METRICS_FILE, "a") as f:
        f.write('[1, 2]\n{"tokens": 5}\n{"step": 4, "tok')
    read, skipped = runfiles.read_metrics(tmp_path)
    assert read == rows and skipped == 3


def test_absent_and_damaged_summaries(tmp_path):
    assert runfiles.read_summary(tmp_path) is None
    (tmp_path / runfiles.SUMMARY_FILE).write_text('{"status": "comp')
    with pytest.raises(RunFileError, match="summary.json"):
        runfiles.read_summary(tmp_path)
    (tmp_path / runfiles.SUMMARY_FILE).write_text("[1]")
    with pytest.raises(RunFileError, match="not a run summary"):
        runfiles.read_summary(tmp_path)


def test_rows_leave_out_what_was_not_measured():
    assert json.loads(MetricsRow(step=0, tokens=0, flops=0.0, val_loss=5.5).to_json()) == {
        "step": 0, "tokens": 0, "flops": 0.0, "val_loss": 5.5}


def test_a_run_folder_is_held_by_one_process_at_a_time(tmp_path):
    (tmp_path / f".{runfiles.CHECKPOINT_FILE}.99999.tmp").write_bytes(b"a write a kill cut short")
    with runfiles.run_lock(tmp_path):
        assert not list(tmp_path.glob(".*.tmp")), "the holder clears temp files of killed writers"
        # flock locks belong to an open file, so a second open in this process stands for a second process
        with pytest.raises(RunLockedError, match=f"is being trained by pid {os.getpid()} on "):
            with runfiles.run_lock(tmp_path):
                pass
    with runfiles.run_lock(tmp_path):  # released when its holder is done
        pass
