"""Budget planner: `python -m scaling_sweep.plan`.

From a compute budget to a model size and shape, a token count, a predicted loss and a cost,
under the published laws (Kaplan et al. 2020, Chinchilla, Epoch AI's replication) or a sweep's
own ``fits.json``. The formulas live in :mod:`scaling_sweep.laws` and the counting conventions
in :mod:`scaling_sweep.accounting`; this module only combines them.

Conventions: N = non-embedding parameters; D = training tokens; C = 6·N·D FLOPs; loss in
nats/token of the law's own data and tokenizer; 1 PF-day = 8.64e19 FLOPs.
"""

from __future__ import annotations

import argparse
import bisect
import inspect
import itertools
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scaling_sweep.analysis.runs import SweepError, read_sweep
from scaling_sweep.core import accounting, laws
from scaling_sweep.core.config import ModelConfig
from scaling_sweep.core.runfiles import SUMMARY_FILE


class PlanError(ValueError):
    """Input the planner cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Law:
    """A loss formula L(N, D) and an allocation rule C -> (N_opt, D_opt) with their constants."""

    name: str
    source: str
    loss_formula: Callable
    loss_params: dict
    allocation: Callable
    allocation_params: dict
    ci: dict = field(default_factory=dict)  # loss parameter -> (lo, hi), from a fit

    def loss(self, N, D):
        return self.loss_formula(N, D, **self.loss_params)

    def allocate(self, C) -> tuple[float, float]:
        N, D = self.allocation(C, **self.allocation_params)
        return float(N), float(D)


PUBLISHED_LAWS = {
    "kaplan": Law("kaplan", "Kaplan et al. 2020: loss eq. 1.5 with the table-1 constants; "
                  "N_opt = 1.3e9·(C/PF-day)^0.73 (eq. 1.7)",
                  laws.loss_nd, laws.KAPLAN["L_ND"], laws.kaplan_optimal, laws.KAPLAN["N_opt"]),
    "chinchilla": Law("chinchilla", "Hoffmann et al. 2022: loss E + A/N^alpha + B/D^beta (approach 3); "
                      "20 tokens per parameter (approaches 1-2)",
                      laws.chinchilla_loss, laws.CHINCHILLA, laws.tokens_per_param_optimal, {}),
    "epoch": Law("epoch", "Besiroglu et al. 2024 (Epoch AI): Chinchilla's approach 3 refitted; "
                 "N_opt minimises the loss under C = 6ND",
                 laws.chinchilla_loss, laws.EPOCH_REPLICATION, laws.chinchilla_optimal, laws.EPOCH_REPLICATION),
}

# planner law name -> (key in fits.json, loss formula, allocation at that formula's minimum under C = 6ND).
# A law's constants in fits.json are named as the formula's keyword arguments.
FITTED_FORMS = {
    "chinchilla": ("chinchilla", laws.chinchilla_loss, laws.chinchilla_optimal),
    "kaplan": ("L_ND", laws.loss_nd, laws.loss_nd_optimal),
}

# Peak dense bf16 tensor FLOP/s per device, from the vendors' datasheets (the "with sparsity"
# figures halved).
DEVICE_PEAKS = {
    "h100": (989e12, "NVIDIA H100 SXM datasheet: BF16 tensor core 1,979 TFLOPS with sparsity"),
    "h100-pcie": (756e12, "NVIDIA H100 PCIe datasheet: BF16 tensor core 1,513 TFLOPS with sparsity"),
    "h200": (989e12, "NVIDIA H200 SXM datasheet: BF16 tensor core 1,979 TFLOPS with sparsity"),
    "a100": (312e12, "NVIDIA A100 datasheet: BF16 tensor core 312 TFLOPS dense"),
    "l4": (121e12, "NVIDIA L4 datasheet: BF16 tensor core 242 TFLOPS with sparsity"),
    "mi300x": (1307.4e12, "AMD Instinct MI300X datasheet: BF16 1,307.4 TFLOPS dense"),
    "tpu-v4": (275e12, "Google Cloud TPU v4 documentation: 275 TFLOPS bf16 per chip"),
    "tpu-v5e": (197e12, "Google Cloud TPU v5e documentation: 197 TFLOPS bf16 per chip"),
    "tpu-v5p": (459e12, "Google Cloud TPU v5p documentation: 459 TFLOPS bf16 per chip"),
}

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
    if version != laws.FITS_SCHEMA_VERSION:
        raise PlanError(f"{path}: schema_version {version!r}; this planner reads version {laws.FITS_SCHEMA_VERSION}")
    fitted = data.get("laws")
    fitted = fitted if isinstance(fitted, dict) else {}
    if names is None:
        names = [name for name, (key, *_) in FITTED_FORMS.items() if key in fitted]
        if not names:
            keys = ", ".join(key for key, *_ in FITTED_FORMS.values())
            raise PlanError(f"{path}: holds none of the laws the planner uses ({keys})")
    return {name: _fitted_law(path, fitted, name) for name in names}


def _fitted_law(path, fitted: dict, name: str) -> Law:
    """Law `name` from the "laws" object of a fits.json."""
    key, formula, allocation = FITTED_FORMS[name]
    entry = fitted.get(key)
    if not isinstance(entry, dict):
        has = ", ".join(fitted) or "nothing"
        raise PlanError(f"{path}: no {key!r} law for --law {name} (it has: {has})")
    wanted = list(inspect.signature(formula).parameters)[2:]  # the constants after (N, D)
    missing = [p for p in wanted if not isinstance(entry.get(p), (int, float))]
    if missing:
        raise PlanError(f"{path}: law {key!r} lacks the number(s) {', '.join(missing)}")
    params = {p: float(entry[p]) for p in wanted}
    intervals = entry.get("ci") if isinstance(entry.get("ci"), dict) else {}
    ci = {p: _interval(path, key, p, intervals[p]) for p in wanted if p in intervals}
    # analyze's warning (e.g. a floor fitted to zero) travels with the law into every plan's source line
    warning = f"; fit warning: {entry['warning']}" if entry.get("warning") else ""
    return Law(f"fit:{name}", f"{path} [{key}]{warning}", formula, params, allocation, params, ci)


def _interval(path, key: str, param: str, value) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise PlanError(f"{path}: law {key!r} has ci.{param}={value!r}, expected [lo, hi]") from None
    return lo, hi


def select_laws(spec: str = "all", fit_path=None) -> dict[str, Law]:
    """Laws named in a comma-separated spec ("all", "kaplan,chinchilla"), published or from a fit."""
    known = FITTED_FORMS if fit_path else PUBLISHED_LAWS
    names = None if spec == "all" else [n.strip() for n in spec.split(",")]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        source = f"a fit ({fit_path})" if fit_path else "the published laws"
        raise PlanError(f"--law {','.join(unknown)}: not among {source}: {', '.join(known)}")
    if fit_path:
        return read_fits(fit_path, names)
    return {name: PUBLISHED_LAWS[name] for name in names or PUBLISHED_LAWS}


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
    """N non-embedding parameters trained on D tokens, under a law."""

    law: Law
    N: float
    D: float

    @property
    def loss(self) -> float:
        return float(self.law.loss(self.N, self.D))

    @property
    def flops(self) -> float:
        return accounting.training_flops(self.N, self.D)

    def as_dict(self) -> dict:
        flops = self.flops
        row = {"N": self.N, "D": self.D, "tokens_per_param": self.D / self.N, "loss": self.loss,
               "flops": flops, "pf_days": accounting.pf_days(flops)}
        interval = loss_interval(self.law, self.N, self.D)
        if interval:
            row["loss_ci"] = interval
        return row


def compute_optimal(law: Law, compute: float) -> Plan:
    """N_opt by the law's allocation rule; D = C/(6·N_opt), so the plan spends exactly C."""
    return Plan(law, *law.allocate(compute))


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


