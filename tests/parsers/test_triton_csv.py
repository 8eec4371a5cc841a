"""Triton sodar CSV: the corpus file, and each quirk of the format on fixtures of our own."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from stationkit.errors import ParseError
from stationkit.parsers.base import STATISTICS
from stationkit.parsers.triton_csv import read_triton_csv, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

TRI = FIXTURES / "triton_csv"
FOLDER = "TRITON_CSV"
KASSEL = (
    CORPUS / FOLDER / "e-WindLidar__Lidaco__TritonExport_2017-03-13-04-46-38_innogySE_sample.csv"
)
HEIGHTS = [40.0, 50.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0, 200.0]


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
    r = read_triton_csv(path)
    assert sniff(path.read_bytes()[:8192])
    lines = [ln for ln in path.read_bytes().splitlines()[4:] if ln.strip()]
    assert r.rows == len(lines)
    names = path.read_bytes().splitlines()[2].decode("utf-8").split(";")
    assert r.frame.columns == ["timestamp", *[n for n in names[1:] if n]]
    assert r.frame.get_column("timestamp").null_count() == 0
    assert {c.statistic for c in r.channels} <= STATISTICS | {None}
    assert r.tidy().height == r.rows * len(r.channels)


def test_corpus_kassel_values_metadata_and_channels() -> None:
    r = read_triton_csv(KASSEL)
    assert r.rows == 288
    assert r.frame.width == 61
    assert sum(r.frame.drop("timestamp").null_count().row(0)) == 0
    first = r.frame.row(0, named=True)
    # line 5: 31.08.2016 00:00;339,5;0,5;-0,14;92;50;0,52;... field 42 1,19, 52 12, 61 97
    assert first["timestamp"] == datetime(2016, 8, 31, 0, 0)
    assert first["40m Wind Direction"] == 339.5
    assert first["40m Wind Speed"] == 0.5
    assert first["40m Wind Vert"] == -0.14
    assert first["Quality (Station Height 40m)"] == 92.0
    assert first["50m Wind Direction"] == 50.0
    assert first["40m Wind Turbulence"] == 1.19
    assert first["Turbu. Quality (Station Height 40m)"] == 12.0
    assert first["Turbu. Quality (Station Height 200m)"] == 97.0
    # line 150: 01.09.2016 00:10;...;1,7 (40m speed);... 0,38; 44; 73
    row = r.frame.row(145, named=True)
    assert row["timestamp"] == datetime(2016, 9, 1, 0, 10)
    assert row["40m Wind Speed"] == 1.7
    assert row["40m Wind Turbulence"] == 0.38
    assert row["Turbu. Quality (Station Height 40m)"] == 44.0
    assert row["Turbu. Quality (Station Height 200m)"] == 73.0
    # line 292 (no final newline): 01.09.2016 23:50;...;1,28;...;0,43;32;...;40
    last = r.frame.row(287, named=True)
    assert last["timestamp"] == datetime(2016, 9, 1, 23, 50)
    assert last["40m Wind Speed"] == 1.28
    assert last["40m Wind Turbulence"] == 0.43
    assert last["Turbu. Quality (Station Height 200m)"] == 40.0

    meta = r.meta
    assert meta.logger_serial == "358"
    assert meta.extra["title"] == "Triton Wind Speed Data"
    assert meta.utc_offset_hours is None
    assert meta.timestamp_is_end_of_period is None
    assert meta.warnings == (
        "line 292: no line break after the last line "
        "(kept: all fields present; files of this format end without a line break)",
    )

    ch = {c.name: c for c in r.channels}
    assert sorted({c.height_m for c in r.channels if c.height_m is not None}) == HEIGHTS
    expected = {
        "80m Wind Direction": ("avg", "°", 80.0),
        "80m Wind Speed": ("avg", "m/s", 80.0),
        "80m Wind Vert": ("avg", "m/s", 80.0),
        "Quality (Station Height 80m)": (None, "%", 80.0),
        "80m Wind Turbulence": ("ti", None, 80.0),
        "Turbu. Quality (Station Height 80m)": (None, "%", 80.0),
    }
    for name, want in expected.items():
        assert (ch[name].statistic, ch[name].unit, ch[name].height_m) == want, name


def test_tiny_fixture_exact_table() -> None:
    """Padded header lines, UTF-8 '°', empty fields, a duplicate row, no final newline."""
    r = read_triton_csv(TRI / "tiny_no_final_newline.csv")
    assert r.frame.columns == [
        "timestamp", "40m Wind Direction", "40m Wind Speed", "40m Wind Vert",
        "Quality (Station Height 40m)", "60m Wind Direction", "60m Wind Speed",
        "40m Wind Turbulence", "Turbu. Quality (Station Height 40m)",
    ]  # fmt: skip
    second = (datetime(2016, 8, 31, 0, 10), 0.9, None, -0.17, 94.0, None, None, None, 0.0)
    assert r.frame.rows() == [
        (datetime(2016, 8, 31, 0, 0), 339.5, 0.5, -0.14, 92.0, 50.0, 0.52, 1.19, 12.0),
        second,
        second,
    ]
    assert [c.unit for c in r.channels] == ["°", "m/s", "m/s", "%", "°", "m/s", None, "%"]
    assert r.meta.logger_serial == "358"


def test_path_and_file_like_give_the_same_result() -> None:
    path = TRI / "tiny_no_final_newline.csv"
    by_path = read_triton_csv(path)
    by_stream = read_triton_csv(io.BytesIO(path.read_bytes()), name="tiny.csv")
    assert by_stream.frame.equals(by_path.frame)
    assert by_stream.channels == by_path.channels
    with path.open("rb") as fh:
        assert read_triton_csv(fh).frame.equals(by_path.frame)


@pytest.mark.parametrize("eol", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_line_endings_and_bom(eol: bytes, tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + (TRI / "tiny_no_final_newline.csv").read_bytes().replace(b"\n", eol)
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    assert sniff(data)
    r = read_triton_csv(path)
    assert r.frame.equals(read_triton_csv(TRI / "tiny_no_final_newline.csv").frame)
    assert r.channels[0].unit == "°"


def test_latin1_crlf() -> None:
    r = read_triton_csv(TRI / "latin1_crlf.csv")
    assert r.channels[0].unit == "°"
    assert r.meta.logger_serial == "1234"
    assert r.frame.row(0)[:3] == (datetime(2016, 8, 31, 0, 0), 339.5, 0.5)
    assert r.meta.warnings == ()


def test_truncated_last_line_is_dropped_with_a_warning() -> None:
    r = read_triton_csv(TRI / "truncated_last_line.csv")
    assert r.rows == 1
    assert r.meta.warnings == (
        "line 6: truncated last line dropped (it has 3 of 9 fields and no line break)",
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            b"Triton Wind Speed Data",
            b"Sodar Data",
            r"line 1: expected a title starting with 'Triton'",
        ),
        (
            b"Logger Serial Number: 358",
            b"Serial 358",
            r"line 2: expected 'Logger Serial Number: N'",
        ),
        (b"Date and Time;", b"Zeit;", r"line 3: expected 'Date and Time' as the first column"),
        (
            b";60m Wind Speed;",
            b";40m Wind Speed;",
            r"line 3: duplicate column name '40m Wind Speed'",
        ),
        (b";-0,14;", b";-0,1x;", r"line 5: column '40m Wind Vert': expected a number"),
        (b"31.08.2016 00:10", b"31/08/2016 00:10", r"line 6: expected a timestamp"),
    ],
)
def test_bad_input(old: bytes, new: bytes, message: str, tmp_path: Path) -> None:
    data = (TRI / "tiny_no_final_newline.csv").read_bytes()
    assert old in data
    path = tmp_path / "bad.csv"
    path.write_bytes(data.replace(old, new, 1))
    with pytest.raises(ParseError, match=message):
        read_triton_csv(path)


def test_too_few_header_lines(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_bytes(b"Triton Wind Speed Data;;\nLogger Serial Number: 1;;\n")
    with pytest.raises(ParseError, match=r"line 3: expected 4 header lines"):
        read_triton_csv(path)


def test_sniff_rejects_every_other_corpus_format() -> None:
    others = _other_corpus_files()
    assert others
    accepted = [p.name for p in others if sniff(p.read_bytes()[:8192])]
    assert accepted == []
    assert not sniff(b"")


def test_a_column_of_text_is_skipped_and_listed(tmp_path: Path) -> None:
    data = (TRI / "tiny_no_final_newline.csv").read_bytes()
    # the last column of every data row: 12, 0, 0 -> OK, BAD, BAD
    data = data.replace(b";1,19;12\n", b";1,19;OK\n").replace(b"94;;;;0", b"94;;;;BAD")
    path = tmp_path / "text.csv"
    path.write_bytes(data)
    r = read_triton_csv(path)
    assert r.meta.skipped_channels == ("Turbu. Quality (Station Height 40m)",)
    assert "Turbu. Quality (Station Height 40m)" not in r.frame.columns
    assert r.frame.get_column("40m Wind Speed").to_list() == [0.5, None, None]
