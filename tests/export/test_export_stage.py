"""The export stage: incremental, deterministic, atomic, streaming, configured."""

from __future__ import annotations

import logging
import os
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stationkit.config import Config
from stationkit.errors import ConfigError
from stationkit.export import select
from stationkit.export.select import ExportError, Selection, clean_files, iter_chunks, read_catalog
from stationkit.ledger import Ledger
from stationkit.pipeline.export import export_configured, export_settings, export_station
from tests.export.clean import Reading, make_config, table, tiny_readings, write_clean

FLAGS = {("Spd80mN", "avg", i): ("icing",) for i in range(30, 40)}


def export(config: Config, **options: object) -> tuple[object, list[Path]]:
    with Ledger(config.data_dir) as ledger:
        s = export_station(config, config.stations["M001"], ledger, **options)  # type: ignore[arg-type]
    return s, [config.data_dir / f for f in s.files]


def test_second_run_does_nothing_until_input_or_options_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path)
    write_clean(config.data_dir, tiny_readings(3).readings)
    first, (path,) = export(config)
    assert not first.skipped  # type: ignore[attr-defined]
    before = path.stat().st_mtime_ns
    caplog.set_level(logging.INFO, "stationkit")
    again, _ = export(config)
    assert again.skipped  # type: ignore[attr-defined]
    assert path.stat().st_mtime_ns == before
    assert "M001: exports/M001/M001.txt is up to date" in caplog.text
    # an option changes: written again
    other, _ = export(config, missing_marker="-999")
    assert not other.skipped  # type: ignore[attr-defined]
    assert export(config, missing_marker="-999")[0].skipped  # type: ignore[attr-defined]
    # the clean input changes: written again, with the new value
    values = {("Spd80mN", "avg", 0): 5.5}
    write_clean(config.data_dir, tiny_readings(3, values=values).readings)
    changed, _ = export(config, missing_marker="-999")
    assert not changed.skipped  # type: ignore[attr-defined]
    assert "\t5.5\t" in path.read_text()
    # the file was deleted: written again
    path.unlink()
    assert not export(config, missing_marker="-999")[0].skipped  # type: ignore[attr-defined]
    assert path.exists()
    assert not export(config, missing_marker="-999", force=True)[0].skipped  # type: ignore[attr-defined]


ALL_OUTPUTS: list[dict[str, object]] = [
    {"flag_log": True, "zip_by_type": True},
    {"fmt": "csv"},
    {"fmt": "csv", "layout": "long"},
    {"fmt": "parquet"},
    {"fmt": "parquet", "layout": "long", "utc": True},
]


def _all_bytes(config: Config) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for options in ALL_OUTPUTS:
        _, paths = export(config, force=True, **options)
        for p in paths:
            out[p.name] = p.read_bytes()
    return out


def test_identical_input_gives_identical_bytes(tmp_path: Path) -> None:
    readings = tiny_readings(300, flags=FLAGS).readings
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = make_config(tmp_path / "a"), make_config(tmp_path / "b")
    write_clean(a.data_dir, readings)
    write_clean(b.data_dir, readings)
    first = _all_bytes(a)
    assert sorted(first) == [
        "M001.csv",
        "M001.parquet",
        "M001.txt",
        "M001_by_type.zip",
        "M001_flagging_log.txt",
        "M001_long.csv",
        "M001_utc_long.parquet",
    ]
    assert _all_bytes(b) == first
    assert _all_bytes(a) == first  # and again, later


