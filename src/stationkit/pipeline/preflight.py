"""Check the whole configuration before any work starts.

``run`` and the stage commands call :func:`preflight` first, so that a
mistake in stations.toml is reported at once -- exit code 1, the key path
named, nothing fetched or parsed -- rather than after the fetch and parse
stages ran (or never). It reuses the validators the stages themselves use:
the station's metadata (stations.toml points and sensors, the IEA Task 43
document), flag settings and flag files, QC settings and export settings.

Some settings are legal but probably not what was meant; they are returned
as warnings, not failures:

* no stations at all;
* a station without ``[source]`` (only ``stationkit add`` brings it files);
* local source patterns that match none of the files in a folder that holds
  some (patterns are case-sensitive: ``*.DAT`` is not ``*.dat``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stationkit.calibrate.flags import read_flag_file
from stationkit.config import Config, LocalSource, StationConfig
from stationkit.errors import ConfigError
from stationkit.fetch.base import matches
from stationkit.pipeline.calibrate import load_station_setup
from stationkit.pipeline.export import export_settings
from stationkit.textsafe import show_name

#: a local folder is scanned for the pattern check up to this many entries
SCAN_LIMIT = 100_000


@dataclass
class Preflight:
    """What :func:`preflight` found: (station, message) errors and warnings."""

    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def preflight(
    config: Config, stations: Sequence[StationConfig], *, sources: bool = True
) -> Preflight:
    """Validate ``stations``' settings before any work.

    An error is the first problem found in a station's settings (key path and
    what was expected). ``sources`` adds the warnings about source settings
    (for the commands that fetch).
    """
    found = Preflight()
    if not config.stations:
        found.warnings.append(
            f"{config.path.name}: no stations defined (add a [stations.<id>] table); nothing to do"
        )
    for station in stations:
        try:
            check_station_settings(config, station)
        except ConfigError as exc:
            found.errors.append((station.id, str(exc)))
            continue
        if sources:
            found.warnings.extend(source_warnings(station))
    return found


def check_station_settings(config: Config, station: StationConfig) -> None:
    """Every setting a stage would read later: metadata, flags, QC, exports."""
    if station.metadata is not None and not station.metadata.is_file():
        raise ConfigError(
            f"stations.{station.id}.metadata: {station.metadata}: no such metadata document"
        )
    _, flag_config, _ = load_station_setup(config, station)
    for path in flag_config.files:
        read_flag_file(path, station=station.id)
    export_settings(station)


def source_warnings(station: StationConfig) -> list[str]:
    """Legal source settings that probably are not what was meant."""
    src = station.source
    if src is None:
        return [
            f"stations.{station.id}.source: not set; nothing is fetched for this station "
            "(files come only from `stationkit add`)"
        ]
    if not isinstance(src, LocalSource) or not src.path.is_dir():
        return []  # an SFTP listing needs a connection; a missing folder fails the fetch
    seen = 0
    for rel in _names(src.path, src.recursive):
        seen += 1
        if matches(rel, src.patterns):
            return []
    if not seen:
        return []  # a new station: no data yet is not a problem
    shown = ", ".join(repr(show_name(p)) for p in src.patterns)
    return [
        f"stations.{station.id}.source.patterns: {shown} match none of the {seen} file(s) in "
        f"{show_name(str(src.path))} (patterns are case-sensitive)"
    ]


def _names(root: Path, recursive: bool) -> Iterator[str]:
    """Relative names of the visible files below ``root``, as the local source sees them."""
    stack = [(root, "")]
    count = 0
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith(".") or e.is_symlink():
                continue
            count += 1
            if count > SCAN_LIMIT:
                return
            if e.is_dir():
                if recursive:
                    stack.append((Path(e.path), f"{prefix}{e.name}/"))
            elif e.is_file():
                yield f"{prefix}{e.name}"
