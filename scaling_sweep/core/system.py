"""What the operating system gives this process, without torch (the data stage reads it too)."""

from __future__ import annotations

import os


def cores_given() -> int:
    """The cores this process may run on: all of the box's, or those taskset or a cpuset (SLURM's, a
    container's) left it. A CPU-time quota (docker --cpus) does not show here."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
