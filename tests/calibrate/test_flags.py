"""Manual flags: stations.toml, CSV, Windographer logs; merging; reversibility."""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.calibrate.flags import (
    ALL,
    FlagInterval,
    FlagSpec,
    load_flags,
    merge_flags,
    parse_flag_config,
    read_flag_file,
    read_flag_log,
    read_flags_csv,
)
from stationkit.calibrate.metadata import (
    ChannelFacts,
    ColumnMap,
    LoggerConfig,
    Point,
    Resolver,
    StationMetadata,
    resolve_segments,
)
from stationkit.config import StationConfig, parse_config
from stationkit.errors import ConfigError
from tests.calibrate.helpers import T0, TEN, build, facts, readings_file, stamps, value_at
from tests.conftest import CORPUS, FIXTURES

H = FIXTURES / "calibrate"


def at(minute: int) -> datetime:
    return datetime(2024, 1, 1, 0, 0) + minute * TEN / 10


def station(tmp_path: Path, text: str) -> StationConfig:
    return parse_config(tomllib.loads(text), tmp_path / "stations.toml").stations["S1"]


def test_periods_and_files_from_stations_toml(tmp_path: Path) -> None:
    st = station(
        tmp_path,
        """
[stations.S1.flags]
files = ["flags.csv"]
[[stations.S1.flags.periods]]
flag = "maintenance"
points = ["WS"]
start = 2024-01-01T00:10:00
end = 2024-01-01T00:30:00
reason = "boom replaced"
[[stations.S1.flags.periods]]
start = 2024-01-02
end = 2024-01-03
""",
    )
    cfg = parse_flag_config(st, tmp_path)
    assert cfg.files == (tmp_path / "flags.csv",)
    assert cfg.periods == (
        FlagSpec("maintenance", at(10), at(30), ("WS",), "boom replaced",
                 "stations.S1.flags.periods[0]"),
        FlagSpec("manual", datetime(2024, 1, 2), datetime(2024, 1, 3), (), None,
                 "stations.S1.flags.periods[1]"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[stations.S1.flags.periods]]\nstart = 2024-01-01T00:00:00\n",
            "stations.S1.flags.periods[0].end: missing",
        ),
        (
            "[[stations.S1.flags.periods]]\nstart = 2024-01-02\nend = 2024-01-01\n",
            "stations.S1.flags.periods[0]: expected end (2024-01-01T00:00:00) after start",
        ),
        (
            "[[stations.S1.flags.periods]]\nstart = 2024-01-01T00:00:00+01:00\nend = 2024-01-02\n",
            "stations.S1.flags.periods[0].start: expected a local date-time without a zone",
        ),
        (
            '[[stations.S1.flags.periods]]\nflag = "qc_mine"\nstart = 2024-01-01\nend = 2024-01-02\n',
            "stations.S1.flags.periods[0].flag: flag names starting with 'qc_' are reserved",
        ),
        (
            "[[stations.S1.flags.periods]]\nstart = 2024-01-01\nend = 2024-01-02\npoint = 'X'\n",
            "stations.S1.flags.periods[0].point: unknown key; valid keys: flag, points",
        ),
        (
            "[stations.S1.flags]\nfile = 'x.csv'\n",
            "stations.S1.flags.file: unknown key; valid keys: files, periods",
        ),
    ],
)
def test_invalid_flag_settings(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_flag_config(station(tmp_path, text), tmp_path)
    assert message in str(info.value)


def test_flags_csv_rows_for_the_station() -> None:
    specs = read_flags_csv(H / "flags.csv", station="S1")
    assert [(s.flag, s.start, s.end, s.targets, s.reason) for s in specs] == [
        ("maintenance", at(30), at(50), ("WS",), "boom replaced"),
        ("power_cut", at(40), at(60), (), None),
    ]
    assert specs[0].where == "flags.csv, line 2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("station,pont,start,end\n", "bad.csv, line 1: unknown column 'pont'; valid columns: "),
        ("point,start\n", "bad.csv, line 1: expected a 'end' column"),
        (
            "point,start,end\nWS,2024-01-01,yesterday\n",
            "bad.csv, line 2: end: expected a date-time",
        ),
        ("point,start,end\nWS,2024-01-02,2024-01-01\n", "bad.csv, line 2: expected end"),
        (
            "point,start,end\nWS,2024-01-01,2024-01-02,x\n",
            "bad.csv, line 2: expected 3 fields, found 4",
        ),
    ],
)
def test_invalid_flags_csv_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(ConfigError) as info:
        read_flags_csv(bad, station="S1")
    assert message in str(info.value)


def test_windographer_flagging_log() -> None:
    specs = read_flag_log(H / "flagging_log.txt")
    assert [(s.flag, s.targets, s.start, s.end) for s in specs] == [
        ("Icing", ("WS_Avg",), at(10), at(30)),
        ("Invalid", ("WS_Avg",), at(20), at(40)),
        ("Installation", ("WS",), at(0), at(10)),
        ("Icing", ("NoSuchColumn",), at(0), at(10)),
    ]
    # a flags file named in stations.toml is recognised by its content
    assert read_flag_file(H / "flagging_log.txt", station="S1") == specs
    corpus = (
        CORPUS / "WINDOGRAPHER_TXT" / "brightwind-dev__brightwind__windographer_flagging_log.txt"
    )
    assert len(read_flag_log(corpus)) > 200


