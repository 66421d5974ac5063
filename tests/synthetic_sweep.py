"""A sweep folder written the way training writes one (DESIGN.md, per-run files), with
learning curves drawn from known laws: Kaplan's L(N, S_min) (eq. 1.6) with S_min from the
critical batch (eq. 1.4, 5.4), plus eq. 1.5's overfitting penalty on capped datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from scaling_sweep.core import laws, runfiles
from scaling_sweep.core.runfiles import MetricsRow, RunSummary

TRUTH = {
    "L_NS": {"N_c": 3e8, "S_c": 50.0, "alpha_N": 0.15, "alpha_S": 0.7},
    "B_crit": {"B_star": 1.6e5, "alpha_B": 0.3},
    "L_ND": {"N_c": 3e8, "D_c": 3e7, "alpha_N": 0.15, "alpha_D": 0.2},
}
N_CTX, VOCAB = 128, 256
BASE_BATCH = 16  # sequences per step
MAX_STEPS, LOG_EVERY, EVAL_EVERY = 600, 10, 50

SIZES = [(2, 32), (2, 48), (3, 64), (4, 96), (4, 128)]  # (n_layer, d_model)


def non_embedding(n_layer, d_model):
    return 12 * n_layer * d_model**2


def loss_curve(N, batch_tokens, steps, D=None):
    """Loss at each step for batch B: L = L(N, S_min) with S_min = S/(1 + B_crit(L)/B),
    solved by fixed-point iteration, plus the eq. 1.5 penalty of a dataset of D tokens."""
    L = np.full(len(steps), 3.0)
    for _ in range(50):
        S_min = laws.min_steps(steps, batch_tokens, laws.critical_batch(L, **TRUTH["B_crit"]))
        L = laws.loss_ns(N, S_min, **TRUTH["L_NS"])
    if D is not None:
        p = TRUTH["L_ND"]
        L = L + laws.loss_nd(N, D, **p) - laws.loss_n(N, p["N_c"], p["alpha_N"])
    return L


def run_specs():
    """(name, n_layer, d_model, batch_size, max_unique_tokens, status, loss factor)."""
    specs = [(f"size_L{nl}_d{d}", nl, d, BASE_BATCH, None, "completed", 1.0) for nl, d in SIZES]
    specs += [(f"batch_{b}", 3, 64, b, None, "completed", 1.0) for b in (4, 8, 32, 64)]
    specs += [(f"data_L{nl}_d{d}_D{D:.0e}", nl, d, BASE_BATCH, D, "stopped", 1.0)
              for nl, d in ((3, 64), (4, 128)) for D in (1e5, 1e6)]
    specs += [("shape_L6_d78", 6, 78, BASE_BATCH, None, "completed", 1.01),  # N within 1% of L4_d96
              ("shape_L2_d136", 2, 136, BASE_BATCH, None, "completed", 1.02)]
    specs += [("diverged_L4_d128", 4, 128, 64, None, "diverged", 1.0),
              ("killed_L2_d32", 2, 32, 64, None, "running", 1.0)]
    return specs


def write_run(root: Path, sweep, spec, rng, noise, tokenizer="byte"):
    name, n_layer, d_model, batch, D, status, factor = spec
    N, B = non_embedding(n_layer, d_model), batch * N_CTX
    steps = np.arange(LOG_EVERY, MAX_STEPS + 1, LOG_EVERY)
    if status == "running":
        steps = steps[: len(steps) // 2]
    loss = factor * loss_curve(N, B, steps, D) * np.exp(noise * rng.standard_normal(len(steps)))
    if status == "diverged":
        loss[len(loss) // 3:] = np.nan
    evaluated = (steps % EVAL_EVERY == 0) & np.isfinite(loss)
    _write_files(root / name, steps, loss, evaluated, truncated=status == "running" or name == "size_L2_d48",
                 run_name=name, sweep=sweep, status=status,
                 stop_reason={"completed": "max_steps", "stopped": "early_stop",
                              "diverged": "non-finite training loss", "running": "interrupted"}[status],
                 n_layer=n_layer, d_model=d_model, batch_size=batch, tokenizer=tokenizer,
                 unique_tokens=int(D) if D else 10_000_000, max_unique_tokens=int(D) if D else None)


def _write_files(run_dir: Path, steps, loss, evaluated, truncated=False, cooldowns=(), optim=None, **fields):
    """metrics.jsonl (val_loss where evaluated), summary.json and the Hydra config of one run (with
    optim, its optimizer settings, where given); fields: the RunSummary fields that differ between runs
    (name, status, shape, batch, ...)."""
    N, B = non_embedding(fields["n_layer"], fields["d_model"]), fields["batch_size"] * N_CTX
    rows = [MetricsRow(step=int(s), tokens=int(s * B), flops=6.0 * N * s * B, lr=1e-3,
                       train_loss=float(l) if np.isfinite(l) else None, grad_norm=1.0, tokens_per_s=1e4,
                       elapsed_s=float(s) / 10, val_loss=float(l) if e else None)
            for s, l, e in zip(steps, loss, evaluated)]
    (run_dir / ".hydra").mkdir(parents=True)
    runfiles.write_metrics(run_dir, rows)
    if truncated:  # killed mid-write
        with open(run_dir / runfiles.METRICS_FILE, "a") as f:
            f.write('{"step": 999, "tokens": 12')
    val = [r.val_loss for r in rows if r.val_loss is not None]
    d_model = fields["d_model"]
    N_embed = VOCAB * d_model + N_CTX * d_model
    summary = RunSummary(
        n_head=max(1, d_model // 16), n_ctx=N_CTX, d_ff=4 * d_model, vocab_size=VOCAB, tie_embeddings=False,
        data="prose", N=N, N_embed=N_embed, N_total=N + N_embed, N_kaplan_approx=N, batch_tokens=B,
        step=int(steps[-1]), tokens=int(steps[-1] * B), flops=6.0 * N * steps[-1] * B,
        flops_exact=7.0 * N * steps[-1] * B, flops_per_token_exact=7.0 * N,
        final_val_loss=val[-1] if val else None, best_val_loss=min(val) if val else None,
        final_train_loss=rows[-1].train_loss, lr=1e-3, device="cpu", dtype="fp32", tokens_per_s=1e4,
        wall_time_s=60.0, cooldowns=list(cooldowns), **fields,
    )
    runfiles.write_summary(run_dir, summary)
    config = {"run_name": fields["run_name"], **({"optim": optim} if optim else {})}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))


# An IsoFLOP sweep of Chinchilla's law (Hoffmann et al. 2022 eq. 2) in nats/byte-like magnitudes: each size
# trained with a wsd schedule to the largest budget, a cooldown branch at each smaller one. Its optimum
# N_opt = G·(C/6)^(beta/(alpha+beta)) (eq. 4) runs from about 1.6e5 to 7e5 over the budgets, inside the sizes.
CHINCHILLA_TRUTH = {"E": 1.0, "A": 40.0, "B": 40.0, "alpha": 0.34, "beta": 0.28}
ISOFLOP_BUDGETS = (1e12, 3e12, 1e13, 3e13)
ISOFLOP_WIDTHS = (24, 36, 48, 72, 96, 144, 192, 288)  # at 4 layers: N from 2.8e4 to 4e6


def write_isoflop_sweep(root, sweep="isoflop", seed=0, noise=0.005, largest_factor=1.0):
    """Write the IsoFLOP sweep under root/ and return its folder; largest_factor scales every loss of the
    largest model (1.0: the sweep follows the law)."""
    root = Path(root) / sweep
    rng = np.random.default_rng(seed)
    B = BASE_BATCH * N_CTX
    for d_model in ISOFLOP_WIDTHS:
        N = non_embedding(4, d_model)
        factor = largest_factor if d_model == ISOFLOP_WIDTHS[-1] else 1.0

        def loss_at(tokens):
            clean = laws.chinchilla_loss(N, np.asarray(tokens, float), **CHINCHILLA_TRUTH)
            return factor * clean * np.exp(noise * rng.standard_normal(np.shape(tokens)))

        budget_steps = [int(round(laws.tokens_for_budget(C, N) / B)) for C in ISOFLOP_BUDGETS]
        steps = np.unique(np.rint(np.geomspace(10, budget_steps[-1], 40)).astype(int))
        cooldowns = [{"step": s, "tokens": s * B, "flops": 6.0 * N * s * B, "val_loss": float(loss_at(s * B))}
                     for s in budget_steps[:-1]]
        _write_files(root / f"L4_d{d_model}", steps, loss_at(steps * B), np.ones(len(steps), bool),
                     cooldowns=cooldowns, run_name=f"L4_d{d_model}", sweep=sweep, status="completed",
                     stop_reason="compute_budget", n_layer=4, d_model=d_model, batch_size=BASE_BATCH,
                     tokenizer="byte", unique_tokens=10_000_000_000, max_unique_tokens=None)
    return root


def write_synthetic_sweep(root, sweep="synthetic", seed=0, noise=0.005, specs=None):
    """Write the sweep under root/ and return its folder."""
    root = Path(root) / sweep
    rng = np.random.default_rng(seed)
    for spec in specs or run_specs():
        write_run(root, sweep, spec, rng, noise)
    return root


WSD_STABLE_EXCESS = 0.05  # a stable-phase evaluation over the run of its length (docs/kaplan_cpu.md: 3-6%)


def wsd_loss(steps, floor, scale):
    """Loss of the run of each length (decayed): floor + scale·S^(-0.67), docs/kaplan_cpu.md's L(T)."""
    return floor + scale * np.asarray(steps, float) ** -0.67


