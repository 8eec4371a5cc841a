"""Fast loading of delimited logger tables, shared by the text formats.

polars reads the data block with an explicit schema (Float64 for numeric
channels, String for timestamps and text), which is what makes a 150 MB
TOA5 file parse at disk speed. What polars does not check, this module does:

* the last line: a line that does not end with a line break may be a partial
  write (a file fetched while the logger was still writing it ends like
  ``...,12.93,12.``). It is dropped with a warning unless its own width and
  syntax prove it complete (:func:`last_line_verdict`); the file's next,
  complete version brings the row;
* absurd lines: a line many times longer than the header could make
  (:func:`max_line_bytes`) is refused by length before anything is parsed,
  reading the file in chunks, so memory stays bounded;
* quoted missing markers (``"NAN"``) are missing values in unquoted layouts
  too;
* short rows: polars pads a row with too few fields with nulls, silently.
  Counting separators (a streaming byte count, cheap) proves no row is
  short; only when the count does not match are lines checked one by one,
  and the first short row is an error naming its line;
* blank lines (Excel re-saves end with one) are dropped;
* when polars rejects the block, a line-by-line pass finds the first bad
  line and the error names it and says what was expected.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import Source

TAIL_BYTES = 1 << 16
#: earlier lines that show a column's fixed decimals (last-line check)
TAIL_LINES = 100
#: a line longer than this many times the header's width is refused ...
LINE_LENGTH_FACTOR = 64
#: ... and never a line shorter than this [bytes]
MIN_LINE_LIMIT = 1 << 16
SCAN_CHUNK = 1 << 24
_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_LONE_CR = re.compile(rb"\r(?!\n)")


@dataclass(frozen=True)
class Field:
    """One field of a delimited line and whether it was quoted."""

    text: str
    quoted: bool
    #: False for a quoted field whose closing quote is missing (a cut line)
    closed: bool = True


def split_fields(line: str, separator: str = ",", quote: str | None = '"') -> list[Field]:
    """Split one line, honouring quotes (a doubled quote is a literal quote)."""
    fields: list[Field] = []
    i, n = 0, len(line)
    while True:
        if quote is not None and i < n and line[i] == quote:
            j = i + 1
            buf: list[str] = []
            while j < n:
                if line[j] == quote:
                    if j + 1 < n and line[j + 1] == quote:
                        buf.append(quote)
                        j += 2
                        continue
                    break
                buf.append(line[j])
                j += 1
            fields.append(Field("".join(buf), True, closed=j < n))
            k = line.find(separator, j + 1)
            if k < 0:
                return fields
            i = k + len(separator)
        else:
            k = line.find(separator, i)
            if k < 0:
                fields.append(Field(line[i:], False))
                return fields
            fields.append(Field(line[i:k], False))
            i = k + len(separator)


def is_number(text: str, decimal_comma: bool = False) -> bool:
    """True if ``text`` is a plain decimal number as loggers write them."""
    if decimal_comma:
        text = text.replace(",", ".")
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in {"nan", "inf", "-inf", "+inf", "infinity", "-infinity"}


@dataclass(frozen=True)
class TableLayout:
    """How the data block of a delimited file is laid out."""

    #: every column in file order (unique names)
    columns: Sequence[str]
    #: columns loaded as Float64; all others are loaded as String
    numeric: frozenset[str]
    #: 1-based number of the first data line
    first_data_line: int
    separator: str = ","
    quote_char: str | None = '"'
    null_values: Sequence[str] = ()
    decimal_comma: bool = False
    #: the column that must be present on every data row (the timestamp)
    required: str | None = None
    encoding: str = "utf8"
    extra: dict[str, str] = field(default_factory=dict)
    #: the writer prints every value of a column with the same count of
    #: decimals (printf ``%.4f``): a last line without a line break whose last
    #: value has that count is complete (see :func:`last_line_verdict`)
    fixed_decimals: bool = False
    #: the writer ends its files without a line break (Triton exports): there a
    #: last line with every field is complete
    ends_without_line_break: bool = False


def _tail(source: Source | bytes) -> tuple[bytes, int]:
    """The last bytes of the source and the total size."""
    if isinstance(source, bytes):
        return source[-TAIL_BYTES:], len(source)
    if isinstance(source, (str, os.PathLike)):
        size = os.path.getsize(source)
        with open(source, "rb") as fh:
            fh.seek(max(0, size - TAIL_BYTES))
            return fh.read(), size
    raise TypeError("load_table takes a path or bytes")


@contextlib.contextmanager
def _mapped(data: str | os.PathLike[str] | bytes) -> Iterator[bytes | mmap.mmap]:
    """The content as a bytes-like that can be searched without reading it all
    into memory (a read-only memory map of a path)."""
    if isinstance(data, bytes):
        yield data
        return
    with open(data, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            yield mm


def breaks_before(buf: bytes | mmap.mmap, end: int) -> int:
    """Line breaks (CRLF, LF or lone CR, each one) before byte ``end``, counted in chunks."""
    total = 0
    for start in range(0, end, SCAN_CHUNK):
        stop = min(end, start + SCAN_CHUNK)
        chunk = buf[start:stop]
        # one byte more shows a CRLF split between two chunks
        pairs = buf[start : stop + 1].count(b"\r\n") if stop < end else chunk.count(b"\r\n")
        total += chunk.count(b"\n") + chunk.count(b"\r") - pairs
    return total


def max_line_bytes(layout: TableLayout) -> int:
    """The longest line a file with this header is allowed [bytes].

    A data row is a few times longer than the field-name line at most
    (numbers and timestamps against names); LINE_LENGTH_FACTOR times that
    line, and never less than MIN_LINE_LIMIT, leaves a wide margin.
    """
    header = sum(len(c.encode()) + 3 for c in layout.columns)  # name, quotes, separator
    return max(MIN_LINE_LIMIT, LINE_LENGTH_FACTOR * header)


def refuse_long_lines(buf: bytes | mmap.mmap, limit: int, name: str, what: str) -> None:
    """Raise ParseError for the first line longer than ``limit`` bytes.

    A line longer than ``limit`` holds a whole aligned block of ``limit // 2``
    bytes without a line break, so only one search per block is needed: the
    scan runs at memory speed and never copies the file.
    """
    block = max(1, limit // 2)
    size = len(buf)
    for start in range(0, size - block + 1, block):
        end = start + block
        if buf.find(b"\n", start, end) >= 0 or buf.find(b"\r", start, end) >= 0:
            continue
        first = max(buf.rfind(b"\n", 0, start), buf.rfind(b"\r", 0, start)) + 1
        ends = [i for i in (buf.find(b"\n", end), buf.find(b"\r", end)) if i >= 0]
        stop = min(ends) if ends else size
        if stop - first > limit:
            raise ParseError(
                name,
                f"a line of {stop - first} bytes, far longer than {what} can be "
                f"(at most {limit} bytes); the file is refused",
                line=breaks_before(buf, first) + 1,
            )


def _unquoted(text: str) -> str:
    """``text`` without one pair of surrounding double quotes."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def is_missing(text: str, markers: Collection[str]) -> bool:
    """True when ``text`` (stripped) is a missing marker, bare or quoted (``"NAN"``)."""
    value = text.strip()
    return value in markers or _unquoted(value).strip() in markers


