"""Which timestamps a reading may plausibly carry (the parse stage's one rule).

A logger clock that was never set (1900, 2000-01-01 after a battery loss),
a corrupt record (year 2200) or garbage appended to a binary file gives
timestamps no measurement can have. The parse stage keeps only rows whose
period start (UTC) lies in the file's window:

* never before FLOOR (1980-01-01 UTC: older than any logger format read
  here), and never before the station's ``valid_from`` when set;
* before the station's ``valid_to`` when set (half-open, like every period
  in stations.toml);
* before the file's source modification time plus MTIME_MARGIN, when the
  source stated a modification time: a logger cannot have measured a period
  after it last wrote the file. The margin covers a logger clock or an
  ``utc_offset_hours`` that is off by hours, and zip times stored in local
  time. For an archive member, the archive's modification time counts.

The window depends only on what the ledger keeps with each file (the source
mtime, which ``stationkit rebuild`` carries over) and on stations.toml --
never on the wall clock -- so a rebuild gives the same rows at any later date.
Rows outside are dropped with one warning (how many, the first one); a file
with no row inside is refused with that reason (and quarantined).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from stationkit.config import EARLIEST_READING, StationConfig
from stationkit.parsers.base import TIMESTAMP

FLOOR = EARLIEST_READING
MTIME_MARGIN = timedelta(days=2)


@dataclass(frozen=True)
class Window:
    """Half-open [start, end) of plausible period starts (UTC); end None is open."""

    start: datetime
    end: datetime | None
    #: where each bound comes from, for messages
    start_from: str
    end_from: str | None

    def describe(self) -> str:
        low = f"{_show(self.start)} ({self.start_from})"
        if self.end is None:
            return f"from {low}"
        return f"from {low} to {_show(self.end)} ({self.end_from})"


def _show(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def window(station: StationConfig, source_mtime: float | None) -> Window:
    """The plausible period starts for one file of ``station``.

    ``source_mtime`` is the file's modification time at its source [s since
    the Unix epoch] as the ledger keeps it; None (or a time before FLOOR, as
    some servers report 0) when unknown.
    """
    start, start_from = FLOOR, "no logger data before 1980"
    if station.valid_from is not None and station.valid_from > start:
        start, start_from = station.valid_from, f"stations.{station.id}.valid_from"
    end: datetime | None = None
    end_from: str | None = None
    if source_mtime is not None:
        mtime = datetime.fromtimestamp(source_mtime, UTC)
        if mtime > FLOOR:
            end = mtime + MTIME_MARGIN
            end_from = f"the file's source modification time {_show(mtime)} + 2 days"
    if station.valid_to is not None and (end is None or station.valid_to < end):
        end, end_from = station.valid_to, f"stations.{station.id}.valid_to"
    return Window(start, end, start_from, end_from)


def keep_plausible(frame: pl.DataFrame, bounds: Window) -> tuple[pl.DataFrame, str | None]:
    """(the rows inside ``bounds``, a warning when some were dropped).

    ``frame`` has UTC period starts in its timestamp column.
    """
    if frame.height == 0:
        return frame, None
    stamps = pl.col(TIMESTAMP)
    inside = stamps >= bounds.start
    if bounds.end is not None:
        inside = inside & (stamps < bounds.end)
    mask = frame.select(inside.alias("inside")).to_series()
    dropped = frame.height - int(mask.sum())
    if dropped == 0:
        return frame, None
    first = frame.get_column(TIMESTAMP).filter(~mask)[0]
    warning = (
        f"{dropped} row(s) with timestamps outside the plausible period "
        f"{bounds.describe()} dropped; the first: {_show(first)}"
    )
    return frame.filter(mask), warning
