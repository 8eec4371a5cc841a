"""Campbell Scientific TOACI1 (older LoggerNet "Table Oriented ASCII CI") files.

Layout: two header lines, then one comma-separated line per record, exactly
as in TOA5 but without the units and processing lines::

    "TOACI1",station,table
    "TMSTAMP","RECNBR",name,...
    "2020-03-08 19:35:00",0,26.86,12.94,12.94

Format rules this reader relies on (the same data rules as TOA5):

* Campbell quotes strings and never numbers, so a column whose values are
  quoted (other than the missing marker ``"NAN"``) is text: it is skipped and
  listed in ``meta.skipped_channels``.
* Missing: ``NAN``, ``INF``, ``-INF`` (overrange) and empty fields become null.
* Timestamps are logger-clock labels (naive), by default the END of the
  interval; the file does not say, so ``timestamp_is_end_of_period`` is None.
* No units or processing lines: ``unit`` and ``statistic`` are None.
* The record column (``RECNBR``) is a counter, not a measurement: not stored.
* A UTF-8 BOM, CRLF or LF, a missing final line break and a partially
  written last line (dropped with a warning) are accepted; duplicate field
  names are an error.

:func:`read_campbell_block` is shared with the headerless ASCII reader
(:mod:`stationkit.parsers.csi_ascii`); :func:`timestamps_quickly` (the
shared timestamp parser with the layout chosen on a sample first) with the
CSIXML and Windographer readers too.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers import campbell
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, is_number, load_table, split_fields
from stationkit.parsers.timeparse import (
    DAYFIRST_FORMATS,
    ISO_FORMATS,
    MONTHFIRST_FORMATS,
    parse_timestamps,
)

FORMAT = "toaci1"
HEADER_LINES = 2
MISSING_MARKERS = ("NAN", "INF", "-INF", "+INF", "NaN", "nan", "")
#: how much of the file start and end is read to tell text columns from numeric
SAMPLE_BYTES = 1 << 20
TAIL_BYTES = 1 << 16
#: layouts without fractional seconds: polars parses them about 3x faster than %.f
FAST_ISO = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
FAST_DAYFIRST = ("%d/%m/%Y %H:%M:%S",)
FAST_MONTHFIRST = ("%m/%d/%Y %H:%M:%S",)
#: how many timestamps the layout is chosen from before the whole column is parsed
TIME_SAMPLE = 4000


def sniff(head: bytes) -> bool:
    """True for a TOACI1 file: the first field is ``"TOACI1"``."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    return head.startswith((b'"TOACI1"', b"TOACI1,"))


