"""The configurable delimited reader: options, quirks, real corpus files read
through configuration, and errors naming the file and line."""

from __future__ import annotations

import io
import tomllib
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stationkit.errors import ConfigError, ParseError
from stationkit.parsers import delimited
from stationkit.parsers.base import STATISTICS, ParseResult
from stationkit.parsers.delimited import DelimitedOptions, read_delimited
from tests.conftest import CORPUS, FIXTURES, corpus_files

HERE = FIXTURES / "delimited"
KP = "stations.M001.reader"


def read(name: str, **options: object) -> ParseResult:
    return read_delimited(HERE / name, options=DelimitedOptions(**options))  # type: ignore[arg-type]


# --- options ---------------------------------------------------------------------------


def test_delimiter_error_names_key_path_and_choices() -> None:
    with pytest.raises(ConfigError) as exc:
        DelimitedOptions.from_mapping({"delimiter": "|x"}, KP)
    assert str(exc.value) == (
        "stations.M001.reader.delimiter: expected one of ',', ';', '\\t', ' ', 'whitespace', "
        "got '|x'"
    )


def test_from_mapping_reads_a_toml_table() -> None:
    doc = tomllib.loads(
        """
        [stations.M001.reader]
        format = "delimited"
        delimiter = ";"
        decimal = ","
        header_row = 3
        units_row = 4
        timestamp_column = "Date and Time"
        dayfirst = true
        missing = ["9999", "-9999"]
        comment_prefix = "#"
        statistics = [["_Avg$", "avg"], ["_SD$", "sd"]]
        height_regex = '(\\d+)m'
        ignore_columns = ["^Quality"]
        utc_offset_hours = 1
        timestamp_is_end_of_period = false
        quote_char = ""
        """
    )
    opts = DelimitedOptions.from_mapping(doc["stations"]["M001"]["reader"], KP)
    assert opts == DelimitedOptions(
        delimiter=";",
        decimal=",",
        header_row=3,
        units_row=4,
        timestamp_column="Date and Time",
        dayfirst=True,
        missing=("9999", "-9999"),
        comment_prefix="#",
        statistics=(("_Avg$", "avg"), ("_SD$", "sd")),
        height_regex=r"(\d+)m",
        ignore_columns=("^Quality",),
        utc_offset_hours=1,
        timestamp_is_end_of_period=False,
        quote_char=None,
    )
    assert opts.data_row == 5


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"delimeter": ","}, f"{KP}.delimeter: unknown key; valid keys: format, columns,"),
        ({"format": "toa5"}, f"{KP}.format: expected 'delimited', got 'toa5'"),
        ({"decimal": ";"}, f"{KP}.decimal: expected one of '.', ',', got ';'"),
        ({"decimal": ","}, f"{KP}.decimal: expected '.' when the delimiter is ','"),
        ({"header_row": -1}, f"{KP}.header_row: expected an integer >= 0, got -1"),
        ({"header_row": True}, f"{KP}.header_row: expected an integer >= 0, got True"),
        ({"header_row": "2"}, f"{KP}.header_row: expected an integer >= 0, got '2'"),
        ({"header_row": 0}, f"{KP}.columns: expected the column names when header_row = 0"),
        ({"columns": ["a", "b"]}, f"{KP}.columns: only used when header_row = 0"),
        ({"header_row": 0, "columns": ["a", "a"]}, f"{KP}.columns: expected unique"),
        ({"units_row": 1}, f"{KP}.units_row: expected a line other than header_row (1)"),
        ({"first_data_row": 1}, f"{KP}.first_data_row: expected a line after the header"),
        (
            {"first_data_row": 4, "skip_rows": 1},
            f"{KP}.first_data_row: give either first_data_row or skip_rows",
        ),
        ({"date_column": "Date"}, f"{KP}: expected one timestamp form"),
        (
            {"timestamp_column": "T", "year_column": 2, "doy_column": 3, "hhmm_column": 4},
            f"{KP}: expected one timestamp form",
        ),
        ({"timestamp_column": 0}, f"{KP}.timestamp_column: expected a column name or a 1-based"),
        ({"timestamp_format": "Y-m-d"}, f"{KP}.timestamp_format: expected a strptime format"),
        ({"dayfirst": "yes"}, f"{KP}.dayfirst: expected true or false, got 'yes'"),
        ({"utc_offset_hours": 15}, f"{KP}.utc_offset_hours: expected a number from -14 to 14"),
        ({"encoding": "klingon"}, f"{KP}.encoding: expected a codec name like 'utf-8'"),
        ({"missing": "9999"}, f"{KP}.missing: expected a list of strings, got '9999'"),
        ({"statistics": [["_Avg$"]]}, f"{KP}.statistics[0]: expected a [regex, statistic] pair"),
        (
            {"statistics": [["_Avg$", "avg"], ["_Mean$", "mean"]]},
            f"{KP}.statistics[1]: expected a statistic, one of avg, count,",
        ),
        ({"statistics": [["(", "avg"]]}, f"{KP}.statistics[0]: expected a valid regular"),
        ({"height_regex": r"\d+m"}, f"{KP}.height_regex: expected a regular expression with a"),
        ({"ignore_columns": ["["]}, f"{KP}.ignore_columns[0]: expected a valid regular"),
        ({"quote_char": "''"}, f"{KP}.quote_char: expected one character or ''"),
        ({"comment_prefix": 3}, f"{KP}.comment_prefix: expected a string, got 3"),
    ],
)
def test_from_mapping_rejects_bad_values(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        DelimitedOptions.from_mapping(mapping, KP)
    assert str(exc.value).startswith(message), str(exc.value)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"^DelimitedOptions\.decimal: expected one of"):
        DelimitedOptions(decimal="x")


