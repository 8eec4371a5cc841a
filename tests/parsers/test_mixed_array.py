"""Campbell mixed-array files: corpus, the Toxx array-compatible CSV against its
TOA5 sibling, fixtures, errors, sniffing."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.errors import ParseError
from stationkit.parsers.mixed_array import read_mixed_array, sniff
from stationkit.parsers.toa5 import read_toa5
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "MIXED_ARRAY"
TOXX = CORPUS / FOLDER / "thyyppa__Toxx__DemoOutputCSV.dat"
GNDRAD = CORPUS / FOLDER / "MRE-Code-Hub__extract_loggernet__6-GndRadData.dat"
FRAGMENT = CORPUS / FOLDER / "MRE-Code-Hub__extract_loggernet__1-GndRadData.dat"
CR10 = CORPUS / FOLDER / "koffertfisk__campbellsciparser__csv_testdata_mixed_array_10_rows.dat"
TOA5_SIBLING = CORPUS / "TOA5" / "thyyppa__Toxx__DemoOutputToa5.dat"
HERE = FIXTURES / "mixed_array"
#: LoggerNet array-compatible CSV options of the Toxx file: Year, Day, Hour/Minutes, Seconds
TOXX_ARRAYS = {
    "101": [
        "Year",
        "Day",
        "Hour_Minute",
        "Seconds",
        "panel_temp",
        "battery_voltage",
        "battery_voltage_Min",
    ]
}
TWO_ARRAYS = {
    "203": ["Year", "Day", "Hour_Minute", "WS_Avg", "RH"],
    "204": ["Year", "Day", "Hour_Minute", "A", "B", "C", "D", "E"],
}


def dt(*args: int) -> datetime:
    return datetime(*args)


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name)
def test_every_corpus_file_sniffs_and_reads_or_explains(path: Path) -> None:
    assert sniff(path.read_bytes()[:8192])
    if path == FRAGMENT:
        with pytest.raises(ParseError, match="partial writes"):
            read_mixed_array(path)
    else:
        assert read_mixed_array(path).rows > 0


def test_toxx_with_its_column_list_gives_the_same_readings_as_toa5() -> None:
    result = read_mixed_array(TOXX, arrays=TOXX_ARRAYS)
    toa5 = read_toa5(TOA5_SIBLING)
    assert result.frame.equals(toa5.frame)
    assert [c.name for c in result.channels] == [c.name for c in toa5.channels]
    assert result.meta.warnings == ()
    assert result.meta.extra["arrays"]["101"]["seconds_field"] is True


def test_toxx_without_names_reads_positionally() -> None:
    result = read_mixed_array(TOXX)
    assert [c.name for c in result.channels] == ["A101_F05", "A101_F06", "A101_F07", "A101_F08"]
    # line 1: 101,2020,68,1935,0,26.86,12.94,12.94 (2020 is a leap year: day 68 = 8 March)
    assert result.frame.row(0) == (dt(2020, 3, 8, 19, 35), 0.0, 26.86, 12.94, 12.94)
    # last line: 101,2020,73,1800,0,27.09,12.93,12.93
    assert result.frame.row(-1) == (dt(2020, 3, 13, 18, 0), 0.0, 27.09, 12.93, 12.93)
    assert result.frame.height == 1422
    assert any("no column names given" in w for w in result.meta.warnings)
    assert result.channels[0].attrs == {"array_id": "101", "field": 5}


def test_gndrad_two_interleaved_arrays() -> None:
    result = read_mixed_array(GNDRAD)
    frame = result.frame
    # 300 one-minute records of array 213 (33 fields) and one daily record of
    # array 111 (44 fields) at 2359, which shares its timestamp with a 213 record
    assert frame.shape == (300, 1 + 29 + 40)
    assert result.meta.extra["arrays"]["213"]["rows"] == 300
    assert result.meta.extra["arrays"]["111"]["rows"] == 1
    # line 1: 213,2010,48,2200,240.21,98.007,255.09,.071 (day 48 = 17 February)
    first = frame.row(0, named=True)
    assert first["timestamp"] == dt(2010, 2, 17, 22, 0)
    assert (first["A213_F05"], first["A213_F08"]) == (240.21, 0.071)
    assert first["A111_F05"] is None
    # line 120: 213,2010,48,2359,233.96,... and line 121: 111,2010,48,2359,247.41,...,223.2
    daily = frame.filter(pl.col("timestamp") == dt(2010, 2, 17, 23, 59)).row(0, named=True)
    assert (daily["A213_F05"], daily["A111_F05"], daily["A111_F44"]) == (233.96, 247.41, 223.2)
    assert frame.get_column("A111_F05").null_count() == 299
    # last line: 213,2010,49,259,231.32,-3.4539,...
    last = frame.row(-1, named=True)
    assert (last["timestamp"], last["A213_F05"], last["A213_F06"]) == (
        dt(2010, 2, 18, 2, 59),
        231.32,
        -3.4539,
    )


def test_cr10_two_digit_years_and_sentinels() -> None:
    result = read_mixed_array(CR10)
    frame = result.frame
    assert frame.height == 9  # line 10 (no line break) is dropped
    # line 2: 204,12,330,2102,-6999,-6999,6999,63.07,...,56.41,.22 (2012 day 330 = 25 Nov)
    row = frame.filter(pl.col("timestamp") == dt(2012, 11, 25, 21, 2)).row(0, named=True)
    assert (row["A204_F05"], row["A204_F06"], row["A204_F07"]) == (None, None, None)
    assert (row["A204_F08"], row["A204_F13"]) == (63.07, 0.22)
    # line 9: 204,12,330,2215,...,-.22
    row = frame.filter(pl.col("timestamp") == dt(2012, 11, 25, 22, 15)).row(0, named=True)
    assert row["A204_F13"] == -0.22
    # line 10 (no line break): 210,16,160,1045,782,...,1557,1016 -- "1016" may be
    # the start of "1016.5": the line is dropped, and array 210 with it
    assert not any(c.startswith("A210_") for c in frame.columns)
    assert any(
        w.startswith(
            "line 10: truncated last line dropped (no line break, and its last value '1016'"
        )
        for w in result.meta.warnings
    )


def test_fragment_file_is_refused_clearly() -> None:
    with pytest.raises(ParseError, match=r"line 1: no complete mixed-array record: all 3 lines"):
        read_mixed_array(FRAGMENT)


def test_path_and_file_like() -> None:
    stream = read_mixed_array(io.BytesIO(GNDRAD.read_bytes()), name="g.dat")
    assert stream.frame.equals(read_mixed_array(GNDRAD).frame)


def test_two_arrays_exact_table() -> None:
    result = read_mixed_array(HERE / "two_arrays_crlf.dat", arrays=TWO_ARRAYS)
    expected = pl.DataFrame(
        {
            "timestamp": [
                dt(2012, 11, 25, 23, 50),
                dt(2012, 11, 25, 23, 52),
                dt(2012, 11, 26, 0, 0),  # 2400 on day 330
                dt(2012, 11, 26, 0, 10),  # unpadded HHMM "10"
                dt(2012, 11, 26, 0, 20),
            ],
            "WS_Avg": [2.258, None, 2.331, 2.296, 2.368],
            "RH": [66.19, None, -6999.5, 57.66, 51.34],  # -6999.5 is not the sentinel
            "A": [None, None, None, None, None],  # -6999
            "B": [None, 0.22, None, None, None],
            "C": [None, None, None, None, None],  # 6999
            "D": [None, -0.22, None, None, None],
            "E": [None, 16999.0, None, None, None],  # whole fields only
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert result.frame.equals(expected)
    assert any(w.startswith("line 5: partial record dropped") for w in result.meta.warnings)
    assert result.channels[0].attrs == {"array_id": "203", "field": 5}
    assert result.channels[2].attrs == {"array_id": "204", "field": 5}


def test_seconds_field_and_leap_day() -> None:
    result = read_mixed_array(
        HERE / "seconds.dat", arrays={"101": ["Year", "Day", "Hour_Minute", "Seconds", "V"]}
    )
    assert result.frame.get_column("timestamp").to_list() == [
        dt(2020, 2, 29, 23, 59, 30),
        datetime(2020, 3, 1, 0, 0, 0, 250000),
    ]
    assert result.frame.get_column("V").to_list() == [1.5, 2.5]


def test_repeated_timestamps_pair_up_in_order() -> None:
    frame = read_mixed_array(HERE / "duplicate_records.dat").frame
    assert frame.rows() == [
        (dt(2021, 1, 10, 12, 0), 1.0, 5.0),
        (dt(2021, 1, 10, 12, 0), 1.0, None),
    ]


def test_record_column_is_not_stored() -> None:
    data = b"101,2021,10,1200,17,1.5\n101,2021,10,1210,18,2.5\n"
    result = read_mixed_array(
        io.BytesIO(data), name="r.dat", arrays={"101": ["Year", "Day", "HHMM", "RECORD", "V"]}
    )
    assert [c.name for c in result.channels] == ["V"]
    assert result.meta.extra["record_columns"] == ("RECORD",)


@pytest.mark.parametrize(
    ("fixture", "pattern"),
    [
        ("fragments_only.dat", r"line 1: no complete mixed-array record"),
        ("bad_day.dat", r"line 2: array 101: field 3: expected a day of year .* found '366'"),
        ("bad_hhmm.dat", r"line 2: array 101: field 4: expected an hour-minute .* found '1261'"),
        ("header_line.dat", r"line 1: expected an array ID"),
        ("bad_number.dat", r"line 2: array 101: field 5: expected a number, found 'x1'"),
        ("too_wide.dat", r"line 2: array 101: expected 5 fields like most of its lines, found 6"),
    ],
)
def test_errors(fixture: str, pattern: str) -> None:
    with pytest.raises(ParseError, match=pattern) as info:
        read_mixed_array(HERE / fixture)
    assert info.value.path is not None and info.value.path.endswith(fixture)


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        (
            {"101": ["Y", "D", "T", "V"]},
            r"line 2: array 101: expected 5 fields \(the ID and 4 names",
        ),
        ({"101": ["Y", "D", "T"]}, r"expected the year, day and hour-minute names followed by"),
        ({"101": ["Y", "D", "T", "V", "V"]}, r"duplicate column name 'V'"),
        ({"x1": ["Y", "D", "T", "V"]}, r"expected integer array IDs"),
        ({"101": "Y,D,T,V"}, r"expected a list of names"),
    ],
)
def test_bad_column_lists(arrays: dict[str, list[str]], pattern: str) -> None:
    with pytest.raises(ParseError, match=pattern):
        read_mixed_array(HERE / "too_wide.dat", arrays=arrays)


def test_same_name_in_two_arrays_is_refused() -> None:
    arrays = {"203": TWO_ARRAYS["203"], "204": ["Year", "Day", "HHMM", "RH", "B", "C", "D", "E"]}
    with pytest.raises(ParseError, match=r"column name 'RH' is given for arrays 203 and 204"):
        read_mixed_array(HERE / "two_arrays_crlf.dat", arrays=arrays)


def test_empty_file() -> None:
    with pytest.raises(ParseError, match="found an empty file"):
        read_mixed_array(io.BytesIO(b"\r\n\r\n"), name="empty.dat")


def test_sniff_rejects_other_corpus_files() -> None:
    assert sniff((HERE / "two_arrays_crlf.dat").read_bytes())
    assert not sniff((HERE / "header_line.dat").read_bytes())
    ours = set(corpus_files(FOLDER))
    for path in CORPUS.rglob("*"):
        if path.is_file() and path not in ours:
            assert not sniff(path.read_bytes()[:8192]), path.name


def test_high_resolution_overrange_and_nan() -> None:
    path = HERE / "overrange_and_nan.dat"
    assert sniff(path.read_bytes())
    frame = read_mixed_array(path).frame
    assert frame.rows() == [
        (dt(2021, 1, 10, 12, 0), None, None, 99999.5, None),
        (dt(2021, 1, 10, 12, 10), None, None, 1.0, 2.0),
    ]


def test_mixed_cr_lf_crlf_line_ends_each_end_a_record() -> None:
    data = (
        b"201,2016,160,1045,1.5,2.5\r\n201,2016,160,1055,1.6,2.6\r"
        b"201,2016,160,1105,1.7,2.7\n201,2016,160,1115,1.8,2.8\r\n"
    )
    result = read_mixed_array(io.BytesIO(data))
    assert result.frame.get_column("A201_F05").to_list() == [1.5, 1.6, 1.7, 1.8]
