"""The DuckDB calibration query: maths, periods, exact names, dedupe, order, bytes."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stationkit.calibrate.engine import CLEAN_SCHEMA, CalibrateError, ReadingsFile, plan_dedupe
from stationkit.calibrate.flags import ALL, FlagInterval
from stationkit.calibrate.metadata import (
    Calibration,
    ColumnMap,
    LoggerConfig,
    Point,
    Sensor,
    StationMetadata,
    validate_metadata,
)
from stationkit.calibrate.qc import QcConfig
from tests.calibrate.helpers import T0, TEN, build, readings_file, stamps, value_at

B = datetime(2024, 1, 1, 1, 0)  # a period boundary, logger time (naive)


def ws_meta(
    *,
    ls: float = 0.05,
    lo: float = 0.2,
    cs: float = 0.048,
    co: float = 0.25,
    columns: tuple[ColumnMap, ...] = (ColumnMap("WS_Avg", "avg"), ColumnMap("WS_Std", "sd")),
    mtype: str = "wind_speed",
) -> StationMetadata:
    meta = StationMetadata(
        points=(
            Point(
                "WS",
                mtype,
                80.0,
                logger_configs=(LoggerConfig(columns, slope=ls, offset=lo),),
                sensors=(Sensor((Calibration(slope=cs, offset=co),)),),
            ),
        )
    )
    validate_metadata(meta)
    return meta


nonzero = st.one_of(st.floats(0.001, 50), st.floats(-50, -0.001))
finite = st.floats(-1000, 1000)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ls=nonzero,
    lo=finite,
    cs=nonzero,
    co=finite,
    logged=st.lists(st.floats(-5000, 5000), min_size=1, max_size=30),
)
def test_inverse_transform_recovers_the_logged_value(
    tmp_path_factory: pytest.TempPathFactory,
    ls: float,
    lo: float,
    cs: float,
    co: float,
    logged: list[float],
) -> None:
    tmp = tmp_path_factory.mktemp("inverse")
    times = stamps(len(logged))
    f = readings_file(
        tmp,
        1,
        times,
        {"WS_Avg": logged, "WS_Std": [abs(v) for v in logged]},
        statistics={"WS_Avg": "avg", "WS_Std": "sd"},
    )
    df, _ = build(tmp, [f], ws_meta(ls=ls, lo=lo, cs=cs, co=co))
    avg = df.filter(pl.col("statistic") == "avg").sort("timestamp")
    sd = df.filter(pl.col("statistic") == "sd").sort("timestamp")
    assert avg["raw_value"].to_list() == logged  # raw kept exactly
    for true, raw in zip(avg["value"], logged, strict=True):
        back = (true - co) / cs * ls + lo  # invert the calibration, then redo the logger's
        assert math.isclose(back, raw, rel_tol=1e-9, abs_tol=1e-6 * (1 + abs(lo) + abs(co)))
    for true, raw in zip(sd["value"], sd["raw_value"], strict=True):
        assert math.isclose(true * ls / cs, raw, rel_tol=1e-9, abs_tol=1e-9)


def test_full_ratio_and_untouched_statistics(tmp_path: Path) -> None:
    cols = (ColumnMap("WS_Avg", "avg"), ColumnMap("WS_Std", "sd"), ColumnMap("WS_N", "count"))
    f = readings_file(
        tmp_path,
        1,
        stamps(1),
        {"WS_Avg": [10.0], "WS_Std": [1.0], "WS_N": [600.0]},
        statistics={"WS_Avg": "avg", "WS_Std": "sd", "WS_N": "count"},
    )
    df, result = build(tmp_path, [f], ws_meta(columns=cols))
    assert value_at(df, "WS", "avg", T0)["value"] == pytest.approx(0.048 * (10 - 0.2) / 0.05 + 0.25)
    assert value_at(df, "WS", "sd", T0)["value"] == pytest.approx(1.0 * 0.048 / 0.05)
    assert value_at(df, "WS", "count", T0)["value"] == 600.0
    assert result.rows == 3 and result.points == 1


def test_a_reading_on_a_boundary_gets_exactly_one_periods_transform(tmp_path: Path) -> None:
    meta = StationMetadata(
        points=(
            Point(
                "WS",
                "wind_speed",
                logger_configs=(
                    LoggerConfig((ColumnMap("WS_Avg", "avg"),), date_to=B, slope=1.0, offset=0.0),
                    LoggerConfig((ColumnMap("WS_Avg", "avg"),), date_from=B, slope=2.0, offset=0.0),
                ),
                sensors=(Sensor((Calibration(slope=1.0, offset=0.0),)),),
            ),
        )
    )
    validate_metadata(meta)
    # the file was converted with UTC+1: logger time B is 00:00 UTC
    times = [T0 - TEN, T0, T0 + TEN]
    f = readings_file(
        tmp_path,
        1,
        times,
        {"WS_Avg": [8.0, 8.0, 8.0]},
        statistics={"WS_Avg": "avg"},
        offset_hours=1,
    )
    df, _ = build(tmp_path, [f], meta)
    assert df.height == 3
    assert value_at(df, "WS", "avg", T0 - TEN)["value"] == 8.0  # before: slope 1
    assert value_at(df, "WS", "avg", T0)["value"] == 4.0  # on the boundary: the later period only
    assert value_at(df, "WS", "avg", T0 + TEN)["value"] == 4.0


def test_column_matching_is_exact_never_a_prefix(tmp_path: Path) -> None:
    meta = ws_meta(columns=(ColumnMap("Spd_40m", "avg"),))
    f = readings_file(
        tmp_path,
        1,
        stamps(2),
        {"Spd_40m": [10.0, 11.0], "Spd_40m_S": [10.0, 11.0], "Spd_40": [1.0, 2.0]},
        statistics={"Spd_40m": "avg", "Spd_40m_S": "avg", "Spd_40": "avg"},
    )
    df, _ = build(tmp_path, [f], meta)
    by_point = {p: g["value"].to_list() for (p,), g in df.group_by(["point"], maintain_order=True)}
    assert set(by_point) == {"WS", "Spd_40m_S", "Spd_40"}
    assert by_point["Spd_40m_S"] == [10.0, 11.0]  # its own point, untouched
    assert by_point["WS"] == pytest.approx([0.048 * (v - 0.2) / 0.05 + 0.25 for v in (10, 11)])
    s = value_at(df, "Spd_40m_S", "avg", T0)
    assert (s["measurement_type"], s["height_m"]) == (None, None)


def test_identity_without_metadata(tmp_path: Path) -> None:
    f = readings_file(
        tmp_path,
        1,
        stamps(3),
        {"WS_Avg": [1.0, None, 3.0], "Note": [5.0, 5.0, 5.0]},
        statistics={"WS_Avg": "avg"},
    )
    df, _ = build(tmp_path, [f])
    assert sorted(df["point"].unique().to_list()) == ["Note", "WS_Avg"]
    assert df["value"].to_list() == df["raw_value"].to_list()
    assert value_at(df, "Note", None, T0)["statistic"] is None
    assert value_at(df, "WS_Avg", "avg", T0 + TEN)["value"] is None


def test_ignored_columns_are_left_out(tmp_path: Path) -> None:
    meta = ws_meta(columns=(ColumnMap("WS_Avg", "avg"), ColumnMap("WS_Test", "avg", ignored=True)))
    f = readings_file(tmp_path, 1, stamps(2), {"WS_Avg": [5.0, 6.0], "WS_Test": [1.0, 2.0]})
    df, _ = build(tmp_path, [f], meta)
    assert df["point"].unique().to_list() == ["WS"]


def test_directions_wrap_after_calibration(tmp_path: Path) -> None:
    meta = ws_meta(ls=1.0, lo=0.0, cs=1.0, co=20.0, mtype="wind_direction",
                   columns=(ColumnMap("WD", "avg"),))  # fmt: skip
    f = readings_file(tmp_path, 1, stamps(3), {"WD": [100.0, 350.0, 345.0]})
    df, _ = build(tmp_path, [f], meta)
    assert df.sort("timestamp")["value"].to_list() == pytest.approx([120.0, 10.0, 5.0])


def test_overlapping_files_dedupe_rule(tmp_path: Path) -> None:
    t = stamps(4)
    early = readings_file(tmp_path, 900, t[:3], {"X": [1.0, 2.0, 3.0]}, statistics={"X": "avg"})
    # reaches later (last_ts): preferred, except where its value is missing
    late = readings_file(tmp_path, 5, t[1:], {"X": [20.0, None, 40.0]}, statistics={"X": "avg"})
    assert plan_dedupe([early, late], []) == {5, 900}
    df, result = build(tmp_path, [early, late])
    rows = df.sort("timestamp")
    assert rows["value"].to_list() == [1.0, 20.0, 3.0, 40.0]
    assert rows["file_id"].to_list() == [900, 5, 900, 5]
    assert result.deduplicated_files == 2


def test_repeated_timestamps_in_one_file_keep_the_later_row(tmp_path: Path) -> None:
    t = stamps(2)
    f = readings_file(tmp_path, 1, [t[0], t[1], t[1]], {"X": [1.0, 2.0, 3.0]}, duplicates=True)
    df, _ = build(tmp_path, [f])
    assert df.sort("timestamp")["value"].to_list() == [1.0, 3.0]


def test_a_renamed_column_colliding_with_an_identity_point_is_deduplicated(tmp_path: Path) -> None:
    # point "X" is logged by column "X_new"; an old column literally named "X"
    # (same statistic) would otherwise give two values for (X, avg, t)
    meta = ws_meta(ls=1, lo=0, cs=1, co=0, columns=(ColumnMap("X_new", "avg"),))
    meta = StationMetadata(
        points=(Point("X", "wind_speed", logger_configs=meta.points[0].logger_configs),)
    )
    f = readings_file(
        tmp_path, 1, stamps(2), {"X": [1.0, 2.0], "X_new": [10.0, 20.0]},
        statistics={"X": "avg", "X_new": "avg"},
    )  # fmt: skip
    df, result = build(tmp_path, [f], meta)
    assert df.height == 2 and result.deduplicated_files == 1


def test_mixed_file_offsets_compare_each_in_its_own_logger_time(tmp_path: Path) -> None:
    meta = StationMetadata(
        points=(
            Point(
                "WS",
                "wind_speed",
                logger_configs=(
                    LoggerConfig((ColumnMap("A", "avg"),), date_to=B, slope=1.0, offset=0.0),
                    LoggerConfig((ColumnMap("A", "avg"),), date_from=B, slope=2.0, offset=0.0),
                ),
                sensors=(Sensor((Calibration(slope=1.0, offset=0.0),)),),
            ),
        )
    )
    validate_metadata(meta)
    utc = readings_file(tmp_path, 1, [T0 + timedelta(minutes=50)], {"A": [8.0]}, offset_hours=0)
    plus1 = readings_file(tmp_path, 2, [T0 + timedelta(hours=5)], {"A": [8.0]}, offset_hours=1)
    df, _ = build(tmp_path, [utc, plus1], meta)
    # 00:50 UTC in a UTC file is 00:50 logger time: before B
    assert value_at(df, "WS", "avg", T0 + timedelta(minutes=50))["value"] == 8.0
    assert value_at(df, "WS", "avg", T0 + timedelta(hours=5))["value"] == 4.0


def test_each_month_is_the_same_whatever_the_batches(tmp_path: Path) -> None:
    files = [
        readings_file(
            tmp_path,
            900 - i,  # ids do not follow time
            stamps(30 * 144, T0 + i * 30 * 144 * TEN),
            {"B": [1.0] * 4320, "A_Std": [0.5] * 4320, "A_Avg": [2.0] * 4320},
            statistics={"A_Avg": "avg", "A_Std": "sd", "B": None},
        )
        for i in range(4)
    ]
    meta = ws_meta(columns=(ColumnMap("A_Avg", "avg"), ColumnMap("A_Std", "sd")))
    df, result = build(tmp_path, list(reversed(files)), meta, batch_readings=100)
    assert result.batches == 4  # one per month: January to April 2024
    assert df.height == 4 * 4320 * 3 and df["timestamp"].is_unique().sum() == 0
    months = df["timestamp"].dt.strftime("%Y-%m").to_list()
    assert months == sorted(months)  # each month's file holds its own month only
    assert sorted(result.partitions) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    whole, one = build(tmp_path, files, meta, name="one")
    assert one.batches == 4 and whole.equals(df)  # short files: a month per query anyway
    for month in result.partitions:
        a = (tmp_path / "clean" / "clean" / f"{month}.parquet").read_bytes()
        assert a == (tmp_path / "clean" / "one" / f"{month}.parquet").read_bytes()


def test_a_long_file_is_sorted_by_time_then_point_and_statistic(tmp_path: Path) -> None:
    n = 24 * 6 * 40  # 40 days: its rows come channel by channel
    f = readings_file(
        tmp_path,
        1,
        stamps(n),
        {"B": [1.0] * n, "A_Std": [0.5] * n, "A_Avg": [2.0] * n},
        statistics={"A_Avg": "avg", "A_Std": "sd", "B": None},
    )
    meta = ws_meta(columns=(ColumnMap("A_Avg", "avg"), ColumnMap("A_Std", "sd")))
    df, _ = build(tmp_path, [f], meta, threads=2)
    keys = list(zip(df["timestamp"], df["point"], df["statistic"].fill_null(""), strict=True))
    assert keys == sorted(keys)


def test_same_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    t = stamps(500)
    files = [
        readings_file(
            tmp_path,
            10 + i,
            t[i * 100 : i * 100 + 150],
            {
                "WS_Avg": [float(j // 8 % 5) for j in range(150)],
                "WS_Std": [0.5] * 150,
                "N": [1.0] * 150,
            },
            statistics={"WS_Avg": "avg", "WS_Std": "sd"},
        )
        for i in range(4)
    ]
    flags = [
        FlagInterval(
            "WS", ALL, T0.replace(tzinfo=None), (T0 + 20 * TEN).replace(tzinfo=None), ("m",)
        )
    ]
    digests = set()
    for n, (threads, batch) in enumerate([(1, 10**6), (2, 10**6), (2, 300), (1, 50)]):
        _, result = build(tmp_path, files, ws_meta(), intervals=flags, qc=QcConfig(),
                          threads=threads, batch_readings=batch, name=f"c{n}")  # fmt: skip
        digests.add(
            hashlib.sha256(
                (tmp_path / "clean" / f"c{n}" / "2024-01.parquet").read_bytes()
            ).hexdigest()
        )
        assert result.deduplicated_files == 4 and result.qc_hits > 0  # overlapping files, QC
    assert len(digests) == 1


def test_schema_and_empty_station(tmp_path: Path) -> None:
    empty = ReadingsFile(1, tmp_path / "none.parquet", None, None)
    df, result = build(tmp_path, [empty])
    assert df.height == 0 and result.rows == 0 and result.partitions == {}
    assert list((tmp_path / "clean").rglob("*.parquet")) == []
    f = readings_file(tmp_path, 1, stamps(1), {"X": [1.0]})
    build(tmp_path, [f])
    assert pq.read_schema(tmp_path / "clean" / "clean" / "2024-01.parquet").equals(CLEAN_SCHEMA)


def test_a_missing_readings_file_is_an_error(tmp_path: Path) -> None:
    gone = ReadingsFile(1, tmp_path / "gone.parquet", T0, T0, 1, channels=(("X", None),))
    with pytest.raises(CalibrateError, match=r"gone\.parquet: readings file missing"):
        build(tmp_path, [gone])


def test_one_quoting_helper_for_identifiers(tmp_path: Path) -> None:
    from stationkit.sql import connect, quote_identifier

    assert quote_identifier('Spd "80m" avg') == '"Spd ""80m"" avg"'
    with pytest.raises(ValueError, match="NUL"):
        quote_identifier("a\x00b")
    con = connect(tmp_path, memory_limit="64MB", threads=1)
    name = 'x"; DROP TABLE t; --'
    con.execute(f"CREATE TABLE t AS SELECT 1 AS {quote_identifier(name)}")
    assert [d[0] for d in con.execute("SELECT * FROM t").description] == [name]
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('autoinstall_known_extensions',"
            " 'autoload_known_extensions', 'TimeZone', 'temp_directory', 'threads')"
        ).fetchall()
    )
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["TimeZone"] == "UTC" and settings["threads"] == "1"
    assert Path(settings["temp_directory"]).is_relative_to(tmp_path)
    with pytest.raises(ValueError, match="memory_limit"):
        connect(tmp_path, memory_limit="lots")
