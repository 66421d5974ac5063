"""The hyperparameter laws' forms and a reader of their fitted constants, for analysis (which fits them,
analysis/hparams.py), training (`optim.lr=fitted`) and the planner: pure formulas, no fitting.

A law gives an optimal peak LR or batch size as a power law of N (non-embedding parameters, or as the fitted
grid counts them), D (training tokens) or C = 6·N·D FLOPs; its constants are named as HPARAM_LAWS names them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling_sweep.core import laws
from scaling_sweep.core.errors import UserError


@dataclass(frozen=True)
class HparamLaw:
    target: str  # "lr" or "batch"
    variables: tuple[str, ...]  # of N, D and C = 6·N·D
    coef: str
    exponents: tuple[str, ...]
    form: str
    reference: str
    published: dict


STEPLAW_REF = "Li et al. 2025, Predictable Scale Part I (Step Law), arXiv 2503.04715"
DEEPSEEK_REF = "DeepSeek-AI 2024, DeepSeek LLM, arXiv 2401.02954, sec. 3.1"
HPARAM_LAWS = {
    "eta_ND": HparamLaw("lr", ("N", "D"), "a", ("alpha", "beta"), "eta* = a * N^alpha * D^beta", STEPLAW_REF,
                        laws.STEPLAW["eta_ND"]),
    "B_D": HparamLaw("batch", ("D",), "b", ("gamma",), "B* = b * D^gamma", STEPLAW_REF, laws.STEPLAW["B_D"]),
    "eta_C": HparamLaw("lr", ("C",), "a", ("alpha",), "eta* = a * C^alpha", DEEPSEEK_REF,
                       laws.DEEPSEEK_HPARAMS["eta_C"]),
    "B_C": HparamLaw("batch", ("C",), "b", ("beta",), "B* = b * C^beta", DEEPSEEK_REF,
                     laws.DEEPSEEK_HPARAMS["B_C"]),
}
PREFERRED = {"lr": ("eta_ND", "eta_C"), "batch": ("B_D", "B_C")}  # which law answers first


def design(law: HparamLaw, N, D) -> np.ndarray:
    """(n, 1 + k) columns 1, log x_1, ... of the law's variables."""
    N, D = np.atleast_1d(np.asarray(N, float)), np.atleast_1d(np.asarray(D, float))
    logs = {"N": np.log(N), "D": np.log(D), "C": np.log(6.0 * N * D)}
    return np.column_stack([np.ones_like(logs["N"])] + [logs[v] for v in law.variables])


def theta(law: HparamLaw, params: dict) -> np.ndarray:
    """(..., 1 + k): log coef and the exponents, from constants that are floats or arrays of samples."""
    return np.stack([np.log(params[law.coef])] + [np.asarray(params[e], float) for e in law.exponents], -1)


def law_value(key: str, params: dict, N, D) -> np.ndarray:
    """The optimum a law with constants `params` gives at (N, D)."""
    law = HPARAM_LAWS[key]
    return np.exp(design(law, N, D) @ theta(law, params))


def optimal_hparams(fits: dict, N: float, D: float, targets=("lr", "batch")) -> tuple[float | None, float | None, str]:
    """The optimal peak LR and batch size (in the fitted grid's batch unit) at (N, D) from a fits.json's
    "hparams" entry: Step Law's eta*(N, D) and B*(D) where fitted, else DeepSeek's eta*(C) and B*(C); the
    third value names the laws and the grid they came from. Only `targets` are looked up (None for the
    other); UserError where the entry has no law for one of them."""
    entry = fits.get("hparams")
    if not entry:
        raise UserError("the fits file has no 'hparams' entry (made by analyze --hparams)")
    chosen = {}
    for target in targets:
        keys = PREFERRED[target]
        key = next((k for k in keys if k in entry.get("laws", {})), None)
        if key is None:
            raise UserError(f"no fitted law for the optimal {target} ({' or '.join(keys)}); "
                            f"skipped: {entry.get('skipped', {}).get(keys[0], 'not fitted')}")
        law = HPARAM_LAWS[key]
        params = {name: entry["laws"][key][name] for name in (law.coef,) + law.exponents}
        chosen[target] = (float(law_value(key, params, N, D)[0]), key)
    laws = " and ".join(chosen[t][1] for t in targets)
    source = f"{laws} fitted to {entry['source']}" + (f" (batch in {entry['batch_unit']})" if "batch" in chosen else "")
    return (*(chosen[t][0] if t in chosen else None for t in ("lr", "batch")), source)
