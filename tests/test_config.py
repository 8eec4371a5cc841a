"""stations.toml validation: exact messages naming the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from stationkit.config import LocalSource, SftpSource, load_config
from stationkit.errors import ConfigError

GOOD = """
data_dir = "store"

[stations.M001]
name = "Site X mast 1"
latitude = 53.21
longitude = -7.12
elevation_m = 120
utc_offset_hours = 0
timestamp_is_end_of_period = true
averaging_period_minutes = 10
metadata = "meta/M001.json"

[stations.M001.source]
kind = "sftp"
host = "loggers.example.org"
port = 22
username = "met"
remote_dir = "/data/M001"
patterns = ["*.dat", "*.zip", "*.7z"]
key_file = "~/.ssh/id_ed25519"
known_hosts = "~/.ssh/known_hosts"

[stations.M001.archives]
password_env = "M001_ARCHIVE_PASSWORD"

[stations.M002.source]
kind = "local"
path = "incoming/M002"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "stations.toml"
    p.write_text(text)
    return p


def test_design_keys_are_honoured(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.data_dir == tmp_path / "store"
    m1 = cfg.stations["M001"]
    assert (m1.latitude, m1.longitude, m1.elevation_m) == (53.21, -7.12, 120.0)
    assert (m1.utc_offset_hours, m1.timestamp_is_end_of_period, m1.averaging_period_minutes) == (
        0.0,
        True,
        10.0,
    )
    assert m1.metadata == tmp_path / "meta" / "M001.json"
    assert isinstance(m1.source, SftpSource)
    assert m1.source.port == 22 and m1.source.patterns == ("*.dat", "*.zip", "*.7z")
    assert m1.source.key_file == Path("~/.ssh/id_ed25519").expanduser()
    assert m1.archives.password_env == "M001_ARCHIVE_PASSWORD"
    m2 = cfg.stations["M002"]
    assert isinstance(m2.source, LocalSource) and m2.source.path == tmp_path / "incoming" / "M002"
    assert m2.utc_offset_hours is None  # left to the files / defaults
    assert [s.id for s in cfg.select()] == ["M001", "M002"]


def test_data_dir_defaults_to_data_beside_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[stations.A]\n"))
    assert cfg.data_dir == tmp_path / "data"


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[stations.M001.source]\nkind="sftp"\nhost="h"\nusername="u"\nremote_dir="/d"\nport="22x"\n',
         'stations.M001.source.port: expected an integer, got "22x"'),
        ('[stations.M001.source]\nkind="sftp"\nhost="h"\nusername="u"\nremote_dir="/d"\nport=70000\n',
         "stations.M001.source.port: expected an integer from 1 to 65535, got 70000"),
        ('[stations.M001.source]\nkind="ftp"\n',
         "stations.M001.source.kind: expected one of 'local', 'sftp', got \"ftp\""),
        ('[stations.M001.source]\nkind="sftp"\nusername="u"\nremote_dir="/d"\n',
         "stations.M001.source.host: missing; expected a string"),
        ("[stations.M001]\nlatitude=123\n", "stations.M001.latitude: expected a number from -90 to 90 deg, got 123"),
        ('[stations.M001]\nlatitude="53N"\n', 'stations.M001.latitude: expected a number, got "53N"'),
        ("[stations.M001]\ntimestamp_is_end_of_period=1\n",
         "stations.M001.timestamp_is_end_of_period: expected true or false, got 1"),
        ("[stations.M001]\nlatitud=53\n", "stations.M001.latitud: unknown key; valid keys: name, latitude"),
        ("[stations.M001.source]\nkind='local'\npath='x'\nhost='h'\n",
         "stations.M001.source.host: unknown key; valid keys: kind, path, patterns, recursive"),
        ('[stations."M 1"]\n', "stations.M 1: station ids use letters, digits, '_' and '-' only, got \"M 1\""),
        ("stations = 3\n", "stations: expected a table, got 3"),
        ("colour = 'red'\n", "colour: unknown key; valid keys: data_dir, secrets_file, on_failure, stations"),
        ("on_failure = 3\n", "on_failure: expected a command string or a list of arguments, got 3"),
        ('[stations.M001.archives]\npassword_env = "hunter2 secret"\n',
         "stations.M001.archives.password_env: expected the NAME of an environment variable"),
        ("[stations.M001.source]\nkind='local'\npath='x'\npatterns=[]\n",
         "stations.M001.source.patterns: expected a non-empty list of glob patterns, got a list"),
        ("[stations.M001]\nstale_after_hours = -1\n",
         "stations.M001.stale_after_hours: expected a number from 0 to 87600 h, got -1"),
        ("[status]\nsuspect_share = 1.5\n", "status.suspect_share: expected a number from 0 to 1, got 1.5"),
        ("[status]\nsuspect_flags = ['maintenance']\n",
         "status.suspect_flags[0]: expected one of qc_flatline, qc_icing, qc_range, qc_spike, "
         'got "maintenance"'),
        ("[status]\nsuspect_day = 3\n", "status.suspect_day: unknown key; valid keys: stale_after_hours"),
        ("[report]\nhtml = 3\n", "report.html: expected a string, got 3"),
        ("[report]\nhtlm = 'x'\n", "report.htlm: unknown key; valid keys: html"),
    ],
)  # fmt: skip
def test_errors_name_the_key_path(tmp_path: Path, snippet: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, snippet))
    assert str(exc.value).startswith(message)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"stations\.toml: invalid TOML: "):
        load_config(write(tmp_path, "[stations.M001\n"))


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="no such file; pass --config PATH or set STATIONKIT_CONFIG"
    ):
        load_config(tmp_path / "nope.toml")


