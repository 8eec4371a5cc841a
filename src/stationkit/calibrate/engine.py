"""The calibration query: lake/readings + metadata + flags + QC -> lake/clean.

DuckDB SQL, streamed into one Parquet file per station:

1. **read** the station's current readings files (``read_parquet``);
2. **map** each reading to its point by a range join on the channel's exact
   name and the reading's logger-local time against the segments of
   :func:`~stationkit.calibrate.metadata.resolve_segments` (a channel without
   metadata at that time is its own point);
3. **transform** by statistic: ``cal_slope * ((logged - logger_offset) /
   logger_slope) + cal_offset`` for avg/min/max/gust/median/...,
   ``logged * cal_slope / logger_slope`` for sd/range, nothing for the rest;
4. **deduplicate**: one value per (station, point, statistic, timestamp);
5. **flag**: a range join against the merged manual flag intervals, an
   equality join against the QC hits (computed first, in their own query over
   the whole station so that windows see across chunks), and the QC range
   test. SQL carries the flags as one integer per row (manual flag set and QC
   bits); Python turns it into the sorted ``list<string>`` while writing.

Deduplication rule: among the readings of one key, prefer a non-null value,
then the file whose data reach the latest time (``last_ts`` in the ledger: a
later download of an overlapping period), then the higher ``file_id``, then
the later row in that file. Every part of the rule derives from file content
(file ids are content hashes), so a rebuild from raw/ picks the same values.
Only files that can hold duplicates pay for the window: files whose time
spans overlap another file's, files in which the parse stage found repeated
timestamps, and files with a channel that a metadata column of another name
also maps onto. The rest stream straight through.

Logger-local time: readings are stored as UTC period starts; a reading's
local time is that plus the UTC offset its file was converted with (the
parse stage's resolved offset). Period bounds are compared with the local
*period start*, half-open, so a reading exactly on a boundary belongs to the
later period only. When every file has the same offset, the bounds are moved
to UTC once instead of shifting every reading.

Order and determinism: the same inputs give byte-identical files (fixed row
groups of 2**18 rows, zstd, Parquet data page V2, no wall-clock metadata).
The files are cut into chunks of about :data:`CHUNK_READINGS` readings at
points where no file overlaps the next in time, and chunks are written in
time order. A chunk of short files (a day, a month) is streamed in the order
of its files -- sorted by first timestamp -- and, within a file, about as
the readings store has it (channel by channel). Such chunks run on one DuckDB
thread: its output order is a function of the input alone, while with several
threads the hash joins' output order depends on scheduling. Parquet encoding
(single-threaded in pyarrow, the bottleneck) runs beside it on a second
thread. A chunk holding a file that spans more than
:data:`LONG_FILE` (a years-long logger export, stored channel by channel) is
sorted by time, then (point, statistic), on every thread: row groups then
cover short time ranges and exports read only those of the months they need.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stationkit.atomic import atomic_output
from stationkit.calibrate import qc as qcmod
from stationkit.calibrate.flags import ALL, FlagInterval
from stationkit.calibrate.metadata import Segment
from stationkit.calibrate.qc import QC_BITS, QC_RANGE, QcConfig
from stationkit.errors import CalibrateError
from stationkit.sql import connect, quote_identifier

log = logging.getLogger(__name__)

#: bump when the query or the output layout changes: stations are rebuilt
ENGINE_VERSION = "1"
#: rows per Parquet row group (exports skip row groups by their time range)
ROW_GROUP_ROWS = 1 << 18
#: rows per Arrow batch from DuckDB
BATCH_ROWS = 1 << 15
#: readings per chunk (bounds a sorted chunk's memory)
CHUNK_READINGS = 1_000_000
#: files spanning more than this are sorted by time (their rows come channel by channel)
LONG_FILE = timedelta(days=32)
#: avg rows per QC window query (the windows sort them by point and time)
QC_GROUP_ROWS = 3_000_000
#: DuckDB's working memory for a build; the process peaks at about twice this
MEMORY_LIMIT = "192MB"
#: open period bounds, far enough from any data and from datetime's limits
OPEN_START = datetime(1000, 1, 1, tzinfo=UTC)
OPEN_END = datetime(9000, 1, 1, tzinfo=UTC)
#: the flag key of a row: manual flag set id * 16 + QC bits
_QC_SPAN = 16

CLEAN_SCHEMA = pa.schema(
    [
        pa.field("station", pa.string(), nullable=False),
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


@dataclass(frozen=True)
class ReadingsFile:
    """One current readings file and what the ledger says about it."""

    file_id: int
    path: Path
    #: first and last period start in the file (UTC); None for a file without rows
    first_ts: datetime | None
    last_ts: datetime | None
    #: number of readings (rows x channels)
    readings: int = 0
    #: the UTC offset the parse stage converted its labels with [h]
    utc_offset_hours: float = 0.0
    #: the parse stage kept rows with the same timestamp and different values
    duplicate_timestamps: bool = False
    #: (channel, statistic) of every channel in the file
    channels: tuple[tuple[str, str | None], ...] = ()


@dataclass
class EngineResult:
    """What a build wrote."""

    rows: int = 0
    flagged: int = 0
    points: int = 0
    qc_hits: int = 0
    deduplicated_files: int = 0
    chunks: int = 0
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None


@dataclass(frozen=True)
class Chunk:
    """Files read together; no file of a chunk overlaps a file of another chunk."""

    plain: tuple[str, ...]
    dedupe: tuple[str, ...]
    #: a file spans more than LONG_FILE: sort the chunk's rows by time
    ordered: bool = False


def _components(files: Sequence[ReadingsFile]) -> list[list[ReadingsFile]]:
    """Files (with rows) grouped by overlapping time spans, in time order."""
    groups: list[list[ReadingsFile]] = []
    end: datetime | None = None
    for f in sorted(
        (f for f in files if f.first_ts is not None and f.last_ts is not None),
        key=lambda f: (f.first_ts, f.file_id),
    ):
        assert f.first_ts is not None and f.last_ts is not None
        if groups and end is not None and f.first_ts <= end:
            groups[-1].append(f)
            end = max(end, f.last_ts)
        else:
            groups.append([f])
            end = f.last_ts
    return groups


def plan_dedupe(files: Sequence[ReadingsFile], segments: Sequence[Segment]) -> set[int]:
    """Ids of the files whose rows can share a (point, statistic, timestamp) key."""
    mapped = {
        (s.point, s.statistic)
        for s in segments
        if s.statistic is not None and not s.ignored and s.channel != s.point
    }
    need: set[int] = set()
    for f in files:
        if f.duplicate_timestamps or any(
            stat is not None and (name, stat) in mapped for name, stat in f.channels
        ):
            need.add(f.file_id)
    for group in _components(files):
        if len(group) > 1:
            need.update(f.file_id for f in group)
    return need


def plan_chunks(
    files: Sequence[ReadingsFile], dedupe: set[int], target: int = CHUNK_READINGS
) -> list[Chunk]:
    """Consecutive groups of time components of about ``target`` readings each."""
    chunks: list[Chunk] = []
    current: list[ReadingsFile] = []
    size = 0
    for group in _components(files):
        current.extend(group)
        size += sum(max(f.readings, 1) for f in group)
        if size >= target:
            chunks.append(_chunk(current, dedupe))
            current, size = [], 0
    if current:
        chunks.append(_chunk(current, dedupe))
    return chunks


def _chunk(files: list[ReadingsFile], dedupe: set[int]) -> Chunk:
    return Chunk(
        plain=tuple(str(f.path) for f in files if f.file_id not in dedupe),
        dedupe=tuple(str(f.path) for f in files if f.file_id in dedupe),
        ordered=any(
            f.first_ts is not None and f.last_ts is not None and f.last_ts - f.first_ts > LONG_FILE
            for f in files
        ),
    )


# ---------------------------------------------------------------- tables


def _bound(d: datetime | None, default: datetime, shift: timedelta) -> datetime:
    if d is None:
        return default
    return d.replace(tzinfo=UTC) - shift


@dataclass(frozen=True)
class _Plan:
    """The segments as the query sees them, and what a segment id stands for."""

    #: one row per segment id: the DuckDB ``seg`` table
    table: pa.Table
    #: per segment id: point, measurement type, height, statistic (output columns)
    point: pa.DictionaryArray
    measurement_type: pa.DictionaryArray
    statistic: pa.DictionaryArray
    height_m: pa.Array
    #: (point, statistic or "") -> rank (sort key); point -> point id
    pkey: dict[tuple[str, str], int]
    ptid: dict[str, int]


def _dictionary(values: list[str | None]) -> pa.DictionaryArray:
    labels = sorted({v for v in values if v is not None})
    index = {v: i for i, v in enumerate(labels)}
    return pa.DictionaryArray.from_arrays(
        pa.array([None if v is None else index[v] for v in values], pa.int32()),
        pa.array(labels, pa.string()),
    )


def _plan(
    segments: Sequence[Segment],
    files: Sequence[ReadingsFile],
    shift: timedelta,
    qc: QcConfig,
) -> _Plan:
    """Expand identity segments per reading statistic and number everything.

    A segment without a statistic of its own (identity) keeps the reading's;
    it is expanded into one segment per statistic the channel has in the
    files, so that every output column follows from the segment id alone.
    """
    seen: dict[str, set[str | None]] = {}
    for f in files:
        for name, stat in f.channels:
            seen.setdefault(name, set()).add(stat)
    expanded: list[tuple[Segment, str | None, bool]] = []  # segment, statistic, match it
    for seg in segments:
        if seg.statistic is not None or seg.ignored:
            expanded.append((seg, seg.statistic, False))
        else:
            for stat in sorted(seen.get(seg.channel, {None}), key=lambda x: x or ""):
                expanded.append((seg, stat, True))
    pkeys = sorted({(seg.point, stat or "") for seg, stat, _ in expanded})
    pkey = {k: i for i, k in enumerate(pkeys)}
    ptid = {p: i for i, p in enumerate(sorted({seg.point for seg, _, _ in expanded}))}
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "channel", "rstat", "rstat_match", "f", "t", "kind", "ls", "lo", "cs", "co",
            "ignored", "range_lo", "range_hi", "pkey", "ptid", "measurement_type", "stat", "qst",
        )
    }  # fmt: skip
    for seg, stat, match in expanded:
        rng = qc.range_for(seg.measurement_type, stat)
        cols["channel"].append(seg.channel)
        cols["rstat"].append(stat if match else None)
        cols["rstat_match"].append(match)
        cols["f"].append(_bound(seg.date_from, OPEN_START, shift))
        cols["t"].append(_bound(seg.date_to, OPEN_END, shift))
        cols["kind"].append("wrap" if seg.wrap else seg.kind)
        cols["ls"].append(seg.logger_slope)
        cols["lo"].append(seg.logger_offset)
        cols["cs"].append(seg.cal_slope)
        cols["co"].append(seg.cal_offset)
        cols["ignored"].append(seg.ignored)
        cols["range_lo"].append(rng[0] if rng else None)
        cols["range_hi"].append(rng[1] if rng else None)
        cols["pkey"].append(pkey[(seg.point, stat or "")])
        cols["ptid"].append(ptid[seg.point])
        cols["measurement_type"].append(seg.measurement_type)
        cols["stat"].append(stat)
        cols["qst"].append(qcmod.AVG if stat == "avg" else qcmod.SD if stat == "sd" else 0)
    ts = pa.timestamp("us", tz="UTC")
    f64, i64, text = pa.float64(), pa.int64(), pa.string()
    schema = pa.schema(
        [
            ("channel", text), ("rstat", text), ("rstat_match", pa.bool_()), ("f", ts),
            ("t", ts), ("kind", text), ("ls", f64), ("lo", f64), ("cs", f64), ("co", f64),
            ("ignored", pa.bool_()), ("range_lo", f64), ("range_hi", f64), ("pkey", i64),
            ("ptid", i64), ("measurement_type", text), ("stat", text), ("qst", i64),
        ]
    )  # fmt: skip
    table = pa.table(cols, schema=schema).append_column("sid", pa.array(range(len(expanded)), i64))
    return _Plan(
        table=table,
        point=_dictionary([seg.point for seg, _, _ in expanded]),
        measurement_type=_dictionary([seg.measurement_type for seg, _, _ in expanded]),
        statistic=_dictionary([stat for _, stat, _ in expanded]),
        height_m=pa.array([seg.height_m for seg, _, _ in expanded], f64),
        pkey=pkey,
        ptid=ptid,
    )


def _intervals_table(
    intervals: Sequence[FlagInterval], plan: _Plan, shift: timedelta
) -> tuple[pa.Table, list[tuple[str, ...]]]:
    """The intervals by point id and statistic key (-1: every statistic), with a
    flag-set id (1-based) each, and the flag sets."""
    sets: dict[tuple[str, ...], int] = {}
    rows: list[tuple[int, int, datetime, datetime, int]] = []
    for i in intervals:
        if i.point not in plan.ptid:
            continue
        if i.statistic == ALL:
            key = -1
        else:
            found = plan.pkey.get((i.point, i.statistic))
            if found is None:
                continue
            key = found
        fid = sets.setdefault(i.flags, len(sets) + 1)
        rows.append(
            (
                plan.ptid[i.point],
                key,
                _bound(i.start, OPEN_START, shift),
                _bound(i.end, OPEN_END, shift),
                fid,
            )
        )
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "ptid": pa.array([r[0] for r in rows], pa.int64()),
            "pkey": pa.array([r[1] for r in rows], pa.int64()),
            "f": pa.array([r[2] for r in rows], ts),
            "t": pa.array([r[3] for r in rows], ts),
            "fid": pa.array([r[4] for r in rows], pa.int64()),
        }
    )
    return table, list(sets)


def _load(con: Any, name: str, table: pa.Table) -> None:
    """Copy an Arrow table into a DuckDB temp table (names are ours, not user text)."""
    con.register("_arrow_in", table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_identifier(name)} AS SELECT * FROM _arrow_in")
    con.unregister("_arrow_in")


# ---------------------------------------------------------------- SQL

_VALUE = """CASE s.kind
        WHEN 'full' THEN s.cs * ((r.value - s.lo) / s.ls) + s.co
        WHEN 'wrap' THEN (s.cs * ((r.value - s.lo) / s.ls) + s.co)
            - 360 * floor((s.cs * ((r.value - s.lo) / s.ls) + s.co) / 360)
        WHEN 'ratio' THEN r.value * (s.cs / s.ls)
        ELSE r.value END"""


def _mapped(source: str, *, shifted: bool, dedupe: bool, qc_only: bool) -> str:
    """Readings of ``source`` mapped to segments and transformed (one row per reading)."""
    ct = "(r.timestamp + to_microseconds(o.shift_us))" if shifted else "r.timestamp"
    offsets = "JOIN file_offsets o ON o.file_id = r.file_id" if shifted else ""
    rank = "JOIN file_rank k ON k.file_id = r.file_id" if dedupe else ""
    extra = ", r.file_row_number AS frn, k.rank AS frank" if dedupe else ""
    if qc_only:
        columns = "s.ptid, s.qst"
        only = "AND r.channel IN (SELECT channel FROM qc_channels)"
    else:
        columns = "s.sid, s.range_lo, s.range_hi"
        only = ""
    return f"""
    SELECT r.timestamp, s.pkey, s.ptid, {columns},
        {_VALUE} AS value,
        r.value AS raw_value, r.file_id, {ct} AS ct{extra}
    FROM {source} r {offsets} {rank}
    LEFT JOIN seg s ON s.channel = r.channel
        AND (NOT s.rstat_match OR s.rstat IS NOT DISTINCT FROM r.statistic)
        AND {ct} >= s.f AND {ct} < s.t
    WHERE s.ignored IS NOT TRUE {only}"""


def _union(plain: bool, dedupe: bool, *, shifted: bool, qc_only: bool = False) -> str:
    parts: list[str] = []
    if plain:
        parts.append(
            _mapped("read_parquet($plain)", shifted=shifted, dedupe=False, qc_only=qc_only)
        )
    if dedupe:
        inner = _mapped(
            "read_parquet($dedupe, file_row_number = true)",
            shifted=shifted,
            dedupe=True,
            qc_only=qc_only,
        )
        parts.append(
            f"""
    SELECT * EXCLUDE (frn, frank) FROM ({inner}) m
    QUALIFY row_number() OVER (
        PARTITION BY pkey, timestamp
        ORDER BY raw_value IS NULL, frank DESC, frn DESC) = 1"""
        )
    return "\nUNION ALL\n".join(parts)


def clean_sql(
    *,
    plain: bool,
    dedupe: bool,
    shifted: bool,
    with_flags: bool,
    with_hits: bool,
    ordered: bool,
) -> str:
    """One chunk's query (parameters ``$plain``, ``$dedupe``).

    Columns: ``timestamp``, ``sid`` (segment id: point, measurement type,
    height and statistic follow from it), ``value``, ``raw_value``, ``fkey``
    (manual flag set id * 16 + QC bits) and ``file_id``. ``ordered``: sorted
    by time, then (point, statistic); else following the input files (an
    order that is reproducible on one DuckDB thread only).
    """
    joins = ""
    fkey = (
        f"CASE WHEN u.value < u.range_lo OR u.value > u.range_hi "
        f"THEN {QC_BITS[QC_RANGE]} ELSE 0 END"
    )
    if with_flags:
        joins += """
