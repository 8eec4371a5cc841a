"""NRG Systems LOGR files (LOGR-MET, LOGR-SOLAR): statistics, one-second samples,
diagnostics; event logs are recognised and refused as not readings.

Layout (tab-separated; header keys vary with firmware)::

    NRG Systems Data Logger
    File Created On (UTC):<TAB>2025-06-16T05:00:01Z
    Model Number:<TAB>9458
    Serial Number:<TAB>945800110
    Created FW Version:<TAB>000.07.840      (or FW Version / FTP FW Version / Exported FW Version)
    Site Properties                         Site, Project, Location, Latitude, Longitude,
                                            Elevation, Time Zone (hours: -5)
    File Properties                         File Schema Version, SD Card Free Space (kB),
                                            Statistical Interval (min), File Content, ...
    Sensor History                          records: Channel (firmware 1.02: "Channel<TAB>301"),
                                            Effective Date ("2025-05-08  13:33:14"), Description,
                                            Units, Serial Number, Scale Factor, Offset, Height, ...
    Data
    Timestamp<TAB>Ch1_Avg_deg<TAB>Ch1_Min_deg<TAB>...<TAB>Ch4_NotUsed<TAB>...
    2025-06-16T05:00:00Z<TAB>99.7538<TAB>...

``File Content`` says what the table holds:

* ``Statistics`` -- columns ``Ch<n>_<stat>_<unit>`` with stat Avg, Min, Max,
  SD, Gust, Gust_Dir (a vane's direction at the gust -> ``gust``), Sum,
  Total (-> ``sum``); the unit may hold ``_`` (``deg_C``). ``Ch<n>_NotUsed``
  columns are placeholders (always 0): they are skipped and listed in
  ``meta.skipped_channels``. ``interval_s`` is Statistical Interval (min) x 60.
* ``One Second Samples`` -- ``Ch<n>_Samples_<unit>`` (``sample``); ``interval_s`` 1.
* ``Diagnostics`` (``.diag``) -- the logger's health: supply voltages and
  currents, columns like ``VIN_RP_V_Avg`` or ``COMA EXC_mA_SD`` (names with
  spaces) after ``Stats_Timestamp``. These are read as readings of their own
  (battery and supply trends are what QC and site visits need), statistic
  from the last token and unit (V, mA, ...) from the one before it.
* ``Logs`` (``.log``) -- events ``ISO time, epoch, ACTION, CODE, message``
  (comma+space on 9432 firmware, TAB on 9460): they raise
  :class:`~stationkit.errors.NotReadingsError`.

Each channel's unit is the column name's [as written]; ``height_m`` [m] and
``attrs`` (``channel``, ``scale_factor``, ``offset``, ``serial_number``,
``description``, ``units``, ``effective_date``, ``bearing_deg`` from Boom
Bearing and ``measurement_type`` where firmware 1.01+ writes them, the
current record under ``sensor``, every record under ``history``, the raw
``nrg_statistic``) come
from the Sensor History record with the latest Effective Date. LOGR writes
``Height: 0.00`` where no height was entered; it is kept as 0.0 as written.

Time: timestamps carry a ``Z``: they are UTC instants (``Datetime("us",
"UTC")``), whatever the ``Time Zone`` header says (the site's offset [h],
kept in ``extra["time_zone_hours"]``; ``utc_offset_hours`` is set only if a
file's labels lack the ``Z``). Whether a label is the start or the end of
its interval is not stated by the file and changed with firmware (9432
firmware 1.09 files run hh:00..hh:59, their first statistics row holding the
hh:00:00 one-second sample; LOGR-SOLAR 1.02 files run hh:01..hh+1:00), so
``timestamp_is_end_of_period`` is left unset: the station setting decides.

Missing values: ``nan`` and empty fields. A column whose sampled values are
all text is skipped and listed in ``meta.skipped_channels``; text among
numbers is a bad value (ParseError naming the line). gzip-compressed content
(``.dat.gz``) is read transparently. Also handled: UTF-8 BOM, CRLF/LF/CR,
trailing TABs, a missing final line break, a truncated last line (dropped
with a warning), repeated timestamps (kept, with a warning).
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

FORMAT = "nrg_logr"
PREAMBLE_TITLE = "NRG Systems Data Logger"
#: header keys only LOGR files have (a file without the title still sniffs by them)
LOGR_KEYS = ("File Created On (UTC)", "Model Number")
#: firmware keys, most specific first
FIRMWARE_KEYS = ("Created FW Version", "FW Version", "Exported FW Version", "FTP FW Version")
TIMESTAMP_COLUMNS = ("Timestamp", "Stats_Timestamp")
INTERVAL_KEY = "Statistical Interval (min)"
#: statistic tokens of ``Ch<n>_<stat>_<unit>``, longest first so Gust_Dir wins over Gust
STAT_TOKENS = (
    "Gust_Dir",
    "GustDir",
    "NotUsed",
    "Samples",
    "Sample",
    "Total",
    "Count",
    "Gust",
    "Avg",
    "Min",
    "Max",
    "Sum",
    "SD",
    "TI",
)
NOT_USED = "NotUsed"
#: units that diagnostics columns name before their statistic
DIAG_UNITS = frozenset({"V", "mV", "mA", "A", "W", "C", "degC", "deg_C", "%", "Hz", "kB", "s"})
#: an event line: ISO time, epoch, then the action
EVENT_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T[\d:.]+Z?\s*[,\t]\s*\d+\s*[,\t]\s*[A-Z_]+")
_COLUMN = re.compile(r"^Ch(?P<channel>\d+)_(?P<rest>.+)$")


def sniff(head: bytes) -> bool:
    """True for a LOGR file (plain or gzip-compressed): its preamble title or keys."""
    if head.startswith(nrg_common.GZIP_MAGIC):
        head = nrg_common.gunzip_head(head)
    lines = nrg_common.head_lines(head, 12)
    if not lines:
        return False
    if lines[0].strip() == PREAMBLE_TITLE:
        return True
    keys = {pair[0] for line in lines if (pair := nrg_common.parse_key_value(line))}
    return all(k in keys for k in LOGR_KEYS)


def read_nrg_logr(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a LOGR statistics, one-second or diagnostics file into a :class:`ParseResult`.

    Returns one Float64 channel per data column except ``*_NotUsed`` (listed
    in ``meta.skipped_channels``) after the timestamp [UTC instants]. ``meta``:
    model number, serial, firmware, site name, ``table`` (File Content),
    ``interval_s``, and the whole header in ``extra`` (``preamble``,
    ``site_properties``, ``file_properties``, ``sensor_history``, ...) plus
    ``time_zone_hours``, ``file_created_utc``, ``encoding`` and
    ``compressed``. Event logs raise :class:`NotReadingsError`.
    """
    display = source_name(source, name)
    raw = nrg_common.read_raw(source, display)
    header = nrg_common.parse_header(raw.header_lines, display)
    if header.preamble.title != PREAMBLE_TITLE and header.value(*LOGR_KEYS[:1]) is None:
        raise ParseError(
            display,
            f"expected an NRG LOGR file ({PREAMBLE_TITLE!r} or 'File Created On (UTC)' "
            f"at the top), found {header.preamble.title[:40]!r}",
            line=1,
        )
    content = header.value("File Content") or ""
    if content.casefold().startswith("log") or EVENT_LINE.match(header.first_after_data):
        raise NotReadingsError(display, "NRG event log: holds events, not readings")
    if header.columns_line is None:
        raise ParseError(
            display,
            "expected the column header line after 'Data', found the end of the file",
            line=header.data_line,
        )
    columns = header.columns
    if columns[0].strip() not in TIMESTAMP_COLUMNS:
        raise ParseError(
            display,
            f"expected {' or '.join(map(repr, TIMESTAMP_COLUMNS))} as the first column, "
            f"found {columns[0][:40]!r}",
            line=header.columns_line,
        )
    unique_names(columns, display, line=header.columns_line)  # duplicates are an error
    sensors = nrg_common.sensor_records(header.section("Sensor History"))
    diagnostics = "diag" in content.casefold() or columns[0].strip() == "Stats_Timestamp"
    text = nrg_common.text_columns(nrg_common.sample_rows(raw, len(columns)), columns)
    channels: list[ChannelInfo] = []
    skipped: list[str] = []
    for col in columns[1:]:
        if not col:
            continue  # a trailing TAB on the column line
        info = (
            None if col in text else _diag_channel(col) if diagnostics else _channel(col, sensors)
        )
        if info is None:
            skipped.append(col)
        else:
            channels.append(info)
    frame, warnings = nrg_common.load_data(
        raw, header, frozenset(c.name for c in channels), display
    )
    first_line = header.columns_line + 1
    stamps, ts_warnings = parse_timestamps(
        frame.get_column(columns[0]), name=display, first_line=first_line
    )
    wide = frame.select(stamps.alias(TIMESTAMP), *[pl.col(c.name) for c in channels])
    warnings += ts_warnings
    warnings += nrg_common.duplicate_warnings(stamps, first_line)
    return ParseResult(
        meta=_meta(header, raw, content, stamps, skipped, warnings),
        channels=tuple(channels),
        frame=wide,
    )


