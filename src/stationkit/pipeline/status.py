"""What the ledger knows, per station (``stationkit status``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl
import pyarrow as pa

from stationkit.config import Config, StationConfig
from stationkit.ledger import Ledger
from stationkit.pipeline.health import failed_files, staleness, suspect_points

log = logging.getLogger(__name__)

STATES = ("pending", "ok", "failed", "skipped", "archive", "superseded")


def station_status(ledger: Ledger, station: str) -> dict[str, Any]:
    """Files by state, first and last data timestamp, last fetch, the newest
    failure not yet resolved, and how many failures no run has reported yet."""
    c = ledger.conn
    counts = dict.fromkeys(STATES, 0)
    for row in c.execute(
        "SELECT COALESCE(p.status, CASE WHEN f.superseded_by IS NULL THEN 'pending' "
        "ELSE 'superseded' END) AS state, COUNT(*) AS n "
        "FROM files f LEFT JOIN parses p ON p.file_id = f.id WHERE f.station=? GROUP BY state",
        (station,),
    ):
        counts[row["state"]] = counts.get(row["state"], 0) + row["n"]
    span = c.execute(
        "SELECT MIN(first_ts) AS first, MAX(last_ts) AS last, SUM(readings) AS readings "
        "FROM parses WHERE station=? AND status='ok'",
        (station,),
    ).fetchone()
    fetch = ledger.fetch_info(station)
    err = ledger.last_error(station)  # none once what failed has succeeded
    pending = len(ledger.pending_failures([station]))
    builds = {
        r["stage"]: r["built_at"]
        for r in c.execute("SELECT stage, built_at FROM builds WHERE station=?", (station,))
    }
    return {
        "station": station,
        "files": counts,
        "readings": int(span["readings"] or 0),
        "first_timestamp": span["first"],
        "last_timestamp": span["last"],
        "last_fetch": fetch["last_success_at"] if fetch else None,
        "last_fetch_attempt": fetch["last_attempt_at"] if fetch else None,
        "last_calibrate": builds.get("calibrate"),
        "exports": {
            stage.split(":", 1)[1]: at
            for stage, at in sorted(builds.items())
            if stage.startswith("export:")
        },
        "last_error": (
            {
                "at": err["at"],
                "stage": err["stage"],
                "file": err["file"],
                "message": err["reason"],
                "kind": err["kind"],
            }
            if err
            else None
        ),
        "pending_failures": pending,
    }


def fleet_status(
    config: Config,
    stations: Sequence[StationConfig],
    ledger: Ledger,
    now: datetime,
    *,
    suspects: bool = True,
) -> list[dict[str, Any]]:
    """:func:`station_status` of each station with its health at ``now``:
    ``health`` (state, stale, last data, age, threshold), ``failed_files`` (how many; :func:`failed_files` lists them)
    and ``suspect`` (points QC flags hit too often; see
    :mod:`stationkit.pipeline.health`)."""
    out = []
    for st in stations:
        row = station_status(ledger, st.id)
        row["health"] = staleness(config, st, ledger, now).as_dict()
        row["failed_files"] = sum(1 for f in failed_files(config, st.id, ledger) if f.path)
        row["suspect"] = _suspects(config, st) if suspects else None
        out.append(row)
    return out


def _suspects(config: Config, station: StationConfig) -> dict[str, Any] | None:
    """The suspect points, or an ``error`` when lake/clean cannot be read:
    a status never fails for one station's data."""
    try:
        return suspect_points(config, station).as_dict()
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
        log.info("%s: suspect sensors not known: lake/clean unreadable (%s)", station.id, exc)
        return {"error": f"lake/clean unreadable ({exc})", "points": []}


def failed_list(
    config: Config, stations: Sequence[StationConfig], ledger: Ledger
) -> list[dict[str, Any]]:
    """Every failed or quarantined file (and failing fetch) of ``stations``."""
    return [f.as_dict() for st in stations for f in failed_files(config, st.id, ledger)]
