"""Campbell Scientific TOB3 (table-oriented binary, format 3) files.

Layout: six quoted, comma-separated ASCII header lines (CRLF; the last one is
padded with spaces), then fixed-size binary frames to the end of the file::

    "TOB3",station,model,serial,os,program,signature,file creation time
    table,"5 MSEC",frame size [bytes],intended table size [records],
        validation stamp,frame time resolution,ring record,card removal time,...
    name,...                        field names
    unit,...                        units, as written ([degC], [m/s] ...)
    Avg,...                         processing (Avg, Std, Max, Min, Smp, Tot, WVc, TMx ...)
    IEEE4B,...                      data types
    <frame><frame>...

A frame is a 12-byte header -- seconds since 1990-01-01 00:00:00 (uint32),
sub-seconds in the frame time resolution (uint32), record number of the
frame's first record (uint32), all little-endian -- then as many whole
records as fit, then a 4-byte little-endian footer: bits 0-11 an offset
(a minor frame's size), bit 12 file mark, bit 13 card-removal mark, bit 14
empty frame, bit 15 minor (partly filled) frame, bits 16-31 the validation
stamp. (Footer layout as Campbell's own reader decodes it.)

Format rules this reader relies on:

* A frame is valid only if its stamp equals the header's validation stamp or
  its complement (the logger flips between the two on each pass of a ring
  file). Other frames are space never written or left from an earlier file:
  they are skipped (and counted in ``meta.extra``).
* A minor frame holds several sub-frames packed back to back, each with its
  own 12-byte header and 4-byte footer whose offset is the sub-frame's size;
  they are found walking back from the frame end. Empty sub-frames (stale
  bytes after a partial write) are skipped.
* Ring files: when both stamps occur, the file has wrapped; the oldest frame
  is the first one whose stamp differs from the first frame's. Output starts
  there and wraps to the file start, so records come out oldest first, as
  Campbell's converters write them. Rows are not re-sorted by time: where the
  logger's frame clock stepped back, they keep record order, as in Campbell's
  own TOA5 conversion.
* Time labels: record i of a frame is the frame time + i * the header's
  record interval, on the logger clock (no zone), by default the END of the
  interval as in TOA5. Labels are naive ``Datetime("us")`` (sub-microsecond
  parts truncated). ``meta.interval_s`` is the header interval.
* Record numbers are not stored; ``meta.extra`` keeps the first and last.
* Record fields are mostly big-endian (IEEE4B, IEEE8B, FP2, UINT4 ...); see
  :mod:`stationkit.parsers.campbell_binary`. Text (ASCII(n), BOOL8) and time
  (SecNano/NSec; any TMx/TMn column) fields are skipped and listed in
  ``meta.skipped_channels``.
* Missing: IEEE NaN/+-INF and the FP2 NaN/INF patterns become null. BOOL,
  BOOL2, BOOL4 read as -1/0.
* A file cut inside a frame loses that frame with a warning; file and
  removal marks do not change what is read.
* Besides the validation stamps, the record times are checked
  (:func:`~stationkit.parsers.campbell_binary.first_foreign_record`): at the
  first record dated before 1990, or more than a day before or 400 days
  after the record before it, the output is cut with a warning naming that
  record's byte offset.
"""

from __future__ import annotations

import bisect
import itertools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers import campbell
from stationkit.parsers.base import FileMeta, ParseResult, Source
from stationkit.parsers.campbell_binary import (
    CAMPBELL_EPOCH_UNIX_S,
    cut_foreign_records,
    decode_values,
    header_fields,
    header_lines,
    raw_expr,
    record_layout,
    record_size,
    records_series,
)
from stationkit.parsers.campbell_binary import (
    channels as binary_channels,
)
from stationkit.parsers.sources import read_bytes, source_name

