"""Campbell CSIXML: corpus (against its TOA5 sibling), fixtures, errors, sniffing."""

from __future__ import annotations

import io
import random
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.errors import ParseError
from stationkit.parsers import csixml
from stationkit.parsers.csixml import read_csixml, sniff
from stationkit.parsers.toa5 import read_toa5
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "CSIXML"
XML = CORPUS / FOLDER / "thyyppa__Toxx__DemoOutputXML.xml"
TOA5_SIBLING = CORPUS / "TOA5" / "thyyppa__Toxx__DemoOutputToa5.dat"
HERE = FIXTURES / "csixml"


def dt(*args: int) -> datetime:
    return datetime(*args)


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name)
def test_every_corpus_file_parses_and_sniffs(path: Path) -> None:
    assert sniff(path.read_bytes()[:8192])
    assert read_csixml(path).rows > 0


def test_toxx_gives_the_same_readings_as_toa5() -> None:
    xml = read_csixml(XML)
    toa5 = read_toa5(TOA5_SIBLING)
    assert xml.frame.equals(toa5.frame)
    assert [(c.name, c.statistic, c.unit) for c in xml.channels] == [
        (c.name, c.statistic, c.unit) for c in toa5.channels
    ]


def test_toxx_shape_cells_and_meta() -> None:
    result = read_csixml(XML)
    frame = result.frame
    assert frame.shape == (1422, 4)
    assert frame.row(0) == (dt(2020, 3, 8, 19, 35), 26.86, 12.94, 12.94)
    # <r no="17" time="2020-03-08 21:00:00"><v1>26.8</v1><v2>12.94</v2><v3>12.94</v3>
    assert frame.row(17) == (dt(2020, 3, 8, 21, 0), 26.8, 12.94, 12.94)
    # <r no="1421" time="2020-03-13 18:00:00"><v1>27.09</v1><v2>12.93</v2><v3>12.93</v3>
    assert frame.row(-1) == (dt(2020, 3, 13, 18, 0), 27.09, 12.93, 12.93)
    meta = result.meta
    assert meta.station_name == "__STATION_NAME__"
    assert meta.table == "__TABLE_NAME_CSIXML__"
    assert meta.logger_model == "__DATALOGGER_MODEL__"
    assert meta.logger_serial == "12345"
    assert meta.extra["program_signature"] == "54321"
    assert meta.extra["csixml_version"] == "1.0"
    units = [c.unit for c in result.channels]
    assert units == ["°C", "volts", "volts"]  # &#176;C decoded


def test_regular_and_stream_readers_agree_on_the_corpus() -> None:
    data = XML.read_bytes()
    regular = csixml._read_regular(data, "x.xml")
    assert regular is not None  # LoggerNet's layout takes the vectorised path
    stream = csixml._read_stream(data, "x.xml")
    assert regular.frame.equals(stream.frame)
    assert regular.channels == stream.channels
    assert regular.meta == stream.meta


def test_irregular_rows_take_the_stream_reader() -> None:
    # tiny.xml leaves out <v3> in its second row
    assert csixml._read_regular((HERE / "tiny.xml").read_bytes(), "tiny.xml") is None


def test_both_readers_name_the_line_of_a_bad_value() -> None:
    data = (HERE / "bad_value.xml").read_bytes()
    for reader in (csixml._read_regular, csixml._read_stream):
        with pytest.raises(ParseError, match="expected a number") as info:
            reader(data, "bad_value.xml")
        assert info.value.line == 21


def test_path_and_file_like() -> None:
    stream = read_csixml(io.BytesIO(XML.read_bytes()), name="x.xml")
    assert stream.frame.equals(read_csixml(XML).frame)


