"""The parse stage: every new file version of a station into lake/readings.

For each current file version without a parse outcome: sniff, parse, turn
labels into UTC period starts (:mod:`stationkit.timeconv`), drop exact
duplicate rows, and write ``lake/readings/station=<id>/part-<file_id>.parquet``
atomically before the ledger row (a crash in between re-parses the file and
writes the same bytes). Superseded versions lose their readings.

Outcomes in the ledger (``parses.status``):

* ``ok`` -- readings written;
* ``failed`` -- the file could not be read; a hard link (or copy) is put in
  quarantine/<station>/ and the reason recorded; raw/ keeps the original;
* ``skipped`` -- recognised, but holds no readings (an event log);
* ``archive`` -- written by the unpack stage; archives are never parsed here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from stationkit.atomic import link_or_copy
from stationkit.calibrate.iea43 import with_document_time
from stationkit.config import Config, StationConfig
from stationkit.errors import NotReadingsError, ParseError, UnknownFormatError
from stationkit.fetch.magic import archive_kind
from stationkit.layout import quarantine_dir
from stationkit.ledger import FileRow, Ledger, iso
from stationkit.parsers import delimited
from stationkit.parsers.base import TIMESTAMP, ParseResult
from stationkit.parsers.registry import detect_format, get_parser
from stationkit.parsers.sources import read_head
from stationkit.pipeline.unpack import stale_member_ids
from stationkit.progress import Progress, ProgressCallback, notify
from stationkit.store import readings_path, write_readings
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


def _quarantine(data_dir: Path, row: FileRow) -> None:
    src = data_dir / row.path
    dest = quarantine_dir(data_dir, row.station) / f"{row.id:019d}-{src.name}"
    if not dest.exists():
        link_or_copy(src, dest)


def _options(station: StationConfig, fmt: str) -> dict[str, Any]:
    return dict(station.parser_options.get(fmt, {}))


def parse_one(
    config: Config, station: StationConfig, row: FileRow
) -> tuple[ParseResult, pl.DataFrame, dict[str, Any]]:
    """Parse one file; return the result, the UTC wide frame and ledger details."""
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
    settings = resolve(station, result.meta, stamps)
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
    details = {
        "format": fmt,
        "warnings": warnings,
        "time": settings.describe(),
    }
    return result, frame, details


def parse_station(
    config: Config,
    station: StationConfig,
    ledger: Ledger,
    *,
    progress: ProgressCallback | None = None,
    jobs: int = 1,
) -> ParseSummary:
    """Parse every new file version of ``station``; failures do not stop the rest.

    ``progress`` gets (station, "parse", files done, files to parse, file)
    once before the first file and after each (:mod:`stationkit.progress`)."""
    summary = ParseSummary(station.id)
    data_dir = config.data_dir
    # clock settings the station leaves out come from its IEA document (DESIGN: Time)
    station = with_document_time(station)
    summary.reparsed = _reparse_if_settings_changed(ledger, data_dir, station)
    # versions a newer one replaced, and members of a replaced archive version
    stale = [file_id for file_id, _ in ledger.superseded_outputs(station.id)]
    for file_id in stale + stale_member_ids(ledger, station.id):
        _retire(ledger, data_dir, station.id, file_id)
        summary.superseded += 1
    rows = ledger.files_to_parse(station.id)
    notify(progress, Progress(station.id, "parse", 0, len(rows)))

    def work(row: FileRow) -> Outcome:
        return _parse_and_write(config, station, row)

    def record(i: int, row: FileRow, outcome: Outcome) -> None:
        _record(ledger, data_dir, station, row, outcome, summary)
        notify(progress, Progress(station.id, "parse", i + 1, len(rows), row.path))

    if jobs > 1 and len(rows) > 1:
        # files in parallel; outcomes recorded here, in path order
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="parse") as pool:
            outcomes = pool.map(work, rows)
            for i, (row, outcome) in enumerate(zip(rows, outcomes, strict=True)):
                record(i, row, outcome)
    else:
        for i, row in enumerate(rows):
            record(i, row, work(row))
    return summary


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


def settings_fingerprint(station: StationConfig) -> str:
    """What the readings of a station depend on besides the files themselves."""
    key = {
        "utc_offset_hours": station.utc_offset_hours,
        "timestamp_is_end_of_period": station.timestamp_is_end_of_period,
        "averaging_period_minutes": station.averaging_period_minutes,
        "parsers": station.parser_options,
        "reader": repr(station.reader),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _reparse_if_settings_changed(ledger: Ledger, data_dir: Path, station: StationConfig) -> int:
    """Forget the parse outcomes made under other settings, so they are redone."""
    new = settings_fingerprint(station)
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

    status: str  # ok | failed | skipped | archive | unreadable
    message: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    readings: int = 0


def _parse_and_write(config: Config, station: StationConfig, row: FileRow) -> Outcome:
    """Parse one file and write its readings; never raises for bad input."""
    data_dir = config.data_dir
    path = data_dir / row.path
    try:
        head = read_head(path)
    except OSError as exc:
        return Outcome("unreadable", f"{row.path}: cannot read ({exc.strerror})")
    if archive_kind(head) is not None:
        return Outcome("archive")  # the unpack stage owns archives
    try:
        result, frame, details = parse_one(config, station, row)
    except NotReadingsError as exc:
        return Outcome("skipped", str(exc))
    except ParseError as exc:
        return Outcome("failed", str(exc))
    except Exception as exc:  # a parser bug must not stop the run or lose the file
        log.debug("parser crashed on %s", row.path, exc_info=True)
        return Outcome(
            "failed", f"{row.path}: internal error in the parser ({type(exc).__name__}: {exc})"
        )
    out = readings_path(data_dir, station.id, row.id)
    n = write_readings(out, station.id, row.id, frame, result.channels)
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
            "channels": [asdict(c) for c in result.channels],
            "skipped_channels": list(result.meta.skipped_channels),
            "meta": meta,
            "warnings": details["warnings"],
            "output": out.relative_to(data_dir).as_posix(),
        },
        warnings=tuple(details["warnings"]),
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
    elif outcome.status == "unreadable":
        _fail(ledger, data_dir, row, outcome.message, summary, quarantine=False)
    elif outcome.status == "failed":
        _fail(ledger, data_dir, row, outcome.message, summary)
    elif outcome.status == "skipped":
        ledger.record_parse(row.id, station.id, "skipped", error=outcome.message)
        summary.skipped += 1
    else:
        ledger.record_parse(row.id, station.id, "ok", **outcome.fields)
        for w in outcome.warnings:
            ledger.event(
                "parse", f"{row.path}: {w}", station=station.id, file_id=row.id, level="warning"
            )
        summary.parsed += 1
        summary.readings += outcome.readings


def _fail(
    ledger: Ledger,
    data_dir: Path,
    row: FileRow,
    message: str,
    summary: ParseSummary,
    *,
    quarantine: bool = True,
) -> None:
    if quarantine:
        with contextlib.suppress(OSError):
            _quarantine(data_dir, row)
    ledger.record_parse(row.id, row.station, "failed", error=message)
    ledger.event("parse", message, station=row.station, file_id=row.id)
    summary.failed += 1
    summary.errors.append((row.path, message))
