"""Untrusted text made safe to print: file names from a drop folder or an SFTP
server, archive member names, messages that embed them.

A name may hold any character but ``/`` and NUL, a line break included; printed
raw into a failure summary, a log file or the ``on_failure`` command's stdin it
would forge lines. :func:`show_name` escapes every control, format and
line-separator character the way Python's ``repr`` does (``\\n``, ``\\r``,
``\\t``, ``\\x1b``, ``\\u2028``), and undecodable bytes kept as surrogates
(``\\udc80``) as ``\\x80``. Printable text, other scripts included, is left as
it is. JSON output needs none of this: ``json.dumps`` escapes by itself.
"""

from __future__ import annotations

import logging
import unicodedata

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape: the raw byte
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    # Cc controls (C0, DEL, C1), Cf format (bidi overrides), Zl/Zp separators, Cs surrogates
    return ch < " " or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")


def show_name(text: str) -> str:
    """``text`` with every character that could break or fake a line escaped."""
    if text.isprintable() and "\x7f" not in text:
        return text  # the common case: nothing to do
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


class SafeFormatter(logging.Formatter):
    """A log formatter that escapes the message (not the traceback it may carry):
    one log record is one line, whatever names the message holds."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = show_name(record.message)
        return super().formatMessage(record)
