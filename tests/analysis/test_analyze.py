"""analyze end to end on a synthetic sweep folder and on the reference CSV; bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REFERENCE, width_against_epoch
from synthetic_sweep import TRUTH, run_specs, write_synthetic_sweep

from scaling_sweep.analysis import analyze, conventions, fit, points, runs
from scaling_sweep.core.laws import EPOCH_REPLICATION, chinchilla_loss, critical_batch
from scaling_sweep.core.runfiles import RunSummary
from scaling_sweep.planning import plan


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    return write_synthetic_sweep(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def analysed(sweep_dir):
    assert analyze.main([str(sweep_dir)]) == 0
    return sweep_dir / "analysis"


@pytest.mark.slow
def test_analysis_writes_fits_report_and_figures(analysed):
    out = analysed
    fits = json.loads((out / "fits.json").read_text())
    assert fits["schema_version"] == 2
    assert (fits["tokenizer"], fits["n_ctx"]) == ("byte", 128)
    assert {"L_N", "L_Cmin", "L_NS", "L_ND", "B_crit", "chinchilla"} <= fits["laws"].keys()
    chinchilla = fits["laws"]["chinchilla"]
    runs_fitted = int(chinchilla["ci_method"].split(" over ")[1].split()[0])
    if runs_fitted >= 5 + fit.MIN_SPARE:  # 5 constants
        assert set(chinchilla["ci"]) == {"E", "A", "B", "alpha", "beta"}
    else:
        assert chinchilla["ci"] == {} and chinchilla["no_interval"].startswith("too few runs for an interval")
    assert chinchilla["convention"]["loss"] == "nats/token" and chinchilla["tokenizer"] == "byte"
    assert "mean_abs_rel_error" in fits["laws"]["L_N"]["held_out"]
    excluded = {e["run"]: e["reason"] for e in fits["runs"]["excluded"]}
    assert excluded["diverged_L4_d128"].startswith("diverged")
    assert excluded["killed_L2_d32"].startswith("unfinished")
    # L(D): the largest data-limited model's two dataset sizes and its full-data run: too few for the floor
    assert fits["laws"]["L_D"]["fit_range"]["D"] == [1e5, 1e7] and "L_D_floor" in fits["skipped"]
    report = (out / "report.md").read_text()
    assert "| L_N | alpha_N |" in report and "excluded diverged_L4_d128" in report
    assert "headline convention **non_embedding/6N**" in report
    # law forms on approach 3's points, scored by extrapolation: every candidate's error in the report
    assert fits["recommended"]["law"] in fits["candidates"] and "## Law forms by extrapolation" in report
    assert all(f" {name} " in report for name in fits["candidates"])
    for stem in ("fig1_loss_vs_compute_data_size", "fig2_learning_curves", "fig4_loss_vs_n_d_and_n_s",
                 "fig5_shape", "fig6_embedding_parameters", "fig9_overfitting", "fig10_critical_batch",
                 "fig11_min_steps_and_examples", "fig14_optimal_size", "isoflop_profiles", "residuals"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 10_000
        assert (out / "figures" / f"{stem}.svg").exists()
        assert f"figures/{stem}.png" in report
    assert "- skipped chinchilla_approach2: needs 3 or more IsoFLOP profiles" in report  # 2 bracketed minima
    assert list((out / "tb").iterdir())


@pytest.mark.slow
def test_report_compares_conventions_and_checks_each_fit(analysed):
    report = (analysed / "report.md").read_text()
    for section in ("## Headline exponents under every convention", "## Goodness of fit", "## Rolling prediction",
                    "## Held-out check", "## Warnings"):
        assert section in report
    header = next(line for line in report.splitlines() if line.startswith("| exponent |"))
    assert [cell.strip() for cell in header.strip("|").split("|")][1:5] == [
        "non_embedding/6N (headline)", "non_embedding/exact", "total/6N", "total/exact"]
    assert "| α_C of L(C_min), eq. 1.3 |" in report  # the synthetic sweep has a batch sweep, so B_crit
    assert "counted as Kaplan did (non_embedding/6N)" in report
    assert "| L_N | N_c |" in report and "| non-embedding parameters | Kaplan 8.8e+13 |" in report
    assert "| B_frontier | exponent |" in report and "| Kaplan 0.24 |" in report
    assert "intervals: case bootstrap over" in report and "intervals: smoothed residual bootstrap" in report
    assert "| L_N | N (non-embedding parameters) |" in report  # its rolling prediction row


@pytest.mark.slow
def test_planner_reads_the_fits_json_that_analyze_writes(analysed):
    out = analysed
    fitted = plan.read_fits(out / "fits.json")
    assert set(fitted) == {"chinchilla", "kaplan"}
    constants = json.loads((out / "fits.json").read_text())["laws"]["chinchilla"]
    N, D = 1e8, 2e9
    assert fitted["chinchilla"].loss(N, D) == pytest.approx(
        chinchilla_loss(N, D, **{k: constants[k] for k in ("E", "A", "B", "alpha", "beta")}))


@pytest.mark.slow
def test_critical_batch_per_target_matches_the_synthetic_law(analysed):
    out = analysed
    targets = json.loads((out / "fits.json").read_text())["laws"]["B_crit"]["targets"]
    for row in targets:
        assert row["B_crit"] == pytest.approx(critical_batch(row["loss"], **TRUTH["B_crit"]), rel=0.15)


def test_truncated_metrics_line_is_tolerated(sweep_dir):
    run = runs.read_run(sweep_dir / "size_L2_d48")
    assert run.skipped_lines == 1
    assert run.exclusion() is None
    assert len(run.loss_curve()["step"]) == 12  # every evaluation kept


def test_runs_summary_table(sweep_dir, capsys):
    assert runs.main([str(sweep_dir)]) == 0
    text = capsys.readouterr().out
    assert "nats/token" in text and "not fitted: killed_L2_d32: unfinished" in text


def test_missing_and_empty_folders_are_clear_errors(tmp_path, capsys):
    assert analyze.main([str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert analyze.main([str(tmp_path)]) == 2
    assert "no runs" in capsys.readouterr().err


def test_fewer_than_three_finished_runs(tmp_path, capsys):
    specs = [s for s in run_specs() if s[0] in ("size_L2_d32", "size_L2_d48", "diverged_L4_d128")]
    sweep = write_synthetic_sweep(tmp_path, specs=specs)
    assert analyze.main([str(sweep)]) == 2
    err = capsys.readouterr().err
    assert "2 finished runs, a fit needs at least 3" in err and "diverged_L4_d128: diverged" in err


def test_mixed_tokenizers_are_refused_unless_asked(tmp_path):
    sweep = write_synthetic_sweep(tmp_path)
    path = sweep / "size_L2_d32" / "summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, "tokenizer": "gpt2"}))
    with pytest.raises(runs.SweepError, match="mix tokenizers or contexts.*--allow-mixed"):
        analyze.analyze_sweep(sweep)
    # what analyze_sweep(allow_mixed=True) records, without the full analysis it would then run
    assert runs.check_one_setting(runs.read_sweep(sweep).usable(), allow_mixed=True)["tokenizer"] == ["byte", "gpt2"]


def test_the_frontier_is_measured_points_that_only_fall(sweep_dir):
    usable = runs.read_sweep(sweep_dir).usable()
    front = points.frontier(usable)
    assert np.all(np.diff(front["loss"]) < 0) and np.all(np.diff(front["C"]) >= 0)
    for C, loss, index in zip(front["C"], front["loss"], front["run"]):  # each is a point of its run's curve
        curve = usable[index].loss_curve()
        assert np.any(np.isclose(curve["flops"], C) & np.isclose(curve["loss"], loss))
    assert len(np.unique(front["run"])) >= 3


def test_with_b_crit_the_frontier_is_in_c_min(sweep_dir):
    usable = runs.read_sweep(sweep_dir).usable()
    B_crit = fit.fit_critical_batch(*(points.steps_to_targets(usable)[k] for k in ("target", "B", "S")), n_boot=0)
    plain, converted = points.frontier(usable), points.frontier(usable, B_crit)
    assert converted["C"].min() < plain["C"].min()  # C_min = C/(1 + B/B_crit) < C
    assert np.allclose(converted["B"], B_crit.predict(converted["loss"]))


def test_isoflop_minimum_of_an_exact_parabola():
    N = np.geomspace(1e6, 1e8, 7)
    profile = {"C": 1e18, "N": N, "loss": np.exp(0.7 + 0.01 * (np.log(N) - np.log(1e7)) ** 2)}
    assert points.isoflop_minimum(profile)["N_opt"] == pytest.approx(1e7)
    assert points.isoflop_minimum({**profile, "loss": 1 / profile["loss"]}) is None  # a maximum
    at_an_end = {**profile, "N": N[:4], "loss": profile["loss"][::-1][:4]}
    assert points.isoflop_minimum(at_an_end) is None


@pytest.mark.slow
def test_points_csv_reproduces_epoch_chinchilla_refit(capsys):
    source = REFERENCE / "chinchilla_svg_extracted.csv"
    if not source.exists():
        pytest.skip(f"reference data not found at {source} (shared/ beside the repo root)")
    assert analyze.main(["--points", str(source), "--drop-highest-loss", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fitted = out["laws"]["chinchilla"]
    for name, value in {"E": 1.8172, "A": 477.8, "B": 2142.9, "alpha": 0.3473, "beta": 0.3672}.items():
        assert fitted[name] == pytest.approx(value, rel=0.01), name
        assert 0.7 <= width_against_epoch(name, fitted["ci"][name]) <= 1.5, (name, fitted["ci"][name])
    assert "case bootstrap" in fitted["ci_method"] and len(fitted["samples"]["E"]) == fit.N_BOOT_HUBER
    assert "N_opt" in out["skipped"]  # the skipped laws and why come with --json


def test_points_csv_needs_its_columns(tmp_path, capsys):
    table = tmp_path / "bad.csv"
    table.write_text("params,loss\n1e6,3.0\n")
    assert analyze.main(["--points", str(table)]) == 2
    assert "needs columns N, loss and D or C" in capsys.readouterr().err


@pytest.mark.slow
def test_points_on_isoflop_budgets_give_chinchilla_allocation(tmp_path):
    """Approach 2 on exact IsoFLOP profiles of Epoch's law: N_opt ∝ C^(beta/(alpha+beta))."""
    C = np.repeat(np.geomspace(1e18, 1e22, 5), 9)
    N = np.concatenate([np.geomspace(0.1, 10, 9) * np.sqrt(c / 120) for c in np.geomspace(1e18, 1e22, 5)])
    loss = chinchilla_loss(N, C / (6 * N), **EPOCH_REPLICATION)
    table = tmp_path / "isoflops.csv"
    table.write_text("N,C,loss\n" + "".join(f"{n},{c},{l}\n" for n, c, l in zip(N, C, loss)))
    result = analyze.analyze_points(table)
    a = EPOCH_REPLICATION["beta"] / (EPOCH_REPLICATION["alpha"] + EPOCH_REPLICATION["beta"])
    assert result.fits["N_opt"].params["exponent"] == pytest.approx(a, abs=0.02)
    assert result.fits["D_opt"].params["exponent"] == pytest.approx(1 - a, abs=0.02)
    assert result.fits["chinchilla"].params["alpha"] == pytest.approx(EPOCH_REPLICATION["alpha"], rel=1e-3)


