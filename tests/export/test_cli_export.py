"""``stationkit export`` and ``stationkit report`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from stationkit.cli.export import export
from stationkit.cli.report import report
from tests.export.clean import make_config, tiny_readings, write_clean

FLAGS = {("Spd80mN", "avg", 1): ("icing",)}


def invoke(command: click.Command, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(command, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def station(tmp_path: Path, extra: str = "") -> str:
    make_config(tmp_path, extra)
    write_clean(tmp_path / "data", tiny_readings(3, flags=FLAGS).readings)
    return str(tmp_path / "stations.toml")


@pytest.mark.parametrize("command", [export, report])
def test_help_has_an_example(command: click.Command) -> None:
    code, out, _ = invoke(command, "--help")
    assert code == 0 and "Example" in out and command.help and "Example" in command.help


def test_export_json_then_up_to_date(tmp_path: Path) -> None:
    conf = station(tmp_path)
    code, out, err = invoke(export, "M001", "--config", conf, "--json", "--flag-log")
    assert (code, err) == (0, "")
    (result,) = json.loads(out)
    assert result["files"] == ["exports/M001/M001.txt", "exports/M001/M001_flagging_log.txt"]
    assert result["rows"] == 3 and result["excluded_flags"] == ["icing"] and not result["skipped"]
    text = (tmp_path / "data/exports/M001/M001.txt").read_text()
    assert "Excluded flags: icing" in text
    code, out, _ = invoke(export, "M001", "--config", conf, "--json", "--flag-log")
    assert code == 0 and json.loads(out)[0]["skipped"] is True
    code, out, _ = invoke(export, "--config", conf, "--flag-log", "-v")
    exports = tmp_path / "data" / "exports" / "M001"  # valid from the current directory
    assert code == 0 and out == (
        f"M001: windographer up to date ({exports / 'M001.txt'}, {exports / 'M001_flagging_log.txt'})\n"
    )


def test_export_csv_long_utc_period_points_out(tmp_path: Path) -> None:
    conf = station(tmp_path)
    out_dir = tmp_path / "out"
    code, out, err = invoke(
        export, "M001", "--config", conf, "--format", "csv", "--layout", "long", "--utc",
        "--start", "2024-01-01 00:10", "--end", "2024-01-01T00:20", "--points", "Spd80mN,Dir78mS",
        "--include-flagged", "--out", str(out_dir), "-v",
    )  # fmt: skip
    assert code == 0
    assert (
        err
        == f"stationkit: info: M001: wrote {out_dir / 'M001_20240101T0010_20240101T0020_utc_long.csv'} (3 rows)\n"
    )
    assert "M001: csv long, 3 rows x 3 columns" in out
    lines = (out_dir / "M001_20240101T0010_20240101T0020_utc_long.csv").read_text().splitlines()
    assert lines[1:] == [
        "M001,2024-01-01 00:10:00+00:00,Spd80mN,wind_speed,80,avg,0.47,icing",
        "M001,2024-01-01 00:10:00+00:00,Spd80mN,wind_speed,80,sd,1.47,",
        "M001,2024-01-01 00:10:00+00:00,Dir78mS,wind_direction,78,avg,20.47,",
    ]


def test_configured_formats_are_all_written(tmp_path: Path) -> None:
    conf = station(tmp_path, '[stations.M001.export]\nformat = ["windographer", "parquet"]\n')
    code, out, _ = invoke(export, "--config", conf, "--json")
    assert code == 0
    assert [r["format"] for r in json.loads(out)] == ["windographer", "parquet"]
    assert (tmp_path / "data/exports/M001/M001.parquet").exists()


def test_usage_and_config_errors(tmp_path: Path) -> None:
    conf = station(tmp_path)
    code, _, err = invoke(export, "--config", conf, "--include-flagged", "--exclude-flag", "icing")
    assert code == 2
    assert "--include-flagged and --exclude-flag cannot be used together" in err
    assert invoke(export, "--config", conf, "--format", "xls")[0] == 2
    code, _, err = invoke(export, "NOPE", "--config", conf)
    assert code == 1 and "unknown station 'NOPE'; stations in stations.toml: M001" in err
    bad = station(tmp_path, '[stations.M001.export]\nformat = "xls"\n')
    code, _, err = invoke(export, "--config", bad)
    assert code == 1
    assert (
        """stationkit: error: M001: stations.M001.export.format: expected one of """
        """'windographer', 'csv', 'parquet', got "xls\"""" in err
    )


def test_a_station_without_clean_data_is_a_partial_failure(tmp_path: Path) -> None:
    (tmp_path / "stations.toml").write_text(
        "[stations.M001]\nutc_offset_hours = 1\n[stations.M002]\nutc_offset_hours = 0\n"
    )
    write_clean(tmp_path / "data", tiny_readings(2).readings)
    conf = str(tmp_path / "stations.toml")
    code, _, err = invoke(export, "--config", conf)
    assert code == 3
    assert err == (
        "stationkit: error: M002: no clean data in lake/clean/station=M002; "
        "run `stationkit calibrate` first\n"
    )
    code, _, err = invoke(export, "M002", "--config", conf)
    assert code == 1
    code, out, _ = invoke(export, "--config", conf, "--json")
    assert code == 3
    failed = [r for r in json.loads(out) if "error" in r]
    assert failed == [
        {
            "station": "M002",
            "format": "windographer",
            "error": "M002: no clean data in lake/clean/station=M002; run `stationkit calibrate` first",
        }
    ]


def test_report_table_csv_json_and_plot(tmp_path: Path) -> None:
    conf = station(tmp_path)
    code, out, _ = invoke(report, "M001", "--config", conf)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["station", "point", "month", "expected", "present"]
    assert lines[2].split()[:7] == ["M001", "Spd80mN", "2024-01", "3", "3", "100.0", "33.3"]
    code, out, _ = invoke(report, "--config", conf, "--csv")
    assert code == 0 and out.splitlines()[1].startswith("M001,Spd80mN,2024-01,3,3,1,100,33.33,")
    code, out, _ = invoke(report, "--config", conf, "--json", "--utc")
    rows = json.loads(out)
    assert len(rows) == 5 and rows[0]["first"] == "2024-01-01 00:00:00"
    png = tmp_path / "availability.png"
    code, _, _ = invoke(report, "--config", conf, "--plot", str(png), "-q")
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"
