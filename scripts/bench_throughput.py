#!/usr/bin/env python
"""Training throughput of our step against Hugging Face GPT2LMHeadModel on the same machine.

For each shape this times, interleaved round by round so that load from other processes
hits every contender alike, each contender in a process of its own (so that process-wide
settings, such as the allocator's, belong to it alone):

  ours        scaling_sweep's real step (training.step.build_training_step, as training builds it)
              at the project's defaults for this device (dtype and compile as train.py resolves
              them for dtype=auto, compile=auto; hardware.configure's process settings);
  baseline    (--baseline-ref REF) the same step as the project's code at git revision REF built
              it, at that revision's defaults: "how much faster than before", from the same run;
  peer        transformers' GPT2LMHeadModel of the same shape, vocabulary and context (no dropout
              and an untied unembedding, as ours: the same parameter count is checked), the same
              AdamW hyper-parameters and decay groups, the same batches, micro-steps and gradient
              clipping, the same activation (exact GELU; "gelu_new" for model.activation=gelu_tanh),
              its own loss (labels = inputs), SDPA attention, torch.optim.AdamW's default
              implementation for the device, full-precision fp32 matmuls (no TF32) and glibc's
              default allocator behaviour, in each of four configurations (--peer-configs):
              fp32 or bf16 autocast, eager or torch.compile'd. The headline ratio is ours over
              the fastest of them at that shape; the others are printed beside it.

Per shape it prints tokens/s (median of the rounds, min-max), ours over the fastest peer configuration
(the headline) and over each of the others, ours over the baseline (the median of the rounds' ratios),
achieved FLOP/s
(the exact matmul count of scaling_sweep.accounting) and MFU by both of training.mfu's conventions:
over the device's datasheet dense peak in our dtype (GPUs; the headline there) and over a large
torch.mm in our dtype, measured for --peak-s in every round on the same device (median of the
rounds). Batches come from the project's own sampler
(data.BatchSampler, as train.py builds it) over a random uint16 token array; the time the step
loop spends waiting for it is reported as a share of step time
(on a GPU this is host time, which overlaps with queued device work). Warm-up steps, including
torch.compile's compilation, are never timed.

    python scripts/bench_throughput.py                      # the earlier demo's CPU shapes (L2 d32 to L6 d256)
    python scripts/bench_throughput.py --preset demo        # +sweep=demo's seven shapes, n_ctx 32, batch 64, vocab 257
    python scripts/bench_throughput.py --preset cpu_ladder  # +sweep=cpu_ladder's nine
    python scripts/bench_throughput.py --preset demo --baseline-ref d65c824   # and the step as it was there
    python scripts/bench_throughput.py --preset gpu         # GPT-2 small and medium sized, ctx 1024
    python scripts/bench_throughput.py --shapes 4,128,4 6,256,8 --json bench.json

A shape is n_layer,d_model,n_head[,n_ctx[,vocab]]; n_ctx and vocab default to --ctx and --vocab.
The peer needs `pip install -e .[bench]`; without transformers it is skipped (null in --json).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling_sweep.core import accounting  # noqa: E402
from scaling_sweep.core.config import ModelConfig, OptimConfig  # noqa: E402
from scaling_sweep.core.errors import UserError, entry_point  # noqa: E402
from scaling_sweep.data.sampler import BatchSampler  # noqa: E402
from scaling_sweep.data.tokenizer import vocab_size  # noqa: E402
from scaling_sweep.training import hardware, mfu  # noqa: E402
from scaling_sweep.training.optim import decay_groups  # noqa: E402
from scaling_sweep.training.step import autocast, build_training_step, to_device  # noqa: E402

# The earlier demo's shapes (byte vocabulary, n_ctx 256, batch 32), which docs/performance.md's CPU
# tables use; the current demo's are the demo preset's.
CPU_SHAPES = ["2,32,2", "2,64,2", "3,96,3", "4,128,4", "4,192,6", "6,256,8"]
# GPT-2 small and medium sized, GPT-2's vocabulary and context.
GPU_SHAPES = ["12,768,12,1024,50257", "24,1024,16,1024,50257"]
PEER_ACTIVATION = {"gelu": "gelu", "gelu_tanh": "gelu_new"}  # ours -> GPT2Config.activation_function


PEER_CONFIGS = ["fp32-eager", "bf16-eager", "fp32-compiled", "bf16-compiled"]


def sweep_preset(name: str) -> dict:
    """A CPU sweep's shapes, batch and vocabulary, read from its run configs (training.sweep.grid) so that
    the preset follows the sweep, and one thread per contender, as each of the sweep's jobs has."""
    from scaling_sweep.training.sweep import grid

    runs = grid(name)
    shapes = sorted({(r.model.n_layer, r.model.d_model, r.model.n_head, r.model.n_ctx) for r in runs},
                    key=lambda s: (s[1], s[0]))
    (batch,), (ctx,), (vocab,) = ({r.train.batch_size for r in runs}, {r.model.n_ctx for r in runs},
                                  {vocab_size(r.tokenizer) for r in runs})
    return {"shapes": [",".join(map(str, s)) for s in shapes], "batch": batch, "micro_batch": None, "ctx": ctx,
            "vocab": vocab, "threads": 1}


