"""Benchmark: a run's cost follows its new data, not the station's history (issue 10).

    python benchmarks/bench_incremental.py [--years 2 6] [--repeat 3]

The mast: 20 sensors x 4 statistics, 10-minute records, one TOA5 file a day
(benchmarks/gen_toa5.py's generator, a seed per day), with points,
calibrations, default QC and Windographer (with flagging log) + CSV exports
configured -- what a station manager's hourly cron runs. Data is generated
once into benchmarks/out/incremental/.

Figures, each a whole `stationkit` process as cron starts it (median of
``--repeat``):

* ``first run``: `stationkit run` over the N daily files in a fresh data dir,
  against the same data delivered as ONE file (its rows concatenated under
  one header). Target: at most 2x.
* ``one new day``: `run` after one more daily file arrives, against `fetch`
  + `parse` of that one file alone in a fresh data dir (the same station
  settings; two processes, as the issue measured it). Target: at most 1.5x,
  at 2 AND at 6 years of history.
* ``backfill``: `run` after a late file for a month long past arrives (a
  re-sent day of the first month, with one value changed).
* ``no-op``: `run` with nothing new.

Each "one new day" repeat adds the next day, so history grows by one day per
repeat; the backfill repeats re-send other days.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_toa5 import generate  # noqa: E402

OUT = HERE / "out" / "incremental"
START = datetime(2019, 1, 1)
EXE = str(Path(sys.executable).parent / "stationkit")


def _day_name(day: int) -> str:
    return f"M20_MetMast10min_{START + timedelta(days=day):%Y_%m_%d}.dat"


def daily_files(days: int) -> Path:
    """``days`` + 10 daily files (the extra ones arrive during the benchmark)."""
    folder = OUT / "daily"
    folder.mkdir(parents=True, exist_ok=True)
    for day in range(days + 10):
        path = folder / _day_name(day)
        if not path.exists():
            generate(path, START + timedelta(days=day), 144, 20, seed=1000 + day, record0=144 * day)
    return folder


def one_file(folder: Path, days: int) -> Path:
    """The first ``days`` daily files as one file (one header)."""
    target = OUT / f"onefile_{days}" / "M20_MetMast10min_all.dat"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for day in range(days):
            lines = (folder / _day_name(day)).read_bytes().split(b"\r\n")
            out.write(b"\r\n".join(lines if day == 0 else lines[4:]))
    return target


def _points() -> str:
    heights = [120, 100, 80, 60, 40, 20]
    out = []
    for i in range(20):
        kind = "WS" if i < 4 else ("WD", "AirT", "RH", "BP", "WS", "WS")[(i - 4) % 6]
        h = heights[i % len(heights)]
        name = f"{kind}_{h}m_{i:02d}"
        mtype, unit = {
            "WS": ("wind_speed", "m/s"),
            "WD": ("wind_direction", "deg"),
            "AirT": ("air_temperature", "deg_C"),
            "RH": ("relative_humidity", "%"),
            "BP": ("air_pressure", "hPa"),
        }[kind]
        cols = f'avg = "{name}_Avg", sd = "{name}_Std", max = "{name}_Max", min = "{name}_Min"'
        logger = "slope = 0.0462\noffset = 0.21\n" if kind == "WS" else ""
        out.append(
            f'[stations.M20.points.P{i:02d}]\nmeasurement_type = "{mtype}"\nheight_m = {h}\n'
            f'unit = "{unit}"\n{logger}columns = {{ {cols} }}\n'
        )
        if kind == "WS":
            out.append(
                f'[stations.M20.sensors.A{i:02d}_1]\npoint = "P{i:02d}"\n'
                f"date_to = 2020-06-01T00:00:00\nslope = 0.0461\noffset = 0.228\n"
                f'[stations.M20.sensors.A{i:02d}_2]\npoint = "P{i:02d}"\n'
                f"date_from = 2020-06-01T00:00:00\nslope = 0.0463\noffset = 0.195\n"
            )
    return "\n".join(out)


def config(root: Path, incoming: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "stations.toml"
    conf.write_text(
        f"""data_dir = "data"

[stations.M20]
name = "Benchmark mast"
latitude = 53.2
longitude = -7.1
elevation_m = 120
utc_offset_hours = 1
timestamp_is_end_of_period = true
averaging_period_minutes = 10

[stations.M20.source]
kind = "local"
path = "{incoming}"
patterns = ["*.dat"]

[[stations.M20.flags.periods]]
flag = "maintenance"
points = ["P02"]
start = 2019-03-02T10:00:00
end = 2019-03-02T12:00:00

[stations.M20.qc]
enabled = true

[stations.M20.export]
format = ["windographer", "csv"]
flag_log = true

{_points()}
"""
    )
    return conf


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([EXE, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def fresh(name: str) -> Path:
    root = OUT / "runs" / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "incoming").mkdir(parents=True)
    return root


def median(values: list[float]) -> float:
    return statistics.median(values)


def bench(years: int, repeat: int) -> None:
    days = 365 * years
    folder = daily_files(days)
    print(f"--- {years} year(s): {days} daily files")

    # first run: daily files against one file
    daily_first, one_first = [], []
    for _ in range(repeat):
        root = fresh(f"daily_{years}")
        for day in range(days):
            os.link(folder / _day_name(day), root / "incoming" / _day_name(day))
        conf = config(root, root / "incoming")
        daily_first.append(timed("--config", str(conf), "run"))
        root1 = fresh(f"one_{years}")
        single = one_file(folder, days)
        os.link(single, root1 / "incoming" / single.name)
        conf1 = config(root1, root1 / "incoming")
        one_first.append(timed("--config", str(conf1), "run"))
    a, b = median(daily_first), median(one_first)
    print(
        f"first run, {days} daily files: {a:.2f} s; same data as one file: {b:.2f} s ({a / b:.2f}x, target <= 2x)"
    )

    # one new day, against fetch + parse of that file in a fresh data dir
    new_day, alone = [], []
    for k in range(repeat):
        name = _day_name(days + k)
        os.link(folder / name, root / "incoming" / name)
        new_day.append(timed("--config", str(conf), "run"))
        ref = fresh(f"alone_{years}_{k}")
        os.link(folder / name, ref / "incoming" / name)
        refconf = config(ref, ref / "incoming")
        alone.append(
            timed("--config", str(refconf), "fetch") + timed("--config", str(refconf), "parse")
        )
    c, d = median(new_day), median(alone)
    print(
        f"run after one new daily file: {c:.2f} s; fetch + parse of it alone: {d:.2f} s "
        f"({c / d:.2f}x, target <= 1.5x)  runs {[round(t, 2) for t in new_day]}"
    )

    # backfill: a re-sent day of the first month with one value changed
    back = []
    for k in range(repeat):
        source = (folder / _day_name(3 + k)).read_bytes().split(b"\r\n")
        fields = source[10].split(b",")
        fields[3] = b"99.5" if fields[3] != b"99.5" else b"98.5"
        source[10] = b",".join(fields)
        late = root / "incoming" / f"late_{k}_{_day_name(3 + k)}"
        late.write_bytes(b"\r\n".join(source))
        back.append(timed("--config", str(conf), "run"))
    print(
        f"run after a late file for a month long past: {median(back):.2f} s  runs {[round(t, 2) for t in back]}"
    )

    noop = [timed("--config", str(conf), "run") for _ in range(repeat)]
    print(f"no-op run: {median(noop):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=int, nargs="+", default=[2, 6])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for years in args.years:
        bench(years, args.repeat)


if __name__ == "__main__":
    main()
