"""The client side of a distributed run: connect, hand out stations, record results.

The client (the ``stationkit run`` / ``rebuild`` process) holds the run lock
and is the only process that writes the ledger. For each station it takes a
snapshot of the station's ledger rows, submits a task
(:func:`stationkit.cluster.worker.station_task`) and, as results come back,
plays each task's journal of ledger writes on state.sqlite in one
transaction (:func:`stationkit.cluster.journal.replay`). Tasks are handed
out a few at a time (twice the workers' threads), so a fleet of 10,000
stations never sits in the client's memory at once.

A worker that dies mid-task: the scheduler runs the task again elsewhere
(up to its ``allowed-failures``), and only the attempt that finished reaches
the client, so nothing is recorded twice; outputs are rewritten with the
same bytes. At the end, the temporaries an interrupted attempt left in the
station's folders are removed (the scheduler's ``remove-worker`` events name
the tasks that were running). A station whose task could not finish (it
killed every worker it ran on, the scheduler went away, no worker for
``no_workers_timeout_s``) is a failure of stage ``run``, like a station
whose local run crashed; the next run does it again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stationkit import __version__
from stationkit.atomic import clean_temp_files, sync_tree
from stationkit.cluster.journal import replay, snapshot
from stationkit.cluster.worker import (
    StationDone,
    StationJob,
    check_worker,
    replay_records,
    station_of_key,
    station_task,
    task_key,
)
from stationkit.config import SCHEDULER_FORMS, ClusterConfig, Config, StationConfig
from stationkit.errors import ClusterError
from stationkit.faults import ENVIRONMENT, kind_of
from stationkit.lease import new_lease
from stationkit.ledger import Ledger
from stationkit.pipeline.rebuild import station_outputs, station_state
from stationkit.pipeline.run import Failure, StationRun, describe, note_failure
from stationkit.progress import STATIONS, Progress, ProgressCallback, notify
from stationkit.sql import THREADS_ENV

log = logging.getLogger(__name__)

#: below data_dir: the files that prove every worker sees the data directory
#: how often the client looks at the cluster while it waits for results [s]
POLL_S = 2.0


@dataclass
class Cluster:
    """A connected Dask client and where it leads."""

    client: Any
    address: str
    settings: ClusterConfig


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "--scheduler needs Dask distributed: pip install 'stationkit[dask]'"
        ) from None
    return distributed


def worker_environment(workers: int) -> dict[str, str]:
    """Thread limits for ``local:N`` workers: the host's CPUs shared among them
    (a setting already in the environment wins)."""
    per = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    names = (THREADS_ENV, "POLARS_MAX_THREADS", "OMP_NUM_THREADS")
    return {name: os.environ.get(name, per) for name in names}


@contextlib.contextmanager
def open_cluster(settings: ClusterConfig) -> Iterator[Cluster]:
    """Connect to ``settings.scheduler`` (or start ``local:N``); wait for a worker.

    Raises ClusterError -- never hangs -- when the scheduler does not answer
    within ``connect_timeout_s`` or has no worker within that time.
    """
    address = settings.scheduler
    if address is None:
        raise ClusterError(f"no scheduler given; expected {SCHEDULER_FORMS}")
    distributed = _distributed()
    # cron stays quiet: distributed's own messages only with -vv
    verbose = logging.getLogger("stationkit").getEffectiveLevel() <= logging.DEBUG
    level = logging.INFO if verbose else logging.CRITICAL
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.startswith("distributed"):  # its config sets some of them one by one
            logging.getLogger(name).setLevel(level)
    timeout = settings.connect_timeout_s
    local = None
    with contextlib.ExitStack() as stack:
        try:
            if address.startswith("local:"):
                n = int(address.split(":", 1)[1])
                local = distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=level,
                    env=worker_environment(n),
                )
                stack.callback(_quietly, local.close)
                client = distributed.Client(local, set_as_default=False)
            else:
                client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            why = "" if str(exc).startswith("Timed out") else f" ({exc})"
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s{why}; "
                "is it running? Check [cluster] scheduler / --scheduler, or run in this "
                "process with --scheduler none"
            ) from None
        stack.callback(_quietly, client.close)
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise ClusterError(
                f"the Dask scheduler at {address} has no worker (waited {timeout:g} s); "
                "start `dask worker " + address + "` on the hosts that share the data directory"
            ) from None
        yield Cluster(client, address, settings)


def _quietly(close: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        close()


# ---------------------------------------------------------------- the driver


def _check_workers(cluster: Cluster, data_dir: Path, probe: str) -> None:
    found = cluster.client.run(check_worker, str(data_dir), probe, __version__, on_error="return")
    problems = [
        f"worker {addr} {why if isinstance(why, str) else f'cannot be checked ({why!r})'}"
        for addr, why in sorted(found.items())
        if why is not None
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ClusterError("; ".join(problems[:3]) + more)


MakeJob = Callable[[StationConfig, str, int, str], StationJob]


def drive(
    cluster: Cluster,
    config: Config,
    stations: Sequence[StationConfig],
    ledger: Ledger,
    make_job: MakeJob,
    *,
    progress: ProgressCallback | None = None,
) -> list[StationRun]:
    """Run ``stations`` on the cluster; record each result in ``ledger``.

    ``make_job(station, key, spread, probe)`` builds a station's task (its
    ledger snapshot taken then). Returns the stations' runs in their order.
    """
    if not stations:
        return []
    distributed = _distributed()
    client = cluster.client
    data_dir = config.data_dir
    # the run's lease (stationkit.lease): every worker must be able to read it, and
    # no task writes without it; the caller's run lock ended any left by a dead client
    probe = new_lease(data_dir, f"stationkit {__version__}\n")
    token = secrets.token_hex(6)
    try:
        _check_workers(cluster, data_dir, probe)
        threads = max(1, sum(client.nthreads().values()))
        # few stations on many workers: a station's months may take several
        spread = max(1, threads // len(stations))
        window = max(4, 2 * threads)
        todo = list(reversed(stations))
        futures: dict[Any, str] = {}
        runs: dict[str, StationRun] = {}
        idle_since: float | None = None

        def submit() -> None:
            st = todo.pop()
            key = task_key(token, st.id)
            job = make_job(st, key, spread, probe)
            futures[client.submit(station_task, job, key=key, pure=False)] = st.id

        while todo and len(futures) < window:
            submit()
        while futures:
            try:
                with client.as_current():
                    done, _ = distributed.wait(
                        list(futures), timeout=POLL_S, return_when="FIRST_COMPLETED"
                    )
            except TimeoutError:
                done = set()
            except Exception as exc:  # the scheduler went away
                why = f"the connection to the Dask scheduler at {cluster.address} was lost"
                _give_up(ledger, runs, futures, todo, f"{why} ({type(exc).__name__})")
                break
            if not done:
                lost = _stalled(cluster, idle_since)
                if isinstance(lost, str):
                    _give_up(ledger, runs, futures, todo, lost)
                    break
                idle_since = lost
                continue
            idle_since = None
            for future in done:
                station = futures.pop(future)
                runs[station] = _collect(ledger, station, future)
                future.release()
                notify(
                    progress,
                    Progress("", STATIONS, len(runs), len(stations), station, unit="stations"),
                )
                if todo:
                    submit()
        _clean_interrupted(cluster, data_dir, token, runs)
    finally:
        (data_dir / probe).unlink(missing_ok=True)
    return [runs[st.id] for st in stations]


def _collect(ledger: Ledger, station: str, future: Any) -> StationRun:
    """A finished task's run, its journal played on the ledger."""
    try:
        done: StationDone = future.result()
    except Exception as exc:
        lost = _lost_task(exc)
        if lost is not None:
            return _failed_run(ledger, station, lost, ENVIRONMENT)
        return _failed_run(ledger, station, describe(exc), kind_of(exc))
    replay_records(done.records)
    try:
        replay(ledger, done.journal)
    except (sqlite3.Error, OSError) as exc:
        # outputs without their ledger rows are redone by the next run, same bytes
        return _failed_run(ledger, station, describe(exc), ENVIRONMENT)
    log.debug("%s: done on %s in %.2f s", station, done.worker, done.seconds)
    return done.run


