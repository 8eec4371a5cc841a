"""``stationkit run``: every stage, for each station, under the run lock.

Stages run in order per station: fetch -> unpack -> parse -> calibrate ->
export. A failure on one file never stops the other files; a station whose
source cannot be reached still has its already-fetched files processed; the
other stations go on. Stations run
in up to ``jobs`` worker threads (each with its own ledger connection;
polars, pyarrow and DuckDB release the GIL for the heavy work); with fewer
stations than workers, the rest parse a station's files in parallel.

``shard=(k, n)`` runs only the stations whose stable hash falls in shard k of
n, so several cron hosts can split a fleet without coordinating.

``cluster`` (a ``[cluster]`` scheduler) sends each station's chain to the
workers of a Dask scheduler instead (:mod:`stationkit.cluster`); this
process keeps the lock and is still the only one that writes the ledger.

Failures are recorded in the ledger as they happen (``failures``). At the end
of a complete run -- still under the lock -- every failure of the selected
stations that no run has reported yet, those of an earlier run that was
killed included, goes into the result (summary, exit code, ``on_failure``)
and is then marked reported. Failures of that earlier run that have since
been resolved (a retried file that now succeeded) are marked without being
shown.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stationkit.atomic import clean_temp_files
from stationkit.config import ClusterConfig, Config, StationConfig
from stationkit.errors import StationkitError
from stationkit.faults import CONTENT, ENVIRONMENT, describe_os_error, is_environment, kind_of
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.calibrate import calibrate_station
from stationkit.pipeline.export import export_configured
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.health import newly_stale, staleness
from stationkit.pipeline.html_report import write_html_report
from stationkit.pipeline.parse import parse_station
from stationkit.pipeline.unpack import unpack_station
from stationkit.progress import STATIONS, Progress, ProgressCallback, notify
from stationkit.textsafe import show_name

if TYPE_CHECKING:
    from stationkit.cluster.client import Cluster

log = logging.getLogger(__name__)


#: what follows the reason of a failure an earlier, interrupted run recorded
EARLIER = " (recorded by an earlier run that was interrupted)"


@dataclass(frozen=True)
class Failure:
    """One thing that went wrong: where, and why."""

    station: str
    stage: str
    file: str
    reason: str
    #: environment (a later run retries it by itself) or content; see stationkit.faults
    kind: str = CONTENT
    #: recorded by an earlier run that did not finish (killed), reported now
    earlier: bool = False


@dataclass
class StationRun:
    """One station's stage summaries and failures."""

    station: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    work_done: int = 0
    fatal: bool = False
    #: workers for the files of this station
    file_jobs: int = 1
    #: called as work proceeds (:mod:`stationkit.progress`)
    progress: ProgressCallback | None = field(default=None, repr=False, compare=False)
    #: unpack and parse again what failed for its content before
    retry_failed: bool = False


