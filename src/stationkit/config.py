"""stations.toml: loaded once, validated into frozen dataclasses.

Every error names the key path and what was expected, e.g.
``stations.M001.source.port: expected an integer, got "22x"``. Unknown keys
are errors (a typo must never be silently ignored). Relative paths are
resolved against the folder holding stations.toml. Secrets never live here:
the file names environment variables (``password_env``) or a git-ignored
secrets file (``secrets_file``).
"""

from __future__ import annotations

import inspect
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from stationkit.errors import ConfigError
from stationkit.parsers.delimited import DelimitedOptions
from stationkit.tomltable import DEFAULT_PATTERNS, TomlTable, show_value

STATION_ID = re.compile(r"^[A-Za-z0-9_-]+$")
#: archives may not expand beyond this many bytes per member (zip bombs)
DEFAULT_MAX_MEMBER_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class LocalSource:
    """A folder that files are dropped into (``kind = "local"``)."""

    path: Path
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    recursive: bool = False
    kind: Literal["local"] = "local"


@dataclass(frozen=True)
class SftpSource:
    """A remote directory on an SFTP server (``kind = "sftp"``)."""

    host: str
    username: str
    remote_dir: str
    port: int = 22
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    recursive: bool = False
    key_file: Path | None = None
    #: environment variable holding the key file's passphrase
    passphrase_env: str | None = None
    #: environment variable holding the password
    password_env: str | None = None
    #: use keys offered by a running ssh-agent ($SSH_AUTH_SOCK)
    agent: bool = False
    known_hosts: Path | None = None
    #: pinned host key fingerprint, "SHA256:..." (instead of known_hosts)
    host_key_fingerprint: str | None = None
    connect_timeout_s: float = 30.0
    retries: int = 3
    #: concurrent transfers on the one connection
    max_concurrent: int = 16
    kind: Literal["sftp"] = "sftp"


SourceConfig = LocalSource | SftpSource

#: the automatic QC flags that make a sensor suspect (stationkit.calibrate.qc)
SUSPECT_FLAGS = ("qc_flatline", "qc_icing", "qc_range", "qc_spike")


@dataclass(frozen=True)
class StatusSettings:
    """Fleet health (``[status]``): when a station is stale, a sensor suspect."""

    #: the fleet's default for stations that do not set ``stale_after_hours`` [h]
    stale_after_hours: float | None = None
    #: suspect sensors are judged on the last this many days of data [d]
    suspect_days: float = 7.0
    #: a point is suspect when one QC flag hits more than this share of its values
    suspect_share: float = 0.2
    #: the flags counted
    suspect_flags: tuple[str, ...] = SUSPECT_FLAGS


@dataclass(frozen=True)
class ReportSettings:
    """``[report]``: what ``stationkit run`` regenerates after each run."""

    #: folder of the static HTML fleet report; None: no report
    html: Path | None = None


@dataclass(frozen=True)
class ArchiveConfig:
    """How archives of a station are opened."""

    password_env: str | None = None
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES


@dataclass(frozen=True)
class StationConfig:
    """One station. Time settings left out are taken from its IEA document, else
    from file headers where the format states them, else the defaults (UTC, end
    of period, inferred interval): :mod:`stationkit.clock`."""

    id: str
    name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    elevation_m: float | None = None
    utc_offset_hours: float | None = None
    timestamp_is_end_of_period: bool | None = None
    averaging_period_minutes: float | None = None
    #: readings before this instant (UTC) are dropped as implausible (commissioning)
    valid_from: datetime | None = None
    #: readings from this instant (UTC) on are dropped as implausible (decommissioning)
    valid_to: datetime | None = None
    metadata: Path | None = None
    source: SourceConfig | None = None
    archives: ArchiveConfig = field(default_factory=ArchiveConfig)
    #: minimum time between two fetches of this station [min]
    fetch_interval_minutes: float = 0.0
    #: which parser options apply to this station's files (format -> options)
    parser_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the configurable reader for files no format recognises ([stations.X.reader])
    reader: DelimitedOptions | None = None
    #: the station's raw TOML table for stages that read their own sections
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: no data for longer than this makes the station stale [h]; None: the fleet
    #: default ([status]), else derived (see stationkit.pipeline.health.stale_after)
    stale_after_hours: float | None = None


