"""Stopping training from outside without changing a result, and what a launch shares with its jobs.

SIGINT (Ctrl-C) and SIGTERM (a scheduler's preemption, scancel, a Ray job cancel) do not stop a run where
they land: they request a stop (:data:`STOP`), which the training loop honours at the next step boundary of
the main run, where it saves its checkpoint and a summary "stopped" with the reason
(runfiles.RESUMABLE_STOPS); a wsd cooldown branch in progress is abandoned and the run's state put back, so
the relaunch trains it again from the same state. A second signal stops at once, writing nothing: the last
checkpoint, written atomically beside the one before, stands.

A sweep's launching process keeps a folder in the sweep folder (:class:`Launch`, named to its jobs by
LAUNCH_ENV): who the launcher is, the stop requests it received, and a note of how each job ended, from
which it prints one line at the end. A job in a process of its own (joblib's loky workers, Ray's) watches
it: it stops its run when the launcher asks, and when the launcher has died (SIGKILL, a closed terminal),
so that no run trains on unseen, holding its lock.
"""

from __future__ import annotations

import atexit
import fcntl
import itertools
import os
import shutil
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from multiprocessing import resource_tracker
from pathlib import Path

LAUNCH_ENV = "SCALING_SWEEP_LAUNCH"
SIGNAL_REASONS = {signal.SIGINT: "interrupted", signal.SIGTERM: "preempted"}
LAUNCHER_LOST = "launcher_lost"  # the process that launched the job died
EXIT_CODES = {"interrupted": 128 + signal.SIGINT, "preempted": 128 + signal.SIGTERM,
              LAUNCHER_LOST: 128 + signal.SIGHUP}
AT_ONCE = "at_once"  # a stop request: exit now, writing nothing
WATCH_S = 0.25  # how often a job looks at its launch folder
LOST_GRACE_S = 10.0  # a job whose launcher died exits after this, stopped cleanly or not
RESUME = "rerun the same command to resume"
QUIET_TRACKERS = ("ignore::UserWarning:joblib.externals.loky.backend.resource_tracker",
                  "ignore::UserWarning:multiprocessing.resource_tracker")


class StopRequest:
    """This process's request to stop training, set by a signal, by the launcher, or by the launcher's death.
    While no run trains here (composing the config, preparing data), a signal raises KeyboardInterrupt, as
    Python's own handler does, unless the process launched a sweep's jobs or is one's worker."""

    def __init__(self):
        self.reason: str | None = None
        self.signals = 0
        self.runs = 0  # runs training in this process now
        self.raise_when_idle = True
        self.quiet = False  # a job's worker: the launcher speaks for it
        self.launch: Launch | None = None  # the sweep this process launched, or whose jobs it runs
        self._previous: dict | None = None  # the handlers ours replaced

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason

    def _on_signal(self, signum, frame) -> None:
        self.signals += 1
        reason = SIGNAL_REASONS[signum]
        if self.signals > 1:
            self.stop_at_once(reason)
        self.request(reason)
        if self.launch is not None and self.launch.is_launcher:
            self.launch.ask_stop(reason)
        if self.runs == 0 and self.raise_when_idle:
            raise KeyboardInterrupt

    def _again(self, signum, frame) -> None:
        self.stop_at_once(SIGNAL_REASONS[signum])

    def stop_at_once(self, reason: str) -> None:
        if self.launch is not None and self.launch.is_launcher:
            self.launch.ask_stop(AT_ONCE)
        if not self.quiet:
            print(f"\ntrain: {reason} again: stopped at once; each run's last checkpoint stands; {RESUME}",
                  file=sys.stderr, flush=True)
        os._exit(EXIT_CODES[reason])

    def install(self) -> bool:
        """Take SIGINT and SIGTERM (main thread only: Python runs handlers there); False when already ours."""
        if self._previous is not None or threading.current_thread() is not threading.main_thread():
            return False
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNAL_REASONS}
        return True

    @contextmanager
    def handling(self, process_ends: bool = False):
        """Hold SIGINT and SIGTERM for the block; the outermost block puts the handlers before it back and
        forgets the request (a new launch in this process starts afresh). process_ends: the process exits
        after the block (a command's main), so once a signal has stopped it, another one, landing in the
        interpreter's shutdown, stops at once as it would in the block, instead of raising there."""
        if not self.install():
            yield
            return
        try:
            yield
        finally:
            stopped = process_ends and self.signals > 0
            for sig, handler in self._previous.items():
                signal.signal(sig, self._again if stopped else handler)
            if stopped:  # the interpreter's shutdown puts Python-level handlers back to the default: to die
                atexit.register(_ignore_signals)  # by SIGINT, exit code -2 instead of 130; SIG_IGN it keeps
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNAL_REASONS)  # blocked when it launched a sweep
            self.__init__()

    @contextmanager
    def training(self):
        """A run trains in the block: a signal requests a stop instead of raising."""
        with self.handling():
            self.runs += 1
            try:
                yield
            finally:
                self.runs -= 1

    def launching(self, launch: Launch) -> None:
        """This process launched `launch`'s jobs: it waits for them to stop rather than raising. SIGINT and SIGTERM
        are blocked in its threads and taken by a thread of their own: the workers it starts inherit the block,
        so that a signal landing while one starts waits for its handler (serve) instead of killing its job."""
        self.launch, self.raise_when_idle = launch, False
        # A stop at once leaves the launcher's semaphores to the resource trackers, which warn of each "leak"
        # (a screenful after the one line); their processes inherit this environment.
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), *QUIET_TRACKERS]))
        resource_tracker.ensure_running()  # started later (by loky's workers), it would unblock them (CPython 3.11)
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNAL_REASONS)
        threading.Thread(target=self._take_signals, daemon=True, name="take-signals").start()

    def _take_signals(self) -> None:
        while True:
            self._on_signal(signal.sigwait(SIGNAL_REASONS), None)

    def serve(self, launch: Launch) -> None:
        """This process runs jobs of `launch` (a launcher's worker): its signals and the launcher's requests
        stop its runs, quietly, for the rest of its life; a dead launcher ends it."""
        if self.launch is not None:
            return
        self.launch, self.quiet, self.raise_when_idle = launch, True, False
        self.install()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNAL_REASONS)  # blocked since birth by a launcher (launching)
        self._follow(launch.stop_asked())
        threading.Thread(target=self._watch, args=(launch,), daemon=True, name="watch-launcher").start()

    def _follow(self, asked: list[str]) -> None:
        if AT_ONCE in asked:
            os._exit(EXIT_CODES.get(asked[0], 1))
        if asked:
            self.request(asked[0])

    def _watch(self, launch: Launch) -> None:
        while launch.launcher_alive() is not False:
            time.sleep(WATCH_S)
            self._follow(launch.stop_asked())
        self.request(LAUNCHER_LOST)
        deadline = time.monotonic() + LOST_GRACE_S
        while self.runs and time.monotonic() < deadline:
            time.sleep(0.05)
        os._exit(EXIT_CODES[LAUNCHER_LOST])


