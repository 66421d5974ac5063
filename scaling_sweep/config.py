"""Structured configs for one training run, registered in Hydra's ConfigStore.

The YAML groups under ``configs/`` fill these dataclasses; :func:`validate` checks a
resolved config before any data is read, so a bad sweep point fails in a second with one
line naming the offending key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class ModelConfig:
    n_layer: int = 4
    d_model: int = 128
    n_head: int = 4
    n_ctx: int = 256
    d_ff: Optional[int] = None  # None: 4 * d_model (GPT-2)
    vocab_size: Optional[int] = None  # None: taken from the tokenizer
    tie_embeddings: bool = False
    bias: bool = True

    @property
    def ff_dim(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model


@dataclass
class TokenizerConfig:
    name: str = "byte"  # "byte", or a tiktoken encoding name ("gpt2", "r50k_base", ...)
    tiktoken_file: Optional[str] = None  # local .tiktoken ranks file, for offline use


@dataclass
class DataConfig:
    name: str = "prose"  # names the cache entry; one name per distinct source
    source: str = "embedded"  # embedded | hub | text | json | parquet
    path: Optional[str] = None  # hub dataset id, or a file path / glob
    hub_config: Optional[str] = None  # hub dataset configuration name
    split: str = "train"
    text_field: str = "text"
    val_fraction: float = 0.01
    cache_dir: str = "~/.cache/scaling_sweep"


@dataclass
class OptimConfig:
    lr: Optional[float] = None  # None: Kaplan et al. 2020 eq. D.1, LR(N) from non-embedding N
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping


@dataclass
class TrainConfig:
    batch_size: int = 32  # sequences per optimizer step (global, across all processes)
    micro_batch_size: Optional[int] = None  # per forward pass; None: the whole batch
    max_steps: int = 600
    max_tokens: Optional[int] = None  # stop once this many training tokens are seen
    max_unique_tokens: Optional[int] = None  # D: train on the first D tokens of the corpus only
    eval_every: int = 100
    eval_windows: int = 64  # fixed held-out windows of n_ctx tokens per evaluation
    log_every: int = 10
    checkpoint_every: int = 100
    seed: int = 0
    dtype: str = "auto"  # auto | fp32 | bf16
    compile: str = "auto"  # auto | on | off
    early_stop_patience: int = 0  # evaluations without val improvement before stopping; 0: off
    stop_at: str = "none"  # none | compute_optimal
    compute_budget: Optional[float] = None  # FLOPs (6 N tokens); stop when spent
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


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for group, node in (
        ("model", ModelConfig),
        ("tokenizer", TokenizerConfig),
        ("data", DataConfig),
        ("optim", OptimConfig),
        ("train", TrainConfig),
    ):
        store.store(group=group, name=f"{group}_schema", node=node)
