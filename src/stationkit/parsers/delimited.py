"""Configurable reader for delimited text from loggers without a named format.

A station whose logger writes a table stationkit does not know yet is read by
describing the file in ``stations.toml``::

    [stations.M001.reader]
    format = "delimited"                # optional; the only accepted value
    delimiter = ";"                     # ",", ";", "\\t", " " or "whitespace" (runs of blanks)
    decimal = ","                       # "." or ","
    header_row = 3                      # 1-based line with the column names; 0 = none
    units_row = 4                       # optional line with units
    timestamp_column = "Date and Time"  # or date_column + time_column,
                                        # or year_column + doy_column + hhmm_column
    dayfirst = true
    missing = ["9999", "-9999"]         # whole fields only
    statistics = [["_Avg$", "avg"], ["_SD$", "sd"]]
    height_regex = '(\\d+(?:\\.\\d+)?)m'

:class:`DelimitedOptions` holds these settings; :meth:`DelimitedOptions.from_mapping`
validates the TOML table and names the key path in every error. This format
is chosen by configuration, never sniffed: :func:`sniff` is always False.

Layout and conventions:

* Row numbers (``header_row``, ``units_row``, ``first_data_row``) count the
  physical lines of the file from 1, blank and comment lines included. The
  data start at ``first_data_row``, by default the line after the header and
  units rows plus ``skip_rows`` lines (a processing line, say).
* Columns are referred to by name (as the header has it, without surrounding
  blanks) or by 1-based position (an integer).
* Time labels are the logger's. With ``timestamp_format`` None the layout is
  detected by :func:`stationkit.parsers.timeparse.parse_timestamps` (ISO,
  slashes, dots, day-first or month-first, zone suffixes); a format is a
  polars/chrono strptime string (``%Y-%m-%d %H:%M:%S``; ``%.f`` for optional
  fractions). A date and a time column are joined with one blank (each is
  trimmed first). Year/day-of-year/HHMM columns (Campbell mixed arrays) give
  ``year + (doy - 1) days + HH h + MM min``; two-digit years are 20xx and
  ``2400`` is midnight of the next day. Labels are naive (logger clock) unless
  every value carries a zone. ``utc_offset_hours`` and
  ``timestamp_is_end_of_period`` are copied to the file metadata when set.
* Units come from ``units_row`` when there is one, as written; a ``[unit]`` is
  never guessed from column names.
* Missing: an empty field, and every field that equals one of ``missing``
  exactly (after trimming blanks): ``-9999`` never touches ``1019.9999``.
  ``NaN`` and infinities are never readings and become null too.
* Numeric columns (every non-missing value in the first MiB and the last
  64 KiB of data is a number) become Float64 channels named as the column;
  other columns are text, listed in ``meta.skipped_channels``. A later value
  in a numeric column that is not a number is an error naming its line (add it
  to ``missing`` if it is a marker). Columns matching ``ignore_columns`` are
  neither read nor listed as skipped; unnamed columns (trailing delimiters)
  are padding.
* ``statistics`` rules map column names onto DESIGN's statistics: the first
  regex that matches (``re.search``) wins. ``height_regex`` takes the height
  [m] from its first capture group.

Quirks handled: UTF-8 with or without BOM, UTF-16 with BOM, Latin-1 /
Windows-1252 (auto-detected, or ``encoding``), CRLF, LF and lone-CR line
ends, a missing final line break, a truncated last line (dropped with a
warning), blank lines, comment lines (``comment_prefix``), padded fields,
exact duplicate rows (kept: the pipeline deduplicates).
"""

from __future__ import annotations

import codecs
import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import polars as pl

from stationkit.errors import ConfigError, ParseError
from stationkit.parsers.base import (
    STATISTICS,
    TIMESTAMP,
    ChannelInfo,
    FileMeta,
    ParseResult,
    Source,
)
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.table import TableLayout, load_table, split_fields
from stationkit.parsers.timeparse import (
    DAYFIRST_FORMATS,
    ISO_FORMATS,
    MONTHFIRST_FORMATS,
    parse_timestamps,
)

FORMAT = "delimited"
#: accepted field delimiters; "whitespace" means runs of blanks and tabs
DELIMITERS = (",", ";", "\t", " ", "whitespace")
DECIMALS = (".", ",")
WHITESPACE = "whitespace"
#: how much of the file start and end is read to tell text columns from numeric
SAMPLE_BYTES = 1 << 20
TAIL_BYTES = 1 << 16
#: separator the data block is rewritten with when the delimiter is "whitespace"
_NORMALISED_SEP = "\t"
#: sane bounds for a logger clock offset [h]
_MAX_OFFSET_H = 14.0

#: a column named in the file, or its 1-based position
ColumnRef = str | int

_TIMESTAMP_KEYS = (
    "timestamp_column",
    "date_column",
    "time_column",
    "year_column",
    "doy_column",
    "hhmm_column",
)


