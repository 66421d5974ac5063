"""The training loop of one run: build it from its config, resume it, train until a stop rule,
and record it (metrics.jsonl, summary.json, TensorBoard, checkpoints)."""

from __future__ import annotations

import contextlib
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from scaling_sweep.core import accounting, budget, runfiles
from scaling_sweep.core.config import RunConfig
from scaling_sweep.core.runfiles import RESUMABLE_STOPS, MetricsRow, RunSummary
from scaling_sweep.data.sampler import BatchSampler, validation_batches
from scaling_sweep.data.tokens import prepare_tokens
from scaling_sweep.training import distributed, hardware, mfu
from scaling_sweep.training.checkpoint import read_checkpoint, restore, save_checkpoint
from scaling_sweep.training.launch import STOP
from scaling_sweep.training.optim import decay_lr, decay_start, lr_at
from scaling_sweep.training.step import TrainingStep, autocast, build_training_step
from scaling_sweep.training.tracking import RunLog

# Stop reasons that mean the run trained as far as planned; any other stop is "stopped".
PLANNED_ENDS = ("max_steps", "max_tokens", "compute_budget")


@dataclass
class LoopState:
    step: int = 0
    tokens: int = 0
    best_val_loss: float = float("inf")
    best_val_step: int = -1
    evals_since_best: int = 0
    last_val_loss: float | None = None
    last_train_loss: float | None = None
    elapsed_s: float = 0.0
    rates: list = field(default_factory=list)  # tokens/s of each logged interval this session
    cooldowns: list = field(default_factory=list)  # wsd branches done: step, tokens, flops, val_loss, reason
    # the logging interval a stop between log steps cut: its steps and their summed loss, which the resumed run
    # goes on from, so that its next row is the uninterrupted run's (0 in every other checkpoint)
    interval_steps: int = 0
    interval_loss: float = 0.0


@dataclass
class TrainingRun:
    """Everything built from the config that the loop needs."""

    cfg: RunConfig
    run_dir: Path
    dtype: str
    step_fn: TrainingStep
    sampler: BatchSampler
    val_batches: list
    counts: accounting.ParamCounts
    flops_per_token: accounting.FlopsPerToken
    peak_lr: float
    total_steps: int
    data_meta: dict
    dist: distributed.DistInfo
    peaks: mfu.Peaks
    fitted_hparams: dict | None = None  # where optim.lr or train.batch_size came from a fit (training.fitted)
    cooldown_ends: dict[int, int] = field(default_factory=dict)  # wsd: branch start step -> its end step

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def model(self):
        return self.step_fn.model

    @property
    def batch_tokens(self) -> int:
        return self.cfg.train.batch_size * self.cfg.model.n_ctx

    def flops(self, tokens: int) -> float:
        """Kaplan's C = 6·N·tokens (N non-embedding)."""
        return accounting.training_flops(self.counts.non_embedding, tokens)

    def flops_exact(self, tokens: int) -> float:
        return self.flops_per_token.exact * tokens

    def device_flops_per_s(self, tokens_per_s: float | None) -> float | None:
        """Exact FLOP/s of one device (of world_size) at a rate of the whole run."""
        return self.flops_per_token.exact * tokens_per_s / self.dist.world_size if tokens_per_s else None


