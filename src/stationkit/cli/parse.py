"""``stationkit parse``."""

from __future__ import annotations

import click

from stationkit.cli.common import (
    StationStep,
    common_options,
    handle_errors,
    per_station,
)
from stationkit.cli.progress import progress_display
from stationkit.config import Config, StationConfig
from stationkit.ledger import Ledger
from stationkit.pipeline.parse import parse_station


@click.command(short_help="Parse new files into lake/readings (tidy Parquet).")
@click.argument("stations", nargs=-1)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Files parsed in parallel.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Parse again the files that failed before (e.g. after changing [stations.<id>.reader]).",
)
@common_options
@handle_errors
def parse(stations: tuple[str, ...], jobs: int, retry_failed: bool) -> None:
    """Parse new files into lake/readings (tidy Parquet, one file per source file).

    Files that cannot be read are quarantined with the reason in the ledger
    (exit code 3); the others are parsed. Running it again does nothing,
    except for files that failed because of the environment (a full disk,
    an I/O error): those are tried again.

    \b
    Example:
        stationkit parse M001 --jobs 2
        stationkit parse M001 --retry-failed
    """

    def step(config: Config, st: StationConfig, ledger: Ledger) -> StationStep:
        with progress_display() as show:
            s = parse_station(
                config, st, ledger, progress=show, jobs=jobs, retry_failed=retry_failed
            )
        return StationStep(s.as_dict(), s.errors, s.parsed, s.failed)

    per_station(
        stations,
        step,
        lambda results: "\n".join(
            f"{r['station']}: {r['parsed']} parsed ({r['readings']} readings), "
            f"{r['failed']} failed, {r['skipped']} skipped"
            for r in results
        ),
        stage="parse",
    )