def read_toaci1(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a TOACI1 file into a :class:`ParseResult`.

    Returns one Float64 channel per numeric column except TMSTAMP and RECNBR,
    named as in the field-name line; ``statistic`` and ``unit`` are None (the
    format has no processing or units line). ``meta`` carries the station and
    table names from the first line.
    """
    display = source_name(source, name)
    sample = sample_source(source)
    if len(sample.head_lines) < HEADER_LINES:
        raise ParseError(
            display,
            f"expected {HEADER_LINES} TOACI1 header lines, found {len(sample.head_lines)}",
            line=len(sample.head_lines) + 1,
        )
    env = [f.text.strip() for f in split_fields(sample.head_lines[0])]
    if not env or env[0] != "TOACI1":
        raise ParseError(display, 'expected "TOACI1" as the first field', line=1)
    names = [f.text for f in split_fields(sample.head_lines[1])]
    block = read_campbell_block(
        source, sample, display=display, names=names, names_line=2, header_lines=HEADER_LINES
    )
    extra: dict[str, object] = {"encoding": sample.encoding}
    if block.record_column is not None:
        extra["record_column"] = block.record_column
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            station_name=(env[1] or None) if len(env) > 1 else None,
            table=(env[2] or None) if len(env) > 2 else None,
            skipped_channels=block.skipped,
            warnings=block.warnings,
            extra=extra,
        ),
        channels=block.channels,
        frame=block.frame,
    )


@dataclass(frozen=True)
class Sample:
    """The first and last lines of a source, read to inspect its columns."""

    head_lines: list[str]
    tail_lines: list[str]
    #: the whole content when the source is a file-like (it cannot be re-read)
    whole: bytes | None
    encoding: str
    #: lines end with a lone CR (classic Mac): polars only splits on LF
    cr_only: bool = False


@dataclass(frozen=True)
class Block:
    """A Campbell comma-separated data block read into a wide frame."""

    channels: tuple[ChannelInfo, ...]
    skipped: tuple[str, ...]
    frame: pl.DataFrame
    warnings: tuple[str, ...]
    record_column: str | None


def sample_source(source: Source) -> Sample:
    """Read the head and tail of ``source`` (shared with the headerless reader)."""
    whole: bytes | None = None
    if isinstance(source, (str, os.PathLike)):
        size = os.path.getsize(source)
        with open(source, "rb") as fh:
            head = fh.read(SAMPLE_BYTES)
            tail = b""
            if size > SAMPLE_BYTES:
                fh.seek(max(SAMPLE_BYTES, size - TAIL_BYTES))
                tail = fh.read()
    else:
        whole = read_bytes(source)
        head = whole[:SAMPLE_BYTES]
        tail = (
            whole[max(SAMPLE_BYTES, len(whole) - TAIL_BYTES) :]
            if len(whole) > SAMPLE_BYTES
            else b""
        )
    complete = head if not tail and len(head) < SAMPLE_BYTES else head[: head.rfind(b"\n") + 1]
    text, encoding = decode(complete)
    tail_lines: list[str] = []
    if tail:
        tail_text, _ = decode(tail[tail.find(b"\n") + 1 :])
        tail_lines = split_lines(tail_text)
    cr_only = b"\r" in head and b"\n" not in head
    return Sample(split_lines(text), tail_lines, whole, encoding, cr_only)


def read_campbell_block(
    source: Source,
    sample: Sample,
    *,
    display: str,
    names: Sequence[str],
    names_line: int | None,
    header_lines: int,
) -> Block:
    """Load the data block of a Campbell comma-separated file with ``names``.

    ``names_line`` is the line the names come from (None when the caller gave
    them), so errors about names can point at it. The timestamp column is the
    one named TIMESTAMP or TMSTAMP; RECORD / RECNBR is not stored.
    """
    names = list(names)
    _check_names(names, display, names_line)
    upper = [n.strip().upper() for n in names]
    ts_index = next((i for i, n in enumerate(upper) if n in campbell.TIMESTAMP_NAMES), None)
    if ts_index is None:
        raise ParseError(
            display,
            f"expected a timestamp column named TIMESTAMP or TMSTAMP among {names[:6]}",
            line=names_line,
        )
    rec_index = next((i for i, n in enumerate(upper) if n in campbell.RECORD_NAMES), None)
    text_cols = _text_columns(sample.head_lines[header_lines:] + sample.tail_lines, len(names))
    channels: list[ChannelInfo] = []
    skipped: list[str] = []
    for i, col in enumerate(names):
        if i in (ts_index, rec_index):
            continue
        if i in text_cols:
            skipped.append(col)
            continue
        channels.append(ChannelInfo(name=col))
    layout = TableLayout(
        columns=names,
        numeric=frozenset(c.name for c in channels),
        first_data_line=header_lines + 1,
        null_values=MISSING_MARKERS,
        required=names[ts_index],
        encoding="utf8-lossy",
    )
    data: str | os.PathLike[str] | bytes
    if sample.whole is not None:
        data = sample.whole
    elif isinstance(source, (str, os.PathLike)):
        data = source
    else:  # pragma: no cover - sample_source always keeps a file-like's content
        raise TypeError("expected a path or the content of a file-like")
    if sample.cr_only:
        raw = data if isinstance(data, bytes) else read_bytes(data)
        data = raw.replace(b"\r", b"\n")  # one byte for one: line numbers stay
    frame, warnings = load_table(data, layout, display)
    stamps, ts_warnings = timestamps_quickly(
        frame.get_column(names[ts_index]), name=display, first_line=header_lines + 1
    )
    wide = frame.select(
        stamps.alias(TIMESTAMP),
        # "NaN" parses to a float NaN in polars: a missing value, never a reading
        *[pl.col(c.name).fill_nan(None) for c in channels],
    )
    return Block(
        channels=tuple(channels),
        skipped=tuple(skipped),
        frame=wide,
        warnings=tuple(warnings + ts_warnings),
        record_column=names[rec_index] if rec_index is not None else None,
    )


def timestamps_quickly(
    values: pl.Series, *, name: str, first_line: int, dayfirst: bool | None = None
) -> tuple[pl.Series, list[str]]:
    """:func:`~stationkit.parsers.timeparse.parse_timestamps`, with the layout
    chosen on a sample first.

    parse_timestamps tries its layouts one by one on the whole column (and
    every day/month layout when the order is open), and ``%.f`` layouts are
    slow in polars. Here the layouts are tried on a sample (start, end and a
    spread of the column); when exactly one fits -- or an ISO one -- the whole
    column is parsed with that layout alone. Any doubt (the sample is
    ambiguous, or a value outside it does not fit) falls back to
    parse_timestamps on the whole column, so the result and the errors are
    the same as parse_timestamps gives.
    """
    n = values.len()
    if n <= TIME_SAMPLE:
        sample = values
    else:
        picks = pl.concat(
            [
                pl.int_range(0, 1000, eager=True),
                pl.int_range(n - 1000, n, eager=True),
                pl.int_range(0, n, max(1, n // (TIME_SAMPLE - 2000)), eager=True),
            ]
        ).unique(maintain_order=True)
        sample = values.gather(picks)
    iso = FAST_ISO + ISO_FORMATS
    families: list[tuple[str, ...]] = [iso]
    if dayfirst is not False:
        families.append(FAST_DAYFIRST + DAYFIRST_FORMATS)
    if dayfirst is not True:
        families.append(FAST_MONTHFIRST + MONTHFIRST_FORMATS)
    chosen: list[str] = []
    for family in families:
        fit = next((f for f in family if _fits(sample, f, name)), None)
        if fit is not None:
            chosen.append(fit)
            if family is iso:
                break
    if len(chosen) == 1:
        try:
            return parse_timestamps(values, name=name, first_line=first_line, formats=chosen)
        except ParseError:
            pass  # a value beyond the sample: let the general parser decide and explain
    return parse_timestamps(values, name=name, first_line=first_line, dayfirst=dayfirst)


def _fits(sample: pl.Series, fmt: str, name: str) -> bool:
    try:
        parse_timestamps(sample, name=name, first_line=1, formats=[fmt])
    except ParseError:
        return False
    return True


def _check_names(names: list[str], display: str, line: int | None) -> None:
    seen: dict[str, int] = {}
    for i, col in enumerate(names, start=1):
        if not col.strip():
            raise ParseError(display, f"field {i} has an empty name", line=line)
        if col in seen:
            raise ParseError(
                display,
                f"duplicate column name {col!r} (fields {seen[col]} and {i}); "
                "every column needs a unique name",
                line=line,
            )
        seen[col] = i


def _text_columns(lines: list[str], width: int) -> set[int]:
    """Columns holding text: quoted non-missing values, or non-numbers.

    Vectorised over the sample; a sample polars cannot split by commas alone
    (a quoted string with a comma in it) takes the line-by-line path.
    """
    kept = [line for line in lines if line.strip()]
    if not kept:
        return set()
    body = "\n".join(kept)
    names = [f"c{i}" for i in range(width)]
    try:
        raw = pl.read_csv(
            io.StringIO(body),
            has_header=False,
            new_columns=names,
            schema_overrides=dict.fromkeys(names, pl.String),
            quote_char=None,
            infer_schema=False,
            empty_string_is_null=False,
        )
    except pl.exceptions.PolarsError:
        return _text_columns_by_line(lines, width)
    if raw.width != width or raw.height != len(kept):
        return _text_columns_by_line(lines, width)
    # a line with fewer fields is a partial write: it says nothing reliable
    fields = pl.Series(kept).str.count_matches(",", literal=True) + 1
    raw = raw.filter(fields == width)
    text: set[int] = set()
    markers = list(MISSING_MARKERS)
    for i, name in enumerate(names):
        value = pl.col(name).str.strip_chars()
        quoted = value.str.starts_with('"') & value.str.ends_with('"') & (value.str.len_chars() > 1)
        inner = pl.when(quoted).then(value.str.slice(1, value.str.len_chars() - 2)).otherwise(value)
        present = ~inner.is_in(markers)
        not_number = inner.cast(pl.Float64, strict=False).is_null() | inner.str.contains(
            "(?i)nan|inf"
        )
        flags = raw.select(((quoted | not_number) & present).any()).item()
        if flags:
            text.add(i)
    return text


def _text_columns_by_line(lines: list[str], width: int) -> set[int]:
    text: set[int] = set()
    for line in lines:
        if not line.strip():
            continue
        fields = split_fields(line)
        if len(fields) < width:
            continue  # a partial line says nothing reliable
        for i, fld in enumerate(fields[:width]):
            if i in text:
                continue
            value = fld.text.strip()
            if value in MISSING_MARKERS:
                continue
            if fld.quoted or not is_number(value):
                text.add(i)
    return text
