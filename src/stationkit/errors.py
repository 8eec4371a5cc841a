"""The errors stationkit raises. Every message names the file, line, station
or config key concerned and says what was expected."""

from __future__ import annotations

from pathlib import Path


class StationkitError(Exception):
    """Base class of every error stationkit raises on purpose."""

    #: True when the environment caused it, not the input (see stationkit.faults):
    #: a later run then tries again by itself
    environment: bool = False


class ConfigError(StationkitError):
    """stations.toml (or a metadata document) is missing, malformed or invalid."""


class ParseError(StationkitError):
    """A logger file could not be read as its format requires."""

    def __init__(
        self,
        path: str | Path | None,
        message: str,
        *,
        line: int | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = message
        where = self.path or "<stream>"
        if line is not None:
            where = f"{where}, line {line}"
        super().__init__(f"{where}: {message}")


class UnknownFormatError(ParseError):
    """No registered parser recognises the file's content."""


class FetchError(StationkitError):
    """A source could not be listed or a file could not be transferred."""

    environment = True  # fetch keeps no outcome of a failure: every run tries again


class UnpackError(StationkitError):
    """An archive could not be extracted safely."""


class CalibrateError(StationkitError):
    """The calibrate stage could not build a station's clean data."""


class LockedError(StationkitError):
    """Another stationkit process holds the data directory's run lock."""


class NotReadingsError(ParseError):
    """The file is recognised but holds no readings (an event log, a diagnostics dump):
    it is recorded as skipped, not as a failure."""


class ClusterError(StationkitError):
    """A Dask scheduler could not be reached, or its workers cannot do the work."""

    environment = True  # the next run tries the cluster again
