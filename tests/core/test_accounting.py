import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scaling_sweep.core.accounting import flops_per_token, kaplan_lr, param_counts
from scaling_sweep.core.config import ModelConfig
from scaling_sweep.training.model import GPT

SHAPES = [
    ModelConfig(n_layer=2, d_model=64, n_head=2, n_ctx=32),
    ModelConfig(n_layer=4, d_model=128, n_head=4, n_ctx=128, tie_embeddings=True),
    ModelConfig(n_layer=3, d_model=256, n_head=8, n_ctx=64, d_ff=512),
    ModelConfig(n_layer=1, d_model=96, n_head=3, n_ctx=16, bias=False),
]


@pytest.mark.parametrize("cfg", SHAPES)
def test_non_embedding_count_matches_the_model(cfg):
    vocab = 300
    model = GPT(cfg, vocab)
    embedding_ids = {id(p) for p in (model.wte.weight, model.wpe.weight, model.lm_head.weight)}
    independent_n = sum(p.numel() for p in model.parameters() if id(p) not in embedding_ids)
    counts = param_counts(cfg, vocab)
    assert counts.non_embedding == independent_n
    assert counts.total == sum(p.numel() for p in model.parameters())
    assert counts.embedding == counts.total - counts.non_embedding


@pytest.mark.parametrize("cfg", SHAPES)
def test_exact_flops_match_flop_counter(cfg):
    vocab, batch = 300, 2
    model = GPT(cfg, vocab)
    x = torch.randint(0, vocab, (batch, cfg.n_ctx))
    # The math SDPA backend runs attention as visible bmm ops; the fused CPU kernel is not
    # registered with FlopCounterMode and would count as zero.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(x, x)
        loss.backward()
    measured = counter.get_total_flops() / (batch * cfg.n_ctx)
    assert flops_per_token(cfg, vocab).exact == pytest.approx(measured, rel=0.02)


@pytest.mark.parametrize("n_layer,d_model", [(2, 256), (6, 512), (24, 1024), (48, 1600)])
def test_kaplan_approximation_within_two_percent(n_layer, d_model):
    counts = param_counts(ModelConfig(n_layer=n_layer, d_model=d_model, n_head=4, n_ctx=1024), 50257)
    assert counts.non_embedding == pytest.approx(counts.kaplan_approx, rel=0.02)


def test_kaplan_flops_conventions():
    cfg = ModelConfig(n_layer=4, d_model=128, n_head=4, n_ctx=256)
    n = param_counts(cfg, 256).non_embedding
    fpt = flops_per_token(cfg, 256)
    assert fpt.kaplan == 6 * n
    assert fpt.kaplan_with_attention == 6 * (n + 4 * 256 * 128)


def test_untied_unembedding_counts_as_embedding():
    untied = param_counts(ModelConfig(), 256)
    tied = param_counts(ModelConfig(tie_embeddings=True), 256)
    assert untied.non_embedding == tied.non_embedding
    assert untied.embedding - tied.embedding == 256 * 128


def test_kaplan_lr_rule():
    assert kaplan_lr(1e6) == pytest.approx(0.003239 - 0.0001395 * 13.8155, rel=1e-4)
    with pytest.raises(ValueError):
        kaplan_lr(1e11)
