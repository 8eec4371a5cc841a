"""stations.toml points/sensors: validation with key paths, periods, segments."""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from pathlib import Path

import pytest

from stationkit.calibrate.metadata import (
    Calibration,
    ChannelFacts,
    ColumnMap,
    LoggerConfig,
    Point,
    Resolver,
    Sensor,
    StationMetadata,
    identify_points,
    in_force,
    load_station_metadata,
    resolve_segments,
    transform_kind,
    validate_metadata,
)
from stationkit.config import StationConfig, parse_config
from stationkit.errors import ConfigError
from tests.conftest import CORPUS

GOOD = """
[stations.M001.points.WS80N]
measurement_type = "wind_speed"
height_m = 80
orientation_deg = 315
[[stations.M001.points.WS80N.logger]]
date_to = 2024-03-01T00:00:00
slope = 0.046
offset = 0.24
unit = "m/s"
columns = { avg = "WS80N_Avg", sd = "WS80N_Std" }
[[stations.M001.points.WS80N.logger]]
date_from = 2024-03-01T00:00:00
slope = 0.05
offset = 0.2
columns = { avg = "WS80N_Avg", sd = "WS80N_Std", max = "WS80N_Max" }

[stations.M001.points.T2]
measurement_type = "air_temperature"
columns = { avg = "T2_Avg" }

[stations.M001.sensors.TH1]
point = "WS80N"
model = "Thies FCA"
date_from = 2023-06-01
slope = 0.0458
offset = 0.21
date_of_calibration = 2023-05-02
"""


def station(tmp_path: Path, text: str) -> StationConfig:
    path = tmp_path / "stations.toml"
    return parse_config(tomllib.loads(text), path).stations["M001"]


def load(tmp_path: Path, text: str) -> StationMetadata:
    return load_station_metadata(station(tmp_path, text), tmp_path)


def test_points_and_sensors_load(tmp_path: Path) -> None:
    meta = load(tmp_path, GOOD)
    ws = meta.point("WS80N")
    assert ws is not None
    assert (ws.measurement_type, ws.height_m, ws.orientation_deg) == ("wind_speed", 80.0, 315.0)
    first, second = ws.logger_configs
    assert first.date_from is None and first.date_to == datetime(2024, 3, 1)
    assert (first.slope, first.offset, first.unit) == (0.046, 0.24, "m/s")
    assert first.columns == (ColumnMap("WS80N_Avg", "avg"), ColumnMap("WS80N_Std", "sd"))
    assert second.date_from == datetime(2024, 3, 1) and second.date_to is None
    (sensor,) = ws.sensors
    assert sensor.serial_number == "TH1" and sensor.model == "Thies FCA"
    assert sensor.date_from == datetime(2023, 6, 1)
    assert sensor.calibrations == (
        Calibration(
            slope=0.0458,
            offset=0.21,
            date_of_calibration=date(2023, 5, 2),
            where="stations.M001.sensors.TH1",
        ),
    )
    t2 = meta.point("T2")
    assert t2 is not None and t2.logger_configs[0].columns == (ColumnMap("T2_Avg", "avg"),)
    assert meta.sources == ("stations.toml",)
    assert meta.columns == {"WS80N_Avg", "WS80N_Std", "WS80N_Max", "T2_Avg"}


