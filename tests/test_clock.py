"""A station's clock settings: stations.toml, else its IEA document, one rule everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta

from stationkit.calibrate.metadata import LoggerTime
from stationkit.clock import Clock, StationClock
from stationkit.config import StationConfig


def cfg(
    offset: float | None = None,
    start: str | None = None,
    end: str | None = None,
    *,
    period: float | None = None,
    n: int = 0,
) -> LoggerTime:
    return LoggerTime(
        utc_offset_hours=offset,
        averaging_period_minutes=period,
        date_from=datetime.fromisoformat(start) if start else None,
        date_to=datetime.fromisoformat(end) if end else None,
        where=f"d.json: logger_main_config[{n}]",
    )


def at(clock: StationClock, when: str | None) -> float | None:
    return clock.at(datetime.fromisoformat(when) if when else None).utc_offset_hours


def test_the_station_setting_wins_then_the_document_then_nothing() -> None:
    doc = (cfg(-5, "2020-01-01", period=10),)
    own = StationClock(StationConfig("M", utc_offset_hours=1), doc).at()
    assert (own.utc_offset_hours, own.source("utc_offset_hours")) == (1, "station")
    assert own.averaging_period_minutes == 10 and own.period == timedelta(minutes=10)
    assert own.source("averaging_period_minutes") == "IEA document d.json: logger_main_config[0]"
    bare = StationClock(StationConfig("M"), doc).at()
    assert (bare.utc_offset_hours, bare.offset_hours) == (-5, -5)
    nothing = StationClock(StationConfig("M")).at()
    assert nothing == Clock() and nothing.offset_hours == 0.0 and nothing.period is None


def test_configurations_that_agree_apply_at_every_time() -> None:
    clock = StationClock(StationConfig("M"), (cfg(2, "2024-01-01", "2024-02-01"), cfg(2)))
    assert [at(clock, w) for w in ("2019-01-01", "2024-01-15", "2030-01-01", None)] == [2] * 4
    assert clock.changes() == [] and clock.warnings() == []


def test_an_offset_that_changes_over_time() -> None:
    clock = StationClock(
        StationConfig("M"),
        (
            cfg(0, "2024-01-01", "2024-03-01", n=0),
            cfg(1, "2024-03-01", "2024-06-01", n=1),  # half-open: 2024-03-01 is the new one's
            cfg(2, "2024-07-01", None, n=2),
        ),
    )
    assert at(clock, "2024-02-29T23:59") == 0 and at(clock, "2024-03-01") == 1
    assert at(clock, "2023-06-01") == 0  # before every configuration: the first
    assert at(clock, "2024-06-15") == 1  # in a gap: the one that ended last
    assert at(clock, "2025-01-01") == 2 and at(clock, None) == 2  # now: the open one
    assert clock.at(datetime(2024, 3, 5)).source("utc_offset_hours") == (
        "IEA document d.json: logger_main_config[1]"
    )
    assert clock.changes() == [
        ["utc_offset_hours", "0001-01-01T00:00:00", 0],
        ["utc_offset_hours", "2024-03-01T00:00:00", 1],
        ["utc_offset_hours", "2024-07-01T00:00:00", 2],
    ]
    assert clock.warnings() == []
    # every configuration closed: now is the one that ended last
    closed = StationClock(
        StationConfig("M"), (cfg(0, None, "2024-01-01"), cfg(3, "2024-01-01", "2024-02-01"))
    )
    assert at(closed, None) == 3


def test_loggers_in_force_together_that_disagree_give_no_value_and_a_warning() -> None:
    doc = (
        cfg(0, "2024-01-01", period=10, n=0),  # the buoy
        cfg(0, "2024-01-01", period=3, n=1),  # the ADCP
    )
    clock = StationClock(StationConfig("B1"), doc)
    settings = clock.at(datetime(2024, 5, 1))
    assert settings.utc_offset_hours == 0 and settings.averaging_period_minutes is None
    assert clock.warnings() == [
        "the IEA document's logger configurations in force together disagree on "
        "averaging_period_minutes (3, 10); files of that time take "
        "averaging_period_minutes from their header or the default: set "
        "stations.B1.averaging_period_minutes to say which applies"
    ]
    later = StationClock(
        StationConfig("B1"), (cfg(period=10, start="2024-01-01"), cfg(period=3, start="2024-06-01"))
    )
    assert later.at(datetime(2024, 5, 1)).averaging_period_minutes == 10
    assert later.at(datetime(2024, 7, 1)).averaging_period_minutes is None
    (warning,) = later.warnings()
    assert "in force together from 2024-06-01T00:00:00 disagree on" in warning
    # the station's setting settles it, without a warning
    settled = StationClock(StationConfig("B1", averaging_period_minutes=10), doc)
    assert settled.warnings() == [] and settled.at().averaging_period_minutes == 10


def test_a_station_setting_that_overrides_a_different_document_value_is_reported() -> None:
    clock = StationClock(
        StationConfig("M1", utc_offset_hours=2), (cfg(1, "2024-01-01"), cfg(2, None, "2024-01-01"))
    )
    assert clock.at(datetime(2024, 5, 1)).utc_offset_hours == 2
    assert clock.warnings() == [
        "stations.M1.utc_offset_hours = 2 overrides the IEA document's offset_from_utc_hrs = 1 "
        "(d.json: logger_main_config[0]); the station setting is used everywhere"
    ]
