"""``stationkit fetch`` and ``stationkit add``."""

from __future__ import annotations

from pathlib import Path

import click

from stationkit.cli.common import (
    StationStep,
    common_options,
    emit,
    exit_code,
    get_config,
    handle_errors,
    per_station,
    report_errors,
)
from stationkit.config import Config, StationConfig
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.fetch import add_files, fetch_station


@click.command(short_help="Pull new or changed files from each station's source.")
@click.argument("stations", nargs=-1)
@click.option(
    "--force", is_flag=True, help="Fetch even if the station's fetch interval has not passed."
)
@common_options
@handle_errors
def fetch(stations: tuple[str, ...], force: bool) -> None:
    """Pull new or changed files from each station's source into raw/.

    Files already fetched with the same size and mtime are not transferred
    again; a file whose content changed is stored as a new version.

    \b
    Example:
        stationkit fetch M001 M002
        stationkit fetch --force M001
    """

    def step(config: Config, st: StationConfig, ledger: Ledger) -> StationStep:
        s = fetch_station(config, st, ledger, force=force)
        ok = s.fetched + s.unchanged + (1 if not s.errors else 0)
        return StationStep(s.as_dict(), s.errors, ok, len(s.errors))

    per_station(
        stations,
        step,
        lambda results: "\n".join(
            f"{r['station']}: {r['fetched']} fetched, {r['listed']} listed"
            + (" (not due)" if r["skipped_interval"] else "")
            for r in results
        ),
        stage="fetch",
    )


@click.command(short_help="Add files to a station by hand (a manual upload).")
@click.argument("station")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@common_options
@handle_errors
def add(station: str, files: tuple[Path, ...]) -> None:
    """Add files to a station by hand (a manual upload) into raw/<station>/manual/.

    \b
    Example:
        stationkit add M001 ~/Downloads/CR1000_Table1.dat
    """
    config = get_config()
    (st,) = config.select([station])
    with RunLock(config.data_dir), Ledger(config.data_dir) as ledger:
        s = add_files(config, st, files, ledger)
    report_errors([(station, f, e) for f, e in s.errors])
    emit(
        s.as_dict(),
        lambda: f"{station}: {s.fetched} added, {s.unchanged} already there",
        always=True,
    )
    raise SystemExit(exit_code(len(s.errors), s.fetched + s.unchanged))
