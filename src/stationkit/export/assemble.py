"""Text exports assembled piece by piece: a run costs what changed, not the history.

An export file is its header (always written anew: the "Created" line moves
with the data) followed by *pieces*, one per UTC month of the period (a
month cut by ``--start/--end`` is a piece of its own). A piece's text
depends only on the rows of its month and on the export's options and
columns, so the export of a station after one new day re-renders one month
and copies every other month's bytes from the previous file -- in the
kernel (``copy_file_range``) where it can.

The ledger (``export_parts``) keeps, per export file, the *layout* of what
was written: the options fingerprint, and each piece's key, identity (what
its clean rows were: the month's build fingerprint, size, mtime and inode),
place and row count; zip members keep their compressed segments the same
way (:mod:`stationkit.export.zipjoin`), and the flagging log's runs per piece
live in ``cache/export/<station>/`` (the log merges runs across months). A
piece is copied only when the options, the piece's identity and the previous
file (size, mtime and inode as written) all match; anything else is rendered
again. Rendering is row by row, so the assembled file is byte-identical to
one rendered whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import polars as pl
import pyarrow as pa

from stationkit.atomic import TMP_PREFIX, atomic_output
from stationkit.calibrate.partition import Month, month_of_name, months_spanned
from stationkit.export.select import (
    CHUNK_ROWS,
    Catalog,
    Selection,
    Window,
    iter_chunks,
    period,
    to_wide,
)
from stationkit.export.windographer import FlagLog, merge_run_tables
from stationkit.export.zipjoin import Segment, ZipWriter, compress, member_totals

#: copy at most this much per call
_COPY_BLOCK = 1 << 26


# ---------------------------------------------------------------- pieces


@dataclass(frozen=True)
class CleanPart:
    """One lake/clean file and what identifies its rows."""

    path: Path
    #: changes whenever the rows may have (content or build fingerprint, size,
    #: mtime, inode): decides whether a piece's text can be copied
    identity: str
    #: what the rows are, never when the file was written (build fingerprints)
    content: str

    @property
    def month(self) -> Month | None:
        return month_of_name(self.path.name)


@dataclass(frozen=True)
class Piece:
    """A stretch of the export: one UTC month of the period, read in windows."""

    key: str
    windows: tuple[Window, ...]
    files: tuple[Path, ...]
    identity: str

    @property
    def start(self) -> datetime:
        return self.windows[0].start


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _windows(lo: datetime, hi: datetime, density: float) -> tuple[Window, ...]:
    """[lo, hi) as one window, or whole UTC days when it holds more than about
    CHUNK_ROWS readings."""
    parts = max(1, math.ceil(density * (hi - lo).total_seconds() / CHUNK_ROWS))
    if parts == 1:
        return (Window(lo, hi),)
    days = max(1, math.ceil((hi - lo).total_seconds() / 86400 / parts))
    out = []
    cut = lo
    while cut < hi:
        midnight = cut.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = min(midnight + timedelta(days=days), hi)
        out.append(Window(cut, nxt))
        cut = nxt
    return tuple(out)


def plan_pieces(parts: Sequence[CleanPart], sel: Selection, catalog: Catalog) -> list[Piece]:
    """The pieces of the selected period, in time order.

    When every clean file is a month (``YYYY-MM.parquet``), a piece reads
    only its month's file and is identified by it; otherwise every piece
    reads every file and is identified by all of them.
    """
    bounds = period(sel, catalog)
    if bounds is None:
        return []
    lo, hi = bounds
    assert catalog.first is not None and catalog.last is not None
    span = max((catalog.last - catalog.first).total_seconds(), catalog.step.total_seconds())
    density = catalog.rows / span
    by_month = {p.month: p for p in parts if p.month is not None}
    monthly = len(by_month) == len(parts)
    everything = _digest([[p.path.name, p.identity] for p in parts])
    out: list[Piece] = []
    for m in months_spanned(lo, hi - timedelta(microseconds=1)):
        a, b = max(lo, m.start), min(hi, m.end)
        key = m.key if (a, b) == (m.start, m.end) else f"{m.key}[{_us(a)},{_us(b)})"
        if monthly:
            part = by_month.get(m)
            if part is None:
                continue
            files: tuple[Path, ...] = (part.path,)
            identity = _digest([key, part.identity])
        else:
            files = tuple(p.path for p in parts)
            identity = _digest([key, everything])
        out.append(Piece(key, _windows(a, b, density), files, identity))
    return out


# ---------------------------------------------------------------- previous files


def file_stamp(path: Path) -> list[int]:
    """What shows a file is the one stationkit wrote: size, mtime [ns], inode."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def copy_range(src: IO[bytes], dst: IO[bytes], offset: int, length: int) -> None:
    """Append ``length`` bytes of ``src`` from ``offset`` to ``dst`` (in the
    kernel where the platform can)."""
    dst.flush()
    done = 0
    fast = hasattr(os, "copy_file_range")
    while done < length:
        n = min(_COPY_BLOCK, length - done)
        if fast:
            try:
                got = os.copy_file_range(src.fileno(), dst.fileno(), n, offset + done, dst.tell())
            except OSError:
                fast = False
                continue
            if got <= 0:
                raise OSError(f"{src.name}: shorter than its recorded layout")
            dst.seek(got, os.SEEK_CUR)
        else:
            src.seek(offset + done)
            data = src.read(n)
            if not data:
                raise OSError(f"{src.name}: shorter than its recorded layout")
            dst.write(data)
            got = len(data)
        done += got


