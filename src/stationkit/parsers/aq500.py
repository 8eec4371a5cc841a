"""AQSystem AQ500 sodar result files (``*_result.txt``).

Layout (INI-like sections, CRLF)::

    [BOF]
    [BOH]
    Station site name=Escheberg_AJ03        <NUL>   header values padded with spaces/NULs
    AQ500 Program version=9S24<NUL>
    Number of levels=31
    Lowest level(LL m)=50
    Highest level(HL m)=200
    Interval(m)=5
    Data average time(min)=10
    ASCIICode.Decimal=46                   decimal mark, as an ASCII code
    ASCIICode.Data field separator=44      field separator, as an ASCII code
    No data=9999
    Data field 1: Date and Time(YYYYMMDD hh:mm)
    Data field 2: Battery voltage(V * 100)
    Data field 3: Temperature sensor(deg C * 10)=True
    Data field 6,12,18,...: Speed m/s(LL to HL)
    ...
    [EOH]
    [BOD]
    20161122  0:00,1193,134,0,726,4.33,184,.85,...,     (trailing separator)
    [EOD]
    [EOF]

Reading rules:

* Field layout comes from the ``Data field`` lines (1-based field indices).
  Single-field lines are scalar channels named by their description without
  the bracketed unit (``Battery voltage``, unit ``V * 100``; the values are
  kept as logged, scaled); ``=True``/``=False`` (sensor enabled) goes to
  ``attrs["enabled"]``. Multi-field lines ``(LL to HL)`` are profiles: one
  channel per level named ``<variable>_<height>m`` (``Speed_50m``,
  ``Dir_55m``, ``Std-Speed_50m``, ``Vertical velocity(w)_50m``,
  ``Std-w_50m``, ``Quality(S/N*10)_50m``), the trailing word being the
  unit when it is one (``m/s``, ``degrees``); heights are
  ``LL + k * Interval`` [m]. Variable-major channel order.
* Statistic: Speed, Dir, Vertical velocity ``avg``; ``Std-*`` ``sd``; the
  rest None.
* A profile's index list that skips levels (the corpus file omits field 178
  and 179 from the Std-w and Quality lists although rows carry them) is
  completed from the level layout (every level has the same number of
  fields, first index + k * stride) with a warning; a list that does not fit
  that layout is an error.
* ``No data`` (9999) is a whole-field missing marker -> null; empty fields
  too. Leading-dot decimals (``.85``) are numbers.
* Time labels ``YYYYMMDD  H:MM`` (unpadded hour) are naive logger-clock
  labels. The file does not state whether they mark the start or the end of
  the ``Data average time`` period (daily files run 0:00 .. 23:50, which
  suggests period starts, but that is not a stated rule), so
  ``timestamp_is_end_of_period`` is None (station setting decides);
  ``interval_s`` is the stated average time.
* A missing ``[EOD]`` (a file still being written) is a warning; a
  truncated last line is dropped with a warning; NUL bytes anywhere in the
  header are ignored.
"""

from __future__ import annotations

import re

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, load_table
from stationkit.parsers.timeparse import parse_timestamps_first_fit

FORMAT = "aq500"
BEGIN_HEADER = "[BOH]"
END_HEADER = "[EOH]"
BEGIN_DATA = "[BOD]"
END_DATA = "[EOD]"
KEY_LEVELS = "Number of levels"
KEY_LOWEST = "Lowest level(LL m)"
KEY_STEP = "Interval(m)"
KEY_AVERAGE = "Data average time(min)"
KEY_DECIMAL = "ASCIICode.Decimal"
KEY_SEPARATOR = "ASCIICode.Data field separator"
KEY_MISSING = "No data"
KEY_SITE = "Station site name"
KEY_PROGRAM = "AQ500 Program version"
PROFILE_SUFFIX = "(LL to HL)"
TIME_FORMAT = "%Y%m%d %H:%M"
_FIELD_LINE = re.compile(r"^Data field ([\d,\s]+):\s*(.*)$")
_UNIT_WORD = re.compile(r"^[A-Za-z%°]+(/[A-Za-z]+)?$")
_TIME_FIX = re.compile(r"^(\d{8})\s+(\d):")
_TRAILING_FLAG = re.compile(r"=(True|False)$")


def sniff(head: bytes) -> bool:
    """True for an AQ500 result file: [BOF]/[BOH] and the AQ500 header keys."""
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return (
        head.startswith(b"[BOF]")
        and b"[BOH]" in head[:64]
        and (b"AQ500" in head or b"ASCIICode.Data field separator" in head)
    )


