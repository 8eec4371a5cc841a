"""Column labels for exports, in the style Windographer recognises on import.

One column per (point, statistic) of lake/clean. A label is built from the
point's IEA Task 43 ``measurement_type``, its height and the statistic::

    WS 80m N Mean    WS 80m N SD    WS 80m S Max    WD 78m Mean    T 2m Mean

* Type code: :data:`TYPE_CODES` (``WS`` wind speed, ``WD`` wind direction,
  ``T`` air temperature, ``RH``, ``P`` ...). Points of another or no
  measurement type are labelled with the point name itself.
* Height: ``80m`` [m], shortest decimal (``2.5m``); left out when unknown.
* Qualifier: only when two points share type code and height as written
  (an unknown or negative height is left out, so such points of one type
  always clash). It is the boom orientation read from the end of the point
  name (``Spd80mN``, ``WS_80m_N`` -> ``N``) when every such point has a
  distinct one, else the point name. Point names are unique per station
  (IEA points sharing a name are qualified by height,
  :func:`stationkit.calibrate.metadata.identify_points`), so every label
  names one point.
* Statistic word: :data:`STAT_WORDS` (``Mean``, ``SD``, ``Min``, ``Max``,
  ``Gust``, ``TI``, ...); left out when the statistic is unknown.

Labels never contain tabs, line breaks or other control characters, and are
unique within an export (a clash left after the rules above gets `` #2``,
`` #3``). Columns come in a fixed order: known types in :data:`TYPE_CODES`
order, other types, untyped points; higher sensors first; then point name
and statistic. stationkit's Windographer reader
(:func:`stationkit.parsers.windographer.read_windographer`) reads these labels
back to the same measurement type, height and statistic.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

#: IEA Task 43 measurement_type_id -> label code (order = column order)
TYPE_CODES = {
    "wind_speed": "WS",
    "wind_direction": "WD",
    "vertical_wind_speed": "VSpd",
    "air_temperature": "T",
    "relative_humidity": "RH",
    "air_pressure": "P",
    "air_density": "Density",
    "global_horizontal_irradiance": "GHI",
    "precipitation": "Prcp",
    "voltage": "Batt",
}
#: DESIGN statistic -> label word (order = column order within a point)
STAT_WORDS = {
    "avg": "Mean",
    "sd": "SD",
    "min": "Min",
    "max": "Max",
    "gust": "Gust",
    "ti": "TI",
    "median": "Median",
    "sum": "Sum",
    "count": "Count",
    "vector_avg": "VecMean",
    "range": "Range",
    "sample": "Sample",
}
_COMPASS = "NNE|ENE|ESE|SSE|SSW|WSW|WNW|NNW|NE|SE|SW|NW|N|E|S|W"
#: a boom orientation at the end of a point name: after a non-letter, or
#: straight after a height (``Spd80mN``)
_ORIENTATION = re.compile(rf"(?:(?<=\d[mM])|(?<![A-Za-z]))({_COMPASS})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Column:
    """One export column: a (point, statistic) of lake/clean and its label."""

    point: str
    statistic: str | None
    measurement_type: str | None
    height_m: float | None
    label: str


def clean_text(text: str) -> str:
    """``text`` without control characters (tabs, line breaks), spaces collapsed."""
    return " ".join(_CONTROL.sub(" ", text).split()) or "?"


def format_number(value: float) -> str:
    """Shortest decimal that reads back as ``value``, without a trailing ``.0``."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def orientation(point: str) -> str | None:
    """The boom orientation a point name ends with (``Spd80mN`` -> ``N``), if any."""
    m = _ORIENTATION.search(point.strip())
    return m.group(1) if m else None


def stat_word(statistic: str | None) -> str | None:
    if statistic is None:
        return None
    return STAT_WORDS.get(statistic, clean_text(statistic).replace(" ", "_").capitalize())


def _type_rank(measurement_type: str | None) -> tuple[int, str]:
    if measurement_type in TYPE_CODES:
        return list(TYPE_CODES).index(measurement_type), ""
    if measurement_type is not None:
        return len(TYPE_CODES), measurement_type
    return len(TYPE_CODES) + 1, ""


def _stat_rank(statistic: str | None) -> tuple[int, str]:
    if statistic is None:
        return -1, ""
    if statistic in STAT_WORDS:
        return list(STAT_WORDS).index(statistic), ""
    return len(STAT_WORDS), statistic


def _sort_key(key: tuple[str, str | None, str | None, float | None]) -> tuple[object, ...]:
    point, statistic, mtype, height = key
    return (
        _type_rank(mtype),
        0 if height is not None else 1,
        -(height or 0.0),
        point,
        _stat_rank(statistic),
    )


def _height_text(height: float | None) -> str | None:
    """``80m``; None when unknown or below the datum (the label leaves it out)."""
    return f"{format_number(height)}m" if height is not None and height >= 0 else None


def make_columns(
    keys: Iterable[tuple[str, str | None, str | None, float | None]],
) -> list[Column]:
    """Label and order the columns of an export.

    ``keys`` are (point, statistic, measurement_type, height_m) tuples, one
    per (point, statistic). Returns one :class:`Column` per key, in export
    order, with unique labels.
    """
    ordered = sorted(dict.fromkeys(keys), key=_sort_key)
    # points per (type code, height as written): qualifiers only where they would clash
    groups: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for point, _stat, mtype, height in ordered:
        if mtype in TYPE_CODES:
            groups[(TYPE_CODES[mtype], _height_text(height))].add(point)
    qualifier: dict[str, str | None] = {}
    for members in groups.values():
        if len(members) == 1:
            qualifier.update(dict.fromkeys(members))
            continue
        found = {p: orientation(p) for p in members}
        distinct = len(set(found.values())) == len(members) and None not in found.values()
        for p in members:
            qualifier[p] = found[p] if distinct else clean_text(p)
    columns: list[Column] = []
    seen: dict[str, int] = {}
    for point, statistic, mtype, height in ordered:
        parts: list[str | None]
        if mtype in TYPE_CODES:
            parts = [TYPE_CODES[mtype], _height_text(height), qualifier.get(point)]
        else:
            parts = [clean_text(point)]
        parts.append(stat_word(statistic))
        label = " ".join(p for p in parts if p)
        if label in seen:
            seen[label] += 1
            label = f"{label} #{seen[label]}"
        seen.setdefault(label, 1)
        columns.append(Column(point, statistic, mtype, height, label))
    return columns


def type_name(measurement_type: str | None) -> str:
    """File-name part for one measurement type (``wind_speed``; ``other`` when unknown)."""
    if not measurement_type:
        return "other"
    return re.sub(r"[^A-Za-z0-9_-]+", "_", measurement_type).strip("_") or "other"
