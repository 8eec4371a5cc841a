"""NRG raw binaries (.rld, .RWD): recognised by content and refused with how to convert."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest

from stationkit.errors import ParseError
from stationkit.parsers import nrg_binary, nrg_logr, nrg_symphonie
from stationkit.parsers.nrg_binary import kind, read_nrg_binary, sniff
from tests.conftest import CORPUS, corpus_files

RLD = corpus_files("NRG_RLD")
RWD = corpus_files("NRG_RWD")
NRG_BINARY_FOLDERS = {"NRG_RLD", "NRG_RWD"}


@pytest.mark.parametrize("path", RLD, ids=lambda p: p.name)
def test_rld_is_recognised_and_refused(path: Path) -> None:
    head = path.read_bytes()[:8192]
    assert sniff(head)
    assert kind(head) == "rld"
    with pytest.raises(
        ParseError, match=r"\.rld\): .*SymphoniePRO Desktop Application or NRG Cloud"
    ):
        read_nrg_binary(path)


@pytest.mark.parametrize("path", RWD, ids=lambda p: p.name)
def test_rwd_is_recognised_and_refused(path: Path) -> None:
    head = path.read_bytes()[:8192]
    assert sniff(head)
    assert kind(head) == "rwd"
    with pytest.raises(ParseError, match=r"\.RWD\): .*Symphonie Data Retriever \(SDR\)"):
        read_nrg_binary(path)


def test_file_like_input_names_the_member() -> None:
    data = RLD[0].read_bytes()
    with pytest.raises(ParseError, match=r"^site\.rld: NRG SymphoniePRO raw data file"):
        read_nrg_binary(io.BytesIO(data), name="site.rld")
    stream = io.BytesIO(RWD[0].read_bytes())
    with pytest.raises(ParseError, match="Symphonie Data Retriever"):
        read_nrg_binary(stream)


def test_rld_header_time_is_the_file_start() -> None:
    # bytes 6..9 big-endian: 2022-05-03 05:00:01 UTC, 00:00 at the site (file name 2022-05-03_00.00)
    head = RLD[0].read_bytes()[:16]
    assert int.from_bytes(head[6:10], "big") == 1651554001


def test_text_readers_do_not_claim_binaries() -> None:
    for path in RLD + RWD:
        head = path.read_bytes()[:8192]
        assert not nrg_symphonie.sniff(head), path.name
        assert not nrg_logr.sniff(head), path.name


def test_sniff_rejects_every_other_corpus_file() -> None:
    others = [
        p
        for folder in sorted(CORPUS.iterdir())
        if folder.is_dir() and folder.name not in NRG_BINARY_FOLDERS
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    assert len(others) > 20
    for path in others:
        assert not sniff(path.read_bytes()[:8192]), path.name


def _zip_of(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("member.rld", data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x02",
        b'"TOB1","1234","CR1000X","5678","CR1000X.Std.08.01","CPU:x.CR1X","1234","Table"\r\n',
        b'"TOB3","1234","CR1000X"' + bytes(200),
        gzip.compress(RLD[0].read_bytes())[:8192],
        gzip.compress(RWD[0].read_bytes())[:8192],
        _zip_of(RLD[0].read_bytes())[:8192],
        b"7z\xbc\xaf\x27\x1c" + RLD[0].read_bytes()[:8000],
        # 0x02 and zero bytes, but no plausible start time
        b"\x02\x04\x00\x00\x00\x2c\x00\x00\x00\x01" + bytes(100),
        # RWD-like offsets in a text file
        (b"x" * 0x40 + (b"\nNRG Class1 60m       " + b" " * 26) * 4),
    ],
    ids=[
        "empty",
        "one-byte",
        "tob1",
        "tob3",
        "gzip-rld",
        "gzip-rwd",
        "zip",
        "7z",
        "no-epoch",
        "text",
    ],
)
def test_sniff_rejects_other_binaries_and_text(head: bytes) -> None:
    assert not sniff(head)


def test_reader_refuses_what_is_not_nrg_binary() -> None:
    with pytest.raises(ParseError, match=r"^<stream>: expected an NRG \.rld or \.RWD raw binary"):
        read_nrg_binary(io.BytesIO(b"Timestamp\tCh1\n"))


def test_format_constant() -> None:
    assert nrg_binary.FORMAT == "nrg_binary"