def test_statistic_vocabulary_is_designs() -> None:
    opts = DelimitedOptions(statistics=tuple((f"_{s}$", s) for s in sorted(STATISTICS)))
    assert {s for _, s in opts.statistics} == STATISTICS


# --- sniffing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        p
        for folder in sorted(CORPUS.iterdir())
        if folder.is_dir()
        for p in sorted(folder.iterdir())
        if p.is_file()
    ],
)
def test_sniff_never_claims_a_file(path: Path) -> None:
    assert delimited.sniff(path.read_bytes()[:8192]) is False


# --- the tiny file, exactly ------------------------------------------------------------

TINY = {
    "missing": ("-9999", "9999"),
    "statistics": ((r"_Avg$", "avg"), (r"_SD$", "sd")),
    "height_regex": r"(\d+)m?_",
}


def test_tiny_file_exact_table() -> None:
    result = read("tiny.csv", **TINY)
    expected = pl.DataFrame(
        {
            "timestamp": [
                datetime(2024, 1, 31, 23, 50),
                datetime(2024, 2, 1, 0, 0),
                datetime(2024, 2, 1, 0, 10),
            ],
            "WS80_Avg": [7.5, None, 8.25],
            "WS80_SD": [0.9, 0.8, None],
            # 9999 is a marker only as a whole field: 1019.9999 is a reading
            "P2m_Avg": [1019.9999, None, 1020.5],
        },
        schema={
            "timestamp": pl.Datetime("us"),
            "WS80_Avg": pl.Float64,
            "WS80_SD": pl.Float64,
            "P2m_Avg": pl.Float64,
        },
    )
    assert_frame_equal(result.frame, expected)
    assert [(c.name, c.statistic, c.height_m, c.unit) for c in result.channels] == [
        ("WS80_Avg", "avg", 80.0, None),
        ("WS80_SD", "sd", 80.0, None),
        ("P2m_Avg", "avg", 2.0, None),
    ]
    assert result.meta.format == "delimited"
    assert result.meta.skipped_channels == ("Status",)
    assert result.meta.warnings == ()
    assert result.meta.utc_offset_hours is None