PRESETS = {
    "cpu": lambda: {"shapes": CPU_SHAPES, "batch": 32, "micro_batch": None, "ctx": 256, "vocab": 256,
                    "threads": None},
    "demo": lambda: sweep_preset("demo"),
    "cpu_ladder": lambda: sweep_preset("cpu_ladder"),
    # Micro-batches of 8 x 1024 tokens keep the fp32 eager peer (and three models with AdamW
    # state) within an 80 GB GPU.
    "gpu": lambda: {"shapes": GPU_SHAPES, "batch": 32, "micro_batch": 8, "ctx": 1024, "vocab": 50257,
                    "threads": None},
}


def preset(name: str) -> dict:
    return PRESETS[name]()


@dataclass(frozen=True)
class Contender:
    """Whose step (ours, baseline or peer) in which dtype, compiled or not."""

    code: str
    dtype: str
    compile: bool

    @property
    def name(self) -> str:
        return self.code if self.code != "peer" else f"peer {self.dtype} {'compiled' if self.compile else 'eager'}"


@dataclass(frozen=True)
class Shape:
    n_layer: int
    d_model: int
    n_head: int
    n_ctx: int
    vocab: int

    @classmethod
    def parse(cls, text: str, ctx: int, vocab: int) -> Shape:
        parts = [int(p) for p in text.split(",") if p.strip().isdigit()]
        if len(parts) != len(text.split(",")) or len(parts) not in (3, 4, 5):
            raise argparse.ArgumentTypeError(
                f"shape {text!r}: expected integers n_layer,d_model,n_head[,n_ctx[,vocab]]")
        parts += [ctx, vocab][len(parts) - 3:]
        if min(parts) <= 0 or parts[1] % parts[2]:
            raise argparse.ArgumentTypeError(f"shape {text!r}: sizes must be positive and d_model divisible by n_head")
        return cls(*parts)

    @property
    def name(self) -> str:
        return f"L{self.n_layer}_d{self.d_model}_h{self.n_head}_ctx{self.n_ctx}_v{self.vocab}"

    def model_config(self) -> ModelConfig:
        return ModelConfig(n_layer=self.n_layer, d_model=self.d_model, n_head=self.n_head, n_ctx=self.n_ctx,
                           vocab_size=self.vocab)


Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def serve(conn, contender: Contender, shape: Shape, args: argparse.Namespace) -> None:
    """One contender in a process of its own, so that process-wide settings stay its own: ours
    and the baseline under their hardware.configure (the project's settings), the peer at torch's
    defaults. Builds the model, sends its parameter count, then times the number of steps asked
    for (None ends it); an error is sent back as its traceback text."""
    try:
        device = args.device
        if args.threads:
            torch.set_num_threads(args.threads)
        optim_cfg = OptimConfig()
        lr = accounting.kaplan_lr(accounting.param_counts(shape.model_config(), shape.vocab).non_embedding)
        if contender.code == "ours":
            hardware.configure(device)
            step, n_params = build_ours(shape, optim_cfg, lr, device, contender, args.micro_batch)
        elif contender.code == "baseline":
            step, n_params = build_baseline(shape, lr, device, args)
        else:
            step, n_params = build_peer(shape, optim_cfg, lr, device, contender, args.micro_batch)
        tokens = np.random.default_rng(0).integers(0, shape.vocab, size=args.data_tokens, dtype=np.uint16)
        # The project's sampler, as train.py builds it: the same batches for every contender.
        sampler = BatchSampler(tokens, args.batch, shape.n_ctx, seed=1, pin_memory=device.type == "cuda")
        conn.send(n_params)
        while (steps := conn.recv()) is not None:
            conn.send(timed_steps(step, sampler, steps, device))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", traceback.format_exc()))


