"""Movelaser Molas B300 wind lidar 10-minute statistics files (``.txt``).

Layout (GB2312/GB18030 text, tab-separated, CRLF)::

    HeaderSize=10                    lines before the column-name line
    Version=V3-1.9
    ID System=Molas B300-970
    ID Client=
    timezone=UTC+8
    Range Gate =          <TAB>6<TAB>8<TAB>...
    Start Pos(From zero) =<TAB>326<TAB>386<TAB>...
    Altitudes (m)=        <TAB>30<TAB>50<TAB>...
    ***************************
    (blank line)
    年月日<TAB>时间戳<TAB>经度<TAB>纬度<TAB>内温<TAB>...<TAB>30m水平风速(m/s)<TAB>...
    2023-09-12 <TAB>00:00<TAB>E 110°27′5.6″<TAB>N 28°04′23.8″<TAB>33.891<TAB>...<TAB>

Format rules this reader relies on:

* The header is ``key=value`` lines (list values tab-separated) ended by a
  ``****`` line; the column-name line is the first non-blank line after it.
  Every header key is kept in ``meta.extra["header"]``; ``Altitudes (m)``,
  ``Range Gate`` and ``Start Pos(From zero)`` as number lists in
  ``extra["altitudes_m"]``, ``extra["range_gates"]``, ``extra["start_pos"]``.
  ``ID System`` is the logger serial, ``Version`` the firmware (logger_os).
* Column names are Chinese (GB2312; decoded as GB18030, its superset; UTF-8
  re-saves are accepted too). Channels keep the name exactly as decoded;
  ``attrs["description"]`` is an English translation. Per-height columns
  start with the height (``30m水平风速(m/s)``, ``30mz方向风速(m/s)``) ->
  ``height_m`` [m]; ``unit`` is the trailing parenthesised part
  (``(m/s)``, ``(°)``, ``(dB)``, ``(%)``); the environment columns have none.
* Statistic from the name: 水平风速 / 水平风向 / z方向风速 / 信噪比 (mean
  speed, direction, vertical speed, SNR) -> ``avg``; 偏差 / 标准差
  (deviation) -> ``sd``; ...最小值 / ...最大值 -> ``min`` / ``max``;
  湍流强度 -> ``ti``; 数据可靠性 / 数据可用率 / 有效率 (availability, %) -> None;
  雨刮器计数 (wiper count) and 样本数 (samples in the period) -> ``count``;
  内温 / 外温 / 气压 / 湿度 (temperatures, pressure, humidity) -> None (the
  file does not say whether they are means or samples).
* Date (``2023-09-12 ``, with a trailing space) and time (``00:00``) are
  separate columns, joined into one label. Labels are logger-clock times in
  the header's ``timezone`` (``UTC+8`` -> ``meta.utc_offset_hours`` = 8).
  The file does not name its convention; a daily file holds the labels
  00:00 ... 23:50 of its own date (not 00:10 ... 00:00 of the next day), so
  labels are taken as the START of the period
  (``meta.timestamp_is_end_of_period`` = False).
* Longitude / latitude are DMS text (``E 110°27′5.6″``): skipped as text
  channels; the first data row's position is in ``extra["longitude_deg"]``
  and ``extra["latitude_deg"]`` (decimal degrees, W/S negative).
* Missing: ``NaN`` (also ``NAN``, ``nan``, ``-NaN``) and empty fields
  become null (whole fields only).
* Data lines end with a tab (one empty field more than the column names);
  that padding is dropped. A missing final line break and a partially
  written last line (dropped with a warning) are accepted; exact duplicate
  rows are kept; a repeated column name is an error.
"""

from __future__ import annotations

import os
import re
from typing import Any

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import (
    TIMESTAMP,
    ChannelInfo,
    FileMeta,
    ParseResult,
    Source,
)
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, load_table, text_columns, unique_names
from stationkit.parsers.timeparse import parse_timestamps_first_fit

