"""The fetch stage: new or changed files from a station's source into raw/.

Only files that are new, or whose size or mtime changed, are transferred.
Each lands atomically (temporary name, size verified, fsync, rename) and is
recorded in the ledger with its sha256; a file whose content turns out to be
unchanged (only the mtime moved) is not stored again. A file that changed
becomes a new version beside the old one (see :func:`layout.version_name`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from stationkit.atomic import commit, sha256_file, temp_path
from stationkit.config import Config, LocalSource, StationConfig
from stationkit.errors import FetchError, StationkitError
from stationkit.faults import ENVIRONMENT
from stationkit.fetch.base import FileSource, RemoteFile, safe_relpath
from stationkit.fetch.local import LocalFolderSource
from stationkit.layout import raw_dir, version_name
from stationkit.ledger import FileRow, Ledger
from stationkit.secrets import get_secret

log = logging.getLogger(__name__)

STAGE = "fetch"

Progress = Callable[[str, int], None]


@dataclass
class FetchSummary:
    """What one station's fetch did."""

    station: str
    listed: int = 0
    fetched: int = 0
    unchanged: int = 0
    skipped_interval: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "listed": self.listed,
            "fetched": self.fetched,
            "unchanged": self.unchanged,
            "skipped_interval": self.skipped_interval,
            "errors": [{"file": f, "error": e} for f, e in self.errors],
        }


def open_source(config: Config, station: StationConfig) -> FileSource:
    """The source object for a station's ``[source]`` settings."""
    src = station.source
    if isinstance(src, LocalSource):
        return LocalFolderSource(src)
    if src is None:
        raise FetchError(f"stations.{station.id}.source: not set; nothing to fetch")
    from stationkit.fetch.sftp import SftpFileSource  # asyncssh loads only when needed

    return SftpFileSource(src, secrets=lambda name: get_secret(config, name))


def _due(ledger: Ledger, station: StationConfig, now: datetime) -> bool:
    if station.fetch_interval_minutes <= 0:
        return True
    info = ledger.fetch_info(station.id)
    if info is None or not info["last_success_at"]:
        return True
    last = datetime.fromisoformat(str(info["last_success_at"]).replace("Z", "+00:00"))
    return now - last >= timedelta(minutes=station.fetch_interval_minutes)


def _store(
    ledger: Ledger,
    data_dir: Path,
    station: str,
    origin: str,
    source_path: str,
    tmp: Path,
    mtime: float | None,
    known: FileRow | None,
) -> bool:
    """Move a complete temporary file into raw/ and record it; False if unchanged."""
    digest = sha256_file(tmp)
    if known is not None and known.sha256 == digest:
        tmp.unlink()
        ledger.touch_file(known.id, mtime)
        return False
    version = known.version + 1 if known is not None else 1
    rel = version_name(PurePosixPath(source_path), version)
    final = raw_dir(data_dir, station) / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    commit(tmp, final)
    ledger.add_file(
        station=station,
        origin=origin,
        source_path=source_path,
        path=final.relative_to(data_dir).as_posix(),
        size=final.stat().st_size,
        mtime=mtime,
        sha256=digest,
    )
    return True


def fetch_station(
    config: Config,
    station: StationConfig,
    ledger: Ledger,
    *,
    force: bool = False,
    now: datetime | None = None,
    source: FileSource | None = None,
) -> FetchSummary:
    """Fetch one station's new or changed files. Per-file errors are collected;
    a source that cannot be reached raises :class:`FetchError`."""
    summary = FetchSummary(station.id)
    now = now or datetime.now(UTC)
    if station.source is None and source is None:
        return summary
    if not force and not _due(ledger, station, now):
        summary.skipped_interval = True
        return summary
    data_dir = config.data_dir
    src = source or open_source(config, station)
    try:
        listing = src.list_files()
        summary.listed = len(listing)
        versions = ledger.known_versions(station.id, "fetch")
        todo: list[RemoteFile] = []
        rels: dict[RemoteFile, PurePosixPath] = {}
        for f in listing:
            if versions.get(f.path) == (f.size, f.mtime):
                continue
            try:
                rels[f] = safe_relpath(f.path)
            except FetchError as exc:
                summary.errors.append((f.path, str(exc)))
                continue
            todo.append(f)
        known = ledger.latest_by_source(station.id, "fetch") if todo else {}
        summary.fetched, summary.unchanged = _transfer(
            src, todo, rels, known, ledger, data_dir, station.id, summary
        )
    except StationkitError as exc:
        ledger.record_fetch(station.id, error=str(exc))
        ledger.event("fetch", str(exc), station=station.id)
        raise  # the caller records the failure (the run, or the fetch command)
    finally:
        close = getattr(src, "close", None)
        if callable(close):
            close()
    # a failed transfer keeps no outcome: the next run tries the file again
    for path, message in summary.errors:
        ledger.event("fetch", f"{path}: {message}", station=station.id)
        ledger.record_failure(station.id, STAGE, path, message, kind=ENVIRONMENT)
    ledger.resolve_failures(station.id, STAGE)  # the source could be listed
    ledger.record_fetch(station.id, error=summary.errors[0][1] if summary.errors else None)
    return summary


def _transfer(
    src: FileSource,
    todo: Sequence[RemoteFile],
    rels: dict[RemoteFile, PurePosixPath],
    known: dict[str, FileRow],
    ledger: Ledger,
    data_dir: Path,
    station: str,
    summary: FetchSummary,
) -> tuple[int, int]:
    fetched = unchanged = 0
    temps: dict[RemoteFile, Path] = {}

    def target(f: RemoteFile) -> Path:
        final = raw_dir(data_dir, station) / rels[f]
        final.parent.mkdir(parents=True, exist_ok=True)
        temps[f] = temp_path(final)
        return temps[f]

    try:
        for f, error in src.download(todo, target):
            tmp = temps.get(f)
            if error is None and tmp is not None and tmp.stat().st_size != f.size:
                error = FetchError(
                    f"{f.path}: expected {f.size} bytes, received {tmp.stat().st_size}"
                )
            if error is not None or tmp is None:
                summary.errors.append((f.path, str(error)))
                if tmp is not None:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
                continue
            try:
                stored = _store(
                    ledger, data_dir, station, "fetch", f.path, tmp, f.mtime, known.get(f.path)
                )
            except OSError as exc:  # a full disk: the next run fetches it again
                summary.errors.append(
                    (f.path, f"cannot store {tmp.parent} ({exc.strerror or exc})")
                )
                continue
            ledger.resolve_failures(station, STAGE, f.path)
            if stored:
                fetched += 1
            else:
                unchanged += 1
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return fetched, unchanged


def add_files(
    config: Config, station: StationConfig, files: Iterable[Path], ledger: Ledger
) -> FetchSummary:
    """A manual upload: copy ``files`` into raw/<station>/manual/ as fetch would."""
    summary = FetchSummary(station.id)
    data_dir = config.data_dir
    for path in files:
        summary.listed += 1
        source_path = f"manual/{path.name}"
        try:
            final = raw_dir(data_dir, station.id) / source_path
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(final)
            try:
                with open(path, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                known = ledger.latest(station.id, "add", source_path)
                stored = _store(
                    ledger,
                    data_dir,
                    station.id,
                    "add",
                    source_path,
                    tmp,
                    path.stat().st_mtime,
                    known,
                )
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        except OSError as exc:
            summary.errors.append((str(path), f"cannot read ({exc.strerror})"))
            continue
        if stored:
            summary.fetched += 1
        else:
            summary.unchanged += 1
    return summary
