"""IEA Wind Task 43 WRA data model documents (schema versions 1.x), offline.

Two kinds of document load:

* the WRA data model (``measurement_location`` ...) into
  :class:`~stationkit.calibrate.metadata.StationMetadata` by :func:`load_iea43`;
* a digital calibration certificate (``calibration_id``, ``result`` with a
  ``linear_regression``) into a
  :class:`~stationkit.calibrate.metadata.Calibration` by
  :func:`load_calibration_certificate` (stations.toml sensors name one with
  ``certificate = "..."``).

What is read from the data model::

    measurement_location[]            the one named like the station (or the only one)
      logger_main_config[]            offset_from_utc_hrs, timestamp_is_end_of_period,
      (model_config[])                averaging_period_minutes, date_from, date_to
      measurement_point[]             name, measurement_type_id, height_m
        logger_measurement_config[]   slope, offset, measurement_units_id, date_from, date_to,
          column_name[]               column_name, statistic_type_id, is_ignored
        sensor[]                      serial_number, model, date_from, date_to,
          calibration[]               slope, offset, measurement_type_id, date_of_calibration
        mounting_arrangement[]        boom_orientation_deg

Nothing is ever downloaded: the document is checked here, by the keys and
types this module uses, with errors that name the JSON path, e.g.
``M001.json: measurement_location[0].measurement_point[3].logger_measurement_config[0].slope:
expected a number, got "x"``. Other keys are allowed (the model has many).
Dates may carry a zone; the standard requires it to be the logger's, so it is
dropped and the wall-clock time kept (periods are compared in logger time).

Points are identified as the standard allows: by name, or by name and height
where several points share a name (an ADCP with one point per depth bin:
``WtrSpd@-12.5m``), or by position among those still alike
(:func:`~stationkit.calibrate.metadata.identify_points`). The clock settings
are resolved with the station's in :mod:`stationkit.clock`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from stationkit.calibrate.metadata import (
    Calibration,
    ColumnMap,
    LoggerConfig,
    LoggerTime,
    Point,
    Sensor,
    StationMetadata,
    identify_points,
    validate_metadata,
)
from stationkit.errors import ConfigError
from stationkit.tomltable import show_value

VERSION = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{1,2})-(\d{4})\.(\d{2})$")
SUPPORTED_MAJOR = 1


class _Doc:
    """Typed access to a decoded JSON document; errors name file and JSON path."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.name}: {path}: {message}")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_json_show(value)}")
        return value

    def items(self, parent: dict[str, Any], key: str, path: str, *, required: bool) -> list[Any]:
        value = parent.get(key)
        where = _join(path, key)
        if value is None:
            if required:
                raise self.fail(where, "missing; expected a list")
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {_json_show(value)}")
        return value

    def text(self, parent: dict[str, Any], key: str, path: str, *, required: bool) -> str | None:
        value = parent.get(key)
        where = _join(path, key)
        if value is None:
            if required:
                raise self.fail(where, "missing; expected a string")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(where, f"expected a non-empty string, got {_json_show(value)}")
        return value

    def number(
        self, parent: dict[str, Any], key: str, path: str, *, nonzero: bool = False
    ) -> float | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(_join(path, key), f"expected a number, got {_json_show(value)}")
        if nonzero and value == 0:
            raise self.fail(_join(path, key), "expected a number other than 0")
        return float(value)

    def boolean(self, parent: dict[str, Any], key: str, path: str) -> bool | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(_join(path, key), f"expected true or false, got {_json_show(value)}")
        return value

    def when(self, parent: dict[str, Any], key: str, path: str) -> datetime | None:
        value = parent.get(key)
        if value is None:
            return None
        where = _join(path, key)
        if not isinstance(value, str):
            raise self.fail(where, f"expected a date-time string, got {_json_show(value)}")
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise self.fail(
                where, f"expected an ISO 8601 date-time like 2020-04-12T12:00:00, got {value!r}"
            ) from None
        return parsed.replace(tzinfo=None)

    def day(self, parent: dict[str, Any], key: str, path: str) -> date | None:
        value = parent.get(key)
        if value is None:
            return None
        where = _join(path, key)
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()[:10])
            except ValueError:
                pass
        raise self.fail(where, f"expected a date like 2019-12-06, got {_json_show(value)}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    return show_value(value)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such metadata document") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def _decode(raw: bytes, name: str) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: expected UTF-8 JSON") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{name}: invalid JSON: {exc}") from None


def _read(path: Path) -> tuple[Any, str]:
    return _decode(_read_bytes(path), path.name), path.name