@dataclass
class RunResult:
    """Per-station, per-stage summaries and every failure: this run's, then the
    unreported ones of earlier runs that were interrupted."""

    runs: list[StationRun] = field(default_factory=list)
    #: failures of no one station (the fleet report)
    fleet_failures: list[Failure] = field(default_factory=list)
    earlier: list[Failure] = field(default_factory=list)

    @property
    def failures(self) -> list[Failure]:
        return [f for r in self.runs for f in r.failures] + self.fleet_failures + self.earlier

    @property
    def errors(self) -> list[tuple[str, str, str]]:
        """(station, "stage: file", reason) for the CLI's stderr report."""
        return [
            (f.station, f"{f.stage}: {f.file}" if f.file else f.stage, f.reason)
            for f in self.failures
        ]

    @property
    def exit_code(self) -> int:
        """0 all good; 3 some files or stations failed; 1 every station failed outright."""
        if not self.failures:
            return 0
        if self.runs and all(r.fatal and not r.work_done for r in self.runs):
            return 1
        return 3

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "stations": {r.station: r.stages for r in self.runs},
            "failures": [f.__dict__ for f in self.failures],
        }

    def text(self) -> str:
        lines = []
        for r in self.runs:
            parts = []
            if "fetch" in r.stages:
                parts.append(f"{r.stages['fetch'].get('fetched', 0)} fetched")
            if "unpack" in r.stages and r.stages["unpack"].get("archives"):
                parts.append(f"{r.stages['unpack']['archives']} archive(s) unpacked")
            if "parse" in r.stages:
                p = r.stages["parse"]
                parts.append(f"{p['parsed']} parsed, {p['failed']} failed")
            c = r.stages.get("calibrate", {})
            if c.get("built") and c.get("rows"):
                parts.append(f"{c['rows']} clean rows")
            written = [e for e in r.stages.get("export", {}).get("exports", []) if not e["skipped"]]
            if written:
                parts.append(f"{len(written)} export(s) written")
            lines.append(f"{r.station}: " + ", ".join(parts))
        return "\n".join(lines)

    def failure_summary(self) -> str:
        """What cron mails: one line per failure naming station, stage, file, reason
        (names escaped: a file name cannot add or fake a line)."""
        lines = [f"stationkit run: {len(self.failures)} failure(s), exit code {self.exit_code}"]
        for f in self.failures:
            where = f"{f.station} {f.stage}" + (f" {show_name(f.file)}" if f.file else "")
            note = EARLIER if f.earlier else ""
            lines.append(f"  {where}: {show_name(f.reason)}{note}")
        return "\n".join(lines)


def shard_of(station_id: str, shards: int) -> int:
    """Stable shard number (0-based) of a station; the same on every host."""
    return int.from_bytes(hashlib.sha256(station_id.encode()).digest()[:8], "big") % shards


def select_shard(
    stations: Sequence[StationConfig], shard: tuple[int, int] | None
) -> list[StationConfig]:
    if shard is None:
        return list(stations)
    k, n = shard
    return [s for s in stations if shard_of(s.id, n) == k - 1]


Stage = Callable[[Config, StationConfig, Ledger, StationRun], None]


def _note(ledger: Ledger, failure: Failure) -> None:
    """Record a failure the stage itself does not record (calibrate, export, a
    station's run), so that a killed run's is still reported and ``status``
    shows it. A ledger that cannot be written (full disk) only loses the note."""
    try:
        ledger.record_failure(
            failure.station, failure.stage, failure.file, failure.reason, kind=failure.kind
        )
    except (sqlite3.Error, OSError) as exc:
        log.warning("%s: cannot record the failure in the ledger (%s)", failure.station, exc)


note_failure = _note


def _failed(ledger: Ledger, run: StationRun, stage: str, exc: BaseException) -> None:
    failure = Failure(run.station, stage, "", describe(exc), kind_of(exc))
    run.stages[stage] = {"error": failure.reason}
    run.failures.append(failure)
    _note(ledger, failure)


def _fetch(
    config: Config, station: StationConfig, ledger: Ledger, run: StationRun, force: bool
) -> None:
    if station.source is None:
        return
    try:
        f = fetch_station(config, station, ledger, force=force)
    except StationkitError as exc:
        _failed(ledger, run, "fetch", exc)
        run.stages["fetch"]["fetched"] = 0
        run.fatal = True
        return
    run.stages["fetch"] = f.as_dict()
    run.failures.extend(Failure(station.id, "fetch", p, e, ENVIRONMENT) for p, e in f.errors)
    run.work_done += f.fetched


def _unpack(config: Config, station: StationConfig, ledger: Ledger, run: StationRun) -> None:
    u = unpack_station(config, station, ledger, retry_failed=run.retry_failed)
    run.stages["unpack"] = u.as_dict()
    run.failures.extend(Failure(station.id, "unpack", p, e) for p, e in u.errors)
    run.work_done += u.archives