@dataclass
class _Previous:
    """The file an assembly may copy pieces from."""

    fh: IO[bytes]
    #: where the pieces start (after the old header)
    base: int
    #: key -> [identity, offset, length, rows]
    pieces: dict[str, list[Any]]


def open_previous(
    path: Path, layout: Mapping[str, Any] | None, stamp: list[int] | None, options: str
) -> _Previous | None:
    if layout is None or stamp is None or layout.get("options") != options:
        return None
    try:
        if file_stamp(path) != stamp:
            return None
        fh = open(path, "rb")  # noqa: SIM115 -- closed by the assembly
    except OSError:
        return None
    return _Previous(fh, int(layout["header"]), {p[0]: p[1:] for p in layout["pieces"]})


# ---------------------------------------------------------------- text targets


@dataclass
class TextTarget:
    """One text file being assembled: header, then pieces copied or rendered."""

    fh: IO[bytes]
    header: bytes
    render: Callable[[pl.DataFrame, pl.DataFrame | None], bytes]
    previous: _Previous | None = None
    pieces: list[list[Any]] = field(default_factory=list)
    rows: int = 0
    _start: int = 0
    _rows: int = 0

    def __post_init__(self) -> None:
        self.fh.write(self.header)

    def reusable(self, piece: Piece) -> bool:
        old = self.previous.pieces.get(piece.key) if self.previous else None
        return old is not None and old[0] == piece.identity

    def copy(self, piece: Piece) -> None:
        assert self.previous is not None
        identity, offset, length, rows = self.previous.pieces[piece.key]
        start = self.fh.tell() - len(self.header)
        copy_range(self.previous.fh, self.fh, self.previous.base + offset, length)
        self.pieces.append([piece.key, identity, start, length, rows])
        self.rows += rows

    def begin(self) -> None:
        self._start = self.fh.tell()
        self._rows = 0

    def add(self, chunk: pl.DataFrame, wide: pl.DataFrame | None) -> None:
        self.fh.write(self.render(chunk, wide))
        self._rows += wide.height if wide is not None else chunk.height

    def end(self, piece: Piece) -> None:
        length = self.fh.tell() - self._start
        self.pieces.append(
            [piece.key, piece.identity, self._start - len(self.header), length, self._rows]
        )
        self.rows += self._rows

    def layout(self, options: str) -> dict[str, Any]:
        return {"options": options, "header": len(self.header), "pieces": self.pieces}