def _version(doc: _Doc, data: dict[str, Any], what: str) -> str:
    version = data.get("version")
    if version is None:
        raise doc.fail("version", f"missing; expected the {what} version, e.g. 1.3.0-2024.03")
    m = VERSION.match(version) if isinstance(version, str) else None
    if m is None:
        raise doc.fail(
            "version", f"expected a version like 1.3.0-2024.03, got {_json_show(version)}"
        )
    if int(m.group(1)) != SUPPORTED_MAJOR:
        raise doc.fail(
            "version", f"version {version} is not supported; stationkit reads {what} 1.x documents"
        )
    return str(version)


def is_certificate(data: Any) -> bool:
    """True for a digital calibration certificate rather than a WRA data model."""
    return (
        isinstance(data, dict)
        and "measurement_location" not in data
        and ("calibration_id" in data or "result" in data)
    )


# ---------------------------------------------------------------- certificate


def parse_calibration_certificate(data: Any, *, name: str) -> Calibration:
    """A decoded calibration certificate: slope and offset of its linear regression."""
    doc = _Doc(name)
    top = doc.obj(data, "(document)")
    _version(doc, top, "calibration certificate")
    result = doc.obj(top.get("result"), "result")
    fit = doc.obj(result.get("linear_regression"), "result.linear_regression")
    values: dict[str, float] = {}
    for key in ("slope", "offset"):
        path = f"result.linear_regression.{key}"
        entry = doc.obj(fit.get(key), path)
        value = doc.number(entry, "value", path)
        if value is None:
            raise doc.fail(f"{path}.value", "missing; expected a number")
        values[key] = value
    if values["slope"] == 0:
        raise doc.fail("result.linear_regression.slope.value", "expected a number other than 0")
    setup = top.get("setup")
    when = doc.day(doc.obj(setup, "setup"), "date_of_calibration", "setup") if setup else None
    return Calibration(
        slope=values["slope"],
        offset=values["offset"],
        date_of_calibration=when,
        where=f"{name}: result.linear_regression",
    )


def load_calibration_certificate(path: str | Path) -> Calibration:
    """Load an IEA Task 43 digital calibration certificate (JSON)."""
    data, name = _read(Path(path))
    return parse_calibration_certificate(data, name=name)


# ---------------------------------------------------------------- data model


def _choose_location(
    doc: _Doc, locations: list[Any], wanted: Sequence[str | None]
) -> tuple[int, dict[str, Any]]:
    objs = [doc.obj(loc, f"measurement_location[{i}]") for i, loc in enumerate(locations)]
    if len(objs) == 1:
        return 0, objs[0]
    for candidate in wanted:
        if candidate is None:
            continue
        for i, loc in enumerate(objs):
            if loc.get("name") == candidate:
                return i, loc
    names = ", ".join(repr(loc.get("name")) for loc in objs)
    raise doc.fail(
        "measurement_location",
        f"{len(objs)} locations ({names}); give the station the name of one of them "
        f"(stations.toml: name = ...) so stationkit knows which describes it",
    )


def _time(doc: _Doc, loc: dict[str, Any], path: str) -> tuple[LoggerTime, ...]:
    out: list[LoggerTime] = []
    for key in ("logger_main_config", "model_config"):
        for j, raw in enumerate(doc.items(loc, key, path, required=False)):
            p = f"{path}.{key}[{j}]"
            cfg = doc.obj(raw, p)
            out.append(
                LoggerTime(
                    utc_offset_hours=doc.number(cfg, "offset_from_utc_hrs", p),
                    timestamp_is_end_of_period=doc.boolean(cfg, "timestamp_is_end_of_period", p),
                    averaging_period_minutes=doc.number(cfg, "averaging_period_minutes", p),
                    date_from=doc.when(cfg, "date_from", p),
                    date_to=doc.when(cfg, "date_to", p),
                    where=f"{doc.name}: {p}",
                )
            )
    return tuple(out)


def _logger_config(doc: _Doc, raw: Any, path: str) -> LoggerConfig:
    cfg = doc.obj(raw, path)
    columns: list[ColumnMap] = []
    for k, col_raw in enumerate(doc.items(cfg, "column_name", path, required=True)):
        p = f"{path}.column_name[{k}]"
        col = doc.obj(col_raw, p)
        column = doc.text(col, "column_name", p, required=True)
        statistic = doc.text(col, "statistic_type_id", p, required=True)
        assert column is not None and statistic is not None
        columns.append(
            ColumnMap(column, statistic, ignored=bool(doc.boolean(col, "is_ignored", p)))
        )
    return LoggerConfig(
        columns=tuple(columns),
        date_from=doc.when(cfg, "date_from", path),
        date_to=doc.when(cfg, "date_to", path),
        slope=doc.number(cfg, "slope", path, nonzero=True),
        offset=doc.number(cfg, "offset", path),
        unit=doc.text(cfg, "measurement_units_id", path, required=False),
        where=f"{doc.name}: {path}",
    )


