"""Fleet health: is each station delivering, which sensors look faulty, what failed.

Three questions a station manager asks every morning:

* **Stale stations** -- a station whose newest data (the last period start
  any parsed file holds, from the ledger) is older than its
  ``stale_after_hours`` is *stale*. The default is
  ``max(3 x averaging period, 2 x fetch interval, 30 h)``: a logger that
  uploads once a day is stale when its upload is six hours late, and a
  station fetched rarely is not stale between two fetches. ``0`` turns the
  check off (a dismantled mast). A station without any data yet is "no data",
  not stale: its fetch or parse failures say why.
* **Suspect sensors** -- over the last ``suspect_days`` of a station's clean
  data (ending at its newest value, not at the wall clock, so a stale
  station still shows what its sensors did last), the share of each point's
  values that an automatic QC flag hit. A point where one flag exceeds
  ``suspect_share`` is suspect, with the flag names and shares.
* **Failed files** -- every current file version whose unpack or parse
  failed, with the reason and where its quarantined copy is, and a fetch
  that is failing.

``stationkit run`` reports a station that has *newly* become stale as a
failure (so ``on_failure`` alerts once per stale episode, not every hour):
what each run found is kept in the ledger table ``station_watch``, and a
station is reported again only after fresh data ended the episode.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from stationkit.config import Config, StationConfig
from stationkit.export.select import clean_files
from stationkit.export.window import file_spans, last_timestamp, scan_window
from stationkit.layout import quarantine_dir
from stationkit.ledger import Ledger, iso

log = logging.getLogger(__name__)

#: the shortest default staleness threshold: a daily upload six hours late
STALE_FLOOR = timedelta(hours=30)
#: the averaging period assumed when neither the station nor its files say [min]
DEFAULT_PERIOD_MINUTES = 10.0

_WATCH = """CREATE TABLE IF NOT EXISTS station_watch (
    station TEXT PRIMARY KEY,
    stale INTEGER NOT NULL,         -- 1: stale at the last run's check
    last_data TEXT,                 -- the newest data then
    changed_at TEXT NOT NULL        -- when that state began (the check that saw it)
)"""


def stale_after(config: Config, station: StationConfig) -> timedelta | None:
    """How old a station's newest data may be before it is stale; None: never."""
    hours = station.stale_after_hours
    if hours is None:
        hours = config.status.stale_after_hours
    if hours is not None:
        return None if hours == 0 else timedelta(hours=hours)
    period = timedelta(minutes=station.averaging_period_minutes or DEFAULT_PERIOD_MINUTES)
    fetch = timedelta(minutes=station.fetch_interval_minutes)
    return max(3 * period, 2 * fetch, STALE_FLOOR)


def parse_time(text: str | None) -> datetime | None:
    """A ledger time (``2024-01-31T23:50:00.000000Z``) as an aware UTC datetime."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def last_data(ledger: Ledger, station: str) -> datetime | None:
    """The newest period start of any parsed file of ``station`` [UTC]."""
    row = ledger.conn.execute(
        "SELECT MAX(last_ts) FROM parses WHERE station=? AND status='ok'", (station,)
    ).fetchone()
    return parse_time(row[0])


@dataclass(frozen=True)
class Staleness:
    """How fresh a station's data is at ``now``."""

    station: str
    last_data: datetime | None
    now: datetime
    stale_after: timedelta | None

    @property
    def age(self) -> timedelta | None:
        return None if self.last_data is None else self.now - self.last_data

    @property
    def stale(self) -> bool:
        age = self.age
        return age is not None and self.stale_after is not None and age > self.stale_after

    @property
    def state(self) -> str:
        """``ok``, ``stale``, ``no data``, or ``clock ahead`` (data newer than now)."""
        age = self.age
        if age is None:
            return "no data"
        if self.stale:
            return "stale"
        if age < -timedelta(hours=1):
            return "clock ahead"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        age = self.age
        return {
            "state": self.state,
            "stale": self.stale,
            "last_data": iso(self.last_data) if self.last_data else None,
            "age_hours": None if age is None else round(age.total_seconds() / 3600, 2),
            "stale_after_hours": (
                None if self.stale_after is None else self.stale_after.total_seconds() / 3600
            ),
        }


def staleness(config: Config, station: StationConfig, ledger: Ledger, now: datetime) -> Staleness:
    return Staleness(station.id, last_data(ledger, station.id), now, stale_after(config, station))


# ---------------------------------------------------------------- suspect sensors


@dataclass(frozen=True)
class SuspectPoint:
    """A point whose values an automatic QC flag hit too often."""

    point: str
    measurement_type: str | None
    #: values of the point in the window (not missing)
    values: int
    #: flag -> share of the values it hit (0..1), for the flags over the threshold
    flags: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "measurement_type": self.measurement_type,
            "values": self.values,
            "flags": self.flags,
        }

    def text(self) -> str:
        shares = ", ".join(f"{f} {share:.0%}" for f, share in self.flags.items())
        return f"{self.point} ({shares})"


@dataclass(frozen=True)
class SuspectReport:
    """The suspect points of one station over the window (start, end] [UTC]:
    ``suspect_days`` up to its newest value."""

    station: str
    start: datetime | None = None
    end: datetime | None = None
    threshold: float = 0.2
    points: list[SuspectPoint] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_start": iso(self.start) if self.start else None,
            "window_end": iso(self.end) if self.end else None,
            "threshold": self.threshold,
            "points": [p.as_dict() for p in self.points],
        }


