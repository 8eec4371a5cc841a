"""A station's ledger rows as a private snapshot, and the journal of what changed.

A cluster worker never opens state.sqlite. The client copies the rows of
one station (:data:`stationkit.ledger.STATION_TABLES`) into an in-memory
database and sends its bytes (:func:`snapshot`); the worker runs the
ordinary stage code against a :class:`~stationkit.ledger.Ledger` opened on
them (:func:`open_snapshot`), whose connection journals every statement
that writes, with its parameters, exactly as given. The client then plays
the journal on the real ledger in one transaction (:func:`replay`).

Replaying gives the ledger the stage code would have written in a local
run, because every write the stages make names its rows by station, file
id or key -- never by what happens to be in the table -- and only this
client writes the station's rows while it holds the run lock. Statements
inside a transaction the stage rolled back are dropped from the journal.
Parameters travel pickled: floats (mtimes), 63-bit file ids and text
arrive bit for bit.
"""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from stationkit.ledger import STATION_TABLES, Ledger, create_schema
from stationkit.sql import quote_identifier

#: (sql, parameters, executemany?)
Statement: TypeAlias = tuple[str, Any, bool]

_FIRST_WORD = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*([A-Za-z]+)", re.DOTALL)
#: statements that never change a row
_READS = frozenset({"SELECT", "PRAGMA", "EXPLAIN", "WITH", "VALUES", "ANALYZE"})
_BEGIN = frozenset({"BEGIN", "SAVEPOINT"})
_END = frozenset({"COMMIT", "END", "RELEASE"})


def _word(sql: str) -> str:
    m = _FIRST_WORD.match(sql)
    return m.group(1).upper() if m else ""


def _copy(parameters: Any) -> Any:
    """The parameters as they were bound, detached from the caller's objects."""
    if isinstance(parameters, Mapping):
        return dict(parameters)
    return tuple(parameters)


class JournalConnection(sqlite3.Connection):
    """A connection that keeps every statement that writes, in order.

    Create it with ``sqlite3.connect(..., factory=JournalConnection)``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.journal: list[Statement] = []
        #: journal length at each open transaction or savepoint
        self._marks: list[int] = []

    def _note(self, sql: str, parameters: Any, many: bool) -> None:
        word = _word(sql)
        if word in _READS:
            return
        if word in _BEGIN:
            self._marks.append(len(self.journal))
        elif word in _END:
            if self._marks:
                self._marks.pop()
        elif word == "ROLLBACK":
            to_savepoint = re.search(r"\bTO\b", sql, re.IGNORECASE) is not None
            if self._marks:
                del self.journal[self._marks[-1] :]
                if not to_savepoint:
                    self._marks.clear()
        else:
            self.journal.append((sql, parameters, many))

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        parameters = _copy(parameters)
        cursor = super().execute(sql, parameters)
        self._note(sql, parameters, False)
        return cursor

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        rows = [_copy(p) for p in parameters]
        cursor = super().executemany(sql, rows)
        self._note(sql, rows, True)
        return cursor


def snapshot(ledger: Ledger, station: str, tables: Sequence[str] = STATION_TABLES) -> bytes:
    """The rows of ``station`` in ``tables`` as a compressed SQLite database.

    The rows are copied inside SQLite (the ledger file attached read-only: it
    sees what the client has committed), never through Python objects."""
    mem = sqlite3.connect(":memory:", isolation_level=None, uri=True)
    try:
        create_schema(mem)
        source = f"file:{urllib.parse.quote(str(ledger.path.resolve()))}?mode=ro"
        mem.execute("ATTACH DATABASE ? AS src", (source,))
        have = {r[0] for r in mem.execute("SELECT name FROM src.sqlite_master WHERE type='table'")}
        mem.execute("BEGIN")
        for table in tables:
            if table not in have:
                continue  # a ledger written before the table existed
            name = quote_identifier(table)
            columns = ", ".join(
                quote_identifier(r[1]) for r in mem.execute(f"PRAGMA src.table_info({name})")
            )
            # foreign keys are off: rows arrive in any order (a file row names a
            # newer version that superseded it)
            mem.execute(
                f"INSERT INTO main.{name}({columns}) SELECT {columns} FROM src.{name} "
                "WHERE station=?",
                (station,),
            )
        mem.execute("COMMIT")
        mem.execute("DETACH DATABASE src")
        return zlib.compress(mem.serialize(), 1)
    finally:
        mem.close()


def open_snapshot(data: bytes, data_dir: Path) -> Ledger:
    """A ledger on a snapshot whose connection (a :class:`JournalConnection`)
    journals every write."""
    conn = sqlite3.connect(
        ":memory:", isolation_level=None, check_same_thread=False, factory=JournalConnection
    )
    conn.deserialize(zlib.decompress(data))
    conn.execute("PRAGMA foreign_keys=ON")
    return Ledger.on_connection(conn, data_dir)


def journal_of(ledger: Ledger) -> list[Statement]:
    """What a ledger opened by :func:`open_snapshot` has written."""
    conn = ledger.conn
    if not isinstance(conn, JournalConnection):
        raise TypeError("not a journaling ledger (open it with open_snapshot)")
    return list(conn.journal)


def replay(ledger: Ledger, journal: Sequence[Statement]) -> None:
    """Play ``journal`` on ``ledger`` in one transaction: all of it or nothing."""
    if not journal:
        return
    with ledger.transaction() as c:
        for sql, parameters, many in journal:
            if many:
                c.executemany(sql, parameters)
            else:
                c.execute(sql, parameters)
