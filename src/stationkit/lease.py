"""Leases: a distributed run's permission for its workers to write.

The client of a distributed run (``--scheduler``) writes a lease file below
the data directory before it hands out work, and removes it when the run
ends, however it ends. A worker task writes outputs only while the lease of
the run that sent it exists: every rename of an output into place holds a
shared ``flock`` on the lease and checks that it is still linked
(:func:`stationkit.atomic.commit_guard`). So a task orphaned by a client
that gave up (the scheduler went away) or died stops at its next output
instead of overwriting, minutes later, what a newer run wrote.

Whoever takes the run lock ends every lease left by a client that died
without removing its own (:func:`end_leases`): holding the lock, no other
client is alive. Ending a lease takes its ``flock`` exclusively first, so a
rename in flight finishes before and none starts after.

On NFS, ``flock`` is a lock of the server (NFSv4); a removed lease can
still be seen for the attribute cache time, but not locked and found linked.
Without ``fcntl`` (Windows workers) only the check that the lease exists is
made.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from stationkit.atomic import Guard, write_bytes
from stationkit.errors import StationkitError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

#: where leases live, below the data directory
LEASES = Path(".tmp") / "cluster"


class LeaseEnded(StationkitError):
    """The run that sent this task has ended: its outputs are not wanted any more."""


def new_lease(data_dir: Path, text: str) -> str:
    """Write a new lease; its path relative to ``data_dir``."""
    name = f"probe-{secrets.token_hex(8)}"
    write_bytes(data_dir / LEASES / name, text.encode())
    return (LEASES / name).as_posix()


def end_leases(data_dir: Path) -> int:
    """Remove every lease (the caller holds the run lock) once no commit holds
    it; how many there were."""
    folder = data_dir / LEASES
    if not folder.is_dir():
        return 0
    ended = 0
    for old in sorted(folder.iterdir()):
        if not old.name.startswith("probe-"):
            continue
        try:
            fd = os.open(old, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # the renames in flight end first
            old.unlink(missing_ok=True)
            ended += 1
        finally:
            os.close(fd)
    return ended


def lease_guard(data_dir: Path, lease: str) -> Guard:
    """A commit guard: holds ``lease`` (shared) around a rename; raises
    :class:`LeaseEnded` once it is gone."""
    path = data_dir / lease

    def ended() -> LeaseEnded:
        return LeaseEnded(
            f"the run that sent this task has ended ({lease} is gone); output not written"
        )

    @contextlib.contextmanager
    def hold() -> Iterator[None]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise ended() from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_SH)
            if os.fstat(fd).st_nlink == 0:  # removed while we waited for the lock
                raise ended()
            yield
        finally:
            os.close(fd)  # and with it the lock

    return hold
