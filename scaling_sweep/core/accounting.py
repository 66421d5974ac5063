"""Parameter and FLOP accounting: the one place that owns the project's conventions.

Conventions (Kaplan et al. 2020, section 2.1):
- N is the non-embedding parameter count: every transformer block and the final layer norm,
  biases and norms included. Token and position embeddings are embedding parameters, and so
  is an untied unembedding (it scales with the vocabulary, not with the model's depth).
- Kaplan's compute is C = 6 N per training token (forward 2N, backward 4N); with the
  attention term it is 6 (N + n_layer n_ctx d_attn) per token (Kaplan's table 1 counts the
  causal half of the score matrix).
- The exact count is every matmul of forward and backward, embedding and unembedding
  included, attention over the full n_ctx x n_ctx score matrix as the kernels compute it.
  Element-wise work (norms, softmax, GELU) is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaling_sweep.core.config import ConfigError, ModelConfig

PF_DAY = 8.64e19  # FLOPs in one petaflop/s-day


@dataclass(frozen=True)
class ParamCounts:
    non_embedding: int  # N
    embedding: int  # token + position embeddings (+ unembedding when untied)
    total: int
    kaplan_approx: int  # 12 n_layer d_model^2

    def as_dict(self) -> dict:
        return {
            "N": self.non_embedding,
            "N_embed": self.embedding,
            "N_total": self.total,
            "N_kaplan_approx": self.kaplan_approx,
        }


@dataclass(frozen=True)
class FlopsPerToken:
    """Training FLOPs per token (forward + backward)."""

    kaplan: float  # 6 N
    kaplan_with_attention: float  # 6 (N + n_layer n_ctx d_model)
    exact: float  # every matmul, embeddings and full attention included


def _vocab(cfg: ModelConfig, vocab_size: int | None) -> int:
    vocab = vocab_size if vocab_size is not None else cfg.vocab_size
    if vocab is None:
        raise ValueError("model.vocab_size is unset: pass the tokenizer's vocabulary size")
    return vocab


def block_params(d_model: int, d_ff: int, bias: bool = True) -> int:
    attention = 4 * d_model * d_model + (4 * d_model if bias else 0)
    mlp = 2 * d_model * d_ff + ((d_ff + d_model) if bias else 0)
    return attention + mlp + 2 * norm_params(d_model, bias)


def norm_params(d_model: int, bias: bool) -> int:
    return 2 * d_model if bias else d_model


def non_embedding_params(cfg: ModelConfig) -> int:
    """Kaplan's N: the blocks and the final norm; it does not depend on the vocabulary."""
    return cfg.n_layer * block_params(cfg.d_model, cfg.ff_dim, cfg.bias) + norm_params(cfg.d_model, cfg.bias)


def param_counts(cfg: ModelConfig, vocab_size: int | None = None) -> ParamCounts:
    vocab = _vocab(cfg, vocab_size)
    non_embedding = non_embedding_params(cfg)
    embedding = (vocab + cfg.n_ctx) * cfg.d_model
    if not cfg.tie_embeddings:
        embedding += vocab * cfg.d_model
    return ParamCounts(
        non_embedding=non_embedding,
        embedding=embedding,
        total=non_embedding + embedding,
        kaplan_approx=12 * cfg.n_layer * cfg.d_model**2,
    )


def flops_per_token(cfg: ModelConfig, vocab_size: int | None = None) -> FlopsPerToken:
    vocab = _vocab(cfg, vocab_size)
    n = param_counts(cfg, vocab).non_embedding
    d, layers, ctx = cfg.d_model, cfg.n_layer, cfg.n_ctx
    matmul_weights = layers * (4 * d * d + 2 * d * cfg.ff_dim) + d * vocab
    # q k^T and (attention @ v), each 2 * n_ctx * d per token over the full score matrix.
    attention = layers * 4 * ctx * d
    forward_exact = 2 * matmul_weights + attention
    return FlopsPerToken(
        kaplan=6.0 * n,
        kaplan_with_attention=6.0 * (n + layers * ctx * d),
        exact=3.0 * forward_exact,
    )


def training_flops(n_params: float, tokens: float) -> float:
    """Kaplan's C = 6 N D in FLOPs."""
    return 6.0 * n_params * tokens


def inference_flops(n_params: float, tokens: float) -> float:
    """Kaplan's forward pass only: 2 N FLOPs per token served."""
    return 2.0 * n_params * tokens


def pf_days(flops: float) -> float:
    return flops / PF_DAY


def kaplan_lr(n_params: float) -> float:
    """Kaplan et al. 2020 eq. D.1: LR(N) ~ 0.003239 - 0.0001395 log N (N non-embedding)."""
    lr = 0.003239 - 0.0001395 * math.log(n_params)
    if lr <= 0:
        raise ConfigError(f"optim.lr=null: Kaplan's LR rule gives no positive learning rate for N={n_params:.3g}; "
                          "set optim.lr")
    return lr