LEFT JOIN flag_iv f ON f.ptid = u.ptid AND (f.pkey = -1 OR f.pkey = u.pkey)
    AND u.ct >= f.f AND u.ct < f.t"""
        fkey += f" + coalesce(f.fid, 0) * {_QC_SPAN}"
    if with_hits:
        joins += """
LEFT JOIN qc_hits h ON h.point = u.ptid AND h.timestamp = u.timestamp"""
        fkey += " + coalesce(h.mask, 0)"
    return f"""
SELECT u.timestamp, u.sid, u.value, u.raw_value, ({fkey})::BIGINT AS fkey, u.file_id
FROM ({_union(plain, dedupe, shifted=shifted)}) u{joins}
{"ORDER BY u.timestamp, u.pkey, u.file_id" if ordered else ""}"""


# ---------------------------------------------------------------- writing


#: what is handed to the writer: text columns as dictionaries (written as plain
#: Parquet strings; no Arrow schema is stored, so readers see CLEAN_SCHEMA)
_WRITE_SCHEMA = pa.schema(
    [
        f.with_type(pa.dictionary(pa.int32(), pa.string())) if f.type == pa.string() else f
        for f in CLEAN_SCHEMA
    ]
)


def _writer(path: Path) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path,
        _WRITE_SCHEMA,
        store_schema=False,
        compression="zstd",
        compression_level=1,  # level 3 buys nothing here and costs encode time
        use_dictionary=[
            "station", "point", "measurement_type", "height_m", "statistic", "value",
            "raw_value", "flags.list.element",
        ],
        column_encoding={"timestamp": "DELTA_BINARY_PACKED", "file_id": "DELTA_BINARY_PACKED"},
        write_statistics=True,
        data_page_version="2.0",
        write_page_index=False,
    )  # fmt: skip


class _Flags:
    """Turns flag keys into the sorted flag-name lists of lake/clean."""

    def __init__(self, sets: Sequence[tuple[str, ...]]) -> None:
        self.sets = list(sets)
        self.cache: dict[int, list[str]] = {}

    def names(self, key: int) -> list[str]:
        found = self.cache.get(key)
        if found is None:
            fid, bits = divmod(key, _QC_SPAN)
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


class _Converter:
    """Turns a query batch into clean columns: segment ids become point,
    measurement type, height and statistic; flag keys become flag lists.
    Also keeps the counts of :class:`EngineResult`."""

    def __init__(self, station: str, plan: _Plan, flag_sets: Sequence[tuple[str, ...]]) -> None:
        self.station = station
        self.plan = plan
        self.flags = _Flags(flag_sets)
        self.station_dict = pa.array([station], pa.string())
        self.result = EngineResult()
        self.points: set[int] = set()

    def __call__(self, batch: pa.RecordBatch) -> pa.Table:
        plan, n = self.plan, batch.num_rows
        sid = batch.column("sid")
        if sid.null_count:
            raise CalibrateError(
                f"{self.station}: readings of a channel or statistic the ledger does not "
                f"list; re-parse the station's files"
            )
        keys = batch.column("fkey")
        point_idx = pc.take(plan.point.indices, sid)
        table = pa.Table.from_arrays(
            [
                pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(n, dtype=np.int32)), self.station_dict
                ),
                batch.column("timestamp"),
                pa.DictionaryArray.from_arrays(point_idx, plan.point.dictionary),
                pa.DictionaryArray.from_arrays(
                    pc.take(plan.measurement_type.indices, sid), plan.measurement_type.dictionary
                ),
                pc.take(plan.height_m, sid),
                pa.DictionaryArray.from_arrays(
                    pc.take(plan.statistic.indices, sid), plan.statistic.dictionary
                ),
                batch.column("value"),
                batch.column("raw_value"),
                self.flags.column(keys),
                batch.column("file_id"),
            ],
            schema=_WRITE_SCHEMA,
        )
        r = self.result
        r.rows += n
        r.flagged += pc.sum(pc.not_equal(keys, 0)).as_py() or 0
        self.points.update(pc.unique(point_idx).to_pylist())
        lo, hi = (v.as_py() for v in pc.min_max(batch.column("timestamp")).values())
        r.first_timestamp = lo if r.first_timestamp is None else min(lo, r.first_timestamp)
        r.last_timestamp = hi if r.last_timestamp is None else max(hi, r.last_timestamp)
        r.points = len(self.points)
        return table


def _produce(
    readers: Iterator[pa.RecordBatchReader], convert: Callable[[pa.RecordBatch], pa.Table]
) -> Iterator[pa.Table]:
    """Run the chunk queries and the conversion on a second thread, so that
    DuckDB computes the next batch while this thread encodes Parquet."""
    q: queue.Queue[pa.Table | BaseException | None] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def put(item: pa.Table | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for reader in readers:
                for batch in reader:
                    if batch.num_rows and not put(convert(batch)):
                        return
            put(None)
        except BaseException as exc:  # re-raised in the consuming thread
            put(exc)

    worker = threading.Thread(target=work, name="stationkit-calibrate-query", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def write_clean(tables: Iterator[pa.Table], target: Path) -> None:
    """Write ``tables`` (``_WRITE_SCHEMA``) to ``target`` atomically, in row
    groups of exactly ROW_GROUP_ROWS rows (the last one shorter)."""
    with atomic_output(target) as tmp:
        writer = _writer(tmp)
        try:
            pending: list[pa.Table] = []
            pending_rows = 0
            written = False
            for table in tables:
                pending.append(table)
                pending_rows += table.num_rows
                while pending_rows >= ROW_GROUP_ROWS:
                    merged = pa.concat_tables(pending)
                    writer.write_table(
                        merged.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS
                    )
                    written = True
                    rest = merged.slice(ROW_GROUP_ROWS)
                    pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
            if pending:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
            elif not written:
                writer.write_table(_WRITE_SCHEMA.empty_table())
        finally:
            writer.close()


# ---------------------------------------------------------------- the build


def _cover_channels(segments: Sequence[Segment], files: Sequence[ReadingsFile]) -> list[Segment]:
    """Segments plus identity ones for channels the segments do not know at all."""
    known = {s.channel for s in segments}
    extra = sorted({name for f in files for name, _ in f.channels} - known)
    return [
        *segments,
        *(Segment(n, n, None, None, None, None, None) for n in extra),
    ]


def calibrate_readings(
    station: str,
    files: Sequence[ReadingsFile],
    segments: Sequence[Segment],
    intervals: Sequence[FlagInterval],
    qc: QcConfig,
    output: Path,
    *,
    data_dir: Path,
    temperature_point: str | None = None,
    memory_limit: str = MEMORY_LIMIT,
    threads: int | None = None,
    chunk_readings: int = CHUNK_READINGS,
) -> EngineResult:
    """Build ``output`` (lake/clean Parquet) from readings, segments, flags and QC.

    ``segments`` should cover every channel (see ``resolve_segments``; channels
    it does not know become their own points); ``intervals`` are merged flag
    intervals in logger time. The file appears atomically; the same inputs
    give the same bytes.
    """
    with_rows = [f for f in files if f.first_ts is not None]
    missing = [f.path for f in with_rows if not f.path.exists()]
    if missing:
        raise CalibrateError(
            f"{missing[0]}: readings file missing (the ledger lists it); restore it, or "
            f"remove its parse record so that `stationkit parse` writes it again"
        )
    segments = _cover_channels(segments, with_rows)
    dedupe_ids = plan_dedupe(with_rows, segments)
    chunks = plan_chunks(with_rows, dedupe_ids, chunk_readings)
    offsets = {f.utc_offset_hours for f in with_rows}
    shifted = len(offsets) > 1
    shift = timedelta(hours=next(iter(offsets))) if len(offsets) == 1 else timedelta(0)
    con = connect(data_dir, memory_limit=memory_limit, threads=threads)
    ((workers,),) = con.execute("SELECT current_setting('threads')").fetchall()
    try:
        plan = _plan(segments, with_rows, shift, qc)
        _load(con, "seg", plan.table)
        if shifted:
            _load(
                con,
                "file_offsets",
                pa.table(
                    {
                        "file_id": pa.array([f.file_id for f in with_rows], pa.int64()),
                        "shift_us": pa.array(
                            [round(f.utc_offset_hours * 3_600_000_000) for f in with_rows],
                            pa.int64(),
                        ),
                    }
                ),
            )
        if dedupe_ids:
            ranked = sorted(
                (f for f in with_rows if f.file_id in dedupe_ids),
                key=lambda f: (f.last_ts, f.file_id),
            )
            _load(
                con,
                "file_rank",
                pa.table(
                    {
                        "file_id": pa.array([f.file_id for f in ranked], pa.int64()),
                        "rank": pa.array(range(len(ranked)), pa.int64()),
                    }
                ),
            )
        flag_sets: list[tuple[str, ...]] = []
        if intervals:
            table, flag_sets = _intervals_table(intervals, plan, shift)
            _load(con, "flag_iv", table)
        hits = 0
        if chunks:
            rows_per_channel: dict[str, int] = {}
            for f in with_rows:
                per = f.readings // max(1, len(f.channels))
                for name, _ in f.channels:
                    rows_per_channel[name] = rows_per_channel.get(name, 0) + per
            hits = _qc_hits(con, plan, qc, temperature_point, chunks, shifted, rows_per_channel)

        def readers() -> Iterator[pa.RecordBatchReader]:
            for chunk in chunks:
                params: dict[str, Any] = {}
                if chunk.plain:
                    params["plain"] = list(chunk.plain)
                if chunk.dedupe:
                    params["dedupe"] = list(chunk.dedupe)
                sql = clean_sql(
                    plain=bool(chunk.plain),
                    dedupe=bool(chunk.dedupe),
                    shifted=shifted,
                    with_flags=bool(flag_sets),
                    with_hits=hits > 0,
                    ordered=chunk.ordered,
                )
                # without ORDER BY the order is only reproducible on one thread
                # (hash joins probed by several threads interleave their output)
                con.execute(f"SET threads = {workers if chunk.ordered else 1}")
                yield con.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)

        convert = _Converter(station, plan, flag_sets)
        write_clean(_produce(readers(), convert), output)
        result = convert.result
    finally:
        con.close()
    result.qc_hits = hits
    result.deduplicated_files = len(dedupe_ids)
    result.chunks = len(chunks)
    log.info(
        "%s: %d clean rows (%d flagged, %d points) in %d chunk(s); %d file(s) deduplicated, "
        "%d QC hit(s)",
        station,
        result.rows,
        result.flagged,
        result.points,
        len(chunks),
        len(dedupe_ids),
        hits,
    )
    return result


def _qc_hits(
    con: Any,
    plan: _Plan,
    qc: QcConfig,
    temperature_point: str | None,
    chunks: Sequence[Chunk],
    shifted: bool,
    rows_per_channel: dict[str, int],
) -> int:
    """Build the ``qc_hits`` table (point id, timestamp, QC bits) for flat line,
    spike and icing over the whole station; return its row count.

    Points are taken in groups of about :data:`QC_GROUP_ROWS` rows so that
    the windows (sorted by point and time) fit in memory.
    """
    if not qc.enabled:
        return 0
    types = qcmod.qc_types(qc)
    seg = plan.table
    mtypes = seg.column("measurement_type").to_pylist()
    stats = seg.column("stat").to_pylist()
    names = seg.column("channel").to_pylist()
    ignored = seg.column("ignored").to_pylist()
    ptids = seg.column("ptid").to_pylist()
    icing_point = temperature_point if qc.icing and temperature_point in plan.ptid else None
    icing_ptid = plan.ptid[icing_point] if icing_point is not None else None
    # the rule parameters per point id (0 disables a rule), and what the rules
    # read: avg rows, sd rows of icing types
    params_by_point: dict[int, tuple[int, float, int]] = {}
    channels_by_point: dict[int, set[str]] = {}
    avg_rows: dict[int, int] = {}
    temperature_channels: set[str] = set()
    for c, t, st, i, p in zip(names, mtypes, stats, ignored, ptids, strict=True):
        if i:
            continue
        if p == icing_ptid and st == "avg":
            temperature_channels.add(c)
        icing = qc.icing_steps if qc.icing and t in qcmod.ICING_TYPES else 0
        if t in types and st == "avg":
            params_by_point[p] = (qc.flatline.get(t, 0), qc.spike.get(t, 0.0), icing)
            channels_by_point.setdefault(p, set()).add(c)
            avg_rows[p] = avg_rows.get(p, 0) + rows_per_channel.get(c, 0)
        elif icing and st == "sd":
            params_by_point.setdefault(p, (0, 0.0, icing))
            channels_by_point.setdefault(p, set()).add(c)
    if not params_by_point:
        return 0
    temp = [icing_ptid] if icing_ptid is not None else []
    _load(
        con,
        "qc_temperature",
        pa.table(
            {
                "point": pa.array(temp, pa.int64()),
                "below": pa.array([qc.icing_below_c] * len(temp), pa.float64()),
            }
        ),
    )
    groups: list[list[int]] = [[]]
    size = 0
    for p in sorted(params_by_point):
        rows = avg_rows.get(p, 0)
        if groups[-1] and size + rows > QC_GROUP_ROWS:
            groups.append([])
            size = 0
        groups[-1].append(p)
        size += rows
    plain = [f for c in chunks for f in c.plain]
    dedupe = [f for c in chunks for f in c.dedupe]
    params: dict[str, Any] = {}
    if plain:
        params["plain"] = plain
    if dedupe:
        params["dedupe"] = dedupe
    base = f"""
    SELECT ptid AS point, qst AS st, timestamp, value, raw_value FROM (
        {_union(bool(plain), bool(dedupe), shifted=shifted, qc_only=True)})"""
    for n, group in enumerate(groups):
        _load(
            con,
            "qc_params",
            pa.table(
                {
                    "point": pa.array(group, pa.int64()),
                    "flat_steps": pa.array([params_by_point[p][0] for p in group], pa.int64()),
                    "spike": pa.array([params_by_point[p][1] for p in group], pa.float64()),
                    "icing": pa.array([params_by_point[p][2] for p in group], pa.int64()),
                }
            ),
        )
        channels = set(temperature_channels)
        for p in group:
            channels |= channels_by_point[p]
        _load(con, "qc_channels", pa.table({"channel": pa.array(sorted(channels), pa.string())}))
        into = "CREATE OR REPLACE TEMP TABLE qc_hits AS" if n == 0 else "INSERT INTO qc_hits"
        con.execute(f"{into} {qcmod.hits_sql(base)}", params)
    ((count,),) = con.execute("SELECT count(*) FROM qc_hits").fetchall()
    return int(count)
