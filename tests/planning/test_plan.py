import json

import numpy as np
import pytest

from scaling_sweep.core import laws
from scaling_sweep.core.accounting import PF_DAY, param_counts
from scaling_sweep.core.config import ModelConfig
from scaling_sweep.planning import plan
from scaling_sweep.planning.plan import PUBLISHED_LAWS

BUDGETS = [10.0**k for k in range(18, 26)]
KAPLAN, CHINCHILLA, EPOCH = (PUBLISHED_LAWS[k] for k in ("kaplan", "chinchilla", "epoch"))
FIT = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


def run_cli(capsys, *args):
    code = plan.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_fits(tmp_path, payload, name="fits.json"):
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return path


def fits_payload():
    """A fits.json as schema_version 1 wrote it: per-constant intervals, no samples, no fit_range."""
    ci = {k: [0.95 * v, 1.05 * v] for k, v in FIT.items()}
    return {"schema_version": 1, "laws": {"chinchilla": {**FIT, "ci": ci, "ci_level": 0.95, "n_points": 40},
                                          "L_N": {"N_c": 1e13, "alpha_N": 0.07, "ci": {}}}}


def drawn_samples(n=1000, seed=0):
    """Bootstrap-like samples of FIT's constants: each constant normal about its value, 2% sd."""
    rng = np.random.default_rng(seed)
    return {k: v * (1 + 0.02 * rng.standard_normal(n)) for k, v in FIT.items()}


def fits_with(tmp_path, **extra):
    payload = {"schema_version": 1, "laws": {"chinchilla": {**FIT, **extra}}}
    return write_fits(tmp_path, json.loads(json.dumps(payload, default=list)))


# --- loss predictions and allocations --------------------------------------------------------

def test_gpt3_check_under_kaplan_with_chinchilla_beside_it(capsys):
    dataset = ("--tokens-are", "a-dataset")
    code, out, _ = run_cli(capsys, "--params", 1.75e11, "--tokens", 3e11, "--law", "kaplan", *dataset)
    assert code == 0 and "1.7323" in out and "nats/token" in out
    assert "kaplan's loss answers a dataset of D tokens, early-stopped, as many passes as lower the loss: eq. 1.5" \
        in out
    result = json.loads(run_cli(capsys, "--params", 1.75e11, "--tokens", 3e11, *dataset, "--json")[1])
    assert result["laws"]["kaplan"]["loss"] == pytest.approx(1.73, abs=0.005)
    assert result["laws"]["chinchilla"]["loss"] == pytest.approx(laws.chinchilla_loss(1.75e11, 3e11, **laws.CHINCHILLA))
    assert {"kaplan", "chinchilla", "epoch"} == set(result["laws"])


def test_kaplans_loss_of_tokens_seen_once_is_l_n_s_min_at_the_batch_regime(capsys):
    """N = 1e9, D = 2e10 (worked by hand in tests/core/test_laws.py): eq. 1.5 says 2.435 nats, one pass at
    B_crit 2.774, L(C_min) 2.707."""
    code, out, _ = run_cli(capsys, "--params", 1e9, "--tokens", 2e10, "--law", "kaplan")
    assert code == 0 and "2.7740" in out and "(D tokens seen once, a single pass)" in out
    assert "kaplan's loss answers D tokens seen once, a single pass: L(N, S_min) at B = B_crit(L) (eq. 1.6, 5.4" in out
    entry = json.loads(run_cli(capsys, "--params", 1e9, "--tokens", 2e10, "--json")[1])["laws"]
    p = {**laws.KAPLAN["L_NS"], **laws.KAPLAN["B_crit"]}
    assert entry["kaplan"]["loss"] == pytest.approx(laws.loss_single_pass(1e9, 2e10, **p))
    assert entry["kaplan"]["warnings"] == [] and entry["chinchilla"]["warnings"] == []
    small = plan.select_laws("kaplan", batch_regime="small")["kaplan"]
    assert small.loss(1e9, 2e10) == pytest.approx(laws.loss_single_pass(1e9, 2e10, **p, B_over_B_crit=0.0))
    compute_optimal = plan.compute_optimal(KAPLAN, 1.2e20)
    assert compute_optimal.loss == pytest.approx(2.707, abs=1e-3)  # L(C_min), C_min = C/2
    dataset = json.loads(run_cli(capsys, "--params", 1e9, "--tokens", 2e10, "--tokens-are", "a-dataset",
                                 "--json")[1])["laws"]
    assert dataset["kaplan"]["loss"] == pytest.approx(2.435, abs=1e-3) and not dataset["kaplan"]["warnings"]
    assert "not the question asked" in dataset["chinchilla"]["warnings"][0]  # eq. 2 is of tokens seen once


