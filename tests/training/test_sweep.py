import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from scaling_sweep.core.accounting import param_counts
from scaling_sweep.core.budget import planned_steps
from scaling_sweep.core.config import config_dir
from scaling_sweep.core.runfiles import RunSummary, read_metrics, read_summary, run_lock, write_summary
from scaling_sweep.core.system import cores_given
from scaling_sweep.training.launch import LAUNCH_ENV, STOP, Launch
from scaling_sweep.training.sweep import RecordLaunch, SweepProgress, end_of_launch, grid, planned_jobs, sweep_names
from scaling_sweep.training.train import register_resolvers

MODELS = ["demo/L2_d24", "demo/L2_d32", "demo/L2_d48"]


def sweep_command(corpus_file, tmp_path, max_steps=30, models=MODELS) -> list[str]:
    return [
        sys.executable, "-m", "scaling_sweep.train", "+sweep=demo", f"model={','.join(models)}",
        "model.n_ctx=32", "train.batch_size=8", f"train.max_steps={max_steps}", "train.eval_every=10",
        "train.eval_windows=8", "train.checkpoint_every=5", "train.progress=false", "train.dtype=fp32",
        "data=text_files", f"data.path={corpus_file}", "data.name=test", "data.val_fraction=0.05",
        f"data.cache_dir={tmp_path / 'cache'}", f"runs_root={tmp_path / 'runs'}", "device=cpu",
    ]


def run_sweep(args, env=None, **kwargs):
    env = dict(env or os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, **kwargs)


def run_dirs(tmp_path):
    return sorted(p for p in (tmp_path / "runs" / "demo").iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.slow
def test_a_sweep_runs_every_point_and_a_rerun_trains_nothing(corpus_file, tmp_path):
    proc = run_sweep(sweep_command(corpus_file, tmp_path))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    dirs = run_dirs(tmp_path)
    assert [d.name for d in dirs] == ["L2_d24_h2", "L2_d32_h2", "L2_d48_h3"]
    summaries = [read_summary(d) for d in dirs]
    assert [s.status for s in summaries] == ["completed"] * 3
    if cores_given() >= 2:  # the demo's joblib launcher: one job per core, one torch thread each
        spans = [((d / ".hydra" / "config.yaml").stat().st_mtime, (d / "summary.json").stat().st_mtime) for d in dirs]
        assert most_at_once(spans) == min(3, cores_given()) and [s.hardware["threads"] for s in summaries] == [1] * 3
    before = {d: (d / "metrics.jsonl").stat().st_mtime_ns for d in dirs}

    again = run_sweep(sweep_command(corpus_file, tmp_path))
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-3000:]
    assert out.count("nothing to train") == 3
    assert {d: (d / "metrics.jsonl").stat().st_mtime_ns for d in dirs} == before


def statuses(tmp_path) -> dict:
    """status of each run of the sweep that has written its summary."""
    return {d.name: read_summary(d).status for d in run_dirs(tmp_path) if (d / "summary.json").exists()}


def one_done_one_midway(tmp_path) -> bool:
    """A run has completed and another has a checkpoint but has not (whichever order the launcher ran them in)."""
    if not (tmp_path / "runs" / "demo").is_dir():
        return False
    now = statuses(tmp_path)
    midway = [d for d in run_dirs(tmp_path) if now.get(d.name) == "running" and (d / "checkpoint.pt").exists()]
    return "completed" in now.values() and bool(midway)