def test_unknown_station_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    with pytest.raises(
        ConfigError, match=r"unknown station 'M003'; stations in stations\.toml: M001, M002"
    ):
        cfg.select(["M003"])


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    with pytest.raises(AttributeError):
        cfg.stations["M001"].latitude = 1.0  # type: ignore[misc]


def test_on_failure_command_is_split_without_a_shell(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "on_failure = \"notify-send 'stationkit failed'\"\n"))
    assert cfg.on_failure == ("notify-send", "stationkit failed")
    cfg = load_config(
        write(tmp_path, 'on_failure = ["mail", "-s", "met run failed", "ops@example.org"]\n')
    )
    assert cfg.on_failure == ("mail", "-s", "met run failed", "ops@example.org")


def test_reader_section_is_validated_at_load_with_its_key_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^stations\.M001\.reader\.delimiter: expected one of"):
        load_config(write(tmp_path, '[stations.M001.reader]\ndelimiter = "|x"\n'))


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (
            "[stations.M001.parsers.toa6]\nx = 1\n",
            "stations.M001.parsers.toa6: unknown format; formats: ",
        ),
        (
            "[stations.M001.parsers.csi_ascii]\ncolumn = []\n",
            "stations.M001.parsers.csi_ascii.column: unknown option; options: columns",
        ),
        (
            "[stations.M001.parsers.toa5]\nx = 1\n",
            "stations.M001.parsers.toa5.x: unknown option; toa5 takes no options",
        ),
    ],
)
def test_parser_options_are_checked_against_the_reader(
    tmp_path: Path, snippet: str, message: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, snippet))
    assert str(exc.value).startswith(message)


def test_parser_options_reach_the_reader(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path, '[stations.M001.parsers.csi_ascii]\ncolumns = ["TIMESTAMP", "RECORD", "T"]\n'
        )
    )
    assert cfg.stations["M001"].parser_options == {
        "csi_ascii": {"columns": ["TIMESTAMP", "RECORD", "T"]}
    }


def test_fleet_health_and_report_settings(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "[status]\nstale_after_hours = 12\nsuspect_days = 3\nsuspect_share = 0\n"
            "suspect_flags = ['qc_icing']\n[report]\nhtml = 'site'\n"
            "[stations.M001]\nstale_after_hours = 0.5\n",
        )
    )
    assert (cfg.status.stale_after_hours, cfg.status.suspect_days) == (12.0, 3.0)
    assert cfg.status.suspect_share == 0.0 and cfg.status.suspect_flags == ("qc_icing",)
    assert cfg.report.html == tmp_path / "site"
    assert cfg.stations["M001"].stale_after_hours == 0.5
    default = load_config(write(tmp_path, "[stations.M001]\n"))
    assert default.status.suspect_days == 7.0 and default.status.suspect_share == 0.2
    assert default.report.html is None and default.stations["M001"].stale_after_hours is None
