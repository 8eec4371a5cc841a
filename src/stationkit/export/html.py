"""The static HTML fleet report: pages as text, from plain data.

No server and no script: inline CSS, PNG images in files beside the pages,
relative links only, so the folder works from a ``file://`` URL, on a
shared drive, or copied elsewhere as a whole. Every untrusted text (names,
point names, reasons, paths) is HTML-escaped. The same data gives the same
bytes: nothing here reads a clock.

Layout of the report folder::

    index.html                      one row per station
    stations/<id>/index.html        one page per station
    stations/<id>/points.png        last 30 days, one thin line per point
    stations/<id>/last-30-days.png  last 30 days, one panel per measurement type
    stations/<id>/recovery.png      data recovery per point and month
"""

from __future__ import annotations

import html
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stationkit.export.report import recovery_colour, text_colour
from stationkit.textsafe import show_name

#: images of a station's page, by role: (file name, alt text)
IMAGES = {
    "points": ("points.png", "Last 30 days of data, one line per point; flagged values red"),
    "timeseries": (
        "last-30-days.png",
        "Last 30 days of data, one panel per measurement type; flagged values marked",
    ),
    "recovery": ("recovery.png", "Data recovery per point and month"),
}
#: months in a fleet row's recovery strip
FLEET_MONTHS = 12
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.2em;
       color: #1a1a1a; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.4em 0 .4em; }
