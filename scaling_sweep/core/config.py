"""Structured configs for one training run, registered in Hydra's ConfigStore.

The YAML groups under ``configs/`` fill these dataclasses; :func:`validate` checks a
resolved config before any data is read, so a bad sweep point fails in a second with one
line naming the offending key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from scaling_sweep.core.errors import UserError


@dataclass
class ModelConfig:
    n_layer: int = 4
    d_model: int = 128
    n_head: int = 4
    n_ctx: int = 256
    d_ff: int | None = None  # None: 4 * d_model (GPT-2)
    vocab_size: int | None = None  # None: taken from the tokenizer
    tie_embeddings: bool = False
    bias: bool = True
    activation: str = "gelu"  # gelu: exact (erf), as nanoGPT and BERT; gelu_tanh: GPT-2's tanh approximation

    @property
    def ff_dim(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model


@dataclass
class TokenizerConfig:
    name: str = "byte"  # "byte", or a tiktoken encoding name ("gpt2", "r50k_base", ...)
    tiktoken_file: str | None = None  # local .tiktoken ranks file, for offline use


@dataclass
class DataConfig:
    name: str = "prose"  # names the cache entry; one name per distinct source
    source: str = "embedded"  # embedded | hub | text | json | parquet
    path: str | None = None  # hub dataset id, or a file path / glob
    hub_config: str | None = None  # hub dataset configuration name
    split: str = "train"
    text_field: str = "text"
    val_fraction: float = 0.01
    cache_dir: str = "~/.cache/scaling_sweep"


@dataclass
class OptimConfig:
    # None: Kaplan et al. 2020 eq. D.1, LR(N) from non-embedding N; "fitted": the law of hparams_fits (training.fitted)
    lr: float | int | str | None = None  # int: Hydra reads optim.lr=1 as one
    min_lr_ratio: float = 0.1  # the schedule decays to lr * min_lr_ratio
    warmup_steps: int = 50
    schedule: str = "cosine"  # cosine | wsd (warmup, stable, decay: Hägele et al. 2024)
    decay_fraction: float = 0.2  # wsd: each decay (the final one and every cooldown) spans this share of its run
    # wsd: compute budgets (FLOPs, 6·N·tokens) at which a cooldown branch from the stable phase ends and is
    # recorded as a point of its own (N, D, loss); the run itself goes on, to train.compute_budget or its end
    cooldown_budgets: list[float] = field(default_factory=list)
    # wsd: steps at which cooldown branches end too: a length common to every size of a sweep (L(N) at one S)
    cooldown_steps: list[int] = field(default_factory=list)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping


@dataclass
class TrainConfig:
    batch_size: int | str = 32  # sequences per optimizer step (global, across all processes); or "fitted", as optim.lr
    micro_batch_size: int | None = None  # per forward pass; None: the whole batch
    max_steps: int = 500
    max_tokens: int | None = None  # stop once this many training tokens are seen
    max_unique_tokens: int | None = None  # D: train on the first D tokens of the corpus only
    eval_every: int = 100
    eval_windows: int = 64  # fixed held-out windows of n_ctx tokens per evaluation
    log_every: int = 10
    checkpoint_every: int = 100
    seed: int = 0
    dtype: str = "auto"  # auto | fp32 | bf16
    compile: str = "auto"  # auto | on | off
    threads: str = "auto"  # torch threads: auto (the cores the job was given; hardware.resolve_threads) or a number
    peak_flops: float | None = None  # FLOP/s of one device for MFU; None: its datasheet peak (core.hardware_peaks)
    peak_trial_s: float = 1.0  # seconds per trial of the measured torch.mm peak (3 trials, start and end); 0: none
    early_stop_patience: int = 0  # evaluations without val improvement before stopping; 0: off
    compute_budget: float | None = None  # FLOPs (6 N tokens); stop when spent
    stop_at: str = "none"  # none | compute_optimal: also stop where core.budget.stop_tokens says
    progress: bool = True


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    sweep_name: str = "single"
    run_name: str = "L${model.n_layer}_d${model.d_model}_h${model.n_head}"
    runs_root: str = "runs"
    hparams_fits: str | None = None  # fits.json of analyze --hparams: where optim.lr or train.batch_size is "fitted"


def config_dir() -> Path:
    """The Hydra config tree: inside the installed package (a wheel ships the repository's
    top-level configs/ as scaling_sweep/configs), else the source checkout's configs/."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "configs"
    return shipped if shipped.is_dir() else package.parent / "configs"


