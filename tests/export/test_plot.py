"""Time series pictures: panels per measurement type, flagged values marked,
the period, the statistic drawn, untrusted names, deterministic bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from stationkit.cli import cli
from stationkit.config import load_config
from stationkit.export.plot import sparklines_png, timeseries_figure, timeseries_png
from stationkit.export.select import ExportError
from stationkit.pipeline.plot import plot_data
from tests.export.clean import STEP, Reading, make_config, write_clean

END = datetime(2024, 3, 10, tzinfo=UTC)


def station(tmp_path: Path) -> Path:
    """40 days of two wind speeds, a direction, a temperature and a channel
    without a point; Spd80mN flagged at three steps of the last day."""
    config = make_config(tmp_path)
    rows = []
    t = END - timedelta(days=40)
    i = 0
    while t < END:
        flags = ("qc_icing",) if t >= END - timedelta(hours=1) and i % 2 == 0 else ()
        rows += [
            Reading(t, "Spd80mN", "avg", 7.0 + i % 5, "wind_speed", 80.0, flags),
            Reading(t, "Spd80mN", "sd", 0.5, "wind_speed", 80.0, flags),
            Reading(t, "Spd40mN", "max", 9.0, "wind_speed", 40.0),
            Reading(t, "Spd40mN", "min", 1.0, "wind_speed", 40.0),
            Reading(t, "Dir78mS", "avg", 270.0, "wind_direction", 78.0),
            Reading(t, "Tmp2m", "avg", float("nan") if i == 3 else 4.0, "air_temperature", 2.0),
            Reading(t, "BattV", "min", 12.6),
        ]
        t += STEP
        i += 1
    write_clean(config.data_dir, rows)
    return tmp_path / "stations.toml"


def test_default_period_statistic_and_points(tmp_path: Path) -> None:
    config = load_config(station(tmp_path))
    data = plot_data(config, config.stations["M001"])
    # the last 30 days up to the newest value, in logger time (UTC+1)
    assert data.zone == "UTC+01:00"
    assert data.end == datetime(2024, 3, 10, 1, 0)  # the newest period ends 00:00 UTC
    assert data.start == data.end - timedelta(days=30)
    frame = data.frame
    assert frame.get_column("timestamp").max() == datetime(2024, 3, 10, 0, 50)
    assert frame.get_column("timestamp").min() == datetime(2024, 2, 9, 1, 0)
    # one statistic per point: avg where there is one, else the preferred one (max before min);
    # points without a measurement type are left out unless asked for
    assert sorted(frame.get_column("point").unique().to_list()) == [
        "Dir78mS", "Spd40mN", "Spd80mN", "Tmp2m",
    ]  # fmt: skip
    assert frame.filter(pl.col("point") == "Spd40mN").get_column("value").unique().to_list() == [
        9.0
    ]
    assert frame.filter(pl.col("point") == "Spd80mN").get_column("flagged").sum() == 3
    assert frame.get_column("value").is_nan().sum() == 0  # NaN is missing, not a value


def test_period_points_and_utc(tmp_path: Path) -> None:
    config = load_config(station(tmp_path))
    st = config.stations["M001"]
    data = plot_data(
        config, st, start=datetime(2024, 3, 1), end=datetime(2024, 3, 2), points=["BattV"], utc=True
    )
    assert data.zone == "UTC" and data.frame.get_column("point").unique().to_list() == ["BattV"]
    assert data.frame.height == 144
    assert data.frame.get_column("timestamp").min() == datetime(2024, 3, 1)
    with pytest.raises(ExportError, match=r"M001: no point 'Nope'; points: BattV, Dir78mS, "):
        plot_data(config, st, points=["Nope"])
    with pytest.raises(ExportError, match=r"the end .* must come after the start"):
        plot_data(config, st, start=datetime(2024, 3, 2), end=datetime(2024, 3, 1))
    (tmp_path / "empty").mkdir()
    empty = make_config(tmp_path / "empty")
    with pytest.raises(ExportError, match=r"M001: no clean data in lake/clean/station=M001; run"):
        plot_data(empty, empty.stations["M001"])


def _frame() -> pl.DataFrame:
    t0 = datetime(2024, 1, 1)
    rows = []
    for i in range(200):
        t = t0 + i * STEP
        if 50 <= i < 60:
            continue  # a gap: the line breaks
        rows.append((t, "$WS$_80", "wind_speed", 5.0 + i % 7, i in (10, 11)))
        rows.append((t, "_hidden", "wind_speed", 4.0, False))
        rows.append((t, "T2", "air_temperature", 3.0, False))
        rows.append((t, "Batt", None, 12.0, False))
    return pl.DataFrame(
        rows,
        schema={
            "timestamp": pl.Datetime("us"), "point": pl.String, "measurement_type": pl.String,
            "value": pl.Float64, "flagged": pl.Boolean,
        },
        orient="row",
    )  # fmt: skip


def test_one_panel_per_measurement_type_and_flagged_values_marked() -> None:
    fig = timeseries_figure(_frame(), title="M001: test", zone="UTC")
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["wind speed", "air temperature", "other"]
    wind = axes[0]
    labels = [t.get_text() for t in wind.get_legend().get_texts()]
    # names shown literally: no mathtext, no legend entry hidden by a leading '_'
    assert labels == [r"\$WS\$_80", " _hidden", "flagged"]
    crosses = [ln for ln in wind.get_lines() if ln.get_marker() == "x" and len(ln.get_xdata())]
    (marks,) = crosses
    assert list(marks.get_ydata()) == [5.0 + 10 % 7, 5.0 + 11 % 7]
    line = wind.get_lines()[0]
    ys = list(line.get_ydata())
    assert sum(1 for y in ys if y != y) == 1  # one break for the gap (NaN)


def test_png_bytes_are_deterministic() -> None:
    a = timeseries_png(_frame(), title="t")
    assert a == timeseries_png(_frame(), title="t")
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in a and b"tIME" not in a
    assert timeseries_png(_frame().head(100), title="t") != a
    s = sparklines_png(_frame())
    assert s == sparklines_png(_frame()) and s[:8] == b"\x89PNG\r\n\x1a\n"


def test_long_periods_are_drawn_from_bucket_means() -> None:
    t0 = datetime(2021, 1, 1)
    n = 3 * 365 * 144
    frame = pl.DataFrame(
        {
            "timestamp": pl.datetime_range(t0, t0 + (n - 1) * STEP, STEP, eager=True),
            "point": ["WS"] * n,
            "measurement_type": ["wind_speed"] * n,
            "value": [float(i % 144) for i in range(n)],
            "flagged": [i == 5 for i in range(n)],
        }
    )
    fig = timeseries_figure(frame, title="three years")
    ax = fig.get_axes()[0]
    line = ax.get_lines()[0]
    assert 2000 < len(line.get_xdata()) <= 4100  # not 157 680 points
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(marks[0].get_xdata()) == 1  # the one flagged value's bucket


def test_cli_plot(tmp_path: Path) -> None:
    conf = str(station(tmp_path))
    out = tmp_path / "m001.png"
    result = CliRunner().invoke(
        cli,
        ["--config", conf, "plot", "M001", "--points", "Spd80mN,Tmp2m", "-o", str(out), "--json"],
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["points"] == ["Tmp2m", "Spd80mN"] and summary["file"] == str(out)
    first = out.read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        CliRunner()
        .invoke(
            cli, ["--config", conf, "plot", "M001", "--points", "Spd80mN,Tmp2m", "-o", str(out)]
        )
        .exit_code
        == 0
    )
    assert out.read_bytes() == first
    bad = CliRunner().invoke(
        cli, ["--config", conf, "plot", "M001", "--points", "X", "-o", str(out)]
    )
    assert bad.exit_code == 1 and bad.stderr.startswith("stationkit: error: M001: no point 'X'")
