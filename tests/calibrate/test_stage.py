"""The calibrate stage and the check stage end to end (fetch -> parse -> calibrate),
incremental rebuilds, a complete IEA demo station, and the CLI."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from stationkit.cli import cli
from stationkit.cli.calibrate import calibrate
from stationkit.cli.check import check
from stationkit.config import Config, load_config
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import (
    STAGE,
    CalibrateSummary,
    calibrate_station,
    clean_dir,
    clean_path,
)
from stationkit.pipeline.check import check_station
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station
from tests.calibrate.helpers import read_months
from tests.conftest import CORPUS, FIXTURES

for command in (calibrate, check):  # the lead registers them in cli/__init__.py
    if command.name not in cli.commands:
        cli.add_command(command)

IEA = FIXTURES / "calibrate" / "iea43_station.json"
HEADER = (
    '"TOA5","M1","CR1000X","1","CR1000X.Std.07","CPU:m.CR1X","1","Ten"\r\n'
    '"TIMESTAMP","RECORD","WS80_Avg","WS80_Std","WD78_Avg","T2_Avg","Extra"\r\n'
    '"TS","RN","m/s","m/s","deg","degC",""\r\n'
    '"","","Avg","Std","Avg","Avg","Avg"\r\n'
)


def toa5(rows: list[tuple[str, float, float, float, float]]) -> str:
    body = "".join(
        f'"{ts}",{i},{ws},{sd},{wd},{t},1\r\n' for i, (ts, ws, sd, wd, t) in enumerate(rows)
    )
    return HEADER + body


def station(tmp_path: Path, extra: str = "", *, metadata: Path | None = IEA) -> Config:
    (tmp_path / "incoming").mkdir(exist_ok=True)
    meta = f'metadata = "{metadata}"' if metadata else ""
    (tmp_path / "stations.toml").write_text(
        f"""