_DECIMALS = re.compile(r"^[+-]?\d*\.(\d+)$")


def _fixed_decimals(value: str, earlier: Sequence[Field]) -> int | None:
    """The decimals every earlier number of a column has, when ``value`` has as
    many too (a printf-style writer: ``%.4f``); else None."""
    m = _DECIMALS.match(value.strip())
    if m is None:
        return None
    k = len(m.group(1))
    seen = 0
    for fld in earlier:
        text = fld.text.strip()
        if not is_number(text):
            continue  # a header name, a missing marker
        prior = _DECIMALS.match(text)
        if prior is None or len(prior.group(1)) != k:
            return None
        seen += 1
    return k if seen else None


def last_line_verdict(last: str, earlier: Sequence[str], layout: TableLayout) -> tuple[bool, str]:
    """(keep, why) for a last line that does not end with a line break.

    A file fetched while the logger writes it ends in the middle of a line;
    ``12.`` or ``12`` may be the start of ``12.93``, so a last field that is
    a number proves nothing by itself. The line is complete only when:

    * a separator follows its last field (a row ending with a separator);
    * its last field is a quoted string with its closing quote;
    * its last field is a column that holds no reading (a text column);
    * the format's writer never ends a file with a line break
      (``ends_without_line_break``, Triton exports); or
    * the layout's writer prints each column with a fixed count of decimals
      (``fixed_decimals``, NRG exports) and the value has exactly as many as
      every earlier value of its column in ``earlier`` (the lines before).

    Otherwise it is dropped; the file's next, complete version brings it.
    """
    width = len(layout.columns)
    fields = split_fields(last, layout.separator, layout.quote_char)
    if len(fields) < width:
        return False, f"it has {len(fields)} of {width} fields and no line break"
    if len(fields) > width:
        return True, "a separator ends its last field"
    final = fields[width - 1]
    if final.quoted:
        if final.closed:
            return True, "its last field is a quoted string with its closing quote"
        return False, "no line break, and its last field lacks its closing quote"
    column = layout.columns[width - 1]
    if column not in layout.numeric and column != layout.required:
        return True, "its last field holds no reading"
    if layout.ends_without_line_break:
        return True, "all fields present; files of this format end without a line break"
    if layout.fixed_decimals:
        rows = [split_fields(line, layout.separator, layout.quote_char) for line in earlier]
        k = _fixed_decimals(final.text, [r[width - 1] for r in rows if len(r) >= width])
        if k is not None:
            return True, f"its last value has the {k} decimals every value of its column has"
    return False, (
        f"no line break, and its last value {final.text.strip()[:24]!r} may be cut short, "
        "as in a file copied while the logger writes it; its next version brings the line"
    )


