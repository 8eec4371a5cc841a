"""Leases (stationkit.lease): a distributed task writes only while the run
that sent it holds its lease. Here without Dask: the commit guard itself,
the run lock ending leases a dead client left, and the guard reaching the
parse threads of ``jobs > 1``. tests/cluster/test_dask.py has the scheduler
going away mid-run."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

import pytest

from stationkit.atomic import TMP_PREFIX, commit_guard, write_bytes
from stationkit.config import load_config
from stationkit.lease import LEASES, LeaseEnded, end_leases, lease_guard, new_lease
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station
from tests.pipeline.helpers import toa5


def test_no_commit_once_the_lease_is_gone(tmp_path: Path) -> None:
    target = tmp_path / "out" / "file.txt"
    lease = new_lease(tmp_path, "run\n")
    assert (tmp_path / lease).is_file() and lease.startswith(LEASES.as_posix())
    with commit_guard(lease_guard(tmp_path, lease)):
        write_bytes(target, b"first")  # the lease holds
        (tmp_path / lease).unlink()  # the client gave up
        with pytest.raises(LeaseEnded, match="the run that sent this task has ended"):
            write_bytes(target, b"second")
    assert target.read_bytes() == b"first"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(TMP_PREFIX)]
    write_bytes(target, b"third")  # outside the guard: as always
    assert target.read_bytes() == b"third"


def test_taking_the_run_lock_ends_the_leases_of_a_dead_client(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    leases = [new_lease(data, "old run\n") for _ in range(2)]
    (data / LEASES / "unrelated.txt").write_text("kept")
    with RunLock(data):
        assert not any((data / lease).exists() for lease in leases)
        assert (data / LEASES / "unrelated.txt").exists()
    assert end_leases(data) == 0
    assert end_leases(tmp_path / "nowhere") == 0


def test_the_guard_holds_in_the_parse_threads(tmp_path: Path) -> None:
    """Files parsed by several threads (``jobs``) commit under the task's guard too."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for day in range(1, 4):
        rows = [(f"2024-03-0{day} {h:02d}:00:00", 5.0 + h, 0.5) for h in range(24)]
        (incoming / f"d{day}.dat").write_text(toa5(rows))
    conf = tmp_path / "stations.toml"
    conf.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[stations.S1]\n[stations.S1.source]\n'
        f'kind = "local"\npath = "{incoming}"\n'
    )
    config = load_config(conf)
    station = config.stations["S1"]
    refused = []

    def guard() -> contextlib.AbstractContextManager[object]:
        refused.append(1)
        raise LeaseEnded("ended")

    with Ledger(config.data_dir) as ledger:
        fetch_station(config, station, ledger)
        with commit_guard(guard), pytest.raises(LeaseEnded):
            parse_station(config, station, ledger, jobs=2)  # the task stops
    assert refused  # the commits in the parse threads asked the guard
    readings = config.data_dir / "lake" / "readings"
    assert not readings.exists() or not any(p.is_file() for p in readings.rglob("*"))


def test_ending_a_lease_waits_for_the_commit_in_flight(tmp_path: Path) -> None:
    """No rename slips between the lease check and the lease's end: ending
    takes the lease's lock exclusively, a commit holds it shared."""
    lease = new_lease(tmp_path, "run\n")
    hold = lease_guard(tmp_path, lease)
    ender = threading.Thread(target=end_leases, args=(tmp_path,))
    with hold():  # a rename in flight
        ender.start()
        ender.join(0.5)
        assert ender.is_alive()  # waits for it
        assert (tmp_path / lease).exists()
    ender.join(30)
    assert not ender.is_alive() and not (tmp_path / lease).exists()
    with pytest.raises(LeaseEnded), hold():
        pass


def test_a_commit_waiting_while_the_lease_ends_is_refused(tmp_path: Path) -> None:
    """A commit that opened the lease before it was removed finds it unlinked."""
    lease = new_lease(tmp_path, "run\n")
    path = tmp_path / lease
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as end_leases holds it
        outcome: list[str] = []

        def commit() -> None:
            try:
                with lease_guard(tmp_path, lease)():
                    outcome.append("committed")
            except LeaseEnded:
                outcome.append("refused")

        worker = threading.Thread(target=commit)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and not outcome  # opened, waits for the lock
        path.unlink()
    finally:
        os.close(fd)
    worker.join(30)
    assert outcome == ["refused"]
