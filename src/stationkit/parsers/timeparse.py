"""Turning logger timestamp text into polars Datetime columns.

Loggers write many layouts. :func:`parse_timestamps` finds the one a column
uses from its values, never from one sample alone:

* ISO (``2024-04-03 12:00:00``, ``T`` separator, fractional seconds with
  trimmed zeros ``.01`` / ``.005``), slashes, dots, with or without seconds;
* day-first against month-first for ``01/02/2016`` is decided by the values
  (a field over 12 settles it; otherwise the reading whose consecutive steps
  are regular and small wins) and can be forced with ``dayfirst``;
* a zone on every value (``Z``, ``+00:00``, ``-05:00``) makes the result
  UTC instants (``Datetime("us", "UTC")``); otherwise labels stay naive.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import polars as pl

from stationkit.errors import ParseError

_ZONE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")

#: candidate layouts, most common first; %.f accepts missing or trimmed fractions
ISO_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d %H:%M",
)
DAYFIRST_FORMATS = (
    "%d/%m/%Y %H:%M:%S%.f",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S%.f",
    "%d.%m.%Y %H:%M",
    "%d-%m-%Y %H:%M:%S%.f",
    "%d-%m-%Y %H:%M",
)
MONTHFIRST_FORMATS = (
    "%m/%d/%Y %H:%M:%S%.f",
    "%m/%d/%Y %H:%M",
    "%m-%d-%Y %H:%M:%S%.f",
    "%m-%d-%Y %H:%M",
)


def _try(values: pl.Series, fmt: str) -> pl.Series | None:
    try:
        out = values.str.strptime(pl.Datetime("us"), fmt, strict=True, exact=True)
    except pl.exceptions.PolarsError:
        return None
    return out


def _candidates(bare: pl.Series, formats: tuple[str, ...]) -> Iterator[str]:
    """The layouts that read a sample of the values (every layout when none
    does), one at a time: a wrong layout fails on the sample cheaply, and the
    caller stops at the first ISO layout that reads everything."""
    sample = pl.concat([bare.head(64), bare.tail(64)]).drop_nulls()
    found = False
    for fmt in formats:
        if sample.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True).null_count() == 0:
            found = True
            yield fmt
    if not found:
        yield from formats


def _spread(ts: pl.Series) -> float:
    """How irregular a candidate reading is: span of steps, bigger is worse."""
    if ts.len() < 2:
        return 0.0
    diffs = ts.diff().drop_nulls().dt.total_seconds()
    if diffs.len() == 0:
        return 0.0
    negatives = float((diffs < 0).sum())
    largest = diffs.abs().max()
    return negatives * 1e12 + (float(largest) if isinstance(largest, (int, float)) else 0.0)


def parse_timestamps(
    values: pl.Series,
    *,
    name: str,
    first_line: int,
    formats: Sequence[str] | None = None,
    dayfirst: bool | None = None,
) -> tuple[pl.Series, list[str]]:
    """Parse timestamp text; return (Datetime series, warnings).

    ``first_line`` is the file line of ``values[0]`` so an error can name the
    line of the first value that fits no layout.
    """
    warnings: list[str] = []
    text = values.cast(pl.String).str.strip_chars()
    if text.len() == 0:
        return pl.Series(values.name, [], dtype=pl.Datetime("us")), warnings
    zones = text.str.extract(_ZONE.pattern, 1)
    has_zone = zones.is_not_null()
    if has_zone.all():
        bare = text.str.replace(_ZONE.pattern, "").str.strip_chars()
        offsets = _offset_seconds(zones)
    elif has_zone.any():
        row = int((~has_zone).arg_max() or 0)
        raise ParseError(
            name,
            f"expected a time zone suffix like the other timestamps, found {text[row]!r}",
            line=first_line + row,
        )
    else:
        bare, offsets = text, None

    if formats is None:
        if dayfirst is True:
            formats = ISO_FORMATS + DAYFIRST_FORMATS
        elif dayfirst is False:
            formats = ISO_FORMATS + MONTHFIRST_FORMATS
        else:
            formats = ISO_FORMATS + DAYFIRST_FORMATS + MONTHFIRST_FORMATS
    parsed: list[tuple[str, pl.Series]] = []
    for fmt in _candidates(bare, tuple(formats)):
        out = _try(bare, fmt)
        if out is not None:
            parsed.append((fmt, out))
            if fmt in ISO_FORMATS or dayfirst is not None:
                break
    if not parsed:
        raise _first_unparsable(bare, tuple(_candidates(bare, tuple(formats))), name, first_line)
    fmt, result = parsed[0]
    if len(parsed) > 1:
        # ambiguous day/month order: keep the reading whose steps are regular
        fmt, result = min(parsed, key=lambda p: _spread(p[1]))
        warnings.append(
            f"line {first_line}: day/month order of {text[0]!r} is ambiguous; "
            f"read as {fmt!r} (the reading with regular steps); set dayfirst to force it"
        )
    if offsets is not None:
        shifted = pl.DataFrame({"t": result, "o": offsets}).select(
            (pl.col("t") - pl.duration(seconds=pl.col("o"))).dt.replace_time_zone("UTC")
        )
        result = shifted.to_series()
    return result.alias(values.name), warnings


def _offset_seconds(zones: pl.Series) -> pl.Series:
    """Seconds east of UTC for each zone suffix (``Z`` is 0)."""
    z = pl.col("z")
    sign = pl.when(z.str.starts_with("-")).then(-1).otherwise(1)
    magnitude = (
        z.str.slice(1, 2).cast(pl.Int64, strict=False) * 3600
        + z.str.slice(3, 2).cast(pl.Int64, strict=False) * 60
    )
    frame = pl.DataFrame({"z": zones.str.replace(":", "")}).select(
        pl.when(z == "Z").then(0).otherwise(sign * magnitude).alias("s")
    )
    return frame.get_column("s")


def _first_unparsable(
    bare: pl.Series, formats: Sequence[str], name: str, first_line: int
) -> ParseError:
    """The error for the first value that does not fit the column's layout.

    The layout is the first one that reads the first value; a value in
    another layout (or in none) is the one reported.
    """
    for fmt in formats:
        out = bare.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True)
        if out[0] is not None:
            row = int(out.is_null().arg_max() or 0)
            return ParseError(
                name,
                f"expected a timestamp in the layout of the first one ({fmt}), found {bare[row]!r}",
                line=first_line + row,
            )
    return ParseError(
        name,
        f"expected a timestamp like 2024-01-31 23:50:00, found {bare[0]!r}",
        line=first_line,
    )


def parse_timestamps_first_fit(
    values: pl.Series, *, name: str, first_line: int, formats: Sequence[str]
) -> tuple[pl.Series, list[str]]:
    """A format's own layouts first, then any ISO or day-first one; never month
    first. The first layout that reads every value wins (no ambiguity scoring)."""
    return parse_timestamps(
        values,
        name=name,
        first_line=first_line,
        formats=(*formats, *ISO_FORMATS, *DAYFIRST_FORMATS),
        dayfirst=True,
    )
