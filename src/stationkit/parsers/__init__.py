"""Parsers: one module per logger file format, an explicit registry, sniffing."""

from stationkit.parsers.base import ChannelInfo, FileMeta, ParseResult
from stationkit.parsers.registry import PARSERS, detect_format, get_parser, parse_file

__all__ = [
    "PARSERS",
    "ChannelInfo",
    "FileMeta",
    "ParseResult",
    "detect_format",
    "get_parser",
    "parse_file",
]