FORMAT = "molas"
SEPARATOR = "\t"
MISSING_MARKERS = ("NaN", "NAN", "nan", "-NaN", "-nan", "")
#: decoding order: UTF-8 re-saves first (GB2312 Chinese is never valid UTF-8)
ENCODINGS = ("utf-8", "gb18030")
DATE_COLUMN, TIME_COLUMN = "年月日", "时间戳"
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S")
#: the column-name line's first bytes in GB2312 and UTF-8 (for the sniffer)
COLUMN_LINE_STARTS = (DATE_COLUMN.encode("gb18030"), DATE_COLUMN.encode("utf-8"))
SAMPLE_BYTES = 1 << 20
SAMPLE_HEAD_LINES, SAMPLE_TAIL_LINES = 400, 200

#: base names (after the height prefix, without unit) -> (statistic, description)
QUANTITIES: dict[str, tuple[str | None, str]] = {
    "水平风速": ("avg", "horizontal wind speed"),
    "偏差": ("sd", "horizontal wind speed deviation"),
    "水平风速标准差": ("sd", "horizontal wind speed standard deviation"),
    "水平风速最小值": ("min", "horizontal wind speed minimum"),
    "水平风速最大值": ("max", "horizontal wind speed maximum"),
    "水平风向": ("avg", "horizontal wind direction"),
    "风向": ("avg", "wind direction"),
    "z方向风速": ("avg", "vertical (z) wind speed"),
    "垂直风速": ("avg", "vertical wind speed"),
    "z方向偏差": ("sd", "vertical (z) wind speed deviation"),
    "信噪比": ("avg", "signal-to-noise ratio"),
    "信噪比最小值": ("min", "signal-to-noise ratio minimum"),
    "数据可靠性": (None, "data reliability (availability)"),
    "数据可用率": (None, "data availability"),
    "有效率": (None, "valid data rate (availability)"),
    "湍流强度": ("ti", "turbulence intensity"),
    "内温": (None, "internal temperature"),
    "外温": (None, "external temperature"),
    "气压": (None, "air pressure"),
    "湿度": (None, "relative humidity"),
    "雨刮器计数": ("count", "wiper count"),
    "样本数": ("count", "number of samples in the period"),
    "年月日": (None, "date"),
    "时间戳": (None, "time"),
    "经度": (None, "longitude"),
    "纬度": (None, "latitude"),
}
#: words of names not in QUANTITIES, for the statistic and a word-by-word description
_WORDS: tuple[tuple[str, str | None, str], ...] = (
    ("最小值", "min", "minimum"),
    ("最大值", "max", "maximum"),
    ("最小", "min", "minimum"),
    ("最大", "max", "maximum"),
    ("标准差", "sd", "standard deviation"),
    ("偏差", "sd", "deviation"),
    ("湍流强度", "ti", "turbulence intensity"),
    ("可靠性", None, "reliability"),
    ("可用率", None, "availability"),
    ("有效率", None, "valid rate"),
    ("计数", "count", "count"),
    ("水平", None, "horizontal"),
    ("垂直", None, "vertical"),
    ("z方向", None, "vertical (z)"),
    ("风速", None, "wind speed"),
    ("风向", None, "wind direction"),
    ("信噪比", None, "signal-to-noise ratio"),
    ("数据", None, "data"),
    ("温度", None, "temperature"),
)
_HEIGHT = re.compile(r"^(\d+(?:\.\d+)?)\s*m(?![a-y])")
_UNIT = re.compile(r"\(([^()]*)\)\s*$")
_ZONE = re.compile(r"^(?:UTC|GMT)?\s*(?:([+-])\s*(\d{1,2})(?::?(\d{2}))?)?$", re.I)
_DMS = re.compile(
    r"^\s*([NSEW])\s*(\d+(?:\.\d+)?)\s*°\s*(?:(\d+(?:\.\d+)?)\s*[′'])?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*[″\"])?\s*$"
)
_SERIAL = re.compile(rb"^id system\s*=\s*molas", re.I | re.M)


