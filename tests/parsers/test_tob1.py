"""TOB1: every corpus file against Campbell's own TOA5 conversion, and each quirk
of the format on fixtures encoded by hand (tests/fixtures/tob1/make_fixtures.py)."""

from __future__ import annotations

import io
import math
import struct
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from stationkit.errors import ParseError
from stationkit.parsers.base import ParseResult
from stationkit.parsers.campbell_binary import type_size
from stationkit.parsers.table import split_fields
from stationkit.parsers.toa5 import read_toa5
from stationkit.parsers.tob1 import read_tob1, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

TOB1 = FIXTURES / "tob1"
FULL16 = CORPUS / "TOB1" / "alextsfox__camp2ascii__TOB1_full16.dat"
FULL27 = CORPUS / "TOB1" / "alextsfox__camp2ascii__TOB1_full27.dat"
DEMO = CORPUS / "TOB1" / "thyyppa__Toxx__DemoOutputTob1.dat"
#: Campbell's CardConvert/LoggerNet TOA5 conversions of the corpus files
ORACLES = {
    FULL16.name: "alextsfox__camp2ascii__TOA5_TOB1_full16_2026_02_19_0946.dat",
    FULL27.name: "alextsfox__camp2ascii__TOA5_TOB1_full27_2026_02_19_0946.dat",
    DEMO.name: "thyyppa__Toxx__DemoOutputToa5.dat",
}
TOA5_MISSING = {"NAN", "INF", "-INF", "+INF"}


def assert_matches_campbell_toa5(result: ParseResult, toa5: Path) -> None:
    """Same rows, timestamps, channels, statistics, units, skipped columns and values.

    Values are compared with the TOA5 text: each printed number fixes the
    value to half a unit of its last printed digit (IEEE4 prints ~7
    significant digits, IEEE8 15, FP2 its own decimals); "NAN"/"INF" must be
    null here.
    """
    oracle = read_toa5(toa5)
    assert result.rows == oracle.rows
    assert result.frame.get_column("timestamp").equals(oracle.frame.get_column("timestamp"))
    assert [c.name for c in result.channels] == [c.name for c in oracle.channels]
    assert [c.statistic for c in result.channels] == [c.statistic for c in oracle.channels]
    assert [c.unit for c in result.channels] == [c.unit for c in oracle.channels]
    assert result.meta.skipped_channels == oracle.meta.skipped_channels
    lines = toa5.read_text(encoding="utf-8").splitlines()
    names = [f.text for f in split_fields(lines[1])]
    rows = [split_fields(line) for line in lines[4:] if line.strip()]
    assert len(rows) == result.rows
    checked = 0
    for channel in result.channels:
        col = names.index(channel.name)
        ours = result.frame.get_column(channel.name).to_list()
        for i, (fields, value) in enumerate(zip(rows, ours, strict=True)):
            text = fields[col].text
            if text in TOA5_MISSING:
                assert value is None, f"{channel.name} row {i}: expected null for {text}"
                continue
            mantissa, _, exponent = text.upper().partition("E")
            decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
            half_unit = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
            printed = float(text)
            assert value is not None, f"{channel.name} row {i}: expected {text}, got null"
            assert abs(value - printed) <= half_unit + 2 * math.ulp(printed), (
                f"{channel.name} row {i}: {value!r} does not print as {text}"
            )
            checked += 1
    assert checked > 0 or not result.channels


@pytest.mark.parametrize("path", corpus_files("TOB1"), ids=lambda p: p.name)
def test_every_corpus_file_equals_campbells_toa5_conversion(path: Path) -> None:
    result = read_tob1(path)
    assert result.meta.format == "tob1"
    assert result.frame.get_column("timestamp").null_count() == 0
    assert_matches_campbell_toa5(result, CORPUS / "TOA5" / ORACLES[path.name])