def loss_interval(law: Law, N: float, D: float) -> tuple[float, float] | None:
    """Range of the loss over the corners of the fit's per-constant confidence box; None
    without a fit. It ignores correlations between constants, so it is wider than a joint CI."""
    if not law.ci:
        return None
    losses = [law.loss_formula(N, D, **{**law.loss_params, **dict(zip(law.ci, corner))})
              for corner in itertools.product(*law.ci.values())]
    return float(np.min(losses)), float(np.max(losses))


def inference_alternative(plan: Plan, inference_tokens: float | None = None) -> Plan | None:
    """A smaller model trained on more tokens to plan's loss. With inference_tokens (tokens served
    over the model's life) the size minimising training + inference FLOPs between N/1000 and N;
    without, half the plan's N. None where the law says that size never reaches the loss."""
    if inference_tokens is None:
        N = plan.N / 2
    else:
        sizes = plan.N * np.logspace(-3, 0, 601)
        tokens = tokens_to_reach(plan.law, sizes, plan.loss)
        total = accounting.training_flops(sizes, tokens) + accounting.inference_flops(sizes, inference_tokens)
        N = float(sizes[np.argmin(total)])
    return tokens_for_loss(plan.law, N, plan.loss)


# --- the training stop criterion (train.stop_at=compute_optimal) -------------------------------

