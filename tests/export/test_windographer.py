"""Windographer export: the file byte for byte, round trip, flags, time zones,
flagging log, zip per type."""

from __future__ import annotations

import io
import math
import struct
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stationkit import __version__
from stationkit.export.labels import make_columns
from stationkit.export.windographer import Preamble, WindographerWriter
from stationkit.ledger import Ledger
from stationkit.parsers.windographer import read_windographer
from stationkit.parsers.windographer_flags import FlagPeriod, read_windographer_flags
from stationkit.pipeline.export import ExportSummary, export_station
from tests.export.clean import STEP, T0, make_config, tiny_readings, write_clean

FLAGS = {("Spd80mN", "avg", 1): ("icing",), ("Dir78mS", "avg", 0): ("tower_shadow",)}
HEADER = (
    "Date/Time\tWS 80m N Mean\tWS 80m N SD\tWS 80m S Mean\tWS 80m S Max\tWD 78m Mean"
    "\tT 2m Mean\tBattV Min"
)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def run_export(tmp_path: Path, extra: str = "", **options: object) -> tuple[ExportSummary, Path]:
    config = make_config(tmp_path, extra)
    with Ledger(config.data_dir) as ledger:
        summary = export_station(config, config.stations["M001"], ledger, **options)  # type: ignore[arg-type]
    return summary, config.data_dir


def tiny_station(tmp_path: Path, steps: int = 2, **kw: object) -> None:
    write_clean(tmp_path / "data", tiny_readings(steps, flags=FLAGS, **kw).readings)  # type: ignore[arg-type]


def test_tiny_station_file_byte_for_byte(tmp_path: Path) -> None:
    tiny_station(tmp_path)
    summary, data = run_export(tmp_path, '[stations.M001.export]\nexclude_flags = ["icing"]')
    assert summary.files == ["exports/M001/M001.txt"]
    expected = (
        f"Created 2024-01-01 01:20 by stationkit {__version__} (Windographer 4 text format)\r\n"
        "\r\n"
        "Latitude = N 53.210000\r\n"
        "Longitude = W 7.120000\r\n"
        "Elevation = 120 m\r\n"
        "Calm threshold = 0 m/s\r\n"
        "\r\n"
        "Included flags: <Unflagged data>, tower_shadow\r\n"
        "Excluded flags: icing\r\n"
        "\r\n"
        "Time stamps indicate the beginning of the time step.\r\n"
        "\r\n"
        f"{HEADER}\r\n"
        "2024-01-01 01:00:00\t0.37\t1.37\t10.37\t11.37\t20.37\t30.37\t40.37\r\n"
        "2024-01-01 01:10:00\t\t1.47\t10.47\t11.47\t20.47\t30.47\t40.47\r\n"
    )
    assert (data / "exports/M001/M001.txt").read_bytes() == expected.encode()
    assert (summary.rows, summary.columns, summary.first, summary.last) == (
        2,
        7,
        "2024-01-01 01:00:00",
        "2024-01-01 01:10:00",
    )


def test_preamble_south_east_and_unknown_site() -> None:
    p = Preamble(datetime(2024, 5, 1, 12, 0), "9.9", -33.5, 151.25, 57.5)
    assert p.lines()[2:5] == [
        "Latitude = S 33.500000",
        "Longitude = E 151.250000",
        "Elevation = 57.5 m",
    ]
    bare = Preamble(datetime(2024, 5, 1, 12, 0), "9.9").lines()
    assert not any(line.startswith(("Latitude", "Longitude", "Elevation")) for line in bare)
    assert "Excluded flags: <None>" in bare


TRICKY = [
    1019.9999,
    0.1 + 0.2,
    1e-7,
    -0.0,
    0.0,
    1e20,
    1.5e16,
    5e-324,
    1.7976931348623157e308,
    -2.2250738585072014e-308,
    123456789.12345679,
    9999.0,
    -9999.0,
    100.0,
    0.1 * 3 - 0.3,
]


def test_round_trip_through_our_reader_is_bit_for_bit(tmp_path: Path) -> None:
    n = len(TRICKY)
    values = {("Spd80mN", "avg", i): v for i, v in enumerate(TRICKY)}
    values[("Tmp2m", "avg", 3)] = None
    tiny = tiny_readings(n, values=values)
    write_clean(tmp_path / "data", tiny.readings)
    summary, data = run_export(tmp_path, include_flagged=True)
    result = read_windographer(data / summary.files[0], missing_markers=())
    assert result.meta.timestamp_is_end_of_period is False
    assert result.meta.extra["latitude"] == 53.21 and result.meta.extra["longitude"] == -7.12
    frame = result.frame
    assert frame.height == n
    stamps = frame.get_column("timestamp").to_list()
    assert stamps == [datetime(2024, 1, 1, 1, 0) + i * STEP for i in range(n)]
    columns = make_columns(
        {(r.point, r.statistic, r.measurement_type, r.height_m) for r in tiny.readings}
    )
    checked = 0
    for column in columns:
        got = frame.get_column(column.label).to_list()
        for i, value in enumerate(got):
            want = tiny.value(column.point, column.statistic, T0 + i * STEP)
            if want is None:
                assert value is None
            else:
                assert value is not None and bits(value) == bits(want), (column.label, i, want)
            checked += 1
    assert checked == n * 7


