#!/usr/bin/env bash
# The hyperparameter laws' prediction, tested by training (docs/hparams.md, "The check, trained"): fit the
# laws of +sweep=hparams_cpu without its largest size, train that size (and the next) at the LR and batch
# they predict (optim.lr=fitted train.batch_size=fitted), then the largest size again with seeds 1 and 2 at
# the fitted values and at its grid's best run's, and compare the losses. Needs the finished sweep
# (python -m scaling_sweep.train +sweep=hparams_cpu); about 3 minutes on 2 cores.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
sweep=runs/hparams_cpu
check=runs/hparams_cpu_check
fits="$check/fit/fits.json"
python -m scaling_sweep.analyze --hparams "$sweep" > /dev/null  # the whole grid: $sweep/analysis/hparams/
mkdir -p "$check"
# the grid without its largest size; then that size's model config and its grid's best run's LR and batch
largest_and_best=$(python - "$sweep" "$check/grid_without_largest.csv" <<'EOF'
import csv, json, pathlib, sys
sweep, out = pathlib.Path(sys.argv[1]), sys.argv[2]
rows = list(csv.DictReader(open(sweep / "analysis/hparams/grid.csv")))
top = max(float(r["N"]) for r in rows)
with open(out, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=rows[0].keys())
    writer.writeheader()
    writer.writerows(r for r in rows if float(r["N"]) < top)
runs = [json.loads(p.read_text()) for p in sweep.glob("*/summary.json")]
finished = [r for r in runs if r["N"] == top and r["status"] == "completed" and r["final_val_loss"] is not None]
best = min(finished, key=lambda r: r["final_val_loss"])
print(f"L{best['n_layer']}_d{best['d_model']}", best["lr"], best["batch_size"])
EOF
)
read -r largest best_lr best_batch <<< "$largest_and_best"
python -m scaling_sweep.analyze --hparams "$check/grid_without_largest.csv" --out "$check/fit" > /dev/null
python -m scaling_sweep.train +sweep=hparams_cpu sweep_name=hparams_cpu_check \
    model=hparams_cpu/$largest,hparams_cpu/L2_d64 optim.lr=fitted train.batch_size=fitted hparams_fits="$fits" "$@"
fitted_batch=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['batch_size'])" \
    "$check/${largest}_h"*"_lrfitted_Bfitted/summary.json")
# seed repeats: the fitted LR (at the fitted batch) and the grid's best run's (LR, batch)
python -m scaling_sweep.train +sweep=hparams_cpu sweep_name=hparams_cpu_seeds model=hparams_cpu/$largest \
    optim.lr=fitted train.batch_size="$fitted_batch" train.seed=1,2 hparams_fits="$fits" \
    'run_name=L${model.n_layer}_d${model.d_model}_lr${optim.lr}_B${train.batch_size}_seed${train.seed}' "$@"
python -m scaling_sweep.train +sweep=hparams_cpu sweep_name=hparams_cpu_seeds model=hparams_cpu/$largest \
    optim.lr="$best_lr" train.batch_size="$best_batch" train.seed=1,2 \
    'run_name=L${model.n_layer}_d${model.d_model}_lr${optim.lr}_B${train.batch_size}_seed${train.seed}' "$@"
python - "$sweep" "$check" runs/hparams_cpu_seeds <<'EOF'
import json, pathlib, statistics, sys
sweep, check, seeds = map(pathlib.Path, sys.argv[1:])
def read(folder):
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/summary.json"))]
grid, repeats = read(sweep), read(seeds)
for run in read(check):
    f = run["fitted_hparams"]
    # the grid's runs of this size trained to the same budget (a budget ends at a whole step: tokens within 1%)
    same = [s for s in grid if s["N"] == run["N"] and s["status"] == "completed"
            and abs(s["tokens"] / run["tokens"] - 1) < 0.01]
    best = min(same, key=lambda s: s["final_val_loss"])
    print(f"{run['run_name']}: N = {run['N']:,} non-embedding, D = {run['tokens']:,} tokens; {f['laws']}")
    print(f"  fitted: lr {run['lr']:.4g}, batch {run['batch_size']} sequences ({run['batch_tokens']} tokens; "
          f"the law's {f['batch_tokens_fitted']:.4g}): {run['final_val_loss']:.4f} nats/token")
    print(f"  the grid's best of {len(same)} runs: lr {best['lr']:.4g}, batch {best['batch_tokens']} tokens: "
          f"{best['final_val_loss']:.4f} nats/token; fitted / best - 1 = "
          f"{run['final_val_loss'] / best['final_val_loss'] - 1:+.2%}")
    if run["N"] != max(s["N"] for s in grid):
        continue
    fitted = [run["final_val_loss"]] + [s["final_val_loss"] for s in repeats if s["lr_rule"] == "fitted"]
    at_best = [best["final_val_loss"]] + [s["final_val_loss"] for s in repeats if s["lr_rule"] == "fixed"]
    print(f"  seeds 0-{len(fitted) - 1}: fitted {statistics.mean(fitted):.4f} (sd {statistics.stdev(fitted):.4f}), "
          f"the grid's best (lr, batch) {statistics.mean(at_best):.4f} (sd {statistics.stdev(at_best):.4f}) "
          f"nats/token: fitted / best - 1 = {statistics.mean(fitted) / statistics.mean(at_best) - 1:+.2%}")
EOF
