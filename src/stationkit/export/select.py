"""Reading lake/clean for an export or a report, in bounded memory.

Whatever the layout of ``lake/clean/station=<id>/`` (one Parquet per month,
as the calibrate stage writes it, or any other), every ``*.parquet`` below it
is read with polars' lazy scanner. Month files (``YYYY-MM.parquet``) carry a
summary in their footer (:mod:`stationkit.calibrate.writer`): a month inside
the selection is catalogued from it without reading its rows. Work is done one *window* at a time: calendar months
in the export's time zone, split into whole days when a month holds more
than :data:`CHUNK_ROWS` readings. Each window reads only the files whose
timestamp statistics overlap it (and polars skips row groups the same way),
so memory stays at one window's rows whatever the period exported, and
files sorted by time are read once.

Time: lake/clean holds period starts in UTC. Exports show them either in UTC
or in the logger's local time, ``utc_offset_hours`` ahead of UTC (a fixed
offset: loggers do not follow daylight saving). Frames handed to writers
carry naive wall-clock timestamps in the export's zone; :class:`Selection`
says which.

Flags: a value hit by an excluded flag becomes missing (null); the row stays
so that writers can still show the time step and the flags. NaN and +-inf
are never measurements: they are missing too.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from stationkit.atomic import TMP_PREFIX
from stationkit.calibrate.partition import month_of_name
from stationkit.calibrate.writer import SUMMARY_KEY
from stationkit.errors import StationkitError
from stationkit.export.labels import Column, make_columns

log = logging.getLogger(__name__)

#: every flag (in exclusion lists)
ALL_FLAGS = "*"
#: a window holds at most about this many readings (months are split by days)
CHUNK_ROWS = 4_000_000
#: above this, windows are read from a one-pass sort into temporary files
MAX_AMPLIFICATION = 2.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
#: column index of a reading in :attr:`Catalog.columns`
COL = "col"
TIMESTAMP = "timestamp"


class ExportError(StationkitError):
    """lake/clean cannot be exported as asked (missing, inconsistent, bad options)."""


def clean_dir(data_dir: Path, station: str) -> Path:
    """``data_dir/lake/clean/station=<id>/``."""
    return data_dir / "lake" / "clean" / f"station={station}"


def clean_files(
    data_dir: Path, station: str, start: datetime | None = None, end: datetime | None = None
) -> list[Path]:
    """The Parquet files of a station's lake/clean, in a stable order.

    With ``start`` / ``end`` (UTC instants, [start, end)), month files
    (``YYYY-MM.parquet``) outside that period are left out unopened.
    """
    folder = clean_dir(data_dir, station)
    if not folder.is_dir():
        return []
    return [
        p
        for p in sorted(folder.rglob("*.parquet"))
        if p.is_file() and not p.name.startswith(TMP_PREFIX) and _in_period(p, start, end)
    ]


def _in_period(path: Path, start: datetime | None, end: datetime | None) -> bool:
    month = month_of_name(path.name)
    if month is None:
        return True
    return (start is None or month.end > start) and (end is None or month.start < end)


@dataclass(frozen=True)
class Selection:
    """What to read: a period, points, excluded flags and the time zone.

    ``start`` / ``end`` are UTC instants, half-open [start, end); None is
    open. ``points`` empty means every point. ``exclude_flags`` names the
    flags whose values become missing; :data:`ALL_FLAGS` means every flag,
    empty means none. ``utc_offset_hours`` is the export's zone (0 for UTC).
    ``decimals``: ``"logger"`` rounds each column's values to the decimals its
    logger wrote (:class:`Catalog` ``decimals``), an integer to that many
    decimals, None keeps every value exact.
    """

    station: str
    start: datetime | None = None
    end: datetime | None = None
    points: tuple[str, ...] = ()
    exclude_flags: tuple[str, ...] = (ALL_FLAGS,)
    utc_offset_hours: float = 0.0
    #: round values: to the decimals the logger wrote (``"logger"``), to N
    #: decimals, or not at all (None)
    decimals: str | int | None = None

    @property
    def offset(self) -> timedelta:
        return timedelta(hours=self.utc_offset_hours)

    def zone_name(self) -> str:
        """``UTC`` or ``UTC+01:00``."""
        return "UTC" if self.utc_offset_hours == 0 else f"UTC{offset_text(self.utc_offset_hours)}"

    def excludes(self, flag: str) -> bool:
        return ALL_FLAGS in self.exclude_flags or flag in self.exclude_flags


def offset_text(hours: float) -> str:
    """ISO 8601 offset: ``+01:00``, ``-03:30``, ``+00:00``."""
    sign = "-" if hours < 0 else "+"
    minutes = round(abs(hours) * 60)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Catalog:
    """What a selection holds, from one pass over its columns' metadata.

    ``columns`` in export order (:func:`~stationkit.export.labels.make_columns`);
    ``flags`` every flag name that hits a selected reading; ``first`` /
    ``last`` the first and last period start [UTC]; ``step`` the averaging
    period (the station's setting, else the most common step in the data).
    """

    columns: tuple[Column, ...]
    flags: tuple[str, ...]
    first: datetime | None
    last: datetime | None
    rows: int
    step: timedelta
    #: per column, the decimals its logger wrote (from the month summaries);
    #: None where unknown (clean data not written by ``stationkit calibrate``)
    decimals: tuple[int | None, ...] = ()

    def rounding(self, sel: Selection) -> tuple[int | None, ...]:
        """Per column, the decimals ``sel`` rounds to (None: exact)."""
        if sel.decimals is None:
            return (None,) * len(self.columns)
        if isinstance(sel.decimals, int):
            return (sel.decimals,) * len(self.columns)
        return self.decimals or (None,) * len(self.columns)

    def frame(self) -> pl.DataFrame:
        """(point, statistic, col): how readings map onto column indexes."""
        return pl.DataFrame(
            {
                "point": [c.point for c in self.columns],
                "statistic": [c.statistic for c in self.columns],
                COL: list(range(len(self.columns))),
            },
            schema={"point": pl.String, "statistic": pl.String, COL: pl.UInt32},
        )


def _scan(files: Sequence[Path]) -> pl.LazyFrame:
    return pl.scan_parquet(list(files), hive_partitioning=False, extra_columns="ignore")


def _filters(sel: Selection) -> list[pl.Expr]:
    out: list[pl.Expr] = []
    if sel.start is not None:
        out.append(pl.col(TIMESTAMP) >= sel.start)
    if sel.end is not None:
        out.append(pl.col(TIMESTAMP) < sel.end)
    if sel.points:
        out.append(pl.col("point").is_in(list(sel.points)))
    return out


def _excluded(sel: Selection) -> pl.Expr:
    """True where a reading carries an excluded flag."""
    flags = pl.col("flags")
    if not sel.exclude_flags:
        return pl.lit(False)
    if ALL_FLAGS in sel.exclude_flags:
        return flags.list.len().fill_null(0) > 0
    names = pl.Series(list(sel.exclude_flags), dtype=pl.String)
    return flags.list.eval(pl.element().is_in(names.implode())).list.any().fill_null(False)


_NEEDED = frozenset(
    {"timestamp", "point", "measurement_type", "height_m", "statistic", "value", "flags"}
)


def _footer(path: Path) -> dict[str, Any] | None:
    """Check a clean file's columns; return its summary when it is a month file
    that has one (one read of the footer)."""
    md = pq.read_metadata(path)
    missing = _NEEDED - set(md.schema.to_arrow_schema().names)
    if missing:
        raise ExportError(
            f"{path}: not a lake/clean file (missing column(s) {', '.join(sorted(missing))}); "
            "rebuild it with `stationkit calibrate`"
        )
    if month_of_name(path.name) is None:
        return None
    text = (md.metadata or {}).get(SUMMARY_KEY)
    if text is None:
        return None
    found: dict[str, Any] = json.loads(text)
    return found


_KIND_SCHEMA: dict[str, pl.DataType] = {
    "point": pl.String(),
    "statistic": pl.String(),
    "measurement_type": pl.String(),
    "height_m": pl.Float64(),
    "n": pl.UInt32(),
    "first": pl.Datetime("us", "UTC"),
    "last": pl.Datetime("us", "UTC"),
}


def _decimals(doc: dict[str, Any], sel: Selection) -> dict[tuple[str, str | None], int]:
    """(point, statistic) -> the decimals the logger wrote, from a summary."""
    return {
        (c[0], c[1]): c[8]
        for c in doc["columns"]
        if len(c) > 8 and c[8] is not None and (not sel.points or c[0] in sel.points)
    }


def _summarised(path: Path, sel: Selection, doc: dict[str, Any] | None) -> list[list[Any]] | None:
    """What a month file's footer says it holds (its ``columns`` entries of the
    selected points), when the selection takes the whole month; else None
    (the rows must be read)."""
    month = month_of_name(path.name)
    if month is None or doc is None:
        return None
    if (sel.start is not None and sel.start > month.start) or (
        sel.end is not None and sel.end < month.end
    ):
        return None
    return [c for c in doc["columns"] if not sel.points or c[0] in sel.points]


def _summary_frame(entries: list[list[Any]]) -> pl.DataFrame:
    """Summary ``columns`` entries as rows of the per-kind catalogue."""
    return pl.DataFrame(
        {
            "point": [c[0] for c in entries],
            "statistic": [c[1] for c in entries],
            "measurement_type": [c[2] for c in entries],
            "height_m": [c[3] for c in entries],
            "n": [c[4] for c in entries],
            "first": [c[5] for c in entries],
            "last": [c[6] for c in entries],
        },
        schema={**_KIND_SCHEMA, "first": pl.String(), "last": pl.String()},
    ).with_columns(
        pl.col("first", "last")
        .str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.fZ")
        .dt.replace_time_zone("UTC")
    )


def read_catalog(
    files: Sequence[Path], sel: Selection, *, step: timedelta | None = None
) -> Catalog:
    """The columns, flags and time range of ``sel`` in ``files``.

    A (point, statistic) whose type or height changed over time takes the
    newest one. ``step`` overrides the inferred averaging period. Month files
    the selection takes whole are catalogued from their footer summaries.
    """
    if not files:
        return Catalog((), (), None, None, 0, step or timedelta(minutes=10))
    kinds: list[pl.DataFrame] = []
    flag_names: set[str] = set()
    scanned: list[Path] = []
    places: dict[tuple[str, str | None], int] = {}
    entries: list[list[Any]] = []
    for path in files:
        doc = _footer(path)
        if doc is not None:
            for key, d in _decimals(doc, sel).items():
                places[key] = max(places.get(key, 0), d)
        found = _summarised(path, sel, doc)
        if found is None:
            scanned.append(path)
        else:
            entries.extend(found)
            flag_names.update(f for c in found for f in c[7])
    if entries:
        kinds.append(_summary_frame(entries))
    if scanned:
        lf = _scan(scanned).filter(*_filters(sel)) if _filters(sel) else _scan(scanned)
        kinds.append(
            lf.group_by("point", "statistic", "measurement_type", "height_m")
            .agg(
                pl.len().cast(pl.UInt32).alias("n"),
                pl.col(TIMESTAMP).min().alias("first"),
                pl.col(TIMESTAMP).max().alias("last"),
            )
            .collect()
            .cast(_KIND_SCHEMA)  # type: ignore[arg-type]
        )
        flag_names.update(
            lf.select(pl.col("flags").explode().drop_nulls().unique())
            .collect()
            .get_column("flags")
            .to_list()
        )
    per_kind = pl.concat(kinds).filter(pl.col("n") > 0)
    # a (point, statistic) whose type or height changed: the newest wins
    per_column = (
        per_kind.sort("last", "measurement_type", "height_m", nulls_last=False)
        .group_by("point", "statistic", maintain_order=True)
        .agg(
            pl.col("measurement_type").last(),
            pl.col("height_m").last(),
            pl.col("n").cast(pl.Int64).sum(),
            pl.col("first").min(),
            pl.col("last").max(),
        )
    )
    keys = [
        (r["point"], r["statistic"], r["measurement_type"], r["height_m"])
        for r in per_column.iter_rows(named=True)
    ]
    columns = tuple(make_columns(keys))
    first = per_column.get_column("first").min() if per_column.height else None
    last = per_column.get_column("last").max() if per_column.height else None
    assert first is None or isinstance(first, datetime)
    assert last is None or isinstance(last, datetime)
    if step is None:
        early = [p for p in files if _may_hold(p, first)]
        lf = _scan(early).filter(*_filters(sel)) if _filters(sel) else _scan(early)
        step = _infer_step(lf, first)
    return Catalog(
        columns=columns,
        flags=tuple(sorted(flag_names)),
        first=first,
        last=last,
        rows=int(per_column.get_column("n").sum()) if per_column.height else 0,
        step=step,
        decimals=tuple(places.get((c.point, c.statistic)) for c in columns),
    )


def _may_hold(path: Path, first: datetime | None) -> bool:
    """Whether ``path`` may hold rows of the 30 days from ``first`` (step inference)."""
    month = month_of_name(path.name)
    if month is None or first is None:
        return True
    return month.start < first + timedelta(days=30) and month.end > first


def _infer_step(lf: pl.LazyFrame, first: datetime | None) -> timedelta:
    """The most common step between the distinct timestamps of the first 30 days."""
    default = timedelta(minutes=10)
    if first is None:
        return default
    diffs = (
        lf.filter(pl.col(TIMESTAMP) < first + timedelta(days=30))
        .select(pl.col(TIMESTAMP).unique().sort().diff().drop_nulls())
        .collect()
        .get_column(TIMESTAMP)
    )
    diffs = diffs.filter(diffs > timedelta(0))
    if diffs.len() == 0:
        return default
    counts = diffs.value_counts(sort=True)
    # most common; ties go to the shorter step
    top = counts.filter(pl.col("count") == counts.get_column("count").max())
    value = top.get_column(TIMESTAMP).min()
    assert isinstance(value, timedelta)
    return value


# ---------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """A stretch of time read at once: [start, end) in UTC."""

    start: datetime
    end: datetime


def _month_start(t: datetime) -> datetime:
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(t: datetime) -> datetime:
    return t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)


def period(sel: Selection, catalog: Catalog) -> tuple[datetime, datetime] | None:
    """[start, end) in UTC: the selection's start (else the first reading) to
    its end (else the end of the last time step)."""
    if catalog.first is None or catalog.last is None:
        return None
    lo = catalog.first if sel.start is None else sel.start
    hi = catalog.last + catalog.step if sel.end is None else sel.end
    return lo, max(hi, lo + _US)


def months(sel: Selection, catalog: Catalog) -> list[tuple[str, datetime, datetime]]:
    """The calendar months (export time zone) of the period: ``YYYY-MM`` and
    the part of the month inside the period, as naive wall-clock times."""
    bounds = period(sel, catalog)
    if bounds is None:
        return []
    lo, hi = (t.replace(tzinfo=None) + sel.offset for t in bounds)
    out = []
    m = _month_start(lo)
    while m < hi:
        following = _next_month(m)
        out.append((f"{m:%Y-%m}", max(m, lo), min(following, hi)))
        m = following
    return out


def calendar_windows(sel: Selection, catalog: Catalog) -> list[Window]:
    """Calendar months (export time zone) of the period, split on local
    midnights when a month holds more than about CHUNK_ROWS readings."""
    bounds = period(sel, catalog)
    if bounds is None:
        return []
    assert catalog.first is not None and catalog.last is not None
    span = max((catalog.last - catalog.first).total_seconds(), catalog.step.total_seconds())
    density = catalog.rows / span  # readings per second, on average
    out: list[Window] = []
    for _label, local_lo, local_hi in months(sel, catalog):
        m_lo = (local_lo - sel.offset).replace(tzinfo=UTC)
        m_hi = (local_hi - sel.offset).replace(tzinfo=UTC)
        parts = max(1, math.ceil(density * (m_hi - m_lo).total_seconds() / CHUNK_ROWS))
        days = max(1, math.ceil((m_hi - m_lo).total_seconds() / 86400 / parts))
        cut = m_lo
        while cut < m_hi:
            midnight = (cut + sel.offset).replace(hour=0, minute=0, second=0, microsecond=0)
            nxt = min(midnight + timedelta(days=days) - sel.offset, m_hi)
            out.append(Window(cut, nxt))
            cut = nxt
    return out


# ---------------------------------------------------------------- chunks


@dataclass(frozen=True)
class _Span:
    """One row group of one file and its timestamp range (None: unknown)."""

    path: Path
    row_group: int
    rows: int
    lo: datetime | None
    hi: datetime | None

    def overlaps(self, w: Window) -> bool:
        return self.lo is None or self.hi is None or (self.lo < w.end and self.hi >= w.start)


def _spans(files: Sequence[Path]) -> list[_Span]:
    """Every row group's timestamp range, from the Parquet statistics."""
    out = []
    for path in files:
        md = pq.read_metadata(path)
        idx = md.schema.names.index(TIMESTAMP)
        for rg in range(md.num_row_groups):
            group = md.row_group(rg)
            st = group.column(idx).statistics
            if st is None or not st.has_min_max or not isinstance(st.min, datetime):
                out.append(_Span(path, rg, group.num_rows, None, None))
            else:
                out.append(_Span(path, rg, group.num_rows, _aware(st.min), _aware(st.max)))
    return out


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def read_amplification(spans: Sequence[_Span], wins: Sequence[Window]) -> float:
    """How many times the rows would be read if each window read every row
    group it overlaps (1.0: each row once)."""
    total = sum(s.rows for s in spans)
    if total == 0:
        return 1.0
    read = sum(s.rows for w in wins for s in spans if s.overlaps(w))
    return read / total


def row_group_windows(spans: Sequence[_Span], lo: datetime, hi: datetime) -> list[Window] | None:
    """Windows that follow the row groups: consecutive row groups (by first
    timestamp) up to about CHUNK_ROWS readings each. None when a row group
    has no statistics. Meant for files whose row groups each cover a few
    months of every column, as the calibrate stage writes them."""
    inside = [s for s in spans if s.lo is None or s.hi is None or (s.lo < hi and s.hi >= lo)]
    if any(s.lo is None for s in inside):
        return None
    ordered = sorted(inside, key=lambda s: (s.lo, s.hi))
    cuts: list[datetime] = []
    rows = 0
    for s in ordered:
        assert s.lo is not None
        if rows and rows + s.rows > CHUNK_ROWS and lo < s.lo < hi and (not cuts or s.lo > cuts[-1]):
            cuts.append(s.lo)
            rows = 0
        rows += s.rows
    edges = [lo, *cuts, hi]
    return [Window(a, b) for a, b in itertools.pairwise(edges) if a < b]


def plan_windows(
    sel: Selection, catalog: Catalog, spans: Sequence[_Span]
) -> tuple[list[Window], bool]:
    """The windows to read, and whether to read them through the one-pass sort.

    Calendar windows when the files allow reading them without reading the
    data more than MAX_AMPLIFICATION times; else windows that follow the row
    groups when those do; else calendar windows through the sort.
    """
    calendar = calendar_windows(sel, catalog)
    if read_amplification(spans, calendar) <= MAX_AMPLIFICATION:
        return calendar, False
    bounds = period(sel, catalog)
    assert bounds is not None
    following = row_group_windows(spans, *bounds)
    if following and read_amplification(spans, following) <= MAX_AMPLIFICATION:
        return following, False
    return calendar, True


