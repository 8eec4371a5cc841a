"""Station metadata: measurement points, logger configurations, sensors and
calibrations over time, from stations.toml (this module) or an IEA Task 43
WRA data model document (:mod:`stationkit.calibrate.iea43`).

Every period is half-open, ``[date_from, date_to)``, in the logger's local
clock (DESIGN: Calibration and flags); ``None`` is open (no start, or still
in force). The maths that :func:`resolve_segments` prepares for the engine::

    raw  = (logged - logger_offset) / logger_slope     # undo what the logger applied
    true = cal_slope * raw + cal_offset                # apply the calibration certificate

``avg``, ``min``, ``max``, ``gust``, ``median`` (and ``sample``,
``vector_avg``, ``mode``) take the full transform; ``sd`` and ``range`` the
slope ratio ``cal_slope / logger_slope``; everything else (counts, sums,
turbulence intensity, text, quality codes) is never touched.

stations.toml (``[stations.<id>.points.<name>]`` and
``[stations.<id>.sensors.<id>]``; see docs/calibration.md)::

    [stations.M001.points.WS80N]
    measurement_type = "wind_speed"       # IEA measurement_type_id
    height_m = 80
    orientation_deg = 0                   # boom orientation
    [[stations.M001.points.WS80N.logger]] # one per period the logger program was unchanged
    date_from = 2023-01-01T00:00:00
    slope = 0.04573                       # what the logger applied
    offset = 0.2419
    unit = "m/s"
    columns = { avg = "WS80N_Avg", sd = "WS80N_Std", max = "WS80N_Max" }

    [stations.M001.sensors.TH09183000]
    point = "WS80N"
    date_from = 2023-01-01T00:00:00
    calibrations = [{ slope = 0.04581, offset = 0.2315, date_of_calibration = 2022-11-30 }]

Errors name the key path (``stations.M001.points.WS80N.height_m: expected a
number, got "x"``) or, for a JSON document, the JSON path.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from stationkit.config import StationConfig
from stationkit.errors import ConfigError
from stationkit.export.labels import format_number
from stationkit.tomltable import TomlTable as Section
from stationkit.tomltable import show_value

log = logging.getLogger(__name__)

Kind = Literal["full", "ratio", "none"]

#: statistics that take the full transform (values in the measured unit)
FULL_STATISTICS = frozenset({"avg", "min", "max", "gust", "median", "sample", "vector_avg", "mode"})
#: statistics that scale with the slope only (spreads)
RATIO_STATISTICS = frozenset({"sd", "range"})
#: statistics never transformed: counts, sums of events, ratios, codes, text
UNTOUCHED_STATISTICS = frozenset(
    {"count", "sum", "text", "ti", "ti30sec", "availability", "quality"}
)
STATISTICS = FULL_STATISTICS | RATIO_STATISTICS | UNTOUCHED_STATISTICS

#: IEA Task 43 measurement_type_id values (schema 1.3.0-2024.03)
MEASUREMENT_TYPES = frozenset(
    {
        "wind_speed",
        "wind_direction",
        "air_temperature",
        "water_temperature",
        "temperature",
        "air_pressure",
        "air_density",
        "relative_humidity",
        "voltage",
        "current",
        "resistance",
        "power",
        "energy",
        "vertical_wind_speed",
        "wind_speed_turbulence",
        "precipitation",
        "ice_detection",
        "global_horizontal_irradiance",
        "direct_normal_irradiance",
        "diffuse_horizontal_irradiance",
        "global_tilted_irradiance",
        "global_normal_irradiance",
        "albedo",
        "soiling_loss_index",
        "illuminance",
        "fog",
        "salinity",
        "conductivity",
        "pressure",
        "gps_coordinates",
        "status",
        "flag",
        "counter",
        "availability",
        "quality",
        "carrier_to_noise_ratio",
        "doppler_spectral_broadening",
        "echo_intensity",
        "signal_to_noise_ratio",
        "motion_corrected_wind_speed",
        "motion_corrected_wind_direction",
        "motion_corrected_vertical_wind_speed",
        "wave_height",
        "wave_significant_height",
        "wave_maximum_height",
        "wave_direction",
        "wave_directional_spread",
        "wave_period",
        "wave_peak_period",
        "water_speed",
        "vertical_water_speed",
        "water_direction",
        "orientation",
        "compass_direction",
        "true_north_offset",
        "tilt",
        "tilt_x",
        "tilt_y",
        "tilt_z",
        "u",
        "v",
        "w",
        "elevation",
        "altitude",
        "height",
        "azimuth",
        "water_level",
        "depth",
        "timestamp",
        "obukhov_length",
        "other",
    }
)
#: directions wrap into [0, 360) after a calibration changes them
DIRECTION_TYPES = frozenset(
    {
        "wind_direction",
        "motion_corrected_wind_direction",
        "wave_direction",
        "water_direction",
        "compass_direction",
    }
)


def transform_kind(statistic: str | None) -> Kind:
    """How a statistic is calibrated: ``full``, ``ratio`` (slope only) or ``none``."""
    if statistic in FULL_STATISTICS:
        return "full"
    if statistic in RATIO_STATISTICS:
        return "ratio"
    return "none"


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class ColumnMap:
    """One file column of a logger configuration (IEA ``column_name``)."""

    column: str
    statistic: str
    #: IEA ``is_ignored``: the column is left out of lake/clean
    ignored: bool = False


@dataclass(frozen=True)
class LoggerConfig:
    """What the logger program did for one point over ``[date_from, date_to)``."""

    columns: tuple[ColumnMap, ...]
    date_from: datetime | None = None
    date_to: datetime | None = None
    #: the slope and offset the logger applied; None when not stated
    slope: float | None = None
    offset: float | None = None
    unit: str | None = None
    #: key path or JSON path, for messages
    where: str = ""


@dataclass(frozen=True)
class Calibration:
    """A calibration certificate's linear fit: ``true = slope * raw + offset``."""

    slope: float | None = None
    offset: float | None = None
    date_of_calibration: date | None = None
    #: the measurement the fit is for (a sensor may measure several); None: any
    measurement_type: str | None = None
    #: explicit validity inside the sensor's period (stations.toml only)
    date_from: datetime | None = None
    date_to: datetime | None = None
    where: str = ""


