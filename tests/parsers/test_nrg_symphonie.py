"""NRG SymphoniePRO text exports: corpus files, fixtures for each quirk, bad input.

Expected cells were read from the file text with awk (``awk -F'\\t' 'NR==242{print $22}'``),
not from this parser's output.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stationkit.errors import NotReadingsError, ParseError
from stationkit.parsers import nrg_logr, nrg_symphonie
from stationkit.parsers.nrg_symphonie import read_nrg_symphonie, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "NRG_SYMPRO_TXT"
FIX = FIXTURES / "nrg_symphonie"
SITE_835 = "nrgpy__nrgpy__004310_2022-03-17_00.00_000835_meas.txt"
SITE_837 = "nrgpy__nrgpy__004310_2022-03-17_10.10_000837_meas.txt"
DOG = "nrgpy__nrgpy__671225_SunnyDog_Test_Dev_meas_2025.06.16-2025.06.16.txt"
DOG_1 = "nrgpy__nrgpy__671225_SunnyDog_Test_Dev_meas_2025.06.16-2025.06.16-1.txt"

#: name -> (rows, frame width incl. timestamp, first label, last label, {(row, column): value})
EXPECTED: dict[str, tuple[int, int, str, str, dict[tuple[int, str], float]]] = {
    SITE_835: (
        370,
        64,
        "2022-03-17 00:00:00",
        "2022-03-17 06:09:00",
        {
            (0, "Ch13_Analog_40.00m_N_Avg_C"): 22.771816,
            (0, "Ch14_Analog_0.00m_N_Avg_hPa"): 1001.269797,
            (0, "Ch32_ModbusRTU_2.00m_S_Avg_W/m^2"): -1000.0,
            (0, "Ch15_Vane_10.00m_SSE_Avg_Deg"): 345.0,
            (58, "Ch2_Anem_85.00m_S_Avg_m/s"): 0.139,
            (58, "Ch20_Analog_0.00m_N_Avg_W/sqm"): 0.028254,
            (369, "Ch13_Analog_40.00m_N_Avg_C"): 22.795712,
            (369, "Ch14_Analog_0.00m_N_Avg_hPa"): 999.967386,
            (369, "Ch109_Calculated___Max_"): 0.68,
        },
    ),
    SITE_837: (
        240,
        64,
        "2022-03-17 10:10:00",
        "2022-03-17 14:09:00",
        {
            (0, "Ch13_Analog_40.00m_N_Avg_C"): 25.198933,
            (0, "Ch14_Analog_0.00m_N_Avg_hPa"): 998.441703,
            (0, "Ch20_Analog_0.00m_N_Avg_W/sqm"): 75.664724,
            (239, "Ch13_Analog_40.00m_N_Avg_C"): 23.676438,
            (239, "Ch14_Analog_0.00m_N_Avg_hPa"): 995.446156,
            (239, "Ch20_Analog_0.00m_N_Avg_W/sqm"): 5.763855,
        },
    ),
    DOG: (
        6,
        131,
        "2025-06-16 00:00:00",
        "2025-06-16 00:05:00",
        {
            (0, "Ch4_Total_0.00m_N_Sum_mm"): 0.0,
            (0, "Ch13_Vane_0.00m_N_Avg_Deg"): 343.79,
            (0, "Ch13_Vane_0.00m_N_GustDir_Deg"): 180.0,
            (0, "Ch16_Analog_0.00m_N_Avg_hPa"): 1006.671498,
            (2, "Ch1_Anem_0.00m_N_Avg_m/s"): 1.35,
            (2, "Ch17_Analog_1.00m_S_Avg_%RH"): 94.27948,
            (2, "Ch100_Calculated___Avg_Degrees"): 106.12,
            (5, "Ch13_Vane_0.00m_N_Avg_Deg"): 135.12,
            (5, "Ch16_Analog_0.00m_N_Avg_hPa"): 1006.708759,
        },
    ),
    DOG_1: (
        5,
        131,
        "2025-06-16 00:06:00",
        "2025-06-16 00:10:00",
        {
            (0, "Ch1_Anem_0.00m_N_Avg_m/s"): 1.35,
            (0, "Ch16_Analog_0.00m_N_Avg_hPa"): 1006.74602,
            (4, "Ch16_Analog_0.00m_N_Avg_hPa"): 1006.72739,
        },
    ),
}


def _ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


# --- corpus -----------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name)
def test_every_corpus_file_reads(path: Path) -> None:
    result = read_nrg_symphonie(path)
    assert sniff(path.read_bytes()[:8192])
    assert result.rows > 0
    assert result.frame.schema["timestamp"] == pl.Datetime("us")
    assert result.frame.get_column("timestamp").is_sorted()
    assert result.meta.timestamp_is_end_of_period is False
    assert result.meta.utc_offset_hours is not None
    assert all(c.statistic is not None for c in result.channels)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_cells(name: str) -> None:
    rows, width, first, last, cells = EXPECTED[name]
    result = read_nrg_symphonie(CORPUS / FOLDER / name)
    assert result.rows == rows
    assert result.frame.width == width
    stamps = result.frame.get_column("timestamp")
    assert stamps[0] == _ts(first)
    assert stamps[-1] == _ts(last)
    for (row, column), value in cells.items():
        assert result.frame.get_column(column)[row] == pytest.approx(value, abs=1e-9), column


def test_corpus_header_metadata() -> None:
    result = read_nrg_symphonie(CORPUS / FOLDER / SITE_835)
    meta = result.meta
    assert meta.logger_model == "SymphoniePRO Logger (8206)"
    assert meta.logger_serial == "820604310"
    assert meta.logger_os == "3.4.1"
    assert meta.station_name == "Tech Services test"
    assert meta.table == "Measurements"
    assert meta.utc_offset_hours == -5.0
    assert meta.interval_s is None  # the export states none
    extra = meta.extra
    assert extra["site_number"] == "004310"
    assert extra["time_zone"] == "UTC-5:00"
    assert extra["dialect"] == "export_service"
    assert extra["site_properties"]["Location"] == "Hinesburg, VT_"
    assert extra["export_parameters"]["Filters Applied"] == "False"
    assert extra["preamble"]["Export version"] == "3"
    assert extra["ipack_history"] == [
        {
            "Date": "2022-03-17 00:00:00",
            "Model": "iPackACCESS (7984)",
            "Serial Number": "716900805",
            "Firmware": "2.2.0",
        }
    ]
    assert len(extra["sensor_history"]) == 15  # grep -c "^Channel:"
    assert [r["Channel"] for r in extra["sensor_history"]][:3] == ["2", "3", "4"]


def test_corpus_channel_metadata() -> None:
    result = read_nrg_symphonie(CORPUS / FOLDER / SITE_835)
    by_name = {c.name: c for c in result.channels}
    avg = by_name["Ch2_Anem_85.00m_S_Avg_m/s"]
    assert (avg.statistic, avg.unit, avg.height_m) == ("avg", "m/s", 85.0)
    assert avg.attrs["channel"] == 2
    assert avg.attrs["scale_factor"] == 0.0935
    assert avg.attrs["offset"] == 0.139
    assert avg.attrs["serial_number"] == "2020-02-09"
    assert avg.attrs["bearing_deg"] == 189.0
    assert avg.attrs["bearing_label"] == "S"
    assert avg.attrs["description"] == "NRG S1"
    assert avg.attrs["history"][0]["Signal Type"] == "Pulsed"
    vane = by_name["Ch15_Vane_10.00m_SSE_GustDir_Deg"]
    assert vane.statistic == "gust"
    assert vane.attrs["nrg_statistic"] == "GustDir"
    assert vane.attrs["total_direction_offset_deg"] == 343.54
    assert vane.attrs["scale_factor"] == 144.0
    # empty bearing ('__') and empty height and bearing ('___')
    ch3 = by_name["Ch3_Anem_10.00m__SD_m/s"]
    assert (ch3.statistic, ch3.height_m, ch3.attrs["serial_number"]) == ("sd", 10.0, "TEST02_02-10")
    assert "bearing_label" not in ch3.attrs
    ch4 = by_name["Ch4_Anem___Max_m/s"]
    assert (ch4.statistic, ch4.unit, ch4.height_m) == ("max", "m/s", None)
    no_unit = by_name["Ch42_ModbusRTU_1.00m_S_Min_"]
    assert (no_unit.statistic, no_unit.unit, no_unit.height_m) == ("min", None, 1.0)
    calc = by_name["Ch100_Calculated___Avg_w/m^2"]
    assert calc.attrs["sensor"]["Math Function"] == "Dni"


def test_corpus_minus_thousand_is_kept_as_logged() -> None:
    result = read_nrg_symphonie(CORPUS / FOLDER / SITE_835)
    column = result.frame.get_column("Ch32_ModbusRTU_2.00m_S_Avg_W/m^2")
    assert column.null_count() == 0
    assert (column == -1000.0).all()
    assert any(
        "Ch32_ModbusRTU_2.00m_S_Avg_W/m^2" in w and "-1000" in w for w in result.meta.warnings
    )


def test_corpus_cloud_export_totalizer_and_zone() -> None:
    result = read_nrg_symphonie(CORPUS / FOLDER / DOG)
    assert result.meta.utc_offset_hours == -7.0
    assert result.meta.logger_os == "3.4.7"
    by_name = {c.name: c for c in result.channels}
    rain = by_name["Ch4_Total_0.00m_N_Sum_mm"]
    assert (rain.statistic, rain.unit, rain.attrs["scale_factor"]) == ("sum", "mm", 0.254)
    assert rain.attrs["description"] == "Rainwise Rain Bucket"
    # the export has no final line break: the last row is complete and kept
    assert any("no line break" in w for w in result.meta.warnings)


@pytest.mark.parametrize(("first", "second"), [(SITE_835, SITE_837), (DOG, DOG_1)])
def test_consecutive_files_concatenate(first: str, second: str) -> None:
    a = read_nrg_symphonie(CORPUS / FOLDER / first)
    b = read_nrg_symphonie(CORPUS / FOLDER / second)
    assert [c.name for c in a.channels] == [c.name for c in b.channels]
    a_stamps = a.frame.get_column("timestamp")
    b_stamps = b.frame.get_column("timestamp")
    assert a_stamps.max() < b_stamps.min()  # type: ignore[operator]
    joined = pl.concat([a.frame, b.frame]).get_column("timestamp")
    assert joined.is_sorted() and joined.n_unique() == joined.len()


def test_cloud_companions_continue_at_one_minute() -> None:
    a = read_nrg_symphonie(CORPUS / FOLDER / DOG).frame.get_column("timestamp")
    b = read_nrg_symphonie(CORPUS / FOLDER / DOG_1).frame.get_column("timestamp")
    assert (b[0] - a[-1]).total_seconds() == 60


def test_sniff_rejects_other_formats() -> None:
    others = [
        p
        for folder in sorted(CORPUS.iterdir())
        if folder.is_dir() and folder.name != FOLDER
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    assert others
    for path in others:
        assert not sniff(path.read_bytes()[:8192]), path.name


def test_sniff_rejects_logr_fixtures_and_logr_rejects_exports() -> None:
    for path in sorted((FIXTURES / "nrg_logr").iterdir()):
        assert not sniff(path.read_bytes()[:8192]), path.name
    for path in corpus_files(FOLDER):
        assert not nrg_logr.sniff(path.read_bytes()[:8192]), path.name


# --- the tiny fixture, exactly ----------------------------------------------

TINY_COLUMNS = [
    "Ch1_Anem_60.00m_W_Avg_m/s",
    "Ch1_Anem_60.00m_W_SD_m/s",
    "Ch13_Vane_57.00m_S_Avg_Deg",
    "Ch13_Vane_57.00m_S_GustDir_Deg",
    "Ch14_Analog_2.00m_N_Avg_hPa",
]


def _tiny_expected() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [
                datetime(2024, 5, 2, 0, 0),
                datetime(2024, 5, 2, 0, 10),
                datetime(2024, 5, 2, 0, 20),
            ],
            TINY_COLUMNS[0]: [5.123, 6.0, 7.25],
            TINY_COLUMNS[1]: [0.456, None, 0.5],
            TINY_COLUMNS[2]: [270.5, 265.0, None],
            TINY_COLUMNS[3]: [268.0, -1000.0, 90.0],
            TINY_COLUMNS[4]: [1019.9999, 1013.25, 1012.0],
        },
        schema={"timestamp": pl.Datetime("us"), **{c: pl.Float64 for c in TINY_COLUMNS}},
    )


def test_tiny_exact_table() -> None:
    result = read_nrg_symphonie(FIX / "export_service_tiny.txt")
    assert_frame_equal(result.frame, _tiny_expected())
    assert [(c.name, c.statistic, c.unit, c.height_m) for c in result.channels] == [
        (TINY_COLUMNS[0], "avg", "m/s", 60.0),
        (TINY_COLUMNS[1], "sd", "m/s", 60.0),
        (TINY_COLUMNS[2], "avg", "Deg", 57.0),
        (TINY_COLUMNS[3], "gust", "Deg", 57.0),
        (TINY_COLUMNS[4], "avg", "hPa", 2.0),
    ]


def test_tiny_current_sensor_is_latest_effective_date() -> None:
    result = read_nrg_symphonie(FIX / "export_service_tiny.txt")
    anem = result.channels[0].attrs
    assert anem["scale_factor"] == 0.094
    assert anem["offset"] == 0.14
    assert anem["serial_number"] == "94120000002"
    assert anem["effective_date"] == "2024-05-01 12:00:00"
    assert [r["Serial Number"] for r in anem["history"]] == ["94120000001", "94120000002"]
    # a channel the Sensor History does not describe: the column name's height
    baro = result.channels[4]
    assert baro.attrs == {
        "channel": 14,
        "type": "Analog",
        "bearing_label": "N",
        "nrg_statistic": "Avg",
    }
    # the latest Logger History record names the logger
    assert (result.meta.logger_serial, result.meta.logger_os) == ("820600002", "3.4.7")
    assert len(result.meta.extra["logger_history"]) == 2


def test_tiny_tidy_rows() -> None:
    tidy = read_nrg_symphonie(FIX / "export_service_tiny.txt").tidy()
    assert tidy.height == 15
    gust = tidy.filter(pl.col("channel") == TINY_COLUMNS[3])
    assert gust.get_column("statistic").to_list() == ["gust"] * 3


def test_path_and_file_like_agree() -> None:
    path = FIX / "export_service_tiny.txt"
    from_path = read_nrg_symphonie(path)
    from_stream = read_nrg_symphonie(io.BytesIO(path.read_bytes()), name="member.txt")
    assert_frame_equal(from_path.frame, from_stream.frame)
    assert from_path.channels == from_stream.channels
    assert from_path.meta.extra == from_stream.meta.extra


def test_corpus_path_and_file_like_agree() -> None:
    path = CORPUS / FOLDER / DOG
    with open(path, "rb") as fh:
        from_stream = read_nrg_symphonie(fh)
    assert_frame_equal(read_nrg_symphonie(path).frame, from_stream.frame)


# --- quirks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("bom_cr_line_ends.txt", "utf-8-sig"),
        ("utf16_crlf.txt", "utf-16"),
        ("trailing_tabs.txt", "utf-8"),
        ("no_final_newline.txt", "utf-8"),
    ],
)
def test_quirk_files_give_the_tiny_table(name: str, encoding: str) -> None:
    path = FIX / name
    assert sniff(path.read_bytes()[:8192])
    result = read_nrg_symphonie(path)
    assert_frame_equal(result.frame, _tiny_expected())
    assert result.meta.extra["encoding"] == encoding
    assert result.meta.utc_offset_hours == -5.0


def test_trailing_tabs_are_reported() -> None:
    result = read_nrg_symphonie(FIX / "trailing_tabs.txt")
    assert any("trailing TAB" in w for w in result.meta.warnings)


def test_truncated_last_line_is_dropped_with_a_warning() -> None:
    result = read_nrg_symphonie(FIX / "truncated_last_line.txt")
    assert_frame_equal(result.frame, _tiny_expected().head(2))
    assert any("line 86: truncated last line dropped" in w for w in result.meta.warnings)


def test_duplicate_rows_are_kept_and_reported() -> None:
    result = read_nrg_symphonie(FIX / "duplicate_rows.txt")
    assert result.rows == 4
    stamps = result.frame.get_column("timestamp")
    assert stamps[1] == stamps[2] == datetime(2024, 5, 2, 0, 10)
    assert any("line 85: 2 rows share a timestamp" in w for w in result.meta.warnings)


def test_latin1_units() -> None:
    result = read_nrg_symphonie(FIX / "latin1_units.txt")
    assert result.meta.extra["encoding"] == "cp1252"
    assert result.channels[2].name == "Ch13_Vane_57.00m_S_Avg_\u00b0"
    assert result.channels[2].unit == "\u00b0"
    assert result.frame.get_column("Ch13_Vane_57.00m_S_Avg_\u00b0").to_list() == [
        270.5,
        265.0,
        None,
    ]


def test_missing_markers_are_whole_fields_only() -> None:
    frame = read_nrg_symphonie(FIX / "export_service_tiny.txt").frame
    # empty field and 'nan' are null; 1019.9999 keeps its digits
    assert frame.get_column(TINY_COLUMNS[1])[1] is None
    assert frame.get_column(TINY_COLUMNS[2])[2] is None
    assert frame.get_column(TINY_COLUMNS[4])[0] == 1019.9999


def test_text_column_is_skipped() -> None:
    result = read_nrg_symphonie(FIX / "text_column.txt")
    assert result.meta.skipped_channels == ("Ch99_Status___Text_",)
    assert_frame_equal(result.frame, _tiny_expected())


def test_desktop_dialect() -> None:
    path = FIX / "desktop_dialect_crlf.txt"
    assert sniff(path.read_bytes()[:8192])
    result = read_nrg_symphonie(path)
    meta = result.meta
    assert meta.extra["dialect"] == "desktop"
    assert meta.extra["preamble_title"] == "SymphoniePRO Desktop Application"
    assert meta.utc_offset_hours == 5.5
    assert meta.logger_serial == "820600003"
    assert meta.extra["ipack_history"] == []
    # no blank lines: the repeated 'Channel' key starts the second record
    assert [r["Channel"] for r in meta.extra["sensor_history"]] == ["2", "3"]
    second = result.channels[1]
    assert (second.height_m, second.attrs["bearing_deg"], second.attrs["serial_number"]) == (
        40.0,
        90.0,
        "179500000002",
    )
    assert result.frame.get_column("Ch3_Anem_40.00m_E_Avg_m/s").to_list() == [3.9, 3.8]
    assert result.frame.get_column("timestamp").to_list() == [
        datetime(2023, 6, 1, 0, 0),
        datetime(2023, 6, 1, 0, 10),
    ]


def test_interval_taken_from_the_header_when_stated(tmp_path: Path) -> None:
    text = (FIX / "export_service_tiny.txt").read_text()
    text = text.replace(
        "Filters Applied:\tFalse\n", "Filters Applied:\tFalse\nStatistical Interval (min):\t10\n"
    )
    path = tmp_path / "with_interval.txt"
    path.write_text(text, newline="")
    assert read_nrg_symphonie(path).meta.interval_s == 600.0


def test_time_zone_that_is_not_an_offset_is_reported(tmp_path: Path) -> None:
    text = (FIX / "export_service_tiny.txt").read_text().replace("UTC-5:00", "Eastern")
    path = tmp_path / "zone.txt"
    path.write_text(text, newline="")
    result = read_nrg_symphonie(path)
    assert result.meta.utc_offset_hours is None
    assert any("'Eastern'" in w for w in result.meta.warnings)


# --- bad input ----------------------------------------------------------------


def test_events_export_is_not_readings() -> None:
    with pytest.raises(NotReadingsError, match="Events export: holds events, not readings"):
        read_nrg_symphonie(FIX / "events_export.txt")


def test_text_in_a_numeric_column() -> None:
    with pytest.raises(
        ParseError,
        match=(
            r"bad_number.txt, line 85: column 'Ch13_Vane_57.00m_S_Avg_Deg': "
            r"expected a number, found 'ERR'"
        ),
    ):
        read_nrg_symphonie(FIX / "bad_number.txt")


def test_header_without_data_line() -> None:
    with pytest.raises(ParseError, match=r"no_data_line.txt, line \d+: expected a 'Data' line"):
        read_nrg_symphonie(FIX / "no_data_line.txt")


def test_a_logr_file_is_not_a_symphoniepro_export() -> None:
    with pytest.raises(ParseError, match="expected an NRG SymphoniePRO text export"):
        read_nrg_symphonie(FIXTURES / "nrg_logr" / "diagnostics.diag")


def test_binary_rld_is_not_read_as_text() -> None:
    rld = corpus_files("NRG_RLD")[0]
    with pytest.raises(ParseError, match="expected a 'Data' line"):
        read_nrg_symphonie(rld)


def test_first_column_must_be_timestamp(tmp_path: Path) -> None:
    text = (FIX / "export_service_tiny.txt").read_text().replace("Timestamp\t", "Time\t")
    path = tmp_path / "no_timestamp.txt"
    path.write_text(text, newline="")
    with pytest.raises(
        ParseError, match=r"line 83: expected 'Timestamp' as the first column, found 'Time'"
    ):
        read_nrg_symphonie(path)


def test_duplicate_column_names(tmp_path: Path) -> None:
    text = (FIX / "export_service_tiny.txt").read_text()
    text = text.replace("Ch1_Anem_60.00m_W_SD_m/s", "Ch1_Anem_60.00m_W_Avg_m/s")
    path = tmp_path / "dup.txt"
    path.write_text(text, newline="")
    with pytest.raises(
        ParseError, match=r"line 83: duplicate column name 'Ch1_Anem_60.00m_W_Avg_m/s'"
    ):
        read_nrg_symphonie(path)


def test_format_constant() -> None:
    assert nrg_symphonie.FORMAT == "nrg_symphonie"
