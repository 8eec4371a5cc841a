"""The unpack stage: ledger lineage, idempotent re-runs (asserted on the
ledger and the log), quarantine of failed archives while the rest go on,
new archive versions, passwords from the environment."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import sqlite3
import zipfile
from pathlib import Path, PurePosixPath

import py7zr
import pytest

from stationkit.config import Config, load_config
from stationkit.layout import raw_dir, version_name
from stationkit.ledger import Ledger
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station
from stationkit.pipeline.unpack import stale_member_ids, unpack_station
from tests.conftest import CORPUS
from tests.pipeline.helpers import make_station, toa5

ST = "M001"
ENV = "SK_TEST_M001_ARCHIVE_PASSWORD"
PASSWORD = "pa55-w0rd"
CSV = b"TIMESTAMP,WS_avg\n2024-01-01 00:10:00,5.25\n"
LIDAR = CORPUS / "ARCHIVE" / "tsdat__tsdat__lidar.z06.00.20201201.000000.sta.7z"
STA = CORPUS / "WINDCUBE_STA" / "tsdat__tsdat__lidar.z06.00.20201201.000000.sta"


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.delenv(ENV, raising=False)
    (tmp_path / "stations.toml").write_text(
        f'[stations.{ST}]\n[stations.{ST}.archives]\npassword_env = "{ENV}"\n'
    )
    return load_config(tmp_path / "stations.toml")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_raw(ledger: Ledger, cfg: Config, rel: str, data: bytes, version: int = 1) -> int:
    """A file as the fetch stage leaves it: bytes in raw/<station>/ and a ledger row."""
    path = raw_dir(cfg.data_dir, ST) / version_name(PurePosixPath(rel), version)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ledger.add_file(
        station=ST,
        origin="fetch",
        source_path=rel,
        path=path.relative_to(cfg.data_dir).as_posix(),
        size=len(data),
        mtime=0.0,
        sha256=sha(data),
    )


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def sevenzip_bytes(files: dict[str, bytes], password: str | None = None) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(
        buf, "w", password=password, header_encryption=password is not None
    ) as sz:
        for name, data in files.items():
            sz.writestr(data, name)
    return buf.getvalue()


def snapshot(ledger: Ledger) -> dict[str, list[tuple[object, ...]]]:
    return {
        t: [tuple(r) for r in ledger.conn.execute(f"SELECT * FROM {t} ORDER BY 1")]
        for t in ("files", "parses", "events")
    }


def members_of(ledger: Ledger, parent: int) -> dict[str, sqlite3.Row]:
    rows = ledger.conn.execute(
        "SELECT * FROM files WHERE parent_id=? ORDER BY id", (parent,)
    ).fetchall()
    return {r["source_path"]: r for r in rows}


def parse_row(ledger: Ledger, file_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = ledger.conn.execute(
        "SELECT * FROM parses WHERE file_id=?", (file_id,)
    ).fetchone()
    return row


def test_lineage_quarantine_and_the_rest_go_on(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    inner = sevenzip_bytes({"x.dat": b"inner data"}, password=PASSWORD)
    data_dir = cfg.data_dir
    with Ledger(data_dir) as ledger:
        a = add_raw(
            ledger,
            cfg,
            "2024/a.zip",
            zip_bytes({"a.csv": CSV, "logs/inner.7z": inner, "__MACOSX/._a.csv": b"junk"}),
        )
        bad = add_raw(ledger, cfg, "bad.zip", zip_bytes({"a.csv": CSV})[:-30])  # truncated
        plain = add_raw(ledger, cfg, "plain.csv", CSV)
        lidar = add_raw(ledger, cfg, "lidar.sta.7z", LIDAR.read_bytes())
        s = unpack_station(cfg, cfg.stations[ST], ledger)

        assert (s.archives, s.members, s.failed) == (2, 3, 1)
        assert [e[0] for e in s.errors] == [f"raw/{ST}/bad.zip"]
        assert s.as_dict()["errors"] == [{"file": f"raw/{ST}/bad.zip", "error": s.errors[0][1]}]
        assert s.errors[0][1].startswith(f"raw/{ST}/bad.zip: the archive is not a readable zip")

        # members: one row each, parent = the archive fetched, bytes where path says
        ma = members_of(ledger, a)
        assert sorted(ma) == ["a.csv", "logs/inner.7z/x.dat"]
        for name, row in ma.items():
            assert row["origin"] == "member" and row["station"] == ST and row["mtime"] is None
            assert row["path"] == f"staging/{ST}/2024/a.zip/{name}"
            on_disk = (data_dir / row["path"]).read_bytes()
            assert (row["size"], row["sha256"]) == (len(on_disk), sha(on_disk))
        assert (data_dir / ma["a.csv"]["path"]).read_bytes() == CSV
        ml = members_of(ledger, lidar)
        assert list(ml) == ["lidar.sta"]  # named after the raw file: LZMA-alone has no name
        assert (data_dir / ml["lidar.sta"]["path"]).read_bytes() == STA.read_bytes()

        # the archive's outcome lists its members
        pa = parse_row(ledger, a)
        assert pa is not None and (pa["status"], pa["format"]) == ("archive", "zip")
        listed = json.loads(pa["meta"])["members"]
        assert [(m["name"], m["file_id"], m["kind"]) for m in listed] == [
            ("a.csv", ma["a.csv"]["id"], "zip"),
            ("logs/inner.7z/x.dat", ma["logs/inner.7z/x.dat"]["id"], "7z"),
        ]
        pl = parse_row(ledger, lidar)
        assert pl is not None and (pl["status"], pl["format"]) == ("archive", "lzma")

        # the failed one: outcome, event, quarantined as a hard link; raw/ untouched
        pb = parse_row(ledger, bad)
        assert pb is not None and (pb["status"], pb["format"]) == ("failed", "zip")
        assert pb["error"] == s.errors[0][1]
        q = data_dir / "quarantine" / ST / "bad.zip"
        assert q.stat().st_ino == (raw_dir(data_dir, ST) / "bad.zip").stat().st_ino
        ev = ledger.conn.execute("SELECT * FROM events").fetchall()
        assert [(e["stage"], e["file_id"], e["message"]) for e in ev] == [
            ("unpack", bad, s.errors[0][1])
        ]
        assert not (data_dir / "staging" / ST / "bad.zip").exists()

        # what the parse stage will pick up: the members and the plain file
        assert parse_row(ledger, plain) is None
        todo = {r.id for r in ledger.files_to_parse(ST)}
        assert todo == {plain, *(r["id"] for r in ma.values()), ml["lidar.sta"]["id"]}


def test_rerun_does_nothing(
    cfg: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with Ledger(cfg.data_dir) as ledger:
        add_raw(ledger, cfg, "a.zip", zip_bytes({"a.csv": CSV}))
        add_raw(ledger, cfg, "b.csv.gz", gzip.compress(CSV))
        add_raw(ledger, cfg, "bad.7z", sevenzip_bytes({"a": CSV})[:40])
        first = unpack_station(cfg, cfg.stations[ST], ledger)
        assert (first.archives, first.members, first.failed) == (2, 2, 1)
        before = snapshot(ledger)
        staged = {p: p.stat().st_mtime_ns for p in (cfg.data_dir / "staging").rglob("*")}
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="stationkit"):
            second = unpack_station(cfg, cfg.stations[ST], ledger)
        assert (second.archives, second.members, second.failed, second.errors) == (0, 0, 0, [])
        assert snapshot(ledger) == before
        assert {p: p.stat().st_mtime_ns for p in (cfg.data_dir / "staging").rglob("*")} == staged
        assert caplog.records == []


def test_new_archive_version_makes_old_members_stale(cfg: Config) -> None:
    with Ledger(cfg.data_dir) as ledger:
        v1 = add_raw(ledger, cfg, "a.zip", zip_bytes({"a.csv": CSV, "b.csv": CSV}))
        unpack_station(cfg, cfg.stations[ST], ledger)
        old = members_of(ledger, v1)
        for row in old.values():  # as the parse stage records them
            ledger.record_parse(row["id"], ST, "ok", output=f"lake/x/{row['id']}.parquet")
        assert stale_member_ids(ledger, ST) == []

        v2 = add_raw(ledger, cfg, "a.zip", zip_bytes({"a.csv": CSV + b"x", "c.csv": CSV}), 2)
        assert ledger.get_file(v1).superseded_by == v2
        s = unpack_station(cfg, cfg.stations[ST], ledger)
        assert (s.archives, s.members) == (1, 2)
        new = members_of(ledger, v2)
        assert sorted(new) == ["a.csv", "c.csv"]
        assert new["a.csv"]["path"] == f"staging/{ST}/a.zip.~2~/a.csv"
        assert (cfg.data_dir / old["a.csv"]["path"]).read_bytes() == CSV  # v1 staging kept
        stale = stale_member_ids(ledger, ST)
        assert stale == sorted(r["id"] for r in old.values())

        # the parse stage's part: drop their readings, mark them superseded
        for file_id in stale:
            ledger.set_parse_status(file_id, "superseded")
        assert stale_member_ids(ledger, ST) == []
        assert {r.id for r in ledger.files_to_parse(ST)} == {r["id"] for r in new.values()}


def test_never_parsed_stale_members_are_listed_too(cfg: Config) -> None:
    with Ledger(cfg.data_dir) as ledger:
        v1 = add_raw(ledger, cfg, "a.zip", zip_bytes({"a.csv": CSV}))
        unpack_station(cfg, cfg.stations[ST], ledger)
        add_raw(ledger, cfg, "a.zip", zip_bytes({"a.csv": CSV + b"x"}), 2)
        old = members_of(ledger, v1)["a.csv"]["id"]
        assert stale_member_ids(ledger, ST) == [old]
        ledger.record_parse(old, ST, "superseded")
        assert stale_member_ids(ledger, ST) == []


def test_missing_password_then_retry_failed(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(cfg.data_dir) as ledger:
        enc = add_raw(ledger, cfg, "enc.7z", sevenzip_bytes({"a.csv": CSV}, password=PASSWORD))
        s1 = unpack_station(cfg, cfg.stations[ST], ledger)
        assert s1.failed == 1
        assert f"environment variable {ENV} is not set" in s1.errors[0][1]
        quarantined = cfg.data_dir / "quarantine" / ST / "enc.7z"
        # a missing variable is the environment's fault: no outcome, no quarantine ...
        assert not quarantined.exists() and parse_row(ledger, enc) is None

        # ... so the next call tries again by itself; a wrong password is the
        # content's (it may belong to another archive): quarantined, kept failed
        monkeypatch.setenv(ENV, "wrong-one")
        s2 = unpack_station(cfg, cfg.stations[ST], ledger)
        assert s2.failed == 1 and "wrong password" in s2.errors[0][1]
        assert "--retry-failed" in s2.errors[0][1] and quarantined.exists()
        assert unpack_station(cfg, cfg.stations[ST], ledger).failed == 0  # not retried
        s2 = unpack_station(cfg, cfg.stations[ST], ledger, retry_failed=True)
        assert s2.failed == 1 and "wrong password" in s2.errors[0][1]
        assert ENV in s2.errors[0][1] and "wrong-one" not in s2.errors[0][1]
        assert all(
            "wrong-one" not in str(v) for rows in snapshot(ledger).values() for r in rows for v in r
        )

        monkeypatch.setenv(ENV, PASSWORD)
        s3 = unpack_station(cfg, cfg.stations[ST], ledger, retry_failed=True)
        assert (s3.archives, s3.members, s3.failed) == (1, 1, 0)
        row = parse_row(ledger, enc)
        assert row is not None and (row["status"], row["error"]) == ("archive", None)
        assert not quarantined.exists()
        assert list(members_of(ledger, enc)) == ["a.csv"]


def test_interrupted_run_reuses_member_rows(cfg: Config) -> None:
    """A crash after the members were recorded but before the archive's outcome."""
    with Ledger(cfg.data_dir) as ledger:
        a = add_raw(ledger, cfg, "a.zip", zip_bytes({"a.csv": CSV, "b.csv": CSV}))
        unpack_station(cfg, cfg.stations[ST], ledger)
        ledger.forget_parse([a])
        before = snapshot(ledger)["files"]
        s = unpack_station(cfg, cfg.stations[ST], ledger)
        assert (s.archives, s.members) == (1, 2)
        assert snapshot(ledger)["files"] == before
        row = parse_row(ledger, a)
        assert row is not None and row["status"] == "archive"