def read_aq500(source: Source, *, name: str | None = None) -> ParseResult:
    """Read one AQ500 result file into the wide ParseResult."""
    fname = source_name(source, name)
    raw = read_bytes(source)
    text, _ = decode(raw)
    lines = split_lines(text)
    marks = {
        s: i
        for i, line in reversed(list(enumerate(lines)))
        if (s := line.strip("\x00 \t")) in (BEGIN_HEADER, END_HEADER, BEGIN_DATA, END_DATA)
    }
    for needed in (BEGIN_HEADER, END_HEADER, BEGIN_DATA):
        if needed not in marks:
            raise ParseError(fname, f"expected a {needed} line (AQ500 result file sections)")
    header, fields = _header(lines[marks[BEGIN_HEADER] + 1 : marks[END_HEADER]], fname, marks)
    warnings: list[str] = []
    first_data = marks[BEGIN_DATA] + 1  # 0-based index of the first data line
    end = marks.get(END_DATA)
    if end is None:
        warnings.append(f"no {END_DATA} line: the file may be incomplete")
        end = len(lines)
    data_lines = lines[first_data:end]

    def number(key: str) -> float:
        try:
            return float(header[key])
        except (KeyError, ValueError):
            raise ParseError(fname, f"expected a numeric header value {key!r}") from None

    separator = chr(int(number(KEY_SEPARATOR)))
    decimal = chr(int(number(KEY_DECIMAL)))
    if decimal not in ".," or separator == decimal:
        raise ParseError(fname, f"unsupported decimal mark {decimal!r} / separator {separator!r}")
    levels = int(number(KEY_LEVELS))
    heights = [number(KEY_LOWEST) + k * number(KEY_STEP) for k in range(levels)]
    layout, channels = _channels(fields, heights, fname, warnings)
    width = len(layout)
    trailing = bool(data_lines) and data_lines[0].count(separator) == width
    columns = [*layout, "__trailing"] if trailing else list(layout)
    missing = header.get(KEY_MISSING, "").strip()
    table = TableLayout(
        columns=columns,
        numeric=frozenset(c.name for c in channels),
        first_data_line=1,
        separator=separator,
        quote_char=None,
        null_values=[missing, ""] if missing else [""],
        decimal_comma=decimal == ",",
        required=TIMESTAMP,
    )
    body = "\n".join(data_lines) + ("\n" if end < len(lines) or raw.endswith(b"\n") else "")
    try:
        frame, load_warnings = load_table(body.encode(), table, fname)
    except ParseError as exc:
        # load_table counts lines from the start of the data block
        raise ParseError(
            fname, exc.reason, line=None if exc.line is None else exc.line + first_data
        ) from None
    warnings.extend(_shift_line_numbers(w, first_data) for w in load_warnings)
    if trailing:
        extra_col = frame.get_column("__trailing")
        if extra_col.is_not_null().any():
            row = int(extra_col.is_not_null().arg_max() or 0)
            raise ParseError(
                fname, f"expected {width} fields, found more", line=first_data + row + 1
            )
        frame = frame.drop("__trailing")
    stamps = frame.get_column(TIMESTAMP).str.strip_chars().str.replace(_TIME_FIX.pattern, "$1 0$2:")
    ts, ts_warnings = parse_timestamps_first_fit(
        stamps, name=fname, first_line=first_data + 1, formats=(TIME_FORMAT,)
    )
    warnings.extend(ts_warnings)
    frame = frame.select(ts.alias(TIMESTAMP), *[pl.col(c.name).cast(pl.Float64) for c in channels])
    meta = FileMeta(
        format=FORMAT,
        logger_model="AQ500",
        program=header.get(KEY_PROGRAM) or None,
        station_name=header.get(KEY_SITE) or None,
        interval_s=number(KEY_AVERAGE) * 60 if KEY_AVERAGE in header else None,
        warnings=tuple(warnings),
        extra={k: v for k, v in header.items()},
    )
    return ParseResult(meta=meta, channels=tuple(channels), frame=frame)


