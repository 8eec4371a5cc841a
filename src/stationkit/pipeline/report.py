"""The report stage: data availability of stations from lake/clean.

Read-only: it takes no lock and writes nothing but the heatmap asked for.
See :mod:`stationkit.export.report` for what each figure means.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from stationkit.atomic import write_bytes
from stationkit.clock import station_clock
from stationkit.config import Config, StationConfig
from stationkit.export.report import Availability, MonthAvailability, heatmap_png
from stationkit.export.select import (
    ExportError,
    Selection,
    clean_files,
    iter_chunks,
    months,
    read_catalog,
)
from stationkit.pipeline.export import SCRATCH, to_utc

log = logging.getLogger(__name__)


@dataclass
class StationReport:
    """One station's availability rows and the time zone they are in."""

    station: str
    time_zone: str
    step_minutes: float | None = None
    rows: list[MonthAvailability] = field(default_factory=list)


def report_station(
    config: Config,
    station: StationConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    points: Sequence[str] = (),
    utc: bool = False,
    progress: Callable[[str], None] | None = None,
) -> StationReport:
    """Availability per point and month of one station.

    Months and times are in the logger's local time (the station's clock,
    :func:`stationkit.clock.station_clock`),
    or UTC with ``utc``; ``start`` / ``end`` bound the period [start, end) in
    that zone. A station without clean data gives an empty report.
    """
    clock = station_clock(station)  # stations.toml, else the IEA document
    offset = 0.0 if utc else clock.offset_hours
    sel = Selection(
        station=station.id,
        start=to_utc(start, offset),
        end=to_utc(end, offset),
        points=tuple(dict.fromkeys(points)),
        exclude_flags=(),  # availability counts every value; flags are counted apart
        utc_offset_hours=offset,
    )
    if sel.start is not None and sel.end is not None and sel.end <= sel.start:
        raise ExportError(f"{station.id}: the end ({end}) must come after the start ({start})")
    report = StationReport(station.id, sel.zone_name())
    files = clean_files(config.data_dir, station.id, sel.start, sel.end)
    if not files:
        log.info("%s: no clean data", station.id)
        return report
    step = clock.period
    catalog = read_catalog(files, sel, step=step)
    if sel.points and (sel.start is None or sel.end is None):
        # the station's period, not the chosen points': a late sensor is short
        whole = read_catalog(files, replace(sel, points=()), step=catalog.step)
        catalog = replace(catalog, first=whole.first, last=whole.last)
    report.step_minutes = catalog.step.total_seconds() / 60
    acc = Availability(station.id, catalog, months(sel, catalog))
    scratch = config.data_dir / SCRATCH
    for window, chunk in iter_chunks(files, sel, catalog, with_flags=True, scratch=scratch):
        if progress is not None:
            progress(f"{window.start + sel.offset:%Y-%m-%d}")
        acc.add(chunk)
    report.rows = acc.result()
    return report


def write_heatmap(reports: Sequence[StationReport], path: Path) -> None:
    """The availability heatmap of ``reports`` as a PNG, written atomically."""
    rows = [r for rep in reports for r in rep.rows]
    if not rows:
        names = ", ".join(rep.station for rep in reports) or "(no station)"
        raise ExportError(
            f"{path}: nothing to plot: no clean data for {names} in the period; "
            "run `stationkit run` (or calibrate) first, or widen --start/--end"
        )
    zones = sorted({rep.time_zone for rep in reports})
    names = ", ".join(rep.station for rep in reports)
    title = f"Data recovery per month - {names}" + (f" ({', '.join(zones)})" if zones else "")
    write_bytes(path, heatmap_png(rows, title=title))