def _meta() -> StationMetadata:
    return StationMetadata(
        points=(
            Point(
                "WS",
                "wind_speed",
                logger_configs=(
                    LoggerConfig((ColumnMap("WS_Avg", "avg"), ColumnMap("WS_Std", "sd"))),
                ),
            ),
        )
    )


def test_merge_makes_non_overlapping_intervals_with_every_active_flag() -> None:
    specs = [
        FlagSpec("a", at(0), at(30), ("WS",)),
        FlagSpec("b", at(20), at(50), ("WS",)),
        FlagSpec("c", at(50), at(60), ()),
    ]
    segments, _ = resolve_segments(_meta(), {"T": ChannelFacts("T")})
    resolver = Resolver.from_segments(segments)
    intervals, warnings = merge_flags(specs, resolver, {"WS": {"avg", "sd"}, "T": {None}})
    assert warnings == []
    assert intervals == [
        FlagInterval("T", ALL, at(50), at(60), ("c",)),
        FlagInterval("WS", ALL, at(0), at(20), ("a",)),
        FlagInterval("WS", ALL, at(20), at(30), ("a", "b")),
        FlagInterval("WS", ALL, at(30), at(50), ("b",)),
        FlagInterval("WS", ALL, at(50), at(60), ("c",)),
    ]


def test_a_column_flag_hits_one_statistic_and_point_flags_are_expanded() -> None:
    segments, _ = resolve_segments(_meta(), {})
    resolver = Resolver.from_segments(segments)
    specs = [FlagSpec("icing", at(0), at(20), ("WS_Avg",)), FlagSpec("all", at(10), at(30), ())]
    intervals, warnings = merge_flags(
        [*specs, FlagSpec("x", at(0), at(1), ("Nope",), where="log, entry 3")],
        resolver,
        {"WS": {"avg", "sd"}},
    )
    assert warnings == [
        "log, entry 3: flag 'x' names 'Nope', which is no point, column, sensor or channel "
        "of the station; ignored"
    ]
    assert intervals == [
        FlagInterval("WS", "avg", at(0), at(10), ("icing",)),
        FlagInterval("WS", "avg", at(10), at(20), ("all", "icing")),
        FlagInterval("WS", "avg", at(20), at(30), ("all",)),
        FlagInterval("WS", "sd", at(10), at(30), ("all",)),
    ]


def test_flags_are_reversible_and_half_open(tmp_path: Path) -> None:
    files = [
        readings_file(
            tmp_path,
            1,
            stamps(7),
            {"WS_Avg": [5.0, 6, 7, 8, 9, 10, 11], "WS_Std": [1.0] * 7, "T": [3.0] * 7},
            statistics={"WS_Avg": "avg", "WS_Std": "sd"},
        )
    ]
    meta = _meta()
    segments, _ = resolve_segments(meta, facts(files))
    specs = [
        *load_flags(parse_flag_config(station(tmp_path, "[stations.S1]\n"), tmp_path), "S1",
                    [(H / "flagging_log.txt", "flagging_log.txt")]),
        *read_flags_csv(H / "flags.csv", station="S1"),
    ]  # fmt: skip
    statistics = {"WS": {"avg", "sd"}, "T": {None}}
    intervals, _ = merge_flags(specs, Resolver.from_segments(segments), statistics)
    flagged, _ = build(tmp_path, files, meta, intervals=intervals, name="flagged.parquet")
    plain, _ = build(tmp_path, files, meta, name="plain.parquet")
    # the same values, raw values kept; only the flags differ
    cols = ["timestamp", "point", "statistic", "value", "raw_value", "file_id"]
    key = ["timestamp", "point", "statistic"]
    assert flagged.select(cols).sort(key).equals(plain.select(cols).sort(key))
    assert plain["flags"].list.len().max() == 0
    flags = {
        (r["timestamp"].replace(tzinfo=None), r["point"], r["statistic"]): r["flags"]
        for r in flagged.iter_rows(named=True)
    }
    ws = [flags[(at(10 * i), "WS", "avg")] for i in range(7)]
    assert ws == [
        ["Installation"],
        ["Icing"],
        ["Icing", "Invalid"],
        ["Invalid", "maintenance"],  # 00:30 is the end of Icing: not flagged by it
        ["maintenance", "power_cut"],
        ["power_cut"],
        [],  # 01:00 = end of power_cut
    ]
    assert [flags[(at(10 * i), "WS", "sd")] for i in range(3)] == [["Installation"], [], []]
    assert flags[(at(40), "T", None)] == ["power_cut"]
    assert value_at(flagged, "WS", "avg", T0 + 2 * TEN)["raw_value"] == 7.0
    assert flagged.filter(pl.col("flags").list.len() > 0).height == 12


def test_a_sensor_serial_flags_the_point_it_is_mounted_at() -> None:
    from stationkit.calibrate.metadata import Sensor

    meta = StationMetadata(
        points=(
            Point(
                "WS",
                "wind_speed",
                logger_configs=(LoggerConfig((ColumnMap("WS_Avg", "avg"),)),),
                sensors=(Sensor(serial_number="09183000"),),
            ),
        )
    )
    segments, _ = resolve_segments(meta, {})
    resolver = Resolver.from_segments(segments, meta)
    assert resolver.resolve("09183000") == [("WS", None)]
    assert resolver.resolve("WS_Avg") == [("WS", "avg")]
    assert resolver.resolve("WS") == [("WS", None)]
