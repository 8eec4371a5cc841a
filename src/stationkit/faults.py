"""Which failures a later run retries by itself.

A failure is caused either by the **environment** -- a full disk or quota
(ENOSPC, EDQUOT), an I/O error (EIO), a permission or a file that vanished,
a ledger that cannot be written, a missing password variable, a connection
fault -- or by the file's **content** (it does not parse, the archive is
corrupt or unsafe, the password does not open it).

Environment failures leave no outcome in the ledger: the file stays pending
and every later run tries it again, automatically, until it succeeds (each
run that fails again reports it again). Content failures are recorded
(``parses.status = 'failed'``, a copy in quarantine/) and tried again only
when the content changes (a new version), when the station's parser or
archive settings change, or with ``--retry-failed``.

A wrong archive password counts as content: one station may hold archives
under several passwords, so retrying each hour could not help and would fire
``on_failure`` every hour; after correcting the variable, run
``stationkit run --retry-failed`` (the message says so). A missing password
variable is environment: setting it is enough.
"""

from __future__ import annotations

import errno
import sqlite3

ENVIRONMENT = "environment"
CONTENT = "content"

#: errno values that say nothing about the file's content
ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOSPC",
        "EDQUOT",
        "EIO",
        "EROFS",
        "EACCES",
        "EPERM",
        "ENOENT",
        "ENOMEM",
        "EMFILE",
        "ENFILE",
        "EAGAIN",
        "EBUSY",
        "ETIMEDOUT",
        "ENOLCK",
        "ESTALE",
        "EINTR",
        "ECONNRESET",
        "ECONNREFUSED",
        "ECONNABORTED",
        "ENETUNREACH",
        "EHOSTUNREACH",
        "ENOTCONN",
        "EPIPE",
    )
    if hasattr(errno, name)
)

#: what sqlite3 says when the disk, not the database, is the problem
_SQLITE_ENVIRONMENT = ("full", "disk i/o", "locked", "unable to open", "readonly", "out of memory")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 16:
        seen.append(cur)
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return seen


def is_environment(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is an environment failure."""
    for e in _chain(exc):
        if getattr(e, "environment", False):
            return True
        if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
            return True
        if isinstance(e, sqlite3.OperationalError) and any(
            word in str(e).lower() for word in _SQLITE_ENVIRONMENT
        ):
            return True
        if isinstance(e, MemoryError):
            return True
    return False


def kind_of(exc: BaseException) -> str:
    """:data:`ENVIRONMENT` or :data:`CONTENT`."""
    return ENVIRONMENT if is_environment(exc) else CONTENT


def describe_os_error(exc: OSError) -> str:
    """``No space left on device`` (or the error's text): what the OS said."""
    return exc.strerror or str(exc) or type(exc).__name__