def _earlier_lines(tail: bytes, whole_file: bool) -> list[str]:
    """The complete lines of ``tail`` before its last line (at most TAIL_LINES)."""
    lines = _LINE_SPLIT.split(tail.decode("utf-8", "replace"))[:-1]
    if not whole_file:
        lines = lines[1:]  # the tail starts inside a line
    return lines[-TAIL_LINES:]


def load_table(
    source: str | os.PathLike[str] | bytes, layout: TableLayout, name: str
) -> tuple[pl.DataFrame, list[str]]:
    """Load the data block; return (frame, warnings).

    The frame has one column per layout column, numeric ones Float64 with
    the layout's missing markers (bare or quoted) as null, the others String.
    """
    warnings: list[str] = []
    data: str | os.PathLike[str] | bytes = source
    tail, size = _tail(source)
    with _mapped(source) as buf:
        refuse_long_lines(
            buf,
            max_line_bytes(layout),
            name,
            f"a row of this file's {len(layout.columns)} columns",
        )
        stripped = tail.rstrip(b"\r\n")
        if stripped and not tail.endswith((b"\n", b"\r")):
            last = stripped.rsplit(b"\n", 1)[-1].rsplit(b"\r", 1)[-1]
            cut = size - len(last)
            line_no = breaks_before(buf, cut) + 1
            earlier = _earlier_lines(tail, size <= TAIL_BYTES) if layout.fixed_decimals else []
            keep, why = last_line_verdict(last.decode("utf-8", "replace"), earlier, layout)
            if keep:
                warnings.append(f"line {line_no}: no line break after the last line (kept: {why})")
            else:
                data = bytes(buf[:cut])
                warnings.append(f"line {line_no}: truncated last line dropped ({why})")
    if size == 0:
        data = b""
    if _lone_cr(data):
        # polars splits lines on LF only: old Mac line ends (CR), alone or
        # mixed with LF / CRLF, become LF -- the headers were split on all three
        whole = data if isinstance(data, bytes) else Path(data).read_bytes()
        data = whole.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    numeric = layout.numeric
    schema = {c: (pl.Float64 if c in numeric else pl.String) for c in layout.columns}
    try:
        frame = _read(data, layout, schema)
    except (pl.exceptions.PolarsError, OSError) as exc:
        fixed = _drop_empty_extra_fields(data, layout)
        if fixed is None:
            raise _locate_error(data, layout, name, exc) from None
        data = fixed
        try:
            frame = _read(data, layout, schema)
        except (pl.exceptions.PolarsError, OSError) as again:
            raise _locate_error(data, layout, name, again) from None
        sep = _SEPARATOR_NAMES.get(layout.separator, repr(layout.separator))
        warnings.append(
            f"rows end with extra empty fields (a trailing {sep}); the empty fields were ignored"
        )
    if frame.width != len(layout.columns):
        # an empty data block: polars gives no columns
        frame = pl.DataFrame(schema=schema)
    _check_no_short_rows(data, layout, frame.height, name)
    if layout.required is not None and frame.height:
        missing = frame.get_column(layout.required).is_null()
        if missing.any():
            blank = frame.select(pl.all_horizontal(pl.all().is_null())).to_series()
            bad = missing & ~blank
            if bad.any():
                row = int(bad.arg_max() or 0)
                raise ParseError(
                    name,
                    f"expected a value in column {layout.required!r}, found none",
                    line=layout.first_data_line + row,
                )
            frame = frame.filter(~blank)
    return frame, warnings