@pytest.mark.parametrize("law", PUBLISHED_LAWS.values(), ids=PUBLISHED_LAWS)
def test_allocations_spend_the_budget(law):
    for C in BUDGETS:
        p = plan.compute_optimal(law, C)
        assert p.flops == pytest.approx(C, rel=1e-3)


def test_chinchilla_twenty_tokens_per_parameter_and_epoch_near_it():
    for C in BUDGETS:
        assert plan.compute_optimal(CHINCHILLA, C).as_dict()["tokens_per_param"] == pytest.approx(20.0)
        assert 15 < plan.compute_optimal(EPOCH, C).as_dict()["tokens_per_param"] < 30


def test_kaplan_n_opt_grows_as_c_min_to_the_0_73():
    N = np.array([plan.compute_optimal(KAPLAN, C).N for C in BUDGETS])
    slope = np.polyfit(np.log(BUDGETS), np.log(N), 1)[0]
    assert slope == pytest.approx(0.73, abs=1e-9)
    # eq. 1.7 is in C_min; at the critical batch a budget C is C_min = C/2 (eq. 5.5)
    assert plan.compute_optimal(KAPLAN, 2 * PF_DAY).N == pytest.approx(1.3e9)
    small = plan.select_laws("kaplan", batch_regime="small")["kaplan"]
    assert plan.compute_optimal(small, PF_DAY).N == pytest.approx(1.3e9)


def test_kaplan_compute_optimal_loss_is_l_cmin_with_its_batch_assumption(capsys):
    entry = json.loads(run_cli(capsys, "--compute", 1e21, "--law", "kaplan", "--json")[1])["laws"]["kaplan"]
    assert 2.30 <= entry["loss"] <= 2.45
    assert entry["loss"] == pytest.approx(laws.loss_cmin(1e21 / 2, **laws.KAPLAN["L_Cmin"]))  # eq. 1.3, about 2.43
    assert "B_crit" in entry["assumption"] and "C/2" in entry["assumption"]
    assert entry["flops"] == pytest.approx(1e21) and entry["params_convention"] == "non_embedding"
    small = json.loads(run_cli(capsys, "--compute", 1e21, "--law", "kaplan", "--batch-regime", "small",
                               "--json")[1])["laws"]["kaplan"]
    assert small["loss"] == pytest.approx(laws.loss_cmin(1e21, **laws.KAPLAN["L_Cmin"]), abs=1e-12)  # about 2.35
    assert "B << B_crit" in small["assumption"] and small["flops"] == pytest.approx(1e21)
    out = run_cli(capsys, "--compute", 1e21, "--law", "kaplan")[1]
    assert "2.4347" in out and "kaplan assumes the budget C is spent training at the critical batch size" in out


def test_compute_accepts_pf_days_and_says_the_budget_is_spent(capsys):
    code, out, _ = run_cli(capsys, "--compute", "1e3", "PF-days")
    assert code == 0 and "8.64e+22 FLOPs" in out and "spends exactly its budget" in out
    result = json.loads(run_cli(capsys, "--compute", "1e3 pf-day", "--json")[1])
    assert result["inputs"]["compute_flops"] == pytest.approx(1e3 * PF_DAY)
    for entry in result["laws"].values():
        assert {"N", "D", "loss", "flops"} <= set(entry)
        assert entry["flops"] == pytest.approx(1e3 * PF_DAY)


# --- inverse questions -------------------------------------------------------------------------

@pytest.mark.parametrize("law", PUBLISHED_LAWS.values(), ids=PUBLISHED_LAWS)
def test_tokens_to_reach_a_loss_inverts_the_law(law):
    N = 1e10
    target = law.loss(N, 1e12)
    p = plan.tokens_for_loss(law, N, target)
    assert p.D == pytest.approx(1e12, rel=1e-6) and p.loss == pytest.approx(target)