def _lost_task(exc: BaseException) -> str | None:
    """Why a task that the cluster (not the station) failed did not finish."""
    if type(exc).__name__ == "KilledWorker":
        return "every worker that ran this station died (out of memory?); the next run tries again"
    if isinstance(exc, concurrent.futures.CancelledError):
        return "the task was cancelled (the Dask scheduler went away?); the next run tries again"
    return None


def _failed_run(ledger: Ledger, station: str, reason: str, kind: str) -> StationRun:
    run = StationRun(station, fatal=True)
    failure = Failure(station, "run", "", reason, kind)
    run.failures.append(failure)
    note_failure(ledger, failure)
    return run


def _give_up(
    ledger: Ledger,
    runs: dict[str, StationRun],
    futures: dict[Any, str],
    todo: list[StationConfig],
    why: str,
) -> None:
    """Every station without a result fails (environment: the next run redoes it)."""
    reason = f"{why}; the next run does this station again"
    for station in [*futures.values(), *(st.id for st in reversed(todo))]:
        runs[station] = _failed_run(ledger, station, reason, ENVIRONMENT)
    futures.clear()
    todo.clear()


def _stalled(cluster: Cluster, idle_since: float | None) -> float | str | None:
    """While results are awaited: the time since the cluster has had no worker
    (None: it has some), or why the run cannot go on."""
    client = cluster.client
    if client.status not in ("running", "connecting"):
        return f"the connection to the Dask scheduler at {cluster.address} was lost"
    try:
        workers = len(client.nthreads())
    except Exception as exc:
        return f"the Dask scheduler at {cluster.address} does not answer ({exc})"
    if workers:
        return None
    now = time.monotonic()
    if idle_since is None:
        log.warning("the Dask cluster at %s has no worker; waiting for one", cluster.address)
        return now
    limit = cluster.settings.no_workers_timeout_s
    if now - idle_since > limit:
        return f"the Dask cluster at {cluster.address} had no worker for {limit:g} s"
    return idle_since


