"""Issue 12 end to end (local-folder source, real parse and calibrate stages):
a file cut in its last number and its complete next version, non-finite
values, and timestamps no logger can have."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from stationkit.config import load_config
from stationkit.errors import ConfigError
from stationkit.export.select import clean_files
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import calibrate_station
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station
from stationkit.pipeline.rebuild import rebuild
from tests.pipeline.helpers import HEADER, make_station

#: 2024-03-01 00:00 UTC: the modification time the source reports
MTIME = 1_709_251_200


def lake(data_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(data_dir / "lake" / "readings" / "station=M1")


def warnings(ledger: Ledger) -> list[str]:
    return [r["message"] for r in ledger.conn.execute("SELECT message FROM events ORDER BY id")]


def write(path: Path, text: str, mtime: float = MTIME) -> None:
    path.write_bytes(text.encode())
    os.utime(path, (mtime, mtime))


def test_a_file_cut_in_its_last_number_is_superseded_by_its_complete_version(
    tmp_path: Path,
) -> None:
    cfg, incoming = make_station(tmp_path)
    st = cfg.stations["M1"]
    header = HEADER.replace(',"Note"', "").replace(',""', "", 1).replace(',"Smp"', "")
    rows = '"2024-01-01 01:10:00",0,0.5,5.5\r\n"2024-01-01 01:20:00",1,0.6,12.93\r\n'
    # fetched while the logger writes it: the file ends inside "12.93"
    write(incoming / "a.dat", header + rows[: rows.index("12.93") + 3])
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        assert parse_station(cfg, st, ledger).parsed == 1
        assert lake(cfg.data_dir).filter(pl.col("channel") == "WS_Std")["value"].to_list() == [5.5]
        assert any(
            "a.dat: line 6: truncated last line dropped (no line break, and its last value '12.'"
            in m
            for m in warnings(ledger)
        )
        # the next fetch brings the complete file: version 2 replaces version 1
        write(incoming / "a.dat", header + rows, MTIME + 600)
        assert fetch_station(cfg, st, ledger).fetched == 1
        p = parse_station(cfg, st, ledger)
        assert (p.parsed, p.superseded) == (1, 1)
        v2 = ledger.latest(st.id, "fetch", "a.dat")
        assert v2 is not None and v2.path.endswith("a.dat.~2~")
    ws = lake(cfg.data_dir).filter(pl.col("channel") == "WS_Std")
    assert ws["value"].to_list() == [5.5, 12.93]
    assert set(ws["file_id"]) == {v2.id}


def test_non_finite_values_are_null_and_never_beat_a_good_files_value(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    st = cfg.stations["M1"]
    bad = (
        '"2024-01-01 01:10:00",0,1e309,-1e309,"x"\r\n"2024-01-01 01:20:00",1,9.9e300,-2e300,"x"\r\n'
    )
    good = '"2024-01-01 01:10:00",0,5.5,0.5,"x"\r\n"2024-01-01 01:20:00",1,6.5,0.6,"x"\r\n'
    write(incoming / "a_bad.dat", HEADER + bad)
    write(incoming / "b_good.dat", HEADER + good)
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        assert parse_station(cfg, st, ledger).parsed == 2
        row = ledger.conn.execute(
            "SELECT p.warnings FROM parses p JOIN files f ON f.id = p.file_id "
            "WHERE f.source_path = 'a_bad.dat'"
        ).fetchone()
        assert json.loads(row["warnings"]) == [
            "4 value(s) that are not finite numbers (inf, NaN or |v| >= 1e+300) stored as null: "
            "'WS_Avg' (2), 'WS_Std' (2)"
        ]
        calibrate_station(cfg, st, ledger)
    values = lake(cfg.data_dir)["value"]
    assert values.is_not_null().sum() == 4  # the good file's; the bad file's are null
    assert not values.is_infinite().any() and not values.is_nan().any()
    clean = pl.concat([pl.read_parquet(p) for p in clean_files(cfg.data_dir, "M1")])
    got = clean.sort("point", "timestamp").select("point", "value").rows()
    assert got == [("WS_Avg", 5.5), ("WS_Avg", 6.5), ("WS_Std", 0.5), ("WS_Std", 0.6)]


def test_implausible_timestamps_are_dropped_and_a_file_of_nothing_else_quarantined(
    tmp_path: Path,
) -> None:
    cfg, incoming = make_station(tmp_path)
    st = cfg.stations["M1"]
    mixed = (
        '"1900-01-01 00:10:00",0,1.0,0.1,"x"\r\n'
        '"2024-01-01 01:10:00",1,5.5,0.5,"x"\r\n'
        '"2200-01-01 00:10:00",2,2.0,0.2,"x"\r\n'
        # after the file's source modification time (2024-03-01) + 2 days
        '"2024-03-05 00:10:00",3,3.0,0.3,"x"\r\n'
    )
    write(incoming / "a.dat", HEADER + mixed)
    write(incoming / "b.dat", HEADER + '"1979-12-31 23:00:00",0,1.0,0.1,"x"\r\n')
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        p = parse_station(cfg, st, ledger)
        assert (p.parsed, p.failed) == (1, 1)
        msgs = warnings(ledger)
        assert (
            "a.dat: 3 row(s) with timestamps outside the plausible period from "
            "1980-01-01 00:00:00 UTC (no logger data before 1980) to 2024-03-03 00:00:00 UTC "
            "(the file's source modification time 2024-03-01 00:00:00 UTC + 2 days) dropped; "
            "the first: 1899-12-31 23:00:00 UTC" in " ".join(msgs)
        )
        failed = ledger.conn.execute("SELECT error FROM parses WHERE status='failed'").fetchone()
        assert failed["error"].startswith(
            "raw/M1/b.dat: no row has a plausible timestamp: 1 row(s) with timestamps outside"
        )
    assert lake(cfg.data_dir)["timestamp"].unique().to_list() == [
        datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    ]
    assert [p.name.split("-", 1)[1] for p in (cfg.data_dir / "quarantine" / "M1").iterdir()] == [
        "b.dat"
    ]


def test_station_valid_from_and_valid_to_bound_the_readings_and_reparse(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    rows = "".join(
        f'"2024-01-01 0{h}:10:00",{h},{h}.5,0.5,"x"\r\n' for h in range(1, 6)
    )  # period starts 00:00 .. 04:00 UTC
    write(incoming / "a.dat", HEADER + rows)
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, cfg.stations["M1"], ledger)
        parse_station(cfg, cfg.stations["M1"], ledger)
    assert lake(cfg.data_dir)["timestamp"].n_unique() == 5
    text = (tmp_path / "stations.toml").read_text()
    (tmp_path / "stations.toml").write_text(
        text.replace(
            "averaging_period_minutes = 10",
            'averaging_period_minutes = 10\nvalid_from = 2024-01-01T01:00:00Z\nvalid_to = "2024-01-01T03:00:00"',
        )
    )
    cfg = load_config(tmp_path / "stations.toml")
    st = cfg.stations["M1"]
    assert st.valid_to == datetime(2024, 1, 1, 3, 0, tzinfo=UTC)
    with Ledger(cfg.data_dir) as ledger:
        assert parse_station(cfg, st, ledger).reparsed == 1
        assert any("valid_from" in m and "3 row(s)" in m for m in warnings(ledger))
    assert sorted(lake(cfg.data_dir)["timestamp"].unique().to_list()) == [
        datetime(2024, 1, 1, 1, 0, tzinfo=UTC),
        datetime(2024, 1, 1, 2, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            "valid_from = 1975-01-01",
            "stations.M1.valid_from: readings before 1980-01-01 are never kept",
        ),
        ("valid_from = 2024-02-01\nvalid_to = 2024-01-01", "stations.M1.valid_to: expected a time"),
        ('valid_to = "soon"', "stations.M1.valid_to: expected a UTC date or date-time"),
        ("valid_until = 2024-01-01", "valid_until"),
    ],
)
def test_valid_period_settings_are_validated(tmp_path: Path, lines: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        make_station(tmp_path, lines)


def test_rebuild_keeps_the_same_plausibility_bounds(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    rows = '"2024-01-01 01:10:00",0,5.5,0.5,"x"\r\n"2024-03-09 00:10:00",1,6.5,0.6,"x"\r\n'
    write(incoming / "a.dat", HEADER + rows)
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, cfg.stations["M1"], ledger)
        parse_station(cfg, cfg.stations["M1"], ledger)
        calibrate_station(cfg, cfg.stations["M1"], ledger)
    assert lake(cfg.data_dir).height == 2  # one row of each channel: 2024-03-09 is dropped
    # raw/ holds the file with today's mtime; the ledger's source mtime decides
    result = rebuild(cfg, [cfg.stations["M1"]], check=True)
    assert result.differences == []


def test_the_store_writes_only_finite_values_or_null(tmp_path: Path) -> None:
    from stationkit.parsers.base import ChannelInfo
    from stationkit.store import write_readings

    frame = pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(5)],
            "a": [1.0, float("nan"), float("inf"), -1e300, 9.99e299],
            "b": [None, 2.0, float("-inf"), 3.0, 4.0],
        }
    )
    found: list[str] = []
    out = tmp_path / "part.parquet"
    n = write_readings(out, "S", 7, frame, [ChannelInfo("a"), ChannelInfo("b")], found)
    assert n == 10
    table = pl.read_parquet(out)
    assert table.filter(pl.col("channel") == "a")["value"].to_list() == [
        1.0,
        None,
        None,
        None,
        9.99e299,
    ]
    assert table.filter(pl.col("channel") == "b")["value"].to_list() == [None, 2.0, None, 3.0, 4.0]
    assert found == [
        "4 value(s) that are not finite numbers (inf, NaN or |v| >= 1e+300) stored as null: "
        "'a' (3), 'b' (1)"
    ]
