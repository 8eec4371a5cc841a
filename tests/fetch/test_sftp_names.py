"""Untrusted names from a real SFTP server, through `stationkit run`: a line
break in a name is escaped wherever it is shown; names of 243 and 255 bytes
are fetched like the others (and do not stop the station's other files)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from stationkit.atomic import NAME_MAX
from stationkit.cli import cli
from tests.fetch.sshd import SshServer
from tests.pipeline.test_names import (
    BAD,
    GOOD,
    NEWLINE_NAME,
    check_newline_name_is_escaped,
    configure,
    long_name,
)


def sftp_station(root: Path, server: SshServer, remote: Path) -> tuple[str, Path]:
    return configure(
        root,
        f'kind = "sftp"\nhost = "127.0.0.1"\nport = {server.port}\nusername = "root"\n'
        f'remote_dir = "{remote}"\nkey_file = "{server.user_key}"\n'
        f'known_hosts = "{server.known_hosts}"\nretries = 0\n',
    )


def test_newline_in_a_remote_file_name(server: SshServer, remote: Path, tmp_path: Path) -> None:
    (remote / NEWLINE_NAME).write_text(BAD)
    conf, received = sftp_station(tmp_path, server, remote)
    check_newline_name_is_escaped(tmp_path, conf, received)


def test_longest_legal_remote_names(server: SshServer, remote: Path, tmp_path: Path) -> None:
    names = [long_name(243), long_name(NAME_MAX), "short.dat"]
    for name in names:
        (remote / name).write_text(GOOD)
    conf, _ = sftp_station(tmp_path, server, remote)
    result = CliRunner().invoke(cli, ["--config", conf, "run"])
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    raw = tmp_path / "data" / "raw" / "M1"
    assert sorted(p.name for p in raw.iterdir()) == sorted(names)
    (st,) = json.loads(CliRunner().invoke(cli, ["--config", conf, "status", "--json"]).stdout)
    assert st["files"]["ok"] == 3
