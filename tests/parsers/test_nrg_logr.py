"""NRG LOGR statistics, one-second and diagnostics files; event logs refused.

Expected cells were read from the file text with awk (``awk -F'\\t' 'NR==269{print $105}'``),
not from this parser's output.
"""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stationkit.errors import NotReadingsError, ParseError
from stationkit.parsers import nrg_binary, nrg_logr, nrg_symphonie
from stationkit.parsers.nrg_logr import read_nrg_logr, sniff, split_column
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "NRG_LOGR_DAT"
FIX = FIXTURES / "nrg_logr"
WRA = "nrgpy__nrgpy__945800110_WRA_60m_meas_2025.06.15-2025.06.15.dat"
WRA_1 = "nrgpy__nrgpy__945800110_WRA_60m_meas_2025.06.15-2025.06.15-1.dat"
SOLAR = "nrgpy__nrgpy__20220418_0700_000511_001183_statistical.dat"
DIAG = "nrgpy__nrgpy__20240111_1300_000304_002994.diag"
LOGS = [
    "nrgpy__nrgpy__20240111_1300_000304_002994.log",
    "nrgpy__nrgpy__20240925_2300_9460_00030_000172.log",
]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


#: name -> (rows, frame width incl. timestamp, nulls, first, last, {(row, column): value})
EXPECTED = {
    WRA: (
        6,
        113,
        5,
        utc(2025, 6, 16, 5, 0),
        utc(2025, 6, 16, 5, 50),
        {
            (0, "Ch1_Avg_deg"): 99.7538,
            (0, "Ch4_Avg_hPa"): 1005.65,
            (0, "Ch401_Gust_m/s"): 1.3548,
            (0, "Ch403_SD_m/s"): None,
            (3, "Ch403_SD_m/s"): None,
            (3, "Ch407_SD_m/s"): None,
            (5, "Ch1_Avg_deg"): 124.155,
            (5, "Ch401_Avg_m/s"): 1.3539,
            (5, "Ch407_SD_m/s"): 0.2437,
        },
    ),
    WRA_1: (
        6,
        113,
        4,
        utc(2025, 6, 16, 6, 0),
        utc(2025, 6, 16, 6, 50),
        {
            (0, "Ch1_Avg_deg"): 157.7276,
            (0, "Ch403_SD_m/s"): None,
            (0, "Ch407_SD_m/s"): None,
            (5, "Ch401_Avg_m/s"): 1.7489,
        },
    ),
    SOLAR: (
        60,
        172,
        0,
        utc(2022, 4, 18, 7, 1),
        utc(2022, 4, 18, 8, 0),
        {
            (0, "Ch1_Avg_W/m^2"): -0.4898,
            (0, "Ch12_Gust_Dir_Deg"): 0.0,
            (0, "Ch13_Avg_hPa"): 1012.5437,
            (0, "Ch104_Gust_m/s"): 0.9333,
            (59, "Ch1_Avg_W/m^2"): -0.4657,
            (59, "Ch13_Avg_hPa"): 1013.2191,
        },
    ),
    DIAG: (
        39,
        69,
        0,
        utc(2024, 1, 11, 13, 0),
        utc(2024, 1, 11, 13, 38),
        {
            (0, "VIN_RP_V_Avg"): 16.2101,
            (0, "COMA EXC_V_Avg"): 12.2861,
            (0, "+VIN_RP_Avg"): 16.2561,
            (0, "12V_mA_SD"): 0.4322,
            (38, "VIN_RP_V_Avg"): 16.2086,
        },
    ),
}


