"""``stationkit parse``."""

from __future__ import annotations

from typing import Any

import click

from stationkit.cli.common import (
    common_options,
    emit,
    exit_code,
    get_config,
    handle_errors,
    report_errors,
    tty_progress,
    tty_progress_done,
)
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.parse import parse_station


@click.command()
@click.argument("stations", nargs=-1)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Files parsed in parallel.",
)
@common_options
@handle_errors
def parse(stations: tuple[str, ...], jobs: int) -> None:
    """Parse new files into lake/readings (tidy Parquet, one file per source file).

    Files that cannot be read are quarantined with the reason in the ledger
    (exit code 3); the others are parsed. Running it again does nothing.

    \b
    Example:
        stationkit parse M001 --jobs 2
    """
    config = get_config()
    results: list[dict[str, Any]] = []
    errors: list[tuple[str, str, str]] = []
    ok = failed = 0
    with RunLock(config.data_dir), Ledger(config.data_dir) as ledger:
        for st in config.select(stations):
            s = parse_station(
                config, st, ledger, progress=tty_progress(f"parsing {st.id}"), jobs=jobs
            )
            tty_progress_done()
            results.append(s.as_dict())
            errors.extend((st.id, f, e) for f, e in s.errors)
            ok += s.parsed
            failed += s.failed
    report_errors(errors)
    emit(
        results,
        lambda: "\n".join(
            f"{r['station']}: {r['parsed']} parsed ({r['readings']} readings), "
            f"{r['failed']} failed, {r['skipped']} skipped"
            for r in results
        ),
    )
    raise SystemExit(exit_code(failed, ok))
