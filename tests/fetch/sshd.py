"""A real OpenSSH server on loopback, for the SFTP tests and the benchmark.

Debian's ``/usr/sbin/sshd`` runs in the foreground (``sshd -D -e -f CFG``) as
root on a free port of 127.0.0.1, with throwaway host keys (ed25519 and
ECDSA) and user keys made by ssh-keygen in a temporary folder, its own
sshd_config (``AuthorizedKeysFile`` in that folder, ``StrictModes no``,
``UsePAM no``, ``Subsystem sftp internal-sftp``) and its own pid and log
files. Nothing of the machine's own ssh setup is read or changed, except:

* ``/run/sshd``, the privilege-separation folder sshd insists on, is created
  when missing (an empty root-owned folder, as the openssh-server package
  makes it);
* :meth:`SshServer.add_password_user` creates a local user (``useradd``,
  no home, shell ``/usr/sbin/nologin``) with a random password set through
  ``chpasswd``'s stdin; :meth:`SshServer.close` deletes it again.

Keys and passwords are throwaway; the served folders live under
``tempfile.mkdtemp`` (mode 0755) so that the password user can read them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
INSTALL_HINT = (
    "OpenSSH server not found at /usr/sbin/sshd; the SFTP tests run against a real sshd. "
    "Install it with: apt-get install -y openssh-server  (`make test` does this)"
)


USERADD = ("useradd", "--no-create-home", "--home-dir", "/", "--shell", "/usr/sbin/nologin")


class SshdUnavailable(RuntimeError):
    """sshd is missing or would not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "", *, pem: bool = False) -> Path:
    """A new key pair at ``path`` / ``path.pub``; returns ``path``."""
    fmt = ["-m", "PEM"] if pem else []
    comment = ["-C", "stationkit-test"]
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *fmt, "-N", passphrase, *comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def fingerprint(pub: Path) -> str:
    """``SHA256:...`` of a public key file, as ``ssh-keygen -lf`` prints it."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", pub], check=True, capture_output=True, text=True
    ).stdout
    return out.split()[1]


@dataclass
class SshServer:
    """One sshd; :meth:`start` / :meth:`kill` / :meth:`kill_sessions` / :meth:`close`."""

    home: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    users: list[str] = field(default_factory=list)
    served: list[Path] = field(default_factory=list)
    #: passphrase of :attr:`encrypted_user_key`
    key_passphrase: str = ""

    # ------------------------------------------------------------ setup

    @classmethod
    def create(cls, home: Path) -> SshServer:
        if not (SSHD.is_file() and os.access(SSHD, os.X_OK)):
            raise SshdUnavailable(INSTALL_HINT)
        if shutil.which("ssh-keygen") is None:
            raise SshdUnavailable("ssh-keygen not found; install openssh-client")
        home.mkdir(parents=True, exist_ok=True)
        server = cls(home=home)
        keygen(server.host_key, "ed25519")
        keygen(server.host_key_ecdsa, "ecdsa")
        keygen(server.other_host_key, "ed25519")
        keygen(server.user_key, "ed25519")
        keygen(server.other_user_key, "ed25519")
        server.key_passphrase = secrets.token_urlsafe(12)
        keygen(server.encrypted_user_key, "ecdsa", server.key_passphrase, pem=True)
        keygen(server.openssh_encrypted_user_key, "ed25519", server.key_passphrase)
        authorized = [
            key.with_suffix(".pub").read_text()
            for key in (
                server.user_key,
                server.encrypted_user_key,
                server.openssh_encrypted_user_key,
            )
        ]
        server.authorized_keys.write_text("".join(authorized))
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        return server

    @property
    def host_key(self) -> Path:
        return self.home / "ssh_host_ed25519_key"

    @property
    def host_key_ecdsa(self) -> Path:
        return self.home / "ssh_host_ecdsa_key"

    @property
    def other_host_key(self) -> Path:
        """A key this server does NOT have (a "changed" host key)."""
        return self.home / "other_host_ed25519_key"

    @property
    def user_key(self) -> Path:
        return self.home / "id_ed25519"

    @property
    def other_user_key(self) -> Path:
        """A key that is not in authorized_keys."""
        return self.home / "id_other"

    @property
    def encrypted_user_key(self) -> Path:
        """An authorized key protected by :attr:`key_passphrase`, in PEM format."""
        return self.home / "id_encrypted_pem"

    @property
    def openssh_encrypted_user_key(self) -> Path:
        """The same in OpenSSH's own format (ssh-keygen's default; needs bcrypt)."""
        return self.home / "id_encrypted_openssh"

    @property
    def authorized_keys(self) -> Path:
        return self.home / "authorized_keys"

    @property
    def config_file(self) -> Path:
        return self.home / "sshd_config"

    @property
    def log_file(self) -> Path:
        return self.home / "sshd.log"

    @property
    def known_hosts(self) -> Path:
        """known_hosts with this server's real host keys."""
        path = self.home / "known_hosts"
        self.write_known_hosts(path, self.host_key, self.host_key_ecdsa)
        return path

    def write_known_hosts(self, path: Path, *keys: Path) -> Path:
        """A known_hosts file listing ``keys`` for this server's host and port."""
        lines = []
        for key in keys:
            kind, blob = key.with_suffix(".pub").read_text().split()[:2]
            lines.append(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        path.write_text("".join(lines))
        return path

    def fingerprint(self, key: Path | None = None) -> str:
        return fingerprint((key or self.host_key).with_suffix(".pub"))

    def _write_config(self) -> None:
        self.config_file.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"HostKey {self.host_key_ecdsa}\n"
            f"PidFile {self.home / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "UseDNS no\n"
            "MaxStartups 100:30:200\n"
            "MaxSessions 20\n"
            "LogLevel VERBOSE\n"
            "Subsystem sftp internal-sftp\n"
        )

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> None:
        """Start sshd (on the same port again after a kill) and wait until it accepts."""
        if self.proc is not None and self.proc.poll() is None:
            return
        attempts = 3 if not self.port else 1
        for attempt in range(attempts):
            if not self.port or attempt:
                self.port = free_port()
            self._write_config()
            with open(self.log_file, "ab") as log:
                self.proc = subprocess.Popen(
                    [str(SSHD), "-D", "-e", "-f", str(self.config_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            if self._wait_listening(timeout):
                return
        raise SshdUnavailable(f"sshd did not start; its log:\n{self.log_tail()}")

    def _wait_listening(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s,
            ):
                # a listening sshd sends its version banner first
                s.settimeout(2.0)
                if s.recv(4).startswith(b"SSH-"):
                    return True
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        return False

    def _processes(self) -> list[psutil.Process]:
        """The listener and every session process it started."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            listener = psutil.Process(self.proc.pid)
            return [listener, *listener.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    @staticmethod
    def _sigkill(procs: list[psutil.Process]) -> None:
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        # orphaned sessions are reaped by init whenever it likes; dead is enough
        deadline = time.monotonic() + 5
        for p in procs:
            while time.monotonic() < deadline:
                try:
                    if p.status() == psutil.STATUS_ZOMBIE:
                        break
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.002)

    def kill_sessions(self) -> int:
        """SIGKILL every connection's sshd process; the listener stays up."""
        sessions = self._processes()[1:]
        self._sigkill(sessions)
        return len(sessions)

    def kill(self) -> None:
        """SIGKILL sshd and all its sessions: the server is gone."""
        if self.proc is None:
            return
        self._sigkill(self._processes())  # the listener first: it accepts nothing new
        self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ------------------------------------------------------------ users and folders

    def served_dir(self) -> Path:
        """A new, empty folder readable by every user (the "remote" side)."""
        path = Path(tempfile.mkdtemp(prefix="stationkit-sftp-"))
        path.chmod(0o755)
        self.served.append(path)
        return path

    def add_password_user(self) -> tuple[str, str]:
        """A local user with a random password: (name, password)."""
        if shutil.which("useradd") is None or shutil.which("chpasswd") is None:
            raise SshdUnavailable("useradd/chpasswd not found (package passwd)")
        name = f"sktest{os.getpid() % 1000000}"
        password = secrets.token_urlsafe(16)
        subprocess.run(["userdel", name], capture_output=True, check=False)
        for attempt in range(20):  # another test process may hold /etc/passwd's lock
            done = subprocess.run(
                [*USERADD, name],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                break
            if attempt == 19 or "lock" not in done.stderr:
                raise SshdUnavailable(f"useradd {name} failed: {done.stderr.strip()}")
            time.sleep(0.1)
        self.users.append(name)
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n".encode(), check=True)
        return name, password

    def close(self) -> None:
        self.kill()
        for name in self.users:
            subprocess.run(["userdel", name], capture_output=True, check=False)
        self.users.clear()
        for path in self.served:
            shutil.rmtree(path, ignore_errors=True)
        self.served.clear()
