"""Decoding the binary data types of Campbell Scientific TOB1 and TOB3 files.

Both formats start with quoted ASCII header lines (environment, field names,
units [as written], processing, data types) and then hold fixed-size binary
records whose layout the data-type line gives, field by field. This module
turns that header into a record :class:`Field` layout and decodes records
column-wise with polars (``bin.slice`` + ``bin.reinterpret``), never value by
value in Python.

Type names, sizes and byte orders follow Campbell's own reader (the type-name
table of CsiTypes.cpp); names are matched case-insensitively:

============  =====  ===========================================  =============
type          bytes  meaning                                      stored as
============  =====  ===========================================  =============
IEEE4/IEEE4L  4      IEEE-754 single, little-endian               channel
IEEE4B        4      IEEE-754 single, big-endian                  channel
IEEE8/IEEE8L  8      IEEE-754 double, little-endian               channel
IEEE8B        8      IEEE-754 double, big-endian                  channel
FP2           2      Campbell 2-byte float, big-endian            channel
USHORT/SHORT  2      unsigned/signed integer, little-endian       channel
UINT2/INT2    2      unsigned/signed integer, big-endian          channel
ULONG/LONG    4      unsigned/signed integer, little-endian       channel
UINT4/INT4    4      unsigned/signed integer, big-endian          channel
BYTE/INT1     1      unsigned/signed integer                      channel
BOOL          1      boolean, non-zero is true                    channel -1/0
BOOL2, BOOL4  2, 4   boolean, non-zero is true                    channel -1/0
BOOL8         1      eight flags (a bit string in TOA5)           skipped (text)
ASCII(n)      n      NUL-terminated, NUL-padded string            skipped (text)
SecNano       8      int4 seconds + uint4 ns, little-endian       skipped (time)
NSec          8      int4 seconds + uint4 ns, big-endian          skipped (time)
============  =====  ===========================================  =============

FP2 (Campbell "final storage" 2-byte float), as one big-endian 16-bit word:
bit 15 sign, bits 14-13 a negative decimal exponent (value = mantissa /
10**exponent), bits 12-0 the mantissa (0..8191). ``0x1FFF`` is +INF,
``0x9FFF`` -INF, ``0x9FFE`` NaN. A negative zero reads as 0.

Missing values: IEEE NaN and +-INF, and the FP2 NaN/INF patterns, become
null -- exactly what Campbell's TOA5 conversion prints as "NAN"/"INF", which
the TOA5 reader also reads as null. Integers and booleans have no missing
marker. Booleans read as -1 (true) or 0, as TOA5 prints them.

Times: SECONDS/NANOSECONDS columns and frame headers count from the Campbell
epoch 1990-01-01 00:00:00 on the logger clock (no zone). Labels become naive
``Datetime("us")``; sub-microsecond parts are truncated.
"""

from __future__ import annotations

import array
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import polars as pl
import pyarrow as pa

from stationkit.errors import ParseError
from stationkit.parsers import campbell
from stationkit.parsers.base import TIMESTAMP, ChannelInfo
from stationkit.parsers.sources import decode
from stationkit.parsers.table import split_fields

#: seconds from the Unix epoch to the Campbell epoch 1990-01-01 00:00:00
CAMPBELL_EPOCH_UNIX_S = 631_152_000

#: FP2 words with special meaning
FP2_POS_INF = 0x1FFF
FP2_NEG_INF = 0x9FFF
FP2_NAN = 0x9FFE

#: how far into a file the header lines may reach [bytes]
MAX_HEADER_BYTES = 1 << 20

#: no Campbell logger time is earlier than its epoch
CAMPBELL_EPOCH = datetime(1990, 1, 1)
#: how far a record's time may step back from the record before it (a clock
#: set back, a DST correction) ...
MAX_STEP_BACK = timedelta(days=1)
#: ... or forward (a logger switched off for a season) and still be a record
#: of the same file; bytes appended or inserted decode to times anywhere in
#: 1990..2126 and fail this almost always
MAX_STEP_FORWARD = timedelta(days=400)

