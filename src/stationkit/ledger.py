"""The state database (data_dir/state.sqlite): what each stage has done.

One row per file version (``files``: fetched, added by hand or extracted
from an archive, with size, mtime, sha256 and archive lineage), one per
parse attempt outcome (``parses``), per-station fetch bookkeeping, per-stage
build fingerprints, an event log, and the failures (``failures``): each one
recorded when it happens, ``reported_at`` set when a complete run has
reported it (so the failures of a run that was killed are reported by the
next one), ``resolved_at`` set when the same stage later succeeded on the
same file or station. SQLite in WAL mode: readers (``stationkit status``)
see a consistent state while a run writes.

A logical file is (station, origin, source_path). When its content changes,
a new version row is added and the earlier one is marked ``superseded_by``;
its readings are replaced by the new version's.

File ids are derived from what identifies a file version -- station, origin,
source path, version, parent archive and content hash -- never from the order
in which files happened to be processed. So parallel runs, a run resumed
after a crash, and a rebuild from raw/ alone give the same ids, and the same
bytes in every file that carries them.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stationkit.layout import prepare_data_dir

LEDGER_NAME = "state.sqlite"
SCHEMA_VERSION = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    station TEXT NOT NULL,
    origin TEXT NOT NULL,            -- fetch | add | member
    source_path TEXT NOT NULL,       -- path at the source, or member name in its archive
    path TEXT NOT NULL UNIQUE,       -- where the bytes are, relative to data_dir
    size INTEGER NOT NULL,
    mtime REAL,                      -- modification time at the source [s since epoch]
    sha256 TEXT NOT NULL,
    parent_id INTEGER REFERENCES files(id),
    version INTEGER NOT NULL DEFAULT 1,
    superseded_by INTEGER REFERENCES files(id),
    added_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_logical ON files(station, origin, source_path, parent_id);
CREATE INDEX IF NOT EXISTS files_sha ON files(station, sha256);
-- what a no-op fetch compares, answered from the index alone
CREATE INDEX IF NOT EXISTS files_versions
    ON files(station, origin, parent_id, superseded_by, source_path, size, mtime);
CREATE INDEX IF NOT EXISTS files_superseded ON files(station) WHERE superseded_by IS NOT NULL;
CREATE TABLE IF NOT EXISTS parses (
    file_id INTEGER PRIMARY KEY REFERENCES files(id),
    station TEXT NOT NULL,
    status TEXT NOT NULL,            -- ok | failed | skipped | archive | superseded
    format TEXT,
    rows INTEGER,
    readings INTEGER,
    first_ts TEXT,                   -- first period start, UTC ISO 8601
    last_ts TEXT,
    channels TEXT,                   -- JSON list
    skipped_channels TEXT,           -- JSON list (text columns)
    meta TEXT,                       -- JSON FileMeta
    warnings TEXT,                   -- JSON list
    error TEXT,
    output TEXT,                     -- readings Parquet, relative to data_dir
    parsed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS parses_station ON parses(station, status);
-- the newest data of a station (status, staleness) from the index alone
CREATE INDEX IF NOT EXISTS parses_last ON parses(station, status, last_ts);
-- what the calibrate stage's no-op check reads, from the index alone
CREATE INDEX IF NOT EXISTS parses_outputs
    ON parses(station, status, file_id, output, first_ts, last_ts, readings);
CREATE TABLE IF NOT EXISTS fetches (
    station TEXT PRIMARY KEY,
    last_attempt_at TEXT,
    last_success_at TEXT,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS builds (
    station TEXT NOT NULL,
    stage TEXT NOT NULL,             -- calibrate | export | ...
    fingerprint TEXT NOT NULL,
    built_at TEXT NOT NULL,
    PRIMARY KEY (station, stage)
);
-- lake/clean months: the fingerprint of the inputs each was built from
CREATE TABLE IF NOT EXISTS partitions (
    station TEXT NOT NULL,
    layer TEXT NOT NULL,             -- clean
    month TEXT NOT NULL,             -- YYYY-MM of the UTC period starts it holds
    fingerprint TEXT NOT NULL,
    rows INTEGER NOT NULL,
    first_ts TEXT,
    last_ts TEXT,
    output TEXT,                     -- Parquet relative to data_dir; NULL: no rows, no file
    built_at TEXT NOT NULL,
    PRIMARY KEY (station, layer, month)
);
-- how an export file was assembled, so the next export re-renders only what changed
CREATE TABLE IF NOT EXISTS export_parts (
    station TEXT NOT NULL,
    target TEXT NOT NULL,            -- the export's main file
    layout TEXT NOT NULL,            -- JSON: options fingerprint and each part's place
    stamp TEXT NOT NULL,             -- JSON: size, mtime and inode of the files written
    PRIMARY KEY (station, target)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    station TEXT,
    stage TEXT NOT NULL,
    file_id INTEGER,
    level TEXT NOT NULL,             -- error | warning | info
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_station ON events(station, id);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    station TEXT NOT NULL,
    stage TEXT NOT NULL,             -- fetch | unpack | parse | calibrate | export | run
    file TEXT NOT NULL DEFAULT '',   -- path relative to data_dir or at the source; '' for a station
    file_id INTEGER,
    reason TEXT NOT NULL,
    kind TEXT NOT NULL,              -- environment (retried by itself) | content
    reported_at TEXT,                -- when a complete run reported it; NULL: pending
    resolved_at TEXT                 -- when the same stage later succeeded on the same thing
);
CREATE INDEX IF NOT EXISTS failures_pending ON failures(station) WHERE reported_at IS NULL;
CREATE INDEX IF NOT EXISTS failures_open ON failures(station, stage, file) WHERE resolved_at IS NULL;
"""