_SEPARATOR_NAMES = {"\t": "TAB", ",": "comma", ";": "semicolon", " ": "blank"}


def _read(
    data: str | os.PathLike[str] | bytes, layout: TableLayout, schema: dict[str, Any]
) -> pl.DataFrame:
    """polars' read of the data block with the layout's schema."""
    return pl.read_csv(
        io.BytesIO(data) if isinstance(data, bytes) else Path(data),
        has_header=False,
        # skip_lines, not skip_rows: header lines are never read as CSV, so an
        # odd quote in a header cannot swallow data rows
        skip_lines=layout.first_data_line - 1,
        new_columns=list(layout.columns),
        schema_overrides=schema,
        separator=layout.separator,
        quote_char=layout.quote_char,
        null_values=null_values(layout) or None,
        decimal_comma=layout.decimal_comma,
        encoding=layout.encoding if layout.encoding in ("utf8", "utf8-lossy") else "utf8-lossy",
        raise_if_empty=False,
        infer_schema=False,
    )


def null_values(layout: TableLayout) -> list[str]:
    """The layout's missing markers, and (unquoted layouts) each one quoted:
    a writer may quote a marker (``"NAN"``) even where it quotes nothing else.
    With a quote character, polars removes the quotes before comparing."""
    markers = list(dict.fromkeys(layout.null_values))
    if layout.quote_char is None:
        markers += [f'"{m}"' for m in markers if m and f'"{m}"' not in markers]
    return markers


def _drop_empty_extra_fields(
    data: str | os.PathLike[str] | bytes, layout: TableLayout
) -> bytes | None:
    """The data block with empty fields past the header's width cut (rows that
    end with a separator), or None when there are none or one holds a value.

    Only for unquoted layouts: without quotes a separator always splits."""
    if layout.quote_char is not None or len(layout.separator) != 1:
        return None
    whole = data if isinstance(data, bytes) else Path(data).read_bytes()
    sep = layout.separator.encode()
    width = len(layout.columns)
    lines = whole.split(b"\n")
    changed = False
    for i in range(layout.first_data_line - 1, len(lines)):
        line = lines[i]
        if line.count(sep) < width:
            continue
        end = b"\r" if line.endswith(b"\r") else b""
        fields = line[: len(line) - len(end)].split(sep)
        if any(f.strip() for f in fields[width:]):
            return None
        lines[i] = sep.join(fields[:width]) + end
        changed = True
    return b"\n".join(lines) if changed else None


def _lone_cr(data: str | os.PathLike[str] | bytes) -> bool:
    """True when some line of the data ends with a CR alone (not CRLF)."""
    with _mapped(data) as buf:
        return _LONE_CR.search(buf) is not None


def _separators(data: str | os.PathLike[str] | bytes, sep: bytes, skip_lines: int) -> int:
    """Separators in the data block (after ``skip_lines`` lines), counted in chunks."""
    if isinstance(data, bytes):
        pos = 0
        for _ in range(skip_lines):
            nl = data.find(b"\n", pos)
            if nl < 0:
                return 0
            pos = nl + 1
        return data.count(sep, pos)
    total = 0
    with open(data, "rb") as fh:
        for _ in range(skip_lines):
            fh.readline()
        while chunk := fh.read(1 << 24):
            total += chunk.count(sep)
    return total


def _check_no_short_rows(
    data: str | os.PathLike[str] | bytes, layout: TableLayout, rows: int, name: str
) -> None:
    """Fail on the first data row with fewer fields than the header."""
    width = len(layout.columns)
    if rows == 0 or width < 2 or len(layout.separator) != 1:
        return
    sep = layout.separator.encode()
    counted = _separators(data, sep, layout.first_data_line - 1)
    if counted == rows * (width - 1):
        return  # exact: every row has all its fields (blank lines have none)
    if counted > rows * (width - 1) and layout.quote_char is None:
        return  # more separators than fields can only be trailing separators polars accepted
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    text = raw.decode("utf-8", "replace")
    lines = _LINE_SPLIT.split(text)
    for idx in range(layout.first_data_line - 1, len(lines)):
        line = lines[idx]
        if not line.strip():
            continue
        got = len(split_fields(line, layout.separator, layout.quote_char))
        if got < width:
            raise ParseError(name, f"expected {width} fields, found {got}", line=idx + 1)


