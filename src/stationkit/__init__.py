"""stationkit: ETL for wind-resource and meteorological measurement stations."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stationkit")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
