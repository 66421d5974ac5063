"""Budget planner: `python -m scaling_sweep.plan`.

From a compute budget to a model size and shape, a token count, a predicted loss and a cost,
under the published laws (Kaplan et al. 2020, Chinchilla, Epoch AI's replication) or a sweep's
own ``fits.json``. The formulas live in :mod:`scaling_sweep.core.laws` and the counting
conventions in :mod:`scaling_sweep.core.accounting`; this module only combines them.

Conventions: N = parameters in the convention each law was fitted in (Kaplan's: non-embedding;
Chinchilla's and Epoch's: total, embeddings included; a fit's: the one its fits.json states); D = training tokens;
C = 6·N·D FLOPs with that N; loss in nats/token of the law's own data and tokenizer;
1 PF-day = 8.64e19 FLOPs.
"""

from __future__ import annotations

import argparse
import bisect
import inspect
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from scaling_sweep.analysis.runs import SweepError, read_sweep
from scaling_sweep.core import accounting, hardware_peaks, laws
from scaling_sweep.core.config import ModelConfig
from scaling_sweep.core.errors import UserError, entry_point
from scaling_sweep.core.files import strict_json
from scaling_sweep.core.runfiles import SUMMARY_FILE


class PlanError(UserError, ValueError):
    """Input the planner cannot use; the message is one line for the user."""


PARAMS_CONVENTIONS = {"non_embedding": "non-embedding", "total": "total"}  # name -> word for tables
CI_PERCENTILES = (2.5, 97.5)  # a 95% interval over bootstrap samples
EXTRAPOLATION_FACTOR = 10.0  # a fitted law warns this far past the top of its fit_range


@dataclass(frozen=True)
class ExtrapolationLimit:
    """Past C FLOPs (6·N·D) or, where C is None, past N parameters or D tokens, a plan extrapolates
    too far from the law's data; `why` says where the numbers come from."""

    why: str
    C: float | None = None
    N: float | None = None
    D: float | None = None

    def warning(self, N: float, D: float, C: float) -> str | None:
        checks = [("C", C, self.C, "FLOPs")] if self.C is not None else [
            ("N", N, self.N, "parameters"), ("D", D, self.D, "tokens")]
        past = [f"{name} = {value:.3g} {unit} is past {limit:.3g} {unit}"
                for name, value, limit, unit in checks if limit is not None and value > limit]
        return f"extrapolating: {'; '.join(past)} ({self.why})" if past else None


@dataclass(frozen=True)
class Law:
    """A loss formula L(N, D) and an allocation rule C -> (N_opt, D_opt) with their constants,
    the parameter convention they were fitted in, and how far their data reach."""

    name: str
    source: str
    loss_formula: Callable
    loss_params: dict
    allocation: Callable
    allocation_params: dict
    params_convention: str = "non_embedding"  # the N of the constants: a key of PARAMS_CONVENTIONS
    # C -> loss at the end of compute-optimal training, for a law that has its own (Kaplan's
    # L(C_min)); without one, a compute-optimal plan's loss is L(N_opt, D_opt)
    compute_optimal_loss: Callable | None = None
    assumption: str | None = None  # what a compute-optimal plan assumes about the budget
    limit: ExtrapolationLimit | None = None
    # constant -> its bootstrap resamples (aligned arrays), from a fit
    samples: dict = field(default_factory=dict, compare=False)
    # the question its L(N, D) answers: a key of TOKENS_ARE (D tokens seen once, or a dataset of D
    # tokens early-stopped), and in words, with the equations
    answers: str = "seen-once"
    answers_how: str = "D tokens seen once, a single pass"
    tokenizer: str | None = None  # a fit's: its loss is in nats per token of this tokenizer (None: not stated)

    def loss(self, N, D):
        return self.loss_formula(N, D, **self.loss_params)

    def allocate(self, C) -> tuple[float, float]:
        N, D = self.allocation(C, **self.allocation_params)
        return float(N), float(D)

    def at_samples(self) -> Law:
        """This law with every resampled constant an array of its samples (the formulas broadcast)."""
        def resampled(params: dict) -> dict:
            return {**params, **{k: v for k, v in self.samples.items() if k in params}}
        return replace(self, loss_params=resampled(self.loss_params),
                       allocation_params=resampled(self.allocation_params), samples={})

    @property
    def interval(self) -> str:
        if not self.samples:
            return "no interval: the law has no bootstrap samples"
        n = len(next(iter(self.samples.values())))
        return f"95%: the 2.5th and 97.5th percentiles over the fit's {n} bootstrap samples"


# Kaplan's allocation and L(C_min) are in C_min; eq. 5.5 gives C_min = C/(1 + B/B_crit) for a budget
# C spent at batch B. Regime -> B/B_crit, and what it assumes.
BATCH_REGIMES = {
    "critical": (1.0, "the budget C is spent training at the critical batch size, B ≈ B_crit (eq. 1.4), "
                      "so C_min = C/(1 + B/B_crit) = C/2 (eq. 5.5)"),
    "small": (0.0, "the budget C is spent training at a batch B << B_crit, so C_min = C/(1 + B/B_crit) ≈ C "
                   "(eq. 5.5)"),
}
# What D means in the question --params N --tokens D (and --target-loss with --params): tokens trained on
# once, or a dataset of D unique tokens trained on with early stopping (as many passes as help)
TOKENS_ARE = {
    "seen-once": "D tokens seen once, a single pass",
    "a-dataset": "a dataset of D tokens, early-stopped, as many passes as lower the loss",
}
KAPLAN_SOURCE = ("Kaplan et al. 2020: compute-optimal loss L(C_min) = (3.1e8 PF-days/C_min)^0.050 (eq. 1.3, "
                 "Table 5); N_opt = 1.3e9·(C_min/PF-day)^0.73 (eq. 1.7 / 6.1, Table 6); the loss of a given N "
                 "and D: {loss}")
KAPLAN_LOSS = {
    "seen-once": "one pass over D tokens, L(N, S_min) (eq. 1.6, Table 2's constants) after D/B steps at a batch "
                 "{batch} (eq. 1.4), S_min = D/((1 + B/B_crit)·B_crit(L)) (eq. 5.4)",
    "a-dataset": "eq. 1.5 with the eq. 1.1-1.2 constants (Table 5), the loss of a dataset of D tokens trained "
                 "with early stopping",
}


