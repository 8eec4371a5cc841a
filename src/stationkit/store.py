"""The readings lake: one Parquet file per parsed source file.

    lake/readings/station=<id>/part-<file_id>.parquet

Columns are DESIGN's tidy schema but ``station``: the folder name carries it
(Hive partitioning), so that pandas, pyarrow.dataset, polars and DuckDB read
``lake/readings`` from its root as one dataset with a ``station`` column
(docs/lake.md). Rows are sorted by channel, then time
(stable: rows with the same timestamp keep file order), written channel by
channel so memory stays at one wide frame plus one channel slice. Encodings
are chosen for size and for byte-identical output from identical input:
timestamps and file ids delta-encoded, values dictionary-encoded (met values
repeat), zstd, no wall-clock metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stationkit.atomic import atomic_output
from stationkit.parsers.base import TIMESTAMP, ChannelInfo

#: the columns of a file; readers of the folder add ``station`` from ``station=<id>``
READINGS_SCHEMA = pa.schema(
    [
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("statistic", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("file_id", pa.int64(), nullable=False),
    ]
)
ROW_GROUP_ROWS = 1 << 20
#: bump when the bytes of a readings file change for the same input: stations re-parse
READINGS_LAYOUT = 2


def readings_dir(data_dir: Path, station: str) -> Path:
    return data_dir / "lake" / "readings" / f"station={station}"


def readings_path(data_dir: Path, station: str, file_id: int) -> Path:
    return readings_dir(data_dir, station) / f"part-{file_id:019d}.parquet"


def _writer(path: Path) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path,
        READINGS_SCHEMA,
        compression="zstd",
        compression_level=1,  # as small as level 3 here (dictionaries do the work), faster
        use_dictionary=["channel", "statistic", "value"],
        column_encoding={"timestamp": "DELTA_BINARY_PACKED", "file_id": "DELTA_BINARY_PACKED"},
        write_statistics=True,
        data_page_version="2.0",
        write_page_index=False,
    )


def _repeat(value: str | None, n: int) -> pa.Array:
    """A string column holding one value n times, built straight from buffers."""
    if value is None:
        return pa.nulls(n, pa.string())
    data = value.encode()
    if len(data) * n >= 2**31:
        return pa.array([value] * n, pa.large_string()).cast(pa.string())
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(data))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data * n))


def write_readings(
    path: Path,
    station: str,
    file_id: int,
    frame: pl.DataFrame,
    channels: Sequence[ChannelInfo],
) -> int:
    """Write the wide ``frame`` (UTC period-start timestamps) as tidy rows.

    Returns the number of readings written. The file appears atomically.
    ``station`` is not stored in the file: ``path``'s folder (``station=<id>``,
    :func:`readings_dir`) names it.
    """
    if not frame.get_column(TIMESTAMP).is_sorted():
        frame = frame.sort(TIMESTAMP, maintain_order=True)  # a copy: only when needed
    stamps = frame.get_column(TIMESTAMP).to_arrow()
    n = frame.height
    file_col = pa.array(np.full(n, file_id, dtype=np.int64))
    total = 0
    pending: list[pa.Table] = []
    pending_rows = 0
    with atomic_output(path) as tmp:
        writer = _writer(tmp)
        try:
            for ch in sorted(channels, key=lambda c: c.name):
                values = frame.get_column(ch.name).to_arrow()
                table = pa.Table.from_arrays(
                    [
                        stamps,
                        _repeat(ch.name, n),
                        _repeat(ch.statistic, n),
                        values,
                        file_col,
                    ],
                    schema=READINGS_SCHEMA,
                )
                if ch.sparse:
                    table = table.filter(pc.is_valid(table.column("value")))
                pending.append(table)
                pending_rows += table.num_rows
                total += table.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS * 2)
                    pending, pending_rows = [], 0
            if pending or total == 0:
                table = pa.concat_tables(pending) if pending else READINGS_SCHEMA.empty_table()
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS * 2)
        finally:
            writer.close()
    return total