BAD = [
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "wind_speed"\nheight_m = "x"\n'
        'columns = { avg = "A" }\n',
        'stations.M001.points.WS80N.height_m: expected a number, got "x"',
    ),
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "windspeed"\ncolumns = { avg = "A" }\n',
        "stations.M001.points.WS80N.measurement_type: expected an IEA Task 43 "
        "measurement_type_id such as wind_speed",
    ),
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "wind_speed"\n',
        "stations.M001.points.WS80N.columns: missing; expected a table of statistic = column name",
    ),
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "wind_speed"\ncolumns = { average = "A" }\n',
        "stations.M001.points.WS80N.columns.average: unknown statistic; valid statistics: ",
    ),
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "A" }\n'
        "hieght_m = 3\n",
        "stations.M001.points.WS80N.hieght_m: unknown key; valid keys: measurement_type",
    ),
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "A" }\n'
        "date_from = 2024-01-01T00:00:00Z\n",
        "stations.M001.points.WS80N.date_from: expected a local date-time without a zone",
    ),
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "A" }\n'
        "date_from = 2024-01-02\ndate_to = 2024-01-01\n",
        "stations.M001.points.WS80N.date_to: expected a date-time after date_from "
        "(2024-01-02T00:00:00), got 2024-01-01T00:00:00",
    ),
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "A" }\n'
        "slope = 0\n",
        "stations.M001.points.WS80N.slope: expected a number other than 0",
    ),
    (
        '[stations.M001.points.WS80N]\nmeasurement_type = "wind_speed"\n'
        '[[stations.M001.points.WS80N.logger]]\ncolumns = { avg = "A" }\n'
        "date_to = 2024-02-01T00:00:00\n"
        '[[stations.M001.points.WS80N.logger]]\ncolumns = { avg = "A" }\n'
        "date_from = 2024-01-15T00:00:00\n",
        "stations.M001.points.WS80N.logger[1]: its period (2024-01-15T00:00:00 .. open) overlaps "
        "stations.M001.points.WS80N.logger[0] (open .. 2024-02-01T00:00:00)",
    ),
    (
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n'
        '[stations.M001.points.B]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n',
        'stations.M001.points.B: column "X" is also used by stations.M001.points.A (point "A")',
    ),
    (
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\n'
        'columns = { avg = "X", max = "X" }\n',
        'stations.M001.points.A: column "X" is listed twice',
    ),
    (
        '[stations.M001.sensors.S1]\npoint = "NOPE"\nslope = 1\noffset = 0\n'
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n',
        'stations.M001.sensors.S1.point: no point named "NOPE"; points: A',
    ),
    (
        '[stations.M001.sensors.S1]\npoint = "A"\n[[stations.M001.sensors.S1.calibrations]]\n'
        "date_of_calibration = 2024-01-01\n"
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n',
        "stations.M001.sensors.S1.calibrations[0]: expected slope and offset (or a certificate)",
    ),
    (
        '[stations.M001.sensors.S1]\npoint = "A"\nslope = 1\n'
        "[[stations.M001.sensors.S1.calibrations]]\nslope = 2\n"
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n',
        "stations.M001.sensors.S1.slope: give the calibration either on the sensor or in its "
        "calibrations list, not both",
    ),
    (
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n'
        '[[stations.M001.points.A.logger]]\ncolumns = { avg = "X" }\n',
        "stations.M001.points.A.columns: give the logger settings either on the point or in its "
        "[[...logger]] periods, not both",
    ),
    (
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n'
        '[stations.M001.sensors.S1]\npoint = "A"\n'
        "[[stations.M001.sensors.S1.calibrations]]\nslope = 2\noffset = 0\n"
        "date_from = 2024-01-01T00:00:00\n"
        "[[stations.M001.sensors.S1.calibrations]]\nslope = 3\noffset = 0\n",
        "stations.M001.sensors.S1: give every calibration of the sensor a period",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:50] for _, m in BAD])
def test_invalid_sections_name_the_key_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert message in str(info.value)


def test_sensor_calibration_from_a_certificate(tmp_path: Path) -> None:
    cert = (
        CORPUS
        / "IEA43_JSON"
        / ("IEA-Task-43__digital_wra_data_standard__anemometer_calibration_certificate.json")
    )
    text = (
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n'
        f'[stations.M001.sensors.S1]\npoint = "A"\ncertificate = "{cert}"\n'
    )
    (sensor,) = load(tmp_path, text).points[0].sensors
    (cal,) = sensor.calibrations
    assert (cal.slope, cal.offset, cal.date_of_calibration) == (0.04587, 0.24453, date(2021, 1, 1))


def test_certificate_and_slope_together_is_an_error(tmp_path: Path) -> None:
    text = (
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n'
        '[stations.M001.sensors.S1]\npoint = "A"\ncertificate = "c.json"\nslope = 1\n'
    )
    with pytest.raises(ConfigError, match=r"sensors\.S1\.certificate: give either a certificate"):
        load(tmp_path, text)