FORMAT = "tob3"
HEADER_LINES = 6
MAGIC = b'"TOB3"'
FRAME_HEADER_BYTES = 12
FRAME_FOOTER_BYTES = 4
#: footer bits (Campbell's Csi::Tob2::Frame)
OFFSET_MASK = 0x0FFF
FILE_MARK = 0x1000
REMOVE_MARK = 0x2000
EMPTY_FRAME = 0x4000
MINOR_FRAME = 0x8000
#: record interval units -> nanoseconds ("5 MSEC", "10 MIN"; no unit means NSEC)
INTERVAL_UNITS = {
    "": 1,
    "NSEC": 1,
    "USEC": 1_000,
    "MSEC": 1_000_000,
    "SEC": 1_000_000_000,
    "MIN": 60_000_000_000,
    "HR": 3_600_000_000_000,
    "HOUR": 3_600_000_000_000,
    "DAY": 86_400_000_000_000,
}
#: frame time resolution units -> nanoseconds ("Sec100Usec" = 100 us)
RESOLUTION_UNITS = {"NSEC": 1, "USEC": 1_000, "MSEC": 1_000_000}
#: Campbell's legacy resolution name without a factor: 10 us (per Campbell's reader)
LEGACY_RESOLUTIONS = {"SECUSEC": 10_000}
#: fields of the second header line: table, interval, frame size, table size,
#: validation stamp, time resolution, ring record, card removal time
DECODE_FIELDS = 8

_INTERVAL = re.compile(r"^\s*(\d+)\s*([A-Za-z]*)\s*$")
_RESOLUTION = re.compile(r"^SEC(\d*)([A-Z]+)$")
_FRAME_HEAD = struct.Struct("<III")
_WORD = struct.Struct("<I")


@dataclass(frozen=True)
class _Decode:
    """What the second header line says."""

    table: str
    interval_text: str
    interval_ns: int
    frame_size: int
    table_size: int
    stamp: int
    resolution_text: str
    resolution_ns: int
    ring_record: int
    removal_time: int
    rest: tuple[str, ...]


def sniff(head: bytes) -> bool:
    """True for a TOB3 file: the first header field is the quoted "TOB3"."""
    return head.startswith(MAGIC + b",")


