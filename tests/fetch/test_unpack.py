"""Safe archive extraction: every kind, passwords, nesting, and each kind of
malicious archive refused with nothing left behind.

Archives are built here with the standard library and py7zr. zip encryption
cannot be written by zipfile: ZipCrypto and WinZip AES members are built by
small writers below (the spec's algorithms, on pycryptodomex), and the
embedded archives made by real tools (7-Zip 23 ``7zz -tzip -mem=...``, Info-ZIP
``zip -P``) check the reader against independent writers.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import hmac
import io
import lzma
import os
import stat
import struct
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import py7zr
import pytest
from Cryptodome.Cipher import AES
from Cryptodome.Util import Counter

from stationkit.atomic import TMP_PREFIX
from stationkit.errors import UnpackError
from stationkit.fetch import unpack
from stationkit.fetch.magic import archive_kind
from stationkit.fetch.unpack import DEFAULT_LIMITS, Limits, Member, detect_archive, extract_archive
from tests.conftest import CORPUS, corpus_files

PASSWORD = "S3cret!"
ENV = "SK_TEST_ARCHIVE_PASSWORD"
CSV = b"TIMESTAMP,WS_avg\n2024-01-01 00:10:00,5.25\n2024-01-01 00:20:00,6.5\n"

# ---------------------------------------------------------------- builders


@dataclass
class RawEntry:
    """One zip member written byte by byte (for what zipfile cannot write)."""

    name: str
    payload: bytes  # the member's data as stored (compressed, encrypted)
    method: int
    crc: int
    size: int  # declared uncompressed size
    flags: int = 0
    extra: bytes = b""
    external_attr: int = (stat.S_IFREG | 0o644) << 16


def raw_zip(entries: list[RawEntry]) -> bytes:
    out = io.BytesIO()
    central = b""
    for e in entries:
        offset = out.tell()
        name = e.name.encode()
        sizes = (e.crc, len(e.payload), e.size, len(name), len(e.extra))
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, e.flags, e.method, 0, 0x21, *sizes)
        out.write(local + name + e.extra + e.payload)
        entry = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            *(0x02014B50, 0x031E, 20, e.flags, e.method, 0, 0x21, *sizes),
            *(0, 0, 0, e.external_attr, offset),
        )
        central += entry + name + e.extra
    start = out.tell()
    n = len(entries)
    out.write(central)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), start, 0))
    return out.getvalue()


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def zipcrypto_entry(name: str, data: bytes, password: str, *, compress: bool = True) -> RawEntry:
    """Traditional PKWARE encryption (APPNOTE 6.1): the 12-byte header's last
    byte is the CRC's high byte, then the data, keyed by the password."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(b: int) -> None:
        keys[0] = (keys[0] >> 8) ^ CRC_TABLE[(keys[0] ^ b) & 0xFF]
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = (keys[2] >> 8) ^ CRC_TABLE[(keys[2] ^ (keys[1] >> 24)) & 0xFF]

    for b in password.encode():
        update(b)
    crc = zlib.crc32(data)
    plain = os.urandom(11) + bytes([crc >> 24]) + (deflate(data) if compress else data)
    enc = bytearray()
    for p in plain:
        t = (keys[2] | 2) & 0xFFFF
        enc.append(p ^ (((t * (t ^ 1)) >> 8) & 0xFF))
        update(p)
    return RawEntry(name, bytes(enc), 8 if compress else 0, crc, len(data), flags=1)


def aes_entry(
    name: str, data: bytes, password: str, *, strength: int = 3, declared: int | None = None
) -> RawEntry:
    """WinZip AE-2: PBKDF2-HMAC-SHA1 keys, AES-CTR (little-endian counter from
    1) over deflated data, 10-byte HMAC-SHA1 of the ciphertext."""
    key_len = 8 + 8 * strength
    salt = os.urandom(key_len // 2)
    dk = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 1000, 2 * key_len + 2)
    ctr = Counter.new(128, initial_value=1, little_endian=True)
    enc = AES.new(dk[:key_len], AES.MODE_CTR, counter=ctr).encrypt(deflate(data))
    mac = hmac.new(dk[key_len : 2 * key_len], enc, "sha1").digest()[:10]
    extra = struct.pack("<HHH2sBH", 0x9901, 7, 2, b"AE", strength, 8)
    size = len(data) if declared is None else declared
    return RawEntry(name, salt + dk[-2:] + enc + mac, 99, 0, size, flags=1, extra=extra)


def plain_entry(name: str, data: bytes, **kw: int) -> RawEntry:
    return RawEntry(name, deflate(data), 8, zlib.crc32(data), len(data), **kw)


