"""The export stage: lake/clean of one station into Windographer, CSV or Parquet files.

Files go to ``exports/<station>/`` (or ``out``), named for the station, the
period asked for and the time zone::

    M001.txt                         Windographer, whole period, logger time
    M001_flagging_log.txt            its flagging log (export.flag_log)
    M001_by_type.zip                 one Windographer file per measurement type
    M001_20240101_20240201_utc.csv   CSV, January, UTC
    M001_long.parquet                Parquet, long layout

Every file appears atomically, all of an export's files together or none.
The stage is incremental: a fingerprint of the clean inputs (file names,
sizes, modification times, the calibrate build) and of every option is kept
in the ledger (``builds``, stage ``export:<main file>``); when it has not
changed and the files exist, nothing is read or written.

Station settings, in stations.toml (all optional)::

    [stations.M001.export]
    format = ["windographer", "csv"]   # or one string; default "windographer"
    layout = "wide"                    # csv / parquet: "wide" or "long"
    exclude_flags = ["icing"]          # default ["*"]: every flag
    missing_marker = ""                # Windographer: text for a missing value
    flag_log = true                    # Windographer: companion flagging log
    zip_by_type = false                # Windographer: zip of one file per type
    utc = false                        # default: the logger's local time
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq

from stationkit import __version__
from stationkit.atomic import TMP_PREFIX, atomic_output, sha256_file
from stationkit.config import Config, StationConfig
from stationkit.errors import ConfigError
from stationkit.export.labels import Column, type_name
from stationkit.export.select import (
    ALL_FLAGS,
    Catalog,
    ExportError,
    Selection,
    clean_dir,
    clean_files,
    iter_chunks,
    read_catalog,
    to_wide,
)
from stationkit.export.tabular import (
    CsvLongWriter,
    CsvWideWriter,
    ParquetLongWriter,
    ParquetWideWriter,
)
from stationkit.export.windographer import FlagLog, Preamble, WindographerWriter
from stationkit.layout import exports_dir
from stationkit.ledger import Ledger
from stationkit.tomltable import TomlTable, show_value

log = logging.getLogger(__name__)

FORMATS = ("windographer", "csv", "parquet")
LAYOUTS = ("wide", "long")
SETTINGS_KEYS = (
    "format",
    "layout",
    "exclude_flags",
    "missing_marker",
    "flag_log",
    "zip_by_type",
    "utc",
)
#: bump when the bytes an export writes change for the same input
EXPORT_VERSION = 1
STAGE = "export"
#: below data_dir: where the one-pass sort of badly laid out clean data spills
SCRATCH = Path(".tmp") / "export"


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class ExportSettings:
    """A station's ``[stations.<id>.export]`` table, validated."""

    formats: tuple[str, ...] = ("windographer",)
    layout: str = "wide"
    exclude_flags: tuple[str, ...] = (ALL_FLAGS,)
    missing_marker: str = ""
    flag_log: bool = False
    zip_by_type: bool = False
    utc: bool = False
    configured: bool = False


