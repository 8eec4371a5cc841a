"""Runs and rebuilds on a Dask distributed cluster (``--scheduler``).

* :mod:`stationkit.cluster.journal` -- a station's ledger rows as a private
  snapshot; the journal of what a worker's stages wrote; its replay;
* :mod:`stationkit.cluster.worker` -- what a worker runs for one station
  (and for some months of a large station's calibrate);
* :mod:`stationkit.cluster.client` -- connecting, handing out stations,
  recording results, cleaning up after workers that died.

Only the client (the ``stationkit`` process holding the run lock) writes the
ledger; workers write output files atomically into the shared data
directory. See docs/scaling.md.
"""
