"""The calibrate stage: one station's lake/readings into lake/clean, a month at a time.

    lake/clean/station=<id>/2024-01.parquet      one file per UTC month (see
                                                 stationkit.calibrate.partition)

Incremental at two levels:

1. **station**: a fingerprint of everything a build reads -- the current
   readings outputs (file id, sha256, span and clock settings from the
   ledger), the station's time settings, the ``points``/``sensors``/
   ``flags``/``qc`` sections of stations.toml, the content of the metadata
   document, of calibration certificates and flag files it names, the
   Windographer flagging logs among the station's files, and the stationkit
   and engine versions. Unchanged, and every month's file present: nothing
   is read (the no-op run of a cron job).
2. **month**: otherwise each month gets a fingerprint of exactly what its
   rows depend on -- the station's setup (resolved segments, QC settings,
   icing reference), the readings files reaching the month or its QC context,
   and the flag intervals reaching the month. Only months whose fingerprint
   changed are rebuilt: a new daily file rebuilds its month (and a neighbour
   when it lies within the QC context of a month boundary), a late file for
   a month long past rebuilds that month, a metadata change rebuilds them all.

The fingerprints are in the ledger (``builds`` for the station, ``partitions``
per month); each month's file is written atomically before its row is
recorded, so a build killed at any point is finished by the next one with
the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from stationkit import __version__
from stationkit.atomic import sha256_file
from stationkit.calibrate.engine import (
    ENGINE_VERSION,
    MEMORY_LIMIT,
    EngineResult,
    ReadingsFile,
    calibrate_readings,
    flags_reaching,
)
from stationkit.calibrate.flags import (
    FlagConfig,
    is_flag_log,
    load_flags,
    merge_flags,
    parse_flag_config,
)
from stationkit.calibrate.metadata import (
    ChannelFacts,
    Resolver,
    Segment,
    StationMetadata,
    load_station_metadata,
    resolve_segments,
)
from stationkit.calibrate.partition import (
    inputs_by_month,
    month_of_name,
    months_with_data,
)
from stationkit.calibrate.qc import QcConfig, parse_qc_config
from stationkit.calibrate.qc import margin as qc_margin
from stationkit.clock import station_clock
from stationkit.config import Config, StationConfig
from stationkit.errors import StationkitError
from stationkit.ledger import Ledger, iso

log = logging.getLogger(__name__)

STAGE = "calibrate"
#: the parse stage's settings fingerprint (pipeline/parse.py SETTINGS_STAGE)
PARSE_SETTINGS = "parse-settings"
#: the parse stage's warning for rows that share a timestamp (pipeline/parse.py)
_DUPLICATE_WARNING = "rows with the same timestamp"


#: what builds the months of a station: the engine itself, or -- on a cluster --
#: a function with its signature that spreads a large station's months over
#: several workers (stationkit.cluster.worker); same files, same results
MONTH_BUILDER: ContextVar[Callable[..., EngineResult]] = ContextVar(
    "MONTH_BUILDER", default=calibrate_readings
)


def clean_dir(data_dir: Path, station: str) -> Path:
    return data_dir / "lake" / "clean" / f"station={station}"


def clean_path(data_dir: Path, station: str, month: str) -> Path:
    """The file of one month (``YYYY-MM``) of a station's lake/clean."""
    return clean_dir(data_dir, station) / f"{month}.parquet"


@dataclass
class CalibrateSummary:
    """What one station's calibrate did."""

    station: str
    built: bool = False
    #: inputs unchanged since the last build: nothing was done
    up_to_date: bool = False
    #: rows, flagged rows and points of the months built
    rows: int = 0
    flagged: int = 0
    points: int = 0
    files: int = 0
    deduplicated_files: int = 0
    qc_hits: int = 0
    #: the station's lake/clean folder
    output: str | None = None
    #: months rebuilt (YYYY-MM) and months the station has
    months_built: list[str] = field(default_factory=list)
    months: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StationInputs:
    """Everything a build reads, gathered from the ledger and the file system."""

    files: tuple[ReadingsFile, ...]
    channels: dict[str, ChannelFacts]
    #: Windographer flagging logs among the station's files: (path, display name)
    logs: tuple[tuple[Path, str], ...]
    fingerprint: str
    #: file id -> what identifies its readings (part of month fingerprints)
    identities: dict[int, list[Any]] = field(default_factory=dict)


# ---------------------------------------------------------------- ledger -> inputs


