"""A station's logger clock settings, resolved in one place (DESIGN: Time).

Three settings say how a logger's time stamps relate to UTC:
``utc_offset_hours``, ``timestamp_is_end_of_period`` and
``averaging_period_minutes``. Every stage asks :class:`StationClock` for them,
so parse, calibrate, export, report and check never disagree. Each setting is,
in order of precedence:

1. the station's own setting in stations.toml;
2. else what the station's IEA Task 43 document (``metadata``) states in its
   ``logger_main_config[]`` / ``model_config[]`` (``offset_from_utc_hrs``,
   ``timestamp_is_end_of_period``, ``averaging_period_minutes``):

   * when every configuration that states the setting agrees: that value, at
     all times;
   * else the value of the configurations in force at the time in question
     (``[date_from, date_to)``, logger time). At a time no configuration
     covers: the one that ended last before it, else the one that starts
     first after it. Configurations in force together that disagree (several
     loggers with different averaging periods) give no value;
   * the parse stage asks at each file's first time stamp; exports and
     reports ("local time") ask for *now*: the configurations still open (no
     ``date_to``), else those that ended last;
3. else nothing: the parse stage takes the file header's value, then the
   defaults (:mod:`stationkit.timeconv`); exports and reports write UTC and
   infer the step from the data.

``stationkit check`` reports where stations.toml overrides a different value
of the document and where the document's configurations disagree
(:meth:`StationClock.warnings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stationkit.calibrate.metadata import LoggerTime
from stationkit.config import StationConfig
from stationkit.export.labels import format_number

#: the settings, as stations.toml names them
SETTINGS = ("utc_offset_hours", "timestamp_is_end_of_period", "averaging_period_minutes")
#: the same, as the IEA document names them
DOCUMENT_KEYS = {
    "utc_offset_hours": "offset_from_utc_hrs",
    "timestamp_is_end_of_period": "timestamp_is_end_of_period",
    "averaging_period_minutes": "averaging_period_minutes",
}
#: where a value of stations.toml came from (the words timeconv has always logged)
STATION = "station"


@dataclass(frozen=True)
class Clock:
    """The clock settings that apply, each with where it came from (None: nothing says)."""

    utc_offset_hours: float | None = None
    timestamp_is_end_of_period: bool | None = None
    averaging_period_minutes: float | None = None
    #: (setting, source): ``"station"`` or the JSON path of a document configuration
    sources: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_station(cls, station: StationConfig) -> Clock:
        """The station's own settings only (no document)."""
        values = {s: getattr(station, s) for s in SETTINGS}
        return cls(**values, sources=tuple((s, STATION) for s in SETTINGS if values[s] is not None))

    @property
    def offset_hours(self) -> float:
        """The logger's offset from UTC [h]; 0 (UTC) when nothing states one."""
        return float(self.utc_offset_hours or 0.0)

    @property
    def period(self) -> timedelta | None:
        """The averaging period, None when nothing states one."""
        minutes = self.averaging_period_minutes
        return timedelta(minutes=minutes) if minutes else None

    def source(self, setting: str) -> str | None:
        """Where ``setting``'s value came from; None when it has none."""
        return dict(self.sources).get(setting)

    def values(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in SETTINGS}


@dataclass(frozen=True)
class _Piece:
    """One setting of the document from ``start`` until the next piece."""

    start: datetime
    value: Any
    where: str
    #: the values of configurations in force together that disagree
    conflict: tuple[Any, ...] = ()


