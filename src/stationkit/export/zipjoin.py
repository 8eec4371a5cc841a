"""Zip files assembled from independently compressed pieces.

A member's data is a run of DEFLATE *segments*, one per piece of text (a
month of an export), each compressed by a fresh compressor and ended with a
sync flush (byte-aligned, not final), then one empty final block. Segments
never refer back into each other, so a segment compressed once can be copied
into the next zip as it is: re-exporting a station after one new day
compresses one month, not years. The CRC-32 of a member is combined from
its segments' CRCs (:func:`crc32_combine`) without reading their text again.

Members are written with ZIP64 sizes and offsets always (fixed header sizes,
no size limit), fixed times and modes, and no data descriptors: the same
pieces give the same bytes, and every common unzip tool reads them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO

#: the empty final block that ends a member's DEFLATE stream (fixed Huffman, EOB)
FINAL_BLOCK = b"\x03\x00"
_CRC_POLY = 0xEDB88320
_ZIP64_VERSION = 45
_UNIX = 3
_ATTRS = 0o644 << 16


@dataclass(frozen=True)
class Segment:
    """One compressed piece of a member: its bytes' length, text length, CRC."""

    compressed: int
    size: int
    crc: int


def compress(text: bytes) -> tuple[bytes, Segment]:
    """``text`` as a self-contained, byte-aligned, non-final DEFLATE segment."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15, 9)
    data = c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH)
    return data, Segment(len(data), len(text), zlib.crc32(text))


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (bit-reflected; ``a`` nonzero)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1


def _x2n_table() -> list[int]:
    """x^(2^n) modulo the polynomial, n = 0..31."""
    table = []
    p = 1 << 30  # x^1
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return table


_X2N = _x2n_table()


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A + B from crc(A), crc(B) and len(B) [bytes] (zlib's
    method: multiply crc(A) by x^(8 len(B)) modulo the polynomial)."""
    if len2 <= 0:
        return crc1
    p = 1 << 31  # x^0
    k = 3  # 2^3 bits per byte
    n = len2
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


def member_totals(segments: Sequence[Segment]) -> Segment:
    """Compressed length (with the final block), text length and CRC of a member."""
    crc = 0
    size = 0
    compressed = len(FINAL_BLOCK)
    for s in segments:
        crc = crc32_combine(crc, s.crc, s.size)
        size += s.size
        compressed += s.compressed
    return Segment(compressed, size, crc)


def _dos_time(t: datetime) -> tuple[int, int]:
    t = max(t, datetime(1980, 1, 1))
    return (
        (t.hour << 11) | (t.minute << 5) | (t.second // 2),
        ((t.year - 1980) << 9) | (t.month << 5) | t.day,
    )


class ZipWriter:
    """Writes members one after the other: :meth:`begin`, data, :meth:`end`."""

    def __init__(self, fh: IO[bytes], created: datetime) -> None:
        self.fh = fh
        self.time, self.date = _dos_time(created)
        self.entries: list[tuple[bytes, int, Segment]] = []

    def begin(self, name: str, totals: Segment) -> int:
        """Write the local header of a member; returns where its data starts."""
        raw = name.encode("utf-8")
        offset = self.fh.tell()
        extra = struct.pack("<HHQQ", 1, 16, totals.size, totals.compressed)
        self.fh.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                _ZIP64_VERSION,
                0x0800,  # UTF-8 names
                8,  # deflate
                self.time,
                self.date,
                totals.crc,
                0xFFFFFFFF,
                0xFFFFFFFF,
                len(raw),
                len(extra),
            )
            + raw
            + extra
        )
        self.entries.append((raw, offset, totals))
        return self.fh.tell()

    def end_member(self) -> None:
        self.fh.write(FINAL_BLOCK)

    def close(self) -> None:
        """Write the central directory and the (ZIP64) end records."""
        start = self.fh.tell()
        for raw, offset, t in self.entries:
            extra = struct.pack("<HHQQQ", 1, 24, t.size, t.compressed, offset)
            self.fh.write(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    (_UNIX << 8) | _ZIP64_VERSION,
                    _ZIP64_VERSION,
                    0x0800,
                    8,
                    self.time,
                    self.date,
                    t.crc,
                    0xFFFFFFFF,
                    0xFFFFFFFF,
                    len(raw),
                    len(extra),
                    0,
                    0,
                    0,
                    _ATTRS,
                    0xFFFFFFFF,
                )
                + raw
                + extra
            )
        end = self.fh.tell()
        n = len(self.entries)
        self.fh.write(
            struct.pack(
                "<IQHHIIQQQQ",
                0x06064B50,
                44,
                (_UNIX << 8) | _ZIP64_VERSION,
                _ZIP64_VERSION,
                0,
                0,
                n,
                n,
                end - start,
                start,
            )
        )
        self.fh.write(struct.pack("<IIQI", 0x07064B50, 0, end, 1))
        self.fh.write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                min(n, 0xFFFF),
                min(n, 0xFFFF),
                min(end - start, 0xFFFFFFFF),
                0xFFFFFFFF,
                0,
            )
        )