class Process:
    """A contender's process, and the rates it reached round by round."""

    def __init__(self, contender: Contender, shape: Shape, args: argparse.Namespace):
        self.name = contender.name
        context = multiprocessing.get_context("spawn")  # CUDA and a fresh allocator in every contender
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, contender, shape, args), daemon=True)
        self.process.start()
        self.n_params = self._receive()
        self.rates: list[float] = []
        self.wait_fracs: list[float] = []

    def _receive(self):
        message = self.conn.recv()
        if isinstance(message, tuple) and message[0] == "error":
            self.process.join()
            raise RuntimeError(f"contender {self.name} failed:\n{message[1]}")
        return message

    def time(self, steps: int) -> tuple[float, float]:
        """(seconds, seconds spent waiting for batches) of `steps` steps."""
        self.conn.send(steps)
        return self._receive()

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(None)
        self.process.join()


def build_ours(shape: Shape, optim_cfg: OptimConfig, lr: float, device: torch.device, contender: Contender,
               micro_batch: int | None) -> tuple[Step, int]:
    step = build_training_step(shape.model_config(), shape.vocab, optim_cfg, lr, device=device,
                               dtype=contender.dtype, compile_model=contender.compile, micro_batch_size=micro_batch,
                               seed=0)
    return step, sum(p.numel() for p in step.model.parameters())


def baseline_tree(ref: str) -> Path:
    """The scaling_sweep package as it was at git revision `ref`, extracted into a temporary folder."""
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref, "scaling_sweep"],
                            capture_output=True)
    if result.returncode != 0:
        raise UserError(f"--baseline-ref {ref}: not a revision of this repository "
                        f"({result.stderr.decode(errors='replace').strip().splitlines()[-1:]})")
    tree = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as archive:
        archive.extractall(tree, filter="data")
    return tree


def build_baseline(shape: Shape, lr: float, device: torch.device, args: argparse.Namespace) -> tuple[Step, int]:
    """The step of the revision in args.baseline_tree, at its defaults and process settings: this process
    forgets the current package and imports that one (the sampler and accounting stay the current ones)."""
    for name in [m for m in sys.modules if m == "scaling_sweep" or m.startswith("scaling_sweep.")]:
        del sys.modules[name]
    sys.path.insert(0, str(args.baseline_tree))
    config = importlib.import_module("scaling_sweep.core.config")
    old_hardware = importlib.import_module("scaling_sweep.training.hardware")
    old_step = importlib.import_module("scaling_sweep.training.step")
    old_hardware.configure(device)
    model_cfg = config.ModelConfig(n_layer=shape.n_layer, d_model=shape.d_model, n_head=shape.n_head,
                                   n_ctx=shape.n_ctx, vocab_size=shape.vocab)
    step = old_step.build_training_step(
        model_cfg, shape.vocab, config.OptimConfig(), lr, device=device,
        dtype=old_hardware.resolve_dtype("auto", device), compile_model=old_hardware.resolve_compile("auto", device),
        micro_batch_size=args.micro_batch, seed=0)
    return step, sum(p.numel() for p in step.model.parameters())


