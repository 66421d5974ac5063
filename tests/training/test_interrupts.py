"""SIGINT and SIGTERM never change a result: wherever they land, the run stops at a step boundary of its main run
with its state saved, and its relaunch ends bit for bit where an uninterrupted run ends, cooldown points included."""

import os
import random
import signal
import time

import pytest
import torch
from conftest import cli_overrides
from test_train import run_cli
from test_wsd import flops_per_step

from scaling_sweep.analysis.runs import read_sweep, summary_table
from scaling_sweep.core.runfiles import CHECKPOINT_FILE, RunSummary, read_metrics, read_summary, run_lock, write_summary
from scaling_sweep.training import loop
from scaling_sweep.training.loop import cooldown_ends, train

# 120 steps of wsd with branches ending at steps 40 and 80 (each decaying over its last fifth: from 32 and 64).
# One torch thread: on a loaded machine two threads make these tiny steps ten times slower.
STEPS, BRANCH_ENDS = 120, (40, 80)
RUN = {"max_steps": STEPS, "eval_every": 20, "log_every": 5, "checkpoint_every": 10, "threads": "1"}


def wsd_config(tiny_config):
    cfg = tiny_config(optim={"schedule": "wsd"}, train=RUN)
    cfg.optim.cooldown_budgets = [end * flops_per_step(cfg) for end in BRANCH_ENDS]
    return cfg


def trained(rows) -> list[tuple]:
    """What training computed at each logged step (not the timings)."""
    return [(r.step, r.tokens, r.lr, r.train_loss, r.val_loss, r.grad_norm) for r in rows]


def outcome(summary) -> tuple:
    return (summary.status, summary.stop_reason, summary.step, summary.tokens, summary.final_val_loss,
            summary.best_val_loss, summary.best_val_step, summary.final_train_loss, summary.cooldowns)


def signal_on_call(monkeypatch, name: str, call: int, signum: int) -> None:
    """Deliver signum to this process from inside the call-th call of loop.<name> (counted from 1)."""
    original, calls = getattr(loop, name), []

    def signalled(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signum)  # Python runs the handler at once, inside this call
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, name, signalled)


def next_branch(branches: dict[int, int], step: int, done: list[dict]) -> tuple[int, int] | None:
    """The first cooldown branch (start, end) the run has yet to train, from `step` on."""
    recorded = {point["step"] for point in done}
    return next(((start, end) for start, end in sorted(branches.items()) if start >= step and end not in recorded),
                None)


def test_signals_at_random_moments_end_as_an_uninterrupted_run(tiny_config, tmp_path, monkeypatch):
    cfg = wsd_config(tiny_config)
    reference = train(cfg, tmp_path / "straight")
    assert [c["step"] for c in reference.cooldowns] == list(BRANCH_ENDS)
    branches = cooldown_ends(cfg, reference.N, STEPS)

    run_dir = tmp_path / "interrupted"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    step, done = 0, []
    # a plain step; inside a branch (abandoned); the next evaluation (that branch's, trained again); a checkpoint
    # write; inside the next branch; a plain step
    for name in ("train_step", "decay_lr", "evaluate", "save_checkpoint", "decay_lr", "train_step"):
        branch = next_branch(branches, step, done)
        call = {"train_step": rng.randint(1, 15), "evaluate": 1, "save_checkpoint": rng.randint(1, 2),
                "decay_lr": rng.randint(1, branch[1] - branch[0]) if branch else None}[name]
        signum = rng.choice([signal.SIGINT, signal.SIGTERM])
        signal_on_call(monkeypatch, name, call, signum)
        stopped = train(cfg, run_dir)
        monkeypatch.undo()
        reason = {signal.SIGINT: "interrupted", signal.SIGTERM: "preempted"}[signum]
        assert (stopped.status, stopped.stop_reason) == ("stopped", reason), (name, call, seed)
        assert read_summary(run_dir).resumable and not read_summary(run_dir).finished
        saved = torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)["state"]["step"] if stopped.step else 0
        assert saved == stopped.step, "its state is saved at the step it stopped at"
        if name == "decay_lr":  # the run put back where the branch began; the branch left unrecorded, or, where
            # the signal came in its last step's call, finished first and recorded as the uninterrupted run has it
            assert stopped.step == branch[0], seed
            recorded = [c for c in stopped.cooldowns if c["step"] == branch[1]]
            assert recorded in ([], [c for c in reference.cooldowns if c["step"] == branch[1]]), seed
        step, done = stopped.step, stopped.cooldowns

    final = train(cfg, run_dir)
    assert outcome(final) == outcome(reference), f"random seed {seed}"
    assert outcome(read_summary(run_dir)) == outcome(reference)
    reference_rows = read_metrics(tmp_path / "straight")[0]
    assert trained(read_metrics(run_dir)[0]) == trained(reference_rows), f"random seed {seed}"
    assert len(reference_rows) == STEPS // RUN["log_every"] + 1