#: how long a client waits for a Dask scheduler to answer [s]
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: how long a distributed run waits while the cluster has no worker at all [s]
DEFAULT_NO_WORKERS_TIMEOUT_S = 300.0
#: the forms ``scheduler`` takes (see :func:`check_scheduler`)
SCHEDULER_FORMS = "tcp://HOST:PORT, tls://HOST:PORT or local:N"
_SCHEDULER = re.compile(
    r"^(?:(?:tcp|tls)://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}|local:\d{1,3})$"
)


def check_scheduler(value: str, where: str) -> str:
    """A Dask scheduler address (``tcp://HOST:PORT``, ``tls://HOST:PORT``) or
    ``local:N`` (a cluster of N worker processes on this host)."""
    text = value.strip()
    if not _SCHEDULER.match(text) or (text.startswith("local:") and int(text[6:]) < 1):
        raise ConfigError(f"{where}: expected {SCHEDULER_FORMS}, got {value!r}")
    return text


@dataclass(frozen=True)
class ClusterConfig:
    """The top-level ``[cluster]`` table: where distributed work goes."""

    #: ``tcp://HOST:PORT``, ``tls://HOST:PORT`` or ``local:N``; None: this process
    scheduler: str | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    no_workers_timeout_s: float = DEFAULT_NO_WORKERS_TIMEOUT_S


