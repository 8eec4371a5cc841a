"""Reading a parser's source: a path or a binary file-like, and text decoding.

Readers accept either, so archive members parse without extraction.
Line splitting recognises exactly CRLF, LF and lone CR -- never the other
characters :meth:`str.splitlines` treats as breaks (form feed, U+2028, ...),
which can appear inside logger strings.
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

from stationkit.parsers.base import Source

#: How many bytes the sniffer looks at.
HEAD_BYTES = 8192

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def source_name(source: Source, name: str | None = None) -> str:
    """The name to show in messages for ``source``."""
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


def read_bytes(source: Source) -> bytes:
    """The whole content of ``source``."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).read_bytes()
    data = source.read()
    if not isinstance(data, bytes):
        raise TypeError("readers take a path or a binary file-like object")
    return data


def read_head(source: Source, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of ``source``; a file-like is rewound after."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return fh.read(size)
    pos = source.tell()
    head = source.read(size)
    source.seek(pos)
    return head


def decode(data: bytes, preferred: tuple[str, ...] = ()) -> tuple[str, str]:
    """Decode logger text; return (text, encoding used).

    A BOM decides (UTF-8, UTF-16); else the ``preferred`` encodings a format
    declares, then strict UTF-8, then Windows-1252, then Latin-1 (which never
    fails, so the caller always gets text; wrong guesses show as odd unit
    strings, never as lost numbers, because numbers are ASCII).
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for encoding in (*preferred, "utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def split_lines(text: str) -> list[str]:
    """Split on CRLF, LF or CR only; a final line break adds no empty line."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines
