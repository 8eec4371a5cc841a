"""Months: the unit lake/clean is stored, rebuilt and read in.

    lake/clean/station=<id>/2024-01.parquet      rows whose period start is in January 2024 (UTC)

A partition holds the clean rows of one calendar month of UTC period starts.
A build recomputes only the months whose inputs changed. A month's rows
depend on:

* the readings files whose time span reaches into the month **or its
  context**: the :func:`qc_margin` before and after it, which the QC window
  rules (flat line, spike, icing) look across. Those rules only link records
  less than ``max_gap`` apart, so a month's flags never depend on data more
  than the margin away; and every file overlapping a period takes part in the
  deduplication of its keys;
* the station's setup (segments, QC settings) and the flag intervals that
  reach into the month.

A month is built from exactly those inputs, whatever else the station holds,
so an incremental build equals a full build bit for bit.

A month of short files (a day, a week each: a logger's usual delivery) is
built by its own query on one thread, its rows streamed in the order of its
files -- an order that depends on the month's inputs alone. Months that a
long file reaches are grouped in *batches* of consecutive months read by one
query (a years-long file is then read once, not once per month) and sorted
by time; a batch holds about :data:`BATCH_READINGS` input readings unless
one file alone spans more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

#: input readings per batch of months read by one query
BATCH_READINGS = 3_000_000
#: files spanning more than this are read once for many months, sorted by time
LONG_FILE = timedelta(days=31)
#: a partition's file name: ``YYYY-MM.parquet``
PARTITION_NAME = re.compile(r"^(?P<month>\d{4}-\d{2})\.parquet$")


class Spanned(Protocol):
    """A readings file as the planner sees it."""

    @property
    def file_id(self) -> int: ...
    @property
    def first_ts(self) -> datetime | None: ...
    @property
    def last_ts(self) -> datetime | None: ...
    @property
    def readings(self) -> int: ...


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month of UTC period starts: [start, end)."""

    start: datetime

    @property
    def key(self) -> str:
        return f"{self.start:%Y-%m}"

    @property
    def end(self) -> datetime:
        return next_month(self.start)

    @property
    def file_name(self) -> str:
        return f"{self.key}.parquet"

    @classmethod
    def of(cls, t: datetime) -> Month:
        t = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
        t = t.astimezone(UTC)
        return cls(datetime(t.year, t.month, 1, tzinfo=UTC))

    @classmethod
    def parse(cls, key: str) -> Month:
        year, month = key.split("-")
        return cls(datetime(int(year), int(month), 1, tzinfo=UTC))


def next_month(t: datetime) -> datetime:
    return t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)


def months_spanned(first: datetime, last: datetime) -> list[Month]:
    """Every month from the one holding ``first`` to the one holding ``last``."""
    out: list[Month] = []
    m = Month.of(first)
    end = Month.of(last)
    while m <= end:
        out.append(m)
        m = Month(m.end)
    return out


def month_of_name(name: str) -> Month | None:
    """The month of a partition file name (``2024-01.parquet``), else None."""
    found = PARTITION_NAME.match(name)
    return Month.parse(found.group("month")) if found else None


def overlaps(f: Spanned, lo: datetime, hi: datetime) -> bool:
    """True when ``f``'s rows may fall in [lo, hi)."""
    return f.first_ts is not None and f.last_ts is not None and f.first_ts < hi and f.last_ts >= lo


def months_with_data(files: Iterable[Spanned]) -> set[Month]:
    """The months the files' time spans reach."""
    out: set[Month] = set()
    for f in files:
        if f.first_ts is not None and f.last_ts is not None:
            out.update(months_spanned(f.first_ts, f.last_ts))
    return out


def inputs_by_month(
    files: Sequence[Spanned], months: Iterable[Month], margin: timedelta
) -> dict[Month, list[Spanned]]:
    """For each month, the files whose span reaches it or its context."""
    ordered = sorted(
        (f for f in files if f.first_ts is not None and f.last_ts is not None),
        key=lambda f: (f.first_ts, f.file_id),
    )
    out: dict[Month, list[Spanned]] = {}
    for m in sorted(months):
        lo, hi = m.start - margin, m.end + margin
        out[m] = [f for f in ordered if overlaps(f, lo, hi)]
    return out


@dataclass(frozen=True)
class Batch:
    """Consecutive months built by one query, and the files it reads.

    ``ordered``: the query sorts its rows by time (batches holding a file
    that spans months); otherwise it is one month of short files, streamed
    in the files' order on one thread.
    """

    months: tuple[Month, ...]
    files: tuple[Spanned, ...]
    ordered: bool = True

    @property
    def start(self) -> datetime:
        return self.months[0].start

    @property
    def end(self) -> datetime:
        return self.months[-1].end


def plan_batches(
    inputs: Mapping[Month, Sequence[Spanned]], limit: int = BATCH_READINGS
) -> list[Batch]:
    """The queries that build the months of ``inputs``, in time order.

    A month whose files are all short (a day, a week) is a batch of its own,
    streamed. Months reached by a file that spans more than a month are
    grouped: a month joins the batch before it when the two are consecutive
    and the batch's files then hold at most ``limit`` readings -- or when
    they share such a long file, which must not be read twice.
    """
    single = [
        Batch((m,), tuple(sorted(fs, key=lambda f: (f.first_ts, f.file_id))), ordered=False)
        for m, fs in inputs.items()
        if fs and not any(is_long(f) for f in fs)
    ]
    grouped = _group({m: fs for m, fs in inputs.items() if any(is_long(f) for f in fs)}, limit)
    return sorted([*single, *grouped], key=lambda b: b.start)


def _group(inputs: Mapping[Month, Sequence[Spanned]], limit: int) -> list[Batch]:
    batches: list[tuple[list[Month], dict[int, Spanned]]] = []
    for m in sorted(inputs):
        files = {f.file_id: f for f in inputs[m]}
        if batches:
            months, current = batches[-1]
            if months[-1].end == m.start:
                merged = {**current, **files}
                size = sum(max(f.readings, 1) for f in merged.values())
                shared_long = any(fid in current and is_long(f) for fid, f in files.items())
                if size <= limit or shared_long:
                    months.append(m)
                    current.update(files)
                    continue
        batches.append(([m], files))
    return [
        Batch(
            tuple(months),
            tuple(sorted(files.values(), key=lambda f: (f.first_ts, f.file_id))),
        )
        for months, files in batches
    ]


def is_long(f: Spanned) -> bool:
    """A file spanning more than a month (a years-long logger export)."""
    assert f.first_ts is not None and f.last_ts is not None
    return f.last_ts - f.first_ts > LONG_FILE
