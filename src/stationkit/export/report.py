"""Data availability: per station, point and month, how much data there is.

For each point (a measurement point of lake/clean; all its statistics
together) and calendar month (in the report's time zone):

* ``expected`` -- time steps in the month at the averaging period, counted
  over the station's period: from its first reading (or ``start``) to the end
  of its last time step (or ``end``), so that a mast commissioned mid-month
  is not blamed for the days before;
* ``present`` -- time steps with at least one value (not missing, not NaN);
* ``flagged`` -- present time steps where a flag hit any of its values;
* ``recovery_pct`` = 100 * present / expected, ``flagged_pct`` =
  100 * flagged / expected (so recovery - flagged is the unflagged share);
* ``first`` / ``last`` -- first and last time step with a value;
* ``longest_gap_steps`` / ``longest_gap_start`` -- the longest run of
  expected time steps without a value, including runs at the month's edges.

:func:`heatmap_png` draws points x months coloured by recovery on a scale
where 80 % reads as bad (:data:`RECOVERY_SCALE`: red up to 80 %, orange
90 %, yellow 95 %, green from 98 %; grey where nothing was expected), each
cell labelled with its value, into a deterministic PNG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from stationkit.export.select import COL, TIMESTAMP, Catalog

#: heatmap cells are labelled with their value up to this many months
ANNOTATE_MAX_MONTHS = 40


@dataclass(frozen=True)
class MonthAvailability:
    """One point in one month (times in the report's time zone)."""

    station: str
    point: str
    month: str
    expected: int
    present: int
    flagged: int
    recovery_pct: float
    flagged_pct: float
    first: datetime | None
    last: datetime | None
    longest_gap_steps: int
    longest_gap_start: datetime | None
    longest_gap_hours: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("first", "last", "longest_gap_start"):
            d[k] = None if d[k] is None else f"{d[k]:%Y-%m-%d %H:%M:%S}"
        return d


@dataclass
class _Acc:
    present: int = 0
    flagged: int = 0
    first: datetime | None = None
    last: datetime | None = None
    gap: timedelta = timedelta(0)
    gap_start: datetime | None = None


@dataclass
class Availability:
    """Accumulates chunks (in time order) into per-point, per-month figures.

    ``months`` are (``YYYY-MM``, start, end) in the report's wall-clock time,
    as :func:`stationkit.export.select.months` gives them.
    """

    station: str
    catalog: Catalog
    months: list[tuple[str, datetime, datetime]]
    _points: list[str] = field(default_factory=list)
    _acc: dict[tuple[str, str], _Acc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._points = list(dict.fromkeys(c.point for c in self.catalog.columns))
        self._point_of = pl.Series(
            [self._points.index(c.point) for c in self.catalog.columns], dtype=pl.UInt32
        )

    def add(self, chunk: pl.DataFrame) -> None:
        """One window's readings (with flags, nothing excluded)."""
        if chunk.height == 0:
            return
        step = self.catalog.step
        per = (
            chunk.lazy()
            .filter(pl.col("value").is_not_null())
            .select(
                pl.col(COL)
                .replace_strict(
                    pl.Series(range(len(self._point_of)), dtype=pl.UInt32),
                    self._point_of,
                    return_dtype=pl.UInt32,
                )
                .alias("p"),
                pl.col(TIMESTAMP).dt.strftime("%Y-%m").alias("month"),
                pl.col(TIMESTAMP),
                pl.col("flags"),
            )
            .group_by("p", "month", TIMESTAMP)
            .agg((pl.col("flags").list.len().max() > 0).alias("flagged"))
            .sort("p", TIMESTAMP)
            .with_columns((pl.col(TIMESTAMP).diff().over("p", "month") - step).alias("gap"))
            .group_by("p", "month")
            .agg(
                pl.len().alias("present"),
                pl.col("flagged").sum(),
                pl.col(TIMESTAMP).min().alias("first"),
                pl.col(TIMESTAMP).max().alias("last"),
                pl.col("gap").max().alias("gap"),
                (pl.col(TIMESTAMP).shift(1) + step)
                .get(pl.col("gap").fill_null(timedelta(days=-1)).arg_max())
                .alias("gap_start"),
            )
            .sort("p", "first")
            .collect()
        )
        for p, month, present, flagged, first, last, gap, gap_start in per.iter_rows():
            acc = self._acc.setdefault((self._points[p], month), _Acc())
            if acc.last is not None:
                self._gap(acc, first - (acc.last + step), acc.last + step)
            if gap is not None and gap_start is not None:
                self._gap(acc, gap, gap_start)
            acc.present += present
            acc.flagged += flagged
            acc.first = first if acc.first is None else acc.first
            acc.last = last

    @staticmethod
    def _gap(acc: _Acc, length: timedelta, start: datetime) -> None:
        if length > acc.gap:
            acc.gap, acc.gap_start = length, start

    def result(self) -> list[MonthAvailability]:
        """Every point x month, points in export column order, months in time order."""
        step = self.catalog.step
        out = []
        for point in self._points:
            for month, lo, hi in self.months:
                expected = max(0, math.ceil((hi - lo) / step))
                acc = self._acc.get((point, month), _Acc())
                best = _Acc(gap=acc.gap, gap_start=acc.gap_start)
                if acc.first is None or acc.last is None:
                    self._gap(best, hi - lo, lo)
                else:
                    self._gap(best, acc.first - lo, lo)
                    self._gap(best, hi - (acc.last + step), acc.last + step)
                gap_steps = math.ceil(best.gap / step) if best.gap > timedelta(0) else 0
                out.append(
                    MonthAvailability(
                        station=self.station,
                        point=point,
                        month=month,
                        expected=expected,
                        present=acc.present,
                        flagged=acc.flagged,
                        recovery_pct=_pct(acc.present, expected),
                        flagged_pct=_pct(acc.flagged, expected),
                        first=acc.first,
                        last=acc.last,
                        longest_gap_steps=gap_steps,
                        longest_gap_start=best.gap_start if gap_steps else None,
                        longest_gap_hours=(
                            round(best.gap.total_seconds() / 3600, 4) if gap_steps else 0.0
                        ),
                    )
                )
        return out


def _pct(n: int, d: int) -> float:
    return round(100.0 * n / d, 2) if d else 0.0


# ---------------------------------------------------------------- output

TABLE_COLUMNS = (
    ("station", "station", "<"),
    ("point", "point", "<"),
    ("month", "month", "<"),
    ("expected", "expected", ">"),
    ("present", "present", ">"),
    ("recovery_pct", "recovery %", ">"),
    ("flagged_pct", "flagged %", ">"),
    ("first", "first", "<"),
    ("last", "last", "<"),
    ("longest_gap_hours", "longest gap [h]", ">"),
    ("longest_gap_start", "gap from", "<"),
)


def to_frame(rows: Sequence[MonthAvailability]) -> pl.DataFrame:
    """The rows as a table (times as ``YYYY-MM-DD HH:MM:SS`` text)."""
    schema = {
        "station": pl.String,
        "point": pl.String,
        "month": pl.String,
        "expected": pl.Int64,
        "present": pl.Int64,
        "flagged": pl.Int64,
        "recovery_pct": pl.Float64,
        "flagged_pct": pl.Float64,
        "first": pl.String,
        "last": pl.String,
        "longest_gap_steps": pl.Int64,
        "longest_gap_start": pl.String,
        "longest_gap_hours": pl.Float64,
    }
    return pl.DataFrame([r.as_dict() for r in rows], schema=schema, orient="row")


def to_csv(rows: Sequence[MonthAvailability]) -> str:
    buf = io.BytesIO()
    to_frame(rows).write_csv(buf, float_scientific=False)
    return buf.getvalue().decode()


def to_text(rows: Sequence[MonthAvailability]) -> str:
    """A fixed-width table for the terminal."""
    if not rows:
        return "no data"
    cells = []
    for r in rows:
        d = r.as_dict()
        line = []
        for key, _title, _align in TABLE_COLUMNS:
            v = d[key]
            if key in ("recovery_pct", "flagged_pct"):
                text = f"{v:.1f}"
            elif key == "longest_gap_hours":
                text = f"{v:g}" if v else "-"
            else:
                text = "-" if v is None else str(v)
            line.append(text)
        cells.append(line)
    titles = [t for _, t, _ in TABLE_COLUMNS]
    widths = [max(len(titles[i]), *(len(c[i]) for c in cells)) for i in range(len(titles))]
    aligns = [a for _, _, a in TABLE_COLUMNS]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(values, aligns, widths, strict=True))

    return "\n".join([fmt(titles), fmt(["-" * w for w in widths]), *(fmt(c) for c in cells)])


#: the recovery colour scale: (recovery %, colour). 80 % is plainly red,
#: 90 % orange, 95 % yellow; only 98 % and above turn green.
RECOVERY_SCALE = (
    (0.0, "#67000d"),
    (50.0, "#a50f15"),
    (80.0, "#de2d26"),
    (90.0, "#fc8d59"),
    (95.0, "#fee08b"),
    (98.0, "#d9ef8b"),
    (100.0, "#1a9850"),
)
NO_DATA_COLOUR = "#d9d9d9"
#: colour-bar ticks [%]
RECOVERY_TICKS = (0, 20, 40, 60, 80, 90, 100)
#: heatmap cell size [in] and cell text size [pt] when cells are labelled
CELL_WIDTH_IN = 0.8
CELL_HEIGHT_IN = 0.34
CELL_FONT_PT = 8.0
#: a labelled heatmap may not be taller than this [in]; beyond, cells shrink unlabelled
MAX_HEIGHT_IN = 60.0
MAX_WIDTH_IN = 40.0


def recovery_cmap() -> Any:
    """The matplotlib colour map of :data:`RECOVERY_SCALE` over 0..1 (= 0..100 %)."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(
        "stationkit_recovery", [(pct / 100.0, colour) for pct, colour in RECOVERY_SCALE], N=1000
    ).with_extremes(bad=NO_DATA_COLOUR)


def recovery_colour(pct: float | None) -> str:
    """``#rrggbb`` of a recovery [%] on :data:`RECOVERY_SCALE` (grey for None)."""
    from matplotlib.colors import to_hex

    if pct is None or math.isnan(pct):
        return NO_DATA_COLOUR
    return str(to_hex(recovery_cmap()(min(max(pct, 0.0), 100.0) / 100.0)))


def text_colour(background: str) -> str:
    """Black or white, whichever reads on ``background`` (``#rrggbb``)."""
    r, g, b = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 0.55 else "#000000"


def _cell_text(recovery: float, flagged: float) -> str:
    text = f"{recovery:.0f}" if recovery >= 99.95 or recovery < 0.05 else f"{recovery:.1f}"
    if flagged > 0:
        text += "\n" + (f"{flagged:.0f}% flg" if flagged >= 0.5 else "<1% flg")
    return text


def heatmap_figure(rows: Sequence[MonthAvailability], *, title: str = "Data availability") -> Any:
    """Points x months coloured by data recovery [%], as a matplotlib Figure.

    Each cell is labelled with its recovery (and the share of its time steps
    flagged, "3% flg") while the map has at most
    :data:`ANNOTATE_MAX_MONTHS` months and fits :data:`MAX_HEIGHT_IN` at
    :data:`CELL_HEIGHT_IN` per row: 80 points x 36 months are labelled in
    8 pt. Month labels are at the bottom, and on top too for more than 20
    rows; the title and caption wrap to the width.
    Rows are ``station point`` when more than one station is shown.
    """
    import textwrap

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from stationkit.export.plot import mpl_text

    stations = list(dict.fromkeys(r.station for r in rows))
    keys = list(dict.fromkeys((r.station, r.point) for r in rows))
    months = sorted({r.month for r in rows})
    grid = np.full((max(len(keys), 1), max(len(months), 1)), np.nan)
    flagged = np.zeros_like(grid)
    index = {k: i for i, k in enumerate(keys)}
    column = {m: j for j, m in enumerate(months)}
    for r in rows:
        if r.expected > 0:
            i, j = index[(r.station, r.point)], column[r.month]
            grid[i, j] = min(r.recovery_pct, 100.0)
            flagged[i, j] = r.flagged_pct
    names = [mpl_text(f"{s} {p}" if len(stations) > 1 else p) for s, p in keys] or ["(no data)"]
    longest = max(len(n) for n in names)
    label_in = 0.3 + 0.075 * longest  # row labels at 8 pt
    n_rows, n_cols = grid.shape
    annotate = len(months) <= ANNOTATE_MAX_MONTHS and 2.4 + CELL_HEIGHT_IN * n_rows <= MAX_HEIGHT_IN
    cell_w = CELL_WIDTH_IN if annotate else 0.3
    cell_h = CELL_HEIGHT_IN if annotate else min(CELL_HEIGHT_IN, (MAX_HEIGHT_IN - 2.4) / n_rows)
    bar_in = 1.2
    plot_w = cell_w * n_cols
    width = min(MAX_WIDTH_IN, max(6.5, label_in + plot_w + bar_in + 0.3))
    plot_w = min(plot_w, width - label_in - bar_in - 0.3)
    plot_h = cell_h * n_rows
    # room for the month labels (top and bottom, vertical when many), title and caption
    month_in = 0.75 if len(months) > 12 else 0.3
    title_lines = textwrap.wrap(title, width=max(20, int(width * 72 / (0.6 * 12))))
    caption = (
        "Cells: data recovery [%] and, when some values were flagged, the share of time "
        "steps flagged (flg). Grey: outside the station's period."
    )
    caption_lines = textwrap.wrap(caption, width=max(20, int(width * 72 / (0.6 * 8))))
    labels_on_top = n_rows > 20  # far from the bottom labels
    bar_h = min(max(plot_h, 2.5), 6.0)
    top_in = 0.25 + 0.25 * len(title_lines) + (month_in if labels_on_top else 0.1)
    bottom_in = 0.2 + month_in + 0.16 * len(caption_lines) + max(0.0, bar_h - plot_h)
    height = top_in + plot_h + bottom_in
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((label_in / width, bottom_in / height, plot_w / width, plot_h / height))
    cmap = recovery_cmap()
    image = ax.imshow(
        np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto",
        interpolation="nearest",
    )  # fmt: skip
    rotation = 90 if len(months) > 12 else 0
    ax.set_xticks(range(len(months)), months or [""], rotation=rotation, fontsize=8)
    ax.tick_params(axis="x", top=labels_on_top, labeltop=labels_on_top)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    fig.text(0.1 / width, 1 - 0.15 / height, "\n".join(title_lines), fontsize=12, va="top")
    fig.text(0.1 / width, 0.1 / height, "\n".join(caption_lines), fontsize=8, va="bottom")
    if annotate:
        for i in range(len(keys)):
            for j in range(len(months)):
                v = grid[i, j]
                if math.isnan(v):
                    continue
                ax.text(
                    j, i, _cell_text(v, flagged[i, j]), ha="center", va="center",
                    fontsize=CELL_FONT_PT, linespacing=1.0,
                    color=text_colour(recovery_colour(v)),
                )  # fmt: skip
    cax = fig.add_axes(
        (
            (label_in + plot_w + 0.25) / width,
            (bottom_in + plot_h - bar_h) / height,
            0.18 / width,
            bar_h / height,
        )
    )
    bar = fig.colorbar(image, cax=cax, ticks=RECOVERY_TICKS)
    bar.ax.tick_params(labelsize=8)
    bar.set_label("Data recovery [%]", fontsize=8)
    return fig


def heatmap_png(rows: Sequence[MonthAvailability], *, title: str = "Data availability") -> bytes:
    """:func:`heatmap_figure` as PNG bytes. The same rows give the same bytes
    (no time stamp or software tag in the PNG)."""
    fig = heatmap_figure(rows, title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