Kind = Literal["float", "fp2", "int", "bool", "bits", "ascii", "time"]

#: the kinds that become numeric channels
NUMERIC_KINDS = frozenset({"float", "fp2", "int", "bool"})


@dataclass(frozen=True)
class _TypeInfo:
    size: int
    kind: Kind
    dtype: type[pl.DataType] | None
    big_endian: bool


_TYPES: dict[str, _TypeInfo] = {
    "IEEE4": _TypeInfo(4, "float", pl.Float32, False),
    "IEEE4L": _TypeInfo(4, "float", pl.Float32, False),
    "IEEE4B": _TypeInfo(4, "float", pl.Float32, True),
    "IEEE8": _TypeInfo(8, "float", pl.Float64, False),
    "IEEE8L": _TypeInfo(8, "float", pl.Float64, False),
    "IEEE8B": _TypeInfo(8, "float", pl.Float64, True),
    "FP2": _TypeInfo(2, "fp2", pl.UInt16, True),
    "SHORT": _TypeInfo(2, "int", pl.Int16, False),
    "USHORT": _TypeInfo(2, "int", pl.UInt16, False),
    "INT2": _TypeInfo(2, "int", pl.Int16, True),
    "UINT2": _TypeInfo(2, "int", pl.UInt16, True),
    "LONG": _TypeInfo(4, "int", pl.Int32, False),
    "ULONG": _TypeInfo(4, "int", pl.UInt32, False),
    "INT4": _TypeInfo(4, "int", pl.Int32, True),
    "UINT4": _TypeInfo(4, "int", pl.UInt32, True),
    "BYTE": _TypeInfo(1, "int", pl.UInt8, False),
    "INT1": _TypeInfo(1, "int", pl.Int8, False),
    "BOOL": _TypeInfo(1, "bool", pl.UInt8, False),
    "BOOL2": _TypeInfo(2, "bool", pl.UInt16, False),
    "BOOL4": _TypeInfo(4, "bool", pl.UInt32, False),
    "BOOL8": _TypeInfo(1, "bits", pl.UInt8, False),
    "ASCII": _TypeInfo(1, "ascii", None, False),
    "SECNANO": _TypeInfo(8, "time", None, False),
    "NSEC": _TypeInfo(8, "time", None, True),
}

_TYPE_TEXT = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:\(\s*(\d+)\s*\))?\s*$")


@dataclass(frozen=True)
class Field:
    """One field of a binary record."""

    name: str
    unit: str
    processing: str
    #: the data type as the header writes it (``IEEE4B``, ``ASCII(36)``)
    type_name: str
    kind: Kind
    #: byte offset in the record
    offset: int
    #: bytes in the record
    size: int
    #: elements: the string length for ASCII(n), else 1 (n for an array type T(n))
    count: int
    dtype: type[pl.DataType] | None
    big_endian: bool

    @property
    def numeric(self) -> bool:
        """True when the field is stored as a Float64 channel."""
        return self.kind in NUMERIC_KINDS and self.count == 1


def type_size(type_text: str) -> tuple[str, int, int]:
    """(base type name upper-cased, element count, size in bytes) of a type string.

    Raises ValueError for a type Campbell does not define.
    """
    m = _TYPE_TEXT.match(type_text)
    if m is None:
        raise ValueError(f"unreadable data type {type_text!r}")
    base = m.group(1).upper()
    info = _TYPES.get(base)
    if info is None:
        raise ValueError(f"unknown data type {type_text!r}")
    count = int(m.group(2)) if m.group(2) is not None else 1
    if count == 0 or (info.kind == "ascii" and m.group(2) is None):
        raise ValueError(f"data type {type_text!r} needs a length, e.g. ASCII(16)")
    return base, count, info.size * count


