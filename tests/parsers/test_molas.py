"""Molas B300 lidar 10-minute files: the corpus file, and each quirk on fixtures of our own."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.errors import ParseError
from stationkit.parsers.base import STATISTICS
from stationkit.parsers.molas import read_molas, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "LIDAR_MOLAS"
MOLAS = FIXTURES / "molas"
B300 = (
    CORPUS
    / FOLDER
    / "IEAWindTask52__LidarDataSamples__Molas B300-970WindSpeedTenMinute20230912.txt"
)
HEIGHTS = [30.0, 50.0, 70.0, 90.0, 100.0, 110.0, 130.0, 150.0, 170.0, 190.0, 250.0, 300.0]
TINY_COLUMNS = [
    "timestamp",
    "内温",
    "气压",
    "样本数",
    "30m水平风速(m/s)",
    "30m偏差(m/s)",
    "30m水平风向(°)",
    "30m数据可靠性(%)",
    "50m水平风速(m/s)",
    "50mz方向风速(m/s)",
    "50m湍流强度",
]


def _other_files() -> list[Path]:
    corpus = [
        p
        for folder in sorted(CORPUS.iterdir())
        if folder.is_dir() and folder.name != FOLDER
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    fixtures = [p for p in sorted(FIXTURES.rglob("*")) if p.is_file() and p.parent.name != "molas"]
    return corpus + fixtures


def _names(path: Path) -> list[str]:
    """The column-name line (line 11), decoded independently of the reader."""
    return path.read_bytes().decode("gb18030").split("\r\n")[10].split("\t")


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name[:50])
def test_every_corpus_file_parses_with_every_record(path: Path) -> None:
    r = read_molas(path)
    assert sniff(path.read_bytes()[:8192])
    lines = path.read_bytes().split(b"\r\n")
    data_lines = [ln for ln in lines if ln[:2] == b"20"]
    assert r.rows == len(data_lines)
    names = _names(path)
    text = {"年月日", "时间戳", "经度", "纬度"}
    assert r.frame.columns == ["timestamp", *[n for n in names if n not in text]]
    assert r.frame.get_column("timestamp").null_count() == 0
    assert {c.statistic for c in r.channels} <= STATISTICS | {None}
    assert all("description" in c.attrs for c in r.channels)


def test_corpus_b300_values_and_metadata() -> None:
    r = read_molas(B300)
    assert r.rows == 144
    assert r.frame.width == 127  # timestamp + 6 environment columns + 12 heights x 10
    assert r.meta.format == "molas"
    assert r.meta.logger_serial == "Molas B300-970"
    assert r.meta.logger_os == "V3-1.9"
    assert r.meta.utc_offset_hours == 8.0
    assert r.meta.timestamp_is_end_of_period is False
    assert r.meta.skipped_channels == ("经度", "纬度")
    assert r.meta.warnings == ()
    assert r.meta.extra["encoding"] == "gb18030"
    assert r.meta.extra["altitudes_m"] == HEIGHTS
    assert r.meta.extra["range_gates"][:3] == [6.0, 8.0, 10.0]
    assert r.meta.extra["start_pos"][-1] == 1141.0
    # line 13: E 110°27′5.6″, N 28°04′23.8″
    assert r.meta.extra["longitude_deg"] == pytest.approx(110 + 27 / 60 + 5.6 / 3600)
    assert r.meta.extra["latitude_deg"] == pytest.approx(28 + 4 / 60 + 23.8 / 3600)

    first = r.frame.row(0, named=True)
    # line 13: 2023-09-12 <TAB>00:00<TAB>..<TAB>33.891<TAB>23.171<TAB>904.681<TAB>..<TAB>600<TAB>5.799
    assert first["timestamp"] == datetime(2023, 9, 12, 0, 0)
    assert first["内温"] == 33.891
    assert first["气压"] == 904.681
    assert first["样本数"] == 600.0
    assert first["30m水平风速(m/s)"] == 5.799
    assert first["30m水平风向(°)"] == 84.321
    assert first["300m水平风速(m/s)"] == 7.307
    assert first["300m数据可靠性(%)"] == 100.0
    # line 107 (15:40): the 300 m block is NaN from speed to vertical deviation
    row = r.frame.filter(pl.col("timestamp") == datetime(2023, 9, 12, 15, 40)).row(0, named=True)
    assert row["250m数据可靠性(%)"] == 2.3
    assert row["300m水平风速(m/s)"] is None
    assert row["300mz方向偏差(m/s)"] is None
    assert row["300m信噪比(dB)"] == 0.503
    assert row["300m数据可靠性(%)"] == 0.0
    # line 156: the last record, 23:50
    last = r.frame.row(-1, named=True)
    assert last["timestamp"] == datetime(2023, 9, 12, 23, 50)
    assert last["雨刮器计数"] == 7.0
    assert last["30mz方向风速(m/s)"] == -0.811
    assert last["300m数据可靠性(%)"] == 88.7
    # every NaN in the file (49 of them, whole fields) is null, nothing else
    assert sum(r.frame.null_count().row(0)) == 49


def test_corpus_b300_channels() -> None:
    r = read_molas(B300)
    by_name = {c.name: c for c in r.channels}
    assert sorted({c.height_m for c in r.channels if c.height_m is not None}) == HEIGHTS
    expect = {
        "30m水平风速(m/s)": ("avg", "m/s", "horizontal wind speed at 30 m"),
        "30m偏差(m/s)": ("sd", "m/s", "horizontal wind speed deviation at 30 m"),
        "30m水平风速最小值(m/s)": ("min", "m/s", "horizontal wind speed minimum at 30 m"),
        "30m水平风速最大值(m/s)": ("max", "m/s", "horizontal wind speed maximum at 30 m"),
        "100m水平风向(°)": ("avg", "°", "horizontal wind direction at 100 m"),
        "30mz方向风速(m/s)": ("avg", "m/s", "vertical (z) wind speed at 30 m"),
        "30mz方向偏差(m/s)": ("sd", "m/s", "vertical (z) wind speed deviation at 30 m"),
        "30m信噪比(dB)": ("avg", "dB", "signal-to-noise ratio at 30 m"),
        "30m信噪比最小值(dB)": ("min", "dB", "signal-to-noise ratio minimum at 30 m"),
        "300m数据可靠性(%)": (None, "%", "data reliability (availability) at 300 m"),
        "雨刮器计数": ("count", None, "wiper count"),
        "外温": (None, None, "external temperature"),
    }
    for col, (stat, unit, description) in expect.items():
        c = by_name[col]
        assert (c.statistic, c.unit, c.attrs["description"]) == (stat, unit, description), col
    assert by_name["100m水平风向(°)"].height_m == 100.0
    assert by_name["30mz方向风速(m/s)"].height_m == 30.0
    assert by_name["外温"].height_m is None


def test_tiny_fixture_exact_table() -> None:
    r = read_molas(MOLAS / "tiny_gb2312_crlf.txt")
    expected = pl.DataFrame(
        {
            "timestamp": [datetime(2023, 9, 12, 0, m) for m in (0, 10, 20)],
            "内温": [33.891, 33.849, -9999.0],
            "气压": [1019.9999, 904.584, 904.5],
            "样本数": [600.0, 9999.0, 598.0],
            "30m水平风速(m/s)": [5.799, None, 4.74],
            "30m偏差(m/s)": [1.051, None, 1.072],
            "30m水平风向(°)": [84.321, None, 359.9],
            "30m数据可靠性(%)": [100.0, 0.0, 88.7],
            "50m水平风速(m/s)": [5.916, 6.106, None],
            "50mz方向风速(m/s)": [-1.084, None, -0.954],
            "50m湍流强度": [0.183, 0.201, 0.150],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert r.frame.columns == TINY_COLUMNS
    assert r.frame.equals(expected)
    ti = r.channels[-1]
    assert (ti.statistic, ti.height_m, ti.unit) == ("ti", 50.0, None)
    assert r.meta.station_name == "Test Site"
    assert r.meta.logger_serial == "Molas B300-001"
    assert r.meta.utc_offset_hours == 8.0
    assert r.meta.warnings == ()


def test_file_like_input_matches_path() -> None:
    path = MOLAS / "tiny_gb2312_crlf.txt"
    from_path = read_molas(path)
    from_stream = read_molas(io.BytesIO(path.read_bytes()), name="member.txt")
    assert from_stream.frame.equals(from_path.frame)
    assert from_stream.channels == from_path.channels
    corpus_stream = read_molas(io.BytesIO(B300.read_bytes()))
    assert corpus_stream.frame.equals(read_molas(B300).frame)


def test_utf8_lf_no_trailing_tab_duplicate_rows_no_final_newline() -> None:
    r = read_molas(MOLAS / "utf8_lf_duplicate_no_final_newline.txt")
    assert r.meta.extra["encoding"] == "utf-8"
    assert r.meta.utc_offset_hours == 5.5  # timezone=UTC+05:30
    assert r.frame.columns == TINY_COLUMNS
    assert r.rows == 3  # the exact duplicate row is kept
    assert r.frame.row(1) == r.frame.row(2)
    assert r.frame.get_column("30m水平风速(m/s)").to_list() == [5.799, None, None]
    # a third copy ends the file without a line break: it may be cut short
    assert any("line 14: truncated last line dropped (no line break" in w for w in r.meta.warnings)


def test_lone_cr_line_breaks() -> None:
    data = (MOLAS / "tiny_gb2312_crlf.txt").read_bytes().replace(b"\r\n", b"\r")
    r = read_molas(io.BytesIO(data))
    assert r.frame.equals(read_molas(MOLAS / "tiny_gb2312_crlf.txt").frame)


def test_truncated_last_line_is_dropped_with_warning() -> None:
    r = read_molas(MOLAS / "truncated_last_line.txt")
    assert r.rows == 2
    assert r.meta.warnings == (
        "line 15: truncated last line dropped (it has 4 of 15 fields and no line break)",
    )


def test_dms_position_west_south_negative() -> None:
    text = (MOLAS / "tiny_gb2312_crlf.txt").read_bytes().decode("gb18030")
    lines = text.split("\r\n")
    del lines[12:14]  # keep the 00:20 row only: W 0°30′0″, S 1°0′36″
    r = read_molas(io.BytesIO("\r\n".join(lines).encode("gb18030")))
    assert r.rows == 1
    assert r.meta.extra["longitude_deg"] == pytest.approx(-0.5)
    assert r.meta.extra["latitude_deg"] == pytest.approx(-1.01)


def test_damaged_number_names_line_and_column() -> None:
    with pytest.raises(
        ParseError, match=r"line 14: column '30m水平风速\(m/s\)': expected a number"
    ):
        read_molas(MOLAS / "damaged_number.txt")


def _tiny_text() -> str:
    return (MOLAS / "tiny_gb2312_crlf.txt").read_bytes().decode("gb18030")


def test_bad_timezone_is_an_error() -> None:
    data = _tiny_text().replace("timezone=UTC+8", "timezone=Beijing").encode("gb18030")
    with pytest.raises(ParseError, match=r"line 5: expected a timezone like 'UTC\+8'"):
        read_molas(io.BytesIO(data))


def test_missing_separator_line_is_an_error() -> None:
    data = _tiny_text().replace("***************************", "").encode("gb18030")
    with pytest.raises(ParseError, match=r"expected a '\*\*\*\*' line ending the header"):
        read_molas(io.BytesIO(data))


def test_not_a_molas_file_is_an_error() -> None:
    with pytest.raises(ParseError, match=r"line 1: expected 'HeaderSize=N'"):
        read_molas(io.BytesIO(b"TIMESTAMP,WS\r\n2023-01-01 00:00,1.0\r\n"))


def test_missing_date_column_is_an_error() -> None:
    data = _tiny_text().replace("年月日", "日期").encode("gb18030")
    with pytest.raises(ParseError, match=r"line 11: expected the date and time columns"):
        read_molas(io.BytesIO(data))


def test_bad_time_is_an_error() -> None:
    data = _tiny_text().replace("\t00:10\t", "\t25:61\t").encode("gb18030")
    with pytest.raises(ParseError, match=r"line 14"):
        read_molas(io.BytesIO(data))


def test_duplicate_column_name_is_an_error() -> None:
    data = _tiny_text().replace("50m水平风速(m/s)", "30m水平风速(m/s)").encode("gb18030")
    with pytest.raises(ParseError, match=r"line 11: duplicate column name"):
        read_molas(io.BytesIO(data))


def test_sniff_claims_molas_files_only() -> None:
    assert sniff(B300.read_bytes()[:8192])
    for path in sorted(MOLAS.iterdir()):
        assert sniff(path.read_bytes()[:8192]), path.name
    # a Molas file re-saved with a BOM and without the ID System line
    bare = _tiny_text().replace("ID System=Molas B300-001", "ID System=")
    assert sniff(b"\xef\xbb\xbf" + bare.encode("utf-8"))
    for path in _other_files():
        assert not sniff(path.read_bytes()[:8192]), path