def make_zip(path: Path, files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def make_7z(
    path: Path,
    files: dict[str, bytes],
    *,
    password: str | None = None,
    header_encryption: bool = False,
    plain_header: bool = False,
) -> Path:
    with py7zr.SevenZipFile(
        path, "w", password=password, header_encryption=header_encryption
    ) as sz:
        if plain_header:
            sz.set_encoded_header_mode(False)
        for name, data in files.items():
            sz.writestr(data, name)
    return path


def patch_7z_name(path: Path, old: str, new: str) -> None:
    """Rename a member in a 7z written with a plain header (py7zr refuses to
    write unsafe names) and fix the header CRCs."""
    assert len(old) == len(new)
    data = bytearray(path.read_bytes())
    o, n = old.encode("utf-16-le"), new.encode("utf-16-le")
    at = data.find(o)
    assert at > 0 and data.find(o, at + 1) < 0
    data[at : at + len(o)] = n
    next_offset, next_size = struct.unpack_from("<QQ", data, 12)
    start = 32 + next_offset
    struct.pack_into("<I", data, 28, zlib.crc32(data[start : start + next_size]))
    struct.pack_into("<I", data, 8, zlib.crc32(data[12:32]))
    path.write_bytes(bytes(data))


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def tar_special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


def extract(
    path: Path,
    dest: Path,
    *,
    password: str | None = None,
    max_member_bytes: int = 10**8,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Member]:
    return extract_archive(
        path,
        dest,
        password=password,
        password_env=ENV,
        max_member_bytes=max_member_bytes,
        name=path.name,
        limits=limits,
    )


def contents(members: list[Member]) -> dict[str, bytes]:
    return {m.name: m.path.read_bytes() for m in members}


def assert_nothing_left(dest: Path) -> None:
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(TMP_PREFIX)] == []


# Real tools' encrypted zips of CSV as data.csv (password PASSWORD), base64.
# 7zz a -tzip -mem=AES256 -mm=Deflate -p'S3cret!' Deflate-AES256.zip data.csv, etc.
REAL_ZIPS = {
    "7zip-aes256-deflate": (
        "UEsDBDMAAQBjAJdidl0AAAAAWgAAAEIAAAAIAAsAZGF0YS5jc3YBmQcAAgBBRQMIAIh9aXgbtjQjjQdrC9wUXkHRGMKASrqs"
        "xNv3sscQzym9g2QTGEnfYKBotgs+w0v09YvBIoDxcPKrNS9NC1AriOeiZV3ZHulTu1L0PMSUl5f435yrdyTDmwvv7FBLAQI/"
        "AzMAAQBjAJdidl0AAAAAWgAAAEIAAAAIAC8AAAAAAAAAIICkgQAAAABkYXRhLmNzdgoAIAAAAAAAAQAYANKgKOZ7et0BAAAA"
        "AAAAAAAAAAAAAAAAAAGZBwACAEFFAwgAUEsFBgAAAAABAAEAZQAAAIsAAAAAAA=="
    ),
    "7zip-aes128-lzma": (
        "UEsDBDMAAwBjAJdidl0AAAAAVgAAAEIAAAAIAAsAZGF0YS5jc3YBmQcAAgBBRQEAAIj7ztVZiC3ZFWTM89g3uQdZLwCi2ve5"
        "v8WmaS++2sfRvVmc50G1yb6lmVDRgY5PwNZcG5aLYtCWqqxrDAWWPTBI+wmF9ACmy/S6nAAW7TpA5JekRA9XUEsBAj8DMwAD"
        "AGMAl2J2XQAAAABWAAAAQgAAAAgALwAAAAAAAAAggKSBAAAAAGRhdGEuY3N2CgAgAAAAAAABABgA0qAo5nt63QEAAAAAAAAA"
        "AAAAAAAAAAAAAZkHAAIAQUUBAABQSwUGAAAAAAEAAQBlAAAAhwAAAAAA"
    ),
    "7zip-aes192-bzip2": (
        "UEsDBDMAAQBjAJdidl0AAAAAWgAAAEIAAAAIAAsAZGF0YS5jc3YBmQcAAgBBRQIAANX4pzrlHoGeOO6zattN1wPoxdgqt3Jt"
        "gqpU/BpeYRETwj8EhgAiRroc+wEd1X4vJ0WfCne4kSjBdYaVWI5KfCyrOiuaHQ/0sab27KR+EtI5WPDGNm9Yi3ZdF1BLAQI/"
        "AzMAAQBjAJdidl0AAAAAWgAAAEIAAAAIAC8AAAAAAAAAIICkgQAAAABkYXRhLmNzdgoAIAAAAAAAAQAYANKgKOZ7et0BAAAA"
        "AAAAAAAAAAAAAAAAAAGZBwACAEFFAgAAUEsFBgAAAAABAAEAZQAAAIsAAAAAAA=="
    ),
    "7zip-aes256-stored": (
        "UEsDBDMAAQBjAJdidl0AAAAAXgAAAEIAAAAIAAsAZGF0YS5jc3YBmQcAAgBBRQMAABKv/NOGrV1Gq3eOiRs4/fvSv3GsY2yW"
        "GLZEYbYengYdZjd5LMDPT2xA/NU4oq7beqpmDlXXfEFFRTV5HUckVCjMA+OoKmrOdeRRAkq+Z3CYKpme56d85VVnPeaHE6BQ"
        "SwECPwMzAAEAYwCXYnZdAAAAAF4AAABCAAAACAAvAAAAAAAAACCApIEAAAAAZGF0YS5jc3YKACAAAAAAAAEAGADSoCjme3rd"
        "AQAAAAAAAAAAAAAAAAAAAAABmQcAAgBBRQMAAFBLBQYAAAAAAQABAGUAAACPAAAAAAA="
    ),
    "7zip-zipcrypto": (
        "UEsDBBQAAQAIAJdidl23+AVXSgAAAEIAAAAIAAAAZGF0YS5jc3bnl1a849KEBeOud9GEI2NPN9cY1xmyLOqf6+wrBdzKlxY1"
        "jietiHtHgAahNYzKDnjOrbUmFUu4KEeGfGrTV/39s8MDT5ynHbbC/FBLAQI/AxQAAQAIAJdidl23+AVXSgAAAEIAAAAIACQA"
        "AAAAAAAAIICkgQAAAABkYXRhLmNzdgoAIAAAAAAAAQAYANKgKOZ7et0BAAAAAAAAAAAAAAAAAAAAAFBLBQYAAAAAAQABAFoA"
        "AABwAAAAAAA="
    ),
    "infozip-zipcrypto-descriptor": (
        "UEsDBBQACQAIAJdidl23+AVXPgAAAEIAAAAIABwAZGF0YS5jc3ZVVAkAAx3eAmsd3gJrdXgLAAEEAAAAAAQAAAAAeWOOmc0W"
        "B4tIVMQt5Gjw5LqUFCJpPK01hkkwz43pokt84NNlQo+5A3SIguzPmeWJMuO0RXjpSFWaQysJ0j5QSwcIt/gFVz4AAABCAAAA"
        "UEsBAh4DFAAJAAgAl2J2Xbf4BVc+AAAAQgAAAAgAGAAAAAAAAQAAAKSBAAAAAGRhdGEuY3N2VVQFAAMd3gJrdXgLAAEEAAAA"
        "AAQAAAAAUEsFBgAAAAABAAEATgAAAJAAAAAAAA=="
    ),
}


