"""``stationkit report``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from stationkit.cli.common import common_options, emit, get_config, handle_errors
from stationkit.cli.export import TIME_FORMATS, split_points
from stationkit.export.report import to_csv, to_text
from stationkit.pipeline.report import report_station, write_heatmap


@click.command()
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
) -> None:
    """Data availability per station, point and month, from lake/clean.

    For each point and month: expected and present time steps, data
    recovery %, flagged %, first and last time step, and the longest gap.
    Months are in the logger's local time unless --utc. Reads only; works
    while a run is going on.

    \b
    Example:
        stationkit report M001
        stationkit report M001 M002 --plot availability.png
        stationkit report --csv > availability.csv
    """
    config = get_config()
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
