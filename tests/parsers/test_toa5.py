"""TOA5: every corpus file, and each quirk of the format on a fixture of our own."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.errors import ParseError, UnknownFormatError
from stationkit.parsers import parse_file
from stationkit.parsers.toa5 import read_toa5, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

TOA5 = FIXTURES / "toa5"
BAD = "haukex__pytoa5__TestLogger_Hourly_Bad12.dat"


def _data_lines(path: Path) -> int:
    """Data records as the text has them: non-blank lines after the 4 header lines,
    less a last line without a line break (it may be cut short: dropped)."""
    data = path.read_bytes()
    lines = data.replace(b"\r\n", b"\n").split(b"\n")[4:]
    unproven = not data.endswith((b"\n", b"\r")) and not data.endswith(b'"')
    return sum(1 for line in lines if line.strip()) - unproven


@pytest.mark.parametrize(
    "path", [p for p in corpus_files("TOA5") if p.name != BAD], ids=lambda p: p.name[:50]
)
def test_every_corpus_file_parses_with_every_record(path: Path) -> None:
    result = read_toa5(path)
    assert result.rows == _data_lines(path)
    assert result.frame.columns[0] == "timestamp"
    assert result.frame.get_column("timestamp").null_count() == 0
    assert sniff(path.read_bytes()[:8192])


def test_corpus_cr1000_wind_vector_statistics_and_values() -> None:
    path = (
        CORPUS
        / "TOA5"
        / "LouisPauchet__UNIS_AWS_CR1000_SN6134_ClimatVUE50__SN6134_ClimatVUE_ClimatVIEW_1h.dat"
    )
    r = read_toa5(path)
    stats = {c.name: c.statistic for c in r.channels}
    assert stats["WS_ms_S_WVT"] == "avg"
    assert stats["WindDir_D1_WVT"] == "avg"
    assert stats["WindDir_SD1_WVT"] == "sd"
    assert stats["BattV_Min"] == "min"
    assert stats["Rain_mm_Tot"] == "sum"
    assert stats["RH"] == "sample"
    first = r.frame.row(0, named=True)
    # "2024-07-21 00:00:00",2270,13.48,58.16,0,3.662,19.99,6.521,3.662,8.74,8.441111,1005.59,...
    assert first["timestamp"] == datetime(2024, 7, 21, 0, 0)
    assert first["BattV_Min"] == 13.48
    assert first["WS_ms_S_WVT"] == 3.662
    assert first["WindDir_SD1_WVT"] == 6.521
    assert first["VP_mbar_Avg"] == 8.441111
    assert r.meta.station_name == "SN6134_ClimatVUE"
    assert r.meta.logger_model == "CR1000"
    assert r.meta.logger_serial == "6316"
    assert r.meta.logger_os == "CR1000.Std.32.06"
    assert r.meta.program == "SN6134_ClimatVUE50_LP.CR1"
    assert r.meta.table == "ClimatVIEW_1h"
    assert "RECORD" not in [c.name for c in r.channels]
    # the last line is duplicated in the file: both rows are read (the pipeline dedups)
    last_two = r.frame.tail(2).get_column("timestamp").to_list()
    assert last_two[0] == last_two[1] == datetime(2024, 8, 5, 9, 0)
    # quoted "NAN" is missing
    assert r.frame.tail(1).get_column("SlrFD_W_Avg")[0] is None


def test_corpus_denormals_trimmed_fractions_and_text_columns() -> None:
    path = CORPUS / "TOA5" / "alextsfox__camp2ascii__TOA5_TOB1_full16_2026_02_19_0946.dat"
    r = read_toa5(path)
    first = r.frame.row(0, named=True)
    assert first["timestamp"] == datetime(2026, 2, 19, 9, 46, 6, 5000)
    assert r.frame.get_column("timestamp")[1] == datetime(2026, 2, 19, 9, 46, 6, 10000)
    assert first["temp_Avg(3)"] == 4.09545187592563e-312
    assert first["temp_Avg(1)"] is None
    assert first["toggle"] == -1.0
    # strings, BOOL8 bit strings and the TMx timestamp are text: skipped, listed
    assert set(r.meta.skipped_channels) == {
        "text_val", "temp_TMx(1)", "text_val_2", "temp_bool8(1)", "temp_bool8(2)", "text_val_3",
    }  # fmt: skip


def test_corpus_status_table_with_commas_inside_quotes() -> None:
    r = read_toa5(
        CORPUS
        / "TOA5"
        / "LouisPauchet__UNIS_AWS_CR1000_SN6134_ClimatVUE50__CR1000_SN6134_Status.dat"
    )
    assert r.rows == 2
    assert "OSVersion" in r.meta.skipped_channels
    assert r.frame.get_column("timestamp")[0].microsecond == 190000


def test_corpus_spreadsheet_resave_with_zone_and_day_first() -> None:
    r = read_toa5(
        CORPUS / "TOA5" / "brightwind-dev__brightwind__campbell_scientific_demo_data1.csv"
    )
    stamps = r.frame.get_column("timestamp")
    assert stamps.dtype == pl.Datetime("us", "UTC")
    assert stamps[0] == datetime(2016, 1, 9, 15, 30, tzinfo=UTC)
    assert r.frame.get_column("Spd80mN")[0] == 8.37
    assert "Site" in r.meta.skipped_channels
    assert {c.name: c.statistic for c in r.channels}["Dir78mSStd"] == "sd"


def test_corpus_duplicate_column_is_a_clear_error() -> None:
    with pytest.raises(
        ParseError, match=r"Bad12\.dat, line 2: duplicate column name 'AirT_C\(42\)'"
    ):
        read_toa5(CORPUS / "TOA5" / BAD)


def test_minimal_fixture_exact_table() -> None:
    r = read_toa5(TOA5 / "minimal_crlf.dat")
    assert [c.name for c in r.channels] == [
        "WS_80m_Avg",
        "WS_80m_Std",
        "AirT_C(2)",
        "Rain_Tot",
        "WD_SD1_WVT",
    ]
    assert [c.statistic for c in r.channels] == ["avg", "sd", "sample", "sum", "sd"]
    assert [c.unit for c in r.channels] == ["m/s", "m/s", "Deg C", "mm", "deg"]
    assert r.meta.skipped_channels == ("Note",)
    expected = pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 1, 0, 10), datetime(2024, 1, 1, 0, 20, 0, 500000)],
            "WS_80m_Avg": [8.123, None],  # INF (overrange) is missing
            "WS_80m_Std": [None, 0.912],
            "AirT_C(2)": [1019.9999, -9999.0],  # whole-field markers only; -9999 is not TOA5's
            "Rain_Tot": [0.0, 9999.0],
            "WD_SD1_WVT": [12.5, None],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert r.frame.equals(expected)


def test_path_and_file_like_give_the_same_result() -> None:
    path = TOA5 / "minimal_crlf.dat"
    a = read_toa5(path)
    b = read_toa5(io.BytesIO(path.read_bytes()), name="member.dat")
    assert a.frame.equals(b.frame)
    assert a.channels == b.channels


def test_bom_lf_and_empty_units() -> None:
    r = read_toa5(TOA5 / "bom_lf_empty_units.dat")
    assert r.rows == 2
    assert r.channels[0].unit is None and r.channels[0].statistic is None
    assert r.frame.get_column("WS").to_list() == [5.5, 6.5]


def test_truncated_last_line_keeps_complete_rows_with_a_warning() -> None:
    r = read_toa5(TOA5 / "truncated_last_line.dat")
    assert r.rows == 2
    assert r.frame.get_column("T_Avg").to_list() == [3.25, 3.5]
    assert any("line 7: truncated last line dropped" in w for w in r.meta.warnings)


def test_garbage_inside_a_row_names_the_line() -> None:
    with pytest.raises(
        ParseError, match=r"garbage_in_row\.dat, line 6: column 'WS_Avg': expected a number"
    ):
        read_toa5(TOA5 / "garbage_in_row.dat")


def test_duplicate_column_fixture() -> None:
    with pytest.raises(
        ParseError, match=r"line 2: duplicate column name 'WS_Avg' \(fields 3 and 4\)"
    ):
        read_toa5(TOA5 / "duplicate_column.dat")


def test_spreadsheet_fixture_unquoted_padded_and_trailing_blank_line() -> None:
    r = read_toa5(TOA5 / "spreadsheet_resave.dat")
    assert r.rows == 2
    assert r.frame.get_column("timestamp").to_list() == [
        datetime(2016, 1, 13, 15, 30, tzinfo=UTC),
        datetime(2016, 1, 13, 15, 40, tzinfo=UTC),
    ]
    assert r.frame.get_column("Dir80m").to_list() == [200.5, 201.0]
    assert r.meta.skipped_channels == ("Site",)


def test_garbage_file_is_an_unknown_format_listing_the_formats() -> None:
    with pytest.raises(
        UnknownFormatError,
        match=r"garbage\.bin: a file no parser recognises; formats stationkit reads: .*toa5",
    ):
        parse_file(TOA5 / "garbage.bin")


def test_header_only_file_has_no_rows() -> None:
    data = b'"TOA5","a","CR6","1","os","CPU:p","1","T"\n"TIMESTAMP","RECORD","X"\n"TS","RN",""\n"","","Avg"\n'
    r = read_toa5(io.BytesIO(data))
    assert r.rows == 0 and [c.name for c in r.channels] == ["X"]


def test_short_header_is_an_error() -> None:
    with pytest.raises(
        ParseError, match=r"<stream>, line 3: expected 4 TOA5 header lines, found 2"
    ):
        read_toa5(io.BytesIO(b'"TOA5","a"\n"TIMESTAMP"\n'))


def test_values_survive_exactly() -> None:
    r = read_toa5(TOA5 / "minimal_crlf.dat")
    assert math.isclose(r.frame.get_column("AirT_C(2)")[0], 1019.9999, rel_tol=0, abs_tol=0)


def test_a_short_row_in_the_middle_is_an_error_naming_its_line() -> None:
    # polars would pad it with nulls; a missing field is not a missing value
    with pytest.raises(ParseError, match=r"short_row\.dat, line 6: expected 4 fields, found 3"):
        read_toa5(TOA5 / "short_row.dat")


def test_lone_cr_line_ends() -> None:
    r = read_toa5(TOA5 / "cr_only.dat")
    assert r.frame.get_column("WS_Avg").to_list() == [5.5, 6.5]
    assert r.frame.get_column("timestamp")[1] == datetime(2024, 1, 1, 0, 20)


def test_a_file_cut_inside_its_last_number_drops_that_line() -> None:
    # "...,8.1,12." is how a file fetched while the logger writes it ends: 12.0
    # would be a wrong reading, so the line goes (the next version brings it)
    r = read_toa5(TOA5 / "cut_in_last_number.dat")
    assert r.frame.get_column("AirT_C_Avg").to_list() == [12.93]
    assert r.meta.warnings == (
        "line 6: truncated last line dropped (no line break, and its last value '12.' "
        "may be cut short, as in a file copied while the logger writes it; "
        "its next version brings the line)",
    )


def test_quoted_nan_is_missing() -> None:
    r = read_toa5(TOA5 / "quoted_nan.dat")
    assert r.frame.get_column("WS_ms_Avg").to_list() == [None, 8.1]
    assert r.frame.get_column("AirT_C_Avg").to_list() == [12.93, None]


def test_mixed_cr_lf_crlf_line_ends_read_every_row() -> None:
    r = read_toa5(TOA5 / "mixed_line_ends.dat")
    assert r.frame.get_column("AirT_C_Avg").to_list() == [12.93, 12.5, 12.6, 12.7]
    assert r.frame.get_column("timestamp")[3] == datetime(2024, 2, 1, 0, 40)


def test_mixed_line_ends_with_a_bad_row_name_its_line() -> None:
    data = (TOA5 / "mixed_line_ends.dat").read_bytes().replace(b",8.2,12.6", b",8.2,x12.6")
    with pytest.raises(ParseError, match=r"f\.dat, line 7: column 'AirT_C_Avg': expected a number"):
        read_toa5(io.BytesIO(data), name="f.dat")


def test_an_absurdly_long_line_is_refused_by_length(tmp_path: Path) -> None:
    path = tmp_path / "huge.dat"
    head = (TOA5 / "minimal_crlf.dat").read_bytes()
    path.write_bytes(head + b"9" * 3_000_000 + b"\r\n")
    lines = head.count(b"\n")
    with pytest.raises(
        ParseError,
        match=rf"huge\.dat, line {lines + 1}: a line of 3000000 bytes, far longer than a row of "
        r"this file's \d+ columns can be \(at most 65536 bytes\); the file is refused",
    ):
        read_toa5(path)
