"""[cluster] in stations.toml and the --scheduler option."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stationkit.cli import cli
from stationkit.config import ClusterConfig, load_config
from stationkit.errors import ConfigError
from tests.pipeline.helpers import make_station, toa5


def write(tmp_path: Path, cluster: str) -> Path:
    conf = tmp_path / "stations.toml"
    conf.write_text(f"[cluster]\n{cluster}\n[stations.M1]\n")
    return conf


def test_cluster_table(tmp_path: Path) -> None:
    conf = write(tmp_path, 'scheduler = "tcp://dask.example.org:8786"\nconnect_timeout_s = 2.5')
    assert load_config(conf).cluster == ClusterConfig("tcp://dask.example.org:8786", 2.5, 300.0)
    conf = write(tmp_path, 'scheduler = "local:4"\nno_workers_timeout_s = 60')
    assert load_config(conf).cluster == ClusterConfig("local:4", 10.0, 60.0)
    (tmp_path / "plain.toml").write_text("[stations.M1]\n")
    assert load_config(tmp_path / "plain.toml").cluster.scheduler is None


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ('scheduler = "http://h:8786"', r"cluster\.scheduler: expected tcp://HOST:PORT, tls://HOST:PORT or local:N, got 'http://h:8786'"),
        ('scheduler = "tcp://h"', r"cluster\.scheduler: expected tcp://HOST:PORT"),
        ('scheduler = "local:0"', r"cluster\.scheduler: expected .* got 'local:0'"),
        ("scheduler = 8786", r"cluster\.scheduler: expected a string, got 8786"),
        ("connect_timeout_s = 0", r"cluster\.connect_timeout_s: expected a number from 0\.1 to 3600 s"),
        ("workers = 4", r"cluster\.workers: unknown key; valid keys: scheduler, connect_timeout_s"),
    ],
)  # fmt: skip
def test_cluster_table_errors_name_the_key(tmp_path: Path, cluster: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, cluster))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def test_scheduler_option_is_checked(tmp_path: Path) -> None:
    make_station(tmp_path)
    conf = str(tmp_path / "stations.toml")
    code, err = invoke("run", "--config", conf, "--scheduler", "http://h:1")
    assert code == 2 and "expected tcp://HOST:PORT, tls://HOST:PORT or local:N" in err
    code, err = invoke("rebuild", "--config", conf, "--scheduler", "local:x")
    assert code == 2 and "--scheduler" in err
    code, err = invoke("run", "--config", conf, "--jobs", "2", "--scheduler", "local:2")
    assert code == 2 and "--jobs runs stations in this process" in err
    assert not (tmp_path / "data").exists()  # nothing started


def test_scheduler_none_runs_here_whatever_stations_toml_says(tmp_path: Path) -> None:
    _, incoming = make_station(tmp_path)
    (incoming / "a.dat").write_text(toa5([("2024-01-01 01:10:00", 5.0, 0.5)]))
    conf = tmp_path / "stations.toml"
    # a scheduler nobody could reach: `none` must not even try it
    conf.write_text('[cluster]\nscheduler = "tcp://127.0.0.1:9"\n' + conf.read_text())
    code, err = invoke("run", "--config", str(conf), "--scheduler", "none", "--jobs", "2")
    assert (code, err) == (0, "")
    assert (tmp_path / "data" / "lake" / "clean" / "station=M1" / "2024-01.parquet").exists()
