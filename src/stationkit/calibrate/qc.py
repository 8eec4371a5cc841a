"""Automatic QC: flags computed from the data, as DuckDB SQL.

Four rules, by IEA measurement type (points without a measurement type,
i.e. channels without metadata, get no automatic flags):

``qc_range``
    a calibrated value outside ``[min, max]`` for its measurement type
    (statistics in the measured unit: avg, min, max, gust, median, sample,
    vector_avg, mode, sum), or a negative ``sd`` / ``range``.
``qc_flatline``
    the point's ``avg`` logged the identical value in at least N consecutive
    records; every record of the run is flagged, all statistics of the point.
``qc_spike``
    the point's ``avg`` jumps more than D away from both neighbouring records
    and back (same sign both sides); all statistics of the point at that time.
``qc_icing``
    the reference air temperature is below T and the anemometer or vane is
    stuck: its ``sd`` is exactly 0, or its ``avg`` is part of a run of at
    least K identical values. All statistics of the stuck wind speed or
    direction point at that time.

The window rules (flat line, spike, icing runs) link a record to the record
before it only when the two are at most ``max_gap_minutes`` apart (default
360): a longer gap without records ends a run, and a spike needs
neighbours on both sides within it. So a record's flags never depend on data
far away in time, and lake/clean can be rebuilt a month at a time
(:func:`margin`).

Defaults (:data:`DEFAULT_RANGES`, :data:`DEFAULT_FLATLINE`,
:data:`DEFAULT_SPIKE`, icing below 2 degC with K = 3) assume the IEA default
units (m/s, deg, degC, %, hPa, kg/m^3, mm, W/m^2, V); stations.toml replaces
them per measurement type::

    [stations.M001.qc]
    enabled = true                      # false: no automatic flags at all
    [stations.M001.qc.range]            # measurement type = [min, max], or false to disable
    wind_speed = [0, 50]
    air_pressure = [850, 1050]
    [stations.M001.qc.flatline]         # measurement type = N records (0 disables)
    wind_speed = 12
    [stations.M001.qc.spike]            # measurement type = D in its unit (0 disables)
    air_temperature = 4
    max_gap_minutes = 360               # a longer gap ends a run
    [stations.M001.qc.icing]
    enabled = true
    temperature_point = "T2m"           # default: the highest air_temperature point
    below = 2.0                         # [degC]
    steps = 3
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from stationkit.calibrate.metadata import MEASUREMENT_TYPES, StationMetadata
from stationkit.config import StationConfig
from stationkit.errors import ConfigError
from stationkit.tomltable import TomlTable as Section
from stationkit.tomltable import show_value

QC_RANGE = "qc_range"
QC_FLATLINE = "qc_flatline"
QC_SPIKE = "qc_spike"
QC_ICING = "qc_icing"

#: statistics whose value is in the measured unit (range applies)
RANGE_STATISTICS = frozenset(
    {"avg", "min", "max", "gust", "median", "sample", "vector_avg", "mode", "sum"}
)
#: spreads: must not be negative
SPREAD_STATISTICS = frozenset({"sd", "range"})

DEFAULT_RANGES: Mapping[str, tuple[float, float]] = {
    "wind_speed": (0.0, 75.0),  # m/s
    "motion_corrected_wind_speed": (0.0, 75.0),
    "vertical_wind_speed": (-20.0, 20.0),
    "wind_direction": (0.0, 360.0),  # deg
    "motion_corrected_wind_direction": (0.0, 360.0),
    "air_temperature": (-60.0, 60.0),  # degC
    "relative_humidity": (0.0, 105.0),  # %
    "air_pressure": (500.0, 1100.0),  # hPa
    "air_density": (0.7, 1.6),  # kg/m^3
    "precipitation": (0.0, 100.0),  # mm per record
    "global_horizontal_irradiance": (-10.0, 1500.0),  # W/m^2
    "voltage": (0.0, 50.0),  # V
}
#: consecutive identical ``avg`` values that make a flat line [records]
DEFAULT_FLATLINE: Mapping[str, int] = {
    "wind_speed": 6,
    "wind_direction": 6,
    "air_temperature": 12,
}
#: a jump away from both neighbours and back, in the measured unit
DEFAULT_SPIKE: Mapping[str, float] = {
    "wind_speed": 10.0,
    "air_temperature": 5.0,
    "air_pressure": 5.0,
    "relative_humidity": 30.0,
}
ICING_TYPES = ("wind_speed", "wind_direction")
#: records further apart than this do not form runs or neighbours [min]
DEFAULT_MAX_GAP_MINUTES = 360.0


@dataclass(frozen=True)
class QcConfig:
    """Automatic QC parameters of one station."""

    enabled: bool = True
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_RANGES))
    flatline: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_FLATLINE))
    spike: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPIKE))
    icing: bool = True
    #: the reference temperature point; None: the highest air_temperature point
    icing_temperature_point: str | None = None
    icing_below_c: float = 2.0
    icing_steps: int = 3
    #: records further apart than this are not neighbours for the window rules [min]
    max_gap_minutes: float = DEFAULT_MAX_GAP_MINUTES

    def range_for(
        self, measurement_type: str | None, statistic: str | None
    ) -> tuple[float, float] | None:
        """``(min, max)`` a value must lie in, or None when no range applies."""
        if not self.enabled or measurement_type is None:
            return None
        if statistic in SPREAD_STATISTICS:
            return (0.0, float("inf")) if measurement_type in self.ranges else None
        if statistic in RANGE_STATISTICS:
            return self.ranges.get(measurement_type)
        return None

    def temperature_point(self, meta: StationMetadata) -> str | None:
        """The air temperature the icing rule compares against."""
        if self.icing_temperature_point is not None:
            return self.icing_temperature_point
        candidates = [p for p in meta.points if p.measurement_type == "air_temperature"]
        if not candidates:
            return None
        best = max(
            candidates, key=lambda p: (p.height_m if p.height_m is not None else -1e9, p.name)
        )
        return best.name


def parse_qc_config(station: StationConfig) -> QcConfig:
    """Validate ``[stations.<id>.qc]``; missing keys keep the defaults."""
    raw = station.extra.get("qc")
    if raw is None:
        return QcConfig()
    s = Section(raw, f"stations.{station.id}.qc")
    enabled = s.flag("enabled")
    ranges = dict(DEFAULT_RANGES)
    t = s.table("range")
    if t is not None:
        for mtype in list(t.data):
            _check_type(t, mtype)
            value = t.raw(mtype)
            if value is False:
                ranges.pop(mtype, None)
                continue
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                or value[0] >= value[1]
            ):
                raise ConfigError(
                    f"{t.key(mtype)}: expected [min, max] with min < max, or false, got {show_value(value)}"
                )
            ranges[mtype] = (float(value[0]), float(value[1]))
    flatline = dict(DEFAULT_FLATLINE)
    t = s.table("flatline")
    if t is not None:
        for mtype in list(t.data):
            _check_type(t, mtype)
            steps = t.integer(mtype, 0, minimum=0, maximum=100_000)
            if steps < 2:
                flatline.pop(mtype, None)
            else:
                flatline[mtype] = steps
    spike = dict(DEFAULT_SPIKE)
    t = s.table("spike")
    if t is not None:
        for mtype in list(t.data):
            _check_type(t, mtype)
            jump = t.number(mtype, lo=0)
            if not jump:
                spike.pop(mtype, None)
            else:
                spike[mtype] = jump
    icing = QcConfig()
    t = s.table("icing")
    icing_enabled, point, below, steps = True, None, icing.icing_below_c, icing.icing_steps
    if t is not None:
        flag = t.flag("enabled")
        icing_enabled = True if flag is None else flag
        point = t.text("temperature_point")
        value = t.number("below", lo=-80, hi=40, unit=" degC")
        below = below if value is None else value
        steps = t.integer("steps", steps, minimum=2, maximum=100_000)
        t.done(("enabled", "temperature_point", "below", "steps"))
    gap = s.number("max_gap_minutes", lo=0.001, hi=366 * 24 * 60, unit=" min")
    s.done(("enabled", "range", "flatline", "spike", "icing", "max_gap_minutes"))
    return QcConfig(
        enabled=True if enabled is None else enabled,
        ranges=ranges,
        flatline=flatline,
        spike=spike,
        icing=icing_enabled,
        icing_temperature_point=point,
        icing_below_c=below,
        icing_steps=steps,
        max_gap_minutes=DEFAULT_MAX_GAP_MINUTES if gap is None else gap,
    )


def _check_type(t: Section, mtype: str) -> None:
    if mtype not in MEASUREMENT_TYPES:
        raise ConfigError(
            f"{t.key(mtype)}: unknown measurement type; expected an IEA measurement_type_id "
            f"such as {', '.join(sorted(DEFAULT_RANGES)[:5])}, ..."
        )


# ---------------------------------------------------------------- SQL


def qc_types(cfg: QcConfig) -> set[str]:
    """Measurement types the window rules (flat line, spike, icing) look at."""
    if not cfg.enabled:
        return set()
    types = set(cfg.flatline) | set(cfg.spike)
    if cfg.icing:
        types |= set(ICING_TYPES)
    return types


def margin(cfg: QcConfig) -> timedelta:
    """How far the window rules look before and after a record.

    A run of N records linked by gaps of at most ``max_gap`` spans at most
    (N - 1) gaps; a spike looks one gap each way. Rows further than this
    from a period cannot change its flags.
    """
    types = qc_types(cfg)
    if not types:
        return timedelta(0)
    steps = [2]
    steps += [n for t, n in cfg.flatline.items() if t in types]
    if cfg.icing:
        steps.append(cfg.icing_steps)
    return timedelta(minutes=cfg.max_gap_minutes) * max(steps)


#: bits of the QC mask the engine carries per row
QC_BITS: Mapping[str, int] = {QC_FLATLINE: 1, QC_SPIKE: 2, QC_ICING: 4, QC_RANGE: 8}


#: ``st`` codes of the rows the window rules read
AVG, SD = 1, 2


def hits_sql(base: str, max_gap: timedelta) -> str:
    """SQL for the flat-line, spike and icing hits over the relation ``base``.

    ``base`` yields ``point`` (an integer point id), ``st`` (:data:`AVG` or
    :data:`SD`), ``timestamp``, ``value`` and ``raw_value`` of mapped,
    deduplicated, calibrated rows; integers keep the windows small. Parameters
    come from two tables the engine registers: ``qc_params(point, flat_steps,
    spike, icing)`` (one row per point the rules look at; 0 disables a rule)
    and ``qc_temperature(point, below)`` (zero or one row). The result has one
    row per (point, timestamp) hit with the OR of the :data:`QC_BITS` of its
    flags in ``mask``. Records more than ``max_gap`` apart are not neighbours.
    """
    gap_us = round(max_gap / timedelta(microseconds=1))
    near = f"epoch_us(timestamp) - epoch_us(lag(timestamp) OVER w) <= {gap_us}"
    near_next = f"epoch_us(lead(timestamp) OVER w) - epoch_us(timestamp) <= {gap_us}"
    return f"""
