"""Train one GPT from a Hydra config: `python -m scaling_sweep.train [overrides]`.

The run folder is `runs/<sweep_name>/<run_name>/`. Running the same command again resumes
from its checkpoint, or does nothing when the run has already finished.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from scaling_sweep import accounting, distributed, hardware, plan
from scaling_sweep.config import ConfigError, RunConfig, register_configs, validate
from scaling_sweep.corpus import CorpusDownloadError
from scaling_sweep.data import BatchSampler, prepare_tokens, validation_batches
from scaling_sweep.model import GPT
from scaling_sweep.tokenizer import TokenizerUnavailableError
from scaling_sweep.optim import build_optimizer, lr_at
from scaling_sweep.step import autocast, compile_for_training, optimizer_step
from scaling_sweep.tracking import SUMMARY_FILE, RunLog, read_json

CHECKPOINT_FILE = "checkpoint.pt"
# Keys that may change between a run and its resumption without changing what is trained.
RESUMABLE_KEYS = {"train.progress", "device"}
# Stop reasons that mean the run trained as far as planned; any other stop is "stopped".
PLANNED_ENDS = ("max_steps", "max_tokens", "compute_budget")


@dataclass
class TrainState:
    step: int = 0
    tokens: int = 0
    best_val_loss: float = float("inf")
    best_val_step: int = -1
    evals_since_best: int = 0
    last_val_loss: float | None = None
    last_train_loss: float | None = None
    elapsed_s: float = 0.0
    rates: list = field(default_factory=list)  # tokens/s of each logged interval this session


@dataclass
class Run:
    """Everything built from the config that the loop needs."""

    cfg: RunConfig
    run_dir: Path
    device: torch.device
    dtype: str
    model: GPT
    train_model: torch.nn.Module  # compiled and/or DDP-wrapped view of model
    optimizer: torch.optim.Optimizer
    sampler: BatchSampler
    val_batches: list
    counts: accounting.ParamCounts
    flops_per_token: accounting.FlopsPerToken
    peak_lr: float
    total_steps: int
    data_meta: dict
    dist: distributed.DistInfo

    @property
    def batch_tokens(self) -> int:
        return self.cfg.train.batch_size * self.cfg.model.n_ctx

    def autocast(self):
        return autocast(self.device, self.dtype)


def planned_steps(cfg: RunConfig, n_params: int) -> int:
    """Steps the schedule spans: the tightest of max_steps, max_tokens and compute_budget."""
    batch_tokens = cfg.train.batch_size * cfg.model.n_ctx
    steps = cfg.train.max_steps
    if cfg.train.max_tokens is not None:
        steps = min(steps, -(-cfg.train.max_tokens // batch_tokens))
    if cfg.train.compute_budget is not None:
        per_step = accounting.training_flops(n_params, batch_tokens)
        steps = min(steps, max(1, int(-(-cfg.train.compute_budget // per_step))))
    if cfg.train.stop_at == "compute_optimal":
        tokens, _ = plan.stop_tokens(n_params, cfg.train.compute_budget)
        steps = min(steps, max(1, -(-int(tokens) // batch_tokens)))
    return steps


def build_run(cfg: RunConfig, run_dir: Path, dist: distributed.DistInfo) -> Run:
    device = dist.device
    hardware.configure(device)
    dtype = hardware.resolve_dtype(cfg.train.dtype, device)
    splits = prepare_tokens(cfg.data, cfg.tokenizer, cfg.train.max_unique_tokens)
    vocab = splits.vocab_size
    torch.manual_seed(cfg.train.seed)
    model = GPT(cfg.model, vocab).to(device)
    counts = accounting.param_counts(cfg.model, vocab)
    peak_lr = cfg.optim.lr if cfg.optim.lr is not None else accounting.kaplan_lr(counts.non_embedding)
    train_model = compile_for_training(model) if hardware.resolve_compile(cfg.train.compile, device) else model
    train_model = distributed.wrap(train_model, dist)
    return Run(
        cfg=cfg,
        run_dir=run_dir,
        device=device,
        dtype=dtype,
        model=model,
        train_model=train_model,
        optimizer=build_optimizer(model, cfg.optim, peak_lr, device),
        sampler=BatchSampler(splits.train, cfg.train.batch_size, cfg.model.n_ctx, cfg.train.seed, dist.rank,
                             dist.world_size, pin_memory=device.type == "cuda"),
        val_batches=validation_batches(splits.val, cfg.model.n_ctx, cfg.train.eval_windows, cfg.train.micro_batch_size or cfg.train.batch_size),
        counts=counts,
        flops_per_token=accounting.flops_per_token(cfg.model, vocab),
        peak_lr=peak_lr,
        total_steps=planned_steps(cfg, counts.non_embedding),
        data_meta=splits.meta,
        dist=dist,
    )


def flat_config(cfg: RunConfig) -> dict:
    """The resolved config as {"section.key": value}, to compare a run with its checkpoint."""
    return _flatten(OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True))


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def save_checkpoint(run: Run, state: TrainState) -> None:
    if not run.dist.is_main:
        return
    payload = {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "state": asdict(state) | {"rates": []},
        "rng": torch.get_rng_state(),
        "sampler": run.sampler.state_dict(),
        "config": flat_config(run.cfg),
    }
    path = run.run_dir / CHECKPOINT_FILE
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(run: Run) -> TrainState | None:
    path = run.run_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    payload = torch.load(path, map_location=run.device, weights_only=False)
    changed = [
        f"{key}: {payload['config'].get(key)!r} -> {value!r}"
        for key, value in flat_config(run.cfg).items()
        if key not in RESUMABLE_KEYS and payload["config"].get(key) != value
    ]
    if changed:
        raise ConfigError(
            f"{run.run_dir} holds a checkpoint of a different run ({'; '.join(changed[:3])}); "
            "choose another run_name or delete that folder"
        )
    run.model.load_state_dict(payload["model"])
    run.optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["rng"].cpu())
    run.sampler.load_state_dict(payload["sampler"])
    return TrainState(**payload["state"])


@torch.no_grad()
def evaluate(run: Run) -> float:
    """Mean loss over the fixed validation windows (a partial last batch weighs by its windows);
    DDP ranks take every world_size-th batch and sum their totals."""
    run.model.eval()
    loss_sum, windows = torch.zeros((), device=run.device), 0
    for x, y in run.val_batches[run.dist.rank::run.dist.world_size]:
        with run.autocast():
            _, loss = run.model(x.to(run.device), y.to(run.device))
        loss_sum += loss.float() * len(x)
        windows += len(x)
    run.model.train()
    totals = distributed.all_sum(torch.stack([loss_sum, torch.tensor(float(windows), device=run.device)]), run.dist)
    return (totals[0] / totals[1]).item()


def train_step(run: Run, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over the global batch; returns (mean loss, grad norm) on device."""
    lr = lr_at(step, run.peak_lr, run.cfg.optim, run.total_steps)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    x, y = next(run.sampler)
    return optimizer_step(run.model, run.train_model, run.optimizer, x, y, device=run.device, dtype=run.dtype,
                          micro_batch_size=run.cfg.train.micro_batch_size, grad_clip=run.cfg.optim.grad_clip)


