"""A small fleet of stations built through the real pipeline (fetch -> parse
-> calibrate), for the API and lake-layout tests.

Every station logs in UTC+1 with end-of-period labels, 10-minute periods,
two points with metadata (``WS80``: wind speed at 80 m, avg and sd; ``T2``:
air temperature at 2 m) and a manual flag. Its data crosses a UTC month
boundary, and two of its files overlap:

* ``a.dat``: 24 periods starting 2024-01-31 22:00 UTC (23:00 logger time)
  through 2024-02-01 01:50 UTC -- 12 in January, 12 in February (UTC);
* ``b.dat``: re-sent last 4 periods of a.dat with other values, then 2 more
  (through 02:10 UTC). The clean layer keeps b's values where they overlap.

``maintenance`` flags WS80 from 02:00 to 02:30 logger time: the periods
starting 01:00, 01:10 and 01:20 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stationkit.config import Config, load_config
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import calibrate_station
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station

HEADER = (
    '"TOA5","{sid}","CR1000X","1","CR1000X.Std.07","CPU:m.CR1X","1","Ten"\r\n'
    '"TIMESTAMP","RECORD","WS80_Avg","WS80_Std","T2_Avg"\r\n'
    '"TS","RN","m/s","m/s","degC"\r\n'
    '"","","Avg","Std","Avg"\r\n'
)
STEP = timedelta(minutes=10)
#: period start [UTC] of a.dat's first row
A_START = datetime(2024, 1, 31, 22, 0, tzinfo=UTC)
A_ROWS = 24
#: b.dat starts at a.dat's 21st period
B_START = A_START + 20 * STEP
B_ROWS = 6
FLAGGED = [datetime(2024, 2, 1, 1, m, tzinfo=UTC) for m in (0, 10, 20)]
STATION = """
[stations.{sid}]
name = "Mast {sid}"
latitude = 53.2
longitude = -7.1
elevation_m = 120
utc_offset_hours = 1
timestamp_is_end_of_period = true
averaging_period_minutes = 10

[stations.{sid}.source]
kind = "local"
path = "incoming/{sid}"
patterns = ["*.dat"]

[stations.{sid}.points.WS80]
measurement_type = "wind_speed"
height_m = 80
columns = {{ avg = "WS80_Avg", sd = "WS80_Std" }}

[stations.{sid}.points.T2]
measurement_type = "air_temperature"
height_m = 2
columns = {{ avg = "T2_Avg" }}

[stations.{sid}.qc]
enabled = false

[[stations.{sid}.flags.periods]]
flag = "maintenance"
points = ["WS80"]
start = 2024-02-01T02:00:00
end = 2024-02-01T02:30:00
"""


def ws(i: int, offset: float = 0.0) -> float:
    """WS80_Avg of a.dat's row i (b.dat adds 100)."""
    return 5.0 + i / 4 + offset


def toa5(sid: str, start: datetime, rows: int, offset: float = 0.0) -> str:
    """Rows labelled at the END of each period, logger time (UTC+1)."""
    lines = []
    for i in range(rows):
        label = start + (i + 1) * STEP + timedelta(hours=1)
        k = round((start - A_START) / STEP) + i
        lines.append(f'"{label:%Y-%m-%d %H:%M:%S}",{i},{ws(k, offset)},{0.5 + offset},{-2 + k}\r\n')
    return HEADER.format(sid=sid) + "".join(lines)


def write_config(root: Path, ids: tuple[str, ...]) -> Path:
    """stations.toml for ``ids`` and each station's incoming files."""
    for sid in ids:
        incoming = root / "incoming" / sid
        incoming.mkdir(parents=True, exist_ok=True)
        (incoming / "a.dat").write_text(toa5(sid, A_START, A_ROWS))
        (incoming / "b.dat").write_text(toa5(sid, B_START, B_ROWS, offset=100.0))
    path = root / "stations.toml"
    path.write_text('data_dir = "data"\n' + "".join(STATION.format(sid=s) for s in ids))
    return path


def build(root: Path, ids: tuple[str, ...] = ("M1", "M2")) -> Config:
    """Write the fleet under ``root`` and fetch, parse and calibrate it."""
    config = load_config(write_config(root, ids))
    with Ledger(config.data_dir) as ledger:
        for sid in ids:
            st = config.stations[sid]
            fetch_station(config, st, ledger)
            parsed = parse_station(config, st, ledger)
            assert parsed.failed == 0, parsed.errors
            calibrate_station(config, st, ledger)
    return config
