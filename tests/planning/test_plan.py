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
    ci = {k: [0.95 * v, 1.05 * v] for k, v in FIT.items()}
    return {"schema_version": 1, "laws": {"chinchilla": {**FIT, "ci": ci, "ci_level": 0.95, "n_points": 40},
                                          "L_N": {"N_c": 1e13, "alpha_N": 0.07, "ci": {}}}}


# --- loss predictions and allocations --------------------------------------------------------

def test_gpt3_check_under_kaplan_with_chinchilla_beside_it(capsys):
    code, out, _ = run_cli(capsys, "--params", 1.75e11, "--tokens", 3e11, "--law", "kaplan")
    assert code == 0 and "1.7323" in out and "nats/token" in out
    result = json.loads(run_cli(capsys, "--params", 1.75e11, "--tokens", 3e11, "--json")[1])
    assert result["laws"]["kaplan"]["loss"] == pytest.approx(1.73, abs=0.005)
    assert result["laws"]["chinchilla"]["loss"] == pytest.approx(laws.chinchilla_loss(1.75e11, 3e11, **laws.CHINCHILLA))
    assert {"kaplan", "chinchilla", "epoch"} == set(result["laws"])


@pytest.mark.parametrize("law", PUBLISHED_LAWS.values(), ids=PUBLISHED_LAWS)
def test_allocations_spend_the_budget(law):
    for C in BUDGETS:
        p = plan.compute_optimal(law, C)
        assert p.flops == pytest.approx(C, rel=1e-3)


def test_chinchilla_twenty_tokens_per_parameter_and_epoch_near_it():
    for C in BUDGETS:
        assert plan.compute_optimal(CHINCHILLA, C).as_dict()["tokens_per_param"] == pytest.approx(20.0)
        assert 15 < plan.compute_optimal(EPOCH, C).as_dict()["tokens_per_param"] < 30


def test_kaplan_n_opt_grows_as_c_to_the_0_73():
    N = np.array([plan.compute_optimal(KAPLAN, C).N for C in BUDGETS])
    slope = np.polyfit(np.log(BUDGETS), np.log(N), 1)[0]
    assert slope == pytest.approx(0.73, abs=1e-9)
    assert plan.compute_optimal(KAPLAN, PF_DAY).N == pytest.approx(1.3e9)


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

def test_fitted_law_predicts_with_its_constants_and_a_ci(tmp_path, capsys):
    path = write_fits(tmp_path, fits_payload())
    law = plan.read_fits(path)["chinchilla"]
    assert law.loss(1e8, 2e9) == pytest.approx(laws.chinchilla_loss(1e8, 2e9, **FIT))
    lo, hi = plan.loss_interval(law, 1e8, 2e9)
    assert lo < law.loss(1e8, 2e9) < hi
    assert plan.compute_optimal(law, 1e20).N == pytest.approx(laws.chinchilla_optimal(1e20, **FIT)[0])
    result = json.loads(run_cli(capsys, "--fit", path, "--params", 1e8, "--tokens", 2e9, "--json")[1])
    assert list(result["laws"]) == ["fit:chinchilla"]
    assert result["laws"]["fit:chinchilla"]["loss_ci"] == pytest.approx([lo, hi])


def test_a_fit_warning_travels_into_the_plan(tmp_path, capsys):
    payload = {"schema_version": 1, "laws": {"chinchilla": {**FIT, "ci": {}, "warning": "E -> 0 (1e-90 nats/token)"}}}
    _, out, _ = run_cli(capsys, "--fit", write_fits(tmp_path, payload), "--compute", 1e21)
    assert "fit warning: E -> 0 (1e-90 nats/token)" in out


def test_fit_without_intervals_predicts_without_a_ci(tmp_path):
    fits = {"schema_version": 1, "laws": {"chinchilla": {**FIT, "ci": None}}}
    law = plan.read_fits(write_fits(tmp_path, fits))["chinchilla"]
    assert law.ci == {} and plan.loss_interval(law, 1e8, 2e9) is None


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


@pytest.mark.parametrize("payload, message", [
    ({**fits_payload(), "schema_version": 2}, "schema_version 2"),
    ({k: v for k, v in fits_payload().items() if k != "schema_version"}, "schema_version None"),
    ({"schema_version": 1, "laws": {"L_N": {}}}, "none of the laws"),
    ({"schema_version": 1, "laws": {"chinchilla": {"E": 1.8, "A": 480.0}}}, "lacks the number(s) B, alpha, beta"),
    ({"schema_version": 1, "laws": {"chinchilla": {**FIT, "ci": {"E": 1.8}}}}, "expected [lo, hi]"),
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
