"""The fast paths compute what the plain ones do: bf16 attention on CPU, and bf16 training as a whole."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scaling_sweep.core.config import ModelConfig, OptimConfig
from scaling_sweep.training.model import GPT, causal_attention
from scaling_sweep.training.optim import build_optimizer, decay_groups, flat_optimizer_state
from scaling_sweep.training.step import optimizer_step

CPU = torch.device("cpu")


@pytest.mark.parametrize("seq", [64, 300])  # one query block; three, the last one ragged
def test_bf16_cpu_attention_matches_fp32_sdpa(seq):
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, seq, 32) for _ in range(3))
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    fast = causal_attention(*(t.bfloat16() for t in (q, k, v)))
    assert fast.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa: about 0.4% of an O(1) value per rounding.
    assert (fast.float() - reference).abs().max() < 0.03
    assert torch.allclose(causal_attention(q, k, v), reference)  # fp32: SDPA itself


def test_bf16_cpu_attention_is_causal():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 200, 8, dtype=torch.bfloat16) for _ in range(3))
    for t in (9, 150):  # in the first query block and in the second
        changed = v.clone()
        changed[:, :, t + 1:] += 1.0  # the future of position t
        assert torch.equal(causal_attention(q, k, v)[:, :, :t + 1], causal_attention(q, k, changed)[:, :, :t + 1])


def markov_batches(steps: int, batch: int, n_ctx: int, vocab: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Windows of a random first-order Markov chain: learnable well below its unigram entropy."""
    rng = np.random.default_rng(0)
    successors = rng.integers(0, vocab, size=(vocab, 3))
    tokens = np.empty(20_000, dtype=np.int64)
    tokens[0] = 0
    choices = rng.integers(0, 3, size=len(tokens))
    for i in range(1, len(tokens)):
        tokens[i] = successors[tokens[i - 1], choices[i]]
    batches = []
    for _ in range(steps):
        starts = rng.integers(0, len(tokens) - n_ctx - 1, size=batch)
        windows = torch.from_numpy(tokens[starts[:, None] + np.arange(n_ctx + 1)])
        batches.append((windows[:, :-1], windows[:, 1:]))
    return batches


def loss_curve(dtype: str, batches) -> list[float]:
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=2, d_model=64, n_head=2, n_ctx=64), 64)
    optimizer = build_optimizer(model, OptimConfig(), 3e-3, CPU)
    losses = []
    for x, y in batches:
        loss, _ = optimizer_step(model, optimizer, x, y, device=CPU, dtype=dtype, micro_batch_size=None,
                                 grad_clip=1.0)
        losses.append(loss.item())
    return losses


def test_bf16_training_follows_the_fp32_loss_curve():
    batches = markov_batches(steps=80, batch=16, n_ctx=64, vocab=64)
    fp32 = np.array(loss_curve("fp32", batches))
    bf16 = np.array(loss_curve("bf16", batches))
    assert fp32[-10:].mean() < fp32[:5].mean() - 1.0, "the reference run did not learn"
    # Same batches and initialisation: the curves differ only by bf16 rounding noise
    # (about 1e-3 nats here; a wrong mask or a lost gradient moves them by far more).
    assert np.abs(bf16 - fp32).max() < 0.02
    assert bf16[-10:].mean() == pytest.approx(fp32[-10:].mean(), abs=0.01)


