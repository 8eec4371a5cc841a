"""The HTML fleet report (``stationkit report --html DIR``, and ``run`` with
``[report] html``): a static, self-contained folder of pages and pictures.

Read-only on the data: it takes no lock. See :mod:`stationkit.export.html`
for the layout. Incremental: a station's pictures (the costly part) are
drawn again only when its lake/clean files changed (names, sizes,
modification times) or the report's settings did; what was drawn is
remembered in ``.stationkit-report.json`` in the folder. Pages are always
rendered (they show the status at ``now``) and a file is replaced only when
its bytes change, so a shared drive or a sync tool sees only real changes.

The same data and ``now`` give the same bytes in every page and picture.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from stationkit import __version__
from stationkit.atomic import write_bytes
from stationkit.config import Config, StationConfig
from stationkit.errors import StationkitError
from stationkit.export.html import (
    IMAGES,
    Image,
    MonthCell,
    StationView,
    fleet_page,
    png_size,
    station_page,
)
from stationkit.export.plot import sparklines_png, timeseries_png
from stationkit.export.report import MonthAvailability, heatmap_png
from stationkit.export.select import clean_files, offset_text
from stationkit.export.window import file_spans
from stationkit.ledger import Ledger
from stationkit.pipeline.health import failed_files
from stationkit.pipeline.plot import plot_data
from stationkit.pipeline.report import report_station
from stationkit.pipeline.status import fleet_status
from stationkit.progress import Progress, ProgressCallback, notify

log = logging.getLogger(__name__)

#: bump when the pictures drawn for the same data change
REPORT_VERSION = 1
MANIFEST = ".stationkit-report.json"
#: the stage name in progress events
STAGE = "report"


@dataclass
class HtmlReport:
    """What a report run wrote."""

    folder: Path
    stations: list[str] = field(default_factory=list)
    #: stations whose pictures were drawn again
    drawn: list[str] = field(default_factory=list)
    #: files whose bytes changed, relative to the folder
    written: list[str] = field(default_factory=list)
    #: (station, why its pictures could not be drawn)
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.folder / "index.html"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": str(self.index),
            "stations": self.stations,
            "drawn": self.drawn,
            "written": self.written,
            "errors": [{"station": st, "error": e} for st, e in self.errors],
        }


def _fingerprint(config: Config, station: StationConfig) -> str:
    files = []
    for p in clean_files(config.data_dir, station.id):
        st = p.stat()
        files.append([p.name, st.st_size, st.st_mtime_ns])
    key = {
        "version": [REPORT_VERSION, __version__],
        "files": files,
        "name": station.name,
        "utc_offset_hours": station.utc_offset_hours,
        "averaging_period_minutes": station.averaging_period_minutes,
    }
    return json.dumps(key, sort_keys=True)


def month_cells(rows: Sequence[MonthAvailability]) -> list[MonthCell]:
    """Per month: the mean recovery of the points expected then, and the lowest."""
    by_month: dict[str, list[MonthAvailability]] = {}
    for r in rows:
        by_month.setdefault(r.month, []).append(r)
    out = []
    for month in sorted(by_month):
        expected = [r for r in by_month[month] if r.expected > 0]
        if not expected:
            out.append(MonthCell(month, None))
            continue
        low = min(expected, key=lambda r: (r.recovery_pct, r.point))
        mean = round(sum(r.recovery_pct for r in expected) / len(expected), 2)
        out.append(MonthCell(month, mean, low.recovery_pct, low.point))
    return out


def _draw(config: Config, station: StationConfig, folder: Path) -> dict[str, Any]:
    """Draw a station's pictures; return what the manifest keeps of them."""
    out = folder / "stations" / station.id
    images: dict[str, list[Any]] = {}

    def put(role: str, data: bytes) -> None:
        name = IMAGES[role][0]
        _write_if_changed(out / name, data)
        images[role] = [f"stations/{station.id}/{name}", *png_size(data)]

    rep = report_station(config, station)
    if rep.rows:
        title = f"Data recovery per month - {station.id} ({rep.time_zone})"
        put("recovery", heatmap_png(rep.rows, title=title))
    spans = file_spans(clean_files(config.data_dir, station.id))
    zone = rep.time_zone
    if spans:
        data = plot_data(config, station, spans=spans)
        zone = data.zone
        if data.frame.height:
            put("timeseries", timeseries_png(data.frame, title=data.title(station.name), zone=zone))
            put("points", sparklines_png(data.frame))
    for role, (name, _alt) in IMAGES.items():
        if role not in images:
            (out / name).unlink(missing_ok=True)
    return {
        "images": images,
        "months": [m.as_list() for m in month_cells(rep.rows)],
        "zone": zone,
    }


