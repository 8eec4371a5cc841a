"""Reading a recent stretch of lake/clean without touching the rest.

lake/clean holds one Parquet file per UTC month (or any other split); a
status check or a 30-day plot needs only the newest days. The files' row
group statistics say which files reach into a window, so only those are
scanned (and polars skips their row groups outside it the same way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class FileSpan:
    """A clean file and its first and last timestamp [UTC] (None: unknown)."""

    path: Path
    first: datetime | None
    last: datetime | None

    def reaches(self, start: datetime | None, end: datetime | None) -> bool:
        """Whether the file may hold a timestamp in [start, end)."""
        if self.first is None or self.last is None:
            return True
        return (start is None or self.last >= start) and (end is None or self.first < end)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def file_spans(files: Sequence[Path]) -> list[FileSpan]:
    """Each file's time range, from its row-group statistics (footers only)."""
    out = []
    for path in files:
        md = pq.read_metadata(path)
        idx = md.schema.names.index(TIMESTAMP)
        lows: list[datetime] = []
        highs: list[datetime] = []
        for rg in range(md.num_row_groups):
            st = md.row_group(rg).column(idx).statistics
            if st is None or not st.has_min_max or not isinstance(st.min, datetime):
                lows = highs = []
                break
            lows.append(_aware(st.min))
            highs.append(_aware(st.max))
        out.append(FileSpan(path, min(lows), max(highs)) if lows else FileSpan(path, None, None))
    return out


def last_timestamp(spans: Sequence[FileSpan]) -> datetime | None:
    """The newest timestamp of the files [UTC]."""
    if not spans:
        return None
    if all(s.last is not None for s in spans):
        return max(s.last for s in spans if s.last is not None)
    value = (
        pl.scan_parquet([s.path for s in spans], hive_partitioning=False, extra_columns="ignore")
        .select(pl.col(TIMESTAMP).max())
        .collect()
        .item()
    )
    return None if value is None else _aware(value)


def scan_window(
    spans: Sequence[FileSpan], start: datetime | None, end: datetime | None
) -> pl.LazyFrame | None:
    """The rows with a timestamp in [start, end) of the files that reach into
    it; None when no file does."""
    needed = [s.path for s in spans if s.reaches(start, end)]
    if not needed:
        return None
    lf = pl.scan_parquet(needed, hive_partitioning=False, extra_columns="ignore")
    if start is not None:
        lf = lf.filter(pl.col(TIMESTAMP) >= start)
    if end is not None:
        lf = lf.filter(pl.col(TIMESTAMP) < end)
    return lf
