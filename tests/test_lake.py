"""The lake reads as one dataset from its root (docs/lake.md): pandas,
pyarrow.dataset, polars and DuckDB give the same columns, types and rows for
lake/readings and lake/clean of a two-station fleet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import stationkit
from stationkit import atomic
from stationkit.atomic import temp_path
from stationkit.calibrate.writer import CLEAN_SCHEMA, WRITE_SCHEMA, PartitionWriter
from stationkit.config import load_config
from stationkit.ledger import Ledger
from stationkit.pipeline import parse as parse_stage
from stationkit.pipeline.parse import parse_station
from stationkit.store import READINGS_SCHEMA
from tests.fleet import build

STRING, FLOAT, INT, STAMP = "string", "float64", "int64", "timestamp[us, UTC]"
FLAGS = "list<string>"
#: DESIGN's columns, in the order every tool gives them (the folder's column last)
EXPECTED = {
    "readings": {
        "timestamp": STAMP,
        "channel": STRING,
        "statistic": STRING,
        "value": FLOAT,
        "file_id": INT,
        "station": STRING,
    },
    "clean": {
        "timestamp": STAMP,
        "point": STRING,
        "measurement_type": STRING,
        "height_m": FLOAT,
        "statistic": STRING,
        "value": FLOAT,
        "raw_value": FLOAT,
        "flags": FLAGS,
        "file_id": INT,
        "station": STRING,
    },
}
LAYERS = tuple(EXPECTED)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data_dir of two stations built through the real pipeline."""
    return build(tmp_path_factory.mktemp("lake"), ("M1", "M2")).data_dir


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data_dir of stations whose ids are digits only (one with a leading zero)."""
    return build(tmp_path_factory.mktemp("digits"), ("1001", "0042")).data_dir


# ---------------------------------------------------------------- what each tool says


def arrow_kind(t: pa.DataType) -> str:
    """An Arrow type as one of the DESIGN kinds (string views, large and
    dictionary-encoded strings are strings)."""
    if pa.types.is_dictionary(t):
        return arrow_kind(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return STRING
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}, {t.tz}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"list<{arrow_kind(t.value_type)}>"
    return str(t).replace("double", "float64")


def pandas_kind(frame: pd.DataFrame, name: str) -> str:
    dtype = frame[name].dtype
    if isinstance(dtype, pd.CategoricalDtype):  # pandas' choice for a folder's column
        return pandas_kind(pd.DataFrame({name: dtype.categories}), name)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return f"timestamp[{dtype.unit}, {dtype.tz}]"
    if pd.api.types.is_object_dtype(dtype):  # lists of flags arrive as arrays of str
        cells = frame[name].dropna()
        assert all(all(isinstance(v, str) for v in c) for c in cells)
        return FLAGS
    if pd.api.types.is_string_dtype(dtype):
        return STRING
    return str(dtype)


def polars_kind(dtype: pl.DataType) -> str:
    return arrow_kind(pl.Series([], dtype=dtype).to_arrow().type)


def duckdb_kind(name: str) -> str:
    return {
        "VARCHAR": STRING,
        "DOUBLE": FLOAT,
        "BIGINT": INT,
        "TIMESTAMP WITH TIME ZONE": "timestamp[us, UTC]",
        "VARCHAR[]": FLAGS,
    }[name]


Read = Callable[[Path], tuple[dict[str, str], pl.DataFrame]]


def with_pandas(root: Path) -> tuple[dict[str, str], pl.DataFrame]:
    frame = pd.read_parquet(root)
    kinds = {c: pandas_kind(frame, c) for c in frame.columns}
    frame["station"] = frame["station"].astype(str)
    return kinds, pl.from_pandas(frame)


def with_pyarrow(root: Path) -> tuple[dict[str, str], pl.DataFrame]:
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    return {f.name: arrow_kind(f.type) for f in table.schema}, pl.DataFrame(pl.from_arrow(table))


def with_polars(root: Path) -> tuple[dict[str, str], pl.DataFrame]:
    frame = pl.read_parquet(root / "**" / "*.parquet", hive_partitioning=True)
    lazy = pl.scan_parquet(root / "**" / "*.parquet", hive_partitioning=True).collect()
    assert lazy.schema == frame.schema and lazy.height == frame.height
    return {k: polars_kind(v) for k, v in frame.schema.items()}, frame


def with_duckdb(root: Path) -> tuple[dict[str, str], pl.DataFrame]:
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true)")
    kinds = {name: duckdb_kind(str(t)) for name, t in zip(rel.columns, rel.types, strict=True)}
    return kinds, pl.DataFrame(pl.from_arrow(rel.to_arrow_table()))


TOOLS: dict[str, Read] = {
    "pandas": with_pandas,
    "pyarrow": with_pyarrow,
    "polars": with_polars,
    "duckdb": with_duckdb,
}


def reference(root: Path, layer: str) -> pl.DataFrame:
    """Every file read on its own, the station taken from its folder name."""
    parts = []
    for path in sorted(root.glob("station=*/*.parquet")):
        table = pq.read_table(path, partitioning=None)
        station = path.parent.name.removeprefix("station=")
        parts.append(pl.DataFrame(pl.from_arrow(table)).with_columns(station=pl.lit(station)))
    return canonical(pl.concat(parts), layer)


def canonical(frame: pl.DataFrame, layer: str) -> pl.DataFrame:
    """Rows in one order, each column in one polars type."""
    types = {
        STRING: pl.String,
        FLOAT: pl.Float64,
        INT: pl.Int64,
        STAMP: pl.Datetime("us", "UTC"),
        FLAGS: pl.List(pl.String),
    }
    names = list(EXPECTED[layer])
    cast = frame.select(
        pl.col(n).cast(pl.String) if EXPECTED[layer][n] == STRING else pl.col(n) for n in names
    ).cast({n: types[k] for n, k in EXPECTED[layer].items()})  # type: ignore[dict-item]
    keys = [n for n in names if n not in ("flags", "value", "raw_value")]
    return cast.sort(keys, nulls_last=False)


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("tool", TOOLS)
def test_the_lake_reads_from_its_root(fleet: Path, tool: str, layer: str) -> None:
    root = fleet / "lake" / layer
    kinds, frame = TOOLS[tool](root)
    assert kinds == EXPECTED[layer]  # names, order and types
    assert list(kinds) == list(EXPECTED[layer])
    got = canonical(frame, layer)
    assert sorted(got.get_column("station").unique()) == ["M1", "M2"]
    assert got.equals(reference(root, layer))


def test_the_tools_agree(fleet: Path) -> None:
    for layer in LAYERS:
        root = fleet / "lake" / layer
        answers = {tool: read(root) for tool, read in TOOLS.items()}
        first = answers["polars"]
        for tool, (kinds, frame) in answers.items():
            assert kinds == first[0], tool
            assert canonical(frame, layer).equals(canonical(first[1], layer)), tool


def test_station_ids_of_digits_stay_text_with_the_documented_calls(digits: Path) -> None:
    """Hive readers guess a type for folder values: ids like 0042 would become
    numbers. docs/lake.md gives each tool the call that keeps them text."""
    root = digits / "lake" / "clean"
    hive = ds.partitioning(pa.schema([("station", pa.string())]), flavor="hive")
    answers = {
        "pandas": pd.read_parquet(root, partitioning=hive)["station"].tolist(),
        "pyarrow": ds.dataset(root, partitioning=hive).to_table().column("station").to_pylist(),
        "polars": pl.scan_parquet(root, hive_schema={"station": pl.String})
        .collect()
        .get_column("station")
        .to_list(),
        "duckdb": [
            r[0]
            for r in duckdb.sql(
                f"SELECT station FROM read_parquet('{root}/**/*.parquet', "
                "hive_partitioning = true, hive_types = {'station': VARCHAR})"
            ).fetchall()
        ],
    }
    for tool, stations in answers.items():
        assert sorted(set(stations)) == ["0042", "1001"], tool


def test_files_hold_no_station_column(fleet: Path) -> None:
    for path in sorted((fleet / "lake").glob("*/station=*/*.parquet")):
        names = pq.read_schema(path).names
        assert "station" not in names, path
        expected = READINGS_SCHEMA if path.parts[-3] == "readings" else CLEAN_SCHEMA
        assert names == expected.names


def test_a_file_being_written_is_invisible_to_globbing_readers(fleet: Path) -> None:
    """polars and DuckDB open hidden files too: a temporary ending in .parquet
    (half written, no footer yet) broke every read of the lake during a run."""
    assert temp_path(Path("x/2024-03.parquet")).suffix == ".part"
    assert temp_path(Path("x/M1.txt")).suffix == ".txt"
    root = fleet / "lake" / "clean"
    writer = PartitionWriter(root / "station=M1" / "2024-03.parquet")
    try:
        rows = pq.read_table(next(root.glob("station=M1/*.parquet")), partitioning=None)
        # a row group on disk, no footer yet
        writer._writer.write_table(rows.replace_schema_metadata(None).cast(WRITE_SCHEMA))
        for tool, read in TOOLS.items():
            _kinds, frame = read(root)
            assert frame.height == reference(root, "clean").height, tool
        scanned = stationkit.open(fleet.parent / "stations.toml").scan("clean").collect()
        assert scanned.height == reference(root, "clean").height
    finally:
        writer.abort()
    assert not list(root.rglob(f"{atomic.TMP_PREFIX}*"))


def test_a_new_readings_layout_parses_every_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files written under an older layout are re-parsed, so one lake never
    mixes layouts (a mix is what readers of the root cannot merge)."""
    config = load_config(build(tmp_path, ("L1",)).path)
    st = config.stations["L1"]
    with Ledger(config.data_dir) as ledger:
        assert parse_station(config, st, ledger).parsed == 0  # nothing new
        monkeypatch.setattr(parse_stage, "READINGS_LAYOUT", parse_stage.READINGS_LAYOUT + 1)
        again = parse_station(config, st, ledger)
    assert (again.reparsed, again.parsed) == (2, 2)


def test_timestamps_are_utc_instants_everywhere(fleet: Path) -> None:
    root = fleet / "lake" / "clean"
    first = datetime(2024, 1, 31, 22, 0, tzinfo=UTC)
    assert pd.read_parquet(root)["timestamp"].min() == pd.Timestamp(first)
    assert pl.scan_parquet(root).select(pl.col("timestamp").min()).collect().item() == first
    got = duckdb.sql(
        f"SELECT min(timestamp) AT TIME ZONE 'UTC' FROM read_parquet('{root}/**/*.parquet')"
    ).fetchall()
    assert got == [(first.replace(tzinfo=None),)]
