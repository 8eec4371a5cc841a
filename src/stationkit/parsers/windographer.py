"""Windographer text data files (Windographer's "Export Data" text format,
and what stationkit's Windographer export writes).

Layout: a short preamble, a blank line, then a ``Date/Time`` header line and
one tab-separated line per time step::

    Created 10-05-2019 14:36 by Windographer 4.1.14

    Latitude = N 53.210000
    Longitude = W 7.120000
    Elevation = 120 m
    Calm threshold = 0 m/s

    Included flags: <Unflagged data>
    Excluded flags: Low quality

    Time stamps indicate the beginning of the time step.

    Date/Time<TAB>Spd80mN<TAB>Spd80mNStd<TAB>...
    09/01/2016 15:30:00+00:00<TAB>8.37<TAB>1.24<TAB>...

Format rules this reader relies on:

* Every preamble line is optional. ``Latitude`` / ``Longitude`` [deg, N and E
  positive], ``Elevation`` [m] and the calm threshold go to ``meta.extra``;
  "Time stamps indicate the beginning (end) of the time step." sets
  ``meta.timestamp_is_end_of_period`` False (True).
* Time labels: day-first (``09/01/2016 15:30:00``), ISO, or a 12-hour clock
  (``1/9/2016 3:30:00 PM``), as the exporting computer's settings chose;
  day/month order is decided from the values (``dayfirst`` forces it). A
  ``+00:00`` suffix on every value makes them UTC instants; without one they
  are naive labels.
* Separator: tab (comma or semicolon exports are accepted; the character
  after ``Date/Time`` decides; a semicolon export may use decimal commas).
  Windographer may end the header line with an extra separator: trailing
  empty names are dropped.
* Missing values: empty fields and ``NaN``. Windographer can write a
  missing-data code for excluded (flagged) data instead, often ``9999``: give
  it as ``missing_markers`` (whole fields only, so ``1019.9999`` stays a
  number). It is not assumed, because a value of exactly 9999 is a reading
  in stationkit's own exports; a column holding whole-field 9999 / -9999
  values gets a warning.
* Numbers are read exactly as printed (correctly rounded to the nearest
  double, as Python's ``float()``), so an export read back gives the values
  it was written from.
* Column labels carry the measurement: ``Spd80mN`` / ``Speed 80 m N Mean`` /
  ``WS 80m N SD`` / ``Dir78mSStd`` / ``Temperature 2 m`` / ``PrcpTot``.
  Parsed into ``height_m`` [m], ``statistic`` (Mean/Avg -> avg, SD/Std -> sd,
  Min, Max, Gust, TI -> ti, Tot/Sum -> sum, Median, Range, Sample, VecMean ->
  vector_avg) and, when recognisable,
  ``attrs["measurement_type"]`` (IEA Task 43 ids: wind_speed, wind_direction,
  air_temperature, relative_humidity, air_pressure, precipitation, voltage,
  ...), the boom letter in ``attrs["orientation"]`` or ``attrs["label"]``, a
  trailing ``[unit]`` in ``unit``. Windographer's convention is that a label
  without a statistic is the time-step mean: such a column of a recognised
  measurement type gets ``avg`` with ``attrs["statistic_assumed"] = True``.
* UTF-8 BOM, CRLF / LF / CR, a missing final line break and a partially
  written last line (dropped with a warning) are accepted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, load_table
from stationkit.parsers.timeparse import parse_timestamps
from stationkit.parsers.toaci1 import timestamps_quickly

FORMAT = "windographer"
HEADER_FIRST = "Date/Time"
SEPARATORS = ("\t", ",", ";")
#: always missing (whole fields)
MISSING_MARKERS = ("", "NaN", "nan", "NAN")
#: values that look like a missing-data code: warned about, never assumed
SUSPECT_CODES = (9999.0, -9999.0)
#: the preamble is short; the header must come within this many bytes
HEAD_BYTES = 1 << 20
FEET = 0.3048
#: 12-hour clock labels (a US-locale export), month-first then day-first
AMPM_MONTHFIRST = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p")
AMPM_DAYFIRST = ("%d/%m/%Y %I:%M:%S %p", "%d/%m/%Y %I:%M %p")

#: statistic words of spaced labels (compared lower-case, last word only)
STAT_WORDS = {
    "mean": "avg",
    "avg": "avg",
    "average": "avg",
    "sd": "sd",
    "std": "sd",
    "stdev": "sd",
    "stddev": "sd",
    "sigma": "sd",
    "min": "min",
    "minimum": "min",
    "max": "max",
    "maximum": "max",
    "gust": "gust",
    "ti": "ti",
    "tot": "sum",
    "total": "sum",
    "sum": "sum",
    "count": "count",
    "median": "median",
    "range": "range",
    "sample": "sample",
    "smp": "sample",
    "vecmean": "vector_avg",
}
#: statistic suffixes of compact labels (``Spd80mNStd``), case-sensitive
COMPACT_STATS = {
    "StDev": "sd",
    "StdDev": "sd",
    "Std": "sd",
    "SD": "sd",
    "Max": "max",
    "Min": "min",
    "Mean": "avg",
    "Avg": "avg",
    "Gust": "gust",
    "TI": "ti",
    "Tot": "sum",
    "Sum": "sum",
    "Med": "median",
}
#: label base (lower-case, single spaces) -> IEA Task 43 measurement_type_id
MEASUREMENT_TYPES = {
    **dict.fromkeys(
        ("speed", "spd", "ws", "wspd", "wind speed", "windspeed", "anemometer", "anem"),
        "wind_speed",
    ),
    **dict.fromkeys(
        ("direction", "dir", "wd", "wdir", "wind direction", "winddir", "vane"),
        "wind_direction",
    ),
    **dict.fromkeys(
        ("temperature", "temp", "tmp", "t", "air temperature", "airtemp", "ta"),
        "air_temperature",
    ),
    **dict.fromkeys(("rh", "humidity", "hum", "relative humidity", "relhum"), "relative_humidity"),
    **dict.fromkeys(
        ("pressure", "press", "p", "bp", "baro", "air pressure", "barometric pressure"),
        "air_pressure",
    ),
    **dict.fromkeys(("prcp", "precip", "precipitation", "rain", "rainfall"), "precipitation"),
    **dict.fromkeys(("batt", "battery", "voltage", "volt", "vbat", "vbatt"), "voltage"),
    **dict.fromkeys(("vertical speed", "vertical wind speed", "vspd", "w"), "vertical_wind_speed"),
    **dict.fromkeys(
        ("ghi", "solar", "solar radiation", "irradiance", "global irradiance"),
        "global_horizontal_irradiance",
    ),
    **dict.fromkeys(("density", "air density", "rho"), "air_density"),
}
COMPASS = frozenset(
    {"N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE"}
    | {"S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"}
)

_CREATED = re.compile(r"^Created\s+(?P<when>.*?)\s+by\s+(?P<by>.+?)\s*$")
_KEY_VALUE = re.compile(r"^\s*(?P<key>[^=:]+?)\s*[=:]\s*(?P<value>.*?)\s*$")
_COORDINATE = re.compile(
    r"^(?P<pre>[NSEW])?\s*(?P<num>[-+]?\d+(?:\.\d+)?)\s*°?\s*(?P<post>[NSEW])?$"
)
_ELEVATION = re.compile(r"^(?P<num>[-+]?\d+(?:\.\d+)?)\s*(?P<unit>m|ft|feet)?$", re.IGNORECASE)
_TIME_STEP = re.compile(r"time stamps indicate the (\w+) of the time step", re.IGNORECASE)
#: a height in a spaced label: ``80m``, ``2.5 m``; signed only straight after ``@``
#: (stationkit's names of IEA points that share a name: ``WtrSpd@-10.5m``)
_SPACED_HEIGHT = re.compile(r"(?<![\w.])((?<=@)-?\d+(?:\.\d+)?|\d+(?:\.\d+)?)\s?m(?![\w/])")
_COMPACT = re.compile(
    r"^(?P<base>[A-Za-z]+?)(?:(?P<height>\d+(?:\.\d+)?)m(?P<rest>[A-Z]{0,3}?))?"
    r"(?P<stat>" + "|".join(sorted(COMPACT_STATS, key=len, reverse=True)) + r")?$"
)
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
#: the suffix an export adds to keep clashing labels unique: "WS 80m Mean #2"
_CLASH = re.compile(r"\s+#(?P<n>\d+)$")
_UNIT = re.compile(r"\s*[\[(](?P<unit>[^\])]*)[\])]\s*$")


def sniff(head: bytes) -> bool:
    """True for a Windographer text file: a ``Date/Time`` header line, first
    or after a Windographer preamble."""
    text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    lines = split_lines(text)[:100]
    for i, line in enumerate(lines):
        if line.startswith(HEADER_FIRST) and line[len(HEADER_FIRST) : len(HEADER_FIRST) + 1] in (
            SEPARATORS
        ):
            if i == 0:
                return True
            preamble = "\n".join(lines[:i])
            return (
                "Windographer" in preamble
                or _TIME_STEP.search(preamble) is not None
                or re.search(r"^Latitude = ", preamble, re.MULTILINE) is not None
            )
    return False


@dataclass
class _Preamble:
    extra: dict[str, Any] = field(default_factory=dict)
    end_of_period: bool | None = None
    warnings: list[str] = field(default_factory=list)


def read_windographer(
    source: Source,
    *,
    name: str | None = None,
    dayfirst: bool | None = None,
    missing_markers: Sequence[str] | None = None,
) -> ParseResult:
    """Read a Windographer text data file into a :class:`ParseResult`.

    Returns one Float64 channel per data column, named exactly as the header
    has it, with ``height_m`` [m], ``statistic``, ``unit`` and ``attrs``
    parsed from the label (see the module docstring). ``meta.extra`` has
    ``latitude`` / ``longitude`` [deg], ``elevation_m`` [m],
    ``calm_threshold``, ``included_flags`` / ``excluded_flags``, ``created``
    and ``created_by`` when the preamble states them.

    ``dayfirst`` forces the day/month order of slash dates; ``missing_markers``
    adds the export's missing-data codes (whole fields, e.g. ``["9999"]``).
    """
    display = source_name(source, name)
    whole: bytes | None = None
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    else:
        whole = read_bytes(source)
        head = whole[:HEAD_BYTES]
    if len(head) == HEAD_BYTES:
        head = head[: head.rfind(b"\n") + 1]
    text, encoding = decode(head)
    lines = split_lines(text)
    header_index = next((i for i, line in enumerate(lines) if line.startswith(HEADER_FIRST)), None)
    if header_index is None:
        raise ParseError(
            display,
            f"expected a header line starting with {HEADER_FIRST!r} after the preamble, found none",
        )
    header = lines[header_index]
    separator = header[len(HEADER_FIRST) : len(HEADER_FIRST) + 1]
    if separator not in SEPARATORS:
        raise ParseError(
            display,
            f"expected a tab (or comma or semicolon) after {HEADER_FIRST!r}, found {separator!r}",
            line=header_index + 1,
        )
    preamble = _parse_preamble(lines[:header_index])
    names = [n.strip() for n in header.split(separator)]
    while names and names[-1] == "":
        names.pop()
    _check_names(names, display, header_index + 1)
    header_width = len(header.split(separator))
    first_data = next((ln for ln in lines[header_index + 1 :] if ln.strip()), None)
    width = len(names)
    if first_data is not None:
        data_width = len(first_data.split(separator))
        # a trailing separator on the header, the data lines or both
        if width < data_width <= max(header_width, width + 1):
            width = data_width
    columns = names + [f"__pad{i}" for i in range(len(names), width)]
    # a semicolon export from a decimal-comma locale writes 8,37
    decimal_comma = (
        separator == ";"
        and first_data is not None
        and any(_DECIMAL_COMMA.match(f.strip()) for f in first_data.split(separator)[1:])
    )
    if isinstance(missing_markers, str):
        raise ParseError(display, "missing_markers must be a list of codes, not one string")
    markers = tuple(str(m) for m in missing_markers or ())
    layout = TableLayout(
        columns=columns,
        numeric=frozenset(names[1:]),
        first_data_line=header_index + 2,
        separator=separator,
        quote_char='"',
        null_values=tuple(dict.fromkeys((*MISSING_MARKERS, *markers))),
        required=names[0],
        decimal_comma=decimal_comma,
        encoding="utf8-lossy",
    )
    data: str | os.PathLike[str] | bytes = (
        whole if whole is not None else source  # type: ignore[assignment]
    )
    if b"\r" in head and b"\n" not in head:
        # lone-CR line ends (classic Mac): polars splits on LF only
        raw = data if isinstance(data, bytes) else read_bytes(data)
        data = raw.replace(b"\r", b"\n")  # one byte for one: line numbers stay
    frame, warnings = load_table(data, layout, display)
    for pad in columns[len(names) :]:
        filled = frame.get_column(pad).drop_nulls()
        filled = filled.filter(filled.str.strip_chars() != "")
        if filled.len():
            raise ParseError(
                display,
                f"expected {len(names)} fields (the header's), found a value "
                f"{filled[0]!r} in unnamed field {columns.index(pad) + 1}",
                line=_first_overlong_line(data, separator, len(names), header_index + 1),
            )
    stamps, ts_warnings = _timestamps(
        frame.get_column(names[0]), display, header_index + 2, dayfirst
    )
    channels = [_channel(label) for label in names[1:]]
    wide = frame.select(
        stamps.alias(TIMESTAMP),
        # "NaN" parses to a float NaN in polars: a missing value, never a reading
        *[pl.col(c.name).fill_nan(None) for c in channels],
    )
    suspects = [c.name for c in channels if wide.get_column(c.name).is_in(SUSPECT_CODES).any()]
    if suspects and not markers:
        warnings.append(
            f"columns {', '.join(suspects[:5])} hold values of exactly 9999 or -9999; if that "
            "is the export's missing-data code, give missing_markers=['9999', '-9999']"
        )
    extra = dict(preamble.extra)
    extra["encoding"] = encoding
    extra["missing_markers"] = list(layout.null_values)
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            timestamp_is_end_of_period=preamble.end_of_period,
            warnings=tuple(preamble.warnings + warnings + ts_warnings),
            extra=extra,
        ),
        channels=tuple(channels),
        frame=wide,
    )


def _timestamps(
    values: pl.Series, display: str, first_line: int, dayfirst: bool | None
) -> tuple[pl.Series, list[str]]:
    """Windographer writes time labels in the exporting computer's locale."""
    if values.len() and values.str.contains(r"(?i)\d\s*[AP]M\s*$").any():
        formats: tuple[str, ...] = ()
        if dayfirst is not True:
            formats += AMPM_MONTHFIRST
        if dayfirst is not False:
            formats += AMPM_DAYFIRST
        return parse_timestamps(
            values, name=display, first_line=first_line, formats=formats, dayfirst=dayfirst
        )
    return timestamps_quickly(values, name=display, first_line=first_line, dayfirst=dayfirst)


