"""GPT-2-style decoder: pre-LN blocks, learned positions, GELU MLP, SDPA attention."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from scaling_sweep.core.config import ModelConfig

CPU_ATTENTION_BLOCK = 128  # query rows per block of the bf16 CPU attention


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_head) + causal mask) v over (batch, head, seq, d_head) tensors.

    SDPA everywhere except bf16 on CPU, where its fused kernel is slower than batched matmuls
    (about 1.9x for 32 x 8 heads x 256 x 32, forward + backward). There the queries go in
    blocks of 128 rows, each against only the keys it may see, so the masked upper triangle is
    mostly skipped; one baddbmm per block adds the mask in the same call, and the softmax
    accumulates in fp32 internally and returns bf16, as autocast keeps it.
    """
    if q.device.type != "cpu" or q.dtype != torch.bfloat16:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    batch, heads, seq, d_head = q.shape
    q, k, v = (t.reshape(batch * heads, seq, d_head) for t in (q, k, v))
    mask = torch.zeros(seq, seq, dtype=q.dtype, device=q.device).masked_fill_(
        torch.ones(seq, seq, dtype=torch.bool, device=q.device).triu_(1), float("-inf"))
    blocks = []
    for start in range(0, seq, CPU_ATTENTION_BLOCK):
        stop = min(seq, start + CPU_ATTENTION_BLOCK)
        scores = torch.baddbmm(mask[start:stop, :stop].expand(batch * heads, stop - start, stop), q[:, start:stop],
                               k[:, :stop].transpose(1, 2), alpha=d_head**-0.5)
        blocks.append(torch.bmm(scores.softmax(dim=-1), v[:, :stop]))
    return torch.cat(blocks, dim=1).view(batch, heads, seq, d_head)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, seq, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        y = causal_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(batch, seq, width))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.ff_dim, bias=cfg.bias)
        self.proj = nn.Linear(cfg.ff_dim, cfg.d_model, bias=cfg.bias)
        self.gelu_approximate = "tanh" if cfg.activation == "gelu_tanh" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate=self.gelu_approximate))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer); norms keep (1, 0).
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layer)
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=residual_std if name.endswith("proj") else 0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def embedding_parameters(self) -> set[nn.Parameter]:
        """Token and position embeddings, plus the unembedding (tied or not)."""
        return {self.wte.weight, self.wpe.weight, self.lm_head.weight}

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(positions)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        return logits, loss
