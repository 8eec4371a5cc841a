"""NRG Systems SymphoniePRO text exports (``*_meas.txt``).

SymphoniePRO loggers write encrypted binary ``.rld`` files; NRG's
SymphoniePRO Desktop Application, the NRG Export Service and NRG Cloud turn
them into this tab-separated text. Two dialects, read alike:

* NRG Export Service / NRG Cloud: first line ``NRG Export Service``, blank
  lines between sections;
* SymphoniePRO Desktop Application: section titles end in a TAB and there
  are no blank lines between sections (a repeated key starts a new record).

Layout::

    NRG Export Service
    Export version:<TAB>3
    Export Parameters                    Site Number, Data Type, Start/End Date, ...
    Site Properties                      Site Description, Project, Location, Latitude,
                                         Longitude, Elevation, Time Zone (UTC-5:00), Site Units
    Logger History                       records: Date, Model, Serial Number, Firmware
    iPack History                        records: Date, Model, Serial Number, Firmware
    Sensor History                       records: Channel, Effective Date, Type, Description,
                                         Serial Number, Height, Bearing, Scale Factor, Offset,
                                         Units, ... (one record per channel and change)
    Data
    Timestamp<TAB>Ch2_Anem_85.00m_S_Avg_m/s<TAB>...
    2022-03-17 00:00:00<TAB>0.139000<TAB>...

Column names are ``Ch<channel>_<type>_<height>m_<bearing>_<statistic>_<unit>``
(``Ch3_Anem_10.00m__Avg_m/s``: no bearing; ``Ch4_Anem___Avg_m/s``: neither
height nor bearing; ``Ch42_ModbusRTU_1.00m_S_Avg_``: no unit). The bearing
is a compass point (``SSE``); the numbers are in Sensor History. Statistic
tokens: Avg, SD, Min, Max, Gust, GustDir (the vane's direction at the gust,
mapped to ``gust``), Sum (totalizers), Sample.

Each channel's ``ChannelInfo`` carries the unit [as written in the column
name, else Sensor History ``Units``], ``height_m`` [m] of its current
sensor (the Sensor History record with the latest Effective Date; else the
column name's height), and in ``attrs``: ``channel``, ``scale_factor``,
``offset``, ``serial_number``, ``height_m``, ``bearing_deg`` [deg],
``description``, ``sensor_type``, ``units``, ``effective_date``, the
current record under ``sensor``, every record under ``history``, the column
name's ``type``, ``bearing_label`` and raw ``nrg_statistic``.

Time: labels are logger-clock local time (naive) and mark the START of the
averaging interval (``timestamp_is_end_of_period=False``); ``Time Zone``
(``UTC-5:00``) gives ``utc_offset_hours`` (-5). An interval is taken only
from a header key that states one; the exports in the field state none.

Missing values are empty fields (and ``nan``). ``-1000.000000`` is written
by some channels (a Modbus sensor that did not answer writes -1000 as Avg,
Min and Max with SD 0): NRG documents no such marker for the text export,
so the value is kept as logged -- a null would hide that the logger wrote
it -- and a warning names the column; QC range rules flag it. Export
(``Data Type``) files of events or communications hold no readings and
raise :class:`~stationkit.errors.NotReadingsError`.

NRG data columns are numbers; a column whose values (sampled from the start
and the end of the data) are all text is skipped and listed in
``meta.skipped_channels``; text among numbers is a bad value (ParseError).

Quirks handled: UTF-8 BOM or UTF-16, CRLF/LF/CR, a missing final line
break, a truncated last line (dropped with a warning), trailing TABs,
Latin-1 units, repeated timestamps (kept, with a warning).
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from stationkit.errors import NotReadingsError, ParseError
from stationkit.parsers import nrg_common
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import source_name
from stationkit.parsers.table import unique_names
from stationkit.parsers.timeparse import parse_timestamps

FORMAT = "nrg_symphonie"
#: first lines of the known export tools
PREAMBLE_TITLES = ("NRG Export Service", "SymphoniePRO Desktop", "NRG Cloud")
#: the section every SymphoniePRO export has and LOGR files never have
EXPORT_PARAMETERS = "Export Parameters"
TIMESTAMP_COLUMN = "Timestamp"
#: NRG labels SymphoniePRO intervals by their start
TIMESTAMP_IS_END_OF_PERIOD = False
#: ``Data Type`` values that are not readings
NOT_READINGS = re.compile(r"event|comm", re.IGNORECASE)
#: ``Ch2_Anem_85.00m_S_Avg_m/s``
COLUMN = re.compile(
    r"^Ch(?P<channel>\d+)_(?P<type>[^_]*)_(?P<height>[^_]*)_(?P<bearing>[^_]*)_"
    r"(?P<stat>[A-Za-z]+)_(?P<unit>.*)$"
)
_HEIGHT = re.compile(r"^(?P<value>[-+]?\d+(?:\.\d*)?)\s*m$")


def sniff(head: bytes) -> bool:
    """True for a SymphoniePRO text export: an ``Export Parameters`` section near the top."""
    lines = nrg_common.head_lines(head)
    if not lines:
        return False
    stripped = [line.strip() for line in lines]
    if EXPORT_PARAMETERS in stripped and any(s.startswith("Site Number") for s in stripped):
        return True
    return stripped[0].startswith(PREAMBLE_TITLES) and EXPORT_PARAMETERS in stripped


def read_nrg_symphonie(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a SymphoniePRO text export into a :class:`ParseResult`.

    Returns one Float64 channel per data column (the column name exactly as
    written) after ``Timestamp`` [naive local labels, interval start].
    ``meta``: logger model, serial and firmware from the latest Logger
    History record, station name (Site Description), ``table`` (Data Type),
    ``utc_offset_hours`` from Time Zone, and the whole header in ``extra``
    (``export_parameters``, ``site_properties``, ``logger_history``,
    ``ipack_history``, ``sensor_history``, ``preamble``) plus ``site_number``,
    ``time_zone``, ``dialect`` and ``encoding``.
    """
    display = source_name(source, name)
    raw = nrg_common.read_raw(source, display)
    header = nrg_common.parse_header(raw.header_lines, display)
    if header.section(EXPORT_PARAMETERS) is None:
        raise ParseError(
            display,
            f"expected an NRG SymphoniePRO text export (an '{EXPORT_PARAMETERS}' section "
            "before 'Data'), found none",
            line=1,
        )
    data_type = header.value("Data Type")
    if data_type and NOT_READINGS.search(data_type):
        raise NotReadingsError(
            display, f"NRG SymphoniePRO {data_type} export: holds events, not readings"
        )
    if header.columns_line is None:
        raise ParseError(
            display,
            "expected the column header line after 'Data', found the end of the file",
            line=header.data_line,
        )
    columns = header.columns
    if columns[0].strip().casefold() != TIMESTAMP_COLUMN.casefold():
        raise ParseError(
            display,
            f"expected {TIMESTAMP_COLUMN!r} as the first column, found {columns[0][:40]!r}",
            line=header.columns_line,
        )
    unique_names(columns, display, line=header.columns_line)  # duplicates are an error
    sensors = nrg_common.sensor_records(header.section("Sensor History"))
    text = nrg_common.text_columns(nrg_common.sample_rows(raw, len(columns)), columns)
    skipped = [col for col in columns[1:] if col in text]
    channels = [_channel(col, sensors) for col in columns[1:] if col and col not in text]
    numeric = frozenset(c.name for c in channels)
    frame, warnings = nrg_common.load_data(raw, header, numeric, display)
    first_line = header.columns_line + 1
    stamps, ts_warnings = parse_timestamps(
        frame.get_column(columns[0]), name=display, first_line=first_line
    )
    wide = frame.select(stamps.alias(TIMESTAMP), *[pl.col(c.name) for c in channels])
    warnings += ts_warnings
    warnings += nrg_common.duplicate_warnings(stamps, first_line)
    warnings += nrg_common.minus_thousand_warnings(wide, [c.name for c in channels], first_line)
    return ParseResult(
        meta=_meta(header, raw, skipped, warnings),
        channels=tuple(channels),
        frame=wide,
    )


