"""Throughput of the Kintech .wnd, WindCube .sta, ZephIR CSV and Triton CSV readers.

For each format a ~60 MB file is built in a temporary directory from the
structure of the corpus sample: the sample's header is kept as it is, its
data rows are perturbed into a pool (numbers scaled a little with their
decimals kept, missing markers and text left alone) and written again and
again under continuous 10-minute timestamps in the format's own layout
(ZephIR also advances its ``Reference`` and ``Timestamp (s)`` counters).
Each file is parsed once with its reader and the rate is printed in MB/s.

Run: ``.venv/bin/python benchmarks/bench_lidar.py [--mb 60]``.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stationkit.parsers.base import ParseResult  # noqa: E402
from stationkit.parsers.kintech_wnd import read_kintech_wnd  # noqa: E402
from stationkit.parsers.triton_csv import read_triton_csv  # noqa: E402
from stationkit.parsers.windcube_sta import read_windcube_sta  # noqa: E402
from stationkit.parsers.zephir_csv import read_zephir_csv  # noqa: E402
from tests.conftest import corpus_files  # noqa: E402

POOL_ROWS = 2000
STEP = timedelta(minutes=10)
_NUMBER = re.compile(r"^-?\d+([.,]\d+)?$")


@dataclass(frozen=True)
class Case:
    """How to rebuild one format's file: folder, header lines, separator, time fields."""

    name: str
    folder: str
    header_lines: int
    separator: str
    encoding: str
    stamp: Callable[[datetime, int], list[str]]  # the leading fields of row i
    lead: int  # how many leading fields stamp() replaces
    read: Callable[[Path], ParseResult]
    eol: str = "\n"


def _perturb(field: str, rng: random.Random) -> str:
    """The same kind of number, a little different; anything else unchanged."""
    if not _NUMBER.match(field) or field.split(",")[0].split(".")[0] in ("9999", "9998"):
        return field
    comma = "," in field
    text = field.replace(",", ".")
    decimals = len(text.split(".")[1]) if "." in text else 0
    value = float(text) * rng.uniform(0.9, 1.1)
    out = f"{value:.{decimals}f}"
    return out.replace(".", ",") if comma else out


def _build(case: Case, target: int, folder: Path) -> Path:
    sample = corpus_files(case.folder)[0]
    lines = sample.read_bytes().decode(case.encoding).splitlines()
    header, rows = lines[: case.header_lines], [r for r in lines[case.header_lines :] if r]
    rng = random.Random(42)
    pool = []
    for i in range(POOL_ROWS):
        fields = rows[i % len(rows)].split(case.separator)
        pool.append(case.separator.join(_perturb(f, rng) for f in fields[case.lead :]))
    path = folder / f"{case.name}{sample.suffix}"
    start = datetime(2020, 1, 1, 0, 10)
    with path.open("w", encoding=case.encoding, newline="") as fh:
        fh.write(case.eol.join(header) + case.eol)
        size, i = 0, 0
        while size < target:
            line = case.separator.join([*case.stamp(start + i * STEP, i), pool[i % POOL_ROWS]])
            fh.write(line + case.eol)
            size += len(line) + len(case.eol)
            i += 1
    return path


CASES = (
    Case(
        "kintech_wnd", "KINTECH_WND", 4, " ", "utf-8",
        lambda t, i: [t.strftime("%Y-%m-%d,%H:%M")], 1, read_kintech_wnd, "\r\n",
    ),
    Case(
        "windcube_sta", "WINDCUBE_STA", 42, "\t", "latin-1",
        lambda t, i: [t.strftime("%Y/%m/%d %H:%M")], 1, read_windcube_sta,
    ),
    Case(
        "zephir_csv", "ZX_ZEPHIR_CSV", 2, ";", "latin-1",
        lambda t, i: [str(21980722 + i), t.strftime("%d.%m.%Y %H:%M:%S"), str(547516800 + 600 * i)],
        3, read_zephir_csv,
    ),
    Case(
        "triton_csv", "TRITON_CSV", 4, ";", "utf-8",
        lambda t, i: [t.strftime("%d.%m.%Y %H:%M")], 1, read_triton_csv,
    ),
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=60.0, help="size of each file [MB]")
    args = parser.parse_args()
    target = int(args.mb * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            path = _build(case, target, Path(tmp))
            mb = path.stat().st_size / (1024 * 1024)
            t0 = time.perf_counter()
            result = case.read(path)
            elapsed = time.perf_counter() - t0
            print(
                f"{case.name:13s} {mb:6.1f} MB  {result.rows:8d} rows x {len(result.channels):3d} "
                f"channels  {elapsed:6.2f} s  {mb / elapsed:7.1f} MB/s"
            )
            path.unlink()


if __name__ == "__main__":
    main()
