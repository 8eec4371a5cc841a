"""stationkit run: sharding, parallel stations, failure summary and hook, log file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from stationkit.cli import cli
from stationkit.config import StationConfig, load_config
from stationkit.pipeline.run import run_stations, select_shard, shard_of
from tests.conftest import CORPUS
from tests.pipeline.helpers import toa5

BAD = CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat"


def fleet(tmp_path: Path, n: int, extra: str = "") -> Path:
    text = [extra]
    for i in range(n):
        sid = f"S{i:02d}"
        inc = tmp_path / "incoming" / sid
        inc.mkdir(parents=True)
        (inc / "a.dat").write_text(toa5([("2024-01-01 00:10:00", float(i), 0.1)]))
        text.append(f'[stations.{sid}.source]\nkind = "local"\npath = "incoming/{sid}"\n')
    conf = tmp_path / "stations.toml"
    conf.write_text("\n".join(text))
    return conf


def test_shards_partition_the_fleet_stably() -> None:
    stations = [StationConfig(f"M{i:03d}") for i in range(200)]
    shards = [select_shard(stations, (k, 3)) for k in (1, 2, 3)]
    ids = [s.id for part in shards for s in part]
    assert sorted(ids) == sorted(s.id for s in stations)  # every station in exactly one shard
    assert all(40 < len(p) < 95 for p in shards)
    assert shard_of("M001", 3) == shard_of("M001", 3)
    assert select_shard(stations, None) == stations


def test_parallel_jobs_give_the_same_lake_as_one_job(tmp_path: Path) -> None:
    outputs = []
    for jobs in (1, 3):
        base = tmp_path / f"j{jobs}"
        base.mkdir()
        cfg = load_config(fleet(base, 5))
        result = run_stations(cfg, cfg.select(), jobs=jobs)
        assert result.exit_code == 0 and not result.failures
        lake = sorted((cfg.data_dir / "lake" / "readings").rglob("*.parquet"))
        outputs.append([(p.relative_to(cfg.data_dir).as_posix(), p.read_bytes()) for p in lake])
    assert len(outputs[0]) == 5 and outputs[0] == outputs[1]


def test_failure_summary_hook_and_exit_code_3(tmp_path: Path) -> None:
    received = tmp_path / "hook.txt"
    hook = f'on_failure = ["{sys.executable}", "-c", "import sys; open({str(received)!r}, \\"w\\").write(sys.stdin.read())"]\n'
    conf = fleet(tmp_path, 2, hook)
    (tmp_path / "incoming" / "S01" / "b.dat").write_bytes(BAD.read_bytes())
    result = CliRunner().invoke(
        cli, ["--config", str(conf), "run", "--log-file", str(tmp_path / "run.log")]
    )
    assert result.exit_code == 3
    bad = tmp_path / "data" / "raw" / "S01" / "b.dat"
    assert result.stderr == (
        f"stationkit: error: S01: parse: {bad}, line 2: duplicate column name "
        "'AirT_C(42)' (fields 6 and 7); every column needs a unique name\n"
    )
    assert received.read_text().startswith(
        "stationkit run: 1 failure(s), exit code 3\n  S01 parse raw/S01/b.dat"
    )
    assert "failure: S01 parse raw/S01/b.dat" in (tmp_path / "run.log").read_text()


def test_unreachable_source_is_exit_1_when_nothing_else_could_be_done(tmp_path: Path) -> None:
    conf = tmp_path / "stations.toml"
    conf.write_text('[stations.A.source]\nkind = "local"\npath = "missing"\n')
    result = CliRunner().invoke(cli, ["--config", str(conf), "run", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["failures"][0]["stage"] == "fetch"
    assert "missing: does not exist or is not a folder" in summary["failures"][0]["reason"]


def test_shard_option_is_validated(tmp_path: Path) -> None:
    conf = fleet(tmp_path, 1)
    result = CliRunner().invoke(cli, ["--config", str(conf), "run", "--shard", "3/2"])
    assert result.exit_code == 2 and "expected K/N with 1 <= K <= N" in result.stderr
