"""TOB3: every corpus file against Campbell's own TOA5 conversion, and each quirk
of the format on fixtures encoded by hand (tests/fixtures/tob3/make_fixtures.py)."""

from __future__ import annotations

import io
import struct
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stationkit.errors import ParseError
from stationkit.parsers.tob3 import read_tob3, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files
from tests.parsers.test_tob1 import assert_matches_campbell_toa5

TOB3 = FIXTURES / "tob3"
LONG19 = CORPUS / "TOB3" / "alextsfox__camp2ascii__TOB3_long19.dat"
PARTIAL3 = CORPUS / "TOB3" / "alextsfox__camp2ascii__TOB3_partial3.dat"
#: Campbell's CardConvert TOA5 conversions of the corpus files
ORACLES = {
    LONG19.name: "alextsfox__camp2ascii__TOA5_TOB3_long19_2026_02_19_0946.dat",
    PARTIAL3.name: "alextsfox__camp2ascii__TOA5_TOB3_partial3_2026_02_20_1307.dat",
}
T0 = datetime(2024, 4, 3, 12, 0, 0, 500000)


@pytest.mark.parametrize("path", corpus_files("TOB3"), ids=lambda p: p.name)
def test_every_corpus_file_equals_campbells_toa5_conversion(path: Path) -> None:
    result = read_tob3(path)
    assert result.meta.format == "tob3"
    assert result.frame.get_column("timestamp").null_count() == 0
    assert_matches_campbell_toa5(result, CORPUS / "TOA5" / ORACLES[path.name])


def test_corpus_long19_cells_and_header() -> None:
    r = read_tob3(LONG19)
    assert r.frame.shape == (199, 12)
    first = r.frame.row(0, named=True)
    # "2026-02-19 09:46:09.005",3755,"64291","NAN","NAN","NAN","NAN",-0.279,0.306888908147812,
    # 56458,18753000,"142857",0,"00000000","00000000",0,0.2789899,"314159"
    assert first["timestamp"] == datetime(2026, 2, 19, 9, 46, 9, 5000)
    assert first["temp_Avg(1)"] is None  # FP2 NaN
    assert first["temp_Avg(2)"] is None  # IEEE4B NaN
    assert first["temp_Avg(3)"] is None  # IEEE8B NaN
    assert first["temp(1)"] is None
    assert first["temp(2)"] == -0.279
    assert first["temp(3)"] == pytest.approx(0.306888908147812, abs=5e-16)
    assert first["temp(4)"] == 56458.0
    assert first["temp(5)"] == 18753000.0
    assert first["toggle"] == 0.0  # BOOL4 false
    assert first["temp(8)"] == 0.0  # INT4
    assert first["rand"] == pytest.approx(0.2789899, abs=5e-8)
    second = r.frame.row(1, named=True)
    # "2026-02-19 09:46:09.01",3756,...,0.4292137,-0.429,0.472135096788406,56508,...,-1,...
    assert second["timestamp"] == datetime(2026, 2, 19, 9, 46, 9, 10000)
    assert second["temp(1)"] == pytest.approx(0.4292137, abs=5e-8)
    assert second["toggle"] == -1.0
    last = r.frame.row(-1, named=True)
    # "2026-02-19 09:46:10",3953,...,-0.3520511,0.352,-0.387256264686584,822,19743000,...
    assert last["timestamp"] == datetime(2026, 2, 19, 9, 46, 10)
    assert last["temp(1)"] == pytest.approx(-0.3520511, abs=5e-8)
    assert last["temp(2)"] == 0.352
    assert last["temp(4)"] == 822.0
    # the first frame is minor: its second sub-frame has its own time, 10 ms after the
    # last record of the first one -- TOA5 lines 7-8: "...09:46:09.015",3757 / "...09.025",3758
    stamps = r.frame.get_column("timestamp")
    assert stamps[2] == datetime(2026, 2, 19, 9, 46, 9, 15000)
    assert stamps[3] == datetime(2026, 2, 19, 9, 46, 9, 25000)
    assert r.meta.table == "TOB3_Long"
    assert r.meta.interval_s == 0.005
    assert r.meta.logger_model == "CR1000X"
    assert r.meta.program == "test_suite.cr1x"
    assert r.meta.skipped_channels == (
        "text_val", "text_val_2", "temp_bool8(1)", "temp_bool8(2)", "text_val_3",
    )  # fmt: skip
    extra = r.meta.extra
    assert extra["file_created"] == "2026-02-19 09:46:08"
    assert extra["frame_size"] == 988
    assert extra["intended_table_size"] == 216
    assert extra["validation_stamp"] == 13533
    assert extra["frame_time_resolution"] == "Sec100Usec"
    assert extra["header_bytes"] == 1024
    assert extra["record_size"] == 108
    # 27 frames: 23 written, 4 never written (stale bytes after the last one)
    assert (extra["frames"], extra["frames_valid"], extra["frames_skipped"]) == (27, 23, 4)
    assert (extra["first_record"], extra["last_record"]) == (3755, 3953)
    assert r.meta.warnings == ()


