"""Campbell Scientific CSIXML files (LoggerNet XML table output).

Layout::

    <?xml version="1.0"?>
    <csixml version="1.0">
      <head>
        <environment>
          <station-name>..</station-name> <table-name>..</table-name> <model>..</model>
          <serial-no>..</serial-no> <os-version>..</os-version>
          <dld-name>..</dld-name> <dld-sig>..</dld-sig>
        </environment>
        <fields>
          <field name="panel_temp" process="Smp" type="xsd:float" units="&#176;C" />
          ...
        </fields>
      </head>
      <data>
        <r no="0" time="2020-03-08 19:35:00"><v1>26.86</v1><v2>12.94</v2>...</r>
        ...
      </data>
    </csixml>

Format rules this reader relies on:

* ``<vN>`` is the value of the N-th ``<field>`` (1-based); a missing ``<vN>``
  or an empty one is null, as are ``NAN``, ``INF`` and ``-INF``, bare or
  quoted (``&quot;NAN&quot;``).
* ``type`` says what a field holds: ``xsd:string`` and ``xsd:dateTime``
  (TMx/TMn time-of-extreme) fields are text, skipped and listed in
  ``meta.skipped_channels``; every other type (float, double, int, long,
  short, byte, unsigned, boolean) is numeric. Booleans written ``true`` /
  ``false`` read as -1 / 0, as Campbell's TOA5 writes them.
* ``units`` (entity-encoded, ``&#176;C``) and ``process`` are optional
  attributes; ``process`` maps to the statistic through
  :func:`stationkit.parsers.campbell.statistic_for`.
* ``time`` is a logger-clock label, ``2020-03-08 19:35:00`` or
  ``2020-03-08T19:35:00`` (fractions of seconds allowed); by Campbell's
  default the END of the interval, which the file does not state, so
  ``timestamp_is_end_of_period`` is None. ``no`` is the record number and is
  not stored.
* Rows may be separated by blank lines and indentation; CRLF or LF.
* Structure: ``<fields>`` before one ``<data>``, every ``<r>`` directly in
  ``<data>``; records out of place are an error naming the record and line.
  A document cut short (a file fetched while being written) is malformed
  XML: it is refused, and its complete next version is read.

Reading: LoggerNet writes one ``<r>`` per line with every ``<v1>..<vN>`` in
order. Such a data section is matched line by line with one strict pattern
(vectorised, no per-element Python work); a document that deviates in any way
(missing or self-closed values, attributes in single quotes, entities,
several rows on a line) is read by ``xml.etree.ElementTree.iterparse``
instead, which never builds the whole tree. Both give the same result.
Document type declarations are refused (``<!DOCTYPE`` / ``<!ENTITY``):
CSIXML never has them, and entity definitions are how a hostile XML file
expands to gigabytes. UTF-16/32 documents are refused (CSIXML is UTF-8).
"""

from __future__ import annotations

import contextlib
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from xml.parsers import expat

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers import campbell
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import read_bytes, source_name
from stationkit.parsers.toaci1 import timestamps_quickly

FORMAT = "csixml"
ROOT = "csixml"
MISSING_MARKERS = ("", "NAN", "NaN", "nan", "INF", "-INF", "+INF", "inf", "-inf")
#: field types whose values are text, never readings
TEXT_TYPES = frozenset({"xsd:string", "xsd:dateTime", "xsd:date", "xsd:time"})
BOOLEANS = {"true": "-1", "false": "0"}
FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
DATA_OPEN, DATA_CLOSE = b"<data>", b"</data>"
#: a regular row: <r no=".." time=".."> then <v1>..</v1> ... <vN>..</vN> </r>
_ROW_OPEN = r'^<r(?: no="\d*")? time="(?P<time>[^"<&]*)"(?: no="\d*")?>'
_ROW_CLOSE = r"</r>$"
_TAIL = re.compile(rb"\s*</csixml>\s*")

#: finds the file line of a record from its 0-based index (error messages only)
_Locate = Callable[[int], int | None]


