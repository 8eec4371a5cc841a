"""``stationkit run``: every stage, for each station, under the run lock.

Stages run in order per station: fetch -> parse. A stage's failure on one
file never stops the other files; a station whose source cannot be reached
still has its already-fetched files parsed; the other stations go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stationkit.config import Config, StationConfig
from stationkit.errors import StationkitError
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station


@dataclass
class RunResult:
    """Per-station, per-stage summaries and every failure."""

    stations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (station, "stage: file", reason)
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    successes: int = 0
    fatal: int = 0

    @property
    def exit_code(self) -> int:
        if not self.errors:
            return 0
        return 3 if self.successes or not self.fatal else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "stations": self.stations,
            "errors": [{"station": s, "where": w, "reason": r} for s, w, r in self.errors],
        }

    def text(self) -> str:
        lines = []
        for sid, stages in self.stations.items():
            parts = []
            if "fetch" in stages:
                parts.append(f"{stages['fetch']['fetched']} fetched")
            if "parse" in stages:
                p = stages["parse"]
                parts.append(f"{p['parsed']} parsed, {p['failed']} failed")
            lines.append(f"{sid}: " + ", ".join(parts))
        return "\n".join(lines)


def run_station(
    config: Config, station: StationConfig, ledger: Ledger, result: RunResult, *, force: bool
) -> None:
    sid = station.id
    stages: dict[str, Any] = {}
    result.stations[sid] = stages
    if station.source is not None:
        try:
            f = fetch_station(config, station, ledger, force=force)
            stages["fetch"] = f.as_dict()
            result.errors.extend((sid, f"fetch: {p}", e) for p, e in f.errors)
            result.successes += f.fetched
        except StationkitError as exc:
            stages["fetch"] = {"error": str(exc), "fetched": 0}
            result.errors.append((sid, "fetch", str(exc)))
            result.fatal += 1
    p = parse_station(config, station, ledger)
    stages["parse"] = p.as_dict()
    result.errors.extend((sid, f"parse: {path}", e) for path, e in p.errors)
    result.successes += p.parsed


def run_stations(
    config: Config, stations: Sequence[StationConfig], *, wait: bool = False, force: bool = False
) -> RunResult:
    """Run the chain for ``stations``; raises LockedError if a run is in progress."""
    result = RunResult()
    with RunLock(config.data_dir, wait=wait), Ledger(config.data_dir) as ledger:
        for station in stations:
            run_station(config, station, ledger, result, force=force)
    return result