def split_column(name: str) -> tuple[int, str, str | None] | None:
    """``(channel, statistic token, unit)`` of ``Ch12_Gust_Dir_Deg``; None if not that shape."""
    match = _COLUMN.match(name)
    if match is None:
        return None
    rest = match.group("rest")
    for token in STAT_TOKENS:
        if rest == token:
            return int(match.group("channel")), token, None
        if rest.startswith(token + "_"):
            return int(match.group("channel")), token, rest[len(token) + 1 :] or None
    return None


def _channel(column: str, sensors: nrg_common.SensorRecords) -> ChannelInfo | None:
    parts = split_column(column)
    if parts is None:
        return ChannelInfo(name=column)
    channel, token, unit = parts
    if token == NOT_USED:
        return None
    attrs: dict[str, Any] = {"channel": channel}
    attrs.update(nrg_common.sensor_attrs(sensors.for_channel(channel)))
    attrs["nrg_statistic"] = token
    return ChannelInfo(
        name=column,
        statistic=nrg_common.statistic_for(token),
        unit=unit or attrs.get("units") or None,
        height_m=attrs.get("height_m"),
        attrs=attrs,
    )


def _diag_channel(column: str) -> ChannelInfo:
    tokens = column.split("_")
    statistic = nrg_common.statistic_for(tokens[-1]) if len(tokens) > 1 else None
    unit = tokens[-2] if statistic and len(tokens) > 2 and tokens[-2] in DIAG_UNITS else None
    attrs = {"nrg_statistic": tokens[-1]} if statistic else {}
    return ChannelInfo(name=column, statistic=statistic, unit=unit, attrs=attrs)


