"""The parse stage: every new file version of a station into lake/readings.

For each current file version without a parse outcome: sniff, parse, turn
labels into UTC period starts (:mod:`stationkit.timeconv`), drop exact
duplicate rows, and write ``lake/readings/station=<id>/part-<file_id>.parquet``
atomically before the ledger row (a crash in between re-parses the file and
writes the same bytes). Superseded versions lose their readings.

Outcomes in the ledger (``parses.status``):

* ``ok`` -- readings written;
* ``failed`` -- the file's content could not be read; a hard link (or copy)
  is put in quarantine/<station>/ and the reason recorded; raw/ keeps the
  original. Tried again when the station's parser settings change or with
  ``retry_failed``. A file that failed because of the environment (an I/O
  error, a full disk: :mod:`stationkit.faults`) gets no outcome and is tried
  again by the next run; either failure is recorded in ``failures``;
* ``skipped`` -- recognised, but holds no readings (an event log);
* ``archive`` -- written by the unpack stage; archives are never parsed here.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from stationkit import plausible
from stationkit.atomic import fit_name, link_or_copy
from stationkit.clock import Clock, StationClock
from stationkit.config import Config, StationConfig
from stationkit.errors import NotReadingsError, ParseError, UnknownFormatError
from stationkit.faults import CONTENT, ENVIRONMENT, is_environment
from stationkit.fetch.magic import ARCHIVE_KINDS, archive_kind
from stationkit.layout import quarantine_dir
from stationkit.ledger import FileRow, Ledger, iso
from stationkit.parsers import delimited
from stationkit.parsers.base import TIMESTAMP, ParseResult
from stationkit.parsers.registry import detect_format, get_parser
from stationkit.parsers.sources import read_head
from stationkit.pipeline.unpack import stale_member_ids
from stationkit.plausible import Window
from stationkit.progress import Progress, ProgressCallback, notify
from stationkit.store import READINGS_LAYOUT, readings_path, write_readings
from stationkit.timeconv import resolve, to_period_start_utc

log = logging.getLogger(__name__)


@dataclass
class ParseSummary:
    """What one station's parse did."""

    station: str
    parsed: int = 0
    readings: int = 0
    failed: int = 0
    skipped: int = 0
    waiting_archives: int = 0
    superseded: int = 0
    #: files parsed again because the station's clock or parser settings changed
    reparsed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = [{"file": f, "error": e} for f, e in self.errors]
        return d


def _quarantined(data_dir: Path, row: FileRow) -> Path:
    """Where a file that failed to parse is copied (a name within the file system's limit)."""
    name = PurePosixPath(row.path).name
    return quarantine_dir(data_dir, row.station) / fit_name(f"{row.id:019d}-{name}")


def _quarantine(data_dir: Path, row: FileRow) -> None:
    dest = _quarantined(data_dir, row)
    if not dest.exists():
        link_or_copy(data_dir / row.path, dest)


def _options(station: StationConfig, fmt: str) -> dict[str, Any]:
    return dict(station.parser_options.get(fmt, {}))