# --- model shape ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    n_layer: int
    d_model: int
    n_head: int
    N: int  # exact non-embedding parameters (accounting.param_counts)

    @property
    def overrides(self) -> str:
        return f"model.n_layer={self.n_layer} model.d_model={self.d_model} model.n_head={self.n_head}"

    def as_dict(self, target: float) -> dict:
        return {"n_layer": self.n_layer, "d_model": self.d_model, "n_head": self.n_head, "N": self.N,
                "N_error": self.N / target - 1, "aspect": self.d_model / self.n_layer, "overrides": self.overrides}


def shape_of(n_layer: int, n_head: int, head_dim: int) -> Shape:
    cfg = ModelConfig(n_layer=n_layer, d_model=n_head * head_dim, n_head=n_head)
    return Shape(n_layer, cfg.d_model, n_head, accounting.non_embedding_params(cfg))


def model_shapes(n_params: float, aspect: tuple[float, float] = (64, 128), head_dim: int = 64,
                 count: int = 5) -> list[Shape]:
    """Shapes whose exact non-embedding N is nearest n_params, with d_model a multiple of
    head_dim and d_model/n_layer within aspect (Kaplan's fig. 5: loss is flat over a wide range);
    none when even the smallest such shape is over twice n_params."""
    lo, hi = aspect
    if not 0 < lo <= hi or head_dim < 1:
        raise PlanError(f"aspect {lo}-{hi} and head dim {head_dim}: need 0 < lo <= hi and head dim >= 1")
    shapes = []
    for n_layer in itertools.count(1):
        heads = range(max(1, math.ceil(lo * n_layer / head_dim)), math.floor(hi * n_layer / head_dim) + 1)
        if shape_of(n_layer, heads.start, head_dim).N > 2 * n_params:
            break  # the narrowest allowed shape of this depth, and of every deeper one, is too large
        i = bisect.bisect_left(heads, n_params, key=lambda h: shape_of(n_layer, h, head_dim).N)
        shapes += [shape_of(n_layer, h, head_dim) for h in heads[max(i - 1, 0):i + 1]]
    return sorted(shapes, key=lambda s: abs(math.log(s.N / n_params)))[:count]


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
        peak, cite = DEVICE_PEAKS[device]
        return Throughput(peak * mfu, f"{device} peak {peak:.4g} FLOP/s ({cite}) x MFU {mfu:g}")
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
UNITS = {"N": "non-embedding parameters", "D": "training tokens",
         "loss": "nats/token of the law's own data and tokenizer",
         "loss_ci": "nats/token, the fit's CI", "tokens_per_param": "D/N", "flops": "FLOPs, 6*N*D",
         "extra_training_flops": "FLOPs, 6*N*D", "inference_flops_saved": "FLOPs, 2*N per token served",
         "pf_days": "PF-days, 8.64e19 FLOPs each", "gpu_hours": "device-hours"}
