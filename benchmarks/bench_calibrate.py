"""Benchmark: `stationkit calibrate` of 25 M readings with 60 calibration
periods and 50 flag periods, against a plain DuckDB reference query, in the
same run.

    python benchmarks/bench_calibrate.py [--days 1737] [--repeat 3]

Data (generated once into benchmarks/out/calibrate/): a 10-minute mast with
25 sensors x 4 statistics (avg, sd, min, max) in daily readings files (the
parse stage's layout and ledger rows); 20 wind speed points, each with three
logger programs and three anemometers over time (60 calibration periods);
5 sensors without metadata; 50 flag periods (40 on points, 10 on the whole
station, some overlapping).

The reference is the query one would write by hand: ``read_parquet`` of all
readings, a range LEFT JOIN against the calibration periods, a range LEFT
JOIN against the flag periods merged first (non-overlapping intervals with
their flag lists), ``COPY ... (FORMAT parquet, PARQUET_VERSION V2)``, DuckDB
defaults otherwise. It neither deduplicates nor sorts, so its row order is not
reproducible. stationkit runs the real stage (``calibrate_station``, forced),
with QC off for the comparison, and once more with the default QC rules.
Each run is its own process, alternating; the figures are the median wall
time and the peak RSS of the process. Targets (issue 5): stationkit within
1.2x of the reference, peak memory <= 500 MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "calibrate"
START = datetime(2015, 1, 1)
STATS = {"Avg": "avg", "SD": "sd", "Min": "min", "Max": "max"}


def calibration_periods() -> list[dict[str, object]]:
    """20 points x 3 periods: logger program and anemometer change together."""
    rows = []
    for i in range(20):
        cuts = [
            None,
            START + timedelta(days=300 + 37 * i),
            START + timedelta(days=900 + 11 * i),
            None,
        ]
        for k in range(3):
            rows.append(
                {
                    "point": f"WS{i}",
                    "from": cuts[k],
                    "to": cuts[k + 1],
                    "ls": 0.046 + 0.0005 * k,
                    "lo": 0.24 - 0.01 * k,
                    "cs": 0.0458 + 0.0004 * k + 0.00001 * i,
                    "co": 0.21 + 0.01 * k,
                }
            )
    return rows


def flag_periods() -> list[dict[str, object]]:
    rows = []
    for j in range(50):
        start = START + timedelta(days=31 * j + (j % 7), hours=j % 24)
        length = timedelta(hours=6 + 7 * (j % 9))
        rows.append(
            {
                "flag": ("icing", "maintenance", "tower_shadow", "logger_fault")[j % 4],
                "points": [] if j % 5 == 4 else [f"WS{j % 20}"],
                "start": start,
                "end": start + length,
            }
        )
    return rows


def toml(qc: bool) -> str:
    lines = [
        'data_dir = "data"',
        "[stations.BENCH]",
        "utc_offset_hours = 0",
        "timestamp_is_end_of_period = true",
        "averaging_period_minutes = 10",
    ]
    by_point: dict[str, list[dict[str, object]]] = {}
    for p in calibration_periods():
        by_point.setdefault(str(p["point"]), []).append(p)
    for point, periods in by_point.items():
        lines += [f"[stations.BENCH.points.{point}]", 'measurement_type = "wind_speed"',
                  "height_m = 80"]  # fmt: skip
        cols = ", ".join(f'{stat} = "{point}_{suffix}"' for suffix, stat in STATS.items())
        for p in periods:
            lines.append(f"[[stations.BENCH.points.{point}.logger]]")
            if p["from"]:
                lines.append(f"date_from = {p['from']:%Y-%m-%dT%H:%M:%S}")
            if p["to"]:
                lines.append(f"date_to = {p['to']:%Y-%m-%dT%H:%M:%S}")
            lines += [f"slope = {p['ls']}", f"offset = {p['lo']}", f"columns = {{ {cols} }}"]
        for k, p in enumerate(periods):
            lines += [f"[stations.BENCH.sensors.{point}_S{k}]", f'point = "{point}"']
            if p["from"]:
                lines.append(f"date_from = {p['from']:%Y-%m-%dT%H:%M:%S}")
            if p["to"]:
                lines.append(f"date_to = {p['to']:%Y-%m-%dT%H:%M:%S}")
            lines += [f"slope = {p['cs']}", f"offset = {p['co']}"]
    for f in flag_periods():
        lines += ["[[stations.BENCH.flags.periods]]", f'flag = "{f["flag"]}"']
        if f["points"]:
            lines.append(f"points = {json.dumps(f['points'])}")
        lines += [f"start = {f['start']:%Y-%m-%dT%H:%M:%S}", f"end = {f['end']:%Y-%m-%dT%H:%M:%S}"]
    lines += ["[stations.BENCH.qc]", f"enabled = {'true' if qc else 'false'}"]
    return "\n".join(lines) + "\n"


def generate(days: int) -> None:
    """Daily readings files and their ledger rows, as the parse stage leaves them."""
    import numpy as np
    import polars as pl

    from stationkit.ledger import Ledger
    from stationkit.parsers.base import ChannelInfo
    from stationkit.store import readings_path, write_readings

    data = OUT / "data"
    rng = np.random.default_rng(5)
    channels = [
        ChannelInfo(f"WS{i}_{suffix}", statistic=stat, unit="m/s")
        for i in range(25)
        for suffix, stat in STATS.items()
    ]
    with Ledger(data) as ledger:
        for d in range(days):
            day = START + timedelta(days=d)
            stamps = pl.datetime_range(
                day, day + timedelta(days=1), "10m", closed="left", eager=True, time_unit="us"
            ).dt.replace_time_zone("UTC")
            n = stamps.len()
            base = rng.weibull(2.0, n) * 8.0
            cols = {}
            for i in range(25):
                avg = np.round(base * (0.8 + 0.01 * i) / 0.046, 0) * 0.046 + 0.24
                cols[f"WS{i}_Avg"] = np.round(avg, 3)
                cols[f"WS{i}_SD"] = np.round(avg * 0.12 + rng.random(n) * 0.2, 3)
                cols[f"WS{i}_Min"] = np.round(avg * 0.6, 3)
                cols[f"WS{i}_Max"] = np.round(avg * 1.4 + rng.random(n), 3)
            frame = pl.DataFrame({"timestamp": stamps, **cols})
            name = f"day{d:05d}.dat"
            file_id = ledger.add_file(
                station="BENCH",
                origin="fetch",
                source_path=name,
                path=f"raw/BENCH/{name}",
                size=0,
                mtime=None,
                sha256=f"{d:064x}",
            )
            out = readings_path(data, "BENCH", file_id)
            readings = write_readings(out, "BENCH", file_id, frame, channels)
            first, last = stamps.min(), stamps.max()
            ledger.record_parse(
                file_id,
                "BENCH",
                "ok",
                format="toa5",
                rows=n,
                readings=readings,
                first_ts=f"{first:%Y-%m-%dT%H:%M:%S}.000000Z",
                last_ts=f"{last:%Y-%m-%dT%H:%M:%S}.000000Z",
                channels=[  # what the parse stage records (ChannelInfo as a dict)
                    {
                        "name": c.name,
                        "statistic": c.statistic,
                        "unit": c.unit,
                        "height_m": None,
                        "attrs": {},
                    }
                    for c in channels
                ],
                meta={"time": {"utc_offset_hours": 0.0, "averaging_period_s": 600.0}},
                warnings=[],
                output=out.relative_to(data).as_posix(),
            )


REFERENCE = r"""
import json, resource, sys, time
from datetime import datetime
import duckdb, pyarrow as pa
out, readings = sys.argv[1], sys.argv[2]
spec = json.loads(open(sys.argv[3]).read())
def ts(s): return datetime.fromisoformat(s) if s else None
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
cal = [r for r in spec["cal"]]
con.register("cal_in", pa.table({
    "channel": [r["channel"] for r in cal], "point": [r["point"] for r in cal],
    "statistic": [r["statistic"] for r in cal], "kind": [r["kind"] for r in cal],
    "f": [ts(r["from"]) or datetime(1000, 1, 1) for r in cal],
    "t": [ts(r["to"]) or datetime(9000, 1, 1) for r in cal],
    "ls": [r["ls"] for r in cal], "lo": [r["lo"] for r in cal],
    "cs": [r["cs"] for r in cal], "co": [r["co"] for r in cal]}))