[stations.M1]
name = "Test mast"
utc_offset_hours = 1
timestamp_is_end_of_period = true
averaging_period_minutes = 10
{meta}
[stations.M1.source]
kind = "local"
path = "incoming"
patterns = ["*.dat", "*.txt"]
{extra}
"""
    )
    return load_config(tmp_path / "stations.toml")


def ingest(config: Config, ledger: Ledger) -> None:
    st = config.stations["M1"]
    fetch_station(config, st, ledger)
    parse = parse_station(config, st, ledger)
    assert parse.failed == 0, parse.errors


def clean(config: Config) -> pl.DataFrame:
    return read_months(clean_dir(config.data_dir, "M1"))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


DAY1 = [
    # end-of-period labels in UTC+1: 11:50 -> period start 10:40 UTC = 11:40 logger time
    ("2024-01-01 11:50:00", 10.2, 1.0, 180.0, 5.0),
    ("2024-01-01 12:00:00", 10.2, 1.0, 181.0, 5.0),
    ("2024-01-01 12:10:00", 10.2, 1.0, 182.0, 5.0),  # starts 12:00 logger time: the boundary
    ("2024-01-01 12:20:00", 10.2, 1.0, 183.0, 5.0),
]


def test_iea_station_calibrates_and_a_rerun_does_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = station(tmp_path)
    (tmp_path / "incoming" / "day1.dat").write_text(toa5(DAY1))
    st = config.stations["M1"]
    with Ledger(config.data_dir) as ledger:
        ingest(config, ledger)
        first = calibrate_station(config, st, ledger)
        assert first.built and first.rows == 4 * 5 and first.points == 4
        df = clean(config)
        out = clean_path(config.data_dir, "M1", "2024-01")
        before = out.stat()
        ws = df.filter((pl.col("point") == "WS80") & (pl.col("statistic") == "avg")).sort(
            "timestamp"
        )
        assert ws["timestamp"].to_list() == [
            utc("2024-01-01T10:40"), utc("2024-01-01T10:50"), utc("2024-01-01T11:00"),
            utc("2024-01-01T11:10"),
        ]  # fmt: skip
        # before 12:00 logger time: logger slope 0.05 / offset 0.2; from 12:00: 0.046 / 0.24;
        # certificate 0.0458 / 0.21
        old = 0.0458 * (10.2 - 0.2) / 0.05 + 0.21
        new = 0.0458 * (10.2 - 0.24) / 0.046 + 0.21
        assert ws["value"].to_list() == pytest.approx([old, old, new, new])
        assert ws["raw_value"].to_list() == [10.2] * 4
        sd = df.filter((pl.col("point") == "WS80") & (pl.col("statistic") == "sd")).sort(
            "timestamp"
        )
        assert sd["value"].to_list() == pytest.approx([0.0458 / 0.05] * 2 + [0.0458 / 0.046] * 2)
        wd = df.filter(pl.col("point") == "WD78")
        assert wd["value"].to_list() == wd["raw_value"].to_list()  # no calibration
        row = df.filter(pl.col("point") == "WS80").row(0, named=True)
        assert (row["measurement_type"], row["height_m"]) == ("wind_speed", 80.0)
        # the folder (station=M1) names the station; read from the lake's root it is a column
        lake = pl.scan_parquet(config.data_dir / "lake" / "clean").collect()
        assert "station" not in df.columns and lake["station"].unique().to_list() == ["M1"]
        extra = df.filter(pl.col("point") == "Extra")
        assert extra.height == 4 and extra["measurement_type"].null_count() == 4
        assert ledger.build_fingerprint("M1", STAGE) is not None

        caplog.set_level(logging.INFO, logger="stationkit")
        caplog.clear()
        second = calibrate_station(config, st, ledger)
        assert second == CalibrateSummary(
            "M1", up_to_date=True, files=1, output="lake/clean/station=M1", months=1
        )
        assert "M1: clean data up to date, nothing to do" in caplog.messages
        after = out.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

        # new data: rebuilt; forcing gives the same bytes
        (tmp_path / "incoming" / "day2.dat").write_text(
            toa5([("2024-01-02 00:10:00", 8.0, 0.5, 90.0, 3.0)])
        )
        ingest(config, ledger)
        assert calibrate_station(config, st, ledger).rows == 5 * 5
        data = out.read_bytes()
        assert calibrate_station(config, st, ledger, force=True).built
        assert out.read_bytes() == data


def test_flags_change_rebuilds_and_flags_reach_the_rows(tmp_path: Path) -> None:
    config = station(tmp_path)
    (tmp_path / "incoming" / "day1.dat").write_text(toa5(DAY1))
    with Ledger(config.data_dir) as ledger:
        ingest(config, ledger)
        calibrate_station(config, config.stations["M1"], ledger)
        (tmp_path / "site_flags.csv").write_text(
            "station,point,start,end,flag,reason\nM1,WS80,2024-01-01 11:40,2024-01-01 12:00,mast_work,\n"
        )
        config = station(tmp_path, '[stations.M1.flags]\nfiles = ["site_flags.csv"]\n')
        rebuilt = calibrate_station(config, config.stations["M1"], ledger)
        assert rebuilt.built and rebuilt.flagged == 2 * 2  # two records, avg and sd
        df = clean(config)
        flagged = df.filter(pl.col("flags").list.contains("mast_work"))
        assert sorted(set(flagged["timestamp"].to_list())) == [
            utc("2024-01-01T10:40"),
            utc("2024-01-01T10:50"),
        ]
        # a change of the flags file alone rebuilds too
        assert calibrate_station(config, config.stations["M1"], ledger).up_to_date
        (tmp_path / "site_flags.csv").write_text("station,point,start,end\n")
        again = calibrate_station(config, config.stations["M1"], ledger)
        assert again.built and again.flagged == 0


def test_windographer_log_among_the_station_files_flags_its_columns(tmp_path: Path) -> None:
    config = station(tmp_path)
    (tmp_path / "incoming" / "day1.dat").write_text(toa5(DAY1))
    (tmp_path / "incoming" / "flags.txt").write_text(
        "Data Column\tFlag Name\tStart Time\tEnd Time\tTime Steps\n"
        "WS80_Avg\tIcing\t2024-01-01 11:50\t2024-01-01 12:10\t2\n"
    )
    with Ledger(config.data_dir) as ledger:
        ingest(config, ledger)
        calibrate_station(config, config.stations["M1"], ledger)
    df = clean(config).filter(pl.col("flags").list.len() > 0)
    assert [(r["point"], r["statistic"], r["flags"]) for r in df.iter_rows(named=True)] == [
        ("WS80", "avg", ["Icing"]),
        ("WS80", "avg", ["Icing"]),
    ]


def test_station_without_metadata_is_the_identity(tmp_path: Path) -> None:
    config = station(tmp_path, metadata=None)
    (tmp_path / "incoming" / "day1.dat").write_text(toa5(DAY1))
    with Ledger(config.data_dir) as ledger:
        ingest(config, ledger)
        summary = calibrate_station(config, config.stations["M1"], ledger)
        report = check_station(config, config.stations["M1"], ledger)
    df = clean(config)
    assert summary.points == 5
    assert sorted(df["point"].unique()) == ["Extra", "T2_Avg", "WD78_Avg", "WS80_Avg", "WS80_Std"]
    assert df["value"].to_list() == df["raw_value"].to_list()
    assert (report.metadata, report.unmapped_columns, report.problems) == ([], [], 0)


def test_complete_iea_demo_station(tmp_path: Path) -> None:
    """brightwind's demo mast: its logger file, its IEA Task 43 document and
    its Windographer flagging log, as a user would drop them in."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    shutil.copy(CORPUS / "TOA5" / "brightwind-dev__brightwind__campbell_scientific_demo_data1.csv",
                incoming / "demo.dat")  # fmt: skip
    shutil.copy(
        CORPUS / "WINDOGRAPHER_TXT" / "brightwind-dev__brightwind__windographer_flagging_log.txt",
        incoming / "flagging_log.txt",
    )
    doc = CORPUS / "IEA43_JSON" / "brightwind-dev__brightwind__demo_data_iea43_wra_data_model.json"
    (tmp_path / "stations.toml").write_text(
        f"""
[stations.DEMO]
name = "Demo Mast"
timestamp_is_end_of_period = false   # Windographer: "time stamps indicate the beginning"
metadata = "{doc}"
[stations.DEMO.source]
kind = "local"
path = "incoming"
"""
    )
    config = load_config(tmp_path / "stations.toml")
    st = config.stations["DEMO"]
    with Ledger(config.data_dir) as ledger:
        fetch_station(config, st, ledger)
        assert parse_station(config, st, ledger).failed == 0
        summary = calibrate_station(config, st, ledger)
        report = check_station(config, st, ledger)
    assert summary.built and summary.rows == 188 * 30
    df = read_months(clean_dir(config.data_dir, "DEMO"))
    first = utc("2016-01-09T15:30")

    def row(point: str, statistic: str) -> dict[str, object]:
        r = df.filter(
            (pl.col("point") == point)
            & (pl.col("statistic") == statistic)
            & (pl.col("timestamp") == first)
        )
        assert r.height == 1
        return r.row(0, named=True)

    s = row("Spd80mS", "avg")  # logger 0.8445 / 0.321, certificate 0.84449 / 0.3209
    assert s["value"] == pytest.approx(0.84449 * (7.911 - 0.321) / 0.8445 + 0.3209)
    assert s["flags"] == ["Installation"]
    sd = row("Spd80mS", "sd")
    assert sd["value"] == pytest.approx(1.075 * 0.84449 / 0.8445)
    t = row("T2m", "avg")  # the file says Smp, the metadata says avg: the metadata wins
    assert (t["measurement_type"], t["value"]) == ("air_temperature", 0.711)
    assert row("LoggerID", "sample")["value"] == 7000.0  # no metadata: its own point
    assert report.unmapped_columns == ["LoggerID"] and report.points_without_data == []
    assert report.flag_periods > 200