_NO_STAT = "\x00"  # stands for a null statistic in the column lookup


@dataclass(frozen=True)
class _Plan:
    """How raw clean rows become chunk rows (shared by both reading modes)."""

    sel: Selection
    points: list[str]
    stats: list[str]
    lut: np.ndarray
    with_flags: bool
    #: per column, 10 ** decimals to round to; 0 where values stay exact
    scale: np.ndarray | None = None

    @classmethod
    def make(cls, sel: Selection, catalog: Catalog, with_flags: bool) -> _Plan:
        points = sorted({c.point for c in catalog.columns})
        stats = sorted({_NO_STAT if c.statistic is None else c.statistic for c in catalog.columns})
        lut = np.full(len(points) * len(stats), -1, dtype=np.int64)
        for i, c in enumerate(catalog.columns):
            stat = _NO_STAT if c.statistic is None else c.statistic
            lut[points.index(c.point) * len(stats) + stats.index(stat)] = i
        rounding = catalog.rounding(sel)
        scale = (
            np.array([0.0 if d is None else 10.0**d for d in rounding], dtype=np.float64)
            if any(d is not None for d in rounding)
            else None
        )
        return cls(sel, points, stats, lut, with_flags, scale)

    @property
    def columns(self) -> list[str]:
        base = [TIMESTAMP, "point", "statistic", "value"]
        return [*base, "flags"] if self.with_flags or self.sel.exclude_flags else base

    def filters(self, w: Window | None) -> list[pl.Expr]:
        out = [pl.col(TIMESTAMP) >= w.start, pl.col(TIMESTAMP) < w.end] if w else []
        if self.sel.points:
            out.append(pl.col("point").is_in(list(self.sel.points)))
        return out

    def select(self) -> list[pl.Expr]:
        value = pl.col("value")
        missing = (_excluded(self.sel) | value.is_nan() | value.is_infinite()).fill_null(False)
        out = [
            (pl.col(TIMESTAMP).dt.replace_time_zone(None) + self.sel.offset).alias(TIMESTAMP),
            pl.col("point").cast(pl.Enum(self.points)).to_physical().cast(pl.Int64).alias("p"),
            pl.col("statistic")
            .fill_null(_NO_STAT)
            .cast(pl.Enum(self.stats))
            .to_physical()
            .cast(pl.Int64)
            .alias("s"),
            pl.when(missing).then(None).otherwise(value).alias("value"),
        ]
        if self.with_flags:
            out.append(pl.col("flags").cast(pl.List(pl.String)))
        return out

    def schema(self) -> dict[str, pl.DataType]:
        schema: dict[str, pl.DataType] = {
            TIMESTAMP: pl.Datetime("us"),
            COL: pl.UInt32(),
            "value": pl.Float64(),
        }
        if self.with_flags:
            schema["flags"] = pl.List(pl.String)
        return schema

    def finish(self, raw: pl.DataFrame) -> pl.DataFrame:
        """(timestamp, p, s, value[, flags]) -> (timestamp, col, value[, flags])."""
        key = raw.get_column("p").to_numpy() * len(self.stats) + raw.get_column("s").to_numpy()
        col = self.lut[key]
        if raw.height and int(col.min()) < 0:  # not in the catalog: changed since it was read
            raise ExportError(
                f"{self.sel.station}: lake/clean changed while it was being read; try again"
            )
        value: pl.Expr | pl.Series = pl.col("value")
        if self.scale is not None and raw.height:
            value = _rounded(raw.get_column("value"), self.scale[col])
        return raw.select(
            pl.col(TIMESTAMP).cast(pl.Datetime("us")),
            pl.Series(COL, col, dtype=pl.UInt32),
            value,
            *([pl.col("flags")] if self.with_flags else []),
        )


