"""Headerless Campbell ASCII table data: corpus (against its TOA5 sibling),
fixtures, errors, sniffing."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.errors import ParseError
from stationkit.parsers.csi_ascii import read_csi_ascii, sniff
from stationkit.parsers.toa5 import read_toa5
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "CSI_ASCII_NOHEADER"
ASCII = CORPUS / FOLDER / "thyyppa__Toxx__DemoOutputAscii.dat"
TOA5_SIBLING = CORPUS / "TOA5" / "thyyppa__Toxx__DemoOutputToa5.dat"
HERE = FIXTURES / "csi_ascii"
#: the field-name line of the TOA5 sibling
TOXX_COLUMNS = ["TIMESTAMP", "RECORD", "panel_temp", "battery_voltage", "battery_voltage_Min"]
TINY_COLUMNS = ["TIMESTAMP", "RECORD", "WS_ms_Avg", "Status", "AirT_C"]


def dt(*args: int) -> datetime:
    return datetime(*args)


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name)
def test_every_corpus_file_sniffs_and_needs_columns(path: Path) -> None:
    assert sniff(path.read_bytes()[:8192])
    with pytest.raises(ParseError, match="has no header line"):
        read_csi_ascii(path)


def test_toxx_gives_the_same_readings_as_toa5() -> None:
    result = read_csi_ascii(ASCII, columns=TOXX_COLUMNS)
    toa5 = read_toa5(TOA5_SIBLING)
    assert result.frame.equals(toa5.frame)
    assert [c.name for c in result.channels] == [c.name for c in toa5.channels]


def test_toxx_shape_and_cells() -> None:
    frame = read_csi_ascii(ASCII, columns=TOXX_COLUMNS).frame
    assert frame.shape == (1422, 4)  # 1422 lines, no header
    # line 1: "2020-03-08 19:35:00",0,26.86,12.94,12.94
    assert frame.row(0) == (dt(2020, 3, 8, 19, 35), 26.86, 12.94, 12.94)
    # line 1422: "2020-03-13 18:00:00",1419,27.09,12.93,12.93
    assert frame.row(-1) == (dt(2020, 3, 13, 18, 0), 27.09, 12.93, 12.93)


def test_path_and_file_like() -> None:
    stream = read_csi_ascii(io.BytesIO(ASCII.read_bytes()), name="a.dat", columns=TOXX_COLUMNS)
    assert stream.frame.equals(read_csi_ascii(ASCII, columns=TOXX_COLUMNS).frame)


def test_tiny_exact_table_bom_crlf() -> None:
    result = read_csi_ascii(HERE / "tiny_bom_crlf.dat", columns=TINY_COLUMNS)
    expected = pl.DataFrame(
        {
            "timestamp": [dt(2024, 1, 31, 23, 50), dt(2024, 2, 1, 0, 0)],
            "WS_ms_Avg": [8.37, None],
            "AirT_C": [-0.057, 1019.9999],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert result.frame.equals(expected)
    assert result.meta.skipped_channels == ("Status",)
    assert result.meta.extra["record_column"] == "RECORD"


def test_truncated_last_line() -> None:
    result = read_csi_ascii(
        HERE / "truncated_last_line.dat", columns=["TIMESTAMP", "RECORD", "WS", "T"]
    )
    assert result.frame.get_column("T").to_list() == [-0.057, -0.06]
    assert any(w.startswith("line 3: truncated last line dropped") for w in result.meta.warnings)


def test_duplicate_rows_kept() -> None:
    result = read_csi_ascii(HERE / "duplicate_rows.dat", columns=["TIMESTAMP", "RECORD", "WS"])
    assert result.frame.get_column("WS").to_list() == [8.37, 8.37, 8.1]


def test_missing_columns_says_how_to_give_them() -> None:
    with pytest.raises(ParseError, match=r"give the names of every field in order with columns="):
        read_csi_ascii(HERE / "tiny_bom_crlf.dat")


@pytest.mark.parametrize(
    ("columns", "pattern"),
    [
        (
            ["TIMESTAMP", "RECORD", "WS", "T"],
            r"line 1: expected 4 fields \(one per name in columns\), found 5",
        ),
        (["When", "RECORD", "WS", "Status", "T"], r"expected a timestamp column named TIMESTAMP"),
        (["TIMESTAMP", "RECORD", "WS", "WS", "T"], r"duplicate column name 'WS'"),
        ("TIMESTAMP,RECORD", r"columns must be a list of names"),
    ],
)
def test_bad_columns(columns: list[str] | str, pattern: str) -> None:
    with pytest.raises(ParseError, match=pattern):
        read_csi_ascii(HERE / "tiny_bom_crlf.dat", columns=columns)


def test_sniff_rejects_other_corpus_files() -> None:
    assert sniff((HERE / "tiny_bom_crlf.dat").read_bytes())
    ours = set(corpus_files(FOLDER))
    for path in CORPUS.rglob("*"):
        if path.is_file() and path not in ours:
            assert not sniff(path.read_bytes()[:8192]), path.name
