"""What runs on a Dask worker: one station's chain against a ledger snapshot.

A task gets the station's settings and a snapshot of its ledger rows
(:mod:`stationkit.cluster.journal`), runs the same stage code a local run
runs -- writing every output file atomically into the shared data directory
-- and returns what happened: the station's summary and failures, the
journal of ledger writes, and the log records the stages emitted. It never
opens state.sqlite and never takes the run lock.

A large station's calibrate (more months to build than one task should
take, while workers would otherwise idle: a rebuild of few stations) is
spread over several tasks of consecutive months (:func:`spread_months`);
each month is built from exactly its own inputs, so the files are the same
bytes whichever task builds them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stationkit import __version__
from stationkit.atomic import commit_guard, deferred_sync
from stationkit.calibrate.engine import EngineResult, calibrate_readings
from stationkit.calibrate.partition import Month
from stationkit.cluster.journal import Statement, journal_of, open_snapshot
from stationkit.config import Config, StationConfig
from stationkit.errors import ClusterError
from stationkit.faults import kind_of
from stationkit.lease import lease_guard
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import MONTH_BUILDER
from stationkit.pipeline.rebuild import reconstruct
from stationkit.pipeline.run import (
    Failure,
    StationRun,
    describe,
    process_station,
    run_station,
)
from stationkit.sql import THREADS_ENV

log = logging.getLogger(__name__)

#: a large station's months go to several tasks only when each gets this many
MIN_MONTHS_PER_TASK = 3
#: the key of every task of a run starts with this, then the run's token
KEY_PREFIX = "stationkit"

#: (logger name, level, message) of a record a task emitted
Record = tuple[str, int, str]


@dataclass(frozen=True)
class StationJob:
    """One station's work, as the client sends it."""

    #: "run": fetch and every later stage; "rebuild": reconstruct the file rows
    #: from raw/, then every stage after fetch
    kind: str
    config: Config
    station: StationConfig
    #: the station's ledger rows (journal.snapshot)
    ledger: bytes
    #: rebuild: the current ledger's rows of the station (source mtimes)
    old: bytes | None = None
    force: bool = False
    retry_failed: bool = False
    #: how many tasks a large calibrate may be spread over
    spread: int = 1
    #: the client's log level: records at or above it come back
    log_level: int = logging.WARNING
    #: the client's stationkit version (workers must run the same)
    version: str = __version__
    #: a file below config.data_dir the client wrote: proof of shared storage
    probe: str = ""
    #: this task's key (subtasks' keys extend it)
    key: str = ""


@dataclass
class StationDone:
    """What a station's task did."""

    station: str
    run: StationRun
    journal: list[Statement]
    records: list[Record] = field(default_factory=list)
    worker: str = ""
    seconds: float = 0.0


def task_key(token: str, station: str, *parts: str) -> str:
    """``stationkit-<token>:<station>[:...]``: unique to a run, names the station."""
    return ":".join((f"{KEY_PREFIX}-{token}", station, *parts))


def station_of_key(key: object) -> str | None:
    """The station a task key of :func:`task_key` names."""
    if not isinstance(key, str) or not key.startswith(f"{KEY_PREFIX}-"):
        return None
    parts = key.split(":")
    return parts[1] if len(parts) > 1 else None


# ---------------------------------------------------------------- checks


def check_worker(data_dir: str, probe: str, version: str) -> str | None:
    """Run on every worker before the work: None when it can take part, else why not."""
    if version != __version__:
        return (
            f"runs stationkit {__version__}, the client {version}; install the same "
            "version on every host"
        )
    path = Path(data_dir) / probe
    try:
        path.read_text()
    except OSError:
        return (
            f"cannot see the data directory {data_dir} (no {probe} there): it must be on "
            "storage every worker mounts at the same path (docs/scaling.md)"
        )
    return None


def _limit_threads() -> None:
    """Arrow's pool follows $STATIONKIT_THREADS too (DuckDB reads it per query;
    polars only at start: set POLARS_MAX_THREADS in the worker's environment)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        import pyarrow

        if pyarrow.cpu_count() != int(value):
            pyarrow.set_cpu_count(int(value))


# ---------------------------------------------------------------- log records


class _Collect(logging.Handler):
    """Keeps the records one thread emits."""

    def __init__(self, level: int, thread: int) -> None:
        super().__init__(level)
        self.thread = thread
        self.records: list[Record] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the task
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        self.records.append((record.name, record.levelno, message))


@contextlib.contextmanager
def collected_logs(level: int) -> Iterator[list[Record]]:
    """The stationkit records this thread emits at ``level`` or above."""
    logger = logging.getLogger("stationkit")
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    handler = _Collect(level, threading.get_ident())
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def replay_records(records: Sequence[Record]) -> None:
    """Emit a task's records through the client's loggers (stderr, --log-file)."""
    for name, level, message in records:
        logging.getLogger(name).log(level, "%s", message)


# ---------------------------------------------------------------- the tasks


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""


def station_task(job: StationJob) -> StationDone:
    """Run one station's work on a worker; see :class:`StationJob`."""
    started = time.monotonic()
    problem = check_worker(str(job.config.data_dir), job.probe, job.version) if job.probe else None
    if problem is not None:
        raise ClusterError(f"worker {_worker_address() or '?'} {problem}")
    _limit_threads()
    ledger = open_snapshot(job.ledger, job.config.data_dir)
    with (
        _leased(job.config.data_dir, job.probe),
        collected_logs(job.log_level) as records,
        _spreading(job),
    ):
        if job.kind == "rebuild":
            run = _rebuild(job, ledger)
        else:
            run = run_station(
                job.config,
                job.station,
                ledger,
                force=job.force,
                retry_failed=job.retry_failed,
            )
    return StationDone(
        station=job.station.id,
        run=run,
        journal=journal_of(ledger),
        records=list(records),
        worker=_worker_address(),
        seconds=time.monotonic() - started,
    )