# --- corpus -----------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_files(FOLDER), ids=lambda p: p.name)
def test_every_corpus_file_is_recognised_and_read_or_refused(path: Path) -> None:
    assert sniff(path.read_bytes()[:8192])
    if path.name in LOGS:
        with pytest.raises(NotReadingsError, match="NRG event log: holds events, not readings"):
            read_nrg_logr(path)
        return
    result = read_nrg_logr(path)
    assert result.rows > 0
    assert result.frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert result.frame.get_column("timestamp").is_sorted()
    assert result.meta.utc_offset_hours is None  # the Z wins
    assert result.meta.extra["time_zone_hours"] == -5.0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_cells(name: str) -> None:
    rows, width, nulls, first, last, cells = EXPECTED[name]
    result = read_nrg_logr(CORPUS / FOLDER / name)
    assert result.rows == rows
    assert result.frame.width == width
    assert sum(result.frame.null_count().row(0)) == nulls  # grep -ow nan | wc -l
    stamps = result.frame.get_column("timestamp")
    assert (stamps[0], stamps[-1]) == (first, last)
    for (row, column), value in cells.items():
        got = result.frame.get_column(column)[row]
        if value is None:
            assert got is None, column
        else:
            assert got == pytest.approx(value, abs=1e-9), column


def test_corpus_statistics_metadata() -> None:
    result = read_nrg_logr(CORPUS / FOLDER / WRA)
    meta = result.meta
    assert (meta.logger_model, meta.logger_serial, meta.logger_os) == (
        "9458",
        "945800110",
        "000.07.840",
    )
    assert (meta.station_name, meta.table, meta.interval_s) == ("WRA_60m", "Statistics", 600.0)
    assert meta.timestamp_is_end_of_period is None
    assert meta.extra["file_created_utc"] == "2025-06-16T05:00:01Z"
    assert meta.extra["encoding"] == "utf-8-sig"
    assert meta.extra["file_properties"]["Exported FW Version"] == "000.07.840"
    assert meta.extra["site_properties"]["Project"] == "R1.1_Hardware"
    # 13 Ch*_NotUsed placeholders (awk: header fields matching NotUsed)
    assert len(meta.skipped_channels) == 13
    assert all(name.endswith("_NotUsed") for name in meta.skipped_channels)
    assert "Ch4_NotUsed" not in result.frame.columns


def test_corpus_channel_metadata() -> None:
    result = read_nrg_logr(CORPUS / FOLDER / WRA)
    by_name = {c.name: c for c in result.channels}
    fca = by_name["Ch401_Avg_m/s"]
    assert (fca.statistic, fca.unit, fca.height_m) == ("avg", "m/s", 60.19)
    assert fca.attrs["scale_factor"] == 0.04623
    assert fca.attrs["offset"] == 0.22982
    assert fca.attrs["serial_number"] == "928802231945"
    assert fca.attrs["description"] == "Thies FCA_60m"
    # LOGR's double space in Effective Date is normalised in attrs, kept in history
    assert fca.attrs["effective_date"] == "2025-05-08 13:33:14"
    assert fca.attrs["history"][0]["Effective Date"] == "2025-05-08  13:33:14"
    gust_dir = by_name["Ch1_Gust_Dir_deg"]
    assert (gust_dir.statistic, gust_dir.unit) == ("gust", "deg")
    assert gust_dir.attrs["nrg_statistic"] == "Gust_Dir"
    assert by_name["Ch5_SD_deg_C"].unit == "deg_C"
    assert by_name["Ch406_Total_mm"].statistic == "sum"
    assert by_name["Ch319_Sum_mm"].statistic == "sum"
    assert by_name["Ch7_Avg_%RH"].unit == "%RH"
    assert by_name["Ch9_Max_W/m^2"].unit == "W/m^2"
    assert by_name["Ch319_Sum_mm"].attrs["sensor"]["Calculation"] == "HourlySum"


