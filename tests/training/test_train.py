import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, RunsCode, cli_overrides, tiny_run_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from scaling_sweep.core.accounting import param_counts
from scaling_sweep.core.config import ConfigError
from scaling_sweep.core.runfiles import CHECKPOINT_FILE, LOCK_FILE, METRICS_FILE, read_metrics, read_summary
from scaling_sweep.training.loop import train
from scaling_sweep.training.optim import lr_at
from scaling_sweep.training.train import validate_run


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "scaling_sweep.train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_tiny_run_writes_the_run_files(tiny_config, tmp_path):
    cfg = tiny_config()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    final = train(cfg, run_dir)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == cfg.train.max_steps
    assert summary["N"] == param_counts(cfg.model, summary["vocab_size"]).non_embedding
    assert summary["tokens"] == cfg.train.max_steps * cfg.train.batch_size * cfg.model.n_ctx
    assert summary["flops"] == 6 * summary["N"] * summary["tokens"]
    assert summary["final_val_loss"] < summary["unigram_entropy"]
    assert final.final_val_loss == summary["final_val_loss"]

    rows = read_metrics(run_dir)[0]
    assert [r.step for r in rows if r.val_loss is not None] == [0, 20, 40]
    assert rows[-1].tokens == summary["tokens"]

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for axis in ("loss", "loss_vs_tokens", "loss_vs_gflops_6N"):
        assert {f"{axis}/train", f"{axis}/val"} <= tags
    assert [e.step for e in events.Scalars("loss_vs_tokens/val")] == [0, 20 * 512, 40 * 512]
    assert (run_dir / "checkpoint.pt").exists()


def test_a_finished_run_is_not_trained_again(tiny_config, tmp_path):
    cfg = tiny_config(train={"max_steps": 10, "eval_every": 10})
    train(cfg, tmp_path)
    before = (tmp_path / "metrics.jsonl").read_text()
    assert train(cfg, tmp_path).status == "completed"
    assert (tmp_path / "metrics.jsonl").read_text() == before


def test_non_finite_loss_marks_the_run_diverged(tiny_config, tmp_path):
    cfg = tiny_config(optim={"lr": 1e6, "grad_clip": 0.0, "warmup_steps": 0})
    final = train(cfg, tmp_path)
    assert final.status == "diverged"
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "diverged"
    assert read_metrics(tmp_path)[0]


def test_gradient_accumulation_matches_the_full_batch(tiny_config, tmp_path):
    full = train(tiny_config(train={"max_steps": 10, "eval_every": 10}), tmp_path / "full")
    accumulated = train(tiny_config(train={"max_steps": 10, "eval_every": 10, "micro_batch_size": 2}), tmp_path / "acc")
    assert accumulated.final_val_loss == pytest.approx(full.final_val_loss, abs=1e-4)


@pytest.mark.parametrize("section,key,value,named", [
    ("model", "d_model", 31, "model.d_model"),
    ("model", "n_layer", 0, "model.n_layer"),
    ("model", "n_ctx", -1, "model.n_ctx"),
    ("train", "batch_size", 0, "train.batch_size"),
    ("train", "micro_batch_size", 3, "train.micro_batch_size"),
    ("train", "max_unique_tokens", 100, "train.max_unique_tokens"),
    ("tokenizer", "name", "no-such-tokenizer", "tokenizer.name"),
    ("data", "source", "ftp", "data.source"),
    ("train", "dtype", "fp8", "train.dtype"),
    ("model", "activation", "relu", "model.activation"),
    ("train", "stop_at", "compute_optimal", "train.stop_at"),
    ("train", "threads", "0", "train.threads"),
])
def test_bad_config_names_its_key(tiny_config, section, key, value, named):
    cfg = tiny_config(**{section: {key: value}})
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        validate_run(cfg)


def hub_dataset(args: list[str], run_dir) -> list[str]:
    """The same run on a hub dataset that cannot resolve (offline, as every test runs)."""
    return [a for a in args if not a.startswith(("data=", "data.path="))] + ["data=hub", "data.path=no/such_dataset"]


def unreadable_checkpoint(args: list[str], run_dir) -> list[str]:
    run_dir.mkdir()
    (run_dir / CHECKPOINT_FILE).write_bytes(b"PK\x03\x04 cut short")
    return args


def checkpoint_that_runs_code(args: list[str], run_dir) -> list[str]:
    run_dir.mkdir()
    torch.save({"model": RunsCode(run_dir / "code_ran")}, run_dir / CHECKPOINT_FILE)
    return args