def suspect_points(config: Config, station: StationConfig) -> SuspectReport:
    """Points of ``station`` that QC flags hit too often over its last days of data.

    Reads only the clean files (and row groups) that reach into the window.
    """
    settings = config.status
    spans = file_spans(clean_files(config.data_dir, station.id))
    end = last_timestamp(spans)
    if end is None:
        return SuspectReport(station.id, threshold=settings.suspect_share)
    start = end - timedelta(days=settings.suspect_days)
    lf = scan_window(spans, start + timedelta(microseconds=1), None)
    flags = list(settings.suspect_flags)
    points = []
    if lf is not None:
        counts = (
            lf.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
            .group_by("point")
            .agg(
                pl.len().alias("__n"),
                pl.col("measurement_type").drop_nulls().last().alias("__type"),
                *(pl.col("flags").list.contains(f).sum().alias(f) for f in flags),
            )
            .sort("point")
            .collect()
        )
        for row in counts.iter_rows(named=True):
            n = row["__n"]
            over = {
                f: round(row[f] / n, 4) for f in flags if n and row[f] / n > settings.suspect_share
            }
            if over:
                points.append(SuspectPoint(row["point"], row["__type"], n, over))
    return SuspectReport(
        station.id, start=start, end=end, threshold=settings.suspect_share, points=points
    )


# ---------------------------------------------------------------- failed files


@dataclass(frozen=True)
class FailedFile:
    """A file (or a station's fetch) that failed, and why."""

    station: str
    stage: str
    #: the file, relative to the data directory ("" for a failing fetch)
    path: str
    reason: str
    at: str | None
    #: the quarantined copy, relative to the data directory
    quarantine: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def failed_files(config: Config, station: str, ledger: Ledger) -> list[FailedFile]:
    """Every current file version of ``station`` that failed, in path order,
    and the station's fetch when its last attempt failed."""
    c = ledger.conn
    out: list[FailedFile] = []
    fetch = ledger.fetch_info(station)
    if fetch is not None and fetch["last_error"]:
        out.append(FailedFile(station, "fetch", "", fetch["last_error"], fetch["last_attempt_at"]))
    rows = c.execute(
        "SELECT f.id, f.path, p.error, p.parsed_at, "
        "(SELECT e.stage FROM events e WHERE e.file_id = f.id ORDER BY e.id DESC LIMIT 1) AS stage "
        "FROM parses p JOIN files f ON f.id = p.file_id "
        "WHERE p.station=? AND p.status='failed' AND f.superseded_by IS NULL ORDER BY f.path",
        (station,),
    ).fetchall()
    qdir = quarantine_dir(config.data_dir, station)
    raw_prefix = f"raw/{station}/"
    for r in rows:
        path = str(r["path"])
        name = path.rsplit("/", 1)[-1]
        candidates = [qdir / f"{r['id']:019d}-{name}"]
        if path.startswith(raw_prefix):
            candidates.append(qdir / path.removeprefix(raw_prefix))
        copy = next((q for q in candidates if q.is_file()), None)
        out.append(
            FailedFile(
                station=station,
                stage=r["stage"] or "parse",
                path=path,
                reason=r["error"] or "",
                at=r["parsed_at"],
                quarantine=copy.relative_to(config.data_dir).as_posix() if copy else None,
            )
        )
    return out


# ---------------------------------------------------------------- stale alerts


def _watched(ledger: Ledger) -> dict[str, bool]:
    """Whether each station was stale at the last run's check."""
    rows = ledger.conn.execute("SELECT station, stale FROM station_watch").fetchall()
    return {r[0]: bool(r[1]) for r in rows}


def newly_stale(
    config: Config, stations: Sequence[StationConfig], ledger: Ledger, now: datetime
) -> list[tuple[str, str]]:
    """(station, message) for each of ``stations`` that was fresh at the last
    check and is stale now.

    A stale episode is reported once: the state each run found is kept in
    the ledger (``station_watch``), and a station is reported again only
    after fresh data has ended the episode. A station already stale when it
    is first checked (a finished campaign loaded from archives, a mast dead
    before stationkit watched it) is not reported: ``status`` shows it.
    """
    ledger.conn.execute(_WATCH)
    before = _watched(ledger)
    out: list[tuple[str, str]] = []
    for station in stations:
        s = staleness(config, station, ledger, now)
        if s.last_data is None:
            continue
        was = before.get(station.id)
        if was == s.stale:
            continue
        ledger.conn.execute(
            "INSERT OR REPLACE INTO station_watch(station, stale, last_data, changed_at) "
            "VALUES (?,?,?,?)",
            (station.id, int(s.stale), iso(s.last_data), iso(now)),
        )
        if not s.stale:
            if was:
                log.info(
                    "%s: data again (newest %s UTC)", station.id, f"{s.last_data:%Y-%m-%d %H:%M}"
                )
            continue
        if was is None:
            log.info(
                "%s: stale when first checked (newest data %s UTC); not reported",
                station.id,
                f"{s.last_data:%Y-%m-%d %H:%M}",
            )
            continue
        assert s.stale_after is not None and s.age is not None
        out.append(
            (
                station.id,
                f"stale: no data since {s.last_data:%Y-%m-%d %H:%M} UTC ({age_text(s.age)} ago; "
                f"stale after {age_text(s.stale_after)})",
            )
        )
    return out


def age_text(age: timedelta) -> str:
    """``45 min``, ``5.2 h``, ``3.1 d``."""
    seconds = age.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 5400:
        return f"{sign}{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{sign}{seconds / 3600:.1f} h"
    return f"{sign}{seconds / 86400:.1f} d"