def test_corpus_old_firmware_header() -> None:
    result = read_nrg_logr(CORPUS / FOLDER / SOLAR)
    meta = result.meta
    assert (meta.logger_model, meta.logger_serial, meta.logger_os) == ("9431", "511", "1.02.10")
    assert meta.interval_s == 60.0
    assert len(meta.skipped_channels) == 39
    by_name = {c.name: c for c in result.channels}
    # 'Channel<TAB>301' without the colon still names the sensor
    assert by_name["Ch301_Avg_mm"].attrs["description"] == "Precipitation Hourly Sum"
    assert by_name["Ch118_Avg_W/m^2"].attrs["serial_number"] == "S190475033 MV0"
    assert by_name["Ch105_Gust_Dir_deg"].statistic == "gust"


def test_corpus_diagnostics_are_readings() -> None:
    result = read_nrg_logr(CORPUS / FOLDER / DIAG)
    assert result.meta.table == "Diagnostics"
    by_name = {c.name: c for c in result.channels}
    assert (by_name["COMA EXC_mA_SD"].statistic, by_name["COMA EXC_mA_SD"].unit) == ("sd", "mA")
    assert (by_name["+VIN_RP_Max"].statistic, by_name["+VIN_RP_Max"].unit) == ("max", None)
    assert (by_name["12_4V_V_Min"].statistic, by_name["12_4V_V_Min"].unit) == ("min", "V")


def test_consecutive_files_concatenate() -> None:
    a = read_nrg_logr(CORPUS / FOLDER / WRA)
    b = read_nrg_logr(CORPUS / FOLDER / WRA_1)
    assert [c.name for c in a.channels] == [c.name for c in b.channels]
    a_stamps = a.frame.get_column("timestamp")
    b_stamps = b.frame.get_column("timestamp")
    assert (b_stamps[0] - a_stamps[-1]).total_seconds() == 600
    joined = pl.concat([a.frame, b.frame]).get_column("timestamp")
    assert joined.is_sorted() and joined.n_unique() == 12


def test_sniff_rejects_other_formats() -> None:
    others = [
        p
        for folder in sorted(CORPUS.iterdir())
        if folder.is_dir() and folder.name != FOLDER
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    for path in others:
        assert not sniff(path.read_bytes()[:8192]), path.name
    for path in corpus_files(FOLDER):
        assert not nrg_symphonie.sniff(path.read_bytes()[:8192]), path.name
        assert not nrg_binary.sniff(path.read_bytes()[:8192]), path.name


# --- gzip ---------------------------------------------------------------------


def test_gzip_content_is_read_transparently(tmp_path: Path) -> None:
    plain = CORPUS / FOLDER / WRA
    packed = tmp_path / "wra.dat.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert sniff(packed.read_bytes()[:8192])
    from_gz = read_nrg_logr(packed)
    assert_frame_equal(from_gz.frame, read_nrg_logr(plain).frame)
    assert from_gz.meta.extra["compressed"] == "gzip"
    from_stream = read_nrg_logr(io.BytesIO(packed.read_bytes()), name="member.dat.gz")
    assert_frame_equal(from_stream.frame, from_gz.frame)


def test_gzip_event_log_is_not_readings(tmp_path: Path) -> None:
    packed = tmp_path / "events.log.gz"
    packed.write_bytes(gzip.compress((CORPUS / FOLDER / LOGS[1]).read_bytes()))
    assert sniff(packed.read_bytes()[:8192])
    with pytest.raises(NotReadingsError):
        read_nrg_logr(packed)


def test_gzip_of_something_else_is_not_claimed() -> None:
    other = corpus_files("NRG_SYMPRO_TXT")[0].read_bytes()
    assert not sniff(gzip.compress(other)[:8192])
    assert not sniff(b"\x1f\x8b\x08\x00garbage")


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.dat.gz"
    path.write_bytes(gzip.compress((FIX / "diagnostics.diag").read_bytes())[:60])
    with pytest.raises(ParseError, match=r"cut\.dat\.gz: expected a readable gzip stream"):
        read_nrg_logr(path)


# --- fixtures -----------------------------------------------------------------

STAT_COLUMNS = [
    "Ch1_Avg_deg",
    "Ch1_SD_deg",
    "Ch1_Gust_Dir_deg",
    "Ch5_Avg_deg_C",
    "Ch401_Avg_m/s",
    "Ch401_Gust_m/s",
]


def _stats_expected(tz: str | None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [datetime(2025, 1, 2, 10, m) for m in (0, 10, 20)],
            "Ch1_Avg_deg": [99.7538, None, 173.8804],
            "Ch1_SD_deg": [20.8466, None, 25.6282],
            "Ch1_Gust_Dir_deg": [101.0, None, 170.5],
            "Ch5_Avg_deg_C": [16.451, 16.7471, 1019.9999],
            "Ch401_Avg_m/s": [5.1, 6.2, 7.3],
            "Ch401_Gust_m/s": [9.2, 10.1, 11.4],
        },
        schema={"timestamp": pl.Datetime("us"), **{c: pl.Float64 for c in STAT_COLUMNS}},
    ).with_columns(pl.col("timestamp").dt.replace_time_zone(tz))