def _choice(path: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(
            f"{path}: expected one of {', '.join(repr(c) for c in choices)}, got {show_value(value)}"
        )
    return value


def check_marker(marker: str, where: str) -> str:
    """A missing marker may not contain a separator, quote or line break."""
    bad = [c for c in marker if c in '\t\r\n",;' or ord(c) < 32]
    if bad:
        raise ConfigError(
            f"{where}: the missing marker may not contain tabs, commas, semicolons, quotes "
            f"or line breaks, got {marker!r}"
        )
    return marker


def export_settings(station: StationConfig) -> ExportSettings:
    """Validate ``stations.<id>.export``; errors cite the key path."""
    raw = station.extra.get("export")
    if raw is None:
        return ExportSettings()
    t = TomlTable(raw, f"stations.{station.id}.export")
    formats: tuple[str, ...] = ("windographer",)
    value = t.raw("format")
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{t.key('format')}: expected at least one format, got an empty list")
        formats = tuple(
            dict.fromkeys(
                _choice(f"{t.key('format')}[{i}]", v, FORMATS) for i, v in enumerate(value)
            )
        )
    elif value is not None:
        formats = (_choice(t.key("format"), value, FORMATS),)
    layout = _choice(t.key("layout"), t.raw("layout"), LAYOUTS) if t.has("layout") else "wide"
    exclude: tuple[str, ...] = (ALL_FLAGS,)
    value = t.raw("exclude_flags")
    if value is not None:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(
                f'{t.key("exclude_flags")}: expected a list of flag names (["*"] for every flag, '
                f"[] for none), got {show_value(value)}"
            )
        exclude = tuple(dict.fromkeys(value))
    marker = ""
    value = t.raw("missing_marker")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(
                f"{t.key('missing_marker')}: expected a string, got {show_value(value)}"
            )
        marker = check_marker(str(value), t.key("missing_marker"))
    settings = ExportSettings(
        formats=formats,
        layout=layout,
        exclude_flags=exclude,
        missing_marker=marker,
        flag_log=bool(t.flag("flag_log")),
        zip_by_type=bool(t.flag("zip_by_type")),
        utc=bool(t.flag("utc")),
        configured=True,
    )
    t.done(SETTINGS_KEYS)
    return settings


# ---------------------------------------------------------------- summary


@dataclass
class ExportSummary:
    """What one export did. ``files`` are relative to data_dir when inside it."""

    station: str
    format: str
    layout: str
    time_zone: str
    files: list[str] = field(default_factory=list)
    rows: int | None = None
    columns: int | None = None
    first: str | None = None
    last: str | None = None
    excluded_flags: list[str] = field(default_factory=list)
    skipped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        where = ", ".join(self.files)
        if self.skipped:
            return f"{self.station}: {self.format} up to date ({where})"
        return (
            f"{self.station}: {self.format} {self.layout}, {self.rows} rows x {self.columns} "
            f"columns, {self.first} .. {self.last} ({self.time_zone}) -> {where}"
        )


# ---------------------------------------------------------------- helpers


def to_utc(value: datetime | None, utc_offset_hours: float) -> datetime | None:
    """A naive wall-clock time of the export's zone (or an aware time) as UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    return (value - timedelta(hours=utc_offset_hours)).replace(tzinfo=UTC)


def _stamp(value: datetime) -> str:
    return f"{value:%Y%m%d}" if value.time() == datetime.min.time() else f"{value:%Y%m%dT%H%M}"


def file_stem(station: str, start: datetime | None, end: datetime | None, utc: bool) -> str:
    """``M001``, ``M001_20240101_20240201``, ``M001_from_20240101_utc`` ..."""
    parts = [station]
    if start is not None and end is not None:
        parts += [_stamp(start), _stamp(end)]
    elif start is not None:
        parts += ["from", _stamp(start)]
    elif end is not None:
        parts += ["to", _stamp(end)]
    if utc:
        parts.append("utc")
    return "_".join(parts)


def _created(catalog: Catalog, sel: Selection) -> datetime:
    """Deterministic "Created" time: $SOURCE_DATE_EPOCH, else the end of the newest step."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).replace(tzinfo=None) + sel.offset
    assert catalog.last is not None
    return (catalog.last + catalog.step).replace(tzinfo=None) + sel.offset


def _rel(path: Path, data_dir: Path) -> str:
    try:
        return path.resolve().relative_to(data_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _fingerprint(parts: Mapping[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _inputs(
    files: Sequence[Path], folder: Path, built_by_calibrate: bool
) -> list[tuple[str, int, str]]:
    """What the clean files are, never when they were written (no mtimes: the
    fingerprint must not depend on when things happened).

    When the calibrate stage built them, its fingerprint (beside this one)
    changes with every rebuild, so names and sizes suffice; clean files from
    elsewhere are identified by a hash of their content.
    """
    out = []
    for p in files:
        digest = "" if built_by_calibrate else sha256_file(p)
        out.append((p.relative_to(folder).as_posix(), p.stat().st_size, digest))
    return out


def _zip_time(created: datetime) -> tuple[int, int, int, int, int, int]:
    t = max(created, datetime(1980, 1, 1))
    return (t.year, t.month, t.day, t.hour, t.minute, t.second - t.second % 2)


def _write_zip(target: Path, members: Sequence[tuple[str, Path]], created: datetime) -> None:
    """A zip with fixed member times and modes: identical input, identical bytes."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in members:
            info = zipfile.ZipInfo(name, date_time=_zip_time(created))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(path, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


@contextlib.contextmanager
def _outputs(targets: Sequence[Path]) -> Iterator[list[Path]]:
    """Temporary paths for every target; all are renamed into place on success."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_output(t)) for t in targets]


# ---------------------------------------------------------------- the stage


def export_station(
    config: Config,
    station: StationConfig,
    ledger: Ledger,
    *,
    fmt: str | None = None,
    layout: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    points: Sequence[str] = (),
    exclude_flags: Sequence[str] | None = None,
    include_flagged: bool = False,
    out: Path | None = None,
    utc: bool | None = None,
    missing_marker: str | None = None,
    flag_log: bool | None = None,
    zip_by_type: bool | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExportSummary:
    """Export one station's lake/clean in one format.

    Options left as None take the station's ``export`` settings. ``start`` /
    ``end`` bound the period [start, end) in the export's time zone (naive) or
    as aware instants. ``points`` empty means every point. ``exclude_flags``
    names the flags whose values are left out (``"*"``: every flag);
    ``include_flagged`` keeps every value whatever its flags. ``utc`` writes
    UTC instead of the logger's local time (``utc_offset_hours``).

    Raises :class:`~stationkit.export.select.ExportError` when the station has
    no clean data or the selection is empty, ConfigError for bad options.
    """
    settings = export_settings(station)
    fmt = fmt or settings.formats[0]
    if fmt not in FORMATS:
        raise ExportError(f"format: expected one of {', '.join(map(repr, FORMATS))}, got {fmt!r}")
    layout = layout or ("wide" if fmt == "windographer" else settings.layout)
    if layout not in LAYOUTS:
        raise ExportError(
            f"layout: expected one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}"
        )
    if fmt == "windographer" and layout != "wide":
        raise ExportError(
            "layout: Windographer files are wide; --layout long is for csv and parquet"
        )
    if include_flagged and exclude_flags:
        raise ExportError("include_flagged keeps every value: do not name flags to exclude as well")
    excluded: tuple[str, ...]
    if include_flagged:
        excluded = ()
    elif exclude_flags is not None:
        excluded = tuple(dict.fromkeys(exclude_flags))
    else:
        excluded = settings.exclude_flags
    use_utc = settings.utc if utc is None else utc
    offset = 0.0 if use_utc else float(station.utc_offset_hours or 0.0)
    marker = check_marker(
        settings.missing_marker if missing_marker is None else missing_marker, "missing marker"
    )
    want_flag_log = fmt == "windographer" and (settings.flag_log if flag_log is None else flag_log)
    want_zip = fmt == "windographer" and (
        settings.zip_by_type if zip_by_type is None else zip_by_type
    )
    sel = Selection(
        station=station.id,
        start=to_utc(start, offset),
        end=to_utc(end, offset),
        points=tuple(dict.fromkeys(points)),
        exclude_flags=excluded,
        utc_offset_hours=offset,
    )
    if sel.start is not None and sel.end is not None and sel.end <= sel.start:
        raise ExportError(f"{station.id}: the end ({end}) must come after the start ({start})")

    data_dir = config.data_dir
    folder = clean_dir(data_dir, station.id)
    files = clean_files(data_dir, station.id)
    if not files:
        raise ExportError(
            f"{station.id}: no clean data in {_rel(folder, data_dir)}; "
            "run `stationkit calibrate` first"
        )
    out_dir = out if out is not None else exports_dir(data_dir, station.id)
    stem = file_stem(station.id, start, end, use_utc)
    if fmt == "windographer":
        main = out_dir / f"{stem}.txt"
    else:
        main = out_dir / (f"{stem}{'_long' if layout == 'long' else ''}.{fmt}")
    targets = [main]
    if want_flag_log:
        targets.append(out_dir / f"{stem}_flagging_log.txt")
    if want_zip:
        targets.append(out_dir / f"{stem}_by_type.zip")
    summary = ExportSummary(
        station=station.id,
        format=fmt,
        layout=layout,
        time_zone=sel.zone_name(),
        files=[_rel(t, data_dir) for t in targets],
    )
    step = (
        timedelta(minutes=station.averaging_period_minutes)
        if station.averaging_period_minutes
        else None
    )
    calibrated = ledger.build_fingerprint(station.id, "calibrate")
    fingerprint = _fingerprint(
        {
            "version": [__version__, EXPORT_VERSION],
            "format": fmt,
            "layout": layout,
            "selection": asdict(sel),
            "marker": marker,
            "flag_log": want_flag_log,
            "zip": want_zip,
            "site": [station.latitude, station.longitude, station.elevation_m],
            "step": step,
            "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH"),
            "inputs": _inputs(files, folder, calibrated is not None),
            "calibrate": calibrated,
            "targets": [_rel(t, data_dir) for t in targets],
        }
    )
    stage = f"{STAGE}:{_rel(main, data_dir)}"
    if (
        not force
        and ledger.build_fingerprint(station.id, stage) == fingerprint
        and all(t.exists() for t in targets)
    ):
        log.info("%s: %s is up to date", station.id, summary.files[0])
        summary.skipped = True
        return summary

    catalog = read_catalog(files, sel, step=step)
    if sel.points:
        known = {c.point for c in catalog.columns}
        unknown = [p for p in sel.points if p not in known]
        if unknown:
            everything = read_catalog(files, Selection(station.id), step=catalog.step)
            names = sorted({c.point for c in everything.columns})
            raise ExportError(
                f"{station.id}: no readings of point {unknown[0]!r} in the period; points in "
                f"lake/clean: {', '.join(names) or '(none)'}"
            )
    if catalog.rows == 0:
        raise ExportError(
            f"{station.id}: nothing to export: no clean readings"
            + (f" from {start}" if start else "")
            + (f" before {end}" if end else "")
        )
    if ALL_FLAGS in excluded:
        shown_excluded: tuple[str, ...] = catalog.flags
    else:
        shown_excluded = tuple(sorted(excluded))
    summary.excluded_flags = list(shown_excluded)
    summary.columns = len(catalog.columns)
    created = _created(catalog, sel)
    with _outputs(targets) as temps:
        if fmt == "windographer":
            preamble = Preamble(
                created=created,
                version=__version__,
                latitude=station.latitude,
                longitude=station.longitude,
                elevation_m=station.elevation_m,
                included_flags=tuple(f for f in catalog.flags if not sel.excludes(f)),
                excluded_flags=shown_excluded,
            )
            rows, first, last = _write_windographer(
                files,
                sel,
                catalog,
                temps,
                preamble=preamble,
                marker=marker,
                flag_log=want_flag_log,
                zip_stem=stem if want_zip else None,
                scratch=data_dir / SCRATCH,
                progress=progress,
            )
        else:
            metadata = {
                "station": station.id,
                "utc_offset_hours": sel.utc_offset_hours,
                "time_zone": sel.zone_name(),
                "excluded_flags": list(shown_excluded),
                "version": __version__,
                "timestamps": "period start",
            }
            rows, first, last = _write_tabular(
                files, sel, catalog, temps[0], fmt=fmt, layout=layout, metadata=metadata,
                scratch=data_dir / SCRATCH, progress=progress,
            )  # fmt: skip
    summary.rows = rows
    summary.first = f"{first:%Y-%m-%d %H:%M:%S}" if first else None
    summary.last = f"{last:%Y-%m-%d %H:%M:%S}" if last else None
    ledger.record_build(station.id, stage, fingerprint)
    log.info("%s: wrote %s (%d rows)", station.id, ", ".join(summary.files), rows)
    return summary


def _write_windographer(
    files: Sequence[Path],
    sel: Selection,
    catalog: Catalog,
    temps: Sequence[Path],
    *,
    preamble: Preamble,
    marker: str,
    flag_log: bool,
    zip_stem: str | None,
    scratch: Path,
    progress: Callable[[str], None] | None,
) -> tuple[int, datetime | None, datetime | None]:
    columns = catalog.columns
    flags = FlagLog(columns, catalog.step) if flag_log else None
    first = last = None
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(open(temps[0], "wb", buffering=1 << 20))
        main = WindographerWriter(fh, columns, preamble, missing_marker=marker)
        by_type: list[tuple[str, Path, WindographerWriter]] = []
        if zip_stem is not None:
            # members are written side by side first; not in exports/, whose
            # leftover temporaries a crashed run's successor removes file by file
            scratch.mkdir(parents=True, exist_ok=True)
            members = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=scratch))
            )
            groups: dict[str, list[Column]] = {}
            for c in columns:
                groups.setdefault(type_name(c.measurement_type), []).append(c)
            for name, cols in groups.items():
                member = f"{zip_stem}_{name}.txt"
                path = members / member
                part: IO[bytes] = stack.enter_context(open(path, "wb", buffering=1 << 20))
                by_type.append(
                    (member, path, WindographerWriter(part, cols, preamble, missing_marker=marker))
                )
        chunks = iter_chunks(files, sel, catalog, with_flags=flags is not None, scratch=scratch)
        for window, chunk in chunks:
            if progress is not None:
                progress(f"{window.start + sel.offset:%Y-%m-%d}")
            if chunk.height == 0:
                continue
            wide = to_wide(chunk, columns, sel.station)
            main.write(wide)
            for _, _, writer in by_type:
                writer.write(wide)
            if flags is not None:
                flags.add(chunk)
            stamps = wide.get_column("timestamp")
            first = first or stamps.min()
            last = stamps.max()
        if by_type:
            for _, _, writer in by_type:
                writer.fh.close()
            zip_target = temps[-1]
            _write_zip(zip_target, [(m, p) for m, p, _ in by_type], preamble.created)
        if flags is not None:
            with open(temps[1], "wb") as log_fh:
                flags.write(log_fh)
    assert first is None or isinstance(first, datetime)
    assert last is None or isinstance(last, datetime)
    return main.rows, first, last


def _write_tabular(
    files: Sequence[Path],
    sel: Selection,
    catalog: Catalog,
    temp: Path,
    *,
    fmt: str,
    layout: str,
    metadata: Mapping[str, object],
    scratch: Path,
    progress: Callable[[str], None] | None,
) -> tuple[int, datetime | None, datetime | None]:
    columns = catalog.columns
    utc = sel.utc_offset_hours == 0.0
    first = last = None
    long = layout == "long"
    with contextlib.ExitStack() as stack:
        writer: CsvWideWriter | CsvLongWriter | ParquetWideWriter | ParquetLongWriter
        if fmt == "csv":
            fh = stack.enter_context(open(temp, "wb", buffering=1 << 20))
            writer = (
                CsvLongWriter(fh, columns, sel.station, sel.utc_offset_hours)
                if long
                else CsvWideWriter(fh, columns, sel.utc_offset_hours)
            )
        else:
            writer = (
                ParquetLongWriter(temp, columns, sel.station, utc=utc, metadata=metadata)
                if long
                else ParquetWideWriter(temp, columns, utc=utc, metadata=metadata)
            )
            stack.callback(writer.close)
        for window, chunk in iter_chunks(files, sel, catalog, with_flags=long, scratch=scratch):
            if progress is not None:
                progress(f"{window.start + sel.offset:%Y-%m-%d}")
            if chunk.height == 0:
                continue
            writer.write(chunk if long else to_wide(chunk, columns, sel.station))
            stamps = chunk.get_column("timestamp")
            first = first or stamps.min()
            last = stamps.max()
    assert first is None or isinstance(first, datetime)
    assert last is None or isinstance(last, datetime)
    return writer.rows, first, last


def export_configured(
    config: Config, station: StationConfig, ledger: Ledger
) -> list[ExportSummary]:
    """For ``stationkit run``: every format a station's ``export`` table asks for.

    Stations without an ``export`` table, or without clean data yet (a new
    station whose first file has not arrived), export nothing: no data yet is
    not a failure.
    """
    settings = export_settings(station)
    if not settings.configured:
        return []
    files = clean_files(config.data_dir, station.id)
    if not any(pq.read_metadata(f).num_rows for f in files):
        log.info("%s: no clean data yet; the exports wait for the first readings", station.id)
        return []
    return [export_station(config, station, ledger, fmt=f) for f in settings.formats]
