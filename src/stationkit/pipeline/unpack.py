"""The unpack stage: extract a station's new archives into staging/.

For each current file version of the station that has no parse outcome yet
and whose content is an archive (by magic bytes), the members are extracted
into ``staging/<station>/<path below raw/<station>/>/`` (``raw/M001/2024/a.zip``
-> ``staging/M001/2024/a.zip/<members>``), each member is recorded in the
ledger as a file of its own (origin ``member``, ``source_path`` = its name in
the archive chain, ``parent_id`` = the archive's file id) and the archive
gets a parse outcome of status ``archive`` listing its members. The parse
stage then parses the members like any other file.

Nested archives are flattened: a member of ``inner.7z`` inside ``a.zip`` is
named ``inner.7z/x.dat`` and its parent is ``a.zip``'s row, so one hop from
any member reaches the fetched file (``parent_id``) and the name shows the
chain.

An archive that fails for its content (corrupt, unsafe, a wrong password)
gets a parse outcome of status ``failed`` with the reason, an ``unpack``
event, and a hard link (or copy) in
``quarantine/<station>/<path below raw/<station>/>``; the other archives go
on. It is tried again when the station's ``[archives]`` settings change or
with ``retry_failed``. One that fails because of the environment (a full
disk, an I/O error, a missing password variable; see
:mod:`stationkit.faults`) gets no outcome: the next run tries it again by
itself. Either way the failure is recorded in the ledger's ``failures``.
Re-running does nothing: every archive handled has a parse outcome.

A new version of an archive (a changed file) has new members with a new
parent: they are new logical files. The earlier version's members stay as
they were; :func:`stale_member_ids` lists them so the parse stage can drop
their readings (see its docstring).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from stationkit.atomic import fit_name, link_or_copy
from stationkit.config import Config, StationConfig
from stationkit.errors import StationkitError, UnpackError
from stationkit.faults import CONTENT, ENVIRONMENT, is_environment
from stationkit.fetch.magic import ARCHIVE_KINDS
from stationkit.fetch.unpack import Member, detect_archive, extract_archive
from stationkit.layout import quarantine_dir, raw_dir, staging_dir
from stationkit.ledger import FileRow, Ledger
from stationkit.secrets import get_secret

log = logging.getLogger(__name__)

STAGE = "unpack"


@dataclass
class UnpackSummary:
    """What one unpack_station call did."""

    station: str
    #: archives extracted
    archives: int = 0
    #: members recorded in the ledger
    members: int = 0
    #: archives that failed (quarantined)
    failed: int = 0
    #: (archive path relative to data_dir, error message) per failed archive
    errors: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = [{"file": f, "error": e} for f, e in self.errors]
        return d


def unpack_station(
    config: Config, station: StationConfig, ledger: Ledger, *, retry_failed: bool = False
) -> UnpackSummary:
    """Extract every new archive of ``station``; see the module docstring.

    ``retry_failed`` also retries archives that failed before (e.g. after
    the password variable was set); a success then removes the quarantined
    copy and replaces the failed outcome.
    """
    data_dir = config.data_dir
    summary = UnpackSummary(station=station.id)
    _retry_if_settings_changed(ledger, station)
    password_env = station.archives.password_env
    password: str | None = None
    password_read = False
    for row in _candidates(ledger, station.id, retry_failed=retry_failed):
        src = data_dir / row.path
        try:
            kind = detect_archive(src)
        except OSError as exc:
            log.warning("%s: cannot read (%s); left for the parse stage", row.path, exc.strerror)
            continue
        if kind is None:
            continue
        if not password_read:
            password, password_read = get_secret(config, password_env), True
        rel = _relative_to_raw(row, station.id)
        dest = staging_dir(data_dir, station.id) / rel
        try:
            members = extract_archive(
                src,
                dest,
                password=password,
                password_env=password_env,
                max_member_bytes=station.archives.max_member_bytes,
                name=row.path,
            )
            recorded = _record_members(ledger, data_dir, station.id, row, members)
        except (StationkitError, OSError, sqlite3.IntegrityError) as exc:
            message = _message(exc, row.path)
            if is_environment(exc):
                log.warning("%s (tried again next run)", message)
                with ledger.transaction():
                    ledger.forget_parse([row.id])  # an earlier outcome (retry_failed)
                    ledger.record_failure(
                        station.id, STAGE, row.path, message, kind=ENVIRONMENT, file_id=row.id
                    )
            else:
                _fail(ledger, data_dir, station.id, row, rel, kind, message)
            summary.failed += 1
            summary.errors.append((row.path, message))
            continue
        with ledger.transaction():
            ledger.record_parse(
                row.id, station.id, "archive", format=kind, meta={"members": recorded}
            )
            ledger.resolve_failures(station.id, STAGE, row.path)
        with contextlib.suppress(FileNotFoundError):
            (quarantine_dir(data_dir, station.id) / rel).unlink()  # an earlier failure
        summary.archives += 1
        summary.members += len(members)
        log.info("%s: %d members into %s", row.path, len(members), dest.relative_to(data_dir))
    return summary


def stale_member_ids(ledger: Ledger, station: str) -> list[int]:
    """Members extracted from an archive version that a newer version replaced,
    and whose outcome the parse stage has not yet marked ``superseded``.

    The parse stage calls this BEFORE choosing files to parse, and for each id:
    deletes the readings of a member parsed ``ok`` (its ``parses.output``) and
    sets its status to ``superseded`` (``ledger.set_parse_status``); a member
    never parsed gets ``ledger.record_parse(id, station, "superseded")`` so it
    is never parsed. The query then returns nothing: it is idempotent.
    """
    rows = ledger.conn.execute(
        "SELECT m.id FROM files m "
        "JOIN files a ON a.id = m.parent_id "
        "LEFT JOIN parses p ON p.file_id = m.id "
        "WHERE m.station = ? AND m.origin = 'member' AND a.superseded_by IS NOT NULL "
        "AND (p.status IS NULL OR p.status != 'superseded') "
        "ORDER BY m.id",
        (station,),
    ).fetchall()
    return [int(r[0]) for r in rows]


# ---------------------------------------------------------------- helpers


def _candidates(ledger: Ledger, station: str, *, retry_failed: bool) -> list[FileRow]:
    """Current, not-yet-handled file versions that may be archives (members never
    are: nested archives were extracted with their parent)."""
    rows = [r for r in ledger.files_to_parse(station) if r.origin != "member"]
    if retry_failed:
        marks = ",".join("?" * len(ARCHIVE_KINDS))
        failed = ledger.conn.execute(
            "SELECT f.id FROM files f JOIN parses p ON p.file_id = f.id "
            "WHERE f.station = ? AND f.superseded_by IS NULL AND f.origin != 'member' "
            f"AND p.status = 'failed' AND p.format IN ({marks}) ORDER BY f.id",
            (station, *ARCHIVE_KINDS),
        ).fetchall()
        rows += [ledger.get_file(int(r[0])) for r in failed]
        rows.sort(key=lambda r: r.id)
    return rows


def _relative_to_raw(row: FileRow, station: str) -> PurePosixPath:
    """The archive's path below raw/<station>/ (its staging and quarantine path)."""
    p = PurePosixPath(row.path)
    with contextlib.suppress(ValueError):
        return p.relative_to(raw_dir(Path(), station).as_posix())
    # not fetched into raw/<station>/ (e.g. added from elsewhere): keep it apart
    return PurePosixPath("_files", fit_name(f"{row.id}-{p.name}"))


