"""Manual flags: periods in stations.toml, flags CSV files, Windographer flagging logs.

A flag never deletes data: it adds its name to the ``flags`` list of every
clean row it hits, and exports choose which flags to exclude. Every period is
half-open, ``[start, end)``, in the logger's local clock (like metadata
periods; a zone is refused). A target is a point name (or a name several
IEA document points share: all of them), a file column name (the (point,
statistic) pairs the column maps to) or, for a channel without metadata, the
channel name; no target means every point of the station.

stations.toml::

    [stations.M001.flags]
    files = ["flags/site.csv", "flags/M001_flagging_log.txt"]   # CSV or Windographer logs

    [[stations.M001.flags.periods]]
    flag = "maintenance"             # the name written into lake/clean; default "manual"
    points = ["WS80N", "WD78"]       # points, columns or sensor serials; omitted: every point
    start = 2024-03-01T09:00:00
    end = 2024-03-01T12:00:00
    reason = "boom replaced"

Flags CSV (UTF-8, header line, comma-separated; ``station`` and ``point``
empty or ``*`` mean all, so one file can serve several stations)::

    station,point,start,end,flag,reason
    M001,WS80N,2024-03-01 09:00,2024-03-01 12:00,maintenance,boom replaced
    *,,2024-04-01,2024-04-02,power_cut,

Windographer flagging logs (:mod:`stationkit.parsers.windographer_flags`) are
read from the files listed here and from the station's own fetched files (the
parse stage records them as skipped). Their times are the data set's time
step labels; Windographer labels a time step by its start, so they are taken
as period starts in logger time.

:func:`merge_flags` turns the periods into non-overlapping intervals per
(point, statistic) carrying the sorted set of flag names, so the engine needs
one range join and no aggregation ("flags merged first").
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from stationkit.calibrate.metadata import Resolver
from stationkit.config import StationConfig
from stationkit.errors import ConfigError, ParseError
from stationkit.parsers import windographer_flags
from stationkit.tomltable import TomlTable as Section
from stationkit.tomltable import local_time, show_value

log = logging.getLogger(__name__)

MANUAL = "manual"
#: flag names with this prefix are written by automatic QC only
QC_PREFIX = "qc_"
#: the statistic key of an interval that applies to every statistic of a point
ALL = "*"
CSV_COLUMNS = ("station", "point", "start", "end", "flag", "reason")
_PERIOD_KEYS = ("flag", "points", "start", "end", "reason")


@dataclass(frozen=True)
class FlagSpec:
    """One flagged period, as configured: ``[start, end)`` in logger time."""

    flag: str
    start: datetime
    end: datetime
    #: point, column or channel names; empty: every point of the station
    targets: tuple[str, ...] = ()
    reason: str | None = None
    #: where it was defined (key path, file and line), for messages
    where: str = ""


@dataclass(frozen=True)
class FlagConfig:
    """The ``flags`` section of a station."""

    periods: tuple[FlagSpec, ...] = ()
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class FlagInterval:
    """A merged interval: every flag active on ``[start, end)`` for one point.

    ``statistic`` is a statistic name, ``""`` for readings without one, or
    :data:`ALL`.
    """

    point: str
    statistic: str
    start: datetime
    end: datetime
    flags: tuple[str, ...]


def _flag_name(value: str | None, where: str) -> str:
    name = (value or MANUAL).strip()
    if not name or any(ord(ch) < 32 for ch in name):
        raise ConfigError(f"{where}: expected a flag name, got {show_value(value)}")
    if name.startswith(QC_PREFIX):
        raise ConfigError(
            f"{where}: flag names starting with {QC_PREFIX!r} are reserved for automatic QC, "
            f"got {show_value(name)}"
        )
    return name


def _period(start: datetime, end: datetime, where: str) -> None:
    if end <= start:
        raise ConfigError(
            f"{where}: expected end ({end.isoformat()}) after start ({start.isoformat()})"
        )


def parse_flag_config(station: StationConfig, base: Path) -> FlagConfig:
    """Validate ``[stations.<id>.flags]``; file paths are relative to ``base``."""
    raw = station.extra.get("flags")
    if raw is None:
        return FlagConfig()
    s = Section(raw, f"stations.{station.id}.flags")
    files: list[Path] = []
    for name in s.texts("files"):
        p = Path(name).expanduser()
        files.append(p if p.is_absolute() else base / p)
    periods: list[FlagSpec] = []
    for t in s.tables("periods"):
        start, end = t.when("start"), t.when("end")
        if start is None or end is None:
            raise ConfigError(f"{t.key('start' if start is None else 'end')}: missing")
        _period(start, end, t.path)
        periods.append(
            FlagSpec(
                flag=_flag_name(t.text("flag"), t.key("flag")),
                start=start,
                end=end,
                targets=t.texts("points"),
                reason=t.text("reason"),
                where=t.path,
            )
        )
        t.done(_PERIOD_KEYS)
    s.done(("files", "periods"))
    return FlagConfig(periods=tuple(periods), files=tuple(files))


def read_flags_csv(path: Path, *, station: str) -> list[FlagSpec]:
    """The rows of a flags CSV that apply to ``station``."""
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such flags file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: expected UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ConfigError(f"{name}, line 1: expected a header line {','.join(CSV_COLUMNS)}")
    header = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise ConfigError(
            f"{name}, line 1: unknown column {unknown[0]!r}; valid columns: {', '.join(CSV_COLUMNS)}"
        )
    for needed in ("start", "end"):
        if needed not in header:
            raise ConfigError(f"{name}, line 1: expected a {needed!r} column")
    out: list[FlagSpec] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise ConfigError(
                f"{name}, line {number}: expected {len(header)} fields, found {len(row)}"
            )
        cells = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
        where = f"{name}, line {number}"
        if cells.get("station", "") not in ("", ALL, station):
            continue
        start = local_time(cells["start"], f"{where}: start")
        end = local_time(cells["end"], f"{where}: end")
        _period(start, end, where)
        point = cells.get("point", "")
        out.append(
            FlagSpec(
                flag=_flag_name(cells.get("flag") or None, f"{where}: flag"),
                start=start,
                end=end,
                targets=() if point in ("", ALL) else (point,),
                reason=cells.get("reason") or None,
                where=where,
            )
        )
    return out


def read_flag_log(path: Path, *, name: str | None = None) -> list[FlagSpec]:
    """A Windographer flagging log as flag periods (each flags one column)."""
    display = name or path.name
    try:
        periods = windographer_flags.read_windographer_flags(path, name=display)
    except ParseError as exc:
        raise ConfigError(str(exc)) from None
    return [
        FlagSpec(
            flag=p.flag,
            start=p.start,
            end=p.end,
            targets=(p.column,),
            reason="Windographer flagging log",
            where=f"{display}, entry {i}",
        )
        for i, p in enumerate(periods, start=1)
        if p.end > p.start
    ]


def is_flag_log(path: Path) -> bool:
    """True when the file starts like a Windographer flagging log."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return windographer_flags.sniff(head)


