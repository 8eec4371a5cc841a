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
    round = "logger"                   # or a number of decimals; default "exact"
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from stationkit import __version__
from stationkit.atomic import TMP_PREFIX, atomic_output, sha256_file
from stationkit.clock import station_clock
from stationkit.config import Config, StationConfig
from stationkit.errors import ConfigError
from stationkit.export.assemble import (
    Assembly,
    CleanPart,
    Piece,
    RunCache,
    TextTarget,
    ZipMember,
    file_stamp,
    open_previous,
    plan_pieces,
    previous_zip,
)
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
    ParquetLongWriter,
    ParquetWideWriter,
    column_frame,
    csv_long_header,
    csv_wide_header,
    render_csv_long,
    render_csv_wide,
)
from stationkit.export.windographer import FlagLog, Preamble, header_bytes, render_rows
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
    "round",
)
#: bump when the bytes an export writes change for the same input
EXPORT_VERSION = 2
STAGE = "export"
#: below data_dir: where the one-pass sort of badly laid out clean data spills
SCRATCH = Path(".tmp") / "export"
#: below data_dir: the flagging-log runs of each export's pieces
CACHE = Path("cache") / "export"


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
    #: "logger", a number of decimals, or None (values exact)
    decimals: str | int | None = None
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


def check_round(value: Any, where: str) -> str | int | None:
    """``"logger"``, ``"exact"`` (None) or a number of decimals from 0 to 10."""
    if value is None or value == "exact":
        return None
    if value == "logger":
        return "logger"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) <= 10:
        return int(value)
    raise ConfigError(
        f'{where}: expected "logger" (the decimals the logger wrote), "exact" or a number '
        f"of decimals from 0 to 10, got {show_value(value)}"
    )


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
        decimals=check_round(t.raw("round"), t.key("round")),
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
    round_to: str | int | None = None,
    missing_marker: str | None = None,
    flag_log: bool | None = None,
    zip_by_type: bool | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExportSummary:
    """Export one station's lake/clean in one format.

    Options left as None take the station's ``export`` settings.
    ``round_to``: ``"logger"`` rounds each column to the decimals its logger
    wrote, a number to that many decimals, ``"exact"`` keeps every value. ``start`` /
    ``end`` bound the period [start, end) in the export's time zone (naive) or
    as aware instants. ``points`` empty means every point. ``exclude_flags``
    names the flags whose values are left out (``"*"``: every flag);
    ``include_flagged`` keeps every value whatever its flags. ``utc`` writes
    UTC instead of the logger's local time (the station's clock,
    :func:`stationkit.clock.station_clock`).

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
    clock = station_clock(station)  # stations.toml, else the IEA document
    offset = 0.0 if use_utc else clock.offset_hours
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
        decimals=settings.decimals if round_to is None else check_round(round_to, "round"),
    )
    if sel.start is not None and sel.end is not None and sel.end <= sel.start:
        raise ExportError(f"{station.id}: the end ({end}) must come after the start ({start})")

    data_dir = config.data_dir
    folder = clean_dir(data_dir, station.id)
    if not clean_files(data_dir, station.id):
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
    step = clock.period
    # only the months of the period are opened
    parts = clean_parts(data_dir, station.id, ledger, sel)
    files = [p.path for p in parts]
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
            "inputs": [[p.path.relative_to(folder).as_posix(), p.content] for p in parts],
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
            everything = read_catalog(
                clean_files(data_dir, station.id), Selection(station.id), step=catalog.step
            )
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
    pieces = plan_pieces(parts, sel, catalog)
    # what the text of every piece depends on besides its rows
    options = _fingerprint(
        {
            "version": [__version__, EXPORT_VERSION],
            "format": fmt,
            "layout": layout,
            "columns": [asdict(c) for c in catalog.columns],
            "offset": sel.utc_offset_hours,
            "decimals": catalog.rounding(sel),
            "points": sel.points,
            "excluded": sel.exclude_flags,
            "marker": marker,
            "step": catalog.step,
        }
    )
    target_key = _rel(main, data_dir)
    recorded = ledger.export_layout(station.id, target_key)
    old_layout: dict[str, Any] = json.loads(recorded[0]) if recorded else {}
    old_stamp: dict[str, Any] = json.loads(recorded[1]) if recorded else {}
    scratch = data_dir / SCRATCH
    new_layout: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        temps = stack.enter_context(_outputs(targets))
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
            rows, new_layout = _write_windographer(
                stack, pieces, sel, catalog, targets, temps, old_layout, old_stamp, options,
                preamble=preamble, marker=marker, flag_log=want_flag_log,
                zip_stem=stem if want_zip else None, scratch=scratch,
                cache=export_cache_dir(data_dir, station.id, target_key), progress=progress,
            )  # fmt: skip
        elif fmt == "csv":
            rows, new_layout = _write_csv(
                stack, pieces, sel, catalog, main, temps[0], old_layout, old_stamp, options,
                layout=layout, scratch=scratch, progress=progress,
            )  # fmt: skip
        else:
            metadata = {
                "station": station.id,
                "utc_offset_hours": sel.utc_offset_hours,
                "time_zone": sel.zone_name(),
                "excluded_flags": list(shown_excluded),
                "version": __version__,
                "timestamps": "period start",
            }
            rows = _write_parquet(
                files, sel, catalog, temps[0], layout=layout, metadata=metadata,
                scratch=scratch, progress=progress,
            )  # fmt: skip
    summary.rows = rows
    first = catalog.first.replace(tzinfo=None) + sel.offset if catalog.first else None
    last = catalog.last.replace(tzinfo=None) + sel.offset if catalog.last else None
    summary.first = f"{first:%Y-%m-%d %H:%M:%S}" if first else None
    summary.last = f"{last:%Y-%m-%d %H:%M:%S}" if last else None
    ledger.record_build(station.id, stage, fingerprint)
    if new_layout:
        stamps = {"main": file_stamp(main)}
        if want_zip:
            stamps["zip"] = file_stamp(targets[-1])
        ledger.record_export_layout(
            station.id, target_key, json.dumps(new_layout, sort_keys=True), json.dumps(stamps)
        )
    # each path its own argument: the CLI shows each relative to where it runs
    shown = ", ".join(["%s"] * len(summary.files))
    log.info(f"%s: wrote {shown} (%d rows)", station.id, *summary.files, rows)
    return summary


def clean_parts(data_dir: Path, station: str, ledger: Ledger, sel: Selection) -> list[CleanPart]:
    """Every lake/clean file of a station and what identifies its rows: the
    month's build fingerprint from the ledger, else a hash of its content."""
    built = {
        r["output"]: r["fingerprint"]
        for r in ledger.partitions(station).values()
        if r["output"] is not None
    }
    out = []
    for path in clean_files(data_dir, station, sel.start, sel.end):
        st = path.stat()
        known = built.get(path.relative_to(data_dir).as_posix())
        content = f"{known}:{st.st_size}" if known is not None else sha256_file(path)
        identity = f"{content}:{st.st_mtime_ns}:{st.st_ino}"
        out.append(CleanPart(path, identity, content))
    return out