def test_corpus_full16_cells() -> None:
    r = read_tob1(FULL16)
    assert r.frame.shape == (266, 13)
    first = r.frame.row(0, named=True)
    # TOA5: "2026-02-19 09:46:06.005",3171,"64291","NAN","NAN",4.09545187592563E-312,"NAN",
    #       "2026-02-19 09:46:06.001",-0.368,0.3682727,2.04050859159127E-312,27308,15838000,
    #       "142857",-1,"11111111","11111111",0,-0.3682727,"314159"
    assert first["timestamp"] == datetime(2026, 2, 19, 9, 46, 6, 5000)
    assert first["temp_Avg(1)"] is None  # FP2 NaN 0x9FFE
    assert first["temp_Avg(3)"] == pytest.approx(4.09545187592563e-312, rel=1e-14)  # IEEE8 denormal
    assert first["temp(1)"] == -0.368  # FP2, 3 decimals
    assert first["temp(2)"] == pytest.approx(0.3682727, abs=5e-8)  # IEEE4
    assert first["temp(4)"] == 27308.0  # UINT2 (big-endian)
    assert first["temp(5)"] == 15838000.0  # UINT4 (big-endian)
    assert first["toggle"] == -1.0  # BOOL (1 byte) true
    assert first["temp(8)"] == 0.0  # LONG
    assert first["rand"] == pytest.approx(-0.3682727, abs=5e-8)
    last = r.frame.row(-1, named=True)
    # "2026-02-19 09:46:07.4",3436,...,-0.156,"2026-02-19 09:46:07.397",-0.22,0.2196481,
    #  ...,40488,...
    assert last["timestamp"] == datetime(2026, 2, 19, 9, 46, 7, 400000)
    assert last["temp_Max(1)"] == -0.156
    assert last["temp(1)"] == -0.22
    assert last["temp(4)"] == 40488.0
    assert r.frame.get_column("toggle").to_list()[:3] == [-1.0, 0.0, -1.0]
    assert r.meta.station_name == "64291"
    assert r.meta.logger_model == "CR1000X"
    assert r.meta.logger_serial == "64291"
    assert r.meta.logger_os == "CR1000X.Std.08.01"
    assert r.meta.program == "test_suite.cr1x"
    assert r.meta.table == "TOB1_Full"
    assert r.meta.interval_s is None
    assert r.meta.extra["program_signature"] == "42580"
    assert r.meta.extra["record_size"] == 127
    assert r.meta.extra["header_bytes"] == 782
    assert r.meta.warnings == ()
    stats = {c.name: c.statistic for c in r.channels}
    assert stats["temp_Avg(2)"] == "avg"
    assert stats["temp_Max(1)"] == "max"
    assert stats["temp(3)"] == "sample"
    types = {c.name: c.attrs["data_type"] for c in r.channels}
    assert types["temp(2)"] == "IEEE4"
    assert types["temp(3)"] == "IEEE8"
    # SecNano (TMx), ASCII(n) and BOOL8 are not readings
    assert r.meta.skipped_channels == (
        "text_val", "temp_TMx(1)", "text_val_2", "temp_bool8(1)", "temp_bool8(2)", "text_val_3",
    )  # fmt: skip
    assert not {"SECONDS", "NANOSECONDS", "RECORD"} & set(r.frame.columns)


def test_corpus_full27_cells() -> None:
    r = read_tob1(FULL27)
    assert r.frame.shape == (61, 13)
    first = r.frame.row(0, named=True)
    # "2026-02-19 09:46:17.1",5351,"64291","NAN","NAN",4.09545187592563E-312,"NAN",
    # "2026-02-19 09:46:17.1","NAN",0.5542219,2.04146864414417E-312,5116,26726000,...
    assert first["timestamp"] == datetime(2026, 2, 19, 9, 46, 17, 100000)
    assert first["temp(1)"] is None
    assert first["temp(2)"] == pytest.approx(0.5542219, abs=5e-8)
    assert first["temp(4)"] == 5116.0
    assert first["temp(5)"] == 26726000.0
    last = r.frame.row(-1, named=True)
    # "2026-02-19 09:46:17.4",5411,...,1.049,"2026-02-19 09:46:17.399",0.985,-0.9851874,...
    assert last["timestamp"] == datetime(2026, 2, 19, 9, 46, 17, 400000)
    assert last["temp_Max(1)"] == 1.049
    assert last["temp(1)"] == 0.985
    assert last["temp(2)"] == pytest.approx(-0.9851874, abs=5e-8)


