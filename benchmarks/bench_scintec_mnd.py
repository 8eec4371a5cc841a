"""Throughput of the Scintec FORMAT-1 (.mnd) sodar reader on a large file.

Builds a ~80 MB file in a temporary directory from the corpus ARM sample:
its header is kept and its 96 profile blocks (58 heights x 27 columns) are
drawn at random and written under continuous 15-minute end-of-period labels
(about 5,500 profiles, two months). Parsed with
:func:`stationkit.parsers.scintec_mnd.read_scintec_mnd`; prints MB/s.
Run: ``.venv/bin/python benchmarks/bench_scintec_mnd.py``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from stationkit.parsers.scintec_mnd import read_scintec_mnd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import corpus_files  # noqa: E402

TARGET_BYTES = 80 * 1024 * 1024
MARKER = "# beginning of data block"


def build(path: Path) -> int:
    """Write the large file; return its number of profiles."""
    text = corpus_files("SODAR_SCINTEC_MND")[0].read_text(encoding="utf-8")
    head, _, body = text.partition(MARKER)
    blocks = [b for b in body.split("\n\n") if b.strip() and b[0].isdigit()]
    bodies = [b.split("\n", 1)[1].rstrip("\n") for b in blocks]
    rng = random.Random(42)
    t = datetime(2023, 1, 1, 0, 15)
    size, n = 0, 0
    with path.open("w", encoding="utf-8") as out:
        out.write(head + MARKER + "\n#\n")
        while size < TARGET_BYTES:
            chunk = f"\n{t:%Y-%m-%d %H:%M:%S} 00:15:00\n{rng.choice(bodies)}\n"
            out.write(chunk)
            size += len(chunk)
            t += timedelta(minutes=15)
            n += 1
    return n


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.mnd"
        n = build(path)
        mb = path.stat().st_size / 1e6
        start = time.perf_counter()
        res = read_scintec_mnd(path)
        elapsed = time.perf_counter() - start
        assert res.rows == n, (res.rows, n)
        print(
            f"scintec_mnd: {mb:.1f} MB, {n} profiles, {len(res.channels)} channels "
            f"in {elapsed:.2f} s = {mb / elapsed:.1f} MB/s"
        )


if __name__ == "__main__":
    main()