def read_tob3(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a TOB3 file into a :class:`ParseResult`.

    Returns one Float64 channel per numeric field (IEEE4/8, FP2, integers,
    BOOL as -1/0), in file order, with ``statistic`` from the processing line
    (:func:`stationkit.parsers.campbell.statistic_for`), ``unit`` from the
    units line and the data type in ``attrs["data_type"]``. Rows are records
    oldest first. ``meta`` carries station name, logger model, serial, OS,
    program, table and ``interval_s`` [s]; ``extra`` the program signature,
    file creation time, frame size [bytes], intended table size, validation
    stamp, frame time resolution, ring record, card removal time, frame counts
    and the first/last record number.
    """
    display = source_name(source, name)
    data = read_bytes(source)
    if not data.startswith(MAGIC):
        raise ParseError(display, 'expected "TOB3" as the first header field', line=1)
    lines, data_start = header_lines(data, HEADER_LINES, display, "TOB3")
    env = header_fields(lines[0])
    info = _decode_line(header_fields(lines[1]), display)
    names, units, processing, types = (header_fields(line) for line in lines[2:HEADER_LINES])
    fields = record_layout(names, units, processing, types, name=display, first_line=3)
    size = record_size(fields)
    capacity = (info.frame_size - FRAME_HEADER_BYTES - FRAME_FOOTER_BYTES) // max(size, 1)
    if size == 0 or capacity < 1:
        raise ParseError(
            display,
            f"a {size}-byte record does not fit a {info.frame_size}-byte frame "
            f"({FRAME_HEADER_BYTES}-byte header, {FRAME_FOOTER_BYTES}-byte footer)",
            line=2,
        )
    channels, skipped, warnings = binary_channels(fields)

    frames, rest = divmod(len(data) - data_start, info.frame_size)
    if rest:
        warnings.append(
            f"byte {data_start + frames * info.frame_size}: {rest} trailing byte(s) dropped "
            f"(a partial frame; frames are {info.frame_size} bytes)"
        )
    segments, stats = _segments(data, data_start, frames, info, size, capacity, warnings)
    records = _gather_records(data, segments, size)
    rows = _record_times(segments, info)
    numbers = rows.get_column("record_no")
    if numbers.len() > 1:
        steps = numbers.diff().drop_nulls()
        if (steps <= 0).any():
            at = int((steps <= 0).arg_max() or 0)
            warnings.append(
                f"record numbers go back from {numbers[at]} to {numbers[at + 1]} "
                f"(row {at + 2}): the table was reset or the file holds stale frames"
            )
    frame = pl.DataFrame([records, rows.get_column("timestamp")])
    wide = decode_values(frame, fields, channels, pl.col("timestamp"))
    wide = cut_foreign_records(wide, _offsets(segments, size), display, warnings)

    meta_kwargs = campbell.environment(env)
    extra = dict(meta_kwargs.pop("extra"))
    extra.update(
        {
            "file_created": env[7] if len(env) > 7 and env[7] else None,
            "record_interval": info.interval_text,
            "frame_size": info.frame_size,
            "intended_table_size": info.table_size,
            "validation_stamp": info.stamp,
            "frame_time_resolution": info.resolution_text,
            "ring_record": info.ring_record,
            "card_removal_time": info.removal_time,
            "record_size": size,
            "header_bytes": data_start,
            "first_record": int(numbers[0]) if numbers.len() else None,
            "last_record": int(numbers[-1]) if numbers.len() else None,
            **stats,
        }
    )
    if info.rest:
        extra["decode_info_extra"] = list(info.rest)
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            table=info.table or None,
            interval_s=info.interval_ns / 1e9 if info.interval_ns > 0 else None,
            skipped_channels=tuple(skipped),
            warnings=tuple(warnings),
            extra=extra,
            **meta_kwargs,
        ),
        channels=tuple(channels),
        frame=wide,
    )


def _offsets(segments: pl.DataFrame, size: int) -> Callable[[int], int]:
    """The byte offset in the file of the i-th record (output order)."""
    starts = segments.get_column("start").to_list()
    ends = list(itertools.accumulate(segments.get_column("count").to_list()))

    def offset(i: int) -> int:
        k = bisect.bisect_right(ends, i)
        before = ends[k - 1] if k else 0
        return int(starts[k]) + (i - before) * size

    return offset


def _gather_records(data: bytes, segments: pl.DataFrame, size: int) -> pl.Series:
    """The records of every segment, in segment order, as one Binary series."""
    starts = segments.get_column("start").to_list()
    counts = segments.get_column("count").to_list()
    view = memoryview(data)
    blob = b"".join(view[s : s + n * size] for s, n in zip(starts, counts, strict=True))
    return records_series(blob, size, sum(counts))


def _decode_line(fields: list[str], display: str) -> _Decode:
    """Parse the second header line (table and frame description)."""
    if len(fields) < DECODE_FIELDS:
        raise ParseError(
            display,
            f"expected at least {DECODE_FIELDS} fields (table, interval, frame size, "
            "table size, validation stamp, time resolution, ring record, removal time), "
            f"found {len(fields)}",
            line=2,
        )

    def integer(i: int, what: str) -> int:
        try:
            return int(fields[i])
        except ValueError:
            raise ParseError(
                display, f"field {i + 1} ({what}): expected an integer, found {fields[i]!r}", line=2
            ) from None

    m = _INTERVAL.match(fields[1])
    if m is None or m.group(2).upper() not in INTERVAL_UNITS:
        raise ParseError(
            display,
            f"record interval {fields[1]!r}: expected a number and a unit "
            f"({', '.join(u for u in INTERVAL_UNITS if u)})",
            line=2,
        )
    interval_ns = int(m.group(1)) * INTERVAL_UNITS[m.group(2).upper()]
    stamp = integer(4, "validation stamp")
    if not 0 <= stamp <= 0xFFFF:
        raise ParseError(display, f"validation stamp {stamp} is not a 16-bit number", line=2)
    return _Decode(
        table=fields[0],
        interval_text=fields[1],
        interval_ns=interval_ns,
        frame_size=integer(2, "frame size"),
        table_size=integer(3, "intended table size"),
        stamp=stamp,
        resolution_text=fields[5],
        resolution_ns=_resolution(fields[5], display),
        ring_record=integer(6, "ring record"),
        removal_time=integer(7, "card removal time"),
        rest=tuple(fields[DECODE_FIELDS:]),
    )


def _resolution(text: str, display: str) -> int:
    """Nanoseconds per sub-second tick of a frame time resolution name."""
    upper = text.strip().upper()
    legacy = LEGACY_RESOLUTIONS.get(upper)
    if legacy is not None:
        return legacy
    m = _RESOLUTION.match(upper)
    unit = m.group(2) if m else ""
    if m is None or unit not in RESOLUTION_UNITS:
        raise ParseError(
            display,
            f"frame time resolution {text!r}: expected e.g. Sec100Usec, Sec10Usec, SecMsec, "
            "Sec100Nsec",
            line=2,
        )
    factor = int(m.group(1)) if m.group(1) else 1
    return factor * RESOLUTION_UNITS[unit]


def _segments(
    data: bytes,
    start: int,
    frames: int,
    info: _Decode,
    size: int,
    capacity: int,
    warnings: list[str],
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Runs of records in output order: start byte, count, seconds, sub-seconds, record no."""
    schema = {
        "order": pl.Int64,
        "sub": pl.Int64,
        "start": pl.Int64,
        "count": pl.Int64,
        "seconds": pl.Int64,
        "subseconds": pl.Int64,
        "record_no": pl.Int64,
    }
    stats = {"frames": frames, "frames_valid": 0, "frames_skipped": 0}
    if frames == 0:
        return pl.DataFrame(schema=schema), stats
    fs = info.frame_size
    table = pl.DataFrame([records_series(memoryview(data)[start:], fs, frames)]).select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("pos"),
        raw_expr(0, 4, pl.UInt32, False).cast(pl.Int64).alias("seconds"),
        raw_expr(4, 4, pl.UInt32, False).cast(pl.Int64).alias("subseconds"),
        raw_expr(8, 4, pl.UInt32, False).cast(pl.Int64).alias("record_no"),
        raw_expr(fs - 4, 4, pl.UInt32, False).cast(pl.Int64).alias("footer"),
    )
    stamps = [info.stamp, ~info.stamp & 0xFFFF]
    table = table.with_columns(
        (pl.col("footer") // 65536).alias("stamp"),
        (pl.col("footer") % 65536).alias("flags"),
    )
    valid = table.filter(pl.col("stamp").is_in(stamps))
    stats["frames_valid"] = valid.height
    stats["frames_skipped"] = frames - valid.height
    if valid.height == 0:
        warnings.append(
            f"no frame carries the validation stamp {info.stamp} (or its complement): "
            "no records were written to this file"
        )
        return pl.DataFrame(schema=schema), stats
    positions = valid.get_column("pos")
    if positions[-1] - positions[0] + 1 != valid.height:
        warnings.append(
            f"{frames - valid.height} frame(s) without a valid stamp lie between valid "
            "frames and were skipped"
        )
    first = valid.get_column("stamp")[0]
    crossed = valid.filter(pl.col("stamp") != first)
    wrap = int(crossed.get_column("pos")[0]) if crossed.height else 0
    valid = valid.with_columns(
        pl.when(pl.col("pos") >= wrap)
        .then(pl.col("pos") - wrap)
        .otherwise(pl.col("pos") + frames)
        .alias("order")
    ).sort("order")
    stats["wrapped_at_frame"] = wrap

    minor = (pl.col("flags") // MINOR_FRAME) % 2 == 1
    empty = (pl.col("flags") // EMPTY_FRAME) % 2 == 1
    major = valid.filter(~minor & ~empty).select(
        pl.col("order"),
        pl.lit(0, dtype=pl.Int64).alias("sub"),
        (start + pl.col("pos") * fs + FRAME_HEADER_BYTES).alias("start"),
        pl.lit(capacity, dtype=pl.Int64).alias("count"),
        pl.col("seconds"),
        pl.col("subseconds"),
        pl.col("record_no"),
    )
    rows: list[tuple[int, int, int, int, int, int, int]] = []
    for order, pos in valid.filter(minor).select("order", "pos").iter_rows():
        base = start + pos * fs
        subs = _subframes(data[base : base + fs], size, warnings, pos)
        for k, (offset, count, seconds, subseconds, record_no) in enumerate(subs):
            rows.append((order, k, base + offset, count, seconds, subseconds, record_no))
    parts = [major]
    if rows:
        parts.append(pl.DataFrame(rows, schema=schema, orient="row"))
    segments = pl.concat(parts).filter(pl.col("count") > 0).sort("order", "sub")
    marks = valid.select(
        ((pl.col("flags") // FILE_MARK) % 2).sum().alias("file_marks"),
        ((pl.col("flags") // REMOVE_MARK) % 2).sum().alias("removal_marks"),
    ).row(0)
    stats["file_marks"], stats["removal_marks"] = int(marks[0]), int(marks[1])
    top = int(segments.select(pl.col("subseconds").max().fill_null(0)).item())
    if top * info.resolution_ns >= 1_000_000_000:
        warnings.append(
            f"frame sub-second counts reach {top} ticks, over one second at the "
            f"stated resolution {info.resolution_text!r}: timestamps may be wrong"
        )
    return segments, stats


def _subframes(
    frame: bytes, size: int, warnings: list[str], pos: int
) -> list[tuple[int, int, int, int, int]]:
    """(offset, records, seconds, sub-seconds, record no) of a minor frame's sub-frames.

    Walks back from the frame end: each footer's offset is its sub-frame's
    size, header and footer included; a footer without the minor flag, or a
    size beyond what is left, ends the walk (as in Campbell's reader).
    """
    out: list[tuple[int, int, int, int, int]] = []
    end = len(frame)
    while end > FRAME_HEADER_BYTES:
        (flags,) = _WORD.unpack_from(frame, end - FRAME_FOOTER_BYTES)
        length = flags & OFFSET_MASK
        if length > end or not flags & MINOR_FRAME:
            break
        if length == 0:
            warnings.append(f"frame {pos}: a minor frame of size 0; the rest of it was skipped")
            break
        begin = end - length
        if length >= FRAME_HEADER_BYTES + FRAME_FOOTER_BYTES and not flags & EMPTY_FRAME:
            seconds, subseconds, record_no = _FRAME_HEAD.unpack_from(frame, begin)
            count = (length - FRAME_HEADER_BYTES - FRAME_FOOTER_BYTES) // size
            out.append((begin + FRAME_HEADER_BYTES, count, seconds, subseconds, record_no))
        end = begin
    out.reverse()
    return out


def _record_times(segments: pl.DataFrame, info: _Decode) -> pl.DataFrame:
    """One row per record: its timestamp and record number."""
    if segments.height == 0:
        return pl.DataFrame(schema={"timestamp": pl.Datetime("us"), "record_no": pl.Int64})
    return (
        segments.select(
            "seconds",
            "subseconds",
            "record_no",
            pl.int_ranges(0, pl.col("count"), dtype=pl.Int64).alias("i"),
        )
        .explode("i")
        .select(
            (
                (pl.col("seconds") + CAMPBELL_EPOCH_UNIX_S) * 1_000_000
                + (pl.col("subseconds") * info.resolution_ns + pl.col("i") * info.interval_ns)
                // 1000
            )
            .cast(pl.Datetime("us"))
            .alias("timestamp"),
            (pl.col("record_no") + pl.col("i")).alias("record_no"),
        )
    )