def test_a_loss_below_the_floor_is_never_reached(capsys):
    floor = laws.CHINCHILLA["E"] + laws.CHINCHILLA["A"] / 1e9 ** laws.CHINCHILLA["alpha"]
    assert plan.tokens_for_loss(CHINCHILLA, 1e9, floor - 0.01) is None
    assert plan.compute_for_loss(CHINCHILLA, laws.CHINCHILLA["E"] - 0.01) is None
    code, out, _ = run_cli(capsys, "--params", 1e9, "--target-loss", 2.3)
    assert code == 0 and "never" in out.splitlines()[3]  # Kaplan's eq. 1.5 floor at N = 1e9 is 2.37


@pytest.mark.parametrize("law", PUBLISHED_LAWS.values(), ids=PUBLISHED_LAWS)
def test_smallest_compute_for_a_loss_matches_the_plan_for_that_compute(law):
    target = plan.compute_optimal(law, 1e22).loss
    p = plan.compute_for_loss(law, target)
    assert p.flops == pytest.approx(1e22, rel=1e-6) and p.loss == pytest.approx(target)


def test_smallest_compute_is_the_minimum_under_a_fitted_law(tmp_path):
    law = plan.read_fits(write_fits(tmp_path, fits_payload()))["chinchilla"]
    p = plan.compute_for_loss(law, 2.5)
    for scale in (0.7, 1.4):  # any other size at that loss needs more compute
        assert plan.tokens_for_loss(law, scale * p.N, 2.5).flops > p.flops


# --- inference-optimal alternative ---------------------------------------------------------------

def test_inference_alternative_is_smaller_reaches_the_same_loss_and_costs_more_training():
    p = plan.compute_optimal(EPOCH, 1e22)
    half = plan.inference_alternative(p)
    assert half.N == pytest.approx(p.N / 2) and half.loss == pytest.approx(p.loss)
    assert half.D > p.D and half.flops > p.flops  # the plan is the loss minimum for its budget
    served = plan.inference_alternative(p, inference_tokens=1e14)
    assert served.N < half.N and served.loss == pytest.approx(p.loss)
    assert plan.inference_alternative(p, inference_tokens=1.0).N == pytest.approx(p.N, rel=0.02)


def test_inference_tokens_table_and_json(capsys):
    code, out, _ = run_cli(capsys, "--compute", 1e21, "--inference-tokens", 1e12)
    assert code == 0 and "inference FLOPs saved" in out
    entry = json.loads(run_cli(capsys, "--compute", 1e21, "--inference-tokens", 1e12, "--json")[1])["laws"]["epoch"]
    alt = entry["inference_alternative"]
    assert alt["N"] < entry["N"] and alt["extra_training_flops"] > 0 and alt["inference_flops_saved"] > 0


# --- fitted laws ---------------------------------------------------------------------------------

def test_fitted_law_predicts_with_its_constants(tmp_path, capsys):
    path = write_fits(tmp_path, fits_payload())
    law = plan.read_fits(path)["chinchilla"]
    assert law.loss(1e8, 2e9) == pytest.approx(laws.chinchilla_loss(1e8, 2e9, **FIT))
    assert plan.compute_optimal(law, 1e20).N == pytest.approx(laws.chinchilla_optimal(1e20, **FIT)[0])
    result = json.loads(run_cli(capsys, "--fit", path, "--params", 1e8, "--tokens", 2e9, "--json")[1])
    assert list(result["laws"]) == ["fit:chinchilla"]
    assert result["laws"]["fit:chinchilla"]["params_convention"] == "non_embedding"


@pytest.mark.parametrize("convention,expected", [
    ({"params": "total", "compute": "exact"}, "total"),
    ({"params": "non_embedding", "compute": "6N"}, "non_embedding"),
    ({"params": "total", "N": "all parameters, as the points file counts them"}, "total"),
])
def test_a_fitted_law_counts_n_as_its_fits_json_says(tmp_path, capsys, convention, expected):
    path = write_fits(tmp_path, {**fits_payload(), "convention": convention})
    assert plan.read_fits(path)["chinchilla"].params_convention == expected
    entry = json.loads(run_cli(capsys, "--fit", path, "--compute", 1e20, "--json")[1])["laws"]["fit:chinchilla"]
    assert entry["params_convention"] == expected and entry["shape"]["matched"] == expected