@pytest.mark.slow
@pytest.mark.parametrize("make_bad,says", [
    (lambda args, run_dir: args + ["model.d_model=31"], "model.d_model=31"),
    (hub_dataset, "cannot load data.path='no/such_dataset' from the Hugging Face hub"),
    (unreadable_checkpoint, "checkpoint.pt: unreadable"),
    (checkpoint_that_runs_code, "checkpoint.pt: refused: it holds a pickled posix.system"),
], ids=["bad value", "unreachable hub dataset", "unreadable checkpoint", "checkpoint that runs code"])
def test_bad_input_on_the_command_line_is_one_line(tiny_config, tmp_path, make_bad, says):
    run_dir = tmp_path / "bad"
    proc = run_cli(make_bad(cli_overrides(tiny_config(), run_dir), run_dir))
    assert proc.wait(timeout=120) == 2
    stderr = proc.stderr.read().strip()
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1 and says in stderr, stderr
    assert stderr.startswith("train: error: ")
    assert not (run_dir / "code_ran").exists()
    assert not (run_dir / METRICS_FILE).exists(), "nothing was trained"


def test_schedule_warms_up_then_decays_to_the_floor(tiny_config):
    optim = tiny_config().optim
    lrs = [lr_at(step, 1.0, optim, 100) for step in range(101)]
    assert lrs[0] == pytest.approx(1 / optim.warmup_steps)
    assert max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(optim.min_lr_ratio)
    assert all(a >= b for a, b in zip(lrs[optim.warmup_steps:], lrs[optim.warmup_steps + 1:]))


@pytest.mark.slow
def test_ddp_two_processes_match_one_with_the_same_global_batch(tiny_config, tmp_path):
    # 40 validation windows: batches of 16, 16 and 8, split 24 / 16 between the two ranks.
    cfg = tiny_config(train={"max_steps": 12, "eval_every": 6, "log_every": 3, "eval_windows": 40})
    single = run_cli(cli_overrides(cfg, tmp_path / "single"))
    assert single.wait(timeout=300) == 0, single.stderr.read()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "scaling_sweep.train", *cli_overrides(cfg, tmp_path / "ddp")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = read_metrics(tmp_path / "single")[0]
    two = read_metrics(tmp_path / "ddp")[0]
    assert [r.step for r in one] == [r.step for r in two]
    for a, b in zip(one, two):
        assert a.tokens == b.tokens and a.flops == b.flops
        for key in ("train_loss", "val_loss"):
            if getattr(a, key) is not None:
                assert getattr(b, key) == pytest.approx(getattr(a, key), abs=1e-5), (a.step, key)
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["tokens"] == 12 * 16 * 32


def test_compute_optimal_stop_spends_the_budget_and_says_why(tiny_config, tmp_path):
    budget = 3.4e10  # Chinchilla's N_opt for it (total parameters) is within a factor 2 of this model's N_total
    final = train(tiny_config(train={"max_steps": 10_000, "eval_every": 100, "stop_at": "compute_optimal",
                                     "compute_budget": budget, "batch_size": 32}), tmp_path / "fits")
    assert final.stop_reason == "compute_budget" and final.status == "completed"
    assert budget <= final.flops < budget + 6 * final.N * final.batch_tokens

    too_big = train(tiny_config(train={"stop_at": "compute_optimal", "compute_budget": 1e9}), tmp_path / "big")
    assert too_big.stop_reason == "too_large_for_budget" and too_big.step == 0
    assert json.loads((tmp_path / "big" / "summary.json").read_text())["stop_reason"] == "too_large_for_budget"


# ---- faults: kills at any moment, a second launch, a damaged checkpoint

# Long enough to be killed at many moments; evaluations of 256 windows take about a third of their interval.
LONG_RUN = {"max_steps": 1000, "eval_every": 100, "eval_windows": 256, "checkpoint_every": 10, "log_every": 5}


@pytest.fixture(scope="module")
def long_run(corpus_file, tmp_path_factory):
    """The command line of LONG_RUN for a run folder, and the metrics of the run uninterrupted."""
    root = tmp_path_factory.mktemp("long_run")
    cfg = tiny_run_config(corpus_file, root, train=LONG_RUN)
    straight = run_cli(cli_overrides(cfg, root / "straight"))
    assert straight.wait(timeout=600) == 0, straight.stderr.read()
    return (lambda run_dir: cli_overrides(cfg, run_dir)), read_metrics(root / "straight")[0]


def trained(rows) -> list[tuple]:
    """What training computed at each logged step (not the timings)."""
    return [(r.step, r.tokens, r.lr, r.train_loss, r.val_loss, r.grad_norm) for r in rows]