def write_wsd_run(root, name, d_model, floor, scale, branches=(0.25, 0.5), max_steps=MAX_STEPS,
                  decay_fraction=0.2, sweep="wsd"):
    """One run under warmup-stable-decay (optim.schedule wsd): evaluations of the stable phase
    WSD_STABLE_EXCESS above wsd_loss, its last decay_fraction of steps decaying onto it, and cooldown
    branches at the given fractions of its steps, each at wsd_loss of its length. Returns its folder."""
    N, B = non_embedding(2, d_model), BASE_BATCH * N_CTX
    steps = np.arange(LOG_EVERY, max_steps + 1, LOG_EVERY)
    into_decay = np.clip((steps - (1 - decay_fraction) * max_steps) / (decay_fraction * max_steps), 0, 1)
    loss = wsd_loss(steps, floor, scale) * (1 + WSD_STABLE_EXCESS * (1 - into_decay))
    cooldowns = [{"step": int(f * max_steps), "tokens": int(f * max_steps) * B, "flops": 6.0 * N * f * max_steps * B,
                  "val_loss": float(wsd_loss(f * max_steps, floor, scale))} for f in branches]
    run_dir = Path(root) / sweep / name
    _write_files(run_dir, steps, loss, steps % EVAL_EVERY == 0, cooldowns=cooldowns,
                 optim={"schedule": "wsd", "decay_fraction": decay_fraction}, run_name=name, sweep=sweep,
                 status="completed", stop_reason="max_steps", n_layer=2, d_model=d_model, batch_size=BASE_BATCH,
                 tokenizer="byte", unique_tokens=10_000_000, max_unique_tokens=None)
    return run_dir
