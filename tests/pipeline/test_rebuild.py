"""rebuild: from raw/ alone, byte-identical to the incremental history; --check for CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import stationkit.pipeline.rebuild as rebuild_module
from stationkit.atomic import deferred_sync, write_bytes
from stationkit.cli import cli
from tests.conftest import CORPUS
from tests.pipeline.helpers import make_station, toa5


def lake_bytes(data: Path) -> dict[str, bytes]:
    """Every lake and export file (readings, clean, Windographer, CSV)."""
    return {
        p.relative_to(data).as_posix(): p.read_bytes()
        for top in ("lake", "exports")
        for p in sorted((data / top).rglob("*"))
        if p.is_file()
    }


def history(tmp_path: Path) -> Path:
    """An incremental life: files arrive over several runs, one changes, one is bad, one added by hand."""
    _, incoming = make_station(tmp_path, '[stations.M1.export]\nformat = ["windographer", "csv"]\n')
    conf = tmp_path / "stations.toml"
    runner = CliRunner()
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    assert runner.invoke(cli, ["--config", str(conf), "run"]).exit_code == 0
    (incoming / "b.dat").write_text(toa5([("2024-01-01 01:20:00", 6.0, 0.6)]))
    (incoming / "bad.dat").write_bytes(
        (CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat").read_bytes()
    )
    assert runner.invoke(cli, ["--config", str(conf), "run"]).exit_code == 3
    (incoming / "a.dat").write_text(
        toa5([("2024-01-01 01:10:00", 5.0, 0.5), ("2024-01-01 01:30:00", 7.0, 0.7)])
    )
    os.utime(incoming / "a.dat", (2_000_000_000, 2_000_000_000))
    manual = tmp_path / "upload.dat"
    manual.write_text(toa5([("2024-01-02 00:10:00", 9.0, 0.9)]))
    assert runner.invoke(cli, ["--config", str(conf), "add", "M1", str(manual)]).exit_code == 0
    assert runner.invoke(cli, ["--config", str(conf), "run"]).exit_code == 0
    return conf


def test_rebuild_check_finds_an_incremental_lake_identical(tmp_path: Path) -> None:
    conf = history(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(conf), "rebuild", "--check"])
    assert result.exit_code == 3, result.stderr  # the bad file fails again, as it should
    assert "rebuilt 1 station(s): identical" in result.stdout
    assert not (tmp_path / ".data.rebuild").exists()


def test_rebuild_check_names_a_file_that_differs(tmp_path: Path) -> None:
    conf = history(tmp_path)
    lake = tmp_path / "data" / "lake" / "readings" / "station=M1"
    victim = sorted(lake.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"!")
    (lake / "part-0000000000000000042.parquet").write_bytes(b"stray")
    result = CliRunner().invoke(cli, ["--config", str(conf), "rebuild", "--check"])
    assert result.exit_code == 1
    assert f"lake/readings/station=M1/{victim.name}: differs" in result.stdout
    assert (
        "lake/readings/station=M1/part-0000000000000000042.parquet: not produced by the rebuild"
        in result.stdout
    )
    assert "2 output file(s) differ from a rebuild" in result.stderr


def test_rebuild_from_raw_alone_twice_is_byte_identical(tmp_path: Path) -> None:
    conf = history(tmp_path)
    data = tmp_path / "data"
    original = lake_bytes(data)
    # lose everything but raw/
    assert any(name.startswith("exports/") for name in original)
    assert any(name.startswith("lake/clean/") for name in original)
    for name in ("lake", "exports", "staging", "quarantine"):
        shutil.rmtree(data / name, ignore_errors=True)
    for ledger in data.glob("state.sqlite*"):
        ledger.unlink()
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(conf), "rebuild"]).exit_code == 3
    first = lake_bytes(data)
    assert first == original
    assert runner.invoke(cli, ["--config", str(conf), "rebuild"]).exit_code == 3
    assert lake_bytes(data) == first
    # the ledger is whole again: a run has nothing to do, status knows every file
    result = runner.invoke(cli, ["--config", str(conf), "run", "--json"])
    assert result.exit_code == 0, result.stdout
    status = runner.invoke(cli, ["--config", str(conf), "status", "--json"])
    assert (
        '"ok": 3' in status.stdout
        and '"failed": 1' in status.stdout
        and '"superseded": 1' in status.stdout
    )


def test_rebuild_builds_aside_without_fsyncs_and_syncs_once_before_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild's outputs are built aside, where a crash throws them all away:
    no fsync per file (they queue on the journal when workers run in parallel)
    but one sync of the whole before they are put in place."""
    conf = history(tmp_path)
    events: list[str] = []
    real_fsync, real_swap = os.fsync, rebuild_module._swap

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def swap(data: Path, aside: Path, stations: list[str]) -> None:
        events.append("swap")
        real_swap(data, aside, stations)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(rebuild_module, "_swap", swap)
    monkeypatch.setattr(
        rebuild_module, "sync_tree", lambda root: events.append(f"sync {root.name}")
    )
    before = lake_bytes(tmp_path / "data")
    result = CliRunner().invoke(cli, ["--config", str(conf), "rebuild"])
    assert result.exit_code == 3, result.stderr  # the bad file again
    built = events[: events.index("sync .data.rebuild")]
    assert built.count("fsync") == 0, built  # not one per output
    assert events[events.index("sync .data.rebuild") + 1] == "swap"
    assert lake_bytes(tmp_path / "data") == before


def test_deferred_commits_stay_atomic_and_skip_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    write_bytes(tmp_path / "a.txt", b"durable")
    assert len(calls) == 2  # the file, then its folder
    with deferred_sync():
        write_bytes(tmp_path / "b.txt", b"later")
    assert len(calls) == 2
    assert (tmp_path / "b.txt").read_bytes() == b"later"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".stationkit-tmp-")]
