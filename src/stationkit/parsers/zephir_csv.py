"""ZephIR 300 (ZX Lidars) CSV exports (``Wind10_<unit>@Y2016_M12_D13.ZPH.csv``).

Layout (semicolon-separated, decimal comma)::

    CSV Converter: v1,114;Filter: v1,026;...;Unit: 317;Time sync: UTC +1,0 hrs;
        Time stamps indicate the beginning of the averaging period;...;
        Measurement heights: 297m 247m ... 37m
    Reference;Time and Date;Timestamp (s);Info. Flags;Status Flags;Battery (V);...;GPS;...;
        Packets in Average at 297m;Wind Direction (deg) at 297m;
        Horizontal Wind Speed (m/s) at 297m;...;TI at 37m;Checksum:<code>
    21980722;13.12.2016 00:00:00;547516800;I-net Shutter-Open;Modem;11,767;...;
        51,31546 9,16535;...;<code>

Format rules this reader relies on:

* Line 1 is ``;``-joined metadata items, mostly ``key: value``. ``Time
  sync: UTC +1,0 hrs`` -> ``meta.utc_offset_hours`` (1.0); ``Time stamps
  indicate the beginning|end of the averaging period`` ->
  ``meta.timestamp_is_end_of_period``; ``Unit: 317`` -> logger serial;
  ``Measurement heights`` -> ``extra["measurement_heights_m"]``; every item
  is kept in ``extra["header"]`` (items without a key in
  ``extra["notes"]``).
* Line 2 names the columns; data follow from line 3. The last column is a
  per-line checksum (its header reads ``Checksum:<code>``): it is named
  ``Checksum`` and skipped as text, like ``Time and Date``, ``Info. Flags``,
  ``Status Flags``, ``GPS`` (``51,31546 9,16535``) and any other column
  holding text.
* ``Reference`` (a running record number) and ``Timestamp (s)`` (the same
  time as ``Time and Date`` in seconds) are counters, not readings: they are
  not stored (``extra["counter_columns"]``).
* Timestamps ``DD.MM.YYYY HH:MM:SS`` are logger-clock labels in the ``Time
  sync`` zone.
* Channel names are kept as written; ``height_m`` [m] from ``at <N>m``,
  ``unit`` from the parentheses (``(m/s)``, ``(deg)``, ``(C)``, ``(%)``,
  ``(mbar)``, ``(V)``). Statistic: ``Min`` / ``Max`` / ``Std. Dev.`` ->
  ``min`` / ``max`` / ``sd``; ``TI`` -> ``ti``; ``Packets in Average`` ->
  ``count``; ``Proportion Of Packets With Rain`` -> None; every other
  column of the averaged file -> ``avg``. The height is what the file
  states (ZephIR gives heights above the ground, the window height being
  ``extra["header"]["ZephIR window height above ground"]``).
* Missing: ``9999`` (no data) and ``9998`` (a ZephIR "bad data" sentinel)
  in any decimal spelling (``9999``, ``9999,000``) -- whole values only, so
  ``19999`` or ``1019,9999`` stay -- and empty fields become null.
* UTF-8 with or without BOM, Latin-1, CRLF / LF / CR, a missing final line
  break and a partially written last line (dropped with a warning) are
  accepted; exact duplicate rows are kept.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, load_table, text_columns, unique_names
from stationkit.parsers.timeparse import parse_timestamps_first_fit

FORMAT = "zephir_csv"
SEPARATOR = ";"
HEADER_LINES = 2
TIMESTAMP_COLUMN = "Time and Date"
TIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")
#: running record number and epoch seconds: time bookkeeping, not readings
COUNTER_COLUMNS = ("Reference", "Timestamp (s)")
#: columns that are text in every ZephIR export, whatever a sample shows
TEXT_COLUMNS = frozenset({"Info. Flags", "Status Flags", "GPS", "Checksum"})
CHECKSUM_COLUMN = "Checksum"
#: whole values meaning "no data" (9999) and "bad data" (9998)
SENTINELS = (9999.0, 9998.0)
MISSING_MARKERS = ("", "NaN", "nan")
HEAD_BYTES = 1 << 20
#: data lines of the head and of the tail looked at to tell text columns from numeric
SAMPLE_LINES = 500
TAIL_BYTES = 1 << 16

_HEIGHT = re.compile(r"\bat\s+(\d+(?:[.,]\d+)?)\s*m\s*$")
_UNIT = re.compile(r"\(([^()]*)\)")
_SYNC = re.compile(r"UTC\s*(?:([+-])\s*(\d+(?:[.,]\d+)?))?", re.I)


def sniff(head: bytes) -> bool:
    """True for a ZephIR CSV: ZephIR metadata line and a 'Time and Date' column line."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    lines = re.split(rb"\r\n|\r|\n", head, maxsplit=2)
    first, second = [*lines, b"", b""][:2]
    if b";" not in first or b"Time and Date" not in second:
        return False
    return any(
        marker in first
        for marker in (b"CSV Converter", b"ZephIR", b"Measurement heights", b"Time sync")
    )


