"""Availability report: a month with a gap, a late sensor, flags, time zones, heatmap."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stationkit.config import Config
from stationkit.export import select
from stationkit.export.report import (
    MonthAvailability,
    heatmap_figure,
    heatmap_png,
    recovery_colour,
    to_csv,
    to_text,
)
from stationkit.pipeline.report import report_station, write_heatmap
from tests.export.clean import STEP, Reading, make_config, write_clean

LOCAL = timedelta(hours=1)
GAP_START = datetime(2024, 2, 5, 6, 0)  # local
SHORT_GAP = datetime(2024, 2, 20, 12, 0)  # local: two steps with null values
ICING = datetime(2024, 2, 25, 0, 0)  # local: 12 flagged steps


def utc(local: datetime) -> datetime:
    return (local - LOCAL).replace(tzinfo=UTC)


def station(tmp_path: Path) -> Config:
    """Spd80mN from 15 Jan to 29 Feb (local) with a 6 h gap; Dir78mS from 10 Feb."""
    config = make_config(tmp_path)
    rows = []
    t = datetime(2024, 1, 15)
    end = datetime(2024, 3, 1)
    while t < end:
        if not GAP_START <= t < GAP_START + timedelta(hours=6):
            value = None if SHORT_GAP <= t < SHORT_GAP + 2 * STEP else 7.5
            flags = ("icing",) if ICING <= t < ICING + 12 * STEP else ()
            rows.append(Reading(utc(t), "Spd80mN", "avg", value, "wind_speed", 80.0, flags))
            rows.append(Reading(utc(t), "Spd80mN", "sd", value and 0.5, "wind_speed", 80.0))
        if t >= datetime(2024, 2, 10):
            rows.append(Reading(utc(t), "Dir78mS", "avg", 270.0, "wind_direction", 78.0))
        t += STEP
    write_clean(config.data_dir, rows)
    return config


def by_key(config: Config, **kw: object) -> dict[tuple[str, str], dict[str, object]]:
    rep = report_station(config, config.stations["M001"], **kw)  # type: ignore[arg-type]
    return {(r.point, r.month): r.as_dict() for r in rep.rows}


def test_month_with_a_gap(tmp_path: Path) -> None:
    rows = by_key(station(tmp_path))
    assert list(rows) == [
        ("Spd80mN", "2024-01"),
        ("Spd80mN", "2024-02"),
        ("Dir78mS", "2024-01"),
        ("Dir78mS", "2024-02"),
    ]
    jan = rows[("Spd80mN", "2024-01")]
    assert jan["expected"] == 17 * 144 and jan["present"] == 17 * 144
    assert jan["recovery_pct"] == 100.0 and jan["longest_gap_steps"] == 0
    assert (jan["first"], jan["last"]) == ("2024-01-15 00:00:00", "2024-01-31 23:50:00")
    feb = rows[("Spd80mN", "2024-02")]
    assert feb["expected"] == 29 * 144
    assert feb["present"] == 29 * 144 - 36 - 2  # the 6 h gap and two null values
    assert feb["recovery_pct"] == round(100 * (29 * 144 - 38) / (29 * 144), 2) == 99.09
    assert feb["flagged"] == 12 and feb["flagged_pct"] == 0.29
    assert feb["longest_gap_steps"] == 36 and feb["longest_gap_hours"] == 6.0
    assert feb["longest_gap_start"] == "2024-02-05 06:00:00"
    assert (feb["first"], feb["last"]) == ("2024-02-01 00:00:00", "2024-02-29 23:50:00")


def test_sensor_installed_later_is_short_from_the_station_start(tmp_path: Path) -> None:
    rows = by_key(station(tmp_path))
    jan = rows[("Dir78mS", "2024-01")]
    assert (jan["expected"], jan["present"], jan["recovery_pct"]) == (17 * 144, 0, 0.0)
    assert jan["longest_gap_steps"] == 17 * 144
    assert jan["longest_gap_start"] == "2024-01-15 00:00:00" and jan["first"] is None
    feb = rows[("Dir78mS", "2024-02")]
    assert feb["present"] == 20 * 144 and feb["recovery_pct"] == 68.97
    assert feb["longest_gap_steps"] == 9 * 144
    assert feb["longest_gap_start"] == "2024-02-01 00:00:00"


def test_same_figures_when_months_are_read_in_many_small_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = station(tmp_path)
    whole = by_key(config)
    monkeypatch.setattr(select, "CHUNK_ROWS", 500)  # windows of one day
    assert by_key(config) == whole


def test_months_in_utc(tmp_path: Path) -> None:
    rows = by_key(station(tmp_path), utc=True)
    jan = rows[("Spd80mN", "2024-01")]
    assert jan["first"] == "2024-01-14 23:00:00"
    assert jan["expected"] == 17 * 144 + 6  # starts an hour earlier in UTC
    feb = rows[("Spd80mN", "2024-02")]
    assert feb["expected"] == 29 * 144 - 6  # ends an hour earlier
    assert feb["longest_gap_start"] == "2024-02-05 05:00:00"


def test_period_and_points(tmp_path: Path) -> None:
    rows = by_key(
        station(tmp_path),
        start=datetime(2024, 2, 1),
        end=datetime(2024, 2, 11),
        points=["Dir78mS"],
    )
    assert list(rows) == [("Dir78mS", "2024-02")]
    assert rows[("Dir78mS", "2024-02")]["expected"] == 10 * 144
    assert rows[("Dir78mS", "2024-02")]["present"] == 144
    # without a period, the station's (not the point's) first reading starts it
    rows = by_key(station(tmp_path), points=["Dir78mS"])
    assert rows[("Dir78mS", "2024-01")]["expected"] == 17 * 144


def test_text_and_csv(tmp_path: Path) -> None:
    rep = report_station(station(tmp_path), make_config(tmp_path).stations["M001"])
    text = to_text(rep.rows).splitlines()
    assert text[0].split() == [
        "station", "point", "month", "expected", "present", "recovery", "%", "flagged", "%",
        "first", "last", "longest", "gap", "[h]", "gap", "from",
    ]  # fmt: skip
    assert text[3].split() == [
        "M001", "Spd80mN", "2024-02", "4176", "4138", "99.1", "0.3", "2024-02-01", "00:00:00",
        "2024-02-29", "23:50:00", "6", "2024-02-05", "06:00:00",
    ]  # fmt: skip
    assert text[4].split()[:7] == ["M001", "Dir78mS", "2024-01", "2448", "0", "0.0", "0.0"]
    lines = to_csv(rep.rows).splitlines()
    assert lines[0] == (
        "station,point,month,expected,present,flagged,recovery_pct,flagged_pct,first,last,"
        "longest_gap_steps,longest_gap_start,longest_gap_hours"
    )
    assert lines[2] == (
        "M001,Spd80mN,2024-02,4176,4138,12,99.09,0.29,2024-02-01 00:00:00,2024-02-29 23:50:00,"
        "36,2024-02-05 06:00:00,6"
    )


def test_no_clean_data_is_an_empty_report(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    rep = report_station(config, config.stations["M001"])
    assert rep.rows == [] and to_text(rep.rows) == "no data"


def test_heatmap_png_is_deterministic(tmp_path: Path) -> None:
    config = station(tmp_path)
    rep = report_station(config, config.stations["M001"])
    target = tmp_path / "availability.png"
    write_heatmap([rep], target)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Software" not in data and b"tIME" not in data
    write_heatmap([rep], target)
    assert target.read_bytes() == data
    assert heatmap_png(rep.rows[:2]) != heatmap_png(rep.rows)
    # the picture itself: 2 points x 2 months
    import matplotlib.image

    pixels = matplotlib.image.imread(target)
    assert pixels.shape[0] > 150 and pixels.shape[1] > 300


# ---------------------------------------------------------------- heatmap legibility


def _rows(points: int, months: int, station: str = "M001") -> list[MonthAvailability]:
    out = []
    for p in range(points):
        for m in range(months):
            pct = (100.0, 99.1, 93.4, 80.0, 61.7, 0.0)[(p + m) % 6]
            flagged = (0.0, 0.3, 12.0)[(p * 7 + m) % 3]
            out.append(
                MonthAvailability(
                    station,
                    f"WS_{p:03d}m_N_Avg",
                    f"{2021 + m // 12}-{m % 12 + 1:02d}",
                    4320,
                    round(43.2 * pct),
                    round(43.2 * flagged),
                    pct,
                    flagged,
                    None,
                    None,
                    0,
                    None,
                    0.0,
                )
            )
    return out


def _boxes(fig: object) -> tuple[object, list[object]]:
    from matplotlib.text import Text

    fig.canvas.draw()  # type: ignore[attr-defined]
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    texts = [
        t for t in fig.findobj(Text)  # type: ignore[attr-defined]
        if t.get_visible() and t.get_text().strip()
    ]  # fmt: skip
    return renderer, texts


def test_heatmap_cells_are_legible_at_80_points_by_36_months() -> None:
    fig = heatmap_figure(_rows(80, 36), title="Data recovery per month - M001 (UTC+01:00)")
    renderer, texts = _boxes(fig)
    width, height = fig.bbox.width, fig.bbox.height
    assert width <= 4000 and height <= 6000  # a picture a browser shows at full size
    for t in texts:  # every caption, label and cell text inside the picture, 8 pt or more
        box = t.get_window_extent(renderer)
        assert box.x0 >= -0.5 and box.y0 >= -0.5, t.get_text()
        assert box.x1 <= width + 0.5 and box.y1 <= height + 0.5, t.get_text()
        assert t.get_fontsize() >= 8, t.get_text()
    ax = fig.get_axes()[0]
    assert len(ax.texts) == 80 * 36  # every cell labelled
    for t in ax.texts:  # each label inside its own cell
        j, i = t.get_position()
        (x0, y0), (x1, y1) = ax.transData.transform([(j - 0.5, i + 0.5), (j + 0.5, i - 0.5)])
        box = t.get_window_extent(renderer)
        assert x0 <= box.x0 and box.x1 <= x1 and y0 <= box.y0 and box.y1 <= y1, t.get_text()
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        boxes = sorted(
            (b.get_window_extent(renderer) for b in labels if b.get_text()),
            key=lambda b: (b.x0, b.y0),
        )
        assert all(not a.overlaps(b) for a, b in itertools.pairwise(boxes))


def test_heatmap_captions_fit_a_narrow_map_and_a_long_title() -> None:
    names = ", ".join(f"M{i:03d}" for i in range(60))
    fig = heatmap_figure(_rows(2, 1), title=f"Data recovery per month - {names} (UTC)")
    renderer, texts = _boxes(fig)
    for t in texts:
        box = t.get_window_extent(renderer)
        assert box.x0 >= -0.5 and box.x1 <= fig.bbox.width + 0.5, t.get_text()[:40]


def test_recovery_colour_scale_makes_80_percent_look_bad() -> None:
    def rgb(pct: float) -> tuple[float, float, float]:
        c = recovery_colour(pct)
        return (int(c[1:3], 16) / 255, int(c[3:5], 16) / 255, int(c[5:7], 16) / 255)

    r, g, b = rgb(80)
    assert r > 0.75 and g < 0.3 and b < 0.3  # plainly red
    r, g, _ = rgb(90)
    assert r > 0.9 and g < 0.65  # orange, not green
    r, g, _ = rgb(100)
    assert g > 0.5 and r < 0.2  # green only near 100 %
    assert rgb(95)[0] > 0.9  # yellow still has its red
    assert recovery_colour(None) == "#d9d9d9"