def _parse(config: Config, station: StationConfig, ledger: Ledger, run: StationRun) -> None:
    p = parse_station(
        config,
        station,
        ledger,
        jobs=run.file_jobs,
        progress=run.progress,
        retry_failed=run.retry_failed,
    )
    run.stages["parse"] = p.as_dict()
    run.failures.extend(Failure(station.id, "parse", path, e) for path, e in p.errors)
    run.work_done += p.parsed


def _calibrate(config: Config, station: StationConfig, ledger: Ledger, run: StationRun) -> None:
    try:
        c = calibrate_station(config, station, ledger)
    except StationkitError as exc:
        _failed(ledger, run, "calibrate", exc)
        return
    ledger.resolve_failures(station.id, "calibrate")
    run.stages["calibrate"] = c.as_dict()
    run.work_done += int(c.built and c.rows > 0)  # an empty build is not work done


def _export(config: Config, station: StationConfig, ledger: Ledger, run: StationRun) -> None:
    """The exports configured in [stations.<id>.export]; none without that table,
    and none (without a failure) while the station has no clean data yet."""
    try:
        done = export_configured(config, station, ledger)
    except StationkitError as exc:
        _failed(ledger, run, "export", exc)
        return
    ledger.resolve_failures(station.id, "export")
    run.stages["export"] = {"exports": [s.as_dict() for s in done]}
    run.work_done += sum(not s.skipped for s in done)


#: the stages after fetch, in order; ``rebuild`` runs exactly these
PROCESS_STAGES: tuple[Stage, ...] = (_unpack, _parse, _calibrate, _export)


def process_station(
    config: Config, station: StationConfig, ledger: Ledger, run: StationRun
) -> None:
    """Every stage after fetch, on what the ledger holds."""
    for stage in PROCESS_STAGES:
        notify(run.progress, Progress(station.id, stage.__name__.strip("_"), 0, None))
        stage(config, station, ledger, run)


def run_station(
    config: Config,
    station: StationConfig,
    ledger: Ledger,
    *,
    force: bool = False,
    file_jobs: int = 1,
    progress: ProgressCallback | None = None,
    retry_failed: bool = False,
) -> StationRun:
    """The chain for one station."""
    run = StationRun(station.id, file_jobs=file_jobs, progress=progress, retry_failed=retry_failed)
    notify(progress, Progress(station.id, "fetch", 0, None))
    try:
        _fetch(config, station, ledger, run, force)
        process_station(config, station, ledger, run)
    except Exception as exc:  # a bug in one station's run must not hide the others
        log.debug("run of %s stopped", station.id, exc_info=True)
        failure = Failure(station.id, "run", "", describe(exc), kind_of(exc))
        run.failures.append(failure)
        run.fatal = True
        _note(ledger, failure)
    return run


def describe(exc: BaseException) -> str:
    """A failure's reason: the message of an error stationkit raised, what the
    system said for an environment failure, else an internal error."""
    if isinstance(exc, StationkitError):
        return str(exc)
    if isinstance(exc, sqlite3.Error) and is_environment(exc):
        return f"the ledger cannot be written ({exc}); the next run tries again"
    if isinstance(exc, OSError) and is_environment(exc):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{describe_os_error(exc)}; the next run tries again"
    return f"internal error ({type(exc).__name__}: {exc})"


