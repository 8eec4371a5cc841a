"""``stationkit calibrate``."""

from __future__ import annotations

from typing import Any

import click

from stationkit.cli.common import (
    StationStep,
    common_options,
    handle_errors,
    per_station,
    shown_path,
)
from stationkit.config import Config, StationConfig
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import calibrate_station


def _text(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        if r["up_to_date"]:
            lines.append(f"{r['station']}: up to date")
        else:
            lines.append(
                f"{r['station']}: {r['rows']} clean rows, {r['points']} points, "
                f"{r['flagged']} flagged ({r['qc_hits']} QC hits) -> {shown_path(r['output'])}"
            )
            if r["warnings"]:
                lines.append(f"  {len(r['warnings'])} warning(s): see `stationkit check`")
    return "\n".join(lines)


@click.command(short_help="Build lake/clean: calibrations, flags and QC.")
@click.argument("stations", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even when no input changed.")
@common_options
@handle_errors
def calibrate(stations: tuple[str, ...], force: bool) -> None:
    """Build lake/clean from readings, metadata, flags and QC (DuckDB).

    One value per point, statistic and time: calibrations from stations.toml
    or the IEA Task 43 document, manual and Windographer flags, automatic QC
    flags. Flags never delete data. A station whose readings, metadata and
    flags did not change is skipped; a station that fails (invalid metadata)
    does not stop the others (exit code 3).

    \b
    Example:
        stationkit calibrate M001
        stationkit calibrate --force --json
    """

    def step(config: Config, st: StationConfig, ledger: Ledger) -> StationStep:
        return StationStep(calibrate_station(config, st, ledger, force=force).as_dict(), [], 1, 0)

    per_station(stations, step, _text, stage="calibrate")