def test_path_and_file_like_give_the_same_result() -> None:
    by_path = read("tiny.csv", **TINY)
    data = (HERE / "tiny.csv").read_bytes()
    by_stream = read_delimited(io.BytesIO(data), name="tiny.csv", options=DelimitedOptions(**TINY))  # type: ignore[arg-type]
    assert_frame_equal(by_path.frame, by_stream.frame)
    assert by_path.channels == by_stream.channels


def test_options_time_convention_goes_to_meta() -> None:
    result = read("tiny.csv", utc_offset_hours=-5.5, timestamp_is_end_of_period=True)
    assert result.meta.utc_offset_hours == -5.5
    assert result.meta.timestamp_is_end_of_period is True


# --- quirks ------------------------------------------------------------------------------


def test_bom_crlf_semicolon_decimal_comma_units_row() -> None:
    result = read(
        "bom_crlf_semicolon_decimal_comma.csv",
        delimiter=";",
        decimal=",",
        units_row=2,
        dayfirst=True,
        height_regex=r"(\d+)m",
    )
    assert result.frame.columns == ["timestamp", "WG 80m Mittel", "WG 80m Stdabw", "Temp 2m Mittel"]
    assert result.frame["timestamp"].to_list() == [
        datetime(2024, 2, 1, 0, 0),
        datetime(2024, 2, 1, 0, 10),
        datetime(2024, 2, 1, 0, 20),
    ]
    assert result.frame["WG 80m Mittel"].to_list() == [7.5, 8.25, None]
    assert result.frame["Temp 2m Mittel"].to_list() == [-1.25, -1.5, -2.0]
    assert [c.unit for c in result.channels] == ["m/s", "m/s", "°C"]
    assert [c.height_m for c in result.channels] == [80.0, 80.0, 2.0]
    assert result.meta.extra["encoding"] == "utf-8-sig"


def test_latin1_lone_cr_tab_units() -> None:
    result = read("latin1_cr_tab.txt", delimiter="\t", header_row=2, units_row=3)
    assert result.frame["Temp_Avg"].to_list() == [-3.5, -3.6]
    assert result.frame["Dir_Avg"].to_list() == [271.0, 268.0]
    assert [c.unit for c in result.channels] == ["°C", "°"]
    assert result.meta.extra["first_data_line"] == 4


def test_explicit_encoding_overrides_detection() -> None:
    result = read(
        "latin1_cr_tab.txt", delimiter="\t", header_row=2, units_row=3, encoding="latin-1"
    )
    assert [c.unit for c in result.channels] == ["°C", "°"]
    assert result.meta.extra["encoding"] == "latin-1"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings_read_alike(newline: bytes) -> None:
    text = b"time,ws\n2024-02-01 00:00:00,7.5\n2024-02-01 00:10:00,8.0\n"
    result = read_delimited(
        io.BytesIO(text.replace(b"\n", newline)), name="t.csv", options=DelimitedOptions()
    )
    assert result.frame["ws"].to_list() == [7.5, 8.0]
    assert result.meta.warnings == ()


def test_utf16_with_bom() -> None:
    text = "time\tT [°C]\r\n2024-02-01 00:00:00\t-1,5\r\n".encode("utf-16")
    opts = DelimitedOptions(delimiter="\t", decimal=",")
    result = read_delimited(io.BytesIO(text), name="u16.txt", options=opts)
    assert result.frame["T [°C]"].to_list() == [-1.5]
    assert result.meta.extra["encoding"] == "utf-16"


def test_header_only_file() -> None:
    result = read_delimited(io.BytesIO(b"time,ws"), name="h.csv", options=DelimitedOptions())
    assert result.rows == 0
    assert result.frame.schema == pl.Schema({"timestamp": pl.Datetime("us"), "ws": pl.Float64})
    assert result.meta.warnings == ()


