"""Shared pieces of the NRG Systems text formats (SymphoniePRO exports, LOGR files).

Both families write the same kind of file: a header of sections, then a
``Data`` line, then one tab-separated table::

    NRG Export Service                      <- preamble title (first line)
    Export version:<TAB>3                   <- "Key:<TAB>value" lines
    <blank>
    Site Properties                         <- section title (Desktop exports add a TAB)
    Time Zone:<TAB>UTC-5:00
    <blank>
    Sensor History                          <- a "... History" section is a list of records
    Channel:<TAB>2                          <- a record starts at a blank line or a repeated key
    Effective Date:<TAB>2022-03-17 00:00:00
    ...
    Data
    Timestamp<TAB>Ch2_Anem_85.00m_S_Avg_m/s<TAB>...
    2022-03-17 00:00:00<TAB>0.139000<TAB>...

Header rules this module relies on (they hold across firmware and export tools):

* a line ``Key:<TAB>value``, ``Key: value`` or ``Key<TAB>value`` (LOGR firmware
  1.02 writes ``Channel<TAB>301`` without the colon) is a key and its value;
  values are stripped (trailing tabs occur);
* any other non-blank line (``Site Properties``, ``Export Parameters<TAB>``) is
  a section title; the first line is the preamble's title;
* within a section, records are separated by blank lines or -- in SymphoniePRO
  Desktop exports, which have no blank lines -- by a key that repeats;
* the line ``Data`` ends the header; the next non-blank line is the column
  header (event logs have none: their events follow directly).

The data block is read by :func:`stationkit.parsers.table.load_table`
(polars). Missing values are empty fields and ``nan``; they become null as
whole fields only.
"""

from __future__ import annotations

import codecs
import gzip
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import Source
from stationkit.parsers.sources import decode, read_bytes, split_lines
from stationkit.parsers.table import TableLayout, load_table, unique_names

#: whole-field missing markers of NRG text files (LOGR writes ``nan``)
MISSING_MARKERS = ("", "nan", "NaN", "NAN", "-nan", "-NaN")

#: NRG statistic spellings (column-name tokens, lower case) -> DESIGN vocabulary.
#: ``GustDir`` / ``Gust_Dir`` is a vane's direction at the time of the gust of
#: its source anemometer: a value of the direction signal, calibrated like an
#: average, so it maps to ``gust``; the raw token stays in ``attrs``.
STATISTIC_TOKENS = {
    "avg": "avg",
    "sd": "sd",
    "std": "sd",
    "stdev": "sd",
    "stddev": "sd",
    "min": "min",
    "max": "max",
    "gust": "gust",
    "gustdir": "gust",
    "gust_dir": "gust",
    "sum": "sum",
    "total": "sum",
    "tot": "sum",
    "sample": "sample",
    "samples": "sample",
    "samp": "sample",
    "count": "count",
    "cnt": "count",
    "ti": "ti",
    "median": "median",
    "range": "range",
}

#: layouts of header dates (Effective Date, Logger History Date)
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M",
)

#: the header key that starts a sensor record, and its fallback
CHANNEL_KEYS = ("Channel", "Export Channel")

GZIP_MAGIC = b"\x1f\x8b"
#: the first read of a path; grown until the whole header is in
HEAD_CHUNK = 1 << 16
#: a header larger than this is not an NRG header
MAX_HEADER_BYTES = 1 << 24
#: how much of the data block's start and end is read to find text columns
SAMPLE_HEAD = 1 << 16
SAMPLE_TAIL = 1 << 14

_DATA_TITLE = re.compile(rb"(?:\A|\r\n|\n|\r)Data[\t ]*(?:\r\n|\n|\r)")
_UTC_OFFSET = re.compile(r"^\(?\s*(?:UTC|GMT)?\s*([+\-\u2212])\s*(\d{1,2})(?:\s*[:.h]\s*(\d{2}))?")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass
class Section:
    """One header section: its title, 1-based line, and key/value records."""

    title: str
    line: int
    records: list[dict[str, str]] = field(default_factory=list)

    def merged(self) -> dict[str, str]:
        """All records as one mapping (first value of a repeated key wins)."""
        out: dict[str, str] = {}
        for record in self.records:
            for key, value in record.items():
                out.setdefault(key, value)
        return out