def test_statistics_fixture_exact_table() -> None:
    """BOM, 'nan', Z labels, NotUsed, Gust_Dir, deg_C, trailing TAB, no final newline."""
    result = read_nrg_logr(FIX / "statistics_bom_trailing_tab.dat")
    assert_frame_equal(result.frame, _stats_expected("UTC"))
    assert result.meta.skipped_channels == ("Ch5_NotUsed",)
    assert [(c.statistic, c.unit, c.height_m) for c in result.channels] == [
        ("avg", "deg", 58.0),
        ("sd", "deg", 58.0),
        ("gust", "deg", 58.0),
        ("avg", "deg_C", 2.0),
        ("avg", "m/s", 60.2),
        ("gust", "m/s", 60.2),
    ]
    # two records for channel 401: the later Effective Date is current
    fca = result.channels[4].attrs
    assert (fca["serial_number"], fca["scale_factor"]) == ("928800002", 0.04636)
    assert len(fca["history"]) == 2
    assert result.meta.extra["site_properties"]["Project"] == "Fixture"  # trailing TAB stripped
    assert result.meta.logger_os == "000.07.840"  # Created FW Version before Exported


def test_path_and_file_like_agree() -> None:
    path = FIX / "statistics_bom_trailing_tab.dat"
    from_stream = read_nrg_logr(io.BytesIO(path.read_bytes()))
    from_path = read_nrg_logr(path)
    assert_frame_equal(from_stream.frame, from_path.frame)
    assert from_stream.channels == from_path.channels


def test_labels_without_z_use_the_time_zone() -> None:
    result = read_nrg_logr(FIX / "naive_labels.dat")
    assert_frame_equal(result.frame, _stats_expected(None))
    assert result.meta.utc_offset_hours == -5.0


def test_one_second_samples_crlf() -> None:
    result = read_nrg_logr(FIX / "one_second_crlf.dat")
    assert result.meta.interval_s == 1.0
    assert result.meta.table == "One Second Samples"
    assert result.meta.logger_os == "1.09.14"
    assert [(c.name, c.statistic, c.unit) for c in result.channels] == [
        ("Ch1_Samples_W/m^2", "sample", "W/m^2"),
        ("Ch13_Samples_hPa", "sample", "hPa"),
    ]
    assert result.frame.get_column("Ch13_Samples_hPa").to_list() == [993.574, 993.5658, 993.5378]
    assert result.frame.get_column("timestamp")[2] == utc(2024, 1, 11, 13, 0, 2)


def test_cr_only_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "cr.dat"
    path.write_bytes((FIX / "one_second_crlf.dat").read_bytes().replace(b"\r\n", b"\r"))
    result = read_nrg_logr(path)
    assert result.rows == 3
    assert result.frame.get_column("Ch1_Samples_W/m^2").to_list() == [12.5243, 12.5463, 12.5504]