fl = spec["flags"]
con.register("fl_in", pa.table({
    "point": [r["point"] for r in fl], "f": [ts(r["from"]) for r in fl],
    "t": [ts(r["to"]) for r in fl], "flags": [r["flags"] for r in fl]}))
con.execute("CREATE TABLE cal AS SELECT * REPLACE (timezone('UTC', f) AS f, timezone('UTC', t) AS t) FROM cal_in")
con.execute("CREATE TABLE fl AS SELECT * REPLACE (timezone('UTC', f) AS f, timezone('UTC', t) AS t) FROM fl_in")
t0 = time.perf_counter()
con.execute(f'''
COPY (
  SELECT 'BENCH' AS station, r.timestamp, coalesce(c.point, r.channel) AS point,
    CASE WHEN c.point IS NULL THEN NULL ELSE 'wind_speed' END AS measurement_type,
    CASE WHEN c.point IS NULL THEN NULL ELSE 80.0 END AS height_m,
    coalesce(c.statistic, r.statistic) AS statistic,
    CASE c.kind WHEN 'full' THEN c.cs * ((r.value - c.lo) / c.ls) + c.co
                WHEN 'ratio' THEN r.value * (c.cs / c.ls) ELSE r.value END AS value,
    r.value AS raw_value, coalesce(f.flags, []) AS flags, r.file_id
  FROM read_parquet('{readings}/*.parquet') r
  LEFT JOIN cal c ON c.channel = r.channel AND r.timestamp >= c.f AND r.timestamp < c.t
  LEFT JOIN fl f ON f.point = coalesce(c.point, r.channel) AND r.timestamp >= f.f AND r.timestamp < f.t
) TO '{out}' (FORMAT parquet, PARQUET_VERSION V2, COMPRESSION zstd)''')
secs = time.perf_counter() - t0
print(secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

STATIONKIT = r"""
import hashlib, resource, sys, time
from pathlib import Path
from stationkit.config import load_config
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import calibrate_station
cfg = load_config(Path(sys.argv[1]))
t0 = time.perf_counter()
with Ledger(cfg.data_dir) as ledger:
    s = calibrate_station(cfg, cfg.stations["BENCH"], ledger, force=True)
secs = time.perf_counter() - t0
assert s.built, s
out = cfg.data_dir / s.output
h = hashlib.sha256()
for month in sorted(out.glob("*.parquet")):
    h.update(month.read_bytes())
digest = h.hexdigest()[:16]
print(secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, digest)
"""

CHECK = r"""
import json, sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
out = {}
for name in sys.argv[1:]:
    out[name] = con.execute(f'''SELECT count(*), round(sum(value), 3), round(sum(raw_value), 3),
        count(*) FILTER (WHERE len(flags) > 0), count(DISTINCT point)
        FROM read_parquet('{name}')''').fetchone()
print(json.dumps(out))
"""


def reference_spec() -> dict[str, object]:
    """The calibration periods and the merged flag intervals, for the reference."""
    from stationkit.calibrate.flags import FlagSpec, merge_flags
    from stationkit.calibrate.metadata import Resolver

    cal = []
    for p in calibration_periods():
        for suffix, stat in STATS.items():
            cal.append(
                {
                    "channel": f"{p['point']}_{suffix}",
                    "point": p["point"],
                    "statistic": stat,
                    "kind": "ratio" if stat == "sd" else "full",
                    "from": p["from"].isoformat() if p["from"] else None,  # type: ignore[attr-defined]
                    "to": p["to"].isoformat() if p["to"] else None,  # type: ignore[attr-defined]
                    **{k: p[k] for k in ("ls", "lo", "cs", "co")},
                }
            )
    points = {f"WS{i}": {None} for i in range(20)} | {
        f"WS{i}_{s}": {None} for i in range(20, 25) for s in STATS
    }
    specs = [
        FlagSpec(str(f["flag"]), f["start"], f["end"], tuple(f["points"]))  # type: ignore[arg-type]
        for f in flag_periods()
    ]
    intervals, _ = merge_flags(specs, Resolver(points=frozenset(points)), points)
    flags = [
        {"point": i.point, "from": i.start.isoformat(), "to": i.end.isoformat(),
         "flags": list(i.flags)}
        for i in intervals
    ]  # fmt: skip
    return {"cal": cal, "flags": flags}


def run(code: str, *args: str) -> tuple[float, int, str]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"benchmark process failed:\n{out.stderr[-3000:]}")
    secs, rss, *digest = out.stdout.split()
    return float(secs), int(rss), "".join(digest)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=1737, help="daily files (14,400 readings each)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    marker = OUT / ".generated"
    if not marker.exists() or marker.read_text() != str(args.days):
        subprocess.run(["rm", "-rf", str(OUT / "data")], check=True)
        t = time.time()
        generate(args.days)
        marker.write_text(str(args.days))
        print(f"generated {args.days} files in {time.time() - t:.0f} s", file=sys.stderr)
    (OUT / "stations.toml").write_text(toml(qc=False))
    (OUT / "stations_qc.toml").write_text(toml(qc=True))
    readings = OUT / "data" / "lake" / "readings" / "station=BENCH"
    spec = OUT / "reference_spec.json"
    spec.write_text(json.dumps(reference_spec()))
    ref_out = OUT / "reference.parquet"
    times: dict[str, list[tuple[float, int, str]]] = {"reference": [], "stationkit": [], "qc": []}
    for _ in range(args.repeat):
        times["reference"].append(run(REFERENCE, str(ref_out), str(readings), str(spec)))
        times["stationkit"].append(run(STATIONKIT, str(OUT / "stations.toml")))
        print(times["reference"][-1][:2], times["stationkit"][-1], file=sys.stderr)
    clean = OUT / "data" / "lake" / "clean" / "station=BENCH" / "*.parquet"
    check = subprocess.run(
        [sys.executable, "-c", CHECK, str(ref_out), str(clean)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    same = json.loads(check.stdout)
    times["qc"].append(run(STATIONKIT, str(OUT / "stations_qc.toml")))
    med = {k: statistics.median(t for t, _, _ in v) for k, v in times.items()}
    report = {
        "readings": same[str(clean)][0],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "reference_s": [round(t, 2) for t, _, _ in times["reference"]],
        "stationkit_s": [round(t, 2) for t, _, _ in times["stationkit"]],
        "ratio_median": round(med["stationkit"] / med["reference"], 2),
        "reference_peak_mb": round(max(r for _, r, _ in times["reference"]) / 1e6),
        "stationkit_peak_mb": round(max(r for _, r, _ in times["stationkit"]) / 1e6),
        "stationkit_with_qc_s": round(med["qc"], 2),
        "stationkit_with_qc_peak_mb": round(max(r for _, r, _ in times["qc"]) / 1e6),
        "clean_parquet_mb": round(
            sum(p.stat().st_size for p in clean.parent.glob("*.parquet")) / 1e6, 1
        ),
        "reference_parquet_mb": round(ref_out.stat().st_size / 1e6, 1),
        "same_rows_values_flags": same[str(ref_out)] == same[str(clean)],
        "stationkit_runs_byte_identical": len({d for _, _, d in times["stationkit"]}) == 1,
        "totals (rows, sum value, sum raw, flagged rows, points)": same,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    t = time.time()
    main()
    print(f"total {time.time() - t:.0f} s", file=sys.stderr)
