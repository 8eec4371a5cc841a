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
from datetime import UTC, datetime
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
from stationkit.textsafe import show_name

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Options:
    config: str | None = None
    verbose: int = 0
    quiet: bool = False
    json: bool = False
    #: the loaded configuration's data directory (paths in messages are shown from here)
    data_dir: Path | None = None


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


#: the top folders of the data directory: a message argument starting with one
#: is a path relative to the data directory
DATA_TOPS = ("raw/", "staging/", "lake/", "exports/", "quarantine/")


def shown_path(path: str | Path, data_dir: Path | None = None) -> str:
    """A path as the user can open it from the current directory: relative to
    it when inside it, else absolute. A relative ``path`` is relative to the
    data directory (as the ledger and the stage summaries give them)."""
    data_dir = data_dir or _current_data_dir()
    p = Path(path)
    if not p.is_absolute():
        if data_dir is None:
            return str(path)
        p = data_dir / p
    p = Path(os.path.abspath(p))
    cwd = Path.cwd()
    return os.path.relpath(p, cwd) if p.is_relative_to(cwd) else str(p)


def _current_data_dir() -> Path | None:
    ctx = click.get_current_context(silent=True)
    return ctx.ensure_object(Options).data_dir if ctx is not None else None


def where(file: str, reason: str) -> str:
    """``file: reason`` with the file as :func:`shown_path` gives it, once
    (reasons often start with the same path)."""
    if not file:
        return reason
    shown = shown_path(file) if file.startswith(DATA_TOPS) else file
    if reason.startswith(file) and reason[len(file) : len(file) + 1] in (":", ","):
        return shown + reason[len(file) :]
    return f"{shown}: {reason}"


class _Formatter(logging.Formatter):
    """``stationkit: warning: message``, paths shown from the current directory,
    names escaped (:func:`stationkit.textsafe.show_name`)."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple) and record.args:
            record = logging.makeLogRecord(record.__dict__)  # other handlers keep theirs
            assert isinstance(record.args, tuple)
            record.args = tuple(
                shown_path(a) if isinstance(a, str) and a.startswith(DATA_TOPS) else a
                for a in record.args
            )
        # escaped: a name in the message cannot add or fake a line
        return f"stationkit: {record.levelname.lower()}: {show_name(record.getMessage())}"


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
        handler._stationkit = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for h in root.handlers:
        h.setLevel(level)
        if getattr(h, "_stationkit", False):
            h.setFormatter(_Formatter())
            if isinstance(h, logging.StreamHandler):
                h.stream = sys.stderr  # the stderr of this invocation (tests swap it)
    # asyncssh logs every connection at INFO: only with -vv
    logging.getLogger("asyncssh").setLevel(logging.DEBUG if opts.verbose >= 2 else logging.WARNING)


def report_time() -> datetime:
    """The time status is shown at: $SOURCE_DATE_EPOCH when set (reproducible
    builds), else now [UTC]."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)


def get_config() -> Config:
    opts = options()
    path = opts.config or os.environ.get("STATIONKIT_CONFIG") or "stations.toml"
    config = load_config(Path(path))
    opts.data_dir = config.data_dir
    return config


def emit(data: Any, text: Callable[[], str] | None = None, *, always: bool = False) -> None:
    """JSON with --json; else text when on a terminal, -v, or ``always``."""
    opts = options()
    if opts.json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif text is not None and not opts.quiet and (always or opts.verbose or sys.stdout.isatty()):
        out = text()
        if out:
            click.echo(out)


def error_line(message: str) -> str:
    """The one prefix every error message has."""
    return f"stationkit: error: {message}"


def report_errors(errors: list[tuple[str, str, str]]) -> None:
    """Failures always reach stderr: station, file and reason (names escaped)."""
    for station, file, reason in errors:
        click.echo(error_line(f"{station}: {show_name(where(file, reason))}"), err=True)


def exit_code(failures: int, successes: int) -> int:
    if failures == 0:
        return EXIT_OK
    return EXIT_PARTIAL if successes > 0 else EXIT_FAILURE


def json_error(message: str, kind: str, code: int) -> None:
    """An error as the JSON object --json prints on stdout."""
    payload = {"error": {"message": message, "kind": kind, "exit_code": code}}
    click.echo(json.dumps(payload, indent=2, sort_keys=True))


def show_error(exc: click.ClickException, *, as_json: bool) -> None:
    """How every command reports a failure: ``stationkit: error: ...`` on
    stderr (after the usage line for a usage error) and, with --json, the
    same as a JSON object on stdout."""
    message = exc.format_message()
    if as_json:
        kind = "usage" if isinstance(exc, click.UsageError) else "error"
        json_error(message, kind, exc.exit_code)
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        click.echo(exc.ctx.get_usage(), err=True)
        click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
    click.echo(error_line(message), err=True)


class StationkitGroup(click.Group):
    """A click group whose errors all read ``stationkit: error: ...`` (and are
    JSON on stdout with --json); commands listed in the order they were added
    (the order of the pipeline), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            options_part = argv[: argv.index("--")] if "--" in argv else argv
            show_error(exc, as_json="--json" in options_part)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo(error_line("aborted"), err=True)
            sys.exit(EXIT_FAILURE)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


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
        if options().json:
            problems = [f"{station}: {message}" for station, message in found.errors]
            json_error("\n".join(problems), "error", EXIT_FAILURE)
        raise SystemExit(EXIT_FAILURE)
    if not options().quiet:
        for w in found.warnings:
            click.echo(f"stationkit: warning: {show_name(w)}", err=True)
    return found.warnings


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
    #: stations that failed outright: in the JSON output too
    outright: list[dict[str, Any]] = []
    errors: list[tuple[str, str, str]] = []
    ok = failed = 0
    with RunLock(config.data_dir), Ledger(config.data_dir) as ledger:
        started = ledger.last_failure_id()
        for st in selected:
            try:
                done = step(config, st, ledger)
            except StationkitError as exc:
                errors.append((st.id, "", str(exc)))
                outright.append({"station": st.id, "error": str(exc)})
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
    emit(results + outright, lambda: text(results))
    raise SystemExit(exit_code(failed, ok))
