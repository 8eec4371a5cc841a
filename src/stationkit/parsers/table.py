"""Fast loading of delimited logger tables, shared by the text formats.

polars reads the data block with an explicit schema (Float64 for numeric
channels, String for timestamps and text), which is what makes a 150 MB
TOA5 file parse at disk speed. What polars does not check, this module does:

* the last line: a line that does not end with a line break and has fewer
  fields than the header is a partial write -- it is dropped with a warning,
  complete rows are kept;
* short rows: polars pads a row with too few fields with nulls, silently.
  Counting separators (a streaming byte count, cheap) proves no row is
  short; only when the count does not match are lines checked one by one,
  and the first short row is an error naming its line;
* blank lines (Excel re-saves end with one) are dropped;
* when polars rejects the block, a line-by-line pass finds the first bad
  line and the error names it and says what was expected.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import Source

TAIL_BYTES = 1 << 16
_LINE_SPLIT = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Field:
    """One field of a delimited line and whether it was quoted."""

    text: str
    quoted: bool


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
            fields.append(Field("".join(buf), True))
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


def load_table(
    source: str | os.PathLike[str] | bytes, layout: TableLayout, name: str
) -> tuple[pl.DataFrame, list[str]]:
    """Load the data block; return (frame, warnings).

    The frame has one column per layout column, numeric ones Float64 with
    the layout's missing markers as null, the others String.
    """
    warnings: list[str] = []
    data: str | os.PathLike[str] | bytes = source
    tail, size = _tail(source)
    stripped = tail.rstrip(b"\r\n")
    if stripped and not tail.endswith((b"\n", b"\r")):
        last = stripped.rsplit(b"\n", 1)[-1].rsplit(b"\r", 1)[-1]
        text = last.decode("utf-8", "replace")
        got = len(split_fields(text, layout.separator, layout.quote_char))
        whole = source if isinstance(source, bytes) else Path(source).read_bytes()
        line_no = whole.count(b"\n") + 1
        if got < len(layout.columns):
            cut = len(whole) - len(last)
            data = whole[:cut]
            warnings.append(
                f"line {line_no}: truncated last line dropped "
                f"(it has {got} of {len(layout.columns)} fields and no line break)"
            )
        else:
            warnings.append(
                f"line {line_no}: no line break after the last line (kept: all fields present)"
            )
    if size == 0:
        data = b""
    if _lone_cr(data):
        # polars splits lines on LF only: old Mac line ends (CR) become LF
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
        null_values=list(layout.null_values) or None,
        decimal_comma=layout.decimal_comma,
        encoding=layout.encoding if layout.encoding in ("utf8", "utf8-lossy") else "utf8-lossy",
        raise_if_empty=False,
        infer_schema=False,
    )


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
    """True when the start of the data uses CR alone as the line break."""
    if isinstance(data, bytes):
        head = data[:65536]
    else:
        with open(data, "rb") as fh:
            head = fh.read(65536)
    return b"\r" in head.rstrip(b"\r") and b"\n" not in head


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
            if value == "" or value in layout.null_values:
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
    """
    markers = set(missing)
    quoted: set[int] = set()
    numbers: set[int] = set()
    words: set[int] = set()
    for line in lines:
        if not line.strip():
            continue
        fields = (
            split_fields(line, separator, quote)
            if quote is not None
            else [Field(t, False) for t in line.split(separator)]
        )
        if len(fields) < width:
            continue
        for i in range(start, width):
            value = fields[i].text.strip()
            if value in markers:
                continue
            if quoted_is_text and fields[i].quoted:
                quoted.add(i)
            elif is_number(value, decimal_comma):
                numbers.add(i)
            else:
                words.add(i)
    return quoted | (words - numbers)