def run_stations(
    config: Config,
    stations: Sequence[StationConfig],
    *,
    wait: bool = False,
    force: bool = False,
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
    progress: ProgressCallback | None = None,
    retry_failed: bool = False,
    report: Callable[[RunResult], None] | None = None,
    cluster: ClusterConfig | None = None,
) -> RunResult:
    """Run the chain for ``stations``; raises LockedError if a run is in progress.

    ``progress`` gets each stage's events (:mod:`stationkit.progress`) and,
    as stations finish, ("", "stations", finished, total, station).
    ``report`` is called with the result (:func:`after_run`'s failures
    included) while the lock is still held; the failures it was given are then
    marked reported in the ledger. With a ``cluster`` scheduler the stations
    run on its workers (``jobs`` does not apply); ClusterError when it cannot
    be reached or used."""
    selected = select_shard(stations, shard)
    finished = _Counter(len(selected), progress)
    # workers go to stations first; what is left over parses a station's files in parallel
    file_jobs = max(1, jobs // max(1, len(selected)))
    options: dict[str, Any] = {
        "force": force,
        "file_jobs": file_jobs,
        "progress": progress,
        "retry_failed": retry_failed,
    }
    with (
        RunLock(config.data_dir, wait=wait),
        connected(cluster) as remote,
        unfinished_marker(config.data_dir),
        Ledger(config.data_dir) as main,
    ):
        started = main.last_failure_id()
        if remote is not None:
            from stationkit.cluster.client import run_on_cluster

            runs = run_on_cluster(
                remote,
                config,
                selected,
                main,
                force=force,
                retry_failed=retry_failed,
                progress=progress,
            )
        elif jobs <= 1 or len(selected) <= 1:
            runs = [finished.done(run_station(config, st, main, **options)) for st in selected]
        else:
            # one ledger connection per worker thread, reused across its stations
            local = threading.local()
            opened: list[Ledger] = []

            def work(st: StationConfig) -> StationRun:
                if not hasattr(local, "ledger"):
                    local.ledger = Ledger(config.data_dir)
                    opened.append(local.ledger)
                return finished.done(run_station(config, st, local.ledger, **options))

            try:
                with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="station") as pool:
                    runs = list(pool.map(work, selected))
            finally:
                for ledger in opened:
                    ledger.close()
        result = RunResult(runs)
        after_run(config, selected, main, result, progress=progress)
        pending = _pending(main, [st.id for st in selected], started, result)
        if report is not None:
            report(result)
        if pending:
            try:
                main.mark_reported(pending)
            except (sqlite3.Error, OSError) as exc:  # reported again by the next run
                log.warning("cannot mark the failures reported in the ledger (%s)", exc)
    return result


@contextmanager
def connected(cluster: ClusterConfig | None) -> Iterator[Cluster | None]:
    """The Dask cluster of ``cluster.scheduler``, or None to run in this process."""
    if cluster is None or cluster.scheduler is None:
        yield None
        return
    from stationkit.cluster.client import open_cluster  # Dask loads only when asked

    with open_cluster(cluster) as remote:
        yield remote


def _pending(ledger: Ledger, stations: list[str], started: int, result: RunResult) -> list[int]:
    """Add the unreported failures of earlier runs to ``result``; return the ids of
    every unreported failure of ``stations`` (this run's too) to mark reported."""
    if not stations:
        return []
    try:
        rows = ledger.pending_failures(stations)
        open_ids = {int(r["id"]) for r in rows if _still_open(ledger, r)}
    except (sqlite3.Error, OSError) as exc:
        log.warning("cannot read the pending failures from the ledger (%s)", exc)
        return []
    kinds = {
        (r["station"], r["stage"], r["file"], r["reason"]): r["kind"]
        for r in rows
        if int(r["id"]) > started
    }
    for run in result.runs:  # the stages know the kind of what they recorded
        run.failures = [
            replace(f, kind=kinds.get((f.station, f.stage, f.file, f.reason), f.kind))
            for f in run.failures
        ]
    now = {(f.station, f.stage, f.file) for f in result.failures}
    for r in rows:
        key = (r["station"], r["stage"], r["file"])
        if int(r["id"]) > started or int(r["id"]) not in open_ids or key in now:
            continue  # this run's own, since resolved, or failed again in this run
        now.add(key)
        result.earlier.append(
            Failure(r["station"], r["stage"], r["file"], r["reason"], r["kind"], earlier=True)
        )
    return [int(r["id"]) for r in rows]


