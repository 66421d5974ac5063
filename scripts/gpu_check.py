#!/usr/bin/env python
"""The checks to run first on a GPU box (scripts/gpu_check.sh runs this); under 10 minutes on one H100.

  bench    scripts/bench_throughput.py --preset gpu: GPT-2 small and medium shapes, ours against the peer
  sweep    a two-run width sweep (d_model 256 and 512) on the embedded corpus with gpt2 tokens
  ddp      where two GPUs exist: two DDP processes in micro-batches (no_sync) against one, same global batch
  compile  the training step compiled and eager from the same initialisation: the same losses, and the speed

It writes docs/bench/<device>.json (each check's result and the environment) and docs/bench/<device>.md
(the summary table, also printed); logs go to a temporary folder it names. Without a GPU it prints
"no GPU: skipped the GPU parts" and exits 0 having run nothing: the branches of the GPU path that torch
can run on a CPU are tested by tests/training/test_gpu_paths.py, which also runs this script's compile
and DDP checks at tiny sizes. Exit status 1 when a check that ran failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scaling_sweep.core import accounting, runfiles  # noqa: E402
from scaling_sweep.core.config import ModelConfig, OptimConfig  # noqa: E402
from scaling_sweep.data.sampler import BatchSampler  # noqa: E402
from scaling_sweep.training import hardware  # noqa: E402
from scaling_sweep.training.step import build_training_step  # noqa: E402

NO_GPU = "no GPU: skipped the GPU parts"
SWEEP = ["+sweep=width", "tokenizer=gpt2", "data=prose", "model.d_model=256,512", "sweep_name=gpu_check_width",
         "train.batch_size=64", "train.max_steps=100", "train.eval_every=50", "train.eval_windows=32",
         "train.log_every=10", "optim.warmup_steps=20", "train.progress=false"]
# fp32 (TF32 matmuls) and eager: what differs between one process and two is only the data split and the
# all-reduce. Per rank 16 sequences in micro-batches of 8: the first micro-step runs under no_sync.
DDP = ["model.n_layer=4", "model.d_model=256", "model.n_head=4", "model.n_ctx=256", "train.batch_size=32",
       "train.micro_batch_size=8", "train.max_steps=40", "train.eval_every=20", "train.eval_windows=32",
       "train.log_every=5", "train.dtype=fp32", "train.compile=off", "train.progress=false",
       "optim.warmup_steps=10", "device=cuda"]
DDP_TOLERANCE = 2e-3  # nats: TF32 products over half batches round differently
COMPILE_SHAPE = ModelConfig(n_layer=12, d_model=768, n_head=12, n_ctx=1024)  # GPT-2 small
COMPILE_TOLERANCE = {"bf16": 3e-2, "fp32": 1e-3}  # relative loss difference, compiled against eager


class CheckFailed(Exception):
    """A check that ran and found something wrong; the message says what."""


def run_logged(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> None:
    """Run cmd with its output in log; CheckFailed with the log's tail when it fails."""
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                              env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})))
    if proc.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise CheckFailed(f"{' '.join(cmd[:6])} ... exited {proc.returncode} (log {log}):\n{tail}")


def bench_check(workdir: Path) -> dict:
    out = workdir / "bench.json"
    run_logged([sys.executable, "scripts/bench_throughput.py", "--preset", "gpu", "--rounds", "3",
                "--json", str(out)], workdir / "bench.log", timeout=400)
    return json.loads(out.read_text())


def sweep_check(workdir: Path, overrides: list[str] = SWEEP) -> dict:
    runs_root = workdir / "runs"
    run_logged([sys.executable, "-m", "scaling_sweep.train", *overrides, f"runs_root={runs_root}"],
               workdir / "sweep.log", timeout=240)
    summaries = [runfiles.read_summary(d) for d in sorted((runs_root / "gpu_check_width").iterdir()) if d.is_dir()]
    runs = [{key: getattr(s, key) for key in ("run_name", "status", "N", "tokens_per_s", "mfu", "mfu_convention",
                                              "mfu_datasheet", "mfu_measured_peak", "final_val_loss", "mfu_warning")}
            for s in summaries if s is not None]
    if len(runs) != 2 or any(r["status"] != "completed" for r in runs):
        raise CheckFailed(f"expected two completed runs, found {[(r['run_name'], r['status']) for r in runs]}")
    return {"runs": runs}


