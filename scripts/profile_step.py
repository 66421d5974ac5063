#!/usr/bin/env python
"""Where a training step's time goes, per shape: torch.profiler over the real step, split into kinds of work.

Each shape's step (training.step.build_training_step at the project's defaults for the device, or
--dtype) runs --steps times under torch.profiler after a warm-up; every leaf op's self CPU time goes to
one kind:

  matmuls            the linear layers' products (mm, addmm)
  attention          SDPA, or the blocked CPU attention's bmm, baddbmm and softmax, forward and backward
  loss               log-softmax and NLL, forward and backward
  optimizer          everything under Optimizer.step / zero_grad, and gradient clipping
  casts and copies   copy_ and _to_copy outside the optimizer: autocast's casts and layout copies
  other kernels      layer norms, GELU, adds, embeddings, reductions, fills
  Python and dispatch  the self time of composite ops (aten::linear, autograd's nodes) and the profiled
                     step's wall time outside every op: Python, op dispatch, autograd's bookkeeping
                     (the profiler's own cost per op lands here too)

    python scripts/profile_step.py --preset demo
    python scripts/profile_step.py --shapes 2,24,2,32 --dtype fp32 --json out.json

The same script profiles an earlier revision's step when that revision's package comes first on the
path (its build_training_step takes the same arguments since 2026-11):

    git archive d65c824 scaling_sweep | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before python scripts/profile_step.py --preset demo
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

if not any(Path(p, "scaling_sweep").is_dir() for p in sys.path[1:] if p):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, unless one is on the path

from scaling_sweep.core import accounting  # noqa: E402
from scaling_sweep.core.config import ModelConfig, OptimConfig  # noqa: E402
from scaling_sweep.data.sampler import BatchSampler  # noqa: E402
from scaling_sweep.training import hardware  # noqa: E402
from scaling_sweep.training.step import build_training_step  # noqa: E402

KINDS = ["matmuls", "attention", "loss", "optimizer", "casts and copies", "other kernels", "Python and dispatch"]
MATMULS = {"aten::mm", "aten::addmm"}
ATTENTION = {"aten::bmm", "aten::baddbmm", "aten::_softmax", "aten::_softmax_backward_data"}
LOSS = {"aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
        "aten::nll_loss_backward"}
COPIES = {"aten::copy_", "aten::_to_copy"}
DEMO_SHAPES = ["2,24,2", "2,32,2", "2,48,3", "2,64,4", "2,80,5", "2,96,6", "2,128,8"]  # +sweep=demo's


def kind(event) -> str:
    """The kind of work of an op's self time: by its name, or by the optimizer's scope around it; the self
    time of a composite op (aten::linear, autograd's nodes, aten::to) that is none of those is dispatch."""
    parent = event
    while parent is not None:
        if parent.name.startswith(("Optimizer.", "clip_grad_norm_")):
            return "optimizer"
        parent = parent.cpu_parent
    name = event.name
    if name in MATMULS:
        return "matmuls"
    if name in ATTENTION or "scaled_dot_product" in name or "flash_attention" in name:
        return "attention"
    if name in LOSS:
        return "loss"
    if name in COPIES:
        return "casts and copies"
    return "Python and dispatch" if event.cpu_children else "other kernels"


@contextlib.contextmanager
def clipping_labelled():
    """Label gradient clipping for the profile (the step calls torch.nn.utils.clip_grad_norm_)."""
    clip = torch.nn.utils.clip_grad_norm_

    def labelled(*args, **kwargs):
        with record_function("clip_grad_norm_"):
            return clip(*args, **kwargs)

    torch.nn.utils.clip_grad_norm_ = labelled
    try:
        yield
    finally:
        torch.nn.utils.clip_grad_norm_ = clip


def profile_shape(cfg: ModelConfig, vocab: int, batch: int, dtype: str, steps: int) -> dict:
    device = torch.device("cpu")
    lr = accounting.kaplan_lr(accounting.param_counts(cfg, vocab).non_embedding)
    step = build_training_step(cfg, vocab, OptimConfig(), lr, device=device, dtype=dtype, compile_model=False,
                               micro_batch_size=None, seed=0)
    tokens = np.random.default_rng(0).integers(0, vocab, size=1_000_000, dtype=np.uint16)
    sampler = BatchSampler(tokens, batch, cfg.n_ctx, seed=1)
    batches = [next(sampler) for _ in range(steps)]
    for x, y in batches[:5]:
        step(x, y)
    start = time.perf_counter()
    for x, y in batches:
        step(x, y)
    plain_s = (time.perf_counter() - start) / steps
    with clipping_labelled(), profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for x, y in batches:
            step(x, y)
        profiled_s = (time.perf_counter() - start) / steps
    self_us = defaultdict(float)
    for event in prof.events():
        self_us[kind(event)] += event.self_cpu_time_total
    shares = {k: self_us[k] / 1e6 / steps / profiled_s for k in KINDS}
    shares["Python and dispatch"] += 1.0 - sum(shares.values())  # the time outside every op
    return {"shape": f"L{cfg.n_layer} d{cfg.d_model} h{cfg.n_head} ctx{cfg.n_ctx}", "dtype": dtype,
            "ms_per_step": plain_s * 1e3, "ms_per_step_profiled": profiled_s * 1e3, "shares": shares}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["demo"], default="demo", help="+sweep=demo's shapes, batch 64, n_ctx 32")
    parser.add_argument("--shapes", nargs="+", help="n_layer,d_model,n_head[,n_ctx] ... (default: the preset's)")
    parser.add_argument("--ctx", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=257, help="default: the byte tokenizer's")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as the CPU sweeps' jobs)")
    parser.add_argument("--steps", type=int, default=30, help="profiled steps per shape")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cpu")
    hardware.configure(device)
    torch.set_num_threads(args.threads)
    dtype = hardware.resolve_dtype(args.dtype, device)
    print(f"step code: {Path(sys.modules['scaling_sweep'].__file__).parent}; {args.threads} thread(s); "
          f"shares of the profiled step's wall time", flush=True)
    print("| shape | dtype | ms/step (profiled) | " + " | ".join(KINDS) + " |")
    print("| --- " * (len(KINDS) + 3) + "|")
    rows = []
    for text in args.shapes or DEMO_SHAPES:
        n_layer, d_model, n_head, *ctx = (int(v) for v in text.split(","))
        cfg = ModelConfig(n_layer=n_layer, d_model=d_model, n_head=n_head, n_ctx=ctx[0] if ctx else args.ctx)
        row = profile_shape(cfg, args.vocab, args.batch, dtype, args.steps)
        rows.append(row)
        print(f"| {row['shape']} | {dtype} | {row['ms_per_step']:.1f} ({row['ms_per_step_profiled']:.1f}) | "
              + " | ".join(f"{row['shares'][k]:.0%}" for k in KINDS) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"load_1min": os.getloadavg()[0], "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
