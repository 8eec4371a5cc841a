"""run: archives fetched, unpacked and their members parsed, with lineage."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from stationkit.cli import cli
from stationkit.ledger import Ledger
from tests.conftest import CORPUS


def test_archives_flow_through_run_and_rerun_does_nothing(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    inc.mkdir()
    shutil.copy(
        CORPUS / "ARCHIVE" / "tsdat__tsdat__lidar.z06.00.20201201.000000.sta.7z",
        inc / "lidar.sta.7z",
    )
    shutil.copy(
        CORPUS / "ARCHIVE" / "tsdat__tsdat__buoy.z06.00.20201201.000000.zip", inc / "buoy.zip"
    )
    conf = tmp_path / "stations.toml"
    conf.write_text('[stations.B]\n[stations.B.source]\nkind = "local"\npath = "incoming"\n')
    result = CliRunner().invoke(cli, ["--config", str(conf), "run", "--json"])
    # the buoy CSVs are PNNL reformats no reader knows: quarantined, the rest goes on
    assert result.exit_code == 3, result.stdout
    data = tmp_path / "data"
    with Ledger(data) as ledger:
        archives = ledger.conn.execute(
            "SELECT f.source_path, p.format FROM files f JOIN parses p ON p.file_id=f.id WHERE p.status='archive'"
        ).fetchall()
        assert sorted(tuple(r) for r in archives) == [("buoy.zip", "zip"), ("lidar.sta.7z", "lzma")]
        sta = ledger.conn.execute(
            "SELECT m.source_path, m.path, p.status, p.format, a.source_path AS parent FROM files m "
            "JOIN files a ON a.id = m.parent_id JOIN parses p ON p.file_id = m.id WHERE p.format='windcube_sta'"
        ).fetchone()
        assert sta["parent"] == "lidar.sta.7z" and sta["status"] == "ok"
        assert sta["path"].startswith("staging/B/lidar.sta.7z/")
        junk = ledger.conn.execute(
            "SELECT COUNT(*) FROM files WHERE source_path LIKE '%__MACOSX%'"
        ).fetchone()[0]
        assert junk == 0
        before = ledger.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    lake = pl.read_parquet(data / "lake" / "readings" / "station=B")
    assert lake.height > 10_000  # 144 rows x ~138 channels of the WindCube file
    again = CliRunner().invoke(cli, ["--config", str(conf), "run", "--json"])
    assert again.exit_code == 0, again.stdout
    with Ledger(data) as ledger:
        assert ledger.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0] == before