def test_corpus_demo_fp2_file_with_a_stray_trailing_byte() -> None:
    r = read_tob1(DEMO)
    assert r.frame.shape == (1422, 4)
    assert r.frame.row(0) == (datetime(2020, 3, 8, 19, 35), 26.86, 12.94, 12.94)
    assert r.frame.row(-1) == (datetime(2020, 3, 13, 18, 0), 27.09, 12.93, 12.93)
    assert [c.unit for c in r.channels] == ["°C", "volts", "volts"]
    assert [c.statistic for c in r.channels] == ["sample", "sample", "min"]
    assert r.meta.station_name == "__STATION_NAME__"
    assert r.meta.table == "__TABLE_NAME_TOB1__"
    # 1422 records of 18 bytes, then one "\n" byte
    assert r.meta.warnings == (
        "byte 25950: 1 trailing byte(s) dropped (a partial record; records are 18 bytes)",
    )


def test_tiny_fixture_exact_table() -> None:
    r = read_tob1(TOB1 / "tiny.dat")
    expected = pl.DataFrame(
        {
            "timestamp": [
                datetime(2024, 4, 3, 12, 0),
                datetime(2024, 4, 3, 12, 10),
                datetime(2024, 4, 3, 12, 20, 0, 500001),  # 500001234 ns, truncated to us
            ],
            "WS_Avg": [12.51, -0.368, None],  # FP2 NaN
            "WS_Std": [7999.0, None, None],  # FP2 +INF, -INF
            "T": [21.5, None, None],  # IEEE4 NaN, -inf
            "P": [1013.25, 1019.9999, 9999.0],  # 9999 is a value in binary files
            "Cnt": [65535.0, 0.0, 258.0],
            "Dir": [-1.0, 359.0, -32768.0],
            "Neg": [-300.0, 0.0, 32767.0],
            "Flag": [0.0, -1.0, -1.0],
            "Flag2": [0.0, -1.0, 0.0],
            "Flag4": [-1.0, 0.0, -1.0],
            "L": [-5.0, 2147483647.0, 0.0],
            "U": [4294967295.0, 1.0, 0.0],
            "TB": [1.5, -2.25, 0.0],
            "B": [200.0, 0.0, 255.0],
            "I": [-1.0, 127.0, -128.0],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert_frame_equal(r.frame, expected)
    assert r.meta.skipped_channels == ("Status", "Bits", "WS_TMx")
    assert [c.statistic for c in r.channels][:5] == ["avg", "sd", "sample", "avg", "sum"]
    assert [c.unit for c in r.channels][:4] == ["m/s", "m/s", "degC", "hPa"]
    assert r.channels[-2].attrs == {"data_type": "BYTE"}
    assert r.meta.station_name == "Mast7"
    assert r.meta.program == "wind.cr1x"
    assert r.meta.table == "Ten_Min"
    assert r.meta.extra["record_column"] == "RECORD"
    assert r.meta.warnings == ()


def test_path_and_file_like_give_the_same_result() -> None:
    by_path = read_tob1(TOB1 / "tiny.dat")
    by_stream = read_tob1(io.BytesIO((TOB1 / "tiny.dat").read_bytes()), name="member.dat")
    assert_frame_equal(by_path.frame, by_stream.frame)
    assert by_path.channels == by_stream.channels
    assert by_path.meta == by_stream.meta
    with pytest.raises(ParseError, match=r"^member\.dat, line 5: .*IEEE5"):
        read_tob1(io.BytesIO((TOB1 / "bad_unknown_type.dat").read_bytes()), name="member.dat")


@pytest.mark.parametrize(
    ("fixture", "warning"),
    [
        ("truncated_record.dat", "byte 839: 7 trailing byte(s) dropped"),
        ("trailing_newline.dat", "byte 839: 1 trailing byte(s) dropped"),
    ],
)
def test_partial_last_record_is_dropped_with_a_warning(fixture: str, warning: str) -> None:
    r = read_tob1(TOB1 / fixture)
    assert_frame_equal(r.frame, read_tob1(TOB1 / "tiny.dat").frame)
    assert len(r.meta.warnings) == 1
    assert r.meta.warnings[0].startswith(warning)


def test_header_only_file_gives_no_rows_and_all_channels() -> None:
    r = read_tob1(TOB1 / "header_only.dat")
    assert r.rows == 0
    assert r.frame.columns == read_tob1(TOB1 / "tiny.dat").frame.columns
    assert r.frame.schema["timestamp"] == pl.Datetime("us")


def test_lf_header_lines() -> None:
    r = read_tob1(TOB1 / "lf_header.dat")
    assert_frame_equal(r.frame, read_tob1(TOB1 / "tiny.dat").frame.head(1))


def test_cp1252_unit_and_fp2_one_decimal() -> None:
    r = read_tob1(TOB1 / "cp1252_units.dat")
    assert r.channels[0].unit == "°C"
    assert r.frame.row(0) == (datetime(2024, 4, 3, 12, 0), -12.5)  # sign, exponent 1, 125


def test_secnano_timestamp_field_instead_of_seconds() -> None:
    r = read_tob1(TOB1 / "secnano_timestamp.dat")
    assert r.frame.get_column("timestamp").to_list() == [
        datetime(2024, 4, 3, 12, 0, 0, 5000),
        datetime(2024, 4, 3, 12, 0, 1),
    ]
    assert r.frame.get_column("WS").to_list() == [3.25, 4.5]
    assert r.meta.skipped_channels == ()


@pytest.mark.parametrize(
    ("fixture", "line", "message"),
    [
        ("bad_unknown_type.dat", 5, r"field 3 \('WS'\): unknown data type 'IEEE5'; known types"),
        ("bad_units_count.dat", 3, r"expected 21 units \(one per field name\), found 19"),
        ("bad_truncated_header.dat", 3, r"expected 5 TOB1 header lines, found 2"),
        (
            "bad_seconds_type.dat",
            5,
            r"field 'SECONDS': expected a 4-byte integer type .* found 'FP2'",
        ),
        ("bad_no_time.dat", 2, r"expected a SECONDS field"),
        ("bad_duplicate_names.dat", 2, r"duplicate field name 'WS' \(fields 3 and 4\)"),
    ],
)
def test_bad_input_names_file_line_and_what_was_expected(
    fixture: str, line: int, message: str
) -> None:
    path = TOB1 / fixture
    with pytest.raises(ParseError, match=rf"{path.name}, line {line}: {message}") as info:
        read_tob1(path)
    assert info.value.line == line


def test_not_a_tob1_file() -> None:
    toa5 = CORPUS / "TOA5" / ORACLES[DEMO.name]
    with pytest.raises(ParseError, match=r'line 1: expected "TOB1"'):
        read_tob1(toa5)


def test_sniff_recognises_every_tob1_and_rejects_other_formats() -> None:
    for path in corpus_files("TOB1"):
        assert sniff(path.read_bytes()[:8192]), path.name
    others = [
        p
        for d in sorted(CORPUS.iterdir())
        if d.is_dir() and d.name != "TOB1"
        for p in corpus_files(d.name)
    ]
    assert any(p.parent.name == "TOB3" for p in others)
    for path in others:
        assert not sniff(path.read_bytes()[:8192]), path.name
    assert not sniff(b"")
    assert not sniff(b'"TOB10",')


def test_numeric_time_of_maximum_column_is_skipped_like_in_toa5() -> None:
    head = (
        b'"TOB1","s","CR10X","1","os","CPU:p.csi","1","t"\r\n'
        b'"SECONDS","NANOSECONDS","WS_Max","WS_TMx"\r\n"","","m/s",""\r\n'
        b'"","","Max","TMx"\r\n"ULONG","ULONG","FP2","FP2"\r\n'
    )
    body = struct.pack("<II", 0, 0) + struct.pack(">HH", (1 << 13) | 125, 1230)
    r = read_tob1(io.BytesIO(head + body))
    assert r.frame.row(0) == (datetime(1990, 1, 1), 12.5)
    assert r.meta.skipped_channels == ("WS_TMx",)


def test_type_sizes_follow_campbell() -> None:
    assert type_size("ASCII(36)") == ("ASCII", 36, 36)
    assert type_size("BOOL8") == ("BOOL8", 1, 1)
    assert type_size("BOOL") == ("BOOL", 1, 1)
    assert type_size("SecNano") == ("SECNANO", 1, 8)
    assert type_size("IEEE8B") == ("IEEE8B", 1, 8)
    assert type_size("fp2") == ("FP2", 1, 2)
    with pytest.raises(ValueError, match="needs a length"):
        type_size("ASCII")
    with pytest.raises(ValueError, match="unknown data type"):
        type_size("FP3")


def _fp2_reference(word: int) -> float | None:
    """FP2 as Campbell prints it: the mantissa digits with the decimal point
    moved left by the exponent (CsiTypes csiFs2ToString), read back as a number."""
    if word in (0x9FFE, 0x9FFF, 0x1FFF):
        return None
    mantissa, exponent = word & 0x1FFF, (word >> 13) & 3
    digits = str(mantissa).rjust(exponent + 1, "0")
    text = digits[: len(digits) - exponent] + "." + digits[len(digits) - exponent :]
    value = float(text)
    return -value if word & 0x8000 and mantissa else value


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=200))
def test_fp2_decodes_as_campbell_prints_it(words: list[int]) -> None:
    head = (
        b'"TOB1","s","CR1000","1","os","CPU:p.cr1","1","t"\r\n'
        b'"SECONDS","NANOSECONDS","X"\r\n"","",""\r\n"","","Smp"\r\n"ULONG","ULONG","FP2"\r\n'
    )
    body = b"".join(
        struct.pack("<II", 1000 + i, 0) + struct.pack(">H", w) for i, w in enumerate(words)
    )
    r = read_tob1(io.BytesIO(head + body))
    assert r.frame.get_column("X").to_list() == [_fp2_reference(w) for w in words]


