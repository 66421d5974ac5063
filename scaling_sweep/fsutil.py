"""Cache-file helpers: an inter-process lock and atomic (temp + rename) writes."""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path):
    """Hold an exclusive fcntl lock on ``path`` (created if missing) until the block exits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary sibling of ``path`` (file or directory) and rename it onto ``path`` on success."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove(tmp)  # left over by a killed process that had the same pid
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
