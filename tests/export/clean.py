"""Small lake/clean stations for the export tests, written with pyarrow in
DESIGN's exact lake/clean schema."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stationkit.config import Config, load_config

CLEAN_SCHEMA = pa.schema(
    [
        pa.field("station", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("point", pa.string(), nullable=False),
        pa.field("measurement_type", pa.string()),
        pa.field("height_m", pa.float64()),
        pa.field("statistic", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("raw_value", pa.float64()),
        pa.field("flags", pa.list_(pa.string()), nullable=False),
        pa.field("file_id", pa.int64(), nullable=False),
    ]
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


@dataclass(frozen=True)
class Reading:
    """One lake/clean row."""

    timestamp: datetime
    point: str
    statistic: str | None
    value: float | None
    measurement_type: str | None = None
    height_m: float | None = None
    flags: tuple[str, ...] = ()
    raw_value: float | None = None
    file_id: int = 1


#: (point, measurement_type, height_m, statistics) of the tiny station
TINY_POINTS: Sequence[tuple[str, str | None, float | None, tuple[str | None, ...]]] = (
    ("Spd80mN", "wind_speed", 80.0, ("avg", "sd")),
    ("Spd80mS", "wind_speed", 80.0, ("avg", "max")),
    ("Dir78mS", "wind_direction", 78.0, ("avg",)),
    ("Tmp2m", "air_temperature", 2.0, ("avg",)),
    ("BattV", None, None, ("min",)),
)


def table(readings: Iterable[Reading], station: str = "M001") -> pa.Table:
    rows = list(readings)
    return pa.Table.from_pydict(
        {
            "station": [station] * len(rows),
            "timestamp": [r.timestamp for r in rows],
            "point": [r.point for r in rows],
            "measurement_type": [r.measurement_type for r in rows],
            "height_m": [r.height_m for r in rows],
            "statistic": [r.statistic for r in rows],
            "value": [r.value for r in rows],
            "raw_value": [r.value if r.raw_value is None else r.raw_value for r in rows],
            "flags": [list(r.flags) for r in rows],
            "file_id": [r.file_id for r in rows],
        },
        schema=CLEAN_SCHEMA,
    )


def write_clean(
    data_dir: Path,
    readings: Iterable[Reading],
    *,
    station: str = "M001",
    name: str = "part-000.parquet",
    row_group_size: int | None = None,
) -> Path:
    folder = data_dir / "lake" / "clean" / f"station={station}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pq.write_table(table(readings, station), path, row_group_size=row_group_size)
    return path


@dataclass
class Tiny:
    """A tiny station's readings, with the value of every (point, statistic, t)."""

    readings: list[Reading] = field(default_factory=list)

    def value(self, point: str, statistic: str | None, t: datetime) -> float | None:
        for r in self.readings:
            if (r.point, r.statistic, r.timestamp) == (point, statistic, t):
                return r.value
        raise KeyError((point, statistic, t))


def tiny_readings(
    steps: int = 3,
    *,
    start: datetime = T0,
    flags: dict[tuple[str, str | None, int], tuple[str, ...]] | None = None,
    values: dict[tuple[str, str | None, int], float | None] | None = None,
) -> Tiny:
    """Every point and statistic of TINY_POINTS at ``steps`` 10-min steps.

    Values are simple, distinct numbers; ``values`` overrides some (None:
    missing) and ``flags`` flags some, keyed by (point, statistic, step).
    """
    flags = flags or {}
    values = values or {}
    out = Tiny()
    for i in range(steps):
        t = start + i * STEP
        for k, (point, mtype, height, stats) in enumerate(TINY_POINTS):
            for j, stat in enumerate(stats):
                key = (point, stat, i)
                value = values[key] if key in values else round(k * 10 + j + i * 0.1 + 0.37, 6)
                out.readings.append(
                    Reading(t, point, stat, value, mtype, height, flags.get(key, ()))
                )
    return out


def make_config(tmp_path: Path, extra: str = "", *, offset: float = 1) -> Config:
    (tmp_path / "stations.toml").write_text(
        f"""
[stations.M001]
name = "Tiny mast"
latitude = 53.21
longitude = -7.12
elevation_m = 120
utc_offset_hours = {offset}
timestamp_is_end_of_period = true
averaging_period_minutes = 10
{extra}
"""
    )
    return load_config(tmp_path / "stations.toml")