def sniff(head: bytes) -> bool:
    """True when the document's root element is ``<csixml``."""
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<?xml"):
        end = head.find(b"?>")
        if end < 0:
            return False
        head = head[end + 2 :].lstrip()
    return head.startswith(b"<csixml")


def read_csixml(source: Source, *, name: str | None = None) -> ParseResult:
    """Read a CSIXML file into a :class:`ParseResult`.

    Returns one Float64 channel per numeric ``<field>`` with ``unit`` from
    ``units`` and ``statistic`` from ``process``; ``meta`` carries station,
    table, logger model, serial, OS, program (without ``CPU:``) and, in
    ``extra``, the program signature and the csixml version.
    """
    display = source_name(source, name)
    data = read_bytes(source)
    _refuse_declarations(data, display)
    fast = _read_regular(data, display)
    if fast is not None:
        return fast
    return _read_stream(data, display)


def _refuse_declarations(data: bytes, display: str) -> None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4]:
        raise ParseError(display, "expected a UTF-8 or ASCII CSIXML document, found UTF-16/32")
    for marker in FORBIDDEN:
        pos = data.find(marker)
        if pos >= 0:
            raise ParseError(
                display,
                f"refusing an XML document with a {marker.decode()} declaration "
                "(CSIXML never has one; entity definitions can expand without bound)",
                line=data.count(b"\n", 0, pos) + 1,
            )


def _read_stream(data: bytes, display: str) -> ParseResult:
    """Any well-formed CSIXML, element by element (iterparse, rows dropped as read)."""
    reader = _Reader(display, lambda row: _record_line(data, row))
    try:
        for event, elem in ET.iterparse(io.BytesIO(data), events=("start", "end")):
            reader.handle(event, elem)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise ParseError(display, f"malformed XML ({_reason(exc)})", line=line) from None
    if not reader.seen_root:
        raise ParseError(display, "expected a <csixml> document, found no elements")
    if not reader.seen_fields:
        raise ParseError(display, "expected a <fields> list in <head>, found none")
    times = pl.Series("time", reader.times, dtype=pl.String)
    columns = reader.values or [[] for _ in reader.fields]  # no <data> element: no rows
    values = [pl.Series(f"v{i + 1}", column, dtype=pl.String) for i, column in enumerate(columns)]
    return reader.result(times, values, lambda row: _record_line(data, row))


def _read_regular(data: bytes, display: str) -> ParseResult | None:
    """The usual LoggerNet layout, matched with one pattern per line; None if
    the document deviates from it anywhere (the stream reader takes over)."""
    start = data.find(DATA_OPEN)
    end = data.rfind(DATA_CLOSE)
    if start < 0 or end < start or _TAIL.fullmatch(data[end + len(DATA_CLOSE) :]) is None:
        return None
    reader = _Reader(display)
    try:
        head = io.BytesIO(data[:start] + b"<data/></csixml>")
        for event, elem in ET.iterparse(head, events=("start", "end")):
            reader.handle(event, elem)
    except (ET.ParseError, ParseError):
        return None
    if not reader.seen_fields or not reader.fields:
        return None
    width = len(reader.fields)
    pattern = (
        _ROW_OPEN
        + "".join(f"<v{i}>(?P<v{i}>[^<&]*)</v{i}>" for i in range(1, width + 1))
        + _ROW_CLOSE
    )
    section = data[start + len(DATA_OPEN) : end].decode("utf-8", errors="replace")
    lines = (
        pl.Series("line", [section], dtype=pl.String)
        .str.split("\n")
        .explode()
        .str.strip_chars()
        .to_frame()
        .with_row_index("index")
        .filter(pl.col("line") != "")
    )
    groups = lines.get_column("line").str.extract_groups(pattern)
    if groups.struct.field("time").null_count():
        return None  # some line is not a complete, regular <r> row
    first_line = data.count(b"\n", 0, start + len(DATA_OPEN)) + 1
    line_of = lines.get_column("index")
    times = groups.struct.field("time")
    values = [groups.struct.field(f"v{i}") for i in range(1, width + 1)]
    return reader.result(times, values, lambda row: first_line + int(line_of[row]))