def kaplan_law(batch_regime: str = "critical", tokens_are: str = "seen-once") -> Law:
    """Kaplan et al. 2020 for a budget spent in one of BATCH_REGIMES, its loss of a given N and D
    for the question TOKENS_ARE names: one pass over D tokens at that batch regime (eq. 1.6 with
    eq. 5.4), or a dataset of D tokens early-stopped (eq. 1.5)."""
    if batch_regime not in BATCH_REGIMES:
        raise PlanError(f"batch regime {batch_regime!r}: not one of {', '.join(BATCH_REGIMES)}")
    ratio, assumption = BATCH_REGIMES[batch_regime]
    c_min = "C" if ratio == 0 else f"C/{1 + ratio:g}"
    limit = ExtrapolationLimit(f"Kaplan et al. 2020 section 6.3: the laws break down before C_min reaches "
                               f"C* ≈ 1e4 PF-days, where L(C_min) would cross L(D); here C_min = {c_min}",
                               C=laws.KAPLAN_BREAKDOWN_C_MIN * (1.0 + ratio))
    batch = "B = B_crit(L)" if ratio == 1 else "B << B_crit(L)"
    if tokens_are == "seen-once":
        formula, constants = partial(laws.loss_single_pass, B_over_B_crit=ratio), {**laws.KAPLAN["L_NS"],
                                                                                   **laws.KAPLAN["B_crit"]}
        how = f"{TOKENS_ARE[tokens_are]}: L(N, S_min) at {batch} (eq. 1.6, 5.4; --batch-regime {batch_regime})"
    else:
        formula, constants = laws.loss_nd, laws.KAPLAN["L_ND"]
        how = f"{TOKENS_ARE[tokens_are]}: eq. 1.5"
    source = KAPLAN_SOURCE.format(loss=KAPLAN_LOSS[tokens_are].format(batch=batch))
    return Law("kaplan", source, formula, constants,
               laws.kaplan_optimal, {**laws.KAPLAN["N_opt"], "B_over_B_crit": ratio},
               compute_optimal_loss=partial(laws.kaplan_compute_efficient_loss, **laws.KAPLAN["L_Cmin"],
                                            B_over_B_crit=ratio),
               assumption=assumption, limit=limit, answers=tokens_are, answers_how=how)


# Hoffmann et al. 2022's data reach Gopher's 5.76e23 FLOPs (laws.CHINCHILLA_LARGEST_BUDGET)
CHINCHILLA_LIMIT = ExtrapolationLimit(f"{EXTRAPOLATION_FACTOR:g}x Hoffmann et al. 2022's largest budget, "
                                      f"Gopher's {laws.CHINCHILLA_LARGEST_BUDGET:.3g} FLOPs",
                                      C=EXTRAPOLATION_FACTOR * laws.CHINCHILLA_LARGEST_BUDGET)
# Hoffmann et al. 2022 trained every model on under one epoch of MassiveText (section 3): eq. 2's D is tokens seen
HOFFMANN_ANSWERS = f"{TOKENS_ARE['seen-once']}: eq. 2 (Hoffmann et al.'s runs saw their tokens under once)"
PUBLISHED_LAWS = {
    "kaplan": kaplan_law(),
    "chinchilla": Law("chinchilla", "Hoffmann et al. 2022: loss E + A/N^alpha + B/D^beta (eq. 2, approach 3; "
                      "section 3.3's constants with the unrounded exponents alpha 0.3392, beta 0.2849 of the "
                      "paper's source); 20 tokens per parameter (approaches 1-2)",
                      laws.chinchilla_loss, laws.CHINCHILLA, laws.tokens_per_param_optimal, {},
                      params_convention="total", limit=CHINCHILLA_LIMIT, answers_how=HOFFMANN_ANSWERS),
    "epoch": Law("epoch", "Besiroglu et al. 2024 (Epoch AI): Chinchilla's approach 3 refitted to the data of its "
                 "figure 4; N_opt minimises that loss under C = 6ND",
                 laws.chinchilla_loss, laws.EPOCH_REPLICATION, laws.chinchilla_optimal, laws.EPOCH_REPLICATION,
                 params_convention="total", limit=CHINCHILLA_LIMIT, answers_how=HOFFMANN_ANSWERS),
}

# planner law name -> (key in fits.json, loss formula, allocation at that formula's minimum under C = 6ND).
# A law's constants in fits.json are named as the formula's keyword arguments, and so are its "samples".
FITTED_FORMS = {
    "chinchilla": ("chinchilla", laws.chinchilla_loss, laws.chinchilla_optimal),
    "kaplan": ("L_ND", laws.loss_nd, laws.loss_nd_optimal),
}
# The question a fitted L(N, D) answers (TOKENS_ARE), by what analyze fitted it to
FITTED_ANSWERS = {
    "chinchilla": ("seen-once", f"{TOKENS_ARE['seen-once']}: eq. 2 fitted to the sweep's losses at the tokens "
                                "its runs trained on"),
    "kaplan": ("a-dataset", f"{TOKENS_ARE['a-dataset']}: eq. 1.5 fitted to the early-stopped losses of the sweep's "
                            "data-limited runs, D their unique tokens"),
}
READABLE_FITS_VERSIONS = range(1, laws.FITS_SCHEMA_VERSION + 1)  # version 1: no samples, no fit_range

# Devices with a dense bf16 peak in core.hardware_peaks (vendors' datasheets), by the planner's name.
DEVICE_PEAKS = {name: peak for name, peak in hardware_peaks.DEVICE_PEAKS.items() if peak.bf16}

SEARCH_MAX = 1e40  # upper end (tokens or FLOPs) of the inverse questions' search


# --- laws: published or fitted ---------------------------------------------------------------

