"""Progress reports from long jobs, for whoever wants to show them.

The library never prints: a stage takes an optional callback and calls it
with a :class:`Progress` as work proceeds. The CLI turns these into a
progress display on a terminal (and nothing under cron).

The contract, per station and stage:

* a stage calls the callback once when it starts (``done=0``; ``total`` is
  the number of units when known, else None),
* then after each unit it finished (``done`` counts up to ``total``;
  ``item`` names the unit, e.g. the file),
* ``done`` never decreases within a (station, stage).

``station=""`` is the fleet: with stage :data:`STATIONS`, ``done`` counts
the stations a run has finished, ``item`` naming the one just finished;
another stage (``report``) counts the stations that stage has finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: the stage of fleet-level events: ``done`` of ``total`` stations finished
STATIONS = "stations"


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of ``stage`` for ``station``."""

    station: str
    stage: str
    done: int = 0
    total: int | None = None
    #: the unit just finished (or started, when ``done`` is 0)
    item: str = ""
    unit: str = "files"


ProgressCallback = Callable[[Progress], None]


def notify(callback: ProgressCallback | None, event: Progress) -> None:
    """Call ``callback`` (if any) with ``event``."""
    if callback is not None:
        callback(event)