def read_flag_file(path: Path, *, station: str) -> list[FlagSpec]:
    """A flags file named in stations.toml: a Windographer log or a flags CSV."""
    if not path.exists():
        raise ConfigError(f"{path}: no such flags file (stations.{station}.flags.files)")
    if is_flag_log(path):
        return read_flag_log(path)
    return read_flags_csv(path, station=station)


def load_flags(
    config: FlagConfig,
    station: str,
    logs: Sequence[tuple[Path, str]] = (),
) -> list[FlagSpec]:
    """Every flag period of a station: stations.toml, its flag files, and ``logs``
    (Windographer logs among the station's fetched files, as (path, display name))."""
    specs = list(config.periods)
    for path in config.files:
        specs.extend(read_flag_file(path, station=station))
    for path, name in logs:
        specs.extend(read_flag_log(path, name=name))
    return specs


def merge_flags(
    specs: Iterable[FlagSpec],
    resolver: Resolver,
    statistics: Mapping[str, Iterable[str | None]],
) -> tuple[list[FlagInterval], list[str]]:
    """Non-overlapping intervals per (point, statistic) with the flags active there.

    ``statistics`` lists the statistics each point has (``None`` for readings
    without one). A point flagged only as a whole gets intervals with
    statistic :data:`ALL`; a point with a flag on one statistic gets intervals
    per statistic, whole-point flags included, so that a row never matches
    two intervals. Targets that match nothing are reported as warnings.
    """
    warnings: list[str] = []
    # (point, statistic or None) -> [(start, end, flag)]
    hits: dict[tuple[str, str | None], list[tuple[datetime, datetime, str]]] = {}
    all_points = sorted(statistics)
    for spec in specs:
        pairs: list[tuple[str, str | None]] = []
        if not spec.targets:
            pairs = [(p, None) for p in all_points]
        for target in spec.targets:
            found = resolver.resolve(target)
            if not found and target in statistics:
                found = [(target, None)]
            if not found:
                warnings.append(
                    f"{spec.where}: flag {spec.flag!r} names {target!r}, which is no point, "
                    f"column, sensor or channel of the station; ignored"
                )
            pairs.extend(found)
        for pair in pairs:
            hits.setdefault(pair, []).append((spec.start, spec.end, spec.flag))
    by_point: dict[str, dict[str | None, list[tuple[datetime, datetime, str]]]] = {}
    for (point, stat), periods in hits.items():
        by_point.setdefault(point, {}).setdefault(stat, []).extend(periods)
    out: list[FlagInterval] = []
    for point in sorted(by_point):
        groups = by_point[point]
        whole = groups.get(None, [])
        specific = {k: v for k, v in groups.items() if k is not None}
        if not specific:
            out.extend(_sweep(point, ALL, whole))
            continue
        stats = {s or "" for s in statistics.get(point, ())} | set(specific)
        for stat in sorted(stats):
            out.extend(_sweep(point, stat, whole + specific.get(stat, [])))
    return out, warnings


def _sweep(
    point: str, statistic: str, periods: Sequence[tuple[datetime, datetime, str]]
) -> list[FlagInterval]:
    bounds = sorted({d for start, end, _ in periods for d in (start, end)})
    out: list[FlagInterval] = []
    for a, b in itertools.pairwise(bounds):
        active = tuple(sorted({f for start, end, f in periods if start <= a and b <= end}))
        if not active:
            continue
        if out and out[-1].end == a and out[-1].flags == active:
            last = out[-1]
            out[-1] = FlagInterval(point, statistic, last.start, b, active)
        else:
            out.append(FlagInterval(point, statistic, a, b, active))
    return out
