"""ZephIR 300 CSV: the corpus file, and each quirk of the format on fixtures of our own."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from stationkit.errors import ParseError
from stationkit.parsers.base import STATISTICS
from stationkit.parsers.zephir_csv import read_zephir_csv, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

ZPH = FIXTURES / "zephir_csv"
FOLDER = "ZX_ZEPHIR_CSV"
KASSEL = CORPUS / FOLDER / "e-WindLidar__Lidaco__Wind10_317@Y2016_M12_D13.ZPH.csv"
HEIGHTS = [297.0, 247.0, 197.0, 157.0, 137.0, 117.0, 77.0, 57.0, 38.0, 37.0]


def _other_corpus_files() -> list[Path]:
    return [
        p
        for folder in sorted(CORPUS.iterdir())
        if folder.is_dir() and folder.name != FOLDER
        for p in sorted(folder.iterdir())
        if p.is_file()
    ]


def _sentinel_fields(path: Path, skip: set[str]) -> int:
    """Fields of measurement columns that are exactly 9999 or 9998 in any decimal spelling."""
    lines = path.read_bytes().decode("latin-1").splitlines()
    names = lines[1].split(";")
    count = 0
    for line in lines[2:]:
        for name, value in zip(names, line.split(";"), strict=True):
            if name in skip or name.startswith("Checksum"):
                continue
            if value.split(",")[0] in ("9999", "9998") and set(value.partition(",")[2]) <= {"0"}:
                count += 1
    return count


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name[:50])
def test_every_corpus_file_parses_with_every_record(path: Path) -> None:
    r = read_zephir_csv(path)
    assert sniff(path.read_bytes()[:8192])
    lines = [ln for ln in path.read_bytes().splitlines()[2:] if ln.strip()]
    assert r.rows == len(lines)
    assert r.frame.get_column("timestamp").null_count() == 0
    assert {c.statistic for c in r.channels} <= STATISTICS | {None}
    assert r.tidy().height == r.rows * len(r.channels)
    names = path.read_bytes().splitlines()[1].decode("latin-1").split(";")
    text = {"Time and Date", "Reference", "Timestamp (s)", *r.meta.skipped_channels}
    assert r.frame.columns == ["timestamp", *[n for n in names if n not in text and ":" not in n]]
    # every 9999/9998 field became null, and nothing else did (no empty fields in the file)
    skip = {"Reference", "Time and Date", "Timestamp (s)", *r.meta.skipped_channels}
    nulls = sum(r.frame.drop("timestamp").null_count().row(0))
    assert nulls == _sentinel_fields(path, skip)


def test_corpus_kassel_values_metadata_and_channels() -> None:
    r = read_zephir_csv(KASSEL)
    assert r.rows == 288
    assert r.frame.width == 94  # 100 fields - 6 text/time/counter columns
    assert sum(r.frame.drop("timestamp").null_count().row(0)) == 3813
    first = r.frame.row(0, named=True)
    # line 3: 21980722;13.12.2016 00:00:00;547516800;...;11,767;...;311,066;...;992,800;...
    assert first["timestamp"] == datetime(2016, 12, 13, 0, 0)
    assert first["Battery (V)"] == 11.767
    assert first["ZephIR Bearing (deg)"] == 311.066
    assert first["Pressure (mbar)"] == 992.8
    assert first["Packets in Average at 297m"] == 36.0
    assert first["Horizontal Wind Speed (m/s) at 297m"] == 5.039
    assert first["Horizontal Wind Speed Std. Dev. (m/s) at 297m"] == 0.444
    assert first["TI at 297m"] == 0.09593122
    # line 15 (02:00): 9999,000 at 117m direction and speed -> null; packets 36 kept
    row = r.frame.row(12, named=True)
    assert row["timestamp"] == datetime(2016, 12, 13, 2, 0)
    assert row["Packets in Average at 117m"] == 36.0
    assert row["Wind Direction (deg) at 117m"] is None
    assert row["Horizontal Wind Speed (m/s) at 117m"] is None
    # line 89 (14:20): 9998,000 vertical speed at 297m -> null; speed 6,103 kept
    row = r.frame.row(86, named=True)
    assert row["timestamp"] == datetime(2016, 12, 13, 14, 20)
    assert row["Vertical Wind Speed (m/s) at 297m"] is None
    assert row["Horizontal Wind Speed (m/s) at 297m"] == 6.103
    # line 91 (14:40): bare 9999 TI at 137m -> null; packets at 117m 33 kept
    row = r.frame.row(88, named=True)
    assert row["TI at 137m"] is None
    assert row["Packets in Average at 117m"] == 33.0
    last = r.frame.row(287, named=True)
    # line 290: 14.12.2016 23:50:00 ... 11,760 ... 993,600 ... 6,271 ... 0,0405403
    assert last["timestamp"] == datetime(2016, 12, 14, 23, 50)
    assert last["Battery (V)"] == 11.76
    assert last["Pressure (mbar)"] == 993.6
    assert last["Horizontal Wind Speed (m/s) at 297m"] == 6.271
    assert last["TI at 297m"] == 0.0405403

    meta = r.meta
    assert meta.utc_offset_hours == 1.0
    assert meta.timestamp_is_end_of_period is False
    assert meta.logger_serial == "317"
    assert meta.extra["measurement_heights_m"] == HEIGHTS
    assert meta.extra["header"]["CSV Converter"] == "v1,114"
    assert meta.extra["header"]["ZephIR window height above ground"] == "3,0m"
    assert "38m is a fixed reference measurement" in meta.extra["notes"]
    assert meta.extra["counter_columns"] == ["Reference", "Timestamp (s)"]
    assert meta.skipped_channels == ("Info. Flags", "Status Flags", "GPS", "Checksum")

    ch = {c.name: c for c in r.channels}
    assert sorted({c.height_m for c in r.channels if c.height_m is not None}) == sorted(HEIGHTS)
    expected = {
        "Packets in Average at 38m": ("count", None, 38.0),
        "Wind Direction (deg) at 38m": ("avg", "deg", 38.0),
        "Horizontal Wind Speed (m/s) at 38m": ("avg", "m/s", 38.0),
        "Horizontal Wind Speed Min (m/s) at 38m": ("min", "m/s", 38.0),
        "Horizontal Wind Speed Max (m/s) at 38m": ("max", "m/s", 38.0),
        "Horizontal Wind Speed Std. Dev. (m/s) at 38m": ("sd", "m/s", 38.0),
        "Vertical Wind Speed (m/s) at 38m": ("avg", "m/s", 38.0),
        "TI at 38m": ("ti", None, 38.0),
        "Air Temp. (C)": ("avg", "C", None),
        "Proportion Of Packets With Rain (%)": (None, "%", None),
    }
    for name, want in expected.items():
        assert (ch[name].statistic, ch[name].unit, ch[name].height_m) == want, name


def test_tiny_fixture_exact_table_and_whole_field_sentinels() -> None:
    """9999, 9999,000, 9998,000 -> null; 19999, 1019,9999 and 9999,5 stay."""
    r = read_zephir_csv(ZPH / "tiny_crlf_sentinels.csv")
    assert r.frame.columns == [
        "timestamp", "Battery (V)", "Pressure (mbar)", "Packets in Average at 100m",
        "Horizontal Wind Speed (m/s) at 100m", "Horizontal Wind Speed Std. Dev. (m/s) at 100m",
        "TI at 100m", "Horizontal Wind Speed (m/s) at 38m",
    ]  # fmt: skip
    second = (datetime(2016, 12, 13, 0, 10), 11.724, None, None, None, 9999.5, None, 4.5)
    assert r.frame.rows() == [
        (datetime(2016, 12, 13, 0, 0), 11.767, 1019.9999, 36.0, 5.039, 0.444, 0.09593122, 19999.0),
        second,
        second,  # an exact duplicate row is kept
    ]
    assert r.meta.utc_offset_hours == -2.5
    assert r.meta.timestamp_is_end_of_period is True
    assert r.meta.skipped_channels == ("Info. Flags", "Status Flags", "GPS", "Checksum")
    assert r.meta.warnings == ()


def test_path_and_file_like_give_the_same_result() -> None:
    path = ZPH / "tiny_crlf_sentinels.csv"
    by_path = read_zephir_csv(path)
    by_stream = read_zephir_csv(io.BytesIO(path.read_bytes()), name="tiny.csv")
    assert by_stream.frame.equals(by_path.frame)
    assert by_stream.channels == by_path.channels
    with path.open("rb") as fh:
        assert read_zephir_csv(fh).frame.equals(by_path.frame)


@pytest.mark.parametrize("eol", [b"\n", b"\r"], ids=["lf", "cr"])
def test_line_endings(eol: bytes, tmp_path: Path) -> None:
    data = (ZPH / "tiny_crlf_sentinels.csv").read_bytes().replace(b"\r\n", eol)
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    assert sniff(data)
    assert read_zephir_csv(path).frame.equals(
        read_zephir_csv(ZPH / "tiny_crlf_sentinels.csv").frame
    )


def test_bom_lf_no_final_newline_and_start_of_period() -> None:
    r = read_zephir_csv(ZPH / "bom_lf_no_final_newline.csv")
    assert r.rows == 1
    assert r.meta.timestamp_is_end_of_period is False
    assert r.meta.utc_offset_hours == 1.0
    assert r.meta.extra["encoding"] == "utf-8-sig"
    assert r.meta.warnings == (
        "line 3: no line break after the last line (kept: its last field holds no reading)",
    )


def test_truncated_last_line_is_dropped(tmp_path: Path) -> None:
    data = (ZPH / "tiny_crlf_sentinels.csv").read_bytes() + b"1003;13.12.2016 00:20:00;5475"
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    r = read_zephir_csv(path)
    assert r.rows == 3
    assert r.meta.warnings == (
        "line 6: truncated last line dropped (it has 3 of 14 fields and no line break)",
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            b"Reference;Time and Date;",
            b"Reference;Zeit;",
            r"line 2: expected a 'Time and Date' column",
        ),
        (b";Battery (V);GPS;", b";GPS;GPS;", r"line 2: duplicate column name 'GPS'"),
        (b";11,724;", b";11,7x4;", r"line 4: column 'Battery \(V\)': expected a number"),
        (b"13.12.2016 00:10:00", b"13.13.2016 00:10:00", r"line 4: expected a timestamp"),
        (b"36;5,039;", b"36;", r"line 3: expected 14 fields, found 13"),
    ],
)
def test_bad_input(old: bytes, new: bytes, message: str, tmp_path: Path) -> None:
    data = (ZPH / "tiny_crlf_sentinels.csv").read_bytes()
    assert old in data
    path = tmp_path / "bad.csv"
    path.write_bytes(data.replace(old, new, 1))
    with pytest.raises(ParseError, match=message):
        read_zephir_csv(path)


def test_header_only_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "one_line.csv"
    path.write_bytes(b"CSV Converter: v1,114;Time sync: UTC +1,0 hrs\r\n")
    with pytest.raises(ParseError, match=r"line 2: expected 2 header lines"):
        read_zephir_csv(path)


def test_sniff_rejects_every_other_corpus_format() -> None:
    others = _other_corpus_files()
    assert others
    accepted = [p.name for p in others if sniff(p.read_bytes()[:8192])]
    assert accepted == []
    assert not sniff(b"")