def build_peer(shape: Shape, optim_cfg: OptimConfig, lr: float, device: torch.device, contender: Contender,
               micro_batch: int | None) -> tuple[Step, int]:
    """GPT2LMHeadModel of the same shape; no dropout and untied unembedding, as ours; torch.compile'd as a
    user would (torch.compile(model)) in the compiled configurations."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    config = GPT2Config(
        vocab_size=shape.vocab, n_positions=shape.n_ctx, n_embd=shape.d_model, n_layer=shape.n_layer,
        n_head=shape.n_head, activation_function=PEER_ACTIVATION[shape.model_config().activation],
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, loss_type="ForCausalLM",
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).to(device)
    model.train()
    forward = torch.compile(model) if contender.compile else model
    embeddings = {id(model.transformer.wte.weight), id(model.transformer.wpe.weight), id(model.lm_head.weight)}
    groups = decay_groups(model.parameters(), embeddings, optim_cfg.weight_decay)
    # The user's choice: torch.optim.AdamW with its default implementation for the device.
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(optim_cfg.beta1, optim_cfg.beta2), eps=optim_cfg.eps)

    def step(x, y):
        # The same batch and micro-steps as ours; Hugging Face's own loss (labels = inputs, shifted inside).
        micro = min(micro_batch or x.shape[0], x.shape[0])
        chunks = to_device(x, device).split(micro)
        total = torch.zeros((), device=device)
        for xb in chunks:
            with autocast(device, contender.dtype):
                loss = forward(input_ids=xb, labels=xb).loss / len(chunks)
            loss.backward()
            total += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), optim_cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total, grad_norm

    return step, sum(p.numel() for p in model.parameters())


def timed_steps(step: Step, sampler: BatchSampler, steps: int, device: torch.device) -> tuple[float, float]:
    """Run `steps` steps; returns (seconds, seconds spent waiting for batches)."""
    hardware.synchronize(device)
    wait = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        before = time.perf_counter()
        x, y = next(sampler)
        wait += time.perf_counter() - before
        loss, _ = step(x, y)
    loss.item()  # the last step's result reached the host: all queued work is done
    hardware.synchronize(device)
    return time.perf_counter() - start, wait


def time_rounds(contenders: list[Process], args, device: torch.device, dtype: str, batch_tokens: int):
    """Warm every contender up (compilation, allocator, autotuning: never timed; it also sizes
    the rounds), then time them round by round in alternating order, with the matmul peak."""
    first_step_s, warmup_s, steps = {}, {}, {}
    for c in contenders:
        first_step_s[c.name], _ = c.time(1)  # compilation happens here
        warmup_s[c.name], _ = c.time(args.warmup)
        steps[c.name] = max(1, min(args.max_steps, round(args.round_s * args.warmup / warmup_s[c.name])))
    peaks = []
    for r in range(args.repeats):
        peaks.append(hardware.measure_matmul_flops(device, dtype, seconds=args.peak_s))
        for c in contenders if r % 2 == 0 else contenders[::-1]:
            seconds, wait = c.time(steps[c.name])
            c.rates.append(steps[c.name] * batch_tokens / seconds)
            c.wait_fracs.append(wait / seconds)
    return first_step_s, warmup_s, steps, peaks


def contenders_of(args, dtype: str, compile_: bool, with_peer: bool) -> list[Contender]:
    """Ours first, then the baseline (--baseline-ref) and the peer's configurations."""
    contenders = [Contender("ours", dtype, compile_)]
    if args.baseline_tree:
        contenders.append(Contender("baseline", "auto", False))  # its own defaults, resolved in its process
    if with_peer:
        contenders += [Contender("peer", c.split("-")[0], c.endswith("compiled")) for c in args.peer_configs]
    return contenders


