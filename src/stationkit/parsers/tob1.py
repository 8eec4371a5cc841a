"""Campbell Scientific TOB1 (table-oriented binary, format 1) files.

Layout: five quoted, comma-separated ASCII header lines (CRLF), then
fixed-length binary records, the fields back to back with no separators::

    "TOB1",station,model,serial,os,program,signature,table
    "SECONDS","NANOSECONDS","RECORD",name,...      field names
    "SECONDS","NANOSECONDS","RN",unit,...          units, as written ([degC], [m/s] ...)
    "","","",Smp,...                               processing (Avg, Std, Max, Min, Smp, ...)
    "ULONG","ULONG","ULONG",FP2,...                data types
    <record><record>...

Format rules this reader relies on:

* Field sizes and byte orders come from the data-type line (see
  :mod:`stationkit.parsers.campbell_binary`): TOB1 numbers are mostly
  little-endian (IEEE4, IEEE8, ULONG, LONG); FP2, UINT2/UINT4/INT2/INT4 and
  the ``B`` variants are big-endian.
* Time labels: ``SECONDS`` + ``NANOSECONDS`` since 1990-01-01 00:00:00 on
  the logger clock (no zone), by default the END of the interval as in TOA5;
  the header states neither zone nor interval. A file without SECONDS may
  carry its time in a SecNano/NSec field named ``TIMESTAMP``. Labels are
  naive ``Datetime("us")`` (sub-microsecond parts truncated).
* ``RECORD`` is a counter, not a measurement: it is not stored.
* Text columns (ASCII(n) strings, BOOL8 bit strings) and time columns
  (SecNano/NSec, and any column whose processing is TMx/TMn) are skipped and listed in
  ``meta.skipped_channels`` -- exactly the columns Campbell's TOA5
  conversion quotes or prints as timestamps.
* Missing: IEEE NaN/+-INF and the FP2 NaN/INF patterns become null. BOOL
  reads as -1/0.
* Records stay in file order. A trailing partial record (a copy cut short,
  a stray byte appended by a text tool) is dropped with a warning.
* Appended or inserted bytes: the header declares no interval, so the check
  is the record times (:func:`~stationkit.parsers.campbell_binary.first_foreign_record`):
  at the first record dated before 1990, or more than a day before or 400
  days after the record before it, the file is cut with a warning naming
  that record's byte offset (a file whose first record fails is refused).
"""

from __future__ import annotations

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers import campbell
from stationkit.parsers.base import FileMeta, ParseResult, Source
from stationkit.parsers.campbell_binary import (
    Field,
    cut_foreign_records,
    decode_values,
    header_fields,
    header_lines,
    raw_expr,
    record_layout,
    record_size,
    records_series,
    seconds_expr,
)
from stationkit.parsers.campbell_binary import (
    channels as binary_channels,
)
from stationkit.parsers.sources import read_bytes, source_name

FORMAT = "tob1"
HEADER_LINES = 5
MAGIC = b'"TOB1"'
SECONDS_FIELD = "SECONDS"
NANOSECONDS_FIELD = "NANOSECONDS"
RECORD_FIELD = "RECORD"
#: names a SecNano/NSec field may carry when it is the record's time
TIME_FIELDS = campbell.TIMESTAMP_NAMES
#: integer types Campbell writes SECONDS / NANOSECONDS as
_COUNTER_TYPES = frozenset({"ULONG", "LONG", "UINT4", "INT4"})


def sniff(head: bytes) -> bool:
    """True for a TOB1 file: the first header field is the quoted "TOB1"."""
    return head.startswith(MAGIC + b",")