@dataclass(frozen=True)
class Config:
    """The whole of stations.toml."""

    path: Path
    data_dir: Path
    stations: Mapping[str, StationConfig]
    secrets_file: Path | None = None
    #: command run when ``stationkit run`` fails; it gets the summary on stdin
    on_failure: tuple[str, ...] | None = None
    status: StatusSettings = field(default_factory=StatusSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def select(self, ids: tuple[str, ...] | list[str] = ()) -> list[StationConfig]:
        """The named stations (all when none are named), in a stable order."""
        if not ids:
            return [self.stations[k] for k in sorted(self.stations)]
        unknown = [i for i in ids if i not in self.stations]
        if unknown:
            raise ConfigError(
                f"unknown station {unknown[0]!r}; stations in {self.path.name}: "
                f"{', '.join(sorted(self.stations)) or '(none)'}"
            )
        return [self.stations[i] for i in dict.fromkeys(ids)]


# ---------------------------------------------------------------- validation


_LOCAL_KEYS = ("kind", "path", "patterns", "recursive")
_SFTP_KEYS = (
    "kind", "host", "port", "username", "remote_dir", "patterns", "recursive", "key_file",
    "passphrase_env", "password_env", "agent", "known_hosts", "host_key_fingerprint",
    "connect_timeout_s", "retries", "max_concurrent",
)  # fmt: skip
_STATION_KEYS = (
    "name", "latitude", "longitude", "elevation_m", "utc_offset_hours",
    "timestamp_is_end_of_period", "averaging_period_minutes", "metadata", "source",
    "archives", "fetch_interval_minutes", "parsers", "reader", "valid_from", "valid_to",
    "stale_after_hours",
)  # fmt: skip
#: readings before this are never plausible (see stationkit.plausible)
EARLIEST_READING = datetime(1980, 1, 1, tzinfo=UTC)
#: sections other stages validate themselves (calibration, flags, QC, exports)
_STAGE_SECTIONS = ("points", "sensors", "flags", "qc", "export", "exports")


def _source(t: TomlTable, base: Path) -> SourceConfig:
    kind = t.text("kind", required=True, choices=("local", "sftp"))
    if kind == "local":
        path = t.file_path("path", base, required=True)
        assert path is not None
        src: SourceConfig = LocalSource(
            path=path, patterns=t.patterns("patterns"), recursive=bool(t.flag("recursive"))
        )
        t.done(_LOCAL_KEYS)
        return src
    host = t.text("host", required=True)
    username = t.text("username", required=True)
    remote_dir = t.text("remote_dir", required=True)
    assert host is not None and username is not None and remote_dir is not None
    fingerprint = t.text("host_key_fingerprint")
    if fingerprint is not None and not fingerprint.startswith(("SHA256:", "MD5:")):
        raise ConfigError(
            f"{t.key('host_key_fingerprint')}: expected 'SHA256:...' as ssh-keygen -lf prints it, "
            f"got {show_value(fingerprint)}"
        )
    sftp = SftpSource(
        host=host,
        username=username,
        remote_dir=remote_dir,
        port=t.integer("port", 22, minimum=1, maximum=65535),
        patterns=t.patterns("patterns"),
        recursive=bool(t.flag("recursive")),
        key_file=t.file_path("key_file", base),
        passphrase_env=t.env("passphrase_env"),
        password_env=t.env("password_env"),
        agent=bool(t.flag("agent")),
        known_hosts=t.file_path("known_hosts", base),
        host_key_fingerprint=fingerprint,
        connect_timeout_s=t.number("connect_timeout_s", lo=0.1, hi=3600, unit=" s") or 30.0,
        retries=t.integer("retries", 3, minimum=0, maximum=20),
        max_concurrent=t.integer("max_concurrent", 16, minimum=1, maximum=256),
    )
    t.done(_SFTP_KEYS)
    return sftp


def _check_parser_options(fmt: str, opts: Mapping[str, Any], key: str) -> None:
    """The format exists and each option is one of its reader's keyword arguments."""
    from stationkit.parsers.registry import PARSERS  # the registry imports every reader

    if fmt not in PARSERS or fmt == "delimited":
        valid = ", ".join(sorted(f for f in PARSERS if f != "delimited"))
        raise ConfigError(
            f"{key}: unknown format; formats: {valid} (the delimited reader is [reader])"
        )
    params = inspect.signature(PARSERS[fmt].read).parameters
    accepted = [
        n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "name"
    ]
    for option in opts:
        if option not in accepted:
            hint = f"; options: {', '.join(accepted)}" if accepted else f"; {fmt} takes no options"
            raise ConfigError(f"{key}.{option}: unknown option{hint}")


def _station(sid: str, data: Any, base: Path) -> StationConfig:
    path = f"stations.{sid}"
    if not STATION_ID.match(sid):
        raise ConfigError(
            f"{path}: station ids use letters, digits, '_' and '-' only, got {show_value(sid)}"
        )
    t = TomlTable(data, path)
    extra = {k: t.data.pop(k) for k in _STAGE_SECTIONS if k in t.data}
    source_t = t.table("source")
    archives_t = t.table("archives")
    archives = ArchiveConfig()
    if archives_t is not None:
        archives = ArchiveConfig(
            password_env=archives_t.env("password_env"),
            max_member_bytes=archives_t.integer(
                "max_member_bytes", DEFAULT_MAX_MEMBER_BYTES, minimum=1, maximum=2**62
            ),
        )
        archives_t.done(("password_env", "max_member_bytes"))
    reader_raw = t.raw("reader")
    reader = (
        DelimitedOptions.from_mapping(reader_raw, f"{path}.reader")
        if reader_raw is not None
        else None
    )
    parsers_raw = t.raw("parsers")
    parser_options: dict[str, Mapping[str, Any]] = {}
    if parsers_raw is not None:
        pt = TomlTable(parsers_raw, f"{path}.parsers")
        for fmt, opts in pt.data.items():
            if not isinstance(opts, dict):
                raise ConfigError(f"{pt.key(fmt)}: expected a table of parser options")
            _check_parser_options(fmt, opts, pt.key(fmt))
            parser_options[fmt] = opts
    valid_from, valid_to = t.instant("valid_from"), t.instant("valid_to")
    if valid_from is not None and valid_from < EARLIEST_READING:
        raise ConfigError(
            f"{t.key('valid_from')}: readings before 1980-01-01 are never kept; "
            f"expected a later date, got {valid_from.date().isoformat()}"
        )
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ConfigError(
            f"{t.key('valid_to')}: expected a time after valid_from "
            f"({valid_from.isoformat()}), got {valid_to.isoformat()}"
        )
    station = StationConfig(
        id=sid,
        name=t.text("name"),
        latitude=t.number("latitude", lo=-90, hi=90, unit=" deg"),
        longitude=t.number("longitude", lo=-180, hi=180, unit=" deg"),
        elevation_m=t.number("elevation_m", lo=-500, hi=9000, unit=" m"),
        utc_offset_hours=t.number("utc_offset_hours", lo=-14, hi=14, unit=" h"),
        timestamp_is_end_of_period=t.flag("timestamp_is_end_of_period"),
        averaging_period_minutes=t.number(
            "averaging_period_minutes", lo=1 / 600, hi=1440, unit=" min"
        ),
        metadata=t.file_path("metadata", base),
        source=_source(source_t, base) if source_t is not None else None,
        archives=archives,
        fetch_interval_minutes=t.number("fetch_interval_minutes", lo=0, hi=525600, unit=" min")
        or 0.0,
        parser_options=parser_options,
        reader=reader,
        valid_from=valid_from,
        valid_to=valid_to,
        extra=extra,
        stale_after_hours=t.number("stale_after_hours", lo=0, hi=87600, unit=" h"),
    )
    t.done(_STATION_KEYS + _STAGE_SECTIONS)
    return station


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate a decoded stations.toml document."""
    base = path.parent
    top = TomlTable(dict(data), "")
    data_dir = top.file_path("data_dir", base) or base / "data"
    secrets_file = top.file_path("secrets_file", base)
    stations_raw = top.raw("stations")
    if stations_raw is None:
        stations_raw = {}
    st = TomlTable(stations_raw, "stations")
    stations = {sid: _station(sid, st.data[sid], base) for sid in sorted(st.data)}
    on_failure = _command(top, "on_failure")
    status = _status_settings(top.table("status"))
    report = _report_settings(top.table("report"), base)
    cluster = _cluster(top)
    top.done(("data_dir", "secrets_file", "on_failure", "stations", "status", "report", "cluster"))
    return Config(
        path=path,
        data_dir=data_dir,
        stations=stations,
        secrets_file=secrets_file,
        on_failure=on_failure,
        status=status,
        report=report,
        cluster=cluster,
    )


def _cluster(top: TomlTable) -> ClusterConfig:
    raw = top.raw("cluster")
    if raw is None:
        return ClusterConfig()
    t = TomlTable(raw, "cluster")
    scheduler = t.text("scheduler")
    connect = t.number("connect_timeout_s", lo=0.1, hi=3600, unit=" s")
    idle = t.number("no_workers_timeout_s", lo=1, hi=86400, unit=" s")
    t.done(("scheduler", "connect_timeout_s", "no_workers_timeout_s"))
    return ClusterConfig(
        scheduler=check_scheduler(scheduler, t.key("scheduler")) if scheduler else None,
        connect_timeout_s=DEFAULT_CONNECT_TIMEOUT_S if connect is None else connect,
        no_workers_timeout_s=DEFAULT_NO_WORKERS_TIMEOUT_S if idle is None else idle,
    )


def _status_settings(t: TomlTable | None) -> StatusSettings:
    if t is None:
        return StatusSettings()
    flags = t.texts("suspect_flags") or SUSPECT_FLAGS
    for i, name in enumerate(flags):
        if name not in SUSPECT_FLAGS:
            raise ConfigError(
                f"{t.key('suspect_flags')}[{i}]: expected one of {', '.join(SUSPECT_FLAGS)}, "
                f"got {show_value(name)}"
            )
    days = t.number("suspect_days", lo=1, hi=366, unit=" d")
    share = t.number("suspect_share", lo=0, hi=1)
    settings = StatusSettings(
        stale_after_hours=t.number("stale_after_hours", lo=0, hi=87600, unit=" h"),
        suspect_days=StatusSettings.suspect_days if days is None else days,
        suspect_share=StatusSettings.suspect_share if share is None else share,
        suspect_flags=flags,
    )
    t.done(("stale_after_hours", "suspect_days", "suspect_share", "suspect_flags"))
    return settings


def _report_settings(t: TomlTable | None, base: Path) -> ReportSettings:
    if t is None:
        return ReportSettings()
    settings = ReportSettings(html=t.file_path("html", base))
    t.done(("html",))
    return settings


def _command(t: TomlTable, name: str) -> tuple[str, ...] | None:
    """A command as a list of arguments, or a string split like a shell would (no shell runs)."""
    value = t.raw(name)
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise ConfigError(f"{t.key(name)}: cannot split the command ({exc})") from None
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ConfigError(
        f"{t.key(name)}: expected a command string or a list of arguments, got {show_value(value)}"
    )


def load_config(path: str | Path) -> Config:
    """Load and validate stations.toml."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: no such file; pass --config PATH or set STATIONKIT_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: expected UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return parse_config(data, p.resolve())
