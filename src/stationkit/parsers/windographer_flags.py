"""Windographer flagging logs: which data columns were flagged, when, and why.

Not readings: a flagging log feeds the flags store (calibrate stage), so
:func:`read_windographer_flags` returns :class:`FlagPeriod` values, not a
ParseResult. :func:`sniff` lets the pipeline recognise a log and route it;
:func:`refuse_readings` is what the readings registry calls for one (it
raises :class:`~stationkit.errors.NotReadingsError`, so the file is recorded
as skipped rather than failed).

Layout: one tab-separated header line, then one line per flagged period::

    Data Column<TAB>Flag Name<TAB>Start Time<TAB>End Time<TAB>Time Steps
    Spd80mN<TAB>Installation<TAB>2016-01-09 15:30<TAB>2016-01-09 17:10<TAB>10

* ``Data Column`` is the column label exactly as in the Windographer data
  file; ``Flag Name`` the user's flag (Icing, Installation, Invalid, ...).
* Times are ``YYYY-MM-DD HH:MM`` (seconds and ``/`` date separators are also
  accepted), in the data set's own time labels (naive). The period is
  half-open: ``End Time`` is the label of the first time step after it
  (10 steps of 10 min from 15:30 end at 17:10).
* ``Time Steps`` (the number of time steps flagged) is optional; empty or
  absent gives None.
* UTF-8 BOM, CRLF / LF / CR and a missing final line break are accepted;
  blank lines are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stationkit.errors import NotReadingsError, ParseError
from stationkit.parsers.base import ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines

FORMAT = "windographer_flags"
SEPARATOR = "\t"
COLUMN, FLAG, START, END, STEPS = (
    "Data Column",
    "Flag Name",
    "Start Time",
    "End Time",
    "Time Steps",
)
REQUIRED = (COLUMN, FLAG, START, END)
TIME_FORMATS = (
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
)


@dataclass(frozen=True)
class FlagPeriod:
    """One flagged period of one data column: [start, end) in data-set time."""

    column: str
    flag: str
    start: datetime
    end: datetime
    time_steps: int | None


def sniff(head: bytes) -> bool:
    """True when the first line is a flagging log header."""
    text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    first = split_lines(text[:4096])[:1]
    if not first:
        return False
    fields = [f.strip().lower() for f in first[0].split(SEPARATOR)]
    return fields[:2] == [COLUMN.lower(), FLAG.lower()]


def read_windographer_flags(source: Source, *, name: str | None = None) -> list[FlagPeriod]:
    """Read a Windographer flagging log into flag periods, in file order."""
    display = source_name(source, name)
    text, _ = decode(read_bytes(source))
    lines = split_lines(text)
    if not lines or not lines[0].strip():
        raise ParseError(
            display,
            f"expected a header line {SEPARATOR.join((*REQUIRED, STEPS))!r}, found an empty line",
            line=1,
        )
    header = [f.strip().lower() for f in lines[0].split(SEPARATOR)]
    positions: dict[str, int] = {}
    for wanted in (*REQUIRED, STEPS):
        if wanted.lower() in header:
            positions[wanted] = header.index(wanted.lower())
    missing = [c for c in REQUIRED if c not in positions]
    if missing:
        raise ParseError(
            display,
            f"expected the columns {', '.join(REQUIRED)} (tab-separated) in the header, "
            f"missing {', '.join(missing)}; found {lines[0][:80]!r}",
            line=1,
        )
    needed = max(positions[c] for c in REQUIRED) + 1
    periods: list[FlagPeriod] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(SEPARATOR)
        if len(fields) < needed:
            raise ParseError(
                display,
                f"expected {needed} tab-separated fields, found {len(fields)}",
                line=number,
            )
        column = fields[positions[COLUMN]].strip()
        flag = fields[positions[FLAG]].strip()
        if not column or not flag:
            what = COLUMN if not column else FLAG
            raise ParseError(display, f"expected a {what}, found an empty field", line=number)
        start = _time(fields[positions[START]], START, display, number)
        end = _time(fields[positions[END]], END, display, number)
        if end < start:
            raise ParseError(
                display,
                f"expected {END} ({end:%Y-%m-%d %H:%M}) not before "
                f"{START} ({start:%Y-%m-%d %H:%M})",
                line=number,
            )
        steps: int | None = None
        if STEPS in positions and positions[STEPS] < len(fields):
            steps_text = fields[positions[STEPS]].strip()
            if steps_text:
                if not steps_text.isdigit():
                    raise ParseError(
                        display,
                        f"expected a whole number of {STEPS}, found {steps_text!r}",
                        line=number,
                    )
                steps = int(steps_text)
        periods.append(FlagPeriod(column, flag, start, end, steps))
    return periods


def refuse_readings(source: Source, *, name: str | None = None, **_: object) -> ParseResult:
    """Registry entry: a flagging log holds flag periods, not readings."""
    raise NotReadingsError(
        source_name(source, name),
        "a Windographer flagging log holds flag periods, not readings; "
        "it is loaded into the flags store (read_windographer_flags)",
    )


def _time(text: str, what: str, display: str, line: int) -> datetime:
    value = text.strip()
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ParseError(
        display, f"expected {what} like 2016-01-09 15:30, found {text[:40]!r}", line=line
    )
