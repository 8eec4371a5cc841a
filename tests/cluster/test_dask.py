"""`run` and `rebuild` on a real Dask cluster: a `dask scheduler` and two
`dask worker` processes on loopback (tests/cluster/dask_cluster.py).

Every distributed result is compared with a plain local run of the same
inputs: the same exit code, the same --json summary, byte-identical raw/,
lake/, exports/, quarantine/ and staging/, and the same ledger rows (less the
columns that say when something happened).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stationkit.atomic import TMP_PREFIX
from stationkit.lock import RunLock
from tests.cluster.dask_cluster import DaskCluster
from tests.fetch.sshd import free_port
from tests.pipeline.helpers import toa5
from tests.pipeline.test_crash import build_template

STATIONKIT = str(Path(sys.executable).parent / "stationkit")
TREES = ("raw", "lake", "exports", "quarantine", "staging")
TABLES = ("files", "parses", "builds", "partitions", "fetches", "failures", "events")
#: ledger columns that say when (or in which order) something happened, not what
NOT_COMPARED = {"id", "at", "stamp"}


def stationkit(conf: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STATIONKIT, "--config", str(conf), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def daily(folder: Path, day0: int, days: int, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(day0, day0 + days):
        rows = [
            (
                f"2024-02-{1 + i:02d} {h:02d}:{m:02d}:00",
                round(rng.uniform(0, 20), 3),
                round(rng.uniform(0, 2), 3),
            )
            for h in range(24)
            for m in range(0, 60, 10)
        ]
        (folder / f"day_{i:02d}.dat").write_text(toa5(rows))


def state(root: Path) -> dict[str, Any]:
    """Every output file's bytes and the ledger's rows, in a comparable form."""
    data = root / "data"
    trees = {
        top: {
            p.relative_to(data / top).as_posix(): p.read_bytes()
            for p in sorted((data / top).rglob("*"))
            if p.is_file()
        }
        for top in TREES
        if (data / top).exists()
    }
    con = sqlite3.connect(data / "state.sqlite")
    ledger = {}
    for table in TABLES:
        cols = [
            r[1]
            for r in con.execute(f"PRAGMA table_info({table})")
            if r[1] not in NOT_COMPARED and not r[1].endswith("_at")
        ]
        ledger[table] = sorted(
            con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr
        )
    con.close()
    return {"trees": trees, "ledger": ledger}


def temporaries(root: Path) -> list[Path]:
    return [p for p in (root / "data").rglob(".stationkit-tmp-*") if ".tmp" not in p.parts]


@pytest.fixture(scope="module")
def dask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    cluster = DaskCluster.start(tmp_path_factory.mktemp("dask"), workers=2)
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test_crash's two stations (TOB3 card, a bad file, a one-minute file,
    Windographer and CSV exports) and four more of 28 daily files each."""
    root = tmp_path_factory.mktemp("fleet") / "template"
    conf = build_template(root)
    extra = ""
    for n in range(3, 7):
        daily(root / "incoming" / f"S{n}", 0, 28, seed=n)
        extra += (
            f'[stations.S{n}]\nutc_offset_hours = 1\n[stations.S{n}.source]\nkind = "local"\n'
            f'path = "incoming/S{n}"\n[stations.S{n}.export]\nformat = ["windographer", "csv"]\n'
        )
    conf.write_text(conf.read_text() + extra)
    return root


def copy(template: Path, where: Path) -> Path:
    shutil.copytree(template, where)  # copy2: the source mtimes stay the same
    return where / "stations.toml"


