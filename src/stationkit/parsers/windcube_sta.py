"""Leosphere (Vaisala) WindCube lidar statistics files (``.sta``), v1 and v2.

Layout (ISO-8859-1 text, tab-separated data)::

    HeaderSize=40                    number of header lines, this one included
    Version=2.1.9
    ID System=WLS866-24
    Location=...
    timezone=UTC+0
    ********************
    Windcube Parameters (internal use only)
    ********************
    ...key=value...
    Altitudes (m)=<TAB>40<TAB>60<TAB>...
    ********************
    Timestamp (end of interval)<TAB>Int Temp (°C)<TAB>...<TAB>40m Wind Speed (m/s)<TAB>...
        <TAB><TAB>60m Wind Speed (m/s)<TAB>...<TAB>
    2020/12/01 00:10<TAB>30.33<TAB>NaN<TAB>...

Format rules this reader relies on:

* The header is ``key=value`` lines plus ``****`` separators and section
  titles; the first line (``HeaderSize=N``, older firmware
  ``HeaderLength=N``) counts the header lines, then come a ``****`` line and
  the column-name line. When the count does not point at a column-name line
  (hand-edited or truncated headers), the first tab-separated line without
  ``=`` after the header is taken.
* Columns come in per-height blocks (``40m Wind Speed (m/s)`` ...,
  ``40m Data Availability (%)``), each block followed by an EMPTY column;
  the last one makes every line end with a tab. Empty columns are dropped.
  ``height_m`` [m] is the number before ``m`` that starts the name (or a
  trailing ``... 40m``); where a name repeats in every block without a
  height (some v1 layouts) the height comes from ``Altitudes (m)`` by
  block, and the channel is named ``<height>m <name>`` so names stay unique
  (the name as written is in ``attrs["column"]``).
* ``unit`` is the last parenthesised part of the name (``(m/s)``, ``(°)``,
  ``(dB)``, ``(%)``). Statistic from the name: ``Dispersion`` / ``Std`` /
  v1 ``d``-prefixed names (``dVh``, ``dum``) -> ``sd``; ``min`` / ``max``
  -> ``min`` / ``max``; ``Wiper count`` -> ``count``; ``Data
  Availability`` -> None (a percentage of valid lines of sight); every other
  column (speeds, direction, Z-wind, CNR, spectral broadening, temperatures,
  pressure, humidity, battery) is a period mean -> ``avg``.
* Timestamps are labels in the header's ``timezone`` (``UTC+0``,
  ``UTC+01:00`` -> ``meta.utc_offset_hours``). v2 names the column
  ``Timestamp (end of interval)`` -> ``meta.timestamp_is_end_of_period``;
  ``Timestamp (start of interval)`` says the opposite; v1 (``Date``) is
  silent. Layouts ``YYYY/MM/DD HH:MM`` (v2) and ``DD/MM/YYYY HH:MM:SS``
  (v1) -- day first, never month first -- with or without seconds; a v1
  ``Date`` + ``Time`` column pair is joined.
* Missing: ``NaN`` (also ``NAN``, ``nan``, ``-NaN``) and empty fields become null.
* Latin-1 (``°`` is byte 0xB0), UTF-8 with or without BOM, CRLF / LF / CR,
  a missing final line break and a partially written last line (dropped
  with a warning) are accepted; exact duplicate rows are kept.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, is_number, load_table, text_columns
from stationkit.parsers.timeparse import parse_timestamps_first_fit

FORMAT = "windcube_sta"
SEPARATOR = "\t"
ENCODINGS = ("utf-8", "latin-1")
HEADER_SIZE_KEYS = ("HeaderSize", "HeaderLength")
TIMEZONE_KEYS = ("timezone", "time zone")
ALTITUDES_KEYS = ("Altitudes (m)", "Altitudes(m)")
MISSING_MARKERS = ("NaN", "NAN", "nan", "-NaN", "")
#: v2 and v1 timestamp layouts; others are tried day first
TIME_FORMATS = ("%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M")
#: names of the timestamp column in v2 and v1 files (lower case)
TIMESTAMP_NAMES = ("timestamp", "date", "date time", "datetime", "time and date")
#: bytes of the start and end of the file decoded for the header and sampling
HEAD_BYTES = 1 << 20
#: data lines of the head and of the tail looked at to tell text columns from numeric
SAMPLE_LINES = 500
TAIL_BYTES = 1 << 16

_HEIGHT_PREFIX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*m\b")
_HEIGHT_SUFFIX = re.compile(r"\b(\d+(?:\.\d+)?)\s*m\s*$")
_UNIT = re.compile(r"\(([^()]*)\)\s*$")
_ZONE = re.compile(r"^UTC\s*(?:([+-])\s*(\d{1,2})(?:(?::|h)?(\d{2}))?(?:[.,](\d+))?)?\s*$", re.I)
_V1_SD = re.compile(r"^d(?:vh|um|vm|wm|cnr|sigmafreq|sigma)", re.I)
_WORDS = re.compile(r"[a-z]+")


def sniff(head: bytes) -> bool:
    """True for a WindCube .sta: a HeaderSize/HeaderLength line and WindCube markers."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if not head.startswith((b"HeaderSize=", b"HeaderLength=")):
        return False
    lower = head.lower().replace(b"\r", b"\n")
    return b"windcube" in lower or re.search(rb"^id system\s*=\s*w[lc]s", lower, re.M) is not None