@dataclass
class Header:
    """The parsed header of an NRG text file."""

    sections: list[Section]
    #: 1-based line of the ``Data`` title
    data_line: int
    #: 1-based line of the column header, or None when the file has none
    columns_line: int | None
    #: column names as written (a trailing empty name from a trailing TAB kept as "")
    columns: list[str]
    #: the first non-blank line after ``Data`` (the column header, or the first event)
    first_after_data: str

    @property
    def preamble(self) -> Section:
        return self.sections[0]

    def section(self, title: str) -> Section | None:
        """The first section whose title is ``title`` (case-insensitive)."""
        want = title.casefold()
        for section in self.sections:
            if section.title.casefold() == want:
                return section
        return None

    def value(self, *keys: str) -> str | None:
        """The first value of any of ``keys`` in a non-history section."""
        for key in keys:
            for section in self.sections:
                if is_history(section.title):
                    continue
                for record in section.records:
                    if key in record:
                        return record[key]
        return None

    def as_extra(self) -> dict[str, Any]:
        """The header for ``FileMeta.extra``: one entry per section.

        A ``... History`` section is a list of records (dicts of the keys as
        written, values as text); any other section is one dict. The preamble
        is under ``preamble`` with its title under ``preamble_title``.
        """
        extra: dict[str, Any] = {"preamble_title": self.preamble.title}
        for i, section in enumerate(self.sections):
            key = "preamble" if i == 0 else snake_case(section.title)
            if key in extra:
                key = f"{key}_{i}"
            extra[key] = (
                [dict(r) for r in section.records]
                if is_history(section.title)
                else section.merged()
            )
        return extra


@dataclass(frozen=True)
class RawFile:
    """What a reader needs of its source: the header lines and the data."""

    #: a path polars may read directly, when the bytes need no conversion
    path: str | os.PathLike[str] | None
    #: the whole content (decompressed, UTF-8 compatible) otherwise
    data: bytes | None
    header_lines: list[str]
    encoding: str
    compressed: str | None
    #: byte offset of the first data line (after the column header)
    data_offset: int = 0


@dataclass(frozen=True)
class SensorRecords:
    """Sensor History records grouped by channel number, in file order."""

    by_channel: Mapping[int, list[dict[str, str]]]

    def for_channel(self, channel: int | None) -> list[dict[str, str]]:
        if channel is None:
            return []
        return self.by_channel.get(channel, [])


def is_history(title: str) -> bool:
    return title.strip().casefold().endswith("history")


def snake_case(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.strip().casefold()).strip("_") or "section"


def head_lines(head: bytes, limit: int = 60) -> list[str]:
    """The first complete lines of a sniffer's head, BOM-free, for matching."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        body = head[: len(head) - (len(head) % 2)]
        text = body.decode("utf-16", errors="replace")
    else:
        text = head.removeprefix(codecs.BOM_UTF8).decode("latin-1")
    lines = split_lines(text)
    if len(head) >= 4096 and lines and not text.endswith(("\n", "\r")):
        lines.pop()  # cut by the head size
    return lines[:limit]


def gunzip_head(head: bytes) -> bytes:
    """As much of a gzip stream's start as ``head`` holds, decompressed."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 1 << 16)
    except zlib.error:
        return b""


def parse_key_value(line: str) -> tuple[str, str] | None:
    """``(key, value)`` of a header line, or None for a title or blank line."""
    stripped = line.strip()
    if not stripped:
        return None
    if "\t" in line:
        key, _, value = line.partition("\t")
        key = key.strip()
        value = value.strip()
        if key.endswith(":"):
            return key[:-1].strip(), value
        if value:
            return key, value  # LOGR firmware 1.02: "Channel<TAB>301"
        return None  # "Export Parameters<TAB>": a Desktop section title
    key, sep, value = stripped.partition(":")
    if sep and key.strip():
        return key.strip(), value.strip()
    return None


