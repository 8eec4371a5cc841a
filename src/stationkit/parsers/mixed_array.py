"""Campbell Scientific mixed-array files (Edlog CR10/CR10X/CR23X/CR510/21X
era) and LoggerNet's "array-compatible CSV" output of table loggers.

Layout: no header at all; every line is one output array, comma-separated,
starting with the array ID, then the time fields, then the values::

    213,2010,48,2200,240.21,98.007,.071,...     array 213: ID, year, day, HHMM, values
    111,2010,48,2359,247.41,11.359,...          a daily array interleaved with it
    101,2020,68,1935,0,26.86,12.94,12.94        array-compatible CSV: ... HHMM, seconds, values

* Time fields: year (4 digits, or 2 digits on the CR10: ``12`` is 2012,
  ``98`` is 1998), day of year (1-366), hour-minute as an unpadded integer
  (``5`` is 00:05, ``2400`` is midnight at the end of the day), and
  optionally seconds. Timestamps are logger-clock labels (naive), by
  Campbell's convention the END of the output interval; the file does not
  say, so ``timestamp_is_end_of_period`` is None.
* Several arrays interleave in one file, each its own table with its own
  width and interval. They are joined on the timestamp into one wide frame,
  so a slower array's channels are null at the faster array's timestamps.
* The file names no field. ``arrays`` maps an array ID to the names of the
  fields that follow the ID, in order, the time fields first (as the
  program's .DEF / final-storage labels list them)::

      arrays={"101": ["Year", "Day", "Hour_Minute", "Seconds",
                      "panel_temp", "battery_voltage", "battery_voltage_Min"]}

  The first three names are the year, day and hour-minute fields whatever
  they are called; a fourth name starting with ``Sec`` is the seconds
  field. Channels take the given names exactly (RECORD / RECNBR are not
  stored). An array without names is still read: its fields after
  year, day and HHMM become channels named ``A<id>_F<nn>`` (``nn`` the
  1-based field position in the line, so ``A213_F05`` is the first value),
  with a warning -- a seconds field there is read as a channel.
* Missing: the Edlog overrange values ``-6999`` / ``6999`` (low-resolution
  final storage saturates there) and ``-99999`` / ``99999`` (high
  resolution), ``NAN``, ``INF`` and empty fields become null -- whole fields
  only, so ``-6999.5`` and ``16999`` are numbers.
  Numbers may have no leading zero (``.071``, ``-.22``).
* Power loss leaves partially written records (``213,2010,49``): a line
  shorter than its array's usual width is dropped with a warning naming the
  line; a file of nothing but such fragments is an error. A last line
  without a line break is dropped with a warning too (its last number may be
  cut short: ``...,12.`` of ``...,12.93``) unless a separator ends it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers import campbell
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import read_bytes, source_name

FORMAT = "mixed_array"
SEPARATOR = ","
#: Edlog sentinels and LoggerNet's markers, matched against whole fields only
MISSING_MARKERS = (
    "-6999",
    "6999",
    "-99999",
    "99999",
    "NAN",
    "NaN",
    "nan",
    "INF",
    "-INF",
    "+INF",
    "",
)
#: fields before the values when no names are given: ID, year, day, HHMM
TIME_FIELDS = 3
#: how many warnings about dropped fragments are listed one by one
MAX_LISTED = 20
#: sniff: ID, year (2 or 4 digits), day of year, then anything
_SNIFF_LINE = re.compile(rb'^\d{1,4},(\d{2}|\d{4}),\d{1,3}(,[-+.\dEeNAIF" ]*)*$')
_OCCURRENCE = "__occurrence"


def sniff(head: bytes) -> bool:
    """True when every complete line of ``head`` looks like ``ID,year,day[,...]``."""
    lines = head.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if len(head) >= 8192 or not head.endswith((b"\n", b"\r")):
        lines = lines[:-1]  # the last line may be cut by the head's end
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return False
    for line in lines:
        if _SNIFF_LINE.match(line) is None:
            return False
        day = int(line.split(b",")[2])
        if not 1 <= day <= 366:
            return False
    return True


@dataclass
class _Array:
    """One array ID's complete records and how to read them."""

    array_id: str
    records: pl.DataFrame  # columns: row (0-based line index), line
    width: int = 0
    names: list[str] | None = None
    seconds: bool = False


