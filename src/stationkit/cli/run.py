"""``stationkit run``: the whole chain for cron."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import click

from stationkit.cli.common import (
    cluster_settings,
    common_options,
    emit,
    error_line,
    get_config,
    handle_errors,
    options,
    preflight_or_exit,
    report_errors,
    scheduler_option,
)
from stationkit.cli.progress import progress_display, progress_done
from stationkit.errors import ClusterError, LockedError
from stationkit.pipeline.run import (
    EARLIER,
    RunResult,
    notify_command,
    notify_failure,
    run_stations,
)
from stationkit.progress import ProgressCallback
from stationkit.textsafe import SafeFormatter, show_name


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", value)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise click.BadParameter(f"expected K/N with 1 <= K <= N, got {value!r}")
    return int(m.group(1)), int(m.group(2))


@click.command(short_help="Every stage for each station, incrementally (for cron).")
@click.argument("stations", nargs=-1)
@click.option(
    "--wait", is_flag=True, help="Wait for a concurrent run to finish instead of exiting."
)
@click.option(
    "--force", is_flag=True, help="Fetch even if a station's fetch interval has not passed."
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Stations processed in parallel.",
)
@click.option(
    "--shard",
    callback=_shard,
    metavar="K/N",
    help="Only the stations in shard K of N (stable hash).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append a detailed log here.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Unpack and parse again the files that failed for their content before "
    "(e.g. after correcting an archive password).",
)
@scheduler_option
@common_options
@handle_errors
def run(
    stations: tuple[str, ...],
    wait: bool,
    force: bool,
    jobs: int,
    shard: tuple[int, int] | None,
    log_file: Path | None,
    retry_failed: bool,
    scheduler: str | None,
) -> None:
    """Run every stage for each station, incrementally, under a lock: fetch,
    unpack, parse, calibrate and the exports configured in stations.toml.

    Then the fleet checks: a station whose newest data has become older than
    its stale_after_hours is reported once (until data arrives again), and
    the HTML report of [report] html is written again. Silent on success
    (use -v for a summary; a progress display on a terminal); failures go to
    stderr naming station, stage, file and reason, and to the on_failure
    command of stations.toml -- those of an earlier run that was killed too.
    A failure caused by the environment (full disk, I/O error, missing
    password variable, connection) is retried by the next run by itself; one
    caused by a file's content only when the file or the station's settings
    change, or with --retry-failed. A second concurrent run exits at once
    with code 0 (or waits with --wait). Exit 0, 1 (nothing could be done),
    or 3 (some files or stations failed, or a station went stale).

    With --scheduler (or [cluster] scheduler in stations.toml) each
    station's chain runs on the workers of a Dask scheduler; the data
    directory must be on storage every worker sees (docs/scaling.md). A
    scheduler that cannot be reached exits 1.

    \b
    Example (crontab: every hour, two hosts splitting the fleet):
        17 * * * *  stationkit --config /srv/met/stations.toml run --jobs 2 --shard 1/2
    \b
    Example (a Dask cluster; --scheduler local:8 for 8 processes on this host):
        stationkit run --scheduler tcp://10.0.0.5:8786
    """
    if log_file is not None:
        try:
            handler = logging.FileHandler(log_file)
        except OSError as exc:
            raise click.BadParameter(
                f"{log_file}: cannot be opened ({exc.strerror})", param_hint="--log-file"
            ) from None
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO if not options().verbose > 1 else logging.DEBUG)
        logger = logging.getLogger("stationkit")
        logger.addHandler(handler)
        logger.setLevel(min(logger.level or logging.WARNING, handler.level))
    config = get_config()
    cluster = cluster_settings(config, scheduler)
    if cluster is not None and jobs > 1:
        raise click.UsageError(
            "--jobs runs stations in this process; on a Dask scheduler its workers' "
            "threads decide: drop --jobs, or add --scheduler none to run here"
        )
    selected = config.select(stations)
    warnings = preflight_or_exit(config, selected, sources=True)
    log = logging.getLogger("stationkit.run")

    def report(result: RunResult, show: ProgressCallback | None) -> None:
        progress_done(show)  # the bars leave the terminal before the report
        if not result.failures:
            return
        report_errors(
            [
                (f"{f.station}: {f.stage}", f.file, f.reason + (EARLIER if f.earlier else ""))
                for f in result.failures
            ]
        )
        for f in result.failures:
            log.info("failure: %s %s %s: %s", f.station, f.stage, f.file, f.reason)
        problem = notify_failure(config, result)
        if problem:
            click.echo(error_line(show_name(problem)), err=True)

    try:
        with progress_display() as show:
            result = run_stations(
                config,
                selected,
                wait=wait,
                force=force,
                jobs=jobs,
                shard=shard,
                progress=show,
                retry_failed=retry_failed,
                report=lambda result: report(result, show),
                cluster=cluster,
            )
    except LockedError as exc:
        # cron: a run still going is not a failure; say so once, exit 0
        click.echo(f"stationkit: warning: {exc}", err=True)
        emit({"exit_code": 0, "skipped": str(exc)})
        raise SystemExit(0) from None
    except ClusterError as exc:  # nothing was done: on_failure hears of it too
        problem = notify_command(config, f"stationkit run: nothing done, exit code 1\n  {exc}", 1)
        if problem:
            click.echo(error_line(show_name(problem)), err=True)
        raise
    emit({**result.as_dict(), "warnings": warnings}, result.text)
    raise SystemExit(result.exit_code)