CONVENTIONS = ("N: non-embedding parameters. D: training tokens. C = 6·N·D FLOPs; 1 PF-day = 8.64e19 FLOPs. "
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
                   help="non-embedding parameters (with --tokens or --target-loss)")
    q.add_argument("--tokens", type=positive, metavar="D", help="training tokens: with --params, predict the loss")
    q.add_argument("--target-loss", type=positive, metavar="L",
                   help="nats/token: tokens needed at --params, or (alone) the smallest compute")
    q.add_argument("--shape", type=positive, metavar="N", help="model shapes for N non-embedding parameters")
    g = p.add_argument_group("laws")
    g.add_argument("--law", default="all",
                   help="all, or a comma-separated list: kaplan, chinchilla, epoch (default all)")
    g.add_argument("--fit", metavar="FITS_JSON",
                   help="use a sweep's runs/<sweep>/analysis/fits.json instead of the published laws")
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
        shapes = model_shapes(args.shape, tuple(args.aspect), args.head_dim)
        if not shapes:
            raise PlanError(f"--shape {args.shape:.3g}: no shape with head dim {args.head_dim} and d_model/n_layer "
                            f"in {args.aspect[0]:g}-{args.aspect[1]:g} is that small; lower --head-dim or --aspect")
        return {"question": kind, "N_target": args.shape, "shapes": [s.as_dict(args.shape) for s in shapes]}
    chosen = select_laws(args.law, args.fit)
    throughput = throughput_from(args)
    compute = parse_compute(" ".join(args.compute)) if args.compute else None
    inputs = {"compute_flops": compute, "N": args.params, "D": args.tokens, "target_loss": args.target_loss}
    result = {"question": kind, "inputs": {k: v for k, v in inputs.items() if v is not None}, "units": UNITS,
              "laws": {}}
    for law in chosen.values():
        plan = _plan(kind, law, args, compute)
        result["laws"][law.name] = _law_entry(plan, kind, args, throughput) | {"source": law.source}
    if throughput:
        result["throughput"] = {"flops_per_s": throughput.flops_per_s, "source": throughput.source}
    return result


def _plan(kind: str, law: Law, args, compute: float | None) -> Plan | None:
    if kind == "compute_optimal":
        return compute_optimal(law, compute)
    if kind == "predict_loss":
        return Plan(law, args.params, args.tokens)
    if kind == "tokens_for_loss":
        return tokens_for_loss(law, args.params, args.target_loss)
    return compute_for_loss(law, args.target_loss)


def _law_entry(plan: Plan | None, kind: str, args, throughput: Throughput | None) -> dict:
    if plan is None:
        return {"N": args.params, "D": None, "loss": None, "flops": None, "reachable": False}
    entry = plan.as_dict()
    if throughput:
        entry["gpu_hours"] = device_hours(plan.flops, throughput)
    if kind in ("compute_optimal", "compute_for_loss"):
        entry["shape"] = _best_shape(plan.N, args)
        alternative = inference_alternative(plan, args.inference_tokens)
        entry["inference_alternative"] = _alternative_entry(plan, alternative, args.inference_tokens, throughput)
    return entry


def _best_shape(n_params: float, args) -> dict | None:
    shapes = model_shapes(n_params, tuple(args.aspect), args.head_dim, count=1)
    return shapes[0].as_dict(n_params) if shapes else None


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
    "predict_loss": "Predicted loss of N = {N:.4g} non-embedding parameters trained on D = {D:.4g} tokens",
    "tokens_for_loss": "Tokens for N = {N:.4g} non-embedding parameters to reach {target_loss:g} nats/token",
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


def _plan_row(name: str, entry: dict, with_hours: bool) -> list[str]:
    if entry.get("reachable") is False:
        return [name, _num(entry["N"]), "never: the law's loss stays above the target"]
    ci = entry.get("loss_ci")
    loss = _num(entry["loss"], ".4f") + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    row = [name, _num(entry["N"]), _num(entry["D"]), _num(entry["tokens_per_param"], ".1f"), loss,
           _num(entry["flops"]), _num(entry["pf_days"])]
    return row + [_num(entry.get("gpu_hours"), ",.0f")] if with_hours else row


