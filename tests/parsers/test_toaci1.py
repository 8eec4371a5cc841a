"""Campbell TOACI1: corpus (against its TOA5 sibling), fixtures, errors, sniffing."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from stationkit.errors import ParseError
from stationkit.parsers import toaci1
from stationkit.parsers.table import split_fields
from stationkit.parsers.timeparse import parse_timestamps
from stationkit.parsers.toa5 import read_toa5
from stationkit.parsers.toaci1 import read_toaci1, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "TOACI1"
TOACI1 = CORPUS / FOLDER / "thyyppa__Toxx__DemoOutputToaci1.dat"
TOA5_SIBLING = CORPUS / "TOA5" / "thyyppa__Toxx__DemoOutputToa5.dat"
HERE = FIXTURES / "toaci1"


def dt(*args: int) -> datetime:
    return datetime(*args)


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name)
def test_every_corpus_file_parses_and_sniffs(path: Path) -> None:
    assert sniff(path.read_bytes()[:8192])
    assert read_toaci1(path).rows > 0


def test_toxx_gives_the_same_readings_as_toa5() -> None:
    ci = read_toaci1(TOACI1)
    toa5 = read_toa5(TOA5_SIBLING)
    assert ci.frame.equals(toa5.frame)
    assert [c.name for c in ci.channels] == [c.name for c in toa5.channels]
    # no processing or units line in TOACI1
    assert all(c.statistic is None and c.unit is None for c in ci.channels)


def test_toxx_shape_cells_and_meta() -> None:
    result = read_toaci1(TOACI1)
    assert result.frame.shape == (1422, 4)  # 1424 lines, 2 header lines
    # line 3: "2020-03-08 19:35:00",0,26.86,12.94,12.94
    assert result.frame.row(0) == (dt(2020, 3, 8, 19, 35), 26.86, 12.94, 12.94)
    # last line: "2020-03-13 18:00:00",1419,27.09,12.93,12.93
    assert result.frame.row(-1) == (dt(2020, 3, 13, 18, 0), 27.09, 12.93, 12.93)
    meta = result.meta
    assert (meta.format, meta.station_name, meta.table) == (
        "toaci1",
        "__STATION_NAME__",
        "__TABLE_NAME_TOACI1__",
    )
    assert meta.extra["record_column"] == "RECNBR"
    assert meta.timestamp_is_end_of_period is None


def test_path_and_file_like() -> None:
    stream = read_toaci1(io.BytesIO(TOACI1.read_bytes()), name="x.dat")
    assert stream.frame.equals(read_toaci1(TOACI1).frame)


def test_tiny_exact_table() -> None:
    result = read_toaci1(HERE / "tiny_no_final_break.dat")
    expected = pl.DataFrame(
        {
            "timestamp": [dt(2024, 1, 31, 23, 50), dt(2024, 2, 1, 0, 0)],
            "WS_ms_Avg": [8.37, None],  # "NAN"
            "AirT_C": [-0.057, 1019.9999],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert result.frame.equals(expected)
    assert result.meta.skipped_channels == ("Status",)  # quoted text
    assert result.meta.station_name == "Mast7"
    # the last line has no line break and ends in a number ("-1.5" of "-1.57"?)
    assert any(
        w.startswith("line 5: truncated last line dropped (no line break, and its last value")
        for w in result.meta.warnings
    )


def test_truncated_last_line_crlf() -> None:
    result = read_toaci1(HERE / "truncated_crlf.dat")
    assert result.frame.get_column("WS_ms_Avg").to_list() == [8.37, 8.1]
    assert result.frame.get_column("AirT_C").to_list() == [-0.057, None]  # empty field
    assert any(w.startswith("line 5: truncated last line dropped") for w in result.meta.warnings)


def test_bom_and_lone_cr_line_ends() -> None:
    result = read_toaci1(HERE / "cr_only_bom.dat")
    assert result.frame.get_column("timestamp").to_list() == [
        dt(2024, 1, 31, 23, 50),
        dt(2024, 2, 1, 0, 0),
    ]
    assert result.frame.get_column("WS_ms_Avg").to_list() == [8.37, None]  # INF: overrange
    assert result.meta.extra["encoding"] == "utf-8-sig"


def test_quoted_text_with_a_comma() -> None:
    result = read_toaci1(HERE / "quoted_comma.dat")
    assert result.meta.skipped_channels == ("Status",)
    assert result.frame.get_column("WS").to_list() == [8.37, 8.1]


def test_partial_last_line_cut_inside_a_marker_leaves_the_column_numeric() -> None:
    result = read_toaci1(HERE / "partial_in_marker.dat")
    assert [c.name for c in result.channels] == ["WS", "T"]
    assert result.frame.rows() == [(dt(2024, 1, 31, 23, 50), 8.37, 1.5)]
    assert any(w.startswith("line 4: truncated last line dropped") for w in result.meta.warnings)


@pytest.mark.parametrize("path", corpus_files("TOA5"), ids=lambda p: p.name)
def test_text_column_detection_agrees_with_the_line_by_line_rule(path: Path) -> None:
    """The vectorised detection is an optimisation: real files give the same columns."""
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    width = len(split_fields(lines[1]))
    sample = lines[4:3000] + lines[-200:]
    assert toaci1._text_columns(sample, width) == toaci1._text_columns_by_line(sample, width)


def test_header_only() -> None:
    result = read_toaci1(HERE / "header_only.dat")
    assert result.rows == 0
    assert [c.name for c in result.channels] == ["WS"]


@pytest.mark.parametrize(
    ("fixture", "pattern"),
    [
        ("not_toaci1.dat", r'line 1: expected "TOACI1" as the first field'),
        ("duplicate_name.dat", r"line 2: duplicate column name 'WS' \(fields 3 and 4\)"),
        ("extra_field.dat", r"line 4: expected 3 fields, found 4"),
        ("one_line.dat", r"line 2: expected 2 TOACI1 header lines, found 1"),
        ("no_timestamp.dat", r"line 2: expected a timestamp column named TIMESTAMP or TMSTAMP"),
    ],
)
def test_errors(fixture: str, pattern: str) -> None:
    with pytest.raises(ParseError, match=pattern) as info:
        read_toaci1(HERE / fixture)
    assert info.value.path is not None and info.value.path.endswith(fixture)


def test_sniff_rejects_other_corpus_files() -> None:
    assert sniff((HERE / "tiny_no_final_break.dat").read_bytes())
    assert sniff((HERE / "cr_only_bom.dat").read_bytes())
    ours = set(corpus_files(FOLDER))
    for path in CORPUS.rglob("*"):
        if path.is_file() and path not in ours:
            assert not sniff(path.read_bytes()[:8192]), path.name


def _stamps(n: int, fmt: str, suffix: str = "") -> list[str]:
    start = datetime(2016, 1, 1)
    return [f"{start + timedelta(minutes=10 * i):{fmt}}{suffix}" for i in range(n)]


@pytest.mark.parametrize(
    "values",
    [
        _stamps(10, "%Y-%m-%d %H:%M:%S"),
        _stamps(10_000, "%Y-%m-%d %H:%M:%S"),
        _stamps(10_000, "%Y-%m-%dT%H:%M", "Z"),
        _stamps(10_000, "%d/%m/%Y %H:%M:%S", "+00:00"),  # day > 12 in the sample
        _stamps(200, "%d/%m/%Y %H:%M"),  # days 1-2 only: ambiguous, general path
        # a fraction at row 5001 only (outside the sample): the general path reads it
        [
            v + (".5" if i == 5001 else "")
            for i, v in enumerate(_stamps(10_001, "%Y-%m-%d %H:%M:%S"))
        ],
    ],
    ids=["tiny", "iso", "iso-zulu", "dayfirst-utc", "ambiguous", "fraction-beyond-sample"],
)
def test_timestamps_quickly_equals_parse_timestamps(values: list[str]) -> None:
    series = pl.Series("t", values)
    try:
        expected = parse_timestamps(series, name="f", first_line=3)
    except ParseError as exc:
        with pytest.raises(ParseError) as info:
            toaci1.timestamps_quickly(series, name="f", first_line=3)
        assert (info.value.line, info.value.reason) == (exc.line, exc.reason)
        return
    got = toaci1.timestamps_quickly(series, name="f", first_line=3)
    assert got[0].null_count() == 0
    assert got[0].equals(expected[0])
    assert got[1] == expected[1]


def test_timestamps_quickly_reports_a_bad_value_beyond_the_sample_like_parse_timestamps() -> None:
    values = _stamps(10_000, "%Y-%m-%d %H:%M:%S")
    values[5003] = "2016-13-45 00:00:00"
    series = pl.Series("t", values)
    with pytest.raises(ParseError) as expected:
        parse_timestamps(series, name="f", first_line=3)
    with pytest.raises(ParseError) as got:
        toaci1.timestamps_quickly(series, name="f", first_line=3)
    assert got.value.line == expected.value.line == 5006
    assert got.value.reason == expected.value.reason


def test_a_file_cut_inside_its_last_number_drops_that_line() -> None:
    result = read_toaci1(HERE / "cut_in_last_number.dat")
    assert result.frame.get_column("AirT_C").to_list() == [12.93]
    assert result.meta.warnings[0].startswith(
        "line 4: truncated last line dropped (no line break, and its last value '12.'"
    )