def test_a_stop_between_log_steps_resumes_the_logging_interval_it_cut(tiny_config, tmp_path, monkeypatch):
    cfg = tiny_config(train={"threads": "1"})
    train(cfg, tmp_path / "straight")
    reference = read_metrics(tmp_path / "straight")[0]
    signal_on_call(monkeypatch, "train_step", 13, signal.SIGINT)  # stops at step 13, in the interval ending at 15
    assert train(cfg, tmp_path / "run").step == 13
    monkeypatch.undo()
    assert [r.step for r in read_metrics(tmp_path / "run")[0]][-1] == 10
    train(cfg, tmp_path / "run")
    assert trained(read_metrics(tmp_path / "run")[0]) == trained(reference)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_outside_training_is_left_to_the_handler_before(tiny_config, tmp_path, signum):
    train(tiny_config(train={"max_steps": 5, "eval_every": 5, "threads": "1"}), tmp_path)
    assert signal.getsignal(signum) in (signal.default_int_handler, signal.SIG_DFL)


def test_runs_shows_a_running_summary_that_no_process_holds_as_interrupted(tmp_path):
    run_dir = tmp_path / "demo" / "L2_d32_h2"
    run_dir.mkdir(parents=True)
    write_summary(run_dir, RunSummary(run_name="L2_d32_h2", status="running", step=100, planned_steps=400,
                                      batch_tokens=256, tokens_per_s=512.0))
    (run,) = read_sweep(tmp_path / "demo").runs
    assert run.status == "interrupted (no process holds it)" and "interrupted (no process holds it)" in run.exclusion()
    assert ("L2_d32_h2: interrupted (no process holds it) at step 100 of 400 (25%); its launch command, run again, "
            "resumes it") in summary_table(read_sweep(tmp_path / "demo"))
    with run_lock(run_dir):  # this test's process stands for the one training it
        table = summary_table(read_sweep(tmp_path / "demo"))
    assert "L2_d32_h2: running at step 100 of 400 (25%), ETA 2.5 min at 512 tokens/s" in table  # 300 x 256 / 512 s


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_is_one_line_and_a_second_one_stops_at_once(tiny_config, tmp_path):
    cfg = tiny_config(train={"max_steps": 600, "eval_every": 100, "log_every": 10, "threads": "1"})
    straight = run_cli(cli_overrides(cfg, tmp_path / "straight"))
    assert straight.wait(timeout=600) == 0, straight.stderr.read()
    run_dir = tmp_path / "run"

    once = run_cli(cli_overrides(cfg, run_dir))
    wait_for_step(once, run_dir, 30)
    once.send_signal(signal.SIGINT)
    assert once.wait(timeout=120) == 130
    err = once.stderr.read().strip()
    stopped = read_summary(run_dir)
    assert (stopped.status, stopped.stop_reason) == ("stopped", "interrupted")
    assert err == (f"train: {stopped.run_name} interrupted: stopped at step {stopped.step}, saved at that step; "
                   "rerun the same command to resume")

    twice = run_cli(cli_overrides(cfg, run_dir))
    wait_for_step(twice, run_dir, stopped.step + 30)
    twice.send_signal(signal.SIGINT)
    time.sleep(0.5)  # two signals at one instant are one to Python
    twice.send_signal(signal.SIGINT)
    assert twice.wait(timeout=120) == 130, twice.stderr.read()
    err = twice.stderr.read().strip()
    # the second signal stops the run at once, or, where it lands after the run stopped (a tiny run stops
    # within the half second), in the shutdown of a process already stopping, where it is ignored
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last == ("train: interrupted again: stopped at once; each run's last checkpoint stands; rerun the "
                    "same command to resume") or last.startswith(f"train: {stopped.run_name} interrupted: stopped")

    resumed = run_cli(cli_overrides(cfg, run_dir))
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert trained(read_metrics(run_dir)[0]) == trained(read_metrics(tmp_path / "straight")[0])
    assert read_summary(run_dir).final_val_loss == read_summary(tmp_path / "straight").final_val_loss


def wait_for_step(proc, run_dir, step: int, timeout: float = 300) -> None:
    """Until this launch has logged `step` (its own rows: a relaunch first cuts metrics.jsonl back)."""
    deadline = time.time() + timeout
    while max((row.step for row in read_metrics(run_dir)[0]), default=-1) < step:
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.02)
