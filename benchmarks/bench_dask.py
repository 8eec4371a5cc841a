"""Benchmark: a fleet on Dask distributed workers (issue 11).

    python benchmarks/bench_dask.py [--stations 40] [--days 365] [--sensors 8] [--repeat 1]

The fleet: ``--stations`` masts, each a year of 10-minute TOA5 data in daily
files (benchmarks/gen_toa5.py's generator, 8 sensors x 4 statistics by
default to keep generation short: ~15,000 files, 3 ms each), QC on,
Windographer (with flagging log) + CSV exports. Data is generated once into
benchmarks/out/dask/source/.

A real ``dask scheduler`` and single-threaded ``dask worker`` processes on
loopback (tests/cluster/dask_cluster.py), each worker with
POLARS_MAX_THREADS=1, STATIONKIT_THREADS=1 (DuckDB) and OMP_NUM_THREADS=1
(Arrow's pool). Figures, whole ``stationkit`` processes (median of
``--repeat``):

* ``rebuild`` of the fleet from raw/ with ``--scheduler`` on 1 worker and on
  2 workers (target: 2 workers >= 1.7x faster), and a plain local
  ``rebuild`` with the same thread limits (target: 1 worker <= 1.3x it);
  the local rebuild without thread limits with ``--default-threads``;
* the hourly ``run`` after one new daily file per station, on 2 workers, 1
  worker and locally;
* ``run --scheduler`` of a fleet with no station (the client's fixed cost);
* in this process, per station: the incremental chain after one new daily
  file (``t_station``), and the client's share of a distributed run -- the
  ledger snapshot and the replay of the journal (``t_client``); the inputs
  of the model in docs/scaling.md, which the script then checks against the
  measured runs.
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

# single-threaded like the workers (polars reads this when it is imported)
SINGLE = {"POLARS_MAX_THREADS": "1", "STATIONKIT_THREADS": "1", "OMP_NUM_THREADS": "1"}
os.environ.update(SINGLE)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from gen_toa5 import generate  # noqa: E402

from stationkit.cluster.journal import journal_of, open_snapshot, replay, snapshot  # noqa: E402
from stationkit.config import load_config  # noqa: E402
from stationkit.ledger import Ledger  # noqa: E402
from stationkit.pipeline.run import run_station  # noqa: E402
from tests.cluster.dask_cluster import DaskCluster  # noqa: E402

OUT = HERE / "out" / "dask"
START = datetime(2023, 1, 1)
EXE = str(Path(sys.executable).parent / "stationkit")
BASE_ENV = {k: v for k, v in os.environ.items() if k not in SINGLE}


def sid(n: int) -> str:
    return f"F{n:03d}"


def day_name(station: str, day: int) -> str:
    return f"{station}_MetMast10min_{START + timedelta(days=day):%Y_%m_%d}.dat"


def source(stations: int, days: int, sensors: int) -> Path:
    """``days`` + 20 daily files per station (the extra ones arrive during the benchmark)."""
    folder = OUT / "source"
    for n in range(stations):
        station = sid(n)
        for day in range(days + 20):
            path = folder / station / day_name(station, day)
            if not path.exists():
                generate(
                    path, START + timedelta(days=day), 144, sensors,
                    seed=n * 10_000 + day, record0=144 * day,
                )  # fmt: skip
    return folder


def fleet(name: str, stations: int, days: int, src: Path) -> Path:
    """A data directory whose raw/ holds the first ``days`` files of each station
    (linked), and its stations.toml; incoming/ is the source the runs fetch from."""
    root = OUT / "runs" / name
    shutil.rmtree(root, ignore_errors=True)
    text = ['data_dir = "data"\n']
    for n in range(stations):
        station = sid(n)
        for top in ("data/raw", "incoming"):
            (root / top / station).mkdir(parents=True)
        for day in range(days):
            os.link(
                src / station / day_name(station, day),
                root / "data/raw" / station / day_name(station, day),
            )
            os.link(
                src / station / day_name(station, day),
                root / "incoming" / station / day_name(station, day),
            )
        text.append(
            f'[stations.{station}]\nutc_offset_hours = 1\ntimestamp_is_end_of_period = true\n'
            f'averaging_period_minutes = 10\n[stations.{station}.source]\nkind = "local"\n'
            f'path = "incoming/{station}"\npatterns = ["*.dat"]\n[stations.{station}.qc]\n'
            f'enabled = true\n[stations.{station}.export]\nformat = ["windographer", "csv"]\n'
            f"flag_log = true\n"
        )  # fmt: skip
    (root / "stations.toml").write_text("".join(text))
    return root / "stations.toml"


def new_day(conf: Path, src: Path, stations: int, day: int) -> None:
    for n in range(stations):
        station = sid(n)
        target = conf.parent / "incoming" / station / day_name(station, day)
        if not target.exists():
            os.link(src / station / day_name(station, day), target)


def timed(conf: Path, *args: str, single: bool = True) -> float:
    env = {**BASE_ENV, **(SINGLE if single else {})}
    t0 = time.perf_counter()
    done = subprocess.run(
        [EXE, "--config", str(conf), *args], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"stationkit {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return took


def median(values: list[float]) -> float:
    return statistics.median(values)


def show(label: str, values: list[float]) -> float:
    m = median(values)
    print(f"{label}: {m:.2f} s  {[round(v, 2) for v in values]}", flush=True)
    return m


def in_process(conf: Path, src: Path, sample: int, day: int) -> tuple[float, float, float]:
    """Per station, after one new daily file: the chain in this process
    (t_station); snapshot + replay of a distributed run (t_client); the
    snapshot's compressed size [bytes]."""
    config = load_config(conf)
    local: list[float] = []
    client: list[float] = []
    sizes: list[int] = []
    with Ledger(config.data_dir) as ledger:
        for n in range(sample):
            st = config.stations[sid(n)]
            new_day(conf, src, n + 1, day)
            t0 = time.perf_counter()
            run_station(config, st, ledger, force=True)
            local.append(time.perf_counter() - t0)
            new_day(conf, src, n + 1, day + 1)
            t0 = time.perf_counter()
            data = snapshot(ledger, st.id)
            t1 = time.perf_counter()
            work = open_snapshot(data, config.data_dir)
            run_station(config, st, work, force=True)
            t2 = time.perf_counter()
            replay(ledger, journal_of(work))
            t3 = time.perf_counter()
            client.append((t1 - t0) + (t3 - t2))
            sizes.append(len(data))
    return median(local), median(client), median(sizes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=40)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--sensors", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--hourly-repeat", type=int, default=3)
    ap.add_argument(
        "--default-threads", action="store_true", help="also a local rebuild without thread limits"
    )
    args = ap.parse_args()
    n, days, r = args.stations, args.days, args.repeat
    t0 = time.perf_counter()
    src = source(n, days, args.sensors)
    print(f"fleet: {n} stations x {days} daily files, {args.sensors} sensors "
          f"(generated in {time.perf_counter() - t0:.0f} s); load {os.getloadavg()[0]:.1f}")  # fmt: skip
    conf = fleet("fleet", n, days, src)
    empty = OUT / "runs" / "empty" / "stations.toml"
    shutil.rmtree(empty.parent, ignore_errors=True)
    empty.parent.mkdir(parents=True)
    empty.write_text('data_dir = "data"\n')

    hourly: dict[str, float] = {}
    day = days

    def hourly_runs(label: str, *options: str) -> float:
        """`run` after one more daily file per station, ``--hourly-repeat`` times."""
        nonlocal day
        runs = []
        for _ in range(args.hourly_repeat):
            new_day(conf, src, n, day)
            day += 1
            runs.append(timed(conf, "run", *options))
        return show(label, runs)

    cluster = DaskCluster.start(OUT / "cluster", workers=1)
    try:
        address = cluster.address
        # alternated, so that a change of load on the machine hits both alike
        one, here = [], []
        for _ in range(r):
            one.append(timed(conf, "rebuild", "--scheduler", address))
            here.append(timed(conf, "rebuild"))
        w1 = show("rebuild --scheduler, 1 worker", one)
        local = show("rebuild, local (single-threaded)", here)
        cluster.add_worker()
        cluster.wait_for_workers(2)
        w2 = show(
            "rebuild --scheduler, 2 workers",
            [timed(conf, "rebuild", "--scheduler", address) for _ in range(r)],
        )
        # settle: the rebuilt ledger knows no source mtimes yet
        timed(conf, "run", "--scheduler", address)
        hourly["2"] = hourly_runs("hourly run --scheduler, 2 workers", "--scheduler", address)
        fixed = show(
            "run --scheduler, no station (fixed cost)",
            [timed(empty, "run", "--scheduler", address) for _ in range(3)],
        )
        cluster.remove_worker()
        hourly["1"] = hourly_runs("hourly run --scheduler, 1 worker", "--scheduler", address)
    finally:
        cluster.close()
    hourly["local"] = hourly_runs("hourly run, local (single-threaded)")
    local_noop = show("run, local, no station", [timed(empty, "run") for _ in range(3)])
    if args.default_threads:
        show("rebuild, local (default threads)", [timed(conf, "rebuild", single=False)])

    t_station, t_client, size = in_process(conf, src, min(5, n), day)
    print(f"per station, in process: t_station {t_station * 1000:.0f} ms, t_client "
          f"{t_client * 1000:.1f} ms (snapshot {size / 1024:.0f} KiB compressed)")  # fmt: skip
    print(f"rebuild speed-up 2 workers vs 1: {w1 / w2:.2f}x (target >= 1.7x)")
    print(f"rebuild --scheduler 1 worker vs local: {w1 / local:.2f}x (target <= 1.3x)")
    print(f"local run fixed cost {local_noop:.2f} s; --scheduler {fixed:.2f} s")
    for w in ("1", "2"):
        model = fixed + max(n * t_client, n * t_station / int(w))
        print(f"model T({n}, {w}) = {fixed:.2f} + max({n} x {t_client:.3f}, {n} x {t_station:.3f} / {w}) "
              f"= {model:.2f} s; measured {hourly[w]:.2f} s ({hourly[w] / model:.2f}x)")  # fmt: skip
    for big in (1_000, 10_000):
        for w in (1, 8, 32, 128):
            model = fixed + max(big * t_client, big * t_station / w)
            print(f"predicted hourly run, {big} stations, {w} workers: {model:.0f} s")


if __name__ == "__main__":
    main()
