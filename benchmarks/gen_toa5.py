"""Generate realistic 10-minute met-mast TOA5 files (demo station, benchmarks).

    python benchmarks/gen_toa5.py OUT.dat --days 2190 --sensors 20   # ~150 MB benchmark file
    python benchmarks/gen_toa5.py --demo demo/incoming/DEMO01        # the bundled demo station

Wind speeds follow a Weibull-like distribution with a diurnal cycle and a
shear profile; directions wander; temperature and pressure follow daily and
synoptic cycles. Values are printed with the decimals a CR1000X program would
use. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

STATS = ("Avg", "Std", "Max", "Min")


def _columns(sensors: int) -> list[tuple[str, str, str]]:
    """(name, unit, processing) for ``sensors`` sensors with four statistics each."""
    cols: list[tuple[str, str, str]] = []
    heights = [120, 100, 80, 60, 40, 20]
    for i in range(sensors):
        kind = "WS" if i < 4 else ("WD", "AirT", "RH", "BP", "WS", "WS")[(i - 4) % 6]
        h = heights[i % len(heights)]
        unit = {"WS": "m/s", "WD": "deg", "AirT": "Deg C", "RH": "%", "BP": "hPa"}[kind]
        for stat in STATS:
            cols.append((f"{kind}_{h}m_{i:02d}_{stat}", unit, stat))
    return cols


def _series(
    kind: str, n: int, t: np.ndarray, rng: np.random.Generator, h: int
) -> dict[str, np.ndarray]:
    day = np.sin(2 * np.pi * (t % 144) / 144 - np.pi / 2)
    synoptic = np.sin(2 * np.pi * t / (144 * 4.3)) + 0.5 * np.sin(2 * np.pi * t / (144 * 11.7))
    if kind == "WS":
        base = (7.5 + 1.2 * synoptic + 0.8 * day) * (h / 80) ** 0.14
        avg = np.clip(base * rng.weibull(2.1, n) / 0.886, 0.2, 35)
        sd = avg * rng.uniform(0.06, 0.16, n)
        return {
            "Avg": avg,
            "Std": sd,
            "Max": avg + 2.2 * sd,
            "Min": np.clip(avg - 2.0 * sd, 0, None),
        }
    if kind == "WD":
        avg = (225 + 60 * synoptic + np.cumsum(rng.normal(0, 2, n))) % 360
        sd = rng.uniform(3, 25, n)
        return {"Avg": avg, "Std": sd, "Max": (avg + 2 * sd) % 360, "Min": (avg - 2 * sd) % 360}
    if kind == "AirT":
        avg = 9 + 6 * day + 4 * synoptic + rng.normal(0, 0.2, n)
        sd = rng.uniform(0.02, 0.3, n)
        return {"Avg": avg, "Std": sd, "Max": avg + sd * 2, "Min": avg - sd * 2}
    if kind == "RH":
        avg = np.clip(78 - 12 * day + 8 * synoptic + rng.normal(0, 1, n), 5, 100)
        sd = rng.uniform(0.1, 1.5, n)
        return {"Avg": avg, "Std": sd, "Max": np.clip(avg + 2 * sd, 0, 100), "Min": avg - 2 * sd}
    avg = 1013 + 9 * synoptic + rng.normal(0, 0.1, n)
    sd = rng.uniform(0.01, 0.08, n)
    return {"Avg": avg, "Std": sd, "Max": avg + 2 * sd, "Min": avg - 2 * sd}


DECIMALS = {"WS": 3, "WD": 1, "AirT": 2, "RH": 1, "BP": 2}


def generate(
    path: Path, start: datetime, rows: int, sensors: int = 20, seed: int = 1, record0: int = 0
) -> None:
    """Write one TOA5 file of ``rows`` 10-minute records starting after ``start``."""
    rng = np.random.default_rng(seed)
    t = np.arange(record0, record0 + rows)
    stamps = [start + timedelta(minutes=10 * (i + 1)) for i in range(rows)]
    data: dict[str, pl.Series] = {
        "TIMESTAMP": pl.Series([f'"{s:%Y-%m-%d %H:%M:%S}"' for s in stamps]),
        "RECORD": pl.Series(t),
        "BattV_Min": pl.Series(np.round(12.6 + 0.3 * np.sin(t / 144 * 2 * np.pi), 2)),
    }
    cols = _columns(sensors)
    for i in range(sensors):
        name = cols[i * 4][0].rsplit("_", 1)[0]
        kind, h = name.split("_")[0], int(name.split("_")[1][:-1])
        values = _series(kind, rows, t, rng, h)
        for stat in STATS:
            data[f"{name}_{stat}"] = pl.Series(np.round(values[stat], DECIMALS[kind]))
    header = [
        '"TOA5","DEMO01","CR1000X","12345","CR1000X.Std.07.02","CPU:metmast.CR1X","61234","MetMast10min"',
        ",".join(f'"{c}"' for c in ["TIMESTAMP", "RECORD", "BattV_Min", *(c[0] for c in cols)]),
        ",".join(f'"{c}"' for c in ["TS", "RN", "Volts", *(c[1] for c in cols)]),
        ",".join(f'"{c}"' for c in ["", "", "Min", *(c[2] for c in cols)]),
    ]
    frame = pl.DataFrame(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(("\r\n".join(header) + "\r\n").encode())
        frame.write_csv(fh, include_header=False, quote_style="never", line_terminator="\r\n")


def demo(folder: Path) -> None:
    """Three daily files of a 4-sensor-group mast, as a logger's TableFile writes them."""
    start = datetime(2024, 3, 1)
    for day in range(3):
        generate(
            folder / f"DEMO01_MetMast10min_{(start + timedelta(days=day)):%Y_%m_%d}.dat",
            start + timedelta(days=day),
            rows=144,
            sensors=8,
            seed=100 + day,
            record0=144 * day,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--days", type=int, default=2190)
    ap.add_argument("--sensors", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--demo", type=Path)
    args = ap.parse_args()
    if args.demo:
        demo(args.demo)
    else:
        generate(args.out, datetime(2019, 1, 1), args.days * 144, args.sensors, args.seed)


if __name__ == "__main__":
    main()
