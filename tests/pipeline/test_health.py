"""Fleet health: stale stations (and alerting once per episode), suspect
sensors from QC flags, failed files."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from stationkit.cli import cli
from stationkit.config import StationConfig, load_config
from stationkit.export.window import file_spans, scan_window
from stationkit.ledger import Ledger
from stationkit.pipeline.health import (
    STALE_FLOOR,
    failed_files,
    newly_stale,
    stale_after,
    staleness,
    suspect_points,
)
from stationkit.pipeline.run import RunResult, run_stations
from stationkit.pipeline.status import station_status
from tests.conftest import CORPUS
from tests.export.clean import STEP, make_config
from tests.pipeline.helpers import make_station, suspect_station, toa5

BAD = CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat"
#: make_station's logger clock
LOCAL = timedelta(hours=1)


def test_stale_after_defaults_and_settings(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    station = config.stations["M001"]
    # 10-minute data fetched every run: the floor (a daily upload six hours late)
    assert stale_after(config, station) == STALE_FLOOR == timedelta(hours=30)
    daily = StationConfig("D", averaging_period_minutes=1440)
    assert stale_after(config, daily) == timedelta(days=3)
    rare = StationConfig("R", fetch_interval_minutes=7 * 1440)
    assert stale_after(config, rare) == timedelta(days=14)
    config = make_config(tmp_path, "stale_after_hours = 2")
    assert stale_after(config, config.stations["M001"]) == timedelta(hours=2)
    config = make_config(tmp_path, "stale_after_hours = 0")
    assert stale_after(config, config.stations["M001"]) is None  # never stale


def test_fleet_default_and_station_override(tmp_path: Path) -> None:
    (tmp_path / "stations.toml").write_text(
        "[status]\nstale_after_hours = 6\n[stations.A]\n[stations.B]\nstale_after_hours = 48\n"
    )
    config = load_config(tmp_path / "stations.toml")
    assert stale_after(config, config.stations["A"]) == timedelta(hours=6)
    assert stale_after(config, config.stations["B"]) == timedelta(hours=48)


def _run_once(tmp_path: Path, times: list[datetime]) -> Path:
    """A station whose one file holds 10-minute periods ending at ``times`` (UTC)."""
    config, incoming = make_station(tmp_path)
    rows = [(f"{t + LOCAL:%Y-%m-%d %H:%M:%S}", 5.0, 0.5) for t in times]
    (incoming / "a.dat").write_text(toa5(rows))
    assert run_stations(config, config.select()).exit_code == 0
    return tmp_path / "stations.toml"


def test_staleness_states(tmp_path: Path) -> None:
    conf = _run_once(tmp_path, [datetime(2024, 1, 1, 0, 10), datetime(2024, 1, 1, 0, 20)])
    config = load_config(conf)
    st = config.stations["M1"]
    newest = datetime(2024, 1, 1, 0, 10, tzinfo=UTC)  # the period start of the last row
    with Ledger(config.data_dir, readonly=True) as ledger:
        fresh = staleness(config, st, ledger, newest + timedelta(hours=29))
        stale = staleness(config, st, ledger, newest + timedelta(hours=31))
        ahead = staleness(config, st, ledger, newest - timedelta(hours=3))
    assert (fresh.state, fresh.stale, fresh.last_data) == ("ok", False, newest)
    assert (stale.state, stale.stale) == ("stale", True)
    assert stale.as_dict() == {
        "state": "stale",
        "stale": True,
        "last_data": "2024-01-01T00:10:00.000000Z",
        "age_hours": 31.0,
        "stale_after_hours": 30.0,
    }
    assert ahead.state == "clock ahead"
    (tmp_path / "empty").mkdir()
    empty = make_config(tmp_path / "empty")
    with Ledger(empty.data_dir, readonly=True) as ledger:
        nothing = staleness(empty, empty.stations["M001"], ledger, newest)
    assert (nothing.state, nothing.stale, nothing.age) == ("no data", False, None)


def test_a_stale_episode_is_reported_once_and_again_after_fresh_data(tmp_path: Path) -> None:
    conf = _run_once(tmp_path, [datetime(2024, 1, 1, 0, 10)])
    config = load_config(conf)
    st = config.stations["M1"]
    t0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    with Ledger(config.data_dir) as ledger:
        assert newly_stale(config, [st], ledger, t0 + timedelta(hours=1)) == []  # fresh
        (alert,) = newly_stale(config, [st], ledger, t0 + timedelta(hours=31))
        assert alert == (
            "M1",
            "stale: no data since 2024-01-01 00:00 UTC (31.0 h ago; stale after 30.0 h)",
        )
        assert newly_stale(config, [st], ledger, t0 + timedelta(hours=32)) == []  # once
        assert newly_stale(config, [st], ledger, t0 + timedelta(days=9)) == []
        # data again (the clock check sees it fresh), then silence again: a new episode
        assert newly_stale(config, [st], ledger, t0 + timedelta(hours=2)) == []
        assert len(newly_stale(config, [st], ledger, t0 + timedelta(hours=40))) == 1


def test_a_station_already_stale_when_first_checked_is_not_reported(tmp_path: Path) -> None:
    conf = _run_once(tmp_path, [datetime(2024, 1, 1, 0, 10)])  # old data: the run said nothing
    config = load_config(conf)
    with Ledger(config.data_dir) as ledger:
        later = datetime(2024, 6, 1, tzinfo=UTC)
        assert newly_stale(config, config.select(), ledger, later) == []
        assert newly_stale(config, config.select(), ledger, later + timedelta(days=1)) == []


def _recent_rows(now: datetime, hours: int) -> list[tuple[str, float, float]]:
    """10-minute rows (logger time, end-of-period labels) up to ``hours`` before ``now``."""
    last = now.replace(minute=now.minute // 10 * 10, second=0, microsecond=0)
    last += LOCAL - timedelta(hours=hours)
    return [(f"{last - i * STEP:%Y-%m-%d %H:%M:%S}", 5.0, 0.5) for i in range(3)][::-1]


def test_run_reports_a_newly_stale_station_once_through_on_failure(tmp_path: Path) -> None:
    received = tmp_path / "hook.txt"
    hook = (
        f'on_failure = ["{sys.executable}", "-c", '
        f'"import sys; open({str(received)!r}, \\"a\\").write(sys.stdin.read())"]\n'
    )
    _, incoming = make_station(tmp_path, "stale_after_hours = 1000")
    conf = tmp_path / "stations.toml"
    conf.write_text(hook + conf.read_text())
    (incoming / "a.dat").write_text(toa5(_recent_rows(datetime.now(UTC), 3)))
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(conf), "run"]).exit_code == 0  # fresh
    conf.write_text(conf.read_text().replace("stale_after_hours = 1000", "stale_after_hours = 1"))
    first = runner.invoke(cli, ["--config", str(conf), "run"])
    assert first.exit_code == 3
    assert "stationkit: error: M1: health: stale: no data since " in first.stderr
    assert "M1 health: stale: no data since" in received.read_text()
    again = runner.invoke(cli, ["--config", str(conf), "run"])
    assert (again.exit_code, again.stderr) == (0, "")  # alerted once, not every hour
    (incoming / "b.dat").write_text(toa5(_recent_rows(datetime.now(UTC), 0)))
    assert runner.invoke(cli, ["--config", str(conf), "run"]).exit_code == 0  # data again
    assert received.read_text().count("stale: no data since") == 1


def test_a_stale_alert_is_recorded_so_a_run_killed_before_reporting_loses_none(
    tmp_path: Path,
) -> None:
    _, incoming = make_station(tmp_path, "stale_after_hours = 1000")
    conf = tmp_path / "stations.toml"
    (incoming / "a.dat").write_text(toa5(_recent_rows(datetime.now(UTC), 3)))
    config = load_config(conf)
    assert run_stations(config, config.select()).exit_code == 0  # fresh when first checked
    conf.write_text(conf.read_text().replace("stale_after_hours = 1000", "stale_after_hours = 1"))
    config = load_config(conf)

    def killed(result: RunResult) -> None:
        assert [f.stage for f in result.failures] == ["health"]
        raise RuntimeError("killed while reporting")

    with pytest.raises(RuntimeError, match="killed while reporting"):
        run_stations(config, config.select(), report=killed)
    reported: list[RunResult] = []
    again = run_stations(config, config.select(), report=reported.append)
    (failure,) = again.failures
    assert (failure.station, failure.stage, failure.earlier) == ("M1", "health", True)
    assert failure.reason.startswith("stale: no data since ") and reported == [again]
    with Ledger(config.data_dir, readonly=True) as ledger:
        assert station_status(ledger, "M1")["last_error"]["stage"] == "health"
    assert run_stations(config, config.select()).failures == []  # reported once
    # data again: the episode is over, and so is its failure
    (incoming / "b.dat").write_text(toa5(_recent_rows(datetime.now(UTC), 0)))
    assert run_stations(config, config.select()).exit_code == 0
    with Ledger(config.data_dir, readonly=True) as ledger:
        assert station_status(ledger, "M1")["last_error"] is None


# ---------------------------------------------------------------- suspect sensors


def test_suspect_points_over_the_last_days(tmp_path: Path) -> None:
    config = load_config(suspect_station(tmp_path))
    report = suspect_points(config, config.stations["M001"])
    assert report.end == datetime(2024, 2, 2, 23, 50, tzinfo=UTC)
    assert report.start == report.end - timedelta(days=7)
    (spd,) = report.points  # Tmp2m at 15 % and the manual flag do not count
    assert spd.point == "Spd80mN" and spd.measurement_type == "wind_speed"
    assert spd.values == 2 * 7 * 144
    assert spd.flags == {"qc_icing": pytest.approx(0.3, abs=0.005)}
    assert spd.text() == "Spd80mN (qc_icing 30%)"


def test_suspect_threshold_days_and_flags_are_settings(tmp_path: Path) -> None:
    conf = suspect_station(
        tmp_path, "[status]\nsuspect_share = 0.1\nsuspect_flags = ['qc_range', 'qc_icing']\n"
    )
    config = load_config(conf)
    points = {p.point: p.flags for p in suspect_points(config, config.stations["M001"]).points}
    assert set(points) == {"Spd80mN", "Tmp2m"}
    assert set(points["Spd80mN"]) == {"qc_icing"}  # qc_flatline is not counted now
    assert points["Tmp2m"]["qc_range"] == pytest.approx(0.15, abs=0.005)
    # a window reaching back before the recent days sees Tmp2m's old range hits too
    conf.write_text(
        conf.read_text().replace("suspect_share = 0.1", "suspect_share = 0.4\nsuspect_days = 10")
    )
    config = load_config(conf)
    points = {p.point: p.flags for p in suspect_points(config, config.stations["M001"]).points}
    assert set(points) == {"Tmp2m"} and points["Tmp2m"]["qc_range"] > 0.4


def test_only_the_files_reaching_into_the_window_are_read(tmp_path: Path) -> None:
    config = load_config(suspect_station(tmp_path))
    folder = config.data_dir / "lake" / "clean" / "station=M001"
    spans = file_spans(sorted(folder.glob("*.parquet")))
    assert [s.path.name for s in spans] == ["2024-01.parquet", "2024-02.parquet"]
    (folder / "2024-01.parquet").unlink()  # never opened again
    lf = scan_window(spans, datetime(2024, 2, 1, tzinfo=UTC), None)
    assert lf is not None and lf.collect().height == 2 * 144 * 4
    assert scan_window(spans, datetime(2024, 3, 1, tzinfo=UTC), None) is None


def test_no_clean_data_no_suspects(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    report = suspect_points(config, config.stations["M001"])
    assert report.points == [] and report.as_dict()["window_end"] is None


# ---------------------------------------------------------------- failed files


def test_failed_files_with_reason_and_quarantined_copy(tmp_path: Path) -> None:
    config, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    (incoming / "bad.dat").write_bytes(BAD.read_bytes())
    (incoming / "worse.dat").write_bytes(BAD.read_bytes() + b"\r\n")
    run_stations(config, config.select())
    with Ledger(config.data_dir, readonly=True) as ledger:
        failed = failed_files(config, "M1", ledger)
    assert [(f.stage, f.path) for f in failed] == [
        ("parse", "raw/M1/bad.dat"),
        ("parse", "raw/M1/worse.dat"),
    ]
    assert failed[0].reason.startswith("raw/M1/bad.dat, line 2: duplicate column name")
    assert failed[0].quarantine is not None
    assert (config.data_dir / failed[0].quarantine).read_bytes() == BAD.read_bytes()
    assert failed[0].at is not None


def test_failing_fetch_is_listed(tmp_path: Path) -> None:
    conf = tmp_path / "stations.toml"
    conf.write_text('[stations.A.source]\nkind = "local"\npath = "missing"\n')
    result = CliRunner().invoke(cli, ["--config", str(conf), "run"])
    assert result.exit_code == 1
    out = CliRunner().invoke(cli, ["--config", str(conf), "status", "--failed", "--json"])
    (entry,) = json.loads(out.stdout)
    assert (entry["station"], entry["stage"], entry["path"]) == ("A", "fetch", "")
    assert "missing: does not exist or is not a folder" in entry["reason"]