def _write_if_changed(path: Path, data: bytes) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_bytes(path, data)
    return True


def _load_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == REPORT_VERSION else {}


def _description(station: StationConfig) -> str:
    parts = []
    if station.latitude is not None and station.longitude is not None:
        parts.append(f"{station.latitude:.5g}, {station.longitude:.5g}")
    if station.elevation_m is not None:
        parts.append(f"{station.elevation_m:g} m above sea level")
    if station.utc_offset_hours is not None:
        parts.append(f"logger clock UTC{offset_text(station.utc_offset_hours)}")
    if station.averaging_period_minutes:
        parts.append(f"{station.averaging_period_minutes:g}-minute periods")
    return "; ".join(parts) + "." if parts else ""


def write_html_report(
    config: Config,
    stations: Sequence[StationConfig],
    ledger: Ledger,
    folder: Path,
    *,
    now: datetime,
    progress: ProgressCallback | None = None,
) -> HtmlReport:
    """Write the fleet page of ``stations`` and a page per station into ``folder``.

    ``now`` [UTC] is the time the status is shown at (ages, stale).
    """
    folder.mkdir(parents=True, exist_ok=True)
    result = HtmlReport(folder)
    manifest = _load_manifest(folder)
    drawn: dict[str, Any] = manifest.get("stations", {})
    as_of = f"{now:%Y-%m-%d %H:%M}"
    views = []
    notify(progress, Progress("", STAGE, 0, len(stations), unit="stations"))
    for i, st in enumerate(stations):
        notify(progress, Progress(st.id, STAGE, 0, None, unit="pictures"))
        fingerprint = _fingerprint(config, st)
        entry = drawn.get(st.id)
        missing = entry is not None and any(
            not (folder / img[0]).is_file() for img in entry["images"].values()
        )
        error = None
        if entry is None or entry.get("fingerprint") != fingerprint or missing:
            try:
                entry = {"fingerprint": fingerprint, **_draw(config, st, folder)}
            except (StationkitError, pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
                # one station's unreadable data must not cost the others their report
                error = f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc)
                log.info("report: %s: pictures not drawn: %s", st.id, error)
                result.errors.append((st.id, error))
                entry = {"images": {}, "months": [], "zone": "UTC"}
            else:
                drawn[st.id] = entry
                result.drawn.append(st.id)
        view = StationView(
            id=st.id,
            name=st.name,
            status=fleet_status(config, [st], ledger, now)[0],
            failed=[f.as_dict() for f in failed_files(config, st.id, ledger)],
            months=[MonthCell(*m) for m in entry["months"]],
            images={role: Image(*img) for role, img in entry["images"].items()},
            zone=entry["zone"],
            description=_description(st),
            error=error,
        )
        views.append(view)
        if _write_if_changed(folder / view.page, station_page(view, as_of=as_of).encode()):
            result.written.append(view.page)
        result.stations.append(st.id)
        notify(progress, Progress("", STAGE, i + 1, len(stations), item=st.id, unit="stations"))
    index = fleet_page(views, as_of=as_of, data_dir=str(config.data_dir)).encode()
    if _write_if_changed(folder / "index.html", index):
        result.written.append("index.html")
    body = json.dumps({"version": REPORT_VERSION, "stations": drawn}, sort_keys=True, indent=1)
    _write_if_changed(folder / MANIFEST, body.encode())
    log.info("report: %d station(s), %d drawn again", len(result.stations), len(result.drawn))
    return result
