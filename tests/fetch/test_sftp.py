"""SftpFileSource against a real OpenSSH server on loopback (see sshd.py)."""

from __future__ import annotations

import asyncio
import filecmp
import importlib.util
import logging
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh
import pytest

from stationkit.config import load_config
from stationkit.errors import FetchError
from stationkit.fetch.base import RemoteFile
from stationkit.fetch.sftp import SftpFileSource
from stationkit.ledger import Ledger
from stationkit.pipeline.fetch import fetch_station
from tests.fetch.sshd import SshServer, free_port

if TYPE_CHECKING:
    from tests.fetch.conftest import Opener

LOGGER = "stationkit.fetch.sftp"
#: big enough that a kill at 1 MiB lands mid-transfer, small enough to be quick
BIG = 64 * 1024 * 1024


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o644)
    for parent in path.parents:  # the password user must be able to read it
        if parent == Path("/tmp"):
            break
        parent.chmod(0o755)
    return path


def sparse(path: Path, size: int) -> Path:
    """A big file that costs no disk on the server side."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    path.chmod(0o644)
    return path


def fetch_all(
    source: SftpFileSource, files: list[RemoteFile], into: Path
) -> dict[str, Exception | None]:
    return {f.path: err for f, err in source.download(files, lambda f: temp_for(into, f))}


def temp_for(into: Path, f: RemoteFile) -> Path:
    return into / (".tmp-" + f.path.replace("/", "__"))


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


# ------------------------------------------------------------------ list + download


def test_lists_and_downloads_everything(
    open_source: Opener, remote: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    a = write(remote / "a.dat", os.urandom(1000))
    write(remote / "empty.dat", b"")
    write(remote / "notes.txt", b"not matched")
    write(remote / ".partial.dat", b"an upload in progress")
    big = write(remote / "sub" / "big.dat", os.urandom(3 * 1024 * 1024 + 17))  # streamed
    write(remote / "sub" / "deeper" / "d.dat", os.urandom(150_000))
    (remote / "link.dat").symlink_to(a)  # inside remote_dir, but links are never followed
    for i in range(60):
        write(remote / "many" / f"m{i:02d}.dat", os.urandom(20_000 + i))

    flat = open_source(patterns=("*.dat",)).list_files()
    assert [f.path for f in flat] == ["a.dat", "empty.dat"]
    assert flat[0].size == 1000 and flat[0].mtime == int(a.stat().st_mtime)

    source = open_source(patterns=("*.dat",), recursive=True, max_concurrent=8)
    files = source.list_files()
    expected = ["a.dat", "empty.dat"] + [f"many/m{i:02d}.dat" for i in range(60)]
    assert [f.path for f in files] == [*expected, "sub/big.dat", "sub/deeper/d.dat"]
    assert files == sorted(files)
    assert "link.dat is a symbolic link: not followed" in caplog.text

    results = fetch_all(source, files, tmp_path)
    assert results == {f.path: None for f in files}
    for f in files:
        got = temp_for(tmp_path, f)
        assert got.read_bytes() == (remote / f.path).read_bytes(), f.path
        assert got.stat().st_size == f.size
    assert temp_for(tmp_path, files[-2]).stat().st_size == big.stat().st_size

    # the same source object can list and download again on its connection
    again = fetch_all(source, files[:3], tmp_path)
    assert again == {f.path: None for f in files[:3]}


def test_missing_remote_dir_is_a_clear_error(open_source: Opener, remote: Path) -> None:
    with pytest.raises(FetchError, match=r"remote_dir .*/nope: no such directory on the server"):
        open_source(remote_dir=str(remote / "nope")).list_files()


def test_files_that_change_after_listing(open_source: Opener, remote: Path, tmp_path: Path) -> None:
    grows = write(remote / "grows.dat", b"0123456789")
    write(remote / "shrinks.dat", b"0123456789")
    write(remote / "goes.dat", b"0123456789")
    write(remote / "stays.dat", b"0123456789")
    source = open_source()
    files = source.list_files()
    with open(grows, "ab") as fh:
        fh.write(b"appended after the listing")
    (remote / "shrinks.dat").write_bytes(b"01234")
    (remote / "goes.dat").unlink()

    results = fetch_all(source, files, tmp_path)
    # the listed size is fetched: the consistent prefix the listing described
    assert results["grows.dat"] is None
    assert temp_for(tmp_path, files[1]).read_bytes() == b"0123456789"
    assert results["stays.dat"] is None
    assert "shrank on the server" in str(results["shrinks.dat"])
    assert "goes.dat" in str(results["goes.dat"])
    assert "no such file" in str(results["goes.dat"]).lower()
    for name in ("shrinks.dat", "goes.dat"):
        assert isinstance(results[name], FetchError)
        assert not temp_for(tmp_path, next(f for f in files if f.path == name)).exists()


def test_stopping_early_leaves_no_unreported_temp_files(
    open_source: Opener, remote: Path, tmp_path: Path
) -> None:
    for i in range(40):
        write(remote / f"f{i:02d}.dat", os.urandom(50_000))
    source = open_source(max_concurrent=4)
    files = source.list_files()
    gen = source.download(files, lambda f: temp_for(tmp_path, f))
    first, err = next(gen)
    gen.close()
    assert err is None
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [temp_for(tmp_path, first).name]
    # and the source still works afterwards
    assert fetch_all(source, files[:2], tmp_path) == {files[0].path: None, files[1].path: None}


# ------------------------------------------------------------------ host keys


def test_unknown_host_key_is_refused_with_how_to(
    server: SshServer, open_source: Opener, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(FetchError) as info:
        open_source(known_hosts=empty, retries=3).list_files()
    msg = str(info.value)
    assert f"host key of 127.0.0.1:{server.port} is unknown" in msg
    assert f"ssh-keyscan -p {server.port} 127.0.0.1 >> {empty}" in msg
    assert server.fingerprint() in msg  # what to compare with the administrator's
    assert "host_key_fingerprint" in msg
    assert retries_logged(caplog) == []  # a refused host key is never retried
    assert empty.read_text() == ""  # and never written down

    missing = tmp_path / "nothing" / "known_hosts"
    with pytest.raises(FetchError, match=r"is unknown: .*does not exist"):
        open_source(known_hosts=missing).list_files()


def test_default_known_hosts_is_in_home(
    server: SshServer, open_source: Opener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    default = tmp_path / ".ssh" / "known_hosts"
    with pytest.raises(FetchError, match=re.escape(f"is not in {default} (")):
        open_source(known_hosts=None).list_files()
    default.parent.mkdir()
    server.write_known_hosts(default, server.host_key)
    assert open_source(known_hosts=None).list_files() == []


def test_changed_host_key_is_refused(
    server: SshServer, open_source: Opener, tmp_path: Path
) -> None:
    stale = server.write_known_hosts(tmp_path / "known_hosts", server.other_host_key)
    with pytest.raises(FetchError) as info:
        open_source(known_hosts=stale).list_files()
    msg = str(info.value)
    assert f"host key of 127.0.0.1:{server.port} has CHANGED" in msg
    assert "man-in-the-middle" in msg
    assert f"ssh-keygen -R '[127.0.0.1]:{server.port}' -f {stale}" in msg
    assert server.fingerprint() in msg


@pytest.mark.parametrize("key", ["ed25519", "ecdsa"])
def test_pinned_fingerprint_is_accepted(
    server: SshServer, open_source: Opener, remote: Path, tmp_path: Path, key: str
) -> None:
    write(remote / "a.dat", b"x")
    host_key = server.host_key if key == "ed25519" else server.host_key_ecdsa
    empty = tmp_path / "known_hosts"
    empty.write_text("")  # known_hosts plays no part when a fingerprint is pinned
    source = open_source(known_hosts=empty, host_key_fingerprint=server.fingerprint(host_key))
    assert [f.path for f in source.list_files()] == ["a.dat"]


def test_pinned_key_found_by_probing_then_wrong_user_key(
    server: SshServer, open_source: Opener
) -> None:
    # the ECDSA key is found by probing one key type at a time; a login failure
    # on that connection is reported as such, not as a host key mismatch
    source = open_source(
        host_key_fingerprint=server.fingerprint(server.host_key_ecdsa),
        key_file=server.other_user_key,
    )
    with pytest.raises(FetchError, match=r"^authentication failed for root@"):
        source.list_files()


def test_wrong_pinned_fingerprint_is_refused(server: SshServer, open_source: Opener) -> None:
    wrong = server.fingerprint(server.other_host_key)
    with pytest.raises(FetchError) as info:
        open_source(host_key_fingerprint=wrong, retries=2).list_files()
    msg = str(info.value)
    assert f"does not match the pinned host_key_fingerprint {wrong}" in msg
    # every key the server has was looked at and is named
    assert server.fingerprint(server.host_key) in msg
    assert server.fingerprint(server.host_key_ecdsa) in msg


# ------------------------------------------------------------------ authentication


def test_password_login(
    server: SshServer,
    password_user: tuple[str, str],
    open_source: Opener,
    remote: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    user, password = password_user
    write(remote / "a.dat", b"x")
    monkeypatch.setenv("SK_TEST_SFTP_PASSWORD", password)
    source = open_source(username=user, key_file=None, password_env="SK_TEST_SFTP_PASSWORD")
    assert [f.path for f in source.list_files()] == ["a.dat"]

    monkeypatch.setenv("SK_TEST_SFTP_PASSWORD", password + "-wrong")
    bad = open_source(username=user, key_file=None, password_env="SK_TEST_SFTP_PASSWORD")
    with pytest.raises(FetchError) as info:
        bad.list_files()
    assert str(info.value) == (
        f"authentication failed for {user}@127.0.0.1:{server.port} "
        "(password from $SK_TEST_SFTP_PASSWORD)"
    )
    assert retries_logged(caplog) == []
    assert password not in caplog.text

    monkeypatch.delenv("SK_TEST_SFTP_PASSWORD")
    unset = open_source(username=user, key_file=None, password_env="SK_TEST_SFTP_PASSWORD")
    with pytest.raises(FetchError, match=r"\$SK_TEST_SFTP_PASSWORD, which is not set"):
        unset.list_files()


def test_password_from_the_secrets_lookup(
    password_user: tuple[str, str], open_source: Opener, remote: Path
) -> None:
    user, password = password_user
    asked: list[str | None] = []

    def secrets(name: str | None) -> str | None:
        asked.append(name)
        return password if name == "M001_SFTP_PASSWORD" else None

    source = open_source(
        username=user, key_file=None, password_env="M001_SFTP_PASSWORD", secrets=secrets
    )
    assert source.list_files() == []
    assert asked == ["M001_SFTP_PASSWORD"]


def test_wrong_key_is_refused(server: SshServer, open_source: Opener) -> None:
    with pytest.raises(FetchError) as info:
        open_source(key_file=server.other_user_key, retries=2).list_files()
    assert str(info.value) == (
        f"authentication failed for root@127.0.0.1:{server.port} (key file {server.other_user_key})"
    )


def test_encrypted_key_and_its_passphrase(
    server: SshServer,
    open_source: Opener,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = server.encrypted_user_key
    monkeypatch.setenv("SK_TEST_PASSPHRASE", server.key_passphrase)
    assert open_source(key_file=key, passphrase_env="SK_TEST_PASSPHRASE").list_files() == []

    monkeypatch.setenv("SK_TEST_PASSPHRASE", "not it")
    with pytest.raises(FetchError) as info:
        open_source(key_file=key, passphrase_env="SK_TEST_PASSPHRASE").list_files()
    assert str(info.value) == f"key file {key}: wrong passphrase (from $SK_TEST_PASSPHRASE)"

    with pytest.raises(FetchError, match="is encrypted: set passphrase_env"):
        open_source(key_file=key).list_files()
    with pytest.raises(FetchError, match="no such file"):
        open_source(key_file=key.with_name("absent")).list_files()
    monkeypatch.setenv("SK_TEST_PASSPHRASE", server.key_passphrase)
    openssh_format = open_source(
        key_file=server.openssh_encrypted_user_key, passphrase_env="SK_TEST_PASSPHRASE"
    )
    if importlib.util.find_spec("bcrypt") is not None:
        assert openssh_format.list_files() == []
    else:  # asyncssh decrypts this format only with bcrypt: say so
        with pytest.raises(FetchError, match=r"needs the Python package bcrypt"):
            openssh_format.list_files()
    assert server.key_passphrase not in caplog.text


@pytest.fixture
def agent(server: SshServer, tmp_path: Path) -> Iterator[str]:
    """A private ssh-agent holding the server's user key; yields its socket."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(server.user_key)], env=env, check=True)
        yield str(sock)
    finally:
        proc.kill()
        proc.wait()


