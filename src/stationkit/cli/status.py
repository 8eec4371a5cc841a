"""``stationkit status``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from stationkit.cli.common import (
    common_options,
    emit,
    get_config,
    handle_errors,
    options,
    report_time,
    where,
)
from stationkit.cli.common import shown_path as shown
from stationkit.ledger import Ledger
from stationkit.pipeline.health import age_text, parse_time
from stationkit.pipeline.status import failed_list, fleet_status
from stationkit.textsafe import show_name


def _short(ts: str | None) -> str:
    t = parse_time(ts)
    return "-" if t is None else f"{t:%Y-%m-%d %H:%M}"


def _age(hours: float | None) -> str:
    return "-" if hours is None else age_text(timedelta(hours=hours))


def _table(rows: list[dict[str, Any]]) -> list[str]:
    head = ("station", "state", "last data (UTC)", "age", "stale after", "files")
    cells = []
    for r in rows:
        h = r["health"]
        files = ", ".join(f"{n} {state}" for state, n in r["files"].items() if n)
        cells.append(
            (
                r["station"],
                h["state"].upper() if h["state"] != "ok" else "ok",
                _short(h["last_data"]),
                _age(h["age_hours"]),
                _age(h["stale_after_hours"]) if h["stale_after_hours"] else "never",
                files or "no files",
            )
        )
    widths = [max(len(head[i]), *(len(c[i]) for c in cells)) for i in range(len(head))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
        for line in (head, *cells)
    ]


def _details(r: dict[str, Any], verbose: bool) -> list[str]:
    lines = []
    if r["last_error"]:
        e = r["last_error"]
        lines.append(f"  last error: {e['at']} [{e['stage']}] {show_name(where('', e['message']))}")
    if r["failed_files"]:
        lines.append(
            f"  failed files: {r['failed_files']} (list them: stationkit status --failed {r['station']})"
        )
    suspect = r["suspect"]
    if suspect and suspect.get("error"):
        lines.append(f"  suspect sensors not known: {show_name(suspect['error'])}")
    elif suspect and suspect["points"]:
        names = ", ".join(
            f"{show_name(p['point'])} ({', '.join(f'{f} {s:.0%}' for f, s in p['flags'].items())})"
            for p in suspect["points"]
        )
        lines.append(
            f"  suspect: {names} of the values from {_short(suspect['window_start'])} "
            f"to {_short(suspect['window_end'])} UTC"
        )
    if verbose:
        lines.append(
            f"  data: {r['first_timestamp'] or '-'} .. {r['last_timestamp'] or '-'} "
            f"({r['readings']} readings)"
        )
        lines.append(f"  last fetch: {r['last_fetch'] or '-'}")
        if r["last_calibrate"]:
            lines.append(f"  last calibrate: {r['last_calibrate']}")
        for path, at in r["exports"].items():
            lines.append(f"  export {show_name(shown(path))}: {at}")
    return [f"{r['station']}:", *lines] if lines else []


def _text(rows: list[dict[str, Any]]) -> str:
    verbose = options().verbose > 0
    lines = _table(rows)
    for r in rows:
        lines.extend(_details(r, verbose))
    return "\n".join(lines)


def _failed_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no failed files"
    lines = []
    for f in rows:
        lines.append(f"{f['station']}: {f['stage']}: {show_name(where(f['path'], f['reason']))}")
        if f["quarantine"]:
            lines.append(f"  quarantined copy: {show_name(shown(f['quarantine']))}")
    return "\n".join(lines)


@click.command(short_help="Fleet health: stale stations, suspect sensors, failed files.")
@click.argument("stations", nargs=-1)
@click.option(
    "--failed",
    is_flag=True,
    help="List every failed or quarantined file (and failing fetch) with its reason.",
)
@common_options
@handle_errors
def status(stations: tuple[str, ...], failed: bool) -> None:
    """Fleet health from the ledger and lake/clean, one line per station.

    Per station: state (ok, STALE, NO DATA), the newest data, its age and
    the station's stale_after_hours, files per state. Below the table, for
    the stations concerned: the last error, how many files failed, and the
    sensors whose values an automatic QC flag (flat line, icing, range,
    spike) hit more often than [status] suspect_share over the last
    suspect_days of data. -v adds the last fetch, calibrate and exports.
    --failed lists every failed file with its reason instead. Works while
    another stationkit process is in the middle of a run.

    \b
    Example:
        stationkit status
        stationkit status --failed M001
        stationkit status M001 --json
    """
    config = get_config()
    selected = config.select(stations)
    with Ledger(config.data_dir, readonly=True) as ledger:
        if failed:
            rows = failed_list(config, selected, ledger)
            emit(rows, lambda: _failed_text(rows), always=True)
            return
        rows = fleet_status(config, selected, ledger, report_time())
    emit(rows, lambda: _text(rows), always=True)
