"""Throughput of the Molas B300 lidar reader.

A ~60 MB file is built in a temporary directory from the structure of the
corpus sample: its header (11 lines and the blank line after the names) is
kept as it is, GB2312 and CRLF; its data rows are perturbed into a pool
(numbers scaled a little with their decimals kept, ``NaN`` and the DMS
position text left alone) and written again and again under continuous
10-minute date and time fields, each line ending with a tab as the vendor
writes it. The file is parsed once and the rate printed in MB/s.

Run: ``.venv/bin/python benchmarks/bench_molas.py [--mb 60]``.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stationkit.parsers.molas import read_molas  # noqa: E402
from tests.conftest import corpus_files  # noqa: E402

POOL_ROWS = 2000
HEADER_LINES = 12
STEP = timedelta(minutes=10)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _perturb(field: str, rng: random.Random) -> str:
    if not _NUMBER.match(field):
        return field
    decimals = len(field.split(".")[1]) if "." in field else 0
    return f"{float(field) * rng.uniform(0.9, 1.1):.{decimals}f}"


def _build(target: int, folder: Path) -> Path:
    sample = corpus_files("LIDAR_MOLAS")[0]
    lines = sample.read_bytes().decode("gb18030").split("\r\n")
    header, rows = lines[:HEADER_LINES], [r for r in lines[HEADER_LINES:] if r]
    rng = random.Random(42)
    pool = []
    for i in range(POOL_ROWS):
        fields = rows[i % len(rows)].split("\t")
        pool.append("\t".join(_perturb(f, rng) for f in fields[2:]))
    path = folder / "molas_big.txt"
    start = datetime(2023, 1, 1)
    with path.open("w", encoding="gb18030", newline="") as fh:
        fh.write("\r\n".join(header) + "\r\n")
        size, i = 0, 0
        while size < target:
            t = start + i * STEP
            line = f"{t:%Y-%m-%d} \t{t:%H:%M}\t{pool[i % POOL_ROWS]}\r\n"
            fh.write(line)
            size += len(line.encode("gb18030"))
            i += 1
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=60.0, help="size of the file [MB]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = _build(int(args.mb * 1024 * 1024), Path(tmp))
        mb = path.stat().st_size / (1024 * 1024)
        t0 = time.perf_counter()
        result = read_molas(path)
        elapsed = time.perf_counter() - t0
        print(
            f"molas {mb:6.1f} MB  {result.rows:8d} rows x {len(result.channels):3d} channels  "
            f"{elapsed:6.2f} s  {mb / elapsed:7.1f} MB/s"
        )


if __name__ == "__main__":
    main()
