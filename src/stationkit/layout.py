"""Where things live in the data directory (DESIGN: Data directory)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from stationkit.atomic import NAME_MAX, fit_name
from stationkit.errors import ConfigError


def prepare_data_dir(data_dir: Path) -> None:
    """Create ``data_dir`` when it does not exist yet; a clear error when it cannot
    be (a file of that name, a parent that is a file, no permission)."""
    if data_dir.is_dir():
        return
    if data_dir.exists() or data_dir.is_symlink():
        raise ConfigError(
            f"data_dir {data_dir}: is a file, not a folder; set data_dir in stations.toml "
            "to a folder (default: data/ beside stations.toml)"
        )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"data_dir {data_dir}: cannot be created ({exc.strerror or exc}); "
            "check data_dir in stations.toml and the permissions of its parent folder"
        ) from None


def raw_dir(data_dir: Path, station: str) -> Path:
    return data_dir / "raw" / station


def staging_dir(data_dir: Path, station: str) -> Path:
    return data_dir / "staging" / station


def quarantine_dir(data_dir: Path, station: str) -> Path:
    return data_dir / "quarantine" / station


def exports_dir(data_dir: Path, station: str) -> Path:
    return data_dir / "exports" / station


def version_name(rel: PurePosixPath, version: int) -> PurePosixPath:
    """Where version ``version`` of a source file is kept below raw/<station>/.

    The first version keeps the source's own name; later versions (the file
    changed at the source) are stored beside it as ``name.~2~``, ``name.~3~``
    (GNU backup numbering), so raw/ is never overwritten and every version
    stays available for a rebuild. A name that the suffix would push past
    the file system's limit is shortened first (:func:`atomic.fit_name`).
    """
    if version <= 1:
        return rel
    suffix = f".~{version}~"
    return rel.with_name(fit_name(rel.name, NAME_MAX - len(suffix)) + suffix)
