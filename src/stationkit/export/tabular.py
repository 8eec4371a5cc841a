"""CSV and Parquet exports, wide or long, written chunk by chunk.

Wide: one row per time step, ``timestamp`` then one Float64 column per
(point, statistic), labelled as in :mod:`stationkit.export.labels`.
Long: one row per reading, in time then column order, with the columns

    station, timestamp, point, measurement_type, height_m, statistic, value, flags

``value`` is the clean (calibrated) value, missing when a flag excluded it;
``flags`` names every flag that hit it (CSV: joined by ``;``).

Time stamps are period starts. CSV writes them as ISO 8601 with the zone's
offset (``2024-01-01 01:00:00+01:00``). Parquet stores UTC exports as
``timestamp[us, tz=UTC]`` and local-time exports as naive
``timestamp[us]`` wall-clock values (many readers cannot take fixed-offset
zones), with the offset in the file metadata (``stationkit.utc_offset_hours``).

Numbers in CSV are the shortest decimals that read back as the same float64,
never in exponent notation (see :mod:`stationkit.export.windographer`).
Parquet columns carry their point, measurement type, height and statistic
as field metadata; writes are deterministic (no wall-clock metadata).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from stationkit.export.labels import Column
from stationkit.export.select import COL, TIMESTAMP, offset_text, sort_chunk

LONG_COLUMNS = (
    "station",
    "timestamp",
    "point",
    "measurement_type",
    "height_m",
    "statistic",
    "value",
    "flags",
)
CSV_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FLAG_SEPARATOR = ";"
#: rows per row group of long Parquet files
ROW_GROUP_ROWS = 1 << 20
#: cells per row group of wide Parquet files
WIDE_ROW_GROUP_CELLS = 1 << 22


def _write_csv(frame: pl.DataFrame, fh: IO[bytes], utc_offset_hours: float) -> None:
    frame.write_csv(
        fh,
        include_header=False,
        datetime_format=CSV_TIME_FORMAT + offset_text(utc_offset_hours),
        float_scientific=False,
        float_precision=None,
        null_value="",
    )


def column_frame(columns: Sequence[Column]) -> pl.DataFrame:
    """Catalog columns by index: col, point, measurement_type, height_m, statistic."""
    return pl.DataFrame(
        {
            COL: list(range(len(columns))),
            "point": [c.point for c in columns],
            "measurement_type": [c.measurement_type for c in columns],
            "height_m": [c.height_m for c in columns],
            "statistic": [c.statistic for c in columns],
        },
        schema={
            COL: pl.UInt32,
            "point": pl.String,
            "measurement_type": pl.String,
            "height_m": pl.Float64,
            "statistic": pl.String,
        },
    )


def to_long(chunk: pl.DataFrame, columns: pl.DataFrame, station: str) -> pl.DataFrame:
    """A chunk (timestamp, col, value, flags) as long rows in :data:`LONG_COLUMNS`."""
    return (
        sort_chunk(chunk)
        .join(columns, on=COL, how="left", maintain_order="left")
        .with_columns(pl.lit(station, pl.String).alias("station"))
        .select(LONG_COLUMNS)
    )


def _csv_bytes(frame: pl.DataFrame, utc_offset_hours: float) -> bytes:
    buf = io.BytesIO()
    _write_csv(frame, buf, utc_offset_hours)
    return buf.getvalue()


def csv_wide_header(columns: Sequence[Column]) -> bytes:
    """The header line of a wide CSV."""
    buf = io.BytesIO()
    labels = [c.label for c in columns]
    pl.DataFrame(schema={TIMESTAMP: pl.String, **dict.fromkeys(labels, pl.String)}).write_csv(
        buf, include_header=True
    )
    return buf.getvalue()


def render_csv_wide(wide: pl.DataFrame, labels: Sequence[str], utc_offset_hours: float) -> bytes:
    """The lines of a wide frame in a wide CSV."""
    if wide.height == 0:
        return b""
    return _csv_bytes(wide.select(TIMESTAMP, *labels), utc_offset_hours)


def csv_long_header() -> bytes:
    """The header line of a long CSV."""
    buf = io.BytesIO()
    pl.DataFrame(schema=dict.fromkeys(LONG_COLUMNS, pl.String)).write_csv(buf, include_header=True)
    return buf.getvalue()


def render_csv_long(
    chunk: pl.DataFrame, columns: pl.DataFrame, station: str, utc_offset_hours: float
) -> bytes:
    """The lines of a chunk (timestamp, col, value, flags) in a long CSV."""
    if chunk.height == 0:
        return b""
    long = to_long(chunk, columns, station).with_columns(
        pl.when(pl.col("flags").list.len() > 0).then(pl.col("flags").list.join(FLAG_SEPARATOR))
    )
    return _csv_bytes(long, utc_offset_hours)


class CsvWideWriter:
    """Wide CSV: the header at once, then wide chunks."""

    def __init__(self, fh: IO[bytes], columns: Sequence[Column], utc_offset_hours: float) -> None:
        self.fh = fh
        self.labels = [c.label for c in columns]
        self.utc_offset_hours = utc_offset_hours
        self.rows = 0
        empty = pl.DataFrame(schema={TIMESTAMP: pl.String, **dict.fromkeys(self.labels, pl.String)})
        empty.write_csv(fh, include_header=True)

    def write(self, wide: pl.DataFrame) -> None:
        if wide.height == 0:
            return
        _write_csv(wide.select(TIMESTAMP, *self.labels), self.fh, self.utc_offset_hours)
        self.rows += wide.height


class CsvLongWriter:
    """Long CSV: one line per reading."""

    def __init__(
        self, fh: IO[bytes], columns: Sequence[Column], station: str, utc_offset_hours: float
    ) -> None:
        self.fh = fh
        self.columns = column_frame(columns)
        self.station = station
        self.utc_offset_hours = utc_offset_hours
        self.rows = 0
        pl.DataFrame(schema=dict.fromkeys(LONG_COLUMNS, pl.String)).write_csv(
            fh, include_header=True
        )

    def write(self, chunk: pl.DataFrame) -> None:
        if chunk.height == 0:
            return
        long = to_long(chunk, self.columns, self.station).with_columns(
            pl.when(pl.col("flags").list.len() > 0).then(pl.col("flags").list.join(FLAG_SEPARATOR))
        )
        _write_csv(long, self.fh, self.utc_offset_hours)
        self.rows += long.height


def _meta(values: Mapping[str, object]) -> dict[bytes, bytes]:
    return {
        f"stationkit.{k}".encode(): (v if isinstance(v, str) else json.dumps(v)).encode()
        for k, v in values.items()
        if v is not None
    }


def _time_type(utc: bool) -> pa.DataType:
    return pa.timestamp("us", tz="UTC") if utc else pa.timestamp("us")


class _ParquetWriter:
    """Writes fixed-size row groups whatever the chunks it is fed, so that
    the bytes depend on the rows only."""

    def __init__(self, path: Path, schema: pa.Schema, utc: bool, row_group_rows: int) -> None:
        self.schema = schema
        self.utc = utc
        self.rows = 0
        self.row_group_rows = row_group_rows
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.writer = pq.ParquetWriter(
            path,
            schema,
            compression="zstd",
            compression_level=3,
            write_statistics=True,
            store_schema=True,
        )

    def _append(self, frame: pl.DataFrame) -> None:
        if self.utc:
            frame = frame.with_columns(pl.col(TIMESTAMP).dt.replace_time_zone("UTC"))
        table = frame.to_arrow()
        table = pa.Table.from_arrays(
            [table.column(i).cast(self.schema.field(i).type) for i in range(table.num_columns)],
            schema=self.schema,
        )
        self.pending.append(table)
        self.pending_rows += table.num_rows
        self.rows += frame.height
        if self.pending_rows >= self.row_group_rows:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        n = self.row_group_rows
        done = 0
        while table.num_rows - done >= n or (final and done < table.num_rows):
            self.writer.write_table(table.slice(done, n), row_group_size=n)
            done += min(n, table.num_rows - done)
        rest = table.slice(done)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def close(self) -> None:
        self._flush(final=True)
        self.writer.close()


class ParquetWideWriter(_ParquetWriter):
    """Wide Parquet: ``timestamp`` + one float64 column per label."""

    def __init__(
        self, path: Path, columns: Sequence[Column], *, utc: bool, metadata: Mapping[str, object]
    ) -> None:
        self.labels = [c.label for c in columns]
        fields = [pa.field(TIMESTAMP, _time_type(utc), nullable=False)]
        for c in columns:
            fields.append(
                pa.field(
                    c.label,
                    pa.float64(),
                    metadata=_meta(
                        {
                            "point": c.point,
                            "measurement_type": c.measurement_type,
                            "height_m": c.height_m,
                            "statistic": c.statistic,
                        }
                    ),
                )
            )
        rows = max(4096, WIDE_ROW_GROUP_CELLS // (len(columns) + 1))
        super().__init__(path, pa.schema(fields, metadata=_meta(metadata)), utc, rows)

    def write(self, wide: pl.DataFrame) -> None:
        if wide.height:
            self._append(wide.select(TIMESTAMP, *self.labels))


class ParquetLongWriter(_ParquetWriter):
    """Long Parquet: :data:`LONG_COLUMNS`, flags as list<string>."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[Column],
        station: str,
        *,
        utc: bool,
        metadata: Mapping[str, object],
    ) -> None:
        self.columns = column_frame(columns)
        self.station = station
        schema = pa.schema(
            [
                pa.field("station", pa.string(), nullable=False),
                pa.field(TIMESTAMP, _time_type(utc), nullable=False),
                pa.field("point", pa.string(), nullable=False),
                pa.field("measurement_type", pa.string()),
                pa.field("height_m", pa.float64()),
                pa.field("statistic", pa.string()),
                pa.field("value", pa.float64()),
                pa.field("flags", pa.list_(pa.string())),
            ],
            metadata=_meta(metadata),
        )
        super().__init__(path, schema, utc, ROW_GROUP_ROWS)

    def write(self, chunk: pl.DataFrame) -> None:
        if chunk.height:
            self._append(to_long(chunk, self.columns, self.station))