def test_every_cell_reads_back_with_float_and_never_uses_exponents(tmp_path: Path) -> None:
    values = {("Spd80mN", "avg", i): v for i, v in enumerate(TRICKY)}
    tiny = tiny_readings(len(TRICKY), values=values)
    write_clean(tmp_path / "data", tiny.readings)
    summary, data = run_export(tmp_path, include_flagged=True)
    lines = (data / summary.files[0]).read_bytes().decode().split("\r\n")
    start = lines.index(HEADER) + 1
    rows = [line.split("\t") for line in lines[start:] if line]
    cells = [row[1] for row in rows]
    assert all("e" not in c.lower() for row in rows for c in row[1:])
    assert [bits(float(c)) for c in cells] == [bits(v) for v in TRICKY]
    assert cells[:6] == ["1019.9999", "0.30000000000000004", "0.0000001", "-0", "0", "1" + "0" * 20]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=40,
    )
)
def test_any_float64_round_trips(values: list[float | None]) -> None:
    (column,) = make_columns([("Spd80mN", "avg", "wind_speed", 80.0)])
    wide = pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 1) + i * STEP for i in range(len(values))],
            column.label: pl.Series(values, dtype=pl.Float64),
        }
    )
    buf = io.BytesIO()
    WindographerWriter(buf, [column], Preamble(datetime(2024, 1, 2), __version__)).write(wide)
    got = read_windographer(io.BytesIO(buf.getvalue()), missing_markers=()).frame
    back = got.get_column(column.label).to_list()
    assert len(back) == len(values)
    for want, value in zip(values, back, strict=True):
        assert (
            (value is None) if want is None else (value is not None and bits(value) == bits(want))
        )


def _rows(path: Path) -> list[list[str]]:
    lines = path.read_bytes().decode().split("\r\n")
    return [line.split("\t") for line in lines[lines.index(HEADER) + 1 :] if line]


def test_default_excludes_every_flag(tmp_path: Path) -> None:
    tiny_station(tmp_path)
    summary, data = run_export(tmp_path)
    text = (data / summary.files[0]).read_text()
    assert "Included flags: <Unflagged data>\n" in text
    assert "Excluded flags: icing, tower_shadow\n" in text
    rows = _rows(data / summary.files[0])
    assert rows[0][5] == "" and rows[1][1] == ""  # tower_shadow and icing blanked
    assert rows[1][5] == "20.47" and rows[0][1] == "0.37"
    assert summary.excluded_flags == ["icing", "tower_shadow"]


def test_include_flagged_keeps_every_value(tmp_path: Path) -> None:
    tiny_station(tmp_path)
    summary, data = run_export(
        tmp_path, '[stations.M001.export]\nexclude_flags = ["icing"]', include_flagged=True
    )
    text = (data / summary.files[0]).read_text()
    assert "Included flags: <Unflagged data>, icing, tower_shadow\n" in text
    assert "Excluded flags: <None>\n" in text
    rows = _rows(data / summary.files[0])
    assert rows[1][1] == "0.47" and rows[0][5] == "20.37"


def test_exclude_flag_option_overrides_the_station_setting(tmp_path: Path) -> None:
    tiny_station(tmp_path)
    summary, data = run_export(
        tmp_path,
        '[stations.M001.export]\nexclude_flags = ["icing"]',
        exclude_flags=["tower_shadow"],
    )
    rows = _rows(data / summary.files[0])
    assert rows[1][1] == "0.47"  # icing kept
    assert rows[0][5] == ""  # tower_shadow left out


def test_local_time_by_default_utc_on_request(tmp_path: Path) -> None:
    tiny_station(tmp_path, steps=3)
    local, data = run_export(tmp_path, include_flagged=True)
    utc, _ = run_export(tmp_path, include_flagged=True, utc=True)
    assert local.files == ["exports/M001/M001.txt"] and local.time_zone == "UTC+01:00"
    assert utc.files == ["exports/M001/M001_utc.txt"] and utc.time_zone == "UTC"
    local_rows, utc_rows = _rows(data / local.files[0]), _rows(data / utc.files[0])
    assert [r[0] for r in local_rows] == [
        "2024-01-01 01:00:00",
        "2024-01-01 01:10:00",
        "2024-01-01 01:20:00",
    ]
    assert [r[0] for r in utc_rows] == [
        "2024-01-01 00:00:00",
        "2024-01-01 00:10:00",
        "2024-01-01 00:20:00",
    ]
    assert [r[1:] for r in local_rows] == [r[1:] for r in utc_rows]
    assert (data / utc.files[0]).read_text().startswith("Created 2024-01-01 00:30 by")
    # --start / --end are wall-clock times of the export's zone, [start, end)
    part, _ = run_export(
        tmp_path,
        include_flagged=True,
        start=datetime(2024, 1, 1, 1, 10),
        end=datetime(2024, 1, 1, 1, 20),
    )
    assert part.files == ["exports/M001/M001_20240101T0110_20240101T0120.txt"]
    assert [r[0] for r in _rows(data / part.files[0])] == ["2024-01-01 01:10:00"]


