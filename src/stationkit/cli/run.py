"""``stationkit run``: the whole chain for cron."""

from __future__ import annotations

import click

from stationkit.cli.common import common_options, emit, get_config, handle_errors, report_errors
from stationkit.errors import LockedError
from stationkit.pipeline.run import run_stations


@click.command()
@click.argument("stations", nargs=-1)
@click.option(
    "--wait", is_flag=True, help="Wait for a concurrent run to finish instead of exiting."
)
@click.option(
    "--force", is_flag=True, help="Fetch even if a station's fetch interval has not passed."
)
@common_options
@handle_errors
def run(stations: tuple[str, ...], wait: bool, force: bool) -> None:
    """Run fetch, unpack and parse for each station, incrementally, under a lock.

    Silent on success (use -v for a summary); failures go to stderr naming
    station, stage, file and reason. A second concurrent run exits at once
    with code 0 (or waits with --wait). Exit 0, 1, or 3 (some files failed).

    \b
    Example (crontab):
        17 * * * *  stationkit --config /srv/met/stations.toml run
    """
    config = get_config()
    try:
        result = run_stations(config, config.select(stations), wait=wait, force=force)
    except LockedError as exc:
        click.echo(f"stationkit: {exc}", err=True)
        raise SystemExit(0) from None
    report_errors(result.errors)
    emit(result.as_dict(), result.text)
    raise SystemExit(result.exit_code)