@dataclass
class ZipMember:
    """One member of a zip: its header, and its pieces as DEFLATE segments in
    a scratch file until the zip is written."""

    name: str
    header: bytes
    render: Callable[[pl.DataFrame, pl.DataFrame | None], bytes]
    scratch: IO[bytes]
    #: key -> [identity, offset (in the old member data), compressed, size, crc]
    previous: dict[str, list[Any]] = field(default_factory=dict)
    segments: list[list[Any]] = field(default_factory=list)
    _text: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        data, seg = compress(self.header)
        self.scratch.write(data)
        self.segments.append(["", "", 0, seg.compressed, seg.size, seg.crc])

    def reusable(self, piece: Piece) -> bool:
        old = self.previous.get(piece.key)
        return old is not None and old[0] == piece.identity

    def copy(self, piece: Piece, source: IO[bytes], member_start: int) -> None:
        identity, offset, clen, size, crc = self.previous[piece.key]
        at = self.scratch.tell()
        copy_range(source, self.scratch, member_start + offset, clen)
        self.segments.append([piece.key, identity, at, clen, size, crc])

    def begin(self) -> None:
        self._text = []

    def add(self, chunk: pl.DataFrame, wide: pl.DataFrame | None) -> None:
        self._text.append(self.render(chunk, wide))

    def end(self, piece: Piece) -> None:
        data, seg = compress(b"".join(self._text))
        self._text = []
        at = self.scratch.tell()
        self.scratch.write(data)
        self.segments.append([piece.key, piece.identity, at, seg.compressed, seg.size, seg.crc])

    def totals(self) -> Segment:
        return member_totals([Segment(s[3], s[4], s[5]) for s in self.segments])


# ---------------------------------------------------------------- flag runs


class RunCache:
    """The flagging log's runs of each piece, in ``cache/export/<station>/<target>/``."""

    def __init__(self, folder: Path, options: str) -> None:
        self.folder = folder
        self.options = options
        self.used: set[str] = set()

    def _path(self, piece: Piece) -> Path:
        name = hashlib.sha256(f"{self.options}:{piece.identity}".encode()).hexdigest()[:40]
        return self.folder / f"{name}.arrow"

    def get(self, piece: Piece) -> pl.DataFrame | None:
        path = self._path(piece)
        try:
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid):
            return None
        self.used.add(path.name)
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def put(self, piece: Piece, runs: pl.DataFrame) -> None:
        path = self._path(piece)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            table = runs.to_arrow()
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
        self.used.add(path.name)

    def prune(self) -> None:
        """Remove the runs no piece of the export uses any more."""
        if not self.folder.is_dir():
            return
        for p in self.folder.iterdir():
            if p.name not in self.used and not p.name.startswith(TMP_PREFIX):
                p.unlink(missing_ok=True)


# ---------------------------------------------------------------- the driver


