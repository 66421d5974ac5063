"""kaplan_cpu's independent check: Kaplan's L(N) and L(D) from its small runs predict its large ones.

Reads a finished `+sweep=kaplan_cpu` (the folder in $SCALING_SWEEP_KAPLAN_CPU, e.g. runs/kaplan_cpu; else
the committed summaries of a real sweep in tests/fixtures/kaplan_cpu) and, without the project's analysis
code, fits Kaplan et al. 2020's power laws with Henighan et al. 2020's additive floor, L = L_inf + (x_c/x)^alpha,
by least squares on log loss, to every point but the largest, then predicts those:
- L(N) (eq. 1.1 with a floor) over the size ladder: the full-corpus runs at batch 64, each trained the same
  10,000 steps, their best validation loss; the two largest sizes held out;
- L(D) (eq. 1.2 with a floor) over the data sizes of the largest data-limited model: its runs on prefixes
  of the training split (random samples of it) and its full-corpus run, D the unique training tokens, each
  its best validation loss; the largest D held out (four sizes at least: the floor form's three constants
  leave none to spare on fewer).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from independent_fits import held_out_errors

FIXTURE = Path(__file__).parent / "fixtures" / "kaplan_cpu"
LADDER_BATCH = 64  # sequences a step: the size ladder's and the data grid's
MAX_ERROR = 0.01  # each held-out run's |predicted / measured - 1|


def summaries(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]


def size_ladder(runs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(N non-embedding, best validation loss) of the full-corpus runs at the ladder's batch, by N."""
    rows = sorted((r["N"], r["best_val_loss"]) for r in runs
                  if r["max_unique_tokens"] is None and r["batch_size"] == LADDER_BATCH and r["status"] == "completed")
    return tuple(np.array(column, dtype=float) for column in zip(*rows))


def data_sizes(runs: list[dict]) -> tuple[np.ndarray, np.ndarray, float]:
    """(D unique training tokens, best validation loss) of the largest data-limited model's runs, its
    full-corpus run among them, by D; and that model's N."""
    limited = [r for r in runs if r["max_unique_tokens"] is not None]
    N = max(r["N"] for r in limited)
    rows = sorted((r["unique_tokens"], r["best_val_loss"]) for r in runs
                  if r["N"] == N and r["batch_size"] == LADDER_BATCH and r["status"] in ("completed", "stopped"))
    D, loss = (np.array(column, dtype=float) for column in zip(*rows))
    return D, loss, N


@pytest.fixture
def kaplan_cpu_runs() -> list[dict]:
    sweep = Path(os.environ.get("SCALING_SWEEP_KAPLAN_CPU", FIXTURE))
    if not sweep.is_dir():
        pytest.skip(f"no kaplan_cpu sweep at {sweep}")
    return summaries(sweep)


def test_the_fit_recovers_a_known_floor_law_from_noisy_points():
    rng = np.random.default_rng(0)
    x = np.geomspace(6e3, 6e5, 8)
    loss = (1.2 + (3e3 / x) ** 0.4) * np.exp(rng.normal(0, 0.002, len(x)))
    law, errors = held_out_errors(x, loss, 2)
    assert errors.max() < 0.01
    assert law["L_inf"] == pytest.approx(1.2, abs=0.1) and law["alpha"] == pytest.approx(0.4, abs=0.15)


def test_a_law_that_bends_away_is_not_predicted():
    """The check can fail: points whose largest sizes turn up (as a run short of its convergence does)."""
    x = np.geomspace(6e3, 6e5, 8)
    loss = 1.2 + (3e3 / x) ** 0.4
    loss[-2:] *= 1.05
    assert held_out_errors(x, loss, 2)[1].max() > 0.02


# Measured on the committed sweep (2026-12-04, data format 3): L(N) misses, and the report's own test says so too.
@pytest.mark.xfail(strict=True, reason="the committed sweep misses: held out 2.0% and 1.2% at 224k and 397k; "
                   "runs of 10,000 steps, not converged, the larger further from it (docs/kaplan_cpu.md, measured)")
def test_l_of_n_with_its_floor_predicts_the_two_largest_sizes(kaplan_cpu_runs):
    N, loss = size_ladder(kaplan_cpu_runs)
    assert len(N) >= 6, f"the size ladder has {len(N)} finished sizes"
    law, errors = held_out_errors(N, loss, 2)
    assert errors.max() < MAX_ERROR, (law, errors)


def test_l_of_d_with_its_floor_predicts_the_largest_data_size(kaplan_cpu_runs):
    D, loss, _ = data_sizes(kaplan_cpu_runs)
    assert len(D) >= 4, f"the largest data-limited model has {len(D)} data sizes"
    law, errors = held_out_errors(D, loss, 1)
    assert errors.max() < MAX_ERROR, (law, errors)