def parse_one(
    config: Config,
    station: StationConfig,
    row: FileRow,
    clock: StationClock | None = None,
    bounds: Window | None = None,
) -> tuple[ParseResult, pl.DataFrame, dict[str, Any]]:
    """Parse one file; return the result, the UTC wide frame and ledger details.

    ``clock`` is the station's (:meth:`StationClock.load`, read once per station).
    Rows whose period start lies outside ``bounds`` (default: the window of
    :mod:`stationkit.plausible` for the file's own source mtime) are dropped
    with a warning; a file with rows but none inside raises ParseError.
    """
    path = config.data_dir / row.path
    try:
        fmt = detect_format(path, name=row.path)
    except UnknownFormatError:
        if station.reader is None:
            raise
        fmt = delimited.FORMAT  # the station's configured reader takes what no format claims
    if fmt == delimited.FORMAT:
        assert station.reader is not None
        result = delimited.read_delimited(path, name=row.path, options=station.reader)
    else:
        result = get_parser(fmt).read(path, name=row.path, **_options(station, fmt))
    frame = result.frame
    warnings = list(result.meta.warnings)
    stamps = frame.get_column(TIMESTAMP)
    settings = resolve(
        _file_clock(clock or StationClock.load(station), stamps, warnings), result.meta, stamps
    )
    frame = frame.with_columns(to_period_start_utc(stamps, settings).alias(TIMESTAMP))
    if frame.height and frame.get_column(TIMESTAMP).is_duplicated().any():
        before = frame.height
        frame = frame.unique(maintain_order=True)
        if frame.height < before:
            warnings.append(f"{before - frame.height} exact duplicate row(s) dropped")
        if frame.get_column(TIMESTAMP).is_duplicated().any():
            warnings.append(
                "rows with the same timestamp but different values kept; calibrate picks one"
            )
    if bounds is None:
        bounds = plausible.window(station, row.mtime)
    frame, dropped = plausible.keep_plausible(frame, bounds)
    if dropped is not None:
        if frame.height == 0:
            raise ParseError(row.path, f"no row has a plausible timestamp: {dropped}")
        warnings.append(dropped)
    details = {
        "format": fmt,
        "warnings": warnings,
        "time": settings.describe(),
    }
    return result, frame, details


def _file_clock(clock: StationClock, stamps: pl.Series, warnings: list[str]) -> Clock:
    """The station's clock at the file's first label (logger time)."""
    if not clock.changes() or stamps.len() == 0:
        return clock.at()
    local = stamps
    if isinstance(stamps.dtype, pl.Datetime) and stamps.dtype.time_zone is not None:
        local = stamps.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    first, last = local.min(), local.max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    here = clock.at(first)
    if clock.at(last) != here:
        warnings.append(
            f"the clock settings of the IEA document change within this file; those in force "
            f"at its first timestamp ({first:%Y-%m-%d %H:%M}) were used"
        )
    return here


def parse_station(
    config: Config,
    station: StationConfig,
    ledger: Ledger,
    *,
    progress: ProgressCallback | None = None,
    jobs: int = 1,
    retry_failed: bool = False,
) -> ParseSummary:
    """Parse every new file version of ``station``; failures do not stop the rest.

    ``retry_failed`` also parses again the files that failed before (their
    quarantined copy goes when they succeed). ``progress`` gets (station,
    "parse", files done, files to parse, file) once before the first file and
    after each (:mod:`stationkit.progress`)."""
    summary = ParseSummary(station.id)
    data_dir = config.data_dir
    # clock settings the station leaves out come from its IEA document (DESIGN: Time)
    clock = StationClock.load(station)
    summary.reparsed = _reparse_if_settings_changed(ledger, data_dir, clock)
    retried = _forget_failed(ledger, station.id) if retry_failed else set()
    # versions a newer one replaced, and members of a replaced archive version
    stale = [file_id for file_id, _ in ledger.superseded_outputs(station.id)]
    for file_id in stale + stale_member_ids(ledger, station.id):
        _retire(ledger, data_dir, station.id, file_id)
        summary.superseded += 1
    rows = ledger.files_to_parse(station.id)
    # read in this thread: the workers never touch the ledger
    bounds = {row.id: plausible.window(station, source_mtime(ledger, row)) for row in rows}
    notify(progress, Progress(station.id, "parse", 0, len(rows)))

    def work(row: FileRow) -> Outcome:
        return _parse_and_write(config, station, row, clock, bounds[row.id])

    def record(i: int, row: FileRow, outcome: Outcome) -> None:
        _record(ledger, data_dir, station, row, outcome, summary)
        notify(progress, Progress(station.id, "parse", i + 1, len(rows), row.path))

    if jobs > 1 and len(rows) > 1:
        # files in parallel; outcomes recorded here, in path order
        # each in a copy of this context: a commit guard (stationkit.lease) holds there too
        contexts = [contextvars.copy_context() for _ in rows]
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="parse") as pool:
            outcomes = pool.map(lambda ctx, row: ctx.run(work, row), contexts, rows)
            for i, (row, outcome) in enumerate(zip(rows, outcomes, strict=True)):
                record(i, row, outcome)
    else:
        for i, row in enumerate(rows):
            record(i, row, work(row))
    for row in rows:
        if row.id in retried and _quarantined(data_dir, row).exists():
            outcome_row = ledger.conn.execute(
                "SELECT status FROM parses WHERE file_id=?", (row.id,)
            ).fetchone()
            if outcome_row is not None and outcome_row["status"] != "failed":
                _quarantined(data_dir, row).unlink(missing_ok=True)
    return summary


