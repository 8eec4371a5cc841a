"""Benchmark: `stationkit fetch` + `parse` of a 6-year 10-minute TOA5 file
against a plain polars script, in the same run.

    python benchmarks/bench_parse.py [--days 2190] [--sensors 20]

The reference reads with polars read_csv and an explicit schema from the
header, unpivots by per-column select + concat, and writes Parquet. Each side
runs in its own process; the figure is wall time and peak RSS of that
process. Targets (issue 2): stationkit within 1.2x of the reference, peak
memory <= 600 MB, readings Parquet <= 45 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

REFERENCE = r"""
import csv, resource, sys, time
import polars as pl
src, dst = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
with open(src, newline="") as fh:
    r = csv.reader(fh)
    next(r); names = next(r); next(r); next(r)
schema = {n: (pl.String if n == "TIMESTAMP" else pl.Float64) for n in names}
df = pl.read_csv(src, skip_rows=4, has_header=False, new_columns=names, schema=schema, null_values=["NAN"])
ts = df.get_column("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us")
parts = [
    pl.DataFrame({"timestamp": ts, "channel": pl.Series([n] * df.height), "value": df.get_column(n)})
    for n in names if n not in ("TIMESTAMP", "RECORD")
]
long = pl.concat(parts)
long.write_parquet(dst)
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, long.height)
"""

STATIONKIT = r"""
import resource, sys, time
from pathlib import Path
from stationkit.config import load_config
from stationkit.ledger import Ledger
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station
cfg = load_config(Path(sys.argv[1]))
st = cfg.stations["BENCH"]
t0 = time.perf_counter()
with Ledger(cfg.data_dir) as ledger:
    fetch_station(cfg, st, ledger)
    s = parse_station(cfg, st, ledger)
assert s.failed == 0, s.errors
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, s.readings)
"""


def run(code: str, *args: str) -> tuple[float, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    secs, rss, rows = out.stdout.split()
    return float(secs), int(rss), int(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=2190)
    ap.add_argument("--sensors", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    incoming = OUT / "incoming"
    incoming.mkdir(exist_ok=True)
    src = incoming / f"bench_{args.days}d_{args.sensors}s.dat"
    if not src.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "gen_toa5.py"),
                str(src),
                "--days",
                str(args.days),
                "--sensors",
                str(args.sensors),
            ],
            check=True,
        )
    results: dict[str, list[tuple[float, int, int]]] = {"reference": [], "stationkit": []}
    for i in range(args.repeat):
        ref = run(REFERENCE, str(src), str(OUT / "reference.parquet"))
        results["reference"].append(ref)
        work = OUT / f"sk{i}"
        subprocess.run(["rm", "-rf", str(work)], check=True)
        work.mkdir()
        (work / "stations.toml").write_text(
            f"[stations.BENCH]\nutc_offset_hours = 0\ntimestamp_is_end_of_period = true\n"
            f'averaging_period_minutes = 10\n[stations.BENCH.source]\nkind = "local"\n'
            f'path = "{incoming}"\npatterns = ["{src.name}"]\n'
        )
        results["stationkit"].append(run(STATIONKIT, str(work / "stations.toml")))
    ref_t = min(r[0] for r in results["reference"])
    sk_t = min(r[0] for r in results["stationkit"])
    parquet = next((OUT / "sk0" / "data" / "lake" / "readings" / "station=BENCH").glob("*.parquet"))
    report = {
        "input_mb": round(src.stat().st_size / 1e6, 1),
        "readings": results["stationkit"][0][2],
        "reference_s": round(ref_t, 2),
        "stationkit_s": round(sk_t, 2),
        "ratio": round(sk_t / ref_t, 2),
        "reference_peak_mb": round(max(r[1] for r in results["reference"]) / 1e6),
        "stationkit_peak_mb": round(max(r[1] for r in results["stationkit"]) / 1e6),
        "readings_parquet_mb": round(parquet.stat().st_size / 1e6, 1),
        "reference_parquet_mb": round((OUT / "reference.parquet").stat().st_size / 1e6, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    t = time.time()
    main()
    print(f"total {time.time() - t:.0f} s", file=sys.stderr)
