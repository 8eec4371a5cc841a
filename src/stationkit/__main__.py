"""``python -m stationkit``: the same as the ``stationkit`` command."""

from stationkit.cli import main

main()
