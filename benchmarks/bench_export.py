"""Export benchmark: 25 M clean readings -> one Windographer text file.

Generates a lake/clean station once, laid out as the calibrate stage writes
it (48 columns of 10-min data, ~9.9 years; one Parquet file per UTC month,
rows by time then point and statistic, footer summaries; 1 % missing, 2 %
of time steps' wind values flagged "icing"), then runs,
each in a fresh process (time and peak RSS):

* ``stationkit``: :func:`stationkit.pipeline.export.export_station`
  (Windographer, every flag excluded, local time), streaming month by month;
* ``reference``: a plain polars script -- read every reading, build the wide
  table from per-column slices (one filter + join per column), blank flagged
  values, ``write_csv`` (tab, CRLF). No header, no streaming, no checks.

pandas (pivot + to_csv) would be the third contender; it is not installed.

    .venv/bin/python benchmarks/bench_export.py [--readings 25000000] [--dir /tmp/bench_export]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

STEP = timedelta(minutes=10)
T0 = datetime(2015, 1, 1, tzinfo=UTC)
POINTS: list[tuple[str, str | None, float | None, tuple[str, ...]]] = [
    *[
        (f"Spd{h}m{o}", "wind_speed", float(h), ("avg", "sd", "min", "max"))
        for h in (100, 80, 60, 40)
        for o in ("N", "S")
    ],
    *[(f"Dir{h}m", "wind_direction", float(h), ("avg", "sd")) for h in (98, 78, 58, 38)],
    ("Tmp2m", "air_temperature", 2.0, ("avg", "min", "max")),
    ("Tmp80m", "air_temperature", 80.0, ("avg",)),
    ("RH2m", "relative_humidity", 2.0, ("avg",)),
    ("P2m", "air_pressure", 2.0, ("avg",)),
    ("Prcp", "precipitation", None, ("sum",)),
    ("BattV", None, None, ("min",)),
]
COLUMNS = [(p, t, h, s) for p, t, h, stats in POINTS for s in stats]


def generate(data_dir: Path, readings: int) -> None:
    """lake/clean/station=B001/YYYY-MM.parquet as the calibrate stage writes it:
    one file per UTC month, rows by time then (point, statistic), row groups
    of 2**18 rows, zstd, a summary in each footer
    (:class:`stationkit.calibrate.writer.PartitionWriter`)."""
    from stationkit.calibrate.partition import Month
    from stationkit.calibrate.writer import CLEAN_SCHEMA, WRITE_SCHEMA, PartitionWriter

    folder = data_dir / "lake" / "clean" / "station=B001"
    marker = folder / "_done.json"
    if marker.exists() and json.loads(marker.read_text()).get("asked") == readings:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    ordered = sorted(COLUMNS, key=lambda c: (c[0], c[3]))  # the engine's (point, statistic) order
    steps = readings // len(ordered)
    rng = np.random.default_rng(42)
    n_cols = len(ordered)
    names = np.array([c[0] for c in ordered], dtype=object)
    stats = np.array([c[3] for c in ordered], dtype=object)
    types = np.array([c[1] for c in ordered], dtype=object)
    heights = np.array([np.nan if c[2] is None else c[2] for c in ordered])
    icing_cols = np.array([t == "wind_speed" for _, t, _, _ in ordered])
    base = np.int64(T0.timestamp() * 1_000_000)
    step_us = 600_000_000
    i0 = 0
    while i0 < steps:
        month = Month.of(T0 + i0 * STEP)
        i1 = min(steps, i0 + int((month.end - (T0 + i0 * STEP)) / STEP))
        n = i1 - i0
        ts = np.repeat(base + np.arange(i0, i1, dtype=np.int64) * step_us, n_cols)
        col_idx = np.tile(np.arange(n_cols), n)
        values = np.round(rng.gamma(2.0, 3.5, size=n * n_cols), 3) * 1.0137  # calibrated
        values[rng.random(n * n_cols) < 0.01] = np.nan  # 1 % missing
        icing_steps = rng.random(n) < 0.02  # ~2 % of time steps iced
        flag_mask = np.repeat(icing_steps, n_cols) & np.tile(icing_cols, n)
        flags = pa.array([["icing"] if f else [] for f in flag_mask], type=pa.list_(pa.string()))
        value_arr = pa.array(values, mask=np.isnan(values))
        table = pa.Table.from_arrays(
            [
                pa.array(ts, pa.timestamp("us", tz="UTC")),
                pa.array(names[col_idx], pa.string()),
                pa.array(types[col_idx], pa.string()),
                pa.array(heights[col_idx], mask=np.isnan(heights[col_idx])),
                pa.array(stats[col_idx], pa.string()),
                value_arr,
                value_arr,
                flags,
                pa.array(np.full(n * n_cols, 7, dtype=np.int64)),
            ],
            schema=CLEAN_SCHEMA,
        )
        writer = PartitionWriter(folder / month.file_name)
        writer.write(table.cast(WRITE_SCHEMA))
        first, last = ts.min(), ts.max()
        iced = flag_mask.reshape(n, n_cols).any(axis=0)
        writer.close(
            {
                "rows": n * n_cols,
                "flagged": int(flag_mask.sum()),
                "flags": ["icing"] if flag_mask.any() else [],
                "columns": [
                    [c[0], c[3], c[1], c[2], n, _iso(first), _iso(last), ["icing"] if hit else []]
                    for c, hit in zip(ordered, iced.tolist(), strict=True)
                ],
            }
        )
        i0 = i1
    marker.write_text(json.dumps({"asked": readings, "readings": steps * n_cols}))
    (data_dir.parent / "stations.toml").write_text(
        f'data_dir = "{data_dir.name}"\n\n[stations.B001]\nlatitude = 53.21\nlongitude = -7.12\n'
        "elevation_m = 120\nutc_offset_hours = 1\naveraging_period_minutes = 10\n"
    )


def _iso(us: int) -> str:
    return f"{datetime(1970, 1, 1) + timedelta(microseconds=int(us)):%Y-%m-%dT%H:%M:%S.%f}Z"


def run_stationkit(root: Path) -> dict[str, object]:
    from stationkit.config import load_config
    from stationkit.ledger import Ledger
    from stationkit.pipeline.export import export_station

    config = load_config(root / "stations.toml")
    t = time.perf_counter()
    with Ledger(config.data_dir) as ledger:
        s = export_station(config, config.stations["B001"], ledger, fmt="windographer", force=True)
    elapsed = time.perf_counter() - t
    out = config.data_dir / s.files[0]
    return {"seconds": elapsed, "rows": s.rows, "columns": s.columns, "bytes": out.stat().st_size}


def run_reference(root: Path) -> dict[str, object]:
    import polars as pl

    folder = root / "data" / "lake" / "clean" / "station=B001"
    out = root / "reference.txt"
    t = time.perf_counter()
    df = pl.read_parquet(sorted(folder.glob("*.parquet")), hive_partitioning=False).select(
        "timestamp", "point", "statistic", "value", "flags"
    )
    df = df.with_columns(
        pl.when(pl.col("flags").list.len() > 0).then(None).otherwise(pl.col("value")).alias("value")
    )
    wide = df.select("timestamp").unique().sort("timestamp")
    for (point, stat), part in df.group_by("point", "statistic", maintain_order=True):
        wide = wide.join(
            part.select("timestamp", pl.col("value").alias(f"{point} {stat}")),
            on="timestamp",
            how="left",
        )
    wide = wide.with_columns(pl.col("timestamp").dt.replace_time_zone(None) + timedelta(hours=1))
    wide.write_csv(
        out,
        separator="\t",
        line_terminator="\r\n",
        datetime_format="%Y-%m-%d %H:%M:%S",
        float_scientific=False,
        null_value="",
    )
    elapsed = time.perf_counter() - t
    return {
        "seconds": elapsed,
        "rows": wide.height,
        "columns": wide.width - 1,
        "bytes": out.stat().st_size,
    }


def _child(which: str, root: Path) -> dict[str, object]:
    result = run_stationkit(root) if which == "stationkit" else run_reference(root)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=25_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_export"))
    ap.add_argument("--child", choices=["stationkit", "reference"])
    args = ap.parse_args()
    root: Path = args.dir
    if args.child:
        print(json.dumps(_child(args.child, root)))
        return
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    generate(root / "data", args.readings)
    print(f"data ready in {time.perf_counter() - t:.1f} s ({args.readings:,} readings asked)")
    results = {}
    for which in ("reference", "stationkit"):
        done = subprocess.run(
            [sys.executable, __file__, "--dir", str(root), "--child", which],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[which] = json.loads(done.stdout.strip().splitlines()[-1])
        r = results[which]
        print(
            f"{which:>10}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB, "
            f"{r['rows']:,} rows x {r['columns']} columns, {r['bytes'] / 1e6:.0f} MB"
        )
    ratio = float(results["stationkit"]["seconds"]) / float(results["reference"]["seconds"])
    print(f"stationkit / reference: {ratio:.2f}x (target <= 1.5x); pandas: not installed")


if __name__ == "__main__":
    main()
