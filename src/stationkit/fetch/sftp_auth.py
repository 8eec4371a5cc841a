"""Host keys and credentials for the SFTP source (asyncssh underneath).

Host keys: checked against a known_hosts file, or against one pinned
fingerprint; never accepted otherwise, and a refusal says how to trust the
key (after checking it with the server's administrator). Credentials: a key
file (its passphrase from an environment variable), keys held by ssh-agent,
a password from an environment variable. Secret values never appear in a
message; messages name the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from stationkit.config import SftpSource
from stationkit.errors import FetchError

#: looks a secret up by the NAME of its environment variable
SecretLookup = Callable[[str | None], str | None]

#: host key algorithm families tried in turn when a pinned fingerprint does
#: not match the key first negotiated (a server has one key per family)
HOST_KEY_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ssh-ed25519", ("ssh-ed25519",)),
    ("ecdsa-sha2-", ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")),
    ("ssh-rsa", ("rsa-sha2-512", "rsa-sha2-256")),
)


def fingerprint_matches(key: asyncssh.SSHKey, pinned: str) -> bool:
    if pinned.upper().startswith("MD5:"):
        return key.get_fingerprint("md5").lower() == pinned.lower()
    return key.get_fingerprint("sha256").rstrip("=") == pinned.rstrip("=")


# ---------------------------------------------------------------- host keys


class HostKeyCheck:
    """Decides on the server's host key and remembers what it saw, for the message."""

    def __init__(self, config: SftpSource, known_hosts: Path) -> None:
        self.config = config
        self.known_hosts = known_hosts
        self.table: asyncssh.SSHKnownHosts | None = None
        self.offered: list[asyncssh.SSHKey] = []
        self.changed = False

    def trusted(self) -> Any:
        """What asyncssh's ``known_hosts`` argument gets."""
        if self.config.host_key_fingerprint is not None:
            return ([], [], [])  # trust nothing by default: validate() decides
        try:
            self.table = asyncssh.read_known_hosts(str(self.known_hosts))
        except FileNotFoundError:
            self.table = asyncssh.import_known_hosts("")
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise FetchError(
                f"known_hosts file {self.known_hosts}: cannot read it ({exc})"
            ) from None
        return self.table

    def validate(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Called for a key the trusted set does not contain."""
        self.offered.append(key)
        pinned = self.config.host_key_fingerprint
        if pinned is not None:
            return fingerprint_matches(key, pinned)
        if self.table is not None:
            found = self.table.match(host, addr, None if port == 22 else port)
            self.changed = bool(found[0])
        return False

    def untried_families(self) -> list[tuple[str, ...]]:
        seen = {k.get_algorithm() for k in self.offered}
        return [
            algs
            for prefix, algs in HOST_KEY_FAMILIES
            if not any(alg.startswith(prefix) for alg in seen)
        ]

    def refusal(self, reason: str) -> FetchError:
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        kh = self.known_hosts
        offered = ", ".join(
            f"{k.get_algorithm()} {k.get_fingerprint('sha256')}" for k in self.offered
        )
        keyscan = f"ssh-keyscan -p {cfg.port} {cfg.host} >> {kh}"
        if cfg.host_key_fingerprint is not None:
            return FetchError(
                f"host key of {where} refused: it does not match the pinned "
                f"host_key_fingerprint {cfg.host_key_fingerprint} (the server offered "
                f"{offered or 'no acceptable key'}). If the server's key was replaced on "
                "purpose, check the new fingerprint with its administrator and update "
                "host_key_fingerprint in stations.toml."
            )
        if not self.offered:
            return FetchError(f"host key of {where} refused: {reason} (known_hosts file {kh})")
        if self.changed:
            return FetchError(
                f"host key of {where} has CHANGED: {kh} lists a different key for this host "
                f"(the server now offers {offered}). This can be a man-in-the-middle attack, "
                "or the server was reinstalled. Check the new fingerprint with the server's "
                f"administrator; if it is right, remove the old entry with "
                f"`ssh-keygen -R '[{cfg.host}]:{cfg.port}' -f {kh}` and add the new one with "
                f"`{keyscan}`."
            )
        missing = "" if kh.exists() else f" ({kh} does not exist)"
        return FetchError(
            f"host key of {where} is unknown: it is not in {kh}{missing}, and stationkit never "
            f"accepts unknown host keys. The server offered {offered}. Check this fingerprint "
            "with the server's administrator (`ssh-keygen -lf` of the host key on the server), "
            f"then add it with `{keyscan}`, or set host_key_fingerprint = "
            '"SHA256:..." in the station\'s [source] table.'
        )


class CheckingClient(asyncssh.SSHClient):
    """Hands each host key that known_hosts does not list to a HostKeyCheck."""

    def __init__(self, check: HostKeyCheck) -> None:
        self._check = check

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._check.validate(host, addr, port, key)


# ---------------------------------------------------------------- credentials


@dataclass
class Credentials:
    """Credentials, loaded once per source object."""

    keys: list[asyncssh.SSHKeyPair] = field(default_factory=list)
    password: str | None = None
    agent_path: str | None = None
    #: for messages: "key file ..., password from $VAR"
    methods: list[str] = field(default_factory=list)
    #: nothing configured: let asyncssh try ~/.ssh/id_* like ssh does
    defaults: bool = False


def load_credentials(config: SftpSource, secrets: SecretLookup) -> Credentials:
    auth = Credentials()
    if config.key_file is not None:
        path = config.key_file.expanduser()
        auth.methods.append(f"key file {path}")
        passphrase = secrets(config.passphrase_env) if config.passphrase_env else None
        if config.passphrase_env and passphrase is None:
            raise FetchError(
                f"key file {path}: passphrase_env names ${config.passphrase_env}, "
                "which is not set (nor in the secrets file)"
            )
        try:
            auth.keys = list(asyncssh.load_keypairs([str(path)], passphrase))
        except FileNotFoundError:
            raise FetchError(
                f"key file {path}: no such file; set key_file to your private key"
            ) from None
        except OSError as exc:
            raise FetchError(f"key file {path}: cannot read it ({exc.strerror})") from None
        except (asyncssh.KeyEncryptionError, asyncssh.KeyImportError) as exc:
            raise _key_error(path, config.passphrase_env, str(exc)) from None
    if config.agent:
        sock = os.environ.get("SSH_AUTH_SOCK")
        if not sock:
            raise FetchError(
                "agent = true, but $SSH_AUTH_SOCK is not set: start ssh-agent and ssh-add "
                "your key, or set key_file"
            )
        auth.agent_path = sock
        auth.methods.append("keys from ssh-agent ($SSH_AUTH_SOCK)")
    if config.password_env is not None:
        auth.password = secrets(config.password_env)
        if auth.password is None:
            raise FetchError(
                f"password_env names ${config.password_env}, which is not set "
                "(nor in the secrets file)"
            )
        auth.methods.append(f"password from ${config.password_env}")
    if not auth.methods:
        auth.defaults = True
        auth.methods.append("default key files ~/.ssh/id_*")
    return auth


def _key_error(path: Path, passphrase_env: str | None, reason: str) -> FetchError:
    low = reason.lower()
    if "bcrypt" in low:
        return FetchError(
            f"key file {path} is encrypted in OpenSSH's own format, which needs the Python "
            "package bcrypt: pip install 'asyncssh[bcrypt]' -- or load the key into "
            "ssh-agent and set agent = true"
        )
    if "must be specified" in low:
        return FetchError(
            f"key file {path} is encrypted: set passphrase_env to the name of an environment "
            "variable that holds its passphrase"
        )
    if "incorrect passphrase" in low or "decrypt" in low:
        return FetchError(f"key file {path}: wrong passphrase (from ${passphrase_env})")
    return FetchError(f"key file {path}: not a private key asyncssh can read ({reason})")
