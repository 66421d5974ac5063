"""Synthetic ladders drawn from each law form of analysis.law_forms, with noise, and the rate at
which selection by extrapolation picks the generating form (docs/law_selection.md):

    python tests/synthetic_law_forms.py --seeds 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scaling_sweep.analysis import law_forms
from scaling_sweep.core import laws

NOISE = 0.01  # multiplicative, log-normal on the loss
MULTIPLIERS = np.geomspace(5, 500, 5)  # tokens per parameter M = D/N at every size
EPOCHS = np.array([1, 1, 4, 16, 64])  # of the data-constrained ladder, one per multiplier


def _chinchilla_theta(c):
    return [np.log(c["A"]), np.log(c["B"]), c["alpha"], c["beta"], np.log(c["E"])]


# the generating constants, as each form's theta
TRUTH = {
    "chinchilla": _chinchilla_theta(laws.CHINCHILLA),  # Hoffmann et al.'s: alpha and beta apart
    "L_ND": [0.076, 0.095, np.log(8.8e13), np.log(5.4e13)],  # Kaplan et al.'s Table 2 / eq. 1.5
    "L_ND_floor": [0.2, 0.25, np.log(1e12), np.log(1e12), np.log(1.5)],
    "over_training": [np.log(300.0), np.log(2000.0), 0.15, np.log(1.8)],
    "data_constrained": _chinchilla_theta(laws.EPOCH_REPLICATION) + [np.log(5.3), np.log(15.4)],  # R* of Muennighoff
    "farseer": [0.1, np.log(0.35), 0.3, 0.1, 0.06, 0.2, 0.15, np.log(1.82), -0.3],
}


def truth(name: str) -> dict[str, float]:
    return {k: float(v[0]) for k, v in law_forms.FORMS[name].constants(np.array([TRUTH[name]])).items()}


def ladder(name: str, seed: int, n_sizes: int = 7, noise: float = NOISE) -> dict:
    """A ladder of n_sizes model sizes (20M to 2B parameters), each trained at every multiplier, its
    loss drawn from the form `name` with log-normal noise; unique tokens U_D = D/epochs."""
    N = np.repeat(np.geomspace(2e7, 2e9, n_sizes), len(MULTIPLIERS))
    D = N * np.tile(MULTIPLIERS, n_sizes)
    epochs = np.tile(EPOCHS, n_sizes) if name == "data_constrained" else np.ones_like(D)
    table = {"N": N, "D": D, "U_D": D / epochs}
    log_loss = law_forms.FORMS[name].log_loss(np.array(TRUTH[name]), table)[0]
    table["loss"] = np.exp(log_loss + noise * np.random.default_rng(seed).standard_normal(len(N)))
    return table


def picks(name: str, seed: int, **kw) -> tuple[str, bool]:
    """The form selection recommends on a ladder of `name`, and whether it is `name` or within noise of it."""
    scored, _, _ = law_forms.extrapolation_scores(ladder(name, seed), seed=seed, **kw)
    scores = {k: v[1] for k, v in scored.items()}
    chosen = law_forms.recommend(scores)["law"]
    if chosen == name or name not in scores:
        return chosen, chosen == name
    gap = scores[name][1:] - scores[chosen][1:]
    return chosen, bool(np.percentile(gap, 2.5) <= 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--n-boot", type=int, default=50)
    parser.add_argument("--starts", type=int, default=100, help="starts per extrapolation fit")
    args = parser.parse_args()
    for name in law_forms.FORMS:
        start, chosen, ok = time.perf_counter(), [], 0
        for seed in range(args.seeds):
            law, good = picks(name, seed, n_boot=args.n_boot, extrapolation_starts=args.starts)
            chosen.append(law)
            ok += good
        counts = ", ".join(f"{k} {chosen.count(k)}" for k in sorted(set(chosen), key=chosen.count, reverse=True))
        print(f"{name}: generating form or within noise of it in {ok}/{args.seeds} seeds; picked: {counts} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