def parse_header(lines: Sequence[str], display: str) -> Header:
    """Split header lines into sections up to the ``Data`` line."""
    sections: list[Section] = []
    current: Section | None = None
    record: dict[str, str] | None = None
    data_line: int | None = None
    for idx, line in enumerate(lines):
        number = idx + 1
        stripped = line.strip()
        if stripped == "Data":
            data_line = number
            break
        if not stripped:
            record = None
            continue
        pair = parse_key_value(line)
        if pair is None:
            current = Section(stripped, number)
            sections.append(current)
            record = None
            continue
        if current is None:
            current = Section("", number)
            sections.append(current)
        key, value = pair
        if record is None or key in record:
            record = {}
            current.records.append(record)
        record[key] = value
    if data_line is None:
        raise ParseError(
            display,
            "expected a 'Data' line ending the NRG header, found none",
            line=len(lines) or None,
        )
    if not sections:
        raise ParseError(display, "expected NRG header sections before 'Data'", line=1)
    first_after = ""
    columns_line: int | None = None
    for idx in range(data_line, len(lines)):
        if lines[idx].strip():
            first_after = lines[idx]
            columns_line = idx + 1
            break
    columns = first_after.split("\t") if columns_line is not None else []
    return Header(sections, data_line, columns_line, columns, first_after)


def header_end(head: bytes) -> int | None:
    """Byte offset just after the line that follows ``Data``, if ``head`` holds it."""
    match = _DATA_TITLE.search(head)
    if match is None:
        return None
    pos = match.end()
    while True:
        if pos >= len(head):
            return None
        nl = _next_break(head, pos)
        if nl is None:
            return None
        line, after = head[pos : nl[0]], nl[1]
        if line.strip():
            return after
        pos = after


def _next_break(data: bytes, pos: int) -> tuple[int, int] | None:
    """(start, end) of the first line break at or after ``pos``."""
    n = data.find(b"\n", pos)
    r = data.find(b"\r", pos)
    if n < 0 and r < 0:
        return None
    if r >= 0 and (n < 0 or r < n):
        if r + 1 < len(data) and data[r + 1 : r + 2] == b"\n":
            return r, r + 2
        if r + 1 >= len(data):
            return None  # a CR at the end may be the first half of CRLF
        return r, r + 1
    return n, n + 1


def read_raw(source: Source, display: str) -> RawFile:
    """Read a path or file-like: header lines, and the data for polars.

    gzip content (``.dat.gz``) is decompressed transparently; UTF-16 is
    transcoded to UTF-8 and lone-CR line ends become LF, as polars reads
    neither. A path whose bytes need none of this is left for polars to read.
    """
    compressed: str | None = None
    whole: bytes | None = None
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            head = fh.read(HEAD_CHUNK)
            if head.startswith(GZIP_MAGIC):
                whole = head + fh.read()
            else:
                while header_end(head) is None and len(head) < MAX_HEADER_BYTES:
                    more = fh.read(len(head))
                    if not more:
                        break
                    head += more
    else:
        whole = read_bytes(source)
        head = whole
    if whole is not None and whole.startswith(GZIP_MAGIC):
        try:
            whole = gzip.decompress(whole)
        except (OSError, EOFError, zlib.error) as exc:
            raise ParseError(display, f"expected a readable gzip stream ({exc})") from None
        compressed = "gzip"
        head = whole
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        if whole is None:
            whole = Path(source).read_bytes()  # type: ignore[arg-type]
        text, encoding = decode(whole)
        whole = text.encode("utf-8")
        head = whole
    else:
        encoding = ""
    end = header_end(head)
    header_bytes = head if end is None else head[:end]
    text, found = decode(header_bytes)
    encoding = encoding or found
    lines = split_lines(text)
    lone_cr = b"\n" not in header_bytes and b"\r" in header_bytes
    if lone_cr:
        if whole is None:
            whole = Path(source).read_bytes()  # type: ignore[arg-type]
        whole = whole.replace(b"\r", b"\n")
    path = source if whole is None and isinstance(source, (str, os.PathLike)) else None
    offset = len(header_bytes)  # lone CR -> LF keeps byte offsets
    return RawFile(path, whole, lines, encoding, compressed, offset)


def sample_rows(raw: RawFile, width: int) -> list[list[str]]:
    """Fields of the first and last data lines (those with at least ``width`` fields)."""
    if raw.data is not None:
        body = raw.data[raw.data_offset :]
        head, tail = body[:SAMPLE_HEAD], body[max(SAMPLE_HEAD, len(body) - SAMPLE_TAIL) :]
        head_complete = len(body) <= SAMPLE_HEAD
    else:
        assert raw.path is not None
        size = os.path.getsize(raw.path)
        with open(raw.path, "rb") as fh:
            fh.seek(raw.data_offset)
            head = fh.read(SAMPLE_HEAD)
            start = max(raw.data_offset + SAMPLE_HEAD, size - SAMPLE_TAIL)
            tail = b""
            if start < size:
                fh.seek(start)
                tail = fh.read()
        head_complete = raw.data_offset + SAMPLE_HEAD >= size
    lines = split_lines(head.decode("utf-8", "replace"))
    if not head_complete and lines:
        lines.pop()  # cut by the sample size
    if tail:
        tail_lines = split_lines(tail.decode("utf-8", "replace"))
        lines += tail_lines[1:]  # the first may be cut
    rows = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) >= width:
            rows.append(fields)
    return rows