def test_whitespace_comments_and_year_doy_hhmm() -> None:
    result = read(
        "whitespace_comments_doy.txt",
        delimiter="whitespace",
        header_row=2,
        comment_prefix="#",
        year_column="year",
        doy_column="doy",
        hhmm_column="hhmm",
        missing=("-999.0",),
    )
    assert result.frame["timestamp"].to_list() == [
        datetime(2024, 1, 31, 23, 50),
        datetime(2024, 2, 1, 0, 0),  # doy 31 at 2400 is midnight of 1 February
        datetime(2024, 2, 1, 0, 10),
    ]
    assert result.frame["ws_avg"].to_list() == [7.5, 8.0, None]
    assert [c.name for c in result.channels] == ["ws_avg", "ws_max"]
    assert result.meta.extra["first_data_line"] == 4


def test_blank_padded_fields_markers_are_whole_fields() -> None:
    result = read("padded_fields.csv", missing=("-9999", "9999"))
    assert result.frame["ws_avg"].to_list() == [7.5, None, 8.1]
    assert result.frame["p_avg"].to_list() == [1019.9999, None, 1020.2]


def test_no_header_date_and_time_columns_duplicate_rows_kept() -> None:
    result = read(
        "no_header_date_time.csv",
        header_row=0,
        columns=("date", "time", "ws", "state"),
        date_column="date",
        time_column=2,
    )
    assert result.rows == 4  # the exact duplicate is kept; the pipeline deduplicates
    assert result.frame["timestamp"][1] == result.frame["timestamp"][2]
    assert result.frame["ws"].to_list() == [7.5, 7.5, 7.5, 8.0]
    assert result.meta.skipped_channels == ("state",)


def test_truncated_last_line_is_dropped_with_warning() -> None:
    result = read("truncated_last_line.csv")
    assert result.rows == 2
    assert result.frame["ws_max"].to_list() == [9.1, 9.9]
    assert result.meta.warnings == (
        "line 4: truncated last line dropped (it has 2 of 3 fields and no line break)",
    )


def test_missing_final_newline_drops_a_last_line_ending_in_a_number() -> None:
    # "9.9" may be the start of "9.95": a file copied while being written
    result = read("no_final_newline.csv")
    assert result.frame["ws_avg"].to_list() == [7.5]
    assert result.meta.warnings[0].startswith(
        "line 3: truncated last line dropped (no line break, and its last value '9.9' "
        "may be cut short"
    )


def test_header_line_with_odd_quote_does_not_swallow_rows() -> None:
    result = read("header_odd_quote.csv", header_row=2)
    assert result.frame["ws_avg"].to_list() == [7.5, 8.0]


def test_nan_and_infinity_become_null() -> None:
    text = b"time,a,b\n2024-02-01 00:00:00,NaN,inf\n2024-02-01 00:10:00,1.5,-INF\n"
    result = read_delimited(io.BytesIO(text), name="n.csv", options=DelimitedOptions())
    assert result.frame["a"].to_list() == [None, 1.5]
    assert result.frame["b"].to_list() == [None, None]


def test_ignored_and_unnamed_columns() -> None:
    text = b"time,ws,,Quality ws,dir\n2024-02-01 00:00:00,7.5,3,99,270\n"
    result = read_delimited(
        io.BytesIO(text),
        name="u.csv",
        options=DelimitedOptions(ignore_columns=("^Quality",)),
    )
    assert [c.name for c in result.channels] == ["ws", "dir"]
    assert result.meta.skipped_channels == ()
    assert result.meta.extra["ignored_columns"] == ("Quality ws",)
    assert result.meta.warnings == ("line 1: column 3 has no name; its values are not read",)


def test_zone_suffix_makes_utc_instants() -> None:
    text = b"time,ws\n2024-02-01T00:00:00+01:00,7.5\n2024-02-01T00:10:00+01:00,8.0\n"
    result = read_delimited(io.BytesIO(text), name="z.csv", options=DelimitedOptions())
    assert result.frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert result.frame["timestamp"][0] == datetime.fromisoformat("2024-01-31T23:00:00+00:00")


