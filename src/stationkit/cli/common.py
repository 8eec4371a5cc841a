"""Glue shared by the commands: options, config, logging, output, exit codes."""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from stationkit.config import (
    SCHEDULER_FORMS,
    ClusterConfig,
    Config,
    StationConfig,
    check_scheduler,
    load_config,
)
from stationkit.errors import ConfigError, StationkitError
from stationkit.faults import describe_os_error, is_environment, kind_of
from stationkit.ledger import LEDGER_NAME, Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.preflight import preflight
from stationkit.textsafe import SafeFormatter, show_name

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Options:
    config: str | None = None
    verbose: int = 0
    quiet: bool = False
    json: bool = False


def _merge(ctx: click.Context, **given: Any) -> Options:
    opts: Options = ctx.ensure_object(Options)
    if given.get("config"):
        opts.config = given["config"]
    opts.verbose += given.get("verbose") or 0
    opts.quiet = opts.quiet or bool(given.get("quiet"))
    opts.json = opts.json or bool(given.get("as_json"))
    return opts


def common_options(func: F) -> F:
    """--config, -v/-q and --json, accepted before or after the command name."""

    @click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        help="stations.toml to use [default: $STATIONKIT_CONFIG or ./stations.toml].",
    )
    @click.option("-v", "--verbose", count=True, help="More output (-vv for debug).")
    @click.option("-q", "--quiet", is_flag=True, help="Only errors.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
    @functools.wraps(func)
    def wrapper(
        *args: Any, config: str | None, verbose: int, quiet: bool, as_json: bool, **kwargs: Any
    ) -> Any:
        ctx = click.get_current_context()
        opts = _merge(ctx, config=config, verbose=verbose, quiet=quiet, as_json=as_json)
        setup_logging(opts)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _scheduler(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value.strip().lower() == "none":
        return None if value is None else "none"
    try:
        return check_scheduler(value, "--scheduler")
    except ConfigError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1]) from None


def scheduler_option(func: F) -> F:
    """``--scheduler ADDRESS``: where the per-station work goes."""
    return click.option(
        "--scheduler",
        callback=_scheduler,
        metavar="ADDRESS",
        help=f"Run the stations on the workers of a Dask scheduler ({SCHEDULER_FORMS}: "
        "N worker processes on this host); 'none' runs in this process even when "
        "stations.toml names one [default: [cluster] scheduler].",
    )(func)


def cluster_settings(config: Config, scheduler: str | None) -> ClusterConfig | None:
    """The cluster to run on: --scheduler, else stations.toml's [cluster]; None: here."""
    settings = config.cluster
    if scheduler is not None:
        settings = replace(settings, scheduler=None if scheduler == "none" else scheduler)
    return settings if settings.scheduler is not None else None


def options() -> Options:
    return click.get_current_context().ensure_object(Options)


