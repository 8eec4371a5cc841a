"""Kintech Engineering Atlas output data files (``.wnd``).

Layout (Atlas 2.x; one record per line, separated by the declared field
separator, a single space in every file seen)::

    DF30E0BF...                      line 1: 128 hex digits (file hash / signature)
    Kintech Engineering Atlas Output Data File#2.0.0.342#UTC+00:00:00#yyyy/MM/dd#,#.# #
        <site>#<site id>#<logger serial>#<guid>#[{"ColumnPrefix":"FRQ(1)", ...}, ...]#
    DateTime Battery FRQ(1) FRQ(1)-STDev FRQ(1)-Min FRQ(1)-Max FRQ(1)-TI30 ...      raw prefixes
    DateTime Battery F1_WS_100_0_TFCA F1_WS_100_0_TFCA-STDev ...                    named columns
    2021-03-24,00:10 12.800 9.409 0.200 8.98 9.68 0.0 ...

Line 2 is ``#``-separated: signature, Atlas version, time zone
(``UTC+hh:mm:ss``), date format (.NET custom format), list separator,
decimal separator, field separator, site name, site id, logger serial,
session GUID, then a JSON array describing each channel (``ColumnPrefix``,
``ChannelNumber``, ``Name``, ``Units``, ``Height`` [m], ``Orientation``
[deg], ``Magnitude``, ``Slope``, ``Offset``).

Format rules this reader relies on:

* Channels are the named columns of line 4, exactly as written (Atlas
  replaces spaces in sensor names with ``_``: the JSON says ``POT 2K``, the
  column says ``POT_2K``). Each column is matched to its JSON entry through
  the raw prefix in the same position of line 3 (``FRQ(1)-STDev`` is
  ``FRQ(1)`` with the ``STDev`` statistic), never by name.
* Statistic from the column suffix: none -> ``avg``, ``-STDev`` -> ``sd``,
  ``-Min`` / ``-Max`` -> ``min`` / ``max``, ``-TI30`` (and any ``-TI...``)
  -> ``ti`` (dimensionless, so no unit); the suffix as written is kept in
  ``attrs["suffix"]``.
* ``unit``, ``height_m`` [m] from the JSON entry; ``slope``, ``offset``,
  ``orientation_deg``, ``magnitude``, ``channel_number``, ``column_prefix``
  and the JSON ``Name`` go to ``ChannelInfo.attrs`` for the calibrate stage
  (Atlas has already applied slope and offset to the logged values).
* Timestamps are logger-clock labels ``<date><list separator><time>``
  (``2021-03-24,00:10``: a comma inside the field). The declared date
  format is a .NET pattern whose ``/`` stands for the culture's date
  separator, so ``yyyy/MM/dd`` is written ``2021-03-24``: ``/``, ``-`` and
  ``.`` are all accepted, and any other common layout as a fallback. The
  header zone (``UTC+05:30:00``) is ``meta.utc_offset_hours``; the file does
  not say whether labels are period starts or ends.
* Records are written as logged: mixed 5/10-minute steps, gaps and exact
  duplicate rows are kept as they are.
* Numbers may carry the culture's digit grouping (``1,025.9`` with list
  separator ``,`` and decimal ``.``): grouping is removed only where the
  whole field is a well-formed grouped number.
* Missing: ``NaN`` (also ``NAN``, ``nan``, ``-NaN``) and empty fields become null.
* UTF-8 with or without BOM (``°`` in units), Latin-1, CRLF / LF / CR, a
  missing final line break and a partially written last line (dropped with a
  warning) are accepted.
"""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, load_table
from stationkit.parsers.timeparse import parse_timestamps

FORMAT = "kintech_wnd"
SIGNATURE = "Kintech Engineering Atlas Output Data File"
#: the fixed fields of header line 2, before the JSON channel list
HEADER_FIELDS = (
    "signature",
    "atlas_version",
    "time_zone",
    "date_format",
    "list_separator",
    "decimal_separator",
    "field_separator",
    "site_name",
    "site_id",
    "logger_serial",
    "session_guid",
)
TIMESTAMP_COLUMN = "DateTime"
MISSING_MARKERS = ("NaN", "NAN", "nan", "-NaN", "")
#: column suffix (lower case) -> DESIGN statistic; "" is the period average
SUFFIX_STATISTICS = {
    "": "avg",
    "avg": "avg",
    "stdev": "sd",
    "std": "sd",
    "sd": "sd",
    "min": "min",
    "max": "max",
    "gust": "gust",
    "sum": "sum",
    "count": "count",
}
#: bytes of the file start decoded for the header
HEAD_BYTES = 1 << 20