# ---------------------------------------------------------------- CLI


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["calibrate", "check"])
def test_help_has_an_example(name: str) -> None:
    code, out, _ = invoke(name, "--help")
    assert code == 0 and "Example" in out


def test_cli_calibrate_and_check(tmp_path: Path) -> None:
    station(tmp_path)
    (tmp_path / "incoming" / "day1.dat").write_text(toa5(DAY1))
    conf = str(tmp_path / "stations.toml")
    assert invoke("--config", conf, "fetch")[0] == 0
    assert invoke("--config", conf, "parse")[0] == 0
    code, out, err = invoke("--config", conf, "calibrate", "--json")
    assert (code, err) == (0, "")
    (result,) = json.loads(out)
    assert result["built"] and result["rows"] == 20
    code, out, _ = invoke("--config", conf, "calibrate", "--json")
    assert code == 0 and json.loads(out)[0]["up_to_date"]
    # run calibrates too: with nothing new it has nothing to rebuild
    code, out, _ = invoke("--config", conf, "run", "--json")
    assert code == 0 and json.loads(out)["stations"]["M1"]["calibrate"]["up_to_date"]
    code, out, _ = invoke("--config", conf, "check")
    assert code == 0
    assert out.startswith("M1: metadata iea43_station.json; 3 points, 5 channels in the data")
    assert "columns without a point (calibrated as their own points): Extra" in out
    assert invoke("--config", conf, "check", "--strict")[0] == 1