def read_mixed_array(
    source: Source,
    *,
    name: str | None = None,
    arrays: Mapping[str, Sequence[str]] | None = None,
) -> ParseResult:
    """Read a mixed-array file into one :class:`ParseResult`.

    ``arrays`` maps array IDs to field names (see the module docstring).
    Channels carry ``attrs`` ``array_id`` and ``field`` (1-based position in
    the line); ``statistic`` and ``unit`` are None (the file says neither).
    ``meta.extra["arrays"]`` lists each array's width, rows and naming.
    """
    display = source_name(source, name)
    names_by_id = _normalise(arrays or {}, display)
    text = read_bytes(source).decode("ascii", errors="replace")
    if "\r" in text:
        # CR, LF and CRLF line ends, even mixed, each end one line
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = pl.Series("line", [text], dtype=pl.String).str.split("\n").explode()
    warnings: list[str] = []
    if lines.len() and lines[-1] == "":
        lines = lines.head(lines.len() - 1)
    elif lines.len() and lines[-1].strip():
        last = lines[-1].rstrip()
        if last.endswith(SEPARATOR):
            warnings.append(f"line {lines.len()}: no line break after the last line (kept)")
        else:
            # "...,1557,10" may be the start of "...,1557,1016": a file copied
            # while the logger writes it
            warnings.append(
                f"line {lines.len()}: truncated last line dropped (no line break, and its "
                f"last value {last.rsplit(SEPARATOR, 1)[-1][:24]!r} may be cut short, as in "
                "a file copied while the logger writes it; its next version brings the line)"
            )
            lines = lines.head(lines.len() - 1)
    table = (
        lines.to_frame()
        .with_row_index("row")
        .with_columns(
            id=pl.col("line").str.extract(r"^\s*(\d+)\s*(?:,|$)", 1),
            width=pl.col("line").str.count_matches(SEPARATOR, literal=True) + 1,
            blank=pl.col("line").str.strip_chars() == "",
        )
    )
    bad = table.filter(pl.col("id").is_null() & ~pl.col("blank"))
    if bad.height:
        row = int(bad.get_column("row")[0])
        raise ParseError(
            display,
            "expected an array ID (an integer) then a comma at the start of the line, "
            f"found {bad.get_column('line')[0][:40]!r}",
            line=row + 1,
        )
    table = table.filter(~pl.col("blank"))
    if table.height == 0:
        raise ParseError(display, "expected mixed-array records, found an empty file")

    found: list[_Array] = []
    fragments: list[tuple[int, str]] = []
    for (array_id,), group in table.group_by("id", maintain_order=True):
        key = str(array_id).lstrip("0") or "0"
        given = names_by_id.get(key)
        if given is not None:
            width = len(given) + 1
        else:
            # the usual width: partial writes are rarer than whole records
            counts = group.get_column("width").value_counts()
            width = int(counts.sort(["count", "width"], descending=True).item(0, "width"))
        too_wide = group.filter(pl.col("width") > width)
        if too_wide.height:
            expected = (
                f"{width} fields (the ID and {width - 1} names given)"
                if given is not None
                else f"{width} fields like most of its lines"
            )
            raise ParseError(
                display,
                f"array {key}: expected {expected}, found {int(too_wide.item(0, 'width'))}",
                line=int(too_wide.item(0, "row")) + 1,
            )
        short = (pl.col("width") < width) | (pl.col("width") < TIME_FIELDS + 2)
        fragments.extend(
            (int(r), str(ln)) for r, ln in group.filter(short).select("row", "line").iter_rows()
        )
        complete = group.filter(~short).select("row", "line")
        if complete.height:
            found.append(_Array(key, complete, width, list(given) if given else None))
    fragments.sort()
    for row, line in fragments[:MAX_LISTED]:
        warnings.append(
            f"line {row + 1}: partial record dropped ({line[:40]!r} is shorter than "
            "the other records of its array)"
        )
    if len(fragments) > MAX_LISTED:
        warnings.append(f"{len(fragments) - MAX_LISTED} more partial records dropped")
    if not found:
        row, line = fragments[0]
        raise ParseError(
            display,
            f"no complete mixed-array record: all {len(fragments)} lines are partial "
            f"writes ({line[:40]!r} has {line.count(SEPARATOR) + 1} fields; a record needs "
            "the array ID, year, day, hour-minute and values); the logger was probably "
            "interrupted while writing",
            line=row + 1,
        )

    frames: list[pl.DataFrame] = []
    channels: list[ChannelInfo] = []
    records: list[str] = []
    extra_arrays: dict[str, dict[str, object]] = {}
    for array in found:
        frame, array_channels = _read_array(array, display)
        if array.names is None:
            warnings.append(
                f"array {array.array_id}: no column names given; fields read as "
                f"A{array.array_id}_F05... (give arrays={{'{array.array_id}': [...]}} "
                "to name them)"
            )
        else:
            records.extend(n for n in array.names if n.strip().upper() in campbell.RECORD_NAMES)
        channels.extend(array_channels)
        frames.append(frame)
        extra_arrays[array.array_id] = {
            "fields": array.width,
            "rows": frame.height,
            "named": array.names is not None,
            "seconds_field": array.seconds,
        }
    _check_unique(channels, display)
    if len(frames) > 1:
        # arrays of different intervals share one frame: each channel exists
        # only at its own array's timestamps
        channels = [replace(c, sparse=True) for c in channels]
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            warnings=tuple(warnings),
            extra={"arrays": extra_arrays, "record_columns": tuple(records)},
        ),
        channels=tuple(channels),
        frame=_join(frames),
    )


