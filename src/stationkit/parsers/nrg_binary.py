"""NRG Systems raw logger binaries: SymphoniePRO ``.rld`` and Symphonie ``.RWD``.

Both are vendor binaries whose readings stationkit cannot decode (the
``.rld`` payload is compressed and can be encrypted with a site password;
``.RWD`` data can be PIN-encrypted and needs the logger's scaling). This
module recognises them by content, so they are never mistaken for text,
and :func:`read_nrg_binary` always raises a
:class:`~stationkit.errors.ParseError` that says how to convert them:

* ``.rld`` (SymphoniePRO): NRG SymphoniePRO Desktop Application or NRG
  Cloud exports it to text, which :mod:`stationkit.parsers.nrg_symphonie`
  reads.
* ``.RWD`` (Symphonie, Symphonie PLUS / PLUS3): NRG Symphonie Data Retriever
  (SDR) converts it to ``.txt``.

Signatures (first bytes of real files; no extension is looked at):

* ``.rld``: byte 0 is ``0x02``, bytes 2-4 are zero, and bytes 6-9 are a
  big-endian Unix time of the file start within 2014..2100
  (``02 04 00 00 00 2c 62 70 b6 d1`` = 2022-05-03 05:00:01 UTC).
* ``.RWD``: a binary 16-byte file header, then at 0x21 the site position as
  ASCII (``N04551281W064282690``), and from 0x40 channel records of 0x30
  bytes that start with a small sensor-type code and a 20-character
  space-padded ASCII description (``\\x01NRG Class1 60m``).

Neither rule matches text, TOB1/TOB3 (which start with ASCII ``"TOB``),
zip (``PK``), 7z or gzip files.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from stationkit.errors import ParseError
from stationkit.parsers.base import ParseResult, Source
from stationkit.parsers.sources import HEAD_BYTES, read_head, source_name

FORMAT = "nrg_binary"
RLD_FIRST_BYTE = 0x02
#: plausible file start times of a SymphoniePRO .rld (the logger came out in 2014)
RLD_EPOCH_MIN = int(datetime(2014, 1, 1, tzinfo=UTC).timestamp())
RLD_EPOCH_MAX = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
RWD_POSITION_OFFSET = 0x21
RWD_POSITION = re.compile(rb"[NS]\d{7,9}[EW]\d{8,10}")
RWD_CHANNELS_OFFSET = 0x40
RWD_CHANNEL_SIZE = 0x30
RWD_DESCRIPTION_SIZE = 20
#: other formats' magic numbers, never claimed
FOREIGN_MAGICS = (
    b'"TOB',
    b"TOB",
    b"PK\x03\x04",
    b"7z\xbc\xaf\x27\x1c",
    b"\x1f\x8b",
    b"\xef\xbb\xbf",
)

RLD_MESSAGE = (
    "NRG SymphoniePRO raw data file (.rld): a compressed, optionally password-encrypted "
    "vendor binary that stationkit cannot read. Convert it to a text export with NRG "
    "SymphoniePRO Desktop Application or NRG Cloud (with the site password if it has one); "
    "stationkit reads that .txt export (format nrg_symphonie)"
)
RWD_MESSAGE = (
    "NRG Symphonie / Symphonie PLUS / PLUS3 raw data file (.RWD): a vendor binary "
    "(optionally PIN-encrypted) that stationkit cannot read. Convert it to .txt with NRG "
    "Symphonie Data Retriever (SDR), with the site PIN if it has one"
)


def sniff(head: bytes) -> bool:
    """True for a SymphoniePRO ``.rld`` or a Symphonie ``.RWD`` by its first bytes."""
    return kind(head) is not None


def kind(head: bytes) -> str | None:
    """``"rld"``, ``"rwd"`` or None for the first bytes of a file."""
    if head.startswith(FOREIGN_MAGICS):
        return None
    if _is_rld(head):
        return "rld"
    if _is_rwd(head):
        return "rwd"
    return None


def read_nrg_binary(source: Source, *, name: str | None = None) -> ParseResult:
    """Refuse an NRG raw binary with a :class:`ParseError` that says how to convert it.

    Never returns: ``.rld`` and ``.RWD`` readings can only be decoded by
    NRG's software. A file that is neither raises a ParseError saying so.
    """
    display = source_name(source, name)
    head = read_head(source, HEAD_BYTES)
    found = kind(head)
    if found == "rld":
        raise ParseError(display, RLD_MESSAGE)
    if found == "rwd":
        raise ParseError(display, RWD_MESSAGE)
    raise ParseError(
        display,
        f"expected an NRG .rld or .RWD raw binary, found first bytes {head[:8].hex(' ')!r}",
    )


def _is_rld(head: bytes) -> bool:
    if len(head) < 16 or head[0] != RLD_FIRST_BYTE or head[2:5] != b"\x00\x00\x00":
        return False
    started = int.from_bytes(head[6:10], "big")
    return RLD_EPOCH_MIN <= started <= RLD_EPOCH_MAX


def _is_rwd(head: bytes) -> bool:
    if len(head) < RWD_CHANNELS_OFFSET + 4 * RWD_CHANNEL_SIZE:
        return False
    if not any(b < 0x09 or 0x0E <= b < 0x20 or b >= 0x80 for b in head[:16]):
        return False  # text, not a binary header
    position = RWD_POSITION.match(head, RWD_POSITION_OFFSET) is not None
    records = sum(_is_channel_record(head, i) for i in range(4))
    return (position and records >= 1) or records >= 3


def _is_channel_record(head: bytes, index: int) -> bool:
    start = RWD_CHANNELS_OFFSET + index * RWD_CHANNEL_SIZE
    code = head[start]
    text = head[start + 1 : start + 1 + RWD_DESCRIPTION_SIZE]
    return code < 0x10 and all(0x20 <= b < 0x7F for b in text) and bool(text.strip())
