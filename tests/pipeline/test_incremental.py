"""A run costs what its new data costs: calibrate rebuilds only the months whose
inputs changed and exports are assembled from per-month pieces -- and the
result is byte-identical to a full build after any sequence of new days,
late files, superseded versions, flag changes and hand-edited exports."""

from __future__ import annotations

import logging
import math
import shutil
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from stationkit.config import Config, load_config
from stationkit.pipeline.rebuild import rebuild
from stationkit.pipeline.run import RunResult, run_stations

HEADER = (
    '"TOA5","M1","CR1000X","1","CR1000X.Std.07","CPU:m.CR1X","1","Ten"\r\n'
    '"TIMESTAMP","RECORD","WS_Avg","WS_Std","T_Avg"\r\n'
    '"TS","RN","m/s","m/s","degC"\r\n'
    '"","","Avg","Std","Avg"\r\n'
)
START = datetime(2024, 1, 29)


def day_file(
    day: int, *, bump: float = 0.0, flat_from: int | None = None, flat_until: int = 0
) -> str:
    """One day of 10-minute records (end-of-period labels), ``day`` days after START.

    The wind speed is stuck at 4.2 from record ``flat_from`` of the day on and
    before record ``flat_until`` (a flat line the QC finds).
    """
    lines = []
    for i in range(144):
        t = START + timedelta(days=day, minutes=10 * (i + 1))
        k = day * 144 + i
        ws = round(6 + 3 * math.sin(k / 17) + bump, 3)
        if (flat_from is not None and i >= flat_from) or i < flat_until:
            ws = 4.2
        if k % 97 == 0:
            ws = round(ws + 15, 3)  # a spike
        lines.append(f'"{t:%Y-%m-%d %H:%M:%S}",{k},{ws},{round(0.5 + (k % 7) / 10, 2)},'
                     f"{round(1 + 4 * math.cos(k / 50), 2)}\r\n")  # fmt: skip
    return HEADER + "".join(lines)


CONFIG = """
[stations.M1]
name = "Incremental mast"
latitude = 53.2
longitude = -7.1
utc_offset_hours = 1
timestamp_is_end_of_period = true
averaging_period_minutes = 10

[stations.M1.source]
kind = "local"
path = "incoming"
patterns = ["*.dat"]

[stations.M1.points.WS80]
measurement_type = "wind_speed"
height_m = 80
slope = 0.05
offset = 0.2
columns = {{ avg = "WS_Avg", sd = "WS_Std" }}

[stations.M1.points.T2]
measurement_type = "air_temperature"
height_m = 2
columns = {{ avg = "T_Avg" }}

[stations.M1.sensors.A1]
point = "WS80"
slope = 0.048
offset = 0.25

[stations.M1.qc]
max_gap_minutes = 60
[stations.M1.qc.flatline]
wind_speed = 4

{flags}
[stations.M1.export]
format = ["windographer", "csv"]
flag_log = true
zip_by_type = true
"""


def make(root: Path, flags: str = "") -> Config:
    (root / "incoming").mkdir(parents=True, exist_ok=True)
    (root / "stations.toml").write_text(CONFIG.format(flags=flags))
    return load_config(root / "stations.toml")


def run(config: Config) -> RunResult:
    result = run_stations(config, list(config.stations.values()))
    assert result.exit_code == 0, result.failures
    return result


def months_built(result: RunResult) -> list[str]:
    built: list[str] = result.runs[0].stages["calibrate"]["months_built"]
    return built


