"""``stationkit export``."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from stationkit.cli.common import (
    common_options,
    emit,
    exit_code,
    get_config,
    handle_errors,
    preflight_or_exit,
    report_errors,
    shown_path,
)
from stationkit.errors import ConfigError, LockedError, StationkitError
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.export import FORMATS, LAYOUTS, export_settings, export_station

TIME_FORMATS = [
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
]


def split_points(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--points a,b --points c`` -> (a, b, c)."""
    return tuple(p.strip() for v in values for p in v.split(",") if p.strip())


@click.command(short_help="Write Windographer, CSV or Parquet files from lake/clean.")
@click.argument("stations", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="File format [default: the station's export.format, else windographer].",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    help="csv / parquet: one row per time step (wide) or per reading (long) [default: wide].",
)
@click.option("--start", type=click.DateTime(TIME_FORMATS), help="First time step (inclusive).")
@click.option("--end", type=click.DateTime(TIME_FORMATS), help="End of the period (exclusive).")
@click.option(
    "--points", multiple=True, metavar="NAME[,NAME...]", help="Only these points [default: all]."
)
@click.option(
    "--exclude-flag",
    "exclude_flags",
    multiple=True,
    metavar="NAME",
    help="Leave out values hit by this flag; repeat for more, '*' for every flag "
    "[default: the station's export.exclude_flags, else every flag].",
)
@click.option("--include-flagged", is_flag=True, help="Keep every value, whatever its flags.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the files [default: <data_dir>/exports/<station>/].",
)
@click.option(
    "--utc/--local",
    default=None,
    help="Time stamps in UTC, or in the logger's local time [default: local].",
)
@click.option(
    "--round",
    "round_to",
    metavar="logger|exact|N",
    help="Round values to the decimals the logger wrote, keep them exact, or round to N "
    "decimals [default: the station's export.round, else exact].",
)
@click.option(
    "--missing-marker",
    metavar="TEXT",
    help="Windographer: text for a missing value [default: empty].",
)
@click.option(
    "--flag-log/--no-flag-log", default=None, help="Windographer: also write its flagging log."
)
@click.option(
    "--zip-by-type/--no-zip-by-type",
    default=None,
    help="Windographer: also write a zip of one file per measurement type.",
)
@click.option("--force", is_flag=True, help="Write the files even if they are up to date.")
@click.option("--wait", is_flag=True, help="Wait for a running stationkit process to finish.")
@common_options
@handle_errors
def export(
    stations: tuple[str, ...],
    fmt: str | None,
    layout: str | None,
    start: datetime | None,
    end: datetime | None,
    points: tuple[str, ...],
    exclude_flags: tuple[str, ...],
    include_flagged: bool,
    out: Path | None,
    utc: bool | None,
    round_to: str | None,
    missing_marker: str | None,
    flag_log: bool | None,
    zip_by_type: bool | None,
    force: bool,
    wait: bool,
) -> None:
    """Write Windographer, CSV or Parquet files from lake/clean.

    One file per station in exports/<station>/ (or --out), named for the
    station, the period and the time zone. Values are the clean values,
    printed so that they read back bit for bit; values hit by an excluded
    flag are left empty. Time stamps are period starts in the logger's local
    time unless --utc; --start/--end are in that time too ([start, end)).
    Files that are up to date are not written again. Exit 0, 1, or 3 when
    some stations could not be exported.

    \b
    Example:
        stationkit export M001 --start 2024-01-01 --end 2024-02-01
        stationkit export M001 --format csv --layout long --utc --include-flagged
        stationkit export M001 --round logger
    """
    if include_flagged and exclude_flags:
        raise click.UsageError("--include-flagged and --exclude-flag cannot be used together")
    config = get_config()
    selected = config.select(stations)
    preflight_or_exit(config, selected)
    results: list[dict[str, Any]] = []
    texts: list[str] = []
    errors: list[tuple[str, str, str]] = []
    #: exports that failed: in the JSON output too
    outright: list[dict[str, Any]] = []
    ok = failed = 0
    try:
        lock = RunLock(config.data_dir, wait=wait)
        lock.acquire()
    except LockedError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        with Ledger(config.data_dir) as ledger:
            for st in selected:
                formats = (fmt,) if fmt else export_settings(st).formats
                for f in formats:
                    try:
                        s = export_station(
                            config, st, ledger,
                            fmt=f, layout=layout, start=start, end=end,
                            points=split_points(points),
                            exclude_flags=exclude_flags or None,
                            include_flagged=include_flagged, out=out, utc=utc,
                            round_to=round_to, missing_marker=missing_marker, flag_log=flag_log,
                            zip_by_type=zip_by_type, force=force,
                        )  # fmt: skip
                    except ConfigError:
                        raise
                    except StationkitError as exc:
                        errors.append((st.id, "", str(exc).removeprefix(f"{st.id}: ")))
                        outright.append({"station": st.id, "format": f, "error": str(exc)})
                        failed += 1
                        continue
                    results.append(s.as_dict())
                    texts.append(replace(s, files=[shown_path(f) for f in s.files]).text())
                    ok += 1
    finally:
        lock.release()
    report_errors(errors)
    emit(results + outright, lambda: "\n".join(texts))
    raise SystemExit(exit_code(failed, ok))
