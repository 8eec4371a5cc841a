"""stationkit: ETL for wind-resource and meteorological measurement stations.

From Python (docs/api.md)::

    import stationkit

    p = stationkit.open("stations.toml")
    p.clean("M001", "2024-01-01", "2024-02-01", wide=True)

``import stationkit`` stays cheap: the API (and polars, pyarrow, DuckDB with
it) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stationkit.api import LakeError, Project, SelectionError, open

    __version__: str

__all__ = ["LakeError", "Project", "SelectionError", "__version__", "open"]

_API = frozenset({"LakeError", "Project", "SelectionError", "open"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from stationkit import api

        return getattr(api, name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("stationkit")
        except PackageNotFoundError:  # running from a source tree without installation
            found = "0.0.0"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module 'stationkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *(k for k in globals() if k.startswith("__"))})