def _ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip().replace(",", "."))
    except ValueError:
        return None


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _duplicates(
    row: Any, time: dict[str, Any], first: datetime | None, last: datetime | None
) -> bool:
    text = row["warnings"]
    if text and _DUPLICATE_WARNING in text:  # cheap test first: most files warn of nothing
        warnings = _json(text, [])
        if any(isinstance(w, str) and _DUPLICATE_WARNING in w for w in warnings):
            return True
    period = _number(time.get("averaging_period_s"))
    rows = row["rows"] or 0
    if period and period > 0 and first is not None and last is not None and rows > 1:
        slots = (last - first) / timedelta(seconds=period) + 1
        return bool(rows > slots + 0.5)
    return False


def _channel_facts(entries: list[Any]) -> dict[str, ChannelFacts]:
    out: dict[str, ChannelFacts] = {}
    for c in entries:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            continue
        raw_attrs = c.get("attrs")
        attrs: dict[str, Any] = raw_attrs if isinstance(raw_attrs, dict) else {}
        slope = _number(attrs.get("slope"))
        if slope is None:
            slope = _number(attrs.get("scale_factor"))
        if slope == 0:
            slope = None
        out[c["name"]] = ChannelFacts(
            name=c["name"],
            statistic=c.get("statistic") if isinstance(c.get("statistic"), str) else None,
            height_m=_number(c.get("height_m")),
            unit=c.get("unit") if isinstance(c.get("unit"), str) else None,
            slope=slope,
            offset=_number(attrs.get("offset")),
        )
    return out