def sniff(head: bytes) -> bool:
    """True for a Molas file: a ``HeaderSize=`` first line and either a Molas
    ``ID System`` or the Chinese date column (年月日) opening a line."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if not head.startswith(b"HeaderSize="):
        return False
    lines = head.replace(b"\r", b"\n")
    if _SERIAL.search(lines):
        return True
    return any(b"\n" + start in lines for start in COLUMN_LINE_STARTS)


def read_molas(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a Molas B300 10-minute file into a :class:`ParseResult`.

    Returns one Float64 channel per numeric column except date and time:
    environment columns (内温 internal / 外温 external temperature, 气压
    pressure, 湿度 humidity, 雨刮器计数 wiper count, 样本数 samples) and every
    per-height column (``30m水平风速(m/s)`` speed, ``30m偏差(m/s)`` deviation,
    min, max, ``30m水平风向(°)`` direction, ``30mz方向风速(m/s)`` vertical
    speed and deviation, ``30m信噪比(dB)`` SNR and its minimum,
    ``30m数据可靠性(%)`` reliability) with ``height_m`` [m], ``unit``,
    ``statistic`` and an English ``attrs["description"]``. ``meta``: serial,
    firmware, time zone, start-of-period labels, header in ``extra``.
    """
    display = source_name(source, name)
    head_lines, tail_lines, whole, encoding = _sample_lines(source)
    header, names_line = _header(head_lines, display)
    names = head_lines[names_line - 1].split(SEPARATOR)
    columns = unique_names(names, display, line=names_line)
    try:
        date_idx, time_idx = names.index(DATE_COLUMN), names.index(TIME_COLUMN)
    except ValueError:
        raise ParseError(
            display,
            f"expected the date and time columns {DATE_COLUMN!r} and {TIME_COLUMN!r}",
            line=names_line,
        ) from None
    # a blank line separates the names from the data (polars would take its
    # single empty field as the table's width)
    first_data = names_line + 1
    while first_data <= len(head_lines) and not head_lines[first_data - 1].strip():
        first_data += 1
    data_lines = [ln for ln in head_lines[first_data - 1 :] if ln.strip()]
    # data lines end with a tab: one empty field more than there are names
    if data_lines and len(data_lines[0].split(SEPARATOR)) == len(names) + 1:
        columns.append(f"__empty{len(names)}")
    width = len(columns)
    text_cols = text_columns(
        head_lines[first_data - 1 : first_data - 1 + SAMPLE_HEAD_LINES]
        + tail_lines[-SAMPLE_TAIL_LINES:],
        width,
        separator=SEPARATOR,
        missing=MISSING_MARKERS,
    )
    channels: list[ChannelInfo] = []
    skipped: list[str] = []
    for i, col in enumerate(names):
        if i in (date_idx, time_idx) or not col.strip():
            continue
        if i in text_cols:
            skipped.append(col)
            continue
        channels.append(_channel(col))
    layout = TableLayout(
        columns=columns,
        numeric=frozenset(c.name for c in channels),
        first_data_line=first_data,
        separator=SEPARATOR,
        quote_char=None,
        null_values=MISSING_MARKERS,
        required=DATE_COLUMN,
        encoding="utf8-lossy",
    )
    data: str | os.PathLike[str] | bytes = (
        whole if whole is not None else source  # type: ignore[assignment]
    )
    frame, warnings = load_table(data, layout, display)
    labels = pl.concat_str(
        pl.col(DATE_COLUMN).str.strip_chars(),
        pl.col(TIME_COLUMN).str.strip_chars(),
        separator=" ",
        ignore_nulls=False,
    )
    stamps, ts_warnings = parse_timestamps_first_fit(
        frame.select(labels.alias(TIMESTAMP)).to_series(),
        name=display,
        first_line=first_data,
        formats=TIME_FORMATS,
    )
    wide = frame.select(stamps.alias(TIMESTAMP), *[pl.col(c.name) for c in channels])
    extra = _extra(header, encoding, data_lines, names)
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            logger_model="Molas B300",
            logger_serial=_value(header, "ID System"),
            logger_os=_value(header, "Version"),
            station_name=_value(header, "ID Client"),
            utc_offset_hours=_zone_hours(header, display),
            timestamp_is_end_of_period=False,
            skipped_channels=tuple(skipped),
            warnings=tuple(warnings + ts_warnings),
            extra=extra,
        ),
        channels=tuple(channels),
        frame=wide,
    )


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
    text, encoding = decode(complete, ENCODINGS)
    tail_lines: list[str] = []
    if tail:
        tail_text, _ = decode(tail[tail.find(b"\n") + 1 :], (encoding,))
        tail_lines = split_lines(tail_text)
    return split_lines(text), tail_lines, whole, encoding