def _rounded(values: pl.Series, scale: np.ndarray) -> pl.Series:
    """``values`` rounded (half to even) to ``log10(scale)`` decimals each; exact
    where ``scale`` is 0; never -0. Dividing the rounded integer by the power of ten gives
    the double nearest the decimal, so it prints as the short decimal."""
    v = values.to_numpy()  # null -> NaN
    # + 0.0: a value rounded to zero from below is 0, not -0
    out = np.where(scale > 0, np.round(v * scale) / np.where(scale > 0, scale, 1.0) + 0.0, v)
    return pl.Series("value", out, dtype=pl.Float64).fill_nan(None)


def iter_chunks(
    files: Sequence[Path],
    sel: Selection,
    catalog: Catalog,
    *,
    with_flags: bool = False,
    scratch: Path | None = None,
    windows: Sequence[Window] | None = None,
) -> Iterator[tuple[Window, pl.DataFrame]]:
    """Each window's readings, in no particular order (see :func:`sort_chunk`).

    Columns: ``timestamp`` (naive, export time zone), ``col`` (UInt32 index
    into ``catalog.columns``), ``value`` (Float64, null when missing or
    excluded by a flag) and, with ``with_flags``, ``flags`` (every flag, not
    only the excluded ones). Windows without readings give empty frames.

    Windows (:func:`plan_windows`) are calendar months, or follow the row
    groups, whichever reads the data at most :data:`MAX_AMPLIFICATION` times.
    When neither does (row groups that each span the whole period, as from
    one big file sorted by channel), the rows are first sorted into one
    temporary Arrow file per window below ``scratch`` (default: the system's
    temporary folder), in one pass, row group by row group. Memory stays at
    about one row group plus one window either way.

    ``windows`` (in time order, not overlapping) replaces the planned ones.
    """
    plan = _Plan.make(sel, catalog, with_flags)
    spans = _spans(files)
    if windows is None:
        wins, bucketed = plan_windows(sel, catalog, spans)
    else:
        wins = list(windows)
        bucketed = read_amplification(spans, wins) > MAX_AMPLIFICATION
    if bucketed:
        yield from _bucketed(plan, spans, wins, scratch)
        return
    for w in wins:
        chosen = list(dict.fromkeys(s.path for s in spans if s.overlaps(w)))
        if not chosen:
            yield w, pl.DataFrame(schema=plan.schema())
            continue
        raw = _scan(chosen).filter(*plan.filters(w)).select(plan.select()).collect()
        yield w, plan.finish(raw)


