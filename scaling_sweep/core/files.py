"""File helpers shared by every stage: an inter-process lock and durable atomic writes."""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

import numpy as np


class LockHeldError(Exception):
    """Another process holds the lock; ``holder`` says which, as that process wrote it."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by {holder}")
        self.path, self.holder = path, holder


@contextmanager
def file_lock(path: Path, wait: bool = True):
    """Hold an exclusive fcntl lock on ``path`` (created if missing) until the block exits; the holder
    writes its pid and host into the file. The kernel releases the lock when its process dies, so no
    lock outlives its holder. ``wait=False``: raise LockHeldError at once when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.seek(0)
            raise LockHeldError(path, f.read().strip() or "another process") from None
        try:
            f.truncate(0)
            f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary sibling of ``path`` (file or directory); on success it is synced to disk and
    renamed onto ``path``, so a reader sees the old content or the new, never a partial write."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove(tmp)  # left over by a killed process that had the same pid
    try:
        yield tmp
        if tmp.is_file():
            _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        _remove(tmp)


def remove_stale_temps(path: Path) -> None:
    """Delete what atomic_path left beside ``path`` when its writer was killed. Only while no other
    process can be writing ``path`` (its lock held)."""
    for tmp in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        _remove(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


NON_FINITE = {"nan": "NaN: not a number, undefined here (e.g. an interval the resamples cannot give)",
              "inf": "Infinity: unbounded above (e.g. an interval open above)",
              "-inf": "-Infinity: unbounded below (e.g. an interval open below)"}


def strict_json(value, path: str = "") -> tuple[object, dict[str, str]]:
    """value ready for strict JSON: numpy numbers and arrays as Python ones, and every non-finite
    number (which JSON has no literal for) as None; with {dotted path of each None: what it was},
    so that a file can say why a number is null."""
    if isinstance(value, dict):
        items = [(k, *strict_json(v, f"{path}.{k}" if path else str(k))) for k, v in value.items()]
        return {k: v for k, v, _ in items}, {p: why for *_, reasons in items for p, why in reasons.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [strict_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in items], {p: why for _, reasons in items for p, why in reasons.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None, {path: NON_FINITE[str(value)]}
    return value, {}