def export_cache_dir(data_dir: Path, station: str, target: str) -> Path:
    """Where the runs of an export's flagging log are kept, per piece."""
    name = hashlib.sha256(target.encode()).hexdigest()[:16]
    return data_dir / CACHE / station / name


def _write_windographer(
    stack: contextlib.ExitStack,
    pieces: Sequence[Piece],
    sel: Selection,
    catalog: Catalog,
    targets: Sequence[Path],
    temps: Sequence[Path],
    old_layout: Mapping[str, Any],
    old_stamp: Mapping[str, Any],
    options: str,
    *,
    preamble: Preamble,
    marker: str,
    flag_log: bool,
    zip_stem: str | None,
    scratch: Path,
    cache: Path,
    progress: Callable[[str], None] | None,
) -> tuple[int, dict[str, Any]]:
    columns = catalog.columns
    labels = [c.label for c in columns]
    previous = open_previous(targets[0], old_layout.get("main"), old_stamp.get("main"), options)
    if previous is not None:
        stack.callback(previous.fh.close)
    fh = stack.enter_context(open(temps[0], "wb"))  # noqa: SIM115
    main = TextTarget(
        fh,
        header_bytes(preamble, columns),
        lambda _chunk, wide: render_rows(wide, labels, marker) if wide is not None else b"",
        previous,
    )
    assembly = Assembly(pieces, texts=[main])
    if flag_log:
        assembly.flag_log = FlagLog(columns, catalog.step)
        assembly.run_cache = RunCache(cache, options)
    if zip_stem is not None:
        source, starts, segments = previous_zip(
            targets[-1], old_layout.get("zip"), old_stamp.get("zip"), options
        )
        if source is not None:
            stack.callback(source.close)
        assembly.zip_source, assembly.zip_starts = source, starts
        groups: dict[str, list[Column]] = {}
        for c in columns:
            groups.setdefault(type_name(c.measurement_type), []).append(c)
        scratch.mkdir(parents=True, exist_ok=True)
        for name, cols in groups.items():
            member = f"{zip_stem}_{name}.txt"
            part = stack.enter_context(
                tempfile.TemporaryFile(prefix=TMP_PREFIX, dir=scratch)  # noqa: SIM115
            )
            sub = [c.label for c in cols]
            assembly.members.append(
                ZipMember(
                    member,
                    header_bytes(preamble, cols),
                    lambda _c, wide, sub=sub: (
                        render_rows(wide, sub, marker)  # type: ignore[misc]
                        if wide is not None
                        else b""
                    ),
                    part,
                    previous=segments.get(member, {}) if source is not None else {},
                )
            )
    assembly.run(sel, catalog, scratch=scratch, progress=progress)
    log.info("%s: %d month(s) rendered, %d copied", sel.station, assembly.rendered, assembly.copied)
    layout: dict[str, Any] = {"main": main.layout(options)}
    if zip_stem is not None:
        with open(temps[-1], "wb") as zfh:
            layout["zip"] = {
                "options": options,
                "members": assembly.write_zip(zfh, preamble.created),
            }
    if assembly.flag_log is not None:
        with open(temps[1], "wb") as log_fh:
            assembly.flag_log.write(log_fh)
        assert assembly.run_cache is not None
        assembly.run_cache.prune()
    return main.rows, layout