def bench_shape(shape: Shape, args, device: torch.device, dtype: str, compile_: bool, with_peer: bool) -> dict:
    counts = accounting.param_counts(shape.model_config(), shape.vocab)
    batch_tokens = args.batch * shape.n_ctx
    processes = []
    try:
        for contender in contenders_of(args, dtype, compile_, with_peer):
            processes.append(Process(contender, shape, args))
        for c in processes[1:]:
            if c.n_params != processes[0].n_params:
                raise RuntimeError(f"{shape.name}: {c.name} has {c.n_params:,} parameters, ours "
                                   f"{processes[0].n_params:,}: not the same model")
        first_step_s, warmup_s, steps, peaks = time_rounds(processes, args, device, dtype, batch_tokens)
    finally:
        for c in processes:
            c.close()
    ours = processes[0]
    med = {c.name: statistics.median(c.rates) for c in processes}
    peers = {name: rate for name, rate in med.items() if name.startswith("peer")}
    fastest = max(peers, key=peers.get) if peers else None
    fpt = accounting.flops_per_token(shape.model_config(), shape.vocab).exact
    # the median of the rounds' trials: the statistic of a run's measured peak (training.mfu)
    denominators = mfu.Peaks(device, dtype, args.peak_s, hardware.datasheet_peak(device, dtype), measured=peaks)
    fractions = denominators.mfu(fpt * med["ours"])
    return {
        "shape": shape.name,
        "n_layer": shape.n_layer, "d_model": shape.d_model, "n_head": shape.n_head,
        "n_ctx": shape.n_ctx, "vocab": shape.vocab,
        "batch": args.batch, "micro_batch": args.micro_batch, "threads": torch.get_num_threads(),
        "N": counts.non_embedding, "N_total": counts.total,
        "flops_per_token_exact": fpt,
        "dtype": dtype, "compile": compile_,
        "steps_per_round": steps,
        "ours_tokens_per_s": med["ours"],
        "ours_tokens_per_s_min": min(ours.rates), "ours_tokens_per_s_max": max(ours.rates),
        "peer_fastest": fastest,
        "peer_fastest_tokens_per_s": peers.get(fastest),
        # the headline: ours over the peer at its fastest configuration at this shape
        "ratio": med["ours"] / peers[fastest] if fastest else None,
        "peer_tokens_per_s": peers,
        "ratios": {name: med["ours"] / rate for name, rate in peers.items()},
        "baseline_ref": args.baseline_ref,
        "baseline_tokens_per_s": med.get("baseline"),
        # round by round (the load varies between rounds), then the median
        "speedup_over_baseline": statistics.median(
            [a / b for a, b in zip(ours.rates, processes[1].rates)]) if "baseline" in med else None,
        "flops_per_s": fpt * med["ours"],
        "matmul_peak_flops": denominators.measured_peak,
        "matmul_peak_flops_min": min(peaks), "matmul_peak_flops_max": max(peaks),
        "peak_flops_datasheet": denominators.datasheet.flops,
        "peak_flops_datasheet_source": denominators.datasheet.source,
        "mfu": fractions.headline, "mfu_convention": fractions.convention,
        "mfu_datasheet": fractions.datasheet, "mfu_measured_peak": fractions.measured_peak,
        "data_wait_frac": statistics.median(ours.wait_fracs),
        "data_wait_frac_max": max(ours.wait_fracs),
        "rounds": args.repeats,
        "rates": {c.name: c.rates for c in processes},
        "first_step_s": first_step_s,
        "warmup_s": warmup_s,
    }


def fmt_rate(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}"
    return f"{text} ({low:,.0f}-{high:,.0f})" if low is not None else text


