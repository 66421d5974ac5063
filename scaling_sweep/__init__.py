"""scaling-sweep: train a grid of GPTs, fit Kaplan's and Chinchilla's scaling laws, plan a budget.

The fitters, the laws and the planner are importable from here for notebooks; they load on first
use and never import torch:

    from scaling_sweep import fit_power_law
    fit = fit_power_law([1e6, 1e7, 1e8], [4.1, 3.5, 3.0], var="N")
    fit.params, fit.ci        # {'N_c': ..., 'alpha_N': ...}, 95% bootstrap intervals
"""

from importlib import import_module

_API = {
    "fit_power_law": "scaling_sweep.analysis.fit",
    "fit_chinchilla": "scaling_sweep.analysis.fit",
    "fit_kaplan_nd": "scaling_sweep.analysis.fit",
    "Fit": "scaling_sweep.analysis.fit",
    "FitError": "scaling_sweep.analysis.fit",
    "laws": "scaling_sweep.core.laws",
    "plan_compute": "scaling_sweep.planning.plan",
    "read_fits": "scaling_sweep.planning.plan",
    "PUBLISHED_LAWS": "scaling_sweep.planning.plan",
    "read_sweep": "scaling_sweep.analysis.runs",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'scaling_sweep' has no attribute {name!r}")
    module = import_module(_API[name])
    return module if name == "laws" else getattr(module, name)
