"""``stationkit fetch`` and ``stationkit add``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stationkit.cli.common import (
    common_options,
    emit,
    exit_code,
    get_config,
    handle_errors,
    report_errors,
)
from stationkit.errors import StationkitError
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.fetch import add_files, fetch_station


@click.command()
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
    config = get_config()
    selected = config.select(stations)
    results: list[dict[str, Any]] = []
    errors: list[tuple[str, str, str]] = []
    ok = failed = 0
    with RunLock(config.data_dir), Ledger(config.data_dir) as ledger:
        for st in selected:
            try:
                s = fetch_station(config, st, ledger, force=force)
            except StationkitError as exc:
                errors.append((st.id, "", str(exc)))
                failed += 1
                continue
            results.append(s.as_dict())
            errors.extend((st.id, f, e) for f, e in s.errors)
            failed += len(s.errors)
            ok += s.fetched + s.unchanged + (1 if not s.errors else 0)
    report_errors(errors)
    emit(
        results,
        lambda: "\n".join(
            f"{r['station']}: {r['fetched']} fetched, {r['listed']} listed"
            + (" (not due)" if r["skipped_interval"] else "")
            for r in results
        ),
    )
    raise SystemExit(exit_code(failed, ok))


@click.command()
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
