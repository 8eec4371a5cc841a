"""The plot stage: a station's clean time series as a picture (``stationkit plot``).

Read-only: no lock; it writes only the PNG asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from stationkit.atomic import write_bytes
from stationkit.config import Config, StationConfig
from stationkit.export.plot import timeseries_png
from stationkit.export.select import ExportError, Selection, clean_files
from stationkit.export.window import FileSpan, file_spans, last_timestamp, scan_window
from stationkit.pipeline.export import to_utc

#: the statistic drawn for a point, best first; else its first statistic by name
PREFERRED_STATISTICS = ("avg", "vector_avg", "sample", "median", "sum", "max", "min")
DEFAULT_DAYS = 30.0


@dataclass(frozen=True)
class PlotData:
    """What a picture shows: the frame of :mod:`stationkit.export.plot`, the
    period [start, end) and zone of its wall-clock times."""

    station: str
    frame: pl.DataFrame
    zone: str
    start: datetime
    end: datetime

    def title(self, name: str | None = None) -> str:
        who = f"{self.station} {name}" if name else self.station
        return f"{who}: {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} ({self.zone})"


def _frame(lf: pl.LazyFrame, offset: timedelta) -> pl.DataFrame:
    """One statistic per point (:data:`PREFERRED_STATISTICS`), wall-clock times."""
    rank = {s: i for i, s in enumerate(PREFERRED_STATISTICS)}
    df = lf.select(
        "timestamp", "point", "measurement_type", "height_m", "statistic", "value", "flags"
    ).collect()
    chosen = (
        df.select("point", "statistic")
        .unique()
        .with_columns(
            pl.col("statistic")
            .replace_strict(rank, default=len(rank), return_dtype=pl.Int64)
            .alias("__rank")
        )
        .sort("point", "__rank", "statistic", nulls_last=True)
        .group_by("point", maintain_order=True)
        .first()
        .drop("__rank")
    )
    # a point whose type or height changed: the newest wins, for its panel and order
    kinds = (
        df.sort("timestamp")
        .group_by("point")
        .agg(pl.col("measurement_type").last(), pl.col("height_m").last())
    )
    return (
        df.drop("measurement_type", "height_m")
        .join(chosen, on=["point", "statistic"], nulls_equal=True)
        .join(kinds, on="point")
        .select(
            (pl.col("timestamp") + offset).dt.replace_time_zone(None).alias("timestamp"),
            "point",
            "measurement_type",
            "height_m",
            pl.when(pl.col("value").is_finite()).then(pl.col("value")).alias("value"),
            (pl.col("flags").list.len().fill_null(0) > 0).alias("flagged"),
        )
        .sort(
            "measurement_type",
            pl.col("height_m"),
            "point",
            "timestamp",
            descending=[False, True, False, False],
            nulls_last=True,
        )
        .drop("height_m")
    )


def plot_data(
    config: Config,
    station: StationConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    points: Sequence[str] = (),
    utc: bool = False,
    days: float = DEFAULT_DAYS,
    spans: Sequence[FileSpan] | None = None,
) -> PlotData:
    """The clean values of ``station`` over [start, end) in its logger's local
    time (UTC with ``utc``): by default the ``days`` up to its newest value;
    ``start`` alone runs to the newest value. ``points`` empty: every point
    with a measurement type (every column when none has one)."""
    offset_h = 0.0 if utc else float(station.utc_offset_hours or 0.0)
    offset = timedelta(hours=offset_h)
    if spans is None:
        spans = file_spans(clean_files(config.data_dir, station.id))
    newest = last_timestamp(spans)
    if newest is None:
        raise ExportError(
            f"{station.id}: no clean data in lake/clean/station={station.id}; "
            f"run `stationkit calibrate {station.id}` first"
        )
    lo, hi = to_utc(start, offset_h), to_utc(end, offset_h)
    if hi is None:  # the end of the newest period
        minutes = station.averaging_period_minutes
        hi = newest + (timedelta(minutes=minutes) if minutes else timedelta(microseconds=1))
    if lo is None:
        lo = hi - timedelta(days=days)
    if hi <= lo:
        raise ExportError(f"{station.id}: the end ({end}) must come after the start ({start})")
    lf = scan_window(spans, lo, hi)
    wanted = tuple(dict.fromkeys(points))
    if wanted:
        known = set(
            pl.scan_parquet(
                [s.path for s in spans], hive_partitioning=False, extra_columns="ignore"
            )
            .select(pl.col("point").unique())
            .collect()
            .get_column("point")
            .to_list()
        )
        unknown = [p for p in wanted if p not in known]
        if unknown:
            raise ExportError(
                f"{station.id}: no point {unknown[0]!r}; points: {', '.join(sorted(known))}"
            )
        lf = lf.filter(pl.col("point").is_in(list(wanted))) if lf is not None else None
    if lf is None:
        lf = pl.LazyFrame(schema=pl.scan_parquet(spans[0].path).collect_schema())
    frame = _frame(lf, offset)
    if not wanted and frame.get_column("measurement_type").null_count() < frame.height:
        # columns that map to no point (no measurement type) only when asked for
        frame = frame.filter(pl.col("measurement_type").is_not_null())
    zone = Selection(station.id, utc_offset_hours=offset_h).zone_name()
    wall = (lo + offset).replace(tzinfo=None), (hi + offset).replace(tzinfo=None)
    return PlotData(station.id, frame, zone, *wall)


def write_plot(config: Config, station: StationConfig, path: Path, **kw: object) -> PlotData:
    """Draw :func:`plot_data` into ``path`` (PNG, written atomically)."""
    data = plot_data(config, station, **kw)  # type: ignore[arg-type]
    write_bytes(path, timeseries_png(data.frame, title=data.title(station.name), zone=data.zone))
    return data
