"""What the ledger knows, per station (``stationkit status``)."""

from __future__ import annotations

from typing import Any

from stationkit.ledger import Ledger

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