def _bucketed(
    plan: _Plan, spans: Sequence[_Span], wins: Sequence[Window], scratch: Path | None
) -> Iterator[tuple[Window, pl.DataFrame]]:
    """One pass over the row groups into one Arrow IPC file per window, then
    the windows one by one."""
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    bounds = np.array(
        [int((w.start - _EPOCH) / _US) for w in wins] + [int((wins[-1].end - _EPOCH) / _US)]
        if wins
        else [],
        dtype=np.int64,
    )
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=scratch) as tmp:
        writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        try:
            for span in spans:
                table = pq.ParquetFile(span.path).read_row_group(
                    span.row_group, columns=plan.columns
                )
                frame = pl.DataFrame(pl.from_arrow(table))
                utc_us = frame.get_column(TIMESTAMP).dt.replace_time_zone(None).to_physical()
                where = np.searchsorted(bounds, utc_us.to_numpy(), side="right") - 1
                keep = (where >= 0) & (where < len(wins))
                frame = frame.with_columns(pl.Series("_w", where, dtype=pl.Int64)).filter(
                    pl.Series(keep)
                )
                if plan.sel.points:
                    frame = frame.filter(*plan.filters(None))
                if frame.height == 0:
                    continue
                part = frame.select(*plan.select(), pl.col("_w"))
                for (index,), rows in part.partition_by("_w", as_dict=True).items():
                    done = plan.finish(rows.drop("_w")).to_arrow()
                    i = int(index)  # type: ignore[call-overload]
                    if i not in writers:
                        writers[i] = pa.ipc.new_stream(Path(tmp) / f"{i:06d}.arrow", done.schema)
                    writers[i].write_table(done)
        finally:
            for writer in writers.values():
                writer.close()
        for i, w in enumerate(wins):
            path = Path(tmp) / f"{i:06d}.arrow"
            if i not in writers:
                yield w, pl.DataFrame(schema=plan.schema())
                continue
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_stream(source).read_all()
            yield w, pl.DataFrame(pl.from_arrow(table)).cast(plan.schema())  # type: ignore[arg-type,unused-ignore]
            path.unlink()