def text_columns(rows: Sequence[list[str]], columns: Sequence[str]) -> set[str]:
    """Columns (after the first) whose sampled values are all text.

    A column mixing numbers and text stays numeric, so the text is reported
    as a bad value on its line instead of the column being dropped.
    """
    numbers: set[str] = set()
    text: set[str] = set()
    for fields in rows:
        for i in range(1, len(columns)):
            col = columns[i]
            if not col or col in numbers:
                continue
            value = fields[i].strip()
            if value in MISSING_MARKERS:
                continue
            try:
                float(value)
            except ValueError:
                text.add(col)
            else:
                numbers.add(col)
    return text - numbers


def load_data(
    raw: RawFile,
    header: Header,
    numeric: frozenset[str],
    display: str,
) -> tuple[pl.DataFrame, list[str]]:
    """Load the tab-separated data block; numeric columns as Float64.

    Returns the frame (one column per header column; an empty trailing name
    becomes a placeholder) and warnings. A row with more fields than the
    header whose extra fields are all empty (a trailing TAB) is accepted by
    :func:`~stationkit.parsers.table.load_table`.
    """
    assert header.columns_line is not None
    columns = unique_names(header.columns, display, line=header.columns_line)
    layout = TableLayout(
        columns=columns,
        numeric=numeric,
        first_data_line=header.columns_line + 1,
        separator="\t",
        quote_char=None,
        null_values=MISSING_MARKERS,
        required=columns[0],
        encoding="utf8-lossy",
        # NRG's exporters print each column with a fixed count of decimals
        # ("%.4f") and cloud exports end without a line break: that count
        # proves a last line complete
        fixed_decimals=True,
    )
    data: str | os.PathLike[str] | bytes = raw.path if raw.path is not None else raw.data or b""
    return load_table(data, layout, display)


def to_float(text: str | None) -> float | None:
    """A header number (``0.09350``, ``85.00``, ``-5``), else None."""
    if text is None:
        return None
    match = _NUMBER.fullmatch(text.strip())
    return float(match.group(0)) if match else None


def parse_utc_offset(text: str | None) -> float | None:
    """Hours east of UTC of ``UTC-5:00``, ``UTC+05:30``, ``-5``, ``UTC``; else None."""
    if text is None:
        return None
    value = text.strip()
    if value.upper() in {"UTC", "GMT", "Z", "UTC+0", "UTC-0"}:
        return 0.0
    match = _UTC_OFFSET.match(value)
    if match is None:
        number = to_float(value)
        return number if number is not None and -14 <= number <= 14 else None
    sign = -1.0 if match.group(1) in "-\u2212" else 1.0
    hours = int(match.group(2))
    minutes = int(match.group(3) or 0)
    if hours > 14 or minutes >= 60:
        return None
    return sign * (hours + minutes / 60)


def parse_interval(key: str, value: str) -> float | None:
    """Seconds of an interval header value; the unit from key or value."""
    text = value.strip().lower()
    if re.fullmatch(r"\d{1,2}:\d{2}:\d{2}", text):
        h, m, s = (int(x) for x in text.split(":"))
        return float(h * 3600 + m * 60 + s)
    number_match = _NUMBER.match(text)
    if number_match is None:
        return None
    number = float(number_match.group(0))
    unit = (text[number_match.end() :].strip() or key.lower()).strip()
    if re.search(r"\b(sec|secs|second|seconds|s)\b|\(s\)|\(sec\)", unit):
        return number
    if re.search(r"\b(min|mins|minute|minutes)\b|\(min\)", unit):
        return number * 60
    if re.search(r"\b(h|hr|hour|hours)\b|\(h\)|\(hr\)", unit):
        return number * 3600
    return None


def statistic_for(token: str) -> str | None:
    """DESIGN's statistic for an NRG statistic token (``Avg``, ``GustDir``...)."""
    return STATISTIC_TOKENS.get(token.casefold())


