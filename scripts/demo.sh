#!/usr/bin/env bash
# Set up (or reuse) .venv and train the default model on the embedded corpus (CPU: ~2 minutes).
source "$(dirname "$0")/setup.sh"
python -m scaling_sweep.train "$@"
