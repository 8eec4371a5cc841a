"""Vaisala (Second Wind) Triton sodar CSV exports (``TritonExport_*.csv``).

Layout (semicolon-separated, decimal comma, four header lines)::

    Triton Wind Speed Data;;;;;;...                      title
    Logger Serial Number: 358;;;;;;...                   logger serial
    Date and Time;40m Wind Direction;40m Wind Speed;40m Wind Vert;Quality (Station Height 40m);...
    <Intentionally blank>;°;m/s;m/s;%;...;<no units specified>;...
    31.08.2016 00:00;339,5;0,5;-0,14;92;...

Format rules this reader relies on:

* Line 1 is the export title (``extra["title"]``); line 2 ``Logger Serial
  Number: N`` -> ``meta.logger_serial``; line 3 the column names; line 4
  the units, ``<Intentionally blank>`` under the timestamp and ``<no units
  specified>`` for dimensionless columns (-> ``unit`` None). Header lines
  are padded with ``;`` to the data width.
* Channel names are kept as written; ``height_m`` [m] from ``<N>m`` in the
  name (``40m Wind Speed``, ``Quality (Station Height 40m)``).
  Statistic: ``Wind Speed`` / ``Wind Direction`` / ``Wind Vert`` (the
  vertical speed) are 10-minute means -> ``avg``; ``Wind Turbulence`` (the
  dimensionless turbulence intensity) -> ``ti``; ``Quality`` columns
  (percent of accepted soundings) -> None; names with ``Min`` / ``Max`` /
  ``Std``/``Sigma`` -> ``min`` / ``max`` / ``sd``.
* Timestamps ``DD.MM.YYYY HH:MM`` (day first) are logger-clock labels; the
  export states neither zone nor start/end-of-period convention.
* Missing: empty fields, ``NaN`` (``nan``, ``NAN``) and ``N/A`` become null. The export writes
  no numeric sentinel: a number is always kept.
* UTF-8 (``°``) with or without BOM, Latin-1, CRLF / LF / CR, no final line
  break (the usual case: an export is written whole, so a last line with
  every field is kept) and a partially written last line (fewer fields,
  dropped with a warning) are accepted; exact duplicate rows are kept.
"""

from __future__ import annotations

import re

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, load_table, text_columns, unique_names
from stationkit.parsers.timeparse import parse_timestamps_first_fit

FORMAT = "triton_csv"
SEPARATOR = ";"
HEADER_LINES = 4
TITLE_PREFIX = "Triton"
SERIAL_KEY = "Logger Serial Number"
TIMESTAMP_COLUMN = "Date and Time"
TIME_FORMATS = ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S")
NO_UNIT = ("<no units specified>", "<Intentionally blank>", "")
MISSING_MARKERS = ("", "NaN", "nan", "NAN", "N/A")
HEAD_BYTES = 1 << 20
#: data lines of the head and of the tail looked at to tell text columns from numeric
SAMPLE_LINES = 500
TAIL_BYTES = 1 << 16

_HEIGHT = re.compile(r"(?<![\d.])(\d+(?:[.,]\d+)?)\s*m\b")