def sniff(head: bytes) -> bool:
    """Always False: this format is chosen in stations.toml, never sniffed."""
    return False


@dataclass(frozen=True)
class DelimitedOptions:
    """How to read one logger's delimited text (see the module docstring).

    Exactly one timestamp form may be given: ``timestamp_column``;
    ``date_column`` with ``time_column``; or ``year_column``, ``doy_column``
    and ``hhmm_column``. With none, the first column holds the timestamp.
    """

    delimiter: str = ","
    decimal: str = "."
    quote_char: str | None = '"'
    #: None: detect (BOM, then UTF-8, Windows-1252, Latin-1)
    encoding: str | None = None
    #: 1-based line holding the column names; 0 = no header, ``columns`` names them
    header_row: int = 1
    units_row: int | None = None
    #: lines to skip after the header and units rows before the data
    skip_rows: int = 0
    #: 1-based line of the first data row (instead of ``skip_rows``)
    first_data_row: int | None = None
    columns: tuple[str, ...] = ()
    timestamp_column: ColumnRef | None = None
    date_column: ColumnRef | None = None
    time_column: ColumnRef | None = None
    year_column: ColumnRef | None = None
    doy_column: ColumnRef | None = None
    hhmm_column: ColumnRef | None = None
    timestamp_format: str | None = None
    dayfirst: bool | None = None
    utc_offset_hours: float | None = None
    timestamp_is_end_of_period: bool | None = None
    #: whole-field missing markers (an empty field is always missing)
    missing: tuple[str, ...] = ()
    comment_prefix: str | None = None
    #: ordered (regex, statistic) rules applied to column names
    statistics: tuple[tuple[str, str], ...] = ()
    #: regex whose first group is the height [m] in a column name
    height_regex: str | None = None
    #: regexes of columns not to read at all
    ignore_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _validate({f.name: getattr(self, f.name) for f in fields(self)}, "DelimitedOptions")

    @property
    def data_row(self) -> int:
        """1-based line of the first data row."""
        if self.first_data_row is not None:
            return self.first_data_row
        return max(self.header_row, self.units_row or 0) + 1 + self.skip_rows

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], key_path: str) -> DelimitedOptions:
        """Validate a ``stations.toml`` table; errors name ``key_path.<key>``."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{key_path}: expected a table, got {mapping!r}")
        valid = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in mapping.items():
            path = f"{key_path}.{key}"
            if key == "format":
                if raw != FORMAT:
                    raise ConfigError(f"{path}: expected {FORMAT!r}, got {raw!r}")
                continue
            if key not in valid:
                raise ConfigError(
                    f"{path}: unknown key; valid keys: {', '.join(['format', *sorted(valid)])}"
                )
            values[key] = _CONVERTERS.get(key, _identity)(raw, path)
        defaults = {f.name: f.default for f in fields(cls)}
        _validate({**defaults, **values}, key_path)
        return cls(**values)


# --- option conversion and validation -------------------------------------------------


def _identity(value: Any, path: str) -> Any:
    return value


def _optional_str(value: Any, path: str) -> str | None:
    if not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    return value or None


def _str_list(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: expected a list of strings, got {value!r}")
    return tuple(value)


def _rules(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list of [regex, statistic] pairs, got {value!r}")
    out = []
    for i, pair in enumerate(value):
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(v, str) for v in pair)
        ):
            raise ConfigError(f"{path}[{i}]: expected a [regex, statistic] pair, got {pair!r}")
        out.append((pair[0], pair[1]))
    return tuple(out)


_CONVERTERS: dict[str, Callable[[Any, str], Any]] = {
    "quote_char": _optional_str,
    "encoding": _optional_str,
    "comment_prefix": _optional_str,
    "timestamp_format": _optional_str,
    "height_regex": _optional_str,
    "columns": _str_list,
    "missing": _str_list,
    "ignore_columns": _str_list,
    "statistics": _rules,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_regex(pattern: Any, path: str, groups: int = 0) -> None:
    if not isinstance(pattern, str):
        raise ConfigError(f"{path}: expected a regular expression string, got {pattern!r}")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"{path}: expected a valid regular expression, got {pattern!r} ({exc})"
        ) from None
    if compiled.groups < groups:
        raise ConfigError(
            f"{path}: expected a regular expression with a capture group for the "
            f"height, got {pattern!r}"
        )


def _check_int(values: Mapping[str, Any], key: str, kp: str, minimum: int) -> None:
    value = values[key]
    if value is None and key in ("units_row", "first_data_row"):
        return
    if not _is_int(value) or value < minimum:
        raise ConfigError(f"{kp}.{key}: expected an integer >= {minimum}, got {value!r}")


def _validate(values: Mapping[str, Any], kp: str) -> None:
    """Check every option; raise ConfigError naming ``kp.<key>``."""
    if values["delimiter"] not in DELIMITERS:
        raise ConfigError(
            f"{kp}.delimiter: expected one of {', '.join(repr(d) for d in DELIMITERS)}, "
            f"got {values['delimiter']!r}"
        )
    if values["decimal"] not in DECIMALS:
        raise ConfigError(
            f"{kp}.decimal: expected one of {', '.join(repr(d) for d in DECIMALS)}, "
            f"got {values['decimal']!r}"
        )
    if values["decimal"] == "," and values["delimiter"] == ",":
        raise ConfigError(
            f"{kp}.decimal: expected '.' when the delimiter is ',' "
            "(a comma cannot separate both fields and decimals)"
        )
    quote = values["quote_char"]
    if quote is not None and (not isinstance(quote, str) or len(quote) != 1):
        raise ConfigError(f"{kp}.quote_char: expected one character or '', got {quote!r}")
    if quote is not None and quote == values["delimiter"]:
        raise ConfigError(f"{kp}.quote_char: expected a character other than the delimiter")
    enc = values["encoding"]
    if enc is not None:
        try:
            if not isinstance(enc, str):
                raise LookupError
            codecs.lookup(enc)
        except LookupError:
            raise ConfigError(
                f"{kp}.encoding: expected a codec name like 'utf-8', 'latin-1', 'cp1252', "
                f"got {enc!r}"
            ) from None
    _check_int(values, "header_row", kp, 0)
    _check_int(values, "units_row", kp, 1)
    _check_int(values, "skip_rows", kp, 0)
    _check_int(values, "first_data_row", kp, 1)
    header, units = values["header_row"], values["units_row"]
    if units is not None and units == header:
        raise ConfigError(f"{kp}.units_row: expected a line other than header_row ({header})")
    first = values["first_data_row"]
    if first is not None:
        if values["skip_rows"]:
            raise ConfigError(f"{kp}.first_data_row: give either first_data_row or skip_rows")
        last_header = max(header, units or 0)
        if first <= last_header:
            raise ConfigError(
                f"{kp}.first_data_row: expected a line after the header lines "
                f"(> {last_header}), got {first}"
            )
    columns = values["columns"]
    if not isinstance(columns, tuple) or not all(isinstance(c, str) for c in columns):
        raise ConfigError(f"{kp}.columns: expected a list of strings, got {columns!r}")
    if header == 0 and not columns:
        raise ConfigError(f"{kp}.columns: expected the column names when header_row = 0")
    if header != 0 and columns:
        raise ConfigError(
            f"{kp}.columns: only used when header_row = 0 (the header names the columns)"
        )
    named = [c.strip() for c in columns]
    if any(not c for c in named) or len(set(named)) != len(named):
        raise ConfigError(f"{kp}.columns: expected unique, non-empty names, got {columns!r}")
    _validate_time(values, kp)
    for key in ("missing", "ignore_columns"):
        if not isinstance(values[key], tuple) or not all(isinstance(v, str) for v in values[key]):
            raise ConfigError(f"{kp}.{key}: expected a list of strings, got {values[key]!r}")
    for i, pattern in enumerate(values["ignore_columns"]):
        _check_regex(pattern, f"{kp}.ignore_columns[{i}]")
    prefix = values["comment_prefix"]
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        raise ConfigError(f"{kp}.comment_prefix: expected a non-empty string, got {prefix!r}")
    rules = values["statistics"]
    if not isinstance(rules, tuple):
        raise ConfigError(f"{kp}.statistics: expected a list of [regex, statistic] pairs")
    for i, rule in enumerate(rules):
        if not isinstance(rule, tuple) or len(rule) != 2:
            raise ConfigError(f"{kp}.statistics[{i}]: expected a [regex, statistic] pair")
        _check_regex(rule[0], f"{kp}.statistics[{i}]")
        if rule[1] not in STATISTICS:
            raise ConfigError(
                f"{kp}.statistics[{i}]: expected a statistic, one of "
                f"{', '.join(sorted(STATISTICS))}, got {rule[1]!r}"
            )
    if values["height_regex"] is not None:
        _check_regex(values["height_regex"], f"{kp}.height_regex", groups=1)


def _validate_time(values: Mapping[str, Any], kp: str) -> None:
    for key in _TIMESTAMP_KEYS:
        ref = values[key]
        if ref is None:
            continue
        if isinstance(ref, str) and ref.strip():
            continue
        if _is_int(ref) and ref >= 1:
            continue
        raise ConfigError(
            f"{kp}.{key}: expected a column name or a 1-based column number, got {ref!r}"
        )
    given = {k for k in _TIMESTAMP_KEYS if values[k] is not None}
    forms = (
        {"timestamp_column"},
        {"date_column", "time_column"},
        {"year_column", "doy_column", "hhmm_column"},
    )
    if given and given not in forms:
        raise ConfigError(
            f"{kp}: expected one timestamp form: timestamp_column; date_column + time_column; "
            f"or year_column + doy_column + hhmm_column; got {', '.join(sorted(given))}"
        )
    fmt = values["timestamp_format"]
    if fmt is not None:
        if not isinstance(fmt, str) or "%" not in fmt:
            raise ConfigError(
                f"{kp}.timestamp_format: expected a strptime format like "
                f"'%Y-%m-%d %H:%M:%S', got {fmt!r}"
            )
        if "year_column" in given:
            raise ConfigError(
                f"{kp}.timestamp_format: not used with year_column/doy_column/hhmm_column"
            )
    for key in ("dayfirst", "timestamp_is_end_of_period"):
        if values[key] is not None and not isinstance(values[key], bool):
            raise ConfigError(f"{kp}.{key}: expected true or false, got {values[key]!r}")
    offset = values["utc_offset_hours"]
    if offset is not None and (
        isinstance(offset, bool)
        or not isinstance(offset, (int, float))
        or not -_MAX_OFFSET_H <= offset <= _MAX_OFFSET_H
    ):
        raise ConfigError(
            f"{kp}.utc_offset_hours: expected a number from -14 to 14 [h], got {offset!r}"
        )


# --- reading --------------------------------------------------------------------------


def read_delimited(
    source: Source, *, name: str | None = None, options: DelimitedOptions
) -> ParseResult:
    """Read a delimited logger table described by ``options``.

    Returns one Float64 channel per numeric column (named exactly as the
    column; ``statistic`` from the ``statistics`` rules, ``height_m`` [m] from
    ``height_regex``, ``unit`` from ``units_row``) and a ``timestamp`` column
    of logger labels. ``meta.extra`` holds the encoding, delimiter, the data's
    first line and the ignored columns.
    """
    display = source_name(source, name)
    raw = _Raw.open(source)
    encoding, head_text = _decode_head(raw, options, display)
    lines = split_lines(head_text)
    first_line = _first_data_line(lines, options)
    cols = _columns(lines, _tail_lines(raw, encoding), raw.ends_with_break, options, display)
    sep = _NORMALISED_SEP if options.delimiter == WHITESPACE else options.delimiter
    markers = tuple(dict.fromkeys(options.missing))
    data = _prepare_data(raw, options, encoding, lines, first_line)
    layout = TableLayout(
        columns=[n if n else f"__empty{i}" for i, n in enumerate(cols.names)],
        numeric=frozenset() if cols.padded else frozenset(cols.numeric),
        first_data_line=first_line,
        separator=sep,
        quote_char=None if options.delimiter == WHITESPACE else options.quote_char,
        null_values=markers,
        decimal_comma=options.decimal == ",",
        required=cols.time[0],
        encoding="utf8-lossy",
    )
    frame, warnings = load_table(data, layout, display)
    # a header-only file without a final line break is not a data problem
    warnings = [w for w in warnings if _warning_line(w) >= first_line]
    rows = _RowLines(data, first_line, options.comment_prefix, sep)
    numeric = cols.numeric
    if cols.padded:
        frame = _cast_padded(frame, numeric, markers, options.decimal == ",", rows, display)
    values = [
        pl.when(pl.col(n).is_finite()).then(pl.col(n)).otherwise(None).alias(n) for n in numeric
    ]
    stamps, ts_warnings = _timestamps(frame, options, cols.time, rows, display)
    wide = frame.select(stamps.alias(TIMESTAMP), *values)

    channels = tuple(
        _channel(n, cols.units[cols.names.index(n)], options.statistics, options.height_regex)
        for n in numeric
    )
    extra: dict[str, Any] = {
        "encoding": encoding,
        "delimiter": options.delimiter,
        "first_data_line": first_line,
    }
    if cols.ignored:
        extra["ignored_columns"] = tuple(cols.ignored)
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            utc_offset_hours=options.utc_offset_hours,
            timestamp_is_end_of_period=options.timestamp_is_end_of_period,
            skipped_channels=cols.text,
            warnings=tuple(cols.warnings + warnings + ts_warnings),
            extra=extra,
        ),
        channels=channels,
        frame=wide,
    )


def _warning_line(warning: str) -> int:
    match = re.match(r"line (\d+):", warning)
    return int(match.group(1)) if match else 1 << 62


def _first_data_line(lines: list[str], options: DelimitedOptions) -> int:
    """The configured data start, moved past blank and comment lines: polars
    takes the column count from the first row it reads."""
    line = options.data_row
    prefix = options.comment_prefix
    while line <= len(lines) and (
        not lines[line - 1].strip() or (prefix is not None and lines[line - 1].startswith(prefix))
    ):
        line += 1
    return line


@dataclass(frozen=True)
class _Columns:
    """What the header and the sampled data say about the columns."""

    #: every column in file order; "" for unnamed padding columns
    names: list[str]
    units: list[str]
    #: the timestamp column(s)
    time: list[str]
    ignored: list[str]
    numeric: list[str]
    text: tuple[str, ...]
    #: numeric fields padded with blanks: loaded as text, trimmed, then cast
    padded: bool
    warnings: list[str]


def _columns(
    lines: list[str],
    tail_lines: list[str],
    complete: bool,
    options: DelimitedOptions,
    display: str,
) -> _Columns:
    header, units_row = options.header_row, options.units_row
    if header > len(lines) or (units_row or 0) > len(lines):
        raise ParseError(
            display,
            f"expected the header on line {max(header, units_row or 0)}, "
            f"but the file has {len(lines)} lines",
        )
    if header:
        names = [h.strip() for h in _split(lines[header - 1], options)]
    else:
        names = [c.strip() for c in options.columns]
    _check_names(names, display, header)
    sample = _sample_rows(
        lines[_first_data_line(lines, options) - 1 :] + tail_lines, options, complete
    )
    width = max((len(f) for f in sample), default=len(names))
    if width > len(names) and all(not v.strip() for f in sample for v in f[len(names) :]):
        # a delimiter after the last field of every data row (not of the header)
        names += [""] * (width - len(names))
    units = _split(lines[units_row - 1], options) if units_row else []
    units = [u.strip() for u in (units + [""] * len(names))[: len(names)]]
    time = _time_columns(options, names, display)
    ignore = [re.compile(p) for p in options.ignore_columns]
    ignored = [n for n in names if n and n not in time and any(p.search(n) for p in ignore)]
    candidates = [n for n in names if n and n not in time and n not in ignored]
    text, padded = _classify(sample, names, candidates, options)
    unnamed = [
        f"line {header}: column {i + 1} has no name; its values are not read"
        for i, n in enumerate(names)
        if not n and any(i < len(f) and f[i].strip() for f in sample)
    ]
    return _Columns(
        warnings=unnamed,
        names=names,
        units=units,
        time=time,
        ignored=ignored,
        numeric=[n for n in candidates if n not in text],
        text=tuple(n for n in candidates if n in text),
        padded=padded,
    )


@dataclass(frozen=True)
class _Raw:
    """The bytes of the source: a path (read lazily) or the whole content."""

    path: str | os.PathLike[str] | None
    whole: bytes | None
    head: bytes
    tail: bytes
    size: int

    @classmethod
    def open(cls, source: Source) -> _Raw:
        if isinstance(source, (str, os.PathLike)):
            size = os.path.getsize(source)
            if size <= SAMPLE_BYTES + TAIL_BYTES:
                whole = read_bytes(source)
                return cls(source, whole, whole, b"", size)
            with open(source, "rb") as fh:
                head = fh.read(SAMPLE_BYTES)
                fh.seek(max(SAMPLE_BYTES, size - TAIL_BYTES))
                tail = fh.read()
            return cls(source, None, head, tail, size)
        whole = read_bytes(source)
        head = whole[:SAMPLE_BYTES]
        tail = (
            whole[max(SAMPLE_BYTES, len(whole) - TAIL_BYTES) :]
            if len(whole) > SAMPLE_BYTES
            else b""
        )
        return cls(None, whole, head, tail, len(whole))

    def content(self) -> bytes:
        if self.whole is not None:
            return self.whole
        assert self.path is not None
        return read_bytes(self.path)

    @property
    def complete(self) -> bool:
        return not self.tail

    @property
    def ends_with_break(self) -> bool:
        last = self.tail or self.head
        return not last or last.endswith((b"\n", b"\r"))

    @property
    def bom(self) -> bytes:
        for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            if self.head.startswith(bom):
                return bom
        return b""


def _decode_head(raw: _Raw, options: DelimitedOptions, display: str) -> tuple[str, str]:
    """(encoding, text of the head's complete lines)."""
    head = raw.head
    if not raw.complete:
        cut = max(head.rfind(b"\n"), head.rfind(b"\r"))
        head = head[: cut + 1] if cut >= 0 else head
    if options.encoding is None:
        text, encoding = decode(head)
        return encoding, text
    encoding = options.encoding
    if codecs.lookup(encoding).name == "utf-8" and head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    try:
        return encoding, head.decode(encoding)
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(b"\n") + 1
        raise ParseError(
            display,
            f"expected text in {encoding!r}, found byte {head[exc.start]:#04x}; "
            "set encoding to the logger's code page (e.g. 'cp1252', 'latin-1')",
            line=line,
        ) from None


def _ascii_compatible(encoding: str) -> bool:
    probe = "0123456789.,;:+-eE \t\r\n\"'/#[]_azAZ"
    try:
        return probe.encode(encoding) == probe.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def _tail_lines(raw: _Raw, encoding: str) -> list[str]:
    if not raw.tail or not _ascii_compatible(_lenient(encoding)):
        return []  # a tail cut at an arbitrary byte only decodes in ASCII-based code pages
    tail = raw.tail
    start = max(tail.find(b"\n"), tail.find(b"\r"))
    text = tail[start + 1 :].decode(_lenient(encoding), errors="replace")
    return split_lines(text)


def _lenient(encoding: str) -> str:
    return "utf-8" if encoding == "utf-8-sig" else encoding


@functools.lru_cache(maxsize=8)
def _ws_token(quote: str | None) -> re.Pattern[str]:
    """A blank-separated field, or a quoted one that may hold blanks."""
    if quote is None:
        return re.compile(r"\S+")
    q = re.escape(quote)
    return re.compile(rf"{q}(?:[^{q}]|{q}{q})*{q}|\S+")


def _unquote(token: str, quote: str | None) -> str:
    if quote is not None and len(token) > 1 and token[0] == token[-1] == quote:
        return token[1:-1].replace(quote * 2, quote)
    return token


def _split(line: str, options: DelimitedOptions) -> list[str]:
    """The fields of one line, quotes removed."""
    quote = options.quote_char
    if options.delimiter == WHITESPACE:
        return [_unquote(t, quote) for t in _ws_token(quote).findall(line)]
    if quote is None or quote not in line:
        return line.split(options.delimiter)
    return [f.text for f in split_fields(line, options.delimiter, quote)]


def _check_names(names: list[str], display: str, line: int) -> None:
    seen: dict[str, int] = {}
    for i, col in enumerate(names, start=1):
        if not col:
            continue
        if col in seen:
            raise ParseError(
                display,
                f"duplicate column name {col!r} (fields {seen[col]} and {i}); "
                "every column needs a unique name",
                line=line or None,
            )
        seen[col] = i


def _time_columns(options: DelimitedOptions, names: list[str], display: str) -> list[str]:
    refs: list[ColumnRef | None]
    if options.date_column is not None:
        refs = [options.date_column, options.time_column]
    elif options.year_column is not None:
        refs = [options.year_column, options.doy_column, options.hhmm_column]
    else:
        refs = [options.timestamp_column if options.timestamp_column is not None else 1]
    out = []
    for ref in refs:
        assert ref is not None
        if isinstance(ref, int):
            if ref > len(names) or not names[ref - 1]:
                raise ParseError(
                    display,
                    f"expected a timestamp column number {ref}, but the file has "
                    f"{len(names)} columns",
                    line=options.header_row or None,
                )
            out.append(names[ref - 1])
        else:
            if ref.strip() not in names:
                raise ParseError(
                    display,
                    f"expected a timestamp column {ref!r}; columns: "
                    f"{', '.join(repr(n) for n in names if n)}",
                    line=options.header_row or None,
                )
            out.append(ref.strip())
    return out


def _sample_rows(lines: list[str], options: DelimitedOptions, complete: bool) -> list[list[str]]:
    """Fields of the sampled data lines (a last line without line break is left out)."""
    if not complete and lines:
        lines = lines[:-1]
    out = []
    prefix = options.comment_prefix
    for line in lines:
        if not line.strip() or (prefix is not None and line.startswith(prefix)):
            continue
        out.append(_split(line, options))
    return out


def _classify(
    sample: list[list[str]],
    names: list[str],
    candidates: list[str],
    options: DelimitedOptions,
) -> tuple[set[str], bool]:
    """(text columns, whether numeric fields are padded with blanks)."""
    if not sample or not candidates:
        return set(), False
    markers = sorted({m.strip() for m in options.missing})
    index = {n: names.index(n) for n in candidates}
    width = len(names)
    rows = [f if len(f) == width else (f + [""] * width)[:width] for f in sample]
    transposed = list(zip(*rows, strict=True))
    raw = pl.DataFrame(
        {n: transposed[i] for n, i in index.items()}, schema={n: pl.String for n in index}
    )
    # polars reads neither a blank-padded marker nor trailing blanks
    padded = bool(
        raw.select(pl.any_horizontal(pl.all().ne(pl.all().str.strip_chars()).any())).item()
    )
    bare = pl.all().str.strip_chars()
    value = pl.when(bare.is_in(markers) | (bare == "")).then(None).otherwise(bare)
    if options.decimal == ",":
        value = (
            pl.when(value.str.contains(".", literal=True))
            .then(pl.lit("x"))
            .otherwise(value.str.replace(",", ".", literal=True))
        )
    else:
        value = pl.when(value.str.contains(",", literal=True)).then(pl.lit("x")).otherwise(value)
    cleaned = raw.select(value.name.keep())
    numbers = cleaned.select(pl.all().cast(pl.Float64, strict=False))
    bad = cleaned.select(pl.all().is_not_null().sum()).row(0)
    good = numbers.select(pl.all().is_not_null().sum()).row(0)
    text = {n for n, b, g in zip(cleaned.columns, bad, good, strict=True) if b != g}
    return text, padded


def _prepare_data(
    raw: _Raw,
    options: DelimitedOptions,
    encoding: str,
    head_lines: list[str],
    first_line: int,
) -> str | os.PathLike[str] | bytes:
    """The data load_table reads: the file itself when polars can take it as
    it is, else a rewritten copy with the same line numbering."""
    ascii_ok = _ascii_compatible(_lenient(encoding))
    quote = options.quote_char
    header_quotes = quote is not None and any(
        line.count(quote) % 2 for line in head_lines[: first_line - 1]
    )
    lone_cr = _has_lone_cr(raw.head)
    bom = raw.bom
    needs = (
        not ascii_ok
        or lone_cr
        or options.delimiter == WHITESPACE
        or options.comment_prefix is not None
        or header_quotes
        or (bom and first_line == 1)
    )
    if not needs:
        return raw.path if raw.path is not None and raw.whole is None else raw.content()
    data = raw.content()
    if not ascii_ok:
        data = data.decode(_lenient(encoding), errors="replace").lstrip("\ufeff").encode("utf-8")
    elif bom:
        data = data[len(bom) :]
    if lone_cr or options.delimiter == WHITESPACE:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if header_quotes:
        # polars counts skipped rows with quoting on; an odd quote in a
        # header line would swallow the next lines -- blank the header out
        cut = _line_offset(data, first_line)
        data = b"\n" * (first_line - 1) + data[cut:]
    if options.comment_prefix is not None:
        marker = re.escape(options.comment_prefix.encode("utf-8"))
        data = re.sub(rb"(?m)^" + marker + rb"[^\r\n]*", b"", data)
    if options.delimiter == WHITESPACE:
        data = _normalise_whitespace(data, quote, first_line)
    return data


def _has_lone_cr(head: bytes) -> bool:
    return head.count(b"\r") > head.count(b"\r\n")


def _line_offset(data: bytes, line: int) -> int:
    """Byte offset where 1-based ``line`` starts (LF or CRLF endings)."""
    pos = 0
    for _ in range(line - 1):
        nxt = data.find(b"\n", pos)
        if nxt < 0:
            return len(data)
        pos = nxt + 1
    return pos


def _normalise_whitespace(data: bytes, quote: str | None, first_line: int) -> bytes:
    """Rewrite runs of blanks as one tab, line by line (LF endings)."""
    cut = _line_offset(data, first_line)
    body = data[cut:]
    if quote is not None and quote.encode() in body:
        token = _ws_token(quote)
        out = []
        for line in body.split(b"\n"):
            fields_ = [_unquote(t, quote) for t in token.findall(line.decode("utf-8", "replace"))]
            out.append("\t".join(f.replace("\t", " ") for f in fields_).encode("utf-8"))
        body = b"\n".join(out)
    else:
        body = re.sub(rb"(?m)^[ \t]+|[ \t]+$", b"", body)
        body = re.sub(rb"[ \t]+", b"\t", body)
    return b"\n" * (first_line - 1) + body


class _RowLines:
    """Maps frame rows back to file lines (only computed when an error needs it)."""

    def __init__(
        self,
        data: str | os.PathLike[str] | bytes,
        first_line: int,
        comment_prefix: str | None,
        sep: str,
    ) -> None:
        self._data = data
        self.first = first_line
        self._prefix = comment_prefix
        self._sep = sep
        self._lines: list[int] | None = None

    def line(self, row: int) -> int:
        if self._lines is None:
            raw = self._data if isinstance(self._data, bytes) else read_bytes(self._data)
            text = raw.decode("utf-8", "replace")
            out = []
            for no, line in enumerate(split_lines(text), start=1):
                if no < self.first:
                    continue
                if self._prefix is not None and line.startswith(self._prefix):
                    continue
                if not line.replace(self._sep, "").strip():
                    continue
                out.append(no)
            self._lines = out
        if row < len(self._lines):
            return self._lines[row]
        return self.first + row


def _cast_padded(
    frame: pl.DataFrame,
    numeric: list[str],
    markers: tuple[str, ...],
    decimal_comma: bool,
    rows: _RowLines,
    display: str,
) -> pl.DataFrame:
    """Numbers from text fields padded with blanks (polars rejects trailing blanks)."""
    stripped_markers = sorted({m.strip() for m in markers})
    exprs = []
    for name in numeric:
        bare = pl.col(name).str.strip_chars()
        bare = pl.when(bare.is_in(stripped_markers) | (bare == "")).then(None).otherwise(bare)
        if decimal_comma:
            bare = bare.str.replace(",", ".", literal=True)
        exprs.append(bare.alias(name))
    text = frame.select(exprs)
    out = text.select(pl.col(n).cast(pl.Float64, strict=False) for n in numeric)
    for name in numeric:
        bad = out.get_column(name).is_null() & text.get_column(name).is_not_null()
        if bad.any():
            row = int(bad.arg_max() or 0)
            raise ParseError(
                display,
                f"column {name!r}: expected a number, found {text.get_column(name)[row]!r} "
                "(add it to missing if it marks a missing value)",
                line=rows.line(row),
            )
    return frame.with_columns(out)


def _timestamps(
    frame: pl.DataFrame,
    options: DelimitedOptions,
    time_cols: list[str],
    rows: _RowLines,
    display: str,
) -> tuple[pl.Series, list[str]]:
    if len(time_cols) == 3:
        return _from_parts(frame, time_cols, rows, display), []
    if len(time_cols) == 2:
        date, time = (frame.get_column(c).cast(pl.String).str.strip_chars() for c in time_cols)
        values = (date + " " + time).alias(time_cols[0])
    else:
        values = frame.get_column(time_cols[0])
    formats: tuple[str, ...] | None
    if options.timestamp_format:
        formats = (options.timestamp_format,)
    else:
        formats = _candidate_formats(values, options.dayfirst)
    try:
        stamps, warnings = parse_timestamps(
            values,
            name=display,
            first_line=rows.first,
            formats=formats,
            dayfirst=options.dayfirst,
        )
    except ParseError as exc:
        row = (exc.line or rows.first) - rows.first
        raise ParseError(display, exc.reason, line=rows.line(row)) from None
    missing = stamps.is_null()
    if missing.any():
        row = int(missing.arg_max() or 0)
        raise ParseError(
            display,
            f"expected a date and a time in columns {time_cols[0]!r} and {time_cols[-1]!r}, "
            f"found {frame.get_column(time_cols[0])[row]!r} and "
            f"{frame.get_column(time_cols[-1])[row]!r}",
            line=rows.line(row),
        )
    return stamps, warnings


#: how many labels decide which layouts are worth trying on the whole column
_FORMAT_SAMPLE = 500
_ZONE_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})$"