# ---------------------------------------------------------------- corpus

BUOY = "tsdat__tsdat__buoy.z06.00.20201201.000000.zip"
LIDAR = "tsdat__tsdat__lidar.z06.00.20201201.000000.sta.7z"
BUOY_SENSORS = {
    "conductivity": 5060, "currents": 83306, "gill": 5494, "gps": 6208, "pressure": 4334,
    "pyranometer": 4189, "rh": 4067, "surfacetemp": 4123, "temperature": 4209, "wind": 5481,
}  # fmt: skip


@pytest.mark.parametrize("archive", corpus_files("ARCHIVE"), ids=lambda p: p.name)
def test_every_corpus_archive_unpacks(archive: Path, tmp_path: Path) -> None:
    members = extract(archive, tmp_path / "out" / archive.name)
    assert members, "a corpus archive has members"
    for m in members:
        assert m.path.stat().st_size == m.size
        assert hashlib.sha256(m.path.read_bytes()).hexdigest() == m.sha256
        assert "__MACOSX" not in m.name and not m.name.split("/")[-1].startswith("._")
    if archive.name == BUOY:
        assert {m.name: m.size for m in members} == {
            f"buoy.z06.00.20201201.000000.{s}.csv": n for s, n in BUOY_SENSORS.items()
        }
        assert {m.kind for m in members} == {"zip"}
        wind = tmp_path / "out" / BUOY / "buoy.z06.00.20201201.000000.wind.csv"
        assert wind.read_bytes().startswith(b"DataTimeStamp,Horizontal Speed (m/s)")
        assert sorted(p.name for p in (tmp_path / "out" / BUOY).iterdir()) == sorted(
            m.name for m in members
        )
    elif archive.name == LIDAR:
        # named .7z, but an LZMA-alone stream of the Windcube .sta
        sta = CORPUS / "WINDCUBE_STA" / "tsdat__tsdat__lidar.z06.00.20201201.000000.sta"
        assert [(m.name, m.kind, m.size) for m in members] == [(sta.name, "lzma", 110100)]
        assert members[0].path.read_bytes() == sta.read_bytes()
        assert members[0].path.read_bytes().startswith(b"HeaderSize=40\nVersion=2.1.9\n")


def test_corpus_magic_has_no_false_positives() -> None:
    """No logger data file in the corpus is taken for an archive."""
    for path in sorted(CORPUS.rglob("*")):
        if path.is_file() and path.parent.name != "ARCHIVE" and path.name != "SOURCES.tsv":
            assert detect_archive(path) is None, path


# ---------------------------------------------------------------- detection


def test_detect_kinds(tmp_path: Path) -> None:
    samples = {
        "a.zip": make_zip(tmp_path / "a.zip", {"x": b"1"}).read_bytes(),
        "a.gz": gzip.compress(CSV, mtime=0),
        "a.xz": lzma.compress(CSV),
        "a.lzma": lzma.compress(CSV, format=lzma.FORMAT_ALONE),
        "a.bz2": bz2.compress(CSV),
        "empty.bz2": bz2.compress(b""),
    }
    make_7z(tmp_path / "a.7z", {"x": b"1"})
    make_tar(tmp_path / "a.tar", [("x", b"1")])
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    expect = {
        "a.zip": "zip", "a.gz": "gzip", "a.xz": "xz", "a.lzma": "lzma", "a.bz2": "bzip2",
        "empty.bz2": "bzip2", "a.7z": "7z", "a.tar": "tar",
    }  # fmt: skip
    assert {n: detect_archive(tmp_path / n) for n in expect} == expect