@pytest.mark.parametrize("extra,says", [
    ({"points_file": "points.csv", "convention": {"N": "parameters as the points file counts them"}},
     "without saying what its N counts; re-run analyze --points with --params"),
    ({"convention": {"params": "embedding"}}, "convention.params 'embedding' is not one of non_embedding, total"),
])
def test_a_fit_whose_n_convention_is_unknown_is_refused(tmp_path, extra, says):
    with pytest.raises(plan.PlanError, match=says):
        plan.read_fits(write_fits(tmp_path, {**fits_payload(), **extra}))


def test_compute_plan_intervals_are_percentiles_over_the_samples(tmp_path, capsys):
    samples = drawn_samples()
    C = 1e20
    optima = [laws.chinchilla_optimal(C, **{k: v[i] for k, v in samples.items()}) for i in range(1000)]
    losses = [laws.chinchilla_loss(N, D, **{k: v[i] for k, v in samples.items()}) for i, (N, D) in enumerate(optima)]
    entry = json.loads(run_cli(capsys, "--fit", fits_with(tmp_path, samples=samples), "--compute", C,
                               "--json")[1])["laws"]["fit:chinchilla"]
    assert entry["loss_ci"] == pytest.approx(np.percentile(losses, [2.5, 97.5]), rel=1e-9)
    assert entry["N_opt_ci"] == pytest.approx(np.percentile([N for N, _ in optima], [2.5, 97.5]), rel=1e-9)
    assert entry["D_opt_ci"] == pytest.approx(np.percentile([D for _, D in optima], [2.5, 97.5]), rel=1e-9)
    assert entry["loss_ci"][0] < entry["loss"] < entry["loss_ci"][1]
    assert "1000 bootstrap samples" in entry["interval"]


def test_a_resampled_floor_moves_the_loss_by_its_own_percentiles(tmp_path, capsys):
    # only E resampled, E ~ Normal(1.8, 0.05): at given N and D the loss is E plus a constant
    E = np.random.default_rng(1).normal(FIT["E"], 0.05, 1000)
    path = fits_with(tmp_path, samples={"E": E})
    entry = json.loads(run_cli(capsys, "--fit", path, "--params", 1e8, "--tokens", 2e9, "--json")[1])["laws"]
    entry = entry["fit:chinchilla"]
    offset = entry["loss"] - FIT["E"]
    assert entry["loss_ci"] == pytest.approx(np.percentile(E, [2.5, 97.5]) + offset, rel=1e-12)
    assert entry["loss_ci"] == pytest.approx([entry["loss"] - 1.96 * 0.05, entry["loss"] + 1.96 * 0.05], abs=0.01)
    assert "N_opt_ci" not in entry  # N and D were given
    out = run_cli(capsys, "--fit", path, "--params", 1e8, "--tokens", 2e9)[1]
    assert f"[{entry['loss_ci'][0]:.4f}, {entry['loss_ci'][1]:.4f}]" in out and "percentiles" in out


def test_a_fit_warning_travels_into_the_plan(tmp_path, capsys):
    payload = {"schema_version": 1, "laws": {"chinchilla": {**FIT, "ci": {}, "warning": "E -> 0 (1e-90 nats/token)"}}}
    _, out, _ = run_cli(capsys, "--fit", write_fits(tmp_path, payload), "--compute", 1e21)
    assert "fit warning: E -> 0 (1e-90 nats/token)" in out


def test_an_old_fits_file_without_samples_plans_without_an_interval(tmp_path, capsys):
    path = write_fits(tmp_path, fits_payload())  # per-constant "ci" only: no samples to propagate
    entry = json.loads(run_cli(capsys, "--fit", path, "--compute", 1e20, "--json")[1])["laws"]["fit:chinchilla"]
    assert entry["N"] == pytest.approx(laws.chinchilla_optimal(1e20, **FIT)[0])
    assert not {"loss_ci", "N_opt_ci", "D_opt_ci"} & set(entry) and entry["interval"].startswith("no interval")
    assert entry["warnings"] == []  # no fit_range either
    code, out, _ = run_cli(capsys, "--fit", path, "--compute", 1e20)
    assert code == 0 and "No interval for fit:chinchilla" in out
    assert plan.sample_intervals(plan.compute_optimal(plan.read_fits(path)["chinchilla"], 1e20)) == {}


