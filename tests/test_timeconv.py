"""Labels -> UTC period starts: offsets, end-of-period shift, precedence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from stationkit.config import StationConfig
from stationkit.parsers.base import FileMeta
from stationkit.timeconv import infer_period, resolve, to_period_start_utc


def labels(*values: datetime, tz: str | None = None) -> pl.Series:
    return pl.Series("timestamp", list(values), dtype=pl.Datetime("us", tz))


def convert(station: StationConfig, meta: FileMeta, s: pl.Series) -> list[datetime]:
    return to_period_start_utc(s, resolve(station, meta, s)).to_list()


def test_end_of_period_shift_and_utc_offset() -> None:
    st = StationConfig(
        "M", utc_offset_hours=2, timestamp_is_end_of_period=True, averaging_period_minutes=10
    )
    got = convert(
        st, FileMeta("toa5"), labels(datetime(2024, 1, 1, 0, 10), datetime(2024, 1, 1, 0, 20))
    )
    assert got == [
        datetime(2023, 12, 31, 22, 0, tzinfo=UTC),
        datetime(2023, 12, 31, 22, 10, tzinfo=UTC),
    ]


def test_start_of_period_labels_are_not_shifted_and_negative_offsets_add() -> None:
    st = StationConfig("M", utc_offset_hours=-5, timestamp_is_end_of_period=False)
    got = convert(st, FileMeta("x"), labels(datetime(2024, 1, 1, 19, 0)))
    assert got == [datetime(2024, 1, 2, 0, 0, tzinfo=UTC)]


def test_fractional_offsets_are_exact() -> None:
    st = StationConfig("M", utc_offset_hours=5.75, timestamp_is_end_of_period=False)
    assert convert(st, FileMeta("x"), labels(datetime(2024, 1, 1, 6, 0))) == [
        datetime(2024, 1, 1, 0, 15, tzinfo=UTC)
    ]


def test_file_stating_utc_wins_over_the_station_offset() -> None:
    st = StationConfig("M", utc_offset_hours=3, timestamp_is_end_of_period=False)
    s = labels(datetime(2024, 1, 1, 12, 0), tz="UTC")
    assert convert(st, FileMeta("x"), s) == [datetime(2024, 1, 1, 12, 0, tzinfo=UTC)]


def test_header_offset_used_when_the_station_does_not_set_one() -> None:
    meta = FileMeta("nrg", utc_offset_hours=-5, timestamp_is_end_of_period=False)
    got = convert(StationConfig("M"), meta, labels(datetime(2022, 3, 17, 0, 0)))
    assert got == [datetime(2022, 3, 17, 5, 0, tzinfo=UTC)]
    # ... and the station setting wins when it is given
    st = StationConfig(
        "M", utc_offset_hours=0, timestamp_is_end_of_period=True, averaging_period_minutes=1
    )
    assert convert(st, meta, labels(datetime(2022, 3, 17, 0, 0))) == [
        datetime(2022, 3, 16, 23, 59, tzinfo=UTC)
    ]


def test_period_inferred_from_the_most_common_step_despite_gaps() -> None:
    base = datetime(2024, 1, 1)
    s = labels(*(base + timedelta(minutes=m) for m in (10, 20, 30, 40, 90, 100, 110)))
    assert infer_period(s) == timedelta(minutes=10)
    got = convert(StationConfig("M"), FileMeta("x"), s)
    assert got[0] == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # default: end of period, UTC


def test_file_interval_beats_inference_and_single_rows_default_to_ten_minutes() -> None:
    s = labels(datetime(2024, 1, 1, 0, 0, 1))
    assert convert(StationConfig("M"), FileMeta("tob3", interval_s=1), s) == [
        datetime(2024, 1, 1, tzinfo=UTC)
    ]
    assert convert(StationConfig("M"), FileMeta("x"), labels(datetime(2024, 1, 1, 0, 10))) == [
        datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    ]
