"""The branches of the GPU path that torch can also run on a CPU, run there (and on a GPU where the tests
have one): the step through torch.compile's inductor, fused AdamW, micro-batches under DDP with no_sync,
and scripts/gpu_check.py's own checks at tiny sizes; gpu_check.sh on a machine without a GPU."""

import importlib.util
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as torch_dist
from conftest import REPO, cli_overrides
from torch.nn.parallel import DistributedDataParallel

from scaling_sweep.core.config import ModelConfig, OptimConfig
from scaling_sweep.training import optim
from scaling_sweep.training.step import build_training_step

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TINY = ModelConfig(n_layer=2, d_model=32, n_head=2, n_ctx=32)


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_step(device: str = "cpu", **kwargs):
    return build_training_step(TINY, 64, OptimConfig(), 1e-2, device=torch.device(device), dtype="fp32",
                               compile_model=False, micro_batch_size=None, seed=0, **kwargs)


def batches(n: int, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    windows = [torch.randint(0, 64, (size, TINY.n_ctx + 1), generator=gen) for _ in range(n)]
    return [(w[:, :-1], w[:, 1:]) for w in windows]


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_the_compiled_step_trains_as_eager_does(device):
    result = load_gpu_check().compile_check(torch.device(device), TINY, vocab=64, batch=4, steps=6, dtype="fp32")
    assert result["max_rel_loss_diff"] < 1e-4 and result["compiled_tokens_per_s"] > 0


def test_fused_adamw_takes_the_steps_of_the_default_one(monkeypatch):
    fused = tiny_step()  # fused on CPU and CUDA alike
    monkeypatch.setattr(optim, "fused_adamw", lambda device: False)  # the for-loop
    plain = tiny_step()
    assert fused.optimizer.defaults["fused"] and not plain.optimizer.defaults["fused"]
    for x, y in batches(5):
        plain(x, y)
        fused(x, y)
    for a, b in zip(plain.model.parameters(), fused.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)  # a hundredth of one step at lr 1e-2: rounding


def test_ddp_micro_steps_all_reduce_only_on_the_last(monkeypatch, tmp_path):
    """Under DDP (gloo, one process) all micro-steps but the last run under no_sync, and the accumulated
    gradient is the whole batch's."""
    entered = []
    no_sync = DistributedDataParallel.no_sync

    def counting_no_sync(self):
        entered.append(1)
        return no_sync(self)

    monkeypatch.setattr(DistributedDataParallel, "no_sync", counting_no_sync)
    whole = tiny_step()
    torch_dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        micro = tiny_step()
        micro.train_model, micro.micro_batch_size = DistributedDataParallel(micro.model), 2
        for x, y in batches(2):
            (loss, grad_norm), (micro_loss, micro_grad_norm) = whole(x, y), micro(x, y)
            torch.testing.assert_close(micro_loss, loss, rtol=1e-5, atol=0)
            torch.testing.assert_close(micro_grad_norm, grad_norm, rtol=1e-5, atol=0)
    finally:
        torch_dist.destroy_process_group()
    assert len(entered) == 2 * (8 // 2 - 1)


@pytest.mark.slow
def test_gpu_checks_ddp_comparison_passes_with_micro_batches_on_gloo(tiny_config, tmp_path):
    cfg = tiny_config(train={"max_steps": 8, "eval_every": 4, "log_every": 2, "micro_batch_size": 4})
    overrides = [o for o in cli_overrides(cfg, tmp_path) if not o.startswith("hydra.run.dir=")]
    result = load_gpu_check().ddp_check(tmp_path, overrides, nproc=2, tolerance=1e-5)
    assert result["steps"] == 8 and result["max_loss_diff"] <= 1e-5


@pytest.mark.slow
def test_gpu_check_without_a_gpu_says_it_skipped_the_gpu_parts():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no GPU: skipped the GPU parts" in proc.stdout