def _first_overlong_line(
    data: str | os.PathLike[str] | bytes, separator: str, width: int, first: int
) -> int | None:
    """The 1-based line of the first data line with a value beyond ``width``."""
    raw = data if isinstance(data, bytes) else read_bytes(data)
    text, _ = decode(raw)
    for number, line in enumerate(split_lines(text)[first:], start=first + 1):
        if any(f.strip() for f in line.split(separator)[width:]):
            return number
    return None


def _check_names(names: list[str], display: str, line: int) -> None:
    seen: dict[str, int] = {}
    for i, col in enumerate(names, start=1):
        if not col:
            raise ParseError(display, f"column {i} of the header has no name", line=line)
        if col in seen:
            raise ParseError(
                display,
                f"duplicate column name {col!r} (columns {seen[col]} and {i}); "
                "every column needs a unique name",
                line=line,
            )
        seen[col] = i


def _parse_preamble(lines: list[str]) -> _Preamble:
    out = _Preamble()
    header: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        created = _CREATED.match(line)
        if created and number == 1:
            out.extra["created"] = created["when"]
            out.extra["created_by"] = created["by"]
            continue
        step = _TIME_STEP.search(line)
        if step:
            word = step[1].lower()
            if word in ("beginning", "start"):
                out.end_of_period = False
            elif word == "end":
                out.end_of_period = True
            else:
                out.warnings.append(f"line {number}: unknown time-step convention {line!r}")
            continue
        kv = _KEY_VALUE.match(line)
        if kv is None:
            header[f"line {number}"] = line
            continue
        key, value = kv["key"], kv["value"]
        header[key] = value
        lowered = key.lower()
        if lowered in ("latitude", "longitude"):
            coordinate = _coordinate(value)
            if coordinate is None:
                out.warnings.append(f"line {number}: unreadable {key} {value!r}")
            else:
                out.extra[lowered] = coordinate
        elif lowered == "elevation":
            elevation = _ELEVATION.match(value)
            if elevation is None:
                out.warnings.append(f"line {number}: unreadable elevation {value!r}")
            else:
                metres = float(elevation["num"])
                if (elevation["unit"] or "m").lower() in ("ft", "feet"):
                    metres *= FEET
                out.extra["elevation_m"] = metres
        elif lowered == "calm threshold":
            out.extra["calm_threshold"] = value
        elif lowered in ("included flags", "excluded flags"):
            out.extra[lowered.replace(" ", "_")] = value
    out.extra["preamble"] = header
    return out


