"""Files appear atomically: written under a temporary name in the same
directory, fsynced, renamed, and the directory fsynced. A crash at any
instant leaves the old file or the new one, never a half-written one.

Also the two file helpers every stage shares: content hashing and
hard-link-or-copy (quarantine)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TMP_PREFIX = ".stationkit-tmp-"
#: data-file suffixes a temporary never ends in: readers of the lake glob
#: ``**/*.parquet`` (polars and DuckDB do not skip hidden files) and must not
#: open a file that is still being written
_GLOBBED = (".parquet",)
_TMP_SUFFIX = ".part"


def temp_path(target: Path) -> Path:
    """A unique temporary name beside ``target`` (same filesystem)."""
    name = f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{target.name}"
    if target.suffix in _GLOBBED:
        name += _TMP_SUFFIX
    return target.with_name(name)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, target: Path) -> None:
    """fsync ``tmp`` and rename it onto ``target``; fsync the directory."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        yield tmp
        commit(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(target: Path, mode: str = "wb") -> Iterator[IO[bytes]]:
    with atomic_output(target) as tmp, open(tmp, mode) as fh:
        yield fh  # type: ignore[misc]


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_open(target) as fh:
        fh.write(data)


def clean_temp_files(folder: Path) -> int:
    """Remove temporaries a crashed process left below ``folder``."""
    removed = 0
    if not folder.exists():
        return 0
    for p in sorted(folder.rglob(f"{TMP_PREFIX}*"), reverse=True):
        with contextlib.suppress(FileNotFoundError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)  # a half-done extraction
            else:
                p.unlink()
            removed += 1
    return removed


def sha256_file(path: Path) -> str:
    """The sha256 of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def link_or_copy(src: Path, target: Path) -> None:
    """Hard-link ``src`` at ``target`` (a copy across filesystems), atomically."""
    with atomic_output(target) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