def test_explicit_timestamp_format() -> None:
    text = b"when;ws\n01/02/2024 00.00;7,5\n01/02/2024 00.10;8\n"
    opts = DelimitedOptions(delimiter=";", decimal=",", timestamp_format="%d/%m/%Y %H.%M")
    result = read_delimited(io.BytesIO(text), name="f.csv", options=opts)
    assert result.frame["timestamp"].to_list() == [
        datetime(2024, 2, 1, 0, 0),
        datetime(2024, 2, 1, 0, 10),
    ]


def test_large_file_uses_sampled_types_and_names_a_late_bad_line(tmp_path: Path) -> None:
    rows = 60_000
    lines = ["time,ws,dir"] + [
        f"2024-01-01 00:{i % 60:02d}:00,{i % 17}.25,{i % 360}" for i in range(rows)
    ]
    bad = 40_000  # far beyond the sampled first MiB and last 64 KiB
    lines[bad] = lines[bad].replace(".25,", ".2S,")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > delimited.SAMPLE_BYTES + delimited.TAIL_BYTES
    with pytest.raises(ParseError, match=r"big\.csv, line 40001: column 'ws': expected a number"):
        read_delimited(path, options=DelimitedOptions())
    lines[bad] = lines[bad].replace(".2S,", ".25,")
    path.write_text("\n".join(lines) + "\n")
    result = read_delimited(path, options=DelimitedOptions())
    assert result.rows == rows
    assert result.frame["ws"][bad - 1] == (bad - 1) % 17 + 0.25


# --- real files read through configuration ------------------------------------------


def test_triton_export_semicolon_decimal_comma() -> None:
    (path,) = corpus_files("TRITON_CSV")
    opts = DelimitedOptions.from_mapping(
        {
            "delimiter": ";",
            "decimal": ",",
            "header_row": 3,
            "units_row": 4,
            "timestamp_column": "Date and Time",
            "dayfirst": True,
            "height_regex": r"^(\d+)m ",
        },
        KP,
    )
    result = read_delimited(path, options=opts)
    # awk -F';': 292 lines, 4 header lines, 61 fields = timestamp + 60 channels;
    # the generic reader drops the last line (no line break, ends in a number)
    assert result.rows == 287
    assert result.frame.width == 61
    first = result.frame.row(0, named=True)
    assert first["timestamp"] == datetime(2016, 8, 31, 0, 0)
    assert first["40m Wind Direction"] == 339.5
    assert first["40m Wind Speed"] == 0.5
    assert first["40m Wind Vert"] == -0.14
    last = result.frame.row(-1, named=True)
    assert last["timestamp"] == datetime(2016, 9, 1, 23, 40)
    assert last["40m Wind Direction"] == 202.3
    assert last["40m Wind Speed"] == 1.09
    assert last["Turbu. Quality (Station Height 200m)"] == 42.0
    by_name = {c.name: c for c in result.channels}
    assert by_name["40m Wind Speed"].unit == "m/s"
    assert by_name["40m Wind Speed"].height_m == 40.0
    assert by_name["40m Wind Direction"].unit == "°"
    assert any("line 292: truncated last line dropped" in w for w in result.meta.warnings)


def test_molas_gb2312_date_and_time_columns() -> None:
    (path,) = corpus_files("LIDAR_MOLAS")
    opts = DelimitedOptions(
        delimiter="\t", header_row=11, encoding="gb2312", date_column=1, time_column=2
    )
    result = read_delimited(path, options=opts)
    assert result.rows == 144  # lines 13-156
    # 131 fields: date, time, two DMS text columns, 126 numbers, a trailing empty one
    assert result.frame.width == 1 + 126
    assert result.meta.skipped_channels == ("经度", "纬度")
    assert result.frame["timestamp"][0] == datetime(2023, 9, 12, 0, 0)
    assert result.frame["timestamp"][-1] == datetime(2023, 9, 12, 23, 50)
    assert result.frame["内温"][0] == 33.891
    assert result.frame["气压"][0] == 904.681
    assert result.frame["气压"][-1] == 906.638
    assert result.frame["300m数据可靠性(%)"][-1] == 88.7


