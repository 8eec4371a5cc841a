"""Sniffing: every corpus file is recognised as its own format (content only)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from stationkit.errors import ParseError, UnknownFormatError
from stationkit.parsers import PARSERS, detect_format, get_parser
from stationkit.parsers.registry import sniff_format
from stationkit.parsers.sources import read_head
from tests.conftest import CORPUS

#: corpus folder -> the format every file in it must be sniffed as
EXPECTED = {
    "TOA5": "toa5",
    "TOB1": "tob1",
    "TOB3": "tob3",
    "NRG_SYMPRO_TXT": "nrg_symphonie",
    "NRG_LOGR_DAT": "nrg_logr",
    "NRG_RLD": "nrg_binary",
    "NRG_RWD": "nrg_binary",
    "KINTECH_WND": "kintech_wnd",
    "WINDCUBE_STA": "windcube_sta",
    "ZX_ZEPHIR_CSV": "zephir_csv",
    "TRITON_CSV": "triton_csv",
    "TOACI1": "toaci1",
    "CSIXML": "csixml",
    "CSI_ASCII_NOHEADER": "csi_ascii",
    "MIXED_ARRAY": "mixed_array",
    "LIDAR_MOLAS": "molas",
    "SODAR_SCINTEC_MND": "scintec_mnd",
    "SODAR_AQ500": "aq500",
}
#: single files whose folder holds more than one format
EXPECTED_FILES = {
    "WINDOGRAPHER_TXT/brightwind-dev__brightwind__windographer_demo_data1.txt": "windographer",
    "WINDOGRAPHER_TXT/brightwind-dev__brightwind__windographer_flagging_log.txt": "windographer_flags",
}
#: folders whose files no reader may claim (not readings, or not supported)
UNCLAIMED = (
    "ARCHIVE",
    "CRBASIC_PROGRAM",
    "CSI_TDF",
    "IEA43_JSON",
    "WLS70_BUFR",
)


def files_of(folders: dict[str, str] | tuple[str, ...]) -> list[tuple[Path, str | None]]:
    out: list[tuple[Path, str | None]] = []
    for folder in folders:
        expected = folders[folder] if isinstance(folders, dict) else None
        out.extend((p, expected) for p in sorted((CORPUS / folder).iterdir()) if p.is_file())
    return out


@pytest.mark.parametrize(
    ("path", "fmt"),
    files_of(EXPECTED) + [(CORPUS / rel, fmt) for rel, fmt in EXPECTED_FILES.items()],
    ids=lambda v: getattr(v, "name", v),
)
def test_corpus_files_are_sniffed_as_their_format(path: Path, fmt: str) -> None:
    assert fmt in PARSERS
    assert sniff_format(read_head(path)) == fmt


@pytest.mark.parametrize(("path", "fmt"), files_of(UNCLAIMED), ids=lambda v: getattr(v, "name", v))
def test_other_files_are_not_claimed(path: Path, fmt: None) -> None:
    assert sniff_format(read_head(path)) is None


def test_extension_is_never_trusted(tmp_path: Path) -> None:
    fake = tmp_path / "looks_like.dat"
    fake.write_bytes(b"just some words, not a logger table\n")
    with pytest.raises(
        UnknownFormatError,
        match=r"looks_like\.dat: a file no parser recognises; formats stationkit reads: ",
    ):
        detect_format(fake)


def test_empty_file_is_named_as_such() -> None:
    with pytest.raises(
        UnknownFormatError, match=r"x\.dat: an empty file; formats stationkit reads"
    ):
        detect_format(io.BytesIO(b""), name="x.dat")


def test_unknown_format_name_lists_the_valid_ones() -> None:
    with pytest.raises(ParseError, match=r"unknown format 'toa6'; formats: .*nrg_logr.*toa5"):
        get_parser("toa6")