def _clean_interrupted(
    cluster: Cluster, data_dir: Path, token: str, runs: dict[str, StationRun]
) -> None:
    """Remove what tasks interrupted by a dying worker left (their temporaries)."""
    try:
        events = cluster.client.get_events("all")
    except Exception as exc:
        log.info("cannot read the scheduler's events (%s)", exc)
        return
    hit: set[str] = set()
    for _, message in events:
        if not isinstance(message, dict) or message.get("action") != "remove-worker":
            continue
        for key in message.get("processing-tasks") or ():
            station = station_of_key(key)
            if station in runs and str(key).startswith(task_key(token, station)):
                hit.add(station)
    for station in sorted(hit):
        removed = sum(
            clean_temp_files(data_dir / top)
            for top in (f"raw/{station}", *station_outputs(station), *station_state(station))
        )
        log.info(
            "%s: a worker was lost while working on it; the task ran again elsewhere "
            "(%d temporary file(s) removed)",
            station,
            removed,
        )


# ---------------------------------------------------------------- run, rebuild


def run_on_cluster(
    cluster: Cluster,
    config: Config,
    stations: Sequence[StationConfig],
    ledger: Ledger,
    *,
    force: bool = False,
    retry_failed: bool = False,
    progress: ProgressCallback | None = None,
) -> list[StationRun]:
    """``stationkit run``'s per-station chain on the cluster's workers."""
    level = logging.getLogger("stationkit").getEffectiveLevel()

    def make(station: StationConfig, key: str, spread: int, probe: str) -> StationJob:
        return StationJob(
            kind="run",
            config=config,
            station=station,
            ledger=snapshot(ledger, station.id),
            force=force,
            retry_failed=retry_failed,
            spread=spread,
            log_level=level,
            probe=probe,
            key=key,
        )

    return drive(cluster, config, stations, ledger, make, progress=progress)


def rebuild_on_cluster(
    cluster: Cluster,
    config: Config,
    stations: Sequence[StationConfig],
    ledger: Ledger,
    old: Ledger | None,
) -> list[StationRun]:
    """``stationkit rebuild``'s per-station work (``config.data_dir`` is the
    directory aside) on the cluster's workers; ``old`` the current ledger."""
    level = logging.getLogger("stationkit").getEffectiveLevel()

    def make(station: StationConfig, key: str, spread: int, probe: str) -> StationJob:
        return StationJob(
            kind="rebuild",
            config=config,
            station=station,
            ledger=snapshot(ledger, station.id),
            old=snapshot(old, station.id, ("files",)) if old is not None else None,
            spread=spread,
            log_level=level,
            probe=probe,
            key=key,
        )

    runs = drive(cluster, config, stations, ledger, make)
    _sync_workers(cluster, config.data_dir)
    return runs


def _sync_workers(cluster: Cluster, data_dir: Path) -> None:
    """Every worker host makes what it wrote durable (rebuild tasks skip their
    fsyncs: the tree aside is put in place only after this)."""
    try:
        found = cluster.client.run(sync_tree, data_dir, on_error="return")
    except Exception as exc:  # the scheduler went away
        raise ClusterError(
            f"cannot have the Dask workers sync the rebuilt files ({type(exc).__name__}: "
            f"{exc}); nothing was replaced"
        ) from None
    failed = sorted(addr for addr, what in found.items() if isinstance(what, BaseException))
    if failed:
        raise ClusterError(
            f"worker {failed[0]} could not sync the rebuilt files to storage "
            f"({found[failed[0]]}); nothing was replaced"
        )