def test_adamw_over_flat_groups_takes_the_steps_of_adamw_over_each_tensor():
    """build_optimizer's flat groups (the model's parameters views of one tensor per group, one clipping
    norm) train as the same fused AdamW over the model's own tensors does (fused against the for-loop:
    test_gpu_paths)."""
    batches = markov_batches(steps=6, batch=8, n_ctx=32, vocab=64)
    shape = ModelConfig(n_layer=2, d_model=32, n_head=2, n_ctx=32)
    torch.manual_seed(0)
    flat_model = GPT(shape, 64)
    reference = GPT(shape, 64)
    reference.load_state_dict(flat_model.state_dict())
    optimizer = build_optimizer(flat_model, OptimConfig(), 1e-2, CPU)
    no_decay, cfg = {id(p) for p in reference.embedding_parameters()}, OptimConfig()
    per_tensor = torch.optim.AdamW(decay_groups(reference.parameters(), no_decay, cfg.weight_decay), lr=1e-2,
                                   betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)
    for x, y in batches:
        optimizer_step(flat_model, optimizer, x, y, device=CPU, dtype="fp32", micro_batch_size=None, grad_clip=0.5)
        _, loss = reference(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        per_tensor.step()
        per_tensor.zero_grad(set_to_none=True)
    for a, b in zip(flat_model.parameters(), reference.parameters()):
        # atol: a hundredth of one step at lr 1e-2, where Adam amplifies the clipping norm's rounding (1e-7)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # load_state_dict (resume, the wsd cooldowns) writes through the views into the optimizer's tensors
    flat_model.load_state_dict(GPT(shape, 64).state_dict())
    flat = torch.cat([p.detach() for group in optimizer.param_groups for p in group["params"]])
    loaded = torch.cat([p.flatten() for p in flat_model.parameters()])
    assert torch.equal(torch.sort(flat).values, torch.sort(loaded).values)


def test_a_checkpoint_of_per_tensor_adamw_resumes_into_the_flat_groups():
    """A checkpoint from before the flat groups (one AdamW state per tensor) is loaded into them:
    each group's moments are its tensors' concatenated, and the next steps are the per-tensor ones."""
    batches = markov_batches(steps=4, batch=8, n_ctx=32, vocab=64)
    shape, cfg = ModelConfig(n_layer=2, d_model=32, n_head=2, n_ctx=32), OptimConfig()
    torch.manual_seed(0)
    old = GPT(shape, 64)
    no_decay = {id(p) for p in old.embedding_parameters()}
    per_tensor = torch.optim.AdamW(decay_groups(old.parameters(), no_decay, cfg.weight_decay), lr=1e-2,
                                   betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)
    for x, y in batches:
        old(x, y)[1].backward()
        per_tensor.step()
        per_tensor.zero_grad(set_to_none=True)
    resumed = GPT(shape, 64)
    resumed.load_state_dict(old.state_dict())
    optimizer = build_optimizer(resumed, cfg, 1e-2, CPU)
    optimizer.load_state_dict(flat_optimizer_state(per_tensor.state_dict(), optimizer))
    for group, old_group in zip(optimizer.param_groups, per_tensor.param_groups):
        state = optimizer.state[group["params"][0]]
        assert torch.equal(state["exp_avg"], torch.cat([per_tensor.state[p]["exp_avg"].flatten()
                                                         for p in old_group["params"]]))
        assert float(state["step"]) == len(batches)
    x, y = batches[0]
    optimizer_step(resumed, optimizer, x, y, device=CPU, dtype="fp32", micro_batch_size=None, grad_clip=0.0)
    old(x, y)[1].backward()
    per_tensor.step()
    for a, b in zip(resumed.parameters(), old.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    current = optimizer.state_dict()
    assert flat_optimizer_state(current, optimizer) is current


def test_activation_switch_selects_the_gelu_variant():
    x = torch.randint(0, 64, (2, 32))
    h = torch.randn(2, 32, 64)
    logits = {}
    for activation, approximate in (("gelu", "none"), ("gelu_tanh", "tanh")):
        torch.manual_seed(0)
        model = GPT(ModelConfig(n_layer=2, d_model=64, n_head=2, n_ctx=32, activation=activation), 64)
        mlp = model.blocks[0].mlp
        assert torch.equal(mlp(h), mlp.proj(F.gelu(mlp.fc(h), approximate=approximate)))
        logits[activation] = model(x)
    # The same weights through erf and tanh GELU: different, by far less than the logits' scale.
    difference = (logits["gelu"] - logits["gelu_tanh"]).abs().max()
    assert 0 < difference < 1e-3
