"""Safe archive extraction: zip, 7z, gzip, xz, LZMA-alone, bzip2 and tar.

:func:`extract_archive` writes the members of one archive into a folder and
returns what it wrote. The archive's kind comes from its magic bytes, never
from its name (a corpus file named ``*.sta.7z`` is a bare LZMA-alone stream).
Archives inside archives are extracted in turn, up to :attr:`Limits.max_depth`
levels; a nested archive becomes a folder named like it, so its members are
named ``inner.7z/x.dat`` (the intermediate archive's bytes are not kept).

Formats
    zip: stored, deflate, bzip2, lzma; ZipCrypto and WinZip AES (AE-1, AE-2:
    PBKDF2-HMAC-SHA1 + AES-CTR + HMAC-SHA1, decrypted with pycryptodomex,
    which py7zr already requires). 7z: everything py7zr reads, including
    AES-256 with encrypted headers. gzip, xz, bzip2 and LZMA-alone hold one
    stream: their single member is named after the archive minus its
    compression suffix (``a.csv.gz`` -> ``a.csv``, ``a.tgz`` -> ``a.tar``);
    gzip's stored file name (FNAME) is used only when the archive's name has
    no such suffix (the station's name for a file is kept: FNAME is often a
    logger's temporary name), else the archive's own name. A version suffix
    ``.~2~`` (how raw/ keeps later versions) is ignored. tar: regular files
    only.

Safety
    Refused, with an :class:`~stationkit.errors.UnpackError` naming the
    archive and the member: absolute names, ``..``, symlinks, hard links,
    devices, FIFOs, sockets, duplicate or clashing names, members declared
    or found (bytes are counted while streaming) to exceed
    ``max_member_bytes``, a total expansion beyond
    ``max(Limits.max_ratio * archive size, Limits.ratio_floor_bytes)``,
    more than :attr:`Limits.max_members` members, nesting deeper than
    :attr:`Limits.max_depth`. macOS junk (``__MACOSX/``, ``._*``,
    ``.DS_Store``) is skipped. Files are created fresh (``O_EXCL``,
    ``O_NOFOLLOW``, mode 0644: archive permissions are not applied).

Atomicity
    Everything is written into a temporary folder beside ``dest``, every
    file and folder fsynced, and the folder renamed onto ``dest`` only when
    the whole archive succeeded. A failure (a wrong password included)
    leaves nothing behind.

Memory stays bounded whatever the member size: data moves in chunks of
:data:`CHUNK` bytes (py7zr decodes up to 128 MB at a time internally).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import hmac
import logging
import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path, PurePosixPath
from typing import IO

import py7zr
import py7zr.exceptions
import py7zr.io
from Cryptodome.Cipher import AES
from Cryptodome.Util import Counter

from stationkit.atomic import TMP_PREFIX, committing, fsync_dir, temp_path, temp_tail
from stationkit.errors import UnpackError
from stationkit.fetch.magic import HEAD_BYTES, LZMA_MEMLIMIT, archive_kind

log = logging.getLogger(__name__)

#: bytes moved per read/write while streaming a member
CHUNK = 1 << 20

_JUNK_DIRS = frozenset({"__MACOSX"})
_JUNK_FILES = frozenset({".DS_Store"})

#: single-stream kinds: archive-name suffix -> what replaces it in the member name
_SUFFIXES: dict[str, dict[str, str]] = {
    "gzip": {".gz": "", ".gzip": "", ".tgz": ".tar", ".taz": ".tar"},
    "xz": {".xz": "", ".txz": ".tar"},
    "lzma": {".lzma": "", ".tlz": ".tar", ".7z": ""},  # loggers name LZMA-alone '.7z'
    "bzip2": {".bz2": "", ".bz": "", ".tbz": ".tar", ".tbz2": ".tar"},
}

#: raw/ keeps later versions of a file as 'name.~2~' (GNU backup numbering)
_BACKUP_SUFFIX = re.compile(r"\.~\d+~$")

_ZIP_AES = 99  # compression method of a WinZip AES member
#: zip compression methods read: stored, deflate, bzip2, lzma, WinZip AES
_ZIP_METHODS = frozenset({0, 8, 12, 14, _ZIP_AES})
_ZIP_METHOD_NAMES = {1: "shrink", 6: "implode", 9: "Deflate64", 93: "zstd", 95: "xz", 98: "PPMd"}
_ZIP_AES_EXTRA = 0x9901
_ZIP_ENCRYPTED = 0x1
_ZIP_STRONG_ENCRYPTION = 0x40


@dataclass(frozen=True)
class Limits:
    """Bounds that stop archive bombs; the defaults suit logger archives."""

    #: archive levels: 1 = no nesting; a tar.gz inside a zip is 3
    max_depth: int = 3
    #: total bytes written may reach this many times the archive's size...
    max_ratio: int = 1000
    #: ...or this many bytes, whichever is larger (tiny archives of
    #: constant data legitimately compress better than max_ratio)
    ratio_floor_bytes: int = 64 * 1024**2
    #: files extracted from one archive, nested ones included
    max_members: int = 100_000


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Member:
    """One extracted file."""

    #: relative POSIX path inside the archive chain, e.g. 'inner.7z/x.dat'
    name: str
    #: where it was written (below ``dest``)
    path: Path
    #: [bytes]
    size: int
    sha256: str
    #: kind of the archive it came out of: 'zip', '7z', 'gzip', 'xz', 'lzma', 'bzip2', 'tar'
    kind: str


def detect_archive(path: Path) -> str | None:
    """The archive kind of the file at ``path`` by its magic bytes, or None
    (:func:`stationkit.fetch.magic.archive_kind` on its first bytes)."""
    with open(path, "rb") as fh:
        return archive_kind(fh.read(HEAD_BYTES))


def extract_archive(
    path: Path,
    dest: Path,
    *,
    password: str | None,
    password_env: str | None,
    max_member_bytes: int,
    name: str,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Member]:
    """Extract the archive at ``path`` into the folder ``dest``.

    ``name`` is the archive's name for messages and for naming the member of
    a single-stream archive (e.g. its path in raw/); ``password`` opens
    encrypted zip and 7z archives (nested ones too) and ``password_env``,
    the environment variable it came from, is what messages cite -- never
    the password. ``dest`` is replaced as a whole: it appears only when
    every member was written, and holds exactly the returned members.

    Returns the members sorted by name. Raises UnpackError when the file is
    not an archive, is corrupt, needs a password that is missing or wrong,
    or breaks a safety rule (see the module docstring).
    """
    kind = detect_archive(path)
    if kind is None:
        raise UnpackError(f"{name}: not an archive (no known magic bytes)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest)
    tmp = temp_path(dest)
    tmp.mkdir()
    try:
        budget = max(limits.max_ratio * path.stat().st_size, limits.ratio_floor_bytes)
        ex = _Extractor(
            name=name,
            password=password,
            password_env=password_env,
            max_member_bytes=max_member_bytes,
            limits=limits,
            budget=budget,
        )
        ex.run(path, kind, tmp, "", 1, PurePosixPath(name).name)
        for dirpath, _dirs, _files in os.walk(tmp):
            fsync_dir(Path(dirpath))
        _replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    members = [
        Member(name=m, path=dest / m, size=size, sha256=sha, kind=k)
        for m, (size, sha, k) in sorted(ex.members.items())
    ]
    log.debug("%s: %d members into %s", name, len(members), dest)
    return members


# ---------------------------------------------------------------- internals


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` onto ``dest``, moving an existing ``dest`` aside first."""
    old: Path | None = None
    with committing():
        if dest.exists() or dest.is_symlink():
            old = temp_path(dest)
            os.rename(dest, old)
        os.rename(tmp, dest)
    fsync_dir(dest.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()


def _remove_stale_temps(dest: Path) -> None:
    """Remove temporary folders a crashed extraction into ``dest`` left behind."""
    pattern = re.compile(
        re.escape(TMP_PREFIX) + r"(\d+)-[0-9a-f]+-" + re.escape(temp_tail(dest)) + "$"
    )
    with contextlib.suppress(FileNotFoundError):
        for p in dest.parent.iterdir():
            m = pattern.match(p.name)
            if m is None or _pid_alive(int(m.group(1))):
                continue
            log.info("removing %s left by an interrupted extraction", p)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":
        # Windows' os.kill(pid, 0) would terminate the process; there the next
        # run's clean-up after an interrupted one removes what is stale
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_junk(rel: PurePosixPath) -> bool:
    return (
        any(part in _JUNK_DIRS for part in rel.parts)
        or rel.name in _JUNK_FILES
        or rel.name.startswith("._")
    )


def _describe_mode(fmt: int) -> str:
    return {
        stat.S_IFLNK: "a symbolic link",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
        stat.S_IFIFO: "a FIFO",
        stat.S_IFSOCK: "a socket",
    }.get(fmt, f"a special file (mode {fmt:o})")


class _Sink:
    """A member being written: counts, hashes, enforces the limits."""

    def __init__(self, ex: _Extractor, path: Path, member: str) -> None:
        self.ex = ex
        self.path = path
        self.member = member
        self.size = 0
        self.sha = hashlib.sha256()
        # O_NOFOLLOW and O_CLOEXEC do not exist on Windows (nor do symlinks in a fresh folder)
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | os.O_EXCL
            | getattr(os, "O_NOFOLLOW", 0)
            | getattr(os, "O_CLOEXEC", 0)
            | getattr(os, "O_BINARY", 0)
        )
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise ex.error(member, f"cannot be written ({exc.strerror})") from exc
        self.fh: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        self.size += n
        if self.size > self.ex.max_member_bytes:
            raise self.ex.error(
                self.member,
                f"expands beyond max_member_bytes ({self.ex.max_member_bytes} bytes); "
                "refused as a possible archive bomb",
            )
        self.ex.add_bytes(n, self.member)
        self.sha.update(data)
        assert self.fh is not None
        try:
            self.fh.write(data)
        except OSError as exc:
            raise self.ex.error(self.member, f"cannot be written ({exc.strerror})") from exc

    def finish(self) -> tuple[int, str]:
        assert self.fh is not None
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
        except OSError as exc:
            raise self.ex.error(self.member, f"cannot be written ({exc.strerror})") from exc
        finally:
            self.close()
        return self.size, self.sha.hexdigest()

    def close(self) -> None:
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.close()
            self.fh = None


