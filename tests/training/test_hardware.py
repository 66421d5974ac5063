"""Process-wide settings: freed activation memory is reused rather than mapped afresh each step; torch's
threads follow the cores a job was given; device=auto."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from scaling_sweep.core.system import cores_given
from scaling_sweep.training import hardware

STEP_FAULTS = textwrap.dedent("""
    import resource, sys, torch
    from scaling_sweep.training import hardware
    from scaling_sweep.core.config import ModelConfig, OptimConfig
    from scaling_sweep.training.model import GPT
    from scaling_sweep.training.optim import build_optimizer
    from scaling_sweep.training.step import optimizer_step

    cpu = torch.device("cpu")
    if sys.argv[1] == "configured":
        hardware.configure(cpu)
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, d_model=32, n_head=2, n_ctx=256), 256)
    optimizer = build_optimizer(model, OptimConfig(), 1e-3, cpu)
    x = torch.randint(0, 256, (16, 256))

    def step():
        optimizer_step(model, optimizer, x, x, device=cpu, dtype="fp32", micro_batch_size=None,
                       grad_clip=1.0)

    for _ in range(5):
        step()
    faults = []
    for _ in range(10):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(sorted(faults)[len(faults) // 2])  # the median step: a one-off heap growth is not a step's habit
""")


def page_faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", STEP_FAULTS, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_configured_cpu_steps_reuse_heap_memory():
    default, configured = page_faults_per_step("default"), page_faults_per_step("configured")
    assert configured < 50  # a configured step reuses its heap: the median step faults in no fresh pages
    # glibc's default thresholds move with what was freed before (dynamic mmap threshold, trim at twice
    # it), so whether a default step faults varies from process to process: 0 once, 2,100-3,500 usually
    if default > 500:
        assert configured < default / 20


THREADS = "from scaling_sweep.training import hardware; print(hardware.use_threads('auto'))"


def threads_in_a_process(cores: set[int], env: dict[str, str]) -> int:
    """torch's threads under train.threads=auto in a process started on `cores` only."""
    out = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True, check=True, env=env,
                         preexec_fn=lambda: os.sched_setaffinity(0, cores))
    return int(out.stdout.strip())


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_auto_threads_follow_the_cores_a_process_was_given():
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    first = min(os.sched_getaffinity(0))
    assert threads_in_a_process({first}, env) == 1
    assert threads_in_a_process(os.sched_getaffinity(0), env) == len(os.sched_getaffinity(0))


def test_auto_threads_take_the_launchers_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # what Ray sets for a job it gave 3 CPUs, or torchrun for its ranks
    assert hardware.resolve_threads("auto") == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert hardware.resolve_threads("auto") == cores_given()
    assert hardware.resolve_threads("5") == 5


def test_auto_device_is_the_gpu_a_job_sees_or_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.resolve_device("auto") == torch.device("cpu")
    assert hardware.gpus_per_job("auto") == 0 and hardware.gpus_per_job("cpu") == 0
    assert hardware.gpus_per_job("cuda") == 1 and hardware.gpus_per_job("cuda:1") == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hardware.resolve_device("auto") == torch.device("cuda")
    assert hardware.gpus_per_job("auto") == 1