def header_lines(data: bytes, count: int, name: str, what: str) -> tuple[list[str], int]:
    """The first ``count`` text lines of ``data`` and the offset just past them.

    Lines end with CRLF or LF; trailing padding spaces (TOB3 pads its last
    header line) are left for the field splitter, which strips them.
    """
    pos = 0
    raw: list[bytes] = []
    limit = min(len(data), MAX_HEADER_BYTES)
    for i in range(count):
        end = data.find(b"\n", pos, limit)
        if end < 0:
            raise ParseError(
                name,
                f"expected {count} {what} header lines, found {i} "
                "(the file ends or turns binary before the header is complete)",
                line=i + 1,
            )
        raw.append(data[pos:end].rstrip(b"\r"))
        pos = end + 1
    text, _ = decode(b"\n".join(raw))
    return text.split("\n"), pos


def header_fields(line: str) -> list[str]:
    """The comma-separated, quoted fields of one header line, stripped."""
    return [f.text.strip() for f in split_fields(line.strip())]


def record_layout(
    names: Sequence[str],
    units: Sequence[str],
    processing: Sequence[str],
    types: Sequence[str],
    *,
    name: str,
    first_line: int,
) -> list[Field]:
    """The record layout from the names/units/processing/types header lines.

    ``first_line`` is the 1-based line number of the names line; the others
    follow it. Every line must have one entry per field, as Campbell's own
    reader requires.
    """
    width = len(names)
    if width == 0 or names == [""]:
        raise ParseError(name, "expected field names, found none", line=first_line)
    for offset, (label, values) in enumerate(
        (("units", units), ("processing", processing), ("data types", types)), start=1
    ):
        if len(values) != width:
            raise ParseError(
                name,
                f"expected {width} {label} (one per field name), found {len(values)}",
                line=first_line + offset,
            )
    seen: dict[str, int] = {}
    for i, col in enumerate(names, start=1):
        if not col:
            raise ParseError(name, f"field {i} has an empty name", line=first_line)
        if col in seen:
            raise ParseError(
                name,
                f"duplicate field name {col!r} (fields {seen[col]} and {i}); "
                "every column needs a unique name",
                line=first_line,
            )
        seen[col] = i
    fields: list[Field] = []
    offset = 0
    for i, (col, unit, proc, typ) in enumerate(
        zip(names, units, processing, types, strict=True), start=1
    ):
        try:
            base, count, size = type_size(typ)
        except ValueError as exc:
            raise ParseError(
                name,
                f"field {i} ({col!r}): {exc}; known types: {', '.join(known_types())}",
                line=first_line + 3,
            ) from None
        info = _TYPES[base]
        fields.append(
            Field(
                name=col,
                unit=unit,
                processing=proc,
                type_name=typ,
                kind=info.kind,
                offset=offset,
                size=size,
                count=count,
                dtype=info.dtype,
                big_endian=info.big_endian,
            )
        )
        offset += size
    return fields


def known_types() -> list[str]:
    """The type names this module reads, spelled as Campbell writes them."""
    spelled = {"ASCII": "ASCII(n)", "SECNANO": "SecNano", "NSEC": "NSec"}
    return [spelled.get(t, t) for t in _TYPES]


def record_size(fields: Sequence[Field]) -> int:
    return sum(f.size for f in fields)


def records_series(data: bytes | memoryview, size: int, count: int) -> pl.Series:
    """``count`` records of ``size`` bytes from the start of ``data`` as a Binary series.

    The bytes are handed to arrow without a copy (a variable-size binary array
    whose offsets step by ``size``); polars converts that faster than a
    fixed-size binary array.
    """
    if count == 0:
        return pl.Series("record", [], dtype=pl.Binary)
    total = size * count
    values = pa.py_buffer(memoryview(data)[:total])
    if total < 2**31:
        offsets, kind = array.array("i", range(0, total + 1, size)), pa.binary()
    else:
        offsets, kind = array.array("q", range(0, total + 1, size)), pa.large_binary()
    arrow = pa.Array.from_buffers(kind, count, [None, pa.py_buffer(offsets), values])
    series = pl.from_arrow(arrow)
    assert isinstance(series, pl.Series)
    return series.alias("record")