def sensor_records(section: Section | None) -> SensorRecords:
    """Sensor History records by channel number (``Channel``, else ``Export Channel``)."""
    by_channel: dict[int, list[dict[str, str]]] = {}
    if section is not None:
        for record in section.records:
            number: int | None = None
            for key in CHANNEL_KEYS:
                value = to_float(record.get(key))
                if value is not None and value.is_integer():
                    number = int(value)
                    break
            if number is not None:
                by_channel.setdefault(number, []).append(record)
    return SensorRecords(by_channel)


def normalise_date(text: str) -> str:
    """``2025-05-08  13:33:14`` (LOGR's double space) -> ``2025-05-08 13:33:14``."""
    return " ".join(text.split())


def date_key(text: str) -> datetime | None:
    """A header date (``2022-03-17 00:00:00``, LOGR's double space, US ``3/17/2022 ...``)."""
    value = normalise_date(text)
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def current_record(records: Sequence[dict[str, str]]) -> dict[str, str] | None:
    """The record with the latest ``Effective Date`` (the last one on ties or without dates)."""
    if not records:
        return None
    best_index = len(records) - 1
    best_key: datetime | None = None
    for i, record in enumerate(records):
        key = date_key(record.get("Effective Date", ""))
        if key is not None and (best_key is None or key >= best_key):
            best_key, best_index = key, i
    return records[best_index]


def sensor_attrs(records: Sequence[dict[str, str]]) -> dict[str, Any]:
    """ChannelInfo.attrs from a channel's Sensor History records.

    The current record's calibration facts as numbers (``scale_factor``,
    ``offset``, ``height_m`` [m], ``bearing_deg`` [deg] from Bearing or Boom
    Bearing, ``vane_mounting_angle_deg``, ``total_direction_offset_deg``),
    its text facts (``serial_number``, ``description``, ``sensor_type``,
    ``units``, ``measurand``, ``measurement_type``, ``effective_date``),
    every key of it under ``sensor``, and all records under ``history``.
    """
    current = current_record(records)
    if current is None:
        return {}
    attrs: dict[str, Any] = {}
    numbers = {
        "Scale Factor": "scale_factor",
        "Offset": "offset",
        "Height": "height_m",
        "Bearing": "bearing_deg",
        "Boom Bearing": "bearing_deg",  # LOGR firmware 1.01
        "Vane Mounting Angle": "vane_mounting_angle_deg",
        "Total Direction Offset": "total_direction_offset_deg",
    }
    for key, name in numbers.items():
        number = to_float(current.get(key))
        if number is not None:
            attrs.setdefault(name, number)
    texts = {
        "Serial Number": "serial_number",
        "Description": "description",
        "Type": "sensor_type",
        "Sensor Type": "sensor_type",
        "Units": "units",
        "Measurand": "measurand",
        "Measurement Type": "measurement_type",  # IEA Task 43 id, LOGR firmware 1.01
        "Effective Date": "effective_date",
    }
    for key, name in texts.items():
        value = current.get(key)
        if value:
            attrs.setdefault(name, normalise_date(value) if name == "effective_date" else value)
    attrs["sensor"] = dict(current)
    attrs["history"] = [dict(r) for r in records]
    return attrs


def minus_thousand_warnings(
    frame: pl.DataFrame, names: Sequence[str], first_line: int
) -> list[str]:
    """Note columns holding -1000 (kept as logged; see the module docs of the readers)."""
    if not names or frame.height == 0:
        return []
    counts = frame.select([(pl.col(n) == -1000.0).sum().alias(n) for n in names]).row(0)
    warnings = []
    for col, count in zip(names, counts, strict=True):
        if count:
            row = int((frame.get_column(col) == -1000.0).arg_max() or 0)
            warnings.append(
                f"line {first_line + row}: column {col!r} holds -1000 in {count} of "
                f"{frame.height} rows; kept as logged (NRG documents no -1000 missing marker)"
            )
    return warnings


def duplicate_warnings(stamps: pl.Series, first_line: int) -> list[str]:
    """Note repeated timestamps (rows are kept; the clean layer picks one)."""
    dup = stamps.is_duplicated()
    if not dup.any():
        return []
    row = int(dup.arg_max() or 0)
    count = int(dup.sum())
    return [
        f"line {first_line + row}: {count} rows share a timestamp with another row; all are kept"
    ]
