"""DuckDB for stationkit: one way to connect, one way to quote an identifier.

Channel and point names come from logger files and metadata documents: they
are untrusted. SQL only ever receives them as bound values (``?`` parameters,
or columns of an Arrow table registered with the connection) or, where a name
must become an identifier (a column of a pivoted export), through
:func:`quote_identifier`. Nothing else builds SQL from names.

:func:`connect` returns a connection that never downloads anything: DuckDB's
extension auto-install and auto-load are off (parquet, json and icu are built
into the wheel), community and unsigned extensions are refused, the memory
limit is bounded and spilling goes to a folder inside the data directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

#: DuckDB's own working memory; the process needs some more on top [bytes]
DEFAULT_MEMORY_LIMIT = "256MB"
#: below data_dir: where DuckDB spills when a query outgrows its memory limit
TEMP_DIR = Path(".tmp") / "duckdb"
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)$", re.IGNORECASE)
#: environment variable: the threads a DuckDB query may use (default: every
#: CPU); 1 on a single-threaded Dask worker (docs/scaling.md)
THREADS_ENV = "STATIONKIT_THREADS"


def default_threads() -> int:
    """``$STATIONKIT_THREADS`` when it is a positive integer, else the CPU count."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, os.cpu_count() or 1)


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier, safe for any text.

    Embedded double quotes are doubled (SQL standard); a NUL character, which
    no identifier may hold, raises ValueError. ``Spd "80m" avg`` becomes
    ``"Spd ""80m"" avg"``.
    """
    if "\x00" in name:
        raise ValueError(f"an SQL identifier cannot contain a NUL character: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def connect(
    data_dir: Path,
    *,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection configured for stationkit.

    ``memory_limit`` is DuckDB's size syntax (``"256MB"``, ``"1GiB"``);
    ``threads`` defaults to :func:`default_threads`. Timestamps are shown and cast
    in UTC whatever the machine's time zone.
    """
    if not _MEMORY.match(memory_limit.strip()):
        raise ValueError(
            f"memory_limit: expected a size like '256MB' or '1GiB', got {memory_limit!r}"
        )
    temp = data_dir / TEMP_DIR
    temp.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "memory_limit": memory_limit,
        "temp_directory": str(temp),
        "preserve_insertion_order": True,
        "threads": threads if threads is not None else default_threads(),
    }
    con = duckdb.connect(":memory:", config=config)
    # icu is statically linked: TimeZone can be set once the connection exists
    con.execute("SET TimeZone = 'UTC'")
    # the library never prints: no progress bar on stdout during long queries
    con.execute("SET enable_progress_bar = false")
    return con