STOP = StopRequest()


def _ignore_signals() -> None:
    for sig in SIGNAL_REASONS:
        signal.signal(sig, signal.SIG_IGN)


def _process_start(pid: int) -> str | None:
    """When the process began (clock ticks since boot, Linux /proc), telling it from a later one of the same
    pid; None when there is no such process or it has exited (a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, *rest = stat.rsplit(")", 1)[1].split()
    return None if state in ("Z", "X") else rest[18]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Launch:
    """A sweep's launch folder: `launcher` (pid, host, start), `stop` (requests, one a line), `notes` (jobs'
    ends, tab-separated, one a line; short appends, which do not interleave)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        pid, self.host, self.started = (self.folder / "launcher").read_text().split("\t")
        self.pid = int(pid)
        self._slot: tuple | None = None  # (line, its lock) once taken
        self.progress = None  # the launcher's display of the sweep's total (training.sweep.SweepProgress)

    @classmethod
    def create(cls, sweep_dir: Path) -> Launch:
        """The launching process's folder, named to its jobs (which inherit the environment) by LAUNCH_ENV."""
        for earlier in Path(sweep_dir).glob(".launch-*"):  # left by launchers killed before they could remove them
            if (gone := cls.joined(earlier)) is None or gone.launcher_alive() is False:
                shutil.rmtree(earlier, ignore_errors=True)
        folder = Path(sweep_dir) / f".launch-{os.getpid()}-{time.time_ns()}"
        folder.mkdir(parents=True)
        (folder / "launcher").write_text(f"{os.getpid()}\t{socket.gethostname()}\t{_process_start(os.getpid())}")
        os.environ[LAUNCH_ENV] = str(folder)
        return cls(folder)

    @classmethod
    def joined(cls, folder: Path | None = None) -> Launch | None:
        """The launch this process belongs to, or of `folder` (None outside a sweep, or a folder gone with its
        launch)."""
        folder = folder or os.environ.get(LAUNCH_ENV)
        try:
            return cls(Path(folder)) if folder else None
        except (OSError, ValueError):
            return None

    @property
    def is_launcher(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def launcher_alive(self) -> bool | None:
        """None where it cannot be seen (another host)."""
        if self.host != socket.gethostname():
            return None
        if self.started != "None":
            return _process_start(self.pid) == self.started
        return _pid_exists(self.pid)  # no /proc

    def ask_stop(self, reason: str) -> None:
        with open(self.folder / "stop", "a") as f:
            f.write(reason + "\n")

    def stop_asked(self) -> list[str]:
        try:
            return (self.folder / "stop").read_text().split()
        except FileNotFoundError:
            return []

    def note(self, *fields) -> None:
        with open(self.folder / "notes", "a") as f:
            f.write("\t".join(map(str, fields)) + "\n")

    def notes(self, kind: str) -> list[list[str]]:
        try:
            lines = (self.folder / "notes").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [fields[1:] for fields in (line.split("\t") for line in lines) if fields[0] == kind]

    def take_slot(self) -> int:
        """The first free line (1, 2, ...) below the sweep's total for this process's progress bar, held (a lock)
        while it lives: jobs running side by side each draw on a line of their own."""
        if self._slot is not None:
            return self._slot[0]
        for slot in itertools.count(1):
            held = open(self.folder / f"slot-{slot}", "a")
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held.close()
                continue
            self._slot = slot, held
            return slot

    def terminal_lock(self) -> TerminalLock:
        return TerminalLock(self.folder / "terminal.lock")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class TerminalLock:
    """One lock, across the sweep's processes, around each redraw of a progress line (tqdm.set_lock): a redraw is
    several writes (down to its line, the bar, back up), which must not interleave with another process's."""

    def __init__(self, path: Path):
        self._file = open(path, "a")

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        sys.stderr.flush()
        fcntl.flock(self._file, fcntl.LOCK_UN)

    def __enter__(self) -> TerminalLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
