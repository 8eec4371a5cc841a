"""The calibration engine: lake/readings + metadata + flags + QC -> lake/clean months.

DuckDB SQL (:mod:`stationkit.calibrate.query`), one query per *batch* of
consecutive months (:mod:`stationkit.calibrate.partition`), streamed into one
Parquet file per month (:mod:`stationkit.calibrate.writer`):

1. **read** the readings files whose time span reaches the batch or its QC
   context (``read_parquet``, only rows in that period);
2. **map** each reading to its point by a range join on the channel's exact
   name and the reading's logger-local time against the segments of
   :func:`~stationkit.calibrate.metadata.resolve_segments` (a channel without
   metadata at that time is its own point);
3. **transform** by statistic: ``cal_slope * ((logged - logger_offset) /
   logger_slope) + cal_offset`` for avg/min/max/gust/median/...,
   ``logged * cal_slope / logger_slope`` for sd/range, nothing for the rest;
4. **deduplicate**: one value per (station, point, statistic, timestamp);
5. **flag**: a range join against the merged manual flag intervals, an
   equality join against the QC hits (computed first, over the batch and its
   context, so that windows see across months), and the QC range test. SQL
   carries the flags as one integer per row (manual flag set and QC bits);
   Python turns it into the sorted ``list<string>`` while writing.

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

Order and determinism: each batch's rows are sorted by time, then (point,
statistic) -- a total order -- so a month's file is a function of the
month's inputs alone, whatever the threads, the batch it was built in or the
months around it: an incremental build equals a full one byte for byte.
DuckDB computes the next rows on a second thread while this one encodes
Parquet.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stationkit.calibrate import qc as qcmod
from stationkit.calibrate.flags import ALL, FlagInterval
from stationkit.calibrate.metadata import Segment
from stationkit.calibrate.partition import (
    BATCH_READINGS,
    Batch,
    Month,
    inputs_by_month,
    months_with_data,
    plan_batches,
)
from stationkit.calibrate.qc import QcConfig
from stationkit.calibrate.query import clean_sql, union_sql
from stationkit.calibrate.writer import (
    CLEAN_SCHEMA,
    WRITE_SCHEMA,
    FlagNames,
    PartitionWriter,
    SegmentColumns,
)
from stationkit.errors import CalibrateError
from stationkit.sql import connect, quote_identifier

log = logging.getLogger(__name__)

__all__ = ["CLEAN_SCHEMA", "CalibrateError", "EngineResult", "ReadingsFile", "calibrate_readings"]

#: bump when the query or the output layout changes: stations are rebuilt
ENGINE_VERSION = "4"
#: rows per Arrow batch from DuckDB
BATCH_ROWS = 1 << 15
#: avg rows per QC window query (the windows sort them by point and time)
QC_GROUP_ROWS = 3_000_000
#: DuckDB's working memory for a build; the process peaks at about twice this
MEMORY_LIMIT = "192MB"
#: open period bounds, far enough from any data and from datetime's limits
OPEN_START = datetime(1000, 1, 1, tzinfo=UTC)
OPEN_END = datetime(9000, 1, 1, tzinfo=UTC)


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
class PartitionResult:
    """One month a build wrote (or emptied)."""

    month: str
    rows: int = 0
    flagged: int = 0
    #: the partition file; None when the month has no rows (no file)
    path: Path | None = None
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None


@dataclass
class EngineResult:
    """What a build wrote."""

    rows: int = 0
    flagged: int = 0
    points: int = 0
    qc_hits: int = 0
    deduplicated_files: int = 0
    batches: int = 0
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    partitions: dict[str, PartitionResult] = field(default_factory=dict)


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

    @property
    def columns(self) -> SegmentColumns:
        return SegmentColumns(self.point, self.measurement_type, self.statistic, self.height_m)


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


def flags_reaching(
    intervals: Sequence[FlagInterval], month: Month, files: Sequence[ReadingsFile]
) -> list[FlagInterval]:
    """The flag intervals (logger time) that may hit rows of ``month`` (UTC
    period starts) whose readings come from ``files``."""
    offsets = [timedelta(hours=f.utc_offset_hours) for f in files] or [timedelta(0)]
    lo = (month.start + min(offsets)).replace(tzinfo=None)
    hi = (month.end + max(offsets)).replace(tzinfo=None)
    return [
        i for i in intervals if (i.start is None or i.start < hi) and (i.end is None or i.end > lo)
    ]


def flag_sets(intervals: Sequence[FlagInterval]) -> dict[tuple[str, ...], int]:
    """Each distinct set of flag names and its id (1-based, in interval order)."""
    sets: dict[tuple[str, ...], int] = {}
    for i in intervals:
        sets.setdefault(i.flags, len(sets) + 1)
    return sets


def _intervals_table(
    intervals: Sequence[FlagInterval],
    plan: _Plan,
    shift: timedelta,
    sets: dict[tuple[str, ...], int],
) -> pa.Table:
    """The intervals by point id and statistic key (-1: every statistic), with
    the id of their flag set in ``sets``."""
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
        fid = sets[i.flags]
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
    return table


def _load(con: Any, name: str, table: pa.Table) -> None:
    """Copy an Arrow table into a DuckDB temp table (names are ours, not user text)."""
    con.register("_arrow_in", table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_identifier(name)} AS SELECT * FROM _arrow_in")
    con.unregister("_arrow_in")


def _qc_hits(
    con: Any,
    plan: _Plan,
    qc: QcConfig,
    temperature_point: str | None,
    plain: Sequence[str],
    dedupe: Sequence[str],
    window: tuple[datetime, datetime],
    shifted: bool,
    rows_per_channel: dict[str, int],
) -> int:
    """Build the ``qc_hits`` table (point id, timestamp, QC bits) for flat line,
    spike and icing over the rows of ``plain`` and ``dedupe`` in ``window``
    (a batch and its QC context); return its row count.

    Points are taken in groups of about :data:`QC_GROUP_ROWS` rows so that
    the windows (sorted by point and time) fit in memory.
    """
    if not qc.enabled:
        return 0
    gap = timedelta(minutes=qc.max_gap_minutes)
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
    params: dict[str, Any] = {"lo": window[0], "hi": window[1]}
    if plain:
        params["plain"] = list(plain)
    if dedupe:
        params["dedupe"] = list(dedupe)
    base = f"""
    SELECT ptid AS point, qst AS st, timestamp, value, raw_value FROM (
        {union_sql(bool(plain), bool(dedupe), shifted=shifted, qc_only=True)})"""
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
        con.execute(f"{into} {qcmod.hits_sql(base, gap)}", params)
    ((count,),) = con.execute("SELECT count(*) FROM qc_hits").fetchall()
    return int(count)


# ---------------------------------------------------------------- conversion


@dataclass
class _Rows:
    """Converted rows of one month, and what the summary needs of them."""

    month: Month
    table: pa.Table
    sid: np.ndarray
    stamps_us: np.ndarray
    fkeys: np.ndarray
    raw: np.ndarray


class _Converter:
    """Turns a query batch into clean columns: segment ids become point,
    measurement type, height and statistic; flag keys become flag lists."""

    def __init__(self, station: str, plan: _Plan, flags: FlagNames) -> None:
        self.station = station
        self.plan = plan
        self.flags = flags
        self.points: set[int] = set()

    def __call__(self, batch: pa.RecordBatch) -> pa.Table:
        plan = self.plan
        sid = batch.column("sid")
        if sid.null_count:
            raise CalibrateError(
                f"{self.station}: readings of a channel or statistic the ledger does not "
                f"list; re-parse the station's files"
            )
        point_idx = pc.take(plan.point.indices, sid)
        self.points.update(pc.unique(point_idx).to_pylist())
        return pa.Table.from_arrays(
            [
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
                self.flags.column(batch.column("fkey")),
                batch.column("file_id"),
            ],
            schema=WRITE_SCHEMA,
        )

    def split(self, batch: pa.RecordBatch, months: Sequence[Month]) -> Iterator[_Rows]:
        """The batch (sorted by time) cut at month boundaries, converted."""
        stamps = batch.column("timestamp").cast(pa.int64()).to_numpy()
        edges = np.array([_us(m.start) for m in months] + [_us(months[-1].end)], dtype=np.int64)
        where = np.searchsorted(edges, stamps, side="right") - 1
        cuts = np.flatnonzero(np.diff(where)) + 1
        bounds = [0, *cuts.tolist(), len(stamps)]
        for a, b in itertools.pairwise(bounds):
            part = batch.slice(a, b - a)
            yield _Rows(
                month=months[int(where[a])],
                table=self(part),
                sid=part.column("sid").to_numpy(),
                stamps_us=stamps[a:b],
                fkeys=part.column("fkey").to_numpy(),
                raw=part.column("raw_value").to_numpy(zero_copy_only=False),
            )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


_Item = _Rows | Batch | BaseException | None


def _produce(items: Iterator[_Rows | Batch]) -> Iterator[_Rows | Batch]:
    """Run the queries and the conversion on a second thread, so that DuckDB
    computes the next rows while this thread encodes Parquet."""
    q: queue.Queue[_Item] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def put(item: _Item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
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


# ---------------------------------------------------------------- the build


def _cover_channels(segments: Sequence[Segment], files: Sequence[ReadingsFile]) -> list[Segment]:
    """Segments plus identity ones for channels the segments do not know at all."""
    known = {s.channel for s in segments}
    extra = sorted({name for f in files for name, _ in f.channels} - known)
    return [
        *segments,
        *(Segment(n, n, None, None, None, None, None) for n in extra),
    ]


def partition_path(out_dir: Path, month: Month) -> Path:
    return out_dir / month.file_name


def calibrate_readings(
    station: str,
    files: Sequence[ReadingsFile],
    segments: Sequence[Segment],
    intervals: Sequence[FlagInterval],
    qc: QcConfig,
    out_dir: Path,
    *,
    months: Iterable[Month] | None = None,
    data_dir: Path,
    temperature_point: str | None = None,
    memory_limit: str = MEMORY_LIMIT,
    threads: int | None = None,
    batch_readings: int = BATCH_READINGS,
) -> EngineResult:
    """Build the months of lake/clean in ``out_dir`` (``YYYY-MM.parquet``).

    ``months``: the months to (re)build, default every month the files
    reach. A month without rows gets no file (an existing one is removed).
    ``segments`` should cover every channel (see ``resolve_segments``;
    channels it does not know become their own points); ``intervals`` are
    merged flag intervals in logger time. Each file appears atomically; the
    same inputs give the same bytes.
    """
    with_rows = [f for f in files if f.first_ts is not None]
    segments = _cover_channels(segments, with_rows)
    margin = qcmod.margin(qc)
    wanted = sorted(months_with_data(with_rows) if months is None else set(months))
    inputs = inputs_by_month(with_rows, wanted, margin)
    batches = plan_batches({m: fs for m, fs in inputs.items() if fs}, batch_readings)
    needed = {f.file_id: f for b in batches for f in b.files}
    missing = [f.path for f in needed.values() if not f.path.exists()]  # type: ignore[attr-defined]
    if missing:
        raise CalibrateError(
            f"{missing[0]}: readings file missing (the ledger lists it); restore it, or "
            f"remove its parse record so that `stationkit parse` writes it again"
        )
    offsets = {f.utc_offset_hours for f in with_rows}
    shifted = len(offsets) > 1
    shift = timedelta(hours=next(iter(offsets))) if len(offsets) == 1 else timedelta(0)
    result = EngineResult(batches=len(batches))
    for m in wanted:
        result.partitions[m.key] = PartitionResult(m.key)
    con = connect(data_dir, memory_limit=memory_limit, threads=threads)
    try:
        plan = _plan(segments, with_rows, shift, qc)
        _load(con, "seg", plan.table)
        sets = flag_sets(intervals)
        convert = _Converter(station, plan, FlagNames(list(sets)))
        dedupe_ids: set[int] = set()
        ((workers,),) = con.execute("SELECT current_setting('threads')").fetchall()

        def items() -> Iterator[_Rows | Batch]:
            for batch in batches:
                # a streamed month sees only the flags reaching it: its row order
                # is then a function of its own inputs
                reaching = (
                    intervals
                    if batch.ordered
                    else flags_reaching(intervals, batch.months[0], batch.files)  # type: ignore[arg-type]
                )
                with_flags = bool(reaching)
                if with_flags:
                    _load(con, "flag_iv", _intervals_table(reaching, plan, shift, sets))
                # without ORDER BY the order is only reproducible on one thread
                # (hash joins probed by several threads interleave their output)
                con.execute(f"SET threads = {workers if batch.ordered else 1}")
                yield from _run_batch(
                    con, batch, plan, qc, temperature_point, margin, shifted,
                    with_flags, convert, segments, dedupe_ids, result,
                )  # fmt: skip
                yield batch

        _write_months(_produce(items()), out_dir, plan, convert.flags, result)
    finally:
        con.close()
    # months asked for that no file reaches any more: their old files go
    for m in wanted:
        if not inputs.get(m):
            _remove(partition_path(out_dir, m))
    result.points = len(convert.points)
    result.deduplicated_files = len(dedupe_ids)
    parts = [p for p in result.partitions.values() if p.rows]
    result.rows = sum(p.rows for p in parts)
    result.flagged = sum(p.flagged for p in parts)
    if parts:
        result.first_timestamp = min(p.first_timestamp for p in parts if p.first_timestamp)
        result.last_timestamp = max(p.last_timestamp for p in parts if p.last_timestamp)
    log.info(
        "%s: %d clean rows (%d flagged, %d points) in %d month(s), %d batch(es); "
        "%d file(s) deduplicated, %d QC hit(s)",
        station,
        result.rows,
        result.flagged,
        result.points,
        len(wanted),
        len(batches),
        len(dedupe_ids),
        result.qc_hits,
    )
    return result


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _run_batch(
    con: Any,
    batch: Batch,
    plan: _Plan,
    qc: QcConfig,
    temperature_point: str | None,
    margin: timedelta,
    shifted: bool,
    with_flags: bool,
    convert: _Converter,
    segments: Sequence[Segment],
    dedupe_ids: set[int],
    result: EngineResult,
) -> Iterator[_Rows]:
    """One batch's query, converted and cut into months."""
    files: list[ReadingsFile] = list(batch.files)  # type: ignore[arg-type]
    dedupe = plan_dedupe(files, segments)
    dedupe_ids.update(dedupe)
    plain_paths = [str(f.path) for f in files if f.file_id not in dedupe]
    dedupe_paths = [str(f.path) for f in files if f.file_id in dedupe]
    if shifted:
        _load(
            con,
            "file_offsets",
            pa.table(
                {
                    "file_id": pa.array([f.file_id for f in files], pa.int64()),
                    "shift_us": pa.array(
                        [round(f.utc_offset_hours * 3_600_000_000) for f in files], pa.int64()
                    ),
                }
            ),
        )
    if dedupe:
        ranked = sorted(
            (f for f in files if f.file_id in dedupe), key=lambda f: (f.last_ts, f.file_id)
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
    window = (batch.start - margin, batch.end + margin)
    rows_per_channel: dict[str, int] = {}
    for f in files:
        per = f.readings // max(1, len(f.channels))
        for name, _ in f.channels:
            rows_per_channel[name] = rows_per_channel.get(name, 0) + per
    hits = _qc_hits(
        con, plan, qc, temperature_point, plain_paths, dedupe_paths, window, shifted,
        rows_per_channel,
    )  # fmt: skip
    result.qc_hits += hits
    params: dict[str, Any] = {
        "lo": window[0],
        "hi": window[1],
        "out_lo": batch.start,
        "out_hi": batch.end,
    }
    if plain_paths:
        params["plain"] = plain_paths
    if dedupe_paths:
        params["dedupe"] = dedupe_paths
    sql = clean_sql(
        plain=bool(plain_paths),
        dedupe=bool(dedupe_paths),
        shifted=shifted,
        with_flags=with_flags,
        with_hits=hits > 0,
        ordered=batch.ordered,
    )
    for record_batch in con.sql(sql, params=params).to_arrow_reader(BATCH_ROWS):
        if record_batch.num_rows:
            yield from convert.split(record_batch, batch.months)


def _write_months(
    items: Iterator[_Rows | Batch],
    out_dir: Path,
    plan: _Plan,
    flags: FlagNames,
    result: EngineResult,
) -> None:
    """Write each month's rows to its file; a month of a batch without rows
    loses its file."""
    writer: PartitionWriter | None = None
    month: Month | None = None
    written: set[Month] = set()
    try:
        for item in items:
            if isinstance(item, Batch):
                if writer is not None and month is not None:
                    _close(writer, month, plan, flags, result)
                    writer = month = None
                for m in item.months:
                    if m not in written:
                        _remove(partition_path(out_dir, m))
                        result.partitions[m.key] = PartitionResult(m.key)
                continue
            if item.month != month:
                if writer is not None and month is not None:
                    _close(writer, month, plan, flags, result)
                month = item.month
                writer = PartitionWriter(partition_path(out_dir, month))
                written.add(month)
            assert writer is not None
            writer.write(item.table)
            writer.summary.add(item.sid, item.stamps_us, item.fkeys, item.raw)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


def _close(
    writer: PartitionWriter, month: Month, plan: _Plan, flags: FlagNames, result: EngineResult
) -> None:
    summary = writer.summary
    writer.close(summary.document(plan.columns, flags))
    lo = min(v[1] for v in summary.by_segment.values())
    hi = max(v[2] for v in summary.by_segment.values())
    result.partitions[month.key] = PartitionResult(
        month.key,
        rows=summary.rows,
        flagged=summary.flagged,
        path=writer.target,
        first_timestamp=_EPOCH + timedelta(microseconds=lo),
        last_timestamp=_EPOCH + timedelta(microseconds=hi),
    )
