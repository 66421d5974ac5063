#!/usr/bin/env bash
# Set up (or reuse) .venv, train the CPU demo sweep on the embedded corpus (about 16 minutes
# on 2 quiet cores; finished runs are skipped on a second call) and fit and draw its scaling laws.
source "$(dirname "$0")/setup.sh"
python -m scaling_sweep.train +sweep=demo "$@"
python -m scaling_sweep.analyze runs/demo
echo "report: runs/demo/analysis/report.md   curves: tensorboard --logdir runs/demo"
