"""A real Dask cluster on loopback: a ``dask scheduler`` process and ``dask
worker`` processes, for the cluster tests and benchmarks/bench_dask.py.

Each process is started in its own session (so that stopping it stops its
children: a ``dask worker`` is a nanny that runs, and restarts, a worker
process), listens on a free port of 127.0.0.1 only, has no dashboard, and
logs to a file in the given folder. Workers are single-threaded with the
thread pools of polars, DuckDB and Arrow limited to one thread each
(``POLARS_MAX_THREADS``, ``STATIONKIT_THREADS``, ``OMP_NUM_THREADS``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DASK = str(Path(sys.executable).parent / "dask")
#: how long to wait for a process to come up before giving up [s]
START_S = 60.0
SINGLE_THREAD = {"POLARS_MAX_THREADS": "1", "STATIONKIT_THREADS": "1", "OMP_NUM_THREADS": "1"}


class ClusterUnavailable(RuntimeError):
    """The scheduler or a worker would not start."""


@dataclass
class DaskCluster:
    """A scheduler and its workers, each a process group of its own."""

    folder: Path
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _client: Any = None

    @classmethod
    def start(cls, folder: Path, workers: int = 2) -> DaskCluster:
        folder.mkdir(parents=True, exist_ok=True)
        cluster = cls(folder)
        try:
            cluster._start_scheduler()
            for _ in range(workers):
                cluster.add_worker()
            cluster.wait_for_workers(workers)
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 (the process owns it)
        try:
            return subprocess.Popen(
                [DASK, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
                cwd=self.folder,
                start_new_session=True,
            )
        finally:
            log.close()

    def _start_scheduler(self) -> None:
        info = self.folder / "scheduler.json"
        info.unlink(missing_ok=True)
        self.scheduler = self._spawn(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(info)],
            {},
        )  # fmt: skip
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise ClusterUnavailable(f"dask scheduler exited: see {self.folder}/scheduler.log")
            with contextlib.suppress(OSError, ValueError):
                self.address = str(json.loads(info.read_text())["address"])
                return
            time.sleep(0.05)
        raise ClusterUnavailable("dask scheduler did not start")

    def add_worker(self) -> None:
        """One more single-threaded worker (under a nanny that restarts it)."""
        n = len(self.workers) + 1
        self.workers.append(
            self._spawn(
                f"worker{n}",
                ["worker", self.address, "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{n}"],
                SINGLE_THREAD,
            )
        )  # fmt: skip

    def remove_worker(self) -> None:
        """Stop the newest worker (its nanny too) and wait until the scheduler knows."""
        proc = self.workers.pop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + START_S
        while len(self.client.nthreads()) > len(self.workers) and time.monotonic() < deadline:
            time.sleep(0.1)

    @property
    def client(self) -> Any:
        """A client of the test's own, to look at the cluster."""
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, timeout="30s", set_as_default=False)
        return self._client

    def wait_for_workers(self, n: int) -> None:
        try:
            self.client.wait_for_workers(n, timeout=START_S)
        except TimeoutError:
            raise ClusterUnavailable(f"fewer than {n} dask workers came up") from None

    def worker_pids(self) -> dict[str, int]:
        """The pid of each worker process (not its nanny), by address."""
        return {addr: int(pid) for addr, pid in self.client.run(os.getpid).items()}

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        for proc in [*self.workers, self.scheduler]:
            if proc is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