def read_tob1(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a TOB1 file into a :class:`ParseResult`.

    Returns one Float64 channel per numeric field (IEEE4/8, FP2, integers,
    BOOL as -1/0) except SECONDS, NANOSECONDS and RECORD, in file order, with
    ``statistic`` from the processing line
    (:func:`stationkit.parsers.campbell.statistic_for`), ``unit`` from the
    units line and the data type in ``attrs["data_type"]``. ``meta`` carries
    station name, logger model, serial, OS, program (without ``CPU:``) and
    table; ``extra`` the program signature, record size and header length
    [bytes].
    """
    display = source_name(source, name)
    data = read_bytes(source)
    if not data.startswith(MAGIC):
        raise ParseError(display, 'expected "TOB1" as the first header field', line=1)
    lines, data_start = header_lines(data, HEADER_LINES, display, "TOB1")
    env = header_fields(lines[0])
    names, units, processing, types = (header_fields(line) for line in lines[1:HEADER_LINES])
    fields = record_layout(names, units, processing, types, name=display, first_line=2)
    size = record_size(fields)
    if size == 0:
        raise ParseError(display, "the data types add up to a 0-byte record", line=5)

    timestamp, time_fields = _timestamp(fields, display)
    data_fields = [f for f in fields if f.name not in time_fields]
    channels, skipped, warnings = binary_channels(data_fields)

    body = len(data) - data_start
    count, rest = divmod(body, size)
    if rest:
        warnings.append(
            f"byte {data_start + count * size}: {rest} trailing byte(s) dropped "
            f"(a partial record; records are {size} bytes)"
        )
    records = records_series(memoryview(data)[data_start:], size, count)
    wide = decode_values(pl.DataFrame([records]), data_fields, channels, timestamp)
    wide = cut_foreign_records(
        wide, lambda i: data_start + i * size, display, warnings, misaligned=rest != 0
    )

    meta_kwargs = campbell.environment(env)
    extra = dict(meta_kwargs.pop("extra"))
    extra["record_size"] = size
    extra["header_bytes"] = data_start
    if RECORD_FIELD in time_fields:
        extra["record_column"] = RECORD_FIELD
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            table=env[7] if len(env) > 7 and env[7] else None,
            skipped_channels=tuple(skipped),
            warnings=tuple(warnings),
            extra=extra,
            **meta_kwargs,
        ),
        channels=tuple(channels),
        frame=wide,
    )


def _timestamp(fields: list[Field], display: str) -> tuple[pl.Expr, set[str]]:
    """The timestamp expression and the names of the fields it (and RECORD) uses."""
    by_name = {f.name: f for f in fields}
    used = {RECORD_FIELD} if RECORD_FIELD in by_name else set()
    seconds = by_name.get(SECONDS_FIELD)
    if seconds is not None:
        nanos = by_name.get(NANOSECONDS_FIELD)
        used.add(SECONDS_FIELD)
        parts = [_counter(seconds, display)]
        if nanos is not None:
            used.add(NANOSECONDS_FIELD)
            parts.append(_counter(nanos, display))
        return seconds_expr(*parts), used
    for f in fields:
        if f.kind == "time" and f.count == 1 and f.name.upper() in TIME_FIELDS:
            used.add(f.name)
            secs = raw_expr(f.offset, 4, pl.Int32, f.big_endian)
            nsec = raw_expr(f.offset + 4, 4, pl.UInt32, f.big_endian)
            return seconds_expr(secs, nsec), used
    raise ParseError(
        display,
        f"expected a {SECONDS_FIELD} field (or a SecNano {'/'.join(sorted(TIME_FIELDS))} "
        "field): a TOB1 table without timestamps cannot be read as readings",
        line=2,
    )


def _counter(field: Field, display: str) -> pl.Expr:
    base = field.type_name.strip().upper()
    if base not in _COUNTER_TYPES or field.dtype is None:
        raise ParseError(
            display,
            f"field {field.name!r}: expected a 4-byte integer type "
            f"({', '.join(sorted(_COUNTER_TYPES))}), found {field.type_name!r}",
            line=5,
        )
    return raw_expr(field.offset, field.size, field.dtype, field.big_endian)
