"""Kintech Atlas .wnd: the corpus file, and each quirk of the format on fixtures of our own."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from stationkit.errors import ParseError
from stationkit.parsers.base import STATISTICS
from stationkit.parsers.kintech_wnd import read_kintech_wnd, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

WND = FIXTURES / "kintech_wnd"
FOLDER = "KINTECH_WND"
NIWE = (
    CORPUS
    / FOLDER
    / "navneethtripathy__NIWE_Parser__ID150008_20210324_075740.log_20210324_075750.wnd"
)


def _data_lines(path: Path) -> int:
    """Records as the text has them: non-blank lines after the 4 header lines."""
    return sum(1 for line in path.read_bytes().splitlines()[4:] if line.strip())


def _other_corpus_files() -> list[Path]:
    return [
        p
        for folder in sorted(CORPUS.iterdir())
        if folder.is_dir() and folder.name != FOLDER
        for p in sorted(folder.iterdir())
        if p.is_file()
    ]


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name[:50])
def test_every_corpus_file_parses_with_every_record(path: Path) -> None:
    r = read_kintech_wnd(path)
    assert sniff(path.read_bytes()[:8192])
    assert r.rows == _data_lines(path)
    # named-column line: DateTime + one column per channel
    names = path.read_bytes().splitlines()[3].decode().split()
    assert r.frame.columns == ["timestamp", *names[1:]]
    assert r.frame.get_column("timestamp").null_count() == 0
    assert {c.statistic for c in r.channels} <= STATISTICS | {None}
    assert r.tidy().height == r.rows * len(r.channels)


def test_corpus_niwe_mast_values_metadata_and_channels() -> None:
    r = read_kintech_wnd(NIWE)
    assert r.rows == 76
    assert r.frame.width == 52  # timestamp + 51 channels
    first = r.frame.row(0, named=True)
    # line 5: 2021-03-24,00:10 12.800 9.409 0.200 8.98 9.68 0.0 ... (field 25: 936.320, 29: 81.21)
    assert first["timestamp"] == datetime(2021, 3, 24, 0, 10)
    assert first["Battery"] == 12.8
    assert first["F1_WS_100_0_TFCA"] == 9.409
    assert first["F1_WS_100_0_TFCA-STDev"] == 0.2
    assert first["F1_WS_100_0_TFCA-TI30"] == 0.0
    assert first["F6_PR_100_0_K611PB"] == 936.32
    assert first["A1_WD_98_0_POT_2K"] == 81.21
    assert first["A6_V_5_0_VOLTS-Max"] == 4.965
    # line 58: 04:35, pressure sd 30.578, direction sd 6.18
    row = r.frame.row(53, named=True)
    assert row["timestamp"] == datetime(2021, 3, 24, 4, 35)
    assert row["F6_PR_100_0_K611PB-STDev"] == 30.578
    assert row["A1_WD_98_0_POT_2K-STDev"] == 6.18
    last = r.frame.row(75, named=True)
    # line 80: 2021-03-24,07:55 13.400 4.681 1.049 ... 4.984
    assert last["timestamp"] == datetime(2021, 3, 24, 7, 55)
    assert last["Battery"] == 13.4
    assert last["F1_WS_100_0_TFCA"] == 4.681
    assert last["A6_V_5_0_VOLTS-Max"] == 4.984
    # 5- and 10-minute steps and gaps are kept as logged: 04:35, 04:45, 04:50, 05:25
    steps = r.frame.get_column("timestamp").to_list()[53:57]
    assert steps == [datetime(2021, 3, 24, h, m) for h, m in ((4, 35), (4, 45), (4, 50), (5, 25))]

    meta = r.meta
    assert meta.utc_offset_hours == 0.0
    assert meta.timestamp_is_end_of_period is None
    assert meta.station_name == "Narendra-IWSKA8"
    assert meta.logger_serial == "9571112094"
    assert meta.extra["atlas_version"] == "2.0.0.342"
    assert meta.extra["site_id"] == "150008"
    assert meta.extra["date_format"] == "yyyy/MM/dd"
    assert meta.extra["hash"].startswith("DF30E0BF074E6AFF") and len(meta.extra["hash"]) == 128
    assert meta.warnings == ()

    ch = {c.name: c for c in r.channels}
    ws = ch["F1_WS_100_0_TFCA"]
    assert (ws.statistic, ws.unit, ws.height_m) == ("avg", "m/s", 100.0)
    assert ws.attrs["slope"] == 0.04593 and ws.attrs["offset"] == 0.27441
    assert ws.attrs["column_prefix"] == "FRQ(1)"
    assert ch["F2_WS_100_180_TFCA"].attrs["orientation_deg"] == 180.0
    assert ch["F1_WS_100_0_TFCA-STDev"].statistic == "sd"
    assert ch["F1_WS_100_0_TFCA-Min"].statistic == "min"
    assert ch["F1_WS_100_0_TFCA-Max"].statistic == "max"
    ti = ch["F1_WS_100_0_TFCA-TI30"]
    assert (ti.statistic, ti.unit, ti.attrs["suffix"]) == ("ti", None, "TI30")
    # JSON says 'POT 2K', the column says 'POT_2K': matched through the prefix ANL(1)
    wd = ch["A1_WD_98_0_POT_2K"]
    assert (wd.unit, wd.height_m, wd.attrs["sensor_name"]) == ("°", 98.0, "A1_WD_98_0_POT 2K")
    pr = ch["F6_PR_100_0_K611PB"]
    assert (pr.unit, pr.attrs["offset"]) == ("mBar", 600.0)


def test_tiny_fixture_exact_table() -> None:
    """CRLF, grouped numbers, NaN, a duplicate row, '#' in a sensor name."""
    r = read_kintech_wnd(WND / "tiny.wnd")
    assert r.frame.rows() == [
        (datetime(2021, 3, 24, 0, 10), 12.8, 9.409, 0.2, 8.98, 9.68, 0.021, 1013.2, 0.4, 81.21),
        (datetime(2021, 3, 24, 0, 15), 12.8, None, None, None, None, None, 1013.4, 0.0, 82.27),
        (datetime(2021, 3, 24, 0, 25), 12.7, 8.39, 0.2, 8.08, 8.88, 0.024, 999.9, 1.0, 72.77),
        (datetime(2021, 3, 24, 0, 25), 12.7, 8.39, 0.2, 8.08, 8.88, 0.024, 999.9, 1.0, 72.77),
    ]
    assert [(c.name, c.statistic, c.unit, c.height_m) for c in r.channels] == [
        ("Battery", "avg", "V", 0.0),
        ("F1_WS_80_270_#1", "avg", "m/s", 80.0),
        ("F1_WS_80_270_#1-STDev", "sd", "m/s", 80.0),
        ("F1_WS_80_270_#1-Min", "min", "m/s", 80.0),
        ("F1_WS_80_270_#1-Max", "max", "m/s", 80.0),
        ("F1_WS_80_270_#1-TI30", "ti", None, 80.0),
        ("A1_PR_10_0_SETRA_276", "avg", "mBar", 10.0),
        ("A1_PR_10_0_SETRA_276-STDev", "sd", "mBar", 10.0),
        ("A2_WD_78_0_POT", "avg", "°", 78.0),
    ]
    assert r.meta.utc_offset_hours == 5.5
    assert r.meta.warnings == ()
    assert r.channels[1].attrs["orientation_deg"] == 270.0
    assert r.channels[6].attrs["slope"] == 100.0


def test_path_and_file_like_give_the_same_result() -> None:
    path = WND / "tiny.wnd"
    by_path = read_kintech_wnd(path)
    by_stream = read_kintech_wnd(io.BytesIO(path.read_bytes()), name="tiny.wnd")
    assert by_stream.frame.equals(by_path.frame)
    assert by_stream.channels == by_path.channels
    with path.open("rb") as fh:
        assert read_kintech_wnd(fh).frame.equals(by_path.frame)


@pytest.mark.parametrize("eol", [b"\n", b"\r"], ids=["lf", "cr"])
def test_line_endings(eol: bytes, tmp_path: Path) -> None:
    data = (WND / "tiny.wnd").read_bytes().replace(b"\r\n", eol)
    path = tmp_path / "t.wnd"
    path.write_bytes(data)
    assert sniff(data)
    assert read_kintech_wnd(path).frame.equals(read_kintech_wnd(WND / "tiny.wnd").frame)


def test_declared_day_first_format_bom_and_no_final_newline() -> None:
    """'dd/MM/yyyy' with the culture's '.' separator: 01.04.2021 is April 1, not January 4."""
    r = read_kintech_wnd(WND / "declared_dayfirst_bom_lf_no_final_newline.wnd")
    # the last line (no line break, ends in a number) may be cut short: dropped
    assert r.frame.get_column("timestamp").to_list() == [datetime(2021, 4, 1, 0, 10)]
    assert r.meta.utc_offset_hours == -3.0
    assert r.meta.extra["encoding"] == "utf-8-sig"
    assert r.frame.get_column("A2_WD_78_0_POT").to_list() == [180.0]
    assert any("truncated last line dropped (no line break" in w for w in r.meta.warnings)


