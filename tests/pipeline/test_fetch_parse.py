"""fetch + parse end to end: idempotency (asserted on the ledger), versions,
quarantine, time conversion, determinism of the readings Parquet."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from stationkit.config import load_config
from stationkit.ledger import Ledger
from stationkit.pipeline.fetch import add_files, fetch_station
from stationkit.pipeline.parse import parse_station
from stationkit.store import READINGS_SCHEMA
from tests.conftest import CORPUS, FIXTURES
from tests.pipeline.helpers import make_station, toa5


def counts(ledger: Ledger) -> tuple[int, int]:
    files = ledger.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    parses = ledger.conn.execute("SELECT COUNT(*) FROM parses").fetchone()[0]
    return files, parses


def test_second_fetch_and_parse_do_no_work(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    (incoming / "b.dat").write_text(toa5([("2024-01-01 01:20:00", 6.0, 0.6)]))
    (incoming / "ignored.txt").write_text("not matched by the patterns")
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        f1 = fetch_station(cfg, st, ledger)
        p1 = parse_station(cfg, st, ledger)
        assert (f1.fetched, p1.parsed) == (2, 2)
        before = counts(ledger)
        f2 = fetch_station(cfg, st, ledger)
        p2 = parse_station(cfg, st, ledger)
        assert (f2.fetched, f2.unchanged, p2.parsed, p2.failed) == (0, 0, 0, 0)
        assert counts(ledger) == before == (2, 2)
    assert sorted(p.name for p in (cfg.data_dir / "raw" / "M1").iterdir()) == ["a.dat", "b.dat"]


def test_readings_schema_time_conversion_and_text_columns(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(
        toa5([("2024-01-01 01:10:00", 5.0, 0.5), ("2024-01-01 01:20:00", 6.0, 0.6)])
    )
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        parse_station(cfg, st, ledger)
        row = ledger.conn.execute("SELECT * FROM parses").fetchone()
        assert row["status"] == "ok" and row["format"] == "toa5"
        assert (
            row["first_ts"] == "2024-01-01T00:00:00.000000Z"
        )  # 01:10 end label, UTC+1 -> 00:00 start
        assert row["skipped_channels"] == '["Note"]'
    (out,) = (cfg.data_dir / "lake" / "readings" / "station=M1").iterdir()
    table = pq.read_table(out)
    assert table.schema.equals(READINGS_SCHEMA)
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    assert df.get_column("channel").to_list() == [
        "WS_Avg",
        "WS_Avg",
        "WS_Std",
        "WS_Std",
    ]  # channel, then time
    assert df.get_column("timestamp").to_list()[:2] == [
        datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 10, tzinfo=UTC),
    ]
    assert df.get_column("statistic").to_list() == ["avg", "avg", "sd", "sd"]
    assert df.get_column("value").to_list() == [5.0, 6.0, 0.5, 0.6]
    with Ledger(cfg.data_dir) as ledger:
        (file_id,) = [r[0] for r in ledger.conn.execute("SELECT id FROM files")]
    assert set(df.get_column("file_id")) == {file_id}
    assert out.name == f"part-{file_id:019d}.parquet"


def test_changed_file_replaces_its_readings(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    src = incoming / "a.dat"
    src.write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        parse_station(cfg, st, ledger)
        # the logger appends a record; the file's size and mtime change
        src.write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5), ("2024-01-01 01:20:00", 7.5, 0.7)]))
        os.utime(src, (2_000_000_000, 2_000_000_000))
        f = fetch_station(cfg, st, ledger)
        p = parse_station(cfg, st, ledger)
        assert (f.fetched, p.parsed, p.superseded) == (1, 1, 1)
        v1 = ledger.latest(st.id, "fetch", "a.dat")
        assert v1 is not None and v1.version == 2
        old = ledger.conn.execute("SELECT id FROM files WHERE version=1").fetchone()[0]
        assert ledger.get_file(old).superseded_by == v1.id
        statuses = dict(tuple(r) for r in ledger.conn.execute("SELECT file_id, status FROM parses"))
        assert statuses == {old: "superseded", v1.id: "ok"}
    lake = cfg.data_dir / "lake" / "readings" / "station=M1"
    assert [p.name for p in lake.iterdir()] == [f"part-{v1.id:019d}.parquet"]
    df = pl.read_parquet(lake)
    assert df.filter(pl.col("channel") == "WS_Avg").get_column("value").to_list() == [5.0, 7.5]
    # raw/ keeps both versions
    assert sorted(p.name for p in (cfg.data_dir / "raw" / "M1").iterdir()) == ["a.dat", "a.dat.~2~"]


def test_touched_but_unchanged_file_is_not_stored_again(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    src = incoming / "a.dat"
    src.write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        os.utime(src, (2_000_000_000, 2_000_000_000))
        f = fetch_station(cfg, st, ledger)
        assert (f.fetched, f.unchanged) == (0, 1)
        (row,) = ledger.latest_by_source(st.id, "fetch").values()
        assert row.mtime == 2_000_000_000
        assert fetch_station(cfg, st, ledger).unchanged == 0  # and the new mtime is remembered


def test_bad_files_are_quarantined_and_the_rest_parse(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    (incoming / "good.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    (incoming / "dup.dat").write_bytes(
        (CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat").read_bytes()
    )
    (incoming / "noise.bin").write_bytes((FIXTURES / "toa5" / "garbage.bin").read_bytes())
    (incoming / "trunc.dat").write_bytes(
        (FIXTURES / "toa5" / "truncated_last_line.dat").read_bytes()
    )
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        p = parse_station(cfg, st, ledger)
        assert (p.parsed, p.failed) == (2, 2)
        errors = dict(p.errors)
        assert (
            "raw/M1/dup.dat, line 2: duplicate column name 'AirT_C(42)'" in errors["raw/M1/dup.dat"]
        )
        assert "raw/M1/noise.bin: a file no parser recognises" in errors["raw/M1/noise.bin"]
        rows = {r["file_id"]: r for r in ledger.conn.execute("SELECT * FROM parses")}
        trunc = next(
            r for r in rows.values() if r["status"] == "ok" and "truncated" in (r["warnings"] or "")
        )
        assert trunc["rows"] == 2
        again = parse_station(cfg, st, ledger)
        assert (again.parsed, again.failed) == (0, 0)  # failures are not retried on every run
    quarantined = sorted(
        p.name.split("-", 1)[1] for p in (cfg.data_dir / "quarantine" / "M1").iterdir()
    )
    assert quarantined == ["dup.dat", "noise.bin"]
    assert (cfg.data_dir / "raw" / "M1" / "dup.dat").exists()  # raw/ is never touched


def test_exact_duplicate_rows_are_dropped_with_a_warning(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    rows = [("2024-01-01 01:10:00", 5.0, 0.5), ("2024-01-01 01:20:00", 6.0, 0.6)]
    text = toa5(rows)
    last = text.splitlines(keepends=True)[-1]
    (incoming / "a.dat").write_text(text + last)
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        parse_station(cfg, st, ledger)
        row = ledger.conn.execute("SELECT rows, warnings FROM parses").fetchone()
    assert row["rows"] == 2 and "1 exact duplicate row(s) dropped" in row["warnings"]


def test_manual_add_is_idempotent(tmp_path: Path) -> None:
    cfg, _ = make_station(tmp_path)
    f = tmp_path / "upload.dat"
    f.write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        assert add_files(cfg, st, [f], ledger).fetched == 1
        assert add_files(cfg, st, [f], ledger).unchanged == 1
        assert counts(ledger) == (1, 0)
    assert (cfg.data_dir / "raw" / "M1" / "manual" / "upload.dat").read_bytes() == f.read_bytes()


def test_same_input_gives_byte_identical_parquet(tmp_path: Path) -> None:
    outputs = []
    for run in ("one", "two"):
        base = tmp_path / run
        base.mkdir()
        cfg, incoming = make_station(base)
        (incoming / "c.dat").write_bytes((FIXTURES / "toa5" / "minimal_crlf.dat").read_bytes())
        st = cfg.stations["M1"]
        with Ledger(cfg.data_dir) as ledger:
            fetch_station(cfg, st, ledger)
            parse_station(cfg, st, ledger)
        (out,) = (cfg.data_dir / "lake" / "readings" / "station=M1").iterdir()
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


READER = """
[stations.M1.reader]
delimiter = ";"
decimal = ","
header_row = 1
units_row = 2
dayfirst = true
statistics = [["Mittel$", "avg"], ["Stdabw$", "sd"]]
"""


def test_station_reader_takes_files_no_format_claims(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path, READER)
    (incoming / "logger.dat").write_bytes(
        (FIXTURES / "delimited" / "bom_crlf_semicolon_decimal_comma.csv").read_bytes()
    )
    (incoming / "campbell.dat").write_text(toa5([("2024-02-01 01:10:00", 5.0, 0.5)]))
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        p = parse_station(cfg, st, ledger)
        assert (p.parsed, p.failed) == (2, 0), p.errors
        formats = sorted(r[0] for r in ledger.conn.execute("SELECT format FROM parses"))
    assert formats == ["delimited", "toa5"]
    df = pl.read_parquet(cfg.data_dir / "lake" / "readings" / "station=M1")
    ws = df.filter(pl.col("channel") == "WG 80m Mittel").sort("timestamp")
    assert ws.get_column("statistic").to_list()[0] == "avg"
    # 01.02.2024 00:00 local (UTC+1), end of a 10-minute period -> 2024-01-31 22:50 UTC
    assert ws.get_column("timestamp")[0] == datetime(2024, 1, 31, 22, 50, tzinfo=UTC)
    assert ws.get_column("value").to_list() == [7.5, 8.25, None]


def test_interleaved_mixed_arrays_store_each_channel_only_at_its_own_times(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    src = CORPUS / "MIXED_ARRAY" / "MRE-Code-Hub__extract_loggernet__6-GndRadData.dat"
    (incoming / "cr23x.dat").write_bytes(src.read_bytes())
    lines = src.read_text().splitlines()
    daily = sum(1 for line in lines if line.startswith("111,"))
    minute = sum(1 for line in lines if line.startswith("213,"))
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        p = parse_station(cfg, st, ledger)
        assert p.parsed == 1, p.errors
    df = pl.read_parquet(cfg.data_dir / "lake" / "readings" / "station=M1")
    per_channel = df.group_by("channel").len()
    a111 = per_channel.filter(pl.col("channel").str.starts_with("A111_"))
    a213 = per_channel.filter(pl.col("channel").str.starts_with("A213_"))
    assert a111.height > 0 and set(a111.get_column("len")) == {daily}
    assert a213.height > 0 and set(a213.get_column("len")) == {minute}


def test_a_column_added_between_files_becomes_a_new_channel(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    (incoming / "day1.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    wider = (
        '"TOA5","M1","CR1000X","1","CR1000X.Std.07","CPU:m.CR1X","2","Ten"\r\n'
        '"TIMESTAMP","RECORD","WS_Avg","WS_Std","Note","AirT_Avg"\r\n'
        '"TS","RN","m/s","m/s","","Deg C"\r\n'
        '"","","Avg","Std","Smp","Avg"\r\n'
        '"2024-01-02 01:10:00",0,6.0,0.6,"x",3.5\r\n'
    )
    (incoming / "day2.dat").write_text(wider)
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        assert parse_station(cfg, st, ledger).parsed == 2
    df = pl.read_parquet(cfg.data_dir / "lake" / "readings" / "station=M1")
    counts = dict(df.group_by("channel").len().iter_rows())
    assert counts == {"WS_Avg": 2, "WS_Std": 2, "AirT_Avg": 1}


def test_fetch_interval_skips_a_dormant_station_until_due_or_forced(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path, "fetch_interval_minutes = 60")
    st = cfg.stations["M1"]
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    with Ledger(cfg.data_dir) as ledger:
        (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
        assert fetch_station(cfg, st, ledger, now=t0).fetched == 1
        (incoming / "b.dat").write_text(toa5([("2024-01-01 01:20:00", 6.0, 0.6)]))
        ledger.conn.execute(
            "UPDATE fetches SET last_success_at=?", (t0.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),)
        )
        soon = fetch_station(cfg, st, ledger, now=t0 + timedelta(minutes=59))
        assert soon.skipped_interval and soon.fetched == 0
        forced = fetch_station(cfg, st, ledger, now=t0 + timedelta(minutes=59), force=True)
        assert not forced.skipped_interval and forced.fetched == 1
        (incoming / "c.dat").write_text(toa5([("2024-01-01 01:30:00", 7.0, 0.7)]))
        ledger.conn.execute(
            "UPDATE fetches SET last_success_at=?", (t0.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),)
        )
        due = fetch_station(cfg, st, ledger, now=t0 + timedelta(minutes=60))
        assert not due.skipped_interval and due.fetched == 1


def test_changing_the_clock_offset_reparses_the_station(tmp_path: Path) -> None:
    cfg, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        fetch_station(cfg, st, ledger)
        parse_station(cfg, st, ledger)
        assert parse_station(cfg, st, ledger).reparsed == 0
    lake = cfg.data_dir / "lake" / "readings" / "station=M1"
    assert pl.read_parquet(lake).get_column("timestamp")[0] == datetime(
        2024, 1, 1, 0, 0, tzinfo=UTC
    )
    # the logger clock was UTC+3, not UTC+1: fix stations.toml, run again
    conf = tmp_path / "stations.toml"
    conf.write_text(conf.read_text().replace("utc_offset_hours = 1", "utc_offset_hours = 3"))
    cfg = load_config(conf)
    with Ledger(cfg.data_dir) as ledger:
        p = parse_station(cfg, cfg.stations["M1"], ledger)
        assert (p.reparsed, p.parsed) == (1, 1)
        assert parse_station(cfg, cfg.stations["M1"], ledger).parsed == 0
    df = pl.read_parquet(lake)
    assert set(df.get_column("timestamp")) == {datetime(2023, 12, 31, 22, 0, tzinfo=UTC)}
    assert len(list(lake.iterdir())) == 1


def test_parallel_file_parsing_gives_the_same_lake_and_ledger(tmp_path: Path) -> None:
    results = []
    for jobs in (1, 3):
        base = tmp_path / f"j{jobs}"
        base.mkdir()
        cfg, incoming = make_station(base)
        for i in range(6):
            (incoming / f"d{i}.dat").write_text(
                toa5([(f"2024-01-0{i + 1} 01:10:00", float(i), 0.5)])
            )
        (incoming / "dup.dat").write_bytes(
            (CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat").read_bytes()
        )
        st = cfg.stations["M1"]
        with Ledger(cfg.data_dir) as ledger:
            fetch_station(cfg, st, ledger)
            p = parse_station(cfg, st, ledger, jobs=jobs)
            assert (p.parsed, p.failed) == (6, 1)
            rows = ledger.conn.execute(
                "SELECT file_id, status, rows, first_ts, output, error FROM parses ORDER BY file_id"
            ).fetchall()
        lake = cfg.data_dir / "lake" / "readings" / "station=M1"
        results.append(
            ([tuple(r) for r in rows], {p.name: p.read_bytes() for p in sorted(lake.iterdir())})
        )
    assert results[0] == results[1]
