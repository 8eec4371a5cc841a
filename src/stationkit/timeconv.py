"""Turning a file's timestamp labels into period starts in UTC (DESIGN: Time).

Which settings apply, in order:

* a file that states the zone on every timestamp (``Z``, ``+00:00``) is taken
  as UTC instants -- it wins over station settings;
* otherwise the station's clock (:mod:`stationkit.clock`: stations.toml, else
  its IEA document) ``utc_offset_hours`` when set, else the offset the file
  header declares (NRG "Time Zone"), else 0;
* ``timestamp_is_end_of_period``: the station's clock when set, else what
  the file states, else true (Campbell and most loggers label period ends);
* the averaging period: the station's clock ``averaging_period_minutes`` when
  set, else the interval the file states, else the most common step between
  consecutive timestamps, else 10 minutes.

    start_utc = label - utc_offset - (period if end-of-period else 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from stationkit.clock import Clock
from stationkit.config import StationConfig
from stationkit.parsers.base import FileMeta

DEFAULT_PERIOD = timedelta(minutes=10)


@dataclass(frozen=True)
class TimeSettings:
    """The resolved conversion for one file, and where each part came from."""

    utc_offset_hours: float
    end_of_period: bool
    period: timedelta
    labels_are_utc: bool
    sources: tuple[str, ...]

    def describe(self) -> dict[str, object]:
        return {
            "utc_offset_hours": self.utc_offset_hours,
            "timestamp_is_end_of_period": self.end_of_period,
            "averaging_period_s": self.period.total_seconds(),
            "labels_are_utc": self.labels_are_utc,
            "from": list(self.sources),
        }


def infer_period(stamps: pl.Series) -> timedelta | None:
    """The most common positive step between consecutive labels."""
    if stamps.len() < 2:
        return None
    steps = stamps.sort().diff().drop_nulls()
    steps = steps.filter(steps > timedelta(0))
    if steps.len() == 0:
        return None
    counts = steps.value_counts(sort=False).sort(["count", steps.name], descending=[True, False])
    value = counts.get_column(steps.name)[0]
    return value if isinstance(value, timedelta) else None


def resolve(clock: Clock | StationConfig, meta: FileMeta, stamps: pl.Series) -> TimeSettings:
    """Which offset, convention and period apply to this file's labels.

    ``clock`` is the station's clock at the file's time
    (:meth:`stationkit.clock.StationClock.at`); a bare station stands for its
    own settings.
    """
    if isinstance(clock, StationConfig):
        clock = Clock.of_station(clock)
    dtype = stamps.dtype
    labels_are_utc = isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    sources: list[str] = []
    if labels_are_utc:
        offset = 0.0
        sources.append("offset: the file states the zone of every timestamp")
    elif clock.utc_offset_hours is not None:
        offset = clock.utc_offset_hours
        sources.append(f"offset: {clock.source('utc_offset_hours')}")
    elif meta.utc_offset_hours is not None:
        offset = meta.utc_offset_hours
        sources.append("offset: file header")
    else:
        offset = 0.0
        sources.append("offset: default 0")
    if clock.timestamp_is_end_of_period is not None:
        end = clock.timestamp_is_end_of_period
        sources.append(f"convention: {clock.source('timestamp_is_end_of_period')}")
    elif meta.timestamp_is_end_of_period is not None:
        end = meta.timestamp_is_end_of_period
        sources.append("convention: file header")
    else:
        end = True
        sources.append("convention: default end of period")
    period: timedelta | None
    if clock.averaging_period_minutes is not None:
        period = timedelta(minutes=clock.averaging_period_minutes)
        sources.append(f"period: {clock.source('averaging_period_minutes')}")
    elif meta.interval_s:
        period = timedelta(seconds=meta.interval_s)
        sources.append("period: file header")
    else:
        period = infer_period(stamps)
        if period is not None:
            sources.append("period: most common step in the file")
        else:
            period = DEFAULT_PERIOD
            sources.append("period: default 10 min")
    return TimeSettings(offset, end, period, labels_are_utc, tuple(sources))


def to_period_start_utc(stamps: pl.Series, settings: TimeSettings) -> pl.Series:
    """Labels -> period starts as ``Datetime("us", "UTC")``."""
    s = stamps
    if settings.labels_are_utc:
        s = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    else:
        # the offset in whole microseconds: fractional-hour zones (+05:45) stay exact
        s = s - timedelta(microseconds=round(settings.utc_offset_hours * 3_600_000_000))
    if settings.end_of_period:
        s = s - settings.period
    return s.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
