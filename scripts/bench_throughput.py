#!/usr/bin/env python
"""Training throughput of our step against Hugging Face GPT2LMHeadModel on the same machine.

For each shape this times, interleaved round by round so that load from other processes
hits every contender alike, each contender in a process of its own (so that process-wide
settings, such as the allocator's, belong to it alone):

  ours        scaling_sweep's real step (training.step.build_training_step, as training builds it)
              at the project's defaults for this device (dtype and compile as train.py resolves
              them for dtype=auto, compile=auto; hardware.configure's process settings);
  peer        transformers' GPT2LMHeadModel of the same shape, vocabulary and context (no dropout
              and an untied unembedding, as ours: the same parameter count is checked), the same
              AdamW hyper-parameters and decay groups, the same batches, micro-steps and gradient
              clipping, the same activation (exact GELU; "gelu_new" for model.activation=gelu_tanh),
              at its defaults otherwise: fp32, eager, SDPA attention, its own loss (labels =
              inputs), torch.optim.AdamW's default implementation for the device, full-precision
              fp32 matmuls (no TF32), glibc's default allocator behaviour;
  peer_dtype  the same peer under our dtype (bf16 autocast where ours uses it) and our process
              settings: it differs from ours only in the model and step code.

Per shape it prints tokens/s (median of the rounds, min-max), ours/peer ratios, achieved FLOP/s
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
    python scripts/bench_throughput.py --preset gpu         # GPT-2 small and medium sized, ctx 1024
    python scripts/bench_throughput.py --shapes 4,128,4 6,256,8 --json bench.json

A shape is n_layer,d_model,n_head[,n_ctx[,vocab]]; n_ctx and vocab default to --ctx and --vocab.
The peer needs `pip install -e .[bench]`; without transformers it is skipped (null in --json).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling_sweep.core import accounting  # noqa: E402
from scaling_sweep.core.config import ModelConfig, OptimConfig, config_dir  # noqa: E402
from scaling_sweep.core.errors import entry_point  # noqa: E402
from scaling_sweep.data.sampler import BatchSampler  # noqa: E402
from scaling_sweep.data.tokenizer import ByteTokenizer  # noqa: E402
from scaling_sweep.training import hardware, mfu  # noqa: E402
from scaling_sweep.training.optim import decay_groups  # noqa: E402
from scaling_sweep.training.step import autocast, build_training_step, to_device  # noqa: E402

# The earlier demo's shapes (byte vocabulary, n_ctx 256, batch 32), which docs/performance.md's CPU
# tables use; the current demo's are the demo preset's.
CPU_SHAPES = ["2,32,2", "2,64,2", "3,96,3", "4,128,4", "4,192,6", "6,256,8"]
# GPT-2 small and medium sized, GPT-2's vocabulary and context.
GPU_SHAPES = ["12,768,12,1024,50257", "24,1024,16,1024,50257"]
PEER_ACTIVATION = {"gelu": "gelu", "gelu_tanh": "gelu_new"}  # ours -> GPT2Config.activation_function


def demo_preset() -> dict:
    """+sweep=demo's shapes and batch, read from its configs so that the preset follows the demo, and its
    byte tokenizer's vocabulary."""
    models = [OmegaConf.load(p).model for p in (config_dir() / "model" / "demo").glob("*.yaml")]
    shapes = [f"{m.n_layer},{m.d_model},{m.n_head},{m.n_ctx}" for m in sorted(models, key=lambda m: m.d_model)]
    batch = OmegaConf.load(config_dir() / "sweep" / "demo.yaml").train.batch_size
    return {"shapes": shapes, "batch": batch, "micro_batch": None, "ctx": models[0].n_ctx,
            "vocab": ByteTokenizer.vocab_size}


PRESETS = {
    "cpu": {"shapes": CPU_SHAPES, "batch": 32, "micro_batch": None, "ctx": 256, "vocab": 256},
    "demo": demo_preset(),
    # Micro-batches of 8 x 1024 tokens keep the fp32 eager peer (and three models with AdamW
    # state) within an 80 GB GPU.
    "gpu": {"shapes": GPU_SHAPES, "batch": 32, "micro_batch": 8, "ctx": 1024, "vocab": 50257},
}


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


