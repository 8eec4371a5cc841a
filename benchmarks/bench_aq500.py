"""Throughput of the AQSystem AQ500 result-file reader on a large file.

Builds a ~80 MB file in a temporary directory from the corpus Kassel sample:
its header (with the NUL padding) is kept, its 144 data rows are drawn at
random and written under continuous 10-minute ``YYYYMMDD  H:MM`` labels
(unpadded hours), then ``[EOD]``/``[EOF]``. Parsed with
:func:`stationkit.parsers.aq500.read_aq500`; prints MB/s.
Run: ``.venv/bin/python benchmarks/bench_aq500.py``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from stationkit.parsers.aq500 import read_aq500

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import corpus_files  # noqa: E402

TARGET_BYTES = 80 * 1024 * 1024


def build(path: Path) -> int:
    """Write the large file; return its number of data rows."""
    data = corpus_files("SODAR_AQ500")[0].read_bytes()
    head, _, rest = data.partition(b"[BOD]\r\n")
    rows = [r.split(b",", 1)[1] for r in rest.split(b"\r\n") if r[:1].isdigit()]
    rng = random.Random(42)
    t = datetime(2016, 1, 1)
    size, n = 0, 0
    with path.open("wb") as out:
        out.write(head + b"[BOD]\r\n")
        while size < TARGET_BYTES:
            line = f"{t:%Y%m%d} {t.hour:2d}:{t:%M},".encode() + rng.choice(rows) + b"\r\n"
            out.write(line)
            size += len(line)
            t += timedelta(minutes=10)
            n += 1
        out.write(b"[EOD]\r\n[EOF]\r\n")
    return n


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big_result.txt"
        n = build(path)
        mb = path.stat().st_size / 1e6
        start = time.perf_counter()
        res = read_aq500(path)
        elapsed = time.perf_counter() - start
        assert res.rows == n, (res.rows, n)
        print(
            f"aq500: {mb:.1f} MB, {n} rows, {len(res.channels)} channels "
            f"in {elapsed:.2f} s = {mb / elapsed:.1f} MB/s"
        )


if __name__ == "__main__":
    main()
