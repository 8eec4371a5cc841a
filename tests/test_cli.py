"""The CLI through click's CliRunner: exit codes, messages, JSON, help, lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from stationkit.cli import cli
from tests.conftest import CORPUS
from tests.pipeline.helpers import make_station, toa5


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    command = cli.commands[name]
    assert isinstance(command, click.Command)
    assert command.help and "Example" in command.help
    code, out, _ = invoke(name, "--help")
    assert code == 0 and "Example" in out


def test_run_then_status_json(tmp_path: Path) -> None:
    _, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    conf = str(tmp_path / "stations.toml")
    code, out, err = invoke("--config", conf, "run")
    assert (code, out, err) == (0, "", "")  # cron: silent on success
    code, out, _ = invoke("status", "--config", conf, "--json")
    assert code == 0
    (st,) = json.loads(out)
    assert st["station"] == "M1" and st["files"]["ok"] == 1 and st["readings"] == 2
    assert st["first_timestamp"] == "2024-01-01T00:00:00.000000Z"
    assert st["last_calibrate"] is not None  # run calibrates
    assert st["exports"] == {}  # no [export] table: nothing exported


def test_partial_failure_exit_code_3_and_stderr(tmp_path: Path) -> None:
    _, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    (incoming / "bad.dat").write_bytes(
        (CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat").read_bytes()
    )
    conf = str(tmp_path / "stations.toml")
    assert invoke("fetch", "--config", conf)[0] == 0
    code, out, err = invoke("parse", "--config", conf)
    assert code == 3
    # the path once, valid from here (absolute: the data directory is not below the cwd)
    bad = tmp_path / "data" / "raw" / "M1" / "bad.dat"
    assert f"stationkit: error: M1: {bad}, line 2: duplicate column name" in err
    code, out, _ = invoke("status", "--config", conf)
    assert "1 ok, 1 failed" in out.replace("0 pending, ", "")
    assert "last error:" in out and "[parse]" in out


def test_config_error_is_exit_1_with_the_key_path(tmp_path: Path) -> None:
    (tmp_path / "stations.toml").write_text('[stations.M1.source]\nkind = "local"\npath = 3\n')
    code, _, err = invoke("--config", str(tmp_path / "stations.toml"), "fetch")
    assert code == 1
    assert err == "stationkit: error: stations.M1.source.path: expected a string, got 3\n"


def test_usage_error_is_exit_2() -> None:
    assert invoke("parse", "--no-such-option")[0] == 2


def test_unknown_station_is_exit_1(tmp_path: Path) -> None:
    make_station(tmp_path)
    code, _, err = invoke("parse", "NOPE", "--config", str(tmp_path / "stations.toml"))
    assert code == 1 and "unknown station 'NOPE'; stations in stations.toml: M1" in err


def test_add_command(tmp_path: Path) -> None:
    make_station(tmp_path)
    f = tmp_path / "x.dat"
    f.write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    code, out, _ = invoke("add", "M1", str(f), "--config", str(tmp_path / "stations.toml"))
    assert code == 0 and "M1: 1 added, 0 already there" in out


HOLD_LOCK = """
import sys, time
from pathlib import Path
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
data = Path(sys.argv[1])
with RunLock(data), Ledger(data) as ledger:
    with ledger.transaction() as c:
        c.execute("INSERT INTO events(at, station, stage, level, message) VALUES ('t','M1','run','info','held')")
    print("locked", flush=True)
    time.sleep(30)
"""


def test_status_works_while_another_process_holds_the_run_lock(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    conf = str(tmp_path / "stations.toml")
    assert invoke("run", "--config", conf)[0] == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(cfg.data_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        code, out, _ = invoke("status", "--config", conf, "--json")
        assert code == 0 and json.loads(out)[0]["files"]["ok"] == 1
        assert time.monotonic() - started < 10  # never waits for the lock
        code, _, err = invoke("parse", "--config", conf)
        assert code == 1 and "another stationkit process (pid" in err and "use --wait" in err
        code, _, err = invoke("run", "--config", conf)
        assert (
            code == 0 and "another stationkit process" in err
        )  # cron: a concurrent run is not a failure
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- what a new user meets


def test_top_level_help_shows_each_summary_whole_on_one_line() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    listed = out.split("Commands:\n", 1)[1].splitlines()
    # in the order of the pipeline, each summary complete (never cut with "...")
    assert [line.split()[0] for line in listed] == list(cli.commands)
    for name, line in zip(cli.commands, listed, strict=True):
        command = cli.commands[name]
        assert command.short_help and line.split(None, 1)[1] == command.short_help
        assert len(line) <= 80 and not line.endswith("...")


def test_run_help_names_every_stage() -> None:
    _, out, _ = invoke("run", "--help")
    first = " ".join(out.split("\n\n")[1].split())
    assert first.startswith("Run every stage for each station")
    assert all(stage in first for stage in ("fetch", "unpack", "parse", "calibrate", "export"))


def test_errors_have_one_prefix_and_are_json_with_json(tmp_path: Path) -> None:
    code, out, err = invoke("parse", "--no-such-option")
    assert code == 2 and out == ""
    assert err.splitlines()[-1].startswith("stationkit: error: No such option '--no-such-option'")
    assert "Usage: stationkit parse" in err
    code, out, err = invoke("--json", "parse", "--no-such-option")
    assert code == 2 and json.loads(out)["error"]["kind"] == "usage"
    missing = str(tmp_path / "none.toml")
    code, out, err = invoke("status", "--config", missing, "--json")
    assert code == 1
    assert json.loads(out) == {
        "error": {
            "exit_code": 1,
            "kind": "error",
            "message": f"{missing}: no such file; pass --config PATH or set STATIONKIT_CONFIG",
        }
    }
    assert (
        err
        == f"stationkit: error: {missing}: no such file; pass --config PATH or set STATIONKIT_CONFIG\n"
    )


def test_a_station_failing_outright_is_in_the_json_output(tmp_path: Path) -> None:
    (tmp_path / "stations.toml").write_text('[stations.A.source]\nkind = "local"\npath = "gone"\n')
    code, out, _ = invoke("--config", str(tmp_path / "stations.toml"), "fetch", "--json")
    assert code == 1
    (entry,) = json.loads(out)
    assert entry["station"] == "A" and "gone: does not exist" in entry["error"]


def test_printed_paths_are_valid_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, incoming = make_station(tmp_path)
    conf = tmp_path / "stations.toml"
    conf.write_text(conf.read_text() + '[stations.M1.export]\nformat = "csv"\n')
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    (incoming / "bad.dat").write_bytes(
        (CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat").read_bytes()
    )
    monkeypatch.chdir(tmp_path)  # where stations.toml is: paths relative to it
    code, out, err = invoke("--config", "stations.toml", "run", "-v")
    assert code == 3
    assert "stationkit: error: M1: parse: data/raw/M1/bad.dat, line 2: " in err
    assert "stationkit: info: M1: wrote data/exports/M1/M1.csv (1 rows)" in err
    code, out, _ = invoke("--config", "stations.toml", "export", "--force", "-v")
    assert out.rstrip().endswith("-> data/exports/M1/M1.csv")
    code, out, _ = invoke("--config", "stations.toml", "calibrate", "--force", "-v")
    assert (tmp_path / out.rstrip().rsplit("-> ", 1)[1]).exists()
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # outside the data directory: absolute paths
    code, out, _ = invoke("--config", "../stations.toml", "export", "--force", "-v")
    assert out.rstrip().endswith(f"-> {tmp_path / 'data' / 'exports' / 'M1' / 'M1.csv'}")
