"""Header helpers shared by the NRG text readers."""

from __future__ import annotations

import pytest

from stationkit.parsers.nrg_common import (
    current_record,
    parse_header,
    parse_interval,
    parse_key_value,
    parse_utc_offset,
    sensor_attrs,
    statistic_for,
)
from stationkit.parsers.table import unique_names


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("UTC-5:00", -5.0),
        ("UTC-7:00", -7.0),
        ("UTC+05:30", 5.5),
        ("UTC", 0.0),
        ("-5", -5.0),
        ("10", 10.0),
        ("(UTC-03:00) Brasilia", -3.0),
        ("Eastern", None),
        ("UTC+25:00", None),
        (None, None),
    ],
)
def test_parse_utc_offset(text: str | None, hours: float | None) -> None:
    assert parse_utc_offset(text) == hours


@pytest.mark.parametrize(
    ("key", "value", "seconds"),
    [
        ("Statistical Interval (min)", "10", 600.0),
        ("Averaging Interval", "10 min", 600.0),
        ("Interval", "00:10:00", 600.0),
        ("Sample Interval (s)", "1", 1.0),
        ("Interval", "1 hour", 3600.0),
        ("Interval", "10", None),
        ("Interval", "ten", None),
    ],
)
def test_parse_interval(key: str, value: str, seconds: float | None) -> None:
    assert parse_interval(key, value) == seconds


@pytest.mark.parametrize(
    ("line", "pair"),
    [
        ("Site Number:\t004310", ("Site Number", "004310")),
        ("Start Date:\t", ("Start Date", "")),
        ("Configuration: ", ("Configuration", "")),
        ("File Version: 2", ("File Version", "2")),
        ("Channel\t301", ("Channel", "301")),
        ("Project:\tSuper Tester\t", ("Project", "Super Tester")),
        ("Generated:\t2022-03-18 14:37:02", ("Generated", "2022-03-18 14:37:02")),
        ("Export Parameters\t", None),
        ("Site Properties", None),
        ("", None),
    ],
)
def test_parse_key_value(line: str, pair: tuple[str, str] | None) -> None:
    assert parse_key_value(line) == pair


def test_sections_and_records_without_blank_lines() -> None:
    lines = [
        "SymphoniePRO Desktop Application",
        "Export Parameters\t",
        "Site Number:\t1",
        "Sensor History\t",
        "Channel:\t1",
        "Height:\t10",
        "Channel:\t2",
        "Height:\t20",
        "Data",
        "",
        "Timestamp\tCh1_Anem_10.00m_N_Avg_m/s\t",
    ]
    header = parse_header(lines, "x.txt")
    assert [s.title for s in header.sections] == [
        "SymphoniePRO Desktop Application",
        "Export Parameters",
        "Sensor History",
    ]
    history = header.section("sensor history")
    assert history is not None
    assert history.records == [{"Channel": "1", "Height": "10"}, {"Channel": "2", "Height": "20"}]
    assert (header.data_line, header.columns_line) == (9, 11)
    assert header.columns == ["Timestamp", "Ch1_Anem_10.00m_N_Avg_m/s", ""]
    assert unique_names(header.columns, "x.txt", line=11)[-1] == "__empty2"


def test_current_record_is_the_latest_effective_date_not_the_last() -> None:
    records = [
        {"Channel": "1", "Effective Date": "2024-05-01  00:00:00", "Scale Factor": "2"},
        {"Channel": "1", "Effective Date": "2024-01-01 00:00:00", "Scale Factor": "1"},
    ]
    assert current_record(records) == records[0]
    us = [
        {"Effective Date": "12/1/2023 10:00:00 PM", "Offset": "a"},
        {"Effective Date": "2/1/2023 10:00:00 AM", "Offset": "b"},
    ]
    assert current_record(us) == us[0]


def test_sensor_attrs_new_firmware_keys() -> None:
    attrs = sensor_attrs(
        [
            {
                "Channel": "401",
                "Effective Date": "2025-08-28  15:38:51",
                "Measurement Type": "wind_speed",
                "Scale Factor": "0.046230",
                "Offset": "0.229820",
                "Height": "60.19",
                "Boom Bearing": "270.0",
            }
        ]
    )
    assert attrs["measurement_type"] == "wind_speed"
    assert attrs["bearing_deg"] == 270.0
    assert attrs["height_m"] == 60.19
    assert attrs["effective_date"] == "2025-08-28 15:38:51"


@pytest.mark.parametrize(
    ("token", "statistic"),
    [
        ("Avg", "avg"),
        ("SD", "sd"),
        ("Min", "min"),
        ("Max", "max"),
        ("Gust", "gust"),
        ("GustDir", "gust"),
        ("Gust_Dir", "gust"),
        ("Sum", "sum"),
        ("Total", "sum"),
        ("Samples", "sample"),
        ("TI", "ti"),
        ("Weird", None),
    ],
)
def test_statistic_tokens(token: str, statistic: str | None) -> None:
    assert statistic_for(token) == statistic
