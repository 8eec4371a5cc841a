"""Reading one TOML table with key-path errors: the validator every
stations.toml section uses (stations, sources, points, sensors, flags, QC,
exports), so each error reads the same way:
``stations.M001.source.port: expected an integer from 1 to 65535, got 70000``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from stationkit.errors import ConfigError

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_PATTERNS = ("*",)


def show_value(value: Any) -> str:
    """A value as config messages quote it: strings in quotes, TOML booleans, "a table"."""
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def as_datetime(value: Any) -> datetime | None:
    """A TOML date-time, a TOML date (at midnight) or ISO text; None for anything else."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def local_time(value: Any, where: str) -> datetime:
    """A logger-clock date-time from TOML (local date-time or date) or ISO text.

    A zone is refused: periods are compared in the logger's own clock, which
    stations.toml cannot confuse with UTC.
    """
    result = as_datetime(value)
    if result is None:
        raise ConfigError(
            f"{where}: expected a date-time like 2024-03-01T09:00:00, got {show_value(value)}"
        )
    if result.tzinfo is not None:
        raise ConfigError(
            f"{where}: expected a local date-time without a zone (the logger's clock), "
            f"like 2024-03-01T09:00:00, got {result.isoformat()}"
        )
    return result


class TomlTable:
    """Reads keys out of one TOML table; unknown keys are errors (see :meth:`done`)."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a table, got {show_value(data)}")
        self.data: dict[str, Any] = dict(data)
        self.path = path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        return self.data.pop(name, None)

    def text(self, name: str, *, required: bool = False, choices: Iterable[str] = ()) -> str | None:
        value = self.data.pop(name, None)
        if value is None:
            if required:
                raise ConfigError(f"{self.key(name)}: missing; expected a string")
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self.key(name)}: expected a string, got {show_value(value)}")
        if not value.strip():
            raise ConfigError(
                f"{self.key(name)}: expected a non-empty string, got {show_value(value)}"
            )
        valid = tuple(choices)
        if valid and value not in valid:
            raise ConfigError(
                f"{self.key(name)}: expected one of {', '.join(repr(c) for c in valid)}, "
                f"got {show_value(value)}"
            )
        return value

    def number(
        self,
        name: str,
        *,
        lo: float | None = None,
        hi: float | None = None,
        nonzero: bool = False,
        unit: str = "",
    ) -> float | None:
        value = self.data.pop(name, None)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{self.key(name)}: expected a number, got {show_value(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(
                f"{self.key(name)}: expected a number from {lo:g} to {hi:g}{unit}, got {value:g}"
            )
        if nonzero and value == 0:
            raise ConfigError(f"{self.key(name)}: expected a number other than 0")
        return float(value)

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int = 1_000_000
    ) -> int:
        value = self.data.pop(name, None)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key(name)}: expected an integer, got {show_value(value)}")
        if value < minimum or value > maximum:
            raise ConfigError(
                f"{self.key(name)}: expected an integer from {minimum} to {maximum}, got {value}"
            )
        return value

    def flag(self, name: str) -> bool | None:
        value = self.data.pop(name, None)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false, got {show_value(value)}")
        return value

    def when(self, name: str) -> datetime | None:
        value = self.data.pop(name, None)
        return None if value is None else local_time(value, self.key(name))

    def instant(self, name: str) -> datetime | None:
        """A UTC instant: a TOML date or date-time (taken as UTC when it has no
        zone; converted when it has one) or ISO text."""
        value = self.data.pop(name, None)
        if value is None:
            return None
        result = as_datetime(value)
        if result is None:
            raise ConfigError(
                f"{self.key(name)}: expected a UTC date or date-time like 2024-03-01 or "
                f"2024-03-01T09:00:00Z, got {show_value(value)}"
            )
        if result.tzinfo is None:
            return result.replace(tzinfo=UTC)
        return result.astimezone(UTC)

    def day(self, name: str) -> date | None:
        value = self.data.pop(name, None)
        if value is None:
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()[:10])
            except ValueError:
                pass
        raise ConfigError(
            f"{self.key(name)}: expected a date like 2024-03-01, got {show_value(value)}"
        )

    def texts(self, name: str) -> tuple[str, ...]:
        value = self.data.pop(name, None)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(
                f"{self.key(name)}: expected a list of non-empty strings, got {show_value(value)}"
            )
        return tuple(value)

    def table(self, name: str) -> TomlTable | None:
        if name not in self.data:
            return None
        return TomlTable(self.data.pop(name), self.key(name))

    def tables(self, name: str) -> list[TomlTable]:
        """An array of tables (``[[...]]`` or a list of inline tables)."""
        value = self.data.pop(name, None)
        if value is None:
            return []
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(
                f"{self.key(name)}: expected a list of tables, got {show_value(value)}"
            )
        return [TomlTable(v, f"{self.key(name)}[{i}]") for i, v in enumerate(value)]

    def env(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not ENV_NAME.match(value):
            raise ConfigError(
                f"{self.key(name)}: expected the NAME of an environment variable "
                f"(letters, digits, '_'), got {show_value(value)}; secrets never go in stations.toml"
            )
        return value

    def file_path(self, name: str, base: Path, *, required: bool = False) -> Path | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    def patterns(self, name: str) -> tuple[str, ...]:
        value = self.data.pop(name, None)
        if value is None:
            return DEFAULT_PATTERNS
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise ConfigError(
                f"{self.key(name)}: expected a non-empty list of glob patterns, got {show_value(value)}"
            )
        return tuple(value)

    def done(self, allowed: Sequence[str] = ()) -> None:
        """Fail on the first key (alphabetically) that was not consumed."""
        for name in sorted(self.data):
            hint = f"; valid keys: {', '.join(allowed)}" if allowed else ""
            raise ConfigError(f"{self.key(name)}: unknown key{hint}")