def test_iea_document_and_toml_merge(tmp_path: Path) -> None:
    doc = CORPUS / "IEA43_JSON" / "brightwind-dev__brightwind__demo_data_iea43_wra_data_model.json"
    text = (
        f'[stations.M001]\nmetadata = "{doc}"\n'
        '[stations.M001.points.T2m]\nmeasurement_type = "air_temperature"\nheight_m = 2.5\n'
        'columns = { avg = "T2m" }\n'
        '[stations.M001.sensors.NEW]\npoint = "Dir78mS"\ndate_from = 2017-01-01T00:00:00\n'
        "slope = 0.047\noffset = 0.2\n"
    )
    meta = load(tmp_path, text)
    assert meta.sources == (doc.name, "stations.toml")
    t2 = meta.point("T2m")
    assert t2 is not None and t2.height_m == 2.5 and t2.where == "stations.M001.points.T2m"
    spd = meta.point("Dir78mS")
    assert spd is not None and [s.serial_number for s in spd.sensors][-1] == "NEW"


def test_overlapping_calibrated_sensors_are_an_error(tmp_path: Path) -> None:
    text = (
        '[stations.M001.points.A]\nmeasurement_type = "wind_speed"\ncolumns = { avg = "X" }\n'
        '[stations.M001.sensors.S1]\npoint = "A"\nslope = 1\noffset = 0\n'
        '[stations.M001.sensors.S2]\npoint = "A"\nslope = 2\noffset = 0\n'
        "date_from = 2024-01-01T00:00:00\n"
    )
    with pytest.raises(ConfigError, match=r"sensors\.S2: its period .* overlaps .*sensors\.S1"):
        load(tmp_path, text)


def test_transform_kinds() -> None:
    assert [transform_kind(s) for s in ("avg", "min", "max", "gust", "median")] == ["full"] * 5
    assert [transform_kind(s) for s in ("sd", "range")] == ["ratio"] * 2
    assert [transform_kind(s) for s in ("count", "sum", "text", "ti", None)] == ["none"] * 5


def test_the_certificate_in_force_at_installation() -> None:
    old = Calibration(slope=1.0, date_of_calibration=date(2020, 1, 1))
    new = Calibration(slope=2.0, date_of_calibration=date(2023, 1, 1))
    later = Calibration(slope=3.0, date_of_calibration=date(2025, 1, 1))
    assert in_force([old, new, later], datetime(2024, 6, 1)) is new
    assert in_force([later, old], datetime(2019, 6, 1)) is old  # none before: the earliest
    assert in_force([new, Calibration(slope=9.0)], datetime(2019, 6, 1)).slope == 9.0


def _point(*configs: LoggerConfig, sensors: tuple[Sensor, ...] = ()) -> StationMetadata:
    meta = StationMetadata(
        points=(Point("WS", "wind_speed", 80.0, logger_configs=configs, sensors=sensors),)
    )
    validate_metadata(meta)
    return meta


def test_segments_split_at_calibration_bounds_and_fill_gaps_with_identity() -> None:
    cut = datetime(2024, 3, 1)
    meta = _point(
        LoggerConfig(
            (ColumnMap("WS_Avg", "avg"), ColumnMap("WS_Std", "sd"), ColumnMap("WS_N", "count")),
            date_from=datetime(2024, 1, 1),
            date_to=datetime(2024, 6, 1),
            slope=0.05,
            offset=0.2,
        ),
        sensors=(
            Sensor((Calibration(slope=0.048, offset=0.25),), date_to=cut),
            Sensor((Calibration(slope=0.049, offset=0.22),), date_from=cut),
        ),
    )
    channels = {n: ChannelFacts(n) for n in ("WS_Avg", "WS_Std", "WS_N", "Other")}
    segments, warnings = resolve_segments(meta, channels)
    assert warnings == []
    avg = sorted(
        (s for s in segments if s.channel == "WS_Avg"), key=lambda s: s.date_from or datetime.min
    )
    assert [(s.date_from, s.date_to, s.point, s.kind, s.cal_slope) for s in avg] == [
        (None, datetime(2024, 1, 1), "WS_Avg", "none", 1.0),
        (datetime(2024, 1, 1), cut, "WS", "full", 0.048),
        (cut, datetime(2024, 6, 1), "WS", "full", 0.049),
        (datetime(2024, 6, 1), None, "WS_Avg", "none", 1.0),
    ]
    assert {s.kind for s in segments if s.channel == "WS_Std" and s.point == "WS"} == {"ratio"}
    assert {s.kind for s in segments if s.channel == "WS_N"} == {"none"}
    (other,) = [s for s in segments if s.channel == "Other"]
    assert (other.point, other.date_from, other.date_to, other.statistic) == (
        "Other",
        None,
        None,
        None,
    )


