#!/usr/bin/env bash
# Set up (or reuse) .venv and run the test suite; extra arguments go to pytest.
source "$(dirname "$0")/setup.sh"
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
python -m pytest "$@"