def _rebuild(job: StationJob, ledger: Ledger) -> StationRun:
    """The file rows from raw/, then every stage after fetch (pipeline.rebuild)."""
    run = StationRun(job.station.id)
    old = open_snapshot(job.old, job.config.data_dir) if job.old is not None else None
    try:
        # built aside: no fsync per file; the client has every worker sync
        # once at the end, before it puts the tree in place
        with deferred_sync():
            reconstruct(job.config, job.station, ledger, old)
            process_station(job.config, job.station, ledger, run)
    except Exception as exc:  # as run_station: one station's bug must not hide the others
        log.debug("rebuild of %s stopped", job.station.id, exc_info=True)
        run.failures.append(Failure(job.station.id, "run", "", describe(exc), kind_of(exc)))
        run.fatal = True
    return run


def _leased(data_dir: Path, lease: str) -> contextlib.AbstractContextManager[None]:
    """Outputs are committed only while the run's lease exists (stationkit.lease)."""
    return commit_guard(lease_guard(data_dir, lease)) if lease else contextlib.nullcontext()


@contextlib.contextmanager
def _spreading(job: StationJob) -> Iterator[None]:
    if job.spread <= 1:
        yield
        return
    token = MONTH_BUILDER.set(
        functools.partial(
            spread_months, job.spread, job.key, job.log_level, str(job.config.data_dir), job.probe
        )
    )
    try:
        yield
    finally:
        MONTH_BUILDER.reset(token)


def split_months(months: Sequence[Month], count: int) -> list[list[Month]]:
    """``months`` (sorted) in ``count`` runs of consecutive months, sizes within one."""
    size, extra = divmod(len(months), count)
    groups: list[list[Month]] = []
    i = 0
    for k in range(count):
        n = size + (k < extra)
        groups.append(list(months[i : i + n]))
        i += n
    return [g for g in groups if g]


def spread_months(
    pieces: int,
    key: str,
    level: int,
    lease_root: str,
    lease: str,
    station: str,
    *args: Any,
    months: Iterable[Month] | None = None,
    **options: Any,
) -> EngineResult:
    """:func:`~stationkit.calibrate.engine.calibrate_readings` with its months
    spread over up to ``pieces`` tasks of at least :data:`MIN_MONTHS_PER_TASK`
    consecutive months; the results merged (the calibrate summary counts
    points and deduplicated files as the largest of any task)."""
    wanted = sorted(months) if months is not None else []
    count = min(pieces, len(wanted) // MIN_MONTHS_PER_TASK)
    if count <= 1:
        return calibrate_readings(station, *args, months=months, **options)
    from distributed import worker_client

    groups = split_months(wanted, count)
    log.info("%s: %d months built in %d tasks", station, len(wanted), len(groups))
    with worker_client() as client:  # leaves this worker's thread to the subtasks
        futures = [
            client.submit(
                months_task,
                (station, *args),
                {**options, "months": group},
                level,
                lease_root,
                lease,
                key=f"{key}:months:{group[0].key}..{group[-1].key}",
                pure=False,
            )
            for group in groups
        ]
        done = client.gather(futures)
    results: list[EngineResult] = []
    for result, records in done:
        replay_records(records)
        results.append(result)
    return merge_results(results)


def months_task(
    args: tuple[Any, ...], options: dict[str, Any], level: int, lease_root: str, lease: str
) -> tuple[EngineResult, list[Record]]:
    """Build some months of one station (a subtask of :func:`spread_months`)."""
    _limit_threads()
    with _leased(Path(lease_root), lease), collected_logs(level) as records:
        result = calibrate_readings(*args, **options)
    return result, list(records)


def merge_results(results: Sequence[EngineResult]) -> EngineResult:
    """One result for builds of disjoint months."""
    out = EngineResult()
    for r in results:
        out.partitions.update(r.partitions)
        out.rows += r.rows
        out.flagged += r.flagged
        out.qc_hits += r.qc_hits
        out.batches += r.batches
        out.points = max(out.points, r.points)
        out.deduplicated_files = max(out.deduplicated_files, r.deduplicated_files)
        if r.first_timestamp is not None:
            out.first_timestamp = min(filter(None, (out.first_timestamp, r.first_timestamp)))
        if r.last_timestamp is not None:
            out.last_timestamp = max(filter(None, (out.last_timestamp, r.last_timestamp)))
    return out