class _DiscardSink:
    """Where py7zr writes a skipped (junk) member: counted, not kept."""

    def __init__(self, ex: _Extractor, member: str) -> None:
        self.ex = ex
        self.member = member

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.ex.add_bytes(len(data), self.member)


class _SevenZipWriter(py7zr.io.Py7zIO):
    """py7zr's output object for one member, writing through a sink."""

    def __init__(self, sink: _Sink | _DiscardSink) -> None:
        self.sink = sink
        self.written = 0

    def write(self, s: bytes | bytearray) -> int:
        self.sink.write(s)
        self.written += len(s)
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.written


class _SevenZipFactory(py7zr.io.WriterFactory):
    """Maps the names py7zr writes to the sinks we planned for them."""

    def __init__(self, sinks: dict[str, _Sink | _DiscardSink]) -> None:
        self.sinks = sinks

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        sink = self.sinks.get(filename)
        if sink is None:
            raise UnpackError(f"py7zr wrote an unexpected member name {filename!r}")
        return _SevenZipWriter(sink)


class _Inflater:
    """Bounded-output decompression of a zip member's data (for WinZip AES,
    which zipfile cannot open): methods stored, deflate, bzip2, lzma."""

    def __init__(self, method: int) -> None:
        self.method = method
        self.zlib = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
        self.other: bz2.BZ2Decompressor | lzma.LZMADecompressor | None = None
        if method == zipfile.ZIP_BZIP2:
            self.other = bz2.BZ2Decompressor()
        self.head = b""  # zip-lzma: 4-byte header + properties before the stream

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.method == zipfile.ZIP_STORED:
            if data:
                yield data
        elif self.zlib is not None:
            buf = data
            while buf and not self.zlib.eof:
                out = self.zlib.decompress(buf, CHUNK)
                buf = self.zlib.unconsumed_tail
                if out:
                    yield out
        else:
            if self.method == zipfile.ZIP_LZMA and self.other is None:
                self.head += data
                if len(self.head) < 4:
                    return
                psize = int.from_bytes(self.head[2:4], "little")
                if len(self.head) < 4 + psize:
                    return
                props = self.head[4 : 4 + psize]
                if psize != 5:
                    raise lzma.LZMAError("unexpected LZMA properties size")
                d, dict_size = props[0], int.from_bytes(props[1:5], "little")
                lc, rest = d % 9, d // 9
                self.other = lzma.LZMADecompressor(
                    lzma.FORMAT_RAW,
                    filters=[
                        {
                            "id": lzma.FILTER_LZMA1,
                            "dict_size": dict_size,
                            "lc": lc,
                            "lp": rest % 5,
                            "pb": rest // 5,
                        }
                    ],
                )
                data = self.head[4 + psize :]
            assert self.other is not None
            if self.other.eof:
                return
            out = self.other.decompress(data, CHUNK)
            if out:
                yield out
            while not self.other.eof and not self.other.needs_input:
                out = self.other.decompress(b"", CHUNK)
                if out:
                    yield out

    def finish(self, remaining: int = 0) -> Iterator[bytes]:
        """The last output once all input was fed (``remaining`` == 0)."""
        if remaining:
            return
        if self.zlib is not None:
            out = self.zlib.flush()
            if out:
                yield out
            if not self.zlib.eof:
                raise zlib.error("incomplete deflate stream")
        elif isinstance(self.other, bz2.BZ2Decompressor) and not self.other.eof:
            raise OSError("incomplete bzip2 stream")


