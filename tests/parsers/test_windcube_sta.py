"""WindCube .sta: the corpus file, and each quirk of the format on fixtures of our own."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from stationkit.errors import ParseError
from stationkit.parsers.base import STATISTICS
from stationkit.parsers.windcube_sta import read_windcube_sta, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

STA = FIXTURES / "windcube_sta"
FOLDER = "WINDCUBE_STA"
MORRO = CORPUS / FOLDER / "tsdat__tsdat__lidar.z06.00.20201201.000000.sta"
HEIGHTS = [40.0, 60.0, 80.0, 90.0, 100.0, 120.0, 140.0, 160.0, 180.0, 200.0, 220.0, 240.0]


def _other_corpus_files() -> list[Path]:
    return [
        p
        for folder in sorted(CORPUS.iterdir())
        if folder.is_dir() and folder.name != FOLDER
        for p in sorted(folder.iterdir())
        if p.is_file()
    ]


def _names_line(path: Path) -> tuple[int, list[str]]:
    """1-based number and fields of the line after the last '****' separator."""
    lines = path.read_bytes().decode("latin-1").splitlines()
    idx = max(i for i, line in enumerate(lines[:200]) if line.startswith("****")) + 1
    return idx + 1, lines[idx].split("\t")


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name[:50])
def test_every_corpus_file_parses_with_every_record(path: Path) -> None:
    r = read_windcube_sta(path)
    assert sniff(path.read_bytes()[:8192])
    line_no, names = _names_line(path)
    data_lines = [ln for ln in path.read_bytes().splitlines()[line_no:] if ln.strip()]
    assert r.rows == len(data_lines)
    # every non-empty column but the timestamp is a channel, in file order
    assert r.frame.columns == ["timestamp", *[n for n in names[1:] if n]]
    assert r.frame.get_column("timestamp").null_count() == 0
    assert {c.statistic for c in r.channels} <= STATISTICS | {None}
    assert r.tidy().height == r.rows * len(r.channels)


def test_corpus_morro_bay_values_metadata_and_channels() -> None:
    r = read_windcube_sta(MORRO)
    assert r.rows == 144
    assert r.frame.width == 139  # timestamp + 6 scalar columns + 12 heights x 11
    first = r.frame.row(0, named=True)
    # line 43: 2020/12/01 00:10<TAB>30.33<TAB>NaN ... 11.31 1.33 7.62 15.73 148.4 ...
    #          100<TAB><TAB>11.66
    assert first["timestamp"] == datetime(2020, 12, 1, 0, 10)
    assert first["Int Temp (°C)"] == 30.33
    assert first["Ext Temp (°C)"] is None
    assert first["Wiper count"] == 0.0
    assert first["40m Wind Speed (m/s)"] == 11.31
    assert first["40m Wind Speed Dispersion (m/s)"] == 1.33
    assert first["40m Wind Direction (°)"] == 148.4
    assert first["40m Data Availability (%)"] == 100.0
    assert first["60m Wind Speed (m/s)"] == 11.66
    # line 100: 2020/12/01 09:40 ... 240m Wind Speed NaN ... 240m Data Availability 0
    row = r.frame.row(57, named=True)
    assert row["timestamp"] == datetime(2020, 12, 1, 9, 40)
    assert row["240m Wind Speed (m/s)"] is None
    assert row["240m Data Availability (%)"] == 0.0
    # line 186: 2020/12/02 00:00<TAB>30.56 ... 8.93 ... 97<TAB>
    last = r.frame.row(143, named=True)
    assert last["timestamp"] == datetime(2020, 12, 2, 0, 0)
    assert last["Int Temp (°C)"] == 30.56
    assert last["40m Wind Speed (m/s)"] == 8.93
    assert last["240m Data Availability (%)"] == 97.0
    # 1400 'NaN' fields in the data block (awk count), all null
    assert sum(r.frame.drop("timestamp").null_count().row(0)) == 1400

    meta = r.meta
    assert meta.timestamp_is_end_of_period is True
    assert meta.utc_offset_hours == 0.0
    assert meta.logger_serial == "WLS866-24"
    assert meta.logger_os == "2.1.9"
    assert meta.station_name == "ASIT Validation 130"
    assert meta.extra["altitudes_m"] == HEIGHTS
    assert meta.extra["header"]["GPS Location"] == "hidden"
    assert meta.extra["header"]["ScanAngle (°)"] == "28.000"
    assert meta.extra["encoding"] == "latin-1"
    assert meta.skipped_channels == ()

    ch = {c.name: c for c in r.channels}
    assert sorted({c.height_m for c in r.channels if c.height_m is not None}) == HEIGHTS
    assert (ch["Pressure (hPa)"].statistic, ch["Pressure (hPa)"].unit) == ("avg", "hPa")
    assert ch["Wiper count"].statistic == "count"
    expected = {
        "Wind Speed (m/s)": ("avg", "m/s"),
        "Wind Speed Dispersion (m/s)": ("sd", "m/s"),
        "Wind Speed min (m/s)": ("min", "m/s"),
        "Wind Speed max (m/s)": ("max", "m/s"),
        "Wind Direction (°)": ("avg", "°"),
        "Z-wind (m/s)": ("avg", "m/s"),
        "Z-wind Dispersion (m/s)": ("sd", "m/s"),
        "CNR (dB)": ("avg", "dB"),
        "CNR min (dB)": ("min", "dB"),
        "Dopp Spect Broad (m/s)": ("avg", "m/s"),
        "Data Availability (%)": (None, "%"),
    }
    for suffix, (stat, unit) in expected.items():
        c = ch[f"90m {suffix}"]
        assert (c.statistic, c.unit, c.height_m) == (stat, unit, 90.0), suffix


def test_tiny_v2_fixture_exact_table() -> None:
    """Latin-1 '°', empty column between blocks, trailing tab, NaN, a duplicate row."""
    r = read_windcube_sta(STA / "tiny_v2_latin1.sta")
    assert r.frame.columns == [
        "timestamp", "Int Temp (°C)", "Wiper count",
        "40m Wind Speed (m/s)", "40m Wind Speed Dispersion (m/s)", "40m Wind Speed min (m/s)",
        "40m Wind Speed max (m/s)", "40m Wind Direction (°)", "40m CNR (dB)",
        "40m Data Availability (%)",
        "60m Wind Speed (m/s)", "60m Wind Speed Dispersion (m/s)", "60m Wind Speed min (m/s)",
        "60m Wind Speed max (m/s)", "60m Wind Direction (°)", "60m CNR (dB)",
        "60m Data Availability (%)",
    ]  # fmt: skip
    missing = (None, None, None, None, None, -26.7, 0.0)
    block60 = (12.5, 1.21, 8.84, 17.36, 148.1, -4.4, 99.0)
    assert r.frame.rows() == [
        (datetime(2020, 12, 1, 0, 10), 30.33, 0.0,
         11.31, 1.33, 7.62, 15.73, 148.4, -5.1, 100.0,
         11.66, 1.33, 7.97, 15.98, 148.6, -3.8, 100.0),
        (datetime(2020, 12, 1, 0, 20), None, 1.0, *missing, *block60),
        (datetime(2020, 12, 1, 0, 20), None, 1.0, *missing, *block60),
    ]  # fmt: skip
    assert r.meta.utc_offset_hours == 1.0
    assert r.meta.timestamp_is_end_of_period is True
    assert r.meta.extra["altitudes_m"] == [40.0, 60.0]
    assert r.meta.warnings == ()


def test_path_and_file_like_give_the_same_result() -> None:
    path = STA / "tiny_v2_latin1.sta"
    by_path = read_windcube_sta(path)
    by_stream = read_windcube_sta(io.BytesIO(path.read_bytes()), name="tiny.sta")
    assert by_stream.frame.equals(by_path.frame)
    assert by_stream.channels == by_path.channels
    with path.open("rb") as fh:
        assert read_windcube_sta(fh).frame.equals(by_path.frame)


@pytest.mark.parametrize("eol", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_line_endings(eol: bytes, tmp_path: Path) -> None:
    data = (STA / "tiny_v2_latin1.sta").read_bytes().replace(b"\n", eol)
    path = tmp_path / "t.sta"
    path.write_bytes(data)
    assert sniff(data)
    assert read_windcube_sta(path).frame.equals(read_windcube_sta(STA / "tiny_v2_latin1.sta").frame)


def test_utf8_bom_crlf_without_trailing_tab() -> None:
    r = read_windcube_sta(STA / "v2_utf8_bom_crlf_no_trailing_tab.sta")
    tiny = read_windcube_sta(STA / "tiny_v2_latin1.sta")
    assert r.frame.equals(tiny.frame.head(1))
    assert r.meta.extra["encoding"] == "utf-8-sig"
    assert "Int Temp (°C)" in r.frame.columns


def test_v1_layout_day_first_dates_and_block_heights() -> None:
    """HeaderLength, Localisation, Altitudes(m), 'Date' DD/MM/YYYY HH:MM:SS, names per block."""
    r = read_windcube_sta(STA / "v1_repeated_names_cr.sta")
    assert sniff((STA / "v1_repeated_names_cr.sta").read_bytes())
    assert r.frame.get_column("timestamp").to_list() == [
        datetime(2016, 11, 24, 0, 10),
        datetime(2016, 11, 24, 0, 20),
    ]
    assert r.meta.timestamp_is_end_of_period is None
    assert r.meta.utc_offset_hours == -5.0
    assert r.meta.station_name == "Old Site"
    assert r.meta.logger_serial == "WLS7-0099"
    ch = {c.name: c for c in r.channels}
    assert (ch["40m Vhm"].statistic, ch["40m Vhm"].height_m, ch["40m Vhm"].attrs["column"]) == (
        "avg",
        40.0,
        "Vhm",
    )
    assert (ch["78m dVh"].statistic, ch["78m dVh"].height_m) == ("sd", 78.0)
    assert ch["78m VhMax"].statistic == "max"
    assert ch["78m VhMin"].statistic == "min"
    assert ch["40m Avail"].statistic is None
    assert ch["Wiper Count"].statistic == "count"
    assert r.frame.get_column("78m Vhm").to_list() == [0.48, None]
    assert r.frame.get_column("78m CNRm").to_list() == [-9.7, -26.6]


def test_truncated_last_line_is_dropped_with_a_warning() -> None:
    r = read_windcube_sta(STA / "truncated_last_line.sta")
    assert r.rows == 1
    assert r.meta.warnings == (
        "line 17: truncated last line dropped (it has 4 of 19 fields and no line break)",
    )


@pytest.mark.parametrize(
    ("text", "hours"),
    [("UTC+0", 0.0), ("UTC", 0.0), ("UTC-5", -5.0), ("UTC+05:30", 5.5), ("UTC+8", 8.0)],
)
def test_timezone_spellings(text: str, hours: float, tmp_path: Path) -> None:
    data = (
        (STA / "tiny_v2_latin1.sta")
        .read_bytes()
        .replace(b"timezone=UTC+01:00", f"timezone={text}".encode())
    )
    path = tmp_path / "tz.sta"
    path.write_bytes(data)
    assert read_windcube_sta(path).meta.utc_offset_hours == hours


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"HeaderSize=13", b"Header=13", r"line 1: expected 'HeaderSize=N'"),
        (
            b"Timestamp (end of interval)",
            b"Zeit",
            r"line 15: expected a tab-separated column-name line",
        ),
        (
            b"timezone=UTC+01:00",
            b"timezone=CET",
            r"line 8: expected a timezone like 'UTC\+0', found 'CET'",
        ),
        (
            b"00:20\tNaN\t1\t",
            b"00:20\tNaN\tx1\t",
            r"line 17: column 'Wiper count': expected a number",
        ),
        (b"2020/12/01 00:20", b"2020/13/45 00:20", r"line 17: expected a timestamp"),
        (b"\t1.33\t7.62", b"\t7.62", r"line 16: expected 19 fields, found 18"),
    ],
)
def test_bad_input(old: bytes, new: bytes, message: str, tmp_path: Path) -> None:
    data = (STA / "tiny_v2_latin1.sta").read_bytes()
    assert old in data
    path = tmp_path / "bad.sta"
    path.write_bytes(data.replace(old, new, 1))
    with pytest.raises(ParseError, match=message):
        read_windcube_sta(path)


def test_sniff_rejects_every_other_corpus_format() -> None:
    others = _other_corpus_files()
    assert any("MOLAS" in str(p) for p in others)  # the Windcube-like header that is not one
    accepted = [p.name for p in others if sniff(p.read_bytes()[:8192])]
    assert accepted == []
    assert not sniff(b"")
    assert not sniff(b"HeaderSize=10\nVersion=V3-1.9\nID System=Molas B300-970\n")


def test_start_of_interval_wording(tmp_path: Path) -> None:
    data = (
        (STA / "tiny_v2_latin1.sta")
        .read_bytes()
        .replace(b"(end of interval)", b"(start of interval)")
    )
    path = tmp_path / "start.sta"
    path.write_bytes(data)
    assert read_windcube_sta(path).meta.timestamp_is_end_of_period is False


def test_separate_date_and_time_columns_are_joined(tmp_path: Path) -> None:
    data = (STA / "v1_repeated_names_cr.sta").read_bytes()
    data = data.replace(b"Date\tWiper", b"Date\tTime\tWiper")
    data = data.replace(b"24/11/2016 00:10:00\t", b"24/11/2016\t00:10:00\t")
    data = data.replace(b"24/11/2016 00:20:00\t", b"24/11/2016\t00:20:00\t")
    path = tmp_path / "date_time.sta"
    path.write_bytes(data)
    r = read_windcube_sta(path)
    assert r.frame.get_column("timestamp").to_list() == [
        datetime(2016, 11, 24, 0, 10),
        datetime(2016, 11, 24, 0, 20),
    ]
    assert "Time" not in r.frame.columns
    assert r.frame.get_column("40m Vhm").to_list() == [0.18, 0.24]
