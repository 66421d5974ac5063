"""A two-job joblib sweep stopped from outside: SIGINT (Ctrl-C, to the whole process group as a terminal sends
it), SIGTERM (to the launcher alone, as `kill` sends it) and SIGKILL of the launcher. Each ends without a
traceback and with its workers gone, and the relaunch finishes with the losses of an uninterrupted sweep."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_sweep import run_dirs, sweep_command

from scaling_sweep.core.runfiles import read_metrics, read_summary

MODELS = ["demo/L2_d24", "demo/L2_d32"]
STEPS = 300


def command(corpus_file, root: Path) -> list[str]:
    return sweep_command(corpus_file, root, max_steps=STEPS, models=MODELS) + [
        "hydra.launcher.n_jobs=2", "train.eval_every=50", "train.log_every=10", "train.checkpoint_every=50"]


def launch(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(args: list[str]) -> subprocess.CompletedProcess:
    proc = launch(args)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def results(root: Path) -> dict:
    """Each run's final losses and every logged training number (not the timings)."""
    return {d.name: (read_summary(d).final_val_loss, read_summary(d).cooldowns,
                     [(r.step, r.train_loss, r.val_loss, r.grad_norm) for r in read_metrics(d)[0]])
            for d in run_dirs(root)}


@pytest.fixture(scope="module")
def reference(corpus_file, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("uninterrupted")
    finish(command(corpus_file, root))
    return results(root)


def last_step(run_dir: Path) -> int:
    rows = read_metrics(run_dir)[0] if (run_dir / "metrics.jsonl").exists() else []
    return rows[-1].step if rows else -1


def wait_until_both_train(proc: subprocess.Popen, root: Path, timeout: float = 300) -> None:
    sweep = root / "runs" / "demo"
    runs = [sweep / "L2_d24_h2", sweep / "L2_d32_h2"]
    deadline = time.time() + timeout
    while not all(20 <= last_step(r) < STEPS - 60 for r in runs):
        assert proc.poll() is None and time.time() < deadline, "the runs never trained side by side"
        time.sleep(0.01)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("signum,to_group,reason,code", [
    (signal.SIGINT, True, "interrupted", 130), (signal.SIGTERM, False, "preempted", 143)],
    ids=["ctrl-c", "sigterm"])
def test_a_signalled_sweep_stops_cleanly_and_resumes_to_the_same_losses(
        corpus_file, tmp_path, reference, signum, to_group, reason, code):
    args = command(corpus_file, tmp_path)
    proc = launch(args)
    wait_until_both_train(proc, tmp_path)
    os.killpg(proc.pid, signum) if to_group else proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    (line,) = [line for line in err.splitlines() if line.startswith("train:")]
    assert line.startswith(f"train: sweep {reason}: stopped ") and "L2_d24_h2 at step" in line
    assert "L2_d32_h2 at step" in line and line.endswith("rerun the same command to resume")
    summaries = [read_summary(d) for d in run_dirs(tmp_path)]
    assert [(s.status, s.stop_reason) for s in summaries] == [("stopped", reason)] * 2
    assert all(f"{s.run_name} at step {s.step}," in line + "," for s in summaries)
    assert not list((tmp_path / "runs" / "demo").glob(".launch-*")), "the launch folder is removed"

    finish(args)
    assert results(tmp_path) == reference


@pytest.mark.slow
def test_killing_the_launcher_stops_its_workers_and_the_relaunch_resumes(corpus_file, tmp_path, reference):
    args = command(corpus_file, tmp_path)
    proc = launch(args)
    wait_until_both_train(proc, tmp_path)
    workers = [pid for pid in children(proc.pid) if "popen_loky_posix" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.time() + 30
    while any(alive(pid) for pid in workers):
        assert time.time() < deadline, "workers outlived their launcher by 30 s"
        time.sleep(0.05)
    summaries = [read_summary(d) for d in run_dirs(tmp_path)]
    assert [(s.status, s.stop_reason) for s in summaries] == [("stopped", "launcher_lost")] * 2
    assert len(list((tmp_path / "runs" / "demo").glob(".launch-*"))) == 1, "the killed launcher's folder"

    finish(args)
    assert results(tmp_path) == reference
    assert not list((tmp_path / "runs" / "demo").glob(".launch-*")), "the relaunch removed the dead one's"
