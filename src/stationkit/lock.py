"""The data directory's run lock (fcntl), so two runs never interleave.

Readers (``status``) never take it: the ledger is SQLite in WAL mode and
stays readable while a run writes.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from stationkit.errors import LockedError

LOCK_NAME = ".stationkit.lock"


class RunLock:
    """An exclusive lock on ``data_dir``; ``wait`` blocks until it is free."""

    def __init__(
        self, data_dir: Path, *, wait: bool = False, timeout_s: float | None = None
    ) -> None:
        self.path = data_dir / LOCK_NAME
        self.wait = wait
        self.timeout_s = timeout_s
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not self.wait or (deadline is not None and time.monotonic() > deadline):
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockedError(
                        f"{self.path.parent}: another stationkit process{holder} is running "
                        "on this data directory; try again later or use --wait"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

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


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
