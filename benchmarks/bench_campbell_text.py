"""Throughput of the TOACI1, headerless ASCII, CSIXML, mixed-array and
Windographer readers on large generated files.

Each file is built in a temporary directory from the structure of a corpus
sample (its header and column layout), with the sample's data rows repeated,
values perturbed and timestamps continuing at the sample's interval, then
parsed once with the reader. Prints MB/s per format.

    .venv/bin/python benchmarks/bench_campbell_text.py            # ~64 MB per format
    .venv/bin/python benchmarks/bench_campbell_text.py --size-mb 20 --formats csixml toaci1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("STATIONKIT_CORPUS", ROOT.parent / "shared" / "corpus"))
TOXX = CORPUS / "TOA5" / "thyyppa__Toxx__DemoOutputToa5.dat"
TOXX_XML = CORPUS / "CSIXML" / "thyyppa__Toxx__DemoOutputXML.xml"
TOXX_CI = CORPUS / "TOACI1" / "thyyppa__Toxx__DemoOutputToaci1.dat"
GNDRAD = CORPUS / "MIXED_ARRAY" / "MRE-Code-Hub__extract_loggernet__6-GndRadData.dat"
WINDOGRAPHER = (
    CORPUS / "WINDOGRAPHER_TXT" / "brightwind-dev__brightwind__windographer_demo_data1.txt"
)
START = datetime(2020, 1, 1)


def _values(sample: pl.DataFrame, rows: int, decimals: int, seed: int) -> pl.DataFrame:
    """``rows`` rows cycling through ``sample`` with small random perturbations."""
    index = pl.int_range(rows, eager=True) % sample.height
    base = sample.select(pl.all().gather(index))
    noise = pl.DataFrame(
        {
            c: pl.int_range(rows, eager=True).shuffle(seed=seed + i) % 1000
            for i, c in enumerate(sample.columns)
        }
    )
    return pl.DataFrame(
        {c: (base[c] + (noise[c] - 500) * 10.0**-decimals).round(decimals) for c in sample.columns}
    )


def _stamps(rows: int, step: timedelta) -> pl.Series:
    return pl.datetime_range(START, START + step * (rows - 1), step, eager=True, time_unit="us")


def _toxx_values(rows: int) -> tuple[pl.Series, pl.DataFrame]:
    sample = pl.read_csv(TOXX, skip_rows=1, skip_rows_after_header=2).select(
        "panel_temp", "battery_voltage", "battery_voltage_Min"
    )
    return _stamps(rows, timedelta(minutes=5)), _values(sample, rows, 2, 1)


def _campbell_rows(rows: int) -> pl.DataFrame:
    stamps, values = _toxx_values(rows)
    return pl.DataFrame(
        {
            "TIMESTAMP": stamps.dt.strftime("%Y-%m-%d %H:%M:%S"),
            "RECORD": pl.int_range(rows, eager=True),
        }
    ).hstack(values)


def build_toaci1(path: Path, rows: int) -> None:
    header = TOXX_CI.read_bytes().split(b"\r\n")[:2]
    with open(path, "wb") as fh:
        fh.write(b"\r\n".join(header) + b"\r\n")
        _campbell_rows(rows).write_csv(
            fh, include_header=False, quote_style="non_numeric", line_terminator="\r\n"
        )


def build_csi_ascii(path: Path, rows: int) -> None:
    with open(path, "wb") as fh:
        _campbell_rows(rows).write_csv(
            fh, include_header=False, quote_style="non_numeric", line_terminator="\r\n"
        )


def build_csixml(path: Path, rows: int) -> None:
    text = TOXX_XML.read_text()
    head = text[: text.index("<data>") + len("<data>")] + "\r\n"
    stamps, values = _toxx_values(rows)
    lines = (
        pl.DataFrame({"t": stamps.dt.strftime("%Y-%m-%d %H:%M:%S")})
        .hstack(values)
        .select(
            pl.concat_str(
                [
                    pl.lit('  <r no="'),
                    pl.int_range(pl.len()).cast(pl.String),
                    pl.lit('" time="'),
                    pl.col("t"),
                    pl.lit('"><v1>'),
                    pl.col("panel_temp").cast(pl.String),
                    pl.lit("</v1><v2>"),
                    pl.col("battery_voltage").cast(pl.String),
                    pl.lit("</v2><v3>"),
                    pl.col("battery_voltage_Min").cast(pl.String),
                    pl.lit("</v3></r>\r\n"),
                ]
            )
        )
    )
    with open(path, "w", newline="") as fh:
        fh.write(head)
        fh.write("\r\n".join(lines.to_series().to_list()))
        fh.write("\r\n  </data>\r\n</csixml>\r\n")


def build_mixed_array(path: Path, rows: int) -> None:
    """GndRad layout: array 213 every minute, daily array 111 at 2359."""
    raw = [line.split(",") for line in GNDRAD.read_text().splitlines()]
    minute = pl.DataFrame([[float(v) for v in r[4:]] for r in raw if r[0] == "213"], orient="row")
    daily = pl.DataFrame([[float(v) for v in r[4:]] for r in raw if r[0] == "111"], orient="row")
    stamps = _stamps(rows, timedelta(minutes=1))
    hhmm = (stamps.dt.hour().cast(pl.Int32) * 100 + stamps.dt.minute().cast(pl.Int32)).alias("t")
    time_fields = pl.DataFrame(
        {"y": stamps.dt.year(), "d": stamps.dt.ordinal_day(), "t": hhmm}
    ).cast(pl.String)

    def lines(array_id: str, times: pl.DataFrame, values: pl.DataFrame) -> pl.Series:
        strings = [pl.col(c).cast(pl.String) for c in values.columns]
        return (
            times.hstack(values)
            .select(
                pl.concat_str(
                    [pl.lit(array_id), pl.col("y"), pl.col("d"), pl.col("t"), *strings],
                    separator=",",
                )
            )
            .to_series()
        )

    minute_lines = lines("213", time_fields, _values(minute, rows, 3, 2))
    at_2359 = hhmm == 2359
    daily_lines = lines(
        "111", time_fields.filter(at_2359), _values(daily, int(at_2359.sum()), 3, 3)
    )
    order = pl.concat(
        [
            pl.DataFrame({"k": pl.int_range(rows, eager=True) * 2, "line": minute_lines}),
            pl.DataFrame(
                {"k": pl.int_range(rows, eager=True).filter(at_2359) * 2 + 1, "line": daily_lines}
            ),
        ]
    ).sort("k")
    with open(path, "w", newline="") as fh:
        fh.write("\r\n".join(order.get_column("line").to_list()) + "\r\n")


def build_windographer(path: Path, rows: int) -> None:
    text = WINDOGRAPHER.read_text()
    lines = text.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("Date/Time"))
    names = lines[header_at].split("\t")
    sample = pl.DataFrame(
        [[float(v) for v in line.split("\t")[1:]] for line in lines[header_at + 1 :]],
        orient="row",
        schema=names[1:],
    )
    stamps = _stamps(rows, timedelta(minutes=10))
    frame = pl.DataFrame({"Date/Time": stamps.dt.strftime("%d/%m/%Y %H:%M:%S+00:00")}).hstack(
        _values(sample, rows, 3, 4)
    )
    with open(path, "wb") as fh:
        fh.write(("\n".join(lines[: header_at + 1]) + "\n").encode())
        frame.write_csv(fh, include_header=False, separator="\t")


def _readers() -> dict[str, tuple[Callable[[Path, int], None], Callable[[Path], object], int]]:
    from stationkit.parsers.csi_ascii import read_csi_ascii
    from stationkit.parsers.csixml import read_csixml
    from stationkit.parsers.mixed_array import read_mixed_array
    from stationkit.parsers.toaci1 import read_toaci1
    from stationkit.parsers.windographer import read_windographer

    columns = ["TIMESTAMP", "RECORD", "panel_temp", "battery_voltage", "battery_voltage_Min"]
    # bytes per row, roughly, to size the files
    return {
        "toaci1": (build_toaci1, read_toaci1, 45),
        "csi_ascii": (build_csi_ascii, lambda p: read_csi_ascii(p, columns=columns), 45),
        "csixml": (build_csixml, read_csixml, 100),
        "mixed_array": (build_mixed_array, read_mixed_array, 210),
        "windographer": (build_windographer, read_windographer, 170),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=64.0)
    parser.add_argument("--formats", nargs="*", default=None)
    args = parser.parse_args(argv)
    readers = _readers()
    formats = args.formats or list(readers)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            build, read, row_bytes = readers[fmt]
            path = Path(tmp) / f"big_{fmt}.dat"
            rows = int(args.size_mb * 1e6 / row_bytes)
            t0 = time.perf_counter()
            build(path, rows)
            built = time.perf_counter() - t0
            size_mb = path.stat().st_size / 1e6
            t0 = time.perf_counter()
            result = read(path)
            elapsed = time.perf_counter() - t0
            height = getattr(result, "rows", "?")
            print(
                f"{fmt:13s} {size_mb:7.1f} MB  {height:>9} rows  parse {elapsed:6.2f} s  "
                f"{size_mb / elapsed:7.1f} MB/s   (built in {built:.1f} s)",
                flush=True,
            )
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
