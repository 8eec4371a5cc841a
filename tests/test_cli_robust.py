"""Settings are checked before any work starts (exit 1 naming the key, nothing
fetched) or warned about; environment problems get one clear message and an
exit code, never a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stationkit.cli import cli
from stationkit.ledger import _SCHEMA
from tests.pipeline.helpers import toa5

GOOD = toa5([("2024-01-01 00:10:00", 5.0, 0.5)])


def setup(tmp_path: Path, extra: str = "", top: str = "", source: bool = True) -> str:
    incoming = tmp_path / "incoming"
    incoming.mkdir(exist_ok=True)
    (incoming / "a.dat").write_text(GOOD)
    src = '[stations.M1.source]\nkind = "local"\npath = "incoming"\n' if source else ""
    conf = tmp_path / "stations.toml"
    conf.write_text(f"{top}\n[stations.M1]\nutc_offset_hours = 0\n{src}{extra}")
    return str(conf)


def invoke(conf: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", conf, *args])


def no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


BAD_SETTINGS = [
    ('metadata = "meta/missing.json"\n', "stations.M1.metadata: ", "no such metadata document"),
    ('[stations.M1.export]\nformat = "xlsx"\n', "stations.M1.export.format: ", "'windographer'"),
    (
        '[stations.M1.points.WS]\nmeasurement_type = "wind_speed"\nheight_m = "80 m"\n'
        'columns = { avg = "WS_Avg" }\n',
        "stations.M1.points.WS.height_m: ",
        "expected a number",
    ),
    ("[stations.M1.qc.range]\nwind_speed = [50, 0]\n", "stations.M1.qc.range.wind_speed: ", "min"),
    (
        "[[stations.M1.flags.periods]]\nstart = 2024-03-02T00:00:00\nend = 2024-03-01T00:00:00\n",
        "stations.M1.flags.periods[0]",
        "expected end (2024-03-01T00:00:00) after start",
    ),
]


@pytest.mark.parametrize(("extra", "key", "what"), BAD_SETTINGS)
@pytest.mark.parametrize("command", ["run", "fetch", "parse", "calibrate", "export"])
def test_bad_settings_stop_every_command_before_any_work(
    tmp_path: Path, extra: str, key: str, what: str, command: str
) -> None:
    if extra.startswith("metadata"):  # a station key: it goes in the station's table
        conf = setup(
            tmp_path,
            source=False,
            extra=f'{extra}[stations.M1.source]\nkind = "local"\npath = "incoming"\n',
        )
    else:
        conf = setup(tmp_path, extra=extra)
    result = invoke(conf, command)
    no_traceback(result)
    assert result.exit_code == 1, result.output
    assert key in result.stderr and what in result.stderr
    assert not (tmp_path / "data" / "raw").exists()  # nothing fetched
    assert not (tmp_path / "data" / "lake").exists()  # nothing parsed


def test_every_station_with_bad_settings_is_named(tmp_path: Path) -> None:
    conf = setup(
        tmp_path,
        extra='[stations.M1.export]\nformat = "xlsx"\n[stations.M2]\nmetadata = "nope.json"\n',
    )
    result = invoke(conf, "run")
    assert result.exit_code == 1
    assert "stationkit: error: M1: stations.M1.export.format: " in result.stderr
    assert "stationkit: error: M2: stations.M2.metadata: " in result.stderr
    result = invoke(conf, "run", "--json")  # with --json: the errors on stdout too
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["kind"], error["exit_code"]) == ("error", 1)
    m1, m2 = error["message"].splitlines()
    assert m1.startswith("M1: stations.M1.export.format: ")
    assert m2.startswith("M2: stations.M2.metadata: ")


def test_warnings_do_not_fail_the_run(tmp_path: Path) -> None:
    conf = setup(tmp_path, source=False)
    result = invoke(conf, "run")
    assert result.exit_code == 0
    assert "stations.M1.source: not set; nothing is fetched" in result.stderr

    conf = setup(tmp_path, extra='patterns = ["*.DAT", "*.CSV"]\n')
    result = invoke(conf, "run", "--json")
    assert result.exit_code == 0
    warning = "stations.M1.source.patterns: '*.DAT', '*.CSV' match none of the 1 file(s)"
    assert warning in result.stderr and warning in json.loads(result.stdout)["warnings"][0]
    setup(tmp_path, extra='patterns = ["*.DAT", "*.dat"]\n')  # one matches: fine
    assert invoke(conf, "run").stderr == ""

    (tmp_path / "stations.toml").write_text('data_dir = "data"\n')
    result = invoke(conf, "run")
    assert result.exit_code == 0 and "no stations defined" in result.stderr


def test_a_new_station_with_an_empty_folder_gets_no_warning(tmp_path: Path) -> None:
    conf = setup(tmp_path, extra='patterns = ["*.dat"]\n')
    (tmp_path / "incoming" / "a.dat").unlink()
    result = invoke(conf, "run")
    assert (result.exit_code, result.stderr) == (0, "")


@pytest.mark.parametrize("command", ["run", "status", "parse", "export"])
def test_data_dir_that_is_a_file(tmp_path: Path, command: str) -> None:
    conf = setup(tmp_path, top='data_dir = "store"')
    (tmp_path / "store").write_text("not a folder")
    result = invoke(conf, command)
    no_traceback(result)
    assert result.exit_code == 1
    assert f"data_dir {tmp_path / 'store'}: is a file, not a folder" in result.stderr


def test_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    conf = setup(tmp_path, top='data_dir = "afile/data"')
    (tmp_path / "afile").write_text("")
    result = invoke(conf, "run")
    no_traceback(result)
    assert result.exit_code == 1
    assert f"data_dir {tmp_path / 'afile' / 'data'}: cannot be created (Not a directory)" in (
        result.stderr
    )


def test_status_while_the_first_run_creates_the_ledger(tmp_path: Path) -> None:
    conf = setup(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "state.sqlite").write_bytes(b"")  # created, no table yet
    result = invoke(conf, "status", "--json")
    no_traceback(result)
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["files"]["ok"] == 0
    con = sqlite3.connect(data / "state.sqlite")
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")  # half-way
    con.commit()
    con.close()
    result = invoke(conf, "status")
    assert result.exit_code == 0
    (row,) = [ln for ln in result.stdout.splitlines() if ln.startswith("M1 ")]
    assert row.split()[1:3] == ["NO", "DATA"] and row.endswith("no files")


def test_status_reads_a_ledger_of_an_older_version(tmp_path: Path) -> None:
    conf = setup(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    con = sqlite3.connect(data / "state.sqlite")
    con.executescript(_SCHEMA.split("CREATE TABLE IF NOT EXISTS failures")[0])
    con.execute("PRAGMA user_version=2")
    con.close()
    result = invoke(conf, "status", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["last_error"] is None
    assert invoke(conf, "run").exit_code == 0  # the run adds the new table
    (st,) = json.loads(invoke(conf, "status", "--json").stdout)
    assert st["files"]["ok"] == 1


def test_report_plot_without_data(tmp_path: Path) -> None:
    conf = setup(tmp_path)
    result = invoke(conf, "report", "--plot", str(tmp_path / "a.png"))
    no_traceback(result)
    assert result.exit_code == 1 and "nothing to plot: no clean data for M1" in result.stderr
    assert not (tmp_path / "a.png").exists()
