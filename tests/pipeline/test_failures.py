"""Failures are never lost: environment failures are retried by the next run by
themselves, content failures only when something changes or with
--retry-failed; `status` forgets a failure once what failed succeeds; a
station with no data yet is not failing.

A full disk is simulated at the OS boundary: archive members are written to
/dev/full (the kernel's own ENOSPC); the readings writer (pyarrow's own I/O)
gets the OSError injected; the ledger gets a real SQLITE_FULL from SQLite's
max_page_count.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sqlite3
import sys
import zipfile
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner, Result

from stationkit.cli import cli
from stationkit.ledger import Ledger
from tests.pipeline.helpers import HEADER, toa5

GOOD = toa5([("2024-01-01 00:10:00", 5.0, 0.5), ("2024-01-01 00:20:00", 6.0, 0.4)])
#: a TOA5 file whose column names repeat: its content can never be parsed
BAD = HEADER.replace('"WS_Std"', '"WS_Avg"') + '"2024-01-01 00:10:00",0,5.0,0.5,"x"\r\n'


def zip_of(name: str, data: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def station(tmp_path: Path, extra: str = "", top: str = "") -> tuple[str, Path]:
    incoming = tmp_path / "incoming"
    incoming.mkdir(exist_ok=True)
    conf = tmp_path / "stations.toml"
    conf.write_text(
        f"{top}\n[stations.M1]\nutc_offset_hours = 0\n{extra}\n"
        '[stations.M1.source]\nkind = "local"\npath = "incoming"\n'
    )
    return str(conf), incoming


def cli_run(conf: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", conf, *args])


def status(conf: str) -> dict[str, Any]:
    result = cli_run(conf, "status", "--json")
    assert result.exit_code == 0, result.output
    (st,) = json.loads(result.stdout)
    return st  # type: ignore[no-any-return]


def hook(tmp_path: Path) -> tuple[str, Path]:
    """An on_failure line that appends what it gets on stdin to a file."""
    received = tmp_path / "hook.txt"
    code = f"import sys; open({str(received)!r}, 'a').write(sys.stdin.read())"
    return f"on_failure = {json.dumps([sys.executable, '-c', code])}\n", received


class _FullDisk:
    """``os.fdopen`` for files opened to be written: writes reach /dev/full."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __call__(self, fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
        if "w" not in mode:
            return self.real(fd, mode, *args, **kwargs)  # type: ignore[no-any-return]
        os.close(fd)
        return open("/dev/full", "wb", buffering=0)


def test_full_disk_during_unpack_is_retried_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, incoming = station(tmp_path)
    (incoming / "day.zip").write_bytes(zip_of("day.dat", GOOD))
    with monkeypatch.context() as m:
        m.setattr(os, "fdopen", _FullDisk(os.fdopen))
        first = cli_run(conf, "run")
    assert first.exit_code == 3, first.output
    day = tmp_path / "data" / "raw" / "M1" / "day.zip"
    assert f"stationkit: error: M1: unpack: {day}: member 'day.dat' cannot be written" in (
        first.stderr
    )
    assert "No space left on device" in first.stderr
    data = tmp_path / "data"
    assert not (data / "quarantine").exists()  # nothing is wrong with the archive
    st = status(conf)
    assert st["files"]["pending"] == 1
    assert st["last_error"]["stage"] == "unpack" and st["last_error"]["kind"] == "environment"

    # space freed: the next plain run unpacks and parses it, and says nothing
    second = cli_run(conf, "run")
    assert (second.exit_code, second.stderr) == (0, ""), second.output
    st = status(conf)
    assert st["files"] == {**st["files"], "archive": 1, "ok": 1, "pending": 0, "failed": 0}
    assert st["last_error"] is None and st["pending_failures"] == 0