def _still_open(ledger: Ledger, row: sqlite3.Row) -> bool:
    if row["resolved_at"] is not None:
        return False
    if row["file_id"] is None:
        return True
    superseded = ledger.conn.execute(
        "SELECT superseded_by FROM files WHERE id=?", (row["file_id"],)
    ).fetchone()
    return superseded is None or superseded[0] is None


class _Counter:
    """Reports finished stations to a progress callback (from any worker thread)."""

    def __init__(self, total: int, progress: ProgressCallback | None) -> None:
        self.total, self.progress, self.count = total, progress, 0
        self.lock = threading.Lock()
        notify(progress, Progress("", STATIONS, 0, total, unit="stations"))

    def done(self, run: StationRun) -> StationRun:
        with self.lock:
            self.count += 1
            notify(
                self.progress,
                Progress("", STATIONS, self.count, self.total, run.station, unit="stations"),
            )
        return run


def after_run(
    config: Config,
    stations: Sequence[StationConfig],
    ledger: Ledger,
    result: RunResult,
    *,
    progress: ProgressCallback | None = None,
) -> None:
    """What a run does for the fleet once its stations are done: a station
    that has newly gone stale is a failure (once per stale episode, see
    :func:`stationkit.pipeline.health.newly_stale`), and the HTML report of
    ``[report] html`` is written again.

    A stale failure is recorded in the ledger like a stage's (reported by the
    next run if this one is killed before it reports) and resolved once the
    station is fresh again."""
    now = datetime.now(UTC)
    runs = {r.station: r for r in result.runs}
    stale = dict(newly_stale(config, stations, ledger, now))
    for st in stations:
        message = stale.get(st.id)
        if message is not None:
            failure = Failure(st.id, "health", "", message)
            runs[st.id].failures.append(failure)
            _note(ledger, failure)
        elif not staleness(config, st, ledger, now).stale:
            ledger.resolve_failures(st.id, "health")
    folder = config.report.html
    if folder is None:
        return
    try:
        done = write_html_report(
            config, config.select(), ledger, folder, now=now, progress=progress
        )
        for station, error in done.errors:
            result.fleet_failures.append(Failure(station, "report", "", error))
    except (StationkitError, OSError) as exc:
        log.debug("the HTML report failed", exc_info=True)
        result.fleet_failures.append(Failure("fleet", "report", str(folder), str(exc)))


MARKER = ".stationkit-run-in-progress"


@contextmanager
def unfinished_marker(data_dir: Path) -> Iterator[None]:
    """Mark a run in progress; after a crash, the next run removes its temporaries.

    Temporaries only ever exist while a run works, so they are looked for only
    when the marker shows the previous run did not finish (a no-op run never
    walks the data directory).
    """
    marker = data_dir / MARKER
    if marker.exists():
        removed = sum(
            clean_temp_files(data_dir / top)
            for top in ("raw", "staging", "lake", "exports", "quarantine", "cache")
        )
        if removed:
            log.warning("removed %d temporary file(s) left by an interrupted run", removed)
    marker.touch()
    yield
    marker.unlink(missing_ok=True)


def notify_failure(config: Config, result: RunResult) -> str | None:
    """Run the configured ``on_failure`` command with the summary on stdin.

    Returns an error message when the command itself fails (the run's exit
    code is not changed by it).
    """
    if not result.failures:
        return None
    return notify_command(config, result.failure_summary(), result.exit_code)


def notify_command(config: Config, summary: str, exit_code: int) -> str | None:
    """Run the ``on_failure`` command with ``summary`` on stdin (see notify_failure)."""
    if config.on_failure is None:
        return None
    env = dict(os.environ, STATIONKIT_EXIT_CODE=str(exit_code))
    try:
        done = subprocess.run(
            list(config.on_failure),
            input=summary + "\n",
            text=True,
            env=env,
            timeout=120,
            capture_output=True,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"on_failure command {config.on_failure[0]!r} could not run ({exc})"
    if done.returncode != 0:
        return f"on_failure command {config.on_failure[0]!r} exited with {done.returncode}"
    return None
