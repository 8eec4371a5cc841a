"""``stationkit rebuild``: recreate the lake and exports from raw/ alone.

The rebuild happens aside, in ``.<data_dir>.rebuild/`` next to the data
directory (raw/ is linked, never copied or touched):

1. the ledger's file rows are reconstructed from raw/'s paths -- the
   origin (``manual/`` = added by hand), the source path, and the version
   (``name.~2~`` is version 2 of ``name``) -- with their sha256; source
   mtimes are carried over from the current ledger when there is one, so
   incremental fetching goes on as before;
2. every stage after fetch runs on them (the same list ``run`` uses).

Because file ids derive from file identity and content, the rebuilt lake is
byte-identical to one built incrementally from the same raw files.
``check=True`` compares the rebuilt lake/ and exports/ with the current ones
and reports each file that differs, is missing or is extra; otherwise the
rebuilt directories replace the current ones (old ones removed after).
With a ``cluster`` scheduler each station's reconstruction and stages run
on its workers (:mod:`stationkit.cluster`); this process keeps the lock
and writes the ledger.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from stationkit.atomic import TMP_PREFIX, deferred_sync, sha256_file, sync_tree
from stationkit.config import ClusterConfig, Config, StationConfig
from stationkit.lease import end_leases
from stationkit.ledger import LEDGER_NAME, Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.run import Failure, StationRun, connected, process_station

_VERSION = re.compile(r"^(?P<name>.+)\.~(?P<version>\d+)~$")


def station_outputs(station: str) -> tuple[str, ...]:
    """What a rebuild recreates and compares for one station."""
    return (
        f"lake/readings/station={station}",
        f"lake/clean/station={station}",
        f"exports/{station}",
    )


def station_state(station: str) -> tuple[str, ...]:
    """What a rebuild replaces besides the outputs."""
    return (f"staging/{station}", f"quarantine/{station}", f"cache/export/{station}")


@dataclass
class RebuildResult:
    """What was rebuilt, and for --check the files that differ."""

    stations: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    built: Path | None = None


def _identity(rel: str) -> tuple[str, str, int]:
    """(origin, source_path, version) of a path below raw/<station>/."""
    head, _, name = rel.rpartition("/")
    version = 1
    m = _VERSION.match(name)
    if m:
        name, version = m.group("name"), int(m.group("version"))
    source_path = f"{head}/{name}" if head else name
    origin = "add" if source_path.startswith("manual/") else "fetch"
    return origin, source_path, version


def reconstruct(config: Config, station: StationConfig, ledger: Ledger, old: Ledger | None) -> int:
    """Ledger file rows for every file below raw/<station>/; returns how many."""
    root = config.data_dir / "raw" / station.id
    if not root.is_dir():
        return 0
    entries = []
    for path in root.rglob("*"):
        if path.is_file() and not path.name.startswith(TMP_PREFIX):
            rel = path.relative_to(root).as_posix()
            entries.append((_identity(rel), path))
    # versions in order, so each new version supersedes the one before
    entries.sort(key=lambda e: (e[0][0], e[0][1], e[0][2]))
    for (origin, source_path, version), path in entries:
        mtime = None
        if old is not None:
            row = old.conn.execute(
                "SELECT mtime FROM files WHERE station=? AND origin=? AND source_path=? "
                "AND version=? AND parent_id IS NULL",
                (station.id, origin, source_path, version),
            ).fetchone()
            mtime = row["mtime"] if row else None
        ledger.add_file(
            station=station.id,
            origin=origin,
            source_path=source_path,
            path=path.relative_to(config.data_dir).as_posix(),
            size=path.stat().st_size,
            mtime=mtime,
            sha256=sha256_file(path),
        )
    return len(entries)


def _tree(root: Path) -> dict[str, Path]:
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(TMP_PREFIX)
    }


def compare(current: Path, rebuilt: Path, stations: Sequence[str]) -> list[str]:
    """Every output file of ``stations`` that differs between two data directories."""
    out: list[str] = []
    for top in (t for sid in stations for t in station_outputs(sid)):
        a, b = _tree(current / top), _tree(rebuilt / top)
        for rel in sorted(set(a) | set(b)):
            name = f"{top}/{rel}"
            if rel not in b:
                out.append(f"{name}: not produced by the rebuild")
            elif rel not in a:
                out.append(f"{name}: produced by the rebuild but missing")
            elif a[rel].read_bytes() != b[rel].read_bytes():
                out.append(f"{name}: differs")
    return out


def rebuild(
    config: Config,
    stations: Sequence[StationConfig],
    *,
    check: bool = False,
    cluster: ClusterConfig | None = None,
) -> RebuildResult:
    """Rebuild ``stations`` from raw/; compare (``check``) or replace the outputs.

    With a ``cluster`` scheduler the stations are rebuilt on its workers."""
    data = config.data_dir
    aside = data.parent / f".{data.name}.rebuild"
    result = RebuildResult(stations=[s.id for s in stations], built=aside)
    with RunLock(data), connected(cluster) as remote:
        end_leases(aside)  # tasks of a rebuild whose client died write no more
        shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir(parents=True)
        if (data / "raw").exists():
            _link_tree(data / "raw", aside / "raw")
        built = replace(config, data_dir=aside)
        old = Ledger(data, readonly=True) if (data / LEDGER_NAME).exists() else None
        try:
            with Ledger(aside) as ledger:
                if remote is not None:
                    from stationkit.cluster.client import rebuild_on_cluster

                    runs = rebuild_on_cluster(remote, built, stations, ledger, old)
                else:
                    runs = []
                    with deferred_sync():  # one sync below, not an fsync per file
                        for station in stations:
                            reconstruct(built, station, ledger, old)
                            runs.append(StationRun(station.id))
                            process_station(built, station, ledger, runs[-1])
                for run in runs:
                    result.failures.extend(run.failures)
        finally:
            if old is not None:
                old.close()
        # a station whose rebuild did not finish (its cluster task was lost)
        # keeps its current outputs
        ids = result.stations = [r.station for r in runs if not r.fatal]
        if check:
            result.differences = compare(data, aside, ids)
        else:
            sync_tree(aside)  # durable before it is put in place
            _swap(data, aside, ids)
        shutil.rmtree(aside, ignore_errors=True)
    return result


def _link_tree(src: Path, dest: Path) -> None:
    """``dest`` shows ``src``: a symbolic link, or -- where links need a privilege
    (Windows) -- a tree of hard links (copies across file systems)."""
    try:
        os.symlink(src.resolve(), dest, target_is_directory=True)
    except (OSError, NotImplementedError):
        shutil.copytree(src, dest, copy_function=_link_file)


def _link_file(src: str, dest: str) -> None:
    try:
        os.link(src, dest)
    except (OSError, AttributeError):
        shutil.copy2(src, dest)


_LEDGER_TABLES = ("files", "parses", "builds", "partitions", "export_parts")


def _swap(data: Path, aside: Path, stations: list[str]) -> None:
    """Put the rebuilt outputs and ledger rows of ``stations`` in place of the current ones."""
    for sid in stations:
        for top in (*station_outputs(sid), *station_state(sid)):
            new, cur = aside / top, data / top
            old = cur.with_name(f"{TMP_PREFIX}old-{cur.name}")
            shutil.rmtree(old, ignore_errors=True)
            if cur.exists():
                os.replace(cur, old)
            if new.exists():
                cur.parent.mkdir(parents=True, exist_ok=True)
                os.replace(new, cur)
            shutil.rmtree(old, ignore_errors=True)
    with Ledger(data) as ledger:
        c = ledger.conn
        c.execute("PRAGMA foreign_keys=OFF")
        c.execute("ATTACH DATABASE ? AS rebuilt", (str(aside / LEDGER_NAME),))
        try:
            with ledger.transaction():
                marks = ", ".join("?" * len(stations))
                for table in reversed(_LEDGER_TABLES):
                    c.execute(f"DELETE FROM main.{table} WHERE station IN ({marks})", stations)
                for table in _LEDGER_TABLES:
                    c.execute(
                        f"INSERT INTO main.{table} SELECT * FROM rebuilt.{table} WHERE station IN ({marks})",
                        stations,
                    )
        finally:
            c.execute("DETACH DATABASE rebuilt")