def _aes_extra(extra: bytes) -> tuple[int, int, int] | None:
    """(AE version, key strength 1-3, real compression method) from 0x9901."""
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[i : i + 4])
        body = extra[i + 4 : i + 4 + size]
        if tag == _ZIP_AES_EXTRA and size >= 7:
            version, vendor, strength, method = struct.unpack("<H2sBH", body[:7])
            if vendor == b"AE":
                return version, strength, method
        i += 4 + size
    return None


class _Extractor:
    """One extract_archive call: the limits and what was written so far."""

    def __init__(
        self,
        *,
        name: str,
        password: str | None,
        password_env: str | None,
        max_member_bytes: int,
        limits: Limits,
        budget: int,
    ) -> None:
        self.name = name
        self.password = password
        self.password_env = password_env
        self.max_member_bytes = max_member_bytes
        self.limits = limits
        self.budget = budget
        self.total = 0
        self.count = 0
        #: full member name -> (size, sha256, kind) of every kept file
        self.members: dict[str, tuple[int, str, str]] = {}
        self.dirs: set[str] = set()
        self.files: set[str] = set()

    # ------------------------------------------------------------ messages

    def error(self, member: str, what: str) -> UnpackError:
        return UnpackError(f"{self.name}: member {member!r} {what}")

    def _where(self) -> str:
        if self.password_env:
            return f"environment variable {self.password_env}"
        return "password_env of the station's [archives] table in stations.toml"

    def missing_password(self, label: str) -> UnpackError:
        if self.password_env:
            err = UnpackError(
                f"{self.name}: {label} is encrypted and environment variable "
                f"{self.password_env} is not set; set it to the archive password"
            )
        else:
            err = UnpackError(
                f"{self.name}: {label} is encrypted and no password is configured; name an "
                "environment variable in the station's [archives] password_env in stations.toml"
            )
        err.environment = True  # setting the variable is enough: the next run retries
        return err

    def wrong_password(self, label: str) -> UnpackError:
        return UnpackError(
            f"{self.name}: wrong password for {label} (from {self._where()}), "
            "or the encrypted data is corrupt; after correcting the password, "
            "run `stationkit run --retry-failed`"
        )

    # ------------------------------------------------------------ accounting

    def add_bytes(self, n: int, member: str) -> None:
        self.total += n
        if self.total > self.budget:
            raise UnpackError(
                f"{self.name}: expands to more than {self.budget} bytes (at member {member!r}), "
                f"over {self.limits.max_ratio} times its size; refused as a possible archive bomb"
            )

    def check_declared(self, declared: int, label: str) -> None:
        if self.total + declared > self.budget:
            raise UnpackError(
                f"{self.name}: {label} declares {declared} bytes of members, more than the "
                f"{self.budget} bytes allowed ({self.limits.max_ratio} times the archive's "
                "size); refused as a possible archive bomb"
            )

    def check_member_size(self, member: str, declared: int) -> None:
        if declared > self.max_member_bytes:
            raise self.error(
                member,
                f"declares {declared} bytes, more than max_member_bytes "
                f"({self.max_member_bytes}); refused as a possible archive bomb",
            )

    # ------------------------------------------------------------ names

    def member_name(self, raw: str, prefix: str) -> PurePosixPath:
        """A member's name as a safe relative path, or UnpackError."""
        shown = prefix + raw
        name = raw.replace("\\", "/")  # Windows tools write backslashes
        if not name or "\x00" in name:
            raise self.error(shown, "refused: empty name or NUL byte in the name")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise self.error(shown, "refused: absolute paths are not allowed")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise self.error(shown, "refused: '..' would escape the extraction folder")
        if not parts:
            raise self.error(shown, "refused: empty name")
        if any(p.startswith(TMP_PREFIX) for p in parts):
            raise self.error(shown, f"refused: names starting {TMP_PREFIX!r} are reserved")
        return PurePosixPath(*parts)

    def claim(self, full: str) -> None:
        """Reserve a file name; refuse duplicates and file/folder clashes."""
        parents = [str(p) for p in PurePosixPath(full).parents][:-1]
        if full in self.files or full in self.dirs or any(p in self.files for p in parents):
            raise self.error(full, "refused: it clashes with another member of the same name")
        self.files.add(full)
        self.dirs.update(parents)
        self.count += 1
        if self.count > self.limits.max_members:
            raise UnpackError(f"{self.name}: more than {self.limits.max_members} members; refused")

    # ------------------------------------------------------------ writing

    def open_sink(self, outdir: Path, rel: PurePosixPath, full: str) -> _Sink:
        target = outdir.joinpath(*rel.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.error(full, f"cannot be written ({exc.strerror})") from exc
        return _Sink(self, target, full)

    def write(
        self,
        outdir: Path,
        rel: PurePosixPath,
        full: str,
        chunks: Iterable[bytes],
        *,
        encrypted: bool,
        label: str,
    ) -> tuple[Path, int, str]:
        sink = self.open_sink(outdir, rel, full)
        try:
            it = iter(chunks)
            while True:
                try:
                    data = next(it)
                except StopIteration:
                    break
                except UnpackError:
                    raise
                except Exception as exc:
                    if encrypted:
                        raise self.wrong_password(f"member {full!r}") from exc
                    raise self.error(
                        full, f"is corrupt ({type(exc).__name__}: {exc}) in {label}"
                    ) from exc
                sink.write(data)
            size, sha = sink.finish()
        finally:
            sink.close()
        return sink.path, size, sha

    # ------------------------------------------------------------ recursion

    def run(
        self, src: Path, kind: str, outdir: Path, prefix: str, depth: int, arcname: str
    ) -> None:
        """Extract ``src`` (of ``kind``) into ``outdir``; members named ``prefix + name``."""
        label = f"nested archive {prefix[:-1]!r}" if prefix else "the archive"
        written: list[tuple[PurePosixPath, Path, int, str]]
        if kind == "zip":
            written = self._zip(src, outdir, prefix, label)
        elif kind == "7z":
            written = self._7z(src, outdir, prefix, label)
        elif kind == "tar":
            written = self._tar(src, outdir, prefix, label)
        else:
            written = self._single(src, kind, outdir, prefix, label, arcname)
        for rel, path, size, sha in written:
            full = prefix + str(rel)
            inner = detect_archive(path)
            if inner is None:
                self.members[full] = (size, sha, kind)
                continue
            if depth >= self.limits.max_depth:
                raise self.error(
                    full,
                    f"is a {inner} archive nested deeper than {self.limits.max_depth} "
                    "levels; refused",
                )
            scratch = temp_path(path)
            os.rename(path, scratch)
            path.mkdir()
            self.files.discard(full)
            self.dirs.add(full)
            self.count -= 1
            self.run(scratch, inner, path, full + "/", depth + 1, rel.name)
            scratch.unlink()

    # ------------------------------------------------------------ zip

    def _zip(
        self, src: Path, outdir: Path, prefix: str, label: str
    ) -> list[tuple[PurePosixPath, Path, int, str]]:
        try:
            zf = zipfile.ZipFile(src)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise UnpackError(f"{self.name}: {label} is not a readable zip ({exc})") from None
        with zf:
            plan: list[tuple[PurePosixPath, zipfile.ZipInfo]] = []
            declared = 0
            for info in zf.infolist():
                rel = self.member_name(info.filename, prefix)
                full = prefix + str(rel)
                if _is_junk(rel):
                    continue
                fmt = stat.S_IFMT(info.external_attr >> 16)
                if fmt not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise self.error(full, f"refused: it is {_describe_mode(fmt)}")
                if (
                    info.create_system == 0
                    and info.external_attr & stat.FILE_ATTRIBUTE_REPARSE_POINT
                ):
                    raise self.error(full, "refused: it is a Windows reparse point (link)")
                if info.is_dir() or fmt == stat.S_IFDIR:
                    continue
                if info.flag_bits & _ZIP_STRONG_ENCRYPTION:
                    raise self.error(full, "uses PKWARE strong encryption, which is not supported")
                if info.compress_type not in _ZIP_METHODS:
                    raise self.error(
                        full,
                        f"uses zip compression method {info.compress_type} "
                        f"({_ZIP_METHOD_NAMES.get(info.compress_type, 'unknown')}), which is not "
                        "supported; re-pack it with deflate, or as 7z",
                    )
                self.check_member_size(full, info.file_size)
                declared += info.file_size
                plan.append((rel, info))
            self.check_declared(declared, label)
            encrypted = [i for _, i in plan if i.flag_bits & _ZIP_ENCRYPTED]
            if encrypted and self.password is None:
                raise self.missing_password(label)
            pwd = self.password.encode("utf-8") if self.password is not None else None
            written = []
            for rel, info in plan:
                full = prefix + str(rel)
                self.claim(full)
                is_enc = bool(info.flag_bits & _ZIP_ENCRYPTED)
                if info.compress_type == _ZIP_AES:
                    chunks: Iterable[bytes] = self._zip_aes(src, info, full, pwd)
                else:
                    chunks = self._zip_plain(zf, info, pwd)
                path, size, sha = self.write(
                    outdir, rel, full, chunks, encrypted=is_enc, label=label
                )
                if size != info.file_size:
                    raise self.error(full, f"is {size} bytes, not the {info.file_size} declared")
                written.append((rel, path, size, sha))
        return written

    @staticmethod
    def _zip_plain(
        zf: zipfile.ZipFile, info: zipfile.ZipInfo, pwd: bytes | None
    ) -> Iterator[bytes]:
        # zipfile decodes in bounded steps, stops at the declared size and
        # checks the CRC at the end
        with zf.open(info, pwd=pwd) as fh:
            while data := fh.read(CHUNK):
                yield data

    def _zip_aes(
        self, src: Path, info: zipfile.ZipInfo, full: str, pwd: bytes | None
    ) -> Iterator[bytes]:
        """WinZip AES (AE-1/AE-2): salt, 2-byte password verifier, AES-CTR data
        (little-endian counter from 1), 10-byte HMAC-SHA1 of the ciphertext."""
        aes = _aes_extra(info.extra)
        if aes is None:
            raise self.error(full, "is WinZip AES encrypted but has no AES extra field")
        version, strength, method = aes
        if strength not in (1, 2, 3) or method not in (0, 8, 12, 14):
            raise self.error(
                full, f"uses unsupported AES strength {strength} or compression method {method}"
            )
        assert pwd is not None
        key_len = 8 + 8 * strength
        salt_len = key_len // 2
        with open(src, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise self.error(full, "is corrupt (bad local header)")
            n, m = struct.unpack("<HH", local[26:30])
            fh.seek(info.header_offset + 30 + n + m)
            remaining = info.compress_size - salt_len - 2 - 10
            if remaining < 0:
                raise self.error(full, "is corrupt (AES data too short)")
            salt = fh.read(salt_len)
            verifier = fh.read(2)
            derived = hashlib.pbkdf2_hmac("sha1", pwd, salt, 1000, 2 * key_len + 2)
            if not hmac.compare_digest(derived[-2:], verifier):
                raise self.wrong_password(f"member {full!r}")
            ctr = Counter.new(128, initial_value=1, little_endian=True)
            cipher = AES.new(derived[:key_len], AES.MODE_CTR, counter=ctr)
            mac = hmac.new(derived[key_len : 2 * key_len], digestmod="sha1")
            inflater = _Inflater(method)
            crc = produced = 0
            while remaining:
                block = fh.read(min(CHUNK, remaining))
                if not block:
                    raise self.error(full, "is truncated")
                remaining -= len(block)
                mac.update(block)
                for out in chain(inflater.feed(cipher.decrypt(block)), inflater.finish(remaining)):
                    produced += len(out)
                    if produced > info.file_size:  # as zipfile does: a lying header
                        raise self.error(
                            full, f"expands beyond its declared size ({info.file_size} bytes)"
                        )
                    crc = zlib.crc32(out, crc)
                    yield out
            if not hmac.compare_digest(mac.digest()[:10], fh.read(10)):
                raise self.wrong_password(f"member {full!r}")
            if version == 1 and crc != info.CRC:
                raise self.error(full, "is corrupt (CRC mismatch)")

    # ------------------------------------------------------------ 7z

    def _7z(
        self, src: Path, outdir: Path, prefix: str, label: str
    ) -> list[tuple[PurePosixPath, Path, int, str]]:
        # py7zr names each output outdir/<sanitised name>, made absolute
        base = outdir.absolute()
        with open(src, "rb") as fh:  # a file object: py7zr then extracts in this thread
            szf = self._open_7z(fh, src, label)
            with szf:
                plan: list[tuple[PurePosixPath, str]] = []
                sinks: dict[str, _Sink | _DiscardSink] = {}
                opened: list[_Sink] = []
                try:
                    declared = 0
                    for f in szf.files:
                        rel = self.member_name(f.filename, prefix)
                        full = prefix + str(rel)
                        if f.is_symlink or f.is_junction:
                            raise self.error(full, "refused: it is a link")
                        fmt = f.st_fmt
                        if fmt not in (None, 0, stat.S_IFREG, stat.S_IFDIR):
                            raise self.error(full, f"refused: it is {_describe_mode(fmt)}")
                        if f.is_directory or fmt == stat.S_IFDIR:
                            continue
                        if _is_junk(rel):
                            sinks[base.joinpath(*rel.parts).as_posix()] = _DiscardSink(self, full)
                            continue
                        size = 0 if f.emptystream else int(f.uncompressed or 0)
                        self.check_member_size(full, size)
                        declared += size
                        plan.append((rel, full))
                    self.check_declared(declared, label)
                    for rel, full in plan:
                        self.claim(full)
                        sink = self.open_sink(outdir, rel, full)
                        opened.append(sink)
                        sinks[base.joinpath(*rel.parts).as_posix()] = sink
                    try:
                        szf.extractall(path=base, factory=_SevenZipFactory(sinks))
                    except UnpackError:
                        raise
                    except Exception as exc:
                        if szf.needs_password():
                            raise self.wrong_password(label) from exc
                        raise UnpackError(
                            f"{self.name}: {label} is a corrupt 7z ({type(exc).__name__}: {exc})"
                        ) from exc
                    written = []
                    for (rel, _full), sink in zip(plan, opened, strict=True):
                        size, sha = sink.finish()
                        written.append((rel, sink.path, size, sha))
                finally:
                    for s in opened:
                        s.close()
        return written

    def _open_7z(self, fh: IO[bytes], src: Path, label: str) -> py7zr.SevenZipFile:
        try:
            szf = py7zr.SevenZipFile(fh, password=self.password)
        except py7zr.exceptions.PasswordRequired:
            raise self.missing_password(label) from None
        except Exception as exc:
            if self.password is not None and self._7z_headers_encrypted(src):
                raise self.wrong_password(label) from exc
            raise UnpackError(
                f"{self.name}: {label} is not a readable 7z ({type(exc).__name__}: {exc})"
            ) from exc
        if szf.needs_password() and self.password is None:
            szf.close()
            raise self.missing_password(label)
        return szf

    @staticmethod
    def _7z_headers_encrypted(src: Path) -> bool:
        """True when the 7z's file list itself needs the password."""
        try:
            with open(src, "rb") as fh, py7zr.SevenZipFile(fh):
                return False
        except py7zr.exceptions.PasswordRequired:
            return True
        except Exception:
            return False

    # ------------------------------------------------------------ tar

    def _tar(
        self, src: Path, outdir: Path, prefix: str, label: str
    ) -> list[tuple[PurePosixPath, Path, int, str]]:
        try:
            tf = tarfile.open(src, mode="r:")  # noqa: SIM115 -- closed by the with below
        except (tarfile.TarError, OSError) as exc:
            raise UnpackError(f"{self.name}: {label} is not a readable tar ({exc})") from None
        with tf:
            try:
                infos = tf.getmembers()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise UnpackError(f"{self.name}: {label} is a corrupt tar ({exc})") from None
            plan: list[tuple[PurePosixPath, tarfile.TarInfo]] = []
            declared = 0
            for ti in infos:
                rel = self.member_name(ti.name, prefix)
                full = prefix + str(rel)
                if ti.issym():
                    raise self.error(full, "refused: it is a symbolic link")
                if ti.islnk():
                    raise self.error(full, "refused: it is a hard link")
                if ti.ischr() or ti.isblk():
                    raise self.error(full, "refused: it is a device file")
                if ti.isfifo():
                    raise self.error(full, "refused: it is a FIFO")
                if ti.isdir():
                    continue
                if not ti.isreg():
                    raise self.error(full, f"refused: unsupported tar member type {ti.type!r}")
                if _is_junk(rel):
                    continue
                self.check_member_size(full, ti.size)
                declared += ti.size
                plan.append((rel, ti))
            self.check_declared(declared, label)
            written = []
            for rel, ti in plan:
                full = prefix + str(rel)
                self.claim(full)
                path, size, sha = self.write(
                    outdir, rel, full, self._tar_chunks(tf, ti), encrypted=False, label=label
                )
                written.append((rel, path, size, sha))
        return written

    @staticmethod
    def _tar_chunks(tf: tarfile.TarFile, ti: tarfile.TarInfo) -> Iterator[bytes]:
        fh = tf.extractfile(ti)
        if fh is None:
            return
        with fh:
            while data := fh.read(CHUNK):
                yield data

    # ------------------------------------------------------------ single stream

    def _single(
        self, src: Path, kind: str, outdir: Path, prefix: str, label: str, arcname: str
    ) -> list[tuple[PurePosixPath, Path, int, str]]:
        with open(src, "rb") as fh:
            head = fh.read(HEAD_BYTES)
        rel = PurePosixPath(self._single_name(arcname, kind, head))
        full = prefix + str(rel)
        if kind == "lzma":
            declared = int.from_bytes(head[5:13], "little")
            if declared != 0xFFFFFFFFFFFFFFFF:
                self.check_member_size(full, declared)
                self.check_declared(declared, label)
        self.claim(full)
        path, size, sha = self.write(
            outdir, rel, full, self._stream(src, kind), encrypted=False, label=label
        )
        return [(rel, path, size, sha)]

    @staticmethod
    def _single_name(arcname: str, kind: str, head: bytes) -> str:
        """The member name of a single-stream archive (see the module docstring)."""
        base = _BACKUP_SUFFIX.sub("", arcname.rsplit("/", 1)[-1])
        lower = base.lower()
        for suffix, repl in _SUFFIXES.get(kind, {}).items():
            if lower.endswith(suffix) and len(base) > len(suffix):
                stem = base[: -len(suffix)] + repl
                if stem not in (".", ".."):
                    return stem
        if kind == "gzip":
            fname = _gzip_fname(head)
            if fname:
                return fname
        return base if base not in ("", ".", "..") else "contents"

    @staticmethod
    def _stream(src: Path, kind: str) -> Iterator[bytes]:
        if kind == "gzip":
            with gzip.open(src, "rb") as gz:  # concatenated members, CRC and size checked
                while data := gz.read(CHUNK):
                    yield data
        elif kind == "bzip2":
            with bz2.open(src, "rb") as bz:
                while data := bz.read(CHUNK):
                    yield data
        else:
            fmt = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
            with open(src, "rb") as fh:
                yield from _lzma_chunks(fh, fmt)


def _lzma_chunks(fh: IO[bytes], fmt: int) -> Iterator[bytes]:
    """Decode xz (concatenated streams allowed) or LZMA-alone with a memory limit
    (lzma.open has none) and bounded output per step."""
    d = lzma.LZMADecompressor(fmt, memlimit=LZMA_MEMLIMIT)
    buf = b""
    while True:
        if d.eof:
            if fmt == lzma.FORMAT_ALONE:
                return  # like xz --format=lzma, bytes after the end marker are ignored
            tail = d.unused_data.lstrip(b"\x00")  # stream padding
            while not tail:
                more = fh.read(CHUNK)
                if not more:
                    return
                tail = more.lstrip(b"\x00")
            d = lzma.LZMADecompressor(fmt, memlimit=LZMA_MEMLIMIT)
            buf = tail
        if d.needs_input and not buf:
            buf = fh.read(CHUNK)
            if not buf:
                raise EOFError("compressed stream ends before its end marker")
        out = d.decompress(buf, CHUNK)
        buf = b""
        if out:
            yield out


def _gzip_fname(head: bytes) -> str | None:
    """gzip's stored original file name (FNAME), as a safe base name, or None."""
    if len(head) < 10 or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:  # FEXTRA
        if len(head) < 12:
            return None
        pos = 12 + int.from_bytes(head[10:12], "little")
    end = head.find(b"\x00", pos)
    if end < 0:
        return None
    name = head[pos:end].decode("latin-1").replace("\\", "/").rsplit("/", 1)[-1]  # RFC 1952
    if name in ("", ".", "..") or name.startswith(TMP_PREFIX) or not name.isprintable():
        return None
    return name
