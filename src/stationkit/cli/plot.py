"""``stationkit plot``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from stationkit.cli.common import common_options, emit, get_config, handle_errors, shown_path
from stationkit.cli.export import TIME_FORMATS, split_points
from stationkit.pipeline.plot import DEFAULT_DAYS, write_plot
from stationkit.textsafe import show_name


@click.command(short_help="Draw a station's time series into a PNG (flagged values marked).")
@click.argument("station")
@click.option(
    "--points", multiple=True, metavar="NAME[,NAME...]", help="Only these points [default: all]."
)
@click.option("--start", type=click.DateTime(TIME_FORMATS), help="Start of the period (inclusive).")
@click.option("--end", type=click.DateTime(TIME_FORMATS), help="End of the period (exclusive).")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_DAYS,
    show_default=True,
    help="Without --start: this many days up to --end (or the newest value).",
)
@click.option("--utc/--local", default=False, help="Times in UTC, or in the logger's local time.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="FILE.png",
    help="Where to write the picture.",
)
@common_options
@handle_errors
def plot(
    station: str,
    points: tuple[str, ...],
    start: datetime | None,
    end: datetime | None,
    days: float,
    utc: bool,
    output: Path,
) -> None:
    """Draw a station's clean time series into a PNG.

    One panel per measurement type (wind speed, wind direction, air
    temperature, ...), one line per point (its avg, else its first
    statistic), values hit by any flag marked with red crosses. By default
    the last 30 days up to the newest value, in the logger's local time;
    columns that map to no point only when named with --points. The same
    data gives the same bytes. Reads only; works during a run.

    \b
    Example:
        stationkit plot M001 -o m001.png
        stationkit plot M001 --points WS80,WS120 --start 2024-01-01 --end 2024-02-01 -o jan.png
    """
    config = get_config()
    (st,) = config.select([station])
    data = write_plot(
        config, st, output, start=start, end=end, points=split_points(points), utc=utc, days=days
    )
    names = list(dict.fromkeys(data.frame.get_column("point").to_list()))
    emit(
        {
            "station": st.id,
            "file": str(output.resolve()),
            "start": f"{data.start:%Y-%m-%d %H:%M:%S}",
            "end": f"{data.end:%Y-%m-%d %H:%M:%S}",
            "zone": data.zone,
            "points": names,
            "values": data.frame.height,
        },
        lambda: (
            f"{st.id}: {len(names)} point(s), {data.frame.height} values -> {show_name(shown_path(output.resolve()))}"
        ),
    )
