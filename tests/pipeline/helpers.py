"""A tiny station in a temporary folder, for pipeline and CLI tests."""

from __future__ import annotations

from pathlib import Path

from stationkit.config import Config, load_config

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