def test_tiny_exact_table() -> None:
    result = read_csixml(HERE / "tiny.xml")
    expected = pl.DataFrame(
        {
            "timestamp": [dt(2024, 1, 31, 23, 50), datetime(2024, 2, 1, 0, 0, 0, 500000)],
            "WS_ms_Avg": [8.37, None],  # NAN
            "WS_ms_Std": [1.24, None],  # empty <v2></v2>
            "WindDir_SD1_WVT": [12.5, None],  # <v3> absent
            "Heater": [-1.0, 0.0],  # true / false as Campbell's TOA5 writes them
            "Count": [3.0, 0.0],
            "T_probe": [1019.9999, None],  # -INF
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert result.frame.equals(expected)
    assert result.meta.skipped_channels == ("AirT_C_TMx", "Status")
    described = [(c.name, c.statistic, c.unit) for c in result.channels]
    assert described == [
        ("WS_ms_Avg", "avg", "m/s"),
        ("WS_ms_Std", "sd", "m/s"),
        ("WindDir_SD1_WVT", "sd", "Deg"),
        ("Heater", None, None),
        ("Count", "sum", None),
        ("T_probe", "sample", "°C"),
    ]
    meta = result.meta
    assert (meta.station_name, meta.table, meta.logger_model) == ("Mast 7", "Ten_Min", "CR1000X")
    assert (meta.logger_serial, meta.logger_os) == ("4242", "CR1000X.Std.05.01")
    assert meta.program == "mast7.CR1X"  # without 'CPU:'


def test_zone_suffix_gives_utc_instants() -> None:
    frame = read_csixml(HERE / "utc_suffix.xml").frame
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")


def test_no_rows_crlf() -> None:
    result = read_csixml(HERE / "no_rows_crlf.xml")
    assert result.rows == 0
    assert [c.name for c in result.channels] == ["WS_ms_Avg", "AirT_C"]


@pytest.mark.parametrize(
    ("fixture", "pattern"),
    [
        ("billion_laughs.xml", r"line 2: refusing an XML document with a <!DOCTYPE declaration"),
        ("malformed.xml", r"line 21: malformed XML \(mismatched tag\)"),
        ("bad_value.xml", r"line 21: field 'AirT_C' \(<v2>\): expected a number, found '-0,4'"),
        ("no_time.xml", r"line 20: record 2: expected a time attribute"),
        ("bad_time.xml", r"line 20: .*2024-01-31 24:70:00"),
        ("unknown_value.xml", r"record 1: expected value elements <v1>..<v2>, found <v3>"),
        ("not_csixml.xml", r"line 1: expected a <csixml> root element, found <table>"),
    ],
)
def test_errors(fixture: str, pattern: str) -> None:
    with pytest.raises(ParseError, match=pattern) as info:
        read_csixml(HERE / fixture)
    assert info.value.path is not None and info.value.path.endswith(fixture)


def test_entity_declaration_without_doctype_is_refused() -> None:
    data = b'<?xml version="1.0"?>\n<!-- padding -->\n<!ENTITY a "b">\n<csixml/>'
    with pytest.raises(ParseError, match=r"entity.xml, line 3: refusing an XML document"):
        read_csixml(io.BytesIO(data), name="entity.xml")


def test_utf16_is_refused() -> None:
    data = (HERE / "utc_suffix.xml").read_text().encode("utf-16")
    with pytest.raises(ParseError, match="expected a UTF-8 or ASCII CSIXML document"):
        read_csixml(io.BytesIO(data), name="wide.xml")


def test_empty_stream() -> None:
    with pytest.raises(ParseError, match=r"empty\.xml"):
        read_csixml(io.BytesIO(b""), name="empty.xml")


def test_sniff_accepts_fixtures_and_rejects_other_corpus_files() -> None:
    assert sniff((HERE / "tiny.xml").read_bytes())
    assert not sniff((HERE / "not_csixml.xml").read_bytes())
    ours = set(corpus_files(FOLDER))
    for path in CORPUS.rglob("*"):
        if path.is_file() and path not in ours:
            assert not sniff(path.read_bytes()[:8192]), path.name


def test_quoted_missing_markers_are_missing() -> None:
    # <v1>&quot;NAN&quot;</v1> refused the whole file once
    result = read_csixml(HERE / "quoted_nan.xml")
    assert result.frame.get_column("WS_ms_Avg").to_list() == [None, None]
    assert result.frame.get_column("T_probe").to_list() == [1019.9999, None]  # "INF"
    assert result.frame.get_column("WS_ms_Std").to_list() == [1.24, None]


def test_a_record_outside_data_is_an_error_naming_its_line() -> None:
    with pytest.raises(
        ParseError,
        match=r"record_after_data\.xml, line 28: record 2: expected <r> records inside "
        r"<data>, found one inside <csixml>",
    ):
        read_csixml(HERE / "record_after_data.xml")


def test_shuffled_lines_never_crash() -> None:
    lines = (HERE / "tiny.xml").read_bytes().split(b"\n")
    rng = random.Random(7)
    for _ in range(300):
        rng.shuffle(lines)
        try:
            read_csixml(io.BytesIO(b"\n".join(lines)), name="shuffled.xml")
        except ParseError as exc:
            assert str(exc).startswith("shuffled.xml")