def fmt_fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def print_row(row: dict) -> None:
    headline = (f" | ours / fastest peer ({row['peer_fastest']}) {row['ratio']:.2f}" if row["ratio"] is not None
                else " | no peer")
    others = ", ".join(f"{name.removeprefix('peer ')} {fmt_rate(rate)} ({row['ratios'][name]:.2f})"
                       for name, rate in row["peer_tokens_per_s"].items())
    baseline = (f" | baseline {fmt_rate(row['baseline_tokens_per_s'])}, ours / baseline "
                f"{row['speedup_over_baseline']:.2f}" if row["baseline_tokens_per_s"] else "")
    print(
        f"{row['shape']:<28} ours tokens/s "
        f"{fmt_rate(row['ours_tokens_per_s'], row['ours_tokens_per_s_min'], row['ours_tokens_per_s_max'])}"
        f"{headline}{baseline}"
        f" | peer tokens/s (ours / it): {others or '-'}"
        f" | {row['flops_per_s'] / 1e9:,.1f} GFLOP/s | MFU {fmt_fraction(row['mfu_datasheet'])} of the datasheet"
        f" peak, {fmt_fraction(row['mfu_measured_peak'])} of the measured mm peak"
        f" | data wait {row['data_wait_frac']:.2%}",
        flush=True,
    )


def print_verdicts(rows: list[dict]) -> None:
    """The lowest ratios over the shapes: ours against the fastest peer, and against the baseline."""
    for key, what in (("ratio", "ours / the peer at its fastest configuration"),
                      ("speedup_over_baseline", "ours / baseline (round by round)")):
        values = [(r[key], r["shape"]) for r in rows if r[key] is not None]
        if values:
            print(f"{what}: lowest {min(values)[0]:.2f} ({min(values)[1]}); per shape "
                  f"{', '.join(f'{v:.2f}' for v, _ in values)}")


class OtherCpuUse:
    """CPU time that other processes used while the benchmark ran, in cores (Linux /proc).

    The 1-minute load average counts our own threads too; this subtracts them, so it says
    how much the machine was shared while the numbers were taken.
    """

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            busy = sum(int(v) for i, v in enumerate(Path("/proc/stat").read_text().split("\n")[0].split()[1:])
                       if i not in (3, 4, 8, 9))
            # utime, stime and those of the contenders' processes once joined (cutime, cstime)
            ours = sum(int(v) for v in Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[11:15])
        except (OSError, ValueError, IndexError):
            return None
        return busy, ours, time.monotonic()

    def cores(self) -> float | None:
        end = self._read()
        if self.start is None or end is None:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return ((end[0] - self.start[0]) - (end[1] - self.start[1])) / ticks / (end[2] - self.start[2])