def test_detect_refuses_lookalikes() -> None:
    lzma_head = lzma.compress(CSV, format=lzma.FORMAT_ALONE)
    garbage = lzma_head[:13] + bytes([0]) + bytes(range(1, 200)) * 3
    assert archive_kind(lzma_head) == "lzma"
    assert archive_kind(garbage) is None  # plausible header, stream does not decode
    assert archive_kind(lzma_head[:13] + b"\x01" + lzma_head[14:]) is None
    assert archive_kind(b"BZh9 is not a bzip2 stream, just text\n") is None
    assert archive_kind(b"\x1f\x8b\x01" + bytes(30)) is None  # no deflate method byte
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("x")
        tf.addfile(info, io.BytesIO(b""))
    head = bytearray(tar.getvalue()[:512])
    assert archive_kind(bytes(head)) == "tar"
    head[0] ^= 1  # checksum no longer matches
    assert archive_kind(bytes(head)) is None
    assert archive_kind(b"TIMESTAMP,WS\n" * 50) is None


def test_not_an_archive(tmp_path: Path) -> None:
    p = tmp_path / "a.zip"
    p.write_bytes(CSV)
    with pytest.raises(UnpackError, match=r"a\.zip: not an archive"):
        extract(p, tmp_path / "out")
    assert_nothing_left(tmp_path / "out")


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
def test_zip_methods(method: int, tmp_path: Path) -> None:
    files = {"a.csv": CSV, "sub/dir/b.dat": bytes(range(256)) * 100, "empty.txt": b""}
    arc = make_zip(tmp_path / "a.zip", files, method)
    members = extract(arc, tmp_path / "out")
    assert contents(members) == files
    assert [m.name for m in members] == sorted(files)
    assert all(m.kind == "zip" and m.path.parent.is_relative_to(tmp_path / "out") for m in members)


def test_zip_skips_macos_junk_and_directories(tmp_path: Path) -> None:
    arc = tmp_path / "a.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("data/", b"")
        zf.writestr("data/a.csv", CSV)
        zf.writestr("__MACOSX/data/._a.csv", b"\x00\x05\x16\x07junk")
        zf.writestr("data/.DS_Store", b"junk")
        zf.writestr("._b.csv", b"junk")
    members = extract(arc, tmp_path / "out")
    assert contents(members) == {"data/a.csv": CSV}
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["a.csv", "data"]