def _corpus(name: str) -> tuple[bytes, ParseResult]:
    path = CORPUS / "TOB1" / name
    return path.read_bytes(), read_tob1(path)


TOXX = "thyyppa__Toxx__DemoOutputTob1.dat"


@pytest.mark.parametrize("records", [1, 3])
def test_appended_garbage_records_are_cut_at_their_byte_offset(records: int) -> None:
    data, base = _corpus(TOXX)
    size, start = base.meta.extra["record_size"], base.meta.extra["header_bytes"]
    end = start + base.rows * size  # the corpus file ends with a stray byte after it
    # random bytes decode to times anywhere in 1990..2126: far from the last record
    garbage = b"\xa5" * size * records  # SECONDS 0xa5a5a5a5: the year 2078
    result = read_tob1(io.BytesIO(data[:end] + garbage), name="d.dat")
    assert_frame_equal(result.frame, base.frame)
    assert any(
        w.startswith(f"byte {end}: record {base.rows + 1} is not a record of this file")
        for w in result.meta.warnings
    )


def test_bytes_inserted_inside_a_record_cut_the_file_there() -> None:
    data, base = _corpus(TOXX)
    size, start = base.meta.extra["record_size"], base.meta.extra["header_bytes"]
    at = start + 100 * size + 5  # inside record 101, after its SECONDS field
    result = read_tob1(io.BytesIO(data[:at] + b"\x93\x11\xfe" + data[at:]), name="d.dat")
    assert_frame_equal(result.frame, base.frame.head(100))
    assert any(
        w.startswith(f"byte {start + 100 * size}: record 101 is not a record of this file")
        for w in result.meta.warnings
    )