def _load_json(path) -> object:
    try:
        return json.loads(Path(path).read_text())
    except OSError as err:
        raise PlanError(f"{path}: cannot read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise PlanError(f"{path}: not JSON ({err})") from None


def read_fits(path, names: list[str] | None = None) -> dict[str, Law]:
    """The laws of a sweep's fits.json, by planner name ("chinchilla", "kaplan"); all it holds
    when names is None. Raises PlanError on a wrong schema_version or a missing law."""
    data = _load_json(path)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_FITS_VERSIONS:
        readable = ", ".join(map(str, READABLE_FITS_VERSIONS))
        raise PlanError(f"{path}: schema_version {version!r}; this planner reads version {readable}")
    fitted = data.get("laws")
    fitted = fitted if isinstance(fitted, dict) else {}
    if names is None:
        names = [name for name, (key, *_) in FITTED_FORMS.items() if key in fitted]
        if not names:
            keys = ", ".join(key for key, *_ in FITTED_FORMS.values())
            raise PlanError(f"{path}: holds none of the laws the planner uses ({keys})")
    params_convention = _fitted_params_convention(path, data)
    tokenizer = data.get("tokenizer") if isinstance(data.get("tokenizer"), str) else None
    return {name: replace(_fitted_law(path, fitted, name, params_convention), tokenizer=tokenizer) for name in names}


def _fitted_params_convention(path, data: dict) -> str:
    """What the N of a fits.json's laws counts: its "convention"'s "params" (analyze --params; with
    --points, what the points file's N counts). Files written before analyze had --params were
    fitted in non-embedding N, its only convention then."""
    convention = data.get("convention")
    params = convention.get("params") if isinstance(convention, dict) else None
    if params in PARAMS_CONVENTIONS:
        return params
    if params is not None:
        raise PlanError(f"{path}: convention.params {params!r} is not one of {', '.join(PARAMS_CONVENTIONS)}")
    if data.get("points_file"):
        raise PlanError(f"{path}: fitted to the points file {data['points_file']} without saying what its N "
                        "counts; re-run analyze --points with --params total or --params non_embedding")
    return "non_embedding"


def _fitted_law(path, fitted: dict, name: str, params_convention: str) -> Law:
    """Law `name` from the "laws" object of a fits.json, its N counted in `params_convention`."""
    key, formula, allocation = FITTED_FORMS[name]
    entry = fitted.get(key)
    if not isinstance(entry, dict):
        has = ", ".join(fitted) or "nothing"
        raise PlanError(f"{path}: no {key!r} law for --law {name} (it has: {has})")
    constants = list(inspect.signature(formula).parameters.values())[2:]  # the constants after (N, D)
    given = [p.name for p in constants if isinstance(entry.get(p.name), (int, float))]
    # a constant with a default (L_inf of Kaplan's forms: 0) is optional; it is used where the fit gives it
    missing = [p.name for p in constants if p.default is inspect.Parameter.empty and p.name not in given]
    if missing:
        raise PlanError(f"{path}: law {key!r} lacks the number(s) {', '.join(missing)}")
    params = {p: float(entry[p]) for p in given}
    # analyze's warning (e.g. a floor fitted to zero) travels with the law into every plan's source line
    warning = f"; fit warning: {entry['warning']}" if entry.get("warning") else ""
    answers, how = FITTED_ANSWERS[name]
    return Law(f"fit:{name}", f"{path} [{key}]{warning}", formula, params, allocation, params, params_convention,
               limit=_fit_limit(path, key, entry.get("fit_range")),
               samples=_samples(path, key, entry.get("samples"), given), answers=answers, answers_how=how)


def _samples(path, key: str, value, constants: list[str]) -> dict[str, np.ndarray]:
    """The bootstrap samples of a law's constants as aligned arrays; {} without any. A constant
    without samples keeps its point estimate."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlanError(f"{path}: law {key!r} has samples of type {type(value).__name__}, "
                        "expected {constant: [values]}")
    try:
        samples = {p: np.asarray(value[p], dtype=float) for p in constants if p in value}
    except (TypeError, ValueError):
        raise PlanError(f"{path}: law {key!r} has samples that are not lists of numbers") from None
    sizes = {s.shape for s in samples.values()}
    if len(sizes) > 1 or any(len(shape) != 1 for shape in sizes):
        raise PlanError(f"{path}: law {key!r}: its samples must be lists of one length")
    return samples if sizes and sizes != {(0,)} else {}


def _fit_limit(path, key: str, fit_range) -> ExtrapolationLimit | None:
    """EXTRAPOLATION_FACTOR past the top of the fit's "C" range or, without one, of its "N" or "D"."""
    if fit_range is None:
        return None
    if not isinstance(fit_range, dict):
        raise PlanError(f"{path}: law {key!r} has fit_range of type {type(fit_range).__name__}, "
                        'expected {"N": [lo, hi], "D": [lo, hi], "C": [lo, hi]}')
    tops = {v: _pair(path, key, f"fit_range.{v}", fit_range[v])[1] for v in ("C", "N", "D") if v in fit_range}
    if "C" in tops:
        tops = {"C": tops["C"]}
    if not tops:
        return None
    return ExtrapolationLimit(f"{EXTRAPOLATION_FACTOR:g}x the top of the fit's {' and '.join(tops)} range "
                              f"(fit_range in {path})", **{v: EXTRAPOLATION_FACTOR * top for v, top in tops.items()})


def _pair(path, key: str, name: str, value) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise PlanError(f"{path}: law {key!r} has {name}={value!r}, expected [lo, hi]") from None
    return lo, hi


def select_laws(spec: str = "all", fit_path=None, batch_regime: str = "critical",
                tokens_are: str = "seen-once") -> dict[str, Law]:
    """Laws named in a comma-separated spec ("all", "kaplan,chinchilla"), published or from a fit;
    Kaplan's published law for a budget spent in batch_regime (BATCH_REGIMES), its L(N, D) for the
    question tokens_are names (TOKENS_ARE)."""
    known = FITTED_FORMS if fit_path else PUBLISHED_LAWS
    names = None if spec == "all" else [n.strip() for n in spec.split(",")]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        source = f"a fit ({fit_path})" if fit_path else "the published laws"
        raise PlanError(f"--law {','.join(unknown)}: not among {source}: {', '.join(known)}")
    if fit_path:
        return read_fits(fit_path, names)
    published = PUBLISHED_LAWS | {"kaplan": kaplan_law(batch_regime, tokens_are)}
    return {name: published[name] for name in names or PUBLISHED_LAWS}


def resolve_law(law: str | Law) -> Law:
    """A Law, or the published law of that name."""
    if isinstance(law, Law):
        return law
    if law not in PUBLISHED_LAWS:
        raise PlanError(f"law {law!r}: not one of {', '.join(PUBLISHED_LAWS)}")
    return PUBLISHED_LAWS[law]


# --- plans and the questions they answer -------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """N parameters (in the law's convention) trained on D tokens, under a law; budget is the C
    (FLOPs) it is the compute-optimal plan for, None for a plan of given N and D."""

    law: Law
    N: float
    D: float
    budget: float | None = None

    @property
    def loss(self) -> float:
        """The law's own compute-optimal loss for a compute-optimal plan where it has one, else L(N, D)."""
        if self.budget is not None and self.law.compute_optimal_loss is not None:
            return float(self.law.compute_optimal_loss(self.budget))
        return float(self.law.loss(self.N, self.D))

    @property
    def flops(self) -> float:
        return accounting.training_flops(self.N, self.D)

    def as_dict(self) -> dict:
        flops = self.flops
        row = {"N": self.N, "params_convention": self.law.params_convention, "D": self.D,
               "tokens_per_param": self.D / self.N, "loss": self.loss, "flops": flops,
               "pf_days": accounting.pf_days(flops)}
        return row | sample_intervals(self)


def compute_optimal(law: Law, compute: float) -> Plan:
    """N_opt by the law's allocation rule; D = C/(6·N_opt), so the plan spends exactly C."""
    return Plan(law, *law.allocate(compute), budget=compute)


def plan_compute(compute: float, law: str | Law = "chinchilla") -> Plan:
    """The compute-optimal plan for a budget of `compute` FLOPs (C = 6·N·D) under a published law
    ("kaplan", "chinchilla", "epoch") or a Law read from a fits.json (read_fits)."""
    if not compute > 0:
        raise PlanError(f"compute={compute}: must be a positive number of FLOPs")
    return compute_optimal(resolve_law(law), compute)


def tokens_to_reach(law: Law, n_params, target_loss: float):
    """Tokens an N-parameter model needs to reach target_loss; inf where the law says it never does."""
    n_params = np.asarray(n_params, dtype=float)
    return _solve_decreasing(lambda D: law.loss(n_params, D), target_loss, 1.0, SEARCH_MAX, n_params.shape)


def tokens_for_loss(law: Law, n_params: float, target_loss: float) -> Plan | None:
    D = float(tokens_to_reach(law, n_params, target_loss))
    return Plan(law, n_params, D) if math.isfinite(D) else None


def compute_for_loss(law: Law, target_loss: float) -> Plan | None:
    """The smallest budget whose compute-optimal plan (the law's allocation) reaches target_loss."""
    C = float(_solve_decreasing(lambda C: compute_optimal(law, float(C)).loss, target_loss, 1.0, SEARCH_MAX))
    return compute_optimal(law, C) if math.isfinite(C) else None


def _solve_decreasing(f: Callable, target: float, lo: float, hi: float, shape=(), iterations: int = 100):
    """x in [lo, hi] where the decreasing f(x) equals target, by bisection on log x (element-wise
    over shape); inf where f(hi) is still above target."""
    a, b = np.full(shape, math.log(lo)), np.full(shape, math.log(hi))
    for _ in range(iterations):
        mid = (a + b) / 2
        above = f(np.exp(mid)) > target
        a, b = np.where(above, mid, a), np.where(above, b, mid)
    return np.where(f(np.full(shape, hi)) > target, np.inf, np.exp(b))


def sample_intervals(plan: Plan) -> dict[str, list[float]]:
    """95% intervals (CI_PERCENTILES) over the law's bootstrap samples: a compute-optimal plan is
    allocated anew under every sample (N_opt_ci, D_opt_ci, loss_ci), a plan of given N and D is
    evaluated at every sample (loss_ci). Empty for a law without samples."""
    if not plan.law.samples:
        return {}
    law = plan.law.at_samples()  # a fitted law: its compute-optimal loss is L(N_opt, D_opt)
    if plan.budget is None:
        intervals = {"loss_ci": _percentiles(law.loss(plan.N, plan.D))}
    else:
        N, D = law.allocation(plan.budget, **law.allocation_params)
        intervals = {"N_opt_ci": _percentiles(N), "D_opt_ci": _percentiles(D), "loss_ci": _percentiles(law.loss(N, D))}
    return {k: v for k, v in intervals.items() if v is not None}


def _percentiles(values) -> list[float] | None:
    """CI_PERCENTILES of the finite values (a resample may put a constant where the formula fails)."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    return [float(x) for x in np.percentile(finite, CI_PERCENTILES)] if finite.size else None


def inference_alternative(plan: Plan, inference_tokens: float | None = None) -> Plan | None:
    """A smaller model trained on more tokens to the L(N, D) of plan's N and D (for Kaplan the loss
    of the question --tokens-are names, which relates N and D; his compute-optimal L(C_min) does
    not). With inference_tokens (tokens served over the model's life) the size minimising
    training + inference FLOPs between N/1000 and N; without, half the plan's N. None where the
    law says that size never reaches the loss."""
    target = float(plan.law.loss(plan.N, plan.D))
    if inference_tokens is None:
        N = plan.N / 2
    else:
        sizes = plan.N * np.logspace(-3, 0, 601)
        tokens = tokens_to_reach(plan.law, sizes, target)
        total = accounting.training_flops(sizes, tokens) + accounting.inference_flops(sizes, inference_tokens)
        N = float(sizes[np.argmin(total)])
    return tokens_for_loss(plan.law, N, target)


# --- model shape ---------------------------------------------------------------------------------

DEFAULT_VOCAB = 50257  # GPT-2's BPE, Kaplan's tokenizer
DEFAULT_N_CTX = 1024  # Kaplan's context


@dataclass(frozen=True)
class Shape:
    n_layer: int
    d_model: int
    n_head: int
    n_ctx: int
    vocab: int
    N: int  # exact non-embedding parameters (accounting.param_counts)
    N_total: int  # every parameter: embeddings and the untied unembedding (ModelConfig's default) too

    def count(self, convention: str) -> int:
        return self.N if convention == "non_embedding" else self.N_total

    @property
    def overrides(self) -> str:
        return (f"model.n_layer={self.n_layer} model.d_model={self.d_model} model.n_head={self.n_head} "
                f"model.n_ctx={self.n_ctx}")

    def as_dict(self, target: float, convention: str) -> dict:
        return {"n_layer": self.n_layer, "d_model": self.d_model, "n_head": self.n_head, "n_ctx": self.n_ctx,
                "vocab": self.vocab, "N": self.N, "N_total": self.N_total, "matched": convention,
                "N_error": self.count(convention) / target - 1, "aspect": self.d_model / self.n_layer,
                "overrides": self.overrides}


def shape_of(n_layer: int, n_head: int, head_dim: int, vocab: int = DEFAULT_VOCAB,
             n_ctx: int = DEFAULT_N_CTX) -> Shape:
    cfg = ModelConfig(n_layer=n_layer, d_model=n_head * head_dim, n_head=n_head, n_ctx=n_ctx, vocab_size=vocab)
    counts = accounting.param_counts(cfg)
    return Shape(n_layer, cfg.d_model, n_head, n_ctx, vocab, counts.non_embedding, counts.total)


def model_shapes(n_params: float, aspect: tuple[float, float] = (64, 128), head_dim: int = 64,
                 count: int = 5, convention: str = "non_embedding", vocab: int = DEFAULT_VOCAB,
                 n_ctx: int = DEFAULT_N_CTX) -> list[Shape]:
    """Shapes whose exact parameter count in `convention` ("non_embedding" or "total", the latter
    with the vocabulary and context given) is nearest n_params, with d_model a multiple of
    head_dim and d_model/n_layer within aspect (Kaplan's fig. 5: loss is flat over a wide range);
    none when even the smallest such shape is over twice n_params."""
    lo, hi = aspect
    if not 0 < lo <= hi or head_dim < 1:
        raise PlanError(f"aspect {lo}-{hi} and head dim {head_dim}: need 0 < lo <= hi and head dim >= 1")
    if vocab < 1 or n_ctx < 1:
        raise PlanError(f"vocab {vocab} and n_ctx {n_ctx}: both must be at least 1")

    def size(n_layer: int, n_head: int) -> int:
        return shape_of(n_layer, n_head, head_dim, vocab, n_ctx).count(convention)

    shapes = []
    for n_layer in itertools.count(1):
        heads = range(max(1, math.ceil(lo * n_layer / head_dim)), math.floor(hi * n_layer / head_dim) + 1)
        if size(n_layer, heads.start) > 2 * n_params:
            break  # the narrowest allowed shape of this depth, and of every deeper one, is too large
        i = bisect.bisect_left(heads, n_params, key=lambda h: size(n_layer, h))
        shapes += [shape_of(n_layer, h, head_dim, vocab, n_ctx) for h in heads[max(i - 1, 0):i + 1]]
    return sorted(shapes, key=lambda s: abs(math.log(s.count(convention) / n_params)))[:count]


# --- cost ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Throughput:
    flops_per_s: float  # 6N FLOP/s sustained by one device
    source: str


def device_throughput(device: str | None, mfu: float, peak: float | None = None) -> Throughput:
    """A device's bf16 dense peak (or an explicit peak FLOP/s) times MFU, counted on 6ND FLOPs."""
    if not 0 < mfu <= 1:
        raise PlanError(f"--mfu {mfu}: must lie in (0, 1]")
    if peak is None:
        if device not in DEVICE_PEAKS:
            raise PlanError(f"--device {device}: unknown; one of {', '.join(DEVICE_PEAKS)} (or give --peak FLOP/s)")
        sheet = DEVICE_PEAKS[device]
        return Throughput(sheet.bf16 * mfu, f"{device} peak {sheet.bf16:.4g} FLOP/s ({sheet.source}) x MFU {mfu:g}")
    return Throughput(peak * mfu, f"peak {peak:.4g} FLOP/s x MFU {mfu:g}")


def measured_throughput(runs_dir) -> Throughput:
    """6N FLOP/s per device measured by the largest run (by N) of a sweep folder."""

    try:
        sweep = read_sweep(runs_dir)
    except SweepError as err:
        raise PlanError(f"--runs: {err} (it needs run folders whose summaries have a measured tokens_per_s)") from None
    measured = [r.summary for r in sweep.runs if r.summary and r.summary.tokens_per_s and r.summary.N]
    if not measured:
        raise PlanError(f"{runs_dir}: no run's {SUMMARY_FILE} has a measured tokens_per_s")
    run = max(measured, key=lambda s: s.N)
    flops_per_s = accounting.training_flops(run.N, run.tokens_per_s) / run.world_size
    return Throughput(flops_per_s, f"measured by run {run.run_name} (N = {run.N:.3g}, "
                                   f"{run.device}): {flops_per_s:.3g} FLOP/s (6N) per device")


def device_hours(flops: float, throughput: Throughput) -> float:
    return flops / throughput.flops_per_s / 3600.0


# --- command line --------------------------------------------------------------------------------

COMPUTE_UNITS = {"": 1.0, "flop": 1.0, "pfday": accounting.PF_DAY}
CI = "95% interval: [2.5th, 97.5th percentile] over the fit's bootstrap samples"
UNITS = {"N": "parameters in the law's own convention, params_convention: non_embedding or total",
         "D": "training tokens", "loss": "nats/token of the law's own data and tokenizer",
         "N_opt_ci": f"parameters, {CI}", "D_opt_ci": f"tokens, {CI}", "loss_ci": f"nats/token, {CI}",
         "tokens_per_param": "D/N", "flops": "FLOPs, 6*N*D with the law's N",
         "extra_training_flops": "FLOPs, 6*N*D", "inference_flops_saved": "FLOPs, 2*N per token served",
         "pf_days": "PF-days, 8.64e19 FLOPs each", "gpu_hours": "device-hours",
         "shape.N": "exact non-embedding parameters", "shape.N_total": "exact parameters, embeddings included"}
CONVENTIONS = ("N: parameters in each law's own convention (column \"N is\": non-embedding for Kaplan, "
               "total with embeddings for Chinchilla and Epoch, a sweep's fit as its fits.json states). "
               "D: training tokens. C = 6·N·D FLOPs with that N; 1 PF-day = 8.64e19 FLOPs. "
               "Loss: nats/token on each law's own data and tokenizer (compare allocations across laws, "
               "not absolute losses).")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise PlanError(message)


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def parse_compute(text: str) -> float:
    """'1e21', '1e21 FLOPs', '1e3 PF-days' -> FLOPs."""
    match = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([A-Za-z_-]*)\s*", text)
    if not match:
        raise PlanError(f"--compute {text!r}: expected a number and an optional unit (FLOPs or PF-days)")
    unit = match[2].lower().replace("-", "").replace("_", "").removesuffix("s")
    if unit not in COMPUTE_UNITS:
        raise PlanError(f"--compute {text!r}: unknown unit {match[2]!r}; use FLOPs or PF-days")
    try:
        value = positive(match[1])
    except argparse.ArgumentTypeError as err:
        raise PlanError(f"--compute: {err}") from None
    return value * COMPUTE_UNITS[unit]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m scaling_sweep.plan", description=__doc__.split("\n\n")[1],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    q = p.add_argument_group("the question (one of)")
    q.add_argument("--compute", nargs="+", metavar="C",
                   help="compute-optimal plan for a budget: FLOPs, or '1e3 PF-days'")
    q.add_argument("--params", type=positive, metavar="N",
                   help="parameters, read in each law's own convention (with --tokens or --target-loss)")
    q.add_argument("--tokens", type=positive, metavar="D", help="training tokens: with --params, predict the loss")
    q.add_argument("--tokens-are", choices=TOKENS_ARE, default="seen-once",
                   help="what --tokens D is: seen-once (default), D tokens trained on once, a single pass: Kaplan's "
                        "L(N, S_min) at the --batch-regime (eq. 1.6 with 5.4); or a-dataset, a dataset of D tokens "
                        "trained on with early stopping (many passes if they help): Kaplan's eq. 1.5")
    q.add_argument("--target-loss", type=positive, metavar="L",
                   help="nats/token: tokens needed at --params, or (alone) the smallest compute")
    q.add_argument("--shape", type=positive, metavar="N", help="model shapes for N parameters (--shape-convention)")
    g = p.add_argument_group("laws")
    g.add_argument("--law", default="all",
                   help="all, or a comma-separated list: kaplan, chinchilla, epoch (default all)")
    g.add_argument("--fit", metavar="FITS_JSON",
                   help="use a sweep's runs/<sweep>/analysis/fits.json instead of the published laws")
    g.add_argument("--loss-tokenizer", metavar="NAME",
                   help="with --fit: the tokenizer whose nats/token --target-loss (and the answer) is in; a fit of "
                        "another tokenizer is refused (needed with --target-loss)")
    g.add_argument("--allow-other-units", action="store_true",
                   help="with --fit: plan even where the fit's tokenizer is not --loss-tokenizer")
    g.add_argument("--batch-regime", choices=BATCH_REGIMES, default="critical",
                   help="Kaplan: the batch the budget (or the single pass over --tokens) is spent at: critical "
                        "(B ≈ B_crit, C = 2·C_min; default) or small (B << B_crit, C ≈ C_min)")
    c = p.add_argument_group("cost")
    c.add_argument("--device", help=f"device for GPU-hours: {', '.join(DEVICE_PEAKS)}")
    c.add_argument("--peak", type=positive, metavar="FLOP/S", help="device peak FLOP/s instead of --device")
    c.add_argument("--mfu", type=positive, default=0.4, help="model FLOPs utilisation on 6ND FLOPs (default 0.4)")
    c.add_argument("--runs", metavar="SWEEP_DIR", help="use the throughput measured in a sweep's runs instead")
    c.add_argument("--inference-tokens", type=positive, metavar="T",
                   help="tokens served over the model's life: size the inference-optimal alternative for them")
    s = p.add_argument_group("shape")
    s.add_argument("--aspect", type=positive, nargs=2, default=(64, 128), metavar=("LO", "HI"),
                   help="d_model/n_layer range (default 64 128)")
    s.add_argument("--head-dim", type=int, default=64, help="d_model/n_head (default 64)")
    s.add_argument("--shape-convention", choices=PARAMS_CONVENTIONS, default="non_embedding",
                   help="what --shape N counts: non_embedding (Kaplan's N, default) or total (embeddings included)")
    s.add_argument("--vocab", type=int, default=DEFAULT_VOCAB,
                   help=f"vocabulary of the total counts (default {DEFAULT_VOCAB}, GPT-2's BPE)")
    s.add_argument("--n-ctx", type=int, default=DEFAULT_N_CTX,
                   help=f"context of the total counts and of the shapes' overrides (default {DEFAULT_N_CTX})")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    return p


USAGE = "ask one question: --compute C | --params N --tokens D | --target-loss L [--params N] | --shape N"


def question(args) -> str:
    asked = [kind for kind, value in (("compute_optimal", args.compute), ("predict_loss", args.tokens),
                                      ("target", args.target_loss), ("shape", args.shape)) if value is not None]
    with_params = args.params is not None
    if len(asked) != 1 or (asked[0] == "predict_loss" and not with_params) or (
            with_params and asked[0] not in ("predict_loss", "target")):
        raise PlanError(USAGE)
    if asked[0] == "target":
        return "tokens_for_loss" if with_params else "compute_for_loss"
    return asked[0]


def throughput_from(args) -> Throughput | None:
    if args.runs:
        return measured_throughput(args.runs)
    if args.device or args.peak:
        return device_throughput(args.device, args.mfu, args.peak)
    return None


def answer(args) -> dict:
    """The answer to the question args ask, as a JSON-ready dict."""
    kind = question(args)
    if kind == "shape":
        shapes = _shapes(args.shape, args.shape_convention, args)
        if not shapes:
            raise PlanError(f"--shape {args.shape:.3g}: no shape with head dim {args.head_dim} and d_model/n_layer "
                            f"in {args.aspect[0]:g}-{args.aspect[1]:g} is that small; lower --head-dim or --aspect")
        return {"question": kind, "N_target": args.shape, "params_convention": args.shape_convention,
                "shapes": [s.as_dict(args.shape, args.shape_convention) for s in shapes]}
    chosen = select_laws(args.law, args.fit, args.batch_regime, args.tokens_are)
    check_units(chosen, args)
    throughput = throughput_from(args)
    compute = parse_compute(" ".join(args.compute)) if args.compute else None
    inputs = {"compute_flops": compute, "N": args.params, "D": args.tokens, "target_loss": args.target_loss}
    result = {"question": kind, "inputs": {k: v for k, v in inputs.items() if v is not None}, "units": UNITS,
              "laws": {}}
    for law in chosen.values():
        plan = _plan(kind, law, args, compute)
        result["laws"][law.name] = _law_entry(plan, args, throughput) | _law_notes(law, plan, kind, args.tokens_are)
    if throughput:
        result["throughput"] = {"flops_per_s": throughput.flops_per_s, "source": throughput.source}
    return result


def check_units(chosen: dict[str, Law], args) -> None:
    """A fit's losses are in nats per token of its sweep's tokenizer, and those of different
    tokenizers do not compare: refuse a fit whose tokenizer is not the question's (--loss-tokenizer;
    with --target-loss it must be stated) unless --allow-other-units."""
    if args.allow_other_units:
        return
    for law in chosen.values():
        if law.tokenizer is None or args.loss_tokenizer == law.tokenizer:
            continue
        if args.loss_tokenizer is not None:
            raise PlanError(f"{law.name} is in nats per {law.tokenizer} token, the question in nats per "
                            f"{args.loss_tokenizer} token: losses of different tokenizers do not compare "
                            "(--allow-other-units to plan anyway)")
        if args.target_loss is not None:
            raise PlanError(f"--target-loss {args.target_loss:g}: {law.name} is in nats per {law.tokenizer} token; "
                            f"say the target's units with --loss-tokenizer {law.tokenizer} (or --allow-other-units)")


def _plan(kind: str, law: Law, args, compute: float | None) -> Plan | None:
    if kind == "compute_optimal":
        return compute_optimal(law, compute)
    if kind == "predict_loss":
        return Plan(law, args.params, args.tokens)
    if kind == "tokens_for_loss":
        return tokens_for_loss(law, args.params, args.target_loss)
    return compute_for_loss(law, args.target_loss)


def _law_entry(plan: Plan | None, args, throughput: Throughput | None) -> dict:
    if plan is None:
        return {"N": args.params, "D": None, "loss": None, "flops": None, "reachable": False}
    entry = plan.as_dict()
    if throughput:
        entry["gpu_hours"] = device_hours(plan.flops, throughput)
    if plan.budget is not None:
        convention = plan.law.params_convention
        shapes = _shapes(plan.N, convention, args, count=1)
        entry["shape"] = shapes[0].as_dict(plan.N, convention) if shapes else None
        alternative = inference_alternative(plan, args.inference_tokens)
        entry["inference_alternative"] = _alternative_entry(plan, alternative, args.inference_tokens, throughput)
    return entry


GIVEN_N_AND_D = ("predict_loss", "tokens_for_loss")  # the questions whose D the user states


def _law_notes(law: Law, plan: Plan | None, kind: str, tokens_are: str) -> dict:
    """What the entry rests on: the law's source, its parameter convention, its interval, the
    assumption a compute-optimal plan makes, the question its L(N, D) answers, and any warning
    (one where that is not the question asked)."""
    notes = {"params_convention": law.params_convention, "source": law.source, "interval": law.interval}
    if law.tokenizer:
        notes["loss_units"] = f"nats per {law.tokenizer} token (the fit's tokenizer)"
    if law.assumption and plan and plan.budget is not None:
        notes["assumption"] = law.assumption
    warnings = [law.limit.warning(plan.N, plan.D, plan.flops) if law.limit and plan else None]
    if kind in GIVEN_N_AND_D:
        notes["answers"] = law.answers_how
        if law.answers != tokens_are:
            bound = "upper" if law.answers == "seen-once" else "lower"  # more passes, early-stopped, only help
            warnings.append(f"its loss answers {TOKENS_ARE[law.answers]}, not the question asked "
                            f"({TOKENS_ARE[tokens_are]}, --tokens-are {tokens_are}): for that, a {bound} bound")
    return notes | {"warnings": [w for w in warnings if w]}


def _shapes(n_params: float, convention: str, args, count: int = 5) -> list[Shape]:
    return model_shapes(n_params, tuple(args.aspect), args.head_dim, count, convention, args.vocab, args.n_ctx)


def _alternative_entry(plan: Plan, alternative: Plan | None, inference_tokens, throughput) -> dict | None:
    if alternative is None:
        return None
    entry = alternative.as_dict() | {"extra_training_flops": alternative.flops - plan.flops}
    if inference_tokens:
        entry["inference_flops_saved"] = accounting.inference_flops(plan.N - alternative.N, inference_tokens)
    if throughput:
        entry["gpu_hours"] = device_hours(alternative.flops, throughput)
    return entry


# --- rendering -----------------------------------------------------------------------------------

HEADINGS = {
    "compute_optimal": "Compute-optimal plans for C = {compute_flops:.4g} FLOPs ({pf_days:.4g} PF-days)",
    "predict_loss": "Predicted loss of N = {N:.4g} parameters (each law's convention) trained on D = {D:.4g} tokens "
                    "({tokens_are})",
    "tokens_for_loss": "Tokens for N = {N:.4g} parameters (each law's convention) to reach {target_loss:g} nats/token "
                       "({tokens_are})",
    "compute_for_loss": "Smallest compute whose compute-optimal plan reaches {target_loss:g} nats/token",
}


def _num(value, fmt: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, fmt)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = [headers] + [row + [""] * (len(headers) - len(row)) for row in rows]
    widths = [max(len(x) for x in column) for column in zip(*lines)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in lines)


def _with_interval(value, interval, fmt: str) -> str:
    return _num(value, fmt) + (f" [{_num(interval[0], fmt)}, {_num(interval[1], fmt)}]" if interval else "")


def _plan_row(name: str, entry: dict, with_hours: bool) -> list[str]:
    convention = PARAMS_CONVENTIONS[entry["params_convention"]]
    if entry.get("reachable") is False:
        return [name, _num(entry["N"]), convention, "never: the law's loss stays above the target"]
    row = [name, _with_interval(entry["N"], entry.get("N_opt_ci"), ".3g"), convention,
           _with_interval(entry["D"], entry.get("D_opt_ci"), ".3g"), _num(entry["tokens_per_param"], ".3g"),
           _with_interval(entry["loss"], entry.get("loss_ci"), ".4f"), _num(entry["flops"]), _num(entry["pf_days"])]
    return row + [_num(entry.get("gpu_hours"), ",.0f")] if with_hours else row


def render(result: dict, args) -> str:
    if result["question"] == "shape":
        return _render_shapes(result)
    with_hours = "throughput" in result
    headers = ["law", "N (params)", "N is", "D (tokens)", "D/N", "loss (nats/token)", "C (FLOPs, 6ND)", "PF-days"]
    headers += ["GPU-hours"] if with_hours else []
    inputs = result["inputs"]
    pf_days = accounting.pf_days(inputs.get("compute_flops", 0.0))
    heading = HEADINGS[result["question"]].format(**inputs, pf_days=pf_days, tokens_are=TOKENS_ARE[args.tokens_are])
    lines = [heading, ""]
    lines.append(_table(headers, [_plan_row(name, e, with_hours) for name, e in result["laws"].items()]))
    if result["question"] in ("compute_optimal", "compute_for_loss"):
        lines += ["", "D = C/(6·N_opt): every plan spends exactly its budget."]
        lines += [f"{name} assumes {e['assumption']} (--batch-regime chooses)." for name, e in result["laws"].items()
                  if "assumption" in e]
        lines += _render_plan_shapes(result, args) + _render_alternatives(result, args.inference_tokens)
    lines += [f"{name}'s loss answers {e['answers']}." for name, e in result["laws"].items() if "answers" in e]
    lines += [f"{name}: loss in {e['loss_units']}." for name, e in result["laws"].items() if "loss_units" in e]
    sources = [f"{name}: {e['source']}" for name, e in result["laws"].items()]
    lines += ["", *_render_notes(result), CONVENTIONS, *sources]
    return "\n".join(lines)


def _render_notes(result: dict) -> list[str]:
    entries = result["laws"]
    notes = [f"warning ({name}): {w}" for name, e in entries.items() for w in e["warnings"]]
    with_interval = [e["interval"] for e in entries.values() if "loss_ci" in e]
    if with_interval:
        notes.append(f"[lo, hi]: {with_interval[0]}.")
    without = [name for name, e in entries.items() if "loss_ci" not in e and e.get("reachable") is not False]
    if without:
        notes.append(f"No interval for {', '.join(without)}: no bootstrap samples of the constants.")
    if "throughput" in result:
        notes.append(f"GPU-hours: device-hours at {result['throughput']['source']}.")
    return notes


def _render_plan_shapes(result: dict, args) -> list[str]:
    rows = [[name, e["shape"]["overrides"], _num(e["shape"]["N"]), _num(e["shape"]["N_total"]),
             PARAMS_CONVENTIONS[e["shape"]["matched"]], f"{e['shape']['N_error']:+.1%}"]
            for name, e in result["laws"].items() if e.get("shape")]
    heading = (f"Model shape nearest N_opt (Hydra overrides; exact counts, N_total with vocab {args.vocab}, "
               f"n_ctx {args.n_ctx} and an untied unembedding; N_opt matched in the law's own convention):")
    return ["", heading, "", _table(["law", "overrides", "N (non-embedding)", "N_total", "matched", "vs N_opt"],
                                    rows)] if rows else []


def _render_alternatives(result: dict, inference_tokens: float | None) -> list[str]:
    rows, cheaper, never = [], [], []
    for name, e in result["laws"].items():
        if not (alt := e.get("inference_alternative")):
            never += [name] if "inference_alternative" in e else []
            continue
        extra = alt["extra_training_flops"]
        rows.append([name, _num(alt["N"]), _num(alt["D"]), _num(alt["tokens_per_param"], ".3g"), _num(alt["flops"]),
                     f"{extra:+.3g} ({extra / e['flops']:+.0%})"]
                    + ([_num(alt["inference_flops_saved"])] if inference_tokens else []))
        cheaper += [name] if extra < 0 else []
    if inference_tokens:
        size = f"the size minimising training + inference FLOPs for {inference_tokens:.3g} tokens served"
    else:
        size = "half of N_opt; --inference-tokens T sizes it for T tokens served"
    headers = ["law", "N (params)", "D (tokens)", "D/N", "C (FLOPs, 6ND)", "extra training C (FLOPs, 6ND)"]
    headers += ["inference FLOPs saved (2N per token)"] if inference_tokens else []
    lines = ["", f"Inference-optimal alternative: a smaller model to the same L(N, D) ({size}):"]
    lines += ["", _table(headers, rows)] if rows else []
    if never:
        lines += ["", f"None for {', '.join(never)}: by the law's L(N, D) (Kaplan: of the --tokens-are question) no "
                      "model of that size reaches the L(N, D) of the plan's N and D."]
    if cheaper:
        lines += ["", f"Negative extra C ({', '.join(cheaper)}): the law's loss formula puts its minimum for this "
                     "budget at a smaller N than its allocation rule does."]
    return lines


def _render_shapes(result: dict) -> str:
    rows = [[s["overrides"], f"{s['N']:,}", f"{s['N_total']:,}", f"{s['N_error']:+.2%}", f"{s['aspect']:.0f}"]
            for s in result["shapes"]]
    first = result["shapes"][0]
    heading = (f"Shapes for N = {result['N_target']:.4g} {PARAMS_CONVENTIONS[result['params_convention']]} "
               f"parameters (exact counts; N_total with vocab {first['vocab']}, n_ctx {first['n_ctx']} and an "
               "untied unembedding):")
    return "\n".join([heading, "", _table(["Hydra overrides", "N (non-embedding)", "N_total", "vs target",
                                           "d_model/n_layer"], rows)])


@entry_point("plan")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = answer(args)
    print(json.dumps(strict_json(result)[0], indent=2, allow_nan=False) if args.json else render(result, args))
    return 0