@pytest.mark.parametrize("amplification", [float("inf"), 0.0, None])
def test_bytes_do_not_depend_on_file_layout_or_window_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amplification: float | None
) -> None:
    """Streaming: whatever the window size, however lake/clean is split into
    files and row groups (sorted or not), and whether windows are read
    straight from Parquet (inf) or through the one-pass sort into temporary
    files (0), the output is the same."""
    start = datetime(2024, 1, 30, tzinfo=UTC)
    readings = tiny_readings(5 * 144, start=start, flags=FLAGS).readings  # 5 days over a month end
    (tmp_path / "one").mkdir()
    (tmp_path / "split").mkdir()
    (tmp_path / "calibrate").mkdir()
    one = make_config(tmp_path / "one")
    write_clean(one.data_dir, readings)
    reference = _all_bytes(one)
    if amplification is not None:
        monkeypatch.setattr(select, "MAX_AMPLIFICATION", amplification)
    monkeypatch.setattr(select, "CHUNK_ROWS", 500)  # windows of one day
    split = make_config(tmp_path / "split")
    shuffled = readings[::-1]
    for day in range(5):
        lo = start + timedelta(days=day)
        part = [r for r in shuffled if lo <= r.timestamp < lo + timedelta(days=1)]
        write_clean(split.data_dir, part, name=f"day-{day}.parquet", row_group_size=97)
    assert _all_bytes(split) == reference
    # the calibrate stage's order: one file, by channel then time, in row groups
    # that each span the whole period
    by_channel = sorted(readings, key=lambda r: (r.point, r.statistic or "", r.timestamp))
    calibrate = make_config(tmp_path / "calibrate")
    write_clean(calibrate.data_dir, by_channel, name="clean.parquet", row_group_size=1000)
    files = clean_files(calibrate.data_dir, "M001")
    sel = Selection("M001", utc_offset_hours=1.0)
    catalog = read_catalog(files, sel)
    spans = select._spans(files)
    assert select.read_amplification(spans, select.calendar_windows(sel, catalog)) > 2.0
    if amplification is not None:
        assert select.plan_windows(sel, catalog, spans)[1] is (amplification == 0.0)
    assert _all_bytes(calibrate) == reference


def test_memory_is_one_window_of_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(tmp_path)
    # 20 days x 7 columns, in row groups of a day
    write_clean(config.data_dir, tiny_readings(20 * 144).readings, row_group_size=1008)
    monkeypatch.setattr(select, "CHUNK_ROWS", 1000)
    files = clean_files(config.data_dir, "M001")
    sel = Selection("M001", utc_offset_hours=1.0)
    catalog = read_catalog(files, sel)
    sizes = [chunk.height for _, chunk in iter_chunks(files, sel, catalog)]
    assert sum(sizes) == 20 * 144 * 7
    assert len(sizes) >= 20 and max(sizes) <= 144 * 7  # one day at most