@pytest.mark.parametrize(
    ("name", "data", "member"),
    [
        ("a.csv.gz", gzip.compress(CSV, mtime=0), "a.csv"),
        ("a.csv.GZ", gzip.compress(CSV, mtime=0), "a.csv"),
        ("a.csv.xz", lzma.compress(CSV), "a.csv"),
        ("a.csv.lzma", lzma.compress(CSV, format=lzma.FORMAT_ALONE), "a.csv"),
        ("a.sta.7z", lzma.compress(CSV, format=lzma.FORMAT_ALONE), "a.sta"),
        ("a.csv.bz2", bz2.compress(CSV), "a.csv"),
        ("a.csv.gz.~2~", gzip.compress(CSV, mtime=0), "a.csv"),  # a later version in raw/
        ("blob", lzma.compress(CSV), "blob"),  # no known suffix: the archive's name
        (
            "two.csv.gz",
            gzip.compress(CSV[:20], mtime=0) + gzip.compress(CSV[20:], mtime=0),
            "two.csv",
        ),
        ("two.csv.xz", lzma.compress(CSV[:20]) + b"\0" * 4 + lzma.compress(CSV[20:]), "two.csv"),
        ("two.csv.bz2", bz2.compress(CSV[:20]) + bz2.compress(CSV[20:]), "two.csv"),
    ],
    # ids from the name only: data in ids must be identical on every xdist worker
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_single_stream_names(name: str, data: bytes, member: str, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(data)
    members = extract(tmp_path / name, tmp_path / "out")
    assert contents(members) == {member: CSV}


def test_gzip_stored_name_only_without_a_suffix(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="M001_20240101.dat", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(CSV)
    (tmp_path / "upload.bin").write_bytes(buf.getvalue())
    (tmp_path / "site.dat.gz").write_bytes(buf.getvalue())
    assert contents(extract(tmp_path / "upload.bin", tmp_path / "o1")) == {"M001_20240101.dat": CSV}
    assert contents(extract(tmp_path / "site.dat.gz", tmp_path / "o2")) == {"site.dat": CSV}


def test_gzip_stored_name_cannot_escape(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="../../etc/evil", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(CSV)
    (tmp_path / "upload").write_bytes(buf.getvalue())
    assert contents(extract(tmp_path / "upload", tmp_path / "out")) == {"evil": CSV}


def test_tar_and_nested_compressed_tar(tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "logs.tar", [("d/a.dat", CSV), ("b.dat", b"")])
    assert contents(extract(tar, tmp_path / "o1")) == {"d/a.dat": CSV, "b.dat": b""}
    (tmp_path / "logs.tgz").write_bytes(gzip.compress(tar.read_bytes(), mtime=0))
    members = extract(tmp_path / "logs.tgz", tmp_path / "o2")
    assert contents(members) == {"logs.tar/d/a.dat": CSV, "logs.tar/b.dat": b""}
    assert {m.kind for m in members} == {"tar"}
    assert (tmp_path / "o2" / "logs.tar" / "d" / "a.dat").read_bytes() == CSV
    (tmp_path / "logs.tar.xz").write_bytes(lzma.compress(tar.read_bytes()))
    assert set(contents(extract(tmp_path / "logs.tar.xz", tmp_path / "o3"))) == {
        "logs.tar/d/a.dat",
        "logs.tar/b.dat",
    }


def test_7z_plain(tmp_path: Path) -> None:
    files = {"a.csv": CSV, "sub/b.bin": os.urandom(3000), "empty": b""}
    members = extract(make_7z(tmp_path / "a.7z", files), tmp_path / "out")
    assert contents(members) == files
    assert {m.kind for m in members} == {"7z"}


def test_nested_archives_flatten_into_named_folders(tmp_path: Path) -> None:
    inner = make_7z(
        tmp_path / "inner.7z", {"x.dat": CSV}, password=PASSWORD, header_encryption=True
    )
    tar = make_tar(tmp_path / "t.tar", [("t.dat", b"tar data")])
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("top.csv", CSV)
        zf.writestr("deep/inner.7z", inner.read_bytes())
        zf.writestr("t.tar.gz", gzip.compress(tar.read_bytes(), mtime=0))
        zf.writestr("__MACOSX/deep/._inner.7z", b"junk")
    members = extract(outer, tmp_path / "out", password=PASSWORD)
    assert contents(members) == {
        "top.csv": CSV,
        "deep/inner.7z/x.dat": CSV,
        "t.tar.gz/t.tar/t.dat": b"tar data",
    }
    assert {m.name: m.kind for m in members} == {
        "top.csv": "zip",
        "deep/inner.7z/x.dat": "7z",
        "t.tar.gz/t.tar/t.dat": "tar",
    }
    assert (tmp_path / "out" / "deep" / "inner.7z").is_dir()
    assert not [p for p in (tmp_path / "out").rglob(f"{TMP_PREFIX}*")]


def nest(tmp_path: Path, levels: int) -> Path:
    """data.csv zipped ``levels`` times."""
    data, name = CSV, "data.csv"
    for i in range(levels):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(name, data)
        data, name = buf.getvalue(), f"l{i}.zip"
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def test_nesting_up_to_the_limit(tmp_path: Path) -> None:
    members = extract(nest(tmp_path, 3), tmp_path / "out")
    assert contents(members) == {"l1.zip/l0.zip/data.csv": CSV}


# ---------------------------------------------------------------- passwords


@pytest.mark.parametrize("header_encryption", [False, True])
def test_7z_aes_right_wrong_and_missing_password(header_encryption: bool, tmp_path: Path) -> None:
    files = {"a.csv": CSV, "b/c.dat": os.urandom(5000)}
    arc = make_7z(
        tmp_path / "enc.7z", files, password=PASSWORD, header_encryption=header_encryption
    )
    dest = tmp_path / "out"
    with pytest.raises(UnpackError, match=rf"enc\.7z: wrong password .*{ENV}") as wrong:
        extract(arc, dest, password="not-it")
    assert PASSWORD not in str(wrong.value) and "not-it" not in str(wrong.value)
    assert_nothing_left(dest)
    with pytest.raises(UnpackError, match=rf"enc\.7z: .*encrypted.*{ENV} is not set"):
        extract(arc, dest, password=None)
    assert_nothing_left(dest)
    assert contents(extract(arc, dest, password=PASSWORD)) == files


def test_missing_password_without_password_env_says_what_to_configure(tmp_path: Path) -> None:
    arc = make_7z(tmp_path / "enc.7z", {"a": CSV}, password=PASSWORD)
    with pytest.raises(UnpackError, match=r"no password is configured.*password_env"):
        extract_archive(
            arc, tmp_path / "o", password=None, password_env=None, max_member_bytes=10**6, name="x"
        )


@pytest.mark.parametrize("fixture", sorted(REAL_ZIPS))
@pytest.mark.parametrize("chunk", [unpack.CHUNK, 7])
def test_real_encrypted_zips(
    fixture: str, chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unpack, "CHUNK", chunk)  # 7: every chunk boundary inside the data
    arc = tmp_path / f"{fixture}.zip"
    arc.write_bytes(base64.b64decode(REAL_ZIPS[fixture]))
    dest = tmp_path / "out"
    assert contents(extract(arc, dest, password=PASSWORD)) == {"data.csv": CSV}
    with pytest.raises(UnpackError, match=rf"wrong password for member 'data.csv' .*{ENV}"):
        extract(arc, tmp_path / "o2", password="s3cret!")
    assert_nothing_left(tmp_path / "o2")
    with pytest.raises(UnpackError, match=rf"encrypted and environment variable {ENV} is not set"):
        extract(arc, tmp_path / "o3", password=None)
    assert_nothing_left(tmp_path / "o3")


def test_zipcrypto_written_here(tmp_path: Path) -> None:
    big = b"".join(b"2024-01-01 00:%02d:00,%d\n" % (i % 60, i) for i in range(100_000))
    arc = tmp_path / "zc.zip"
    arc.write_bytes(
        raw_zip(
            [
                zipcrypto_entry("a.csv", CSV, PASSWORD),
                zipcrypto_entry("big.csv", big, PASSWORD),
                zipcrypto_entry("stored.bin", b"\x00\x01" * 100, PASSWORD, compress=False),
            ]
        )
    )
    assert contents(extract(arc, tmp_path / "out", password=PASSWORD)) == {
        "a.csv": CSV,
        "big.csv": big,
        "stored.bin": b"\x00\x01" * 100,
    }
    with pytest.raises(UnpackError, match="wrong password"):
        extract(arc, tmp_path / "o2", password="wrong")
    assert_nothing_left(tmp_path / "o2")


@pytest.mark.parametrize("strength", [1, 2, 3])
def test_aes_zip_large_member_in_many_chunks(strength: int, tmp_path: Path) -> None:
    big = os.urandom(1 << 16) * 40  # 2.6 MB: several CHUNKs of ciphertext
    arc = tmp_path / "aes.zip"
    arc.write_bytes(
        raw_zip([aes_entry("big.bin", big, PASSWORD, strength=strength), plain_entry("p", CSV)])
    )
    members = extract(arc, tmp_path / "out", password=PASSWORD)
    assert contents(members) == {"big.bin": big, "p": CSV}


def test_aes_zip_tampered_data_fails_authentication(tmp_path: Path) -> None:
    data = bytearray(raw_zip([aes_entry("a.csv", CSV, PASSWORD)]))
    data[30 + len("a.csv") + 11 + 16 + 2 + 3] ^= 0x40  # a ciphertext byte
    (tmp_path / "t.zip").write_bytes(bytes(data))
    with pytest.raises(UnpackError, match=r"wrong password .* or the encrypted data is corrupt"):
        extract(tmp_path / "t.zip", tmp_path / "out", password=PASSWORD)
    assert_nothing_left(tmp_path / "out")


def test_failure_keeps_the_previous_dest_and_success_replaces_it(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    good = make_zip(tmp_path / "good.zip", {"a.csv": CSV, "b.csv": CSV})
    bad = bytearray(good.read_bytes())
    at = bad.find(deflate(CSV))
    bad[at + 5] ^= 0xFF  # corrupt the FIRST member's data: the second was fine
    (tmp_path / "bad.zip").write_bytes(bytes(bad))
    with pytest.raises(UnpackError, match=r"bad\.zip: member 'a\.csv' is corrupt"):
        extract(tmp_path / "bad.zip", dest)
    assert sorted(p.name for p in dest.iterdir()) == ["old.txt"]
    extract(good, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["a.csv", "b.csv"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)] == []


def test_leftovers_of_a_crashed_extraction_are_removed(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    dead = int(proc.stdout)
    stale = tmp_path / f"{TMP_PREFIX}{dead}-0123abcd-out"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "half.csv").write_text("half")
    mine = tmp_path / f"{TMP_PREFIX}{os.getpid()}-0123abcd-out"  # a live process: kept
    mine.mkdir()
    extract(make_zip(tmp_path / "a.zip", {"a": CSV}), tmp_path / "out")
    assert not stale.exists() and mine.exists()


# ---------------------------------------------------------------- malicious archives

Builder = Callable[[Path], Path]


def _zip_named(name: str) -> Builder:
    def build(d: Path) -> Path:
        with zipfile.ZipFile(d / "evil.zip", "w") as zf:
            zf.writestr("ok.csv", CSV)
            zf.writestr(zipfile.ZipInfo(name), b"pwned")
        return d / "evil.zip"

    return build


def _zip_mode(mode: int) -> Builder:
    def build(d: Path) -> Path:
        (d / "evil.zip").write_bytes(
            raw_zip(
                [
                    plain_entry("ok.csv", CSV),
                    plain_entry("link", b"/etc/passwd", external_attr=mode << 16),
                ]
            )
        )
        return d / "evil.zip"

    return build


def _tar_with(info: tarfile.TarInfo | tuple[str, bytes]) -> Builder:
    return lambda d: make_tar(d / "evil.tar", [("ok.csv", CSV), info])


def _7z_named(bad: str) -> Builder:
    def build(d: Path) -> Path:
        placeholder = "q" * len(bad)
        p = make_7z(d / "evil.7z", {"ok.csv": CSV, placeholder: b"pwned"}, plain_header=True)
        patch_7z_name(p, placeholder, bad)
        return p

    return build


def _7z_symlink(d: Path) -> Path:
    (d / "link").symlink_to("/etc/passwd")
    (d / "ok.csv").write_bytes(CSV)
    with py7zr.SevenZipFile(d / "evil.7z", "w") as sz:
        sz.write(d / "ok.csv", "ok.csv")
        sz.write(d / "link", "link")
    return d / "evil.7z"


MALICIOUS: dict[str, tuple[Builder, str]] = {
    "zip absolute": (_zip_named("/tmp/evil"), r"member '/tmp/evil' refused: absolute"),
    "zip drive letter": (_zip_named("C:\\evil"), r"refused: absolute"),
    "zip dotdot": (_zip_named("../evil"), r"member '\.\./evil' refused: '\.\.' would escape"),
    "zip inner dotdot": (_zip_named("a/../../evil"), r"'\.\.' would escape"),
    "zip backslash dotdot": (_zip_named("..\\evil"), r"'\.\.' would escape"),
    "zip reserved name": (_zip_named(f"{TMP_PREFIX}x"), r"reserved"),
    "zip symlink": (_zip_mode(stat.S_IFLNK | 0o777), r"member 'link' refused: .*symbolic link"),
    "zip char device": (_zip_mode(stat.S_IFCHR | 0o644), r"character device"),
    "zip fifo": (_zip_mode(stat.S_IFIFO | 0o644), r"FIFO"),
    "tar absolute": (_tar_with(("/tmp/evil", b"x")), r"member '/tmp/evil' refused: absolute"),
    "tar dotdot": (_tar_with(("../evil", b"x")), r"'\.\.' would escape"),
    "tar symlink": (_tar_with(tar_special("l", tarfile.SYMTYPE, "/etc/passwd")), "symbolic link"),
    "tar hardlink": (_tar_with(tar_special("h", tarfile.LNKTYPE, "ok.csv")), "hard link"),
    "tar char device": (_tar_with(tar_special("c", tarfile.CHRTYPE)), "device file"),
    "tar block device": (_tar_with(tar_special("b", tarfile.BLKTYPE)), "device file"),
    "tar fifo": (_tar_with(tar_special("f", tarfile.FIFOTYPE)), "FIFO"),
    "7z dotdot": (_7z_named("../evil"), r"member '\.\./evil' refused: '\.\.' would escape"),
    "7z absolute": (_7z_named("/tmp/evil"), r"refused: absolute"),
    "7z symlink": (_7z_symlink, r"member 'link' refused: it is a link"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archive_refused(case: str, tmp_path: Path) -> None:
    build, message = MALICIOUS[case]
    src = tmp_path / "src"
    src.mkdir()
    arc = build(src)
    dest = tmp_path / "work" / "out"
    with pytest.raises(UnpackError, match=rf"^{arc.name}: .*{message}"):
        extract(arc, dest)
    assert_nothing_left(dest)
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["src", "work", arc.name] + (["link", "ok.csv"] if (src / "link").is_symlink() else [])
    )
    assert not Path("/tmp/evil").exists()


def test_unsupported_zip_method_is_named(tmp_path: Path) -> None:
    (tmp_path / "d64.zip").write_bytes(raw_zip([RawEntry("a.csv", b"\x00" * 10, 9, 0, 10)]))
    with pytest.raises(
        UnpackError, match=r"member 'a\.csv' uses zip compression method 9 \(Deflate64\)"
    ):
        extract(tmp_path / "d64.zip", tmp_path / "out")
    assert_nothing_left(tmp_path / "out")


def test_duplicate_and_clashing_names_refused(tmp_path: Path) -> None:
    (tmp_path / "dup.zip").write_bytes(raw_zip([plain_entry("a", CSV), plain_entry("a", b"x")]))
    with pytest.raises(UnpackError, match=r"member 'a' refused: it clashes"):
        extract(tmp_path / "dup.zip", tmp_path / "o1")
    (tmp_path / "clash.zip").write_bytes(raw_zip([plain_entry("a", CSV), plain_entry("a/b", b"x")]))
    with pytest.raises(UnpackError, match=r"member 'a/b' refused: it clashes"):
        extract(tmp_path / "clash.zip", tmp_path / "o2")
    assert_nothing_left(tmp_path / "o1")
    assert_nothing_left(tmp_path / "o2")


ZEROS = bytes(2 * 1024 * 1024)  # 2 MiB; compresses to a few kB


@pytest.mark.parametrize(
    "build",
    [
        lambda d: make_zip(d / "bomb.zip", {"ok": CSV, "zeros": ZEROS}),
        lambda d: make_7z(d / "bomb.7z", {"ok": CSV, "zeros": ZEROS}),
        lambda d: make_tar(d / "bomb.tar", [("ok", CSV), ("zeros", ZEROS)]),
    ],
    ids=["zip", "7z", "tar"],
)
def test_member_bomb_by_declared_size(build: Builder, tmp_path: Path) -> None:
    arc = build(tmp_path)
    with pytest.raises(UnpackError, match=r"member 'zeros' declares 2097152 bytes, more than max"):
        extract(arc, tmp_path / "out", max_member_bytes=1024 * 1024)
    assert_nothing_left(tmp_path / "out")


def test_lzma_alone_bomb_by_declared_size(tmp_path: Path) -> None:
    data = bytearray(lzma.compress(ZEROS, format=lzma.FORMAT_ALONE))
    data[5:13] = len(ZEROS).to_bytes(8, "little")  # xz writes -1 (unknown): declare it
    (tmp_path / "z.lzma").write_bytes(bytes(data))
    with pytest.raises(UnpackError, match=r"member 'z' declares 2097152 bytes"):
        extract(tmp_path / "z.lzma", tmp_path / "out", max_member_bytes=1024 * 1024)
    assert_nothing_left(tmp_path / "out")


@pytest.mark.parametrize("kind", ["gz", "xz", "bz2", "lzma"])
def test_member_bomb_counted_while_streaming(kind: str, tmp_path: Path) -> None:
    """Single-stream formats declare no trustworthy size: bytes are counted."""
    data = {
        "gz": gzip.compress(ZEROS, mtime=0),
        "xz": lzma.compress(ZEROS),
        "bz2": bz2.compress(ZEROS),
        "lzma": lzma.compress(ZEROS, format=lzma.FORMAT_ALONE),
    }[kind]
    (tmp_path / f"z.{kind}").write_bytes(data)
    with pytest.raises(UnpackError, match=r"member 'z' expands beyond max_member_bytes \(1048576"):
        extract(tmp_path / f"z.{kind}", tmp_path / "out", max_member_bytes=1024 * 1024)
    assert_nothing_left(tmp_path / "out")


def test_zip_lying_header_does_not_get_past(tmp_path: Path) -> None:
    """Header says 1000 bytes; the data inflates to 2 MiB."""
    (tmp_path / "lie.zip").write_bytes(
        raw_zip([RawEntry("zeros", deflate(ZEROS), 8, zlib.crc32(ZEROS), 1000)])
    )
    with pytest.raises(UnpackError, match=r"member 'zeros' is corrupt"):
        extract(tmp_path / "lie.zip", tmp_path / "out", max_member_bytes=1024 * 1024)
    assert_nothing_left(tmp_path / "out")


def test_aes_zip_lying_header_does_not_get_past(tmp_path: Path) -> None:
    (tmp_path / "lie.zip").write_bytes(
        raw_zip([aes_entry("zeros", ZEROS, PASSWORD, declared=1000)])
    )
    with pytest.raises(UnpackError, match=r"member 'zeros' expands beyond its declared size"):
        extract(tmp_path / "lie.zip", tmp_path / "out", password=PASSWORD)
    assert_nothing_left(tmp_path / "out")


SMALL_BUDGET = Limits(max_ratio=10, ratio_floor_bytes=0)


def test_ratio_bomb_by_declared_sizes(tmp_path: Path) -> None:
    files = {f"part{i:02d}": bytes(200_000) for i in range(20)}  # each under max_member_bytes
    arc = make_zip(tmp_path / "ratio.zip", files)
    with pytest.raises(UnpackError, match=r"ratio\.zip: the archive declares 4000000 bytes"):
        extract(arc, tmp_path / "out", limits=SMALL_BUDGET)
    assert_nothing_left(tmp_path / "out")
    assert len(extract(arc, tmp_path / "out")) == 20  # within the default ratio floor


def test_ratio_bomb_counted_while_streaming(tmp_path: Path) -> None:
    (tmp_path / "r.gz").write_bytes(gzip.compress(ZEROS, mtime=0))
    with pytest.raises(UnpackError, match=r"r\.gz: expands to more than \d+ bytes"):
        extract(tmp_path / "r.gz", tmp_path / "out", limits=SMALL_BUDGET)
    assert_nothing_left(tmp_path / "out")


def test_nested_bomb_counts_every_level(tmp_path: Path) -> None:
    """42.zip style: each level declares little, the total is what counts."""
    inner = make_zip(tmp_path / "inner.zip", {f"z{i}": bytes(300_000) for i in range(4)})
    outer = make_zip(tmp_path / "outer.zip", {f"i{i}.zip": inner.read_bytes() for i in range(4)})
    limits = Limits(max_ratio=200, ratio_floor_bytes=0)
    with pytest.raises(UnpackError, match=r"outer\.zip: .*(declares|expands to more than)"):
        extract(outer, tmp_path / "out", limits=limits)
    assert_nothing_left(tmp_path / "out")


def test_too_deep_nesting_refused(tmp_path: Path) -> None:
    arc = nest(tmp_path, 4)
    with pytest.raises(
        UnpackError,
        match=r"l3\.zip: member 'l2\.zip/l1\.zip/l0\.zip' is a zip archive nested deeper",
    ):
        extract(arc, tmp_path / "out")
    assert_nothing_left(tmp_path / "out")


def test_too_many_members_refused(tmp_path: Path) -> None:
    arc = make_zip(tmp_path / "many.zip", {f"f{i}": b"x" for i in range(6)})
    with pytest.raises(UnpackError, match=r"more than 5 members"):
        extract(arc, tmp_path / "out", limits=Limits(max_members=5))
    assert_nothing_left(tmp_path / "out")


def test_memory_stays_bounded_for_a_large_member(tmp_path: Path) -> None:
    """A 48 MiB member moves through in CHUNK-sized pieces."""
    size = 48 * 1024 * 1024
    with gzip.open(tmp_path / "big.dat.gz", "wb", compresslevel=1) as gz:
        block = b"2024-01-01 00:00:00,1.0,2.0,3.0\n" * 32768
        for _ in range(size // len(block)):
            gz.write(block)
    tracemalloc.start()
    try:
        members = extract(tmp_path / "big.dat.gz", tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert members[0].size == size
    assert peak < 8 * unpack.CHUNK, peak