def render(result: dict, args) -> str:
    if result["question"] == "shape":
        return _render_shapes(result)
    with_hours = "throughput" in result
    headers = ["law", "N (params)", "D (tokens)", "D/N", "loss (nats/token)", "C (FLOPs, 6ND)", "PF-days"]
    headers += ["GPU-hours"] if with_hours else []
    inputs = result["inputs"]
    pf_days = accounting.pf_days(inputs.get("compute_flops", 0.0))
    lines = [HEADINGS[result["question"]].format(**inputs, pf_days=pf_days), ""]
    lines.append(_table(headers, [_plan_row(name, e, with_hours) for name, e in result["laws"].items()]))
    if result["question"] in ("compute_optimal", "compute_for_loss"):
        lines += ["", "D = C/(6·N_opt): every plan spends exactly its budget."]
        lines += _render_plan_shapes(result) + _render_alternatives(result, args.inference_tokens)
    notes = []
    if any("loss_ci" in e for e in result["laws"].values()):
        notes.append("[lo, hi]: loss over the corners of the fit's per-constant CI box (ignores correlations).")
    if with_hours:
        notes.append(f"GPU-hours: device-hours at {result['throughput']['source']}.")
    lines += ["", *notes, CONVENTIONS, *(f"{name}: {e['source']}" for name, e in result["laws"].items())]
    return "\n".join(lines)


def _render_plan_shapes(result: dict) -> list[str]:
    rows = [[name, e["shape"]["overrides"], _num(e["shape"]["N"]), f"{e['shape']['N_error']:+.1%}"]
            for name, e in result["laws"].items() if e.get("shape")]
    return ["", "Model shape nearest N_opt (Hydra overrides; exact non-embedding N):", "",
            _table(["law", "overrides", "N", "vs N_opt"], rows)] if rows else []


def _render_alternatives(result: dict, inference_tokens: float | None) -> list[str]:
    rows, cheaper = [], []
    for name, e in result["laws"].items():
        if not (alt := e.get("inference_alternative")):
            continue
        extra = alt["extra_training_flops"]
        rows.append([name, _num(alt["N"]), _num(alt["D"]), _num(alt["tokens_per_param"], ".1f"), _num(alt["flops"]),
                     f"{extra:+.3g} ({extra / e['flops']:+.0%})"]
                    + ([_num(alt["inference_flops_saved"])] if inference_tokens else []))
        cheaper += [name] if extra < 0 else []
    if inference_tokens:
        size = f"the size minimising training + inference FLOPs for {inference_tokens:.3g} tokens served"
    else:
        size = "half of N_opt; --inference-tokens T sizes it for T tokens served"
    headers = ["law", "N (params)", "D (tokens)", "D/N", "C (FLOPs, 6ND)", "extra training C (FLOPs, 6ND)"]
    headers += ["inference FLOPs saved (2N per token)"] if inference_tokens else []
    lines = ["", f"Inference-optimal alternative: a smaller model to the same loss ({size}):", "",
             _table(headers, rows)]
    if cheaper:
        lines += ["", f"Negative extra C ({', '.join(cheaper)}): the law's loss formula puts its minimum for this "
                     "budget at a smaller N than its allocation rule does."]
    return lines


def _render_shapes(result: dict) -> str:
    rows = [[s["overrides"], f"{s['N']:,}", f"{s['N_error']:+.2%}", f"{s['aspect']:.0f}"] for s in result["shapes"]]
    return "\n".join([f"Shapes for N = {result['N_target']:.4g} non-embedding parameters (exact count):", "",
                      _table(["Hydra overrides", "N", "vs target", "d_model/n_layer"], rows)])


def _json_ready(value):
    """NaN and inf (a fit may hold a NaN CI) as null, so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        result = answer(args)
    except PlanError as err:
        print(f"plan: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(_json_ready(result), indent=2) if args.json else render(result, args))
    return 0