def _candidate_formats(values: pl.Series, dayfirst: bool | None) -> tuple[str, ...] | None:
    """The layouts that read the first labels, most likely first.

    parse_timestamps tries each layout on the whole column; trying them on a
    sample first keeps a large file from being parsed a dozen times. None
    (let parse_timestamps report the bad value) when no layout fits the sample.
    """
    layouts: tuple[str, ...]
    if dayfirst is True:
        layouts = ISO_FORMATS + DAYFIRST_FORMATS
    elif dayfirst is False:
        layouts = ISO_FORMATS + MONTHFIRST_FORMATS
    else:
        layouts = ISO_FORMATS + DAYFIRST_FORMATS + MONTHFIRST_FORMATS
    head = values.head(_FORMAT_SAMPLE).drop_nulls().cast(pl.String).str.strip_chars()
    head = head.str.replace(_ZONE_SUFFIX, "").str.strip_chars()
    fits = []
    for fmt in layouts:
        try:
            head.str.strptime(pl.Datetime("us"), fmt, strict=True, exact=True)
        except pl.exceptions.PolarsError:
            continue
        fits.append(fmt)
    return tuple(fits) or None


def _from_parts(frame: pl.DataFrame, cols: list[str], rows: _RowLines, display: str) -> pl.Series:
    """Timestamps from year, day-of-year and HHMM columns."""
    parts = frame.select(
        pl.col(c).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).alias(k)
        for c, k in zip(cols, ("y", "d", "t"), strict=True)
    )
    hhmm = pl.col("t")
    ok = (
        pl.all_horizontal(pl.col("y", "d", "t").is_not_null())
        & (pl.col("y") == pl.col("y").floor())
        & (pl.col("d") == pl.col("d").floor())
        & (hhmm == hhmm.floor())
        & pl.col("d").is_between(1, 366)
        & (hhmm // 100).is_between(0, 24)
        & (hhmm % 100 < 60)
    )
    bad = parts.select(~ok).to_series()
    if bad.any():
        row = int(bad.arg_max() or 0)
        got = [frame.get_column(c)[row] for c in cols]
        raise ParseError(
            display,
            f"expected year, day of year (1-366) and HHMM (0000-2400) in columns "
            f"{', '.join(repr(c) for c in cols)}, found {got!r}",
            line=rows.line(row),
        )
    year = pl.col("y").cast(pl.Int32)
    year = pl.when(year < 100).then(year + 2000).otherwise(year)
    stamp = pl.datetime(year, 1, 1, time_unit="us") + pl.duration(
        days=pl.col("d").cast(pl.Int64) - 1,
        hours=(hhmm // 100).cast(pl.Int64),
        minutes=(hhmm % 100).cast(pl.Int64),
    )
    return parts.select(stamp.alias(cols[0])).to_series()


def _channel(
    name: str, unit: str, rules: Sequence[tuple[str, str]], height_regex: str | None
) -> ChannelInfo:
    statistic = next((stat for pattern, stat in rules if re.search(pattern, name)), None)
    height = None
    if height_regex is not None:
        match = re.search(height_regex, name)
        if match is not None:
            try:
                height = float(match.group(1).replace(",", "."))
            except (TypeError, ValueError):
                height = None
    return ChannelInfo(name=name, statistic=statistic, unit=unit or None, height_m=height)
