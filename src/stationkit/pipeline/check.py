"""``stationkit check``: validate a station's metadata, flags and QC settings
and compare the metadata with the data the ledger has seen.

Read-only: it never takes the run lock and never writes. Invalid settings
raise :class:`~stationkit.errors.ConfigError` (key path or JSON path in the
message); what follows is reported, not raised:

* file columns that map to no point (they are calibrated as their own points);
* points none of whose columns appear in any parsed file;
* ignored columns (IEA ``is_ignored``) present in the data;
* columns with data outside every metadata period of their point (those
  readings are calibrated as their own points);
* calibrations that cannot be applied and flag targets that match nothing;
* clock settings of stations.toml that override different ones of the IEA
  document, and document logger configurations that disagree
  (:meth:`stationkit.clock.StationClock.warnings`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from stationkit.calibrate.flags import load_flags, merge_flags
from stationkit.calibrate.metadata import Resolver, resolve_segments
from stationkit.clock import StationClock
from stationkit.config import Config, StationConfig
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import gather_inputs, load_station_setup, point_statistics
from stationkit.textsafe import show_name


@dataclass
class CheckReport:
    """What ``stationkit check`` found for one station."""

    station: str
    #: where the metadata came from (document names, "stations.toml"); empty: none
    metadata: list[str] = field(default_factory=list)
    points: int = 0
    flag_periods: int = 0
    qc: bool = True
    #: channels seen in the data
    channels: int = 0
    unmapped_columns: list[str] = field(default_factory=list)
    points_without_data: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    #: "column (point)" with readings outside the point's metadata periods
    outside_periods: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        """Findings that ``--strict`` turns into a failure."""
        return (
            len(self.unmapped_columns)
            + len(self.points_without_data)
            + len(self.outside_periods)
            + len(self.warnings)
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = self.problems
        return d

    def text(self) -> str:
        source = " + ".join(self.metadata) if self.metadata else "none (identity calibration)"
        lines = [
            f"{self.station}: metadata {source}; {self.points} points, {self.channels} channels "
            f"in the data, {self.flag_periods} flag periods, QC {'on' if self.qc else 'off'}"
        ]
        for title, items in (
            ("columns without a point (calibrated as their own points)", self.unmapped_columns),
            ("points whose columns never appear in the data", self.points_without_data),
            ("ignored columns in the data", self.ignored_columns),
            ("columns with data outside their metadata periods", self.outside_periods),
        ):
            if items:  # column names come from the files: escaped
                lines.append(f"  {title}: {', '.join(show_name(i) for i in items)}")
        lines.extend(f"  warning: {show_name(w)}" for w in self.warnings)
        return "\n".join(lines)


def check_station(config: Config, station: StationConfig, ledger: Ledger) -> CheckReport:
    """Validate ``station``'s settings and compare its metadata with its data."""
    meta, flag_config, qc = load_station_setup(config, station)
    inputs = gather_inputs(config, station, ledger)
    report = CheckReport(
        station=station.id,
        metadata=list(meta.sources),
        points=len(meta.points),
        qc=qc.enabled,
        channels=len(inputs.channels),
    )
    segments, warnings = resolve_segments(meta, inputs.channels)
    statistics = point_statistics(segments, inputs.files)
    specs = load_flags(flag_config, station.id, inputs.logs)
    report.flag_periods = len(specs)
    _, flag_warnings = merge_flags(specs, Resolver.from_segments(segments, meta), statistics)
    report.warnings = StationClock.load(station).warnings() + warnings + flag_warnings
    if not meta.points:
        return report
    seen = set(inputs.channels)
    mentioned = meta.columns
    report.unmapped_columns = sorted(seen - mentioned)
    ignored = {
        c.column for p in meta.points for lc in p.logger_configs for c in lc.columns if c.ignored
    }
    report.ignored_columns = sorted(seen & ignored)
    for p in meta.points:
        used = {c.column for lc in p.logger_configs for c in lc.columns if not c.ignored}
        if not used & seen:
            report.points_without_data.append(p.name)
    # identity segments of a metadata column are the times its point does not cover
    owner = {
        c.column: p.name
        for p in meta.points
        for lc in p.logger_configs
        for c in lc.columns
        if not c.ignored
    }
    gaps = [s for s in segments if s.statistic is None and s.channel in owner]
    outside: set[str] = set()
    for f in inputs.files:
        if f.first_ts is None or f.last_ts is None:
            continue
        shift = timedelta(hours=f.utc_offset_hours)
        first = (f.first_ts + shift).replace(tzinfo=None)
        last = (f.last_ts + shift).replace(tzinfo=None)
        names = {name for name, _ in f.channels}
        for g in gaps:
            if g.channel not in names:
                continue
            if (g.date_from is None or last >= g.date_from) and (
                g.date_to is None or first < g.date_to
            ):
                outside.add(f"{g.channel} ({owner[g.channel]})")
    report.outside_periods = sorted(outside)
    return report