def _normalise(arrays: Mapping[str, Sequence[str]], display: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, names in arrays.items():
        array_id = str(key).strip().lstrip("0") or "0"
        if not array_id.isdigit():
            raise ParseError(display, f"arrays: expected integer array IDs, found {key!r}")
        if isinstance(names, str):
            raise ParseError(display, f"arrays[{key!r}]: expected a list of names, not a string")
        names = [str(n) for n in names]
        if len(names) < TIME_FIELDS + 1:
            raise ParseError(
                display,
                f"arrays[{key!r}]: expected the year, day and hour-minute names followed by "
                f"at least one value name, found {names}",
            )
        seen: set[str] = set()
        for n in names:
            if not n.strip():
                raise ParseError(display, f"arrays[{key!r}]: empty column name in {names}")
            if n in seen:
                raise ParseError(display, f"arrays[{key!r}]: duplicate column name {n!r}")
            seen.add(n)
        out[array_id] = names
    return out


def _read_array(array: _Array, display: str) -> tuple[pl.DataFrame, list[ChannelInfo]]:
    """Parse one array's complete records into timestamp + value columns."""
    width = array.width
    time_count = TIME_FIELDS
    if array.names is not None and array.names[TIME_FIELDS].strip().lower().startswith("sec"):
        time_count += 1
        array.seconds = True
    channels: list[ChannelInfo] = []
    keep: list[tuple[str, str]] = []  # (field column, channel name)
    for pos in range(2 + time_count, width + 1):  # 1-based field positions
        if array.names is not None:
            channel = array.names[pos - 2]
            if channel.strip().upper() in campbell.RECORD_NAMES:
                continue
        else:
            channel = f"A{array.array_id}_F{pos:02d}"
        keep.append((f"f{pos}", channel))
        channels.append(ChannelInfo(name=channel, attrs={"array_id": array.array_id, "field": pos}))
    columns = [f"f{i}" for i in range(1, width + 1)]
    block = array.records.get_column("line").str.join("\n").item()
    try:
        numbers = pl.read_csv(
            io.BytesIO(block.encode("ascii", errors="replace")),
            has_header=False,
            new_columns=columns,
            schema_overrides={c: (pl.String if c == "f1" else pl.Float64) for c in columns},
            null_values=list(MISSING_MARKERS),
            quote_char='"',
            infer_schema=False,
            raise_if_empty=False,
        ).drop("f1")
    except pl.exceptions.PolarsError:
        raise _locate_bad_number(array, display) from None
    if numbers.height != array.records.height:  # pragma: no cover - blank lines were removed
        raise ParseError(display, f"array {array.array_id}: unreadable records")
    numbers = numbers.with_columns(pl.all().fill_nan(None))
    stamps = _timestamps(numbers, array, display, time_count)
    out = numbers.select(
        stamps.alias(TIMESTAMP), *[pl.col(col).alias(channel) for col, channel in keep]
    )
    return out, channels


def _timestamps(frame: pl.DataFrame, array: _Array, display: str, time_count: int) -> pl.Series:
    """Year, day of year, HHMM [, seconds] -> naive Datetime("us")."""
    year = frame.get_column("f2")
    day = frame.get_column("f3")
    hhmm = frame.get_column("f4")
    seconds = frame.get_column("f5") if time_count == 4 else pl.Series([0.0] * frame.height)
    checks = pl.DataFrame({"y": year, "d": day, "t": hhmm, "s": seconds}).with_columns(
        full_year=pl.when(pl.col("y") < 70)
        .then(pl.col("y") + 2000)
        .when(pl.col("y") < 100)
        .then(pl.col("y") + 1900)
        .otherwise(pl.col("y")),
        hour=(pl.col("t") // 100),
        minute=(pl.col("t") % 100),
    )
    leap = (pl.col("full_year") % 4 == 0) & (
        (pl.col("full_year") % 100 != 0) | (pl.col("full_year") % 400 == 0)
    )
    problems = [
        (
            pl.col("y").is_null() | (pl.col("y") != pl.col("y").floor()) | (pl.col("y") < 0),
            "a year",
            0,
        ),
        (
            pl.col("d").is_null()
            | (pl.col("d") != pl.col("d").floor())
            | (pl.col("d") < 1)
            | (pl.col("d") > pl.when(leap).then(366).otherwise(365)),
            "a day of year (1-365, 366 in leap years)",
            1,
        ),
        (
            pl.col("t").is_null()
            | (pl.col("t") != pl.col("t").floor())
            | (pl.col("t") < 0)
            | (pl.col("minute") >= 60)
            | (pl.col("hour") > 24)
            | ((pl.col("hour") == 24) & (pl.col("minute") != 0)),
            "an hour-minute value HHMM (0-2400)",
            2,
        ),
        (
            pl.col("s").is_null() | (pl.col("s") < 0) | (pl.col("s") >= 60),
            "seconds (0-59.999)",
            3,
        ),
    ]
    for condition, what, label in problems:
        bad = checks.select(condition.fill_null(True)).to_series()
        if bad.any():
            idx = int(bad.arg_max() or 0)
            names = array.names or []
            field_name = f" ({names[label]})" if label < len(names) else ""
            line = str(array.records.get_column("line")[idx])
            raise ParseError(
                display,
                f"array {array.array_id}: field {label + 2}{field_name}: expected {what}, "
                f"found {line.split(SEPARATOR)[label + 1].strip()!r}",
                line=int(array.records.get_column("row")[idx]) + 1,
            )
    micros = (pl.col("s") * 1_000_000).round(0).cast(pl.Int64)
    return checks.select(
        (
            pl.date(pl.col("full_year").cast(pl.Int32), 1, 1).cast(pl.Datetime("us"))
            + pl.duration(
                days=pl.col("d").cast(pl.Int64) - 1,
                hours=pl.col("hour").cast(pl.Int64),
                minutes=pl.col("minute").cast(pl.Int64),
                microseconds=micros,
            )
        ).alias(TIMESTAMP)
    ).to_series()


def _locate_bad_number(array: _Array, display: str) -> ParseError:
    """The first field that is not a number, with its line (error path only)."""
    width = array.width
    text = (
        array.records.get_column("line")
        .str.split_exact(SEPARATOR, width - 1)
        .struct.rename_fields([f"f{i}" for i in range(1, width + 1)])
        .struct.unnest()
        .drop("f1")
    )
    for column in text.columns:
        value = text.get_column(column).str.strip_chars(' \t"')
        bad = value.is_not_null() & ~value.is_in(MISSING_MARKERS)
        bad = bad & value.cast(pl.Float64, strict=False).is_null()
        if bad.any():
            idx = int(bad.arg_max() or 0)
            return ParseError(
                display,
                f"array {array.array_id}: field {column[1:]}: expected a number, "
                f"found {text.get_column(column)[idx][:40]!r}",
                line=int(array.records.get_column("row")[idx]) + 1,
            )
    return ParseError(display, f"array {array.array_id}: unreadable records")


def _check_unique(channels: list[ChannelInfo], display: str) -> None:
    seen: dict[str, str] = {}
    for c in channels:
        array_id = str(c.attrs["array_id"])
        if c.name in seen:
            raise ParseError(
                display,
                f"column name {c.name!r} is given for arrays {seen[c.name]} and {array_id}; "
                "names must be unique across the arrays of a file (prefix them with the array ID)",
            )
        seen[c.name] = array_id


def _join(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """One wide frame: arrays joined on timestamp (repeats paired in order)."""
    if len(frames) == 1:
        return frames[0]
    keyed = [
        f.with_columns(pl.int_range(pl.len()).over(TIMESTAMP).alias(_OCCURRENCE)) for f in frames
    ]
    out = keyed[0]
    for other in keyed[1:]:
        out = out.join(other, on=[TIMESTAMP, _OCCURRENCE], how="full", coalesce=True)
    return out.sort([TIMESTAMP, _OCCURRENCE]).drop(_OCCURRENCE)
