"""Benchmark: a no-op `stationkit run` over 100 stations with 1,000 known files each.

    python benchmarks/bench_noop_run.py [--stations 100] [--files 1000]

Builds the fleet once in benchmarks/out/noop (small daily TOA5 files in drop
folders), runs `stationkit run --jobs 2` to take everything in, then times
`stationkit run` when nothing is new (target: within 2 s), as a whole
process from the shell, the way cron starts it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = (
    '"TOA5","B","CR1000X","1","os","CPU:p","1","T"\r\n"TIMESTAMP","RECORD","WS_Avg","WS_Std"\r\n'
    '"TS","RN","m/s","m/s"\r\n"","","Avg","Std"\r\n'
)


def build(root: Path, stations: int, files: int) -> Path:
    conf = root / "stations.toml"
    if conf.exists():
        return conf
    lines = []
    for s in range(stations):
        folder = root / "incoming" / f"ST{s:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(files):
            day = f"2020-01-01 00:{f % 60:02d}:00"
            (folder / f"f{f:04d}.dat").write_text(
                HEADER + f'"{day}",{f},{s + f % 7}.5,0.{f % 9}\r\n'
            )
        lines.append(f'[stations.ST{s:03d}.source]\nkind = "local"\npath = "incoming/ST{s:03d}"\n')
    conf.write_text("\n".join(lines))
    return conf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--files", type=int, default=1000)
    args = ap.parse_args()
    root = HERE / "out" / f"noop_{args.stations}x{args.files}"
    conf = build(root, args.stations, args.files)
    exe = [str(Path(sys.executable).parent / "stationkit")]
    t0 = time.perf_counter()
    subprocess.run([*exe, "--config", str(conf), "run", "--jobs", "2"], check=True)
    print(f"initial run: {time.perf_counter() - t0:.1f} s")
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([*exe, "--config", str(conf), "run"], check=True)
        timings.append(time.perf_counter() - t0)
    print(
        f"no-op run ({args.stations} stations x {args.files} files): best {min(timings):.2f} s, runs {[round(t, 2) for t in timings]}"
    )


if __name__ == "__main__":
    main()
