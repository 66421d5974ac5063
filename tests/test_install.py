"""A non-editable install (the built wheel) works from an empty folder: the Hydra configs ship inside
the package, and a user's own sweep file runs through --config-dir."""

import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from scaling_sweep.core.runfiles import read_summary

QUICK = ["train.max_steps=4", "train.eval_every=2", "train.eval_windows=2", "train.log_every=2",
         "train.checkpoint_every=2", "train.batch_size=4", "model.n_ctx=32", "train.progress=false",
         "device=cpu"]

USER_SWEEP = textwrap.dedent("""\
    # @package _global_
    sweep_name: mine
    hydra:
      mode: MULTIRUN
      sweeper:
        params:
          model.d_model: 32,64
          model.n_head: 2
          model.n_layer: 1
    """)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed into a folder of its own (not the source tree)."""
    root = tmp_path_factory.mktemp("install")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", root / "wheel", REPO], check=True)
    wheel = next((root / "wheel").glob("scaling_sweep-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", root / "site", wheel], check=True)
    return root / "site"


def run_installed(site, cwd, *args):
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HOME": str(cwd)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_installed_package_trains_lists_and_runs_a_user_sweep(installed, corpus_file, tmp_path):
    data = ["data=text_files", f"data.path={corpus_file}", "data.name=test",
            f"data.cache_dir={tmp_path / 'cache'}"]
    where = run_installed(installed, tmp_path, "-c", "import scaling_sweep; print(scaling_sweep.__file__)")
    assert where.stdout.startswith(str(installed)), where.stdout + where.stderr

    single = run_installed(installed, tmp_path, "-m", "scaling_sweep.train", *QUICK, *data)
    assert single.returncode == 0, single.stderr[-2000:]
    assert read_summary(tmp_path / "runs" / "single" / "L4_d128_h4").status == "completed"

    listing = run_installed(installed, tmp_path, "-m", "scaling_sweep.sweep")
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "| demo |" in listing.stdout and "| width |" in listing.stdout

    (tmp_path / "my_configs" / "sweep").mkdir(parents=True)
    (tmp_path / "my_configs" / "sweep" / "mine.yaml").write_text(USER_SWEEP)
    mine = run_installed(installed, tmp_path, "-m", "scaling_sweep.train", "--config-dir", "my_configs",
                         "+sweep=mine", *QUICK, *data)
    assert mine.returncode == 0, mine.stderr[-2000:]
    for run in ("L1_d32_h2", "L1_d64_h2"):
        assert read_summary(tmp_path / "runs" / "mine" / run).status == "completed"
    listed = run_installed(installed, tmp_path, "-m", "scaling_sweep.sweep", "--config-dir", "my_configs", "mine")
    assert listed.returncode == 0 and "| mine |" in listed.stdout, listed.stderr[-2000:]