@dataclass
class Assembly:
    """Everything one export writes, fed piece by piece."""

    pieces: Sequence[Piece]
    texts: list[TextTarget] = field(default_factory=list)
    members: list[ZipMember] = field(default_factory=list)
    #: the previous zip and where each member's data started in it
    zip_source: IO[bytes] | None = None
    zip_starts: dict[str, int] = field(default_factory=dict)
    flag_log: FlagLog | None = None
    run_cache: RunCache | None = None
    needs_wide: bool = True
    #: read every flag (long layouts); the flagging log reads them anyway
    with_flags: bool = False
    rendered: int = 0
    copied: int = 0

    def run(
        self,
        sel: Selection,
        catalog: Catalog,
        *,
        scratch: Path | None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """Copy or render every piece into every target, in order."""
        cached: dict[str, pl.DataFrame] = {}
        todo: list[Piece] = []
        for piece in self.pieces:
            runs = self.run_cache.get(piece) if self.run_cache else None
            if runs is not None:
                cached[piece.key] = runs
            if (
                not all(t.reusable(piece) for t in self.texts)
                or not all(m.reusable(piece) for m in self.members)
                or (self.flag_log is not None and runs is None)
            ):
                todo.append(piece)
        windows = [w for p in todo for w in p.windows]
        files = list(dict.fromkeys(f for p in todo for f in p.files))
        chunks = iter(
            iter_chunks(
                files,
                sel,
                catalog,
                with_flags=self.with_flags or self.flag_log is not None,
                scratch=scratch,
                windows=windows,
            )
            if todo
            else ()
        )
        wanted = {p.key for p in todo}
        for piece in self.pieces:
            if piece.key not in wanted:
                self._copy(piece)
                self.copied += 1
                continue
            self.rendered += 1
            if progress is not None:
                progress(f"{piece.start + sel.offset:%Y-%m}")
            fresh = [t for t in self.texts if not t.reusable(piece)]
            fresh_members = [m for m in self.members if not m.reusable(piece)]
            for t in fresh:
                t.begin()
            for m in fresh_members:
                m.begin()
            runs_log = (
                FlagLog(self.flag_log.columns, self.flag_log.step)
                if self.flag_log is not None and piece.key not in cached
                else None
            )
            for _ in piece.windows:
                _window, chunk = next(chunks)
                if chunk.height == 0:
                    continue
                wide = (
                    to_wide(chunk, catalog.columns, sel.station)
                    if self.needs_wide and (fresh or fresh_members)
                    else None
                )
                for t in fresh:
                    t.add(chunk, wide)
                for m in fresh_members:
                    m.add(chunk, wide)
                if runs_log is not None:
                    runs_log.add(chunk)
            for t in self.texts:
                if t in fresh:
                    t.end(piece)
                else:
                    t.copy(piece)
            for m in self.members:
                if m in fresh_members:
                    m.end(piece)
                else:
                    assert self.zip_source is not None
                    m.copy(piece, self.zip_source, self.zip_starts[m.name])
            if runs_log is not None and self.run_cache is not None:
                runs = runs_log.runs()
                self.run_cache.put(piece, runs)
                cached[piece.key] = runs
        if self.flag_log is not None:
            tables = [cached[p.key] for p in self.pieces if p.key in cached]
            self.flag_log.set_runs(merge_run_tables(tables, self.flag_log.step))

    def _copy(self, piece: Piece) -> None:
        for t in self.texts:
            t.copy(piece)
        for m in self.members:
            assert self.zip_source is not None
            m.copy(piece, self.zip_source, self.zip_starts[m.name])

    def write_zip(self, fh: IO[bytes], created: datetime) -> dict[str, Any]:
        """The zip of the members; returns its layout."""
        writer = ZipWriter(fh, created)
        layout: dict[str, Any] = {}
        for m in self.members:
            start = writer.begin(m.name, m.totals())
            m.scratch.flush()
            m.scratch.seek(0)
            total = sum(s[3] for s in m.segments)
            copy_range(m.scratch, fh, 0, total)
            writer.end_member()
            layout[m.name] = {
                "start": start,
                "segments": [[s[0], s[1], s[2], s[3], s[4], s[5]] for s in m.segments[1:]],
            }
        writer.close()
        return layout


def previous_zip(
    path: Path, layout: Mapping[str, Any] | None, stamp: list[int] | None, options: str
) -> tuple[IO[bytes] | None, dict[str, int], dict[str, dict[str, list[Any]]]]:
    """The old zip, where each member's data starts, and its segments by key."""
    if layout is None or stamp is None or layout.get("options") != options:
        return None, {}, {}
    try:
        if file_stamp(path) != stamp:
            return None, {}, {}
        fh = open(path, "rb")  # noqa: SIM115 -- closed by the caller
    except OSError:
        return None, {}, {}
    members = layout.get("members", {})
    starts = {name: int(m["start"]) for name, m in members.items()}
    segments = {name: {s[0]: s[1:] for s in m["segments"]} for name, m in members.items()}
    return fh, starts, segments


@contextlib.contextmanager
def closing_all(handles: Sequence[IO[bytes] | None]) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            if h is not None:
                h.close()
