"""Windographer text files, as Windographer 4 writes them, and its flagging log.

A data file (CRLF line ends, tab-separated, ASCII labels)::

    Created 2024-02-01 00:00 by stationkit 0.1.0 (Windographer 4 text format)
    <blank>
    Latitude = N 53.210000
    Longitude = W 7.120000
    Elevation = 120 m
    Calm threshold = 0 m/s
    <blank>
    Included flags: <Unflagged data>, tower_shadow
    Excluded flags: icing
    <blank>
    Time stamps indicate the beginning of the time step.
    <blank>
    Date/Time<TAB>WS 80m N Mean<TAB>WS 80m N SD<TAB>...<TAB>WD 78m Mean
    2024-01-01 00:00:00<TAB>8.37<TAB>1.24<TAB>...<TAB>114.2

* ``Created``: the end of the newest time step in the file (export time
  zone), not the wall clock, so that identical input gives identical bytes.
* Latitude / Longitude [deg] with hemisphere letters and six decimals,
  Elevation [m]; a line is left out when the station does not state it.
* Time stamps are period starts, ``YYYY-MM-DD HH:MM:SS``, in the export's
  time zone (the logger's local time by default, or UTC).
* Columns: :mod:`stationkit.export.labels`. One row per time step that has
  any reading; a missing or excluded value is an empty field (or the
  configured missing marker).
* Numbers: the shortest decimal that reads back as exactly the same float64
  (``8.37``, ``0.30000000000000004``, ``1019.9999``), never in exponent
  notation (``0.0000001``), integers without ``.0`` (``100``), ``-0`` for
  negative zero.

The flagging log (Windographer's "Export flagging log"), tab-separated, CRLF::

    Data Column<TAB>Flag Name<TAB>Start Time<TAB>End Time<TAB>Time Steps
    WS 80m N Mean<TAB>icing<TAB>2024-01-09 06:20<TAB>2024-01-09 10:30<TAB>25

One line per flag and column per run of consecutive flagged time steps; End
Time is the first time step after the run (half-open), Time Steps its length.
Every flag is logged, excluded or not.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO

import polars as pl

from stationkit.export.labels import Column, format_number
from stationkit.export.select import COL, TIMESTAMP

log = logging.getLogger(__name__)

NEWLINE = "\r\n"
SEPARATOR = "\t"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CREATED_FORMAT = "%Y-%m-%d %H:%M"
FLAG_LOG_TIME_FORMAT = "%Y-%m-%d %H:%M"
UNFLAGGED = "<Unflagged data>"
NO_FLAGS = "<None>"
CALM_THRESHOLD = "0 m/s"
TIME_STEP_LINE = "Time stamps indicate the beginning of the time step."
#: named on the first line: readers (brightwind's loader) look for "Windographer"
FORMAT_NAME = "Windographer 4 text format"
FLAG_LOG_HEADER = ("Data Column", "Flag Name", "Start Time", "End Time", "Time Steps")


@dataclass(frozen=True)
class Preamble:
    """What the lines above the data say."""

    created: datetime
    version: str
    latitude: float | None = None
    longitude: float | None = None
    elevation_m: float | None = None
    included_flags: tuple[str, ...] = ()
    excluded_flags: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        out = [
            f"Created {self.created:{CREATED_FORMAT}} by stationkit {self.version} ({FORMAT_NAME})",
            "",
        ]
        if self.latitude is not None:
            hemisphere = "S" if self.latitude < 0 else "N"
            out.append(f"Latitude = {hemisphere} {abs(self.latitude):.6f}")
        if self.longitude is not None:
            hemisphere = "W" if self.longitude < 0 else "E"
            out.append(f"Longitude = {hemisphere} {abs(self.longitude):.6f}")
        if self.elevation_m is not None:
            out.append(f"Elevation = {format_number(self.elevation_m)} m")
        out.append(f"Calm threshold = {CALM_THRESHOLD}")
        out.append("")
        out.append("Included flags: " + ", ".join((UNFLAGGED, *self.included_flags)))
        out.append("Excluded flags: " + (", ".join(self.excluded_flags) or NO_FLAGS))
        out.append("")
        out.append(TIME_STEP_LINE)
        out.append("")
        return out


def header_bytes(preamble: Preamble, columns: Sequence[Column]) -> bytes:
    """The preamble and the ``Date/Time`` line, CRLF-terminated."""
    lines = [*preamble.lines(), SEPARATOR.join(["Date/Time", *(c.label for c in columns)])]
    return (NEWLINE.join(lines) + NEWLINE).encode("utf-8")


class WindographerWriter:
    """Streams one Windographer data file: the header at once, then wide chunks.

    ``columns`` may be a subset of the export's columns (one file per
    measurement type); :meth:`write` picks them from each wide frame.
    """

    def __init__(
        self,
        fh: IO[bytes],
        columns: Sequence[Column],
        preamble: Preamble,
        *,
        missing_marker: str = "",
    ) -> None:
        self.fh = fh
        self.labels = [c.label for c in columns]
        self.missing_marker = missing_marker
        self.rows = 0
        fh.write(header_bytes(preamble, columns))

    def write(self, wide: pl.DataFrame) -> None:
        """Append the rows of one wide frame (``timestamp`` + one column per label)."""
        if wide.height == 0:
            return
        self.fh.write(render_rows(wide, self.labels, self.missing_marker))
        self.rows += wide.height


def render_rows(wide: pl.DataFrame, labels: Sequence[str], missing_marker: str = "") -> bytes:
    """The data lines of a wide frame (``timestamp`` + the ``labels`` columns)."""
    if wide.height == 0:
        return b""
    buf = io.BytesIO()
    wide.select(TIMESTAMP, *labels).write_csv(
        buf,
        include_header=False,
        separator=SEPARATOR,
        line_terminator=NEWLINE,
        datetime_format=TIME_FORMAT,
        float_scientific=False,
        float_precision=None,
        null_value=missing_marker,
        quote_style="never",
    )
    return buf.getvalue()


# ---------------------------------------------------------------- flagging log

_RUNS_SCHEMA: dict[str, pl.DataType] = {
    COL: pl.UInt32(),
    "flag": pl.String(),
    "start": pl.Datetime("us"),
    "last": pl.Datetime("us"),
    "steps": pl.Int64(),
}


def _merge_runs(runs: pl.LazyFrame, step: timedelta) -> pl.LazyFrame:
    """Join runs of a (column, flag) that follow each other at ``step``."""
    return (
        runs.sort(COL, "flag", "start")
        .with_columns(
            (pl.col("start") != (pl.col("last").shift(1) + step).over(COL, "flag"))
            .fill_null(True)
            .cum_sum()
            .alias("run")
        )
        .group_by(COL, "flag", "run")
        .agg(
            pl.col("start").min(),
            pl.col("last").max(),
            pl.col("steps").sum(),
        )
        .select(list(_RUNS_SCHEMA))
    )


def merge_run_tables(tables: Sequence[pl.DataFrame], step: timedelta) -> pl.DataFrame:
    """Runs gathered separately (a month each) as the runs of the whole, joining
    runs of a (column, flag) that continue across the pieces."""
    if not tables:
        return pl.DataFrame(schema=_RUNS_SCHEMA)
    return _merge_runs(pl.concat([t.lazy() for t in tables]), step).collect()


@dataclass
class FlagLog:
    """Runs of consecutive flagged time steps per (column, flag), built chunk by chunk.

    Memory is one row per run, not per reading. Feed :meth:`add` with the
    chunks of :func:`~stationkit.export.select.iter_chunks` (``with_flags``)
    in time order.
    """

    columns: Sequence[Column]
    step: timedelta
    _open: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_RUNS_SCHEMA))
    _closed: list[pl.DataFrame] = field(default_factory=list)

    def add(self, chunk: pl.DataFrame) -> None:
        """Take the flagged readings of one chunk (timestamp, col, flags)."""
        hits = (
            chunk.lazy()
            .filter(pl.col("flags").list.len() > 0)
            .select(TIMESTAMP, COL, pl.col("flags").alias("flag"))
            .explode("flag")
            .select(
                pl.col(COL),
                pl.col("flag"),
                pl.col(TIMESTAMP).alias("start"),
                pl.col(TIMESTAMP).alias("last"),
                pl.lit(1, pl.Int64).alias("steps"),
            )
            .unique()
        )
        runs = _merge_runs(pl.concat([self._open.lazy(), hits]), self.step).collect()
        is_open = pl.col("start") == pl.col("start").max().over(COL, "flag")
        closed = runs.filter(~is_open)
        if closed.height:
            self._closed.append(closed)
        self._open = runs.filter(is_open)

    def runs(self) -> pl.DataFrame:
        """Every run: col, flag, start, last (the last flagged step), steps;
        by start, flag, column."""
        return pl.concat([*self._closed, self._open]).sort("start", "flag", COL, "last")

    def set_runs(self, runs: pl.DataFrame) -> None:
        """Take runs gathered elsewhere (see :func:`merge_run_tables`) as this log's."""
        self._closed = [runs.select(list(_RUNS_SCHEMA))]
        self._open = pl.DataFrame(schema=_RUNS_SCHEMA)

    def write(self, fh: IO[bytes]) -> int:
        """Write the log in Windographer's format; returns the number of runs."""
        runs = self.runs()
        labels = [c.label for c in self.columns]
        table = runs.select(
            pl.col(COL)
            .replace_strict(list(range(len(labels))), labels, return_dtype=pl.String)
            .alias(FLAG_LOG_HEADER[0]),
            pl.col("flag")
            .map_batches(_clean_series, return_dtype=pl.String)
            .alias(FLAG_LOG_HEADER[1]),
            pl.col("start").dt.strftime(FLAG_LOG_TIME_FORMAT).alias(FLAG_LOG_HEADER[2]),
            (pl.col("last") + self.step)
            .dt.strftime(FLAG_LOG_TIME_FORMAT)
            .alias(FLAG_LOG_HEADER[3]),
            pl.col("steps").alias(FLAG_LOG_HEADER[4]),
        )
        table.write_csv(
            fh,
            include_header=True,
            separator=SEPARATOR,
            line_terminator=NEWLINE,
            quote_style="never",
        )
        return runs.height


def _clean_series(s: pl.Series) -> pl.Series:
    return s.str.replace_all(r"[\x00-\x1f\x7f]+", " ")