def test_old_firmware_channel_without_colon() -> None:
    result = read_nrg_logr(FIX / "fw102_channel_without_colon.dat")
    assert result.meta.logger_os == "1.02.10"
    assert result.meta.skipped_channels == ("Ch1_NotUsed",)
    by_name = {c.name: c for c in result.channels}
    assert by_name["Ch301_Sum_mm"].statistic == "sum"
    assert by_name["Ch301_Sum_mm"].attrs["description"] == "Precipitation Hourly Sum"
    assert result.frame.get_column("Ch301_Sum_mm").to_list() == [0.0, 0.254]


def test_diagnostics_fixture() -> None:
    result = read_nrg_logr(FIX / "diagnostics.diag")
    assert result.frame.columns == [
        "timestamp",
        "VIN_RP_V_Avg",
        "VIN_RP_V_SD",
        "COMA EXC_mA_Max",
        "+VIN_RP_Avg",
    ]
    assert result.frame.get_column("COMA EXC_mA_Max").to_list() == [156.337, 149.8901]
    assert [(c.statistic, c.unit) for c in result.channels] == [
        ("avg", "V"),
        ("sd", "V"),
        ("max", "mA"),
        ("avg", None),
    ]


@pytest.mark.parametrize("name", ["events_comma.log", "events_tab_no_file_content.log"])
def test_event_logs_are_not_readings(name: str) -> None:
    path = FIX / name
    assert sniff(path.read_bytes())
    with pytest.raises(
        NotReadingsError, match=f"{name}: NRG event log: holds events, not readings"
    ):
        read_nrg_logr(path)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("Ch12_Gust_Dir_Deg", (12, "Gust_Dir", "Deg")),
        ("Ch5_Avg_deg_C", (5, "Avg", "deg_C")),
        ("Ch4_NotUsed", (4, "NotUsed", None)),
        ("Ch304_Avg_kW/m^2/hour", (304, "Avg", "kW/m^2/hour")),
        ("Ch1_Samples_W/m^2", (1, "Samples", "W/m^2")),
        ("Timestamp", None),
        ("Ch7_Weird_x", None),
    ],
)
def test_split_column(column: str, expected: tuple[int, str, str | None] | None) -> None:
    assert split_column(column) == expected


# --- bad input ----------------------------------------------------------------


def test_bad_timestamp_names_the_line() -> None:
    with pytest.raises(ParseError, match=r"bad_timestamp.dat, line 69: .*2025-13-45T99:10:00"):
        read_nrg_logr(FIX / "bad_timestamp.dat")


def test_wrong_first_column() -> None:
    with pytest.raises(
        ParseError, match=r"line 67: expected 'Timestamp' or 'Stats_Timestamp' as the first column"
    ):
        read_nrg_logr(FIX / "wrong_timestamp_column.dat")


def test_a_symphoniepro_export_is_not_a_logr_file() -> None:
    with pytest.raises(ParseError, match="expected an NRG LOGR file"):
        read_nrg_logr(FIXTURES / "nrg_symphonie" / "export_service_tiny.txt")


def test_header_only(tmp_path: Path) -> None:
    text = (FIX / "diagnostics.diag").read_text()
    path = tmp_path / "header_only.diag"
    path.write_text(text[: text.index("Data\n") + len("Data\n")], newline="")
    with pytest.raises(
        ParseError, match=r"header_only.diag, line \d+: expected the column header line"
    ):
        read_nrg_logr(path)


def test_empty_data_block(tmp_path: Path) -> None:
    text = (FIX / "diagnostics.diag").read_text()
    path = tmp_path / "no_rows.diag"
    path.write_text(text[: text.index("2024-01-11T13:00:00Z")], newline="")
    result = read_nrg_logr(path)
    assert result.rows == 0
    assert result.frame.columns[1:] == [c.name for c in result.channels]


def test_format_constant() -> None:
    assert nrg_logr.FORMAT == "nrg_logr"
