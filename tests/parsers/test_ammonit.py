"""Ammonit Meteo-40/41/42 CSV. There is no real Ammonit file in the corpus:
the fixtures are hand-written after the layout in docs/formats/ammonit.md."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stationkit.errors import ParseError
from stationkit.parsers import ammonit
from stationkit.parsers.ammonit import read_ammonit_csv
from tests.conftest import CORPUS, FIXTURES

HERE = FIXTURES / "ammonit"
INFO = HERE / "meteo40_tab_information.csv"
WS = "V1;wind_speed;"


def test_tab_export_with_information_part_exact_table() -> None:
    result = read_ammonit_csv(INFO)
    stamps = [datetime(2024, 3, 1, 0, m) for m in (0, 10, 20, 30, 40, 50)]
    expected = pl.DataFrame(
        {
            "timestamp": stamps,
            WS + "Avg": [7.31, 7.05, 6.62, None, 6.98, 7.44],
            WS + "Max": [9.80, 9.12, 8.71, None, 9.33, 10.02],
            WS + "Min": [5.02, 4.88, 4.40, None, 5.11, 5.36],
            WS + "StdDev": [0.84, 0.79, 0.91, None, 0.77, 0.88],
            WS + "Count": [600.0, 600.0, 600.0, 0.0, 600.0, 600.0],
            "D1;wind_direction;Avg": [231.4, 229.8, 233.0, None, 234.7, 236.1],
            "D1;wind_direction;StdDev": [8.2, 7.9, 9.4, None, None, 8.8],
            # '-' is a marker as a whole field only: -0.4 is a reading
            "TH1;temperature;Avg": [4.7, 4.6, 4.6, 4.5, -0.4, -0.6],
            "TH1;humidity;Avg": [81.3, 81.9, 82.4, 82.8, 83.5, 84.0],
            "P1;air_pressure;Avg": [1019.9999, 1020.0, 1020.1, 1020.1, 1020.3, 1020.2],
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    assert_frame_equal(result.frame, expected)
    assert result.meta.format == "ammonit_csv"
    assert result.meta.skipped_channels == ()
    assert result.meta.warnings == ()


def test_channels_take_statistic_unit_height_and_calibration_from_the_file() -> None:
    result = read_ammonit_csv(INFO)
    info = {c.name: c for c in result.channels}
    assert [(c.statistic, c.unit, c.height_m) for c in result.channels] == [
        ("avg", "m/s", 110.0),
        ("max", "m/s", 110.0),
        ("min", "m/s", 110.0),
        ("sd", "m/s", 110.0),
        ("count", None, 110.0),
        ("avg", "°", 106.0),
        ("sd", "°", 106.0),
        ("avg", "°C", 10.0),
        ("avg", "%", 10.0),
        ("avg", "hPa", 8.0),
    ]
    anem = info[WS + "Avg"].attrs
    assert anem["slope"] == 0.04612
    assert anem["offset"] == 0.2412
    assert anem["sensor_serial"] == "06183412"
    assert anem["sensor_model"] == "Anemometer Thies First Class Advanced"
    assert anem["logger_channel"] == "C1"
    assert anem["measurement_type"] == "wind_speed"
    assert anem["ammonit_statistic"] == "Avg"
    assert anem["label"] == "V1"
    # two evaluations share the label TH1: the measurement type picks the right one
    assert info["TH1;temperature;Avg"].attrs["offset"] == -30.0
    assert info["TH1;temperature;Avg"].attrs["logger_channel"] == "A1"
    assert info["TH1;humidity;Avg"].attrs["offset"] == 0.0
    assert info["TH1;humidity;Avg"].attrs["logger_channel"] == "A2"


def test_information_part_goes_to_meta() -> None:
    meta = read_ammonit_csv(INFO).meta
    assert meta.logger_model == "Meteo-40M"
    assert meta.logger_serial == "D102345"
    assert meta.station_name == "Kilbride M1"
    assert meta.utc_offset_hours == 1.0
    assert meta.interval_s == 600.0
    assert meta.timestamp_is_end_of_period is None
    info = meta.extra["information"]
    assert info["System Information"]["Date/time"] == "2024-03-02 00:05:12 UTC"
    assert info["System"]["latitude"] == "53.21"
    assert info["Eval_2"]["unit"] == "°"
    assert meta.extra["information_line"] == 9  # '# Ammonit Data Logger - System Information'


def test_key_value_header_semicolon_decimal_comma_bom_crlf() -> None:
    result = read_ammonit_csv(HERE / "meteo40_keyvalue_semicolon.csv")
    meta = result.meta
    assert meta.logger_model == "Meteo-40M"
    assert meta.logger_serial == "D102345"
    assert meta.station_name == "Kilbride"
    assert meta.interval_s == 600.0
    assert meta.utc_offset_hours == 1.0
    assert meta.extra["decimal"] == ","
    assert meta.extra["delimiter"] == ";"
    assert meta.extra["header"]["Serial number"] == "D102345"
    assert result.rows == 4  # the duplicated 00:10 row is kept
    assert result.frame["timestamp"][1] == result.frame["timestamp"][2]
    assert result.frame["A1_Avg"].to_list() == [7.31, 7.05, 7.05, 6.62]
    assert result.frame["T1_Avg [°C]"].to_list() == [4.7, 4.6, 4.6, -0.4]
    assert [(c.name, c.statistic, c.unit) for c in result.channels] == [
        ("A1_Avg", "avg", None),
        ("A1_Max", "max", None),
        ("A1_Min", "min", None),
        ("A1_StdDev", "sd", None),
        ("A1_Count", "count", None),
        ("T1_Avg [°C]", "avg", "°C"),
    ]


def test_latin1_lone_cr_truncated_last_line() -> None:
    result = read_ammonit_csv(HERE / "meteo40_latin1_cr_truncated.csv")
    assert result.rows == 2
    assert result.frame["Temp 2m;temperature;Avg [°C]"].to_list() == [4.7, 4.6]
    # 9999 is not a marker inside a number
    assert result.frame["Baro 1m;air_pressure;Avg [hPa]"].to_list() == [1019.9999, 1020.1]
    assert [c.unit for c in result.channels] == ["°C", "°C", "hPa"]
    assert [c.height_m for c in result.channels] == [2.0, 2.0, 1.0]
    assert result.meta.warnings == (
        "line 4: truncated last line dropped (it has 2 of 4 fields and no line break)",
    )


def test_path_and_file_like_give_the_same_result() -> None:
    by_path = read_ammonit_csv(INFO)
    by_stream = read_ammonit_csv(io.BytesIO(INFO.read_bytes()), name=INFO.name)
    assert_frame_equal(by_path.frame, by_stream.frame)
    assert by_path.channels == by_stream.channels
    assert by_path.meta.extra["information"] == by_stream.meta.extra["information"]


def test_blank_line_inside_the_data_does_not_end_it() -> None:
    text = (
        b"Date/time\tA1_Avg\n2024-03-01 00:00:00\t1.5\n\n2024-03-01 00:10:00\t2.5\n"
        b"\n[System]\ntimezone=UTC-03:30\n"
    )
    result = read_ammonit_csv(io.BytesIO(text), name="gap.csv")
    assert result.frame["A1_Avg"].to_list() == [1.5, 2.5]
    assert result.meta.utc_offset_hours == -3.5


def test_units_line_under_the_column_names() -> None:
    text = (
        "Date/time\tWS 80m_Avg\tT 2m_Avg\n\tm/s\t°C\n"
        "2024-03-01 00:00:00\t7.5\t4.1\n2024-03-01 00:10:00\t7.7\t4.0\n"
    ).encode()
    result = read_ammonit_csv(io.BytesIO(text), name="units.csv")
    assert result.frame["WS 80m_Avg"].to_list() == [7.5, 7.7]
    assert [(c.unit, c.height_m, c.statistic) for c in result.channels] == [
        ("m/s", 80.0, "avg"),
        ("°C", 2.0, "avg"),
    ]


def test_system_information_block_above_the_column_names() -> None:
    text = (
        b"# Ammonit Data Logger - System Information\n"
        b"# ----------------------------------------\n"
        b"# Data Logger Type                Meteo-40L\n"
        b"# Serial Number                   D240130\n"
        b"# Date/time                       2024-11-13 10:42:34 UTC\n"
        b"Date/time\t2024-11-13 10:42:34\n"
        b"Date/time\tV1;wind_speed;Avg\n"
        b"2024-11-13 00:00:00\t5.5\n"
    )
    result = read_ammonit_csv(io.BytesIO(text), name="sysinfo.csv")
    assert result.meta.logger_model == "Meteo-40L"
    assert result.meta.logger_serial == "D240130"
    assert result.meta.extra["first_data_line"] == 8
    assert result.frame["V1;wind_speed;Avg"].to_list() == [5.5]
    assert ammonit.sniff(text)


# --- sniffing ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(HERE.iterdir()), ids=lambda p: p.name)
def test_sniff_recognises_the_fixtures(path: Path) -> None:
    assert ammonit.sniff(path.read_bytes()[:8192])


CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file())


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_sniff_rejects_every_corpus_file(path: Path) -> None:
    assert not ammonit.sniff(path.read_bytes()[:8192])


def test_sniff_rejects_a_windographer_like_date_time_header() -> None:
    head = (
        b"Created by Windographer\n\nDate/Time\tSpd80mN\tSpd80mNStd\n09/01/2016 15:30\t8.3\t1.2\n"
    )
    assert not ammonit.sniff(head)


# --- bad input -----------------------------------------------------------------------


def test_letter_in_a_statistic_column_names_its_line() -> None:
    with pytest.raises(
        ParseError,
        match=r"meteo40_bad_number\.csv, line 3: column 'Anem 80m N;wind_speed;Avg': "
        r"expected a number, found '7\.0S'",
    ):
        read_ammonit_csv(HERE / "meteo40_bad_number.csv")


def test_impossible_time_label_names_its_line() -> None:
    with pytest.raises(ParseError, match=r"meteo40_bad_timestamp\.csv, line 3: .*00:61:00"):
        read_ammonit_csv(HERE / "meteo40_bad_timestamp.csv")


def test_file_without_date_time_header() -> None:
    with pytest.raises(ParseError, match=r"x\.csv: expected a column header line starting with"):
        read_ammonit_csv(io.BytesIO(b"Time\tA1_Avg\n2024-03-01 00:00:00\t1\n"), name="x.csv")


def test_corpus_toa5_is_not_an_ammonit_file() -> None:
    path = CORPUS / "TOA5" / "thyyppa__Toxx__DemoOutputToa5.dat"
    with pytest.raises(ParseError, match="expected a column header line starting with 'Date/time'"):
        read_ammonit_csv(path)