def read_windcube_sta(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a WindCube v1/v2 ``.sta`` file into a :class:`ParseResult`.

    Returns one Float64 channel per numeric column except the timestamp:
    environment columns (``Int Temp (°C)``, ``Pressure (hPa)``, ``Vbatt
    (V)``, ``Wiper count`` ...) and every per-height column (``40m Wind Speed
    (m/s)``, ``... Dispersion``, ``min``, ``max``, ``Wind Direction (°)``,
    ``Z-wind``, ``CNR (dB)``, ``Dopp Spect Broad``, ``Data Availability (%)``)
    with ``height_m`` [m], ``unit`` and ``statistic``. ``meta``: ``ID System``
    as logger serial, ``Version`` as logger OS, ``Location`` as station name,
    the ``timezone`` offset and the end-of-interval convention; every header
    key is in ``extra["header"]`` and the altitudes in ``extra["altitudes_m"]``.
    """
    display = source_name(source, name)
    data = read_bytes(source)
    if b"\r" in data and b"\n" not in data:
        data = data.replace(b"\r", b"\n")  # lone-CR files: polars splits on LF only
    head_bytes = data[:HEAD_BYTES]
    if len(data) > HEAD_BYTES:
        head_bytes = head_bytes[: head_bytes.rfind(b"\n") + 1]
    head_text, encoding = decode(head_bytes, ENCODINGS)
    if encoding == "utf-16":
        data = decode(data)[0].encode("utf-8")
    lines = split_lines(head_text)

    header, names_index = _header(lines, display)
    raw_names = lines[names_index].split(SEPARATOR)
    first_data_line = names_index + 2
    tail_lines = _tail_lines(data) if len(data) > HEAD_BYTES else []
    sample = lines[names_index + 1 : names_index + 1 + SAMPLE_LINES] + tail_lines[-SAMPLE_LINES:]
    raw_names = _reconcile_width(raw_names, sample)

    altitudes = _altitudes(header)
    ts_cols, columns, channels, skipped = _columns(
        raw_names, sample, altitudes, display, names_index + 1
    )
    layout = TableLayout(
        columns=columns,
        numeric=frozenset(c.name for c in channels),
        first_data_line=first_data_line,
        separator=SEPARATOR,
        quote_char=None,
        null_values=MISSING_MARKERS,
        required=ts_cols[0],
        encoding="utf8-lossy",
    )
    frame, warnings = load_table(data, layout, display)
    text = (
        frame.get_column(ts_cols[0])
        if len(ts_cols) == 1
        else frame.select(pl.concat_str([pl.col(ts_cols[0]), pl.col(ts_cols[1])], separator=" "))
        .to_series()
        .alias(ts_cols[0])
    )
    stamps, ts_warnings = parse_timestamps_first_fit(
        text, name=display, first_line=first_data_line, formats=TIME_FORMATS
    )
    wide = frame.select(stamps.alias(TIMESTAMP), *[pl.col(c.name) for c in channels])

    ts_name = raw_names[0].strip().lower()
    end_of_period = (
        True if "end of interval" in ts_name else False if "start of interval" in ts_name else None
    )
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            logger_model="WindCube",
            logger_serial=header.get("ID System") or None,
            logger_os=header.get("Version") or None,
            station_name=header.get("Location") or header.get("Localisation") or None,
            utc_offset_hours=_zone_hours(lines, display),
            timestamp_is_end_of_period=end_of_period,
            skipped_channels=tuple(skipped),
            warnings=tuple(warnings + ts_warnings),
            extra={
                "header": header,
                "altitudes_m": altitudes,
                "timestamp_column": raw_names[0],
                "encoding": encoding,
            },
        ),
        channels=tuple(channels),
        frame=wide,
    )


def _header(lines: list[str], display: str) -> tuple[dict[str, str], int]:
    """The header's key=value pairs and the index of the column-name line."""
    if not lines:
        raise ParseError(display, "an empty file; expected a 'HeaderSize=N' line", line=1)
    key, _, value = lines[0].partition("=")
    if key.strip() not in HEADER_SIZE_KEYS:
        raise ParseError(
            display, f"expected 'HeaderSize=N' on line 1, found {lines[0][:40]!r}", line=1
        )
    header: dict[str, str] = {}
    names_index: int | None = None
    declared = int(value) if value.strip().isdigit() else None
    if declared is not None and declared + 1 < len(lines) and _is_names_line(lines[declared + 1]):
        names_index = declared + 1  # the usual case: header, '****', names
    for i, line in enumerate(lines):
        if names_index is not None and i >= names_index:
            break
        if "=" in line:
            k, _, v = line.partition("=")
            header[k.strip()] = v.strip()
        elif names_index is None and i > 0 and _is_names_line(line):
            names_index = i
    if names_index is None:
        raise ParseError(
            display,
            "expected a tab-separated column-name line after the header "
            f"(HeaderSize={value.strip()} lines and a '****' line)",
            line=(declared + 2) if declared is not None else 2,
        )
    return header, names_index


def _is_names_line(line: str) -> bool:
    if SEPARATOR not in line or "=" in line:
        return False
    first = line.split(SEPARATOR, 1)[0].strip().lower()
    return first.startswith(TIMESTAMP_NAMES)


def _tail_lines(data: bytes) -> list[str]:
    tail = data[-TAIL_BYTES:]
    tail = tail[tail.find(b"\n") + 1 :]
    return split_lines(tail.decode("latin-1"))


def _reconcile_width(names: list[str], sample: list[str]) -> list[str]:
    """Some writers drop the final tab on data lines but not on the names line."""
    widths = [len(line.split(SEPARATOR)) for line in sample[:50] if line.strip()]
    if not widths:
        return names
    width = max(set(widths), key=widths.count)
    while len(names) > width and names[-1].strip() == "":
        names = names[:-1]
    if len(names) < width:
        names = names + [""] * (width - len(names))
    return names


def _altitudes(header: dict[str, str]) -> list[float]:
    for key in ALTITUDES_KEYS:
        if key in header:
            return [float(v) for v in header[key].split() if is_number(v)]
    return []


def _columns(
    raw: list[str], sample: list[str], altitudes: list[float], display: str, line_no: int
) -> tuple[list[str], list[str], list[ChannelInfo], list[str]]:
    """Timestamp column(s), unique layout names, numeric channels, text columns."""
    names = [n.strip() for n in raw]
    ts_cols = [names[0]]
    if len(names) > 1 and names[0].lower() == "date" and names[1].lower() == "time":
        ts_cols.append(names[1])
    text_idx = text_columns(sample, len(names), separator=SEPARATOR, missing=MISSING_MARKERS)
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    columns: list[str] = []
    channels: list[ChannelInfo] = []
    skipped: list[str] = []
    seen: set[str] = set()
    block = 0
    for i, col in enumerate(names):
        if col == "":
            columns.append(f"__empty{i}")
            if i > 0 and names[i - 1] != "":
                block += 1
            continue
        height = _height(col)
        label = col
        attrs: dict[str, Any] = {}
        if counts[col] > 1 and col not in ts_cols:
            # a name repeated in each height block: the block gives the height
            if height is None and block < len(altitudes):
                height = altitudes[block]
                label = f"{height:g}m {col}"
                attrs["column"] = col
            if label in seen:
                raise ParseError(
                    display,
                    f"duplicate column name {col!r}; every column needs a unique name",
                    line=line_no,
                )
        seen.add(label)
        columns.append(label)
        if col in ts_cols:
            continue
        if i in text_idx:
            skipped.append(label)
            continue
        m = _UNIT.search(col)
        channels.append(
            ChannelInfo(
                name=label,
                statistic=_statistic(col),
                unit=(m.group(1).strip() or None) if m else None,
                height_m=height,
                attrs=attrs,
            )
        )
    return ts_cols, columns, channels, skipped


def _height(col: str) -> float | None:
    m = _HEIGHT_PREFIX.match(col) or _HEIGHT_SUFFIX.search(_UNIT.sub("", col))
    return float(m.group(1)) if m else None


def _statistic(col: str) -> str | None:
    """DESIGN statistic of a v2 name (``40m Wind Speed Dispersion (m/s)``) or v1 name (``dVh``)."""
    base = _UNIT.sub("", _HEIGHT_PREFIX.sub("", col)).strip()
    words = _WORDS.findall(base.lower())
    last = base.split()[-1] if base.split() else ""
    if _V1_SD.match(last) or {"dispersion", "std", "stdev", "sd", "deviation"} & set(words):
        return "sd"
    if "min" in words or base.lower().endswith("min"):
        return "min"
    if "max" in words or base.lower().endswith("max"):
        return "max"
    if "count" in words:
        return "count"
    if "availability" in words or "avail" in words:
        return None
    return "avg"


def _zone_hours(lines: list[str], display: str) -> float | None:
    """``timezone=UTC+0`` -> 0.0, ``UTC+01:00`` -> 1.0, ``UTC-5:30`` -> -5.5; absent -> None."""
    for line_no, line in enumerate(lines, start=1):
        key, sep, text = line.partition("=")
        if not sep or key.strip().lower() not in TIMEZONE_KEYS:
            continue
        if not text.strip():
            return None
        m = _ZONE.match(text.strip())
        if m is None:
            raise ParseError(
                display, f"expected a timezone like 'UTC+0', found {text.strip()!r}", line=line_no
            )
        if m.group(1) is None:
            return 0.0
        sign = -1.0 if m.group(1) == "-" else 1.0
        hours = float(m.group(2))
        if m.group(3):
            hours += int(m.group(3)) / 60
        elif m.group(4):
            hours = float(f"{m.group(2)}.{m.group(4)}")
        return sign * hours
    return None