_ZONE = re.compile(r"UTC\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?\s*$", re.IGNORECASE)
_SUFFIX = re.compile(r"^(?P<base>.+)-(?P<suffix>[A-Za-z][A-Za-z0-9]*)$")
_NET_TOKENS = re.compile(r"yyyy|yy|MM|M|dd|d|/")


def sniff(head: bytes) -> bool:
    """True when line 1 or 2 starts with the Atlas output file signature."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    sig = SIGNATURE.encode()
    if head.startswith(sig):
        return True
    first_break = re.search(rb"\r\n|\r|\n", head)
    return first_break is not None and head[first_break.end() :].startswith(sig)


def read_kintech_wnd(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a Kintech Atlas ``.wnd`` file into a :class:`ParseResult`.

    Returns one Float64 channel per named column except ``DateTime``
    (average, ``-STDev``, ``-Min``, ``-Max``, ``-TI30`` of every sensor), with
    ``unit``, ``height_m`` [m] and the Atlas calibration (``slope``,
    ``offset``) and mounting (``orientation_deg``) in ``attrs``. ``meta``
    carries the site name (``station_name``), logger serial, header zone
    (``utc_offset_hours``) and, in ``extra``, the hash line, Atlas version,
    site id, session GUID, declared date format and separators.
    """
    display = source_name(source, name)
    data = _normalise_breaks(read_bytes(source))
    head = data[:HEAD_BYTES]
    if len(data) > HEAD_BYTES:
        head = head[: head.rfind(b"\n") + 1]  # never cut a multi-byte character
    head_text, encoding = decode(head)
    if encoding == "utf-16":
        data = decode(data)[0].encode("utf-8")
        head_text = data[:HEAD_BYTES].decode("utf-8", "replace")
    lines = split_lines(head_text)[:4]

    sig_index = next((i for i, line in enumerate(lines[:2]) if line.startswith(SIGNATURE)), None)
    if sig_index is None:
        raise ParseError(display, f"expected {SIGNATURE!r} on line 1 or 2", line=1)
    header, entries = _header(lines[sig_index], display, sig_index + 1)
    names_line = sig_index + 3
    if len(lines) < names_line:
        raise ParseError(
            display,
            "expected two column-name lines (raw prefixes, then named columns) after the header",
            line=len(lines) + 1,
        )
    separator = header["field_separator"] or " "
    prefixes = _split_names(lines[sig_index + 1], separator)
    names = _split_names(lines[sig_index + 2], separator)
    _check_names(prefixes, names, display, names_line)

    by_prefix = {str(e.get("ColumnPrefix", "")): e for e in entries}
    channels = [
        _channel(col, prefix, by_prefix)
        for col, prefix in zip(names[1:], prefixes[1:], strict=True)
    ]

    first_data_line = names_line + 1
    frame, warnings = _load(data, names, separator, header, first_data_line, display)
    stamps, ts_warnings = _timestamps(
        frame.get_column(TIMESTAMP_COLUMN), header, display, first_data_line
    )
    wide = frame.select(stamps.alias(TIMESTAMP), *[pl.col(c.name) for c in channels])

    extra: dict[str, Any] = {
        k: header[k]
        for k in (
            "atlas_version",
            "time_zone",
            "date_format",
            "list_separator",
            "decimal_separator",
            "field_separator",
            "site_id",
            "session_guid",
        )
    }
    extra["encoding"] = encoding
    if sig_index == 1:
        extra["hash"] = lines[0].strip()
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            logger_serial=header["logger_serial"] or None,
            station_name=header["site_name"] or None,
            utc_offset_hours=_zone_hours(header["time_zone"], display, sig_index + 1),
            warnings=tuple(warnings + ts_warnings),
            extra=extra,
        ),
        channels=tuple(channels),
        frame=wide,
    )


def _normalise_breaks(data: bytes) -> bytes:
    """Files with lone-CR line breaks: polars splits lines on LF only."""
    if b"\r" in data and b"\n" not in data:
        return data.replace(b"\r", b"\n")
    return data