class Launch:
    """One launch of a run in a subprocess, watched from outside to be killed at a chosen moment."""

    def __init__(self, args: list[str], run_dir):
        self.run_dir, self.metrics = run_dir, run_dir / METRICS_FILE
        self.stale_inode = self.metrics.stat().st_ino if self.metrics.exists() else None
        self.proc = run_cli(args)

    def wait_for(self, condition, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while not condition():
            assert self.proc.poll() is None, f"ended before the moment to kill it: {self.proc.stderr.read()}"
            assert time.time() < deadline, "the moment to kill it never came"
            time.sleep(0.002)

    def holds_the_lock(self) -> bool:
        lock = self.run_dir / LOCK_FILE
        return lock.exists() and lock.read_text().startswith(f"pid {self.proc.pid} ")

    def step(self) -> int:
        """The last step this launch logged; -1 until it has cut metrics.jsonl back to its checkpoint
        (an atomic rewrite: a new inode) and so might still show the steps of the launch before."""
        try:
            if self.metrics.stat().st_ino == self.stale_inode:
                return -1
            with open(self.metrics, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 2000))
                lines = f.read().splitlines()
        except FileNotFoundError:
            return -1
        for line in reversed(lines):
            try:
                return json.loads(line)["step"]
            except (ValueError, KeyError):  # a line being written, or the cut first line of the tail
                continue
        return -1

    def writing_checkpoint(self) -> bool:
        return (self.run_dir / f".{CHECKPOINT_FILE}.{self.proc.pid}.tmp").exists()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def kill_at_a_random_step(launch: Launch, rng: random.Random) -> None:
    launch.wait_for(lambda: launch.step() >= 0)
    target = launch.step() + rng.randrange(10, 150)
    launch.wait_for(lambda: launch.step() >= target)
    time.sleep(rng.uniform(0, 0.03))


def kill_writing_a_checkpoint(launch: Launch, rng: random.Random) -> None:
    launch.wait_for(launch.writing_checkpoint)


def kill_evaluating(launch: Launch, rng: random.Random) -> None:
    """In the last logging interval before an evaluation, which the evaluation ends."""
    eval_every, log_every = LONG_RUN["eval_every"], LONG_RUN["log_every"]
    launch.wait_for(lambda: launch.step() > 0 and launch.step() % eval_every == eval_every - log_every)
    time.sleep(rng.uniform(0, 0.05))


def kill_resuming(launch: Launch, rng: random.Random) -> None:
    """Once it holds the run folder: loading the checkpoint, cutting metrics.jsonl, rebuilding TensorBoard."""
    launch.wait_for(launch.holds_the_lock)
    time.sleep(rng.uniform(0, 0.3))


@pytest.mark.slow
def test_sigkills_at_random_moments_end_as_an_uninterrupted_run(long_run, tmp_path):
    args, reference = long_run
    run_dir = tmp_path / "killed"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    for kill_when in (kill_at_a_random_step, kill_writing_a_checkpoint, kill_resuming, kill_evaluating,
                      kill_at_a_random_step):
        launch = Launch(args(run_dir), run_dir)
        kill_when(launch, rng)
        launch.kill()
        assert read_summary(run_dir) is None or read_summary(run_dir).status == "running", seed

    resumed = run_cli(args(run_dir))
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert trained(read_metrics(run_dir)[0]) == trained(reference), f"random seed {seed}"
    assert read_summary(run_dir).status == "completed"
    assert not list(run_dir.glob(".*.tmp")), "temp files of the killed writes were left behind"
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/val")] == [r.step for r in reference if r.val_loss is not None]


@pytest.mark.slow
def test_a_second_launch_of_a_training_run_exits_at_once(long_run, tmp_path):
    args, reference = long_run
    run_dir = tmp_path / "run"
    first = Launch(args(run_dir), run_dir)
    first.wait_for(lambda: first.step() >= 20)
    first.proc.send_signal(signal.SIGSTOP)  # it holds the run folder however long the second takes to start
    record = {f.name: f.read_text() for f in (run_dir / ".hydra").iterdir()}
    try:
        second = run_cli([*args(run_dir), "train.log_every=7"])  # another config: refused, and not recorded
        assert second.wait(timeout=120) == 2
    finally:
        first.proc.send_signal(signal.SIGCONT)
    stderr = second.stderr.read().strip()
    assert stderr == (f"train: error: {run_dir} is being trained by pid {first.proc.pid} on {os.uname().nodename} "
                      f"(lock {run_dir / LOCK_FILE}); not training it a second time")
    assert {f.name: f.read_text() for f in (run_dir / ".hydra").iterdir()} == record
    assert set(record) == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert "log_every: 7" not in record["config.yaml"]
    assert first.proc.wait(timeout=600) == 0, first.proc.stderr.read()
    assert trained(read_metrics(run_dir)[0]) == trained(reference)


@pytest.mark.slow
def test_a_truncated_checkpoint_costs_one_interval_and_nothing_else(long_run, tmp_path):
    args, reference = long_run
    run_dir = tmp_path / "run"
    victim = Launch(args(run_dir), run_dir)
    victim.wait_for(lambda: victim.step() >= 200)
    victim.kill()
    latest = run_dir / CHECKPOINT_FILE
    with open(latest, "r+b") as f:
        f.truncate(latest.stat().st_size // 3)

    relaunch = run_cli(args(run_dir))
    assert relaunch.wait(timeout=600) == 0
    warning = relaunch.stderr.read().strip()
    assert len(warning.splitlines()) == 1 and "set aside as checkpoint.pt.unreadable-" in warning, warning
    assert "resuming from checkpoint.prev.pt at step" in warning
    assert read_summary(run_dir).final_val_loss == reference[-1].val_loss
    assert trained(read_metrics(run_dir)[0]) == trained(reference)