def register_configs() -> None:
    """The YAML tree in configs/ is merged onto this schema, so its keys are type-checked.
    Idempotent; every Hydra entry point (train, sweep listing) calls it before composing."""
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    # Sweep files derive a shape from another key, e.g. n_head: ${floordiv:${model.d_model},64}.
    OmegaConf.register_new_resolver("floordiv", lambda a, b: int(a) // int(b), replace=True)


class ConfigError(UserError, ValueError):
    """A config value that cannot work; the message names the key."""


CHOICES = {
    "model.activation": ("gelu", "gelu_tanh"),
    "data.source": ("embedded", "hub", "text", "json", "parquet"),
    "train.dtype": ("auto", "fp32", "bf16"),
    "train.compile": ("auto", "on", "off"),
    "train.stop_at": ("none", "compute_optimal"),
    "optim.schedule": ("cosine", "wsd"),
}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate(cfg: RunConfig) -> None:
    """Fail fast, before any data is read, with one line naming the offending key. The data and
    tokenizer keys are checked by their own stage (training.train.validate_run)."""
    m, t, o = cfg.model, cfg.train, cfg.optim
    for key, value in (("model.n_layer", m.n_layer), ("model.d_model", m.d_model), ("model.n_head", m.n_head),
                       ("model.n_ctx", m.n_ctx), ("train.batch_size", t.batch_size), ("train.max_steps", t.max_steps),
                       ("train.eval_every", t.eval_every), ("train.eval_windows", t.eval_windows),
                       ("train.log_every", t.log_every), ("train.checkpoint_every", t.checkpoint_every)):
        _require(isinstance(value, int) and value > 0, f"{key}={value} must be a positive integer")
    _require(m.d_model % m.n_head == 0, f"model.d_model={m.d_model} must be divisible by model.n_head={m.n_head}")
    _require(m.d_ff is None or m.d_ff > 0, f"model.d_ff={m.d_ff} must be positive (or null for 4*d_model)")
    for key, value in (("train.max_tokens", t.max_tokens), ("train.max_unique_tokens", t.max_unique_tokens),
                       ("train.micro_batch_size", t.micro_batch_size), ("train.compute_budget", t.compute_budget),
                       ("train.peak_flops", t.peak_flops), ("optim.lr", o.lr)):
        _require(value is None or value > 0, f"{key}={value} must be positive (or null)")
    _require(t.micro_batch_size is None or t.batch_size % t.micro_batch_size == 0,
             f"train.micro_batch_size={t.micro_batch_size} must divide train.batch_size={t.batch_size}")
    _require(t.max_unique_tokens is None or t.max_unique_tokens >= t.batch_size * (m.n_ctx + 1),
             f"train.max_unique_tokens={t.max_unique_tokens} is smaller than one batch "
             f"(train.batch_size * (model.n_ctx + 1) = {t.batch_size * (m.n_ctx + 1)} tokens)")
    _require(o.warmup_steps >= 0, f"optim.warmup_steps={o.warmup_steps} must be >= 0")
    _require(0 <= o.min_lr_ratio <= 1, f"optim.min_lr_ratio={o.min_lr_ratio} must lie in [0, 1]")
    _require(0 < o.decay_fraction <= 1, f"optim.decay_fraction={o.decay_fraction} must lie in (0, 1]")
    _require(all(isinstance(c, (int, float)) and c > 0 for c in o.cooldown_budgets),
             f"optim.cooldown_budgets={list(o.cooldown_budgets)} must be positive FLOP budgets")
    _require(all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in o.cooldown_steps),
             f"optim.cooldown_steps={list(o.cooldown_steps)} must be positive step counts")
    for key in ("cooldown_budgets", "cooldown_steps"):
        _require(not getattr(o, key) or o.schedule == "wsd",
                 f"optim.{key} needs optim.schedule=wsd (cooldowns branch off its stable phase)")
    _require(0 < cfg.data.val_fraction < 1, f"data.val_fraction={cfg.data.val_fraction} must lie in (0, 1)")
    _require(t.stop_at != "compute_optimal" or t.compute_budget is not None,
             "train.stop_at=compute_optimal needs train.compute_budget (FLOPs)")
    _require(t.early_stop_patience >= 0, f"train.early_stop_patience={t.early_stop_patience} must be >= 0")
    _require(t.peak_trial_s >= 0, f"train.peak_trial_s={t.peak_trial_s} must be >= 0 (0: no measured peak)")
    _require(t.threads == "auto" or (t.threads.isdigit() and int(t.threads) > 0),
             f"train.threads={t.threads!r} must be auto or a positive integer")
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        _require(value in allowed, f"{key}={value!r} is not one of {', '.join(allowed)}")
    _require(cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"),
             f"device={cfg.device!r} is not one of auto, cpu, cuda, cuda:N")
