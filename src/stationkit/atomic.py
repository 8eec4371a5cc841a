"""Files appear atomically: written under a temporary name in the same
directory, fsynced, renamed, and the directory fsynced. A crash at any
instant leaves the old file or the new one, never a half-written one.

Also the file helpers every stage shares: content hashing, hard-link-or-copy
(quarantine) and names that fit the file system's limit.

Portability: on Windows a directory cannot be opened to be fsynced (NTFS
orders a rename by itself), a file is fsynced through a handle open for
writing, and hard links fall back to copies."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO

TMP_PREFIX = ".stationkit-tmp-"
#: the longest file name [bytes] where the file system cannot say (ext4, NTFS, APFS)
NAME_MAX = 255
#: room a temporary name takes before the target's name: prefix, pid (up to 10 digits), token
_TMP_ROOM = len(TMP_PREFIX) + 10 + 1 + 8 + 1
_WINDOWS = os.name == "nt"
#: a context held around each rename into place; raises to refuse the commit
Guard = Callable[[], contextlib.AbstractContextManager[object]]
#: set while a distributed task runs (stationkit.lease): refuses once its run has ended
_COMMIT_GUARD: ContextVar[Guard | None] = ContextVar("_COMMIT_GUARD", default=None)


def name_max(folder: Path) -> int:
    """The longest file name [bytes] ``folder``'s file system takes, at most :data:`NAME_MAX`."""
    pathconf = getattr(os, "pathconf", None)  # not on Windows
    if pathconf is not None:
        with contextlib.suppress(OSError, ValueError):
            return max(64, min(NAME_MAX, int(pathconf(folder, "PC_NAME_MAX"))))
    return NAME_MAX


def fit_name(name: str, limit: int = NAME_MAX) -> str:
    """``name`` when its UTF-8 form fits in ``limit`` bytes; else a shortened name
    that stays unique: its start, ``~``, 16 hex digits of its sha256, ``~``, and
    its last (up to 32) bytes, which keep the extension."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    tail = _utf8_start(raw[-min(32, limit // 4) :])
    head = _utf8_end(raw[: max(0, limit - len(tail) - len(digest) - 2)])
    return b"~".join((head, digest.encode(), tail)).decode("utf-8", "surrogateescape")


def _utf8_start(raw: bytes) -> bytes:
    """Drop continuation bytes a cut left at the start."""
    while raw and raw[0] & 0xC0 == 0x80:
        raw = raw[1:]
    return raw


def _utf8_end(raw: bytes) -> bytes:
    """Drop an incomplete multi-byte character a cut left at the end."""
    for back in range(1, min(4, len(raw)) + 1):
        lead = raw[-back]
        if lead & 0xC0 == 0x80:
            continue
        need = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
        return raw if need <= back else raw[:-back]
    return raw


def temp_tail(target: Path) -> str:
    """What follows ``<prefix><pid>-<token>-`` in a temporary name for ``target``:
    its name, shortened when the whole would not fit in the file system's limit."""
    return fit_name(target.name, name_max(target.parent) - _TMP_ROOM - len(_TMP_SUFFIX))


#: data-file suffixes a temporary never ends in: readers of the lake glob
#: ``**/*.parquet`` (polars and DuckDB do not skip hidden files) and must not
#: open a file that is still being written
_GLOBBED = (".parquet",)
_TMP_SUFFIX = ".part"


def temp_path(target: Path) -> Path:
    """A unique temporary name beside ``target`` (same filesystem)."""
    name = f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{temp_tail(target)}"
    if target.suffix in _GLOBBED:
        name += _TMP_SUFFIX
    return target.with_name(name)


def fsync_dir(path: Path) -> None:
    if _WINDOWS:
        return  # a directory cannot be opened for fsync; NTFS journals the rename
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: set while building outputs aside that are made durable at once (sync_tree)
_DEFERRED_SYNC: ContextVar[bool] = ContextVar("_DEFERRED_SYNC", default=False)


@contextlib.contextmanager
def deferred_sync() -> Iterator[None]:
    """Commits in this context skip their fsyncs (the renames stay atomic).

    Only for outputs built aside that nobody reads until :func:`sync_tree`
    made them durable and they are moved into place (a rebuild): a crash
    before that throws the whole aside folder away. Hundreds of small fsyncs
    from parallel workers queue on the file system's journal."""
    token = _DEFERRED_SYNC.set(True)
    try:
        yield
    finally:
        _DEFERRED_SYNC.reset(token)


def sync_tree(root: Path) -> None:
    """Make every file written below ``root`` durable: the kernel's ``sync``
    where there is one, else an fsync of every file and folder."""
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()
        return
    for folder, _dirs, files in os.walk(root):  # pragma: no cover (Windows)
        for name in files:
            with contextlib.suppress(OSError):
                fd = os.open(Path(folder) / name, os.O_RDWR | getattr(os, "O_BINARY", 0))
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fsync_dir(Path(folder))


@contextlib.contextmanager
def commit_guard(guard: Guard) -> Iterator[None]:
    """Hold ``guard()`` around every rename into place in this context (and in
    threads started with a copy of it); what it raises stops the commit: the
    temporary goes, the target stays as it was."""
    token = _COMMIT_GUARD.set(guard)
    try:
        yield
    finally:
        _COMMIT_GUARD.reset(token)


def committing() -> contextlib.AbstractContextManager[object]:
    """Hold while renaming an output into place: the context's guard, if any."""
    guard = _COMMIT_GUARD.get()
    return guard() if guard is not None else contextlib.nullcontext()


def commit(tmp: Path, target: Path) -> None:
    """fsync ``tmp`` and rename it onto ``target``; fsync the directory."""
    durable = not _DEFERRED_SYNC.get()
    if durable:
        # Windows flushes (FlushFileBuffers) only through a handle open for writing
        fd = os.open(tmp, (os.O_RDWR | getattr(os, "O_BINARY", 0)) if _WINDOWS else os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    with committing():
        replace(tmp, target)
    if durable:
        fsync_dir(target.parent)


def replace(src: Path, target: Path) -> None:
    """``os.replace``; on Windows a few tries more while another process (a virus
    scanner, an indexer) briefly holds ``target`` open."""
    for attempt in range(5 if _WINDOWS else 0):
        try:
            os.replace(src, target)
            return
        except PermissionError:
            time.sleep(0.05 * 2**attempt)
    os.replace(src, target)


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
        except (OSError, AttributeError, NotImplementedError):  # FAT, some shares, no links
            shutil.copyfile(src, tmp)
