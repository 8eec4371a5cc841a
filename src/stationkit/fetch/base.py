"""What every file source offers the fetch stage, and the path-safety rule.

A source lists its files (:class:`RemoteFile`: a relative POSIX path, size,
mtime) and downloads a batch, each file to a temporary path the fetch stage
chooses inside raw/<station>/. The stage -- not the source -- verifies the
size, hashes, renames into place and records the ledger row, so every source
gets the same atomicity and idempotency.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Protocol

from stationkit.errors import FetchError


@dataclass(frozen=True, order=True)
class RemoteFile:
    """A file a source offers: ``path`` relative to the source root."""

    path: str
    size: int
    mtime: float


#: (file, None) when it was written completely to its temporary path,
#: (file, error) when that file failed; the batch goes on.
DownloadResult = tuple[RemoteFile, Exception | None]


class FileSource(Protocol):
    """A place logger files come from."""

    def list_files(self) -> list[RemoteFile]:
        """The files matching the station's patterns, sorted by path."""
        ...

    def download(
        self, files: Sequence[RemoteFile], target: Callable[[RemoteFile], Path]
    ) -> Iterator[DownloadResult]:
        """Write each file to ``target(file)``; yield one result per file."""
        ...


def safe_relpath(name: str, *, what: str = "remote file") -> PurePosixPath:
    """``name`` as a relative path that cannot escape its root.

    Refuses absolute paths, ``..``, empty names, NUL bytes, backslashes and
    drive letters -- a remote server or an archive never writes outside
    raw/<station>/ or staging/<station>/.
    """
    if not name or "\x00" in name or "\\" in name:
        raise FetchError(f"{what} {name!r}: refused, not a safe relative path")
    p = PurePosixPath(name)
    if p.is_absolute() or (p.parts and ":" in p.parts[0]):
        raise FetchError(f"{what} {name!r}: refused, absolute paths are not allowed")
    parts = [part for part in p.parts if part not in ("", ".")]
    if not parts or any(part == ".." for part in parts):
        raise FetchError(f"{what} {name!r}: refused, '..' would escape the station folder")
    return PurePosixPath(*parts)


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def matches(path: str, patterns: Sequence[str]) -> bool:
    """True if the file NAME matches a glob pattern, or -- for a pattern with
    a '/' -- the relative path does (``2024/*.dat``). Case-sensitive."""
    name = path.rsplit("/", 1)[-1]
    for pat in patterns:
        target = path if "/" in pat else name
        if _glob(pat).match(target):
            return True
    return False
