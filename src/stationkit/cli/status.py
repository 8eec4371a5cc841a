"""``stationkit status``."""

from __future__ import annotations

from typing import Any

import click

from stationkit.cli.common import common_options, emit, get_config, handle_errors
from stationkit.ledger import Ledger
from stationkit.pipeline.status import station_status
from stationkit.textsafe import show_name


def _text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        files = ", ".join(f"{n} {state}" for state, n in r["files"].items() if n)
        lines.append(f"{r['station']}: {files or 'no files'}")
        lines.append(
            f"  data: {r['first_timestamp'] or '-'} .. {r['last_timestamp'] or '-'} "
            f"({r['readings']} readings)"
        )
        lines.append(f"  last fetch: {r['last_fetch'] or '-'}")
        if r["last_calibrate"]:
            lines.append(f"  last calibrate: {r['last_calibrate']}")
        for path, at in r["exports"].items():
            lines.append(f"  export {path}: {at}")
        if r["last_error"]:
            e = r["last_error"]
            lines.append(f"  last error: {e['at']} [{e['stage']}] {show_name(e['message'])}")
    return "\n".join(lines)


@click.command()
@click.argument("stations", nargs=-1)
@common_options
@handle_errors
def status(stations: tuple[str, ...]) -> None:
    """Show what the ledger knows: files per state, first and last data, failures.

    Works while another stationkit process is in the middle of a run.

    \b
    Example:
        stationkit status
        stationkit status M001 --json
    """
    config = get_config()
    with Ledger(config.data_dir, readonly=True) as ledger:
        rows = [station_status(ledger, st.id) for st in config.select(stations)]
    emit(rows, lambda: _text(rows), always=True)