#: the tables whose rows belong to one station (a ``station`` column); what a
#: cluster worker's snapshot of the ledger holds (stationkit.cluster.journal)
STATION_TABLES = ("files", "parses", "fetches", "builds", "partitions", "export_parts")


def create_schema(conn: sqlite3.Connection) -> None:
    """Make the ledger's tables in an empty database."""
    conn.executescript(_SCHEMA)
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _tables(schema: str) -> dict[str, str]:
    """The CREATE TABLE statements of ``schema``, by table name."""
    out: dict[str, str] = {}
    statement = ""
    for line in schema.splitlines(keepends=True):
        statement += line
        if not sqlite3.complete_statement(statement):
            continue  # a ';' inside a comment does not end a statement
        m = re.match(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", statement)
        if m:
            out[m.group(1)] = statement
        statement = ""
    return out


def _open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection that sees the current schema whatever state the file is
    in: missing, just created by a first run that has not made its tables yet, or
    written by an older stationkit (tables it lacks appear as empty TEMP tables)."""
    if path.exists():
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for name, statement in _tables(_SCHEMA).items():
            if name not in have:
                conn.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
        return conn
    conn = sqlite3.connect(":memory:")
    conn.executescript(_SCHEMA)
    return conn


def file_id_for(
    station: str, origin: str, source_path: str, version: int, parent_id: int | None, sha256: str
) -> int:
    """The stable id of a file version: 63 bits of a hash of its identity."""
    key = "\x00".join((station, origin, source_path, str(version), str(parent_id or 0), sha256))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def iso(value: datetime) -> str:
    """A UTC instant as the ledger writes it: ``2024-01-31T23:50:00.000000Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return iso(datetime.now(UTC))


@dataclass(frozen=True)
class FileRow:
    """A row of ``files``."""

    id: int
    station: str
    origin: str
    source_path: str
    path: str
    size: int
    mtime: float | None
    sha256: str
    parent_id: int | None
    version: int
    superseded_by: int | None


class Ledger:
    """Access to state.sqlite. One connection; writes in short transactions."""

    def __init__(self, data_dir: Path, *, readonly: bool = False) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LEDGER_NAME
        if readonly:
            if data_dir.exists() and not data_dir.is_dir():
                prepare_data_dir(data_dir)  # the clear error
            self.conn = _open_readonly(self.path)
        else:
            prepare_data_dir(data_dir)
            # check_same_thread=False: a worker thread uses it; the main thread closes it
            self.conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a killed process never loses a committed row; a
            # power cut may lose the last few, which the next run simply redoes.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if self.conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                create_schema(self.conn)
        self.conn.row_factory = sqlite3.Row

    @classmethod
    def on_connection(cls, conn: sqlite3.Connection, data_dir: Path) -> Ledger:
        """A ledger over a connection already open on a database with this schema
        (the private snapshot a cluster worker works on)."""
        ledger = cls.__new__(cls)
        ledger.data_dir = data_dir
        ledger.path = data_dir / LEDGER_NAME
        ledger.conn = conn
        conn.row_factory = sqlite3.Row
        return ledger

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ------------------------------------------------------------ files

    @staticmethod
    def _file(row: sqlite3.Row) -> FileRow:
        return FileRow(**{k: row[k] for k in FileRow.__dataclass_fields__})

    def latest(
        self, station: str, origin: str, source_path: str, parent_id: int | None = None
    ) -> FileRow | None:
        """The newest version of a logical file."""
        row = self.conn.execute(
            "SELECT * FROM files WHERE station=? AND origin=? AND source_path=? "
            "AND parent_id IS ? ORDER BY version DESC LIMIT 1",
            (station, origin, source_path, parent_id),
        ).fetchone()
        return self._file(row) if row else None

    def latest_by_source(self, station: str, origin: str) -> dict[str, FileRow]:
        """The newest version of every logical file of one origin, by source_path."""
        rows = self.conn.execute(
            "SELECT * FROM files WHERE station=? AND origin=? AND parent_id IS NULL "
            "AND superseded_by IS NULL",
            (station, origin),
        ).fetchall()
        return {r["source_path"]: self._file(r) for r in rows}

    def known_versions(self, station: str, origin: str) -> dict[str, tuple[int, float | None]]:
        """(size, mtime) of the newest version of every logical file, by source_path.

        The cheap question a no-op fetch asks; full rows only for what changed.
        """
        return {
            r[0]: (r[1], r[2])
            for r in self.conn.execute(
                "SELECT source_path, size, mtime FROM files WHERE station=? AND origin=? "
                "AND parent_id IS NULL AND superseded_by IS NULL",
                (station, origin),
            )
        }

    def get_file(self, file_id: int) -> FileRow:
        row = self.conn.execute("SELECT * FROM files WHERE id=?", (file_id,)).fetchone()
        if row is None:
            raise KeyError(file_id)
        return self._file(row)

    def add_file(
        self,
        *,
        station: str,
        origin: str,
        source_path: str,
        path: str,
        size: int,
        mtime: float | None,
        sha256: str,
        parent_id: int | None = None,
    ) -> int:
        """Record a new file version; mark the previous version superseded."""
        with self.transaction() as c:
            prev = c.execute(
                "SELECT id, version FROM files WHERE station=? AND origin=? AND source_path=? "
                "AND parent_id IS ? ORDER BY version DESC LIMIT 1",
                (station, origin, source_path, parent_id),
            ).fetchone()
            version = prev["version"] + 1 if prev else 1
            new_id = file_id_for(station, origin, source_path, version, parent_id, sha256)
            c.execute(
                "INSERT INTO files(id, station, origin, source_path, path, size, mtime, sha256, "
                "parent_id, version, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    new_id,
                    station,
                    origin,
                    source_path,
                    path,
                    size,
                    mtime,
                    sha256,
                    parent_id,
                    version,
                    now_iso(),
                ),
            )
            if prev:
                c.execute("UPDATE files SET superseded_by=? WHERE id=?", (new_id, prev["id"]))
        return new_id

    def touch_file(self, file_id: int, mtime: float | None) -> None:
        """The source changed the mtime but not the content: remember the new mtime."""
        self.conn.execute("UPDATE files SET mtime=? WHERE id=?", (mtime, file_id))

    def files_to_parse(self, station: str) -> list[FileRow]:
        """Current file versions that have no parse outcome yet, in path order."""
        # every parse row belongs to a file: equal counts mean nothing is pending
        files = self.conn.execute(
            "SELECT COUNT(*) FROM files WHERE station=?", (station,)
        ).fetchone()[0]
        parsed = self.conn.execute(
            "SELECT COUNT(*) FROM parses WHERE station=?", (station,)
        ).fetchone()[0]
        if files == parsed:
            return []
        rows = self.conn.execute(
            "SELECT f.* FROM files f LEFT JOIN parses p ON p.file_id = f.id "
            "WHERE f.station=? AND f.superseded_by IS NULL AND p.file_id IS NULL ORDER BY f.path",
            (station,),
        ).fetchall()
        return [self._file(r) for r in rows]

    def superseded_outputs(self, station: str) -> list[tuple[int, str]]:
        """Parsed outputs of file versions that a newer version replaced."""
        rows = self.conn.execute(
            "SELECT p.file_id, p.output FROM files f JOIN parses p ON p.file_id = f.id "
            "WHERE f.station=? AND f.superseded_by IS NOT NULL AND p.status='ok'",
            (station,),
        ).fetchall()
        return [(r["file_id"], r["output"]) for r in rows]

    # ------------------------------------------------------------ parses

    def record_parse(self, file_id: int, station: str, status: str, **fields: Any) -> None:
        cols = ["file_id", "station", "status", "parsed_at"]
        vals: list[Any] = [file_id, station, status, now_iso()]
        for k, v in fields.items():
            cols.append(k)
            vals.append(
                json.dumps(v, sort_keys=True, default=str)
                if isinstance(v, (list, dict, tuple))
                else v
            )
        marks = ", ".join("?" * len(cols))
        self.conn.execute(
            f"INSERT OR REPLACE INTO parses({', '.join(cols)}) VALUES ({marks})", vals
        )

    def set_parse_status(self, file_id: int, status: str) -> None:
        self.conn.execute("UPDATE parses SET status=? WHERE file_id=?", (status, file_id))

    def forget_parse(self, file_ids: Sequence[int]) -> None:
        self.conn.executemany("DELETE FROM parses WHERE file_id=?", [(i,) for i in file_ids])

    def parse_rows(self, station: str, status: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM parses WHERE station=?"
        args: list[Any] = [station]
        if status:
            sql += " AND status=?"
            args.append(status)
        return self.conn.execute(sql + " ORDER BY file_id", args).fetchall()

    # ------------------------------------------------------------ fetch bookkeeping

    def fetch_info(self, station: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM fetches WHERE station=?", (station,)
        ).fetchone()
        return row

    def record_fetch(self, station: str, *, error: str | None) -> None:
        at = now_iso()
        self.conn.execute(
            "INSERT INTO fetches(station, last_attempt_at, last_success_at, last_error) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(station) DO UPDATE SET "
            "last_attempt_at=excluded.last_attempt_at, "
            "last_success_at=COALESCE(excluded.last_success_at, fetches.last_success_at), "
            "last_error=excluded.last_error",
            (station, at, None if error else at, error),
        )

    # ------------------------------------------------------------ builds

    def build_fingerprint(self, station: str, stage: str) -> str | None:
        row = self.conn.execute(
            "SELECT fingerprint FROM builds WHERE station=? AND stage=?", (station, stage)
        ).fetchone()
        return str(row["fingerprint"]) if row else None

    def record_build(self, station: str, stage: str, fingerprint: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO builds(station, stage, fingerprint, built_at) VALUES (?,?,?,?)",
            (station, stage, fingerprint, now_iso()),
        )

    # ------------------------------------------------------------ partitions

    def partitions(self, station: str, layer: str = "clean") -> dict[str, sqlite3.Row]:
        """The recorded months of a station's layer, by ``YYYY-MM``."""
        rows = self.conn.execute(
            "SELECT * FROM partitions WHERE station=? AND layer=? ORDER BY month",
            (station, layer),
        ).fetchall()
        return {r["month"]: r for r in rows}

    def record_partition(
        self,
        station: str,
        month: str,
        *,
        fingerprint: str,
        rows: int,
        first_ts: str | None,
        last_ts: str | None,
        output: str | None,
        layer: str = "clean",
    ) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO partitions(station, layer, month, fingerprint, rows, "
            "first_ts, last_ts, output, built_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (station, layer, month, fingerprint, rows, first_ts, last_ts, output, now_iso()),
        )

    def forget_partitions(self, station: str, months: Sequence[str], layer: str = "clean") -> None:
        self.conn.executemany(
            "DELETE FROM partitions WHERE station=? AND layer=? AND month=?",
            [(station, layer, m) for m in months],
        )

    # ------------------------------------------------------------ export layouts

    def export_layout(self, station: str, target: str) -> tuple[str, str] | None:
        """(layout, stamp) JSON of an export file as last written, or None."""
        row = self.conn.execute(
            "SELECT layout, stamp FROM export_parts WHERE station=? AND target=?",
            (station, target),
        ).fetchone()
        return (str(row["layout"]), str(row["stamp"])) if row else None

    def record_export_layout(self, station: str, target: str, layout: str, stamp: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO export_parts(station, target, layout, stamp) VALUES (?,?,?,?)",
            (station, target, layout, stamp),
        )

    # ------------------------------------------------------------ events

    def event(
        self,
        stage: str,
        message: str,
        *,
        station: str | None = None,
        file_id: int | None = None,
        level: str = "error",
    ) -> None:
        self.conn.execute(
            "INSERT INTO events(at, station, stage, file_id, level, message) VALUES (?,?,?,?,?,?)",
            (now_iso(), station, stage, file_id, level, message),
        )

    # ------------------------------------------------------------ failures

    def record_failure(
        self,
        station: str,
        stage: str,
        file: str,
        reason: str,
        *,
        kind: str,
        file_id: int | None = None,
    ) -> int:
        """Record a failure as it happens (pending until a run reports it)."""
        cur = self.conn.execute(
            "INSERT INTO failures(at, station, stage, file, file_id, reason, kind) "
            "VALUES (?,?,?,?,?,?,?)",
            (now_iso(), station, stage, file, file_id, reason, kind),
        )
        return int(cur.lastrowid or 0)

    def resolve_failures(self, station: str, stage: str, file: str = "") -> None:
        """The stage succeeded on ``file`` ('' : on the station): its failures are over."""
        self.conn.execute(
            "UPDATE failures SET resolved_at=? "
            "WHERE station=? AND stage=? AND file=? AND resolved_at IS NULL",
            (now_iso(), station, stage, file),
        )

    def last_failure_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM failures").fetchone()[0])

    def pending_failures(
        self, stations: Sequence[str], *, upto: int | None = None, after: int = 0
    ) -> list[sqlite3.Row]:
        """Failures of ``stations`` no run has reported yet, oldest first, with ids
        in (``after``, ``upto``]."""
        marks = ",".join("?" * len(stations))
        return self.conn.execute(
            f"SELECT * FROM failures WHERE station IN ({marks}) AND reported_at IS NULL "
            "AND id > ? AND id <= ? ORDER BY id",
            (*stations, after, upto if upto is not None else 2**63 - 1),
        ).fetchall()

    def mark_reported(self, ids: Sequence[int]) -> None:
        at = now_iso()
        with self.transaction() as c:
            c.executemany("UPDATE failures SET reported_at=? WHERE id=?", [(at, i) for i in ids])

    def last_error(self, station: str) -> sqlite3.Row | None:
        """The newest failure of ``station`` that nothing has resolved since (a
        failed file that a newer version replaced is resolved too)."""
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT f.* FROM failures f LEFT JOIN files v ON v.id = f.file_id "
            "WHERE f.station=? AND f.resolved_at IS NULL AND v.superseded_by IS NULL "
            "ORDER BY f.id DESC LIMIT 1",
            (station,),
        ).fetchone()
        return row