def serve(conn, role: str, shape: Shape, args: argparse.Namespace, dtype: str, compile_: bool) -> None:
    """One contender in a process of its own, so that process-wide settings stay its own:
    ours and peer_dtype run under hardware.configure (the project's settings), the peer at
    torch's defaults. Builds the model, sends its parameter count, then times the number of
    steps asked for (None ends it); an error is sent back as its traceback text."""
    try:
        device = args.device
        if role != "peer":
            hardware.configure(device)
        optim_cfg = OptimConfig()
        lr = accounting.kaplan_lr(accounting.param_counts(shape.model_config(), shape.vocab).non_embedding)
        if role == "ours":
            step, n_params = build_ours(shape, optim_cfg, lr, device, dtype, compile_, args.micro_batch)
        else:
            step, n_params = build_peer(shape, optim_cfg, lr, device, dtype, args.micro_batch)
        tokens = np.random.default_rng(0).integers(0, shape.vocab, size=args.data_tokens, dtype=np.uint16)
        # The project's sampler, as train.py builds it: the same batches for every contender.
        sampler = BatchSampler(tokens, args.batch, shape.n_ctx, seed=1, pin_memory=device.type == "cuda")
        conn.send(n_params)
        while (steps := conn.recv()) is not None:
            conn.send(timed_steps(step, sampler, steps, device))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", traceback.format_exc()))


class Contender:
    """A contender's process, and the rates it reached round by round."""

    def __init__(self, role: str, shape: Shape, args: argparse.Namespace, dtype: str, compile_: bool):
        self.name = role
        context = multiprocessing.get_context("spawn")  # CUDA and a fresh allocator in every contender
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, role, shape, args, dtype, compile_), daemon=True)
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


def build_ours(shape: Shape, optim_cfg: OptimConfig, lr: float, device: torch.device, dtype: str, compile_: bool,
               micro_batch: int | None) -> tuple[Step, int]:
    step = build_training_step(shape.model_config(), shape.vocab, optim_cfg, lr, device=device, dtype=dtype,
                               compile_model=compile_, micro_batch_size=micro_batch, seed=0)
    return step, sum(p.numel() for p in step.model.parameters())


def build_peer(shape: Shape, optim_cfg: OptimConfig, lr: float, device: torch.device, dtype: str,
               micro_batch: int | None) -> tuple[Step, int]:
    """GPT2LMHeadModel of the same shape; no dropout and untied unembedding, as ours."""
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
            with autocast(device, dtype):
                loss = model(input_ids=xb, labels=xb).loss / len(chunks)
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


def time_rounds(contenders: list[Contender], args, device: torch.device, dtype: str, batch_tokens: int):
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


def bench_shape(shape: Shape, args, device: torch.device, dtype: str, compile_: bool, with_peer: bool) -> dict:
    counts = accounting.param_counts(shape.model_config(), shape.vocab)
    batch_tokens = args.batch * shape.n_ctx
    roles = ["ours"] + (["peer"] + (["peer_dtype"] if dtype != "fp32" else []) if with_peer else [])
    contenders = []
    try:
        for role in roles:
            contenders.append(Contender(role, shape, args, "fp32" if role == "peer" else dtype, compile_))
        for c in contenders[1:]:
            if c.n_params != contenders[0].n_params:
                raise RuntimeError(f"{shape.name}: {c.name} has {c.n_params:,} parameters, ours "
                                   f"{contenders[0].n_params:,}: not the same model")
        first_step_s, warmup_s, steps, peaks = time_rounds(contenders, args, device, dtype, batch_tokens)
    finally:
        for c in contenders:
            c.close()
    ours = contenders[0]
    peer = contenders[1] if with_peer else None
    fpt = accounting.flops_per_token(shape.model_config(), shape.vocab).exact
    med = {c.name: statistics.median(c.rates) for c in contenders}
    # the median of the rounds' trials: the statistic of a run's measured peak (training.mfu)
    denominators = mfu.Peaks(device, dtype, args.peak_s, hardware.datasheet_peak(device, dtype), measured=peaks)
    fractions = denominators.mfu(fpt * med["ours"])
    row = {
        "shape": shape.name,
        "n_layer": shape.n_layer, "d_model": shape.d_model, "n_head": shape.n_head,
        "n_ctx": shape.n_ctx, "vocab": shape.vocab,
        "batch": args.batch, "micro_batch": args.micro_batch,
        "N": counts.non_embedding, "N_total": counts.total,
        "flops_per_token_exact": fpt,
        "dtype": dtype, "compile": compile_,
        "steps_per_round": steps,
        "ours_tokens_per_s": med["ours"],
        "ours_tokens_per_s_min": min(ours.rates), "ours_tokens_per_s_max": max(ours.rates),
        "peer_tokens_per_s": med.get("peer"),
        "peer_tokens_per_s_min": min(peer.rates) if with_peer else None,
        "peer_tokens_per_s_max": max(peer.rates) if with_peer else None,
        # In fp32 the peer at its defaults already runs in our dtype: the same measurement.
        "peer_same_dtype_tokens_per_s": med.get("peer_dtype", med.get("peer")),
        "ratio": med["ours"] / med["peer"] if with_peer else None,
        "ratio_same_dtype": med["ours"] / med.get("peer_dtype", med["peer"]) if with_peer else None,
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
        "rates": {c.name: c.rates for c in contenders},
        "first_step_s": first_step_s,
        "warmup_s": warmup_s,
    }
    if "peer_dtype" in med:
        pd = next(c for c in contenders if c.name == "peer_dtype")
        row["peer_same_dtype_tokens_per_s_min"], row["peer_same_dtype_tokens_per_s_max"] = min(pd.rates), max(pd.rates)
    return row