def ddp_check(workdir: Path, overrides: list[str] = DDP, nproc: int = 2, tolerance: float = DDP_TOLERANCE) -> dict:
    """One process against nproc DDP processes on the same config: the same steps, tokens and losses."""
    single, ddp = workdir / "ddp_single", workdir / "ddp"
    train = ["-m", "scaling_sweep.train", *overrides]
    run_logged([sys.executable, *train, f"hydra.run.dir={single}"], workdir / "ddp_single.log", timeout=180)
    run_logged([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *train,
                f"hydra.run.dir={ddp}"], workdir / "ddp.log", timeout=180, env={"OMP_NUM_THREADS": "1"})
    one, many = runfiles.read_metrics(single)[0], runfiles.read_metrics(ddp)[0]
    if [(r.step, r.tokens) for r in one] != [(r.step, r.tokens) for r in many]:
        raise CheckFailed("the two runs logged different steps or token counts")
    diffs = [abs(getattr(a, key) - getattr(b, key)) for a, b in zip(one, many) for key in ("train_loss", "val_loss")
             if getattr(a, key) is not None]
    result = {"processes": nproc, "steps": one[-1].step, "max_loss_diff": max(diffs), "tolerance": tolerance}
    if result["max_loss_diff"] > tolerance:
        raise CheckFailed(f"DDP losses differ from one process's by up to {result['max_loss_diff']:.3g} nats")
    return result


def timed_losses(step, batches: list, device: torch.device) -> tuple[list[float], float, float]:
    """Train on `batches`; returns (losses, seconds of the first step, seconds of the second half)."""
    losses, start = [], time.perf_counter()
    for i, (x, y) in enumerate(batches):
        if i == len(batches) // 2:
            hardware.synchronize(device)
            half = time.perf_counter()
        losses.append(step(x, y)[0])
        if i == 0:
            hardware.synchronize(device)
            first = time.perf_counter() - start
    hardware.synchronize(device)
    return [loss.item() for loss in losses], first, time.perf_counter() - half