def raw_expr(
    offset: int, size: int, dtype: type[pl.DataType], big_endian: bool, column: str = "record"
) -> pl.Expr:
    """The integer or float at ``offset`` of each record, as stored."""
    return (
        pl.col(column)
        .bin.slice(offset, size)
        .bin.reinterpret(dtype=dtype, endianness="big" if big_endian else "little")
    )


def value_expr(field: Field, column: str = "record") -> pl.Expr:
    """The Float64 value of a numeric field; missing markers become null."""
    if not field.numeric or field.dtype is None:
        raise ValueError(f"field {field.name!r} ({field.type_name}) is not numeric")
    raw = raw_expr(field.offset, field.size, field.dtype, field.big_endian, column)
    out: pl.Expr
    if field.kind == "float":
        value = raw.cast(pl.Float64)
        out = pl.when(value.is_finite()).then(value)
    elif field.kind == "fp2":
        out = fp2_expr(raw)
    elif field.kind == "bool":
        out = pl.when(raw != 0).then(pl.lit(-1.0)).otherwise(pl.lit(0.0))
    else:
        out = raw.cast(pl.Float64)
    return out.alias(field.name)


def fp2_expr(word: pl.Expr) -> pl.Expr:
    """Decode big-endian FP2 words (already read as UInt16) to Float64.

    A lookup in the table of all 65536 words (:func:`fp2_table`): ten times
    faster than decoding sign, exponent and mantissa column-wise.
    """
    return pl.lit(fp2_table()).gather(word.cast(pl.UInt32))


@functools.cache
def fp2_table() -> pl.Series:
    """The Float64 value of every FP2 word, null for NaN and +-INF.

    mantissa / 10**exponent computed in float64 is the double nearest the
    decimal the logger means, i.e. what parsing Campbell's printed text gives.
    """
    divisors = (1.0, 10.0, 100.0, 1000.0)
    values: list[float | None] = []
    for word in range(1 << 16):
        mantissa = word & 0x1FFF
        value = mantissa / divisors[(word >> 13) & 0x3]
        values.append(-value if word & 0x8000 and mantissa else value)
    for special in (FP2_POS_INF, FP2_NEG_INF, FP2_NAN):
        values[special] = None
    return pl.Series("fp2", values, dtype=pl.Float64)


