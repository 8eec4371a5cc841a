"""The one return shape every parser shares.

A parser turns one logger file into a :class:`ParseResult`:

* ``meta`` -- what the file says about itself (:class:`FileMeta`): logger
  model, serial, OS, program, table, interval, time convention, plus
  format-specific header details in ``extra``;
* ``channels`` -- one :class:`ChannelInfo` per numeric column, in file order;
* ``frame`` -- a *wide* polars DataFrame: a ``timestamp`` column followed by
  one Float64 column per channel, named exactly as the channel.

The wide frame is the tidy table in compact form: :meth:`ParseResult.tidy`
unpivots it into DESIGN's (timestamp, channel, statistic, value) rows, and the
readings store streams the same unpivot channel by channel to Parquet.

Timestamps are the labels the file carries. Their dtype says how to read them:

* ``Datetime("us")`` (naive) -- logger clock labels; the station's
  ``utc_offset_hours`` (or ``meta.utc_offset_hours`` when the header states a
  zone and the station does not) turns them into UTC;
* ``Datetime("us", "UTC")`` -- the file states the zone on every timestamp
  (a trailing ``Z``, ``+00:00``): they are instants and no offset is applied.

Whether a label is the start or the end of its averaging period is
``meta.timestamp_is_end_of_period`` when the file says so, else the station's
setting. Converting to period starts in UTC is the parse stage's job
(:mod:`stationkit.timeconv`), not the parser's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Union

import polars as pl

#: What a reader accepts: a path, or a binary file-like (an archive member).
Source = Union[str, "os.PathLike[str]", IO[bytes]]

TIMESTAMP = "timestamp"

#: DESIGN's statistic vocabulary. Parsers map vendor spellings onto these.
STATISTICS = frozenset(
    {
        "avg",
        "sd",
        "min",
        "max",
        "gust",
        "sum",
        "count",
        "sample",
        "median",
        "range",
        "ti",
        "vector_avg",
    }
)


@dataclass(frozen=True)
class ChannelInfo:
    """One numeric column of a file.

    ``name`` is the column name exactly as the file has it; ``statistic`` is
    DESIGN's vocabulary (or None when the file does not say); ``unit`` as
    written; ``height_m`` when the format states it [m]. ``attrs`` keeps
    vendor metadata for the calibrate stage (NRG scale factor and offset,
    Kintech slope and offset, serial numbers, bearing, ...).
    """

    name: str
    statistic: str | None = None
    unit: str | None = None
    height_m: float | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    #: True when the file holds this channel only at some of the frame's
    #: timestamps (several tables of different intervals in one file): its
    #: nulls are "not in this table here", not logged missing values, and are
    #: not stored as readings
    sparse: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain data (what ``dataclasses.asdict`` gives, cheaper)."""
        return {
            "name": self.name,
            "statistic": self.statistic,
            "unit": self.unit,
            "height_m": self.height_m,
            "attrs": _plain(self.attrs),
            "sparse": self.sparse,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


@dataclass(frozen=True)
class FileMeta:
    """What a file states about itself. None means the file is silent."""

    format: str
    logger_model: str | None = None
    logger_serial: str | None = None
    logger_os: str | None = None
    program: str | None = None
    table: str | None = None
    station_name: str | None = None
    #: the logging interval the file states [s]
    interval_s: float | None = None
    #: the clock offset from UTC the header declares for naive labels [h]
    utc_offset_hours: float | None = None
    timestamp_is_end_of_period: bool | None = None
    #: text (non-numeric) columns that are not stored as readings
    skipped_channels: tuple[str, ...] = ()
    #: non-fatal problems, each naming the line where there is one
    warnings: tuple[str, ...] = ()
    #: format-specific header details (site properties, sensor history, ...)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParseResult:
    """A parsed file: metadata, channel descriptions and the wide frame."""

    meta: FileMeta
    channels: tuple[ChannelInfo, ...]
    frame: pl.DataFrame

    def __post_init__(self) -> None:
        names = [c.name for c in self.channels]
        expected = [TIMESTAMP, *names]
        if self.frame.columns != expected:
            raise ValueError(
                f"{self.meta.format}: frame columns {self.frame.columns[:5]}... "
                f"do not match channels {expected[:5]}..."
            )
        schema = self.frame.schema  # built once: a wide file has thousands of columns
        if not isinstance(schema[TIMESTAMP], pl.Datetime):
            raise ValueError(f"{self.meta.format}: timestamp column must be Datetime")
        for name in names:
            if schema[name] != pl.Float64:
                raise ValueError(f"{self.meta.format}: channel {name!r} must be Float64")

    @property
    def rows(self) -> int:
        return self.frame.height

    def tidy(self) -> pl.DataFrame:
        """The readings as tidy rows: timestamp, channel, statistic, value.

        Rows whose value is null are kept: a logged missing value is a fact
        (availability reports count it) -- except for sparse channels.
        """
        parts = [
            self.frame.select(
                pl.col(TIMESTAMP),
                pl.lit(c.name, dtype=pl.String).alias("channel"),
                pl.lit(c.statistic, dtype=pl.String).alias("statistic"),
                pl.col(c.name).alias("value"),
            ).filter(pl.col("value").is_not_null() if c.sparse else pl.lit(True))
            for c in self.channels
        ]
        if not parts:
            return pl.DataFrame(
                schema={
                    TIMESTAMP: self.frame.schema[TIMESTAMP],
                    "channel": pl.String,
                    "statistic": pl.String,
                    "value": pl.Float64,
                }
            )
        return pl.concat(parts)


def empty_frame(names: list[str], tz: str | None = None) -> pl.DataFrame:
    """A zero-row wide frame with the right schema."""
    schema: dict[str, pl.DataType] = {TIMESTAMP: pl.Datetime("us", tz)}
    schema.update({n: pl.Float64() for n in names})
    return pl.DataFrame(schema=schema)