def test_published_laws_have_no_interval(capsys):
    result = json.loads(run_cli(capsys, "--compute", 1e21, "--json")[1])
    for entry in result["laws"].values():
        assert "loss_ci" not in entry and entry["interval"].startswith("no interval")


def test_fitted_kaplan_eq_1_5_uses_its_own_optimum(tmp_path):
    payload = {"schema_version": 1, "laws": {"L_ND": {**laws.KAPLAN["L_ND"], "ci": {}}}}
    law = plan.read_fits(write_fits(tmp_path, payload), ["kaplan"])["kaplan"]
    assert law.loss(1.75e11, 3e11) == pytest.approx(1.73, abs=0.005)
    assert plan.compute_optimal(law, 1e21).N == pytest.approx(laws.loss_nd_optimal(1e21, **laws.KAPLAN["L_ND"])[0])


# --- bad input: one line on stderr, non-zero exit -------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--compute=-1e21"], "must be a positive number"),
    (["--compute", "0"], "must be a positive number"),
    (["--compute", "1e3", "GPU-years"], "unknown unit"),
    (["--compute", "lots"], "expected a number"),
    (["--params", "1e9"], "ask one question"),
    (["--compute", "1e21", "--tokens", "1e9"], "ask one question"),
    (["--params", "abc", "--tokens", "1e9"], "not a number"),
    (["--compute", "1e21", "--law", "gopher"], "--law gopher"),
    (["--compute", "1e21", "--device", "abacus"], "--device abacus"),
    (["--compute", "1e21", "--device", "h100", "--mfu", "1.5"], "--mfu"),
])
def test_bad_arguments(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


UNKNOWN_VERSION = laws.FITS_SCHEMA_VERSION + 1


@pytest.mark.parametrize("payload, message", [
    ({**fits_payload(), "schema_version": UNKNOWN_VERSION}, f"schema_version {UNKNOWN_VERSION}"),
    ({k: v for k, v in fits_payload().items() if k != "schema_version"}, "schema_version None"),
    ({"schema_version": 1, "laws": {"L_N": {}}}, "none of the laws"),
    ({"schema_version": 1, "laws": {"chinchilla": {"E": 1.8, "A": 480.0}}}, "lacks the number(s) B, alpha, beta"),
    ({"schema_version": 1, "laws": {"chinchilla": {**FIT, "fit_range": {"C": 1e18}}}}, "expected [lo, hi]"),
    ({"schema_version": 1, "laws": {"chinchilla": {**FIT, "fit_range": [1, 2]}}}, "fit_range of type list"),
    ({"schema_version": 1, "laws": {"chinchilla": {**FIT, "samples": {"E": [1.8, 1.9], "A": [480.0]}}}},
     "lists of one length"),
    ({"schema_version": 1, "laws": {"chinchilla": {**FIT, "samples": {"E": ["a", "b"]}}}}, "not lists of numbers"),
    ({"schema_version": 1, "laws": {"chinchilla": {**FIT, "samples": [1.8]}}}, "samples of type list"),
])
def test_bad_fits_file(tmp_path, capsys, payload, message):
    code, _, err = run_cli(capsys, "--fit", write_fits(tmp_path, payload), "--compute", 1e20)
    assert code != 0 and len(err.strip().splitlines()) == 1 and message in err


def test_fits_file_missing_the_asked_law_or_unreadable(tmp_path, capsys):
    path = write_fits(tmp_path, fits_payload())
    code, _, err = run_cli(capsys, "--fit", path, "--compute", 1e20, "--law", "kaplan")
    assert code != 0 and "no 'L_ND' law" in err and "chinchilla" in err
    (tmp_path / "broken.json").write_text("{")
    for bad in (tmp_path / "broken.json", tmp_path / "absent.json"):
        code, _, err = run_cli(capsys, "--fit", bad, "--compute", 1e20)
        assert code != 0 and len(err.strip().splitlines()) == 1 and str(bad) in err


def test_an_unknown_law_is_named():
    with pytest.raises(plan.PlanError, match="gopher"):
        plan.resolve_law("gopher")


# --- model shape -------------------------------------------------------------------------------------

def test_shapes_use_the_exact_count_and_the_aspect_range():
    shapes = plan.model_shapes(85e6)
    assert (shapes[0].n_layer, shapes[0].d_model, shapes[0].n_head) == (12, 768, 12)  # GPT-2 small's blocks
    errors = [abs(s.N / 85e6 - 1) for s in shapes]
    assert errors == sorted(errors)
    for s in shapes:
        cfg = ModelConfig(n_layer=s.n_layer, d_model=s.d_model, n_head=s.n_head)
        assert s.N == param_counts(cfg, 50257).non_embedding
        assert 64 <= s.d_model / s.n_layer <= 128 and s.d_model == 64 * s.n_head


def test_large_shapes_come_within_a_percent():
    for N in (1e9, 7e10):
        assert abs(plan.model_shapes(N)[0].N / N - 1) < 0.01


def test_shape_cli_prints_hydra_overrides(capsys):
    code, out, _ = run_cli(capsys, "--shape", 85e6)
    assert code == 0 and "model.n_layer=12 model.d_model=768 model.n_head=12" in out
    code, out, _ = run_cli(capsys, "--shape", 8e5, "--head-dim", 32, "--aspect", 32, 64)
    assert code == 0 and "model.n_layer=" in out
    assert plan.model_shapes(1e4) == []
    code, _, err = run_cli(capsys, "--shape", 1e4)
    assert code != 0 and "--head-dim" in err
    code, _, err = run_cli(capsys, "--compute", 1e21, "--head-dim", 0)
    assert code != 0 and "head dim 0" in err


def test_total_parameter_laws_get_shapes_of_that_total_for_the_given_vocab_and_context(capsys):
    for vocab, n_ctx in ((50257, 1024), (32000, 2048)):
        result = json.loads(run_cli(capsys, "--compute", 1e21, "--vocab", vocab, "--n-ctx", n_ctx, "--json")[1])
        for name in ("chinchilla", "epoch"):
            entry = result["laws"][name]
            shape = entry["shape"]
            assert entry["params_convention"] == "total" and shape["matched"] == "total"
            assert shape["N_total"] == pytest.approx(entry["N"], rel=0.03)
            cfg = ModelConfig(n_layer=shape["n_layer"], d_model=shape["d_model"], n_head=shape["n_head"], n_ctx=n_ctx)
            counts = param_counts(cfg, vocab)
            assert (shape["N"], shape["N_total"]) == (counts.non_embedding, counts.total)
            assert f"model.n_ctx={n_ctx}" in shape["overrides"]
        kaplan = result["laws"]["kaplan"]
        assert kaplan["shape"]["matched"] == "non_embedding"
        assert kaplan["shape"]["N"] == pytest.approx(kaplan["N"], rel=0.01)
        assert kaplan["shape"]["N"] < kaplan["shape"]["N_total"]
    out = run_cli(capsys, "--compute", 1e21)[1]
    table = out.split("\n\n")[1]
    assert "N is" in table and "non-embedding" in table.splitlines()[1] and "total" in table.splitlines()[2]


def test_shape_cli_counts_total_parameters_on_request(capsys):
    result = json.loads(run_cli(capsys, "--shape", 1.24e8, "--shape-convention", "total", "--vocab", 50257,
                                "--n-ctx", 1024, "--json")[1])
    best = result["shapes"][0]
    assert result["params_convention"] == "total" and abs(best["N_total"] / 1.24e8 - 1) < 0.05
    assert best["N"] < best["N_total"]
    assert "total parameters" in run_cli(capsys, "--shape", 1.24e8, "--shape-convention", "total")[1]


# --- warnings past the data ---------------------------------------------------------------------------

def test_kaplan_warns_past_its_breakdown_c_star(capsys):
    def warnings(C, *extra):
        result = json.loads(run_cli(capsys, "--compute", C, "--json", *extra)[1])
        return {name: e["warnings"] for name, e in result["laws"].items()}

    c_star = 1e4 * PF_DAY  # section 6.3, in C_min; C = 2·C_min at the critical batch
    assert warnings(1.9 * c_star) == {"kaplan": [], "chinchilla": [], "epoch": []}
    past = warnings(2.1 * c_star)
    assert "section 6.3" in past["kaplan"][0] and not past["chinchilla"]
    assert warnings(1.1 * c_star, "--batch-regime", "small")["kaplan"]
    beyond = warnings(6e24)  # 10x Gopher's 5.76e23 FLOPs
    assert all("5.76e+23" in beyond[name][0] for name in ("chinchilla", "epoch"))
    assert "warning (kaplan): extrapolating" in run_cli(capsys, "--compute", 2.1 * c_star)[1]


def test_a_fit_warns_past_ten_times_its_fit_range(tmp_path, capsys):
    def warnings(fit_range, C):
        path = fits_with(tmp_path, fit_range=fit_range)
        result = json.loads(run_cli(capsys, "--fit", path, "--compute", C, "--json")[1])
        return result["laws"]["fit:chinchilla"]["warnings"]

    assert warnings({"C": [1e15, 1e18]}, 9e18) == []
    assert "fit_range" in warnings({"C": [1e15, 1e18]}, 1.1e19)[0]
    # the top of C rules where there is one, N and D only without it
    assert warnings({"C": [1e15, 1e18], "N": [1e5, 1e6]}, 9e18) == []
    N_opt, D_opt = laws.chinchilla_optimal(1e20, **FIT)
    assert warnings({"N": [1e5, N_opt / 9]}, 1e20) == []
    assert "N = " in warnings({"N": [1e5, N_opt / 11]}, 1e20)[0]
    assert "D = " in warnings({"N": [1e5, N_opt], "D": [1e6, D_opt / 11]}, 1e20)[0]


# --- cost --------------------------------------------------------------------------------------------

def test_gpu_hours_from_device_peak_and_mfu(capsys):
    result = json.loads(run_cli(capsys, "--compute", 1e23, "--device", "h100", "--mfu", 0.4, "--json")[1])
    hours = 1e23 / (989e12 * 0.4) / 3600
    for entry in result["laws"].values():
        assert entry["gpu_hours"] == pytest.approx(hours)
    assert "H100" in result["throughput"]["source"]
    code, out, _ = run_cli(capsys, "--compute", 1e23, "--peak", 1e15, "--mfu", 0.5)
    assert code == 0 and f"{1e23 / 5e14 / 3600:,.0f}" in out


def test_gpu_hours_from_measured_throughput(tmp_path, capsys):
    for name, N, rate in (("small", 1e6, 1e5), ("large", 4e6, 5e4)):
        (tmp_path / name).mkdir()
        summary = {"run_name": name, "N": N, "tokens_per_s": rate, "world_size": 2, "device": "cpu"}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    throughput = plan.measured_throughput(tmp_path)
    assert throughput.flops_per_s == pytest.approx(6 * 4e6 * 5e4 / 2) and "large" in throughput.source
    result = json.loads(run_cli(capsys, "--params", 1e9, "--tokens", 2e10, "--runs", tmp_path, "--json")[1])
    assert result["laws"]["kaplan"]["gpu_hours"] == pytest.approx(6 * 1e9 * 2e10 / throughput.flops_per_s / 3600)
    code, _, err = run_cli(capsys, "--compute", 1e20, "--runs", tmp_path / "empty")
    assert code != 0 and "tokens_per_s" in err


def test_a_fit_in_another_tokenizers_units_is_refused_unless_told(tmp_path, capsys):
    payload = {"schema_version": 2, "tokenizer": "byte", "laws": {"chinchilla": FIT}}
    path = write_fits(tmp_path, payload)
    code, _, err = run_cli(capsys, "--fit", path, "--target-loss", 2.5)
    assert code == 2 and "--loss-tokenizer byte" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "--fit", path, "--compute", 1e20, "--loss-tokenizer", "gpt2")
    assert code == 2 and "nats per byte token, the question in nats per gpt2 token" in err
    code, out, _ = run_cli(capsys, "--fit", path, "--target-loss", 2.5, "--loss-tokenizer", "byte")
    assert code == 0 and "fit:chinchilla: loss in nats per byte token (the fit's tokenizer)." in out
    assert run_cli(capsys, "--fit", path, "--target-loss", 2.5, "--loss-tokenizer", "gpt2",
                   "--allow-other-units")[0] == 0
    assert run_cli(capsys, "--fit", path, "--compute", 1e20)[0] == 0  # the answer is in the fit's units, named
