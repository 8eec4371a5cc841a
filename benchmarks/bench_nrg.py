"""Throughput of the NRG text readers on large generated files.

Builds, in a temporary directory, a SymphoniePRO export and a LOGR
statistics file of about ``--mb`` megabytes each from the header and data
rows of real corpus samples: rows are drawn at random from the sample, their
values perturbed by a little noise, and given consecutive 1-minute (LOGR:
10-minute UTC ``Z``) timestamps. Then parses each once and prints MB/s.

    .venv/bin/python benchmarks/bench_nrg.py [--mb 80]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stationkit.parsers.nrg_logr import read_nrg_logr  # noqa: E402
from stationkit.parsers.nrg_symphonie import read_nrg_symphonie  # noqa: E402
from tests.conftest import CORPUS  # noqa: E402

SYMPRO = CORPUS / "NRG_SYMPRO_TXT" / "nrgpy__nrgpy__004310_2022-03-17_00.00_000835_meas.txt"
LOGR = CORPUS / "NRG_LOGR_DAT" / "nrgpy__nrgpy__945800110_WRA_60m_meas_2025.06.15-2025.06.15.dat"


def build(sample: Path, target: Path, megabytes: float, step: timedelta, stamp_format: str) -> int:
    """Write ``target``: the sample's header, then perturbed rows up to ``megabytes``."""
    lines = sample.read_bytes().decode("utf-8-sig").splitlines()
    columns_at = next(i for i, line in enumerate(lines) if line.startswith("Timestamp"))
    header = "\n".join(lines[: columns_at + 1]) + "\n"
    rows = [line.rstrip("\t").split("\t") for line in lines[columns_at + 1 :] if line.strip()]
    names = lines[columns_at].split("\t")
    sample_frame = pl.DataFrame(
        [[None if v == "nan" else float(v) for v in row[1:]] for row in rows],
        schema=names[1:],
        orient="row",
    )
    row_bytes = sum(len(line) + 1 for line in lines[columns_at + 1 :]) / len(rows)
    count = int(megabytes * 1e6 / row_bytes)
    frame = sample_frame.sample(count, with_replacement=True, seed=7)
    noise = pl.Series("noise", [((i * 7919) % 1000 - 500) / 1e5 for i in range(count)])
    frame = frame.with_columns([(pl.col(c) + noise).round(6) for c in frame.columns])
    start = datetime(2024, 1, 1)
    stamps = pl.datetime_range(
        start, start + step * (count - 1), step, eager=True, time_unit="us"
    ).dt.strftime(stamp_format)
    frame = frame.insert_column(0, stamps.alias(names[0]))
    with open(target, "w", encoding="utf-8", newline="") as fh:
        fh.write(header)
    with open(target, "ab") as fh:
        frame.write_csv(fh, separator="\t", include_header=False, null_value="nan")
    return count


def measure(label: str, path: Path, reader: object) -> None:
    size = os.path.getsize(path) / 1e6
    started = time.perf_counter()
    result = reader(path)  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(
        f"{label}: {size:.1f} MB, {result.rows} rows x {len(result.channels)} channels "
        f"in {elapsed:.2f} s = {size / elapsed:.0f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=80.0, help="size of each file [MB]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sympro = Path(tmp) / "big_meas.txt"
        logr = Path(tmp) / "big_statistical.dat"
        build(SYMPRO, sympro, args.mb, timedelta(minutes=1), "%Y-%m-%d %H:%M:%S")
        build(LOGR, logr, args.mb, timedelta(minutes=10), "%Y-%m-%dT%H:%M:%SZ")
        measure("nrg_symphonie", sympro, read_nrg_symphonie)
        measure("nrg_logr", logr, read_nrg_logr)


if __name__ == "__main__":
    main()