def _channel(column: str, sensors: nrg_common.SensorRecords) -> ChannelInfo:
    match = COLUMN.match(column)
    if match is None:
        return ChannelInfo(name=column)
    channel = int(match.group("channel"))
    attrs: dict[str, Any] = {"channel": channel}
    attrs.update(nrg_common.sensor_attrs(sensors.for_channel(channel)))
    if match.group("type"):
        attrs["type"] = match.group("type")
    if match.group("bearing"):
        attrs["bearing_label"] = match.group("bearing")
    attrs["nrg_statistic"] = match.group("stat")
    height = attrs.get("height_m")
    if height is None:
        found = _HEIGHT.match(match.group("height").strip())
        height = float(found.group("value")) if found else None
    unit = match.group("unit").strip() or attrs.get("units") or None
    return ChannelInfo(
        name=column,
        statistic=nrg_common.statistic_for(match.group("stat")),
        unit=unit,
        height_m=height,
        attrs=attrs,
    )


def _meta(
    header: nrg_common.Header, raw: nrg_common.RawFile, skipped: list[str], warnings: list[str]
) -> FileMeta:
    logger = _latest(header, "Logger History")
    time_zone = header.value("Time Zone")
    offset = nrg_common.parse_utc_offset(time_zone)
    if time_zone and offset is None:
        warnings.append(f"Time Zone {time_zone!r} is not a UTC offset; utc_offset_hours left unset")
    interval = None
    for section in header.sections:
        if nrg_common.is_history(section.title):
            continue
        for key, value in section.merged().items():
            if "interval" in key.casefold() and interval is None:
                interval = nrg_common.parse_interval(key, value)
    extra = header.as_extra()
    preamble_title = header.preamble.title
    extra.update(
        {
            "dialect": "desktop" if preamble_title.startswith("SymphoniePRO") else "export_service",
            "site_number": header.value("Site Number"),
            "time_zone": time_zone,
            "encoding": raw.encoding,
        }
    )
    if raw.compressed:
        extra["compressed"] = raw.compressed
    return FileMeta(
        format=FORMAT,
        logger_model=logger.get("Model") or None,
        logger_serial=logger.get("Serial Number") or None,
        logger_os=logger.get("Firmware") or None,
        table=header.value("Data Type") or None,
        station_name=header.value("Site Description") or None,
        interval_s=interval,
        utc_offset_hours=offset,
        timestamp_is_end_of_period=TIMESTAMP_IS_END_OF_PERIOD,
        skipped_channels=tuple(skipped),
        warnings=tuple(warnings),
        extra=extra,
    )


def _latest(header: nrg_common.Header, title: str) -> dict[str, str]:
    """The record of a history section with the latest ``Date`` (else the last)."""
    section = header.section(title)
    if section is None or not section.records:
        return {}
    best = section.records[-1]
    best_date = None
    for record in section.records:
        date = nrg_common.date_key(record.get("Date", ""))
        if date is not None and (best_date is None or date >= best_date):
            best, best_date = record, date
    return best