def test_latin1_and_lone_cr_and_declared_slashes() -> None:
    r = read_kintech_wnd(WND / "latin1_cr.wnd")
    assert r.meta.station_name == "Sitio Añón"
    assert {c.name: c.unit for c in r.channels}["A2_WD_78_0_POT"] == "°"
    assert r.frame.row(0) == (
        datetime(2021, 3, 24, 0, 10), 12.8, 9.4, 0.2, 8.9, 9.6, 0.0, 936.3, 0.0, 81.2,
    )  # fmt: skip


def test_truncated_last_line_is_dropped_with_a_warning() -> None:
    r = read_kintech_wnd(WND / "truncated_last_line.wnd")
    assert r.rows == 1
    assert r.meta.warnings == (
        "line 6: truncated last line dropped (it has 3 of 10 fields and no line break)",
    )


def test_whole_field_grouping_only(tmp_path: Path) -> None:
    """'1,025.9' is 1025.9; a comma elsewhere is not a number."""
    data = (WND / "tiny.wnd").read_bytes().replace(b"999.9 1.0", b"1,0255.9 1.0")
    path = tmp_path / "bad_group.wnd"
    path.write_bytes(data)
    with pytest.raises(
        ParseError, match=r"line 7: column 'A1_PR_10_0_SETRA_276': expected a number"
    ):
        read_kintech_wnd(path)