def assert_full_build_identical(config: Config) -> None:
    """`rebuild --check`: a full build from raw/ alone gives the same bytes."""
    check = rebuild(config, list(config.stations.values()), check=True)
    assert check.differences == [] and not check.failures


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_new_days_late_files_versions_and_flags_rebuild_only_their_months(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "inc"
    config = make(root)
    incoming = root / "incoming"
    # January 29 .. February 3, then March 1 (from 23:00 UTC on February 29)
    for day in range(6):
        (incoming / f"d{day:02d}.dat").write_text(
            day_file(day, flat_from=140 if day == 2 else None)
        )
    (incoming / "d32.dat").write_text(day_file(32))
    first = run(config)
    assert months_built(first) == ["2024-01", "2024-02", "2024-03"]
    assert_full_build_identical(config)

    # one more day in March: only March is rebuilt, and only March re-rendered
    caplog.set_level(logging.INFO, logger="stationkit")
    caplog.clear()
    (incoming / "d33.dat").write_text(day_file(33))
    assert months_built(run(config)) == ["2024-03"]
    assert "M1: 1 month(s) rendered, 2 copied" in caplog.messages
    assert_full_build_identical(config)

    # a re-sent day of January with one value changed: January alone
    (incoming / "late_d01.dat").write_text(day_file(1, bump=0.125))
    assert months_built(run(config)) == ["2024-01"]
    assert_full_build_identical(config)

    # a file that changed at the source: a new version replaces the old one's readings
    (incoming / "d04.dat").write_text(day_file(4, bump=1.0))
    assert months_built(run(config)) == ["2024-02"]
    assert (root / "data" / "raw" / "M1" / "d04.dat.~2~").exists()
    assert_full_build_identical(config)

    # a flag period in March: March alone
    config = make(
        root,
        '[[stations.M1.flags.periods]]\nflag = "maintenance"\npoints = ["WS80"]\n'
        "start = 2024-03-01T10:00:00\nend = 2024-03-01T12:00:00\n",
    )
    assert months_built(run(config)) == ["2024-03"]
    assert_full_build_identical(config)

    # nothing new: nothing read or written
    again = run(config)
    assert again.runs[0].stages["calibrate"]["up_to_date"]
    assert all(e["skipped"] for e in again.runs[0].stages["export"]["exports"])


def test_files_arriving_one_by_one_give_the_bytes_of_all_at_once(tmp_path: Path) -> None:
    days = [0, 1, 2, 3, 4, 33, 34, 70]
    one = tmp_path / "one_by_one"
    config = make(one)
    for day in days:
        (one / "incoming" / f"d{day:02d}.dat").write_text(day_file(day, flat_from=100))
        run(config)
    (one / "incoming" / "late.dat").write_text(day_file(2, bump=0.5))  # overlaps day 2
    run(config)
    at_once = tmp_path / "at_once"
    config = make(at_once)
    for p in (one / "incoming").iterdir():
        shutil.copy(p, at_once / "incoming" / p.name)
    run(config)
    for top in ("lake", "exports"):
        assert tree(one / "data" / top) == tree(at_once / "data" / top), top


def test_a_flat_line_across_a_month_boundary_is_found_whichever_month_comes_first(
    tmp_path: Path,
) -> None:
    late = tmp_path / "late"
    config = make(late)
    # January 31 ends with a flat line that goes on into February 1 (UTC and local)
    (late / "incoming" / "d03.dat").write_text(day_file(3, flat_until=10))
    run(config)
    (late / "incoming" / "d02.dat").write_text(day_file(2, flat_from=140))
    assert months_built(run(config)) == ["2024-01", "2024-02"]  # within the QC context
    assert_full_build_identical(config)
    log = (late / "data" / "exports" / "M1" / "M1_flagging_log.txt").read_bytes().decode()
    # logger time (UTC+1): 14 records from 23:20 on the 31st
    assert "WS 80m Mean\tqc_flatline\t2024-01-31 23:20\t2024-02-01 01:40\t14\r\n" in log


def test_a_hand_edited_export_is_rendered_again_whole(tmp_path: Path) -> None:
    root = tmp_path / "edited"
    config = make(root)
    for day in (0, 5, 35):
        (root / "incoming" / f"d{day:02d}.dat").write_text(day_file(day))
    run(config)
    exports = root / "data" / "exports" / "M1"
    reference = tree(exports)
    # someone opens the Windographer file and the zip and saves them changed
    text = exports / "M1.txt"
    text.write_bytes(text.read_bytes().replace(b"\t", b"\t ", 40))
    (exports / "M1_by_type.zip").write_bytes(b"PK not a zip")
    (root / "incoming" / "d36.dat").write_text(day_file(36))
    run(config)
    assert_full_build_identical(config)
    assert tree(exports)["M1.txt"] != reference["M1.txt"]  # the new day is in it
    with zipfile.ZipFile(exports / "M1_by_type.zip") as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        member = zf.read(names[0]).decode()
    assert member.startswith("Created ") and "\r\n2024-03-05 23:50:00\t" in member


def test_exports_round_to_the_decimals_the_logger_wrote(tmp_path: Path) -> None:
    root = tmp_path / "rounded"
    config = make(root)
    (root / "incoming" / "d05.dat").write_text(day_file(5))
    run(config)
    exact = (root / "data" / "exports" / "M1" / "M1.txt").read_bytes().decode()
    # the Windographer file names its format on the first line (brightwind's loader
    # warns about files that do not say "Windographer")
    assert exact.startswith("Created ") and "Windographer" in exact.splitlines()[0]
    # calibrated wind speeds carry float noise beyond the logger's 3 decimals
    assert any(len(v.split(".")[-1]) > 3 for v in exact.splitlines()[13].split("\t")[1:3])
    from stationkit.ledger import Ledger
    from stationkit.pipeline.export import export_station

    with Ledger(config.data_dir) as ledger:
        st = config.stations["M1"]
        logger = export_station(config, st, ledger, fmt="csv", round_to="logger", out=tmp_path)
        one = export_station(
            config, st, ledger, fmt="csv", layout="long", round_to=1, out=tmp_path / "one"
        )
    text = (tmp_path / "M1.csv").read_text().splitlines()
    assert text[0] == "timestamp,WS 80m Mean,WS 80m SD,T 2m Mean"

    def places(text: str) -> int:
        return len(text.partition(".")[2])

    for line in text[1:]:
        ws, sd, t = line.split(",")[1:]
        assert places(ws) <= 3 and places(sd) <= 2 and places(t) <= 2 and t != "-0"
    assert logger.rows == one.rows // 3 == 144
    longs = (tmp_path / "one" / "M1_long.csv").read_text().splitlines()[1:]
    assert all(places(line.split(",")[6]) <= 1 for line in longs)
    assert {places(line.split(",")[6]) for line in longs} == {0, 1}


def test_a_period_reads_only_its_months(tmp_path: Path) -> None:
    root = tmp_path / "period"
    config = make(root)
    for day in (0, 5, 35, 70):  # January, February, March, April
        (root / "incoming" / f"d{day:02d}.dat").write_text(day_file(day))
    run(config)
    clean = root / "data" / "lake" / "clean" / "station=M1"
    assert sorted(p.name for p in clean.glob("*.parquet")) == [
        "2024-01.parquet", "2024-02.parquet", "2024-03.parquet", "2024-04.parquet",
    ]  # fmt: skip
    # months outside the period may be unreadable: they are never opened
    for month in ("2024-01", "2024-04"):
        (clean / f"{month}.parquet").write_bytes(b"not parquet")
    from stationkit.ledger import Ledger
    from stationkit.pipeline.export import export_station
    from stationkit.pipeline.report import report_station

    with Ledger(config.data_dir) as ledger:
        done = export_station(
            config, config.stations["M1"], ledger, fmt="csv",
            start=datetime(2024, 2, 3), end=datetime(2024, 3, 10), out=tmp_path / "out",
        )  # fmt: skip
    assert done.first == "2024-02-03 00:00:00" and done.last == "2024-03-04 23:50:00"
    report = report_station(
        config, config.stations["M1"], start=datetime(2024, 2, 2), end=datetime(2024, 4, 1)
    )
    assert {r.month for r in report.rows} == {"2024-02", "2024-03"}
