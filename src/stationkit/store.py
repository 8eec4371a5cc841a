"""The readings lake: one Parquet file per parsed source file.

    lake/readings/station=<id>/part-<file_id>.parquet

Columns are DESIGN's tidy schema but ``station``: the folder name carries it
(Hive partitioning), so that pandas, pyarrow.dataset, polars and DuckDB read
``lake/readings`` from its root as one dataset with a ``station`` column
(docs/lake.md). Rows are sorted by channel, then time (stable: rows with the
same timestamp keep file order), built a block of channels at a time (about
ROW_GROUP_ROWS rows: all channels of a daily file at once, one channel of a
years-long file) so memory stays at one wide frame plus one block. Encodings
are chosen for size and for byte-identical output from identical input:
timestamps and file ids delta-encoded, values of long files
dictionary-encoded (met values repeat), zstd, no wall-clock metadata.

A reading is a finite number or null, whatever the parser gave: infinities,
NaN and magnitudes of ABSURD_MAGNITUDE or more (``1e309`` overflows to inf;
``9.9e300`` is no measurement) are stored as null, here and only here, with
one warning per file naming the channels and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
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
#: values at least this large in magnitude are no measurement: stored as null
ABSURD_MAGNITUDE = 1e300
#: bump when the bytes of a readings file change for the same input: stations re-parse
READINGS_LAYOUT = 3
#: files of at least this many readings dictionary-encode their values
VALUE_DICTIONARY_READINGS = 200_000


def readings_dir(data_dir: Path, station: str) -> Path:
    return data_dir / "lake" / "readings" / f"station={station}"


def readings_path(data_dir: Path, station: str, file_id: int) -> Path:
    return readings_dir(data_dir, station) / f"part-{file_id:019d}.parquet"


def _writer(path: Path, readings: int) -> pq.ParquetWriter:
    # met values repeat: a dictionary of values shrinks a long file by ~40 %, but
    # a day's file is smaller and faster to write without one
    values = ["value"] if readings >= VALUE_DICTIONARY_READINGS else []
    return pq.ParquetWriter(
        path,
        READINGS_SCHEMA,
        compression="zstd",
        compression_level=1,  # as small as level 3 here (dictionaries do the work), faster
        use_dictionary=["channel", "statistic", *values],
        column_encoding={"timestamp": "DELTA_BINARY_PACKED", "file_id": "DELTA_BINARY_PACKED"},
        write_statistics=True,
        data_page_version="2.0",
        write_page_index=False,
    )


def _not_finite_warning(replaced: dict[str, int]) -> str:
    shown = ", ".join(f"{name!r} ({n})" for name, n in list(replaced.items())[:MAX_NAMED])
    more = f" and {len(replaced) - MAX_NAMED} more channel(s)" if len(replaced) > MAX_NAMED else ""
    return (
        f"{sum(replaced.values())} value(s) that are not finite numbers "
        f"(inf, NaN or |v| >= {ABSURD_MAGNITUDE:g}) stored as null: {shown}{more}"
    )


#: channels named in one warning
MAX_NAMED = 10


def write_readings(
    path: Path,
    station: str,
    file_id: int,
    frame: pl.DataFrame,
    channels: Sequence[ChannelInfo],
    warnings: list[str] | None = None,
) -> int:
    """Write the wide ``frame`` (UTC period-start timestamps) as tidy rows.

    Returns the number of readings written. The file appears atomically.
    Values that are not finite numbers (see ABSURD_MAGNITUDE) become null;
    one warning naming the channels is appended to ``warnings``. ``station``
    is not stored in the file: ``path``'s folder (``station=<id>``,
    :func:`readings_dir`) names it.
    """
    if not frame.get_column(TIMESTAMP).is_sorted():
        frame = frame.sort(TIMESTAMP, maintain_order=True)  # a copy: only when needed
    stamps = frame.get_column(TIMESTAMP).cast(pl.Datetime("us", "UTC")).to_physical().to_numpy()
    n = frame.height
    ordered = sorted(channels, key=lambda c: c.name)
    total = 0
    replaced: dict[str, int] = {}
    pending: list[pa.Table] = []
    pending_rows = 0
    with atomic_output(path) as tmp:
        writer = _writer(tmp, n * len(ordered))
        try:
            for block in _blocks(ordered, n):
                table = _block_table(file_id, frame, block, stamps, replaced)
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
    if replaced and warnings is not None:
        warnings.append(_not_finite_warning(replaced))
    return total


def _blocks(channels: Sequence[ChannelInfo], rows: int) -> list[list[ChannelInfo]]:
    """Consecutive channels in groups of about ROW_GROUP_ROWS readings."""
    per = max(1, ROW_GROUP_ROWS // max(rows, 1))
    return [list(channels[i : i + per]) for i in range(0, len(channels), per)]


def _block_table(
    file_id: int,
    frame: pl.DataFrame,
    block: Sequence[ChannelInfo],
    stamps: np.ndarray,
    replaced: dict[str, int],
) -> pa.Table:
    """The tidy rows of a block of channels, channel after channel.

    Nulls, NaN, infinities and absurd magnitudes all become null; how many
    were not null already is counted per channel in ``replaced``.
    """
    n, k = frame.height, len(block)
    wide = frame.select([pl.col(c.name).cast(pl.Float64) for c in block])
    values = wide.to_numpy(order="fortran").reshape(-1, order="F")  # null -> NaN
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(values) < ABSURD_MAGNITUDE)  # NaN, inf, null and absurd
    if bad.any():
        nulls = wide.null_count().row(0)
        counts = bad.reshape(k, n).sum(axis=1)
        for c, b, z in zip(block, counts.tolist(), nulls, strict=True):
            if b > z:
                replaced[c.name] = b - z
    index = np.repeat(np.arange(k, dtype=np.int32), n)
    names = pa.DictionaryArray.from_arrays(index, pa.array([c.name for c in block], pa.string()))
    stats = [c.statistic for c in block]
    statistic = pa.DictionaryArray.from_arrays(index, pa.array(stats, pa.string())).cast(
        pa.string()
    )
    table = pa.Table.from_arrays(
        [
            pa.array(np.tile(stamps, k), READINGS_SCHEMA.field("timestamp").type),
            names.cast(pa.string()),
            statistic,
            pa.array(values, pa.float64(), mask=bad),
            pa.array(np.full(n * k, file_id, dtype=np.int64)),
        ],
        schema=READINGS_SCHEMA,
    )
    sparse = np.array([c.sparse for c in block], dtype=np.bool_)
    if sparse.any():
        keep = ~(bad & np.repeat(sparse, n))
        table = table.filter(pa.array(keep))
    return table