def test_corpus_partial3_text_only_file_with_minor_frames() -> None:
    r = read_tob3(PARTIAL3)
    assert r.frame.shape == (2024, 1)
    assert r.channels == ()
    assert r.meta.skipped_channels == ("text_val", "text_val_2", "text_val_3")
    stamps = r.frame.get_column("timestamp")
    assert stamps[0] == datetime(2026, 2, 20, 13, 7, 50, 5000)
    assert stamps[-1] == datetime(2026, 2, 20, 13, 8)
    # record numbers 5917..7940: every record once, none dropped at partial frames
    assert (r.meta.extra["first_record"], r.meta.extra["last_record"]) == (5917, 7940)
    assert r.rows == 7940 - 5917 + 1
    # the logger's frame clock stepped back; Campbell's conversion keeps record order:
    # TOA5 lines 447-448: "2026-02-20 13:07:52.225",6359 / "2026-02-20 13:07:52.015",6360
    assert stamps[442] == datetime(2026, 2, 20, 13, 7, 52, 225000)
    assert stamps[443] == datetime(2026, 2, 20, 13, 7, 52, 15000)
    assert r.meta.extra["frame_size"] == 1008


def test_tiny_fixture_exact_table() -> None:
    r = read_tob3(TOB3 / "tiny.dat")
    records = list(range(100, 108))
    expected = pl.DataFrame(
        {
            "timestamp": [T0 + timedelta(seconds=r - 100) for r in records],
            "WS": [r / 100 for r in records],
            "T": [r - 100 + 0.5 for r in records],
            "P": [1000 + r / 4 for r in records],
            "N": [float(r) for r in records],
            "Flag": [-1.0 if r % 2 else 0.0 for r in records],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert_frame_equal(r.frame, expected)
    assert r.meta.skipped_channels == ("Note",)
    assert [c.statistic for c in r.channels] == ["avg", "sample", "max", "sum", "sample"]
    assert [c.unit for c in r.channels] == ["m/s", "degC", "hPa", None, None]
    assert r.meta.interval_s == 1.0
    assert r.meta.table == "Fast"
    assert r.meta.station_name == "Mast7"
    # frame 4 was never written; 10 stray bytes end the file
    assert (r.meta.extra["frames"], r.meta.extra["frames_valid"]) == (5, 4)
    assert r.meta.warnings == (
        "byte 972: 10 trailing byte(s) dropped (a partial frame; frames are 92 bytes)",
    )


def test_ring_file_that_wrapped_is_read_oldest_first() -> None:
    r = read_tob3(TOB3 / "ring.dat")
    assert r.frame.get_column("N").to_list() == [float(n) for n in range(100, 109)]
    assert r.frame.get_column("timestamp").to_list() == [
        T0 + timedelta(seconds=s) for s in range(9)
    ]
    assert r.meta.extra["ring_record"] == 100
    assert r.meta.extra["wrapped_at_frame"] == 1
    assert r.meta.warnings == ()


def test_path_and_file_like_give_the_same_result() -> None:
    by_path = read_tob3(TOB3 / "tiny.dat")
    by_stream = read_tob3(io.BytesIO((TOB3 / "tiny.dat").read_bytes()), name="member.dat")
    assert_frame_equal(by_path.frame, by_stream.frame)
    assert by_path.channels == by_stream.channels
    assert by_path.meta == by_stream.meta
    with pytest.raises(ParseError, match=r"^member\.dat, line 2: record interval"):
        read_tob3(io.BytesIO((TOB3 / "bad_interval.dat").read_bytes()), name="member.dat")


def test_lf_header_lines() -> None:
    r = read_tob3(TOB3 / "lf_header.dat")
    assert_frame_equal(r.frame, read_tob3(TOB3 / "tiny.dat").frame.head(3))


def test_file_never_written_gives_no_rows_and_says_why() -> None:
    r = read_tob3(TOB3 / "never_written.dat")
    assert r.rows == 0
    assert r.frame.columns == ["timestamp", "WS", "T", "P", "N", "Flag"]
    assert r.meta.extra["frames_skipped"] == 2
    assert r.meta.warnings == (
        "no frame carries the validation stamp 21930 (or its complement): "
        "no records were written to this file",
    )


def test_invalid_frame_between_valid_ones_is_skipped_with_a_warning() -> None:
    r = read_tob3(TOB3 / "gap.dat")
    assert r.frame.get_column("N").to_list() == [100.0, 101.0, 102.0, 106.0, 107.0, 108.0]
    assert r.meta.warnings == (
        "1 frame(s) without a valid stamp lie between valid frames and were skipped",
    )


@pytest.mark.parametrize(
    ("fixture", "line", "message"),
    [
        ("bad_decode_line.dat", 2, r"expected at least 8 fields .* found 5"),
        ("bad_interval.dat", 2, r"record interval '5 FORTNIGHT': expected a number and a unit"),
        ("bad_resolution.dat", 2, r"frame time resolution 'SecFortnight': expected e\.g\."),
        ("bad_frame_size.dat", 2, r"a 24-byte record does not fit a 30-byte frame"),
        ("bad_stamp.dat", 2, r"field 5 \(validation stamp\): expected an integer, found 'x55AA'"),
        ("bad_truncated_header.dat", 4, r"expected 6 TOB3 header lines, found 3"),
        ("bad_unknown_type.dat", 6, r"field 6 \('Note'\): data type 'ASCII' needs a length"),
    ],
)
def test_bad_input_names_file_line_and_what_was_expected(
    fixture: str, line: int, message: str
) -> None:
    path = TOB3 / fixture
    with pytest.raises(ParseError, match=rf"{path.name}, line {line}: {message}") as info:
        read_tob3(path)
    assert info.value.line == line


def test_not_a_tob3_file() -> None:
    with pytest.raises(ParseError, match=r'line 1: expected "TOB3"'):
        read_tob3(CORPUS / "TOB1" / "thyyppa__Toxx__DemoOutputTob1.dat")


def test_sniff_recognises_every_tob3_and_rejects_other_formats() -> None:
    for path in corpus_files("TOB3"):
        assert sniff(path.read_bytes()[:8192]), path.name
    folders = [d.name for d in sorted(CORPUS.iterdir()) if d.is_dir() and d.name != "TOB3"]
    others = [p for folder in folders for p in corpus_files(folder)]
    assert any(p.parent.name == "TOB1" for p in others)
    for path in others:
        assert not sniff(path.read_bytes()[:8192]), path.name
    assert not sniff(b'"TOB2","x"')


def _one_frame_file(tmp_path: Path, interval: str, resolution: str, ticks: int) -> Path:
    """A TOB3 file of one full frame: 3 IEEE4B records (1.0, 2.0, 3.0) at
    2024-04-03 12:00:00 + ``ticks`` of ``resolution``, records ``interval`` apart."""
    seconds = int((datetime(2024, 4, 3, 12) - datetime(1990, 1, 1)).total_seconds())
    stamp = 777
    head = (
        '"TOB3","s","CR3000","1","os","CPU:p.cr3","1","2024-04-03 11:00:00"\r\n'
        f'"T","{interval}","28","3","{stamp}","{resolution}","0","0","0"\r\n'
        '"X"\r\n""\r\n"Smp"\r\n"IEEE4B"\r\n'
    ).encode()
    frame = struct.pack("<III", seconds, ticks, 1) + struct.pack(">fff", 1.0, 2.0, 3.0)
    frame += struct.pack("<I", stamp << 16)
    path = tmp_path / "one.dat"
    path.write_bytes(head + frame)
    return path


@pytest.mark.parametrize(
    ("resolution", "ticks"),
    [
        ("Sec100Usec", 2_500),
        ("Sec10Usec", 25_000),
        ("SecMsec", 250),
        ("Sec100Nsec", 2_500_000),
        ("SecUsec", 25_000),  # Campbell's legacy name without a factor: 10 us ticks
    ],
)
def test_frame_time_resolutions(tmp_path: Path, resolution: str, ticks: int) -> None:
    r = read_tob3(_one_frame_file(tmp_path, "1 SEC", resolution, ticks))
    start = datetime(2024, 4, 3, 12, 0, 0, 250000)
    assert r.frame.get_column("timestamp").to_list() == [
        start, start + timedelta(seconds=1), start + timedelta(seconds=2)
    ]  # fmt: skip
    assert r.frame.get_column("X").to_list() == [1.0, 2.0, 3.0]
    assert r.meta.warnings == ()


@pytest.mark.parametrize(
    ("interval", "step", "seconds"),
    [
        ("10 MIN", timedelta(minutes=10), 600.0),
        ("1 HR", timedelta(hours=1), 3600.0),
        ("5 MSEC", timedelta(milliseconds=5), 0.005),
        ("500 USEC", timedelta(microseconds=500), 0.0005),
        ("1 DAY", timedelta(days=1), 86400.0),
    ],
)
def test_record_intervals(tmp_path: Path, interval: str, step: timedelta, seconds: float) -> None:
    r = read_tob3(_one_frame_file(tmp_path, interval, "SecMsec", 0))
    start = datetime(2024, 4, 3, 12)
    assert r.frame.get_column("timestamp").to_list() == [start, start + step, start + 2 * step]
    assert r.meta.interval_s == seconds


def test_subsecond_count_beyond_one_second_is_flagged(tmp_path: Path) -> None:
    r = read_tob3(_one_frame_file(tmp_path, "1 SEC", "SecMsec", 5000))
    assert len(r.meta.warnings) == 1
    assert "over one second at the stated resolution 'SecMsec'" in r.meta.warnings[0]


def test_a_valid_frame_with_a_foreign_time_is_cut_at_its_byte_offset() -> None:
    path = CORPUS / "TOB3" / "alextsfox__camp2ascii__TOB3_long19.dat"
    data, base = path.read_bytes(), read_tob3(path)
    fs, start = base.meta.extra["frame_size"], base.meta.extra["header_bytes"]
    end = start + (len(data) - start) // fs * fs
    first = data[start : start + fs]
    (seconds,) = struct.unpack_from("<I", first)
    # the stamp is valid, the time 63 years on: bytes from elsewhere, not this file
    foreign = struct.pack("<I", seconds + 2_000_000_000) + first[4:]
    result = read_tob3(io.BytesIO(data[:end] + foreign), name="r.dat")
    assert_frame_equal(result.frame, base.frame)
    assert any(
        w.startswith(f"byte {end + 12}: record {base.rows + 1} is not a record of this file")
        for w in result.meta.warnings
    )
