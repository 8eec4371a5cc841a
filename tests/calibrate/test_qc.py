"""Automatic QC in DuckDB: range, flat line, spike, icing; settings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
import pytest

import stationkit.calibrate.engine as engine
from stationkit.calibrate.metadata import (
    ColumnMap,
    LoggerConfig,
    Point,
    StationMetadata,
)
from stationkit.calibrate.qc import (
    DEFAULT_RANGES,
    QC_FLATLINE,
    QC_ICING,
    QC_RANGE,
    QC_SPIKE,
    QcConfig,
    parse_qc_config,
)
from stationkit.config import parse_config
from stationkit.errors import ConfigError
from tests.calibrate.helpers import T0, TEN, build, readings_file, stamps


def parse(tmp_path: Path, text: str) -> QcConfig:
    st = parse_config(tomllib.loads(text), tmp_path / "stations.toml").stations["S1"]
    return parse_qc_config(st)


def test_defaults_and_overrides(tmp_path: Path) -> None:
    assert parse(tmp_path, "[stations.S1]\n") == QcConfig()
    qc = parse(
        tmp_path,
        """
[stations.S1.qc.range]
wind_speed = [0, 40]
air_pressure = false
[stations.S1.qc.flatline]
wind_speed = 12
air_temperature = 0
[stations.S1.qc.spike]
air_temperature = 3.5
[stations.S1.qc.icing]
temperature_point = "T2"
below = 1
steps = 4
""",
    )
    assert qc.ranges["wind_speed"] == (0.0, 40.0) and "air_pressure" not in qc.ranges
    assert qc.ranges["air_temperature"] == DEFAULT_RANGES["air_temperature"]
    assert qc.flatline["wind_speed"] == 12 and "air_temperature" not in qc.flatline
    assert qc.spike["air_temperature"] == 3.5
    assert (qc.icing_temperature_point, qc.icing_below_c, qc.icing_steps) == ("T2", 1.0, 4)
    assert parse(tmp_path, "[stations.S1.qc]\nenabled = false\n").enabled is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[stations.S1.qc.range]\nwind_speed = [5, 1]\n",
         "stations.S1.qc.range.wind_speed: expected [min, max] with min < max, or false, got a list"),
        ("[stations.S1.qc.range]\nwindspeed = [0, 1]\n",
         "stations.S1.qc.range.windspeed: unknown measurement type"),
        ("[stations.S1.qc.flatline]\nwind_speed = 2.5\n",
         "stations.S1.qc.flatline.wind_speed: expected an integer, got 2.5"),
        ("[stations.S1.qc.icing]\nbelow = 'cold'\n",
         'stations.S1.qc.icing.below: expected a number, got "cold"'),
        ("[stations.S1.qc]\nenable = true\n", "stations.S1.qc.enable: unknown key"),
    ],
)  # fmt: skip
def test_invalid_qc_settings(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, text)
    assert message in str(info.value)


def meta() -> StationMetadata:
    def point(name: str, mtype: str, height: float, cols: tuple[ColumnMap, ...]) -> Point:
        return Point(name, mtype, height, logger_configs=(LoggerConfig(cols),))

    return StationMetadata(
        points=(
            point("WS", "wind_speed", 80, (ColumnMap("WS_Avg", "avg"), ColumnMap("WS_Std", "sd"))),
            point(
                "WD", "wind_direction", 78, (ColumnMap("WD_Avg", "avg"), ColumnMap("WD_Std", "sd"))
            ),
            point("T", "air_temperature", 2, (ColumnMap("T_Avg", "avg"),)),
        )
    )


def flags_of(df: pl.DataFrame, point: str, statistic: str) -> list[list[str]]:
    rows = df.filter((pl.col("point") == point) & (pl.col("statistic") == statistic))
    return rows.sort("timestamp")["flags"].to_list()


def run(tmp_path: Path, columns: dict[str, list[float | None]], qc: QcConfig | None = None,
        **kwargs: object) -> pl.DataFrame:  # fmt: skip
    n = len(next(iter(columns.values())))
    f = readings_file(tmp_path, 1, stamps(n), columns)
    m = meta()
    df, _ = build(tmp_path, [f], m, qc=qc or QcConfig(),
                  temperature_point=(qc or QcConfig()).temperature_point(m), **kwargs)  # fmt: skip
    return df


def varied(n: int, base: float = 8.0) -> list[float | None]:
    return [base + (i % 5) * 0.37 for i in range(n)]


def test_range_flags_only_the_value_out_of_range(tmp_path: Path) -> None:
    ws = varied(5)
    ws[2] = 80.0  # above 75 m/s
    df = run(
        tmp_path,
        {"WS_Avg": ws, "WS_Std": [1.0, -0.1, 1, 1, 1], "WD_Avg": [10.0, 20, 361, 30, 40],
         "WD_Std": [5.0] * 5, "T_Avg": [5.0, 6, 7, 8, 9]},
    )  # fmt: skip
    assert flags_of(df, "WS", "avg") == [[], [], [QC_RANGE, QC_SPIKE], [], []]  # sorted names
    assert flags_of(df, "WS", "sd") == [[], [QC_RANGE], [QC_SPIKE], [], []]  # spikes hit the point
    assert flags_of(df, "WD", "avg") == [[], [], [QC_RANGE], [], []]
    # flags never change values
    assert df["value"].to_list() == df["raw_value"].to_list()


def test_flat_line_of_n_identical_values(tmp_path: Path) -> None:
    ws = varied(20)
    ws[3:9] = [5.5] * 6  # 6 identical values: the default for wind speed
    ws[12:17] = [7.7] * 5  # 5: not a flat line
    df = run(tmp_path, {"WS_Avg": ws, "WS_Std": [1.0] * 20, "T_Avg": varied(20, 10.0)})
    expected = [[QC_FLATLINE] if 3 <= i < 9 else [] for i in range(20)]
    assert flags_of(df, "WS", "avg") == expected
    assert flags_of(df, "WS", "sd") == expected  # the whole point is flagged


def test_spike(tmp_path: Path) -> None:
    t = varied(8, 10.0)
    t[4] = 25.0  # 15 degC away from both neighbours and back
    step = varied(8, 10.0)
    df = run(tmp_path, {"T_Avg": t, "WS_Avg": step[:4] + [v + 20 for v in step[4:]]})
    assert flags_of(df, "T", "avg") == [[QC_SPIKE] if i == 4 else [] for i in range(8)]
    assert all(f == [] for f in flags_of(df, "WS", "avg"))  # a step is no spike


def test_icing_needs_cold_and_a_stuck_sensor(tmp_path: Path) -> None:
    n = 8
    temperature: list[float | None] = [5.0, 5.1, 5.2, 1.0, 0.5, 0.4, 0.3, 0.2]
    ws = varied(n)
    ws[4:7] = [3.3] * 3  # stuck for 3 records while cold
    ws[0:3] = [4.4] * 3  # stuck for 3 records while warm: no icing
    wd_sd: list[float | None] = [5.0] * n
    wd_sd[3] = 0.0  # a vane that did not move, cold
    wd_sd[1] = 0.0  # did not move, warm
    df = run(
        tmp_path,
        {"T_Avg": temperature, "WS_Avg": ws, "WS_Std": [1.0] * n,
         "WD_Avg": varied(n, 100.0), "WD_Std": wd_sd},
    )  # fmt: skip
    assert flags_of(df, "WS", "avg") == [[QC_ICING] if 4 <= i < 7 else [] for i in range(n)]
    assert flags_of(df, "WD", "sd") == [[QC_ICING] if i == 3 else [] for i in range(n)]
    assert all(f == [] for f in flags_of(df, "T", "avg"))


def test_qc_disabled_flags_nothing(tmp_path: Path) -> None:
    ws = varied(10)
    ws[0:8] = [5.0] * 8
    ws[9] = 99.0
    df = run(tmp_path, {"WS_Avg": ws, "T_Avg": [-5.0] * 10}, QcConfig(enabled=False))
    assert df["flags"].list.len().max() == 0


def test_point_groups_give_the_same_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = varied(30)
    ws[5:12] = [5.0] * 7
    wd = varied(30, 100.0)
    wd[20:27] = [90.0] * 7
    cols: dict[str, list[float | None]] = {"WS_Avg": ws, "WD_Avg": wd, "T_Avg": varied(30, 10.0)}
    whole = run(tmp_path, cols, name="whole.parquet")
    monkeypatch.setattr(engine, "QC_GROUP_ROWS", 1)  # one point per query
    grouped = run(tmp_path, cols, name="grouped.parquet")
    assert whole.equals(grouped)
    assert whole.filter(pl.col("flags").list.contains(QC_FLATLINE)).height == 14
    assert T0 + 5 * TEN in whole.filter(pl.col("point") == "WS")["timestamp"].to_list()