def _coordinate(value: str) -> float | None:
    """``N 53.21`` / ``53.21 N`` / ``-7.12`` -> signed degrees (N, E positive)."""
    match = _COORDINATE.match(value.strip())
    if match is None or (match["pre"] and match["post"]):
        return None
    number = float(match["num"])
    hemisphere = match["pre"] or match["post"]
    if hemisphere in ("S", "W"):
        number = -abs(number)
    return number


def _channel(label: str) -> ChannelInfo:
    """What a Windographer column label says about its measurement."""
    attrs: dict[str, Any] = {}
    text = label.strip()
    clash = _CLASH.search(text)
    if clash:
        attrs["duplicate"] = int(clash["n"])
        text = text[: clash.start()]
    unit = None
    unit_match = _UNIT.search(text)
    if unit_match:
        unit = unit_match["unit"].strip() or None
        text = text[: unit_match.start()].strip()
    statistic: str | None = None
    height: float | None = None
    base = text
    rest = ""
    spaced = text.replace("_", " ").strip()
    if " " in spaced:
        words = spaced.split()
        if len(words) > 1 and words[-1].lower() in STAT_WORDS:
            statistic = STAT_WORDS[words.pop().lower()]
        spaced = " ".join(words)
        found = _SPACED_HEIGHT.search(spaced)
        if found:
            height = float(found[1])
            base, rest = spaced[: found.start()], spaced[found.end() :]
        else:
            base = spaced
    else:
        compact = _COMPACT.match(text)
        if compact:
            base = compact["base"]
            if compact["height"]:
                height = float(compact["height"])
            rest = compact["rest"] or ""
            if compact["stat"]:
                statistic = COMPACT_STATS[compact["stat"]]
        else:
            letters = re.match(r"[A-Za-z]+", text)
            base = letters[0] if letters else text
    rest = rest.strip()
    if rest:
        attrs["orientation" if rest.upper() in COMPASS else "label"] = rest
    measurement = MEASUREMENT_TYPES.get(" ".join(base.lower().split()))
    if measurement is not None:
        attrs["measurement_type"] = measurement
        if statistic is None:
            statistic = "avg"
            attrs["statistic_assumed"] = True
    return ChannelInfo(name=label, statistic=statistic, unit=unit, height_m=height, attrs=attrs)
