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
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stationkit.atomic import clean_temp_files
from stationkit.config import Config, StationConfig
from stationkit.errors import StationkitError
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.calibrate import calibrate_station
from stationkit.pipeline.export import export_configured
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.health import newly_stale
from stationkit.pipeline.html_report import write_html_report
from stationkit.pipeline.parse import parse_station
from stationkit.pipeline.unpack import unpack_station
from stationkit.progress import STATIONS, Progress, ProgressCallback, notify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """One thing that went wrong: where, and why."""

    station: str
    stage: str
    file: str
    reason: str


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


@dataclass
class RunResult:
    """Per-station, per-stage summaries and every failure."""

    runs: list[StationRun] = field(default_factory=list)
    #: failures of no one station (the fleet report)
    fleet_failures: list[Failure] = field(default_factory=list)

    @property
    def failures(self) -> list[Failure]:
        return [f for r in self.runs for f in r.failures] + self.fleet_failures

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
        """What cron mails: one line per failure naming station, stage, file, reason."""
        lines = [f"stationkit run: {len(self.failures)} failure(s), exit code {self.exit_code}"]
        for f in self.failures:
            where = f"{f.station} {f.stage}" + (f" {f.file}" if f.file else "")
            lines.append(f"  {where}: {f.reason}")
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


def _fetch(
    config: Config, station: StationConfig, ledger: Ledger, run: StationRun, force: bool
) -> None:
    if station.source is None:
        return
    try:
        f = fetch_station(config, station, ledger, force=force)
    except StationkitError as exc:
        run.stages["fetch"] = {"error": str(exc), "fetched": 0}
        run.failures.append(Failure(station.id, "fetch", "", str(exc)))
        run.fatal = True
        return
    run.stages["fetch"] = f.as_dict()
    run.failures.extend(Failure(station.id, "fetch", p, e) for p, e in f.errors)
    run.work_done += f.fetched


def _unpack(config: Config, station: StationConfig, ledger: Ledger, run: StationRun) -> None:
    u = unpack_station(config, station, ledger)
    run.stages["unpack"] = u.as_dict()
    run.failures.extend(Failure(station.id, "unpack", p, e) for p, e in u.errors)
    run.work_done += u.archives


def _parse(config: Config, station: StationConfig, ledger: Ledger, run: StationRun) -> None:
    p = parse_station(config, station, ledger, jobs=run.file_jobs, progress=run.progress)
    run.stages["parse"] = p.as_dict()
    run.failures.extend(Failure(station.id, "parse", path, e) for path, e in p.errors)
    run.work_done += p.parsed


def _calibrate(config: Config, station: StationConfig, ledger: Ledger, run: StationRun) -> None:
    try:
        c = calibrate_station(config, station, ledger)
    except StationkitError as exc:
        run.stages["calibrate"] = {"error": str(exc)}
        run.failures.append(Failure(station.id, "calibrate", "", str(exc)))
        return
    run.stages["calibrate"] = c.as_dict()
    run.work_done += int(c.built and c.rows > 0)  # an empty build is not work done


def _export(config: Config, station: StationConfig, ledger: Ledger, run: StationRun) -> None:
    """The exports configured in [stations.<id>.export]; none without that table."""
    try:
        done = export_configured(config, station, ledger)
    except StationkitError as exc:
        run.stages["export"] = {"error": str(exc)}
        run.failures.append(Failure(station.id, "export", "", str(exc)))
        return
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
) -> StationRun:
    """The chain for one station."""
    run = StationRun(station.id, file_jobs=file_jobs, progress=progress)
    notify(progress, Progress(station.id, "fetch", 0, None))
    try:
        _fetch(config, station, ledger, run, force)
        process_station(config, station, ledger, run)
    except StationkitError as exc:
        run.failures.append(Failure(station.id, "run", "", str(exc)))
        run.fatal = True
    except Exception as exc:  # a bug in one station's run must not hide the others
        log.debug("run of %s crashed", station.id, exc_info=True)
        run.failures.append(
            Failure(station.id, "run", "", f"internal error ({type(exc).__name__}: {exc})")
        )
        run.fatal = True
    return run


def run_stations(
    config: Config,
    stations: Sequence[StationConfig],
    *,
    wait: bool = False,
    force: bool = False,
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Run the chain for ``stations``; raises LockedError if a run is in progress.

    ``progress`` gets each stage's events (:mod:`stationkit.progress`) and,
    as stations finish, ("", "stations", finished, total, station)."""
    selected = select_shard(stations, shard)
    finished = _Counter(len(selected), progress)
    # workers go to stations first; what is left over parses a station's files in parallel
    file_jobs = max(1, jobs // max(1, len(selected)))
    with (
        RunLock(config.data_dir, wait=wait),
        unfinished_marker(config.data_dir),
        Ledger(config.data_dir) as main,
    ):
        if jobs <= 1 or len(selected) <= 1:
            runs = [
                finished.done(
                    run_station(
                        config, st, main, force=force, file_jobs=file_jobs, progress=progress
                    )
                )
                for st in selected
            ]
        else:
            # one ledger connection per worker thread, reused across its stations
            local = threading.local()
            opened: list[Ledger] = []

            def work(st: StationConfig) -> StationRun:
                if not hasattr(local, "ledger"):
                    local.ledger = Ledger(config.data_dir)
                    opened.append(local.ledger)
                return finished.done(
                    run_station(
                        config,
                        st,
                        local.ledger,
                        force=force,
                        file_jobs=file_jobs,
                        progress=progress,
                    )
                )

            try:
                with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="station") as pool:
                    runs = list(pool.map(work, selected))
            finally:
                for ledger in opened:
                    ledger.close()
        result = RunResult(runs)
        after_run(config, selected, main, result, progress=progress)
    return result


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
    ``[report] html`` is written again."""
    now = datetime.now(UTC)
    runs = {r.station: r for r in result.runs}
    for station, message in newly_stale(config, stations, ledger, now):
        runs[station].failures.append(Failure(station, "health", "", message))
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
            clean_temp_files(data_dir / top) for top in ("raw", "staging", "lake", "exports")
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
    if config.on_failure is None or not result.failures:
        return None
    env = dict(os.environ, STATIONKIT_EXIT_CODE=str(result.exit_code))
    try:
        done = subprocess.run(
            list(config.on_failure),
            input=result.failure_summary() + "\n",
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
