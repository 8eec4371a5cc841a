"""``stationkit report``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from stationkit.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    common_options,
    emit,
    get_config,
    handle_errors,
    report_errors,
    report_time,
    shown_path,
)
from stationkit.cli.export import TIME_FORMATS, split_points
from stationkit.cli.progress import progress_display
from stationkit.export.report import to_csv, to_text
from stationkit.ledger import Ledger
from stationkit.pipeline.html_report import write_html_report
from stationkit.pipeline.report import report_station, write_heatmap
from stationkit.textsafe import show_name


@click.command(short_help="Data recovery per point and month; heatmap; HTML fleet report.")
@click.argument("stations", nargs=-1)
@click.option("--start", type=click.DateTime(TIME_FORMATS), help="Start of the period (inclusive).")
@click.option("--end", type=click.DateTime(TIME_FORMATS), help="End of the period (exclusive).")
@click.option(
    "--points", multiple=True, metavar="NAME[,NAME...]", help="Only these points [default: all]."
)
@click.option(
    "--utc/--local", default=False, help="Months and times in UTC, or in the logger's local time."
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout instead of the table.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Also draw an availability heatmap (points x months, colour = recovery %).",
)
@click.option(
    "--html",
    "html_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write the static HTML fleet report into DIR instead (DIR/index.html).",
)
@common_options
@handle_errors
def report(
    stations: tuple[str, ...],
    start: datetime | None,
    end: datetime | None,
    points: tuple[str, ...],
    utc: bool,
    as_csv: bool,
    plot: Path | None,
    html_dir: Path | None,
) -> None:
    """Data availability per station, point and month, from lake/clean.

    For each point and month: expected and present time steps, data
    recovery %, flagged %, first and last time step, and the longest gap.
    Months are in the logger's local time unless --utc. Reads only; works
    while a run is going on.

    With --html DIR, writes a static fleet report instead: DIR/index.html
    with one row per station (status, last data, recovery of the last 12
    months, the last 30 days per point) linking to a page per station
    (failed files, suspect sensors, time series, recovery heatmap). No
    server needed: open it from a shared drive. Pictures are drawn again
    only for stations whose clean data changed. The status is shown as of
    now ($SOURCE_DATE_EPOCH when set, for reproducible builds).

    \b
    Example:
        stationkit report M001
        stationkit report M001 M002 --plot availability.png
        stationkit report --csv > availability.csv
        stationkit report --html /srv/share/met-report
    """
    config = get_config()
    if html_dir is not None:
        if start or end or points or utc or as_csv or plot:
            raise click.UsageError(
                "--html shows whole station histories in local time; "
                "--start, --end, --points, --utc, --csv and --plot do not apply"
            )
        with Ledger(config.data_dir, readonly=True) as ledger, progress_display() as show:
            done = write_html_report(
                config, config.select(stations), ledger, html_dir, now=report_time(), progress=show
            )
        report_errors([(station, "", f"pictures not drawn: {e}") for station, e in done.errors])
        emit(
            done.as_dict(),
            lambda: (
                f"{len(done.stations)} station(s), {len(done.drawn)} drawn -> "
                f"{show_name(shown_path(done.index.resolve()))}"
            ),
            always=True,
        )
        raise SystemExit(EXIT_PARTIAL if done.errors else EXIT_OK)
    reports = [
        report_station(config, st, start=start, end=end, points=split_points(points), utc=utc)
        for st in config.select(stations)
    ]
    rows = [r for rep in reports for r in rep.rows]
    if plot is not None:
        write_heatmap(reports, plot)
    if as_csv:
        click.echo(to_csv(rows), nl=False)
        return
    emit([r.as_dict() for r in rows], lambda: to_text(rows), always=True)