def test_cli_invalid_metadata_is_exit_1_with_the_json_path(tmp_path: Path) -> None:
    doc = json.loads(IEA.read_text())
    doc["measurement_location"][0]["measurement_point"][0]["height_m"] = "high"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    station(tmp_path, metadata=bad)
    conf = str(tmp_path / "stations.toml")
    code, _, err = invoke("--config", conf, "calibrate")
    assert code == 1
    assert (
        "stationkit: error: M1: bad.json: measurement_location[0].measurement_point[0].height_m: "
        'expected a number, got "high"' in err
    )
    code, _, err = invoke("--config", conf, "check")
    assert code == 1 and "measurement_point[0].height_m" in err


def test_vendor_header_slope_from_the_ledger_is_the_logger_config(tmp_path: Path) -> None:
    """An NRG file states "Scale Factor" and "Offset"; the parser keeps them in
    the channel's attrs; with no slope in the metadata they are what the logger
    applied."""
    import polars as pl_

    from stationkit.parsers.base import ChannelInfo
    from stationkit.store import readings_path, write_readings

    (tmp_path / "stations.toml").write_text(
        """
[stations.N1.points.WS]
measurement_type = "wind_speed"
columns = { avg = "Ch1_Anem_80m_Avg" }
[stations.N1.sensors.A1]
point = "WS"
slope = 0.7600
offset = 0.40
"""
    )
    config = load_config(tmp_path / "stations.toml")
    ch = ChannelInfo(
        "Ch1_Anem_80m_Avg", statistic="avg", attrs={"scale_factor": 0.765, "offset": 0.35}
    )
    with Ledger(config.data_dir) as ledger:
        fid = ledger.add_file(station="N1", origin="add", source_path="a.rwd",
                              path="raw/N1/a.rwd", size=1, mtime=None, sha256="0" * 64)  # fmt: skip
        out = readings_path(config.data_dir, "N1", fid)
        frame = pl_.DataFrame(
            {"timestamp": [utc("2024-01-01T00:00")], "Ch1_Anem_80m_Avg": [8.0]},
            schema={"timestamp": pl_.Datetime("us", "UTC"), "Ch1_Anem_80m_Avg": pl_.Float64},
        )
        write_readings(out, "N1", fid, frame, [ch])
        ledger.record_parse(
            fid, "N1", "ok", format="nrg_symphonie", rows=1, readings=1,
            first_ts="2024-01-01T00:00:00.000000Z", last_ts="2024-01-01T00:00:00.000000Z",
            channels=[{"name": ch.name, "statistic": "avg", "unit": "m/s", "height_m": 80.0,
                       "attrs": dict(ch.attrs)}],
            meta={"time": {"utc_offset_hours": 0.0}}, warnings=[],
            output=out.relative_to(config.data_dir).as_posix(),
        )  # fmt: skip
        calibrate_station(config, config.stations["N1"], ledger)
    (row,) = read_months(clean_dir(config.data_dir, "N1")).iter_rows(named=True)
    assert row["value"] == pytest.approx(0.76 * (8.0 - 0.35) / 0.765 + 0.40)


def test_cli_a_station_with_bad_settings_stops_the_command_before_any_work(
    tmp_path: Path,
) -> None:
    station(tmp_path, '[stations.M2]\nmetadata = "missing.json"\n')
    (tmp_path / "incoming" / "day1.dat").write_text(toa5(DAY1))
    conf = str(tmp_path / "stations.toml")
    assert invoke("--config", conf, "run", "M1")[0] == 0  # only the stations named are checked
    code, _, err = invoke("--config", conf, "calibrate")
    assert code == 1
    assert "stationkit: error: M2: stations.M2.metadata: " in err
    assert "missing.json: no such metadata document" in err
