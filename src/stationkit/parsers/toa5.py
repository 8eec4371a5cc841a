"""Campbell Scientific TOA5 (table-oriented ASCII) files.

Layout: four header lines, then one comma-separated line per record::

    "TOA5",station,model,serial,os,program,signature,table
    "TIMESTAMP","RECORD",name,...          field names
    "TS","RN",unit,...                     units (often empty)
    "","",Avg,...                          processing (Avg, Std, Max, Min, Smp, Tot, WVc, TMx ...)
    "2024-04-03 12:00:00",0,12.51,"NAN",...

Format rules this reader relies on:

* Campbell quotes strings and never numbers, so a column whose values are
  quoted (other than the missing marker ``"NAN"``) is text: it is skipped and
  listed in ``meta.skipped_channels`` (TMx/TMn time-of-extreme columns too).
  Files re-saved by spreadsheets lose the quotes; there a column with any
  non-numeric value is text.
* Missing: ``NAN``, ``INF``, ``-INF`` (overrange) and empty fields become null.
* Timestamps are logger-clock labels, by default the END of the interval;
  fractional seconds have trailing zeros trimmed (``.01``, ``.005``).
  Spreadsheet re-saves may carry a zone suffix (``+00:00``): then they are
  instants in UTC.
* The RECORD column is a counter, not a measurement: it is not stored.
* Array elements keep their names as written (``AirT_C(42)``).
* A UTF-8 BOM, CRLF, LF, CR (even mixed) are accepted. A last line without
  a line break is a partial write unless its syntax proves it complete
  (``...,12.93,12.`` would read 12.0): it is dropped with a warning (see
  :func:`stationkit.parsers.table.last_line_verdict`). Duplicate field names
  are an error, as no reading could say which column it is.
"""

from __future__ import annotations

import os

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers import campbell
from stationkit.parsers.base import (
    TIMESTAMP,
    ChannelInfo,
    FileMeta,
    ParseResult,
    Source,
)
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import (
    TableLayout,
    load_table,
    split_fields,
    text_columns,
    unique_names,
)
from stationkit.parsers.timeparse import parse_timestamps

FORMAT = "toa5"
HEADER_LINES = 4
MISSING_MARKERS = ("NAN", "INF", "-INF", "+INF", "NaN", "nan", "")
#: how much of the file start and end is read to tell text columns from numeric
SAMPLE_BYTES = 1 << 20
#: data lines of the start and end sampled for text columns
SAMPLE_HEAD_LINES, SAMPLE_TAIL_LINES = 400, 200


def sniff(head: bytes) -> bool:
    """True for a TOA5 file (quoted or spreadsheet-unquoted first field)."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    return head.startswith((b'"TOA5"', b"TOA5,"))


def _sample_lines(source: Source) -> tuple[list[str], list[str], bytes | None, str]:
    """Header+first lines, last lines, the whole content for file-likes, encoding."""
    whole: bytes | None = None
    if isinstance(source, (str, os.PathLike)):
        size = os.path.getsize(source)
        with open(source, "rb") as fh:
            head = fh.read(SAMPLE_BYTES)
            tail = b""
            if size > SAMPLE_BYTES:
                fh.seek(max(SAMPLE_BYTES, size - 65536))
                tail = fh.read()
    else:
        whole = read_bytes(source)
        head = whole[:SAMPLE_BYTES]
        tail = whole[max(SAMPLE_BYTES, len(whole) - 65536) :] if len(whole) > SAMPLE_BYTES else b""
    complete = head if tail == b"" else head[: head.rfind(b"\n") + 1]
    text, encoding = decode(complete)
    head_lines = split_lines(text)
    tail_lines: list[str] = []
    if tail:
        tail_text, _ = decode(tail[tail.find(b"\n") + 1 :])
        tail_lines = split_lines(tail_text)
    return head_lines, tail_lines, whole, encoding


def read_toa5(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a TOA5 file into a :class:`ParseResult`.

    Returns channels for every numeric column except TIMESTAMP and RECORD,
    with ``statistic`` from the processing line (see
    :func:`stationkit.parsers.campbell.statistic_for`) and ``unit`` from the
    units line. ``meta`` carries station name, logger model, serial, OS,
    program (without ``CPU:``), program signature and table name.
    """
    display = source_name(source, name)
    head_lines, tail_lines, whole, encoding = _sample_lines(source)
    if len(head_lines) < HEADER_LINES:
        raise ParseError(
            display,
            f"expected {HEADER_LINES} TOA5 header lines, found {len(head_lines)}",
            line=len(head_lines) + 1,
        )
    env = [f.text for f in split_fields(head_lines[0])]
    if not env or env[0].strip() != "TOA5":
        raise ParseError(display, 'expected "TOA5" as the first field', line=1)
    names = [f.text for f in split_fields(head_lines[1])]
    width = len(names)
    units = _pad([f.text for f in split_fields(head_lines[2])], width)
    processing = _pad([f.text for f in split_fields(head_lines[3])], width)
    columns = unique_names(names, display, line=2)

    ts_index = _find(names, units, "TS", campbell.TIMESTAMP_NAMES)
    if ts_index is None:
        raise ParseError(display, "expected a TIMESTAMP column (units 'TS')", line=2)
    rec_index = _find(names, units, "RN", campbell.RECORD_NAMES)

    text_cols = text_columns(
        head_lines[HEADER_LINES : HEADER_LINES + SAMPLE_HEAD_LINES]
        + tail_lines[-SAMPLE_TAIL_LINES:],
        width,
        quote='"',
        missing=MISSING_MARKERS,
        quoted_is_text=True,
    )
    channels: list[ChannelInfo] = []
    skipped: list[str] = []
    for i, col in enumerate(names):
        if i in (ts_index, rec_index) or not col.strip():
            continue  # empty names are spreadsheet padding, never data
        if i in text_cols or processing[i].strip() in campbell.TIME_PROCESSING:
            skipped.append(col)
            continue
        channels.append(
            ChannelInfo(
                name=col,
                statistic=campbell.statistic_for(processing[i], col),
                unit=units[i].strip() or None,
            )
        )
    layout = TableLayout(
        columns=columns,
        numeric=frozenset(c.name for c in channels),
        first_data_line=HEADER_LINES + 1,
        null_values=MISSING_MARKERS,
        required=names[ts_index],
        encoding="utf8-lossy",
    )
    data: str | os.PathLike[str] | bytes = (
        whole if whole is not None else source  # type: ignore[assignment]
    )
    frame, warnings = load_table(data, layout, display)
    stamps, ts_warnings = parse_timestamps(
        frame.get_column(names[ts_index]), name=display, first_line=HEADER_LINES + 1
    )
    wide = frame.select(stamps.alias(TIMESTAMP), *[pl.col(c.name) for c in channels])
    meta_kwargs = campbell.environment(env)
    extra = dict(meta_kwargs.pop("extra"))
    extra["encoding"] = encoding
    if rec_index is not None:
        extra["record_column"] = names[rec_index]
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            table=env[7].strip() if len(env) > 7 and env[7].strip() else None,
            skipped_channels=tuple(skipped),
            warnings=tuple(warnings + ts_warnings),
            extra=extra,
            **meta_kwargs,
        ),
        channels=tuple(channels),
        frame=wide,
    )


def _pad(values: list[str], width: int) -> list[str]:
    return (values + [""] * width)[:width]


def _find(names: list[str], units: list[str], unit: str, known: frozenset[str]) -> int | None:
    for i, (col, u) in enumerate(zip(names, units, strict=True)):
        if u.strip() == unit or col.strip().upper() in known:
            return i
    return None