def _header(lines: list[str], display: str) -> tuple[dict[str, tuple[str, int]], int]:
    """Header key -> (value text, line number); 1-based number of the column-name line."""
    if not lines or not lines[0].startswith("HeaderSize="):
        raise ParseError(display, "expected 'HeaderSize=N' as the first line", line=1)
    header: dict[str, tuple[str, int]] = {}
    for idx, line in enumerate(lines):
        if line.startswith("***"):
            for j in range(idx + 1, len(lines)):
                if lines[j].strip():
                    return header, j + 1
            break
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = (value, idx + 1)
    raise ParseError(
        display,
        "expected a '****' line ending the header, then the column-name line",
        line=len(lines) + 1,
    )


def _value(header: dict[str, tuple[str, int]], key: str) -> str | None:
    text = header.get(key, ("", 0))[0].strip()
    return text or None


def _numbers(header: dict[str, tuple[str, int]], key: str) -> list[float] | None:
    if key not in header:
        return None
    out: list[float] = []
    for part in header[key][0].split(SEPARATOR):
        try:
            out.append(float(part))
        except ValueError:
            continue
    return out


def _zone_hours(header: dict[str, tuple[str, int]], display: str) -> float | None:
    """``UTC+8`` -> 8.0, ``UTC+05:30`` -> 5.5, ``UTC-3`` -> -3.0, ``UTC`` -> 0; absent -> None."""
    if "timezone" not in header:
        return None
    text, line = header["timezone"]
    text = text.strip()
    if not text:
        return None
    m = _ZONE.match(text)
    if m is None:
        raise ParseError(display, f"expected a timezone like 'UTC+8', found {text!r}", line=line)
    if m.group(1) is None:
        return 0.0
    hours = int(m.group(2)) + (int(m.group(3)) / 60 if m.group(3) else 0.0)
    return -hours if m.group(1) == "-" else float(hours)


def _channel(col: str) -> ChannelInfo:
    """Height, unit, statistic and English description from a column name."""
    rest = col.strip()
    height: float | None = None
    at = ""
    m = _HEIGHT.match(rest)
    if m is not None:
        height = float(m.group(1))
        at = f" at {m.group(1)} m"
        rest = rest[m.end() :]
    unit: str | None = None
    u = _UNIT.search(rest)
    if u is not None:
        unit = u.group(1).strip() or None
        rest = rest[: u.start()].strip()
    statistic, description = _describe(rest)
    description += at
    return ChannelInfo(
        name=col,
        statistic=statistic,
        unit=unit,
        height_m=height,
        attrs={"description": description},
    )


def _describe(base: str) -> tuple[str | None, str]:
    """(statistic, English description) of a name without height and unit."""
    if base in QUANTITIES:
        return QUANTITIES[base]
    statistic: str | None = None
    words: list[str] = []
    rest = base
    while rest:
        for word, stat, english in _WORDS:
            if rest.startswith(word):
                if stat is not None and statistic is None:
                    statistic = stat
                words.append(english)
                rest = rest[len(word) :]
                break
        else:
            words.append(rest[0])
            rest = rest[1:]
    if statistic is None and any(w in ("wind speed", "wind direction") for w in words):
        statistic = "avg"
    return statistic, " ".join(words).replace("  ", " ")


def _dms(text: str) -> float | None:
    """``E 110°27′5.6″`` -> 110.45156; W and S negative; unreadable -> None."""
    m = _DMS.match(text)
    if m is None:
        return None
    deg = float(m.group(2)) + float(m.group(3) or 0) / 60 + float(m.group(4) or 0) / 3600
    return round(-deg if m.group(1) in "SW" else deg, 7)


def _extra(
    header: dict[str, tuple[str, int]], encoding: str, data_lines: list[str], names: list[str]
) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "encoding": encoding,
        "header": {k: v.strip() for k, (v, _) in header.items()},
    }
    for key, label in (
        ("Altitudes (m)", "altitudes_m"),
        ("Range Gate", "range_gates"),
        ("Start Pos(From zero)", "start_pos"),
    ):
        values = _numbers(header, key)
        if values is not None:
            extra[label] = values
    if data_lines:
        fields = data_lines[0].split(SEPARATOR)
        for col, label in (("经度", "longitude_deg"), ("纬度", "latitude_deg")):
            if col in names and names.index(col) < len(fields):
                deg = _dms(fields[names.index(col)])
                if deg is not None:
                    extra[label] = deg
    return extra
