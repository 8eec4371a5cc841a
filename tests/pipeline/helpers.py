"""A tiny station in a temporary folder, for pipeline and CLI tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stationkit.config import Config, load_config
from tests.export.clean import STEP, Reading, make_config, write_clean

HEADER = (
    '"TOA5","M1","CR1000X","1","CR1000X.Std.07","CPU:m.CR1X","1","Ten"\r\n'
    '"TIMESTAMP","RECORD","WS_Avg","WS_Std","Note"\r\n'
    '"TS","RN","m/s","m/s",""\r\n'
    '"","","Avg","Std","Smp"\r\n'
)


def toa5(rows: list[tuple[str, float, float]]) -> str:
    body = "".join(f'"{ts}",{i},{a},{s},"x"\r\n' for i, (ts, a, s) in enumerate(rows))
    return HEADER + body


def make_station(tmp_path: Path, extra: str = "") -> tuple[Config, Path]:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (tmp_path / "stations.toml").write_text(
        f"""
[stations.M1]
utc_offset_hours = 1
timestamp_is_end_of_period = true
averaging_period_minutes = 10
{extra}
[stations.M1.source]
kind = "local"
path = "incoming"
patterns = ["*.dat", "*.bin"]
"""
    )
    return load_config(tmp_path / "stations.toml"), incoming


def suspect_station(tmp_path: Path, extra_top: str = "") -> Path:
    """Ten days of data in two files (January, February); over the last seven
    days Spd80mN is hit by qc_icing at 30 % and qc_flatline at 5 %, Tmp2m by
    qc_range at 15 % (and at 100 % before the window), Dir78mS by a manual flag."""
    config = make_config(tmp_path)
    if extra_top:
        conf = tmp_path / "stations.toml"
        conf.write_text(extra_top + conf.read_text())
    end = datetime(2024, 2, 3, tzinfo=UTC)
    start = end - timedelta(days=10)
    window = end - timedelta(days=7)
    jan: list[Reading] = []
    feb: list[Reading] = []
    t = start
    i = 0
    while t < end:
        k = i % 100
        recent = t > window
        spd: tuple[str, ...] = ()
        if recent and k < 30:
            spd = ("qc_icing",)
        elif recent and k < 35:
            spd = ("qc_flatline",)
        tmp = ("qc_range",) if (k < 15 or not recent) else ()
        out = jan if t.month == 1 else feb
        out.append(Reading(t, "Spd80mN", "avg", 7.0, "wind_speed", 80.0, spd))
        out.append(Reading(t, "Spd80mN", "sd", 0.4, "wind_speed", 80.0, spd))
        out.append(Reading(t, "Tmp2m", "avg", 3.0, "air_temperature", 2.0, tmp))
        out.append(Reading(t, "Dir78mS", "avg", 180.0, "wind_direction", 78.0, ("maintenance",)))
        t += STEP
        i += 1
    write_clean(config.data_dir, jan, name="2024-01.parquet")
    write_clean(config.data_dir, feb, name="2024-02.parquet")
    return tmp_path / "stations.toml"