def seconds_expr(
    seconds: pl.Expr, nanoseconds: pl.Expr | None = None, extra_ns: pl.Expr | None = None
) -> pl.Expr:
    """Datetime("us") labels from Campbell-epoch seconds (+ nanoseconds)."""
    micros = (seconds.cast(pl.Int64) + CAMPBELL_EPOCH_UNIX_S) * 1_000_000
    ns = pl.lit(0, dtype=pl.Int64)
    if nanoseconds is not None:
        ns = ns + nanoseconds.cast(pl.Int64)
    if extra_ns is not None:
        ns = ns + extra_ns
    return (micros + ns // 1000).cast(pl.Datetime("us"))


def channels(fields: Sequence[Field]) -> tuple[list[ChannelInfo], list[str], list[str]]:
    """(channels, skipped text/time columns, warnings) for the data fields."""
    out: list[ChannelInfo] = []
    skipped: list[str] = []
    warnings: list[str] = []
    for f in fields:
        # TMx/TMn columns hold times of extremes (skipped in TOA5 too), whatever their type
        if f.numeric and f.processing not in campbell.TIME_PROCESSING:
            out.append(
                ChannelInfo(
                    name=f.name,
                    statistic=campbell.statistic_for(f.processing, f.name),
                    unit=f.unit or None,
                    attrs={"data_type": f.type_name},
                )
            )
            continue
        skipped.append(f.name)
        if f.kind in NUMERIC_KINDS:
            warnings.append(
                f"field {f.name!r}: array type {f.type_name} is not read "
                "(one value per field expected); skipped"
            )
    return out, skipped, warnings


def decode_values(
    frame: pl.DataFrame,
    fields: Sequence[Field],
    channels: Sequence[ChannelInfo],
    timestamp: pl.Expr,
) -> pl.DataFrame:
    """The wide frame from a frame holding the Binary ``record`` column.

    Returns ``timestamp`` then one Float64 column per channel (in field
    order); all columns are decoded in one polars ``select`` (parallel).
    """
    wanted = {c.name for c in channels}
    return frame.select(
        timestamp.alias(TIMESTAMP), *[value_expr(f) for f in fields if f.name in wanted]
    )


def first_foreign_record(stamps: pl.Series, *, misaligned: bool = False) -> tuple[int, str] | None:
    """(index, why) of the first record whose time cannot belong to this file.

    A record is foreign when its time is before the Campbell epoch, or steps
    back more than MAX_STEP_BACK or forward more than MAX_STEP_FORWARD from
    the record before it: what bytes appended to a file, or inserted into it
    (every record after them misaligned), decode to. Bytes inserted inside a
    record leave its start (and time) nearly intact: when the records before
    lie on a regular grid of times (a whole number of the most common step
    from the first) and it does not, it is foreign too -- if it is the last
    before a foreign one, or anywhere when ``misaligned`` (the file does not
    end on a record boundary). A second record that is foreign leaves nothing
    to trust: the first is reported. None when all fit.
    """
    if stamps.len() == 0:
        return None
    step = stamps.diff()
    early = stamps < CAMPBELL_EPOCH
    bad = (early | (step < -MAX_STEP_BACK) | (step > MAX_STEP_FORWARD)).fill_null(False)
    i = int(bad.arg_max() or 0) if bad.any() else None
    j = _first_off_grid(stamps if i is None else stamps.head(i))
    if j is not None and (misaligned or (i is not None and j == i - 1)):
        return j, f"its time {stamps[j]} is off the regular times of the records before it"
    if i is None:
        return None
    if i == 1:
        return 0, f"the record after it is foreign too (its time {stamps[1]})"
    when = stamps[i]
    if early[i]:
        return i, f"its time {when} is before 1990, the Campbell epoch"
    delta = step[i]
    assert isinstance(delta, timedelta)
    if delta < timedelta(0):
        return i, f"its time {when} is {-delta} before the previous record's"
    return i, f"its time {when} is {delta} after the previous record's"


def _first_off_grid(stamps: pl.Series) -> int | None:
    """The first record off the grid of the records before it (at least 3 on it)."""
    micros = stamps.dt.epoch("us")
    if micros.len() < 4:
        return None
    steps = micros.diff().drop_nulls()
    positive = steps.filter(steps > 0)
    if positive.len() < 2:
        return None
    grid = int(positive.mode().min() or 0)  # type: ignore[arg-type]
    if grid <= 0:
        return None
    off = ((micros - micros[0]) % grid) != 0
    if not off.any():
        return None
    j = int(off.arg_max() or 0)
    return j if j >= 3 else None


def cut_foreign_records(
    frame: pl.DataFrame,
    offset_of: Callable[[int], int],
    display: str,
    warnings: list[str],
    *,
    misaligned: bool = False,
) -> pl.DataFrame:
    """``frame`` up to its first foreign record (:func:`first_foreign_record`),
    with a warning naming that record's byte offset; a file whose first record
    is foreign is a ParseError."""
    found = first_foreign_record(frame.get_column(TIMESTAMP), misaligned=misaligned)
    if found is None:
        return frame
    i, why = found
    if i == 0:
        raise ParseError(
            display, f"byte {offset_of(0)}: the first record is not a logger record ({why})"
        )
    after = frame.height - i - 1
    gone = f"it and the {after} record(s) after it were dropped" if after else "it was dropped"
    warnings.append(
        f"byte {offset_of(i)}: record {i + 1} is not a record of this file ({why}): "
        f"{gone} (bytes appended to the file or inserted into it?)"
    )
    return frame.head(i)