def build_run(cfg: RunConfig, run_dir: Path, dist: distributed.DistInfo, fitted_hparams: dict | None = None
              ) -> TrainingRun:
    device = dist.device
    hardware.configure(device)
    hardware.use_threads(cfg.train.threads)
    dtype = hardware.resolve_dtype(cfg.train.dtype, device)
    splits = prepare_tokens(cfg.data, cfg.tokenizer, cfg.train.max_unique_tokens)
    vocab = splits.vocab_size
    counts = accounting.param_counts(cfg.model, vocab)
    peak_lr = cfg.optim.lr if cfg.optim.lr is not None else accounting.kaplan_lr(counts.non_embedding)
    step_fn = build_training_step(
        cfg.model, vocab, cfg.optim, peak_lr, device=device, dtype=dtype,
        compile_model=hardware.resolve_compile(cfg.train.compile, device),
        micro_batch_size=cfg.train.micro_batch_size, seed=cfg.train.seed, dist=dist)
    total_steps = budget.planned_steps(cfg, counts.non_embedding, counts.total)
    return TrainingRun(
        cfg=cfg,
        run_dir=run_dir,
        dtype=dtype,
        step_fn=step_fn,
        sampler=BatchSampler(splits.train, cfg.train.batch_size, cfg.model.n_ctx, cfg.train.seed, dist.rank,
                             dist.world_size, pin_memory=device.type == "cuda"),
        val_batches=validation_batches(splits.val, cfg.model.n_ctx, cfg.train.eval_windows,
                                       cfg.train.micro_batch_size or cfg.train.batch_size),
        counts=counts,
        flops_per_token=accounting.flops_per_token(cfg.model, vocab),
        peak_lr=peak_lr,
        total_steps=total_steps,
        data_meta=splits.meta,
        dist=dist,
        peaks=mfu.Peaks.at_start(device, dtype, cfg.train),
        fitted_hparams=fitted_hparams,
        cooldown_ends=cooldown_ends(cfg, counts.non_embedding, total_steps),
    )


def cooldown_ends(cfg: RunConfig, n_params: int, total_steps: int) -> dict[int, int]:
    """The wsd cooldown branches of the run, {start step: end step}: each ends where 6·N·tokens
    reaches one of optim.cooldown_budgets, or at one of optim.cooldown_steps, and starts decay_fraction
    of its steps before; ends the run itself reaches at its end (or never reaches) have no branch."""
    ends = budget_ends(cfg, n_params) | set(cfg.optim.cooldown_steps)
    return {decay_start(end, cfg.optim): end for end in sorted(ends) if end < total_steps}


def budget_ends(cfg: RunConfig, n_params: int) -> set[int]:
    """The steps at which 6·N·tokens reaches each of optim.cooldown_budgets."""
    batch_tokens = cfg.train.batch_size * cfg.model.n_ctx
    return {max(1, round(c / accounting.training_flops(n_params, batch_tokens))) for c in cfg.optim.cooldown_budgets}


def checkpoint(run: TrainingRun, state: LoopState) -> None:
    if run.dist.is_main:
        save_checkpoint(run.run_dir, run.cfg, run.step_fn, run.sampler, state)


def resume(run: TrainingRun, saved: dict | None) -> LoopState:
    """The loop state to go on from: a checkpoint's (its model, optimizer, RNG and sampler restored), or a new one."""
    return LoopState(**restore(saved, run.step_fn, run.sampler)) if saved is not None else LoopState()


@torch.no_grad()
def evaluate(run: TrainingRun) -> float:
    """Mean loss over the fixed validation windows (a partial last batch weighs by its windows);
    DDP ranks take every world_size-th batch and sum their totals."""
    run.model.eval()
    loss_sum, windows = torch.zeros((), device=run.device), 0
    for x, y in run.val_batches[run.dist.rank::run.dist.world_size]:
        with autocast(run.device, run.dtype):
            _, loss = run.model(x.to(run.device), y.to(run.device))
        loss_sum += loss.float() * len(x)
        windows += len(x)
    run.model.train()
    totals = distributed.all_sum(torch.stack([loss_sum, torch.tensor(float(windows), device=run.device)]), run.dist)
    return (totals[0] / totals[1]).item()


