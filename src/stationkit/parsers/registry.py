"""The parser registry: an explicit dict of formats, and content sniffing.

Formats are recognised by their content, never by file extension. Sniffers
run in :data:`SNIFF_ORDER` (most specific first) over the first
:data:`~stationkit.parsers.sources.HEAD_BYTES` bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stationkit.errors import ParseError, UnknownFormatError
from stationkit.parsers import (
    ammonit,
    aq500,
    csi_ascii,
    csixml,
    delimited,
    kintech_wnd,
    mixed_array,
    molas,
    nrg_binary,
    nrg_logr,
    nrg_symphonie,
    scintec_mnd,
    toa5,
    toaci1,
    tob1,
    tob3,
    triton_csv,
    windcube_sta,
    windographer,
    windographer_flags,
    zephir_csv,
)
from stationkit.parsers.base import ParseResult, Source
from stationkit.parsers.sources import read_head, source_name


@dataclass(frozen=True)
class ParserSpec:
    """One registered format."""

    name: str
    description: str
    sniff: Callable[[bytes], bool]
    read: Callable[..., ParseResult]


PARSERS: dict[str, ParserSpec] = {
    spec.name: spec
    for spec in (
        ParserSpec(
            tob1.FORMAT, "Campbell Scientific TOB1 binary table", tob1.sniff, tob1.read_tob1
        ),
        ParserSpec(
            tob3.FORMAT, "Campbell Scientific TOB3 binary card file", tob3.sniff, tob3.read_tob3
        ),
        ParserSpec(
            nrg_binary.FORMAT,
            "NRG SymphoniePRO .rld / Symphonie .RWD raw binary (refused: convert with NRG software)",
            nrg_binary.sniff,
            nrg_binary.read_nrg_binary,
        ),
        ParserSpec(toa5.FORMAT, "Campbell Scientific TOA5 ASCII table", toa5.sniff, toa5.read_toa5),
        ParserSpec(
            toaci1.FORMAT,
            "Campbell Scientific TOACI1 ASCII table (older LoggerNet)",
            toaci1.sniff,
            toaci1.read_toaci1,
        ),
        ParserSpec(
            csixml.FORMAT,
            "Campbell Scientific CSIXML (LoggerNet XML table)",
            csixml.sniff,
            csixml.read_csixml,
        ),
        ParserSpec(
            nrg_symphonie.FORMAT,
            "NRG SymphoniePRO text export (Desktop, Export Service, NRG Cloud)",
            nrg_symphonie.sniff,
            nrg_symphonie.read_nrg_symphonie,
        ),
        ParserSpec(
            nrg_logr.FORMAT,
            "NRG LOGR statistics / one-second / diagnostics file (gzip too; .log = events)",
            nrg_logr.sniff,
            nrg_logr.read_nrg_logr,
        ),
        ParserSpec(
            kintech_wnd.FORMAT,
            "Kintech Engineering Atlas output data file (.wnd)",
            kintech_wnd.sniff,
            kintech_wnd.read_kintech_wnd,
        ),
        ParserSpec(
            windcube_sta.FORMAT,
            "Leosphere/Vaisala WindCube v1/v2 lidar statistics (.sta)",
            windcube_sta.sniff,
            windcube_sta.read_windcube_sta,
        ),
        ParserSpec(
            molas.FORMAT,
            "Movelaser Molas B300 lidar 10-minute statistics",
            molas.sniff,
            molas.read_molas,
        ),
        ParserSpec(
            zephir_csv.FORMAT,
            "ZephIR 300 (ZX Lidars) lidar CSV export",
            zephir_csv.sniff,
            zephir_csv.read_zephir_csv,
        ),
        ParserSpec(
            triton_csv.FORMAT,
            "Vaisala/Second Wind Triton sodar CSV export",
            triton_csv.sniff,
            triton_csv.read_triton_csv,
        ),
        ParserSpec(
            windographer_flags.FORMAT,
            "Windographer flagging log (flag periods, not readings)",
            windographer_flags.sniff,
            windographer_flags.refuse_readings,
        ),
        ParserSpec(
            windographer.FORMAT,
            "Windographer text data export",
            windographer.sniff,
            windographer.read_windographer,
        ),
        # loose text formats last: they claim less distinctive headers
        ParserSpec(
            ammonit.FORMAT,
            "Ammonit Meteo-40/40 Plus/42 statistics CSV",
            ammonit.sniff,
            ammonit.read_ammonit_csv,
        ),
        ParserSpec(
            mixed_array.FORMAT,
            "Campbell mixed-array (Edlog CR10/CR10X/CR23X) / LoggerNet array-compatible CSV",
            mixed_array.sniff,
            mixed_array.read_mixed_array,
        ),
        ParserSpec(
            csi_ascii.FORMAT,
            "Campbell headerless ASCII table data (needs [stations.<id>.parsers.csi_ascii] columns)",
            csi_ascii.sniff,
            csi_ascii.read_csi_ascii,
        ),
        ParserSpec(
            scintec_mnd.FORMAT,
            "Scintec sodar main-data file (.mnd, FORMAT-1)",
            scintec_mnd.sniff,
            scintec_mnd.read_scintec_mnd,
        ),
        ParserSpec(aq500.FORMAT, "AQSystem AQ500 sodar result file", aq500.sniff, aq500.read_aq500),
        # never sniffed: chosen by [stations.<id>.reader] for files no format claims
        ParserSpec(
            delimited.FORMAT,
            "Configurable delimited text ([stations.<id>.reader] in stations.toml)",
            delimited.sniff,
            delimited.read_delimited,
        ),
    )
}

#: sniffing order: binary and strongly-marked formats before loose text ones
SNIFF_ORDER: tuple[str, ...] = tuple(PARSERS)


def format_names() -> list[str]:
    return sorted(PARSERS)


def get_parser(fmt: str) -> ParserSpec:
    """The parser for ``fmt``; an unknown name lists the valid ones."""
    try:
        return PARSERS[fmt]
    except KeyError:
        raise ParseError(
            None, f"unknown format {fmt!r}; formats: {', '.join(format_names())}"
        ) from None


def sniff_format(head: bytes) -> str | None:
    """The format whose sniffer recognises ``head``, or None."""
    for fmt in SNIFF_ORDER:
        if PARSERS[fmt].sniff(head):
            return fmt
    return None


def detect_format(source: Source, *, name: str | None = None) -> str:
    """The format of ``source`` by content; a clear error when none fits."""
    head = read_head(source)
    fmt = sniff_format(head)
    if fmt is None:
        display = source_name(source, name)
        what = "an empty file" if not head else "a file no parser recognises"
        raise UnknownFormatError(
            display,
            f"{what}; formats stationkit reads: {', '.join(format_names())}",
        )
    return fmt


def parse_file(
    source: Source, *, fmt: str | None = None, name: str | None = None, **options: Any
) -> ParseResult:
    """Parse ``source`` with ``fmt`` or the sniffed format."""
    fmt = fmt or detect_format(source, name=name)
    return get_parser(fmt).read(source, name=name, **options)