@dataclass(frozen=True)
class StationClock:
    """What a station's clock settings are at any time: stations.toml, then its document."""

    station: StationConfig
    #: the document's logger configurations; empty without a document
    document: tuple[LoggerTime, ...] = ()

    @classmethod
    def load(cls, station: StationConfig) -> StationClock:
        """Read the station's IEA document (cached by content), if it has one.

        Raises :class:`~stationkit.errors.ConfigError` for a document that
        cannot be read.
        """
        if station.metadata is None:
            return cls(station)
        from stationkit.calibrate.iea43 import load_iea43  # iea43 imports the metadata model

        meta = load_iea43(station.metadata, location=(station.name, station.id))
        return cls(station, meta.time)

    def at(self, when: datetime | None = None) -> Clock:
        """The settings at logger-local time ``when``; None: now (exports, reports)."""
        values: dict[str, Any] = {}
        sources: list[tuple[str, str]] = []
        for setting in SETTINGS:
            own = getattr(self.station, setting)
            if own is not None:
                values[setting] = own
                sources.append((setting, STATION))
                continue
            chosen = _in_force(self._stated(setting), when)
            found = {v for _, v in chosen}
            if len(found) == 1:
                values[setting] = chosen[0][1]
                sources.append((setting, f"IEA document {chosen[0][0].where}"))
        return Clock(**values, sources=tuple(sources))

    def changes(self) -> list[list[Any]]:
        """The document's settings that change over time and the station leaves out:
        ``[setting, start, value]`` per piece (what a re-parse depends on)."""
        out: list[list[Any]] = []
        for setting in SETTINGS:
            if getattr(self.station, setting) is None and len(self._stated_values(setting)) > 1:
                out.extend([setting, p.start.isoformat(), p.value] for p in self._pieces(setting))
        return out

    def warnings(self) -> list[str]:
        """Where stations.toml overrides the document, and where the document disagrees."""
        out: list[str] = []
        for setting in SETTINGS:
            own = getattr(self.station, setting)
            pieces = self._pieces(setting)
            key = DOCUMENT_KEYS[setting]
            if own is not None:
                other = [p for p in pieces if not p.conflict and p.value != own]
                if other:
                    states = "; ".join(
                        f"{key} = {_show(p.value)} ({p.where})"
                        for p in {p.where: p for p in other}.values()
                    )
                    out.append(
                        f"stations.{self.station.id}.{setting} = {_show(own)} overrides "
                        f"the IEA document's {states}; the station setting is used everywhere"
                    )
                continue
            for p in pieces:
                if p.conflict:
                    since = "" if p.start == datetime.min else f" from {p.start.isoformat()}"
                    out.append(
                        f"the IEA document's logger configurations in force together{since} "
                        f"disagree on {key} ({', '.join(map(_show, p.conflict))}); "
                        f"files of that time take {setting} from their header or the default: "
                        f"set stations.{self.station.id}.{setting} to say which applies"
                    )
        return out

    def _stated(self, setting: str) -> list[tuple[LoggerTime, Any]]:
        return [(t, getattr(t, setting)) for t in self.document if getattr(t, setting) is not None]

    def _stated_values(self, setting: str) -> set[Any]:
        return {v for _, v in self._stated(setting)}

    def _pieces(self, setting: str) -> list[_Piece]:
        """The document's value of ``setting`` over time (no piece: it states none)."""
        stated = self._stated(setting)
        bounds = {datetime.min}
        for t, _ in stated:
            bounds.update(d for d in (t.date_from, t.date_to) if d is not None)
        pieces: list[_Piece] = []
        for start in sorted(bounds):
            chosen = _in_force(stated, start)
            if not chosen:
                continue
            found = sorted({v for _, v in chosen})
            piece = (
                _Piece(start, chosen[0][1], chosen[0][0].where)
                if len(found) == 1
                else _Piece(start, None, "", conflict=tuple(found))
            )
            last = pieces[-1] if pieces else None
            if last is None or (last.value, last.conflict) != (piece.value, piece.conflict):
                pieces.append(piece)
        return pieces


def _in_force(
    stated: Sequence[tuple[LoggerTime, Any]], when: datetime | None
) -> list[tuple[LoggerTime, Any]]:
    """The configurations whose value applies at ``when`` (None: now)."""
    if not stated or len({v for _, v in stated}) == 1:
        return list(stated)
    if when is None:
        still = [x for x in stated if x[0].date_to is None]
        if still:
            return still
        last = max(t.date_to for t, _ in stated if t.date_to is not None)
        return [x for x in stated if x[0].date_to == last]
    covering = [
        x
        for x in stated
        if (x[0].date_from is None or x[0].date_from <= when)
        and (x[0].date_to is None or when < x[0].date_to)
    ]
    if covering:
        return covering
    ended = [x for x in stated if x[0].date_to is not None and x[0].date_to <= when]
    if ended:
        last = max(t.date_to for t, _ in ended if t.date_to is not None)
        return [x for x in ended if x[0].date_to == last]
    first = min(t.date_from for t, _ in stated if t.date_from is not None)
    return [x for x in stated if x[0].date_from == first]


def _show(value: Any) -> str:
    """A setting as stations.toml spells it: ``true``, ``1``, ``-5.5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return format_number(float(value))


def station_clock(station: StationConfig) -> Clock:
    """The settings in force now: what exports and reports call the logger's local time."""
    return StationClock.load(station).at()