def _header(line: str, display: str, line_no: int) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The fixed header fields and the JSON channel entries of line 2."""
    # the JSON array may itself contain '#' (in sensor names): cut at '#[' first
    start = line.find("#[")
    if start < 0:
        raise ParseError(
            display,
            "expected the JSON channel list ('#[{...}]#') at the end of the header",
            line=line_no,
        )
    fixed = line[:start].split("#")
    if len(fixed) < len(HEADER_FIELDS):
        raise ParseError(
            display,
            f"expected {len(HEADER_FIELDS)} '#'-separated header fields before the channel list, "
            f"found {len(fixed)}",
            line=line_no,
        )
    header = dict(zip(HEADER_FIELDS, fixed, strict=False))
    body = line[start + 1 :].rstrip().removesuffix("#")
    try:
        entries = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ParseError(
            display,
            f"the channel list is not valid JSON ({exc.msg} at character {exc.pos})",
            line=line_no,
        ) from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ParseError(
            display, "expected the channel list to be a JSON array of objects", line=line_no
        )
    return header, entries


def _split_names(line: str, separator: str) -> list[str]:
    names = line.split(separator)
    while names and names[-1].strip() == "":
        names.pop()  # Atlas ends both name lines with a separator
    return [n.strip() for n in names]


def _check_names(prefixes: list[str], names: list[str], display: str, line_no: int) -> None:
    if not names or names[0] != TIMESTAMP_COLUMN:
        raise ParseError(
            display,
            f"expected the named-column line to start with {TIMESTAMP_COLUMN!r}, "
            f"found {names[0] if names else ''!r}",
            line=line_no,
        )
    if len(prefixes) != len(names):
        raise ParseError(
            display,
            f"expected as many named columns as raw prefixes ({len(prefixes)}), found {len(names)}",
            line=line_no,
        )
    seen: dict[str, int] = {}
    for i, col in enumerate(names, start=1):
        if col in seen:
            raise ParseError(
                display,
                f"duplicate column name {col!r} (fields {seen[col]} and {i}); "
                "every column needs a unique name",
                line=line_no,
            )
        seen[col] = i


def _channel(col: str, prefix: str, by_prefix: dict[str, dict[str, Any]]) -> ChannelInfo:
    """Statistic from the suffix, unit/height/calibration from the JSON entry."""
    entry = by_prefix.get(prefix)
    suffix = ""
    if entry is None:
        m = _SUFFIX.match(prefix)
        if m is not None:
            entry = by_prefix.get(m.group("base"))
            suffix = m.group("suffix") if entry is not None else ""
    if entry is None:
        # no JSON entry: the named column alone says the statistic
        m = _SUFFIX.match(col)
        if m is not None and (
            m.group("suffix").lower() in SUFFIX_STATISTICS
            or m.group("suffix").upper().startswith("TI")
        ):
            suffix = m.group("suffix")
    key = suffix.lower()
    is_ti = key.startswith("ti")
    statistic = "ti" if is_ti else SUFFIX_STATISTICS.get(key)
    attrs: dict[str, Any] = {"column_prefix": prefix}
    if suffix:
        attrs["suffix"] = suffix
    unit: str | None = None
    height: float | None = None
    if entry is not None:
        unit = None if is_ti else (str(entry.get("Units") or "") or None)
        height = _number(entry.get("Height"))
        for key_json, key_attr in (
            ("Slope", "slope"),
            ("Offset", "offset"),
            ("Orientation", "orientation_deg"),
            ("Magnitude", "magnitude"),
            ("ChannelNumber", "channel_number"),
        ):
            if key_json in entry:
                attrs[key_attr] = entry[key_json]
        if "Name" in entry:
            attrs["sensor_name"] = entry["Name"]
    return ChannelInfo(name=col, statistic=statistic, unit=unit, height_m=height, attrs=attrs)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _zone_hours(text: str, display: str, line_no: int) -> float | None:
    """``UTC+05:30:00`` -> 5.5; an empty field -> None."""
    if not text.strip():
        return None
    m = _ZONE.match(text.strip())
    if m is None:
        raise ParseError(
            display, f"expected a time zone like 'UTC+00:00:00', found {text!r}", line=line_no
        )
    sign = -1.0 if m.group(1) == "-" else 1.0
    hours = int(m.group(2)) + int(m.group(3) or 0) / 60 + int(m.group(4) or 0) / 3600
    return sign * hours


def _load(
    data: bytes,
    names: list[str],
    separator: str,
    header: dict[str, str],
    first_data_line: int,
    display: str,
) -> tuple[pl.DataFrame, list[str]]:
    """The data block: timestamp text plus one Float64 column per channel."""
    columns = list(names)
    start = _line_offset(data, first_data_line)
    end = data.find(b"\n", start)
    if data[start : end if end >= 0 else len(data)].rstrip(b"\r").endswith(separator.encode()):
        columns.append("__trailing")  # tolerate a separator at the end of each row
    channel_names = names[1:]
    decimal = header.get("decimal_separator") or "."
    group = "," if decimal == "." else "."
    list_sep = header.get("list_separator") or ","
    # digit grouping shows as more group characters than the timestamps hold
    # (one list separator per row); counting bytes is far cheaper than a regex
    rows = data.count(b"\n", start) + (0 if data.endswith(b"\n") else 1)
    expected = rows if list_sep == group else 0
    grouped = decimal != "." or data.count(group.encode(), start) > expected
    layout = TableLayout(
        columns=columns,
        numeric=frozenset() if grouped else frozenset(channel_names),
        first_data_line=first_data_line,
        separator=separator,
        quote_char=None,
        null_values=MISSING_MARKERS,
        required=TIMESTAMP_COLUMN,
        encoding="utf8-lossy",
    )
    frame, warnings = load_table(data, layout, display)
    if grouped:
        frame = _numbers_from_text(frame, channel_names, decimal, group, display, first_data_line)
    return frame, warnings


def _line_offset(data: bytes, line_no: int) -> int:
    """Byte offset of 1-based line ``line_no`` (the end of the data if there is none)."""
    pos = 0
    for _ in range(line_no - 1):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return len(data)
        pos = nl + 1
    return pos


def _numbers_from_text(
    frame: pl.DataFrame,
    channel_names: list[str],
    decimal: str,
    group: str,
    display: str,
    first_data_line: int,
) -> pl.DataFrame:
    """Parse numbers written with digit grouping (``1,025.9``) or a decimal comma.

    A plain cast reads most columns; only columns where it fails are read
    again with the grouping removed from whole-field grouped numbers.
    """
    d, g = re.escape(decimal), re.escape(group)
    grouped = rf"^[+-]?\d{{1,3}}(?:{g}\d{{3}})+(?:{d}\d*)?$"

    def plain(text: pl.Expr) -> pl.Expr:
        if decimal != ".":
            text = text.str.replace(decimal, ".", literal=True)
        return text.cast(pl.Float64, strict=False)

    parsed = frame.with_columns(plain(pl.col(c)).alias(c) for c in channel_names)
    failed = [
        c
        for c in channel_names
        if parsed.get_column(c).null_count() != frame.get_column(c).null_count()
    ]
    if not failed:
        return parsed
    exprs = []
    for col in failed:
        text = pl.col(col).str.strip_chars()
        ungrouped = (
            pl.when(text.str.contains(grouped))
            .then(text.str.replace_all(group, "", literal=True))
            .otherwise(text)
        )
        exprs.append(plain(ungrouped).alias(col))
    parsed = parsed.with_columns(frame.select(exprs))
    for col in failed:
        bad = frame.get_column(col).is_not_null() & parsed.get_column(col).is_null()
        if bad.any():
            row = int(bad.arg_max() or 0)
            raise ParseError(
                display,
                f"column {col!r}: expected a number, found {frame.get_column(col)[row]!r}",
                line=first_data_line + row,
            )
    return parsed


def _timestamps(
    values: pl.Series, header: dict[str, str], display: str, first_line: int
) -> tuple[pl.Series, list[str]]:
    """``<date><list separator><time>`` in the declared or any common layout."""
    list_sep = header.get("list_separator") or ","
    text = values.str.strip_chars().str.replace(list_sep, " ", literal=True)
    declared = header.get("date_format", "")
    if declared:
        candidates = [
            f"{date} {time}"
            for date in {_net_date_format(declared, sep) for sep in ("/", "-", ".")}
            for time in ("%H:%M:%S", "%H:%M")
        ]
        try:
            return parse_timestamps(text, name=display, first_line=first_line, formats=candidates)
        except ParseError:
            pass  # real files contradict the declared format: fall back to the common layouts
    return parse_timestamps(text, name=display, first_line=first_line)


def _net_date_format(pattern: str, separator: str) -> str:
    """A .NET date pattern as a strptime format; '/' is the culture's separator."""
    table = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "M": "%m", "dd": "%d", "d": "%d", "/": separator}
    return _NET_TOKENS.sub(lambda m: table[m.group(0)], pattern)
