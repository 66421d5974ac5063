"""Warmup-stable-decay with cooldown branches: one run yields a point at every cooldown budget."""

import numpy as np
import pytest

from scaling_sweep.core import accounting
from scaling_sweep.core.config import ConfigError
from scaling_sweep.training.loop import train
from scaling_sweep.training.optim import decay_start, lr_at
from scaling_sweep.training.train import validate_run


def flops_per_step(cfg):
    return accounting.training_flops(accounting.non_embedding_params(cfg.model), cfg.train.batch_size * cfg.model.n_ctx)


def test_wsd_holds_the_peak_then_decays_the_last_fifth(tiny_config):
    optim = tiny_config(optim={"schedule": "wsd"}).optim
    lrs = [lr_at(step, 1.0, optim, 100) for step in range(100)]
    assert lrs[0] == pytest.approx(1 / optim.warmup_steps)
    start = decay_start(100, optim)
    assert start == 80 and all(lr == 1.0 for lr in lrs[optim.warmup_steps:start])
    assert lrs[-1] == pytest.approx(optim.min_lr_ratio)  # the last step trains at the floor
    assert all(a > b for a, b in zip(lrs[start:], lrs[start + 1:]))


def test_a_cooldown_branch_is_the_run_of_that_length_and_leaves_the_run_as_it_was(tiny_config, tmp_path):
    wsd = {"schedule": "wsd"}
    plain = train(tiny_config(optim=wsd, train={"max_steps": 40}), tmp_path / "plain")
    cfg = tiny_config(optim=wsd, train={"max_steps": 40})
    cfg.optim.cooldown_budgets = [20 * flops_per_step(cfg)]
    branched = train(cfg, tmp_path / "branched")
    short = train(tiny_config(optim=wsd, train={"max_steps": 20, "eval_every": 20}), tmp_path / "short")
    assert branched.final_val_loss == plain.final_val_loss  # the run goes on as if no branch had been trained
    (point,) = branched.cooldowns
    assert point["step"] == 20 and point["tokens"] == short.tokens and point["flops"] == short.flops
    assert point["val_loss"] == short.final_val_loss  # the branch is a run of 20 steps, bit for bit
    cfg.optim.cooldown_steps = [20, 40]  # the same end by steps, and the run's own end: no second branch
    assert train(cfg, tmp_path / "by_steps").cooldowns == branched.cooldowns


def test_cooldowns_need_the_wsd_schedule(tiny_config):
    with pytest.raises(ConfigError, match="optim.cooldown_budgets needs optim.schedule=wsd"):
        validate_run(tiny_config(optim={"cooldown_budgets": [1e9]}))
    with pytest.raises(ConfigError, match="optim.cooldown_steps needs optim.schedule=wsd"):
        validate_run(tiny_config(optim={"cooldown_steps": [10]}))
    with pytest.raises(ConfigError, match=r"optim.cooldown_steps=\[0\] must be positive step counts"):
        validate_run(tiny_config(optim={"schedule": "wsd", "cooldown_steps": [0]}))
    with pytest.raises(ConfigError, match="optim.decay_fraction"):
        validate_run(tiny_config(optim={"schedule": "wsd", "decay_fraction": 0.0}))


@pytest.mark.slow
def test_a_cooldown_is_no_worse_than_a_cosine_run_of_its_length(tiny_config, tmp_path):
    """Hägele et al. 2024: a 20% cooldown from the stable phase matches or beats cosine at the same length.
    Measured here (400 steps, lr 1e-2): on data format 3 cosine over 4 seeds 0.318 ± 0.010 nats/token, the
    branch 0.288 (below every seed); on format 2, 0.303 ± 0.009 and 0.299."""
    steps = 400
    cosine = [train(tiny_config(train={"max_steps": steps, "eval_every": steps, "seed": seed}),
                    tmp_path / f"cosine{seed}").final_val_loss for seed in range(4)]
    cfg = tiny_config(optim={"schedule": "wsd"}, train={"max_steps": 500, "eval_every": 500})
    cfg.optim.cooldown_budgets = [steps * flops_per_step(cfg)]
    (point,) = train(cfg, tmp_path / "wsd").cooldowns
    assert point["val_loss"] <= np.mean(cosine) + 2 * np.std(cosine, ddof=1), (point, cosine)