def test_full_disk_while_writing_readings_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, incoming = station(tmp_path)
    (incoming / "a.dat").write_text(GOOD)

    def full(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr("stationkit.pipeline.parse.write_readings", full)
        first = cli_run(conf, "run")
    assert first.exit_code == 3
    a = tmp_path / "data" / "raw" / "M1" / "a.dat"
    assert f"stationkit: error: M1: parse: {a}: cannot write" in first.stderr
    assert status(conf)["files"]["pending"] == 1
    assert cli_run(conf, "run").exit_code == 0
    st = status(conf)
    assert st["files"]["ok"] == 1 and st["readings"] == 4 and st["last_error"] is None


def test_content_failures_wait_for_retry_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, incoming = station(tmp_path)
    (incoming / "a.dat").write_text(GOOD)
    (incoming / "broken.zip").write_bytes(zip_of("x.dat", GOOD)[:-30])  # cut short

    real = __import__("stationkit.pipeline.parse", fromlist=["parse_one"]).parse_one

    def buggy(config: Any, station: Any, row: Any) -> Any:
        raise RuntimeError("a parser bug")

    with monkeypatch.context() as m:
        m.setattr("stationkit.pipeline.parse.parse_one", buggy)
        first = cli_run(conf, "run")
    assert first.exit_code == 3
    raw = tmp_path / "data" / "raw" / "M1"
    assert f"stationkit: error: M1: unpack: {raw / 'broken.zip'}: " in first.stderr
    assert f"stationkit: error: M1: parse: {raw / 'a.dat'}: internal error in the parser" in (
        first.stderr
    )
    quarantined = sorted(p.name for p in (tmp_path / "data" / "quarantine" / "M1").iterdir())
    assert len(quarantined) == 2

    # the content did not change: reported once, not tried again
    again = cli_run(conf, "run")
    assert (again.exit_code, again.stderr) == (0, "")
    assert status(conf)["files"]["failed"] == 2

    # --retry-failed: the parser is fixed, the archive is still broken
    assert real is not buggy
    retried = cli_run(conf, "run", "--retry-failed")
    assert retried.exit_code == 3
    assert f"stationkit: error: M1: unpack: {raw / 'broken.zip'}: " in retried.stderr
    assert "a.dat" not in retried.stderr
    st = status(conf)
    assert st["files"]["ok"] == 1 and st["files"]["failed"] == 1
    assert st["last_error"]["file"] == "raw/M1/broken.zip"
    assert [p.name for p in (tmp_path / "data" / "quarantine" / "M1").iterdir()] == ["broken.zip"]


def test_parse_retry_failed(tmp_path: Path) -> None:
    conf, incoming = station(tmp_path)
    (incoming / "a.dat").write_text(BAD)
    assert cli_run(conf, "run").exit_code == 3  # fetched, but not parsed
    assert cli_run(conf, "parse").exit_code == 0  # not tried again
    result = cli_run(conf, "parse", "--retry-failed")
    assert result.exit_code == 1 and "line 2: duplicate column name" in result.stderr


def test_ledger_on_a_full_disk_is_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, incoming = station(tmp_path)
    for i in range(30):
        (incoming / f"f{i:02d}.dat").write_text(GOOD)
    assert cli_run(conf, "status").exit_code == 0
    real = sqlite3.connect

    def small(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        conn.execute("PRAGMA max_page_count=12")  # SQLite's own SQLITE_FULL past 48 kB
        return conn

    monkeypatch.setattr(sqlite3, "connect", small)
    result = cli_run(conf, "run")
    assert result.exit_code in (1, 3) and "Traceback" not in result.output
    assert "database or disk is full" in result.stderr
    assert isinstance(result.exception, SystemExit)
    monkeypatch.setattr(sqlite3, "connect", real)
    assert cli_run(conf, "run").exit_code == 0  # space freed: everything is done
    assert status(conf)["files"]["ok"] == 30


def test_new_station_with_exports_and_no_data_is_not_failing(tmp_path: Path) -> None:
    line, received = hook(tmp_path)
    conf, incoming = station(tmp_path, extra='[stations.M1.export]\nformat = "csv"\n', top=line)
    for _ in range(2):
        result = cli_run(conf, "run")
        assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert not received.exists()  # on_failure never ran
    (incoming / "a.dat").write_text(GOOD)
    assert cli_run(conf, "run").exit_code == 0
    assert (tmp_path / "data" / "exports" / "M1" / "M1.csv").exists()


def test_status_clears_last_error_once_the_fetch_succeeds(tmp_path: Path) -> None:
    conf, incoming = station(tmp_path)
    incoming.rmdir()
    assert cli_run(conf, "run").exit_code == 1
    assert status(conf)["last_error"]["stage"] == "fetch"
    incoming.mkdir()
    (incoming / "a.dat").write_text(GOOD)
    assert cli_run(conf, "run").exit_code == 0
    assert status(conf)["last_error"] is None


def test_failures_are_recorded_with_their_kind(tmp_path: Path) -> None:
    conf, incoming = station(tmp_path)
    (incoming / "bad.dat").write_text(BAD)
    cli_run(conf, "run")
    with Ledger(tmp_path / "data", readonly=True) as ledger:
        rows = ledger.conn.execute("SELECT stage, file, kind, reported_at FROM failures").fetchall()
    assert [tuple(r)[:3] for r in rows] == [("parse", "raw/M1/bad.dat", "content")]
    assert rows[0]["reported_at"] is not None
