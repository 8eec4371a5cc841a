"""Campbell Scientific headerless "ASCII table data" files.

LoggerNet can store a table as bare comma-separated records with no header
line at all::

    "2020-03-08 19:35:00",0,26.86,12.94,12.94
    "2020-03-08 19:40:00",0,26.86,12.94,12.94

The data rules are TOA5's (quoted timestamp and strings, numbers unquoted,
``NAN`` / ``INF`` / empty missing), but the file names no column, so the
reader needs the names: ``columns``, one per field in file order, as the
TOA5 header of the same table would list them (``TIMESTAMP``, ``RECORD``,
then the values). The timestamp column must be called TIMESTAMP (or
TMSTAMP); RECORD / RECNBR is a counter and is not stored.

Timestamps are logger-clock labels (naive), by default the END of the
interval; the file does not say, so ``timestamp_is_end_of_period`` is None.
No units, no processing: ``unit`` and ``statistic`` are None. A UTF-8 BOM,
CRLF or LF, a missing final line break and a partially written last line
(dropped with a warning) are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stationkit.errors import ParseError
from stationkit.parsers.base import FileMeta, ParseResult, Source
from stationkit.parsers.sources import source_name
from stationkit.parsers.table import split_fields
from stationkit.parsers.toaci1 import read_campbell_block, sample_source

FORMAT = "csi_ascii"
HEADER_LINES = 0
#: a data line starts with a quoted timestamp, then a comma (or ends)
_FIRST_LINE = re.compile(rb'^"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d*)?)?"(,|\r|\n|$)')


def sniff(head: bytes) -> bool:
    """True when the file starts with a quoted Campbell timestamp field."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    return _FIRST_LINE.match(head) is not None


def read_csi_ascii(
    source: Source, *, name: str | None = None, columns: Sequence[str] | None = None
) -> ParseResult:
    """Read a headerless Campbell ASCII table file into a :class:`ParseResult`.

    ``columns`` names every field in order (e.g. ``["TIMESTAMP", "RECORD",
    "panel_temp", ...]``); without it the file cannot be read and a
    :class:`ParseError` says how to give it. Returns one Float64 channel per
    numeric column except the timestamp and record columns; quoted text
    columns are listed in ``meta.skipped_channels``.
    """
    display = source_name(source, name)
    if not columns:
        raise ParseError(
            display,
            "headerless Campbell ASCII table data: the file has no header line naming its "
            "columns; give the names of every field in order with columns=[...] "
            "(e.g. the field-name line of a TOA5 file of the same table: "
            '"TIMESTAMP", "RECORD", ...)',
        )
    if isinstance(columns, str):
        raise ParseError(display, "columns must be a list of names, not one string")
    names = [str(c) for c in columns]
    sample = sample_source(source)
    first = next(((i, ln) for i, ln in enumerate(sample.head_lines, 1) if ln.strip()), None)
    if first is not None:
        found = len(split_fields(first[1]))
        if found != len(names):
            raise ParseError(
                display,
                f"expected {len(names)} fields (one per name in columns), found {found}",
                line=first[0],
            )
    block = read_campbell_block(
        source, sample, display=display, names=names, names_line=None, header_lines=HEADER_LINES
    )
    extra: dict[str, object] = {"encoding": sample.encoding, "columns_given": True}
    if block.record_column is not None:
        extra["record_column"] = block.record_column
    return ParseResult(
        meta=FileMeta(
            format=FORMAT,
            skipped_channels=block.skipped,
            warnings=block.warnings,
            extra=extra,
        ),
        channels=block.channels,
        frame=block.frame,
    )
