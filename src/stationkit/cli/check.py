"""``stationkit check``."""

from __future__ import annotations

import click

from stationkit.cli.common import EXIT_FAILURE, common_options, emit, get_config, handle_errors
from stationkit.ledger import Ledger
from stationkit.pipeline.check import check_station


@click.command(short_help="Validate settings and metadata against the data.")
@click.argument("stations", nargs=-1)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when a column maps to no point, a point has no data, or a warning is found.",
)
@common_options
@handle_errors
def check(stations: tuple[str, ...], strict: bool) -> None:
    """Validate stations.toml, metadata documents and flag files; compare them with the data.

    Lists, per station, file columns that map to no point and points whose
    columns never appear in the parsed files. Invalid settings fail with the
    key path (or JSON path) of the problem. Read-only: safe during a run.

    \b
    Example:
        stationkit check
        stationkit check M001 --strict --json
    """
    config = get_config()
    with Ledger(config.data_dir, readonly=True) as ledger:
        reports = [check_station(config, st, ledger) for st in config.select(stations)]
    emit([r.as_dict() for r in reports], lambda: "\n".join(r.text() for r in reports), always=True)
    if strict and any(r.problems for r in reports):
        raise SystemExit(EXIT_FAILURE)
