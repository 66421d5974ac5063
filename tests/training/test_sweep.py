import math
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

from scaling_sweep.core.accounting import param_counts
from scaling_sweep.core.runfiles import read_metrics, read_summary, run_lock
from scaling_sweep.training.sweep import grid, sweep_names

MODELS = ["demo/L2_d32", "demo/L2_d64", "demo/L3_d96"]


def sweep_command(corpus_file, tmp_path, max_steps=30) -> list[str]:
    return [
        sys.executable, "-m", "scaling_sweep.train", "+sweep=demo", f"model={','.join(MODELS)}",
        "model.n_ctx=32", "train.batch_size=8", f"train.max_steps={max_steps}", "train.eval_every=10",
        "train.eval_windows=8", "train.checkpoint_every=5", "train.progress=false", "train.dtype=fp32",
        "data=text_files", f"data.path={corpus_file}", "data.name=test", "data.val_fraction=0.05",
        f"data.cache_dir={tmp_path / 'cache'}", f"runs_root={tmp_path / 'runs'}", "device=cpu",
    ]


def run_sweep(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, **kwargs)


def run_dirs(tmp_path):
    return sorted(p for p in (tmp_path / "runs" / "demo").iterdir() if p.is_dir())


@pytest.mark.slow
def test_a_sweep_runs_every_point_and_a_rerun_trains_nothing(corpus_file, tmp_path):
    proc = run_sweep(sweep_command(corpus_file, tmp_path))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    dirs = run_dirs(tmp_path)
    assert [d.name for d in dirs] == ["L2_d32_h2", "L2_d64_h2", "L3_d96_h3"]
    assert all(read_summary(d).status == "completed" for d in dirs)
    before = {d: (d / "metrics.jsonl").stat().st_mtime_ns for d in dirs}

    again = run_sweep(sweep_command(corpus_file, tmp_path))
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-3000:]
    assert out.count("nothing to train") == 3
    assert {d: (d / "metrics.jsonl").stat().st_mtime_ns for d in dirs} == before


@pytest.mark.slow
def test_a_killed_sweep_finishes_on_restart_without_training_a_run_twice(corpus_file, tmp_path):
    args = sweep_command(corpus_file, tmp_path, max_steps=60)
    victim = run_sweep(args)
    second = tmp_path / "runs" / "demo" / "L2_d64_h2"
    deadline = time.time() + 300
    while time.time() < deadline and not (second / "checkpoint.pt").exists():
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    first = tmp_path / "runs" / "demo" / "L2_d32_h2"
    assert read_summary(first).status == "completed"
    assert read_summary(second).status == "running"
    first_metrics = (first / "metrics.jsonl").read_text()

    restart = run_sweep(args)
    out, _ = restart.communicate(timeout=600)
    assert restart.returncode == 0, out[-3000:]
    assert (first / "metrics.jsonl").read_text() == first_metrics
    for d in run_dirs(tmp_path):
        assert read_summary(d).status == "completed"
        steps = [r.step for r in read_metrics(d)[0]]
        assert steps == sorted(set(steps)) and steps[-1] == 60


@pytest.mark.slow
def test_a_run_another_process_trains_is_skipped_and_the_sweep_goes_on(corpus_file, tmp_path):
    held = tmp_path / "runs" / "demo" / "L2_d64_h2"
    with run_lock(held):  # this test's process stands for the one training it
        proc = run_sweep(sweep_command(corpus_file, tmp_path))
        out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 2, out[-3000:]
    assert f"train: error: {held} is being trained by pid {os.getpid()} on " in out
    assert "train: 1 run(s) of the sweep skipped: " in out and "Traceback" not in out
    assert [read_summary(d).status for d in run_dirs(tmp_path) if d != held] == ["completed", "completed"]
    assert not (held / "metrics.jsonl").exists()


@pytest.mark.parametrize("name", [n for n in sweep_names() if n != "demo"])
def test_gpu_sweeps_span_the_papers_range(name):
    runs = grid(name)
    counts = [param_counts(r.model, 50257).non_embedding for r in runs]
    assert len(runs) >= 6
    if name == "shape":  # fig. 5 holds N (nearly) fixed and varies the shape
        assert max(counts) / min(counts) < 5
    else:
        assert math.log10(max(counts) / min(counts)) >= 2.5
    assert len({r.run_name for r in runs}) == len(runs), "two grid points share a run folder"


def test_demo_sweep_is_cpu_sized():
    runs = grid("demo")
    counts = [param_counts(r.model, 257).non_embedding for r in runs]
    assert len(runs) >= 6 and math.log10(max(counts) / min(counts)) >= 1.5
    assert {r.tokenizer.name for r in runs} == {"byte"} and {r.data.source for r in runs} == {"embedded"}
