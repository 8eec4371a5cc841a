"""AQSystem AQ500 sodar result files: corpus file, fixtures, quirks, errors."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.errors import ParseError
from stationkit.parsers import aq500, registry
from stationkit.parsers.aq500 import read_aq500, sniff
from stationkit.parsers.sources import read_head
from tests.conftest import CORPUS, FIXTURES, corpus_files

FILES = corpus_files("SODAR_AQ500")
KASSEL = CORPUS / "SODAR_AQ500" / "e-WindLidar__Lidaco__161122_result.txt"
TINY = FIXTURES / "aq500" / "tiny.txt"


def _cell(frame: pl.DataFrame, ts: datetime, col: str) -> float | None:
    value = frame.filter(pl.col("timestamp") == ts).get_column(col).item()
    return None if value is None else float(value)


def test_corpus_files_read() -> None:
    assert FILES == [KASSEL]
    for path in FILES:
        assert read_aq500(path).rows > 0


def test_kassel_shape_and_cells() -> None:
    res = read_aq500(KASSEL)
    f = res.frame
    # 144 data lines, 4 scalar fields + 6 variables x 31 levels (50..200 m)
    assert f.shape == (144, 1 + 4 + 6 * 31)
    assert f["timestamp"][0] == datetime(2016, 11, 22, 0, 0)  # '20161122  0:00'
    assert f["timestamp"][-1] == datetime(2016, 11, 22, 23, 50)
    t0 = datetime(2016, 11, 22, 0, 0)
    # 20161122  0:00,1193,134,0,726,4.33,184,.85,.12,.37,117,4.7,...
    assert _cell(f, t0, "Battery voltage") == 1193.0
    assert _cell(f, t0, "Temperature sensor") == 134.0
    assert _cell(f, t0, "Speed_50m") == 4.33
    assert _cell(f, t0, "Dir_50m") == 184.0
    assert _cell(f, t0, "Std-Speed_50m") == 0.85
    assert _cell(f, t0, "Vertical velocity(w)_50m") == 0.12
    assert _cell(f, t0, "Std-w_50m") == 0.37
    assert _cell(f, t0, "Quality(S/N*10)_50m") == 117.0
    assert _cell(f, t0, "Speed_55m") == 4.7
    assert _cell(f, t0, "Std-Speed_60m") is None  # field 20 = 9999
    assert _cell(f, t0, "Speed_200m") == 8.85  # field 186
    t12 = datetime(2016, 11, 22, 12, 0)
    # 20161122 12:00,1163,119,1,700,2.11,216,9999,...; field 190 .3, 191 61
    assert _cell(f, t12, "Humidity sensor") == 1.0
    assert _cell(f, t12, "Pressure sensor") == 700.0
    assert _cell(f, t12, "Std-Speed_50m") is None
    assert _cell(f, t12, "Std-w_200m") == 0.3
    assert _cell(f, t12, "Quality(S/N*10)_200m") == 61.0
    # fields 178/179 (level 190 m), missing from the header's lists, are read
    t_end = datetime(2016, 11, 22, 23, 50)
    assert _cell(f, t_end, "Std-w_190m") == 0.13
    assert _cell(f, t_end, "Quality(S/N*10)_190m") == 128.0
    assert _cell(f, t_end, "Speed_200m") is None
    # awk: 189 speed fields (6, 12, .. 186) are 9999
    speed = f.select(pl.col(r"^Speed_\d+m$"))
    assert sum(speed.null_count().row(0)) == 189


def test_kassel_metadata() -> None:
    res = read_aq500(KASSEL)
    meta = res.meta
    assert meta.station_name == "Escheberg_AJ03"  # NUL and space padding stripped
    assert meta.program == "9S24"
    assert meta.interval_s == 600.0
    assert meta.timestamp_is_end_of_period is None
    assert meta.extra["Antenna orientation(deg)"] == "98"
    assert len(meta.warnings) == 2 and "fields [178]" in meta.warnings[0]
    by_name = {c.name: c for c in res.channels}
    assert by_name["Speed_50m"].unit == "m/s"
    assert by_name["Speed_50m"].statistic == "avg"
    assert by_name["Dir_200m"].unit == "degrees"
    assert by_name["Std-Speed_100m"].statistic == "sd"
    assert by_name["Std-w_190m"].attrs["field"] == 178
    assert by_name["Std-w_190m"].height_m == 190.0
    assert by_name["Quality(S/N*10)_50m"].unit is None
    assert by_name["Battery voltage"].unit == "V * 100"
    assert by_name["Pressure sensor"].attrs["enabled"] is False


def test_tiny_exact_table() -> None:
    res = read_aq500(TINY)
    expected = pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 1, 9, 0), datetime(2024, 1, 1, 10, 10)],
            "Battery voltage": [1193.0, 1194.0],
            "Temperature sensor": [134.0, None],
            "Speed_50m": [4.33, None],
            "Speed_60m": [19.9999, 5.0],  # 9999 inside a number is kept
            "Std-Speed_50m": [0.85, -0.12],
            "Std-Speed_60m": [0.3, None],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert res.frame.equals(expected)
    assert "fields [7] taken from the level layout" in res.meta.warnings[0]


def test_file_like() -> None:
    res = read_aq500(io.BytesIO(TINY.read_bytes()), name="tiny.txt")
    assert res.frame.equals(read_aq500(TINY).frame)


def test_lf_and_no_trailing_separator() -> None:
    data = TINY.read_bytes().replace(b"\r\n", b"\n").replace(b",\n", b"\n")
    assert read_aq500(io.BytesIO(data)).frame.equals(read_aq500(TINY).frame)


def test_missing_eod_and_truncated_last_line() -> None:
    data = TINY.read_bytes().split(b"[EOD]")[0].rstrip(b"\r\n")[:-10]
    res = read_aq500(io.BytesIO(data))
    assert res.rows == 1
    assert any("no [EOD]" in w for w in res.meta.warnings)
    assert any("line 21: truncated last line" in w for w in res.meta.warnings)


def test_bad_number_names_line() -> None:
    data = TINY.read_bytes().replace(b",-.12,", b",-.1x,")
    with pytest.raises(ParseError, match=r"bad.txt, line 21: .*'-.1x'"):
        read_aq500(io.BytesIO(data), name="bad.txt")


def test_bad_timestamp_names_line() -> None:
    data = TINY.read_bytes().replace(b"20240101 10:10", b"2024-01-0110:10")
    with pytest.raises(ParseError, match=r"line 21"):
        read_aq500(io.BytesIO(data))


def test_header_errors() -> None:
    with pytest.raises(ParseError, match=r"expected a \[BOH\] line"):
        read_aq500(io.BytesIO(b"[BOF]\r\n"))
    data = TINY.read_bytes().replace(b"Data field 4,6:", b"Data field 4,9:")
    with pytest.raises(ParseError, match=r"line 16: expected field numbers 4,6"):
        read_aq500(io.BytesIO(data))


def test_sniff() -> None:
    for path in FILES:
        assert sniff(read_head(path))
        assert registry.sniff_format(read_head(path)) in (None, aq500.FORMAT)
    assert sniff(TINY.read_bytes())
    assert not sniff(b"[BOF]\r\n[Other]\r\n")
    others = [p for p in Path(CORPUS).glob("*/*") if p.is_file() and p.parent.name != "SODAR_AQ500"]
    assert others
    for path in others:
        assert not sniff(read_head(path)), path
