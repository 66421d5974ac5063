"""points on wsd runs: 'still improving' against the run's own half-length branch, and a compute
frontier of decayed points only (docs/kaplan_cpu.md, "What the analysis needs", items 3 and 4)."""

import numpy as np
import pytest
from synthetic_sweep import WSD_STABLE_EXCESS, write_wsd_run, wsd_loss

from scaling_sweep.analysis import fit, points
from scaling_sweep.analysis.analyze import Analysis, _fit_compute, _size_points_note
from scaling_sweep.analysis.runs import read_sweep


def runs_of(root):
    return {r.name: r for r in read_sweep(root / "wsd").usable()}


def test_a_wsd_run_is_still_improving_by_its_half_length_branch_not_by_its_decay(tmp_path):
    # converged: the run of 600 steps is 0.16% below the run of 300; improving: 1.6% below it. Both
    # fall by 5% over their last 20% of steps, their decay, which the rule for other schedules flags.
    write_wsd_run(tmp_path, "converged", 32, floor=1.5, scale=0.3)
    write_wsd_run(tmp_path, "improving", 32, floor=1.5, scale=3.0)
    write_wsd_run(tmp_path, "converged_no_half_branch", 32, floor=1.5, scale=0.3, branches=(0.25,))
    runs = runs_of(tmp_path)
    assert all(r.wsd for r in runs.values())
    assert not points.still_improving(runs["converged"])
    assert points.still_improving(runs["improving"])
    assert not points.still_improving(runs["converged_no_half_branch"])  # its stable phase only


def test_other_schedules_keep_the_last_fifth_of_steps_rule(tmp_path):
    run_dir = write_wsd_run(tmp_path, "cosine", 32, floor=1.5, scale=0.3)
    (run_dir / ".hydra" / "config.yaml").write_text("run_name: cosine\noptim:\n  schedule: cosine\n")
    (run,) = runs_of(tmp_path).values()
    assert not run.wsd and points.still_improving(run)  # the same curve: 5% in its last fifth


def wsd_sweep(root):
    """Three sizes under wsd, each with branches at a quarter and half of its 600 steps."""
    for d_model, floor, scale in ((32, 1.6, 2.0), (48, 1.4, 3.0), (64, 1.2, 5.0)):
        write_wsd_run(root, f"L2_d{d_model}", d_model, floor, scale)
    return list(runs_of(root).values())


def test_the_frontier_of_wsd_runs_reads_only_their_ends_and_branches(tmp_path):
    runs = wsd_sweep(tmp_path)
    decayed = {(float(c["flops"]), c["val_loss"]) for r in runs for c in r.summary.cooldowns}
    decayed |= {(float(r.summary.flops), r.final_loss) for r in runs}
    front = points.frontier(runs)
    assert len(front["C"]) >= 3
    assert {(float(C), float(L)) for C, L in zip(front["C"], front["loss"])} <= decayed
    stable = runs[0].loss_curve()  # its stable-phase evaluations, WSD_STABLE_EXCESS above the runs of their length
    assert stable["loss"][0] == pytest.approx(wsd_loss(stable["step"][0], 1.6, 2.0) * (1 + WSD_STABLE_EXCESS))
    B_crit = fit.Fit("B_crit", {"B_star": 1e5, "alpha_B": 0.3}, {}, 9,
                     samples={"B_star": np.array([1e5, 2e5]), "alpha_B": np.array([0.3, 0.3])})
    converted = points.frontier(runs, B_crit)
    assert set(converted["C_raw"]) <= {C for C, _ in decayed}
    assert points.frontier_resampled(converted, B_crit)["C"].shape == (2, len(converted["C"]))


def test_the_points_note_says_the_wsd_frontier_is_of_decayed_points(tmp_path):
    runs = wsd_sweep(tmp_path)
    result = Analysis("wsd", {})
    _fit_compute(result, runs, None)
    assert "only the decayed points" in result.fits["L_C"].extra["points"]


def test_L_N_takes_every_size_at_the_longest_length_all_of_them_trained_to(tmp_path):
    # d32 runs 600 steps (branches at 150, 300), d48 300 (at 150), d64 600 (at 150): S = 150 is common
    write_wsd_run(tmp_path, "L2_d32", 32, 1.6, 2.0)
    write_wsd_run(tmp_path, "L2_d48", 48, 1.4, 3.0, branches=(0.5,), max_steps=300)
    write_wsd_run(tmp_path, "L2_d64", 64, 1.2, 5.0, branches=(0.25,))
    runs = sorted(runs_of(tmp_path).values(), key=lambda r: r.summary.N)
    assert points.common_length(runs) == 150
    size = points.size_points(runs)
    assert size["S"] == 150 and list(size["N"]) == [r.summary.N for r in runs]
    expected = [wsd_loss(150, floor, scale) for floor, scale in ((1.6, 2.0), (1.4, 3.0), (1.2, 5.0))]
    assert size["loss"] == pytest.approx(expected)
    assert "S = 150 steps" in _size_points_note(size)


def test_without_a_common_length_L_N_takes_each_size_s_lowest_loss(tmp_path):
    write_wsd_run(tmp_path, "L2_d32", 32, 1.6, 2.0, branches=(0.5,))
    write_wsd_run(tmp_path, "L2_d48", 48, 1.4, 3.0, branches=(0.25,), max_steps=500)
    runs = sorted(runs_of(tmp_path).values(), key=lambda r: r.summary.N)
    size = points.size_points(runs)
    assert size["S"] is None and list(size["loss"]) == [r.final_loss for r in runs]
    assert "lowest early-stopped" in _size_points_note(size)


def test_L_N_S_reads_a_wsd_run_at_its_end_and_branches_only(tmp_path):
    runs = wsd_sweep(tmp_path)
    pts = points.loss_at_steps(runs)
    decayed = {(r.summary.N, float(step), loss) for r in runs for step, loss in points.length_points(r).items()}
    assert set(zip(pts["N"], pts["S"], pts["loss"])) == decayed and len(pts["S"]) == 9