def read_zephir_csv(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a ZephIR 300 CSV export into a :class:`ParseResult`.

    Returns one Float64 channel per numeric column (pod status: battery,
    generator, temperatures [C], humidity [%], bearing and tilt [deg]; met
    station: air temperature, pressure [mbar], humidity, wind speed [m/s],
    direction [deg]; per height: packets, direction, horizontal speed and its
    min/max/std. dev., vertical speed [m/s], TI) with ``height_m`` [m],
    ``unit`` and ``statistic``. ``meta``: unit number as logger serial, the
    ``Time sync`` offset, the start/end-of-period statement and the line-1
    metadata in ``extra``.
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
            f"expected {HEADER_LINES} header lines (metadata, column names), found {len(lines)}",
            line=len(lines) + 1,
        )
    header, notes = _metadata(lines[0])
    names = _names(lines[1], display)
    if TIMESTAMP_COLUMN not in names:
        raise ParseError(display, f"expected a {TIMESTAMP_COLUMN!r} column", line=2)

    sample = lines[HEADER_LINES : HEADER_LINES + SAMPLE_LINES]
    if len(data) > HEAD_BYTES:
        tail = data[-TAIL_BYTES:]
        sample += split_lines(tail[tail.find(b"\n") + 1 :].decode("utf-8", "replace"))[
            -SAMPLE_LINES:
        ]
    text_idx = text_columns(
        sample, len(names), separator=SEPARATOR, missing=MISSING_MARKERS, decimal_comma=True
    )
    channels: list[ChannelInfo] = []
    skipped: list[str] = []
    for i, col in enumerate(names):
        if col == TIMESTAMP_COLUMN or col in COUNTER_COLUMNS or col.startswith("__empty"):
            continue
        if col in TEXT_COLUMNS or i in text_idx:
            skipped.append(col)
            continue
        channels.append(_channel(col))

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
    )
    frame, warnings = load_table(data, layout, display)
    stamps, ts_warnings = parse_timestamps_first_fit(
        frame.get_column(TIMESTAMP_COLUMN),
        name=display,
        first_line=HEADER_LINES + 1,
        formats=TIME_FORMATS,
    )
    wide = frame.select(
        stamps.alias(TIMESTAMP),
        *[
            pl.when(pl.col(c.name).is_in(SENTINELS))
            .then(None)
            .otherwise(pl.col(c.name))
            .alias(c.name)
            for c in channels
        ],
    )
    stated = header.get("Time stamps indicate", "")
    extra: dict[str, Any] = {
        "header": header,
        "notes": notes,
        "counter_columns": [c for c in COUNTER_COLUMNS if c in names],
        "encoding": encoding,
    }
    heights = _heights(header.get("Measurement heights", ""))
    if heights:
        extra["measurement_heights_m"] = heights
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            logger_model="ZephIR",
            logger_serial=header.get("Unit") or None,
            utc_offset_hours=_sync_hours(header.get("Time sync")),
            timestamp_is_end_of_period=_end_of_period(stated or " ".join(notes)),
            skipped_channels=tuple(skipped),
            warnings=tuple(warnings + ts_warnings),
            extra=extra,
        ),
        channels=tuple(channels),
        frame=wide,
    )


def _metadata(line: str) -> tuple[dict[str, str], list[str]]:
    """``key: value`` items of line 1, and the items that have no key."""
    header: dict[str, str] = {}
    notes: list[str] = []
    for item in line.split(SEPARATOR):
        item = item.strip()
        if not item:
            continue
        if item.lower().startswith("time stamps indicate"):
            header["Time stamps indicate"] = item[len("time stamps indicate") :].strip()
        elif ":" in item:
            key, _, value = item.partition(":")
            header[key.strip()] = value.strip()
        else:
            notes.append(item)
    return header, notes


def _names(line: str, display: str) -> list[str]:
    names = [n.strip() for n in line.split(SEPARATOR)]
    # the checksum header cell carries the header line's own checksum
    names = [CHECKSUM_COLUMN if n.startswith(CHECKSUM_COLUMN + ":") else n for n in names]
    return unique_names(names, display, line=2)


def _channel(col: str) -> ChannelInfo:
    m = _HEIGHT.search(col)
    height = float(m.group(1).replace(",", ".")) if m else None
    base = _HEIGHT.sub("", col).strip()
    unit = _UNIT.search(base)
    return ChannelInfo(
        name=col,
        statistic=_statistic(base),
        unit=(unit.group(1).strip() or None) if unit else None,
        height_m=height,
    )


def _statistic(base: str) -> str | None:
    """DESIGN statistic of a ZephIR column name without its height."""
    low = _UNIT.sub("", base).lower()
    words = set(re.findall(r"[a-z]+", low))
    if "std" in words or "dev" in words:
        return "sd"
    if "min" in words:
        return "min"
    if "max" in words:
        return "max"
    if low.strip() == "ti" or low.startswith("ti "):
        return "ti"
    if "packets in average" in low:
        return "count"
    if "proportion" in words:
        return None
    return "avg"


def _heights(text: str) -> list[float]:
    return [float(h.replace(",", ".")) for h in re.findall(r"(\d+(?:[.,]\d+)?)\s*m\b", text)]


def _sync_hours(text: str | None) -> float | None:
    """``UTC +1,0 hrs`` -> 1.0; ``UTC`` -> 0.0; anything else -> None."""
    if not text:
        return None
    m = _SYNC.search(text)
    if m is None:
        return None
    if m.group(1) is None:
        return 0.0
    hours = float(m.group(2).replace(",", "."))
    return -hours if m.group(1) == "-" else hours


def _end_of_period(text: str) -> bool | None:
    low = text.lower()
    if "end of the averaging period" in low or low.startswith("the end"):
        return True
    if "beginning of the averaging period" in low or "start of the averaging period" in low:
        return False
    return None