def test_duplicate_clean_rows_fail_without_leaving_files(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    readings = tiny_readings(3).readings
    write_clean(config.data_dir, readings)
    first = readings[0]
    twin = Reading(first.timestamp, first.point, first.statistic, 9.9)
    write_clean(config.data_dir, [twin], name="part-001.parquet")
    with pytest.raises(
        ExportError,
        match=r"M001: lake/clean has more than one value for point 'Spd80mN', statistic 'avg' "
        r"at 2024-01-01 01:00:00",
    ):
        export(config, flag_log=True, zip_by_type=True)
    out = config.data_dir / "exports" / "M001"
    assert sorted(os.listdir(out)) == []  # no file, no temporary left behind
    with Ledger(config.data_dir) as ledger:
        assert ledger.build_fingerprint("M001", "export:exports/M001/M001.txt") is None


def test_no_clean_data_unknown_point_and_bad_options(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with pytest.raises(
        ExportError,
        match=r"M001: no clean data in lake/clean/station=M001; run `stationkit calibrate` first",
    ):
        export(config)
    write_clean(config.data_dir, tiny_readings(3).readings)
    with pytest.raises(
        ExportError,
        match=r"M001: no readings of point 'Nope' in the period; points in lake/clean: "
        r"BattV, Dir78mS, Spd80mN, Spd80mS, Tmp2m",
    ):
        export(config, points=["Spd80mN", "Nope"])
    with pytest.raises(ExportError, match=r"M001: nothing to export: no clean readings from 2025"):
        export(config, start=datetime(2025, 1, 1))
    with pytest.raises(ExportError, match="Windographer files are wide"):
        export(config, layout="long")
    with pytest.raises(ExportError, match="include_flagged keeps every value"):
        export(config, include_flagged=True, exclude_flags=["icing"])
    with pytest.raises(ConfigError, match="missing marker may not contain tabs"):
        export(config, missing_marker="a\tb")
    _, (path,) = export(config, points=["Dir78mS", "BattV"], fmt="csv")
    assert path.read_text().splitlines()[0] == "timestamp,WD 78m Mean,BattV Min"


@pytest.mark.parametrize(
    ("table_text", "message"),
    [
        ('format = "xls"', """stations.M001.export.format: expected one of 'windographer', 'csv', 'parquet', got "xls\""""),
        ('format = ["csv", 3]', "stations.M001.export.format[1]: expected one of 'windographer', 'csv', 'parquet', got 3"),
        ('layout = "tall"', """stations.M001.export.layout: expected one of 'wide', 'long', got "tall\""""),
        ('exclude_flags = "icing"', 'stations.M001.export.exclude_flags: expected a list of flag names (["*"] for every flag, [] for none), got "icing"'),
        ("flag_log = 1", "stations.M001.export.flag_log: expected true or false, got 1"),
        ("zip = true", "stations.M001.export.zip: unknown key; valid keys: format, layout, exclude_flags, missing_marker, flag_log, zip_by_type, utc, round"),
    ],
)  # fmt: skip
def test_settings_errors_cite_the_key_path(tmp_path: Path, table_text: str, message: str) -> None:
    config = make_config(tmp_path, f"[stations.M001.export]\n{table_text}\n")
    with pytest.raises(ConfigError) as err:
        export_settings(config.stations["M001"])
    assert str(err.value) == message


def test_settings(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        '[stations.M001.export]\nformat = ["csv", "windographer", "csv"]\nlayout = "long"\n'
        "exclude_flags = []\nmissing_marker = 9999\nflag_log = true\nutc = true\n",
    )
    s = export_settings(config.stations["M001"])
    assert (s.formats, s.layout, s.exclude_flags, s.missing_marker, s.flag_log, s.utc) == (
        ("csv", "windographer"),
        "long",
        (),
        "9999",
        True,
        True,
    )
    assert not s.zip_by_type and s.configured


def test_export_configured_for_run(tmp_path: Path) -> None:
    bare = make_config(tmp_path)
    write_clean(bare.data_dir, tiny_readings(3, flags=FLAGS).readings)
    with Ledger(bare.data_dir) as ledger:
        assert export_configured(bare, bare.stations["M001"], ledger) == []
    config = make_config(
        tmp_path, '[stations.M001.export]\nformat = ["windographer", "parquet"]\nflag_log = true\n'
    )
    with Ledger(config.data_dir) as ledger:
        done = export_configured(config, config.stations["M001"], ledger)
        assert [s.files for s in done] == [
            ["exports/M001/M001.txt", "exports/M001/M001_flagging_log.txt"],
            ["exports/M001/M001.parquet"],
        ]
        again = export_configured(config, config.stations["M001"], ledger)
        assert all(s.skipped for s in again)
    assert pq.read_table(config.data_dir / "exports/M001/M001.parquet").num_rows == 3


def test_zip_members_are_complete_windographer_files(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    write_clean(config.data_dir, tiny_readings(3).readings)
    _, paths = export(config, zip_by_type=True)
    with zipfile.ZipFile(paths[-1]) as zf:
        assert zf.testzip() is None
        for info in zf.infolist():
            assert info.external_attr >> 16 == 0o644
            assert zf.read(info).split(b"\r\n")[-2].startswith(b"2024-01-01 01:20:00\t")


def test_table_helper_matches_the_design_schema() -> None:
    t = table(tiny_readings(1).readings)
    assert [f"{f.name}:{f.type}" for f in t.schema] == [
        "station:string",
        "timestamp:timestamp[us, tz=UTC]",
        "point:string",
        "measurement_type:string",
        "height_m:double",
        "statistic:string",
        "value:double",
        "raw_value:double",
        "flags:list<item: string>",
        "file_id:int64",
    ]