def sort_chunk(chunk: pl.DataFrame) -> pl.DataFrame:
    """The chunk in time, then column order (a no-op when it already is)."""
    if chunk.height < 2:
        return chunk
    ts = chunk.get_column(TIMESTAMP).to_physical().to_numpy()
    col = chunk.get_column(COL).to_numpy().astype(np.int64)
    if bool(np.all((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (col[1:] > col[:-1])))):
        return chunk
    return chunk.sort(TIMESTAMP, COL)


def to_wide(frame: pl.DataFrame, columns: Sequence[Column], station: str) -> pl.DataFrame:
    """One row per timestamp (sorted), one Float64 column per catalog column (by label).

    A cell without a reading is null. Raises ExportError when lake/clean
    holds two values for one (point, statistic, timestamp).
    """
    n = len(columns)
    if frame.height == 0:
        return pl.DataFrame(
            schema={TIMESTAMP: pl.Datetime("us"), **{c.label: pl.Float64 for c in columns}}
        )
    stamps = frame.get_column(TIMESTAMP)
    ts = stamps.to_physical().to_numpy()
    times = np.sort(stamps.unique().to_physical().to_numpy())
    row = np.searchsorted(times, ts)
    col = frame.get_column(COL).to_numpy().astype(np.int64)
    cell = col * len(times) + row
    seen = np.zeros(n * len(times), dtype=np.bool_)
    seen[cell] = True
    if int(seen.sum()) != frame.height:
        _duplicate(frame, columns, station)
    # nulls become NaN here and NaN becomes null below: NaN is never a value
    grid = np.full(n * len(times), np.nan)
    grid[cell] = frame.get_column("value").to_numpy()
    table = grid.reshape(n, len(times))
    wide = pl.DataFrame(
        [pl.Series(TIMESTAMP, times).cast(pl.Datetime("us"))]
        + [pl.Series(c.label, table[i], dtype=pl.Float64) for i, c in enumerate(columns)]
    )
    return wide.with_columns(pl.exclude(TIMESTAMP).fill_nan(None))


def _duplicate(frame: pl.DataFrame, columns: Sequence[Column], station: str) -> None:
    dup = frame.filter(pl.struct(TIMESTAMP, COL).is_duplicated()).row(0, named=True)
    column = columns[dup[COL]]
    raise ExportError(
        f"{station}: lake/clean has more than one value for point {column.point!r}, "
        f"statistic {column.statistic!r} at {dup[TIMESTAMP]}; it must hold one row per "
        "(point, statistic, timestamp): rebuild it with `stationkit calibrate`"
    )
