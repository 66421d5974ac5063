"""The `scaling-sweep` console script: `scaling-sweep COMMAND [ARGS]` runs `python -m scaling_sweep.COMMAND`."""

from __future__ import annotations

import sys
from importlib import import_module

COMMANDS = {
    "train": ("scaling_sweep.training.train", "train one run or a sweep (Hydra overrides)"),
    "sweep": ("scaling_sweep.training.sweep", "list the sweeps' grids"),
    "runs": ("scaling_sweep.analysis.runs", "table of a sweep's runs"),
    "analyze": ("scaling_sweep.analysis.analyze", "fit the laws of a sweep; figures and report"),
    "plan": ("scaling_sweep.planning.plan", "plan a compute budget"),
}


def usage() -> str:
    rows = "\n".join(f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: scaling-sweep COMMAND [ARGS]\n\ncommands:\n{rows}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"scaling-sweep: unknown command {command!r}\n{usage()}", file=sys.stderr)
        return 2
    module = import_module(COMMANDS[command][0])
    if command == "train":  # Hydra reads sys.argv itself
        sys.argv = [f"scaling-sweep {command}", *rest]
        module.main()
        return 0
    return module.main(rest)