def test_fetch_unpack_parse_end_to_end(tmp_path: Path) -> None:
    """Members are parsed like any other file, with their own file ids."""
    cfg, incoming = make_station(tmp_path)
    day1 = toa5([("2024-01-01 01:10:00", 5.0, 0.5)]).encode()
    day2 = toa5([("2024-01-01 01:20:00", 6.0, 0.6)]).encode()
    (incoming / "logs.bin").write_bytes(zip_bytes({"d1.dat": day1, "d2.dat": day2}))
    st = cfg.stations["M1"]
    with Ledger(cfg.data_dir) as ledger:
        assert fetch_station(cfg, st, ledger).fetched == 1
        u = unpack_station(cfg, st, ledger)
        assert (u.archives, u.members) == (1, 2)
        p = parse_station(cfg, st, ledger)
        assert (p.parsed, p.failed) == (2, 0)
        ok = ledger.conn.execute(
            "SELECT f.source_path, f.parent_id FROM parses p JOIN files f ON f.id = p.file_id "
            "WHERE p.status = 'ok' ORDER BY f.source_path"
        ).fetchall()
        archive_id = ledger.conn.execute("SELECT id FROM files WHERE origin = 'fetch'").fetchone()[
            0
        ]
        assert [tuple(r) for r in ok] == [("d1.dat", archive_id), ("d2.dat", archive_id)]