def setup_logging(opts: Options) -> None:
    level = logging.WARNING
    if opts.quiet:
        level = logging.ERROR
    elif opts.verbose == 1:
        level = logging.INFO
    elif opts.verbose >= 2:
        level = logging.DEBUG
    root = logging.getLogger("stationkit")
    root.setLevel(level)
    if not any(getattr(h, "_stationkit", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(SafeFormatter("stationkit: %(levelname)s: %(message)s"))
        handler._stationkit = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for h in root.handlers:
        h.setLevel(level)
    # asyncssh logs every connection at INFO: only with -vv
    logging.getLogger("asyncssh").setLevel(logging.DEBUG if opts.verbose >= 2 else logging.WARNING)


def get_config() -> Config:
    opts = options()
    path = opts.config or os.environ.get("STATIONKIT_CONFIG") or "stations.toml"
    return load_config(Path(path))


def emit(data: Any, text: Callable[[], str] | None = None, *, always: bool = False) -> None:
    """JSON with --json; else text when on a terminal, -v, or ``always``."""
    opts = options()
    if opts.json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif text is not None and not opts.quiet and (always or opts.verbose or sys.stdout.isatty()):
        out = text()
        if out:
            click.echo(out)


def report_errors(errors: list[tuple[str, str, str]]) -> None:
    """Failures always reach stderr: station, file and reason (names escaped)."""
    for station, file, reason in errors:
        where = f"{station}: {show_name(file)}" if file else station
        click.echo(f"stationkit: error: {where}: {show_name(reason)}", err=True)


def exit_code(failures: int, successes: int) -> int:
    if failures == 0:
        return EXIT_OK
    return EXIT_PARTIAL if successes > 0 else EXIT_FAILURE


def handle_errors(func: F) -> F:
    """Map library errors -- and a disk or ledger that fails -- to a message and
    exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StationkitError as exc:
            raise click.ClickException(_lines(str(exc))) from None
        except sqlite3.Error as exc:
            raise click.ClickException(
                f"the ledger ({LEDGER_NAME}) cannot be used: {exc}"
                + ("; free some disk space and run again" if is_environment(exc) else "")
            ) from None
        except OSError as exc:
            where = f"{show_name(str(exc.filename))}: " if exc.filename else ""
            raise click.ClickException(f"{where}{describe_os_error(exc)}") from None

    return wrapper  # type: ignore[return-value]


def _lines(message: str) -> str:
    """Each line of a message escaped: a message may list several problems,
    one per line, but a name inside it cannot add a line."""
    return "\n".join(show_name(line) for line in message.split("\n"))


def preflight_or_exit(
    config: Config, stations: list[StationConfig], *, sources: bool = False
) -> list[str]:
    """Validate the settings before any work: exit 1 naming each wrong key;
    warnings go to stderr (not with -q) and are returned (for --json)."""
    found = preflight(config, stations, sources=sources)
    if found.errors:
        report_errors([(station, "", message) for station, message in found.errors])
        raise SystemExit(EXIT_FAILURE)
    if not options().quiet:
        for w in found.warnings:
            click.echo(f"stationkit: warning: {show_name(w)}", err=True)
    return found.warnings


def tty_progress(prefix: str) -> Callable[[str], None] | None:
    """A one-line progress display on a terminal; None elsewhere (cron stays quiet)."""
    opts = options()
    if opts.quiet or opts.json or not sys.stderr.isatty():
        return None
    width = 78

    def show(item: str) -> None:
        line = f"{prefix}: {item}"
        if len(line) > width:
            line = line[: width - 3] + "..."
        click.echo("\r" + line.ljust(width), nl=False, err=True)

    return show


def tty_progress_done() -> None:
    """Clear the progress line."""
    opts = options()
    if not (opts.quiet or opts.json) and sys.stderr.isatty():
        click.echo("\r" + " " * 78 + "\r", nl=False, err=True)


@dataclass(frozen=True)
class StationStep:
    """What a stage did for one station, as a command reports it."""

    summary: dict[str, Any]
    #: (file, reason) for each failure
    errors: list[tuple[str, str]]
    ok: int
    failed: int


def per_station(
    stations: tuple[str, ...],
    step: Callable[[Config, StationConfig, Ledger], StationStep],
    text: Callable[[list[dict[str, Any]]], str],
    *,
    stage: str,
) -> NoReturn:
    """A stage command: the settings checked first, then each named station
    under the run lock, failures on stderr, the summaries as text or --json,
    exit code 0, 1 or 3. A station that fails outright does not stop the
    others. The failures it shows count as reported (``run`` does not show
    them again); those an interrupted ``run`` left are kept for the next one."""
    config = get_config()
    selected = config.select(stations)
    preflight_or_exit(config, selected, sources=stage == "fetch")
    results: list[dict[str, Any]] = []
    errors: list[tuple[str, str, str]] = []
    ok = failed = 0
    with RunLock(config.data_dir), Ledger(config.data_dir) as ledger:
        started = ledger.last_failure_id()
        for st in selected:
            try:
                done = step(config, st, ledger)
            except StationkitError as exc:
                errors.append((st.id, "", str(exc)))
                failed += 1
                ledger.record_failure(st.id, stage, "", str(exc), kind=kind_of(exc))
                continue
            ledger.resolve_failures(st.id, stage)
            results.append(done.summary)
            errors.extend((st.id, f, e) for f, e in done.errors)
            ok += done.ok
            failed += done.failed
        report_errors(errors)
        shown = ledger.pending_failures([st.id for st in selected], after=started)
        ledger.mark_reported([int(r["id"]) for r in shown])
    emit(results, lambda: text(results))
    raise SystemExit(exit_code(failed, ok))
