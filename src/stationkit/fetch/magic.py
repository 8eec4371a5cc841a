"""Archive kinds by magic bytes (never by extension)."""

from __future__ import annotations

#: kind -> leading magic bytes
MAGIC: tuple[tuple[str, bytes], ...] = (
    ("zip", b"PK\x03\x04"),
    ("zip", b"PK\x05\x06"),  # empty zip
    ("7z", b"7z\xbc\xaf\x27\x1c"),
    ("gzip", b"\x1f\x8b"),
    ("xz", b"\xfd7zXZ\x00"),
    ("bzip2", b"BZh"),
)


def _is_lzma_alone(head: bytes) -> bool:
    """LZMA-alone (.lzma) header: properties byte, dictionary size, size.

    The properties byte is lc + lp*9 + pb*45 <= 224 (0x5D for the usual
    lc=3 lp=0 pb=2); the dictionary size is a power of two or 2^n + 2^(n-1);
    the uncompressed size is -1 (unknown) or plausible.
    """
    if len(head) < 13 or head[0] > 224:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    if dict_size < 4096:
        return False
    ok_dict = any(dict_size in (1 << n, (1 << n) | (1 << (n - 1))) for n in range(12, 31))
    size = int.from_bytes(head[5:13], "little")
    return ok_dict and (size == 0xFFFFFFFFFFFFFFFF or size < 1 << 40)


def archive_kind(head: bytes) -> str | None:
    """'zip', '7z', 'gzip', 'xz', 'bzip2', 'lzma', 'tar' or None."""
    for kind, magic in MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if _is_lzma_alone(head):
        return "lzma"
    return None