@dataclass(frozen=True)
class Sensor:
    """A sensor mounted at a point over ``[date_from, date_to)``."""

    calibrations: tuple[Calibration, ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    serial_number: str | None = None
    model: str | None = None
    where: str = ""


@dataclass(frozen=True)
class Point:
    """A measurement point: where and what is measured, and how it was logged."""

    name: str
    measurement_type: str | None = None
    height_m: float | None = None
    #: boom orientation [deg from true north]
    orientation_deg: float | None = None
    logger_configs: tuple[LoggerConfig, ...] = ()
    sensors: tuple[Sensor, ...] = ()
    where: str = ""
    #: the name the IEA document gives the point when several points share it
    #: (``name`` is then qualified by height, :func:`identify_points`)
    shared_name: str | None = None


@dataclass(frozen=True)
class LoggerTime:
    """The logger clock settings of an IEA ``logger_main_config`` (or ``model_config``)."""

    utc_offset_hours: float | None = None
    timestamp_is_end_of_period: bool | None = None
    averaging_period_minutes: float | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    #: JSON path, for messages
    where: str = ""


@dataclass(frozen=True)
class StationMetadata:
    """Everything known about a station's points; empty means identity calibration."""

    points: tuple[Point, ...] = ()
    time: tuple[LoggerTime, ...] = ()
    #: where it came from: "stations.toml" and/or document paths
    sources: tuple[str, ...] = ()

    def point(self, name: str) -> Point | None:
        for p in self.points:
            if p.name == name:
                return p
        return None

    @property
    def columns(self) -> frozenset[str]:
        """Every file column name the metadata mentions (ignored ones included)."""
        return frozenset(
            c.column for p in self.points for lc in p.logger_configs for c in lc.columns
        )


def identify_points(points: Sequence[Point]) -> tuple[Point, ...]:
    """The points with names that identify them, as the IEA standard allows.

    A point is identified by its name, or by name and height, or by its
    position in the document. A name no other point has is kept as it is (so
    ids stay stable for every ordinary station). Points sharing a name (an
    ADCP or lidar with one point per range bin, all called ``WtrSpd``) are
    each named ``<name>@<height>m`` (``WtrSpd@-12.5m``); when name and height
    still clash (or the height is unknown) every one of them gets ``#1``,
    ``#2``, ... by document order (``WtrSpd@-12.5m#2``, ``WtrSpd#2``). A
    qualified name never takes one that another point already has. The name
    in the document is kept in ``shared_name``.
    """
    counts = Counter(p.name for p in points)
    if all(n == 1 for n in counts.values()):
        return tuple(points)
    taken = {p.name for p in points if counts[p.name] == 1}

    def qualified(p: Point) -> str:
        return p.name if p.height_m is None else f"{p.name}@{format_number(p.height_m)}m"

    by_height = Counter(qualified(p) for p in points if counts[p.name] > 1)
    ordinal: Counter[str] = Counter()
    out: list[Point] = []
    for p in points:
        if counts[p.name] == 1:
            out.append(p)
            continue
        base = qualified(p)
        name = base
        if by_height[base] > 1 or p.height_m is None:
            ordinal[base] += 1
            name = f"{base}#{ordinal[base]}"
        while name in taken:
            ordinal[base] += 1
            name = f"{base}#{ordinal[base]}"
        taken.add(name)
        out.append(replace(p, name=name, shared_name=p.name))
    return tuple(out)


@dataclass(frozen=True)
class ChannelFacts:
    """What the parsed files say about one channel (from the ledger)."""

    name: str
    statistic: str | None = None
    height_m: float | None = None
    unit: str | None = None
    #: vendor header calibration the logger applied (NRG scale factor, Kintech slope)
    slope: float | None = None
    offset: float | None = None


@dataclass(frozen=True)
class Segment:
    """One channel's mapping and transform over ``[date_from, date_to)`` (logger time)."""

    channel: str
    point: str
    #: None: keep the statistic the reading has (identity)
    statistic: str | None
    measurement_type: str | None
    height_m: float | None
    date_from: datetime | None
    date_to: datetime | None
    kind: Kind = "none"
    logger_slope: float = 1.0
    logger_offset: float = 0.0
    cal_slope: float = 1.0
    cal_offset: float = 0.0
    ignored: bool = False
    #: a direction: the calibrated value wraps into [0, 360)
    wrap: bool = False


# ---------------------------------------------------------------- TOML validation


_POINT_KEYS = (
    "measurement_type", "height_m", "orientation_deg", "logger",
    "columns", "slope", "offset", "unit", "date_from", "date_to", "ignore",
)  # fmt: skip
_LOGGER_KEYS = ("date_from", "date_to", "slope", "offset", "unit", "columns", "ignore")
_SENSOR_KEYS = (
    "point", "serial_number", "model", "date_from", "date_to", "calibrations",
    "slope", "offset", "date_of_calibration", "measurement_type", "certificate",
)  # fmt: skip
_CAL_KEYS = (
    "slope", "offset", "date_of_calibration", "measurement_type", "date_from", "date_to",
    "certificate",
)  # fmt: skip


def _measurement_type(s: Section, name: str, *, required: bool) -> str | None:
    value = s.text(name, required=required)
    if value is not None and value not in MEASUREMENT_TYPES:
        raise ConfigError(
            f"{s.key(name)}: expected an IEA Task 43 measurement_type_id such as wind_speed, "
            f"wind_direction, air_temperature, relative_humidity, air_pressure (the full list "
            f"is in docs/calibration.md), got {show_value(value)}"
        )
    return value


def _columns(s: Section) -> tuple[ColumnMap, ...]:
    t = s.table("columns")
    if t is None:
        raise ConfigError(
            f"{s.key('columns')}: missing; expected a table of statistic = column name, "
            'e.g. columns = { avg = "WS80N_Avg", sd = "WS80N_Std" }'
        )
    ignored = set(s.texts("ignore"))
    out: list[ColumnMap] = []
    for stat in list(t.data):
        if stat not in STATISTICS:
            raise ConfigError(
                f"{t.key(stat)}: unknown statistic; valid statistics: {', '.join(sorted(STATISTICS))}"
            )
        column = t.text(stat, required=True)
        assert column is not None
        out.append(ColumnMap(column, stat))
    if not out:
        raise ConfigError(f"{t.path}: expected at least one statistic = column name")
    out.extend(ColumnMap(c, "text", ignored=True) for c in sorted(ignored))
    return tuple(out)


def _logger(s: Section) -> LoggerConfig:
    lc = LoggerConfig(
        date_from=s.when("date_from"),
        date_to=s.when("date_to"),
        slope=s.number("slope", nonzero=True),
        offset=s.number("offset"),
        unit=s.text("unit"),
        columns=_columns(s),
        where=s.path,
    )
    return lc


def _point(name: str, s: Section) -> Point:
    mtype = _measurement_type(s, "measurement_type", required=True)
    height = s.number("height_m", lo=-12000, hi=12000, unit=" m")
    orientation = s.number("orientation_deg", lo=-360, hi=360, unit=" deg")
    loggers = s.tables("logger")
    inline = [
        k
        for k in ("columns", "slope", "offset", "unit", "date_from", "date_to", "ignore")
        if s.has(k)
    ]
    if loggers and inline:
        raise ConfigError(
            f"{s.key(inline[0])}: give the logger settings either on the point or in its "
            f"[[...logger]] periods, not both"
        )
    if not loggers and not inline:
        raise ConfigError(
            f"{s.key('columns')}: missing; expected a table of statistic = column name, "
            'e.g. columns = { avg = "WS80N_Avg", sd = "WS80N_Std" }, or [[...logger]] periods'
        )
    if inline:
        inline_data = {k: s.raw(k) for k in inline}
        configs: tuple[LoggerConfig, ...] = (_logger(Section(inline_data, s.path)),)
    else:
        configs = tuple(_logger_done(t) for t in loggers)
    s.done(_POINT_KEYS)
    return Point(
        name=name,
        measurement_type=mtype,
        height_m=height,
        orientation_deg=orientation,
        logger_configs=configs,
        where=s.path,
    )


def _logger_done(t: Section) -> LoggerConfig:
    lc = _logger(t)
    t.done(_LOGGER_KEYS)
    return lc


def _calibration(s: Section, base: Path) -> Calibration:
    certificate = s.text("certificate")
    cal = Calibration(
        slope=s.number("slope", nonzero=True),
        offset=s.number("offset"),
        date_of_calibration=s.day("date_of_calibration"),
        measurement_type=_measurement_type(s, "measurement_type", required=False),
        date_from=s.when("date_from"),
        date_to=s.when("date_to"),
        where=s.path,
    )
    if certificate is not None:
        if cal.slope is not None or cal.offset is not None:
            raise ConfigError(
                f"{s.key('certificate')}: give either a certificate or slope/offset, not both"
            )
        from stationkit.calibrate.iea43 import load_calibration_certificate

        path = Path(certificate).expanduser()
        cert = load_calibration_certificate(path if path.is_absolute() else base / path)
        cal = replace(
            cal,
            slope=cert.slope,
            offset=cert.offset,
            date_of_calibration=cal.date_of_calibration or cert.date_of_calibration,
            measurement_type=cal.measurement_type or cert.measurement_type,
        )
    elif cal.slope is None and cal.offset is None:
        raise ConfigError(f"{s.path}: expected slope and offset (or a certificate)")
    return cal


def _sensor(sid: str, s: Section, base: Path) -> tuple[str, Sensor]:
    point = s.text("point", required=True)
    assert point is not None
    date_from, date_to = s.when("date_from"), s.when("date_to")
    serial, model = s.text("serial_number"), s.text("model")
    cal_tables = s.tables("calibrations")
    inline = [
        k
        for k in ("slope", "offset", "date_of_calibration", "measurement_type", "certificate")
        if s.has(k)
    ]
    if cal_tables and inline:
        raise ConfigError(
            f"{s.key(inline[0])}: give the calibration either on the sensor or in its "
            f"calibrations list, not both"
        )
    cals: list[Calibration] = []
    if inline:
        cals.append(_calibration(Section({k: s.raw(k) for k in inline}, s.path), base))
    for t in cal_tables:
        cals.append(_calibration(t, base))
        t.done(_CAL_KEYS)
    s.done(_SENSOR_KEYS)
    return point, Sensor(
        calibrations=tuple(cals),
        date_from=date_from,
        date_to=date_to,
        serial_number=serial or sid,
        model=model,
        where=s.path,
    )


def parse_toml_metadata(
    station: StationConfig, base: Path
) -> tuple[dict[str, Point], list[tuple[str, Sensor]]]:
    """Validate ``points`` and ``sensors`` of one station's stations.toml table.

    Returns the points by name and the sensors with the name of their point.
    ``base`` is the folder of stations.toml (certificate paths are relative to it).
    """
    prefix = f"stations.{station.id}"
    points: dict[str, Point] = {}
    raw_points = station.extra.get("points")
    if raw_points is not None:
        pt = Section(raw_points, f"{prefix}.points")
        for name in list(pt.data):
            points[name] = _point(name, Section(pt.data.pop(name), pt.key(name)))
    sensors: list[tuple[str, Sensor]] = []
    raw_sensors = station.extra.get("sensors")
    if raw_sensors is not None:
        st = Section(raw_sensors, f"{prefix}.sensors")
        for sid in list(st.data):
            sensors.append(_sensor(sid, Section(st.data.pop(sid), st.key(sid)), base))
    return points, sensors


def load_station_metadata(station: StationConfig, base: Path) -> StationMetadata:
    """The station's metadata: its IEA document (``metadata``) and stations.toml.

    A point defined in stations.toml replaces the document's point of the same
    name; stations.toml sensors are added to the point they name. The result is
    validated (:func:`validate_metadata`).
    """
    points: dict[str, Point] = {}
    time_settings: tuple[LoggerTime, ...] = ()
    sources: list[str] = []
    if station.metadata is not None:
        from stationkit.calibrate.iea43 import load_iea43

        doc = load_iea43(station.metadata, location=(station.name, station.id))
        points = {p.name: p for p in doc.points}
        time_settings = doc.time
        sources.extend(doc.sources)
    toml_points, toml_sensors = parse_toml_metadata(station, base)
    for name, p in toml_points.items():
        if name in points:
            log.info("%s: point %s from stations.toml replaces the document's", station.id, name)
        points[name] = p
    for point_name, sensor in toml_sensors:
        target = points.get(point_name)
        if target is None:
            raise ConfigError(
                f"{sensor.where}.point: no point named {show_value(point_name)}; points: "
                f"{', '.join(sorted(points)) or '(none)'}"
            )
        points[point_name] = replace(target, sensors=(*target.sensors, sensor))
    if toml_points or toml_sensors:
        sources.append("stations.toml")
    meta = StationMetadata(
        points=tuple(points.values()), time=time_settings, sources=tuple(sources)
    )
    validate_metadata(meta)
    return meta


# ---------------------------------------------------------------- validation


def _fmt(d: datetime | None) -> str:
    return d.isoformat() if d is not None else "open"


def _overlap(
    a_from: datetime | None, a_to: datetime | None, b_from: datetime | None, b_to: datetime | None
) -> bool:
    lo = max((d for d in (a_from, b_from) if d is not None), default=None)
    hi = min((d for d in (a_to, b_to) if d is not None), default=None)
    return lo is None or hi is None or lo < hi


def _check_period(d_from: datetime | None, d_to: datetime | None, where: str) -> None:
    if d_from is not None and d_to is not None and d_to <= d_from:
        raise ConfigError(
            f"{where}.date_to: expected a date-time after date_from ({_fmt(d_from)}), "
            f"got {_fmt(d_to)}"
        )


def validate_metadata(meta: StationMetadata) -> None:
    """Periods that make sense and one meaning per column at any time.

    * every ``date_to`` is after its ``date_from``;
    * the logger configurations of a point do not overlap;
    * a configuration names each statistic and each column once;
    * a column is used (not ignored) by at most one (point, statistic) at a time;
    * the calibrated sensors of a point do not overlap.
    """
    names: dict[str, str] = {}
    for p in meta.points:
        if p.name in names:
            raise ConfigError(
                f"{p.where}: a second point named {show_value(p.name)} ({names[p.name]})"
            )
        names[p.name] = p.where
    uses: dict[str, list[tuple[LoggerConfig, ColumnMap, Point]]] = {}
    for p in meta.points:
        configs = sorted(p.logger_configs, key=lambda c: c.date_from or datetime.min)
        for lc in configs:
            _check_period(lc.date_from, lc.date_to, lc.where)
        for a, b in itertools.pairwise(configs):
            if _overlap(a.date_from, a.date_to, b.date_from, b.date_to):
                raise ConfigError(
                    f"{b.where}: its period ({_fmt(b.date_from)} .. {_fmt(b.date_to)}) overlaps "
                    f"{a.where} ({_fmt(a.date_from)} .. {_fmt(a.date_to)}); the logger "
                    f"configurations of a point must not overlap"
                )
        for lc in configs:
            stats: dict[str, str] = {}
            cols: set[str] = set()
            for c in lc.columns:
                if c.column in cols:
                    raise ConfigError(f"{lc.where}: column {show_value(c.column)} is listed twice")
                cols.add(c.column)
                if c.ignored:
                    continue
                if c.statistic in stats:
                    raise ConfigError(
                        f"{lc.where}: statistic {c.statistic!r} has two columns, "
                        f"{show_value(stats[c.statistic])} and {show_value(c.column)}"
                    )
                stats[c.statistic] = c.column
                uses.setdefault(c.column, []).append((lc, c, p))
        sensors = sorted(
            (s for s in p.sensors if _applicable(s, p)), key=lambda s: s.date_from or datetime.min
        )
        for s in p.sensors:
            _check_period(s.date_from, s.date_to, s.where)
            explicit = [c for c in s.calibrations if c.date_from or c.date_to]
            if explicit and len(explicit) != len(s.calibrations):
                raise ConfigError(
                    f"{s.where}: give every calibration of the sensor a period "
                    f"(date_from/date_to) or none"
                )
            for cal in explicit:
                _check_period(cal.date_from, cal.date_to, cal.where)
            ordered = sorted(explicit, key=lambda c: c.date_from or datetime.min)
            for a2, b2 in itertools.pairwise(ordered):
                if _overlap(a2.date_from, a2.date_to, b2.date_from, b2.date_to):
                    raise ConfigError(f"{b2.where}: its period overlaps {a2.where}")
        for sa, sb in itertools.pairwise(sensors):
            if _overlap(sa.date_from, sa.date_to, sb.date_from, sb.date_to):
                raise ConfigError(
                    f"{sb.where}: its period ({_fmt(sb.date_from)} .. {_fmt(sb.date_to)}) "
                    f"overlaps {sa.where} ({_fmt(sa.date_from)} .. {_fmt(sa.date_to)}); "
                    f"which calibration applies would be ambiguous"
                )
    for column, used in uses.items():
        for i, (lc_a, _, p_a) in enumerate(used):
            for lc_b, _, p_b in used[i + 1 :]:
                if _overlap(lc_a.date_from, lc_a.date_to, lc_b.date_from, lc_b.date_to):
                    raise ConfigError(
                        f"{lc_b.where}: column {show_value(column)} is also used by {lc_a.where} "
                        f"(point {show_value(p_a.name)}) over an overlapping period; a column can "
                        f"mean one thing at a time"
                        if p_a.name != p_b.name
                        else f"{lc_b.where}: column {show_value(column)} overlaps {lc_a.where}"
                    )


def _applicable_cals(s: Sensor, p: Point) -> list[Calibration]:
    return [
        c
        for c in s.calibrations
        if (c.measurement_type is None or c.measurement_type == p.measurement_type)
        and (c.slope is not None or c.offset is not None)
    ]


def _applicable(s: Sensor, p: Point) -> bool:
    return bool(_applicable_cals(s, p))


# ---------------------------------------------------------------- periods -> segments


def in_force(cals: Sequence[Calibration], installed: datetime | None) -> Calibration:
    """The certificate a sensor was installed with (when it has several).

    The most recent one dated on or before the sensor's ``date_from``; else
    the last undated one; else the earliest. Ties go to the later one in the
    document.
    """
    indexed = list(enumerate(cals))
    if installed is not None:
        before = [
            (c.date_of_calibration, i, c)
            for i, c in indexed
            if c.date_of_calibration is not None and c.date_of_calibration <= installed.date()
        ]
        if before:
            return max(before, key=lambda t: (t[0], t[1]))[2]
    undated = [c for _, c in indexed if c.date_of_calibration is None]
    if undated:
        return undated[-1]
    return min(
        ((c.date_of_calibration, -i, c) for i, c in indexed if c.date_of_calibration),
        key=lambda t: (t[0], t[1]),
    )[2]


def calibration_periods(
    p: Point,
) -> list[tuple[datetime | None, datetime | None, Calibration]]:
    """Which calibration applies to point ``p`` when, sorted, not overlapping."""
    out: list[tuple[datetime | None, datetime | None, Calibration]] = []
    for s in p.sensors:
        cals = _applicable_cals(s, p)
        if not cals:
            continue
        explicit = [c for c in cals if c.date_from or c.date_to]
        if explicit:
            for c in explicit:
                lo = _later(c.date_from, s.date_from)
                hi = _earlier(c.date_to, s.date_to)
                if lo is None or hi is None or lo < hi:
                    out.append((lo, hi, c))
        else:
            out.append((s.date_from, s.date_to, in_force(cals, s.date_from)))
    out.sort(key=lambda t: t[0] or datetime.min)
    return out


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _split(
    lo: datetime | None,
    hi: datetime | None,
    cals: Sequence[tuple[datetime | None, datetime | None, Calibration]],
) -> list[tuple[datetime | None, datetime | None, Calibration | None]]:
    """Cut ``[lo, hi)`` at the calibration periods' bounds."""
    cuts: list[datetime] = []
    for c_from, c_to, _ in cals:
        for d in (c_from, c_to):
            if d is not None and (lo is None or d > lo) and (hi is None or d < hi):
                cuts.append(d)
    bounds: list[datetime | None] = [lo, *sorted(set(cuts)), hi]
    pieces: list[tuple[datetime | None, datetime | None, Calibration | None]] = []
    for a, b in itertools.pairwise(bounds):
        # the cuts include every calibration bound inside [lo, hi): each piece
        # lies wholly inside or wholly outside each calibration period
        found: Calibration | None = None
        for c_from, c_to, cal in cals:
            starts_before = c_from is None or (a is not None and c_from <= a)
            ends_after = c_to is None or (b is not None and b <= c_to)
            if starts_before and ends_after:
                found = cal
                break
        if pieces and pieces[-1][2] is found:
            pieces[-1] = (pieces[-1][0], b, found)
        else:
            pieces.append((a, b, found))
    return pieces


def resolve_segments(
    meta: StationMetadata, channels: Mapping[str, ChannelFacts]
) -> tuple[list[Segment], list[str]]:
    """Every channel's point, statistic and transform per period, plus warnings.

    Metadata columns give point segments; a column whose logger configuration
    states no slope and offset takes the vendor header's (``channels``). Every
    data channel is also given identity segments for the times no metadata
    period covers it (the channel is its own point, value = raw value).
    """
    segments: list[Segment] = []
    warnings: list[str] = []
    for p in meta.points:
        cals = calibration_periods(p)
        for lc in p.logger_configs:
            for c in lc.columns:
                base = Segment(
                    channel=c.column,
                    point=p.name,
                    statistic=c.statistic,
                    measurement_type=p.measurement_type,
                    height_m=p.height_m,
                    date_from=lc.date_from,
                    date_to=lc.date_to,
                )
                if c.ignored:
                    segments.append(replace(base, ignored=True))
                    continue
                ls, lo = lc.slope, lc.offset
                facts = channels.get(c.column)
                if ls is None and lo is None and facts is not None:
                    # what the vendor header says the logger applied
                    ls, lo = facts.slope, facts.offset
                known = ls is not None or lo is not None
                kind = transform_kind(c.statistic)
                for a, b, cal in _split(lc.date_from, lc.date_to, cals):
                    seg = replace(base, date_from=a, date_to=b)
                    if cal is None or kind == "none":
                        segments.append(seg)
                        continue
                    if not known:
                        warnings.append(
                            f"point {p.name}: column {c.column} has a calibration "
                            f"({cal.where}) but the logger's slope and offset are unknown "
                            f"({lc.where}); its values are kept as logged"
                        )
                        segments.append(seg)
                        continue
                    ls1, lo0 = 1.0 if ls is None else ls, 0.0 if lo is None else lo
                    cs1 = 1.0 if cal.slope is None else cal.slope
                    co0 = 0.0 if cal.offset is None else cal.offset
                    if cs1 == ls1 and (co0 == lo0 or kind == "ratio"):
                        # the logger was programmed with the certificate: nothing to
                        # change, and the values stay exact (no float round trip)
                        segments.append(seg)
                        continue
                    segments.append(
                        replace(
                            seg,
                            kind=kind,
                            logger_slope=ls1,
                            logger_offset=lo0,
                            cal_slope=cs1,
                            cal_offset=co0,
                            wrap=kind == "full" and p.measurement_type in DIRECTION_TYPES,
                        )
                    )
    by_channel: dict[str, list[Segment]] = {}
    for seg in segments:
        by_channel.setdefault(seg.channel, []).append(seg)
    for name in sorted(channels):
        facts = channels[name]
        covered = sorted(by_channel.get(name, []), key=lambda s: s.date_from or datetime.min)
        gaps: list[tuple[datetime | None, datetime | None]] = []
        cursor: datetime | None = None  # end of the covered time so far; None: not started
        ended = False
        for i, seg in enumerate(covered):
            if i == 0:
                if seg.date_from is not None:
                    gaps.append((None, seg.date_from))
            elif seg.date_from is not None and cursor is not None and seg.date_from > cursor:
                gaps.append((cursor, seg.date_from))
            cursor = seg.date_to
            if cursor is None:
                ended = True
                break
        if not covered:
            gaps.append((None, None))
        elif not ended:
            gaps.append((cursor, None))
        for a, b in gaps:
            segments.append(
                Segment(
                    channel=name,
                    point=name,
                    statistic=None,
                    measurement_type=None,
                    height_m=facts.height_m,
                    date_from=a,
                    date_to=b,
                )
            )
    return segments, warnings


@dataclass(frozen=True)
class Resolver:
    """Turns a flag target into (point, statistic) pairs.

    A metadata column flags the (point, statistic) pairs it maps to (a
    Windographer log flags one column); a point name flags every statistic of
    the point, and so does a sensor's serial number (the point it is mounted
    at), and a name several points of an IEA document share (every one of
    them: :func:`identify_points`); an unmapped channel flags itself.
    """

    columns: Mapping[str, frozenset[tuple[str, str | None]]] = field(default_factory=dict)
    points: frozenset[str] = frozenset()
    #: sensor serial number (or stations.toml sensor id) -> its points
    sensors: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: a name several document points share -> their qualified names
    shared: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_segments(
        cls, segments: Iterable[Segment], meta: StationMetadata | None = None
    ) -> Resolver:
        columns: dict[str, set[tuple[str, str | None]]] = {}
        points: set[str] = set()
        for s in segments:
            if s.ignored:
                continue
            points.add(s.point)
            if s.statistic is not None:
                columns.setdefault(s.channel, set()).add((s.point, s.statistic))
        sensors: dict[str, set[str]] = {}
        shared: dict[str, set[str]] = {}
        for p in meta.points if meta is not None else ():
            for sensor in p.sensors:
                if sensor.serial_number:
                    sensors.setdefault(sensor.serial_number, set()).add(p.name)
            if p.shared_name is not None:
                shared.setdefault(p.shared_name, set()).add(p.name)
        return cls(
            {k: frozenset(v) for k, v in columns.items()},
            frozenset(points),
            {k: frozenset(v) for k, v in sensors.items()},
            {k: frozenset(v) for k, v in shared.items()},
        )

    def resolve(self, target: str) -> list[tuple[str, str | None]]:
        """``[(point, statistic or None for all)]``; empty when nothing matches."""
        if target in self.columns:
            return sorted(self.columns[target], key=lambda t: (t[0], t[1] or ""))
        if target in self.points:
            return [(target, None)]
        for found in (self.sensors, self.shared):
            if target in found:
                return [(p, None) for p in sorted(found[target])]
        return []
