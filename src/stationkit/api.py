"""stationkit from Python: a project's stations, readings and clean data as
polars DataFrames, for notebooks and scripts (docs/api.md)::

    import stationkit

    p = stationkit.open("stations.toml")
    list(p.stations)                              # ['M001', 'M002']
    p.clean("M001", "2024-01-01", "2024-02-01", wide=True, exclude_flags="*")

Everything here reads what is on disk -- the lake and a read-only view of
the ledger -- and never takes the run lock, so a notebook can read while
``stationkit run`` works (every file appears atomically; a file replaced
while it is being read is looked up again). Only :meth:`Project.run` writes.

Time: ``start`` / ``end`` bound a half-open period [start, end). Each takes a
``datetime``, a ``date`` (its midnight) or ISO 8601 text (``"2024-01-31"``,
``"2024-01-31T12:00"``, ``"2024-01-31T12:00Z"``). Times with a zone are
instants; naive times are UTC when ``utc=True`` and the logger's local time
(its fixed offset, :func:`stationkit.clock.station_clock`) when ``utc=False``.
Returned timestamps are period starts: tz-aware UTC with ``utc=True``, naive
logger-local with ``utc=False``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import polars as pl

from stationkit.calibrate.partition import month_of_name
from stationkit.clock import station_clock
from stationkit.config import Config, StationConfig, load_config
from stationkit.errors import ConfigError, StationkitError
from stationkit.export.select import (
    ExportError,
    Selection,
    _excluded,
    clean_files,
    iter_chunks,
    read_catalog,
    to_wide,
)
from stationkit.ledger import Ledger, iso
from stationkit.tomltable import as_datetime

if TYPE_CHECKING:
    from stationkit.pipeline.run import RunResult
    from stationkit.progress import ProgressCallback

__all__ = ["LakeError", "Project", "SelectionError", "TimeLike", "open"]

#: what ``start`` and ``end`` accept
TimeLike: TypeAlias = datetime | date | str | None
#: the lake's two layers
Layer = Literal["readings", "clean"]
LAYERS: tuple[str, ...] = ("readings", "clean")

UTC_US = pl.Datetime("us", "UTC")
READINGS_COLUMNS: dict[str, pl.DataType] = {
    "station": pl.String(),
    "timestamp": UTC_US,
    "channel": pl.String(),
    "statistic": pl.String(),
    "value": pl.Float64(),
    "file_id": pl.Int64(),
}
CLEAN_COLUMNS: dict[str, pl.DataType] = {
    "station": pl.String(),
    "timestamp": UTC_US,
    "point": pl.String(),
    "measurement_type": pl.String(),
    "height_m": pl.Float64(),
    "statistic": pl.String(),
    "value": pl.Float64(),
    "raw_value": pl.Float64(),
    "flags": pl.List(pl.String()),
    "file_id": pl.Int64(),
}
#: how often a read starts again when a run replaced files under it
_ATTEMPTS = 3


class SelectionError(StationkitError, ValueError):
    """A period, point list, flag list or layer asked of the API is not valid."""


class LakeError(StationkitError):
    """A file of the lake cannot be read."""


def open(config: str | os.PathLike[str] | None = None) -> Project:
    """Open a stationkit project: its stations.toml and the data it names.

    ``config`` defaults to ``$STATIONKIT_CONFIG``, else ``./stations.toml``,
    as on the command line. Raises ConfigError naming the key when the file
    is invalid. Nothing is read from the data directory until asked.
    """
    path = Path(
        config if config is not None else os.environ.get("STATIONKIT_CONFIG", "stations.toml")
    )
    if not path.exists():
        raise ConfigError(
            f"{path}: no such file; pass the path of stations.toml to stationkit.open() "
            "or set STATIONKIT_CONFIG"
        )
    return Project(load_config(path))


@dataclass(frozen=True)
class Project:
    """A loaded stations.toml and the data directory it names.

    Every method reads the lake as it is on disk when called; open the
    project again (:func:`open`) to see a changed stations.toml.
    """

    config: Config

    def __repr__(self) -> str:
        n = len(self.config.stations)
        return (
            f"<stationkit.Project {str(self.config.path)!r}: {n} station{'s' * (n != 1)}, "
            f"data in {str(self.data_dir)!r}>"
        )

    # ------------------------------------------------------------ what is configured

    @property
    def path(self) -> Path:
        """The stations.toml file."""
        return self.config.path

    @property
    def data_dir(self) -> Path:
        """The data directory (``data_dir`` of stations.toml)."""
        return self.config.data_dir

    @property
    def stations(self) -> Mapping[str, StationConfig]:
        """Station id -> its validated settings, in id order (read-only).

        ``list(p.stations)`` gives the ids; ``p.stations["M001"].latitude`` a setting.
        """
        return MappingProxyType({k: self.config.stations[k] for k in sorted(self.config.stations)})

    def station(self, station: str) -> StationConfig:
        """One station's settings; ConfigError listing the ids when it is unknown."""
        return self.config.select([station])[0]

    # ------------------------------------------------------------ readings

    def readings(
        self,
        station: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        channels: Sequence[str] | str | None = None,
        utc: bool = True,
    ) -> pl.DataFrame:
        """Tidy readings of ``station`` in [start, end), as parsed (lake/readings).

        Columns: ``station``, ``timestamp`` (period start), ``channel`` (the
        column name as the file has it), ``statistic``, ``value`` (as logged
        [the logger's units]; missing markers are null), ``file_id`` (the
        source file, ``stationkit status`` and the ledger name it).

        Readings are raw: when several files hold the same channel and time
        (overlapping downloads, re-sent days), every copy is returned, each
        with its ``file_id``; :meth:`clean` keeps exactly one. Only current
        files are read: versions a changed file replaced, and files that
        failed or were skipped, are not. The ledger's time span of each file
        chooses the files to open. Rows are sorted by timestamp, channel,
        statistic and file id.

        ``channels`` keeps only those channels.
        """
        st = self.station(station)
        lo, hi = _period(st, start, end, utc)
        wanted = _names(channels, "channels")
        offset = None if utc else _offset(st)

        def read(paths: list[Path]) -> pl.DataFrame:
            if not paths:
                return pl.DataFrame(schema=READINGS_COLUMNS)
            lf = _scan(paths, READINGS_COLUMNS).filter(*_time_filters(lo, hi))
            if wanted:
                lf = lf.filter(pl.col("channel").is_in(list(wanted)))
            return (
                lf.with_columns(pl.lit(st.id, pl.String).alias("station"))
                .select(list(READINGS_COLUMNS))
                .sort("timestamp", "channel", "statistic", "file_id", nulls_last=False)
                .collect()
            )

        return _local(_retrying(lambda: self._readings_files(st.id, lo, hi), read), offset)

    def _readings_files(self, station: str, lo: datetime | None, hi: datetime | None) -> list[Path]:
        """Current, parsed readings files whose time span reaches [lo, hi)."""
        sql = (
            "SELECT p.output FROM parses p JOIN files f ON f.id = p.file_id "
            "WHERE p.station = ? AND p.status = 'ok' AND p.output IS NOT NULL "
            "AND f.superseded_by IS NULL AND p.first_ts IS NOT NULL AND p.last_ts IS NOT NULL"
        )
        args: list[Any] = [station]
        if lo is not None:
            sql += " AND p.last_ts >= ?"
            args.append(iso(lo))
        if hi is not None:
            sql += " AND p.first_ts < ?"
            args.append(iso(hi))
        with Ledger(self.data_dir, readonly=True) as ledger:
            rows = ledger.conn.execute(sql + " ORDER BY p.file_id", args).fetchall()
        return [self.data_dir / r["output"] for r in rows]

    # ------------------------------------------------------------ clean

    def clean(
        self,
        station: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        points: Sequence[str] | str | None = None,
        wide: bool = False,
        exclude_flags: Sequence[str] | str | None = None,
        include_flagged: bool = False,
        utc: bool = True,
    ) -> pl.DataFrame:
        """Calibrated, flagged values of ``station`` in [start, end) (lake/clean).

        Long (default), one row per point, statistic and period: ``station``,
        ``timestamp``, ``point``, ``measurement_type``, ``height_m`` [m],
        ``statistic``, ``value`` (calibrated), ``raw_value`` (as logged),
        ``flags`` (the names of the flags that hit the value; empty when
        none) and ``file_id``, sorted by time, then point and statistic.

        ``wide=True``: one row per timestamp with readings, one Float64
        column per (point, statistic) named as in a Windographer export
        (``WS 80m N Mean``; :mod:`stationkit.export.labels`, and
        :meth:`columns` maps labels back to points).

        Flags never hide a value unless asked: by default every value is
        returned and the ``flags`` column says what hit it.
        ``exclude_flags="*"`` (or ``["*"]``) blanks (null) every flagged
        value, ``exclude_flags=["icing", "qc_spike"]`` only those flags' --
        as ``stationkit export --exclude-flag`` does, whose default is
        ``"*"``. ``include_flagged=True`` keeps every value (the default
        here; naming flags as well is an error). NaN and infinite values
        are never measurements: ``value`` is null there.

        ``points`` keeps only those points; a name the station has no data
        for at all is an error that lists the station's points. Only the
        month files the period reaches are read.
        """
        st = self.station(station)
        lo, hi = _period(st, start, end, utc)
        excluded = _exclusions(exclude_flags, include_flagged)
        wanted = _names(points, "points")
        offset = 0.0 if utc else _offset(st)
        sel = Selection(st.id, lo, hi, wanted, excluded, utc_offset_hours=offset)

        def find() -> list[Path]:
            every = clean_files(self.data_dir, st.id)
            if wanted:
                _check_points(every, st.id, wanted)
            return [f for f in every if _month_reaches(f, lo, hi)]

        def read(files: list[Path]) -> pl.DataFrame:
            if wide:
                return _wide(files, sel, st)
            if not files:
                return pl.DataFrame(schema=CLEAN_COLUMNS)
            value = pl.col("value")
            missing = (_excluded(sel) | value.is_nan() | value.is_infinite()).fill_null(False)
            lf = _scan(files, CLEAN_COLUMNS)
            filters = _time_filters(lo, hi)
            if wanted:
                filters.append(pl.col("point").is_in(list(wanted)))
            if filters:
                lf = lf.filter(*filters)
            return (
                lf.with_columns(
                    pl.lit(st.id, pl.String).alias("station"),
                    pl.when(missing).then(None).otherwise(value).alias("value"),
                )
                .select(list(CLEAN_COLUMNS))
                # months of daily files are stored in the order they were read
                .sort("timestamp", "point", "statistic", nulls_last=False, maintain_order=True)
                .collect()
            )

        frame = _retrying(find, read)
        if wide:
            return frame if not utc else _utc_stamps(frame)
        return _local(frame, None if utc else offset)

    def columns(
        self,
        station: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        points: Sequence[str] | str | None = None,
        utc: bool = True,
    ) -> pl.DataFrame:
        """The columns ``clean(..., wide=True)`` gives for the same period.

        One row per wide column, in its order: ``label``, ``point``,
        ``statistic``, ``measurement_type`` and ``height_m`` [m]. Read from
        the month files' summaries where the period takes whole months.
        """
        st = self.station(station)
        lo, hi = _period(st, start, end, utc)
        wanted = _names(points, "points")
        files = [f for f in clean_files(self.data_dir, st.id) if _month_reaches(f, lo, hi)]
        if wanted:
            _check_points(clean_files(self.data_dir, st.id), st.id, wanted)
        catalog = read_catalog(files, Selection(st.id, lo, hi, wanted))
        return pl.DataFrame(
            {
                "label": [c.label for c in catalog.columns],
                "point": [c.point for c in catalog.columns],
                "statistic": [c.statistic for c in catalog.columns],
                "measurement_type": [c.measurement_type for c in catalog.columns],
                "height_m": [c.height_m for c in catalog.columns],
            },
            schema={
                "label": pl.String,
                "point": pl.String,
                "statistic": pl.String,
                "measurement_type": pl.String,
                "height_m": pl.Float64,
            },
        )

    # ------------------------------------------------------------ the whole lake

    def scan(self, layer: Layer = "clean") -> pl.LazyFrame:
        """Every station of one lake layer as one lazy frame (polars).

        ``station`` is the first column, always text (also for ids made of
        digits only). Nothing is read until ``.collect()``; filters on
        ``station`` and ``timestamp`` skip the other folders and row groups::

            p.scan("clean").filter(pl.col("point") == "WS80").group_by("station").len()

        Unlike :meth:`readings`, a scan of ``readings`` sees every file on
        disk, including those of a file version not yet retired by
        ``stationkit parse``.
        """
        if layer not in LAYERS:
            raise SelectionError(
                f"layer: expected one of {', '.join(map(repr, LAYERS))}, got {layer!r}"
            )
        columns = READINGS_COLUMNS if layer == "readings" else CLEAN_COLUMNS
        root = self.data_dir / "lake" / layer
        if not any(root.glob("station=*/*.parquet")):
            return pl.LazyFrame(schema=columns)
        return pl.scan_parquet(
            root,
            hive_partitioning=True,
            hive_schema={"station": pl.String},
            try_parse_hive_dates=False,
            hidden_file_prefix=".",
        ).select(list(columns))

    # ------------------------------------------------------------ the ledger and runs

    def status(
        self, stations: Iterable[str] = (), *, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """What ``stationkit status --json`` prints: per station, files by
        state, readings, first and last data, last fetch and calibrate, exports,
        the last error, its health at ``now`` (default: the current time; stale
        or not), failed files and suspect sensors. All stations when none are
        named."""
        from stationkit.pipeline.status import fleet_status

        selected = self.config.select(list(stations))
        with Ledger(self.data_dir, readonly=True) as ledger:
            return fleet_status(self.config, selected, ledger, now or datetime.now(UTC))

    def run(
        self,
        stations: Iterable[str] = (),
        *,
        wait: bool = False,
        force: bool = False,
        jobs: int = 1,
        shard: tuple[int, int] | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunResult:
        """What ``stationkit run`` does (fetch, unpack, parse, calibrate,
        export), under the run lock; returns its result (``.exit_code``,
        ``.failures``, ``.as_dict()``). All stations when none are named.

        Raises LockedError when another run holds the lock (``wait=True``
        queues behind it instead). The ``on_failure`` command is not run.
        """
        from stationkit.pipeline.run import run_stations

        return run_stations(
            self.config,
            self.config.select(list(stations)),
            wait=wait,
            force=force,
            jobs=jobs,
            shard=shard,
            progress=progress,
        )


# ---------------------------------------------------------------- helpers


def _offset(station: StationConfig) -> float:
    """The logger's offset from UTC [h], as exports use it."""
    return station_clock(station).offset_hours


def _instant(value: TimeLike, name: str, local_offset: float | None) -> datetime | None:
    """``value`` as an aware UTC instant; naive values are UTC, or logger-local
    when ``local_offset`` is given."""
    if value is None:
        return None
    when = as_datetime(value)
    if when is None and isinstance(value, str):
        raise SelectionError(
            f"{name}: expected a datetime, a date or ISO 8601 text such as '2024-01-31' "
            f"or '2024-01-31T12:00Z', got {value!r}"
        )
    if when is None:
        raise SelectionError(
            f"{name}: expected a datetime, a date or ISO 8601 text, got {type(value).__name__}"
        )
    if when.tzinfo is not None:
        return when.astimezone(UTC)
    return (when - timedelta(hours=local_offset or 0.0)).replace(tzinfo=UTC)


def _period(
    station: StationConfig, start: TimeLike, end: TimeLike, utc: bool
) -> tuple[datetime | None, datetime | None]:
    naive = any(
        v is not None and not (isinstance(v, datetime) and v.tzinfo is not None)
        for v in (start, end)
    )
    offset = _offset(station) if naive and not utc else None
    lo = _instant(start, "start", offset)
    hi = _instant(end, "end", offset)
    if lo is not None and hi is not None and hi <= lo:
        raise SelectionError(f"{station.id}: the end ({end}) must come after the start ({start})")
    return lo, hi


def _names(values: Sequence[str] | str | None, name: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        return (values,)
    out = tuple(dict.fromkeys(values))
    if not all(isinstance(v, str) and v for v in out):
        raise SelectionError(f"{name}: expected names (text), got {list(values)!r}")
    return out


def _exclusions(
    exclude_flags: Sequence[str] | str | None, include_flagged: bool
) -> tuple[str, ...]:
    names = _names(exclude_flags, "exclude_flags")
    if include_flagged and names:
        raise SelectionError(
            "include_flagged keeps every value: do not name flags to exclude as well"
        )
    return names


def _check_points(files: Sequence[Path], station: str, wanted: Sequence[str]) -> None:
    """A point the station has no data for at all is a typo: say which exist."""
    known = {c.point for c in read_catalog(files, Selection(station)).columns}
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise SelectionError(
            f"{station}: no clean data of point {unknown[0]!r}; points in lake/clean: "
            f"{', '.join(sorted(known)) or '(none: run `stationkit calibrate`)'}"
        )


def _month_reaches(path: Path, lo: datetime | None, hi: datetime | None) -> bool:
    """Whether a clean file may hold rows in [lo, hi): month files by name,
    any other file always."""
    month = month_of_name(path.name)
    if month is None:
        return True
    return (lo is None or month.end > lo) and (hi is None or month.start < hi)


def _scan(paths: Sequence[Path], columns: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """The files' columns but ``station`` (files written before the folder
    carried it may still hold one: it is ignored)."""
    stored = {k: v for k, v in columns.items() if k != "station"}
    return pl.scan_parquet(
        list(paths), hive_partitioning=False, schema=stored, extra_columns="ignore"
    )


def _time_filters(lo: datetime | None, hi: datetime | None) -> list[pl.Expr]:
    out = []
    if lo is not None:
        out.append(pl.col("timestamp") >= lo)
    if hi is not None:
        out.append(pl.col("timestamp") < hi)
    return out


def _local(frame: pl.DataFrame, offset: float | None) -> pl.DataFrame:
    """UTC timestamps as naive logger-local ones when ``offset`` is given."""
    if offset is None:
        return frame
    return frame.with_columns(
        pl.col("timestamp").dt.replace_time_zone(None) + timedelta(hours=offset)
    )


def _utc_stamps(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))


def _wide(files: Sequence[Path], sel: Selection, station: StationConfig) -> pl.DataFrame:
    """The export machinery's wide table: naive timestamps in the selection's zone."""
    catalog = read_catalog(files, sel, step=station_clock(station).period)
    frames = [
        to_wide(chunk, catalog.columns, sel.station)
        for _window, chunk in iter_chunks(files, sel, catalog)
        if chunk.height
    ]
    if not frames:
        return to_wide(pl.DataFrame(), catalog.columns, sel.station)
    return pl.concat(frames).sort("timestamp")


def _retrying(
    find: Callable[[], list[Path]], read: Callable[[list[Path]], pl.DataFrame]
) -> pl.DataFrame:
    """``read(find())``; when a concurrent run removed one of the files found
    (a new file version retired, a month rebuilt), find them again. A file
    that cannot be read is named."""
    for attempt in range(_ATTEMPTS):
        paths = find()
        try:
            return read(paths)
        except (OSError, pl.exceptions.PolarsError, ExportError) as exc:
            vanished = any(not p.exists() for p in paths)
            changed = isinstance(exc, ExportError) and "changed while" in str(exc)
            if attempt < _ATTEMPTS - 1 and (changed or (vanished and _gone(exc))):
                continue
            if isinstance(exc, ExportError):
                raise
            _name_broken(paths)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _name_broken(paths: Sequence[Path]) -> None:
    """Raise LakeError for the first file whose Parquet footer cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in paths:
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowException) as exc:
            raise LakeError(
                f"{path}: cannot be read as Parquet ({exc}); rebuild the lake from raw/ "
                "with `stationkit rebuild`"
            ) from None


def _gone(exc: BaseException) -> bool:
    """Whether an error says a file was not found."""
    if isinstance(exc, FileNotFoundError):
        return True
    text = str(exc).lower()
    return "no such file" in text or "not found" in text
