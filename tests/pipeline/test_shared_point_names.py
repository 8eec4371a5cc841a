"""An IEA Task 43 document whose measurement points share names at different
heights (a lidar's range gates, an ADCP's depth bins), as the standard's own demo
data has: it loads, each column lands on its own point with its own calibration,
and exports, reports and flags name every point unambiguously."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pytest

from stationkit.config import Config, load_config
from stationkit.export.select import clean_files
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import calibrate_station
from stationkit.pipeline.check import check_station
from stationkit.pipeline.export import export_station
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station
from stationkit.pipeline.report import report_station
from tests.conftest import FIXTURES

DOC = FIXTURES / "calibrate" / "iea43_shared_point_names.json"
#: column -> (point it maps to, logged value)
COLUMNS = {
    "Spd_60m": ("Spd@60m", 9.5),
    "Spd_60m_SD": ("Spd@60m", 0.8),
    "Spd_40m": ("Spd@40m", 8.5),
    "Dir_60m": ("Dir60", 200.0),
    "vc1": ("WtrSpd@-5.5m", 0.41),
    "vc2": ("WtrSpd@-10.5m", 0.62),
    "vc3": ("WtrSpd@-15.5m", 0.23),
    "dc1": ("WtrDir@-5.5m", 91.0),
    "dc2": ("WtrDir@-10.5m", 92.0),
    "TiltX": ("Tilt@0m#1", 1.5),
    "TiltY": ("Tilt@0m#2", -2.5),
}
LABELS = [
    "WS 60m Mean",
    "WS 60m SD",
    "WS 40m Mean",
    "WD 60m Mean",
    "Tilt@0m#1 Mean",
    "Tilt@0m#2 Mean",
    "WtrDir@-5.5m Mean",
    "WtrDir@-10.5m Mean",
    "WtrSpd@-5.5m Mean",
    "WtrSpd@-10.5m Mean",
    "WtrSpd@-15.5m Mean",
]


def toa5(labels: list[str]) -> str:
    n = len(COLUMNS)
    head = (
        '"TOA5","B1","CR1000X","1","CR1000X.Std.07","CPU:b.CR1X","1","Ten"\r\n'
        + ",".join(['"TIMESTAMP"', '"RECORD"', *(f'"{c}"' for c in COLUMNS)])
        + "\r\n"
        + ",".join(['"TS"', '"RN"', *['""'] * n])
        + "\r\n"
        + ",".join(['""', '""', *['"Avg"'] * n])
        + "\r\n"
    )
    values = ",".join(str(v) for _, v in COLUMNS.values())
    return head + "".join(f'"{ts}",{i},{values}\r\n' for i, ts in enumerate(labels))


def station(tmp_path: Path) -> Config:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "buoy.dat").write_text(
        toa5(["2024-01-01 00:00:00", "2024-01-01 00:10:00"])
    )
    (tmp_path / "stations.toml").write_text(
        f"""
[stations.B1]
name = "Buoy 1"
metadata = "{DOC}"
[stations.B1.source]
kind = "local"
path = "incoming"
patterns = ["*.dat"]
[[stations.B1.flags.periods]]
flag = "biofouling"
points = ["WtrSpd"]     # the name the document gives every depth bin
start = 2024-01-01T00:10:00
end = 2024-01-01T00:20:00
"""
    )
    config = load_config(tmp_path / "stations.toml")
    st = config.stations["B1"]
    with Ledger(config.data_dir) as ledger:
        fetch_station(config, st, ledger)
        assert parse_station(config, st, ledger).failed == 0
        assert calibrate_station(config, st, ledger).built
    return config


def test_each_column_lands_on_its_own_point_with_its_own_calibration(tmp_path: Path) -> None:
    config = station(tmp_path)
    df = pl.concat([pl.read_parquet(p) for p in clean_files(config.data_dir, "B1")])
    first = df.filter(pl.col("timestamp") == pl.col("timestamp").min())
    got = {
        (r["point"], r["statistic"]): (r["raw_value"], r["value"], r["height_m"])
        for r in first.iter_rows(named=True)
    }
    assert len(got) == len(COLUMNS)  # one (point, statistic) per column, none merged
    heights = {"WtrSpd@-5.5m": -5.5, "WtrSpd@-10.5m": -10.5, "Tilt@0m#2": 0.0, "Spd@40m": 40.0}
    for column, (point, logged) in COLUMNS.items():
        stat = "sd" if column.endswith("_SD") else "avg"
        raw, value, height = got[(point, stat)]
        assert raw == logged, column
        if point in heights:
            assert height == heights[point]
        if column != "vc2":
            assert value == logged, column  # no calibration: exactly as logged
    # the -10.5 m bin alone: logger slope 2, certificate 1.01 / 0.02
    assert got[("WtrSpd@-10.5m", "avg")][1] == pytest.approx(1.01 * 0.62 / 2 + 0.02)
    flagged = sorted(
        r["point"] for r in df.filter(pl.col("flags").list.len() > 0).iter_rows(named=True)
    )
    assert flagged == ["WtrSpd@-10.5m", "WtrSpd@-15.5m", "WtrSpd@-5.5m"]
    with Ledger(config.data_dir) as ledger:
        report = check_station(config, config.stations["B1"], ledger)
    assert (report.points, report.unmapped_columns, report.warnings) == (10, [], [])


def test_exports_and_reports_label_every_point_unambiguously(tmp_path: Path) -> None:
    config = station(tmp_path)
    st = config.stations["B1"]
    with Ledger(config.data_dir) as ledger:
        wg = export_station(config, st, ledger, include_flagged=True)
        wide = export_station(config, st, ledger, fmt="csv", include_flagged=True)
    text = (config.data_dir / wg.files[0]).read_bytes().decode()
    header = next(line for line in text.split("\r\n") if line.startswith("Date/Time"))
    assert header.split("\t")[1:] == LABELS
    rows = list(csv.reader(io.StringIO((config.data_dir / wide.files[0]).read_text())))
    assert rows[0][1:] == LABELS
    by_label = dict(zip(rows[0], rows[1], strict=True))
    assert by_label["WtrSpd@-5.5m Mean"] == "0.41" and by_label["WtrSpd@-15.5m Mean"] == "0.23"
    assert by_label["Tilt@0m#2 Mean"] == "-2.5"
    report = report_station(config, st)
    assert sorted({r.point for r in report.rows}) == sorted({p for p, _ in COLUMNS.values()})
