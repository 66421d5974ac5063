"""Checkpoints that survive damage: the previous one is kept, an unreadable one is set aside, a failed
write keeps what was there, and a checkpoint that would run code is refused without running it."""

import errno
import os
import signal

import pytest
import torch
from conftest import RunsCode

from scaling_sweep.core.runfiles import CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, read_metrics, read_summary
from scaling_sweep.training import loop
from scaling_sweep.training.checkpoint import CheckpointError
from scaling_sweep.training.loop import train


def saved_step(path) -> int:
    return torch.load(path, weights_only=True)["state"]["step"]


def interrupt_at(monkeypatch, at_step: int) -> None:
    """Ctrl-C during the step that ends at at_step: the run stops after it, saving its state at that step."""
    train_step = loop.train_step

    def interrupted(run, step):
        if step == at_step - 1:
            os.kill(os.getpid(), signal.SIGINT)
        return train_step(run, step)

    monkeypatch.setattr(loop, "train_step", interrupted)


def test_a_checkpoint_keeps_the_one_before(tiny_config, tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 25)
    final = train(tiny_config(), tmp_path)
    assert (final.status, final.stop_reason, final.step) == ("stopped", "interrupted", 25)
    assert saved_step(tmp_path / CHECKPOINT_FILE) == 25
    assert saved_step(tmp_path / PREVIOUS_CHECKPOINT_FILE) == 20


def test_an_unreadable_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
        tiny_config, tmp_path, monkeypatch, capsys):
    reference = train(tiny_config(), tmp_path / "straight")
    run_dir = tmp_path / "damaged"
    interrupt_at(monkeypatch, 25)
    train(tiny_config(), run_dir)
    monkeypatch.undo()
    latest = run_dir / CHECKPOINT_FILE
    cut = latest.read_bytes()[: latest.stat().st_size // 2]
    latest.write_bytes(cut)
    capsys.readouterr()

    final = train(tiny_config(), run_dir)
    warning = capsys.readouterr().err.strip()
    assert len(warning.splitlines()) == 1 and f"{latest}: unreadable" in warning
    assert "resuming from checkpoint.prev.pt at step 20: the 5 steps logged after it (up to step 25)" in warning
    (aside,) = run_dir.glob(f"{CHECKPOINT_FILE}.unreadable-*")
    assert aside.read_bytes() == cut, "set aside as it was, not deleted"
    assert final.status == "completed" and final.final_val_loss == reference.final_val_loss
    steps = [row.step for row in read_metrics(run_dir)[0]]
    assert steps == sorted(set(steps)), "metrics.jsonl was not cut back to the checkpoint loaded"


def test_an_unreadable_checkpoint_with_none_before_stops_the_run(tiny_config, tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError) as e:
        train(tiny_config(), tmp_path)
    assert str(e.value) == (f"{tmp_path / CHECKPOINT_FILE}: unreadable (UnpicklingError: Unsupported operand 0); "
                            "there is no earlier checkpoint: move it away to train this run from step 0")
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == b"\0" * 100, "left as it was, for the user to judge"


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tiny_config, tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"model": RunsCode(marker)}, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(CheckpointError, match="refused: it holds a pickled posix.system") as e:
        train(tiny_config(), tmp_path)
    assert "\n" not in str(e.value)
    assert not marker.exists()


def test_a_failed_checkpoint_write_keeps_the_previous_one(tiny_config, tmp_path, monkeypatch):
    save, saves = torch.save, []

    def disk_full_at_the_second(payload, f):
        saves.append(payload["state"]["step"])
        if len(saves) == 2:
            f.write(b"the first bytes")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(payload, f)

    monkeypatch.setattr(torch, "save", disk_full_at_the_second)
    with pytest.raises(CheckpointError) as e:
        train(tiny_config(), tmp_path / "run")
    assert str(e.value) == (f"cannot write {tmp_path / 'run' / CHECKPOINT_FILE} at step 20 (No space left on device); "
                            "the last good checkpoint is kept, and relaunching resumes from it")
    monkeypatch.undo()
    assert saved_step(tmp_path / "run" / CHECKPOINT_FILE) == 10
    assert not list((tmp_path / "run").glob(".*.tmp"))
    assert read_summary(tmp_path / "run").status == "running"
    reference = train(tiny_config(), tmp_path / "straight")
    assert train(tiny_config(), tmp_path / "run").final_val_loss == reference.final_val_loss
