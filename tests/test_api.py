"""The Python API (stationkit.open / Project) on a fleet built through the real pipeline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import stationkit
from stationkit.api import LakeError, SelectionError
from stationkit.cli import cli
from stationkit.errors import ConfigError, LockedError
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.export import export_station
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station
from stationkit.pipeline.run import RunResult
from tests.fleet import A_ROWS, A_START, B_ROWS, B_START, FLAGGED, STEP, build, toa5, write_config

UTC_US = pl.Datetime("us", "UTC")
READINGS = {
    "station": pl.String,
    "timestamp": UTC_US,
    "channel": pl.String,
    "statistic": pl.String,
    "value": pl.Float64,
    "file_id": pl.Int64,
}
CLEAN = {
    "station": pl.String,
    "timestamp": UTC_US,
    "point": pl.String,
    "measurement_type": pl.String,
    "height_m": pl.Float64,
    "statistic": pl.String,
    "value": pl.Float64,
    "raw_value": pl.Float64,
    "flags": pl.List(pl.String),
    "file_id": pl.Int64,
}
FEB = datetime(2024, 2, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    build(root)
    return root


@pytest.fixture
def project(built: Path) -> stationkit.Project:
    return stationkit.open(built / "stations.toml")


@pytest.fixture
def own(built: Path, tmp_path: Path) -> Iterator[stationkit.Project]:
    """A copy of the fleet that a test may change."""
    root = tmp_path / "copy"
    shutil.copytree(built, root)
    yield stationkit.open(root / "stations.toml")


def file_ids(p: stationkit.Project, station: str = "M1") -> tuple[int, int]:
    """(a.dat, b.dat) file ids."""
    with Ledger(p.data_dir, readonly=True) as ledger:
        rows = ledger.conn.execute(
            "SELECT id, source_path FROM files WHERE station=? AND superseded_by IS NULL",
            (station,),
        ).fetchall()
    ids = {Path(r["source_path"]).name: r["id"] for r in rows}
    return ids["a.dat"], ids["b.dat"]


def readings_file(p: stationkit.Project, file_id: int, station: str = "M1") -> Path:
    return p.data_dir / "lake" / "readings" / f"station={station}" / f"part-{file_id:019d}.parquet"


def clean_file(p: stationkit.Project, month: str, station: str = "M1") -> Path:
    return p.data_dir / "lake" / "clean" / f"station={station}" / f"{month}.parquet"


def spoil(path: Path) -> None:
    """Make a file unreadable, so that a test sees whether it was opened."""
    path.write_bytes(b"not parquet")


# ---------------------------------------------------------------- the module


def test_import_is_cheap_and_dir_shows_the_api() -> None:
    code = (
        "import sys, stationkit; "
        "print(sorted(m for m in ('polars', 'pyarrow', 'duckdb', 'stationkit.api') "
        "if m in sys.modules)); print(dir(stationkit))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "[]"  # nothing heavy until the API is used
    shown = set(eval(out[1]))
    assert {"open", "Project", "SelectionError", "__version__"} <= shown
    assert stationkit.open is stationkit.api.open
    assert isinstance(stationkit.__version__, str)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = stationkit.nope  # type: ignore[attr-defined]


def test_open_project_and_its_stations(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATIONKIT_CONFIG", str(built / "stations.toml"))
    p = stationkit.open()
    assert p.path == built / "stations.toml" and p.data_dir == built / "data"
    assert list(p.stations) == ["M1", "M2"]
    assert p.stations["M1"].name == "Mast M1" and p.stations["M1"].utc_offset_hours == 1
    with pytest.raises(TypeError):
        p.stations["M3"] = p.stations["M1"]  # type: ignore[index]
    assert (
        repr(p) == f"<stationkit.Project {str(p.path)!r}: 2 stations, data in {str(p.data_dir)!r}>"
    )
    with pytest.raises(
        ConfigError, match=r"unknown station 'M9'; stations in stations.toml: M1, M2"
    ):
        p.readings("M9")
    with pytest.raises(ConfigError, match=r"missing.toml: no such file; pass the path of"):
        stationkit.open(built / "missing.toml")


# ---------------------------------------------------------------- readings


def test_readings_keep_every_copy_with_its_file(project: stationkit.Project) -> None:
    a, b = file_ids(project)
    df = project.readings("M1")
    assert dict(df.schema) == READINGS
    assert df.height == (A_ROWS + B_ROWS) * 3  # 3 channels; the 4 re-sent periods twice
    assert df.get_column("station").unique().to_list() == ["M1"]
    assert df.equals(df.sort("timestamp", "channel", "statistic", "file_id", nulls_last=False))
    copies = df.filter((pl.col("channel") == "WS80_Avg") & (pl.col("timestamp") == B_START + STEP))
    assert copies.select("file_id", "value").rows() == sorted(
        [(a, 5.0 + 21 / 4), (b, 105.0 + 21 / 4)]
    )
    assert df.get_column("timestamp").min() == A_START
    assert df.get_column("timestamp").max() == B_START + (B_ROWS - 1) * STEP
    only = project.readings("M1", channels="T2_Avg")
    assert only.get_column("channel").unique().to_list() == ["T2_Avg"]
    assert only.height == A_ROWS + B_ROWS


def test_readings_open_only_the_files_of_the_period(own: stationkit.Project) -> None:
    a, b = file_ids(own)
    spoil(readings_file(own, a))
    after_a = A_START + A_ROWS * STEP  # a.dat's last period has started before this
    df = own.readings("M1", start=after_a)
    assert df.get_column("file_id").unique().to_list() == [b]
    assert df.get_column("timestamp").min() == after_a
    with pytest.raises(LakeError, match=rf"part-{a:019d}.parquet: cannot be read as Parquet"):
        own.readings("M1")  # the whole period needs a.dat


def test_readings_show_only_the_current_version_of_a_file(own: stationkit.Project) -> None:
    old_a, b = file_ids(own)
    incoming = own.path.parent / "incoming" / "M1" / "a.dat"
    incoming.write_text(toa5("M1", A_START, 2, offset=50.0))  # a.dat changed at the source
    with Ledger(own.data_dir) as ledger:
        fetch_station(own.config, own.stations["M1"], ledger)
        # fetched, not parsed yet: the old version's readings are still on disk
        assert readings_file(own, old_a).exists()
        assert set(own.readings("M1").get_column("file_id").unique()) == {b}
        parse_station(own.config, own.stations["M1"], ledger)
    new_a, _ = file_ids(own)
    df = own.readings("M1")
    assert set(df.get_column("file_id").unique()) == {new_a, b}
    assert df.filter(pl.col("file_id") == new_a).height == 2 * 3


def test_readings_are_read_while_a_run_holds_the_lock(project: stationkit.Project) -> None:
    with RunLock(project.data_dir):
        assert project.readings("M2").height == (A_ROWS + B_ROWS) * 3
        assert project.clean("M2", wide=True).height == A_ROWS + B_ROWS - 4
        assert [s["station"] for s in project.status()] == ["M1", "M2"]


# ---------------------------------------------------------------- time


def test_period_bounds_accept_datetimes_dates_and_text(project: stationkit.Project) -> None:
    whole = project.clean("M1", points="T2")
    feb = whole.filter(pl.col("timestamp") >= FEB)
    for start in (
        FEB,
        date(2024, 2, 1),
        "2024-02-01",
        "2024-02-01T00:00Z",
        "2024-02-01 01:00+01:00",
    ):
        assert project.clean("M1", start, points="T2").equals(feb), start
    # naive bounds are logger time (UTC+1) when utc=False
    local = project.clean("M1", "2024-02-01T01:00", points="T2", utc=False)
    assert local.get_column("timestamp").to_list() == [
        t.replace(tzinfo=None) + timedelta(hours=1) for t in feb.get_column("timestamp")
    ]
    assert local.schema["timestamp"] == pl.Datetime("us")
    # aware bounds are instants whatever utc says
    assert project.clean("M1", FEB, points="T2", utc=False).height == feb.height
    before = project.readings("M1", end="2024-01-31T22:20:00Z")
    assert before.get_column("timestamp").unique().to_list() == [A_START, A_START + STEP]


def test_bad_period_bounds_are_named(project: stationkit.Project) -> None:
    with pytest.raises(SelectionError, match=r"start: expected a datetime, a date or ISO 8601"):
        project.readings("M1", start="yesterday")
    with pytest.raises(SelectionError, match=r"end: expected .* got int"):
        project.clean("M1", end=20240101)  # type: ignore[arg-type]
    with pytest.raises(SelectionError, match=r"M1: the end \(2024-01-01\) must come after"):
        project.clean("M1", "2024-02-01", "2024-01-01")


# ---------------------------------------------------------------- clean


def test_clean_long_keeps_one_value_per_period_and_every_flag(project: stationkit.Project) -> None:
    a, b = file_ids(project)
    df = project.clean("M1")
    assert dict(df.schema) == CLEAN
    periods = A_ROWS + B_ROWS - 4
    assert df.height == periods * 3
    assert df.select("timestamp", "point", "statistic").is_unique().all()
    assert df.equals(df.sort("timestamp", "point", "statistic"))
    ws = df.filter((pl.col("point") == "WS80") & (pl.col("statistic") == "avg"))
    assert ws.get_column("measurement_type").unique().to_list() == ["wind_speed"]
    assert ws.get_column("height_m").unique().to_list() == [80.0]
    resent = ws.filter(pl.col("timestamp") == B_START).row(0, named=True)
    assert (resent["value"], resent["file_id"]) == (105.0 + 20 / 4, b)  # the later file wins
    flagged = ws.filter(pl.col("flags").list.len() > 0)
    assert flagged.get_column("timestamp").to_list() == FLAGGED
    assert flagged.get_column("flags").to_list() == [["maintenance"]] * 3
    # flags hide nothing by default: value and raw value are both there
    assert flagged.get_column("value").null_count() == 0
    assert ws.filter(pl.col("timestamp") < B_START).get_column("file_id").unique().to_list() == [a]


@pytest.mark.parametrize(
    ("options", "hidden"),
    [
        ({}, 0),
        ({"include_flagged": True}, 0),
        ({"exclude_flags": "*"}, 6),
        ({"exclude_flags": ["maintenance"]}, 6),
        ({"exclude_flags": ["icing"]}, 0),
    ],
)
def test_clean_exclude_flags_blanks_values_not_rows(
    project: stationkit.Project, options: dict[str, object], hidden: int
) -> None:
    df = project.clean("M1", **options)  # type: ignore[arg-type]
    assert df.height == (A_ROWS + B_ROWS - 4) * 3
    assert df.get_column("value").null_count() == hidden  # WS80 avg and sd, 3 periods
    assert df.get_column("raw_value").null_count() == 0
    wide = project.clean("M1", wide=True, **options)  # type: ignore[arg-type]
    assert sum(wide.null_count().row(0)) == hidden


def test_include_flagged_and_named_flags_conflict(project: stationkit.Project) -> None:
    with pytest.raises(SelectionError, match="include_flagged keeps every value"):
        project.clean("M1", exclude_flags=["maintenance"], include_flagged=True)


def test_clean_reads_only_the_months_of_the_period(own: stationkit.Project) -> None:
    spoil(clean_file(own, "2024-01"))
    feb = own.clean("M1", start="2024-02-01")
    assert feb.get_column("timestamp").min() == FEB and feb.height == 14 * 3
    assert own.clean("M1", start="2024-02-01", wide=True).height == 14
    with pytest.raises(LakeError, match=r"2024-01.parquet: cannot be read as Parquet .*rebuild"):
        own.clean("M1")


def test_clean_wide_has_the_windographer_labels_of_an_export(own: stationkit.Project) -> None:
    wide = own.clean("M1", wide=True, exclude_flags="*")
    assert wide.columns == ["timestamp", "WS 80m Mean", "WS 80m SD", "T 2m Mean"]
    assert wide.schema["timestamp"] == UTC_US and wide.height == A_ROWS + B_ROWS - 4
    with Ledger(own.data_dir) as ledger:
        done = export_station(
            own.config, own.stations["M1"], ledger, fmt="parquet", layout="wide", utc=True
        )  # the export's default: every flagged value left out
    exported = pl.from_arrow(pq.read_table(own.data_dir / done.files[0]))
    assert isinstance(exported, pl.DataFrame)
    assert exported.columns == wide.columns
    assert exported.equals(wide)
    local = own.clean("M1", wide=True, exclude_flags="*", utc=False)
    assert local.schema["timestamp"] == pl.Datetime("us")
    assert local.get_column("timestamp").to_list() == [
        t.replace(tzinfo=None) + timedelta(hours=1) for t in wide.get_column("timestamp")
    ]


def test_clean_points_and_columns(project: stationkit.Project) -> None:
    t2 = project.clean("M1", points=["T2"], wide=True)
    assert t2.columns == ["timestamp", "T 2m Mean"]
    assert project.clean("M1", points="T2").get_column("point").unique().to_list() == ["T2"]
    cols = project.columns("M1")
    assert cols.rows() == [
        ("WS 80m Mean", "WS80", "avg", "wind_speed", 80.0),
        ("WS 80m SD", "WS80", "sd", "wind_speed", 80.0),
        ("T 2m Mean", "T2", "avg", "air_temperature", 2.0),
    ]
    with pytest.raises(
        SelectionError, match=r"M1: no clean data of point 'WS10'; points in lake/clean: T2, WS80"
    ):
        project.clean("M1", points=["WS10"])
    # a real point without data in the period: an empty answer, not an error
    assert project.clean("M1", "2025-01-01", points="T2").height == 0
    assert project.clean("M1", "2025-01-01", wide=True).columns == ["timestamp"]


def test_a_station_without_data_gives_empty_frames(tmp_path: Path) -> None:
    p = stationkit.open(write_config(tmp_path, ("E1",)))
    assert dict(p.readings("E1").schema) == READINGS and p.readings("E1").height == 0
    assert dict(p.clean("E1").schema) == CLEAN and p.clean("E1").height == 0
    assert p.clean("E1", wide=True).columns == ["timestamp"]
    assert p.scan("clean").collect().height == 0
    assert p.status()[0]["files"]["ok"] == 0


# ---------------------------------------------------------------- fleet, status, run


def test_scan_reads_every_station(project: stationkit.Project) -> None:
    lf = project.scan("clean")
    df = lf.filter(pl.col("point") == "T2").collect()
    assert dict(lf.collect_schema()) == CLEAN
    assert df.group_by("station").len().sort("station").rows() == [("M1", 26), ("M2", 26)]
    assert project.scan("readings").select(pl.len()).collect().item() == 2 * (A_ROWS + B_ROWS) * 3
    with pytest.raises(SelectionError, match="layer: expected one of 'readings', 'clean'"):
        project.scan("exports")  # type: ignore[arg-type]


def test_status_is_what_the_cli_prints(
    project: stationkit.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)  # the same time for both: the same ages
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(now.timestamp())))
    result = CliRunner().invoke(cli, ["--config", str(project.path), "status", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(json.dumps(project.status(now=now), default=str))
    assert shown == json.loads(result.output)
    assert shown[0]["health"]["age_hours"] is not None
    assert [s["station"] for s in project.status(["M2"])] == ["M2"]


def test_run_is_the_cli_run(tmp_path: Path) -> None:
    p = stationkit.open(write_config(tmp_path, ("R1",)))
    result = p.run()
    assert isinstance(result, RunResult) and result.exit_code == 0
    stages = result.as_dict()["stations"]["R1"]
    assert stages["parse"]["parsed"] == 2 and stages["calibrate"]["rows"] == 26 * 3
    assert p.clean("R1", wide=True).height == 26
    again = p.run(["R1"])
    assert again.exit_code == 0 and again.runs[0].work_done == 0
    with RunLock(p.data_dir), pytest.raises(LockedError):
        p.run()


def test_a_file_replaced_during_a_read_is_looked_up_again(
    own: stationkit.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that rebuilds a month between the listing and the read: the API lists again."""
    import stationkit.api as api

    month = clean_file(own, "2024-02")
    saved = month.read_bytes()
    listed = api.clean_files
    calls = []

    def racing(data_dir: Path, station: str) -> list[Path]:
        calls.append(1)
        if len(calls) > 1:
            month.write_bytes(saved)  # the rebuilt month has appeared
        found = listed(data_dir, station)
        if len(calls) == 1:
            os.replace(month, month.with_suffix(".gone"))  # removed after being listed
        return found

    monkeypatch.setattr(api, "clean_files", racing)
    assert own.clean("M1", start="2024-02-01").height == 14 * 3
    assert len(calls) == 2
