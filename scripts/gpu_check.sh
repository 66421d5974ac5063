#!/usr/bin/env bash
# The first thing to run on a GPU box: the throughput benchmark's GPU preset, a two-run width sweep
# with gpt2 tokens, a two-GPU DDP check where two GPUs exist and a compile-on vs compile-off step
# check (under 10 minutes on one H100), written to docs/bench/<device>.json and .md. Without a GPU
# it prints "no GPU: skipped the GPU parts" and exits 0 (see scripts/gpu_check.py).
# Python: $PYTHON if set, else .venv's (created by scripts/setup.sh when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    [ -x .venv/bin/python ] || source scripts/setup.sh
    PYTHON=.venv/bin/python
fi
exec "$PYTHON" scripts/gpu_check.py "$@"