def _locate_error(
    data: str | os.PathLike[str] | bytes, layout: TableLayout, name: str, exc: Exception
) -> ParseError:
    """Find the first line polars could not read; say what was expected."""
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    text = raw.decode("utf-8", "replace")
    width = len(layout.columns)
    lines = _LINE_SPLIT.split(text)
    for idx in range(layout.first_data_line - 1, len(lines)):
        line = lines[idx]
        if not line.strip():
            continue
        fields = split_fields(line, layout.separator, layout.quote_char)
        if len(fields) != width:
            return ParseError(name, f"expected {width} fields, found {len(fields)}", line=idx + 1)
        for col, fld in zip(layout.columns, fields, strict=True):
            if col not in layout.numeric:
                continue
            value = fld.text.strip()
            if value == "" or is_missing(value, layout.null_values):
                continue
            if not is_number(value, layout.decimal_comma) and value.lower() not in {
                "nan",
                "inf",
                "-inf",
            }:
                return ParseError(
                    name,
                    f"column {col!r}: expected a number, found {fld.text[:40]!r}",
                    line=idx + 1,
                )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ParseError(name, f"unreadable data block ({first})")


def unique_names(names: Sequence[str], name: str, *, line: int) -> list[str]:
    """Column names as the file has them; empty ones (padding) get unique
    placeholders ``__empty<i>``; a repeated name is an error naming ``line``."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        col = raw if raw.strip() else f"__empty{i}"
        if col in seen:
            raise ParseError(
                name,
                f"duplicate column name {col!r} (fields {seen[col]} and {i + 1}); "
                "every column needs a unique name",
                line=line,
            )
        seen[col] = i + 1
        out.append(col)
    return out


def text_columns(
    lines: Sequence[str],
    width: int,
    *,
    separator: str = ",",
    quote: str | None = None,
    missing: Sequence[str] = (),
    decimal_comma: bool = False,
    quoted_is_text: bool = False,
    start: int = 0,
) -> set[int]:
    """Columns (from ``start``) whose sampled values are text.

    A column is text when it holds some non-missing value and no number in
    the sample -- or, with ``quoted_is_text`` (Campbell quotes strings and
    never numbers), any quoted non-missing value. One odd value in a column
    of numbers is a damaged line, which the loader reports with its line
    number: corruption never makes a channel vanish. Lines with fewer fields
    than ``width`` (partial writes) are not evidence.

    Only the columns without a number so far are looked at closely, so a
    sample costs little more than splitting its lines.
    """
    markers = set(missing)
    quoted: set[int] = set()
    words: set[int] = set()
    #: columns without a number yet
    open_cols = list(range(start, width))
    for line in lines:
        if not line.strip():
            continue
        texts, wrapped = _split_sample(line, separator, quote)
        if len(texts) < width:
            continue
        if quoted_is_text:
            quoted.update(
                i
                for i in wrapped
                if start <= i < width and not is_missing(texts[i].strip(), markers)
            )
        if not open_cols:
            continue
        still: list[int] = []
        for i in open_cols:
            value = texts[i].strip()
            if (quoted_is_text and i in wrapped) or is_missing(value, markers):
                still.append(i)
            elif not is_number(value, decimal_comma):
                words.add(i)
                still.append(i)
        open_cols = still
    return quoted | (words & set(open_cols))


def _split_sample(line: str, separator: str, quote: str | None) -> tuple[list[str], set[int]]:
    """The field texts of a line and which fields were quoted; a plain split
    when its quotes only wrap whole fields."""
    if quote is None or quote not in line:
        return line.split(separator), set()
    parts = line.split(separator)
    wrapped: set[int] = set()
    at = line.find(quote)
    while at >= 0:  # the field each quote character is in
        wrapped.add(line.count(separator, 0, at))
        at = line.find(quote, at + 1)
    if all(
        len(parts[i]) >= 2 and parts[i][0] == parts[i][-1] == quote and parts[i].count(quote) == 2
        for i in wrapped
    ):
        for i in wrapped:
            parts[i] = parts[i][1:-1]
        return parts, wrapped
    fields = split_fields(line, separator, quote)
    return [f.text for f in fields], {i for i, f in enumerate(fields) if f.quoted}
