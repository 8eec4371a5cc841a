"""Secrets (SFTP and archive passwords, key passphrases).

stations.toml names them (``password_env = "M001_SFTP_PASSWORD"``); the value
comes from that environment variable, else from the git-ignored secrets
file named by ``secrets_file`` (TOML: ``M001_SFTP_PASSWORD = "..."``).
Values never appear in logs, errors or process arguments: messages name the
variable, never its value.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path

from stationkit.config import Config
from stationkit.errors import ConfigError


@lru_cache(maxsize=8)
def _secrets_file(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the secrets file ({type(exc).__name__})") from None
    return {k: v for k, v in data.items() if isinstance(v, str)}


def get_secret(config: Config | None, name: str | None) -> str | None:
    """The secret called ``name``: environment first, then the secrets file."""
    if not name:
        return None
    value = os.environ.get(name)
    if value is not None:
        return value
    if config is not None and config.secrets_file is not None:
        return _secrets_file(config.secrets_file).get(name)
    return None
