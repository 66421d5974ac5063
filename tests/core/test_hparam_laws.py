"""core.hparam_laws: the laws' formulas with their constants as named, and optimal_hparams' refusals."""

import pytest

from scaling_sweep.core import laws
from scaling_sweep.core.errors import UserError
from scaling_sweep.core.hparam_laws import law_value, optimal_hparams


def test_each_law_is_its_power_law_of_n_d_or_c_6nd():
    N, D = 3e8, 6e9
    step, deepseek = laws.STEPLAW, laws.DEEPSEEK_HPARAMS
    assert law_value("eta_ND", step["eta_ND"], N, D)[0] == pytest.approx(1.79 * N ** -0.713 * D ** 0.307)
    assert law_value("B_D", step["B_D"], N, D)[0] == pytest.approx(0.58 * D ** 0.571)
    assert law_value("eta_C", deepseek["eta_C"], N, D)[0] == pytest.approx(0.3118 * (6 * N * D) ** -0.125)
    assert law_value("B_C", deepseek["B_C"], N, D)[0] == pytest.approx(0.2920 * (6 * N * D) ** 0.3271)


def test_optimal_hparams_says_what_a_fits_file_lacks():
    with pytest.raises(UserError, match="no 'hparams' entry"):
        optimal_hparams({"laws": {}}, 1e8, 2e9)
    fits = {"hparams": {"laws": {"eta_C": {"a": 0.3, "alpha": -0.1}}, "skipped": {"B_D": "2 cells, need 3"}}}
    with pytest.raises(UserError, match=r"no fitted law for the optimal batch \(B_D or B_C\); skipped: 2 cells"):
        optimal_hparams(fits, 1e8, 2e9)
    fits["hparams"]["source"] = "grid.csv"  # the LR alone needs no batch law
    lr, batch, source = optimal_hparams(fits, 1e8, 2e9, targets=("lr",))
    assert lr == pytest.approx(0.3 * (6 * 1e8 * 2e9) ** -0.1) and batch is None and source == "eta_C fitted to grid.csv"
