"""Windographer flagging logs: corpus, fixtures, errors, sniffing."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from stationkit.errors import NotReadingsError, ParseError
from stationkit.parsers.windographer_flags import (
    FlagPeriod,
    read_windographer_flags,
    refuse_readings,
    sniff,
)
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "WINDOGRAPHER_TXT"
LOG = CORPUS / FOLDER / "brightwind-dev__brightwind__windographer_flagging_log.txt"
HERE = FIXTURES / "windographer_flags"


def dt(*args: int) -> datetime:
    return datetime(*args)


def log_files() -> list[Path]:
    return [p for p in corpus_files(FOLDER) if "flagging_log" in p.name]


def test_corpus_has_the_log() -> None:
    assert log_files() == [LOG]


def test_corpus_log_periods() -> None:
    periods = read_windographer_flags(LOG)
    # 227 lines: the header and 226 periods
    assert len(periods) == 226
    assert periods[0] == FlagPeriod(
        "Spd80mN", "Installation", dt(2016, 1, 9, 15, 30), dt(2016, 1, 9, 17, 10), 10
    )
    # line 31 flags a column called just 'Sp' (as in the file)
    assert periods[29] == FlagPeriod(
        "Sp", "Icing", dt(2016, 3, 9, 6, 20), dt(2016, 3, 9, 10, 30), 25
    )
    assert periods[-1] == FlagPeriod(
        "Spd80mS", "Synthesized", dt(2017, 9, 4, 0, 30), dt(2018, 2, 9, 21, 30), 22878
    )
    counts = Counter(p.flag for p in periods)
    assert counts == {"Icing": 193, "Installation": 29, "Invalid": 3, "Synthesized": 1}


def test_corpus_periods_are_half_open() -> None:
    """End Time is the first step after the period: steps x 10 min == end - start."""
    for p in read_windographer_flags(LOG):
        assert p.time_steps is not None
        assert p.end - p.start == timedelta(minutes=10) * p.time_steps, p


def test_path_and_file_like() -> None:
    from_stream = read_windographer_flags(io.BytesIO(LOG.read_bytes()), name="log.txt")
    assert from_stream == read_windographer_flags(LOG)


def test_tiny_exact() -> None:
    assert read_windographer_flags(HERE / "tiny_crlf.txt") == [
        FlagPeriod("Spd80mN", "Icing", dt(2016, 3, 9, 6, 20), dt(2016, 3, 9, 10, 30), 25),
        FlagPeriod(
            "Speed 80 m N Mean", "Tower shadow", dt(2016, 3, 10, 0, 0), dt(2016, 3, 10, 1, 0), None
        ),
        FlagPeriod("Dir78mS", "Invalid", dt(2016, 12, 26, 7, 0), dt(2018, 2, 9, 21, 30), 59127),
    ]


def test_without_time_steps_column_and_final_break() -> None:
    assert read_windographer_flags(HERE / "no_time_steps.txt") == [
        FlagPeriod("T2m", "Sensor swap", dt(2016, 1, 9, 15, 30), dt(2016, 1, 9, 17, 10), None)
    ]


def test_flag_period_is_frozen() -> None:
    period = read_windographer_flags(HERE / "no_time_steps.txt")[0]
    with pytest.raises(AttributeError):
        period.flag = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fixture", "pattern"),
    [
        (
            "bad_time.txt",
            r"line 3: expected Start Time like 2016-01-09 15:30, found '09.03.2016 06:20'",
        ),
        ("end_before_start.txt", r"line 2: expected End Time \(2016-03-09 06:20\) not before"),
        ("bad_header.txt", r"line 1: expected the columns Data Column, Flag Name"),
        ("short_line.txt", r"line 2: expected 4 tab-separated fields, found 3"),
        ("bad_steps.txt", r"line 2: expected a whole number of Time Steps, found 'many'"),
    ],
)
def test_errors_name_file_and_line(fixture: str, pattern: str) -> None:
    with pytest.raises(ParseError, match=pattern) as info:
        read_windographer_flags(HERE / fixture)
    assert info.value.path is not None and info.value.path.endswith(fixture)


def test_empty_file() -> None:
    with pytest.raises(ParseError, match="line 1: expected a header line"):
        read_windographer_flags(io.BytesIO(b""), name="empty.txt")


def test_registry_entry_refuses_as_readings() -> None:
    with pytest.raises(NotReadingsError, match="flagging log holds flag periods"):
        refuse_readings(LOG)


def test_sniff() -> None:
    assert sniff(LOG.read_bytes()[:8192])
    assert sniff((HERE / "tiny_crlf.txt").read_bytes())
    assert sniff(b"\xef\xbb\xbf" + (HERE / "no_time_steps.txt").read_bytes())
    others = [p for p in CORPUS.rglob("*") if p.is_file() and p != LOG]
    for path in others:
        assert not sniff(path.read_bytes()[:8192]), path.name