@pytest.fixture(scope="module")
def reference(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A plain local run of the template."""
    conf = copy(template, tmp_path_factory.mktemp("reference") / "local")
    done = stationkit(conf, "run", "--json")
    assert done.returncode == 3, done.stderr  # S2's bad.dat is quarantined
    return {"root": conf.parent, "json": json.loads(done.stdout), "state": state(conf.parent)}


def test_run_on_workers_matches_a_local_run(
    dask: DaskCluster, template: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    conf = copy(template, tmp_path / "dist")
    done = stationkit(conf, "run", "--json", "--scheduler", dask.address)
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout) == reference["json"]
    # the failure, as a local run prints it
    assert "stationkit: error: S2: parse: " in done.stderr and "raw/S2/bad.dat" in done.stderr
    assert state(conf.parent) == reference["state"]
    assert not temporaries(conf.parent)

    # nothing new: nothing done, nothing changed
    again = stationkit(conf, "run", "--json", "--scheduler", dask.address)
    assert again.returncode == 0, again.stderr
    assert state(conf.parent) == reference["state"]

    # a new day at two stations: the same as the local run given the same day
    local = copy(reference["root"], tmp_path / "local")
    daily(tmp_path / "new" / "S1", 14, 1, seed=99)
    daily(tmp_path / "new" / "S4", 28, 1, seed=98)
    for root in (conf.parent, local.parent):
        shutil.copytree(tmp_path / "new", root / "incoming", dirs_exist_ok=True)
    assert stationkit(local, "run").returncode == 0
    more = stationkit(conf, "run", "--scheduler", dask.address, "-v")
    assert more.returncode == 0, more.stderr
    assert "S1: 1 fetched, 1 parsed, 0 failed" in more.stdout
    assert state(conf.parent) == state(local.parent)


def test_worker_killed_mid_task_is_retried(
    dask: DaskCluster, template: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    """SIGKILL the worker process running a station once its first readings
    are written: the nanny restarts it, the other worker takes the task, and
    the run ends as a local one does -- nothing lost, nothing recorded twice,
    no temporary left."""
    conf = copy(template, tmp_path / "dist")
    readings = conf.parent / "data" / "lake" / "readings"
    killed: list[str] = []

    def hit(_: subprocess.Popen[str]) -> bool:
        for addr, keys in dask.client.processing().items():
            for key in keys:
                station = str(key).split(":")[1] if str(key).startswith("stationkit-") else ""
                folder = readings / f"station={station}"
                if station and folder.is_dir() and any(folder.iterdir()):
                    os.kill(dask.worker_pids()[addr], signal.SIGKILL)
                    killed.append(str(key))
                    return True
        return False

    done = _run_until(conf, dask.address, hit, "--json", "-v")
    out, err = done.stdout, done.stderr
    assert killed, "no station task was seen running with its readings half written"
    lost = [
        msg
        for _, msg in dask.client.get_events("all")
        if isinstance(msg, dict)
        and msg.get("action") == "remove-worker"
        and killed[0] in msg.get("processing-tasks", ())
    ]
    assert lost, f"the scheduler did not see {killed[0]} interrupted"
    assert done.returncode == 3, err
    station = killed[0].split(":")[1]
    assert f"{station}: a worker was lost while working on it; the task ran again" in err
    assert json.loads(out) == reference["json"]
    assert state(conf.parent) == reference["state"]
    assert not temporaries(conf.parent)
    dask.wait_for_workers(2)  # the nanny's new worker, for the next tests


def test_unreachable_scheduler_exits_1_and_tells_on_failure(
    long_station: Path, tmp_path: Path
) -> None:
    conf = copy(long_station, tmp_path / "dist")
    port = free_port()  # nothing listens there
    told = tmp_path / "told.txt"
    notify = [sys.executable, "-c", f"import sys; open({str(told)!r}, 'w').write(sys.stdin.read())"]
    conf.write_text(
        f"on_failure = {json.dumps(notify)}\n"
        f'[cluster]\nscheduler = "tcp://127.0.0.1:{port}"\nconnect_timeout_s = 1\n'
        + conf.read_text()
    )
    done = stationkit(conf, "run", timeout=60)
    assert done.returncode == 1
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 1 s" in done.stderr
    assert "Traceback" not in done.stderr
    assert f"tcp://127.0.0.1:{port}" in told.read_text()
    assert not (conf.parent / "data" / "lake").exists()  # nothing was done
    # the lock was released; --scheduler none runs here whatever stations.toml says
    here = stationkit(conf, "run", "--scheduler", "none")
    assert here.returncode == 0, here.stderr


def test_rebuild_on_workers(dask: DaskCluster, reference: dict[str, Any], tmp_path: Path) -> None:
    conf = copy(reference["root"], tmp_path / "dist")
    check = stationkit(conf, "rebuild", "--check", "--scheduler", dask.address)
    assert check.returncode == 3, check.stderr  # bad.dat fails again, nothing differs
    assert "identical" in check.stdout
    # the replaced lake and ledger rows are those of the incremental local run
    stale = conf.parent / "data" / "lake" / "clean" / "station=S3" / "2024-02.parquet"
    stale.write_bytes(b"not what a build writes")
    done = stationkit(conf, "rebuild", "--scheduler", dask.address)
    assert done.returncode == 3, done.stderr
    got, want = state(conf.parent), reference["state"]
    assert got["trees"] == want["trees"]
    for table in ("files", "parses", "builds", "partitions"):
        assert got["ledger"][table] == want["ledger"][table], table


@pytest.fixture(scope="module")
def long_station(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One station, a day in each of 7 months."""
    root = tmp_path_factory.mktemp("months") / "template"
    rng = random.Random(3)
    inc = root / "incoming" / "L1"
    inc.mkdir(parents=True)
    for month in range(1, 8):
        rows = [
            (f"2024-{month:02d}-15 {h:02d}:{m:02d}:00", rng.uniform(0, 20), rng.uniform(0, 2))
            for h in range(24)
            for m in range(0, 60, 10)
        ]
        (inc / f"m{month:02d}.dat").write_text(toa5(rows))
    (root / "stations.toml").write_text(
        '[stations.L1]\nutc_offset_hours = 1\n[stations.L1.source]\nkind = "local"\n'
        'path = "incoming/L1"\n[stations.L1.export]\nformat = ["windographer", "csv"]\n'
    )
    return root


def test_a_large_station_spreads_its_months_over_the_workers(
    dask: DaskCluster, long_station: Path, tmp_path: Path
) -> None:
    local = copy(long_station, tmp_path / "local")
    assert stationkit(local, "run").returncode == 0
    conf = copy(long_station, tmp_path / "dist")
    done = stationkit(conf, "run", "-v", "--scheduler", dask.address)
    assert done.returncode == 0, done.stderr
    # one station on two single-threaded workers: its 7 months in 2 tasks
    assert "L1: 7 months built in 2 tasks" in done.stderr
    assert state(conf.parent) == state(local.parent)


def test_local_cluster_of_worker_processes(long_station: Path, tmp_path: Path) -> None:
    local = copy(long_station, tmp_path / "local")
    assert stationkit(local, "run").returncode == 0
    conf = copy(long_station, tmp_path / "dist")
    done = stationkit(conf, "run", "--scheduler", "local:1", "--json")
    assert done.returncode == 0, done.stderr
    assert state(conf.parent) == state(local.parent)


def _files(root: Path) -> dict[str, int]:
    """Every file below data/ but temporaries, and its mtime [ns]."""
    return {
        p.relative_to(root / "data").as_posix(): p.stat().st_mtime_ns
        for p in (root / "data").rglob("*")
        if p.is_file() and not p.name.startswith(TMP_PREFIX)
    }


def _run_until(
    conf: Path, address: str, hit: Callable[[subprocess.Popen[str]], bool], *options: str
) -> subprocess.CompletedProcess[str]:
    """A distributed run; ``hit(proc)`` polled while it runs until it returns
    True (it may kill something); the finished run."""
    proc = subprocess.Popen(
        [STATIONKIT, "--config", str(conf), "run", *options, "--scheduler", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while proc.poll() is None and not hit(proc):
            time.sleep(0.01)
        out, err = proc.communicate(timeout=180)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        if proc.poll() is None:
            proc.kill()


def _start_and_kill(
    conf: Path, cluster: DaskCluster, kill: Callable[[subprocess.Popen[str]], None]
) -> str:
    """Start a distributed run; ``kill`` once the first readings are written; its stderr."""
    readings = conf.parent / "data" / "lake" / "readings"

    def hit(proc: subprocess.Popen[str]) -> bool:
        if readings.is_dir() and any(readings.rglob("*.parquet")):
            kill(proc)
            return True
        return False

    return _run_until(conf, cluster.address, hit).stderr


def _as_reference(root: Path, reference: dict[str, Any]) -> None:
    """A plain run now ends as the reference run did."""
    again = stationkit(root / "stations.toml", "run", "--scheduler", "none")
    assert again.returncode == 3, again.stderr  # bad.dat again
    got, want = state(root), reference["state"]
    assert got["trees"] == want["trees"]
    for table in ("files", "parses", "builds", "partitions"):
        assert got["ledger"][table] == want["ledger"][table], table
    assert not temporaries(root)


def test_scheduler_lost_mid_run(template: Path, reference: dict[str, Any], tmp_path: Path) -> None:
    """SIGKILL the scheduler while the first station's task runs: the run
    ends at once (exit 1: no station got done; each a failure the next run
    redoes; no traceback) and removes its lease; a plain run after it ends
    as the reference did."""
    cluster = DaskCluster.start(tmp_path / "dask", workers=1)
    try:
        conf = copy(template, tmp_path / "dist")

        def kill_scheduler(_: subprocess.Popen[str]) -> None:
            assert cluster.scheduler is not None
            os.killpg(cluster.scheduler.pid, signal.SIGKILL)

        err = _start_and_kill(conf, cluster, kill_scheduler)
    finally:
        cluster.close()
    assert "Traceback" not in err
    for station in ("S1", "S2", "S3", "S4", "S5", "S6"):
        assert f"stationkit: error: {station}: run: the connection to the Dask scheduler" in err
    assert "was lost" in err and "the next run does this station again" in err
    assert not list((conf.parent / "data" / ".tmp" / "cluster").glob("probe-*"))
    _as_reference(conf.parent, reference)


def test_a_task_orphaned_by_a_killed_client_writes_nothing_more(
    template: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    """SIGKILL the client while a station's task runs: the task goes on on its
    worker (a running thread cannot be stopped), but once a process holds the
    run lock -- which ends the dead client's lease -- it commits nothing more,
    so the lock holder owns the data directory as it should."""
    cluster = DaskCluster.start(tmp_path / "dask", workers=1)
    try:
        conf = copy(template, tmp_path / "dist")
        data = conf.parent / "data"
        _start_and_kill(conf, cluster, lambda proc: proc.kill())
        assert list((data / ".tmp" / "cluster").glob("probe-*"))  # the dead client's lease
        with RunLock(data):
            assert not list((data / ".tmp" / "cluster").glob("probe-*"))
            before = _files(conf.parent)
            time.sleep(5)  # the orphaned station's task had seconds of work left
            assert _files(conf.parent) == before
    finally:
        cluster.close()
    _as_reference(conf.parent, reference)
