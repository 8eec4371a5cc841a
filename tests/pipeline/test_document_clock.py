"""A station whose clock settings come only from its IEA Task 43 document: parse,
calibrate, export, report and check all use the one resolved clock."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

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

IEA = FIXTURES / "calibrate" / "iea43_station.json"  # offset_from_utc_hrs 1, end of period, 10 min
HEADER = (
    '"TOA5","M1","CR1000X","1","CR1000X.Std.07","CPU:m.CR1X","1","Ten"\r\n'
    '"TIMESTAMP","RECORD","WD78_Avg"\r\n'
    '"TS","RN","deg"\r\n'
    '"","","Avg"\r\n'
)


def toa5(*labels: str) -> str:
    return HEADER + "".join(f'"{ts}",{i},{180 + i}\r\n' for i, ts in enumerate(labels))


def station(tmp_path: Path, clock: str = "", *, metadata: Path = IEA) -> Config:
    (tmp_path / "incoming").mkdir(exist_ok=True)
    (tmp_path / "stations.toml").write_text(
        f"""
[stations.M1]
name = "Test mast"
metadata = "{metadata}"
{clock}
[stations.M1.source]
kind = "local"
path = "incoming"
patterns = ["*.dat"]
"""
    )
    return load_config(tmp_path / "stations.toml")


def build(config: Config) -> None:
    st = config.stations["M1"]
    with Ledger(config.data_dir) as ledger:
        fetch_station(config, st, ledger)
        assert parse_station(config, st, ledger).failed == 0
        assert calibrate_station(config, st, ledger).built


def export_rows(config: Config, fmt: str) -> tuple[str, list[list[str]]]:
    with Ledger(config.data_dir) as ledger:
        summary = export_station(config, config.stations["M1"], ledger, fmt=fmt)
    text = (config.data_dir / summary.files[0]).read_bytes().decode()
    if fmt == "windographer":
        lines = text.split("\r\n")
        start = next(i for i, line in enumerate(lines) if line.startswith("Date/Time"))
        return summary.time_zone, [line.split("\t") for line in lines[start + 1 :] if line]
    return summary.time_zone, list(csv.reader(io.StringIO(text)))[1:]


def clean_times(config: Config) -> list[datetime]:
    df = pl.concat([pl.read_parquet(p) for p in clean_files(config.data_dir, "M1")])
    return sorted(set(df.get_column("timestamp").to_list()))


def test_an_offset_only_the_document_states_reaches_the_exports(tmp_path: Path) -> None:
    """The exports wrote UTC labelled as local time: they read only stations.toml."""
    config = station(tmp_path)
    # end-of-period labels of a logger in UTC+1: 12:10 is the period 12:00-12:10 local
    (tmp_path / "incoming" / "a.dat").write_text(toa5("2024-01-01 12:10:00", "2024-01-01 12:20:00"))
    build(config)
    assert clean_times(config) == [
        datetime(2024, 1, 1, 11, 0, tzinfo=UTC),
        datetime(2024, 1, 1, 11, 10, tzinfo=UTC),
    ]
    zone, rows = export_rows(config, "windographer")
    assert zone == "UTC+01:00"
    assert [r[0] for r in rows] == ["2024-01-01 12:00:00", "2024-01-01 12:10:00"]
    zone, rows = export_rows(config, "csv")
    assert zone == "UTC+01:00"
    assert [r[0] for r in rows] == ["2024-01-01 12:00:00+01:00", "2024-01-01 12:10:00+01:00"]
    report = report_station(config, config.stations["M1"])
    assert report.time_zone == "UTC+01:00" and report.step_minutes == 10
    assert [(r.month, r.first) for r in report.rows] == [("2024-01", datetime(2024, 1, 1, 12))]
    with Ledger(config.data_dir) as ledger:
        assert check_station(config, config.stations["M1"], ledger).warnings == []


def test_the_station_setting_wins_and_check_says_it_overrides_the_document(
    tmp_path: Path,
) -> None:
    config = station(tmp_path, "utc_offset_hours = 2")
    (tmp_path / "incoming" / "a.dat").write_text(toa5("2024-01-01 12:10:00"))
    build(config)
    assert clean_times(config) == [datetime(2024, 1, 1, 10, 0, tzinfo=UTC)]
    zone, rows = export_rows(config, "windographer")
    assert (zone, [r[0] for r in rows]) == ("UTC+02:00", ["2024-01-01 12:00:00"])
    with Ledger(config.data_dir) as ledger:
        report = check_station(config, config.stations["M1"], ledger)
    assert report.warnings == [
        "stations.M1.utc_offset_hours = 2 overrides the IEA document's offset_from_utc_hrs = 1 "
        "(iea43_station.json: measurement_location[0].logger_main_config[0]); "
        "the station setting is used everywhere"
    ]
    assert report.problems == len(report.points_without_data) + 1  # --strict fails on it


def test_a_document_whose_offset_changes_converts_each_file_with_its_own(
    tmp_path: Path,
) -> None:
    doc = json.loads(IEA.read_text())
    loc = doc["measurement_location"][0]
    first = loc["logger_main_config"][0]
    loc["logger_main_config"] = [
        {**first, "date_to": "2024-01-02T00:00:00"},
        {**first, "date_from": "2024-01-02T00:00:00", "offset_from_utc_hrs": 2},
    ]
    path = tmp_path / "clock_change.json"
    path.write_text(json.dumps(doc))
    config = station(tmp_path, metadata=path)
    incoming = tmp_path / "incoming"
    (incoming / "a.dat").write_text(toa5("2024-01-01 12:10:00"))  # UTC+1
    (incoming / "b.dat").write_text(toa5("2024-01-02 12:10:00"))  # UTC+2
    (incoming / "c.dat").write_text(toa5("2024-01-01 23:50:00", "2024-01-02 00:10:00"))
    build(config)
    assert clean_times(config) == [
        datetime(2024, 1, 1, 11, 0, tzinfo=UTC),
        datetime(2024, 1, 1, 22, 40, tzinfo=UTC),
        datetime(2024, 1, 1, 23, 0, tzinfo=UTC),  # c.dat: the settings of its first label
        datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
    ]
    with Ledger(config.data_dir) as ledger:
        events = [e["message"] for e in ledger.conn.execute("SELECT message FROM events")]
    assert any(
        m.startswith("raw/M1/c.dat: the clock settings of the IEA document change within this file")
        for m in events
    ), events
    zone, rows = export_rows(config, "windographer")  # local time: the clock in force now
    assert zone == "UTC+02:00" and rows[-1][0] == "2024-01-02 12:00:00"
    # moving the change in the document re-parses the station
    loc["logger_main_config"][0]["date_to"] = loc["logger_main_config"][1]["date_from"] = (
        "2024-01-01T12:05:00"
    )
    path.write_text(json.dumps(doc))
    with Ledger(config.data_dir) as ledger:
        again = parse_station(config, config.stations["M1"], ledger)
    assert again.reparsed == 3
    assert datetime(2024, 1, 1, 10, 0, tzinfo=UTC) in pl.read_parquet(
        config.data_dir / "lake" / "readings" / "station=M1"
    ).get_column("timestamp")