def _meta(
    header: nrg_common.Header,
    raw: nrg_common.RawFile,
    content: str,
    stamps: pl.Series,
    skipped: list[str],
    warnings: list[str],
) -> FileMeta:
    zone_text = header.value("Time Zone")
    zone = nrg_common.parse_utc_offset(zone_text)
    aware = isinstance(stamps.dtype, pl.Datetime) and stamps.dtype.time_zone is not None
    if "second" in content.casefold():
        interval: float | None = 1.0
    else:
        stated = header.value(INTERVAL_KEY)
        interval = nrg_common.parse_interval(INTERVAL_KEY, stated) if stated else None
    firmware = header.value(*FIRMWARE_KEYS)
    extra = header.as_extra()
    extra.update(
        {
            "file_content": content or None,
            "time_zone_hours": zone,
            "file_created_utc": header.value("File Created On (UTC)"),
            "encoding": raw.encoding,
            "compressed": raw.compressed,
        }
    )
    return FileMeta(
        format=FORMAT,
        logger_model=header.value("Model Number") or None,
        logger_serial=header.value("Serial Number") or None,
        logger_os=firmware or None,
        table=content or None,
        station_name=header.value("Site") or None,
        interval_s=interval,
        utc_offset_hours=None if aware else zone,
        timestamp_is_end_of_period=None,
        skipped_channels=tuple(skipped),
        warnings=tuple(warnings),
        extra=extra,
    )