def train_step(run: TrainingRun, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over the global batch; returns (mean loss, grad norm) on device."""
    run.step_fn.set_lr(lr_at(step, run.peak_lr, run.cfg.optim, run.total_steps))
    return run.step_fn(*next(run.sampler))


def cooldown(run: TrainingRun, state: LoopState, log: RunLog | None) -> None:
    """Train the wsd cooldown branch that starts at this step to its end, evaluate it, record it as
    a point of its own, and put model, optimizer, sampler and RNG back as they were, so the run
    goes on as if the branch had not been trained (the branch is the run of that length would be).
    A stop requested during the branch abandons it (single process: DDP ranks finish it together): the
    run is put back unrecorded, and its next launch trains the branch again from the same state."""
    end = run.cooldown_ends[state.step]
    saved = (copy.deepcopy(run.model.state_dict()), copy.deepcopy(run.step_fn.optimizer.state_dict()),
             run.sampler.state_dict(), torch.get_rng_state())
    try:
        for step in range(state.step, end):
            if STOP.reason is not None and run.dist.world_size == 1:
                return
            run.step_fn.set_lr(decay_lr(step, run.peak_lr, run.cfg.optim, end))
            run.step_fn(*next(run.sampler))
        tokens = end * run.batch_tokens
        reason = "compute_budget" if end in budget_ends(run.cfg, run.counts.non_embedding) else "steps"
        point = {"step": end, "tokens": tokens, "flops": run.flops(tokens), "val_loss": evaluate(run), "reason": reason}
        state.cooldowns.append(point)
        if log:
            log.log_cooldown(point)
    finally:
        model_state, optimizer_state, sampler_state, rng = saved
        run.model.load_state_dict(model_state)
        run.step_fn.optimizer.load_state_dict(optimizer_state)
        run.sampler.load_state_dict(sampler_state)
        torch.set_rng_state(rng)


def cooldown_due(run: TrainingRun, state: LoopState) -> bool:
    return state.step in run.cooldown_ends and all(c["step"] != run.cooldown_ends[state.step]
                                                       for c in state.cooldowns)


def stop_reason(run: TrainingRun, state: LoopState) -> str | None:
    train = run.cfg.train
    if state.step >= train.max_steps:
        return "max_steps"
    if train.max_tokens is not None and state.tokens >= train.max_tokens:
        return "max_tokens"
    if train.stop_at == "compute_optimal":
        tokens, reason = budget.stop_tokens(run.counts.non_embedding, train.compute_budget, n_total=run.counts.total)
        if state.tokens >= tokens:
            return reason
    if train.compute_budget is not None and run.flops(state.tokens) >= train.compute_budget:
        return "compute_budget"
    if train.early_stop_patience and state.evals_since_best >= train.early_stop_patience:
        return "early_stop"
    return None


def record_eval(run: TrainingRun, state: LoopState) -> float:
    val_loss = evaluate(run)
    state.last_val_loss = val_loss
    if val_loss < state.best_val_loss:
        state.best_val_loss, state.best_val_step, state.evals_since_best = val_loss, state.step, 0
    else:
        state.evals_since_best += 1
    return val_loss


def lr_rule(run: TrainingRun) -> str:
    if run.fitted_hparams and "lr" in run.fitted_hparams:
        return "fitted"
    return "fixed" if run.cfg.optim.lr is not None else "kaplan_eq_D1"


def summary(run: TrainingRun, state: LoopState, status: str, reason: str | None) -> RunSummary:
    cfg = run.cfg
    rates = state.rates[1:] if len(state.rates) > 1 else state.rates
    tokens_per_s = statistics.median(rates) if rates else None
    trained = state.best_val_step >= 0
    return RunSummary(
        run_name=cfg.run_name, sweep=cfg.sweep_name, status=status, stop_reason=reason,
        n_layer=cfg.model.n_layer, d_model=cfg.model.d_model, n_head=cfg.model.n_head, n_ctx=cfg.model.n_ctx,
        d_ff=cfg.model.ff_dim, vocab_size=run.model.wte.num_embeddings, tie_embeddings=cfg.model.tie_embeddings,
        tokenizer=cfg.tokenizer.name, data=cfg.data.name,
        N=run.counts.non_embedding, N_embed=run.counts.embedding, N_total=run.counts.total,
        N_kaplan_approx=run.counts.kaplan_approx,
        batch_size=cfg.train.batch_size, batch_tokens=run.batch_tokens, step=state.step,
        max_steps=cfg.train.max_steps, planned_steps=run.total_steps, tokens=state.tokens,
        unique_tokens=run.data_meta["n_unique_train_tokens"], max_unique_tokens=cfg.train.max_unique_tokens,
        flops=run.flops(state.tokens), flops_exact=run.flops_exact(state.tokens),
        flops_per_token_exact=run.flops_per_token.exact, flops_per_token_kaplan_6N=run.flops_per_token.kaplan,
        final_val_loss=state.last_val_loss,
        best_val_loss=state.best_val_loss if trained else None,
        best_val_step=state.best_val_step if trained else None,
        final_train_loss=state.last_train_loss, unigram_entropy=run.data_meta["train_unigram_entropy_nats"],
        lr=run.peak_lr, lr_rule=lr_rule(run), fitted_hparams=run.fitted_hparams,
        device=hardware.device_name(run.device), world_size=run.dist.world_size, dtype=run.dtype,
        tokens_per_s=tokens_per_s, **run.peaks.summary_fields(run.device_flops_per_s(tokens_per_s)),
        wall_time_s=state.elapsed_s, versions=hardware.versions(), hardware=hardware.describe(run.device),
        cooldowns=state.cooldowns,
    )


def log_row(run: TrainingRun, state: LoopState, loss_sum: torch.Tensor, grad_norm: torch.Tensor, n_steps: int,
            rate: float | None) -> MetricsRow:
    state.last_train_loss = (loss_sum / n_steps).item()
    fractions = run.peaks.mfu(run.device_flops_per_s(rate))
    return MetricsRow(
        step=state.step, tokens=state.tokens, flops=run.flops(state.tokens), flops_exact=run.flops_exact(state.tokens),
        lr=run.step_fn.optimizer.param_groups[0]["lr"], train_loss=state.last_train_loss,
        grad_norm=grad_norm.item(), tokens_per_s=rate, mfu=fractions.headline, mfu_datasheet=fractions.datasheet,
        mfu_measured_peak=fractions.measured_peak, elapsed_s=state.elapsed_s,
    )


def requested_stop(run: TrainingRun, interval_open: bool) -> str | None:
    """The stop to make at this step boundary: any requested, in a single process; under DDP only between
    logging intervals, where the ranks agree (any rank's request stops them all, named by the first rank's)."""
    if run.dist.world_size == 1:
        return STOP.reason
    if interval_open:
        return None
    asked = distributed.all_sum(torch.tensor(float(STOP.reason is not None), device=run.device), run.dist)
    return (STOP.reason or "interrupted") if asked.item() > 0 else None


def progress_bar(run: TrainingRun, state: LoopState, on_terminal: bool) -> tqdm:
    """The run's bar on a terminal (none elsewhere); in a sweep it carries the run's name, on a line of its own
    below the sweep's total (training.sweep.SweepProgress)."""
    slot = STOP.launch.take_slot() if on_terminal and STOP.launch is not None else None
    if slot:
        tqdm.set_lock(STOP.launch.terminal_lock())
    return tqdm(total=run.total_steps, initial=state.step, unit="step", disable=not on_terminal, dynamic_ncols=True,
                desc=run.cfg.run_name if slot else None, position=slot, leave=slot is None)


def run_loop(run: TrainingRun, state: LoopState, log: RunLog | None) -> tuple[str, str]:
    """Train until a stop condition; returns (status, reason). Syncs with the host only at log steps.
    Whatever ends it but divergence, its state is in the checkpoint, saved at a step boundary of the run."""
    train = run.cfg.train
    shown = train.progress and run.dist.is_main
    bar = progress_bar(run, state, shown and sys.stderr.isatty())
    loss_sum = torch.tensor(state.interval_loss, device=run.device)
    steps_in_interval, saved_step = state.interval_steps, state.step  # the checkpoint resumed from is at this step
    state.interval_steps, state.interval_loss = 0, 0.0
    interval_start, interval_tokens = time.perf_counter(), steps_in_interval * run.batch_tokens
    if state.step == 0:
        record_eval(run, state)
        if log:
            log.log(MetricsRow(step=0, tokens=0, flops=0.0, flops_exact=0.0, val_loss=state.last_val_loss,
                               elapsed_s=0.0))
    while (reason := stop_reason(run, state)) is None:
        if (reason := requested_stop(run, steps_in_interval > 0)) is not None:
            state.interval_steps, state.interval_loss = steps_in_interval, loss_sum.item()
            state.elapsed_s += time.perf_counter() - interval_start
            break
        if cooldown_due(run, state):
            branch_start = time.perf_counter()
            cooldown(run, state, log)
            interval_start += time.perf_counter() - branch_start  # the branch's time is not the run's
            continue  # a stop requested during the branch is made before the run's next step
        loss, grad_norm = train_step(run, state.step)
        loss_sum += loss
        steps_in_interval += 1
        state.step += 1
        state.tokens += run.batch_tokens
        interval_tokens += run.batch_tokens
        bar.update(1)
        at_eval = state.step % train.eval_every == 0 or stop_reason(run, state) is not None
        if state.step % train.log_every and not at_eval:
            continue
        hardware.synchronize(run.device)
        elapsed = time.perf_counter() - interval_start
        state.elapsed_s += elapsed
        rate = interval_tokens / elapsed
        state.rates.append(rate)
        row = log_row(run, state, distributed.all_mean(loss_sum, run.dist), grad_norm, steps_in_interval, rate)
        if not torch.isfinite(torch.tensor(row.train_loss)):
            if log:
                log.log(row)
            return "diverged", "non-finite training loss"
        if at_eval:
            row.val_loss = record_eval(run, state)
        bar.set_postfix(loss=f"{row.train_loss:.3f}", val=f"{state.last_val_loss:.3f}", tok_s=f"{rate:,.0f}")
        if at_eval and shown and bar.disable:  # plain logs: a line per evaluation, not carriage-return bars
            print(f"{run.cfg.run_name}: step {state.step:,}/{run.total_steps:,}, train loss {row.train_loss:.4f}, "
                  f"val loss {row.val_loss:.4f} nats/token, {rate:,.0f} tokens/s", file=sys.stderr, flush=True)
        if log:
            log.log(row)
        if state.step % train.checkpoint_every == 0 or at_eval:
            checkpoint(run, state)
            saved_step = state.step
            if log:
                log.write_summary(summary(run, state, "running", None))
        loss_sum, steps_in_interval = torch.zeros((), device=run.device), 0
        interval_start, interval_tokens = time.perf_counter(), 0
    bar.close()
    if state.step != saved_step:  # (a run stopped at step 0 has nothing to save: its relaunch starts afresh)
        checkpoint(run, state)
    return ("completed" if reason in PLANNED_ENDS else "stopped"), reason


def train(cfg: RunConfig, run_dir: Path, record_launch: Callable[[], None] | None = None,
          fitted_hparams: dict | None = None) -> RunSummary:
    """Train (or resume, or skip) the run in run_dir; returns its summary. The run folder is locked
    while this process trains it: runfiles.RunLockedError at once when another process does.
    record_launch (the main process's) runs once this launch holds the run and will train it;
    fitted_hparams (training.fitted) is recorded in the summary."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with runfiles.run_lock(run_dir) if distributed.is_main_process() else contextlib.nullcontext():
        try:
            previous = runfiles.read_summary(run_dir)
        except runfiles.RunFileError:
            previous = None  # a damaged summary is rewritten from the checkpoint's state
        if previous is not None and previous.ended:
            print(f"{run_dir}: already {previous.status} ({previous.stop_reason}); nothing to train")
            return previous
        dist = distributed.setup(cfg.device)
        try:
            saved = read_checkpoint(run_dir, cfg, dist.device, set_aside=dist.is_main)
            if record_launch is not None and dist.is_main:
                record_launch()
            return train_session(build_run(cfg, run_dir, dist, fitted_hparams), saved)
        finally:
            distributed.teardown(dist)


def train_session(run: TrainingRun, saved: dict | None) -> RunSummary:
    """Resume the run from its checkpoint's state, if any, and train it until it stops, or until a stop is
    requested (launch.STOP: SIGINT, SIGTERM, its launcher gone), which it makes at a step boundary."""
    state = resume(run, saved)
    log = RunLog(run.run_dir, state.step if state.step else None) if run.dist.is_main else None
    try:
        with STOP.training():
            status, reason = run_loop(run, state, log)
            if reason not in RESUMABLE_STOPS:  # a stop requested from outside is made at once
                run.peaks.remeasure()  # the end of the run's trials join the start's
            final = summary(run, state, status, reason)
            if log:
                log.write_summary(final)
        return final
    finally:
        if log:
            log.close()
