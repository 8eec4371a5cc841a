"""Ammonit Meteo-40 / Meteo-40 Plus / Meteo-42 statistics CSV files.

No real Ammonit CSV file was available to build this reader. The layout is
reconstructed from Ammonit's manuals (a CSV file is a data part followed by
an information part in ini format), a public issue (the configuration is the
file's footer) and a real Meteo-40L configuration export (the ini keys); what
is assumed is listed in ``docs/formats/ammonit.md``. Layout::

    [# ]Key<TAB or blanks>Value            optional metadata lines
    Date/time<TAB>V1;wind_speed;Avg<TAB>V1;wind_speed;Max<TAB>...
    2024-03-01 00:00:00<TAB>7.31<TAB>9.80<TAB>...
    ...
                                           information part: the configuration
    # Ammonit Data Logger - System Information
    # Data Logger Type                Meteo-40M
    # Serial Number                   D102345
    [System]
    timezone=UTC+01:00
    [Evaluation]
    stat_interval=10 min
    [Sensor_1]
    label=V1
    height=110
    serial_number=06183412
    [Eval_1]
    label=V1
    type=wind_speed
    unit=m/s
    var_slope=0.04612
    var_offset=0.2412
    sensors=1

Format rules this reader relies on:

* The column header line is the first non-comment line whose first field is
  ``Date/time`` (any case) and whose second field is not a date; lines above
  it are key/value metadata. Fields are separated by tabs, or ``;`` or ``,``,
  whichever splits that line; the decimal mark is ``.`` unless the data use
  ``,``. A non-data line right under the names is a units line.
* Column names carry the statistic: ``<label>;<measurement type>;<Stat>``,
  ``<label>;<Stat>`` or ``<label>_<Stat>``, optionally followed by a unit in
  brackets or parentheses (``Avg [m/s]``) or a fourth ``;`` part. ``Avg``,
  ``Max``, ``Min``, ``StdDev``/``SD``, ``Count``, ``Sum``, ``Median``,
  ``Gust``, ``First`` map to DESIGN's avg, max, min, sd, count, sum, median,
  gust, sample. A statistic column holding text is an error.
* The information part starts at the first line after the data that is
  blank, a ``[section]`` or not a data row. ``[Eval_N]`` (label, type, unit,
  var_slope, var_offset, formula_params, sensors) and ``[Sensor_N]`` (label,
  model, serial_number, height, used_channels) describe each column: it is
  matched by label (and measurement type when the name has one; two
  evaluations of one sensor share a label). Unit [as written], height [m],
  and the slope and offset the logger applied (``attrs``) come from there.
* ``[System] timezone=UTC+01:00`` (or a ``Time zone`` metadata line) gives
  the clock offset of the naive labels; ``[Evaluation] stat_interval`` the
  interval. Whether a label is the start or the end of its interval is not
  known: it stays unset unless a metadata line says so, and the station
  setting decides.
* Missing: an empty field, ``NaN`` and ``-`` (whole fields only).
* UTF-8 with or without BOM, Windows-1252/Latin-1 (``°``), CRLF/LF/CR, a
  missing final line break and a truncated last line (dropped with a
  warning) are accepted; exact duplicate rows are kept.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from stationkit.errors import ParseError
from stationkit.parsers.base import ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.delimited import DelimitedOptions, read_delimited
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import split_fields

FORMAT = "ammonit_csv"
#: first field of the column header line (compared case-insensitively)
TIME_HEADER = "date/time"
SEPARATORS = ("\t", ";", ",")
MISSING_MARKERS = ("NaN", "nan", "NAN", "-")
#: Ammonit statistic spelling (lower case) -> DESIGN statistic
STATISTIC_MAP = {
    "avg": "avg",
    "average": "avg",
    "mean": "avg",
    "max": "max",
    "min": "min",
    "stddev": "sd",
    "std": "sd",
    "sd": "sd",
    "sdev": "sd",
    "count": "count",
    "sum": "sum",
    "median": "median",
    "gust": "gust",
    "first": "sample",
}
#: how many lines the header search looks at
MAX_HEADER_LINES = 200

_STAT_ALT = "|".join(sorted(STATISTIC_MAP, key=len, reverse=True))
_UNIT_SUFFIX = r"(?:\s*[\[(](?P<unit>[^\])]*)[\])])?"
#: "<label>;<type>;<Stat>[;<unit>]" (or "<label>;<Stat>" for logger-internal values)
_SEMI_NAME = re.compile(
    rf"^(?P<label>[^;]+);(?:(?P<type>[^;]*);)?(?P<stat>{_STAT_ALT}){_UNIT_SUFFIX}"
    rf"(?:;(?P<unit2>[^;]*))?$",
    re.IGNORECASE,
)
#: "<label>_<Stat>"
_UNDERSCORE_NAME = re.compile(
    rf"^(?P<label>.+?)_(?P<stat>{_STAT_ALT}){_UNIT_SUFFIX}$", re.IGNORECASE
)
_LINE_END = re.compile(rb"\r\n|\r|\n")
_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")
_NUMBERED = re.compile(r"^(?P<kind>eval|evaluation|sensor)[ _-]?(?P<n>\d+)$", re.IGNORECASE)
_HEIGHT = re.compile(r"(\d+(?:[.,]\d+)?)\s*m\b")
_ZONE = re.compile(
    r"^(?:UTC|GMT)?\s*(?:(?P<sign>[+-])\s*(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?)?$", re.I
)
_DURATION = re.compile(r"^(?P<n>\d+(?:[.,]\d+)?)\s*(?P<unit>s|sec|min|minutes?|h|hours?)$", re.I)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{1,2}[./]\d{1,2}[./]\d{2,4}")
#: "# Key<TAB or 2+ blanks, or : = ;>value" lines of the system information block
_KEY_VALUE = re.compile(r"^#?\s*(?P<k>[^\t:=;]+?)(?:\t+|\s{2,}|\s*[:=;]\s*)(?P<v>.*?)[\t;\s]*$")
_MODEL = re.compile(r"Meteo-4\d\w*(?: Plus)?", re.IGNORECASE)


def sniff(head: bytes) -> bool:
    """True for an Ammonit Meteo-40/41/42 CSV: a ``Date/time`` column header
    line with Ammonit-style statistic columns, or one under an Ammonit header."""
    text, _ = decode(head)
    lines = split_lines(text)[:MAX_HEADER_LINES]
    found = _find_header(lines)
    if found is None:
        return False
    index, sep = found
    names = [f.text.strip() for f in split_fields(lines[index], sep)[1:]]
    styled = sum(1 for n in names if _SEMI_NAME.match(n) or _UNDERSCORE_NAME.match(n))
    if names and styled * 2 >= len([n for n in names if n]):
        return True
    before = "\n".join(lines[:index])
    return "ammonit" in before.lower() or _MODEL.search(before) is not None


def read_ammonit_csv(source: Source, *, name: str | None = None) -> ParseResult:
    """Read an Ammonit Meteo-40/41/42 statistics CSV into a :class:`ParseResult`.

    One Float64 channel per numeric column, named exactly as the column, with
    ``statistic`` from the name, ``unit`` and ``height_m`` [m] from the name
    or the information part, and ``attrs``: ``label``, ``measurement_type``,
    ``ammonit_statistic`` (as written), ``slope`` / ``offset`` (the logger's,
    from ``var_slope`` / ``var_offset``), ``sensor_model``, ``sensor_serial``,
    ``logger_channel``. ``meta`` has logger model and serial, station name,
    interval [s] and clock offset [h] when stated; ``meta.extra`` keeps the
    key/value header (``header``) and the information part (``information``,
    section -> key -> value).
    """
    display = source_name(source, name)
    data = read_bytes(source)
    head = data[: 1 << 20]
    if len(data) > len(head):
        head = head[: max(head.rfind(b"\n"), head.rfind(b"\r")) + 1]
    text, encoding = decode(head)
    lines = split_lines(text)
    found = _find_header(lines[:MAX_HEADER_LINES])
    if found is None:
        raise ParseError(
            display,
            "expected a column header line starting with 'Date/time' "
            f"in the first {MAX_HEADER_LINES} lines",
        )
    index, sep = found
    header = _key_values(lines[:index])
    # lines between the column names and the data: a units line, if any
    between = _lines_before_data(lines, index, sep)
    first = index + 1 + between
    data_part, info_text = _split_information(data, first, encoding)
    info = _ini(split_lines(info_text)) if info_text.strip() else {}
    decimal = _decimal(lines[first : first + 200], sep)
    options = DelimitedOptions(
        delimiter=sep,
        decimal=decimal,
        header_row=index + 1,
        units_row=index + 2 if between else None,
        skip_rows=max(0, between - 1),
        timestamp_column=1,
        missing=MISSING_MARKERS,
        encoding=None,
    )
    base = read_delimited(io.BytesIO(data_part), name=display, options=options)
    _check_statistics_numeric(base.meta.skipped_channels, data_part, index, first, sep, display)
    evals = _evaluations(info)
    channels = tuple(_describe(c, evals) for c in base.channels)
    meta = _meta(header, info)
    extra: dict[str, Any] = dict(base.meta.extra)
    extra.update({"decimal": decimal, "header": header, "information": info})
    if info_text.strip():
        before = data_part + data[len(data_part) :][: len(info_text) - len(info_text.lstrip())]
        extra["information_line"] = len(re.findall(rb"\r\n|\r|\n", before)) + 1
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            skipped_channels=base.meta.skipped_channels,
            warnings=base.meta.warnings,
            extra=extra,
            **meta,
        ),
        channels=channels,
        frame=base.frame,
    )


def _find_header(lines: list[str]) -> tuple[int, str] | None:
    """(0-based index, separator) of the column header line.

    The system information block (``# Date/time   2024-11-13 10:42:34 UTC``)
    also has a Date/time key: a column header line is not a comment and its
    second field is a column name, not a date.
    """
    for i, line in enumerate(lines):
        stripped = line.lstrip("\ufeff")
        if stripped.lstrip().startswith("#"):
            continue
        for sep in SEPARATORS:
            if sep not in stripped:
                continue
            first, rest = stripped.split(sep, 1)
            if first.strip().strip('"').lower() != TIME_HEADER:
                continue
            second = rest.split(sep, 1)[0].strip().strip('"')
            if second and not _DATE.match(second):
                return i, sep
    return None


def _lines_before_data(lines: list[str], index: int, sep: str) -> int:
    """How many non-data lines (units) follow the column header line."""
    count = 0
    for line in lines[index + 1 : index + 4]:
        first = line.split(sep, 1)[0].strip().strip('"')
        if not line.strip() or first[:1].isdigit():
            break
        count += 1
    return count


def _check_statistics_numeric(
    skipped: tuple[str, ...], data: bytes, index: int, first: int, sep: str, display: str
) -> None:
    """A statistic column is numbers: a text value there is an error, not text."""
    stats = [n for n in skipped if _SEMI_NAME.match(n) or _UNDERSCORE_NAME.match(n)]
    if not stats:
        return
    text, _ = decode(data)
    lines = split_lines(text)
    names = [f.text.strip() for f in split_fields(lines[index], sep)]
    decimal = _decimal(lines[first : first + 200], sep)
    for no, line in enumerate(lines[first:], start=first + 1):
        fields = [f.text.strip() for f in split_fields(line, sep)]
        for name in stats:
            i = names.index(name)
            value = fields[i] if i < len(fields) else ""
            if value and value not in MISSING_MARKERS and not _is_number(value, decimal):
                raise ParseError(
                    display,
                    f"column {name!r}: expected a number, found {value!r}",
                    line=no,
                )


def _is_number(text: str, decimal: str) -> bool:
    if decimal == ",":
        text = text.replace(",", ".")
    try:
        float(text)
    except ValueError:
        return False
    return True


def _key_values(lines: list[str]) -> dict[str, str]:
    """The metadata lines above the column header: ``[# ]key<TAB|2+ blanks|:|=|;>value``;
    a line without a value is kept under ``line N``."""
    out: dict[str, str] = {}
    for i, line in enumerate(lines, start=1):
        line = line.strip().lstrip("\ufeff")
        if not line.strip("#-; \t"):
            continue
        match = _KEY_VALUE.match(line)
        if match is None or not match.group("v"):
            out[f"line {i}"] = line.lstrip("# ")
        else:
            out[match.group("k").strip()] = match.group("v").strip()
    return out


def _split_information(data: bytes, header_line: int, encoding: str) -> tuple[bytes, str]:
    """(data part including the header, text of the information part or "")."""
    pos = 0
    for _ in range(header_line):
        nxt = _LINE_END.search(data, pos)
        if nxt is None:
            return data, ""
        pos = nxt.end()
    # a line break followed by a blank line, a section or a non-data line
    boundary = re.compile(rb"(\r\n|\r|\n)(?=[ \t]*(?:\r\n|\r|\n)|\[|[^0-9\s\"])")
    for match in boundary.finditer(data, pos):
        rest = data[match.end() : match.end() + 4096].lstrip(b" \t\r\n")
        if not rest or (not rest[:1].isdigit() and not rest.startswith(b'"')):
            cut = match.end()
            info = data[cut:]
            text, _ = decode(info, (encoding,) if encoding not in ("utf-8-sig",) else ())
            return data[:cut], text
    return data, ""


#: where the "# Key   value" lines of the system information block go
SYSTEM_INFORMATION = "System Information"


def _ini(lines: list[str]) -> dict[str, dict[str, str]]:
    """Sections of the information part (``[name]`` then ``key=value``); the
    ``# Key   value`` comment block of the logger's system information goes to
    the section ``System Information``."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for line in lines:
        line = line.strip()
        if line.startswith("#"):
            match = _KEY_VALUE.match(line)
            if match is not None and match.group("v") and not line.startswith("# -"):
                block = sections.setdefault(SYSTEM_INFORMATION, {})
                block[match.group("k").strip()] = match.group("v").strip()
            continue
        if not line or line.startswith(";"):
            continue
        match = _SECTION.match(line)
        if match is not None:
            current = sections.setdefault(match.group("name").strip(), {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    return {name: keys for name, keys in sections.items() if name or keys}


def _decimal(lines: list[str], sep: str) -> str:
    """',' when the data write decimal commas (never with a ',' separator)."""
    if sep == ",":
        return "."
    comma = dot = 0
    for line in lines:
        for value in line.split(sep)[1:]:
            value = value.strip()
            if re.fullmatch(r"-?\d+,\d+", value):
                comma += 1
            elif re.fullmatch(r"-?\d*\.\d+(?:[eE][-+]?\d+)?", value):
                dot += 1
    return "," if comma and not dot else "."


@dataclass(frozen=True)
class _Eval:
    """One evaluation of the information part, with its sensor."""

    label: str
    type: str
    unit: str | None
    slope: float | None
    offset: float | None
    height: float | None
    model: str | None
    serial: str | None
    channel: str | None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


def _evaluations(info: Mapping[str, Mapping[str, str]]) -> list[_Eval]:
    sensors: dict[str, Mapping[str, str]] = {}
    evals: list[Mapping[str, str]] = []
    for section, keys in info.items():
        match = _NUMBERED.match(section.strip())
        if match is None:
            continue
        if match.group("kind").lower() == "sensor":
            sensors[match.group("n")] = keys
        else:
            evals.append(keys)
    out = []
    for keys in evals:
        ids = [s.strip() for s in keys.get("sensors", "").split(",") if s.strip()]
        sensor = sensors.get(ids[0], {}) if ids else {}
        params = keys.get("formula_params", "")
        out.append(
            _Eval(
                label=keys.get("label", "").strip(),
                type=keys.get("type", "").strip(),
                unit=keys.get("unit", "").strip() or None,
                slope=_number(keys.get("var_slope")),
                offset=_number(keys.get("var_offset")),
                height=_number(sensor.get("height")),
                model=sensor.get("model") or None,
                serial=sensor.get("serial_number") or None,
                channel=params.split(",")[0].strip() or sensor.get("used_channels") or None,
            )
        )
    return out


def _describe(channel: ChannelInfo, evals: list[_Eval]) -> ChannelInfo:
    """Statistic, unit, height and vendor attrs for one column name."""
    name = channel.name.strip()
    label, mtype, stat, unit = name, "", None, None
    match = _SEMI_NAME.match(name) or _UNDERSCORE_NAME.match(name)
    if match is not None:
        groups = match.groupdict()
        label = groups["label"].strip()
        mtype = (groups.get("type") or "").strip()
        stat = groups["stat"]
        unit = (groups.get("unit") or groups.get("unit2") or "").strip() or None
    unit = unit or channel.unit  # the name's own unit, else a units line
    found = _match_eval(label, mtype, evals)
    attrs: dict[str, Any] = {"label": label}
    mtype = mtype or (found.type if found is not None else "")
    if mtype:
        attrs["measurement_type"] = mtype
    if stat is not None:
        attrs["ammonit_statistic"] = stat
    height = None
    if found is not None:
        unit = unit or found.unit
        height = found.height
        extra = {
            "slope": found.slope,
            "offset": found.offset,
            "sensor_model": found.model,
            "sensor_serial": found.serial,
            "logger_channel": found.channel,
        }
        attrs.update({k: v for k, v in extra.items() if v is not None})
    if height is None:
        hm = _HEIGHT.search(label)
        height = float(hm.group(1).replace(",", ".")) if hm else None
    statistic = STATISTIC_MAP.get(stat.lower()) if stat else None
    if statistic == "count":
        unit = None
    return replace(channel, statistic=statistic, unit=unit, height_m=height, attrs=attrs)


def _match_eval(label: str, mtype: str, evals: list[_Eval]) -> _Eval | None:
    """The evaluation a column belongs to: by label (and type), else by channel."""
    key = label.casefold()
    hits = [e for e in evals if e.label.casefold() == key]
    if mtype:
        typed = [e for e in hits if e.type.casefold() == mtype.casefold()]
        hits = typed or hits
    if not hits:
        hits = [e for e in evals if e.channel and e.channel.split(",")[0].casefold() == key]
    return hits[0] if len(hits) == 1 else None


def _meta(header: Mapping[str, str], info: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """FileMeta keywords from the key/value header and the information part."""
    flat: dict[str, str] = {}
    for section, keys in info.items():
        if _NUMBERED.match(section.strip()):
            continue  # sensor and evaluation sections describe sensors, not the logger
        for key, value in keys.items():
            flat.setdefault(_norm(key), value)
            flat.setdefault(_norm(f"{section} {key}"), value)
    for key, value in header.items():
        flat[_norm(key)] = value

    def first(*keys: str) -> str | None:
        for key in keys:
            value = flat.get(key)
            if value:
                return value.strip()
        return None

    model = first("dataloggertype", "loggertype", "loggermodel", "datalogger", "device", "model")
    if model is None:
        text = " ".join(header.values()) + " " + " ".join(header)
        found = _MODEL.search(text)
        model = found.group(0) if found else None
    zone = first("timezone", "systemtimezone", "utcoffset")
    interval = first(
        "evaluationstatinterval",
        "statinterval",
        "statisticsinterval",
        "statisticinterval",
        "averaginginterval",
        "interval",
    )
    convention = first("timestamp", "timestamps", "timestampposition")
    return {
        "logger_model": model,
        "logger_serial": first("serialnumber", "loggerserialnumber", "serial", "serialno"),
        "station_name": first("systemname", "project", "projectname", "site", "stationname"),
        "utc_offset_hours": _offset_hours(zone),
        "interval_s": _seconds(interval),
        "timestamp_is_end_of_period": _convention(convention),
    }


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _offset_hours(zone: str | None) -> float | None:
    if zone is None:
        return None
    match = _ZONE.match(zone.strip())
    if match is None:
        return None
    if match.group("sign") is None:
        return 0.0 if zone.strip().upper() in ("UTC", "GMT") else None
    hours = int(match.group("h")) + int(match.group("m") or 0) / 60
    return -hours if match.group("sign") == "-" else hours


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    value = float(match.group("n").replace(",", "."))
    unit = match.group("unit").lower()
    return value * (3600 if unit.startswith("h") else 60 if unit.startswith("m") else 1)


def _convention(text: str | None) -> bool | None:
    if text is None:
        return None
    low = text.lower()
    if "end" in low:
        return True
    if "begin" in low or "start" in low:
        return False
    return None