@pytest.mark.slow
def test_a_killed_sweep_finishes_on_restart_without_training_a_run_twice(corpus_file, tmp_path):
    args = sweep_command(corpus_file, tmp_path, max_steps=60)
    victim = run_sweep(args)
    deadline = time.time() + 300
    while time.time() < deadline and not one_done_one_midway(tmp_path):
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # the launcher's worker processes with it: they share its group
    victim.wait()
    at_kill = statuses(tmp_path)
    done = [d for d in run_dirs(tmp_path) if at_kill.get(d.name) == "completed"]
    assert done and "running" in at_kill.values()
    done_metrics = {d: (d / "metrics.jsonl").read_text() for d in done}

    restart = run_sweep(args)
    out, _ = restart.communicate(timeout=600)
    assert restart.returncode == 0, out[-3000:]
    assert {d: (d / "metrics.jsonl").read_text() for d in done} == done_metrics
    for d in run_dirs(tmp_path):
        assert read_summary(d).status == "completed"
        steps = [r.step for r in read_metrics(d)[0]]
        assert steps == sorted(set(steps)) and steps[-1] == 60


@pytest.mark.slow
def test_a_run_another_process_trains_is_skipped_and_the_sweep_goes_on(corpus_file, tmp_path):
    held = tmp_path / "runs" / "demo" / "L2_d32_h2"
    with run_lock(held):  # this test's process stands for the one training it
        proc = run_sweep(sweep_command(corpus_file, tmp_path))
        out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 2, out[-3000:]
    assert f"train: error: {held} is being trained by pid {os.getpid()} on " in out
    assert "train: 1 run(s) of the sweep skipped: " in out and "Traceback" not in out
    assert [read_summary(d).status for d in run_dirs(tmp_path) if d != held] == ["completed", "completed"]
    assert not (held / "metrics.jsonl").exists()


def test_jobs_note_how_they_ended_in_the_launch_folder_that_every_job_reaches(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(LAUNCH_ENV, raising=False)
    sweep_dir = tmp_path / "runs" / "demo"
    with STOP.handling():
        RecordLaunch().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}}))
        folder = os.environ[LAUNCH_ENV]
        assert os.path.dirname(folder) == str(sweep_dir)  # not the launching node's /tmp (SLURM jobs run elsewhere)
        job = Launch.joined()  # as a job in another process finds it
        assert job.launcher_alive() and job.notes("skipped") == []
        for run in ("L2_d24_h2", "L2_d48_h3"):
            job.note("skipped", sweep_dir / run)
        job.note("stopped", sweep_dir / "L2_d32_h2", "preempted", 120)
        job.note("unstarted", sweep_dir / "L2_d64_h4")
        assert end_of_launch("train") == 143
    assert not os.path.exists(folder)
    assert capsys.readouterr().err.splitlines() == [
        f"train: 2 run(s) of the sweep skipped: {sweep_dir / 'L2_d24_h2'}, {sweep_dir / 'L2_d48_h3'}",
        "train: sweep preempted: stopped L2_d32_h2 at step 120, each saved at that step; 1 run(s) not started; "
        "rerun the same command to resume"]