class _Reader:
    """Collects the head and the rows from iterparse events.

    The structure is checked as the events come: ``<fields>`` (in ``<head>``)
    before one ``<data>``, and every ``<r>`` directly inside ``<data>``.
    Anything else (records out of place, a second data section) is a
    ParseError naming the record and, with ``locate``, its line.
    """

    def __init__(self, display: str, locate: _Locate | None = None) -> None:
        self.display = display
        self.locate = locate
        self.seen_root = False
        self.seen_fields = False
        self.version: str | None = None
        self.environment: dict[str, str] = {}
        self.fields: list[dict[str, str]] = []
        self.times: list[str | None] = []
        self.values: list[list[str | None]] = []
        self.max_index = 0
        self._data: ET.Element | None = None
        self._data_done = False
        self._in_environment = False
        self._stack: list[str] = []
        self._records = 0  # every <r> start, in or out of place (for line numbers)

    def _error(self, reason: str, record: int | None = None) -> ParseError:
        line = self.locate(record) if self.locate is not None and record is not None else None
        return ParseError(self.display, reason, line=line)

    def handle(self, event: str, elem: ET.Element) -> None:
        tag = elem.tag
        if event == "start":
            self._start(tag, elem)
            return
        self._stack.pop()
        if tag == "r":
            self._row(elem)
            elem.clear()
            if self._data is not None:
                self._data.remove(elem)  # keep memory flat: the row is consumed
        elif tag == "field":
            self.fields.append(dict(elem.attrib))
        elif tag == "fields":
            self.seen_fields = True
        elif tag == "data":
            self._data_done = True
        elif tag == "environment":
            self._in_environment = False
        elif self._in_environment:
            self.environment[tag] = (elem.text or "").strip()

    def _start(self, tag: str, elem: ET.Element) -> None:
        parent = self._stack[-1] if self._stack else None
        self._stack.append(tag)
        if not self.seen_root:
            if tag != ROOT:
                raise ParseError(
                    self.display, f"expected a <csixml> root element, found <{tag}>", line=1
                )
            self.seen_root = True
            self.version = elem.get("version")
        elif tag == "r":
            record = self._records
            self._records += 1
            if parent != "data" or self._data_done:
                raise self._error(
                    f"record {record + 1}: expected <r> records inside <data>, "
                    f"found one inside <{parent}>",
                    record,
                )
        elif tag == "data":
            if self._data is not None:
                raise ParseError(self.display, "expected one <data> element, found a second")
            if not self.seen_fields:
                raise ParseError(
                    self.display, "expected the <fields> list (in <head>) before <data>"
                )
            self._data = elem
            self.values = [[] for _ in self.fields]
        elif tag == "field" and self._data is not None:
            raise ParseError(self.display, "expected every <field> before <data>, found one after")
        elif tag == "environment":
            self._in_environment = True

    def _row(self, elem: ET.Element) -> None:
        row = len(self.times)
        self.times.append(elem.get("time"))
        for column in self.values:
            column.append(None)
        for child in elem:
            tag = child.tag
            index = int(tag[1:]) if tag[:1] == "v" and tag[1:].isdigit() else 0
            if not 1 <= index <= len(self.fields):
                raise self._error(
                    f"record {row + 1}: expected value elements <v1>..<v{len(self.fields)}>, "
                    f"found <{tag}>",
                    row,
                )
            self.values[index - 1][row] = child.text

    def result(self, times: pl.Series, values: list[pl.Series], locate: _Locate) -> ParseResult:
        """The ParseResult from row times and per-field value text (String)."""
        names = [f.get("name", "") for f in self.fields]
        _check_names(names, self.display)
        channels: list[ChannelInfo] = []
        skipped: list[str] = []
        columns: list[pl.Series] = []
        for i, spec in enumerate(self.fields):
            field_type = spec.get("type", "").strip()
            if field_type in TEXT_TYPES or spec.get("process", "").strip() in (
                campbell.TIME_PROCESSING
            ):
                skipped.append(names[i])
                continue
            attrs = {"type": field_type} if field_type else {}
            channels.append(
                ChannelInfo(
                    name=names[i],
                    statistic=campbell.statistic_for(spec.get("process", ""), names[i]),
                    unit=spec.get("units", "").strip() or None,
                    attrs=attrs,
                )
            )
            columns.append(self._numbers(values[i], i, names[i], field_type, locate))
        if times.null_count():
            row = int(times.is_null().arg_max() or 0)
            raise ParseError(
                self.display,
                f"record {row + 1}: expected a time attribute on <r>, found none",
                line=locate(row),
            )
        try:
            stamps, warnings = timestamps_quickly(times, name=self.display, first_line=0)
        except ParseError as exc:
            row = exc.line or 0
            raise ParseError(self.display, exc.reason, line=locate(row)) from None
        if warnings:  # the parser counts from record 0: name its line instead
            warnings = [w.replace("line 0:", f"line {locate(0)}:", 1) for w in warnings]
        frame = pl.DataFrame([stamps.alias(TIMESTAMP), *columns])
        env = self.environment

        def value(tag: str) -> str | None:
            return env.get(tag) or None

        program = value("dld-name")
        if program and program.startswith("CPU:"):
            program = program[4:]
        return ParseResult(
            meta=FileMeta(
                format=FORMAT,
                station_name=value("station-name"),
                table=value("table-name"),
                logger_model=value("model"),
                logger_serial=value("serial-no"),
                logger_os=value("os-version"),
                program=program,
                skipped_channels=tuple(skipped),
                warnings=tuple(warnings),
                extra={
                    "program_signature": value("dld-sig"),
                    "csixml_version": self.version,
                    "record_attribute": "no",
                },
            ),
            channels=tuple(channels),
            frame=frame,
        )

    def _numbers(
        self, raw: pl.Series, i: int, name: str, field_type: str, locate: _Locate
    ) -> pl.Series:
        text = raw.str.strip_chars()
        if field_type == "xsd:boolean":
            text = text.replace(BOOLEANS)
        # a marker may come quoted (<v1>&quot;NAN&quot;</v1>): still missing
        unquoted = text.str.strip_prefix('"').str.strip_suffix('"').str.strip_chars()
        quoted = text.str.starts_with('"') & text.str.ends_with('"') & (text.str.len_chars() > 1)
        missing = (
            text.is_null()
            | text.is_in(MISSING_MARKERS)
            | (quoted & unquoted.is_in(MISSING_MARKERS))
        )
        numbers = text.cast(pl.Float64, strict=False)
        bad = numbers.is_null() & ~missing
        if bad.any():
            row = int(bad.arg_max() or 0)
            raise ParseError(
                self.display,
                f"field {name!r} (<v{i + 1}>): expected a number, found {raw[row]!r}",
                line=locate(row),
            )
        return (
            pl.select(pl.when(missing).then(None).otherwise(numbers.fill_nan(None)))
            .to_series()
            .alias(name)
        )


def _check_names(names: list[str], display: str) -> None:
    seen: dict[str, int] = {}
    for i, col in enumerate(names, start=1):
        if not col.strip():
            raise ParseError(display, f"<field> {i} has no name attribute")
        if col in seen:
            raise ParseError(
                display,
                f"duplicate field name {col!r} (fields {seen[col]} and {i}); "
                "every field needs a unique name",
            )
        seen[col] = i


def _reason(exc: ET.ParseError) -> str:
    text = str(exc)
    return text.split(":", 1)[0] if ": line" in text else text


def _record_line(data: bytes, row: int) -> int | None:
    """The line where the ``row``-th ``<r>`` (0-based) starts; slow, errors only."""
    parser = expat.ParserCreate()
    found: list[int] = []
    count = [0]

    def on_start(tag: str, _attrs: dict[str, str]) -> None:
        if tag == "r":
            if count[0] == row and not found:
                found.append(parser.CurrentLineNumber)
            count[0] += 1

    parser.StartElementHandler = on_start
    with contextlib.suppress(expat.ExpatError):  # the caller reports the real problem
        parser.Parse(data, True)
    return found[0] if found else None