def stop_reason(run: Run, state: TrainState) -> str | None:
    train = run.cfg.train
    if state.step >= train.max_steps:
        return "max_steps"
    if train.max_tokens is not None and state.tokens >= train.max_tokens:
        return "max_tokens"
    if train.stop_at == "compute_optimal":
        reason = plan.should_stop(run.counts.non_embedding, state.step, run.batch_tokens, train.compute_budget)
        if reason:
            return reason
    if train.compute_budget is not None and accounting.training_flops(run.counts.non_embedding, state.tokens) >= train.compute_budget:
        return "compute_budget"
    if train.early_stop_patience and state.evals_since_best >= train.early_stop_patience:
        return "early_stop"
    return None


def record_eval(run: Run, state: TrainState) -> float:
    val_loss = evaluate(run)
    state.last_val_loss = val_loss
    if val_loss < state.best_val_loss:
        state.best_val_loss, state.best_val_step, state.evals_since_best = val_loss, state.step, 0
    else:
        state.evals_since_best += 1
    return val_loss


def summary(run: Run, state: TrainState, status: str, reason: str | None) -> dict:
    cfg, fpt = run.cfg, run.flops_per_token
    rates = state.rates[1:] if len(state.rates) > 1 else state.rates
    tokens_per_s = statistics.median(rates) if rates else None
    return {
        "run_name": cfg.run_name,
        "sweep": cfg.sweep_name,
        "status": status,
        "stop_reason": reason,
        "n_layer": cfg.model.n_layer,
        "d_model": cfg.model.d_model,
        "n_head": cfg.model.n_head,
        "n_ctx": cfg.model.n_ctx,
        "d_ff": cfg.model.ff_dim,
        "vocab_size": run.model.wte.num_embeddings,
        "tie_embeddings": cfg.model.tie_embeddings,
        "tokenizer": cfg.tokenizer.name,
        "data": cfg.data.name,
        **run.counts.as_dict(),
        "batch_size": cfg.train.batch_size,
        "batch_tokens": run.batch_tokens,
        "step": state.step,
        "max_steps": cfg.train.max_steps,
        "tokens": state.tokens,
        "unique_tokens": run.data_meta["n_unique_train_tokens"],
        "max_unique_tokens": cfg.train.max_unique_tokens,
        "flops": accounting.training_flops(run.counts.non_embedding, state.tokens),
        "flops_exact": fpt.exact * state.tokens,
        "flops_per_token_exact": fpt.exact,
        "flops_per_token_kaplan_6N": fpt.kaplan,
        "final_val_loss": state.last_val_loss,
        "best_val_loss": state.best_val_loss if state.best_val_step >= 0 else None,
        "best_val_step": state.best_val_step if state.best_val_step >= 0 else None,
        "final_train_loss": state.last_train_loss,
        "unigram_entropy": run.data_meta["train_unigram_entropy_nats"],
        "lr": run.peak_lr,
        "lr_rule": "fixed" if cfg.optim.lr is not None else "kaplan_eq_D1",
        "device": hardware.device_name(run.device),
        "world_size": run.dist.world_size,
        "dtype": run.dtype,
        "tokens_per_s": tokens_per_s,
        "mfu": mfu(run, tokens_per_s),
        "matmul_peak_flops": hardware.matmul_peak_flops(run.device, run.dtype),
        "wall_time_s": state.elapsed_s,
        "units": {"loss": "nats/token", "N": "non-embedding parameters", "flops": "6*N*tokens", "flops_exact": "all matmuls, fwd+bwd"},
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
    }