def importable(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(name) is not None for name in modules)
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) intervals that overlap at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def processes_naming(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


needs_ray = pytest.mark.skipif(not importable("ray", "hydra_plugins.hydra_ray_launcher"), reason="pip install '.[ray]'")


@needs_ray
@pytest.mark.parametrize("device,gpus", [("cpu", 0), ("cuda", 1), ("cuda:1", 1)])
def test_ray_jobs_ask_for_a_gpu_when_their_device_is_one(device, gpus):
    register_resolvers()
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("config", ["+sweep=demo", "+launcher=ray", f"device={device}"], return_hydra_config=True)
    remote = OmegaConf.to_container(cfg.hydra.launcher.ray.remote, resolve=True)
    assert remote == {"num_cpus": 1, "num_gpus": gpus, "max_calls": 1}


@needs_ray
def test_ray_jobs_on_other_nodes_are_given_the_sweeps_skipped_runs_file(monkeypatch, tmp_path):
    register_resolvers()
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("config", ["+sweep=demo", "+launcher=ray"], return_hydra_config=True)
    monkeypatch.setenv(LAUNCH_ENV, str(tmp_path / ".launch-1"))  # as RecordLaunch names it, before launch
    init = OmegaConf.to_container(cfg.hydra.launcher.ray.init, resolve=True)  # as the launcher passes it to ray.init
    assert init["runtime_env"] == {"env_vars": {LAUNCH_ENV: str(tmp_path / ".launch-1")}}


@pytest.mark.slow
@needs_ray
def test_a_sweep_through_ray_runs_two_jobs_at_a_time_each_on_the_core_it_was_given(corpus_file, tmp_path):
    ray_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay under 108 characters
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}  # Ray sets it per job
    args = sweep_command(corpus_file, tmp_path, models=[*MODELS, "demo/L2_d64"]) + [
        "+launcher=ray", "hydra.launcher.ray.init.num_cpus=2", "hydra.launcher.ray.remote.num_cpus=1",
        f"+hydra.launcher.ray.init._temp_dir={ray_dir}"]
    try:
        proc = run_sweep(args, env=env)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        assert not processes_naming(ray_dir), "Ray's processes outlived the sweep"
    finally:
        shutil.rmtree(ray_dir, ignore_errors=True)
    dirs = run_dirs(tmp_path)
    assert [d.name for d in dirs] == ["L2_d24_h2", "L2_d32_h2", "L2_d48_h3", "L2_d64_h4"]
    summaries = [read_summary(d) for d in dirs]
    assert [s.status for s in summaries] == ["completed"] * 4
    assert all(read_metrics(d)[0][-1].step == 30 and any((d / "tb").iterdir()) for d in dirs)
    assert [s.hardware["threads"] for s in summaries] == [1] * 4  # one core each, on a box of two or more
    spans = [((d / ".hydra" / "config.yaml").stat().st_mtime, (d / "summary.json").stat().st_mtime) for d in dirs]
    assert most_at_once(spans) == 2


CPU_SWEEPS = ("demo", "cpu_ladder")
HPARAM_SWEEPS = ("hparams", "hparams_cpu")  # grids of LR x batch at a few sizes, held to their own test
KAPLAN_CPU = "kaplan_cpu"


@pytest.mark.parametrize("name", [n for n in sweep_names() if n not in (*CPU_SWEEPS, *HPARAM_SWEEPS, KAPLAN_CPU)])
def test_gpu_sweeps_span_the_papers_range(name):
    runs = grid(name)
    counts = [param_counts(r.model, 50257).non_embedding for r in runs]
    assert len(runs) >= 6
    if name == "shape":  # fig. 5 holds N (nearly) fixed and varies the shape
        assert max(counts) / min(counts) < 5
    else:
        assert math.log10(max(counts) / min(counts)) >= 2.5
    assert len({r.run_name for r in runs}) == len(runs), "two grid points share a run folder"


@pytest.mark.parametrize("name", CPU_SWEEPS)
def test_cpu_sweeps_are_cpu_sized_isoflop_designs(name):
    runs = grid(name)
    counts = [param_counts(r.model, 257).non_embedding for r in runs]
    assert len(runs) >= 6 and math.log10(max(counts) / min(counts)) >= 1.4
    assert {r.tokenizer.name for r in runs} == {"byte"} and {r.data.source for r in runs} == {"embedded"}
    assert {r.optim.schedule for r in runs} == {"wsd"}
    sizes_per_budget = Counter(c for r in runs for c in [r.train.compute_budget, *r.optim.cooldown_budgets])
    # approach 2's interval needs more than 3 budgets: with 3 optima its t quantile has one degree of freedom
    assert len(sizes_per_budget) >= 5 and min(sizes_per_budget.values()) >= 4


