"""Small readings files and stations for the calibrate tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from stationkit.calibrate.engine import (
    CLEAN_SCHEMA,
    EngineResult,
    ReadingsFile,
    calibrate_readings,
)
from stationkit.calibrate.flags import FlagInterval
from stationkit.calibrate.metadata import ChannelFacts, Segment, StationMetadata, resolve_segments
from stationkit.calibrate.qc import QcConfig
from stationkit.parsers.base import ChannelInfo
from stationkit.store import write_readings

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TEN = timedelta(minutes=10)
NO_QC = QcConfig(enabled=False)


def stamps(n: int, start: datetime = T0, step: timedelta = TEN) -> list[datetime]:
    return [start + i * step for i in range(n)]


def readings_file(
    folder: Path,
    file_id: int,
    times: Sequence[datetime],
    columns: Mapping[str, Sequence[float | None]],
    *,
    statistics: Mapping[str, str | None] | None = None,
    offset_hours: float = 0.0,
    duplicates: bool = False,
) -> ReadingsFile:
    """Write a lake/readings file (the real store) and describe it like the ledger."""
    stats = statistics or {}
    channels = [ChannelInfo(name, statistic=stats.get(name)) for name in columns]
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(list(times), dtype=pl.Datetime("us", "UTC")),
            **{name: pl.Series(list(v), dtype=pl.Float64) for name, v in columns.items()},
        }
    )
    path = folder / f"part-{file_id:09d}.parquet"
    n = write_readings(path, "S1", file_id, frame, channels)
    return ReadingsFile(
        file_id=file_id,
        path=path,
        first_ts=min(times) if times else None,
        last_ts=max(times) if times else None,
        readings=n,
        utc_offset_hours=offset_hours,
        duplicate_timestamps=duplicates,
        channels=tuple((c.name, c.statistic) for c in channels),
    )


def facts(files: Sequence[ReadingsFile]) -> dict[str, ChannelFacts]:
    return {name: ChannelFacts(name, statistic=stat) for f in files for name, stat in f.channels}


def build(
    tmp_path: Path,
    files: Sequence[ReadingsFile],
    meta: StationMetadata | None = None,
    *,
    intervals: Sequence[FlagInterval] = (),
    qc: QcConfig = NO_QC,
    segments: Sequence[Segment] | None = None,
    name: str = "clean",
    **kwargs: Any,
) -> tuple[pl.DataFrame, EngineResult]:
    """Run the engine into ``tmp_path/clean/<name>/``; return every month's
    rows (in month order) and the result."""
    if segments is None:
        segments, _ = resolve_segments(meta or StationMetadata(), facts(files))
    out = tmp_path / "clean" / name
    result = calibrate_readings(
        "S1", files, segments, intervals, qc, out, data_dir=tmp_path / "data", **kwargs
    )
    return read_months(out), result


def read_months(folder: Path) -> pl.DataFrame:
    """Every month file of a lake/clean folder, in month order, as one frame."""
    parts = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not parts:
        return pl.from_arrow(CLEAN_SCHEMA.empty_table())  # type: ignore[return-value]
    return pl.concat([pl.from_arrow(pq.read_table(p)) for p in parts])  # type: ignore[misc]


def value_at(df: pl.DataFrame, point: str, statistic: str | None, when: datetime) -> Any:
    rows = df.filter(
        (pl.col("point") == point)
        & (pl.col("statistic").eq_missing(statistic))
        & (pl.col("timestamp") == when)
    )
    assert rows.height == 1, rows
    return rows.row(0, named=True)