def _sensor(doc: _Doc, raw: Any, path: str) -> Sensor:
    s = doc.obj(raw, path)
    cals: list[Calibration] = []
    for k, cal_raw in enumerate(doc.items(s, "calibration", path, required=False)):
        p = f"{path}.calibration[{k}]"
        cal = doc.obj(cal_raw, p)
        cals.append(
            Calibration(
                slope=doc.number(cal, "slope", p, nonzero=True),
                offset=doc.number(cal, "offset", p),
                date_of_calibration=doc.day(cal, "date_of_calibration", p),
                measurement_type=doc.text(cal, "measurement_type_id", p, required=False),
                where=f"{doc.name}: {p}",
            )
        )
    serial = s.get("serial_number")
    return Sensor(
        calibrations=tuple(cals),
        date_from=doc.when(s, "date_from", path),
        date_to=doc.when(s, "date_to", path),
        serial_number=str(serial) if serial is not None else None,
        model=doc.text(s, "model", path, required=False),
        where=f"{doc.name}: {path}",
    )


def _point(doc: _Doc, raw: Any, path: str) -> Point:
    mp = doc.obj(raw, path)
    name = doc.text(mp, "name", path, required=True)
    mtype = doc.text(mp, "measurement_type_id", path, required=True)
    assert name is not None
    configs = tuple(
        _logger_config(doc, lc, f"{path}.logger_measurement_config[{j}]")
        for j, lc in enumerate(doc.items(mp, "logger_measurement_config", path, required=True))
    )
    sensors = tuple(
        _sensor(doc, s, f"{path}.sensor[{j}]")
        for j, s in enumerate(doc.items(mp, "sensor", path, required=False))
    )
    orientation: float | None = None
    for j, ma in enumerate(doc.items(mp, "mounting_arrangement", path, required=False)):
        p = f"{path}.mounting_arrangement[{j}]"
        orientation = doc.number(doc.obj(ma, p), "boom_orientation_deg", p)
        if orientation is not None:
            break
    if orientation is None:
        for j, lc in enumerate(doc.items(mp, "logger_measurement_config", path, required=True)):
            p = f"{path}.logger_measurement_config[{j}]"
            orientation = doc.number(lc, "logger_stated_boom_orientation_deg", p)
            if orientation is not None:
                break
    return Point(
        name=name,
        measurement_type=mtype,
        height_m=doc.number(mp, "height_m", path),
        orientation_deg=orientation,
        logger_configs=configs,
        sensors=sensors,
        where=f"{doc.name}: {path}",
    )


def parse_iea43(
    data: Any, *, name: str, location: Sequence[str | None] | str | None = None
) -> StationMetadata:
    """A decoded WRA data model document as station metadata (validated).

    ``location`` names the measurement location to use (or several candidate
    names, tried in order: the station's name, then its id); a document with
    one location needs none.
    """
    doc = _Doc(name)
    if is_certificate(data):
        raise ConfigError(
            f"{name}: this is a calibration certificate, not a WRA data model document; "
            f"name it from a sensor in stations.toml (certificate = ...) instead"
        )
    top = doc.obj(data, "(document)")
    _version(doc, top, "IEA Task 43 WRA data model")
    locations = doc.items(top, "measurement_location", "", required=True)
    if not locations:
        raise doc.fail("measurement_location", "expected at least one measurement location")
    wanted: Sequence[str | None] = (location,) if isinstance(location, str) else (location or ())
    index, loc = _choose_location(doc, locations, wanted)
    path = f"measurement_location[{index}]"
    points = identify_points(
        [
            _point(doc, mp, f"{path}.measurement_point[{j}]")
            for j, mp in enumerate(doc.items(loc, "measurement_point", path, required=True))
        ]
    )
    meta = StationMetadata(points=points, time=_time(doc, loc, path), sources=(name,))
    validate_metadata(meta)
    return meta


def load_iea43(
    path: str | Path, *, location: Sequence[str | None] | str | None = None
) -> StationMetadata:
    """Load an IEA Task 43 WRA data model document (JSON, version 1.x).

    The parse and calibrate stages of one run both need it: the result is cached
    by the document's bytes, so an edited document is always read anew.
    """
    p = Path(path)
    key = tuple(location) if location is not None and not isinstance(location, str) else location
    return _parse_cached(_read_bytes(p), p.name, key)


@lru_cache(maxsize=64)
def _parse_cached(
    raw: bytes, name: str, location: tuple[str | None, ...] | str | None
) -> StationMetadata:
    return parse_iea43(_decode(raw, name), name=name, location=location)


def load_document(path: str | Path) -> StationMetadata | Calibration:
    """Either kind of IEA Task 43 document, recognised by its content."""
    data, name = _read(Path(path))
    if is_certificate(data):
        return parse_calibration_certificate(data, name=name)
    return parse_iea43(data, name=name)