@pytest.mark.slow  # composes 156 runs: 15-70 s, by load
@pytest.mark.parametrize("name", HPARAM_SWEEPS)
def test_hparam_sweeps_cross_5_lrs_with_3_batches_at_each_size_every_run_to_its_sizes_tokens(name):
    """Issue 25's grids: at each size at least 5 log-spaced peak LRs x 3 batch sizes, one compute budget per
    size (the same tokens for every run of it) and a cooldown branch: two token budgets per size."""
    by_size, runs = {}, grid(name)
    for r in runs:
        by_size.setdefault(r.model.d_model, []).append(r)
    assert len(by_size) >= 4
    for size in by_size.values():
        lrs, batches = sorted({r.optim.lr for r in size}), {r.train.batch_size for r in size}
        assert len(lrs) >= 5 and len(batches) >= 3 and len(size) == len(lrs) * len(batches)
        assert len(set(np.diff(np.log(lrs)).round(6))) == 1  # log-spaced
        assert len({r.train.compute_budget for r in size}) == 1 and {r.optim.schedule for r in size} == {"wsd"}
        assert {len(r.optim.cooldown_budgets) for r in size} == {1}
    assert len({r.run_name for r in runs}) == len(runs), "two grid points share a run folder"


def test_kaplan_cpu_holds_a_size_ladder_a_data_grid_and_a_batch_sweep():
    runs = grid(KAPLAN_CPU)
    assert len({r.run_name for r in runs}) == len(runs), "two grid points share a run folder"
    assert {r.tokenizer.name for r in runs} == {"byte"} and {r.data.source for r in runs} == {"embedded"}
    full = [r for r in runs if r.train.max_unique_tokens is None]
    ladder = [r for r in full if r.train.batch_size == 64]
    counts = {param_counts(r.model, 257).non_embedding for r in ladder}
    # Kaplan's size runs all train the same number of steps (sec. 2.2), to the end of their schedule
    assert len(counts) >= 8 and math.log10(max(counts) / min(counts)) >= 1.9
    assert {planned_steps(r, 0) for r in ladder} == {10_000} and {r.train.early_stop_patience for r in ladder} == {0}
    limited = [r for r in runs if r.train.max_unique_tokens is not None]
    data_sizes = {}
    for r in limited:
        data_sizes.setdefault(param_counts(r.model, 257).non_embedding, set()).add(r.train.max_unique_tokens)
    assert len(data_sizes) >= 2 and min(map(len, data_sizes.values())) >= 2
    assert all(r.train.early_stop_patience > 0 for r in limited)
    batches = {}
    for r in full:
        batches.setdefault(param_counts(r.model, 257).non_embedding, set()).add(r.train.batch_size)
    assert sum(len(b) >= 3 for b in batches.values()) >= 2, "B_crit(L) from 3+ batch sizes at 2 model sizes"


def listed_device_hours(capsys, *args) -> list[float]:
    from scaling_sweep.training.sweep import main

    assert main(["demo", "--list", *args]) == 0
    runs = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("    ")]
    assert len(runs) == 8 and all(int(run[3].removeprefix("steps=").replace(",", "")) > 1000 for run in runs)
    return [float(run[-2]) for run in runs]


def test_the_listing_gives_each_run_its_device_hours_at_a_stated_peak_and_mfu(capsys):
    h100 = listed_device_hours(capsys)
    a100_at_half = listed_device_hours(capsys, "--device", "a100", "--mfu", "0.2")
    assert all(math.isclose(a / h, 989 / 312 * 2, rel_tol=0.02) for a, h in zip(a100_at_half, h100))
    assert listed_device_hours(capsys, "--peak", "989e12") == h100


def isoflop_profiles() -> dict[float, list]:
    """The isoflop sweep's planned runs (training.sweep.PlannedRun) by compute budget, smallest model first."""
    from scaling_sweep.training.sweep import plan_run  # imported here: this file's top belongs to others' work

    profiles = {}
    for run in sorted(map(plan_run, grid("isoflop")), key=lambda r: r.counts.total):
        profiles.setdefault(run.cfg.train.compute_budget, []).append(run)
    return profiles


def tokens_per_param(run) -> float:
    return run.tokens / run.counts.total