def test_missing_marker(tmp_path: Path) -> None:
    tiny_station(tmp_path)
    summary, data = run_export(tmp_path, '[stations.M001.export]\nmissing_marker = "-999"')
    rows = _rows(data / summary.files[0])
    assert rows[1][1] == "-999" and rows[0][5] == "-999"
    frame = read_windographer(data / summary.files[0], missing_markers=["-999"]).frame
    assert frame.get_column("WS 80m N Mean").to_list() == [0.37, None]


def test_flagging_log_runs_across_a_month_boundary(tmp_path: Path) -> None:
    start = datetime(2024, 1, 31, 22, 0, tzinfo=UTC)  # 23:00 local (UTC+1)
    flags = {("Spd80mN", "avg", i): ("icing",) for i in (*range(4, 10), 12, 13)}
    flags |= {("Dir78mS", "avg", i): ("tower_shadow",) for i in (0, 1)}
    flags[("Spd80mN", "sd", 5)] = ("icing", "tower_shadow")
    write_clean(tmp_path / "data", tiny_readings(24, start=start, flags=flags).readings)
    summary, data = run_export(tmp_path, flag_log=True)
    assert summary.files == ["exports/M001/M001.txt", "exports/M001/M001_flagging_log.txt"]
    log_path = data / summary.files[1]
    assert log_path.read_bytes().startswith(
        b"Data Column\tFlag Name\tStart Time\tEnd Time\tTime Steps\r\n"
    )
    periods = read_windographer_flags(log_path)
    t = datetime(2024, 1, 31, 23, 0)
    assert periods == [
        FlagPeriod("WD 78m Mean", "tower_shadow", t, t + 2 * STEP, 2),
        FlagPeriod("WS 80m N Mean", "icing", t + 4 * STEP, t + 10 * STEP, 6),
        FlagPeriod("WS 80m N SD", "icing", t + 5 * STEP, t + 6 * STEP, 1),
        FlagPeriod("WS 80m N SD", "tower_shadow", t + 5 * STEP, t + 6 * STEP, 1),
        FlagPeriod("WS 80m N Mean", "icing", t + 12 * STEP, t + 14 * STEP, 2),
    ]
    # the data file leaves those values out (every flag is excluded by default)
    frame = read_windographer(data / summary.files[0], missing_markers=()).frame
    ws = frame.get_column("WS 80m N Mean").to_list()
    assert [i for i, v in enumerate(ws) if v is None] == [4, 5, 6, 7, 8, 9, 12, 13]


def test_zip_of_one_file_per_measurement_type(tmp_path: Path) -> None:
    tiny_station(tmp_path, steps=3)
    summary, data = run_export(tmp_path, include_flagged=True, zip_by_type=True)
    main = (data / summary.files[0]).read_bytes()
    zpath = data / summary.files[-1]
    assert zpath.name == "M001_by_type.zip"
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        assert names == [
            "M001_wind_speed.txt",
            "M001_wind_direction.txt",
            "M001_air_temperature.txt",
            "M001_other.txt",
        ]
        assert all(i.date_time == (2024, 1, 1, 1, 30, 0) for i in zf.infolist())
        members = {n: zf.read(n) for n in names}
    head = main[: main.index(b"Date/Time")]
    for body in members.values():
        assert body.startswith(head)
    speed = read_windographer(io.BytesIO(members["M001_wind_speed.txt"]), missing_markers=())
    assert [c.name for c in speed.channels] == [
        "WS 80m N Mean",
        "WS 80m N SD",
        "WS 80m S Mean",
        "WS 80m S Max",
    ]
    full = read_windographer(data / summary.files[0], missing_markers=()).frame
    assert speed.frame.equals(full.select(speed.frame.columns))
    first = zpath.read_bytes()
    run_export(tmp_path, include_flagged=True, zip_by_type=True, force=True)
    assert zpath.read_bytes() == first  # deterministic


def test_source_date_epoch_sets_the_created_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_station(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(datetime(2024, 6, 1, tzinfo=UTC).timestamp())))
    summary, data = run_export(tmp_path, utc=True)
    assert (data / summary.files[0]).read_text().startswith("Created 2024-06-01 00:00 by")


def test_values_nan_and_inf_are_missing(tmp_path: Path) -> None:
    values = {("Spd80mN", "avg", 0): math.nan, ("Spd80mN", "avg", 1): math.inf}
    write_clean(tmp_path / "data", tiny_readings(2, values=values).readings)
    summary, data = run_export(tmp_path)
    assert [r[1] for r in _rows(data / summary.files[0])] == ["", ""]
