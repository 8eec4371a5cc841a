"""Time series pictures of clean data, as deterministic PNG bytes.

:func:`timeseries_png` draws one panel per measurement type (wind speed,
direction, temperature, ...), one line per point, and marks flagged values
with red crosses. :func:`sparklines_png` draws one thin line per point, for
a fleet page. Both take a frame of

    timestamp         datetime (naive, wall-clock time of the picture's zone)
    point             string
    measurement_type  string, nullable
    value             float64, nullable
    flagged           bool: a flag hit the value

Lines break where data is missing (a gap of more than 1.5 time steps). Long
periods are drawn from bucket means (and a bucket counts as flagged when any
of its values is), so a figure never holds more than about
:data:`MAX_POINTS_PER_LINE` points per line.

The same frame gives the same bytes: fixed size and resolution, matplotlib's
own fonts, no time stamp or software tag in the PNG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import polars as pl

from stationkit.textsafe import show_name

#: lines are drawn from at most about this many buckets
MAX_POINTS_PER_LINE = 4000
DPI = 100
FLAG_COLOUR = "#d62728"
#: point colours, in the order points appear (colour-blind-safe Tableau 10 minus red)
LINE_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79",
)  # fmt: skip
OTHER = "other"
#: panels in this order first, then the other measurement types by name
PANEL_ORDER = (
    "wind_speed", "wind_direction", "vertical_wind_speed", "air_temperature",
    "relative_humidity", "air_pressure",
)  # fmt: skip


def mpl_text(text: str) -> str:
    """Untrusted text (point names) as matplotlib shows it literally: no
    mathtext between dollar signs, no legend entry hidden by a leading '_', no
    line break or bidi control (:func:`stationkit.textsafe.show_name`)."""
    text = show_name(text).replace("\\", "\\\\").replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def type_title(measurement_type: str | None) -> str:
    """``wind_speed`` -> ``wind speed``."""
    return OTHER if measurement_type is None else measurement_type.replace("_", " ")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _step(frame: pl.DataFrame) -> timedelta:
    """The most common step between the timestamps (10 minutes when unknown)."""
    diffs = frame.get_column("timestamp").unique().sort().diff().drop_nulls()
    diffs = diffs.filter(diffs > timedelta(0))
    if diffs.len() == 0:
        return timedelta(minutes=10)
    counts = diffs.value_counts(sort=True)
    top = counts.filter(pl.col("count") == counts.get_column("count").max())
    value = top.get_column("timestamp").min()
    assert isinstance(value, timedelta)
    return value


def _bucketed(frame: pl.DataFrame, step: timedelta) -> tuple[pl.DataFrame, timedelta]:
    """Bucket means when a line would have too many points; the frame's own
    step otherwise."""
    t = frame.get_column("timestamp")
    span = t.max() - t.min() if frame.height else timedelta(0)  # type: ignore[operator]
    assert isinstance(span, timedelta)
    if span / step <= MAX_POINTS_PER_LINE:
        return frame, step
    minutes = max(1, int(span.total_seconds() / 60 / MAX_POINTS_PER_LINE) + 1)
    bucket = timedelta(minutes=minutes)
    out = (
        frame.sort("timestamp")
        .group_by_dynamic("timestamp", every=bucket, group_by=["point", "measurement_type"])
        .agg(pl.col("value").mean(), pl.col("flagged").any())
        .sort("point", "timestamp")
    )
    return out, bucket


def _with_breaks(
    ts: Sequence[Any], values: Sequence[Any], step: timedelta
) -> tuple[list[Any], list[Any]]:
    """Insert a missing value wherever consecutive times are more than 1.5 steps apart."""
    xs: list[Any] = []
    ys: list[Any] = []
    limit = step * 1.5
    for i, (t, v) in enumerate(zip(ts, values, strict=True)):
        if i and t - ts[i - 1] > limit:
            xs.append(ts[i - 1] + step)
            ys.append(float("nan"))
        xs.append(t)
        ys.append(float("nan") if v is None else v)
    return xs, ys


def _panels(frame: pl.DataFrame) -> list[tuple[str | None, list[str]]]:
    """(measurement type, its points): wind first (:data:`PANEL_ORDER`), the
    other types by name, points without one last; points in the order they
    first appear."""
    seen: dict[str | None, list[str]] = {}
    pairs = frame.select("measurement_type", "point").unique(maintain_order=True)
    for mtype, point in pairs.iter_rows():
        seen.setdefault(mtype, [])
        if point not in seen[mtype]:
            seen[mtype].append(point)

    def order(mtype: str | None) -> tuple[int, str]:
        if mtype is None:
            return (len(PANEL_ORDER) + 1, "")
        return (PANEL_ORDER.index(mtype) if mtype in PANEL_ORDER else len(PANEL_ORDER), mtype)

    return sorted(seen.items(), key=lambda kv: order(kv[0]))


def timeseries_png(frame: pl.DataFrame, *, title: str, zone: str = "UTC") -> bytes:
    """:func:`timeseries_figure` as PNG bytes."""
    return _png(timeseries_figure(frame, title=title, zone=zone))


def timeseries_figure(frame: pl.DataFrame, *, title: str, zone: str = "UTC") -> Any:
    """One panel per measurement type, one line per point, flagged values as
    red crosses (a matplotlib Figure)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    frame = frame.sort("point", "timestamp")
    step = _step(frame) if frame.height else timedelta(minutes=10)
    frame, step = _bucketed(frame, step)
    panels = _panels(frame) or [(None, [])]
    fig = Figure(figsize=(11.0, 1.2 + 2.3 * len(panels)), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (mtype, points) in zip(axes, panels, strict=True):
        flagged_any = False
        for k, point in enumerate(points):
            part = frame.filter(
                (pl.col("point") == point) & (pl.col("measurement_type").eq_missing(mtype))
            )
            ts = part.get_column("timestamp").to_list()
            xs, ys = _with_breaks(ts, part.get_column("value").to_list(), step)
            colour = LINE_COLOURS[k % len(LINE_COLOURS)]
            ax.plot(xs, ys, color=colour, linewidth=0.9, label=mpl_text(point))
            bad = part.filter(pl.col("flagged") & pl.col("value").is_not_null())
            if bad.height:
                flagged_any = True
                ax.plot(
                    bad.get_column("timestamp").to_list(), bad.get_column("value").to_list(),
                    linestyle="none", marker="x", markersize=4, color=FLAG_COLOUR,
                )  # fmt: skip
        if flagged_any:
            ax.plot([], [], linestyle="none", marker="x", color=FLAG_COLOUR, label="flagged")
        ax.set_ylabel(mpl_text(type_title(mtype)))
        ax.grid(True, color="#e0e0e0", linewidth=0.6)
        if points:
            ax.legend(
                loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False,
                ncols=1 + (len(points) + flagged_any) // 12,
            )  # fmt: skip
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes[-1].set_xlabel(f"time ({zone}); period starts")
    axes[0].set_title(mpl_text(title), loc="left")
    fig.tight_layout()
    return fig


def sparklines_png(frame: pl.DataFrame, *, width_in: float = 4.0) -> bytes:
    """One thin line per point (its own scale), name left, last value right;
    flagged values in red. For the rows of a fleet page."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frame = frame.sort("point", "timestamp")
    step = _step(frame) if frame.height else timedelta(minutes=10)
    frame, step = _bucketed(frame, step)
    points = list(dict.fromkeys(frame.get_column("point").to_list())) or ["(no data)"]
    row_in = 0.26
    fig = Figure(figsize=(width_in, 0.1 + row_in * len(points)), dpi=DPI)
    FigureCanvasAgg(fig)
    t = frame.get_column("timestamp")
    lo: Any = t.min() if frame.height else None
    hi: Any = t.max() if frame.height else None
    # name column as wide as the longest name at 8 pt, within reason
    name_w = min(0.45, (0.1 + 0.075 * max(len(p) for p in points)) / width_in)
    value_w = 0.16
    for i, point in enumerate(points):
        bottom = 1 - (i + 1) * row_in / (0.1 + row_in * len(points))
        height = row_in / (0.1 + row_in * len(points))
        ax = fig.add_axes((name_w, bottom + 0.1 * height, 1 - name_w - value_w, 0.8 * height))
        ax.set_axis_off()
        part = frame.filter(pl.col("point") == point)
        fig.text(
            name_w - 0.02, bottom + height / 2, mpl_text(point), ha="right", va="center", fontsize=8
        )
        if part.height == 0:
            continue
        xs, ys = _with_breaks(
            part.get_column("timestamp").to_list(), part.get_column("value").to_list(), step
        )
        ax.plot(xs, ys, color="#1f77b4", linewidth=0.8)
        bad = part.filter(pl.col("flagged") & pl.col("value").is_not_null())
        if bad.height:
            ax.plot(
                bad.get_column("timestamp").to_list(), bad.get_column("value").to_list(),
                linestyle="none", marker=".", markersize=2.5, color=FLAG_COLOUR,
            )  # fmt: skip
        if lo is not None and hi is not None and lo < hi:
            ax.set_xlim(lo, hi)
        last = part.drop_nulls("value").tail(1).get_column("value").to_list()
        if last:
            fig.text(
                1 - value_w + 0.02,
                bottom + height / 2,
                f"{last[0]:.4g}",
                ha="left",
                va="center",
                fontsize=8,
            )
    return _png(fig)