def expected_optimum(runs: list, optimal_tokens_per_param: float) -> float:
    """Total parameters of the size that would train optimal_tokens_per_param on the profile's budget,
    log-log between the two sizes around it (tokens per parameter fall as the models grow)."""
    small, large = next((a, b) for a, b in zip(runs, runs[1:])
                        if tokens_per_param(a) >= optimal_tokens_per_param > tokens_per_param(b))
    x = [math.log(tokens_per_param(r)) for r in (small, large)]
    y = [math.log(r.counts.total) for r in (small, large)]
    return math.exp(y[0] + (math.log(optimal_tokens_per_param) - x[0]) * (y[1] - y[0]) / (x[1] - x[0]))


def test_every_isoflop_budget_brackets_its_expected_optimum_and_trains_2_to_200_tokens_per_parameter():
    """The optimum: the size trained on Chinchilla's tokens per parameter (D_opt / N_opt, N total) with the
    budget spent as the runs spend it, 6 N tokens with N non-embedding."""
    from scaling_sweep.core.budget import chinchilla_allocation

    profiles = isoflop_profiles()
    assert len(profiles) >= 4
    for compute, runs in profiles.items():
        N_opt, D_opt = chinchilla_allocation(compute)
        assert tokens_per_param(runs[0]) > D_opt / N_opt > tokens_per_param(runs[-1]), f"{compute:g} not bracketed"
        optimum, totals = expected_optimum(runs, D_opt / N_opt), [r.counts.total for r in runs]
        assert optimum / 8 <= totals[0] and totals[-1] <= 8 * optimum, (compute, optimum, totals)
        assert 7 <= len(runs) <= 9, compute
        assert all(2 <= tokens_per_param(r) <= 200 for r in runs), compute
        assert all(abs(r.flops / compute - 1) < 0.01 for r in runs), f"a run at {compute:g} misses its budget"


def test_the_eta_counts_a_job_that_has_not_measured_its_rate_at_the_rate_others_measured(tmp_path):
    """On plain logs the total is printed as a job ends and the next starts, before that one has a rate."""
    class Notes:
        def __init__(self):
            self.kinds = {"started": [], "ended": []}

        def notes(self, kind):
            return self.kinds.get(kind, [])

    plans = {}
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        plans[str((tmp_path / name).resolve())] = SimpleNamespace(tokens=1_000_000, flops_exact_per_token=10.0)
    launch = Notes()
    progress = SweepProgress(str(tmp_path), plans, launch)
    assert progress.eta(set()) == "ETA once a run is measured"
    launch.kinds["started"] = [[str(tmp_path / "a")], [str(tmp_path / "b")]]
    write_summary(tmp_path / "a", RunSummary(tokens=500_000, tokens_per_s=1000.0))  # 1e4 FLOP/s
    # b runs unmeasured: counted at a's rate, so 2e4 FLOP/s for the 2.5e7 FLOPs left
    assert progress.eta(set()) == f"ETA {2.5e7 / 2e4 / 60:.1f} min at 2e+04 FLOP/s (exact)"
    launch.kinds["ended"] = [[str(tmp_path / "a")]]
    launch.kinds["started"].append([str(tmp_path / "c")])  # a ended, c just started: none measured now
    done = {str((tmp_path / "a").resolve())}
    assert progress.eta(done) == f"ETA {2e7 / 2e4 / 60:.1f} min at 2e+04 FLOP/s (exact)"


def test_the_planned_runs_take_each_jobs_own_run_name_from_an_override_that_interpolates(tmp_path):
    """run_name=..._seed${train.seed} on the command line: each job's folder, not the launch's value for all."""
    register_resolvers()
    config = OmegaConf.create({"hydra": {"sweeper": {"params": {"train.seed": "1,2"}},
                                         "overrides": {"task": ["model=tiny", "run_name=seed${train.seed}"]},
                                         "job": {"config_name": "config"}, "sweep": {"dir": str(tmp_path)}},
                               "train": {"seed": 0}})
    with initialize_config_dir(str(config_dir()), version_base=None):
        plans = planned_jobs(config)
    assert sorted(Path(run).name for run in plans) == ["seed1", "seed2"]