def source_mtime(ledger: Ledger, row: FileRow) -> float | None:
    """The modification time at the source of ``row``, or of the archive it came from."""
    seen = 0
    while row.mtime is None and row.parent_id is not None and seen < 16:
        row = ledger.get_file(row.parent_id)
        seen += 1
    return row.mtime


def _forget_failed(ledger: Ledger, station: str) -> set[int]:
    """Drop the ``failed`` outcomes of current, non-archive file versions."""
    marks = ",".join("?" * len(ARCHIVE_KINDS))
    ids = {
        int(r[0])
        for r in ledger.conn.execute(
            "SELECT p.file_id FROM parses p JOIN files f ON f.id = p.file_id "
            "WHERE p.station = ? AND p.status = 'failed' AND f.superseded_by IS NULL "
            f"AND (p.format IS NULL OR p.format NOT IN ({marks}))",
            (station, *ARCHIVE_KINDS),
        )
    }
    ledger.forget_parse(sorted(ids))
    return ids


def _retire(ledger: Ledger, data_dir: Path, station: str, file_id: int) -> None:
    """A replaced file version: its readings go, its outcome reads "superseded"."""
    row = ledger.conn.execute("SELECT output FROM parses WHERE file_id=?", (file_id,)).fetchone()
    if row is None:
        ledger.record_parse(file_id, station, "superseded")
        return
    if row["output"]:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / row["output"]).unlink()
    ledger.set_parse_status(file_id, "superseded")


SETTINGS_STAGE = "parse-settings"
#: the version of what parsing keeps (cut last lines, non-finite values,
#: implausible timestamps): a lake made under other rules is parsed again
PARSE_RULES = 2


def settings_fingerprint(clock: StationClock) -> str:
    """What the readings of a station depend on besides the files themselves."""
    station = clock.station
    key: dict[str, Any] = {
        **clock.at().values(),
        "rules": PARSE_RULES,
        "valid_from": station.valid_from,
        "valid_to": station.valid_to,
        "parsers": station.parser_options,
        "reader": repr(station.reader),
        "layout": READINGS_LAYOUT,  # a new file layout: every file is written again
    }
    changes = clock.changes()
    if changes:  # only then: other stations keep the fingerprint they had
        key["document_clock"] = changes
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _reparse_if_settings_changed(ledger: Ledger, data_dir: Path, clock: StationClock) -> int:
    """Forget the parse outcomes made under other settings, so they are redone."""
    station = clock.station
    new = settings_fingerprint(clock)
    old = ledger.build_fingerprint(station.id, SETTINGS_STAGE)
    if old == new:
        return 0
    redo: list[int] = []
    if old is not None:
        for row in ledger.conn.execute(
            "SELECT file_id, output FROM parses WHERE station=? AND status IN ('ok', 'failed', 'skipped')",
            (station.id,),
        ).fetchall():
            if row["output"]:
                with contextlib.suppress(FileNotFoundError):
                    (data_dir / row["output"]).unlink()
            redo.append(row["file_id"])
        ledger.forget_parse(redo)
    ledger.record_build(station.id, SETTINGS_STAGE, new)
    return len(redo)


@dataclass(frozen=True)
class Outcome:
    """What parsing one file came to, before the ledger hears of it."""

    status: str  # ok | failed | skipped | archive | retry (an environment failure)
    message: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    readings: int = 0


