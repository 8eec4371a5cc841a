"""Throughput of the configurable delimited reader on a large file.

Builds a ~80 MB file in a temporary directory from the structure of the
Triton sodar export in the corpus (';' separated, decimal commas, day-first
``DD.MM.YYYY HH:MM`` labels, two header lines above the column names and a
units line): the corpus header is kept, its data rows are perturbed into a
pool of rows and repeated under continuous 10-minute timestamps. The file is
parsed with :func:`stationkit.parsers.delimited.read_delimited` and the rate
printed in MB/s. Run: ``.venv/bin/python benchmarks/bench_delimited.py``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from stationkit.parsers.delimited import DelimitedOptions, read_delimited

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import corpus_files  # noqa: E402

TARGET_BYTES = 80 * 1024 * 1024
POOL_ROWS = 2000
OPTIONS = DelimitedOptions(
    delimiter=";",
    decimal=",",
    header_row=3,
    units_row=4,
    timestamp_column="Date and Time",
    dayfirst=True,
    height_regex=r"^(\d+)m ",
)


def _perturb(field: str, rng: random.Random) -> str:
    """The same kind of number, a little different (decimals kept)."""
    try:
        value = float(field.replace(",", "."))
    except ValueError:
        return field
    decimals = len(field.split(",")[1]) if "," in field else 0
    new = value * rng.uniform(0.8, 1.2) + rng.uniform(-0.5, 0.5) * 10**-decimals
    return f"{new:.{decimals}f}".replace(".", ",")


def build(path: Path) -> int:
    """Write the large file; return its number of data rows."""
    sample = corpus_files("TRITON_CSV")[0]
    lines = sample.read_text(encoding="utf-8").splitlines()
    header, rows = lines[:4], [line for line in lines[4:] if line.strip()]
    rng = random.Random(42)
    pool = []
    for i in range(POOL_ROWS):
        fields = rows[i % len(rows)].split(";")
        pool.append(";".join(_perturb(f, rng) for f in fields[1:]))
    start = datetime(2016, 8, 31)
    step = timedelta(minutes=10)
    written = 0
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("\n".join(header) + "\n")
        while written < TARGET_BYTES:
            chunk = []
            for _ in range(10_000):
                stamp = (start + n * step).strftime("%d.%m.%Y %H:%M")
                chunk.append(f"{stamp};{pool[n % POOL_ROWS]}\n")
                n += 1
            text = "".join(chunk)
            out.write(text)
            written += len(text)
    return n


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "triton_large.csv"
        rows = build(path)
        size_mb = path.stat().st_size / 1e6
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            result = read_delimited(path, options=OPTIONS)
            best = min(best, time.perf_counter() - t0)
        assert result.rows == rows, (result.rows, rows)
        print(
            f"delimited: {size_mb:.1f} MB, {rows} rows x {len(result.channels)} channels "
            f"in {best:.2f} s = {size_mb / best:.1f} MB/s"
        )


if __name__ == "__main__":
    main()
