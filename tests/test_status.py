"""``stationkit status``: the fleet table, problems below it, --failed, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stationkit.cli import cli
from tests.conftest import CORPUS
from tests.pipeline.helpers import make_station, suspect_station, toa5

BAD = CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _station_with_a_bad_file(tmp_path: Path) -> str:
    _, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    (incoming / "bad.dat").write_bytes(BAD.read_bytes())
    conf = str(tmp_path / "stations.toml")
    assert invoke("--config", conf, "run")[0] == 3
    return conf


def test_table_and_problems(tmp_path: Path) -> None:
    conf = _station_with_a_bad_file(tmp_path)
    code, out, _ = invoke("--config", conf, "status")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == [
        "station",
        "state",
        "last",
        "data",
        "(UTC)",
        "age",
        "stale",
        "after",
        "files",
    ]
    assert lines[1].split()[:4] == ["M1", "STALE", "2024-01-01", "00:00"]  # period start, UTC
    assert "30.0 h" in lines[1] and lines[1].endswith("1 ok, 1 failed")
    assert lines[2] == "M1:"
    assert lines[3].startswith("  last error: ") and "[parse]" in lines[3]
    assert lines[4] == "  failed files: 1 (list them: stationkit status --failed M1)"
    assert "last fetch" not in out  # -v only
    assert "  last fetch: " in invoke("--config", conf, "status", "-v")[1]


def test_failed_lists_every_file_with_its_reason_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = _station_with_a_bad_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, _ = invoke("--config", conf, "status", "--failed")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith(
        "M1: parse: data/raw/M1/bad.dat, line 2: duplicate column name 'AirT_C(42)'"
    )
    assert lines[1].startswith("  quarantined copy: data/quarantine/M1/")
    assert (tmp_path / lines[1].split(": ", 1)[1]).is_file()  # valid from here
    code, out, _ = invoke("--config", conf, "status", "--failed", "--json")
    (entry,) = json.loads(out)
    assert entry["path"] == "raw/M1/bad.dat" and entry["stage"] == "parse"


def test_suspect_sensors_are_listed_with_their_flags(tmp_path: Path) -> None:
    conf = str(suspect_station(tmp_path))
    code, out, _ = invoke("--config", conf, "status")
    assert code == 0
    assert (
        "  suspect: Spd80mN (qc_icing 30%) of the values from 2024-01-26 23:50 to 2024-02-02 23:50 UTC"
        in out
    )
    code, out, _ = invoke("--config", conf, "status", "--json")
    (row,) = json.loads(out)
    assert row["suspect"]["threshold"] == 0.2
    assert [p["point"] for p in row["suspect"]["points"]] == ["Spd80mN"]
    assert row["health"]["state"] == "no data"  # lake/clean without a ledger
    assert row["failed_files"] == 0


def test_no_failed_files(tmp_path: Path) -> None:
    make_station(tmp_path)
    code, out, _ = invoke("--config", str(tmp_path / "stations.toml"), "status", "--failed")
    assert (code, out) == (0, "no failed files\n")
