"""report.md of hand-made analyses and analysed synthetic sweeps: units, conventions, checks, what was reproduced."""

from functools import partial

import numpy as np

from scaling_sweep.analysis import conventions, fit, report
from scaling_sweep.analysis.analyze import Analysis
from scaling_sweep.analysis.conventions import Convention
from scaling_sweep.core import laws

SETTING = {"tokenizer": "byte", "n_ctx": 128}


def size_and_compute_analysis(convention=conventions.HEADLINE, alpha_N=0.1, seed=0) -> Analysis:
    """L(N) on 7 sizes (with its rolling check) and fixed-batch L(C) on 5 runs' frontier points."""
    rng = np.random.default_rng(seed)
    result = Analysis("hand", SETTING, convention=convention)
    N = np.geomspace(1e5, 1e7, 7)
    loss = laws.loss_n(N, 1e10, alpha_N) * np.exp(0.01 * rng.standard_normal(7))
    result.attempt("L_N", lambda: fit.fit_power_law(N, loss, "N", n_boot=200), data=([N], loss),
                   rolling=partial(fit.fit_power_law, var="N"))
    C = np.geomspace(1e12, 1e16, 20)
    loss_C = laws.loss_cmin(C, 1e20, 0.06) * np.exp(0.01 * rng.standard_normal(20))
    result.attempt("L_C", lambda: fit.fit_power_law(C, loss_C, "C", n_boot=200, groups=np.arange(20) // 4,
                                                    law="L_C"), data=([C], loss_C))
    return result


def test_units_name_the_convention_fitted():
    result = size_and_compute_analysis(Convention("total", "exact"))
    rows = "\n".join(report.constants_rows(result))
    assert "| L_N | N_c |" in rows and "| total parameters | Kaplan 8.8e+13 |" in rows
    assert "| FLOPs (exact count) | Kaplan, fixed batch 1.382e+27 |" in rows  # L_C beside eq. 3.3's constants
    text = report.markdown(result, [], [])
    assert "headline convention **total/exact**: N = all parameters" in text
    assert "intervals: wild cluster bootstrap-t over 5 independent groups" in text


def test_convention_table_has_a_column_per_convention_and_the_published_values():
    headline = size_and_compute_analysis()
    headline.by_convention = {c.key: headline if c == headline.convention else
                              size_and_compute_analysis(c, alpha_N=0.12, seed=i) for i, c in enumerate(conventions.ALL)}
    del headline.by_convention["total/exact"].fits["L_N"]
    rows = report.convention_rows(headline)
    assert rows[0].startswith("| exponent | non_embedding/6N (headline) | non_embedding/exact | total/6N "
                              "| total/exact |")
    alpha_N = next(r for r in rows if r.startswith("| α_N"))
    assert alpha_N.endswith("| – | Kaplan 0.076 |")
    assert f"{headline.fits['L_N'].params['alpha_N']:.3g} [" in alpha_N
    assert any(r.startswith("| α_C of L(C) at a fixed batch, eq. 3.3") for r in rows)  # no B_crit fit
    assert next(r for r in rows if r.startswith("| Chinchilla α")).endswith("| Chinchilla 0.3392; Epoch 0.3478 |")


def test_goodness_and_rolling_tables():
    result = size_and_compute_analysis()
    goodness = report.goodness_rows(result)
    assert goodness[2] == f"| L_N | loss | 7 | {result.fits['L_N'].extra['goodness']['rmse_log']:.3g} |"
    (rolling,) = report.rolling_rows(result)[2:]
    steps = result.fits["L_N"].extra["rolling"]
    assert rolling.startswith("| L_N | N (non-embedding parameters) | ") and rolling.count("→") == len(steps) == 4
    text = report.markdown(result, [], [])
    assert "## Goodness of fit" in text and "## Rolling prediction" in text
    assert "## Headline exponents under every convention" not in text  # no by_convention: no table


def power_fit(error=0.004, ci=(0.08, 0.12), **extra) -> fit.Fit:
    held_out = {"mean_abs_rel_error": error} if error is not None else {"skipped": "too few sizes"}
    return fit.Fit("L_N", {"N_c": 1e10, "alpha_N": 0.1}, {"alpha_N": ci}, 6, extra={"held_out": held_out, **extra})