p.summary { margin: .2em 0 1em; color: #333; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: .35em .6em; }
table.fleet > thead th { border-bottom: 2px solid #999; position: sticky; top: 0; background: #fff; }
table.fleet > tbody > tr > td { border-bottom: 1px solid #ddd; }
table.fleet > tbody > tr.stale > td:first-child { border-left: 5px solid #c62828; }
table.fleet > tbody > tr.ok > td:first-child { border-left: 5px solid #2e7d32; }
table.fleet > tbody > tr.nodata > td:first-child { border-left: 5px solid #9e9e9e; }
.badge { display: inline-block; padding: .05em .5em; border-radius: .8em; font-size: .85em;
         font-weight: 600; color: #fff; background: #757575; }
.badge.ok { background: #2e7d32; } .badge.stale { background: #c62828; }
.badge.warn { background: #ef6c00; }
small, .muted { color: #555; }
table.months td { width: 2.4em; text-align: center; font-size: .75em; padding: .25em 0;
                  border: 1px solid #fff; font-variant-numeric: tabular-nums; }
table.months th { font-size: .65em; font-weight: normal; color: #555; text-align: center;
                  padding: 0; }
table.details th { font-weight: 600; white-space: nowrap; }
table.details td, table.details th { border-bottom: 1px solid #eee; }
table.list th { border-bottom: 2px solid #999; }
table.list td { border-bottom: 1px solid #eee; }
td.reason { max-width: 60em; overflow-wrap: anywhere; }
code { font-size: .9em; overflow-wrap: anywhere; }
.scroll { overflow: auto; max-width: 100%; border: 1px solid #eee; }
.scroll img { max-width: none; display: block; }
img.fit { max-width: 100%; height: auto; }
nav { margin-bottom: .8em; }
ul.attention { margin: 0 0 1em; padding-left: 1.2em; }
footer { margin-top: 2em; font-size: .8em; color: #666; }
"""


def esc(value: Any) -> str:
    """Untrusted text as HTML shows it literally, control and bidi characters
    escaped too (:func:`stationkit.textsafe.show_name`)."""
    return html.escape(show_name(str(value)), quote=True)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of PNG bytes, from the IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@dataclass(frozen=True)
class Image:
    """An image beside a page: its path relative to the report folder and size [px]."""

    path: str
    width: int
    height: int


@dataclass(frozen=True)
class MonthCell:
    """One month of a station: the mean and lowest recovery of its points [%]."""

    month: str
    mean: float | None
    lowest: float | None = None
    lowest_point: str | None = None

    def as_list(self) -> list[Any]:
        return [self.month, self.mean, self.lowest, self.lowest_point]


@dataclass
class StationView:
    """Everything a station's row and page show."""

    id: str
    name: str | None
    status: dict[str, Any]
    failed: list[dict[str, Any]] = field(default_factory=list)
    months: list[MonthCell] = field(default_factory=list)
    images: dict[str, Image] = field(default_factory=dict)
    zone: str = "UTC"
    description: str = ""
    #: why the pictures could not be drawn
    error: str | None = None

    @property
    def state(self) -> str:
        return str(self.status["health"]["state"])

    @property
    def suspects(self) -> list[dict[str, Any]]:
        s = self.status.get("suspect")
        return list(s["points"]) if s else []

    @property
    def page(self) -> str:
        return f"stations/{self.id}/index.html"


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )


def _short_time(text: str | None) -> str:
    """``2024-01-31T23:50:00.000000Z`` -> ``2024-01-31 23:50``."""
    return "-" if not text else text[:16].replace("T", " ")


def _age(hours: float | None) -> str:
    if hours is None:
        return ""
    if abs(hours) < 1.5:
        return f"{hours * 60:.0f} min ago"
    if abs(hours) < 48:
        return f"{hours:.1f} h ago"
    return f"{hours / 24:.1f} days ago"


def _badge(state: str) -> str:
    cls = {"ok": "ok", "stale": "stale", "clock ahead": "warn"}.get(state, "")
    return f'<span class="badge {cls}">{esc(state)}</span>'


def _img(
    image: Image | None, alt: str, prefix: str, *, cls: str = "fit", lazy: bool = False
) -> str:
    if image is None:
        return '<span class="muted">no data</span>'
    loading = ' loading="lazy"' if lazy else ""
    return (
        f'<img class="{cls}" src="{esc(prefix + image.path)}" width="{image.width}" '
        f'height="{image.height}" alt="{esc(alt)}"{loading}>'
    )


def _alt(view: StationView, role: str) -> str:
    return f"{view.id}: {IMAGES[role][1]}"


def _flags(shares: dict[str, float]) -> str:
    return ", ".join(f"{esc(f)} {share:.0%}" for f, share in shares.items())


def _months_strip(months: Sequence[MonthCell]) -> str:
    shown = list(months)[-FLEET_MONTHS:]
    if not shown:
        return '<span class="muted">no data</span>'
    cells = []
    heads = []
    for m in shown:
        colour = recovery_colour(m.mean)
        text = "" if m.mean is None else f"{m.mean:.0f}"
        tip = f"{m.month}: no data expected"
        if m.mean is not None:
            tip = f"{m.month}: mean recovery {m.mean:.1f} %"
            if m.lowest is not None and m.lowest_point is not None:
                tip += f", lowest {m.lowest_point} {m.lowest:.1f} %"
        cells.append(
            f'<td style="background:{colour};color:{text_colour(colour)}" title="{esc(tip)}">'
            f"{text}</td>"
        )
        heads.append(f"<th>{MONTH_NAMES[int(m.month[5:7]) - 1]}</th>")
    return (
        '<table class="months" aria-label="Mean data recovery of the points per month [%]">'
        f"<tr>{''.join(cells)}</tr><tr>{''.join(heads)}</tr></table>"
    )


def _problems(view: StationView, *, link: str) -> str:
    out = []
    files = sum(1 for f in view.failed if f["path"])
    fetch = [f for f in view.failed if f["stage"] == "fetch"]
    if fetch:
        out.append('<span class="badge warn">fetch failing</span>')
    if files:
        out.append(f'<a href="{esc(link)}#failed">{files} failed file{"s" * (files != 1)}</a>')
    if view.suspects:
        names = ", ".join(esc(p["point"]) for p in view.suspects)
        out.append(f'<a href="{esc(link)}#suspect">suspect: {names}</a>')
    return "<br>".join(out)


def _attention(views: Sequence[StationView]) -> str:
    """Links to the stations that need someone, by problem."""
    groups = (
        ("Stale", [v for v in views if v.state == "stale"]),
        ("Clock ahead", [v for v in views if v.state == "clock ahead"]),
        ("Fetch failing", [v for v in views if any(f["stage"] == "fetch" for f in v.failed)]),
        ("Failed files", [v for v in views if any(f["path"] for f in v.failed)]),
        ("Suspect sensors", [v for v in views if v.suspects]),
    )
    items = [
        f"<li>{label}: "
        + ", ".join(f'<a href="#station-{esc(v.id)}">{esc(v.id)}</a>' for v in group)
        + "</li>"
        for label, group in groups
        if group
    ]
    return f'<ul class="attention">{"".join(items)}</ul>\n' if items else ""


def fleet_page(views: Sequence[StationView], *, as_of: str, data_dir: str) -> str:
    """``index.html``: one row per station."""
    counts: dict[str, int] = {}
    for v in views:
        counts[v.state] = counts.get(v.state, 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    failed = sum(1 for v in views for f in v.failed if f["path"])
    suspects = sum(len(v.suspects) for v in views)
    rows = []
    for v in views:
        h = v.status["health"]
        cls = {"stale": "stale", "ok": "ok", "no data": "nodata"}.get(v.state, "")
        name = f"<br><small>{esc(v.name)}</small>" if v.name else ""
        rows.append(
            f'<tr id="station-{esc(v.id)}" class="{cls}">'
            f'<td><a href="{esc(v.page)}"><strong>{esc(v.id)}</strong></a>{name}</td>'
            f"<td>{_badge(v.state)}<br>{_problems(v, link=v.page)}</td>"
            f"<td>{esc(_short_time(h['last_data']))}<br><small>{esc(_age(h['age_hours']))}</small></td>"
            f"<td>{_months_strip(v.months)}</td>"
            f"<td>{_img(v.images.get('points'), _alt(v, 'points'), '', lazy=True)}</td>"
            "</tr>\n"
        )
    body = (
        "<header>\n<h1>Station fleet</h1>\n"
        f'<p class="summary">Status as of {esc(as_of)} UTC. {len(views)} station(s): '
        f"{esc(states) or 'none'}; {failed} failed file(s); {suspects} suspect sensor(s).</p>\n"
        f"{_attention(views)}</header>\n"
        '<table class="fleet">\n<thead><tr><th>Station</th><th>Status</th>'
        "<th>Last data (UTC)</th><th>Data recovery per month [%]</th>"
        "<th>Last 30 days, per point</th></tr></thead>\n<tbody>\n"
        f"{''.join(rows)}</tbody>\n</table>\n"
        f"<footer>Written by stationkit from {esc(data_dir)}. Recovery: the share of expected "
        "time steps with a value, the mean over the station's points (hover a month for its "
        "lowest point). Red crosses and dots: values a flag hit.</footer>\n"
    )
    return _page("Station fleet", body)


def _details_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="details">{body}</table>\n'


def station_page(view: StationView, *, as_of: str) -> str:
    """``stations/<id>/index.html``: status, suspects, failures and pictures."""
    s = view.status
    h = s["health"]
    files = ", ".join(f"{n} {state}" for state, n in s["files"].items() if n) or "none"
    stale_after = h["stale_after_hours"]
    rows = [
        ("State", _badge(view.state)),
        (
            "Last data",
            f"{esc(_short_time(h['last_data']))} UTC <small>{esc(_age(h['age_hours']))}</small>"
            if h["last_data"] else "none",
        ),
        ("Stale after", f"{stale_after:g} h" if stale_after else "never"),
        ("Data", f"{esc(_short_time(s['first_timestamp']))} to "
                 f"{esc(_short_time(s['last_timestamp']))} UTC, {s['readings']} readings"
                 if s["first_timestamp"] else "none parsed"),
        ("Files", esc(files)),
        ("Last fetch", esc(_short_time(s["last_fetch"]))),
        ("Last calibrate", esc(_short_time(s["last_calibrate"]))),
    ]  # fmt: skip
    if s["last_error"]:
        e = s["last_error"]
        rows.append(
            ("Last error", f"{esc(_short_time(e['at']))} [{esc(e['stage'])}] {esc(e['message'])}")
        )
    parts = [
        '<nav><a href="../../index.html">&larr; Station fleet</a></nav>\n',
        f"<h1>{esc(view.id)}{' &ndash; ' + esc(view.name) if view.name else ''}</h1>\n",
        f'<p class="summary">{esc(view.description)} Status as of {esc(as_of)} UTC.</p>\n',
        _details_table(rows),
        '<h2 id="suspect">Suspect sensors</h2>\n',
    ]
    suspect = s.get("suspect")
    if suspect and suspect.get("error"):
        parts.append(f'<p class="muted">Not known: {esc(suspect["error"])}.</p>\n')
    elif view.suspects and suspect:
        body = "".join(
            f"<tr><td>{esc(p['point'])}</td><td>{esc(p['measurement_type'] or '-')}</td>"
            f"<td>{_flags(p['flags'])}</td><td>{p['values']}</td></tr>"
            for p in view.suspects
        )
        parts.append(
            f"<p>Points whose values an automatic QC flag hit more than "
            f"{suspect['threshold']:.0%} of the time from {esc(_short_time(suspect['window_start']))} "
            f"to {esc(_short_time(suspect['window_end']))} UTC.</p>\n"
            '<table class="list"><tr><th>Point</th><th>Type</th><th>Flags (share of values)</th>'
            f"<th>Values</th></tr>{body}</table>\n"
        )
    else:
        parts.append('<p class="muted">None.</p>\n')
    parts.append('<h2 id="failed">Failed files</h2>\n')
    if view.failed:
        body = "".join(
            f"<tr><td>{esc(f['stage'])}</td><td><code>{esc(f['path'] or '-')}</code></td>"
            f'<td class="reason">{esc(f["reason"])}</td>'
            f"<td><code>{esc(f['quarantine'] or '-')}</code></td>"
            f"<td>{esc(_short_time(f['at']))}</td></tr>"
            for f in view.failed
        )
        parts.append(
            "<p>Paths are relative to the data directory.</p>\n"
            '<table class="list"><tr><th>Stage</th><th>File</th><th>Reason</th>'
            f"<th>Quarantined copy</th><th>At (UTC)</th></tr>{body}</table>\n"
        )
    else:
        parts.append('<p class="muted">None.</p>\n')
    if view.error:
        parts.append(f'<p class="muted">Pictures not drawn: {esc(view.error)}</p>\n')
    parts.append(f"<h2>Last 30 days ({esc(view.zone)})</h2>\n")
    parts.append(
        f"<p>{_img(view.images.get('timeseries'), _alt(view, 'timeseries'), '../../')}</p>\n"
    )
    parts.append(f"<h2>Data recovery per month ({esc(view.zone)})</h2>\n")
    recovery = view.images.get("recovery")
    parts.append(
        f'<div class="scroll">{_img(recovery, _alt(view, "recovery"), "../../", cls="")}</div>\n'
        if recovery
        else '<p class="muted">No data.</p>\n'
    )
    return _page(f"{view.id} - station report", "".join(parts))