def log_row(run: Run, state: TrainState, loss_sum: torch.Tensor, grad_norm: torch.Tensor, n_steps: int, rate: float | None) -> dict:
    train_loss = (loss_sum / n_steps).item()
    state.last_train_loss = train_loss
    row = {
        "step": state.step,
        "tokens": state.tokens,
        "flops": accounting.training_flops(run.counts.non_embedding, state.tokens),
        "flops_exact": run.flops_per_token.exact * state.tokens,
        "lr": run.optimizer.param_groups[0]["lr"],
        "train_loss": train_loss,
        "grad_norm": grad_norm.item(),
        "tokens_per_s": rate,
        "mfu": mfu(run, rate),
        "elapsed_s": state.elapsed_s,
    }
    return row


def mfu(run: Run, tokens_per_s: float | None) -> float | None:
    """Exact FLOP/s over the measured matmul peak of all devices in the run's dtype."""
    if not tokens_per_s:
        return None
    peak = hardware.matmul_peak_flops(run.device, run.dtype)
    return run.flops_per_token.exact * tokens_per_s / (peak * run.dist.world_size)


def run_loop(run: Run, state: TrainState, log: RunLog | None) -> tuple[str, str]:
    """Train until a stop condition; returns (status, reason). Syncs with the host only at log steps."""
    train = run.cfg.train
    bar = tqdm(total=run.total_steps, initial=state.step, unit="step", disable=not (train.progress and run.dist.is_main), dynamic_ncols=True)
    loss_sum, steps_in_interval = torch.zeros((), device=run.device), 0
    interval_start, interval_tokens = time.perf_counter(), 0
    if state.step == 0:
        record_eval(run, state)
    if state.step == 0 and log:
        log.log({"step": 0, "tokens": 0, "flops": 0.0, "flops_exact": 0.0, "val_loss": state.last_val_loss, "elapsed_s": 0.0})
    while (reason := stop_reason(run, state)) is None:
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
        if not torch.isfinite(torch.tensor(row["train_loss"])):
            if log:
                log.log(row)
            return "diverged", "non-finite training loss"
        if at_eval:
            row["val_loss"] = record_eval(run, state)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{state.last_val_loss:.3f}", tok_s=f"{rate:,.0f}")
        if log:
            log.log(row)
        if state.step % train.checkpoint_every == 0 or at_eval:
            save_checkpoint(run, state)
            if log:
                log.write_summary(summary(run, state, "running", None))
        loss_sum, steps_in_interval = torch.zeros((), device=run.device), 0
        interval_start, interval_tokens = time.perf_counter(), 0
    bar.close()
    return ("completed" if reason in PLANNED_ENDS else "stopped"), reason