def fmt_rate(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}"
    return f"{text} ({low:,.0f}-{high:,.0f})" if low is not None else text


def fmt_fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def print_row(row: dict) -> None:
    ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
    ratio_dtype = f"{row['ratio_same_dtype']:.2f}" if row["ratio_same_dtype"] is not None else "-"
    peer_dtype_rate = fmt_rate(row["peer_same_dtype_tokens_per_s"], row.get("peer_same_dtype_tokens_per_s_min"),
                               row.get("peer_same_dtype_tokens_per_s_max"))
    print(
        f"{row['shape']:<28} ours "
        f"{fmt_rate(row['ours_tokens_per_s'], row['ours_tokens_per_s_min'], row['ours_tokens_per_s_max'])}"
        f" | peer {fmt_rate(row['peer_tokens_per_s'], row['peer_tokens_per_s_min'], row['peer_tokens_per_s_max'])}"
        f" | peer {row['dtype']} {peer_dtype_rate}"
        f" | ours/peer {ratio} | ours/peer {row['dtype']} {ratio_dtype}"
        f" | {row['flops_per_s'] / 1e9:,.1f} GFLOP/s | MFU {fmt_fraction(row['mfu_datasheet'])} of the datasheet"
        f" peak, {fmt_fraction(row['mfu_measured_peak'])} of the measured mm peak"
        f" | data wait {row['data_wait_frac']:.2%}",
        flush=True,
    )


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
        "dtype": dtype, "compile": compile_, "date": time.strftime("%Y-%m-%d")}
    if with_peer:
        import transformers

        env["transformers"] = transformers.__version__
    return env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="shape list and batch (default: gpu on CUDA, else cpu)")
    parser.add_argument("--shapes", nargs="+", help="n_layer,d_model,n_head[,n_ctx[,vocab]] ...")
    parser.add_argument("--batch", type=int, help="sequences per optimizer step")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward pass (gradient accumulation)")
    parser.add_argument("--ctx", type=int, help="default n_ctx of a shape")
    parser.add_argument("--vocab", type=int, help="default vocabulary of a shape")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"],
                        help="ours (auto: the project default)")
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"],
                        help="ours (auto: the project default)")
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
    preset = PRESETS[args.preset or ("gpu" if device.type == "cuda" else "cpu")]
    for key in ("batch", "micro_batch", "ctx", "vocab"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    try:
        args.shapes = [Shape.parse(s, args.ctx, args.vocab) for s in (args.shapes or preset["shapes"])]
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    if args.micro_batch and args.batch % args.micro_batch:
        parser.error(f"--micro-batch {args.micro_batch} must divide --batch {args.batch} "
                     "(one static shape per micro-step)")
    args.device = device
    return args


@entry_point("bench_throughput")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = args.device
    hardware.configure(device)
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
    for shape in args.shapes:
        row = bench_shape(shape, args, device, dtype, compile_, with_peer)
        print_row(row)
        rows.append(row)
    waits = [r["data_wait_frac"] for r in rows]
    print(f"data loading: {max(waits):.2%} of step time at most waiting for batches "
          f"(median per shape {', '.join(f'{w:.2%}' for w in waits)})")
    load_after, other_cores = os.getloadavg(), others.cores()
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} (ours included); "
          f"other processes used {other_cores if other_cores is not None else float('nan'):.2f} cores "
          "on average meanwhile")
    if args.json:
        env["load_1min_before"], env["load_1min_after"] = load_before[0], load_after[0]
        env["other_processes_cpu_cores"] = other_cores
        args.json.write_text(json.dumps({"environment": env, "shapes": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
