"""IEA Task 43 documents: every corpus document loads, ours is schema-valid
(checked offline), and errors name the JSON path."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from stationkit.calibrate.iea43 import (
    load_calibration_certificate,
    load_document,
    load_iea43,
    parse_iea43,
)
from stationkit.calibrate.metadata import Calibration, ColumnMap, StationMetadata
from stationkit.errors import ConfigError
from tests.conftest import CORPUS, FIXTURES, corpus_files

SCHEMA = CORPUS / "IEA43_JSON" / "schema" / "iea43_wra_data_model.schema.json"
OURS = FIXTURES / "calibrate" / "iea43_station.json"
SHARED = FIXTURES / "calibrate" / "iea43_shared_point_names.json"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # nothing is ever fetched


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert all(ref.startswith("#") for ref in _refs(schema)), "the schema has remote $refs"
    registry: Registry[Any] = Registry(retrieve=_refuse).with_resource(  # type: ignore[call-arg]
        schema["$id"], Resource.from_contents(schema)
    )
    return jsonschema.Draft7Validator(
        schema, registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def test_our_example_document_is_valid_against_the_official_schema() -> None:
    v = validator()
    doc = json.loads(OURS.read_text())
    assert [e.message for e in v.iter_errors(doc)] == []
    shared = json.loads(SHARED.read_text())
    assert [e.message for e in v.iter_errors(shared)] == []
    broken = copy.deepcopy(doc)
    broken["measurement_location"][0]["measurement_point"][0]["height_m"] = "eighty"
    assert any("eighty" in e.message for e in v.iter_errors(broken))


@pytest.mark.parametrize("path", corpus_files("IEA43_JSON"), ids=lambda p: p.name)
def test_every_corpus_document_loads(path: Path) -> None:
    doc = load_document(path)
    if isinstance(doc, Calibration):
        assert doc.slope is not None and doc.offset is not None
        return
    assert doc.points and doc.sources == (path.name,)
    for p in doc.points:
        assert p.name and p.measurement_type
        for lc in p.logger_configs:
            assert all(c.column and c.statistic for c in lc.columns)
    if "measurement_location" in json.loads(path.read_text()):
        assert [e.message for e in validator().iter_errors(json.loads(path.read_text()))] == []


def test_official_demo_points_configs_and_clock() -> None:
    meta = load_iea43(
        CORPUS / "IEA43_JSON" / "IEA-Task-43__digital_wra_data_standard__iea43_wra_data_model.json"
    )
    assert len(meta.points) == 14
    assert {t.utc_offset_hours for t in meta.time} == {-5.0}
    assert meta.time[0].timestamp_is_end_of_period is False
    spd = meta.point("Spd_80.1_315")
    assert spd is not None and spd.height_m == 80.1 and spd.measurement_type == "wind_speed"
    first, second = spd.logger_configs
    assert (first.slope, first.offset) == (0.04573, 0.2419)
    assert (first.date_from, first.date_to) == (datetime(2020, 4, 12, 12), datetime(2020, 4, 15))
    assert ColumnMap("CH1Ti30sec", "ti30sec") in first.columns
    assert second.date_from == datetime(2020, 4, 15) and second.date_to is None
    (sensor,) = spd.sensors
    (cal,) = sensor.calibrations
    assert (cal.slope, cal.offset, cal.date_of_calibration, cal.measurement_type) == (
        0.04573,
        0.2419,
        date(2019, 12, 6),
        "wind_speed",
    )
    direction = meta.point("Dir_76mNW")
    assert direction is not None and direction.logger_configs[0].offset is None


def test_our_document() -> None:
    meta = load_iea43(OURS)
    assert [p.name for p in meta.points] == ["WS80", "WD78", "T2"]
    ws = meta.point("WS80")
    assert ws is not None
    assert ColumnMap("WS80_Test", "avg", ignored=True) in ws.logger_configs[0].columns


def test_points_sharing_a_name_load_identified_by_height() -> None:
    """The standard's own demo data (an ADCP with one point per depth bin, all
    with one name) was refused as "a second point named ..."."""
    meta = load_iea43(SHARED)
    assert [(p.name, p.shared_name, p.height_m) for p in meta.points] == [
        ("Spd@60m", "Spd", 60.0),
        ("Spd@40m", "Spd", 40.0),
        ("Dir60", None, 60.0),  # a unique name is kept
        ("WtrSpd@-5.5m", "WtrSpd", -5.5),
        ("WtrSpd@-10.5m", "WtrSpd", -10.5),
        ("WtrSpd@-15.5m", "WtrSpd", -15.5),
        ("WtrDir@-5.5m", "WtrDir", -5.5),
        ("WtrDir@-10.5m", "WtrDir", -10.5),
        ("Tilt@0m#1", "Tilt", 0.0),  # name and height alike: document order
        ("Tilt@0m#2", "Tilt", 0.0),
    ]
    columns = {
        p.name: [c.column for lc in p.logger_configs for c in lc.columns] for p in meta.points
    }
    assert columns["WtrSpd@-10.5m"] == ["vc2"] and columns["Tilt@0m#2"] == ["TiltY"]
    bin2 = meta.point("WtrSpd@-10.5m")
    assert bin2 is not None and bin2.logger_configs[0].slope == 2.0
    assert [s.serial_number for s in bin2.sensors] == ["ADCP1"]
    assert bin2.where.endswith("measurement_point[4]")


def test_certificate() -> None:
    cal = load_calibration_certificate(
        CORPUS
        / "IEA43_JSON"
        / "IEA-Task-43__digital_wra_data_standard__anemometer_calibration_certificate.json"
    )
    assert (cal.slope, cal.offset, cal.date_of_calibration) == (0.04587, 0.24453, date(2021, 1, 1))


def _doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(OURS.read_text())
    return data


def _mp(doc: dict[str, Any], i: int = 0) -> dict[str, Any]:
    point: dict[str, Any] = doc["measurement_location"][0]["measurement_point"][i]
    return point


def _set_slope(d: dict[str, Any]) -> None:
    _mp(d)["logger_measurement_config"][0]["slope"] = "x"


def _drop_name(d: dict[str, Any]) -> None:
    del _mp(d, 1)["name"]


def _bad_version(d: dict[str, Any]) -> None:
    d["version"] = "2.0.0-2030.01"


def _no_statistic(d: dict[str, Any]) -> None:
    del _mp(d)["logger_measurement_config"][1]["column_name"][0]["statistic_type_id"]


def _bad_date(d: dict[str, Any]) -> None:
    _mp(d, 2)["logger_measurement_config"][0]["date_from"] = "yesterday"


def _overlap(d: dict[str, Any]) -> None:
    _mp(d)["logger_measurement_config"][1]["date_from"] = "2024-01-01T06:00:00"


def _cal_slope(d: dict[str, Any]) -> None:
    _mp(d)["sensor"][0]["calibration"][0]["slope"] = True


def _columns_not_list(d: dict[str, Any]) -> None:
    _mp(d, 2)["logger_measurement_config"][0]["column_name"] = {"column_name": "T"}


def _shared_column(d: dict[str, Any]) -> None:
    _mp(d, 2)["logger_measurement_config"][0]["column_name"][0]["column_name"] = "WD78_Avg"


PATH = "iea43_station.json: measurement_location[0].measurement_point"
ERRORS = [
    (_set_slope, f'{PATH}[0].logger_measurement_config[0].slope: expected a number, got "x"'),
    (_drop_name, f"{PATH}[1].name: missing; expected a string"),
    (
        _bad_version,
        "iea43_station.json: version: version 2.0.0-2030.01 is not supported; stationkit reads "
        "IEA Task 43 WRA data model 1.x documents",
    ),
    (
        _no_statistic,
        f"{PATH}[0].logger_measurement_config[1].column_name[0].statistic_type_id: missing",
    ),
    (
        _bad_date,
        f"{PATH}[2].logger_measurement_config[0].date_from: expected an ISO 8601 date-time",
    ),
    (
        _overlap,
        f"{PATH}[0].logger_measurement_config[1]: its period (2024-01-01T06:00:00 .. open) "
        f"overlaps {PATH}[0].logger_measurement_config[0]",
    ),
    (_cal_slope, f"{PATH}[0].sensor[0].calibration[0].slope: expected a number, got true"),
    (_columns_not_list, f"{PATH}[2].logger_measurement_config[0].column_name: expected a list"),
    (
        _shared_column,
        f'{PATH}[2].logger_measurement_config[0]: column "WD78_Avg" is also used by '
        f'{PATH}[1].logger_measurement_config[0] (point "WD78")',
    ),
]


@pytest.mark.parametrize(("mutate", "message"), ERRORS, ids=[f.__name__ for f, _ in ERRORS])
def test_errors_name_the_json_path(mutate: Any, message: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(ConfigError) as info:
        parse_iea43(doc, name="iea43_station.json")
    assert message in str(info.value)


def test_invalid_json_says_where(tmp_path: Path) -> None:
    bad = tmp_path / "M001.json"
    bad.write_text('{"version": "1.3.0-2024.03",\n "measurement_location": [}\n')
    with pytest.raises(ConfigError, match=r"M001\.json: invalid JSON at line 2, column 27"):
        load_iea43(bad)


def test_a_certificate_is_not_station_metadata() -> None:
    cert = (
        CORPUS
        / "IEA43_JSON"
        / "IEA-Task-43__digital_wra_data_standard__anemometer_calibration_certificate.json"
    )
    with pytest.raises(ConfigError, match="calibration certificate, not a WRA data model"):
        load_iea43(cert)


def test_location_chosen_by_station_name() -> None:
    doc = _doc()
    other = copy.deepcopy(doc["measurement_location"][0])
    other["name"] = "Lidar 2"
    other["measurement_point"] = other["measurement_point"][2:]
    doc["measurement_location"].append(other)
    meta: StationMetadata = parse_iea43(doc, name="d.json", location=("Lidar 2", "L2"))
    assert [p.name for p in meta.points] == ["T2"]
    with pytest.raises(ConfigError, match=r"d\.json: measurement_location: 2 locations"):
        parse_iea43(doc, name="d.json", location=("Mast 9", "M9"))


def test_document_clock_settings_fill_what_the_station_leaves_out(tmp_path: Path) -> None:
    from stationkit.clock import StationClock
    from stationkit.config import StationConfig

    st = StationConfig("M1", metadata=OURS, timestamp_is_end_of_period=False)
    clock = StationClock.load(st).at()
    assert (
        clock.utc_offset_hours,
        clock.timestamp_is_end_of_period,
        clock.averaging_period_minutes,
    ) == (1.0, False, 10.0)  # the station's own setting wins
    assert clock.source("timestamp_is_end_of_period") == "station"
    assert clock.source("utc_offset_hours") == (
        "IEA document iea43_station.json: measurement_location[0].logger_main_config[0]"
    )
    assert StationClock.load(StationConfig("M2")).at().values() == dict.fromkeys(
        ("utc_offset_hours", "timestamp_is_end_of_period", "averaging_period_minutes")
    )