def _file_digest(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError:
        return "missing"


def _certificates(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "certificate" and isinstance(v, str):
                found.append(v)
            else:
                found.extend(_certificates(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(_certificates(v))
    return found


def gather_inputs(config: Config, station: StationConfig, ledger: Ledger) -> StationInputs:
    """The current readings files, channel facts, flag logs and the fingerprint."""
    data_dir = config.data_dir
    files: list[ReadingsFile] = []
    channels: dict[str, ChannelFacts] = {}
    identities: dict[int, list[Any]] = {}
    seen: dict[str, dict[str, ChannelFacts]] = {}
    # one pass, the file's content hash joined in (no query per file)
    rows = ledger.conn.execute(
        "SELECT p.file_id, p.output, p.first_ts, p.last_ts, p.readings, p.rows, p.meta, "
        "p.channels, p.warnings, f.sha256 FROM parses p JOIN files f ON f.id = p.file_id "
        "WHERE p.station = ? AND p.status = 'ok' AND p.output IS NOT NULL",
        (station.id,),
    ).fetchall()
    # by time: the facts (height, vendor slope) of the file with the latest data win
    rows.sort(key=lambda r: (r["last_ts"] or "", r["file_id"]))
    times: dict[str, dict[str, Any]] = {}
    fallback = None
    for row in rows:
        meta_text = row["meta"] or ""
        time = times.get(meta_text)
        if time is None:  # a logger's files mostly share their meta too
            meta = _json(meta_text, {})
            found = meta.get("time") if isinstance(meta, dict) else None
            time = times[meta_text] = found if isinstance(found, dict) else {}
        offset = _number(time.get("utc_offset_hours"))
        if offset is None:  # a row recorded without its time settings
            if fallback is None:
                fallback = station_clock(station).offset_hours
            offset = fallback
        first, last = _ts(row["first_ts"]), _ts(row["last_ts"])
        text = row["channels"] or ""
        facts = seen.get(text)
        if facts is None:  # a logger's files mostly share one channel list
            facts = seen[text] = _channel_facts(_json(text, []))
        channels.update(facts)
        files.append(
            ReadingsFile(
                file_id=row["file_id"],
                path=data_dir / row["output"],
                first_ts=first,
                last_ts=last,
                readings=int(row["readings"] or 0),
                utc_offset_hours=offset,
                duplicate_timestamps=_duplicates(row, time, first, last),
                channels=tuple((c.name, c.statistic) for c in facts.values()),
            )
        )
        # what the readings are, never when they were made: a re-parse under other
        # clock settings moves first/last; same inputs give the same fingerprint
        identities[row["file_id"]] = [
            row["file_id"],
            row["sha256"],
            row["output"],
            row["first_ts"],
            row["last_ts"],
            row["readings"],
            time,
        ]
    logs: list[tuple[Path, str]] = []
    for row in ledger.parse_rows(station.id, "skipped"):
        file_row = ledger.get_file(row["file_id"])
        path = data_dir / file_row.path
        if file_row.superseded_by is None and is_flag_log(path):
            logs.append((path, file_row.path))
    fingerprint = station_fingerprint(config, station, ledger)
    return StationInputs(tuple(files), channels, tuple(logs), fingerprint, identities)


def station_fingerprint(config: Config, station: StationConfig, ledger: Ledger) -> str:
    """What a station's lake/clean depends on, cheaply: one pass over its ledger
    rows in SQLite (what each current readings file and flagging log is, never
    when it was made), the station's settings and the documents they name.

    The same whenever nothing a build reads has changed: the hourly no-op run
    compares it and reads nothing more.
    """
    base = config.path.parent
    h = hashlib.sha256()
    # file ids are hashes of content and identity, and what a parse made of a
    # file follows from its content and the parse settings (below)
    for row in ledger.conn.execute(
        "SELECT file_id, status, output, first_ts, last_ts, readings FROM parses "
        "WHERE station = ? AND status IN ('ok', 'skipped') ORDER BY file_id",
        (station.id,),
    ):
        h.update(repr(tuple(row)).encode())
        h.update(b"\n")
    documents: dict[str, str] = {}
    if station.metadata is not None:
        documents[str(station.metadata)] = _file_digest(station.metadata)
    for cert in _certificates(station.extra.get("sensors")):
        p = Path(cert).expanduser()
        documents[cert] = _file_digest(p if p.is_absolute() else base / p)
    flag_files = station.extra.get("flags", {})
    if isinstance(flag_files, dict):
        names = flag_files.get("files", [])
        for name in [names] if isinstance(names, str) else names if isinstance(names, list) else []:
            if isinstance(name, str):
                p = Path(name).expanduser()
                documents[name] = _file_digest(p if p.is_absolute() else base / p)
    state = {
        "engine": ENGINE_VERSION,
        "stationkit": __version__,
        "station": {
            "id": station.id,
            "name": station.name,
            "utc_offset_hours": station.utc_offset_hours,
            "timestamp_is_end_of_period": station.timestamp_is_end_of_period,
            "averaging_period_minutes": station.averaging_period_minutes,
            "metadata": str(station.metadata) if station.metadata else None,
        },
        "clock": station_clock(station).offset_hours,
        "parse_settings": ledger.build_fingerprint(station.id, PARSE_SETTINGS),
        "sections": {k: station.extra.get(k) for k in ("points", "sensors", "flags", "qc")},
        "documents": documents,
        "ledger": h.hexdigest(),
    }
    return _digest(state)


def _digest(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, default=str, separators=(",", ":")).encode()
    ).hexdigest()


# ---------------------------------------------------------------- the stage


def calibrate_station(
    config: Config,
    station: StationConfig,
    ledger: Ledger,
    *,
    force: bool = False,
    memory_limit: str = MEMORY_LIMIT,
    threads: int | None = None,
) -> CalibrateSummary:
    """Bring lake/clean of ``station`` up to date, rebuilding only changed months.

    ``force`` rebuilds every month. Raises
    :class:`~stationkit.errors.ConfigError` for invalid metadata, flags or QC
    settings (recorded in the ledger's events too); nothing is written then
    and the previous clean files stay.
    """
    summary = CalibrateSummary(station.id)
    folder = clean_dir(config.data_dir, station.id)
    summary.output = folder.relative_to(config.data_dir).as_posix()
    recorded = ledger.partitions(station.id)
    summary.months = sum(1 for r in recorded.values() if r["rows"])
    if (
        not force
        and ledger.build_fingerprint(station.id, STAGE)
        == station_fingerprint(config, station, ledger)
        and _files_present(config.data_dir, recorded)
    ):
        summary.up_to_date = True
        summary.files = ledger.conn.execute(
            "SELECT count(*) FROM parses WHERE station=? AND status='ok' AND output IS NOT NULL",
            (station.id,),
        ).fetchone()[0]
        log.info("%s: clean data up to date, nothing to do", station.id)
        return summary
    inputs = gather_inputs(config, station, ledger)
    summary.files = len(inputs.files)
    try:
        summary = _build(
            config, station, ledger, inputs, summary, recorded, force, memory_limit, threads
        )
    except StationkitError as exc:
        ledger.event(STAGE, str(exc), station=station.id)
        raise
    ledger.record_build(station.id, STAGE, inputs.fingerprint)
    return summary


def _files_present(data_dir: Path, recorded: dict[str, Any]) -> bool:
    return all(r["output"] is None or (data_dir / r["output"]).exists() for r in recorded.values())


def point_statistics(
    segments: Sequence[Segment], files: Sequence[ReadingsFile]
) -> dict[str, set[str | None]]:
    """The statistics each point has: the metadata's, or the readings' for identity."""
    read: dict[str, set[str | None]] = {}
    for f in files:
        for name, stat in f.channels:
            read.setdefault(name, set()).add(stat)
    out: dict[str, set[str | None]] = {}
    for s in segments:
        if s.ignored:
            continue
        stats = {s.statistic} if s.statistic is not None else read.get(s.channel, {None})
        out.setdefault(s.point, set()).update(stats)
    return out


def load_station_setup(
    config: Config, station: StationConfig
) -> tuple[StationMetadata, FlagConfig, QcConfig]:
    """Metadata, flag settings and QC settings of a station, validated."""
    base = config.path.parent
    return (
        load_station_metadata(station, base),
        parse_flag_config(station, base),
        parse_qc_config(station),
    )


def _build(
    config: Config,
    station: StationConfig,
    ledger: Ledger,
    inputs: StationInputs,
    summary: CalibrateSummary,
    recorded: dict[str, Any],
    force: bool,
    memory_limit: str,
    threads: int | None,
) -> CalibrateSummary:
    meta, flag_config, qc = load_station_setup(config, station)
    segments, warnings = resolve_segments(meta, inputs.channels)
    resolver = Resolver.from_segments(segments, meta)
    statistics = point_statistics(segments, inputs.files)
    specs = load_flags(flag_config, station.id, inputs.logs)
    intervals, flag_warnings = merge_flags(specs, resolver, statistics)
    warnings.extend(flag_warnings)
    temperature = qc.temperature_point(meta)
    if temperature is not None and temperature not in statistics and qc.icing:
        warnings.append(
            f"qc.icing.temperature_point: no point named {temperature!r}; icing is not checked"
        )
        temperature = None
    for w in warnings:
        # settings problems, not data problems: `stationkit check` shows them;
        # a warning here would repeat on every hourly build
        log.info("%s: %s", station.id, w)
    summary.warnings = warnings

    data_dir = config.data_dir
    folder = clean_dir(data_dir, station.id)
    setup = _digest(
        {
            "engine": ENGINE_VERSION,
            "stationkit": __version__,
            "station": station.id,
            "segments": [asdict(s) for s in segments],
            "qc": asdict(qc),
            "temperature": temperature,
            # what numbers the engine's points and statistics, and whether it
            # shifts each reading by its file's offset: shared by every month
            "statistics": sorted(
                {(name, stat or "") for f in inputs.files for name, stat in f.channels}
            ),
            "offsets": sorted({f.utc_offset_hours for f in inputs.files if f.first_ts}),
        }
    )
    months = months_with_data(inputs.files)
    by_month = inputs_by_month(inputs.files, months, qc_margin(qc))
    fingerprints = {
        m.key: _digest(
            {
                "setup": setup,
                "files": [inputs.identities[f.file_id] for f in by_month[m]],
                "flags": [
                    [i.point, i.statistic, i.start, i.end, list(i.flags)]
                    for i in flags_reaching(intervals, m, by_month[m])  # type: ignore[arg-type]
                ],
            }
        )
        for m in months
    }
    stale = [m for m in sorted(recorded) if m not in fingerprints]
    todo = [
        m
        for m in sorted(months)
        if force
        or m.key not in recorded
        or recorded[m.key]["fingerprint"] != fingerprints[m.key]
        or (
            recorded[m.key]["output"] is not None
            and not (data_dir / recorded[m.key]["output"]).exists()
        )
    ]
    summary.months = len(months)
    if todo:
        result = MONTH_BUILDER.get()(
            station.id,
            inputs.files,
            segments,
            intervals,
            qc,
            folder,
            months=todo,
            data_dir=data_dir,
            temperature_point=temperature,
            memory_limit=memory_limit,
            threads=threads,
        )
        for m in todo:
            part = result.partitions[m.key]
            ledger.record_partition(
                station.id,
                m.key,
                fingerprint=fingerprints[m.key],
                rows=part.rows,
                first_ts=iso(part.first_timestamp) if part.first_timestamp else None,
                last_ts=iso(part.last_timestamp) if part.last_timestamp else None,
                output=part.path.relative_to(data_dir).as_posix() if part.path else None,
            )
        summary.rows = result.rows
        summary.flagged = result.flagged
        summary.points = result.points
        summary.deduplicated_files = result.deduplicated_files
        summary.qc_hits = result.qc_hits
    summary.months_built = [m.key for m in todo]
    # months no readings file reaches any more, and files of other layouts
    keep = {f"{m.key}.parquet" for m in months}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if (
                path.suffix == ".parquet"
                and path.name not in keep
                and (month_of_name(path.name) is not None or path.name == LEGACY_NAME)
            ):
                path.unlink(missing_ok=True)
    if stale:
        ledger.forget_partitions(station.id, stale)
    summary.built = bool(todo or stale)
    return summary


#: the one-file layout of stationkit before months (removed when a station is rebuilt)
LEGACY_NAME = "clean.parquet"
