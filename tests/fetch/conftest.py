"""Fixtures for the SFTP tests: one real OpenSSH server per test session."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stationkit.config import SftpSource
from stationkit.fetch.sftp import SftpFileSource
from tests.fetch.sshd import SshdUnavailable, SshServer


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """sshd on a free loopback port, killed (with its sessions) at the end."""
    try:
        server = SshServer.create(tmp_path_factory.mktemp("sshd"))
    except SshdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
    except SshdUnavailable as exc:
        server.close()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.close()


@pytest.fixture
def server(sshd: SshServer) -> SshServer:
    """The session's sshd, running (a test may have killed it: it is restarted)."""
    sshd.start()
    return sshd


@pytest.fixture(scope="session")
def password_user(sshd: SshServer) -> tuple[str, str]:
    """(name, password) of a local user that may log in by password."""
    try:
        return sshd.add_password_user()
    except SshdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def remote(server: SshServer) -> Path:
    """An empty folder the server serves (world-readable)."""
    return server.served_dir()


@pytest.fixture
def sftp_config(server: SshServer, remote: Path) -> SftpSource:
    """Key login as root, host key checked against a known_hosts file."""
    return SftpSource(
        host="127.0.0.1",
        port=server.port,
        username="root",
        remote_dir=str(remote),
        key_file=server.user_key,
        known_hosts=server.known_hosts,
        connect_timeout_s=10.0,
        retries=0,
    )


Opener = Callable[..., SftpFileSource]


@pytest.fixture
def open_source(sftp_config: SftpSource) -> Iterator[Opener]:
    """``open_source(**changes)``: a source for sftp_config with ``changes``,
    closed at the end of the test."""
    opened: list[SftpFileSource] = []

    def make(*, secrets: Any = None, backoff_s: float = 0.02, **changes: Any) -> SftpFileSource:
        config = dataclasses.replace(sftp_config, **changes)
        source = SftpFileSource(config, secrets=secrets, backoff_s=backoff_s)
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()