def test_vendor_header_slope_is_the_logger_config_when_metadata_has_none() -> None:
    meta = _point(
        LoggerConfig((ColumnMap("WS_Avg", "avg"),)),
        sensors=(Sensor((Calibration(slope=0.048, offset=0.25),)),),
    )
    segments, warnings = resolve_segments(
        meta, {"WS_Avg": ChannelFacts("WS_Avg", slope=0.0462, offset=0.21)}
    )
    (seg,) = [s for s in segments if s.point == "WS"]
    assert (seg.kind, seg.logger_slope, seg.logger_offset) == ("full", 0.0462, 0.21)
    assert warnings == []


def test_calibration_without_any_logger_slope_is_not_applied_and_warned() -> None:
    meta = _point(
        LoggerConfig((ColumnMap("WS_Avg", "avg"),), where="p.logger[0]"),
        sensors=(Sensor((Calibration(slope=0.048, offset=0.25, where="p.sensor[0]"),)),),
    )
    segments, warnings = resolve_segments(meta, {"WS_Avg": ChannelFacts("WS_Avg")})
    (seg,) = [s for s in segments if s.point == "WS"]
    assert seg.kind == "none"
    assert warnings == [
        "point WS: column WS_Avg has a calibration (p.sensor[0]) but the logger's slope and "
        "offset are unknown (p.logger[0]); its values are kept as logged"
    ]


def test_example_config_is_valid() -> None:
    from stationkit.config import load_config
    from stationkit.pipeline.calibrate import load_station_setup

    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "examples" / "calibrated_station.toml")
    for st in config.stations.values():
        meta, flags, qc = load_station_setup(config, st)
        assert meta.points and flags.periods and qc.enabled


def test_a_logger_programmed_with_the_certificate_is_left_exact() -> None:
    meta = _point(
        LoggerConfig((ColumnMap("WS_Avg", "avg"), ColumnMap("WS_Std", "sd")), slope=0.046,
                     offset=0.243),
        sensors=(Sensor((Calibration(slope=0.046, offset=0.243),)),),
    )  # fmt: skip
    segments, _ = resolve_segments(meta, {})
    assert {s.kind for s in segments if s.point == "WS"} == {"none"}


def test_points_sharing_a_name_are_identified_by_height_then_document_order() -> None:
    """The IEA standard identifies a point by name plus height (or its position):
    an ADCP has one point per depth bin, all with one name."""

    def pt(name: str, height: float | None) -> Point:
        return Point(name, "water_speed", height)

    unique = (pt("WS80", 80), pt("WS60", 60))
    assert identify_points(unique) == unique  # nothing to change: names stay as they are
    got = identify_points(
        [
            pt("WtrSpd", -5.5),
            pt("WS80", 80),
            pt("WtrSpd", -10.0),
            pt("Tilt", 0),
            pt("Tilt", 0),
            pt("Hs", None),
            pt("Hs", None),
            pt("X", 5),
            pt("X", 6),
            pt("X@5m", 1),  # a point really named like a qualified name keeps it
        ]
    )
    assert [(p.name, p.shared_name) for p in got] == [
        ("WtrSpd@-5.5m", "WtrSpd"),
        ("WS80", None),
        ("WtrSpd@-10m", "WtrSpd"),
        ("Tilt@0m#1", "Tilt"),
        ("Tilt@0m#2", "Tilt"),
        ("Hs#1", "Hs"),
        ("Hs#2", "Hs"),
        ("X@5m#1", "X"),
        ("X@6m", "X"),
        ("X@5m", None),
    ]
    assert [p.height_m for p in got] == [-5.5, 80, -10.0, 0, 0, None, None, 5, 6, 1]


def test_a_name_several_points_share_flags_all_of_them() -> None:
    points = identify_points(
        [
            Point(
                "WtrSpd", "water_speed", h, logger_configs=(LoggerConfig((ColumnMap(c, "avg"),)),)
            )
            for h, c in ((-5, "vc1"), (-10, "vc2"))
        ]
    )
    meta = StationMetadata(points=points)
    segments, _ = resolve_segments(meta, {})
    resolver = Resolver.from_segments(segments, meta)
    assert resolver.resolve("WtrSpd") == [("WtrSpd@-10m", None), ("WtrSpd@-5m", None)]
    assert resolver.resolve("WtrSpd@-5m") == [("WtrSpd@-5m", None)]
    assert resolver.resolve("vc2") == [("WtrSpd@-10m", "avg")]