def sniff(head: bytes) -> bool:
    """True for a Triton export: title 'Triton ...' and a 'Date and Time' column line."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    return head.startswith(TITLE_PREFIX.encode()) and TIMESTAMP_COLUMN.encode() in head


def read_triton_csv(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a Triton sodar CSV export into a :class:`ParseResult`.

    Returns one Float64 channel per numeric column: per height wind
    direction [°], horizontal and vertical speed [m/s], quality [%],
    turbulence and its quality, with ``height_m`` [m], ``unit`` from the
    units line and ``statistic``. ``meta``: the logger serial; the title in
    ``extra["title"]``.
    """
    display = source_name(source, name)
    data = read_bytes(source)
    if b"\r" in data and b"\n" not in data:
        data = data.replace(b"\r", b"\n")  # lone-CR files: polars splits on LF only
    head_bytes = data[:HEAD_BYTES]
    if len(data) > HEAD_BYTES:
        head_bytes = head_bytes[: head_bytes.rfind(b"\n") + 1]
    head_text, encoding = decode(head_bytes)
    if encoding == "utf-16":
        data = decode(data)[0].encode("utf-8")
    lines = split_lines(head_text)
    if len(lines) < HEADER_LINES:
        raise ParseError(
            display,
            f"expected {HEADER_LINES} header lines (title, serial, names, units), "
            f"found {len(lines)}",
            line=len(lines) + 1,
        )
    title = lines[0].split(SEPARATOR, 1)[0].strip()
    if not title.startswith(TITLE_PREFIX):
        raise ParseError(display, f"expected a title starting with {TITLE_PREFIX!r}", line=1)
    serial = _serial(lines[1], display)
    names = _names(lines[2], display)
    width = len(names)
    units = [u.strip() for u in lines[3].split(SEPARATOR)]
    units = (units + [""] * width)[:width]
    if names[0] != TIMESTAMP_COLUMN:
        raise ParseError(
            display,
            f"expected {TIMESTAMP_COLUMN!r} as the first column, found {names[0]!r}",
            line=3,
        )

    sample = lines[HEADER_LINES : HEADER_LINES + SAMPLE_LINES]
    if len(data) > HEAD_BYTES:
        tail = data[-TAIL_BYTES:]
        sample += split_lines(tail[tail.find(b"\n") + 1 :].decode("utf-8", "replace"))[
            -SAMPLE_LINES:
        ]
    text_idx = text_columns(
        sample, width, separator=SEPARATOR, missing=MISSING_MARKERS, decimal_comma=True, start=1
    )
    channels: list[ChannelInfo] = []
    skipped: list[str] = []
    for i, col in enumerate(names):
        if i == 0 or col.startswith("__empty"):
            continue
        if i in text_idx:
            skipped.append(col)
            continue
        m = _HEIGHT.search(col)
        channels.append(
            ChannelInfo(
                name=col,
                statistic=_statistic(col),
                unit=None if units[i] in NO_UNIT else units[i],
                height_m=float(m.group(1).replace(",", ".")) if m else None,
            )
        )
    layout = TableLayout(
        columns=names,
        numeric=frozenset(c.name for c in channels),
        first_data_line=HEADER_LINES + 1,
        separator=SEPARATOR,
        quote_char=None,
        null_values=MISSING_MARKERS,
        decimal_comma=True,
        required=TIMESTAMP_COLUMN,
        encoding="utf8-lossy",
        ends_without_line_break=True,
    )
    frame, warnings = load_table(data, layout, display)
    stamps, ts_warnings = parse_timestamps_first_fit(
        frame.get_column(TIMESTAMP_COLUMN),
        name=display,
        first_line=HEADER_LINES + 1,
        formats=TIME_FORMATS,
    )
    wide = frame.select(stamps.alias(TIMESTAMP), *[pl.col(c.name) for c in channels])
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            logger_model="Triton",
            logger_serial=serial,
            skipped_channels=tuple(skipped),
            warnings=tuple(warnings + ts_warnings),
            extra={"title": title, "encoding": encoding},
        ),
        channels=tuple(channels),
        frame=wide,
    )


def _serial(line: str, display: str) -> str | None:
    text = line.split(SEPARATOR, 1)[0]
    key, sep, value = text.partition(":")
    if not sep or key.strip() != SERIAL_KEY:
        raise ParseError(
            display, f"expected '{SERIAL_KEY}: N' on line 2, found {text[:40]!r}", line=2
        )
    return value.strip() or None


def _names(line: str, display: str) -> list[str]:
    """Column names; the empty padding cells get placeholder names."""
    return unique_names([n.strip() for n in line.split(SEPARATOR)], display, line=3)


def _statistic(col: str) -> str | None:
    low = col.lower()
    words = set(re.findall(r"[a-z]+", low))
    if "quality" in words:
        return None
    if "turbulence" in words:
        return "ti"
    if words & {"std", "sigma", "stdev", "deviation"}:
        return "sd"
    if "min" in words or "minimum" in words:
        return "min"
    if "max" in words or "maximum" in words:
        return "max"
    return "avg"