WITH base AS ({base}),
avg_rows AS (
    SELECT point, timestamp, value, raw_value FROM base
    WHERE st = {AVG} AND point IN (SELECT point FROM qc_params)
),
neighbours AS (
    SELECT *,
        CASE WHEN raw_value = lag(raw_value) OVER w AND {near} THEN 0 ELSE 1 END AS brk,
        CASE WHEN {near} THEN lag(value) OVER w END AS prev_value,
        CASE WHEN {near_next} THEN lead(value) OVER w END AS next_value
    FROM avg_rows
    WINDOW w AS (PARTITION BY point ORDER BY timestamp)
),
runs AS (
    SELECT *, sum(brk) OVER (
        PARTITION BY point ORDER BY timestamp ROWS UNBOUNDED PRECEDING) AS grp
    FROM neighbours
),
lengths AS (
    SELECT r.point, r.timestamp, r.value, r.raw_value, r.prev_value, r.next_value,
        count(*) OVER (PARTITION BY r.point, r.grp) AS run
    FROM runs r
),
ruled AS (
    SELECT l.*, q.flat_steps, q.spike, q.icing FROM lengths l JOIN qc_params q USING (point)
),
temperature AS (
    SELECT b.timestamp, b.value AS t, q.below
    FROM base b JOIN qc_temperature q ON q.point = b.point
    WHERE b.st = {AVG} AND b.value IS NOT NULL
),
stuck AS (
    SELECT point, timestamp FROM ruled
    WHERE icing > 0 AND raw_value IS NOT NULL AND run >= icing
    UNION
    SELECT b.point, b.timestamp
    FROM base b JOIN qc_params q ON q.point = b.point
    WHERE q.icing > 0 AND b.st = {SD} AND b.raw_value = 0
),
hits AS (
    SELECT point, timestamp, {QC_BITS[QC_FLATLINE]} AS bit FROM ruled
    WHERE flat_steps > 0 AND raw_value IS NOT NULL AND run >= flat_steps
    UNION ALL
    SELECT point, timestamp, {QC_BITS[QC_SPIKE]} FROM ruled
    WHERE spike > 0
        AND abs(value - prev_value) > spike AND abs(value - next_value) > spike
        AND sign(value - prev_value) = sign(value - next_value)
    UNION ALL
    SELECT s.point, s.timestamp, {QC_BITS[QC_ICING]}
    FROM stuck s JOIN temperature t ON t.timestamp = s.timestamp
    WHERE t.t < t.below
)
SELECT point, timestamp, bit_or(bit) AS mask FROM hits GROUP BY point, timestamp
"""
