"""lake/clean files: one Parquet file per station and month, and what each holds.

Columns are DESIGN's clean schema (:data:`CLEAN_SCHEMA`) but ``station``,
which the folder name carries (``station=<id>``, Hive partitioning): pandas,
pyarrow.dataset, polars and DuckDB then read ``lake/clean`` from its root as
one dataset with a ``station`` column (docs/lake.md). Rows are sorted by
time, then point and statistic; row groups hold exactly
:data:`ROW_GROUP_ROWS` rows (the last one fewer), zstd, data page V2,
dictionary-encoded text and values, no wall-clock metadata: the same rows
give the same bytes.

Each file's footer carries a summary (key ``stationkit.summary``, JSON) so
that exports and reports learn a month's columns, time range and flags
without reading its rows::

    {"rows": 4464, "flagged": 12, "flags": ["qc_spike"],
     "columns": [["WS80", "avg", "wind_speed", 80.0, 4464, "2024-01-01T00:00:00.000000Z",
                  "2024-01-31T23:50:00.000000Z", ["qc_spike"]], ...]}

``columns`` has one entry per (point, statistic, measurement type, height):
the number of rows, the first and last period start [UTC], the flags that
hit any of its values, and the decimals the logger wrote its values with
(the most any raw value needs, up to :data:`MAX_DECIMALS`; null without
values): what exports may round calibrated values to.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stationkit.atomic import commit, temp_path
from stationkit.calibrate.qc import QC_BITS
from stationkit.calibrate.query import QC_SPAN
from stationkit.errors import CalibrateError

#: rows per Parquet row group
ROW_GROUP_ROWS = 1 << 18
#: the footer key of a partition's summary
SUMMARY_KEY = b"stationkit.summary"
#: decimals counted in raw values (more: a computed value, not a logged one)
MAX_DECIMALS = 10

#: the columns of a file; readers of the folder add ``station`` from ``station=<id>``
CLEAN_SCHEMA = pa.schema(
    [
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("point", pa.string(), nullable=False),
        pa.field("measurement_type", pa.string()),
        pa.field("height_m", pa.float64()),
        pa.field("statistic", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("raw_value", pa.float64()),
        pa.field(
            "flags", pa.list_(pa.field("element", pa.string(), nullable=False)), nullable=False
        ),
        pa.field("file_id", pa.int64(), nullable=False),
    ]
)
_FLAGS_TYPE = CLEAN_SCHEMA.field("flags").type

#: what is handed to the writer: text columns as dictionaries (written as plain
#: Parquet strings; no Arrow schema is stored, so readers see CLEAN_SCHEMA)
WRITE_SCHEMA = pa.schema(
    [
        f.with_type(pa.dictionary(pa.int32(), pa.string())) if f.type == pa.string() else f
        for f in CLEAN_SCHEMA
    ]
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parquet_writer(path: Path) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path,
        WRITE_SCHEMA,
        store_schema=False,
        compression="zstd",
        compression_level=1,  # level 3 buys nothing here and costs encode time
        use_dictionary=[
            "point", "measurement_type", "height_m", "statistic", "value",
            "raw_value", "flags.list.element",
        ],
        column_encoding={"timestamp": "DELTA_BINARY_PACKED", "file_id": "DELTA_BINARY_PACKED"},
        write_statistics=True,
        data_page_version="2.0",
        write_page_index=False,
    )  # fmt: skip


@dataclass(frozen=True)
class SegmentColumns:
    """Per segment id: the output columns it stands for."""

    point: pa.DictionaryArray
    measurement_type: pa.DictionaryArray
    statistic: pa.DictionaryArray
    height_m: pa.Array

    def key(self, sid: int) -> tuple[str, str | None, str | None, float | None]:
        def label(d: pa.DictionaryArray) -> Any:
            i = d.indices[sid].as_py()
            return None if i is None else d.dictionary[i].as_py()

        return (
            label(self.point),
            label(self.statistic),
            label(self.measurement_type),
            self.height_m[sid].as_py(),
        )


class FlagNames:
    """Turns flag keys (manual flag set id * 16 + QC bits) into sorted flag-name lists."""

    def __init__(self, sets: Sequence[tuple[str, ...]]) -> None:
        self.sets = list(sets)
        self.cache: dict[int, list[str]] = {}

    def names(self, key: int) -> list[str]:
        found = self.cache.get(key)
        if found is None:
            fid, bits = divmod(key, QC_SPAN)
            names = set(self.sets[fid - 1]) if fid else set()
            names.update(n for n, b in QC_BITS.items() if bits & b)
            found = self.cache[key] = sorted(names)
        return found

    def column(self, keys: pa.Array) -> pa.Array:
        n = len(keys)
        if n == 0 or pc.max(keys).as_py() == 0:
            offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
            return pa.ListArray.from_arrays(offsets, pa.array([], pa.string())).cast(_FLAGS_TYPE)
        unique = pc.unique(keys)
        lists = pa.array([self.names(k) for k in unique.to_pylist()], _FLAGS_TYPE)
        return pc.take(lists, pc.index_in(keys, value_set=unique))


@dataclass
class Summary:
    """What one partition holds, gathered batch by batch."""

    rows: int = 0
    flagged: int = 0
    #: segment id -> [rows, first us, last us]
    by_segment: dict[int, list[int]] = field(default_factory=dict)
    #: segment id -> the flag keys of its flagged rows
    fkeys: dict[int, set[int]] = field(default_factory=dict)
    #: segment id -> the most decimals a raw value needs
    decimals: dict[int, int] = field(default_factory=dict)

    def add(
        self, sid: np.ndarray, stamps_us: np.ndarray, fkeys: np.ndarray, raw: np.ndarray
    ) -> None:
        """Count a batch of rows (in any order): segment ids, period starts [us], flag
        keys, raw values (NaN for null)."""
        if len(sid) == 0:
            return
        places = decimals_of(raw)
        known = places >= 0
        if known.any():
            top = np.full(int(sid.max()) + 1, -1, dtype=np.int64)
            np.maximum.at(top, sid[known], places[known])
            for i in np.flatnonzero(top >= 0).tolist():
                self.decimals[i] = max(self.decimals.get(i, 0), int(top[i]))
        self.rows += len(sid)
        hit = fkeys != 0
        flagged = int(np.count_nonzero(hit))
        self.flagged += flagged
        if flagged:
            pairs = np.unique(np.stack([sid[hit], fkeys[hit]]), axis=1)
            for s, k in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
                self.fkeys.setdefault(s, set()).add(k)
        size = int(sid.max()) + 1
        counts = np.bincount(sid, minlength=size)
        lo = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
        hi = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(lo, sid, stamps_us)
        np.maximum.at(hi, sid, stamps_us)
        for i in np.flatnonzero(counts).tolist():
            n, a, b = int(counts[i]), int(lo[i]), int(hi[i])
            entry = self.by_segment.get(i)
            if entry is None:
                self.by_segment[i] = [n, a, b]
            else:
                entry[0] += n
                entry[1] = min(entry[1], a)
                entry[2] = max(entry[2], b)

    def document(self, segments: SegmentColumns, flags: FlagNames) -> dict[str, Any]:
        merged: dict[tuple[str, str | None, str | None, float | None], list[Any]] = {}
        for sid, (n, lo, hi) in self.by_segment.items():
            key = segments.key(sid)
            names = {f for k in self.fkeys.get(sid, ()) for f in flags.names(k)}
            places = self.decimals.get(sid, -1)
            entry = merged.get(key)
            if entry is None:
                merged[key] = [n, lo, hi, names, places]
            else:
                merged[key] = [
                    entry[0] + n, min(entry[1], lo), max(entry[2], hi), entry[3] | names,
                    max(entry[4], places),
                ]  # fmt: skip
        every = sorted({f for e in merged.values() for f in e[3]})
        columns = [
            [point, stat, mtype, height, n, _iso(lo), _iso(hi), sorted(hit), _places(places)]
            for (point, stat, mtype, height), (n, lo, hi, hit, places) in sorted(
                merged.items(), key=lambda kv: _sort_key(kv[0])
            )
        ]
        return {"rows": self.rows, "flagged": self.flagged, "flags": every, "columns": columns}


def _places(places: int) -> int | None:
    return None if places < 0 else places


def decimals_of(values: np.ndarray) -> np.ndarray:
    """Per value, the fewest decimals that write it exactly (as a logger printed
    it: ``8.37`` -> 2, ``12`` -> 0); -1 for NaN, infinities and values needing
    more than :data:`MAX_DECIMALS`."""
    out = np.full(len(values), -1, dtype=np.int64)
    left = np.isfinite(values)
    for d in range(MAX_DECIMALS + 1):
        if not left.any():
            break
        scaled = values[left] * 10.0**d
        exact = np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))
        idx = np.flatnonzero(left)[exact]
        out[idx] = d
        left[idx] = False
    return out


def _sort_key(key: tuple[str, str | None, str | None, float | None]) -> tuple[Any, ...]:
    point, stat, mtype, height = key
    return (point, stat or "", mtype or "", -1e300 if height is None else height)


def _iso(us: int) -> str:
    return f"{_EPOCH + timedelta(microseconds=us):%Y-%m-%dT%H:%M:%S.%f}Z"


def read_summary(path: Path) -> dict[str, Any]:
    """The summary in a partition's footer; raises CalibrateError when it has none."""
    md = pq.read_metadata(path).metadata or {}
    text = md.get(SUMMARY_KEY)
    if text is None:
        raise CalibrateError(
            f"{path}: no stationkit summary in the footer; rebuild it with `stationkit calibrate`"
        )
    found: dict[str, Any] = json.loads(text)
    return found


class PartitionWriter:
    """Writes one partition file atomically, in fixed row groups, with its summary."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.summary = Summary()
        target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_path(target)
        self._writer = _parquet_writer(self._tmp)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= ROW_GROUP_ROWS:
            merged = pa.concat_tables(self._pending)
            self._writer.write_table(merged.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
            rest = merged.slice(ROW_GROUP_ROWS)
            self._pending = [rest] if rest.num_rows else []
            self._pending_rows = rest.num_rows

    def close(self, summary: dict[str, Any]) -> None:
        """Write the rest and the summary; the file appears at its target."""
        try:
            if self._pending:
                self._writer.write_table(
                    pa.concat_tables(self._pending), row_group_size=ROW_GROUP_ROWS
                )
            self._writer.add_key_value_metadata(
                {SUMMARY_KEY: json.dumps(summary, sort_keys=True, separators=(",", ":"))}
            )
            self._writer.close()
            commit(self._tmp, self.target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

    def abort(self) -> None:
        """Leave the target as it was; the temporary file is removed."""
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()
