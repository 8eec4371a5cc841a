"""The data directory's run lock, so two runs never interleave.

A kernel lock held on ``data_dir/.stationkit.lock`` through the filelock
library: ``flock`` on POSIX, ``LockFileEx`` on Windows (where LoggerNet and
Windographer live); either is released by the kernel when the process dies,
so a killed run never leaves a stale lock. The holder writes its pid beside
the lock (``.stationkit.lock.pid``) for the message a second run shows.

Readers (``status``) never take it: the ledger is SQLite in WAL mode and
stays readable while a run writes.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from types import TracebackType

from stationkit.errors import LockedError
from stationkit.layout import prepare_data_dir
from stationkit.lease import end_leases

with warnings.catch_warnings():
    # without fcntl (never on a real POSIX system) filelock warns that only a
    # lock file's presence can be used; cron output must stay quiet
    warnings.simplefilter("ignore")
    import filelock

LOCK_NAME = ".stationkit.lock"
PID_NAME = ".stationkit.lock.pid"
#: how often a waiting run tries again [s]
POLL_S = 0.2


class RunLock:
    """An exclusive lock on ``data_dir``; ``wait`` blocks until it is free
    (at most ``timeout_s`` seconds when given)."""

    def __init__(
        self, data_dir: Path, *, wait: bool = False, timeout_s: float | None = None
    ) -> None:
        self.path = data_dir / LOCK_NAME
        self.wait = wait
        self.timeout_s = timeout_s
        self._lock: filelock.BaseFileLock | None = None

    def acquire(self) -> None:
        prepare_data_dir(self.path.parent)
        lock = filelock.FileLock(str(self.path), thread_local=False)
        timeout = (-1 if self.timeout_s is None else self.timeout_s) if self.wait else 0
        try:
            lock.acquire(timeout=timeout, poll_interval=POLL_S)
        except filelock.Timeout:
            raise LockedError(
                f"{self.path.parent}: another stationkit process{_holder(self.path)} is running "
                "on this data directory; try again later or use --wait"
            ) from None
        self._lock = lock
        with contextlib.suppress(OSError):  # only for the message above
            self.path.with_name(PID_NAME).write_text(f"{os.getpid()}\n")
        # a distributed run's client that died left its lease: its tasks stop now
        with contextlib.suppress(OSError):
            end_leases(self.path.parent)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _holder(lock_path: Path) -> str:
    try:
        pid = lock_path.with_name(PID_NAME).read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