def test_a_foreign_first_record_refuses_the_file() -> None:
    data, base = _corpus(TOXX)
    start = base.meta.extra["header_bytes"]
    # SECONDS of record 1 set to 2126: the records after it agree with each other
    bad = data[:start] + struct.pack("<I", 0xFFFFFF00) + data[start + 4 :]
    with pytest.raises(
        ParseError, match=rf"d\.dat: byte {start}: the first record is not a logger record"
    ):
        read_tob1(io.BytesIO(bad), name="d.dat")


@pytest.mark.parametrize("seed", range(3))
def test_random_garbage_never_adds_a_record(seed: int) -> None:
    import random

    rng = random.Random(seed)
    for name in (TOXX, "alextsfox__camp2ascii__TOB1_full16.dat"):
        data, base = _corpus(name)
        start = base.meta.extra["header_bytes"]
        for _ in range(20):
            at = rng.randrange(start, len(data))
            mutated = data[:at] + rng.randbytes(rng.randrange(1, 64)) + data[at:]
            try:
                result = read_tob1(io.BytesIO(mutated))
            except ParseError as exc:  # refused: the first record cannot be trusted
                assert "the first record is not a logger record" in str(exc)
                continue
            got = set(result.frame.get_column("timestamp").to_list())
            assert got <= set(base.frame.get_column("timestamp").to_list())