def _record_members(
    ledger: Ledger, data_dir: Path, station: str, archive: FileRow, members: list[Member]
) -> list[dict[str, object]]:
    recorded: list[dict[str, object]] = []
    for m in members:
        path = m.path.relative_to(data_dir).as_posix()
        # an interrupted earlier run may have recorded this member already
        prev = ledger.latest(station, "member", m.name, archive.id)
        if prev is not None and prev.sha256 == m.sha256 and prev.path == path:
            file_id = prev.id
        else:
            file_id = ledger.add_file(
                station=station,
                origin="member",
                source_path=m.name,
                path=path,
                size=m.size,
                mtime=None,
                sha256=m.sha256,
                parent_id=archive.id,
            )
        recorded.append(
            {"name": m.name, "file_id": file_id, "size": m.size, "sha256": m.sha256, "kind": m.kind}
        )
    return recorded


def _message(exc: BaseException, path: str) -> str:
    if isinstance(exc, UnpackError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{path}: cannot extract ({exc.strerror or exc})"
    return f"{path}: {exc}"


def _fail(
    ledger: Ledger,
    data_dir: Path,
    station: str,
    row: FileRow,
    rel: PurePosixPath,
    kind: str,
    message: str,
) -> None:
    log.warning("%s", message)
    target = quarantine_dir(data_dir, station) / rel
    try:
        link_or_copy(data_dir / row.path, target)
    except OSError as exc:
        log.error("%s: cannot quarantine (%s)", row.path, exc.strerror)
    with ledger.transaction():  # the outcome and its failure, or neither
        ledger.record_parse(row.id, station, "failed", format=kind, error=message)
        ledger.event(STAGE, message, station=station, file_id=row.id)
        ledger.record_failure(station, STAGE, row.path, message, kind=CONTENT, file_id=row.id)


SETTINGS_STAGE = "unpack-settings"


def _retry_if_settings_changed(ledger: Ledger, station: StationConfig) -> None:
    """Archives that failed for their content are tried again when the station's
    [archives] settings change (the variable named, the size limit)."""
    a = station.archives
    new = f"{a.password_env}|{a.max_member_bytes}"
    old = ledger.build_fingerprint(station.id, SETTINGS_STAGE)
    if old == new:
        return
    if old is not None:
        forget_failed_archives(ledger, station.id)
    ledger.record_build(station.id, SETTINGS_STAGE, new)


def forget_failed_archives(ledger: Ledger, station: str) -> int:
    """Drop the ``failed`` outcomes of a station's current archive versions, so the
    next unpack tries them again (what ``retry_failed`` does for one call)."""
    marks = ",".join("?" * len(ARCHIVE_KINDS))
    cur = ledger.conn.execute(
        "DELETE FROM parses WHERE station = ? AND status = 'failed' "
        f"AND format IN ({marks}) AND file_id IN "
        "(SELECT id FROM files WHERE station = ? AND superseded_by IS NULL AND origin != 'member')",
        (station, *ARCHIVE_KINDS, station),
    )
    return cur.rowcount