def test_ssh_agent_login(
    server: SshServer, open_source: Opener, agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", agent)
    assert open_source(key_file=None, agent=True).list_files() == []
    # without agent = true the agent is not used, even though it is running
    with pytest.raises(FetchError, match=r"authentication failed .*\(key file .*id_other\)"):
        open_source(key_file=server.other_user_key).list_files()
    monkeypatch.delenv("SSH_AUTH_SOCK")
    with pytest.raises(FetchError, match=r"SSH_AUTH_SOCK is not set"):
        open_source(key_file=None, agent=True).list_files()


# ------------------------------------------------------------------ connection faults


def test_refused_connection_is_retried_then_fails(
    open_source: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(FetchError) as info:
        open_source(port=port, retries=2, backoff_s=0.05).list_files()
    assert str(info.value) == (
        f"cannot connect to root@127.0.0.1:{port}: connection refused "
        "(is the SSH server running, and is the port right?) (3 attempts)"
    )
    assert len(retries_logged(caplog)) == 2
    assert time.monotonic() - t0 >= 0.05 + 0.1  # exponential backoff: 0.05 s, then 0.1 s


def test_connect_timeout(open_source: Opener, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with socket.socket() as silent:  # accepts TCP (backlog) but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(FetchError, match=r"timed out after 0.3 s .*\(2 attempts\)"):
            open_source(port=port, connect_timeout_s=0.3, retries=1).list_files()
        assert time.monotonic() - t0 < 5
    assert len(retries_logged(caplog)) == 1


def kill_when_started(
    path: Path, kill: Callable[[], object], at_bytes: int = 1 << 20
) -> tuple[threading.Thread, list[bool]]:
    """Run ``kill`` once ``path`` holds ``at_bytes``: mid-transfer."""
    killed: list[bool] = []

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if path.stat().st_size >= at_bytes:
                    kill()
                    killed.append(True)
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


def test_server_killed_mid_transfer(
    server: SshServer,
    open_source: Opener,
    remote: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sparse(remote / "big.dat", BIG)
    write(remote / "small1.dat", b"1" * 1000)
    write(remote / "small2.dat", b"2" * 1000)
    source = open_source(retries=1, max_concurrent=1)
    files = source.list_files()
    assert [f.path for f in files] == ["big.dat", "small1.dat", "small2.dat"]

    watcher, killed = kill_when_started(temp_for(tmp_path, files[0]), server.kill)
    results = fetch_all(source, files, tmp_path)
    watcher.join()
    assert killed, "sshd was not killed during the transfer"
    assert set(results) == {"big.dat", "small1.dat", "small2.dat"}
    for name, err in results.items():
        assert isinstance(err, FetchError), name
        assert f"{name}: not fetched: the connection was lost" in str(err)
        assert "connection refused" in str(err)  # the reconnect found no server
    assert list(tmp_path.iterdir()) == []  # no partial (nor any) temporary is left
    assert len(retries_logged(caplog)) == 1

    server.start()  # same port, same host key
    results = fetch_all(source, files, tmp_path)  # the same source reconnects
    assert results == {f.path: None for f in files}
    assert filecmp.cmp(temp_for(tmp_path, files[0]), remote / "big.dat", shallow=False)
    temp_for(tmp_path, files[0]).unlink()  # pytest keeps tmp_path: do not keep 64 MiB


def test_dropped_connection_is_resumed(
    server: SshServer,
    open_source: Opener,
    remote: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sparse(remote / "big.dat", BIG)
    write(remote / "small.dat", os.urandom(5000))
    source = open_source(retries=2)
    files = source.list_files()
    watcher, killed = kill_when_started(temp_for(tmp_path, files[0]), server.kill_sessions)
    results = fetch_all(source, files, tmp_path)
    watcher.join()
    assert killed
    assert results == {"big.dat": None, "small.dat": None}
    assert any("connection lost" in m for m in retries_logged(caplog))
    assert filecmp.cmp(temp_for(tmp_path, files[0]), remote / "big.dat", shallow=False)
    assert temp_for(tmp_path, files[1]).read_bytes() == (remote / "small.dat").read_bytes()
    temp_for(tmp_path, files[0]).unlink()


# ------------------------------------------------------------------ unsafe names


def test_unsafe_names_on_a_real_server_are_refused(
    open_source: Opener, remote: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    write(remote / "ok.dat", b"ok")
    write(remote / "..\\evil.dat", b"backslash")
    write(remote / "C:evil.dat", b"drive letter")
    fd = os.open(os.fsencode(remote) + b"/bad\xff.dat", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    (remote / "escape.dat").symlink_to("/etc/hostname")
    (remote / "up").symlink_to("/")
    files = open_source(recursive=True).list_files()
    assert [f.path for f in files] == ["ok.dat"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'..\\\\evil.dat': refused" in w for w in warnings), warnings
    assert any("'C:evil.dat': refused" in w for w in warnings), warnings
    assert any("is not UTF-8: refused" in w for w in warnings), warnings
    assert "escape.dat is a symbolic link: not followed" in caplog.text
    assert "up is a symbolic link: not followed" in caplog.text


class HostileServer:
    """An SSH server (asyncssh, in a thread) whose directory listing offers names
    that try to escape, as a compromised or malicious logger server could."""

    EVIL = (b"../evil.dat", b"/etc/evil.dat", b"sub/../../evil.dat", b"..")

    def __init__(self, root: Path) -> None:
        self.key = asyncssh.generate_private_key("ssh-ed25519")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        evil = self.EVIL

        class Sftp(asyncssh.SFTPServer):
            def __init__(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
                super().__init__(chan, chroot=os.fsencode(root))

            async def scandir(self, path: bytes):  # type: ignore[no-untyped-def]
                async for name in super().scandir(path):
                    yield name
                for bad in evil:
                    attrs = asyncssh.SFTPAttrs(size=4, mtime=0, permissions=0o100644)
                    yield asyncssh.SFTPName(bad, attrs=attrs)

        class NoAuth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return False

        async def start() -> asyncssh.SSHAcceptor:
            return await asyncssh.listen(
                "127.0.0.1",
                0,
                server_host_keys=[self.key],
                server_factory=NoAuth,
                sftp_factory=Sftp,
            )

        self.acceptor = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = self.acceptor.sockets[0].getsockname()[1]

    def close(self) -> None:
        self.acceptor.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_names_escaping_the_root_are_refused(
    open_source: Opener, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    root = tmp_path / "served"
    write(root / "good.dat", b"good")
    hostile = HostileServer(root)
    try:
        source = open_source(
            port=hostile.port,
            remote_dir="/",
            key_file=None,
            host_key_fingerprint=hostile.key.get_fingerprint("sha256"),
        )
        files = source.list_files()
        assert [f.path for f in files] == ["good.dat"]
        refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        for bad in ("../evil.dat", "/etc/evil.dat", "sub/../../evil.dat"):
            assert any(repr(bad) in m for m in refused), (bad, refused)

        # a path that escapes is refused by download() too, whoever passes it
        out = tmp_path / "out"
        out.mkdir()
        evil = RemoteFile("../evil.dat", 4, 0.0)
        results = dict(source.download([evil, files[0]], lambda f: out / f"t{len(f.path)}"))
        assert isinstance(results[evil], FetchError)
        assert "'..' would escape" in str(results[evil])
        assert results[files[0]] is None
        assert (out / "t8").read_bytes() == b"good"
        assert not (tmp_path / "evil.dat").exists()
    finally:
        hostile.close()


# ------------------------------------------------------------------ lifecycle


def test_close_stops_the_loop_thread(open_source: Opener) -> None:
    source = open_source()
    assert source.list_files() == []
    assert any(t.name.startswith("stationkit-sftp-") for t in threading.enumerate())
    source.close()
    source.close()  # idempotent
    assert not any(t.name.startswith("stationkit-sftp-") for t in threading.enumerate())
    with pytest.raises(FetchError, match="was closed"):
        source.list_files()
    with SftpFileSource(source.config) as again:
        assert again.list_files() == []


# ------------------------------------------------------------------ through the fetch stage


def test_fetch_stage_end_to_end(server: SshServer, remote: Path, tmp_path: Path) -> None:
    write(remote / "2024" / "a.dat", b"a,1\n")
    write(remote / "2024" / "b.dat", os.urandom(150_000))
    write(remote / "c.dat", b"c,1\n")
    (tmp_path / "stations.toml").write_text(
        f"""
[stations.M1.source]
kind = "sftp"
host = "127.0.0.1"
port = {server.port}
username = "root"
remote_dir = "{remote}"
recursive = true
patterns = ["*.dat"]
key_file = "{server.user_key}"
known_hosts = "{server.known_hosts}"
retries = 0
"""
    )
    config = load_config(tmp_path / "stations.toml")
    station = config.stations["M1"]
    raw = config.data_dir / "raw" / "M1"
    with Ledger(config.data_dir) as ledger:
        first = fetch_station(config, station, ledger)
        assert (first.listed, first.fetched, first.errors) == (3, 3, [])
        rows = ledger.latest_by_source("M1", "fetch")
        assert sorted(rows) == ["2024/a.dat", "2024/b.dat", "c.dat"]
        assert (raw / "2024" / "b.dat").read_bytes() == (remote / "2024" / "b.dat").read_bytes()

        second = fetch_station(config, station, ledger)
        assert (second.listed, second.fetched, second.unchanged) == (3, 0, 0)
        assert ledger.conn.execute("SELECT count(*) FROM files").fetchone()[0] == 3

        a = remote / "2024" / "a.dat"
        with open(a, "ab") as fh:
            fh.write(b"a,2\n")
        os.utime(a, (a.stat().st_atime, a.stat().st_mtime + 60))
        third = fetch_station(config, station, ledger)
        assert (third.fetched, third.errors) == (1, [])
        latest = ledger.latest("M1", "fetch", "2024/a.dat")
        assert latest is not None and latest.version == 2 and latest.size == 8
        assert (raw / "2024" / "a.dat.~2~").read_bytes() == b"a,1\na,2\n"
        assert (raw / "2024" / "a.dat").read_bytes() == b"a,1\n"  # raw/ is never rewritten
        assert ledger.conn.execute("SELECT count(*) FROM files").fetchone()[0] == 4
    assert not [p for p in raw.rglob("*") if p.name.startswith(".stationkit-tmp-")]


def test_fetch_stage_when_the_server_dies(server: SshServer, remote: Path, tmp_path: Path) -> None:
    sparse(remote / "big.dat", BIG)
    write(remote / "small.dat", b"s\n")
    (tmp_path / "stations.toml").write_text(
        f"""
[stations.M1.source]
kind = "sftp"
host = "127.0.0.1"
port = {server.port}
username = "root"
remote_dir = "{remote}"
key_file = "{server.user_key}"
known_hosts = "{server.known_hosts}"
retries = 0
max_concurrent = 1
"""
    )
    config = load_config(tmp_path / "stations.toml")
    station = config.stations["M1"]
    raw = config.data_dir / "raw" / "M1"
    killed: list[bool] = []

    def watch() -> None:  # the stage picks the temporary's name: watch raw/ for it
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            for p in raw.glob(".stationkit-tmp-*big.dat") if raw.exists() else []:
                try:
                    if p.stat().st_size >= 1 << 20:
                        server.kill()
                        killed.append(True)
                except FileNotFoundError:
                    pass
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with Ledger(config.data_dir) as ledger:
        broken = fetch_station(config, station, ledger)
        watcher.join()
        assert killed
        assert sorted(path for path, _ in broken.errors) == ["big.dat", "small.dat"]
        assert all("connection was lost" in err for _, err in broken.errors)
        assert list(raw.iterdir()) == []  # nothing partial, no temporary
        assert ledger.latest_by_source("M1", "fetch") == {}

        server.start()
        fixed = fetch_station(config, station, ledger)
        assert (fixed.fetched, fixed.errors) == (2, [])
        assert (raw / "big.dat").stat().st_size == BIG
    (raw / "big.dat").unlink()
