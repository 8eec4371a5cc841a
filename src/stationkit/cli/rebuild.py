"""``stationkit rebuild``."""

from __future__ import annotations

import click

from stationkit.cli.common import (
    cluster_settings,
    common_options,
    emit,
    error_line,
    get_config,
    handle_errors,
    report_errors,
    scheduler_option,
)
from stationkit.pipeline.rebuild import rebuild as rebuild_stations


@click.command(short_help="Recreate lake and exports from raw/ alone; --check compares.")
@click.argument("stations", nargs=-1)
@click.option(
    "--check",
    is_flag=True,
    help="Rebuild aside and compare with what exists; exit 1 naming every file that differs.",
)
@scheduler_option
@common_options
@handle_errors
def rebuild(stations: tuple[str, ...], check: bool, scheduler: str | None) -> None:
    """Recreate lake and exports from raw/ alone (the ledger's file rows too).

    With --check nothing is replaced: the rebuild happens aside and every
    output file that differs from the current one is named -- for CI jobs
    that prove outputs are reproducible. With --scheduler (or [cluster]
    scheduler in stations.toml) the stations are rebuilt on the workers of a
    Dask scheduler (docs/scaling.md).

    \b
    Example:
        stationkit rebuild --check || echo "outputs are not reproducible"
        stationkit rebuild --scheduler local:2
    """
    config = get_config()
    cluster = cluster_settings(config, scheduler)
    result = rebuild_stations(config, config.select(stations), check=check, cluster=cluster)
    report_errors([(f.station, f"{f.stage}: {f.file}", f.reason) for f in result.failures])
    payload = {"stations": result.stations, "check": check, "differences": result.differences}
    emit(
        payload,
        lambda: (
            "\n".join(result.differences)
            or f"rebuilt {len(result.stations)} station(s)" + (": identical" if check else "")
        ),
        always=True,
    )
    if result.differences:
        click.echo(
            error_line(f"{len(result.differences)} output file(s) differ from a rebuild"),
            err=True,
        )
        raise SystemExit(1)
    raise SystemExit(3 if result.failures else 0)