def environment(device: torch.device, dtype: str, compile_: bool, with_peer: bool) -> dict:
    env = hardware.describe(device) | hardware.versions() | {
        "dtype": dtype, "compile": compile_, "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}
    if with_peer:
        import transformers

        env["transformers"] = transformers.__version__
    return env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="shape list, batch and threads (default: gpu on CUDA, else cpu)")
    parser.add_argument("--shapes", nargs="+", help="n_layer,d_model,n_head[,n_ctx[,vocab]] ...")
    parser.add_argument("--batch", type=int, help="sequences per optimizer step")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward pass (gradient accumulation)")
    parser.add_argument("--ctx", type=int, help="default n_ctx of a shape")
    parser.add_argument("--vocab", type=int, help="default vocabulary of a shape")
    parser.add_argument("--threads", type=int,
                        help="torch threads of every contender (default: the preset's; demo and cpu_ladder: 1, "
                             "as their jobs; else torch's default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"],
                        help="ours (auto: the project default)")
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"],
                        help="ours (auto: the project default)")
    parser.add_argument("--peer-configs", nargs="+", default=PEER_CONFIGS, choices=PEER_CONFIGS,
                        help="the peer's configurations to time (default: all four)")
    parser.add_argument("--baseline-ref", help="also time the step of this git revision (e.g. d65c824)")
    parser.add_argument("--rounds", "--repeats", dest="repeats", type=int, default=5,
                        help="timed rounds; each times every contender once")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per contender after its first")
    parser.add_argument("--round-s", type=float, default=2.0, help="target seconds per contender per round")
    parser.add_argument("--max-steps", type=int, default=50, help="cap on steps per contender per round")
    parser.add_argument("--peak-s", type=float, default=1.0, help="seconds of torch.mm per round for the peak")
    parser.add_argument("--data-tokens", type=int, default=16_000_000,
                        help="size of the token array batches are drawn from")
    parser.add_argument("--no-peer", action="store_true", help="time ours only")
    parser.add_argument("--json", type=Path, help="also write the table (and the environment) here")
    args = parser.parse_args(argv)
    device = hardware.resolve_device(args.device)
    defaults = preset(args.preset or ("gpu" if device.type == "cuda" else "cpu"))
    for key in ("batch", "micro_batch", "ctx", "vocab", "threads"):
        if getattr(args, key) is None:
            setattr(args, key, defaults[key])
    try:
        args.shapes = [Shape.parse(s, args.ctx, args.vocab) for s in (args.shapes or defaults["shapes"])]
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    if args.micro_batch and args.batch % args.micro_batch:
        parser.error(f"--micro-batch {args.micro_batch} must divide --batch {args.batch} "
                     "(one static shape per micro-step)")
    args.device = device
    args.baseline_tree = baseline_tree(args.baseline_ref) if args.baseline_ref else None
    return args


@entry_point("bench_throughput")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = args.device
    hardware.configure(device)
    if args.threads:
        torch.set_num_threads(args.threads)  # the matmul peak's threads are the contenders'
    start = time.monotonic()
    dtype = hardware.resolve_dtype(args.dtype, device)
    compile_ = hardware.resolve_compile(args.compile, device)
    with_peer = not args.no_peer
    if with_peer:
        try:
            import transformers  # noqa: F401
        except ImportError:
            print("transformers is not installed (pip install -e .[bench]): timing ours only", file=sys.stderr)
            with_peer = False
    env = environment(device, dtype, compile_, with_peer)
    load_before, others = os.getloadavg(), OtherCpuUse()
    print(" ".join(f"{k}={v}" for k, v in env.items()), f"load={load_before[0]:.2f}", flush=True)
    size = hardware.peak_matrix_size(device)
    print(f"matmul peak ({size}^2 torch.mm): "
          f"fp32 {hardware.measure_matmul_flops(device, 'fp32', args.peak_s) / 1e9:,.0f} GFLOP/s, "
          f"bf16 {hardware.measure_matmul_flops(device, 'bf16', args.peak_s) / 1e9:,.0f} GFLOP/s; "
          f"datasheet {dtype} peak: {hardware.datasheet_peak(device, dtype).source}", flush=True)
    rows = []
    try:
        for shape in args.shapes:
            row = bench_shape(shape, args, device, dtype, compile_, with_peer)
            print_row(row)
            rows.append(row)
    finally:
        if args.baseline_tree:
            shutil.rmtree(args.baseline_tree, ignore_errors=True)
    print_verdicts(rows)
    waits = [r["data_wait_frac"] for r in rows]
    print(f"data loading: {max(waits):.2%} of step time at most waiting for batches "
          f"(median per shape {', '.join(f'{w:.2%}' for w in waits)})")
    load_after, other_cores = os.getloadavg(), others.cores()
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} (ours included); "
          f"other processes used {other_cores if other_cores is not None else float('nan'):.2f} cores "
          f"on average meanwhile; {time.monotonic() - start:.0f} s in all")
    if args.json:
        env["load_1min_before"], env["load_1min_after"] = load_before[0], load_after[0]
        env["other_processes_cpu_cores"] = other_cores
        args.json.write_text(json.dumps({"environment": env, "shapes": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