def test_windographer_export_tab_header_on_line_13() -> None:
    (path,) = [p for p in corpus_files("WINDOGRAPHER_TXT") if "demo_data" in p.name]
    opts = DelimitedOptions(
        delimiter="\t",
        header_row=13,
        dayfirst=True,
        statistics=(("Std$", "sd"), ("Max$", "max"), ("Min$", "min"), ("Tot$", "sum")),
        height_regex=r"(\d+)m",
    )
    result = read_delimited(path, options=opts)
    assert result.rows == 188  # 201 lines - 13 header lines
    assert result.frame.width == 30
    assert result.frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert result.frame["timestamp"][0] == datetime.fromisoformat("2016-01-09T15:30:00+00:00")
    assert result.frame["Spd80mN"][0] == 8.37
    assert result.frame["RH2m"][0] == 100.0
    assert result.frame["BattMin"][-1] == 12.44
    stats = {c.name: c.statistic for c in result.channels}
    assert stats["Spd80mNStd"] == "sd"
    assert stats["Spd80mNMax"] == "max"
    assert stats["PrcpTot"] == "sum"
    assert stats["Spd80mN"] is None


def test_campbell_mixed_array_year_doy_hhmm() -> None:
    path = CORPUS / "MIXED_ARRAY" / "thyyppa__Toxx__DemoOutputCSV.dat"
    opts = DelimitedOptions(
        header_row=0,
        columns=("array", "year", "doy", "hhmm", "record", "panel_temp", "batt", "batt_min"),
        year_column="year",
        doy_column="doy",
        hhmm_column="hhmm",
        ignore_columns=("^array$", "^record$"),
    )
    result = read_delimited(path, options=opts)
    assert result.rows == 1422
    assert [c.name for c in result.channels] == ["panel_temp", "batt", "batt_min"]
    # 101,2020,68,1935,... -> 2020 is a leap year: doy 68 is 8 March
    assert result.frame.row(0) == (datetime(2020, 3, 8, 19, 35), 26.86, 12.94, 12.94)
    # 101,2020,73,1800,0,27.09,12.93,12.93 (the TOA5 sibling ends 2020-03-13 18:00:00)
    assert result.frame.row(-1) == (datetime(2020, 3, 13, 18, 0), 27.09, 12.93, 12.93)


def test_toa5_read_as_configured_delimited() -> None:
    path = CORPUS / "TOA5" / "thyyppa__Toxx__DemoOutputToa5.dat"
    opts = DelimitedOptions(
        header_row=2, units_row=3, skip_rows=1, missing=("NAN",), ignore_columns=("^RECORD$",)
    )
    result = read_delimited(path, options=opts)
    assert result.rows == 1422  # 1426 lines - 4 header lines
    assert result.frame.row(0) == (datetime(2020, 3, 8, 19, 35), 26.86, 12.94, 12.94)
    assert result.frame.row(-1) == (datetime(2020, 3, 13, 18, 0), 27.09, 12.93, 12.93)
    assert [c.unit for c in result.channels] == ["°C", "volts", "volts"]


# --- bad input -----------------------------------------------------------------------


def test_ragged_row_names_its_line() -> None:
    with pytest.raises(ParseError, match=r"ragged_row\.csv, line 3: expected 3 fields, found 4"):
        read("ragged_row.csv")


def test_bad_timestamp_names_its_line() -> None:
    with pytest.raises(ParseError, match=r"bad_timestamp\.csv, line 4: .*'2024-02-31 00:20:00'"):
        read("bad_timestamp.csv")


def test_bad_label_after_comment_lines_names_the_file_line() -> None:
    text = b"# c\ntime,ws\n# c\n2024-02-01 00:00:00,1\n# c\n\n2024-02-01 00:1x:00,2\n"
    with pytest.raises(ParseError, match=r"c\.csv, line 7: .*'2024-02-01 00:1x:00'"):
        read_delimited(
            io.BytesIO(text),
            name="c.csv",
            options=DelimitedOptions(header_row=2, comment_prefix="#"),
        )


