"""Throughput of the TOB1 and TOB3 readers on large files.

Builds a ~100 MB TOB1 and a ~100 MB TOB3 file in a temporary directory from
the structure of the corpus samples (CR1000X, 21-field TOB1_full16 records of
127 bytes; 988-byte TOB3_long19 frames of 9 records of 108 bytes):

* TOB1: the corpus header is kept; the corpus records are repeated with
  continuous 5 ms SECONDS/NANOSECONDS, increasing RECORD and the IEEE4
  ``rand`` field perturbed per record.
* TOB3: the corpus header is kept; the corpus's full frames are repeated with
  continuous frame times (45 ms per frame), increasing record numbers, the
  valid validation stamp in every footer and the first IEEE4B field of each
  record perturbed; every 500th frame is a minor frame (two sub-frames) so
  the partial-frame path is timed too.

Each file is parsed with its reader and the rate printed in MB/s.
Run: ``.venv/bin/python benchmarks/bench_tob.py``.
"""

from __future__ import annotations

import math
import random
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stationkit.parsers.base import ParseResult
from stationkit.parsers.tob1 import read_tob1
from stationkit.parsers.tob3 import read_tob3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import CORPUS  # noqa: E402

TARGET_BYTES = 100 * 1024 * 1024
TOB1_SAMPLE = CORPUS / "TOB1" / "alextsfox__camp2ascii__TOB1_full16.dat"
TOB3_SAMPLE = CORPUS / "TOB3" / "alextsfox__camp2ascii__TOB3_long19.dat"


def _header_end(data: bytes, lines: int) -> int:
    pos = 0
    for _ in range(lines):
        pos = data.index(b"\n", pos) + 1
    return pos


def build_tob1(path: Path) -> int:
    """Write the TOB1 file; return the number of records."""
    data = TOB1_SAMPLE.read_bytes()
    start = _header_end(data, 5)
    size = 127
    sample = [
        data[start + i * size : start + (i + 1) * size] for i in range((len(data) - start) // size)
    ]
    count = (TARGET_BYTES - start) // size
    rng = random.Random(1)
    out = bytearray(data[:start])
    out += b"\0" * (count * size)
    seconds, nanos = struct.unpack_from("<II", sample[0])
    rand_offset = size - 12 - 4  # the IEEE4 "rand" field precedes the final ASCII(12)
    pack = struct.pack_into
    for i in range(count):
        base = start + i * size
        out[base : base + size] = sample[i % len(sample)]
        ns = nanos + i * 5_000_000
        pack("<III", out, base, seconds + ns // 1_000_000_000, ns % 1_000_000_000, i)
        pack("<f", out, base + rand_offset, rng.uniform(-1, 1))
    path.write_bytes(out)
    return count


def build_tob3(path: Path) -> int:
    """Write the TOB3 file; return the number of records."""
    data = TOB3_SAMPLE.read_bytes()
    start = _header_end(data, 6)
    frame_size, per_frame, record = 988, 9, 108
    frames = [data[start + k * frame_size : start + (k + 1) * frame_size] for k in range(1, 22)]
    minor = data[start : start + frame_size]  # corpus frame 0: two sub-frames + an empty one
    count = (TARGET_BYTES - start) // frame_size
    rng = random.Random(3)
    out = bytearray(data[:start])
    out += b"\0" * (count * frame_size)
    seconds, ticks, _ = struct.unpack_from("<III", frames[0])
    pack = struct.pack_into
    records = 0
    for k in range(count):
        base = start + k * frame_size
        tick = ticks + k * 450  # 9 records x 5 ms in 100 us ticks
        if k % 500 == 499:
            out[base : base + frame_size] = minor
            # sub-frames at 0 (3 records) and 340 (5 records); keep their times consistent
            pack("<III", out, base, seconds + tick // 10_000, tick % 10_000, 1 + records)
            t2 = tick + 150
            pack("<III", out, base + 340, seconds + t2 // 10_000, t2 % 10_000, 4 + records)
            records += 8
            continue
        out[base : base + frame_size] = frames[k % len(frames)]
        pack("<III", out, base, seconds + tick // 10_000, tick % 10_000, 1 + records)
        for i in range(per_frame):
            pack(">f", out, base + 12 + i * record + 36 + 2, rng.uniform(-1, 1))
        records += per_frame
    path.write_bytes(out)
    return records


def _time(label: str, path: Path, read: Callable[[Path], ParseResult], expected: int) -> None:
    """Parse ``path`` three times; print the best wall time (the machine is shared)."""
    size = path.stat().st_size
    best = (math.inf, math.inf)
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        result = read(path)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
        assert result.rows == expected, (result.rows, expected)
    print(
        f"{label}: {size / 1e6:.1f} MB, {result.rows} records x {len(result.channels)} channels: "
        f"best of 3 {best[0]:.2f} s wall = {size / 1e6 / best[0]:.0f} MB/s "
        f"({best[1]:.2f} s CPU)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tob1 = Path(tmp) / "big_tob1.dat"
        n1 = build_tob1(tob1)
        _time("TOB1", tob1, read_tob1, n1)
        tob1.unlink()
        tob3 = Path(tmp) / "big_tob3.dat"
        n3 = build_tob3(tob3)
        _time("TOB3", tob3, read_tob3, n3)


if __name__ == "__main__":
    main()
