"""CSV and Parquet exports, wide and long."""

from __future__ import annotations

import csv
import io
import struct
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from stationkit.ledger import Ledger
from stationkit.pipeline.export import ExportSummary, export_station
from tests.export.clean import Reading, make_config, tiny_readings, write_clean

FLAGS = {("Spd80mN", "avg", 1): ("icing",), ("Dir78mS", "avg", 0): ("tower_shadow", "icing")}
LABELS = [
    "WS 80m N Mean",
    "WS 80m N SD",
    "WS 80m S Mean",
    "WS 80m S Max",
    "WD 78m Mean",
    "T 2m Mean",
    "BattV Min",
]


def run(tmp_path: Path, **options: object) -> tuple[ExportSummary, Path]:
    config = make_config(tmp_path)
    values = {("Spd80mS", "max", 0): 0.1 + 0.2, ("Tmp2m", "avg", 1): None}
    write_clean(tmp_path / "data", tiny_readings(2, flags=FLAGS, values=values).readings)
    with Ledger(config.data_dir) as ledger:
        s = export_station(config, config.stations["M001"], ledger, **options)  # type: ignore[arg-type]
    return s, config.data_dir / s.files[0]


def test_csv_wide(tmp_path: Path) -> None:
    s, path = run(tmp_path, fmt="csv", exclude_flags=["icing"])
    assert s.files == ["exports/M001/M001.csv"]
    assert path.read_text() == (
        "timestamp," + ",".join(LABELS) + "\n"
        "2024-01-01 01:00:00+01:00,0.37,1.37,10.37,0.30000000000000004,,30.37,40.37\n"
        "2024-01-01 01:10:00+01:00,,1.47,10.47,11.47,20.47,,40.47\n"
    )


def test_csv_wide_utc_with_a_label_needing_quotes(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    write_clean(tmp_path / "data", tiny_readings(1).readings)
    write_clean(
        tmp_path / "data",
        [Reading(datetime(2024, 1, 1, tzinfo=UTC), 'odd, "name"', None, 1.5)],
        name="part-001.parquet",
    )
    with Ledger(config.data_dir) as ledger:
        s = export_station(config, config.stations["M001"], ledger, fmt="csv", utc=True)
    rows = list(csv.reader(io.StringIO((config.data_dir / s.files[0]).read_text())))
    assert rows[0][-1] == 'odd, "name"'
    assert rows[1][0] == "2024-01-01 00:00:00+00:00" and rows[1][-1] == "1.5"


def test_csv_long(tmp_path: Path) -> None:
    s, path = run(tmp_path, fmt="csv", layout="long", exclude_flags=["icing"])
    assert s.files == ["exports/M001/M001_long.csv"] and s.rows == 14
    lines = path.read_text().splitlines()
    assert lines[0] == "station,timestamp,point,measurement_type,height_m,statistic,value,flags"
    assert lines[1:8] == [
        "M001,2024-01-01 01:00:00+01:00,Spd80mN,wind_speed,80,avg,0.37,",
        "M001,2024-01-01 01:00:00+01:00,Spd80mN,wind_speed,80,sd,1.37,",
        "M001,2024-01-01 01:00:00+01:00,Spd80mS,wind_speed,80,avg,10.37,",
        "M001,2024-01-01 01:00:00+01:00,Spd80mS,wind_speed,80,max,0.30000000000000004,",
        "M001,2024-01-01 01:00:00+01:00,Dir78mS,wind_direction,78,avg,,tower_shadow;icing",
        "M001,2024-01-01 01:00:00+01:00,Tmp2m,air_temperature,2,avg,30.37,",
        "M001,2024-01-01 01:00:00+01:00,BattV,,,min,40.37,",
    ]
    assert lines[8] == "M001,2024-01-01 01:10:00+01:00,Spd80mN,wind_speed,80,avg,,icing"


def test_parquet_wide_local_and_utc(tmp_path: Path) -> None:
    s, path = run(tmp_path, fmt="parquet", include_flagged=True)
    assert s.files == ["exports/M001/M001.parquet"]
    table = pq.read_table(path)
    assert table.column_names == ["timestamp", *LABELS]
    assert str(table.schema.field("timestamp").type) == "timestamp[us]"
    meta = table.schema.metadata
    assert meta[b"stationkit.utc_offset_hours"] == b"1.0"
    assert meta[b"stationkit.time_zone"] == b"UTC+01:00"
    field_meta = table.schema.field("WS 80m S Max").metadata
    assert field_meta == {
        b"stationkit.point": b"Spd80mS",
        b"stationkit.measurement_type": b"wind_speed",
        b"stationkit.height_m": b"80.0",
        b"stationkit.statistic": b"max",
    }
    frame = pl.read_parquet(path)
    assert frame.get_column("timestamp").to_list() == [
        datetime(2024, 1, 1, 1, 0),
        datetime(2024, 1, 1, 1, 10),
    ]
    assert frame.get_column("WS 80m S Max").to_list()[0] == 0.1 + 0.2
    assert frame.get_column("WS 80m N Mean").to_list() == [0.37, 0.47]  # flagged but included
    assert frame.get_column("T 2m Mean").to_list() == [30.37, None]
    s, path = run(tmp_path, fmt="parquet", include_flagged=True, utc=True)
    assert s.files == ["exports/M001/M001_utc.parquet"]
    frame = pl.read_parquet(path)
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert frame.get_column("timestamp")[0] == datetime(2024, 1, 1, tzinfo=UTC)


def test_parquet_long_keeps_flags_and_blanks_excluded_values(tmp_path: Path) -> None:
    s, path = run(tmp_path, fmt="parquet", layout="long", exclude_flags=["tower_shadow"])
    frame = pl.read_parquet(path)
    assert frame.columns == [
        "station",
        "timestamp",
        "point",
        "measurement_type",
        "height_m",
        "statistic",
        "value",
        "flags",
    ]
    assert frame.height == 14 and s.rows == 14
    dir0 = frame.filter(pl.col("point") == "Dir78mS").row(0, named=True)
    assert dir0["value"] is None and dir0["flags"] == ["tower_shadow", "icing"]
    ws1 = frame.filter((pl.col("point") == "Spd80mN") & (pl.col("statistic") == "avg")).row(
        1, named=True
    )
    assert ws1["value"] == 0.47 and ws1["flags"] == ["icing"]
    assert frame.get_column("timestamp").is_sorted()


def test_csv_values_read_back_bit_for_bit(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    values = [1019.9999, 0.1 + 0.2, 1e-7, -0.0, 1e22, 5e-324]
    tiny = tiny_readings(
        len(values), values={("Spd80mN", "avg", i): v for i, v in enumerate(values)}
    )
    write_clean(tmp_path / "data", tiny.readings)
    with Ledger(config.data_dir) as ledger:
        s = export_station(
            config, config.stations["M001"], ledger, fmt="csv", layout="long", include_flagged=True
        )
    rows = list(csv.DictReader(io.StringIO((config.data_dir / s.files[0]).read_text())))
    got = [r["value"] for r in rows if r["point"] == "Spd80mN" and r["statistic"] == "avg"]
    assert all("e" not in g for g in got)
    assert [struct.pack("<d", float(g)) for g in got] == [struct.pack("<d", v) for v in values]
