"""Archive kinds by magic bytes (never by extension).

The checks are strict enough that a logger data file is not mistaken for an
archive: gzip needs its deflate method byte, bzip2 its block (or end of
stream) magic, tar a valid header checksum, LZMA-alone a plausible header,
the range coder's leading zero byte and a start that decodes.
"""

from __future__ import annotations

import lzma

#: kind -> leading magic bytes
MAGIC: tuple[tuple[str, bytes], ...] = (
    ("zip", b"PK\x03\x04"),
    ("zip", b"PK\x05\x06"),  # empty zip
    ("7z", b"7z\xbc\xaf\x27\x1c"),
    ("gzip", b"\x1f\x8b\x08"),  # 8 = deflate, the only method RFC 1952 defines
    ("xz", b"\xfd7zXZ\x00"),
)

#: every kind archive_kind returns
ARCHIVE_KINDS = ("zip", "7z", "gzip", "xz", "bzip2", "lzma", "tar")

#: how many leading bytes archive_kind needs (and uses) to decide every kind
HEAD_BYTES = 512

#: LZMA-alone/xz decoders may not use more memory than this: a forged header
#: could otherwise ask for a 1.5 GiB dictionary (xz -9 needs 65 MiB)
LZMA_MEMLIMIT = 1 << 30

_BZ2_BLOCK = b"\x31\x41\x59\x26\x53\x59"  # pi: a compressed block
_BZ2_EOS = b"\x17\x72\x45\x38\x50\x90"  # sqrt(pi): end of stream (empty input)


def _is_bzip2(head: bytes) -> bool:
    return (
        head.startswith(b"BZh")
        and len(head) >= 10
        and head[3:4] in b"123456789"
        and head[4:10] in (_BZ2_BLOCK, _BZ2_EOS)
    )


def _is_tar(head: bytes) -> bool:
    """POSIX ustar or GNU tar header with a valid checksum."""
    if len(head) < 512 or head[257:262] != b"ustar":
        return False
    field = head[148:156].replace(b"\x00", b" ").strip()
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    block = head[:148] + b" " * 8 + head[156:512]
    # tar writers disagree on signed vs unsigned bytes; accept either sum
    unsigned = sum(block)
    signed = unsigned - 256 * sum(1 for b in block if b > 127)
    return stored in (unsigned, signed)


def _is_lzma_alone(head: bytes) -> bool:
    """LZMA-alone (.lzma) header: properties byte, dictionary size, size.

    The properties byte is lc + lp*9 + pb*45 <= 224 (0x5D for the usual
    lc=3 lp=0 pb=2); the dictionary size is a power of two or 2^n + 2^(n-1);
    the uncompressed size is -1 (unknown) or plausible; the first byte of
    the range-coded data (offset 13) is always 0; and the first bytes decode.
    """
    if len(head) < 14 or head[0] > 224 or head[13] != 0:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    if dict_size < 4096:
        return False
    ok_dict = any(dict_size in (1 << n, (1 << n) | (1 << (n - 1))) for n in range(12, 31))
    size = int.from_bytes(head[5:13], "little")
    if not (ok_dict and (size == 0xFFFFFFFFFFFFFFFF or size < 1 << 40)):
        return False
    # the header alone is weak evidence: the start of the stream must decode
    try:
        lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT).decompress(
            head[:HEAD_BYTES], max_length=HEAD_BYTES
        )
    except lzma.LZMAError:
        return False
    return True


def archive_kind(head: bytes) -> str | None:
    """'zip', '7z', 'gzip', 'xz', 'bzip2', 'lzma', 'tar' or None.

    ``head`` is the file's first bytes; pass at least :data:`HEAD_BYTES`
    (tar is recognised at offset 257 and checked over 512 bytes). Only the
    first HEAD_BYTES are looked at, so every caller gets the same answer.
    """
    head = head[:HEAD_BYTES]
    for kind, magic in MAGIC:
        if head.startswith(magic):
            return kind
    if _is_bzip2(head):
        return "bzip2"
    if _is_tar(head):
        return "tar"
    if _is_lzma_alone(head):
        return "lzma"
    return None