def compile_check(device: torch.device, model_cfg: ModelConfig = COMPILE_SHAPE, vocab: int = 50257, batch: int = 8,
                  steps: int = 30, dtype: str | None = None) -> dict:
    """The step compiled (torch.compile, inductor) against eager from one initialisation and on the same
    batches: losses within COMPILE_TOLERANCE, and each one's speed after the first half of the steps."""
    dtype = dtype or hardware.resolve_dtype("auto", device)
    tokens = np.random.default_rng(0).integers(0, vocab, size=batch * (model_cfg.n_ctx + 1) * steps, dtype=np.uint16)
    sampler = BatchSampler(tokens, batch, model_cfg.n_ctx, seed=1, pin_memory=device.type == "cuda")
    batches = [next(sampler) for _ in range(steps)]
    lr = accounting.kaplan_lr(accounting.param_counts(model_cfg, vocab).non_embedding)
    result = {"shape": f"L{model_cfg.n_layer} d{model_cfg.d_model} ctx{model_cfg.n_ctx} v{vocab} batch {batch}",
              "dtype": dtype, "steps": steps}
    losses = {}
    for name in ("eager", "compiled"):
        step = build_training_step(model_cfg, vocab, OptimConfig(), lr, device=device, dtype=dtype,
                                   compile_model=name == "compiled", micro_batch_size=None, seed=0)
        losses[name], result[f"{name}_first_step_s"], seconds = timed_losses(step, batches, device)
        result[f"{name}_tokens_per_s"] = (steps - steps // 2) * batch * model_cfg.n_ctx / seconds
    result["speedup"] = result["compiled_tokens_per_s"] / result["eager_tokens_per_s"]
    result["max_rel_loss_diff"] = max(abs(a - b) / abs(a) for a, b in zip(losses["eager"], losses["compiled"]))
    result["tolerance"] = COMPILE_TOLERANCE[dtype]
    if result["max_rel_loss_diff"] > result["tolerance"]:
        raise CheckFailed(f"compiled losses differ from eager by up to {result['max_rel_loss_diff']:.3g} (relative)")
    return result


def run_check(name: str, check) -> dict:
    """A check's result with its status (ok | failed) and seconds; a failure is reported, not raised."""
    print(f"gpu_check: {name} ...", flush=True)
    start = time.perf_counter()
    try:
        result = {"status": "ok", **check()}
    except (CheckFailed, subprocess.TimeoutExpired) as err:
        result = {"status": "failed", "error": str(err)}
    except Exception:  # noqa: BLE001 - one broken check must not hide the others' results
        result = {"status": "failed", "error": traceback.format_exc()}
    result["seconds"] = time.perf_counter() - start
    print(f"gpu_check: {name} {result['status']} ({result['seconds']:.0f} s)", flush=True)
    if result["status"] == "failed":
        print(result["error"], file=sys.stderr)
    return result


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def bench_rows(result: dict) -> list[tuple[str, str]]:
    return [(f"bench {s['shape']}", f"ours {s['ours_tokens_per_s']:,.0f} tokens/s, ours/peer "
             f"{s['ratio'] or float('nan'):.2f} (same dtype {s['ratio_same_dtype'] or float('nan'):.2f}), MFU "
             f"{pct(s['mfu_datasheet'])} datasheet / {pct(s['mfu_measured_peak'])} measured mm peak")
            for s in result["shapes"]]


def sweep_rows(result: dict) -> list[tuple[str, str]]:
    return [(f"sweep {r['run_name']}", f"{r['tokens_per_s']:,.0f} tokens/s, MFU {pct(r['mfu_datasheet'])} datasheet "
             f"/ {pct(r['mfu_measured_peak'])} measured mm peak, val loss {r['final_val_loss']:.3f}")
            for r in result["runs"]]


def ddp_rows(result: dict) -> list[tuple[str, str]]:
    return [("ddp", f"{result['processes']} processes vs 1 over {result['steps']} steps: losses within "
             f"{result['max_loss_diff']:.2g} nats (tolerance {result['tolerance']:g})")]


def compile_rows(result: dict) -> list[tuple[str, str]]:
    return [("compile", f"{result['shape']} {result['dtype']}: compiled {result['speedup']:.2f}x eager "
             f"({result['compiled_tokens_per_s']:,.0f} vs {result['eager_tokens_per_s']:,.0f} tokens/s), first step "
             f"{result['compiled_first_step_s']:.0f} s, losses within {result['max_rel_loss_diff']:.2g} (relative)")]


ROWS = {"bench": bench_rows, "sweep": sweep_rows, "ddp": ddp_rows, "compile": compile_rows}


def markdown_table(results: dict, env: dict) -> str:
    """The summary table: a row per benchmarked shape and sweep run, one per other check."""
    lines = [f"GPU check on {env['device']} ({env['gpu_count']} GPU(s)), torch {env['torch']}, {env['date']}", "",
             "| check | status | result | seconds |", "| --- | --- | --- | --- |"]
    for name, result in results.items():
        if result["status"] == "ok":
            rows = ROWS[name](result)
        else:
            rows = [(name, result.get("error") or result.get("reason", ""))]
        for check, text in rows:
            lines.append(f"| {check} | {result['status']} | {text.splitlines()[0]} | {result['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def environment(device: torch.device) -> dict:
    env = hardware.describe(device) | hardware.versions() | {"date": time.strftime("%Y-%m-%d")}
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        env["driver"] = subprocess.run(query, capture_output=True, text=True).stdout.split("\n")[0].strip()
    return env


def device_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3': the file name of its results."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench", help="where <device>.json and .md go")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"{NO_GPU} (bench --preset gpu, width sweep, DDP and compile checks); their CPU-runnable branches "
              "are tested by: pytest tests/training/test_gpu_paths.py")
        return 0
    device = torch.device("cuda")
    hardware.configure(device)
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    print(f"gpu_check: {torch.cuda.get_device_name(device)}; logs in {workdir}", flush=True)
    results = {"bench": run_check("bench", lambda: bench_check(workdir)),
               "sweep": run_check("sweep", lambda: sweep_check(workdir))}
    if torch.cuda.device_count() >= 2:
        results["ddp"] = run_check("ddp", lambda: ddp_check(workdir))
    else:
        results["ddp"] = {"status": "skipped", "reason": "one GPU: the DDP check needs two", "seconds": 0.0}
    results["compile"] = run_check("compile", lambda: compile_check(device))
    env = environment(device)
    slug = device_slug(env["device"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{slug}.json").write_text(json.dumps({"environment": env, "checks": results}, indent=2) + "\n")
    table = markdown_table(results, env)
    (args.out / f"{slug}.md").write_text(table)
    print(table + f"\nwritten: {args.out / slug}.json and .md")
    return int(any(r["status"] == "failed" for r in results.values()))


if __name__ == "__main__":
    sys.exit(main())