def _header(
    lines: list[str], fname: str, marks: dict[str, int]
) -> tuple[dict[str, str], list[tuple[list[int], str, int]]]:
    """key=value pairs and the ``Data field`` declarations (indices, text, line)."""
    header: dict[str, str] = {}
    fields: list[tuple[list[int], str, int]] = []
    base = marks[BEGIN_HEADER] + 2
    for offset, line in enumerate(lines):
        clean = line.replace("\x00", "").strip()
        if not clean:
            continue
        m = _FIELD_LINE.match(clean)
        if m:
            try:
                idx = [int(x) for x in m.group(1).split(",")]
            except ValueError:
                raise ParseError(
                    fname, "expected field numbers like 'Data field 6,12,18:'", line=base + offset
                ) from None
            fields.append((idx, m.group(2).strip(), base + offset))
            continue
        key, sep, value = clean.partition("=")
        if not sep:
            raise ParseError(
                fname, f"expected 'key=value', found {clean[:40]!r}", line=base + offset
            )
        header[key.strip()] = value.strip()
    if not fields:
        raise ParseError(fname, "expected 'Data field' lines in the header")
    return header, fields


def _channels(
    fields: list[tuple[list[int], str, int]],
    heights: list[float],
    fname: str,
    warnings: list[str],
) -> tuple[list[str], list[ChannelInfo]]:
    """Column names in field order (timestamp first) and the numeric channels."""
    by_index: dict[int, ChannelInfo | None] = {}
    profiles = [f for f in fields if f[1].replace("\x00", "").endswith(PROFILE_SUFFIX)]
    stride = len(profiles)
    ordered: list[ChannelInfo] = []
    for idx, desc, line in fields:
        flag = _TRAILING_FLAG.search(desc)
        enabled = None if flag is None else flag.group(1) == "True"
        desc = _TRAILING_FLAG.sub("", desc).strip()
        if desc.endswith(PROFILE_SUFFIX):
            var, unit = _split_unit(desc.removesuffix(PROFILE_SUFFIX).strip())
            expected = [idx[0] + k * stride for k in range(len(heights))]
            if idx != expected:
                if not set(idx) <= set(expected):
                    raise ParseError(
                        fname,
                        f"expected field numbers {idx[0]},{idx[0] + stride},... "
                        f"(one per level, {stride} fields per level) for {var!r}",
                        line=line,
                    )
                lost = sorted(set(expected) - set(idx))
                warnings.append(
                    f"line {line}: {var!r} lists {len(idx)} of {len(heights)} levels; "
                    f"fields {lost} taken from the level layout"
                )
            for index, height in zip(expected, heights, strict=True):
                info = ChannelInfo(
                    name=f"{var}_{height:g}m",
                    statistic=_statistic(var),
                    unit=unit,
                    height_m=height,
                    attrs={"field": index, "description": desc},
                )
                by_index[index] = info
                ordered.append(info)
        elif len(idx) == 1 and idx[0] == 1:
            by_index[1] = None
        elif len(idx) == 1:
            var, _, rest = desc.partition("(")
            attrs: dict[str, object] = {"field": idx[0], "description": desc}
            if enabled is not None:
                attrs["enabled"] = enabled
            info = ChannelInfo(
                name=var.strip(),
                unit=rest.rsplit(")", 1)[0].strip() or None if rest else None,
                attrs=attrs,
            )
            by_index[idx[0]] = info
            ordered.insert(len([c for c in ordered if c.height_m is None]), info)
        else:
            raise ParseError(fname, "expected a profile '(LL to HL)' field list", line=line)
    total = max(by_index)
    if sorted(by_index) != list(range(1, total + 1)) or by_index.get(1, 0) is not None:
        holes = sorted(set(range(1, total + 1)) - set(by_index))
        raise ParseError(
            fname,
            f"expected field 1 to be date and time and fields 1..{total} declared; "
            f"undeclared: {holes[:5]}",
        )
    names = [TIMESTAMP] + [c.name for i in range(2, total + 1) if (c := by_index[i]) is not None]
    if len(set(names)) != len(names):
        raise ParseError(fname, "two data fields have the same name")
    return names, ordered


def _split_unit(text: str) -> tuple[str, str | None]:
    words = text.rsplit(" ", 1)
    if len(words) == 2 and _UNIT_WORD.match(words[1]):
        return words[0].strip(), words[1]
    return text, None


def _statistic(var: str) -> str | None:
    low = var.lower()
    if low.startswith("std"):
        return "sd"
    if low in ("speed", "dir") or low.startswith("vertical velocity"):
        return "avg"
    return None


def _shift_line_numbers(warning: str, offset: int) -> str:
    m = re.match(r"line (\d+):", warning)
    if not m:
        return warning
    return f"line {int(m.group(1)) + offset}:" + warning[m.end() :]