def _write_csv(
    stack: contextlib.ExitStack,
    pieces: Sequence[Piece],
    sel: Selection,
    catalog: Catalog,
    target: Path,
    temp: Path,
    old_layout: Mapping[str, Any],
    old_stamp: Mapping[str, Any],
    options: str,
    *,
    layout: str,
    scratch: Path,
    progress: Callable[[str], None] | None,
) -> tuple[int, dict[str, Any]]:
    columns = catalog.columns
    offset = sel.utc_offset_hours
    previous = open_previous(target, old_layout.get("main"), old_stamp.get("main"), options)
    if previous is not None:
        stack.callback(previous.fh.close)
    fh = stack.enter_context(open(temp, "wb"))  # noqa: SIM115
    if layout == "long":
        frame = column_frame(columns)
        text = TextTarget(
            fh,
            csv_long_header(),
            lambda chunk, _wide: render_csv_long(chunk, frame, sel.station, offset),
            previous,
        )
    else:
        labels = [c.label for c in columns]
        text = TextTarget(
            fh,
            csv_wide_header(columns),
            lambda _chunk, wide: render_csv_wide(wide, labels, offset) if wide is not None else b"",
            previous,
        )
    # long rows name every flag that hit them: read the flags
    assembly = Assembly(
        pieces, texts=[text], needs_wide=layout != "long", with_flags=layout == "long"
    )
    assembly.run(sel, catalog, scratch=scratch, progress=progress)
    return text.rows, {"main": text.layout(options)}


def _write_parquet(
    files: Sequence[Path],
    sel: Selection,
    catalog: Catalog,
    temp: Path,
    *,
    layout: str,
    metadata: Mapping[str, object],
    scratch: Path,
    progress: Callable[[str], None] | None,
) -> int:
    """Parquet exports are written whole (a Parquet file cannot be spliced;
    analysts who want months read lake/clean itself)."""
    columns = catalog.columns
    utc = sel.utc_offset_hours == 0.0
    long = layout == "long"
    writer: ParquetWideWriter | ParquetLongWriter = (
        ParquetLongWriter(temp, columns, sel.station, utc=utc, metadata=metadata)
        if long
        else ParquetWideWriter(temp, columns, utc=utc, metadata=metadata)
    )
    try:
        for window, chunk in iter_chunks(files, sel, catalog, with_flags=long, scratch=scratch):
            if progress is not None:
                progress(f"{window.start + sel.offset:%Y-%m-%d}")
            if chunk.height == 0:
                continue
            writer.write(chunk if long else to_wide(chunk, columns, sel.station))
    finally:
        writer.close()
    return writer.rows


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
