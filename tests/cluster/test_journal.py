"""The ledger snapshot a worker works on, its journal, and the replay on the
real ledger (in-process: the same stage code, no cluster)."""

from __future__ import annotations

import pickle
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from stationkit.cluster.journal import journal_of, open_snapshot, replay, snapshot
from stationkit.config import load_config
from stationkit.ledger import Ledger
from stationkit.pipeline.run import run_station
from tests.conftest import CORPUS
from tests.pipeline.helpers import make_station, toa5

WALL_CLOCK = ("_at", "at")


def rows(data_dir: Path) -> dict[str, list[Any]]:
    con = sqlite3.connect(data_dir / "state.sqlite")
    out = {}
    for table in ("files", "parses", "builds", "partitions", "fetches", "failures", "events"):
        cols = [
            r[1]
            for r in con.execute(f"PRAGMA table_info({table})")
            if not r[1].endswith(WALL_CLOCK) and r[1] not in ("id", "stamp")
        ]
        out[table] = sorted(con.execute(f"SELECT {', '.join(cols)} FROM {table}"), key=repr)
    con.close()
    return out


def outputs(data_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(data_dir).as_posix(): p.read_bytes()
        for top in ("raw", "lake", "exports", "quarantine")
        for p in sorted((data_dir / top).rglob("*"))
        if p.is_file()
    }


def day(d: int, value: float) -> str:
    return toa5([(f"2024-01-{d:02d} {h:02d}:00:00", value + h, 0.5) for h in range(1, 24)])


def test_replayed_journal_gives_the_ledger_of_a_local_run(tmp_path: Path) -> None:
    """Two rounds (new files; a changed file, a new one and a bad one): the
    ledger a worker's journal produces equals the one the stages write
    directly, and so do the files."""
    (tmp_path / "t").mkdir()
    _, incoming = make_station(tmp_path / "t", '[stations.M1.export]\nformat = "csv"\n')
    rounds = [
        {"a.dat": day(1, 1.0), "b.dat": day(2, 2.0)},
        {
            "a.dat": day(1, 7.0),  # a new version supersedes the first
            "c.dat": day(3, 3.0),
            "bad.dat": (CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat")
            .read_bytes()
            .decode(),
        },
    ]
    shutil.copytree(tmp_path / "t", tmp_path / "local")
    shutil.copytree(tmp_path / "t", tmp_path / "dist")
    for files in rounds:
        for name, text in files.items():
            (incoming / name).write_text(text)
        for where in ("local", "dist"):
            shutil.copytree(incoming, tmp_path / where / "incoming", dirs_exist_ok=True)
        local = load_config(tmp_path / "local" / "stations.toml")
        with Ledger(local.data_dir) as ledger:
            direct = run_station(local, local.stations["M1"], ledger)
        dist = load_config(tmp_path / "dist" / "stations.toml")
        with Ledger(dist.data_dir) as ledger:
            work = open_snapshot(snapshot(ledger, "M1"), dist.data_dir)
            via = run_station(dist, dist.stations["M1"], work)
            journal = pickle.loads(pickle.dumps(journal_of(work)))  # as Dask sends it
            replay(ledger, journal)
        assert via.stages == direct.stages and via.failures == direct.failures
        assert rows(dist.data_dir) == rows(local.data_dir)
        assert outputs(dist.data_dir) == outputs(local.data_dir)
    assert any(r[-1] is not None for r in rows(dist.data_dir)["files"])  # a superseded version


def test_parameters_arrive_bit_for_bit(tmp_path: Path) -> None:
    with Ledger(tmp_path / "data") as ledger:
        work = open_snapshot(snapshot(ledger, "M1"), ledger.data_dir)
        mtime = 1717171717.1234567  # not a round number in binary
        file_id = work.add_file(
            station="M1",
            origin="fetch",
            source_path="ü/a b.dat",
            path="raw/M1/ü/a b.dat",
            size=2**40,
            mtime=mtime,
            sha256="f" * 64,
        )
        work.record_failure(
            "M1", "parse", "raw/M1/ü/a b.dat", "x\ny", kind="content", file_id=file_id
        )
        replay(ledger, pickle.loads(pickle.dumps(journal_of(work))))
        got = ledger.get_file(file_id)
        assert file_id > 2**32 and got.size == 2**40 and got.source_path == "ü/a b.dat"
        assert got.mtime is not None and got.mtime.hex() == mtime.hex()
        (failure,) = ledger.pending_failures(["M1"])
        assert failure["file_id"] == file_id and failure["reason"] == "x\ny"


def test_a_rolled_back_transaction_is_not_journaled(tmp_path: Path) -> None:
    with Ledger(tmp_path / "data") as ledger:
        work = open_snapshot(snapshot(ledger, "M1"), ledger.data_dir)
        with pytest.raises(RuntimeError), work.transaction():
            work.record_build("M1", "calibrate", "undone")
            raise RuntimeError("the stage gave up")
        work.record_build("M1", "export", "kept")
        assert work.build_fingerprint("M1", "calibrate") is None
        (statement,) = journal_of(work)
        assert statement[1][:3] == ("M1", "export", "kept")


def test_replay_is_all_or_nothing(tmp_path: Path) -> None:
    with Ledger(tmp_path / "data") as ledger:
        work = open_snapshot(snapshot(ledger, "M1"), ledger.data_dir)
        work.record_build("M1", "calibrate", "fp")
        journal = journal_of(work)
        broken = ("INSERT INTO builds(station) VALUES (?)", ("M1",), False)  # NOT NULL
        with pytest.raises(sqlite3.IntegrityError):
            replay(ledger, [*journal, broken])
        assert ledger.build_fingerprint("M1", "calibrate") is None
        replay(ledger, journal)
        assert ledger.build_fingerprint("M1", "calibrate") == "fp"


def test_a_snapshot_holds_one_station(tmp_path: Path) -> None:
    with Ledger(tmp_path / "data") as ledger:
        for station in ("M1", "M2"):
            ledger.add_file(
                station=station,
                origin="fetch",
                source_path="a.dat",
                path=f"raw/{station}/a.dat",
                size=1,
                mtime=None,
                sha256="0" * 64,
            )
            ledger.record_build(station, "calibrate", station)
        work = open_snapshot(snapshot(ledger, "M2"), ledger.data_dir)
        assert [r["station"] for r in work.conn.execute("SELECT station FROM files")] == ["M2"]
        assert work.build_fingerprint("M1", "calibrate") is None
        assert work.build_fingerprint("M2", "calibrate") == "M2"
        assert journal_of(work) == []  # reading writes nothing
