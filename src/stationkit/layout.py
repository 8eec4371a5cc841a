"""Where things live in the data directory (DESIGN: Data directory)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


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
    stays available for a rebuild.
    """
    return rel if version <= 1 else rel.with_name(f"{rel.name}.~{version}~")