def test_wsd_cooldown_branches_give_the_isoflop_profiles():
    budgets = [1e15, 1e16, 1e17]
    sweep = []
    for N in (1e6, 3e6, 1e7, 3e7):
        cooldowns = [{"step": 1, "tokens": C / (6 * N), "flops": C, "val_loss": chinchilla_loss(N, C / (6 * N),
                                                                                                 **EPOCH_REPLICATION)}
                     for C in budgets]
        summary = RunSummary(status="completed", stop_reason="max_steps", N=int(N), cooldowns=cooldowns)
        sweep.append(runs.Run(f"N{N:.0e}", Path("."), summary, {}))
    profiles, source = points.isoflop_profiles(sweep)
    assert [p["C"] for p in profiles] == pytest.approx(budgets) and "cooldown" in source
    assert all(len(p["N"]) == 4 and sorted(p["run"]) == [0, 1, 2, 3] for p in profiles)


def epoch_isoflop_runs(budgets=np.geomspace(1e17, 1e19, 5), vocab=50257, n_ctx=1024):
    """Ten GPT shapes (aspect 64, head dim 64) trained under wsd to five cooldown budgets each, counted
    as training counts them (6·N·tokens, N non-embedding), with Epoch's law in total parameters and
    tokens seen as their loss (noise-free)."""
    sweep = []
    for d_model in np.geomspace(128, 1536, 10).round(-1).astype(int):
        n_layer = max(1, d_model // 64)
        N = 12 * n_layer * d_model**2
        N_total = N + (2 * vocab + n_ctx) * d_model
        cooldowns = [{"step": 1, "tokens": C / (6 * N), "flops": C,
                      "val_loss": chinchilla_loss(N_total, C / (6 * N), **EPOCH_REPLICATION)} for C in budgets]
        summary = RunSummary(status="completed", stop_reason="max_steps", N=N, N_total=N_total,
                             flops_per_token_kaplan_6N=6.0 * N, tokens=int(budgets[-1] / (6 * N)),
                             flops_per_token_exact=6.0 * N_total + 12 * n_layer * n_ctx * d_model,
                             cooldowns=cooldowns)
        sweep.append(runs.Run(f"d{d_model}", Path("."), summary, {"tokens": np.array([])}))
    return sweep


@pytest.mark.parametrize("convention", conventions.ALL, ids=lambda c: c.key)
def test_profiles_stay_whole_in_every_convention_and_approach_3_recovers_epochs_law(convention):
    """A point keeps the budget it was trained to as its profile, with D its tokens, whatever N and C
    count: every point of every profile stays, and approach 3 fitted in total parameters recovers
    Epoch's alpha and beta (grouped by converted C, total/6N kept 12 of the 50 points and fitted alpha 0.417)."""
    sweep = [convention.apply(r) for r in epoch_isoflop_runs()]
    profiles, _ = points.isoflop_profiles(sweep)
    assert len(profiles) == 5 and sum(len(p["N"]) for p in profiles) == 50
    np.testing.assert_allclose([p["budget"] for p in profiles], np.geomspace(1e17, 1e19, 5), rtol=1e-9)
    per_token = np.array([convention.flops_per_token(r) for r in sweep])  # the runs are in order of N
    for p in profiles:  # each point's own C in the convention, its own tokens as D
        np.testing.assert_allclose(p["C_each"], per_token * p["D"], rtol=1e-12)
    if convention.params == "total":
        N, D, loss = (np.concatenate([p[k] for p in profiles]) for k in ("N", "D", "loss"))
        chinchilla = fit.fit_chinchilla(N, D, loss, n_boot=0, starts=fit.CHINCHILLA_GRID[::25])
        for name in ("alpha", "beta", "E"):
            assert chinchilla.params[name] == pytest.approx(EPOCH_REPLICATION[name], rel=1e-3), name
    spread = points.budget_spread(profiles)
    assert spread == pytest.approx(1.0, abs=1e-9) if convention.key == "non_embedding/6N" else spread > 1.5


def test_the_demo_sweeps_profiles_are_its_budgets_under_every_convention():
    """The real demo (6 budgets by wsd cooldowns): the same 30 points in the same profiles however N and C
    are counted, so approach 2 finds its minima and approach 3 its points under all four conventions; its
    branches at the common length (reason "steps") are in none of them."""
    demo = runs.read_sweep(Path(__file__).parents[1] / "fixtures" / "demo_sweep").usable()
    headline, _ = points.isoflop_profiles(demo)
    assert [len(p["N"]) for p in headline] == [5, 4, 5, 5, 6, 5]
    for convention in conventions.ALL:
        profiles, _ = points.isoflop_profiles([convention.apply(r) for r in demo])
        for key in ("budget", "D", "loss", "run"):
            np.testing.assert_allclose([np.mean(p[key]) for p in profiles], [np.mean(p[key]) for p in headline])
        minima = [m for m in map(points.isoflop_minimum, profiles) if m is not None]
        assert len(minima) >= 3, convention.key
        # approach 2's C is what the optimum costs in this convention: its budget as trained, more when counted
        # with embeddings or exactly
        ratio = np.array([m["C"] / m["budget"] for m in minima])
        assert np.all(ratio > 1.01) if convention != conventions.HEADLINE else np.allclose(ratio, 1, rtol=1e-3)


def test_fits_json_is_strict_json_with_a_reason_for_each_null(tmp_path):
    result = analyze.Analysis("hand", {"tokenizer": "byte", "n_ctx": 32})
    FIT = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    samples = {k: np.array([v, v * 1.01, np.nan]) for k, v in FIT.items()}
    result.fits["chinchilla"] = fit.Fit("chinchilla", FIT, {"alpha": (0.3, np.inf), "E": (np.nan, np.nan)}, 30,
                                        samples=samples, extra={"points": "hand"})
    payload = analyze.fits_json(result)
    text = json.dumps(payload, allow_nan=False)  # raises on NaN or Infinity
    law = json.loads(text)["laws"]["chinchilla"]
    assert law["ci"]["alpha"] == [0.3, None] and law["ci"]["E"] == [None, None]
    assert payload["non_finite"]["laws.chinchilla.ci.alpha[1]"].startswith("Infinity: unbounded above")
    assert payload["non_finite"]["laws.chinchilla.samples.beta[2]"].startswith("NaN")
    path = tmp_path / "fits.json"
    path.write_text(text)
    planned = plan.read_fits(path, ["chinchilla"])["chinchilla"]  # readers take null samples as NaN
    assert planned.loss_params["alpha"] == 0.35 and np.isnan(planned.samples["alpha"][2])


def test_isoflop_min_chooses_the_recipe_of_approach_2(capsys):
    rng = np.random.default_rng(0)
    N = np.geomspace(1e6, 1e9, 9)
    profiles = [{"C": C, "N": N, "D": C / (6 * N), "run": np.arange(9),
                 "loss": chinchilla_loss(N, C / (6 * N), **EPOCH_REPLICATION) * np.exp(0.003 * rng.standard_normal(9))}
                for C in np.geomspace(1e17, 1e19, 4)]
    fitted = {}
    for method in points.ISOFLOP_MINIMA:
        result = analyze.Analysis("hand", {}, isoflop_min=method)
        analyze._fit_approach_2(result, profiles, "hand", n_boot=50)
        fitted[method] = result.fits["N_opt"]
        assert points.MINIMUM_NOTES[method] in fitted[method].extra["points"]
        expected = [points.isoflop_minimum(p, method)["N_opt"] for p in profiles]
        assert [m["N_opt"] for m in result.data["isoflop"]["minima"]] == pytest.approx(expected)
    assert len({f.params["exponent"] for f in fitted.values()}) == len(points.ISOFLOP_MINIMA)
    with pytest.raises(SystemExit) as exit_code:
        analyze.main(["--points", "table.csv", "--isoflop-min", "cubic"])
    assert exit_code.value.code == 2 and "invalid choice: 'cubic'" in capsys.readouterr().err