def train(cfg: RunConfig, run_dir: Path) -> dict:
    """Train (or resume, or skip) the run in run_dir; returns its summary."""
    previous = read_json(run_dir / SUMMARY_FILE)
    if previous and previous.get("status") not in (None, "running"):
        print(f"{run_dir}: already {previous['status']} ({previous.get('stop_reason')}); nothing to train")
        return previous
    run_dir.mkdir(parents=True, exist_ok=True)
    dist = distributed.setup(cfg.device)
    try:
        run = build_run(cfg, run_dir, dist)
        state = load_checkpoint(run) or TrainState()
        log = RunLog(run_dir, state.step if state.step else None) if dist.is_main else None
        try:
            status, reason = run_loop(run, state, log)
            if status != "diverged":
                save_checkpoint(run, state)
        except KeyboardInterrupt:
            save_checkpoint(run, state)
            status, reason = "running", "interrupted"
        final = summary(run, state, status, reason)
        if log:
            log.write_summary(final)
            log.close()
        return final
    finally:
        distributed.teardown(dist)


def report(final: dict) -> str:
    val = final["final_val_loss"]
    return (
        f"{final['run_name']}: {final['status']} ({final['stop_reason']}) at step {final['step']}, "
        f"val loss {val:.4f} nats/token" + (f" (unigram entropy {final['unigram_entropy']:.4f})" if final.get("unigram_entropy") else "")
        + f", N={final['N']:,} non-embedding params, {final['tokens']:,} tokens, "
        f"C={final['flops']:.3g} FLOPs (6N) / {final['flops_exact']:.3g} (exact)"
    )


@hydra.main(version_base=None, config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        run_cfg: RunConfig = OmegaConf.to_object(cfg)
        validate(run_cfg)
        final = train(run_cfg, Path(HydraConfig.get().runtime.output_dir))
    except (ValueError, CorpusDownloadError, TokenizerUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if final["status"] == "running":
        sys.exit(130)
    if distributed.is_main_process():
        print(report(final))
    return final["final_val_loss"]


register_configs()

if __name__ == "__main__":
    main()
