#!/usr/bin/env python
"""Wall time of one CPU sweep launched several ways on this box, each from a fresh runs folder:

  joblib            the demo's own launcher as shipped: one run per core at once, one thread each
                    (joblib sets the worker's OMP_NUM_THREADS)
  sequential        Hydra's basic launcher: one run after another, each with every core (train.threads=auto)
  submitit_local    submitit's local launcher: every run at once, each seeing every core (threads=auto)
  submitit_local_1_thread   the same with train.threads=1
  ray               +launcher=ray as shipped: as many runs at once as cores, one core each (num_cpus=1, which
                    Ray passes on as the job's OMP_NUM_THREADS)
  ray_2_cores_a_job the same with num_cpus=2: on 2 cores, one run at a time with 2 threads

Rounds interleave the launchers, so load from other processes hits each alike. OMP_NUM_THREADS is
removed from the environment, as a user's shell would not have it; every job imports this checkout.
Needs hydra-submitit-launcher and `pip install -e '.[ray]'`.

    python scripts/bench_launchers.py --rounds 2 --json docs/bench/launchers.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scaling_sweep.core.runfiles import read_summary  # noqa: E402

SWEEP = ["+sweep=demo", "model=demo/L2_d48,demo/L2_d64,demo/L2_d80,demo/L2_d96", "train.progress=false",
         "device=cpu"]
LAUNCHERS = {
    "joblib": [],
    "sequential": ["hydra/launcher=basic"],
    "submitit_local": ["hydra/launcher=submitit_local"],
    "submitit_local_1_thread": ["hydra/launcher=submitit_local", "train.threads=1"],
    "ray": ["+launcher=ray"],
    "ray_2_cores_a_job": ["+launcher=ray", "hydra.launcher.ray.remote.num_cpus=2"],
}


def run_sweep(launcher: str, max_steps: int, timeout_s: float) -> dict:
    """One sweep through `launcher` into a fresh folder: its wall time and each run's summary facts."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-{launcher}-"))
    args = [sys.executable, "-m", "scaling_sweep.train", *SWEEP, f"train.max_steps={max_steps}",
            f"runs_root={root}", *LAUNCHERS[launcher]]
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"} | {"PYTHONPATH": str(REPO)}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    log = (root / "sweep.log").open("w")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    wall = time.perf_counter() - start
    if proc.returncode:
        print((root / "sweep.log").read_text()[-2000:], file=sys.stderr)
    runs = [run_facts(d) for d in sorted((root / "demo").iterdir()) if (d / "summary.json").exists()]
    shutil.rmtree(root, ignore_errors=True)
    return {"launcher": launcher, "wall_s": round(wall, 1), "timed_out": proc.returncode == -signal.SIGKILL,
            "returncode": proc.returncode, "load_before": load, "runs": runs}


def run_facts(run_dir: Path) -> dict:
    s = read_summary(run_dir)
    return {"run": s.run_name, "status": s.status, "step": s.step, "threads": s.hardware.get("threads"),
            "train_s": round(s.wall_time_s, 1), "tokens_per_s": round(s.tokens_per_s or 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--timeout-s", type=float, default=600, help="a sweep still running then is killed")
    parser.add_argument("--launchers", nargs="+", default=list(LAUNCHERS), choices=list(LAUNCHERS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for round_ in range(1, args.rounds + 1):
        for launcher in args.launchers:
            result = run_sweep(launcher, args.max_steps, args.timeout_s) | {"round": round_}
            results.append(result)
            runs = ", ".join(f"{r['run']} {r['status']} {r['train_s']} s x{r['threads']}" for r in result["runs"])
            print(f"round {round_} {launcher:<15} {result['wall_s']:7.1f} s{' (killed)' if result['timed_out'] else ''}"
                  f"  load {result['load_before']:.2f}  [{runs}]", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "max_steps": args.max_steps,
                                         "sweep": SWEEP, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
