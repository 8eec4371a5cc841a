"""Scintec FORMAT-1 (.mnd) sodar reader: corpus file, fixtures, quirks, errors."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.errors import ParseError
from stationkit.parsers import registry, scintec_mnd
from stationkit.parsers.scintec_mnd import read_scintec_mnd, sniff
from stationkit.parsers.sources import read_head
from tests.conftest import CORPUS, FIXTURES, corpus_files

FILES = corpus_files("SODAR_SCINTEC_MND")
ARM = CORPUS / "SODAR_SCINTEC_MND" / "ARM-DOE__arm-test-data__sodar.20230404.mnd"
TINY = FIXTURES / "scintec_mnd" / "tiny.mnd"


def _cell(frame: pl.DataFrame, ts: datetime, col: str) -> float | None:
    value = frame.filter(pl.col("timestamp") == ts).get_column(col).item()
    return None if value is None else float(value)


def test_corpus_files_read() -> None:
    assert FILES == [ARM]
    for path in FILES:
        res = read_scintec_mnd(path)
        assert res.rows > 0


def test_arm_file_shape_and_cells() -> None:
    res = read_scintec_mnd(ARM)
    # 96 profiles x (26 variables x 58 heights 30..600 m) + timestamp
    assert res.frame.shape == (96, 1 + 26 * 58)
    f = res.frame
    assert f["timestamp"][0] == datetime(2023, 4, 4, 0, 15)
    assert f["timestamp"][-1] == datetime(2023, 4, 5, 0, 0)
    assert f.columns[1:4] == ["speed_30m", "speed_40m", "speed_50m"]
    # first profile (line 55): 30 3.67 129.9 -0.21 0.45 5.29E+05 0 ... sigV 99.99
    t0 = datetime(2023, 4, 4, 0, 15)
    assert _cell(f, t0, "speed_30m") == 3.67
    assert _cell(f, t0, "dir_30m") == 129.9
    assert _cell(f, t0, "bck_30m") == 5.29e5
    assert _cell(f, t0, "error_30m") == 0.0
    assert _cell(f, t0, "sigV_30m") is None  # 99.99 missing
    assert _cell(f, t0, "CT^2_30m") is None  # 9.99E+37 missing
    assert _cell(f, t0, "speed_40m") == 6.18
    # second profile (line 116): 30 8.24 155.1
    assert _cell(f, datetime(2023, 4, 4, 0, 30), "speed_30m") == 8.24
    assert _cell(f, datetime(2023, 4, 4, 0, 30), "dir_40m") == 149.6
    # 12:00 profile (line 2920): 600 m row has PGz 99 (missing) and bck_raw 7.95E-01
    t12 = datetime(2023, 4, 4, 12, 0)
    assert _cell(f, t12, "speed_30m") is None
    assert _cell(f, t12, "W_30m") == -0.35
    assert _cell(f, t12, "W_600m") == 0.31
    assert _cell(f, t12, "PGz_600m") is None
    assert _cell(f, t12, "bck_raw_600m") == 0.795
    assert _cell(f, t12, "shear_600m") is None  # 99.999
    # awk over the data rows: 350 of 5568 speed fields are 99.99
    speed = f.select(pl.col(r"^speed_\d+m$"))
    assert sum(speed.null_count().row(0)) == 350


def test_arm_metadata() -> None:
    res = read_scintec_mnd(ARM)
    meta = res.meta
    assert meta.logger_model == "MFAS"
    assert meta.logger_serial == "A-C-0417"
    assert meta.logger_os == "APRun 1.51"
    assert meta.station_name == "ATMOS"
    assert meta.interval_s == 900.0
    assert meta.timestamp_is_end_of_period is True
    assert meta.extra["n_heights"] == 58
    by_name = {c.name: c for c in res.channels}
    assert by_name["speed_30m"].statistic == "avg"
    assert by_name["speed_30m"].unit == "m/s"
    assert by_name["speed_30m"].height_m == 30.0
    assert by_name["sigW_600m"].statistic == "sd"
    assert by_name["TI_100m"].statistic == "ti"
    assert by_name["CT^2_30m"].unit == "K^2 m^(-2/3)"
    assert by_name["bck_30m"].unit is None
    assert by_name["error_30m"].statistic is None
    assert by_name["dir_30m"].attrs["missing"] == "999.9"


def test_tiny_exact_table() -> None:
    res = read_scintec_mnd(TINY)
    expected = pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 1, 0, 10), datetime(2024, 1, 1, 0, 20)],
            "speed_30m": [3.67, 199.99],  # 199.99 is not the 99.99 marker
            "speed_40m": [None, None],
            "dir_30m": [129.9, 359.9],
            "dir_40m": [None, None],
            "sigW_30m": [None, 0.5],
            "sigW_40m": [0.45, None],
        },
        schema_overrides={"timestamp": pl.Datetime("us")}
        | {c: pl.Float64 for c in ["speed_40m", "dir_40m"]},
    )
    assert res.frame.equals(expected)
    assert res.meta.interval_s == 600.0
    assert [c.height_m for c in res.channels] == [30.0, 40.0] * 3


def test_file_like_and_name() -> None:
    res = read_scintec_mnd(io.BytesIO(TINY.read_bytes()), name="x.mnd")
    assert res.frame.equals(read_scintec_mnd(TINY).frame)


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_line_endings(newline: bytes) -> None:
    data = TINY.read_bytes().replace(b"\n", newline)
    assert read_scintec_mnd(io.BytesIO(data)).frame.equals(read_scintec_mnd(TINY).frame)


def test_bom() -> None:
    data = b"\xef\xbb\xbf" + TINY.read_bytes()
    assert read_scintec_mnd(io.BytesIO(data)).frame.equals(read_scintec_mnd(TINY).frame)


def test_last_row_without_line_break_is_dropped() -> None:
    # its last number may be cut short ("0.1" of "0.15"): the same as without the row
    whole = TINY.read_bytes().rstrip(b"\n")
    res = read_scintec_mnd(io.BytesIO(whole))
    without = read_scintec_mnd(io.BytesIO(whole[: whole.rfind(b"\n") + 1]))
    assert res.frame.equals(without.frame)
    assert "truncated last line dropped (no line break" in res.meta.warnings[0]


def test_truncated_last_line_dropped() -> None:
    data = TINY.read_bytes().rstrip(b"\n")[:-8]
    res = read_scintec_mnd(io.BytesIO(data))
    assert "truncated last line" in res.meta.warnings[0]
    assert res.frame.get_column("speed_30m").to_list() == [3.67, None]


def test_bad_number_names_line() -> None:
    data = TINY.read_bytes().replace(b"129.9", b"12x.9")
    with pytest.raises(ParseError, match=r"line 28: expected a number, found '12x.9'"):
        read_scintec_mnd(io.BytesIO(data), name="bad.mnd")


def test_short_row_names_line() -> None:
    data = TINY.read_bytes().replace(b"  999.9   0.45", b"  999.9")
    with pytest.raises(ParseError, match=r"line 29: expected 4 fields, found 3"):
        read_scintec_mnd(io.BytesIO(data))


def test_duplicate_height_is_error() -> None:
    data = TINY.read_bytes().replace(b"    40  99.99", b"    30  99.99")
    with pytest.raises(ParseError, match=r"line 29: height 30 m appears twice"):
        read_scintec_mnd(io.BytesIO(data))


def test_not_mnd_is_error() -> None:
    with pytest.raises(ParseError, match=r"expected 'FORMAT-1'"):
        read_scintec_mnd(io.BytesIO(b"TOA5,x\n"))
    with pytest.raises(ParseError, match=r"beginning of data block"):
        read_scintec_mnd(io.BytesIO(TINY.read_bytes().split(b"# beginning")[0]))


def test_sniff() -> None:
    for path in FILES:
        assert sniff(read_head(path))
        assert registry.sniff_format(read_head(path)) in (None, scintec_mnd.FORMAT)
    assert sniff(TINY.read_bytes())
    assert not sniff(b"FORMAT-1.1\n2024-01-01T00:00:00Z\n")
    others = [
        p for p in Path(CORPUS).glob("*/*") if p.is_file() and p.parent.name != "SODAR_SCINTEC_MND"
    ]
    assert others
    for path in others:
        assert not sniff(read_head(path)), path