def test_bad_day_of_year_names_its_line() -> None:
    text = b"2024,31,2350,1\n2024,367,0,2\n"
    opts = DelimitedOptions(
        header_row=0, columns=("y", "d", "t", "v"), year_column=1, doy_column=2, hhmm_column=3
    )
    with pytest.raises(ParseError, match=r"d\.csv, line 2: expected year, day of year"):
        read_delimited(io.BytesIO(text), name="d.csv", options=opts)


def test_letters_in_the_sample_make_a_text_column() -> None:
    text = b"time,ws\n2024-02-01 00:00:00, 7.5 \n2024-02-01 00:10:00, 7.x \n"
    result = read_delimited(io.BytesIO(text), name="p.csv", options=DelimitedOptions())
    assert result.meta.skipped_channels == ("ws",)
    assert result.channels == ()


def test_padded_large_file_names_a_late_bad_line(tmp_path: Path) -> None:
    lines = ["time,ws"] + [f"2024-01-01 00:{i % 60:02d}:00,  {i % 17}.25 " for i in range(70_000)]
    lines[50_000] = "2024-01-01 00:00:00,  7.2S "
    path = tmp_path / "padded.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ParseError, match=r"padded\.csv, line 50001: column 'ws': expected a number"
    ):
        read_delimited(path, options=DelimitedOptions())


def test_unknown_timestamp_column_lists_the_columns() -> None:
    with pytest.raises(
        ParseError,
        match=r"tiny\.csv, line 1: expected a timestamp column 'Time'; columns: 'Timestamp', 'WS",
    ):
        read("tiny.csv", timestamp_column="Time")


def test_timestamp_column_number_out_of_range() -> None:
    with pytest.raises(
        ParseError, match=r"expected a timestamp column number 9, but the file has 5"
    ):
        read("tiny.csv", timestamp_column=9)


def test_header_beyond_the_file() -> None:
    with pytest.raises(
        ParseError, match=r"expected the header on line 30, but the file has 4 lines"
    ):
        read("tiny.csv", header_row=30)


def test_duplicate_column_names() -> None:
    text = b"time,ws,ws\n2024-02-01 00:00:00,1,2\n"
    with pytest.raises(ParseError, match=r"dup\.csv, line 1: duplicate column name 'ws'"):
        read_delimited(io.BytesIO(text), name="dup.csv", options=DelimitedOptions())


def test_wrong_explicit_encoding() -> None:
    text = "time,T [°C]\n2024-02-01 00:00:00,1\n".encode("latin-1")
    with pytest.raises(
        ParseError, match=r"e\.csv, line 1: expected text in 'utf-8', found byte 0xb0"
    ):
        read_delimited(io.BytesIO(text), name="e.csv", options=DelimitedOptions(encoding="utf-8"))


def test_mixed_array_file_is_not_one_table() -> None:
    path = (
        CORPUS
        / "MIXED_ARRAY"
        / "koffertfisk__campbellsciparser__csv_testdata_mixed_array_10_rows.dat"
    )
    opts = DelimitedOptions(
        header_row=0,
        columns=("a", "y", "d", "t", "v1", "v2"),
        year_column=2,
        doy_column=3,
        hhmm_column=4,
    )
    # line 2 is array 204 with 13 fields (cat -A of the corpus file)
    with pytest.raises(ParseError, match=r"line 2: expected 6 fields, found 13"):
        read_delimited(path, options=opts)


def test_empty_timestamp_field_is_an_error() -> None:
    text = b"time,ws\n2024-02-01 00:00:00,1\n,2\n"
    with pytest.raises(ParseError, match=r"x\.csv, line 3: expected a value in column 'time'"):
        read_delimited(io.BytesIO(text), name="x.csv", options=DelimitedOptions())
