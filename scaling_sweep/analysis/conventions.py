"""The counting conventions a sweep can be fitted in (DESIGN.md, "Conventions").

Parameters: `non_embedding` (Kaplan et al. 2020: the blocks and the final norm) or `total`
(every parameter, embeddings and an untied unembedding included, as Hoffmann et al. 2022 and
Besiroglu et al. 2024 count). Compute: `6N` (C = 6·N·tokens with the chosen N) or `exact`
(every matmul of forward and backward, core.accounting.flops_per_token). Porian et al. 2024 and
Pearce & Song 2024 show these choices alone move the compute-optimal exponent from about 0.73
toward 0.5; fitting a sweep under all four shows how much they move it on this sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scaling_sweep.analysis.runs import Run

PARAMS = {"non_embedding": "non-embedding parameters (Kaplan)",
          "total": "all parameters, embeddings and unembedding included (Hoffmann, Epoch)"}
COMPUTE = {"6N": "FLOPs = 6*N*tokens with N in this parameter convention",
           "exact": "FLOPs of every matmul of forward and backward (embeddings, unembedding, attention)"}


@dataclass(frozen=True)
class Convention:
    params: str = "non_embedding"
    compute: str = "6N"

    def __post_init__(self):
        if self.params not in PARAMS:
            raise ValueError(f"parameter convention {self.params!r} is not one of {', '.join(PARAMS)}")
        if self.compute not in COMPUTE:
            raise ValueError(f"compute convention {self.compute!r} is not one of {', '.join(COMPUTE)}")

    @property
    def key(self) -> str:
        return f"{self.params}/{self.compute}"

    def describe(self) -> dict:
        return {"params": self.params, "N": PARAMS[self.params], "compute": self.compute,
                "C": COMPUTE[self.compute]}

    def flops_per_token(self, run: Run) -> float | None:
        s = run.summary
        if self.compute == "exact":
            return s.flops_per_token_exact
        n = self.n_params(run)
        return None if n is None else 6.0 * n

    def n_params(self, run: Run) -> int | None:
        return run.summary.N if self.params == "non_embedding" else run.summary.N_total

    def missing(self, run: Run) -> str | None:
        """What the run's summary lacks for this convention, or None."""
        if self.n_params(run) is None:
            return f"no {'N' if self.params == 'non_embedding' else 'N_total'} in its summary"
        if self.flops_per_token(run) is None:
            return "no flops_per_token_exact in its summary"
        return None

    def apply(self, run: Run) -> Run:
        """The run with N and every FLOP count (summary, cooldown branches, learning curve) in this
        convention. Its 6·N per token in non-embedding N stays, so that each point keeps the budget it
        was trained to (points.trained_budget): its IsoFLOP profile does not change with the convention."""
        s = run.summary
        per_token = self.flops_per_token(run)
        cooldowns = [{**c, "flops": per_token * c["tokens"]} for c in s.cooldowns]
        summary = replace(s, N=self.n_params(run), flops=per_token * (s.tokens or 0), cooldowns=cooldowns,
                          flops_per_token_kaplan_6N=s.flops_per_token_kaplan_6N or 6.0 * s.N)
        metrics = {**run.metrics, "flops": per_token * run.metrics["tokens"]}
        return replace(run, summary=summary, metrics=metrics)


HEADLINE = Convention()
ALL = [Convention(p, c) for p in PARAMS for c in COMPUTE]