def _parse_and_write(
    config: Config,
    station: StationConfig,
    row: FileRow,
    clock: StationClock | None = None,
    bounds: Window | None = None,
) -> Outcome:
    """Parse one file and write its readings; never raises for bad input."""
    data_dir = config.data_dir
    path = data_dir / row.path
    try:
        head = read_head(path)
    except OSError as exc:
        return Outcome(_status(exc), f"{row.path}: cannot read ({exc.strerror or exc})")
    if archive_kind(head) is not None:
        return Outcome("archive")  # the unpack stage owns archives
    try:
        result, frame, details = parse_one(config, station, row, clock, bounds)
    except NotReadingsError as exc:
        return Outcome("skipped", str(exc))
    except ParseError as exc:
        return Outcome(_status(exc), str(exc))
    except Exception as exc:  # a parser bug must not stop the run or lose the file
        log.debug("parser crashed on %s", row.path, exc_info=True)
        if is_environment(exc):
            return Outcome("retry", f"{row.path}: cannot read ({type(exc).__name__}: {exc})")
        return Outcome(
            "failed", f"{row.path}: internal error in the parser ({type(exc).__name__}: {exc})"
        )
    out = readings_path(data_dir, station.id, row.id)
    warnings: list[str] = details["warnings"]
    try:
        n = write_readings(out, station.id, row.id, frame, result.channels, warnings)
    except OSError as exc:  # a full disk: nothing is recorded, the next run tries again
        return Outcome("retry", f"{row.path}: cannot write {out.name} ({exc.strerror or exc})")
    stamps = frame.get_column(TIMESTAMP)
    meta = asdict(result.meta)
    meta.pop("warnings", None)
    meta["time"] = details["time"]
    first, last = stamps.min(), stamps.max()
    return Outcome(
        "ok",
        fields={
            "format": details["format"],
            "rows": frame.height,
            "readings": n,
            "first_ts": iso(first) if isinstance(first, datetime) else None,
            "last_ts": iso(last) if isinstance(last, datetime) else None,
            "channels": [c.as_dict() for c in result.channels],
            "skipped_channels": list(result.meta.skipped_channels),
            "meta": meta,
            "warnings": warnings,
            "output": out.relative_to(data_dir).as_posix(),
        },
        warnings=tuple(warnings),
        readings=n,
    )


def _record(
    ledger: Ledger,
    data_dir: Path,
    station: StationConfig,
    row: FileRow,
    outcome: Outcome,
    summary: ParseSummary,
) -> None:
    if outcome.status == "archive":
        summary.waiting_archives += 1
    elif outcome.status == "retry":
        log.warning("%s (tried again next run)", outcome.message)
        ledger.record_failure(
            station.id, "parse", row.path, outcome.message, kind=ENVIRONMENT, file_id=row.id
        )
        summary.failed += 1
        summary.errors.append((row.path, outcome.message))
    elif outcome.status == "failed":
        _fail(ledger, data_dir, row, outcome.message, summary)
    elif outcome.status == "skipped":
        with ledger.transaction():
            ledger.record_parse(row.id, station.id, "skipped", error=outcome.message)
            ledger.resolve_failures(station.id, "parse", row.path)
        summary.skipped += 1
    else:
        with ledger.transaction():
            ledger.record_parse(row.id, station.id, "ok", **outcome.fields)
            ledger.resolve_failures(station.id, "parse", row.path)
        for w in outcome.warnings:
            ledger.event(
                "parse", f"{row.path}: {w}", station=station.id, file_id=row.id, level="warning"
            )
        summary.parsed += 1
        summary.readings += outcome.readings


def _status(exc: BaseException) -> str:
    """``retry`` for an environment failure (no outcome kept), else ``failed``."""
    return "retry" if is_environment(exc) else "failed"


def _fail(
    ledger: Ledger,
    data_dir: Path,
    row: FileRow,
    message: str,
    summary: ParseSummary,
) -> None:
    with contextlib.suppress(OSError):
        _quarantine(data_dir, row)
    with ledger.transaction():  # the outcome and its failure, or neither
        ledger.record_parse(row.id, row.station, "failed", error=message)
        ledger.event("parse", message, station=row.station, file_id=row.id)
        ledger.record_failure(row.station, "parse", row.path, message, kind=CONTENT, file_id=row.id)
    summary.failed += 1
    summary.errors.append((row.path, message))