def test_a_law_holds_when_its_held_out_error_is_small_and_its_exponents_determined():
    assert report.verdict(power_fit())[0] == "holds"
    assert report.verdict(power_fit(error=0.02)) == ("does not hold", ["held-out error 2% > 1%"])
    assert report.verdict(power_fit(ci=(-0.01, 0.2)))[1][-1] == "alpha_N's interval includes 0"
    assert report.verdict(power_fit(ci=(0.05, np.inf)))[0] == "does not hold"
    assert report.verdict(power_fit(floor_vanished=True))[0] == "does not hold"
    assert report.verdict(power_fit(error=None)) == ("not tested", ["no held-out check: too few sizes"])


def exponent_fit(value, ci, law="chinchilla", name="alpha", **extra) -> fit.Fit:
    return fit.Fit(law, {name: value}, {name: ci}, 20, extra={"held_out": {"mean_abs_rel_error": 0.004}, **extra})


def test_each_exponent_is_compared_with_the_published_one_in_the_papers_convention():
    headline = Analysis("hand", SETTING)
    total = Analysis("hand", SETTING, convention=Convention("total", "6N"))
    headline.by_convention = {"non_embedding/6N": headline, "total/6N": total}
    headline.fits["chinchilla"] = exponent_fit(0.2, (0.1, 0.3))  # non-embedding N: not the one compared
    total.fits["chinchilla"] = exponent_fit(0.5, (0.36, 0.6))
    headline.fits["N_opt"] = exponent_fit(0.7, (0.6, 0.8), law="N_opt", name="exponent")
    total.fits["N_opt"] = exponent_fit(0.45, (0.3, 0.6), law="N_opt", name="exponent")
    assert report.against_papers(headline, "chinchilla", headline.fits["chinchilla"]) == [
        "alpha = 0.5 [0.36, 0.6] (total/6N): above Chinchilla's 0.3392, above Epoch's 0.3478"]
    assert report.against_papers(headline, "N_opt", headline.fits["N_opt"]) == [
        "exponent = 0.7 [0.6, 0.8] (non_embedding/6N): contains Kaplan's 0.73",
        "exponent = 0.45 [0.3, 0.6] (total/6N): contains Chinchilla's 0.5"]
    total.fits["N_opt"] = exponent_fit(0.3, (0.2, 0.4), law="N_opt", name="exponent")
    assert report.against_papers(headline, "N_opt", headline.fits["N_opt"])[1].endswith("below Chinchilla's 0.5")
    line = report._reproduced_line(headline, "N_opt", headline.fits["N_opt"])
    assert "held out: **holds** (held-out error 0.4% ≤ 20%); against the papers: exponent = 0.7" in line


def test_curve_profile_and_fixed_batch_laws_carry_their_caveat_in_the_verdict():
    result = size_and_compute_analysis()  # L_C on a fixed batch, no B_crit fit
    assert "(caveat: fixed batch: no B_crit fit, so its C is not Kaplan's C_min" in report._reproduced_line(
        result, "L_C", result.fits["L_C"])
    curve = exponent_fit(0.4, (0.3, 0.5), caveat="curve profiles")
    line = report._reproduced_line(result, "chinchilla", curve)
    assert "held out: **excluded from the verdict**" in line and "against the papers" not in line


def test_a_sweep_isoflop_only_as_trained_says_so_under_the_convention_table():
    from scaling_sweep.analysis import points

    headline = size_and_compute_analysis()
    total = size_and_compute_analysis(Convention("total", "6N"))
    profile = {"C_each": np.array([1e12, 1.3e12, 1.6e12]), "N": np.arange(3.0)}
    headline.data["isoflop"] = {"profiles": [{**profile, "C_each": np.full(3, 1e12)}], "source": "budgets"}
    total.data["isoflop"] = {"profiles": [profile], "source": "budgets"}
    headline.by_convention = {"non_embedding/6N": headline, "total/6N": total}
    (line,) = [x for x in report.markdown(headline, [], []).splitlines() if x.startswith("IsoFLOP only as trained")]
    assert "differs by up to 1.6x as total/6N;" in line and "non_embedding/6N" not in line.split("differs")[1]
    total.data["isoflop"]["source"] = points.CURVE_PROFILES  # read at one C each: no such line
    assert "IsoFLOP only as trained" not in report.markdown(headline, [], [])