def test_bad_number_names_file_line_and_column() -> None:
    with pytest.raises(
        ParseError, match=r"bad_number\.wnd, line 6: .*'A1_PR_10_0_SETRA_276'.*'ERR'"
    ):
        read_kintech_wnd(WND / "bad_number.wnd")


def test_bad_timestamp(tmp_path: Path) -> None:
    data = (WND / "tiny.wnd").read_bytes().replace(b"2021-03-24,00:15", b"2021-03-24,0x:15")
    path = tmp_path / "bad_ts.wnd"
    path.write_bytes(data)
    with pytest.raises(ParseError, match=r"line 6: expected a timestamp.*'2021-03-24 0x:15'"):
        read_kintech_wnd(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            b"Kintech Engineering Atlas",
            b"Kintech Engineering Atlantis",
            r"line 1: expected 'Kintech",
        ),
        (b'#[{"ColumnPrefix":"ANL(1)"', b'#[{"ColumnPrefix":ANL(1)"', r"line 2: the channel list"),
        (b"#UTC+05:30:00#", b"#CET#", r"line 2: expected a time zone"),
        (b"2.0.0.342#UTC", b"2.0.0.342UTC", r"line 2: expected 11 '#'-separated header fields"),
        (b"FRQ(1)-TI30 ANL(1) ", b"FRQ(1)-TI30 ", r"line 4: expected as many named columns"),
        (b"DateTime Battery F1", b"Date Battery F1", r"line 4: expected the named-column line"),
        (b"F1_WS_80_270_#1-Min", b"F1_WS_80_270_#1-Max", r"line 4: duplicate column name"),
        (b"0.200 8.98", b"0.200", r"line 5: expected 10 fields, found 9"),
    ],
)
def test_bad_headers_and_rows(old: bytes, new: bytes, message: str, tmp_path: Path) -> None:
    data = (WND / "tiny.wnd").read_bytes()
    assert old in data
    path = tmp_path / "bad.wnd"
    path.write_bytes(data.replace(old, new, 1))
    with pytest.raises(ParseError, match=message):
        read_kintech_wnd(path)


def test_sniff_rejects_every_other_corpus_format() -> None:
    others = _other_corpus_files()
    assert others
    accepted = [p.name for p in others if sniff(p.read_bytes()[:8192])]
    assert accepted == []
    assert not sniff(b"")
    assert sniff(b"\xef\xbb\xbf" + (WND / "tiny.wnd").read_bytes())


def test_decimal_comma_culture() -> None:
    """List separator ';', decimal ',', grouping '.': '1.013,2' is 1013.2, '24.03.2021;00:10'."""
    r = read_kintech_wnd(WND / "decimal_comma_semicolon_list.wnd")
    assert r.frame.rows() == [
        (datetime(2021, 3, 24, 0, 10), 12.8, 9.409, 0.2, 8.98, 9.68, 0.021, 1013.2, 0.4, 81.21),
        (datetime(2021, 3, 24, 0, 20), 12.7, None, None, None, None, None, 999.9, 1.0, 72.0),
    ]
    assert r.meta.extra["decimal_separator"] == ","
    assert r.meta.extra["list_separator"] == ";"
